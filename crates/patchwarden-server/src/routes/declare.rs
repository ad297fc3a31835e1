//! The one way a route joins the API: declared with who may call it ([`Access`]), from the
//! handler's `#[utoipa::path]` annotation, which gives its method, path and documentation.
//!
//! ```text
//! routes
//!     .open("operators log in with a password", routes!(session::login))
//!     .agent(routes!(agent::check_in))
//!     .operators(ADMIN_AUDITOR, routes!(audit::list))
//! ```
//!
//! Each call adds the route to the router — behind the operator middleware (`access`) or the
//! agents' back-pressure — and to the OpenAPI document, with the declaration written into the
//! operation's `security` (OpenAPI 3.1 lets a requirement list role names) and the refusals it
//! can answer with. The same call records the route in the table that the authorisation matrix
//! test walks, so the router, the document and the table cannot disagree. A route added to the
//! router any other way is refused for everyone by [`guard`] and named in the error log.

use std::collections::BTreeSet;
use std::sync::Arc;

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::Method;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::MethodRouter;
use utoipa::openapi::path::{Operation, PathItem};
use utoipa::openapi::security::SecurityRequirement;
use utoipa::openapi::{Components, ContentBuilder, OpenApi, Ref, RefOr, ResponseBuilder, Schema};
use utoipa_axum::router::UtoipaMethodRouter;

use crate::access::{Access, authorize, authorize_page};
use crate::error::ApiError;
use crate::state::AppState;

/// One declared route: a method on a path (axum's `{param}` syntax, as OpenAPI writes it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Declared {
    pub method: Method,
    pub path: String,
    pub access: Access,
    /// In the OpenAPI document (the JSON API), or a page for people (`Routes::page`).
    pub documented: bool,
}

/// The routes declared so far, the router they make, and their OpenAPI document.
pub(crate) struct Routes {
    state: Arc<AppState>,
    router: Router<Arc<AppState>>,
    openapi: OpenApi,
    table: Vec<Declared>,
}

/// The security schemes the document's requirements name.
pub(crate) const SESSION_SCHEME: &str = "session";
pub(crate) const API_TOKEN_SCHEME: &str = "api_token";
pub(crate) const AGENT_SCHEME: &str = "agent_signature";

impl Routes {
    pub(crate) fn new(state: Arc<AppState>, openapi: OpenApi) -> Routes {
        Routes {
            state,
            router: Router::new(),
            openapi,
            table: Vec::new(),
        }
    }

    /// A route anyone may call; `why` says why it needs no credential.
    pub(crate) fn open(
        self,
        why: &'static str,
        route: UtoipaMethodRouter<Arc<AppState>>,
    ) -> Routes {
        self.add(Access::Open(why), route)
    }

    /// A route for agents: the handler verifies the request's signature; the route is behind
    /// the agents' back-pressure.
    pub(crate) fn agent(self, route: UtoipaMethodRouter<Arc<AppState>>) -> Routes {
        self.add(Access::Agent, route)
    }

    /// A route for operators holding at least one of `roles`.
    pub(crate) fn operators(
        self,
        roles: &'static [patchwarden_store::Role],
        route: UtoipaMethodRouter<Arc<AppState>>,
    ) -> Routes {
        self.add(Access::Roles(roles), route)
    }

    /// A route for any operator, even one who must still change a one-time password.
    pub(crate) fn own_account(self, route: UtoipaMethodRouter<Arc<AppState>>) -> Routes {
        self.add(Access::OwnAccount, route)
    }

    fn add(mut self, access: Access, route: UtoipaMethodRouter<Arc<AppState>>) -> Routes {
        let (schemas, paths, method_router) = route;
        let method_router = match access {
            Access::Open(_) => method_router,
            Access::Agent => method_router.route_layer(middleware::from_fn_with_state(
                self.state.clone(),
                super::back_pressure,
            )),
            Access::Roles(_) | Access::OwnAccount => method_router.route_layer(
                middleware::from_fn_with_state((self.state.clone(), access), authorize),
            ),
        };
        for (path, mut item) in paths.paths {
            for (method, operation) in operations(&mut item) {
                describe(operation, access);
                self.table.push(Declared {
                    method,
                    path: path.clone(),
                    access,
                    documented: true,
                });
            }
            self.router = self.router.route(&path, method_router.clone());
            match self.openapi.paths.paths.get_mut(&path) {
                Some(existing) => existing.merge_operations(item),
                None => {
                    self.openapi.paths.paths.insert(path, item);
                }
            }
        }
        self.openapi
            .components
            .get_or_insert_with(Components::new)
            .schemas
            .extend(schemas);
        self
    }

    /// The router, the document and the table.
    pub(crate) fn finish(self) -> (Router<Arc<AppState>>, OpenApi, Vec<Declared>) {
        (self.router, self.openapi, self.table)
    }
}

/// Puts [`guard`] in front of every route `router` has now: the last layer the API router
/// gets, so that a route added by any other means before it is refused.
pub(crate) fn guarded(router: Router<Arc<AppState>>, table: &[Declared]) -> Router<Arc<AppState>> {
    let declared: Arc<BTreeSet<(String, String)>> = Arc::new(
        table
            .iter()
            .map(|d| (d.method.as_str().to_owned(), d.path.clone()))
            .collect(),
    );
    router.layer(middleware::from_fn_with_state(declared, guard))
}

impl Routes {
    /// A page or document for people rather than programs — HTML, CSV, PDF, iCalendar —
    /// declared like every other route (it joins the router and the table the authorisation
    /// matrix walks) but kept out of the OpenAPI document, which describes the JSON API.
    /// An operator page answers a refusal as a page, not a problem document: the login form
    /// for a caller without a session, an explanation for one without the role
    /// (`access::authorize_page`).
    pub(crate) fn page(
        mut self,
        access: Access,
        method: Method,
        path: &str,
        route: MethodRouter<Arc<AppState>>,
    ) -> Routes {
        let route = match access {
            Access::Open(_) => route,
            Access::Agent => route.route_layer(middleware::from_fn_with_state(
                self.state.clone(),
                super::back_pressure,
            )),
            Access::Roles(_) | Access::OwnAccount => route.route_layer(
                middleware::from_fn_with_state((self.state.clone(), access), authorize_page),
            ),
        };
        self.table.push(Declared {
            method,
            path: path.to_owned(),
            access,
            documented: false,
        });
        self.router = self.router.route(path, route);
        self
    }

    /// Applies `declare` to these routes: how a module adds its pages
    /// (`routes.with(web::declare)`).
    pub(crate) fn with(self, declare: impl FnOnce(Routes) -> Routes) -> Routes {
        declare(self)
    }
}

/// Every operation of a path item, with its method.
fn operations(item: &mut PathItem) -> Vec<(Method, &mut Operation)> {
    let PathItem {
        get,
        put,
        post,
        delete,
        options,
        head,
        patch,
        trace,
        ..
    } = item;
    [
        (Method::GET, get),
        (Method::PUT, put),
        (Method::POST, post),
        (Method::DELETE, delete),
        (Method::OPTIONS, options),
        (Method::HEAD, head),
        (Method::PATCH, patch),
        (Method::TRACE, trace),
    ]
    .into_iter()
    .filter_map(|(m, op)| op.as_mut().map(|op| (m, op)))
    .collect()
}

/// A problem document response.
fn problem(description: &str) -> RefOr<utoipa::openapi::Response> {
    RefOr::T(
        ResponseBuilder::new()
            .description(description)
            .content(
                patchwarden_api::v1::problem::CONTENT_TYPE,
                ContentBuilder::new()
                    .schema(Some(RefOr::<Schema>::Ref(Ref::from_schema_name("Problem"))))
                    .build(),
            )
            .build(),
    )
}

/// Writes the declaration into the operation: its security and its refusals.
fn describe(operation: &mut Operation, access: Access) {
    let requirements = match access {
        // An empty requirement: no credential needed (OpenAPI's way of saying "open").
        Access::Open(_) => vec![SecurityRequirement::default()],
        Access::Agent => vec![SecurityRequirement::new(AGENT_SCHEME, Vec::<String>::new())],
        Access::Roles(_) | Access::OwnAccount => {
            let roles = access.role_names();
            vec![
                SecurityRequirement::new(SESSION_SCHEME, roles.clone()),
                SecurityRequirement::new(API_TOKEN_SCHEME, roles),
            ]
        }
    };
    operation.security = Some(requirements);
    let responses = &mut operation.responses.responses;
    let mut refuse = |status: &str, why: &str| {
        responses
            .entry(status.to_owned())
            .or_insert_with(|| problem(why));
    };
    match access {
        Access::Open(_) => {}
        Access::Agent => refuse(
            "401",
            "The request's signature, timestamp or nonce is refused",
        ),
        Access::Roles(_) | Access::OwnAccount => {
            refuse("401", "No session or API token, or one that is not valid");
            refuse(
                "403",
                "The roles do not admit the route, the CSRF token is missing, or the one-time \
                 password must be changed first",
            );
        }
    }
    let description = match access {
        Access::Open(why) => format!("Open: {why}."),
        Access::Agent => "Agents only: a request signed with the host's Ed25519 key \
                          (docs/agent-protocol.md)."
            .to_owned(),
        Access::Roles(_) => format!("Roles: {}.", access.role_names().join(", ")),
        Access::OwnAccount => {
            "Any operator, also before a one-time password is changed.".to_owned()
        }
    };
    operation.description = Some(match operation.description.take() {
        Some(d) => format!("{d}\n\n{description}"),
        None => description,
    });
}

/// Refuses a request to a route that reached the router without a declaration: the route
/// works for nobody, and the log names it.
async fn guard(
    State(declared): State<Arc<BTreeSet<(String, String)>>>,
    matched: Option<MatchedPath>,
    request: Request,
    next: Next,
) -> Response {
    if let Some(path) = matched {
        // axum answers HEAD with the GET route.
        let method = if request.method() == Method::HEAD {
            Method::GET
        } else {
            request.method().clone()
        };
        if !declared.contains(&(method.as_str().to_owned(), path.as_str().to_owned())) {
            // A declared path with another method is what axum would answer 405 for; a path
            // nobody declared is a route added around the declarations.
            if declared.iter().any(|(_, p)| p == path.as_str()) {
                return ApiError::MethodNotAllowed.into_response();
            }
            tracing::error!(
                method = %method,
                route = path.as_str(),
                "a route without an access declaration was called: refused (declare it in \
                 routes::declared)"
            );
            return ApiError::Forbidden("this route has no access declaration".into())
                .into_response();
        }
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use axum::routing::{get, post};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    async fn status(addr: std::net::SocketAddr, method: &str, path: &str) -> String {
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        let request = format!(
            "{method} {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
        );
        s.write_all(request.as_bytes()).await.unwrap();
        let mut answer = String::new();
        s.read_to_string(&mut answer).await.unwrap();
        answer.split(' ').nth(1).unwrap_or("").to_owned()
    }

    #[tokio::test]
    async fn a_route_added_around_the_declarations_is_refused_for_everyone() {
        let declared = Arc::new(BTreeSet::from([("GET".to_owned(), "/declared".to_owned())]));
        let app: Router = Router::new()
            .route("/declared", get(|| async { "ok" }))
            .route("/sneaked-in", get(|| async { "should never answer" }))
            .route("/declared-too", post(|| async { "should never answer" }))
            .layer(middleware::from_fn_with_state(declared, guard));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move { axum::serve(listener, app).await });
        assert_eq!(status(addr, "GET", "/declared").await, "200");
        assert_eq!(status(addr, "HEAD", "/declared").await, "200");
        assert_eq!(status(addr, "GET", "/sneaked-in").await, "403");
        assert_eq!(status(addr, "POST", "/declared-too").await, "403");
        assert_eq!(status(addr, "POST", "/declared").await, "405");
        server.abort();
    }
}
