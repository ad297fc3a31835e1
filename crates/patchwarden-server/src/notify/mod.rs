//! Notifications: signed webhooks and mail for the events people must act on — a new
//! Emergency finding, a finding due soon or breached, a change waiting for approval or
//! authorisation, a maintenance window about to open, a halted rollout, an exception about to
//! expire (`docs/notifications.md`).
//!
//! One task per server ([`run`], started by `serve` like the rollout engine) does three things
//! on every poll:
//!
//! 1. **follows the audit chain** from the cursor the store keeps ([`sources::follow_audit`]):
//!    every state change already appends an audited event (`change.submit`,
//!    `change.rollout_halted`, `findings.sync` …), so the notifier needs no hook in the modules
//!    that make the changes, and the cursor moves in the same transaction as the notifications
//!    it queues — a restart neither skips nor repeats an event;
//! 2. every `sweep_secs`, **sweeps** for deadlines ([`sources::sweep`]): open findings due
//!    soon or past due (unless an exception covers them), windows opening within the lead,
//!    approved exceptions ending within the lead;
//! 3. **delivers** what is due from the outbox ([`deliver`]): claims rows under a lease, sends
//!    each, and records delivered, retry-with-backoff or given up.
//!
//! Every event has a dedup key (`finding:42:breached`, `change:PCR-2026-0001:approval:17`) that
//! the store keeps unique per destination, so a sweep that finds the same breach again, or a
//! second server sharing the database, queues nothing new. Queueing and delivery are
//! bookkeeping outside the audit chain (see `patchwarden_store::notification`).

pub mod config;
mod deliver;
mod mail;
pub mod sources;
mod webhook;

use std::sync::Arc;
use std::time::{Duration, Instant};

use jiff::Timestamp;
use patchwarden_store::notification::{Enqueued, NewNotification};
use patchwarden_store::{Store, StoreError};
use serde::Serialize;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

pub use config::NotificationsConfig;
pub use webhook::{sign, verify};

use crate::clock;
use crate::metrics::Metrics;
use crate::state::AppState;

/// What a notification is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// A finding opened (or was reclassified) as Emergency.
    EmergencyFinding,
    /// An open finding's due date is within `due_soon_days`.
    FindingDueSoon,
    /// An open finding is past its due date and no exception covers it.
    FindingBreached,
    /// A change was submitted (approvers act) or approved (authorisers act).
    ApprovalNeeded,
    /// A maintenance window opens within `window_lead_minutes`.
    WindowStarting,
    /// A rollout stopped: a ring failed, or it cannot start.
    RolloutHalted,
    /// An approved exception ends within `exception_lead_days`.
    ExceptionExpiring,
}

impl EventKind {
    pub const ALL: [EventKind; 7] = [
        EventKind::EmergencyFinding,
        EventKind::FindingDueSoon,
        EventKind::FindingBreached,
        EventKind::ApprovalNeeded,
        EventKind::WindowStarting,
        EventKind::RolloutHalted,
        EventKind::ExceptionExpiring,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::EmergencyFinding => "emergency_finding",
            EventKind::FindingDueSoon => "finding_due_soon",
            EventKind::FindingBreached => "finding_breached",
            EventKind::ApprovalNeeded => "approval_needed",
            EventKind::WindowStarting => "window_starting",
            EventKind::RolloutHalted => "rollout_halted",
            EventKind::ExceptionExpiring => "exception_expiring",
        }
    }

    pub fn parse(s: &str) -> Option<EventKind> {
        EventKind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// An event to notify, before it is addressed to destinations.
#[derive(Debug, Clone, PartialEq)]
pub struct Notice {
    pub kind: EventKind,
    /// Unique per event: the same event found again has the same key.
    pub dedup_key: String,
    pub occurred_at: Timestamp,
    /// One line: the mail's subject.
    pub subject: String,
    /// A few sentences a person can act on.
    pub summary: String,
    /// The web UI page's path (`/changes/PCR-2026-0001`); made absolute with `public_url`.
    pub path: String,
    /// For `approval_needed`: the role that acts next (`approver`, `authoriser`).
    pub role: Option<&'static str>,
    /// The event's particulars, for machines.
    pub data: serde_json::Value,
}

/// The webhook body (and what mail is written from).
#[derive(Debug, Clone, Serialize)]
pub struct Payload<'a> {
    /// The event's id: the same for every destination it goes to.
    pub id: Uuid,
    pub event: &'static str,
    pub occurred_at: Timestamp,
    pub subject: &'a str,
    pub summary: &'a str,
    pub link: String,
    pub data: &'a serde_json::Value,
}

/// The settings the notifier runs with.
#[derive(Debug, Clone)]
pub struct Settings {
    pub config: NotificationsConfig,
    /// The web UI's base URL (no trailing slash); empty: links are paths.
    pub public_url: String,
}

/// The outbox rows for `notices`: one per notice and destination that takes it.
pub fn address(settings: &Settings, notices: &[Notice]) -> Vec<NewNotification> {
    let c = &settings.config;
    let mut out = Vec::new();
    for n in notices {
        let mut destinations = Vec::new();
        for (i, w) in c.webhooks.iter().enumerate() {
            if config::takes(&w.events, n.kind) {
                destinations.push(c.webhook_destination(i));
            }
        }
        for (i, r) in c.email.iter().enumerate() {
            let role_ok = match n.role {
                Some(role) => r.roles.is_empty() || r.roles.iter().any(|x| x == role),
                None => true,
            };
            if config::takes(&r.events, n.kind) && role_ok {
                destinations.push(c.email_destination(i));
            }
        }
        if destinations.is_empty() {
            continue;
        }
        let payload = Payload {
            id: Uuid::new_v4(),
            event: n.kind.as_str(),
            occurred_at: n.occurred_at,
            subject: &n.subject,
            summary: &n.summary,
            link: format!("{}{}", settings.public_url, n.path),
            data: &n.data,
        };
        let payload = serde_json::to_value(&payload).unwrap_or(serde_json::Value::Null);
        for destination in destinations {
            out.push(NewNotification {
                id: Uuid::new_v4(),
                dedup_key: n.dedup_key.clone(),
                destination,
                event: n.kind.as_str().to_owned(),
                payload: payload.clone(),
            });
        }
    }
    out
}

/// Queues `notices` for their destinations, moving the audit cursor to `cursor` with the last
/// batch; counts what was queued per channel. Batches go per channel (so the counts are exact)
/// and within the store's batch limit; if one fails, the cursor stays and the next poll queues
/// the rest, the rows already queued being duplicates then.
pub async fn queue(
    store: &dyn Store,
    settings: &Settings,
    metrics: Option<&Metrics>,
    notices: &[Notice],
    cursor: Option<i64>,
    now: Timestamp,
) -> Result<Enqueued, StoreError> {
    let rows = address(settings, notices);
    let (webhooks, emails): (Vec<NewNotification>, Vec<NewNotification>) = rows
        .into_iter()
        .partition(|r| r.destination.starts_with("webhook:"));
    let mut batches: Vec<(&str, &[NewNotification])> = Vec::new();
    for (channel, rows) in [("webhook", &webhooks), ("email", &emails)] {
        for chunk in rows.chunks(patchwarden_store::notification::MAX_BATCH) {
            batches.push((channel, chunk));
        }
    }
    let mut total = Enqueued::default();
    if batches.is_empty() {
        if cursor.is_some() {
            store.enqueue_notifications(&[], cursor, now).await?;
        }
        return Ok(total);
    }
    let last = batches.len() - 1;
    for (i, (channel, batch)) in batches.into_iter().enumerate() {
        let done = store
            .enqueue_notifications(batch, if i == last { cursor } else { None }, now)
            .await?;
        total.queued += done.queued;
        total.duplicates += done.duplicates;
        if let Some(m) = metrics {
            m.notifications
                .get_or_create(&counter_labels(channel, "queued"))
                .inc_by(u64::from(done.queued));
        }
    }
    Ok(total)
}

pub(crate) fn counter_labels(channel: &str, what: &str) -> Vec<(&'static str, String)> {
    vec![
        ("channel", channel.to_owned()),
        ("outcome", what.to_owned()),
    ]
}

/// The notifier's task handle: cancel it and await it to stop after the delivery in flight.
#[derive(Debug)]
pub struct Task {
    cancel: CancellationToken,
    handle: tokio::task::JoinHandle<()>,
}

impl Task {
    /// Stops the notifier: no new claim after this, the delivery in flight finishes (its own
    /// timeout bounds it) or, after `grace`, is abandoned — its lease runs out and it is sent
    /// again later, which a receiver tells apart by `X-Patchwarden-Delivery`.
    pub async fn stop(self, grace: Duration) {
        self.cancel.cancel();
        let abort = self.handle.abort_handle();
        if tokio::time::timeout(grace, self.handle).await.is_err() {
            abort.abort();
        }
    }
}

/// Starts the notifier when anything is configured to receive notifications.
pub(crate) fn start(state: Arc<AppState>, settings: Settings) -> Result<Option<Task>, String> {
    if !settings.config.enabled() {
        return Ok(None);
    }
    let sender = deliver::Sender::new(&settings.config)?;
    let cancel = CancellationToken::new();
    let handle = tokio::spawn(run(state, settings, sender, cancel.clone()));
    Ok(Some(Task { cancel, handle }))
}

async fn run(
    state: Arc<AppState>,
    settings: Settings,
    sender: deliver::Sender,
    cancel: CancellationToken,
) {
    let poll = Duration::from_secs(u64::from(settings.config.poll_secs));
    let sweep_every = Duration::from_secs(u64::from(settings.config.sweep_secs));
    let mut last_sweep: Option<Instant> = None;
    let mut seen = sources::Seen::default();
    let lease_owner = Uuid::new_v4();
    tracing::info!(
        webhooks = settings.config.webhooks.len(),
        mail_routes = settings.config.email.len(),
        "notifications on"
    );
    loop {
        if cancel.is_cancelled() {
            break;
        }
        if let Err(e) = sources::follow_audit(&state, &settings, clock::now()).await {
            tracing::warn!(error = %e, "following the audit chain for notifications failed");
        }
        if last_sweep.is_none_or(|t| t.elapsed() >= sweep_every) {
            last_sweep = Some(Instant::now());
            let swept = sources::sweep(
                &state,
                &settings,
                Some(&state.metrics),
                &mut seen,
                clock::now(),
            )
            .await;
            match swept {
                Ok(_) => {
                    state.metrics.notification_sweeps.inc();
                }
                Err(e) => tracing::warn!(error = %e, "the notification sweep failed"),
            }
        }
        deliver::deliver_due(&state, &settings, &sender, lease_owner, &cancel).await;
        tokio::select! {
            () = cancel.cancelled() => break,
            () = tokio::time::sleep(poll) => {}
        }
    }
    tracing::info!("notifications stopped");
}
