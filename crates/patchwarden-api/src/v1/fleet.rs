//! The operator API's view of the fleet: hosts (with facts, packages and findings), findings
//! across hosts with filters and pages, advisories by id, and the audit chain.
//!
//! Where a core type's JSON is documented as stable (`HostFacts`, `Package`, `Finding`,
//! `Advisory`), these types carry it as it is; the OpenAPI document describes such a member as
//! an object and names the core type, rather than repeating its fields here by hand.

use std::collections::BTreeMap;

use jiff::Timestamp;
use patchwarden_core::advisory::Advisory;
use patchwarden_core::audit::AuditEntry;
use patchwarden_core::finding::Finding;
use patchwarden_core::inventory::{HostFacts, Package};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

/// The most items a page holds, and the number a page holds when the caller does not say.
pub const MAX_PAGE: u32 = 1000;
pub const DEFAULT_PAGE: u32 = 100;

/// Where a host stands with the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum HostStanding {
    Active,
    Quarantined,
    Retired,
}

/// `GET /api/v1/hosts` filters.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct HostQuery {
    /// Only hosts of this group.
    pub group: Option<String>,
    /// Only hosts of this ring.
    pub ring: Option<String>,
    /// Only hosts of this OSV ecosystem (`Debian:12`).
    pub ecosystem: Option<String>,
    /// Only hosts whose id sorts after this one (the previous page's `next_after`).
    pub after: Option<Uuid>,
    /// At most this many hosts (1 to 1000, default 100).
    pub limit: Option<u32>,
}

/// A host as listed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct HostSummary {
    pub id: Uuid,
    pub hostname: String,
    pub group: String,
    pub ring: Option<String>,
    pub labels: BTreeMap<String, String>,
    pub ecosystem: Option<String>,
    pub standing: HostStanding,
    pub enrolled_at: Timestamp,
    pub last_seen: Option<Timestamp>,
    /// Open findings with a released fix, or without.
    pub open_findings: u64,
}

/// A page of hosts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct HostPage {
    pub items: Vec<HostSummary>,
    /// Pass as `after` for the next page; absent on the last.
    pub next_after: Option<Uuid>,
}

/// `GET /api/v1/hosts/{id}`: a host with its facts, packages and open findings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct HostDetail {
    pub host: HostSummary,
    /// `patchwarden_core::inventory::HostFacts` as the agent reported them.
    #[schema(value_type = Object)]
    pub facts: HostFacts,
    pub standing_reason: Option<String>,
    /// When its inventory was last replaced; absent before the first upload.
    pub inventory_updated_at: Option<Timestamp>,
    /// `patchwarden_core::inventory::Package` records, as the inventory holds them.
    #[schema(value_type = Vec<Object>)]
    pub packages: Vec<Package>,
    pub findings: Vec<FindingView>,
}

/// How urgent a finding is, as the organisation's policy classified it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Criticality {
    NotApplicable,
    Low,
    Medium,
    High,
    Emergency,
}

/// Which findings: open, closed (fixed or gone), or excepted (accepted by an exception).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum FindingStateFilter {
    Open,
    Closed,
    Excepted,
}

/// `GET /api/v1/findings` filters.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct FindingQuery {
    /// Only the findings of this host.
    pub host: Option<Uuid>,
    pub criticality: Option<Criticality>,
    /// Only findings due before this time (RFC 3339); findings without a due date are left
    /// out.
    #[param(value_type = Option<String>, format = DateTime)]
    pub due_before: Option<Timestamp>,
    /// `open` (the default), `closed` or `excepted`.
    pub state: Option<FindingStateFilter>,
    /// Only findings whose id is greater (the previous page's `next_after`).
    pub after: Option<i64>,
    /// At most this many (1 to 1000, default 100).
    pub limit: Option<u32>,
}

/// A finding as listed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct FindingView {
    pub id: i64,
    pub host: Uuid,
    pub state: FindingStateFilter,
    pub criticality: Option<Criticality>,
    pub due_at: Option<Timestamp>,
    /// The policy and rule that set the criticality.
    pub policy: Option<String>,
    pub rule: Option<String>,
    pub first_seen: Timestamp,
    pub last_seen: Timestamp,
    pub closed_at: Option<Timestamp>,
    /// The version installed when it closed.
    pub fixed_version: Option<String>,
    /// `patchwarden_core::finding::Finding`: the vulnerability, the package, the installed
    /// and fixed versions, and why.
    #[schema(value_type = Object)]
    pub finding: Finding,
    /// An open finding's standing against its due date (`excepted` under an exception in
    /// force); absent on closed findings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub standing: Option<crate::v1::exceptions::FindingStanding>,
    /// The exception in force that covers it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exception: Option<crate::v1::exceptions::FindingException>,
}

/// A page of findings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct FindingPage {
    pub items: Vec<FindingView>,
    /// Pass as `after` for the next page; absent on the last.
    pub next_after: Option<i64>,
}

/// `GET /api/v1/advisories/{id}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AdvisoryView {
    /// `patchwarden_core::advisory::Advisory`: the OSV-shaped record.
    #[schema(value_type = Object)]
    pub advisory: Advisory,
}

/// `GET /api/v1/audit` parameters.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// Only events with a sequence number above this one.
    pub after: Option<i64>,
    /// At most this many (1 to 1000, default 100).
    pub limit: Option<u32>,
}

/// One event of the audit chain.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AuditEventView {
    pub seq: i64,
    /// `patchwarden_core::audit::AuditEntry`: when, who, what, to which object, before and
    /// after.
    #[schema(value_type = Object)]
    pub entry: AuditEntry,
    pub prev_hash: String,
    pub hash: String,
}

/// A page of the audit chain.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AuditPage {
    pub items: Vec<AuditEventView>,
    pub next_after: Option<i64>,
}

/// `GET /api/v1/audit/verify`: the whole chain walked from its first event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AuditVerification {
    /// Whether every link holds.
    pub intact: bool,
    /// The events checked (up to the first broken link).
    pub events: i64,
    /// The last good event's hash: publish it elsewhere, and a rewrite of the chain shows.
    pub head: String,
    /// Where the chain breaks, and how.
    pub broken: Option<String>,
}
