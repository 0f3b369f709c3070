//! Ansible's host ranges, as an INI inventory writes many hosts on one line: `web[01:50]` is
//! `web01` to `web50` (the leading zeros of the start give every number its width),
//! `db-[a:c]` is `db-a`, `db-b`, `db-c`, and `r[0:10:5]` steps by 5. A name may hold several
//! ranges; it makes every combination of them, at most [`MAX_HOSTS`].

/// How many hosts one name with ranges may make: more is surely a typing error.
pub const MAX_HOSTS: usize = 1000;

/// Why a name's ranges cannot be expanded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RangeError {
    /// A `[` without its `]`.
    #[error("`{0}`: `[` without its closing `]`")]
    Unclosed(String),
    /// Something else between the brackets.
    #[error("`[{0}]` is not a range: write [START:END] or [START:END:STEP], of numbers or letters")]
    Malformed(String),
    /// An end before its start.
    #[error("`[{0}]` ends before it starts")]
    Backwards(String),
    /// Too many hosts.
    #[error("`{0}` makes more than {MAX_HOSTS} hosts")]
    TooMany(String),
}

/// The names `name` stands for: itself if it has no range.
pub fn expand(name: &str) -> Result<Vec<String>, RangeError> {
    let Some((prefix, rest)) = name.split_once('[') else {
        return Ok(vec![name.to_string()]);
    };
    let (inside, suffix) = rest
        .split_once(']')
        .ok_or_else(|| RangeError::Unclosed(name.to_string()))?;
    // Too many hosts is said of the whole name.
    let whole = |e| match e {
        RangeError::TooMany(_) => RangeError::TooMany(name.to_string()),
        e => e,
    };
    let items = range(inside).map_err(whole)?;
    let tails = expand(suffix).map_err(whole)?;
    if items.len().saturating_mul(tails.len()) > MAX_HOSTS {
        return Err(RangeError::TooMany(name.to_string()));
    }
    Ok(items
        .iter()
        .flat_map(|item| {
            tails
                .iter()
                .map(move |tail| format!("{prefix}{item}{tail}"))
        })
        .collect())
}

/// The items of one range, `START:END` or `START:END:STEP` (without its brackets).
fn range(inside: &str) -> Result<Vec<String>, RangeError> {
    let malformed = || RangeError::Malformed(inside.to_string());
    let (start, end, step) = match inside.split(':').collect::<Vec<_>>().as_slice() {
        [start, end] => (*start, *end, 1),
        [start, end, step] => (*start, *end, step.parse().map_err(|_| malformed())?),
        _ => return Err(malformed()),
    };
    let (first, last, kind) = bounds(start, end).ok_or_else(malformed)?;
    if step == 0 {
        return Err(malformed());
    }
    if last < first {
        return Err(RangeError::Backwards(inside.to_string()));
    }
    if (last - first) / step >= MAX_HOSTS as u64 {
        return Err(RangeError::TooMany(inside.to_string()));
    }
    let step = usize::try_from(step).unwrap_or(usize::MAX);
    Ok((first..=last)
        .step_by(step)
        .map(|n| match kind {
            Kind::Number { width } => format!("{n:0width$}"),
            Kind::Letter => {
                char::from_u32(u32::try_from(n).unwrap_or(0)).map_or_else(String::new, String::from)
            }
        })
        .collect())
}

/// What a range counts.
#[derive(Clone, Copy)]
enum Kind {
    /// Numbers, written at least `width` digits wide (the width of a start with leading zeros).
    Number { width: usize },
    /// Letters of one case.
    Letter,
}

/// A range's first and last item as numbers, and what they count: two numbers, or two letters
/// of one case.
fn bounds(start: &str, end: &str) -> Option<(u64, u64, Kind)> {
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if digits(start) && digits(end) {
        let width = if start.starts_with('0') {
            start.len()
        } else {
            0
        };
        return Some((
            start.parse().ok()?,
            end.parse().ok()?,
            Kind::Number { width },
        ));
    }
    match (start.as_bytes(), end.as_bytes()) {
        ([a], [b])
            if a.is_ascii_alphabetic()
                && b.is_ascii_alphabetic()
                && a.is_ascii_lowercase() == b.is_ascii_lowercase() =>
        {
            Some((u64::from(*a), u64::from(*b), Kind::Letter))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn numbers_keep_their_leading_zeros_and_letters_count() {
        assert_eq!(expand("r1").unwrap(), ["r1"]);
        let web = expand("web[01:12]").unwrap();
        assert_eq!(web.len(), 12);
        assert_eq!((web[0].as_str(), web[11].as_str()), ("web01", "web12"));
        assert_eq!(expand("r[8:10]").unwrap(), ["r8", "r9", "r10"]);
        assert_eq!(expand("n[001:3]").unwrap(), ["n001", "n002", "n003"]);
        assert_eq!(expand("db-[a:c]").unwrap(), ["db-a", "db-b", "db-c"]);
        assert_eq!(expand("[X:Y].lab").unwrap(), ["X.lab", "Y.lab"]);
        assert_eq!(expand("r[0:10:5]").unwrap(), ["r0", "r5", "r10"]);
        assert_eq!(expand("[a:b]-[1:2]").unwrap(), ["a-1", "a-2", "b-1", "b-2"]);
    }

    #[test]
    fn bad_ranges_and_too_many_hosts_are_refused() {
        let err = |name: &str| expand(name).unwrap_err();
        assert_eq!(err("web[01:50"), RangeError::Unclosed("web[01:50".into()));
        for bad in [
            "w[1]",
            "w[1:2:3:4]",
            "w[a:3]",
            "w[a:Z]",
            "w[aa:b]",
            "w[1:5:0]",
            "w[:5]",
        ] {
            assert!(matches!(err(bad), RangeError::Malformed(_)), "{bad}");
        }
        assert_eq!(err("w[9:1]"), RangeError::Backwards("9:1".into()));
        assert_eq!(expand("w[1:1000]").unwrap().len(), 1000);
        assert_eq!(err("w[1:1001]"), RangeError::TooMany("w[1:1001]".into()));
        assert_eq!(
            err("w[0:99999999999999999999]"),
            RangeError::Malformed("0:99999999999999999999".into())
        );
        assert_eq!(
            err("w[1:40]-[a:z]"),
            RangeError::TooMany("w[1:40]-[a:z]".into())
        );
        assert_eq!(
            err("w[1:40]-[1:40]x[1:40]"),
            RangeError::TooMany("w[1:40]-[1:40]x[1:40]".into())
        );
        assert_eq!(
            err("w[1:1001]").to_string(),
            "`w[1:1001]` makes more than 1000 hosts"
        );
    }
}
