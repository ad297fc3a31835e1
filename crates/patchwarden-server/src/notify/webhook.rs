//! Webhooks: the payload POSTed as JSON, signed with HMAC-SHA256 over `"<timestamp>.<body>"`
//! with the webhook's secret, so a receiver can tell it came from this server, unaltered, and
//! recently (`docs/notifications.md` shows how to check it).
//!
//! Headers: `X-Patchwarden-Event` (the event name), `X-Patchwarden-Delivery` (the outbox row's
//! id: the same on every retry, so a receiver can drop a repeat), `X-Patchwarden-Timestamp`
//! (unix seconds when this attempt was signed) and `X-Patchwarden-Signature: sha256=<hex>`.
//! Any 2xx answer is a delivery; anything else, or no answer within the timeout, is a failed
//! attempt. Redirects are not followed: a signed body goes only where it was configured to.

use std::time::Duration;

use reqwest::header::{CONTENT_TYPE, HeaderValue};
use ring::hmac;

use super::config::{NotificationsConfig, WebhookConfig};

/// The signature header's value for `body` sent at `timestamp` (unix seconds):
/// `sha256=` and the hex HMAC-SHA256 of `"<timestamp>.<body>"` under `secret`.
pub fn sign(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret);
    let mut ctx = hmac::Context::with_key(&key);
    ctx.update(timestamp.to_string().as_bytes());
    ctx.update(b".");
    ctx.update(body);
    let tag = ctx.sign();
    format!("sha256={}", patchwarden_store::codec::hex(tag.as_ref()))
}

/// Whether `signature` (the header's value) is the one `secret` gives for `body` at
/// `timestamp`, compared in constant time. What a receiver does (it should also refuse an old
/// timestamp, to stop replays).
pub fn verify(secret: &[u8], timestamp: i64, body: &[u8], signature: &str) -> bool {
    let Some(hex) = signature.strip_prefix("sha256=") else {
        return false;
    };
    let Some(tag) = unhex(hex) else {
        return false;
    };
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret);
    let mut msg = Vec::with_capacity(body.len() + 21);
    msg.extend_from_slice(timestamp.to_string().as_bytes());
    msg.push(b'.');
    msg.extend_from_slice(body);
    hmac::verify(&key, &msg, &tag).is_ok()
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// The HTTP client for webhooks: rustls with the ring provider and the configured (or the
/// system's) CA certificates, the delivery timeout, no redirects.
pub(super) fn client(config: &NotificationsConfig) -> Result<reqwest::Client, String> {
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let roots = super::deliver::roots(&config.ca_file)?;
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let timeout = Duration::from_secs(u64::from(config.timeout_secs));
    reqwest::Client::builder()
        .use_preconfigured_tls(tls)
        .connect_timeout(timeout)
        .timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("patchwarden/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| format!("the webhook client: {e}"))
}

/// Sends one delivery. `Ok` on a 2xx answer; otherwise the reason, without the secret.
pub(super) async fn send(
    client: &reqwest::Client,
    hook: &WebhookConfig,
    max_response_bytes: u32,
    delivery: uuid::Uuid,
    event: &str,
    body: &[u8],
    timestamp: i64,
) -> Result<(), String> {
    let signature = sign(hook.secret.as_bytes(), timestamp, body);
    let header = |v: &str| HeaderValue::from_str(v).map_err(|e| format!("a header: {e}"));
    let mut response = client
        .post(&hook.url)
        .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
        .header("X-Patchwarden-Event", header(event)?)
        .header("X-Patchwarden-Delivery", header(&delivery.to_string())?)
        .header("X-Patchwarden-Timestamp", header(&timestamp.to_string())?)
        .header("X-Patchwarden-Signature", header(&signature)?)
        .body(body.to_vec())
        .send()
        .await
        .map_err(|e| describe(&e))?;
    let status = response.status();
    // Read a bounded part of the answer (for the error message, and so the connection can be
    // reused); a receiver that sends more is not read further.
    let mut answer = Vec::new();
    let limit = usize::try_from(max_response_bytes).unwrap_or(usize::MAX);
    while answer.len() < limit {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                let room = limit - answer.len();
                answer.extend_from_slice(&chunk[..chunk.len().min(room)]);
            }
            Ok(None) => break,
            Err(e) if status.is_success() => {
                // The answer was a success; a broken body after it changes nothing.
                tracing::debug!(error = %describe(&e), "webhook answer body unread");
                break;
            }
            Err(e) => return Err(format!("{status}, then {}", describe(&e))),
        }
    }
    if status.is_success() {
        return Ok(());
    }
    let text = String::from_utf8_lossy(&answer);
    let text: String = text.chars().take(200).collect();
    Err(format!("the receiver answered {status}: {}", text.trim()))
}

/// The error and its causes, without the URL's query (which might carry a token).
fn describe(e: &reqwest::Error) -> String {
    let mut s = if e.is_timeout() {
        "timed out".to_owned()
    } else if e.is_connect() {
        "could not connect".to_owned()
    } else {
        "the request failed".to_owned()
    };
    let mut source = std::error::Error::source(e);
    while let Some(c) = source {
        s.push_str(": ");
        s.push_str(&c.to_string());
        source = c.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_verify_and_a_changed_byte_does_not() {
        let sig = sign(b"0123456789abcdef", 1_764_000_000, b"{\"a\":1}");
        assert!(sig.starts_with("sha256="));
        assert_eq!(sig.len(), 7 + 64);
        assert!(verify(
            b"0123456789abcdef",
            1_764_000_000,
            b"{\"a\":1}",
            &sig
        ));
        assert!(!verify(
            b"0123456789abcdef",
            1_764_000_000,
            b"{\"a\":2}",
            &sig
        ));
        assert!(!verify(
            b"0123456789abcdef",
            1_764_000_001,
            b"{\"a\":1}",
            &sig
        ));
        assert!(!verify(
            b"another secret!!",
            1_764_000_000,
            b"{\"a\":1}",
            &sig
        ));
        assert!(!verify(
            b"0123456789abcdef",
            1_764_000_000,
            b"{\"a\":1}",
            "sha256=zz"
        ));
    }

    #[test]
    fn the_signature_is_rfc_4231_hmac_sha256() {
        // RFC 4231 test case 2 (key "Jefe"), so the primitive is the standard one.
        let key = hmac::Key::new(hmac::HMAC_SHA256, b"Jefe");
        let tag = hmac::sign(&key, b"what do ya want for nothing?");
        assert_eq!(
            patchwarden_store::codec::hex(tag.as_ref()),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        // And the signed message is exactly "<timestamp>.<body>".
        let manual = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, b"k"), b"42.body");
        assert_eq!(
            sign(b"k", 42, b"body"),
            format!("sha256={}", patchwarden_store::codec::hex(manual.as_ref()))
        );
    }
}
