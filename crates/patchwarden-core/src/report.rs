//! The monthly patch management compliance report (seed 000 Appendix B, with the KPIs of seed
//! 001 step 12) and the patch control form (seed 000 Appendix A), as pure functions: the
//! month's records in, the report's model out. The server gathers the records from the store
//! (`patchwarden-server/src/reports`) and renders the model as HTML, CSV and PDF; every number
//! and every "Yes/No" is decided here, so the three formats cannot disagree.
//!
//! Months are calendar months in UTC: `2026-10` runs from 2026-10-01T00:00Z (inclusive) to
//! 2026-11-01T00:00Z (exclusive).
//!
//! What the report counts (docs/reports.md says it for people):
//!
//! - **Rows**: one per change implemented in the month — closed in it, or verified in it and
//!   not yet closed, or failed or rolled back in it. A change submitted in one month and closed
//!   in the next appears in the month it was closed, once.
//! - **Change management process followed**: "Yes" when the change was approved and authorised
//!   by two people other than the requester (or pre-approved by a standard rule), tested in the
//!   test ring before the broad rings started (or testing was not required, with the reason, or
//!   an emergency recorded its testing afterwards), and every ring started inside the scheduled
//!   window (or it was an emergency). Otherwise "No", with each reason.
//! - **SLA attainment**: a finding with a due date counts in a month when it was closed in the
//!   month (on time when closed by its due date, late otherwise) or was still open at the end
//!   of the month past its due date (past due). A finding whose due date fell inside an
//!   exception in force, or that is past due under one at the month's end, counts as
//!   excepted, not as a breach.

mod csv;
mod form;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;

use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

use crate::change::{Change, ChangeKind, ChangeState, Testing};
use crate::exception::{Exception, ExceptionState};
use crate::policy::Class;

pub use csv::{csv_line, monthly_csv, neutralise};
pub use form::{ControlForm, FormSection, FormSignature, control_form};

/// The five column headers of Appendix B, in order.
pub const APPENDIX_B_COLUMNS: [&str; 5] = [
    "Patch Request Number",
    "Details of Change",
    "Change Documentation Attached",
    "Change Management Process Followed",
    "Details of Exceptions Noted",
];

/// A calendar month in UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Month {
    year: i16,
    month: i8,
}

/// Why a month could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{input:?} is not a month: {reason} (write it as YYYY-MM, e.g. 2026-10)")]
pub struct MonthError {
    pub input: String,
    pub reason: &'static str,
}

impl Month {
    /// The month `YYYY-MM` (years 1970 to 9998, so that its end is still a month).
    pub fn parse(s: &str) -> Result<Month, MonthError> {
        let err = |reason| MonthError {
            input: s.chars().take(32).collect(),
            reason,
        };
        let b = s.as_bytes();
        if b.len() != 7 || b[4] != b'-' {
            return Err(err("not of the form YYYY-MM"));
        }
        let digits = |r: std::ops::Range<usize>| -> Option<i32> {
            let part = s.get(r)?;
            part.bytes()
                .all(|c| c.is_ascii_digit())
                .then(|| part.parse().ok())
                .flatten()
        };
        let (Some(year), Some(month)) = (digits(0..4), digits(5..7)) else {
            return Err(err("the year and month must be digits"));
        };
        if !(1970..=9998).contains(&year) {
            return Err(err("the year is outside 1970 to 9998"));
        }
        if !(1..=12).contains(&month) {
            return Err(err("the month is outside 01 to 12"));
        }
        Ok(Month {
            year: year as i16,
            month: month as i8,
        })
    }

    /// The month a moment falls in (UTC).
    pub fn of(t: Timestamp) -> Month {
        let d = t.to_zoned(TimeZone::UTC).date();
        Month {
            year: d.year(),
            month: d.month(),
        }
    }

    fn first_day(self) -> Date {
        // Valid by construction: `parse` and `of` give real months.
        Date::new(self.year, self.month, 1).unwrap_or(Date::MIN)
    }

    /// Its first instant.
    pub fn start(self) -> Timestamp {
        self.first_day()
            .to_zoned(TimeZone::UTC)
            .map(|z| z.timestamp())
            .unwrap_or(Timestamp::MIN)
    }

    /// The first instant of the next month (the month ends before it).
    pub fn end(self) -> Timestamp {
        self.next().start()
    }

    pub fn next(self) -> Month {
        if self.month == 12 {
            Month {
                year: self.year + 1,
                month: 1,
            }
        } else {
            Month {
                year: self.year,
                month: self.month + 1,
            }
        }
    }

    pub fn previous(self) -> Month {
        if self.month == 1 {
            Month {
                year: self.year - 1,
                month: 12,
            }
        } else {
            Month {
                year: self.year,
                month: self.month - 1,
            }
        }
    }

    pub fn contains(self, t: Timestamp) -> bool {
        self.start() <= t && t < self.end()
    }

    /// "October 2026".
    pub fn title(self) -> String {
        const NAMES: [&str; 12] = [
            "January",
            "February",
            "March",
            "April",
            "May",
            "June",
            "July",
            "August",
            "September",
            "October",
            "November",
            "December",
        ];
        let name = NAMES.get((self.month - 1) as usize).copied().unwrap_or("?");
        format!("{name} {}", self.year)
    }
}

impl fmt::Display for Month {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}", self.year, self.month)
    }
}

/// How one host's install of a change went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InstallOutcome {
    Succeeded,
    Failed,
    /// The agent would not run it (an unverifiable manifest, outside its policy).
    Refused,
    /// Not reported yet.
    Pending,
    /// The host already had the patches.
    NothingToDo,
}

/// One host in a ring of a change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstallRecord {
    pub host: String,
    /// The packages the host got (`name version`).
    pub packages: Vec<String>,
    pub outcome: InstallOutcome,
    /// When the agent reported.
    pub at: Option<Timestamp>,
    /// A rollback job ran on the host.
    pub rolled_back: bool,
}

/// A ring of a change's rollout.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RingRecord {
    pub name: String,
    pub test: bool,
    pub started_at: Option<Timestamp>,
    pub verified_at: Option<Timestamp>,
    pub installs: Vec<InstallRecord>,
}

/// A change request as the report reads it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeRecord {
    pub number: String,
    pub title: String,
    /// The systems affected: the target groups and the hosts' names.
    pub systems: Vec<String>,
    /// The patches (`name version`).
    pub patches: Vec<String>,
    /// The packages the patches name, to link the change to findings.
    pub patch_packages: Vec<String>,
    pub risk: String,
    pub priority: String,
    pub restart_order: Vec<String>,
    pub health_checks: usize,
    pub reboot_allowed: bool,
    /// The form and its signatures, as the state machine keeps them.
    pub change: Change,
    /// The window it was scheduled into.
    pub window: Option<(Timestamp, Timestamp)>,
    pub rings: Vec<RingRecord>,
    /// Why the rollout halted, if it did.
    pub halted: Option<String>,
    pub created_at: Timestamp,
    /// Its last update: when a failed or rolled-back change reached its state.
    pub updated_at: Timestamp,
}

impl ChangeRecord {
    /// When the change was implemented, for the month it is reported in: closed, else the
    /// last ring verified (implemented, not yet closed), else its failure or rollback.
    pub fn implemented_at(&self) -> Option<Timestamp> {
        match self.change.state {
            ChangeState::Closed => self.change.closed.as_ref().map(|s| s.at),
            ChangeState::Verified => self
                .rings
                .iter()
                .filter_map(|r| r.verified_at)
                .max()
                .or(Some(self.updated_at)),
            ChangeState::Failed | ChangeState::RolledBack => Some(self.updated_at),
            _ => None,
        }
    }

    fn hosts(&self) -> BTreeSet<&str> {
        self.rings
            .iter()
            .flat_map(|r| r.installs.iter().map(|i| i.host.as_str()))
            .collect()
    }

    fn first_broad_start(&self) -> Option<Timestamp> {
        self.rings
            .iter()
            .filter(|r| !r.test)
            .filter_map(|r| r.started_at)
            .min()
    }
}

/// When an exception covered a finding: from its approval to its expiry or revocation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExceptionSpan {
    pub number: String,
    pub from: Timestamp,
    pub until: Timestamp,
}

impl ExceptionSpan {
    /// The span an exception covers, `None` when it was never approved.
    pub fn of(number: &str, e: &Exception) -> Option<ExceptionSpan> {
        // A revoked exception no longer names its approval; it covered from its request (it
        // was approved in between) until its revocation.
        let (from, until) = match &e.state {
            ExceptionState::Approved { at, .. } => (*at, e.request.expires_at),
            ExceptionState::Revoked { at, .. } => {
                (e.request.requested_at, (*at).min(e.request.expires_at))
            }
            ExceptionState::Requested | ExceptionState::Rejected { .. } => return None,
        };
        Some(ExceptionSpan {
            number: number.to_owned(),
            from,
            until,
        })
    }

    pub fn covers(&self, t: Timestamp) -> bool {
        self.from <= t && t < self.until
    }

    fn overlaps(&self, from: Timestamp, until: Timestamp) -> bool {
        self.from < until && from < self.until
    }
}

/// A finding as the report reads it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FindingRecord {
    pub host: String,
    pub group: String,
    pub vulnerability: String,
    pub package: String,
    pub class: Option<Class>,
    pub policy: Option<String>,
    /// The rule of the policy that set its class (`None`: the policy's scope or class
    /// deadline).
    pub rule: Option<String>,
    pub first_seen: Timestamp,
    /// When its fix was released.
    pub available_at: Option<Timestamp>,
    pub due_at: Option<Timestamp>,
    pub closed_at: Option<Timestamp>,
    pub fixed_version: Option<String>,
    /// The exceptions approved for it, with their spans.
    pub exceptions: Vec<ExceptionSpan>,
}

impl FindingRecord {
    fn excepted_at(&self, t: Timestamp) -> Option<&ExceptionSpan> {
        self.exceptions.iter().find(|s| s.covers(t))
    }

    fn open_at(&self, t: Timestamp) -> bool {
        self.first_seen < t && self.closed_at.is_none_or(|c| c >= t)
    }
}

/// An exception as the report lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExceptionRecord {
    pub number: String,
    /// What it covers, in words (hosts and findings).
    pub scope: String,
    pub exception: Exception,
}

/// A host and how often it reported its inventory in the month.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostRecord {
    pub hostname: String,
    pub group: String,
    pub last_seen: Option<Timestamp>,
    /// Inventory scans the server received from it in the month.
    pub scans: u32,
}

/// Everything the report is computed from. The gatherer passes changes updated since the
/// month began (the report picks those implemented in it, and later ones that resubmit a
/// failed install), the findings that were open at some moment of the month, every exception,
/// and every host.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct MonthRecords {
    pub changes: Vec<ChangeRecord>,
    pub findings: Vec<FindingRecord>,
    pub exceptions: Vec<ExceptionRecord>,
    pub hosts: Vec<HostRecord>,
}

/// One row of Appendix B.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ComplianceRow {
    pub number: String,
    pub details: String,
    /// What the change record holds, one item each.
    pub documentation: Vec<String>,
    pub process_followed: bool,
    /// Why not (when not followed), or how (an emergency, a standard rule).
    pub process_notes: Vec<String>,
    pub exceptions: Vec<String>,
}

impl ComplianceRow {
    pub fn followed_text(&self) -> String {
        let answer = if self.process_followed { "Yes" } else { "No" };
        if self.process_notes.is_empty() {
            answer.to_owned()
        } else {
            format!("{answer}: {}", self.process_notes.join("; "))
        }
    }

    pub fn documentation_text(&self) -> String {
        self.documentation.join("; ")
    }

    pub fn exceptions_text(&self) -> String {
        if self.exceptions.is_empty() {
            "None".to_owned()
        } else {
            self.exceptions.join("; ")
        }
    }

    /// The five cells, in the order of [`APPENDIX_B_COLUMNS`].
    pub fn cells(&self) -> [String; 5] {
        [
            self.number.clone(),
            self.details.clone(),
            self.documentation_text(),
            self.followed_text(),
            self.exceptions_text(),
        ]
    }
}

/// How a finding fared against its deadline in the month.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SlaOutcome {
    OnTime,
    Late,
    PastDue,
    Excepted,
}

/// SLA attainment of one class or one rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SlaLine {
    /// The class, or `policy / rule`.
    pub key: String,
    pub on_time: u32,
    pub late: u32,
    pub past_due: u32,
    pub excepted: u32,
}

impl SlaLine {
    fn new(key: String) -> SlaLine {
        SlaLine {
            key,
            on_time: 0,
            late: 0,
            past_due: 0,
            excepted: 0,
        }
    }

    fn count(&mut self, o: SlaOutcome) {
        match o {
            SlaOutcome::OnTime => self.on_time += 1,
            SlaOutcome::Late => self.late += 1,
            SlaOutcome::PastDue => self.past_due += 1,
            SlaOutcome::Excepted => self.excepted += 1,
        }
    }

    /// Breaches: closed late, or past due at the month's end.
    pub fn breaches(&self) -> u32 {
        self.late + self.past_due
    }

    /// On time among those judged (excepted ones left out); `None` when none was judged.
    pub fn rate(&self) -> Option<f64> {
        let judged = self.on_time + self.late + self.past_due;
        (judged > 0).then(|| f64::from(self.on_time) / f64::from(judged))
    }

    pub fn rate_text(&self) -> String {
        percent(self.rate())
    }
}

/// "87.5%", or "n/a" when nothing was judged.
pub fn percent(rate: Option<f64>) -> String {
    match rate {
        Some(r) => format!("{:.1}%", r * 100.0),
        None => "n/a".to_owned(),
    }
}

/// The KPIs of seed 001 step 12.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Kpis {
    /// Emergency, High, Medium, Low, always in this order.
    pub by_class: Vec<SlaLine>,
    pub breaches: u32,
    /// Findings closed in the month: mean time from detection to the fix installed.
    pub mean_time_to_patch: Option<SignedDuration>,
    /// The same from the fix's release.
    pub mean_release_to_install: Option<SignedDuration>,
    pub findings_closed: u32,
    pub installs_succeeded: u32,
    pub installs_failed: u32,
    /// Failed installs that a later install of the same packages on the same host retried.
    pub failed_resubmitted: u32,
    pub failed_not_resubmitted: Vec<String>,
    pub changes: u32,
    pub changes_followed: u32,
}

impl Kpis {
    pub fn install_success_rate(&self) -> String {
        let all = self.installs_succeeded + self.installs_failed;
        percent((all > 0).then(|| f64::from(self.installs_succeeded) / f64::from(all)))
    }
}

/// A duration in days with one decimal, for people.
pub fn days(d: Option<SignedDuration>) -> String {
    match d {
        Some(d) => format!("{:.1} d", d.as_secs_f64() / 86_400.0),
        None => "n/a".to_owned(),
    }
}

/// One patch (package and fixed version) installed in the month: its release against its
/// installs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstallVsRelease {
    pub package: String,
    pub version: String,
    pub released: Option<Timestamp>,
    pub hosts: u32,
    pub first_install: Timestamp,
    pub last_install: Timestamp,
    /// The longest release-to-install on any host.
    pub longest: Option<SignedDuration>,
    /// Installs after their due date.
    pub late: u32,
}

/// A finding past its due date at the month's end.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PastDue {
    pub host: String,
    pub group: String,
    pub vulnerability: String,
    pub package: String,
    pub class: String,
    pub rule: String,
    pub due_at: Timestamp,
    pub overdue: SignedDuration,
}

/// An exception in force at some moment of the month.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExceptionLine {
    pub number: String,
    pub scope: String,
    pub justification: String,
    pub requester: String,
    pub approver: String,
    pub approved_at: Option<Timestamp>,
    pub controls: Vec<String>,
    pub expires_at: Timestamp,
    pub state: String,
}

/// The monthly report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MonthlyReport {
    pub month: Month,
    pub generated_at: Timestamp,
    pub rows: Vec<ComplianceRow>,
    pub kpis: Kpis,
    pub install_vs_release: Vec<InstallVsRelease>,
    pub past_due: Vec<PastDue>,
    pub sla_by_rule: Vec<SlaLine>,
    pub exceptions: Vec<ExceptionLine>,
    pub hosts: Vec<HostRecord>,
}

/// The report for `month` from its records, as of `now` (a month not yet over is reported up
/// to `now`: nothing later exists).
pub fn monthly(month: Month, records: &MonthRecords, now: Timestamp) -> MonthlyReport {
    let (start, end) = (month.start(), month.end());
    let mut changes: Vec<&ChangeRecord> = records
        .changes
        .iter()
        .filter(|c| c.implemented_at().is_some_and(|t| month.contains(t)))
        .collect();
    changes.sort_by(|a, b| a.number.cmp(&b.number));

    // Findings under an exception, by host and package: what a row looks up (few of all).
    let mut excepted: HashMap<(&str, &str), Vec<&FindingRecord>> = HashMap::new();
    for f in records.findings.iter().filter(|f| !f.exceptions.is_empty()) {
        excepted
            .entry((f.host.as_str(), f.package.as_str()))
            .or_default()
            .push(f);
    }
    let rows: Vec<ComplianceRow> = changes.iter().map(|c| row(c, &excepted)).collect();

    // Installs that may retry a failed one, by host: (ring start, change, install).
    let mut retries: HashMap<&str, Vec<(Timestamp, &str, &InstallRecord)>> = HashMap::new();
    for c in &records.changes {
        for r in &c.rings {
            let Some(started) = r.started_at else {
                continue;
            };
            for j in &r.installs {
                if matches!(
                    j.outcome,
                    InstallOutcome::Succeeded
                        | InstallOutcome::Pending
                        | InstallOutcome::NothingToDo
                ) {
                    retries.entry(j.host.as_str()).or_default().push((
                        started,
                        c.number.as_str(),
                        j,
                    ));
                }
            }
        }
    }

    // Installs and their resubmission.
    let (mut ok, mut failed, mut resubmitted) = (0, 0, 0);
    let mut not_resubmitted = Vec::new();
    for c in &changes {
        for ring in &c.rings {
            for i in &ring.installs {
                match i.outcome {
                    InstallOutcome::Succeeded => ok += 1,
                    InstallOutcome::Failed | InstallOutcome::Refused => {
                        failed += 1;
                        let at = i.at.or(ring.started_at).unwrap_or(c.updated_at);
                        if retried(&retries, c, i, at) {
                            resubmitted += 1;
                        } else {
                            not_resubmitted.push(format!("{} on {}", c.number, i.host));
                        }
                    }
                    InstallOutcome::Pending | InstallOutcome::NothingToDo => {}
                }
            }
        }
    }

    // Findings against their deadlines.
    let mut by_class: Vec<SlaLine> = [Class::Emergency, Class::High, Class::Medium, Class::Low]
        .iter()
        .map(|c| SlaLine::new(class_name(Some(*c))))
        .collect();
    let mut by_rule: BTreeMap<String, SlaLine> = BTreeMap::new();
    let mut past_due = Vec::new();
    let mut patch_time = Vec::new();
    let mut release_time = Vec::new();
    let mut patches: BTreeMap<(String, String), InstallVsRelease> = BTreeMap::new();
    let cutoff = end.min(now.max(start));
    for f in &records.findings {
        let closed_in_month = f.closed_at.is_some_and(|t| month.contains(t));
        if let Some(closed) = f.closed_at.filter(|_| closed_in_month) {
            patch_time.push(closed.duration_since(f.first_seen));
            if let Some(r) = f.available_at {
                release_time.push(closed.duration_since(r));
            }
            if let Some(v) = &f.fixed_version {
                let late = f.due_at.is_some_and(|d| closed > d);
                let e = patches
                    .entry((f.package.clone(), v.clone()))
                    .or_insert_with(|| InstallVsRelease {
                        package: f.package.clone(),
                        version: v.clone(),
                        released: f.available_at,
                        hosts: 0,
                        first_install: closed,
                        last_install: closed,
                        longest: None,
                        late: 0,
                    });
                e.hosts += 1;
                e.first_install = e.first_install.min(closed);
                e.last_install = e.last_install.max(closed);
                e.released = match (e.released, f.available_at) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                };
                if let Some(r) = f.available_at {
                    let d = closed.duration_since(r);
                    e.longest = Some(e.longest.map_or(d, |l| l.max(d)));
                }
                e.late += u32::from(late);
            }
        }
        let Some(outcome) = sla_outcome(f, closed_in_month, cutoff) else {
            continue;
        };
        let line = match f.class {
            Some(Class::Emergency) => Some(0),
            Some(Class::High) => Some(1),
            Some(Class::Medium) => Some(2),
            Some(Class::Low) => Some(3),
            _ => None,
        };
        if let Some(line) = line.and_then(|i| by_class.get_mut(i)) {
            line.count(outcome);
        }
        let rule_key = format!(
            "{} / {}",
            f.policy.as_deref().unwrap_or("-"),
            f.rule.as_deref().unwrap_or("class deadline")
        );
        by_rule
            .entry(rule_key.clone())
            .or_insert_with(|| SlaLine::new(rule_key))
            .count(outcome);
        if outcome == SlaOutcome::PastDue
            && let Some(due) = f.due_at
        {
            past_due.push(PastDue {
                host: f.host.clone(),
                group: f.group.clone(),
                vulnerability: f.vulnerability.clone(),
                package: f.package.clone(),
                class: class_name(f.class),
                rule: f.rule.clone().unwrap_or_else(|| "class deadline".into()),
                due_at: due,
                overdue: cutoff.duration_since(due),
            });
        }
    }
    past_due.sort_by(|a, b| {
        a.due_at
            .cmp(&b.due_at)
            .then_with(|| a.host.cmp(&b.host))
            .then_with(|| a.vulnerability.cmp(&b.vulnerability))
    });
    let breaches = by_class.iter().map(SlaLine::breaches).sum();

    let exceptions = records
        .exceptions
        .iter()
        .filter(|e| {
            ExceptionSpan::of(&e.number, &e.exception).is_some_and(|s| s.overlaps(start, end))
        })
        .map(exception_line)
        .collect();

    let mut hosts = records.hosts.clone();
    hosts.sort_by(|a, b| a.group.cmp(&b.group).then(a.hostname.cmp(&b.hostname)));

    MonthlyReport {
        month,
        generated_at: now,
        kpis: Kpis {
            by_class,
            breaches,
            mean_time_to_patch: mean(&patch_time),
            mean_release_to_install: mean(&release_time),
            findings_closed: patch_time.len() as u32,
            installs_succeeded: ok,
            installs_failed: failed,
            failed_resubmitted: resubmitted,
            failed_not_resubmitted: not_resubmitted,
            changes: rows.len() as u32,
            changes_followed: rows.iter().filter(|r| r.process_followed).count() as u32,
        },
        rows,
        install_vs_release: patches.into_values().collect(),
        past_due,
        sla_by_rule: by_rule.into_values().collect(),
        exceptions,
        hosts,
    }
}

/// How a finding counts in the month, `None` when it does not (no due date, not applicable,
/// not yet due, or closed in another month).
fn sla_outcome(f: &FindingRecord, closed_in_month: bool, cutoff: Timestamp) -> Option<SlaOutcome> {
    let due = f.due_at?;
    if f.class.is_none() || f.class == Some(Class::NotApplicable) {
        return None;
    }
    if closed_in_month {
        let closed = f.closed_at?;
        return Some(if closed <= due {
            SlaOutcome::OnTime
        } else if f.excepted_at(due).is_some() {
            SlaOutcome::Excepted
        } else {
            SlaOutcome::Late
        });
    }
    if f.open_at(cutoff) && due < cutoff {
        return Some(if f.excepted_at(cutoff).is_some() {
            SlaOutcome::Excepted
        } else {
            SlaOutcome::PastDue
        });
    }
    None
}

/// Whether a later change installed (or is installing) the failed packages on the same host.
fn retried(
    retries: &HashMap<&str, Vec<(Timestamp, &str, &InstallRecord)>>,
    failed: &ChangeRecord,
    i: &InstallRecord,
    at: Timestamp,
) -> bool {
    let name = |p: &str| p.split(' ').next().unwrap_or_default().to_owned();
    retries.get(i.host.as_str()).is_some_and(|later| {
        later.iter().any(|(started, number, j)| {
            *started > at
                && *number != failed.number
                && i.packages
                    .iter()
                    .all(|p| j.packages.iter().any(|q| name(q) == name(p)))
        })
    })
}

fn mean(ds: &[SignedDuration]) -> Option<SignedDuration> {
    if ds.is_empty() {
        return None;
    }
    let total: i128 = ds.iter().map(|d| i128::from(d.as_secs())).sum();
    let n = ds.len() as i128;
    Some(SignedDuration::from_secs((total / n) as i64))
}

/// "Emergency", "High" … or "Unclassified".
pub fn class_name(c: Option<Class>) -> String {
    match c {
        Some(Class::Emergency) => "Emergency",
        Some(Class::High) => "High",
        Some(Class::Medium) => "Medium",
        Some(Class::Low) => "Low",
        Some(Class::NotApplicable) => "Not applicable",
        None => "Unclassified",
    }
    .to_owned()
}

/// A date for people: `2026-10-14 09:30 UTC`.
pub fn when(t: Timestamp) -> String {
    t.strftime("%Y-%m-%d %H:%M UTC").to_string()
}

/// A day: `2026-10-14`.
pub fn day(t: Timestamp) -> String {
    t.strftime("%Y-%m-%d").to_string()
}

fn kind_name(k: ChangeKind) -> &'static str {
    match k {
        ChangeKind::Standard => "Standard",
        ChangeKind::Normal => "Normal",
        ChangeKind::Emergency => "Emergency",
    }
}

/// The Appendix B row of one change.
fn row(c: &ChangeRecord, excepted: &HashMap<(&str, &str), Vec<&FindingRecord>>) -> ComplianceRow {
    let ch = &c.change;
    let details = format!(
        "{} ({} change, {} risk, priority {}). Patches: {}. Systems: {}. Outcome: {}.",
        c.title,
        kind_name(ch.kind),
        c.risk,
        c.priority,
        list_or(&c.patches, "none"),
        list_or(&c.systems, "none"),
        ch.state.as_str().replace('_', " ")
    );

    let mut doc = Vec::new();
    doc.push("business justification".to_owned());
    doc.push("rollback plan".to_owned());
    for (what, s) in [
        ("approval", &ch.approved),
        ("authorisation", &ch.authorised),
    ] {
        if let Some(s) = s {
            doc.push(format!("{what} by {} on {}", s.by, day(s.at)));
        }
    }
    match (&ch.testing, &ch.tested) {
        (_, Some(t)) => {
            let ring = c
                .rings
                .iter()
                .find(|r| r.test)
                .map(|r| format!(" in ring {}", r.name))
                .unwrap_or_default();
            doc.push(format!(
                "testing evidence{ring}: passed, recorded by {} on {}",
                t.by,
                day(t.at)
            ));
        }
        (Testing::NotRequired { reason }, None) => {
            doc.push(format!("testing not required: {reason}"))
        }
        (Testing::Required, None) => {}
    }
    let installs: Vec<&InstallRecord> = c.rings.iter().flat_map(|r| &r.installs).collect();
    if !installs.is_empty() {
        let count = |o: InstallOutcome| installs.iter().filter(|i| i.outcome == o).count();
        doc.push(format!(
            "rollout results: {} hosts in {} rings, {} succeeded, {} failed, {} already patched{}",
            installs.len(),
            c.rings.len(),
            count(InstallOutcome::Succeeded),
            count(InstallOutcome::Failed) + count(InstallOutcome::Refused),
            count(InstallOutcome::NothingToDo),
            match installs.iter().filter(|i| i.rolled_back).count() {
                0 => String::new(),
                n => format!(", {n} rolled back"),
            }
        ));
    }
    if c.health_checks > 0 {
        doc.push(format!("{} health checks", c.health_checks));
    }
    if let Some(s) = &ch.closed {
        doc.push(format!("closure by {} on {}", s.by, day(s.at)));
    }

    let (followed, notes) = process(c);

    // Exceptions noted: exceptions in force for the change's findings while it ran, failures,
    // rollbacks, a halted rollout.
    let mut exceptions = Vec::new();
    let hosts = c.hosts();
    let begin = ch.submitted.as_ref().map_or(c.created_at, |s| s.at);
    let finish = c.implemented_at().unwrap_or(c.updated_at);
    let mut seen = BTreeSet::new();
    let findings = hosts.iter().flat_map(|h| {
        c.patch_packages
            .iter()
            .filter_map(move |p| excepted.get(&(*h, p.as_str())))
            .flatten()
    });
    for f in findings {
        for s in &f.exceptions {
            if s.overlaps(begin, finish.max(begin)) && seen.insert((s.number.clone(), &f.host)) {
                exceptions.push(format!(
                    "exception {} in force for {} on {} (until {})",
                    s.number,
                    f.package,
                    f.host,
                    day(s.until)
                ));
            }
        }
    }
    let failed: Vec<&str> = installs
        .iter()
        .filter(|i| matches!(i.outcome, InstallOutcome::Failed | InstallOutcome::Refused))
        .map(|i| i.host.as_str())
        .collect();
    if !failed.is_empty() {
        exceptions.push(format!("install failed on {}", failed.join(", ")));
    }
    let rolled: Vec<&str> = installs
        .iter()
        .filter(|i| i.rolled_back)
        .map(|i| i.host.as_str())
        .collect();
    if !rolled.is_empty() {
        exceptions.push(format!("rolled back on {}", rolled.join(", ")));
    }
    if let Some(h) = &c.halted {
        exceptions.push(format!("rollout halted: {h}"));
    }
    // The reason a failed change records is usually the halt's own words: said once.
    if matches!(ch.state, ChangeState::Failed | ChangeState::RolledBack)
        && let Some(r) = &ch.outcome_reason
        && c.halted.as_ref() != Some(r)
    {
        exceptions.push(format!("{}: {r}", ch.state.as_str().replace('_', " ")));
    }

    ComplianceRow {
        number: c.number.clone(),
        details,
        documentation: doc,
        process_followed: followed,
        process_notes: notes,
        exceptions,
    }
}

fn list_or(items: &[String], none: &str) -> String {
    if items.is_empty() {
        none.to_owned()
    } else {
        items.join(", ")
    }
}

/// Whether the change followed the process, and why not (or how, for the special paths).
fn process(c: &ChangeRecord) -> (bool, Vec<String>) {
    let ch = &c.change;
    let mut why_not = Vec::new();
    let mut how = Vec::new();
    let emergency = ch.kind == ChangeKind::Emergency;

    // Four eyes.
    match (&ch.approved, &ch.authorised) {
        (Some(a), Some(z)) => {
            let by_rule = a.by.starts_with("rule:") && z.by.starts_with("rule:");
            if by_rule {
                if ch.kind == ChangeKind::Standard {
                    how.push(format!("pre-approved standard change ({})", a.by));
                } else {
                    why_not.push("approved by a rule but not a standard change".into());
                }
            } else {
                if a.by == ch.requester {
                    why_not.push("approved by its requester".into());
                }
                if z.by == ch.requester {
                    why_not.push("authorised by its requester".into());
                }
                if a.by == z.by {
                    why_not.push("approved and authorised by the same person".into());
                }
            }
        }
        (None, _) => why_not.push("not approved".into()),
        (Some(_), None) => why_not.push("not authorised".into()),
    }

    // Testing before broad release.
    let broad = c.first_broad_start();
    match (&ch.testing, &ch.tested) {
        (Testing::NotRequired { reason }, _) => how.push(format!("testing not required: {reason}")),
        (Testing::Required, None) => match broad {
            Some(_) if emergency => why_not.push("no testing recorded".into()),
            Some(_) => why_not.push("broad rings started without passed tests".into()),
            // Tests failed (or never ran) and nothing went further: the process held.
            None if matches!(ch.state, ChangeState::Failed | ChangeState::RolledBack) => {
                how.push("tests failed in the test ring; nothing was released broadly".into())
            }
            None => why_not.push("no testing recorded".into()),
        },
        (Testing::Required, Some(t)) => {
            let test_ring = c.rings.iter().find(|r| r.test && !r.installs.is_empty());
            let tested_at = test_ring.and_then(|r| r.verified_at).unwrap_or(t.at);
            if let Some(b) = broad
                && tested_at > b
            {
                if emergency {
                    how.push("emergency: tested after deployment".into());
                } else {
                    why_not.push(format!(
                        "broad rings started {} before testing passed {}",
                        when(b),
                        when(tested_at)
                    ));
                }
            }
        }
    }

    // Windows.
    if emergency {
        how.push("emergency change: may deploy outside a window".into());
    } else {
        let started: Vec<(&str, Timestamp)> = c
            .rings
            .iter()
            .filter_map(|r| r.started_at.map(|s| (r.name.as_str(), s)))
            .collect();
        match c.window {
            None if !started.is_empty() => {
                why_not.push("deployed with no maintenance window recorded".into())
            }
            None => {}
            Some((from, until)) => {
                for (ring, at) in started {
                    if at < from || at >= until {
                        why_not.push(format!(
                            "ring {ring} started {} outside its window {} to {}",
                            when(at),
                            when(from),
                            when(until)
                        ));
                    }
                }
            }
        }
    }

    if why_not.is_empty() {
        (true, how)
    } else {
        (false, why_not)
    }
}

fn exception_line(e: &ExceptionRecord) -> ExceptionLine {
    use crate::exception::{ControlKind, Justification};
    let x = &e.exception;
    let (approver, approved_at) = match &x.state {
        ExceptionState::Approved { by, at } => (by.clone(), Some(*at)),
        ExceptionState::Revoked { .. } => ("(approved; revoked since)".into(), None),
        _ => ("-".into(), None),
    };
    let state = match &x.state {
        ExceptionState::Requested => "requested".to_owned(),
        ExceptionState::Approved { .. } => "approved".to_owned(),
        ExceptionState::Rejected { .. } => "rejected".to_owned(),
        ExceptionState::Revoked { by, at, reason } => {
            format!("revoked by {by} on {}: {reason}", day(*at))
        }
    };
    let justification = match x.request.justification {
        Justification::NoVendorPatch => "no vendor patch",
        Justification::PatchCausesInstability => "patch causes instability",
        Justification::Other => "other",
    };
    ExceptionLine {
        number: e.number.clone(),
        scope: e.scope.clone(),
        justification: format!("{justification}: {}", x.request.explanation),
        requester: x.request.requester.clone(),
        approver,
        approved_at,
        controls: x
            .request
            .controls
            .iter()
            .map(|c| {
                let kind = match c.kind {
                    ControlKind::NetworkSegmentation => "network segmentation",
                    ControlKind::AccessControlList => "access control list",
                    ControlKind::IntrusionPrevention => "intrusion prevention",
                    ControlKind::Other => "other",
                };
                format!("{kind}: {}", c.description)
            })
            .collect(),
        expires_at: x.request.expires_at,
        state,
    }
}
