//! Prometheus metrics: counters and histograms for check-ins, uploads, matching and job
//! outcomes, served in the text exposition format on the separate metrics listener, so that
//! scraping needs no credential and the API port exposes nothing about the server's insides.

use std::sync::Mutex;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

type Labels = Vec<(&'static str, String)>;

/// The server's metrics.
#[derive(Debug)]
pub struct Metrics {
    registry: Mutex<Registry>,
    pub requests: Family<Labels, Counter>,
    pub request_seconds: Family<Labels, Histogram>,
    pub enrollments: Family<Labels, Counter>,
    pub check_ins: Family<Labels, Counter>,
    pub uploads: Family<Labels, Counter>,
    pub match_seconds: Histogram,
    pub findings_opened: Counter,
    pub findings_closed: Counter,
    pub job_reports: Family<Labels, Counter>,
    pub in_flight: Gauge,
    /// Notifications by channel (`webhook`, `email`) and outcome (`queued`, `delivered`,
    /// `retried`, `failed`).
    pub notifications: Family<Labels, Counter>,
    /// Completed notification sweeps (findings, windows, exceptions).
    pub notification_sweeps: Counter,
}

fn seconds_histogram() -> Histogram {
    // 0.5 ms to about 16 s: a check-in takes milliseconds, a first full match of a large host
    // can take a second.
    Histogram::new(exponential_buckets(0.0005, 2.0, 16))
}

impl Default for Metrics {
    fn default() -> Metrics {
        let mut registry = Registry::with_prefix("patchwarden");
        let requests = Family::<Labels, Counter>::default();
        let request_seconds =
            Family::<Labels, Histogram>::new_with_constructor(seconds_histogram as fn() -> _);
        let enrollments = Family::<Labels, Counter>::default();
        let check_ins = Family::<Labels, Counter>::default();
        let uploads = Family::<Labels, Counter>::default();
        let match_seconds = seconds_histogram();
        let findings_opened = Counter::default();
        let findings_closed = Counter::default();
        let job_reports = Family::<Labels, Counter>::default();
        let in_flight = Gauge::default();
        let notifications = Family::<Labels, Counter>::default();
        let notification_sweeps = Counter::default();
        registry.register(
            "notifications",
            "Notifications by channel and outcome (queued, delivered, retried, failed)",
            notifications.clone(),
        );
        registry.register(
            "notification_sweeps",
            "Completed sweeps for due, breached, window and exception notifications",
            notification_sweeps.clone(),
        );
        registry.register(
            "http_requests",
            "API requests by route and status",
            requests.clone(),
        );
        registry.register(
            "http_request_duration_seconds",
            "API request latency by route",
            request_seconds.clone(),
        );
        registry.register(
            "enrollments",
            "Enrollment attempts by outcome",
            enrollments.clone(),
        );
        registry.register("check_ins", "Agent check-ins by outcome", check_ins.clone());
        registry.register(
            "inventory_uploads",
            "Inventory uploads by kind (full, delta) and outcome",
            uploads.clone(),
        );
        registry.register(
            "match_duration_seconds",
            "Time to match one host's changed packages and sync its findings",
            match_seconds.clone(),
        );
        registry.register(
            "findings_opened",
            "Findings opened",
            findings_opened.clone(),
        );
        registry.register(
            "findings_closed",
            "Findings closed",
            findings_closed.clone(),
        );
        registry.register(
            "job_reports",
            "Job reports from agents by outcome",
            job_reports.clone(),
        );
        registry.register(
            "requests_in_flight",
            "Agent requests being served now",
            in_flight.clone(),
        );
        Metrics {
            registry: Mutex::new(registry),
            requests,
            request_seconds,
            enrollments,
            check_ins,
            uploads,
            match_seconds,
            findings_opened,
            findings_closed,
            job_reports,
            in_flight,
            notifications,
            notification_sweeps,
        }
    }
}

impl Metrics {
    /// The metrics in Prometheus' text format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let registry = self
            .registry
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // Writing into a String cannot fail; an encoding error would mean a bad metric name,
        // which the tests would show.
        let _ = encode(&mut out, &registry);
        out
    }
}

/// One label, for the families above.
pub fn label(name: &'static str, value: impl Into<String>) -> Labels {
    vec![(name, value.into())]
}
