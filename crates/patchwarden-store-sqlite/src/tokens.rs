//! Enrollment tokens on SQLite, and enrollment itself: check the token, count a use and create
//! the host in one write transaction.

use jiff::Timestamp;
use patchwarden_core::audit::AuditEntry;
use patchwarden_store::codec::{hex, opt_ts_from_db, ts_from_db, ts_to_db};
use patchwarden_store::{
    EnrollRejection, EnrollmentToken, Host, NewEnrollmentToken, NewHost, Result, SecretHash,
    StoreError,
};
use rusqlite::{Connection, OptionalExtension, Row, params};
use uuid::Uuid;

use crate::{audit, db, hosts, is_unique_violation, uuid_from_db};

const COLUMNS: &str =
    "id, grp, created_at, created_by, expires_at, max_uses, uses, revoked_at, note";

type RawToken = (
    String,
    String,
    i64,
    String,
    i64,
    i64,
    i64,
    Option<i64>,
    Option<String>,
);

fn raw(r: &Row<'_>) -> rusqlite::Result<RawToken> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
        r.get(6)?,
        r.get(7)?,
        r.get(8)?,
    ))
}

fn decode(raw: RawToken) -> Result<EnrollmentToken> {
    let (id, group, created_at, created_by, expires_at, max_uses, uses, revoked_at, note) = raw;
    const T: &str = "enrollment_tokens";
    let count =
        |n: i64| u32::try_from(n).map_err(|_| StoreError::corrupt(T, &id, format!("count {n}")));
    Ok(EnrollmentToken {
        id: uuid_from_db(T, &id)?,
        group,
        created_at: ts_from_db(T, &id, created_at)?,
        created_by,
        expires_at: ts_from_db(T, &id, expires_at)?,
        max_uses: count(max_uses)?,
        uses: count(uses)?,
        revoked_at: opt_ts_from_db(T, &id, revoked_at)?,
        note,
    })
}

fn get(c: &Connection, id: Uuid) -> Result<Option<EnrollmentToken>> {
    let raw = c
        .query_row(
            &format!("SELECT {COLUMNS} FROM enrollment_tokens WHERE id = ?1"),
            [id.to_string()],
            raw,
        )
        .optional()
        .map_err(db("read enrollment token"))?;
    raw.map(decode).transpose()
}

pub(crate) fn create(
    c: &Connection,
    t: &NewEnrollmentToken,
    now: Timestamp,
    entry: &AuditEntry,
) -> Result<EnrollmentToken> {
    let inserted = c.execute(
        "INSERT INTO enrollment_tokens
             (id, secret_hash, grp, created_at, created_by, expires_at, max_uses, uses, note)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 0, ?8)",
        params![
            t.id.to_string(),
            hex(&t.secret_hash.0),
            t.group,
            ts_to_db("now", now)?,
            t.created_by,
            ts_to_db("token expires_at", t.expires_at)?,
            i64::from(t.max_uses),
            t.note
        ],
    );
    match inserted {
        Ok(_) => {}
        Err(e) if is_unique_violation(&e) => {
            return Err(StoreError::AlreadyExists {
                kind: "enrollment token",
                id: t.id.to_string(),
            });
        }
        Err(e) => return Err(StoreError::backend("create enrollment token", e)),
    }
    let token = get(c, t.id)?.ok_or_else(|| StoreError::NotFound {
        kind: "enrollment token",
        id: t.id.to_string(),
    })?;
    audit::append(c, entry)?;
    Ok(token)
}

pub(crate) fn list(c: &Connection) -> Result<Vec<EnrollmentToken>> {
    let mut stmt = c
        .prepare(&format!(
            "SELECT {COLUMNS} FROM enrollment_tokens ORDER BY created_at, id"
        ))
        .map_err(db("list enrollment tokens"))?;
    let rows = stmt
        .query_map([], raw)
        .map_err(db("list enrollment tokens"))?;
    let mut out = Vec::new();
    for r in rows {
        out.push(decode(r.map_err(db("list enrollment tokens"))?)?);
    }
    Ok(out)
}

pub(crate) fn revoke(
    c: &Connection,
    id: Uuid,
    now: Timestamp,
    entry: &AuditEntry,
) -> Result<EnrollmentToken> {
    let changed = c
        .execute(
            "UPDATE enrollment_tokens SET revoked_at = ?2 WHERE id = ?1 AND revoked_at IS NULL",
            params![id.to_string(), ts_to_db("now", now)?],
        )
        .map_err(db("revoke enrollment token"))?;
    let token = get(c, id)?.ok_or_else(|| StoreError::NotFound {
        kind: "enrollment token",
        id: id.to_string(),
    })?;
    if changed > 0 {
        audit::append(c, entry)?;
    }
    Ok(token)
}

pub(crate) fn enroll(
    c: &Connection,
    secret: SecretHash,
    host: &NewHost,
    facts_json: &str,
    now: Timestamp,
    entry: &AuditEntry,
) -> Result<Host> {
    let raw = c
        .query_row(
            &format!("SELECT {COLUMNS} FROM enrollment_tokens WHERE secret_hash = ?1"),
            [hex(&secret.0)],
            raw,
        )
        .optional()
        .map_err(db("enroll host"))?;
    let token = match raw {
        Some(r) => decode(r)?,
        None => return Err(StoreError::Enrollment(EnrollRejection::Unknown)),
    };
    token.usable_at(now).map_err(StoreError::Enrollment)?;
    hosts::refuse_known_key(c, &host.public_key)?;
    // The condition repeats the check in the statement itself: it is what keeps the count
    // right should anything else ever write tokens outside this transaction.
    let counted = c
        .execute(
            "UPDATE enrollment_tokens SET uses = uses + 1
             WHERE id = ?1 AND uses < max_uses AND revoked_at IS NULL AND expires_at > ?2",
            params![token.id.to_string(), ts_to_db("now", now)?],
        )
        .map_err(db("enroll host"))?;
    if counted != 1 {
        return Err(StoreError::Enrollment(EnrollRejection::UsedUp {
            id: token.id,
            max_uses: token.max_uses,
        }));
    }
    hosts::insert(c, host, facts_json, &token, now)?;
    let stored = hosts::get(c, host.id)?.ok_or_else(|| StoreError::NotFound {
        kind: "host",
        id: host.id.to_string(),
    })?;
    audit::append(c, entry)?;
    Ok(stored)
}
