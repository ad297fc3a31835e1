//! The `Store` trait: everything the server keeps, behind one interface with a SQLite and a
//! PostgreSQL implementation (`patchwarden-store-sqlite`, `patchwarden-store-postgres`).
//!
//! **API Boundary**: the server holds an `Arc<dyn Store>` and nothing else of the database.
//! Each backend has its own `migrations/` directory with the same file names, applied at
//! start-up; queries are checked at run time, so the build needs no database.
//!
//! **Architecture Invariant**: every method that changes state takes the time it acts at
//! (`now`) and the [`AuditEntry`] that records it, and appends that entry to the audit chain
//! in the same transaction as the change — no change without its event. A method whose call
//! turns out to change nothing (a retried job report, a check-in with unchanged facts, a
//! lease with no due job) appends nothing. Three kinds of bookkeeping are deliberately left out
//! of the chain because they are not changes anyone acts on and happen on every agent request:
//! replay nonces, the `last_seen` time of a check-in, and the check-in counter.
//!
//! The rules both backends must follow (token checks, job report decisions, finding syncs)
//! are pure functions in this crate; [`conformance`] is the one suite every backend passes.

use std::fmt;

use async_trait::async_trait;
use jiff::Timestamp;
use patchwarden_core::advisory::Advisory;
use patchwarden_core::audit::{AuditEntry, AuditEvent};
use patchwarden_core::inventory::{HostFacts, Inventory, Package, PackagesDigest};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

pub mod audit;
pub mod change;
mod change_store;
pub mod codec;
pub mod conformance;
mod error;
pub mod exception;
mod exception_store;
pub mod feed;
mod feed_store;
pub mod finding;
pub mod host;
pub mod incident;
mod incident_store;
pub mod job;
pub mod limits;
pub mod notification;
pub mod operator;
mod operator_store;
pub mod token;
pub mod triage;
mod url;

pub use audit::AuditHead;
pub use change_store::ChangeStore;
pub use error::{EnrollRejection, Result, StoreError};
pub use exception_store::ExceptionStore;
pub use feed_store::FeedStore;
pub use finding::{
    Classification, ClassificationChange, CurrentFinding, FindingBody, FindingFilter, FindingState,
    FindingSync, StoredFinding,
};
pub use host::{
    CheckIn, CheckedIn, Host, HostFilter, HostPlacement, HostState, HostStateChange, NewHost,
};
pub use incident_store::IncidentStore;
pub use job::{Job, JobFilter, JobReport, JobState, NewJob};
pub use notification::NotificationStore;
pub use operator::{
    ApiToken, LockoutPolicy, NewApiToken, NewSession, NewUser, Role, Session, User, UserChange,
};
pub use operator_store::OperatorStore;
pub use token::{EnrollmentToken, NewEnrollmentToken, SecretHash};
pub use url::{DatabaseUrl, redact};

/// A host's inventory as stored, with its digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredInventory {
    pub host: Uuid,
    pub inventory: Inventory,
    pub digest: PackagesDigest,
    pub updated_at: Timestamp,
}

/// An inventory made ready to store before any lock or transaction is taken (every other
/// write waits on those): its JSON, within [`limits::MAX_INVENTORY_JSON`], and its packages'
/// digest.
#[derive(Debug, Clone)]
pub struct PreparedInventory {
    pub json: String,
    pub digest: PackagesDigest,
}

impl PreparedInventory {
    pub fn of(inventory: &Inventory) -> Result<PreparedInventory> {
        PreparedInventory::with_digest(inventory, PackagesDigest::of(&inventory.packages))
    }

    /// With the digest the caller computed already (`PackagesDigest::of(&inventory.packages)`:
    /// sorting and hashing 700 packages is not free, and an upload needs it for its audit
    /// entry too).
    pub fn with_digest(inventory: &Inventory, digest: PackagesDigest) -> Result<PreparedInventory> {
        Ok(PreparedInventory {
            json: codec::to_json("inventory", inventory, limits::MAX_INVENTORY_JSON)?,
            digest,
        })
    }
}

/// A signed request's nonce and until when it must be remembered ([`Store::record_nonce`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestNonce {
    pub nonce: String,
    pub expires_at: Timestamp,
}

/// An upload made ready to store ([`Store::apply_inventory`]): the inventory, its current
/// findings ([`finding::prepare`]) and the versions that would close the others.
#[derive(Debug, Clone)]
pub struct PreparedUpload {
    pub inventory: PreparedInventory,
    pub current: Vec<finding::PreparedFinding>,
    pub fixing: finding::FixingVersions,
    /// The upload request's nonce, recorded in the upload's own transaction before it changes
    /// anything ([`PreparedUpload::with_nonce`]); `None` when the caller recorded it already.
    pub nonce: Option<RequestNonce>,
}

impl PreparedUpload {
    pub fn of(inventory: &Inventory, current: &[CurrentFinding]) -> Result<PreparedUpload> {
        PreparedUpload::with_digest(inventory, PackagesDigest::of(&inventory.packages), current)
    }

    /// With the inventory's digest computed already (see [`PreparedInventory::with_digest`]).
    pub fn with_digest(
        inventory: &Inventory,
        digest: PackagesDigest,
        current: &[CurrentFinding],
    ) -> Result<PreparedUpload> {
        Ok(PreparedUpload {
            inventory: PreparedInventory::with_digest(inventory, digest)?,
            current: finding::prepare(current)?,
            fixing: finding::FixingVersions::of(&inventory.packages),
            nonce: None,
        })
    }

    /// The upload with its request's nonce to record: a replay of the request then fails
    /// with [`StoreError::Replay`] and changes nothing, and the nonce costs the upload no
    /// transaction of its own. Checked against [`limits::MAX_NONCE`] here, as
    /// [`Store::record_nonce`] checks it.
    pub fn with_nonce(mut self, nonce: &str, expires_at: Timestamp) -> Result<PreparedUpload> {
        limits::check_name("nonce", nonce, limits::MAX_NONCE)?;
        self.nonce = Some(RequestNonce {
            nonce: nonce.to_owned(),
            expires_at,
        });
        Ok(self)
    }
}

/// What an advisory import changed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdvisoryUpsert {
    pub inserted: u32,
    pub updated: u32,
    pub unchanged: u32,
    /// The ids of the inserted and updated advisories: the matcher re-evaluates only the
    /// (ecosystem, package) pairs they name.
    pub changed: Vec<String>,
}

/// The store. Object safe: the server holds it as `Arc<dyn Store>`.
#[async_trait]
pub trait Store:
    FeedStore
    + OperatorStore
    + ChangeStore
    + ExceptionStore
    + IncidentStore
    + NotificationStore
    + Send
    + Sync
    + fmt::Debug
{
    /// `sqlite` or `postgres`.
    fn backend(&self) -> &'static str;

    /// The names of the migrations applied to the database, in order (`0001_initial` …).
    async fn applied_migrations(&self) -> Result<Vec<String>>;

    // Enrollment tokens.

    /// Creates a token. Fails with [`StoreError::AlreadyExists`] when its id or secret hash
    /// is taken.
    async fn create_enrollment_token(
        &self,
        token: NewEnrollmentToken,
        now: Timestamp,
        audit: AuditEntry,
    ) -> Result<EnrollmentToken>;

    /// Every token, revoked and expired ones included, oldest first.
    async fn list_enrollment_tokens(&self) -> Result<Vec<EnrollmentToken>>;

    /// Revokes a token (revoking it again changes nothing and appends nothing).
    async fn revoke_enrollment_token(
        &self,
        id: Uuid,
        now: Timestamp,
        audit: AuditEntry,
    ) -> Result<EnrollmentToken>;

    /// Atomically checks the token whose secret hashes to `secret`, counts a use and creates
    /// the host in the token's group. Refusals are [`StoreError::Enrollment`]; on any error
    /// nothing changes.
    async fn enroll_host(
        &self,
        secret: SecretHash,
        host: NewHost,
        now: Timestamp,
        audit: AuditEntry,
    ) -> Result<Host>;

    // Hosts.

    async fn get_host(&self, id: Uuid) -> Result<Option<Host>>;

    async fn list_hosts(&self, filter: &HostFilter) -> Result<Vec<Host>>;

    /// The hosts of `ids` that exist, in no particular order: what a page naming the hosts of
    /// its rows reads, in one query rather than one per row. The default asks
    /// [`Store::get_host`] id by id; a backend overrides it.
    async fn get_hosts(&self, ids: &[Uuid]) -> Result<Vec<Host>> {
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(h) = self.get_host(*id).await? {
                out.push(h);
            }
        }
        Ok(out)
    }

    /// Every host whose last reported machine id is `machine_id`: more than one, or one with
    /// another host id, means a clone or a re-image.
    async fn find_hosts_by_machine_id(&self, machine_id: &str) -> Result<Vec<Host>>;

    /// Records a check-in: the facts and `last_seen = now`. The audit entry is appended only
    /// when the facts changed.
    async fn record_check_in(
        &self,
        host: Uuid,
        facts: HostFacts,
        now: Timestamp,
        audit: AuditEntry,
    ) -> Result<Host>;

    /// An agent's check-in, in one transaction: records its nonce (failing with
    /// [`StoreError::Replay`] as [`Store::record_nonce`] does), advances its counter (failing
    /// with [`StoreError::CounterNotIncreased`] as [`Store::advance_check_in_counter`] does),
    /// records the facts and `last_seen` (auditing changed facts, as [`Store::record_check_in`]
    /// does), and leases the host's due jobs (as [`Store::lease_jobs`] does). A failure changes
    /// nothing: no nonce, counter, facts or lease is kept. One transaction, because a
    /// check-in is what every host does every minute: on PostgreSQL it is a few round trips
    /// instead of a dozen.
    async fn check_in(&self, check_in: CheckIn) -> Result<CheckedIn>;

    /// Sets a host's group, ring and labels.
    async fn set_host_placement(
        &self,
        host: Uuid,
        placement: HostPlacement,
        now: Timestamp,
        audit: AuditEntry,
    ) -> Result<Host>;

    /// Changes a host's standing — quarantined, retired, or (once) current — with its audit
    /// entry in the same transaction (see [`host::decide_state_change`]): a change that finds
    /// the host already there changes nothing and appends nothing; a retired host refuses to be
    /// quarantined with [`StoreError::HostStateRefused`]. The entry's `before` and `after` are
    /// filled in with the standing when the caller left them empty.
    async fn change_host_state(
        &self,
        host: Uuid,
        change: HostStateChange,
        now: Timestamp,
        audit: AuditEntry,
    ) -> Result<Host>;

    // Replay protection.

    /// Advances the host's check-in counter to `seq`, atomically, only when `seq` exceeds the
    /// last counter accepted (a compare-and-set: of two concurrent calls with one value, one
    /// succeeds). A counter that does not exceed it fails with
    /// [`StoreError::CounterNotIncreased`] and changes nothing: one host identity is used
    /// from two machines. Kept in the database, so a restarted server, or another one sharing
    /// it, refuses the same counters.
    async fn advance_check_in_counter(&self, host: Uuid, seq: u64) -> Result<()>;

    /// Records that `host` used `nonce`, valid until `expires_at`. Fails with
    /// [`StoreError::Replay`] when the host used it before and it has not expired at `now`.
    async fn record_nonce(
        &self,
        host: Uuid,
        nonce: &str,
        expires_at: Timestamp,
        now: Timestamp,
    ) -> Result<()>;

    /// Deletes the nonces expired at `now`; returns how many.
    async fn purge_expired_nonces(&self, now: Timestamp) -> Result<u64>;

    // Inventories.

    /// Replaces the host's inventory and its digest in one transaction: a reader sees the old
    /// inventory or the new one, never a mix. Returns the new digest.
    async fn replace_inventory(
        &self,
        host: Uuid,
        inventory: &Inventory,
        now: Timestamp,
        audit: AuditEntry,
    ) -> Result<PackagesDigest>;

    async fn get_inventory(&self, host: Uuid) -> Result<Option<StoredInventory>>;

    // Advisories.

    /// Inserts or replaces advisories by id; an advisory equal to the stored one is left alone.
    /// The audit entry is appended when anything changed. The advisories are taken by value so
    /// that each can be dropped once encoded.
    async fn upsert_advisories(
        &self,
        advisories: Vec<Advisory>,
        now: Timestamp,
        audit: AuditEntry,
    ) -> Result<AdvisoryUpsert>;

    /// Every advisory, by id.
    async fn advisories(&self) -> Result<Vec<Advisory>>;

    /// The advisories with these ids, by id; ids with no advisory are left out. The matcher's
    /// index keeps only what matching needs, so whoever shows or re-matches a whole advisory
    /// reads it here.
    async fn advisories_by_ids(&self, ids: &[String]) -> Result<Vec<Advisory>>;

    async fn advisory_count(&self) -> Result<u64>;

    // Findings.

    /// Brings the host's findings in line with `current` (see [`finding`]); `installed` is
    /// the host's inventory, for the version that closed a finding. The audit entry is
    /// appended when anything opened, closed or was reclassified, with `after` set to the
    /// sync's counts when the caller left it empty.
    async fn sync_findings(
        &self,
        host: Uuid,
        current: &[CurrentFinding],
        installed: &[Package],
        now: Timestamp,
        audit: AuditEntry,
    ) -> Result<FindingSync>;

    /// An agent's new inventory and the findings matched on it, in one transaction:
    /// [`Store::sync_findings`] (with `sync_audit`) then [`Store::replace_inventory`] (with
    /// `inventory_audit`). Both happen or neither: a host never has a new inventory with the
    /// findings of the old one, nor findings of an inventory it does not have. Returns the
    /// sync and the new digest. The upload is prepared by the caller ([`PreparedUpload::of`]),
    /// outside any lock or transaction. Its nonce, if it carries one, is recorded in the same
    /// transaction as [`Store::record_nonce`] would: a nonce seen and unexpired fails the
    /// whole upload with [`StoreError::Replay`].
    async fn apply_inventory(
        &self,
        host: Uuid,
        upload: PreparedUpload,
        now: Timestamp,
        sync_audit: AuditEntry,
        inventory_audit: AuditEntry,
    ) -> Result<(FindingSync, PackagesDigest)>;

    async fn list_findings(&self, filter: &FindingFilter) -> Result<Vec<StoredFinding>>;

    /// How many findings of `host` are open ([`Host::open_findings`]); 0 for an unknown host.
    async fn count_open_findings(&self, host: Uuid) -> Result<u64>;

    /// Whether `host` has an open finding with a released fix (a new host's baseline is met
    /// when it has none; [`Host::open_fixable`]).
    async fn has_open_fixable_finding(&self, host: Uuid) -> Result<bool>;

    /// A finding's classifications, oldest first (the first is the one it opened with).
    async fn finding_history(&self, finding: i64) -> Result<Vec<ClassificationChange>>;

    // Jobs.

    async fn create_job(&self, job: NewJob, now: Timestamp, audit: AuditEntry) -> Result<Job>;

    /// Leases up to `limit` of the host's due jobs (queued, or leased with an expired lease)
    /// until `lease_until`, oldest first. Several servers may lease at once: a job goes to
    /// one of them. The audit entry is appended when a job was leased, with `after` set to
    /// the leased job ids and the deadline when the caller left it empty.
    async fn lease_jobs(
        &self,
        host: Uuid,
        lease_until: Timestamp,
        limit: u32,
        now: Timestamp,
        audit: AuditEntry,
    ) -> Result<Vec<Job>>;

    /// Applies an agent's report on its job (see [`job::decide_report`]): idempotent by job
    /// id, and only the owning host may report.
    async fn report_job(
        &self,
        host: Uuid,
        job: Uuid,
        report: JobReport,
        now: Timestamp,
        audit: AuditEntry,
    ) -> Result<Job>;

    async fn get_job(&self, id: Uuid) -> Result<Option<Job>>;

    async fn list_jobs(&self, filter: &JobFilter) -> Result<Vec<Job>>;

    // Audit.

    /// Appends an event for a change made outside the store (an operator's login, a setting).
    async fn append_audit(&self, now: Timestamp, audit: AuditEntry) -> Result<AuditEvent>;

    /// Up to `limit` events with a sequence number above `after_seq`, in order.
    async fn audit_events(&self, after_seq: i64, limit: u32) -> Result<Vec<AuditEvent>>;

    /// The chain's last event, `None` while it is empty.
    async fn audit_head(&self) -> Result<Option<AuditHead>>;
}
