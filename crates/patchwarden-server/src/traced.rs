//! The store with a `tracing` span around every call, so that a request's span shows which
//! store operations it made and how long each took. A decorator over the real store (it
//! forwards every call unchanged), put between the server and whichever backend the URL named.

use std::sync::Arc;

use async_trait::async_trait;
use jiff::Timestamp;
use patchwarden_core::advisory::Advisory;
use patchwarden_core::audit::{AuditEntry, AuditEvent};
use patchwarden_core::inventory::{HostFacts, Inventory, Package, PackagesDigest};
use patchwarden_store::{
    AdvisoryUpsert, AuditHead, CheckIn, CheckedIn, ClassificationChange, CurrentFinding,
    EnrollmentToken, FindingFilter, FindingSync, Host, HostFilter, HostPlacement, HostStateChange,
    Job, JobFilter, JobReport, NewEnrollmentToken, NewHost, NewJob, Result, SecretHash, Store,
    StoredFinding, StoredInventory,
};
use tracing::Instrument;
use uuid::Uuid;

mod changes;
mod exceptions;
mod feeds;
mod incidents;
mod notifications;
mod operator;

/// A store whose every call runs in a `store` span naming the operation.
#[derive(Debug)]
pub(crate) struct TracedStore {
    inner: Arc<dyn Store>,
}

impl TracedStore {
    pub(crate) fn new(inner: Arc<dyn Store>) -> TracedStore {
        TracedStore { inner }
    }
}

#[async_trait]
impl Store for TracedStore {
    fn backend(&self) -> &'static str {
        self.inner.backend()
    }

    async fn applied_migrations(&self) -> Result<Vec<String>> {
        self.inner
            .applied_migrations()
            .instrument(tracing::debug_span!("store", op = "applied_migrations"))
            .await
    }

    async fn create_enrollment_token(
        &self,
        token: NewEnrollmentToken,
        now: Timestamp,
        audit: AuditEntry,
    ) -> Result<EnrollmentToken> {
        self.inner
            .create_enrollment_token(token, now, audit)
            .instrument(tracing::debug_span!(
                "store",
                op = "create_enrollment_token"
            ))
            .await
    }

    async fn list_enrollment_tokens(&self) -> Result<Vec<EnrollmentToken>> {
        self.inner
            .list_enrollment_tokens()
            .instrument(tracing::debug_span!("store", op = "list_enrollment_tokens"))
            .await
    }

    async fn revoke_enrollment_token(
        &self,
        id: Uuid,
        now: Timestamp,
        audit: AuditEntry,
    ) -> Result<EnrollmentToken> {
        self.inner
            .revoke_enrollment_token(id, now, audit)
            .instrument(tracing::debug_span!(
                "store",
                op = "revoke_enrollment_token"
            ))
            .await
    }

    async fn enroll_host(
        &self,
        secret: SecretHash,
        host: NewHost,
        now: Timestamp,
        audit: AuditEntry,
    ) -> Result<Host> {
        self.inner
            .enroll_host(secret, host, now, audit)
            .instrument(tracing::debug_span!("store", op = "enroll_host"))
            .await
    }

    async fn get_host(&self, id: Uuid) -> Result<Option<Host>> {
        self.inner
            .get_host(id)
            .instrument(tracing::debug_span!("store", op = "get_host"))
            .await
    }

    async fn list_hosts(&self, filter: &HostFilter) -> Result<Vec<Host>> {
        self.inner
            .list_hosts(filter)
            .instrument(tracing::debug_span!("store", op = "list_hosts"))
            .await
    }

    async fn find_hosts_by_machine_id(&self, machine_id: &str) -> Result<Vec<Host>> {
        self.inner
            .find_hosts_by_machine_id(machine_id)
            .instrument(tracing::debug_span!(
                "store",
                op = "find_hosts_by_machine_id"
            ))
            .await
    }

    async fn record_check_in(
        &self,
        host: Uuid,
        facts: HostFacts,
        now: Timestamp,
        audit: AuditEntry,
    ) -> Result<Host> {
        self.inner
            .record_check_in(host, facts, now, audit)
            .instrument(tracing::debug_span!("store", op = "record_check_in"))
            .await
    }

    async fn check_in(&self, check_in: CheckIn) -> Result<CheckedIn> {
        self.inner
            .check_in(check_in)
            .instrument(tracing::debug_span!("store", op = "check_in"))
            .await
    }

    async fn set_host_placement(
        &self,
        host: Uuid,
        placement: HostPlacement,
        now: Timestamp,
        audit: AuditEntry,
    ) -> Result<Host> {
        self.inner
            .set_host_placement(host, placement, now, audit)
            .instrument(tracing::debug_span!("store", op = "set_host_placement"))
            .await
    }

    async fn change_host_state(
        &self,
        host: Uuid,
        change: HostStateChange,
        now: Timestamp,
        audit: AuditEntry,
    ) -> Result<Host> {
        self.inner
            .change_host_state(host, change, now, audit)
            .instrument(tracing::debug_span!("store", op = "change_host_state"))
            .await
    }

    async fn advance_check_in_counter(&self, host: Uuid, seq: u64) -> Result<()> {
        self.inner
            .advance_check_in_counter(host, seq)
            .instrument(tracing::debug_span!(
                "store",
                op = "advance_check_in_counter"
            ))
            .await
    }

    async fn record_nonce(
        &self,
        host: Uuid,
        nonce: &str,
        expires_at: Timestamp,
        now: Timestamp,
    ) -> Result<()> {
        self.inner
            .record_nonce(host, nonce, expires_at, now)
            .instrument(tracing::debug_span!("store", op = "record_nonce"))
            .await
    }

    async fn purge_expired_nonces(&self, now: Timestamp) -> Result<u64> {
        self.inner
            .purge_expired_nonces(now)
            .instrument(tracing::debug_span!("store", op = "purge_expired_nonces"))
            .await
    }

    async fn replace_inventory(
        &self,
        host: Uuid,
        inventory: &Inventory,
        now: Timestamp,
        audit: AuditEntry,
    ) -> Result<PackagesDigest> {
        self.inner
            .replace_inventory(host, inventory, now, audit)
            .instrument(tracing::debug_span!("store", op = "replace_inventory"))
            .await
    }

    async fn get_inventory(&self, host: Uuid) -> Result<Option<StoredInventory>> {
        self.inner
            .get_inventory(host)
            .instrument(tracing::debug_span!("store", op = "get_inventory"))
            .await
    }

    async fn upsert_advisories(
        &self,
        advisories: Vec<Advisory>,
        now: Timestamp,
        audit: AuditEntry,
    ) -> Result<AdvisoryUpsert> {
        self.inner
            .upsert_advisories(advisories, now, audit)
            .instrument(tracing::debug_span!("store", op = "upsert_advisories"))
            .await
    }

    async fn advisories(&self) -> Result<Vec<Advisory>> {
        self.inner
            .advisories()
            .instrument(tracing::debug_span!("store", op = "advisories"))
            .await
    }

    async fn advisories_by_ids(&self, ids: &[String]) -> Result<Vec<Advisory>> {
        self.inner
            .advisories_by_ids(ids)
            .instrument(tracing::debug_span!("store", op = "advisories_by_ids"))
            .await
    }

    async fn advisory_count(&self) -> Result<u64> {
        self.inner
            .advisory_count()
            .instrument(tracing::debug_span!("store", op = "advisory_count"))
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
        self.inner
            .sync_findings(host, current, installed, now, audit)
            .instrument(tracing::debug_span!("store", op = "sync_findings"))
            .await
    }

    async fn apply_inventory(
        &self,
        host: Uuid,
        upload: patchwarden_store::PreparedUpload,
        now: Timestamp,
        sync_audit: AuditEntry,
        inventory_audit: AuditEntry,
    ) -> Result<(FindingSync, PackagesDigest)> {
        self.inner
            .apply_inventory(host, upload, now, sync_audit, inventory_audit)
            .instrument(tracing::debug_span!("store", op = "apply_inventory"))
            .await
    }

    async fn list_findings(&self, filter: &FindingFilter) -> Result<Vec<StoredFinding>> {
        self.inner
            .list_findings(filter)
            .instrument(tracing::debug_span!("store", op = "list_findings"))
            .await
    }

    async fn count_open_findings(&self, host: Uuid) -> Result<u64> {
        self.inner
            .count_open_findings(host)
            .instrument(tracing::debug_span!("store", op = "count_open_findings"))
            .await
    }

    async fn has_open_fixable_finding(&self, host: Uuid) -> Result<bool> {
        self.inner
            .has_open_fixable_finding(host)
            .instrument(tracing::debug_span!(
                "store",
                op = "has_open_fixable_finding"
            ))
            .await
    }

    async fn finding_history(&self, finding: i64) -> Result<Vec<ClassificationChange>> {
        self.inner
            .finding_history(finding)
            .instrument(tracing::debug_span!("store", op = "finding_history"))
            .await
    }

    async fn create_job(&self, job: NewJob, now: Timestamp, audit: AuditEntry) -> Result<Job> {
        self.inner
            .create_job(job, now, audit)
            .instrument(tracing::debug_span!("store", op = "create_job"))
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
        self.inner
            .lease_jobs(host, lease_until, limit, now, audit)
            .instrument(tracing::debug_span!("store", op = "lease_jobs"))
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
        self.inner
            .report_job(host, job, report, now, audit)
            .instrument(tracing::debug_span!("store", op = "report_job"))
            .await
    }

    async fn get_job(&self, id: Uuid) -> Result<Option<Job>> {
        self.inner
            .get_job(id)
            .instrument(tracing::debug_span!("store", op = "get_job"))
            .await
    }

    async fn list_jobs(&self, filter: &JobFilter) -> Result<Vec<Job>> {
        self.inner
            .list_jobs(filter)
            .instrument(tracing::debug_span!("store", op = "list_jobs"))
            .await
    }

    async fn append_audit(&self, now: Timestamp, audit: AuditEntry) -> Result<AuditEvent> {
        self.inner
            .append_audit(now, audit)
            .instrument(tracing::debug_span!("store", op = "append_audit"))
            .await
    }

    async fn audit_events(&self, after_seq: i64, limit: u32) -> Result<Vec<AuditEvent>> {
        self.inner
            .audit_events(after_seq, limit)
            .instrument(tracing::debug_span!("store", op = "audit_events"))
            .await
    }

    async fn audit_head(&self) -> Result<Option<AuditHead>> {
        self.inner
            .audit_head()
            .instrument(tracing::debug_span!("store", op = "audit_head"))
            .await
    }
}
