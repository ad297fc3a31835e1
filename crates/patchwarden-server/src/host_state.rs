//! The server's own marks on a host — retired, quarantined, baseline met — kept as labels under
//! the reserved `patchwarden.` prefix.
//!
//! FIXME(store): these belong in columns of the hosts table (a state and the time it was set),
//! which the `Store` trait does not have yet; labels are the store's only per-host field the
//! server can write today. Every change of one goes through `set_host_placement`, so it is in
//! the audit chain like any other change.

use std::collections::BTreeMap;

use jiff::Timestamp;
use patchwarden_core::audit::{Actor, AuditEntry};
use patchwarden_store::{Host, HostPlacement, Store};
use serde_json::json;

use crate::error::ApiError;

/// Set on a host retired by a re-enrollment (`replaced-by:<host id>`) or an operator.
pub const RETIRED: &str = "patchwarden.retired";
/// Set on a host whose identity was seen used from two machines, with the reason.
pub const QUARANTINED: &str = "patchwarden.quarantined";
/// Set when a new host first had its inventory matched with no fixable finding open (P19),
/// with the time.
pub const BASELINE_MET: &str = "patchwarden.baseline-met";

/// Adds `key = value` to the host's labels, with an audit event `action`.
pub async fn mark(
    store: &dyn Store,
    host: &Host,
    key: &str,
    value: &str,
    action: &str,
    actor: Actor,
    now: Timestamp,
) -> Result<Host, ApiError> {
    let mut labels: BTreeMap<String, String> = host.labels.clone();
    let before = labels.get(key).cloned();
    // Label values are bounded by the store; a long reason is cut rather than refused.
    let value: String = value.chars().take(200).collect();
    labels.insert(key.to_owned(), value.clone());
    let placement = HostPlacement {
        group: host.group.clone(),
        ring: host.ring.clone(),
        labels,
    };
    let audit = AuditEntry::new(now, actor, action, format!("host:{}", host.id))
        .before(json!({ key: before }))
        .after(json!({ key: value }));
    Ok(store
        .set_host_placement(host.id, placement, now, audit)
        .await?)
}
