//! The exceptions half of the traced store (`ExceptionStore`): the same span around every
//! call, forwarded unchanged.

use async_trait::async_trait;
use jiff::Timestamp;
use patchwarden_core::audit::AuditEntry;
use patchwarden_store::exception::{
    ExceptionAction, ExceptionFilter, NewException, StoredException,
};
use patchwarden_store::{ExceptionStore, Result};
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
impl ExceptionStore for TracedStore {
    async fn create_exception(
        &self,
        exception: NewException,
        now: Timestamp,
        audit: AuditEntry,
    ) -> Result<StoredException> {
        traced!(self.create_exception(exception, now, audit))
    }

    async fn get_exception(&self, key: &str) -> Result<Option<StoredException>> {
        traced!(self.get_exception(key))
    }

    async fn list_exceptions(&self, filter: &ExceptionFilter) -> Result<Vec<StoredException>> {
        traced!(self.list_exceptions(filter))
    }

    async fn change_exception(
        &self,
        id: Uuid,
        by: &str,
        action: ExceptionAction,
        now: Timestamp,
        audit: AuditEntry,
    ) -> Result<StoredException> {
        traced!(self.change_exception(id, by, action, now, audit))
    }
}
