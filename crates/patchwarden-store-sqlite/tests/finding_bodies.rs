//! `0007_finding_bodies` on a database that already has findings: every finding keeps its
//! body, identical bodies become one row, and a new finding with a known body shares it.

use patchwarden_core::finding::Finding;
use patchwarden_core::inventory::Manager;
use patchwarden_store::{FindingFilter, Store};
use patchwarden_store_sqlite::SqliteStore;
use patchwarden_store_sqlite::migrate::MIGRATIONS;
use rusqlite::{Connection, params};
use sha2::{Digest, Sha256};

fn finding(vulnerability: &str) -> Finding {
    Finding {
        vulnerability: vulnerability.into(),
        aliases: Vec::new(),
        advisories: vec![format!("DSA-{vulnerability}")],
        manager: Manager::Dpkg,
        package: "openssl".into(),
        arch: Some("amd64".into()),
        source_package: Some("openssl".into()),
        installed: "3.0.11-1~deb12u1".into(),
        fixed: Some("3.0.11-1~deb12u2".into()),
        ecosystem: "Debian:12".into(),
        available_at: None,
        published_at: None,
        explanation: "openssl is below the fixed version".into(),
    }
}

#[tokio::test]
async fn existing_findings_keep_their_bodies_and_identical_ones_are_stored_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.db");
    let hosts = [uuid::Uuid::new_v4(), uuid::Uuid::new_v4()];
    {
        // A database as the release before 0007 left it, with findings of two hosts.
        let c = Connection::open(&path).unwrap();
        c.execute_batch(
            "CREATE TABLE patchwarden_migrations (
                version BIGINT PRIMARY KEY, name TEXT NOT NULL, checksum TEXT NOT NULL)",
        )
        .unwrap();
        let before = MIGRATIONS
            .iter()
            .position(|(n, _)| *n == "0007_finding_bodies")
            .unwrap();
        for (i, (name, sql)) in MIGRATIONS[..before].iter().enumerate() {
            c.execute_batch(sql).unwrap();
            let checksum = patchwarden_store::codec::hex(&Sha256::digest(sql.as_bytes()));
            c.execute(
                "INSERT INTO patchwarden_migrations VALUES (?1, ?2, ?3)",
                params![i as i64 + 1, name, checksum],
            )
            .unwrap();
        }
        c.execute_batch("PRAGMA foreign_keys = OFF").unwrap();
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
