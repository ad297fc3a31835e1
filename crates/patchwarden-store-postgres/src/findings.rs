//! Findings on PostgreSQL: a sync locks the host row (so two syncs of one host run one after
//! the other), reads its open findings, lets `patchwarden_store::finding::plan_sync` decide,
//! and applies the plan in the same transaction; listing and history.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Mutex, PoisonError};

use deadpool_postgres::GenericClient;
use jiff::Timestamp;
use patchwarden_core::audit::AuditEntry;
use patchwarden_core::policy::Class;
use patchwarden_store::codec::{from_json, opt_ts_from_db, opt_ts_to_db, ts_from_db, ts_to_db};
use patchwarden_store::finding::{FindingKey, FixingVersions, OpenRow, PreparedFinding, plan_sync};
use patchwarden_store::{
    Classification, ClassificationChange, FindingFilter, FindingState, FindingSync, RequestNonce,
    Result, StoreError, StoredFinding,
};
use tokio_postgres::Row;
use tokio_postgres::types::ToSql;
use uuid::Uuid;

use crate::pipelined::{AuditedTx, Batch};
use crate::{PgStore, col, execute, hosts, pg, query, query_opt};

const T: &str = "findings";

fn classification(key: i64, r: &Row, first: usize) -> Result<Classification> {
    let class: Option<String> = col(T, r, first)?;
    let due_at: Option<i64> = col(T, r, first + 1)?;
    Ok(Classification {
        class: class
            .map(|c| {
                c.parse::<Class>()
                    .map_err(|e| StoreError::corrupt(T, key, e))
            })
            .transpose()?,
        due_at: opt_ts_from_db(T, &key, due_at)?,
        policy: col(T, r, first + 2)?,
        rule: col(T, r, first + 3)?,
    })
}

async fn add_history<C: GenericClient>(c: &C, id: i64, at: i64, cl: &Classification) -> Result<()> {
    let due_at = opt_ts_to_db("finding due_at", cl.due_at)?;
    execute(
        c,
        "INSERT INTO finding_history (finding, at, class, due_at, policy, rule)
         VALUES ($1, $2, $3, $4, $5, $6)",
        &[
            &id,
            &at,
            &cl.class.map(Class::as_str),
            &due_at,
            &cl.policy,
            &cl.rule,
        ],
    )
    .await
    .map_err(pg("record finding history"))?;
    Ok(())
}

/// How many body digests a store remembers at most (some 5 MiB); when full it starts again.
const KNOWN_BODIES_AT_MOST: usize = 100_000;

/// The digests of the finding bodies this store has seen committed. A fleet of similar hosts
/// shares its bodies, so nearly every body a sync names is stored already: the sync sends the
/// text only of bodies not known here (inserted if absent, in the same flight as the
/// findings), and the findings name their bodies by digest, looked up by the insert itself.
/// The sync then needs no read of the bodies' ids, and an upload is two round trips.
///
/// Bodies are never deleted (migration 0013 refuses to delete one still named), so what was
/// committed stays; if one is gone all the same (a restore, a hand edit), the insert looking
/// it up finds no id, its `NOT NULL` refuses the finding and the transaction rolls back; the
/// memory is then forgotten, and the sync's retry stores the body again. Naming by digest
/// means a stale memory can fail a sync but never attach a finding to another body.
#[derive(Debug, Default)]
pub(crate) struct KnownBodies {
    digests: Mutex<HashSet<[u8; 32]>>,
}

impl KnownBodies {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashSet<[u8; 32]>> {
        self.digests.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// After a sync's transaction ended: its new bodies are known if it committed; if it
    /// failed, nothing is (a remembered body may be the cause).
    pub(crate) fn after<T>(&self, finished: &Result<T>, new: Vec<[u8; 32]>) {
        let mut known = self.lock();
        if finished.is_err() {
            known.clear();
            return;
        }
        if known.len() + new.len() > KNOWN_BODIES_AT_MOST {
            known.clear();
        }
        known.extend(new);
    }
}

/// The host's row, locked so that two syncs of one host run one after the other (`NO KEY
/// UPDATE`, the lock the sync's update of the row takes anyway).
const LOCK_HOST: &str = "SELECT 1 FROM hosts WHERE id = $1 FOR NO KEY UPDATE";

/// The host's open findings, with their keys (`0018_finding_subjects`) and their bodies'
/// digests.
const OPEN_ROWS: &str =
    "SELECT f.id, s.package, s.arch, s.vulnerability, b.digest, f.class, f.due_at, f.policy,
        f.rule
 FROM findings f
 JOIN finding_bodies b ON b.id = f.body_id
 JOIN finding_subjects s ON s.id = f.subject
 WHERE f.host = $1 AND f.state = 'open'";

/// A host's sync, decided: its writes batched for the end of the transaction, what it changed,
/// its audit event (when anything changed), and the host's counts after it, which the caller
/// writes to the host's row with whatever else it changes there.
pub(crate) struct Planned {
    pub(crate) batch: Batch,
    pub(crate) summary: FindingSync,
    pub(crate) event: Option<AuditEntry>,
    pub(crate) open_findings: i64,
    pub(crate) open_fixable: i64,
    /// The earliest due date of the host's open findings, for `hosts.next_due`
    /// (`0017_findings_due_by_host`).
    pub(crate) next_due: Option<i64>,
    /// The digests of the bodies the batch stores (if absent), for [`KnownBodies::after`].
    pub(crate) new_bodies: Vec<[u8; 32]>,
}

/// Opens a sync's transaction, its two reads (the host's lock and its open findings) sent with
/// the `BEGIN`, and decides the sync. What it writes is in the returned batch, for the caller
/// to send with the rest of the transaction's writes, its audit events and its commit
/// ([`AuditedTx::finish`]).
///
/// With a request's `nonce`, it is recorded in the same first flight, after the lock: a
/// replay finds it recorded and the sync fails with [`StoreError::Replay`] before deciding
/// anything.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn begin(
    store: &PgStore,
    op: &'static str,
    host: Uuid,
    current: Vec<PreparedFinding>,
    fixing: &FixingVersions,
    nonce: Option<&RequestNonce>,
    now: Timestamp,
    entry: &AuditEntry,
) -> Result<(AuditedTx, Planned)> {
    let args: [&(dyn ToSql + Sync); 1] = [&host];
    let now_db = ts_to_db("now", now)?;
    let expires = nonce
        .map(|n| ts_to_db("nonce expires_at", n.expires_at))
        .transpose()?;
    let nonce_args: Option<[&(dyn ToSql + Sync); 4]> = nonce
        .zip(expires.as_ref())
        .map(|(n, expires)| [&host as _, &n.nonce as _, expires as _, &now_db as _]);
    let mut reads: Vec<(&str, &[&(dyn ToSql + Sync)], &'static str)> = vec![
        (LOCK_HOST, &args[..], "lock host"),
        (OPEN_ROWS, &args[..], "sync findings"),
    ];
    if let Some(a) = &nonce_args {
        reads.push((hosts::RECORD_NONCE_LOCKED, &a[..], "record nonce"));
    }
    let (tx, reads) = AuditedTx::begin_with(store, op, &reads).await?;
    let replayed = match (nonce, reads.get(2)) {
        (Some(n), Some(recorded)) if recorded.is_empty() && reads[0].len() == 1 => {
            Some(StoreError::Replay {
                host,
                nonce: n.nonce.clone(),
            })
        }
        _ => None,
    };
    let planned = match (replayed, tx.client()) {
        (Some(e), _) | (None, Err(e)) => Err(e),
        (None, Ok(c)) => plan(c, &store.bodies, host, &reads, current, fixing, now, entry).await,
    };
    match planned {
        Ok(p) => Ok((tx, p)),
        Err(e) => {
            tx.rollback().await;
            Err(e)
        }
    }
}

/// Decides the sync from the reads [`begin`] sent, reclassifying (rows read back, and rare),
/// and batches its other writes: the bodies not known to be stored, then the findings.
#[allow(clippy::too_many_arguments)]
async fn plan<C: GenericClient>(
    c: &C,
    known: &KnownBodies,
    host: Uuid,
    reads: &[Vec<Row>],
    current: Vec<PreparedFinding>,
    fixing: &FixingVersions,
    now: Timestamp,
    entry: &AuditEntry,
) -> Result<Planned> {
    let (Some(locked), Some(rows)) = (reads.first(), reads.get(1)) else {
        return Err(StoreError::Backend {
            op: "sync findings",
            reason: "the transaction's first reads were not answered".into(),
        });
    };
    if locked.is_empty() {
        return Err(StoreError::NotFound {
            kind: "host",
            id: host.to_string(),
        });
    }
    let mut open = Vec::with_capacity(rows.len());
    for r in rows {
        let id: i64 = col(T, r, 0)?;
        open.push(OpenRow {
            id,
            key: FindingKey {
                package: col(T, r, 1)?,
                arch: col(T, r, 2)?,
                vulnerability: col(T, r, 3)?,
            },
            // The plan compares digests, not bodies.
            body_digest: col::<Option<Vec<u8>>>(T, r, 4)?
                .and_then(|d| <[u8; 32]>::try_from(d).ok()),
            classification: classification(id, r, 5)?,
        });
    }
    let plan = plan_sync(open, current, fixing)?;
    let now_db = ts_to_db("now", now)?;
    // The bodies not known to be stored, in digest order (two syncs storing the same new
    // bodies then lock them in the same order and cannot deadlock).
    // Each with its finding's key, its subject (`0018_finding_subjects`).
    let unknown: BTreeMap<[u8; 32], (&str, &FindingKey)> = {
        let known = known.lock();
        plan.open
            .iter()
            .map(|n| (&n.body, &n.key))
            .chain(plan.refresh.iter().map(|r| (&r.body, &r.key)))
            .filter(|(b, _)| !known.contains(&b.digest))
            .map(|(b, key)| (b.digest, (b.json.as_str(), key)))
            .collect()
    };
    // Reclassifications first and one by one: each reads the row it makes history of, and
    // they are rare (a policy or an advisory's severity changed).
    for (id, cl) in &plan.reclassify {
        // The classification the finding had until now becomes history first, if it is not
        // yet (it was the row's own since the finding opened).
        execute(
            c,
            "INSERT INTO finding_history (finding, at, class, due_at, policy, rule)
             SELECT id, first_seen, class, due_at, policy, rule FROM findings
             WHERE id = $1 AND NOT EXISTS (SELECT 1 FROM finding_history WHERE finding = $1)",
            &[id],
        )
        .await
        .map_err(pg("record finding history"))?;
        let due_at = opt_ts_to_db("finding due_at", cl.due_at)?;
        execute(
            c,
            "UPDATE findings SET class = $2, due_at = $3, policy = $4, rule = $5 WHERE id = $1",
            &[
                id,
                &cl.class.map(Class::as_str),
                &due_at,
                &cl.policy,
                &cl.rule,
            ],
        )
        .await
        .map_err(pg("reclassify finding"))?;
        add_history(c, *id, now_db, cl).await?;
    }
    let mut batch = Batch::default();
    let new_bodies: Vec<[u8; 32]> = unknown.keys().copied().collect();
    if !unknown.is_empty() {
        let n = unknown.len();
        let mut digests = Vec::with_capacity(n);
        let mut texts = Vec::with_capacity(n);
        let mut package = Vec::with_capacity(n);
        let mut arch = Vec::with_capacity(n);
        let mut vulnerability = Vec::with_capacity(n);
        for (d, (text, key)) in &unknown {
            digests.push(d.to_vec());
            texts.push((*text).to_owned());
            package.push(key.package.clone());
            arch.push(key.arch.clone());
            vulnerability.push(key.vulnerability.clone());
        }
        // Their subjects first (the next statement sees them: each statement of the flight
        // takes its own snapshot), in key order for the same reason as the bodies' order.
        batch.push(
            "store finding subject",
            "INSERT INTO finding_subjects (package, arch, vulnerability)
                 SELECT p, a, v FROM UNNEST($1::text[], $2::text[], $3::text[]) AS t (p, a, v)
                 ORDER BY p, a, v
                 ON CONFLICT (package, arch, vulnerability) DO NOTHING",
            vec![
                Box::new(package.clone()),
                Box::new(arch.clone()),
                Box::new(vulnerability.clone()),
            ],
        );
        batch.push(
            "store finding body",
            "INSERT INTO finding_bodies (digest, body, subject)
                 SELECT d, b, (SELECT s.id FROM finding_subjects s
                               WHERE s.package = p AND s.arch = a AND s.vulnerability = v)
                 FROM UNNEST($1::bytea[], $2::text[], $3::text[], $4::text[], $5::text[])
                      AS t (d, b, p, a, v)
                 ORDER BY d
                 ON CONFLICT (digest) DO NOTHING",
            vec![
                Box::new(digests),
                Box::new(texts),
                Box::new(package),
                Box::new(arch),
                Box::new(vulnerability),
            ],
        );
    }
    if !plan.open.is_empty() {
        // One statement for all new findings. No history rows: a finding's first
        // classification is its row's until the first change (see `reclassify`, `history`).
        let n = plan.open.len();
        let mut body = Vec::with_capacity(n);
        let mut class = Vec::with_capacity(n);
        let mut due_at = Vec::with_capacity(n);
        let mut policy = Vec::with_capacity(n);
        let mut rule = Vec::with_capacity(n);
        for f in &plan.open {
            body.push(f.body.digest.to_vec());
            due_at.push(opt_ts_to_db("finding due_at", f.classification.due_at)?);
        }
        for f in plan.open {
            class.push(f.classification.class.map(Class::as_str));
            policy.push(f.classification.policy);
            rule.push(f.classification.rule);
        }
        // Each body looked up by its digest, row by row, in the findings' order: the `LIMIT`
        // (the digest is unique) keeps the planner from flattening the look-up into a join,
        // which may hash the whole table of bodies, and the findings get their ids in the
        // order given.
        batch.push(
            "open finding",
            "INSERT INTO findings (host, subject, state, body_id, class, due_at, policy, rule,
                                       first_seen, last_seen)
                 SELECT $1::uuid, fb.subject, 'open', fb.id, cl, d, po, r, $7::int8, $7::int8
                 FROM UNNEST($2::bytea[], $3::text[], $4::int8[], $5::text[], $6::text[])
                      AS t (b, cl, d, po, r)
                 LEFT JOIN LATERAL (SELECT id, subject FROM finding_bodies
                                    WHERE digest = t.b LIMIT 1) fb ON TRUE",
            vec![
                Box::new(host),
                Box::new(body),
                Box::new(class),
                Box::new(due_at),
                Box::new(policy),
                Box::new(rule),
                Box::new(now_db),
            ],
        );
    }
    if !plan.refresh.is_empty() {
        let ids: Vec<i64> = plan.refresh.iter().map(|r| r.id).collect();
        let body: Vec<Vec<u8>> = plan
            .refresh
            .iter()
            .map(|r| r.body.digest.to_vec())
            .collect();
        batch.push(
            "refresh finding",
            "UPDATE findings f
                 SET body_id = (SELECT fb.id FROM finding_bodies fb WHERE fb.digest = t.b)
                 FROM UNNEST($1::int8[], $2::bytea[]) AS t (id, b) WHERE f.id = t.id",
            vec![Box::new(ids), Box::new(body)],
        );
    }
    if !plan.close.is_empty() {
        let (ids, fixed): (Vec<i64>, Vec<Option<String>>) = plan.close.into_iter().unzip();
        batch.push(
            "close finding",
            "UPDATE findings f SET state = 'closed', closed_at = $2, last_seen = $2,
                                       fixed_version = t.fixed
                 FROM UNNEST($1::int8[], $3::text[]) AS t (id, fixed) WHERE f.id = t.id",
            vec![Box::new(ids), Box::new(now_db), Box::new(fixed)],
        );
    }
    // `last_seen` of every kept finding moves to now in one statement: the open ones that
    // are not closed above are exactly the kept ones (and those opened now already say now).
    // With none kept (a first inventory) there is nothing to move. (The statements of one
    // flight run in order, so this one sees the closes before it.)
    if plan.summary.kept > 0 {
        batch.push(
            "sync findings",
            "UPDATE findings SET last_seen = $2
                 WHERE host = $1 AND state = 'open' AND last_seen <> $2",
            vec![Box::new(host), Box::new(now_db)],
        );
    }
    let event = plan.summary.changed().then(|| {
        let mut entry = entry.clone();
        if entry.after.is_none() {
            entry.after = serde_json::to_value(plan.summary).ok();
        }
        entry
    });
    Ok(Planned {
        batch,
        summary: plan.summary,
        event,
        open_findings: count_to_db(plan.open_findings),
        open_fixable: count_to_db(plan.open_fixable),
        next_due: opt_ts_to_db("host next_due", plan.next_due)?,
        new_bodies,
    })
}

/// The body is read by a subquery rather than a join, so that filters can name the findings'
/// columns unqualified.
const COLUMNS: &str = "id, host, state, \
                       (SELECT b.body FROM finding_bodies b WHERE b.id = findings.body_id), \
                       class, due_at, policy, rule, first_seen, last_seen, closed_at, \
                       fixed_version";

fn decode(r: &Row) -> Result<StoredFinding> {
    let id: i64 = col(T, r, 0)?;
    let body: String = col(T, r, 3)?;
    let state: String = col(T, r, 2)?;
    Ok(StoredFinding {
        id,
        host: col(T, r, 1)?,
        finding: from_json(T, &id, &body)?,
        classification: classification(id, r, 4)?,
        state: FindingState::parse(&state)
            .ok_or_else(|| StoreError::corrupt(T, id, format!("state {state:?}")))?,
        first_seen: ts_from_db(T, &id, col(T, r, 8)?)?,
        last_seen: ts_from_db(T, &id, col(T, r, 9)?)?,
        closed_at: opt_ts_from_db(T, &id, col(T, r, 10)?)?,
        fixed_version: col(T, r, 11)?,
    })
}

fn count_to_db(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

pub(crate) async fn count_open<C: GenericClient>(c: &C, host: Uuid) -> Result<u64> {
    let row = query_opt(c, "SELECT open_findings FROM hosts WHERE id = $1", &[&host])
        .await
        .map_err(pg("count open findings"))?;
    let n: i64 = row.map_or(0, |r| r.get(0));
    Ok(u64::try_from(n).unwrap_or(0))
}

pub(crate) async fn any_open_fixable<C: GenericClient>(c: &C, host: Uuid) -> Result<bool> {
    let row = query_opt(
        c,
        "SELECT open_fixable > 0 FROM hosts WHERE id = $1",
        &[&host],
    )
    .await
    .map_err(pg("look for a fixable finding"))?;
    Ok(row.is_some_and(|r| r.get(0)))
}

/// Up to this many open findings on the hosts with something due, a fleet-wide "open and
/// due before" list reads those hosts' findings through the open key and sorts them; beyond
/// it, it walks the findings in id order and filters, which a paged sweep does once in all
/// (`0017_findings_due_by_host`).
const DUE_BY_HOST_MAX_ROWS: i64 = 50_000;

/// For a fleet-wide list of open findings due before `t`: the hosts whose earliest due date
/// is before it, or `None` when they hold so many open findings that walking the findings
/// in id order is the cheaper plan. An empty list means nothing is due.
async fn hosts_due_before<C: GenericClient>(c: &C, t: i64) -> Result<Option<Vec<Uuid>>> {
    let rows = query(
        c,
        "SELECT id, open_findings FROM hosts WHERE next_due < $1",
        &[&t],
    )
    .await
    .map_err(pg("list findings"))?;
    let mut hosts = Vec::with_capacity(rows.len());
    let mut held = 0i64;
    for r in &rows {
        hosts.push(col::<Uuid>("hosts", r, 0)?);
        held = held.saturating_add(col::<i64>("hosts", r, 1)?);
    }
    Ok((held <= DUE_BY_HOST_MAX_ROWS).then_some(hosts))
}

/// Appends a condition with one bound value to `sql`, its `?` numbered as the value's
/// parameter.
fn push_cond(
    args: &mut Vec<Box<dyn ToSql + Sync + Send>>,
    cond: &str,
    v: Box<dyn ToSql + Sync + Send>,
    sql: &mut String,
) {
    args.push(v);
    sql.push_str(&cond.replace('?', &format!("${}", args.len())));
}

fn as_params(args: &[Box<dyn ToSql + Sync + Send>]) -> Vec<&(dyn ToSql + Sync)> {
    args.iter()
        .map(|b| b.as_ref() as &(dyn ToSql + Sync))
        .collect()
}

pub(crate) async fn list<C: GenericClient>(c: &C, f: &FindingFilter) -> Result<Vec<StoredFinding>> {
    // Open findings due before a time, fleet-wide: through the hosts that have one
    // (`hosts.next_due`), there being no index of due dates.
    let due_hosts = match (f.state, f.due_before, f.host) {
        (Some(FindingState::Open), Some(t), None) => {
            hosts_due_before(c, ts_to_db("due_before", t)?).await?
        }
        _ => None,
    };
    if due_hosts.as_ref().is_some_and(Vec::is_empty) {
        return Ok(Vec::new());
    }
    let mut sql = String::from(" WHERE TRUE");
    let mut args: Vec<Box<dyn ToSql + Sync + Send>> = Vec::new();
    // The state is written into the statement rather than bound: the indexes are partial (one
    // state each, migration 0010), and a generic plan can use a partial index only when the
    // query's own text implies its condition. `as_str` is one of two fixed words.
    if let Some(s) = f.state {
        sql.push_str(&format!(" AND state = '{}'", s.as_str()));
    }
    if let Some(h) = f.host {
        let cond = if f.state.is_some() {
            " AND host = ?"
        } else {
            // Both states: each through its own partial index.
            " AND id IN (SELECT id FROM findings WHERE host = ? AND state = 'open' \
             UNION ALL SELECT id FROM findings WHERE host = ? AND state = 'closed')"
        };
        push_cond(&mut args, cond, Box::new(h), &mut sql);
    }
    if let Some(cl) = f.class {
        push_cond(
            &mut args,
            " AND class = ?",
            Box::new(cl.as_str().to_owned()),
            &mut sql,
        );
    }
    if let Some(t) = f.due_before {
        let t = ts_to_db("due_before", t)?;
        push_cond(&mut args, " AND due_at < ?", Box::new(t), &mut sql);
    }
    if let Some(v) = &f.vulnerability {
        push_cond(
            &mut args,
            " AND subject IN (SELECT id FROM finding_subjects WHERE vulnerability = ?)",
            Box::new(v.clone()),
            &mut sql,
        );
    }
    if let Some(a) = f.after_id {
        push_cond(&mut args, " AND id > ?", Box::new(a), &mut sql);
    }
    if let Some(hosts) = due_hosts {
        // Two steps: the matching ids through the open key (given an order and a limit, a
        // generic plan walks the primary key in id order and filters every finding of the
        // fleet instead), then the page's rows by id, the conditions checked again (a finding
        // closed or reclassified between the two is left out). Each step's own value comes
        // last, so the two share the others' numbers; the hosts are not compared again (a
        // finding's host does not change, and a generic plan would compare every row with
        // every host).
        let n = args.len() + 1;
        let ids = {
            let mut params = as_params(&args);
            params.push(&hosts);
            let rows = query(
                c,
                &format!("SELECT id FROM findings{sql} AND host = ANY(${n})"),
                &params,
            )
            .await
            .map_err(pg("list findings"))?;
            let mut ids = rows
                .iter()
                .map(|r| col::<i64>(T, r, 0))
                .collect::<Result<Vec<i64>>>()?;
            ids.sort_unstable();
            if let Some(l) = f.limit {
                ids.truncate(usize::try_from(l).unwrap_or(usize::MAX));
            }
            ids
        };
        push_cond(&mut args, " AND id = ANY(?)", Box::new(ids), &mut sql);
        sql.push_str(" ORDER BY id");
    } else {
        sql.push_str(" ORDER BY id");
        if let Some(l) = f.limit {
            push_cond(&mut args, " LIMIT ?", Box::new(i64::from(l)), &mut sql);
        }
    }
    let rows = query(
        c,
        &format!("SELECT {COLUMNS} FROM findings{sql}"),
        &as_params(&args),
    )
    .await
    .map_err(pg("list findings"))?;
    rows.iter().map(decode).collect()
}

pub(crate) async fn history<C: GenericClient>(
    c: &C,
    finding: i64,
) -> Result<Vec<ClassificationChange>> {
    let rows = query(
        c,
        "SELECT at, class, due_at, policy, rule FROM finding_history
         WHERE finding = $1 ORDER BY id",
        &[&finding],
    )
    .await
    .map_err(pg("read finding history"))?;
    if rows.is_empty() {
        // Never reclassified: its one classification is the row's, since it was first seen.
        let first = query_opt(
            c,
            "SELECT first_seen, class, due_at, policy, rule FROM findings WHERE id = $1",
            &[&finding],
        )
        .await
        .map_err(pg("read finding history"))?;
        return first
            .map(|r| {
                Ok(ClassificationChange {
                    at: ts_from_db(T, &finding, col(T, &r, 0)?)?,
                    classification: classification(finding, &r, 1)?,
                })
            })
            .into_iter()
            .collect();
    }
    rows.iter()
        .map(|r| {
            Ok(ClassificationChange {
                at: ts_from_db("finding_history", &finding, col("finding_history", r, 0)?)?,
                classification: classification(finding, r, 1)?,
            })
        })
        .collect()
}
