//! The part of the [`Store`](crate::Store) that keeps incidents (see
//! [`incident`](crate::incident)). A trait of its own, which `Store` requires, like
//! [`ExceptionStore`](crate::ExceptionStore).

use async_trait::async_trait;
use jiff::Timestamp;
use patchwarden_core::audit::AuditEntry;
use uuid::Uuid;

use crate::Result;
use crate::incident::{IncidentFilter, NewIncident, StoredIncident};

/// Incidents. Every changing method appends its audit entry in the same transaction (its
/// `object` and `after` are filled in when the caller left them empty).
#[async_trait]
pub trait IncidentStore: Send + Sync {
    /// Stores a new, open incident with the next number of `now`'s year. Fails with
    /// [`crate::StoreError::TooLong`] or [`crate::StoreError::Invalid`] before anything is
    /// written when a text is missing or too long.
    async fn create_incident(
        &self,
        incident: NewIncident,
        now: Timestamp,
        audit: AuditEntry,
    ) -> Result<StoredIncident>;

    /// The incident with this id or number (`INC-2026-0001`).
    async fn get_incident(&self, key: &str) -> Result<Option<StoredIncident>>;

    /// The incidents the filter admits, newest first.
    async fn list_incidents(&self, filter: &IncidentFilter) -> Result<Vec<StoredIncident>>;

    /// Resolves an open incident with a note by `by`. A resolved one is refused
    /// ([`crate::incident::already_resolved`]) and nothing is appended.
    async fn resolve_incident(
        &self,
        id: Uuid,
        by: &str,
        resolution: &str,
        now: Timestamp,
        audit: AuditEntry,
    ) -> Result<StoredIncident>;
}
