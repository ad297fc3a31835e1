//! `0018_finding_subjects` on a database that already has findings (whenever
//! `PATCHWARDEN_TEST_POSTGRES` names a database): each distinct key becomes one subject,
//! every finding and body names its key's subject, a body no finding names goes, and the
//! store then recognises the findings it had — a sync of the same findings keeps them, a new
//! one opens — and lists them by vulnerability.

use std::sync::Arc;

use patchwarden_core::policy::Class;
use patchwarden_store::conformance::fixtures::{at, entry, openssl_finding};
use patchwarden_store::{Classification, CurrentFinding, FindingFilter, FindingState, Store};
use patchwarden_store_postgres::PgStore;
use sha2::{Digest, Sha256};

mod common;

/// An openssl finding for `vuln`, or (`tzdata`) one on a package with no architecture.
fn finding(vuln: &str, tzdata: bool) -> patchwarden_core::finding::Finding {
    let mut f = openssl_finding(vuln);
    if tzdata {
        f.package = "tzdata".into();
        f.source_package = Some("tzdata".into());
        f.arch = None;
    }
    f
}

fn current(vuln: &str, tzdata: bool) -> CurrentFinding {
    CurrentFinding {
        finding: Arc::new(finding(vuln, tzdata)),
        classification: Classification {
            class: Some(Class::High),
            due_at: None,
            policy: None,
            rule: None,
        },
        body: None,
    }
}

#[tokio::test]
async fn existing_findings_get_their_subjects_and_are_recognised_by_the_next_sync() {
    let Some((client, config, _)) =
        common::scratch_schema("the 0018_finding_subjects migration test").await
    else {
        return;
    };
    common::migrate_before(&client, "0018_finding_subjects").await;
    client
        .batch_execute("SET session_replication_role = replica")
        .await
        .unwrap();
    let hosts = [uuid::Uuid::new_v4(), uuid::Uuid::new_v4()];
    for host in &hosts {
        client
            .execute(
                "INSERT INTO hosts (id, grp, labels, public_key, facts, enrolled_with, enrolled_at)
                 VALUES ($1, 'g', '{}', $2, '{}', $1, 1)",
                &[host, &host.to_string()],
            )
            .await
            .unwrap();
    }
    // The bodies as the store wrote them, and one named by no finding (its finding's text
    // changed since).
    let mut body_ids = std::collections::HashMap::new();
    for (vuln, tzdata) in [
        ("CVE-1", false),
        ("CVE-2", false),
        ("CVE-3", true),
        ("CVE-OLD", false),
    ] {
        let text = serde_json::to_string(&finding(vuln, tzdata)).unwrap();
        let digest = Sha256::digest(text.as_bytes()).to_vec();
        let row = client
            .query_one(
                "INSERT INTO finding_bodies (digest, body) VALUES ($1, $2) RETURNING id",
                &[&digest, &text],
            )
            .await
            .unwrap();
        body_ids.insert(vuln, row.get::<_, i64>(0));
    }
    // Host 0: CVE-1 closed once and open again, CVE-2, and tzdata's CVE-3 (no architecture).
    // Host 1: CVE-1 open, CVE-2 closed.
    let rows: [(usize, &str, &str, &str, &str); 6] = [
        (0, "openssl", "amd64", "CVE-1", "closed"),
        (0, "openssl", "amd64", "CVE-1", "open"),
        (0, "openssl", "amd64", "CVE-2", "open"),
        (0, "tzdata", "", "CVE-3", "open"),
        (1, "openssl", "amd64", "CVE-1", "open"),
        (1, "openssl", "amd64", "CVE-2", "closed"),
    ];
    for (h, package, arch, vuln, state) in rows {
        let closed_at = (state == "closed").then_some(20i64);
        client
            .execute(
                "INSERT INTO findings (host, package, arch, vulnerability, state, body_id, class,
                                       first_seen, last_seen, closed_at)
                 VALUES ($1, $2, $3, $4, $5, $6, 'high', 10, 10, $7)",
                &[
                    &hosts[h],
                    &package,
                    &arch,
                    &vuln,
                    &state,
                    &body_ids[vuln],
                    &closed_at,
                ],
            )
            .await
            .unwrap();
    }
    client
        .batch_execute("SET session_replication_role = origin")
        .await
        .unwrap();

    let store: Arc<dyn Store> = Arc::new(PgStore::connect(config, "test".into()).await.unwrap());

    // One subject a key; every finding names its own key's, and every body its findings'.
    let subjects: Vec<(String, String, String)> = client
        .query(
            "SELECT package, arch, vulnerability FROM finding_subjects ORDER BY 1, 2, 3",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    let key = |p: &str, a: &str, v: &str| (p.to_owned(), a.to_owned(), v.to_owned());
    assert_eq!(
        subjects,
        vec![
            key("openssl", "amd64", "CVE-1"),
            key("openssl", "amd64", "CVE-2"),
            key("tzdata", "", "CVE-3"),
        ]
    );
    let mismatched = client
        .query_one(
            "SELECT count(*) FROM findings f JOIN finding_bodies b ON b.id = f.body_id
             WHERE b.subject <> f.subject",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(mismatched.get::<_, i64>(0), 0);
    let bodies: Vec<String> = client
        .query(
            "SELECT s.vulnerability FROM finding_bodies b
             JOIN finding_subjects s ON s.id = b.subject ORDER BY 1",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(bodies, ["CVE-1", "CVE-2", "CVE-3"], "the orphan body went");

    // Listed by vulnerability through the subjects: both hosts' CVE-1, the closed one too.
    let listed: Vec<(uuid::Uuid, FindingState)> = store
        .list_findings(&FindingFilter {
            vulnerability: Some("CVE-1".into()),
            ..FindingFilter::default()
        })
        .await
        .unwrap()
        .into_iter()
        .map(|f| (f.host, f.state))
        .collect();
    assert_eq!(
        listed,
        vec![
            (hosts[0], FindingState::Closed),
            (hosts[0], FindingState::Open),
            (hosts[1], FindingState::Open),
        ]
    );

    // A host's sync, as (opened, kept, closed, reclassified).
    let sync = |host: uuid::Uuid, findings: Vec<CurrentFinding>| {
        let store = store.clone();
        async move {
            let s = store
                .sync_findings(
                    host,
                    &findings,
                    &[],
                    at(30),
                    entry(at(30), "findings.sync", "h"),
                )
                .await
                .unwrap();
            (s.opened, s.kept, s.closed, s.reclassified)
        }
    };
    // The next sync finds the same findings as the ones it has: nothing opens or closes.
    let same = vec![
        current("CVE-1", false),
        current("CVE-2", false),
        current("CVE-3", true),
    ];
    assert_eq!(sync(hosts[0], same).await, (0, 3, 0, 0));
    // A finding whose body went with the migration, and a new one, open with their subjects.
    let more = vec![
        current("CVE-1", false),
        current("CVE-OLD", false),
        current("CVE-4", true),
    ];
    assert_eq!(sync(hosts[1], more).await, (2, 1, 0, 0));
    let open: Vec<(String, String)> = store
        .list_findings(&FindingFilter {
            host: Some(hosts[1]),
            state: Some(FindingState::Open),
            ..FindingFilter::default()
        })
        .await
        .unwrap()
        .into_iter()
        .map(|f| (f.finding.package, f.finding.vulnerability))
        .collect();
    assert_eq!(
        open,
        vec![
            ("openssl".into(), "CVE-1".into()),
            ("openssl".into(), "CVE-OLD".into()),
            ("tzdata".into(), "CVE-4".into()),
        ]
    );
    let subjects = client
        .query_one("SELECT count(*) FROM finding_subjects", &[])
        .await
        .unwrap();
    assert_eq!(subjects.get::<_, i64>(0), 5);

    drop(store);
    common::drop_schema(&client).await;
}
