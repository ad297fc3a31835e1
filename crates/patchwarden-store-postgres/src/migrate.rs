//! The migrations, embedded from `migrations/` (the same file names as SQLite's), and the
//! runner that applies the missing ones at start-up, recording name and checksum in
//! `patchwarden_migrations`.
//!
//! Several servers may start at once against one database, so the runner holds a
//! session-level advisory lock while it looks and applies; each migration runs in its own
//! transaction (PostgreSQL's DDL is transactional, so a failed one leaves nothing behind).
//! Like SQLite's runner it refuses an applied migration whose text changed and a database that
//! is newer than the binary.

use deadpool_postgres::Client;
use sha2::{Digest, Sha256};

use patchwarden_store::StoreError;

/// Every migration, in order: (name, SQL). `tests/migrations.rs` checks that this list, the
/// directory, and SQLite's list hold the same names.
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

/// The advisory lock key that serialises migration runs ("pw-migr" in ASCII).
const MIGRATION_LOCK: i64 = 0x0070_772d_6d69_6772;

fn failed(name: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Migration {
        name: name.to_owned(),
        reason: e.to_string(),
    }
}

/// Applies the missing migrations; returns the names of those it applied.
pub(crate) async fn migrate(client: &mut Client) -> Result<Vec<String>, StoreError> {
    client
        .execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK])
        .await
        .map_err(|e| failed("patchwarden_migrations", e))?;
    let outcome = apply(client).await;
    // Released whatever happened; the connection goes back to the pool.
    let unlocked = client
        .execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK])
        .await;
    let applied = outcome?;
    unlocked.map_err(|e| failed("patchwarden_migrations", e))?;
    Ok(applied)
}

async fn apply(client: &mut Client) -> Result<Vec<String>, StoreError> {
    client
        .batch_execute(
            "CREATE TABLE IF NOT EXISTS patchwarden_migrations (
                version BIGINT PRIMARY KEY,
                name TEXT NOT NULL,
                checksum TEXT NOT NULL
            )",
        )
        .await
        .map_err(|e| failed("patchwarden_migrations", e))?;
    let mut applied = Vec::new();
    for (index, (name, sql)) in MIGRATIONS.iter().enumerate() {
        let version = i64::try_from(index).unwrap_or(i64::MAX) + 1;
        let checksum = patchwarden_store::codec::hex(&Sha256::digest(sql.as_bytes()));
        let recorded = client
            .query_opt(
                "SELECT checksum FROM patchwarden_migrations WHERE version = $1",
                &[&version],
            )
            .await
            .map_err(|e| failed(name, e))?;
        if let Some(row) = recorded {
            let c: String = row.try_get(0).map_err(|e| failed(name, e))?;
            if c == checksum {
                continue;
            }
            return Err(failed(
                name,
                "it was changed after it was applied to this database (migrations are \
                 append-only: add a new one instead)",
            ));
        }
        let tx = client.transaction().await.map_err(|e| failed(name, e))?;
        tx.batch_execute(sql).await.map_err(|e| failed(name, e))?;
        tx.execute(
            "INSERT INTO patchwarden_migrations (version, name, checksum) VALUES ($1, $2, $3)",
            &[&version, name, &checksum],
        )
        .await
        .map_err(|e| failed(name, e))?;
        tx.commit().await.map_err(|e| failed(name, e))?;
        applied.push((*name).to_owned());
    }
    let newest: Option<i64> = client
        .query_one("SELECT max(version) FROM patchwarden_migrations", &[])
        .await
        .and_then(|r| r.try_get(0))
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

/// The names of the applied migrations, in order.
pub(crate) async fn applied(client: &Client) -> Result<Vec<String>, StoreError> {
    let rows = client
        .query(
            "SELECT name FROM patchwarden_migrations ORDER BY version",
            &[],
        )
        .await
        .map_err(|e| StoreError::backend("read migrations", e))?;
    rows.iter()
        .map(|r| {
            r.try_get(0)
                .map_err(|e| StoreError::backend("read migrations", e))
        })
        .collect()
}
