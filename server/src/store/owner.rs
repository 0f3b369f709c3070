//! The process that owns a run: its pid, its start time (so a reused pid is not mistaken for
//! it) and the boot it ran in. Recorded with each run, so that a run whose server process died
//! can be told from one still going.

use std::fmt;

/// A process, identified across pid reuse and reboots.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    pid: u32,
    /// Clock ticks after boot at which the process started (`/proc/PID/stat`, field 22).
    start: u64,
    boot: String,
}

/// Whether an owner is still running.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Liveness {
    /// The very process is running.
    Alive,
    /// It has ended (or the machine rebooted since).
    Gone,
    /// This machine cannot tell (no `/proc`).
    Unknown,
}

impl Owner {
    /// This process, if `/proc` tells what it is.
    pub fn current() -> Option<Owner> {
        Some(Owner {
            pid: std::process::id(),
            start: start_time(&std::fs::read_to_string("/proc/self/stat").ok()?)?,
            boot: boot_id()?,
        })
    }

    /// Reads the form [`Owner`]'s `Display` writes; None if it is not that.
    pub fn parse(text: &str) -> Option<Owner> {
        let mut parts = text.splitn(3, ':');
        let pid = parts.next()?.parse().ok()?;
        let start = parts.next()?.parse().ok()?;
        let boot = parts.next().filter(|b| !b.is_empty())?.to_string();
        Some(Owner { pid, start, boot })
    }

    /// Whether this process still runs, as far as this machine can see.
    pub fn liveness(&self) -> Liveness {
        let Some(boot) = boot_id() else {
            return Liveness::Unknown;
        };
        if boot != self.boot {
            return Liveness::Gone;
        }
        match std::fs::read_to_string(format!("/proc/{}/stat", self.pid)) {
            Ok(stat) if start_time(&stat) == Some(self.start) => Liveness::Alive,
            Ok(_) => Liveness::Gone,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Liveness::Gone,
            Err(_) => Liveness::Unknown,
        }
    }
}

impl fmt::Display for Owner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.pid, self.start, self.boot)
    }
}

fn boot_id() -> Option<String> {
    let id = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").ok()?;
    Some(id.trim().to_string()).filter(|id| !id.is_empty())
}

/// The start time in a `/proc/PID/stat` line: field 22, counted after the command name, which
/// is in parentheses and may itself contain spaces and parentheses.
fn start_time(stat: &str) -> Option<u64> {
    let (_, rest) = stat.rsplit_once(')')?;
    // `rest` starts with field 3 (the state); field 22 is the 20th after the name.
    rest.split_whitespace().nth(19)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_start_time_is_read_past_a_strange_command_name() {
        let stat = "42 (a) b) c) S 1 42 42 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 1000 50";
        assert_eq!(start_time(stat), Some(987654));
        assert_eq!(start_time("42 (x) S 1"), None);
        assert_eq!(start_time("garbage"), None);
    }

    #[test]
    fn owners_round_trip_and_bad_text_is_refused() {
        let owner = Owner {
            pid: 7,
            start: 99,
            boot: "b-1".into(),
        };
        assert_eq!(Owner::parse(&owner.to_string()), Some(owner));
        for bad in ["", "7", "7:99", "7:99:", "x:99:b", "7:-1:b"] {
            assert_eq!(Owner::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn this_process_is_alive_and_an_ended_child_is_gone() {
        let me = Owner::current().expect("this test needs Linux /proc");
        assert_eq!(me.liveness(), Liveness::Alive);
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let pid = child.id();
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
        let owner = Owner {
            pid,
            start: start_time(&stat).unwrap(),
            boot: me.boot.clone(),
        };
        assert_eq!(owner.liveness(), Liveness::Alive);
        child.kill().unwrap();
        child.wait().unwrap();
        assert_eq!(owner.liveness(), Liveness::Gone);
        // Same pid, another start: a reused pid is not the owner.
        let reused = Owner {
            start: me.start + 1,
            ..me.clone()
        };
        assert_eq!(reused.liveness(), Liveness::Gone);
        let rebooted = Owner {
            boot: "another boot".into(),
            ..me
        };
        assert_eq!(rebooted.liveness(), Liveness::Gone);
    }
}
