//! [`Facts`]: the owned form of [`HostFacts`], for the agent gathering them and the server
//! keeping them (feature `alloc`).

use alloc::string::String;

use crate::message::HostFacts;

/// Facts about an agent's host, owned: the fields of [`HostFacts`] with `String` text.
/// [`Facts::as_message`] borrows them back for encoding.
/// With the feature `alloc-serde` it is `Serialize` and `Deserialize`, with the same field names.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[cfg_attr(feature = "alloc-serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Facts {
    /// The host name.
    pub hostname: String,
    /// Kernel name (`uname -s`).
    pub kernel_name: String,
    /// Kernel version (`uname -r`).
    pub kernel_version: String,
    /// Machine architecture (`uname -m`).
    pub arch: String,
    /// Distribution name (e.g. `OpenWrt`, `Debian GNU/Linux`).
    pub distribution_name: String,
    /// Distribution version.
    pub distribution_version: String,
    /// Seconds since boot.
    pub uptime_secs: u64,
    /// The 1, 5 and 15 minute load averages, times 100.
    pub load_centi: [u32; 3],
    /// Total memory in KiB.
    pub mem_total_kib: u64,
    /// Memory available for new work in KiB.
    pub mem_available_kib: u64,
    /// The board's model; empty when unknown.
    #[cfg_attr(feature = "alloc-serde", serde(default))]
    pub model: String,
    /// Whether the CPU runs big-endian.
    #[cfg_attr(feature = "alloc-serde", serde(default))]
    pub big_endian: bool,
    /// Size of the writable flash in KiB.
    #[cfg_attr(feature = "alloc-serde", serde(default))]
    pub flash_total_kib: u64,
    /// Free space on the writable flash in KiB.
    #[cfg_attr(feature = "alloc-serde", serde(default))]
    pub flash_free_kib: u64,
}

impl Facts {
    /// The facts as the protocol's borrowed body, to encode.
    pub fn as_message(&self) -> HostFacts<'_> {
        HostFacts {
            hostname: &self.hostname,
            kernel_name: &self.kernel_name,
            kernel_version: &self.kernel_version,
            arch: &self.arch,
            distribution_name: &self.distribution_name,
            distribution_version: &self.distribution_version,
            uptime_secs: self.uptime_secs,
            load_centi: self.load_centi,
            mem_total_kib: self.mem_total_kib,
            mem_available_kib: self.mem_available_kib,
            model: &self.model,
            big_endian: self.big_endian,
            flash_total_kib: self.flash_total_kib,
            flash_free_kib: self.flash_free_kib,
        }
    }
}

/// A copy of the text as it is: a receiver that shows or stores facts from the network may
/// have to make them safe first.
impl From<&HostFacts<'_>> for Facts {
    fn from(f: &HostFacts<'_>) -> Facts {
        Facts {
            hostname: f.hostname.into(),
            kernel_name: f.kernel_name.into(),
            kernel_version: f.kernel_version.into(),
            arch: f.arch.into(),
            distribution_name: f.distribution_name.into(),
            distribution_version: f.distribution_version.into(),
            uptime_secs: f.uptime_secs,
            load_centi: f.load_centi,
            mem_total_kib: f.mem_total_kib,
            mem_available_kib: f.mem_available_kib,
            model: f.model.into(),
            big_endian: f.big_endian,
            flash_total_kib: f.flash_total_kib,
            flash_free_kib: f.flash_free_kib,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owned_facts_borrow_back_as_the_same_message() {
        let wire = HostFacts {
            hostname: "gw",
            kernel_name: "Linux",
            kernel_version: "6.6.73",
            arch: "mips",
            distribution_name: "OpenWrt",
            distribution_version: "24.10.0",
            uptime_secs: 1,
            load_centi: [1, 2, 3],
            mem_total_kib: 4,
            mem_available_kib: 5,
            model: "TP-Link Archer C7 v5",
            big_endian: true,
            flash_total_kib: 6,
            flash_free_kib: 7,
        };
        let owned = Facts::from(&wire);
        assert_eq!(owned.distribution_name, "OpenWrt");
        assert_eq!(owned.as_message(), wire);
    }
}
