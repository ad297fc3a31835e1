//! The `[notifications]` section of the server's configuration: where notifications go (signed
//! webhooks, mail routes through one SMTP relay), which events each destination takes, how far
//! ahead the time-based events warn, and how deliveries are retried.
//!
//! Secrets (a webhook's signing secret, the SMTP password) are hidden from `Debug`, so a
//! configuration logged or printed with `{:?}` shows `"<hidden>"` in their place.

use std::collections::BTreeSet;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::EventKind;

/// How notifications are sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NotificationsConfig {
    /// How often the notifier reads new audit events and sends what is due, in seconds.
    pub poll_secs: u32,
    /// How often it sweeps findings, windows and exceptions for deadlines, in seconds.
    pub sweep_secs: u32,
    /// A finding is "due soon" this many days before its due date.
    pub due_soon_days: u32,
    /// A maintenance window is "starting" this many minutes before it opens.
    pub window_lead_minutes: u32,
    /// An exception is "expiring" this many days before it ends.
    pub exception_lead_days: u32,
    /// Attempts per delivery before it is given up (the last error is kept).
    pub max_attempts: u32,
    /// The wait after the first failed attempt, in seconds; it doubles with each further
    /// failure, up to `retry_max_secs`.
    pub retry_base_secs: u32,
    pub retry_max_secs: u32,
    /// How long one delivery (connect, send, answer) may take, in seconds.
    pub timeout_secs: u32,
    /// The most bytes of a webhook receiver's answer read (the rest is ignored).
    pub max_response_bytes: u32,
    /// The CA certificates (PEM) that `https://` webhooks and SMTP over TLS are checked
    /// against; empty: the system's bundle.
    pub ca_file: PathBuf,
    pub webhooks: Vec<WebhookConfig>,
    pub smtp: SmtpConfig,
    pub email: Vec<EmailRoute>,
}

impl Default for NotificationsConfig {
    fn default() -> NotificationsConfig {
        NotificationsConfig {
            poll_secs: 5,
            sweep_secs: 300,
            due_soon_days: 3,
            window_lead_minutes: 60,
            exception_lead_days: 7,
            max_attempts: 8,
            retry_base_secs: 30,
            retry_max_secs: 3600,
            timeout_secs: 10,
            max_response_bytes: 64 * 1024,
            ca_file: PathBuf::new(),
            webhooks: Vec::new(),
            smtp: SmtpConfig::default(),
            email: Vec::new(),
        }
    }
}

/// One webhook: JSON POSTed to `url`, signed with `secret`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// A name for logs, metrics and the outbox (`webhook:NAME`); default: the URL's host.
    /// Keep it when the URL changes, or deliveries still queued for the old name are given
    /// up.
    #[serde(default)]
    pub name: String,
    /// `https://…` (or `http://…` on a trusted network).
    pub url: String,
    /// The HMAC-SHA256 key the receiver checks `X-Patchwarden-Signature` with.
    pub secret: String,
    /// The events it takes (see `docs/notifications.md`); empty: every event.
    #[serde(default)]
    pub events: Vec<String>,
}

impl std::fmt::Debug for WebhookConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookConfig")
            .field("name", &self.name)
            .field("url", &self.url)
            .field("secret", &"<hidden>")
            .field("events", &self.events)
            .finish()
    }
}

/// How the SMTP connection is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SmtpTls {
    /// Plain text: only for a relay on this machine or a trusted network.
    None,
    /// STARTTLS, required (port 587).
    Starttls,
    /// TLS from the first byte (port 465).
    Tls,
}

/// The SMTP relay every mail route sends through.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SmtpConfig {
    /// Empty: no mail is sent (mail routes are refused).
    pub host: String,
    pub port: u16,
    pub tls: SmtpTls,
    /// Empty: no authentication.
    pub username: String,
    pub password: String,
    /// The sender, `Patchwarden <patchwarden@example.org>` or a bare address.
    pub from: String,
}

impl Default for SmtpConfig {
    fn default() -> SmtpConfig {
        SmtpConfig {
            host: String::new(),
            port: 587,
            tls: SmtpTls::Starttls,
            username: String::new(),
            password: String::new(),
            from: String::new(),
        }
    }
}

impl std::fmt::Debug for SmtpConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpConfig")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("tls", &self.tls)
            .field("username", &self.username)
            .field(
                "password",
                &if self.password.is_empty() {
                    ""
                } else {
                    "<hidden>"
                },
            )
            .field("from", &self.from)
            .finish()
    }
}

/// One mail route: who gets mail for which events.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmailRoute {
    /// A name for logs, metrics and the outbox (`email:NAME`); default: the first recipient.
    #[serde(default)]
    pub name: String,
    pub to: Vec<String>,
    /// The events it takes; empty: every event.
    #[serde(default)]
    pub events: Vec<String>,
    /// For `approval_needed`: only the steps these roles act on (`approver` for a submitted
    /// change, `authoriser` for an approved one); empty: both.
    #[serde(default)]
    pub roles: Vec<String>,
}

/// Why the `[notifications]` section cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("notifications: {0}")]
pub struct NotificationsConfigError(pub String);

/// The most destinations of each kind, and recipients per route: the outbox holds a row per
/// event and destination, so this bounds what one event can queue.
const MAX_DESTINATIONS: usize = 32;
const MAX_RECIPIENTS: usize = 50;

impl NotificationsConfig {
    /// Whether anything is configured to receive notifications.
    pub fn enabled(&self) -> bool {
        !self.webhooks.is_empty() || !self.email.is_empty()
    }

    /// Checks every setting; the error names the first wrong one.
    pub fn check(&self) -> Result<(), NotificationsConfigError> {
        let bad = |s: String| Err(NotificationsConfigError(s));
        for (name, v) in [
            ("poll_secs", self.poll_secs),
            ("sweep_secs", self.sweep_secs),
            ("max_attempts", self.max_attempts),
            ("retry_base_secs", self.retry_base_secs),
            ("timeout_secs", self.timeout_secs),
            ("max_response_bytes", self.max_response_bytes),
        ] {
            if v == 0 {
                return bad(format!("{name} must be at least 1"));
            }
        }
        if self.retry_max_secs < self.retry_base_secs {
            return bad("retry_max_secs is below retry_base_secs".into());
        }
        if self.webhooks.len() > MAX_DESTINATIONS || self.email.len() > MAX_DESTINATIONS {
            return bad(format!(
                "at most {MAX_DESTINATIONS} webhooks and {MAX_DESTINATIONS} mail routes"
            ));
        }
        let mut names = BTreeSet::new();
        for (i, w) in self.webhooks.iter().enumerate() {
            let url = reqwest::Url::parse(&w.url).map_err(|e| {
                NotificationsConfigError(format!("webhooks[{i}].url {:?}: {e}", w.url))
            })?;
            if !matches!(url.scheme(), "https" | "http") || url.host_str().is_none() {
                return bad(format!(
                    "webhooks[{i}].url {:?} is not an https:// or http:// URL",
                    w.url
                ));
            }
            if !url.username().is_empty() || url.password().is_some() {
                return bad(format!(
                    "webhooks[{i}].url must not carry a user name or password (the body is \
                     signed with the secret instead)"
                ));
            }
            if w.secret.len() < 16 {
                return bad(format!(
                    "webhooks[{i}].secret must be at least 16 characters (a receiver checks \
                     signatures with it)"
                ));
            }
            check_events(&format!("webhooks[{i}].events"), &w.events)?;
            if !names.insert(self.webhook_destination(i)) {
                return bad(format!(
                    "webhooks[{i}]: the name {:?} is taken; give it another `name`",
                    self.webhook_destination(i)
                ));
            }
        }
        if !self.email.is_empty() {
            let s = &self.smtp;
            if s.host.is_empty() {
                return bad("mail routes are configured but smtp.host is empty".into());
            }
            if s.port == 0 {
                return bad("smtp.port must not be 0".into());
            }
            if s.from.parse::<lettre::message::Mailbox>().is_err() {
                return bad(format!("smtp.from {:?} is not a mail address", s.from));
            }
            if s.username.is_empty() != s.password.is_empty() {
                return bad("smtp.username and smtp.password go together".into());
            }
        }
        for (i, r) in self.email.iter().enumerate() {
            if r.to.is_empty() || r.to.len() > MAX_RECIPIENTS {
                return bad(format!(
                    "email[{i}].to must name 1 to {MAX_RECIPIENTS} recipients"
                ));
            }
            for to in &r.to {
                if to.parse::<lettre::message::Mailbox>().is_err() {
                    return bad(format!("email[{i}].to: {to:?} is not a mail address"));
                }
            }
            check_events(&format!("email[{i}].events"), &r.events)?;
            for role in &r.roles {
                if !matches!(role.as_str(), "approver" | "authoriser") {
                    return bad(format!(
                        "email[{i}].roles: {role:?} is not approver or authoriser"
                    ));
                }
            }
            if !names.insert(self.email_destination(i)) {
                return bad(format!(
                    "email[{i}]: the name {:?} is taken; give it another `name`",
                    self.email_destination(i)
                ));
            }
        }
        Ok(())
    }

    /// The outbox name of webhook `i`: `webhook:NAME`, by default the URL's host.
    pub fn webhook_destination(&self, i: usize) -> String {
        let w = &self.webhooks[i];
        let name = if w.name.is_empty() {
            reqwest::Url::parse(&w.url)
                .ok()
                .and_then(|u| {
                    u.host_str().map(|h| {
                        format!(
                            "{h}{}",
                            u.port().map(|p| format!(":{p}")).unwrap_or_default()
                        )
                    })
                })
                .unwrap_or_default()
        } else {
            w.name.clone()
        };
        format!("webhook:{name}")
    }

    /// The outbox name of mail route `i`: `email:NAME`, by default the first recipient.
    pub fn email_destination(&self, i: usize) -> String {
        let r = &self.email[i];
        let name = if r.name.is_empty() {
            r.to.first().cloned().unwrap_or_default()
        } else {
            r.name.clone()
        };
        format!("email:{name}")
    }
}

fn check_events(field: &str, events: &[String]) -> Result<(), NotificationsConfigError> {
    for e in events {
        if EventKind::parse(e).is_none() {
            return Err(NotificationsConfigError(format!(
                "{field}: {e:?} is not an event (one of: {})",
                EventKind::ALL
                    .iter()
                    .map(|k| k.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
    }
    Ok(())
}

/// Whether a destination taking `events` takes `kind`.
pub(crate) fn takes(events: &[String], kind: EventKind) -> bool {
    events.is_empty() || events.iter().any(|e| e == kind.as_str())
}
