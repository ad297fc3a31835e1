//! An agent's check-in on PostgreSQL: the nonce, the counter, the facts and `last_seen`, and
//! the job lease in one transaction, its four statements sent together (pipelined on the one
//! connection) so that a check-in costs the database three round trips — begin, the
//! statements, commit — where it used to cost a dozen, each waiting for the last. Every host
//! checks in every minute: at 50,000 hosts that is 833 a second.
//!
//! The statements do not depend on each other's results: each is checked afterwards, in the
//! order sent, and any failure drops the transaction, which undoes the others.

use std::sync::LazyLock;

use deadpool_postgres::GenericClient;
use patchwarden_core::inventory::HostFacts;
use patchwarden_store::codec::{from_json, ts_to_db};
use patchwarden_store::host::seq_to_db;
use patchwarden_store::{CheckIn, CheckedIn, Job, Result, StoreError};
use tokio_postgres::types::ToSql;

use crate::{audit, hosts, jobs, pg, query_opt};

/// The host's facts as they are, its row locked `FOR NO KEY UPDATE` (the lock the update
/// takes anyway, so a nonce or a finding referring to the host does not wait for it): a
/// concurrent check-in of the same host waits here and then reads what that one wrote, so a
/// change of facts is audited against the facts it replaced. (Reading them in the update
/// itself, as a self-join locking the row, deadlocked under concurrent check-ins of one host.)
const OLD_FACTS: &str = "SELECT facts FROM hosts WHERE id = $1 FOR NO KEY UPDATE";

/// The counter's compare-and-set and the facts in one statement, returning the host as it is
/// now. Parameters: host, counter, facts JSON, machine id, ecosystem, now. Built once: every
/// check-in runs it.
static UPDATE_HOST: LazyLock<String> = LazyLock::new(|| {
    format!(
        "UPDATE hosts SET check_in_seq = $2, facts = $3, machine_id = $4, ecosystem = $5,
                          last_seen = $6
         WHERE id = $1 AND (check_in_seq IS NULL OR check_in_seq < $2)
         RETURNING {}",
        hosts::COLUMNS
    )
});

/// The lease of the host's due jobs ([`jobs::DUE_JOBS`]), and with them the jobs leased
/// earlier whose lease is still live. The second half reads the statement's snapshot, taken
/// before the lease, so the jobs leased now are not among them. The last column tells the two
/// apart. Parameters: host, lease until, now, limit.
static LEASE_JOBS: LazyLock<String> = LazyLock::new(|| {
    let (columns, due) = (jobs::COLUMNS, jobs::DUE_JOBS);
    format!(
        "WITH leased AS (
             UPDATE jobs SET state = 'leased', lease_until = $2, attempts = attempts + 1,
                             updated_at = $3
             WHERE id IN ({due})
             RETURNING {columns})
         SELECT {columns}, TRUE FROM leased
         UNION ALL
         (SELECT {columns}, FALSE FROM jobs
          WHERE host = $1 AND state IN ('leased', 'running') AND lease_until > $3
          ORDER BY created_at, id LIMIT $4)"
    )
});

pub(crate) async fn check_in<C: GenericClient>(
    c: &C,
    ci: CheckIn,
    facts_json: &str,
) -> Result<CheckedIn> {
    let now = ts_to_db("now", ci.now)?;
    let expires = ts_to_db("nonce expires_at", ci.nonce_expires_at)?;
    let seq = seq_to_db(ci.seq)?;
    let until = ts_to_db("lease_until", ci.lease_until)?;
    let limit = i64::from(ci.max_jobs);
    let nonce_args: [&(dyn ToSql + Sync); 4] = [&ci.host, &ci.nonce, &expires, &now];
    let host_args: [&(dyn ToSql + Sync); 6] = [
        &ci.host,
        &seq,
        &facts_json,
        &ci.facts.machine_id,
        &ci.facts.os.ecosystem,
        &now,
    ];
    let lease_args: [&(dyn ToSql + Sync); 4] = [&ci.host, &until, &now, &limit];
    // Prepared first (once per connection; cached after), so that the four go out in this
    // order: a statement found in the cache while another is still being prepared would
    // otherwise run first.
    let (nonce_sql, old_sql, update_sql, lease_sql) = tokio::try_join!(
        c.prepare_cached(hosts::RECORD_NONCE),
        c.prepare_cached(OLD_FACTS),
        c.prepare_cached(&UPDATE_HOST),
        c.prepare_cached(&LEASE_JOBS),
    )
    .map_err(pg("check in"))?;
    let old_args: [&(dyn ToSql + Sync); 1] = [&ci.host];
    let (nonce, old, host, leases) = tokio::join!(
        c.execute(&nonce_sql, &nonce_args),
        c.query_opt(&old_sql, &old_args),
        c.query_opt(&update_sql, &host_args),
        c.query(&lease_sql, &lease_args),
    );
    hosts::nonce_outcome(ci.host, &ci.nonce, nonce)?;
    let old = old.map_err(pg("record check-in"))?;
    let Some(row) = host.map_err(pg("record check-in"))? else {
        // No row changed: no such host, or a counter that does not exceed the last one.
        let last = query_opt(
            c,
            "SELECT check_in_seq FROM hosts WHERE id = $1",
            &[&ci.host],
        )
        .await
        .map_err(pg("advance check-in counter"))?;
        return Err(match last {
            None => StoreError::NotFound {
                kind: "host",
                id: ci.host.to_string(),
            },
            Some(r) => StoreError::CounterNotIncreased {
                host: ci.host,
                seq: ci.seq,
                last: r
                    .get::<_, Option<i64>>(0)
                    .and_then(|n| u64::try_from(n).ok())
                    .unwrap_or(0),
            },
        });
    };
    let rows = leases.map_err(pg("lease jobs"))?;

    let host = hosts::decode(&row)?;
    let old_facts: String = match &old {
        Some(r) => crate::col("hosts", r, 0)?,
        None => {
            return Err(StoreError::NotFound {
                kind: "host",
                id: ci.host.to_string(),
            });
        }
    };
    let old_facts: HostFacts = from_json("hosts", &ci.host, &old_facts)?;
    if old_facts != ci.facts {
        audit::append(c, &ci.facts_audit).await?;
    }

    let (mut fresh, mut held): (Vec<Job>, Vec<Job>) = (Vec::new(), Vec::new());
    for r in &rows {
        let is_fresh: bool = crate::col("jobs", r, 12)?;
        let job = jobs::decode(r)?;
        if is_fresh {
            fresh.push(job);
        } else {
            held.push(job);
        }
    }
    // RETURNING gives no order; the lease promises oldest first.
    fresh.sort_by_key(|j| (j.created_at, j.id));
    if !fresh.is_empty() {
        let mut entry = ci.lease_audit;
        if entry.after.is_none() {
            let ids: Vec<String> = fresh.iter().map(|j| j.id.to_string()).collect();
            entry.after = Some(serde_json::json!({ "jobs": ids, "lease_until": ci.lease_until }));
        }
        audit::append(c, &entry).await?;
    }
    fresh.extend(held);
    Ok(CheckedIn { host, jobs: fresh })
}
