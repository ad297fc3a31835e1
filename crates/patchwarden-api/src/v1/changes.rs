//! Change requests (the patch control form of seed 000, Appendix A), their rollout in rings,
//! and the calendar of maintenance windows and change freezes.
//!
//! The state machine is `patchwarden_core::change`; these are the shapes operators send and
//! receive. A change is addressed by its number (`PCR-2026-0001`).

use jiff::Timestamp;
use patchwarden_core::change::{ChangeKind, ChangeState, HotfixConditions, Signed, Testing};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::jobs::{JobOutcome, JobState, PackageChange};
use super::manifest::HealthCheck;

/// `POST /api/v1/changes`, `GET` lists them.
pub const CHANGES_PATH: &str = "/api/v1/changes";
/// `GET`, `PUT` and `DELETE /api/v1/calendar[/{name}]`.
pub const CALENDAR_PATH: &str = "/api/v1/calendar";

/// The risk rating on the form.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Risk {
    Low,
    Medium,
    High,
}

impl Risk {
    /// The rating as the JSON spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Risk::Low => "low",
            Risk::Medium => "medium",
            Risk::High => "high",
        }
    }
}

/// One package to bring to a version: on every targeted host of `ecosystem` (all, when
/// `None`) that has the package installed at a lower version.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Patch {
    pub package: String,
    pub version: String,
    /// The OSV ecosystem of the hosts it applies to (`Debian:12`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ecosystem: Option<String>,
}

/// Which hosts a change touches.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Targets {
    #[serde(default)]
    pub hosts: Vec<Uuid>,
    #[serde(default)]
    pub groups: Vec<String>,
}

/// How the change rolls out: the test ring first, then the other rings in name order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RolloutPlan {
    /// The hosts' ring that tests the change (default `test`).
    #[serde(default = "default_test_ring")]
    pub test_ring: String,
    /// How long a ring runs without failure after its last host verified before the next
    /// starts (default 0).
    #[serde(default)]
    pub soak_minutes: u32,
    /// How many hosts of a ring may fail before the rollout halts and rolls back (default 0:
    /// the first failure halts it).
    #[serde(default)]
    pub max_failures: u32,
    /// The host label naming a failure domain (`hypervisor`, `site`, `rack`) …
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain_label: Option<String>,
    /// … and how many hosts of one domain may be patched at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_per_domain: Option<u32>,
    /// Rings that wait for an operator to promote them (`POST …/promote`) before they count
    /// as verified, whatever their hosts say.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gates: Vec<String>,
    /// Splits the hosts without a ring into broad waves, `{"size": 50}` or
    /// `{"percent": [10, 30, 60]}` (`broad-1`, `broad-2` …); one `broad` ring when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub waves: Option<patchwarden_core::rollout::Waves>,
}

fn default_test_ring() -> String {
    "test".into()
}

impl Default for RolloutPlan {
    fn default() -> RolloutPlan {
        RolloutPlan {
            test_ring: default_test_ring(),
            soak_minutes: 0,
            max_failures: 0,
            domain_label: None,
            max_per_domain: None,
            gates: Vec::new(),
            waves: None,
        }
    }
}

/// Which patches a change takes when it names none — a patch baseline as other tools know
/// them: the targeted hosts' open findings that have a fix, narrowed by criticality and by how
/// long the fix has been out, and optionally the hosts' available updates of some kinds from
/// their own repositories ("all security updates").
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Baseline {
    /// Only findings of at least this criticality.
    #[serde(default)]
    pub min_criticality: Option<super::fleet::Criticality>,
    /// Only fixes released at least this many days ago (a patch ages before it rolls out).
    #[serde(default)]
    pub min_age_days: Option<u32>,
    /// Also the hosts' available updates of these kinds (`security`, `bugfix`,
    /// `enhancement`, `unknown`).
    #[serde(default)]
    #[schema(value_type = Vec<String>)]
    pub update_kinds: Vec<patchwarden_core::inventory::UpdateKind>,
}

/// `POST /api/v1/changes`: a new draft.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewChangeRequest {
    #[schema(value_type = String)]
    pub kind: ChangeKind,
    pub title: String,
    /// Business justification.
    pub justification: String,
    pub risk: Risk,
    /// Nature and priority of the change, in words.
    #[serde(default)]
    pub priority: String,
    #[schema(value_type = Object)]
    pub testing: Testing,
    pub rollback_plan: String,
    pub targets: Targets,
    /// The patches; when empty, derived from the targeted hosts' open findings that have a
    /// fixed version (optionally only those named in `from_findings`).
    #[serde(default)]
    pub patches: Vec<Patch>,
    /// Only these vulnerabilities' findings, when patches are derived (all when empty).
    #[serde(default)]
    pub from_findings: Vec<String>,
    /// How patches are derived when none are given.
    #[serde(default)]
    pub baseline: Baseline,
    /// systemd units to restart after installing, in order.
    #[serde(default)]
    pub restart_order: Vec<String>,
    #[serde(default)]
    #[schema(value_type = Vec<Object>)]
    pub health_checks: Vec<HealthCheck>,
    #[serde(default)]
    pub reboot_allowed: bool,
    /// A hotfix or non-security update: the four conditions of seed 000 §7.1.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub hotfix: Option<HotfixConditions>,
    #[serde(default)]
    pub rollout: RolloutPlan,
}

/// `POST /api/v1/changes/{number}/reject` and `/cancel`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Reason {
    pub reason: String,
}

/// `POST /api/v1/changes/{number}/promote`: releases the manual gate of a ring.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Promote {
    pub ring: String,
}

/// `POST /api/v1/changes/{number}/schedule`: the change runs in the hosts' first maintenance
/// window from `not_before` (now, when absent) that no freeze covers; an emergency at once.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScheduleRequest {
    #[serde(default)]
    pub not_before: Option<Timestamp>,
    /// Follow this schedule template (a calendar entry of kind `template`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<String>,
}

/// Where one host of a rollout stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct HostRollout {
    pub host: Uuid,
    pub hostname: String,
    /// The install job, once the host's ring started.
    pub job: Option<Uuid>,
    #[schema(value_type = Option<String>)]
    pub job_state: Option<JobState>,
    #[schema(value_type = Option<String>)]
    pub outcome: Option<JobOutcome>,
    pub detail: Option<String>,
    #[schema(value_type = Vec<Object>)]
    pub changes: Vec<PackageChange>,
    /// The rollback job, when the rollout was rolled back.
    pub rollback_job: Option<Uuid>,
    #[schema(value_type = Option<String>)]
    pub rollback_state: Option<JobState>,
    /// Nothing to install: every patch is installed or not applicable here.
    pub nothing_to_do: bool,
}

/// Where a ring stands (the core's rollout rules decide).
pub use patchwarden_core::rollout::RingState;

/// One ring of a rollout.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RingView {
    pub name: String,
    /// Whether this is the test ring.
    pub test: bool,
    #[schema(value_type = String)]
    pub state: RingState,
    pub started_at: Option<Timestamp>,
    pub verified_at: Option<Timestamp>,
    pub hosts: Vec<HostRollout>,
}

/// An application a change affects, from its hosts' `application` and `impact` labels (seed
/// 002 §3.7: a maintenance notice names the applications and the impact on them).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AffectedApplication {
    pub application: String,
    /// What its users will notice (the hosts' `impact` label), when given.
    pub impact: Option<String>,
    pub hosts: Vec<String>,
}

/// A change as the API shows it: the form, its signatures, its schedule and its rollout.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ChangeView {
    pub id: Uuid,
    pub number: String,
    #[schema(value_type = String)]
    pub kind: ChangeKind,
    #[schema(value_type = String)]
    pub state: ChangeState,
    pub title: String,
    pub justification: String,
    pub risk: Risk,
    pub priority: String,
    #[schema(value_type = Object)]
    pub testing: Testing,
    pub rollback_plan: String,
    pub targets: Targets,
    pub patches: Vec<Patch>,
    pub restart_order: Vec<String>,
    #[schema(value_type = Vec<Object>)]
    pub health_checks: Vec<HealthCheck>,
    pub reboot_allowed: bool,
    #[schema(value_type = Option<Object>)]
    pub hotfix: Option<HotfixConditions>,
    pub rollout_plan: RolloutPlan,
    pub requester: String,
    pub created_at: Timestamp,
    #[schema(value_type = Option<Object>)]
    pub submitted: Option<Signed>,
    #[schema(value_type = Option<Object>)]
    pub approved: Option<Signed>,
    #[schema(value_type = Option<Object>)]
    pub authorised: Option<Signed>,
    #[schema(value_type = Option<Object>)]
    pub tested: Option<Signed>,
    #[schema(value_type = Option<Object>)]
    pub closed: Option<Signed>,
    /// Why it was rejected, failed, rolled back or cancelled.
    pub outcome_reason: Option<String>,
    /// The window it runs in, once scheduled.
    pub window_start: Option<Timestamp>,
    pub window_end: Option<Timestamp>,
    /// Findings the schedule will not meet, and other things the operator should know.
    pub warnings: Vec<String>,
    /// From when the scheduled change is announced (status page, notifications): the
    /// configured time ahead of its window; at once for an emergency.
    pub announce_at: Option<Timestamp>,
    pub affected_applications: Vec<AffectedApplication>,
    /// The schedule template it follows: its name, the anchor, and how long the test ring
    /// soaks before the broad rings (minutes).
    pub template: Option<(String, Timestamp, u32)>,
    pub rings: Vec<RingView>,
    /// Why the rollout halted, when it did.
    pub halted: Option<String>,
    /// The gated rings an operator promoted, with who and when.
    #[schema(value_type = Vec<Object>)]
    pub promoted: Vec<(String, Signed)>,
    /// Counts updates; shown so a reader can tell two views apart.
    pub revision: i64,
}

/// `GET /api/v1/changes` filters.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ChangeQuery {
    /// Only changes in this state.
    pub state: Option<String>,
    /// Only changes this operator requested.
    pub requester: Option<String>,
    /// At most this many (default 100, at most 1000).
    pub limit: Option<u32>,
}

/// A maintenance window: from each start the RFC 5545 rule gives, in the zone's local time,
/// for `duration_minutes`; for the hosts of `groups` (all hosts when empty).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WindowSpec {
    /// `FREQ=MONTHLY;BYDAY=2TU` …
    pub rrule: String,
    /// The first start, local time (`2026-01-13T20:00`).
    pub start: String,
    /// IANA zone (`Europe/London`).
    pub time_zone: String,
    pub duration_minutes: u32,
    #[serde(default)]
    pub groups: Vec<String>,
}

/// A change freeze: no change but an emergency touches hosts in `[start, end)`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FreezeSpec {
    pub start: Timestamp,
    pub end: Timestamp,
    #[serde(default)]
    pub reason: String,
}

/// A schedule template (seed 001 step 9): an anchor recurring by its rule ("the second
/// Tuesday at 20:00"), the test ring from `test_after_hours` after it, the broad rings
/// `broad_after_test_days` after the test ring verified. A change scheduled with it follows
/// the first anchor whose test time is still ahead.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TemplateSpec {
    pub rrule: String,
    /// The first anchor, local time.
    pub start: String,
    pub time_zone: String,
    pub test_after_hours: u32,
    pub broad_after_test_days: u32,
}

/// `PUT /api/v1/calendar/{name}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum CalendarSpec {
    Window(WindowSpec),
    Freeze(FreezeSpec),
    Template(TemplateSpec),
}

/// A calendar entry with its next occurrences.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CalendarEntryView {
    pub name: String,
    pub spec: CalendarSpec,
    /// The next few times it is open (a window) or its span (a freeze), from now.
    pub next: Vec<(Timestamp, Timestamp)>,
    pub updated_at: Timestamp,
}
