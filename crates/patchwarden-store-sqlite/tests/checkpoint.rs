//! The store checkpoints the WAL itself, beside the writer: the WAL stays short however much
//! is written — in bursts, or in a stream that never pauses — and closing the store leaves
//! everything in the database file.

use std::time::Duration;

use patchwarden_core::advisory::{Advisory, FeedKind, Source};
use patchwarden_store::Store;
use patchwarden_store::conformance::fixtures::{entry, t0};
use patchwarden_store_sqlite::SqliteStore;
use rusqlite::Connection;

fn wal_len(db: &std::path::Path) -> u64 {
    std::fs::metadata(db.with_extension("db-wal")).map_or(0, |m| m.len())
}

#[tokio::test]
async fn bursts_written_beside_the_store_are_checkpointed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.db");
    let store = SqliteStore::open(&path).await.unwrap();
    // Another connection writes 24 MiB in rounds of 2 MiB with pauses between them. It does
    // not checkpoint on its own, so only the store's checkpointer can keep the WAL short
    // (SQLite reuses a WAL from its start once every frame is back in the database).
    let writer = Connection::open(&path).unwrap();
    writer
        .execute_batch(
            "PRAGMA wal_autocheckpoint = 0; CREATE TABLE scratch (id INTEGER PRIMARY KEY, b BLOB);",
        )
        .unwrap();
    let blob = vec![7u8; 64 * 1024];
    let mut longest = 0;
    for _ in 0..12 {
        for _ in 0..32 {
            writer
                .execute("INSERT INTO scratch (b) VALUES (?1)", [&blob])
                .unwrap();
        }
        longest = longest.max(wal_len(&path));
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert!(
        longest < 10 * 1024 * 1024,
        "the WAL grew to {longest} bytes for 24 MiB written: nothing checkpointed it"
    );
    drop(writer);
    drop(store);
    // Closed: the WAL is gone and every row is in the file.
    assert_eq!(wal_len(&path), 0);
    let n: i64 = Connection::open(&path)
        .unwrap()
        .query_row("SELECT count(*) FROM scratch", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 12 * 32);
}

#[tokio::test]
async fn a_stream_of_writes_that_never_pauses_still_gets_the_wal_started_over() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.db");
    let store = SqliteStore::open(&path).await.unwrap();
    // Back-to-back writes through the store, each with a 32 KiB body, for at least 32 MiB and
    // at least 3 s. A checkpoint made only beside the writer never finds the WAL without new
    // frames, so the WAL would never start over; the checkpointer has the writer thread finish
    // each round between two of its transactions. The WAL then holds at most what is written
    // in about one round (a quarter of a second and the checkpoint's own time), so enough
    // rounds must pass for the bound to show: a quick machine writes 32 MiB in one second,
    // about four rounds, and its WAL reached half of it; on a loaded CI machine 3 s wrote only
    // 18 MiB. Time only sets how much is written; what is asserted is sizes.
    let started = std::time::Instant::now();
    let (mut written, mut longest, mut i) = (0u64, 0, 0);
    while written < 32 * 1024 * 1024 || started.elapsed() < Duration::from_secs(3) {
        let mut a = Advisory::new(
            format!("TEST-{i}"),
            Source {
                feed: FeedKind::Osv,
                location: "test".into(),
                document: None,
            },
        );
        a.details = Some("x".repeat(32 * 1024));
        store
            .upsert_advisories(vec![a], t0(), entry(t0(), "advisories.import", "feed:test"))
            .await
            .unwrap();
        written += 32 * 1024;
        i += 1;
        longest = longest.max(wal_len(&path));
    }
    assert!(
        longest < written / 2,
        "the WAL grew to {longest} bytes for {written} written: it never started over"
    );
    drop(store);
    assert_eq!(wal_len(&path), 0);
}
