//! Mail: a plain-text message a person can act on — what happened, which host, finding or
//! change, the due date, the web UI's page — sent through the configured SMTP relay with
//! `lettre` (tokio, rustls with the ring provider). One connection per message: notifications
//! are few, and a pooled connection to a relay that restarted is one more thing to go stale.

use std::time::Duration;

use lettre::message::header::ContentType;
use lettre::message::{Mailbox, Mailboxes};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, CertificateStore, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use serde_json::Value;

use super::config::{EmailRoute, NotificationsConfig, SmtpTls};

/// The SMTP transport, or `None` when no mail route is configured.
pub(super) fn transport(
    config: &NotificationsConfig,
) -> Result<Option<AsyncSmtpTransport<Tokio1Executor>>, String> {
    if config.email.is_empty() {
        return Ok(None);
    }
    let s = &config.smtp;
    let params = || -> Result<TlsParameters, String> {
        let mut b = TlsParameters::builder(s.host.clone());
        if !config.ca_file.as_os_str().is_empty() {
            // Only the configured CAs: an internal relay's own CA, not the whole world's.
            b = b.certificate_store(CertificateStore::None);
            for der in super::deliver::root_certificates(&config.ca_file)? {
                let cert = Certificate::from_der(der.to_vec())
                    .map_err(|e| format!("smtp: a CA certificate: {e}"))?;
                b = b.add_root_certificate(cert);
            }
        }
        // Otherwise the system's bundle (lettre's `rustls-native-certs`).
        b.build_rustls().map_err(|e| format!("smtp: TLS: {e}"))
    };
    let tls = match s.tls {
        SmtpTls::None => Tls::None,
        SmtpTls::Starttls => Tls::Required(params()?),
        SmtpTls::Tls => Tls::Wrapper(params()?),
    };
    let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(s.host.clone())
        .port(s.port)
        .tls(tls)
        .timeout(Some(Duration::from_secs(u64::from(config.timeout_secs))));
    if !s.username.is_empty() {
        builder = builder.credentials(Credentials::new(s.username.clone(), s.password.clone()));
    }
    Ok(Some(builder.build()))
}

/// The message for `payload` to `route`'s recipients.
pub(super) fn message(
    config: &NotificationsConfig,
    route: &EmailRoute,
    delivery: uuid::Uuid,
    payload: &Value,
) -> Result<Message, String> {
    let from: Mailbox = config
        .smtp
        .from
        .parse()
        .map_err(|e| format!("smtp.from: {e}"))?;
    let mut to = Mailboxes::new();
    for r in &route.to {
        to.push(r.parse::<Mailbox>().map_err(|e| format!("{r:?}: {e}"))?);
    }
    let text = |k: &str| payload.get(k).and_then(Value::as_str).unwrap_or("");
    // A subject is one line: a title with a line break in it would end the header early.
    let subject: String = format!("[Patchwarden] {}", text("subject"))
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(200)
        .collect();
    let mut builder = Message::builder()
        .from(from)
        .subject(subject)
        .header(ContentType::TEXT_PLAIN)
        .message_id(Some(format!("<{delivery}@patchwarden.notifications>")));
    for mailbox in to {
        builder = builder.to(mailbox);
    }
    builder
        .body(body(payload))
        .map_err(|e| format!("the message: {e}"))
}

/// The plain-text body: the summary, the particulars, the link.
pub(super) fn body(payload: &Value) -> String {
    let text = |k: &str| payload.get(k).and_then(Value::as_str).unwrap_or("");
    let mut out = String::new();
    out.push_str(text("summary"));
    out.push_str("\n\n");
    let link = text("link");
    if !link.is_empty() {
        out.push_str("Open it in Patchwarden: ");
        out.push_str(link);
        out.push_str("\n\n");
    }
    out.push_str("Details:\n");
    if let Some(data) = payload.get("data").and_then(Value::as_object) {
        for (k, v) in data {
            let shown = match v {
                Value::Null => continue,
                Value::String(s) => s.clone(),
                Value::Array(a) if a.is_empty() => continue,
                Value::Array(a) => a
                    .iter()
                    .map(|x| x.as_str().map_or_else(|| x.to_string(), str::to_owned))
                    .collect::<Vec<_>>()
                    .join(", "),
                other => other.to_string(),
            };
            out.push_str(&format!("  {k}: {shown}\n"));
        }
    }
    out.push_str(&format!(
        "\nEvent: {} at {}\n-- \nSent by Patchwarden's notifications ([notifications] in the \
         server's configuration).\n",
        text("event"),
        text("occurred_at")
    ));
    out
}

/// Sends one message.
pub(super) async fn send(
    transport: &AsyncSmtpTransport<Tokio1Executor>,
    message: Message,
) -> Result<(), String> {
    transport
        .send(message)
        .await
        .map(|_| ())
        .map_err(|e| format!("SMTP: {e}"))
}
