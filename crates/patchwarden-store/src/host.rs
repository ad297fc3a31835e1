//! Hosts as the store keeps them: identity (id, the agent's public key, machine id), placement
//! (group, ring, labels), the last facts and check-in, and the digest of the inventory held.
//!
//! The machine id is a column of its own so that a re-imaged or cloned host (a new enrollment
//! with a machine id already known) can be found; the store only finds it, the server decides
//! what to do, and nothing is ever merged silently.
//!
//! A host's standing (active, quarantined, retired), the moment a new host was first current,
//! and the last check-in counter its agent sent are columns too, so that every server sharing
//! the database, and a server after a restart, sees the same ones. Which changes of standing
//! are allowed is decided here, once, by [`decide_state_change`]; the backends only apply it.

use std::collections::BTreeMap;

use jiff::Timestamp;
use patchwarden_core::inventory::{HostFacts, PackagesDigest};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::{Result, StoreError};
use crate::limits::{
    MAX_FACTS_JSON, MAX_LABEL_KEY, MAX_LABEL_VALUE, MAX_LABELS, MAX_MACHINE_ID, MAX_NAME,
    MAX_PUBLIC_KEY, MAX_STATE_REASON, check_len, check_name, check_opt,
};

/// A host to be enrolled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewHost {
    pub id: Uuid,
    /// The agent's public key, as the server encodes it (base64 Ed25519, or a PEM
    /// certificate). The secret half never leaves the host.
    pub public_key: String,
    pub facts: HostFacts,
}

/// What the word `kind` of [`StoreError::AlreadyExists`] is when an enrolment names a
/// public key a host already has: every enrolment makes a new key, so a second enrolment with
/// a key is a replayed request.
pub const PUBLIC_KEY_KIND: &str = "host public key";

/// The error for an enrolment whose public key a host already has; the key is shortened (a
/// certificate is long) to what tells it apart in a log.
#[must_use]
pub fn key_in_use(public_key: &str) -> StoreError {
    StoreError::AlreadyExists {
        kind: PUBLIC_KEY_KIND,
        id: public_key.chars().take(24).collect(),
    }
}

/// A stored host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Host {
    pub id: Uuid,
    pub group: String,
    pub ring: Option<String>,
    pub labels: BTreeMap<String, String>,
    pub public_key: String,
    pub facts: HostFacts,
    /// `facts.machine_id` at the last check-in, kept as a column so clones can be found.
    pub machine_id: Option<String>,
    /// `facts.os.ecosystem`, kept as a column so hosts can be listed by ecosystem.
    pub ecosystem: Option<String>,
    /// The enrollment token the host enrolled with.
    pub enrolled_with: Uuid,
    pub enrolled_at: Timestamp,
    pub last_seen: Option<Timestamp>,
    /// The digest of the inventory the store holds for the host, if any.
    pub inventory_digest: Option<PackagesDigest>,
    /// Where the host stands: active, quarantined or retired.
    pub state: HostState,
    /// Why the host was quarantined or retired (`None` while active).
    pub state_reason: Option<String>,
    /// When the host was quarantined or retired (`None` while active).
    pub state_changed_at: Option<Timestamp>,
    /// When the host, new to the fleet, was first current: its inventory matched and no
    /// finding with a released fix open (P19). `None` while it is still new.
    pub baseline_met_at: Option<Timestamp>,
    /// The last check-in counter accepted from the host's agent (see
    /// [`crate::Store::advance_check_in_counter`]); `None` before its first check-in.
    pub check_in_seq: Option<u64>,
    /// How many of the host's findings are open, and how many of those have a released fix.
    /// Kept on the host's row by every findings sync (the only change of findings), so that a
    /// check-in, which answers with them, reads one row instead of counting hundreds.
    pub open_findings: u64,
    pub open_fixable: u64,
}

/// One agent check-in, everything it changes in one transaction (see
/// [`crate::Store::check_in`]).
#[derive(Debug, Clone)]
pub struct CheckIn {
    pub host: Uuid,
    /// The signed request's nonce, remembered until `nonce_expires_at`.
    pub nonce: String,
    pub nonce_expires_at: Timestamp,
    /// The agent's check-in counter; must exceed the last one accepted.
    pub seq: u64,
    pub facts: HostFacts,
    /// Jobs leased now are leased until then, at most `max_jobs` of them.
    pub lease_until: Timestamp,
    pub max_jobs: u32,
    pub now: Timestamp,
    /// Appended when the facts changed.
    pub facts_audit: patchwarden_core::audit::AuditEntry,
    /// Appended when jobs were leased (with `after` set to them when left empty).
    pub lease_audit: patchwarden_core::audit::AuditEntry,
}

/// What a check-in answers from the store.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckedIn {
    /// The host after the check-in.
    pub host: Host,
    /// Jobs leased by this check-in, oldest first, then the host's jobs leased earlier whose
    /// lease is still live (leased or running), oldest first: the answer that carried those
    /// may never have arrived, and a lease nobody knows about would only expire.
    pub jobs: Vec<crate::Job>,
}

/// Where a host stands with the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HostState {
    /// Enrolled and answered.
    Active,
    /// Its identity was seen used from two machines: every request of it is refused until an
    /// operator retires it and the machines enroll anew.
    Quarantined,
    /// Replaced by a re-enrollment or retired by an operator: its credential is refused from
    /// then on and its history kept. Final.
    Retired,
}

impl HostState {
    /// The name stored in the `state` column.
    pub fn as_str(self) -> &'static str {
        match self {
            HostState::Active => "active",
            HostState::Quarantined => "quarantined",
            HostState::Retired => "retired",
        }
    }

    /// The state a `state` column names, `None` for anything else.
    pub fn parse(text: &str) -> Option<HostState> {
        match text {
            "active" => Some(HostState::Active),
            "quarantined" => Some(HostState::Quarantined),
            "retired" => Some(HostState::Retired),
            _ => None,
        }
    }
}

impl std::fmt::Display for HostState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A change of a host's standing, made by the server or an operator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostStateChange {
    /// Quarantine the host (from active), for `reason`.
    Quarantine { reason: String },
    /// Retire the host (from active or quarantined), for `reason`.
    Retire { reason: String },
    /// Record that the new host is now current (once: the first time counts).
    BaselineMet,
}

impl HostStateChange {
    /// The verb used in errors: "quarantined", "retired", "marked current".
    pub fn verb(&self) -> &'static str {
        match self {
            HostStateChange::Quarantine { .. } => "quarantined",
            HostStateChange::Retire { .. } => "retired",
            HostStateChange::BaselineMet => "marked current",
        }
    }

    /// Checks the reason's length.
    pub fn check(&self) -> Result<()> {
        match self {
            HostStateChange::Quarantine { reason } | HostStateChange::Retire { reason } => {
                check_name("host state reason", reason, MAX_STATE_REASON)
            }
            HostStateChange::BaselineMet => Ok(()),
        }
    }
}

/// Whether `change` changes `host`: `Ok(true)` when it must be applied, `Ok(false)` when the
/// host already is where the change would put it (a repeated change is idempotent and keeps
/// the first reason and time), and [`StoreError::HostStateRefused`] when it is not allowed —
/// a retired host stays retired, so it can be neither quarantined nor brought back.
pub fn decide_state_change(host: &Host, change: &HostStateChange) -> Result<bool> {
    match (change, host.state) {
        (HostStateChange::BaselineMet, _) => Ok(host.baseline_met_at.is_none()),
        (HostStateChange::Quarantine { .. }, HostState::Active) => Ok(true),
        (HostStateChange::Quarantine { .. }, HostState::Quarantined) => Ok(false),
        (HostStateChange::Retire { .. }, HostState::Active | HostState::Quarantined) => Ok(true),
        (HostStateChange::Retire { .. }, HostState::Retired) => Ok(false),
        (HostStateChange::Quarantine { .. }, HostState::Retired) => {
            Err(StoreError::HostStateRefused {
                host: host.id,
                state: host.state,
                wanted: change.verb(),
            })
        }
    }
}

/// The audit entry's `before` and `after` for `change` of `host`, where the caller left them
/// empty: the standing (or baseline) before and after.
pub fn state_change_audit(
    host: &Host,
    change: &HostStateChange,
    now: Timestamp,
    mut entry: patchwarden_core::audit::AuditEntry,
) -> patchwarden_core::audit::AuditEntry {
    let (before, after) = match change {
        HostStateChange::BaselineMet => (
            serde_json::json!({ "baseline_met_at": null }),
            serde_json::json!({ "baseline_met_at": now }),
        ),
        HostStateChange::Quarantine { reason } | HostStateChange::Retire { reason } => {
            let to = match change {
                HostStateChange::Quarantine { .. } => HostState::Quarantined,
                _ => HostState::Retired,
            };
            (
                serde_json::json!({ "state": host.state, "reason": host.state_reason }),
                serde_json::json!({ "state": to, "reason": reason }),
            )
        }
    };
    if entry.before.is_none() {
        entry.before = Some(before);
    }
    if entry.after.is_none() {
        entry.after = Some(after);
    }
    entry
}

/// The largest check-in counter a column holds (a signed 64-bit integer in both backends).
pub const MAX_CHECK_IN_SEQ: u64 = i64::MAX as u64;

/// `seq` as the column stores it, refused beyond [`MAX_CHECK_IN_SEQ`].
pub fn seq_to_db(seq: u64) -> Result<i64> {
    i64::try_from(seq).map_err(|_| StoreError::Invalid {
        field: "check-in counter",
        reason: format!("{seq} is above {MAX_CHECK_IN_SEQ}"),
    })
}

/// Where a host belongs: set by operators.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostPlacement {
    pub group: String,
    pub ring: Option<String>,
    pub labels: BTreeMap<String, String>,
}

impl HostPlacement {
    pub fn check(&self) -> Result<()> {
        check_name("host group", &self.group, MAX_NAME)?;
        check_opt("host ring", self.ring.as_deref(), MAX_NAME)?;
        check_labels(&self.labels)
    }
}

/// Which hosts to list. Every field narrows the list; the default lists all, by id.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostFilter {
    pub group: Option<String>,
    pub ring: Option<String>,
    pub ecosystem: Option<String>,
    /// Hosts whose last check-in is before this time, or that never checked in.
    pub last_seen_before: Option<Timestamp>,
    /// Hosts that checked in at or after this time.
    pub last_seen_since: Option<Timestamp>,
    /// Only hosts whose id sorts after this one (paging).
    pub after: Option<Uuid>,
    pub limit: Option<u32>,
}

pub fn check_labels(labels: &BTreeMap<String, String>) -> Result<()> {
    if labels.len() > MAX_LABELS {
        return Err(StoreError::Invalid {
            field: "host labels",
            reason: format!("{} labels; at most {MAX_LABELS} are allowed", labels.len()),
        });
    }
    for (k, v) in labels {
        check_name("host label key", k, MAX_LABEL_KEY)?;
        check_len("host label value", v, MAX_LABEL_VALUE)?;
    }
    Ok(())
}

/// Checks facts that come from an agent and returns them as JSON text.
pub fn facts_json(facts: &HostFacts) -> Result<String> {
    check_opt("machine id", facts.machine_id.as_deref(), MAX_MACHINE_ID)?;
    check_opt("ecosystem", facts.os.ecosystem.as_deref(), MAX_NAME)?;
    crate::codec::to_json("host facts", facts, MAX_FACTS_JSON)
}

impl NewHost {
    /// Checks the host's fields and returns its facts as JSON text.
    pub fn check(&self) -> Result<String> {
        check_name("public key", &self.public_key, MAX_PUBLIC_KEY)?;
        facts_json(&self.facts)
    }
}
