//! Findings on PostgreSQL: a sync locks the host row (so two syncs of one host run one after
//! the other), reads its open findings, lets `patchwarden_store::finding::plan_sync` decide,
//! and applies the plan in the same transaction; listing and history.

use std::collections::{BTreeMap, HashMap};

use deadpool_postgres::GenericClient;
use jiff::Timestamp;
use patchwarden_core::audit::AuditEntry;
use patchwarden_core::policy::Class;
use patchwarden_store::codec::{from_json, opt_ts_from_db, opt_ts_to_db, ts_from_db, ts_to_db};
use patchwarden_store::finding::{FindingKey, FixingVersions, OpenRow, PreparedFinding, plan_sync};
use patchwarden_store::{
    Classification, ClassificationChange, FindingFilter, FindingState, FindingSync, Result,
    StoreError, StoredFinding,
};
use tokio_postgres::Row;
use tokio_postgres::types::ToSql;
use uuid::Uuid;

use crate::{audit, col, execute, hosts, pg, query, query_opt};

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

/// The ids of the stored bodies with these digests, storing those no finding had yet (in
/// digest order, so that two syncs storing the same new bodies cannot deadlock).
async fn body_ids<C: GenericClient>(
    c: &C,
    wanted: &BTreeMap<[u8; 32], &str>,
) -> Result<HashMap<[u8; 32], i64>> {
    let mut ids = HashMap::with_capacity(wanted.len());
    if wanted.is_empty() {
        return Ok(ids);
    }
    let read = |rows: Vec<Row>, ids: &mut HashMap<[u8; 32], i64>| -> Result<()> {
        for r in &rows {
            let id: i64 = col("finding_bodies", r, 0)?;
            let digest: Vec<u8> = col("finding_bodies", r, 1)?;
            let digest: [u8; 32] = digest
                .try_into()
                .map_err(|_| StoreError::corrupt("finding_bodies", id, "digest length"))?;
            ids.insert(digest, id);
        }
        Ok(())
    };
    let digests: Vec<&[u8]> = wanted.keys().map(|d| &d[..]).collect();
    let rows = query(
        c,
        "SELECT id, digest FROM finding_bodies WHERE digest = ANY($1::bytea[])",
        &[&digests],
    )
    .await
    .map_err(pg("store finding body"))?;
    read(rows, &mut ids)?;
    let (missing, texts): (Vec<&[u8]>, Vec<&str>) = wanted
        .iter()
        .filter(|(d, _)| !ids.contains_key(*d))
        .map(|(d, b)| (&d[..], *b))
        .unzip();
    if missing.is_empty() {
        return Ok(ids);
    }
    execute(
        c,
        "INSERT INTO finding_bodies (digest, body)
         SELECT d, b FROM UNNEST($1::bytea[], $2::text[]) AS t (d, b) ORDER BY d
         ON CONFLICT (digest) DO NOTHING",
        &[&missing, &texts],
    )
    .await
    .map_err(pg("store finding body"))?;
    let rows = query(
        c,
        "SELECT id, digest FROM finding_bodies WHERE digest = ANY($1::bytea[])",
        &[&missing],
    )
    .await
    .map_err(pg("store finding body"))?;
    read(rows, &mut ids)?;
    Ok(ids)
}

pub(crate) async fn sync<C: GenericClient>(
    c: &C,
    host: Uuid,
    current: Vec<PreparedFinding>,
    fixing: &FixingVersions,
    now: Timestamp,
    entry: &AuditEntry,
) -> Result<FindingSync> {
    let (summary, event) = sync_rows(c, host, current, fixing, now, entry).await?;
    if let Some(event) = event {
        audit::append(c, &event).await?;
    }
    Ok(summary)
}

/// [`sync`] without its audit event, which it returns (when anything changed) for the caller
/// to append: the chain's head stays locked from an append to the commit, so a transaction
/// doing more than the sync appends last.
pub(crate) async fn sync_rows<C: GenericClient>(
    c: &C,
    host: Uuid,
    current: Vec<PreparedFinding>,
    fixing: &FixingVersions,
    now: Timestamp,
    entry: &AuditEntry,
) -> Result<(FindingSync, Option<AuditEntry>)> {
    hosts::get_locked(c, host).await?;
    let rows = query(
        c,
        "SELECT f.id, f.package, f.arch, f.vulnerability, b.digest, f.class, f.due_at, f.policy,
                f.rule
         FROM findings f JOIN finding_bodies b ON b.id = f.body_id
         WHERE f.host = $1 AND f.state = 'open'",
        &[&host],
    )
    .await
    .map_err(pg("sync findings"))?;
    let mut open = Vec::with_capacity(rows.len());
    for r in &rows {
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
    let mut wanted: BTreeMap<[u8; 32], &str> = BTreeMap::new();
    for n in &plan.open {
        wanted.insert(n.body.digest, &n.body.json);
    }
    for (_, new) in &plan.refresh {
        wanted.insert(new.digest, &new.json);
    }
    let bodies = body_ids(c, &wanted).await?;
    let body_of = |digest: &[u8; 32]| {
        bodies
            .get(digest)
            .copied()
            .ok_or_else(|| StoreError::Backend {
                op: "store finding body",
                reason: "a body was neither found nor stored".into(),
            })
    };
    if !plan.open.is_empty() {
        // One statement for all new findings. No history rows: a finding's first
        // classification is its row's until the first change (see `reclassify`, `history`).
        let mut package = Vec::with_capacity(plan.open.len());
        let mut arch = Vec::with_capacity(plan.open.len());
        let mut vulnerability = Vec::with_capacity(plan.open.len());
        let mut body = Vec::with_capacity(plan.open.len());
        let mut class = Vec::with_capacity(plan.open.len());
        let mut due_at = Vec::with_capacity(plan.open.len());
        let mut policy = Vec::with_capacity(plan.open.len());
        let mut rule = Vec::with_capacity(plan.open.len());
        for n in &plan.open {
            package.push(n.key.package.as_str());
            arch.push(n.key.arch.as_str());
            vulnerability.push(n.key.vulnerability.as_str());
            body.push(body_of(&n.body.digest)?);
            class.push(n.classification.class.map(Class::as_str));
            due_at.push(opt_ts_to_db("finding due_at", n.classification.due_at)?);
            policy.push(n.classification.policy.as_deref());
            rule.push(n.classification.rule.as_deref());
        }
        execute(
            c,
            "INSERT INTO findings (host, package, arch, vulnerability, state, body_id, class,
                                   due_at, policy, rule, first_seen, last_seen)
             SELECT $1::uuid, p, a, v, 'open', b, cl, d, po, r, $10::int8, $10::int8
             FROM UNNEST($2::text[], $3::text[], $4::text[], $5::int8[], $6::text[],
                         $7::int8[], $8::text[], $9::text[]) AS t (p, a, v, b, cl, d, po, r)",
            &[
                &host,
                &package,
                &arch,
                &vulnerability,
                &body,
                &class,
                &due_at,
                &policy,
                &rule,
                &now_db,
            ],
        )
        .await
        .map_err(pg("open finding"))?;
    }
    if !plan.refresh.is_empty() {
        let ids: Vec<i64> = plan.refresh.iter().map(|(id, _)| *id).collect();
        let body = plan
            .refresh
            .iter()
            .map(|(_, new)| body_of(&new.digest))
            .collect::<Result<Vec<i64>>>()?;
        execute(
            c,
            "UPDATE findings f SET body_id = t.b
             FROM UNNEST($1::int8[], $2::int8[]) AS t (id, b) WHERE f.id = t.id",
            &[&ids, &body],
        )
        .await
        .map_err(pg("refresh finding"))?;
    }
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
    if !plan.close.is_empty() {
        let ids: Vec<i64> = plan.close.iter().map(|(id, _)| *id).collect();
        let fixed: Vec<Option<&str>> = plan.close.iter().map(|(_, f)| f.as_deref()).collect();
        execute(
            c,
            "UPDATE findings f SET state = 'closed', closed_at = $2, last_seen = $2,
                                   fixed_version = t.fixed
             FROM UNNEST($1::int8[], $3::text[]) AS t (id, fixed) WHERE f.id = t.id",
            &[&ids, &now_db, &fixed],
        )
        .await
        .map_err(pg("close finding"))?;
    }
    // `last_seen` of every kept finding moves to now in one statement: the open ones that
    // were not closed above are exactly the kept ones (and those opened now already say now).
    // With none kept (a first inventory) there is nothing to move.
    if plan.summary.kept > 0 {
        execute(
            c,
            "UPDATE findings SET last_seen = $2
             WHERE host = $1 AND state = 'open' AND last_seen <> $2",
            &[&host, &now_db],
        )
        .await
        .map_err(pg("sync findings"))?;
    }
    // The host's counts, kept on its row (migration 0011); an unchanged count is not written
    // again.
    execute(
        c,
        "UPDATE hosts SET open_findings = $2, open_fixable = $3
         WHERE id = $1 AND (open_findings <> $2 OR open_fixable <> $3)",
        &[
            &host,
            &count_to_db(plan.open_findings),
            &count_to_db(plan.open_fixable),
        ],
    )
    .await
    .map_err(pg("sync findings"))?;
    let event = plan.summary.changed().then(|| {
        let mut entry = entry.clone();
        if entry.after.is_none() {
            entry.after = serde_json::to_value(plan.summary).ok();
        }
        entry
    });
    Ok((plan.summary, event))
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

pub(crate) async fn list<C: GenericClient>(c: &C, f: &FindingFilter) -> Result<Vec<StoredFinding>> {
    let mut sql = format!("SELECT {COLUMNS} FROM findings WHERE TRUE");
    let mut args: Vec<Box<dyn ToSql + Sync + Send>> = Vec::new();
    let mut push = |cond: &str, v: Box<dyn ToSql + Sync + Send>, sql: &mut String| {
        args.push(v);
        sql.push_str(&cond.replace('?', &format!("${}", args.len())));
    };
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
        push(cond, Box::new(h), &mut sql);
    }
    if let Some(cl) = f.class {
        push(" AND class = ?", Box::new(cl.as_str().to_owned()), &mut sql);
    }
    if let Some(t) = f.due_before {
        let t = ts_to_db("due_before", t)?;
        push(" AND due_at < ?", Box::new(t), &mut sql);
    }
    if let Some(v) = &f.vulnerability {
        push(" AND vulnerability = ?", Box::new(v.clone()), &mut sql);
    }
    if let Some(a) = f.after_id {
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
    let rows = query(c, &sql, &params).await.map_err(pg("list findings"))?;
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
