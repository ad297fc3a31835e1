//! Hosts as the store keeps them: identity (id, the agent's public key, machine id), placement
//! (group, ring, labels), the last facts and check-in, and the digest of the inventory held.
//!
//! The machine id is a column of its own so that a re-imaged or cloned host (a new enrollment
//! with a machine id already known) can be found; the store only finds it, the server decides
//! what to do, and nothing is ever merged silently.

use std::collections::BTreeMap;

use jiff::Timestamp;
use patchwarden_core::inventory::{HostFacts, PackagesDigest};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::{Result, StoreError};
use crate::limits::{
    MAX_FACTS_JSON, MAX_LABEL_KEY, MAX_LABEL_VALUE, MAX_LABELS, MAX_MACHINE_ID, MAX_NAME,
    MAX_PUBLIC_KEY, check_len, check_name, check_opt,
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
