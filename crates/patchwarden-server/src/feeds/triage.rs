//! The triage queue on the server: a new advisory that affects the fleet enters it when its
//! first finding opens, with its review due four hours later (`patchwarden_core::triage`); an
//! operator's classification becomes a manual override that the matcher applies to every
//! finding of the vulnerability, which are matched again at once.

use std::collections::{BTreeMap, HashSet};

use jiff::{SignedDuration, Timestamp};
use patchwarden_core::audit::{Actor, AuditEntry};
use patchwarden_core::policy::Class;
use patchwarden_core::triage::{classification_override, is_new, review_due};
use patchwarden_store::triage::{NewTriageItem, TriageDecision, TriageItem};
use patchwarden_store::{CurrentFinding, FindingFilter, FindingState, Host};
use uuid::Uuid;

use super::{FeedsError, rebuild_matcher};
use crate::error::ApiError;
use crate::findings::{Touched, refresh_host};
use crate::state::AppState;

/// Puts the vulnerabilities of `fresh` that were not open on the host before (`open_before`)
/// and are new (published within the configured window) in the queue, arriving `now`. Those
/// already queued (from another host) keep their first arrival.
pub(crate) async fn enqueue_opened(
    state: &AppState,
    host: &Host,
    open_before: &HashSet<String>,
    fresh: &[CurrentFinding],
    now: Timestamp,
) -> Result<Vec<TriageItem>, ApiError> {
    let window = SignedDuration::from_hours(
        i64::from(state.feeds.config.triage_new_within_days).saturating_mul(24),
    );
    let mut items: BTreeMap<&str, NewTriageItem> = BTreeMap::new();
    let matcher = state.matcher();
    for f in fresh {
        let f = &f.finding;
        if open_before.contains(&f.vulnerability) || !is_new(f.published_at, now, window) {
            continue;
        }
        let item = items
            .entry(f.vulnerability.as_str())
            .or_insert_with(|| NewTriageItem {
                vulnerability: f.vulnerability.clone(),
                advisories: Vec::new(),
                summary: matcher
                    .index
                    .vulnerability_sources(&f.vulnerability)
                    .find_map(|a| a.summary().map(str::to_owned))
                    .map(|mut s| {
                        patchwarden_store::feed::truncate(
                            &mut s,
                            patchwarden_store::triage::MAX_SUMMARY,
                        );
                        s
                    }),
                arrived_at: now,
                due_at: review_due(now),
            });
        for a in &f.advisories {
            if item.advisories.len() < 64 && !item.advisories.contains(a) {
                item.advisories.push(a.clone());
            }
        }
    }
    if items.is_empty() {
        return Ok(Vec::new());
    }
    let items: Vec<NewTriageItem> = items.into_values().collect();
    let audit = AuditEntry::new(
        now,
        Actor::System("triage".into()),
        "triage.enqueue",
        format!("host:{}", host.id),
    );
    let added = state.store.enqueue_triage(&items, now, audit).await?;
    for item in &added {
        tracing::info!(
            vulnerability = %item.vulnerability, due_at = %item.due_at,
            "new advisory affects the fleet: review due"
        );
    }
    Ok(added)
}

/// Records an operator's classification of a queued vulnerability, puts it in force as a
/// manual override and matches again every host with an open finding of it. Returns the item
/// and how many hosts were matched again.
pub async fn classify(
    state: &AppState,
    id: i64,
    class: Class,
    reason: &str,
    actor: Actor,
    now: Timestamp,
) -> Result<(TriageItem, usize), FeedsError> {
    let item = state
        .store
        .get_triage(id)
        .await?
        .ok_or_else(|| FeedsError::Invalid(format!("no triage item {id}")))?;
    // The policy's own check: an override needs a reason.
    classification_override(&item.vulnerability, class, reason)
        .map_err(|e| FeedsError::Invalid(e.to_string()))?;
    let decision = TriageDecision {
        class,
        reason: reason.trim().to_owned(),
        decided_by: actor.to_string(),
        decided_at: now,
    };
    let audit = AuditEntry::new(
        now,
        actor,
        "triage.classify",
        format!("triage:{}", item.vulnerability),
    );
    let item = state
        .store
        .classify_triage(id, decision, now, audit)
        .await?;
    rebuild_matcher(state).await?;
    let hosts = rematch_vulnerability(state, &item.vulnerability, now).await?;
    Ok((item, hosts))
}

/// Matches again, on every host with an open finding of `vulnerability`, the packages of
/// those findings.
async fn rematch_vulnerability(
    state: &AppState,
    vulnerability: &str,
    now: Timestamp,
) -> Result<usize, FeedsError> {
    let open = state
        .store
        .list_findings(&FindingFilter {
            vulnerability: Some(vulnerability.to_owned()),
            state: Some(FindingState::Open),
            ..FindingFilter::default()
        })
        .await?;
    let mut by_host: BTreeMap<Uuid, HashSet<(String, String)>> = BTreeMap::new();
    for f in open {
        by_host.entry(f.host).or_default().insert((
            f.finding.package.clone(),
            f.finding.arch.clone().unwrap_or_default(),
        ));
    }
    let mut synced = 0;
    for (host_id, identities) in by_host {
        let Some(host) = state.store.get_host(host_id).await? else {
            continue;
        };
        let Some(stored) = state.store.get_inventory(host_id).await? else {
            continue;
        };
        refresh_host(
            state,
            &host,
            &stored.inventory,
            &Touched::Identities(identities),
            Actor::System("triage".into()),
            now,
        )
        .await?;
        synced += 1;
    }
    Ok(synced)
}
