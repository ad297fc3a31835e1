//! Delivering the outbox: claim due rows under a lease, send each to its webhook or mail route,
//! and record the outcome — delivered; a retry after a backoff that doubles from
//! `retry_base_secs` up to `retry_max_secs`; or, after `max_attempts`, given up with the last
//! error. A claim counts as an attempt, so a server that dies mid-send does not retry forever.

use std::path::{Path, PathBuf};
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use lettre::{AsyncSmtpTransport, Tokio1Executor};
use patchwarden_store::notification::{DeliveryOutcome, Notification};
use rustls::pki_types::CertificateDer;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::config::NotificationsConfig;
use super::{Settings, counter_labels, mail, webhook};
use crate::clock;
use crate::state::AppState;

/// Rows claimed per round.
const CLAIM: u32 = 16;

/// The clients deliveries go out through.
#[derive(Debug)]
pub(super) struct Sender {
    http: reqwest::Client,
    smtp: Option<AsyncSmtpTransport<Tokio1Executor>>,
}

impl Sender {
    pub(super) fn new(config: &NotificationsConfig) -> Result<Sender, String> {
        Ok(Sender {
            http: webhook::client(config)?,
            smtp: mail::transport(config)?,
        })
    }
}

/// The usual places of a system CA bundle.
const SYSTEM_BUNDLES: &[&str] = &[
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/cert.pem",
    "/etc/ssl/ca-bundle.pem",
];

/// The CA certificates of `ca_file`, or of the system's bundle when it is empty.
pub(super) fn root_certificates(ca_file: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let candidates: Vec<PathBuf> = if ca_file.as_os_str().is_empty() {
        SYSTEM_BUNDLES.iter().map(PathBuf::from).collect()
    } else {
        vec![ca_file.to_owned()]
    };
    for path in candidates {
        let Ok(pem) = std::fs::read(&path) else {
            if !ca_file.as_os_str().is_empty() {
                return Err(format!(
                    "notifications.ca_file {} cannot be read",
                    ca_file.display()
                ));
            }
            continue;
        };
        let certs: Vec<_> = rustls_pemfile::certs(&mut pem.as_slice())
            .flatten()
            .collect();
        if !certs.is_empty() {
            return Ok(certs);
        }
    }
    if !ca_file.as_os_str().is_empty() {
        return Err(format!(
            "notifications.ca_file {} holds no certificate",
            ca_file.display()
        ));
    }
    // No bundle on this system: https:// webhooks and SMTP over TLS fail with a certificate
    // error that says so; plain ones still work.
    Ok(Vec::new())
}

/// The same certificates as a rustls root store.
pub(super) fn roots(ca_file: &Path) -> Result<rustls::RootCertStore, String> {
    let mut store = rustls::RootCertStore::empty();
    for cert in root_certificates(ca_file)? {
        // A certificate the store cannot use is skipped, as system bundles hold a few.
        let _ = store.add(cert);
    }
    Ok(store)
}

/// The wait before attempt `attempts + 1`, after `attempts` failed ones: `base`, doubled per
/// further failure, at most `max`.
pub(super) fn backoff(attempts: u32, base_secs: u32, max_secs: u32) -> SignedDuration {
    let doublings = attempts.saturating_sub(1).min(30);
    let secs = u64::from(base_secs)
        .saturating_mul(1u64 << doublings)
        .min(u64::from(max_secs));
    SignedDuration::from_secs(i64::try_from(secs).unwrap_or(i64::MAX))
}

/// Sends what is due until nothing is, or `cancel` is set (the delivery in flight finishes).
pub(super) async fn deliver_due(
    state: &AppState,
    settings: &Settings,
    sender: &Sender,
    lease: Uuid,
    cancel: &CancellationToken,
) {
    let c = &settings.config;
    // A claim lasts as long as a round of sends can take, with room to spare: a lease that
    // ran out under a slow receiver would let another server send the same row again.
    let per_send = u64::from(c.timeout_secs) + 5;
    let lease_for = Duration::from_secs(per_send * u64::from(CLAIM) + 30);
    loop {
        if cancel.is_cancelled() {
            return;
        }
        let now = clock::now();
        let until = now
            .checked_add(SignedDuration::try_from(lease_for).unwrap_or(SignedDuration::MAX))
            .unwrap_or(Timestamp::MAX);
        let claimed = match state
            .store
            .claim_notifications(lease, until, CLAIM, now)
            .await
        {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "claiming notifications failed");
                return;
            }
        };
        let full = claimed.len() == CLAIM as usize;
        let mut rows = claimed.into_iter();
        while let Some(n) = rows.next() {
            if cancel.is_cancelled() {
                release(state, lease, std::iter::once(n).chain(rows)).await;
                return;
            }
            deliver_one(state, settings, sender, lease, n).await;
        }
        if !full {
            return;
        }
    }
}

/// Hands back rows claimed but not sent because the server is stopping: due again at once (for
/// this server after a restart, or another sharing the database), rather than after the lease.
/// Their claim still counted as an attempt, which bounds a server that keeps being stopped.
async fn release(state: &AppState, lease: Uuid, rows: impl Iterator<Item = Notification>) {
    let now = clock::now();
    let outcome = DeliveryOutcome::Retry {
        at: now,
        error: "the server stopped before sending it".into(),
    };
    for n in rows {
        if let Err(e) = state
            .store
            .finish_notification(n.id, lease, &outcome, now)
            .await
        {
            tracing::warn!(delivery = %n.id, error = %e, "handing back a notification failed");
        }
    }
}

async fn deliver_one(
    state: &AppState,
    settings: &Settings,
    sender: &Sender,
    lease: Uuid,
    n: Notification,
) {
    let c = &settings.config;
    let channel = if n.destination.starts_with("webhook:") {
        "webhook"
    } else {
        "email"
    };
    let result = send(settings, sender, &n).await;
    let now = clock::now();
    let (outcome_name, outcome) = match result {
        Ok(()) => ("delivered", DeliveryOutcome::Delivered),
        Err(Failure::Permanent(error)) => ("failed", DeliveryOutcome::GiveUp { error }),
        Err(Failure::Transient(error)) if n.attempts >= c.max_attempts => (
            "failed",
            DeliveryOutcome::GiveUp {
                error: format!("after {} attempts: {error}", n.attempts),
            },
        ),
        Err(Failure::Transient(error)) => {
            let at = now
                .checked_add(backoff(n.attempts, c.retry_base_secs, c.retry_max_secs))
                .unwrap_or(Timestamp::MAX);
            ("retried", DeliveryOutcome::Retry { at, error })
        }
    };
    match &outcome {
        DeliveryOutcome::Delivered => tracing::info!(
            delivery = %n.id, destination = %n.destination, event = %n.event,
            attempt = n.attempts, "notification delivered"
        ),
        DeliveryOutcome::Retry { at, error } => tracing::warn!(
            delivery = %n.id, destination = %n.destination, event = %n.event,
            attempt = n.attempts, retry_at = %at, error = %error, "notification not delivered"
        ),
        DeliveryOutcome::GiveUp { error } => tracing::error!(
            delivery = %n.id, destination = %n.destination, event = %n.event,
            attempt = n.attempts, error = %error, "notification given up"
        ),
    }
    state
        .metrics
        .notifications
        .get_or_create(&counter_labels(channel, outcome_name))
        .inc();
    match state
        .store
        .finish_notification(n.id, lease, &outcome, now)
        .await
    {
        Ok(true) => {}
        Ok(false) => tracing::warn!(
            delivery = %n.id,
            "a notification's claim ran out before its outcome was recorded; it may be sent again"
        ),
        Err(e) => tracing::warn!(delivery = %n.id, error = %e, "recording a notification failed"),
    }
}

/// Why a send failed.
enum Failure {
    /// Worth another attempt (the receiver or relay may come back).
    Transient(String),
    /// No attempt can succeed (the destination is no longer configured, the payload cannot be
    /// written as mail).
    Permanent(String),
}

async fn send(settings: &Settings, sender: &Sender, n: &Notification) -> Result<(), Failure> {
    let c = &settings.config;
    if let Some(name) = n.destination.strip_prefix("webhook:") {
        let Some(i) = (0..c.webhooks.len()).find(|&i| c.webhook_destination(i) == n.destination)
        else {
            return Err(Failure::Permanent(format!(
                "webhook {name:?} is no longer configured"
            )));
        };
        let body = serde_json::to_vec(&n.payload)
            .map_err(|e| Failure::Permanent(format!("the payload: {e}")))?;
        let timestamp = clock::now().as_second();
        return webhook::send(
            &sender.http,
            &c.webhooks[i],
            c.max_response_bytes,
            n.id,
            &n.event,
            &body,
            timestamp,
        )
        .await
        .map_err(Failure::Transient);
    }
    let Some(i) = (0..c.email.len()).find(|&i| c.email_destination(i) == n.destination) else {
        return Err(Failure::Permanent(format!(
            "mail route {:?} is no longer configured",
            n.destination
        )));
    };
    let Some(transport) = &sender.smtp else {
        return Err(Failure::Permanent("no SMTP relay is configured".into()));
    };
    let message = mail::message(c, &c.email[i], n.id, &n.payload).map_err(Failure::Permanent)?;
    mail::send(transport, message)
        .await
        .map_err(Failure::Transient)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_the_base_up_to_the_cap() {
        let s = |a| backoff(a, 30, 3600).as_secs();
        assert_eq!(
            [s(1), s(2), s(3), s(4), s(8), s(40)],
            [30, 60, 120, 240, 3600, 3600]
        );
    }
}
