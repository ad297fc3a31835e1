//! The HTTP routes: the agent protocol under `/api/v1/agent/`, the operator API under
//! `/api/v1/`, the CA certificate, the agent packages under `/downloads/`, and the probes; and
//! the router that declares each with who may call it (`declare`) and puts them behind the
//! request metrics and the agents' back-pressure.

pub(crate) mod agent;
pub(crate) mod audit;
pub(crate) mod changes;
pub(crate) mod declare;
pub(crate) mod downloads;
pub(crate) mod exceptions;
pub(crate) mod feeds;
pub(crate) mod fleet;
pub(crate) mod jobs;
pub(crate) mod openapi;
pub(crate) mod probes;
pub(crate) mod session;
pub(crate) mod tokens;
pub(crate) mod users;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use utoipa_axum::routes;

use crate::error::ApiError;
use crate::metrics::label;
use crate::state::AppState;
pub use declare::Declared;
pub(crate) use declare::Routes;

/// The API listener's router: every route declared with who may call it (`declare`), in this
/// one place. To add a route, annotate its handler with `#[utoipa::path]` and declare it here
/// (docs/ARCHITECTURE.md, "Adding an operator route").
pub(crate) fn api(state: Arc<AppState>) -> Router {
    let (router, openapi, table) = declared(state.clone());
    // Built once per server; `GET /api/v1/openapi.json` serves it. A document that does not
    // serialise is served as an error (and fails the OpenAPI tests), not as half a document.
    match openapi.to_json() {
        Ok(json) => {
            let _ = state.openapi.set(json.into());
        }
        Err(e) => tracing::error!(error = %e, "the OpenAPI document does not serialise"),
    }
    let router = router
        .fallback(|| async { ApiError::NotFound })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        // Bodies are read by the handlers with their own limits (`body::read`), so that an
        // over-long body is refused as problem+json, not axum's plain text.
        .layer(axum::extract::DefaultBodyLimit::disable());
    // The guard last, so it stands in front of every route above, declared or not.
    let router = declare::guarded(router, &table)
        .layer(middleware::from_fn_with_state(state.clone(), observe))
        .with_state(state.clone());
    let _ = state.routes.set(table);
    router
}

/// Every route of the API with its access declaration, the OpenAPI document, and the table
/// of declarations the authorisation matrix test walks.
pub(crate) fn declared(
    state: Arc<AppState>,
) -> (
    Router<Arc<AppState>>,
    utoipa::openapi::OpenApi,
    Vec<Declared>,
) {
    use crate::access::{
        ADMIN, ADMIN_AUDITOR, CALENDAR_KEEPERS, CHANGE_APPROVERS, CHANGE_AUTHORISERS,
        CHANGE_CANCELLERS, CHANGE_IMPLEMENTERS, CHANGE_JUDGES, CHANGE_REQUESTERS, ENROLLERS,
        ENROLLMENT_READERS, EVERYONE, FEED_OPERATORS, TRIAGE_DECIDERS, TRIAGE_READERS,
    };
    use crate::access::{
        EXCEPTION_DECIDERS, EXCEPTION_OWNERS, EXCEPTION_REQUESTERS, EXCEPTION_REVOKERS,
    };
    use crate::access::{INCIDENT_READERS, INCIDENT_RESOLVERS};
    Routes::new(state, openapi::frame())
        // Open: what a caller without a credential must reach.
        .open(
            "agents enroll with an enrollment token in the body",
            routes!(agent::enroll),
        )
        .open("load balancers probe it", routes!(probes::healthz))
        .open("load balancers probe it", routes!(probes::readyz))
        .open(
            "agents fetch the CA they pin before they trust anything",
            routes!(probes::ca_pem),
        )
        .open(
            "hosts download the agent before they have a credential",
            routes!(downloads::download),
        )
        .open(
            "operators log in with their password",
            routes!(session::login),
        )
        // Agents: signed requests.
        .agent(routes!(agent::check_in))
        .agent(routes!(agent::inventory))
        .agent(routes!(jobs::get_job))
        .agent(routes!(jobs::progress))
        .agent(routes!(jobs::result))
        // Operators.
        .own_account(routes!(session::show))
        .own_account(routes!(session::logout))
        .own_account(routes!(session::change_password))
        .operators(EVERYONE, routes!(openapi::document))
        .operators(ADMIN_AUDITOR, routes!(users::list))
        .operators(ADMIN, routes!(users::create))
        .operators(ADMIN, routes!(users::set_roles))
        .operators(ADMIN, routes!(users::disable))
        .operators(ADMIN, routes!(users::enable))
        .operators(EVERYONE, routes!(tokens::list_api))
        .operators(EVERYONE, routes!(tokens::create_api))
        .operators(EVERYONE, routes!(tokens::revoke_api))
        .operators(ENROLLMENT_READERS, routes!(tokens::list_enrollment))
        .operators(ENROLLERS, routes!(tokens::create_enrollment))
        .operators(ENROLLERS, routes!(tokens::revoke_enrollment))
        .operators(EVERYONE, routes!(fleet::list_hosts))
        .operators(EVERYONE, routes!(fleet::show_host))
        .operators(EVERYONE, routes!(fleet::list_findings))
        .operators(EVERYONE, routes!(fleet::show_advisory))
        .operators(EVERYONE, routes!(feeds::list))
        .operators(EVERYONE, routes!(feeds::show))
        .operators(FEED_OPERATORS, routes!(feeds::sync))
        .operators(FEED_OPERATORS, routes!(feeds::check))
        .operators(FEED_OPERATORS, routes!(feeds::import))
        .operators(FEED_OPERATORS, routes!(feeds::enter))
        .operators(TRIAGE_READERS, routes!(feeds::list_triage))
        .operators(TRIAGE_DECIDERS, routes!(feeds::classify))
        .operators(EVERYONE, routes!(changes::list))
        .operators(CHANGE_REQUESTERS, routes!(changes::create))
        .operators(EVERYONE, routes!(changes::show))
        .operators(CHANGE_REQUESTERS, routes!(changes::edit))
        .operators(CHANGE_REQUESTERS, routes!(changes::submit))
        .operators(CHANGE_APPROVERS, routes!(changes::approve))
        .operators(CHANGE_AUTHORISERS, routes!(changes::authorise))
        .operators(CHANGE_JUDGES, routes!(changes::reject))
        .operators(CHANGE_IMPLEMENTERS, routes!(changes::schedule))
        .operators(CHANGE_IMPLEMENTERS, routes!(changes::record_testing))
        .operators(CHANGE_IMPLEMENTERS, routes!(changes::close))
        .operators(CHANGE_CANCELLERS, routes!(changes::cancel))
        .operators(CHANGE_IMPLEMENTERS, routes!(changes::promote))
        .operators(CHANGE_IMPLEMENTERS, routes!(changes::rollback))
        .operators(EVERYONE, routes!(changes::calendar))
        .operators(CALENDAR_KEEPERS, routes!(changes::put_calendar))
        .operators(CALENDAR_KEEPERS, routes!(changes::delete_calendar))
        .operators(EVERYONE, routes!(exceptions::list))
        .operators(EVERYONE, routes!(exceptions::show))
        .operators(EXCEPTION_REQUESTERS, routes!(exceptions::request))
        .operators(EXCEPTION_OWNERS, routes!(exceptions::acknowledge))
        .operators(EXCEPTION_DECIDERS, routes!(exceptions::approve))
        .operators(EXCEPTION_DECIDERS, routes!(exceptions::reject))
        .operators(EXCEPTION_REVOKERS, routes!(exceptions::revoke))
        .operators(ADMIN_AUDITOR, routes!(audit::list))
        .operators(ADMIN_AUDITOR, routes!(audit::verify))
        .operators(INCIDENT_READERS, routes!(crate::status::incidents::list))
        .operators(INCIDENT_READERS, routes!(crate::status::incidents::show))
        .operators(
            INCIDENT_RESOLVERS,
            routes!(crate::status::incidents::resolve_api),
        )
        // Pages for people (HTML, CSV, PDF, iCalendar): declared the same way, kept out of
        // the OpenAPI document.
        .with(crate::web::declare)
        .with(crate::status::declare)
        .finish()
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
    let span = tracing::info_span!(
        "request",
        %method,
        route = %route,
        host = tracing::field::Empty,
        operator = tracing::field::Empty
    );
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
pub(crate) async fn back_pressure(
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
