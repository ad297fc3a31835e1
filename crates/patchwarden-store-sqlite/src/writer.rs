//! The writer thread: every change to the database runs on one thread of the store's own, which
//! takes the queued changes in order and commits several of them together.
//!
//! SQLite has one writer at a time. Before this thread, each change ran on a blocking-pool
//! thread that took the writer connection's mutex: with a fleet's uploads queued on it, every
//! release woke one sleeping thread, which then waited for a core while the lock stood free —
//! a fifth of the machine sat idle with 32 uploads waiting (fleet bench, `vmstat`) — and every
//! change paid a commit of its own. Here the thread that holds the connection never hands it
//! over: it runs each queued change inside a savepoint of one transaction, so a change that
//! fails takes back only its own writes, and commits when the queue is empty, the batch has
//! [`MAX_BATCH`] changes or has run for [`MAX_BATCH_TIME`]. A caller hears its outcome only
//! once the transaction holding its change has committed (or failed: then every change in it
//! is refused, with the reason).

use std::panic::AssertUnwindSafe;
use std::sync::mpsc::{Receiver, TryRecvError};
use std::time::{Duration, Instant};

use patchwarden_store::{Result, StoreError};
use rusqlite::Connection;
use tokio::sync::oneshot;

/// At most this many changes share a commit.
const MAX_BATCH: usize = 32;
/// No change is added to a batch that has run this long: a change's caller waits for the
/// commit of the whole batch, so the batch bounds how long a quick change (a check-in) waits
/// behind heavy ones (first inventories, some 2 ms each).
const MAX_BATCH_TIME: Duration = Duration::from_millis(8);

/// What the writer thread is asked to do.
pub(crate) enum Message {
    /// A change, in its turn.
    Change(Box<dyn Job>),
    /// The checkpointer's last step, between two transactions (see `checkpoint_loop`): the
    /// outcome goes back on the channel.
    Checkpoint(std::sync::mpsc::Sender<rusqlite::Result<i64>>),
}

/// A change waiting for the writer: its work, then the telling of its outcome.
pub(crate) trait Job: Send {
    /// Runs the work in the open transaction; `true` when its writes are to stand.
    fn run(&mut self, c: &Connection) -> bool;
    /// Answers the caller; `failed` says why the batch's transaction did not commit, if it
    /// did not.
    fn finish(self: Box<Self>, failed: Option<&str>);
}

/// A change and the channel its caller waits on.
pub(crate) struct Pending<T, F> {
    op: &'static str,
    work: Option<F>,
    result: Option<Result<T>>,
    reply: oneshot::Sender<Result<T>>,
}

impl<T, F> Pending<T, F>
where
    T: Send + 'static,
    F: FnOnce(&Connection) -> Result<T> + Send + 'static,
{
    pub(crate) fn queued(
        op: &'static str,
        work: F,
    ) -> (Box<dyn Job>, oneshot::Receiver<Result<T>>) {
        let (reply, answer) = oneshot::channel();
        let job = Pending {
            op,
            work: Some(work),
            result: None,
            reply,
        };
        (Box::new(job), answer)
    }
}

impl<T, F> Job for Pending<T, F>
where
    T: Send + 'static,
    F: FnOnce(&Connection) -> Result<T> + Send + 'static,
{
    fn run(&mut self, c: &Connection) -> bool {
        let Some(work) = self.work.take() else {
            return false;
        };
        // A panic in one change must not take the writer (and every later change) with it:
        // it is that change's error, and its savepoint is rolled back like any other's.
        let result = std::panic::catch_unwind(AssertUnwindSafe(|| work(c))).unwrap_or_else(|_| {
            Err(StoreError::Backend {
                op: self.op,
                reason: "the change panicked; its writes were rolled back".into(),
            })
        });
        let ok = result.is_ok();
        self.result = Some(result);
        ok
    }

    fn finish(self: Box<Self>, failed: Option<&str>) {
        let answer = match (self.result, failed) {
            // Its own refusal stands whatever became of the others.
            (Some(Err(e)), _) => Err(e),
            (Some(Ok(v)), None) => Ok(v),
            (Some(Ok(_)) | None, Some(reason)) => Err(StoreError::Backend {
                op: self.op,
                reason: reason.to_owned(),
            }),
            (None, None) => Err(StoreError::Backend {
                op: self.op,
                reason: "the change was never run".into(),
            }),
        };
        // The caller may have gone (its request was cancelled): the change stands all the same.
        let _ = self.reply.send(answer);
    }
}

/// The writer's loop, until every sender of `queue` is dropped and what was queued is done;
/// then the connection closes (the last one closing checkpoints the WAL and removes it).
pub(crate) fn run(conn: Connection, queue: Receiver<Message>) {
    let mut carried = None;
    loop {
        let message = match carried.take() {
            Some(m) => m,
            None => match queue.recv() {
                Ok(m) => m,
                Err(_) => return,
            },
        };
        match message {
            Message::Change(first) => carried = batch(&conn, first, &queue, MAX_BATCH_TIME),
            Message::Checkpoint(done) => {
                let _ = done.send(crate::passive_checkpoint(&conn));
            }
        }
    }
}

/// Runs `first` and the changes queued after it in one transaction; returns the checkpoint
/// request that ended the batch, if one did, to be served after the commit. No change is added
/// once the batch has run for `max_time`.
fn batch(
    c: &Connection,
    first: Box<dyn Job>,
    queue: &Receiver<Message>,
    max_time: Duration,
) -> Option<Message> {
    let began = Instant::now();
    if let Err(e) = statement(c, "BEGIN IMMEDIATE") {
        first.finish(Some(&format!("could not begin a transaction: {e}")));
        return None;
    }
    let mut carried = None;
    let mut ran: Vec<Box<dyn Job>> = Vec::new();
    let mut next = Some(first);
    let mut broken = None;
    while let Some(mut job) = next.take() {
        if let Err(e) = statement(c, "SAVEPOINT change") {
            job.finish(Some(&e));
            broken = Some(e);
            break;
        }
        let keep = job.run(c);
        let ended = if keep {
            statement(c, "RELEASE change")
        } else {
            statement(c, "ROLLBACK TO change").and_then(|()| statement(c, "RELEASE change"))
        };
        ran.push(job);
        if let Err(e) = ended {
            broken = Some(e);
            break;
        }
        // SQLite ends the whole transaction itself on some errors (a full disk, an I/O
        // error): then the changes before this one are gone too.
        if c.is_autocommit() {
            broken = Some("the database ended the transaction after an error".into());
            break;
        }
        if ran.len() < MAX_BATCH && began.elapsed() < max_time {
            next = match queue.try_recv() {
                Ok(Message::Change(job)) => Some(job),
                Ok(checkpoint) => {
                    carried = Some(checkpoint);
                    None
                }
                Err(TryRecvError::Empty | TryRecvError::Disconnected) => None,
            };
        }
    }
    let failed = match broken {
        Some(reason) => {
            if !c.is_autocommit() {
                let _ = statement(c, "ROLLBACK");
            }
            Some(reason)
        }
        None => statement(c, "COMMIT").err().map(|e| {
            // A commit that failed leaves the transaction open (SQLITE_BUSY): roll it back so
            // the next batch starts clean.
            if !c.is_autocommit() {
                let _ = statement(c, "ROLLBACK");
            }
            format!("the commit failed: {e}")
        }),
    };
    for job in ran {
        job.finish(failed.as_deref());
    }
    carried
}

fn statement(c: &Connection, sql: &str) -> std::result::Result<(), String> {
    c.prepare_cached(sql)
        .and_then(|mut s| s.execute([]))
        .map(|_| ())
        .map_err(|e| format!("{sql}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Time enough for every queued change to join the batch, even on a loaded machine and
    /// with a panic's backtrace printed.
    const LONG: Duration = Duration::from_secs(60);

    /// A scratch database file with `schema` applied (the directory lives as long as it).
    fn database(schema: &str) -> (tempfile::TempDir, Connection) {
        let dir = tempfile::tempdir().unwrap();
        let c = Connection::open(dir.path().join("w.db")).unwrap();
        c.execute_batch(schema).unwrap();
        (dir, c)
    }

    /// Queues `message` (a `Message` is not `Debug`, so no `unwrap`).
    fn send(queue: &std::sync::mpsc::Sender<Message>, message: Message) {
        assert!(queue.send(message).is_ok(), "the queue is open");
    }

    fn rows(c: &Connection) -> Vec<i64> {
        let mut s = c.prepare("SELECT n FROM t ORDER BY n").unwrap();
        s.query_map([], |r| r.get(0))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap()
    }

    fn insert(n: i64) -> impl FnOnce(&Connection) -> Result<i64> + Send + 'static {
        move |c| {
            c.execute("INSERT INTO t (n) VALUES (?1)", [n])
                .map_err(|e| StoreError::backend("insert", e))?;
            Ok(n)
        }
    }

    /// Five changes queued before the writer looks: one refused after writing, one panicking
    /// after writing, one breaking a constraint. They share one transaction, and each keeps
    /// exactly its own writes.
    #[test]
    fn changes_batched_together_keep_only_their_own_writes() {
        let (_dir, c) = database("CREATE TABLE t (n INTEGER PRIMARY KEY)");
        let (queue, queued) = std::sync::mpsc::channel();
        let mut answers = Vec::new();
        let mut push = |job: (Box<dyn Job>, oneshot::Receiver<Result<i64>>)| {
            send(&queue, Message::Change(job.0));
            answers.push(job.1);
        };
        push(Pending::queued("first", insert(1)));
        push(Pending::queued("refused", |c: &Connection| {
            insert(2)(c)?;
            Err(StoreError::Invalid {
                field: "n",
                reason: "refused after writing".into(),
            })
        }));
        push(Pending::queued("panics", |c: &Connection| -> Result<i64> {
            insert(3)(c)?;
            panic!("a bug in a change");
        }));
        push(Pending::queued("duplicate", insert(1)));
        push(Pending::queued("last", insert(5)));
        let Ok(Message::Change(first)) = queued.recv() else {
            panic!("a change was queued")
        };
        assert!(batch(&c, first, &queued, LONG).is_none());
        assert!(c.is_autocommit(), "the batch committed");
        assert_eq!(rows(&c), vec![1, 5]);
        let answers: Vec<Result<i64>> = answers
            .into_iter()
            .map(|mut a| a.try_recv().expect("every change is answered"))
            .collect();
        assert!(matches!(answers[0], Ok(1)));
        assert!(matches!(answers[1], Err(StoreError::Invalid { .. })));
        assert!(
            matches!(&answers[2], Err(StoreError::Backend { op: "panics", reason }) if reason.contains("panicked"))
        );
        assert!(matches!(
            answers[3],
            Err(StoreError::Backend { op: "insert", .. })
        ));
        assert!(matches!(answers[4], Ok(5)));
    }

    /// A checkpoint request ends the batch: the changes before it are committed, and it is
    /// handed back to be served outside any transaction.
    #[test]
    fn a_checkpoint_request_ends_the_batch() {
        let (_dir, c) =
            database("PRAGMA journal_mode = WAL; CREATE TABLE t (n INTEGER PRIMARY KEY)");
        let (queue, queued) = std::sync::mpsc::channel();
        let (first, mut one) = Pending::queued("one", insert(1));
        let (done, _wait) = std::sync::mpsc::channel();
        send(&queue, Message::Checkpoint(done));
        let (second, mut two) = Pending::queued("two", insert(2));
        send(&queue, Message::Change(second));
        let carried = batch(&c, first, &queued, LONG);
        assert!(matches!(carried, Some(Message::Checkpoint(_))));
        assert!(c.is_autocommit());
        assert!(matches!(one.try_recv(), Ok(Ok(1))));
        assert!(
            two.try_recv().is_err(),
            "the change after the request waits"
        );
        assert_eq!(rows(&c), vec![1]);
    }

    /// When the commit itself fails, every change of the batch hears it, and none stands.
    #[test]
    fn a_failed_commit_refuses_every_change_of_the_batch() {
        // A deferred foreign key is checked at the commit: the second change breaks it, so
        // the commit fails and takes the first one with it.
        let (_dir, c) = database(
            "PRAGMA foreign_keys = ON;
             CREATE TABLE t (n INTEGER PRIMARY KEY);
             CREATE TABLE r (n INTEGER REFERENCES t (n) DEFERRABLE INITIALLY DEFERRED);",
        );
        let (queue, queued) = std::sync::mpsc::channel();
        let (first, mut one) = Pending::queued("one", insert(1));
        let (second, mut two) = Pending::queued("dangling", |c: &Connection| {
            c.execute("INSERT INTO r (n) VALUES (99)", [])
                .map_err(|e| StoreError::backend("dangling", e))?;
            Ok(99)
        });
        send(&queue, Message::Change(second));
        assert!(batch(&c, first, &queued, LONG).is_none());
        assert!(c.is_autocommit(), "rolled back, ready for the next batch");
        assert_eq!(rows(&c), Vec::<i64>::new());
        for answer in [one.try_recv(), two.try_recv()] {
            assert!(
                matches!(&answer, Ok(Err(StoreError::Backend { reason, .. })) if reason.contains("commit failed")),
                "{answer:?}"
            );
        }
    }
}
