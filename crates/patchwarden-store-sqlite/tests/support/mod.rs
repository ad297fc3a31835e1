//! What the migration tests share: a database file as an older release left it, and the
//! finding they store in it (the store's fixture).

use std::path::Path;

pub(crate) use patchwarden_store::conformance::fixtures::openssl_finding as finding;
use patchwarden_store_sqlite::migrate::MIGRATIONS;
use rusqlite::{Connection, params};
use sha2::{Digest, Sha256};

/// A new database at `path` with every migration before `migration` applied and recorded, as
/// the release before it left databases; foreign keys off, so that a test can add rows
/// without the tokens and hosts they would name.
pub(crate) fn database_before(path: &Path, migration: &str) -> Connection {
    let c = Connection::open(path).unwrap();
    c.execute_batch(
        "CREATE TABLE patchwarden_migrations (
            version BIGINT PRIMARY KEY, name TEXT NOT NULL, checksum TEXT NOT NULL)",
    )
    .unwrap();
    let before = MIGRATIONS
        .iter()
        .position(|(n, _)| *n == migration)
        .unwrap_or_else(|| panic!("no migration {migration}"));
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
    c
}
