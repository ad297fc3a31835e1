//! The operator commands over the API: hosts, findings, advisories, users, API tokens and
//! enrollment tokens (and, in `feeds_cmd`, feeds and triage). Each prints an aligned table
//! for people or, with `--format json`, the API's own JSON as one document; failures exit
//! with the codes of docs/cli.md.

use std::collections::BTreeSet;
use std::future::Future;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use jiff::Timestamp;
use patchwarden_api::v1::fleet::{Criticality, FindingQuery, FindingStateFilter, HostQuery};
use patchwarden_api::v1::operator::{
    NewApiTokenRequest, NewEnrollmentTokenRequest, NewUserRequest, Role, RolesChange, UserView,
};
use patchwarden_client::OperatorClient;
use uuid::Uuid;

use crate::login_cmd::Connection;
use crate::output::{self, EXIT_ERROR, EXIT_NOT_FOUND, Failure, Format, name, opt};

/// The options every operator command takes.
#[derive(Debug, Clone, Args)]
pub(crate) struct Common {
    #[command(flatten)]
    pub(crate) conn: Connection,
    /// `table` for people, `json` for scripts (the API's own JSON, one document).
    #[arg(long, global = true, value_enum, default_value = "table")]
    pub(crate) format: Format,
}

/// The operator subcommands, flattened into the binary's own list.
#[derive(Debug, Subcommand)]
pub(crate) enum OpsCommand {
    /// Log in to a server: asks for a user and password, creates an API token and saves it
    /// (with the server and its CA pin) in the CLI's config file, mode 0600.
    Login(crate::login_cmd::LoginArgs),
    /// Revoke the saved API token and remove it from the config file.
    Logout(crate::login_cmd::LogoutArgs),
    /// Enrolled hosts.
    Hosts(HostsArgs),
    /// Findings across the fleet, with filters.
    Findings(FindingsArgs),
    /// Advisories the server holds.
    Advisories(AdvisoriesArgs),
    /// Operator accounts (admins).
    Users(UsersArgs),
    /// Your API tokens.
    Tokens(TokensArgs),
    /// Enrollment tokens for new hosts.
    EnrollmentTokens(EnrollmentTokensArgs),
    /// Advisory feeds over the API (list, show, sync, check), and importing a file — over the
    /// API, or with --database into a database directly (air-gapped sites).
    Feeds(crate::feeds_cmd::FeedsArgs),
    /// The triage queue of new advisories that affect the fleet.
    Triage(crate::feeds_cmd::TriageArgs),
    /// Exceptions (risk acceptance): request, acknowledge, approve, reject, revoke, list, show.
    Exceptions(crate::exceptions_cmd::ExceptionsArgs),
}

pub(crate) fn run(cmd: OpsCommand) -> anyhow::Result<ExitCode> {
    Ok(match cmd {
        OpsCommand::Login(a) => crate::login_cmd::login(a),
        OpsCommand::Logout(a) => crate::login_cmd::logout(a),
        OpsCommand::Hosts(a) => finish(hosts(a)),
        OpsCommand::Findings(a) => finish(findings(a)),
        OpsCommand::Advisories(a) => finish(advisories(a)),
        OpsCommand::Users(a) => finish(users(a)),
        OpsCommand::Tokens(a) => finish(tokens(a)),
        OpsCommand::EnrollmentTokens(a) => finish(enrollment_tokens(a)),
        OpsCommand::Feeds(a) => crate::feeds_cmd::run_feeds(a)?,
        OpsCommand::Triage(a) => finish(crate::feeds_cmd::triage(a)),
        OpsCommand::Exceptions(a) => finish(crate::exceptions_cmd::run(a)),
    })
}

pub(crate) fn finish(result: Result<(), Failure>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => f.report(),
    }
}

/// Runs `f` with an operator client on a runtime of its own.
pub(crate) fn with_client<F, Fut>(common: &Common, f: F) -> Result<(), Failure>
where
    F: FnOnce(OperatorClient) -> Fut,
    Fut: Future<Output = Result<(), Failure>>,
{
    let client = common.conn.operator()?;
    let runtime = tokio::runtime::Runtime::new()
        .map_err(|e| Failure::new(EXIT_ERROR, format!("starting the async runtime: {e}")))?;
    runtime.block_on(f(client))
}

fn uuid(what: &str, s: &str) -> Result<Uuid, Failure> {
    Uuid::parse_str(s)
        .map_err(|_| Failure::new(EXIT_NOT_FOUND, format!("{what} {s}: not an id (a UUID)")))
}

fn roles_text(roles: &BTreeSet<Role>) -> String {
    roles.iter().map(name).collect::<Vec<_>>().join(",")
}

fn ts(t: Option<Timestamp>) -> String {
    opt(t.map(|t| t.strftime("%Y-%m-%d %H:%M").to_string()))
}

// ---- hosts

#[derive(Debug, Args)]
pub(crate) struct HostsArgs {
    #[command(subcommand)]
    cmd: HostsCommand,
    #[command(flatten)]
    common: Common,
}

#[derive(Debug, Subcommand)]
enum HostsCommand {
    /// Hosts, with their group, ring, OS and open findings.
    List {
        #[arg(long)]
        group: Option<String>,
        #[arg(long)]
        ring: Option<String>,
        /// An OSV ecosystem, `Debian:12`.
        #[arg(long)]
        ecosystem: Option<String>,
        /// At most this many per page (1 to 1000).
        #[arg(long)]
        limit: Option<u32>,
        /// Every page, not just the first.
        #[arg(long)]
        all: bool,
    },
    /// One host: facts, packages and open findings.
    Show { id: String },
}

fn hosts(args: HostsArgs) -> Result<(), Failure> {
    let format = args.common.format;
    match args.cmd {
        HostsCommand::List {
            group,
            ring,
            ecosystem,
            limit,
            all,
        } => with_client(&args.common, |c| async move {
            let mut query = HostQuery {
                group,
                ring,
                ecosystem,
                after: None,
                limit,
            };
            let mut page = c.hosts(&query).await?;
            while all && let Some(after) = page.next_after {
                query.after = Some(after);
                let next = c.hosts(&query).await?;
                page.items.extend(next.items);
                page.next_after = next.next_after;
            }
            if format == Format::Json {
                return output::json(&page);
            }
            let rows: Vec<Vec<String>> = page
                .items
                .iter()
                .map(|h| {
                    vec![
                        h.id.to_string(),
                        h.hostname.clone(),
                        h.group.clone(),
                        opt(h.ring.as_ref()),
                        opt(h.ecosystem.as_ref()),
                        name(&h.standing),
                        ts(h.last_seen),
                        h.open_findings.to_string(),
                    ]
                })
                .collect();
            output::table(
                &[
                    "ID",
                    "HOSTNAME",
                    "GROUP",
                    "RING",
                    "ECOSYSTEM",
                    "STANDING",
                    "LAST SEEN",
                    "OPEN",
                ],
                &rows,
            );
            if let Some(after) = page.next_after {
                eprintln!("more hosts: --all, or the API's after={after}");
            }
            Ok(())
        }),
        HostsCommand::Show { id } => {
            let id = uuid("host", &id)?;
            with_client(&args.common, |c| async move {
                let d = c.host(id).await?;
                if format == Format::Json {
                    return output::json(&d);
                }
                let h = &d.host;
                output::fields(&[
                    ("id", h.id.to_string()),
                    ("hostname", h.hostname.clone()),
                    ("group", h.group.clone()),
                    ("ring", opt(h.ring.as_ref())),
                    ("os", opt(d.facts.os.pretty_name.as_ref())),
                    ("ecosystem", opt(h.ecosystem.as_ref())),
                    ("standing", name(&h.standing)),
                    ("enrolled", ts(Some(h.enrolled_at))),
                    ("last seen", ts(h.last_seen)),
                    ("packages", d.packages.len().to_string()),
                    ("open findings", h.open_findings.to_string()),
                ]);
                if !d.findings.is_empty() {
                    println!();
                    finding_table(&d.findings);
                }
                Ok(())
            })
        }
    }
}

fn finding_table(items: &[patchwarden_api::v1::fleet::FindingView]) {
    let rows: Vec<Vec<String>> = items
        .iter()
        .map(|f| {
            vec![
                f.id.to_string(),
                f.host.to_string(),
                f.finding.vulnerability.clone(),
                f.finding.package.clone(),
                f.finding.installed.clone(),
                opt(f.finding.fixed.as_ref()),
                opt(f.criticality.as_ref().map(name)),
                ts(f.due_at),
                name(&f.state),
                opt(f.standing.as_ref().map(name)),
                opt(f.exception.as_ref().map(|e| e.number.clone())),
            ]
        })
        .collect();
    output::table(
        &[
            "ID",
            "HOST",
            "VULNERABILITY",
            "PACKAGE",
            "INSTALLED",
            "FIXED",
            "CRITICALITY",
            "DUE",
            "STATE",
            "STANDING",
            "EXCEPTION",
        ],
        &rows,
    );
}

// ---- findings

#[derive(Debug, Args)]
pub(crate) struct FindingsArgs {
    #[command(subcommand)]
    cmd: FindingsCommand,
    #[command(flatten)]
    common: Common,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum CriticalityArg {
    NotApplicable,
    Low,
    Medium,
    High,
    Emergency,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum StateArg {
    Open,
    Closed,
    Excepted,
}

#[derive(Debug, Subcommand)]
enum FindingsCommand {
    /// Findings (open ones unless --state says otherwise), oldest id first.
    List {
        /// Only this host's (its id).
        #[arg(long)]
        host: Option<String>,
        #[arg(long, value_enum)]
        criticality: Option<CriticalityArg>,
        /// Only findings due before this time (RFC 3339, `2026-12-01T00:00:00Z`).
        #[arg(long)]
        due_before: Option<Timestamp>,
        #[arg(long, value_enum)]
        state: Option<StateArg>,
        /// At most this many per page (1 to 1000).
        #[arg(long)]
        limit: Option<u32>,
        /// Every page, not just the first.
        #[arg(long)]
        all: bool,
    },
}

fn findings(args: FindingsArgs) -> Result<(), Failure> {
    let format = args.common.format;
    let FindingsCommand::List {
        host,
        criticality,
        due_before,
        state,
        limit,
        all,
    } = args.cmd;
    let host = host.map(|h| uuid("host", &h)).transpose()?;
    let criticality = criticality.map(|c| match c {
        CriticalityArg::NotApplicable => Criticality::NotApplicable,
        CriticalityArg::Low => Criticality::Low,
        CriticalityArg::Medium => Criticality::Medium,
        CriticalityArg::High => Criticality::High,
        CriticalityArg::Emergency => Criticality::Emergency,
    });
    let state = state.map(|s| match s {
        StateArg::Open => FindingStateFilter::Open,
        StateArg::Closed => FindingStateFilter::Closed,
        StateArg::Excepted => FindingStateFilter::Excepted,
    });
    with_client(&args.common, |c| async move {
        let mut query = FindingQuery {
            host,
            criticality,
            due_before,
            state,
            after: None,
            limit,
        };
        let mut page = c.findings(&query).await?;
        while all && let Some(after) = page.next_after {
            query.after = Some(after);
            let next = c.findings(&query).await?;
            page.items.extend(next.items);
            page.next_after = next.next_after;
        }
        if format == Format::Json {
            return output::json(&page);
        }
        finding_table(&page.items);
        if let Some(after) = page.next_after {
            eprintln!("more findings: --all, or the API's after={after}");
        }
        Ok(())
    })
}

// ---- advisories

#[derive(Debug, Args)]
pub(crate) struct AdvisoriesArgs {
    #[command(subcommand)]
    cmd: AdvisoriesCommand,
    #[command(flatten)]
    common: Common,
}

#[derive(Debug, Subcommand)]
enum AdvisoriesCommand {
    /// One advisory by its id (or an alias the server knows).
    Show { id: String },
    /// Enter one advisory by hand (an OSV record, JSON) into a manual source: a vendor
    /// without a feed.
    Enter {
        file: std::path::PathBuf,
        /// The manual source (the vendor); default `manual`.
        #[arg(long)]
        source: Option<String>,
    },
}

/// The largest OSV record `advisories enter` reads.
const MAX_RECORD_BYTES: u64 = 4 * 1024 * 1024;

fn advisories(args: AdvisoriesArgs) -> Result<(), Failure> {
    let format = args.common.format;
    let id = match args.cmd {
        AdvisoriesCommand::Show { id } => id,
        AdvisoriesCommand::Enter { file, source } => {
            use std::io::Read;
            let fail = |e: String| Failure::new(EXIT_ERROR, format!("{}: {e}", file.display()));
            let mut text = Vec::new();
            std::fs::File::open(&file)
                .and_then(|f| f.take(MAX_RECORD_BYTES + 1).read_to_end(&mut text))
                .map_err(|e| fail(e.to_string()))?;
            if text.len() as u64 > MAX_RECORD_BYTES {
                return Err(fail(format!("longer than {MAX_RECORD_BYTES} bytes")));
            }
            let record: serde_json::Value =
                serde_json::from_slice(&text).map_err(|e| fail(format!("not JSON: {e}")))?;
            let query = patchwarden_api::v1::feeds::AdvisoryQuery { source };
            return with_client(&args.common, |c| async move {
                let outcome = c.enter_advisory(&query, &record).await?;
                if format == Format::Json {
                    return output::json(&outcome);
                }
                println!(
                    "entered into source {} ({}): {} new or changed; {} host(s) matched again",
                    outcome.source, outcome.outcome, outcome.changed, outcome.hosts_rematched
                );
                for line in outcome.rejects.iter().take(10) {
                    eprintln!("patchwarden: rejected: {line}");
                }
                Ok(())
            });
        }
    };
    with_client(&args.common, |c| async move {
        let view = c.advisory(&id).await?;
        if format == Format::Json {
            return output::json(&view);
        }
        // The advisory is the OSV-shaped core record: shown through its JSON, so this
        // command does not depend on the record's Rust shape.
        let v = serde_json::to_value(&view.advisory)
            .map_err(|e| Failure::new(EXIT_ERROR, format!("encoding the advisory: {e}")))?;
        let text = |k: &str| v.get(k).and_then(|x| x.as_str()).unwrap_or("-").to_owned();
        let list = |k: &str| {
            v.get(k)
                .and_then(|x| x.as_array())
                .map(|a| {
                    a.iter()
                        .filter_map(|x| x.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                })
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| "-".into())
        };
        let affected = v
            .get("affected")
            .and_then(|x| x.as_array())
            .map(|a| {
                a.iter()
                    .filter_map(|x| {
                        let p = x.get("package")?;
                        Some(format!(
                            "{} {}",
                            p.get("ecosystem")?.as_str()?,
                            p.get("name")?.as_str()?
                        ))
                    })
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .unwrap_or_default();
        output::fields(&[
            ("id", text("id")),
            ("aliases", list("aliases")),
            ("upstream", list("upstream")),
            ("summary", text("summary")),
            ("published", text("published")),
            ("modified", text("modified")),
            ("affected", affected),
        ]);
        Ok(())
    })
}

// ---- users

#[derive(Debug, Args)]
pub(crate) struct UsersArgs {
    #[command(subcommand)]
    cmd: UsersCommand,
    #[command(flatten)]
    common: Common,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum RoleArg {
    Admin,
    Officer,
    Approver,
    Authoriser,
    Security,
    Auditor,
    Provider,
}

fn roles(list: &[RoleArg]) -> BTreeSet<Role> {
    list.iter()
        .map(|r| match r {
            RoleArg::Admin => Role::Admin,
            RoleArg::Officer => Role::Officer,
            RoleArg::Approver => Role::Approver,
            RoleArg::Authoriser => Role::Authoriser,
            RoleArg::Security => Role::Security,
            RoleArg::Auditor => Role::Auditor,
            RoleArg::Provider => Role::Provider,
        })
        .collect()
}

#[derive(Debug, Subcommand)]
enum UsersCommand {
    /// Every user, with roles and whether they may log in.
    List,
    /// A new user; the server makes a one-time password, shown once.
    Create {
        username: String,
        /// Roles, comma-separated.
        #[arg(long, value_enum, value_delimiter = ',', required = true)]
        roles: Vec<RoleArg>,
        /// For a provider: the host groups it is scoped to, comma-separated.
        #[arg(long, value_delimiter = ',')]
        groups: Vec<String>,
    },
    /// Replace a user's roles (and groups).
    SetRoles {
        /// The user's name or id.
        user: String,
        #[arg(long, value_enum, value_delimiter = ',', required = true)]
        roles: Vec<RoleArg>,
        #[arg(long, value_delimiter = ',')]
        groups: Vec<String>,
    },
    /// Refuse a user's logins and tokens.
    Disable {
        /// The user's name or id.
        user: String,
    },
    /// Let a disabled user in again.
    Enable {
        /// The user's name or id.
        user: String,
    },
}

/// A user by id, or by name through the list (names are what people remember).
async fn find_user(c: &OperatorClient, user: &str) -> Result<Uuid, Failure> {
    if let Ok(id) = Uuid::parse_str(user) {
        return Ok(id);
    }
    c.users()
        .await?
        .into_iter()
        .find(|u| u.username.eq_ignore_ascii_case(user))
        .map(|u| u.id)
        .ok_or_else(|| Failure::new(EXIT_NOT_FOUND, format!("no user {user}")))
}

fn user_rows(users: &[UserView]) {
    let rows: Vec<Vec<String>> = users
        .iter()
        .map(|u| {
            vec![
                u.id.to_string(),
                u.username.clone(),
                roles_text(&u.roles),
                u.groups.iter().cloned().collect::<Vec<_>>().join(","),
                if u.enabled { "yes" } else { "no" }.into(),
                ts(u.locked_until),
                ts(Some(u.created_at)),
            ]
        })
        .collect();
    output::table(
        &[
            "ID", "USERNAME", "ROLES", "GROUPS", "ENABLED", "LOCKED", "CREATED",
        ],
        &rows,
    );
}

fn users(args: UsersArgs) -> Result<(), Failure> {
    let format = args.common.format;
    with_client(&args.common, |c| async move {
        let one = |u: UserView| {
            if format == Format::Json {
                output::json(&u)
            } else {
                user_rows(&[u]);
                Ok(())
            }
        };
        match args.cmd {
            UsersCommand::List => {
                let list = c.users().await?;
                if format == Format::Json {
                    return output::json(&list);
                }
                user_rows(&list);
                Ok(())
            }
            UsersCommand::Create {
                username,
                roles: r,
                groups,
            } => {
                let created = c
                    .create_user(&NewUserRequest {
                        username,
                        roles: roles(&r),
                        groups: groups.into_iter().collect(),
                    })
                    .await?;
                if format == Format::Json {
                    return output::json(&created);
                }
                user_rows(std::slice::from_ref(&created.user));
                println!(
                    "one-time password (shown once; changed at first login): {}",
                    created.one_time_password
                );
                Ok(())
            }
            UsersCommand::SetRoles {
                user,
                roles: r,
                groups,
            } => {
                let id = find_user(&c, &user).await?;
                let change = RolesChange {
                    roles: roles(&r),
                    groups: groups.into_iter().collect(),
                };
                one(c.set_roles(id, &change).await?)
            }
            UsersCommand::Disable { user } => {
                let id = find_user(&c, &user).await?;
                one(c.disable_user(id).await?)
            }
            UsersCommand::Enable { user } => {
                let id = find_user(&c, &user).await?;
                one(c.enable_user(id).await?)
            }
        }
    })
}

// ---- API tokens

#[derive(Debug, Args)]
pub(crate) struct TokensArgs {
    #[command(subcommand)]
    cmd: TokensCommand,
    #[command(flatten)]
    common: Common,
}

#[derive(Debug, Subcommand)]
enum TokensCommand {
    /// Your API tokens (never their secrets).
    List,
    /// A new API token; its secret is shown once. The server makes tokens only from a login,
    /// so this asks for your password (or reads it with --password-stdin).
    Create {
        /// What it is for.
        name: String,
        /// Whose token (default: the user of the current token).
        #[arg(long)]
        user: Option<String>,
        /// Read the password from the first line of stdin.
        #[arg(long)]
        password_stdin: bool,
        /// At most your roles, comma-separated; all of them when left out.
        #[arg(long, value_enum, value_delimiter = ',')]
        roles: Vec<RoleArg>,
        /// Days until it expires.
        #[arg(long)]
        expires_in_days: Option<u32>,
    },
    /// Revoke one of your API tokens by id.
    Revoke { id: String },
}

fn api_token_rows(items: &[patchwarden_api::v1::operator::ApiTokenView]) {
    let rows: Vec<Vec<String>> = items
        .iter()
        .map(|t| {
            vec![
                t.id.to_string(),
                t.name.clone(),
                roles_text(&t.roles),
                ts(Some(t.created_at)),
                ts(Some(t.expires_at)),
                ts(t.revoked_at),
            ]
        })
        .collect();
    output::table(
        &["ID", "NAME", "ROLES", "CREATED", "EXPIRES", "REVOKED"],
        &rows,
    );
}

fn tokens(args: TokensArgs) -> Result<(), Failure> {
    let format = args.common.format;
    let revoke = match &args.cmd {
        TokensCommand::Revoke { id } => Some(uuid("token", id)?),
        _ => None,
    };
    with_client(&args.common, |c| async move {
        match args.cmd {
            TokensCommand::List => {
                let list = c.api_tokens().await?;
                if format == Format::Json {
                    return output::json(&list);
                }
                api_token_rows(&list);
                Ok(())
            }
            TokensCommand::Create {
                name,
                user,
                password_stdin,
                roles: r,
                expires_in_days,
            } => {
                let user = match user {
                    Some(u) => u,
                    None => c.session().await?.user.username,
                };
                let password = if password_stdin {
                    crate::login_cmd::stdin_line("password")?
                } else {
                    crate::login_cmd::prompt(&format!("password of {user}"), true)?
                };
                let (session, _) = c.client().login(&user, &password).await?;
                let created = session
                    .create_api_token(&NewApiTokenRequest {
                        name,
                        roles: (!r.is_empty()).then(|| roles(&r)),
                        expires_in_days,
                    })
                    .await;
                // The session was only the way to the token.
                let _ = session.logout().await;
                let created = created?;
                if format == Format::Json {
                    return output::json(&created);
                }
                api_token_rows(std::slice::from_ref(&created.token));
                println!("secret (shown once): {}", created.secret);
                Ok(())
            }
            TokensCommand::Revoke { .. } => {
                let id = revoke.ok_or_else(|| Failure::new(EXIT_ERROR, "no token id"))?;
                let t = c.revoke_api_token(id).await?;
                if format == Format::Json {
                    return output::json(&t);
                }
                api_token_rows(&[t]);
                Ok(())
            }
        }
    })
}

// ---- enrollment tokens

#[derive(Debug, Args)]
pub(crate) struct EnrollmentTokensArgs {
    #[command(subcommand)]
    cmd: EnrollmentTokensCommand,
    #[command(flatten)]
    common: Common,
}

#[derive(Debug, Subcommand)]
enum EnrollmentTokensCommand {
    /// Enrollment tokens (never their secrets).
    List,
    /// A new enrollment token; its secret is shown once.
    Create {
        /// The host group hosts enrolled with it join.
        #[arg(long)]
        group: String,
        /// Hours until it expires.
        #[arg(long)]
        expires_in_hours: Option<u32>,
        /// How many hosts may enroll with it (default 1).
        #[arg(long)]
        max_uses: Option<u32>,
        #[arg(long)]
        note: Option<String>,
    },
    /// Revoke an enrollment token by id.
    Revoke { id: String },
}

fn enrollment_rows(items: &[patchwarden_api::v1::operator::EnrollmentTokenView]) {
    let rows: Vec<Vec<String>> = items
        .iter()
        .map(|t| {
            vec![
                t.id.to_string(),
                t.group.clone(),
                format!("{}/{}", t.uses, t.max_uses),
                ts(Some(t.expires_at)),
                ts(t.revoked_at),
                t.created_by.clone(),
                opt(t.note.as_ref()),
            ]
        })
        .collect();
    output::table(
        &[
            "ID",
            "GROUP",
            "USES",
            "EXPIRES",
            "REVOKED",
            "CREATED BY",
            "NOTE",
        ],
        &rows,
    );
}

fn enrollment_tokens(args: EnrollmentTokensArgs) -> Result<(), Failure> {
    let format = args.common.format;
    let revoke = match &args.cmd {
        EnrollmentTokensCommand::Revoke { id } => Some(uuid("enrollment token", id)?),
        _ => None,
    };
    with_client(&args.common, |c| async move {
        match args.cmd {
            EnrollmentTokensCommand::List => {
                let list = c.enrollment_tokens().await?;
                if format == Format::Json {
                    return output::json(&list);
                }
                enrollment_rows(&list);
                Ok(())
            }
            EnrollmentTokensCommand::Create {
                group,
                expires_in_hours,
                max_uses,
                note,
            } => {
                let created = c
                    .create_enrollment_token(&NewEnrollmentTokenRequest {
                        group,
                        expires_in_hours,
                        max_uses,
                        note,
                    })
                    .await?;
                if format == Format::Json {
                    return output::json(&created);
                }
                enrollment_rows(std::slice::from_ref(&created.token));
                println!("secret (shown once): {}", created.secret);
                Ok(())
            }
            EnrollmentTokensCommand::Revoke { .. } => {
                let id = revoke.ok_or_else(|| Failure::new(EXIT_ERROR, "no token id"))?;
                let t = c.revoke_enrollment_token(id).await?;
                if format == Format::Json {
                    return output::json(&t);
                }
                enrollment_rows(&[t]);
                Ok(())
            }
        }
    })
}
