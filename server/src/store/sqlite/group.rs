//! Group commit: writes that wait for the connection at the same time are committed in one
//! transaction, so that they cost one flush of the disk (with `synchronous = FULL`, a commit
//! waits for the disk) instead of one each. Each write runs in a savepoint of its own, so its
//! failure undoes only itself, and hears how it went only once the commit has happened.
//!
//! One thread of its own ([`Committer`]) does the commits: it wakes when writes are waiting,
//! takes them all, and commits them while the next ones gather. A blocking task per write
//! instead woke up to one thread per write in flight, each to find its write already taken,
//! on a machine whose cores the hosts' runs need.

use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};

use rusqlite::Connection;

use crate::store::{Result, StoreError};

/// A write waiting for the connection: runs its query (or, given why the group could not
/// begin, does not), and returns what tells its caller the outcome once the commit's own is
/// known (the commit's error, if it failed).
pub type Write = Box<dyn FnOnce(std::result::Result<&Connection, &str>) -> Reply + Send>;

/// Tells a write's caller how it ended, given the commit's error if there was one.
pub type Reply = Box<dyn FnOnce(Option<&str>) + Send>;

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// What the committing thread waits on: the writes and whether the store has been dropped.
#[derive(Default)]
struct Pending {
    writes: Vec<Write>,
    closed: bool,
}

/// The thread that commits the writes of a connection, in groups. Dropped, it commits what is
/// left and ends, and the drop waits for it (so the connection is closed once the store is).
pub struct Committer {
    pending: Arc<(Mutex<Pending>, Condvar)>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Committer {
    /// Starts the thread committing writes on `db` (locked for each group, so that reads on
    /// the same connection go between groups).
    pub fn start(db: Arc<Mutex<Connection>>) -> std::io::Result<Committer> {
        let pending: Arc<(Mutex<Pending>, Condvar)> = Arc::default();
        let shared = Arc::clone(&pending);
        let thread = std::thread::Builder::new()
            .name("sqlite-commit".into())
            .spawn(move || {
                let (state, wake) = &*shared;
                loop {
                    let (writes, closed) = {
                        let mut state = lock(state);
                        while state.writes.is_empty() && !state.closed {
                            state = wake.wait(state).unwrap_or_else(PoisonError::into_inner);
                        }
                        (std::mem::take(&mut state.writes), state.closed)
                    };
                    commit(&lock(&db), writes);
                    if closed {
                        return;
                    }
                }
            })?;
        Ok(Committer {
            pending,
            thread: Some(thread),
        })
    }

    /// Adds a write to the next group.
    pub fn push(&self, write: Write) {
        let (state, wake) = &*self.pending;
        lock(state).writes.push(write);
        wake.notify_one();
    }
}

impl Drop for Committer {
    fn drop(&mut self) {
        let (state, wake) = &*self.pending;
        lock(state).closed = true;
        wake.notify_one();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Commits `writes` together, in one transaction.
fn commit(db: &Connection, writes: Vec<Write>) {
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

    fn insert(n: i64) -> (Write, tokio::sync::oneshot::Receiver<Result<i64>>) {
        let (reply, answer) = tokio::sync::oneshot::channel();
        let write = write(
            move |db: &Connection| {
                db.execute("INSERT INTO t VALUES (?1)", [n])?;
                if n == 2 {
                    return Err(StoreError::Unavailable("refused".into()));
                }
                Ok(n)
            },
            reply,
        );
        (write, answer)
    }

    fn rows(db: &Connection) -> Vec<i64> {
        db.prepare("SELECT n FROM t ORDER BY n")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap()
    }

    #[test]
    fn writes_of_one_group_are_committed_together_and_a_failed_one_undoes_only_itself() {
        let db = Connection::open_in_memory().unwrap();
        db.execute_batch("CREATE TABLE t (n INTEGER)").unwrap();
        let (writes, answers): (Vec<_>, Vec<_>) = [1, 2, 3].into_iter().map(insert).unzip();
        commit(&db, writes);
        let got: Vec<_> = answers
            .into_iter()
            .map(|mut a| a.try_recv().unwrap().ok())
            .collect();
        assert_eq!(got, [Some(1), None, Some(3)]);
        assert_eq!(rows(&db), [1, 3]);
        assert!(db.is_autocommit(), "the group's transaction is over");
        // Nothing waiting: nothing to do.
        commit(&db, Vec::new());
    }

    #[test]
    fn the_committer_answers_each_write_after_its_commit_and_commits_what_is_left_when_dropped() {
        let db = Connection::open_in_memory().unwrap();
        db.execute_batch("CREATE TABLE t (n INTEGER)").unwrap();
        let db = Arc::new(Mutex::new(db));
        let committer = Committer::start(Arc::clone(&db)).unwrap();
        let (first, answer) = insert(1);
        committer.push(first);
        assert_eq!(answer.blocking_recv().unwrap().unwrap(), 1);
        assert_eq!(rows(&lock(&db)), [1]);
        let (last, answer) = insert(3);
        committer.push(last);
        drop(committer);
        assert_eq!(answer.blocking_recv().unwrap().unwrap(), 3);
        assert_eq!(rows(&lock(&db)), [1, 3]);
    }
}
