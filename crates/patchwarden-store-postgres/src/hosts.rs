//! Hosts on PostgreSQL: enrollment's insert, reads and filters, check-ins, placement and
//! standing (the host row locked while it is compared and changed), the check-in counter, and
//! the replay nonces.

use std::collections::BTreeMap;

use deadpool_postgres::GenericClient;
use jiff::Timestamp;
use patchwarden_core::audit::AuditEntry;
use patchwarden_core::inventory::{HostFacts, PackagesDigest};
use patchwarden_store::codec::{from_json, opt_ts_from_db, ts_from_db, ts_to_db};
use patchwarden_store::host::{decide_state_change, seq_to_db, state_change_audit};
use patchwarden_store::{
    EnrollmentToken, Host, HostFilter, HostPlacement, HostState, HostStateChange, NewHost, Result,
    StoreError,
};
use tokio_postgres::Row;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::ToSql;
use uuid::Uuid;

use crate::{audit, col, execute, is_code, pg, query, query_opt};

const T: &str = "hosts";
pub(crate) const COLUMNS: &str = "id, grp, ring, labels, public_key, facts, machine_id, ecosystem, \
                       enrolled_with, enrolled_at, last_seen, inventory_digest, state, \
                       state_reason, state_changed_at, baseline_met_at, check_in_seq, \
                       open_findings, open_fixable";

pub(crate) fn decode(r: &Row) -> Result<Host> {
    let id: Uuid = col(T, r, 0)?;
    let labels: String = col(T, r, 3)?;
    let facts: String = col(T, r, 5)?;
    let labels: BTreeMap<String, String> = from_json(T, &id, &labels)?;
    let facts: HostFacts = from_json(T, &id, &facts)?;
    let digest: Option<String> = col(T, r, 11)?;
    let inventory_digest = match digest {
        Some(d) => Some(
            serde_json::from_value::<PackagesDigest>(serde_json::Value::String(d))
                .map_err(|e| StoreError::corrupt(T, id, e))?,
        ),
        None => None,
    };
    let state: String = col(T, r, 12)?;
    let state = HostState::parse(&state)
        .ok_or_else(|| StoreError::corrupt(T, id, format!("state {state:?}")))?;
    let check_in_seq: Option<i64> = col(T, r, 16)?;
    let check_in_seq = check_in_seq
        .map(|n| u64::try_from(n).map_err(|_| StoreError::corrupt(T, id, "negative counter")))
        .transpose()?;
    let count = |idx: usize| -> Result<u64> {
        let n: i64 = col(T, r, idx)?;
        u64::try_from(n).map_err(|_| StoreError::corrupt(T, id, "negative finding count"))
    };
    Ok(Host {
        id,
        group: col(T, r, 1)?,
        ring: col(T, r, 2)?,
        labels,
        public_key: col(T, r, 4)?,
        facts,
        machine_id: col(T, r, 6)?,
        ecosystem: col(T, r, 7)?,
        enrolled_with: col(T, r, 8)?,
        enrolled_at: ts_from_db(T, &id, col(T, r, 9)?)?,
        last_seen: opt_ts_from_db(T, &id, col(T, r, 10)?)?,
        inventory_digest,
        state,
        state_reason: col(T, r, 13)?,
        state_changed_at: opt_ts_from_db(T, &id, col(T, r, 14)?)?,
        baseline_met_at: opt_ts_from_db(T, &id, col(T, r, 15)?)?,
        check_in_seq,
        open_findings: count(17)?,
        open_fixable: count(18)?,
    })
}

pub(crate) async fn insert<C: GenericClient>(
    c: &C,
    host: &NewHost,
    facts_json: &str,
    token: &EnrollmentToken,
    now: Timestamp,
) -> Result<()> {
    let inserted = execute(
        c,
        "INSERT INTO hosts (id, grp, ring, labels, public_key, facts, machine_id, ecosystem,
                            enrolled_with, enrolled_at, last_seen, inventory_digest)
         VALUES ($1, $2, NULL, '{}', $3, $4, $5, $6, $7, $8, $8, NULL)",
        &[
            &host.id,
            &token.group,
            &host.public_key,
            &facts_json,
            &host.facts.machine_id,
            &host.facts.os.ecosystem,
            &token.id,
            &ts_to_db("now", now)?,
        ],
    )
    .await;
    match inserted {
        Ok(_) => Ok(()),
        Err(e) if is_code(&e, &SqlState::UNIQUE_VIOLATION) => Err(StoreError::AlreadyExists {
            kind: "host",
            id: host.id.to_string(),
        }),
        Err(e) => Err(StoreError::backend("enroll host", e)),
    }
}

/// Refuses an enrolment whose public key a host (of any standing) already has: every
/// enrolment makes a new key, so this is the same enrolment request sent again, to a server
/// that never saw its nonce (migration 0016). Called under the token's row lock, which a
/// replay (it carries the same token) waits for, so the first enrolment's host is visible here.
pub(crate) async fn refuse_known_key<C: GenericClient>(c: &C, public_key: &str) -> Result<()> {
    let known = query_opt(
        c,
        "SELECT 1 FROM hosts WHERE public_key = $1 LIMIT 1",
        &[&public_key],
    )
    .await
    .map_err(pg("enroll host"))?;
    match known {
        Some(_) => Err(patchwarden_store::host::key_in_use(public_key)),
        None => Ok(()),
    }
}

/// The host `id`; with `lock`, its row stays locked until the transaction ends.
pub(crate) async fn get<C: GenericClient>(c: &C, id: Uuid, lock: bool) -> Result<Option<Host>> {
    let sql = if lock {
        format!("SELECT {COLUMNS} FROM hosts WHERE id = $1 FOR UPDATE")
    } else {
        format!("SELECT {COLUMNS} FROM hosts WHERE id = $1")
    };
    let row = query_opt(c, &sql, &[&id]).await.map_err(pg("get host"))?;
    row.as_ref().map(decode).transpose()
}

/// The hosts of `ids` that exist, in one query.
pub(crate) async fn get_many<C: GenericClient>(c: &C, ids: &[Uuid]) -> Result<Vec<Host>> {
    let ids = ids.to_vec();
    let rows = query(
        c,
        &format!("SELECT {COLUMNS} FROM hosts WHERE id = ANY($1)"),
        &[&ids],
    )
    .await
    .map_err(pg("get hosts"))?;
    rows.iter().map(decode).collect()
}

pub(crate) async fn get_locked<C: GenericClient>(c: &C, id: Uuid) -> Result<Host> {
    get(c, id, true).await?.ok_or_else(|| StoreError::NotFound {
        kind: "host",
        id: id.to_string(),
    })
}

pub(crate) async fn list<C: GenericClient>(c: &C, f: &HostFilter) -> Result<Vec<Host>> {
    let mut sql = format!("SELECT {COLUMNS} FROM hosts WHERE TRUE");
    let mut args: Vec<Box<dyn ToSql + Sync + Send>> = Vec::new();
    let mut push = |cond: &str, v: Box<dyn ToSql + Sync + Send>, sql: &mut String| {
        args.push(v);
        sql.push_str(&cond.replace('?', &format!("${}", args.len())));
    };
    if let Some(g) = &f.group {
        push(" AND grp = ?", Box::new(g.clone()), &mut sql);
    }
    if let Some(r) = &f.ring {
        push(" AND ring = ?", Box::new(r.clone()), &mut sql);
    }
    if let Some(e) = &f.ecosystem {
        push(" AND ecosystem = ?", Box::new(e.clone()), &mut sql);
    }
    if let Some(t) = f.last_seen_before {
        let t = ts_to_db("last_seen_before", t)?;
        push(
            " AND (last_seen IS NULL OR last_seen < ?)",
            Box::new(t),
            &mut sql,
        );
    }
    if let Some(t) = f.last_seen_since {
        let t = ts_to_db("last_seen_since", t)?;
        push(" AND last_seen >= ?", Box::new(t), &mut sql);
    }
    if let Some(a) = f.after {
        push(" AND id > ?", Box::new(a), &mut sql);
    }
    sql.push_str(" ORDER BY id");
    if let Some(l) = f.limit {
        push(" LIMIT ?", Box::new(i64::from(l)), &mut sql);
    }
    let params: Vec<&(dyn ToSql + Sync)> = args
        .iter()
        .map(|b| b.as_ref() as &(dyn ToSql + Sync))
        .collect();
    let rows = query(c, &sql, &params).await.map_err(pg("list hosts"))?;
    rows.iter().map(decode).collect()
}

pub(crate) async fn by_machine_id<C: GenericClient>(c: &C, machine_id: &str) -> Result<Vec<Host>> {
    let rows = query(
        c,
        &format!("SELECT {COLUMNS} FROM hosts WHERE machine_id = $1 ORDER BY enrolled_at, id"),
        &[&machine_id],
    )
    .await
    .map_err(pg("find hosts by machine id"))?;
    rows.iter().map(decode).collect()
}

pub(crate) async fn check_in<C: GenericClient>(
    c: &C,
    id: Uuid,
    facts: &HostFacts,
    facts_json: &str,
    now: Timestamp,
    entry: &AuditEntry,
) -> Result<Host> {
    let before = get_locked(c, id).await?;
    execute(
        c,
        "UPDATE hosts SET facts = $2, machine_id = $3, ecosystem = $4, last_seen = $5
         WHERE id = $1",
        &[
            &id,
            &facts_json,
            &facts.machine_id,
            &facts.os.ecosystem,
            &ts_to_db("now", now)?,
        ],
    )
    .await
    .map_err(pg("record check-in"))?;
    if &before.facts != facts {
        audit::append(c, entry).await?;
    }
    get_locked(c, id).await
}

pub(crate) async fn set_placement<C: GenericClient>(
    c: &C,
    id: Uuid,
    p: &HostPlacement,
    _now: Timestamp,
    entry: &AuditEntry,
) -> Result<Host> {
    let before = get_locked(c, id).await?;
    let labels = patchwarden_store::codec::to_json("host labels", &p.labels, usize::MAX)?;
    execute(
        c,
        "UPDATE hosts SET grp = $2, ring = $3, labels = $4 WHERE id = $1",
        &[&id, &p.group, &p.ring, &labels],
    )
    .await
    .map_err(pg("set host placement"))?;
    if before.group != p.group || before.ring != p.ring || before.labels != p.labels {
        audit::append(c, entry).await?;
    }
    get_locked(c, id).await
}

pub(crate) async fn change_state<C: GenericClient>(
    c: &C,
    id: Uuid,
    change: &HostStateChange,
    now: Timestamp,
    entry: AuditEntry,
) -> Result<Host> {
    let before = get_locked(c, id).await?;
    if !decide_state_change(&before, change)? {
        return Ok(before);
    }
    let at = ts_to_db("now", now)?;
    let updated = match change {
        HostStateChange::Quarantine { reason } | HostStateChange::Retire { reason } => {
            let state = match change {
                HostStateChange::Quarantine { .. } => HostState::Quarantined,
                _ => HostState::Retired,
            };
            execute(
                c,
                "UPDATE hosts SET state = $2, state_reason = $3, state_changed_at = $4
                 WHERE id = $1",
                &[&id, &state.as_str(), reason, &at],
            )
            .await
        }
        HostStateChange::BaselineMet => {
            execute(
                c,
                "UPDATE hosts SET baseline_met_at = $2 WHERE id = $1",
                &[&id, &at],
            )
            .await
        }
    };
    updated.map_err(pg("change host state"))?;
    audit::append(c, &state_change_audit(&before, change, now, entry)).await?;
    get_locked(c, id).await
}

/// The compare-and-set of the check-in counter: one statement that changes the row only when
/// `seq` exceeds the stored counter. A concurrent update of the row makes PostgreSQL wait and
/// evaluate the condition again on the row it committed, so of two equal counters one wins.
pub(crate) async fn advance_counter<C: GenericClient>(c: &C, id: Uuid, seq: u64) -> Result<()> {
    let value = seq_to_db(seq)?;
    let n = execute(
        c,
        "UPDATE hosts SET check_in_seq = $2
         WHERE id = $1 AND (check_in_seq IS NULL OR check_in_seq < $2)",
        &[&id, &value],
    )
    .await
    .map_err(pg("advance check-in counter"))?;
    if n == 1 {
        return Ok(());
    }
    let host = get(c, id, false)
        .await?
        .ok_or_else(|| StoreError::NotFound {
            kind: "host",
            id: id.to_string(),
        })?;
    Err(StoreError::CounterNotIncreased {
        host: id,
        seq,
        last: host.check_in_seq.unwrap_or(0),
    })
}

/// The rule both nonce statements apply to a nonce recorded before (see [`RECORD_NONCE`]).
macro_rules! nonce_seen {
    () => {
        "ON CONFLICT (host, nonce) DO UPDATE SET expires_at = EXCLUDED.expires_at
         WHERE nonces.expires_at <= $4"
    };
}

/// Records a nonce unless the host used it and it has not expired. An expired record of the
/// same nonce no longer protects anything (the request's own timestamp window refuses
/// anything that old); replacing it keeps the table small. A concurrent insert of the same
/// nonce waits for the first and then finds it unexpired. Parameters: host, nonce, expiry,
/// now; changes one row, or none for a replay.
pub(crate) const RECORD_NONCE: &str = concat!(
    "INSERT INTO nonces (host, nonce, expires_at) VALUES ($1, $2, $3) ",
    nonce_seen!()
);

/// [`RECORD_NONCE`] as a query inside a transaction that has locked the host's row
/// ([`crate::findings::begin`]): a row for a nonce recorded, none for a replay. It inserts
/// nothing for a host that does not exist (the lock then found no row, which says so), rather
/// than failing the transaction's first flight on the foreign key.
pub(crate) const RECORD_NONCE_LOCKED: &str = concat!(
    "INSERT INTO nonces (host, nonce, expires_at) SELECT id, $2, $3 FROM hosts WHERE id = $1 ",
    nonce_seen!(),
    " RETURNING 1"
);

/// What [`RECORD_NONCE`] did: `stored` rows changed, or the driver's error.
pub(crate) fn nonce_outcome(
    host: Uuid,
    nonce: &str,
    stored: std::result::Result<u64, tokio_postgres::Error>,
) -> Result<()> {
    match stored {
        Ok(0) => Err(StoreError::Replay {
            host,
            nonce: nonce.to_owned(),
        }),
        Ok(_) => Ok(()),
        Err(e) if is_code(&e, &SqlState::FOREIGN_KEY_VIOLATION) => Err(StoreError::NotFound {
            kind: "host",
            id: host.to_string(),
        }),
        Err(e) => Err(StoreError::backend("record nonce", e)),
    }
}

pub(crate) async fn record_nonce<C: GenericClient>(
    c: &C,
    host: Uuid,
    nonce: &str,
    expires_at: Timestamp,
    now: Timestamp,
) -> Result<()> {
    let now = ts_to_db("now", now)?;
    let expires_at = ts_to_db("nonce expires_at", expires_at)?;
    let stored = execute(c, RECORD_NONCE, &[&host, &nonce, &expires_at, &now]).await;
    nonce_outcome(host, nonce, stored)
}

pub(crate) async fn purge_nonces<C: GenericClient>(c: &C, now: Timestamp) -> Result<u64> {
    execute(
        c,
        "DELETE FROM nonces WHERE expires_at <= $1",
        &[&ts_to_db("now", now)?],
    )
    .await
    .map_err(pg("purge nonces"))
}

/// Sets the host's inventory digest (inventory replacement), locking the host row.
pub(crate) async fn set_digest<C: GenericClient>(
    c: &C,
    id: Uuid,
    digest: &PackagesDigest,
) -> Result<()> {
    let n = execute(
        c,
        "UPDATE hosts SET inventory_digest = $2 WHERE id = $1",
        &[&id, &digest.to_string()],
    )
    .await
    .map_err(pg("replace inventory"))?;
    if n == 0 {
        return Err(StoreError::NotFound {
            kind: "host",
            id: id.to_string(),
        });
    }
    Ok(())
}
