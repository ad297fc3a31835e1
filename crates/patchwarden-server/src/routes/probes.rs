//! Health and readiness probes, the CA certificate, and the metrics page.
//!
//! `/healthz` says the process serves requests; `/readyz` says it has finished start-up and
//! its database answers, which is what a load balancer should route on.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use patchwarden_api::v1::problem::Problem;

use crate::error::ApiError;
use crate::state::AppState;

#[utoipa::path(
    get,
    path = "/healthz",
    tag = "probes",
    responses((status = 200, description = "The process serves requests", body = String,
        content_type = "text/plain"))
)]
pub(crate) async fn healthz() -> &'static str {
    "ok\n"
}

#[utoipa::path(
    get,
    path = "/readyz",
    tag = "probes",
    responses(
        (status = 200, description = "Started, and the database answers", body = String,
            content_type = "text/plain"),
        (status = 503, description = "Not ready", body = Problem,
            content_type = "application/problem+json"),
    )
)]
pub(crate) async fn readyz(State(state): State<Arc<AppState>>) -> Result<&'static str, ApiError> {
    if !state.is_ready() {
        return Err(ApiError::NotReady("start-up has not finished".into()));
    }
    state
        .store
        .audit_head()
        .await
        .map_err(|e| ApiError::NotReady(format!("the database does not answer: {e}")))?;
    Ok("ready\n")
}

#[utoipa::path(
    get,
    path = "/api/v1/ca.pem",
    tag = "probes",
    responses(
        (status = 200, description = "The CA certificate agents pin", body = String,
            content_type = "application/x-pem-file"),
        (status = 404, description = "Plain-HTTP mode: no CA", body = Problem,
            content_type = "application/problem+json"),
    )
)]
pub(crate) async fn ca_pem(State(state): State<Arc<AppState>>) -> Result<Response, ApiError> {
    let pem = state.ca_pem.clone().ok_or(ApiError::NotFound)?;
    Ok(([(header::CONTENT_TYPE, "application/x-pem-file")], pem).into_response())
}

pub(crate) async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    (
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics.render(),
    )
        .into_response()
}
