//! Jobs on PostgreSQL: leases take due jobs `FOR UPDATE SKIP LOCKED`, so servers sharing the
//! database hand each job to one agent; reports lock the job row, then let
//! `patchwarden_store::job::decide_report` decide.

use deadpool_postgres::GenericClient;
use jiff::Timestamp;
use patchwarden_core::audit::AuditEntry;
use patchwarden_store::codec::{from_json, opt_ts_from_db, opt_ts_to_db, ts_from_db, ts_to_db};
use patchwarden_store::job::decide_report;
use patchwarden_store::{Job, JobFilter, JobReport, JobState, NewJob, Result, StoreError};
use tokio_postgres::Row;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::ToSql;
use uuid::Uuid;

use crate::{audit, col, execute, is_code, pg, query, query_opt};

const T: &str = "jobs";
pub(crate) const COLUMNS: &str = "id, host, kind, created_by, created_at, state, lease_until, attempts, \
                       progress, result, updated_at, finished_at";

pub(crate) fn decode(r: &Row) -> Result<Job> {
    let id: Uuid = col(T, r, 0)?;
    let kind: String = col(T, r, 2)?;
    let state: String = col(T, r, 5)?;
    let attempts: i64 = col(T, r, 7)?;
    let progress: Option<String> = col(T, r, 8)?;
    let result: Option<String> = col(T, r, 9)?;
    Ok(Job {
        id,
        host: col(T, r, 1)?,
        kind: from_json(T, &id, &kind)?,
        created_by: col(T, r, 3)?,
        created_at: ts_from_db(T, &id, col(T, r, 4)?)?,
        state: JobState::parse(&state)
            .ok_or_else(|| StoreError::corrupt(T, id, format!("state {state:?}")))?,
        lease_until: opt_ts_from_db(T, &id, col(T, r, 6)?)?,
        attempts: u32::try_from(attempts)
            .map_err(|_| StoreError::corrupt(T, id, format!("attempts {attempts}")))?,
        progress: progress.map(|p| from_json(T, &id, &p)).transpose()?,
        result: result.map(|p| from_json(T, &id, &p)).transpose()?,
        updated_at: ts_from_db(T, &id, col(T, r, 10)?)?,
        finished_at: opt_ts_from_db(T, &id, col(T, r, 11)?)?,
    })
}

/// The job `id`; with `lock`, its row stays locked until the transaction ends.
pub(crate) async fn get<C: GenericClient>(c: &C, id: Uuid, lock: bool) -> Result<Option<Job>> {
    let sql = if lock {
        format!("SELECT {COLUMNS} FROM jobs WHERE id = $1 FOR UPDATE")
    } else {
        format!("SELECT {COLUMNS} FROM jobs WHERE id = $1")
    };
    let row = query_opt(c, &sql, &[&id]).await.map_err(pg("get job"))?;
    row.as_ref().map(decode).transpose()
}

async fn get_existing<C: GenericClient>(c: &C, id: Uuid) -> Result<Job> {
    get(c, id, true).await?.ok_or_else(|| StoreError::NotFound {
        kind: "job",
        id: id.to_string(),
    })
}

pub(crate) async fn create<C: GenericClient>(
    c: &C,
    job: &NewJob,
    kind: &str,
    now: Timestamp,
    entry: &AuditEntry,
) -> Result<Job> {
    let inserted = execute(
        c,
        "INSERT INTO jobs (id, host, kind, created_by, created_at, state, attempts, updated_at)
         VALUES ($1, $2, $3, $4, $5, 'queued', 0, $5)",
        &[
            &job.id,
            &job.host,
            &kind,
            &job.created_by,
            &ts_to_db("now", now)?,
        ],
    )
    .await;
    match inserted {
        Ok(_) => {}
        Err(e) if is_code(&e, &SqlState::UNIQUE_VIOLATION) => {
            return Err(StoreError::AlreadyExists {
                kind: "job",
                id: job.id.to_string(),
            });
        }
        Err(e) if is_code(&e, &SqlState::FOREIGN_KEY_VIOLATION) => {
            return Err(StoreError::NotFound {
                kind: "host",
                id: job.host.to_string(),
            });
        }
        Err(e) => return Err(StoreError::backend("create job", e)),
    }
    let stored = get_existing(c, job.id).await?;
    audit::append(c, entry).await?;
    Ok(stored)
}

/// The ids of host `$1`'s due jobs at `$3` (queued, or leased with an expired lease), oldest
/// first, at most `$4`, locked `FOR UPDATE SKIP LOCKED` so that servers sharing the database
/// hand each job to one agent: what a lease updates.
pub(crate) const DUE_JOBS: &str = "SELECT id FROM jobs
     WHERE host = $1 AND (state = 'queued'
           OR (state IN ('leased', 'running') AND lease_until <= $3))
     ORDER BY created_at, id LIMIT $4
     FOR UPDATE SKIP LOCKED";

pub(crate) async fn lease<C: GenericClient>(
    c: &C,
    host: Uuid,
    lease_until: Timestamp,
    limit: u32,
    now: Timestamp,
    mut entry: AuditEntry,
) -> Result<Vec<Job>> {
    let now_db = ts_to_db("now", now)?;
    let until = ts_to_db("lease_until", lease_until)?;
    let rows = query(
        c,
        &format!(
            "UPDATE jobs SET state = 'leased', lease_until = $2, attempts = attempts + 1,
                             updated_at = $3
             WHERE id IN ({DUE_JOBS})
             RETURNING {COLUMNS}"
        ),
        &[&host, &until, &now_db, &i64::from(limit)],
    )
    .await
    .map_err(pg("lease jobs"))?;
    let mut out = rows.iter().map(decode).collect::<Result<Vec<Job>>>()?;
    // RETURNING gives no order; the lease promises oldest first.
    out.sort_by_key(|j| (j.created_at, j.id));
    if !out.is_empty() {
        if entry.after.is_none() {
            let ids: Vec<String> = out.iter().map(|j| j.id.to_string()).collect();
            entry.after = Some(serde_json::json!({ "jobs": ids, "lease_until": lease_until }));
        }
        audit::append(c, &entry).await?;
    }
    Ok(out)
}

pub(crate) async fn report<C: GenericClient>(
    c: &C,
    host: Uuid,
    id: Uuid,
    report: &JobReport,
    now: Timestamp,
    entry: &AuditEntry,
) -> Result<Job> {
    let job = get_existing(c, id).await?;
    let Some(update) = decide_report(&job, host, report, now)? else {
        return Ok(job);
    };
    execute(
        c,
        "UPDATE jobs SET state = $2, progress = coalesce($3, progress),
                         result = coalesce($4, result), finished_at = $5, updated_at = $6
         WHERE id = $1",
        &[
            &id,
            &update.state.as_str(),
            &update.progress,
            &update.result,
            &opt_ts_to_db("finished_at", update.finished_at)?,
            &ts_to_db("now", now)?,
        ],
    )
    .await
    .map_err(pg("report job"))?;
    let stored = get_existing(c, id).await?;
    audit::append(c, entry).await?;
    Ok(stored)
}

pub(crate) async fn list<C: GenericClient>(c: &C, f: &JobFilter) -> Result<Vec<Job>> {
    let mut sql = format!("SELECT {COLUMNS} FROM jobs WHERE TRUE");
    let mut args: Vec<Box<dyn ToSql + Sync + Send>> = Vec::new();
    if let Some(h) = f.host {
        args.push(Box::new(h));
        sql.push_str(&format!(" AND host = ${}", args.len()));
    }
    if let Some(s) = f.state {
        args.push(Box::new(s.as_str().to_owned()));
        sql.push_str(&format!(" AND state = ${}", args.len()));
    }
    if let Some(by) = &f.created_by {
        args.push(Box::new(by.clone()));
        sql.push_str(&format!(" AND created_by = ${}", args.len()));
    }
    sql.push_str(" ORDER BY created_at, id");
    if let Some(l) = f.limit {
        args.push(Box::new(i64::from(l)));
        sql.push_str(&format!(" LIMIT ${}", args.len()));
    }
    let params: Vec<&(dyn ToSql + Sync)> = args
        .iter()
        .map(|b| b.as_ref() as &(dyn ToSql + Sync))
        .collect();
    let rows = query(c, &sql, &params).await.map_err(pg("list jobs"))?;
    rows.iter().map(decode).collect()
}
