//! Names, checked: one rule for what the fleet names (hosts, groups, scripts, users,
//! variables), and the check of a host's address and port.
//!
//! The rule: 1 to [`MAX_LEN`] ASCII letters, digits, `.`, `_` and `-`, not starting with `.`
//! or `-`; so a name is safe as a file name (a host's name also names its server key file,
//! `keys/<name>.key`), as a URL path segment and on a terminal. Two kinds differ, each for a
//! reason of its own ([`Kind::rule`] says each in words):
//! - a user's name may also hold `@` (a login such as `alice@example.org`, which the rule for
//!   users has always taken);
//! - a variable's name is an environment variable's, `[A-Za-z_][A-Za-z0-9_]*`, since a shell
//!   can expand no other (`$A.B` is `$A` and `.B`).
//!
//! Names are checked where they are made (the operations of `ops`, the command line's parser,
//! [`HostStore::add_host`](crate::store::HostStore::add_host)); what acts on a name that
//! exists looks it up as it is, so a name an older database holds that breaks the rule can
//! still be removed (`otto-server check` lists them). Every path built from a host's name
//! takes a [`HostName`], so such a host's name is refused where it would become a path.

use std::net::IpAddr;

use crate::sanitize;

/// The longest name, in bytes (a DNS label's limit).
pub const MAX_LEN: usize = 63;

/// The longest address, in bytes (a DNS name's limit).
pub const MAX_ADDRESS_LEN: usize = 253;

/// What a name names: the rule differs only for users and variables (see the module's note).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// A host (its name also names its key file).
    Host,
    /// A group of hosts.
    Group,
    /// A stored script.
    Script,
    /// A user of the HTTP API.
    User,
    /// An environment variable.
    Variable,
    /// A schedule.
    Schedule,
}

impl Kind {
    /// The kind, as an error message or a report names it.
    pub fn noun(self) -> &'static str {
        match self {
            Kind::Host => "host",
            Kind::Group => "group",
            Kind::Script => "script",
            Kind::User => "user",
            Kind::Variable => "variable",
            Kind::Schedule => "schedule",
        }
    }

    /// The rule, in words.
    pub fn rule(self) -> &'static str {
        match self {
            Kind::Host | Kind::Group | Kind::Script | Kind::Schedule => {
                "1 to 63 letters, digits, `.`, `_` and `-`, not starting with `.` or `-`"
            }
            Kind::User => {
                "1 to 63 letters, digits, `.`, `_`, `-` and `@`, not starting with `.`, `-` or `@`"
            }
            Kind::Variable => {
                "1 to 63 letters, digits and `_`, not starting with a digit (as the shell's)"
            }
        }
    }

    /// Whether `b` may stand in a name, and first.
    fn allows(self, b: u8, first: bool) -> bool {
        let word = b.is_ascii_alphanumeric() || b == b'_';
        match self {
            Kind::Host | Kind::Group | Kind::Script | Kind::Schedule => {
                word || (!first && matches!(b, b'.' | b'-'))
            }
            Kind::User => word || (!first && matches!(b, b'.' | b'-' | b'@')),
            Kind::Variable => word && !(first && b.is_ascii_digit()),
        }
    }

    /// Checks `text` as a name of this kind.
    pub fn check(self, text: &str) -> Result<(), NameError> {
        let refuse = |why| {
            Err(NameError {
                kind: self,
                name: text.to_string(),
                why,
            })
        };
        let mut bytes = text.bytes();
        let Some(first) = bytes.next() else {
            return refuse("it is empty");
        };
        if text.len() > MAX_LEN {
            return refuse("it is too long");
        }
        if !self.allows(first, true) {
            return refuse(if self.allows(first, false) {
                "it starts with a character a name may not start with"
            } else {
                "it has a character outside the allowed set"
            });
        }
        if !bytes.all(|b| self.allows(b, false)) {
            return refuse("it has a character outside the allowed set");
        }
        Ok(())
    }
}

/// Why a text is not a name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "`{shown}` is not a valid {noun} name: {why} (allowed: {rule})",
    shown = sanitize::field(.name, 80),
    noun = .kind.noun(),
    rule = .kind.rule()
)]
pub struct NameError {
    /// What it would have named.
    pub kind: Kind,
    /// The text that was refused.
    pub name: String,
    /// What is wrong with it.
    pub why: &'static str,
}

/// The first of `names` that differs from `name` only in letter case, if any (a name equal to
/// it is not a clash: that is the same name, which the store refuses or looks up itself).
pub fn case_clash<'a>(name: &str, names: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    names
        .into_iter()
        .find(|other| *other != name && other.eq_ignore_ascii_case(name))
}

/// Why an address or a port cannot be dialled.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddressError {
    /// Neither an IP address nor a DNS name.
    #[error(
        "`{shown}` is not an address: {why} (give an IP address, or a DNS name of letters, \
         digits, `-` and `_` in labels of 1 to 63 separated by `.`)",
        shown = sanitize::field(.address, 80)
    )]
    Address {
        /// The text that was refused.
        address: String,
        /// What is wrong with it.
        why: &'static str,
    },
    /// Port 0.
    #[error("port 0 is not a port: give 1 to 65535")]
    Port,
}

/// Checks that `address` is an IP address (`192.0.2.1`, `2001:db8::1`) or a DNS name
/// (`router1`, `ap.lab.example`; a label may hold `_`, as many local names do).
pub fn check_address(address: &str) -> Result<(), AddressError> {
    if address.parse::<IpAddr>().is_ok() {
        return Ok(());
    }
    let refuse = |why| {
        Err(AddressError::Address {
            address: address.to_string(),
            why,
        })
    };
    let name = address.strip_suffix('.').unwrap_or(address);
    if name.is_empty() {
        return refuse("it is empty");
    }
    if name.len() > MAX_ADDRESS_LEN {
        return refuse("it is too long");
    }
    let mut last = "";
    for label in name.split('.') {
        if label.is_empty() || label.len() > MAX_LEN {
            return refuse("a part between dots is empty or longer than 63");
        }
        if !label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_'))
        {
            return refuse("it has a character outside the allowed set");
        }
        if label.starts_with('-') || label.ends_with('-') {
            return refuse("a part starts or ends with `-`");
        }
        last = label;
    }
    if last.bytes().all(|b| b.is_ascii_digit()) {
        return refuse("it is neither an IP address nor a DNS name (its last part is a number)");
    }
    Ok(())
}

/// Checks that `port` can be dialled (1 to 65535).
pub fn check_port(port: u16) -> Result<(), AddressError> {
    if port == 0 {
        return Err(AddressError::Port);
    }
    Ok(())
}

/// `address` as two addresses of the same place compare: an IP address in its canonical form,
/// a DNS name in lower case without its final dot.
pub fn same_place(address: &str) -> String {
    match address.parse::<IpAddr>() {
        Ok(ip) => ip.to_string(),
        Err(_) => address.trim_end_matches('.').to_ascii_lowercase(),
    }
}

/// A host name that follows the rule above.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
pub struct HostName(String);

impl HostName {
    /// Checks `text`.
    pub fn parse(text: &str) -> Result<HostName, NameError> {
        Kind::Host.check(text)?;
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

    const ALL: [Kind; 5] = [
        Kind::Host,
        Kind::Group,
        Kind::Script,
        Kind::User,
        Kind::Variable,
    ];

    /// Names every kind refuses: the issue's list (empty, `..`, paths, NUL, CR/LF, ESC,
    /// U+202E, 300 characters) and more.
    fn refused_by_all() -> Vec<String> {
        [
            "",
            ".",
            "..",
            ".hidden",
            "-r",
            "../../x",
            "a/b",
            "/abs",
            "a\\b",
            "a b",
            " a",
            "a\nb",
            "a\rb",
            "a\r\nb",
            "a\u{1b}[31mb",
            "a\0b",
            "a\u{202e}b",
            "\u{202e}",
            "routér",
            "a:b",
            "a,b",
            "*",
            "a?",
            "%2e%2e",
            "a\u{7f}",
        ]
        .into_iter()
        .map(String::from)
        .chain([
            "x".repeat(64),
            "x".repeat(300),
            "é".repeat(20),
            format!("{}\0", "x".repeat(10)),
        ])
        .collect()
    }

    #[test]
    fn the_rule_is_one_table_of_good_and_bad_names() {
        // (name, accepted as host/group/script, as user, as variable)
        let table: &[(&str, bool, bool, bool)] = &[
            ("r1", true, true, true),
            ("A", true, true, true),
            ("_x", true, true, true),
            ("9", true, true, false),
            ("9lives", true, true, false),
            ("router-2", true, true, false),
            ("ap_3.lab", true, true, false),
            ("a..b", true, true, false),
            ("API_TOKEN", true, true, true),
            ("alice@example.org", false, true, false),
            ("@alice", false, false, false),
            ("a.b", true, true, false),
            ("a-b", true, true, false),
        ];
        for &(name, common, user, variable) in table {
            for kind in [Kind::Host, Kind::Group, Kind::Script] {
                assert_eq!(kind.check(name).is_ok(), common, "{kind:?} {name:?}");
            }
            assert_eq!(Kind::User.check(name).is_ok(), user, "user {name:?}");
            assert_eq!(
                Kind::Variable.check(name).is_ok(),
                variable,
                "variable {name:?}"
            );
        }
        let longest = "x".repeat(MAX_LEN);
        for kind in ALL {
            assert!(kind.check(&longest).is_ok(), "{kind:?}");
        }
    }

    #[test]
    fn everything_else_is_refused_by_every_kind_with_a_message_safe_to_print() {
        for kind in ALL {
            for name in refused_by_all() {
                let e = kind.check(&name).unwrap_err();
                let message = e.to_string();
                let expected = format!("not a valid {} name", kind.noun());
                assert!(message.contains(&expected), "{message}");
                assert!(
                    !message.chars().any(|c| c.is_control() || c == '\u{202e}'),
                    "the message is safe to print: {message:?}"
                );
            }
        }
        assert_eq!(
            HostName::parse("a/b").unwrap_err().kind,
            Kind::Host,
            "a host name is the host kind's rule"
        );
        assert_eq!(HostName::parse("r1").unwrap().as_str(), "r1");
    }

    #[test]
    fn a_case_clash_is_another_name_in_other_letter_case() {
        let names = ["Lab", "r1", "lab"];
        assert_eq!(case_clash("LAB", names), Some("Lab"));
        assert_eq!(case_clash("lab", names), Some("Lab"));
        assert_eq!(case_clash("R1", names), Some("r1"));
        assert_eq!(case_clash("r1", names), None);
        assert_eq!(case_clash("r2", names), None);
    }

    #[test]
    fn addresses_are_ip_addresses_or_dns_names() {
        for good in [
            "192.0.2.1",
            "2001:db8::1",
            "::1",
            "router1",
            "ap.lab.example",
            "ap.lab.example.",
            "my_host.local",
            "xn--bcher-kva.example",
            "a1",
            &format!("{}.example", "x".repeat(63)),
        ] {
            assert!(check_address(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            ".",
            " ",
            "a b\u{1b}[31m;rm -rf /",
            "a b",
            "-router",
            "router-",
            "a..b",
            ".a",
            "a/b",
            "http://a",
            "a:12444",
            "[::1]",
            "1.2.3.999",
            "10",
            "routér",
            "a\nb",
            &format!("{}.example", "x".repeat(64)),
            &"a.".repeat(130),
        ] {
            let e = check_address(bad).unwrap_err();
            let message = e.to_string();
            assert!(message.contains("is not an address"), "{message}");
            assert!(!message.chars().any(char::is_control), "{message:?}");
        }
        assert!(check_port(1).is_ok());
        assert!(check_port(65535).is_ok());
        assert_eq!(check_port(0), Err(AddressError::Port));
    }

    #[test]
    fn the_same_place_is_written_many_ways() {
        assert_eq!(same_place("Router.LAB."), same_place("router.lab"));
        assert_eq!(same_place("2001:db8:0:0::1"), same_place("2001:db8::1"));
        assert_ne!(same_place("192.0.2.1"), same_place("192.0.2.10"));
    }
}
