//! `0007_finding_bodies` on a database that already has findings: every finding keeps its
//! body, identical bodies become one row, and a new finding with a known body shares it.

mod support;

use patchwarden_core::finding::Finding;
use patchwarden_store::{FindingFilter, Store};
use patchwarden_store_sqlite::SqliteStore;
use rusqlite::{Connection, params};
use support::{database_before, finding};

#[tokio::test]
async fn existing_findings_keep_their_bodies_and_identical_ones_are_stored_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.db");
    let hosts = [uuid::Uuid::new_v4(), uuid::Uuid::new_v4()];
    {
        // A database as the release before 0007 left it, with findings of two hosts.
        let c = database_before(&path, "0007_finding_bodies");
        let mut id = 0;
        for host in &hosts {
            for v in ["CVE-1", "CVE-2"] {
                id += 1;
                c.execute(
                    "INSERT INTO findings (id, host, package, arch, vulnerability, state, body,
                                           class, first_seen, last_seen)
                     VALUES (?1, ?2, 'openssl', 'amd64', ?3, 'open', ?4, 'high', 10, 10)",
                    params![
                        id,
                        host.to_string(),
                        v,
                        serde_json::to_string(&finding(v)).unwrap()
                    ],
                )
                .unwrap();
            }
        }
    }
    let store = SqliteStore::open(&path).await.unwrap();
    let all = store
        .list_findings(&FindingFilter::default())
        .await
        .unwrap();
    let got: Vec<(i64, uuid::Uuid, Finding)> =
        all.into_iter().map(|f| (f.id, f.host, f.finding)).collect();
    assert_eq!(
        got,
        vec![
            (1, hosts[0], finding("CVE-1")),
            (2, hosts[0], finding("CVE-2")),
            (3, hosts[1], finding("CVE-1")),
            (4, hosts[1], finding("CVE-2")),
        ]
    );
    // One history step each, from the row itself.
    assert_eq!(store.finding_history(3).await.unwrap().len(), 1);
    drop(store);
    let c = Connection::open(&path).unwrap();
    let (bodies, with_digest): (i64, i64) = c
        .query_row(
            "SELECT count(*), count(digest) FROM finding_bodies",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!((bodies, with_digest), (2, 2));
    let digest: Vec<u8> = c
        .query_row("SELECT digest FROM finding_bodies WHERE id = 1", [], |r| {
            r.get(0)
        })
        .unwrap();
    let body: String = c
        .query_row("SELECT body FROM finding_bodies WHERE id = 1", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(
        digest,
        patchwarden_store::finding::body_digest(&body).to_vec()
    );
}
