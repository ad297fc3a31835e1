//! Feed sources, imports, enrichment, leases and the triage queue on PostgreSQL.
//!
//! An import is one transaction: the source row is locked `FOR UPDATE` first (so two servers
//! importing one source take turns), the advisories are written in id order (so two imports of
//! overlapping advisories lock rows in the same order and cannot deadlock), then the counter
//! row and, last, the audit head — the order every transaction here follows. The scheduler's
//! lease is an `INSERT … ON CONFLICT DO UPDATE … WHERE` on one row: of several servers racing
//! for a free or expired lease, the row lock lets exactly one through.

use async_trait::async_trait;
use deadpool_postgres::GenericClient;
use jiff::Timestamp;
use patchwarden_core::audit::AuditEntry;
use patchwarden_store::codec::{advisory_rows, from_json, to_json, ts_to_db};
use patchwarden_store::feed::{
    EnrichmentDoc, FeedImport, FeedImported, FeedRun, FeedSource, FeedSourceSpec, FetchValidators,
    MAX_ENRICHMENT_JSON, MAX_ERROR, NewFeedRun, RUN_COLUMNS, RUNS_KEPT, RunOutcome, SOURCE_COLUMNS,
    SourceKind, SourceRow, decode_run, import_summary, secs_to_db, truncate,
};
use patchwarden_store::triage::{
    NewTriageItem, TRIAGE_COLUMNS, TriageDecision, TriageFilter, TriageItem, TriageRow,
};
use patchwarden_store::{AdvisoryUpsert, FeedStore, Result, StoreError};
use serde_json::json;
use tokio_postgres::Row;
use tokio_postgres::types::ToSql;

use crate::{PgStore, audit, col, execute, pg, query, query_opt};

const S: &str = "feed_sources";

fn source_row(r: &Row) -> Result<SourceRow> {
    Ok(SourceRow {
        name: col(S, r, 0)?,
        kind: col(S, r, 1)?,
        location: col(S, r, 2)?,
        interval_secs: col(S, r, 3)?,
        expected_period_secs: col(S, r, 4)?,
        origin: col(S, r, 5)?,
        created_at: col(S, r, 6)?,
        etag: col(S, r, 7)?,
        last_modified: col(S, r, 8)?,
        content_sha256: col(S, r, 9)?,
        cursor: col(S, r, 10)?,
        last_attempt_at: col(S, r, 11)?,
        last_success_at: col(S, r, 12)?,
        last_updated_at: col(S, r, 13)?,
        last_error: col(S, r, 14)?,
        failures: col(S, r, 15)?,
        sync_requested_at: col(S, r, 16)?,
        records: col(S, r, 17)?,
    })
}

async fn get_source<C: GenericClient>(c: &C, name: &str, lock: bool) -> Result<Option<FeedSource>> {
    let sql = format!(
        "SELECT {SOURCE_COLUMNS} FROM feed_sources WHERE name = $1{}",
        if lock { " FOR UPDATE" } else { "" }
    );
    let row = query_opt(c, &sql, &[&name])
        .await
        .map_err(pg("get feed source"))?;
    row.map(|r| source_row(&r)?.decode()).transpose()
}

async fn must_lock_source<C: GenericClient>(c: &C, name: &str) -> Result<FeedSource> {
    get_source(c, name, true)
        .await?
        .ok_or_else(|| StoreError::NotFound {
            kind: "feed source",
            id: name.to_owned(),
        })
}

const TI: &str = "triage_items";

fn triage_row(r: &Row) -> Result<TriageRow> {
    Ok(TriageRow {
        id: col(TI, r, 0)?,
        vulnerability: col(TI, r, 1)?,
        advisories: col(TI, r, 2)?,
        summary: col(TI, r, 3)?,
        arrived_at: col(TI, r, 4)?,
        due_at: col(TI, r, 5)?,
        class: col(TI, r, 6)?,
        reason: col(TI, r, 7)?,
        decided_by: col(TI, r, 8)?,
        decided_at: col(TI, r, 9)?,
    })
}

async fn get_triage<C: GenericClient>(c: &C, id: i64, lock: bool) -> Result<Option<TriageItem>> {
    let sql = format!(
        "SELECT {TRIAGE_COLUMNS} FROM triage_items WHERE id = $1{}",
        if lock { " FOR UPDATE" } else { "" }
    );
    let row = query_opt(c, &sql, &[&id])
        .await
        .map_err(pg("get triage item"))?;
    row.map(|r| triage_row(&r)?.decode()).transpose()
}

async fn bump_generation<C: GenericClient>(c: &C) -> Result<i64> {
    let row = query_opt(
        c,
        "UPDATE counters SET value = value + 1 WHERE name = 'advisory_generation'
         RETURNING value",
        &[],
    )
    .await
    .map_err(pg("advance the advisory generation"))?
    .ok_or_else(|| StoreError::corrupt("counters", "advisory_generation", "missing"))?;
    col("counters", &row, 0)
}

async fn insert_run<C: GenericClient>(
    c: &C,
    source: &str,
    run: &NewFeedRun,
    now: Timestamp,
) -> Result<FeedRun> {
    let run = run.clone().bounded();
    let body = to_json("feed run", &run, 4 * 1024 * 1024)?;
    let at = ts_to_db("now", now)?;
    let outcome = run.outcome.as_str();
    let row = query_opt(
        c,
        "INSERT INTO feed_runs (source, finished_at, outcome, body) VALUES ($1, $2, $3, $4)
         RETURNING id",
        &[&source, &at, &outcome, &body],
    )
    .await
    .map_err(pg("record feed run"))?
    .ok_or_else(|| StoreError::Backend {
        op: "record feed run",
        reason: "the insert returned no id".into(),
    })?;
    let id: i64 = col("feed_runs", &row, 0)?;
    execute(
        c,
        "DELETE FROM feed_runs WHERE source = $1 AND id <= $2",
        &[&source, &id.saturating_sub(RUNS_KEPT)],
    )
    .await
    .map_err(pg("record feed run"))?;
    decode_run(id, source.to_owned(), at, outcome, &body)
}

async fn set_validators<C: GenericClient>(c: &C, source: &str, v: &FetchValidators) -> Result<()> {
    execute(
        c,
        "UPDATE feed_sources SET etag = $2, last_modified = $3, content_sha256 = $4, cursor = $5
         WHERE name = $1",
        &[
            &source,
            &v.etag,
            &v.last_modified,
            &v.content_sha256,
            &v.cursor,
        ],
    )
    .await
    .map_err(pg("keep feed validators"))?;
    Ok(())
}

async fn put_source<C: GenericClient>(
    c: &C,
    spec: &FeedSourceSpec,
    now: Timestamp,
    mut entry: AuditEntry,
) -> Result<FeedSource> {
    let before = get_source(c, &spec.name, true).await?;
    if let Some(same) = before.as_ref().filter(|b| &b.spec == spec) {
        return Ok(same.clone());
    }
    execute(
        c,
        "INSERT INTO feed_sources (name, kind, location, interval_secs, expected_period_secs,
                                   origin, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7)
         ON CONFLICT (name) DO UPDATE SET kind = EXCLUDED.kind, location = EXCLUDED.location,
             interval_secs = EXCLUDED.interval_secs,
             expected_period_secs = EXCLUDED.expected_period_secs, origin = EXCLUDED.origin",
        &[
            &spec.name,
            &spec.kind.as_str(),
            &spec.location,
            &secs_to_db(spec.interval_secs),
            &secs_to_db(spec.expected_period_secs),
            &spec.origin.as_str(),
            &ts_to_db("now", now)?,
        ],
    )
    .await
    .map_err(pg("put feed source"))?;
    if let Some(b) = &before
        && b.spec.kind != spec.kind
    {
        set_validators(c, &spec.name, &FetchValidators::default()).await?;
        execute(
            c,
            "DELETE FROM feed_enrichment WHERE source = $1",
            &[&spec.name],
        )
        .await
        .map_err(pg("put feed source"))?;
    }
    if entry.before.is_none() {
        entry.before = before.as_ref().map(|b| json!(b.spec));
    }
    if entry.after.is_none() {
        entry.after = Some(json!(spec));
    }
    audit::append(c, &entry).await?;
    must_lock_source(c, &spec.name).await
}

struct Encoded {
    advisories: Vec<(String, String)>,
    enrichment: Option<String>,
}

/// Takes the import's advisories out as they are encoded (see `codec::advisory_rows`).
fn encode(import: &mut FeedImport) -> Result<Encoded> {
    import.validators.check()?;
    let mut advisories = advisory_rows(std::mem::take(&mut import.advisories))?;
    advisories.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(Encoded {
        advisories,
        enrichment: import
            .enrichment
            .as_ref()
            .map(|e| to_json("enrichment document", e, MAX_ENRICHMENT_JSON))
            .transpose()?,
    })
}

async fn import<C: GenericClient>(
    c: &C,
    import: &FeedImport,
    encoded: &Encoded,
    now: Timestamp,
    mut entry: AuditEntry,
) -> Result<FeedImported> {
    must_lock_source(c, &import.source).await?;
    let at = ts_to_db("now", now)?;
    let mut upsert = AdvisoryUpsert::default();
    for (id, body) in &encoded.advisories {
        let stored = query_opt(
            c,
            "SELECT body FROM advisories WHERE id = $1 FOR UPDATE",
            &[id],
        )
        .await
        .map_err(pg("import feed"))?;
        match stored {
            Some(r) => {
                let s: String = col("advisories", &r, 0)?;
                if &s == body {
                    upsert.unchanged += 1;
                    continue;
                }
                upsert.updated += 1;
            }
            None => upsert.inserted += 1,
        }
        execute(
            c,
            "INSERT INTO advisories (id, body, updated_at) VALUES ($1, $2, $3)
             ON CONFLICT (id) DO UPDATE SET body = EXCLUDED.body, updated_at = EXCLUDED.updated_at",
            &[id, body, &at],
        )
        .await
        .map_err(pg("import feed"))?;
        upsert.changed.push(id.clone());
    }
    if let Some(body) = &encoded.enrichment {
        execute(
            c,
            "INSERT INTO feed_enrichment (source, body, updated_at) VALUES ($1, $2, $3)
             ON CONFLICT (source) DO UPDATE SET body = EXCLUDED.body,
                                               updated_at = EXCLUDED.updated_at",
            &[&import.source, body, &at],
        )
        .await
        .map_err(pg("import feed"))?;
    }
    set_validators(c, &import.source, &import.validators).await?;
    let records = import
        .enrichment
        .as_ref()
        .map_or(encoded.advisories.len(), EnrichmentDoc::len);
    let records = i64::try_from(records).unwrap_or(i64::MAX);
    execute(
        c,
        "UPDATE feed_sources SET last_attempt_at = $2, last_success_at = $2, last_updated_at = $2,
             last_error = NULL, failures = 0, sync_requested_at = NULL, records = $3
         WHERE name = $1",
        &[&import.source, &at, &records],
    )
    .await
    .map_err(pg("import feed"))?;
    let mut run = import.run.clone();
    run.inserted = upsert.inserted;
    run.updated = upsert.updated;
    run.unchanged = upsert.unchanged;
    let run = insert_run(c, &import.source, &run, now).await?;
    let generation = bump_generation(c).await?;
    if entry.after.is_none() {
        entry.after = Some(import_summary(import, &upsert));
    }
    audit::append(c, &entry).await?;
    Ok(FeedImported {
        upsert,
        run,
        generation,
    })
}

async fn record_run<C: GenericClient>(
    c: &C,
    source: &str,
    validators: Option<&FetchValidators>,
    run: &NewFeedRun,
    now: Timestamp,
) -> Result<FeedRun> {
    must_lock_source(c, source).await?;
    let at = ts_to_db("now", now)?;
    if let Some(v) = validators {
        set_validators(c, source, v).await?;
    }
    if run.outcome.reached() {
        execute(
            c,
            "UPDATE feed_sources SET last_attempt_at = $2, last_success_at = $2,
                 last_error = NULL, failures = 0, sync_requested_at = NULL
             WHERE name = $1",
            &[&source, &at],
        )
        .await
    } else {
        let mut error = run.error.clone().unwrap_or_else(|| "failed".into());
        truncate(&mut error, MAX_ERROR);
        execute(
            c,
            "UPDATE feed_sources SET last_attempt_at = $2, last_error = $3,
                 failures = failures + 1, sync_requested_at = NULL
             WHERE name = $1",
            &[&source, &at, &error],
        )
        .await
    }
    .map_err(pg("record feed run"))?;
    insert_run(c, source, run, now).await
}

async fn list_triage<C: GenericClient>(c: &C, f: &TriageFilter) -> Result<Vec<TriageItem>> {
    let mut sql = format!("SELECT {TRIAGE_COLUMNS} FROM triage_items WHERE TRUE");
    let mut args: Vec<Box<dyn ToSql + Sync + Send>> = Vec::new();
    match f.pending {
        Some(true) => sql.push_str(" AND decided_at IS NULL"),
        Some(false) => sql.push_str(" AND decided_at IS NOT NULL"),
        None => {}
    }
    if let Some(t) = f.due_before {
        args.push(Box::new(ts_to_db("due_before", t)?));
        sql.push_str(&format!(" AND due_at < ${}", args.len()));
    }
    if let Some(v) = &f.vulnerability {
        args.push(Box::new(v.clone()));
        sql.push_str(&format!(" AND vulnerability = ${}", args.len()));
    }
    if let Some(a) = f.after_id {
        args.push(Box::new(a));
        sql.push_str(&format!(" AND id > ${}", args.len()));
    }
    sql.push_str(" ORDER BY id");
    if let Some(l) = f.limit {
        args.push(Box::new(i64::from(l)));
        sql.push_str(&format!(" LIMIT ${}", args.len()));
    }
    let params: Vec<&(dyn ToSql + Sync)> = args
        .iter()
        .map(|a| a.as_ref() as &(dyn ToSql + Sync))
        .collect();
    let rows = query(c, &sql, &params).await.map_err(pg("list triage"))?;
    rows.iter().map(|r| triage_row(r)?.decode()).collect()
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
impl FeedStore for PgStore {
    async fn put_feed_source(
        &self,
        spec: &FeedSourceSpec,
        now: Timestamp,
        audit: AuditEntry,
    ) -> Result<FeedSource> {
        spec.check()?;
        tx!(self, "put feed source", |tx| put_source(
            &tx, spec, now, audit
        )
        .await?)
    }

    async fn feed_sources(&self) -> Result<Vec<FeedSource>> {
        let client = self.client("list feed sources").await?;
        let rows = query(
            &client,
            &format!("SELECT {SOURCE_COLUMNS} FROM feed_sources ORDER BY name"),
            &[],
        )
        .await
        .map_err(pg("list feed sources"))?;
        rows.iter().map(|r| source_row(r)?.decode()).collect()
    }

    async fn get_feed_source(&self, name: &str) -> Result<Option<FeedSource>> {
        let client = self.client("get feed source").await?;
        get_source(&client, name, false).await
    }

    async fn import_feed(
        &self,
        mut feed: FeedImport,
        now: Timestamp,
        audit: AuditEntry,
    ) -> Result<FeedImported> {
        let encoded = encode(&mut feed)?;
        tx!(self, "import feed", |tx| import(
            &tx, &feed, &encoded, now, audit
        )
        .await?)
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
        tx!(self, "record feed run", |tx| record_run(
            &tx,
            source,
            validators.as_ref(),
            &run,
            now
        )
        .await?)
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
        tx!(self, "record manual check", |tx| {
            let s = must_lock_source(&tx, source).await?;
            if s.spec.kind != SourceKind::Manual {
                return Err(StoreError::Invalid {
                    field: "feed source",
                    reason: format!(
                        "{source} is a {} source: it is fetched, not checked by hand",
                        s.spec.kind
                    ),
                });
            }
            let at = ts_to_db("now", now)?;
            execute(
                &tx,
                "UPDATE feed_sources SET last_attempt_at = $2, last_success_at = $2,
                     last_updated_at = $2, last_error = NULL, failures = 0
                 WHERE name = $1",
                &[&source, &at],
            )
            .await
            .map_err(pg("record manual check"))?;
            let mut run = NewFeedRun::new(now, RunOutcome::Checked);
            run.error = (!note.is_empty()).then(|| note.to_owned());
            insert_run(&tx, source, &run, now).await?;
            if audit.after.is_none() {
                audit.after = Some(json!({ "note": note }));
            }
            audit::append(&tx, &audit).await?;
            must_lock_source(&tx, source).await?
        })
    }

    async fn request_feed_sync(
        &self,
        source: &str,
        now: Timestamp,
        audit: AuditEntry,
    ) -> Result<FeedSource> {
        tx!(self, "request feed sync", |tx| {
            must_lock_source(&tx, source).await?;
            execute(
                &tx,
                "UPDATE feed_sources SET sync_requested_at = $2 WHERE name = $1",
                &[&source, &ts_to_db("now", now)?],
            )
            .await
            .map_err(pg("request feed sync"))?;
            audit::append(&tx, &audit).await?;
            must_lock_source(&tx, source).await?
        })
    }

    async fn feed_runs(&self, source: &str, limit: u32) -> Result<Vec<FeedRun>> {
        let client = self.client("list feed runs").await?;
        let rows = query(
            &client,
            &format!(
                "SELECT {RUN_COLUMNS} FROM feed_runs WHERE source = $1 ORDER BY id DESC LIMIT $2"
            ),
            &[&source, &i64::from(limit)],
        )
        .await
        .map_err(pg("list feed runs"))?;
        rows.iter()
            .map(|r| {
                const T: &str = "feed_runs";
                let outcome: String = col(T, r, 3)?;
                let body: String = col(T, r, 4)?;
                decode_run(col(T, r, 0)?, col(T, r, 1)?, col(T, r, 2)?, &outcome, &body)
            })
            .collect()
    }

    async fn enrichment_documents(&self) -> Result<Vec<(String, EnrichmentDoc)>> {
        let client = self.client("read enrichment").await?;
        let rows = query(
            &client,
            "SELECT source, body FROM feed_enrichment ORDER BY source",
            &[],
        )
        .await
        .map_err(pg("read enrichment"))?;
        rows.iter()
            .map(|r| {
                let source: String = col("feed_enrichment", r, 0)?;
                let body: String = col("feed_enrichment", r, 1)?;
                let doc = from_json("feed_enrichment", &source, &body)?;
                Ok((source, doc))
            })
            .collect()
    }

    async fn advisory_generation(&self) -> Result<i64> {
        let client = self.client("read advisory generation").await?;
        let row = query_opt(
            &client,
            "SELECT value FROM counters WHERE name = 'advisory_generation'",
            &[],
        )
        .await
        .map_err(pg("read advisory generation"))?
        .ok_or_else(|| StoreError::corrupt("counters", "advisory_generation", "missing"))?;
        col("counters", &row, 0)
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
        let until = ts_to_db("until", until)?;
        let now = ts_to_db("now", now)?;
        let client = self.client("take lease").await?;
        let changed = execute(
            &client,
            "INSERT INTO leases (name, holder, expires_at) VALUES ($1, $2, $3)
             ON CONFLICT (name) DO UPDATE SET holder = EXCLUDED.holder,
                                              expires_at = EXCLUDED.expires_at
             WHERE leases.holder = EXCLUDED.holder OR leases.expires_at <= $4",
            &[&name, &holder, &until, &now],
        )
        .await
        .map_err(pg("take lease"))?;
        Ok(changed == 1)
    }

    async fn enqueue_triage(
        &self,
        items: &[NewTriageItem],
        _now: Timestamp,
        mut audit: AuditEntry,
    ) -> Result<Vec<TriageItem>> {
        if items.is_empty() {
            return Ok(Vec::new());
        }
        for item in items {
            item.check()?;
        }
        // Items are never deleted, so those already queued need no transaction and no lock:
        // every first inventory offers every recent vulnerability it has, and on a fleet
        // nearly all of them are known. (Inserting each, even with ON CONFLICT DO NOTHING,
        // made concurrent uploads wait on each other's uncommitted rows of the same
        // vulnerabilities, one after the other: 20 uploads a second on 50,000 hosts.)
        //
        // A semi-join with the offered list, not `vulnerability = ANY($1)`: the prepared
        // statement's generic plan scans the small table and compares each row with every
        // element of the array in turn (a few hundred items times a thousand rows: 11.5 ms of
        // a backend's CPU an upload, `EXPLAIN ANALYZE`), where the join hashes the list once
        // (0.75 ms).
        let wanted: Vec<&str> = items.iter().map(|i| i.vulnerability.as_str()).collect();
        let client = self.client("enqueue triage").await?;
        let known: std::collections::HashSet<String> = query(
            &client,
            "SELECT vulnerability FROM triage_items
             WHERE vulnerability IN (SELECT unnest($1::text[]))",
            &[&wanted],
        )
        .await
        .map_err(pg("enqueue triage"))?
        .iter()
        .map(|r| col(TI, r, 0))
        .collect::<Result<_>>()?;
        drop(client);
        let mut fresh: Vec<&NewTriageItem> = items
            .iter()
            .filter(|i| !known.contains(&i.vulnerability))
            .collect();
        if fresh.is_empty() {
            return Ok(Vec::new());
        }
        // The same order in every transaction: racing enqueues cannot deadlock.
        fresh.sort_by(|a, b| a.vulnerability.cmp(&b.vulnerability));
        let mut vulnerability = Vec::with_capacity(fresh.len());
        let mut advisories = Vec::with_capacity(fresh.len());
        let mut summary = Vec::with_capacity(fresh.len());
        let mut arrived_at = Vec::with_capacity(fresh.len());
        let mut due_at = Vec::with_capacity(fresh.len());
        for item in &fresh {
            vulnerability.push(item.vulnerability.as_str());
            advisories.push(to_json("triage advisories", &item.advisories, 64 * 1024)?);
            summary.push(item.summary.as_deref());
            arrived_at.push(ts_to_db("arrived_at", item.arrived_at)?);
            due_at.push(ts_to_db("due_at", item.due_at)?);
        }
        tx!(self, "enqueue triage", |tx| {
            // One statement for all; a vulnerability queued meanwhile by another host keeps
            // its first arrival.
            let rows = query(
                &tx,
                &format!(
                    "INSERT INTO triage_items (vulnerability, advisories, summary, arrived_at,
                                               due_at)
                     SELECT v, a, s, r, d
                     FROM UNNEST($1::text[], $2::text[], $3::text[], $4::int8[], $5::int8[])
                          AS t (v, a, s, r, d)
                     ORDER BY v
                     ON CONFLICT (vulnerability) DO NOTHING
                     RETURNING {TRIAGE_COLUMNS}"
                ),
                &[&vulnerability, &advisories, &summary, &arrived_at, &due_at],
            )
            .await
            .map_err(pg("enqueue triage"))?;
            let mut added = rows
                .iter()
                .map(|r| triage_row(r)?.decode())
                .collect::<Result<Vec<TriageItem>>>()?;
            added.sort_by(|a, b| a.vulnerability.cmp(&b.vulnerability));
            if !added.is_empty() {
                if audit.after.is_none() {
                    audit.after = Some(json!({
                        "vulnerabilities":
                            added.iter().map(|i| &i.vulnerability).collect::<Vec<_>>(),
                    }));
                }
                audit::append(&tx, &audit).await?;
            }
            added
        })
    }

    async fn list_triage(&self, filter: &TriageFilter) -> Result<Vec<TriageItem>> {
        let client = self.client("list triage").await?;
        list_triage(&client, filter).await
    }

    async fn get_triage(&self, id: i64) -> Result<Option<TriageItem>> {
        let client = self.client("get triage item").await?;
        get_triage(&client, id, false).await
    }

    async fn classify_triage(
        &self,
        id: i64,
        decision: TriageDecision,
        _now: Timestamp,
        mut audit: AuditEntry,
    ) -> Result<TriageItem> {
        decision.check()?;
        tx!(self, "classify triage item", |tx| {
            let before = get_triage(&tx, id, true)
                .await?
                .ok_or_else(|| StoreError::NotFound {
                    kind: "triage item",
                    id: id.to_string(),
                })?;
            execute(
                &tx,
                "UPDATE triage_items SET class = $2, reason = $3, decided_by = $4,
                     decided_at = $5
                 WHERE id = $1",
                &[
                    &id,
                    &decision.class.as_str(),
                    &decision.reason,
                    &decision.decided_by,
                    &ts_to_db("decided_at", decision.decided_at)?,
                ],
            )
            .await
            .map_err(pg("classify triage item"))?;
            bump_generation(&tx).await?;
            if audit.before.is_none() {
                audit.before = before.decision.as_ref().map(|d| json!(d));
            }
            if audit.after.is_none() {
                audit.after = Some(json!(decision));
            }
            audit::append(&tx, &audit).await?;
            get_triage(&tx, id, false)
                .await?
                .ok_or_else(|| StoreError::NotFound {
                    kind: "triage item",
                    id: id.to_string(),
                })?
        })
    }
}
