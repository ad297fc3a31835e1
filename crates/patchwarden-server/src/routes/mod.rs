//! The HTTP routes: the agent protocol under `/api/v1/agent/`, the CA certificate, the agent
//! packages under `/downloads/`, and the probes; and the router that puts them behind the
//! request metrics and back-pressure.

pub(crate) mod agent;
pub(crate) mod downloads;
pub(crate) mod jobs;
pub(crate) mod probes;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use crate::error::ApiError;
use crate::metrics::label;
use crate::state::AppState;

/// The API listener's router.
pub(crate) fn api(state: Arc<AppState>) -> Router {
    use patchwarden_api::v1::agent::{CA_PATH, CHECK_IN_PATH, ENROLL_PATH, INVENTORY_PATH};
    let agent_routes = Router::new()
        .route(ENROLL_PATH, post(agent::enroll))
        .route(CHECK_IN_PATH, post(agent::check_in))
        .route(INVENTORY_PATH, post(agent::inventory))
        .route("/api/v1/agent/jobs/{id}", get(jobs::get_job))
        .route("/api/v1/agent/jobs/{id}/progress", post(jobs::progress))
        .route("/api/v1/agent/jobs/{id}/result", post(jobs::result))
        .route_layer(middleware::from_fn_with_state(state.clone(), back_pressure));
    Router::new()
        .merge(agent_routes)
        .route(CA_PATH, get(probes::ca_pem))
        .route("/downloads/{file}", get(downloads::download))
        .route("/healthz", get(probes::healthz))
        .route("/readyz", get(probes::readyz))
        .fallback(|| async { ApiError::NotFound })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        // Bodies are read by the handlers with their own limits (`body::read`), so that an
        // over-long body is refused as problem+json, not axum's plain text.
        .layer(axum::extract::DefaultBodyLimit::disable())
        .layer(middleware::from_fn_with_state(state.clone(), observe))
        .with_state(state)
}

/// The metrics listener's router: `/metrics` and the probes, plain HTTP.
pub(crate) fn metrics(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/metrics", get(probes::metrics))
        .route("/healthz", get(probes::healthz))
        .route("/readyz", get(probes::readyz))
        .with_state(state)
}

/// Counts and times every request by route and status, in a span that names the route.
async fn observe(State(state): State<Arc<AppState>>, request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = request.method().clone();
    let started = Instant::now();
    let span =
        tracing::info_span!("request", %method, route = %route, host = tracing::field::Empty);
    let response = {
        use tracing::Instrument;
        next.run(request).instrument(span).await
    };
    let status = response.status().as_u16().to_string();
    state
        .metrics
        .requests
        .get_or_create(&vec![("route", route.clone()), ("status", status)])
        .inc();
    state
        .metrics
        .request_seconds
        .get_or_create(&label("route", route))
        .observe(started.elapsed().as_secs_f64());
    response
}

/// Refuses agent requests beyond `agents.max_in_flight` with 503 and `Retry-After`, so a
/// flood after an outage is spread out instead of queued without bound.
async fn back_pressure(
    State(state): State<Arc<AppState>>,
    request: Request,
    next: Next,
) -> Response {
    let now_in_flight = state.in_flight.fetch_add(1, Ordering::AcqRel) + 1;
    state.metrics.in_flight.inc();
    let response = if now_in_flight > state.agents.max_in_flight {
        // Spread the retries over one jitter period (at least a few seconds).
        let retry_after = u64::from(state.agents.checkin_jitter_secs.max(5));
        ApiError::Overloaded { retry_after }.into_response()
    } else if !state.is_ready() {
        ApiError::NotReady("start-up has not finished".into()).into_response()
    } else {
        next.run(request).await
    };
    state.in_flight.fetch_sub(1, Ordering::AcqRel);
    state.metrics.in_flight.dec();
    response
}
