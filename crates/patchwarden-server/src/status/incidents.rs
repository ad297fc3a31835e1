//! Incidents for operators: problems reported on the public status page, each linked to the
//! change that last touched its service (if one did within the look-back). The JSON API
//! (`GET /api/v1/incidents`, `GET /api/v1/incidents/{id}`,
//! `POST /api/v1/incidents/{id}/resolve`) and the pages (`/incidents`, `/incidents/{id}`, and
//! the resolve form) read and act through the same functions here.
//!
//! What a reporter wrote is shown as text: askama escapes it in the pages, JSON carries it as
//! a string. The reporter's contact is shown to operators (who need it to answer) but never
//! written to the audit chain.

use std::sync::Arc;

use askama::Template;
use axum::Json;
use axum::body::Body;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::response::Response;
use jiff::Timestamp;
use patchwarden_core::audit::AuditEntry;
use patchwarden_store::incident::{IncidentFilter, IncidentState, MAX_RESOLUTION, StoredIncident};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::page::{iso, when};
use crate::access::{Caller, INCIDENT_RESOLVERS};
use crate::body::{self, SMALL_BODY};
use crate::clock;
use crate::error::ApiError;
use crate::state::AppState;
use crate::web::{self, Chrome, FORM_LIMIT, PageResult};

/// The most incidents one list answers with.
const MAX_LIST: u32 = 500;

/// An incident as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub(crate) struct IncidentView {
    pub id: Uuid,
    /// `INC-2026-0001`.
    pub number: String,
    /// The service it concerns, as the status page names it.
    pub service: String,
    /// What the reporter wrote: plain text, never HTML.
    pub description: String,
    pub contact: Option<String>,
    /// The change it is linked to (`PCR-2026-0001`), if one touched the service lately.
    pub change: Option<String>,
    /// `open` or `resolved`.
    pub state: String,
    pub created_at: Timestamp,
    pub resolved_at: Option<Timestamp>,
    pub resolved_by: Option<String>,
    pub resolution: Option<String>,
}

impl From<StoredIncident> for IncidentView {
    fn from(i: StoredIncident) -> IncidentView {
        IncidentView {
            id: i.id,
            number: i.number,
            service: i.service,
            description: i.description,
            contact: i.contact,
            change: i.change,
            state: i.state.as_str().to_owned(),
            created_at: i.created_at,
            resolved_at: i.resolved_at,
            resolved_by: i.resolved_by,
            resolution: i.resolution,
        }
    }
}

/// `GET /api/v1/incidents`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub(crate) struct IncidentList {
    /// Newest first.
    pub items: Vec<IncidentView>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct IncidentQuery {
    /// `open` or `resolved`; all when absent.
    pub state: Option<String>,
    /// Only those linked to this change number.
    pub change: Option<String>,
    /// At most this many (1–500, default 500).
    pub limit: Option<u32>,
}

/// `POST /api/v1/incidents/{id}/resolve`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ResolveRequest {
    /// What was found and done (at most 4000 bytes).
    pub resolution: String,
}

fn filter(q: &IncidentQuery) -> Result<IncidentFilter, ApiError> {
    let state = match q.state.as_deref() {
        None | Some("" | "all") => None,
        Some(s) => Some(IncidentState::parse(s).ok_or_else(|| {
            ApiError::InvalidParameter(format!("state {s:?}: open, resolved or all"))
        })?),
    };
    let limit = match q.limit {
        None => MAX_LIST,
        Some(n @ 1..=MAX_LIST) => n,
        Some(n) => {
            return Err(ApiError::InvalidParameter(format!(
                "limit {n}: between 1 and {MAX_LIST}"
            )));
        }
    };
    if let Some(c) = &q.change
        && c.len() > patchwarden_store::incident::MAX_CHANGE_NUMBER
    {
        return Err(ApiError::InvalidParameter("change: too long".into()));
    }
    Ok(IncidentFilter {
        state,
        change: q.change.clone().filter(|c| !c.is_empty()),
        limit: Some(limit),
    })
}

async fn find(state: &AppState, key: &str) -> Result<StoredIncident, ApiError> {
    if key.len() > 64 {
        return Err(ApiError::NotFound);
    }
    state
        .store
        .get_incident(key)
        .await?
        .ok_or(ApiError::NotFound)
}

/// Resolves an open incident with `note`; a resolved one is a conflict.
pub(crate) async fn resolve(
    state: &AppState,
    caller: &Caller,
    key: &str,
    note: &str,
    now: Timestamp,
) -> Result<StoredIncident, ApiError> {
    let note = note.trim();
    if note.is_empty() {
        return Err(ApiError::MalformedBody(
            "the resolution is empty: say what was found and done".into(),
        ));
    }
    if note.len() > MAX_RESOLUTION {
        return Err(ApiError::MalformedBody(format!(
            "the resolution is longer than {MAX_RESOLUTION} bytes"
        )));
    }
    let current = find(state, key).await?;
    if current.state != IncidentState::Open {
        return Err(ApiError::Conflict(format!(
            "{} is already resolved",
            current.number
        )));
    }
    Ok(state
        .store
        .resolve_incident(
            current.id,
            &caller.user.username,
            note,
            now,
            AuditEntry::new(now, caller.actor(), "incident.resolve", ""),
        )
        .await?)
}

fn key(p: Result<Path<String>, PathRejection>) -> Result<String, ApiError> {
    p.map(|Path(k)| k)
        .map_err(|e| ApiError::InvalidParameter(e.body_text()))
}

/// The incidents, newest first.
#[utoipa::path(
    get,
    path = "/api/v1/incidents",
    tag = "incidents",
    params(IncidentQuery),
    responses(
        (status = 200, description = "The incidents, newest first", body = IncidentList),
        (status = 400, description = "A query parameter is not understood"),
    )
)]
pub(crate) async fn list(
    State(state): State<Arc<AppState>>,
    _caller: Caller,
    q: Result<Query<IncidentQuery>, QueryRejection>,
) -> Result<Json<IncidentList>, ApiError> {
    let q = crate::routes::fleet::query(q)?;
    let items = state.store.list_incidents(&filter(&q)?).await?;
    Ok(Json(IncidentList {
        items: items.into_iter().map(IncidentView::from).collect(),
    }))
}

/// One incident.
#[utoipa::path(
    get,
    path = "/api/v1/incidents/{id}",
    tag = "incidents",
    params(("id" = String, Path, description = "The incident's id or number")),
    responses(
        (status = 200, description = "The incident", body = IncidentView),
        (status = 404, description = "No such incident"),
    )
)]
pub(crate) async fn show(
    State(state): State<Arc<AppState>>,
    _caller: Caller,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<IncidentView>, ApiError> {
    Ok(Json(find(&state, &key(id)?).await?.into()))
}

/// Resolves an open incident, saying what was found and done.
#[utoipa::path(
    post,
    path = "/api/v1/incidents/{id}/resolve",
    tag = "incidents",
    params(("id" = String, Path, description = "The incident's id or number")),
    request_body = ResolveRequest,
    responses(
        (status = 200, description = "Resolved", body = IncidentView),
        (status = 400, description = "Malformed body or empty resolution"),
        (status = 404, description = "No such incident"),
        (status = 409, description = "Already resolved"),
        (status = 413, description = "Body too large"),
    )
)]
pub(crate) async fn resolve_api(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    id: Result<Path<String>, PathRejection>,
    body: Body,
) -> Result<Json<IncidentView>, ApiError> {
    let id = key(id)?;
    let r: ResolveRequest = body::json(&body::read(body, SMALL_BODY).await?)?;
    Ok(Json(
        resolve(&state, &caller, &id, &r.resolution, clock::now())
            .await?
            .into(),
    ))
}

/// An incident as a page shows it.
pub(crate) struct Row {
    pub number: String,
    pub service: String,
    pub description: String,
    pub contact: Option<String>,
    pub change: Option<String>,
    pub state: &'static str,
    pub created: String,
    pub created_iso: String,
    pub resolved: Option<String>,
    pub resolved_by: Option<String>,
    pub resolution: Option<String>,
}

impl From<StoredIncident> for Row {
    fn from(i: StoredIncident) -> Row {
        Row {
            number: i.number,
            service: i.service,
            description: i.description,
            contact: i.contact,
            change: i.change,
            state: i.state.as_str(),
            created: when(i.created_at),
            created_iso: iso(i.created_at),
            resolved: i.resolved_at.map(when),
            resolved_by: i.resolved_by,
            resolution: i.resolution,
        }
    }
}

impl Row {
    /// The first line of the description, shortened for the list.
    pub(crate) fn summary(&self) -> String {
        let first = self.description.lines().next().unwrap_or("");
        let mut s: String = first.chars().take(120).collect();
        if s.len() < first.len() || self.description.lines().nth(1).is_some() {
            s.push('…');
        }
        s
    }
}

#[derive(Template)]
#[template(path = "incidents.html")]
struct ListPage {
    chrome: Chrome,
    rows: Vec<Row>,
    state: String,
}

#[derive(Template)]
#[template(path = "incident.html")]
struct ShowPage {
    chrome: Chrome,
    row: Row,
    can_resolve: bool,
}

pub(crate) async fn list_page(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    q: Result<Query<IncidentQuery>, QueryRejection>,
) -> PageResult {
    let q = crate::routes::fleet::query(q)?;
    let items = state.store.list_incidents(&filter(&q)?).await?;
    Ok(web::render(&ListPage {
        chrome: Chrome::new(&caller, "incidents"),
        rows: items.into_iter().map(Row::from).collect(),
        state: q.state.unwrap_or_default(),
    }))
}

pub(crate) async fn show_page(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    id: Result<Path<String>, PathRejection>,
) -> PageResult {
    let incident = find(&state, &key(id)?).await?;
    let chrome = Chrome::new(&caller, "incidents");
    Ok(web::render(&ShowPage {
        can_resolve: chrome.can(INCIDENT_RESOLVERS) && incident.state == IncidentState::Open,
        row: incident.into(),
        chrome,
    }))
}

#[derive(Debug, Deserialize)]
struct ResolveForm {
    resolution: String,
}

pub(crate) async fn resolve_page(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    id: Result<Path<String>, PathRejection>,
    body: Body,
) -> Result<Response, web::PageError> {
    let id = key(id)?;
    let f: ResolveForm = web::form(body, FORM_LIMIT).await?;
    let resolved = resolve(&state, &caller, &id, &f.resolution, clock::now()).await?;
    Ok(web::see_other(&format!("/incidents/{}", resolved.number)))
}
