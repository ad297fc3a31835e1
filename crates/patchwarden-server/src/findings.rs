//! Findings kept current: after an inventory changes, only the host's changed packages are
//! matched again; after advisories change, only the hosts and packages they name.
//!
//! A host's current findings are its open findings on packages nothing touched (kept as they
//! are, classification included) plus the new judgement of the touched packages; the store's
//! `sync_findings` then opens, keeps, reclassifies and closes against that set, recording the
//! first-seen time, the classification history, and the time and version that closed each.

use std::collections::{BTreeMap, HashSet};
use std::time::Instant;

use jiff::Timestamp;
use patchwarden_core::advisory::Advisory;
use patchwarden_core::audit::{Actor, AuditEntry};
use patchwarden_core::inventory::{Inventory, Package, PackagesDigest};
use patchwarden_match::ecosystem_applies;
use patchwarden_store::{
    CurrentFinding, FindingFilter, FindingState, FindingSync, Host, HostFilter, Store,
};
use serde_json::json;

use crate::error::ApiError;
use crate::state::AppState;

/// Which packages need matching again.
#[derive(Debug, Clone)]
pub(crate) enum Touched {
    /// Everything (a first inventory, a changed ecosystem).
    All,
    /// Packages with these (name, architecture) identities, and findings on them.
    Identities(HashSet<(String, String)>),
}

impl Touched {
    fn contains(&self, name: &str, arch: Option<&str>) -> bool {
        match self {
            Touched::All => true,
            Touched::Identities(set) => {
                set.contains(&(name.to_owned(), arch.unwrap_or_default().to_owned()))
            }
        }
    }

    /// The packages that differ between `old` and `new`.
    pub(crate) fn between(old: Option<&Inventory>, new: &Inventory) -> Touched {
        let Some(old) = old else {
            return Touched::All;
        };
        if old.host.os.ecosystem != new.host.os.ecosystem {
            return Touched::All;
        }
        let delta = patchwarden_core::inventory::delta(old, new);
        let mut set = HashSet::new();
        let mut add = |p: &Package| {
            set.insert((p.name.clone(), p.arch.clone().unwrap_or_default()));
        };
        delta.added.iter().for_each(&mut add);
        delta.removed.iter().for_each(&mut add);
        for c in &delta.changed {
            add(&c.old);
            add(&c.new);
        }
        Touched::Identities(set)
    }
}

/// Re-matches the touched packages of `host` (whose inventory is now `inventory`) and syncs
/// its findings.
pub(crate) async fn refresh_host(
    state: &AppState,
    host: &Host,
    inventory: &Inventory,
    touched: &Touched,
    actor: Actor,
    now: Timestamp,
) -> Result<FindingSync, ApiError> {
    let rematched = rematch(state, host, inventory, touched, now).await?;
    let audit = AuditEntry::new(now, actor, "findings.sync", format!("host:{}", host.id));
    let sync = state
        .store
        .sync_findings(host.id, &rematched.current, &inventory.packages, now, audit)
        .await?;
    rematched.observe(state, host, &sync);
    Ok(sync)
}

/// An uploaded inventory: [`refresh_host`] and the inventory stored in the same transaction
/// (`Store::apply_inventory`), the latter recorded by `inventory_audit`; `digest` is the
/// inventory's; `nonce` the upload request's nonce and its expiry, recorded in the same
/// transaction (a replay fails and changes nothing). Returns the sync and the digest now held.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn apply_inventory(
    state: &AppState,
    host: &Host,
    inventory: &Inventory,
    digest: PackagesDigest,
    touched: &Touched,
    actor: Actor,
    nonce: (&str, Timestamp),
    now: Timestamp,
    inventory_audit: AuditEntry,
) -> Result<(FindingSync, PackagesDigest), ApiError> {
    let rematched = rematch(state, host, inventory, touched, now).await?;
    let audit = AuditEntry::new(now, actor, "findings.sync", format!("host:{}", host.id));
    let upload =
        patchwarden_store::PreparedUpload::with_digest(inventory, digest, &rematched.current)?
            .with_nonce(nonce.0, nonce.1)?;
    let (sync, digest) = state
        .store
        .apply_inventory(host.id, upload, now, audit, inventory_audit)
        .await?;
    rematched.observe(state, host, &sync);
    Ok((sync, digest))
}

/// A host's current findings after matching its touched packages again.
struct Rematched {
    current: Vec<CurrentFinding>,
    /// How many packages were matched.
    matched: usize,
    started: Instant,
}

impl Rematched {
    /// The sync's counts go to the metrics and the log (the audit entry's `after` cannot carry
    /// them: they are known only after the sync).
    fn observe(&self, state: &AppState, host: &Host, sync: &FindingSync) {
        state.metrics.findings_opened.inc_by(u64::from(sync.opened));
        state.metrics.findings_closed.inc_by(u64::from(sync.closed));
        state
            .metrics
            .match_seconds
            .observe(self.started.elapsed().as_secs_f64());
        tracing::debug!(
            host = %host.id, matched = self.matched, opened = sync.opened, closed = sync.closed,
            reclassified = sync.reclassified, "findings synced"
        );
    }
}

/// The host's open findings on untouched packages, kept as they are, and the matcher's new
/// judgement of the touched ones; vulnerabilities new to the host enter the triage queue.
async fn rematch(
    state: &AppState,
    host: &Host,
    inventory: &Inventory,
    touched: &Touched,
    now: Timestamp,
) -> Result<Rematched, ApiError> {
    let started = Instant::now();
    // With every package matched again (a first inventory), the open findings serve only to
    // tell which vulnerabilities are new to the host, and a host whose row counts none (as
    // every new host's does) is not asked for them. At a fleet's roll-out that read was
    // PostgreSQL's costliest in an upload: its cached plan, made while the findings table was
    // nearly empty, scanned the table as it grew (pg_stat_statements, 3,000 hosts: 8.3 ms a
    // call, up to 1.1 s, for no row). A count read with the request can be stale; the worst
    // it does here is offer the triage queue a vulnerability it may already hold.
    let open = if matches!(touched, Touched::All) && host.open_findings == 0 {
        Vec::new()
    } else {
        state
            .store
            .list_findings(&FindingFilter {
                host: Some(host.id),
                state: Some(FindingState::Open),
                ..FindingFilter::default()
            })
            .await?
    };
    // What was open before, so that a vulnerability new to the fleet's findings can enter the
    // triage queue (feeds::triage).
    let open_before: HashSet<String> = open
        .iter()
        .map(|f| f.finding.vulnerability.clone())
        .collect();
    let mut current: Vec<CurrentFinding> = open
        .into_iter()
        .filter(|f| !touched.contains(&f.finding.package, f.finding.arch.as_deref()))
        .map(|f| CurrentFinding {
            body: None,
            finding: f.finding.into(),
            classification: f.classification,
        })
        .collect();
    let packages: Vec<&Package> = inventory
        .packages
        .iter()
        .filter(|p| touched.contains(&p.name, p.arch.as_deref()))
        .collect();
    let matcher = state.matcher();
    let (fresh, problems) = matcher.evaluate(&inventory.host, &host.labels, &packages, now);
    for p in problems.iter().take(5) {
        tracing::warn!(host = %host.id, problem = %p, "package not judged");
    }
    let matched = packages.len();
    crate::feeds::triage::enqueue_opened(state, host, &open_before, &fresh, now).await?;
    current.extend(fresh);
    Ok(Rematched {
        current,
        matched,
        started,
    })
}

/// The (ecosystem, package name) pairs an advisory speaks of.
fn pairs(advisory: &Advisory) -> Vec<(String, String)> {
    let affected = advisory.affected.iter().filter_map(|a| a.package.as_ref());
    let not_affected = advisory.not_affected.iter().map(|n| &n.package);
    affected
        .chain(not_affected)
        .map(|p| (p.ecosystem.clone(), p.name.clone()))
        .collect()
}

/// How many changed advisories are read back whole at a time to learn the packages they name.
/// A feed's first import changes every advisory it has (7,374 for AlmaLinux's archive): read
/// at once they held some 75 MB beside the matcher being built, the largest part of a server's
/// peak memory at start.
const PAIRS_BATCH: usize = 256;

/// After advisories changed: re-matches, on every host whose ecosystem one of them applies to,
/// the packages they name (by binary or source name). Returns how many hosts were synced.
/// The advisories come whole from the store (the matcher's index keeps only what matching
/// needs), a batch at a time, and only when there is a host to re-match.
pub(crate) async fn refresh_for_advisories(
    state: &AppState,
    changed: &[String],
    now: Timestamp,
) -> Result<usize, ApiError> {
    let store: &dyn Store = state.store.as_ref();
    if changed.is_empty() {
        return Ok(0);
    }
    let any_host = store
        .list_hosts(&HostFilter {
            limit: Some(1),
            ..HostFilter::default()
        })
        .await?;
    if any_host.is_empty() {
        return Ok(0);
    }
    let mut wanted: BTreeMap<String, HashSet<String>> = BTreeMap::new();
    for ids in changed.chunks(PAIRS_BATCH) {
        for a in store.advisories_by_ids(ids).await? {
            for (eco, name) in pairs(&a) {
                wanted.entry(eco).or_default().insert(name);
            }
        }
    }
    if wanted.is_empty() {
        return Ok(0);
    }
    let mut synced = 0;
    let mut after = None;
    loop {
        let hosts = store
            .list_hosts(&HostFilter {
                after,
                limit: Some(500),
                ..HostFilter::default()
            })
            .await?;
        let Some(last) = hosts.last() else { break };
        after = Some(last.id);
        for host in &hosts {
            let Some(host_eco) = host.ecosystem.as_deref() else {
                continue;
            };
            let names: HashSet<&str> = wanted
                .iter()
                .filter(|(eco, _)| ecosystem_applies(eco, host_eco))
                .flat_map(|(_, names)| names.iter().map(String::as_str))
                .collect();
            if names.is_empty() {
                continue;
            }
            let Some(stored) = store.get_inventory(host.id).await? else {
                continue;
            };
            let identities: HashSet<(String, String)> = stored
                .inventory
                .packages
                .iter()
                .filter(|p| {
                    names.contains(p.name.as_str())
                        || p.source_name.as_deref().is_some_and(|s| names.contains(s))
                })
                .map(|p| (p.name.clone(), p.arch.clone().unwrap_or_default()))
                .collect();
            if identities.is_empty() {
                continue;
            }
            refresh_host(
                state,
                host,
                &stored.inventory,
                &Touched::Identities(identities),
                Actor::System("matcher".into()),
                now,
            )
            .await?;
            synced += 1;
        }
    }
    Ok(synced)
}

/// The JSON the audit chain records for an inventory change: its digest and size, not the
/// packages themselves (the inventory table has those). The digest is the caller's, who has
/// it already or computes it once.
pub(crate) fn inventory_summary(
    inventory: &Inventory,
    digest: &patchwarden_core::inventory::PackagesDigest,
) -> serde_json::Value {
    json!({
        "packages": inventory.packages.len(),
        "digest": digest.to_string(),
    })
}
