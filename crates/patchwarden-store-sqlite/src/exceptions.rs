//! Exceptions (risk acceptance) on SQLite. The core's record and the scope are JSON; the state,
//! requester and expiry are columns for the queries; the hosts an exception names are rows of
//! `exception_hosts`. A change reads the row, applies the core's rule and writes it back in the
//! one writer's `BEGIN IMMEDIATE` transaction, so two approvals cannot both pass.

use async_trait::async_trait;
use jiff::Timestamp;
use patchwarden_core::audit::AuditEntry;
use patchwarden_core::exception::Exception;
use patchwarden_store::codec::{from_json, to_json, ts_from_db, ts_to_db};
use patchwarden_store::exception::{
    ExceptionAction, ExceptionFilter, ExceptionScope, NewException, StoredException, audit_after,
    check_new, decide, number, state_name, year_of,
};
use patchwarden_store::{ExceptionStore, Result, StoreError};
use rusqlite::{Connection, OptionalExtension, Row, params};
use uuid::Uuid;

use crate::{SqliteStore, audit, db, is_unique_violation, uuid_from_db};

const T: &str = "exceptions";
const COLUMNS: &str = "id, number, body, scope, created_at, updated_at";
/// The most bytes of an exception's JSON (its texts are bounded by the core's limits).
const MAX_JSON: usize = 1024 * 1024;

type Raw = (String, String, String, String, i64, i64);

fn raw(r: &Row<'_>) -> rusqlite::Result<Raw> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
    ))
}

fn decode((id, number, body, scope, created_at, updated_at): Raw) -> Result<StoredException> {
    let id = uuid_from_db(T, &id)?;
    Ok(StoredException {
        id,
        number,
        exception: from_json(T, &id, &body)?,
        scope: from_json::<ExceptionScope>(T, &id, &scope)?,
        created_at: ts_from_db(T, &id, created_at)?,
        updated_at: ts_from_db(T, &id, updated_at)?,
    })
}

fn get(c: &Connection, key: &str) -> Result<Option<StoredException>> {
    c.query_row(
        &format!("SELECT {COLUMNS} FROM exceptions WHERE id = ?1 OR number = ?1"),
        [key],
        raw,
    )
    .optional()
    .map_err(db("read exception"))?
    .map(decode)
    .transpose()
}

fn list(c: &Connection, filter: &ExceptionFilter) -> Result<Vec<StoredException>> {
    let in_force = filter
        .in_force_at
        .map(|t| ts_to_db("in force at", t))
        .transpose()?;
    let mut stmt = c
        .prepare_cached(&format!(
            "SELECT {COLUMNS} FROM exceptions
             WHERE (?1 IS NULL OR state = ?1)
               AND (?2 IS NULL OR id IN (SELECT exception_id FROM exception_hosts WHERE host = ?2))
               AND (?3 IS NULL OR (state = 'approved' AND expires_at > ?3))
             ORDER BY year, seq"
        ))
        .map_err(db("list exceptions"))?;
    let rows = stmt
        .query_map(
            params![filter.state, filter.host.map(|h| h.to_string()), in_force],
            raw,
        )
        .map_err(db("list exceptions"))?;
    let mut out = Vec::new();
    for r in rows {
        let e = decode(r.map_err(db("list exceptions"))?)?;
        // The columns select; the rule decides (the same on both backends).
        if filter.admits(&e) {
            out.push(e);
        }
    }
    Ok(out)
}

fn body(e: &Exception) -> Result<String> {
    to_json("exception", e, MAX_JSON)
}

fn fill(mut entry: AuditEntry, e: &StoredException) -> AuditEntry {
    if entry.object.is_empty() {
        entry.object = format!("exception:{}", e.number);
    }
    if entry.after.is_none() {
        entry.after = Some(audit_after(e));
    }
    entry
}

fn create(
    c: &Connection,
    new: &NewException,
    now: Timestamp,
    entry: AuditEntry,
) -> Result<StoredException> {
    let year = year_of(now);
    let seq: i64 = c
        .query_row(
            "SELECT COALESCE(MAX(seq), 0) + 1 FROM exceptions WHERE year = ?1",
            [i64::from(year)],
            |r| r.get(0),
        )
        .map_err(db("number exception"))?;
    let stored = StoredException {
        id: new.id,
        number: number(year, seq),
        scope: new.scope.clone(),
        exception: new.exception.clone(),
        created_at: now,
        updated_at: now,
    };
    let at = ts_to_db("exception created_at", now)?;
    c.execute(
        "INSERT INTO exceptions (id, number, year, seq, state, requester, expires_at,
                                 created_at, updated_at, body, scope)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8, ?9, ?10)",
        params![
            stored.id.to_string(),
            stored.number,
            i64::from(year),
            seq,
            state_name(&stored.exception.state),
            stored.exception.request.requester,
            ts_to_db("exception expires_at", stored.exception.request.expires_at)?,
            at,
            body(&stored.exception)?,
            to_json("exception scope", &stored.scope, MAX_JSON)?,
        ],
    )
    .map_err(|e| {
        if is_unique_violation(&e) {
            StoreError::AlreadyExists {
                kind: "exception",
                id: stored.id.to_string(),
            }
        } else {
            StoreError::backend("create exception", e)
        }
    })?;
    for host in stored.scope.hosts_named() {
        c.execute(
            "INSERT INTO exception_hosts (exception_id, host) VALUES (?1, ?2)",
            params![stored.id.to_string(), host.to_string()],
        )
        .map_err(db("create exception"))?;
    }
    audit::append(c, &fill(entry, &stored))?;
    Ok(stored)
}

fn change(
    c: &Connection,
    id: Uuid,
    by: &str,
    action: &ExceptionAction,
    now: Timestamp,
    entry: AuditEntry,
) -> Result<StoredException> {
    let current = get(c, &id.to_string())?.ok_or_else(|| StoreError::NotFound {
        kind: "exception",
        id: id.to_string(),
    })?;
    let next = decide(&current.exception, by, action, now)?;
    let stored = StoredException {
        exception: next,
        updated_at: now,
        ..current
    };
    c.execute(
        "UPDATE exceptions SET state = ?2, body = ?3, updated_at = ?4 WHERE id = ?1",
        params![
            id.to_string(),
            state_name(&stored.exception.state),
            body(&stored.exception)?,
            ts_to_db("exception updated_at", now)?,
        ],
    )
    .map_err(db("change exception"))?;
    audit::append(c, &fill(entry, &stored))?;
    Ok(stored)
}

#[async_trait]
impl ExceptionStore for SqliteStore {
    async fn create_exception(
        &self,
        exception: NewException,
        now: Timestamp,
        audit: AuditEntry,
    ) -> Result<StoredException> {
        check_new(&exception)?;
        self.write("create exception", move |c| {
            create(c, &exception, now, audit)
        })
        .await
    }

    async fn get_exception(&self, key: &str) -> Result<Option<StoredException>> {
        let key = key.to_owned();
        self.read("read exception", move |c| get(c, &key)).await
    }

    async fn list_exceptions(&self, filter: &ExceptionFilter) -> Result<Vec<StoredException>> {
        let filter = filter.clone();
        self.read("list exceptions", move |c| list(c, &filter))
            .await
    }

    async fn change_exception(
        &self,
        id: Uuid,
        by: &str,
        action: ExceptionAction,
        now: Timestamp,
        audit: AuditEntry,
    ) -> Result<StoredException> {
        let by = by.to_owned();
        self.write("change exception", move |c| {
            change(c, id, &by, &action, now, audit)
        })
        .await
    }
}
