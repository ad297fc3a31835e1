//! Change requests and calendar entries on SQLite. The writer lock makes the revision check
//! and the number counter exclusive.

use jiff::Timestamp;
use patchwarden_core::audit::AuditEntry;
use patchwarden_store::change::{
    CalendarEntry, CalendarKind, ChangeFilter, ChangeUpdate, NewChange, StoredChange,
    change_number, check_calendar_entry, number_counter,
};
use patchwarden_store::codec::{from_json, ts_from_db, ts_to_db};
use patchwarden_store::{ChangeStore, Result, StoreError};
use rusqlite::types::Value;
use rusqlite::{Connection, OptionalExtension, Row, params, params_from_iter};
use uuid::Uuid;

use crate::{SqliteStore, audit, db, is_unique_violation, jobs, uuid_from_db};

const T: &str = "changes";
const COLUMNS: &str = "id, number, kind, state, requester, body, revision, created_at, updated_at";

type Raw = (
    String,
    String,
    String,
    String,
    String,
    String,
    i64,
    i64,
    i64,
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
    ))
}

fn decode(r: Raw) -> Result<StoredChange> {
    let (id, number, kind, state, requester, body, revision, created_at, updated_at) = r;
    Ok(StoredChange {
        id: uuid_from_db(T, &id)?,
        body: from_json(T, &number, &body)?,
        created_at: ts_from_db(T, &number, created_at)?,
        updated_at: ts_from_db(T, &number, updated_at)?,
        number,
        kind,
        state,
        requester,
        revision,
    })
}

fn get(c: &Connection, key: &str) -> Result<Option<StoredChange>> {
    let row = c
        .query_row(
            &format!("SELECT {COLUMNS} FROM changes WHERE id = ?1 OR number = ?1"),
            [key],
            raw,
        )
        .optional()
        .map_err(db("get change"))?;
    row.map(decode).transpose()
}

fn create(
    c: &Connection,
    change: &NewChange,
    body: &str,
    now: Timestamp,
    entry: &AuditEntry,
) -> Result<StoredChange> {
    let seq: i64 = c
        .query_row(
            "INSERT INTO counters (name, value) VALUES (?1, 1)
             ON CONFLICT (name) DO UPDATE SET value = value + 1
             RETURNING value",
            [number_counter(change.year)],
            |r| r.get(0),
        )
        .map_err(db("number a change"))?;
    let number = change_number(change.year, seq);
    let now_db = ts_to_db("now", now)?;
    let inserted = c.execute(
        "INSERT INTO changes (id, number, kind, state, requester, body, revision, created_at,
                              updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, 1, ?7, ?7)",
        params![
            change.id.to_string(),
            number,
            change.kind,
            change.state,
            change.requester,
            body,
            now_db
        ],
    );
    match inserted {
        Ok(_) => {}
        Err(e) if is_unique_violation(&e) => {
            return Err(StoreError::AlreadyExists {
                kind: "change",
                id: change.id.to_string(),
            });
        }
        Err(e) => return Err(StoreError::backend("create change", e)),
    }
    let stored = get(c, &number)?.ok_or_else(|| StoreError::NotFound {
        kind: "change",
        id: number.clone(),
    })?;
    let mut entry = entry.clone();
    entry.object = format!("change:{number}");
    audit::append(c, &entry)?;
    Ok(stored)
}

fn update(
    c: &Connection,
    update: &ChangeUpdate,
    body: &str,
    job_kinds: &[String],
    now: Timestamp,
    entry: &AuditEntry,
) -> Result<StoredChange> {
    let id = update.id.to_string();
    let current = get(c, &id)?.ok_or_else(|| StoreError::NotFound {
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
    c.execute(
        "UPDATE changes SET state = ?2, body = ?3, revision = revision + 1, updated_at = ?4
         WHERE id = ?1",
        params![id, update.state, body, ts_to_db("now", now)?],
    )
    .map_err(db("update change"))?;
    audit::append(c, entry)?;
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
        jobs::create(c, job, kind, now, &job_entry)?;
    }
    get(c, &id)?.ok_or(StoreError::NotFound { kind: "change", id })
}

fn list(c: &Connection, f: &ChangeFilter) -> Result<Vec<StoredChange>> {
    let mut sql = format!("SELECT {COLUMNS} FROM changes WHERE 1 = 1");
    let mut args: Vec<Value> = Vec::new();
    if !f.states.is_empty() {
        let mut marks = Vec::new();
        for s in &f.states {
            args.push(Value::Text(s.clone()));
            marks.push(format!("?{}", args.len()));
        }
        sql.push_str(&format!(" AND state IN ({})", marks.join(", ")));
    }
    if let Some(r) = &f.requester {
        args.push(Value::Text(r.clone()));
        sql.push_str(&format!(" AND requester = ?{}", args.len()));
    }
    sql.push_str(" ORDER BY created_at DESC, number DESC");
    if let Some(l) = f.limit {
        args.push(Value::Integer(i64::from(l)));
        sql.push_str(&format!(" LIMIT ?{}", args.len()));
    }
    let mut stmt = c.prepare(&sql).map_err(db("list changes"))?;
    let rows = stmt
        .query_map(params_from_iter(args), raw)
        .map_err(db("list changes"))?;
    let mut out = Vec::new();
    for r in rows {
        out.push(decode(r.map_err(db("list changes"))?)?);
    }
    Ok(out)
}

fn calendar_row(r: &Row<'_>) -> rusqlite::Result<(String, String, String, i64)> {
    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
}

fn calendar_decode((name, kind, body, at): (String, String, String, i64)) -> Result<CalendarEntry> {
    Ok(CalendarEntry {
        kind: CalendarKind::parse(&kind).ok_or_else(|| {
            StoreError::corrupt("calendar_entries", &name, format!("kind {kind:?}"))
        })?,
        body: from_json("calendar_entries", &name, &body)?,
        updated_at: ts_from_db("calendar_entries", &name, at)?,
        name,
    })
}

#[async_trait::async_trait]
impl ChangeStore for SqliteStore {
    async fn create_change(
        &self,
        change: NewChange,
        now: Timestamp,
        audit: AuditEntry,
    ) -> Result<StoredChange> {
        let body = change.check()?;
        self.write("create change", move |c| {
            create(c, &change, &body, now, &audit)
        })
        .await
    }

    async fn get_change(&self, id_or_number: &str) -> Result<Option<StoredChange>> {
        if id_or_number.len() > 64 {
            return Ok(None);
        }
        let key = match Uuid::parse_str(id_or_number) {
            Ok(id) => id.to_string(),
            Err(_) => id_or_number.to_owned(),
        };
        self.read("get change", move |c| get(c, &key)).await
    }

    async fn list_changes(&self, filter: &ChangeFilter) -> Result<Vec<StoredChange>> {
        let filter = filter.clone();
        self.read("list changes", move |c| list(c, &filter)).await
    }

    async fn update_change(
        &self,
        change: ChangeUpdate,
        now: Timestamp,
        audit: AuditEntry,
    ) -> Result<StoredChange> {
        let (body, kinds) = change.check()?;
        self.write("update change", move |c| {
            update(c, &change, &body, &kinds, now, &audit)
        })
        .await
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
        let name = name.to_owned();
        self.write("put calendar entry", move |c| {
            c.execute(
                "INSERT INTO calendar_entries (name, kind, body, updated_at)
                 VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (name) DO UPDATE SET kind = excluded.kind, body = excluded.body,
                                                  updated_at = excluded.updated_at",
                params![name, kind.as_str(), text, ts_to_db("now", now)?],
            )
            .map_err(db("put calendar entry"))?;
            audit::append(c, &audit)?;
            Ok(CalendarEntry {
                name,
                kind,
                body,
                updated_at: now,
            })
        })
        .await
    }

    async fn delete_calendar_entry(
        &self,
        name: &str,
        _now: Timestamp,
        audit: AuditEntry,
    ) -> Result<bool> {
        let name = name.to_owned();
        self.write("delete calendar entry", move |c| {
            let n = c
                .execute("DELETE FROM calendar_entries WHERE name = ?1", [&name])
                .map_err(db("delete calendar entry"))?;
            if n > 0 {
                audit::append(c, &audit)?;
            }
            Ok(n > 0)
        })
        .await
    }

    async fn calendar_entries(&self) -> Result<Vec<CalendarEntry>> {
        self.read("list calendar entries", |c| {
            let mut stmt = c
                .prepare_cached(
                    "SELECT name, kind, body, updated_at FROM calendar_entries ORDER BY name",
                )
                .map_err(db("list calendar entries"))?;
            let rows = stmt
                .query_map([], calendar_row)
                .map_err(db("list calendar entries"))?;
            let mut out = Vec::new();
            for r in rows {
                out.push(calendar_decode(r.map_err(db("list calendar entries"))?)?);
            }
            Ok(out)
        })
        .await
    }
}
