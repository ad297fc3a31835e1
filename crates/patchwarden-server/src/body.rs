//! Reading request bodies within their limits: the bytes as sent (at most the route's limit),
//! gzip decompressed to at most the inventory limit, then JSON — each failure a typed
//! `ApiError` (413 or 400 as problem+json), and nothing acted on until the whole body read.
//!
//! axum's own body limit answers in plain text; reading here keeps every refusal a problem
//! document and lets the signature cover the exact bytes that arrived.

use std::io::Read;

use axum::body::{Body, Bytes};
use axum::http::HeaderMap;
use flate2::read::MultiGzDecoder;
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// The limit for small JSON bodies: enrollment, check-in, job reports.
pub(crate) const SMALL_BODY: u64 = 256 * 1024;

/// Reads the body, refusing it past `limit` bytes.
pub(crate) async fn read(body: Body, limit: u64) -> Result<Bytes, ApiError> {
    let max = usize::try_from(limit).unwrap_or(usize::MAX);
    axum::body::to_bytes(body, max).await.map_err(|e| {
        // `to_bytes` reports an over-long body as a `LengthLimitError` in its source chain;
        // anything else is a broken connection, which the client will not see anyway.
        let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&e);
        while let Some(s) = source {
            if s.is::<http_body_util::LengthLimitError>() {
                return ApiError::PayloadTooLarge { limit };
            }
            source = s.source();
        }
        ApiError::MalformedBody(format!("the body could not be read: {e}"))
    })
}

/// The body's content, decompressed when `Content-Encoding: gzip`, at most `limit` bytes
/// after decompression (a gzip bomb stops there).
pub(crate) fn decode(headers: &HeaderMap, raw: &[u8], limit: u64) -> Result<Vec<u8>, ApiError> {
    let encoding = headers.get(axum::http::header::CONTENT_ENCODING).map(|v| {
        v.to_str()
            .unwrap_or("(not text)")
            .trim()
            .to_ascii_lowercase()
    });
    match encoding.as_deref() {
        None | Some("identity") => Ok(raw.to_vec()),
        Some("gzip") => {
            let mut out = Vec::new();
            MultiGzDecoder::new(raw)
                .take(limit + 1)
                .read_to_end(&mut out)
                .map_err(|e| ApiError::MalformedBody(format!("the gzip body is damaged: {e}")))?;
            if out.len() as u64 > limit {
                return Err(ApiError::PayloadTooLarge { limit });
            }
            Ok(out)
        }
        Some(other) => Err(ApiError::Unsupported(format!(
            "content encoding {other:?}: only gzip is accepted"
        ))),
    }
}

/// The body as JSON of `T`; serde's message (line, column, field) goes back to the caller.
pub(crate) fn json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(bytes).map_err(|e| ApiError::MalformedBody(e.to_string()))
}

/// Refuses a compressed body on routes that take none.
pub(crate) fn identity_only(headers: &HeaderMap) -> Result<(), ApiError> {
    match headers.get(axum::http::header::CONTENT_ENCODING) {
        None => Ok(()),
        Some(v) if v.as_bytes().eq_ignore_ascii_case(b"identity") => Ok(()),
        Some(_) => Err(ApiError::Unsupported(
            "this route takes an uncompressed body".into(),
        )),
    }
}
