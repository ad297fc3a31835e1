//! Signed agent requests: the host's Ed25519 key, the per-request timestamp and nonce, and the
//! typed calls of the agent protocol.

use std::io::Write;

use ed25519_dalek::{Signer, SigningKey};
use flate2::Compression;
use flate2::write::GzEncoder;
use patchwarden_api::v1::agent::{
    CHECK_IN_PATH, CheckInRequest, CheckInResponse, INVENTORY_PATH, InventoryAccepted,
    InventoryUpload,
};
use patchwarden_api::v1::jobs::{JOBS_PATH, Job, JobAck, JobProgress, JobResult};
use patchwarden_api::v1::problem::{self, Problem, ProblemCode};
use patchwarden_api::v1::signing::{self, hex};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::{Client, ClientError, MAX_RESPONSE_BYTES};

/// An agent's Ed25519 key. The private half never leaves the host; `Debug` shows only the
/// public half.
#[derive(Clone)]
pub struct AgentKey(SigningKey);

impl std::fmt::Debug for AgentKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AgentKey(public {})", self.public_hex())
    }
}

impl AgentKey {
    /// A new key from the operating system's random source.
    pub fn generate() -> Result<AgentKey, ClientError> {
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed)
            .map_err(|e| ClientError::Local(format!("no random numbers for a key: {e}")))?;
        Ok(AgentKey(SigningKey::from_bytes(&seed)))
    }

    /// The key from its 32 secret bytes (the agent's state file).
    pub fn from_secret(secret: &[u8; 32]) -> AgentKey {
        AgentKey(SigningKey::from_bytes(secret))
    }

    /// The 32 secret bytes, for the agent's 0600 state file only.
    pub fn secret(&self) -> [u8; 32] {
        self.0.to_bytes()
    }

    /// The public key as the API carries it: 64 hex digits.
    pub fn public_hex(&self) -> String {
        hex(self.0.verifying_key().as_bytes())
    }

    /// The signature of `message`, hex.
    pub fn sign_hex(&self, message: &[u8]) -> String {
        hex(&self.0.sign(message).to_bytes())
    }
}

/// The per-request parts of a signature: who, when, and a nonce never used before.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signing {
    pub host: Option<String>,
    pub timestamp: i64,
    pub nonce: String,
}

impl Signing {
    /// A signing for a request made now, with a fresh random nonce.
    pub fn now(host: Option<&str>) -> Signing {
        // A signed request must carry the time it was made: this is the client's one reading
        // of the clock, and the server judges it against its own.
        #[allow(clippy::disallowed_methods)]
        let timestamp = jiff::Timestamp::now().as_second();
        let mut nonce = [0u8; 16];
        // Without the OS random source there is no safe nonce; an all-zero one is refused by
        // the server as a replay after its first use, which fails closed.
        let _ = getrandom::fill(&mut nonce);
        Signing {
            host: host.map(str::to_owned),
            timestamp,
            nonce: hex(&nonce),
        }
    }
}

/// A response as it came, body read up to [`MAX_RESPONSE_BYTES`].
#[derive(Debug, Clone)]
pub struct RawResponse {
    pub status: u16,
    pub content_type: Option<String>,
    pub retry_after: Option<u64>,
    /// The problem code a page's refusal names in `X-Problem-Code` (pages answer with HTML,
    /// not a problem document).
    pub problem_code: Option<String>,
    pub body: Vec<u8>,
}

impl RawResponse {
    pub(crate) async fn read(mut response: reqwest::Response) -> Result<RawResponse, ClientError> {
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let content_type = header("content-type");
        let retry_after = header("retry-after").and_then(|v| v.trim().parse().ok());
        let problem_code = header("x-problem-code");
        let status = response.status().as_u16();
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(ClientError::transport)? {
            if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
                return Err(ClientError::TooLarge {
                    max: MAX_RESPONSE_BYTES,
                });
            }
            body.extend_from_slice(&chunk);
        }
        Ok(RawResponse {
            status,
            content_type,
            retry_after,
            problem_code,
            body,
        })
    }

    /// The response when it is a success; its problem document as the error otherwise.
    pub fn ok(self) -> Result<RawResponse, ClientError> {
        if (200..300).contains(&self.status) {
            return Ok(self);
        }
        Err(ClientError::Problem(self.problem()))
    }

    /// The problem document of an error response (or one made up from its status when the
    /// body is not one, e.g. a proxy's page).
    pub fn problem(&self) -> Problem {
        let is_problem = self
            .content_type
            .as_deref()
            .is_some_and(|t| t.starts_with(problem::CONTENT_TYPE));
        let mut p = if is_problem {
            serde_json::from_slice::<Problem>(&self.body).ok()
        } else {
            None
        }
        .unwrap_or_else(|| {
            let text: String = String::from_utf8_lossy(&self.body)
                .chars()
                .take(200)
                .collect();
            Problem::new(ProblemCode::Other, self.status, "unexpected answer").detail(text)
        });
        if p.retry_after.is_none() {
            p.retry_after = self.retry_after;
        }
        p
    }

    /// The body of a success as `T`.
    pub fn json<T: DeserializeOwned>(self, what: &'static str) -> Result<T, ClientError> {
        let ok = self.ok()?;
        serde_json::from_slice(&ok.body).map_err(|e| ClientError::Decode {
            what,
            reason: e.to_string(),
        })
    }
}

/// Sends one signed request.
pub(crate) async fn send_signed(
    client: &Client,
    key: &AgentKey,
    method: &str,
    path: &str,
    body: Vec<u8>,
    content_encoding: Option<&str>,
    signing: &Signing,
) -> Result<RawResponse, ClientError> {
    let message = signing::message(
        method,
        path,
        signing.host.as_deref(),
        signing.timestamp,
        &signing.nonce,
        &body,
    );
    let method = reqwest::Method::from_bytes(method.as_bytes())
        .map_err(|_| ClientError::Local(format!("{method:?} is not an HTTP method")))?;
    let mut request = client
        .http
        .request(method, client.url(path))
        .header(signing::HEADER_TIMESTAMP, signing.timestamp.to_string())
        .header(signing::HEADER_NONCE, &signing.nonce)
        .header(signing::HEADER_SIGNATURE, key.sign_hex(&message))
        .header("content-type", "application/json");
    if let Some(host) = &signing.host {
        request = request.header(signing::HEADER_HOST, host);
    }
    if let Some(encoding) = content_encoding {
        request = request.header("content-encoding", encoding);
    }
    let response = request
        .body(body)
        .send()
        .await
        .map_err(ClientError::transport)?;
    RawResponse::read(response).await
}

/// A client acting for one enrolled host: every request signed with the host's key.
#[derive(Debug, Clone)]
pub struct AgentClient {
    client: Client,
    host_id: String,
    key: AgentKey,
}

impl AgentClient {
    pub(crate) fn new(client: Client, host_id: String, key: AgentKey) -> AgentClient {
        AgentClient {
            client,
            host_id,
            key,
        }
    }

    pub fn host_id(&self) -> &str {
        &self.host_id
    }

    /// The host's key (to reach the same server at another address).
    pub fn key(&self) -> &AgentKey {
        &self.key
    }

    /// Sends a request signed as this host, with the given signing parts and body bytes as
    /// they are: the typed calls below use it, and so do tests that need to send what a typed
    /// call never would (a replay, a forged body, a bomb).
    pub async fn send_raw(
        &self,
        method: &str,
        path: &str,
        body: Vec<u8>,
        content_encoding: Option<&str>,
        signing: &Signing,
    ) -> Result<RawResponse, ClientError> {
        send_signed(
            &self.client,
            &self.key,
            method,
            path,
            body,
            content_encoding,
            signing,
        )
        .await
    }

    async fn call<B: Serialize, T: DeserializeOwned>(
        &self,
        method: &str,
        path: &str,
        body: &B,
        what: &'static str,
    ) -> Result<T, ClientError> {
        let bytes = serde_json::to_vec(body).map_err(|e| ClientError::Local(e.to_string()))?;
        let signing = Signing::now(Some(&self.host_id));
        self.send_raw(method, path, bytes, None, &signing)
            .await?
            .json(what)
    }

    /// Checks in.
    pub async fn check_in(&self, request: &CheckInRequest) -> Result<CheckInResponse, ClientError> {
        self.call("POST", CHECK_IN_PATH, request, "check-in answer")
            .await
    }

    /// Uploads an inventory; a full one travels gzip-compressed.
    pub async fn upload_inventory(
        &self,
        upload: &InventoryUpload,
    ) -> Result<InventoryAccepted, ClientError> {
        let json = serde_json::to_vec(upload).map_err(|e| ClientError::Local(e.to_string()))?;
        let (body, encoding) = match upload {
            InventoryUpload::Full { .. } => (gzip(&json)?, Some("gzip")),
            InventoryUpload::Delta { .. } => (json, None),
        };
        let signing = Signing::now(Some(&self.host_id));
        self.send_raw("POST", INVENTORY_PATH, body, encoding, &signing)
            .await?
            .json("inventory answer")
    }

    /// One of this host's jobs.
    pub async fn job(&self, id: &str) -> Result<Job, ClientError> {
        let signing = Signing::now(Some(&self.host_id));
        self.send_raw(
            "GET",
            &format!("{JOBS_PATH}/{id}"),
            Vec::new(),
            None,
            &signing,
        )
        .await?
        .json("job")
    }

    /// Reports progress on a job.
    pub async fn job_progress(
        &self,
        id: &str,
        progress: &JobProgress,
    ) -> Result<JobAck, ClientError> {
        self.call(
            "POST",
            &format!("{JOBS_PATH}/{id}/progress"),
            progress,
            "job answer",
        )
        .await
    }

    /// Reports a job's result; repeating the same result is harmless.
    pub async fn job_result(&self, id: &str, result: &JobResult) -> Result<JobAck, ClientError> {
        self.call(
            "POST",
            &format!("{JOBS_PATH}/{id}/result"),
            result,
            "job answer",
        )
        .await
    }
}

/// `bytes` gzip-compressed.
pub fn gzip(bytes: &[u8]) -> Result<Vec<u8>, ClientError> {
    let mut encoder = GzEncoder::new(Vec::with_capacity(bytes.len() / 4), Compression::fast());
    encoder
        .write_all(bytes)
        .and_then(|()| encoder.finish())
        .map_err(|e| ClientError::Local(format!("compressing the inventory: {e}")))
}
