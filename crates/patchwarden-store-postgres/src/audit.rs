//! The audit chain on PostgreSQL: the head row is locked `FOR UPDATE` before the next event is
//! computed, so concurrent transactions append one after the other.

use deadpool_postgres::GenericClient;
use patchwarden_core::audit::{AuditEntry, AuditEvent};
use patchwarden_store::audit::{AuditHead, prepare};
use patchwarden_store::codec::{from_json, ts_to_db};
use patchwarden_store::{Result, StoreError};

use crate::{col, execute, pg, query, query_opt};

async fn read_head<C: GenericClient>(c: &C, lock: bool) -> Result<AuditHead> {
    let sql = if lock {
        "SELECT seq, hash FROM audit_head WHERE id = 1 FOR UPDATE"
    } else {
        "SELECT seq, hash FROM audit_head WHERE id = 1"
    };
    let row = query_opt(c, sql, &[])
        .await
        .map_err(pg("read audit head"))?
        .ok_or_else(|| StoreError::corrupt("audit_head", 1, "the head row is missing"))?;
    Ok(AuditHead {
        seq: col("audit_head", &row, 0)?,
        hash: col("audit_head", &row, 1)?,
    })
}

/// Appends `entry` after the current head, in the caller's transaction.
pub(crate) async fn append<C: GenericClient>(c: &C, entry: &AuditEntry) -> Result<AuditEvent> {
    let head = read_head(c, true).await?;
    let prev = (head.seq > 0).then_some(&head);
    let prepared = prepare(prev, entry)?;
    let e = &prepared.event;
    let at = ts_to_db("audit at", e.entry.at)?;
    // The event and the new head in one statement: the head's row lock is held from the read
    // above until the caller commits, and every append of every server waits for it, so each
    // round trip inside it counts (the fleet's uploads queued here on PostgreSQL).
    let n = execute(
        c,
        "WITH event AS (
             INSERT INTO audit_events (seq, at, action, object, entry, prev_hash, hash)
             VALUES ($1, $2, $3, $4, $5, $6, $7)
             RETURNING seq, hash)
         UPDATE audit_head SET seq = event.seq, hash = event.hash FROM event WHERE id = 1",
        &[
            &e.seq,
            &at,
            &e.entry.action,
            &e.entry.object,
            &prepared.entry_json,
            &e.prev_hash,
            &e.hash,
        ],
    )
    .await
    .map_err(pg("append audit event"))?;
    if n != 1 {
        return Err(StoreError::corrupt(
            "audit_head",
            1,
            "the head row is missing",
        ));
    }
    Ok(prepared.event)
}

pub(crate) async fn events<C: GenericClient>(
    c: &C,
    after_seq: i64,
    limit: u32,
) -> Result<Vec<AuditEvent>> {
    let rows = query(
        c,
        "SELECT seq, entry, prev_hash, hash FROM audit_events
         WHERE seq > $1 ORDER BY seq LIMIT $2",
        &[&after_seq, &i64::from(limit)],
    )
    .await
    .map_err(pg("read audit events"))?;
    let mut out = Vec::with_capacity(rows.len());
    for r in &rows {
        let seq: i64 = col("audit_events", r, 0)?;
        let entry: String = col("audit_events", r, 1)?;
        out.push(AuditEvent {
            seq,
            entry: from_json("audit_events", &seq, &entry)?,
            prev_hash: col("audit_events", r, 2)?,
            hash: col("audit_events", r, 3)?,
        });
    }
    Ok(out)
}

pub(crate) async fn head<C: GenericClient>(c: &C) -> Result<Option<AuditHead>> {
    let head = read_head(c, false).await?;
    if head.seq < 0 {
        return Err(StoreError::corrupt(
            "audit_head",
            1,
            "negative sequence number",
        ));
    }
    Ok((head.seq > 0).then_some(head))
}
