//! Jobs: one host's work (install these versions, reboot, re-inventory, roll back), leased to
//! its agent with a deadline and reported on idempotently by job id.
//!
//! The job's kind is the server's closed set of API types; the store keeps it as JSON text and
//! never interprets it. What the store does own is the life cycle, decided here once for both
//! backends by [`decide_report`]: only the owning host may report, a repeated report changes
//! nothing, and a finished job keeps its outcome.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use crate::error::{Result, StoreError};
use crate::limits::{MAX_ID, MAX_JOB_JSON, check_name};

/// Where a job is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    /// Waiting for its host to lease it.
    Queued,
    /// Handed to the agent, which has not reported yet.
    Leased,
    /// The agent reported progress.
    Running,
    Succeeded,
    Failed,
}

impl JobState {
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Queued => "queued",
            JobState::Leased => "leased",
            JobState::Running => "running",
            JobState::Succeeded => "succeeded",
            JobState::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<JobState> {
        Some(match s {
            "queued" => JobState::Queued,
            "leased" => JobState::Leased,
            "running" => JobState::Running,
            "succeeded" => JobState::Succeeded,
            "failed" => JobState::Failed,
            _ => return None,
        })
    }

    pub fn is_finished(self) -> bool {
        matches!(self, JobState::Succeeded | JobState::Failed)
    }
}

/// A job to be created.
#[derive(Debug, Clone, PartialEq)]
pub struct NewJob {
    pub id: Uuid,
    pub host: Uuid,
    /// The job's kind as the server's API defines it, validated by the server.
    pub kind: Value,
    /// Who asked for it: an operator, or the change it belongs to.
    pub created_by: String,
}

impl NewJob {
    /// Checks the job's fields and returns its kind as JSON text.
    pub fn check(&self) -> Result<String> {
        check_name("job created_by", &self.created_by, MAX_ID)?;
        crate::codec::to_json("job kind", &self.kind, MAX_JOB_JSON)
    }
}

/// A stored job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Job {
    pub id: Uuid,
    pub host: Uuid,
    pub kind: Value,
    pub created_by: String,
    pub created_at: Timestamp,
    pub state: JobState,
    /// Until when the current lease holds; after it the job may be leased again.
    pub lease_until: Option<Timestamp>,
    /// How many times the job was leased.
    pub attempts: u32,
    /// The agent's last progress report.
    pub progress: Option<Value>,
    /// The agent's final report.
    pub result: Option<Value>,
    pub updated_at: Timestamp,
    pub finished_at: Option<Timestamp>,
}

/// What an agent reports about a job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "report", rename_all = "snake_case")]
pub enum JobReport {
    Progress { detail: Value },
    Finished { success: bool, detail: Value },
}

/// Which jobs to list; the default lists all, oldest first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JobFilter {
    pub host: Option<Uuid>,
    /// Only the jobs created by this (an operator's name, or a change's number).
    pub created_by: Option<String>,
    pub state: Option<JobState>,
    pub limit: Option<u32>,
}

/// The change a report makes to a job.
#[derive(Debug, Clone, PartialEq)]
pub struct JobUpdate {
    pub state: JobState,
    /// JSON text of the progress to store (unchanged when `None`).
    pub progress: Option<String>,
    /// JSON text of the result to store (only when finishing).
    pub result: Option<String>,
    pub finished_at: Option<Timestamp>,
}

/// What a report does to `job` when `host` sends it at `now`: `Ok(None)` when it changes
/// nothing (a retry of a report already applied), `Ok(Some(update))` for a change, and an
/// error when `host` does not own the job or the job already finished differently.
pub fn decide_report(
    job: &Job,
    host: Uuid,
    report: &JobReport,
    now: Timestamp,
) -> Result<Option<JobUpdate>> {
    if job.host != host {
        return Err(StoreError::NotJobOwner { job: job.id, host });
    }
    match report {
        JobReport::Progress { detail } => {
            // A progress report that arrives after the result is a late retry: the result
            // stands and the retry is acknowledged, so the agent stops sending it.
            if job.state.is_finished() || job.progress.as_ref() == Some(detail) {
                return Ok(None);
            }
            Ok(Some(JobUpdate {
                state: JobState::Running,
                progress: Some(crate::codec::to_json("job progress", detail, MAX_JOB_JSON)?),
                result: None,
                finished_at: None,
            }))
        }
        JobReport::Finished { success, detail } => {
            let state = if *success {
                JobState::Succeeded
            } else {
                JobState::Failed
            };
            if job.state.is_finished() {
                if job.state == state && job.result.as_ref() == Some(detail) {
                    return Ok(None);
                }
                return Err(StoreError::JobAlreadyFinished {
                    job: job.id,
                    state: job.state.as_str().into(),
                });
            }
            Ok(Some(JobUpdate {
                state,
                progress: None,
                result: Some(crate::codec::to_json("job result", detail, MAX_JOB_JSON)?),
                finished_at: Some(now),
            }))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn job(state: JobState) -> Job {
        let t: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        Job {
            id: Uuid::from_u128(1),
            host: Uuid::from_u128(10),
            kind: json!({"kind": "reboot"}),
            created_by: "alice".into(),
            created_at: t,
            state,
            lease_until: None,
            attempts: 1,
            progress: None,
            result: None,
            updated_at: t,
            finished_at: None,
        }
    }

    #[test]
    fn reports_are_idempotent_owned_and_final() {
        let now: Timestamp = "2026-01-01T00:01:00Z".parse().unwrap();
        let owner = Uuid::from_u128(10);
        let other = Uuid::from_u128(11);
        let done = JobReport::Finished {
            success: true,
            detail: json!({"ok": 1}),
        };
        assert!(matches!(
            decide_report(&job(JobState::Leased), other, &done, now),
            Err(StoreError::NotJobOwner { .. })
        ));
        let update = decide_report(&job(JobState::Leased), owner, &done, now)
            .unwrap()
            .unwrap();
        assert_eq!(update.state, JobState::Succeeded);

        let mut finished = job(JobState::Succeeded);
        finished.result = Some(json!({"ok": 1}));
        assert_eq!(decide_report(&finished, owner, &done, now).unwrap(), None);
        let failed = JobReport::Finished {
            success: false,
            detail: json!({}),
        };
        assert!(matches!(
            decide_report(&finished, owner, &failed, now),
            Err(StoreError::JobAlreadyFinished { .. })
        ));
        let progress = JobReport::Progress { detail: json!(1) };
        assert_eq!(
            decide_report(&finished, owner, &progress, now).unwrap(),
            None
        );
    }
}
