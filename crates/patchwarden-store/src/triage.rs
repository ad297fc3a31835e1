//! The triage queue as the store keeps it: one item per vulnerability that affected the fleet
//! when it was new, with the time it arrived, when its review is due (the rule is
//! `patchwarden_core::triage`), and the classification a person gave it.
//!
//! An item is keyed by the vulnerability's canonical id (the one findings carry), so that two
//! advisories about one CVE are one review, not two.

use jiff::Timestamp;
use patchwarden_core::policy::Class;
use patchwarden_core::triage::ReviewStatus;
use serde::{Deserialize, Serialize};

use crate::error::{Result, StoreError};
use crate::limits::{MAX_ID, MAX_NOTE, check_len, check_name};

/// The longest summary kept with an item.
pub const MAX_SUMMARY: usize = 1024;

/// A vulnerability entering the queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewTriageItem {
    pub vulnerability: String,
    /// The advisories that made it affect the fleet, by id.
    pub advisories: Vec<String>,
    /// The advisories' summary, for the queue's reader.
    pub summary: Option<String>,
    pub arrived_at: Timestamp,
    pub due_at: Timestamp,
}

impl NewTriageItem {
    pub fn check(&self) -> Result<()> {
        check_name("triage vulnerability", &self.vulnerability, MAX_ID)?;
        for a in &self.advisories {
            check_name("triage advisory", a, MAX_ID)?;
        }
        if self.advisories.len() > 64 {
            return Err(StoreError::Invalid {
                field: "triage advisories",
                reason: format!("{} advisories; at most 64 are kept", self.advisories.len()),
            });
        }
        if let Some(s) = &self.summary {
            check_len("triage summary", s, MAX_SUMMARY)?;
        }
        Ok(())
    }
}

/// A person's classification of an item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TriageDecision {
    pub class: Class,
    /// Why; never empty.
    pub reason: String,
    /// Who decided (the actor's name as the audit chain spells it).
    pub decided_by: String,
    pub decided_at: Timestamp,
}

impl TriageDecision {
    pub fn check(&self) -> Result<()> {
        if self.reason.trim().is_empty() {
            return Err(StoreError::Invalid {
                field: "triage reason",
                reason: "a classification needs a reason".into(),
            });
        }
        check_len("triage reason", &self.reason, MAX_NOTE)?;
        check_name("triage decided_by", &self.decided_by, MAX_ID)
    }
}

/// An item of the queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TriageItem {
    pub id: i64,
    pub vulnerability: String,
    pub advisories: Vec<String>,
    pub summary: Option<String>,
    pub arrived_at: Timestamp,
    pub due_at: Timestamp,
    pub decision: Option<TriageDecision>,
}

impl TriageItem {
    /// Where its review stands at `now`.
    pub fn status(&self, now: Timestamp) -> ReviewStatus {
        ReviewStatus::at(
            self.due_at,
            self.decision.as_ref().map(|d| d.decided_at),
            now,
        )
    }
}

/// Which items to list; the default lists all, by id.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TriageFilter {
    /// `Some(true)`: only items not classified yet; `Some(false)`: only classified ones.
    pub pending: Option<bool>,
    /// Only items due before this time (with `pending`, the overdue ones at that time).
    pub due_before: Option<Timestamp>,
    pub vulnerability: Option<String>,
    /// Only items whose id is greater (paging).
    pub after_id: Option<i64>,
    pub limit: Option<u32>,
}

/// The columns of `triage_items` in the order [`TriageRow`] reads them.
pub const TRIAGE_COLUMNS: &str = "id, vulnerability, advisories, summary, arrived_at, due_at, class, reason, decided_by, \
     decided_at";

/// A `triage_items` row as the database holds it, decoded alike by both backends.
#[derive(Debug, Clone)]
pub struct TriageRow {
    pub id: i64,
    pub vulnerability: String,
    pub advisories: String,
    pub summary: Option<String>,
    pub arrived_at: i64,
    pub due_at: i64,
    pub class: Option<String>,
    pub reason: Option<String>,
    pub decided_by: Option<String>,
    pub decided_at: Option<i64>,
}

impl TriageRow {
    pub fn decode(self) -> Result<TriageItem> {
        use crate::codec::{from_json, ts_from_db};
        const T: &str = "triage_items";
        let id = self.id;
        let decision = match (self.class, self.reason, self.decided_by, self.decided_at) {
            (None, None, None, None) => None,
            (Some(class), Some(reason), Some(decided_by), Some(at)) => Some(TriageDecision {
                class: class
                    .parse::<Class>()
                    .map_err(|e| StoreError::corrupt(T, id, e))?,
                reason,
                decided_by,
                decided_at: ts_from_db(T, &id, at)?,
            }),
            _ => {
                return Err(StoreError::corrupt(
                    T,
                    id,
                    "a decision is only partly recorded",
                ));
            }
        };
        Ok(TriageItem {
            id,
            vulnerability: self.vulnerability,
            advisories: from_json(T, &id, &self.advisories)?,
            summary: self.summary,
            arrived_at: ts_from_db(T, &id, self.arrived_at)?,
            due_at: ts_from_db(T, &id, self.due_at)?,
            decision,
        })
    }
}
