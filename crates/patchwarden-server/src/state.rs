//! What every request handler shares: the store, the matcher, the settings, the metrics, and
//! the one thing kept in memory: the nonces of enrollment requests.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError, RwLock};

use patchwarden_store::Store;

use crate::config::{Agents, Limits, Operators};
use crate::downloads::Downloads;
use crate::login_limit::LoginLimiter;
use crate::matcher::Matcher;
use crate::metrics::Metrics;

/// The most enrollment nonces remembered at once. Each lives for the signature window; a flood
/// beyond this many enrollments in ten minutes is refused as overload rather than allowed to
/// grow memory.
const MAX_ENROLL_NONCES: usize = 100_000;

/// What remembering a nonce found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NonceCheck {
    New,
    Replayed,
    /// Too many are remembered already.
    Full,
}

/// Password hashes computed at once (each takes 19 MiB and tens of milliseconds): a flood of
/// logins queues for these instead of exhausting memory.
const LOGIN_PERMITS: usize = 4;

/// Shared state of a running server.
#[derive(Debug)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub matcher: RwLock<Arc<Matcher>>,
    pub agents: Agents,
    pub limits: Limits,
    pub metrics: Metrics,
    /// The CA certificate agents pin, PEM; `None` in plain-HTTP mode.
    pub ca_pem: Option<String>,
    /// The agent packages served at `/downloads/`; `None` when no directory is configured.
    pub downloads: Option<Arc<Downloads>>,
    /// Advisory feeds: their settings, the HTTP client, the files' enrichment.
    pub feeds: Arc<crate::feeds::FeedRuntime>,
    pub in_flight: AtomicU32,
    pub ready: AtomicBool,
    /// Nonces of enrollment requests (which have no host yet, so the store's per-host nonce
    /// table cannot hold them), with the unix second they expire.
    enroll_nonces: Mutex<HashMap<String, i64>>,
    /// Sessions, logins and API tokens ([`AppState::with_operators`]).
    pub operators: Operators,
    /// Failed logins by address and unknown name.
    pub(crate) login_limiter: LoginLimiter,
    pub login_permits: tokio::sync::Semaphore,
    /// A new enrollment token's lifetime when its creator does not say.
    pub enrollment_token_ttl_hours: u32,
    /// Every route with its access declaration, as the router was built.
    pub routes: OnceLock<Vec<crate::routes::Declared>>,
    /// The OpenAPI document as JSON, built with the router.
    pub openapi: OnceLock<axum::body::Bytes>,
    /// Wakes the rollout engine (`changes::rollout`) before its next tick: a job finished, a
    /// change was scheduled.
    pub rollout_wake: tokio::sync::Notify,
    /// The `[changes]` settings: standard-change rules, how often they look, announcements.
    pub(crate) changes: crate::changes::standard::Settings,
    /// The URL people and hosts reach this server at (`public_url`), without a trailing
    /// slash; empty when not configured. Links in notifications and documents start with it.
    pub public_url: String,
    /// The public status page's settings, report limiters and cached figures.
    pub(crate) status: crate::status::StatusRuntime,
}

impl AppState {
    pub fn new(
        store: Arc<dyn Store>,
        matcher: Matcher,
        agents: Agents,
        limits: Limits,
        ca_pem: Option<String>,
    ) -> AppState {
        AppState {
            store,
            matcher: RwLock::new(Arc::new(matcher)),
            agents,
            limits,
            metrics: Metrics::default(),
            ca_pem,
            downloads: None,
            // `serve` replaces this with the configured feeds and the data directory.
            feeds: Arc::new(crate::feeds::FeedRuntime::new(
                crate::feeds::config::FeedsConfig::default(),
                std::env::temp_dir().join("patchwarden-feeds"),
                crate::feeds::FileEnrichment::default(),
            )),
            in_flight: AtomicU32::new(0),
            ready: AtomicBool::new(false),
            enroll_nonces: Mutex::new(HashMap::new()),
            login_limiter: limiter(&Operators::default()),
            operators: Operators::default(),
            login_permits: tokio::sync::Semaphore::new(LOGIN_PERMITS),
            enrollment_token_ttl_hours: 24,
            openapi: OnceLock::new(),
            rollout_wake: tokio::sync::Notify::new(),
            changes: crate::changes::standard::Settings::default(),
            routes: OnceLock::new(),
            public_url: String::new(),
            status: crate::status::StatusRuntime::default(),
        }
    }

    /// The operators' settings, and a login limiter made from them.
    pub fn with_operators(mut self, operators: Operators, enrollment_token_ttl_hours: u32) -> Self {
        self.login_limiter = limiter(&operators);
        self.operators = operators;
        self.enrollment_token_ttl_hours = enrollment_token_ttl_hours;
        self
    }

    /// The matcher in force now.
    pub fn matcher(&self) -> Arc<Matcher> {
        self.matcher
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Puts a new matcher in force (after an advisory import).
    pub fn set_matcher(&self, matcher: Matcher) {
        *self.matcher.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(matcher);
    }

    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }

    /// Remembers an enrollment nonce until `expires`.
    pub fn remember_enroll_nonce(&self, nonce: &str, expires: i64, now: i64) -> NonceCheck {
        let mut nonces = self
            .enroll_nonces
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        nonces.retain(|_, e| *e > now);
        if nonces.contains_key(nonce) {
            return NonceCheck::Replayed;
        }
        if nonces.len() >= MAX_ENROLL_NONCES {
            return NonceCheck::Full;
        }
        nonces.insert(nonce.to_owned(), expires);
        NonceCheck::New
    }
}

fn limiter(o: &Operators) -> LoginLimiter {
    LoginLimiter::new(o.address_max_failures, o.address_window_secs)
}
