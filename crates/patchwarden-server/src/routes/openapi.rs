//! `GET /api/v1/openapi.json`: the OpenAPI 3.1 document of every route, generated at start-up
//! from the handlers' annotations and the routes' access declarations (`routes::declare`),
//! never written by hand.

use std::sync::Arc;

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{
    ComponentsBuilder, InfoBuilder, LicenseBuilder, OpenApi, OpenApiBuilder, Tag,
};
use utoipa::{PartialSchema, ToSchema};

use crate::access::Caller;
use crate::error::ApiError;
use crate::routes::declare::{AGENT_SCHEME, API_TOKEN_SCHEME, SESSION_SCHEME};
use crate::state::AppState;

/// The document's frame: title, version, the security schemes the routes' requirements name,
/// and the problem document every refusal uses. The routes add their paths to it.
pub(crate) fn frame() -> OpenApi {
    use patchwarden_api::v1::operator::SESSION_COOKIE;
    use patchwarden_api::v1::problem::{Problem, ProblemCode};
    let components = ComponentsBuilder::new()
        .schema(Problem::name(), Problem::schema())
        .schema(ProblemCode::name(), ProblemCode::schema())
        .security_scheme(
            SESSION_SCHEME,
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                SESSION_COOKIE,
                "The browser session from POST /api/v1/session. Requests that change \
                 something also carry the session's CSRF token in X-CSRF-Token.",
            ))),
        )
        .security_scheme(
            API_TOKEN_SCHEME,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("pwt_…")
                    .description(Some("An API token from POST /api/v1/api-tokens."))
                    .build(),
            ),
        )
        .security_scheme(
            AGENT_SCHEME,
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                patchwarden_api::v1::signing::HEADER_SIGNATURE,
                "An agent's Ed25519 signature over the method, path, host, time, nonce and \
                 body (docs/agent-protocol.md).",
            ))),
        )
        .build();
    let mut doc = OpenApiBuilder::new()
        .info(
            InfoBuilder::new()
                .title("Patchwarden API")
                .version(env!("CARGO_PKG_VERSION"))
                .description(Some(
                    "The operator API and the agent protocol of a Patchwarden server. Every \
                     operation's security lists the roles it admits (OpenAPI 3.1 allows role \
                     names in a requirement); an empty requirement marks the few open routes. \
                     Errors are RFC 9457 problem documents.",
                ))
                .license(Some(LicenseBuilder::new().name("Apache-2.0").build()))
                .build(),
        )
        .components(Some(components))
        .build();
    doc.tags = Some(
        [
            "session",
            "users",
            "api-tokens",
            "enrollment-tokens",
            "hosts",
            "findings",
            "advisories",
            "feeds",
            "triage",
            "audit",
            "agent",
            "probes",
        ]
        .into_iter()
        .map(Tag::new)
        .collect(),
    );
    doc
}

/// This document.
#[utoipa::path(
    get,
    path = "/api/v1/openapi.json",
    tag = "probes",
    responses((status = 200, description = "The OpenAPI 3.1 document", content_type = "application/json"))
)]
pub(crate) async fn document(
    State(state): State<Arc<AppState>>,
    _caller: Caller,
) -> Result<Response, ApiError> {
    let json = state
        .openapi
        .get()
        .cloned()
        .ok_or_else(|| ApiError::Internal("the OpenAPI document was not built".into()))?;
    Ok(([(header::CONTENT_TYPE, "application/json")], json).into_response())
}
