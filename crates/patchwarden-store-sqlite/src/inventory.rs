//! Inventories and advisories on SQLite: whole documents stored as JSON, replaced in one
//! statement each inside one transaction, so a reader sees the old document or the new one.
//!
//! An inventory's JSON is stored packed ([`codec::pack`], compressed before the write lock is
//! taken) as a BLOB in the `inventory` column. The column was declared `TEXT`; SQLite keeps a
//! BLOB in a TEXT column as it is (type affinity converts only numbers to text), so rows
//! written before packing — JSON text — and packed rows are told apart by their storage
//! class, and neither needs a migration to be read.

use jiff::Timestamp;
use patchwarden_core::advisory::Advisory;
use patchwarden_core::audit::AuditEntry;
use patchwarden_core::inventory::{Inventory, PackagesDigest};
use patchwarden_store::codec::{self, from_json, ts_from_db, ts_to_db};
use patchwarden_store::limits::MAX_INVENTORY_JSON;
use patchwarden_store::{AdvisoryUpsert, Result, StoreError, StoredInventory};
use rusqlite::types::Value;
use rusqlite::{Connection, OptionalExtension, params};
use uuid::Uuid;

use crate::{audit, db, hosts};

pub(crate) fn replace(
    c: &Connection,
    host: Uuid,
    packed: &[u8],
    digest: PackagesDigest,
    now: Timestamp,
    entry: &AuditEntry,
) -> Result<PackagesDigest> {
    hosts::set_digest(c, host, &digest)?;
    let now = ts_to_db("now", now)?;
    c.prepare_cached(
        "INSERT INTO inventories (host, digest, inventory, updated_at) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (host) DO UPDATE
         SET digest = excluded.digest, inventory = excluded.inventory,
             updated_at = excluded.updated_at",
    )
    .and_then(|mut s| s.execute(params![host.to_string(), digest.to_string(), packed, now]))
    .map_err(db("replace inventory"))?;
    audit::append(c, entry)?;
    Ok(digest)
}

pub(crate) fn get(c: &Connection, host: Uuid) -> Result<Option<StoredInventory>> {
    let row: Option<(String, Value, i64)> = c
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
    let text = match inventory {
        Value::Blob(packed) => codec::unpack(T, &host, &packed, MAX_INVENTORY_JSON)?,
        Value::Text(json) => json,
        other => {
            return Err(StoreError::corrupt(
                T,
                host,
                format!(
                    "inventory is neither packed nor text: {:?}",
                    other.data_type()
                ),
            ));
        }
    };
    Ok(Some(StoredInventory {
        host,
        inventory: from_json::<Inventory>(T, &host, &text)?,
        digest: serde_json::from_value(serde_json::Value::String(digest))
            .map_err(|e| StoreError::corrupt(T, host, e))?,
        updated_at: ts_from_db(T, &host, updated_at)?,
    }))
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
