//! The operator API's exceptions (risk acceptance; seed 003 "Exceptions", clause P16): request
//! one for findings or whole hosts, list and show them, and the data owner's acknowledgement,
//! the approval (never by the requester), the rejection and the revocation.
//!
//! The core's record (`patchwarden_core::exception::Exception`: justification, explanation,
//! controls, protected data, requester, expiry, acknowledgement, state) is carried as it is;
//! the fields a list shows are repeated beside it.

use jiff::Timestamp;
use patchwarden_core::exception::{Control, Exception, Justification};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

/// One finding an exception names: the host, the vulnerability (or an alias, or an advisory
/// naming it) and the installed package.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExceptionFinding {
    pub host: Uuid,
    pub advisory: String,
    pub package: String,
}

/// `POST /api/v1/exceptions`: a new exception, requested by the caller.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewExceptionRequest {
    /// `no_vendor_patch`, `patch_causes_instability` or `other`.
    #[schema(value_type = String)]
    pub justification: Justification,
    /// Why, in words (always required).
    pub explanation: String,
    /// The compensating controls: `{"kind": "network_segmentation" | "access_control_list" |
    /// "intrusion_prevention" | "other", "description": "…"}`, at least one.
    #[schema(value_type = Vec<Object>)]
    pub controls: Vec<Control>,
    /// The system transmits or stores protected data: its data owner acknowledges first.
    #[serde(default)]
    pub protected_data: bool,
    /// When it ends (at most the server's longest term after now).
    #[schema(value_type = String, format = DateTime)]
    pub expires_at: Timestamp,
    /// The findings it covers.
    #[serde(default)]
    pub findings: Vec<ExceptionFinding>,
    /// The hosts all of whose findings it covers (a device that cannot be patched).
    #[serde(default)]
    pub hosts: Vec<Uuid>,
}

/// `POST /api/v1/exceptions/{id}/reject` and `…/revoke`: why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExceptionReason {
    pub reason: String,
}

/// Where an exception stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ExceptionStateName {
    Requested,
    Approved,
    Rejected,
    Revoked,
}

impl ExceptionStateName {
    pub fn as_str(self) -> &'static str {
        match self {
            ExceptionStateName::Requested => "requested",
            ExceptionStateName::Approved => "approved",
            ExceptionStateName::Rejected => "rejected",
            ExceptionStateName::Revoked => "revoked",
        }
    }
}

/// `GET /api/v1/exceptions` filters.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ExceptionQuery {
    pub state: Option<ExceptionStateName>,
    /// Only exceptions naming this host (for a finding or whole).
    pub host: Option<Uuid>,
}

/// An exception.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ExceptionView {
    pub id: Uuid,
    /// `EXC-2026-0001`.
    pub number: String,
    pub state: ExceptionStateName,
    /// Approved and not expired now: its findings are reported as excepted.
    pub in_force: bool,
    /// Approved, and its expiry has passed: its findings are back on their SLA clock.
    pub expired: bool,
    pub requester: String,
    #[schema(value_type = String, format = DateTime)]
    pub expires_at: Timestamp,
    /// When its review falls due (two weeks before expiry).
    #[schema(value_type = String, format = DateTime)]
    pub review_due: Timestamp,
    /// Who approved, rejected or revoked it.
    pub decided_by: Option<String>,
    pub findings: Vec<ExceptionFinding>,
    pub hosts: Vec<Uuid>,
    /// `patchwarden_core::exception::Exception`: the request, the data owner's
    /// acknowledgement and the state with who, when and why.
    #[schema(value_type = Object)]
    pub exception: Exception,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: Timestamp,
}

/// `GET /api/v1/exceptions`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ExceptionList {
    pub items: Vec<ExceptionView>,
}

/// The exception in force that covers a finding, as a finding shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct FindingException {
    pub id: Uuid,
    pub number: String,
    #[schema(value_type = String, format = DateTime)]
    pub expires_at: Timestamp,
}

/// How an open finding stands against its due date (`patchwarden_core::exception::standing`):
/// an exception in force makes it `excepted`; an expired one leaves it where its own due date
/// puts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum FindingStanding {
    OnTime,
    DueSoon,
    Breached,
    Excepted,
}
