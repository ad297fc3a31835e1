//! The database URL that chooses a backend: `sqlite:///absolute/path.db`,
//! `sqlite://relative/path.db` (relative to the working directory; the server resolves it
//! against its data directory first), or `postgres://…` / `postgresql://…` (handed to the
//! PostgreSQL driver as it is).
//!
//! Parsing lives here, beside the trait, so the server and the tests read URLs the same way;
//! opening lives in each backend crate, and the dispatch from a URL to a backend in the crate
//! that depends on both (the server).

use std::path::PathBuf;

use crate::error::{Result, StoreError};

/// A parsed database URL.
#[derive(Clone, PartialEq, Eq)]
pub enum DatabaseUrl {
    Sqlite(PathBuf),
    Postgres(String),
}

impl std::fmt::Debug for DatabaseUrl {
    /// Never the PostgreSQL URL itself: it may carry a password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DatabaseUrl::Sqlite(p) => write!(f, "Sqlite({})", p.display()),
            DatabaseUrl::Postgres(_) => f.write_str("Postgres(…)"),
        }
    }
}

impl DatabaseUrl {
    pub fn parse(url: &str) -> Result<DatabaseUrl> {
        let bad = |reason: &str| StoreError::Url {
            url: redact(url),
            reason: reason.into(),
        };
        if let Some(path) = url.strip_prefix("sqlite://") {
            if path.is_empty() || path == "/" {
                return Err(bad("no file path after sqlite://"));
            }
            if path.contains('?') || path.contains('#') {
                return Err(bad("SQLite URLs take no query or fragment"));
            }
            return Ok(DatabaseUrl::Sqlite(PathBuf::from(path)));
        }
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(DatabaseUrl::Postgres(url.to_owned()));
        }
        Err(bad(
            "expected sqlite:///absolute/path.db, sqlite://relative.db or postgres://…",
        ))
    }
}

/// `url` with any password replaced, for error messages.
pub fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{scheme}://{user}:***@{host}{tail}"),
            None => url.to_owned(),
        },
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_choose_the_backend_and_bad_ones_say_why() {
        assert_eq!(
            DatabaseUrl::parse("sqlite:///var/lib/pw/db.sqlite").unwrap(),
            DatabaseUrl::Sqlite("/var/lib/pw/db.sqlite".into())
        );
        assert_eq!(
            DatabaseUrl::parse("sqlite://pw.db").unwrap(),
            DatabaseUrl::Sqlite("pw.db".into())
        );
        assert!(matches!(
            DatabaseUrl::parse("postgres://u@h/db").unwrap(),
            DatabaseUrl::Postgres(_)
        ));
        for bad in ["sqlite://", "mysql://x", "", "sqlite://a.db?mode=ro"] {
            assert!(
                matches!(DatabaseUrl::parse(bad), Err(StoreError::Url { .. })),
                "{bad}"
            );
        }
        let e = DatabaseUrl::parse("mysql://u:secret@h/db").unwrap_err();
        assert!(!e.to_string().contains("secret"), "{e}");
    }
}
