//! The notification outbox on PostgreSQL: the same columns as SQLite's. Queueing is
//! `INSERT … ON CONFLICT DO NOTHING` on the unique (dedup key, destination), so servers sharing
//! the database that queue the same event at once queue it once; a claim takes due rows with
//! `FOR UPDATE SKIP LOCKED`, so two servers claiming at once never take the same row.

use async_trait::async_trait;
use deadpool_postgres::GenericClient;
use jiff::Timestamp;
use patchwarden_store::codec::ts_to_db;
use patchwarden_store::notification::{
    COLUMNS, DeliveryOutcome, Enqueued, NewNotification, Notification, NotificationFilter,
    NotificationStore, RawNotification, bounded_error, check_batch,
};
use patchwarden_store::{Result, StoreError};
use tokio_postgres::Row;
use uuid::Uuid;

use crate::{PgStore, col, execute, pg, query, query_opt};

const T: &str = "notifications";

fn raw(r: &Row) -> Result<RawNotification> {
    Ok(RawNotification {
        id: col(T, r, 0)?,
        dedup_key: col(T, r, 1)?,
        destination: col(T, r, 2)?,
        event: col(T, r, 3)?,
        payload: col(T, r, 4)?,
        state: col(T, r, 5)?,
        attempts: col(T, r, 6)?,
        next_attempt_at: col(T, r, 7)?,
        lease_until: col(T, r, 8)?,
        last_error: col(T, r, 9)?,
        created_at: col(T, r, 10)?,
        updated_at: col(T, r, 11)?,
        delivered_at: col(T, r, 12)?,
    })
}

fn decode(rows: &[Row]) -> Result<Vec<Notification>> {
    rows.iter().map(|r| raw(r)?.decode()).collect()
}

async fn enqueue<C: GenericClient>(
    c: &C,
    items: &[NewNotification],
    payloads: &[String],
    cursor: Option<i64>,
    now: Timestamp,
) -> Result<Enqueued> {
    let at = ts_to_db("notification created_at", now)?;
    let mut out = Enqueued::default();
    for (n, payload) in items.iter().zip(payloads) {
        let added = execute(
            c,
            "INSERT INTO notifications (id, dedup_key, destination, event, payload, state,
                                        attempts, next_attempt_at, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, 'queued', 0, $6, $6, $6)
             ON CONFLICT (dedup_key, destination) DO NOTHING",
            &[
                &n.id.to_string(),
                &n.dedup_key,
                &n.destination,
                &n.event,
                payload,
                &at,
            ],
        )
        .await
        .map_err(pg("queue notifications"))?;
        if added == 1 {
            out.queued += 1;
        } else {
            out.duplicates += 1;
        }
    }
    if let Some(seq) = cursor {
        execute(
            c,
            "UPDATE notification_cursor SET audit_seq = GREATEST(coalesce(audit_seq, $1), $1)
             WHERE id = 1",
            &[&seq],
        )
        .await
        .map_err(pg("advance the notification cursor"))?;
    }
    Ok(out)
}

/// Runs `$body` in a transaction `$tx` and commits it; a `?` inside returns early and drops
/// the transaction, which rolls it back.
macro_rules! tx {
    ($self:ident, $op:literal, |$tx:ident| $body:expr) => {{
        let mut client = $self.client($op).await?;
        let $tx = client.transaction().await.map_err(pg($op))?;
        let out = $body;
        $tx.commit().await.map_err(pg($op))?;
        Ok(out)
    }};
}

#[async_trait]
impl NotificationStore for PgStore {
    async fn enqueue_notifications(
        &self,
        items: &[NewNotification],
        audit_cursor: Option<i64>,
        now: Timestamp,
    ) -> Result<Enqueued> {
        let payloads = check_batch(items)?;
        tx!(self, "queue notifications", |tx| enqueue(
            &tx,
            items,
            &payloads,
            audit_cursor,
            now
        )
        .await?)
    }

    async fn notification_cursor(&self) -> Result<Option<i64>> {
        let client = self.client("read the notification cursor").await?;
        let row = query_opt(
            &client,
            "SELECT audit_seq FROM notification_cursor WHERE id = 1",
            &[],
        )
        .await
        .map_err(pg("read the notification cursor"))?;
        match row {
            Some(r) => col("notification_cursor", &r, 0),
            None => Ok(None),
        }
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
        let now = ts_to_db("now", now)?;
        let until = ts_to_db("lease_until", lease_until)?;
        let client = self.client("claim notifications").await?;
        let rows = query(
            &client,
            &format!(
                "UPDATE notifications
                 SET lease = $1, lease_until = $2, attempts = attempts + 1, updated_at = $3
                 WHERE id IN (
                     SELECT id FROM notifications
                     WHERE state = 'queued' AND next_attempt_at <= $3
                       AND (lease_until IS NULL OR lease_until <= $3)
                     ORDER BY next_attempt_at, created_at, id LIMIT $4
                     FOR UPDATE SKIP LOCKED)
                 RETURNING {COLUMNS}"
            ),
            &[&lease.to_string(), &until, &now, &i64::from(limit)],
        )
        .await
        .map_err(pg("claim notifications"))?;
        let mut out = decode(&rows)?;
        // RETURNING gives no order; the claim promises the oldest due first.
        out.sort_by_key(|n| (n.next_attempt_at, n.created_at, n.id));
        Ok(out)
    }

    async fn finish_notification(
        &self,
        id: Uuid,
        lease: Uuid,
        outcome: &DeliveryOutcome,
        now: Timestamp,
    ) -> Result<bool> {
        let now = ts_to_db("now", now)?;
        let (state, next, error, delivered): (&str, Option<i64>, Option<String>, Option<i64>) =
            match outcome {
                DeliveryOutcome::Delivered => ("delivered", None, None, Some(now)),
                DeliveryOutcome::Retry { at, error } => (
                    "queued",
                    Some(ts_to_db("next attempt", *at)?),
                    Some(bounded_error(error)),
                    None,
                ),
                DeliveryOutcome::GiveUp { error } => {
                    ("failed", None, Some(bounded_error(error)), None)
                }
            };
        let client = self.client("finish notification").await?;
        let changed = execute(
            &client,
            "UPDATE notifications
             SET state = $3, next_attempt_at = coalesce($4, next_attempt_at),
                 last_error = coalesce($5, last_error), delivered_at = $6,
                 lease = NULL, lease_until = NULL, updated_at = $7
             WHERE id = $1 AND lease = $2 AND state = 'queued'",
            &[
                &id.to_string(),
                &lease.to_string(),
                &state,
                &next,
                &error,
                &delivered,
                &now,
            ],
        )
        .await
        .map_err(pg("finish notification"))?;
        Ok(changed == 1)
    }

    async fn list_notifications(&self, filter: &NotificationFilter) -> Result<Vec<Notification>> {
        let client = self.client("list notifications").await?;
        let rows = query(
            &client,
            &format!(
                "SELECT {COLUMNS} FROM notifications
                 WHERE ($1::TEXT IS NULL OR state = $1) AND ($2::TEXT IS NULL OR event = $2)
                   AND ($3::TEXT IS NULL OR destination = $3)
                 ORDER BY created_at DESC, id LIMIT $4"
            ),
            &[
                &filter.state.map(|s| s.as_str()),
                &filter.event,
                &filter.destination,
                &i64::from(filter.limit.unwrap_or(1000)),
            ],
        )
        .await
        .map_err(pg("list notifications"))?;
        decode(&rows)
    }
}
