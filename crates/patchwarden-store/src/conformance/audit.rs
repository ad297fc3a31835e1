//! Conformance: the audit chain (every change appends, concurrent writers do not fork it, a
//! refused append leaves no change), migrations, and length limits.

use std::collections::BTreeMap;
use std::sync::Arc;

use patchwarden_core::audit::{AuditEntry, AuditEvent, verify};
use patchwarden_core::policy::Class;
use serde_json::json;
use uuid::Uuid;

use super::fixtures::{at, debian_inventories, enrolled, entry, facts, new_host, new_token, t0};
use super::{TestDatabase, open};
use crate::{
    Classification, CurrentFinding, FindingFilter, HostPlacement, JobReport, NewJob, SecretHash,
    Store, StoreError,
};

/// The whole chain, read in pages of 7 (so paging is exercised).
async fn chain(store: &Arc<dyn Store>) -> Vec<AuditEvent> {
    let mut out: Vec<AuditEvent> = Vec::new();
    loop {
        let after = out.last().map_or(0, |e| e.seq);
        let page = store.audit_events(after, 7).await.unwrap();
        if page.is_empty() {
            return out;
        }
        out.extend(page);
    }
}

pub async fn every_change_appends_an_audit_event_and_the_chain_verifies(db: Arc<dyn TestDatabase>) {
    let store = open(&db).await;
    assert_eq!(store.audit_head().await.unwrap(), None);
    assert!(store.audit_events(0, 10).await.unwrap().is_empty());

    let host = enrolled(&store, "web", "web-1").await; // token.create, host.enroll
    let (before, after) = debian_inventories(3);
    let mut changed = facts("web-1", "other");
    changed.kernel = Some("6.1.0-99-amd64".into());
    store
        .record_check_in(host.id, changed, at(10), entry(at(10), "host.facts", "h"))
        .await
        .unwrap();
    store
        .set_host_placement(
            host.id,
            HostPlacement {
                group: "web".into(),
                ring: Some("test".into()),
                labels: BTreeMap::new(),
            },
            at(11),
            entry(at(11), "host.place", "h"),
        )
        .await
        .unwrap();
    store
        .replace_inventory(
            host.id,
            &before,
            at(12),
            entry(at(12), "inventory.replace", "h"),
        )
        .await
        .unwrap();
    let cf = CurrentFinding {
        body: None,
        finding: super::fixtures::finding(&before.packages[0], "CVE-2024-9", None).into(),
        classification: Classification {
            class: Some(Class::High),
            ..Classification::default()
        },
    };
    store
        .sync_findings(
            host.id,
            &[cf],
            &before.packages,
            at(13),
            entry(at(13), "findings.sync", "h"),
        )
        .await
        .unwrap();
    let job = NewJob {
        id: Uuid::new_v4(),
        host: host.id,
        kind: json!({"kind": "reboot"}),
        created_by: "alice".into(),
    };
    let job_id = job.id;
    store
        .create_job(job, at(14), entry(at(14), "job.create", "j"))
        .await
        .unwrap();
    store
        .lease_jobs(host.id, at(100), 1, at(15), entry(at(15), "job.lease", "h"))
        .await
        .unwrap();
    store
        .report_job(
            host.id,
            job_id,
            JobReport::Finished {
                success: true,
                detail: json!({}),
            },
            at(16),
            entry(at(16), "job.report", "j"),
        )
        .await
        .unwrap();
    store
        .replace_inventory(
            host.id,
            &after,
            at(17),
            entry(at(17), "inventory.replace", "h"),
        )
        .await
        .unwrap();
    store
        .append_audit(at(18), entry(at(18), "operator.login", "user:alice"))
        .await
        .unwrap();

    let events = chain(&store).await;
    let actions: Vec<&str> = events.iter().map(|e| e.entry.action.as_str()).collect();
    assert_eq!(
        actions,
        vec![
            "token.create",
            "host.enroll",
            "host.facts",
            "host.place",
            "inventory.replace",
            "findings.sync",
            "job.create",
            "job.lease",
            "job.report",
            "inventory.replace",
            "operator.login",
        ]
    );
    let verified = verify(&events).unwrap();
    assert_eq!(verified.events, 11);
    let head = store.audit_head().await.unwrap().unwrap();
    assert_eq!((head.seq, head.hash), (11, verified.head));
    // The store filled in what only it knew: the sync's counts and the leased jobs.
    let sync = events.iter().find(|e| e.entry.action == "findings.sync");
    assert_eq!(
        sync.and_then(|e| e.entry.after.clone()),
        Some(json!({"opened": 1, "kept": 0, "reclassified": 0, "closed": 0}))
    );
    // Entries come back exactly as written, timestamps to the nanosecond.
    assert_eq!(events.first().map(|e| e.entry.at), Some(t0()));

    // A restarted store continues the same chain.
    let reopened = open(&db).await;
    reopened
        .append_audit(at(19), entry(at(19), "server.start", "server"))
        .await
        .unwrap();
    assert_eq!(verify(&chain(&reopened).await).unwrap().events, 12);
}

pub async fn concurrent_writers_never_fork_the_audit_chain(db: Arc<dyn TestDatabase>) {
    let first = open(&db).await;
    let second = open(&db).await;
    let mut tasks = Vec::new();
    for i in 0..40i64 {
        let store = if i % 2 == 0 {
            first.clone()
        } else {
            second.clone()
        };
        tasks.push(tokio::spawn(async move {
            store
                .append_audit(at(i), entry(at(i), "test.append", format!("n:{i}")))
                .await
                .unwrap()
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let events = chain(&first).await;
    assert_eq!(verify(&events).unwrap().events, 40);
}

/// The hash is computed where the event is appended (PostgreSQL chains events inside the
/// database, SQLite in Rust) and checked by `verify` in Rust: entries whose JSON takes escaping,
/// non-ASCII text, numbers of every kind and unsorted keys must hash alike in both places, and
/// the events a store returns must be the ones it stored.
pub async fn appended_events_hash_alike_whatever_the_entry_holds(db: Arc<dyn TestDatabase>) {
    let store = open(&db).await;
    let awkward = [
        json!({"z": 1, "a": "é ü ß — 漢字 🦀", "m": {"y": [3, 2, 1], "b": null}}),
        json!({"quote": "\"", "backslash": "\\", "newline": "a\nb", "control": "\u{1}\u{1f}"}),
        json!({"big": i64::MAX, "small": i64::MIN, "float": 0.1 + 0.2, "tiny": 1e-300, "u": u64::MAX}),
        json!([true, false, null, "", {}, []]),
    ];
    let mut returned = Vec::new();
    // Twelve events, so that sequence numbers of two digits are hashed too.
    for i in 0..12i64 {
        let e = entry(at(i), "test.awkward", format!("n:{i} «{}»", i * 7))
            .before(awkward[(i as usize) % awkward.len()].clone())
            .after(awkward[(i as usize + 1) % awkward.len()].clone());
        returned.push(store.append_audit(at(i), e).await.unwrap());
    }
    let stored = chain(&store).await;
    assert_eq!(verify(&stored).unwrap().events, 12);
    assert_eq!(stored, returned);
    let head = store.audit_head().await.unwrap().unwrap();
    assert_eq!(
        (head.seq, head.hash.as_str()),
        (12, returned[11].hash.as_str())
    );
}

/// An entry every store refuses: its action is empty.
fn refused(now: jiff::Timestamp) -> AuditEntry {
    entry(now, "", "object")
}

fn is_refusal(r: &Result<impl std::fmt::Debug, StoreError>) -> bool {
    matches!(
        r,
        Err(StoreError::Invalid {
            field: "audit.action",
            ..
        })
    )
}

pub async fn a_change_whose_audit_append_fails_leaves_no_change(db: Arc<dyn TestDatabase>) {
    let store = open(&db).await;
    let host = enrolled(&store, "web", "web-1").await;
    let (before, after) = debian_inventories(3);
    store
        .replace_inventory(
            host.id,
            &before,
            at(5),
            entry(at(5), "inventory.replace", "h"),
        )
        .await
        .unwrap();
    let head = store.audit_head().await.unwrap();
    let host_before = store.get_host(host.id).await.unwrap().unwrap();
    let now = at(10);

    // Each change below is attempted with an entry the store refuses; each must fail and
    // leave the database exactly as it was.
    let token = new_token("never", "web", 1);
    assert!(is_refusal(
        &store
            .create_enrollment_token(token.clone(), now, refused(now))
            .await
    ));
    assert!(
        store
            .list_enrollment_tokens()
            .await
            .unwrap()
            .iter()
            .all(|t| t.id != token.id)
    );

    let live = new_token("live", "web", 1);
    store
        .create_enrollment_token(live.clone(), now, entry(now, "token.create", "t"))
        .await
        .unwrap();
    let head = store.audit_head().await.unwrap().or(head);
    let newcomer = new_host("new", "m-new");
    let newcomer_id = newcomer.id;
    assert!(is_refusal(
        &store
            .enroll_host(SecretHash::of(b"live"), newcomer, now, refused(now))
            .await
    ));
    assert_eq!(store.get_host(newcomer_id).await.unwrap(), None);
    let tokens = store.list_enrollment_tokens().await.unwrap();
    assert_eq!(
        tokens.iter().find(|t| t.id == live.id).map(|t| t.uses),
        Some(0)
    );

    assert!(is_refusal(
        &store
            .revoke_enrollment_token(live.id, now, refused(now))
            .await
    ));
    let tokens = store.list_enrollment_tokens().await.unwrap();
    assert_eq!(
        tokens
            .iter()
            .find(|t| t.id == live.id)
            .map(|t| t.revoked_at),
        Some(None)
    );

    let mut changed = facts("renamed", "m2");
    changed.reboot_required = true;
    assert!(is_refusal(
        &store
            .record_check_in(host.id, changed, now, refused(now))
            .await
    ));
    assert_eq!(store.get_host(host.id).await.unwrap(), Some(host_before));

    let placement = HostPlacement {
        group: "db".into(),
        ring: Some("x".into()),
        labels: BTreeMap::new(),
    };
    assert!(is_refusal(
        &store
            .set_host_placement(host.id, placement, now, refused(now))
            .await
    ));
    let unchanged = store.get_host(host.id).await.unwrap();
    assert_eq!(unchanged.as_ref().map(|h| h.group.as_str()), Some("web"));

    assert!(is_refusal(
        &store
            .replace_inventory(host.id, &after, now, refused(now))
            .await
    ));
    let inv = store.get_inventory(host.id).await.unwrap().unwrap();
    assert_eq!(inv.inventory, before);
    assert_eq!(
        store
            .get_host(host.id)
            .await
            .unwrap()
            .unwrap()
            .inventory_digest,
        Some(inv.digest)
    );

    let adv = patchwarden_core::advisory::Advisory::new(
        "DSA-1-1",
        patchwarden_core::advisory::Source {
            feed: patchwarden_core::advisory::FeedKind::Osv,
            location: "x".into(),
            document: None,
        },
    );
    assert!(is_refusal(
        &store.upsert_advisories(vec![adv], now, refused(now)).await
    ));
    assert_eq!(store.advisory_count().await.unwrap(), 0);

    let cf = CurrentFinding {
        body: None,
        finding: super::fixtures::finding(&before.packages[0], "CVE-2024-9", None).into(),
        classification: Classification::default(),
    };
    assert!(is_refusal(
        &store
            .sync_findings(host.id, &[cf], &before.packages, now, refused(now))
            .await
    ));
    assert!(
        store
            .list_findings(&FindingFilter::default())
            .await
            .unwrap()
            .is_empty()
    );

    let job = NewJob {
        id: Uuid::new_v4(),
        host: host.id,
        kind: json!({"kind": "reboot"}),
        created_by: "alice".into(),
    };
    assert!(is_refusal(
        &store.create_job(job.clone(), now, refused(now)).await
    ));
    assert_eq!(store.get_job(job.id).await.unwrap(), None);
    store
        .create_job(job.clone(), now, entry(now, "job.create", "j"))
        .await
        .unwrap();
    let queued = store.get_job(job.id).await.unwrap();
    let head = store.audit_head().await.unwrap().or(head);
    assert!(is_refusal(
        &store
            .lease_jobs(host.id, at(100), 5, now, refused(now))
            .await
    ));
    assert_eq!(store.get_job(job.id).await.unwrap(), queued);
    store
        .lease_jobs(host.id, at(100), 5, now, entry(now, "job.lease", "h"))
        .await
        .unwrap();
    let leased = store.get_job(job.id).await.unwrap();
    let head_after_lease = store.audit_head().await.unwrap();
    let done = JobReport::Finished {
        success: true,
        detail: json!({}),
    };
    assert!(is_refusal(
        &store
            .report_job(host.id, job.id, done, now, refused(now))
            .await
    ));
    assert_eq!(store.get_job(job.id).await.unwrap(), leased);

    assert!(is_refusal(&store.append_audit(now, refused(now)).await));
    assert_eq!(store.audit_head().await.unwrap(), head_after_lease);
    assert_ne!(head, head_after_lease);
    assert!(verify(&chain(&store).await).is_ok());
}

pub async fn migrations_are_applied_once_and_reopening_is_idempotent(db: Arc<dyn TestDatabase>) {
    let store = open(&db).await;
    let applied = store.applied_migrations().await.unwrap();
    assert_eq!(applied.first().map(String::as_str), Some("0001_initial"));
    let host = enrolled(&store, "web", "web-1").await;
    drop(store);
    for _ in 0..2 {
        let again = open(&db).await;
        assert_eq!(again.applied_migrations().await.unwrap(), applied);
        assert_eq!(again.get_host(host.id).await.unwrap(), Some(host.clone()));
        assert_eq!(verify(&chain(&again).await).unwrap().events, 2);
    }
}

pub async fn overlong_values_are_refused_before_anything_is_written(db: Arc<dyn TestDatabase>) {
    let store = open(&db).await;
    let head_of = |s: Arc<dyn Store>| async move { s.audit_head().await.unwrap() };
    let mut token = new_token("s", &"g".repeat(129), 1);
    let e = store
        .create_enrollment_token(token.clone(), t0(), entry(t0(), "token.create", "t"))
        .await
        .unwrap_err();
    assert!(
        matches!(
            e,
            StoreError::TooLong {
                field: "token group",
                ..
            }
        ),
        "{e}"
    );
    token.group = "web".into();
    token.note = Some("n".repeat(2000));
    let e = store
        .create_enrollment_token(token.clone(), t0(), entry(t0(), "token.create", "t"))
        .await
        .unwrap_err();
    assert!(matches!(e, StoreError::TooLong { .. }), "{e}");
    token.note = None;
    token.max_uses = 0;
    let e = store
        .create_enrollment_token(token, t0(), entry(t0(), "token.create", "t"))
        .await
        .unwrap_err();
    assert!(matches!(e, StoreError::Invalid { .. }), "{e}");
    assert!(store.list_enrollment_tokens().await.unwrap().is_empty());

    let host = enrolled(&store, "web", "web-1").await;
    let head = head_of(store.clone()).await;
    store
        .create_enrollment_token(
            new_token("s2", "web", 1),
            t0(),
            entry(t0(), "token.create", "t"),
        )
        .await
        .unwrap();
    let mut big_key = new_host("h", "m");
    big_key.public_key = "k".repeat(9000);
    let e = store
        .enroll_host(
            SecretHash::of(b"s2"),
            big_key,
            at(2),
            entry(at(2), "host.enroll", "h"),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(
            e,
            StoreError::TooLong {
                field: "public key",
                ..
            }
        ),
        "{e}"
    );

    let mut huge = facts(&"h".repeat(100), "m");
    huge.reboot_reasons = vec!["r".repeat(70_000)];
    let e = store
        .record_check_in(host.id, huge, at(3), entry(at(3), "host.facts", "h"))
        .await
        .unwrap_err();
    assert!(
        matches!(
            e,
            StoreError::TooLong {
                field: "host facts",
                ..
            }
        ),
        "{e}"
    );
    let mut long_machine = facts("h", &"m".repeat(300));
    long_machine.kernel = None;
    let e = store
        .record_check_in(
            host.id,
            long_machine,
            at(3),
            entry(at(3), "host.facts", "h"),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(
            e,
            StoreError::TooLong {
                field: "machine id",
                ..
            }
        ),
        "{e}"
    );

    let labels: BTreeMap<String, String> =
        (0..65).map(|i| (format!("k{i}"), "v".to_owned())).collect();
    let e = store
        .set_host_placement(
            host.id,
            HostPlacement {
                group: "web".into(),
                ring: None,
                labels,
            },
            at(4),
            entry(at(4), "host.place", "h"),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(
            e,
            StoreError::Invalid {
                field: "host labels",
                ..
            }
        ),
        "{e}"
    );

    let job = NewJob {
        id: Uuid::new_v4(),
        host: host.id,
        kind: json!({"kind": "x".repeat(300_000)}),
        created_by: "alice".into(),
    };
    let e = store
        .create_job(job, at(5), entry(at(5), "job.create", "j"))
        .await
        .unwrap_err();
    assert!(
        matches!(
            e,
            StoreError::TooLong {
                field: "job kind",
                ..
            }
        ),
        "{e}"
    );

    let e = store
        .append_audit(at(6), entry(at(6), "a", "o".repeat(300)))
        .await
        .unwrap_err();
    assert!(
        matches!(
            e,
            StoreError::TooLong {
                field: "audit.object",
                ..
            }
        ),
        "{e}"
    );

    // Only the token made in between was recorded.
    let now_head = head_of(store.clone()).await;
    assert_eq!(now_head.map(|h| h.seq), head.map(|h| h.seq + 1));
    assert_eq!(store.get_host(host.id).await.unwrap(), Some(host));
}
