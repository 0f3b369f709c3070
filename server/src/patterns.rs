//! Host patterns: shell-style globs over host names, as `-H 'ap-*'` gives them. `*` matches
//! any run of characters, `?` one character, `[abc]`, `[a-z]` one of a set and `[!abc]` (or
//! `[^abc]`) one outside it; every other character matches itself. A text without `*`, `?` or
//! `[` is not a glob but a host's name.

use crate::names::HostName;

/// Why a text is not a host pattern.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatternError {
    /// A name that breaks the host-name rule.
    #[error(transparent)]
    Name(#[from] crate::names::NameError),
    /// A `[` without its `]`.
    #[error("`{0}`: `[` without its closing `]`")]
    Unclosed(String),
    /// A character no host name has.
    #[error("`{0}`: no host name has the character {1:?}")]
    Character(String, char),
}

/// One part of a glob.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    /// This byte.
    Byte(u8),
    /// Any one byte.
    One,
    /// Any run of bytes.
    Run,
    /// One byte in (or, negated, outside) these inclusive ranges.
    Set(bool, Vec<(u8, u8)>),
}

impl Token {
    fn matches(&self, b: u8) -> bool {
        match self {
            Token::Byte(c) => *c == b,
            Token::One | Token::Run => true,
            Token::Set(negated, ranges) => {
                ranges.iter().any(|&(lo, hi)| (lo..=hi).contains(&b)) != *negated
            }
        }
    }
}

/// A glob over host names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Glob {
    tokens: Vec<Token>,
}

/// Whether `text` is a glob rather than a name.
pub fn is_glob(text: &str) -> bool {
    text.contains(['*', '?', '['])
}

/// Checks a text given where a host is named: a glob, or else a valid host name.
pub fn check(text: &str) -> Result<(), PatternError> {
    if is_glob(text) {
        Glob::parse(text).map(drop)
    } else {
        HostName::parse(text).map(drop).map_err(PatternError::from)
    }
}

impl Glob {
    /// Parses `text`.
    pub fn parse(text: &str) -> Result<Glob, PatternError> {
        let name_byte = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-');
        let refuse = |c: char| PatternError::Character(text.to_string(), c);
        let mut tokens = Vec::new();
        let mut chars = text.chars();
        while let Some(c) = chars.next() {
            tokens.push(match c {
                '*' => Token::Run,
                '?' => Token::One,
                '[' => {
                    let mut negated = false;
                    let mut ranges = Vec::new();
                    let mut closed = false;
                    let mut first = true;
                    while let Some(c) = chars.next() {
                        match c {
                            ']' if !first => {
                                closed = true;
                                break;
                            }
                            '!' | '^' if first => negated = true,
                            c if c.is_ascii() && name_byte(c as u8) => {
                                let lo = c as u8;
                                let mut rest = chars.clone();
                                let hi = match (rest.next(), rest.next()) {
                                    (Some('-'), Some(h)) if h != ']' => {
                                        if !(h.is_ascii() && name_byte(h as u8)) {
                                            return Err(refuse(h));
                                        }
                                        chars = rest;
                                        h as u8
                                    }
                                    _ => lo,
                                };
                                ranges.push((lo, hi));
                            }
                            c => return Err(refuse(c)),
                        }
                        first = false;
                    }
                    if !closed {
                        return Err(PatternError::Unclosed(text.to_string()));
                    }
                    Token::Set(negated, ranges)
                }
                c if c.is_ascii() && name_byte(c as u8) => Token::Byte(c as u8),
                c => return Err(refuse(c)),
            });
        }
        Ok(Glob { tokens })
    }

    /// Whether `name` matches the whole glob.
    pub fn matches(&self, name: &str) -> bool {
        let name = name.as_bytes();
        let (mut t, mut n) = (0, 0);
        // After a `*`: the token after it, and where in the name it is tried next.
        let mut back: Option<(usize, usize)> = None;
        while n < name.len() {
            let b = name.get(n).copied().unwrap_or_default();
            match self.tokens.get(t) {
                Some(Token::Run) => {
                    back = Some((t + 1, n));
                    t += 1;
                    continue;
                }
                Some(token) if token.matches(b) => {
                    t += 1;
                    n += 1;
                    continue;
                }
                _ => {}
            }
            match back {
                Some((after, from)) => {
                    back = Some((after, from + 1));
                    t = after;
                    n = from + 1;
                }
                None => return false,
            }
        }
        self.tokens
            .get(t..)
            .is_some_and(|rest| rest.iter().all(|tok| *tok == Token::Run))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn glob(text: &str) -> Glob {
        Glob::parse(text).unwrap()
    }

    #[test]
    fn globs_match_whole_names() {
        let cases: &[(&str, &[&str], &[&str])] = &[
            (
                "ap-*",
                &["ap-", "ap-1", "ap-12.lan"],
                &["ap", "xap-1", "AP-1"],
            ),
            ("*", &["a", "router"], &[]),
            ("r?", &["r1", "rx"], &["r", "r12"]),
            ("*-1", &["ap-1", "a-b-1"], &["ap-12", "ap-1x"]),
            (
                "a*b*c",
                &["abc", "aXbYc", "abbc", "acbc"],
                &["ab", "acb", "abcx"],
            ),
            ("r[12]", &["r1", "r2"], &["r3", "r12"]),
            ("r[0-9]*", &["r0", "r9x"], &["ra", "r"]),
            ("r[!0-9]", &["ra"], &["r1", "r"]),
            ("r[^a]", &["rb"], &["ra"]),
            ("[-a]x", &["-x", "ax"], &["bx"]),
            ("**a", &["a", "ba"], &["ab"]),
        ];
        for (pattern, yes, no) in cases {
            let g = glob(pattern);
            for name in *yes {
                assert!(g.matches(name), "{pattern} should match {name}");
            }
            for name in *no {
                assert!(!g.matches(name), "{pattern} should not match {name}");
            }
        }
    }

    #[test]
    fn bad_patterns_are_refused_and_names_checked() {
        assert_eq!(
            Glob::parse("ap-[12"),
            Err(PatternError::Unclosed("ap-[12".into()))
        );
        assert_eq!(
            Glob::parse("ap/*"),
            Err(PatternError::Character("ap/*".into(), '/'))
        );
        assert!(Glob::parse("r[a-/]").is_err());
        assert!(is_glob("ap-*") && is_glob("r?") && is_glob("[ab]") && !is_glob("ap-1"));
        assert!(check("ap-*").is_ok() && check("ap-1").is_ok());
        assert!(matches!(check("-ap"), Err(PatternError::Name(_))));
        assert!(matches!(check("a b"), Err(PatternError::Name(_))));
    }
}
