//! Start-up and shutdown: open the store, read the advisory files and policies, build the
//! matcher, re-match what changed, bind the API and metrics listeners, and serve until asked
//! to stop — then finish the requests in flight (graceful shutdown) before returning.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum_server::Handle;
use axum_server::tls_rustls::RustlsConfig;
use patchwarden_core::audit::{Actor, AuditEntry};
use patchwarden_store::{DatabaseUrl, Store, StoreError};
use serde_json::json;
use tokio::task::JoinHandle;

use crate::config::Config;
use crate::matcher::{Matcher, load_policies};
use crate::state::AppState;
use crate::{advisories, clock, feeds, findings, routes, tls};

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("data directory {path}: {reason}")]
    DataDir { path: String, reason: String },
    #[error("database: {0}")]
    Store(#[from] StoreError),
    #[error("TLS: {0}")]
    Tls(#[from] tls::TlsError),
    #[error("{0}")]
    Advisories(#[from] advisories::LoadError),
    #[error("{0}")]
    Policy(#[from] crate::matcher::PolicyLoadError),
    #[error("listening on {addr}: {reason}")]
    Listen { addr: String, reason: String },
    #[error("re-matching after the advisory import: {0}")]
    Refresh(String),
    #[error("{0}")]
    Downloads(#[from] crate::downloads::DownloadsError),
    #[error("notifications: {0}")]
    Notifications(String),
}

/// Opens the store a database URL names: SQLite or PostgreSQL.
pub async fn open_store(url: &str) -> Result<Arc<dyn Store>, StoreError> {
    match DatabaseUrl::parse(url)? {
        DatabaseUrl::Sqlite(_) => patchwarden_store_sqlite::open(url).await,
        DatabaseUrl::Postgres(_) => patchwarden_store_postgres::open(url).await,
    }
}

/// A running server.
#[derive(Debug)]
pub struct Running {
    pub api_addr: SocketAddr,
    pub metrics_addr: Option<SocketAddr>,
    /// `https` or `http`.
    pub scheme: &'static str,
    /// The fingerprint agents pin (`None` in plain-HTTP mode).
    pub fingerprint: Option<String>,
    /// Whether this start made the CA.
    pub ca_generated: bool,
    pub state: Arc<AppState>,
    api: Handle<SocketAddr>,
    metrics: Handle<SocketAddr>,
    tasks: Vec<JoinHandle<std::io::Result<()>>>,
    purge: JoinHandle<()>,
    scheduler: JoinHandle<()>,
    rollout: JoinHandle<()>,
    /// The notifier (`notify`), when anything is configured to receive notifications.
    notifier: Option<crate::notify::Task>,
}

impl Running {
    /// The API's base URL, on the loopback address when the server listens on all.
    pub fn url(&self) -> String {
        let ip = if self.api_addr.ip().is_unspecified() {
            "127.0.0.1".to_owned()
        } else {
            self.api_addr.ip().to_string()
        };
        format!("{}://{ip}:{}", self.scheme, self.api_addr.port())
    }

    /// Stops accepting, lets requests in flight finish for up to `grace`, then returns.
    pub async fn shutdown(self, grace: Duration) {
        self.state.ready.store(false, Ordering::Release);
        self.api.graceful_shutdown(Some(grace));
        self.metrics.graceful_shutdown(Some(grace));
        self.purge.abort();
        self.scheduler.abort();
        self.rollout.abort();
        if let Some(notifier) = self.notifier {
            notifier.stop(grace).await;
        }
        for t in self.tasks {
            match t.await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::error!(error = %e, "listener failed"),
                Err(e) => tracing::error!(error = %e, "listener task failed"),
            }
        }
    }
}

/// Starts a server with the store its configuration names.
pub async fn start(config: &Config) -> Result<Running, ServeError> {
    create_data_dir(config)?;
    let store = open_store(&config.database_url()).await?;
    start_with_store(config, store).await
}

fn create_data_dir(config: &Config) -> Result<(), ServeError> {
    use std::os::unix::fs::DirBuilderExt;
    let dir = &config.data_dir;
    if dir.is_dir() {
        return Ok(());
    }
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| ServeError::DataDir {
            path: dir.display().to_string(),
            reason: e.to_string(),
        })
}

/// Starts a server on `store`.
pub async fn start_with_store(
    config: &Config,
    store: Arc<dyn Store>,
) -> Result<Running, ServeError> {
    create_data_dir(config)?;
    let store: Arc<dyn Store> = Arc::new(crate::traced::TracedStore::new(store));
    let tls = tls::setup(&config.tls, &config.data_dir)?;
    let policies = load_policies(&config.policy.policies)?;
    let files = config.advisories.files.clone();
    let mut loaded = tokio::task::spawn_blocking(move || advisories::load(&files))
        .await
        .map_err(|e| ServeError::Refresh(format!("the advisory reader failed: {e}")))??;
    for line in loaded.skipped.iter().take(10) {
        tracing::warn!(record = %line, "advisory record skipped");
    }
    let now = clock::now();
    let mut changed_ids = Vec::new();
    if !loaded.advisories.is_empty() {
        let audit = AuditEntry::new(
            now,
            Actor::System("feeds".into()),
            "advisories.import",
            "advisories",
        )
        .after(json!({
            "files": config.advisories.files,
            "records": loaded.advisories.len(),
        }));
        // Handed over whole: the store drops each once it is encoded, so the parsed files and
        // their JSON are never both held in full.
        let upsert = store
            .upsert_advisories(std::mem::take(&mut loaded.advisories), now, audit)
            .await?;
        tracing::info!(
            inserted = upsert.inserted,
            updated = upsert.updated,
            unchanged = upsert.unchanged,
            "advisories imported"
        );
        changed_ids = upsert.changed;
    }
    // The files' parse left its garbage in the parser thread's arena; the build below reads
    // every advisory again on other threads. Handed back first, the two do not add up in the
    // start-up peak (src/memory.rs).
    crate::memory::release_freed();
    feeds::define_configured(store.as_ref(), &config.feeds, now)
        .await
        .map_err(|e| ServeError::Refresh(e.to_string()))?;
    // The matcher in force: the stored advisories, the files' and the feeds' enrichment, the
    // operators' triage decisions — as `feeds::rebuild_matcher` makes it after each import.
    let generation = store.advisory_generation().await?;
    let all = store.advisories().await?;
    let docs = store.enrichment_documents().await?;
    let decided = store
        .list_triage(&patchwarden_store::triage::TriageFilter {
            pending: Some(false),
            ..Default::default()
        })
        .await?;
    let enrichment = loaded.files.with_documents(&docs);
    let (matcher, problems) = Matcher::new(all, enrichment, policies);
    let matcher = matcher.with_decisions(&decided);
    for p in problems.iter().take(10) {
        tracing::warn!(problem = %p, "advisory not indexed");
    }
    drop((docs, problems));
    if crate::operators::no_operator_yet(store.as_ref()).await? {
        tracing::warn!(
            "no operator exists yet: run `patchwarden admin bootstrap` on this machine to make \
             the first admin (it prints a one-time password)"
        );
    }
    let mut app = AppState::new(
        store,
        matcher,
        config.agents.clone(),
        config.limits.clone(),
        tls.as_ref().map(|t| t.ca_pem.clone()),
    )
    .with_operators(config.operators.clone(), config.enrollment.token_ttl_hours);
    app.public_url = config.public_url().unwrap_or_default().to_owned();
    app.status = crate::status::StatusRuntime::new(config.status.clone());
    // `Config::check` already refused rules that do not parse.
    app.changes = crate::changes::standard::Settings {
        rules: config.changes.rules().unwrap_or_default(),
        every_secs: config.changes.standard_every_secs.max(1),
        announce_days: config.changes.announce_days,
    };
    // A configured directory that is missing is a mistake to hear about at start, not at the
    // first host's install.
    if let Some(dir) = config.downloads_dir() {
        let downloads = crate::downloads::Downloads::open(&dir)?;
        tracing::info!(dir = %downloads.dir().display(), "serving agent packages at /downloads/");
        app.downloads = Some(Arc::new(downloads));
    }
    app.feeds = Arc::new(feeds::FeedRuntime::new(
        config.feeds.clone(),
        config.data_dir.join("feeds"),
        loaded.files,
    ));
    app.feeds.mark_built(generation);
    let state = Arc::new(app);
    if !changed_ids.is_empty() {
        let hosts = findings::refresh_for_advisories(&state, &changed_ids, now)
            .await
            .map_err(|e| ServeError::Refresh(e.to_string()))?;
        tracing::info!(
            advisories = changed_ids.len(),
            hosts,
            "re-matched after advisory changes"
        );
    }
    // Everything read to build the matcher and to re-match is garbage now, spread over the
    // arenas of the threads that read it: give it back (src/memory.rs).
    crate::memory::release_freed();

    let api_handle = Handle::new();
    let metrics_handle = Handle::new();
    let mut tasks = Vec::new();
    let listener = bind(&config.listen.api)?;
    let api_addr = listener.local_addr().map_err(|e| ServeError::Listen {
        addr: config.listen.api.clone(),
        reason: e.to_string(),
    })?;
    let router = routes::api(state.clone());
    let listen_err = |e: std::io::Error| ServeError::Listen {
        addr: config.listen.api.clone(),
        reason: e.to_string(),
    };
    let (scheme, fingerprint, ca_generated) = match &tls {
        Some(material) => {
            let server = axum_server::from_tcp_rustls(
                listener,
                RustlsConfig::from_config(material.config.clone()),
            )
            .map_err(listen_err)?
            .handle(api_handle.clone());
            tasks.push(tokio::spawn(
                server.serve(router.into_make_service_with_connect_info::<SocketAddr>()),
            ));
            (
                "https",
                Some(material.fingerprint.clone()),
                material.generated,
            )
        }
        None => {
            let server = axum_server::from_tcp(listener)
                .map_err(listen_err)?
                .handle(api_handle.clone());
            tasks.push(tokio::spawn(
                server.serve(router.into_make_service_with_connect_info::<SocketAddr>()),
            ));
            ("http", None, false)
        }
    };
    let metrics_addr = if config.listen.metrics.is_empty() {
        None
    } else {
        let listener = bind(&config.listen.metrics)?;
        let addr = listener.local_addr().ok();
        let server = axum_server::from_tcp(listener)
            .map_err(|e| ServeError::Listen {
                addr: config.listen.metrics.clone(),
                reason: e.to_string(),
            })?
            .handle(metrics_handle.clone());
        tasks.push(tokio::spawn(
            server.serve(routes::metrics(state.clone()).into_make_service()),
        ));
        addr
    };

    // Expired nonces are swept every minute; the store refuses replays whether or not the
    // sweep has run, so this only keeps the table small.
    let purge_state = state.clone();
    let purge = tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(60));
        loop {
            tick.tick().await;
            if let Err(e) = purge_state.store.purge_expired_nonces(clock::now()).await {
                tracing::warn!(error = %e, "purging expired nonces failed");
            }
            // Expired sessions are refused whether or not they were purged.
            if let Err(e) = purge_state.store.purge_expired_sessions(clock::now()).await {
                tracing::warn!(error = %e, "purging expired sessions failed");
            }
        }
    });
    let scheduler = tokio::spawn(feeds::scheduler::run(state.clone()));
    let rollout = tokio::spawn(crate::changes::rollout::run(state.clone()));
    // The first time notifications are configured, the notifier starts at the audit chain's
    // head (the history before is not notified); set here, before `start` returns, so what a
    // caller does once the server is up is never before the cursor.
    if config.notifications.enabled() {
        crate::notify::sources::start_cursor(state.store.as_ref(), clock::now()).await?;
    }
    let notifier = crate::notify::start(
        state.clone(),
        crate::notify::Settings {
            config: config.notifications.clone(),
            public_url: state.public_url.clone(),
        },
    )
    .map_err(ServeError::Notifications)?;
    state.ready.store(true, Ordering::Release);
    Ok(Running {
        api_addr,
        metrics_addr,
        scheme,
        fingerprint,
        ca_generated,
        state,
        api: api_handle,
        metrics: metrics_handle,
        tasks,
        purge,
        scheduler,
        rollout,
        notifier,
    })
}

fn bind(addr: &str) -> Result<std::net::TcpListener, ServeError> {
    let err = |e: std::io::Error| ServeError::Listen {
        addr: addr.to_owned(),
        reason: e.to_string(),
    };
    let listener = std::net::TcpListener::bind(addr).map_err(err)?;
    listener.set_nonblocking(true).map_err(err)?;
    Ok(listener)
}

/// Waits for SIGTERM or Ctrl-C.
pub async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = ctrl_c => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = ctrl_c.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
