//! The triage queue on the server: a new advisory that affects the fleet enters it when its
//! first finding opens, with its review due four hours later (`patchwarden_core::triage`); an
//! operator's classification becomes a manual override that the matcher applies to every
//! finding of the vulnerability, which are matched again at once.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Mutex, PoisonError};

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

/// How long this server trusts what it remembers of the queue ([`Queued`]).
const REMEMBER_FOR: SignedDuration = SignedDuration::from_mins(10);
/// How many vulnerabilities it remembers at most (some 3 MiB of names).
const REMEMBER_AT_MOST: usize = 50_000;

/// The vulnerabilities this server saw the triage queue hold, so that a fleet's first
/// inventories — each offering the queue every recent vulnerability it has, nearly all of them
/// queued by an earlier host — ask the store only about those it has not seen. Items leave the
/// queue never (a decision is recorded on the item), so what was queued stays queued; the
/// memory is still forgotten every [`REMEMBER_FOR`] (and when it holds
/// [`REMEMBER_AT_MOST`]), so that a database restored under a running server has its queue
/// filled again within minutes rather than at the server's next start.
#[derive(Debug, Default)]
pub struct Queued {
    inner: Mutex<Remembered>,
}

#[derive(Debug, Default)]
struct Remembered {
    since: Option<Timestamp>,
    names: HashSet<String>,
}

impl Queued {
    /// Which of `vulnerabilities` are not known to be queued at `now`.
    fn unknown<'a>(
        &self,
        vulnerabilities: impl Iterator<Item = &'a str>,
        now: Timestamp,
    ) -> Vec<bool> {
        let mut r = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        if r.since
            .is_some_and(|since| now.duration_since(since) >= REMEMBER_FOR || now < since)
        {
            *r = Remembered::default();
        }
        vulnerabilities.map(|v| !r.names.contains(v)).collect()
    }

    /// Notes that `vulnerabilities` are in the queue (the store said so at `now`).
    fn remember<'a>(&self, vulnerabilities: impl Iterator<Item = &'a str>, now: Timestamp) {
        let mut r = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        if r.since.is_none() {
            r.since = Some(now);
        }
        for v in vulnerabilities {
            if r.names.len() >= REMEMBER_AT_MOST {
                *r = Remembered {
                    since: Some(now),
                    names: HashSet::new(),
                };
            }
            if !r.names.contains(v) {
                r.names.insert(v.to_owned());
            }
        }
    }
}

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
    let unknown = state
        .feeds
        .queued
        .unknown(fresh.iter().map(|f| f.finding.vulnerability.as_str()), now);
    for (f, unknown) in fresh.iter().zip(unknown) {
        let f = &f.finding;
        if !unknown
            || open_before.contains(&f.vulnerability)
            || !is_new(f.published_at, now, window)
        {
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
    // Every item offered is queued now: added, or held already.
    state
        .feeds
        .queued
        .remember(items.iter().map(|i| i.vulnerability.as_str()), now);
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

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn the_queue_is_remembered_for_ten_minutes_then_asked_again() {
        let q = Queued::default();
        let start = t("2026-12-01T08:00:00Z");
        let names = ["CVE-1", "CVE-2", "CVE-3"];
        assert_eq!(q.unknown(names.into_iter(), start), [true, true, true]);
        q.remember(["CVE-1", "CVE-3"].into_iter(), start);
        let later = start + SignedDuration::from_mins(9);
        assert_eq!(q.unknown(names.into_iter(), later), [false, true, false]);
        // Ten minutes after the memory began, it is forgotten: the store is asked again.
        let expired = start + REMEMBER_FOR;
        assert_eq!(q.unknown(names.into_iter(), expired), [true, true, true]);
        // And a clock that went back does not keep a memory alive.
        q.remember(["CVE-2"].into_iter(), expired);
        assert_eq!(q.unknown(["CVE-2"].into_iter(), expired), [false]);
        assert_eq!(q.unknown(["CVE-2"].into_iter(), start), [true]);
    }

    #[test]
    fn the_memory_is_bounded() {
        let q = Queued::default();
        let now = t("2026-12-01T08:00:00Z");
        let names: Vec<String> = (0..REMEMBER_AT_MOST + 10)
            .map(|i| format!("CVE-2026-{i}"))
            .collect();
        q.remember(names.iter().map(String::as_str), now);
        let held = q.inner.lock().unwrap().names.len();
        assert!(held <= REMEMBER_AT_MOST, "{held}");
        // The last ones offered are remembered, the first ones asked about again.
        assert_eq!(
            q.unknown(
                [names[0].as_str(), names[names.len() - 1].as_str()].into_iter(),
                now
            ),
            [true, false]
        );
    }
}
