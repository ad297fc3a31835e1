//! The store's half for advisory feeds and triage: feed sources and their runs, the atomic
//! import, enrichment documents, the advisory generation that tells servers sharing a
//! database when to rebuild their matcher, the scheduler's lease, and the triage queue.
//!
//! It is a supertrait of [`crate::Store`], so the server reaches it through the same
//! `Arc<dyn Store>`; it is a trait of its own so each backend keeps these queries in one file.
//!
//! Like every store change, imports, source definitions, sync requests, manual checks and
//! classifications append their audit entry in the same transaction. Three writes are
//! bookkeeping and stay out of the chain, as check-in times do: a run that changed no data
//! (304, unchanged content, a failed fetch — the runs table keeps them with their reasons),
//! the scheduler's lease, and the counter of advisory generations.

use async_trait::async_trait;
use jiff::Timestamp;
use patchwarden_core::audit::AuditEntry;

use crate::Result;
use crate::feed::{
    EnrichmentDoc, FeedImport, FeedImported, FeedRun, FeedSource, FeedSourceSpec, FetchValidators,
    NewFeedRun,
};
use crate::triage::{NewTriageItem, TriageDecision, TriageFilter, TriageItem};

#[async_trait]
pub trait FeedStore: Send + Sync {
    /// Creates a source or replaces its definition (its fetching state is kept). The audit
    /// entry is appended only when the definition is new or changed.
    async fn put_feed_source(
        &self,
        spec: &FeedSourceSpec,
        now: Timestamp,
        audit: AuditEntry,
    ) -> Result<FeedSource>;

    /// Every source, by name.
    async fn feed_sources(&self) -> Result<Vec<FeedSource>>;

    async fn get_feed_source(&self, name: &str) -> Result<Option<FeedSource>>;

    /// Applies an import in one transaction: upserts the advisories, replaces the source's
    /// enrichment document when one is given, keeps the validators, marks the source updated
    /// (`last_updated_at = last_success_at = now`, error cleared), records the run, advances
    /// the advisory generation and appends the audit entry (with `after` set to the counts
    /// when the caller left it empty). On any error nothing of it is kept. A source that does
    /// not exist is [`crate::StoreError::NotFound`].
    async fn import_feed(
        &self,
        import: FeedImport,
        now: Timestamp,
        audit: AuditEntry,
    ) -> Result<FeedImported>;

    /// Records a run that brought no new data: not modified, unchanged, or failed (with its
    /// reason; the data in force stays). `validators`, when given, replace the kept ones (a
    /// 304 may carry a new ETag). Bookkeeping: no audit entry.
    async fn record_feed_run(
        &self,
        source: &str,
        validators: Option<FetchValidators>,
        run: NewFeedRun,
        now: Timestamp,
    ) -> Result<FeedRun>;

    /// An operator checked a manual source (P2's monthly check): it counts as updated now.
    async fn record_manual_check(
        &self,
        source: &str,
        note: &str,
        now: Timestamp,
        audit: AuditEntry,
    ) -> Result<FeedSource>;

    /// Asks for the source to be fetched at the next opportunity.
    async fn request_feed_sync(
        &self,
        source: &str,
        now: Timestamp,
        audit: AuditEntry,
    ) -> Result<FeedSource>;

    /// The source's last `limit` runs, newest first.
    async fn feed_runs(&self, source: &str, limit: u32) -> Result<Vec<FeedRun>>;

    /// Every source's enrichment document, by source name.
    async fn enrichment_documents(&self) -> Result<Vec<(String, EnrichmentDoc)>>;

    /// A number that grows whenever advisories, enrichment or triage classifications change
    /// through this trait: a server whose matcher was built at an older generation rebuilds
    /// it.
    async fn advisory_generation(&self) -> Result<i64>;

    /// Takes or renews the lease `name` for `holder` until `until`, when it is free, expired
    /// at `now`, or already `holder`'s. Returns whether `holder` holds it now. Of several
    /// callers racing for a free lease, exactly one gets it.
    async fn try_lease(
        &self,
        name: &str,
        holder: &str,
        until: Timestamp,
        now: Timestamp,
    ) -> Result<bool>;

    /// Adds the vulnerabilities not in the queue yet; returns the items added (none: nothing
    /// appended to the audit chain).
    async fn enqueue_triage(
        &self,
        items: &[NewTriageItem],
        now: Timestamp,
        audit: AuditEntry,
    ) -> Result<Vec<TriageItem>>;

    async fn list_triage(&self, filter: &TriageFilter) -> Result<Vec<TriageItem>>;

    async fn get_triage(&self, id: i64) -> Result<Option<TriageItem>>;

    /// Records (or replaces) an item's classification and advances the advisory generation.
    /// The audit entry gets the previous and the new decision as `before` and `after` when
    /// the caller left them empty.
    async fn classify_triage(
        &self,
        id: i64,
        decision: TriageDecision,
        now: Timestamp,
        audit: AuditEntry,
    ) -> Result<TriageItem>;
}
