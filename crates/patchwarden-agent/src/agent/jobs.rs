//! What the agent does with a leased job. The kinds are the API's closed set; each is either
//! done by the network side, read-only (re-inventory), or handed to the privileged executor
//! ([`crate::executor`]: install, reboot, roll back) as its typed description. An agent
//! started without the executor refuses those with that reason rather than leaving them to
//! expire, so the operator sees why at once.

use patchwarden_api::v1::jobs::{JobKind, JobOutcome, JobResult};

/// What the network side decides for a job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    /// Collect and upload the full inventory, then report success.
    Reinventory,
    /// Hand the job to the executor, then report its result and upload the new inventory.
    Execute,
    /// Report this result without doing anything.
    Refuse(JobResult),
}

/// Decides what to do with a job of `kind`; `executor` says whether this agent runs one.
pub fn plan(kind: &JobKind, executor: bool) -> Plan {
    match kind {
        JobKind::Reinventory => Plan::Reinventory,
        JobKind::Install { .. } | JobKind::Reboot | JobKind::Rollback { .. } if executor => {
            Plan::Execute
        }
        JobKind::Install { .. } | JobKind::Reboot | JobKind::Rollback { .. } => {
            Plan::Refuse(JobResult::new(
                JobOutcome::Refused,
                format!(
                    "this agent runs without the privileged executor, so it does no {} jobs; \
                     nothing was changed on the host",
                    kind.name()
                ),
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changing_jobs_go_to_the_executor_only_when_the_agent_has_one() {
        assert_eq!(plan(&JobKind::Reinventory, false), Plan::Reinventory);
        assert_eq!(plan(&JobKind::Reboot, true), Plan::Execute);
        let Plan::Refuse(r) = plan(&JobKind::Reboot, false) else {
            panic!("not refused");
        };
        assert_eq!(r.outcome, JobOutcome::Refused);
        assert!(r.detail.contains("nothing was changed"), "{}", r.detail);
    }
}
