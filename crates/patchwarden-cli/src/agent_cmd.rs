//! `patchwarden agent enroll|run|once`: the agent's commands. The work is in
//! `patchwarden_agent::agent`; this parses arguments, hands the executor the clock, and
//! prints.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use jiff::Timestamp;
use patchwarden_agent::agent::session::Clock;
use patchwarden_agent::agent::{Agent, CycleReport, EnrollOptions, StateDir, enroll};
use patchwarden_agent::executor::ExecutorOptions;
use patchwarden_client::Fingerprint;

use crate::serve_cmd::init_logging;

#[derive(Debug, Subcommand)]
pub(crate) enum AgentCommand {
    /// Enroll this host with a server: a new key, an enrollment token, the server's CA pinned.
    /// Checks in at once, so the server matches the host's packages at enrollment.
    Enroll(EnrollArgs),
    /// Check in at the server's interval (with jitter) until SIGTERM or Ctrl-C; leased
    /// install, rollback and reboot jobs go to the executor (docs/agent-executor.md).
    Run(RunArgs),
    /// Check in once (for cron and tests); prints what was sent and what the server said.
    Once(RunArgs),
}

#[derive(Debug, Args)]
pub(crate) struct RunArgs {
    #[command(flatten)]
    common: Common,
    /// Let this host be rebooted by a reboot job, or by an install job whose manifest allows
    /// it when a package asks for one. Off by default: the result then says a reboot is
    /// required.
    #[arg(long)]
    allow_reboot: bool,
}

impl RunArgs {
    fn agent(self) -> anyhow::Result<Agent> {
        let state = StateDir::open(&self.common.state_dir)?;
        let options = ExecutorOptions {
            allow_reboot: self.allow_reboot,
            ..ExecutorOptions::default()
        };
        // The executor's clock: manifests' windows and expiry are checked against it.
        #[allow(clippy::disallowed_methods)]
        let clock: Clock = Timestamp::now;
        Ok(Agent::load(state, self.common.root)?.with_executor(options, clock))
    }
}

#[derive(Debug, Args)]
pub(crate) struct Common {
    /// Where the agent keeps its key and state (files 0600).
    #[arg(long, value_name = "DIR", default_value = "/var/lib/patchwarden-agent")]
    state_dir: PathBuf,
    /// The host whose file system is under DIR: its packages and facts are read there, and
    /// install and rollback jobs act there (`/` is this host).
    #[arg(long, value_name = "DIR", default_value = "/")]
    root: PathBuf,
}

#[derive(Debug, Args)]
pub(crate) struct EnrollArgs {
    /// The server's URL, `https://host:8443`.
    #[arg(long, value_name = "URL")]
    server: String,
    /// The enrollment token an operator created.
    #[arg(long, value_name = "TOKEN", required_unless_present = "token_file")]
    token: Option<String>,
    /// Read the token from a file instead (it then stays out of the process list).
    #[arg(long, value_name = "FILE", conflicts_with = "token")]
    token_file: Option<PathBuf>,
    /// The server CA's SHA-256 fingerprint, as `patchwarden serve` printed it.
    #[arg(
        long,
        value_name = "FINGERPRINT",
        required_unless_present = "insecure_plain_http"
    )]
    ca_fingerprint: Option<String>,
    /// Talk plain HTTP (a server behind a TLS-terminating proxy on a trusted network).
    #[arg(long, conflicts_with = "ca_fingerprint")]
    insecure_plain_http: bool,
    /// Retire the enrolled host with this machine id (a re-imaged host), explicitly.
    #[arg(long)]
    replace: bool,
    #[command(flatten)]
    common: Common,
}

fn print_report(report: &CycleReport) {
    match (report.uploaded, report.findings) {
        (Some(kind), Some(f)) => println!(
            "inventory sent ({kind}): {} findings open, {} opened, {} closed",
            f.open, f.opened, f.closed
        ),
        _ => println!(
            "inventory unchanged: {} findings open",
            report.open_findings
        ),
    }
    for (id, outcome) in &report.jobs {
        println!("job {id}: {outcome:?}");
    }
    if report.new_host {
        println!("new host: flagged until its fixable findings are closed");
    }
    println!(
        "next check-in in {} s (+ up to {} s)",
        report.schedule.interval_secs, report.schedule.jitter_secs
    );
}

pub(crate) fn run(cmd: AgentCommand) -> anyhow::Result<ExitCode> {
    init_logging();
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    runtime.block_on(async move {
        match cmd {
            AgentCommand::Enroll(args) => {
                let token = match (&args.token, &args.token_file) {
                    (Some(t), _) => t.clone(),
                    (None, Some(path)) => {
                        let bytes = patchwarden_feeds::load::read_file(path, 4096)
                            .map_err(|e| anyhow::anyhow!("--token-file {}: {e}", path.display()))?;
                        String::from_utf8(bytes)
                            .map_err(|_| anyhow::anyhow!("--token-file: not text"))?
                            .trim()
                            .to_owned()
                    }
                    (None, None) => bail!("--token or --token-file is required"),
                };
                let ca_fingerprint = args
                    .ca_fingerprint
                    .as_deref()
                    .map(Fingerprint::parse)
                    .transpose()?;
                let state = StateDir::open(&args.common.state_dir)?;
                let (identity, report) = enroll(
                    &state,
                    EnrollOptions {
                        server: args.server,
                        token,
                        ca_fingerprint,
                        replace: args.replace,
                        root: args.common.root,
                    },
                )
                .await?;
                println!(
                    "enrolled as host {} in group {}",
                    identity.host_id, identity.group
                );
                print_report(&report);
                Ok(ExitCode::SUCCESS)
            }
            AgentCommand::Once(args) => {
                let mut agent = args.agent()?;
                let report = agent.once().await?;
                print_report(&report);
                Ok(ExitCode::SUCCESS)
            }
            AgentCommand::Run(args) => {
                let mut agent = args.agent()?;
                eprintln!(
                    "patchwarden: agent of host {} checking in to {}",
                    agent.identity().host_id,
                    agent.identity().server
                );
                agent.run(patchwarden_server::shutdown_signal()).await?;
                eprintln!("patchwarden: agent stopped");
                Ok(ExitCode::SUCCESS)
            }
        }
    })
}
