//! `0007_finding_bodies` on a database that already has findings (whenever
//! `PATCHWARDEN_TEST_POSTGRES` names a database): every finding keeps its body, identical
//! bodies become one row under the SHA-256 the store computes, and the store reads them back;
//! and the migrations after it count them on their hosts' rows (`0011_host_finding_counts`) and
//! put each host's earliest due date there (`0017_findings_due_by_host`).

use patchwarden_store::{FindingFilter, Store};
use patchwarden_store_postgres::PgStore;

mod common;

#[tokio::test]
async fn existing_findings_keep_their_bodies_and_identical_ones_are_stored_once() {
    let Some((client, config, _)) =
        common::scratch_schema("the 0007_finding_bodies migration test").await
    else {
        return;
    };
    // A database as the release before 0007 left it, with findings of two hosts.
    common::migrate_before(&client, "0007_finding_bodies").await;
    let hosts = [uuid::Uuid::new_v4(), uuid::Uuid::new_v4()];
    let body = |v: &str| {
        serde_json::to_string(&patchwarden_store::conformance::fixtures::openssl_finding(
            v,
        ))
        .unwrap()
    };
    client
        .batch_execute("SET session_replication_role = replica")
        .await
        .unwrap();
    // Due dates (nanoseconds), for `0017_findings_due_by_host`: each host's earliest goes on
    // its row.
    let due = |host: usize, v: &str| -> Option<i64> {
        match (host, v) {
            (0, "CVE-1") => Some(100_000_000_000),
            (1, "CVE-1") => Some(5_000_000_000_000),
            (1, "CVE-2") => Some(200_000_000_000),
            _ => None,
        }
    };
    for (i, host) in hosts.iter().enumerate() {
        client
            .execute(
                "INSERT INTO hosts (id, grp, labels, public_key, facts, enrolled_with, enrolled_at)
                 VALUES ($1, 'g', '{}', 'k', '{}', $1, 1)",
                &[host],
            )
            .await
            .unwrap();
        for v in ["CVE-1", "CVE-2"] {
            client
                .execute(
                    "INSERT INTO findings (host, package, arch, vulnerability, state, body, class,
                                           due_at, first_seen, last_seen)
                     VALUES ($1, 'openssl', 'amd64', $2, 'open', $3, 'high', $4, 10, 10)",
                    &[host, &v, &body(v), &due(i, v)],
                )
                .await
                .unwrap();
        }
    }
    client
        .batch_execute("SET session_replication_role = origin")
        .await
        .unwrap();
    let store = PgStore::connect(config.clone(), "test".into())
        .await
        .unwrap();
    let all = store
        .list_findings(&FindingFilter::default())
        .await
        .unwrap();
    let got: Vec<(uuid::Uuid, String)> = all
        .iter()
        .map(|f| (f.host, f.finding.vulnerability.clone()))
        .collect();
    assert_eq!(
        got,
        vec![
            (hosts[0], "CVE-1".into()),
            (hosts[0], "CVE-2".into()),
            (hosts[1], "CVE-1".into()),
            (hosts[1], "CVE-2".into()),
        ]
    );
    assert_eq!(all[2].finding.fixed.as_deref(), Some("3.0.11-1~deb12u2"));
    assert_eq!(store.finding_history(all[2].id).await.unwrap().len(), 1);
    // Both hosts' open findings, both with a released fix, are counted on their rows.
    for host in hosts {
        assert_eq!(store.count_open_findings(host).await.unwrap(), 2);
        assert!(store.has_open_fixable_finding(host).await.unwrap());
    }
    // The open findings due before 1,000 s, fleet-wide, found through their hosts' rows.
    let due_soon: Vec<(uuid::Uuid, String)> = store
        .list_findings(&FindingFilter {
            state: Some(patchwarden_store::FindingState::Open),
            due_before: Some(jiff::Timestamp::from_second(1000).unwrap()),
            ..FindingFilter::default()
        })
        .await
        .unwrap()
        .into_iter()
        .map(|f| (f.host, f.finding.vulnerability))
        .collect();
    assert_eq!(
        due_soon,
        vec![(hosts[0], "CVE-1".into()), (hosts[1], "CVE-2".into())]
    );
    for (host, next) in hosts.iter().zip([100_000_000_000i64, 200_000_000_000]) {
        let row = client
            .query_one("SELECT next_due FROM hosts WHERE id = $1", &[host])
            .await
            .unwrap();
        assert_eq!(row.get::<_, Option<i64>>(0), Some(next));
    }
    let rows = client
        .query("SELECT digest, body FROM finding_bodies ORDER BY id", &[])
        .await
        .unwrap();
    assert_eq!(rows.len(), 2);
    for r in &rows {
        let digest: Vec<u8> = r.get(0);
        let body: String = r.get(1);
        assert_eq!(
            digest,
            patchwarden_store::finding::body_digest(&body).to_vec()
        );
    }
    drop(store);
    common::drop_schema(&client).await;
}
