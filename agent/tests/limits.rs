//! The agent under flooding peers: unauthenticated connections that hold their sockets silent,
//! and an authenticated peer that opens channels without end. The trusted server must still get
//! in, and the agent's memory must stay bounded.

// Helpers outside #[test] functions may unwrap and index too: a failing test stops there.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::collections::VecDeque;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::Ordering;
use std::time::Duration;

use common::{Agent, PATIENCE};
use otto_proto::{HeartbeatRequest, Message};
use otto_server::client::{ClientError, Connection};
use tokio::io::AsyncReadExt;
use tokio::net::{TcpSocket, TcpStream};

/// A TCP connection to `agent` from the loopback address 127.0.0.`last` that never speaks.
async fn silent(agent: SocketAddr, last: u8) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket
        .bind(SocketAddr::new(
            IpAddr::V4(Ipv4Addr::new(127, 0, 0, last)),
            0,
        ))
        .unwrap();
    socket.connect(agent).await.unwrap()
}

/// Connects as the server does, with the trusted key, and checks a heartbeat, all within
/// `PATIENCE` (a bound that only proves "does not hang": before the fix, connecting failed).
async fn heartbeat(agent: &Agent, nonce: u64) -> Connection {
    let attempt = async {
        let conn = agent.client_with(&agent.server_key).await?;
        conn.heartbeat().await?;
        Ok::<_, ClientError>(conn)
    };
    match tokio::time::timeout(PATIENCE, attempt).await {
        Ok(Ok(conn)) => conn,
        Ok(Err(e)) => panic!("heartbeat {nonce}: {e}; agent log: {:?}", agent.log()),
        Err(_) => panic!("heartbeat {nonce} took longer than {PATIENCE:?}"),
    }
}

/// Reads until the agent closes the connection; what it sent (its SSH banner, at most).
async fn until_closed(stream: &mut TcpStream) -> Result<Vec<u8>, String> {
    let mut got = Vec::new();
    let read = async {
        let mut buf = [0u8; 256];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
    };
    tokio::time::timeout(PATIENCE, read)
        .await
        .map_err(|_| format!("still open after {PATIENCE:?}"))?;
    Ok(got)
}

#[tokio::test]
async fn silent_connections_do_not_lock_the_server_out() {
    let agent = Agent::start("");
    let mut held = Vec::new();
    // From the server's own address (127.0.0.1): a NAT or a shared host.
    for _ in 0..60 {
        held.push(silent(agent.addr, 1).await);
    }
    heartbeat(&agent, 1).await;
    // From one other address, then from many.
    for _ in 0..60 {
        held.push(silent(agent.addr, 2).await);
    }
    heartbeat(&agent, 2).await;
    for last in 3..63 {
        held.push(silent(agent.addr, last).await);
    }
    heartbeat(&agent, 3).await;
    drop(held);
}

#[tokio::test]
async fn connections_opened_without_end_do_not_keep_the_server_out() {
    let agent = Agent::start("");
    heartbeat(&agent, 1).await;
    // An attacker on 60 addresses opens silent connections every few milliseconds while the
    // server connects again and again. It keeps only its newest 100 sockets (the agent drops
    // the older ones anyway) and stops when the server is done.
    let addr = agent.addr;
    let opened = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
    let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
    let count = opened.clone();
    let attacker = tokio::spawn(async move {
        let mut held = VecDeque::new();
        for n in 0..5000u32 {
            if stopped.try_recv().is_ok() {
                break;
            }
            held.push_back(silent(addr, 2 + (n % 60) as u8).await);
            if held.len() > 100 {
                held.pop_front();
            }
            count.store(n + 1, Ordering::Relaxed);
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    });
    // Let the attacker fill every slot first.
    while opened.load(Ordering::Relaxed) < 100 {
        assert!(!attacker.is_finished());
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    for nonce in 2..7 {
        heartbeat(&agent, nonce).await;
    }
    let _ = stop.send(());
    attacker.await.unwrap();
    let opened = opened.load(Ordering::Relaxed);
    assert!(
        opened > 100,
        "the attacker opened only {opened} connections"
    );
}

#[tokio::test]
async fn an_unauthenticated_connection_is_dropped_after_the_login_grace_time() {
    // Long enough for the server's own login under QEMU.
    let agent = Agent::start("login_grace_time = 5");
    // Silent from the start.
    let mut quiet = silent(agent.addr, 1).await;
    // Stalled in the handshake: the version line sent, nothing after it.
    let mut stalled = silent(agent.addr, 1).await;
    tokio::io::AsyncWriteExt::write_all(&mut stalled, b"SSH-2.0-stall\r\n")
        .await
        .unwrap();
    // Handshake done, but no authentication ever tried.
    let handle = russh::client::connect(
        std::sync::Arc::new(russh::client::Config::default()),
        agent.addr,
        common::Pinned(agent.agent_key.clone()),
    )
    .await
    .unwrap();
    // Each gets the banner, then the agent closes it.
    let got = until_closed(&mut quiet).await.unwrap();
    assert!(got.starts_with(b"SSH-2.0-"), "{got:?}");
    until_closed(&mut stalled).await.unwrap();
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while !handle.is_closed() {
        assert!(tokio::time::Instant::now() < deadline, "still open");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(agent.logged("not authenticated within 5 s").await);
    // The server is not affected, before or after its grace time.
    let conn = heartbeat(&agent, 1).await;
    tokio::time::sleep(Duration::from_secs(6)).await;
    heartbeat_on(&conn, 2).await;
}

/// An Otto channel that never sends a request.
type Silent = russh::Channel<russh::client::Msg>;

/// Opens `count` Otto channels on `conn` that never send a request; returns the ones the agent
/// accepted and how many it refused for lack of resources (any other failure panics).
async fn silent_channels(conn: &common::RawConnection, count: usize) -> (Vec<Silent>, usize) {
    let (mut open, mut refused) = (Vec::new(), 0);
    for _ in 0..count {
        let mut channel = match conn.handle.channel_open_session().await {
            Ok(channel) => channel,
            Err(russh::Error::ChannelOpenFailure(russh::ChannelOpenFailure::ResourceShortage)) => {
                refused += 1;
                continue;
            }
            Err(e) => panic!("channel open: {e}"),
        };
        channel.request_subsystem(true, "otto").await.unwrap();
        match tokio::time::timeout(PATIENCE, channel.wait()).await {
            Ok(Some(russh::ChannelMsg::Success)) => open.push(channel),
            other => panic!("subsystem request: {other:?}"),
        }
    }
    (open, refused)
}

/// Closes `channels` (russh's client never reports the agent's answering close: no waiting).
async fn close(channels: Vec<Silent>) {
    for channel in channels {
        channel.close().await.unwrap();
    }
}

/// A ninth login (a server whose old connections are half-open after a network cut or a kill)
/// is never refused: the oldest authenticated connection makes room. Before, it was refused
/// until keepalives noticed the old ones, minutes later.
#[tokio::test]
async fn a_login_past_the_limit_displaces_the_oldest_authenticated_connection() {
    let agent = Agent::start("");
    let mut logins = Vec::new();
    for nonce in 0..8 {
        logins.push(heartbeat(&agent, nonce).await);
    }
    let newest = heartbeat(&agent, 8).await;
    heartbeat_on(&newest, 9).await;
    let oldest = logins.remove(0);
    let closed = tokio::time::timeout(PATIENCE, async {
        while !oldest.is_closed() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(closed.is_ok(), "the oldest login is still open");
    // The others were left alone.
    for (nonce, conn) in (10..).zip(&logins) {
        heartbeat_on(conn, nonce).await;
    }
}

/// Whether the agent refused a channel for lack of resources.
fn resource_shortage(error: &ClientError) -> bool {
    matches!(
        error,
        ClientError::Ssh(russh::Error::ChannelOpenFailure(
            russh::ChannelOpenFailure::ResourceShortage
        ))
    )
}

/// A heartbeat on a new channel of `conn`, tried again while the agent refuses the channel for
/// lack of resources (closed channels free their slots a moment after the close).
async fn heartbeat_on(conn: &Connection, nonce: u64) {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        match conn.heartbeat().await {
            Ok(_) => return,
            Err(e) if resource_shortage(&e) && tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(50)).await
            }
            Err(e) => panic!("heartbeat {nonce}: {e}"),
        }
    }
}

/// A raw connection (to flood with channels the server never opens) whose first heartbeat is
/// answered.
async fn raw_login(agent: &Agent, nonce: u64) -> common::RawConnection {
    let conn = agent.raw().await;
    raw_heartbeat_on(&conn, nonce).await;
    conn
}

/// A heartbeat on a new raw channel of `conn`, tried again while the agent refuses the channel
/// for lack of resources.
async fn raw_heartbeat_on(conn: &common::RawConnection, nonce: u64) {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    let mut ch = loop {
        match conn.channel_for("otto").await {
            Ok(ch) => break ch,
            Err(e) if e.contains("ResourceShortage") && tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(50)).await
            }
            Err(e) => panic!("heartbeat {nonce}: {e}"),
        }
    };
    ch.send(&Message::HeartbeatRequest(HeartbeatRequest {
        server_version: "t",
        nonce,
    }))
    .await;
    let frame = ch.frame().await;
    assert!(
        matches!(frame.message(), Message::HeartbeatResponse(h) if h.nonce == nonce),
        "{frame:?}"
    );
}

#[tokio::test]
async fn channels_are_bounded_per_connection_and_in_total() {
    let agent = Agent::start("");
    let conns = [
        raw_login(&agent, 1).await,
        raw_login(&agent, 2).await,
        raw_login(&agent, 3).await,
    ];
    // Warm up (every code path once, up to the limits), then measure.
    let (open, _) = silent_channels(&conns[0], 20).await;
    close(open).await;
    raw_heartbeat_on(&conns[0], 4).await;
    let before = agent.memory_kib("VmHWM");
    let (mut open, mut refused) = (Vec::new(), 0);
    for conn in &conns {
        let (more, refused_more) = silent_channels(conn, 300).await;
        assert!(
            more.len() <= 16,
            "{} channels on one connection",
            more.len()
        );
        open.extend(more);
        refused += refused_more;
    }
    let after = agent.memory_kib("VmHWM");
    eprintln!(
        "{} channels open, {refused} refused; VmHWM {before} -> {after} KiB",
        open.len()
    );
    assert!(open.len() <= 32, "{} channels open", open.len());
    assert_eq!(open.len() + refused, 900);
    // 32 channels at about 40 KiB each, and room for the allocator: far below the tens of MiB
    // that 900 channels took before the limits.
    assert!(
        after < before + 4096,
        "peak memory grew from {before} to {after} KiB"
    );
    // No connection was dropped: once the channels are closed, each serves again.
    close(open).await;
    for (conn, nonce) in conns.iter().zip(10..) {
        raw_heartbeat_on(conn, nonce).await;
    }
}

#[tokio::test]
async fn channels_that_never_ask_for_the_subsystem_are_closed() {
    let agent = Agent::start(""); // idle_timeout = 2 in the test configuration
    let conn = raw_login(&agent, 1).await;
    let mut bare = Vec::new();
    while let Ok(channel) = conn.handle.channel_open_session().await {
        bare.push(channel);
        assert!(bare.len() <= 16, "{} channels accepted", bare.len());
    }
    // The agent closes each after the idle timeout, and the connection serves again.
    for channel in &mut bare {
        loop {
            match tokio::time::timeout(PATIENCE, channel.wait()).await {
                Ok(Some(russh::ChannelMsg::Close) | None) => break,
                Ok(Some(_)) => {}
                Err(_) => panic!("a silent channel was kept for {PATIENCE:?}"),
            }
        }
    }
    raw_heartbeat_on(&conn, 2).await;
}

/// One heartbeat on `conn` the way the server does it: on a closed connection, connect again;
/// while channels are refused for lack of resources, wait a little and try again.
async fn heartbeat_reconnecting(agent: &Agent, conn: &mut Connection, nonce: u64) {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        assert!(tokio::time::Instant::now() < deadline, "heartbeat {nonce}");
        if conn.is_closed() {
            *conn = heartbeat(agent, nonce).await;
            return;
        }
        match conn.heartbeat().await {
            Ok(_) => return,
            // A wrong answer is a failure; a refused channel or a closing connection is not.
            Err(
                e @ (ClientError::Protocol(_)
                | ClientError::AgentFailure(_)
                | ClientError::Frames(_)),
            ) => panic!("heartbeat {nonce}: {e}"),
            Err(_) => {}
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn channels_one_after_another_do_not_grow_the_agent() {
    let agent = Agent::start(""); // idle_timeout = 2 in the test configuration
    let mut conn = heartbeat(&agent, 0).await;
    // Warm up (through one reconnection), then measure.
    for nonce in 1..550 {
        heartbeat_reconnecting(&agent, &mut conn, nonce).await;
    }
    if common::emulated() {
        // Under an emulator its own memory grows as it translates more of the agent (2.1 MiB
        // seen under qemu-mips over the 1000 channels below): the recycling above is what is
        // checked there; the native run measures.
        return;
    }
    let before = agent.memory_kib("VmRSS");
    for nonce in 550..1550 {
        heartbeat_reconnecting(&agent, &mut conn, nonce).await;
    }
    let after = agent.memory_kib("VmRSS");
    eprintln!("VmRSS {before} -> {after} KiB over 1000 channels");
    // russh keeps about 3.3 KiB for every channel the agent closed first until the connection
    // ends: 1000 channels on one connection took 3.2 MiB before connections were recycled.
    assert!(
        after < before + 2048,
        "resident memory grew from {before} to {after} KiB"
    );
}

#[tokio::test]
async fn channels_the_agent_closed_leave_nothing_behind_on_a_kept_connection() {
    let agent = Agent::start("");
    let conn = heartbeat(&agent, 0).await;
    for _ in 0..50 {
        conn.heartbeat().await.unwrap();
    }
    if common::emulated() {
        // The emulator's own memory grows as it translates more of the agent; the native run
        // measures.
        return;
    }
    let before = agent.memory_kib("VmRSS");
    // All on the one connection (under its 512 channels), each heartbeat on its own channel,
    // which the agent closes first.
    for nonce in 0..400 {
        if let Err(e) = conn.heartbeat().await {
            panic!("heartbeat {nonce}: {e}");
        }
    }
    let after = agent.memory_kib("VmRSS");
    eprintln!("VmRSS {before} -> {after} KiB over 400 channels on one connection");
    // russh kept about 3.3 KiB of each channel the agent closed first until the connection
    // ended (1.3 MiB for these 400); vendor/russh removes it when the server's close arrives.
    assert!(
        after < before + 512,
        "resident memory grew from {before} to {after} KiB"
    );
}

/// The server's connection goes on over a new SSH connection before the agent's limit of
/// channels per connection: more heartbeats than that on one `Connection` all succeed, and the
/// agent never had to refuse a channel (the server did not wait for a refusal to dial again).
#[tokio::test]
async fn a_connection_is_renewed_before_the_agents_channel_limit() {
    let agent = Agent::start("");
    let conn = agent.client().await;
    for nonce in 0..otto_proto::MAX_CHANNELS_PER_CONNECTION + 20 {
        if let Err(e) = conn.heartbeat().await {
            panic!("heartbeat {nonce}: {e}");
        }
    }
    assert!(!conn.is_closed());
    // The second login (the new connection) is logged after any refusal that led to it.
    let deadline = tokio::time::Instant::now() + PATIENCE;
    let logins = || {
        let log = agent.log();
        log.iter()
            .filter(|l| l.contains("server authenticated"))
            .count()
    };
    while logins() < 2 {
        assert!(tokio::time::Instant::now() < deadline, "{:#?}", agent.log());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let log = agent.log();
    let refused: Vec<_> = log.iter().filter(|l| l.contains("refused")).collect();
    assert!(refused.is_empty(), "{refused:#?}");
    assert_eq!(logins(), 2);
}

/// A channel the agent refuses (here: its connection already has the 16 channels at once it
/// may) carried no request yet: the server asks for it again on a new connection, so the
/// heartbeat is answered instead of failing, and the runs in flight go on.
#[tokio::test]
async fn a_refused_channel_is_asked_for_again_on_a_new_connection() {
    let agent = Agent::start("");
    let conn = agent.client().await;
    let started = tempfile::tempdir().unwrap();
    let runs: Vec<_> = (0..16)
        .map(|i| {
            let conn = conn.clone();
            let body = format!("touch {}/{i}; sleep 3", started.path().display());
            tokio::spawn(async move {
                let script = common::script(&body, &[], otto_proto::ScriptTimeout::Seconds(30));
                common::run(&conn, 100 + i, &script).await
            })
        })
        .collect();
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while std::fs::read_dir(started.path()).unwrap().count() < 16 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the runs never started"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    conn.heartbeat().await.unwrap();
    assert!(agent.logged("channel refused, too many").await);
    for run in runs {
        let run = run.await.unwrap();
        assert_eq!(run.report.outcome, otto_server::client::Outcome::Exited(0));
    }
}

/// When the agent as a whole serves all the channels it may at once (32: here 16 runs on each
/// of two connections), another connection does not help: a refused channel is asked for on
/// one new connection, and refusals on that one, which has had no channel, dial no more (past
/// its number of connections the agent would cut the oldest, runs and all).
#[tokio::test]
async fn a_busy_agent_is_not_dialled_again_and_again() {
    let agent = Agent::start("");
    let conn = agent.client().await;
    let started = tempfile::tempdir().unwrap();
    let runs: Vec<_> = (0..32)
        .map(|i| {
            let conn = conn.clone();
            let body = format!("touch {}/{i}; sleep 4", started.path().display());
            tokio::spawn(async move {
                let script = common::script(&body, &[], otto_proto::ScriptTimeout::Seconds(30));
                common::run(&conn, 100 + i, &script).await
            })
        })
        .collect();
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while std::fs::read_dir(started.path()).unwrap().count() < 32 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the runs never started"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for nonce in 0..3 {
        match conn.heartbeat().await {
            Err(e) if resource_shortage(&e) => {}
            other => panic!("heartbeat {nonce}: {:?}", other.map(|_| ())),
        }
    }
    let logins = || {
        let log = agent.log();
        log.iter()
            .filter(|l| l.contains("server authenticated"))
            .count()
    };
    // The first, the one for the runs past 16, the one for the first heartbeat.
    while logins() < 3 {
        assert!(tokio::time::Instant::now() < deadline, "{:#?}", agent.log());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for run in runs {
        let run = run.await.unwrap();
        assert_eq!(run.report.outcome, otto_server::client::Outcome::Exited(0));
    }
    assert_eq!(logins(), 3, "{:#?}", agent.log());
}
