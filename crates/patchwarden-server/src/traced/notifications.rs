//! The notifications half of the traced store (`NotificationStore`): the same span around
//! every call, forwarded unchanged.

use async_trait::async_trait;
use jiff::Timestamp;
use patchwarden_store::Result;
use patchwarden_store::notification::{
    DeliveryOutcome, Enqueued, NewNotification, Notification, NotificationFilter, NotificationStore,
};
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
impl NotificationStore for TracedStore {
    async fn enqueue_notifications(
        &self,
        items: &[NewNotification],
        audit_cursor: Option<i64>,
        now: Timestamp,
    ) -> Result<Enqueued> {
        traced!(self.enqueue_notifications(items, audit_cursor, now))
    }

    async fn notification_cursor(&self) -> Result<Option<i64>> {
        traced!(self.notification_cursor())
    }

    async fn claim_notifications(
        &self,
        lease: Uuid,
        lease_until: Timestamp,
        limit: u32,
        now: Timestamp,
    ) -> Result<Vec<Notification>> {
        traced!(self.claim_notifications(lease, lease_until, limit, now))
    }

    async fn finish_notification(
        &self,
        id: Uuid,
        lease: Uuid,
        outcome: &DeliveryOutcome,
        now: Timestamp,
    ) -> Result<bool> {
        traced!(self.finish_notification(id, lease, outcome, now))
    }

    async fn list_notifications(&self, filter: &NotificationFilter) -> Result<Vec<Notification>> {
        traced!(self.list_notifications(filter))
    }
}
