//! One enrolled agent talking to its server: a check-in cycle ([`Agent::once`]) and the loop
//! around it ([`Agent::run`]) with jitter, the server's interval and `Retry-After`.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::Duration;

use jiff::Timestamp;
use patchwarden_api::v1::agent::{
    CheckInRequest, EnrollRequest, EnrollmentSecret, FindingCounts, InventoryUpload,
    InventoryWanted, Schedule,
};
use patchwarden_api::v1::jobs::{JobOutcome, JobProgress, JobResult};
use patchwarden_api::v1::problem::ProblemCode;
use patchwarden_client::{AgentClient, AgentKey, Client, ClientError, Fingerprint, Trust};
use patchwarden_core::inventory::Inventory;

use super::jobs::{Plan, plan};
use super::state::{Identity, StateDir, StateError};
use crate::executor::{Execution, Executor, ExecutorOptions};
use crate::inventory::collect::collect_root;

/// The agent's version, sent at enrollment and check-in.
pub const AGENT_VERSION: &str = env!("CARGO_PKG_VERSION");

/// Why a cycle, an enrollment or the loop failed.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error(transparent)]
    State(#[from] StateError),
    #[error("collecting the inventory under {root}: {reason}")]
    Collect { root: PathBuf, reason: String },
    #[error(transparent)]
    Client(#[from] ClientError),
    #[error("{0}")]
    Config(String),
    #[error("the executor stopped: {0}")]
    Executor(String),
}

impl AgentError {
    /// Whether the loop must stop: the server will never accept this agent as it is.
    pub fn is_fatal(&self) -> bool {
        match self {
            AgentError::State(_) | AgentError::Config(_) => true,
            AgentError::Client(e) => matches!(
                e.code(),
                Some(
                    ProblemCode::HostRetired
                        | ProblemCode::HostIdentityConflict
                        | ProblemCode::SignatureInvalid
                )
            ),
            AgentError::Collect { .. } | AgentError::Executor(_) => false,
        }
    }

    /// How long the server asked to wait, if it did.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            AgentError::Client(ClientError::Problem(p)) => p.retry_after.map(Duration::from_secs),
            _ => None,
        }
    }
}

/// What one check-in did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CycleReport {
    /// `full` or `delta` when an inventory was uploaded.
    pub uploaded: Option<&'static str>,
    pub findings: Option<FindingCounts>,
    /// Each job handled, with the outcome reported.
    pub jobs: Vec<(String, JobOutcome)>,
    pub new_host: bool,
    pub open_findings: u64,
    pub schedule: Schedule,
}

/// How to enroll.
#[derive(Debug, Clone)]
pub struct EnrollOptions {
    pub server: String,
    pub token: String,
    /// `Some` pins that CA; `None` means plain HTTP, asked for explicitly.
    pub ca_fingerprint: Option<Fingerprint>,
    /// Retire an enrolled host with this machine id (a re-imaged host).
    pub replace: bool,
    pub root: PathBuf,
}

fn trust(fingerprint: Option<Fingerprint>) -> Trust {
    match fingerprint {
        Some(f) => Trust::Pinned(f),
        None => Trust::PlainHttp,
    }
}

async fn collect(root: &Path) -> Result<Inventory, AgentError> {
    let owned = root.to_owned();
    let collected = tokio::task::spawn_blocking(move || collect_root(&owned))
        .await
        .map_err(|e| AgentError::Collect {
            root: root.to_owned(),
            reason: format!("the collector failed: {e}"),
        })?
        .map_err(|e| AgentError::Collect {
            root: root.to_owned(),
            reason: e.to_string(),
        })?;
    for w in collected.warnings.iter().take(10) {
        tracing::warn!(warning = %w, "inventory");
    }
    Ok(collected.inventory)
}

/// Enrolls this host: a new key, the facts under `options.root`, the token; saves the state,
/// then checks in at once, so the server matches the new host's inventory at enrollment.
pub async fn enroll(
    state: &StateDir,
    options: EnrollOptions,
) -> Result<(Identity, CycleReport), AgentError> {
    if state.is_enrolled() {
        return Err(StateError::AlreadyEnrolled(state.path().to_owned()).into());
    }
    let inventory = collect(&options.root).await?;
    let key = AgentKey::generate()?;
    let client = Client::new(&options.server, &trust(options.ca_fingerprint))?;
    let response = client
        .enroll(
            &key,
            &EnrollRequest {
                token: EnrollmentSecret(options.token.clone()),
                public_key: key.public_hex(),
                facts: inventory.host.clone(),
                replace: options.replace,
                agent_version: AGENT_VERSION.into(),
            },
        )
        .await?;
    let identity = Identity {
        host_id: response.host_id,
        server: client.base().to_owned(),
        ca_fingerprint: options.ca_fingerprint.map(|f| f.to_string()),
        group: response.group,
        enrolled_at: response.server_time,
        schedule: response.schedule,
    };
    state.save_enrollment(&identity, &key)?;
    let mut agent = Agent::load(state.clone(), options.root)?;
    let report = agent.once().await?;
    Ok((identity, report))
}

/// The clock the agent's executor reads (the shell passes `Timestamp::now`; tests a fixed
/// time).
pub type Clock = fn() -> Timestamp;

/// An enrolled agent.
#[derive(Debug)]
pub struct Agent {
    state: StateDir,
    identity: Identity,
    client: AgentClient,
    root: PathBuf,
    /// The privileged executor's settings and clock; `None` refuses install, rollback and
    /// reboot jobs.
    executor: Option<(ExecutorOptions, Clock)>,
}

impl Agent {
    /// The agent saved in `state`, reading packages under `root`.
    pub fn load(state: StateDir, root: PathBuf) -> Result<Agent, AgentError> {
        let (identity, key) = state.load()?;
        let fingerprint = identity
            .ca_fingerprint
            .as_deref()
            .map(Fingerprint::parse)
            .transpose()
            .map_err(|e| AgentError::Config(format!("the saved CA fingerprint: {e}")))?;
        let client = Client::new(&identity.server, &trust(fingerprint))?;
        let client = client.agent(&identity.host_id, key);
        Ok(Agent {
            state,
            identity,
            client,
            root,
            executor: None,
        })
    }

    /// Lets this agent do install, rollback and reboot jobs through the executor
    /// ([`crate::executor`]), with `options` and reading the time from `clock`.
    pub fn with_executor(mut self, options: ExecutorOptions, clock: Clock) -> Agent {
        self.executor = Some((options, clock));
        self
    }

    fn executor(&self) -> Result<Option<(Executor, Clock)>, AgentError> {
        let Some((options, clock)) = &self.executor else {
            return Ok(None);
        };
        let executor = Executor::new(
            self.state.path(),
            &self.root,
            &self.identity.host_id,
            options.clone(),
        )?;
        Ok(Some((executor, *clock)))
    }

    /// Runs one job in the executor, off the async threads (package managers take minutes).
    async fn execute(
        executor: &Executor,
        job: &patchwarden_api::v1::jobs::Job,
        now: Timestamp,
    ) -> Result<Execution, AgentError> {
        let (executor, id, work) = (executor.clone(), job.id.clone(), job.work.clone());
        tokio::task::spawn_blocking(move || executor.execute(&id, &work, now))
            .await
            .map_err(|e| AgentError::Executor(e.to_string()))?
            .map_err(AgentError::from)
    }

    pub fn identity(&self) -> &Identity {
        &self.identity
    }

    async fn upload_full(&self, inventory: &Inventory) -> Result<FindingCounts, AgentError> {
        let accepted = self
            .client
            .upload_inventory(&InventoryUpload::Full {
                inventory: inventory.clone(),
            })
            .await?;
        self.state.save_inventory(inventory)?;
        Ok(accepted.findings)
    }

    /// Sends a delta from the saved inventory when the server holds it, else the whole.
    async fn upload(
        &self,
        inventory: &Inventory,
        wanted: InventoryWanted,
    ) -> Result<Option<(&'static str, FindingCounts)>, AgentError> {
        let base = match wanted {
            InventoryWanted::Nothing => return Ok(None),
            InventoryWanted::Full => None,
            InventoryWanted::Delta { base } => Some(base),
        };
        if let (Some(base), Some(last)) = (base, self.state.last_inventory()?)
            && last.packages_digest() == base
        {
            let delta = patchwarden_core::inventory::delta(&last, inventory);
            match self
                .client
                .upload_inventory(&InventoryUpload::Delta { delta })
                .await
            {
                Ok(accepted) => {
                    self.state.save_inventory(inventory)?;
                    return Ok(Some(("delta", accepted.findings)));
                }
                // The server and the agent disagree about the past: send it all.
                Err(e) if e.code() == Some(ProblemCode::InventoryBaseMismatch) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(Some(("full", self.upload_full(inventory).await?)))
    }

    /// One check-in: collect, check in, upload what the server wants, handle leased jobs.
    pub async fn once(&mut self) -> Result<CycleReport, AgentError> {
        let inventory = collect(&self.root).await?;
        let seq = self.state.next_seq()?;
        let response = self
            .client
            .check_in(&CheckInRequest {
                seq,
                facts: inventory.host.clone(),
                packages: inventory.packages_digest(),
                agent_version: AGENT_VERSION.into(),
            })
            .await?;
        let mut report = CycleReport {
            uploaded: None,
            findings: None,
            jobs: Vec::new(),
            new_host: response.standing.new_host,
            open_findings: response.standing.open_findings,
            schedule: response.schedule,
        };
        if let Some((kind, findings)) = self.upload(&inventory, response.inventory).await? {
            report.uploaded = Some(kind);
            report.findings = Some(findings);
        }
        // Results the executor finished but never handed over (a crash, a reboot) join the
        // outbox first.
        let executor = self.executor()?;
        if let Some((exec, clock)) = &executor {
            let now = clock();
            let (journals, packages) = exec.prune(now);
            if journals + packages > 0 {
                tracing::info!(
                    journals,
                    packages,
                    "old job journals and the cached packages no kept job needs removed"
                );
            }
            let finished = exec.unreported(now)?;
            if !finished.is_empty() {
                let mut pending = self.state.pending_results()?;
                for (id, result) in &finished {
                    pending.entry(id.clone()).or_insert_with(|| result.clone());
                }
                self.state.save_pending_results(&pending)?;
                for (id, _) in &finished {
                    exec.mark_reported(id, now)?;
                }
            }
        }
        // Results saved before a crash go first; their jobs may come back in this answer (the
        // server did not have the result yet) and are not done a second time.
        let flushed = self.flush_results(&mut report).await?;
        let mut changed_host = false;
        for job in &response.jobs {
            if job.state.is_final() || flushed.contains(&job.id) {
                continue;
            }
            let result = match plan(&job.work, executor.is_some()) {
                Plan::Reinventory => {
                    let findings = self.upload_full(&inventory).await?;
                    report.uploaded = Some("full");
                    report.findings = Some(findings);
                    JobResult::new(
                        JobOutcome::Succeeded,
                        format!(
                            "inventory of {} packages uploaded",
                            inventory.packages.len()
                        ),
                    )
                }
                Plan::Execute => {
                    let Some((exec, clock)) = &executor else {
                        continue;
                    };
                    let now = clock();
                    // Tells the operator the job started; the result is what counts, so a
                    // failed progress report is only logged.
                    let progress = JobProgress {
                        message: format!("the executor is running the {} job", job.work.name()),
                        percent: None,
                    };
                    if let Err(e) = self.client.job_progress(&job.id, &progress).await {
                        tracing::warn!(job = %job.id, error = %e, "progress report failed");
                    }
                    match Self::execute(exec, job, now).await? {
                        Execution::Done(result) => {
                            let mut pending = self.state.pending_results()?;
                            pending.insert(job.id.clone(), result);
                            self.state.save_pending_results(&pending)?;
                            // In the outbox now: the journal says so, and the job is never
                            // run again.
                            exec.mark_reported(&job.id, now)?;
                            changed_host = true;
                            self.flush_results(&mut report).await?;
                            continue;
                        }
                        Execution::Waiting(why) => {
                            tracing::info!(job = %job.id, %why, "job under way");
                            continue;
                        }
                    }
                }
                Plan::Refuse(result) => result,
            };
            let mut pending = self.state.pending_results()?;
            pending.insert(job.id.clone(), result);
            self.state.save_pending_results(&pending)?;
            self.flush_results(&mut report).await?;
        }
        // The server sees the versions a job installed at once, not at the next check-in.
        if changed_host {
            let fresh = collect(&self.root).await?;
            let findings = self.upload_full(&fresh).await?;
            report.uploaded = Some("full");
            report.findings = Some(findings);
        }
        self.identity.schedule = response.schedule;
        Ok(report)
    }

    /// Sends the saved job results the server has not acknowledged, removing each it takes
    /// (or already has, or no longer knows).
    async fn flush_results(&self, report: &mut CycleReport) -> Result<Vec<String>, AgentError> {
        let mut pending = self.state.pending_results()?;
        let ids: Vec<String> = pending.keys().cloned().collect();
        for id in &ids {
            let id = id.clone();
            let Some(result) = pending.get(&id) else {
                continue;
            };
            let outcome = result.outcome;
            match self.client.job_result(&id, result).await {
                Ok(_) => report.jobs.push((id.clone(), outcome)),
                // The server has another result for it, or no such job for this host: nothing
                // a retry can change, so it is dropped (and logged).
                Err(e)
                    if matches!(
                        e.code(),
                        Some(ProblemCode::JobConflict | ProblemCode::NotFound)
                    ) =>
                {
                    tracing::warn!(job = %id, error = %e, "job result dropped");
                }
                Err(e) => return Err(e.into()),
            }
            pending.remove(&id);
            self.state.save_pending_results(&pending)?;
        }
        Ok(ids)
    }

    /// Checks in until `stop` completes: every interval plus a random part of the jitter,
    /// sooner after a transient failure (doubling up to the interval), later when the server
    /// says `Retry-After`. Stops on errors no retry can fix (a retired or quarantined host,
    /// damaged state).
    pub async fn run(&mut self, stop: impl Future<Output = ()>) -> Result<(), AgentError> {
        tokio::pin!(stop);
        let mut backoff = Duration::from_secs(5);
        loop {
            let wait = match self.once().await {
                Ok(report) => {
                    backoff = Duration::from_secs(5);
                    tracing::info!(
                        uploaded = ?report.uploaded, jobs = report.jobs.len(),
                        open_findings = report.open_findings, new_host = report.new_host,
                        "checked in"
                    );
                    next_interval(report.schedule)
                }
                Err(e) if e.is_fatal() => return Err(e),
                Err(e) => {
                    let wait = e.retry_after().unwrap_or(backoff);
                    tracing::warn!(error = %e, retry_in = ?wait, "check-in failed");
                    let cap =
                        Duration::from_secs(u64::from(self.identity.schedule.interval_secs.max(5)));
                    backoff = (backoff * 2).min(cap);
                    wait
                }
            };
            tokio::select! {
                _ = &mut stop => return Ok(()),
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }
}

/// The interval plus a random share of the jitter.
fn next_interval(schedule: Schedule) -> Duration {
    let mut bytes = [0u8; 4];
    // Without randomness the jitter is zero: the agent still checks in, only less spread out.
    let _ = getrandom::fill(&mut bytes);
    let jitter = u32::from_le_bytes(bytes) % schedule.jitter_secs.saturating_add(1);
    Duration::from_secs(u64::from(schedule.interval_secs) + u64::from(jitter))
}
