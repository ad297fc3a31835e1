//! The [`Store`] on SQLite: one file under the data directory, in WAL mode, nothing to
//! install. The default backend.
//!
//! SQLite allows one writer at a time, which is what the audit chain needs: every changing
//! transaction is `BEGIN IMMEDIATE` on the one writer connection (so even two processes on the
//! same file serialise, waiting up to the busy timeout), and appends to the chain as its last
//! step. The writer connection belongs to a thread of the store's own, which runs the queued
//! changes in order and commits several together (see [`writer`]). Readers use their own
//! connections, which WAL lets run beside the writer on the last committed state. rusqlite is
//! synchronous, so every read runs in `tokio::task::spawn_blocking`, and a change is sent to the
//! writer and awaited: neither stalls the server's event loop.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
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
use rusqlite::{Connection, OpenFlags, TransactionBehavior};
use uuid::Uuid;

mod audit;
mod changes;
mod exceptions;
mod feeds;
mod findings;
mod hosts;
mod incidents;
mod inventory;
mod jobs;
pub mod migrate;
mod notifications;
mod tokens;
mod users;
mod writer;

/// How long a writer waits for another process's write lock before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);
/// Idle reader connections kept open. A fleet's check-ins read in parallel; with too few kept,
/// each read beyond them opened a connection (and parsed the schema) only to close it — a fifth
/// of the server's time in the fleet bench with 4.
const IDLE_READERS: usize = 16;

/// A SQLite store. Cloning shares the connections.
#[derive(Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    /// The writer thread's queue (see [`writer`]); dropping it stops the thread once the
    /// changes already queued are done.
    changes: Option<std::sync::mpsc::Sender<writer::Message>>,
    writer: Option<std::thread::JoinHandle<()>>,
    readers: Mutex<Vec<Connection>>,
    /// Finding bodies' ids by digest (see `findings::BodyIds`): read by the writer thread,
    /// added to by callers once their change committed.
    body_ids: Arc<Mutex<findings::BodyIds>>,
    /// The checkpointer: dropping the sender stops it.
    checkpointer: Option<(std::sync::mpsc::Sender<()>, std::thread::JoinHandle<()>)>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // The checkpointer's connection closes first, so that the writer's is the last one
        // and, closing, checkpoints the WAL into the file and removes it, as SQLite does. No
        // change holds the store, so this never runs on the writer thread; were it to, joining
        // would wait for itself.
        let on_writer = self
            .writer
            .as_ref()
            .is_some_and(|t| t.thread().id() == std::thread::current().id());
        if let Some((stop, thread)) = self.checkpointer.take() {
            drop(stop);
            if !on_writer {
                let _ = thread.join();
            }
        }
        drop(self.changes.take());
        if let Some(thread) = self.writer.take()
            && !on_writer
        {
            let _ = thread.join();
        }
    }
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.inner.path)
            .finish_non_exhaustive()
    }
}

/// Opens the store named by a `sqlite://` URL (see [`DatabaseUrl`]).
pub async fn open(url: &str) -> Result<Arc<dyn Store>> {
    match DatabaseUrl::parse(url)? {
        DatabaseUrl::Sqlite(path) => Ok(Arc::new(SqliteStore::open(&path).await?)),
        DatabaseUrl::Postgres(_) => Err(StoreError::Url {
            url: patchwarden_store::redact(url),
            reason: "this is a PostgreSQL URL; the SQLite backend opens sqlite:// URLs".into(),
        }),
    }
}

fn open_failed(path: &Path, e: impl std::fmt::Display) -> StoreError {
    StoreError::Open {
        location: path.display().to_string(),
        reason: e.to_string(),
    }
}

/// Opens one connection with the settings every connection needs.
fn connect(path: &Path, create: bool) -> Result<Connection> {
    let mut flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX
        | OpenFlags::SQLITE_OPEN_URI;
    if create {
        flags |= OpenFlags::SQLITE_OPEN_CREATE;
    }
    let conn = Connection::open_with_flags(path, flags).map_err(|e| open_failed(path, e))?;
    conn.busy_timeout(BUSY_TIMEOUT)
        .map_err(|e| open_failed(path, e))?;
    // The first statement reads the file header, so a file that is not a database (or is
    // damaged there) fails here with SQLite's own words, as a typed error.
    let mode: String = conn
        .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
        .map_err(|e| open_failed(path, e))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(open_failed(
            path,
            format!("the file cannot use WAL mode (journal mode stays {mode})"),
        ));
    }
    // NORMAL is durable across application crashes in WAL mode; a power loss can lose the
    // last transactions but never corrupts the file.
    conn.execute_batch("PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;")
        .map_err(|e| open_failed(path, e))?;
    // A findings sync alone uses some ten cached statements; with the inventory, audit, triage
    // and check-in ones the default of 16 made them evict each other and be parsed again.
    conn.set_prepared_statement_cache_capacity(64);
    Ok(conn)
}

/// Copies what it can of the WAL back into the database file without waiting for anyone;
/// returns the frames in the WAL (-1 when not in WAL mode).
pub(crate) fn passive_checkpoint(c: &Connection) -> rusqlite::Result<i64> {
    c.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| r.get(1))
}

/// How often the checkpointer looks at the WAL.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(250);

/// Copies committed WAL frames back into the database file, every [`CHECKPOINT_EVERY`], for as
/// long as the store lives (until `stop`'s sender is dropped), so that the writer does not do
/// it in its commits while every other writer waits.
///
/// Each round ends with the writer busy for a moment. SQLite starts the WAL over from its
/// beginning only in a write transaction that *began* after every frame was back in the file;
/// under a steady stream of commits, a checkpoint made only beside the writer always finishes
/// while some transaction is under way, and the WAL would grow without end. So each round
/// copies the bulk beside the writer (PASSIVE, blocking no one), then asks the writer thread to
/// copy, between two of its transactions, the few frames committed meanwhile: the next
/// transaction then starts the WAL over.
fn checkpoint_loop(
    conn: Connection,
    writer: std::sync::mpsc::Sender<writer::Message>,
    stop: std::sync::mpsc::Receiver<()>,
) {
    let mut failures = 0u32;
    loop {
        match stop.recv_timeout(CHECKPOINT_EVERY) {
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
            // Dropped (or, never, sent): the store is closing.
            _ => return,
        }
        let round = passive_checkpoint(&conn).and_then(|frames| {
            if frames <= 0 {
                return Ok(());
            }
            let (done, finished) = std::sync::mpsc::channel();
            if writer.send(writer::Message::Checkpoint(done)).is_err() {
                // The writer has stopped: the store is closing.
                return Ok(());
            }
            finished.recv().unwrap_or(Ok(0)).map(|_| ())
        });
        match round {
            Ok(()) => failures = 0,
            Err(e) => {
                failures += 1;
                // Busy or locked now and then is normal (another process's checkpoint); said
                // once a minute at most when it persists.
                if failures % 240 == 1 {
                    tracing::warn!(failures, error = %e, "SQLite checkpoint failed");
                }
            }
        }
    }
}

/// Page cache of each reader connection, in KiB. SQLite's default is 2 MiB a connection; with
/// 16 readers kept that is 32 MiB of the server's memory holding copies of pages the kernel's
/// page cache already holds once for all. A reader's lookups (one host's findings, one
/// inventory) touch a few index pages each, so a small cache costs them little.
const READER_CACHE_KIB: i64 = 512;

fn connect_reader(path: &Path) -> Result<Connection> {
    let conn = connect(path, false)?;
    conn.execute_batch(&format!("PRAGMA cache_size = -{READER_CACHE_KIB};"))
        .map_err(|e| open_failed(path, e))?;
    Ok(conn)
}

impl SqliteStore {
    /// Opens (creating if needed) the database file at `path` and applies the missing
    /// migrations.
    pub async fn open(path: &Path) -> Result<SqliteStore> {
        let path = path.to_owned();
        tokio::task::spawn_blocking(move || {
            let mut writer = connect(&path, true)?;
            // A damaged file can pass the header check and fail only when a page is read:
            // a quick check reads every page once, so damage is found at start-up.
            let check: String = writer
                .query_row("PRAGMA quick_check", [], |r| r.get(0))
                .map_err(|e| open_failed(&path, e))?;
            if check != "ok" {
                return Err(open_failed(&path, format!("integrity check: {check}")));
            }
            migrate::migrate(&mut writer)?;
            // A change runs in a savepoint of its batch's transaction (see `writer`); what it
            // overwrites is kept for a rollback in memory, not in a temporary file.
            writer
                .execute_batch("PRAGMA temp_store = MEMORY;")
                .map_err(|e| open_failed(&path, e))?;
            let checkpointer = connect(&path, false)?;
            // The writer no longer checkpoints as it commits: a thread of the store's own does
            // it beside the writer (see `checkpoint_loop`), so a commit that crosses the WAL's
            // threshold does not make every other writer wait while pages are copied back.
            writer
                .execute_batch("PRAGMA wal_autocheckpoint = 0;")
                .map_err(|e| open_failed(&path, e))?;
            let (changes, queued) = std::sync::mpsc::channel();
            let writer = std::thread::Builder::new()
                .name("sqlite-writer".into())
                .spawn(move || writer::run(writer, queued))
                .map_err(|e| open_failed(&path, e))?;
            let (stop, stopped) = std::sync::mpsc::channel();
            let to_writer = changes.clone();
            let checkpointer = std::thread::Builder::new()
                .name("sqlite-checkpoint".into())
                .spawn(move || checkpoint_loop(checkpointer, to_writer, stopped))
                .map_err(|e| open_failed(&path, e))?;
            Ok(SqliteStore {
                inner: Arc::new(Inner {
                    path,
                    changes: Some(changes),
                    writer: Some(writer),
                    readers: Mutex::new(Vec::new()),
                    body_ids: Arc::new(Mutex::new(findings::BodyIds::default())),
                    checkpointer: Some((stop, checkpointer)),
                }),
            })
        })
        .await
        .map_err(|e| StoreError::Backend {
            op: "open",
            reason: format!("the opening task failed: {e}"),
        })?
    }

    /// Keeps the body ids a committed sync used, so the next syncs need not look them up.
    fn remember_bodies(&self, ids: Vec<([u8; 32], i64)>) {
        self.inner
            .body_ids
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remember(ids);
    }

    /// Runs `f` on the writer thread, in a savepoint of a write transaction: its writes stand
    /// when it returns `Ok` and that transaction commits (the answer comes after the commit),
    /// and none of them when it returns an error.
    async fn write<T, F>(&self, op: &'static str, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        let (change, answer) = writer::Pending::queued(op, f);
        let queued = self
            .inner
            .changes
            .as_ref()
            .is_some_and(|q| q.send(writer::Message::Change(change)).is_ok());
        if !queued {
            return Err(StoreError::Backend {
                op,
                reason: "the store's writer has stopped".into(),
            });
        }
        answer.await.map_err(|_| StoreError::Backend {
            op,
            reason: "the store's writer stopped before the change was done".into(),
        })?
    }

    /// Runs `f` in one read transaction on a reader connection, so every statement in it sees
    /// the same committed state.
    async fn read<T, F>(&self, op: &'static str, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            let idle = inner
                .readers
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .pop();
            let mut conn = match idle {
                Some(c) => c,
                None => connect_reader(&inner.path)?,
            };
            let out = {
                let tx = conn
                    .transaction_with_behavior(TransactionBehavior::Deferred)
                    .map_err(|e| StoreError::backend(op, e))?;
                let out = f(&tx);
                tx.finish().map_err(|e| StoreError::backend(op, e))?;
                out
            };
            let mut idle = inner.readers.lock().unwrap_or_else(PoisonError::into_inner);
            if idle.len() < IDLE_READERS {
                idle.push(conn);
            }
            out
        })
        .await
        .map_err(|e| task_failed(op, e))?
    }
}

fn task_failed(op: &'static str, e: tokio::task::JoinError) -> StoreError {
    StoreError::Backend {
        op,
        reason: format!("the database task failed: {e}"),
    }
}

/// What a change used, handed back from the writer thread to be freed by its caller. glibc
/// gives each thread an arena; a block freed by a thread other than the one that allocated
/// it is returned under the allocating arena's lock. An upload's prepared findings, inventory
/// and fixing versions are a few thousand blocks made on a runtime worker, and freeing them on
/// the writer thread — the store's one serial part — cost it those locks (about 8 % of its
/// samples in the fleet bench, BENCHMARKS.md).
pub(crate) struct Spent<T>(pub(crate) T);

impl<T> Spent<T> {
    /// Frees it here, on the caller's thread.
    pub(crate) fn free(self) {
        drop(self.0);
    }
}

/// Maps a rusqlite error during `op`.
pub(crate) fn db(op: &'static str) -> impl Fn(rusqlite::Error) -> StoreError {
    move |e| StoreError::backend(op, e)
}

/// Whether `e` is a uniqueness or primary-key violation.
pub(crate) fn is_unique_violation(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(rusqlite::ErrorCode::ConstraintViolation)
    ) && matches!(
        e,
        rusqlite::Error::SqliteFailure(f, _)
            if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
                || f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY
    )
}

pub(crate) fn uuid_from_db(table: &'static str, text: &str) -> Result<Uuid> {
    Uuid::parse_str(text).map_err(|e| StoreError::corrupt(table, text, format!("id: {e}")))
}

#[async_trait]
impl Store for SqliteStore {
    fn backend(&self) -> &'static str {
        "sqlite"
    }

    async fn applied_migrations(&self) -> Result<Vec<String>> {
        self.read("read migrations", migrate::applied).await
    }

    async fn create_enrollment_token(
        &self,
        token: NewEnrollmentToken,
        now: Timestamp,
        audit: AuditEntry,
    ) -> Result<EnrollmentToken> {
        token.check()?;
        self.write("create enrollment token", move |c| {
            tokens::create(c, &token, now, &audit)
        })
        .await
    }

    async fn list_enrollment_tokens(&self) -> Result<Vec<EnrollmentToken>> {
        self.read("list enrollment tokens", tokens::list).await
    }

    async fn revoke_enrollment_token(
        &self,
        id: Uuid,
        now: Timestamp,
        audit: AuditEntry,
    ) -> Result<EnrollmentToken> {
        self.write("revoke enrollment token", move |c| {
            tokens::revoke(c, id, now, &audit)
        })
        .await
    }

    async fn enroll_host(
        &self,
        secret: SecretHash,
        host: NewHost,
        now: Timestamp,
        audit: AuditEntry,
    ) -> Result<Host> {
        let facts = host.check()?;
        self.write("enroll host", move |c| {
            tokens::enroll(c, secret, &host, &facts, now, &audit)
        })
        .await
    }

    async fn get_host(&self, id: Uuid) -> Result<Option<Host>> {
        self.read("get host", move |c| hosts::get(c, id)).await
    }

    async fn list_hosts(&self, filter: &HostFilter) -> Result<Vec<Host>> {
        let filter = filter.clone();
        self.read("list hosts", move |c| hosts::list(c, &filter))
            .await
    }

    async fn get_hosts(&self, ids: &[Uuid]) -> Result<Vec<Host>> {
        let ids = ids.to_vec();
        self.read("get hosts", move |c| hosts::get_many(c, &ids))
            .await
    }

    async fn find_hosts_by_machine_id(&self, machine_id: &str) -> Result<Vec<Host>> {
        let machine_id = machine_id.to_owned();
        self.read("find hosts by machine id", move |c| {
            hosts::by_machine_id(c, &machine_id)
        })
        .await
    }

    async fn record_check_in(
        &self,
        host: Uuid,
        facts: HostFacts,
        now: Timestamp,
        audit: AuditEntry,
    ) -> Result<Host> {
        let facts_json = patchwarden_store::host::facts_json(&facts)?;
        self.write("record check-in", move |c| {
            hosts::check_in(c, host, &facts, &facts_json, now, &audit)
        })
        .await
    }

    async fn check_in(&self, ci: CheckIn) -> Result<CheckedIn> {
        patchwarden_store::limits::check_name(
            "nonce",
            &ci.nonce,
            patchwarden_store::limits::MAX_NONCE,
        )?;
        let facts_json = patchwarden_store::host::facts_json(&ci.facts)?;
        self.write("check in", move |c| {
            hosts::record_nonce(c, ci.host, &ci.nonce, ci.nonce_expires_at, ci.now)?;
            hosts::advance_counter(c, ci.host, ci.seq)?;
            let host =
                hosts::check_in(c, ci.host, &ci.facts, &facts_json, ci.now, &ci.facts_audit)?;
            // Held ones are read before leasing, so that the jobs leased now are not among
            // them.
            let held = jobs::held(c, ci.host, ci.now, ci.max_jobs)?;
            let mut jobs = jobs::lease(
                c,
                ci.host,
                ci.lease_until,
                ci.max_jobs,
                ci.now,
                ci.lease_audit,
            )?;
            jobs.extend(held);
            Ok(CheckedIn { host, jobs })
        })
        .await
    }

    async fn set_host_placement(
        &self,
        host: Uuid,
        placement: HostPlacement,
        now: Timestamp,
        audit: AuditEntry,
    ) -> Result<Host> {
        placement.check()?;
        self.write("set host placement", move |c| {
            hosts::set_placement(c, host, &placement, now, &audit)
        })
        .await
    }

    async fn change_host_state(
        &self,
        host: Uuid,
        change: HostStateChange,
        now: Timestamp,
        audit: AuditEntry,
    ) -> Result<Host> {
        change.check()?;
        self.write("change host state", move |c| {
            hosts::change_state(c, host, &change, now, audit)
        })
        .await
    }

    async fn advance_check_in_counter(&self, host: Uuid, seq: u64) -> Result<()> {
        self.write("advance check-in counter", move |c| {
            hosts::advance_counter(c, host, seq)
        })
        .await
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
        let nonce = nonce.to_owned();
        self.write("record nonce", move |c| {
            hosts::record_nonce(c, host, &nonce, expires_at, now)
        })
        .await
    }

    async fn purge_expired_nonces(&self, now: Timestamp) -> Result<u64> {
        self.write("purge nonces", move |c| hosts::purge_nonces(c, now))
            .await
    }

    async fn replace_inventory(
        &self,
        host: Uuid,
        inventory: &Inventory,
        now: Timestamp,
        audit: AuditEntry,
    ) -> Result<PackagesDigest> {
        let prepared = PreparedInventory::of(inventory)?;
        // Packed here, on the caller's thread: the writer thread only stores the bytes.
        let packed = patchwarden_store::codec::pack(&prepared.json);
        self.write("replace inventory", move |c| {
            inventory::replace(c, host, &packed, prepared.digest, now, &audit)
        })
        .await
    }

    async fn get_inventory(&self, host: Uuid) -> Result<Option<StoredInventory>> {
        self.read("get inventory", move |c| inventory::get(c, host))
            .await
    }

    async fn upsert_advisories(
        &self,
        advisories: Vec<Advisory>,
        now: Timestamp,
        audit: AuditEntry,
    ) -> Result<AdvisoryUpsert> {
        let rows = patchwarden_store::codec::advisory_rows(advisories)?;
        self.write("upsert advisories", move |c| {
            inventory::upsert_advisories(c, &rows, now, &audit)
        })
        .await
    }

    async fn advisories(&self) -> Result<Vec<Advisory>> {
        self.read("read advisories", inventory::advisories).await
    }

    async fn advisories_by_ids(&self, ids: &[String]) -> Result<Vec<Advisory>> {
        let ids = ids.to_vec();
        self.read("read advisories by id", move |c| {
            inventory::advisories_by_ids(c, &ids)
        })
        .await
    }

    async fn advisory_count(&self) -> Result<u64> {
        self.read("count advisories", inventory::advisory_count)
            .await
    }

    async fn sync_findings(
        &self,
        host: Uuid,
        current: &[CurrentFinding],
        installed: &[Package],
        now: Timestamp,
        audit: AuditEntry,
    ) -> Result<FindingSync> {
        // Serialising, digesting and indexing happen here, before the write lock: other hosts'
        // syncs wait only for the database work.
        let current = patchwarden_store::finding::prepare(current)?;
        let fixing = patchwarden_store::finding::FixingVersions::of(installed);
        let known = self.inner.body_ids.clone();
        let synced = self
            .write("sync findings", move |c| {
                let synced = findings::sync(c, host, current, &fixing, &known, now, &audit)?;
                Ok((synced, Spent(fixing)))
            })
            .await?;
        let (synced, spent) = synced;
        spent.free();
        synced.plan.free();
        self.remember_bodies(synced.body_ids);
        Ok(synced.summary)
    }

    async fn apply_inventory(
        &self,
        host: Uuid,
        up: PreparedUpload,
        now: Timestamp,
        sync_audit: AuditEntry,
        inventory_audit: AuditEntry,
    ) -> Result<(FindingSync, PackagesDigest)> {
        let known = self.inner.body_ids.clone();
        let PreparedUpload {
            inventory,
            current,
            fixing,
            nonce,
        } = up;
        // Packed here, on the caller's thread: the writer thread only stores the bytes. The
        // JSON goes before the upload queues for the writer: uploads wait there together,
        // each holding only its packed bytes, a fraction of the text.
        let packed = patchwarden_store::codec::pack(&inventory.json);
        let digest = inventory.digest;
        drop(inventory);
        let (synced, digest, spent) = self
            .write("apply inventory", move |c| {
                // The request's nonce first: a replay changes nothing.
                if let Some(n) = &nonce {
                    hosts::record_nonce(c, host, &n.nonce, n.expires_at, now)?;
                }
                let synced = findings::sync(c, host, current, &fixing, &known, now, &sync_audit)?;
                let digest = inventory::replace(c, host, &packed, digest, now, &inventory_audit)?;
                Ok((synced, digest, Spent((fixing, packed))))
            })
            .await?;
        spent.free();
        synced.plan.free();
        self.remember_bodies(synced.body_ids);
        Ok((synced.summary, digest))
    }

    async fn list_findings(&self, filter: &FindingFilter) -> Result<Vec<StoredFinding>> {
        let filter = filter.clone();
        self.read("list findings", move |c| findings::list(c, &filter))
            .await
    }

    async fn count_open_findings(&self, host: Uuid) -> Result<u64> {
        self.read("count open findings", move |c| {
            findings::count_open(c, host)
        })
        .await
    }

    async fn has_open_fixable_finding(&self, host: Uuid) -> Result<bool> {
        self.read("look for a fixable finding", move |c| {
            findings::any_open_fixable(c, host)
        })
        .await
    }

    async fn finding_history(&self, finding: i64) -> Result<Vec<ClassificationChange>> {
        self.read("read finding history", move |c| {
            findings::history(c, finding)
        })
        .await
    }

    async fn create_job(&self, job: NewJob, now: Timestamp, audit: AuditEntry) -> Result<Job> {
        let kind = job.check()?;
        self.write("create job", move |c| {
            jobs::create(c, &job, &kind, now, &audit)
        })
        .await
    }

    async fn lease_jobs(
        &self,
        host: Uuid,
        lease_until: Timestamp,
        limit: u32,
        now: Timestamp,
        audit: AuditEntry,
    ) -> Result<Vec<Job>> {
        self.write("lease jobs", move |c| {
            jobs::lease(c, host, lease_until, limit, now, audit)
        })
        .await
    }

    async fn report_job(
        &self,
        host: Uuid,
        job: Uuid,
        report: JobReport,
        now: Timestamp,
        audit: AuditEntry,
    ) -> Result<Job> {
        self.write("report job", move |c| {
            jobs::report(c, host, job, &report, now, &audit)
        })
        .await
    }

    async fn get_job(&self, id: Uuid) -> Result<Option<Job>> {
        self.read("get job", move |c| jobs::get(c, id)).await
    }

    async fn list_jobs(&self, filter: &JobFilter) -> Result<Vec<Job>> {
        let filter = filter.clone();
        self.read("list jobs", move |c| jobs::list(c, &filter))
            .await
    }

    async fn append_audit(&self, _now: Timestamp, audit: AuditEntry) -> Result<AuditEvent> {
        self.write("append audit event", move |c| audit::append(c, &audit))
            .await
    }

    async fn audit_events(&self, after_seq: i64, limit: u32) -> Result<Vec<AuditEvent>> {
        self.read("read audit events", move |c| {
            audit::events(c, after_seq, limit)
        })
        .await
    }

    async fn audit_head(&self) -> Result<Option<AuditHead>> {
        self.read("read audit head", audit::head).await
    }
}
