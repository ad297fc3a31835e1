//! The `[feeds]` section of the server's configuration: the sources to fetch, how often, how
//! often each is expected to change, and the limits every fetch obeys.
//!
//! Sources named here are written to the store at every start (`origin = config`), so the
//! store holds one list whether a source came from the file, an operator or an import; a
//! source removed from the file stays in the store with its history, unscheduled.

use std::path::PathBuf;

use patchwarden_store::feed::{FeedSourceSpec, SourceKind, SourceOrigin};
use serde::{Deserialize, Serialize};

/// Fetching and triage settings, and the configured sources.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FeedsConfig {
    /// How often the scheduler looks for sources that are due, in seconds.
    pub tick_secs: u32,
    /// How long a connection may take to open, in seconds.
    pub connect_timeout_secs: u32,
    /// How long one download may take in all, in seconds.
    pub fetch_timeout_secs: u32,
    /// The largest download (or local file) read, in bytes.
    pub max_download_bytes: u64,
    /// The largest file an operator uploads through `POST /api/v1/feeds/import`, in bytes.
    /// Smaller than a download by default: an upload is written to the work directory as it
    /// arrives, and a bound here keeps one operator's mistake from filling the disk.
    pub max_import_bytes: u64,
    /// The CA certificates (PEM) that HTTPS feeds are checked against; empty: the system's
    /// bundle (`/etc/ssl/certs/ca-certificates.crt` and the other usual places).
    pub ca_file: PathBuf,
    /// A new advisory enters the triage queue when it first matches a host and was published
    /// within this many days; older ones (a first import of years of advisories) do not.
    pub triage_new_within_days: u32,
    pub sources: Vec<SourceConfig>,
}

impl Default for FeedsConfig {
    fn default() -> FeedsConfig {
        FeedsConfig {
            tick_secs: 60,
            connect_timeout_secs: 30,
            fetch_timeout_secs: 1800,
            max_download_bytes: 2 << 30,
            max_import_bytes: 256 << 20,
            ca_file: PathBuf::new(),
            triage_new_within_days: 30,
            sources: Vec::new(),
        }
    }
}

/// One source, as written in the file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceConfig {
    pub name: String,
    /// osv, csaf, alpine, debian, kev, epss or manual.
    pub kind: String,
    /// An `https://` (or `http://`) URL or an absolute path; none for a manual source.
    #[serde(default)]
    pub location: String,
    /// How often it is fetched (`6h`, `1d`, `30m`); none: only when an operator asks.
    #[serde(default)]
    pub every: Option<String>,
    /// How often it is expected to change (`8d`); longer without an update and it is stale.
    #[serde(default)]
    pub expected_period: Option<String>,
}

/// Why the `[feeds]` section cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("feeds: {0}")]
pub struct FeedsConfigError(pub String);

impl FeedsConfig {
    /// The sources as the store keeps them, checked.
    pub fn specs(&self) -> Result<Vec<FeedSourceSpec>, FeedsConfigError> {
        let mut seen = std::collections::HashSet::new();
        self.sources
            .iter()
            .map(|s| {
                let err = |why: String| FeedsConfigError(format!("source {:?}: {why}", s.name));
                if !seen.insert(s.name.as_str()) {
                    return Err(err("defined twice".into()));
                }
                let kind = SourceKind::parse(&s.kind).ok_or_else(|| {
                    err(format!(
                        "kind {:?} is not one of osv, csaf, alpine, debian, kev, epss, manual",
                        s.kind
                    ))
                })?;
                let secs = |v: &Option<String>, what: &str| {
                    v.as_deref()
                        .map(|t| parse_period(t).map_err(|e| err(format!("{what}: {e}"))))
                        .transpose()
                };
                let spec = FeedSourceSpec {
                    name: s.name.clone(),
                    kind,
                    location: s.location.clone(),
                    interval_secs: secs(&s.every, "every")?,
                    expected_period_secs: secs(&s.expected_period, "expected_period")?,
                    origin: SourceOrigin::Config,
                };
                spec.check().map_err(|e| err(e.to_string()))?;
                Ok(spec)
            })
            .collect()
    }

    pub fn check(&self) -> Result<(), FeedsConfigError> {
        if self.tick_secs == 0 || self.connect_timeout_secs == 0 || self.fetch_timeout_secs == 0 {
            return Err(FeedsConfigError(
                "tick_secs, connect_timeout_secs and fetch_timeout_secs must be at least 1".into(),
            ));
        }
        if self.max_download_bytes == 0 || self.max_import_bytes == 0 {
            return Err(FeedsConfigError(
                "max_download_bytes and max_import_bytes must be at least 1".into(),
            ));
        }
        self.specs().map(|_| ())
    }
}

/// A period written as numbers with units: `90s`, `30m`, `6h`, `8d`, `2w`, `1d12h`. Days are 24
/// hours and weeks 7 days: these are intervals between fetches and reminders, not calendar
/// dates.
pub fn parse_period(text: &str) -> Result<u64, String> {
    let mut total: u64 = 0;
    let mut number = String::new();
    let mut any = false;
    for c in text.trim().chars() {
        if c.is_ascii_digit() {
            number.push(c);
            continue;
        }
        let unit: u64 = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            'w' => 7 * 86_400,
            ' ' if number.is_empty() => continue,
            _ => return Err(format!("{text:?}: {c:?} is not a unit (s, m, h, d, w)")),
        };
        let n: u64 = number
            .parse()
            .map_err(|_| format!("{text:?}: a unit without a number"))?;
        number.clear();
        total = n
            .checked_mul(unit)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(|| format!("{text:?} is too long"))?;
        any = true;
    }
    if !number.is_empty() || !any {
        return Err(format!(
            "{text:?}: write a number and a unit, such as 6h or 8d"
        ));
    }
    if total == 0 {
        return Err(format!("{text:?} is zero"));
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_are_numbers_with_units() {
        assert_eq!(parse_period("6h"), Ok(6 * 3600));
        assert_eq!(parse_period("1d12h"), Ok(36 * 3600));
        assert_eq!(parse_period("2w"), Ok(14 * 86_400));
        assert_eq!(parse_period(" 90s "), Ok(90));
        for bad in ["", "6", "h", "6x", "0h", "99999999999999999999w", "-1h"] {
            assert!(parse_period(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn sources_are_checked_when_read() {
        let mut c = FeedsConfig::default();
        c.sources.push(SourceConfig {
            name: "cisa-kev".into(),
            kind: "kev".into(),
            location: "https://www.cisa.gov/kev.json".into(),
            every: Some("6h".into()),
            expected_period: Some("8d".into()),
        });
        let specs = c.specs().unwrap();
        assert_eq!(specs[0].interval_secs, Some(6 * 3600));
        assert_eq!(specs[0].expected_period_secs, Some(8 * 86_400));
        c.sources.push(c.sources[0].clone());
        assert!(c.check().unwrap_err().to_string().contains("twice"));
        c.sources.pop();
        c.sources[0].kind = "rss".into();
        assert!(c.check().unwrap_err().to_string().contains("not one of"));
        c.sources[0].kind = "manual".into();
        assert!(c.check().unwrap_err().to_string().contains("location"));
    }
}
