//! What the fleet pages share: reading a page's query string (every filter a string, an empty
//! field of a filter form meaning "any", each with a length limit and a clear error), showing
//! times, classes and standings in words, and building the links that keep a list's filters.

use jiff::{Timestamp, tz::TimeZone};
use patchwarden_api::v1::exceptions::FindingStanding;
use patchwarden_api::v1::fleet::{DEFAULT_PAGE, MAX_PAGE};
use patchwarden_core::policy::Class;
use std::collections::BTreeMap;

use crate::error::ApiError;

/// The longest value a filter takes (names, ids, versions are far shorter).
pub(crate) const MAX_FILTER: usize = 256;

/// A page's query string as its fields, empty ones left out.
#[derive(Debug, Default, Clone)]
pub(crate) struct Params(BTreeMap<String, String>);

impl Params {
    /// Parses `raw` (`a=1&b=`): at most 4 KiB, each value at most [`MAX_FILTER`] characters,
    /// no field twice.
    pub(crate) fn parse(raw: Option<&str>) -> Result<Params, ApiError> {
        let raw = raw.unwrap_or_default();
        if raw.len() > 4096 {
            return Err(ApiError::InvalidParameter(
                "the query string is longer than 4096 bytes".into(),
            ));
        }
        let pairs: Vec<(String, String)> = serde_urlencoded::from_str(raw)
            .map_err(|e| ApiError::InvalidParameter(format!("the query string: {e}")))?;
        let mut out = BTreeMap::new();
        for (k, v) in pairs {
            let v = v.trim().to_owned();
            if v.chars().count() > MAX_FILTER || v.chars().any(char::is_control) {
                return Err(ApiError::InvalidParameter(format!(
                    "{k}: at most {MAX_FILTER} printable characters"
                )));
            }
            if v.is_empty() {
                continue;
            }
            if out.insert(k.clone(), v).is_some() {
                return Err(ApiError::InvalidParameter(format!("{k} is given twice")));
            }
        }
        Ok(Params(out))
    }

    /// Refuses a field not in `known`, so a mistyped filter is said, not ignored.
    pub(crate) fn only(&self, known: &[&str]) -> Result<(), ApiError> {
        match self.0.keys().find(|k| !known.contains(&k.as_str())) {
            Some(k) => Err(ApiError::InvalidParameter(format!(
                "unknown filter {k:?}: this page knows {}",
                known.join(", ")
            ))),
            None => Ok(()),
        }
    }

    pub(crate) fn get(&self, k: &str) -> Option<String> {
        self.0.get(k).cloned()
    }

    /// A field parsed as `T`, with `what` saying what it should be.
    pub(crate) fn parsed<T: std::str::FromStr>(
        &self,
        k: &str,
        what: &str,
    ) -> Result<Option<T>, ApiError> {
        self.0
            .get(k)
            .map(|v| {
                v.parse::<T>()
                    .map_err(|_| ApiError::InvalidParameter(format!("{k}: {what}")))
            })
            .transpose()
    }

    /// The page size (`limit`), 1 to the API's largest page.
    pub(crate) fn limit(&self) -> Result<u32, ApiError> {
        match self.parsed::<u32>("limit", "a whole number")? {
            None => Ok(DEFAULT_PAGE),
            Some(n @ 1..=MAX_PAGE) => Ok(n),
            Some(n) => Err(ApiError::InvalidParameter(format!(
                "limit {n}: between 1 and {MAX_PAGE}"
            ))),
        }
    }

    /// This query with `k` set to `v` (or removed), as `?a=1&b=2` (empty when nothing is
    /// left): the link to the next page keeps the filters.
    pub(crate) fn with(&self, k: &str, v: Option<&str>) -> String {
        let mut m = self.0.clone();
        match v {
            Some(v) => {
                m.insert(k.to_owned(), v.to_owned());
            }
            None => {
                m.remove(k);
            }
        }
        if m.is_empty() {
            return String::new();
        }
        format!("?{}", serde_urlencoded::to_string(&m).unwrap_or_default())
    }

    /// The value of `k` for a form field, empty when unset.
    pub(crate) fn value(&self, k: &str) -> &str {
        self.0.get(k).map_or("", String::as_str)
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// A time as people read it on the pages: `2026-11-27 14:05 UTC`.
pub(crate) fn when(t: Timestamp) -> String {
    t.to_zoned(TimeZone::UTC)
        .strftime("%Y-%m-%d %H:%M UTC")
        .to_string()
}

/// An optional time, "never" without one.
pub(crate) fn when_or(t: Option<Timestamp>, none: &str) -> String {
    t.map_or_else(|| none.to_owned(), when)
}

/// A span in words: "3 d 4 h", "2 h 10 min", "5 min".
pub(crate) fn span(secs: i64) -> String {
    let secs = secs.abs();
    let (d, h, m) = (secs / 86_400, secs % 86_400 / 3600, secs % 3600 / 60);
    if d > 0 {
        format!("{d} d {h} h")
    } else if h > 0 {
        format!("{h} h {m} min")
    } else {
        format!("{m} min")
    }
}

/// How long ago `t` was, from `now`.
pub(crate) fn ago(t: Option<Timestamp>, now: Timestamp) -> String {
    match t {
        Some(t) => format!("{} ago", span(now.as_second() - t.as_second())),
        None => "never".into(),
    }
}

/// A class in words and the badge class that colours it.
pub(crate) fn class_words(c: Option<Class>) -> (&'static str, &'static str) {
    match c {
        Some(Class::Emergency) => ("Emergency", "emergency"),
        Some(Class::High) => ("High", "high"),
        Some(Class::Medium) => ("Medium", "medium"),
        Some(Class::Low) => ("Low", "low"),
        Some(Class::NotApplicable) => ("Not applicable", "muted"),
        None => ("Unclassified", "muted"),
    }
}

/// A class from its filter value (`emergency`, `high` …).
pub(crate) fn parse_class(v: &str) -> Result<Class, ApiError> {
    v.parse::<Class>().map_err(|_| {
        ApiError::InvalidParameter(format!(
            "class {v:?}: one of emergency, high, medium, low, not_applicable"
        ))
    })
}

/// A standing in words and its badge class.
pub(crate) fn standing_words(s: Option<FindingStanding>) -> (&'static str, &'static str) {
    match s {
        Some(FindingStanding::OnTime) => ("on time", "on-time"),
        Some(FindingStanding::DueSoon) => ("due soon", "due-soon"),
        Some(FindingStanding::Breached) => ("breached", "breached"),
        Some(FindingStanding::Excepted) => ("excepted", "medium"),
        None => ("closed", "muted"),
    }
}

/// A standing from its filter value.
pub(crate) fn parse_standing(v: &str) -> Result<FindingStanding, ApiError> {
    match v {
        "on_time" => Ok(FindingStanding::OnTime),
        "due_soon" => Ok(FindingStanding::DueSoon),
        "breached" => Ok(FindingStanding::Breached),
        "excepted" => Ok(FindingStanding::Excepted),
        _ => Err(ApiError::InvalidParameter(format!(
            "standing {v:?}: one of on_time, due_soon, breached, excepted"
        ))),
    }
}

/// One `<option>` of a filter's `<select>`: value, label, selected.
#[derive(Debug, Clone)]
pub(crate) struct Choice {
    pub value: String,
    pub label: String,
    pub selected: bool,
}

/// The options of a select over `(value, label)` pairs, `current` selected; the first is
/// "any" (the empty value).
pub(crate) fn choices(any: &str, items: &[(&str, &str)], current: &str) -> Vec<Choice> {
    std::iter::once(("", any))
        .chain(items.iter().copied())
        .map(|(v, l)| Choice {
            value: v.to_owned(),
            label: l.to_owned(),
            selected: v == current,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_query_string_keeps_its_filters_and_refuses_nonsense() {
        let p = Params::parse(Some("group=web&os=&ring=canary&limit=5")).unwrap();
        assert_eq!(p.get("group").as_deref(), Some("web"));
        assert_eq!(p.get("os"), None, "an empty field is no filter");
        assert_eq!(p.limit().unwrap(), 5);
        assert_eq!(
            p.with("after", Some("x y")),
            "?after=x+y&group=web&limit=5&ring=canary"
        );
        assert!(p.only(&["group", "ring", "limit"]).is_ok());
        assert!(p.only(&["group"]).is_err());
        assert!(Params::parse(Some("a=1&a=2")).is_err());
        assert!(Params::parse(Some(&format!("a={}", "x".repeat(300)))).is_err());
        assert!(Params::parse(Some("limit=0")).unwrap().limit().is_err());
        assert!(Params::parse(Some("a=%0a")).is_ok(), "trimmed to empty");
        assert!(Params::parse(Some("a=b%07c")).is_err());
        assert_eq!(Params::default().with("x", None), "");
    }

    #[test]
    fn spans_read_as_words() {
        assert_eq!(span(3 * 86_400 + 4 * 3600 + 5), "3 d 4 h");
        assert_eq!(span(7800), "2 h 10 min");
        assert_eq!(span(-300), "5 min");
    }
}
