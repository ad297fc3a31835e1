//! Inventories and advisories on SQLite: whole documents stored as JSON, replaced in one
//! statement each inside one transaction, so a reader sees the old document or the new one.

use jiff::Timestamp;
use patchwarden_core::advisory::Advisory;
use patchwarden_core::audit::AuditEntry;
use patchwarden_core::inventory::{Inventory, PackagesDigest};
use patchwarden_store::codec::{from_json, to_json, ts_from_db, ts_to_db};
use patchwarden_store::limits::{MAX_ADVISORY_JSON, MAX_ID, check_name};
use patchwarden_store::{AdvisoryUpsert, Result, StoreError, StoredInventory};
use rusqlite::{Connection, OptionalExtension, params};
use uuid::Uuid;

use crate::{audit, db, hosts};

pub(crate) fn replace(
    c: &Connection,
    host: Uuid,
    inventory_json: &str,
    digest: PackagesDigest,
    now: Timestamp,
    entry: &AuditEntry,
) -> Result<PackagesDigest> {
    hosts::set_digest(c, host, &digest)?;
    c.execute(
        "INSERT INTO inventories (host, digest, inventory, updated_at) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (host) DO UPDATE
         SET digest = excluded.digest, inventory = excluded.inventory,
             updated_at = excluded.updated_at",
        params![
            host.to_string(),
            digest.to_string(),
            inventory_json,
            ts_to_db("now", now)?
        ],
    )
    .map_err(db("replace inventory"))?;
    audit::append(c, entry)?;
    Ok(digest)
}

pub(crate) fn get(c: &Connection, host: Uuid) -> Result<Option<StoredInventory>> {
    let row: Option<(String, String, i64)> = c
        .query_row(
            "SELECT digest, inventory, updated_at FROM inventories WHERE host = ?1",
            [host.to_string()],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .optional()
        .map_err(db("get inventory"))?;
    let Some((digest, inventory, updated_at)) = row else {
        return Ok(None);
    };
    const T: &str = "inventories";
    Ok(Some(StoredInventory {
        host,
        inventory: from_json::<Inventory>(T, &host, &inventory)?,
        digest: serde_json::from_value(serde_json::Value::String(digest))
            .map_err(|e| StoreError::corrupt(T, host, e))?,
        updated_at: ts_from_db(T, &host, updated_at)?,
    }))
}

/// Advisories checked and encoded before the write transaction: (id, JSON).
pub(crate) fn advisory_rows(advisories: &[Advisory]) -> Result<Vec<(String, String)>> {
    advisories
        .iter()
        .map(|a| {
            check_name("advisory id", &a.id, MAX_ID)?;
            Ok((a.id.clone(), to_json("advisory", a, MAX_ADVISORY_JSON)?))
        })
        .collect()
}

pub(crate) fn upsert_advisories(
    c: &Connection,
    rows: &[(String, String)],
    now: Timestamp,
    entry: &AuditEntry,
) -> Result<AdvisoryUpsert> {
    let now = ts_to_db("now", now)?;
    let mut out = AdvisoryUpsert::default();
    let mut read = c
        .prepare_cached("SELECT body FROM advisories WHERE id = ?1")
        .map_err(db("upsert advisories"))?;
    let mut write = c
        .prepare_cached(
            "INSERT INTO advisories (id, body, updated_at) VALUES (?1, ?2, ?3)
             ON CONFLICT (id) DO UPDATE SET body = excluded.body, updated_at = excluded.updated_at",
        )
        .map_err(db("upsert advisories"))?;
    for (id, body) in rows {
        let stored: Option<String> = read
            .query_row([id], |r| r.get(0))
            .optional()
            .map_err(db("upsert advisories"))?;
        match stored {
            Some(s) if &s == body => {
                out.unchanged += 1;
                continue;
            }
            Some(_) => out.updated += 1,
            None => out.inserted += 1,
        }
        write
            .execute(params![id, body, now])
            .map_err(db("upsert advisories"))?;
        out.changed.push(id.clone());
    }
    if !out.changed.is_empty() {
        audit::append(c, entry)?;
    }
    Ok(out)
}

pub(crate) fn advisories(c: &Connection) -> Result<Vec<Advisory>> {
    let mut stmt = c
        .prepare("SELECT id, body FROM advisories ORDER BY id")
        .map_err(db("read advisories"))?;
    let rows = stmt
        .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
        .map_err(db("read advisories"))?;
    let mut out = Vec::new();
    for r in rows {
        let (id, body) = r.map_err(db("read advisories"))?;
        out.push(from_json("advisories", &id, &body)?);
    }
    Ok(out)
}

/// The advisories with these ids, by id (one lookup per distinct id on the primary key).
pub(crate) fn advisories_by_ids(c: &Connection, ids: &[String]) -> Result<Vec<Advisory>> {
    let mut ids: Vec<&str> = ids.iter().map(String::as_str).collect();
    ids.sort_unstable();
    ids.dedup();
    let mut stmt = c
        .prepare_cached("SELECT body FROM advisories WHERE id = ?1")
        .map_err(db("read advisories by id"))?;
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        let body: Option<String> = stmt
            .query_row(params![id], |r| r.get(0))
            .optional()
            .map_err(db("read advisories by id"))?;
        if let Some(body) = body {
            out.push(from_json("advisories", &id, &body)?);
        }
    }
    Ok(out)
}

pub(crate) fn advisory_count(c: &Connection) -> Result<u64> {
    let n: i64 = c
        .query_row("SELECT count(*) FROM advisories", [], |r| r.get(0))
        .map_err(db("count advisories"))?;
    Ok(u64::try_from(n).unwrap_or(0))
}
