//! Findings on SQLite: a sync reads the host's open findings, lets
//! `patchwarden_store::finding::plan_sync` decide, and applies the plan in the same write
//! transaction; listing and history.

use jiff::Timestamp;
use patchwarden_core::audit::AuditEntry;
use patchwarden_core::policy::Class;
use patchwarden_store::codec::{from_json, opt_ts_from_db, opt_ts_to_db, ts_from_db, ts_to_db};
use patchwarden_store::finding::{FindingKey, FixingVersions, OpenRow, PreparedFinding, plan_sync};
use patchwarden_store::{
    Classification, ClassificationChange, FindingFilter, FindingState, FindingSync, Result,
    StoreError, StoredFinding,
};
use rusqlite::types::Value;
use rusqlite::{Connection, OptionalExtension, Row, params, params_from_iter};
use uuid::Uuid;

use crate::{audit, db, uuid_from_db};

const T: &str = "findings";

// The statements that run once per upload or check-in, named so that `tests::query_plans` can
// check that each reaches its rows through an index (migration 0010 made them partial).

/// A host's open findings (by its `seq`), with their bodies' digests: what a sync compares.
const OPEN_ROWS: &str = "SELECT f.id, f.package, f.arch, f.vulnerability, b.digest, f.class, \
     f.due_at, f.policy, f.rule \
     FROM findings f JOIN finding_bodies b ON b.id = f.body_id \
     WHERE f.host_seq = ?1 AND f.state = 'open'";

/// How many findings one `INSERT` opens: as many of the largest as fit, then smaller ones, so
/// that a handful of statements (all kept in the statement cache) serve every count.
const INSERT_CHUNKS: [usize; 4] = [64, 16, 4, 1];

/// The `INSERT` opening `INSERT_CHUNKS[which]` findings: the host (`?1`, its `seq` `?2`) and
/// the time (`?3`) bound once a statement, then eight parameters a row. (Binding the host's
/// 36-byte id and the time again for each of 600 rows was a sixth of the binding.)
fn insert_open(which: usize) -> &'static str {
    static SQL: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
    let all = SQL.get_or_init(|| {
        INSERT_CHUNKS
            .iter()
            .map(|&n| {
                let rows: Vec<String> = (0..n)
                    .map(|i| {
                        let p = |k: usize| format!("?{}", 4 + i * OPEN_ROW_PARAMS + k);
                        format!(
                            "(?1, ?2, {}, {}, {}, 'open', {}, {}, {}, {}, {}, ?3, ?3)",
                            p(0),
                            p(1),
                            p(2),
                            p(3),
                            p(4),
                            p(5),
                            p(6),
                            p(7)
                        )
                    })
                    .collect();
                format!(
                    "INSERT INTO findings (host, host_seq, package, arch, vulnerability, state, \
                     body_id, class, due_at, policy, rule, first_seen, last_seen) VALUES {}",
                    rows.join(", ")
                )
            })
            .collect()
    });
    &all[which]
}

/// The parameters of one row in [`insert_open`].
const OPEN_ROW_PARAMS: usize = 8;

/// Moves `last_seen` of a host's (by `seq`) kept findings to now.
const TOUCH_KEPT: &str = "UPDATE findings SET last_seen = ?2 \
     WHERE host_seq = ?1 AND state = 'open' AND last_seen <> ?2";

// The host's counts, kept on its row by every sync (migration 0011); an unchanged count is
// not written again.
const SET_COUNTS: &str = "UPDATE hosts SET open_findings = ?2, open_fixable = ?3 \
     WHERE seq = ?1 AND (open_findings <> ?2 OR open_fixable <> ?3)";

const COUNT_OPEN: &str = "SELECT open_findings FROM hosts WHERE id = ?1";

const ANY_OPEN_FIXABLE: &str = "SELECT open_fixable > 0 FROM hosts WHERE id = ?1";

fn count_to_db(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn class_from_db(key: i64, class: Option<String>) -> Result<Option<Class>> {
    class
        .map(|c| {
            c.parse::<Class>()
                .map_err(|e| StoreError::corrupt(T, key, e))
        })
        .transpose()
}

fn classification(
    key: i64,
    class: Option<String>,
    due_at: Option<i64>,
    policy: Option<String>,
    rule: Option<String>,
) -> Result<Classification> {
    Ok(Classification {
        class: class_from_db(key, class)?,
        due_at: opt_ts_from_db(T, &key, due_at)?,
        policy,
        rule,
    })
}

fn add_history(c: &Connection, id: i64, at: i64, cl: &Classification) -> Result<()> {
    let due_at = opt_ts_to_db("finding due_at", cl.due_at)?;
    c.prepare_cached(
        "INSERT INTO finding_history (finding, at, class, due_at, policy, rule)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )
    .and_then(|mut s| {
        s.execute(params![
            id,
            at,
            cl.class.map(Class::as_str),
            due_at,
            cl.policy,
            cl.rule
        ])
    })
    .map_err(db("record finding history"))?;
    Ok(())
}

/// Finding bodies' row ids by digest, remembered across syncs so that a fleet of like hosts
/// does not look up the same few thousand bodies once per finding. Only ids of committed rows
/// are added (after the sync's transaction commits), and bodies are never deleted, so an id
/// found here is always valid; should bodies ever be collected, this must be cleared then.
#[derive(Debug, Default)]
pub(crate) struct BodyIds(rustc_hash::FxHashMap<[u8; 32], i64>);

impl BodyIds {
    /// Bounded: a fleet's distinct bodies are few, but nothing here may grow without limit.
    const MAX: usize = 50_000;

    pub(crate) fn get(&self, digest: &[u8; 32]) -> Option<i64> {
        self.0.get(digest).copied()
    }

    pub(crate) fn remember(&mut self, ids: Vec<([u8; 32], i64)>) {
        if self.0.len() + ids.len() > Self::MAX {
            self.0.clear();
        }
        self.0.extend(ids);
    }
}

/// The id of the stored body with `digest`, storing `json` under it first if no finding had it.
fn body_id(c: &Connection, digest: &[u8; 32], json: &str) -> Result<i64> {
    let found: Option<i64> = c
        .prepare_cached("SELECT id FROM finding_bodies WHERE digest = ?1")
        .and_then(|mut s| s.query_row([&digest[..]], |r| r.get(0)).optional())
        .map_err(db("store finding body"))?;
    if let Some(id) = found {
        return Ok(id);
    }
    c.prepare_cached("INSERT INTO finding_bodies (digest, body) VALUES (?1, ?2)")
        .and_then(|mut s| s.execute(params![&digest[..], json]))
        .map_err(db("store finding body"))?;
    Ok(c.last_insert_rowid())
}

/// What a sync did, and the body ids it used, for [`BodyIds::remember`] once it committed.
pub(crate) struct Synced {
    pub(crate) summary: FindingSync,
    pub(crate) body_ids: Vec<([u8; 32], i64)>,
    /// The plan, handed back so that its few thousand strings are freed by the caller, not
    /// on the writer thread (see [`crate::Spent`]).
    pub(crate) plan: crate::Spent<patchwarden_store::finding::SyncPlan>,
}

pub(crate) fn sync(
    c: &Connection,
    host: Uuid,
    current: Vec<PreparedFinding>,
    fixing: &FixingVersions,
    known: &std::sync::Mutex<BodyIds>,
    now: Timestamp,
    entry: &AuditEntry,
) -> Result<Synced> {
    let host_text = host.to_string();
    // The findings name their host by its `seq` in the indexes (migration 0010).
    let seq: i64 = c
        .prepare_cached("SELECT seq FROM hosts WHERE id = ?1")
        .and_then(|mut s| s.query_row([&host_text], |r| r.get(0)).optional())
        .map_err(db("sync findings"))?
        .ok_or_else(|| StoreError::NotFound {
            kind: "host",
            id: host.to_string(),
        })?;
    let mut open = Vec::new();
    {
        // The bodies' digests, not the bodies: the plan compares digests.
        let mut stmt = c.prepare_cached(OPEN_ROWS).map_err(db("sync findings"))?;
        let rows = stmt
            .query_map([seq], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    FindingKey {
                        package: r.get(1)?,
                        arch: r.get(2)?,
                        vulnerability: r.get(3)?,
                    },
                    r.get::<_, Option<Vec<u8>>>(4)?,
                    r.get::<_, Option<String>>(5)?,
                    r.get::<_, Option<i64>>(6)?,
                    r.get::<_, Option<String>>(7)?,
                    r.get::<_, Option<String>>(8)?,
                ))
            })
            .map_err(db("sync findings"))?;
        for r in rows {
            let (id, key, digest, class, due_at, policy, rule) = r.map_err(db("sync findings"))?;
            open.push(OpenRow {
                id,
                key,
                body_digest: digest.and_then(|d| <[u8; 32]>::try_from(d).ok()),
                classification: classification(id, class, due_at, policy, rule)?,
            });
        }
    }
    let plan = plan_sync(open, current, fixing)?;
    let now_db = ts_to_db("now", now)?;
    let mut body_ids = Vec::with_capacity(plan.open.len() + plan.refresh.len());
    let mut body_of = |digest: &[u8; 32], json: &str| -> Result<i64> {
        let cached = known
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(digest);
        let id = match cached {
            Some(id) => id,
            None => body_id(c, digest, json)?,
        };
        body_ids.push((*digest, id));
        Ok(id)
    };
    // No history row: a finding's first classification is its row's until the first change
    // (see `reclassify` and `history`), so opening writes one row, not two.
    let mut opened = Vec::with_capacity(plan.open.len());
    for n in &plan.open {
        let body = body_of(&n.body.digest, &n.body.json)?;
        let due_at = opt_ts_to_db("finding due_at", n.classification.due_at)?;
        opened.push((n, body, n.classification.class.map(Class::as_str), due_at));
    }
    // Several rows a statement: a host's first inventory opens some 600 at once, and binding,
    // stepping and resetting a statement per row was about 1 M of the server's ~40 M
    // instructions a first inventory (fleet bench, `perf stat`).
    let mut rest = &opened[..];
    while !rest.is_empty() {
        // The last chunk size is 1, so some size always fits.
        let (which, size) = INSERT_CHUNKS
            .into_iter()
            .enumerate()
            .find(|&(_, n)| n <= rest.len())
            .unwrap_or((INSERT_CHUNKS.len() - 1, 1));
        let (chunk, tail) = rest.split_at(size);
        rest = tail;
        let mut args: Vec<&dyn rusqlite::ToSql> = Vec::with_capacity(3 + size * OPEN_ROW_PARAMS);
        args.extend([&host_text as &dyn rusqlite::ToSql, &seq, &now_db]);
        for (n, body, class, due_at) in chunk {
            args.extend([
                &n.key.package as &dyn rusqlite::ToSql,
                &n.key.arch,
                &n.key.vulnerability,
                body,
                class,
                due_at,
                &n.classification.policy,
                &n.classification.rule,
            ]);
        }
        c.prepare_cached(insert_open(which))
            .and_then(|mut s| s.execute(&*args))
            .map_err(db("open finding"))?;
    }
    for r in &plan.refresh {
        let body = body_of(&r.body.digest, &r.body.json)?;
        c.prepare_cached("UPDATE findings SET body_id = ?2 WHERE id = ?1")
            .and_then(|mut s| s.execute(params![r.id, body]))
            .map_err(db("refresh finding"))?;
    }
    for (id, cl) in &plan.reclassify {
        // The classification the finding had until now becomes history first, if it is not
        // yet (it was the row's own since the finding opened).
        c.prepare_cached(
            "INSERT INTO finding_history (finding, at, class, due_at, policy, rule)
             SELECT id, first_seen, class, due_at, policy, rule FROM findings
             WHERE id = ?1 AND NOT EXISTS (SELECT 1 FROM finding_history WHERE finding = ?1)",
        )
        .and_then(|mut s| s.execute(params![id]))
        .map_err(db("record finding history"))?;
        let due_at = opt_ts_to_db("finding due_at", cl.due_at)?;
        c.prepare_cached(
            "UPDATE findings SET class = ?2, due_at = ?3, policy = ?4, rule = ?5 WHERE id = ?1",
        )
        .and_then(|mut s| {
            s.execute(params![
                id,
                cl.class.map(Class::as_str),
                due_at,
                cl.policy,
                cl.rule
            ])
        })
        .map_err(db("reclassify finding"))?;
        add_history(c, *id, now_db, cl)?;
    }
    for (id, fixed) in &plan.close {
        c.prepare_cached(
            "UPDATE findings SET state = 'closed', closed_at = ?2, last_seen = ?2,
                                 fixed_version = ?3
             WHERE id = ?1",
        )
        .and_then(|mut s| s.execute(params![id, now_db, fixed]))
        .map_err(db("close finding"))?;
    }
    // `last_seen` of every kept finding moves to now in one statement, rather than one per
    // finding: the open ones that were not closed above are exactly the kept ones (and those
    // opened now already say now, so they are not written twice). With none kept (a host's
    // first inventory) there is nothing to move, and the statement would only read back every
    // row just written, under the writer's lock.
    if plan.summary.kept > 0 {
        c.prepare_cached(TOUCH_KEPT)
            .and_then(|mut s| s.execute(params![seq, now_db]))
            .map_err(db("sync findings"))?;
    }
    c.prepare_cached(SET_COUNTS)
        .and_then(|mut s| {
            s.execute(params![
                seq,
                count_to_db(plan.open_findings),
                count_to_db(plan.open_fixable)
            ])
        })
        .map_err(db("sync findings"))?;
    if plan.summary.changed() {
        let mut entry = entry.clone();
        if entry.after.is_none() {
            entry.after = serde_json::to_value(plan.summary).ok();
        }
        audit::append(c, &entry)?;
    }
    Ok(Synced {
        summary: plan.summary,
        body_ids,
        plan: crate::Spent(plan),
    })
}

/// The body is read by a subquery rather than a join, so that filters can name the findings'
/// columns unqualified.
const COLUMNS: &str = "id, host, state, \
                       (SELECT b.body FROM finding_bodies b WHERE b.id = findings.body_id), \
                       class, due_at, policy, rule, first_seen, last_seen, closed_at, \
                       fixed_version";

type RawFinding = (
    i64,
    String,
    String,
    String,
    Option<String>,
    Option<i64>,
    Option<String>,
    Option<String>,
    i64,
    i64,
    Option<i64>,
    Option<String>,
);

fn raw(r: &Row<'_>) -> rusqlite::Result<RawFinding> {
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
        r.get(9)?,
        r.get(10)?,
        r.get(11)?,
    ))
}

fn decode(r: RawFinding) -> Result<StoredFinding> {
    let (id, host, state, body, class, due_at, policy, rule, first, last, closed, fixed) = r;
    Ok(StoredFinding {
        id,
        host: uuid_from_db(T, &host)?,
        finding: from_json(T, &id, &body)?,
        classification: classification(id, class, due_at, policy, rule)?,
        state: FindingState::parse(&state)
            .ok_or_else(|| StoreError::corrupt(T, id, format!("state {state:?}")))?,
        first_seen: ts_from_db(T, &id, first)?,
        last_seen: ts_from_db(T, &id, last)?,
        closed_at: opt_ts_from_db(T, &id, closed)?,
        fixed_version: fixed,
    })
}

pub(crate) fn count_open(c: &Connection, host: Uuid) -> Result<u64> {
    let n: Option<i64> = c
        .prepare_cached(COUNT_OPEN)
        .and_then(|mut s| {
            s.query_row(params![host.to_string()], |r| r.get(0))
                .optional()
        })
        .map_err(db("count open findings"))?;
    Ok(n.and_then(|n| u64::try_from(n).ok()).unwrap_or(0))
}

pub(crate) fn any_open_fixable(c: &Connection, host: Uuid) -> Result<bool> {
    let any: Option<bool> = c
        .prepare_cached(ANY_OPEN_FIXABLE)
        .and_then(|mut s| {
            s.query_row(params![host.to_string()], |r| r.get(0))
                .optional()
        })
        .map_err(db("look for a fixable finding"))?;
    Ok(any.unwrap_or(false))
}

pub(crate) fn list(c: &Connection, f: &FindingFilter) -> Result<Vec<StoredFinding>> {
    let (sql, args) = list_query(f)?;
    let mut stmt = c.prepare_cached(&sql).map_err(db("list findings"))?;
    let rows = stmt
        .query_map(params_from_iter(args), raw)
        .map_err(db("list findings"))?;
    let mut out = Vec::new();
    for r in rows {
        out.push(decode(r.map_err(db("list findings"))?)?);
    }
    Ok(out)
}

/// The statement listing the findings `f` selects, and its parameters.
fn list_query(f: &FindingFilter) -> Result<(String, Vec<Value>)> {
    // Open findings due before a time, fleet-wide (the SLA notices): through their due-date
    // index, named, since without statistics SQLite prefers walking the whole table in id
    // order to spare itself the sort. One host's findings are few: its own key serves them.
    let hint = if f.state == Some(FindingState::Open) && f.due_before.is_some() && f.host.is_none()
    {
        " INDEXED BY findings_open_due"
    } else {
        ""
    };
    let mut sql = format!("SELECT {COLUMNS} FROM findings{hint} WHERE 1 = 1");
    let mut args: Vec<Value> = Vec::new();
    let mut push = |cond: &str, v: Value, sql: &mut String| {
        args.push(v);
        sql.push_str(&cond.replace('?', &format!("?{}", args.len())));
    };
    // The state is written into the statement rather than bound: the indexes are partial (one
    // state each, migration 0010), and SQLite uses a partial index only when the query's own
    // text implies its condition. `as_str` is one of two fixed words.
    if let Some(s) = f.state {
        sql.push_str(&format!(" AND state = '{}'", s.as_str()));
    }
    if let Some(h) = f.host {
        let seq = "(SELECT seq FROM hosts WHERE id = ?)";
        let cond = if f.state.is_some() {
            format!(" AND host_seq = {seq}")
        } else {
            // Both states: each through its own partial index.
            format!(
                " AND id IN (SELECT id FROM findings WHERE host_seq = {seq} AND state = 'open' \
                 UNION ALL SELECT id FROM findings WHERE host_seq = {seq} AND state = 'closed')"
            )
        };
        push(&cond, Value::Text(h.to_string()), &mut sql);
    }
    if let Some(cl) = f.class {
        push(" AND class = ?", Value::Text(cl.as_str().into()), &mut sql);
    }
    if let Some(t) = f.due_before {
        let t = ts_to_db("due_before", t)?;
        push(" AND due_at < ?", Value::Integer(t), &mut sql);
    }
    if let Some(v) = &f.vulnerability {
        push(" AND vulnerability = ?", Value::Text(v.clone()), &mut sql);
    }
    if let Some(a) = f.after_id {
        push(" AND id > ?", Value::Integer(a), &mut sql);
    }
    sql.push_str(" ORDER BY id");
    if let Some(l) = f.limit {
        push(" LIMIT ?", Value::Integer(i64::from(l)), &mut sql);
    }
    Ok((sql, args))
}

pub(crate) fn history(c: &Connection, finding: i64) -> Result<Vec<ClassificationChange>> {
    let mut stmt = c
        .prepare_cached(
            "SELECT at, class, due_at, policy, rule FROM finding_history
             WHERE finding = ?1 ORDER BY rowid",
        )
        .map_err(db("read finding history"))?;
    let rows = stmt
        .query_map([finding], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, Option<String>>(1)?,
                r.get::<_, Option<i64>>(2)?,
                r.get::<_, Option<String>>(3)?,
                r.get::<_, Option<String>>(4)?,
            ))
        })
        .map_err(db("read finding history"))?;
    let mut out = Vec::new();
    for r in rows {
        let (at, class, due_at, policy, rule) = r.map_err(db("read finding history"))?;
        out.push(ClassificationChange {
            at: ts_from_db("finding_history", &finding, at)?,
            classification: classification(finding, class, due_at, policy, rule)?,
        });
    }
    if out.is_empty() {
        // Never reclassified: its one classification is the row's, since it was first seen.
        let first = c
            .prepare_cached(
                "SELECT first_seen, class, due_at, policy, rule FROM findings WHERE id = ?1",
            )
            .and_then(|mut s| {
                s.query_row([finding], |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, Option<String>>(1)?,
                        r.get::<_, Option<i64>>(2)?,
                        r.get::<_, Option<String>>(3)?,
                        r.get::<_, Option<String>>(4)?,
                    ))
                })
                .optional()
            })
            .map_err(db("read finding history"))?;
        if let Some((at, class, due_at, policy, rule)) = first {
            out.push(ClassificationChange {
                at: ts_from_db(T, &finding, at)?,
                classification: classification(finding, class, due_at, policy, rule)?,
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The plan SQLite chose for `sql`, one line per step.
    fn plan(c: &Connection, sql: &str) -> String {
        let mut stmt = c.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
        let nulls = vec![Value::Null; stmt.parameter_count()];
        let rows = stmt
            .query_map(params_from_iter(nulls), |r| r.get::<_, String>(3))
            .unwrap();
        rows.map(Result::unwrap).collect::<Vec<_>>().join("\n")
    }

    /// Every per-upload and per-host statement reaches a host's findings through an index:
    /// none reads the whole findings table, which at 20,000 hosts holds some 12 million rows.
    /// The indexes are partial (migration 0010), and SQLite uses one only when the statement's
    /// text implies its condition, which a change of wording could silently lose.
    #[test]
    fn query_plans() {
        let mut c = Connection::open_in_memory().unwrap();
        crate::migrate::migrate(&mut c).unwrap();
        let host = Some(Uuid::nil());
        let filters = [
            (
                FindingFilter {
                    host,
                    ..FindingFilter::default()
                },
                "both states",
            ),
            (
                FindingFilter {
                    host,
                    state: Some(FindingState::Open),
                    ..FindingFilter::default()
                },
                "open",
            ),
            (
                FindingFilter {
                    host,
                    state: Some(FindingState::Closed),
                    ..FindingFilter::default()
                },
                "closed",
            ),
            (
                FindingFilter {
                    state: Some(FindingState::Open),
                    due_before: Some(Timestamp::UNIX_EPOCH),
                    ..FindingFilter::default()
                },
                "due",
            ),
        ];
        let mut statements: Vec<(String, String)> = [
            ("open rows", OPEN_ROWS),
            ("touch kept", TOUCH_KEPT),
            ("set counts", SET_COUNTS),
            ("count open", COUNT_OPEN),
            ("any open fixable", ANY_OPEN_FIXABLE),
        ]
        .iter()
        .map(|(n, s)| ((*n).to_owned(), (*s).to_owned()))
        .collect();
        for (f, name) in &filters {
            statements.push((format!("list {name}"), list_query(f).unwrap().0));
        }
        for (name, sql) in &statements {
            let plan = plan(&c, sql);
            assert!(
                !plan.lines().any(|l| l.starts_with("SCAN f")),
                "{name} reads the whole findings table:\n{plan}\n{sql}"
            );
            assert!(plan.contains("USING"), "{name}: no index in\n{plan}");
        }
        // And the statements that were meant for each index use it.
        assert!(plan(&c, OPEN_ROWS).contains("findings_open_key"));
        let both = plan(&c, &list_query(&filters[0].0).unwrap().0);
        assert!(
            both.contains("findings_open_key") && both.contains("findings_host_closed"),
            "{both}"
        );
        assert!(plan(&c, &list_query(&filters[2].0).unwrap().0).contains("findings_host_closed"));
        assert!(plan(&c, &list_query(&filters[3].0).unwrap().0).contains("findings_open_due"));
    }
}
