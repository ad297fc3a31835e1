//! The store's half for change requests and the calendar (see [`crate::change`]). A
//! supertrait of [`crate::Store`], like the feed and operator halves, so each backend keeps
//! these queries in a file of their own.

use async_trait::async_trait;
use jiff::Timestamp;
use patchwarden_core::audit::AuditEntry;

use crate::Result;
use crate::change::{
    CalendarEntry, CalendarKind, ChangeFilter, ChangeUpdate, NewChange, StoredChange,
};

#[async_trait]
pub trait ChangeStore: Send + Sync {
    /// Creates a change with the next number of its year, at revision 1.
    async fn create_change(
        &self,
        change: NewChange,
        now: Timestamp,
        audit: AuditEntry,
    ) -> Result<StoredChange>;

    /// The change with this id or number.
    async fn get_change(&self, id_or_number: &str) -> Result<Option<StoredChange>>;

    async fn list_changes(&self, filter: &ChangeFilter) -> Result<Vec<StoredChange>>;

    /// Replaces the change's state and body and creates the update's jobs, if the change is
    /// still at the revision the update names; otherwise [`crate::StoreError::Stale`] and
    /// nothing changes. The revision goes up by one.
    async fn update_change(
        &self,
        update: ChangeUpdate,
        now: Timestamp,
        audit: AuditEntry,
    ) -> Result<StoredChange>;

    /// Creates or replaces a calendar entry.
    async fn put_calendar_entry(
        &self,
        name: &str,
        kind: CalendarKind,
        body: serde_json::Value,
        now: Timestamp,
        audit: AuditEntry,
    ) -> Result<CalendarEntry>;

    /// Removes a calendar entry; `false` (and no audit entry) when there was none.
    async fn delete_calendar_entry(
        &self,
        name: &str,
        now: Timestamp,
        audit: AuditEntry,
    ) -> Result<bool>;

    /// Every calendar entry, by name.
    async fn calendar_entries(&self) -> Result<Vec<CalendarEntry>>;
}
