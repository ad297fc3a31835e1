//! Incidents on SQLite: plain columns, numbered per year in the one writer's `BEGIN IMMEDIATE`
//! transaction (so two reports never share a number), resolved with a guarded update (so two
//! operators resolving one incident cannot both succeed).

use async_trait::async_trait;
use jiff::Timestamp;
use patchwarden_core::audit::AuditEntry;
use patchwarden_store::codec::{ts_from_db, ts_to_db};
use patchwarden_store::exception::year_of;
use patchwarden_store::incident::{
    IncidentFilter, IncidentState, NewIncident, StoredIncident, already_resolved, audit_after,
    check_resolution, number,
};
use patchwarden_store::{IncidentStore, Result, StoreError};
use rusqlite::{Connection, OptionalExtension, Row, params};
use uuid::Uuid;

use crate::{SqliteStore, audit, db, is_unique_violation, uuid_from_db};

const T: &str = "incidents";
const COLUMNS: &str = "id, number, service, description, contact, change_number, state, \
                       created_at, resolved_at, resolved_by, resolution";

type Raw = (
    String,
    String,
    String,
    String,
    Option<String>,
    Option<String>,
    String,
    i64,
    Option<i64>,
    Option<String>,
    Option<String>,
);

fn raw(r: &Row<'_>) -> rusqlite::Result<Raw> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
        r.get(6)?,
        r.get(7)?,
        r.get(8)?,
        r.get(9)?,
        r.get(10)?,
    ))
}

fn decode(r: Raw) -> Result<StoredIncident> {
    let (id, number, service, description, contact, change, state, created, resolved, by, note) = r;
    let id = uuid_from_db(T, &id)?;
    let state = IncidentState::parse(&state)
        .ok_or_else(|| StoreError::corrupt(T, id, format!("state {state:?}")))?;
    Ok(StoredIncident {
        id,
        number,
        service,
        description,
        contact,
        change,
        state,
        created_at: ts_from_db(T, &id, created)?,
        resolved_at: resolved.map(|t| ts_from_db(T, &id, t)).transpose()?,
        resolved_by: by,
        resolution: note,
    })
}

fn get(c: &Connection, key: &str) -> Result<Option<StoredIncident>> {
    c.query_row(
        &format!("SELECT {COLUMNS} FROM incidents WHERE id = ?1 OR number = ?1"),
        [key],
        raw,
    )
    .optional()
    .map_err(db("read incident"))?
    .map(decode)
    .transpose()
}

fn list(c: &Connection, filter: &IncidentFilter) -> Result<Vec<StoredIncident>> {
    let mut stmt = c
        .prepare_cached(&format!(
            "SELECT {COLUMNS} FROM incidents
             WHERE (?1 IS NULL OR state = ?1) AND (?2 IS NULL OR change_number = ?2)
             ORDER BY created_at DESC, year DESC, seq DESC
             LIMIT ?3"
        ))
        .map_err(db("list incidents"))?;
    let limit = filter.limit.map_or(i64::MAX, i64::from);
    let rows = stmt
        .query_map(
            params![
                filter.state.map(IncidentState::as_str),
                filter.change,
                limit
            ],
            raw,
        )
        .map_err(db("list incidents"))?;
    let mut out = Vec::new();
    for r in rows {
        out.push(decode(r.map_err(db("list incidents"))?)?);
    }
    Ok(out)
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

fn create(
    c: &Connection,
    new: &NewIncident,
    now: Timestamp,
    entry: AuditEntry,
) -> Result<StoredIncident> {
    let year = year_of(now);
    let seq: i64 = c
        .query_row(
            "SELECT COALESCE(MAX(seq), 0) + 1 FROM incidents WHERE year = ?1",
            [i64::from(year)],
            |r| r.get(0),
        )
        .map_err(db("number incident"))?;
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
    c.execute(
        "INSERT INTO incidents (id, number, year, seq, service, description, contact,
                                change_number, state, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 'open', ?9)",
        params![
            stored.id.to_string(),
            stored.number,
            i64::from(year),
            seq,
            stored.service,
            stored.description,
            stored.contact,
            stored.change,
            ts_to_db("incident created_at", now)?,
        ],
    )
    .map_err(|e| {
        if is_unique_violation(&e) {
            StoreError::AlreadyExists {
                kind: "incident",
                id: stored.id.to_string(),
            }
        } else {
            StoreError::backend("create incident", e)
        }
    })?;
    audit::append(c, &fill(entry, &stored))?;
    Ok(stored)
}

fn resolve(
    c: &Connection,
    id: Uuid,
    by: &str,
    note: &str,
    now: Timestamp,
    entry: AuditEntry,
) -> Result<StoredIncident> {
    let current = get(c, &id.to_string())?.ok_or_else(|| StoreError::NotFound {
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
    c.execute(
        "UPDATE incidents SET state = 'resolved', resolved_at = ?2, resolved_by = ?3,
                              resolution = ?4
         WHERE id = ?1 AND state = 'open'",
        params![
            id.to_string(),
            ts_to_db("incident resolved_at", now)?,
            by,
            note
        ],
    )
    .map_err(db("resolve incident"))?;
    audit::append(c, &fill(entry, &stored))?;
    Ok(stored)
}

#[async_trait]
impl IncidentStore for SqliteStore {
    async fn create_incident(
        &self,
        incident: NewIncident,
        now: Timestamp,
        audit: AuditEntry,
    ) -> Result<StoredIncident> {
        incident.check()?;
        self.write("create incident", move |c| create(c, &incident, now, audit))
            .await
    }

    async fn get_incident(&self, key: &str) -> Result<Option<StoredIncident>> {
        let key = key.to_owned();
        self.read("read incident", move |c| get(c, &key)).await
    }

    async fn list_incidents(&self, filter: &IncidentFilter) -> Result<Vec<StoredIncident>> {
        let filter = filter.clone();
        self.read("list incidents", move |c| list(c, &filter)).await
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
        let by = by.to_owned();
        let note = resolution.to_owned();
        self.write("resolve incident", move |c| {
            resolve(c, id, &by, &note, now, audit)
        })
        .await
    }
}
