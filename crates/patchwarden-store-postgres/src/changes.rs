//! Change requests and calendar entries on PostgreSQL. An update locks the change's row
//! (`FOR UPDATE`) before it compares revisions, so of two servers updating the same change one
//! waits and then finds the revision moved; numbers come from an upsert on the shared
//! `counters` row, which serialises concurrent creations.

use deadpool_postgres::GenericClient;
use jiff::Timestamp;
use patchwarden_core::audit::AuditEntry;
use patchwarden_store::change::{
    CalendarEntry, CalendarKind, ChangeFilter, ChangeUpdate, NewChange, StoredChange,
    change_number, check_calendar_entry, number_counter,
};
use patchwarden_store::codec::{from_json, ts_from_db, ts_to_db};
use patchwarden_store::{ChangeStore, Result, StoreError};
use tokio_postgres::Row;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::ToSql;
use uuid::Uuid;

use crate::{PgStore, audit, col, execute, is_code, jobs, pg, query, query_opt};

const T: &str = "changes";
const COLUMNS: &str = "id, number, kind, state, requester, body, revision, created_at, updated_at";

fn decode(r: &Row) -> Result<StoredChange> {
    let number: String = col(T, r, 1)?;
    let body: String = col(T, r, 5)?;
    Ok(StoredChange {
        id: col(T, r, 0)?,
        kind: col(T, r, 2)?,
        state: col(T, r, 3)?,
        requester: col(T, r, 4)?,
        body: from_json(T, &number, &body)?,
        revision: col(T, r, 6)?,
        created_at: ts_from_db(T, &number, col(T, r, 7)?)?,
        updated_at: ts_from_db(T, &number, col(T, r, 8)?)?,
        number,
    })
}

async fn get<C: GenericClient>(c: &C, key: &str, lock: bool) -> Result<Option<StoredChange>> {
    let lock = if lock { " FOR UPDATE" } else { "" };
    let row = match Uuid::parse_str(key) {
        Ok(id) => {
            query_opt(
                c,
                &format!("SELECT {COLUMNS} FROM changes WHERE id = $1{lock}"),
                &[&id],
            )
            .await
        }
        Err(_) => {
            query_opt(
                c,
                &format!("SELECT {COLUMNS} FROM changes WHERE number = $1{lock}"),
                &[&key],
            )
            .await
        }
    }
    .map_err(pg("get change"))?;
    row.as_ref().map(decode).transpose()
}

async fn create<C: GenericClient>(
    c: &C,
    change: &NewChange,
    body: &str,
    now: Timestamp,
    entry: &AuditEntry,
) -> Result<StoredChange> {
    let row = query_opt(
        c,
        "INSERT INTO counters (name, value) VALUES ($1, 1)
         ON CONFLICT (name) DO UPDATE SET value = counters.value + 1
         RETURNING value",
        &[&number_counter(change.year)],
    )
    .await
    .map_err(pg("number a change"))?
    .ok_or_else(|| StoreError::Backend {
        op: "number a change",
        reason: "the counter upsert returned no row".into(),
    })?;
    let seq: i64 = col("counters", &row, 0)?;
    let number = change_number(change.year, seq);
    let inserted = execute(
        c,
        "INSERT INTO changes (id, number, kind, state, requester, body, revision, created_at,
                              updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, 1, $7, $7)",
        &[
            &change.id,
            &number,
            &change.kind,
            &change.state,
            &change.requester,
            &body,
            &ts_to_db("now", now)?,
        ],
    )
    .await;
    match inserted {
        Ok(_) => {}
        Err(e) if is_code(&e, &SqlState::UNIQUE_VIOLATION) => {
            return Err(StoreError::AlreadyExists {
                kind: "change",
                id: change.id.to_string(),
            });
        }
        Err(e) => return Err(StoreError::backend("create change", e)),
    }
    let stored = get(c, &number, false)
        .await?
        .ok_or_else(|| StoreError::NotFound {
            kind: "change",
            id: number.clone(),
        })?;
    let mut entry = entry.clone();
    entry.object = format!("change:{number}");
    audit::append(c, &entry).await?;
    Ok(stored)
}

async fn update<C: GenericClient>(
    c: &C,
    update: &ChangeUpdate,
    body: &str,
    job_kinds: &[String],
    now: Timestamp,
    entry: &AuditEntry,
) -> Result<StoredChange> {
    let id = update.id.to_string();
    let current = get(c, &id, true)
        .await?
        .ok_or_else(|| StoreError::NotFound {
            kind: "change",
            id: id.clone(),
        })?;
    if current.revision != update.revision {
        return Err(StoreError::Stale {
            kind: "change",
            id: current.number,
            revision: update.revision,
        });
    }
    execute(
        c,
        "UPDATE changes SET state = $2, body = $3, revision = revision + 1, updated_at = $4
         WHERE id = $1",
        &[&update.id, &update.state, &body, &ts_to_db("now", now)?],
    )
    .await
    .map_err(pg("update change"))?;
    audit::append(c, entry).await?;
    for (job, kind) in update.jobs.iter().zip(job_kinds) {
        let mut job_entry = AuditEntry::new(
            now,
            entry.actor.clone(),
            "job.create",
            format!("job:{}", job.id),
        );
        job_entry.after = Some(serde_json::json!({
            "host": job.host,
            "change": current.number,
        }));
        jobs::create(c, job, kind, now, &job_entry).await?;
    }
    get(c, &id, false)
        .await?
        .ok_or(StoreError::NotFound { kind: "change", id })
}

async fn list<C: GenericClient>(c: &C, f: &ChangeFilter) -> Result<Vec<StoredChange>> {
    let mut sql = format!("SELECT {COLUMNS} FROM changes WHERE TRUE");
    let mut args: Vec<Box<dyn ToSql + Sync + Send>> = Vec::new();
    if !f.states.is_empty() {
        args.push(Box::new(f.states.clone()));
        sql.push_str(&format!(" AND state = ANY(${})", args.len()));
    }
    if let Some(r) = &f.requester {
        args.push(Box::new(r.clone()));
        sql.push_str(&format!(" AND requester = ${}", args.len()));
    }
    sql.push_str(" ORDER BY created_at DESC, number DESC");
    if let Some(l) = f.limit {
        args.push(Box::new(i64::from(l)));
        sql.push_str(&format!(" LIMIT ${}", args.len()));
    }
    let params: Vec<&(dyn ToSql + Sync)> = args
        .iter()
        .map(|b| b.as_ref() as &(dyn ToSql + Sync))
        .collect();
    let rows = query(c, &sql, &params).await.map_err(pg("list changes"))?;
    rows.iter().map(decode).collect()
}

fn calendar_decode(r: &Row) -> Result<CalendarEntry> {
    const C: &str = "calendar_entries";
    let name: String = col(C, r, 0)?;
    let kind: String = col(C, r, 1)?;
    let body: String = col(C, r, 2)?;
    Ok(CalendarEntry {
        kind: CalendarKind::parse(&kind)
            .ok_or_else(|| StoreError::corrupt(C, &name, format!("kind {kind:?}")))?,
        body: from_json(C, &name, &body)?,
        updated_at: ts_from_db(C, &name, col(C, r, 3)?)?,
        name,
    })
}

/// Runs `$body` in a transaction `$tx` and commits it (a `?` inside rolls back).
macro_rules! tx {
    ($self:ident, $op:literal, |$tx:ident| $body:expr) => {{
        let mut client = $self.client($op).await?;
        let $tx = client.transaction().await.map_err(pg($op))?;
        let out = $body;
        $tx.commit().await.map_err(pg($op))?;
        Ok(out)
    }};
}

#[async_trait::async_trait]
impl ChangeStore for PgStore {
    async fn create_change(
        &self,
        change: NewChange,
        now: Timestamp,
        audit: AuditEntry,
    ) -> Result<StoredChange> {
        let body = change.check()?;
        tx!(self, "create change", |tx| create(
            &tx, &change, &body, now, &audit
        )
        .await?)
    }

    async fn get_change(&self, id_or_number: &str) -> Result<Option<StoredChange>> {
        if id_or_number.len() > 64 {
            return Ok(None);
        }
        let client = self.client("get change").await?;
        get(&client, id_or_number, false).await
    }

    async fn list_changes(&self, filter: &ChangeFilter) -> Result<Vec<StoredChange>> {
        let client = self.client("list changes").await?;
        list(&client, filter).await
    }

    async fn update_change(
        &self,
        change: ChangeUpdate,
        now: Timestamp,
        audit: AuditEntry,
    ) -> Result<StoredChange> {
        let (body, kinds) = change.check()?;
        tx!(self, "update change", |tx| update(
            &tx, &change, &body, &kinds, now, &audit
        )
        .await?)
    }

    async fn put_calendar_entry(
        &self,
        name: &str,
        kind: CalendarKind,
        body: serde_json::Value,
        now: Timestamp,
        audit: AuditEntry,
    ) -> Result<CalendarEntry> {
        let text = check_calendar_entry(name, &body)?;
        tx!(self, "put calendar entry", |tx| {
            execute(
                &tx,
                "INSERT INTO calendar_entries (name, kind, body, updated_at)
                 VALUES ($1, $2, $3, $4)
                 ON CONFLICT (name) DO UPDATE SET kind = excluded.kind, body = excluded.body,
                                                  updated_at = excluded.updated_at",
                &[&name, &kind.as_str(), &text, &ts_to_db("now", now)?],
            )
            .await
            .map_err(pg("put calendar entry"))?;
            audit::append(&tx, &audit).await?;
            CalendarEntry {
                name: name.to_owned(),
                kind,
                body,
                updated_at: now,
            }
        })
    }

    async fn delete_calendar_entry(
        &self,
        name: &str,
        _now: Timestamp,
        audit: AuditEntry,
    ) -> Result<bool> {
        tx!(self, "delete calendar entry", |tx| {
            let n = execute(
                &tx,
                "DELETE FROM calendar_entries WHERE name = $1",
                &[&name],
            )
            .await
            .map_err(pg("delete calendar entry"))?;
            if n > 0 {
                audit::append(&tx, &audit).await?;
            }
            n > 0
        })
    }

    async fn calendar_entries(&self) -> Result<Vec<CalendarEntry>> {
        let client = self.client("list calendar entries").await?;
        let rows = query(
            &client,
            "SELECT name, kind, body, updated_at FROM calendar_entries ORDER BY name",
            &[],
        )
        .await
        .map_err(pg("list calendar entries"))?;
        rows.iter().map(calendar_decode).collect()
    }
}
