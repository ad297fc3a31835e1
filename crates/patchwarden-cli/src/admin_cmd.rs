//! `patchwarden admin token create|revoke|list`, `admin host retire` and `admin bootstrap`:
//! enrollment tokens, host retirement and the first admin, done by an administrator on the
//! server's machine directly in its database (everything else goes through the operator API,
//! with roles). Each change is in the audit chain, with the local user as the actor.
//!
//! `token create` prints the secret alone on the first line of its output (so a script can
//! take it with `head -n 1`), then the install command of each package the server serves
//! (docs/install.md), or on stderr why there are none.

use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Subcommand};
use jiff::SignedDuration;
use patchwarden_core::audit::Actor;
use patchwarden_server::admin::{self, TokenRequest};

use crate::audit_cmd::DatabaseArgs;

#[derive(Debug, Subcommand)]
pub(crate) enum AdminCommand {
    /// Enrollment tokens: agents enroll with one (`patchwarden agent enroll --token`).
    #[command(subcommand)]
    Token(TokenCommand),
    /// Hosts: retire one (a quarantined clone, a decommissioned machine).
    #[command(subcommand)]
    Host(HostCommand),
    /// Make the first admin, while no operator exists: prints a one-time password, which must
    /// be changed at the first login (POST /api/v1/session, then PUT /api/v1/me/password).
    Bootstrap {
        /// The admin's user name.
        #[arg(long, default_value = "admin")]
        username: String,
        #[command(flatten)]
        db: DatabaseArgs,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum HostCommand {
    /// Retire a host: its credential is refused from then on and its history kept; the machine
    /// enrolls again to come back.
    Retire {
        id: uuid::Uuid,
        /// Why, for the audit chain.
        #[arg(long, default_value = "retired by an administrator")]
        reason: String,
        #[command(flatten)]
        db: DatabaseArgs,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum TokenCommand {
    /// Create a token; its secret is printed once and stored only as a hash, followed by the
    /// install command of each agent package the server serves.
    Create(CreateArgs),
    /// Revoke a token by id.
    Revoke {
        id: uuid::Uuid,
        #[command(flatten)]
        db: DatabaseArgs,
    },
    /// List every token (never a secret).
    List(DatabaseArgs),
}

#[derive(Debug, Args)]
pub(crate) struct CreateArgs {
    /// The host group that hosts enrolled with it join.
    #[arg(long, default_value = "default")]
    group: String,
    /// How long it is valid (`24h`, `2d`, `30m`). Default: enrollment.token_ttl_hours.
    #[arg(long, value_name = "DURATION")]
    expires_in: Option<SignedDuration>,
    /// How many hosts may enroll with it.
    #[arg(long, default_value_t = 1)]
    uses: u32,
    /// A note for people (what the token is for).
    #[arg(long)]
    note: Option<String>,
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

pub(crate) fn run(cmd: AdminCommand) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    let cmd = match cmd {
        AdminCommand::Token(cmd) => cmd,
        AdminCommand::Bootstrap { username, db } => {
            return runtime.block_on(async move {
                let now = patchwarden_server::clock::now();
                let store = patchwarden_server::open_store(&db.url()?).await?;
                let (user, password) = patchwarden_server::operators::bootstrap_admin(
                    store.as_ref(),
                    &username,
                    actor(),
                    now,
                )
                .await?;
                // The password alone on stdout (a script takes it with `head -n 1`); what it
                // is for on stderr.
                println!("{password}");
                eprintln!(
                    "patchwarden: admin {} created with the one-time password above, shown \
                     only now; it must be changed at the first login",
                    user.username
                );
                Ok(ExitCode::SUCCESS)
            });
        }
        AdminCommand::Host(HostCommand::Retire { id, reason, db }) => {
            return runtime.block_on(async move {
                let now = patchwarden_server::clock::now();
                let store = patchwarden_server::open_store(&db.url()?).await?;
                let host = store
                    .get_host(id)
                    .await?
                    .ok_or_else(|| anyhow::anyhow!("no host {id}"))?;
                patchwarden_server::host_state::retire(
                    store.as_ref(),
                    host.id,
                    &reason,
                    actor(),
                    now,
                )
                .await
                .map_err(|e| anyhow::anyhow!("retiring host {id}: {e}"))?;
                println!("retired host {id} ({})", host.facts.hostname);
                Ok(ExitCode::SUCCESS)
            });
        }
    };
    runtime.block_on(async move {
        let now = patchwarden_server::clock::now();
        match cmd {
            TokenCommand::Create(args) => {
                let config = args.db.config.load()?;
                let valid_for = match args.expires_in {
                    Some(d) => d,
                    None => {
                        SignedDuration::from_hours(i64::from(config.enrollment.token_ttl_hours))
                    }
                };
                // Gathered before the token is made, so that a package being hashed does not
                // keep a secret waiting; a reason for having none is told, not fatal: the
                // token is good without them.
                let sources = admin::install_sources(&config);
                let store = patchwarden_server::open_store(&args.db.url()?).await?;
                let (token, secret) = admin::create_enrollment_token(
                    store.as_ref(),
                    TokenRequest {
                        group: args.group,
                        valid_for,
                        max_uses: args.uses,
                        note: args.note,
                    },
                    actor(),
                    now,
                )
                .await?;
                println!("{secret}");
                eprintln!(
                    "patchwarden: token {} for group {}, {} use(s), expires {} — the secret \
                     above is shown only now",
                    token.id, token.group, token.max_uses, token.expires_at
                );
                match sources.and_then(|s| admin::install_commands(&s, &secret)) {
                    Ok(commands) => {
                        for c in commands {
                            println!();
                            println!(
                                "# {} hosts ({}): downloads {}, checks its SHA-256 {}, installs \
                                 it, enrols the host and starts the agent. Paste into a root \
                                 shell on the host.",
                                c.package.format.hosts(),
                                c.package.name,
                                c.package_url,
                                c.package.sha256
                            );
                            print!("{}", c.paste);
                        }
                    }
                    Err(why) => eprintln!("patchwarden: no install command: {why}"),
                }
            }
            TokenCommand::Revoke { id, db } => {
                let store = patchwarden_server::open_store(&db.url()?).await?;
                let token =
                    admin::revoke_enrollment_token(store.as_ref(), id, actor(), now).await?;
                println!("revoked token {} of group {}", token.id, token.group);
            }
            TokenCommand::List(db) => {
                let store = patchwarden_server::open_store(&db.url()?).await?;
                for t in store.list_enrollment_tokens().await? {
                    let state = match t.usable_at(now) {
                        Ok(()) => "usable".to_owned(),
                        Err(why) => why.to_string(),
                    };
                    println!(
                        "{}  {:<12} {}/{} uses  expires {}  {state}",
                        t.id, t.group, t.uses, t.max_uses, t.expires_at
                    );
                }
            }
        }
        Ok(ExitCode::SUCCESS)
    })
}
