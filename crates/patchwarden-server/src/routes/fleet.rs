//! The fleet for operators: hosts (list, show with facts, packages and findings), findings
//! across hosts, advisories by id.
//!
//! A provider sees only the hosts of its own groups and their findings: a host outside them
//! is "not found", exactly like one that does not exist, and lists leave such hosts out. The
//! scope comes from the caller (`access::Caller::scope`); every handler here applies it.

use std::collections::{BTreeSet, HashSet};
use std::sync::Arc;

use axum::Json;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use patchwarden_api::v1::fleet::{
    AdvisoryView, Criticality, DEFAULT_PAGE, FindingPage, FindingQuery, FindingStateFilter,
    FindingView, HostDetail, HostPage, HostQuery, HostStanding, HostSummary, MAX_PAGE,
};
use patchwarden_core::policy::Class;
use patchwarden_store::limits::MAX_ID;
use patchwarden_store::{FindingFilter, FindingState, Host, HostFilter, HostState, StoredFinding};
use uuid::Uuid;

use crate::access::{Caller, Scope};
use crate::clock;
use crate::error::ApiError;
use crate::routes::exceptions::InForce;
use crate::routes::users::path_id;
use crate::state::AppState;

pub(crate) fn query<T>(q: Result<Query<T>, QueryRejection>) -> Result<T, ApiError> {
    q.map(|Query(q)| q)
        .map_err(|e| ApiError::InvalidParameter(e.body_text()))
}

/// A page size within 1 ..= MAX_PAGE.
pub(crate) fn page_size(limit: Option<u32>) -> Result<u32, ApiError> {
    match limit.unwrap_or(DEFAULT_PAGE) {
        n @ 1..=MAX_PAGE => Ok(n),
        n => Err(ApiError::InvalidParameter(format!(
            "limit {n}: between 1 and {MAX_PAGE}"
        ))),
    }
}

fn standing(s: HostState) -> HostStanding {
    match s {
        HostState::Active => HostStanding::Active,
        HostState::Quarantined => HostStanding::Quarantined,
        HostState::Retired => HostStanding::Retired,
    }
}

pub(crate) fn criticality(c: Class) -> Criticality {
    match c {
        Class::NotApplicable => Criticality::NotApplicable,
        Class::Low => Criticality::Low,
        Class::Medium => Criticality::Medium,
        Class::High => Criticality::High,
        Class::Emergency => Criticality::Emergency,
    }
}

pub(crate) fn class(c: Criticality) -> Class {
    match c {
        Criticality::NotApplicable => Class::NotApplicable,
        Criticality::Low => Class::Low,
        Criticality::Medium => Class::Medium,
        Criticality::High => Class::High,
        Criticality::Emergency => Class::Emergency,
    }
}

fn finding_view(f: &StoredFinding, in_force: &InForce) -> FindingView {
    let (standing, exception) = in_force.mark(f);
    FindingView {
        standing,
        exception,
        id: f.id,
        host: f.host,
        state: match f.state {
            FindingState::Open => FindingStateFilter::Open,
            FindingState::Closed => FindingStateFilter::Closed,
        },
        criticality: f.classification.class.map(criticality),
        due_at: f.classification.due_at,
        policy: f.classification.policy.clone(),
        rule: f.classification.rule.clone(),
        first_seen: f.first_seen,
        last_seen: f.last_seen,
        closed_at: f.closed_at,
        fixed_version: f.fixed_version.clone(),
        finding: f.finding.clone(),
    }
}

async fn open_findings(state: &AppState, host: Uuid) -> Result<Vec<StoredFinding>, ApiError> {
    Ok(state
        .store
        .list_findings(&FindingFilter {
            host: Some(host),
            state: Some(FindingState::Open),
            ..FindingFilter::default()
        })
        .await?)
}

async fn summary(state: &AppState, h: &Host) -> Result<HostSummary, ApiError> {
    Ok(HostSummary {
        id: h.id,
        hostname: h.facts.hostname.clone(),
        group: h.group.clone(),
        ring: h.ring.clone(),
        labels: h.labels.clone(),
        ecosystem: h.ecosystem.clone(),
        standing: standing(h.state),
        enrolled_at: h.enrolled_at,
        last_seen: h.last_seen,
        open_findings: open_findings(state, h.id).await?.len() as u64,
    })
}

/// The host `id` if the caller's scope admits it; "not found" otherwise.
async fn scoped_host(state: &AppState, scope: &Scope, id: Uuid) -> Result<Host, ApiError> {
    state
        .store
        .get_host(id)
        .await?
        .filter(|h| scope.admits_group(&h.group))
        .ok_or(ApiError::NotFound)
}

/// Hosts with filters, by id, a page at a time.
#[utoipa::path(
    get,
    path = "/api/v1/hosts",
    tag = "hosts",
    params(HostQuery),
    responses((status = 200, description = "A page of hosts", body = HostPage))
)]
pub(crate) async fn list_hosts(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    q: Result<Query<HostQuery>, QueryRejection>,
) -> Result<Json<HostPage>, ApiError> {
    let q = query(q)?;
    let limit = page_size(q.limit)?;
    let filter = |group: Option<String>| HostFilter {
        group,
        ring: q.ring.clone(),
        ecosystem: q.ecosystem.clone(),
        after: q.after,
        // One more than the page, to know whether another page follows.
        limit: Some(limit + 1),
        ..HostFilter::default()
    };
    let mut hosts = match caller.scope() {
        Scope::All => state.store.list_hosts(&filter(q.group.clone())).await?,
        Scope::Groups(groups) => {
            // Each group's hosts come sorted by id after `after`; the page is the first
            // `limit + 1` of their union.
            let wanted: BTreeSet<String> = match &q.group {
                Some(g) => groups.into_iter().filter(|x| x == g).collect(),
                None => groups,
            };
            let mut all = Vec::new();
            for g in wanted {
                all.extend(state.store.list_hosts(&filter(Some(g))).await?);
            }
            all.sort_by_key(|h| h.id);
            all.truncate(limit as usize + 1);
            all
        }
    };
    let next_after = if hosts.len() > limit as usize {
        hosts.truncate(limit as usize);
        hosts.last().map(|h| h.id)
    } else {
        None
    };
    let mut items = Vec::with_capacity(hosts.len());
    for h in &hosts {
        items.push(summary(&state, h).await?);
    }
    Ok(Json(HostPage { items, next_after }))
}

/// A host with its facts, packages and open findings.
#[utoipa::path(
    get,
    path = "/api/v1/hosts/{id}",
    tag = "hosts",
    params(("id" = Uuid, Path, description = "The host")),
    responses(
        (status = 200, description = "The host", body = HostDetail),
        (status = 404, description = "No such host in the caller's scope"),
    )
)]
pub(crate) async fn show_host(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    id: Result<Path<Uuid>, PathRejection>,
) -> Result<Json<HostDetail>, ApiError> {
    let id = path_id(id)?;
    let host = scoped_host(&state, &caller.scope(), id).await?;
    let inventory = state.store.get_inventory(id).await?;
    let findings = open_findings(&state, id).await?;
    let in_force = InForce::load(&state, clock::now()).await?;
    Ok(Json(HostDetail {
        host: summary(&state, &host).await?,
        standing_reason: host.state_reason.clone(),
        inventory_updated_at: inventory.as_ref().map(|i| i.updated_at),
        packages: inventory.map(|i| i.inventory.packages).unwrap_or_default(),
        findings: findings
            .iter()
            .map(|f| finding_view(f, &in_force))
            .collect(),
        facts: host.facts,
    }))
}

/// Findings with filters, by id, a page at a time.
#[utoipa::path(
    get,
    path = "/api/v1/findings",
    tag = "findings",
    params(FindingQuery),
    responses((status = 200, description = "A page of findings", body = FindingPage))
)]
pub(crate) async fn list_findings(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    q: Result<Query<FindingQuery>, QueryRejection>,
) -> Result<Json<FindingPage>, ApiError> {
    let q = query(q)?;
    let limit = page_size(q.limit)?;
    // The exceptions in force, once per request: each finding is matched in memory.
    let in_force = InForce::load(&state, clock::now()).await?;
    let (state_filter, excepted) = match q.state.unwrap_or(FindingStateFilter::Open) {
        FindingStateFilter::Open => (FindingState::Open, false),
        FindingStateFilter::Closed => (FindingState::Closed, false),
        // Open findings an exception in force covers: only the hosts such exceptions name
        // are read.
        FindingStateFilter::Excepted => (FindingState::Open, true),
    };
    let scope = caller.scope();
    // The hosts a provider may see; `None` for everyone else.
    let allowed: Option<HashSet<Uuid>> = match &scope {
        Scope::All => None,
        Scope::Groups(groups) => {
            let mut ids = HashSet::new();
            for g in groups {
                let hosts = state
                    .store
                    .list_hosts(&HostFilter {
                        group: Some(g.clone()),
                        ..HostFilter::default()
                    })
                    .await?;
                ids.extend(hosts.into_iter().map(|h| h.id));
            }
            Some(ids)
        }
    };
    if let (Some(host), Some(ids)) = (q.host, &allowed)
        && !ids.contains(&host)
    {
        return Ok(Json(FindingPage {
            items: Vec::new(),
            next_after: None,
        }));
    }
    if excepted {
        let mut items: Vec<StoredFinding> = Vec::new();
        for host in in_force.hosts() {
            if q.host.is_some_and(|h| h != host)
                || allowed.as_ref().is_some_and(|ids| !ids.contains(&host))
            {
                continue;
            }
            let mut after = q.after;
            // Each host's covered findings, a batch at a time, until `limit + 1` are found.
            let mut found = 0usize;
            loop {
                let batch = state
                    .store
                    .list_findings(&FindingFilter {
                        host: Some(host),
                        state: Some(FindingState::Open),
                        class: q.criticality.map(class),
                        due_before: q.due_before,
                        after_id: after,
                        limit: Some(MAX_PAGE),
                        ..FindingFilter::default()
                    })
                    .await?;
                let ended = batch.len() < MAX_PAGE as usize;
                after = batch.last().map(|f| f.id);
                for f in batch {
                    if in_force.covering(&f).is_some() {
                        found += 1;
                        items.push(f);
                    }
                }
                if ended || found > limit as usize {
                    break;
                }
            }
        }
        items.sort_by_key(|f| f.id);
        let next_after = if items.len() > limit as usize {
            items.truncate(limit as usize);
            items.last().map(|f| f.id)
        } else {
            None
        };
        return Ok(Json(FindingPage {
            items: items.iter().map(|f| finding_view(f, &in_force)).collect(),
            next_after,
        }));
    }
    let mut items: Vec<StoredFinding> = Vec::new();
    let mut after = q.after;
    // A provider's findings are filtered from the whole list a batch at a time, until the
    // page is full or the list ends.
    loop {
        let batch = state
            .store
            .list_findings(&FindingFilter {
                host: q.host,
                state: Some(state_filter),
                class: q.criticality.map(class),
                due_before: q.due_before,
                after_id: after,
                limit: Some(limit + 1),
                ..FindingFilter::default()
            })
            .await?;
        let ended = batch.len() <= limit as usize;
        after = batch.last().map(|f| f.id);
        items.extend(
            batch
                .into_iter()
                .filter(|f| allowed.as_ref().is_none_or(|ids| ids.contains(&f.host))),
        );
        if items.len() > limit as usize || ended {
            break;
        }
    }
    let next_after = if items.len() > limit as usize {
        items.truncate(limit as usize);
        items.last().map(|f| f.id)
    } else {
        None
    };
    Ok(Json(FindingPage {
        items: items.iter().map(|f| finding_view(f, &in_force)).collect(),
        next_after,
    }))
}

/// An advisory by its id (`DSA-5678-1`, `CVE-2024-1234`, `ALSA-2024:1234` …).
#[utoipa::path(
    get,
    path = "/api/v1/advisories/{id}",
    tag = "advisories",
    params(("id" = String, Path, description = "The advisory's id")),
    responses(
        (status = 200, description = "The advisory", body = AdvisoryView),
        (status = 404, description = "No advisory has this id"),
    )
)]
pub(crate) async fn show_advisory(
    State(state): State<Arc<AppState>>,
    _caller: Caller,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<AdvisoryView>, ApiError> {
    let Path(id) = id.map_err(|e| ApiError::InvalidParameter(e.body_text()))?;
    if id.len() > MAX_ID {
        return Err(ApiError::NotFound);
    }
    let matcher = state.matcher();
    let advisory = matcher.index.advisory(&id).ok_or(ApiError::NotFound)?;
    Ok(Json(AdvisoryView {
        advisory: advisory.clone(),
    }))
}
