//! Incidents on PostgreSQL: the same columns as SQLite's. A new incident's number is taken
//! under a transaction-scoped advisory lock, so two reports in one year never race for the
//! same number; resolving locks the row (`FOR UPDATE`) first, so two operators resolving one
//! incident are decided one at a time.

use async_trait::async_trait;
use deadpool_postgres::GenericClient;
use jiff::Timestamp;
use patchwarden_core::audit::AuditEntry;
use patchwarden_store::codec::{ts_from_db, ts_to_db};
use patchwarden_store::exception::year_of;
use patchwarden_store::incident::{
    IncidentFilter, IncidentState, NewIncident, StoredIncident, already_resolved, audit_after,
    check_resolution, number,
};
use patchwarden_store::{IncidentStore, Result, StoreError};
use tokio_postgres::Row;
use tokio_postgres::error::SqlState;
use uuid::Uuid;

use crate::{PgStore, audit, col, execute, is_code, pg, query, query_opt};

const T: &str = "incidents";
const COLUMNS: &str = "id, number, service, description, contact, change_number, state, \
                       created_at, resolved_at, resolved_by, resolution";
/// The advisory lock that serialises numbering ("pw-inc" in ASCII).
const NUMBER_LOCK: i64 = 0x7077_2d69_6e63;

fn decode(r: &Row) -> Result<StoredIncident> {
    let id: String = col(T, r, 0)?;
    let id = Uuid::parse_str(&id).map_err(|e| StoreError::corrupt(T, &id, format!("id: {e}")))?;
    let state: String = col(T, r, 6)?;
    let state = IncidentState::parse(&state)
        .ok_or_else(|| StoreError::corrupt(T, id, format!("state {state:?}")))?;
    let resolved: Option<i64> = col(T, r, 8)?;
    Ok(StoredIncident {
        id,
        number: col(T, r, 1)?,
        service: col(T, r, 2)?,
        description: col(T, r, 3)?,
        contact: col(T, r, 4)?,
        change: col(T, r, 5)?,
        state,
        created_at: ts_from_db(T, &id, col(T, r, 7)?)?,
        resolved_at: resolved.map(|t| ts_from_db(T, &id, t)).transpose()?,
        resolved_by: col(T, r, 9)?,
        resolution: col(T, r, 10)?,
    })
}

async fn get<C: GenericClient>(c: &C, key: &str, lock: bool) -> Result<Option<StoredIncident>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM incidents WHERE id = $1 OR number = $1{}",
        if lock { " FOR UPDATE" } else { "" }
    );
    query_opt(c, &sql, &[&key])
        .await
        .map_err(pg("read incident"))?
        .as_ref()
        .map(decode)
        .transpose()
}

async fn list<C: GenericClient>(c: &C, filter: &IncidentFilter) -> Result<Vec<StoredIncident>> {
    let state = filter.state.map(IncidentState::as_str);
    let limit = filter.limit.map_or(i64::MAX, i64::from);
    let rows = query(
        c,
        &format!(
            "SELECT {COLUMNS} FROM incidents
             WHERE ($1::TEXT IS NULL OR state = $1) AND ($2::TEXT IS NULL OR change_number = $2)
             ORDER BY created_at DESC, year DESC, seq DESC
             LIMIT $3"
        ),
        &[&state, &filter.change, &limit],
    )
    .await
    .map_err(pg("list incidents"))?;
    rows.iter().map(decode).collect()
}

fn fill(mut entry: AuditEntry, i: &StoredIncident) -> AuditEntry {
    if entry.object.is_empty() {
        entry.object = format!("incident:{}", i.number);
    }
    if entry.after.is_none() {
        entry.after = Some(audit_after(i));
    }
    entry
}

async fn create<C: GenericClient>(
    c: &C,
    new: &NewIncident,
    now: Timestamp,
    entry: AuditEntry,
) -> Result<StoredIncident> {
    execute(c, "SELECT pg_advisory_xact_lock($1)", &[&NUMBER_LOCK])
        .await
        .map_err(pg("number incident"))?;
    let year = year_of(now);
    let row = query_opt(
        c,
        "SELECT COALESCE(MAX(seq), 0) + 1 FROM incidents WHERE year = $1",
        &[&i64::from(year)],
    )
    .await
    .map_err(pg("number incident"))?
    .ok_or_else(|| StoreError::Backend {
        op: "number incident",
        reason: "no row".into(),
    })?;
    let seq: i64 = col(T, &row, 0)?;
    let stored = StoredIncident {
        id: new.id,
        number: number(year, seq),
        service: new.service.clone(),
        description: new.description.clone(),
        contact: new.contact.clone(),
        change: new.change.clone(),
        state: IncidentState::Open,
        created_at: now,
        resolved_at: None,
        resolved_by: None,
        resolution: None,
    };
    let id = stored.id.to_string();
    execute(
        c,
        "INSERT INTO incidents (id, number, year, seq, service, description, contact,
                                change_number, state, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'open', $9)",
        &[
            &id,
            &stored.number,
            &i64::from(year),
            &seq,
            &stored.service,
            &stored.description,
            &stored.contact,
            &stored.change,
            &ts_to_db("incident created_at", now)?,
        ],
    )
    .await
    .map_err(|e| {
        if is_code(&e, &SqlState::UNIQUE_VIOLATION) {
            StoreError::AlreadyExists {
                kind: "incident",
                id: id.clone(),
            }
        } else {
            StoreError::backend("create incident", e)
        }
    })?;
    audit::append(c, &fill(entry, &stored)).await?;
    Ok(stored)
}

async fn resolve<C: GenericClient>(
    c: &C,
    id: Uuid,
    by: &str,
    note: &str,
    now: Timestamp,
    entry: AuditEntry,
) -> Result<StoredIncident> {
    let current = get(c, &id.to_string(), true)
        .await?
        .ok_or_else(|| StoreError::NotFound {
            kind: "incident",
            id: id.to_string(),
        })?;
    if current.state != IncidentState::Open {
        return Err(already_resolved(&current.number));
    }
    let stored = StoredIncident {
        state: IncidentState::Resolved,
        resolved_at: Some(now),
        resolved_by: Some(by.to_owned()),
        resolution: Some(note.to_owned()),
        ..current
    };
    execute(
        c,
        "UPDATE incidents SET state = 'resolved', resolved_at = $2, resolved_by = $3,
                              resolution = $4
         WHERE id = $1",
        &[
            &id.to_string(),
            &ts_to_db("incident resolved_at", now)?,
            &by,
            &note,
        ],
    )
    .await
    .map_err(pg("resolve incident"))?;
    audit::append(c, &fill(entry, &stored)).await?;
    Ok(stored)
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
impl IncidentStore for PgStore {
    async fn create_incident(
        &self,
        incident: NewIncident,
        now: Timestamp,
        audit: AuditEntry,
    ) -> Result<StoredIncident> {
        incident.check()?;
        tx!(self, "create incident", |tx| create(
            &tx, &incident, now, audit
        )
        .await?)
    }

    async fn get_incident(&self, key: &str) -> Result<Option<StoredIncident>> {
        let client = self.client("read incident").await?;
        get(&client, key, false).await
    }

    async fn list_incidents(&self, filter: &IncidentFilter) -> Result<Vec<StoredIncident>> {
        let client = self.client("list incidents").await?;
        list(&client, filter).await
    }

    async fn resolve_incident(
        &self,
        id: Uuid,
        by: &str,
        resolution: &str,
        now: Timestamp,
        audit: AuditEntry,
    ) -> Result<StoredIncident> {
        check_resolution(resolution)?;
        tx!(self, "resolve incident", |tx| resolve(
            &tx, id, by, resolution, now, audit
        )
        .await?)
    }
}
