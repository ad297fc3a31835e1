//! The rollout engine: one task per server that moves scheduled changes through their rings.
//!
//! Each round (every [`TICK`], or at once when a job finishes or a change is scheduled) it
//! reads every change in an active state and decides its next step from the change, its jobs
//! and the calendar — nothing is kept in memory between rounds, so a restarted server (or
//! another server sharing the database) carries on where the last round stopped. Each step is
//! one store update at the revision read, with the jobs it creates in the same transaction: if
//! two servers decide the same step, one update wins and the other is refused as stale.
//!
//! Which hosts start, when a ring is verified and when the rollout halts is decided by the pure
//! `patchwarden_core::rollout::next_step` (rings in order, soak, manual gates, the failure
//! threshold, concurrency per failure domain — property-tested there); this module feeds it
//! the change's rings with each host's job state and window, and carries out its answer. The
//! change's own state moves through `patchwarden_core::change::apply` as the system actor (so
//! the core's rules — windows, freezes, testing first, the emergency path — hold here as for
//! people):
//!
//! - **scheduled** → when its window opens: the rings are fixed (the hosts of the test ring
//!   first, then the other rings in name order, hosts without a ring last as `broad`), each
//!   host's packages computed from its inventory, and the test ring's jobs created
//!   (`start testing`); a change that needs no testing, or an emergency, deploys its first
//!   ring at once.
//! - **a running ring**: a host gets its job when its own group's window is open (an
//!   emergency at once). When every host verified (its job succeeded, or it had nothing to
//!   install) and the soak time passed, the ring is verified: the test ring's verification
//!   records the tests as passed; a broad ring's starts the next, and the last one's verifies
//!   the deployment. When more hosts failed than the plan allows, the ring fails, the rollout
//!   halts (no later ring starts), the change fails, and every host that was given the change
//!   gets a rollback job to the versions recorded when its ring started.
//! - **rolled back by an operator** (`roll back`: the change failed with their reason, its
//!   later rings skipped): every host that was given the change gets its rollback job, as
//!   after a halt.
//! - **failed** → once every rollback job succeeded, the change is rolled back.
//! - **tested** → in the next window, the first broad ring starts (`deploy`).

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use patchwarden_api::v1::jobs::JobOutcome;
use patchwarden_api::v1::manifest::ManifestAction;
use patchwarden_core::audit::{Actor, AuditEntry};
use patchwarden_core::calendar::Span;
use patchwarden_core::change::{ChangeActor, ChangeEvent, ChangeState, Testing, apply};
use patchwarden_core::rollout::{
    HostInput, HostProgress, Limits, RingInput, RingState, Step as RolloutStep, next_step,
};
use patchwarden_store::change::{ChangeFilter, ChangeUpdate, StoredChange};
use patchwarden_store::{Job, JobFilter, JobState, NewJob};
use uuid::Uuid;

use super::{
    ACTIVE, ChangeDoc, LoadedCalendar, Ring, RingHost, host_packages, job_kind, load_calendar,
    manifest, recorded, target_hosts,
};
use crate::access::Scope;
use crate::clock;
use crate::error::ApiError;
use crate::state::AppState;

/// How often the engine looks at active changes when nothing wakes it.
pub(crate) const TICK: Duration = Duration::from_secs(10);

/// Runs the engine until the task is aborted; every `changes.standard_every_secs` the
/// standard-change rules look for findings first.
pub(crate) async fn run(state: Arc<AppState>) {
    let rules = &state.changes.rules;
    let every = Duration::from_secs(u64::from(state.changes.every_secs));
    let mut last_standard: Option<std::time::Instant> = None;
    loop {
        if !rules.is_empty() && last_standard.is_none_or(|t| t.elapsed() >= every) {
            last_standard = Some(std::time::Instant::now());
            if let Err(e) = super::standard::raise(&state, rules, clock::now()).await {
                tracing::warn!(error = %e, "the standard-change rules failed");
            }
        }
        tick(&state, clock::now()).await;
        let sleep = if rules.is_empty() {
            TICK
        } else {
            TICK.min(every)
        };
        tokio::select! {
            _ = tokio::time::sleep(sleep) => {}
            _ = state.rollout_wake.notified() => {}
        }
    }
}

/// One round over every active change.
pub(crate) async fn tick(state: &AppState, now: Timestamp) {
    let filter = ChangeFilter {
        states: ACTIVE.iter().map(|s| s.as_str().to_owned()).collect(),
        ..ChangeFilter::default()
    };
    let changes = match state.store.list_changes(&filter).await {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(error = %e, "the rollout engine cannot list changes");
            return;
        }
    };
    if changes.is_empty() {
        return;
    }
    // One reading of the calendar serves every change of the round.
    let calendar = match load_calendar(state).await {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(error = %e, "the rollout engine cannot read the calendar");
            return;
        }
    };
    for stored in changes {
        // Several steps may be due at once (a ring verified and the next to start): take them
        // one update at a time, each at the revision the last one left.
        let mut current = stored;
        for _ in 0..8 {
            match step(state, &current, &calendar, now).await {
                Ok(Some(next)) => current = next,
                Ok(None) => break,
                Err(ApiError::Conflict(e)) => {
                    tracing::debug!(change = %current.number, reason = %e, "another writer moved the change first");
                    break;
                }
                Err(e) => {
                    tracing::warn!(change = %current.number, error = %e, "a rollout step failed");
                    break;
                }
            }
        }
    }
}

/// What one step decided: the change's new state (or the same), the event that moved it, and
/// the jobs to create with it.
struct Step {
    doc: ChangeDoc,
    event: Option<ChangeEvent>,
    action: &'static str,
    jobs: Vec<NewJob>,
}

/// Takes the next due step of one change; `None` when nothing is due.
async fn step(
    state: &AppState,
    stored: &StoredChange,
    calendar: &LoadedCalendar,
    now: Timestamp,
) -> Result<Option<StoredChange>, ApiError> {
    let doc = ChangeDoc::parse(stored)?;
    let jobs: HashMap<Uuid, Job> = state
        .store
        .list_jobs(&JobFilter {
            created_by: Some(stored.number.clone()),
            ..JobFilter::default()
        })
        .await?
        .into_iter()
        .map(|j| (j.id, j))
        .collect();
    let step = match doc.change.state {
        ChangeState::Scheduled => start(state, stored, doc, calendar, &jobs, now).await?,
        ChangeState::Testing | ChangeState::Deploying => {
            running(stored, doc, calendar, &jobs, now).await?
        }
        ChangeState::Tested => deploy_after_tests(stored, doc, calendar, &jobs, now).await?,
        ChangeState::Failed if doc.rollback_requested.is_some() => {
            match roll_back(stored, doc.clone(), &jobs, now) {
                Some(step) => Some(step),
                None => rolled_back(doc, &jobs),
            }
        }
        ChangeState::Failed => rolled_back(doc, &jobs),
        _ => None,
    };
    let Some(mut step) = step else {
        return Ok(None);
    };
    let before = stored.state.clone();
    if let Some(event) = &step.event {
        let groups = ring_groups(&step.doc);
        let moment = calendar.for_groups(&groups).moment(now);
        step.doc.change = match apply(&step.doc.change, event, &ChangeActor::System, moment) {
            Ok(c) => c,
            // Outside a window, in a freeze: not yet. The next round asks again.
            Err(refusal) => {
                tracing::debug!(change = %stored.number, %refusal, "a rollout step waits");
                return Ok(None);
            }
        };
    }
    let audit = AuditEntry::new(
        now,
        Actor::System("rollout".into()),
        step.action,
        format!("change:{}", stored.number),
    )
    .before(serde_json::json!({"state": before}))
    .after(serde_json::json!({
        "state": step.doc.change.state.as_str(),
        "jobs": step.jobs.len(),
        "halted": step.doc.halted,
    }));
    let updated = state
        .store
        .update_change(
            ChangeUpdate {
                id: stored.id,
                revision: stored.revision,
                state: step.doc.change.state.as_str().into(),
                body: step.doc.to_value()?,
                jobs: step.jobs,
            },
            now,
            audit,
        )
        .await?;
    Ok(Some(updated))
}

fn ring_groups(doc: &ChangeDoc) -> BTreeSet<String> {
    doc.rings
        .iter()
        .flat_map(|r| r.hosts.iter().map(|h| h.group.clone()))
        .collect()
}

/// The rings of a change's hosts, with each host's packages from its inventory now.
async fn plan_rings(state: &AppState, doc: &ChangeDoc) -> Result<Vec<Ring>, ApiError> {
    let hosts = target_hosts(state, &doc.targets, &Scope::All).await?;
    let mut by_ring: std::collections::BTreeMap<String, Vec<RingHost>> = Default::default();
    for host in hosts {
        let inventory = state.store.get_inventory(host.id).await?;
        let (packages, previous) = host_packages(
            &doc.patches,
            &host,
            inventory.as_ref().map(|i| &i.inventory),
        );
        let ring = host.ring.clone().unwrap_or_else(|| "broad".into());
        let domain = doc
            .rollout
            .domain_label
            .as_ref()
            .and_then(|label| host.labels.get(label).cloned());
        by_ring.entry(ring).or_default().push(RingHost {
            host: host.id,
            hostname: host.facts.hostname.clone(),
            group: host.group.clone(),
            domain,
            nothing_to_do: packages.is_empty(),
            packages,
            previous,
            job: None,
            rollback_job: None,
        });
    }
    let mut rings = Vec::new();
    if let Some(hosts) = by_ring.remove(&doc.rollout.test_ring) {
        rings.push(Ring {
            name: doc.rollout.test_ring.clone(),
            test: true,
            state: RingState::Waiting,
            started_at: None,
            verified_at: None,
            hosts,
        });
    }
    // `broad` (hosts without a ring) after the named rings, split into waves if the plan says.
    let mut unnamed: Vec<(String, Vec<RingHost>)> = Vec::new();
    if let Some(mut hosts) = by_ring.remove("broad") {
        match &doc.rollout.waves {
            Some(waves) => {
                hosts.sort_by(|a, b| a.hostname.cmp(&b.hostname));
                let mut rest = hosts.into_iter();
                for (i, size) in waves.sizes(rest.len()).into_iter().enumerate() {
                    unnamed.push((
                        format!("broad-{}", i + 1),
                        rest.by_ref().take(size).collect(),
                    ));
                }
            }
            None => unnamed.push(("broad".into(), hosts)),
        }
    }
    for (name, hosts) in by_ring.into_iter().chain(unnamed) {
        rings.push(Ring {
            name,
            test: false,
            state: RingState::Waiting,
            started_at: None,
            verified_at: None,
            hosts,
        });
    }
    Ok(rings)
}

/// When a host of `group` may be touched now: the open window's span, `None` for an
/// emergency (no window needed), or `Err(())` when it must wait.
fn host_window(
    calendar: &LoadedCalendar,
    group: &str,
    emergency: bool,
    now: Timestamp,
) -> Result<Option<Span>, ()> {
    if emergency {
        return Ok(None);
    }
    let cal = calendar.for_group(group);
    let moment = cal.moment(now);
    if moment.in_freeze || !moment.in_window {
        return Err(());
    }
    match cal.next_opportunity(now, false) {
        Some(span) if span.contains(now) => Ok(Some(span)),
        _ => Err(()),
    }
}

fn emergency(doc: &ChangeDoc) -> bool {
    doc.change.kind == patchwarden_core::change::ChangeKind::Emergency
}

/// The rollout as the core's rules see it.
fn inputs(
    doc: &ChangeDoc,
    calendar: &LoadedCalendar,
    jobs: &HashMap<Uuid, Job>,
    now: Timestamp,
) -> (Vec<RingInput>, Limits) {
    let rings = doc
        .rings
        .iter()
        .map(|r| RingInput {
            state: r.state,
            // A template's wait before the broad rings is the test ring's soak.
            soak: if r.test {
                doc.template.as_ref().map(|(_, _, soak)| *soak)
            } else {
                None
            },
            gate_closed: doc.rollout.gates.contains(&r.name)
                && !doc.promoted.iter().any(|(ring, _)| *ring == r.name),
            hosts: r
                .hosts
                .iter()
                .map(|h| HostInput {
                    progress: progress(h, jobs),
                    window_open: host_window(calendar, &h.group, emergency(doc), now).is_ok(),
                    domain: h.domain.clone(),
                })
                .collect(),
        })
        .collect();
    let limits = Limits {
        max_failures: doc.rollout.max_failures,
        soak: SignedDuration::from_mins(i64::from(doc.rollout.soak_minutes)),
        max_per_domain: doc.rollout.max_per_domain,
    };
    (rings, limits)
}

fn progress(host: &RingHost, jobs: &HashMap<Uuid, Job>) -> HostProgress {
    if host.nothing_to_do {
        return HostProgress::NothingToDo;
    }
    let Some(id) = host.job else {
        return HostProgress::NotStarted;
    };
    match jobs.get(&id) {
        Some(j) if j.state == JobState::Succeeded => HostProgress::Verified {
            at: j.finished_at.unwrap_or(j.updated_at),
        },
        Some(j) if j.state == JobState::Failed => HostProgress::Failed {
            at: j.finished_at.unwrap_or(j.updated_at),
        },
        _ => HostProgress::InFlight,
    }
}

/// Creates the jobs of `hosts` (indices) of ring `index` and marks the ring running.
fn start_hosts(
    number: &str,
    doc: &mut ChangeDoc,
    index: usize,
    hosts: &[usize],
    calendar: &LoadedCalendar,
    now: Timestamp,
) -> Vec<NewJob> {
    let snapshot = doc.clone();
    let ring = &mut doc.rings[index];
    if ring.state == RingState::Waiting {
        ring.state = RingState::Running;
        ring.started_at = Some(now);
    }
    let mut jobs = Vec::new();
    for &i in hosts {
        let host = &mut ring.hosts[i];
        let Ok(window) = host_window(calendar, &host.group, emergency(&snapshot), now) else {
            continue;
        };
        let m = manifest(
            number,
            &snapshot,
            host.host,
            ManifestAction::Install,
            host.packages.clone(),
            window,
            now,
        );
        let id = Uuid::new_v4();
        host.job = Some(id);
        jobs.push(NewJob {
            id,
            host: host.host,
            kind: serde_json::to_value(job_kind(m, None)).unwrap_or_default(),
            created_by: number.to_owned(),
        });
    }
    jobs
}

async fn start(
    state: &AppState,
    stored: &StoredChange,
    mut doc: ChangeDoc,
    calendar: &LoadedCalendar,
    jobs: &HashMap<Uuid, Job>,
    now: Timestamp,
) -> Result<Option<Step>, ApiError> {
    if let Some((start, _)) = doc.window
        && now < start
        && !emergency(&doc)
    {
        return Ok(None);
    }
    if doc.rings.is_empty() {
        doc.rings = plan_rings(state, &doc).await?;
    }
    let tests = matches!(doc.change.testing, Testing::Required) && !emergency(&doc);
    let has_test_ring = doc.rings.first().is_some_and(|r| r.test);
    if tests && !has_test_ring {
        let why = format!(
            "testing is required but no targeted host is in the test ring {:?}",
            doc.rollout.test_ring
        );
        if doc.halted.as_deref() == Some(why.as_str()) {
            return Ok(None);
        }
        doc.halted = Some(why);
        return Ok(Some(Step {
            doc,
            event: None,
            action: "change.rollout_halted",
            jobs: Vec::new(),
        }));
    }
    let (event, action) = if tests {
        (ChangeEvent::StartTesting, "change.start_testing")
    } else {
        (ChangeEvent::Deploy, "change.deploy")
    };
    let (rings, limits) = inputs(&doc, calendar, jobs, now);
    match next_step(&rings, limits, now) {
        RolloutStep::Start { ring, hosts } => {
            let jobs = start_hosts(&stored.number, &mut doc, ring, &hosts, calendar, now);
            Ok(Some(Step {
                doc,
                event: Some(event),
                action,
                jobs,
            }))
        }
        // Nothing to install anywhere (or every ring verified at once): the deployment is
        // trivially complete; the next round verifies it.
        RolloutStep::Complete | RolloutStep::Verify { .. } => Ok(Some(Step {
            doc,
            event: Some(event),
            action,
            jobs: Vec::new(),
        })),
        _ => Ok(None),
    }
}

async fn deploy_after_tests(
    stored: &StoredChange,
    mut doc: ChangeDoc,
    calendar: &LoadedCalendar,
    jobs: &HashMap<Uuid, Job>,
    now: Timestamp,
) -> Result<Option<Step>, ApiError> {
    let (rings, limits) = inputs(&doc, calendar, jobs, now);
    let new_jobs = match next_step(&rings, limits, now) {
        RolloutStep::Start { ring, hosts } => {
            start_hosts(&stored.number, &mut doc, ring, &hosts, calendar, now)
        }
        // Only a test ring, or nothing left to install: deploying verifies at once.
        RolloutStep::Complete => Vec::new(),
        _ => return Ok(None),
    };
    Ok(Some(Step {
        doc,
        event: Some(ChangeEvent::Deploy),
        action: "change.deploy",
        jobs: new_jobs,
    }))
}

async fn running(
    stored: &StoredChange,
    mut doc: ChangeDoc,
    calendar: &LoadedCalendar,
    jobs: &HashMap<Uuid, Job>,
    now: Timestamp,
) -> Result<Option<Step>, ApiError> {
    let (rings, limits) = inputs(&doc, calendar, jobs, now);
    match next_step(&rings, limits, now) {
        RolloutStep::Wait | RolloutStep::Halted => Ok(None),
        RolloutStep::Start { ring, hosts } => {
            let started = doc.rings[ring].state == RingState::Waiting;
            let new_jobs = start_hosts(&stored.number, &mut doc, ring, &hosts, calendar, now);
            if new_jobs.is_empty() && !started {
                return Ok(None);
            }
            Ok(Some(Step {
                doc,
                event: None,
                action: if started {
                    "change.ring_started"
                } else {
                    "change.ring_hosts_started"
                },
                jobs: new_jobs,
            }))
        }
        RolloutStep::Verify { ring } => {
            let r = &mut doc.rings[ring];
            r.state = RingState::Verified;
            r.verified_at = Some(now);
            let tests_passed = r.test && doc.change.state == ChangeState::Testing;
            Ok(Some(Step {
                doc,
                event: tests_passed.then_some(ChangeEvent::TestsPassed),
                action: if tests_passed {
                    "change.tests_passed"
                } else {
                    "change.ring_verified"
                },
                jobs: Vec::new(),
            }))
        }
        RolloutStep::Halt { ring, failed } => {
            let names: Vec<String> = failed
                .iter()
                .map(|&i| doc.rings[ring].hosts[i].hostname.clone())
                .collect();
            Ok(Some(halt(stored, doc, ring, &names, jobs, now)))
        }
        RolloutStep::Complete if doc.change.state == ChangeState::Deploying => Ok(Some(Step {
            doc,
            event: Some(ChangeEvent::Verified),
            action: "change.verified",
            jobs: Vec::new(),
        })),
        // Testing with every ring verified cannot happen (the test ring's verification moves
        // the change to tested); nothing to do.
        RolloutStep::Complete => Ok(None),
    }
}

/// Fails ring `index`, skips the rings after it, and rolls back every host given the change.
fn halt(
    stored: &StoredChange,
    mut doc: ChangeDoc,
    index: usize,
    failed: &[String],
    jobs: &HashMap<Uuid, Job>,
    now: Timestamp,
) -> Step {
    let testing = doc.change.state == ChangeState::Testing;
    let reason = format!(
        "ring {} failed on {} host(s) ({}), more than the {} allowed: the rollout halted and \
         is rolled back",
        doc.rings[index].name,
        failed.len(),
        failed.join(", "),
        doc.rollout.max_failures
    );
    doc.halted = Some(reason.clone());
    for (i, ring) in doc.rings.iter_mut().enumerate() {
        if i == index {
            ring.state = RingState::Failed;
        } else if ring.state == RingState::Waiting {
            ring.state = RingState::Skipped;
        }
    }
    let new_jobs = rollback_jobs(stored, &mut doc, jobs, now);
    let event = if testing {
        ChangeEvent::TestsFailed { reason }
    } else {
        ChangeEvent::DeploymentFailed { reason }
    };
    Step {
        doc,
        event: Some(event),
        action: "change.rollout_halted",
        jobs: new_jobs,
    }
}

/// The rollback jobs of every host that was given the change and has none yet: back to the
/// versions recorded when its ring started. A host whose job was refused changed nothing.
fn rollback_jobs(
    stored: &StoredChange,
    doc: &mut ChangeDoc,
    jobs: &HashMap<Uuid, Job>,
    now: Timestamp,
) -> Vec<NewJob> {
    let snapshot = doc.clone();
    let mut new_jobs = Vec::new();
    for ring in &mut doc.rings {
        for host in &mut ring.hosts {
            let Some(job_id) = host.job else { continue };
            if host.rollback_job.is_some() || host.previous.is_empty() {
                continue;
            }
            // A host whose job was refused changed nothing: nothing to roll back.
            if let Some(r) = jobs.get(&job_id).and_then(recorded)
                && r.outcome == JobOutcome::Refused
            {
                continue;
            }
            let m = manifest(
                &stored.number,
                &snapshot,
                host.host,
                ManifestAction::Rollback,
                host.previous.clone(),
                None,
                now,
            );
            let id = Uuid::new_v4();
            host.rollback_job = Some(id);
            new_jobs.push(NewJob {
                id,
                host: host.host,
                kind: serde_json::to_value(job_kind(m, Some(job_id))).unwrap_or_default(),
                created_by: stored.number.clone(),
            });
        }
    }
    new_jobs
}

/// A change an operator called back (`roll back`): its hosts' rollback jobs, made once.
fn roll_back(
    stored: &StoredChange,
    mut doc: ChangeDoc,
    jobs: &HashMap<Uuid, Job>,
    now: Timestamp,
) -> Option<Step> {
    let new_jobs = rollback_jobs(stored, &mut doc, jobs, now);
    if new_jobs.is_empty() {
        return None;
    }
    Some(Step {
        doc,
        event: None,
        action: "change.rollback_started",
        jobs: new_jobs,
    })
}

fn rolled_back(doc: ChangeDoc, jobs: &HashMap<Uuid, Job>) -> Option<Step> {
    let rollbacks: Vec<&Job> = doc
        .rings
        .iter()
        .flat_map(|r| r.hosts.iter())
        .filter_map(|h| h.rollback_job.and_then(|id| jobs.get(&id)))
        .collect();
    // A halted rollout made its rollback jobs with the halt; none means nothing to wait
    // for only when an operator rolled it back and no host had been changed.
    let nothing_to_undo = rollbacks.is_empty() && doc.rollback_requested.is_some();
    if (rollbacks.is_empty() && !nothing_to_undo)
        || rollbacks.iter().any(|j| j.state != JobState::Succeeded)
    {
        return None;
    }
    Some(Step {
        doc,
        event: Some(ChangeEvent::RolledBack),
        action: "change.rolled_back",
        jobs: Vec::new(),
    })
}
