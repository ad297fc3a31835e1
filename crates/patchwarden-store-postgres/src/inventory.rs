//! Inventories and advisories on PostgreSQL: whole documents stored as JSON text, replaced in
//! one transaction, so a reader sees the old document or the new one.

use deadpool_postgres::GenericClient;
use jiff::Timestamp;
use patchwarden_core::advisory::Advisory;
use patchwarden_core::audit::AuditEntry;
use patchwarden_core::inventory::{Inventory, PackagesDigest};
use patchwarden_store::codec::{from_json, ts_from_db, ts_to_db};
use patchwarden_store::{AdvisoryUpsert, Result, StoreError, StoredInventory};
use uuid::Uuid;

use crate::pipelined::Batch;
use crate::{audit, col, execute, hosts, pg, query, query_opt};

/// The host's inventory, inserted or replaced. Parameters: host, digest, JSON, now.
const UPSERT: &str =
    "INSERT INTO inventories (host, digest, inventory, updated_at) VALUES ($1, $2, $3, $4)
 ON CONFLICT (host) DO UPDATE
 SET digest = EXCLUDED.digest, inventory = EXCLUDED.inventory, updated_at = EXCLUDED.updated_at";

pub(crate) async fn replace<C: GenericClient>(
    c: &C,
    host: Uuid,
    inventory_json: &str,
    digest: PackagesDigest,
    now: Timestamp,
    entry: &AuditEntry,
) -> Result<PackagesDigest> {
    hosts::set_digest(c, host, &digest).await?;
    execute(
        c,
        UPSERT,
        &[
            &host,
            &digest.to_string(),
            &inventory_json,
            &ts_to_db("now", now)?,
        ],
    )
    .await
    .map_err(pg("replace inventory"))?;
    audit::append(c, entry).await?;
    Ok(digest)
}

/// The inventory's row written at the end of an upload's transaction, with its other writes.
/// (The host's digest is the caller's to set, with the other columns it changes on the row.)
/// `now` as the database holds it.
pub(crate) fn push_replace(
    batch: &mut Batch,
    host: Uuid,
    inventory_json: String,
    digest: PackagesDigest,
    now: i64,
) {
    batch.push(
        "replace inventory",
        UPSERT,
        vec![
            Box::new(host),
            Box::new(digest.to_string()),
            Box::new(inventory_json),
            Box::new(now),
        ],
    );
}

pub(crate) async fn get<C: GenericClient>(c: &C, host: Uuid) -> Result<Option<StoredInventory>> {
    const T: &str = "inventories";
    let Some(row) = query_opt(
        c,
        "SELECT digest, inventory, updated_at FROM inventories WHERE host = $1",
        &[&host],
    )
    .await
    .map_err(pg("get inventory"))?
    else {
        return Ok(None);
    };
    let digest: String = col(T, &row, 0)?;
    let inventory: String = col(T, &row, 1)?;
    Ok(Some(StoredInventory {
        host,
        inventory: from_json::<Inventory>(T, &host, &inventory)?,
        digest: serde_json::from_value(serde_json::Value::String(digest))
            .map_err(|e| StoreError::corrupt(T, host, e))?,
        updated_at: ts_from_db(T, &host, col(T, &row, 2)?)?,
    }))
}

pub(crate) async fn upsert_advisories<C: GenericClient>(
    c: &C,
    rows: &[(String, String)],
    now: Timestamp,
    entry: &AuditEntry,
) -> Result<AdvisoryUpsert> {
    let now = ts_to_db("now", now)?;
    let mut out = AdvisoryUpsert::default();
    for (id, body) in rows {
        let stored = query_opt(c, "SELECT body FROM advisories WHERE id = $1", &[id])
            .await
            .map_err(pg("upsert advisories"))?;
        match stored {
            Some(r) => {
                let s: String = col("advisories", &r, 0)?;
                if &s == body {
                    out.unchanged += 1;
                    continue;
                }
                out.updated += 1;
            }
            None => out.inserted += 1,
        }
        execute(
            c,
            "INSERT INTO advisories (id, body, updated_at) VALUES ($1, $2, $3)
             ON CONFLICT (id) DO UPDATE SET body = EXCLUDED.body, updated_at = EXCLUDED.updated_at",
            &[id, body, &now],
        )
        .await
        .map_err(pg("upsert advisories"))?;
        out.changed.push(id.clone());
    }
    if !out.changed.is_empty() {
        audit::append(c, entry).await?;
    }
    Ok(out)
}

/// Every advisory, decoded as its row arrives: collected first, the rows' JSON (32 MB for
/// AlmaLinux's archive) was held beside the decoded advisories while the matcher was built,
/// the largest part of a PostgreSQL server's peak memory at start. The connection reads no
/// further ahead than the stream is consumed.
pub(crate) async fn advisories<C: GenericClient>(c: &C) -> Result<Vec<Advisory>> {
    use futures_util::TryStreamExt;
    let statement = c
        .prepare_cached("SELECT id, body FROM advisories ORDER BY id")
        .await
        .map_err(pg("read advisories"))?;
    let rows = c
        .query_raw(&statement, std::iter::empty::<&str>())
        .await
        .map_err(pg("read advisories"))?;
    let mut rows = std::pin::pin!(rows);
    let mut out = Vec::new();
    while let Some(r) = rows.try_next().await.map_err(pg("read advisories"))? {
        out.push(decode_advisory(&r)?);
    }
    Ok(out)
}

/// Rows of (id, body) read back as advisories.
fn decode_advisories(rows: &[tokio_postgres::Row]) -> Result<Vec<Advisory>> {
    rows.iter().map(decode_advisory).collect()
}

fn decode_advisory(r: &tokio_postgres::Row) -> Result<Advisory> {
    let id: String = col("advisories", r, 0)?;
    let body: String = col("advisories", r, 1)?;
    from_json("advisories", &id, &body)
}

/// The advisories with these ids, by id.
pub(crate) async fn advisories_by_ids<C: GenericClient>(
    c: &C,
    ids: &[String],
) -> Result<Vec<Advisory>> {
    let rows = query(
        c,
        "SELECT id, body FROM advisories WHERE id = ANY($1) ORDER BY id",
        &[&ids],
    )
    .await
    .map_err(pg("read advisories by id"))?;
    decode_advisories(&rows)
}

pub(crate) async fn advisory_count<C: GenericClient>(c: &C) -> Result<u64> {
    let row = query_opt(c, "SELECT count(*) FROM advisories", &[])
        .await
        .map_err(pg("count advisories"))?;
    let n: i64 = match row {
        Some(r) => col("advisories", &r, 0)?,
        None => 0,
    };
    Ok(u64::try_from(n).unwrap_or(0))
}
