//! The notification outbox on SQLite. Queueing is `INSERT … ON CONFLICT DO NOTHING` on the
//! unique (dedup key, destination); claims and finishes run on the one writer connection in
//! `BEGIN IMMEDIATE` transactions, so two claims never take the same row.

use async_trait::async_trait;
use jiff::Timestamp;
use patchwarden_store::codec::ts_to_db;
use patchwarden_store::notification::{
    COLUMNS, DeliveryOutcome, Enqueued, NewNotification, Notification, NotificationFilter,
    NotificationStore, RawNotification, bounded_error, check_batch,
};
use patchwarden_store::{Result, StoreError};
use rusqlite::{Connection, OptionalExtension, Row, params};
use uuid::Uuid;

use crate::{SqliteStore, db};

fn raw(r: &Row<'_>) -> rusqlite::Result<RawNotification> {
    Ok(RawNotification {
        id: r.get(0)?,
        dedup_key: r.get(1)?,
        destination: r.get(2)?,
        event: r.get(3)?,
        payload: r.get(4)?,
        state: r.get(5)?,
        attempts: r.get(6)?,
        next_attempt_at: r.get(7)?,
        lease_until: r.get(8)?,
        last_error: r.get(9)?,
        created_at: r.get(10)?,
        updated_at: r.get(11)?,
        delivered_at: r.get(12)?,
    })
}

fn enqueue(
    c: &Connection,
    items: &[NewNotification],
    payloads: &[String],
    cursor: Option<i64>,
    now: Timestamp,
) -> Result<Enqueued> {
    let at = ts_to_db("notification created_at", now)?;
    let mut out = Enqueued::default();
    let mut stmt = c
        .prepare_cached(
            "INSERT INTO notifications (id, dedup_key, destination, event, payload, state,
                                        attempts, next_attempt_at, created_at, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, 'queued', 0, ?6, ?6, ?6)
             ON CONFLICT (dedup_key, destination) DO NOTHING",
        )
        .map_err(db("queue notifications"))?;
    for (n, payload) in items.iter().zip(payloads) {
        let added = stmt
            .execute(params![
                n.id.to_string(),
                n.dedup_key,
                n.destination,
                n.event,
                payload,
                at
            ])
            .map_err(db("queue notifications"))?;
        if added == 1 {
            out.queued += 1;
        } else {
            out.duplicates += 1;
        }
    }
    if let Some(seq) = cursor {
        c.execute(
            "UPDATE notification_cursor SET audit_seq = max(coalesce(audit_seq, ?1), ?1)
             WHERE id = 1",
            [seq],
        )
        .map_err(db("advance the notification cursor"))?;
    }
    Ok(out)
}

fn claim(
    c: &Connection,
    lease: Uuid,
    lease_until: Timestamp,
    limit: u32,
    now: Timestamp,
) -> Result<Vec<Notification>> {
    let now = ts_to_db("now", now)?;
    let until = ts_to_db("lease_until", lease_until)?;
    let mut stmt = c
        .prepare_cached(&format!(
            "UPDATE notifications
             SET lease = ?1, lease_until = ?2, attempts = attempts + 1, updated_at = ?3
             WHERE id IN (
                 SELECT id FROM notifications
                 WHERE state = 'queued' AND next_attempt_at <= ?3
                   AND (lease_until IS NULL OR lease_until <= ?3)
                 ORDER BY next_attempt_at, created_at, id LIMIT ?4)
             RETURNING {COLUMNS}"
        ))
        .map_err(db("claim notifications"))?;
    let rows = stmt
        .query_map(
            params![lease.to_string(), until, now, i64::from(limit)],
            raw,
        )
        .map_err(db("claim notifications"))?;
    let mut out = Vec::new();
    for r in rows {
        out.push(r.map_err(db("claim notifications"))?.decode()?);
    }
    // RETURNING gives no order; the claim promises the oldest due first.
    out.sort_by_key(|n| (n.next_attempt_at, n.created_at, n.id));
    Ok(out)
}

fn finish(
    c: &Connection,
    id: Uuid,
    lease: Uuid,
    outcome: &DeliveryOutcome,
    now: Timestamp,
) -> Result<bool> {
    let now = ts_to_db("now", now)?;
    let (state, next, error, delivered) = match outcome {
        DeliveryOutcome::Delivered => ("delivered", None, None, Some(now)),
        DeliveryOutcome::Retry { at, error } => (
            "queued",
            Some(ts_to_db("next attempt", *at)?),
            Some(bounded_error(error)),
            None,
        ),
        DeliveryOutcome::GiveUp { error } => ("failed", None, Some(bounded_error(error)), None),
    };
    let changed = c
        .execute(
            "UPDATE notifications
             SET state = ?3, next_attempt_at = coalesce(?4, next_attempt_at),
                 last_error = coalesce(?5, last_error), delivered_at = ?6,
                 lease = NULL, lease_until = NULL, updated_at = ?7
             WHERE id = ?1 AND lease = ?2 AND state = 'queued'",
            params![
                id.to_string(),
                lease.to_string(),
                state,
                next,
                error,
                delivered,
                now
            ],
        )
        .map_err(db("finish notification"))?;
    Ok(changed == 1)
}

fn list(c: &Connection, filter: &NotificationFilter) -> Result<Vec<Notification>> {
    let mut stmt = c
        .prepare_cached(&format!(
            "SELECT {COLUMNS} FROM notifications
             WHERE (?1 IS NULL OR state = ?1) AND (?2 IS NULL OR event = ?2)
               AND (?3 IS NULL OR destination = ?3)
             ORDER BY created_at DESC, id LIMIT ?4"
        ))
        .map_err(db("list notifications"))?;
    let rows = stmt
        .query_map(
            params![
                filter.state.map(|s| s.as_str()),
                filter.event,
                filter.destination,
                i64::from(filter.limit.unwrap_or(1000))
            ],
            raw,
        )
        .map_err(db("list notifications"))?;
    let mut out = Vec::new();
    for r in rows {
        out.push(r.map_err(db("list notifications"))?.decode()?);
    }
    Ok(out)
}

#[async_trait]
impl NotificationStore for SqliteStore {
    async fn enqueue_notifications(
        &self,
        items: &[NewNotification],
        audit_cursor: Option<i64>,
        now: Timestamp,
    ) -> Result<Enqueued> {
        let payloads = check_batch(items)?;
        let items = items.to_vec();
        self.write("queue notifications", move |c| {
            enqueue(c, &items, &payloads, audit_cursor, now)
        })
        .await
    }

    async fn notification_cursor(&self) -> Result<Option<i64>> {
        self.read("read the notification cursor", |c| {
            c.query_row(
                "SELECT audit_seq FROM notification_cursor WHERE id = 1",
                [],
                |r| r.get::<_, Option<i64>>(0),
            )
            .optional()
            .map_err(db("read the notification cursor"))
            .map(Option::flatten)
        })
        .await
    }

    async fn claim_notifications(
        &self,
        lease: Uuid,
        lease_until: Timestamp,
        limit: u32,
        now: Timestamp,
    ) -> Result<Vec<Notification>> {
        if lease_until <= now {
            return Err(StoreError::Invalid {
                field: "lease_until",
                reason: "must be after now".into(),
            });
        }
        self.write("claim notifications", move |c| {
            claim(c, lease, lease_until, limit, now)
        })
        .await
    }

    async fn finish_notification(
        &self,
        id: Uuid,
        lease: Uuid,
        outcome: &DeliveryOutcome,
        now: Timestamp,
    ) -> Result<bool> {
        let outcome = outcome.clone();
        self.write("finish notification", move |c| {
            finish(c, id, lease, &outcome, now)
        })
        .await
    }

    async fn list_notifications(&self, filter: &NotificationFilter) -> Result<Vec<Notification>> {
        let filter = filter.clone();
        self.read("list notifications", move |c| list(c, &filter))
            .await
    }
}
