//! Conformance: findings kept current.

use std::sync::Arc;

use patchwarden_core::inventory::{Inventory, Package};
use patchwarden_core::policy::Class;

use super::fixtures::{apply_at, at, audit_seq, debian_inventories, enrolled, entry, finding};
use super::{TestDatabase, open};
use crate::{
    Classification, CurrentFinding, FindingFilter, FindingState, FindingSync, StoredFinding,
};

fn classified(class: Class, due: i64) -> Classification {
    Classification {
        class: Some(class),
        due_at: Some(at(due)),
        policy: Some("seed-default".into()),
        rule: Some(format!("{class}-rule")),
    }
}

fn current(p: &Package, vuln: &str, fixed: Option<&Package>, c: Classification) -> CurrentFinding {
    CurrentFinding {
        body: None,
        finding: finding(p, vuln, fixed).into(),
        classification: c,
    }
}

/// A High finding on `before`'s first package, fixed by `after`'s.
fn high_on_first(before: &Inventory, after: &Inventory) -> Vec<CurrentFinding> {
    vec![current(
        pkg(&before.packages, 0),
        "CVE-2024-0001",
        Some(pkg(&after.packages, 0)),
        classified(Class::High, 1000),
    )]
}

fn pkg(packages: &[Package], i: usize) -> &Package {
    match packages.get(i) {
        Some(p) => p,
        None => panic!("the fixture has no package {i}"),
    }
}

fn only<'a>(found: &'a [StoredFinding], vuln: &str) -> &'a StoredFinding {
    let matching: Vec<&StoredFinding> = found
        .iter()
        .filter(|f| f.finding.vulnerability == vuln)
        .collect();
    assert_eq!(matching.len(), 1, "{vuln}: {matching:?}");
    matching[0]
}

pub async fn findings_open_keep_and_close_with_the_fixing_version(db: Arc<dyn TestDatabase>) {
    let store = open(&db).await;
    let host = enrolled(&store, "web", "web-1").await;
    let (before, after) = debian_inventories(5);
    let (old, new) = (&before.packages, &after.packages);

    let first = vec![
        current(
            pkg(old, 0),
            "CVE-2024-0001",
            Some(pkg(new, 0)),
            classified(Class::High, 1000),
        ),
        current(
            pkg(old, 1),
            "CVE-2024-0002",
            Some(pkg(new, 1)),
            classified(Class::Low, 9000),
        ),
    ];
    let s = store
        .sync_findings(
            host.id,
            &first,
            old,
            at(10),
            entry(at(10), "findings.sync", "h"),
        )
        .await
        .unwrap();
    assert_eq!(
        s,
        FindingSync {
            opened: 2,
            kept: 0,
            reclassified: 0,
            closed: 0
        }
    );
    let open = store
        .list_findings(&FindingFilter {
            host: Some(host.id),
            ..FindingFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(open.len(), 2);
    let f1 = only(&open, "CVE-2024-0001");
    assert_eq!(f1.state, FindingState::Open);
    assert_eq!(f1.first_seen, at(10));
    assert_eq!(f1.finding, *first[0].finding);
    assert_eq!(f1.classification, first[0].classification);
    assert_eq!((f1.closed_at, f1.fixed_version.as_deref()), (None, None));

    // The same findings later: kept, first seen unchanged; nothing to audit.
    let head = store.audit_head().await.unwrap();
    let s = store
        .sync_findings(
            host.id,
            &first,
            old,
            at(20),
            entry(at(20), "findings.sync", "h"),
        )
        .await
        .unwrap();
    assert_eq!((s.opened, s.kept, s.closed), (0, 2, 0));
    assert_eq!(store.audit_head().await.unwrap(), head);
    let kept = store
        .list_findings(&FindingFilter::default())
        .await
        .unwrap();
    let f1_kept = only(&kept, "CVE-2024-0001");
    assert_eq!(f1_kept.first_seen, at(10));
    assert_eq!(f1_kept.last_seen, at(20));
    assert_eq!(f1_kept.id, f1.id);

    // Package 0 is patched: its finding closes with the version now installed; package 1's
    // stays open, and a new one opens.
    let mut installed = old.clone();
    if let Some(p) = installed.get_mut(0) {
        *p = pkg(new, 0).clone();
    }
    let second = vec![
        first[1].clone(),
        current(
            pkg(old, 2),
            "CVE-2024-0003",
            None,
            classified(Class::Medium, 5000),
        ),
    ];
    let s = store
        .sync_findings(
            host.id,
            &second,
            &installed,
            at(30),
            entry(at(30), "findings.sync", "h"),
        )
        .await
        .unwrap();
    assert_eq!((s.opened, s.kept, s.closed), (1, 1, 1));
    let all = store
        .list_findings(&FindingFilter::default())
        .await
        .unwrap();
    assert_eq!(all.len(), 3);
    // Counted in the database: two open, one of them with a released fix; the closed one
    // and other hosts' findings do not count.
    assert_eq!(store.count_open_findings(host.id).await.unwrap(), 2);
    assert!(store.has_open_fixable_finding(host.id).await.unwrap());
    // The counts are the host's: both open, one (CVE-2024-0002) with a released fix.
    let counted = store.get_host(host.id).await.unwrap().unwrap();
    assert_eq!((counted.open_findings, counted.open_fixable), (2, 1));
    let other = enrolled(&store, "web", "web-2").await;
    assert_eq!(store.count_open_findings(other.id).await.unwrap(), 0);
    assert!(!store.has_open_fixable_finding(other.id).await.unwrap());
    // The hosts read in one query are the ones that exist.
    let mut got: Vec<_> = store
        .get_hosts(&[other.id, uuid::Uuid::new_v4(), host.id])
        .await
        .unwrap()
        .into_iter()
        .map(|h| h.id)
        .collect();
    got.sort();
    let mut want = vec![host.id, other.id];
    want.sort();
    assert_eq!(got, want);
    assert!(store.get_hosts(&[]).await.unwrap().is_empty());
    let closed = only(&all, "CVE-2024-0001");
    assert_eq!(closed.state, FindingState::Closed);
    assert_eq!(closed.closed_at, Some(at(30)));
    assert_eq!(closed.first_seen, at(10));
    let new0 = pkg(new, 0);
    assert_eq!(
        closed.fixed_version.as_deref(),
        Some(new0.source_version.as_deref().unwrap_or(&new0.version))
    );
    assert_eq!(only(&all, "CVE-2024-0002").first_seen, at(10));
    assert_eq!(only(&all, "CVE-2024-0003").first_seen, at(30));

    // A package removed altogether closes its finding with no fixing version.
    let removed: Vec<Package> = installed
        .iter()
        .filter(|p| p.name != pkg(old, 2).name)
        .cloned()
        .collect();
    let s = store
        .sync_findings(
            host.id,
            &second[..1],
            &removed,
            at(40),
            entry(at(40), "f", "h"),
        )
        .await
        .unwrap();
    assert_eq!(s.closed, 1);
    let all = store
        .list_findings(&FindingFilter::default())
        .await
        .unwrap();
    let gone = only(&all, "CVE-2024-0003");
    assert_eq!(
        (gone.state, gone.fixed_version.as_deref()),
        (FindingState::Closed, None)
    );
    let counted = store.get_host(host.id).await.unwrap().unwrap();
    assert_eq!((counted.open_findings, counted.open_fixable), (1, 1));
    // An empty sync closes the rest, and the counts go to zero.
    store
        .sync_findings(host.id, &[], &removed, at(45), entry(at(45), "f", "h"))
        .await
        .unwrap();
    let counted = store.get_host(host.id).await.unwrap().unwrap();
    assert_eq!((counted.open_findings, counted.open_fixable), (0, 0));
    assert!(!store.has_open_fixable_finding(host.id).await.unwrap());

    let e = store
        .sync_findings(
            uuid::Uuid::new_v4(),
            &second,
            old,
            at(50),
            entry(at(50), "f", "h"),
        )
        .await
        .unwrap_err();
    assert!(matches!(e, crate::StoreError::NotFound { .. }), "{e}");
}

pub async fn a_reclassified_finding_keeps_its_first_seen_and_gains_history(
    db: Arc<dyn TestDatabase>,
) {
    let store = open(&db).await;
    let host = enrolled(&store, "web", "web-1").await;
    let (before, after) = debian_inventories(1);
    let p = pkg(&before.packages, 0);
    let fix = pkg(&after.packages, 0);
    let high = vec![current(
        p,
        "CVE-2024-1111",
        Some(fix),
        classified(Class::High, 1000),
    )];
    store
        .sync_findings(
            host.id,
            &high,
            &before.packages,
            at(10),
            entry(at(10), "f", "h"),
        )
        .await
        .unwrap();
    // KEV lists it: it becomes an emergency, due much sooner.
    let emergency = vec![current(
        p,
        "CVE-2024-1111",
        Some(fix),
        classified(Class::Emergency, 50),
    )];
    let s = store
        .sync_findings(
            host.id,
            &emergency,
            &before.packages,
            at(20),
            entry(at(20), "f", "h"),
        )
        .await
        .unwrap();
    assert_eq!((s.kept, s.reclassified), (1, 1));
    let found = store
        .list_findings(&FindingFilter::default())
        .await
        .unwrap();
    let f = only(&found, "CVE-2024-1111");
    assert_eq!(f.first_seen, at(10));
    assert_eq!(f.classification, emergency[0].classification);
    let history = store.finding_history(f.id).await.unwrap();
    let steps: Vec<(jiff::Timestamp, Option<Class>)> = history
        .iter()
        .map(|h| (h.at, h.classification.class))
        .collect();
    assert_eq!(
        steps,
        vec![
            (at(10), Some(Class::High)),
            (at(20), Some(Class::Emergency))
        ]
    );
    assert_eq!(
        history.last().map(|h| h.classification.due_at),
        Some(Some(at(50)))
    );
}

pub async fn a_finding_that_comes_back_opens_anew_and_keeps_the_closed_one(
    db: Arc<dyn TestDatabase>,
) {
    let store = open(&db).await;
    let host = enrolled(&store, "web", "web-1").await;
    let (before, after) = debian_inventories(1);
    let p = pkg(&before.packages, 0);
    let found = vec![current(
        p,
        "CVE-2024-2222",
        None,
        classified(Class::High, 1000),
    )];
    store
        .sync_findings(
            host.id,
            &found,
            &before.packages,
            at(10),
            entry(at(10), "f", "h"),
        )
        .await
        .unwrap();
    store
        .sync_findings(
            host.id,
            &[],
            &after.packages,
            at(20),
            entry(at(20), "f", "h"),
        )
        .await
        .unwrap();
    // Downgraded again: the exposure is back.
    let s = store
        .sync_findings(
            host.id,
            &found,
            &before.packages,
            at(30),
            entry(at(30), "f", "h"),
        )
        .await
        .unwrap();
    assert_eq!(s.opened, 1);
    let all = store
        .list_findings(&FindingFilter::default())
        .await
        .unwrap();
    assert_eq!(all.len(), 2);
    let states: Vec<(FindingState, jiff::Timestamp)> =
        all.iter().map(|f| (f.state, f.first_seen)).collect();
    assert_eq!(
        states,
        vec![(FindingState::Closed, at(10)), (FindingState::Open, at(30))]
    );
}

pub async fn findings_filter_by_state_class_due_date_and_host(db: Arc<dyn TestDatabase>) {
    let store = open(&db).await;
    let a = enrolled(&store, "web", "a").await;
    let b = enrolled(&store, "web", "b").await;
    let (before, _) = debian_inventories(3);
    let old = &before.packages;
    let for_a = vec![
        current(
            pkg(old, 0),
            "CVE-1",
            None,
            classified(Class::Emergency, 100),
        ),
        current(pkg(old, 1), "CVE-2", None, classified(Class::High, 1000)),
    ];
    let for_b = vec![
        current(
            pkg(old, 0),
            "CVE-1",
            None,
            classified(Class::Emergency, 100),
        ),
        current(pkg(old, 2), "CVE-3", None, Classification::default()),
    ];
    store
        .sync_findings(a.id, &for_a, old, at(10), entry(at(10), "f", "a"))
        .await
        .unwrap();
    store
        .sync_findings(b.id, &for_b, old, at(10), entry(at(10), "f", "b"))
        .await
        .unwrap();
    store
        .sync_findings(a.id, &for_a[..1], old, at(20), entry(at(20), "f", "a"))
        .await
        .unwrap();

    let ids = |v: Vec<StoredFinding>| -> Vec<(uuid::Uuid, String)> {
        v.into_iter()
            .map(|f| (f.host, f.finding.vulnerability))
            .collect()
    };
    let list = |f: FindingFilter| {
        let store = store.clone();
        async move { store.list_findings(&f).await.unwrap() }
    };
    let emergencies = list(FindingFilter {
        class: Some(Class::Emergency),
        ..FindingFilter::default()
    })
    .await;
    assert_eq!(
        ids(emergencies),
        vec![(a.id, "CVE-1".into()), (b.id, "CVE-1".into())]
    );
    let closed = list(FindingFilter {
        state: Some(FindingState::Closed),
        ..FindingFilter::default()
    })
    .await;
    assert_eq!(ids(closed), vec![(a.id, "CVE-2".into())]);
    let due_soon = list(FindingFilter {
        due_before: Some(at(500)),
        host: Some(b.id),
        ..FindingFilter::default()
    })
    .await;
    assert_eq!(ids(due_soon), vec![(b.id, "CVE-1".into())]);
    let open_b = list(FindingFilter {
        host: Some(b.id),
        state: Some(FindingState::Open),
        ..FindingFilter::default()
    })
    .await;
    assert_eq!(open_b.len(), 2);
    let by_vuln = list(FindingFilter {
        vulnerability: Some("CVE-3".into()),
        ..FindingFilter::default()
    })
    .await;
    assert_eq!(by_vuln.first().map(|f| f.classification.class), Some(None));
    let first_page = list(FindingFilter {
        limit: Some(2),
        ..FindingFilter::default()
    })
    .await;
    let rest = list(FindingFilter {
        after_id: first_page.last().map(|f| f.id),
        ..FindingFilter::default()
    })
    .await;
    assert_eq!(first_page.len() + rest.len(), 4);
}

pub async fn hosts_with_the_same_finding_share_its_body_and_each_keeps_its_own_changes(
    db: Arc<dyn TestDatabase>,
) {
    // The store keeps one copy of a finding body that many hosts have: what each host reads
    // back, its changes and its history stay its own.
    let store = open(&db).await;
    let a = enrolled(&store, "web", "a").await;
    let b = enrolled(&store, "web", "b").await;
    let (before, after) = debian_inventories(2);
    let (old, new) = (&before.packages, &after.packages);
    let both = vec![
        current(pkg(old, 0), "CVE-7", None, classified(Class::High, 1000)),
        current(pkg(old, 1), "CVE-8", None, classified(Class::Low, 9000)),
    ];
    for (h, t) in [(&a, 10), (&b, 20)] {
        let s = store
            .sync_findings(h.id, &both, old, at(t), entry(at(t), "f", "h"))
            .await
            .unwrap();
        assert_eq!(s.opened, 2);
    }
    // A fix is released for CVE-7 and host a's policy makes it an emergency: only a's
    // finding says so, and a re-sync of the same findings changes nothing and audits nothing.
    let changed = vec![
        current(
            pkg(old, 0),
            "CVE-7",
            Some(pkg(new, 0)),
            classified(Class::Emergency, 50),
        ),
        both[1].clone(),
    ];
    let s = store
        .sync_findings(a.id, &changed, old, at(30), entry(at(30), "f", "a"))
        .await
        .unwrap();
    assert_eq!((s.kept, s.reclassified), (2, 1));
    let head = store.audit_head().await.unwrap();
    let s = store
        .sync_findings(a.id, &changed, old, at(40), entry(at(40), "f", "a"))
        .await
        .unwrap();
    assert_eq!((s.opened, s.kept, s.reclassified, s.closed), (0, 2, 0, 0));
    assert_eq!(store.audit_head().await.unwrap(), head);
    let of = |h: uuid::Uuid| {
        let store = store.clone();
        async move {
            store
                .list_findings(&FindingFilter {
                    host: Some(h),
                    vulnerability: Some("CVE-7".into()),
                    ..FindingFilter::default()
                })
                .await
                .unwrap()
        }
    };
    let fa = of(a.id).await;
    let fb = of(b.id).await;
    assert_eq!((fa.len(), fb.len()), (1, 1));
    assert_eq!(fa[0].finding, *changed[0].finding);
    assert_eq!(fa[0].classification, changed[0].classification);
    assert_eq!((fa[0].first_seen, fa[0].last_seen), (at(10), at(40)));
    assert_eq!(fb[0].finding, *both[0].finding);
    assert_eq!(fb[0].classification, both[0].classification);
    assert_eq!((fb[0].first_seen, fb[0].last_seen), (at(20), at(20)));
    let steps = |h: Vec<crate::ClassificationChange>| -> Vec<(jiff::Timestamp, Option<Class>)> {
        h.iter().map(|c| (c.at, c.classification.class)).collect()
    };
    assert_eq!(
        steps(store.finding_history(fa[0].id).await.unwrap()),
        vec![
            (at(10), Some(Class::High)),
            (at(30), Some(Class::Emergency))
        ]
    );
    assert_eq!(
        steps(store.finding_history(fb[0].id).await.unwrap()),
        vec![(at(20), Some(Class::High))]
    );
    // Back to high on a: a third step; b's fixable finding is still not fixable.
    let s = store
        .sync_findings(a.id, &both, old, at(50), entry(at(50), "f", "a"))
        .await
        .unwrap();
    assert_eq!(s.reclassified, 1);
    assert_eq!(
        steps(store.finding_history(fa[0].id).await.unwrap()),
        vec![
            (at(10), Some(Class::High)),
            (at(30), Some(Class::Emergency)),
            (at(50), Some(Class::High))
        ]
    );
    assert_eq!(of(a.id).await[0].finding, *both[0].finding);
    assert!(!store.has_open_fixable_finding(b.id).await.unwrap());
    assert!(store.finding_history(i64::MAX).await.unwrap().is_empty());
}

/// A first inventory opens hundreds of findings at once (a backend may write them several
/// rows a statement): each stored finding is the one given, with its own classification, on
/// its own host, and none is lost or doubled whatever the count — here 1 to 90, every
/// remainder of the usual batch sizes.
pub async fn a_large_sync_stores_every_finding_as_given(db: Arc<dyn TestDatabase>) {
    let store = open(&db).await;
    let (before, after) = debian_inventories(30);
    let (old, new) = (&before.packages, &after.packages);
    let classes = [Class::Emergency, Class::High, Class::Medium, Class::Low];
    for count in [1usize, 3, 17, 64, 69, 90] {
        let host = enrolled(&store, "web", &format!("web-{count}")).await;
        let given: Vec<CurrentFinding> = (0..count)
            .map(|i| {
                let c = if i % 5 == 4 {
                    Classification::default()
                } else {
                    classified(classes[i % 4], 1000 + i as i64)
                };
                current(
                    pkg(old, i % 30),
                    &format!("CVE-2024-{count:03}{i:03}"),
                    (i % 3 != 0).then(|| pkg(new, i % 30)),
                    c,
                )
            })
            .collect();
        let s = store
            .sync_findings(
                host.id,
                &given,
                old,
                at(10),
                entry(at(10), "findings.sync", "h"),
            )
            .await
            .unwrap();
        assert_eq!((s.opened, s.kept, s.closed), (count as u32, 0, 0));
        let stored = store
            .list_findings(&FindingFilter {
                host: Some(host.id),
                ..FindingFilter::default()
            })
            .await
            .unwrap();
        assert_eq!(stored.len(), count, "{count} given");
        for g in &given {
            let f = only(&stored, &g.finding.vulnerability);
            assert_eq!((f.host, f.state), (host.id, FindingState::Open));
            assert_eq!(f.finding, *g.finding);
            assert_eq!(f.classification, g.classification);
            assert_eq!((f.first_seen, f.last_seen), (at(10), at(10)));
        }
        assert_eq!(
            store.count_open_findings(host.id).await.unwrap(),
            count as u64
        );
    }
}

pub async fn an_uploaded_inventory_and_its_findings_are_stored_together_or_not_at_all(
    db: Arc<dyn TestDatabase>,
) {
    let store = open(&db).await;
    let host = enrolled(&store, "web", "web-1").await;
    let (before, after) = debian_inventories(3);
    let first = high_on_first(&before, &after);
    let start = audit_seq(&store).await;
    let (sync, digest) = apply_at(
        &store,
        host.id,
        crate::PreparedUpload::of(&before, &first).unwrap(),
        10,
    )
    .await
    .unwrap();
    assert_eq!((sync.opened, sync.kept, sync.closed), (1, 0, 0));
    assert_eq!(
        digest,
        patchwarden_core::inventory::PackagesDigest::of(&before.packages)
    );
    let held = store.get_inventory(host.id).await.unwrap().unwrap();
    assert_eq!((held.inventory, held.digest), (before.clone(), digest));
    let stored = store.get_host(host.id).await.unwrap().unwrap();
    assert_eq!(stored.inventory_digest, Some(digest));
    assert_eq!((stored.open_findings, stored.open_fixable), (1, 1));
    let actions: Vec<String> = store
        .audit_events(start, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.entry.action)
        .collect();
    assert_eq!(actions, vec!["findings.sync", "inventory.replace"]);

    // The patched inventory, with either audit entry refused: neither the findings nor the
    // inventory change, and nothing is appended.
    let head = audit_seq(&store).await;
    for (sync_action, inventory_action) in [("", "inventory.replace"), ("findings.sync", "")] {
        let e = store
            .apply_inventory(
                host.id,
                crate::PreparedUpload::of(&after, &[]).unwrap(),
                at(20),
                entry(at(20), sync_action, "h"),
                entry(at(20), inventory_action, "h"),
            )
            .await
            .unwrap_err();
        assert!(matches!(e, crate::StoreError::Invalid { .. }), "{e}");
        let held = store.get_inventory(host.id).await.unwrap().unwrap();
        assert_eq!(held.digest, digest);
        assert_eq!(store.count_open_findings(host.id).await.unwrap(), 1);
        assert_eq!(audit_seq(&store).await, head);
    }

    // Accepted, the finding closes with the version installed and the new inventory stands.
    let (sync, patched) = apply_at(
        &store,
        host.id,
        crate::PreparedUpload::of(&after, &[]).unwrap(),
        30,
    )
    .await
    .unwrap();
    assert_eq!(sync.closed, 1);
    assert_eq!(
        store.get_inventory(host.id).await.unwrap().unwrap().digest,
        patched
    );
    let closed = store
        .list_findings(&FindingFilter {
            host: Some(host.id),
            state: Some(FindingState::Closed),
            ..FindingFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(closed.len(), 1);
    assert_eq!(closed[0].closed_at, Some(at(30)));

    let e = apply_at(
        &store,
        uuid::Uuid::new_v4(),
        crate::PreparedUpload::of(&after, &first).unwrap(),
        40,
    )
    .await
    .unwrap_err();
    assert!(matches!(e, crate::StoreError::NotFound { .. }), "{e}");
}

/// An upload carrying its request's nonce records it in the upload's transaction: the first
/// upload stands, a replay of the same nonce (even with another inventory, as a replay of an
/// older upload after a newer one would be) fails as a replay and changes nothing, the nonce is
/// then known to [`crate::Store::record_nonce`] too, and an expired record of it no longer
/// refuses anything.
pub async fn an_upload_records_its_nonce_with_it_and_a_replay_changes_nothing(
    db: Arc<dyn TestDatabase>,
) {
    let store = open(&db).await;
    let host = enrolled(&store, "web", "web-1").await;
    let (before, after) = debian_inventories(3);
    let first = high_on_first(&before, &after);
    let nonce = "0123456789abcdef0123456789abcdef";
    let upload = |inventory: &Inventory, current: &[CurrentFinding], expires: i64| {
        crate::PreparedUpload::of(inventory, current)
            .unwrap()
            .with_nonce(nonce, at(expires))
            .unwrap()
    };
    let (sync, digest) = apply_at(&store, host.id, upload(&before, &first, 100), 10)
        .await
        .unwrap();
    assert_eq!(sync.opened, 1);
    let events = audit_seq(&store).await;
    // The same nonce again, with the patched inventory: refused, nothing changes.
    let e = apply_at(&store, host.id, upload(&after, &[], 100), 20)
        .await
        .unwrap_err();
    assert!(
        matches!(&e, crate::StoreError::Replay { host: h, nonce: n } if *h == host.id && n == nonce),
        "{e}"
    );
    assert_eq!(
        store.get_inventory(host.id).await.unwrap().unwrap().digest,
        digest
    );
    assert_eq!(store.count_open_findings(host.id).await.unwrap(), 1);
    assert_eq!(audit_seq(&store).await, events);
    // The nonce the upload recorded is the one requests are checked against.
    let e = store
        .record_nonce(host.id, nonce, at(100), at(30))
        .await
        .unwrap_err();
    assert!(matches!(e, crate::StoreError::Replay { .. }), "{e}");
    // Past its expiry the record protects nothing (the request's own time window refuses
    // anything that old): the same nonce is taken again.
    let (sync, patched) = apply_at(&store, host.id, upload(&after, &[], 300), 200)
        .await
        .unwrap();
    assert_eq!(sync.closed, 1);
    assert_ne!(patched, digest);
    // A nonce that could never be sent is refused before anything is stored.
    let e = crate::PreparedUpload::of(&after, &[])
        .unwrap()
        .with_nonce(&"n".repeat(crate::limits::MAX_NONCE + 1), at(300))
        .unwrap_err();
    assert!(matches!(e, crate::StoreError::TooLong { .. }), "{e}");
    let e = crate::PreparedUpload::of(&after, &[])
        .unwrap()
        .with_nonce("", at(300))
        .unwrap_err();
    assert!(matches!(e, crate::StoreError::Invalid { .. }), "{e}");
    // And an unknown host is still unknown, not a replay.
    let e = apply_at(&store, uuid::Uuid::new_v4(), upload(&after, &[], 300), 210)
        .await
        .unwrap_err();
    assert!(matches!(e, crate::StoreError::NotFound { .. }), "{e}");
}

/// The fleet-wide list of open findings due before a time (the SLA sweep's question) follows
/// every change of a host's findings — opened, closed, reclassified, through a sync or an
/// uploaded inventory — and agrees with the open findings filtered one by one. PostgreSQL
/// answers it through each host's earliest due date (`0017_findings_due_by_host`), so a date
/// left stale on a host's row would hide its overdue findings.
pub async fn open_findings_due_before_a_time_follow_every_sync(db: Arc<dyn TestDatabase>) {
    let store = open(&db).await;
    let a = enrolled(&store, "web", "a").await;
    let b = enrolled(&store, "web", "b").await;
    let c = enrolled(&store, "db", "c").await;
    let (before, after) = debian_inventories(3);
    let old = &before.packages;
    let due = |t: i64| {
        let store = store.clone();
        async move {
            let listed = store
                .list_findings(&FindingFilter {
                    state: Some(FindingState::Open),
                    due_before: Some(at(t)),
                    ..FindingFilter::default()
                })
                .await
                .unwrap();
            // The oracle: every open finding, filtered here.
            let mut expected = store
                .list_findings(&FindingFilter {
                    state: Some(FindingState::Open),
                    ..FindingFilter::default()
                })
                .await
                .unwrap();
            expected.retain(|f| f.classification.due_at.is_some_and(|d| d < at(t)));
            assert_eq!(listed, expected, "due before {t}");
            // Page by page, the same findings.
            let mut paged = Vec::new();
            loop {
                let page = store
                    .list_findings(&FindingFilter {
                        state: Some(FindingState::Open),
                        due_before: Some(at(t)),
                        after_id: paged.last().map(|f: &StoredFinding| f.id),
                        limit: Some(1),
                        ..FindingFilter::default()
                    })
                    .await
                    .unwrap();
                if page.is_empty() {
                    break;
                }
                paged.extend(page);
            }
            assert_eq!(paged, listed, "due before {t}, paged");
            listed
                .into_iter()
                .map(|f| (f.host, f.finding.vulnerability))
                .collect::<Vec<_>>()
        }
    };
    let sync = |host: uuid::Uuid, findings: Vec<CurrentFinding>, t: i64| {
        let store = store.clone();
        async move {
            store
                .sync_findings(host, &findings, old, at(t), entry(at(t), "f", "h"))
                .await
                .unwrap();
        }
    };
    // One finding on package `i` of the old inventory, the host's only one.
    let sync_one = |host: uuid::Uuid, i: usize, vuln: &'static str, cl: Classification, t: i64| {
        sync(host, vec![current(pkg(old, i), vuln, None, cl)], t)
    };
    assert_eq!(due(500).await, vec![]);
    let cve1_a = current(
        pkg(old, 0),
        "CVE-1",
        None,
        classified(Class::Emergency, 100),
    );
    let cve2_a = current(pkg(old, 1), "CVE-2", None, classified(Class::High, 1000));
    sync(a.id, vec![cve1_a.clone(), cve2_a.clone()], 10).await;
    sync_one(b.id, 0, "CVE-1", classified(Class::High, 300), 10).await;
    sync_one(c.id, 2, "CVE-3", Classification::default(), 10).await;
    assert_eq!(
        due(500).await,
        vec![(a.id, "CVE-1".into()), (b.id, "CVE-1".into())]
    );
    assert_eq!(due(100).await, vec![]);
    // a's earliest finding closes: its next one is due later.
    sync(a.id, vec![cve2_a.clone()], 20).await;
    assert_eq!(due(500).await, vec![(b.id, "CVE-1".into())]);
    assert_eq!(
        due(1500).await,
        vec![(a.id, "CVE-2".into()), (b.id, "CVE-1".into())]
    );
    // b's finding is reclassified, due later; c's gains a due date.
    sync_one(b.id, 0, "CVE-1", classified(Class::Medium, 2000), 30).await;
    sync_one(c.id, 2, "CVE-3", classified(Class::Low, 50), 30).await;
    assert_eq!(due(500).await, vec![(c.id, "CVE-3".into())]);
    assert_eq!(
        due(2500).await,
        vec![
            (a.id, "CVE-2".into()),
            (b.id, "CVE-1".into()),
            (c.id, "CVE-3".into())
        ]
    );
    // And b's becomes an emergency, due earlier than anything: its host's date moves back.
    sync_one(b.id, 0, "CVE-1", classified(Class::Emergency, 60), 35).await;
    assert_eq!(
        due(100).await,
        vec![(b.id, "CVE-1".into()), (c.id, "CVE-3".into())]
    );
    // An uploaded inventory changes them too: a reopens CVE-1 (a new finding, due at 100),
    // then the patched inventory closes everything of a.
    apply_at(
        &store,
        a.id,
        crate::PreparedUpload::of(&before, &[cve1_a, cve2_a]).unwrap(),
        40,
    )
    .await
    .unwrap();
    assert_eq!(
        due(500).await,
        vec![
            (b.id, "CVE-1".into()),
            (c.id, "CVE-3".into()),
            (a.id, "CVE-1".into())
        ]
    );
    apply_at(
        &store,
        a.id,
        crate::PreparedUpload::of(&after, &[]).unwrap(),
        50,
    )
    .await
    .unwrap();
    assert_eq!(
        due(500).await,
        vec![(b.id, "CVE-1".into()), (c.id, "CVE-3".into())]
    );
    assert_eq!(due(50).await, vec![]);
}

pub async fn hosts_syncing_the_same_new_findings_at_once_all_open_them(db: Arc<dyn TestDatabase>) {
    // A fleet's first inventories arrive together, and similar hosts bring the same findings,
    // whose bodies (and, on PostgreSQL, subjects) none of them has stored yet: each sync
    // stores what it does not know, and those racing for the same rows must all succeed.
    let store = open(&db).await;
    let (before, after) = debian_inventories(12);
    let (old, new) = (&before.packages, &after.packages);
    let findings: Vec<CurrentFinding> = (0..12)
        .map(|i| {
            current(
                pkg(old, i),
                &format!("CVE-2025-{i:04}"),
                (i % 2 == 0).then(|| pkg(new, i)),
                classified(Class::Medium, 5000),
            )
        })
        .collect();
    let mut hosts = Vec::new();
    for i in 0..8 {
        hosts.push(enrolled(&store, "web", &format!("web-{i}")).await);
    }
    // Every host's sync of `findings` at `t`, all at once: (opened, kept, closed) of each.
    let race = |t: i64| {
        let racers: Vec<_> = hosts
            .iter()
            .map(|h| {
                let (store, findings, old, id) =
                    (store.clone(), findings.clone(), old.clone(), h.id);
                tokio::spawn(async move {
                    store
                        .sync_findings(id, &findings, &old, at(t), entry(at(t), "f", "h"))
                        .await
                })
            })
            .collect();
        async move {
            let mut outcomes = Vec::new();
            for r in racers {
                let s = r.await.unwrap().unwrap();
                outcomes.push((s.opened, s.kept, s.closed));
            }
            outcomes
        }
    };
    for s in race(10).await {
        assert_eq!(s, (12, 0, 0));
    }
    for h in &hosts {
        let open = store
            .list_findings(&FindingFilter {
                host: Some(h.id),
                state: Some(FindingState::Open),
                ..FindingFilter::default()
            })
            .await
            .unwrap();
        let got: Vec<_> = open.iter().map(|f| f.finding.clone()).collect();
        let want: Vec<_> = findings
            .iter()
            .map(|f| f.finding.as_ref().clone())
            .collect();
        assert_eq!(got, want, "host {}", h.id);
        assert_eq!(store.count_open_findings(h.id).await.unwrap(), 12);
    }
    // The same findings again, together: all kept.
    for s in race(20).await {
        assert_eq!(s, (0, 12, 0));
    }
}
