//! The incidents half of the traced store (`IncidentStore`): the same span around every call,
//! forwarded unchanged.

use async_trait::async_trait;
use jiff::Timestamp;
use patchwarden_core::audit::AuditEntry;
use patchwarden_store::incident::{IncidentFilter, NewIncident, StoredIncident};
use patchwarden_store::{IncidentStore, Result};
use tracing::Instrument;
use uuid::Uuid;

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
impl IncidentStore for TracedStore {
    async fn create_incident(
        &self,
        incident: NewIncident,
        now: Timestamp,
        audit: AuditEntry,
    ) -> Result<StoredIncident> {
        traced!(self.create_incident(incident, now, audit))
    }

    async fn get_incident(&self, key: &str) -> Result<Option<StoredIncident>> {
        traced!(self.get_incident(key))
    }

    async fn list_incidents(&self, filter: &IncidentFilter) -> Result<Vec<StoredIncident>> {
        traced!(self.list_incidents(filter))
    }

    async fn resolve_incident(
        &self,
        id: Uuid,
        by: &str,
        resolution: &str,
        now: Timestamp,
        audit: AuditEntry,
    ) -> Result<StoredIncident> {
        traced!(self.resolve_incident(id, by, resolution, now, audit))
    }
}
