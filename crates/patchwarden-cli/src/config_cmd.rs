//! `patchwarden config example|show`: the server's documented example configuration, and the
//! configuration a `serve` would use (defaults, file, environment), secrets hidden.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use patchwarden_server::Config;

#[derive(Debug, Subcommand)]
pub(crate) enum ConfigCommand {
    /// Print the documented example configuration: every setting with its default.
    Example,
    /// Print the configuration `serve` would use, from the defaults, the file and the
    /// environment (the database password hidden).
    Show(ConfigArgs),
}

/// Where the server's configuration comes from.
#[derive(Debug, Args)]
pub(crate) struct ConfigArgs {
    /// The configuration file (TOML; `patchwarden config example` shows every key). Default:
    /// $PATCHWARDEN_CONFIG when set.
    #[arg(long, value_name = "FILE")]
    pub(crate) config: Option<PathBuf>,
}

impl ConfigArgs {
    /// The configuration, with warnings about environment variables that name no setting
    /// printed to stderr.
    pub(crate) fn load(&self) -> anyhow::Result<Config> {
        let file = self
            .config
            .clone()
            .or_else(|| std::env::var_os("PATCHWARDEN_CONFIG").map(PathBuf::from));
        let (config, warnings) = Config::load(file.as_deref(), std::env::vars())?;
        for w in warnings {
            eprintln!("patchwarden: warning: {w}");
        }
        Ok(config)
    }
}

pub(crate) fn run(cmd: ConfigCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        ConfigCommand::Example => print!("{}", patchwarden_server::config::EXAMPLE),
        ConfigCommand::Show(args) => println!("{:#?}", args.load()?),
    }
    Ok(ExitCode::SUCCESS)
}
