//! The notification outbox: every notification the server owes a webhook or a mail route, one
//! row per (event, destination), kept until it is delivered or given up on.
//!
//! Why an outbox in the store rather than sending at once: a notification must survive a
//! restart between the event and its delivery, go out once even when several servers share one
//! PostgreSQL database and all see the same event, and be retried when the receiver is down.
//! So the server *queues* a notification under a dedup key (`finding:42:breached`,
//! `change:PCR-2026-0001:approval:17`) that is unique per destination — a second queueing of
//! the same key, by this server on its next sweep or by another server, changes nothing — and
//! a sender *claims* due rows under a lease (a crashed sender's lease runs out and the row is
//! claimed again), then *finishes* each with its outcome: delivered, retry at a later time with
//! the error, or given up with the last error.
//!
//! Queueing and delivering are bookkeeping outside the audit chain, like feed runs: the events
//! notified are themselves audited (or are deadlines computed from audited state), and an entry
//! per delivery attempt would bury the decisions the chain exists to prove.
//!
//! The store also keeps the notifier's place in the audit chain (the last sequence number it
//! turned into notifications), advanced in the same transaction as the notifications it
//! queued, so a restart neither skips nor repeats an event.

use async_trait::async_trait;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::limits::check_len;
use crate::{Result, StoreError};

/// The longest dedup key.
pub const MAX_DEDUP_KEY: usize = 200;
/// The longest destination name (`webhook:NAME`, `email:NAME`).
pub const MAX_DESTINATION: usize = 200;
/// The longest event name.
pub const MAX_EVENT: usize = 64;
/// The most bytes of a notification's payload as JSON.
pub const MAX_PAYLOAD: usize = 256 * 1024;
/// The most bytes of a recorded delivery error; a longer one is cut (at a character boundary).
pub const MAX_ERROR: usize = 2000;
/// The most notifications queued by one call.
pub const MAX_BATCH: usize = 10_000;

/// Where a notification stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryState {
    /// Waiting for its (next) attempt, or being attempted under a lease.
    Queued,
    Delivered,
    /// Given up on after the last attempt; `last_error` says why.
    Failed,
}

impl DeliveryState {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryState::Queued => "queued",
            DeliveryState::Delivered => "delivered",
            DeliveryState::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<DeliveryState> {
        match s {
            "queued" => Some(DeliveryState::Queued),
            "delivered" => Some(DeliveryState::Delivered),
            "failed" => Some(DeliveryState::Failed),
            _ => None,
        }
    }
}

/// A notification to queue.
#[derive(Debug, Clone, PartialEq)]
pub struct NewNotification {
    /// The delivery's id (sent as `X-Patchwarden-Delivery`).
    pub id: Uuid,
    /// The event's identity; unique together with the destination.
    pub dedup_key: String,
    /// Which configured webhook or mail route it goes to.
    pub destination: String,
    /// The event's name (`finding_breached` …).
    pub event: String,
    /// What is sent (the webhook body; mail is written from it).
    pub payload: serde_json::Value,
}

/// A notification as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Notification {
    pub id: Uuid,
    pub dedup_key: String,
    pub destination: String,
    pub event: String,
    pub payload: serde_json::Value,
    pub state: DeliveryState,
    /// Attempts claimed so far (a claim counts, so a sender that dies mid-attempt still uses
    /// one up).
    pub attempts: u32,
    /// When the next attempt is due (while queued).
    pub next_attempt_at: Timestamp,
    /// Until when the current claim holds, if claimed.
    pub lease_until: Option<Timestamp>,
    pub last_error: Option<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub delivered_at: Option<Timestamp>,
}

/// How an attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliveryOutcome {
    Delivered,
    /// Try again at `at`.
    Retry {
        at: Timestamp,
        error: String,
    },
    /// No more attempts.
    GiveUp {
        error: String,
    },
}

/// What a queueing call did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Enqueued {
    /// Rows newly queued.
    pub queued: u32,
    /// Rows whose (dedup key, destination) was queued before, left as they were.
    pub duplicates: u32,
}

/// Which notifications to list; the default lists the newest 1000.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NotificationFilter {
    pub state: Option<DeliveryState>,
    pub event: Option<String>,
    pub destination: Option<String>,
    pub limit: Option<u32>,
}

/// Checks a notification before anything is written.
pub fn check_new(n: &NewNotification) -> Result<String> {
    for (field, value, max) in [
        ("notification.dedup_key", &n.dedup_key, MAX_DEDUP_KEY),
        ("notification.destination", &n.destination, MAX_DESTINATION),
        ("notification.event", &n.event, MAX_EVENT),
    ] {
        if value.is_empty() {
            return Err(StoreError::Invalid {
                field,
                reason: "must not be empty".into(),
            });
        }
        check_len(field, value, max)?;
    }
    crate::codec::to_json("notification payload", &n.payload, MAX_PAYLOAD)
}

/// Checks a batch: its size, and each notification; returns the payloads as JSON text.
pub fn check_batch(items: &[NewNotification]) -> Result<Vec<String>> {
    if items.len() > MAX_BATCH {
        return Err(StoreError::Invalid {
            field: "notifications",
            reason: format!("at most {MAX_BATCH} are queued at once"),
        });
    }
    items.iter().map(check_new).collect()
}

/// `error` cut to [`MAX_ERROR`] bytes at a character boundary.
pub fn bounded_error(error: &str) -> String {
    if error.len() <= MAX_ERROR {
        return error.to_owned();
    }
    let mut end = MAX_ERROR;
    while !error.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &error[..end])
}

/// The columns both backends select, in the order of [`RawNotification`].
pub const COLUMNS: &str = "id, dedup_key, destination, event, payload, state, attempts, \
                           next_attempt_at, lease_until, last_error, created_at, updated_at, \
                           delivered_at";

/// A row as both backends read it, before decoding (so the decoding is written once).
#[derive(Debug, Clone)]
pub struct RawNotification {
    pub id: String,
    pub dedup_key: String,
    pub destination: String,
    pub event: String,
    pub payload: String,
    pub state: String,
    pub attempts: i64,
    pub next_attempt_at: i64,
    pub lease_until: Option<i64>,
    pub last_error: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
    pub delivered_at: Option<i64>,
}

impl RawNotification {
    pub fn decode(self) -> Result<Notification> {
        use crate::codec::{from_json, opt_ts_from_db, ts_from_db};
        const T: &str = "notifications";
        let id = Uuid::parse_str(&self.id)
            .map_err(|e| StoreError::corrupt(T, &self.id, format!("id: {e}")))?;
        let state = DeliveryState::parse(&self.state)
            .ok_or_else(|| StoreError::corrupt(T, id, format!("state {:?}", self.state)))?;
        Ok(Notification {
            id,
            payload: from_json(T, &id, &self.payload)?,
            dedup_key: self.dedup_key,
            destination: self.destination,
            event: self.event,
            state,
            attempts: u32::try_from(self.attempts)
                .map_err(|_| StoreError::corrupt(T, id, "attempts out of range"))?,
            next_attempt_at: ts_from_db(T, &id, self.next_attempt_at)?,
            lease_until: opt_ts_from_db(T, &id, self.lease_until)?,
            last_error: self.last_error,
            created_at: ts_from_db(T, &id, self.created_at)?,
            updated_at: ts_from_db(T, &id, self.updated_at)?,
            delivered_at: opt_ts_from_db(T, &id, self.delivered_at)?,
        })
    }
}

/// The outbox. Both backends: a unique (dedup key, destination), claims that hand a row to one
/// caller at a time (`FOR UPDATE SKIP LOCKED` on PostgreSQL, the one writer on SQLite), and a
/// finish that only the current claim's holder can make.
#[async_trait]
pub trait NotificationStore: Send + Sync {
    /// Queues `items`, due at `now`; an item whose (dedup key, destination) exists already is
    /// left alone. When `audit_cursor` is given, the notifier's place in the audit chain moves
    /// to it (never backwards) in the same transaction. All or nothing.
    async fn enqueue_notifications(
        &self,
        items: &[NewNotification],
        audit_cursor: Option<i64>,
        now: Timestamp,
    ) -> Result<Enqueued>;

    /// The notifier's place in the audit chain: `None` before it first ran.
    async fn notification_cursor(&self) -> Result<Option<i64>>;

    /// Claims up to `limit` due notifications (queued, due by `now`, not claimed or with a
    /// lapsed claim), oldest due first, for `lease` until `lease_until`; each claim counts as
    /// an attempt.
    async fn claim_notifications(
        &self,
        lease: Uuid,
        lease_until: Timestamp,
        limit: u32,
        now: Timestamp,
    ) -> Result<Vec<Notification>>;

    /// Records how the attempt under `lease` ended. `false` (and nothing changed) when the
    /// claim is no longer this caller's: it lapsed and another sender claimed the row.
    async fn finish_notification(
        &self,
        id: Uuid,
        lease: Uuid,
        outcome: &DeliveryOutcome,
        now: Timestamp,
    ) -> Result<bool>;

    /// The notifications the filter admits, newest first.
    async fn list_notifications(&self, filter: &NotificationFilter) -> Result<Vec<Notification>>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_error_is_cut_at_a_character_boundary() {
        let long = "é".repeat(MAX_ERROR);
        let cut = bounded_error(&long);
        assert!(cut.len() <= MAX_ERROR + '…'.len_utf8());
        assert!(cut.ends_with('…'));
        assert_eq!(bounded_error("short"), "short");
    }

    #[test]
    fn empty_and_overlong_keys_are_refused() {
        let mut n = NewNotification {
            id: Uuid::new_v4(),
            dedup_key: String::new(),
            destination: "webhook:a".into(),
            event: "finding_breached".into(),
            payload: serde_json::json!({}),
        };
        assert!(matches!(check_new(&n), Err(StoreError::Invalid { .. })));
        n.dedup_key = "k".repeat(MAX_DEDUP_KEY + 1);
        assert!(matches!(check_new(&n), Err(StoreError::TooLong { .. })));
        n.dedup_key = "finding:1:breached".into();
        assert!(check_new(&n).is_ok());
    }
}
