//! Helpers shared by the feed tests: where the real data is, and a compact text form of
//! advisories for snapshots.

#![allow(dead_code)] // Each test file uses its own subset.

use std::fmt::Write;
use std::path::{Path, PathBuf};

use patchwarden_core::advisory::{Advisory, Event};
use patchwarden_feeds::Import;

/// `shared/data`: `$PATCHWARDEN_SHARED_DATA`, or `../shared/data` beside the checkout.
pub(crate) fn shared_data() -> PathBuf {
    let dir = std::env::var_os("PATCHWARDEN_SHARED_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data"));
    assert!(
        dir.join("osv").is_dir(),
        "the shared test data is not at {} (clone the project beside `shared/`, or set \
         PATCHWARDEN_SHARED_DATA)",
        dir.display()
    );
    dir
}

/// A location with the shared-data prefix cut, so snapshots do not depend on the checkout.
pub(crate) fn rel(location: &str) -> String {
    let base = shared_data().display().to_string();
    location
        .strip_prefix(&base)
        .map(|s| s.trim_start_matches('/').to_owned())
        .unwrap_or_else(|| location.to_owned())
}

/// The rejects as sorted `location (id): reason` lines, locations relative.
pub(crate) fn reject_lines<T>(import: &Import<T>) -> String {
    let mut lines: Vec<String> = import
        .rejects
        .iter()
        .map(|r| {
            let mut r2 = r.to_string();
            if let Some(rest) = r2.strip_prefix(&r.location) {
                r2 = format!("{}{rest}", rel(&r.location));
            }
            r2
        })
        .collect();
    lines.sort();
    lines.iter().map(|l| format!("{l}\n")).collect()
}

/// One advisory as readable lines: header, severities, then one line per affected entry and
/// not-affected statement (at most `max` of each).
pub(crate) fn describe(a: &Advisory, max: usize) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "id {} ({:?} {})",
        a.id,
        a.source.feed,
        rel(&a.source.location)
    );
    if !a.aliases.is_empty() {
        let _ = writeln!(s, "aliases {:?}", a.aliases);
    }
    if !a.upstream.is_empty() {
        let _ = writeln!(s, "upstream {:?}", a.upstream);
    }
    if !a.related.is_empty() {
        let _ = writeln!(s, "related {:?}", a.related);
    }
    let _ = writeln!(
        s,
        "published {:?} modified {:?} withdrawn {:?}",
        a.published.map(|t| t.to_string()),
        a.modified.map(|t| t.to_string()),
        a.withdrawn.map(|t| t.to_string())
    );
    if let Some(summary) = &a.summary {
        let _ = writeln!(s, "summary {summary:?}");
    }
    for sev in &a.severity {
        let _ = writeln!(
            s,
            "severity {:?} {} score {:?} level {:?}{}",
            sev.kind,
            sev.vector,
            sev.base_score.map(|x| x.to_string()),
            sev.level,
            sev.error
                .as_ref()
                .map(|e| format!(" error {e}"))
                .unwrap_or_default()
        );
    }
    if let Some(v) = &a.vendor_severity {
        let _ = writeln!(s, "vendor severity {} {:?} {:?}", v.vendor, v.level, v.text);
    }
    for x in a.affected.iter().take(max) {
        let pkg = x
            .package
            .as_ref()
            .map(|p| format!("{} / {} ({:?})", p.ecosystem, p.name, p.naming()))
            .unwrap_or_else(|| "(no package)".into());
        let ranges: Vec<String> = x
            .ranges
            .iter()
            .map(|r| {
                let events: Vec<String> = r
                    .events
                    .iter()
                    .map(|e| match e {
                        Event::Introduced(v) => format!("introduced {v}"),
                        Event::Fixed(v) => format!("fixed {v}"),
                        Event::LastAffected(v) => format!("last_affected {v}"),
                        Event::Limit(v) => format!("limit {v}"),
                    })
                    .collect();
                format!(
                    "{:?}{}[{}]",
                    r.kind,
                    if r.is_matchable() { "" } else { " (unmatched)" },
                    events.join(", ")
                )
            })
            .collect();
        let _ = write!(s, "  affected {pkg}: {}", ranges.join(" "));
        if !x.versions.is_empty() {
            let _ = write!(s, " versions {:?}", x.versions);
        }
        if let Some(v) = &x.vendor_severity {
            let _ = write!(s, " vendor {:?} {:?}", v.level, v.text);
        }
        for r in &x.remediations {
            let _ = write!(s, " remediation {:?} {:?}", r.category, r.details);
        }
        if let Some(e) = &x.ecosystem_specific {
            let _ = write!(s, " eco {e}");
        }
        if let Some(d) = &x.database_specific {
            let _ = write!(s, " db {d}");
        }
        let _ = writeln!(s);
    }
    if a.affected.len() > max {
        let _ = writeln!(s, "  … {} affected entries in all", a.affected.len());
    }
    for n in a.not_affected.iter().take(max) {
        let _ = writeln!(
            s,
            "  not affected {} / {} version {:?} {:?} {:?}",
            n.package.ecosystem, n.package.name, n.version, n.justification, n.statement
        );
    }
    if a.not_affected.len() > max {
        let _ = writeln!(
            s,
            "  … {} not-affected statements in all",
            a.not_affected.len()
        );
    }
    if let Some(d) = &a.database_specific {
        let _ = writeln!(s, "database_specific {d}");
    }
    s
}
