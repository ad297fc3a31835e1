//! Fetching one feed document over HTTP(S): a conditional request with the validators of the
//! last response (`If-None-Match`, `If-Modified-Since`), a connect timeout and a total
//! timeout, a size limit checked against `Content-Length` before reading and against the
//! bytes as they arrive, and a body written to a file in the server's work directory (never
//! whole in memory) with its SHA-256 computed on the way.
//!
//! A body shorter than its `Content-Length` (the connection dropped) is an error, as is any
//! status but 200 and 304. Every failure is a [`FetchError`] that says which URL and why; the
//! caller records it and leaves the data in force.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::{
    CONTENT_LENGTH, ETAG, HeaderMap, IF_MODIFIED_SINCE, IF_NONE_MATCH, LAST_MODIFIED,
};
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

use patchwarden_store::feed::{FetchValidators, MAX_VALIDATOR};

use super::config::FeedsConfig;

/// Why a fetch failed.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("{url}: {reason}")]
    Transport { url: String, reason: String },
    #[error("{url}: the server answered {status}")]
    Status { url: String, status: u16 },
    #[error("{url}: larger than the limit of {limit} bytes")]
    TooLarge { url: String, limit: u64 },
    #[error("{url}: the download stopped after {got} of {expected} bytes")]
    Truncated {
        url: String,
        got: u64,
        expected: u64,
    },
    #[error("{url}: took longer than {secs} s")]
    Timeout { url: String, secs: u32 },
    #[error("the HTTP client: {0}")]
    Client(String),
    #[error("the work file {path}: {reason}")]
    WorkFile { path: PathBuf, reason: String },
}

/// What a fetch gave.
#[derive(Debug)]
pub enum Fetched {
    /// 304: nothing changed. The validators carry any new ones the response sent.
    NotModified { validators: FetchValidators },
    /// 200: the body is in `file`.
    Body(Body),
}

/// A downloaded body.
#[derive(Debug)]
pub struct Body {
    pub file: WorkFile,
    pub bytes: u64,
    pub sha256: String,
    pub validators: FetchValidators,
}

/// A file in the work directory, removed when dropped.
#[derive(Debug)]
pub struct WorkFile {
    pub path: PathBuf,
}

impl Drop for WorkFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// The HTTP client for feeds: rustls with the ring provider and the configured (or the
/// system's) CA certificates, redirects followed a few times (feeds move), no proxy magic.
pub fn client(config: &FeedsConfig) -> Result<reqwest::Client, FetchError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let roots = roots(&config.ca_file)?;
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| FetchError::Client(format!("TLS: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    reqwest::Client::builder()
        .use_preconfigured_tls(tls)
        .connect_timeout(Duration::from_secs(u64::from(config.connect_timeout_secs)))
        // A server that stops sending mid-body is given up on after this long of silence,
        // well before the total timeout.
        .read_timeout(Duration::from_secs(
            u64::from(config.connect_timeout_secs).max(30),
        ))
        .redirect(reqwest::redirect::Policy::limited(5))
        .user_agent(concat!("patchwarden/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| FetchError::Client(e.to_string()))
}

/// The usual places of a system CA bundle.
const SYSTEM_BUNDLES: &[&str] = &[
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/cert.pem",
    "/etc/ssl/ca-bundle.pem",
];

fn roots(ca_file: &Path) -> Result<rustls::RootCertStore, FetchError> {
    let mut store = rustls::RootCertStore::empty();
    let candidates: Vec<PathBuf> = if ca_file.as_os_str().is_empty() {
        SYSTEM_BUNDLES.iter().map(PathBuf::from).collect()
    } else {
        vec![ca_file.to_owned()]
    };
    for path in candidates {
        let Ok(pem) = std::fs::read(&path) else {
            continue;
        };
        for cert in rustls_pemfile::certs(&mut pem.as_slice()).flatten() {
            // A certificate the store cannot use is skipped, as system bundles hold a few.
            let _ = store.add(cert);
        }
        if !store.is_empty() {
            break;
        }
    }
    if store.is_empty() && !ca_file.as_os_str().is_empty() {
        return Err(FetchError::Client(format!(
            "feeds.ca_file {} holds no usable certificate",
            ca_file.display()
        )));
    }
    // With no bundle on the system, https:// feeds fail with a certificate error that says
    // so; http:// and path sources still work.
    Ok(store)
}

fn header(headers: &HeaderMap, name: reqwest::header::HeaderName) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .filter(|v| v.len() <= MAX_VALIDATOR)
}

/// Fetches `url` into a new file under `work_dir`, conditionally on `previous`.
pub async fn fetch(
    http: &reqwest::Client,
    url: &str,
    previous: &FetchValidators,
    config: &FeedsConfig,
    work_dir: &Path,
) -> Result<Fetched, FetchError> {
    let secs = config.fetch_timeout_secs;
    let total = Duration::from_secs(u64::from(secs));
    match tokio::time::timeout(total, fetch_inner(http, url, previous, config, work_dir)).await {
        Ok(r) => r,
        Err(_) => Err(FetchError::Timeout {
            url: url.to_owned(),
            secs,
        }),
    }
}

async fn fetch_inner(
    http: &reqwest::Client,
    url: &str,
    previous: &FetchValidators,
    config: &FeedsConfig,
    work_dir: &Path,
) -> Result<Fetched, FetchError> {
    let transport = |e: reqwest::Error| FetchError::Transport {
        url: url.to_owned(),
        reason: error_chain(&e),
    };
    let mut request = http.get(url);
    if let Some(etag) = &previous.etag {
        request = request.header(IF_NONE_MATCH, etag);
    }
    if let Some(lm) = &previous.last_modified {
        request = request.header(IF_MODIFIED_SINCE, lm);
    }
    let mut response = request.send().await.map_err(transport)?;
    let status = response.status();
    let headers = response.headers().clone();
    let mut validators = FetchValidators {
        etag: header(&headers, ETAG).or_else(|| previous.etag.clone()),
        last_modified: header(&headers, LAST_MODIFIED).or_else(|| previous.last_modified.clone()),
        content_sha256: previous.content_sha256.clone(),
        cursor: previous.cursor.clone(),
    };
    if status == StatusCode::NOT_MODIFIED {
        return Ok(Fetched::NotModified { validators });
    }
    if status != StatusCode::OK {
        return Err(FetchError::Status {
            url: url.to_owned(),
            status: status.as_u16(),
        });
    }
    let limit = config.max_download_bytes;
    let declared: Option<u64> = header(&headers, CONTENT_LENGTH).and_then(|v| v.parse().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(FetchError::TooLarge {
            url: url.to_owned(),
            limit,
        });
    }
    let file = new_work_file(work_dir)?;
    let werr = |e: std::io::Error| FetchError::WorkFile {
        path: file.path.clone(),
        reason: e.to_string(),
    };
    let mut out = tokio::fs::File::create(&file.path).await.map_err(werr)?;
    let mut hash = Sha256::new();
    let mut bytes: u64 = 0;
    loop {
        let chunk = match response.chunk().await {
            Ok(Some(c)) => c,
            Ok(None) => break,
            // A connection closed before the declared length is a truncation: say so in
            // those words, with the count.
            Err(e) => {
                if let Some(expected) = declared {
                    return Err(FetchError::Truncated {
                        url: url.to_owned(),
                        got: bytes,
                        expected,
                    });
                }
                return Err(transport(e));
            }
        };
        bytes = bytes.saturating_add(chunk.len() as u64);
        if bytes > limit {
            return Err(FetchError::TooLarge {
                url: url.to_owned(),
                limit,
            });
        }
        hash.update(&chunk);
        out.write_all(&chunk).await.map_err(werr)?;
    }
    if let Some(expected) = declared
        && bytes != expected
    {
        return Err(FetchError::Truncated {
            url: url.to_owned(),
            got: bytes,
            expected,
        });
    }
    out.flush().await.map_err(werr)?;
    drop(out);
    let sha256 = patchwarden_store::codec::hex(&hash.finalize());
    validators.content_sha256 = Some(sha256.clone());
    Ok(Fetched::Body(Body {
        file,
        bytes,
        sha256,
        validators,
    }))
}

/// A fresh file name in `work_dir` (created with the directory when missing).
pub fn new_work_file(work_dir: &Path) -> Result<WorkFile, FetchError> {
    std::fs::create_dir_all(work_dir).map_err(|e| FetchError::WorkFile {
        path: work_dir.to_owned(),
        reason: e.to_string(),
    })?;
    Ok(WorkFile {
        path: work_dir.join(format!("download-{}.part", uuid::Uuid::new_v4())),
    })
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut source = e.source();
    while let Some(c) = source {
        let text = c.to_string();
        if !s.contains(&text) {
            s.push_str(": ");
            s.push_str(&text);
        }
        source = c.source();
    }
    s
}
