//! Running scripts: output streaming, environment, timeouts, cancel, concurrency.

// Helpers outside #[test] functions may unwrap and index too: a failing test stops there.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::time::Duration;

use common::{Agent, finish_run, outcome, start_script};
use otto_proto::{ActionResult, CancelAction, Message, ScriptTimeout};

#[tokio::test]
async fn output_streams_are_kept_apart_and_the_exit_code_is_reported() {
    let agent = Agent::start("");
    let conn = agent.connect().await;
    let mut ch = start_script(
        &conn,
        1,
        "echo out1; echo err1 >&2; echo out2; exit 3\n",
        &[],
        ScriptTimeout::AgentDefault,
    )
    .await;
    let run = finish_run(&mut ch, 1).await;
    assert_eq!(run.stdout, b"out1\nout2\n");
    assert_eq!(run.stderr, b"err1\n");
    let Message::ActionResult(ActionResult {
        outcome,
        stdout_len,
        stderr_len,
        ..
    }) = run.result.message()
    else {
        panic!()
    };
    assert_eq!(outcome, otto_proto::Outcome::Exited { code: 3 });
    assert_eq!((stdout_len, stderr_len), (10, 5));
    assert!(ch.until_closed().await.is_empty());
    // The script file is gone.
    assert!(common::list(&agent.dir.path().join("tmp")).is_empty());
}

#[tokio::test]
async fn the_environment_is_exactly_what_was_sent_plus_path() {
    let agent = Agent::start("path = /usr/bin:/bin");
    let conn = agent.connect().await;
    let script = "env | sort; pwd\n";
    let mut ch = start_script(
        &conn,
        2,
        script,
        &[("OTTO_A", "1"), ("GREETING", "a=b c")],
        ScriptTimeout::AgentDefault,
    )
    .await;
    let run = finish_run(&mut ch, 2).await;
    let text = String::from_utf8(run.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let tmp = agent.dir.path().join("tmp");
    // sh itself may add PWD, SHLVL and _; nothing else from the agent's environment may leak in.
    let from_shell =
        |l: &&str| l.starts_with("PWD=") || l.starts_with("SHLVL=") || l.starts_with("_=");
    let vars: Vec<&str> = lines[..lines.len() - 1]
        .iter()
        .copied()
        .filter(|l| !from_shell(l))
        .collect();
    assert_eq!(vars, ["GREETING=a=b c", "OTTO_A=1", "PATH=/usr/bin:/bin"]);
    assert_eq!(
        lines.last().unwrap(),
        &tmp.canonicalize().unwrap().to_str().unwrap()
    );
}

#[tokio::test]
async fn a_timeout_kills_the_script() {
    let agent = Agent::start("");
    let conn = agent.connect().await;
    let mut ch = start_script(
        &conn,
        3,
        "echo started; sleep 60\n",
        &[],
        ScriptTimeout::Seconds(1),
    )
    .await;
    let run = finish_run(&mut ch, 3).await;
    assert_eq!(run.stdout, b"started\n");
    assert_eq!(outcome(&run), "TimedOut");
}

#[tokio::test]
async fn the_agent_default_timeout_applies() {
    let agent = Agent::start("script_timeout = 1");
    let conn = agent.connect().await;
    let mut ch = start_script(&conn, 4, "sleep 60\n", &[], ScriptTimeout::AgentDefault).await;
    assert_eq!(outcome(&finish_run(&mut ch, 4).await), "TimedOut");
}

fn alive(pid: i32) -> bool {
    // Signal 0 only checks; a zombie still counts as gone for this purpose.
    let status = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    !status.is_empty() && !status.contains(") Z ")
}

#[tokio::test]
async fn cancel_kills_the_script_and_its_children() {
    let agent = Agent::start("");
    let conn = agent.connect().await;
    let pids = agent.dir.path().join("pids");
    // A child that ignores SIGTERM must still die (SIGKILL after the grace period).
    let script = format!(
        "sleep 100 & echo $! > {p}; sh -c 'trap \"\" TERM; sleep 100' & echo $! >> {p}; echo ready; sleep 100\n",
        p = pids.display()
    );
    let mut ch = start_script(&conn, 10, &script, &[], ScriptTimeout::Unlimited).await;
    let first = ch.frame().await;
    assert!(
        matches!(first.message(), Message::ActionOutput(o) if o.data == b"ready\n"),
        "{first:?}"
    );
    let children: Vec<i32> = std::fs::read_to_string(&pids)
        .unwrap()
        .lines()
        .map(|l| l.parse().unwrap())
        .collect();
    assert_eq!(children.len(), 2);
    assert!(children.iter().all(|&p| alive(p)));

    let mut cancel = conn.channel().await;
    cancel
        .send(&Message::CancelAction(CancelAction {
            action: 11,
            target: 10,
        }))
        .await;
    let answer = cancel.frame().await;
    assert!(
        matches!(answer.message(), Message::ActionResult(r) if r.action == 11 && r.outcome == otto_proto::Outcome::Completed),
        "{answer:?}"
    );
    let run = finish_run(&mut ch, 10).await;
    assert_eq!(outcome(&run), "Cancelled");
    for _ in 0..100 {
        if children.iter().all(|&p| !alive(p)) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        children.iter().all(|&p| !alive(p)),
        "children survived: {children:?}"
    );

    // Cancelling something that is not running says so.
    let mut again = conn.channel().await;
    again
        .send(&Message::CancelAction(CancelAction {
            action: 12,
            target: 10,
        }))
        .await;
    assert!(
        matches!(again.frame().await.message(), Message::ActionResult(r) if matches!(r.outcome, otto_proto::Outcome::Failed { .. }))
    );
}

#[tokio::test]
async fn ten_megabytes_of_output_arrive_complete_and_in_order() {
    let agent = Agent::start("");
    let conn = agent.connect().await;
    let lines = 1_200_000u32; // 9 bytes each: 10.8 MB
    let script = format!("awk 'BEGIN {{ for (i = 0; i < {lines}; i++) printf \"%08d\\n\", i }}'\n");
    let mut ch = start_script(&conn, 20, &script, &[], ScriptTimeout::Unlimited).await;
    let run = finish_run(&mut ch, 20).await;
    assert_eq!(outcome(&run), "Exited { code: 0 }");
    assert_eq!(run.stdout.len(), lines as usize * 9);
    for (i, line) in run.stdout.chunks(9).enumerate() {
        assert_eq!(line, format!("{i:08}\n").as_bytes(), "line {i}");
    }
}

#[tokio::test]
async fn two_scripts_run_at_once_and_are_told_apart() {
    let agent = Agent::start("");
    let conn = agent.connect().await;
    let body = |name: &str| format!("for i in 1 2 3 4 5; do echo {name}$i; sleep 0.2; done\n");
    let mut a = start_script(&conn, 31, &body("a"), &[], ScriptTimeout::AgentDefault).await;
    let mut b = start_script(&conn, 32, &body("b"), &[], ScriptTimeout::AgentDefault).await;
    let (ra, rb) = tokio::join!(finish_run(&mut a, 31), finish_run(&mut b, 32));
    assert_eq!(ra.stdout, b"a1\na2\na3\na4\na5\n");
    assert_eq!(rb.stdout, b"b1\nb2\nb3\nb4\nb5\n");
}

#[tokio::test]
async fn a_running_action_id_cannot_be_reused() {
    let agent = Agent::start("");
    let conn = agent.connect().await;
    let mut first = start_script(&conn, 40, "sleep 2\n", &[], ScriptTimeout::AgentDefault).await;
    let mut second = conn.channel().await;
    second
        .send(&Message::RunScript(otto_proto::RunScript {
            action: 40,
            name: "dup",
            interpreter: "/bin/sh",
            run_as: otto_proto::Credentials::Inherit,
            working_dir: None,
            env: otto_proto::Environment::default(),
            timeout: ScriptTimeout::AgentDefault,
            script_len: 1,
        }))
        .await;
    let answer = second.frame().await;
    assert!(
        matches!(answer.message(), Message::ActionResult(r) if matches!(r.outcome, otto_proto::Outcome::Failed { error } if error.contains("already running"))),
        "{answer:?}"
    );
    assert_eq!(
        outcome(&finish_run(&mut first, 40).await),
        "Exited { code: 0 }"
    );
}

#[tokio::test]
async fn silence_brings_keepalives() {
    let agent = Agent::start("");
    let conn = agent.connect().await;
    let mut ch = start_script(
        &conn,
        50,
        "sleep 11; echo done\n",
        &[],
        ScriptTimeout::Unlimited,
    )
    .await;
    let run = finish_run(&mut ch, 50).await;
    assert!(run.keepalives >= 1);
    assert_eq!(run.stdout, b"done\n");
}

#[tokio::test]
async fn a_missing_interpreter_is_reported() {
    let agent = Agent::start("");
    let conn = agent.connect().await;
    let mut ch = conn.channel().await;
    ch.send(&Message::RunScript(otto_proto::RunScript {
        action: 60,
        name: "x",
        interpreter: "/nonexistent/sh",
        run_as: otto_proto::Credentials::Inherit,
        working_dir: None,
        env: otto_proto::Environment::default(),
        timeout: ScriptTimeout::AgentDefault,
        script_len: 5,
    }))
    .await;
    assert!(matches!(
        ch.frame().await.message(),
        Message::ReadyForData(_)
    ));
    ch.send_raw(b"true\n").await;
    let result = ch.frame().await;
    assert!(
        matches!(result.message(), Message::ActionResult(r) if matches!(r.outcome, otto_proto::Outcome::Failed { error } if error.contains("/nonexistent/sh"))),
        "{result:?}"
    );
}

/// Sends a RunScript of `body` as `uid:gid`; returns the channel.
async fn start_as(
    conn: &common::Connection,
    action: u64,
    body: &str,
    uid: u32,
    gid: u32,
) -> common::OttoChannel {
    let mut ch = conn.channel().await;
    ch.send(&Message::RunScript(otto_proto::RunScript {
        action,
        name: "as-user",
        interpreter: "/bin/sh",
        run_as: otto_proto::Credentials::Ids { uid, gid },
        working_dir: Some("/"),
        env: otto_proto::Environment::default(),
        timeout: ScriptTimeout::AgentDefault,
        script_len: body.len() as u64,
    }))
    .await;
    ch
}

#[tokio::test]
async fn a_script_runs_as_the_given_user_only_when_the_agent_is_root() {
    let agent = Agent::start("");
    let conn = agent.connect().await;
    let body = "id -u; id -g; id -G\n";
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        // Not root: the request is refused before any data is taken.
        let mut ch = start_as(&conn, 70, body, 65534, 65534).await;
        let answer = ch.frame().await;
        assert!(
            matches!(answer.message(), Message::ActionResult(r) if matches!(r.outcome, otto_proto::Outcome::Failed { error } if error.contains("needs the agent to run as root"))),
            "{answer:?}"
        );
        eprintln!("not root: only the refusal was checked");
        return;
    }
    // The script file lives in the agent's temp dir: let the other user through its parent.
    std::fs::set_permissions(
        agent.dir.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o711),
    )
    .unwrap();
    let mut ch = start_as(&conn, 71, body, 65534, 65533).await;
    assert!(matches!(
        ch.frame().await.message(),
        Message::ReadyForData(_)
    ));
    ch.send_raw(body.as_bytes()).await;
    let run = finish_run(&mut ch, 71).await;
    assert_eq!(
        outcome(&run),
        "Exited { code: 0 }",
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    // uid, gid, and no supplementary groups but the primary one (root's are dropped).
    assert_eq!(
        String::from_utf8_lossy(&run.stdout),
        "65534\n65533\n65533\n"
    );
}
