//! The audit chain on SQLite: append (the last step of every changing transaction), read in
//! order, and the head. The writer connection is the only writer, so reading the head and
//! writing the next event cannot interleave with another append.

use patchwarden_core::audit::{AuditEntry, AuditEvent};
use patchwarden_store::audit::{AuditHead, prepare};
use patchwarden_store::codec::{from_json, ts_to_db};
use patchwarden_store::{Result, StoreError};
use rusqlite::{Connection, params};

use crate::db;

fn read_head(c: &Connection) -> Result<AuditHead> {
    c.query_row("SELECT seq, hash FROM audit_head WHERE id = 1", [], |r| {
        Ok(AuditHead {
            seq: r.get(0)?,
            hash: r.get(1)?,
        })
    })
    .map_err(db("read audit head"))
}

/// Appends `entry` after the current head.
pub(crate) fn append(c: &Connection, entry: &AuditEntry) -> Result<AuditEvent> {
    let head = read_head(c)?;
    let prev = (head.seq > 0).then_some(&head);
    let prepared = prepare(prev, entry)?;
    let e = &prepared.event;
    let at = ts_to_db("audit at", e.entry.at)?;
    // Cached, like every statement a change runs each time: parsing them again was a few
    // per cent of the writer thread's time (the store's one serial part) in the fleet bench.
    c.prepare_cached(
        "INSERT INTO audit_events (seq, at, action, object, entry, prev_hash, hash)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )
    .and_then(|mut s| {
        s.execute(params![
            e.seq,
            at,
            e.entry.action,
            e.entry.object,
            prepared.entry_json,
            e.prev_hash,
            e.hash
        ])
    })
    .map_err(db("append audit event"))?;
    c.prepare_cached("UPDATE audit_head SET seq = ?1, hash = ?2 WHERE id = 1")
        .and_then(|mut s| s.execute(params![e.seq, e.hash]))
        .map_err(db("append audit event"))?;
    Ok(prepared.event)
}

pub(crate) fn events(c: &Connection, after_seq: i64, limit: u32) -> Result<Vec<AuditEvent>> {
    let mut stmt = c
        .prepare_cached(
            "SELECT seq, entry, prev_hash, hash FROM audit_events
             WHERE seq > ?1 ORDER BY seq LIMIT ?2",
        )
        .map_err(db("read audit events"))?;
    let rows = stmt
        .query_map(params![after_seq, i64::from(limit)], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
            ))
        })
        .map_err(db("read audit events"))?;
    let mut out = Vec::new();
    for row in rows {
        let (seq, entry, prev_hash, hash) = row.map_err(db("read audit events"))?;
        out.push(AuditEvent {
            seq,
            entry: from_json("audit_events", &seq, &entry)?,
            prev_hash,
            hash,
        });
    }
    Ok(out)
}

pub(crate) fn head(c: &Connection) -> Result<Option<AuditHead>> {
    let head = read_head(c)?;
    if head.seq < 0 {
        return Err(StoreError::corrupt(
            "audit_head",
            1,
            "negative sequence number",
        ));
    }
    Ok((head.seq > 0).then_some(head))
}
