//! Exceptions (risk acceptance) on PostgreSQL: the same columns as SQLite's. A new exception's
//! number is taken under a transaction-scoped advisory lock, so two requests in one year never
//! race for the same number; a change locks the row (`FOR UPDATE`) before the core's rule is
//! applied, so two approvals of one exception are decided one at a time.

use async_trait::async_trait;
use deadpool_postgres::GenericClient;
use jiff::Timestamp;
use patchwarden_core::audit::AuditEntry;
use patchwarden_core::exception::Exception;
use patchwarden_store::codec::{from_json, to_json, ts_from_db, ts_to_db};
use patchwarden_store::exception::{
    ExceptionAction, ExceptionFilter, ExceptionScope, NewException, StoredException, audit_after,
    check_new, decide, number, state_name, year_of,
};
use patchwarden_store::{ExceptionStore, Result, StoreError};
use tokio_postgres::Row;
use tokio_postgres::error::SqlState;
use uuid::Uuid;

use crate::{PgStore, audit, col, execute, is_code, pg, query, query_opt};

const T: &str = "exceptions";
const COLUMNS: &str = "id, number, body, scope, created_at, updated_at";
/// The most bytes of an exception's JSON (its texts are bounded by the core's limits).
const MAX_JSON: usize = 1024 * 1024;
/// The advisory lock that serialises numbering ("pw-exc" in ASCII).
const NUMBER_LOCK: i64 = 0x7077_2d65_7863;

fn decode(r: &Row) -> Result<StoredException> {
    let id: String = col(T, r, 0)?;
    let id = Uuid::parse_str(&id).map_err(|e| StoreError::corrupt(T, &id, format!("id: {e}")))?;
    let body: String = col(T, r, 2)?;
    let scope: String = col(T, r, 3)?;
    Ok(StoredException {
        id,
        number: col(T, r, 1)?,
        exception: from_json(T, &id, &body)?,
        scope: from_json::<ExceptionScope>(T, &id, &scope)?,
        created_at: ts_from_db(T, &id, col(T, r, 4)?)?,
        updated_at: ts_from_db(T, &id, col(T, r, 5)?)?,
    })
}

async fn get<C: GenericClient>(c: &C, key: &str, lock: bool) -> Result<Option<StoredException>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM exceptions WHERE id = $1 OR number = $1{}",
        if lock { " FOR UPDATE" } else { "" }
    );
    query_opt(c, &sql, &[&key])
        .await
        .map_err(pg("read exception"))?
        .as_ref()
        .map(decode)
        .transpose()
}

async fn list<C: GenericClient>(c: &C, filter: &ExceptionFilter) -> Result<Vec<StoredException>> {
    let in_force = filter
        .in_force_at
        .map(|t| ts_to_db("in force at", t))
        .transpose()?;
    let host = filter.host.map(|h| h.to_string());
    let rows = query(
        c,
        &format!(
            "SELECT {COLUMNS} FROM exceptions
             WHERE ($1::TEXT IS NULL OR state = $1)
               AND ($2::TEXT IS NULL
                    OR id IN (SELECT exception_id FROM exception_hosts WHERE host = $2))
               AND ($3::BIGINT IS NULL OR (state = 'approved' AND expires_at > $3))
             ORDER BY year, seq"
        ),
        &[&filter.state, &host, &in_force],
    )
    .await
    .map_err(pg("list exceptions"))?;
    let mut out = Vec::new();
    for r in &rows {
        let e = decode(r)?;
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

async fn create<C: GenericClient>(
    c: &C,
    new: &NewException,
    now: Timestamp,
    entry: AuditEntry,
) -> Result<StoredException> {
    execute(c, "SELECT pg_advisory_xact_lock($1)", &[&NUMBER_LOCK])
        .await
        .map_err(pg("number exception"))?;
    let year = year_of(now);
    let row = query_opt(
        c,
        "SELECT COALESCE(MAX(seq), 0) + 1 FROM exceptions WHERE year = $1",
        &[&i64::from(year)],
    )
    .await
    .map_err(pg("number exception"))?
    .ok_or_else(|| StoreError::Backend {
        op: "number exception",
        reason: "no row".into(),
    })?;
    let seq: i64 = col(T, &row, 0)?;
    let stored = StoredException {
        id: new.id,
        number: number(year, seq),
        scope: new.scope.clone(),
        exception: new.exception.clone(),
        created_at: now,
        updated_at: now,
    };
    let at = ts_to_db("exception created_at", now)?;
    let expires = ts_to_db("exception expires_at", stored.exception.request.expires_at)?;
    let id = stored.id.to_string();
    execute(
        c,
        "INSERT INTO exceptions (id, number, year, seq, state, requester, expires_at,
                                 created_at, updated_at, body, scope)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8, $9, $10)",
        &[
            &id,
            &stored.number,
            &i64::from(year),
            &seq,
            &state_name(&stored.exception.state),
            &stored.exception.request.requester,
            &expires,
            &at,
            &body(&stored.exception)?,
            &to_json("exception scope", &stored.scope, MAX_JSON)?,
        ],
    )
    .await
    .map_err(|e| {
        if is_code(&e, &SqlState::UNIQUE_VIOLATION) {
            StoreError::AlreadyExists {
                kind: "exception",
                id: id.clone(),
            }
        } else {
            StoreError::backend("create exception", e)
        }
    })?;
    for host in stored.scope.hosts_named() {
        execute(
            c,
            "INSERT INTO exception_hosts (exception_id, host) VALUES ($1, $2)",
            &[&id, &host.to_string()],
        )
        .await
        .map_err(pg("create exception"))?;
    }
    audit::append(c, &fill(entry, &stored)).await?;
    Ok(stored)
}

async fn change<C: GenericClient>(
    c: &C,
    id: Uuid,
    by: &str,
    action: &ExceptionAction,
    now: Timestamp,
    entry: AuditEntry,
) -> Result<StoredException> {
    let current = get(c, &id.to_string(), true)
        .await?
        .ok_or_else(|| StoreError::NotFound {
            kind: "exception",
            id: id.to_string(),
        })?;
    let next = decide(&current.exception, by, action, now)?;
    let stored = StoredException {
        exception: next,
        updated_at: now,
        ..current
    };
    execute(
        c,
        "UPDATE exceptions SET state = $2, body = $3, updated_at = $4 WHERE id = $1",
        &[
            &id.to_string(),
            &state_name(&stored.exception.state),
            &body(&stored.exception)?,
            &ts_to_db("exception updated_at", now)?,
        ],
    )
    .await
    .map_err(pg("change exception"))?;
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
impl ExceptionStore for PgStore {
    async fn create_exception(
        &self,
        exception: NewException,
        now: Timestamp,
        audit: AuditEntry,
    ) -> Result<StoredException> {
        check_new(&exception)?;
        tx!(self, "create exception", |tx| create(
            &tx, &exception, now, audit
        )
        .await?)
    }

    async fn get_exception(&self, key: &str) -> Result<Option<StoredException>> {
        let client = self.client("read exception").await?;
        get(&client, key, false).await
    }

    async fn list_exceptions(&self, filter: &ExceptionFilter) -> Result<Vec<StoredException>> {
        let client = self.client("list exceptions").await?;
        list(&client, filter).await
    }

    async fn change_exception(
        &self,
        id: Uuid,
        by: &str,
        action: ExceptionAction,
        now: Timestamp,
        audit: AuditEntry,
    ) -> Result<StoredException> {
        tx!(self, "change exception", |tx| change(
            &tx, id, by, &action, now, audit
        )
        .await?)
    }
}
