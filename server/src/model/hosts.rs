//! Hosts: where they are, how their agent key is trusted, what their last heartbeat said;
//! groups of them.

use serde::{Deserialize, Serialize};

use super::{from_utc, utc};

/// How a host's agent key is trusted.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Trust {
    /// The pinned agent key (OpenSSH text), if any.
    pub agent_key: Option<String>,
    /// Pin whatever key the agent presents on the first successful contact.
    pub pin_on_first_contact: bool,
    /// A different key the agent presented, waiting for `host approve`.
    pub pending_key: Option<String>,
    /// When keys were last made or rotated (ms since the epoch; RFC 3339 in JSON).
    #[serde(serialize_with = "utc", deserialize_with = "from_utc", default)]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub last_rotation: Option<i64>,
}

/// What the last heartbeat said, persisted (in the API's document, `HostStatus`: apart from
/// the outcome of an operation on a host).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct HostStatus {
    /// Whether the last attempt reached the agent; None before the first.
    pub reachable: Option<bool>,
    /// Whether the last attempt found the agent reachable but busy: it authenticated this
    /// server and refused a channel, serving as many at once as it may (`reachable` is true).
    #[serde(default)]
    pub busy: bool,
    /// The last successful heartbeat (ms since the epoch; RFC 3339 in JSON).
    #[serde(serialize_with = "utc", deserialize_with = "from_utc", default)]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub last_seen: Option<i64>,
    /// Round trip (ms) of the last successful heartbeat, connection set-up excluded.
    #[serde(default)]
    pub round_trip_ms: Option<f64>,
    /// The agent's version.
    pub agent_version: Option<String>,
    /// The host's facts (`otto_proto::Facts`: its board, system and release, uptime, load,
    /// memory and flash).
    #[schema(value_type = Option<FactsSchema>)]
    pub facts: Option<Facts>,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
    /// Whether its agent calls home (`serve --call-home-listen`): it is reached over the
    /// connection the agent makes, never dialled (until its address is set again).
    #[serde(default)]
    pub calls_home: bool,
}

/// A host's facts from its heartbeat: the protocol's owned form.
pub use otto_proto::Facts;

/// The API document's schema of [`Facts`] (named `Facts` there), which the protocol's crate
/// defines without one: the same fields, with their types and meanings. Only a schema: the
/// values are `Facts`. A test holds the two to the same fields.
#[derive(utoipa::ToSchema)]
#[schema(as = Facts)]
pub struct FactsSchema {
    /// The host name.
    pub hostname: String,
    /// Kernel name (`uname -s`: `Linux`).
    pub kernel_name: String,
    /// Kernel version (`uname -r`: `6.6.73`).
    pub kernel_version: String,
    /// Machine architecture (`uname -m`: `mips`, `armv7l`, `aarch64`, `x86_64`); its byte order
    /// is `big_endian`.
    pub arch: String,
    /// Firmware or distribution name (`OpenWrt`, `Debian GNU/Linux`): with
    /// `distribution_version`, the host's release.
    pub distribution_name: String,
    /// Firmware or distribution version (`24.10.0`).
    pub distribution_version: String,
    /// Seconds since boot.
    pub uptime_secs: u64,
    /// The 1, 5 and 15 minute load averages, times 100 (`15` is a load of 0.15).
    #[schema(min_items = 3, max_items = 3)]
    pub load_centi: [u32; 3],
    /// Total memory in KiB.
    pub mem_total_kib: u64,
    /// Memory available for new work in KiB.
    pub mem_available_kib: u64,
    /// The board's model (`/tmp/sysinfo/model` or the device tree: `TP-Link Archer C7 v5`);
    /// empty when unknown (and in facts an older server kept).
    pub model: String,
    /// Whether the CPU runs big-endian (false in facts an older server kept).
    pub big_endian: bool,
    /// Size of the writable flash (the overlay on OpenWrt) in KiB; 0 when unknown (and in facts
    /// an older server kept).
    pub flash_total_kib: u64,
    /// Free space on the writable flash in KiB.
    pub flash_free_kib: u64,
}

/// Facts as an agent reported them, made safe: control characters escaped and each text cut
/// to [`sanitize::FIELD_MAX`](crate::sanitize::FIELD_MAX) characters.
pub fn safe_facts(f: &otto_proto::HostFacts<'_>) -> Facts {
    let safe = |text: &str| crate::sanitize::field(text, crate::sanitize::FIELD_MAX);
    Facts {
        hostname: safe(f.hostname),
        kernel_name: safe(f.kernel_name),
        kernel_version: safe(f.kernel_version),
        arch: safe(f.arch),
        distribution_name: safe(f.distribution_name),
        distribution_version: safe(f.distribution_version),
        uptime_secs: f.uptime_secs,
        load_centi: f.load_centi,
        mem_total_kib: f.mem_total_kib,
        mem_available_kib: f.mem_available_kib,
        model: safe(f.model),
        big_endian: f.big_endian,
        flash_total_kib: f.flash_total_kib,
        flash_free_kib: f.flash_free_kib,
    }
}

/// What can be said of a host at a glance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum HostState {
    /// Enabled, and its last heartbeat was answered.
    Reachable,
    /// Enabled, and its last heartbeat failed.
    Unreachable,
    /// Enabled, and never tried yet.
    Unknown,
    /// Its agent presented a key waiting for approval.
    Pending,
    /// Left out of every action.
    Disabled,
}

/// Which hosts a page of the store holds ([`crate::store::HostStore::host_page`]); each
/// filter given must hold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostFilter {
    /// Those whose name comes after this one (bytewise).
    pub after: Option<String>,
    /// Those whose name contains this (letter case counts).
    pub name: Option<String>,
    /// The members of this group.
    pub group: Option<String>,
    /// Those in this state.
    pub state: Option<HostState>,
}

/// One managed host.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Host {
    /// Its unique name.
    pub name: String,
    /// Address or DNS name the server dials.
    pub address: String,
    /// The agent's SSH port.
    pub port: u16,
    /// Disabled hosts are skipped by every action.
    pub enabled: bool,
    /// Its agent key.
    pub trust: Trust,
    /// The groups it belongs to.
    pub groups: Vec<String>,
    /// Heartbeat state.
    pub status: HostStatus,
}

#[cfg(test)]
impl Host {
    /// An enabled host in `groups`, no key known, never heard from.
    pub fn example(name: &str, address: &str, port: u16, groups: &[&str]) -> Host {
        Host {
            name: name.into(),
            address: address.into(),
            port,
            enabled: true,
            trust: Trust::default(),
            groups: groups.iter().map(|g| g.to_string()).collect(),
            status: HostStatus::default(),
        }
    }
}

/// A new host.
#[derive(Debug, Clone)]
pub struct NewHost {
    /// Unique name.
    pub name: String,
    /// Address.
    pub address: String,
    /// Port.
    pub port: u16,
    /// The agent key, if known.
    pub agent_key: Option<String>,
    /// Pin on first contact when no key is given.
    pub pin_on_first_contact: bool,
}

/// A group with its members and scripts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Group {
    /// Its name.
    pub name: String,
    /// Its hosts.
    pub hosts: Vec<String>,
    /// Its scripts.
    pub scripts: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_facts_are_the_fields_of_the_facts_with_their_types() {
        let facts = serde_json::to_value(Facts {
            load_centi: [1, 2, 3],
            ..Facts::default()
        })
        .unwrap();
        let schema =
            serde_json::to_value(<FactsSchema as utoipa::PartialSchema>::schema()).unwrap();
        let properties = schema["properties"].as_object().unwrap();
        let fields = facts.as_object().unwrap();
        let mut documented: Vec<&String> = properties.keys().collect();
        let mut served: Vec<&String> = fields.keys().collect();
        documented.sort();
        served.sort();
        assert_eq!(documented, served);
        for (name, value) in fields {
            let kind = match value {
                serde_json::Value::String(_) => "string",
                serde_json::Value::Number(_) => "integer",
                serde_json::Value::Bool(_) => "boolean",
                serde_json::Value::Array(_) => "array",
                other => panic!("{name}: {other}"),
            };
            let property = &properties[name];
            assert_eq!(property["type"], kind, "{name}: {property}");
            assert!(property["description"].is_string(), "{name}: {property}");
        }
        // Every field is in every answer.
        assert_eq!(schema["required"].as_array().unwrap().len(), fields.len());
        assert_eq!(properties["load_centi"]["items"]["type"], "integer");
    }

    #[test]
    fn times_serialize_as_rfc3339_in_utc_to_the_millisecond() {
        let at = |ms: Option<i64>| {
            let status = HostStatus {
                reachable: None,
                last_seen: ms,
                ..HostStatus::default()
            };
            serde_json::to_value(&status).unwrap()["last_seen"].clone()
        };
        assert_eq!(at(Some(1_795_000_000_123)), "2026-11-18T11:06:40.123Z");
        assert_eq!(at(Some(0)), "1970-01-01T00:00:00.000Z");
        assert_eq!(at(None), serde_json::Value::Null);
        // Out of range (a corrupt database): the latest time jiff has.
        assert_eq!(at(Some(i64::MAX)), "9999-12-30T22:00:00.999Z");
    }
}
