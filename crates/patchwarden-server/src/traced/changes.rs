//! The change-request half of the traced store: the same forwarding, one span per call.

use async_trait::async_trait;
use jiff::Timestamp;
use patchwarden_core::audit::AuditEntry;
use patchwarden_store::change::{
    CalendarEntry, CalendarKind, ChangeFilter, ChangeUpdate, NewChange, StoredChange,
};
use patchwarden_store::{ChangeStore, Result};
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
impl ChangeStore for TracedStore {
    async fn create_change(
        &self,
        change: NewChange,
        now: Timestamp,
        audit: AuditEntry,
    ) -> Result<StoredChange> {
        traced!(self.create_change(change, now, audit))
    }

    async fn get_change(&self, id_or_number: &str) -> Result<Option<StoredChange>> {
        traced!(self.get_change(id_or_number))
    }

    async fn list_changes(&self, filter: &ChangeFilter) -> Result<Vec<StoredChange>> {
        traced!(self.list_changes(filter))
    }

    async fn update_change(
        &self,
        update: ChangeUpdate,
        now: Timestamp,
        audit: AuditEntry,
    ) -> Result<StoredChange> {
        traced!(self.update_change(update, now, audit))
    }

    async fn put_calendar_entry(
        &self,
        name: &str,
        kind: CalendarKind,
        body: serde_json::Value,
        now: Timestamp,
        audit: AuditEntry,
    ) -> Result<CalendarEntry> {
        traced!(self.put_calendar_entry(name, kind, body, now, audit))
    }

    async fn delete_calendar_entry(
        &self,
        name: &str,
        now: Timestamp,
        audit: AuditEntry,
    ) -> Result<bool> {
        traced!(self.delete_calendar_entry(name, now, audit))
    }

    async fn calendar_entries(&self) -> Result<Vec<CalendarEntry>> {
        traced!(self.calendar_entries())
    }
}
