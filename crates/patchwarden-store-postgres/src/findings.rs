//! Findings on PostgreSQL: a sync locks the host row (so two syncs of one host run one after
//! the other), reads its open findings, lets `patchwarden_store::finding::plan_sync` decide,
//! and applies the plan in the same transaction; listing and history.

use deadpool_postgres::GenericClient;
use jiff::Timestamp;
use patchwarden_core::audit::AuditEntry;
use patchwarden_core::inventory::Package;
use patchwarden_core::policy::Class;
use patchwarden_store::codec::{from_json, opt_ts_from_db, opt_ts_to_db, ts_from_db, ts_to_db};
use patchwarden_store::finding::{FindingKey, OpenRow, plan_sync};
use patchwarden_store::{
    Classification, ClassificationChange, CurrentFinding, FindingFilter, FindingState, FindingSync,
    Result, StoreError, StoredFinding,
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

pub(crate) async fn sync<C: GenericClient>(
    c: &C,
    host: Uuid,
    current: &[CurrentFinding],
    installed: &[Package],
    now: Timestamp,
    entry: &AuditEntry,
) -> Result<FindingSync> {
    hosts::get_locked(c, host).await?;
    let rows = query(
        c,
        "SELECT id, package, arch, vulnerability, body, class, due_at, policy, rule
         FROM findings WHERE host = $1 AND state = 'open'",
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
            finding_json: col(T, r, 4)?,
            classification: classification(id, r, 5)?,
        });
    }
    let plan = plan_sync(open, current, installed)?;
    let now_db = ts_to_db("now", now)?;
    for n in &plan.open {
        let due_at = opt_ts_to_db("finding due_at", n.classification.due_at)?;
        let row = query_opt(
            c,
            "INSERT INTO findings (host, package, arch, vulnerability, state, body, class,
                                   due_at, policy, rule, first_seen, last_seen)
             VALUES ($1, $2, $3, $4, 'open', $5, $6, $7, $8, $9, $10, $10)
             RETURNING id",
            &[
                &host,
                &n.key.package,
                &n.key.arch,
                &n.key.vulnerability,
                &n.finding_json,
                &n.classification.class.map(Class::as_str),
                &due_at,
                &n.classification.policy,
                &n.classification.rule,
                &now_db,
            ],
        )
        .await
        .map_err(pg("open finding"))?
        .ok_or_else(|| StoreError::Backend {
            op: "open finding",
            reason: "the insert returned no id".into(),
        })?;
        let id: i64 = col(T, &row, 0)?;
        add_history(c, id, now_db, &n.classification).await?;
    }
    for (id, body) in &plan.refresh {
        execute(
            c,
            "UPDATE findings SET body = $2 WHERE id = $1",
            &[id, body],
        )
        .await
        .map_err(pg("refresh finding"))?;
    }
    for (id, cl) in &plan.reclassify {
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
    for (id, fixed) in &plan.close {
        execute(
            c,
            "UPDATE findings SET state = 'closed', closed_at = $2, last_seen = $2,
                                 fixed_version = $3
             WHERE id = $1",
            &[id, &now_db, fixed],
        )
        .await
        .map_err(pg("close finding"))?;
    }
    // `last_seen` of every kept finding moves to now in one statement: the open ones that
    // were not closed above are exactly the kept ones.
    execute(
        c,
        "UPDATE findings SET last_seen = $2 WHERE host = $1 AND state = 'open'",
        &[&host, &now_db],
    )
    .await
    .map_err(pg("sync findings"))?;
    if plan.summary.changed() {
        let mut entry = entry.clone();
        if entry.after.is_none() {
            entry.after = serde_json::to_value(plan.summary).ok();
        }
        audit::append(c, &entry).await?;
    }
    Ok(plan.summary)
}

const COLUMNS: &str = "id, host, state, body, class, due_at, policy, rule, first_seen, \
                       last_seen, closed_at, fixed_version";

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

pub(crate) async fn count_open<C: GenericClient>(c: &C, host: Uuid) -> Result<u64> {
    let rows = query(
        c,
        "SELECT COUNT(*) FROM findings WHERE host = $1 AND state = 'open'",
        &[&host],
    )
    .await
    .map_err(pg("count open findings"))?;
    let n: i64 = rows.first().map_or(0, |r| r.get(0));
    Ok(u64::try_from(n).unwrap_or(0))
}

pub(crate) async fn any_open_fixable<C: GenericClient>(c: &C, host: Uuid) -> Result<bool> {
    // `fixed` lives in the finding's JSON body: EXISTS stops at the first fixable finding.
    let rows = query(
        c,
        "SELECT EXISTS (SELECT 1 FROM findings WHERE host = $1 AND state = 'open' \
         AND (body::jsonb ->> 'fixed') IS NOT NULL)",
        &[&host],
    )
    .await
    .map_err(pg("look for a fixable finding"))?;
    Ok(rows.first().is_some_and(|r| r.get(0)))
}

pub(crate) async fn list<C: GenericClient>(c: &C, f: &FindingFilter) -> Result<Vec<StoredFinding>> {
    let mut sql = format!("SELECT {COLUMNS} FROM findings WHERE TRUE");
    let mut args: Vec<Box<dyn ToSql + Sync + Send>> = Vec::new();
    let mut push = |cond: &str, v: Box<dyn ToSql + Sync + Send>, sql: &mut String| {
        args.push(v);
        sql.push_str(&cond.replace('?', &format!("${}", args.len())));
    };
    if let Some(h) = f.host {
        push(" AND host = ?", Box::new(h), &mut sql);
    }
    if let Some(s) = f.state {
        push(" AND state = ?", Box::new(s.as_str().to_owned()), &mut sql);
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
    rows.iter()
        .map(|r| {
            Ok(ClassificationChange {
                at: ts_from_db("finding_history", &finding, col("finding_history", r, 0)?)?,
                classification: classification(finding, r, 1)?,
            })
        })
        .collect()
}
