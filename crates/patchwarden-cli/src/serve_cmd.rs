//! `patchwarden serve`: run the server until SIGTERM or Ctrl-C, then finish the requests in
//! flight and exit.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::Args;

use crate::config_cmd::ConfigArgs;

#[derive(Debug, Args)]
pub(crate) struct ServeArgs {
    #[command(flatten)]
    config: ConfigArgs,
}

/// How long requests in flight may take to finish after a stop is asked for.
const GRACE: Duration = Duration::from_secs(30);

/// Logs go to stderr, filtered by `PATCHWARDEN_LOG` (`info` by default; `debug`,
/// `patchwarden_server=debug` …).
pub(crate) fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("PATCHWARDEN_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

pub(crate) fn run(args: ServeArgs) -> anyhow::Result<ExitCode> {
    let config = args.config.load()?;
    init_logging();
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    runtime.block_on(async {
        let running = patchwarden_server::start(&config).await?;
        eprintln!("patchwarden: serving the API at {}", running.url());
        if let Some(addr) = running.metrics_addr {
            eprintln!("patchwarden: metrics at http://{addr}/metrics");
        }
        match &running.fingerprint {
            Some(f) => eprintln!(
                "patchwarden: {} CA fingerprint (agents pin it: --ca-fingerprint): {f}",
                if running.ca_generated {
                    "new"
                } else {
                    "server"
                }
            ),
            None => eprintln!(
                "patchwarden: plain HTTP, as configured: run this only behind a TLS-terminating \
                 proxy"
            ),
        }
        patchwarden_server::shutdown_signal().await;
        eprintln!("patchwarden: stopping (finishing requests in flight)");
        running.shutdown(GRACE).await;
        eprintln!("patchwarden: stopped");
        Ok(ExitCode::SUCCESS)
    })
}
