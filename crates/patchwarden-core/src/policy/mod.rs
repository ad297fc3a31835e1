//! Classification and the SLA clock: which class a finding is in (Emergency, High, Medium,
//! Low, Not applicable), when it is due, counted from which event, and which policy and rule
//! said so.
//!
//! Organisations answer to their own patch policy (the seeds' "Emergency within 8 hours of
//! availability, High 30 days …") and often to outside frameworks (PCI DSS, CISA's binding
//! directives, the Essential Eight, Cyber Essentials, FedRAMP), each with its own criteria,
//! deadlines and the event its clock starts from. Each is a [`Policy`]: a TOML file of rules
//! (`docs/policy.md`), shipped as a preset ([`presets`]) or written by the organisation.
//! [`assess`] judges one finding under any number of them — the highest class and the
//! earliest due date win — and records every rule that matched, the one that won, the clock
//! event and its time, and the facts that were missing.
//!
//! Everything here is pure: files arrive as text, time arrives as `now`.

mod assess;
mod check;
mod check_when;
mod condition;
mod explain;
mod facts;
mod file;
mod model;
mod period;
pub mod presets;
mod raw;
mod ssvc;
mod threshold;
pub(crate) mod words;

pub use assess::{
    Assessment, ClockUse, Decision, MilestoneDue, MissingFact, PolicySummary, RuleMatch, SlaStatus,
    Undecided, Verdict, assess, classify, sla_status,
};
pub use condition::{Condition, CvssMajor, Glob, Missing, VendorLevel};
pub use facts::{AssetCriticality, AssetLabels, Exposure, FindingFacts, LabelError, Lookup, Role};
pub use file::{MAX_POLICY_BYTES, PolicyError, Problem};
pub use model::{
    Class, ClockPolicy, ClockStart, Deadlines, Milestone, MissingReason, Override, Policy,
    PolicyStatus, Reason, Rule,
};
pub use period::{Due, Period, PeriodError, Unit};
pub use presets::{PRESETS, Preset, preset};
pub use ssvc::{Exploitation, Ssvc, SsvcError, TechnicalImpact, ssvc_from_cve5};
pub use threshold::Threshold;
pub use words::UnknownWord;
