//! The feed and triage half of the traced store (`FeedStore`): the same span around every
//! call, forwarded unchanged.

use async_trait::async_trait;
use jiff::Timestamp;
use patchwarden_core::audit::AuditEntry;
use patchwarden_store::feed::{
    EnrichmentDoc, FeedImport, FeedImported, FeedRun, FeedSource, FeedSourceSpec, FetchValidators,
    NewFeedRun,
};
use patchwarden_store::triage::{NewTriageItem, TriageDecision, TriageFilter, TriageItem};
use patchwarden_store::{FeedStore, Result};
use tracing::Instrument;

use super::TracedStore;

macro_rules! traced {
    ($self:ident . $op:ident ( $($arg:expr),* )) => {
        $self
            .inner
            .$op($($arg),*)
            .instrument(tracing::debug_span!("store", op = stringify!($op)))
            .await
    };
}

#[async_trait]
impl FeedStore for TracedStore {
    async fn put_feed_source(
        &self,
        spec: &FeedSourceSpec,
        now: Timestamp,
        audit: AuditEntry,
    ) -> Result<FeedSource> {
        traced!(self.put_feed_source(spec, now, audit))
    }

    async fn feed_sources(&self) -> Result<Vec<FeedSource>> {
        traced!(self.feed_sources())
    }

    async fn get_feed_source(&self, name: &str) -> Result<Option<FeedSource>> {
        traced!(self.get_feed_source(name))
    }

    async fn import_feed(
        &self,
        import: FeedImport,
        now: Timestamp,
        audit: AuditEntry,
    ) -> Result<FeedImported> {
        traced!(self.import_feed(import, now, audit))
    }

    async fn record_feed_run(
        &self,
        source: &str,
        validators: Option<FetchValidators>,
        run: NewFeedRun,
        now: Timestamp,
    ) -> Result<FeedRun> {
        traced!(self.record_feed_run(source, validators, run, now))
    }

    async fn record_manual_check(
        &self,
        source: &str,
        note: &str,
        now: Timestamp,
        audit: AuditEntry,
    ) -> Result<FeedSource> {
        traced!(self.record_manual_check(source, note, now, audit))
    }

    async fn request_feed_sync(
        &self,
        source: &str,
        now: Timestamp,
        audit: AuditEntry,
    ) -> Result<FeedSource> {
        traced!(self.request_feed_sync(source, now, audit))
    }

    async fn feed_runs(&self, source: &str, limit: u32) -> Result<Vec<FeedRun>> {
        traced!(self.feed_runs(source, limit))
    }

    async fn enrichment_documents(&self) -> Result<Vec<(String, EnrichmentDoc)>> {
        traced!(self.enrichment_documents())
    }

    async fn advisory_generation(&self) -> Result<i64> {
        traced!(self.advisory_generation())
    }

    async fn try_lease(
        &self,
        name: &str,
        holder: &str,
        until: Timestamp,
        now: Timestamp,
    ) -> Result<bool> {
        traced!(self.try_lease(name, holder, until, now))
    }

    async fn enqueue_triage(
        &self,
        items: &[NewTriageItem],
        now: Timestamp,
        audit: AuditEntry,
    ) -> Result<Vec<TriageItem>> {
        traced!(self.enqueue_triage(items, now, audit))
    }

    async fn list_triage(&self, filter: &TriageFilter) -> Result<Vec<TriageItem>> {
        traced!(self.list_triage(filter))
    }

    async fn get_triage(&self, id: i64) -> Result<Option<TriageItem>> {
        traced!(self.get_triage(id))
    }

    async fn classify_triage(
        &self,
        id: i64,
        decision: TriageDecision,
        now: Timestamp,
        audit: AuditEntry,
    ) -> Result<TriageItem> {
        traced!(self.classify_triage(id, decision, now, audit))
    }
}
