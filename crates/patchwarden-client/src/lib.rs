//! The typed HTTP client over Patchwarden's API: what the agent, the CLI, the testkit and the
//! fleet benchmark use to talk to a server.
//!
//! Transport security is rustls with the server's CA pinned by its SHA-256 fingerprint (given
//! to the agent at enrollment), so an agent trusts exactly one CA and nothing from the system's
//! store; plain HTTP only when the caller asks for it by name ([`Trust::PlainHttp`], for a
//! server behind a TLS-terminating proxy). Agent requests are signed with the host's Ed25519
//! key ([`AgentClient`]); the canonical form lives in `patchwarden-api` so that the server
//! verifies exactly what was signed.
//!
//! Every response body is read with a size limit, and every error the server sends arrives as
//! its problem document ([`ClientError::Problem`]) so callers can branch on its code.

mod agent;
mod changes;
mod error;
mod operator;
mod pin;
mod reports;

use std::sync::Arc;
use std::time::Duration;

pub use agent::{AgentClient, AgentKey, RawResponse, Signing, gzip};
pub use changes::ChangeAction;
pub use error::ClientError;
pub use operator::OperatorClient;
pub use pin::{Fingerprint, FingerprintError};
pub use reports::ReportFormat;

use patchwarden_api::v1::agent::{CA_PATH, ENROLL_PATH, EnrollRequest, EnrollResponse};

/// The most a response body may hold: an inventory answer or a job list is far smaller.
pub const MAX_RESPONSE_BYTES: usize = 16 * 1024 * 1024;

/// How the client decides to trust the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trust {
    /// HTTPS, trusting only a certificate chain that contains this CA (by SHA-256 of its DER).
    Pinned(Fingerprint),
    /// Plain HTTP, explicitly: for a server behind a TLS-terminating proxy on a trusted
    /// network, and for nothing else.
    PlainHttp,
}

/// A client of one server.
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    base: String,
}

impl Client {
    /// A client for the server at `base` (`https://host:port`), trusting it as `trust` says.
    pub fn new(base: &str, trust: &Trust) -> Result<Client, ClientError> {
        let base = base.trim_end_matches('/').to_owned();
        let builder = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(60))
            // The agent talks to one server; a redirect elsewhere is never followed.
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy();
        let builder = match trust {
            Trust::Pinned(fingerprint) => {
                if !base.starts_with("https://") {
                    return Err(ClientError::Config(format!(
                        "{base}: a pinned CA needs an https:// server URL"
                    )));
                }
                let provider = Arc::new(rustls::crypto::ring::default_provider());
                let config = rustls::ClientConfig::builder_with_provider(provider.clone())
                    .with_safe_default_protocol_versions()
                    .map_err(|e| ClientError::Config(format!("TLS: {e}")))?
                    .dangerous()
                    .with_custom_certificate_verifier(Arc::new(pin::PinnedVerifier::new(
                        *fingerprint,
                        provider,
                    )))
                    .with_no_client_auth();
                builder.use_preconfigured_tls(config)
            }
            Trust::PlainHttp => {
                if !base.starts_with("http://") {
                    return Err(ClientError::Config(format!(
                        "{base}: plain HTTP was asked for, so the URL must start with http://"
                    )));
                }
                // reqwest builds a TLS configuration even for a client that will only speak
                // plain HTTP; give it one that trusts nothing, so no https:// URL can succeed
                // by accident and no process-wide crypto provider is needed.
                let provider = Arc::new(rustls::crypto::ring::default_provider());
                let config = rustls::ClientConfig::builder_with_provider(provider)
                    .with_safe_default_protocol_versions()
                    .map_err(|e| ClientError::Config(format!("TLS: {e}")))?
                    .with_root_certificates(rustls::RootCertStore::empty())
                    .with_no_client_auth();
                builder.use_preconfigured_tls(config)
            }
        };
        let http = builder
            .build()
            .map_err(|e| ClientError::Config(format!("HTTP client: {e}")))?;
        Ok(Client { http, base })
    }

    /// The server's base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// The CA certificate the server chains to, as PEM (public, unsigned: the pin is what
    /// makes it trustworthy).
    pub async fn ca_pem(&self) -> Result<String, ClientError> {
        let response = self
            .http
            .get(self.url(CA_PATH))
            .send()
            .await
            .map_err(ClientError::transport)?;
        let raw = RawResponse::read(response).await?;
        let raw = raw.ok()?;
        String::from_utf8(raw.body).map_err(|_| ClientError::Decode {
            what: "CA certificate",
            reason: "not UTF-8 text".into(),
        })
    }

    /// `GET` a path and return the raw answer (health and readiness probes).
    pub async fn get_raw(&self, path: &str) -> Result<RawResponse, ClientError> {
        let response = self
            .http
            .get(self.url(path))
            .send()
            .await
            .map_err(ClientError::transport)?;
        RawResponse::read(response).await
    }

    /// Enrolls a new host: `key` is the agent's new key, which signs the request to prove the
    /// agent holds it.
    pub async fn enroll(
        &self,
        key: &AgentKey,
        request: &EnrollRequest,
    ) -> Result<EnrollResponse, ClientError> {
        let body = serde_json::to_vec(request).map_err(|e| ClientError::Decode {
            what: "enrollment request",
            reason: e.to_string(),
        })?;
        let signing = Signing::now(None);
        let raw = agent::send_signed(self, key, "POST", ENROLL_PATH, body, None, &signing).await?;
        raw.json("enrollment answer")
    }

    /// A client that acts for one enrolled host.
    pub fn agent(&self, host_id: &str, key: AgentKey) -> AgentClient {
        AgentClient::new(self.clone(), host_id.to_owned(), key)
    }
}
