//! Scripts, replaced in place, and their attachments, large ones written from a file.

use std::io::{Seek, Write};

use crate::model::{AfterRun, Attachment, Ids, Phase, RunLevel, Script};
use crate::store::{Store, StoreError};

on_both!(
    a_script_is_added_once_and_replaced_in_place,
    an_attachment_is_written_from_a_file_a_piece_at_a_time,
    attachments_are_replaced_listed_and_removed,
);

async fn a_script_is_added_once_and_replaced_in_place(store: Store) {
    let script = |body: &str| Script {
        name: "deploy".into(),
        interpreter: "/bin/sh".into(),
        body: body.into(),
        run_as: None,
        working_dir: None,
        timeout_secs: Some(60),
        after_run: AfterRun::None,
        run_level: RunLevel::ReadWrite,
    };
    store.put_script(&script("true"), false).await.unwrap();
    assert!(matches!(
        store.put_script(&script("false"), false).await,
        Err(StoreError::Exists("script", _))
    ));
    assert_eq!(store.script("deploy").await.unwrap().body, b"true");
    store
        .put_attachment(&Attachment {
            script: "deploy".into(),
            path: "/etc/x".into(),
            size: 1,
            sha256: "2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881".into(),
            content: b"x".to_vec(),
            owner: None,
            mode: 0o644,
            phase: Phase::Before,
            template: false,
        })
        .await
        .unwrap();
    store.add_group("lab").await.unwrap();
    store.set_group_script("lab", "deploy", true).await.unwrap();
    let mut replaced = script("exit 3");
    replaced.after_run = AfterRun::Reload;
    replaced.run_as = Some(Ids {
        uid: u32::MAX,
        gid: 0,
    });
    replaced.working_dir = Some("/tmp".into());
    replaced.timeout_secs = Some(u32::MAX);
    replaced.run_level = RunLevel::ReadOnly;
    store.put_script(&replaced, true).await.unwrap();
    assert_eq!(store.script("deploy").await.unwrap(), replaced);
    // Replaced in place: its attachments and group assignments stay.
    assert_eq!(store.attachments(Some("deploy")).await.unwrap().len(), 1);
    assert_eq!(store.groups().await.unwrap()[0].scripts, ["deploy"]);
    // Replacing one that does not exist adds it.
    let mut other = script("true");
    other.name = "other".into();
    store.put_script(&other, true).await.unwrap();
    let names: Vec<_> = store
        .scripts()
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.name)
        .collect();
    assert_eq!(names, ["deploy", "other"]);
    assert!(matches!(
        store.script("nope").await,
        Err(StoreError::NotFound("script", _))
    ));
}

/// An attachment of `script` at `path` whose content is yet to be given.
fn attachment(script: &str, path: &str, size: u64) -> Attachment {
    Attachment {
        script: script.into(),
        path: path.into(),
        content: Vec::new(),
        size,
        sha256: "ab".into(),
        owner: Some(Ids {
            uid: 1000,
            gid: u32::MAX,
        }),
        mode: 0o4755,
        phase: Phase::After,
        template: true,
    }
}

/// A file holding `content`, read from its start.
fn file(content: &[u8]) -> std::fs::File {
    let mut file = tempfile::tempfile().unwrap();
    file.write_all(content).unwrap();
    file.rewind().unwrap();
    file
}

async fn an_attachment_is_written_from_a_file_a_piece_at_a_time(store: Store) {
    store
        .put_script(&Script::example("s", b"true"), false)
        .await
        .unwrap();
    // 3 MiB and a little, of bytes that tell their place: more than one piece of 1 MiB.
    let content: Vec<u8> = (0..3 * 1024 * 1024 + 17u32)
        .map(|i| (i % 251) as u8)
        .collect();
    let size = content.len() as u64;
    let mut longer = content.clone();
    longer.extend_from_slice(b"and more that is not taken");
    let big = attachment("s", "/big", size);
    store
        .put_attachment_file(&big, file(&longer))
        .await
        .unwrap();
    let stored = Attachment {
        content: content.clone(),
        ..big.clone()
    };
    assert!(store.attachments(Some("s")).await.unwrap() == [stored.clone()]);
    // Without its content: its size as stored.
    assert_eq!(
        store.attachment("s", "/big").await.unwrap(),
        Some(big.clone())
    );

    // A file too short is refused and leaves nothing, not even over an attachment it replaces.
    for path in ["/short", "/big"] {
        let short = store
            .put_attachment_file(&attachment("s", path, size), file(&content[..1000]))
            .await;
        assert!(matches!(short, Err(StoreError::Read(_))), "{short:?}");
    }
    assert!(store.attachments(None).await.unwrap() == [stored]);
    assert_eq!(store.attachment("s", "/short").await.unwrap(), None);

    // Replaced by a smaller one, empty at last.
    let small = attachment("s", "/big", 5);
    store
        .put_attachment_file(&small, file(b"hello"))
        .await
        .unwrap();
    let read = store.attachments(Some("s")).await.unwrap();
    assert_eq!(read.len(), 1);
    assert_eq!(read[0].content, b"hello");
    let empty = attachment("s", "/big", 0);
    store.put_attachment_file(&empty, file(b"")).await.unwrap();
    assert_eq!(store.attachments(Some("s")).await.unwrap(), [empty]);

    // Only to a script that exists.
    let orphan = store
        .put_attachment_file(&attachment("nope", "/x", 5), file(b"hello"))
        .await;
    assert!(
        matches!(orphan, Err(StoreError::NotFound("script", _))),
        "{orphan:?}"
    );
}

async fn attachments_are_replaced_listed_and_removed(store: Store) {
    for name in ["a", "b"] {
        store
            .put_script(&Script::example(name, b"true"), false)
            .await
            .unwrap();
    }
    let with = |script: &str, path: &str, content: &[u8]| Attachment {
        content: content.to_vec(),
        size: content.len() as u64,
        owner: None,
        phase: Phase::Before,
        ..attachment(script, path, 0)
    };
    for a in [
        with("b", "/2", b"two"),
        with("a", "/1", b"one"),
        with("b", "/1", b"old"),
        with("b", "/1", b"new, longer"),
    ] {
        store.put_attachment(&a).await.unwrap();
    }
    let listed = |all: Vec<Attachment>| -> Vec<(String, String, Vec<u8>)> {
        all.into_iter()
            .map(|a| (a.script, a.path, a.content))
            .collect()
    };
    let entry = |s: &str, p: &str, c: &[u8]| (s.to_string(), p.to_string(), c.to_vec());
    assert_eq!(
        listed(store.attachments(None).await.unwrap()),
        [
            entry("a", "/1", b"one"),
            entry("b", "/1", b"new, longer"),
            entry("b", "/2", b"two")
        ]
    );
    assert_eq!(
        store.attachment("b", "/1").await.unwrap().map(|a| a.size),
        Some(11)
    );
    assert!(matches!(
        store.put_attachment(&with("nope", "/1", b"x")).await,
        Err(StoreError::NotFound("script", _))
    ));
    store.remove_attachment("b", "/2").await.unwrap();
    assert!(matches!(
        store.remove_attachment("b", "/2").await,
        Err(StoreError::NotFound("attachment", _))
    ));
    // A script removed takes its attachments with it.
    store.remove_script("b").await.unwrap();
    assert_eq!(
        listed(store.attachments(None).await.unwrap()),
        [entry("a", "/1", b"one")]
    );
    assert!(store.attachments(Some("b")).await.unwrap().is_empty());
}
