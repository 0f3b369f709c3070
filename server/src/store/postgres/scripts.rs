//! Scripts and their attachments.
//!
//! An attachment's content is kept in pieces of at most [`PIECE`] bytes (`attachment_pieces`,
//! numbered from 0), so that a large one is written from its file a piece at a time and never
//! travels whole in one statement; it is read back as the pieces concatenated in order.

use async_trait::async_trait;
use deadpool_postgres::GenericClient;
use futures_util::{StreamExt, pin_mut};
use tokio::io::AsyncReadExt;
use tokio_postgres::Row;
use tokio_postgres::types::ToSql;

use super::{Postgres, corrupt, environment, exists};
use crate::model::{AfterRun, Attachment, Ids, Phase, RunLevel, Script};
use crate::store::{Result, ScriptStore, StoreError};

/// The largest piece of an attachment's content in one row: 1 MiB.
const PIECE: usize = 1 << 20;

/// Adds a script, or replaces one of the same name when `replace`.
pub async fn put_script(db: &impl GenericClient, script: &Script, replace: bool) -> Result<()> {
    const INSERT: &str = "INSERT INTO scripts (name, interpreter, body, run_as_uid, run_as_gid,
        working_dir, timeout_secs, after_run, run_level) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)";
    // Updated in place, so its attachments and group assignments stay.
    const UPSERT: &str = "INSERT INTO scripts (name, interpreter, body, run_as_uid, run_as_gid,
        working_dir, timeout_secs, after_run, run_level)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
        ON CONFLICT (name) DO UPDATE SET interpreter = excluded.interpreter,
            body = excluded.body, run_as_uid = excluded.run_as_uid,
            run_as_gid = excluded.run_as_gid, working_dir = excluded.working_dir,
            timeout_secs = excluded.timeout_secs, after_run = excluded.after_run,
            run_level = excluded.run_level";
    db.execute(
        if replace { UPSERT } else { INSERT },
        &[
            &script.name,
            &script.interpreter,
            &script.body,
            &script.run_as.map(|i| i64::from(i.uid)),
            &script.run_as.map(|i| i64::from(i.gid)),
            &script.working_dir,
            &script.timeout_secs.map(i64::from),
            &script.after_run.as_str(),
            &script.run_level.as_str(),
        ],
    )
    .await
    .map_err(exists("script", &script.name))?;
    Ok(())
}

/// One script.
pub async fn script(db: &impl GenericClient, name: &str) -> Result<Script> {
    scripts_where(db, "WHERE name = $1", &[&name])
        .await?
        .pop()
        .ok_or_else(|| StoreError::NotFound("script", name.into()))
}

/// Every script, by name.
pub async fn scripts(db: &impl GenericClient) -> Result<Vec<Script>> {
    scripts_where(db, "", &[]).await
}

/// The scripts `filter` (a `WHERE` clause over `params`, or nothing) selects, by name.
async fn scripts_where(
    db: &impl GenericClient,
    filter: &str,
    params: &[&(dyn ToSql + Sync)],
) -> Result<Vec<Script>> {
    db.query(
        &format!(
            "SELECT name, interpreter, body, run_as_uid, run_as_gid, working_dir, timeout_secs,
                    after_run, run_level
             FROM scripts {filter} ORDER BY name"
        ),
        params,
    )
    .await?
    .iter()
    .map(script_row)
    .collect()
}

/// A script from the columns [`scripts_where`] selects.
fn script_row(r: &Row) -> Result<Script> {
    let after: String = r.get(7);
    let level: String = r.get(8);
    Ok(Script {
        name: r.get(0),
        interpreter: r.get(1),
        body: r.get(2),
        run_as: ids(r.get(3), r.get(4))?,
        working_dir: r.get(5),
        timeout_secs: r
            .get::<_, Option<i64>>(6)
            .map(|t| u32::try_from(t).map_err(|_| corrupt("script timeout", t)))
            .transpose()?,
        after_run: AfterRun::parse(&after).ok_or(StoreError::Corrupt("after-run action", after))?,
        run_level: RunLevel::parse(&level).ok_or(StoreError::Corrupt("run level", level))?,
    })
}

/// Locks script `name` against removal until the end of the transaction `tx`; `NotFound` if
/// there is none.
async fn hold_script(tx: &impl GenericClient, name: &str) -> Result<()> {
    tx.query_opt(
        "SELECT 1 FROM scripts WHERE name = $1 FOR KEY SHARE",
        &[&name],
    )
    .await?
    .ok_or_else(|| StoreError::NotFound("script", name.into()))?;
    Ok(())
}

/// Writes an attachment's row (replacing one of the same script and path, and its pieces) with
/// `size` bytes of content to come; in the transaction `tx`, whose script is held.
async fn put_attachment_row(tx: &impl GenericClient, a: &Attachment, size: u64) -> Result<()> {
    hold_script(tx, &a.script).await?;
    let size = i64::try_from(size)
        .map_err(|_| StoreError::Read(std::io::Error::other("the file is too large")))?;
    tx.execute(
        "INSERT INTO attachments (script, path, sha256, size, owner_uid, owner_gid, mode, phase,
             template)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
         ON CONFLICT (script, path) DO UPDATE SET sha256 = excluded.sha256,
             size = excluded.size, owner_uid = excluded.owner_uid,
             owner_gid = excluded.owner_gid, mode = excluded.mode, phase = excluded.phase,
             template = excluded.template",
        &[
            &a.script,
            &a.path,
            &a.sha256,
            &size,
            &a.owner.map(|i| i64::from(i.uid)),
            &a.owner.map(|i| i64::from(i.gid)),
            &i64::from(a.mode),
            &a.phase.as_str(),
            &a.template,
        ],
    )
    .await?;
    tx.execute(
        "DELETE FROM attachment_pieces WHERE script = $1 AND path = $2",
        &[&a.script, &a.path],
    )
    .await?;
    Ok(())
}

/// Stores piece `seq` of an attachment's content.
async fn put_piece(tx: &impl GenericClient, a: &Attachment, seq: i32, data: &[u8]) -> Result<()> {
    tx.execute(
        "INSERT INTO attachment_pieces (script, path, seq, data) VALUES ($1, $2, $3, $4)",
        &[&a.script, &a.path, &seq, &data],
    )
    .await?;
    Ok(())
}

/// The number of piece after `seq`.
fn next(seq: i32) -> Result<i32> {
    seq.checked_add(1)
        .ok_or_else(|| StoreError::Read(std::io::Error::other("the file is too large")))
}

/// Adds (or replaces, same script and path) an attachment, in one transaction.
pub async fn put_attachment(db: &Postgres, a: &Attachment) -> Result<()> {
    let mut client = db.client().await?;
    let tx = client.transaction().await?;
    put_attachment_row(&tx, a, a.content.len() as u64).await?;
    let mut seq = 0;
    for piece in a.content.chunks(PIECE) {
        put_piece(&tx, a, seq, piece).await?;
        seq = next(seq)?;
    }
    tx.commit().await?;
    Ok(())
}

/// Adds (or replaces) an attachment with the first `a.size` bytes of `source` as its content,
/// read and written a piece at a time, in one transaction: a file too short leaves nothing.
pub async fn put_attachment_file(
    db: &Postgres,
    a: &Attachment,
    source: std::fs::File,
) -> Result<()> {
    let mut source = tokio::fs::File::from_std(source).take(a.size);
    let mut client = db.client().await?;
    let tx = client.transaction().await?;
    put_attachment_row(&tx, a, a.size).await?;
    let mut piece = Vec::with_capacity(PIECE);
    let (mut seq, mut copied) = (0, 0u64);
    loop {
        piece.clear();
        // A whole piece, or what is left of the file.
        let read = (&mut source)
            .take(PIECE as u64)
            .read_to_end(&mut piece)
            .await
            .map_err(StoreError::Read)?;
        if read == 0 {
            break;
        }
        put_piece(&tx, a, seq, &piece).await?;
        copied += read as u64;
        seq = next(seq)?;
    }
    if copied != a.size {
        let short = format!("the file ended after {copied} of {} bytes", a.size);
        return Err(StoreError::Read(std::io::Error::other(short)));
    }
    tx.commit().await?;
    Ok(())
}

/// Removes an attachment (its pieces go with it).
pub async fn remove_attachment(db: &impl GenericClient, script: &str, path: &str) -> Result<()> {
    let deleted = db
        .execute(
            "DELETE FROM attachments WHERE script = $1 AND path = $2",
            &[&script, &path],
        )
        .await?;
    if deleted == 0 {
        return Err(StoreError::NotFound(
            "attachment",
            format!("{script}:{path}"),
        ));
    }
    Ok(())
}

/// A script's attachments (with their content), by path; or every attachment. One statement,
/// so the content is as one moment saw it; its rows (one per piece) are taken as they come.
pub async fn attachments(db: &impl GenericClient, script: Option<&str>) -> Result<Vec<Attachment>> {
    let rows = db
        .query_raw(
            "SELECT a.script, a.path, a.sha256, a.size, a.owner_uid, a.owner_gid, a.mode,
                    a.phase, a.template, p.data
             FROM attachments a
             LEFT JOIN attachment_pieces p ON p.script = a.script AND p.path = a.path
             WHERE $1::TEXT IS NULL OR a.script = $1
             ORDER BY a.script, a.path, p.seq",
            [script],
        )
        .await?;
    pin_mut!(rows);
    let mut found: Vec<Attachment> = Vec::new();
    while let Some(row) = rows.next().await {
        let row = row?;
        let piece: Option<&[u8]> = row.get(9);
        let (script, path): (&str, &str) = (row.get(0), row.get(1));
        let same = found
            .last()
            .is_some_and(|a| a.script == script && a.path == path);
        if !same {
            found.push(attachment_row(&row)?);
        }
        if let (Some(piece), Some(last)) = (piece, found.last_mut()) {
            last.content.extend_from_slice(piece);
        }
    }
    for a in &found {
        if a.content.len() as u64 != a.size {
            let what = format!(
                "{}:{} holds {} of its {} bytes",
                a.script,
                a.path,
                a.content.len(),
                a.size
            );
            return Err(StoreError::Corrupt("attachment", what));
        }
    }
    Ok(found)
}

/// An attachment without its content from the columns `script, path, sha256, size,
/// owner_uid, owner_gid, mode, phase, template`.
fn attachment_row(r: &Row) -> Result<Attachment> {
    let size: i64 = r.get(3);
    let mode: i64 = r.get(6);
    Ok(Attachment {
        script: r.get(0),
        path: r.get(1),
        content: Vec::new(),
        size: u64::try_from(size).map_err(|_| corrupt("attachment size", size))?,
        sha256: r.get(2),
        owner: ids(r.get(4), r.get(5))?,
        mode: u32::try_from(mode).map_err(|_| corrupt("attachment mode", mode))?,
        phase: phase(r.get(7)),
        template: r.get(8),
    })
}

/// A phase as stored.
fn phase(text: &str) -> Phase {
    if text == "after" {
        Phase::After
    } else {
        Phase::Before
    }
}

/// The attachment of `script` at `path`, if any, without its content (its size as stored).
pub async fn attachment(
    db: &impl GenericClient,
    script: &str,
    path: &str,
) -> Result<Option<Attachment>> {
    db.query_opt(
        "SELECT script, path, sha256, size, owner_uid, owner_gid, mode, phase, template
         FROM attachments
         WHERE script = $1 AND path = $2",
        &[&script, &path],
    )
    .await?
    .as_ref()
    .map(attachment_row)
    .transpose()
}

/// A user and group as stored: both or none.
fn ids(uid: Option<i64>, gid: Option<i64>) -> Result<Option<Ids>> {
    let id = |n: Option<i64>| {
        n.map(|n| u32::try_from(n).map_err(|_| corrupt("user or group id", n)))
            .transpose()
    };
    Ok(match (id(uid)?, id(gid)?) {
        (Some(uid), Some(gid)) => Some(Ids { uid, gid }),
        _ => None,
    })
}

#[async_trait]
impl ScriptStore for Postgres {
    async fn put_script(&self, script: &Script, replace: bool) -> Result<()> {
        put_script(&self.client().await?, script, replace).await
    }

    async fn remove_script(&self, name: &str) -> Result<()> {
        environment::remove_with_env(self, "scripts", "script", name).await
    }

    async fn script(&self, name: &str) -> Result<Script> {
        script(&self.client().await?, name).await
    }

    async fn scripts(&self) -> Result<Vec<Script>> {
        scripts(&self.client().await?).await
    }

    async fn put_attachment(&self, attachment: &Attachment) -> Result<()> {
        put_attachment(self, attachment).await
    }

    async fn put_attachment_file(
        &self,
        attachment: &Attachment,
        source: std::fs::File,
    ) -> Result<()> {
        put_attachment_file(self, attachment, source).await
    }

    async fn remove_attachment(&self, script: &str, path: &str) -> Result<()> {
        remove_attachment(&self.client().await?, script, path).await
    }

    async fn attachments(&self, script: Option<&str>) -> Result<Vec<Attachment>> {
        attachments(&self.client().await?, script).await
    }

    async fn attachment(&self, script: &str, path: &str) -> Result<Option<Attachment>> {
        attachment(&self.client().await?, script, path).await
    }
}
