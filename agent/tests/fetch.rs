//! Files read back from the agent: `StatFile` (checksum, mode, length, owner) and `FetchFile`
//! (the file streamed, its length and checksum checked), through the server's own client.

// Helpers outside #[test] functions may unwrap and index too: a failing test stops there.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::io::{Seek, SeekFrom, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::pin::Pin;
use std::task::{Context, Poll};

use common::Agent;
use otto_server::client::{ClientError, FetchedFile};
use sha2::{Digest, Sha256};

fn data(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 13 % 251) as u8).collect()
}

#[tokio::test]
async fn stat_tells_checksum_mode_length_and_owner_or_none() {
    let agent = Agent::start("");
    let conn = agent.client().await;
    let path = agent.dir.path().join("f");
    let bytes = data(100_000);
    std::fs::write(&path, &bytes).unwrap();
    std::fs::set_permissions(&path, PermissionsExt::from_mode(0o640)).unwrap();
    let meta = std::fs::metadata(&path).unwrap();

    let stat = conn.stat_file(path.to_str().unwrap()).await.unwrap();
    let stat = stat.expect("the file is there");
    let sha: [u8; 32] = Sha256::digest(&bytes).into();
    assert_eq!(stat.sha256, sha);
    assert_eq!(stat.mode, 0o640);
    assert_eq!(stat.len, 100_000);
    assert_eq!((stat.uid, stat.gid), (meta.uid(), meta.gid()));

    let missing = agent.dir.path().join("missing");
    assert_eq!(
        conn.stat_file(missing.to_str().unwrap()).await.unwrap(),
        None
    );

    let dir = agent.dir.path().to_str().unwrap();
    match conn.stat_file(dir).await {
        Err(ClientError::FileRefused(why)) => {
            assert_eq!(why, format!("{dir} is not a regular file"));
        }
        other => panic!("{other:?}"),
    }
    match conn.stat_file("etc/passwd").await {
        Err(ClientError::FileRefused(why)) => {
            assert!(why.contains("not an absolute path"), "{why}")
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_fetch_streams_the_file_and_checks_it() {
    let agent = Agent::start("");
    let conn = agent.client().await;
    let path = agent.dir.path().join("big.bin");
    // Many chunks, not a multiple of one.
    let bytes = data(1_000_003);
    std::fs::write(&path, &bytes).unwrap();
    std::fs::set_permissions(&path, PermissionsExt::from_mode(0o600)).unwrap();
    let mut into = Vec::new();
    let mut seen = 0;
    let fetched = conn
        .fetch_file(path.to_str().unwrap(), 1_000_003, &mut into, |n| seen = n)
        .await
        .unwrap();
    assert_eq!(into, bytes);
    assert_eq!(seen, 1_000_003);
    assert_eq!(
        fetched,
        FetchedFile {
            len: 1_000_003,
            mode: 0o600,
            sha256: Sha256::digest(&bytes).into(),
        }
    );

    // An empty file is a header and no data.
    let empty = agent.dir.path().join("empty");
    std::fs::write(&empty, b"").unwrap();
    let mut into = Vec::new();
    let fetched = conn
        .fetch_file(empty.to_str().unwrap(), 0, &mut into, |_| {})
        .await
        .unwrap();
    assert_eq!((fetched.len, into.len()), (0, 0));
}

#[tokio::test]
async fn a_fetch_is_refused_before_any_data_when_missing_too_long_or_not_a_file() {
    let agent = Agent::start("");
    let conn = agent.client().await;
    let path = agent.dir.path().join("f");
    std::fs::write(&path, data(1000)).unwrap();
    let text = path.to_str().unwrap();

    let refused = async |path: &str, max_len: u64| {
        let mut into = Vec::new();
        match conn.fetch_file(path, max_len, &mut into, |_| {}).await {
            Err(ClientError::FileRefused(why)) => {
                assert!(into.is_empty(), "no data before a refusal");
                why
            }
            other => panic!("{other:?}"),
        }
    };
    assert_eq!(
        refused(text, 999).await,
        format!("{text} is 1000 bytes, over the limit of 999")
    );
    let missing = agent.dir.path().join("missing");
    let missing = missing.to_str().unwrap();
    assert_eq!(
        refused(missing, 1000).await,
        format!("no such file: {missing}")
    );
    let dir = agent.dir.path().to_str().unwrap();
    assert_eq!(
        refused(dir, 1000).await,
        format!("{dir} is not a regular file")
    );
    // At the limit exactly, it comes; the connection serves on after the refusals.
    let mut into = Vec::new();
    conn.fetch_file(text, 1000, &mut into, |_| {})
        .await
        .unwrap();
    assert_eq!(into.len(), 1000);
}

/// Takes what is written; on the first write, first rewrites the end of the agent's file (the
/// agent has hashed it and is sending it, at most its window and buffers ahead of this).
struct ChangingOnFirstWrite {
    path: std::path::PathBuf,
    changed: bool,
    received: Vec<u8>,
}

impl tokio::io::AsyncWrite for ChangingOnFirstWrite {
    fn poll_write(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        if !self.changed {
            self.changed = true;
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .open(&self.path)
                .unwrap();
            file.seek(SeekFrom::End(-4)).unwrap();
            file.write_all(b"XXXX").unwrap();
        }
        self.received.extend_from_slice(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[tokio::test]
async fn a_file_changed_while_read_is_found_by_its_checksum() {
    let agent = Agent::start("idle_timeout = 30");
    let conn = agent.client().await;
    let path = agent.dir.path().join("log");
    // Three times the agent's SSH window (2 MiB), so that the agent still has the end to
    // read when the first piece arrives; small enough that a debug agent under QEMU hashes it
    // within the answer's time (it hashes before it answers: 48 MiB took over 30 s on mips).
    let len = 6 << 20;
    std::fs::write(&path, vec![b'a'; len]).unwrap();
    let mut into = ChangingOnFirstWrite {
        path: path.clone(),
        changed: false,
        received: Vec::new(),
    };
    match conn
        .fetch_file(path.to_str().unwrap(), len as u64, &mut into, |_| {})
        .await
    {
        Err(ClientError::ChangedWhileRead { detail, .. }) => {
            assert_eq!(detail, "its SHA-256 is not the one announced");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(into.received.len(), len);
    assert_eq!(&into.received[len - 4..], b"XXXX");
}
