//! The triage queue's rules: when a new advisory that affects the fleet must be reviewed, how
//! its review stands at a given moment, and what a person's classification means for the
//! findings.
//!
//! Seed `004` asks for every new patch to be downloaded and reviewed "within four hours of its
//! release" and categorised as an emergency, critical, not critical, or not applicable to the
//! environment (the clause P4 of the policy map, with the seed-000 classes Emergency, High,
//! Medium and Low). A vulnerability enters the queue when an advisory about it first matches a
//! host; its review is due [`REVIEW_WITHIN`] after that moment and is overdue from then on
//! until someone classifies it. The classification becomes a manual
//! [`Override`](crate::policy::Override), the policy's own mechanism for an operator's
//! decision, so the findings take the class (and its deadline, counted from the decision) with
//! the reason the person gave.
//!
//! Nothing here reads the clock: `now` is a parameter.

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

use crate::policy::{Class, MissingReason, Override, Reason};

/// How long a new advisory may wait for its review (seed 004: "within four hours").
pub const REVIEW_WITHIN: SignedDuration = SignedDuration::from_hours(4);

/// When the review of a vulnerability that entered the queue at `arrived_at` is due.
pub fn review_due(arrived_at: Timestamp) -> Timestamp {
    // Saturating: an arrival within four hours of the end of time has its review due at the
    // end of time rather than never.
    arrived_at
        .checked_add(REVIEW_WITHIN)
        .unwrap_or(Timestamp::MAX)
}

/// Where a review stands at some moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum ReviewStatus {
    /// Not classified yet, and not yet due.
    Pending { due_at: Timestamp },
    /// Not classified, and past its due time by `late_by`.
    Overdue {
        due_at: Timestamp,
        late_by: SignedDuration,
    },
    /// Classified at `decided_at`; `on_time` says whether that was by the due time.
    Decided {
        decided_at: Timestamp,
        on_time: bool,
    },
}

impl ReviewStatus {
    /// The status of a review due at `due_at`, classified at `decided_at` if it was, at `now`.
    /// A review is overdue strictly after its due time: one classified at the due second is on
    /// time.
    pub fn at(due_at: Timestamp, decided_at: Option<Timestamp>, now: Timestamp) -> ReviewStatus {
        match decided_at {
            Some(decided_at) => ReviewStatus::Decided {
                decided_at,
                on_time: decided_at <= due_at,
            },
            None if now > due_at => ReviewStatus::Overdue {
                due_at,
                late_by: now.duration_since(due_at),
            },
            None => ReviewStatus::Pending { due_at },
        }
    }

    pub fn is_overdue(&self) -> bool {
        matches!(self, ReviewStatus::Overdue { .. })
    }
}

/// Whether an advisory published at `published` is new enough to need a review when it first
/// matches a host at `now`: published within `window` of `now`, or of unknown publication.
///
/// An organisation that starts using Patchwarden, or adds a feed, imports years of old
/// advisories at once; each of them "arrives" then, but none is a new patch in the seed's
/// sense, and a queue of thousands of items due in four hours would bury the ones that are.
/// Old advisories still make findings with their policy deadlines; they only skip the review
/// queue.
pub fn is_new(published: Option<Timestamp>, now: Timestamp, window: SignedDuration) -> bool {
    match published {
        None => true,
        Some(p) => now.duration_since(p) <= window,
    }
}

/// The override that carries a person's classification of `vulnerability` to its findings.
/// Every classification needs a reason (the policy refuses overrides without one), and "not
/// applicable" most of all: it is the decision an auditor asks about.
pub fn classification_override(
    vulnerability: &str,
    class: Class,
    reason: &str,
) -> Result<Override, MissingReason> {
    Ok(Override::new(vulnerability, class, Reason::new(reason)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn a_review_is_due_four_hours_after_arrival_and_overdue_after_that() {
        let arrived = t("2026-03-02T08:00:00Z");
        let due = review_due(arrived);
        assert_eq!(due, t("2026-03-02T12:00:00Z"));
        assert_eq!(
            ReviewStatus::at(due, None, t("2026-03-02T11:59:59Z")),
            ReviewStatus::Pending { due_at: due }
        );
        assert_eq!(
            ReviewStatus::at(due, None, due),
            ReviewStatus::Pending { due_at: due }
        );
        let late = ReviewStatus::at(due, None, t("2026-03-02T12:30:00Z"));
        assert_eq!(
            late,
            ReviewStatus::Overdue {
                due_at: due,
                late_by: SignedDuration::from_mins(30)
            }
        );
        assert!(late.is_overdue());
        assert_eq!(
            ReviewStatus::at(due, Some(due), t("2026-03-05T00:00:00Z")),
            ReviewStatus::Decided {
                decided_at: due,
                on_time: true
            }
        );
        assert_eq!(
            ReviewStatus::at(due, Some(t("2026-03-02T13:00:00Z")), due),
            ReviewStatus::Decided {
                decided_at: t("2026-03-02T13:00:00Z"),
                on_time: false
            }
        );
        assert_eq!(review_due(Timestamp::MAX), Timestamp::MAX);
    }

    #[test]
    fn only_recent_or_undated_advisories_are_new() {
        let now = t("2026-03-02T08:00:00Z");
        let month = SignedDuration::from_hours(30 * 24);
        assert!(is_new(None, now, month));
        assert!(is_new(Some(t("2026-02-20T00:00:00Z")), now, month));
        assert!(!is_new(Some(t("2025-01-01T00:00:00Z")), now, month));
        // Published "in the future" (a clock ahead at the publisher) is new.
        assert!(is_new(Some(t("2026-03-03T00:00:00Z")), now, month));
    }

    #[test]
    fn a_classification_without_a_reason_is_refused() {
        assert!(classification_override("CVE-2024-1", Class::NotApplicable, "  ").is_err());
        let ov = classification_override(
            "CVE-2024-1",
            Class::NotApplicable,
            "no host runs the daemon",
        )
        .unwrap();
        assert_eq!(ov.class, Class::NotApplicable);
        assert_eq!(ov.reason.as_str(), "no host runs the daemon");
    }
}
