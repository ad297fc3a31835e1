//! Exceptions (risk acceptance) as the store keeps them: the core's [`Exception`] (why, which
//! controls, who asked, until when, where it stands), what it covers (named findings and/or
//! whole hosts), an id and a readable number (`EXC-2026-0001`, numbered per year by the store).
//!
//! The rules of a change (four eyes, the data owner first, only a requested exception is
//! approved …) are the core's; [`decide`] applies them, and both backends call it inside the
//! transaction that writes the change, so a refused change leaves the row as it was and
//! appends nothing.

use std::collections::BTreeSet;

use jiff::Timestamp;
use patchwarden_core::exception::{Exception, ExceptionRefused, ExceptionState};
use patchwarden_core::finding::Finding;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::{Result, StoreError};
use crate::limits::{MAX_ID, check_name};

/// The most findings and hosts one exception names.
pub const MAX_SCOPE: usize = 1000;

/// One finding an exception names: the host, the vulnerability or advisory id, the package.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct FindingRef {
    pub host: Uuid,
    /// The vulnerability's id (`CVE-2024-1234`), one of its aliases, or an advisory naming it.
    pub advisory: String,
    /// The installed (binary) package.
    pub package: String,
}

/// What an exception covers: named findings, whole hosts (every finding of a host that cannot
/// be patched), or both.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExceptionScope {
    #[serde(default)]
    pub findings: Vec<FindingRef>,
    #[serde(default)]
    pub hosts: Vec<Uuid>,
}

impl ExceptionScope {
    /// Something is named, not too much, and no name is overlong.
    pub fn check(&self) -> Result<()> {
        if self.findings.is_empty() && self.hosts.is_empty() {
            return Err(StoreError::Invalid {
                field: "exception scope",
                reason: "names no finding and no host".into(),
            });
        }
        if self.findings.len() + self.hosts.len() > MAX_SCOPE {
            return Err(StoreError::Invalid {
                field: "exception scope",
                reason: format!("names more than {MAX_SCOPE} findings and hosts"),
            });
        }
        for f in &self.findings {
            check_name("exception scope advisory", &f.advisory, MAX_ID)?;
            check_name("exception scope package", &f.package, MAX_ID)?;
        }
        Ok(())
    }

    /// Every host it names, for a finding or whole.
    pub fn hosts_named(&self) -> BTreeSet<Uuid> {
        self.hosts
            .iter()
            .copied()
            .chain(self.findings.iter().map(|f| f.host))
            .collect()
    }

    /// Whether it covers `finding` of `host`.
    pub fn covers(&self, host: Uuid, finding: &Finding) -> bool {
        self.hosts.contains(&host)
            || self.findings.iter().any(|r| {
                r.host == host
                    && r.package == finding.package
                    && (r.advisory == finding.vulnerability
                        || finding.aliases.contains(&r.advisory)
                        || finding.advisories.contains(&r.advisory))
            })
    }
}

/// An exception to store: checked by the core (`ExceptionRequest::check`), so `Requested`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewException {
    pub id: Uuid,
    pub scope: ExceptionScope,
    pub exception: Exception,
}

/// An exception as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredException {
    pub id: Uuid,
    /// `EXC-2026-0001`: the year it was requested and its order within that year.
    pub number: String,
    pub scope: ExceptionScope,
    pub exception: Exception,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl StoredException {
    /// Whether it covers `finding` of `host` at `now` (approved, not expired, in scope).
    pub fn covers_at(&self, host: Uuid, finding: &Finding, now: Timestamp) -> bool {
        self.exception.in_force(now) && self.scope.covers(host, finding)
    }
}

/// A change of an exception's standing, made by someone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum ExceptionAction {
    /// The data owner acknowledges it.
    Acknowledge,
    Approve,
    Reject {
        reason: String,
    },
    Revoke {
        reason: String,
    },
}

impl ExceptionAction {
    /// The audit action that records it.
    pub fn audit_action(&self) -> &'static str {
        match self {
            ExceptionAction::Acknowledge => "exception.acknowledge",
            ExceptionAction::Approve => "exception.approve",
            ExceptionAction::Reject { .. } => "exception.reject",
            ExceptionAction::Revoke { .. } => "exception.revoke",
        }
    }
}

/// The exception after `by` takes `action` at `now`, or the core's refusal.
pub fn decide(
    current: &Exception,
    by: &str,
    action: &ExceptionAction,
    now: Timestamp,
) -> Result<Exception> {
    let refused = |e: ExceptionRefused| StoreError::ExceptionRefused { reason: e.0 };
    match action {
        ExceptionAction::Acknowledge => current.acknowledge(by, now),
        ExceptionAction::Approve => current.approve(by, now),
        ExceptionAction::Reject { reason } => current.reject(by, now, reason),
        ExceptionAction::Revoke { reason } => current.revoke(by, now, reason),
    }
    .map_err(refused)
}

/// The name of a state, as the `state` column keeps it.
pub fn state_name(s: &ExceptionState) -> &'static str {
    match s {
        ExceptionState::Requested => "requested",
        ExceptionState::Approved { .. } => "approved",
        ExceptionState::Rejected { .. } => "rejected",
        ExceptionState::Revoked { .. } => "revoked",
    }
}

/// The readable number of the `seq`th exception of `year`.
pub fn number(year: i16, seq: i64) -> String {
    format!("EXC-{year}-{seq:04}")
}

/// The UTC year of `t`.
pub fn year_of(t: Timestamp) -> i16 {
    t.to_zoned(jiff::tz::TimeZone::UTC).year()
}

/// Which exceptions to list; the default lists all, newest number last.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExceptionFilter {
    /// `requested`, `approved`, `rejected` or `revoked`.
    pub state: Option<String>,
    /// Only those naming this host (for a finding or whole).
    pub host: Option<Uuid>,
    /// Only those in force at this time (approved, not yet expired).
    pub in_force_at: Option<Timestamp>,
}

impl ExceptionFilter {
    pub fn admits(&self, e: &StoredException) -> bool {
        self.state
            .as_deref()
            .is_none_or(|s| s == state_name(&e.exception.state))
            && self.host.is_none_or(|h| e.scope.hosts_named().contains(&h))
            && self.in_force_at.is_none_or(|t| e.exception.in_force(t))
    }
}

/// The audit entry's `after`: the number, the state and the expiry.
pub fn audit_after(e: &StoredException) -> serde_json::Value {
    serde_json::json!({
        "number": e.number,
        "state": state_name(&e.exception.state),
        "expires_at": e.exception.request.expires_at,
        "data_owner_ack": e.exception.data_owner_ack.as_ref().map(|(who, _)| who),
    })
}

/// Checks a new exception before anything is written.
pub fn check_new(new: &NewException) -> Result<()> {
    new.scope.check()?;
    if new.exception.state != ExceptionState::Requested {
        return Err(StoreError::Invalid {
            field: "exception state",
            reason: "a new exception is requested".into(),
        });
    }
    Ok(())
}
