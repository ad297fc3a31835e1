//! Change requests and the calendar, as the store keeps them.
//!
//! A change request's form, its place in the state machine of `patchwarden_core::change` and
//! its rollout are one JSON document that the server owns and the store does not interpret;
//! the store keeps beside it the columns it filters on (number, kind, state, requester) and a
//! **revision** that every update must name: two servers (or two operators) acting on the same
//! change at once cannot both win — the second gets [`StoreError::Stale`] and reads it again.
//!
//! Numbers (`PCR-2026-0001`) are given by the store at creation, one sequence per year, from
//! the shared `counters` table, so servers sharing a database never hand out the same one.
//!
//! An update may create jobs in the same transaction (a ring of the rollout starting): either
//! the change moved and every job of the ring exists, or neither happened.
//!
//! Calendar entries (maintenance windows and change freezes) are named JSON documents the
//! server validates with `patchwarden_core::calendar`.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use crate::error::{Result, StoreError};
use crate::job::NewJob;
use crate::limits::{MAX_NAME, check_name};

/// The longest change document kept (the form, the patches of a large change, the rollout's
/// hosts and jobs).
pub const MAX_CHANGE_JSON: usize = 4 * 1024 * 1024;
/// The longest calendar entry.
pub const MAX_CALENDAR_JSON: usize = 64 * 1024;
/// The most jobs one update creates.
pub const MAX_JOBS_PER_UPDATE: usize = 20_000;

/// A change request to be created.
#[derive(Debug, Clone, PartialEq)]
pub struct NewChange {
    pub id: Uuid,
    /// The year its number counts in.
    pub year: i16,
    /// `standard`, `normal` or `emergency`.
    pub kind: String,
    pub state: String,
    pub requester: String,
    /// The server's document; the store fills in nothing of it.
    pub body: Value,
}

/// A stored change request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredChange {
    pub id: Uuid,
    /// `PCR-YYYY-NNNN`.
    pub number: String,
    pub kind: String,
    pub state: String,
    pub requester: String,
    pub body: Value,
    /// Counts the updates; an update names the revision it read.
    pub revision: i64,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// An update of a change read at `revision`.
#[derive(Debug, Clone, PartialEq)]
pub struct ChangeUpdate {
    pub id: Uuid,
    pub revision: i64,
    pub state: String,
    pub body: Value,
    /// Jobs created in the same transaction.
    pub jobs: Vec<NewJob>,
}

/// Which changes to list, newest first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChangeFilter {
    /// Only changes in one of these states (all when empty).
    pub states: Vec<String>,
    pub requester: Option<String>,
    pub limit: Option<u32>,
}

/// A maintenance window, a change freeze, or a schedule template.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CalendarKind {
    Window,
    Freeze,
    Template,
}

impl CalendarKind {
    pub fn as_str(self) -> &'static str {
        match self {
            CalendarKind::Window => "window",
            CalendarKind::Freeze => "freeze",
            CalendarKind::Template => "template",
        }
    }

    pub fn parse(s: &str) -> Option<CalendarKind> {
        match s {
            "window" => Some(CalendarKind::Window),
            "freeze" => Some(CalendarKind::Freeze),
            "template" => Some(CalendarKind::Template),
            _ => None,
        }
    }
}

/// A named calendar entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CalendarEntry {
    pub name: String,
    pub kind: CalendarKind,
    pub body: Value,
    pub updated_at: Timestamp,
}

/// The number of the `seq`th change of `year`.
pub fn change_number(year: i16, seq: i64) -> String {
    format!("PCR-{year:04}-{seq:04}")
}

/// The counter a year's change numbers come from.
pub fn number_counter(year: i16) -> String {
    format!("change_number:{year}")
}

impl NewChange {
    /// Checks the fields; returns the body as JSON text.
    pub fn check(&self) -> Result<String> {
        if !(1970..=9999).contains(&self.year) {
            return Err(StoreError::Invalid {
                field: "change year",
                reason: format!("{} is not a calendar year", self.year),
            });
        }
        check_kind(&self.kind)?;
        check_name("change state", &self.state, MAX_NAME)?;
        check_name("change requester", &self.requester, MAX_NAME)?;
        crate::codec::to_json("change body", &self.body, MAX_CHANGE_JSON)
    }
}

impl ChangeUpdate {
    /// Checks the fields; returns the body as JSON text and each job's kind as JSON text.
    pub fn check(&self) -> Result<(String, Vec<String>)> {
        check_name("change state", &self.state, MAX_NAME)?;
        if self.jobs.len() > MAX_JOBS_PER_UPDATE {
            return Err(StoreError::Invalid {
                field: "change jobs",
                reason: format!("more than {MAX_JOBS_PER_UPDATE} jobs in one update"),
            });
        }
        let body = crate::codec::to_json("change body", &self.body, MAX_CHANGE_JSON)?;
        let jobs = self
            .jobs
            .iter()
            .map(NewJob::check)
            .collect::<Result<Vec<_>>>()?;
        Ok((body, jobs))
    }
}

fn check_kind(kind: &str) -> Result<()> {
    if matches!(kind, "standard" | "normal" | "emergency") {
        Ok(())
    } else {
        Err(StoreError::Invalid {
            field: "change kind",
            reason: format!("{kind:?} is not standard, normal or emergency"),
        })
    }
}

/// Checks a calendar entry; returns its body as JSON text.
pub fn check_calendar_entry(name: &str, body: &Value) -> Result<String> {
    check_name("calendar entry name", name, MAX_NAME)?;
    crate::codec::to_json("calendar entry", body, MAX_CALENDAR_JSON)
}
