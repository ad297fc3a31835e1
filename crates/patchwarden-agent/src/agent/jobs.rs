//! What the agent does with a leased job. The kinds are the API's closed set; each is either
//! done here, read-only (re-inventory), or belongs to the privileged executor (install,
//! reboot, roll back), which this agent does not have yet — such jobs are refused with that
//! reason rather than left to expire, so the operator sees why at once.

use patchwarden_api::v1::jobs::{JobKind, JobOutcome, JobResult};

/// What the network side decides for a job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    /// Collect and upload the full inventory, then report success.
    Reinventory,
    /// Report this result without doing anything.
    Refuse(JobResult),
}

/// Decides what to do with a job of `kind`.
pub fn plan(kind: &JobKind) -> Plan {
    match kind {
        JobKind::Reinventory => Plan::Reinventory,
        JobKind::Install { .. } | JobKind::Reboot | JobKind::Rollback { .. } => {
            Plan::Refuse(JobResult::new(
                JobOutcome::Refused,
                format!(
                    "this agent has no privileged executor for {} jobs yet (issue 9); \
                     nothing was changed on the host",
                    kind.name()
                ),
            ))
        }
    }
}
