//! Enrollment tokens on PostgreSQL, and enrollment: the token row is locked `FOR UPDATE`
//! before it is checked, so racing enrolments for its last use are decided one at a time.

use deadpool_postgres::GenericClient;
use jiff::Timestamp;
use patchwarden_core::audit::AuditEntry;
use patchwarden_store::codec::{hex, opt_ts_from_db, ts_from_db, ts_to_db};
use patchwarden_store::{
    EnrollRejection, EnrollmentToken, Host, NewEnrollmentToken, NewHost, Result, SecretHash,
    StoreError,
};
use tokio_postgres::Row;
use tokio_postgres::error::SqlState;
use uuid::Uuid;

use crate::{audit, col, execute, hosts, is_code, pg, query, query_opt};

const T: &str = "enrollment_tokens";
const COLUMNS: &str =
    "id, grp, created_at, created_by, expires_at, max_uses, uses, revoked_at, note";

fn decode(r: &Row) -> Result<EnrollmentToken> {
    let id: Uuid = col(T, r, 0)?;
    let count = |i: usize| -> Result<u32> {
        let n: i64 = col(T, r, i)?;
        u32::try_from(n).map_err(|_| StoreError::corrupt(T, id, format!("count {n}")))
    };
    Ok(EnrollmentToken {
        id,
        group: col(T, r, 1)?,
        created_at: ts_from_db(T, &id, col(T, r, 2)?)?,
        created_by: col(T, r, 3)?,
        expires_at: ts_from_db(T, &id, col(T, r, 4)?)?,
        max_uses: count(5)?,
        uses: count(6)?,
        revoked_at: opt_ts_from_db(T, &id, col(T, r, 7)?)?,
        note: col(T, r, 8)?,
    })
}

async fn get<C: GenericClient>(c: &C, id: Uuid) -> Result<EnrollmentToken> {
    let row = query_opt(
        c,
        &format!("SELECT {COLUMNS} FROM enrollment_tokens WHERE id = $1"),
        &[&id],
    )
    .await
    .map_err(pg("read enrollment token"))?
    .ok_or_else(|| StoreError::NotFound {
        kind: "enrollment token",
        id: id.to_string(),
    })?;
    decode(&row)
}

pub(crate) async fn create<C: GenericClient>(
    c: &C,
    t: &NewEnrollmentToken,
    now: Timestamp,
    entry: &AuditEntry,
) -> Result<EnrollmentToken> {
    let inserted = execute(
        c,
        "INSERT INTO enrollment_tokens
             (id, secret_hash, grp, created_at, created_by, expires_at, max_uses, uses, note)
         VALUES ($1, $2, $3, $4, $5, $6, $7, 0, $8)",
        &[
            &t.id,
            &hex(&t.secret_hash.0),
            &t.group,
            &ts_to_db("now", now)?,
            &t.created_by,
            &ts_to_db("token expires_at", t.expires_at)?,
            &i64::from(t.max_uses),
            &t.note,
        ],
    )
    .await;
    match inserted {
        Ok(_) => {}
        Err(e) if is_code(&e, &SqlState::UNIQUE_VIOLATION) => {
            return Err(StoreError::AlreadyExists {
                kind: "enrollment token",
                id: t.id.to_string(),
            });
        }
        Err(e) => return Err(StoreError::backend("create enrollment token", e)),
    }
    let token = get(c, t.id).await?;
    audit::append(c, entry).await?;
    Ok(token)
}

pub(crate) async fn list<C: GenericClient>(c: &C) -> Result<Vec<EnrollmentToken>> {
    let rows = query(
        c,
        &format!("SELECT {COLUMNS} FROM enrollment_tokens ORDER BY created_at, id"),
        &[],
    )
    .await
    .map_err(pg("list enrollment tokens"))?;
    rows.iter().map(decode).collect()
}

pub(crate) async fn revoke<C: GenericClient>(
    c: &C,
    id: Uuid,
    now: Timestamp,
    entry: &AuditEntry,
) -> Result<EnrollmentToken> {
    let changed = execute(
        c,
        "UPDATE enrollment_tokens SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL",
        &[&id, &ts_to_db("now", now)?],
    )
    .await
    .map_err(pg("revoke enrollment token"))?;
    let token = get(c, id).await?;
    if changed > 0 {
        audit::append(c, entry).await?;
    }
    Ok(token)
}

pub(crate) async fn enroll<C: GenericClient>(
    c: &C,
    secret: SecretHash,
    host: &NewHost,
    facts_json: &str,
    now: Timestamp,
    entry: &AuditEntry,
) -> Result<Host> {
    let row = query_opt(
        c,
        &format!("SELECT {COLUMNS} FROM enrollment_tokens WHERE secret_hash = $1 FOR UPDATE"),
        &[&hex(&secret.0)],
    )
    .await
    .map_err(pg("enroll host"))?;
    let token = match row {
        Some(r) => decode(&r)?,
        None => return Err(StoreError::Enrollment(EnrollRejection::Unknown)),
    };
    token.usable_at(now).map_err(StoreError::Enrollment)?;
    hosts::refuse_known_key(c, &host.public_key).await?;
    execute(
        c,
        "UPDATE enrollment_tokens SET uses = uses + 1 WHERE id = $1",
        &[&token.id],
    )
    .await
    .map_err(pg("enroll host"))?;
    hosts::insert(c, host, facts_json, &token, now).await?;
    let stored = hosts::get(c, host.id, false)
        .await?
        .ok_or_else(|| StoreError::NotFound {
            kind: "host",
            id: host.id.to_string(),
        })?;
    audit::append(c, entry).await?;
    Ok(stored)
}
