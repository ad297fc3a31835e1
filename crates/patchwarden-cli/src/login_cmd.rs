//! `patchwarden login` / `logout` and the CLI's config file: the server, how it is trusted
//! (its pinned CA, or plain HTTP by name) and an API token, in
//! `$XDG_CONFIG_HOME/patchwarden/cli.toml` (default `~/.config/...`), mode 0600 because it
//! holds a secret.

use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use patchwarden_api::v1::operator::NewApiTokenRequest;
use patchwarden_client::{Client, Fingerprint, OperatorClient, Trust};
use serde::Deserialize;
use uuid::Uuid;

use crate::output::{EXIT_AUTH, EXIT_ERROR, Failure};

/// The most a config file may hold: three lines and a secret.
const MAX_CONFIG_BYTES: u64 = 64 * 1024;
/// The longest password line read (the server refuses longer ones anyway).
const MAX_PASSWORD_LINE: usize = 4096;

/// The config file's contents.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CliConfig {
    pub(crate) server: Option<String>,
    pub(crate) ca_fingerprint: Option<String>,
    #[serde(default)]
    pub(crate) insecure_plain_http: bool,
    pub(crate) token: Option<String>,
    /// The token's id, so that `logout` can revoke it.
    pub(crate) token_id: Option<Uuid>,
}

/// Where the config file is: `$XDG_CONFIG_HOME/patchwarden/cli.toml`, else under `~/.config`.
pub(crate) fn config_path() -> Result<PathBuf, Failure> {
    let base = match std::env::var_os("XDG_CONFIG_HOME").filter(|v| !v.is_empty()) {
        Some(dir) => PathBuf::from(dir),
        None => match std::env::var_os("HOME").filter(|v| !v.is_empty()) {
            Some(home) => PathBuf::from(home).join(".config"),
            None => {
                return Err(Failure::new(
                    EXIT_ERROR,
                    "neither XDG_CONFIG_HOME nor HOME is set: no place for the config file",
                ));
            }
        },
    };
    Ok(base.join("patchwarden").join("cli.toml"))
}

impl CliConfig {
    /// The config file, or an empty one when there is none.
    pub(crate) fn load() -> Result<CliConfig, Failure> {
        use std::io::Read;
        let path = config_path()?;
        let file = match std::fs::File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(CliConfig::default()),
            Err(e) => {
                return Err(Failure::new(
                    EXIT_ERROR,
                    format!("reading {}: {e}", path.display()),
                ));
            }
        };
        let mut text = String::new();
        file.take(MAX_CONFIG_BYTES + 1)
            .read_to_string(&mut text)
            .map_err(|e| Failure::new(EXIT_ERROR, format!("reading {}: {e}", path.display())))?;
        if text.len() as u64 > MAX_CONFIG_BYTES {
            return Err(Failure::new(
                EXIT_ERROR,
                format!("{}: longer than {MAX_CONFIG_BYTES} bytes", path.display()),
            ));
        }
        toml::from_str(&text)
            .map_err(|e| Failure::new(EXIT_ERROR, format!("{}: {e}", path.display())))
    }

    /// Writes the file with mode 0600 (created so, never widened first), replacing it whole.
    pub(crate) fn save(&self) -> Result<PathBuf, Failure> {
        use std::os::unix::fs::OpenOptionsExt;
        let path = config_path()?;
        let fail = |e: std::io::Error| {
            Failure::new(EXIT_ERROR, format!("writing {}: {e}", path.display()))
        };
        let dir = path.parent().unwrap_or(std::path::Path::new("."));
        std::fs::create_dir_all(dir).map_err(fail)?;
        let mut text = String::from("# Written by `patchwarden login`; holds a secret.\n");
        let mut line = |k: &str, v: &str| text.push_str(&format!("{k} = {}\n", toml_string(v)));
        if let Some(s) = &self.server {
            line("server", s);
        }
        if let Some(f) = &self.ca_fingerprint {
            line("ca_fingerprint", f);
        }
        if let Some(t) = &self.token {
            line("token", t);
        }
        if let Some(id) = &self.token_id {
            line("token_id", &id.to_string());
        }
        if self.insecure_plain_http {
            text.push_str("insecure_plain_http = true\n");
        }
        let tmp = dir.join(".cli.toml.tmp");
        let _ = std::fs::remove_file(&tmp);
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(fail)?;
        file.write_all(text.as_bytes()).map_err(fail)?;
        file.sync_all().map_err(fail)?;
        std::fs::rename(&tmp, &path).map_err(fail)?;
        Ok(path)
    }
}

/// A TOML basic string: quotes, backslashes and control characters escaped.
fn toml_string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A non-empty environment variable.
fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// How to reach the server: flags, then the environment, then the config file.
#[derive(Debug, Clone, Args)]
pub(crate) struct Connection {
    /// The server's URL, `https://host:8443` (default: $PATCHWARDEN_SERVER, else the config
    /// file's).
    #[arg(long, global = true, value_name = "URL")]
    pub(crate) server: Option<String>,
    /// An API token (`pwt_…`; default: $PATCHWARDEN_TOKEN, else the config file's).
    #[arg(long, global = true)]
    pub(crate) token: Option<String>,
    /// The server CA's SHA-256 fingerprint, as `patchwarden serve` printed it.
    #[arg(long, global = true, value_name = "SHA256")]
    pub(crate) ca_fingerprint: Option<String>,
    /// Talk plain HTTP (a server behind a TLS-terminating proxy on a trusted network).
    #[arg(long, global = true, conflicts_with = "ca_fingerprint")]
    pub(crate) insecure_plain_http: bool,
}

impl Connection {
    /// A client for the server, with flags over the config file.
    pub(crate) fn client(&self, config: &CliConfig) -> Result<Client, Failure> {
        let server = self
            .server
            .clone()
            .or_else(|| env("PATCHWARDEN_SERVER"))
            .or_else(|| config.server.clone())
            .ok_or_else(|| {
                Failure::new(
                    EXIT_AUTH,
                    "no server: give --server, or log in first (`patchwarden login`)",
                )
            })?;
        // A flag about trust replaces the file's whole answer, so the two never mix.
        let (fingerprint, plain) = if self.ca_fingerprint.is_some() || self.insecure_plain_http {
            (self.ca_fingerprint.clone(), self.insecure_plain_http)
        } else {
            (config.ca_fingerprint.clone(), config.insecure_plain_http)
        };
        let trust = match (fingerprint, plain) {
            (_, true) => Trust::PlainHttp,
            (Some(f), false) => Trust::Pinned(
                Fingerprint::parse(&f)
                    .map_err(|e| Failure::new(EXIT_ERROR, format!("--ca-fingerprint {f}: {e}")))?,
            ),
            (None, false) => {
                return Err(Failure::new(
                    EXIT_ERROR,
                    "no CA fingerprint to pin: give --ca-fingerprint (or --insecure-plain-http)",
                ));
            }
        };
        Ok(Client::new(&server, &trust)?)
    }

    /// An operator client with the token of the flags, the environment or the config file.
    pub(crate) fn operator(&self) -> Result<OperatorClient, Failure> {
        let config = CliConfig::load()?;
        let client = self.client(&config)?;
        let token = self
            .token
            .clone()
            .or_else(|| env("PATCHWARDEN_TOKEN"))
            .or(config.token)
            .ok_or_else(|| {
                Failure::new(
                    EXIT_AUTH,
                    "not logged in: run `patchwarden login`, or give --token / PATCHWARDEN_TOKEN",
                )
            })?;
        Ok(client.operator(&token))
    }
}

#[derive(Debug, Args)]
pub(crate) struct LoginArgs {
    #[command(flatten)]
    conn: Connection,
    /// The user name (asked for when left out).
    #[arg(long)]
    user: Option<String>,
    /// Read the password from the first line of stdin (for scripts); when the server asks
    /// for a new password, the second line is it.
    #[arg(long)]
    password_stdin: bool,
    /// The API token's name.
    #[arg(long, default_value = "patchwarden cli")]
    token_name: String,
    /// Days until the API token expires (the server's default when left out).
    #[arg(long)]
    expires_in_days: Option<u32>,
}

#[derive(Debug, Args)]
pub(crate) struct LogoutArgs {
    #[command(flatten)]
    conn: Connection,
}

/// One line from stdin, without its line end, at most [`MAX_PASSWORD_LINE`] bytes.
pub(crate) fn stdin_line(what: &str) -> Result<String, Failure> {
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .take(MAX_PASSWORD_LINE as u64 + 1)
        .read_line(&mut line)
        .map_err(|e| Failure::new(EXIT_ERROR, format!("reading the {what}: {e}")))?;
    if line.len() > MAX_PASSWORD_LINE {
        return Err(Failure::new(EXIT_ERROR, format!("the {what} is too long")));
    }
    let line = line.trim_end_matches(['\r', '\n']).to_owned();
    if line.is_empty() {
        return Err(Failure::new(EXIT_ERROR, format!("no {what} on stdin")));
    }
    Ok(line)
}

use std::io::Read as _;

/// Asks on the terminal; with `secret`, echo is turned off (`stty`) while it is typed.
pub(crate) fn prompt(question: &str, secret: bool) -> Result<String, Failure> {
    if !std::io::stdin().is_terminal() {
        return Err(Failure::new(
            EXIT_ERROR,
            format!("{question}: stdin is not a terminal (use --user and --password-stdin)"),
        ));
    }
    eprint!("{question}: ");
    let _ = std::io::stderr().flush();
    let stty = |arg: &str| {
        let _ = std::process::Command::new("stty")
            .arg(arg)
            .stdin(std::process::Stdio::inherit())
            .status();
    };
    if secret {
        stty("-echo");
    }
    let answer = stdin_line(question);
    if secret {
        stty("echo");
        eprintln!();
    }
    answer
}

pub(crate) fn login(args: LoginArgs) -> ExitCode {
    match run_login(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => f.report(),
    }
}

fn run_login(args: LoginArgs) -> Result<(), Failure> {
    let mut config = CliConfig::load()?;
    let client = args.conn.client(&config)?;
    let user = match args.user {
        Some(u) => u,
        None => prompt("user", false)?,
    };
    let password = if args.password_stdin {
        stdin_line("password")?
    } else {
        prompt("password", true)?
    };
    let runtime = tokio::runtime::Runtime::new()
        .map_err(|e| Failure::new(EXIT_ERROR, format!("starting the async runtime: {e}")))?;
    let created = runtime.block_on(async {
        let (mut session, mut view) = client.login(&user, &password).await?;
        if view.user.must_change_password {
            // A one-time password: the server allows nothing but choosing a new one.
            let new = if args.password_stdin {
                stdin_line("new password")?
            } else {
                let a = prompt("new password (the current one is for one use)", true)?;
                let b = prompt("new password again", true)?;
                if a != b {
                    return Err(Failure::new(EXIT_ERROR, "the two new passwords differ"));
                }
                a
            };
            session.change_password(&password, &new).await?;
            // Changing the password ends every session of the user: log in anew.
            (session, view) = client.login(&user, &new).await?;
        }
        let created = session
            .create_api_token(&NewApiTokenRequest {
                name: args.token_name.clone(),
                roles: None,
                expires_in_days: args.expires_in_days,
            })
            .await;
        // The session was only the way to the token: end it either way.
        let _ = session.logout().await;
        Ok::<_, Failure>((created?, view))
    })?;
    let (created, view) = created;
    if args.conn.server.is_some() {
        config.server = args.conn.server.clone();
    }
    if args.conn.ca_fingerprint.is_some() || args.conn.insecure_plain_http {
        config.ca_fingerprint = args.conn.ca_fingerprint.clone();
        config.insecure_plain_http = args.conn.insecure_plain_http;
    }
    config.token = Some(created.secret);
    config.token_id = Some(created.token.id);
    let path = config.save()?;
    eprintln!(
        "logged in as {} (roles {}); API token {} expires {}; saved in {}",
        view.user.username,
        created
            .token
            .roles
            .iter()
            .map(crate::output::name)
            .collect::<Vec<_>>()
            .join(","),
        created.token.id,
        created.token.expires_at,
        path.display()
    );
    Ok(())
}

pub(crate) fn logout(args: LogoutArgs) -> ExitCode {
    match run_logout(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => f.report(),
    }
}

fn run_logout(args: LogoutArgs) -> Result<(), Failure> {
    let mut config = CliConfig::load()?;
    let (Some(token), Some(id)) = (config.token.clone(), config.token_id) else {
        return Err(Failure::new(
            EXIT_AUTH,
            "not logged in: no token in the config file",
        ));
    };
    let client = args.conn.client(&config)?;
    let runtime = tokio::runtime::Runtime::new()
        .map_err(|e| Failure::new(EXIT_ERROR, format!("starting the async runtime: {e}")))?;
    let revoked = runtime.block_on(client.operator(&token).revoke_api_token(id));
    match revoked {
        Ok(_) => {}
        // Already revoked or expired: the server no longer takes it, which is the goal.
        Err(e) if e.status() == Some(401) => {}
        Err(e) => return Err(e.into()),
    }
    config.token = None;
    config.token_id = None;
    let path = config.save()?;
    eprintln!(
        "logged out: token {id} revoked and removed from {}",
        path.display()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_written_to_the_config_file_read_back_as_they_were() {
        for s in ["pwt_abc", "a\"b\\c", "line\nbreak\ttab", "ünï"] {
            let text = format!("token = {}\n", toml_string(s));
            let back: CliConfig = toml::from_str(&text).unwrap();
            assert_eq!(back.token.as_deref(), Some(s));
        }
    }

    #[test]
    fn an_unknown_key_in_the_config_file_is_refused() {
        assert!(toml::from_str::<CliConfig>("tokn = \"x\"\n").is_err());
    }
}
