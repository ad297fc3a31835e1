//! Jobs: the work the server leases to one host. The kinds are a closed set named here —
//! install these package versions, reboot, re-inventory, roll back — so no job can carry a
//! command to run: an agent that meets a kind it does not know refuses it (serde rejects the
//! unknown tag), and a compromised server can ask for nothing outside this list.
//!
//! A job is leased to one host with a deadline. The agent reports progress and exactly one
//! result; reports are idempotent by job id (a repeated identical result is acknowledged, a
//! different one is a conflict), and a job of another host reads as not found.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::manifest::Manifest;

/// `GET`: one job of this host; `/progress` and `/result` below it take `POST`s.
pub const JOBS_PATH: &str = "/api/v1/agent/jobs";

/// One exact package version to install (or to return to, for a rollback).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct PackagePin {
    pub name: String,
    /// The version as the host's package manager writes it.
    pub version: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arch: Option<String>,
}

/// What a job asks of the host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum JobKind {
    /// Install exactly these versions through the host's package manager, as the approved
    /// change's manifest (which the agent checks first) says.
    Install {
        packages: Vec<PackagePin>,
        manifest: Manifest,
    },
    /// Reboot the host (when the agent's policy allows it now).
    Reboot,
    /// Collect and upload the inventory now, in full.
    Reinventory,
    /// Return these packages to these versions (the versions before an install job).
    Rollback {
        packages: Vec<PackagePin>,
        /// The install job being undone.
        of_job: String,
        manifest: Manifest,
    },
}

impl JobKind {
    /// The kind's name as the JSON spells it.
    pub fn name(&self) -> &'static str {
        match self {
            JobKind::Install { .. } => "install",
            JobKind::Reboot => "reboot",
            JobKind::Reinventory => "reinventory",
            JobKind::Rollback { .. } => "rollback",
        }
    }
}

/// A job as the agent receives it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Job {
    pub id: String,
    /// What to do (a nested object, so its closed set of kinds is checked on its own).
    pub work: JobKind,
    pub state: JobState,
    /// The lease's deadline: a result after it is refused and the job may be leased again.
    pub lease_expires_at: Option<Timestamp>,
    /// How many times the job has been leased.
    pub attempt: u32,
}

/// Where a job stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    Queued,
    Leased,
    Running,
    Succeeded,
    /// Failed or refused on the host: the result's `outcome` says which.
    Failed,
}

impl JobState {
    /// Whether the job has its result.
    pub fn is_final(self) -> bool {
        matches!(self, JobState::Succeeded | JobState::Failed)
    }
}

/// `POST /api/v1/agent/jobs/{id}/progress`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobProgress {
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub percent: Option<u8>,
}

/// How a job ended on the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobOutcome {
    Succeeded,
    Failed,
    /// The agent would not do it (outside its policy, an unverifiable manifest …).
    Refused,
}

/// `POST /api/v1/agent/jobs/{id}/result`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobResult {
    pub outcome: JobOutcome,
    /// What happened, for people (the package manager's last lines, the reason for refusing).
    pub detail: String,
    /// The packages the job changed, with the versions before and after: the previous
    /// versions are what a rollback returns to.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub changes: Vec<PackageChange>,
    /// The verification after an install or rollback: the health checks and their outcome.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub checks: Vec<CheckOutcome>,
    /// Whether the host still needs a reboot to finish the change (it was not allowed one).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub reboot_required: bool,
}

impl JobResult {
    /// A result with only an outcome and its words.
    pub fn new(outcome: JobOutcome, detail: impl Into<String>) -> JobResult {
        JobResult {
            outcome,
            detail: detail.into(),
            changes: Vec::new(),
            checks: Vec::new(),
            reboot_required: false,
        }
    }
}

/// One package a job changed: `from` is `None` when it was newly installed, `to` is `None`
/// when it was removed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PackageChange {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arch: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
}

/// One health check's outcome after a job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckOutcome {
    /// The check, in words (`service nginx.service active`).
    pub check: String,
    pub passed: bool,
    pub detail: String,
}

/// A job's recorded result as the server stores it: the outcome and the agent's detail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordedResult {
    pub outcome: JobOutcome,
    pub detail: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub changes: Vec<PackageChange>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub checks: Vec<CheckOutcome>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub reboot_required: bool,
}

/// The answer to a progress or result report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobAck {
    pub id: String,
    pub state: JobState,
    /// `false` when this exact report had already been recorded (a retry).
    pub recorded: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_job_kind_outside_the_closed_set_does_not_parse() {
        let ok = r#"{"id":"j1","work":{"kind":"reboot"},"state":"leased","lease_expires_at":null,"attempt":1}"#;
        assert_eq!(
            serde_json::from_str::<Job>(ok).unwrap().work,
            JobKind::Reboot
        );
        let bad = r#"{"id":"j1","work":{"kind":"run_command","command":"rm -rf /"},"state":"leased","lease_expires_at":null,"attempt":1}"#;
        assert!(serde_json::from_str::<Job>(bad).is_err());
        let smuggled = r#"{"kind":"install","packages":[],"manifest":null,"command":"sh"}"#;
        assert!(serde_json::from_str::<JobKind>(smuggled).is_err());
    }
}
