//! The part of the [`Store`](crate::Store) that keeps exceptions (risk acceptance; see
//! [`exception`](crate::exception) for the records and the rules). A trait of its own, which
//! `Store` requires, like [`FeedStore`](crate::FeedStore) and
//! [`OperatorStore`](crate::OperatorStore).

use async_trait::async_trait;
use jiff::Timestamp;
use patchwarden_core::audit::AuditEntry;
use uuid::Uuid;

use crate::Result;
use crate::exception::{ExceptionAction, ExceptionFilter, NewException, StoredException};

/// Exceptions. Every changing method follows the store's rule: `now` and the audit entry go
/// in, and the entry is appended in the same transaction as the change (its `object` and
/// `after` are filled in when the caller left them empty).
#[async_trait]
pub trait ExceptionStore: Send + Sync {
    /// Stores a requested exception and gives it the next number of `now`'s year. Fails with
    /// [`crate::StoreError::AlreadyExists`] when the id is taken, and
    /// [`crate::StoreError::Invalid`] when its scope names nothing or it is not `Requested`.
    async fn create_exception(
        &self,
        exception: NewException,
        now: Timestamp,
        audit: AuditEntry,
    ) -> Result<StoredException>;

    /// The exception with this id or number (`EXC-2026-0001`).
    async fn get_exception(&self, key: &str) -> Result<Option<StoredException>>;

    /// The exceptions the filter admits, by number.
    async fn list_exceptions(&self, filter: &ExceptionFilter) -> Result<Vec<StoredException>>;

    /// Applies `action` by `by` (see [`crate::exception::decide`]) in one transaction: a
    /// refusal is [`crate::StoreError::ExceptionRefused`] with the core's words, and changes
    /// nothing and appends nothing.
    async fn change_exception(
        &self,
        id: Uuid,
        by: &str,
        action: ExceptionAction,
        now: Timestamp,
        audit: AuditEntry,
    ) -> Result<StoredException>;
}
