//! The migrations, embedded from `migrations/`, and the runner that applies the missing ones at
//! start-up, each in its own transaction, recording name and checksum in
//! `patchwarden_migrations`.
//!
//! Migrations are append-only: a migration that was applied and later edited would leave
//! databases that differ while claiming the same version, so the runner compares checksums and
//! refuses to start on a mismatch, and refuses a database that has migrations this binary does
//! not know (it was upgraded by a newer version).

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use sha2::{Digest, Sha256};

use patchwarden_store::StoreError;

/// Every migration, in order: (name, SQL). `tests/migrations.rs` checks that this list and the
/// directory hold the same files.
pub const MIGRATIONS: &[(&str, &str)] = &[
    (
        "0001_initial",
        include_str!("../migrations/0001_initial.sql"),
    ),
    (
        "0002_host_state",
        include_str!("../migrations/0002_host_state.sql"),
    ),
    (
        "0003_operators",
        include_str!("../migrations/0003_operators.sql"),
    ),
    ("0004_feeds", include_str!("../migrations/0004_feeds.sql")),
    (
        "0005_exceptions",
        include_str!("../migrations/0005_exceptions.sql"),
    ),
    (
        "0006_changes",
        include_str!("../migrations/0006_changes.sql"),
    ),
    (
        "0007_finding_bodies",
        include_str!("../migrations/0007_finding_bodies.sql"),
    ),
    (
        "0008_notifications",
        include_str!("../migrations/0008_notifications.sql"),
    ),
    (
        "0009_incidents",
        include_str!("../migrations/0009_incidents.sql"),
    ),
    (
        "0010_findings_indexes",
        include_str!("../migrations/0010_findings_indexes.sql"),
    ),
    (
        "0011_host_finding_counts",
        include_str!("../migrations/0011_host_finding_counts.sql"),
    ),
    (
        "0012_audit_append",
        include_str!("../migrations/0012_audit_append.sql"),
    ),
    (
        "0013_findings_reference_checks",
        include_str!("../migrations/0013_findings_reference_checks.sql"),
    ),
    (
        "0014_findings_host_check",
        include_str!("../migrations/0014_findings_host_check.sql"),
    ),
    (
        "0015_inventories_lz4",
        include_str!("../migrations/0015_inventories_lz4.sql"),
    ),
    (
        "0016_hosts_public_key",
        include_str!("../migrations/0016_hosts_public_key.sql"),
    ),
    (
        "0017_findings_due_by_host",
        include_str!("../migrations/0017_findings_due_by_host.sql"),
    ),
    (
        "0018_finding_subjects",
        include_str!("../migrations/0018_finding_subjects.sql"),
    ),
];

fn failed(name: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Migration {
        name: name.to_owned(),
        reason: e.to_string(),
    }
}

/// Applies the missing migrations; returns the names of those it applied.
pub(crate) fn migrate(conn: &mut Connection) -> Result<Vec<String>, StoreError> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS patchwarden_migrations (
            version BIGINT PRIMARY KEY,
            name TEXT NOT NULL,
            checksum TEXT NOT NULL
        )",
    )
    .map_err(|e| failed("patchwarden_migrations", e))?;
    let mut applied = Vec::new();
    for (index, (name, sql)) in MIGRATIONS.iter().enumerate() {
        let version = i64::try_from(index).unwrap_or(i64::MAX) + 1;
        let checksum = patchwarden_store::codec::hex(&Sha256::digest(sql.as_bytes()));
        // An immediate transaction takes the write lock before reading, so two processes
        // opening the same new file apply each migration once.
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| failed(name, e))?;
        let recorded: Option<String> = tx
            .query_row(
                "SELECT checksum FROM patchwarden_migrations WHERE version = ?1",
                [version],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| failed(name, e))?;
        match recorded {
            Some(c) if c == checksum => continue,
            Some(_) => {
                return Err(failed(
                    name,
                    "it was changed after it was applied to this database (migrations are \
                     append-only: add a new one instead)",
                ));
            }
            None => {}
        }
        tx.execute_batch(sql).map_err(|e| failed(name, e))?;
        tx.execute(
            "INSERT INTO patchwarden_migrations (version, name, checksum) VALUES (?1, ?2, ?3)",
            params![version, name, checksum],
        )
        .map_err(|e| failed(name, e))?;
        tx.commit().map_err(|e| failed(name, e))?;
        applied.push((*name).to_owned());
    }
    backfill_body_digests(conn)?;
    let newest: Option<i64> = conn
        .query_row("SELECT max(version) FROM patchwarden_migrations", [], |r| {
            r.get(0)
        })
        .map_err(|e| failed("patchwarden_migrations", e))?;
    let known = i64::try_from(MIGRATIONS.len()).unwrap_or(i64::MAX);
    if newest.unwrap_or(0) > known {
        return Err(failed(
            "patchwarden_migrations",
            format!(
                "the database has migration {} but this binary knows only {known}: it was \
                 opened by a newer Patchwarden",
                newest.unwrap_or(0)
            ),
        ));
    }
    Ok(applied)
}

/// Gives the finding bodies that `0007_finding_bodies` moved out of existing findings their
/// SHA-256 (SQLite has no SHA-256 function of its own), so that new findings share them.
fn backfill_body_digests(conn: &mut Connection) -> Result<(), StoreError> {
    let name = "0007_finding_bodies";
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(|e| failed(name, e))?;
    {
        let mut read = tx
            .prepare("SELECT id, body FROM finding_bodies WHERE digest IS NULL")
            .map_err(|e| failed(name, e))?;
        let mut write = tx
            .prepare("UPDATE finding_bodies SET digest = ?2 WHERE id = ?1")
            .map_err(|e| failed(name, e))?;
        let rows = read
            .query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)))
            .map_err(|e| failed(name, e))?;
        for row in rows {
            let (id, body) = row.map_err(|e| failed(name, e))?;
            let digest = patchwarden_store::finding::body_digest(&body);
            write
                .execute(params![id, &digest[..]])
                .map_err(|e| failed(name, e))?;
        }
    }
    tx.commit().map_err(|e| failed(name, e))
}

/// The names of the applied migrations, in order.
pub(crate) fn applied(conn: &Connection) -> Result<Vec<String>, StoreError> {
    let mut stmt = conn
        .prepare("SELECT name FROM patchwarden_migrations ORDER BY version")
        .map_err(|e| StoreError::backend("read migrations", e))?;
    let rows = stmt
        .query_map([], |r| r.get::<_, String>(0))
        .map_err(|e| StoreError::backend("read migrations", e))?;
    rows.collect::<Result<Vec<_>, _>>()
        .map_err(|e| StoreError::backend("read migrations", e))
}
