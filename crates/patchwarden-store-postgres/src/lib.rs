//! The [`Store`] on PostgreSQL, for fleets that outgrow one machine: several `serve` processes
//! may share one database.
//!
//! Every changing method is one transaction on a pooled connection (deadpool). What SQLite
//! gets from its single writer, PostgreSQL gets from row locks: the rows a change reads before
//! it decides (a token, a host, a job) are read `FOR UPDATE`, leases take due jobs `FOR UPDATE
//! SKIP LOCKED` so concurrent servers hand each job to one agent, and the audit chain's
//! one-row head is locked `FOR UPDATE` as the last step of every transaction, so appends are
//! serialised and the chain never forks, while the lock is held only from the append to the
//! commit. Locks are always taken in that order (domain rows, then the head), so two
//! transactions cannot wait on each other in a cycle.
//!
//! Queries are checked at run time; the build needs no database. The schema lives in the
//! connection's `search_path` (the test suite gives each run a fresh schema that way).

use std::sync::Arc;

use async_trait::async_trait;
use deadpool_postgres::{GenericClient, Manager, ManagerConfig, Pool, RecyclingMethod};
use jiff::Timestamp;
use patchwarden_core::advisory::Advisory;
use patchwarden_core::audit::{AuditEntry, AuditEvent};
use patchwarden_core::inventory::{HostFacts, Inventory, Package, PackagesDigest};
use patchwarden_store::{
    AdvisoryUpsert, AuditHead, CheckIn, CheckedIn, ClassificationChange, CurrentFinding,
    DatabaseUrl, EnrollmentToken, FindingFilter, FindingSync, Host, HostFilter, HostPlacement,
    HostStateChange, Job, JobFilter, JobReport, NewEnrollmentToken, NewHost, NewJob,
    PreparedInventory, PreparedUpload, Result, SecretHash, Store, StoreError, StoredFinding,
    StoredInventory,
};
use tokio_postgres::Row;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::ToSql;
use uuid::Uuid;

mod audit;
mod changes;
mod check_in;
mod exceptions;
mod feeds;
mod findings;
mod hosts;
mod incidents;
mod inventory;
mod jobs;
pub mod migrate;
mod notifications;
mod pipelined;
mod tokens;
mod users;

/// Connections per server process unless the URL's `pool_max_conns` says otherwise: enough to
/// keep PostgreSQL's cores busy with a server's uploads, check-ins and reads (more only queue
/// inside PostgreSQL), few enough that several servers fit under PostgreSQL's default 100
/// connections. Each connection keeps the buffers of the largest message it carried (an
/// upload's pipelined findings), so the pool's size is also server memory. 8 rather than 16:
/// the same upload rate and check-in latency on two cores, about 10 MiB less at 3,000 hosts
/// and 20 at 50,000 (BENCHMARKS.md, thirteenth session).
pub const DEFAULT_POOL_SIZE: usize = 8;

/// The largest `pool_max_conns` taken: PostgreSQL's own ceiling on connections is in the
/// hundreds, and a larger number is a mistake rather than a setting.
const MAX_POOL_SIZE: usize = 1000;

/// The URL's query parameter naming the pool's size (the name pgx's pool gives it). The driver
/// refuses parameters it does not know, so it is taken out of the URL before the driver reads
/// it.
const POOL_PARAM: &str = "pool_max_conns";

/// Splits `pool_max_conns=N` off a `postgres://` URL: the URL without it, and the pool's size
/// (the default when absent). An error says why the value is refused.
pub fn take_pool_size(url: &str) -> std::result::Result<(String, usize), String> {
    let Some((base, query)) = url.split_once('?') else {
        return Ok((url.to_owned(), DEFAULT_POOL_SIZE));
    };
    let mut size = None;
    let mut kept = Vec::new();
    for pair in query.split('&') {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        if key != POOL_PARAM {
            kept.push(pair);
            continue;
        }
        if size.is_some() {
            return Err(format!("{POOL_PARAM} is given twice"));
        }
        let n = value
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=MAX_POOL_SIZE).contains(n))
            .ok_or_else(|| format!("{POOL_PARAM} must be a number from 1 to {MAX_POOL_SIZE}"))?;
        size = Some(n);
    }
    let url = if kept.is_empty() {
        base.to_owned()
    } else {
        format!("{base}?{}", kept.join("&"))
    };
    Ok((url, size.unwrap_or(DEFAULT_POOL_SIZE)))
}

/// A PostgreSQL store. Cloning shares the pool.
#[derive(Clone)]
pub struct PgStore {
    pool: Pool,
    /// The database URL with any password hidden, for messages.
    location: Arc<str>,
    /// The finding bodies this store has seen committed (`findings::KnownBodies`).
    bodies: Arc<findings::KnownBodies>,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore")
            .field("location", &self.location)
            .finish_non_exhaustive()
    }
}

/// Opens the store named by a `postgres://` URL (see [`DatabaseUrl`]).
pub async fn open(url: &str) -> Result<Arc<dyn Store>> {
    match DatabaseUrl::parse(url)? {
        DatabaseUrl::Postgres(url) => Ok(Arc::new(PgStore::open(&url).await?)),
        DatabaseUrl::Sqlite(_) => Err(StoreError::Url {
            url: url.to_owned(),
            reason: "this is a SQLite URL; the PostgreSQL backend opens postgres:// URLs".into(),
        }),
    }
}

impl PgStore {
    /// Connects to the database at `url`, applying the missing migrations.
    /// A `pool_max_conns=N` query parameter sets the number of connections (default
    /// [`DEFAULT_POOL_SIZE`]); the others are the driver's (libpq's names).
    pub async fn open(url: &str) -> Result<PgStore> {
        let location = patchwarden_store::redact(url);
        let (url, pool_size) = take_pool_size(url).map_err(|reason| StoreError::Url {
            url: location.clone(),
            reason,
        })?;
        let config: tokio_postgres::Config = url.parse().map_err(|e| StoreError::Url {
            url: location.clone(),
            reason: format!("{e}"),
        })?;
        PgStore::connect_pool(config, location, pool_size).await
    }

    /// Connects with a driver configuration (`location` names the database in messages) and a
    /// pool of [`DEFAULT_POOL_SIZE`] connections.
    pub async fn connect(config: tokio_postgres::Config, location: String) -> Result<PgStore> {
        PgStore::connect_pool(config, location, DEFAULT_POOL_SIZE).await
    }

    /// Connects with a driver configuration and a pool of at most `pool_size` connections.
    pub async fn connect_pool(
        config: tokio_postgres::Config,
        location: String,
        pool_size: usize,
    ) -> Result<PgStore> {
        let manager = Manager::from_config(
            config,
            tokio_postgres::NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(pool_size.max(1))
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .build()
            .map_err(|e| StoreError::Open {
                location: location.clone(),
                reason: e.to_string(),
            })?;
        let store = PgStore {
            pool,
            location: location.into(),
            bodies: Arc::default(),
        };
        let mut client = store.pool.get().await.map_err(|e| StoreError::Open {
            location: store.location.to_string(),
            reason: error_chain(&e),
        })?;
        migrate::migrate(&mut client).await?;
        Ok(store)
    }

    /// The most connections this store opens.
    pub fn pool_size(&self) -> usize {
        self.pool.status().max_size
    }

    async fn client(&self, op: &'static str) -> Result<deadpool_postgres::Client> {
        self.pool.get().await.map_err(|e| StoreError::Backend {
            op,
            reason: format!("no database connection: {}", error_chain(&e)),
        })
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut source = e.source();
    while let Some(c) = source {
        let text = c.to_string();
        if !s.contains(&text) {
            s.push_str(": ");
            s.push_str(&text);
        }
        source = c.source();
    }
    s
}

/// Maps a driver error during `op`.
pub(crate) fn pg(op: &'static str) -> impl Fn(tokio_postgres::Error) -> StoreError {
    move |e| StoreError::backend(op, e)
}

pub(crate) fn is_code(e: &tokio_postgres::Error, code: &SqlState) -> bool {
    e.code() == Some(code)
}

/// A column that does not decode: the row was damaged or edited by hand.
pub(crate) fn col<T>(table: &'static str, row: &tokio_postgres::Row, idx: usize) -> Result<T>
where
    T: for<'a> tokio_postgres::types::FromSql<'a>,
{
    row.try_get(idx)
        .map_err(|e| StoreError::corrupt(table, format!("column {idx}"), e))
}

/// Prepares `sql` once per connection (cached) and runs it.
pub(crate) async fn query<C: GenericClient>(
    c: &C,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
) -> std::result::Result<Vec<Row>, tokio_postgres::Error> {
    let statement = c.prepare_cached(sql).await?;
    c.query(&statement, params).await
}

/// Like [`query`], for at most one row.
pub(crate) async fn query_opt<C: GenericClient>(
    c: &C,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
) -> std::result::Result<Option<Row>, tokio_postgres::Error> {
    let statement = c.prepare_cached(sql).await?;
    c.query_opt(&statement, params).await
}

/// Like [`query`], for a statement that returns no rows: the number of rows changed.
pub(crate) async fn execute<C: GenericClient>(
    c: &C,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
) -> std::result::Result<u64, tokio_postgres::Error> {
    let statement = c.prepare_cached(sql).await?;
    c.execute(&statement, params).await
}

/// Runs `$body` in a transaction `$tx` on a pooled connection and commits it. A `?` inside the
/// body returns early and drops the transaction, which rolls it back.
macro_rules! in_tx {
    ($self:ident, $op:literal, |$tx:ident| $body:expr) => {{
        let mut client = $self.client($op).await?;
        let $tx = client.transaction().await.map_err($crate::pg($op))?;
        let out = $body;
        $tx.commit().await.map_err($crate::pg($op))?;
        Ok(out)
    }};
}

#[async_trait]
impl Store for PgStore {
    fn backend(&self) -> &'static str {
        "postgres"
    }

    async fn applied_migrations(&self) -> Result<Vec<String>> {
        let client = self.client("read migrations").await?;
        migrate::applied(&client).await
    }

    async fn create_enrollment_token(
        &self,
        token: NewEnrollmentToken,
        now: Timestamp,
        audit: AuditEntry,
    ) -> Result<EnrollmentToken> {
        token.check()?;
        in_tx!(self, "create enrollment token", |tx| tokens::create(
            &tx, &token, now, &audit
        )
        .await?)
    }

    async fn list_enrollment_tokens(&self) -> Result<Vec<EnrollmentToken>> {
        let client = self.client("list enrollment tokens").await?;
        tokens::list(&client).await
    }

    async fn revoke_enrollment_token(
        &self,
        id: Uuid,
        now: Timestamp,
        audit: AuditEntry,
    ) -> Result<EnrollmentToken> {
        in_tx!(self, "revoke enrollment token", |tx| tokens::revoke(
            &tx, id, now, &audit
        )
        .await?)
    }

    async fn enroll_host(
        &self,
        secret: SecretHash,
        host: NewHost,
        now: Timestamp,
        audit: AuditEntry,
    ) -> Result<Host> {
        let facts = host.check()?;
        in_tx!(self, "enroll host", |tx| tokens::enroll(
            &tx, secret, &host, &facts, now, &audit
        )
        .await?)
    }

    async fn get_host(&self, id: Uuid) -> Result<Option<Host>> {
        let client = self.client("get host").await?;
        hosts::get(&client, id, false).await
    }

    async fn get_hosts(&self, ids: &[Uuid]) -> Result<Vec<Host>> {
        let client = self.client("get hosts").await?;
        hosts::get_many(&client, ids).await
    }

    async fn list_hosts(&self, filter: &HostFilter) -> Result<Vec<Host>> {
        let client = self.client("list hosts").await?;
        hosts::list(&client, filter).await
    }

    async fn find_hosts_by_machine_id(&self, machine_id: &str) -> Result<Vec<Host>> {
        let client = self.client("find hosts by machine id").await?;
        hosts::by_machine_id(&client, machine_id).await
    }

    async fn record_check_in(
        &self,
        host: Uuid,
        facts: HostFacts,
        now: Timestamp,
        audit: AuditEntry,
    ) -> Result<Host> {
        let facts_json = patchwarden_store::host::facts_json(&facts)?;
        in_tx!(self, "record check-in", |tx| hosts::check_in(
            &tx,
            host,
            &facts,
            &facts_json,
            now,
            &audit
        )
        .await?)
    }

    async fn check_in(&self, ci: CheckIn) -> Result<CheckedIn> {
        patchwarden_store::limits::check_name(
            "nonce",
            &ci.nonce,
            patchwarden_store::limits::MAX_NONCE,
        )?;
        let facts_json = patchwarden_store::host::facts_json(&ci.facts)?;
        in_tx!(self, "check in", |tx| check_in::check_in(
            &tx,
            ci,
            &facts_json
        )
        .await?)
    }

    async fn set_host_placement(
        &self,
        host: Uuid,
        placement: HostPlacement,
        now: Timestamp,
        audit: AuditEntry,
    ) -> Result<Host> {
        placement.check()?;
        in_tx!(self, "set host placement", |tx| hosts::set_placement(
            &tx, host, &placement, now, &audit
        )
        .await?)
    }

    async fn change_host_state(
        &self,
        host: Uuid,
        change: HostStateChange,
        now: Timestamp,
        audit: AuditEntry,
    ) -> Result<Host> {
        change.check()?;
        in_tx!(self, "change host state", |tx| hosts::change_state(
            &tx, host, &change, now, audit
        )
        .await?)
    }

    async fn advance_check_in_counter(&self, host: Uuid, seq: u64) -> Result<()> {
        let client = self.client("advance check-in counter").await?;
        hosts::advance_counter(&client, host, seq).await
    }

    async fn record_nonce(
        &self,
        host: Uuid,
        nonce: &str,
        expires_at: Timestamp,
        now: Timestamp,
    ) -> Result<()> {
        patchwarden_store::limits::check_name(
            "nonce",
            nonce,
            patchwarden_store::limits::MAX_NONCE,
        )?;
        let client = self.client("record nonce").await?;
        hosts::record_nonce(&client, host, nonce, expires_at, now).await
    }

    async fn purge_expired_nonces(&self, now: Timestamp) -> Result<u64> {
        let client = self.client("purge nonces").await?;
        hosts::purge_nonces(&client, now).await
    }

    async fn replace_inventory(
        &self,
        host: Uuid,
        inventory: &Inventory,
        now: Timestamp,
        audit: AuditEntry,
    ) -> Result<PackagesDigest> {
        let prepared = PreparedInventory::of(inventory)?;
        in_tx!(self, "replace inventory", |tx| inventory::replace(
            &tx,
            host,
            &prepared.json,
            prepared.digest,
            now,
            &audit
        )
        .await?)
    }

    async fn get_inventory(&self, host: Uuid) -> Result<Option<StoredInventory>> {
        let client = self.client("get inventory").await?;
        inventory::get(&client, host).await
    }

    async fn upsert_advisories(
        &self,
        advisories: Vec<Advisory>,
        now: Timestamp,
        audit: AuditEntry,
    ) -> Result<AdvisoryUpsert> {
        let rows = patchwarden_store::codec::advisory_rows(advisories)?;
        in_tx!(self, "upsert advisories", |tx| {
            inventory::upsert_advisories(&tx, &rows, now, &audit).await?
        })
    }

    async fn advisories(&self) -> Result<Vec<Advisory>> {
        let client = self.client("read advisories").await?;
        inventory::advisories(&client).await
    }

    async fn advisories_by_ids(&self, ids: &[String]) -> Result<Vec<Advisory>> {
        let client = self.client("read advisories by id").await?;
        inventory::advisories_by_ids(&client, ids).await
    }

    async fn advisory_count(&self) -> Result<u64> {
        let client = self.client("count advisories").await?;
        inventory::advisory_count(&client).await
    }

    async fn sync_findings(
        &self,
        host: Uuid,
        current: &[CurrentFinding],
        installed: &[Package],
        now: Timestamp,
        audit: AuditEntry,
    ) -> Result<FindingSync> {
        // Serialised and digested before the transaction takes the host's row lock.
        let current = patchwarden_store::finding::prepare(current)?;
        let fixing = patchwarden_store::finding::FixingVersions::of(installed);
        let (tx, mut p) = findings::begin(
            self,
            "sync findings",
            host,
            current,
            &fixing,
            None,
            now,
            &audit,
        )
        .await?;
        // The host's counts and its earliest due date, kept on its row (migrations 0011 and
        // 0017); unchanged ones are not written again.
        p.batch.push(
            "sync findings",
            "UPDATE hosts SET open_findings = $2, open_fixable = $3, next_due = $4
             WHERE id = $1
               AND (open_findings <> $2 OR open_fixable <> $3 OR next_due IS DISTINCT FROM $4)",
            vec![
                Box::new(host),
                Box::new(p.open_findings),
                Box::new(p.open_fixable),
                Box::new(p.next_due),
            ],
        );
        let events: Vec<&AuditEntry> = p.event.iter().collect();
        let finished = tx.finish(p.batch, &events).await;
        self.bodies.after(&finished, p.new_bodies);
        finished?;
        Ok(p.summary)
    }

    async fn apply_inventory(
        &self,
        host: Uuid,
        up: PreparedUpload,
        now: Timestamp,
        sync_audit: AuditEntry,
        inventory_audit: AuditEntry,
    ) -> Result<(FindingSync, PackagesDigest)> {
        let digest = up.inventory.digest;
        let now_db = patchwarden_store::codec::ts_to_db("now", now)?;
        // Two round trips: the reads with the `BEGIN`, then every write with the audit events
        // and the commit (see `pipelined`).
        let (tx, mut p) = findings::begin(
            self,
            "apply inventory",
            host,
            up.current,
            &up.fixing,
            up.nonce.as_ref(),
            now,
            &sync_audit,
        )
        .await?;
        // The host's counts, its earliest due date and its digest in one change of its row.
        p.batch.push(
            "replace inventory",
            "UPDATE hosts SET open_findings = $2, open_fixable = $3, inventory_digest = $4,
                              next_due = $5
             WHERE id = $1",
            vec![
                Box::new(host),
                Box::new(p.open_findings),
                Box::new(p.open_fixable),
                Box::new(digest.to_string()),
                Box::new(p.next_due),
            ],
        );
        inventory::push_replace(&mut p.batch, host, up.inventory.json, digest, now_db);
        let events: Vec<&AuditEntry> = p.event.iter().chain([&inventory_audit]).collect();
        let finished = tx.finish(p.batch, &events).await;
        self.bodies.after(&finished, p.new_bodies);
        finished?;
        Ok((p.summary, digest))
    }

    async fn list_findings(&self, filter: &FindingFilter) -> Result<Vec<StoredFinding>> {
        let client = self.client("list findings").await?;
        findings::list(&client, filter).await
    }

    async fn count_open_findings(&self, host: Uuid) -> Result<u64> {
        let client = self.client("count open findings").await?;
        findings::count_open(&client, host).await
    }

    async fn has_open_fixable_finding(&self, host: Uuid) -> Result<bool> {
        let client = self.client("look for a fixable finding").await?;
        findings::any_open_fixable(&client, host).await
    }

    async fn finding_history(&self, finding: i64) -> Result<Vec<ClassificationChange>> {
        let client = self.client("read finding history").await?;
        findings::history(&client, finding).await
    }

    async fn create_job(&self, job: NewJob, now: Timestamp, audit: AuditEntry) -> Result<Job> {
        let kind = job.check()?;
        in_tx!(self, "create job", |tx| jobs::create(
            &tx, &job, &kind, now, &audit
        )
        .await?)
    }

    async fn lease_jobs(
        &self,
        host: Uuid,
        lease_until: Timestamp,
        limit: u32,
        now: Timestamp,
        audit: AuditEntry,
    ) -> Result<Vec<Job>> {
        in_tx!(self, "lease jobs", |tx| jobs::lease(
            &tx,
            host,
            lease_until,
            limit,
            now,
            audit
        )
        .await?)
    }

    async fn report_job(
        &self,
        host: Uuid,
        job: Uuid,
        report: JobReport,
        now: Timestamp,
        audit: AuditEntry,
    ) -> Result<Job> {
        in_tx!(self, "report job", |tx| jobs::report(
            &tx, host, job, &report, now, &audit
        )
        .await?)
    }

    async fn get_job(&self, id: Uuid) -> Result<Option<Job>> {
        let client = self.client("get job").await?;
        jobs::get(&client, id, false).await
    }

    async fn list_jobs(&self, filter: &JobFilter) -> Result<Vec<Job>> {
        let client = self.client("list jobs").await?;
        jobs::list(&client, filter).await
    }

    async fn append_audit(&self, _now: Timestamp, audit: AuditEntry) -> Result<AuditEvent> {
        in_tx!(self, "append audit event", |tx| audit::append(&tx, &audit)
            .await?)
    }

    async fn audit_events(&self, after_seq: i64, limit: u32) -> Result<Vec<AuditEvent>> {
        let client = self.client("read audit events").await?;
        audit::events(&client, after_seq, limit).await
    }

    async fn audit_head(&self) -> Result<Option<AuditHead>> {
        let client = self.client("read audit head").await?;
        audit::head(&client).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pool_size_comes_out_of_the_url_and_the_rest_stays() {
        let base = "postgres://pw:secret@db.example/pw";
        assert_eq!(
            take_pool_size(base).unwrap(),
            (base.to_owned(), DEFAULT_POOL_SIZE)
        );
        assert_eq!(
            take_pool_size(&format!("{base}?pool_max_conns=3")).unwrap(),
            (base.to_owned(), 3)
        );
        assert_eq!(
            take_pool_size(&format!(
                "{base}?application_name=pw&pool_max_conns=24&sslmode=disable"
            ))
            .unwrap(),
            (format!("{base}?application_name=pw&sslmode=disable"), 24)
        );
        assert_eq!(
            take_pool_size(&format!("{base}?connect_timeout=5")).unwrap(),
            (format!("{base}?connect_timeout=5"), DEFAULT_POOL_SIZE)
        );
    }

    #[test]
    fn a_bad_pool_size_is_refused_with_the_reason() {
        let base = "postgres://db/pw";
        for bad in [
            "pool_max_conns=0",
            "pool_max_conns=1001",
            "pool_max_conns=-1",
            "pool_max_conns=eight",
            "pool_max_conns=",
            "pool_max_conns",
            "pool_max_conns=99999999999999999999999",
        ] {
            let e = take_pool_size(&format!("{base}?{bad}")).unwrap_err();
            assert!(
                e.contains("pool_max_conns must be a number from 1 to 1000"),
                "{bad}: {e}"
            );
        }
        let e = take_pool_size(&format!("{base}?pool_max_conns=2&pool_max_conns=3")).unwrap_err();
        assert!(e.contains("given twice"), "{e}");
    }
}
