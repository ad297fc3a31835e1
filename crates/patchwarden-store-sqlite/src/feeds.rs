//! Feed sources, imports, enrichment, leases and the triage queue on SQLite.
//!
//! Every change runs on the single writer connection in one `BEGIN IMMEDIATE` transaction,
//! which is what makes an import atomic: the advisories, the enrichment document, the
//! source's validators and its run commit together or not at all.

use async_trait::async_trait;
use jiff::Timestamp;
use patchwarden_core::audit::AuditEntry;
use patchwarden_store::codec::{advisory_rows, from_json, to_json, ts_to_db};
use patchwarden_store::feed::{
    EnrichmentDoc, FeedImport, FeedImported, FeedRun, FeedSource, FeedSourceSpec, FetchValidators,
    MAX_ENRICHMENT_JSON, NewFeedRun, RUN_COLUMNS, RUNS_KEPT, SOURCE_COLUMNS, SourceRow, decode_run,
    import_summary, secs_to_db,
};
use patchwarden_store::triage::{
    NewTriageItem, TRIAGE_COLUMNS, TriageDecision, TriageFilter, TriageItem, TriageRow,
};
use patchwarden_store::{AdvisoryUpsert, FeedStore, Result, StoreError};
use rusqlite::types::Value;
use rusqlite::{Connection, OptionalExtension, Row, params, params_from_iter};
use serde_json::json;

use crate::{SqliteStore, audit, db};

fn source_row(r: &Row<'_>) -> rusqlite::Result<SourceRow> {
    Ok(SourceRow {
        name: r.get(0)?,
        kind: r.get(1)?,
        location: r.get(2)?,
        interval_secs: r.get(3)?,
        expected_period_secs: r.get(4)?,
        origin: r.get(5)?,
        created_at: r.get(6)?,
        etag: r.get(7)?,
        last_modified: r.get(8)?,
        content_sha256: r.get(9)?,
        cursor: r.get(10)?,
        last_attempt_at: r.get(11)?,
        last_success_at: r.get(12)?,
        last_updated_at: r.get(13)?,
        last_error: r.get(14)?,
        failures: r.get(15)?,
        sync_requested_at: r.get(16)?,
        records: r.get(17)?,
    })
}

fn get_source(c: &Connection, name: &str) -> Result<Option<FeedSource>> {
    let row = c
        .query_row(
            &format!("SELECT {SOURCE_COLUMNS} FROM feed_sources WHERE name = ?1"),
            [name],
            source_row,
        )
        .optional()
        .map_err(db("get feed source"))?;
    row.map(SourceRow::decode).transpose()
}

fn must_get_source(c: &Connection, name: &str) -> Result<FeedSource> {
    get_source(c, name)?.ok_or_else(|| StoreError::NotFound {
        kind: "feed source",
        id: name.to_owned(),
    })
}

fn triage_row(r: &Row<'_>) -> rusqlite::Result<TriageRow> {
    Ok(TriageRow {
        id: r.get(0)?,
        vulnerability: r.get(1)?,
        advisories: r.get(2)?,
        summary: r.get(3)?,
        arrived_at: r.get(4)?,
        due_at: r.get(5)?,
        class: r.get(6)?,
        reason: r.get(7)?,
        decided_by: r.get(8)?,
        decided_at: r.get(9)?,
    })
}

fn get_triage(c: &Connection, id: i64) -> Result<Option<TriageItem>> {
    let row = c
        .query_row(
            &format!("SELECT {TRIAGE_COLUMNS} FROM triage_items WHERE id = ?1"),
            [id],
            triage_row,
        )
        .optional()
        .map_err(db("get triage item"))?;
    row.map(TriageRow::decode).transpose()
}

fn bump_generation(c: &Connection) -> Result<i64> {
    c.query_row(
        "UPDATE counters SET value = value + 1 WHERE name = 'advisory_generation'
         RETURNING value",
        [],
        |r| r.get(0),
    )
    .map_err(db("advance the advisory generation"))
}

/// Inserts a run and deletes the source's runs beyond the last [`RUNS_KEPT`].
fn insert_run(c: &Connection, source: &str, run: &NewFeedRun, now: Timestamp) -> Result<FeedRun> {
    let run = run.clone().bounded();
    let body = to_json("feed run", &run, 4 * 1024 * 1024)?;
    let at = ts_to_db("now", now)?;
    let id: i64 = c
        .query_row(
            "INSERT INTO feed_runs (source, finished_at, outcome, body) VALUES (?1, ?2, ?3, ?4)
             RETURNING id",
            params![source, at, run.outcome.as_str(), body],
            |r| r.get(0),
        )
        .map_err(db("record feed run"))?;
    c.execute(
        "DELETE FROM feed_runs WHERE source = ?1 AND id <= ?2",
        params![source, id.saturating_sub(RUNS_KEPT)],
    )
    .map_err(db("record feed run"))?;
    decode_run(id, source.to_owned(), at, run.outcome.as_str(), &body)
}

fn set_validators(c: &Connection, source: &str, v: &FetchValidators) -> Result<()> {
    c.execute(
        "UPDATE feed_sources SET etag = ?2, last_modified = ?3, content_sha256 = ?4, cursor = ?5
         WHERE name = ?1",
        params![source, v.etag, v.last_modified, v.content_sha256, v.cursor],
    )
    .map_err(db("keep feed validators"))?;
    Ok(())
}

fn put_source(
    c: &Connection,
    spec: &FeedSourceSpec,
    now: Timestamp,
    mut entry: AuditEntry,
) -> Result<FeedSource> {
    let before = get_source(c, &spec.name)?;
    if let Some(same) = before.as_ref().filter(|b| &b.spec == spec) {
        return Ok(same.clone());
    }
    c.execute(
        "INSERT INTO feed_sources (name, kind, location, interval_secs, expected_period_secs,
                                   origin, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
         ON CONFLICT (name) DO UPDATE SET kind = excluded.kind, location = excluded.location,
             interval_secs = excluded.interval_secs,
             expected_period_secs = excluded.expected_period_secs, origin = excluded.origin",
        params![
            spec.name,
            spec.kind.as_str(),
            spec.location,
            secs_to_db(spec.interval_secs),
            secs_to_db(spec.expected_period_secs),
            spec.origin.as_str(),
            ts_to_db("now", now)?
        ],
    )
    .map_err(db("put feed source"))?;
    // A source whose kind changed must not keep the other kind's validators or enrichment.
    if let Some(b) = &before
        && b.spec.kind != spec.kind
    {
        set_validators(c, &spec.name, &FetchValidators::default())?;
        c.execute(
            "DELETE FROM feed_enrichment WHERE source = ?1",
            [&spec.name],
        )
        .map_err(db("put feed source"))?;
    }
    if entry.before.is_none() {
        entry.before = before.as_ref().map(|b| json!(b.spec));
    }
    if entry.after.is_none() {
        entry.after = Some(json!(spec));
    }
    audit::append(c, &entry)?;
    must_get_source(c, &spec.name)
}

/// The checked and encoded parts of an import, made before the write transaction.
struct Encoded {
    advisories: Vec<(String, String)>,
    enrichment: Option<String>,
}

/// Takes the import's advisories out as they are encoded (see `codec::advisory_rows`).
fn encode(import: &mut FeedImport) -> Result<Encoded> {
    import.validators.check()?;
    Ok(Encoded {
        advisories: advisory_rows(std::mem::take(&mut import.advisories))?,
        enrichment: import
            .enrichment
            .as_ref()
            .map(|e| to_json("enrichment document", e, MAX_ENRICHMENT_JSON))
            .transpose()?,
    })
}

fn import(
    c: &Connection,
    import: &FeedImport,
    encoded: &Encoded,
    now: Timestamp,
    mut entry: AuditEntry,
) -> Result<FeedImported> {
    must_get_source(c, &import.source)?;
    let at = ts_to_db("now", now)?;
    let mut upsert = AdvisoryUpsert::default();
    {
        let mut read = c
            .prepare_cached("SELECT body FROM advisories WHERE id = ?1")
            .map_err(db("import feed"))?;
        let mut write = c
            .prepare_cached(
                "INSERT INTO advisories (id, body, updated_at) VALUES (?1, ?2, ?3)
                 ON CONFLICT (id) DO UPDATE SET body = excluded.body,
                                                updated_at = excluded.updated_at",
            )
            .map_err(db("import feed"))?;
        for (id, body) in &encoded.advisories {
            let stored: Option<String> = read
                .query_row([id], |r| r.get(0))
                .optional()
                .map_err(db("import feed"))?;
            match stored {
                Some(s) if &s == body => {
                    upsert.unchanged += 1;
                    continue;
                }
                Some(_) => upsert.updated += 1,
                None => upsert.inserted += 1,
            }
            write
                .execute(params![id, body, at])
                .map_err(db("import feed"))?;
            upsert.changed.push(id.clone());
        }
    }
    if let Some(body) = &encoded.enrichment {
        c.execute(
            "INSERT INTO feed_enrichment (source, body, updated_at) VALUES (?1, ?2, ?3)
             ON CONFLICT (source) DO UPDATE SET body = excluded.body,
                                               updated_at = excluded.updated_at",
            params![import.source, body, at],
        )
        .map_err(db("import feed"))?;
    }
    set_validators(c, &import.source, &import.validators)?;
    let records = import
        .enrichment
        .as_ref()
        .map_or(encoded.advisories.len(), EnrichmentDoc::len);
    c.execute(
        "UPDATE feed_sources SET last_attempt_at = ?2, last_success_at = ?2, last_updated_at = ?2,
             last_error = NULL, failures = 0, sync_requested_at = NULL, records = ?3
         WHERE name = ?1",
        params![
            import.source,
            at,
            i64::try_from(records).unwrap_or(i64::MAX)
        ],
    )
    .map_err(db("import feed"))?;
    let mut run = import.run.clone();
    run.inserted = upsert.inserted;
    run.updated = upsert.updated;
    run.unchanged = upsert.unchanged;
    let run = insert_run(c, &import.source, &run, now)?;
    let generation = bump_generation(c)?;
    if entry.after.is_none() {
        entry.after = Some(import_summary(import, &upsert));
    }
    audit::append(c, &entry)?;
    Ok(FeedImported {
        upsert,
        run,
        generation,
    })
}

fn record_run(
    c: &Connection,
    source: &str,
    validators: Option<&FetchValidators>,
    run: &NewFeedRun,
    now: Timestamp,
) -> Result<FeedRun> {
    must_get_source(c, source)?;
    let at = ts_to_db("now", now)?;
    if let Some(v) = validators {
        set_validators(c, source, v)?;
    }
    if run.outcome.reached() {
        c.execute(
            "UPDATE feed_sources SET last_attempt_at = ?2, last_success_at = ?2,
                 last_error = NULL, failures = 0, sync_requested_at = NULL
             WHERE name = ?1",
            params![source, at],
        )
    } else {
        let mut error = run.error.clone().unwrap_or_else(|| "failed".into());
        patchwarden_store::feed::truncate(&mut error, patchwarden_store::feed::MAX_ERROR);
        c.execute(
            "UPDATE feed_sources SET last_attempt_at = ?2, last_error = ?3,
                 failures = failures + 1, sync_requested_at = NULL
             WHERE name = ?1",
            params![source, at, error],
        )
    }
    .map_err(db("record feed run"))?;
    insert_run(c, source, run, now)
}

fn lease(c: &Connection, name: &str, holder: &str, until: i64, now: i64) -> Result<bool> {
    let changed = c
        .execute(
            "INSERT INTO leases (name, holder, expires_at) VALUES (?1, ?2, ?3)
             ON CONFLICT (name) DO UPDATE SET holder = excluded.holder,
                                              expires_at = excluded.expires_at
             WHERE leases.holder = excluded.holder OR leases.expires_at <= ?4",
            params![name, holder, until, now],
        )
        .map_err(db("take lease"))?;
    Ok(changed == 1)
}

fn enqueue(
    c: &Connection,
    items: &[NewTriageItem],
    encoded: &[String],
    mut entry: AuditEntry,
) -> Result<Vec<TriageItem>> {
    let mut added = Vec::new();
    for (item, advisories) in items.iter().zip(encoded) {
        // Cached: a host's first inventory offers every recent vulnerability it has, one
        // statement each, and parsing this one anew each time was a tenth of an upload's time.
        let arrived_at = ts_to_db("arrived_at", item.arrived_at)?;
        let due_at = ts_to_db("due_at", item.due_at)?;
        let id: Option<i64> = c
            .prepare_cached(
                "INSERT INTO triage_items (vulnerability, advisories, summary, arrived_at, due_at)
                 VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (vulnerability) DO NOTHING
                 RETURNING id",
            )
            .and_then(|mut s| {
                s.query_row(
                    params![
                        item.vulnerability,
                        advisories,
                        item.summary,
                        arrived_at,
                        due_at
                    ],
                    |r| r.get(0),
                )
                .optional()
            })
            .map_err(db("enqueue triage"))?;
        if let Some(id) = id
            && let Some(item) = get_triage(c, id)?
        {
            added.push(item);
        }
    }
    if !added.is_empty() {
        if entry.after.is_none() {
            entry.after = Some(json!({
                "vulnerabilities": added.iter().map(|i| &i.vulnerability).collect::<Vec<_>>(),
            }));
        }
        audit::append(c, &entry)?;
    }
    Ok(added)
}

fn classify(
    c: &Connection,
    id: i64,
    decision: &TriageDecision,
    mut entry: AuditEntry,
) -> Result<TriageItem> {
    let before = get_triage(c, id)?.ok_or_else(|| StoreError::NotFound {
        kind: "triage item",
        id: id.to_string(),
    })?;
    c.execute(
        "UPDATE triage_items SET class = ?2, reason = ?3, decided_by = ?4, decided_at = ?5
         WHERE id = ?1",
        params![
            id,
            decision.class.as_str(),
            decision.reason,
            decision.decided_by,
            ts_to_db("decided_at", decision.decided_at)?
        ],
    )
    .map_err(db("classify triage item"))?;
    bump_generation(c)?;
    if entry.before.is_none() {
        entry.before = before.decision.as_ref().map(|d| json!(d));
    }
    if entry.after.is_none() {
        entry.after = Some(json!(decision));
    }
    audit::append(c, &entry)?;
    get_triage(c, id)?.ok_or_else(|| StoreError::NotFound {
        kind: "triage item",
        id: id.to_string(),
    })
}

fn list_triage(c: &Connection, f: &TriageFilter) -> Result<Vec<TriageItem>> {
    let mut sql = format!("SELECT {TRIAGE_COLUMNS} FROM triage_items WHERE 1 = 1");
    let mut args: Vec<Value> = Vec::new();
    let mut push = |cond: &str, v: Option<Value>, sql: &mut String| {
        match v {
            Some(v) => {
                args.push(v);
                sql.push_str(&cond.replace('?', &format!("?{}", args.len())));
            }
            None => sql.push_str(cond),
        };
    };
    match f.pending {
        Some(true) => push(" AND decided_at IS NULL", None, &mut sql),
        Some(false) => push(" AND decided_at IS NOT NULL", None, &mut sql),
        None => {}
    }
    if let Some(t) = f.due_before {
        let t = ts_to_db("due_before", t)?;
        push(" AND due_at < ?", Some(Value::Integer(t)), &mut sql);
    }
    if let Some(v) = &f.vulnerability {
        push(
            " AND vulnerability = ?",
            Some(Value::Text(v.clone())),
            &mut sql,
        );
    }
    if let Some(a) = f.after_id {
        push(" AND id > ?", Some(Value::Integer(a)), &mut sql);
    }
    sql.push_str(" ORDER BY id");
    if let Some(l) = f.limit {
        push(" LIMIT ?", Some(Value::Integer(i64::from(l))), &mut sql);
    }
    let mut stmt = c.prepare_cached(&sql).map_err(db("list triage"))?;
    let rows = stmt
        .query_map(params_from_iter(args), triage_row)
        .map_err(db("list triage"))?;
    let mut out = Vec::new();
    for r in rows {
        out.push(r.map_err(db("list triage"))?.decode()?);
    }
    Ok(out)
}

#[async_trait]
impl FeedStore for SqliteStore {
    async fn put_feed_source(
        &self,
        spec: &FeedSourceSpec,
        now: Timestamp,
        audit: AuditEntry,
    ) -> Result<FeedSource> {
        spec.check()?;
        let spec = spec.clone();
        self.write("put feed source", move |c| put_source(c, &spec, now, audit))
            .await
    }

    async fn feed_sources(&self) -> Result<Vec<FeedSource>> {
        self.read("list feed sources", |c| {
            let mut stmt = c
                .prepare_cached(&format!(
                    "SELECT {SOURCE_COLUMNS} FROM feed_sources ORDER BY name"
                ))
                .map_err(db("list feed sources"))?;
            let rows = stmt
                .query_map([], source_row)
                .map_err(db("list feed sources"))?;
            let mut out = Vec::new();
            for r in rows {
                out.push(r.map_err(db("list feed sources"))?.decode()?);
            }
            Ok(out)
        })
        .await
    }

    async fn get_feed_source(&self, name: &str) -> Result<Option<FeedSource>> {
        let name = name.to_owned();
        self.read("get feed source", move |c| get_source(c, &name))
            .await
    }

    async fn import_feed(
        &self,
        mut feed: FeedImport,
        now: Timestamp,
        audit: AuditEntry,
    ) -> Result<FeedImported> {
        let encoded = encode(&mut feed)?;
        self.write("import feed", move |c| {
            import(c, &feed, &encoded, now, audit)
        })
        .await
    }

    async fn record_feed_run(
        &self,
        source: &str,
        validators: Option<FetchValidators>,
        run: NewFeedRun,
        now: Timestamp,
    ) -> Result<FeedRun> {
        if let Some(v) = &validators {
            v.check()?;
        }
        let source = source.to_owned();
        self.write("record feed run", move |c| {
            record_run(c, &source, validators.as_ref(), &run, now)
        })
        .await
    }

    async fn record_manual_check(
        &self,
        source: &str,
        note: &str,
        now: Timestamp,
        mut audit: AuditEntry,
    ) -> Result<FeedSource> {
        patchwarden_store::limits::check_len(
            "check note",
            note,
            patchwarden_store::limits::MAX_NOTE,
        )?;
        let source = source.to_owned();
        let note = note.to_owned();
        self.write("record manual check", move |c| {
            let s = must_get_source(c, &source)?;
            if s.spec.kind != patchwarden_store::feed::SourceKind::Manual {
                return Err(StoreError::Invalid {
                    field: "feed source",
                    reason: format!(
                        "{source} is a {} source: it is fetched, not checked by hand",
                        s.spec.kind
                    ),
                });
            }
            let at = ts_to_db("now", now)?;
            c.execute(
                "UPDATE feed_sources SET last_attempt_at = ?2, last_success_at = ?2,
                     last_updated_at = ?2, last_error = NULL, failures = 0
                 WHERE name = ?1",
                params![source, at],
            )
            .map_err(db("record manual check"))?;
            let mut run = NewFeedRun::new(now, patchwarden_store::feed::RunOutcome::Checked);
            run.error = (!note.is_empty()).then(|| note.clone());
            insert_run(c, &source, &run, now)?;
            if audit.after.is_none() {
                audit.after = Some(json!({ "note": note }));
            }
            audit::append(c, &audit)?;
            must_get_source(c, &source)
        })
        .await
    }

    async fn request_feed_sync(
        &self,
        source: &str,
        now: Timestamp,
        audit: AuditEntry,
    ) -> Result<FeedSource> {
        let source = source.to_owned();
        self.write("request feed sync", move |c| {
            must_get_source(c, &source)?;
            c.execute(
                "UPDATE feed_sources SET sync_requested_at = ?2 WHERE name = ?1",
                params![source, ts_to_db("now", now)?],
            )
            .map_err(db("request feed sync"))?;
            audit::append(c, &audit)?;
            must_get_source(c, &source)
        })
        .await
    }

    async fn feed_runs(&self, source: &str, limit: u32) -> Result<Vec<FeedRun>> {
        let source = source.to_owned();
        self.read("list feed runs", move |c| {
            let mut stmt = c
                .prepare_cached(&format!(
                    "SELECT {RUN_COLUMNS} FROM feed_runs WHERE source = ?1
                     ORDER BY id DESC LIMIT ?2"
                ))
                .map_err(db("list feed runs"))?;
            let rows = stmt
                .query_map(params![source, i64::from(limit)], |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, i64>(2)?,
                        r.get::<_, String>(3)?,
                        r.get::<_, String>(4)?,
                    ))
                })
                .map_err(db("list feed runs"))?;
            let mut out = Vec::new();
            for r in rows {
                let (id, source, at, outcome, body) = r.map_err(db("list feed runs"))?;
                out.push(decode_run(id, source, at, &outcome, &body)?);
            }
            Ok(out)
        })
        .await
    }

    async fn enrichment_documents(&self) -> Result<Vec<(String, EnrichmentDoc)>> {
        self.read("read enrichment", |c| {
            let mut stmt = c
                .prepare_cached("SELECT source, body FROM feed_enrichment ORDER BY source")
                .map_err(db("read enrichment"))?;
            let rows = stmt
                .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
                .map_err(db("read enrichment"))?;
            let mut out = Vec::new();
            for r in rows {
                let (source, body) = r.map_err(db("read enrichment"))?;
                let doc = from_json("feed_enrichment", &source, &body)?;
                out.push((source, doc));
            }
            Ok(out)
        })
        .await
    }

    async fn advisory_generation(&self) -> Result<i64> {
        self.read("read advisory generation", |c| {
            c.query_row(
                "SELECT value FROM counters WHERE name = 'advisory_generation'",
                [],
                |r| r.get(0),
            )
            .map_err(db("read advisory generation"))
        })
        .await
    }

    async fn try_lease(
        &self,
        name: &str,
        holder: &str,
        until: Timestamp,
        now: Timestamp,
    ) -> Result<bool> {
        use patchwarden_store::limits::{MAX_ID, check_name};
        check_name("lease name", name, MAX_ID)?;
        check_name("lease holder", holder, MAX_ID)?;
        let (name, holder) = (name.to_owned(), holder.to_owned());
        let until = ts_to_db("until", until)?;
        let now = ts_to_db("now", now)?;
        self.write("take lease", move |c| lease(c, &name, &holder, until, now))
            .await
    }

    async fn enqueue_triage(
        &self,
        items: &[NewTriageItem],
        _now: Timestamp,
        audit: AuditEntry,
    ) -> Result<Vec<TriageItem>> {
        if items.is_empty() {
            return Ok(Vec::new());
        }
        for item in items {
            item.check()?;
        }
        // Items are never deleted, so those a reader finds already queued need not take the
        // write lock at all: every first inventory offers every recent vulnerability it has,
        // and on a fleet nearly all of them are known.
        let wanted: Vec<String> = items.iter().map(|i| i.vulnerability.clone()).collect();
        let known = self
            .read("enqueue triage", move |c| {
                let mut stmt = c
                    .prepare_cached("SELECT 1 FROM triage_items WHERE vulnerability = ?1")
                    .map_err(db("enqueue triage"))?;
                let mut known = std::collections::HashSet::new();
                for v in wanted {
                    if stmt.exists([&v]).map_err(db("enqueue triage"))? {
                        known.insert(v);
                    }
                }
                Ok(known)
            })
            .await?;
        let items: Vec<NewTriageItem> = items
            .iter()
            .filter(|i| !known.contains(&i.vulnerability))
            .cloned()
            .collect();
        if items.is_empty() {
            return Ok(Vec::new());
        }
        let mut encoded = Vec::with_capacity(items.len());
        for item in &items {
            encoded.push(to_json("triage advisories", &item.advisories, 64 * 1024)?);
        }
        self.write("enqueue triage", move |c| {
            enqueue(c, &items, &encoded, audit)
        })
        .await
    }

    async fn list_triage(&self, filter: &TriageFilter) -> Result<Vec<TriageItem>> {
        let filter = filter.clone();
        self.read("list triage", move |c| list_triage(c, &filter))
            .await
    }

    async fn get_triage(&self, id: i64) -> Result<Option<TriageItem>> {
        self.read("get triage item", move |c| get_triage(c, id))
            .await
    }

    async fn classify_triage(
        &self,
        id: i64,
        decision: TriageDecision,
        _now: Timestamp,
        audit: AuditEntry,
    ) -> Result<TriageItem> {
        decision.check()?;
        self.write("classify triage item", move |c| {
            classify(c, id, &decision, audit)
        })
        .await
    }
}
