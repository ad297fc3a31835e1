//! A transaction whose audit events and `COMMIT` go to PostgreSQL together.
//!
//! The audit chain's head is locked by the append and stays locked until the commit, and every
//! append of every server queues behind it. With the append and the `COMMIT` sent one after
//! the other, the head was held for the append, the answer's trip back to the server, the
//! server's wait for a CPU to send `COMMIT`, and the commit itself: sampled during the fleet
//! bench's uploads, the holders were idle in transaction (waiting for the server) twice as
//! often as committing. Sent together (pipelined on the connection), the lock is held for the
//! append and the commit only.
//!
//! If the append fails, PostgreSQL has aborted the transaction and answers the `COMMIT` with a
//! rollback, so nothing is changed without its event.
//!
//! The same holds for the rest of a transaction: what it writes does not depend on what the
//! writes return, so the writes go out in one flight with the append and the `COMMIT`
//! ([`Batch`], [`AuditedTx::finish`]), and the reads that decide them go out with the `BEGIN`
//! ([`AuditedTx::begin_with`]). An upload costs two round trips where it cost a dozen (the
//! finding bodies are named by digest, `findings::KnownBodies`): each is a wake-up of both
//! processes, and sending to the server was a fifth of PostgreSQL's samples during the fleet
//! bench's uploads.
//!
//! The transaction is opened with `BEGIN` on the pooled connection rather than through the
//! driver's `Transaction`, which cannot commit together with a statement. A transaction
//! dropped before its end (an early return, or the request's future cancelled) takes its
//! connection out of the pool and closes it, and PostgreSQL rolls back what the closed
//! session had begun; a body that fails rolls back explicitly and keeps the connection.

use std::future::Future;
use std::pin::Pin;
use std::task::Poll;

use deadpool_postgres::{Client, GenericClient, Object};
use patchwarden_core::audit::{AuditEntry, AuditEvent};
use patchwarden_store::{Result, StoreError};
use tokio_postgres::types::ToSql;
use tokio_postgres::{Row, Statement};

use crate::audit::Appending;
use crate::{PgStore, pg};

/// A statement's parameter, owned by the [`Batch`] that sends it.
pub(crate) type Param = Box<dyn ToSql + Sync + Send>;

/// Statements that return no rows, to be sent together, in order, at the end of a transaction.
/// None may depend on another's outcome: if one fails, PostgreSQL aborts the transaction, the
/// ones after it fail unrun, the `COMMIT` rolls back, and the first failure is the one told.
/// The statements are prepared (once per connection) when the batch is sent.
#[derive(Default)]
pub(crate) struct Batch {
    items: Vec<(&'static str, Vec<Param>, &'static str)>,
}

impl Batch {
    /// Adds `sql` with its parameters; `op` names it in an error.
    pub(crate) fn push(&mut self, op: &'static str, sql: &'static str, params: Vec<Param>) {
        self.items.push((sql, params, op));
    }
}

type Pending<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Runs `futures` together and returns their outputs in order. Each is first polled in order,
/// and the driver writes a request to the connection on its first poll, so the requests go
/// out in this order.
async fn in_order<T>(futures: Vec<Pending<'_, T>>) -> Vec<T> {
    let mut futures: Vec<Option<Pending<'_, T>>> = futures.into_iter().map(Some).collect();
    let mut outputs: Vec<Option<T>> = futures.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (slot, out) in futures.iter_mut().zip(outputs.iter_mut()) {
            if let Some(f) = slot {
                match f.as_mut().poll(cx) {
                    Poll::Ready(v) => {
                        *out = Some(v);
                        *slot = None;
                    }
                    Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            Poll::Pending
        } else {
            Poll::Ready(())
        }
    })
    .await;
    outputs.into_iter().flatten().collect()
}

/// The batch's statements, prepared on `c`, as futures in order.
fn executions<'a>(
    c: &'a Client,
    batch: &'a Batch,
    statements: &'a [Statement],
) -> Vec<Pending<'a, std::result::Result<u64, tokio_postgres::Error>>> {
    statements
        .iter()
        .zip(&batch.items)
        .map(|(statement, (_, params, _))| {
            let params: Vec<&(dyn ToSql + Sync)> =
                params.iter().map(|p| &**p as &(dyn ToSql + Sync)).collect();
            Box::pin(async move { c.execute(statement, &params).await }) as Pending<'a, _>
        })
        .collect()
}

/// The batch's statements and, unless there is nothing to append, the append's.
async fn prepare(
    c: &Client,
    batch: &Batch,
    nothing_to_append: bool,
) -> Result<(Vec<Statement>, Option<Statement>)> {
    let mut writes = Vec::with_capacity(batch.items.len());
    for (sql, _, op) in &batch.items {
        writes.push(c.prepare_cached(sql).await.map_err(pg(op))?);
    }
    let append = if nothing_to_append {
        None
    } else {
        Some(Appending::statement(c).await?)
    };
    Ok((writes, append))
}

pub(crate) struct AuditedTx {
    /// `None` once the transaction has ended.
    client: Option<Client>,
    op: &'static str,
}

impl AuditedTx {
    /// Opens the transaction with `queries` (SQL, parameters, and what each is, for errors),
    /// sent with the `BEGIN`; their rows, in order.
    pub(crate) async fn begin_with(
        store: &PgStore,
        op: &'static str,
        queries: &[(&str, &[&(dyn ToSql + Sync)], &'static str)],
    ) -> Result<(Self, Vec<Vec<Row>>)> {
        let tx = AuditedTx {
            client: Some(store.client(op).await?),
            op,
        };
        let c = tx.client()?;
        let mut statements = Vec::with_capacity(queries.len());
        for (sql, _, what) in queries {
            statements.push(c.prepare_cached(sql).await.map_err(pg(what))?);
        }
        let reads: Vec<Pending<'_, _>> = statements
            .iter()
            .zip(queries)
            .map(|(statement, (_, params, _))| {
                Box::pin(c.query(statement, params)) as Pending<'_, _>
            })
            .collect();
        let (begun, reads) = tokio::join!(c.batch_execute("BEGIN"), in_order(reads));
        begun.map_err(pg(op))?;
        let mut rows = Vec::with_capacity(reads.len());
        let mut failed = None;
        for (r, (_, _, what)) in reads.into_iter().zip(queries) {
            match r {
                Ok(r) => rows.push(r),
                Err(e) => {
                    failed = Some(pg(what)(e));
                    break;
                }
            }
        }
        if let Some(e) = failed {
            tx.rollback().await;
            return Err(e);
        }
        Ok((tx, rows))
    }

    /// The transaction's connection, for the statements before the append.
    pub(crate) fn client(&self) -> Result<&Client> {
        self.client.as_ref().ok_or(StoreError::Backend {
            op: self.op,
            reason: "the transaction has already ended".into(),
        })
    }

    /// Sends `batch`, then appends `entries` after the chain's head (if there are any) and
    /// commits, all in one flight.
    pub(crate) async fn finish(
        mut self,
        batch: Batch,
        entries: &[&AuditEntry],
    ) -> Result<Vec<AuditEvent>> {
        // Everything prepared before anything is sent: while a statement is being prepared,
        // a request already made would go out first.
        let prepared = match (Appending::of(entries), self.client()) {
            (Ok(a), Ok(c)) => prepare(c, &batch, entries.is_empty())
                .await
                .map(|(statements, append)| (a, statements, append)),
            (Err(e), _) | (_, Err(e)) => Err(e),
        };
        let (appending, statements, statement) = match prepared {
            Ok(p) => p,
            Err(e) => {
                self.rollback().await;
                return Err(e);
            }
        };
        let c = self.client()?;
        let append = async {
            match &statement {
                Some(s) => appending.run(c, s).await.map(Some),
                None => Ok(None),
            }
        };
        let (writes, rows, commit) = tokio::join!(
            in_order(executions(c, &batch, &statements)),
            append,
            c.batch_execute("COMMIT")
        );
        // All answered: the transaction has ended, committed or rolled back, and the
        // connection goes back to the pool.
        self.client = None;
        for (r, (_, _, op)) in writes.into_iter().zip(&batch.items) {
            r.map_err(pg(op))?;
        }
        let rows = rows.map_err(pg("append audit event"))?;
        commit.map_err(pg(self.op))?;
        match rows {
            Some(rows) => appending.events(&rows),
            None => Ok(Vec::new()),
        }
    }

    /// Rolls back after a failed body, keeping the connection if the rollback goes through.
    pub(crate) async fn rollback(mut self) {
        if let Some(c) = self.client.take()
            && c.batch_execute("ROLLBACK").await.is_err()
        {
            drop(Object::take(c));
        }
    }
}

impl Drop for AuditedTx {
    fn drop(&mut self) {
        if let Some(c) = self.client.take() {
            // Closed, not pooled: the next user must not find this transaction open.
            drop(Object::take(c));
        }
    }
}
