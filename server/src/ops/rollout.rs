//! Rolling execution, as Ansible's `serial` and `max_fail_percentage`: the hosts of a fan-out
//! go in batches, the next once the previous one is done, and no batch starts once the
//! failures so far exceed the limit. Pure planning; [`Ops::for_each`](super::Ops) follows it.

use serde::{Deserialize, Serialize, Serializer};
use utoipa::openapi::RefOr;

use super::OpsError;
use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Schema, Type};

/// A number of hosts, or a share of all the hosts addressed. In JSON a [`ShareInput`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "ShareInput")]
pub enum Share {
    /// This many hosts.
    Count(usize),
    /// This percentage (0 to 100) of the hosts.
    Percent(u8),
}

impl Share {
    /// `N` hosts or `N%` of them (0 to 100), as `--batch` and `--max-failures` take them.
    pub fn parse(text: &str) -> Result<Share, String> {
        let bad =
            |_| format!("`{text}`: expected a number of hosts or a percentage, e.g. 2 or 25%");
        match text.strip_suffix('%') {
            Some(p) => match p.parse::<u8>().map_err(bad)? {
                p @ 0..=100 => Ok(Share::Percent(p)),
                _ => Err(format!("`{text}`: a percentage is at most 100%")),
            },
            None => text.parse().map(Share::Count).map_err(bad),
        }
    }

    /// Whether it is no host at all (0 or 0%): no batch is that small.
    pub fn is_zero(self) -> bool {
        matches!(self, Share::Count(0) | Share::Percent(0))
    }
}

/// As [`Share::parse`] takes it: `2`, `25%`.
impl std::fmt::Display for Share {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Share::Count(n) => write!(f, "{n}"),
            Share::Percent(p) => write!(f, "{p}%"),
        }
    }
}

/// As text, which the API takes ([`ShareInput::Text`]).
impl Serialize for Share {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// A [`Share`] as the HTTP API takes it: a number of hosts (`2`), or text as the command
/// line's flags take it (`"2"`, `"25%"`).
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum ShareInput {
    /// This many hosts.
    Count(usize),
    /// `N` hosts or `N%` of them.
    Text(String),
}

/// What [`Share::parse`] takes, as the API's document says it (up to 999999999 hosts).
const SHARE_PATTERN: &str = "^([0-9]{1,9}|(100|[1-9]?[0-9])%)$";

impl utoipa::PartialSchema for ShareInput {
    fn schema() -> RefOr<Schema> {
        OneOfBuilder::new()
            .item(
                ObjectBuilder::new()
                    .schema_type(Type::Integer)
                    .minimum(Some(0))
                    .maximum(Some(999_999_999))
                    .description(Some("This many hosts.")),
            )
            .item(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .pattern(Some(SHARE_PATTERN))
                    .description(Some("`N` hosts, or `N%` of them (0 to 100).")),
            )
            .into()
    }
}

impl utoipa::ToSchema for ShareInput {}

impl TryFrom<ShareInput> for Share {
    type Error = String;

    fn try_from(input: ShareInput) -> Result<Share, String> {
        match input {
            ShareInput::Count(n) => Ok(Share::Count(n)),
            ShareInput::Text(text) => Share::parse(&text),
        }
    }
}

/// How a request that works on many hosts goes through them, as it gives it: its `batch` and
/// `max_failures` fields, declared here once and flattened (`#[serde(flatten)]`) into each such
/// request (a run, a control request). [`RolloutOptions::rollout`] holds them to their rules.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RolloutOptions {
    /// Hosts in batches of this many (`2`, `"2"`), or this share of them (`"25%"`, rounded
    /// down, at least 1), a batch once the previous one is done.
    #[schema(value_type = Option<ShareInput>)]
    pub batch: Option<Share>,
    /// Once more than this many hosts (`0`), or this share of them (`"10%"`), have failed, no
    /// further batch starts (the hosts not started are skipped).
    #[schema(value_type = Option<ShareInput>)]
    pub max_failures: Option<Share>,
}

impl RolloutOptions {
    /// The rollout these options ask for, held to its rules ([`Rollout::new`]).
    pub fn rollout(self) -> Result<Rollout, OpsError> {
        Rollout::new(self.batch, self.max_failures)
    }
}

/// How a fan-out proceeds. The default: every host in one batch, whatever fails. Made by
/// [`Rollout::new`], which holds it to the rule: a batch has hosts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Rollout {
    /// Hosts per batch (at least one; a percentage is rounded down, but is at least one).
    batch: Option<Share>,
    /// The failures allowed: once more than this many (or this share of all the hosts) have
    /// failed, no further batch starts.
    max_failures: Option<Share>,
}

impl Rollout {
    /// Batches of `batch` hosts (without: all at once), none started once more than
    /// `max_failures` have failed (without: whatever fails). A batch of no host (0 or 0%) is
    /// [`OpsError::Invalid`] ([`Rollout::batch`]).
    pub fn new(batch: Option<Share>, max_failures: Option<Share>) -> Result<Rollout, OpsError> {
        Ok(Rollout {
            batch: batch.map(Rollout::batch).transpose()?,
            max_failures,
        })
    }

    /// `share` if a batch can be that size: the one rule for a batch, which has hosts (a
    /// share of 0 or 0% is [`OpsError::Invalid`]).
    pub fn batch(share: Share) -> Result<Share, OpsError> {
        if share.is_zero() {
            return Err(OpsError::Invalid(format!(
                "a batch of `{share}` has no host: give at least 1 (or 1%)"
            )));
        }
        Ok(share)
    }

    /// Hosts per batch, if not all at once.
    pub fn batch_size(&self) -> Option<Share> {
        self.batch
    }

    /// The failures allowed, if limited.
    pub fn max_failures(&self) -> Option<Share> {
        self.max_failures
    }

    /// The sizes of the batches for `total` hosts, in order (none for none).
    pub fn batches(&self, total: usize) -> Vec<usize> {
        let size = match self.batch {
            None => total,
            Some(Share::Count(n)) => n,
            Some(Share::Percent(p)) => total * usize::from(p.min(100)) / 100,
        }
        .max(1);
        let mut sizes = Vec::new();
        let mut left = total;
        while left > 0 {
            let n = size.min(left);
            sizes.push(n);
            left -= n;
        }
        sizes
    }

    /// Whether `failed` failures among `total` hosts exceed the limit.
    pub fn exceeded(&self, failed: usize, total: usize) -> bool {
        match self.max_failures {
            None => false,
            Some(Share::Count(n)) => failed > n,
            Some(Share::Percent(p)) => failed * 100 > usize::from(p) * total,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_are_counts_or_percentages_as_text_or_json() {
        assert_eq!(Share::parse("0"), Ok(Share::Count(0)));
        assert_eq!(Share::parse("3"), Ok(Share::Count(3)));
        assert_eq!(Share::parse("25%"), Ok(Share::Percent(25)));
        for bad in ["101%", "x", "-1", "%", "2.5%"] {
            assert!(Share::parse(bad).is_err(), "{bad}");
        }
        assert!(Share::Count(0).is_zero() && Share::Percent(0).is_zero());
        assert!(!Share::Count(1).is_zero());
        let json = |text: &str| serde_json::from_str::<Share>(text).map_err(|e| e.to_string());
        assert_eq!(json("2"), Ok(Share::Count(2)));
        assert_eq!(json(r#""2""#), Ok(Share::Count(2)));
        assert_eq!(json(r#""50%""#), Ok(Share::Percent(50)));
        assert!(json(r#""150%""#).unwrap_err().contains("at most 100%"));
        assert!(json("-1").is_err() && json("true").is_err());
    }

    #[test]
    fn batches_cover_every_host_in_order() {
        let by = |batch| Rollout {
            batch,
            max_failures: None,
        };
        assert_eq!(by(None).batches(5), [5]);
        assert_eq!(by(None).batches(0), Vec::<usize>::new());
        assert_eq!(by(Some(Share::Count(1))).batches(3), [1, 1, 1]);
        assert_eq!(by(Some(Share::Count(2))).batches(5), [2, 2, 1]);
        assert_eq!(by(Some(Share::Count(9))).batches(3), [3]);
        assert_eq!(by(Some(Share::Percent(50))).batches(5), [2, 2, 1]);
        assert_eq!(by(Some(Share::Percent(10))).batches(3), [1, 1, 1]);
        assert_eq!(by(Some(Share::Percent(100))).batches(4), [4]);
    }

    #[test]
    fn a_batch_has_hosts() {
        for zero in [Share::Count(0), Share::Percent(0)] {
            let refused = Rollout::new(Some(zero), None).unwrap_err();
            assert_eq!(refused.kind(), super::super::ErrorKind::Invalid);
            assert!(refused.to_string().contains("has no host"), "{refused}");
        }
        let rollout = Rollout::new(Some(Share::Percent(1)), Some(Share::Count(0))).unwrap();
        assert_eq!(rollout.batch_size(), Some(Share::Percent(1)));
        assert_eq!(rollout.max_failures(), Some(Share::Count(0)));
        assert_eq!(Share::Percent(25).to_string(), "25%");
        assert_eq!(serde_json::to_value(Share::Count(2)).unwrap(), "2");
    }

    #[test]
    fn the_limit_is_exceeded_by_more_failures_than_allowed() {
        let max = |max_failures| Rollout {
            batch: None,
            max_failures,
        };
        assert!(!max(None).exceeded(10, 10));
        assert!(!max(Some(Share::Count(0))).exceeded(0, 3));
        assert!(max(Some(Share::Count(0))).exceeded(1, 3));
        assert!(!max(Some(Share::Count(2))).exceeded(2, 3));
        assert!(max(Some(Share::Count(2))).exceeded(3, 3));
        assert!(!max(Some(Share::Percent(40))).exceeded(1, 3));
        assert!(max(Some(Share::Percent(30))).exceeded(1, 3));
        assert!(!max(Some(Share::Percent(50))).exceeded(2, 4));
        assert!(max(Some(Share::Percent(0))).exceeded(1, 100));
    }
}
