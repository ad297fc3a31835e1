//! Conformance: inventories and advisories.

use std::sync::Arc;

use patchwarden_core::advisory::{Advisory, FeedKind, Source};
use patchwarden_core::inventory::PackagesDigest;
use uuid::Uuid;

use super::fixtures::{at, debian_inventories, enrolled, entry};
use super::{TestDatabase, open};
use crate::StoreError;

pub async fn inventory_replacement_round_trips_with_its_digest(db: Arc<dyn TestDatabase>) {
    let store = open(&db).await;
    let host = enrolled(&store, "web", "web-1").await;
    assert_eq!(store.get_inventory(host.id).await.unwrap(), None);
    let (before, after) = debian_inventories(700);

    let digest = store
        .replace_inventory(
            host.id,
            &before,
            at(10),
            entry(at(10), "inventory.replace", "h"),
        )
        .await
        .unwrap();
    assert_eq!(digest, PackagesDigest::of(&before.packages));
    let stored = store.get_inventory(host.id).await.unwrap().unwrap();
    assert_eq!(stored.inventory, before);
    assert_eq!(stored.digest, digest);
    assert_eq!(stored.updated_at, at(10));
    assert_eq!(
        store
            .get_host(host.id)
            .await
            .unwrap()
            .unwrap()
            .inventory_digest,
        Some(digest)
    );

    let digest2 = store
        .replace_inventory(
            host.id,
            &after,
            at(20),
            entry(at(20), "inventory.replace", "h"),
        )
        .await
        .unwrap();
    assert_ne!(digest, digest2);
    let stored = store.get_inventory(host.id).await.unwrap().unwrap();
    assert_eq!(stored.inventory, after);
    assert_eq!(
        store
            .get_host(host.id)
            .await
            .unwrap()
            .unwrap()
            .inventory_digest,
        Some(digest2)
    );

    let e = store
        .replace_inventory(
            Uuid::new_v4(),
            &after,
            at(30),
            entry(at(30), "inventory.replace", "h"),
        )
        .await
        .unwrap_err();
    assert!(matches!(e, StoreError::NotFound { .. }), "{e}");
}

pub async fn inventory_replacement_is_atomic_for_concurrent_readers(db: Arc<dyn TestDatabase>) {
    let store = open(&db).await;
    let reader_store = open(&db).await;
    let host = enrolled(&store, "web", "web-1").await;
    let (before, after) = debian_inventories(700);
    let digests = [
        PackagesDigest::of(&before.packages),
        PackagesDigest::of(&after.packages),
    ];
    store
        .replace_inventory(
            host.id,
            &before,
            at(10),
            entry(at(10), "inventory.replace", "h"),
        )
        .await
        .unwrap();

    let writer = {
        let store = store.clone();
        let id = host.id;
        tokio::spawn(async move {
            for i in 0..21 {
                let inv = if i % 2 == 0 { &after } else { &before };
                let now = at(20 + i);
                store
                    .replace_inventory(id, inv, now, entry(now, "inventory.replace", "h"))
                    .await
                    .unwrap();
            }
        })
    };
    let mut reads = 0;
    while !writer.is_finished() || reads < 5 {
        let s = reader_store.get_inventory(host.id).await.unwrap().unwrap();
        // Whatever moment the read lands on, the document is whole and its digest is its own.
        assert!(digests.contains(&s.digest));
        assert_eq!(PackagesDigest::of(&s.inventory.packages), s.digest);
        reads += 1;
    }
    writer.await.unwrap();
    let last = store.get_inventory(host.id).await.unwrap().unwrap();
    assert_eq!(last.digest, digests[1]);
}

/// `advisories` imported at `at(secs)`, as a feed import stores them.
async fn upsert(
    store: &Arc<dyn crate::Store>,
    advisories: Vec<Advisory>,
    secs: i64,
) -> crate::AdvisoryUpsert {
    store
        .upsert_advisories(
            advisories,
            at(secs),
            entry(at(secs), "advisory.import", "feed:osv"),
        )
        .await
        .unwrap()
}

fn advisory(id: &str, summary: &str) -> Advisory {
    let mut a = Advisory::new(
        id,
        Source {
            feed: FeedKind::Osv,
            location: format!("osv/{id}.json"),
            document: None,
        },
    );
    a.summary = Some(summary.into());
    a.aliases = vec![format!("CVE-{}", id.len())];
    a.published = Some(at(0));
    a
}

pub async fn advisories_upsert_by_id_and_count(db: Arc<dyn TestDatabase>) {
    let store = open(&db).await;
    assert_eq!(store.advisory_count().await.unwrap(), 0);
    let first = vec![
        advisory("DSA-5678-1", "openssl"),
        advisory("DSA-5679-1", "curl"),
    ];
    let r = upsert(&store, first.clone(), 1).await;
    assert_eq!((r.inserted, r.updated, r.unchanged), (2, 0, 0));
    assert_eq!(
        r.changed,
        vec!["DSA-5678-1".to_owned(), "DSA-5679-1".to_owned()]
    );
    let head = store.audit_head().await.unwrap();

    // The same import again changes nothing and appends nothing.
    let r = upsert(&store, first.clone(), 2).await;
    assert_eq!((r.inserted, r.updated, r.unchanged), (0, 0, 2));
    assert!(r.changed.is_empty());
    assert_eq!(store.audit_head().await.unwrap(), head);

    let second = vec![
        advisory("DSA-5679-1", "curl, revised"),
        advisory("CVE-2024-1", "x"),
    ];
    let r = upsert(&store, second.clone(), 3).await;
    assert_eq!((r.inserted, r.updated, r.unchanged), (1, 1, 0));
    assert_eq!(store.advisory_count().await.unwrap(), 3);
    let all = store.advisories().await.unwrap();
    let ids: Vec<&str> = all.iter().map(|a| a.id.as_str()).collect();
    assert_eq!(ids, vec!["CVE-2024-1", "DSA-5678-1", "DSA-5679-1"]);
    assert_eq!(all.last(), second.first());
}

/// A feed-sized set read back whole: PostgreSQL streams the rows and decodes each as it
/// arrives, so the read spans many network reads; every advisory comes back once, equal to
/// what was stored, in id order.
pub async fn many_advisories_are_read_back_whole_in_id_order(db: Arc<dyn TestDatabase>) {
    let store = open(&db).await;
    let mut stored: Vec<Advisory> = (0..2_000)
        .rev()
        .map(|i| {
            let mut a = advisory(&format!("ALSA-2026:{i:05}"), &format!("update {i}"));
            a.details = Some(format!("{i} ").repeat(300));
            a
        })
        .collect();
    let r = upsert(&store, stored.clone(), 1).await;
    assert_eq!(r.inserted, 2_000);
    stored.sort_by(|a, b| a.id.cmp(&b.id));
    let read = store.advisories().await.unwrap();
    assert_eq!(read.len(), stored.len());
    assert!(
        read == stored,
        "advisories read back differ from those stored"
    );
}

pub async fn advisories_are_read_by_ids(db: Arc<dyn TestDatabase>) {
    let store = open(&db).await;
    let stored = vec![
        advisory("DSA-5678-1", "openssl"),
        advisory("DSA-5679-1", "curl"),
        advisory("CVE-2024-1", "x"),
    ];
    upsert(&store, stored.clone(), 1).await;
    // By id, whole, each once; unknown ids are left out; no ids, no advisories.
    let ids = ["DSA-5679-1", "nope", "CVE-2024-1", "DSA-5679-1"].map(String::from);
    let read = store.advisories_by_ids(&ids).await.unwrap();
    assert_eq!(read, vec![stored[2].clone(), stored[1].clone()]);
    assert!(store.advisories_by_ids(&[]).await.unwrap().is_empty());
}
