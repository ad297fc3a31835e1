//! What an administrator on the server's machine does directly against the store: create and
//! revoke enrollment tokens (and make the install commands shown with a new one), queue a job
//! for a host. The operator API with roles and sessions
//! comes with issue 8; until then these are reached through `patchwarden enrollment-token …`
//! (local, with the database URL) and by the testkit, and each change is in the audit chain
//! like every other.

use jiff::{SignedDuration, Timestamp};
use patchwarden_api::v1::jobs::JobKind;
use patchwarden_api::v1::signing::hex;
use patchwarden_core::audit::{Actor, AuditEntry};
use patchwarden_core::install_script::{self, AgentInstall};
use patchwarden_store::{
    EnrollmentToken, Job, NewEnrollmentToken, NewJob, SecretHash, Store, StoreError,
};
use serde_json::json;
use uuid::Uuid;

use crate::config::Config;
use crate::downloads::{Downloads, Package};

/// The prefix of every enrollment token's secret, so that one found in a log or a paste is
/// recognisable (and a secret scanner can look for it).
pub const TOKEN_PREFIX: &str = "pwe_";

/// What a new token needs.
#[derive(Debug, Clone)]
pub struct TokenRequest {
    pub group: String,
    pub valid_for: SignedDuration,
    pub max_uses: u32,
    pub note: Option<String>,
}

/// Creates an enrollment token; returns it and its secret, which is shown once and stored
/// only as a hash.
pub async fn create_enrollment_token(
    store: &dyn Store,
    request: TokenRequest,
    actor: Actor,
    now: Timestamp,
) -> Result<(EnrollmentToken, String), StoreError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| StoreError::Invalid {
        field: "token secret",
        reason: format!("no random numbers: {e}"),
    })?;
    let secret = format!("{TOKEN_PREFIX}{}", hex(&bytes));
    let id = Uuid::new_v4();
    let expires_at = now
        .checked_add(request.valid_for)
        .map_err(|_| StoreError::Invalid {
            field: "token validity",
            reason: "too long".into(),
        })?;
    let created_by = actor.to_string();
    let audit = AuditEntry::new(
        now,
        actor,
        "enrollment_token.create",
        format!("enrollment-token:{id}"),
    )
    .after(json!({
        "group": request.group,
        "expires_at": expires_at,
        "max_uses": request.max_uses,
        "note": request.note,
    }));
    let token = store
        .create_enrollment_token(
            NewEnrollmentToken {
                id,
                secret_hash: SecretHash::of(secret.as_bytes()),
                group: request.group,
                expires_at,
                max_uses: request.max_uses,
                note: request.note,
                created_by,
            },
            now,
            audit,
        )
        .await?;
    Ok((token, secret))
}

/// What an install command needs besides the token, gathered before the token is made: the
/// server's public URL, the CA fingerprint agents pin, and the packages it serves.
#[derive(Debug, Clone)]
pub struct InstallSources {
    pub public_url: String,
    pub ca_fingerprint: String,
    pub packages: Vec<Package>,
}

/// The install command for the hosts of one package.
#[derive(Debug, Clone)]
pub struct InstallCommand {
    pub package: Package,
    /// Where the host downloads the package.
    pub package_url: String,
    /// The script (`packaging/install-agent.sh.in` filled in).
    pub script: String,
    /// The script wrapped as one command to paste into a root shell.
    pub paste: String,
}

/// Why no install command can be shown.
#[derive(Debug, thiserror::Error)]
pub enum InstallCommandError {
    #[error("public_url is not set: the install commands need the URL hosts reach the server at")]
    NoPublicUrl,
    #[error("downloads.dir is not set: the server serves no agent packages to install")]
    NoDownloads,
    #[error(
        "the downloads directory {0} holds no .deb or .rpm package (scripts/package builds them)"
    )]
    NoPackages(String),
    #[error(
        "tls.mode = \"plain-http\": agents pin the certificate of the proxy in front, which the \
         server does not know"
    )]
    PlainHttp,
    #[error("the CA fingerprint: {0}")]
    Tls(#[from] crate::tls::TlsError),
    #[error("{0}")]
    Downloads(#[from] crate::downloads::DownloadsError),
    #[error("{0}")]
    Render(#[from] patchwarden_core::install_script::InstallScriptError),
}

/// Gathers what the install commands of `config`'s server need. Blocking: it reads the CA
/// and hashes the packages not hashed yet.
pub fn install_sources(config: &Config) -> Result<InstallSources, InstallCommandError> {
    let public_url = config
        .public_url()
        .ok_or(InstallCommandError::NoPublicUrl)?
        .to_owned();
    let dir = config
        .downloads_dir()
        .ok_or(InstallCommandError::NoDownloads)?;
    let ca_fingerprint = crate::tls::pinned_fingerprint(&config.tls, &config.data_dir)?
        .ok_or(InstallCommandError::PlainHttp)?;
    let downloads = Downloads::open(&dir)?;
    let packages = downloads.packages()?;
    if packages.is_empty() {
        return Err(InstallCommandError::NoPackages(
            downloads.dir().display().to_string(),
        ));
    }
    Ok(InstallSources {
        public_url,
        ca_fingerprint,
        packages,
    })
}

/// One install command per package of `sources`, for the enrollment token `secret`.
pub fn install_commands(
    sources: &InstallSources,
    secret: &str,
) -> Result<Vec<InstallCommand>, InstallCommandError> {
    sources
        .packages
        .iter()
        .map(|package| {
            let package_url = format!("{}/downloads/{}", sources.public_url, package.name);
            let script = install_script::render(&AgentInstall {
                server: &sources.public_url,
                token: secret,
                ca_fingerprint: &sources.ca_fingerprint,
                package_url: &package_url,
                package_sha256: &package.sha256,
            })?;
            Ok(InstallCommand {
                package: package.clone(),
                paste: install_script::paste_command(&script),
                package_url,
                script,
            })
        })
        .collect()
}

/// Revokes an enrollment token.
pub async fn revoke_enrollment_token(
    store: &dyn Store,
    id: Uuid,
    actor: Actor,
    now: Timestamp,
) -> Result<EnrollmentToken, StoreError> {
    let audit = AuditEntry::new(
        now,
        actor,
        "enrollment_token.revoke",
        format!("enrollment-token:{id}"),
    );
    store.revoke_enrollment_token(id, now, audit).await
}

/// Queues a job for a host. The kind is one of the API's closed set, so nothing else can be
/// queued.
pub async fn queue_job(
    store: &dyn Store,
    host: Uuid,
    kind: &JobKind,
    actor: Actor,
    now: Timestamp,
) -> Result<Job, StoreError> {
    let id = Uuid::new_v4();
    let value = serde_json::to_value(kind).map_err(|e| StoreError::Invalid {
        field: "job kind",
        reason: e.to_string(),
    })?;
    let audit = AuditEntry::new(now, actor.clone(), "job.create", format!("job:{id}"))
        .after(json!({ "host": host, "kind": value }));
    store
        .create_job(
            NewJob {
                id,
                host,
                kind: value,
                created_by: actor.to_string(),
            },
            now,
            audit,
        )
        .await
}
