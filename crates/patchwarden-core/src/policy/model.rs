//! The policy model: classes, clocks, rules and overrides, as read from a policy file.
//!
//! A [`Policy`] is one file: a shipped preset or an organisation's own. Its rules say, for the
//! findings their condition holds for, which class the finding is in and when it is due,
//! counted from which event. Values are only made by the file reader ([`Policy::parse`]) after
//! the whole file has been checked, so a `Policy` is always consistent.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::condition::Condition;
use super::period::{Due, Period};
use super::words::word_enum;

word_enum! {
    /// How urgent a finding is. Ordered: `Emergency` is the highest.
    pub enum Class as "class" {
        /// Does not apply to this asset or environment (outside a framework's scope, or an
        /// operator found the vulnerability not applicable).
        NotApplicable = "not_applicable",
        Low = "low",
        Medium = "medium",
        High = "high",
        /// An imminent threat: may be deployed before testing (seed 000 §6.7.4).
        Emergency = "emergency",
    }
}

word_enum! {
    /// The event a deadline is counted from.
    pub enum ClockStart as "clock event" {
        /// The fix became available (the fixing advisory was published): seed 000, PCI DSS,
        /// the Essential Eight, Cyber Essentials.
        FixReleased = "fix_released",
        /// The vulnerability was first published.
        Published = "published",
        /// The finding was first detected on this host: FedRAMP RA-5(d), BOD 19-02.
        Detected = "detected",
        /// CISA added the CVE to the KEV catalogue: BOD 22-01, BOD 26-04's KEV rows.
        KevAdded = "kev_added",
        /// A person evaluated (triaged) the finding: FedRAMP VDR.
        Evaluated = "evaluated",
    }
}

word_enum! {
    /// Whether a policy is in force.
    pub enum PolicyStatus as "policy status" {
        /// In force.
        Final = "final",
        /// Proposed, not yet in force.
        Proposed = "proposed",
        /// Revoked or superseded; kept for organisations still asked to report against it.
        Revoked = "revoked",
    }
}

/// One policy: a preset or an organisation's file.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Policy {
    /// Short name (`seed-default`, `pci-dss-4.0.1`, `acme`).
    pub id: String,
    /// One line saying what it is.
    pub title: String,
    pub status: PolicyStatus,
    /// Where its rules come from (URLs, documents, sections).
    pub sources: Vec<String>,
    /// The assets it applies to; findings on other assets are [`Class::NotApplicable`] under
    /// it. `None`: every asset.
    pub scope: Option<Condition>,
    pub clock: ClockPolicy,
    pub deadlines: Deadlines,
    /// What an asset whose exposure is not labelled counts as (BOD 26-04: exposed).
    pub unknown_exposure: Option<super::facts::Exposure>,
    pub rules: Vec<Rule>,
    pub overrides: Vec<Override>,
}

/// The policy's default clock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ClockPolicy {
    /// The event rules count from unless they say otherwise.
    pub start: ClockStart,
    /// Events to count from, in order, when a rule's event time is not known. When none is
    /// known either, the clock starts at the evaluation (`evaluated`), which is always known.
    pub fallback: Vec<ClockStart>,
}

/// The default deadline of each class, used by rules that do not give their own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Deadlines {
    pub emergency: Due,
    pub high: Due,
    pub medium: Due,
    pub low: Due,
}

impl Default for Deadlines {
    /// Seed 000 §6.9.5: 8 hours, 30, 60 and 90 days of availability.
    fn default() -> Deadlines {
        use super::period::Unit::{Days, Hours};
        Deadlines {
            emergency: Due::After(Period::constant(8, Hours)),
            high: Due::After(Period::constant(30, Days)),
            medium: Due::After(Period::constant(60, Days)),
            low: Due::After(Period::constant(90, Days)),
        }
    }
}

impl Deadlines {
    /// The deadline of a class; not-applicable findings have none.
    pub fn of(&self, class: Class) -> Due {
        match class {
            Class::Emergency => self.emergency,
            Class::High => self.high,
            Class::Medium => self.medium,
            Class::Low => self.low,
            Class::NotApplicable => Due::Never,
        }
    }
}

/// One rule.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Rule {
    /// Unique within its policy.
    pub id: String,
    /// What the rule says, for people: shown by `--explain`.
    pub description: String,
    /// When it applies; an empty `all` always applies.
    pub when: Condition,
    /// The class it gives; `None` for rules that only set a due date (FedRAMP's KEV rule).
    pub class: Option<Class>,
    /// When it makes the finding due; `None`: the class's default deadline.
    pub due: Option<Due>,
    /// The event its clock starts at; `None`: the policy's.
    pub clock: Option<ClockStart>,
    /// Its due date replaces the due dates of the policy's other matching rules instead of
    /// competing with them ("the KEV due date supersedes", FedRAMP).
    pub supersede: bool,
    /// Intermediate deadlines counted from the same clock (BOD 26-04's triage steps).
    pub milestones: Vec<Milestone>,
    /// What else the framework demands when the rule applies (`forensic_triage`).
    pub actions: Vec<String>,
}

impl Rule {
    /// The deadline this rule gives, in a policy with these class deadlines.
    pub fn effective_due(&self, deadlines: &Deadlines) -> Option<Due> {
        self.due.or_else(|| self.class.map(|c| deadlines.of(c)))
    }
}

/// A step due before the deadline, counted from the rule's clock start.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Milestone {
    pub name: String,
    pub within: Period,
}

/// A reason people gave for a decision; never empty.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Reason(String);

/// An override or exception was given without a reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("an override needs a reason: say why the class differs from what the rules say")]
pub struct MissingReason;

impl Reason {
    pub fn new(text: &str) -> Result<Reason, MissingReason> {
        let text = text.trim();
        if text.is_empty() {
            Err(MissingReason)
        } else {
            Ok(Reason(text.to_owned()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Reason {
    type Error = MissingReason;

    fn try_from(s: String) -> Result<Reason, MissingReason> {
        Reason::new(&s)
    }
}

impl From<Reason> for String {
    fn from(r: Reason) -> String {
        r.0
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A manual decision: this vulnerability (optionally only on one host, or in one package) is
/// in this class, for this reason. Overrides take precedence over every rule of every policy;
/// the rules' verdicts are still recorded beside them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Override {
    /// The vulnerability's id or one of its aliases.
    pub vulnerability: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// The package's binary or source name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub package: Option<String>,
    pub class: Class,
    pub reason: Reason,
    /// Its own deadline; `None`: the class's deadline under the active policies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub due: Option<Due>,
    /// The event its own deadline counts from; `None`: `evaluated` (the decision).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clock: Option<ClockStart>,
}

impl Override {
    /// An override of one vulnerability everywhere.
    pub fn new(vulnerability: &str, class: Class, reason: Reason) -> Override {
        Override {
            vulnerability: vulnerability.to_owned(),
            host: None,
            package: None,
            class,
            reason,
            due: None,
            clock: None,
        }
    }

    /// How specific it is: host and package beat host, which beats package, which beats
    /// vulnerability alone.
    pub(crate) fn specificity(&self) -> u8 {
        u8::from(self.host.is_some()) * 2 + u8::from(self.package.is_some())
    }

    /// Whether it concerns this finding on this host.
    pub(crate) fn applies(&self, finding: &crate::finding::Finding, host: Option<&str>) -> bool {
        let names_it = std::iter::once(&finding.vulnerability)
            .chain(&finding.aliases)
            .any(|id| id.eq_ignore_ascii_case(&self.vulnerability));
        let host_ok = match &self.host {
            None => true,
            Some(h) => host.is_some_and(|x| x.eq_ignore_ascii_case(h)),
        };
        let package_ok = match &self.package {
            None => true,
            Some(p) => finding.package == *p || finding.source_package.as_deref() == Some(p),
        };
        names_it && host_ok && package_ok
    }
}
