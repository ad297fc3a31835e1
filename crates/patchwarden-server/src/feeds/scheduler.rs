//! The feed scheduler: one task per server that, every `feeds.tick_secs` (or when an operator
//! asks for a sync), rebuilds the matcher when the store's advisory generation moved, and —
//! only on the server that holds the store's `feeds` lease — fetches the sources that are due
//! and warns once about each source that became stale.
//!
//! **Which server fetches**: a lease row (`FeedStore::try_lease`), not a PostgreSQL advisory
//! lock. A session advisory lock belongs to one pooled connection, which the pool may recycle
//! or lose without the server noticing; a row with a holder and an expiry works the same on
//! SQLite and PostgreSQL, is renewed before each source, and passes to another server when its
//! holder stops renewing it (a crash, a network partition) once it expires.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use patchwarden_core::audit::Actor;

use super::{rebuild_matcher, sync_source};
use crate::clock;
use crate::state::AppState;

/// The lease's name in the store.
pub const LEASE: &str = "feeds";

/// How long the lease is taken for: longer than one fetch may take, so that the holder keeps
/// it while it works, and it passes on within that long after the holder stops.
fn lease_for(state: &AppState) -> SignedDuration {
    SignedDuration::from_secs(
        i64::from(state.feeds.config.fetch_timeout_secs)
            + 2 * i64::from(state.feeds.config.tick_secs),
    )
}

/// Runs the scheduler until the task is aborted.
pub async fn run(state: Arc<AppState>) {
    let tick = Duration::from_secs(u64::from(state.feeds.config.tick_secs));
    let mut stale_warned: HashSet<String> = HashSet::new();
    loop {
        tick_once(&state, clock::now(), &mut stale_warned).await;
        tokio::select! {
            _ = tokio::time::sleep(tick) => {}
            _ = state.feeds.wake.notified() => {}
        }
    }
}

/// One round: the generation check on every server, the fetches on the lease holder.
/// Returns whether this server held the lease.
pub async fn tick_once(
    state: &AppState,
    now: Timestamp,
    stale_warned: &mut HashSet<String>,
) -> bool {
    match state.store.advisory_generation().await {
        Ok(g) if g != state.feeds.built_generation() => {
            if let Err(e) = rebuild_matcher(state).await {
                tracing::warn!(error = %e, "rebuilding the matcher failed");
            }
        }
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "reading the advisory generation failed"),
    }
    let until = now.checked_add(lease_for(state)).unwrap_or(now);
    match state
        .store
        .try_lease(LEASE, &state.feeds.holder, until, now)
        .await
    {
        Ok(true) => {}
        Ok(false) => return false,
        Err(e) => {
            tracing::warn!(error = %e, "taking the feed lease failed");
            return false;
        }
    }
    let sources = match state.store.feed_sources().await {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(error = %e, "listing feed sources failed");
            return true;
        }
    };
    for source in &sources {
        let name = &source.spec.name;
        if source.freshness(now).is_stale() {
            if stale_warned.insert(name.clone()) {
                tracing::warn!(
                    source = %name,
                    last_updated = ?source.last_updated_at,
                    "feed is stale: no update within its expected period"
                );
            }
        } else {
            stale_warned.remove(name);
        }
        if !source.is_due(now) {
            continue;
        }
        // Renewed before each source, so a long run of fetches keeps the lease.
        let now = clock::now().max(now);
        let until = now.checked_add(lease_for(state)).unwrap_or(now);
        if !matches!(
            state
                .store
                .try_lease(LEASE, &state.feeds.holder, until, now)
                .await,
            Ok(true)
        ) {
            return false;
        }
        match sync_source(state, name, Actor::System("feeds".into()), now).await {
            Ok(synced) => tracing::info!(
                source = %name, outcome = synced.run.run.outcome.as_str(), hosts = synced.hosts,
                "feed synced"
            ),
            Err(e) => tracing::warn!(source = %name, error = %e, "feed sync failed"),
        }
    }
    true
}
