//! Every metric the service exports, declared here with its unit in its name and bounded
//! labels only (route templates, methods, statuses, event and outcome names: never ticket
//! ids, crew ids or phones), and the Prometheus recorder that renders them for `/metrics`.

use metrics::{Unit, counter, describe_counter, describe_gauge, describe_histogram, gauge};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use std::sync::OnceLock;

pub const HTTP_REQUESTS_TOTAL: &str = "dispatch_http_requests_total";
pub const HTTP_REQUEST_DURATION_SECONDS: &str = "dispatch_http_request_duration_seconds";
pub const TICKETS_CREATED_TOTAL: &str = "dispatch_tickets_created_total";
pub const EVENTS_TOTAL: &str = "dispatch_events_total";
pub const ACKNOWLEDGE_TIMEOUTS_TOTAL: &str = "dispatch_acknowledge_timeouts_total";
pub const QUEUED_TICKETS: &str = "dispatch_queued_tickets";
pub const STORE_WRITE_DURATION_SECONDS: &str = "dispatch_store_write_duration_seconds";
pub const STORE_FAILED: &str = "dispatch_store_failed";

/// Kind of a declared metric, for the table below.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
    Histogram,
}

/// Every metric with its kind, labels and help text: what dashboards may reference.
pub const DECLARED: &[(&str, Kind, &[&str], &str)] = &[
    (
        HTTP_REQUESTS_TOTAL,
        Kind::Counter,
        &["route", "method", "status"],
        "HTTP requests answered, by route template, method and status",
    ),
    (
        HTTP_REQUEST_DURATION_SECONDS,
        Kind::Histogram,
        &["route", "method", "status"],
        "Time from request to response, by route template, method and status",
    ),
    (
        TICKETS_CREATED_TOTAL,
        Kind::Counter,
        &["outcome"],
        "Tickets created, by what happened at intake: dispatched, queued or merged",
    ),
    (
        EVENTS_TOTAL,
        Kind::Counter,
        &["event"],
        "Events recorded, by kind",
    ),
    (
        ACKNOWLEDGE_TIMEOUTS_TOTAL,
        Kind::Counter,
        &[],
        "Dispatches that reached their acknowledgement deadline unacknowledged",
    ),
    (
        QUEUED_TICKETS,
        Kind::Gauge,
        &[],
        "Tickets waiting for a free crew",
    ),
    (
        STORE_WRITE_DURATION_SECONDS,
        Kind::Histogram,
        &["durability"],
        "Time from handing a batch to the store to its commit",
    ),
    (
        STORE_FAILED,
        Kind::Gauge,
        &[],
        "1 once a store write failed: writes are refused until a restart",
    ),
];

/// Upper bounds of the latency histograms, seconds: 0.5 ms (a cached read) to 10 s (the
/// default write timeout).
const BUCKETS_SECONDS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the process-wide recorder once and returns its handle; later calls (several
/// services in one test process) share it. If another recorder was installed first, the
/// handle renders an empty page rather than failing the start.
pub fn install() -> PrometheusHandle {
    HANDLE
        .get_or_init(|| {
            let builder = || {
                PrometheusBuilder::new()
                    .set_buckets(BUCKETS_SECONDS)
                    .unwrap_or_else(|_| PrometheusBuilder::new())
            };
            let handle = match builder().install_recorder() {
                Ok(handle) => handle,
                Err(error) => {
                    tracing::warn!(%error, "a metrics recorder is installed already; /metrics will be empty");
                    builder().build_recorder().handle()
                }
            };
            describe();
            handle
        })
        .clone()
}

fn describe() {
    for &(name, kind, _, help) in DECLARED {
        match kind {
            Kind::Counter => describe_counter!(name, Unit::Count, help),
            Kind::Gauge => describe_gauge!(name, help),
            Kind::Histogram => describe_histogram!(name, Unit::Seconds, help),
        }
    }
    gauge!(STORE_FAILED).set(0.0);
}

pub fn http_request(route: &str, method: &str, status: u16, seconds: f64) {
    let labels = [
        ("route", route.to_owned()),
        ("method", method.to_owned()),
        ("status", status.to_string()),
    ];
    counter!(HTTP_REQUESTS_TOTAL, &labels).increment(1);
    metrics::histogram!(HTTP_REQUEST_DURATION_SECONDS, &labels).record(seconds);
}

pub fn ticket_created(outcome: &'static str) {
    counter!(TICKETS_CREATED_TOTAL, "outcome" => outcome).increment(1);
}

pub fn event(name: &'static str) {
    counter!(EVENTS_TOTAL, "event" => name).increment(1);
}

pub fn acknowledge_timeout() {
    counter!(ACKNOWLEDGE_TIMEOUTS_TOTAL).increment(1);
}

pub fn queued_tickets(count: usize) {
    gauge!(QUEUED_TICKETS).set(count as f64);
}

pub fn store_write(durability: &'static str, seconds: f64) {
    metrics::histogram!(STORE_WRITE_DURATION_SECONDS, "durability" => durability).record(seconds);
}

pub fn store_failed() {
    gauge!(STORE_FAILED).set(1.0);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_carry_their_unit() {
        for &(name, kind, labels, _) in DECLARED {
            assert!(name.starts_with("dispatch_"), "{name}");
            match kind {
                Kind::Counter => assert!(name.ends_with("_total"), "{name}"),
                Kind::Histogram => assert!(name.ends_with("_seconds"), "{name}"),
                Kind::Gauge => {}
            }
            for label in labels {
                assert!(
                    !label.contains("id"),
                    "{name} has an unbounded label {label}"
                );
            }
        }
    }

    #[test]
    fn histograms_render_as_histograms() {
        let handle = install();
        http_request("/v1/tickets/{id}", "GET", 200, 0.003);
        let page = handle.render();
        assert!(
            page.contains("dispatch_http_request_duration_seconds_bucket"),
            "{page}"
        );
        assert!(page.contains(r#"route="/v1/tickets/{id}""#), "{page}");
    }
}
