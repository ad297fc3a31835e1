//! The server's configuration: one documented struct, read from the defaults, then a TOML file,
//! then `PATCHWARDEN_*` environment variables, in that order.
//!
//! The file is read with `deny_unknown_fields`, so a misspelt key is an error rather than a
//! setting silently left at its default. The documented example (`config.example.toml`,
//! printed by `patchwarden config example`) shows every key with its default, and a test
//! parses it, so the example cannot drift from the struct. The database URL may carry a
//! password: `Debug` hides it.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The documented example configuration, every key at its default.
pub const EXAMPLE: &str = include_str!("../config.example.toml");

/// The largest configuration file read.
const MAX_CONFIG_BYTES: u64 = 1024 * 1024;

/// Everything `patchwarden serve` can be told.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub data_dir: PathBuf,
    pub database_url: String,
    /// The server's base URL as hosts reach it (`https://…`), for the install commands.
    pub public_url: String,
    pub listen: Listen,
    pub tls: Tls,
    pub agents: Agents,
    pub enrollment: Enrollment,
    pub limits: Limits,
    pub advisories: Advisories,
    pub policy: PolicyConfig,
    pub downloads: Downloads,
    pub feeds: crate::feeds::config::FeedsConfig,
    pub operators: Operators,
    pub changes: crate::changes::standard::ChangesConfig,
    pub notifications: crate::notify::NotificationsConfig,
    /// The public status page, its report form and the calendar feed (docs/status-page.md).
    pub status: crate::status::StatusConfig,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("data_dir", &self.data_dir)
            .field(
                "database_url",
                &patchwarden_store::redact(&self.database_url),
            )
            .field("public_url", &self.public_url)
            .field("listen", &self.listen)
            .field("tls", &self.tls)
            .field("agents", &self.agents)
            .field("enrollment", &self.enrollment)
            .field("limits", &self.limits)
            .field("advisories", &self.advisories)
            .field("policy", &self.policy)
            .field("downloads", &self.downloads)
            .field("feeds", &self.feeds)
            .field("operators", &self.operators)
            .field("changes", &self.changes)
            .field("notifications", &self.notifications)
            .field("status", &self.status)
            .finish()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Listen {
    pub api: String,
    pub metrics: String,
}

/// How the API listener speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TlsMode {
    Generate,
    Files,
    PlainHttp,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Tls {
    pub mode: TlsMode,
    pub cert: PathBuf,
    pub key: PathBuf,
    pub names: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Agents {
    pub checkin_interval_secs: u32,
    pub checkin_jitter_secs: u32,
    pub job_lease_secs: u32,
    pub max_jobs_per_checkin: u32,
    pub max_in_flight: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Enrollment {
    pub token_ttl_hours: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    pub max_body_bytes: u64,
    pub max_inventory_bytes: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Advisories {
    pub files: Vec<String>,
}

/// The agent packages the server hands out to new hosts (`/downloads/{file}`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Downloads {
    /// The directory whose regular files are served; empty: none.
    pub dir: PathBuf,
}

/// Operators' sessions, logins and API tokens.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Operators {
    /// How long a browser session lasts after its login.
    pub session_ttl_secs: u32,
    /// Consecutive failed logins that lock a user, and for how long.
    pub max_failed_logins: u32,
    pub lockout_secs: u32,
    /// Failed logins from one address within the window after which that address is refused
    /// until the window ends.
    pub address_max_failures: u32,
    pub address_window_secs: u32,
    /// An API token's lifetime when its creator does not say, and the longest allowed.
    pub api_token_default_days: u32,
    pub api_token_max_days: u32,
    /// The longest term of an exception (risk acceptance), in days.
    pub exception_max_days: u32,
}

impl Default for Operators {
    fn default() -> Operators {
        Operators {
            session_ttl_secs: 8 * 3600,
            max_failed_logins: 5,
            lockout_secs: 15 * 60,
            address_max_failures: 20,
            address_window_secs: 15 * 60,
            api_token_default_days: 90,
            api_token_max_days: 365,
            exception_max_days: 365,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PolicyConfig {
    pub policies: Vec<String>,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            data_dir: PathBuf::from("/var/lib/patchwarden"),
            database_url: String::new(),
            public_url: String::new(),
            listen: Listen::default(),
            tls: Tls::default(),
            agents: Agents::default(),
            enrollment: Enrollment::default(),
            limits: Limits::default(),
            advisories: Advisories::default(),
            policy: PolicyConfig::default(),
            operators: Operators::default(),
            downloads: Downloads::default(),
            feeds: crate::feeds::config::FeedsConfig::default(),
            changes: crate::changes::standard::ChangesConfig::default(),
            notifications: crate::notify::NotificationsConfig::default(),
            status: crate::status::StatusConfig::default(),
        }
    }
}

impl Default for Listen {
    fn default() -> Listen {
        Listen {
            api: "0.0.0.0:8443".into(),
            metrics: "127.0.0.1:9464".into(),
        }
    }
}

impl Default for Tls {
    fn default() -> Tls {
        Tls {
            mode: TlsMode::Generate,
            cert: PathBuf::new(),
            key: PathBuf::new(),
            names: Vec::new(),
        }
    }
}

impl Default for Agents {
    fn default() -> Agents {
        Agents {
            checkin_interval_secs: 300,
            checkin_jitter_secs: 60,
            job_lease_secs: 3600,
            max_jobs_per_checkin: 4,
            max_in_flight: 512,
        }
    }
}

impl Default for Enrollment {
    fn default() -> Enrollment {
        Enrollment {
            token_ttl_hours: 24,
        }
    }
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_body_bytes: 8 * 1024 * 1024,
            max_inventory_bytes: 32 * 1024 * 1024,
        }
    }
}

impl Default for PolicyConfig {
    fn default() -> PolicyConfig {
        PolicyConfig {
            policies: vec!["seed-default".into()],
        }
    }
}

/// Why the configuration could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read the configuration file {path}: {reason}")]
    Read { path: PathBuf, reason: String },
    #[error("configuration file {path}: {reason}")]
    Parse { path: PathBuf, reason: String },
    #[error("environment variable {name}: {reason}")]
    Env { name: String, reason: String },
    #[error("configuration: {0}")]
    Invalid(String),
}

/// The type of a setting an environment variable may override.
#[derive(Debug, Clone, Copy)]
enum Kind {
    Text,
    Number,
    /// Comma-separated.
    List,
}

/// Every setting an environment variable may override: the variable's name after
/// `PATCHWARDEN_`, and where the setting lives.
const ENV_KEYS: &[(&str, &str, &str, Kind)] = &[
    ("DATA_DIR", "", "data_dir", Kind::Text),
    ("DATABASE_URL", "", "database_url", Kind::Text),
    ("PUBLIC_URL", "", "public_url", Kind::Text),
    ("LISTEN_API", "listen", "api", Kind::Text),
    ("LISTEN_METRICS", "listen", "metrics", Kind::Text),
    ("TLS_MODE", "tls", "mode", Kind::Text),
    ("TLS_CERT", "tls", "cert", Kind::Text),
    ("TLS_KEY", "tls", "key", Kind::Text),
    ("TLS_NAMES", "tls", "names", Kind::List),
    (
        "AGENTS_CHECKIN_INTERVAL_SECS",
        "agents",
        "checkin_interval_secs",
        Kind::Number,
    ),
    (
        "AGENTS_CHECKIN_JITTER_SECS",
        "agents",
        "checkin_jitter_secs",
        Kind::Number,
    ),
    (
        "AGENTS_JOB_LEASE_SECS",
        "agents",
        "job_lease_secs",
        Kind::Number,
    ),
    (
        "AGENTS_MAX_JOBS_PER_CHECKIN",
        "agents",
        "max_jobs_per_checkin",
        Kind::Number,
    ),
    (
        "AGENTS_MAX_IN_FLIGHT",
        "agents",
        "max_in_flight",
        Kind::Number,
    ),
    (
        "ENROLLMENT_TOKEN_TTL_HOURS",
        "enrollment",
        "token_ttl_hours",
        Kind::Number,
    ),
    (
        "LIMITS_MAX_BODY_BYTES",
        "limits",
        "max_body_bytes",
        Kind::Number,
    ),
    (
        "LIMITS_MAX_INVENTORY_BYTES",
        "limits",
        "max_inventory_bytes",
        Kind::Number,
    ),
    ("ADVISORIES_FILES", "advisories", "files", Kind::List),
    ("POLICY_POLICIES", "policy", "policies", Kind::List),
    (
        "CHANGES_ANNOUNCE_DAYS",
        "changes",
        "announce_days",
        Kind::Number,
    ),
    (
        "CHANGES_STANDARD_EVERY_SECS",
        "changes",
        "standard_every_secs",
        Kind::Number,
    ),
    ("DOWNLOADS_DIR", "downloads", "dir", Kind::Text),
    // The relay's credentials, so they can live in the service's environment file rather than
    // the configuration file.
    (
        "NOTIFICATIONS_SMTP_USERNAME",
        "notifications.smtp",
        "username",
        Kind::Text,
    ),
    (
        "NOTIFICATIONS_SMTP_PASSWORD",
        "notifications.smtp",
        "password",
        Kind::Text,
    ),
    (
        "OPERATORS_SESSION_TTL_SECS",
        "operators",
        "session_ttl_secs",
        Kind::Number,
    ),
    (
        "OPERATORS_MAX_FAILED_LOGINS",
        "operators",
        "max_failed_logins",
        Kind::Number,
    ),
    (
        "OPERATORS_LOCKOUT_SECS",
        "operators",
        "lockout_secs",
        Kind::Number,
    ),
    (
        "OPERATORS_ADDRESS_MAX_FAILURES",
        "operators",
        "address_max_failures",
        Kind::Number,
    ),
    (
        "OPERATORS_ADDRESS_WINDOW_SECS",
        "operators",
        "address_window_secs",
        Kind::Number,
    ),
    (
        "OPERATORS_API_TOKEN_DEFAULT_DAYS",
        "operators",
        "api_token_default_days",
        Kind::Number,
    ),
    (
        "OPERATORS_API_TOKEN_MAX_DAYS",
        "operators",
        "api_token_max_days",
        Kind::Number,
    ),
];

/// `PATCHWARDEN_*` variables that are not server settings (the CLI's, the tests'), which the
/// loader leaves alone rather than calling unknown.
const OTHER_ENV: &[&str] = &[
    "CONFIG",
    "LOG",
    "SHARED_DATA",
    "REQUIRE_TOOLS",
    "TEST_POSTGRES",
];

impl Config {
    /// Reads the configuration: defaults, then `file` when given, then the `PATCHWARDEN_*`
    /// variables among `env` (a parameter, so tests need not touch the process environment).
    /// Returns the configuration and warnings about variables that name no setting.
    pub fn load(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<(Config, Vec<String>), ConfigError> {
        let mut table = match file {
            Some(path) => {
                let text = read_limited(path)?;
                text.parse::<toml::Table>()
                    .map_err(|e| ConfigError::Parse {
                        path: path.to_owned(),
                        reason: e.to_string(),
                    })?
            }
            None => toml::Table::new(),
        };
        let mut warnings = Vec::new();
        for (name, value) in env {
            let Some(rest) = name.strip_prefix("PATCHWARDEN_") else {
                continue;
            };
            let Some(&(_, section, key, kind)) = ENV_KEYS.iter().find(|k| k.0 == rest) else {
                if !OTHER_ENV.contains(&rest) {
                    warnings.push(format!("{name} is not a setting of patchwarden serve"));
                }
                continue;
            };
            let parsed = match kind {
                Kind::Text => toml::Value::String(value),
                Kind::Number => {
                    toml::Value::Integer(value.trim().parse().map_err(|_| ConfigError::Env {
                        name: name.clone(),
                        reason: format!("{value:?} is not a whole number"),
                    })?)
                }
                Kind::List => toml::Value::Array(
                    value
                        .split(',')
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                        .map(|s| toml::Value::String(s.to_owned()))
                        .collect(),
                ),
            };
            // A section may be nested (`notifications.smtp`): each part is a table.
            let mut target = &mut table;
            for part in section.split('.').filter(|p| !p.is_empty()) {
                let entry = target
                    .entry(part.to_owned())
                    .or_insert_with(|| toml::Value::Table(toml::Table::new()));
                target = match entry {
                    toml::Value::Table(t) => t,
                    _ => {
                        return Err(ConfigError::Env {
                            name,
                            reason: format!("[{section}] in the file is not a table"),
                        });
                    }
                };
            }
            target.insert(key.to_owned(), parsed);
        }
        let config: Config =
            toml::Value::Table(table)
                .try_into()
                .map_err(|e: toml::de::Error| ConfigError::Parse {
                    path: file.map_or_else(|| PathBuf::from("(environment)"), Path::to_owned),
                    reason: e.to_string(),
                })?;
        config.check()?;
        Ok((config, warnings))
    }

    fn check(&self) -> Result<(), ConfigError> {
        let bad = |s: String| Err(ConfigError::Invalid(s));
        if self.listen.api.parse::<SocketAddr>().is_err() {
            return bad(format!(
                "listen.api = {:?} is not an address:port",
                self.listen.api
            ));
        }
        if !self.listen.metrics.is_empty() && self.listen.metrics.parse::<SocketAddr>().is_err() {
            return bad(format!(
                "listen.metrics = {:?} is not an address:port",
                self.listen.metrics
            ));
        }
        if self.tls.mode == TlsMode::Files
            && (self.tls.cert.as_os_str().is_empty() || self.tls.key.as_os_str().is_empty())
        {
            return bad("tls.mode = \"files\" needs tls.cert and tls.key".into());
        }
        if self.agents.checkin_interval_secs == 0 {
            return bad("agents.checkin_interval_secs must be at least 1".into());
        }
        if self.agents.job_lease_secs == 0 || self.agents.max_in_flight == 0 {
            return bad("agents.job_lease_secs and agents.max_in_flight must be at least 1".into());
        }
        if !self.public_url.is_empty() {
            // Hosts download their package from it before they trust anything: only the
            // checksum protects them, and TLS keeps the download private.
            let host = self.public_url.strip_prefix("https://");
            if host.is_none_or(|h| h.is_empty() || h.contains(char::is_whitespace)) {
                return bad(format!(
                    "public_url = {:?} is not an https:// URL",
                    self.public_url
                ));
            }
        }
        if self.enrollment.token_ttl_hours == 0 {
            return bad("enrollment.token_ttl_hours must be at least 1".into());
        }
        if self.limits.max_body_bytes == 0 || self.limits.max_inventory_bytes == 0 {
            return bad("limits must be at least 1 byte".into());
        }
        self.feeds
            .check()
            .map_err(|e| ConfigError::Invalid(e.to_string()))?;
        self.changes.rules().map_err(ConfigError::Invalid)?;
        self.notifications
            .check()
            .map_err(|e| ConfigError::Invalid(e.to_string()))?;
        let o = &self.operators;
        if [
            o.session_ttl_secs,
            o.max_failed_logins,
            o.lockout_secs,
            o.address_max_failures,
            o.address_window_secs,
            o.api_token_default_days,
        ]
        .contains(&0)
        {
            return bad("every [operators] setting must be at least 1".into());
        }
        if o.api_token_default_days > o.api_token_max_days {
            return bad(
                "operators.api_token_default_days is above operators.api_token_max_days".into(),
            );
        }
        Ok(())
    }

    /// The server's base URL as hosts reach it, without a trailing slash; `None` when not
    /// configured.
    pub fn public_url(&self) -> Option<&str> {
        let url = self.public_url.trim_end_matches('/');
        (!url.is_empty()).then_some(url)
    }

    /// The downloads directory: `None` when not configured; relative to the data directory
    /// when relative.
    pub fn downloads_dir(&self) -> Option<PathBuf> {
        let dir = &self.downloads.dir;
        (!dir.as_os_str().is_empty()).then(|| self.data_dir.join(dir))
    }

    /// The database URL to open: the configured one, or SQLite in the data directory. A
    /// relative SQLite path is taken relative to the data directory.
    pub fn database_url(&self) -> String {
        if self.database_url.is_empty() {
            return format!(
                "sqlite://{}",
                self.data_dir.join("patchwarden.db").display()
            );
        }
        if let Some(path) = self.database_url.strip_prefix("sqlite://")
            && !path.starts_with('/')
            && !path.is_empty()
        {
            return format!("sqlite://{}", self.data_dir.join(path).display());
        }
        self.database_url.clone()
    }
}

fn read_limited(path: &Path) -> Result<String, ConfigError> {
    use std::io::Read;
    let read_err = |reason: String| ConfigError::Read {
        path: path.to_owned(),
        reason,
    };
    let file = std::fs::File::open(path).map_err(|e| read_err(e.to_string()))?;
    let mut text = String::new();
    file.take(MAX_CONFIG_BYTES + 1)
        .read_to_string(&mut text)
        .map_err(|e| read_err(e.to_string()))?;
    if text.len() as u64 > MAX_CONFIG_BYTES {
        return Err(read_err(format!("longer than {MAX_CONFIG_BYTES} bytes")));
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn the_documented_example_parses_to_the_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(&path, EXAMPLE).unwrap();
        let (config, warnings) = Config::load(Some(&path), Vec::new()).unwrap();
        assert_eq!(config, Config::default());
        assert!(warnings.is_empty());
    }

    #[test]
    fn file_then_environment_override_the_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(
            &path,
            "data_dir = \"/srv/pw\"\n[agents]\ncheckin_interval_secs = 60\n",
        )
        .unwrap();
        let (config, warnings) = Config::load(
            Some(&path),
            env(&[
                ("PATCHWARDEN_AGENTS_CHECKIN_INTERVAL_SECS", "30"),
                ("PATCHWARDEN_TLS_NAMES", "pw.example, 10.0.0.1"),
                ("PATCHWARDEN_TLS_MODE", "plain-http"),
                ("PATCHWARDEN_NOT_A_SETTING", "x"),
                ("PATCHWARDEN_SHARED_DATA", "/x"),
                ("HOME", "/root"),
            ]),
        )
        .unwrap();
        assert_eq!(config.data_dir, PathBuf::from("/srv/pw"));
        assert_eq!(config.agents.checkin_interval_secs, 30);
        assert_eq!(config.tls.names, vec!["pw.example", "10.0.0.1"]);
        assert_eq!(config.tls.mode, TlsMode::PlainHttp);
        assert_eq!(
            warnings,
            vec!["PATCHWARDEN_NOT_A_SETTING is not a setting of patchwarden serve"]
        );
        assert_eq!(config.database_url(), "sqlite:///srv/pw/patchwarden.db");
    }

    #[test]
    fn unknown_keys_and_bad_values_are_errors_that_say_where() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(&path, "[agents]\ncheckin_intervall_secs = 60\n").unwrap();
        let e = Config::load(Some(&path), Vec::new())
            .unwrap_err()
            .to_string();
        assert!(e.contains("checkin_intervall_secs"), "{e}");
        let e = Config::load(None, env(&[("PATCHWARDEN_LIMITS_MAX_BODY_BYTES", "lots")]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("PATCHWARDEN_LIMITS_MAX_BODY_BYTES"), "{e}");
        let e = Config::load(None, env(&[("PATCHWARDEN_LISTEN_API", "nowhere")]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("listen.api"), "{e}");
        std::fs::write(&path, "[tls\n").unwrap();
        assert!(matches!(
            Config::load(Some(&path), Vec::new()),
            Err(ConfigError::Parse { .. })
        ));
    }

    #[test]
    fn the_public_url_and_the_downloads_directory() {
        let (config, _) = Config::load(
            None,
            env(&[
                ("PATCHWARDEN_PUBLIC_URL", "https://pw.example.org:8443/"),
                ("PATCHWARDEN_DOWNLOADS_DIR", "downloads"),
                ("PATCHWARDEN_DATA_DIR", "/srv/pw"),
            ]),
        )
        .unwrap();
        assert_eq!(config.public_url(), Some("https://pw.example.org:8443"));
        assert_eq!(
            config.downloads_dir(),
            Some(PathBuf::from("/srv/pw/downloads"))
        );
        assert_eq!(Config::default().public_url(), None);
        assert_eq!(Config::default().downloads_dir(), None);
        // Hosts download their package from it: plain HTTP, or no host, is refused.
        for bad in [
            "http://pw.example.org",
            "https://",
            "pw.example.org",
            "https://a b",
        ] {
            let e = Config::load(None, env(&[("PATCHWARDEN_PUBLIC_URL", bad)]))
                .unwrap_err()
                .to_string();
            assert!(e.contains("public_url"), "{bad}: {e}");
        }
    }

    #[test]
    fn the_database_password_never_shows_in_debug() {
        let config = Config {
            database_url: "postgres://pw:hunter2@db/pw".into(),
            ..Config::default()
        };
        let shown = format!("{config:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
    }
}
