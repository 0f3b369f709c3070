//! Facts about the host for heartbeats: the kernel from `uname`, the distribution from
//! `/etc/openwrt_release` or `/etc/os-release`, uptime, load and memory from `/proc`, the board's
//! model, and the size and free space of the writable flash from statvfs(3). The
//! parsers are pure; [`gather`] does the reading. A file that is missing or odd gives an empty or
//! zero fact, never an error: a heartbeat must always be answered.

use otto_proto::Facts;

/// Reads every fact from the running system.
pub fn gather() -> Facts {
    let read = |path: &str| std::fs::read_to_string(path).unwrap_or_default();
    let (kernel_name, hostname, kernel_version, arch) = uname();
    let (distribution_name, distribution_version) =
        match std::fs::read_to_string("/etc/openwrt_release") {
            Ok(text) => openwrt_release(&text),
            Err(_) => os_release(&read("/etc/os-release")),
        };
    let (mem_total_kib, mem_available_kib) = meminfo(&read("/proc/meminfo"));
    let (flash_total_kib, flash_free_kib) = flash();
    Facts {
        hostname,
        kernel_name,
        kernel_version,
        arch,
        distribution_name,
        distribution_version,
        uptime_secs: uptime(&read("/proc/uptime")),
        load_centi: loadavg(&read("/proc/loadavg")),
        mem_total_kib,
        mem_available_kib,
        model: model(),
        big_endian: cfg!(target_endian = "big"),
        flash_total_kib,
        flash_free_kib,
    }
}

/// `(size, free)` in KiB of the writable flash: OpenWrt's `/overlay` where it exists, else the
/// file system of `/`; zeros if statvfs fails.
fn flash() -> (u64, u64) {
    let path: &std::ffi::CStr = if std::path::Path::new("/overlay").is_dir() {
        c"/overlay"
    } else {
        c"/"
    };
    space_kib(path).unwrap_or((0, 0))
}

/// `(size, free)` in KiB of the file system of `path` (free: what an unprivileged process may
/// use), from statvfs(3); `None` if it fails.
pub fn space_kib(path: &std::ffi::CStr) -> Option<(u64, u64)> {
    // SAFETY: `statvfs` is plain data, so all-zero is a valid value; statvfs only writes into it.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `path` is NUL-terminated and `st` is a valid, writable statvfs.
    if unsafe { libc::statvfs(path.as_ptr(), &mut st) } != 0 {
        return None;
    }
    let kib = |blocks: u64| blocks.saturating_mul(st.f_frsize as u64) / 1024;
    #[allow(clippy::useless_conversion)] // fsblkcnt_t is u32 on some 32-bit targets
    Some((kib(st.f_blocks.into()), kib(st.f_bavail.into())))
}

/// The board's model: OpenWrt's `/tmp/sysinfo/model`, else the device tree's;
/// empty when neither exists.
fn model() -> String {
    ["/tmp/sysinfo/model", "/proc/device-tree/model"]
        .into_iter()
        .find_map(|path| std::fs::read(path).ok())
        .map(|bytes| model_text(&bytes))
        .unwrap_or_default()
}

/// A model file's text: up to its first NUL (the device tree's ends with one), trimmed.
pub fn model_text(bytes: &[u8]) -> String {
    let text = bytes.split(|&b| b == 0).next().unwrap_or_default();
    String::from_utf8_lossy(text).trim().to_string()
}

/// `(sysname, nodename, release, machine)` from uname(2).
fn uname() -> (String, String, String, String) {
    // SAFETY: `utsname` is plain data, so all-zero is a valid value; uname only writes into it.
    let mut uts: libc::utsname = unsafe { std::mem::zeroed() };
    // SAFETY: `uts` is a valid, writable utsname.
    if unsafe { libc::uname(&mut uts) } != 0 {
        return Default::default();
    }
    let field = |chars: &[libc::c_char]| {
        let bytes: Vec<u8> = chars
            .iter()
            .take_while(|&&c| c != 0)
            .map(|&c| c as u8)
            .collect();
        String::from_utf8_lossy(&bytes).into_owned()
    };
    (
        field(&uts.sysname),
        field(&uts.nodename),
        field(&uts.release),
        field(&uts.machine),
    )
}

/// Value of `KEY=value` in a shell-style file, quotes removed.
fn shell_var(text: &str, key: &str) -> Option<String> {
    text.lines().find_map(|line| {
        let (k, v) = line.trim().split_once('=')?;
        (k.trim() == key).then(|| v.trim().trim_matches(|c| c == '"' || c == '\'').to_string())
    })
}

/// `(name, version)` from `/etc/os-release`.
pub fn os_release(text: &str) -> (String, String) {
    let name = shell_var(text, "NAME").unwrap_or_default();
    let version = shell_var(text, "VERSION_ID")
        .or_else(|| shell_var(text, "VERSION"))
        .unwrap_or_default();
    (name, version)
}

/// `(name, version)` from OpenWrt's `/etc/openwrt_release`.
pub fn openwrt_release(text: &str) -> (String, String) {
    (
        shell_var(text, "DISTRIB_ID").unwrap_or_else(|| "OpenWrt".into()),
        shell_var(text, "DISTRIB_RELEASE").unwrap_or_default(),
    )
}

/// Whole seconds from `/proc/uptime`.
pub fn uptime(text: &str) -> u64 {
    text.split_whitespace()
        .next()
        .and_then(|s| s.split('.').next())
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

/// The three load averages × 100 from `/proc/loadavg` (parsed as decimal text, no floats).
pub fn loadavg(text: &str) -> [u32; 3] {
    let mut out = [0; 3];
    for (slot, field) in out.iter_mut().zip(text.split_whitespace()) {
        let (whole, frac) = field.split_once('.').unwrap_or((field, "0"));
        let frac: String = frac.chars().chain("00".chars()).take(2).collect();
        *slot = whole
            .parse::<u32>()
            .unwrap_or(0)
            .saturating_mul(100)
            .saturating_add(frac.parse().unwrap_or(0));
    }
    out
}

/// `(MemTotal, MemAvailable)` in KiB from `/proc/meminfo` (MemFree on kernels without
/// MemAvailable).
pub fn meminfo(text: &str) -> (u64, u64) {
    let field = |name: &str| {
        text.lines().find_map(|line| {
            let rest = line.strip_prefix(name)?.strip_prefix(':')?;
            rest.split_whitespace().next()?.parse::<u64>().ok()
        })
    };
    (
        field("MemTotal").unwrap_or(0),
        field("MemAvailable")
            .or_else(|| field("MemFree"))
            .unwrap_or(0),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_distribution_files() {
        let os = "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nNAME=\"Debian GNU/Linux\"\nVERSION_ID=\"12\"\n";
        assert_eq!(os_release(os), ("Debian GNU/Linux".into(), "12".into()));
        let owrt =
            "DISTRIB_ID='OpenWrt'\nDISTRIB_RELEASE='23.05.5'\nDISTRIB_TARGET='ath79/generic'\n";
        assert_eq!(openwrt_release(owrt), ("OpenWrt".into(), "23.05.5".into()));
        assert_eq!(os_release(""), (String::new(), String::new()));
    }

    #[test]
    fn parses_proc_files() {
        assert_eq!(uptime("12345.67 2345.10\n"), 12345);
        assert_eq!(uptime("garbage"), 0);
        assert_eq!(loadavg("0.52 1.5 12.07 2/123 4567\n"), [52, 150, 1207]);
        assert_eq!(loadavg(""), [0, 0, 0]);
        let mem = "MemTotal:         124000 kB\nMemFree:           20000 kB\nMemAvailable:      80000 kB\n";
        assert_eq!(meminfo(mem), (124000, 80000));
        assert_eq!(meminfo("MemTotal: 64 kB\nMemFree: 8 kB\n"), (64, 8));
    }

    #[test]
    fn reads_board_models_of_both_kinds() {
        assert_eq!(
            model_text(b"TP-Link Archer C7 v5\n"),
            "TP-Link Archer C7 v5"
        );
        assert_eq!(
            model_text(b"Raspberry Pi 4 Model B Rev 1.4\0"),
            "Raspberry Pi 4 Model B Rev 1.4"
        );
        assert_eq!(model_text(b""), "");
    }

    #[test]
    fn gathers_this_hosts_facts() {
        let facts = gather();
        assert_eq!(facts.kernel_name, "Linux");
        assert!(
            facts.arch.starts_with(std::env::consts::ARCH),
            "{} vs {}",
            facts.arch,
            std::env::consts::ARCH
        );
        assert!(facts.mem_total_kib > 0 && facts.uptime_secs > 0);
        assert!(facts.flash_total_kib > 0 && facts.flash_free_kib <= facts.flash_total_kib);
        assert_eq!(facts.big_endian, cfg!(target_endian = "big"));
        assert!(!facts.hostname.is_empty());
    }
}
