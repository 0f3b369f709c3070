//! The SQLite schema: numbered migrations, recorded in `PRAGMA user_version`.

use rusqlite::{Connection, TransactionBehavior};

use crate::store::{Result, StoreError};

/// The schema, one migration per entry; entry `i` brings the file to version `i + 1`.
const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE hosts (
    name          TEXT PRIMARY KEY,
    address       TEXT NOT NULL,
    port          INTEGER NOT NULL,
    enabled       INTEGER NOT NULL DEFAULT 1,
    agent_key     TEXT,
    pin_first     INTEGER NOT NULL DEFAULT 0,
    pending_key   TEXT,
    last_rotation INTEGER,
    reachable     INTEGER,
    last_seen     INTEGER,
    agent_version TEXT,
    facts         TEXT,
    last_error    TEXT
);
CREATE TABLE groups (name TEXT PRIMARY KEY);
CREATE TABLE host_groups (
    host  TEXT NOT NULL REFERENCES hosts(name) ON DELETE CASCADE,
    grp   TEXT NOT NULL REFERENCES groups(name) ON DELETE CASCADE,
    PRIMARY KEY (host, grp)
);
CREATE TABLE scripts (
    name         TEXT PRIMARY KEY,
    interpreter  TEXT NOT NULL,
    body         BLOB NOT NULL,
    run_as_uid   INTEGER,
    run_as_gid   INTEGER,
    working_dir  TEXT,
    timeout_secs INTEGER,
    after_run    TEXT NOT NULL DEFAULT 'none'
);
CREATE TABLE group_scripts (
    grp    TEXT NOT NULL REFERENCES groups(name) ON DELETE CASCADE,
    script TEXT NOT NULL REFERENCES scripts(name) ON DELETE CASCADE,
    PRIMARY KEY (grp, script)
);
CREATE TABLE attachments (
    script    TEXT NOT NULL REFERENCES scripts(name) ON DELETE CASCADE,
    path      TEXT NOT NULL,
    content   BLOB NOT NULL,
    sha256    TEXT NOT NULL,
    owner_uid INTEGER,
    owner_gid INTEGER,
    mode      INTEGER NOT NULL,
    phase     TEXT NOT NULL CHECK (phase IN ('before', 'after')),
    PRIMARY KEY (script, path)
);
CREATE TABLE env (
    scope  TEXT NOT NULL CHECK (scope IN ('global', 'group', 'host', 'script')),
    owner  TEXT NOT NULL,
    name   TEXT NOT NULL,
    value  TEXT NOT NULL,
    secret INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (scope, owner, name)
);
CREATE TABLE runs (
    id          INTEGER PRIMARY KEY,
    host        TEXT NOT NULL,
    what        TEXT NOT NULL,
    action      TEXT NOT NULL,
    started     INTEGER NOT NULL,
    finished    INTEGER,
    success     INTEGER,
    outcome     TEXT,
    exit_code   INTEGER,
    elapsed_ms  INTEGER,
    stdout      BLOB NOT NULL DEFAULT x'',
    stderr      BLOB NOT NULL DEFAULT x'',
    truncated   INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX runs_by_host ON runs (host, id);
CREATE TABLE events (
    id     INTEGER PRIMARY KEY,
    at     INTEGER NOT NULL,
    host   TEXT,
    kind   TEXT NOT NULL,
    detail TEXT NOT NULL
);
CREATE INDEX events_by_host ON events (host, id);
"#,
    r#"
-- The process that started a run (`pid:start:boot`, see `owner`), to find interrupted runs.
ALTER TABLE runs ADD COLUMN owner TEXT;
CREATE INDEX runs_open ON runs (id) WHERE finished IS NULL AND outcome IS NULL;
"#,
    r#"
-- Who made an event happen (`cli:alice`, later API users and keys): the audit trail.
ALTER TABLE events ADD COLUMN actor TEXT;
"#,
    r#"
-- Whether `value` is encrypted (`store::secrets`). Secrets stored before in plain text are
-- encrypted when the database is next opened (`environment::seal_plain_secrets`).
ALTER TABLE env ADD COLUMN sealed INTEGER NOT NULL DEFAULT 0;
"#,
    r#"
-- The API's users (`permissions`: `model::Permissions` as JSON) and their API keys, kept as the
-- SHA-256 of their secret: a key is looked up by it, and its secret is never stored.
CREATE TABLE users (
    name          TEXT PRIMARY KEY,
    password_hash TEXT NOT NULL,
    permissions   TEXT NOT NULL,
    disabled      INTEGER NOT NULL DEFAULT 0,
    created       INTEGER NOT NULL
);
CREATE TABLE api_keys (
    id          INTEGER PRIMARY KEY,
    user        TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,
    hash        TEXT NOT NULL UNIQUE,
    permissions TEXT NOT NULL,
    created     INTEGER NOT NULL,
    expires     INTEGER,
    revoked     INTEGER
);
CREATE INDEX api_keys_by_user ON api_keys (user, id);
"#,
    r#"
-- The variables of hosts removed before `host remove` took them along: a new host of the same
-- name would get them.
DELETE FROM env WHERE scope = 'host' AND owner NOT IN (SELECT name FROM hosts);
"#,
    r#"
-- An attachment's content as the last column: SQLite keeps a `zeroblob` unwritten only there,
-- so a large one can be reserved and then written a piece at a time (the HTTP API's uploads)
-- instead of being built whole in memory.
CREATE TABLE attachments_new (
    script    TEXT NOT NULL REFERENCES scripts(name) ON DELETE CASCADE,
    path      TEXT NOT NULL,
    sha256    TEXT NOT NULL,
    owner_uid INTEGER,
    owner_gid INTEGER,
    mode      INTEGER NOT NULL,
    phase     TEXT NOT NULL CHECK (phase IN ('before', 'after')),
    content   BLOB NOT NULL,
    PRIMARY KEY (script, path)
);
INSERT INTO attachments_new (script, path, sha256, owner_uid, owner_gid, mode, phase, content)
    SELECT script, path, sha256, owner_uid, owner_gid, mode, phase, content FROM attachments;
DROP TABLE attachments;
ALTER TABLE attachments_new RENAME TO attachments;
"#,
    r#"
-- Browser sessions of the API's users, kept as the SHA-256 of their cookie's token and of
-- their CSRF token (neither is stored), until they expire, end, or their user is disabled.
CREATE TABLE sessions (
    id        INTEGER PRIMARY KEY,
    user      TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,
    hash      TEXT NOT NULL UNIQUE,
    csrf_hash TEXT NOT NULL,
    created   INTEGER NOT NULL,
    expires   INTEGER NOT NULL
);
CREATE INDEX sessions_by_user ON sessions (user, id);
"#,
    r#"
-- Who may run a script (`model::RunLevel`): read-only or read-write, as in Go Otto.
ALTER TABLE scripts ADD COLUMN run_level TEXT NOT NULL DEFAULT 'read-write'
    CHECK (run_level IN ('read-only', 'read-write'));
"#,
    r#"
-- The HTTP API's launches (`model::Launch`), so that their events outlive `serve`: `hosts` a
-- JSON array, `last_event` the summary (with each host's run id) as JSON. AUTOINCREMENT: an id
-- is never reused.
CREATE TABLE launches (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    actor      TEXT NOT NULL,
    job        TEXT NOT NULL,
    hosts      TEXT NOT NULL,
    started    INTEGER NOT NULL,
    finished   INTEGER,
    last_event TEXT
);
"#,
    r#"
-- The round trip (ms) of a host's last answered heartbeat, for the slowest on the dashboard.
ALTER TABLE hosts ADD COLUMN round_trip_ms REAL;
"#,
    r#"
-- Session ids never reused (AUTOINCREMENT), so that "session 4" in the event log is one
-- session. Ids handed out before and now only in the log (`signed-in` events) are skipped too.
CREATE TABLE sessions_new (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    user      TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,
    hash      TEXT NOT NULL UNIQUE,
    csrf_hash TEXT NOT NULL,
    created   INTEGER NOT NULL,
    expires   INTEGER NOT NULL
);
INSERT INTO sessions_new (id, user, hash, csrf_hash, created, expires)
    SELECT id, user, hash, csrf_hash, created, expires FROM sessions;
DROP TABLE sessions;
ALTER TABLE sessions_new RENAME TO sessions;
CREATE INDEX sessions_by_user ON sessions (user, id);
DELETE FROM sqlite_sequence WHERE name = 'sessions';
INSERT INTO sqlite_sequence (name, seq) SELECT 'sessions', max(
    (SELECT coalesce(max(id), 0) FROM sessions),
    (SELECT coalesce(max(CAST(substr(detail, instr(detail, ' signed in (session ') + 20)
                              AS INTEGER)), 0)
     FROM events WHERE kind = 'signed-in'));
"#,
    r#"
-- Whether a cancel stopped a run (`model::Run::cancelled`): its own outcome, not a failure.
-- Runs cancelled before were told by their outcome only.
ALTER TABLE runs ADD COLUMN cancelled INTEGER NOT NULL DEFAULT 0;
UPDATE runs SET cancelled = 1
    WHERE outcome IN ('cancelled', 'cancelled before the script started');
"#,
    r#"
-- Schedules (`model::Schedule`): `run` is what they run where, as the body of a run
-- (`ops::NewRun`) in JSON; `next_due` the next due time (ms), which the server that starts
-- it claims by a conditional update from the value it read (so on several servers sharing
-- the database one claims it), NULL while disabled. A launch names the schedule that
-- started it (unlinked when the schedule is removed). AUTOINCREMENT: a removed schedule's id is not reused by another.
CREATE TABLE schedules (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    name      TEXT NOT NULL UNIQUE,
    cron      TEXT NOT NULL,
    time_zone TEXT NOT NULL,
    enabled   INTEGER NOT NULL,
    run       TEXT NOT NULL,
    next_due  INTEGER,
    created   INTEGER NOT NULL
);
ALTER TABLE launches ADD COLUMN schedule INTEGER;
CREATE INDEX launches_by_schedule ON launches (schedule, id);
"#,
    r#"
-- Enrollment (`model::Token`, `model::Rule`): tokens stored as the SHA-256 of their secret,
-- rules in the order they are tried (`position`, 1 first). Groups and clauses as JSON arrays.
-- IF NOT EXISTS: the tests make an older file from a new one by undoing later migrations, and
-- new tables need not be undone for that.
CREATE TABLE IF NOT EXISTS enrollment_tokens (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    hash       TEXT NOT NULL UNIQUE,
    note       TEXT NOT NULL,
    uses       INTEGER NOT NULL,
    used       INTEGER NOT NULL DEFAULT 0,
    expires    INTEGER NOT NULL,
    groups     TEXT NOT NULL,
    revoked    INTEGER NOT NULL DEFAULT 0,
    created_by TEXT NOT NULL,
    created    INTEGER NOT NULL,
    last_used  INTEGER
);
CREATE TABLE IF NOT EXISTS enrollment_rules (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    position   INTEGER NOT NULL,
    clauses    TEXT NOT NULL,
    groups     TEXT NOT NULL,
    trust      INTEGER NOT NULL,
    created_by TEXT NOT NULL,
    created    INTEGER NOT NULL
);
-- What each enrolled host's agent reported (a JSON object), shown while it waits for approval.
CREATE TABLE IF NOT EXISTS enrollments (
    host       TEXT PRIMARY KEY REFERENCES hosts(name) ON DELETE CASCADE,
    properties TEXT NOT NULL,
    at         INTEGER NOT NULL
);
"#,
    r#"
-- Whether the host's agent calls home (`model::HostStatus::calls_home`): it is not dialled.
ALTER TABLE hosts ADD COLUMN calls_home INTEGER NOT NULL DEFAULT 0;
"#,
    r#"
-- Each host's server key (OpenSSH private-key text), sealed with the data directory's
-- secrets.key: the current one, and the next one while a rotation waits for the agent.
CREATE TABLE IF NOT EXISTS server_keys (
    host   TEXT NOT NULL,
    slot   TEXT NOT NULL CHECK (slot IN ('current', 'next')),
    sealed TEXT NOT NULL,
    PRIMARY KEY (host, slot)
);
"#,
    r#"
-- Leases of servers sharing one database, and the hosts each owns, are PostgreSQL's
-- (`store::postgres::leases`, its migration 18): an SQLite file is one server's. Nothing
-- changes here; the number keeps both dialects' versions the same.
SELECT 1;
"#,
    r#"
-- A launch's run level (for its cancel), the lease of the server running it (PostgreSQL's:
-- none here), and whether a cancel was asked for on another server.
ALTER TABLE launches ADD COLUMN level TEXT NOT NULL DEFAULT 'read-write';
ALTER TABLE launches ADD COLUMN owner TEXT;
ALTER TABLE launches ADD COLUMN cancel_asked INTEGER NOT NULL DEFAULT 0;
-- A running launch's events (JSON text, numbered as its server produced them), relayed for
-- followers on other servers; forgotten a while after it ends.
CREATE TABLE IF NOT EXISTS launch_events (
    launch INTEGER NOT NULL REFERENCES launches(id) ON DELETE CASCADE,
    seq    INTEGER NOT NULL,
    event  TEXT NOT NULL,
    PRIMARY KEY (launch, seq)
);
"#,
    r#"
-- Who started each run (`ops::Actor` as text), to find runs by user.
ALTER TABLE runs ADD COLUMN actor TEXT;
"#,
    r#"
-- The launch each run is part of, and what each launch of a script or command asked for (the
-- JSON of `ops::NewRun`), to start it again.
ALTER TABLE runs ADD COLUMN launch INTEGER;
CREATE INDEX runs_by_launch ON runs (launch) WHERE launch IS NOT NULL;
ALTER TABLE launches ADD COLUMN request TEXT;
"#,
    r#"
-- Webhooks (`events` their kinds, comma-separated; `secret` sealed), the deliveries of events
-- of the log to them (one per webhook and event), and how far the log has been matched
-- (from the newest event when this came to be: older ones are not told).
CREATE TABLE webhooks (
    id      INTEGER PRIMARY KEY,
    url     TEXT NOT NULL,
    events  TEXT NOT NULL,
    secret  TEXT NOT NULL,
    created INTEGER NOT NULL
);
CREATE TABLE webhook_deliveries (
    id       INTEGER PRIMARY KEY,
    webhook  INTEGER NOT NULL,
    event    INTEGER NOT NULL,
    kind     TEXT NOT NULL,
    body     TEXT NOT NULL,
    status   TEXT NOT NULL DEFAULT 'pending',
    attempts INTEGER NOT NULL DEFAULT 0,
    code     INTEGER,
    error    TEXT,
    created  INTEGER NOT NULL,
    next     INTEGER NOT NULL,
    UNIQUE (webhook, event)
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next) WHERE status = 'pending';
CREATE TABLE webhook_cursor (last_event INTEGER NOT NULL);
INSERT INTO webhook_cursor SELECT coalesce(max(id), 0) FROM events;
"#,
    r#"
-- Metrics for charts: each host's heartbeats, and the fleet's reachable hosts (the fewest and
-- most seen) and runs by outcome, by the hour (`span` 3600000 ms) for 8 days, then by the day
-- (86400000) for 400 days.
CREATE TABLE host_metrics (
    host           TEXT NOT NULL,
    at             INTEGER NOT NULL,
    span           INTEGER NOT NULL,
    samples        INTEGER NOT NULL,
    rtt_sum        REAL NOT NULL,
    rtt_max        REAL NOT NULL,
    load_sum       INTEGER NOT NULL,
    flash_free_min INTEGER,
    PRIMARY KEY (host, span, at)
);
CREATE TABLE fleet_metrics (
    at            INTEGER NOT NULL,
    span          INTEGER NOT NULL,
    hosts         INTEGER NOT NULL DEFAULT 0,
    reachable_min INTEGER,
    reachable_max INTEGER,
    succeeded     INTEGER NOT NULL DEFAULT 0,
    failed        INTEGER NOT NULL DEFAULT 0,
    cancelled     INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (span, at)
);
"#,
    r#"
-- An attachment may be a template, rendered for each host before it is sent.
ALTER TABLE attachments ADD COLUMN template INTEGER NOT NULL DEFAULT 0;
"#,
];

/// The newest schema version this program knows.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// What undoes migrations 19 (a launch's level, owner and relayed events), 20 (a run's actor),
/// 21 (a run's launch, a launch's request), 22 (webhooks), 23 (metrics) and 24 (templates
/// among attachments), for tests that make a database of an older schema.
#[cfg(test)]
pub const UNDO_LAUNCH_RELAY: &str = "ALTER TABLE attachments DROP COLUMN template;
    DROP TABLE host_metrics; DROP TABLE fleet_metrics;
    DROP TABLE webhooks; DROP TABLE webhook_deliveries;
    DROP TABLE webhook_cursor; DROP INDEX runs_by_launch; ALTER TABLE runs DROP COLUMN launch;
    ALTER TABLE launches DROP COLUMN request; ALTER TABLE runs DROP COLUMN actor;
    ALTER TABLE launches DROP COLUMN level;
    ALTER TABLE launches DROP COLUMN owner; ALTER TABLE launches DROP COLUMN cancel_asked;
    DROP TABLE launch_events;";

/// Brings the file to [`SCHEMA_VERSION`], one transaction per migration; a file of a newer
/// version is refused.
///
/// Any number of processes may open a new or older file at once: each migration runs in an
/// IMMEDIATE transaction (the one writer, others wait for it within the busy timeout) that
/// reads the version again inside it, so a migration another process has just applied is
/// never applied twice.
pub fn migrate(db: &mut Connection) -> Result<()> {
    if schema_version(db)? == SCHEMA_VERSION {
        return Ok(());
    }
    loop {
        let tx = db.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let found = schema_version(&tx)?;
        if found > SCHEMA_VERSION {
            return Err(StoreError::TooNew {
                found,
                known: SCHEMA_VERSION,
            });
        }
        let Some(sql) = usize::try_from(found).ok().and_then(|i| MIGRATIONS.get(i)) else {
            return Ok(());
        };
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", found + 1)?;
        tx.commit()?;
    }
}

/// The schema version of the open file.
pub fn schema_version(db: &Connection) -> Result<i64> {
    Ok(db.query_row("PRAGMA user_version", [], |r| r.get(0))?)
}
