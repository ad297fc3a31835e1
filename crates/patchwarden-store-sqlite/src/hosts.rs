//! Hosts on SQLite: enrollment's insert, reads and filters, check-ins, placement, standing,
//! the check-in counter, and the replay nonces.

use std::collections::BTreeMap;

use jiff::Timestamp;
use patchwarden_core::audit::AuditEntry;
use patchwarden_core::inventory::{HostFacts, PackagesDigest};
use patchwarden_store::codec::{from_json, opt_ts_from_db, ts_from_db, ts_to_db};
use patchwarden_store::host::{decide_state_change, seq_to_db, state_change_audit};
use patchwarden_store::{
    EnrollmentToken, Host, HostFilter, HostPlacement, HostState, HostStateChange, NewHost, Result,
    StoreError,
};
use rusqlite::types::Value;
use rusqlite::{Connection, OptionalExtension, Row, params, params_from_iter};
use uuid::Uuid;

use crate::{audit, db, is_unique_violation, uuid_from_db};

const COLUMNS: &str = "id, grp, ring, labels, public_key, facts, machine_id, ecosystem, \
                       enrolled_with, enrolled_at, last_seen, inventory_digest, state, \
                       state_reason, state_changed_at, baseline_met_at, check_in_seq, \
                       open_findings, open_fixable";

pub(crate) struct RawHost {
    id: String,
    group: String,
    ring: Option<String>,
    labels: String,
    public_key: String,
    facts: String,
    machine_id: Option<String>,
    ecosystem: Option<String>,
    enrolled_with: String,
    enrolled_at: i64,
    last_seen: Option<i64>,
    inventory_digest: Option<String>,
    state: String,
    state_reason: Option<String>,
    state_changed_at: Option<i64>,
    baseline_met_at: Option<i64>,
    check_in_seq: Option<i64>,
    open_findings: i64,
    open_fixable: i64,
}

fn raw(r: &Row<'_>) -> rusqlite::Result<RawHost> {
    Ok(RawHost {
        id: r.get(0)?,
        group: r.get(1)?,
        ring: r.get(2)?,
        labels: r.get(3)?,
        public_key: r.get(4)?,
        facts: r.get(5)?,
        machine_id: r.get(6)?,
        ecosystem: r.get(7)?,
        enrolled_with: r.get(8)?,
        enrolled_at: r.get(9)?,
        last_seen: r.get(10)?,
        inventory_digest: r.get(11)?,
        state: r.get(12)?,
        state_reason: r.get(13)?,
        state_changed_at: r.get(14)?,
        baseline_met_at: r.get(15)?,
        check_in_seq: r.get(16)?,
        open_findings: r.get(17)?,
        open_fixable: r.get(18)?,
    })
}

fn decode(h: RawHost) -> Result<Host> {
    const T: &str = "hosts";
    let labels: BTreeMap<String, String> = from_json(T, &h.id, &h.labels)?;
    let facts: HostFacts = from_json(T, &h.id, &h.facts)?;
    let inventory_digest = match h.inventory_digest {
        Some(d) => Some(
            serde_json::from_value::<PackagesDigest>(serde_json::Value::String(d))
                .map_err(|e| StoreError::corrupt(T, &h.id, e))?,
        ),
        None => None,
    };
    let state = HostState::parse(&h.state)
        .ok_or_else(|| StoreError::corrupt(T, &h.id, format!("state {:?}", h.state)))?;
    let check_in_seq = h
        .check_in_seq
        .map(|n| u64::try_from(n).map_err(|_| StoreError::corrupt(T, &h.id, "negative counter")))
        .transpose()?;
    let count = |n: i64| {
        u64::try_from(n).map_err(|_| StoreError::corrupt(T, &h.id, "negative finding count"))
    };
    Ok(Host {
        id: uuid_from_db(T, &h.id)?,
        group: h.group,
        ring: h.ring,
        labels,
        public_key: h.public_key,
        facts,
        machine_id: h.machine_id,
        ecosystem: h.ecosystem,
        enrolled_with: uuid_from_db(T, &h.enrolled_with)?,
        enrolled_at: ts_from_db(T, &h.id, h.enrolled_at)?,
        last_seen: opt_ts_from_db(T, &h.id, h.last_seen)?,
        inventory_digest,
        state,
        state_reason: h.state_reason,
        state_changed_at: opt_ts_from_db(T, &h.id, h.state_changed_at)?,
        baseline_met_at: opt_ts_from_db(T, &h.id, h.baseline_met_at)?,
        check_in_seq,
        open_findings: count(h.open_findings)?,
        open_fixable: count(h.open_fixable)?,
    })
}

pub(crate) fn insert(
    c: &Connection,
    host: &NewHost,
    facts_json: &str,
    token: &EnrollmentToken,
    now: Timestamp,
) -> Result<()> {
    let inserted = c.execute(
        // `seq`, the findings' compact host key (migration 0010), counts up in enrolment
        // order; one writer at a time, so the next number is free.
        "INSERT INTO hosts (id, grp, ring, labels, public_key, facts, machine_id, ecosystem,
                            enrolled_with, enrolled_at, last_seen, inventory_digest, seq)
         VALUES (?1, ?2, NULL, '{}', ?3, ?4, ?5, ?6, ?7, ?8, ?8, NULL,
                 (SELECT coalesce(max(seq), 0) + 1 FROM hosts))",
        params![
            host.id.to_string(),
            token.group,
            host.public_key,
            facts_json,
            host.facts.machine_id,
            host.facts.os.ecosystem,
            token.id.to_string(),
            ts_to_db("now", now)?
        ],
    );
    match inserted {
        Ok(_) => Ok(()),
        Err(e) if is_unique_violation(&e) => Err(StoreError::AlreadyExists {
            kind: "host",
            id: host.id.to_string(),
        }),
        Err(e) => Err(StoreError::backend("enroll host", e)),
    }
}

/// Refuses an enrolment whose public key a host (of any standing) already has: every
/// enrolment makes a new key, so this is the same enrolment request sent again, to a server
/// (or a restart) that never saw its nonce (migration 0016). One writer at a time: the first
/// enrolment's host is committed or this transaction's own.
pub(crate) fn refuse_known_key(c: &Connection, public_key: &str) -> Result<()> {
    let known = c
        .query_row(
            "SELECT 1 FROM hosts WHERE public_key = ?1 LIMIT 1",
            [public_key],
            |_| Ok(()),
        )
        .optional()
        .map_err(db("enroll host"))?;
    match known {
        Some(()) => Err(patchwarden_store::host::key_in_use(public_key)),
        None => Ok(()),
    }
}

pub(crate) fn get(c: &Connection, id: Uuid) -> Result<Option<Host>> {
    // Every agent request reads its host (and a check-in reads it twice on the writer
    // thread): the statement is made once and kept in the connection's cache.
    static SQL: std::sync::LazyLock<String> =
        std::sync::LazyLock::new(|| format!("SELECT {COLUMNS} FROM hosts WHERE id = ?1"));
    let raw = c
        .prepare_cached(&SQL)
        .and_then(|mut s| s.query_row([id.to_string()], raw).optional())
        .map_err(db("get host"))?;
    raw.map(decode).transpose()
}

/// The hosts of `ids` that exist, a thousand ids per query.
pub(crate) fn get_many(c: &Connection, ids: &[Uuid]) -> Result<Vec<Host>> {
    let mut out = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(1000) {
        let marks = vec!["?"; chunk.len()].join(",");
        let args = chunk.iter().map(|id| Value::Text(id.to_string())).collect();
        out.extend(query(
            c,
            &format!("SELECT {COLUMNS} FROM hosts WHERE id IN ({marks})"),
            args,
        )?);
    }
    Ok(out)
}

fn get_existing(c: &Connection, id: Uuid) -> Result<Host> {
    get(c, id)?.ok_or_else(|| StoreError::NotFound {
        kind: "host",
        id: id.to_string(),
    })
}

fn query(c: &Connection, sql: &str, args: Vec<Value>) -> Result<Vec<Host>> {
    let mut stmt = c.prepare_cached(sql).map_err(db("list hosts"))?;
    let rows = stmt
        .query_map(params_from_iter(args), raw)
        .map_err(db("list hosts"))?;
    let mut out = Vec::new();
    for r in rows {
        out.push(decode(r.map_err(db("list hosts"))?)?);
    }
    Ok(out)
}

pub(crate) fn list(c: &Connection, f: &HostFilter) -> Result<Vec<Host>> {
    let mut sql = format!("SELECT {COLUMNS} FROM hosts WHERE 1 = 1");
    let mut args: Vec<Value> = Vec::new();
    let mut push = |cond: &str, v: Value, sql: &mut String| {
        args.push(v);
        sql.push_str(&cond.replace('?', &format!("?{}", args.len())));
    };
    if let Some(g) = &f.group {
        push(" AND grp = ?", Value::Text(g.clone()), &mut sql);
    }
    if let Some(r) = &f.ring {
        push(" AND ring = ?", Value::Text(r.clone()), &mut sql);
    }
    if let Some(e) = &f.ecosystem {
        push(" AND ecosystem = ?", Value::Text(e.clone()), &mut sql);
    }
    if let Some(t) = f.last_seen_before {
        let t = ts_to_db("last_seen_before", t)?;
        push(
            " AND (last_seen IS NULL OR last_seen < ?)",
            Value::Integer(t),
            &mut sql,
        );
    }
    if let Some(t) = f.last_seen_since {
        let t = ts_to_db("last_seen_since", t)?;
        push(" AND last_seen >= ?", Value::Integer(t), &mut sql);
    }
    if let Some(a) = f.after {
        push(" AND id > ?", Value::Text(a.to_string()), &mut sql);
    }
    sql.push_str(" ORDER BY id");
    if let Some(l) = f.limit {
        push(" LIMIT ?", Value::Integer(i64::from(l)), &mut sql);
    }
    query(c, &sql, args)
}

pub(crate) fn by_machine_id(c: &Connection, machine_id: &str) -> Result<Vec<Host>> {
    query(
        c,
        &format!("SELECT {COLUMNS} FROM hosts WHERE machine_id = ?1 ORDER BY enrolled_at, id"),
        vec![Value::Text(machine_id.to_owned())],
    )
}

pub(crate) fn check_in(
    c: &Connection,
    id: Uuid,
    facts: &HostFacts,
    facts_json: &str,
    now: Timestamp,
    entry: &AuditEntry,
) -> Result<Host> {
    let before = get_existing(c, id)?;
    let now = ts_to_db("now", now)?;
    // Cached, as every statement of a check-in or an upload: each runs on the writer thread.
    c.prepare_cached(
        "UPDATE hosts SET facts = ?2, machine_id = ?3, ecosystem = ?4, last_seen = ?5
         WHERE id = ?1",
    )
    .and_then(|mut s| {
        s.execute(params![
            id.to_string(),
            facts_json,
            facts.machine_id,
            facts.os.ecosystem,
            now
        ])
    })
    .map_err(db("record check-in"))?;
    if &before.facts != facts {
        audit::append(c, entry)?;
    }
    get_existing(c, id)
}

pub(crate) fn set_placement(
    c: &Connection,
    id: Uuid,
    p: &HostPlacement,
    _now: Timestamp,
    entry: &AuditEntry,
) -> Result<Host> {
    let before = get_existing(c, id)?;
    let labels = patchwarden_store::codec::to_json("host labels", &p.labels, usize::MAX)?;
    c.execute(
        "UPDATE hosts SET grp = ?2, ring = ?3, labels = ?4 WHERE id = ?1",
        params![id.to_string(), p.group, p.ring, labels],
    )
    .map_err(db("set host placement"))?;
    if before.group != p.group || before.ring != p.ring || before.labels != p.labels {
        audit::append(c, entry)?;
    }
    get_existing(c, id)
}

pub(crate) fn change_state(
    c: &Connection,
    id: Uuid,
    change: &HostStateChange,
    now: Timestamp,
    entry: AuditEntry,
) -> Result<Host> {
    let before = get_existing(c, id)?;
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
            c.execute(
                "UPDATE hosts SET state = ?2, state_reason = ?3, state_changed_at = ?4
                 WHERE id = ?1",
                params![id.to_string(), state.as_str(), reason, at],
            )
        }
        HostStateChange::BaselineMet => c.execute(
            "UPDATE hosts SET baseline_met_at = ?2 WHERE id = ?1",
            params![id.to_string(), at],
        ),
    };
    updated.map_err(db("change host state"))?;
    audit::append(c, &state_change_audit(&before, change, now, entry))?;
    get_existing(c, id)
}

/// The compare-and-set of the check-in counter: one statement that changes the row only when
/// `seq` exceeds the stored counter, so the writer lock makes it atomic; a refusal reads the
/// counter it lost to.
pub(crate) fn advance_counter(c: &Connection, id: Uuid, seq: u64) -> Result<()> {
    let value = seq_to_db(seq)?;
    let n = c
        .prepare_cached(
            "UPDATE hosts SET check_in_seq = ?2
             WHERE id = ?1 AND (check_in_seq IS NULL OR check_in_seq < ?2)",
        )
        .and_then(|mut s| s.execute(params![id.to_string(), value]))
        .map_err(db("advance check-in counter"))?;
    if n == 1 {
        return Ok(());
    }
    let host = get_existing(c, id)?;
    Err(StoreError::CounterNotIncreased {
        host: id,
        seq,
        last: host.check_in_seq.unwrap_or(0),
    })
}

pub(crate) fn record_nonce(
    c: &Connection,
    host: Uuid,
    nonce: &str,
    expires_at: Timestamp,
    now: Timestamp,
) -> Result<()> {
    let now = ts_to_db("now", now)?;
    let expires_at = ts_to_db("nonce expires_at", expires_at)?;
    // An expired record of the same nonce no longer protects anything (the request's own
    // timestamp window refuses anything that old); replacing it keeps the table small.
    let stored = c
        .prepare_cached(
            "INSERT INTO nonces (host, nonce, expires_at) VALUES (?1, ?2, ?3)
             ON CONFLICT (host, nonce) DO UPDATE SET expires_at = excluded.expires_at
             WHERE nonces.expires_at <= ?4",
        )
        .and_then(|mut s| s.execute(params![host.to_string(), nonce, expires_at, now]))
        .map_err(|e| match e.sqlite_error_code() {
            Some(rusqlite::ErrorCode::ConstraintViolation) => StoreError::NotFound {
                kind: "host",
                id: host.to_string(),
            },
            _ => StoreError::backend("record nonce", e),
        })?;
    if stored == 0 {
        return Err(StoreError::Replay {
            host,
            nonce: nonce.to_owned(),
        });
    }
    Ok(())
}

pub(crate) fn purge_nonces(c: &Connection, now: Timestamp) -> Result<u64> {
    let n = c
        .execute(
            "DELETE FROM nonces WHERE expires_at <= ?1",
            [ts_to_db("now", now)?],
        )
        .map_err(db("purge nonces"))?;
    Ok(u64::try_from(n).unwrap_or(u64::MAX))
}

/// Sets the host's inventory digest (inventory replacement).
pub(crate) fn set_digest(c: &Connection, id: Uuid, digest: &PackagesDigest) -> Result<()> {
    let n = c
        .prepare_cached("UPDATE hosts SET inventory_digest = ?2 WHERE id = ?1")
        .and_then(|mut s| s.execute(params![id.to_string(), digest.to_string()]))
        .map_err(db("replace inventory"))?;
    if n == 0 {
        return Err(StoreError::NotFound {
            kind: "host",
            id: id.to_string(),
        });
    }
    Ok(())
}
