//! Group commit: writes that wait for the connection at the same time are committed in one
//! transaction, so that they cost one flush of the disk (with `synchronous = FULL`, a commit
//! waits for the disk) instead of one each. Each write runs in a savepoint of its own, so its
//! failure undoes only itself, and hears how it went only once the commit has happened.

use std::sync::Mutex;

use rusqlite::Connection;

use crate::store::{Result, StoreError};

/// A write waiting for the connection: runs its query (or, given why the group could not
/// begin, does not), and returns what tells its caller the outcome once the commit's own is
/// known (the commit's error, if it failed).
pub type Write = Box<dyn FnOnce(std::result::Result<&Connection, &str>) -> Reply + Send>;

/// Tells a write's caller how it ended, given the commit's error if there was one.
pub type Reply = Box<dyn FnOnce(Option<&str>) + Send>;

/// The writes waiting to be committed together.
#[derive(Default)]
pub struct Queue(Mutex<Vec<Write>>);

impl Queue {
    /// Adds a write to the next group.
    pub fn push(&self, write: Write) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).push(write);
    }

    /// Commits every write waiting, together (nothing when another thread already took them).
    pub fn commit(&self, db: &Connection) {
        let writes = std::mem::take(&mut *self.0.lock().unwrap_or_else(|e| e.into_inner()));
        if writes.is_empty() {
            return;
        }
        if let Err(e) = db.execute_batch("BEGIN IMMEDIATE") {
            let why = format!("cannot begin a transaction: {e}");
            for write in writes {
                write(Err(&why))(None);
            }
            return;
        }
        let replies: Vec<Reply> = writes.into_iter().map(|write| write(Ok(db))).collect();
        let committed = db.execute_batch("COMMIT").map_err(|e| e.to_string());
        if committed.is_err() {
            let _ = db.execute_batch("ROLLBACK");
        }
        for reply in replies {
            reply(committed.as_ref().err().map(String::as_str));
        }
    }
}

/// `query` as a write: in a savepoint of its own, its result sent to `reply` after the commit.
pub fn write<T, F>(query: F, reply: tokio::sync::oneshot::Sender<Result<T>>) -> Write
where
    T: Send + 'static,
    F: FnOnce(&Connection) -> Result<T> + Send + 'static,
{
    Box::new(move |db: std::result::Result<&Connection, &str>| {
        let result = match db {
            Err(why) => Err(StoreError::Unavailable(why.to_string())),
            Ok(db) => in_savepoint(db, query),
        };
        Box::new(move |commit: Option<&str>| {
            let _ = reply.send(match (result, commit) {
                (Ok(_), Some(e)) => Err(StoreError::Unavailable(format!("commit failed: {e}"))),
                (result, _) => result,
            });
        })
    })
}

/// Runs `query` in a savepoint: kept if it succeeds, undone if it fails.
fn in_savepoint<T>(db: &Connection, query: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
    db.execute_batch("SAVEPOINT write")?;
    let result = query(db);
    let end = match &result {
        Ok(_) => db.execute_batch("RELEASE write"),
        Err(_) => db.execute_batch("ROLLBACK TO write; RELEASE write"),
    };
    result.and_then(|value| end.map(|()| value).map_err(StoreError::from))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn writes_of_one_group_are_committed_together_and_a_failed_one_undoes_only_itself() {
        let db = Connection::open_in_memory().unwrap();
        db.execute_batch("CREATE TABLE t (n INTEGER)").unwrap();
        let queue = Queue::default();
        let mut answers = Vec::new();
        for n in [1, 2, 3] {
            let (reply, answer) = tokio::sync::oneshot::channel();
            queue.push(write(
                move |db: &Connection| {
                    db.execute("INSERT INTO t VALUES (?1)", [n])?;
                    if n == 2 {
                        return Err(StoreError::Unavailable("refused".into()));
                    }
                    Ok(n)
                },
                reply,
            ));
            answers.push(answer);
        }
        queue.commit(&db);
        let got: Vec<_> = answers
            .into_iter()
            .map(|mut a| a.try_recv().unwrap().ok())
            .collect();
        assert_eq!(got, [Some(1), None, Some(3)]);
        let rows: Vec<i64> = db
            .prepare("SELECT n FROM t ORDER BY n")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        assert_eq!(rows, [1, 3]);
        assert!(db.is_autocommit(), "the group's transaction is over");
        // Nothing waiting: nothing to do.
        queue.commit(&db);
    }
}
