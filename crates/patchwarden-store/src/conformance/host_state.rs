//! Conformance: a host's standing (quarantined, retired, current for the first time) and its
//! check-in counter, both kept in the database so that a restarted server, and every server
//! sharing the database, sees the same ones.

use std::sync::Arc;

use patchwarden_core::audit::{Actor, AuditEntry, verify};
use serde_json::json;
use uuid::Uuid;

use super::fixtures::{at, audit_seq, enrolled, entry};
use super::{TestDatabase, open};
use crate::{HostState, HostStateChange, StoreError};

fn quarantine(reason: &str) -> HostStateChange {
    HostStateChange::Quarantine {
        reason: reason.into(),
    }
}

fn retire(reason: &str) -> HostStateChange {
    HostStateChange::Retire {
        reason: reason.into(),
    }
}

pub async fn host_state_changes_are_audited_once_and_retired_is_final(db: Arc<dyn TestDatabase>) {
    let store = open(&db).await;
    let host = enrolled(&store, "web", "web-1").await;
    assert_eq!(host.state, HostState::Active);
    assert_eq!(
        (host.state_reason.as_deref(), host.state_changed_at),
        (None, None)
    );
    assert_eq!((host.baseline_met_at, host.check_in_seq), (None, None));
    let object = format!("host:{}", host.id);
    let head = audit_seq(&store).await;

    // No change without its event: a refused entry leaves the host as it was.
    let refused = AuditEntry::new(at(5), Actor::System("t".into()), "", object.clone());
    let e = store
        .change_host_state(host.id, quarantine("x"), at(5), refused)
        .await
        .unwrap_err();
    assert!(matches!(e, StoreError::Invalid { .. }), "{e}");
    assert_eq!(store.get_host(host.id).await.unwrap().as_ref(), Some(&host));
    assert_eq!(audit_seq(&store).await, head);

    // Current for the first time: recorded once, with the time; the second time is nothing.
    let met = store
        .change_host_state(
            host.id,
            HostStateChange::BaselineMet,
            at(10),
            entry(at(10), "host.baseline_met", &object),
        )
        .await
        .unwrap();
    assert_eq!(met.baseline_met_at, Some(at(10)));
    assert_eq!(met.state, HostState::Active);
    let events = store.audit_events(head, 10).await.unwrap();
    assert_eq!(events.len(), 1);
    let event = &events[0].entry;
    assert_eq!(event.action, "host.baseline_met");
    assert_eq!(event.before, Some(json!({ "baseline_met_at": null })));
    assert_eq!(event.after, Some(json!({ "baseline_met_at": at(10) })));
    let again = store
        .change_host_state(
            host.id,
            HostStateChange::BaselineMet,
            at(20),
            entry(at(20), "host.baseline_met", &object),
        )
        .await
        .unwrap();
    assert_eq!(again, met);
    assert_eq!(audit_seq(&store).await, head + 1);

    // Quarantined with its reason; quarantining it again keeps the first reason and time.
    let q = store
        .change_host_state(
            host.id,
            quarantine("counter 5 after 5"),
            at(30),
            entry(at(30), "host.quarantine", &object),
        )
        .await
        .unwrap();
    assert_eq!(q.state, HostState::Quarantined);
    assert_eq!(q.state_reason.as_deref(), Some("counter 5 after 5"));
    assert_eq!(q.state_changed_at, Some(at(30)));
    assert_eq!(q.baseline_met_at, Some(at(10)));
    let event = store.audit_events(head + 1, 10).await.unwrap();
    assert_eq!(
        event.first().map(|e| (&e.entry.before, &e.entry.after)),
        Some((
            &Some(json!({ "state": "active", "reason": null })),
            &Some(json!({ "state": "quarantined", "reason": "counter 5 after 5" }))
        ))
    );
    let q2 = store
        .change_host_state(
            host.id,
            quarantine("another machine id"),
            at(35),
            entry(at(35), "host.quarantine", &object),
        )
        .await
        .unwrap();
    assert_eq!(q2, q);
    assert_eq!(audit_seq(&store).await, head + 2);

    // An operator retires the quarantined host; retired is final.
    let r = store
        .change_host_state(
            host.id,
            retire("retired by alice"),
            at(40),
            entry(at(40), "host.retire", &object),
        )
        .await
        .unwrap();
    assert_eq!(r.state, HostState::Retired);
    assert_eq!(r.state_reason.as_deref(), Some("retired by alice"));
    assert_eq!(r.state_changed_at, Some(at(40)));
    let r2 = store
        .change_host_state(
            host.id,
            retire("again"),
            at(45),
            entry(at(45), "host.retire", &object),
        )
        .await
        .unwrap();
    assert_eq!(r2, r);
    let e = store
        .change_host_state(
            host.id,
            quarantine("late"),
            at(50),
            entry(at(50), "host.quarantine", &object),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(
            e,
            StoreError::HostStateRefused {
                state: HostState::Retired,
                wanted: "quarantined",
                ..
            }
        ),
        "{e}"
    );
    assert_eq!(audit_seq(&store).await, head + 3);

    // An active host may be retired directly (a re-enrollment replaces it).
    let other = enrolled(&store, "web", "web-2").await;
    let retired = store
        .change_host_state(
            other.id,
            retire(&format!("replaced-by:{}", Uuid::new_v4())),
            at(60),
            entry(at(60), "host.retire", "host:other"),
        )
        .await
        .unwrap();
    assert_eq!(retired.state, HostState::Retired);

    // Refusals that change nothing: an unknown host, an empty or overlong reason.
    let e = store
        .change_host_state(
            Uuid::new_v4(),
            quarantine("x"),
            at(70),
            entry(at(70), "host.quarantine", "host:none"),
        )
        .await
        .unwrap_err();
    assert!(matches!(e, StoreError::NotFound { .. }), "{e}");
    let fresh = enrolled(&store, "web", "web-3").await;
    let head = audit_seq(&store).await;
    for (reason, too_long) in [(String::new(), false), ("r".repeat(1025), true)] {
        let e = store
            .change_host_state(
                fresh.id,
                quarantine(&reason),
                at(80),
                entry(at(80), "host.quarantine", "host:fresh"),
            )
            .await
            .unwrap_err();
        match (too_long, &e) {
            (true, StoreError::TooLong { .. }) | (false, StoreError::Invalid { .. }) => {}
            _ => panic!("reason of {} bytes: {e}", reason.len()),
        }
    }
    assert_eq!(store.get_host(fresh.id).await.unwrap(), Some(fresh));
    assert_eq!(audit_seq(&store).await, head);

    // A restarted server sees the same standing.
    drop(store);
    let store = open(&db).await;
    assert_eq!(store.get_host(host.id).await.unwrap(), Some(r));
    assert_eq!(store.get_host(other.id).await.unwrap(), Some(retired));
    let chain = store.audit_events(0, 1000).await.unwrap();
    assert!(verify(&chain).is_ok());
}

pub async fn the_check_in_counter_only_moves_forward_across_restarts_and_races(
    db: Arc<dyn TestDatabase>,
) {
    let store = open(&db).await;
    let host = enrolled(&store, "web", "web-1").await;
    let other = enrolled(&store, "web", "web-2").await;
    let head = audit_seq(&store).await;
    let refused = |e: StoreError, seq: u64, last: u64| match e {
        StoreError::CounterNotIncreased {
            host: h,
            seq: s,
            last: l,
        } if h == host.id && s == seq && l == last => {}
        e => panic!("counter {seq} after {last}: {e}"),
    };

    store.advance_check_in_counter(host.id, 1).await.unwrap();
    let got = store.get_host(host.id).await.unwrap().unwrap();
    assert_eq!(got.check_in_seq, Some(1));
    // The same counter again, or a lower one: the identity is used from two machines.
    for seq in [1, 0] {
        refused(
            store
                .advance_check_in_counter(host.id, seq)
                .await
                .unwrap_err(),
            seq,
            1,
        );
    }
    // Gaps are fine (an agent whose check-in failed before it reached the server).
    store.advance_check_in_counter(host.id, 5).await.unwrap();
    refused(
        store
            .advance_check_in_counter(host.id, 3)
            .await
            .unwrap_err(),
        3,
        5,
    );
    // Counters are per host.
    store.advance_check_in_counter(other.id, 1).await.unwrap();

    // A restarted server refuses what the first one accepted.
    drop(store);
    let store = open(&db).await;
    refused(
        store
            .advance_check_in_counter(host.id, 5)
            .await
            .unwrap_err(),
        5,
        5,
    );
    store.advance_check_in_counter(host.id, 6).await.unwrap();

    // Two machines racing with the same counter: exactly one is accepted.
    let mut racers = Vec::new();
    for _ in 0..8 {
        let store = store.clone();
        let id = host.id;
        racers.push(tokio::spawn(async move {
            store.advance_check_in_counter(id, 7).await
        }));
    }
    let mut accepted = 0;
    for r in racers {
        match r.await.unwrap() {
            Ok(()) => accepted += 1,
            Err(e) => refused(e, 7, 7),
        }
    }
    assert_eq!(accepted, 1);
    // Racing different counters never moves it backwards: the highest stays.
    let mut racers = Vec::new();
    for seq in 8..=15 {
        let store = store.clone();
        let id = host.id;
        racers.push(tokio::spawn(async move {
            store.advance_check_in_counter(id, seq).await
        }));
    }
    for r in racers {
        match r.await.unwrap() {
            Ok(()) | Err(StoreError::CounterNotIncreased { .. }) => {}
            Err(e) => panic!("{e}"),
        }
    }
    let got = store.get_host(host.id).await.unwrap().unwrap();
    assert_eq!(got.check_in_seq, Some(15));

    // Refusals of what cannot be stored or has no host.
    let e = store
        .advance_check_in_counter(host.id, u64::MAX)
        .await
        .unwrap_err();
    assert!(
        matches!(
            e,
            StoreError::Invalid {
                field: "check-in counter",
                ..
            }
        ),
        "{e}"
    );
    let e = store
        .advance_check_in_counter(Uuid::new_v4(), 1)
        .await
        .unwrap_err();
    assert!(matches!(e, StoreError::NotFound { .. }), "{e}");
    assert_eq!(
        store
            .get_host(host.id)
            .await
            .unwrap()
            .and_then(|h| h.check_in_seq),
        Some(15)
    );
    // Bookkeeping on every check-in, like nonces: not in the audit chain.
    assert_eq!(audit_seq(&store).await, head);
}
