//! Advisory feeds on a real server, fetched from a local HTTP server that serves the real
//! files of `shared/data`: the first fetch imports (200), the second is a 304 and imports
//! nothing, a changed file is imported again, and a truncated download, an archive of invalid
//! records and a catalogue that is not JSON are each refused with the reason recorded while
//! the previous data stays in force. Then: the stale-feed rule with time as a parameter, the
//! triage queue's four-hour clock and a classification reaching the findings, and the lease
//! that lets one server of several fetch.

mod feeds_support;

use std::collections::HashSet;

use feeds_support::{Mode, Publisher, config, members_of, shared_data, zip_of};
use jiff::{SignedDuration, Timestamp};
use patchwarden_core::audit::Actor;
use patchwarden_core::policy::Class;
use patchwarden_core::triage::ReviewStatus;
use patchwarden_server::feeds::{self, config::SourceConfig};
use patchwarden_store::conformance::fixtures;
use patchwarden_store::feed::{Freshness, RunOutcome};
use patchwarden_store::triage::TriageFilter;
use patchwarden_store::{FindingFilter, FindingState};

fn source(name: &str, kind: &str, location: String) -> SourceConfig {
    SourceConfig {
        name: name.into(),
        kind: kind.into(),
        location,
        every: None,
        expected_period: Some("8d".into()),
    }
}

fn operator() -> Actor {
    Actor::Operator("alice".into())
}

fn t(s: &str) -> Timestamp {
    s.parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn feeds_are_fetched_conditionally_and_a_bad_download_leaves_the_data_in_force() {
    let data = shared_data();
    let publisher = Publisher::start().await;
    let alma = data.join("osv/almalinux-all.zip");
    let members = members_of(&alma);
    assert!(members.len() > 5000, "{} members", members.len());
    // First published: the AlmaLinux 8 advisories; later: every release's.
    let first: Vec<_> = members
        .iter()
        .filter(|(n, _)| n.starts_with("almalinux8/"))
        .cloned()
        .collect();
    publisher.put("/osv/all.zip", zip_of(&first), Mode::Normal);
    let kev = std::fs::read(data.join("kev/known_exploited_vulnerabilities.json")).unwrap();
    publisher.put("/kev.json", kev.clone(), Mode::Normal);

    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    cfg.feeds.sources = vec![
        source("almalinux", "osv", publisher.url("/osv/all.zip")),
        source("cisa-kev", "kev", publisher.url("/kev.json")),
    ];
    let running = patchwarden_server::start(&cfg).await.unwrap();
    let state = running.state.clone();
    let store = state.store.clone();
    let now = t("2026-11-26T10:00:00Z");

    // 1. First fetch: 200, imported.
    let synced = feeds::sync_source(&state, "almalinux", operator(), now)
        .await
        .unwrap();
    assert_eq!(synced.run.run.outcome, RunOutcome::Imported);
    assert_eq!(synced.run.run.http_status, Some(200));
    assert_eq!(publisher.last().if_none_match, None);
    let first_count = store.advisory_count().await.unwrap();
    assert!(first_count > 1000, "{first_count} advisories");
    assert_eq!(u64::from(synced.run.run.inserted), first_count);
    assert_eq!(state.matcher().index.advisory_count() as u64, first_count);
    let generation = store.advisory_generation().await.unwrap();
    let events = store.audit_head().await.unwrap().unwrap().seq;

    // 2. Second fetch: the validators are sent, the publisher answers 304, nothing is
    // imported and nothing is appended to the audit chain.
    let later = now + SignedDuration::from_hours(1);
    let synced = feeds::sync_source(&state, "almalinux", operator(), later)
        .await
        .unwrap();
    assert_eq!(synced.run.run.outcome, RunOutcome::NotModified);
    let seen = publisher.last();
    assert_eq!(seen.status, 304);
    assert!(seen.if_none_match.is_some());
    assert_eq!(store.advisory_generation().await.unwrap(), generation);
    assert_eq!(store.audit_head().await.unwrap().unwrap().seq, events);
    let s = store.get_feed_source("almalinux").await.unwrap().unwrap();
    assert_eq!(s.last_updated_at, Some(now), "a 304 is not an update");
    assert_eq!(s.last_success_at, Some(later));

    // A publisher that ignores the validators and sends the same bytes: unchanged, by hash.
    publisher.put("/osv/all.zip", zip_of(&first), Mode::IgnoreValidators);
    let synced = feeds::sync_source(&state, "almalinux", operator(), later)
        .await
        .unwrap();
    assert_eq!(synced.run.run.outcome, RunOutcome::Unchanged);
    assert_eq!(store.advisory_generation().await.unwrap(), generation);

    // 3. The file changed: imported again, the new advisories added.
    let full = std::fs::read(&alma).unwrap();
    publisher.put("/osv/all.zip", full.clone(), Mode::Normal);
    let synced = feeds::sync_source(&state, "almalinux", operator(), later)
        .await
        .unwrap();
    assert_eq!(synced.run.run.outcome, RunOutcome::Imported);
    let full_count = store.advisory_count().await.unwrap();
    assert!(full_count > first_count + 1000, "{full_count}");
    assert_eq!(u64::from(synced.run.run.inserted), full_count - first_count);
    // The AlmaLinux 8 records are unchanged, but for the ids published under two releases,
    // whose later record now stands.
    let run = &synced.run.run;
    assert_eq!(u64::from(run.unchanged + run.updated), first_count);
    assert!(run.updated < 100, "{} updated", run.updated);
    let in_force = store.get_feed_source("almalinux").await.unwrap().unwrap();

    // 4. A truncated download: refused, the reason recorded, the data in force kept.
    let mut changed = members.clone();
    changed.truncate(100);
    publisher.put("/osv/all.zip", zip_of(&changed), Mode::Truncate);
    let synced = feeds::sync_source(&state, "almalinux", operator(), later)
        .await
        .unwrap();
    assert_eq!(synced.run.run.outcome, RunOutcome::Failed);
    let why = synced.run.run.error.clone().unwrap();
    assert!(why.contains("stopped after"), "{why}");
    let s = store.get_feed_source("almalinux").await.unwrap().unwrap();
    assert_eq!(s.last_error.as_deref(), Some(why.as_str()));
    assert_eq!(s.failures, 1);
    assert_eq!(s.validators, in_force.validators);
    assert_eq!(store.advisory_count().await.unwrap(), full_count);
    assert_eq!(state.matcher().index.advisory_count() as u64, full_count);

    // 5. An archive whose every record is invalid (the OSV linter's invalid records):
    // refused with the parser's reasons, the data in force kept.
    let linter = data.join("osv/misc/osv-schema-linter-testdata");
    let invalid: Vec<(String, Vec<u8>)> = [
        "nointroduced-CVE-2023-41045.json",
        "nondistinct-CVE-2018-5407.json",
    ]
    .iter()
    .map(|n| ((*n).to_owned(), std::fs::read(linter.join(n)).unwrap()))
    .collect();
    publisher.put("/osv/all.zip", zip_of(&invalid), Mode::Normal);
    let synced = feeds::sync_source(&state, "almalinux", operator(), later)
        .await
        .unwrap();
    assert_eq!(synced.run.run.outcome, RunOutcome::Failed);
    let why = synced.run.run.error.clone().unwrap();
    assert!(why.contains("every record was rejected (2)"), "{why}");
    assert!(why.contains("nointroduced-CVE-2023-41045.json"), "{why}");
    assert_eq!(store.advisory_count().await.unwrap(), full_count);
    let s = store.get_feed_source("almalinux").await.unwrap().unwrap();
    assert_eq!(s.validators, in_force.validators);
    assert_eq!(s.failures, 2);

    // KEV: imported as enrichment; then a document that is not a catalogue (the CSV form
    // served where the JSON was) is refused and the catalogue in force stays.
    let synced = feeds::sync_source(&state, "cisa-kev", operator(), later)
        .await
        .unwrap();
    assert_eq!(synced.run.run.outcome, RunOutcome::Imported);
    let kev_count = synced.run.run.records;
    assert!(kev_count > 1000, "{kev_count}");
    let csv = std::fs::read(data.join("kev/known_exploited_vulnerabilities.csv")).unwrap();
    publisher.put("/kev.json", csv, Mode::Normal);
    let synced = feeds::sync_source(&state, "cisa-kev", operator(), later)
        .await
        .unwrap();
    assert_eq!(synced.run.run.outcome, RunOutcome::Failed);
    assert!(
        synced
            .run
            .run
            .error
            .as_deref()
            .unwrap()
            .contains("not valid JSON"),
        "{:?}",
        synced.run.run.error
    );
    let docs = store.enrichment_documents().await.unwrap();
    assert_eq!(docs.len(), 1);
    assert_eq!(docs[0].1.len() as u64, kev_count);
    assert!(state.matcher().enrichment.kev_loaded());

    // Every run is kept with its outcome, newest first.
    let runs = store.feed_runs("almalinux", 10).await.unwrap();
    let outcomes: Vec<RunOutcome> = runs.iter().map(|r| r.run.outcome).collect();
    assert_eq!(
        outcomes,
        [
            RunOutcome::Failed,
            RunOutcome::Failed,
            RunOutcome::Imported,
            RunOutcome::Unchanged,
            RunOutcome::NotModified,
            RunOutcome::Imported
        ]
    );
    assert_eq!(runs[0].run.rejected, 2);
    assert_eq!(runs[0].run.rejects.len(), 2);

    // A restarted server has the feeds' advisories and enrichment in force.
    running.shutdown(std::time::Duration::from_secs(5)).await;
    let again = patchwarden_server::start(&cfg).await.unwrap();
    assert_eq!(
        again.state.matcher().index.advisory_count() as u64,
        full_count
    );
    assert!(again.state.matcher().enrichment.kev_loaded());
    again.shutdown(std::time::Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_source_is_stale_after_its_period_and_a_manual_check_makes_it_fresh() {
    let dir = tempfile::tempdir().unwrap();
    let kev = shared_data().join("kev/known_exploited_vulnerabilities.json");
    let mut cfg = config(dir.path());
    cfg.feeds.sources = vec![
        source("kev-file", "kev", kev.display().to_string()),
        SourceConfig {
            name: "acme-firmware".into(),
            kind: "manual".into(),
            location: String::new(),
            every: None,
            expected_period: Some("31d".into()),
        },
    ];
    let running = patchwarden_server::start(&cfg).await.unwrap();
    let state = running.state.clone();
    let store = state.store.clone();
    let defined = store.get_feed_source("kev-file").await.unwrap().unwrap();
    let created = defined.created_at;
    // Never updated: stale eight days after it was defined.
    assert!(
        !defined
            .freshness(created + SignedDuration::from_hours(8 * 24))
            .is_stale()
    );
    assert!(
        defined
            .freshness(created + SignedDuration::from_hours(8 * 24 + 1))
            .is_stale()
    );
    // A path source: imported, then unchanged by its fingerprint.
    let now = created + SignedDuration::from_hours(24);
    let synced = feeds::sync_source(&state, "kev-file", operator(), now)
        .await
        .unwrap();
    assert_eq!(synced.run.run.outcome, RunOutcome::Imported);
    let synced = feeds::sync_source(&state, "kev-file", operator(), now)
        .await
        .unwrap();
    assert_eq!(synced.run.run.outcome, RunOutcome::Unchanged);
    let s = store.get_feed_source("kev-file").await.unwrap().unwrap();
    assert_eq!(
        s.freshness(now + SignedDuration::from_hours(8 * 24)),
        Freshness::Fresh {
            stale_at: now + SignedDuration::from_hours(8 * 24)
        }
    );
    // Nothing new for more than its period: stale, however often it is fetched.
    let much_later = now + SignedDuration::from_hours(9 * 24);
    feeds::sync_source(&state, "kev-file", operator(), much_later)
        .await
        .unwrap();
    let s = store.get_feed_source("kev-file").await.unwrap().unwrap();
    assert!(s.freshness(much_later).is_stale());

    // The monthly manual check (P2): stale after 31 days, fresh again when recorded.
    let acme = store
        .get_feed_source("acme-firmware")
        .await
        .unwrap()
        .unwrap();
    let month = created + SignedDuration::from_hours(31 * 24 + 1);
    assert!(acme.freshness(month).is_stale());
    let checked = feeds::record_check(
        &state,
        "acme-firmware",
        "checked the vendor's advisories page: nothing new",
        operator(),
        month,
    )
    .await
    .unwrap();
    assert!(!checked.freshness(month).is_stale());
    assert!(
        feeds::record_check(&state, "kev-file", "", operator(), month)
            .await
            .is_err()
    );
    // A manual source is not fetched.
    assert!(
        feeds::sync_source(&state, "acme-firmware", operator(), month)
            .await
            .is_err()
    );
    running.shutdown(std::time::Duration::from_secs(5)).await;
}

/// An OSV advisory, written as an operator would for a vendor without a feed, about the source
/// package of the first package of `inventory`, fixed in `fixed`.
fn manual_advisory(
    id: &str,
    cve: &str,
    source: &str,
    fixed: &str,
    published: Timestamp,
) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "schema_version": "1.6.0",
        "id": id,
        "aliases": [cve],
        "published": published.to_string(),
        "modified": published.to_string(),
        "summary": format!("{source}: vendor notice"),
        "affected": [{
            "package": {"ecosystem": "Debian:12", "name": source},
            "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": fixed}]}]
        }]
    }))
    .unwrap()
}

/// A host enrolled in group `web` holding `inventory`.
async fn host_with(
    store: &std::sync::Arc<dyn patchwarden_store::Store>,
    inventory: &patchwarden_core::inventory::Inventory,
) -> patchwarden_store::Host {
    let host = fixtures::enrolled(store, "web", "web-1").await;
    store
        .replace_inventory(
            host.id,
            inventory,
            fixtures::at(2),
            fixtures::entry(fixtures::at(2), "inventory.replace", "host"),
        )
        .await
        .unwrap();
    host
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_advisory_that_affects_the_fleet_is_due_for_review_in_four_hours() {
    let dir = tempfile::tempdir().unwrap();
    let running = patchwarden_server::start(&config(dir.path()))
        .await
        .unwrap();
    let state = running.state.clone();
    let store = state.store.clone();
    // A Debian 12 host whose packages have real security updates.
    let (before, after) = fixtures::debian_inventories(3);
    host_with(&store, &before).await;
    let pkg = &before.packages[0];
    let fixed_pkg = &after.packages[0];
    let src = pkg.source_name.clone().unwrap_or_else(|| pkg.name.clone());
    let fixed = fixed_pkg
        .source_version
        .clone()
        .unwrap_or_else(|| fixed_pkg.version.clone());
    let arrived = t("2026-12-01T08:00:00Z");

    // An old advisory (published a year ago) makes findings but is not a new patch.
    let old = manual_advisory(
        "ACME-2025-1",
        "CVE-2025-99001",
        &src,
        &fixed,
        t("2025-11-01T00:00:00Z"),
    );
    let synced = feeds::enter_advisory(&state, None, &old, operator(), arrived)
        .await
        .unwrap();
    assert_eq!(synced.hosts, 1);
    assert!(
        store
            .list_triage(&TriageFilter::default())
            .await
            .unwrap()
            .is_empty()
    );

    // A new one: in the queue, due four hours after it arrived.
    let new = manual_advisory("ACME-2026-7", "CVE-2026-99002", &src, &fixed, arrived);
    feeds::enter_advisory(&state, Some("acme-firmware"), &new, operator(), arrived)
        .await
        .unwrap();
    let queue = store.list_triage(&TriageFilter::default()).await.unwrap();
    assert_eq!(queue.len(), 1, "{queue:?}");
    let item = &queue[0];
    assert_eq!(item.vulnerability, "CVE-2026-99002");
    assert_eq!(item.advisories, ["ACME-2026-7"]);
    assert_eq!(item.arrived_at, arrived);
    assert_eq!(item.due_at, arrived + SignedDuration::from_hours(4));
    assert_eq!(
        item.status(arrived + SignedDuration::from_mins(239)),
        ReviewStatus::Pending {
            due_at: item.due_at
        }
    );
    let late = arrived + SignedDuration::from_mins(241);
    assert!(item.status(late).is_overdue());
    let overdue = store
        .list_triage(&TriageFilter {
            pending: Some(true),
            due_before: Some(late),
            ..TriageFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(overdue.len(), 1);
    let not_yet = store
        .list_triage(&TriageFilter {
            pending: Some(true),
            due_before: Some(arrived + SignedDuration::from_mins(239)),
            ..TriageFilter::default()
        })
        .await
        .unwrap();
    assert!(not_yet.is_empty());
    // Entering the same advisory again does not restart its clock.
    feeds::enter_advisory(&state, Some("acme-firmware"), &new, operator(), late)
        .await
        .unwrap();
    assert_eq!(
        store.list_triage(&TriageFilter::default()).await.unwrap()[0].arrived_at,
        arrived
    );

    // A classification needs a reason; "not applicable" reaches the host's findings.
    assert!(
        feeds::triage::classify(&state, item.id, Class::NotApplicable, " ", operator(), late)
            .await
            .is_err()
    );
    let open_of = |vuln: &str| {
        let store = store.clone();
        let vuln = vuln.to_owned();
        async move {
            store
                .list_findings(&FindingFilter {
                    vulnerability: Some(vuln),
                    state: Some(FindingState::Open),
                    ..FindingFilter::default()
                })
                .await
                .unwrap()
        }
    };
    let findings = open_of("CVE-2026-99002").await;
    assert!(!findings.is_empty());
    assert!(
        findings
            .iter()
            .all(|f| f.classification.class != Some(Class::NotApplicable))
    );
    let (decided, hosts) = feeds::triage::classify(
        &state,
        item.id,
        Class::NotApplicable,
        "the daemon is not enabled on any host",
        operator(),
        late,
    )
    .await
    .unwrap();
    assert_eq!(hosts, 1);
    assert_eq!(
        decided.status(late),
        ReviewStatus::Decided {
            decided_at: late,
            on_time: false
        }
    );
    let findings = open_of("CVE-2026-99002").await;
    assert!(
        findings.iter().all(|f| {
            f.classification.class == Some(Class::NotApplicable)
                && f.classification.due_at.is_none()
                && f.classification.rule.as_deref() == Some("override")
        }),
        "{findings:?}"
    );
    // The other vulnerability's findings keep the policy's class.
    let other = open_of("CVE-2025-99001").await;
    assert!(
        other
            .iter()
            .all(|f| f.classification.class != Some(Class::NotApplicable))
    );
    // Audited, with who decided and why.
    let events = store.audit_events(0, 1000).await.unwrap();
    let classify = events
        .iter()
        .find(|e| e.entry.action == "triage.classify")
        .unwrap();
    assert_eq!(classify.entry.actor, operator());
    assert_eq!(
        classify.entry.after.as_ref().unwrap()["reason"],
        "the daemon is not enabled on any host"
    );
    // An invalid manual advisory is refused with the OSV parser's reason.
    let bad = br#"{"id": "ACME-X", "affected": [{"package": {"ecosystem": "Debian:12", "name": "x"}, "ranges": [{"type": "ECOSYSTEM", "events": [{"fixed": "1.0"}]}]}]}"#;
    let e = feeds::enter_advisory(&state, None, bad, operator(), late)
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("not a valid OSV advisory"), "{e}");
    running.shutdown(std::time::Duration::from_secs(5)).await;
}

/// An import that changes more advisories than the server reads back whole at once (256, to
/// learn the packages they name) re-matches the hosts on every one of them: 600 advisories
/// each name one of a host's 600 packages, and the host ends with a finding on each.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_import_of_many_advisories_re_matches_hosts_on_each_of_them() {
    const N: usize = 600;
    let dir = tempfile::tempdir().unwrap();
    let running = patchwarden_server::start(&config(dir.path()))
        .await
        .unwrap();
    let state = running.state.clone();
    let store = state.store.clone();
    let (template, _) = fixtures::debian_inventories(1);
    let mut inventory = template.clone();
    inventory.packages = (0..N)
        .map(|i| {
            let mut p = template.packages[0].clone();
            p.name = format!("pwtest{i:04}");
            p.version = "1.0-1".into();
            p.source_name = None;
            p.source_version = None;
            p
        })
        .collect();
    let host = host_with(&store, &inventory).await;
    let feed = dir.path().join("feed");
    std::fs::create_dir(&feed).unwrap();
    for i in 0..N {
        let advisory = manual_advisory(
            &format!("PWTEST-{i:04}"),
            &format!("CVE-2025-{:05}", 10_000 + i),
            &format!("pwtest{i:04}"),
            "1.0-2",
            t("2025-11-01T00:00:00Z"),
        );
        std::fs::write(feed.join(format!("PWTEST-{i:04}.json")), advisory).unwrap();
    }
    let synced = feeds::import_path(
        &state,
        &feed,
        None,
        None,
        operator(),
        t("2026-12-01T08:00:00Z"),
    )
    .await
    .unwrap();
    assert_eq!(synced.run.run.inserted as usize, N);
    assert_eq!(synced.hosts, 1);
    let open = store
        .list_findings(&FindingFilter {
            host: Some(host.id),
            state: Some(FindingState::Open),
            ..FindingFilter::default()
        })
        .await
        .unwrap();
    let packages: HashSet<&str> = open.iter().map(|f| f.finding.package.as_str()).collect();
    assert_eq!(
        packages.len(),
        N,
        "{} packages have a finding",
        packages.len()
    );
    running.shutdown(std::time::Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn of_two_servers_sharing_a_database_only_the_lease_holder_fetches() {
    let dir = tempfile::tempdir().unwrap();
    let kev = shared_data().join("kev/known_exploited_vulnerabilities.json");
    let mut cfg = config(dir.path());
    let mut kev_source = source("kev-file", "kev", kev.display().to_string());
    kev_source.every = Some("1h".into());
    cfg.feeds.sources = vec![kev_source];
    // The first server's scheduler takes the lease at start and fetches the due source.
    let a = patchwarden_server::start(&cfg).await.unwrap();
    let mut waited = 0;
    while a
        .state
        .store
        .get_feed_source("kev-file")
        .await
        .unwrap()
        .unwrap()
        .last_attempt_at
        .is_none()
    {
        assert!(waited < 200, "the scheduler did not fetch the due source");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        waited += 1;
    }
    // A second server on the same database does not hold the lease and fetches nothing.
    let mut cfg_b = cfg.clone();
    cfg_b.listen.api = "127.0.0.1:0".into();
    let b = patchwarden_server::start(&cfg_b).await.unwrap();
    let mut warned = HashSet::new();
    let now = patchwarden_server::clock::now();
    assert!(!feeds::scheduler::tick_once(&b.state, now, &mut warned).await);
    let runs = b.state.store.feed_runs("kev-file", 10).await.unwrap();
    assert_eq!(runs.len(), 1, "fetched once, by the lease holder");
    // The holder's next tick keeps it and finds nothing due.
    assert!(feeds::scheduler::tick_once(&a.state, now, &mut warned).await);
    assert_eq!(
        b.state.store.feed_runs("kev-file", 10).await.unwrap().len(),
        1
    );
    // An import made by one server reaches the other's matcher at its next tick.
    assert!(!b.state.matcher().enrichment.kev_loaded() || b.state.feeds.built_generation() >= 0);
    feeds::scheduler::tick_once(&b.state, now, &mut warned).await;
    assert_eq!(
        b.state.feeds.built_generation(),
        b.state.store.advisory_generation().await.unwrap()
    );
    assert!(b.state.matcher().enrichment.kev_loaded());
    a.shutdown(std::time::Duration::from_secs(5)).await;
    b.shutdown(std::time::Duration::from_secs(5)).await;
}
