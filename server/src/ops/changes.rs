//! The fleet's changes as they happen, for a live view (the web UI's dashboard, hosts list and
//! host page): the event log's new entries about hosts, their keys, runs and schedules, read
//! every [`POLL`] by each follower, from a given event on, so that a client that reconnects
//! (naming the last event it had) catches up. Because they are read from the store, changes
//! made by any server on a shared database are told. Users, sessions and API keys are left
//! out: not everyone may see them; and an entry's detail too: a page reads what it shows.

use std::collections::VecDeque;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{Cancellation, Ops, Result};
use crate::model::{Event, EventKind, from_utc, utc};
use crate::store::Store;

/// How often a follower reads the log.
pub const POLL: Duration = Duration::from_secs(1);

/// Most entries read at once.
const BATCH: u32 = 500;

/// One change: an entry of the event log, without its detail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct FleetChange {
    /// The entry's id: a client that reconnects names the last it had (`Last-Event-ID`).
    pub id: i64,
    /// When (RFC 3339).
    #[serde(serialize_with = "utc", deserialize_with = "from_utc")]
    #[schema(value_type = String, format = DateTime)]
    pub at: i64,
    /// What kind (`reachability`, `run-finished`, `key-pending`, `host-added`…).
    pub kind: String,
    /// The host it concerns, if one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
}

/// The kinds not told: who signed in, users and API keys.
const PRIVATE: [EventKind; 7] = [
    EventKind::UserChanged,
    EventKind::ApiKeyChanged,
    EventKind::SignedIn,
    EventKind::SignInFailed,
    EventKind::SignedOut,
    EventKind::PasswordChanged,
    EventKind::ApiKeyRefused,
];

impl FleetChange {
    /// `event` as a change, unless its kind is not told.
    fn of(event: Event) -> Option<FleetChange> {
        let private = PRIVATE.iter().any(|k| k.as_str() == event.kind);
        (!private).then_some(FleetChange {
            id: event.id,
            at: event.at,
            kind: event.kind,
            host: event.host,
        })
    }
}

/// Reads the changes as they come, until the server stops.
pub struct ChangeFeed {
    store: Store,
    after: i64,
    pending: VecDeque<FleetChange>,
    closed: Cancellation,
}

impl ChangeFeed {
    /// The next change, waiting for it; None once the server is stopping.
    pub async fn next(&mut self) -> Option<FleetChange> {
        loop {
            if let Some(change) = self.pending.pop_front() {
                return Some(change);
            }
            if self.closed.is_cancelled() {
                return None;
            }
            match self.store.events_after(self.after, BATCH).await {
                Ok(events) => {
                    let full = events.len() == BATCH as usize;
                    for event in events {
                        self.after = event.id;
                        self.pending.extend(FleetChange::of(event));
                    }
                    if full || !self.pending.is_empty() {
                        continue;
                    }
                }
                Err(e) => tracing::warn!("the changes cannot be read: {e}"),
            }
            tokio::select! {
                () = tokio::time::sleep(POLL) => {}
                () = self.closed.cancelled() => return None,
            }
        }
    }
}

impl Ops {
    /// The changes after event `after` (none given: from now on), until `closed`. Anyone
    /// signed in may follow them.
    pub async fn changes(&self, after: Option<i64>, closed: Cancellation) -> Result<ChangeFeed> {
        let store = self.fleet.store().clone();
        let after = match after {
            Some(after) => after,
            None => store.last_event_id().await?,
        };
        Ok(ChangeFeed {
            store,
            after,
            pending: VecDeque::new(),
            closed,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::fixture;
    use super::*;
    use crate::model::NewEvent;

    async fn log(ops: &Ops, kind: EventKind, host: &str) {
        let event = NewEvent {
            actor: None,
            host: Some(host.into()),
            kind,
            detail: "x".into(),
        };
        ops.fleet.store().log(&event).await.unwrap();
    }

    #[tokio::test]
    async fn changes_come_from_now_or_after_an_entry_without_private_ones() {
        let (_dir, ops) = fixture().await;
        log(&ops, EventKind::HostAdded, "r1").await;
        let closed = Cancellation::new();
        // From now on: the entry before is not told.
        let mut now = ops.changes(None, closed.clone()).await.unwrap();
        log(&ops, EventKind::SignedIn, "r1").await;
        log(&ops, EventKind::Reachability, "r1").await;
        let change = now.next().await.unwrap();
        assert_eq!(
            (change.kind.as_str(), change.host.as_deref()),
            ("reachability", Some("r1"))
        );
        // After an entry: what came since, in order (a client that reconnects).
        let mut since = ops.changes(Some(0), closed.clone()).await.unwrap();
        let first = since.next().await.unwrap();
        assert_eq!((first.id, first.kind.as_str()), (1, "host-added"));
        assert_eq!(since.next().await.unwrap(), change);
        // The server stopping ends a follower waiting for more.
        let waiting = tokio::spawn(async move { since.next().await });
        closed.cancel();
        assert_eq!(waiting.await.unwrap(), None);
    }
}
