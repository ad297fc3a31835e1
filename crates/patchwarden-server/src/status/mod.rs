//! What Patchwarden tells people who are not operators (issue 10, seed 000 6.7.6, seed 002
//! 3.1–3.3 and 3.13): the public status page (`/status`) with the maintenance windows of each
//! service, the freezes and what was patched lately; the form there that reports a problem
//! after maintenance, which becomes an **incident** linked to the change that last touched
//! the service; the operators' side of incidents (the API under `/api/v1/incidents` and the
//! pages under `/incidents`); and the iCalendar feed of windows and freezes (`/calendar.ics`).
//!
//! **What is published** is decided in one place, [`publish`]: service names (the hosts'
//! `application` label) and what their users notice (`impact`), window openings, freezes,
//! and completed changes by number, kind, date and applications, in words made here. Never a
//! host name, an address, a package, a version, a vulnerability id or an operator's free text:
//! each would tell an attacker what runs where and what was vulnerable until when
//! (docs/status-page.md).
//!
//! The report form is public, so it is guarded like the login form: the same same-site
//! check (`web::account::same_origin`), strict size limits, a per-address limit of stored
//! reports (the login limiter's kind, [`crate::login_limit::LoginLimiter`]) and a cap for all
//! addresses together; what a reporter wrote is plain text, escaped wherever it is shown.

pub(crate) mod feed;
pub(crate) mod incidents;
pub(crate) mod page;
pub(crate) mod publish;

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use axum::http::Method;
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};

use crate::access::{Access, INCIDENT_READERS, INCIDENT_RESOLVERS};
use crate::login_limit::LoginLimiter;
use crate::routes::Routes;

/// The `[status]` section of the server's configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StatusConfig {
    /// How far back a reported problem looks for the change that last touched its service.
    pub report_lookback_days: u32,
    /// How many reports one network address may file per `report_window_secs`.
    pub reports_per_address: u32,
    /// How many reports all addresses together may file per `report_window_secs`: a bound on
    /// what many addresses can write.
    pub reports_total: u32,
    pub report_window_secs: u32,
    /// How far back "recently patched" goes, in days.
    pub patched_days: u32,
    /// How far ahead the status page and the feed compute window openings, in days.
    pub horizon_days: u32,
    /// How long the status page's figures are reused before they are computed again, in
    /// seconds (0: every request computes them). The page is public, so a flood of requests
    /// must not become a flood of queries.
    pub cache_secs: u32,
}

impl Default for StatusConfig {
    fn default() -> StatusConfig {
        StatusConfig {
            report_lookback_days: 7,
            reports_per_address: 5,
            reports_total: 500,
            report_window_secs: 3600,
            patched_days: 30,
            horizon_days: 90,
            cache_secs: 30,
        }
    }
}

/// What the status routes keep in memory: the settings, the report limiters and the cached
/// figures of the page.
#[derive(Debug)]
pub(crate) struct StatusRuntime {
    pub(crate) settings: StatusConfig,
    /// Stored reports per address.
    pub(crate) per_address: LoginLimiter,
    /// Stored reports of everyone (one key).
    pub(crate) total: LoginLimiter,
    cached: Mutex<Option<(Instant, Arc<publish::Published>)>>,
}

impl StatusRuntime {
    pub(crate) fn new(settings: StatusConfig) -> StatusRuntime {
        StatusRuntime {
            per_address: LoginLimiter::new(
                settings.reports_per_address,
                settings.report_window_secs,
            ),
            total: LoginLimiter::new(settings.reports_total, settings.report_window_secs),
            settings,
            cached: Mutex::new(None),
        }
    }

    /// The figures computed less than `cache_secs` ago, if any.
    fn cached(&self) -> Option<Arc<publish::Published>> {
        let ttl = Duration::from_secs(u64::from(self.settings.cache_secs));
        let cached = self.cached.lock().unwrap_or_else(PoisonError::into_inner);
        cached
            .as_ref()
            .filter(|(at, _)| at.elapsed() < ttl)
            .map(|(_, p)| p.clone())
    }

    fn keep(&self, published: Arc<publish::Published>) {
        if self.settings.cache_secs > 0 {
            *self.cached.lock().unwrap_or_else(PoisonError::into_inner) =
                Some((Instant::now(), published));
        }
    }
}

impl Default for StatusRuntime {
    fn default() -> StatusRuntime {
        StatusRuntime::new(StatusConfig::default())
    }
}

/// Declares the public status page, its report form, the iCalendar feed and the operators'
/// incident pages. (The incidents' JSON API is declared with the other API routes in
/// `routes::declared`, from [`incidents`].)
pub(crate) fn declare(routes: Routes) -> Routes {
    routes
        .page(
            Access::Open(
                "the public status page: what customers and staff may know about maintenance \
                 without an account (no host names, versions or operator notes)",
            ),
            Method::GET,
            "/status",
            get(page::show),
        )
        .page(
            Access::Open(
                "people without an account report a problem after maintenance; same-site, \
                 size- and rate-limited",
            ),
            Method::POST,
            "/status/report",
            post(page::report),
        )
        .page(
            Access::Open(
                "the maintenance calendar for calendar clients, which cannot log in; it holds \
                 what the public status page already shows",
            ),
            Method::GET,
            "/calendar.ics",
            get(feed::calendar),
        )
        .page(
            Access::Roles(INCIDENT_READERS),
            Method::GET,
            "/incidents",
            get(incidents::list_page),
        )
        .page(
            Access::Roles(INCIDENT_READERS),
            Method::GET,
            "/incidents/{id}",
            get(incidents::show_page),
        )
        .page(
            Access::Roles(INCIDENT_RESOLVERS),
            Method::POST,
            "/incidents/{id}/resolve",
            post(incidents::resolve_page),
        )
}
