//! Fact selectors: hosts chosen by what their agents last reported, as `--where` gives them.
//! A selector is `FACT OP VALUE`: `arch=mips`, `kernel~^5\.`, `model~Archer`,
//! `flash_free<2MiB`, `version!=0.3.1`.
//!
//! - Text facts (`arch`, `model`, `hostname`, `kernel_name`, `os`) take `=`, `!=`, `~` and
//!   `!~` (a regular expression found anywhere in the value; `^…$` to match the whole).
//! - Versions (`version`, the agent's; `kernel`; `release`, the firmware's) take those and
//!   `<`, `<=`, `>`, `>=`, comparing dotted parts as numbers where both are (`5.10` > `5.4`).
//! - Sizes (`mem_total`, `mem_available`, `flash_total`, `flash_free`) and numbers (`load`, the
//!   1-minute load; `uptime`, a duration such as `90s`, `2h`, `7d` or seconds) take `=`, `!=`
//!   and the orderings. A size is bytes, or with a unit: `KiB`, `MiB`, `GiB` (and `K`, `M`,
//!   `G`, the same), `KB`, `MB`, `GB` (powers of 1000).
//! - `big_endian` takes `=` and `!=` with `true` or `false`.
//!
//! A host whose agent has not reported facts yet matches no selector: it is neither chosen nor
//! refused, but left out ([`Selector::judge`] says `None`), and whoever chose says so.

use std::cmp::Ordering;
use std::fmt;

use crate::model::HostStatus;

/// The most selectors one choice of hosts may have.
pub const MAX_SELECTORS: usize = 16;
/// The longest selector, in bytes.
pub const MAX_LEN: usize = 256;
/// The most memory a selector's regular expression may compile to.
const REGEX_SIZE: usize = 1 << 20;

/// Why a text is not a fact selector.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SelectorError {
    /// No operator.
    #[error("`{0}`: a selector is FACT OP VALUE, OP one of = != ~ !~ < <= > >= (arch=mips)")]
    NoOperator(String),
    /// A fact the server does not keep.
    #[error("`{0}`: no fact is called {1:?}; there are {FACTS}")]
    UnknownFact(String, String),
    /// An operator the fact's kind does not take.
    #[error("`{0}`: {1} is {2}, which takes {3}")]
    Operator(String, &'static str, &'static str, &'static str),
    /// A value the fact's kind cannot hold.
    #[error("`{0}`: {1}")]
    Value(String, String),
    /// Too long.
    #[error("a selector is at most {MAX_LEN} bytes; this one has {0}")]
    TooLong(usize),
    /// Too many.
    #[error("at most {MAX_SELECTORS} selectors; {0} were given")]
    TooMany(usize),
}

/// The facts a selector can name, as the message lists them.
const FACTS: &str = "arch, model, hostname, kernel_name, os, version, kernel, release, \
                     mem_total, mem_available, flash_total, flash_free, load, uptime, big_endian";

/// The names of the facts a selector can name.
pub fn fact_names() -> impl Iterator<Item = &'static str> {
    Fact::ALL.iter().map(|(name, _)| *name)
}

/// A fact a selector names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fact {
    Arch,
    Model,
    Hostname,
    KernelName,
    Os,
    Version,
    Kernel,
    Release,
    MemTotal,
    MemAvailable,
    FlashTotal,
    FlashFree,
    Load,
    Uptime,
    BigEndian,
}

/// What kind of value a fact has, which says the operators it takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Text,
    Version,
    Size,
    Load,
    Duration,
    Bool,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Text => "text",
            Kind::Version => "a version",
            Kind::Size => "a size",
            Kind::Load => "a number",
            Kind::Duration => "a duration",
            Kind::Bool => "true or false",
        }
    }

    fn operators(self) -> &'static str {
        match self {
            Kind::Text => "= != ~ !~",
            Kind::Version => "= != ~ !~ < <= > >=",
            Kind::Size | Kind::Load | Kind::Duration => "= != < <= > >=",
            Kind::Bool => "= !=",
        }
    }

    fn takes(self, op: Op) -> bool {
        match self {
            Kind::Text => matches!(op, Op::Eq | Op::Ne | Op::Match | Op::NoMatch),
            Kind::Version => true,
            Kind::Size | Kind::Load | Kind::Duration => !matches!(op, Op::Match | Op::NoMatch),
            Kind::Bool => matches!(op, Op::Eq | Op::Ne),
        }
    }
}

impl Fact {
    const ALL: [(&'static str, Fact); 15] = [
        ("arch", Fact::Arch),
        ("model", Fact::Model),
        ("hostname", Fact::Hostname),
        ("kernel_name", Fact::KernelName),
        ("os", Fact::Os),
        ("version", Fact::Version),
        ("kernel", Fact::Kernel),
        ("release", Fact::Release),
        ("mem_total", Fact::MemTotal),
        ("mem_available", Fact::MemAvailable),
        ("flash_total", Fact::FlashTotal),
        ("flash_free", Fact::FlashFree),
        ("load", Fact::Load),
        ("uptime", Fact::Uptime),
        ("big_endian", Fact::BigEndian),
    ];

    fn named(name: &str) -> Option<Fact> {
        Self::ALL.iter().find(|(n, _)| *n == name).map(|(_, f)| *f)
    }

    fn name(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(_, f)| *f == self)
            .map_or("?", |(n, _)| n)
    }

    fn kind(self) -> Kind {
        match self {
            Fact::Arch | Fact::Model | Fact::Hostname | Fact::KernelName | Fact::Os => Kind::Text,
            Fact::Version | Fact::Kernel | Fact::Release => Kind::Version,
            Fact::MemTotal | Fact::MemAvailable | Fact::FlashTotal | Fact::FlashFree => Kind::Size,
            Fact::Load => Kind::Load,
            Fact::Uptime => Kind::Duration,
            Fact::BigEndian => Kind::Bool,
        }
    }
}

/// A comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Eq,
    Ne,
    Match,
    NoMatch,
    Lt,
    Le,
    Gt,
    Ge,
}

impl Op {
    /// The operators by their text, longest first (so `!=` is not read as `!` and `=`).
    const ALL: [(&'static str, Op); 8] = [
        ("!=", Op::Ne),
        ("!~", Op::NoMatch),
        ("<=", Op::Le),
        (">=", Op::Ge),
        ("=", Op::Eq),
        ("~", Op::Match),
        ("<", Op::Lt),
        (">", Op::Gt),
    ];

    fn text(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(_, o)| *o == self)
            .map_or("?", |(t, _)| t)
    }

    /// Whether `ordering` (the fact's value against the selector's) satisfies it.
    fn holds(self, ordering: Ordering) -> bool {
        match self {
            Op::Eq => ordering == Ordering::Equal,
            Op::Ne => ordering != Ordering::Equal,
            Op::Lt => ordering == Ordering::Less,
            Op::Le => ordering != Ordering::Greater,
            Op::Gt => ordering == Ordering::Greater,
            Op::Ge => ordering != Ordering::Less,
            Op::Match | Op::NoMatch => false,
        }
    }
}

/// The value a selector compares with.
#[derive(Debug, Clone)]
enum Value {
    Text(String),
    Regex(regex::Regex),
    /// Bytes.
    Size(u64),
    Number(f64),
    /// Seconds.
    Duration(u64),
    Bool(bool),
}

/// One fact selector, parsed.
#[derive(Debug, Clone)]
pub struct Selector {
    text: String,
    fact: Fact,
    op: Op,
    value: Value,
}

impl fmt::Display for Selector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl Selector {
    /// Parses `text` (`arch=mips`); spaces around the operator are allowed.
    pub fn parse(text: &str) -> Result<Selector, SelectorError> {
        if text.len() > MAX_LEN {
            return Err(SelectorError::TooLong(text.len()));
        }
        let at = text
            .find(['=', '!', '~', '<', '>'])
            .ok_or_else(|| SelectorError::NoOperator(text.into()))?;
        let (name, rest) = text.split_at(at);
        let (op_text, op) = Op::ALL
            .iter()
            .find(|(t, _)| rest.starts_with(t))
            .copied()
            .ok_or_else(|| SelectorError::NoOperator(text.into()))?;
        let name = name.trim();
        let raw = rest.strip_prefix(op_text).unwrap_or_default().trim();
        let fact = Fact::named(name)
            .ok_or_else(|| SelectorError::UnknownFact(text.into(), name.into()))?;
        let kind = fact.kind();
        if !kind.takes(op) {
            return Err(SelectorError::Operator(
                text.into(),
                fact.name(),
                kind.name(),
                kind.operators(),
            ));
        }
        let bad = |why: String| SelectorError::Value(text.into(), why);
        let value = match (kind, op) {
            (_, Op::Match | Op::NoMatch) => Value::Regex(
                regex::RegexBuilder::new(raw)
                    .size_limit(REGEX_SIZE)
                    .build()
                    .map_err(|e| bad(format!("not a regular expression: {e}")))?,
            ),
            (Kind::Text | Kind::Version, _) => Value::Text(raw.into()),
            (Kind::Size, _) => Value::Size(parse_size(raw).map_err(bad)?),
            (Kind::Load, _) => Value::Number(
                raw.parse::<f64>()
                    .ok()
                    .filter(|n| n.is_finite())
                    .ok_or_else(|| bad(format!("{raw:?} is not a number (1.5)")))?,
            ),
            (Kind::Duration, _) => Value::Duration(parse_duration(raw).map_err(bad)?),
            (Kind::Bool, _) => Value::Bool(match raw {
                "true" => true,
                "false" => false,
                _ => return Err(bad(format!("{raw:?} is neither true nor false"))),
            }),
        };
        Ok(Selector {
            text: format!("{name}{}{raw}", op.text()),
            fact,
            op,
            value,
        })
    }

    /// Parses each of `texts`: at most [`MAX_SELECTORS`].
    pub fn parse_all(texts: &[String]) -> Result<Vec<Selector>, SelectorError> {
        if texts.len() > MAX_SELECTORS {
            return Err(SelectorError::TooMany(texts.len()));
        }
        texts.iter().map(|t| Selector::parse(t)).collect()
    }

    /// Whether a host with `status` is chosen; `None` when it has not reported the fact (no
    /// facts yet, or no agent version).
    pub fn judge(&self, status: &HostStatus) -> Option<bool> {
        let facts = status.facts.as_ref()?;
        let text = |s: &str| self.text_holds(s);
        Some(match self.fact {
            Fact::Arch => text(&facts.arch),
            Fact::Model => text(&facts.model),
            Fact::Hostname => text(&facts.hostname),
            Fact::KernelName => text(&facts.kernel_name),
            Fact::Os => text(&facts.distribution_name),
            Fact::Version => self.version_holds(status.agent_version.as_deref()?),
            Fact::Kernel => self.version_holds(&facts.kernel_version),
            Fact::Release => self.version_holds(&facts.distribution_version),
            Fact::MemTotal => self.size_holds(facts.mem_total_kib),
            Fact::MemAvailable => self.size_holds(facts.mem_available_kib),
            Fact::FlashTotal => self.size_holds(facts.flash_total_kib),
            Fact::FlashFree => self.size_holds(facts.flash_free_kib),
            Fact::Load => match self.value {
                Value::Number(n) => {
                    let load = f64::from(facts.load_centi[0]) / 100.0;
                    self.op.holds(load.total_cmp(&n))
                }
                _ => false,
            },
            Fact::Uptime => match self.value {
                Value::Duration(secs) => self.op.holds(facts.uptime_secs.cmp(&secs)),
                _ => false,
            },
            Fact::BigEndian => match self.value {
                Value::Bool(b) => self.op.holds(facts.big_endian.cmp(&b)),
                _ => false,
            },
        })
    }

    fn text_holds(&self, fact: &str) -> bool {
        match &self.value {
            Value::Regex(re) => re.is_match(fact) == (self.op == Op::Match),
            Value::Text(t) => self.op.holds(fact.cmp(t.as_str())),
            _ => false,
        }
    }

    fn version_holds(&self, fact: &str) -> bool {
        match (&self.value, self.op) {
            (Value::Text(t), Op::Eq | Op::Ne) => self.op.holds(fact.cmp(t.as_str())),
            (Value::Text(t), _) => self.op.holds(compare_versions(fact, t)),
            _ => self.text_holds(fact),
        }
    }

    fn size_holds(&self, kib: u64) -> bool {
        match self.value {
            Value::Size(bytes) => self.op.holds(kib.saturating_mul(1024).cmp(&bytes)),
            _ => false,
        }
    }
}

/// Compares two versions part by part (parts split at anything but letters and digits):
/// numerically where both parts are numbers, else as text; a version that runs out first is
/// the smaller (`5.4` < `5.4.1`).
pub fn compare_versions(a: &str, b: &str) -> Ordering {
    let parts = |s: &'_ str| {
        s.split(|c: char| !c.is_ascii_alphanumeric())
            .filter(|p| !p.is_empty())
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    let (a, b) = (parts(a), parts(b));
    for (x, y) in a.iter().zip(&b) {
        let ordering = match (x.parse::<u64>(), y.parse::<u64>()) {
            (Ok(x), Ok(y)) => x.cmp(&y),
            _ => x.cmp(y),
        };
        if ordering != Ordering::Equal {
            return ordering;
        }
    }
    a.len().cmp(&b.len())
}

/// A size as people write it: `2MiB`, `512K`, `1.5GB`, `1048576` (bytes).
fn parse_size(text: &str) -> Result<u64, String> {
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: f64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a size (2MiB, 512K, 1048576)"))?;
    let factor: u64 = match unit.trim() {
        "" | "B" => 1,
        "K" | "KiB" => 1 << 10,
        "M" | "MiB" => 1 << 20,
        "G" | "GiB" => 1 << 30,
        "KB" | "kB" => 1_000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        other => {
            return Err(format!(
                "{other:?} is not a unit of size (B, KiB, MiB, GiB, KB, MB, GB)"
            ));
        }
    };
    let bytes = number * factor as f64;
    if !(0.0..=u64::MAX as f64).contains(&bytes) {
        return Err(format!("{text:?} is too large a size"));
    }
    Ok(bytes as u64)
}

/// A duration as people write it (`90s`, `2h`, `7d`) or seconds.
fn parse_duration(text: &str) -> Result<u64, String> {
    if let Ok(secs) = text.parse::<u64>() {
        return Ok(secs);
    }
    humantime::parse_duration(text)
        .map(|d| d.as_secs())
        .map_err(|e| format!("{text:?} is not a duration (90s, 2h, 7d): {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Facts;

    fn router() -> HostStatus {
        HostStatus {
            agent_version: Some("0.3.1".into()),
            facts: Some(Facts {
                hostname: "OpenWrt".into(),
                kernel_name: "Linux".into(),
                kernel_version: "5.10.176".into(),
                arch: "mips".into(),
                distribution_name: "OpenWrt".into(),
                distribution_version: "23.05.2".into(),
                uptime_secs: 7200,
                load_centi: [150, 20, 5],
                mem_total_kib: 124_000,
                mem_available_kib: 60_000,
                model: "TP-Link Archer C7 v5".into(),
                big_endian: true,
                flash_total_kib: 8_000,
                flash_free_kib: 1_500,
            }),
            ..HostStatus::default()
        }
    }

    fn judge(text: &str) -> Option<bool> {
        Selector::parse(text).unwrap().judge(&router())
    }

    #[test]
    fn each_kind_of_fact_is_compared_as_its_kind() {
        for (text, chosen) in [
            ("arch=mips", true),
            ("arch = mips", true),
            ("arch!=mips", false),
            ("arch=mipsel", false),
            ("kernel~^5\\.", true),
            ("kernel~^6\\.", false),
            ("kernel!~^6\\.", true),
            ("model~Archer", true),
            ("model~(?i)archer c7", true),
            ("flash_free<2MiB", true),
            ("flash_free<1MiB", false),
            ("flash_free>=1500K", true),
            ("flash_total>8MiB", false),
            ("flash_total>8MB", true),
            ("mem_total>100MiB", true),
            ("version!=0.3.1", false),
            ("version=0.3.1", true),
            ("version<0.10", true),
            ("version>=0.3", true),
            ("kernel>5.4", true),
            ("kernel<5.10.200", true),
            ("release>=23.05", true),
            ("load>1", true),
            ("load<=1.5", true),
            ("load<1.5", false),
            ("uptime>1h", true),
            ("uptime<3600", false),
            ("big_endian=true", true),
            ("big_endian!=true", false),
            ("os=OpenWrt", true),
            ("hostname~^Open", true),
            ("kernel_name=Linux", true),
            ("mem_available<1GB", true),
        ] {
            assert_eq!(judge(text), Some(chosen), "{text}");
        }
    }

    #[test]
    fn a_host_without_facts_or_version_is_not_judged() {
        let none = HostStatus::default();
        assert_eq!(Selector::parse("arch=mips").unwrap().judge(&none), None);
        let mut no_version = router();
        no_version.agent_version = None;
        let version = Selector::parse("version=0.3.1").unwrap();
        assert_eq!(version.judge(&no_version), None);
        assert_eq!(
            Selector::parse("arch=mips").unwrap().judge(&no_version),
            Some(true)
        );
    }

    #[test]
    fn bad_selectors_say_what_is_wrong() {
        for (text, says) in [
            ("arch", "a selector is FACT OP VALUE"),
            ("cpu=mips", "no fact is called \"cpu\""),
            ("arch<mips", "arch is text, which takes = != ~ !~"),
            ("flash_free~1", "flash_free is a size"),
            ("flash_free<2 parsecs", "not a unit of size"),
            ("flash_free<lots", "not a size"),
            ("big_endian=yes", "neither true nor false"),
            ("model~(", "not a regular expression"),
            ("load>x", "not a number"),
            ("uptime>soon", "not a duration"),
        ] {
            let error = Selector::parse(text).unwrap_err().to_string();
            assert!(error.contains(says), "{text}: {error}");
        }
        let long = format!("model={}", "x".repeat(MAX_LEN));
        assert!(matches!(
            Selector::parse(&long),
            Err(SelectorError::TooLong(_))
        ));
        let many = vec!["arch=mips".to_string(); MAX_SELECTORS + 1];
        assert_eq!(
            Selector::parse_all(&many).unwrap_err(),
            SelectorError::TooMany(MAX_SELECTORS + 1)
        );
        // A regular expression too large to compile within the bound is refused.
        let huge = format!("model~{}", r"(\w{500}){100}");
        assert!(Selector::parse(&huge).is_err());
    }

    #[test]
    fn versions_compare_by_their_parts() {
        assert_eq!(compare_versions("5.10", "5.4"), Ordering::Greater);
        assert_eq!(compare_versions("5.4", "5.4.1"), Ordering::Less);
        assert_eq!(compare_versions("0.3.1", "0.3.1"), Ordering::Equal);
        assert_eq!(compare_versions("6.6.73-rc1", "6.6.73"), Ordering::Greater);
        assert_eq!(compare_versions("23.05.2", "24.10.0"), Ordering::Less);
    }

    #[test]
    fn a_selector_is_shown_as_it_was_given_without_spaces() {
        assert_eq!(
            Selector::parse(" arch = mips ").unwrap().to_string(),
            "arch=mips"
        );
    }
}
