//! Exceptions (risk acceptance): a finding that cannot be patched, accepted for a time with a
//! documented justification and the compensating controls in place (seed 003 "Exceptions",
//! seed 002 §3.8 and §6.1; clause P16 of the policy map).
//!
//! The rules kept here, so that the API, the CLI and the reports agree:
//!
//! - a justification of the kinds seed 003 names (no vendor patch; the patch makes the system
//!   unstable and the instability outweighs the risk), or another in words, always with a
//!   written explanation;
//! - at least one compensating control (network segmentation, access control lists, an
//!   intrusion prevention system, or another in words), each described;
//! - four eyes: the requester never approves their own exception;
//! - a system that transmits or stores protected data has the data owner acknowledge the
//!   exception before it is approved (seed 003 "Exceptions" 2);
//! - every exception expires, within a maximum the organisation sets (a year by default);
//!   once expired the finding is back on its SLA clock, with the due date it always had — an
//!   exception pauses the reporting of a breach, it does not move the deadline;
//! - a review reminder falls due before the expiry.
//!
//! Nothing here reads the clock.

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

/// Why a finding cannot be patched now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Justification {
    /// The vendor has published no fix.
    NoVendorPatch,
    /// The vendor's patch makes the system unstable, and the instability outweighs the risk.
    PatchCausesInstability,
    /// Another reason, given in the explanation.
    Other,
}

/// A control that reduces the risk while the finding stays open.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ControlKind {
    NetworkSegmentation,
    AccessControlList,
    IntrusionPrevention,
    Other,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Control {
    pub kind: ControlKind,
    /// What is in place, where ("web tier VLAN 40, no inbound from the user LAN").
    pub description: String,
}

/// The longest text kept in a field of an exception.
pub const MAX_TEXT: usize = 4096;
/// The most controls an exception lists.
pub const MAX_CONTROLS: usize = 32;
/// How long an exception may run when the organisation sets nothing: a year.
pub const DEFAULT_MAX_TERM: SignedDuration = SignedDuration::from_hours(24 * 365);
/// How long before its expiry an exception's review falls due.
pub const REVIEW_BEFORE_EXPIRY: SignedDuration = SignedDuration::from_hours(24 * 14);

/// An exception as requested.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExceptionRequest {
    pub justification: Justification,
    pub explanation: String,
    pub controls: Vec<Control>,
    /// The system transmits or stores protected data: its data owner must acknowledge.
    pub protected_data: bool,
    pub requester: String,
    pub requested_at: Timestamp,
    pub expires_at: Timestamp,
}

/// Where an exception stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum ExceptionState {
    Requested,
    Approved {
        by: String,
        at: Timestamp,
    },
    Rejected {
        by: String,
        at: Timestamp,
        reason: String,
    },
    /// Withdrawn before expiry (the finding was patched, or the risk changed).
    Revoked {
        by: String,
        at: Timestamp,
        reason: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Exception {
    pub request: ExceptionRequest,
    /// Who, as data owner, acknowledged it (required with protected data).
    pub data_owner_ack: Option<(String, Timestamp)>,
    pub state: ExceptionState,
}

/// Why an exception cannot be made or approved, in words.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("exception: {0}")]
pub struct ExceptionRefused(pub String);

fn refuse<T>(s: impl Into<String>) -> Result<T, ExceptionRefused> {
    Err(ExceptionRefused(s.into()))
}

fn text(field: &str, s: &str) -> Result<(), ExceptionRefused> {
    if s.trim().is_empty() {
        return refuse(format!("the {field} is empty"));
    }
    if s.len() > MAX_TEXT {
        return refuse(format!("the {field} is longer than {MAX_TEXT} bytes"));
    }
    Ok(())
}

impl ExceptionRequest {
    /// A new exception in state `Requested`, or why it cannot be one. `max_term` is the
    /// organisation's longest allowed exception.
    pub fn check(self, max_term: SignedDuration) -> Result<Exception, ExceptionRefused> {
        text("explanation", &self.explanation)?;
        if self.controls.is_empty() {
            return refuse(
                "no compensating control: name at least one (network segmentation, access \
                 control lists, intrusion prevention, or another)",
            );
        }
        if self.controls.len() > MAX_CONTROLS {
            return refuse(format!("more than {MAX_CONTROLS} controls"));
        }
        for c in &self.controls {
            text("control's description", &c.description)?;
        }
        if self.expires_at <= self.requested_at {
            return refuse("it expires before it is requested");
        }
        let latest = self
            .requested_at
            .checked_add(max_term)
            .unwrap_or(Timestamp::MAX);
        if self.expires_at > latest {
            return refuse(format!(
                "it runs past the longest term allowed ({} days); it must expire by {latest}",
                max_term.as_hours() / 24
            ));
        }
        Ok(Exception {
            request: self,
            data_owner_ack: None,
            state: ExceptionState::Requested,
        })
    }
}

impl Exception {
    /// The data owner acknowledges the exception (before approval).
    pub fn acknowledge(&self, owner: &str, now: Timestamp) -> Result<Exception, ExceptionRefused> {
        if self.state != ExceptionState::Requested {
            return refuse("only a requested exception is acknowledged");
        }
        if owner == self.request.requester {
            return refuse("the requester cannot acknowledge as data owner");
        }
        let mut next = self.clone();
        next.data_owner_ack = Some((owner.to_owned(), now));
        Ok(next)
    }

    pub fn approve(&self, approver: &str, now: Timestamp) -> Result<Exception, ExceptionRefused> {
        if self.state != ExceptionState::Requested {
            return refuse("only a requested exception is approved");
        }
        if approver == self.request.requester {
            return refuse("the requester cannot approve their own exception");
        }
        if self.request.protected_data && self.data_owner_ack.is_none() {
            return refuse(
                "the system holds protected data: its data owner acknowledges the exception \
                 first",
            );
        }
        if now >= self.request.expires_at {
            return refuse("it has already expired");
        }
        let mut next = self.clone();
        next.state = ExceptionState::Approved {
            by: approver.to_owned(),
            at: now,
        };
        Ok(next)
    }

    pub fn reject(
        &self,
        by: &str,
        now: Timestamp,
        reason: &str,
    ) -> Result<Exception, ExceptionRefused> {
        if self.state != ExceptionState::Requested {
            return refuse("only a requested exception is rejected");
        }
        text("reason", reason)?;
        let mut next = self.clone();
        next.state = ExceptionState::Rejected {
            by: by.to_owned(),
            at: now,
            reason: reason.trim().to_owned(),
        };
        Ok(next)
    }

    pub fn revoke(
        &self,
        by: &str,
        now: Timestamp,
        reason: &str,
    ) -> Result<Exception, ExceptionRefused> {
        if !matches!(self.state, ExceptionState::Approved { .. }) {
            return refuse("only an approved exception is revoked");
        }
        text("reason", reason)?;
        let mut next = self.clone();
        next.state = ExceptionState::Revoked {
            by: by.to_owned(),
            at: now,
            reason: reason.trim().to_owned(),
        };
        Ok(next)
    }

    /// Whether it covers its findings at `now`: approved and not yet expired.
    pub fn in_force(&self, now: Timestamp) -> bool {
        matches!(self.state, ExceptionState::Approved { .. }) && now < self.request.expires_at
    }

    /// When its review falls due: two weeks before it expires, or at its approval when the
    /// term is shorter than that.
    pub fn review_due(&self) -> Timestamp {
        let before = self
            .request
            .expires_at
            .checked_sub(REVIEW_BEFORE_EXPIRY)
            .unwrap_or(Timestamp::MIN);
        before.max(self.request.requested_at)
    }
}

/// How a finding stands for the compliance reports, given its due date and the exceptions
/// that name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Standing {
    OnTime,
    /// Due within the warning period.
    DueSoon,
    Breached,
    /// Accepted by an exception in force: reported as excepted, not breached.
    Excepted,
}

/// The standing of an open finding due at `due` (none: never breaches) at `now`, warned
/// `warn_before` ahead, under `exceptions`. An expired exception leaves the finding where its
/// own clock puts it: breached, if the due date passed meanwhile.
pub fn standing(
    due: Option<Timestamp>,
    now: Timestamp,
    warn_before: SignedDuration,
    exceptions: &[Exception],
) -> Standing {
    if exceptions.iter().any(|e| e.in_force(now)) {
        return Standing::Excepted;
    }
    match due {
        Some(due) if now > due => Standing::Breached,
        Some(due) if now >= due.checked_sub(warn_before).unwrap_or(Timestamp::MIN) => {
            Standing::DueSoon
        }
        _ => Standing::OnTime,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Timestamp {
        s.parse().expect("a test timestamp")
    }

    fn request() -> ExceptionRequest {
        ExceptionRequest {
            justification: Justification::PatchCausesInstability,
            explanation: "kernel 6.1.0-28 panics the SAN driver on db-3; vendor case 4411".into(),
            controls: vec![Control {
                kind: ControlKind::NetworkSegmentation,
                description: "db VLAN reachable only from the app tier".into(),
            }],
            protected_data: false,
            requester: "alice".into(),
            requested_at: t("2026-11-01T09:00:00Z"),
            expires_at: t("2027-02-01T09:00:00Z"),
        }
    }

    #[test]
    fn an_exception_needs_a_reason_a_control_an_end_and_someone_else_to_approve_it() {
        let no_control = ExceptionRequest {
            controls: vec![],
            ..request()
        };
        expect_test::expect!["exception: no compensating control: name at least one (network segmentation, access control lists, intrusion prevention, or another)"]
            .assert_eq(&no_control.check(DEFAULT_MAX_TERM).unwrap_err().to_string());
        let forever = ExceptionRequest {
            expires_at: t("2030-01-01T00:00:00Z"),
            ..request()
        };
        expect_test::expect!["exception: it runs past the longest term allowed (365 days); it must expire by 2027-11-01T09:00:00Z"]
            .assert_eq(&forever.check(DEFAULT_MAX_TERM).unwrap_err().to_string());
        let blank = ExceptionRequest {
            explanation: "  ".into(),
            ..request()
        };
        assert!(blank.check(DEFAULT_MAX_TERM).is_err());

        let e = request().check(DEFAULT_MAX_TERM).unwrap();
        let now = t("2026-11-02T09:00:00Z");
        expect_test::expect!["exception: the requester cannot approve their own exception"]
            .assert_eq(&e.approve("alice", now).unwrap_err().to_string());
        let e = e.approve("bob", now).unwrap();
        assert!(e.in_force(now));
        assert_eq!(e.review_due(), t("2027-01-18T09:00:00Z"));
    }

    #[test]
    fn protected_data_needs_the_data_owner_first() {
        let e = ExceptionRequest {
            protected_data: true,
            ..request()
        }
        .check(DEFAULT_MAX_TERM)
        .unwrap();
        let now = t("2026-11-02T09:00:00Z");
        expect_test::expect!["exception: the system holds protected data: its data owner acknowledges the exception first"]
            .assert_eq(&e.approve("bob", now).unwrap_err().to_string());
        let e = e.acknowledge("dana", now).unwrap();
        assert!(e.approve("bob", now).is_ok());
    }

    #[test]
    fn an_expired_exception_returns_the_finding_to_its_own_clock() {
        let e = request()
            .check(DEFAULT_MAX_TERM)
            .unwrap()
            .approve("bob", t("2026-11-02T09:00:00Z"))
            .unwrap();
        let due = Some(t("2026-12-01T00:00:00Z"));
        let week = SignedDuration::from_hours(24 * 7);
        let at = |s| standing(due, t(s), week, std::slice::from_ref(&e));
        assert_eq!(at("2026-11-20T00:00:00Z"), Standing::Excepted);
        assert_eq!(at("2027-01-15T00:00:00Z"), Standing::Excepted);
        // Expired: the due date passed long ago, so it is breached, not on time again.
        assert_eq!(at("2027-02-01T09:00:00Z"), Standing::Breached);
        assert_eq!(
            standing(due, t("2026-11-25T00:00:00Z"), week, &[]),
            Standing::DueSoon
        );
        assert_eq!(
            standing(due, t("2026-11-20T00:00:00Z"), week, &[]),
            Standing::OnTime
        );
        // Revoked: back on the clock at once.
        let revoked = e
            .revoke("bob", t("2026-11-10T00:00:00Z"), "vendor fixed the driver")
            .unwrap();
        assert_eq!(
            standing(due, t("2026-12-02T00:00:00Z"), week, &[revoked]),
            Standing::Breached
        );
    }
}
