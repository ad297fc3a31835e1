//! The audit chain on PostgreSQL: the head row is locked `FOR UPDATE` by the statement that
//! chains the next events (`audit_append`), so concurrent transactions append one after the
//! other.

use deadpool_postgres::GenericClient;
use patchwarden_core::audit::{AuditEntry, AuditEvent, canonical_json};
use patchwarden_store::audit::{AuditHead, check};
use patchwarden_store::codec::{from_json, ts_to_db};
use patchwarden_store::{Result, StoreError};

use tokio_postgres::{Row, Statement};

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

/// The statement that chains and inserts a transaction's events: the `audit_append` function
/// (migration `0012_audit_append`) locks the head, chains and inserts the events and moves the
/// head. The head's row lock is then held from that statement to the caller's commit, and
/// every append of every server waits for it, so a transaction appends once, last, with all
/// its events.
const APPEND: &str =
    "SELECT event_seq, event_prev_hash, event_hash FROM audit_append($1, $2, $3, $4, $5)";

/// Entries checked and laid out as `audit_append`'s five array arguments.
pub(crate) struct Appending {
    checked: Vec<AuditEntry>,
    ats: Vec<i64>,
    actions: Vec<String>,
    objects: Vec<String>,
    jsons: Vec<String>,
    canonical: Vec<String>,
}

impl Appending {
    pub(crate) fn of(entries: &[&AuditEntry]) -> Result<Self> {
        let n = entries.len();
        let mut a = Appending {
            checked: Vec::with_capacity(n),
            ats: Vec::with_capacity(n),
            actions: Vec::with_capacity(n),
            objects: Vec::with_capacity(n),
            jsons: Vec::with_capacity(n),
            canonical: Vec::with_capacity(n),
        };
        for entry in entries {
            let e = check(entry)?;
            a.ats.push(ts_to_db("audit at", e.entry.at)?);
            a.actions.push(e.entry.action.clone());
            a.objects.push(e.entry.object.clone());
            a.canonical.push(canonical_json(&e.entry));
            a.jsons.push(e.json);
            a.checked.push(e.entry);
        }
        Ok(a)
    }

    /// The prepared `audit_append` call (once per connection; cached after).
    pub(crate) async fn statement<C: GenericClient>(c: &C) -> Result<Statement> {
        c.prepare_cached(APPEND)
            .await
            .map_err(pg("append audit event"))
    }

    /// Runs the prepared call on `c`.
    pub(crate) async fn run<C: GenericClient>(
        &self,
        c: &C,
        statement: &Statement,
    ) -> std::result::Result<Vec<Row>, tokio_postgres::Error> {
        c.query(
            statement,
            &[
                &self.ats,
                &self.actions,
                &self.objects,
                &self.jsons,
                &self.canonical,
            ],
        )
        .await
    }

    /// The events as appended, from the call's rows.
    pub(crate) fn events(self, rows: &[Row]) -> Result<Vec<AuditEvent>> {
        let n = self.checked.len();
        if rows.len() != n {
            return Err(StoreError::corrupt(
                "audit_head",
                1,
                format!("{} events appended of {n}", rows.len()),
            ));
        }
        let mut events = Vec::with_capacity(n);
        for (r, entry) in rows.iter().zip(self.checked) {
            events.push(AuditEvent {
                seq: col("audit_events", r, 0)?,
                entry,
                prev_hash: col("audit_events", r, 1)?,
                hash: col("audit_events", r, 2)?,
            });
        }
        Ok(events)
    }
}

/// Appends `entries` in order after the current head, in the caller's transaction, in one
/// statement (see [`APPEND`]).
pub(crate) async fn append_all<C: GenericClient>(
    c: &C,
    entries: &[&AuditEntry],
) -> Result<Vec<AuditEvent>> {
    let appending = Appending::of(entries)?;
    let statement = Appending::statement(c).await?;
    let rows = appending
        .run(c, &statement)
        .await
        .map_err(pg("append audit event"))?;
    appending.events(&rows)
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
