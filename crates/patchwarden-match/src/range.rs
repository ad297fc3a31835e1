//! OSV range evaluation on versions parsed once.
//!
//! OSV's rule: sort a range's events by version (`introduced: "0"` first) and walk them; an
//! `introduced` at or below the installed version makes it affected, a `fixed` or `limit` at or
//! below it, or a `last_affected` below it, makes it unaffected again. The installed version
//! is affected by the range if it is affected after the walk. The fix that closes it is the
//! lowest `fixed` event above it.

use std::cmp::Ordering;
use std::sync::Arc;

use patchwarden_version::Version;

/// One event with its version parsed (`None` for `introduced: "0"`, the beginning of time).
/// The version is shared with every other event that names it (see `index::Versions`).
#[derive(Debug, Clone)]
pub(crate) enum Bound {
    Introduced(Option<Arc<Version>>),
    Fixed(Arc<Version>),
    LastAffected(Arc<Version>),
    Limit(Arc<Version>),
}

impl Bound {
    fn version(&self) -> Option<&Version> {
        match self {
            Bound::Introduced(v) => v.as_deref(),
            Bound::Fixed(v) | Bound::LastAffected(v) | Bound::Limit(v) => Some(&**v),
        }
    }

    /// The event's version as the feed wrote it (a parsed version keeps its text exactly).
    pub(crate) fn text(&self) -> &str {
        self.version().map_or("0", Version::as_str)
    }
}

/// A range whose events are parsed and sorted. The events' texts, for explanations, are the
/// parsed versions' own.
#[derive(Debug, Clone)]
pub(crate) struct CompiledRange {
    pub(crate) bounds: Box<[Bound]>,
}

/// How a range judges an installed version.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Verdict<'a> {
    NotAffected,
    /// Affected; the lowest fix above the installed version if the range has one, and the
    /// event texts that decided it (introduced, and last_affected when that bounds it).
    Affected {
        fixed: Option<(&'a Version, &'a str)>,
        introduced: &'a str,
    },
}

impl CompiledRange {
    /// Sorts the events by version; `introduced: "0"` (no version) sorts first. On equal
    /// versions `introduced` goes before the others, as OSV's reference implementation does.
    pub(crate) fn new(mut bounds: Vec<Bound>) -> CompiledRange {
        bounds.sort_by(|a, b| match (a.version(), b.version()) {
            (None, None) => Ordering::Equal,
            (None, Some(_)) => Ordering::Less,
            (Some(_), None) => Ordering::Greater,
            (Some(x), Some(y)) => x
                .compare(y)
                .unwrap_or(Ordering::Equal)
                .then_with(|| rank(a).cmp(&rank(b))),
        });
        CompiledRange {
            bounds: bounds.into(),
        }
    }

    pub(crate) fn judge<'a>(&'a self, installed: &Version) -> Verdict<'a> {
        let at_or_above = |v: &Version| installed.compare(v).is_some_and(|o| o != Ordering::Less);
        let mut affected = false;
        let mut introduced = "";
        let mut next_fix = None;
        for b in self.bounds.iter() {
            match b {
                Bound::Introduced(None) => {
                    affected = true;
                    introduced = b.text();
                }
                Bound::Introduced(Some(v)) if at_or_above(v) => {
                    affected = true;
                    introduced = b.text();
                }
                Bound::Fixed(v) | Bound::Limit(v) if at_or_above(v) => affected = false,
                Bound::LastAffected(v) if installed.compare(v) == Some(Ordering::Greater) => {
                    affected = false
                }
                Bound::Fixed(v) if next_fix.is_none() => next_fix = Some((&**v, v.as_str())),
                _ => {}
            }
        }
        if affected {
            Verdict::Affected {
                fixed: next_fix,
                introduced,
            }
        } else {
            Verdict::NotAffected
        }
    }
}

fn rank(b: &Bound) -> u8 {
    match b {
        Bound::Introduced(_) => 0,
        Bound::LastAffected(_) => 1,
        Bound::Fixed(_) => 2,
        Bound::Limit(_) => 3,
    }
}

#[cfg(test)]
mod tests {
    use patchwarden_version::Scheme;

    use super::*;

    fn range(events: &[(&str, &str)]) -> CompiledRange {
        let v = |s: &str| Arc::new(Scheme::Dpkg.parse(s).unwrap());
        CompiledRange::new(
            events
                .iter()
                .map(|&(kind, text)| match kind {
                    "introduced" if text == "0" => Bound::Introduced(None),
                    "introduced" => Bound::Introduced(Some(v(text))),
                    "fixed" => Bound::Fixed(v(text)),
                    "last_affected" => Bound::LastAffected(v(text)),
                    _ => Bound::Limit(v(text)),
                })
                .collect(),
        )
    }

    fn judge(r: &CompiledRange, installed: &str) -> String {
        match r.judge(&Scheme::Dpkg.parse(installed).unwrap()) {
            Verdict::NotAffected => "not affected".into(),
            Verdict::Affected { fixed, introduced } => {
                format!(
                    "affected since {introduced}, fixed {:?}",
                    fixed.map(|f| f.1)
                )
            }
        }
    }

    #[test]
    fn several_introduced_and_fixed_pairs() {
        // Events out of order on purpose: they are sorted before the walk.
        let r = range(&[
            ("fixed", "1.5"),
            ("introduced", "0"),
            ("introduced", "2.0"),
            ("fixed", "2.3"),
        ]);
        assert_eq!(judge(&r, "1.0"), r#"affected since 0, fixed Some("1.5")"#);
        assert_eq!(judge(&r, "1.5"), "not affected");
        assert_eq!(judge(&r, "1.9"), "not affected");
        assert_eq!(judge(&r, "2.0"), r#"affected since 2.0, fixed Some("2.3")"#);
        assert_eq!(
            judge(&r, "2.3~rc1"),
            r#"affected since 2.0, fixed Some("2.3")"#
        );
        assert_eq!(judge(&r, "2.3"), "not affected");
    }

    #[test]
    fn last_affected_includes_itself_and_limit_excludes_itself() {
        let r = range(&[("introduced", "1.0"), ("last_affected", "1.4")]);
        assert_eq!(judge(&r, "0.9"), "not affected");
        assert_eq!(judge(&r, "1.4"), "affected since 1.0, fixed None");
        assert_eq!(judge(&r, "1.4-1"), "not affected");
        let r = range(&[("introduced", "0"), ("limit", "2.0")]);
        assert_eq!(judge(&r, "1.9"), "affected since 0, fixed None");
        assert_eq!(judge(&r, "2.0"), "not affected");
    }

    #[test]
    fn unfixed_ranges_stay_open() {
        let r = range(&[("introduced", "0")]);
        assert_eq!(judge(&r, "99:1"), "affected since 0, fixed None");
    }
}
