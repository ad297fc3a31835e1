//! The fleet for operators: hosts (list, show with facts, packages and findings), findings
//! across hosts, advisories by id.
//!
//! A provider sees only the hosts of its own groups and their findings: a host outside them
//! is "not found", exactly like one that does not exist, and lists leave such hosts out. The
//! scope comes from the caller (`access::Caller::scope`); every handler here applies it.

use std::collections::HashSet;
use std::sync::Arc;

use axum::Json;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use jiff::Timestamp;
use patchwarden_api::v1::exceptions::FindingStanding;
use patchwarden_api::v1::fleet::{
    AdvisoryView, Criticality, DEFAULT_PAGE, FindingPage, FindingQuery, FindingStateFilter,
    FindingView, HostDetail, HostPage, HostQuery, HostStanding, HostSummary, MAX_PAGE,
};
use patchwarden_core::advisory::Advisory;
use patchwarden_core::policy::Class;
use patchwarden_store::limits::MAX_ID;
use patchwarden_store::{
    FindingFilter, FindingState, Host, HostFilter, HostState, StoredFinding, StoredInventory,
};
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

fn summary(h: &Host, open_findings: u64) -> HostSummary {
    HostSummary {
        id: h.id,
        hostname: h.facts.hostname.clone(),
        group: h.group.clone(),
        ring: h.ring.clone(),
        labels: h.labels.clone(),
        ecosystem: h.ecosystem.clone(),
        standing: standing(h.state),
        enrolled_at: h.enrolled_at,
        last_seen: h.last_seen,
        open_findings,
    }
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

/// Which hosts to list: the API's filters and the web pages' (reboot required, last seen
/// before). The API and the hosts page both list through [`list_hosts_in`].
#[derive(Debug, Clone, Default)]
pub(crate) struct HostListing {
    pub group: Option<String>,
    pub ring: Option<String>,
    pub ecosystem: Option<String>,
    pub reboot_required: Option<bool>,
    /// Hosts not seen since this time (or never).
    pub last_seen_before: Option<Timestamp>,
    pub after: Option<Uuid>,
    pub limit: u32,
}

/// A page of hosts, each with its number of open findings.
#[derive(Debug, Clone)]
pub(crate) struct ListedHosts {
    pub hosts: Vec<(Host, u64)>,
    pub next_after: Option<Uuid>,
}

/// The hosts after `after` that `l`'s store-side filters admit in `scope`, by id, at most
/// `batch` of them.
async fn host_batch(
    state: &AppState,
    scope: &Scope,
    l: &HostListing,
    after: Option<Uuid>,
    batch: u32,
) -> Result<Vec<Host>, ApiError> {
    let filter = |group: Option<String>| HostFilter {
        group,
        ring: l.ring.clone(),
        ecosystem: l.ecosystem.clone(),
        last_seen_before: l.last_seen_before,
        after,
        limit: Some(batch),
        ..HostFilter::default()
    };
    Ok(match scope {
        Scope::All => state.store.list_hosts(&filter(l.group.clone())).await?,
        Scope::Groups(groups) => {
            // Each group's hosts come sorted by id after `after`; the batch is the first
            // `batch` of their union.
            let wanted: Vec<String> = match &l.group {
                Some(g) => groups.iter().filter(|x| *x == g).cloned().collect(),
                None => groups.iter().cloned().collect(),
            };
            let mut all = Vec::new();
            for g in wanted {
                all.extend(state.store.list_hosts(&filter(Some(g))).await?);
            }
            all.sort_by_key(|h| h.id);
            all.truncate(batch as usize);
            all
        }
    })
}

/// A page of hosts in `scope`, by id, with their open findings counted in one query.
pub(crate) async fn list_hosts_in(
    state: &AppState,
    scope: &Scope,
    l: &HostListing,
) -> Result<ListedHosts, ApiError> {
    let limit = l.limit as usize;
    // One more than the page, to know whether another page follows; larger batches when a
    // filter the store cannot apply (reboot required, in the facts) thins them out.
    let batch = if l.reboot_required.is_some() {
        (l.limit + 1).max(500)
    } else {
        l.limit + 1
    };
    let mut hosts: Vec<Host> = Vec::new();
    let mut after = l.after;
    loop {
        let got = host_batch(state, scope, l, after, batch).await?;
        let ended = got.len() < batch as usize;
        after = got.last().map(|h| h.id);
        hosts.extend(got.into_iter().filter(|h| {
            l.reboot_required
                .is_none_or(|r| h.facts.reboot_required == r)
        }));
        if hosts.len() > limit || ended {
            break;
        }
    }
    let next_after = if hosts.len() > limit {
        hosts.truncate(limit);
        hosts.last().map(|h| h.id)
    } else {
        None
    };
    // Each host's row carries its open count.
    Ok(ListedHosts {
        hosts: hosts
            .into_iter()
            .map(|h| {
                let n = h.open_findings;
                (h, n)
            })
            .collect(),
        next_after,
    })
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
    let listing = HostListing {
        group: q.group,
        ring: q.ring,
        ecosystem: q.ecosystem,
        after: q.after,
        limit: page_size(q.limit)?,
        ..HostListing::default()
    };
    let listed = list_hosts_in(&state, &caller.scope(), &listing).await?;
    Ok(Json(HostPage {
        items: listed.hosts.iter().map(|(h, n)| summary(h, *n)).collect(),
        next_after: listed.next_after,
    }))
}

/// A host as its page and the API show it: the host, its inventory, its open findings and the
/// exceptions in force to mark them with.
pub(crate) struct HostRecord {
    pub host: Host,
    pub inventory: Option<StoredInventory>,
    pub open: Vec<StoredFinding>,
    pub in_force: InForce,
}

/// The host `id`, if `scope` admits it.
pub(crate) async fn host_record(
    state: &AppState,
    scope: &Scope,
    id: Uuid,
) -> Result<HostRecord, ApiError> {
    let host = scoped_host(state, scope, id).await?;
    let inventory = state.store.get_inventory(id).await?;
    let open = open_findings(state, id).await?;
    let in_force = InForce::load(state, clock::now()).await?;
    Ok(HostRecord {
        host,
        inventory,
        open,
        in_force,
    })
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
    let r = host_record(&state, &caller.scope(), id).await?;
    Ok(Json(HostDetail {
        host: summary(&r.host, r.open.len() as u64),
        standing_reason: r.host.state_reason.clone(),
        inventory_updated_at: r.inventory.as_ref().map(|i| i.updated_at),
        packages: r
            .inventory
            .map(|i| i.inventory.packages)
            .unwrap_or_default(),
        findings: r
            .open
            .iter()
            .map(|f| finding_view(f, &r.in_force))
            .collect(),
        facts: r.host.facts,
    }))
}

/// Which findings to list: the API's filters and the web pages' (vulnerability, group,
/// standing). The API and the findings page both list through [`list_findings_in`].
#[derive(Debug, Clone)]
pub(crate) struct FindingListing {
    pub host: Option<Uuid>,
    pub class: Option<Class>,
    pub due_before: Option<Timestamp>,
    pub state: FindingStateFilter,
    /// A vulnerability id (CVE or advisory id, as findings name it).
    pub vulnerability: Option<String>,
    /// Findings an advisory (by id) says the package is affected by.
    pub advisory: Option<String>,
    pub group: Option<String>,
    /// Open findings with this standing only.
    pub standing: Option<FindingStanding>,
    pub after: Option<i64>,
    pub limit: u32,
}

impl Default for FindingListing {
    fn default() -> FindingListing {
        FindingListing {
            host: None,
            class: None,
            due_before: None,
            state: FindingStateFilter::Open,
            vulnerability: None,
            advisory: None,
            group: None,
            standing: None,
            after: None,
            limit: DEFAULT_PAGE,
        }
    }
}

/// A page of findings, with the exceptions in force they were marked with.
pub(crate) struct ListedFindings {
    pub items: Vec<StoredFinding>,
    pub next_after: Option<i64>,
    pub in_force: InForce,
}

impl ListedFindings {
    pub(crate) fn view(&self, f: &StoredFinding) -> FindingView {
        finding_view(f, &self.in_force)
    }
}

/// The ids of the hosts of `groups`.
async fn hosts_of(state: &AppState, groups: &[String]) -> Result<HashSet<Uuid>, ApiError> {
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
    Ok(ids)
}

/// The hosts `scope` and a group filter admit; `None` for all.
pub(crate) async fn admitted_hosts(
    state: &AppState,
    scope: &Scope,
    group: Option<&String>,
) -> Result<Option<HashSet<Uuid>>, ApiError> {
    Ok(match (scope, group) {
        (Scope::All, None) => None,
        (Scope::All, Some(g)) => Some(hosts_of(state, std::slice::from_ref(g)).await?),
        (Scope::Groups(groups), None) => {
            let groups: Vec<String> = groups.iter().cloned().collect();
            Some(hosts_of(state, &groups).await?)
        }
        (Scope::Groups(groups), Some(g)) => {
            let groups: Vec<String> = groups.iter().filter(|x| *x == g).cloned().collect();
            Some(hosts_of(state, &groups).await?)
        }
    })
}

/// A page of findings in `scope`, by id.
pub(crate) async fn list_findings_in(
    state: &AppState,
    scope: &Scope,
    l: &FindingListing,
) -> Result<ListedFindings, ApiError> {
    let limit = l.limit;
    // The exceptions in force, once per request: each finding is matched in memory.
    let in_force = InForce::load(state, clock::now()).await?;
    let (state_filter, excepted) = match l.state {
        FindingStateFilter::Open => (FindingState::Open, false),
        FindingStateFilter::Closed => (FindingState::Closed, false),
        // Open findings an exception in force covers: only the hosts such exceptions name
        // are read.
        FindingStateFilter::Excepted => (FindingState::Open, true),
    };
    // The hosts a provider (or the group filter) admits; `None` for all.
    let allowed = admitted_hosts(state, scope, l.group.as_ref()).await?;
    let empty = || ListedFindings {
        items: Vec::new(),
        next_after: None,
        in_force: InForce::empty(),
    };
    if let (Some(host), Some(ids)) = (l.host, &allowed)
        && !ids.contains(&host)
    {
        return Ok(empty());
    }
    let admits = |f: &StoredFinding| {
        allowed.as_ref().is_none_or(|ids| ids.contains(&f.host))
            && l.standing
                .is_none_or(|s| finding_view_standing(f, &in_force) == Some(s))
            && l.advisory
                .as_ref()
                .is_none_or(|a| f.finding.advisories.contains(a))
    };
    if excepted {
        let mut items: Vec<StoredFinding> = Vec::new();
        for host in in_force.hosts() {
            if l.host.is_some_and(|h| h != host)
                || allowed.as_ref().is_some_and(|ids| !ids.contains(&host))
            {
                continue;
            }
            let mut after = l.after;
            // Each host's covered findings, a batch at a time, until `limit + 1` are found.
            let mut found = 0usize;
            loop {
                let batch = state
                    .store
                    .list_findings(&FindingFilter {
                        host: Some(host),
                        state: Some(FindingState::Open),
                        class: l.class,
                        due_before: l.due_before,
                        vulnerability: l.vulnerability.clone(),
                        after_id: after,
                        limit: Some(MAX_PAGE),
                    })
                    .await?;
                let ended = batch.len() < MAX_PAGE as usize;
                after = batch.last().map(|f| f.id);
                for f in batch {
                    if in_force.covering(&f).is_some() && admits(&f) {
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
        return Ok(ListedFindings {
            items,
            next_after,
            in_force,
        });
    }
    // Filters the store cannot apply (a provider's or a group's hosts, the standing, the
    // advisory) thin the batches out: larger batches then.
    let batch_size = if allowed.is_some() || l.standing.is_some() || l.advisory.is_some() {
        (limit + 1).max(MAX_PAGE)
    } else {
        limit + 1
    };
    let mut items: Vec<StoredFinding> = Vec::new();
    let mut after = l.after;
    loop {
        let batch = state
            .store
            .list_findings(&FindingFilter {
                host: l.host,
                state: Some(state_filter),
                class: l.class,
                due_before: l.due_before,
                vulnerability: l.vulnerability.clone(),
                after_id: after,
                limit: Some(batch_size),
            })
            .await?;
        let ended = batch.len() < batch_size as usize;
        after = batch.last().map(|f| f.id);
        items.extend(batch.into_iter().filter(|f| admits(f)));
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
    Ok(ListedFindings {
        items,
        next_after,
        in_force,
    })
}

fn finding_view_standing(f: &StoredFinding, in_force: &InForce) -> Option<FindingStanding> {
    in_force.mark(f).0
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
    let listing = FindingListing {
        host: q.host,
        class: q.criticality.map(class),
        due_before: q.due_before,
        state: q.state.unwrap_or(FindingStateFilter::Open),
        after: q.after,
        limit: page_size(q.limit)?,
        ..FindingListing::default()
    };
    let listed = list_findings_in(&state, &caller.scope(), &listing).await?;
    Ok(Json(FindingPage {
        items: listed.items.iter().map(|f| listed.view(f)).collect(),
        next_after: listed.next_after,
    }))
}

/// The advisory `id`, whole, from the store (the matcher's index keeps only what matching
/// needs of it).
pub(crate) async fn advisory(state: &AppState, id: &str) -> Result<Advisory, ApiError> {
    if id.len() > MAX_ID {
        return Err(ApiError::NotFound);
    }
    state
        .store
        .advisories_by_ids(&[id.to_owned()])
        .await?
        .into_iter()
        .next()
        .ok_or(ApiError::NotFound)
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
    Ok(Json(AdvisoryView {
        advisory: advisory(&state, &id).await?,
    }))
}
