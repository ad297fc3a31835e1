//! Advisory feeds on the server: sources fetched on a schedule with conditional requests,
//! imported atomically, watched for staleness, imported by hand from files on air-gapped
//! sites, and advisories entered by hand for vendors without a feed.
//!
//! One sync of a source ([`sync_source`]) fetches it (`fetch`: HTTP with `If-None-Match` /
//! `If-Modified-Since`, limits and timeouts; or a local file or directory), compares the content
//! with the last import's hash, parses it (`parse`, with the parsers of `patchwarden-feeds`),
//! and hands the result to the store's `import_feed`, which applies advisories, enrichment,
//! validators and the run record in one transaction. Anything that goes wrong before that
//! transaction commits — a dropped connection, a truncated archive, a document whose every
//! record is rejected — is recorded as a failed run with its reason, and the data of the last
//! good import stays in force. After an import the matcher is rebuilt and the hosts the changed
//! advisories (and changed KEV or EPSS entries) name are matched again; new findings on new
//! advisories enter the triage queue (`triage`).
//!
//! **Scheduling**: one scheduler per server (`scheduler`), but only the holder of the store's
//! `feeds` lease row fetches, so servers sharing PostgreSQL fetch each source once. Every server
//! compares the store's advisory generation with the one its matcher was built at and rebuilds
//! when another server (or `patchwarden feeds import`) changed the advisories.

pub mod config;
pub mod csaf_provider;
pub mod fetch;
pub mod parse;
pub mod scheduler;
pub mod triage;

use std::collections::{BTreeSet, HashMap, HashSet};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicI64, Ordering};

use jiff::Timestamp;
use patchwarden_core::advisory::{EpssScore, KevEntry};
use patchwarden_core::audit::{Actor, AuditEntry};
use patchwarden_core::policy::Ssvc;
use patchwarden_feeds::Limits;
use patchwarden_feeds::detect::{FeedFormat, detect_path};
use patchwarden_feeds::load::AdvisoryFeed;
use patchwarden_match::Enrichment;
use patchwarden_store::feed::{
    EnrichmentDoc, FeedImport, FeedRun, FeedSource, FeedSourceSpec, FetchValidators, NewFeedRun,
    RunOutcome, SourceKind, SourceOrigin,
};
use patchwarden_store::triage::TriageFilter;
use patchwarden_store::{Store, StoreError};
use sha2::{Digest, Sha256};

use crate::findings;
use crate::matcher::Matcher;
use crate::state::AppState;
use config::FeedsConfig;
use fetch::Fetched;

/// The enrichment read from the configured files at start-up, kept as records so that the
/// matcher's enrichment can be rebuilt with the feeds' beside it.
#[derive(Debug, Default, Clone)]
pub struct FileEnrichment {
    pub kev: Option<Vec<KevEntry>>,
    pub epss: Option<Vec<(String, EpssScore)>>,
    pub ssvc: Option<Vec<(String, Ssvc)>>,
}

impl FileEnrichment {
    /// The files' enrichment joined with the feeds' documents.
    pub fn with_documents(&self, docs: &[(String, EnrichmentDoc)]) -> Enrichment {
        let mut e = Enrichment::default();
        if let Some(kev) = &self.kev {
            e.add_kev(kev.iter().cloned());
        }
        if let Some(epss) = &self.epss {
            e.add_epss(epss.iter().cloned());
        }
        if let Some(ssvc) = &self.ssvc {
            e.add_ssvc(ssvc.iter().cloned());
        }
        for (_, doc) in docs {
            match doc {
                EnrichmentDoc::Kev { entries } => e.add_kev(entries.iter().cloned()),
                EnrichmentDoc::Epss { scores } => e.add_epss(scores.iter().cloned()),
            }
        }
        e
    }
}

/// What the feed machinery of one server keeps.
#[derive(Debug)]
pub struct FeedRuntime {
    pub config: FeedsConfig,
    /// Where downloads are written while they are read (`data_dir/feeds`).
    pub work_dir: PathBuf,
    pub files: FileEnrichment,
    http: OnceLock<Result<reqwest::Client, String>>,
    /// One sync or import at a time in this server: two imports of one source would race
    /// for its validators, and each rebuilds the matcher anyway.
    lock: tokio::sync::Mutex<()>,
    /// The advisory generation the matcher in force was built from.
    built: AtomicI64,
    /// Wakes the scheduler (an operator asked for a sync).
    pub wake: tokio::sync::Notify,
    /// This server's name as a lease holder.
    pub holder: String,
    /// Vulnerabilities this server knows to be in the triage queue.
    pub queued: triage::Queued,
}

impl FeedRuntime {
    pub fn new(config: FeedsConfig, work_dir: PathBuf, files: FileEnrichment) -> FeedRuntime {
        FeedRuntime {
            config,
            work_dir,
            files,
            http: OnceLock::new(),
            lock: tokio::sync::Mutex::new(()),
            built: AtomicI64::new(-1),
            wake: tokio::sync::Notify::new(),
            holder: format!("server-{}", uuid::Uuid::new_v4()),
            queued: triage::Queued::default(),
        }
    }

    fn http(&self) -> Result<&reqwest::Client, String> {
        self.http
            .get_or_init(|| fetch::client(&self.config).map_err(|e| e.to_string()))
            .as_ref()
            .map_err(Clone::clone)
    }

    /// Notes that the matcher in force was built at `generation`.
    pub fn mark_built(&self, generation: i64) {
        self.built.store(generation, Ordering::Release);
    }

    /// The generation the matcher in force was built from (-1: not built from the store's
    /// generation yet).
    pub fn built_generation(&self) -> i64 {
        self.built.load(Ordering::Acquire)
    }
}

/// Why a sync or an import could not run at all (a failed fetch or parse is not an error: it
/// is a failed run, recorded, with the data in force kept).
#[derive(Debug, thiserror::Error)]
pub enum FeedsError {
    #[error("no feed source is named {0:?}")]
    UnknownSource(String),
    #[error("{0}")]
    Invalid(String),
    #[error("database: {0}")]
    Store(#[from] StoreError),
    #[error("re-matching hosts: {0}")]
    Refresh(String),
}

impl From<crate::error::ApiError> for FeedsError {
    fn from(e: crate::error::ApiError) -> FeedsError {
        FeedsError::Refresh(e.to_string())
    }
}

/// The result of a sync or an import.
#[derive(Debug, Clone)]
pub struct Synced {
    pub run: FeedRun,
    /// Hosts whose findings were matched again.
    pub hosts: usize,
}

/// Rebuilds the matcher from the store (advisories, the feeds' enrichment, triage decisions)
/// with the configured files' enrichment and the policies in force, and notes the generation
/// it was built at.
pub async fn rebuild_matcher(state: &AppState) -> Result<(), FeedsError> {
    let store = state.store.clone();
    // Read first: a change committed while the data is read moves the generation past this
    // value, and the next check rebuilds again.
    let generation = store.advisory_generation().await?;
    let advisories = store.advisories().await?;
    let docs = store.enrichment_documents().await?;
    let decided = store
        .list_triage(&TriageFilter {
            pending: Some(false),
            ..TriageFilter::default()
        })
        .await?;
    let enrichment = state.feeds.files.with_documents(&docs);
    let policies = state.matcher().policies.clone();
    let (matcher, problems) = tokio::task::spawn_blocking(move || {
        let (m, problems) = Matcher::new(advisories, enrichment, policies);
        (m.with_decisions(&decided), problems)
    })
    .await
    .map_err(|e| FeedsError::Refresh(format!("the matcher build failed: {e}")))?;
    for p in problems.iter().take(5) {
        tracing::warn!(problem = %p, "advisory not indexed");
    }
    state.set_matcher(matcher);
    state.feeds.mark_built(generation);
    // The advisories read for the build and the replaced matcher are garbage now (the old one
    // once its last reader lets go): give the memory back (src/memory.rs).
    drop(problems);
    crate::memory::release_freed();
    Ok(())
}

/// The CVEs whose KEV entry or EPSS score differs between two documents of one source.
fn changed_cves(old: Option<&EnrichmentDoc>, new: &EnrichmentDoc) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    match new {
        EnrichmentDoc::Kev { entries } => {
            let before: HashMap<&str, &KevEntry> = match old {
                Some(EnrichmentDoc::Kev { entries }) => {
                    entries.iter().map(|e| (e.cve.as_str(), e)).collect()
                }
                _ => HashMap::new(),
            };
            let after: HashSet<&str> = entries.iter().map(|e| e.cve.as_str()).collect();
            for e in entries {
                if before.get(e.cve.as_str()) != Some(&e) {
                    out.insert(e.cve.clone());
                }
            }
            out.extend(
                before
                    .keys()
                    .filter(|c| !after.contains(*c))
                    .map(|c| (*c).to_owned()),
            );
        }
        EnrichmentDoc::Epss { scores } => {
            let before: HashMap<&str, &EpssScore> = match old {
                Some(EnrichmentDoc::Epss { scores }) => {
                    scores.iter().map(|(c, s)| (c.as_str(), s)).collect()
                }
                _ => HashMap::new(),
            };
            for (cve, score) in scores {
                if before.get(cve.as_str()) != Some(&score) {
                    out.insert(cve.clone());
                }
            }
        }
    }
    out
}

/// Applies parsed content to the store in one transaction, then rebuilds the matcher and
/// matches again the hosts it concerns.
#[allow(clippy::too_many_arguments)]
async fn import_parsed(
    state: &AppState,
    source: &FeedSource,
    parsed: parse::Parsed,
    validators: FetchValidators,
    mut run: NewFeedRun,
    actor: Actor,
    now: Timestamp,
) -> Result<Synced, FeedsError> {
    let name = source.spec.name.clone();
    let old_doc = if parsed.enrichment.is_some() {
        state
            .store
            .enrichment_documents()
            .await?
            .into_iter()
            .find(|(s, _)| *s == name)
            .map(|(_, d)| d)
    } else {
        None
    };
    let cves = parsed
        .enrichment
        .as_ref()
        .map(|new| changed_cves(old_doc.as_ref(), new))
        .unwrap_or_default();
    run.records = parsed.records() as u64;
    let run = run.with_rejects(parsed.rejects);
    // One record per id, the last one read (AlmaLinux publishes some ids under two releases):
    // written twice in one import, the pair would rewrite each other at every import.
    let mut advisories = parsed.advisories;
    let mut seen = HashSet::new();
    advisories.reverse();
    advisories.retain(|a| seen.insert(a.id.clone()));
    advisories.reverse();
    let audit = AuditEntry::new(now, actor, "feed.import", format!("feed:{name}"));
    let imported = state
        .store
        .import_feed(
            FeedImport {
                source: name.clone(),
                advisories,
                enrichment: parsed.enrichment,
                validators,
                run,
            },
            now,
            audit,
        )
        .await?;
    tracing::info!(
        source = %name,
        inserted = imported.upsert.inserted,
        updated = imported.upsert.updated,
        unchanged = imported.upsert.unchanged,
        rejected = imported.run.run.rejected,
        "feed imported"
    );
    rebuild_matcher(state).await?;
    let mut ids: HashSet<String> = imported.upsert.changed.iter().cloned().collect();
    {
        let matcher = state.matcher();
        for cve in &cves {
            ids.extend(
                matcher
                    .index
                    .vulnerability_sources(cve)
                    .map(|a| a.id().to_owned()),
            );
        }
    }
    let ids: Vec<String> = ids.into_iter().collect();
    let hosts = findings::refresh_for_advisories(state, &ids, now).await?;
    Ok(Synced {
        run: imported.run,
        hosts,
    })
}

/// Records a run that changed no data; a failed one with its reason.
async fn record(
    state: &AppState,
    source: &str,
    validators: Option<FetchValidators>,
    run: NewFeedRun,
    now: Timestamp,
) -> Result<Synced, FeedsError> {
    if run.outcome == RunOutcome::Failed {
        tracing::warn!(
            source,
            error = run.error.as_deref().unwrap_or(""),
            "feed run failed; the data in force is kept"
        );
    }
    let run = state
        .store
        .record_feed_run(source, validators, run, now)
        .await?;
    Ok(Synced { run, hosts: 0 })
}

fn failed(started: Timestamp, status: Option<u16>, error: impl ToString) -> NewFeedRun {
    let mut run = NewFeedRun::new(started, RunOutcome::Failed);
    run.http_status = status;
    run.error = Some(error.to_string());
    run
}

/// Fetches and imports one source now. A failed fetch or parse is a recorded run with its
/// reason (and `Ok`): the data of the last good import stays in force.
pub async fn sync_source(
    state: &AppState,
    name: &str,
    actor: Actor,
    now: Timestamp,
) -> Result<Synced, FeedsError> {
    let _one_at_a_time = state.feeds.lock.lock().await;
    let source = state
        .store
        .get_feed_source(name)
        .await?
        .ok_or_else(|| FeedsError::UnknownSource(name.to_owned()))?;
    let kind = source.spec.kind;
    if kind == SourceKind::Manual || source.spec.location.is_empty() {
        return Err(FeedsError::Invalid(format!(
            "{name} is not fetched: {}",
            if kind == SourceKind::Manual {
                "it is a manual source (record a check, or enter an advisory)"
            } else {
                "it has no location (import its files with `patchwarden feeds import`)"
            }
        )));
    }
    let location = source.spec.location.clone();
    let limits = Limits::default();
    let remote = location.starts_with("https://") || location.starts_with("http://");
    if remote && kind == SourceKind::Csaf && csaf_provider::is_provider_metadata(&location) {
        return sync_csaf_provider(state, &source, actor, now).await;
    }
    if remote {
        let http = match state.feeds.http() {
            Ok(h) => h,
            Err(e) => return record(state, name, None, failed(now, None, e), now).await,
        };
        let fetched = fetch::fetch(
            http,
            &location,
            &source.validators,
            &state.feeds.config,
            &state.feeds.work_dir,
        )
        .await;
        let body = match fetched {
            Err(e) => return record(state, name, None, failed(now, None, e), now).await,
            Ok(Fetched::NotModified { validators }) => {
                let mut run = NewFeedRun::new(now, RunOutcome::NotModified);
                run.http_status = Some(304);
                return record(state, name, Some(validators), run, now).await;
            }
            Ok(Fetched::Body(body)) => body,
        };
        let mut run = NewFeedRun::new(now, RunOutcome::Imported);
        run.http_status = Some(200);
        run.bytes = body.bytes;
        if source.validators.content_sha256.as_deref() == Some(body.sha256.as_str()) {
            run.outcome = RunOutcome::Unchanged;
            return record(state, name, Some(body.validators), run, now).await;
        }
        // Named as the parsers expect (`all.zip`, `….json.xz`, `….csv.gz`).
        let named = {
            let mut head = [0u8; 8];
            let n = std::fs::File::open(&body.file.path)
                .and_then(|mut f| f.read(&mut head))
                .unwrap_or(0);
            let name = parse::download_name(&location, head.get(..n).unwrap_or(&[]), kind);
            fetch::WorkFile {
                path: state
                    .feeds
                    .work_dir
                    .join(format!("{}-{name}", uuid::Uuid::new_v4())),
            }
        };
        if let Err(e) = std::fs::rename(&body.file.path, &named.path) {
            let why = format!("the work file {}: {e}", named.path.display());
            return record(state, name, None, failed(now, Some(200), why), now).await;
        }
        let path = named.path.clone();
        let path_text = path.display().to_string();
        let url = location.clone();
        let parsed = tokio::task::spawn_blocking(move || {
            parse::parse(kind, &path, &limits).map(|p| p.relocate(&path, &url))
        })
        .await
        .map_err(|e| FeedsError::Invalid(format!("the parser failed: {e}")))?;
        drop(named);
        match parsed {
            Ok(parsed) => {
                import_parsed(state, &source, parsed, body.validators, run, actor, now).await
            }
            Err(fatal) => {
                let why = fatal.reason.replace(&path_text, &location);
                let rejects = fatal
                    .rejects
                    .iter()
                    .map(|r| r.replace(&path_text, &location))
                    .collect();
                let run = failed(now, Some(200), why).with_rejects(rejects);
                record(state, name, None, run, now).await
            }
        }
    } else {
        sync_path(state, &source, Path::new(&location), actor, now).await
    }
}

/// Fetches a CSAF provider's documents (`csaf_provider`) and imports them as one run: all of
/// them in force, or none and the previous data kept. Documents refused before parsing and
/// those the parser rejects are the run's rejects.
async fn sync_csaf_provider(
    state: &AppState,
    source: &FeedSource,
    actor: Actor,
    now: Timestamp,
) -> Result<Synced, FeedsError> {
    let name = &source.spec.name;
    let http = match state.feeds.http() {
        Ok(h) => h,
        Err(e) => return record(state, name, None, failed(now, None, e), now).await,
    };
    let fetched = match csaf_provider::fetch_provider(
        http,
        &source.spec.location,
        &state.feeds.config,
        &state.feeds.work_dir,
    )
    .await
    {
        Ok(f) => f,
        Err(e) => return record(state, name, None, failed(now, None, e), now).await,
    };
    let mut run = NewFeedRun::new(now, RunOutcome::Imported);
    run.http_status = Some(200);
    run.bytes = fetched.bytes;
    if source.validators.content_sha256.as_deref() == Some(fetched.fingerprint.as_str()) {
        run.outcome = RunOutcome::Unchanged;
        return record(state, name, None, run, now).await;
    }
    let validators = FetchValidators {
        content_sha256: Some(fetched.fingerprint.clone()),
        ..source.validators.clone()
    };
    let path = fetched.dir.path.clone();
    let limits = Limits::default();
    let parsed =
        tokio::task::spawn_blocking(move || parse::parse(SourceKind::Csaf, &path, &limits))
            .await
            .map_err(|e| FeedsError::Invalid(format!("the parser failed: {e}")))?;
    // The parser names work files; the operator wants the provider's URLs.
    let rename = |line: String| {
        fetched
            .names
            .iter()
            .find(|(p, _)| line.contains(p.as_str()))
            .map_or_else(|| line.clone(), |(p, u)| line.replace(p.as_str(), u))
    };
    let dir_text = fetched.dir.path.display().to_string();
    match parsed {
        Ok(mut parsed) => {
            parsed.rejects = parsed.rejects.into_iter().map(rename).collect();
            parsed.rejects.extend(fetched.rejects.iter().cloned());
            parsed.rejects.sort();
            import_parsed(state, source, parsed, validators, run, actor, now).await
        }
        Err(fatal) => {
            let mut rejects: Vec<String> = fatal.rejects.into_iter().map(rename).collect();
            rejects.extend(fetched.rejects.iter().cloned());
            let why = fatal.reason.replace(&dir_text, &source.spec.location);
            let run = failed(now, Some(200), why).with_rejects(rejects);
            record(state, name, None, run, now).await
        }
    }
}

/// Reads a source that is a local file or directory: unchanged content (by its fingerprint)
/// is not imported again.
async fn sync_path(
    state: &AppState,
    source: &FeedSource,
    path: &Path,
    actor: Actor,
    now: Timestamp,
) -> Result<Synced, FeedsError> {
    let name = &source.spec.name;
    let kind = source.spec.kind;
    let owned = path.to_owned();
    let max = state.feeds.config.max_download_bytes;
    let result = tokio::task::spawn_blocking(move || {
        let (fingerprint, bytes) = fingerprint(&owned, max)?;
        Ok::<_, String>((fingerprint, bytes, owned))
    })
    .await
    .map_err(|e| FeedsError::Invalid(format!("the reader failed: {e}")))?;
    let (fingerprint, bytes, owned) = match result {
        Ok(r) => r,
        Err(e) => return record(state, name, None, failed(now, None, e), now).await,
    };
    let mut validators = source.validators.clone();
    let mut run = NewFeedRun::new(now, RunOutcome::Imported);
    run.bytes = bytes;
    if validators.content_sha256.as_deref() == Some(fingerprint.as_str()) {
        run.outcome = RunOutcome::Unchanged;
        return record(state, name, None, run, now).await;
    }
    validators.content_sha256 = Some(fingerprint);
    let limits = Limits::default();
    let parsed = tokio::task::spawn_blocking(move || parse::parse(kind, &owned, &limits))
        .await
        .map_err(|e| FeedsError::Invalid(format!("the parser failed: {e}")))?;
    match parsed {
        Ok(parsed) => import_parsed(state, source, parsed, validators, run, actor, now).await,
        Err(fatal) => {
            let run = failed(now, None, &fatal.reason).with_rejects(fatal.rejects);
            record(state, name, None, run, now).await
        }
    }
}

/// A fingerprint of a file's content (its SHA-256) or of a directory's listing (every file's
/// relative path, size and modification time), and the bytes it covers. A file larger than
/// `max` is refused.
pub fn fingerprint(path: &Path, max: u64) -> Result<(String, u64), String> {
    let meta = std::fs::metadata(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut hash = Sha256::new();
    let mut total: u64 = 0;
    if meta.is_dir() {
        let mut files = Vec::new();
        walk(path, path, &mut files, 0)?;
        files.sort();
        for (rel, size, mtime) in files {
            hash.update(format!("{rel}\0{size}\0{mtime}\n").as_bytes());
            total = total.saturating_add(size);
        }
    } else {
        if meta.len() > max {
            return Err(format!(
                "{}: larger than the limit of {max} bytes",
                path.display()
            ));
        }
        let mut file = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let mut buf = vec![0u8; 1 << 16];
        loop {
            let n = file
                .read(&mut buf)
                .map_err(|e| format!("{}: {e}", path.display()))?;
            if n == 0 {
                break;
            }
            hash.update(buf.get(..n).unwrap_or(&[]));
            total = total.saturating_add(n as u64);
        }
    }
    Ok((patchwarden_store::codec::hex(&hash.finalize()), total))
}

fn walk(
    root: &Path,
    dir: &Path,
    out: &mut Vec<(String, u64, i128)>,
    depth: usize,
) -> Result<(), String> {
    if depth > 32 {
        return Err(format!("{}: nested more than 32 deep", dir.display()));
    }
    let entries = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    for e in entries.flatten() {
        let p = e.path();
        let Ok(meta) = std::fs::symlink_metadata(&p) else {
            continue;
        };
        if meta.is_dir() {
            walk(root, &p, out, depth + 1)?;
        } else if meta.is_file() {
            let rel = p.strip_prefix(root).unwrap_or(&p).display().to_string();
            let mtime = meta
                .modified()
                .ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map_or(0, |d| d.as_nanos() as i128);
            out.push((rel, meta.len(), mtime));
        }
    }
    Ok(())
}

/// The source kind of a recognised feed format.
pub fn kind_of(format: FeedFormat) -> SourceKind {
    match format {
        FeedFormat::Advisories(AdvisoryFeed::Osv) => SourceKind::Osv,
        FeedFormat::Advisories(AdvisoryFeed::Csaf) => SourceKind::Csaf,
        FeedFormat::Advisories(AdvisoryFeed::AlpineSecdb) => SourceKind::Alpine,
        FeedFormat::Advisories(AdvisoryFeed::DebianTracker) => SourceKind::Debian,
        FeedFormat::Kev => SourceKind::Kev,
        FeedFormat::Epss => SourceKind::Epss,
    }
}

/// Imports a file or directory by hand (air-gapped sites: `patchwarden feeds import PATH`)
/// through the same atomic import as a fetch. The kind is recognised from the content as
/// `scan --feed` does, unless given. The data goes to the source `source_name` (made, with no
/// location and no schedule, when it does not exist; default `import-KIND`), which counts as
/// updated, so an imported file keeps the source fresh. Fatal content is a failed run, and an
/// error.
pub async fn import_path(
    state: &AppState,
    path: &Path,
    kind: Option<SourceKind>,
    source_name: Option<&str>,
    actor: Actor,
    now: Timestamp,
) -> Result<Synced, FeedsError> {
    import_path_as(state, path, None, kind, source_name, actor, now).await
}

/// [`import_path`] for a file whose path means nothing to its owner (an upload in a work
/// file): the records are named by `label` instead of the path, so that the same file
/// uploaded again names them the same and an unchanged record is not rewritten.
pub async fn import_path_as(
    state: &AppState,
    path: &Path,
    label: Option<&str>,
    kind: Option<SourceKind>,
    source_name: Option<&str>,
    actor: Actor,
    now: Timestamp,
) -> Result<Synced, FeedsError> {
    let label = label.map(str::to_owned);
    let _one_at_a_time = state.feeds.lock.lock().await;
    let kind = match kind {
        Some(k) => k,
        None => {
            let p = path.to_owned();
            let format = tokio::task::spawn_blocking(move || detect_path(&p))
                .await
                .map_err(|e| FeedsError::Invalid(format!("the reader failed: {e}")))?
                .map_err(|e| FeedsError::Invalid(e.to_string()))?;
            kind_of(format)
        }
    };
    let name = source_name.map_or_else(|| format!("import-{kind}"), str::to_owned);
    let source = match state.store.get_feed_source(&name).await? {
        Some(s) if s.spec.kind != kind => {
            return Err(FeedsError::Invalid(format!(
                "source {name} holds {} data; {} is {kind} (name another source with --source)",
                s.spec.kind,
                path.display()
            )));
        }
        Some(s) => s,
        None => {
            let spec = FeedSourceSpec {
                name: name.clone(),
                kind,
                location: String::new(),
                interval_secs: None,
                expected_period_secs: None,
                origin: SourceOrigin::Import,
            };
            let audit = AuditEntry::new(now, actor.clone(), "feed.define", format!("feed:{name}"));
            state.store.put_feed_source(&spec, now, audit).await?
        }
    };
    let max = state.feeds.config.max_download_bytes;
    let owned = path.to_owned();
    let limits = Limits::default();
    let read = tokio::task::spawn_blocking(move || {
        let (fingerprint, bytes) = fingerprint(&owned, max)?;
        let parsed = parse::parse(kind, &owned, &limits).map_err(|f| f.reason)?;
        let parsed = match &label {
            Some(label) => parsed.relocate(&owned, label),
            None => parsed,
        };
        Ok::<_, String>((fingerprint, bytes, parsed))
    })
    .await
    .map_err(|e| FeedsError::Invalid(format!("the reader failed: {e}")))?;
    match read {
        Ok((fingerprint, bytes, parsed)) => {
            let validators = FetchValidators {
                content_sha256: Some(fingerprint),
                ..source.validators.clone()
            };
            let mut run = NewFeedRun::new(now, RunOutcome::Imported);
            run.bytes = bytes;
            import_parsed(state, &source, parsed, validators, run, actor, now).await
        }
        Err(why) => {
            let why = format!("{}: {why}", path.display());
            record(state, &name, None, failed(now, None, &why), now).await?;
            Err(FeedsError::Invalid(format!(
                "nothing imported, the data in force is kept: {why}"
            )))
        }
    }
}

/// Writes the configured sources to the store (only changed definitions are audited).
pub async fn define_configured(
    store: &dyn Store,
    config: &FeedsConfig,
    now: Timestamp,
) -> Result<(), FeedsError> {
    let specs = config
        .specs()
        .map_err(|e| FeedsError::Invalid(e.to_string()))?;
    for spec in specs {
        let audit = AuditEntry::new(
            now,
            Actor::System("config".into()),
            "feed.define",
            format!("feed:{}", spec.name),
        );
        store.put_feed_source(&spec, now, audit).await?;
    }
    Ok(())
}

/// The source that advisories entered by hand go to when none is named.
pub const MANUAL_SOURCE: &str = "manual";

/// The largest advisory document entered by hand.
pub const MAX_MANUAL_ADVISORY: usize = 1024 * 1024;

/// Enters an advisory written by hand in the OSV model (a vendor without a feed), validated
/// exactly as a fetched OSV record is, into the manual source `source_name` (default
/// `manual`, made when missing), through the same atomic import: the matcher is rebuilt and the
/// hosts it names are matched again. A source that is not manual is refused.
pub async fn enter_advisory(
    state: &AppState,
    source_name: Option<&str>,
    document: &[u8],
    actor: Actor,
    now: Timestamp,
) -> Result<Synced, FeedsError> {
    if document.len() > MAX_MANUAL_ADVISORY {
        return Err(FeedsError::Invalid(format!(
            "the advisory is {} bytes; at most {MAX_MANUAL_ADVISORY} are accepted",
            document.len()
        )));
    }
    let name = source_name.unwrap_or(MANUAL_SOURCE);
    let advisory = patchwarden_feeds::osv::parse(document, &format!("manual:{name}"))
        .map_err(|r| FeedsError::Invalid(format!("not a valid OSV advisory: {r}")))?;
    if advisory.affected.is_empty() {
        return Err(FeedsError::Invalid(format!(
            "advisory {}: it names no affected package, so it could match no host",
            advisory.id
        )));
    }
    let _one_at_a_time = state.feeds.lock.lock().await;
    let source = match state.store.get_feed_source(name).await? {
        Some(s) if s.spec.kind != SourceKind::Manual => {
            return Err(FeedsError::Invalid(format!(
                "{name} is a {} source; advisories are entered into manual sources",
                s.spec.kind
            )));
        }
        Some(s) => s,
        None => {
            let spec = FeedSourceSpec {
                name: name.to_owned(),
                kind: SourceKind::Manual,
                location: String::new(),
                interval_secs: None,
                expected_period_secs: None,
                origin: SourceOrigin::Operator,
            };
            let audit = AuditEntry::new(now, actor.clone(), "feed.define", format!("feed:{name}"));
            state.store.put_feed_source(&spec, now, audit).await?
        }
    };
    let parsed = parse::Parsed {
        advisories: vec![advisory],
        enrichment: None,
        rejects: Vec::new(),
    };
    let validators = source.validators.clone();
    let run = NewFeedRun::new(now, RunOutcome::Imported);
    import_parsed(state, &source, parsed, validators, run, actor, now).await
}

/// An operator checked a manual source's vendor (P2's monthly check where no feed exists).
pub async fn record_check(
    state: &AppState,
    source: &str,
    note: &str,
    actor: Actor,
    now: Timestamp,
) -> Result<FeedSource, FeedsError> {
    let audit = AuditEntry::new(now, actor, "feed.check", format!("feed:{source}"));
    match state
        .store
        .record_manual_check(source, note, now, audit)
        .await
    {
        Err(StoreError::NotFound { .. }) => Err(FeedsError::UnknownSource(source.to_owned())),
        Err(StoreError::Invalid { reason, .. }) => Err(FeedsError::Invalid(reason)),
        other => Ok(other?),
    }
}

/// Asks for a source to be fetched by the scheduler at once (on the server holding the
/// lease; this one is woken in case it is).
pub async fn request_sync(
    state: &AppState,
    source: &str,
    actor: Actor,
    now: Timestamp,
) -> Result<FeedSource, FeedsError> {
    let audit = AuditEntry::new(now, actor, "feed.sync", format!("feed:{source}"));
    let s = match state.store.request_feed_sync(source, now, audit).await {
        Err(StoreError::NotFound { .. }) => {
            return Err(FeedsError::UnknownSource(source.to_owned()));
        }
        other => other?,
    };
    state.feeds.wake.notify_one();
    Ok(s)
}

/// A server's state without its listeners, for `patchwarden feeds import` run beside (or
/// instead of) a server on the same database: the configured policies and files'
/// enrichment, the store's advisories, and the `[feeds]` settings — so the import re-matches
/// hosts with the judgement the server makes.
pub async fn offline_state(
    config: &crate::Config,
    store: std::sync::Arc<dyn Store>,
) -> Result<AppState, FeedsError> {
    let policies = crate::matcher::load_policies(&config.policy.policies)
        .map_err(|e| FeedsError::Invalid(e.to_string()))?;
    let files = config.advisories.files.clone();
    let loaded = tokio::task::spawn_blocking(move || crate::advisories::load(&files))
        .await
        .map_err(|e| FeedsError::Invalid(format!("the advisory reader failed: {e}")))?
        .map_err(|e| FeedsError::Invalid(e.to_string()))?;
    let state = AppState::new(
        store,
        Matcher::new(Vec::new(), Enrichment::default(), policies).0,
        config.agents.clone(),
        config.limits.clone(),
        None,
    );
    let mut state = state;
    state.feeds = std::sync::Arc::new(FeedRuntime::new(
        config.feeds.clone(),
        config.data_dir.join("feeds"),
        loaded.files,
    ));
    rebuild_matcher(&state).await?;
    Ok(state)
}
