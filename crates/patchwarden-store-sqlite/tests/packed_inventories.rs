//! Inventories are stored packed (compressed JSON, a BLOB in the `inventory` column): they read
//! back whole, rows written as JSON text by earlier releases still read, and a damaged row is
//! a typed error naming it, never a panic or a wrong inventory.

use std::sync::Arc;

use patchwarden_store::conformance::fixtures::{debian_inventories, enrolled, entry, t0};
use patchwarden_store::{Store, StoreError};
use patchwarden_store_sqlite::SqliteStore;
use rusqlite::types::Value;
use rusqlite::{Connection, params};

/// A store with one host holding a 300-package inventory, and the database's path.
async fn store_with_inventory() -> (
    tempfile::TempDir,
    std::path::PathBuf,
    Arc<dyn Store>,
    uuid::Uuid,
    patchwarden_core::inventory::Inventory,
) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pw.db");
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&path).await.unwrap());
    let host = enrolled(&store, "fleet", "packed").await;
    let (mut inventory, _) = debian_inventories(300);
    inventory.canonicalize();
    store
        .replace_inventory(
            host.id,
            &inventory,
            t0(),
            entry(t0(), "inventory.replace", format!("host:{}", host.id)),
        )
        .await
        .unwrap();
    (dir, path, store, host.id, inventory)
}

fn stored(path: &std::path::Path, host: uuid::Uuid) -> (String, i64) {
    Connection::open(path)
        .unwrap()
        .query_row(
            "SELECT typeof(inventory), length(inventory) FROM inventories WHERE host = ?1",
            [host.to_string()],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap()
}

fn overwrite(path: &std::path::Path, host: uuid::Uuid, value: Value) {
    Connection::open(path)
        .unwrap()
        .execute(
            "UPDATE inventories SET inventory = ?2 WHERE host = ?1",
            params![host.to_string(), value],
        )
        .unwrap();
}

#[tokio::test]
async fn an_inventory_is_stored_packed_and_reads_back_whole() {
    let (_dir, path, store, host, inventory) = store_with_inventory().await;
    let json = serde_json::to_string(&inventory).unwrap();
    let (kind, len) = stored(&path, host);
    assert_eq!(kind, "blob");
    // Package listings are repetitive: packed, they take a fraction of their JSON.
    assert!(
        len * 3 < json.len() as i64,
        "packed {len} bytes of {} bytes of JSON",
        json.len()
    );
    let got = store.get_inventory(host).await.unwrap().unwrap();
    assert_eq!(got.inventory, inventory);
}

#[tokio::test]
async fn an_inventory_written_as_json_text_by_an_earlier_release_still_reads() {
    let (_dir, path, store, host, inventory) = store_with_inventory().await;
    let json = serde_json::to_string(&inventory).unwrap();
    overwrite(&path, host, Value::Text(json));
    assert_eq!(stored(&path, host).0, "text");
    let got = store.get_inventory(host).await.unwrap().unwrap();
    assert_eq!(got.inventory, inventory);
}

#[tokio::test]
async fn a_damaged_inventory_row_is_a_typed_error_naming_it() {
    let (_dir, path, store, host, inventory) = store_with_inventory().await;
    let packed: Vec<u8> = Connection::open(&path)
        .unwrap()
        .query_row(
            "SELECT inventory FROM inventories WHERE host = ?1",
            [host.to_string()],
            |r| r.get(0),
        )
        .unwrap();
    let json = serde_json::to_string(&inventory).unwrap();
    let mut flipped = packed.clone();
    let middle = flipped.len() / 2;
    flipped[middle] ^= 0x55;
    for damaged in [
        // Not zlib at all.
        Value::Blob(b"\x00\x11\x22\x33 not packed".to_vec()),
        // A packed inventory cut short (its end and checksum are gone).
        Value::Blob(packed[..packed.len() / 2].to_vec()),
        // A byte changed: the stream no longer decodes, or its checksum no longer matches.
        Value::Blob(flipped),
        // Packed, but not an inventory.
        Value::Blob(patchwarden_store::codec::pack("[1, 2, 3]")),
        // Text, but not JSON.
        Value::Text(json[..json.len() / 2].to_owned()),
        // Neither packed nor text.
        Value::Integer(7),
    ] {
        overwrite(&path, host, damaged.clone());
        match store.get_inventory(host).await {
            Err(StoreError::Corrupt { table, key, .. }) => {
                assert_eq!(table, "inventories");
                assert_eq!(key, host.to_string());
            }
            other => panic!("{damaged:?}: {other:?}"),
        }
    }
    // The intact row, put back, reads again: nothing was cached from the damaged ones.
    overwrite(&path, host, Value::Blob(packed));
    let got = store.get_inventory(host).await.unwrap().unwrap();
    assert_eq!(got.inventory, inventory);
}
