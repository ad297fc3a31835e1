//! Dev-only: a real Patchwarden server for tests — the real router, TLS with a CA made for the
//! occasion, a temporary SQLite file — listening on `127.0.0.1:0`, and a real client that pins
//! its CA. API tests go through this, so they exercise the whole stack: TLS, signatures, body
//! limits, the store and its audit chain.
//!
//! Helpers here panic with a message on failure: they are test fixtures, and a panic is how a
//! test says its set-up failed.

pub mod apt;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use patchwarden_api::v1::agent::{EnrollRequest, EnrollResponse, EnrollmentSecret};
use patchwarden_client::{AgentClient, AgentKey, Client, ClientError, Fingerprint, Trust};
use patchwarden_core::audit::Actor;
use patchwarden_core::inventory::{HostFacts, OsInfo};
use patchwarden_server::admin::{self, TokenRequest};
use patchwarden_server::{Config, Running};
use patchwarden_store::{EnrollmentToken, Store};

/// A signed enrolment request kept as it was sent, so that a test can send the very same
/// bytes again — a replay — to the same server, after a restart, or to another server.
#[derive(Debug, Clone)]
pub struct CapturedEnrollment {
    key: [u8; 32],
    body: Vec<u8>,
    signing: patchwarden_client::Signing,
}

impl CapturedEnrollment {
    /// An enrolment with the token `secret`, a new key and `facts`, signed now.
    pub fn new(secret: &str, facts: HostFacts, replace: bool) -> CapturedEnrollment {
        let key = AgentKey::generate().expect("making an agent key");
        let body = serde_json::to_vec(&EnrollRequest {
            token: EnrollmentSecret(secret.into()),
            public_key: key.public_hex(),
            facts,
            replace,
            agent_version: "testkit".into(),
        })
        .expect("serialising an enrollment request");
        CapturedEnrollment {
            key: key.secret(),
            body,
            signing: patchwarden_client::Signing::now(None),
        }
    }

    /// Sends it (again) to `server`, and returns the answer as it came.
    pub async fn send_to(&self, server: &TestServer) -> patchwarden_client::RawResponse {
        server
            .client
            .agent("-", AgentKey::from_secret(&self.key))
            .send_raw(
                "POST",
                patchwarden_api::v1::agent::ENROLL_PATH,
                self.body.clone(),
                None,
                &self.signing,
            )
            .await
            .expect("sending an enrollment request")
    }
}

/// A running test server.
#[derive(Debug)]
pub struct TestServer {
    running: Option<Running>,
    /// The data directory (TLS material, the SQLite file); removed when dropped.
    pub dir: tempfile::TempDir,
    pub config: Config,
    pub url: String,
    pub fingerprint: Fingerprint,
    /// A client that pins this server's CA.
    pub client: Client,
}

impl TestServer {
    /// A server with the default settings.
    pub async fn start() -> TestServer {
        TestServer::start_with(|_| {}).await
    }

    /// A server with settings changed by `tweak` (advisory files, limits, intervals …).
    pub async fn start_with(tweak: impl FnOnce(&mut Config)) -> TestServer {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let mut config = Config {
            data_dir: dir.path().to_owned(),
            ..Config::default()
        };
        config.listen.api = "127.0.0.1:0".into();
        config.listen.metrics = "127.0.0.1:0".into();
        tweak(&mut config);
        TestServer::start_in(dir, config).await
    }

    /// A server on an existing data directory (a restart).
    pub async fn start_in(dir: tempfile::TempDir, config: Config) -> TestServer {
        let running = patchwarden_server::start(&config)
            .await
            .unwrap_or_else(|e| panic!("the test server did not start: {e}"));
        TestServer::from_running(dir, config, running)
    }

    /// A server on a store opened by the test (PostgreSQL in a schema of its own).
    pub async fn start_on_store(store: Arc<dyn Store>) -> TestServer {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let mut config = Config {
            data_dir: dir.path().to_owned(),
            ..Config::default()
        };
        config.listen.api = "127.0.0.1:0".into();
        config.listen.metrics = "127.0.0.1:0".into();
        let running = patchwarden_server::start_with_store(&config, store)
            .await
            .unwrap_or_else(|e| panic!("the test server did not start: {e}"));
        TestServer::from_running(dir, config, running)
    }

    fn from_running(dir: tempfile::TempDir, config: Config, running: Running) -> TestServer {
        let url = running.url();
        let fingerprint = Fingerprint::parse(
            running
                .fingerprint
                .as_deref()
                .expect("the test server speaks TLS"),
        )
        .expect("the server prints a fingerprint that parses");
        let client = Client::new(&url, &Trust::Pinned(fingerprint)).expect("a client");
        TestServer {
            running: Some(running),
            dir,
            config,
            url,
            fingerprint,
            client,
        }
    }

    fn running(&self) -> &Running {
        self.running.as_ref().expect("the server is running")
    }

    /// The server's store, for checking what it kept and for what an operator would do.
    pub fn store(&self) -> Arc<dyn Store> {
        self.running().state.store.clone()
    }

    /// The metrics listener's `/metrics` URL.
    pub fn metrics_url(&self) -> String {
        let addr = self.running().metrics_addr.expect("a metrics listener");
        format!("http://{addr}")
    }

    /// The SQLite file.
    pub fn database(&self) -> PathBuf {
        self.dir.path().join("patchwarden.db")
    }

    /// Creates an enrollment token as an operator would; returns it and its secret.
    pub async fn token(
        &self,
        group: &str,
        max_uses: u32,
        valid_for: SignedDuration,
    ) -> (EnrollmentToken, String) {
        admin::create_enrollment_token(
            self.store().as_ref(),
            TokenRequest {
                group: group.into(),
                valid_for,
                max_uses,
                note: Some("testkit".into()),
            },
            Actor::Operator("testkit".into()),
            now(),
        )
        .await
        .expect("creating an enrollment token")
    }

    /// Enrolls a new agent with a new key and `facts`; the raw result, for tests of refusals.
    pub async fn try_enroll(
        &self,
        secret: &str,
        facts: HostFacts,
    ) -> Result<(AgentClient, EnrollResponse), ClientError> {
        let key = AgentKey::generate()?;
        let response = self
            .client
            .enroll(
                &key,
                &EnrollRequest {
                    token: EnrollmentSecret(secret.into()),
                    public_key: key.public_hex(),
                    facts,
                    replace: false,
                    agent_version: "testkit".into(),
                },
            )
            .await?;
        Ok((self.client.agent(&response.host_id, key), response))
    }

    /// Enrolls a new agent with a fresh single-use token.
    pub async fn enroll(&self, facts: HostFacts) -> (AgentClient, EnrollResponse) {
        let (_, secret) = self
            .token("default", 1, SignedDuration::from_hours(1))
            .await;
        self.try_enroll(&secret, facts)
            .await
            .unwrap_or_else(|e| panic!("enrollment failed: {e}"))
    }

    /// Makes an operator with `roles` (and `groups`, for a provider) directly in the store, as
    /// an admin would through the API without the one-time password round, and logs them in.
    pub async fn operator(
        &self,
        name: &str,
        roles: &[patchwarden_store::Role],
        groups: &[&str],
    ) -> patchwarden_client::OperatorClient {
        let password = format!("{name}'s test password, long enough");
        self.user(name, roles, groups, &password, false).await;
        let (client, _) = self
            .client
            .login(name, &password)
            .await
            .unwrap_or_else(|e| panic!("login of {name}: {e}"));
        client
    }

    /// Makes a user with `password` (argon2-hashed, as the server keeps it) directly in the
    /// store, as an admin would through the API; with `must_change`, the password is one-time.
    pub async fn user(
        &self,
        name: &str,
        roles: &[patchwarden_store::Role],
        groups: &[&str],
        password: &str,
        must_change: bool,
    ) -> patchwarden_store::User {
        let hash =
            patchwarden_server::secrets::hash_password(password).expect("hashing a test password");
        let at = now();
        self.store()
            .create_user(
                patchwarden_store::NewUser {
                    id: uuid::Uuid::new_v4(),
                    username: name.into(),
                    password_hash: hash,
                    roles: roles.iter().copied().collect(),
                    groups: groups.iter().map(|g| (*g).to_owned()).collect(),
                    must_change_password: must_change,
                    created_by: "testkit".into(),
                },
                at,
                patchwarden_core::audit::AuditEntry::new(
                    at,
                    Actor::System("testkit".into()),
                    "user.create",
                    format!("user:{name}"),
                ),
            )
            .await
            .unwrap_or_else(|e| panic!("making user {name}: {e}"))
    }

    /// Stops the server gracefully and hands back its data directory and settings.
    pub async fn stop(mut self) -> (tempfile::TempDir, Config) {
        if let Some(running) = self.running.take() {
            running.shutdown(Duration::from_secs(5)).await;
        }
        (self.dir, self.config)
    }
}

/// The current time, as the server reads it.
pub fn now() -> Timestamp {
    patchwarden_server::clock::now()
}

/// Facts of a Debian 12 host named `name` with machine id `machine_id`.
pub fn debian_facts(name: &str, machine_id: &str) -> HostFacts {
    HostFacts {
        hostname: name.into(),
        os: OsInfo {
            id: "debian".into(),
            version_id: Some("12".into()),
            codename: Some("bookworm".into()),
            pretty_name: Some("Debian GNU/Linux 12 (bookworm)".into()),
            id_like: Vec::new(),
            ecosystem: Some("Debian:12".into()),
        },
        arch: Some("x86_64".into()),
        machine_id: Some(machine_id.into()),
        ..HostFacts::default()
    }
}

/// The shared test data directory (`../shared/data` beside the checkout, or
/// `PATCHWARDEN_SHARED_DATA`); panics with a clear message when it is missing.
pub fn shared_data() -> PathBuf {
    let dir = std::env::var_os("PATCHWARDEN_SHARED_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data"));
    assert!(
        dir.join("osv").is_dir(),
        "the shared test data is not at {} (clone the project beside `shared/`, or set \
         PATCHWARDEN_SHARED_DATA)",
        dir.display()
    );
    dir
}
