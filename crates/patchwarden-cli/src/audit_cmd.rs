//! `patchwarden audit verify`: walk the audit chain from its first event and name the first
//! broken link. Reads the database directly (by URL, or the one the configuration names), so
//! it works with the server stopped and trusts nothing the server says.

use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Subcommand};
use patchwarden_core::audit::{AuditEvent, verify};

use crate::config_cmd::ConfigArgs;

#[derive(Debug, Subcommand)]
pub(crate) enum AuditCommand {
    /// Check every event's hash and its link to the one before. Exit 0: intact; 1: broken
    /// (the first broken event is named); 2: the database could not be read.
    Verify(DatabaseArgs),
}

/// Which database to open.
#[derive(Debug, Args)]
pub(crate) struct DatabaseArgs {
    /// The database URL (sqlite:///path or postgres://…). Default: the one the server's
    /// configuration names.
    #[arg(long, value_name = "URL")]
    pub(crate) database: Option<String>,
    #[command(flatten)]
    pub(crate) config: ConfigArgs,
}

impl DatabaseArgs {
    pub(crate) fn url(&self) -> anyhow::Result<String> {
        match &self.database {
            Some(url) => Ok(url.clone()),
            None => Ok(self.config.load()?.database_url()),
        }
    }
}

/// Events read per query.
const PAGE: u32 = 1000;

pub(crate) fn run(cmd: AuditCommand) -> anyhow::Result<ExitCode> {
    let AuditCommand::Verify(args) = cmd;
    let url = args.url()?;
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    runtime.block_on(async {
        let store = patchwarden_server::open_store(&url)
            .await
            .with_context(|| format!("opening {}", patchwarden_store::redact(&url)))?;
        let mut events: Vec<AuditEvent> = Vec::new();
        loop {
            let after = events.last().map_or(0, |e| e.seq);
            let page = match store.audit_events(after, PAGE).await {
                Ok(page) => page,
                // A row that no longer decodes was edited by hand: that is a broken link, and
                // it is the one after the last event read.
                Err(e @ patchwarden_store::StoreError::Corrupt { .. }) => {
                    println!("audit chain broken after event {after}: {e}");
                    return Ok(ExitCode::from(1));
                }
                Err(e) => return Err(e).context("reading the audit chain"),
            };
            if page.is_empty() {
                break;
            }
            events.extend(page);
        }
        match verify(&events) {
            Ok(v) => {
                println!("audit chain intact: {} events, head {}", v.events, v.head);
                Ok(ExitCode::SUCCESS)
            }
            Err(broken) => {
                println!("audit chain broken: {broken}");
                Ok(ExitCode::from(1))
            }
        }
    })
}
