//! The agent's packages made by `ci/build-agents.sh` (ci/packages.py) in `dist/packages/`:
//! every OpenWrt `.ipk` unpacked with `tar` and checked; the amd64 `.deb` read with `dpkg-deb`,
//! then really installed, upgraded, removed and purged with `dpkg` (the test runs as root and
//! puts the machine back as it found it, also when it fails).
//!
//! They need the cross-built agents, so `ci/cross-check.sh` runs them after the builds and
//! `ci/test.sh`'s host step leaves them out; without `dist/packages/` they say so and pass, or
//! fail under `OTTO_REQUIRE_TOOLS=1` ([`tool_missing`]). Debian has no `opkg`, so the `.ipk`s are
//! checked by unpacking, not installed.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::harness::tool_missing;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// The packages of `dist/packages/` whose name ends with `suffix`, or none (said by
/// `tool_missing`).
fn packages(suffix: &str) -> Vec<PathBuf> {
    let dir = workspace().join("dist/packages");
    let mut found: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.to_string_lossy().ends_with(suffix))
                .collect()
        })
        .unwrap_or_default();
    found.sort();
    if found.is_empty() {
        tool_missing(
            &format!("no {suffix} package in {}", dir.display()),
            "ci/build-agents.sh makes them (ci/cross-check.sh runs it before this test)",
        );
    }
    found
}

fn run(program: &str, args: &[&str], dir: &Path) -> Output {
    let out = Command::new(program)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
    assert!(
        out.status.success(),
        "{program} {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The value of `field` in a control file.
fn field<'a>(control: &'a str, field: &str) -> Option<&'a str> {
    control
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .map(str::trim)
}

/// The ELF machine (`e_machine`) and byte order (little: true) of an OpenWrt architecture.
fn machine_of(arch: &str) -> (u16, bool) {
    match arch {
        "mips_24kc" => (8, false),
        "mipsel_24kc" => (8, true),
        a if a.starts_with("arm_") => (40, true),
        a if a.starts_with("aarch64_") => (183, true),
        "x86_64" => (62, true),
        other => panic!("an architecture the test does not know: {other}"),
    }
}

/// The ELF machine and byte order of `binary`.
fn elf_machine(binary: &[u8]) -> (u16, bool) {
    assert_eq!(&binary[..4], b"\x7fELF", "not an ELF file");
    let little = match binary[5] {
        1 => true,
        2 => false,
        other => panic!("EI_DATA {other}"),
    };
    let bytes = [binary[18], binary[19]];
    let machine = if little {
        u16::from_le_bytes(bytes)
    } else {
        u16::from_be_bytes(bytes)
    };
    (machine, little)
}

/// The workspace's version (`[workspace.package]` of Cargo.toml).
fn workspace_version() -> String {
    env!("CARGO_PKG_VERSION").to_string()
}

#[test]
fn every_ipk_is_openwrts_format_with_the_agent_for_its_architecture() {
    let ipks = packages(".ipk");
    let init = std::fs::read(workspace().join("packaging/openwrt/otto-agent.init")).unwrap();
    for ipk in &ipks {
        let name = ipk.file_name().unwrap().to_string_lossy().into_owned();
        let arch = name
            .strip_suffix(".ipk")
            .and_then(|n| n.strip_prefix(&format!("otto-agent_{}_", workspace_version())))
            .unwrap_or_else(|| panic!("{name} is not otto-agent_VERSION_ARCH.ipk"));
        let dir = tempfile::tempdir().unwrap();
        let here = dir.path();
        let ipk = ipk.to_string_lossy();
        // The outer archive: a gzip'd tar of exactly the three members, owned by root.
        let listing = stdout(&run("tar", &["-tzvf", &ipk], here));
        let mut members: Vec<&str> = listing
            .lines()
            .map(|l| l.split_whitespace().last().unwrap())
            .collect();
        members.sort_unstable();
        assert_eq!(
            members,
            ["./control.tar.gz", "./data.tar.gz", "./debian-binary"],
            "{name}"
        );
        assert!(
            listing.lines().all(|l| l.contains(" root/root ")),
            "{listing}"
        );
        run("tar", &["-xzf", &ipk], here);
        assert_eq!(std::fs::read(here.join("debian-binary")).unwrap(), b"2.0\n");
        std::fs::create_dir(here.join("control")).unwrap();
        std::fs::create_dir(here.join("data")).unwrap();
        run("tar", &["-xzf", "../control.tar.gz"], &here.join("control"));
        run("tar", &["-xzf", "../data.tar.gz"], &here.join("data"));

        let control = std::fs::read_to_string(here.join("control/control")).unwrap();
        assert_eq!(field(&control, "Package"), Some("otto-agent"), "{control}");
        assert_eq!(
            field(&control, "Version"),
            Some(&*workspace_version()),
            "{control}"
        );
        assert_eq!(field(&control, "Architecture"), Some(arch), "{control}");
        for f in ["Maintainer", "License", "Section", "Description"] {
            assert!(
                field(&control, f).is_some_and(|v| !v.is_empty()),
                "{f}: {control}"
            );
        }
        let installed: u64 = field(&control, "Installed-Size").unwrap().parse().unwrap();
        assert_eq!(
            std::fs::read_to_string(here.join("control/conffiles")).unwrap(),
            "/etc/otto/agent.conf\n"
        );
        for script in ["postinst", "prerm"] {
            let text = std::fs::read_to_string(here.join("control").join(script)).unwrap();
            assert!(
                text.contains("[ -z \"$IPKG_INSTROOT\" ]"),
                "{script}: {text}"
            );
            run("sh", &["-n", &format!("control/{script}")], here);
        }
        let postinst = std::fs::read_to_string(here.join("control/postinst")).unwrap();
        assert!(postinst.contains("otto-agent trust"), "{postinst}");
        // Building a firmware image (IPKG_INSTROOT set), the scripts touch nothing.
        for script in ["postinst", "prerm"] {
            let out = Command::new("sh")
                .arg(here.join("control").join(script))
                .env("IPKG_INSTROOT", here.join("image"))
                .output()
                .unwrap();
            assert!(out.status.success(), "{script}");
            assert!(out.stdout.is_empty() && out.stderr.is_empty(), "{script}");
        }

        // The data: the agent for this architecture, the repository's init script, a
        // configuration only root reads.
        let binary = std::fs::read(here.join("data/usr/bin/otto-agent")).unwrap();
        assert_eq!(elf_machine(&binary), machine_of(arch), "{name}");
        assert_eq!(
            std::fs::read(here.join("data/etc/init.d/otto-agent")).unwrap(),
            init
        );
        let conf = std::fs::read_to_string(here.join("data/etc/otto/agent.conf")).unwrap();
        assert!(conf.contains("\nlisten = "), "{conf}");
        let data = stdout(&run("tar", &["-tzvf", "data.tar.gz"], here));
        for (mode, path) in [
            ("-rwxr-xr-x", "./usr/bin/otto-agent"),
            ("-rwxr-xr-x", "./etc/init.d/otto-agent"),
            ("-rw-------", "./etc/otto/agent.conf"),
            ("drwx------", "./etc/otto/"),
        ] {
            assert!(
                data.lines()
                    .any(|l| l.starts_with(mode) && l.ends_with(&format!(" {path}"))),
                "{path} {mode}: {data}"
            );
        }
        assert!(installed >= binary.len() as u64, "{control}");
        println!(
            "{name}: {} bytes, agent {} bytes",
            std::fs::metadata(&*ipk).unwrap().len(),
            binary.len()
        );
    }
}

/// Purges the package when dropped: the machine is left as the test found it.
struct Purge;

impl Drop for Purge {
    fn drop(&mut self) {
        let _ = Command::new("dpkg").args(["-P", "otto-agent"]).output();
    }
}

fn dpkg(args: &[&str]) -> Output {
    run("dpkg", args, Path::new("/"))
}

#[test]
fn the_deb_installs_upgrades_keeps_its_configuration_and_purges() {
    let Some(deb) = packages("_amd64.deb").into_iter().next() else {
        return;
    };
    if Command::new("dpkg").arg("--version").output().is_err() {
        return tool_missing("no dpkg", "a Debian machine has it");
    }
    let installed = Command::new("dpkg-query")
        .args(["-W", "-f", "${Status}", "otto-agent"])
        .output()
        .unwrap();
    if stdout(&installed).contains("installed") {
        return tool_missing(
            "otto-agent is installed on this machine already",
            "the test installs and purges it: remove it first (dpkg -P otto-agent)",
        );
    }
    if ["/etc/otto", "/usr/bin/otto-agent"]
        .iter()
        .any(|p| Path::new(p).exists())
    {
        return tool_missing(
            "/etc/otto or /usr/bin/otto-agent exists on this machine",
            "the test installs and purges the package there: run it on a machine without them",
        );
    }
    let deb = deb.to_string_lossy().into_owned();
    let info = stdout(&dpkg(&["--info", &deb]));
    for want in [
        "Package: otto-agent",
        "Architecture: amd64",
        &format!("Version: {}", workspace_version()),
        "Section: admin",
        "Priority: optional",
        "Installed-Size: ",
        "Maintainer: ",
        "conffiles",
        "postinst",
        "prerm",
        "postrm",
    ] {
        assert!(info.contains(want), "{want}: {info}");
    }
    let contents = stdout(&dpkg(&["--contents", &deb]));
    for want in [
        "-rwxr-xr-x root/root",
        "./usr/bin/otto-agent",
        "./lib/systemd/system/otto-agent.service",
        "-rw------- root/root",
        "./etc/otto/agent.conf",
    ] {
        assert!(contents.contains(want), "{want}: {contents}");
    }

    let _purge = Purge;
    dpkg(&["-i", &deb]);
    let version = run("/usr/bin/otto-agent", &["--version"], Path::new("/"));
    assert!(
        stdout(&version).contains(&workspace_version()),
        "{}",
        stdout(&version)
    );
    let unit = std::fs::read_to_string("/lib/systemd/system/otto-agent.service").unwrap();
    assert!(
        unit.contains("ExecStart=/usr/bin/otto-agent --config /etc/otto/agent.conf run"),
        "{unit}"
    );
    // The administrator's change to the configuration survives an upgrade.
    let conf = Path::new("/etc/otto/agent.conf");
    let edited = format!(
        "{}log_level = debug\n",
        std::fs::read_to_string(conf).unwrap()
    );
    std::fs::write(conf, &edited).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let tree = dir.path().join("tree");
    let tree_s = tree.to_string_lossy().into_owned();
    run("dpkg-deb", &["-R", &deb, &tree_s], dir.path());
    let control = tree.join("DEBIAN/control");
    let newer = format!("{}+test1", workspace_version());
    let text = std::fs::read_to_string(&control).unwrap().replace(
        &format!("Version: {}\n", workspace_version()),
        &format!("Version: {newer}\n"),
    );
    std::fs::write(&control, text).unwrap();
    let second = dir.path().join("second.deb").to_string_lossy().into_owned();
    run(
        "dpkg-deb",
        &["--root-owner-group", "--build", &tree_s, &second],
        dir.path(),
    );
    dpkg(&["-i", &second]);
    let status = stdout(&run(
        "dpkg-query",
        &["-W", "-f", "${Version}", "otto-agent"],
        Path::new("/"),
    ));
    assert_eq!(status, newer);
    assert_eq!(std::fs::read_to_string(conf).unwrap(), edited);

    // Removing keeps the configuration; purging removes it, the key directory with it.
    dpkg(&["-r", "otto-agent"]);
    assert!(!Path::new("/usr/bin/otto-agent").exists());
    assert!(!Path::new("/lib/systemd/system/otto-agent.service").exists());
    assert_eq!(std::fs::read_to_string(conf).unwrap(), edited);
    dpkg(&["-P", "otto-agent"]);
    assert!(!Path::new("/etc/otto").exists());
    let gone = Command::new("dpkg-query")
        .args(["-W", "-f", "${Status}", "otto-agent"])
        .output()
        .unwrap();
    assert!(!stdout(&gone).contains("installed"), "{}", stdout(&gone));
    println!(
        "{}: {} bytes",
        Path::new(&deb).file_name().unwrap().to_string_lossy(),
        std::fs::metadata(&deb).unwrap().len()
    );
}
