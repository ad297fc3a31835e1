//! `patchwarden`: one binary, many subcommands. This crate parses arguments and wires the
//! library crates together; the work itself lives in those crates.

mod admin_cmd;
mod agent_cmd;
mod audit_cmd;
mod changes_cmd;
mod config_cmd;
mod demo_changes;
mod demo_cmd;
mod demo_exceptions;
mod exceptions_cmd;
mod feeds_cmd;
mod inventory_cmd;
mod login_cmd;
mod ops_cmd;
mod output;
mod policy_cmd;
mod report_cmd;
mod scan_cmd;
mod serve_cmd;
mod version_cmd;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Patch management that security teams can trust.
#[derive(Debug, Parser)]
#[command(name = "patchwarden", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Version ordering as dpkg, rpm, apk and the language ecosystems do it.
    #[command(subcommand)]
    Version(version_cmd::VersionCommand),
    /// This host's facts and installed packages (or a root's, or an SBOM's), as JSON or a table.
    Inventory(inventory_cmd::InventoryArgs),
    /// Classification policies: the framework presets shipped in the binary, and checking an
    /// organisation's own policy file.
    #[command(subcommand)]
    Policy(policy_cmd::PolicyCommand),
    /// Scan a host (or a root, a package database file, an SBOM) against advisory feeds:
    /// findings with their class, due date and reason. Exit 0: no findings, 1: findings, 2: error.
    Scan(Box<scan_cmd::ScanArgs>),
    /// Run the server: the agent protocol, findings kept current, the audit chain, metrics.
    Serve(serve_cmd::ServeArgs),
    /// The agent: enroll this host, check in once, or check in on a schedule.
    #[command(subcommand)]
    Agent(agent_cmd::AgentCommand),
    /// The audit chain: verify that no event was altered, removed or reordered.
    #[command(subcommand)]
    Audit(audit_cmd::AuditCommand),
    /// The server's configuration: the documented example, and what `serve` would use.
    #[command(subcommand)]
    Config(config_cmd::ConfigCommand),
    /// Administration on the server's machine, directly in its database: enrollment tokens.
    #[command(subcommand)]
    Admin(admin_cmd::AdminCommand),
    /// The operator commands over the API (login, hosts, findings, users, tokens, feeds …;
    /// docs/cli.md).
    #[command(flatten)]
    Ops(ops_cmd::OpsCommand),
    /// Change requests: create, sign, schedule and follow a patch change (docs/cli.md).
    Changes(changes_cmd::ChangesArgs),
    /// The calendar: maintenance windows and change freezes.
    Calendar(changes_cmd::CalendarArgs),
    /// Reports: the monthly compliance report and a change's patch control form, as HTML,
    /// CSV or PDF (docs/reports.md).
    Report(report_cmd::ReportArgs),
    /// The whole product on this machine, offline: a server with bundled real advisories, this
    /// machine's agent, a simulated fleet, and an admin login. Ctrl-C stops it.
    Demo(demo_cmd::DemoArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Version(cmd) => version_cmd::run(cmd),
        Command::Inventory(args) => inventory_cmd::run(args),
        Command::Policy(cmd) => policy_cmd::run(cmd),
        Command::Scan(args) => scan_cmd::run(*args),
        Command::Serve(args) => serve_cmd::run(args),
        Command::Agent(cmd) => agent_cmd::run(cmd),
        Command::Audit(cmd) => audit_cmd::run(cmd),
        Command::Config(cmd) => config_cmd::run(cmd),
        Command::Admin(cmd) => admin_cmd::run(cmd),
        Command::Ops(cmd) => ops_cmd::run(cmd),
        Command::Changes(args) => changes_cmd::run_changes(args),
        Command::Calendar(args) => changes_cmd::run_calendar(args),
        Command::Report(args) => report_cmd::run(args),
        Command::Demo(args) => demo_cmd::run(args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("patchwarden: {e:#}");
            ExitCode::from(2)
        }
    }
}
