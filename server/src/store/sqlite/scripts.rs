//! Scripts and their attachments.

use std::fs::File;
use std::io::Read;

use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, params};

use super::{Sqlite, environment, exists};
use crate::model::{AfterRun, Attachment, Ids, Phase, RunLevel, Script};
use crate::store::{Result, ScriptStore, StoreError};

/// Adds a script, or replaces one of the same name when `replace`.
pub fn put_script(db: &Connection, script: &Script, replace: bool) -> Result<()> {
    const INSERT: &str = "INSERT INTO scripts (name, interpreter, body, run_as_uid, run_as_gid,
        working_dir, timeout_secs, after_run, run_level) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)";
    // Updated in place, so its attachments and group assignments stay.
    const UPSERT: &str = "INSERT INTO scripts (name, interpreter, body, run_as_uid, run_as_gid,
        working_dir, timeout_secs, after_run, run_level)
        VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
        ON CONFLICT (name) DO UPDATE SET interpreter = excluded.interpreter,
            body = excluded.body, run_as_uid = excluded.run_as_uid,
            run_as_gid = excluded.run_as_gid, working_dir = excluded.working_dir,
            timeout_secs = excluded.timeout_secs, after_run = excluded.after_run,
            run_level = excluded.run_level";
    db.execute(
        if replace { UPSERT } else { INSERT },
        params![
            script.name,
            script.interpreter,
            script.body,
            script.run_as.map(|i| i.uid),
            script.run_as.map(|i| i.gid),
            script.working_dir,
            script.timeout_secs,
            script.after_run.as_str(),
            script.run_level.as_str()
        ],
    )
    .map_err(exists("script", &script.name))?;
    Ok(())
}

/// Removes a script with its attachments.
pub fn remove_script(db: &Connection, name: &str) -> Result<()> {
    environment::remove_with_env(db, "scripts", "script", name)
}

/// One script.
pub fn script(db: &Connection, name: &str) -> Result<Script> {
    scripts_where(db, "WHERE name = ?1", params![name])?
        .pop()
        .ok_or_else(|| StoreError::NotFound("script", name.into()))
}

/// Every script.
pub fn scripts(db: &Connection) -> Result<Vec<Script>> {
    scripts_where(db, "", params![])
}

fn scripts_where(
    db: &Connection,
    filter: &str,
    params: &[&dyn rusqlite::ToSql],
) -> Result<Vec<Script>> {
    let mut stmt = db.prepare(&format!(
        "SELECT name, interpreter, body, run_as_uid, run_as_gid, working_dir, timeout_secs, after_run,
            run_level
         FROM scripts {filter} ORDER BY name"
    ))?;
    let rows = stmt
        .query_map(params, |r| {
            Ok((
                Script {
                    name: r.get(0)?,
                    interpreter: r.get(1)?,
                    body: r.get(2)?,
                    run_as: ids(r.get(3)?, r.get(4)?),
                    working_dir: r.get(5)?,
                    timeout_secs: r.get(6)?,
                    after_run: AfterRun::None,
                    run_level: RunLevel::ReadWrite,
                },
                r.get::<_, String>(7)?,
                r.get::<_, String>(8)?,
            ))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    rows.into_iter()
        .map(|(mut script, after, level)| {
            script.after_run =
                AfterRun::parse(&after).ok_or(StoreError::Corrupt("after-run action", after))?;
            script.run_level =
                RunLevel::parse(&level).ok_or(StoreError::Corrupt("run level", level))?;
            Ok(script)
        })
        .collect()
}

/// Adds (or replaces, same script and path) an attachment.
pub fn put_attachment(db: &Connection, a: &Attachment) -> Result<()> {
    script(db, &a.script)?;
    db.execute(
        "INSERT OR REPLACE INTO attachments (script, path, content, sha256, owner_uid, owner_gid, mode, phase, template)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        params![
            a.script,
            a.path,
            a.content,
            a.sha256,
            a.owner.map(|i| i.uid),
            a.owner.map(|i| i.gid),
            a.mode,
            a.phase.as_str(),
            a.template
        ],
    )?;
    Ok(())
}

/// Adds (or replaces) an attachment with the first `a.size` bytes of `source` as its content,
/// written into the row a piece at a time (SQLite's incremental blob I/O), in one transaction.
pub fn put_attachment_file(db: &Connection, a: &Attachment, mut source: impl Read) -> Result<()> {
    script(db, &a.script)?;
    let size = i64::try_from(a.size)
        .map_err(|_| StoreError::Read(std::io::Error::other("the file is too large")))?;
    let tx = db.unchecked_transaction()?;
    tx.execute(
        "INSERT OR REPLACE INTO attachments (script, path, sha256, owner_uid, owner_gid, mode, phase, template, content)
         VALUES (?1, ?2, ?4, ?5, ?6, ?7, ?8, ?9, zeroblob(?3))",
        params![
            a.script,
            a.path,
            size,
            a.sha256,
            a.owner.map(|i| i.uid),
            a.owner.map(|i| i.gid),
            a.mode,
            a.phase.as_str(),
            a.template
        ],
    )?;
    let row = tx.last_insert_rowid();
    let mut blob = tx.blob_open("main", "attachments", "content", row, false)?;
    let copied =
        std::io::copy(&mut (&mut source).take(a.size), &mut blob).map_err(StoreError::Read)?;
    if copied != a.size {
        let short = format!("the file ended after {copied} of {} bytes", a.size);
        return Err(StoreError::Read(std::io::Error::other(short)));
    }
    blob.close()?;
    tx.commit()?;
    Ok(())
}

/// Removes an attachment.
pub fn remove_attachment(db: &Connection, script: &str, path: &str) -> Result<()> {
    if db.execute(
        "DELETE FROM attachments WHERE script = ?1 AND path = ?2",
        [script, path],
    )? == 0
    {
        return Err(StoreError::NotFound(
            "attachment",
            format!("{script}:{path}"),
        ));
    }
    Ok(())
}

/// A script's attachments (with their content), by path; or every attachment.
pub fn attachments(db: &Connection, script: Option<&str>) -> Result<Vec<Attachment>> {
    let mut stmt = db.prepare(
        "SELECT script, path, content, sha256, owner_uid, owner_gid, mode, phase, template FROM attachments
         WHERE ?1 IS NULL OR script = ?1 ORDER BY script, path",
    )?;
    let rows = stmt
        .query_map(params![script], |r| {
            let content: Vec<u8> = r.get(2)?;
            Ok(Attachment {
                script: r.get(0)?,
                path: r.get(1)?,
                size: content.len() as u64,
                content,
                sha256: r.get(3)?,
                owner: ids(r.get(4)?, r.get(5)?),
                mode: r.get(6)?,
                phase: phase(&r.get::<_, String>(7)?),
                template: r.get(8)?,
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows)
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
pub fn attachment(db: &Connection, script: &str, path: &str) -> Result<Option<Attachment>> {
    let found = db
        .query_row(
            "SELECT length(content), sha256, owner_uid, owner_gid, mode, phase, template FROM attachments
             WHERE script = ?1 AND path = ?2",
            params![script, path],
            |r| {
                Ok(Attachment {
                    script: script.to_owned(),
                    path: path.to_owned(),
                    content: Vec::new(),
                    size: r.get::<_, i64>(0)?.unsigned_abs(),
                    sha256: r.get(1)?,
                    owner: ids(r.get(2)?, r.get(3)?),
                    mode: r.get(4)?,
                    phase: phase(&r.get::<_, String>(5)?),
                    template: r.get(6)?,
                })
            },
        )
        .optional()?;
    Ok(found)
}

fn ids(uid: Option<u32>, gid: Option<u32>) -> Option<Ids> {
    Some(Ids {
        uid: uid?,
        gid: gid?,
    })
}

#[async_trait]
impl ScriptStore for Sqlite {
    async fn put_script(&self, script: &Script, replace: bool) -> Result<()> {
        let script = script.clone();
        self.call(move |db| put_script(db, &script, replace)).await
    }

    async fn remove_script(&self, name: &str) -> Result<()> {
        let name = name.to_owned();
        self.call(move |db| remove_script(db, &name)).await
    }

    async fn script(&self, name: &str) -> Result<Script> {
        let name = name.to_owned();
        self.read(move |db| script(db, &name)).await
    }

    async fn scripts(&self) -> Result<Vec<Script>> {
        self.read(scripts).await
    }

    async fn put_attachment(&self, attachment: &Attachment) -> Result<()> {
        let attachment = attachment.clone();
        self.call(move |db| put_attachment(db, &attachment)).await
    }

    async fn put_attachment_file(&self, attachment: &Attachment, source: File) -> Result<()> {
        let attachment = attachment.clone();
        self.call(move |db| put_attachment_file(db, &attachment, source))
            .await
    }

    async fn remove_attachment(&self, script: &str, path: &str) -> Result<()> {
        let (script, path) = (script.to_owned(), path.to_owned());
        self.call(move |db| remove_attachment(db, &script, &path))
            .await
    }

    async fn attachments(&self, script: Option<&str>) -> Result<Vec<Attachment>> {
        let script = script.map(str::to_owned);
        self.read(move |db| attachments(db, script.as_deref()))
            .await
    }

    async fn attachment(&self, script: &str, path: &str) -> Result<Option<Attachment>> {
        let (script, path) = (script.to_owned(), path.to_owned());
        self.read(move |db| attachment(db, &script, &path)).await
    }
}
