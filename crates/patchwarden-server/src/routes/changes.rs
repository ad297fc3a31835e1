//! Change requests and the calendar for operators: create, list, show, and one route per event
//! of the state machine (submit, approve, authorise, reject, schedule, record testing, close,
//! cancel, roll back); maintenance windows and change freezes. The rules live in
//! `patchwarden_core::change`; a refusal is 409 with the rule's words.

use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use patchwarden_api::v1::changes::{
    CalendarEntryView, CalendarSpec, ChangeQuery, ChangeView, NewChangeRequest, Promote, Reason,
    ScheduleRequest,
};
use patchwarden_core::change::ChangeEvent;
use patchwarden_store::change::ChangeFilter;

use crate::access::Caller;
use crate::body::{self, SMALL_BODY};
use crate::changes;
use crate::clock;
use crate::error::ApiError;
use crate::routes::fleet::{page_size, query};
use crate::state::AppState;

/// A change request body: the form with its patches (up to the manifest's package limit).
const CHANGE_BODY: u64 = 1024 * 1024;

fn number(path: Result<Path<String>, PathRejection>) -> Result<String, ApiError> {
    let Path(n) = path.map_err(|e| ApiError::InvalidParameter(e.body_text()))?;
    if n.len() > 64 {
        return Err(ApiError::NotFound);
    }
    Ok(n)
}

/// Creates a draft change. Without patches, they are derived from the targeted hosts' open
/// findings that have a fixed version.
#[utoipa::path(
    post,
    path = "/api/v1/changes",
    tag = "changes",
    request_body = NewChangeRequest,
    responses(
        (status = 201, description = "The draft", body = ChangeView),
        (status = 400, description = "Malformed, or nothing to patch"),
    )
)]
pub(crate) async fn create(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    body: Body,
) -> Result<(StatusCode, Json<ChangeView>), ApiError> {
    let request: NewChangeRequest = body::json(&body::read(body, CHANGE_BODY).await?)?;
    let now = clock::now();
    let stored = changes::create(&state, &caller, request, now).await?;
    Ok((
        StatusCode::CREATED,
        Json(changes::view(&state, &stored).await?),
    ))
}

/// Replaces a draft's form (its requester, before submitting it).
#[utoipa::path(
    put,
    path = "/api/v1/changes/{number}",
    tag = "changes",
    params(("number" = String, Path, description = "PCR-2026-0001")),
    request_body = NewChangeRequest,
    responses(
        (status = 200, description = "The edited draft", body = ChangeView),
        (status = 409, description = "Not a draft, not its requester, or another kind"),
    )
)]
pub(crate) async fn edit(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    path: Result<Path<String>, PathRejection>,
    body: Body,
) -> Result<Json<ChangeView>, ApiError> {
    let n = number(path)?;
    let request: NewChangeRequest = body::json(&body::read(body, CHANGE_BODY).await?)?;
    let stored = changes::edit(&state, &caller, &n, request, clock::now()).await?;
    Ok(Json(changes::view(&state, &stored).await?))
}

/// Changes, newest first.
#[utoipa::path(
    get,
    path = "/api/v1/changes",
    tag = "changes",
    params(ChangeQuery),
    responses((status = 200, description = "The changes", body = Vec<ChangeView>))
)]
pub(crate) async fn list(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    q: Result<Query<ChangeQuery>, QueryRejection>,
) -> Result<Json<Vec<ChangeView>>, ApiError> {
    let q = query(q)?;
    let limit = page_size(q.limit)?;
    let visible = changes::list_visible(
        &state,
        &caller,
        &ChangeFilter {
            states: q.state.into_iter().collect(),
            requester: q.requester,
            limit: Some(limit),
        },
    )
    .await?;
    let mut out = Vec::with_capacity(visible.len());
    for (s, _) in &visible {
        out.push(changes::view(&state, s).await?);
    }
    Ok(Json(out))
}

/// One change: the form, its signatures, its window and its rollout.
#[utoipa::path(
    get,
    path = "/api/v1/changes/{number}",
    tag = "changes",
    params(("number" = String, Path, description = "PCR-2026-0001")),
    responses(
        (status = 200, description = "The change", body = ChangeView),
        (status = 404, description = "No such change"),
    )
)]
pub(crate) async fn show(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<ChangeView>, ApiError> {
    let n = number(path)?;
    let (stored, _) = changes::visible(&state, &caller, &n).await?;
    Ok(Json(changes::view(&state, &stored).await?))
}

async fn act(
    state: &AppState,
    caller: &Caller,
    n: &str,
    event: ChangeEvent,
    schedule: ScheduleRequest,
) -> Result<Json<ChangeView>, ApiError> {
    let stored = changes::act(state, caller, n, event, schedule, clock::now()).await?;
    Ok(Json(changes::view(state, &stored).await?))
}

/// An empty body, `{}`, or nothing: the event routes without a payload take no fields.
async fn no_fields(body: Body) -> Result<(), ApiError> {
    let raw = body::read(body, SMALL_BODY).await?;
    if raw.iter().all(u8::is_ascii_whitespace) {
        return Ok(());
    }
    let v: serde_json::Map<String, serde_json::Value> = body::json(&raw)?;
    if v.is_empty() {
        Ok(())
    } else {
        Err(ApiError::MalformedBody(
            "this action takes no fields".into(),
        ))
    }
}

macro_rules! event_route {
    ($name:ident, $path:literal, $doc:literal, $event:expr) => {
        #[doc = $doc]
        #[utoipa::path(
            post,
            path = $path,
            tag = "changes",
            params(("number" = String, Path, description = "PCR-2026-0001")),
            responses(
                (status = 200, description = "The change after the event", body = ChangeView),
                (status = 409, description = "The change's rules refuse it, with why"),
            )
        )]
        pub(crate) async fn $name(
            State(state): State<Arc<AppState>>,
            caller: Caller,
            path: Result<Path<String>, PathRejection>,
            body: Body,
        ) -> Result<Json<ChangeView>, ApiError> {
            let n = number(path)?;
            no_fields(body).await?;
            act(&state, &caller, &n, $event, ScheduleRequest::default()).await
        }
    };
}

event_route!(
    submit,
    "/api/v1/changes/{number}/submit",
    "The requester submits their draft for approval.",
    ChangeEvent::Submit
);
event_route!(
    approve,
    "/api/v1/changes/{number}/approve",
    "An approver other than the requester approves it.",
    ChangeEvent::Approve
);
event_route!(
    authorise,
    "/api/v1/changes/{number}/authorise",
    "An authoriser other than the requester and the approver authorises it.",
    ChangeEvent::Authorise
);
event_route!(
    record_testing,
    "/api/v1/changes/{number}/record-testing",
    "Records an emergency change's testing, done after it deployed.",
    ChangeEvent::RecordTesting
);
event_route!(
    close,
    "/api/v1/changes/{number}/close",
    "Closes a verified change.",
    ChangeEvent::Close
);

/// Schedules an authorised change into the hosts' first window (from `not_before`) that no
/// freeze covers; an emergency at once. The rollout engine starts it when the window opens.
#[utoipa::path(
    post,
    path = "/api/v1/changes/{number}/schedule",
    tag = "changes",
    params(("number" = String, Path, description = "PCR-2026-0001")),
    request_body = ScheduleRequest,
    responses(
        (status = 200, description = "Scheduled, with its window and warnings", body = ChangeView),
        (status = 409, description = "Not authorised yet, or no window opens"),
    )
)]
pub(crate) async fn schedule(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    path: Result<Path<String>, PathRejection>,
    body: Body,
) -> Result<Json<ChangeView>, ApiError> {
    let n = number(path)?;
    let raw = body::read(body, SMALL_BODY).await?;
    let request: ScheduleRequest = if raw.iter().all(u8::is_ascii_whitespace) {
        ScheduleRequest::default()
    } else {
        body::json(&raw)?
    };
    act(&state, &caller, &n, ChangeEvent::Schedule, request).await
}

/// The event routes whose body is a [`Reason`].
async fn with_reason(
    state: &AppState,
    caller: &Caller,
    path: Result<Path<String>, PathRejection>,
    body: Body,
    event: impl FnOnce(String) -> ChangeEvent,
) -> Result<Json<ChangeView>, ApiError> {
    let n = number(path)?;
    let r: Reason = body::json(&body::read(body, SMALL_BODY).await?)?;
    act(
        state,
        caller,
        &n,
        event(r.reason),
        ScheduleRequest::default(),
    )
    .await
}

/// An approver or authoriser rejects it, with why.
#[utoipa::path(
    post,
    path = "/api/v1/changes/{number}/reject",
    tag = "changes",
    params(("number" = String, Path, description = "PCR-2026-0001")),
    request_body = Reason,
    responses(
        (status = 200, description = "Rejected", body = ChangeView),
        (status = 409, description = "The change's rules refuse it, with why"),
    )
)]
pub(crate) async fn reject(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    path: Result<Path<String>, PathRejection>,
    body: Body,
) -> Result<Json<ChangeView>, ApiError> {
    with_reason(&state, &caller, path, body, |reason| ChangeEvent::Reject {
        reason,
    })
    .await
}

/// The requester or an implementer cancels it before it touched hosts, with why.
#[utoipa::path(
    post,
    path = "/api/v1/changes/{number}/cancel",
    tag = "changes",
    params(("number" = String, Path, description = "PCR-2026-0001")),
    request_body = Reason,
    responses(
        (status = 200, description = "Cancelled", body = ChangeView),
        (status = 409, description = "The change's rules refuse it, with why"),
    )
)]
pub(crate) async fn cancel(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    path: Result<Path<String>, PathRejection>,
    body: Body,
) -> Result<Json<ChangeView>, ApiError> {
    with_reason(&state, &caller, path, body, |reason| ChangeEvent::Cancel {
        reason,
    })
    .await
}

/// An implementer calls back a change that has put packages on hosts (testing, tested,
/// deploying or verified), with why: it fails, no later ring starts, and the rollout engine
/// gives every host that was given it a rollback job; once those succeeded it is rolled back.
#[utoipa::path(
    post,
    path = "/api/v1/changes/{number}/rollback",
    tag = "changes",
    params(("number" = String, Path, description = "PCR-2026-0001")),
    request_body = Reason,
    responses(
        (status = 200, description = "Failed, and rolling back", body = ChangeView),
        (status = 409, description = "The change's rules refuse it, with why"),
    )
)]
pub(crate) async fn rollback(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    path: Result<Path<String>, PathRejection>,
    body: Body,
) -> Result<Json<ChangeView>, ApiError> {
    with_reason(&state, &caller, path, body, |reason| {
        ChangeEvent::RollBack { reason }
    })
    .await
}

/// Releases a ring's manual gate, so the rollout may count it verified and go on.
#[utoipa::path(
    post,
    path = "/api/v1/changes/{number}/promote",
    tag = "changes",
    params(("number" = String, Path, description = "PCR-2026-0001")),
    request_body = Promote,
    responses(
        (status = 200, description = "Promoted", body = ChangeView),
        (status = 409, description = "No such gate, or no rollout"),
    )
)]
pub(crate) async fn promote(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    path: Result<Path<String>, PathRejection>,
    body: Body,
) -> Result<Json<ChangeView>, ApiError> {
    let n = number(path)?;
    let p: Promote = body::json(&body::read(body, SMALL_BODY).await?)?;
    let stored = changes::promote(&state, &caller, &n, &p.ring, clock::now()).await?;
    Ok(Json(changes::view(&state, &stored).await?))
}

/// The maintenance windows and change freezes, with their next openings.
#[utoipa::path(
    get,
    path = "/api/v1/calendar",
    tag = "changes",
    responses((status = 200, description = "Windows and freezes", body = Vec<CalendarEntryView>))
)]
pub(crate) async fn calendar(
    State(state): State<Arc<AppState>>,
) -> Result<Json<Vec<CalendarEntryView>>, ApiError> {
    Ok(Json(changes::calendar_entries(&state, clock::now()).await?))
}

fn entry_name(path: Result<Path<String>, PathRejection>) -> Result<String, ApiError> {
    let Path(n) = path.map_err(|e| ApiError::InvalidParameter(e.body_text()))?;
    changes::check_entry_name(&n)?;
    Ok(n)
}

/// Creates or replaces a window or a freeze.
#[utoipa::path(
    put,
    path = "/api/v1/calendar/{name}",
    tag = "changes",
    params(("name" = String, Path, description = "The entry's name")),
    request_body = CalendarSpec,
    responses(
        (status = 200, description = "The entry", body = CalendarEntryView),
        (status = 400, description = "An invalid rule, zone or span"),
    )
)]
pub(crate) async fn put_calendar(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    path: Result<Path<String>, PathRejection>,
    body: Body,
) -> Result<Json<CalendarEntryView>, ApiError> {
    let name = entry_name(path)?;
    let spec: CalendarSpec = body::json(&body::read(body, SMALL_BODY).await?)?;
    Ok(Json(
        changes::put_calendar_entry(&state, &caller, &name, spec, clock::now()).await?,
    ))
}

/// Removes a window or a freeze.
#[utoipa::path(
    delete,
    path = "/api/v1/calendar/{name}",
    tag = "changes",
    params(("name" = String, Path, description = "The entry's name")),
    responses(
        (status = 204, description = "Removed"),
        (status = 404, description = "No such entry"),
    )
)]
pub(crate) async fn delete_calendar(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    path: Result<Path<String>, PathRejection>,
) -> Result<StatusCode, ApiError> {
    let name = entry_name(path)?;
    changes::delete_calendar_entry(&state, &caller, &name, clock::now()).await?;
    Ok(StatusCode::NO_CONTENT)
}
