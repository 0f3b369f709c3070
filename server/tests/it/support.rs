//! Shared by the server's tests.

use std::path::PathBuf;

/// The `otto-agent` binary of this build (built first when it is missing).
pub fn agent_bin() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .unwrap()
        .to_path_buf();
    let bin = profile_dir.join("otto-agent");
    if !bin.is_file() {
        let status = std::process::Command::new(env!("CARGO"))
            .args(["build", "-p", "otto-agent", "--target-dir"])
            .arg(profile_dir.join("agent-for-tests"))
            .status()
            .unwrap();
        assert!(status.success());
        return profile_dir.join("agent-for-tests/debug/otto-agent");
    }
    bin
}
