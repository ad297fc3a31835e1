//! Incidents: a problem someone reported after maintenance, from the public status page
//! ("report a problem after maintenance", seed 000 6.7.6), linked to the change that last
//! touched the service it names, if any; operators resolve it with a note.
//!
//! The store keeps what the reporter wrote as plain text. It is never HTML: whoever shows it
//! escapes it. The reporter's network address is not kept (it is used only for the server's
//! rate limit); the contact is kept only if the reporter gave one, and it stays out of the
//! audit chain, which cannot be edited later.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::{Result, StoreError};
use crate::limits::{MAX_NAME, check_len, check_name};

/// The longest description of the problem.
pub const MAX_DESCRIPTION: usize = 4000;
/// The longest contact (an e-mail address or a telephone number with a name).
pub const MAX_CONTACT: usize = 256;
/// The longest resolution note.
pub const MAX_RESOLUTION: usize = 4000;
/// The longest change number an incident names.
pub const MAX_CHANGE_NUMBER: usize = 64;

/// Where an incident stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IncidentState {
    Open,
    Resolved,
}

impl IncidentState {
    pub fn as_str(self) -> &'static str {
        match self {
            IncidentState::Open => "open",
            IncidentState::Resolved => "resolved",
        }
    }

    pub fn parse(s: &str) -> Option<IncidentState> {
        match s {
            "open" => Some(IncidentState::Open),
            "resolved" => Some(IncidentState::Resolved),
            _ => None,
        }
    }
}

/// An incident to be created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewIncident {
    pub id: Uuid,
    /// The service (application) it concerns, as the status page names it.
    pub service: String,
    pub description: String,
    pub contact: Option<String>,
    /// The number of the change it is linked to (`PCR-2026-0001`), if one touched the service.
    pub change: Option<String>,
}

impl NewIncident {
    /// Every text within its limit; a service and a description are required.
    pub fn check(&self) -> Result<()> {
        check_name("incident service", &self.service, MAX_NAME)?;
        check_name("incident description", &self.description, MAX_DESCRIPTION)?;
        if let Some(c) = &self.contact {
            check_len("incident contact", c, MAX_CONTACT)?;
        }
        if let Some(c) = &self.change {
            check_name("incident change", c, MAX_CHANGE_NUMBER)?;
        }
        Ok(())
    }
}

/// A stored incident.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredIncident {
    pub id: Uuid,
    /// `INC-YYYY-NNNN`, numbered per year.
    pub number: String,
    pub service: String,
    pub description: String,
    pub contact: Option<String>,
    pub change: Option<String>,
    pub state: IncidentState,
    pub created_at: Timestamp,
    pub resolved_at: Option<Timestamp>,
    pub resolved_by: Option<String>,
    pub resolution: Option<String>,
}

/// Which incidents to list, newest first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IncidentFilter {
    pub state: Option<IncidentState>,
    /// Only those linked to this change number.
    pub change: Option<String>,
    /// At most this many.
    pub limit: Option<u32>,
}

/// `INC-2026-0001`.
pub fn number(year: i16, seq: i64) -> String {
    format!("INC-{year}-{seq:04}")
}

/// What the audit chain records of an incident: never the reporter's contact.
pub fn audit_after(i: &StoredIncident) -> serde_json::Value {
    serde_json::json!({
        "number": i.number,
        "service": i.service,
        "change": i.change,
        "state": i.state.as_str(),
        "description": i.description,
        "resolved_by": i.resolved_by,
        "resolution": i.resolution,
    })
}

/// Refuses a resolution note that is empty or too long.
pub fn check_resolution(note: &str) -> Result<()> {
    check_name("incident resolution", note, MAX_RESOLUTION)
}

/// The refusal when the incident is resolved already.
pub fn already_resolved(number: &str) -> StoreError {
    StoreError::Invalid {
        field: "incident",
        reason: format!("{number} is already resolved"),
    }
}
