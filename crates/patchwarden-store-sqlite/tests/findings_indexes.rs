//! `0010_findings_indexes` on a database that already has hosts and findings: every finding
//! gets its host's `seq`, lookups by host (open, closed, both) find the same rows as before,
//! a sync of a migrated host works on its findings, and a host enrolled afterwards gets the
//! next `seq`. Then `0011_host_finding_counts` counts each host's open findings, and those
//! with a released fix, on its row.

mod support;

use std::sync::Arc;

use patchwarden_store::conformance::fixtures::{at, enrolled, entry};
use patchwarden_store::{FindingFilter, FindingState, Store};
use patchwarden_store_sqlite::SqliteStore;
use rusqlite::{Connection, params};
use support::{database_before, finding};

#[tokio::test]
async fn existing_findings_get_their_hosts_seq_and_are_found_by_host() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.db");
    let hosts = [uuid::Uuid::new_v4(), uuid::Uuid::new_v4()];
    {
        // A database as the release before 0010 left it: two hosts, each with an open and a
        // closed finding.
        let c = database_before(&path, "0010_findings_indexes");
        for (id, v) in [(1, "CVE-1"), (2, "CVE-2")] {
            let body = serde_json::to_string(&finding(v)).unwrap();
            let digest = patchwarden_store::finding::body_digest(&body);
            c.execute(
                "INSERT INTO finding_bodies (id, digest, body) VALUES (?1, ?2, ?3)",
                params![id, &digest[..], body],
            )
            .unwrap();
        }
        for (n, host) in hosts.iter().enumerate() {
            c.execute(
                "INSERT INTO hosts (id, grp, labels, public_key, facts, enrolled_with,
                                    enrolled_at, state)
                 VALUES (?1, 'g', '{}', 'k', '{}', 't', 1, 'active')",
                [host.to_string()],
            )
            .unwrap();
            for (state, v, body) in [("open", "CVE-1", 1), ("closed", "CVE-2", 2)] {
                c.execute(
                    "INSERT INTO findings (host, package, arch, vulnerability, state, body_id,
                                           first_seen, last_seen)
                     VALUES (?1, 'openssl', 'amd64', ?2, ?3, ?4, ?5, ?5)",
                    params![host.to_string(), v, state, body, n as i64],
                )
                .unwrap();
            }
        }
    }
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&path).await.unwrap());
    for host in hosts {
        let of = |state| FindingFilter {
            host: Some(host),
            state,
            ..FindingFilter::default()
        };
        let both = store.list_findings(&of(None)).await.unwrap();
        assert_eq!(both.len(), 2);
        assert!(both.iter().all(|f| f.host == host));
        let open = store
            .list_findings(&of(Some(FindingState::Open)))
            .await
            .unwrap();
        assert_eq!(open.len(), 1);
        assert_eq!(open[0].finding, finding("CVE-1"));
        let closed = store
            .list_findings(&of(Some(FindingState::Closed)))
            .await
            .unwrap();
        assert_eq!(closed.len(), 1);
        assert_eq!(closed[0].finding, finding("CVE-2"));
        assert_eq!(store.count_open_findings(host).await.unwrap(), 1);
        // The open one names a fixed version; the closed one is not counted.
        assert!(store.has_open_fixable_finding(host).await.unwrap());
    }

    // A sync of a migrated host with nothing current closes its open finding.
    let sync = store
        .sync_findings(
            hosts[0],
            &[],
            &[],
            at(100),
            entry(at(100), "findings.sync", "h"),
        )
        .await
        .unwrap();
    assert_eq!((sync.closed, sync.kept, sync.opened), (1, 0, 0));
    assert_eq!(store.count_open_findings(hosts[0]).await.unwrap(), 0);
    assert!(!store.has_open_fixable_finding(hosts[0]).await.unwrap());
    assert_eq!(store.count_open_findings(hosts[1]).await.unwrap(), 1);

    // A host enrolled now comes after the migrated ones.
    let new = enrolled(&store, "g", "new-host").await;
    drop(store);
    let c = Connection::open(&path).unwrap();
    let seqs: Vec<(String, i64)> = c
        .prepare("SELECT id, seq FROM hosts ORDER BY seq")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(seqs.len(), 3);
    assert_eq!(seqs[2], (new.id.to_string(), 3));
    let unkeyed: i64 = c
        .query_row(
            "SELECT count(*) FROM findings WHERE host_seq IS NULL",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(unkeyed, 0);
}
