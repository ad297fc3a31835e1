//! The server's changes of a host's standing — retired, quarantined, current for the first
//! time (P19) — each with the audit event that records it, through
//! [`Store::change_host_state`], which keeps them in columns of the hosts table.
//!
//! Kept in the store, not in a server's memory, so that every server sharing the database and
//! a server after a restart refuse the same hosts. The check-in counter, which is what detects
//! one host identity used from two machines, is kept there too (`advance_check_in_counter`,
//! called by the check-in handler).

use jiff::Timestamp;
use patchwarden_core::audit::{Actor, AuditEntry};
use patchwarden_store::{Host, HostStateChange, Store, StoreError};
use uuid::Uuid;

/// Retires a host: its credential is refused from then on (`host-retired`), its history kept.
/// Retiring a retired host changes nothing.
pub async fn retire(
    store: &dyn Store,
    host: Uuid,
    reason: &str,
    actor: Actor,
    now: Timestamp,
) -> Result<Host, StoreError> {
    let change = HostStateChange::Retire {
        reason: bounded(reason),
    };
    change_state(store, host, change, "host.retire", actor, now).await
}

/// Quarantines a host whose identity was seen used from two machines: every request of it is
/// refused (`host-identity-conflict`) until an operator retires it.
pub async fn quarantine(
    store: &dyn Store,
    host: Uuid,
    reason: &str,
    now: Timestamp,
) -> Result<Host, StoreError> {
    let change = HostStateChange::Quarantine {
        reason: bounded(reason),
    };
    let actor = Actor::System("identity".into());
    change_state(store, host, change, "host.quarantine", actor, now).await
}

/// Records that a new host is current (its inventory matched, no fixable finding open): from
/// then on it is no longer reported as new. Only the first time is recorded.
pub async fn baseline_met(
    store: &dyn Store,
    host: Uuid,
    now: Timestamp,
) -> Result<Host, StoreError> {
    let actor = Actor::System("matcher".into());
    change_state(
        store,
        host,
        HostStateChange::BaselineMet,
        "host.baseline_met",
        actor,
        now,
    )
    .await
}

async fn change_state(
    store: &dyn Store,
    host: Uuid,
    change: HostStateChange,
    action: &str,
    actor: Actor,
    now: Timestamp,
) -> Result<Host, StoreError> {
    // The store fills in the entry's before and after with the standing it changed.
    let audit = AuditEntry::new(now, actor, action, format!("host:{host}"));
    store.change_host_state(host, change, now, audit).await
}

/// A reason as the store takes it: a reason built from what an agent sent could be long, and
/// is cut rather than refused, since the change it explains must still happen.
fn bounded(reason: &str) -> String {
    let max = patchwarden_store::limits::MAX_STATE_REASON;
    reason
        .char_indices()
        .take_while(|(at, c)| at + c.len_utf8() <= max)
        .map(|(_, c)| c)
        .collect()
}
