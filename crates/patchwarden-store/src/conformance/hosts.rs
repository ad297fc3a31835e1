//! Conformance: hosts, check-ins, placement and replay nonces.

use std::collections::BTreeMap;
use std::sync::Arc;

use uuid::Uuid;

use super::fixtures::{at, enrolled, entry, facts, new_host, new_token, t0};
use super::{TestDatabase, open};
use crate::{HostFilter, HostPlacement, SecretHash, StoreError};

pub async fn hosts_round_trip_and_filter(db: Arc<dyn TestDatabase>) {
    let store = open(&db).await;
    let web = enrolled(&store, "web", "web-1").await;
    let db_host = enrolled(&store, "db", "db-1").await;

    let got = store.get_host(web.id).await.unwrap().unwrap();
    assert_eq!(got, web);
    assert_eq!(got.facts.hostname, "web-1");
    assert_eq!(got.ecosystem.as_deref(), Some("Debian:12"));
    assert_eq!(got.machine_id, got.facts.machine_id);
    assert_eq!(got.last_seen, Some(at(1)));
    assert_eq!(got.inventory_digest, None);
    assert!(got.public_key.starts_with("ed25519:"));
    assert_eq!(store.get_host(Uuid::new_v4()).await.unwrap(), None);

    let by_group = store
        .list_hosts(&HostFilter {
            group: Some("db".into()),
            ..HostFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(by_group, vec![db_host.clone()]);

    let mut placement = HostPlacement {
        group: "db".into(),
        ring: Some("canary".into()),
        labels: BTreeMap::from([("owner".into(), "team-a".into())]),
    };
    let moved = store
        .set_host_placement(
            web.id,
            placement.clone(),
            at(5),
            entry(at(5), "host.place", "h"),
        )
        .await
        .unwrap();
    assert_eq!(
        (moved.group.as_str(), moved.ring.as_deref()),
        ("db", Some("canary"))
    );
    assert_eq!(moved.labels, placement.labels);
    placement.ring = None;
    let e = store
        .set_host_placement(
            Uuid::new_v4(),
            placement,
            at(5),
            entry(at(5), "host.place", "h"),
        )
        .await
        .unwrap_err();
    assert!(matches!(e, StoreError::NotFound { .. }), "{e}");

    let ring = store
        .list_hosts(&HostFilter {
            group: Some("db".into()),
            ring: Some("canary".into()),
            ..HostFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(ring.iter().map(|h| h.id).collect::<Vec<_>>(), vec![web.id]);

    let debian = store
        .list_hosts(&HostFilter {
            ecosystem: Some("Debian:12".into()),
            ..HostFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(debian.len(), 2);
    let none = store
        .list_hosts(&HostFilter {
            ecosystem: Some("Alpine:v3.19".into()),
            ..HostFilter::default()
        })
        .await
        .unwrap();
    assert!(none.is_empty());

    // One host checks in later: the filters by last check-in tell the two apart.
    store
        .record_check_in(
            db_host.id,
            db_host.facts.clone(),
            at(100),
            entry(at(100), "c", "h"),
        )
        .await
        .unwrap();
    let stale = store
        .list_hosts(&HostFilter {
            last_seen_before: Some(at(50)),
            ..HostFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(stale.iter().map(|h| h.id).collect::<Vec<_>>(), vec![web.id]);
    let fresh = store
        .list_hosts(&HostFilter {
            last_seen_since: Some(at(50)),
            ..HostFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(
        fresh.iter().map(|h| h.id).collect::<Vec<_>>(),
        vec![db_host.id]
    );

    // Paging by id visits every host once.
    let mut ids = vec![web.id, db_host.id];
    ids.sort();
    let page1 = store
        .list_hosts(&HostFilter {
            limit: Some(1),
            ..HostFilter::default()
        })
        .await
        .unwrap();
    let page2 = store
        .list_hosts(&HostFilter {
            limit: Some(1),
            after: page1.first().map(|h| h.id),
            ..HostFilter::default()
        })
        .await
        .unwrap();
    let paged: Vec<Uuid> = page1.iter().chain(&page2).map(|h| h.id).collect();
    assert_eq!(paged, ids);
}

pub async fn a_cloned_host_is_found_by_its_machine_id(db: Arc<dyn TestDatabase>) {
    let store = open(&db).await;
    store
        .create_enrollment_token(
            new_token("s", "web", 3),
            t0(),
            entry(t0(), "token.create", "t"),
        )
        .await
        .unwrap();
    let machine = "4c4c4544004a3510804cb2c04f4e4b32";
    let original = new_host("vm", machine);
    let clone = new_host("vm-clone", machine);
    let other = new_host("other", "ffffffffffffffffffffffffffffffff");
    let mut ids = Vec::new();
    for (i, h) in [original, clone, other].into_iter().enumerate() {
        ids.push(h.id);
        let now = at(i64::try_from(i).unwrap_or(0) + 1);
        store
            .enroll_host(SecretHash::of(b"s"), h, now, entry(now, "host.enroll", "h"))
            .await
            .unwrap();
    }
    let found = store.find_hosts_by_machine_id(machine).await.unwrap();
    assert_eq!(
        found.iter().map(|h| h.id).collect::<Vec<_>>(),
        ids[..2].to_vec()
    );
    assert!(
        store
            .find_hosts_by_machine_id("nothing")
            .await
            .unwrap()
            .is_empty()
    );
}

pub async fn check_in_records_facts_and_audits_only_changed_facts(db: Arc<dyn TestDatabase>) {
    let store = open(&db).await;
    let host = enrolled(&store, "web", "web-1").await;
    let head = store.audit_head().await.unwrap().unwrap();

    let same = store
        .record_check_in(
            host.id,
            host.facts.clone(),
            at(60),
            entry(at(60), "host.facts", "h"),
        )
        .await
        .unwrap();
    assert_eq!(same.last_seen, Some(at(60)));
    assert_eq!(store.audit_head().await.unwrap().unwrap(), head);

    let mut changed = facts("web-1", "new-machine-id");
    changed.kernel = Some("6.1.0-21-amd64".into());
    changed.reboot_required = true;
    let after = store
        .record_check_in(
            host.id,
            changed.clone(),
            at(120),
            entry(at(120), "host.facts", "h"),
        )
        .await
        .unwrap();
    assert_eq!(after.facts, changed);
    assert_eq!(after.machine_id.as_deref(), Some("new-machine-id"));
    assert_eq!(after.last_seen, Some(at(120)));
    let new_head = store.audit_head().await.unwrap().unwrap();
    assert_eq!(new_head.seq, head.seq + 1);
    let events = store.audit_events(head.seq, 10).await.unwrap();
    assert_eq!(
        events.first().map(|e| e.entry.action.as_str()),
        Some("host.facts")
    );

    let e = store
        .record_check_in(
            Uuid::new_v4(),
            changed,
            at(130),
            entry(at(130), "host.facts", "h"),
        )
        .await
        .unwrap_err();
    assert!(matches!(e, StoreError::NotFound { .. }), "{e}");
}

pub async fn a_replayed_nonce_is_refused_and_expired_nonces_are_purged(db: Arc<dyn TestDatabase>) {
    let store = open(&db).await;
    let a = enrolled(&store, "web", "a").await;
    let b = enrolled(&store, "web", "b").await;
    store
        .record_nonce(a.id, "n-1", at(300), at(10))
        .await
        .unwrap();
    let e = store
        .record_nonce(a.id, "n-1", at(400), at(20))
        .await
        .unwrap_err();
    assert!(matches!(e, StoreError::Replay { .. }), "{e}");
    // Nonces are per host: another host may use the same one.
    store
        .record_nonce(b.id, "n-1", at(300), at(20))
        .await
        .unwrap();
    store
        .record_nonce(a.id, "n-2", at(100), at(20))
        .await
        .unwrap();
    // Concurrent requests with the same nonce: exactly one is accepted.
    let mut racers = Vec::new();
    for _ in 0..4 {
        let store = store.clone();
        let id = a.id;
        racers.push(tokio::spawn(async move {
            store.record_nonce(id, "n-race", at(300), at(30)).await
        }));
    }
    let mut accepted = 0;
    for r in racers {
        match r.await.unwrap() {
            Ok(()) => accepted += 1,
            Err(StoreError::Replay { .. }) => {}
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(accepted, 1);

    assert_eq!(store.purge_expired_nonces(at(200)).await.unwrap(), 1);
    // n-1 of host a is still held; n-2 was purged and may be used again.
    assert!(matches!(
        store.record_nonce(a.id, "n-1", at(500), at(210)).await,
        Err(StoreError::Replay { .. })
    ));
    store
        .record_nonce(a.id, "n-2", at(500), at(210))
        .await
        .unwrap();
    assert_eq!(store.purge_expired_nonces(at(1000)).await.unwrap(), 4);

    let e = store
        .record_nonce(a.id, "", at(500), at(210))
        .await
        .unwrap_err();
    assert!(matches!(e, StoreError::Invalid { .. }), "{e}");
    let e = store
        .record_nonce(a.id, &"n".repeat(129), at(500), at(210))
        .await
        .unwrap_err();
    assert!(matches!(e, StoreError::TooLong { .. }), "{e}");
    let e = store
        .record_nonce(Uuid::new_v4(), "n-3", at(500), at(210))
        .await
        .unwrap_err();
    assert!(matches!(e, StoreError::NotFound { .. }), "{e}");
}
