//! Host names, checked. A host's name also names its server key file (`keys/<name>.key` in the
//! data directory), so only a safe set is accepted: 1 to 63 ASCII letters, digits, `.`, `_`
//! and `-`, not starting with `.` or `-`. Names are checked once at the edge (the command line's
//! argument parser, [`HostStore::add_host`](crate::store::HostStore::add_host)), and every path built
//! from a name takes a [`HostName`], so a name from an older database that breaks the rule is
//! refused where it would become a path.

use crate::sanitize;

/// The longest host name, in bytes (a DNS label's limit).
pub const MAX_LEN: usize = 63;

/// Why a text is not a host name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "`{shown}` is not a valid host name: {why} (allowed: 1 to {MAX_LEN} letters, digits, `.`, `_` and `-`, not starting with `.` or `-`)",
    shown = sanitize::field(.name, 80)
)]
pub struct NameError {
    /// The text that was refused.
    pub name: String,
    /// What is wrong with it.
    pub why: &'static str,
}

/// A host name that follows the rule above.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
pub struct HostName(String);

impl HostName {
    /// Checks `text`.
    pub fn parse(text: &str) -> Result<HostName, NameError> {
        let refuse = |why| {
            Err(NameError {
                name: text.to_string(),
                why,
            })
        };
        if text.is_empty() {
            return refuse("it is empty");
        }
        if text.len() > MAX_LEN {
            return refuse("it is too long");
        }
        if text.starts_with(['.', '-']) {
            return refuse("it starts with `.` or `-`");
        }
        if !text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        {
            return refuse("it has a character outside the allowed set");
        }
        Ok(HostName(text.to_string()))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::ops::Deref for HostName {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for HostName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::str::FromStr for HostName {
    type Err = NameError;

    fn from_str(text: &str) -> Result<HostName, NameError> {
        HostName::parse(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_safe_set_is_accepted() {
        for name in [
            "r1",
            "router-2",
            "ap_3.lab",
            "A",
            "9",
            "_x",
            "a..b",
            &"x".repeat(63),
        ] {
            assert_eq!(HostName::parse(name).unwrap().as_str(), name);
        }
    }

    #[test]
    fn everything_else_is_refused() {
        for name in [
            "",
            "..",
            ".",
            ".hidden",
            "-r",
            "../../x",
            "a/b",
            "/abs",
            "a\\b",
            "a b",
            "a\nb",
            "a\u{1b}[31mb",
            "a\0b",
            "routér",
            "a:b",
            "*",
            &"x".repeat(64),
        ] {
            let e = HostName::parse(name).unwrap_err();
            let message = e.to_string();
            assert!(message.contains("not a valid host name"), "{message}");
            assert!(
                !message.chars().any(|c| c.is_control()),
                "the message is safe to print: {message:?}"
            );
        }
    }
}
