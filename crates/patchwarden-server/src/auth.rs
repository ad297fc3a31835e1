//! Agent authentication: every request after enrollment carries the host id, a timestamp, a
//! nonce and an Ed25519 signature over them, the method, the path and the body's hash (see
//! `patchwarden_api::v1::signing`). The server holds only the public key, so a copy of its
//! database cannot sign as an agent.
//!
//! The order of checks matters: the timestamp and the signature are checked before the nonce
//! is recorded, so a forger cannot fill the nonce table, and the nonce is recorded in the
//! store before anything is acted on, so a replay inside the window is refused even by
//! another server sharing the database.

use axum::http::{HeaderMap, Method, Uri};
use ed25519_dalek::{Signature, VerifyingKey};
use jiff::Timestamp;
use patchwarden_api::v1::signing::{self, MAX_SKEW_SECS, NONCE_HEX_LEN, unhex};
use patchwarden_store::{Host, HostState};
use uuid::Uuid;

use crate::error::ApiError;
use crate::state::AppState;

/// The signature headers of a request.
#[derive(Debug)]
pub(crate) struct SignatureHeaders {
    pub host: Option<String>,
    pub timestamp: i64,
    pub nonce: String,
    signature: [u8; 64],
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// Reads the signature headers and checks the timestamp against `now`.
pub(crate) fn read_headers(
    headers: &HeaderMap,
    now: Timestamp,
) -> Result<SignatureHeaders, ApiError> {
    let timestamp = header(headers, signing::HEADER_TIMESTAMP)
        .ok_or(ApiError::Unauthenticated("no request timestamp"))?
        .parse::<i64>()
        .map_err(|_| ApiError::Unauthenticated("the request timestamp is not a number"))?;
    let nonce = header(headers, signing::HEADER_NONCE)
        .ok_or(ApiError::Unauthenticated("no request nonce"))?;
    if nonce.len() != NONCE_HEX_LEN || unhex::<16>(nonce).is_none() {
        return Err(ApiError::Unauthenticated(
            "the request nonce is not 32 hex digits",
        ));
    }
    let signature = header(headers, signing::HEADER_SIGNATURE)
        .and_then(unhex::<64>)
        .ok_or(ApiError::Unauthenticated(
            "no request signature, or not 128 hex digits",
        ))?;
    let skew = timestamp.saturating_sub(now.as_second());
    if skew.abs() > MAX_SKEW_SECS {
        return Err(ApiError::ClockSkew { skew });
    }
    Ok(SignatureHeaders {
        host: header(headers, signing::HEADER_HOST).map(str::to_owned),
        timestamp,
        nonce: nonce.to_ascii_lowercase(),
        signature,
    })
}

/// Verifies the signature of a request with `public_key_hex`.
pub(crate) fn verify(
    sig: &SignatureHeaders,
    public_key_hex: &str,
    method: &Method,
    uri: &Uri,
    body: &[u8],
) -> Result<(), ApiError> {
    let key = unhex::<32>(public_key_hex)
        .and_then(|k| VerifyingKey::from_bytes(&k).ok())
        .ok_or_else(|| ApiError::SignatureInvalid {
            reason: "the public key is not an Ed25519 key".into(),
        })?;
    let path = uri.path_and_query().map_or(uri.path(), |p| p.as_str());
    let message = signing::message(
        method.as_str(),
        path,
        sig.host.as_deref(),
        sig.timestamp,
        &sig.nonce,
        body,
    );
    key.verify_strict(&message, &Signature::from_bytes(&sig.signature))
        .map_err(|_| ApiError::SignatureInvalid {
            reason: format!("signature does not verify for {} {path}", method.as_str()),
        })
}

/// An agent request whose signature verifies, from a host that is active; its nonce is not
/// recorded yet.
#[derive(Debug)]
pub(crate) struct Signed {
    pub(crate) host: Host,
    pub(crate) nonce: String,
    /// Until when the nonce must be remembered: past it, the timestamp window refuses the
    /// request anyway.
    pub(crate) nonce_expires_at: Timestamp,
}

/// Authenticates an agent request: the host it names, its signature, then its nonce. Returns
/// the host, refusing retired and quarantined ones.
pub(crate) async fn agent(
    state: &AppState,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
    now: Timestamp,
) -> Result<Host, ApiError> {
    let signed = signed(state, method, uri, headers, body, now).await?;
    state
        .store
        .record_nonce(signed.host.id, &signed.nonce, signed.nonce_expires_at, now)
        .await?;
    Ok(signed.host)
}

/// [`agent`] without recording the nonce, for a handler that records it in its own
/// transaction (a check-in: [`patchwarden_store::Store::check_in`]). The caller must record
/// it before it acts on the request.
pub(crate) async fn signed(
    state: &AppState,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
    now: Timestamp,
) -> Result<Signed, ApiError> {
    let sig = read_headers(headers, now)?;
    let claimed = sig
        .host
        .as_deref()
        .ok_or(ApiError::Unauthenticated("no host id"))?;
    // An unknown or malformed host id reads as a bad signature: which one it was is logged,
    // not told.
    let id = Uuid::parse_str(claimed).map_err(|_| ApiError::SignatureInvalid {
        reason: "the host id is not a UUID".into(),
    })?;
    let host = state
        .store
        .get_host(id)
        .await?
        .ok_or_else(|| ApiError::SignatureInvalid {
            reason: format!("no host {id}"),
        })?;
    verify(&sig, &host.public_key, method, uri, body)?;
    let nonce_expires_at =
        Timestamp::from_second(sig.timestamp.saturating_add(2 * MAX_SKEW_SECS)).unwrap_or(now);
    match host.state {
        HostState::Active => {}
        HostState::Retired => return Err(ApiError::HostRetired),
        HostState::Quarantined => {
            return Err(ApiError::HostIdentityConflict(format!(
                "host {} is quarantined: {}; an operator must retire it and the host enroll \
                 again",
                host.id,
                host.state_reason.as_deref().unwrap_or("no reason recorded")
            )));
        }
    }
    tracing::Span::current().record("host", tracing::field::display(host.id));
    Ok(Signed {
        host,
        nonce: sig.nonce,
        nonce_expires_at,
    })
}
