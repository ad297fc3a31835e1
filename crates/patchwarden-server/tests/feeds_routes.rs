//! The operator API over the feeds and the triage queue, over HTTP against a real server:
//! sources listed with their freshness (a stale one shows stale), a sync asked for and run by
//! the scheduler, the manual check that makes a manual source fresh, a file import that
//! changes a host's findings, a damaged or oversized upload refused with the data in force
//! kept, an advisory entered by hand that opens a finding and a triage item, and the
//! classification of the queue reaching the findings — each refused for the roles not
//! declared.

mod feeds_support;
mod operator_support;

use std::collections::HashSet;

use feeds_support::{Mode, Publisher, shared_data, zip_of};
use jiff::{SignedDuration, Timestamp};
use operator_support::{PASSWORD, Req, Server, Session};
use patchwarden_api::v1::feeds::{
    FeedFreshness, FeedSourceDetail, FeedSourceView, ImportOutcome, ReviewState, TriageItemView,
    TriagePage,
};
use patchwarden_api::v1::problem::ProblemCode;
use patchwarden_core::audit::{Actor, AuditEntry};
use patchwarden_core::inventory::Inventory;
use patchwarden_server::clock;
use patchwarden_server::feeds::config::SourceConfig;
use patchwarden_store::conformance::fixtures;
use patchwarden_store::feed::{FeedSourceSpec, SourceKind, SourceOrigin};
use patchwarden_store::triage::NewTriageItem;
use patchwarden_store::{Host, Role};

const MAX_IMPORT: u64 = 4 << 20;

async fn server(sources: Vec<SourceConfig>) -> Server {
    Server::start(|c| {
        // The scheduler runs at start and when woken; the test drives it otherwise.
        c.feeds.tick_secs = 3600;
        c.feeds.max_import_bytes = MAX_IMPORT;
        c.feeds.sources = sources;
    })
    .await
}

async fn users(server: &Server) -> Vec<(Role, Session)> {
    let mut out = Vec::new();
    for role in Role::ALL {
        let groups: &[&str] = if role == Role::Provider {
            &["web"]
        } else {
            &[]
        };
        server.user(role.as_str(), &[role], groups).await;
        out.push((role, server.login(role.as_str(), PASSWORD).await));
    }
    out
}

fn as_role(sessions: &[(Role, Session)], role: Role) -> &Session {
    &sessions.iter().find(|(r, _)| *r == role).unwrap().1
}

/// A Debian 12 host in `web` whose packages have real security updates (the Debian listings
/// of the shared data), and the inventory that has them installed.
async fn debian_host(server: &Server) -> (Host, Inventory, Inventory) {
    let store = server.store();
    let (before, after) = fixtures::debian_inventories(3);
    let host = fixtures::enrolled(&store, "web", "web-1").await;
    store
        .replace_inventory(
            host.id,
            &before,
            fixtures::at(2),
            fixtures::entry(fixtures::at(2), "inventory.replace", "host"),
        )
        .await
        .unwrap();
    (host, before, after)
}

/// An OSV record about the source package of `before.packages[i]`, fixed in the version
/// `after` has: the form the OSV Debian records take, with the real package and version.
fn osv_for(
    before: &Inventory,
    after: &Inventory,
    i: usize,
    id: &str,
    cve: &str,
    published: Timestamp,
) -> Vec<u8> {
    let pkg = &before.packages[i];
    let fixed_pkg = &after.packages[i];
    let src = pkg.source_name.clone().unwrap_or_else(|| pkg.name.clone());
    let fixed = fixed_pkg
        .source_version
        .clone()
        .unwrap_or_else(|| fixed_pkg.version.clone());
    serde_json::to_vec(&serde_json::json!({
        "schema_version": "1.6.0",
        "id": id,
        "aliases": [cve],
        "published": published.to_string(),
        "modified": published.to_string(),
        "summary": format!("{src}: security update"),
        "affected": [{
            "package": {"ecosystem": "Debian:12", "name": src},
            "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": fixed}]}]
        }]
    }))
    .unwrap()
}

/// The open findings of `host` as the API lists them.
async fn findings(server: &Server, s: &Session, host: &Host) -> Vec<serde_json::Value> {
    let a = server
        .send(s.apply(Req::get(&format!(
            "/api/v1/findings?host={}&limit=1000",
            host.id
        ))))
        .await;
    assert_eq!(a.status, 200, "{}", a.text());
    let page: serde_json::Value = a.json();
    page["items"].as_array().unwrap().clone()
}

fn upload(path: &str, body: Vec<u8>) -> Req {
    let mut r = Req::post(path).header("content-type", "application/octet-stream");
    r.body = body;
    r
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sources_are_listed_synced_checked_and_imported_over_http() {
    let data = shared_data();
    let publisher = Publisher::start().await;
    let kev = std::fs::read(data.join("kev/known_exploited_vulnerabilities.json")).unwrap();
    publisher.put("/kev.json", kev, Mode::Normal);
    let server = server(vec![SourceConfig {
        name: "cisa-kev".into(),
        kind: "kev".into(),
        location: publisher.url("/kev.json"),
        every: None,
        expected_period: Some("8d".into()),
    }])
    .await;
    let sessions = users(&server).await;
    let officer = as_role(&sessions, Role::Officer);
    let security = as_role(&sessions, Role::Security);
    let provider = as_role(&sessions, Role::Provider);
    let store = server.store();
    // A manual source defined forty days ago and never checked: stale (31 days).
    let long_ago = clock::now() - SignedDuration::from_hours(40 * 24);
    store
        .put_feed_source(
            &FeedSourceSpec {
                name: "acme-firmware".into(),
                kind: SourceKind::Manual,
                location: String::new(),
                interval_secs: None,
                expected_period_secs: Some(31 * 86_400),
                origin: SourceOrigin::Config,
            },
            long_ago,
            AuditEntry::new(
                long_ago,
                Actor::System("test".into()),
                "feed.define",
                "feed:acme-firmware",
            ),
        )
        .await
        .unwrap();

    // Everyone reads the sources, a provider too.
    let a = server.send(provider.apply(Req::get("/api/v1/feeds"))).await;
    assert_eq!(a.status, 200, "{}", a.text());
    let list: Vec<FeedSourceView> = a.json();
    let by_name = |l: &[FeedSourceView], n: &str| l.iter().find(|s| s.name == n).unwrap().clone();
    let acme = by_name(&list, "acme-firmware");
    assert_eq!(acme.freshness, FeedFreshness::Stale);
    assert_eq!(
        acme.stale_at,
        Some(long_ago + SignedDuration::from_hours(31 * 24))
    );
    let kev_view = by_name(&list, "cisa-kev");
    assert_eq!(kev_view.freshness, FeedFreshness::Fresh);
    assert_eq!(kev_view.origin, "config");
    assert!(kev_view.last_success_at.is_none());
    let missing = server
        .send(provider.apply(Req::get("/api/v1/feeds/nothing-here")))
        .await;
    assert_eq!(missing.status, 404);

    // The manual check: refused for an auditor, a note is required, then the source is fresh.
    let check = |s: &Session, note: &str| {
        s.apply(Req::post("/api/v1/feeds/acme-firmware/check"))
            .json(&serde_json::json!({ "note": note }))
    };
    let auditor = as_role(&sessions, Role::Auditor);
    let a = server.send(check(auditor, "looked")).await;
    assert_eq!(a.status, 403);
    assert_eq!(a.code(), Some(ProblemCode::Forbidden));
    let a = server.send(check(officer, "  ")).await;
    assert_eq!(a.status, 400, "{}", a.text());
    let a = server
        .send(check(
            officer,
            "checked the vendor's advisories page: nothing new",
        ))
        .await;
    assert_eq!(a.status, 200, "{}", a.text());
    assert_eq!(a.json::<FeedSourceView>().freshness, FeedFreshness::Fresh);
    let a = server.send(provider.apply(Req::get("/api/v1/feeds"))).await;
    assert_eq!(
        by_name(&a.json::<Vec<FeedSourceView>>(), "acme-firmware").freshness,
        FeedFreshness::Fresh
    );
    // A fetched source is not checked by hand, and a manual one is not synced.
    assert_eq!(
        server
            .send(
                officer
                    .apply(Req::post("/api/v1/feeds/cisa-kev/check"))
                    .json(&serde_json::json!({"note": "x"}))
            )
            .await
            .status,
        409
    );
    assert_eq!(
        server
            .send(officer.apply(Req::post("/api/v1/feeds/acme-firmware/sync")))
            .await
            .status,
        409
    );

    // A sync: refused for an approver; recorded (202); then the scheduler runs it.
    let approver = as_role(&sessions, Role::Approver);
    let a = server
        .send(approver.apply(Req::post("/api/v1/feeds/cisa-kev/sync")))
        .await;
    assert_eq!(a.status, 403);
    let a = server
        .send(officer.apply(Req::post("/api/v1/feeds/cisa-kev/sync")))
        .await;
    assert_eq!(a.status, 202, "{}", a.text());
    assert!(a.json::<FeedSourceView>().sync_requested_at.is_some());
    let state = server.running().state.clone();
    // The woken scheduler may be running it already; either way one round here returns after
    // a run of it (the feed lock serialises them).
    patchwarden_server::feeds::scheduler::tick_once(&state, clock::now(), &mut HashSet::new())
        .await;
    let a = server
        .send(provider.apply(Req::get("/api/v1/feeds/cisa-kev")))
        .await;
    assert_eq!(a.status, 200, "{}", a.text());
    let detail: FeedSourceDetail = a.json();
    assert!(
        detail.runs.iter().any(|r| r.outcome == "imported"),
        "{detail:?}"
    );
    assert!(detail.source.records > 1000, "{detail:?}");
    assert!(detail.source.last_success_at.is_some());
    assert!(
        publisher
            .seen
            .lock()
            .unwrap()
            .iter()
            .any(|s| s.status == 200)
    );

    // A file import that changes the findings of a matching host.
    let (host, before, after) = debian_host(&server).await;
    assert!(findings(&server, officer, &host).await.is_empty());
    let published = Timestamp::from_second(1_700_000_000).unwrap();
    let records: Vec<(String, Vec<u8>)> = (0..3)
        .map(|i| {
            (
                format!("DSA-TEST-{i}.json"),
                osv_for(
                    &before,
                    &after,
                    i,
                    &format!("DSA-TEST-{i}"),
                    &format!("CVE-2023-9990{i}"),
                    published,
                ),
            )
        })
        .collect();
    let zip = zip_of(&records);
    let path = "/api/v1/feeds/import?kind=osv&source=vendor-osv";
    let a = server.send(provider.apply(upload(path, zip.clone()))).await;
    assert_eq!(a.status, 403);
    let a = server.send(security.apply(upload(path, zip.clone()))).await;
    assert_eq!(a.status, 200, "{}", a.text());
    let outcome: ImportOutcome = a.json();
    assert_eq!(outcome.source, "vendor-osv");
    assert_eq!(outcome.outcome, "imported");
    assert_eq!(outcome.records, 3);
    assert_eq!(outcome.changed, 3);
    assert_eq!(outcome.hosts_rematched, 1);
    let open = findings(&server, officer, &host).await;
    assert!(!open.is_empty());
    let advisories = store.advisory_count().await.unwrap();

    // The same file again: read, and nothing changed (the records are named by the upload,
    // not by the server's work file, so an unchanged record is not rewritten).
    let a = server.send(security.apply(upload(path, zip.clone()))).await;
    assert_eq!(a.status, 200, "{}", a.text());
    let again: ImportOutcome = a.json();
    assert_eq!((again.records, again.changed), (3, 0), "{again:?}");

    // A truncated upload (the same archive cut in half): refused, nothing changed.
    let a = server
        .send(security.apply(upload(path, zip[..zip.len() / 2].to_vec())))
        .await;
    assert_eq!(a.status, 400, "{}", a.text());
    assert_eq!(a.code(), Some(ProblemCode::MalformedBody));
    assert!(
        a.text().contains("the data in force is kept"),
        "{}",
        a.text()
    );
    assert!(!a.text().contains(".upload"), "{}", a.text());
    assert_eq!(store.advisory_count().await.unwrap(), advisories);
    assert_eq!(findings(&server, officer, &host).await, open);
    let detail: FeedSourceDetail = server
        .send(officer.apply(Req::get("/api/v1/feeds/vendor-osv")))
        .await
        .json();
    assert_eq!(detail.runs[0].outcome, "failed");
    assert!(detail.runs[0].message.is_some());
    assert_eq!(detail.source.origin, "import");
    // Larger than the limit: 413 before anything is parsed; an empty body is no file.
    let a = server
        .send(security.apply(upload(path, vec![b' '; MAX_IMPORT as usize + 1])))
        .await;
    assert_eq!(a.status, 413, "{}", a.text());
    let a = server.send(security.apply(upload(path, Vec::new()))).await;
    assert_eq!(a.status, 400, "{}", a.text());
    assert_eq!(store.advisory_count().await.unwrap(), advisories);
    // No work file is left behind.
    let work = server.running().state.feeds.work_dir.clone();
    let left: Vec<_> = std::fs::read_dir(&work)
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "{left:?}");

    // Every change is audited with the operator as the actor.
    let events = store.audit_events(0, 10_000).await.unwrap();
    for (action, who) in [
        ("feed.check", "officer"),
        ("feed.sync", "officer"),
        ("feed.import", "security"),
    ] {
        assert!(
            events
                .iter()
                .any(|e| e.entry.action == action && e.entry.actor == Actor::Operator(who.into())),
            "{action} by {who}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_advisory_entered_by_hand_is_triaged_and_its_classification_reaches_the_findings() {
    let server = server(Vec::new()).await;
    let sessions = users(&server).await;
    let officer = as_role(&sessions, Role::Officer);
    let security = as_role(&sessions, Role::Security);
    let provider = as_role(&sessions, Role::Provider);
    let approver = as_role(&sessions, Role::Approver);
    let store = server.store();
    let (host, before, after) = debian_host(&server).await;

    // A new advisory, entered by hand: refused for an approver and for a document that is not
    // an OSV record; then it opens findings and a triage item due in four hours.
    let record = osv_for(
        &before,
        &after,
        0,
        "ACME-2026-7",
        "CVE-2026-99002",
        clock::now(),
    );
    let enter = |s: &Session, body: Vec<u8>| {
        let mut r = s
            .apply(Req::post("/api/v1/advisories"))
            .header("content-type", "application/json");
        r.body = body;
        r
    };
    assert_eq!(
        server.send(enter(approver, record.clone())).await.status,
        403
    );
    let a = server
        .send(enter(
            security,
            br#"{"id": "ACME-X", "affected": [{"package": {"ecosystem": "Debian:12", "name": "x"},
                "ranges": [{"type": "ECOSYSTEM", "events": [{"fixed": "1.0"}]}]}]}"#
                .to_vec(),
        ))
        .await;
    assert_eq!(a.status, 400, "{}", a.text());
    assert!(
        a.text().contains("not a valid OSV advisory"),
        "{}",
        a.text()
    );
    let a = server.send(enter(security, record)).await;
    assert_eq!(a.status, 200, "{}", a.text());
    let outcome: ImportOutcome = a.json();
    assert_eq!(outcome.source, "manual");
    assert_eq!(outcome.hosts_rematched, 1);
    let of_cve = |items: &[serde_json::Value], cve: &str| -> Vec<serde_json::Value> {
        items
            .iter()
            .filter(|f| f["finding"]["vulnerability"] == cve)
            .cloned()
            .collect()
    };
    let open = of_cve(&findings(&server, officer, &host).await, "CVE-2026-99002");
    assert!(!open.is_empty());
    assert!(open.iter().all(|f| f["criticality"] != "not_applicable"));

    // The queue: a provider does not read it; the others do.
    assert_eq!(
        server
            .send(provider.apply(Req::get("/api/v1/triage")))
            .await
            .status,
        403
    );
    let page: TriagePage = server
        .send(approver.apply(Req::get("/api/v1/triage?pending=true")))
        .await
        .json();
    assert_eq!(page.items.len(), 1, "{page:?}");
    let item = page.items[0].clone();
    assert_eq!(item.vulnerability, "CVE-2026-99002");
    assert_eq!(item.advisories, ["ACME-2026-7"]);
    assert_eq!(item.review, ReviewState::Pending);
    assert_eq!(item.due_at, item.arrived_at + SignedDuration::from_hours(4));

    // One that arrived five hours ago and was not reviewed: overdue.
    let arrived = clock::now() - SignedDuration::from_hours(5);
    let late = store
        .enqueue_triage(
            &[NewTriageItem {
                vulnerability: "CVE-2026-99003".into(),
                advisories: vec!["ACME-2026-8".into()],
                summary: None,
                arrived_at: arrived,
                due_at: arrived + SignedDuration::from_hours(4),
            }],
            arrived,
            AuditEntry::new(
                arrived,
                Actor::System("triage".into()),
                "triage.enqueue",
                "t",
            ),
        )
        .await
        .unwrap()[0]
        .clone();
    let overdue: TriagePage = server
        .send(officer.apply(Req::get("/api/v1/triage?overdue=true")))
        .await
        .json();
    assert_eq!(
        overdue.items.iter().map(|i| i.id).collect::<Vec<_>>(),
        [late.id]
    );
    assert_eq!(overdue.items[0].review, ReviewState::Overdue);
    // Paging: one at a time.
    let first: TriagePage = server
        .send(officer.apply(Req::get("/api/v1/triage?limit=1")))
        .await
        .json();
    assert_eq!(first.items.len(), 1);
    let next = first.next_after.expect("a second page");
    let second: TriagePage = server
        .send(officer.apply(Req::get(&format!("/api/v1/triage?limit=1&after={next}"))))
        .await
        .json();
    assert_eq!(second.items.len(), 1);
    assert_ne!(second.items[0].id, first.items[0].id);
    assert_eq!(second.next_after, None);

    // Classifying: refused for an approver; a reason is required; an unknown item is 404.
    let classify = |s: &Session, id: i64, class: &str, reason: &str| {
        s.apply(Req::post(&format!("/api/v1/triage/{id}/classify")))
            .json(&serde_json::json!({"classification": class, "reason": reason}))
    };
    let why = "the daemon is not enabled on any host";
    assert_eq!(
        server
            .send(classify(approver, item.id, "not_applicable", why))
            .await
            .status,
        403
    );
    let a = server
        .send(classify(security, item.id, "not_applicable", " "))
        .await;
    assert_eq!(a.status, 400, "{}", a.text());
    assert_eq!(
        server
            .send(classify(security, 999_999, "low", why))
            .await
            .status,
        404
    );
    let a = server
        .send(classify(security, item.id, "not_applicable", why))
        .await;
    assert_eq!(a.status, 200, "{}", a.text());
    let decided: TriageItemView = a.json();
    assert_eq!(decided.review, ReviewState::DecidedOnTime);
    assert_eq!(decided.reason.as_deref(), Some(why));
    assert_eq!(decided.decided_by.as_deref(), Some("operator security"));
    // The decision is the override on the vulnerability's findings.
    let open = of_cve(&findings(&server, officer, &host).await, "CVE-2026-99002");
    assert!(!open.is_empty());
    assert!(
        open.iter()
            .all(|f| f["criticality"] == "not_applicable" && f["rule"] == "override"),
        "{open:?}"
    );
    // Classified after its due time: late.
    let a = server
        .send(classify(
            officer,
            late.id,
            "high",
            "reachable from the internet",
        ))
        .await;
    assert_eq!(a.status, 200, "{}", a.text());
    assert_eq!(a.json::<TriageItemView>().review, ReviewState::DecidedLate);
    let pending: TriagePage = server
        .send(officer.apply(Req::get("/api/v1/triage?pending=true")))
        .await
        .json();
    assert!(pending.items.is_empty(), "{pending:?}");
    let decided: TriagePage = server
        .send(officer.apply(Req::get("/api/v1/triage?pending=false")))
        .await
        .json();
    assert_eq!(decided.items.len(), 2);
    assert_eq!(
        server
            .send(officer.apply(Req::get("/api/v1/triage?pending=false&overdue=true")))
            .await
            .status,
        400
    );
    // Audited with the operator as the actor.
    let events = store.audit_events(0, 10_000).await.unwrap();
    let c = events
        .iter()
        .find(|e| e.entry.action == "triage.classify")
        .unwrap();
    assert_eq!(c.entry.actor, Actor::Operator("security".into()));
    assert!(
        events.iter().any(|e| e.entry.action == "feed.import"
            && e.entry.actor == Actor::Operator("security".into()))
    );

    // Into a vendor's own manual source (made when missing); an old advisory opens findings
    // but is no new patch to review.
    let old = osv_for(
        &before,
        &after,
        1,
        "ACME-2023-2",
        "CVE-2023-99004",
        Timestamp::from_second(1_700_000_000).unwrap(),
    );
    let mut r = security
        .apply(Req::post("/api/v1/advisories?source=acme-firmware"))
        .header("content-type", "application/json");
    r.body = old;
    let a = server.send(r).await;
    assert_eq!(a.status, 200, "{}", a.text());
    assert_eq!(a.json::<ImportOutcome>().source, "acme-firmware");
    let source: FeedSourceView = server
        .send(officer.apply(Req::get("/api/v1/feeds/acme-firmware")))
        .await
        .json::<FeedSourceDetail>()
        .source;
    assert_eq!(source.records, 1);
    assert!(!of_cve(&findings(&server, officer, &host).await, "CVE-2023-99004").is_empty());
    let all: TriagePage = server
        .send(officer.apply(Req::get("/api/v1/triage")))
        .await
        .json();
    assert_eq!(all.items.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_csaf_provider_is_followed_from_its_metadata_and_imported_as_one_run() {
    let data = shared_data().join("csaf/redhat");
    let publisher = Publisher::start().await;
    let docs = [
        "rhsa-2024_3351.json",
        "rhsa-2023_7201.json",
        "rhsa-2024_2049.json",
        "rhsa-2024_2071.json",
    ];
    let mut index = String::new();
    for d in docs {
        publisher.put(
            &format!("/csaf/white/2024/{d}"),
            std::fs::read(data.join(d)).unwrap(),
            Mode::Normal,
        );
        index.push_str(&format!("2024/{d}\n"));
    }
    // A broken document (a real one cut short), a path out of the directory, and one listed
    // but missing.
    let whole = std::fs::read(data.join("rhsa-2023_3408.json")).unwrap();
    publisher.put(
        "/csaf/white/2024/broken.json",
        whole[..whole.len() / 2].to_vec(),
        Mode::Normal,
    );
    publisher.put("/csaf/outside.json", whole.clone(), Mode::Normal);
    index.push_str("2024/broken.json\n../outside.json\n2024/missing.json\n");
    publisher.put("/csaf/white/index.txt", index.into_bytes(), Mode::Normal);
    let metadata = serde_json::json!({
        "canonical_url": publisher.url("/.well-known/csaf/provider-metadata.json"),
        "distributions": [{"directory_url": publisher.url("/csaf/white")}],
        "metadata_version": "2.0",
        "role": "csaf_provider",
    });
    publisher.put(
        "/.well-known/csaf/provider-metadata.json",
        serde_json::to_vec(&metadata).unwrap(),
        Mode::Normal,
    );
    let server = server(vec![SourceConfig {
        name: "redhat-csaf".into(),
        kind: "csaf".into(),
        location: publisher.url("/.well-known/csaf/provider-metadata.json"),
        every: None,
        expected_period: Some("2d".into()),
    }])
    .await;
    let sessions = users(&server).await;
    let security = as_role(&sessions, Role::Security);
    let state = server.running().state.clone();
    let store = server.store();
    let sync = || security.apply(Req::post("/api/v1/feeds/redhat-csaf/sync"));
    assert_eq!(server.send(sync()).await.status, 202);
    patchwarden_server::feeds::scheduler::tick_once(&state, clock::now(), &mut HashSet::new())
        .await;
    let detail: FeedSourceDetail = server
        .send(security.apply(Req::get("/api/v1/feeds/redhat-csaf")))
        .await
        .json();
    let imported = detail
        .runs
        .iter()
        .find(|r| r.outcome == "imported")
        .unwrap_or_else(|| panic!("{detail:?}"));
    assert_eq!(imported.records, docs.len() as u64, "{imported:?}");
    assert_eq!(detail.source.records, docs.len() as u64);
    assert_eq!(store.advisory_count().await.unwrap(), docs.len() as u64);
    let rejects = imported.rejects.join("\n");
    assert!(rejects.contains("broken.json"), "{rejects}");
    assert!(rejects.contains("../outside.json"), "{rejects}");
    assert!(rejects.contains("missing.json"), "{rejects}");
    assert!(!rejects.contains("csaf-"), "work paths leak: {rejects}");
    // The path out of the directory was never requested.
    assert!(
        !publisher
            .seen
            .lock()
            .unwrap()
            .iter()
            .any(|s| s.path == "/csaf/outside.json")
    );

    // Nothing changed at the provider: the next run imports nothing.
    assert_eq!(server.send(sync()).await.status, 202);
    patchwarden_server::feeds::scheduler::tick_once(&state, clock::now(), &mut HashSet::new())
        .await;
    let detail: FeedSourceDetail = server
        .send(security.apply(Req::get("/api/v1/feeds/redhat-csaf")))
        .await
        .json();
    assert_eq!(detail.runs[0].outcome, "unchanged", "{detail:?}");

    // An index that names nothing importable (every document broken): a failed run, and the
    // advisories in force stay.
    publisher.put(
        "/csaf/white/index.txt",
        b"2024/broken.json\n".to_vec(),
        Mode::Normal,
    );
    assert_eq!(server.send(sync()).await.status, 202);
    patchwarden_server::feeds::scheduler::tick_once(&state, clock::now(), &mut HashSet::new())
        .await;
    let detail: FeedSourceDetail = server
        .send(security.apply(Req::get("/api/v1/feeds/redhat-csaf")))
        .await
        .json();
    assert_eq!(detail.runs[0].outcome, "failed", "{detail:?}");
    assert!(detail.source.last_error.is_some());
    assert_eq!(store.advisory_count().await.unwrap(), docs.len() as u64);
}
