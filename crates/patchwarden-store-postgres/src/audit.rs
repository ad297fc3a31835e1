//! The audit chain on PostgreSQL: the head row is locked `FOR UPDATE` by the statement that
//! chains the next events (`audit_append`), so concurrent transactions append one after the
//! other.

use deadpool_postgres::GenericClient;
use patchwarden_core::audit::{AuditEntry, AuditEvent, canonical_json};
use patchwarden_store::audit::{AuditHead, check};
use patchwarden_store::codec::{from_json, ts_to_db};
use patchwarden_store::{Result, StoreError};

use crate::{col, pg, query, query_opt};

/// The head as last committed (appends lock it inside `audit_append`).
async fn read_head<C: GenericClient>(c: &C) -> Result<AuditHead> {
    let row = query_opt(c, "SELECT seq, hash FROM audit_head WHERE id = 1", &[])
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
    let mut events = append_all(c, &[entry]).await?;
    events
        .pop()
        .ok_or_else(|| StoreError::corrupt("audit_head", 1, "no event was appended"))
}

/// Appends `entries` in order after the current head, in the caller's transaction, in one
/// statement: the `audit_append` function (migration `0012_audit_append`) locks the head,
/// chains and inserts the events and moves the head. The head's row lock is then held from
/// that statement to the caller's commit, and every append of every server waits for it, so
/// a transaction appends once, last, with all its events.
pub(crate) async fn append_all<C: GenericClient>(
    c: &C,
    entries: &[&AuditEntry],
) -> Result<Vec<AuditEvent>> {
    let n = entries.len();
    let (mut ats, mut actions, mut objects) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    let (mut jsons, mut canonical, mut checked) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    for entry in entries {
        let e = check(entry)?;
        ats.push(ts_to_db("audit at", e.entry.at)?);
        actions.push(e.entry.action.clone());
        objects.push(e.entry.object.clone());
        canonical.push(canonical_json(&e.entry));
        jsons.push(e.json);
        checked.push(e.entry);
    }
    let rows = query(
        c,
        "SELECT event_seq, event_prev_hash, event_hash FROM audit_append($1, $2, $3, $4, $5)",
        &[&ats, &actions, &objects, &jsons, &canonical],
    )
    .await
    .map_err(pg("append audit event"))?;
    if rows.len() != n {
        return Err(StoreError::corrupt(
            "audit_head",
            1,
            format!("{} events appended of {n}", rows.len()),
        ));
    }
    let mut events = Vec::with_capacity(n);
    for (r, entry) in rows.iter().zip(checked) {
        events.push(AuditEvent {
            seq: col("audit_events", r, 0)?,
            entry,
            prev_hash: col("audit_events", r, 1)?,
            hash: col("audit_events", r, 2)?,
        });
    }
    Ok(events)
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
    let head = read_head(c).await?;
    if head.seq < 0 {
        return Err(StoreError::corrupt(
            "audit_head",
            1,
            "negative sequence number",
        ));
    }
    Ok((head.seq > 0).then_some(head))
}
