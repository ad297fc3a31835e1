//! `patchwarden feeds …` and `patchwarden triage …`: the advisory feeds and the triage queue
//! over the operator API (`/api/v1/feeds`, `/api/v1/triage`), and `feeds import PATH`, which
//! goes over the API to a server, or — with `--database` or `--config` — straight into a
//! server's database, for air-gapped sites where the server cannot fetch its feeds.
//!
//! The direct import is the server's own (`patchwarden_server::feeds::import_path`): one
//! transaction, the hosts the changed advisories name matched again, nothing kept when the
//! file is unusable. A running server on the same database picks the new advisories up at its
//! next scheduler tick. Its kind is recognised from the content as `scan --feed` recognises it
//! (or named with `--kind`).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Subcommand};
use patchwarden_api::v1::feeds::{
    FeedKind, FeedSourceView, ImportQuery, ManualCheck, TriageClassification, TriageItemView,
    TriageQuery,
};
use patchwarden_api::v1::fleet::Criticality;
use patchwarden_core::audit::Actor;
use patchwarden_store::feed::SourceKind;

use crate::audit_cmd::DatabaseArgs;
use crate::ops_cmd::{Common, finish, with_client};
use crate::output::{self, EXIT_ERROR, Failure, Format, name, opt};

/// The largest file `feeds import` sends over the API (the server has its own, usually
/// smaller, limit and says so).
const MAX_UPLOAD_BYTES: u64 = 512 * 1024 * 1024;

#[derive(Debug, Args)]
pub(crate) struct FeedsArgs {
    #[command(subcommand)]
    cmd: FeedsCommand,
    #[command(flatten)]
    common: Common,
}

#[derive(Debug, Subcommand)]
pub(crate) enum FeedsCommand {
    /// Every feed source: its kind, freshness, last success and records.
    List,
    /// One source with its recent runs.
    Show { name: String },
    /// Ask the server to fetch a source now (run by its scheduler).
    Sync { name: String },
    /// Record that a person checked a vendor without a feed (a manual source).
    Check {
        name: String,
        /// What was checked and found.
        #[arg(long)]
        note: String,
    },
    /// Import an advisory file (OSV all.zip or record, CSAF document, Alpine secdb, Debian
    /// tracker JSON, CISA KEV, EPSS CSV): over the API, or with --database/--config into the
    /// server's database directly (then a directory of records is accepted too).
    Import(ImportArgs),
}

#[derive(Debug, Args)]
pub(crate) struct ImportArgs {
    /// The file (or, directly into a database, a directory).
    path: PathBuf,
    /// Its kind (osv, csaf, alpine, debian, kev, epss); recognised from the content when left
    /// out.
    #[arg(long)]
    kind: Option<String>,
    /// The feed source the data belongs to (a configured source whose server cannot reach
    /// it, or a new one); default `import-KIND`.
    #[arg(long)]
    source: Option<String>,
    #[command(flatten)]
    db: DatabaseArgs,
}

/// The local user, as the audit chain's actor.
fn actor() -> Actor {
    let user = std::env::var("SUDO_USER")
        .or_else(|_| std::env::var("USER"))
        .unwrap_or_else(|_| "unknown".into());
    Actor::Operator(format!("local:{user}"))
}

/// `feeds import` straight into a database.
fn import_local(args: ImportArgs) -> anyhow::Result<ExitCode> {
    let kind = match args.kind.as_deref() {
        None => None,
        Some(k) => Some(
            SourceKind::parse(k)
                .filter(|k| *k != SourceKind::Manual)
                .ok_or_else(|| {
                    anyhow::anyhow!("--kind {k}: one of osv, csaf, alpine, debian, kev, epss")
                })?,
        ),
    };
    let config = args.db.config.load()?;
    let url = args.db.url()?;
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    runtime.block_on(async move {
        let now = patchwarden_server::clock::now();
        let store = patchwarden_server::open_store(&url)
            .await
            .with_context(|| format!("opening {}", patchwarden_store::redact(&url)))?;
        let state = patchwarden_server::feeds::offline_state(&config, store).await?;
        let synced = patchwarden_server::feeds::import_path(
            &state,
            &args.path,
            kind,
            args.source.as_deref(),
            actor(),
            now,
        )
        .await?;
        let run = &synced.run.run;
        println!(
            "imported {} into source {}: {} records, {} new, {} updated, {} unchanged, {} \
             rejected; {} host(s) matched again",
            args.path.display(),
            synced.run.source,
            run.records,
            run.inserted,
            run.updated,
            run.unchanged,
            run.rejected,
            synced.hosts
        );
        for line in run.rejects.iter().take(10) {
            eprintln!("patchwarden: rejected: {line}");
        }
        Ok(ExitCode::SUCCESS)
    })
}

/// `feeds …`: over the API, except an import given `--database` or `--config`, or given no
/// server at all (no flag, no environment variable, no config file), which goes to the
/// database directly as it always has.
pub(crate) fn run_feeds(args: FeedsArgs) -> anyhow::Result<ExitCode> {
    let format = args.common.format;
    let common = args.common;
    Ok(match args.cmd {
        FeedsCommand::Import(import) => {
            let direct = import.db.database.is_some() || import.db.config.config.is_some();
            let server_known = common.conn.server.is_some()
                || std::env::var_os("PATCHWARDEN_SERVER").is_some_and(|v| !v.is_empty())
                || crate::login_cmd::CliConfig::load()
                    .map(|c| c.server.is_some())
                    .unwrap_or(false);
            if direct || !server_known {
                return import_local(import);
            }
            finish(import_remote(&common, import))
        }
        FeedsCommand::List => finish(with_client(&common, |c| async move {
            let list = c.feeds().await?;
            if format == Format::Json {
                return output::json(&list);
            }
            source_rows(&list);
            Ok(())
        })),
        FeedsCommand::Show { name: source } => finish(with_client(&common, |c| async move {
            let d = c.feed(&source).await?;
            if format == Format::Json {
                return output::json(&d);
            }
            let s = &d.source;
            output::fields(&[
                ("name", s.name.clone()),
                ("kind", s.kind.as_str().to_owned()),
                ("origin", s.origin.clone()),
                ("location", s.location.clone()),
                ("freshness", name(&s.freshness)),
                ("stale at", opt(s.stale_at)),
                ("last attempt", opt(s.last_attempt_at)),
                ("last success", opt(s.last_success_at)),
                ("last updated", opt(s.last_updated_at)),
                ("last error", opt(s.last_error.as_ref())),
                ("failures", s.failures.to_string()),
                ("sync requested", opt(s.sync_requested_at)),
                ("records", s.records.to_string()),
            ]);
            if !d.runs.is_empty() {
                println!();
                let rows: Vec<Vec<String>> = d
                    .runs
                    .iter()
                    .map(|r| {
                        vec![
                            r.id.to_string(),
                            r.started_at.to_string(),
                            r.outcome.clone(),
                            r.records.to_string(),
                            opt(r.message.as_ref()),
                        ]
                    })
                    .collect();
                output::table(&["RUN", "STARTED", "OUTCOME", "RECORDS", "MESSAGE"], &rows);
            }
            Ok(())
        })),
        FeedsCommand::Sync { name: source } => finish(with_client(&common, |c| async move {
            let s = c.sync_feed(&source).await?;
            if format == Format::Json {
                return output::json(&s);
            }
            eprintln!(
                "sync of {} requested; the server's scheduler runs it",
                s.name
            );
            source_rows(&[s]);
            Ok(())
        })),
        FeedsCommand::Check { name: source, note } => {
            finish(with_client(&common, |c| async move {
                let s = c.check_feed(&source, &ManualCheck { note }).await?;
                if format == Format::Json {
                    return output::json(&s);
                }
                source_rows(&[s]);
                Ok(())
            }))
        }
    })
}

fn source_rows(items: &[FeedSourceView]) {
    let rows: Vec<Vec<String>> = items
        .iter()
        .map(|s| {
            vec![
                s.name.clone(),
                s.kind.as_str().to_owned(),
                name(&s.freshness),
                opt(s.last_success_at),
                opt(s.last_updated_at),
                s.failures.to_string(),
                s.records.to_string(),
                opt(s.last_error.as_ref()),
            ]
        })
        .collect();
    output::table(
        &[
            "NAME",
            "KIND",
            "FRESHNESS",
            "LAST SUCCESS",
            "LAST UPDATED",
            "FAILURES",
            "RECORDS",
            "LAST ERROR",
        ],
        &rows,
    );
}

/// `feeds import PATH` over the API: the file is the request's body.
fn import_remote(common: &Common, args: ImportArgs) -> Result<(), Failure> {
    use std::io::Read;
    let kind = match args.kind.as_deref() {
        None => None,
        Some(k) => Some(
            FeedKind::parse(k)
                .filter(|k| *k != FeedKind::Manual)
                .ok_or_else(|| {
                    Failure::new(
                        EXIT_ERROR,
                        format!("--kind {k}: one of osv, csaf, alpine, debian, kev, epss"),
                    )
                })?,
        ),
    };
    let read_err =
        |e: std::io::Error| Failure::new(EXIT_ERROR, format!("{}: {e}", args.path.display()));
    let file = std::fs::File::open(&args.path).map_err(read_err)?;
    if file.metadata().map_err(read_err)?.is_dir() {
        return Err(Failure::new(
            EXIT_ERROR,
            format!(
                "{}: a directory is imported straight into a database (--database); over the \
                 API send one file (an OSV all.zip, say)",
                args.path.display()
            ),
        ));
    }
    let mut body = Vec::new();
    file.take(MAX_UPLOAD_BYTES + 1)
        .read_to_end(&mut body)
        .map_err(read_err)?;
    if body.len() as u64 > MAX_UPLOAD_BYTES {
        return Err(Failure::new(
            EXIT_ERROR,
            format!(
                "{}: larger than {MAX_UPLOAD_BYTES} bytes",
                args.path.display()
            ),
        ));
    }
    let format = common.format;
    let query = ImportQuery {
        kind,
        source: args.source,
    };
    let path = args.path;
    with_client(common, |c| async move {
        let outcome = c.import_feed(&query, &body).await?;
        if format == Format::Json {
            return output::json(&outcome);
        }
        println!(
            "imported {} into source {} ({}): {} records, {} new or changed; {} host(s) \
             matched again",
            path.display(),
            outcome.source,
            outcome.outcome,
            outcome.records,
            outcome.changed,
            outcome.hosts_rematched
        );
        for line in outcome.rejects.iter().take(10) {
            eprintln!("patchwarden: rejected: {line}");
        }
        Ok(())
    })
}

#[derive(Debug, Args)]
pub(crate) struct TriageArgs {
    #[command(subcommand)]
    cmd: TriageCommand,
    #[command(flatten)]
    common: Common,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum ClassArg {
    NotApplicable,
    Low,
    Medium,
    High,
    Emergency,
}

#[derive(Debug, Subcommand)]
enum TriageCommand {
    /// The queue: new advisories that affect the fleet, with their 4-hour review clock.
    List {
        /// Only items not classified yet.
        #[arg(long, conflicts_with = "decided")]
        pending: bool,
        /// Only classified items.
        #[arg(long)]
        decided: bool,
        /// Only items past their review time without a classification.
        #[arg(long)]
        overdue: bool,
        /// At most this many per page (1 to 1000).
        #[arg(long)]
        limit: Option<u32>,
        /// Every page, not just the first.
        #[arg(long)]
        all: bool,
    },
    /// Classify an item (it becomes the policy's manual override on its findings).
    Classify {
        id: i64,
        #[arg(value_enum)]
        classification: ClassArg,
        /// Why (never empty).
        #[arg(long)]
        reason: String,
    },
}

fn triage_rows(items: &[TriageItemView]) {
    let rows: Vec<Vec<String>> = items
        .iter()
        .map(|t| {
            vec![
                t.id.to_string(),
                t.vulnerability.clone(),
                t.arrived_at.to_string(),
                t.due_at.to_string(),
                name(&t.review),
                opt(t.classification.as_ref().map(name)),
                opt(t.decided_by.as_ref()),
                opt(t.summary.as_ref()),
            ]
        })
        .collect();
    output::table(
        &[
            "ID",
            "VULNERABILITY",
            "ARRIVED",
            "DUE",
            "REVIEW",
            "CLASSIFICATION",
            "BY",
            "SUMMARY",
        ],
        &rows,
    );
}

pub(crate) fn triage(args: TriageArgs) -> Result<(), Failure> {
    let format = args.common.format;
    with_client(&args.common, |c| async move {
        match args.cmd {
            TriageCommand::List {
                pending,
                decided,
                overdue,
                limit,
                all,
            } => {
                let mut query = TriageQuery {
                    pending: if pending {
                        Some(true)
                    } else if decided {
                        Some(false)
                    } else {
                        None
                    },
                    overdue: overdue.then_some(true),
                    after: None,
                    limit,
                };
                let mut page = c.triage(&query).await?;
                while all && let Some(after) = page.next_after {
                    query.after = Some(after);
                    let next = c.triage(&query).await?;
                    page.items.extend(next.items);
                    page.next_after = next.next_after;
                }
                if format == Format::Json {
                    return output::json(&page);
                }
                triage_rows(&page.items);
                Ok(())
            }
            TriageCommand::Classify {
                id,
                classification,
                reason,
            } => {
                let classification = match classification {
                    ClassArg::NotApplicable => Criticality::NotApplicable,
                    ClassArg::Low => Criticality::Low,
                    ClassArg::Medium => Criticality::Medium,
                    ClassArg::High => Criticality::High,
                    ClassArg::Emergency => Criticality::Emergency,
                };
                let item = c
                    .classify(
                        id,
                        &TriageClassification {
                            classification,
                            reason,
                        },
                    )
                    .await?;
                if format == Format::Json {
                    return output::json(&item);
                }
                triage_rows(&[item]);
                Ok(())
            }
        }
    })
}
