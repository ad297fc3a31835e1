//! Conformance: feed sources, the atomic import, runs, enrichment, the scheduler's lease and
//! the triage queue.

use std::sync::Arc;

use patchwarden_core::advisory::{Advisory, FeedKind, KevEntry, RansomwareUse, Source};
use patchwarden_core::audit::AuditEntry;
use patchwarden_core::policy::Class;

use super::fixtures::{at, audit_seq, entry, shared_data};
use super::{TestDatabase, open};
use crate::StoreError;
use crate::feed::{
    EnrichmentDoc, FeedImport, FeedSourceSpec, FetchValidators, NewFeedRun, RunOutcome, SourceKind,
    SourceOrigin,
};
use crate::triage::{NewTriageItem, TriageDecision, TriageFilter};

fn spec(name: &str, kind: SourceKind) -> FeedSourceSpec {
    FeedSourceSpec {
        name: name.into(),
        kind,
        location: match kind {
            SourceKind::Manual => String::new(),
            _ => format!("https://feeds.example.invalid/{name}.json"),
        },
        interval_secs: (kind != SourceKind::Manual).then_some(3600),
        expected_period_secs: Some(7 * 24 * 3600),
        origin: SourceOrigin::Config,
    }
}

fn advisory(id: &str, summary: &str) -> Advisory {
    let mut a = Advisory::new(
        id,
        Source {
            feed: FeedKind::Osv,
            location: format!("https://feeds.example.invalid/osv/{id}.json"),
            document: None,
        },
    );
    a.summary = Some(summary.into());
    a.published = Some(at(0));
    a
}

fn import(source: &str, advisories: Vec<Advisory>, etag: &str) -> FeedImport {
    FeedImport {
        source: source.into(),
        advisories,
        enrichment: None,
        validators: FetchValidators {
            etag: Some(etag.into()),
            last_modified: Some("Wed, 25 Nov 2026 10:00:00 GMT".into()),
            content_sha256: Some(format!("sha-{etag}")),
            cursor: None,
        },
        run: NewFeedRun::new(at(0), RunOutcome::Imported)
            .with_rejects(vec!["osv/bad.json (X-1): no introduced event".into()]),
    }
}

/// The first `n` entries of CISA's real KEV catalogue, as the KEV parser would give them.
fn kev_entries(n: usize) -> Vec<KevEntry> {
    let path = shared_data().join("kev/known_exploited_vulnerabilities.json");
    let text = std::fs::read_to_string(&path).unwrap();
    let doc: serde_json::Value = serde_json::from_str(&text).unwrap();
    let s = |v: &serde_json::Value, k: &str| v[k].as_str().unwrap_or_default().to_owned();
    doc["vulnerabilities"]
        .as_array()
        .unwrap()
        .iter()
        .take(n)
        .map(|v| KevEntry {
            cve: s(v, "cveID"),
            vendor_project: s(v, "vendorProject"),
            product: s(v, "product"),
            vulnerability_name: s(v, "vulnerabilityName"),
            date_added: s(v, "dateAdded").parse().unwrap(),
            due_date: s(v, "dueDate").parse().unwrap(),
            known_ransomware_use: if s(v, "knownRansomwareCampaignUse") == "Known" {
                RansomwareUse::Known
            } else {
                RansomwareUse::Unknown
            },
            short_description: s(v, "shortDescription"),
            required_action: s(v, "requiredAction"),
            notes: s(v, "notes"),
            cwes: Vec::new(),
        })
        .collect()
}

pub async fn feed_sources_round_trip_and_only_changes_are_audited(db: Arc<dyn TestDatabase>) {
    let store = open(&db).await;
    let kev = spec("cisa-kev", SourceKind::Kev);
    let made = store
        .put_feed_source(&kev, at(1), entry(at(1), "feed.define", "feed:cisa-kev"))
        .await
        .unwrap();
    assert_eq!(made.spec, kev);
    assert_eq!(made.created_at, at(1));
    assert_eq!(made.last_attempt_at, None);
    let events = audit_seq(&store).await;
    assert_eq!(events, 1);
    // The same definition again (every restart with the same configuration) changes nothing.
    let again = store
        .put_feed_source(&kev, at(2), entry(at(2), "feed.define", "feed:cisa-kev"))
        .await
        .unwrap();
    assert_eq!(again, made);
    assert_eq!(audit_seq(&store).await, events);
    let mut changed = kev.clone();
    changed.interval_secs = Some(600);
    store
        .put_feed_source(
            &changed,
            at(3),
            entry(at(3), "feed.define", "feed:cisa-kev"),
        )
        .await
        .unwrap();
    assert_eq!(audit_seq(&store).await, events + 1);
    let last = store.audit_events(events, 10).await.unwrap();
    assert_eq!(
        last[0].entry.before.as_ref().unwrap()["interval_secs"],
        3600
    );
    store
        .put_feed_source(
            &spec("acme", SourceKind::Manual),
            at(4),
            entry(at(4), "feed.define", "feed:acme"),
        )
        .await
        .unwrap();
    let all = store.feed_sources().await.unwrap();
    let names: Vec<&str> = all.iter().map(|s| s.spec.name.as_str()).collect();
    assert_eq!(names, ["acme", "cisa-kev"]);
    assert_eq!(
        store
            .get_feed_source("cisa-kev")
            .await
            .unwrap()
            .unwrap()
            .spec,
        changed
    );
    assert_eq!(store.get_feed_source("nope").await.unwrap(), None);
    // A definition the server could not act on is refused before anything is written.
    let mut bad = spec("osv", SourceKind::Osv);
    bad.location = "relative/path".into();
    assert!(matches!(
        store
            .put_feed_source(&bad, at(5), entry(at(5), "feed.define", "feed:osv"))
            .await,
        Err(StoreError::Invalid { .. })
    ));
    // Reopened (a restart), the sources are there.
    let reopened = open(&db).await;
    assert_eq!(reopened.feed_sources().await.unwrap().len(), 2);
}

pub async fn a_feed_import_applies_whole_or_not_at_all(db: Arc<dyn TestDatabase>) {
    let store = open(&db).await;
    store
        .put_feed_source(
            &spec("almalinux", SourceKind::Osv),
            at(0),
            entry(at(0), "feed.define", "feed:almalinux"),
        )
        .await
        .unwrap();
    let g0 = store.advisory_generation().await.unwrap();
    let first = store
        .import_feed(
            import(
                "almalinux",
                vec![advisory("ALSA-1", "a"), advisory("ALSA-2", "b")],
                "e1",
            ),
            at(10),
            entry(at(10), "feed.import", "feed:almalinux"),
        )
        .await
        .unwrap();
    assert_eq!((first.upsert.inserted, first.upsert.updated), (2, 0));
    assert!(first.generation > g0);
    assert_eq!(store.advisory_generation().await.unwrap(), first.generation);
    assert_eq!(first.run.run.inserted, 2);
    assert_eq!(first.run.run.rejected, 1);
    let head = store.audit_events(0, 100).await.unwrap();
    let last = head.last().unwrap();
    assert_eq!(last.entry.action, "feed.import");
    assert_eq!(last.entry.after.as_ref().unwrap()["inserted"], 2);
    let s = store.get_feed_source("almalinux").await.unwrap().unwrap();
    assert_eq!(s.validators.etag.as_deref(), Some("e1"));
    assert_eq!(s.last_updated_at, Some(at(10)));
    assert_eq!(s.last_success_at, Some(at(10)));
    assert_eq!(s.records, 2);

    // An import whose audit entry is refused leaves everything as it was: no advisory, no
    // validator, no run, no generation.
    let refused = store
        .import_feed(
            import(
                "almalinux",
                vec![advisory("ALSA-2", "b, revised"), advisory("ALSA-3", "c")],
                "e2",
            ),
            at(20),
            AuditEntry::new(
                at(20),
                patchwarden_core::audit::Actor::System("t".into()),
                "",
                "x",
            ),
        )
        .await;
    assert!(refused.is_err(), "{refused:?}");
    assert_eq!(store.advisory_count().await.unwrap(), 2);
    let kept = store.advisories().await.unwrap();
    assert_eq!(kept[1].summary.as_deref(), Some("b"));
    let s = store.get_feed_source("almalinux").await.unwrap().unwrap();
    assert_eq!(s.validators.etag.as_deref(), Some("e1"));
    assert_eq!(store.feed_runs("almalinux", 10).await.unwrap().len(), 1);
    assert_eq!(store.advisory_generation().await.unwrap(), first.generation);

    // An overlong advisory id is refused before the transaction.
    let long = advisory(&"A".repeat(300), "x");
    assert!(matches!(
        store
            .import_feed(
                import("almalinux", vec![long], "e3"),
                at(21),
                entry(at(21), "feed.import", "feed:almalinux"),
            )
            .await,
        Err(StoreError::TooLong { .. })
    ));
    // An unknown source is not found.
    assert!(matches!(
        store
            .import_feed(
                import("nope", vec![], "e4"),
                at(22),
                entry(at(22), "feed.import", "feed:nope"),
            )
            .await,
        Err(StoreError::NotFound { .. })
    ));

    // The next import updates one and adds one.
    let second = store
        .import_feed(
            import(
                "almalinux",
                vec![
                    advisory("ALSA-1", "a"),
                    advisory("ALSA-2", "b, revised"),
                    advisory("ALSA-3", "c"),
                ],
                "e2",
            ),
            at(30),
            entry(at(30), "feed.import", "feed:almalinux"),
        )
        .await
        .unwrap();
    assert_eq!(
        (
            second.upsert.inserted,
            second.upsert.updated,
            second.upsert.unchanged
        ),
        (1, 1, 1)
    );
    assert_eq!(second.upsert.changed, ["ALSA-2", "ALSA-3"]);
    assert!(second.generation > first.generation);
}

pub async fn failed_runs_keep_the_data_in_force_and_say_why(db: Arc<dyn TestDatabase>) {
    let store = open(&db).await;
    store
        .put_feed_source(
            &spec("osv", SourceKind::Osv),
            at(0),
            entry(at(0), "feed.define", "feed:osv"),
        )
        .await
        .unwrap();
    store
        .import_feed(
            import("osv", vec![advisory("DSA-1-1", "x")], "e1"),
            at(10),
            entry(at(10), "feed.import", "feed:osv"),
        )
        .await
        .unwrap();
    let events = audit_seq(&store).await;
    let mut failed = NewFeedRun::new(at(20), RunOutcome::Failed);
    failed.error = Some("the download stopped after 1200 of 5000 bytes".into());
    failed.http_status = Some(200);
    let run = store
        .record_feed_run("osv", None, failed.clone(), at(21))
        .await
        .unwrap();
    assert_eq!(run.run, failed);
    let s = store.get_feed_source("osv").await.unwrap().unwrap();
    assert_eq!(
        s.last_error.as_deref(),
        Some("the download stopped after 1200 of 5000 bytes")
    );
    assert_eq!(s.failures, 1);
    assert_eq!(s.last_attempt_at, Some(at(21)));
    assert_eq!(s.last_success_at, Some(at(10)));
    assert_eq!(s.last_updated_at, Some(at(10)));
    assert_eq!(s.validators.etag.as_deref(), Some("e1"));
    store
        .record_feed_run("osv", None, failed, at(31))
        .await
        .unwrap();
    assert_eq!(
        store
            .get_feed_source("osv")
            .await
            .unwrap()
            .unwrap()
            .failures,
        2
    );
    // Bookkeeping: failed runs are not in the audit chain, and the data is untouched.
    assert_eq!(audit_seq(&store).await, events);
    assert_eq!(store.advisory_count().await.unwrap(), 1);

    // A 304 with a new ETag: reached, not updated.
    let validators = FetchValidators {
        etag: Some("e1b".into()),
        ..s.validators.clone()
    };
    store
        .record_feed_run(
            "osv",
            Some(validators),
            NewFeedRun::new(at(40), RunOutcome::NotModified),
            at(41),
        )
        .await
        .unwrap();
    let s = store.get_feed_source("osv").await.unwrap().unwrap();
    assert_eq!((s.failures, s.last_error.as_deref()), (0, None));
    assert_eq!(s.last_success_at, Some(at(41)));
    assert_eq!(s.last_updated_at, Some(at(10)));
    assert_eq!(s.validators.etag.as_deref(), Some("e1b"));
    let runs = store.feed_runs("osv", 10).await.unwrap();
    let outcomes: Vec<RunOutcome> = runs.iter().map(|r| r.run.outcome).collect();
    assert_eq!(
        outcomes,
        [
            RunOutcome::NotModified,
            RunOutcome::Failed,
            RunOutcome::Failed,
            RunOutcome::Imported
        ]
    );
    assert_eq!(runs.last().unwrap().run.rejects.len(), 1);
    assert_eq!(store.feed_runs("osv", 2).await.unwrap().len(), 2);
    // Only the last hundred runs are kept.
    for i in 0..120 {
        store
            .record_feed_run(
                "osv",
                None,
                NewFeedRun::new(at(100 + i), RunOutcome::NotModified),
                at(100 + i),
            )
            .await
            .unwrap();
    }
    assert_eq!(store.feed_runs("osv", 1000).await.unwrap().len(), 100);
}

pub async fn enrichment_is_kept_per_source_and_replaced_whole(db: Arc<dyn TestDatabase>) {
    let store = open(&db).await;
    store
        .put_feed_source(
            &spec("kev", SourceKind::Kev),
            at(0),
            entry(at(0), "feed.define", "feed:kev"),
        )
        .await
        .unwrap();
    assert!(store.enrichment_documents().await.unwrap().is_empty());
    let mut first = import("kev", Vec::new(), "k1");
    first.enrichment = Some(EnrichmentDoc::Kev {
        entries: kev_entries(20),
    });
    store
        .import_feed(first, at(1), entry(at(1), "feed.import", "feed:kev"))
        .await
        .unwrap();
    let docs = store.enrichment_documents().await.unwrap();
    assert_eq!(docs.len(), 1);
    assert_eq!(docs[0].0, "kev");
    assert_eq!(
        docs[0].1,
        EnrichmentDoc::Kev {
            entries: kev_entries(20)
        }
    );
    assert_eq!(
        store.get_feed_source("kev").await.unwrap().unwrap().records,
        20
    );
    let mut second = import("kev", Vec::new(), "k2");
    second.enrichment = Some(EnrichmentDoc::Kev {
        entries: kev_entries(5),
    });
    store
        .import_feed(second, at(2), entry(at(2), "feed.import", "feed:kev"))
        .await
        .unwrap();
    let docs = store.enrichment_documents().await.unwrap();
    assert_eq!(docs[0].1.len(), 5);
}

pub async fn the_scheduler_lease_has_one_holder_until_it_expires(db: Arc<dyn TestDatabase>) {
    let store = open(&db).await;
    let mut racers = Vec::new();
    for i in 0..6 {
        let s = store.clone();
        racers.push(tokio::spawn(async move {
            s.try_lease("feeds", &format!("server-{i}"), at(60), at(0))
                .await
                .unwrap()
        }));
    }
    let mut winners = 0;
    for r in racers {
        winners += usize::from(r.await.unwrap());
    }
    assert_eq!(winners, 1, "exactly one server holds the lease");
    // Whoever holds it renews it; nobody else takes it before it expires.
    let mut holder = None;
    for i in 0..6 {
        let name = format!("server-{i}");
        if store
            .try_lease("feeds", &name, at(90), at(30))
            .await
            .unwrap()
        {
            holder = Some(name);
        }
    }
    let holder = holder.expect("the holder renewed its lease");
    let other = if holder == "server-0" {
        "server-1"
    } else {
        "server-0"
    };
    assert!(
        !store
            .try_lease("feeds", other, at(120), at(89))
            .await
            .unwrap()
    );
    // Expired: another takes it, and the old holder no longer holds it.
    assert!(
        store
            .try_lease("feeds", other, at(150), at(90))
            .await
            .unwrap()
    );
    assert!(
        !store
            .try_lease("feeds", &holder, at(160), at(100))
            .await
            .unwrap()
    );
    // Leases of other names are independent.
    assert!(
        store
            .try_lease("other", &holder, at(160), at(100))
            .await
            .unwrap()
    );
}

pub async fn triage_items_enter_once_and_their_classification_is_audited(
    db: Arc<dyn TestDatabase>,
) {
    let store = open(&db).await;
    let item = |vuln: &str, arrived: i64| NewTriageItem {
        vulnerability: vuln.into(),
        advisories: vec![format!("ALSA-{vuln}")],
        summary: Some("Important: openssl security update".into()),
        arrived_at: at(arrived),
        due_at: at(arrived + 4 * 3600),
    };
    let added = store
        .enqueue_triage(
            &[item("CVE-2024-1", 0), item("CVE-2024-2", 100)],
            at(100),
            entry(at(100), "triage.enqueue", "triage"),
        )
        .await
        .unwrap();
    assert_eq!(added.len(), 2);
    let events = audit_seq(&store).await;
    // Entering again (another host, a later import) adds nothing and appends nothing.
    let again = store
        .enqueue_triage(
            &[item("CVE-2024-1", 500), item("CVE-2024-3", 500)],
            at(500),
            entry(at(500), "triage.enqueue", "triage"),
        )
        .await
        .unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].vulnerability, "CVE-2024-3");
    assert_eq!(audit_seq(&store).await, events + 1);
    let none = store
        .enqueue_triage(
            &[item("CVE-2024-1", 600)],
            at(600),
            entry(at(600), "triage.enqueue", "triage"),
        )
        .await
        .unwrap();
    assert!(none.is_empty());
    assert_eq!(audit_seq(&store).await, events + 1);
    let first = store
        .list_triage(&TriageFilter {
            vulnerability: Some("CVE-2024-1".into()),
            ..TriageFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].arrived_at, at(0), "the first arrival is kept");

    // Overdue at t0 + 4 h + 50 s: the first only.
    let overdue = store
        .list_triage(&TriageFilter {
            pending: Some(true),
            due_before: Some(at(4 * 3600 + 50)),
            ..TriageFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(overdue.len(), 1);
    assert_eq!(overdue[0].vulnerability, "CVE-2024-1");

    let g = store.advisory_generation().await.unwrap();
    let decision = TriageDecision {
        class: Class::NotApplicable,
        reason: "the fleet runs no TLS server with this option".into(),
        decided_by: "operator:alice".into(),
        decided_at: at(3600),
    };
    let decided = store
        .classify_triage(
            first[0].id,
            decision.clone(),
            at(3600),
            entry(at(3600), "triage.classify", "triage:CVE-2024-1"),
        )
        .await
        .unwrap();
    assert_eq!(decided.decision.as_ref(), Some(&decision));
    assert!(store.advisory_generation().await.unwrap() > g);
    let ev = store.audit_events(0, 100).await.unwrap();
    let last = &ev.last().unwrap().entry;
    assert_eq!(last.action, "triage.classify");
    assert_eq!(last.before, None, "a first classification has no before");
    assert_eq!(last.after.as_ref().unwrap()["class"], "not_applicable");
    let pending = store
        .list_triage(&TriageFilter {
            pending: Some(true),
            ..TriageFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(pending.len(), 2);
    let decided_list = store
        .list_triage(&TriageFilter {
            pending: Some(false),
            ..TriageFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(decided_list.len(), 1);
    assert_eq!(decided_list[0], decided);
    assert_eq!(
        store.get_triage(decided.id).await.unwrap(),
        Some(decided.clone())
    );
    let paged = store
        .list_triage(&TriageFilter {
            after_id: Some(decided.id),
            limit: Some(1),
            ..TriageFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(paged.len(), 1);
    assert!(paged[0].id > decided.id);

    // No reason, no classification; an unknown item is not found.
    let mut no_reason = decision.clone();
    no_reason.reason = "  ".into();
    assert!(matches!(
        store
            .classify_triage(
                decided.id,
                no_reason,
                at(3700),
                entry(at(3700), "triage.classify", "t")
            )
            .await,
        Err(StoreError::Invalid { .. })
    ));
    assert!(matches!(
        store
            .classify_triage(
                99_999,
                decision,
                at(3700),
                entry(at(3700), "triage.classify", "t")
            )
            .await,
        Err(StoreError::NotFound { .. })
    ));
}

pub async fn manual_checks_and_sync_requests_are_recorded(db: Arc<dyn TestDatabase>) {
    let store = open(&db).await;
    for (name, kind) in [("acme", SourceKind::Manual), ("kev", SourceKind::Kev)] {
        store
            .put_feed_source(
                &spec(name, kind),
                at(0),
                entry(at(0), "feed.define", "feed"),
            )
            .await
            .unwrap();
    }
    let checked = store
        .record_manual_check(
            "acme",
            "checked acme.example's security page: nothing new",
            at(100),
            entry(at(100), "feed.check", "feed:acme"),
        )
        .await
        .unwrap();
    assert_eq!(checked.last_updated_at, Some(at(100)));
    let runs = store.feed_runs("acme", 5).await.unwrap();
    assert_eq!(runs[0].run.outcome, RunOutcome::Checked);
    assert!(matches!(
        store
            .record_manual_check("kev", "", at(100), entry(at(100), "feed.check", "feed:kev"))
            .await,
        Err(StoreError::Invalid { .. })
    ));
    let asked = store
        .request_feed_sync("kev", at(200), entry(at(200), "feed.sync", "feed:kev"))
        .await
        .unwrap();
    assert_eq!(asked.sync_requested_at, Some(at(200)));
    assert!(asked.is_due(at(200)));
    store
        .record_feed_run(
            "kev",
            None,
            NewFeedRun::new(at(201), RunOutcome::Unchanged),
            at(202),
        )
        .await
        .unwrap();
    let after = store.get_feed_source("kev").await.unwrap().unwrap();
    assert_eq!(after.sync_requested_at, None);
    assert!(!after.is_due(at(300)));
    assert!(matches!(
        store
            .request_feed_sync("nope", at(200), entry(at(200), "feed.sync", "feed:nope"))
            .await,
        Err(StoreError::NotFound { .. })
    ));
}

pub async fn racing_enqueues_queue_each_vulnerability_once(db: Arc<dyn TestDatabase>) {
    let store = open(&db).await;
    let item = |n: usize, arrived: i64| NewTriageItem {
        vulnerability: format!("CVE-2024-{n:04}"),
        advisories: vec![format!("DSA-{n}")],
        summary: n.is_multiple_of(2).then(|| format!("advisory {n}")),
        arrived_at: at(arrived),
        due_at: at(arrived + 4 * 3600),
    };
    let start = audit_seq(&store).await;
    // Eight hosts' first inventories at once, their recent vulnerabilities overlapping (each
    // offers 0..40 shifted by its number, one of them a vulnerability twice).
    let mut racers = Vec::new();
    for host in 0..8usize {
        let store = store.clone();
        let mut items: Vec<NewTriageItem> =
            (0..40).map(|n| item(n + host * 5, host as i64)).collect();
        if host == 3 {
            items.push(item(20, 3));
        }
        racers.push(tokio::spawn(async move {
            store
                .enqueue_triage(
                    &items,
                    at(host as i64),
                    entry(at(host as i64), "triage.enqueue", format!("host:{host}")),
                )
                .await
        }));
    }
    let mut added = Vec::new();
    let mut adders = 0;
    for r in racers {
        let got = r.await.unwrap().unwrap();
        // Each call's items come back in order.
        assert!(
            got.windows(2)
                .all(|w| w[0].vulnerability < w[1].vulnerability)
        );
        if !got.is_empty() {
            adders += 1;
        }
        added.extend(got.into_iter().map(|i| i.vulnerability));
    }
    added.sort();
    let want: Vec<String> = (0..75).map(|n| format!("CVE-2024-{n:04}")).collect();
    assert_eq!(added, want, "every vulnerability queued exactly once");
    assert_eq!(audit_seq(&store).await, start + adders);
    let queued = store.list_triage(&TriageFilter::default()).await.unwrap();
    assert_eq!(queued.len(), 75);
    let even = queued
        .iter()
        .find(|i| i.vulnerability == "CVE-2024-0010")
        .unwrap();
    assert_eq!(even.summary.as_deref(), Some("advisory 10"));
    assert_eq!(even.advisories, vec!["DSA-10".to_owned()]);
}
