//! `GET /calendar.ics`: the maintenance windows and freezes as an iCalendar feed (RFC 5545,
//! written by `patchwarden_core::calendar::ics`) that a calendar client subscribes to.
//!
//! - **Open**, like the status page: it holds the same windows and freezes, and calendar
//!   clients cannot log in. It names windows, freezes and host groups, nothing of a host.
//! - **Expanded, not `RRULE`**: each window's openings from a week ago to `horizon_days`
//!   ahead (at most [`publish::MAX_OPENINGS`] per window), computed in the window's own time
//!   zone and written in UTC, so a client shows exactly what Patchwarden enforces, across
//!   daylight-saving changes, without a `VTIMEZONE`. Subscribed clients refresh the feed
//!   and so see the horizon move.
//! - **Stable UIDs**: `window-NAME-START@HOST` and `freeze-NAME@HOST` (the name
//!   percent-encoded), so a refresh updates an event instead of adding a copy; `DTSTAMP` is
//!   the entry's last change.
//! - **Per group**: `?group=NAME` holds the windows that apply to hosts of that group (its
//!   own and those for every group) and every freeze. A group no window names gets just the
//!   windows for every group and the freezes — never a 404, so the feed does not tell which
//!   groups exist.

use std::sync::Arc;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use jiff::SignedDuration;
use patchwarden_core::calendar::ics::{Calendar, Event, write};
use serde::Deserialize;

use super::publish;
use crate::clock;
use crate::state::AppState;

/// How far back the feed starts: last week's openings stay visible in a client.
const PAST: SignedDuration = SignedDuration::from_hours(7 * 24);
/// The longest group name accepted (the store's limit for names).
const MAX_GROUP: usize = patchwarden_store::limits::MAX_NAME;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FeedQuery {
    group: Option<String>,
}

/// A refusal in plain text: calendar clients show the body, if anything.
fn refuse(status: StatusCode, why: &str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        format!("{why}\n"),
    )
        .into_response()
}

/// The UID-safe form of a name: letters, digits, `-`, `_` and `.` as they are, the rest
/// percent-encoded.
fn uid_part(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The domain part of the UIDs: the public URL's host, or `patchwarden`.
fn uid_domain(public_url: &str) -> String {
    let rest = public_url.split_once("://").map_or(public_url, |(_, r)| r);
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    if host.is_empty() {
        "patchwarden".to_owned()
    } else {
        uid_part(host)
    }
}

pub(crate) async fn calendar(
    State(state): State<Arc<AppState>>,
    q: Result<Query<FeedQuery>, QueryRejection>,
) -> Response {
    let group = match q {
        Ok(Query(q)) => q.group,
        Err(e) => {
            return refuse(
                StatusCode::BAD_REQUEST,
                &format!("the query is not understood: {}", e.body_text()),
            );
        }
    };
    if let Some(g) = &group
        && (g.is_empty()
            || g.len() > MAX_GROUP
            || !g
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
    {
        return refuse(
            StatusCode::BAD_REQUEST,
            &format!("group: 1 to {MAX_GROUP} letters, digits, '-', '_' or '.'"),
        );
    }
    let now = clock::now();
    let from = now.checked_sub(PAST).unwrap_or(now);
    let to = now
        .checked_add(SignedDuration::from_hours(
            24 * i64::from(state.status.settings.horizon_days),
        ))
        .unwrap_or(now);
    let items = match publish::calendar(&state, from, to).await {
        Ok(i) => i,
        Err(e) => return e.into_response(),
    };
    let domain = uid_domain(&state.public_url);
    let mut events = Vec::new();
    for item in items
        .iter()
        .filter(|i| group.as_deref().is_none_or(|g| i.applies_to(g)))
    {
        let groups = if item.freeze || item.groups.is_empty() {
            "all groups".to_owned()
        } else {
            item.groups.join(", ")
        };
        for s in &item.openings {
            let (summary, description, uid, kind) = if item.freeze {
                (
                    format!("Change freeze: {}", item.name),
                    format!(
                        "Kind: change freeze\nGroups: {groups}\nNo change but an emergency \
                         touches hosts during a freeze."
                    ),
                    format!("freeze-{}@{domain}", uid_part(&item.name)),
                    "freeze",
                )
            } else {
                (
                    format!("Maintenance window: {} ({groups})", item.name),
                    format!(
                        "Kind: maintenance window\nGroups: {groups}\nChanges to hosts of these \
                         groups may run during this window."
                    ),
                    format!(
                        "window-{}-{}@{domain}",
                        uid_part(&item.name),
                        patchwarden_core::calendar::ics::utc(s.start)
                    ),
                    "window",
                )
            };
            let mut categories = vec![kind.to_owned()];
            categories.extend(item.groups.iter().cloned());
            events.push(Event {
                uid,
                stamp: item.updated_at,
                start: s.start,
                end: s.end,
                summary,
                description,
                categories,
            });
        }
    }
    events.sort_by(|a, b| (a.start, &a.uid).cmp(&(b.start, &b.uid)));
    let name = match &group {
        Some(g) => format!("Patchwarden maintenance ({g})"),
        None => "Patchwarden maintenance".to_owned(),
    };
    let body = write(&Calendar {
        product: "-//Patchwarden//Maintenance calendar//EN".into(),
        name,
        events,
    });
    let mut response = (StatusCode::OK, body).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/calendar; charset=utf-8"),
    );
    // Public and the same for everyone: a proxy may keep it briefly.
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uids_are_made_of_safe_characters() {
        assert_eq!(uid_part("nightly web"), "nightly%20web");
        assert_eq!(uid_part("a@b,c"), "a%40b%2Cc");
        assert_eq!(uid_domain("https://pw.example:8443/x"), "pw.example%3A8443");
        assert_eq!(uid_domain(""), "patchwarden");
    }
}
