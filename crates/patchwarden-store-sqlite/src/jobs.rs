//! Jobs on SQLite: creation, leasing (the writer lock makes a lease exclusive), reports decided
//! by `patchwarden_store::job::decide_report`, reads.

use jiff::Timestamp;
use patchwarden_core::audit::AuditEntry;
use patchwarden_store::codec::{from_json, opt_ts_from_db, ts_from_db, ts_to_db};
use patchwarden_store::job::decide_report;
use patchwarden_store::{Job, JobFilter, JobReport, JobState, NewJob, Result, StoreError};
use rusqlite::types::Value;
use rusqlite::{Connection, OptionalExtension, Row, params, params_from_iter};
use uuid::Uuid;

use crate::{audit, db, is_unique_violation, uuid_from_db};

const T: &str = "jobs";
const COLUMNS: &str = "id, host, kind, created_by, created_at, state, lease_until, attempts, \
                       progress, result, updated_at, finished_at";

type RawJob = (
    String,
    String,
    String,
    String,
    i64,
    String,
    Option<i64>,
    i64,
    Option<String>,
    Option<String>,
    i64,
    Option<i64>,
);

fn raw(r: &Row<'_>) -> rusqlite::Result<RawJob> {
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
        r.get(11)?,
    ))
}

fn decode(r: RawJob) -> Result<Job> {
    let (
        id,
        host,
        kind,
        created_by,
        created_at,
        state,
        lease_until,
        attempts,
        progress,
        result,
        updated_at,
        finished_at,
    ) = r;
    Ok(Job {
        id: uuid_from_db(T, &id)?,
        host: uuid_from_db(T, &host)?,
        kind: from_json(T, &id, &kind)?,
        created_by,
        created_at: ts_from_db(T, &id, created_at)?,
        state: JobState::parse(&state)
            .ok_or_else(|| StoreError::corrupt(T, &id, format!("state {state:?}")))?,
        lease_until: opt_ts_from_db(T, &id, lease_until)?,
        attempts: u32::try_from(attempts)
            .map_err(|_| StoreError::corrupt(T, &id, format!("attempts {attempts}")))?,
        progress: progress.map(|p| from_json(T, &id, &p)).transpose()?,
        result: result.map(|p| from_json(T, &id, &p)).transpose()?,
        updated_at: ts_from_db(T, &id, updated_at)?,
        finished_at: opt_ts_from_db(T, &id, finished_at)?,
    })
}

pub(crate) fn get(c: &Connection, id: Uuid) -> Result<Option<Job>> {
    let raw = c
        .query_row(
            &format!("SELECT {COLUMNS} FROM jobs WHERE id = ?1"),
            [id.to_string()],
            raw,
        )
        .optional()
        .map_err(db("get job"))?;
    raw.map(decode).transpose()
}

fn get_existing(c: &Connection, id: Uuid) -> Result<Job> {
    get(c, id)?.ok_or_else(|| StoreError::NotFound {
        kind: "job",
        id: id.to_string(),
    })
}

pub(crate) fn create(
    c: &Connection,
    job: &NewJob,
    kind: &str,
    now: Timestamp,
    entry: &AuditEntry,
) -> Result<Job> {
    let inserted = c.execute(
        "INSERT INTO jobs (id, host, kind, created_by, created_at, state, attempts, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, 'queued', 0, ?5)",
        params![
            job.id.to_string(),
            job.host.to_string(),
            kind,
            job.created_by,
            ts_to_db("now", now)?
        ],
    );
    match inserted {
        Ok(_) => {}
        Err(e) if is_unique_violation(&e) => {
            return Err(StoreError::AlreadyExists {
                kind: "job",
                id: job.id.to_string(),
            });
        }
        // The only other constraint an insert can break is the host's foreign key.
        Err(e) if e.sqlite_error_code() == Some(rusqlite::ErrorCode::ConstraintViolation) => {
            return Err(StoreError::NotFound {
                kind: "host",
                id: job.host.to_string(),
            });
        }
        Err(e) => return Err(StoreError::backend("create job", e)),
    }
    let stored = get_existing(c, job.id)?;
    audit::append(c, entry)?;
    Ok(stored)
}

pub(crate) fn lease(
    c: &Connection,
    host: Uuid,
    lease_until: Timestamp,
    limit: u32,
    now: Timestamp,
    mut entry: AuditEntry,
) -> Result<Vec<Job>> {
    let now_db = ts_to_db("now", now)?;
    let until = ts_to_db("lease_until", lease_until)?;
    let ids: Vec<String> = {
        let mut stmt = c
            .prepare_cached(
                "SELECT id FROM jobs
                 WHERE host = ?1 AND (state = 'queued'
                       OR (state IN ('leased', 'running') AND lease_until <= ?2))
                 ORDER BY created_at, id LIMIT ?3",
            )
            .map_err(db("lease jobs"))?;
        let rows = stmt
            .query_map(params![host.to_string(), now_db, i64::from(limit)], |r| {
                r.get(0)
            })
            .map_err(db("lease jobs"))?;
        rows.collect::<rusqlite::Result<_>>()
            .map_err(db("lease jobs"))?
    };
    let mut out = Vec::new();
    for id in &ids {
        c.execute(
            "UPDATE jobs SET state = 'leased', lease_until = ?2, attempts = attempts + 1,
                             updated_at = ?3
             WHERE id = ?1",
            params![id, until, now_db],
        )
        .map_err(db("lease jobs"))?;
        out.push(get_existing(c, uuid_from_db(T, id)?)?);
    }
    if !out.is_empty() {
        if entry.after.is_none() {
            entry.after = Some(serde_json::json!({ "jobs": ids, "lease_until": lease_until }));
        }
        audit::append(c, &entry)?;
    }
    Ok(out)
}

pub(crate) fn report(
    c: &Connection,
    host: Uuid,
    id: Uuid,
    report: &JobReport,
    now: Timestamp,
    entry: &AuditEntry,
) -> Result<Job> {
    let job = get_existing(c, id)?;
    let Some(update) = decide_report(&job, host, report, now)? else {
        return Ok(job);
    };
    c.execute(
        "UPDATE jobs SET state = ?2, progress = coalesce(?3, progress),
                         result = coalesce(?4, result), finished_at = ?5, updated_at = ?6
         WHERE id = ?1",
        params![
            id.to_string(),
            update.state.as_str(),
            update.progress,
            update.result,
            patchwarden_store::codec::opt_ts_to_db("finished_at", update.finished_at)?,
            ts_to_db("now", now)?
        ],
    )
    .map_err(db("report job"))?;
    let stored = get_existing(c, id)?;
    audit::append(c, entry)?;
    Ok(stored)
}

/// The host's jobs leased earlier whose lease is live at `now` (leased or running), oldest
/// first, at most `limit`.
pub(crate) fn held(c: &Connection, host: Uuid, now: Timestamp, limit: u32) -> Result<Vec<Job>> {
    let mut stmt = c
        .prepare_cached(&format!(
            "SELECT {COLUMNS} FROM jobs
             WHERE host = ?1 AND state IN ('leased', 'running') AND lease_until > ?2
             ORDER BY created_at, id LIMIT ?3"
        ))
        .map_err(db("list held jobs"))?;
    let rows = stmt
        .query_map(
            params![host.to_string(), ts_to_db("now", now)?, i64::from(limit)],
            raw,
        )
        .map_err(db("list held jobs"))?;
    let mut out = Vec::new();
    for r in rows {
        out.push(decode(r.map_err(db("list held jobs"))?)?);
    }
    Ok(out)
}

pub(crate) fn list(c: &Connection, f: &JobFilter) -> Result<Vec<Job>> {
    let mut sql = format!("SELECT {COLUMNS} FROM jobs WHERE 1 = 1");
    let mut args: Vec<Value> = Vec::new();
    if let Some(h) = f.host {
        args.push(Value::Text(h.to_string()));
        sql.push_str(&format!(" AND host = ?{}", args.len()));
    }
    if let Some(s) = f.state {
        args.push(Value::Text(s.as_str().into()));
        sql.push_str(&format!(" AND state = ?{}", args.len()));
    }
    if let Some(by) = &f.created_by {
        args.push(Value::Text(by.clone()));
        sql.push_str(&format!(" AND created_by = ?{}", args.len()));
    }
    sql.push_str(" ORDER BY created_at, id");
    if let Some(l) = f.limit {
        args.push(Value::Integer(i64::from(l)));
        sql.push_str(&format!(" LIMIT ?{}", args.len()));
    }
    let mut stmt = c.prepare_cached(&sql).map_err(db("list jobs"))?;
    let rows = stmt
        .query_map(params_from_iter(args), raw)
        .map_err(db("list jobs"))?;
    let mut out = Vec::new();
    for r in rows {
        out.push(decode(r.map_err(db("list jobs"))?)?);
    }
    Ok(out)
}
