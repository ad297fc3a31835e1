//! The PostgreSQL transactions that send their writes, audit events and `COMMIT` in one flight
//! (whenever `PATCHWARDEN_TEST_POSTGRES` names a database): whichever statement of the flight
//! fails, the upload is rolled back whole (findings, inventory, the host's counts and digest,
//! audit events), and the pool's connections are fit to use after; an upload dropped while
//! its transaction is open leaves nothing behind either.

use std::sync::Arc;
use std::time::Duration;

use patchwarden_core::audit::verify;
use patchwarden_core::inventory::Inventory;
use patchwarden_store::conformance::fixtures::{apply_at, debian_inventories, enrolled};
use patchwarden_store::{CurrentFinding, PreparedUpload, Store, StoreError};
use patchwarden_store_postgres::PgStore;
use uuid::Uuid;

mod common;

/// More than the pool holds, so that every pooled connection is used after a failure.
const PAST_THE_POOL: i64 = 40;

/// What an upload changes: the findings (all states), the host's open count and digest, the
/// held inventory's digest and the audit chain's length.
async fn state(client: &tokio_postgres::Client, host: Uuid) -> (i64, i64, i64, String, String) {
    let row = client
        .query_one(
            "SELECT (SELECT count(*) FROM findings),
                    (SELECT count(*) FROM findings WHERE state = 'open'),
                    h.open_findings, coalesce(h.inventory_digest, ''),
                    coalesce((SELECT digest FROM inventories WHERE host = h.id), '')
             FROM hosts h WHERE h.id = $1",
            &[&host],
        )
        .await
        .unwrap();
    let events: i64 = client
        .query_one("SELECT count(*) FROM audit_events", &[])
        .await
        .unwrap()
        .get(0);
    let (all, open): (i64, i64) = (row.get(0), row.get(1));
    (
        all * 1000 + open,
        row.get(2),
        events,
        row.get(3),
        row.get(4),
    )
}

/// The whole chain read back and verified: the number of events.
async fn chain(store: &Arc<dyn Store>) -> i64 {
    let events = store.audit_events(0, 100_000).await.unwrap();
    match verify(&events) {
        Ok(v) => v.events,
        Err(e) => panic!("the audit chain is broken: {e:?}"),
    }
}

/// `before` with one High finding, on its first package.
fn one_finding(before: &Inventory, after: &Inventory) -> PreparedUpload {
    PreparedUpload::of(
        before,
        &[common::high_finding(before, after, 0, "CVE-2024-0001")],
    )
    .unwrap()
}

async fn open_store(what: &str) -> Option<(tokio_postgres::Client, Arc<dyn Store>, String)> {
    let (client, mut config, schema) = common::scratch_schema(what).await?;
    let app = format!("pw-test-{schema}");
    config.application_name(&app);
    let store: Arc<dyn Store> = Arc::new(
        PgStore::connect(config, format!("{} schema {schema}", common::VAR))
            .await
            .unwrap(),
    );
    Some((client, store, app))
}

#[tokio::test]
async fn a_failing_statement_of_the_flight_rolls_the_whole_upload_back() {
    let Some((client, store, _)) = open_store("the pipelined transactions test").await else {
        return;
    };
    let host = enrolled(&store, "web", "web-1").await;
    let (before, after) = debian_inventories(3);
    let upload = |inventory: &Inventory, current: &[CurrentFinding]| {
        PreparedUpload::of(inventory, current).unwrap()
    };
    apply_at(
        &store,
        host.id,
        upload(
            &before,
            &[
                common::high_finding(&before, &after, 0, "CVE-2024-0001"),
                common::high_finding(&before, &after, 1, "CVE-2024-0002"),
            ],
        ),
        10,
    )
    .await
    .unwrap();
    let held = state(&client, host.id).await;
    assert_eq!((held.0, held.1), (2002, 2));
    client
        .batch_execute(
            "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$
             BEGIN RAISE EXCEPTION 'refused by the test'; END $$",
        )
        .await
        .unwrap();
    // The patched inventory closes both findings and opens a third: every kind of write of
    // the flight has a row to write, and each table in turn refuses its row.
    let patched = [common::high_finding(&before, &after, 2, "CVE-2024-0003")];
    for (table, on) in [
        ("findings", "INSERT"),
        ("findings", "UPDATE"),
        ("hosts", "UPDATE"),
        ("inventories", "UPDATE"),
        ("audit_events", "INSERT"),
    ] {
        client
            .batch_execute(&format!(
                "CREATE TRIGGER refuse BEFORE {on} ON {table}
                 FOR EACH ROW EXECUTE FUNCTION refuse()"
            ))
            .await
            .unwrap();
        let e = apply_at(&store, host.id, upload(&after, &patched), 20)
            .await
            .unwrap_err();
        assert!(
            matches!(&e, StoreError::Backend { reason, .. } if reason.contains("refused by the test")),
            "{table} refusing {on}: {e}"
        );
        assert_eq!(
            state(&client, host.id).await,
            held,
            "{table} refusing {on}: something was written"
        );
        client
            .batch_execute(&format!("DROP TRIGGER refuse ON {table}"))
            .await
            .unwrap();
    }
    // Every pooled connection is fit to use: uploads go through, one after the other and
    // together, and the chain holds.
    let events = chain(&store).await;
    let mut uploads = tokio::task::JoinSet::new();
    for i in 0..PAST_THE_POOL {
        let (store, inventory) = (store.clone(), if i % 2 == 0 { &after } else { &before });
        let prepared = upload(inventory, if i % 2 == 0 { &patched[..] } else { &[] });
        uploads.spawn(async move { apply_at(&store, host.id, prepared, 30 + i).await });
    }
    while let Some(r) = uploads.join_next().await {
        r.unwrap().unwrap();
    }
    assert!(chain(&store).await > events);
    apply_at(&store, host.id, upload(&after, &patched), 100)
        .await
        .unwrap();
    let now = state(&client, host.id).await;
    assert_eq!(now.1, 1, "the patched inventory's one finding is open");
    assert_eq!(now.3, now.4, "the host's digest is its inventory's");
    drop(store);
    common::drop_schema(&client).await;
}

#[tokio::test]
async fn an_upload_dropped_while_it_waits_leaves_nothing_behind() {
    let Some((client, store, app)) = open_store("the pipelined transactions test").await else {
        return;
    };
    let host = enrolled(&store, "web", "web-1").await;
    let (before, after) = debian_inventories(3);
    let held = state(&client, host.id).await;
    // The test's own transaction holds the host's row, so the upload waits in its first
    // flight, and is dropped there.
    client
        .batch_execute(&format!(
            "BEGIN; SELECT 1 FROM hosts WHERE id = '{}' FOR UPDATE",
            host.id
        ))
        .await
        .unwrap();
    let dropped = tokio::time::timeout(
        Duration::from_millis(300),
        apply_at(&store, host.id, one_finding(&before, &after), 10),
    )
    .await;
    assert!(dropped.is_err(), "the upload did not wait for the lock");
    client.batch_execute("COMMIT").await.unwrap();
    // Its session closes once it has the lock and finds its connection gone.
    let mut left = i64::MAX;
    for _ in 0..100 {
        left = client
            .query_one(
                "SELECT count(*) FROM pg_stat_activity
                 WHERE application_name = $1 AND state LIKE 'idle in transaction%'",
                &[&app],
            )
            .await
            .unwrap()
            .get(0);
        if left == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(left, 0, "a session was left in its transaction");
    assert_eq!(state(&client, host.id).await, held);
    // The pool goes on: every connection used, the upload made again goes through.
    for i in 0..PAST_THE_POOL {
        store.get_host(host.id).await.unwrap();
        assert_eq!(store.count_open_findings(host.id).await.unwrap(), 0, "{i}");
    }
    apply_at(&store, host.id, one_finding(&before, &after), 20)
        .await
        .unwrap();
    assert_eq!(state(&client, host.id).await.1, 1);
    chain(&store).await;
    drop(store);
    common::drop_schema(&client).await;
}

#[tokio::test]
async fn a_known_body_gone_from_the_database_fails_one_upload_and_the_retry_stores_it_again() {
    let Some((client, store, _)) = open_store("the pipelined transactions test").await else {
        return;
    };
    let (before, after) = debian_inventories(3);
    let found = |host: Uuid| {
        let store = store.clone();
        async move {
            store
                .list_findings(&patchwarden_store::FindingFilter {
                    host: Some(host),
                    ..patchwarden_store::FindingFilter::default()
                })
                .await
                .unwrap()
        }
    };
    let prepared = || one_finding(&before, &after);
    // The first host's upload stores the body; the store now knows it and sends no text for it.
    let first = enrolled(&store, "web", "web-1").await;
    apply_at(&store, first.id, prepared(), 10).await.unwrap();
    let body = found(first.id).await[0].finding.clone();
    // The body and what names it deleted behind the store's back (as a restore of an earlier
    // backup would): the triggers that refuse it are set aside for the deletion.
    client
        .batch_execute(
            "SET session_replication_role = replica;
             DELETE FROM findings; DELETE FROM finding_bodies;
             SET session_replication_role = origin",
        )
        .await
        .unwrap();
    // A second host with the same finding: the insert finds no body for the digest it names,
    // and the upload is refused whole rather than attached to anything else.
    let second = enrolled(&store, "web", "web-2").await;
    let held = state(&client, second.id).await;
    let e = apply_at(&store, second.id, prepared(), 20)
        .await
        .unwrap_err();
    assert!(
        matches!(&e, StoreError::Backend { reason, .. } if reason.contains("body_id")),
        "{e}"
    );
    assert_eq!(state(&client, second.id).await, held);
    // The store forgot what it knew: the retry stores the body again, and the finding reads
    // back with it.
    apply_at(&store, second.id, prepared(), 30).await.unwrap();
    let stored = found(second.id).await;
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].finding, body);
    let bodies: i64 = client
        .query_one("SELECT count(*) FROM finding_bodies", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(bodies, 1);
    chain(&store).await;
    drop(store);
    common::drop_schema(&client).await;
}

#[tokio::test]
async fn inventories_are_compressed_with_lz4_and_read_back_whole() {
    let Some((client, store, _)) = open_store("the pipelined transactions test").await else {
        return;
    };
    // Enough packages for PostgreSQL to compress the row (past some 2 KiB).
    let (before, _) = debian_inventories(200);
    let host = enrolled(&store, "web", "web-1").await;
    apply_at(
        &store,
        host.id,
        PreparedUpload::of(&before, &[]).unwrap(),
        10,
    )
    .await
    .unwrap();
    let method: Option<String> = client
        .query_one(
            "SELECT pg_column_compression(inventory) FROM inventories WHERE host = $1",
            &[&host.id],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(method.as_deref(), Some("lz4"));
    let stored = store.get_inventory(host.id).await.unwrap().unwrap();
    assert_eq!(stored.inventory, before);
    drop(store);
    common::drop_schema(&client).await;
}
