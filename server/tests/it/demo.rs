//! README's main command: `otto-server demo` drives a real agent through every step.

use std::process::Command;

use crate::harness::agent_bin;

#[test]
fn the_demo_runs_every_step_against_a_real_agent() {
    let exe = std::path::PathBuf::from(env!("CARGO_BIN_EXE_otto-server"));
    let agent = agent_bin();
    let out = Command::new(&exe)
        .args(["demo", "--agent-bin"])
        .arg(&agent)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for expected in [
        "demo-router | step 3 of 3",
        "demo-router ! a warning on stderr",
        "exit 0",
        "mode 640 — verified",
        "the script ended: cancelled",
        "the old server key is refused",
        "token: ********",
        "secret in stored output: no",
        // The event log, as a table whose kinds' column is as wide as its longest,
        // `script-changed`: every change the demo made, and what the server saw.
        "script-changed  script hello saved",
        "env-changed     DEMO_TOKEN set (host demo-router, secret)",
        "run-cancelled   run 2: command: echo sleeping; sleep 300",
        "run-finished    run 2: cancelled",
        "key-rotated",
        "All steps succeeded",
    ] {
        assert!(
            stdout.contains(expected),
            "missing {expected:?} in:\n{stdout}"
        );
    }
    // The host was added as any other: recorded, its agent's key given.
    assert!(
        stdout
            .lines()
            .any(|l| l.contains("host-added      127.0.0.1:") && l.ends_with(", agent key given")),
        "no host-added event in:\n{stdout}"
    );
    // Its working directory is gone.
    let dir = stdout
        .lines()
        .find_map(|l| l.strip_prefix("  working directory  "))
        .unwrap();
    let dir = dir.split(" (").next().unwrap();
    assert!(!std::path::Path::new(dir).exists());
}

#[test]
fn a_missing_agent_binary_is_a_clear_error() {
    let out = Command::new(env!("CARGO_BIN_EXE_otto-server"))
        .args(["demo", "--agent-bin", "/nonexistent/otto-agent"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("no otto-agent binary at /nonexistent/otto-agent")
    );
}
