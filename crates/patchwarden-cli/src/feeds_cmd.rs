//! `patchwarden feeds import PATH`: advisory files imported by hand into a server's database,
//! for air-gapped sites where the server cannot fetch its feeds. The kind is recognised from
//! the content as `scan --feed` recognises it (or named with `--kind`); the import is the
//! server's own (`patchwarden_server::feeds::import_path`): one transaction, the hosts the
//! changed advisories name matched again, nothing kept when the file is unusable. A running
//! server on the same database picks the new advisories up at its next scheduler tick.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Subcommand};
use patchwarden_core::audit::Actor;
use patchwarden_store::feed::SourceKind;

use crate::audit_cmd::DatabaseArgs;

#[derive(Debug, Subcommand)]
pub(crate) enum FeedsCommand {
    /// Import an advisory file or directory (OSV all.zip or records, CSAF documents, Alpine
    /// secdb, Debian tracker JSON, CISA KEV, EPSS CSV) into the server's database.
    Import(ImportArgs),
}

#[derive(Debug, Args)]
pub(crate) struct ImportArgs {
    /// The file or directory.
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

pub(crate) fn run(cmd: FeedsCommand) -> anyhow::Result<ExitCode> {
    let FeedsCommand::Import(args) = cmd;
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
