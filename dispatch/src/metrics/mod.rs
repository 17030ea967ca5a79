//! Every metric the service exports, declared here with its unit in its name and bounded
//! labels only (route templates, methods, statuses, event and outcome names: never ticket
//! ids, crew ids or phones), and the Prometheus recorder that renders them for `/metrics`.

mod observe;

pub use observe::{Interval, Observation, observe};

use crate::domain::{CrewStatus, Event, Ticket, TicketState};
use crate::engine::Census;
use metrics::{
    Unit, counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram,
};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use std::sync::OnceLock;

pub const HTTP_REQUESTS_TOTAL: &str = "dispatch_http_requests_total";
pub const HTTP_REQUEST_DURATION_SECONDS: &str = "dispatch_http_request_duration_seconds";
pub const TICKETS_TOTAL: &str = "dispatch_tickets_total";
pub const EVENTS_TOTAL: &str = "dispatch_events_total";
pub const REASSIGNMENTS_TOTAL: &str = "dispatch_reassignments_total";
pub const SLA_TOTAL: &str = "dispatch_sla_total";
pub const SLA_WARNINGS_TOTAL: &str = "dispatch_sla_warnings_total";
pub const CREW_PINGS_TOTAL: &str = "dispatch_crew_pings_total";
pub const REPORT_TO_DISPATCH_SECONDS: &str = "dispatch_report_to_dispatch_seconds";
pub const DISPATCH_TO_ACKNOWLEDGE_SECONDS: &str = "dispatch_dispatch_to_acknowledge_seconds";
pub const REPORT_TO_ARRIVAL_SECONDS: &str = "dispatch_report_to_arrival_seconds";
pub const ARRIVAL_TO_RESTORATION_SECONDS: &str = "dispatch_arrival_to_restoration_seconds";
pub const RESTORATION_TO_RETURN_SECONDS: &str = "dispatch_restoration_to_return_seconds";
pub const ENGINE_DECISION_SECONDS: &str = "dispatch_engine_decision_seconds";
pub const OPEN_TICKETS: &str = "dispatch_open_tickets";
pub const QUEUED_TICKETS: &str = "dispatch_queued_tickets";
pub const OLDEST_QUEUED_AGE_SECONDS: &str = "dispatch_oldest_queued_age_seconds";
pub const CREWS: &str = "dispatch_crews";
pub const LAST_EVENT_TIMESTAMP_SECONDS: &str = "dispatch_last_event_timestamp_seconds";
pub const EVENT_STREAM_CLIENTS: &str = "dispatch_event_stream_clients";
pub const STORE_WRITE_DURATION_SECONDS: &str = "dispatch_store_write_duration_seconds";
pub const STORE_FAILED: &str = "dispatch_store_failed";
pub const DECIDES: &str = "dispatch_decides";
pub const STORM_MODE: &str = "dispatch_storm_mode";
pub const BACKUPS_TOTAL: &str = "dispatch_backups_total";
pub const LAST_BACKUP_TIMESTAMP_SECONDS: &str = "dispatch_last_backup_timestamp_seconds";
pub const RECOVERED_STATE_PROBLEMS: &str = "dispatch_recovered_state_problems";

/// Kind of a declared metric, for the table below.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
    Histogram,
}

/// The labels of the ticket-interval histograms: all bounded by the region (its stations)
/// and the code (classes).
const TICKET_LABELS: &[&str] = &["area_class", "category_class", "station"];

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
        TICKETS_TOTAL,
        Kind::Counter,
        &["category", "outcome"],
        "Tickets by intake category and outcome: dispatched, queued or merged when created, \
         cancelled when cancelled",
    ),
    (
        EVENTS_TOTAL,
        Kind::Counter,
        &["event"],
        "Events recorded, by kind",
    ),
    (
        REASSIGNMENTS_TOTAL,
        Kind::Counter,
        &["reason"],
        "Jobs taken from a crew and sent on: rejected, or acknowledge_timeout",
    ),
    (
        SLA_TOTAL,
        Kind::Counter,
        &["stage", "area_class", "result"],
        "SLA stages ended, by stage, area class and result (met, or breached when the limit \
         passed); acknowledge once per dispatch, a timed-out dispatch breached",
    ),
    (
        SLA_WARNINGS_TOTAL,
        Kind::Counter,
        &["stage", "level"],
        "SLA warnings recorded, by stage and level (the share of the limit run)",
    ),
    (
        CREW_PINGS_TOTAL,
        Kind::Counter,
        &["outcome"],
        "Crew position pings: accepted, or stale (not newer than the last fix)",
    ),
    (
        REPORT_TO_DISPATCH_SECONDS,
        Kind::Histogram,
        TICKET_LABELS,
        "Report to first dispatch, queue wait included",
    ),
    (
        DISPATCH_TO_ACKNOWLEDGE_SECONDS,
        Kind::Histogram,
        TICKET_LABELS,
        "Dispatch to the crew's acknowledgement",
    ),
    (
        REPORT_TO_ARRIVAL_SECONDS,
        Kind::Histogram,
        TICKET_LABELS,
        "Report to the crew's arrival on site (the arrival commitment's clock)",
    ),
    (
        ARRIVAL_TO_RESTORATION_SECONDS,
        Kind::Histogram,
        TICKET_LABELS,
        "Arrival on site to power restored",
    ),
    (
        RESTORATION_TO_RETURN_SECONDS,
        Kind::Histogram,
        TICKET_LABELS,
        "Power restored to the work order returned",
    ),
    (
        ENGINE_DECISION_SECONDS,
        Kind::Histogram,
        &["command"],
        "Time the engine takes to decide one command, lock held",
    ),
    (
        OPEN_TICKETS,
        Kind::Gauge,
        &["state"],
        "Open tickets by state (queued to returned)",
    ),
    (
        QUEUED_TICKETS,
        Kind::Gauge,
        &[],
        "Tickets waiting for a free crew",
    ),
    (
        OLDEST_QUEUED_AGE_SECONDS,
        Kind::Gauge,
        &[],
        "Time since the report of the longest-waiting queued ticket; 0 when none waits",
    ),
    (
        CREWS,
        Kind::Gauge,
        &["state"],
        "Crews by state: off_duty, available, assigned, unresponsive",
    ),
    (
        LAST_EVENT_TIMESTAMP_SECONDS,
        Kind::Gauge,
        &[],
        "Unix time of the latest event recorded; 0 before the first, and on an instance that \
         does not decide",
    ),
    (
        EVENT_STREAM_CLIENTS,
        Kind::Gauge,
        &[],
        "Clients connected to /v1/events",
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
        "1 once a store write failed: writes are refused until memory is rebuilt (a restart, \
         or by itself with a shared store)",
    ),
    (
        RECOVERED_STATE_PROBLEMS,
        Kind::Gauge,
        &[],
        "Invariants the state rebuilt from the store broke at the last rebuild (a crew with two \
         jobs, a dispatched ticket without its crew, …): 0 when sound; the log names each",
    ),
    (
        BACKUPS_TOTAL,
        Kind::Counter,
        &["result"],
        "Backups of the embedded store asked for, by result: written, or failed",
    ),
    (
        LAST_BACKUP_TIMESTAMP_SECONDS,
        Kind::Gauge,
        &[],
        "Unix time of the newest backup in the store's backups directory, read from the \
         backups' names when scraped; 0 when there is none",
    ),
    (
        STORM_MODE,
        Kind::Gauge,
        &[],
        "1 while storm mode is on: waiting tickets are assigned to free crews together (the \
         batch policy) instead of one by one",
    ),
    (
        DECIDES,
        Kind::Gauge,
        &[],
        "1 when this instance decides for its region (always with the embedded store; the \
         lease holder with a shared one). Only that instance reports the engine's gauges and \
         records counters and histograms; the others report 0, so sums over instances hold",
    ),
];

/// Upper bounds of the request latency histograms, seconds: 0.5 ms (a cached read) to 10 s
/// (the default write timeout).
const BUCKETS_SECONDS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Upper bounds of a ticket's intervals, seconds: a second to a day, with the default
/// limits (5, 30, 45, 90, 120 min; 3 and 4 h) on bucket edges so compliance reads off them.
const TICKET_BUCKETS_SECONDS: &[f64] = &[
    1.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 900.0, 1800.0, 2700.0, 3600.0, 5400.0, 7200.0,
    10800.0, 14400.0, 21600.0, 43200.0, 86400.0,
];

/// Upper bounds of the engine's decision time, seconds: a microsecond to 50 ms.
const DECISION_BUCKETS_SECONDS: &[f64] = &[
    0.000_001,
    0.000_002_5,
    0.000_005,
    0.000_01,
    0.000_025,
    0.000_05,
    0.000_1,
    0.000_25,
    0.000_5,
    0.001,
    0.005,
    0.01,
    0.05,
];

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

fn builder() -> Result<PrometheusBuilder, metrics_exporter_prometheus::BuildError> {
    let mut builder = PrometheusBuilder::new().set_buckets(BUCKETS_SECONDS)?;
    for name in [
        REPORT_TO_DISPATCH_SECONDS,
        DISPATCH_TO_ACKNOWLEDGE_SECONDS,
        REPORT_TO_ARRIVAL_SECONDS,
        ARRIVAL_TO_RESTORATION_SECONDS,
        RESTORATION_TO_RETURN_SECONDS,
    ] {
        builder =
            builder.set_buckets_for_metric(Matcher::Full(name.into()), TICKET_BUCKETS_SECONDS)?;
    }
    builder.set_buckets_for_metric(
        Matcher::Full(ENGINE_DECISION_SECONDS.into()),
        DECISION_BUCKETS_SECONDS,
    )
}

/// Installs the process-wide recorder once and returns its handle; later calls (several
/// services in one test process) share it. If another recorder was installed first, the
/// handle renders an empty page rather than failing the start.
pub fn install() -> PrometheusHandle {
    HANDLE
        .get_or_init(|| {
            // The buckets are constants, non-empty: building cannot fail, and if it ever
            // did, summaries instead of histograms would still be a working /metrics.
            let builder = || builder().unwrap_or_else(|_| PrometheusBuilder::new());
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
    gauge!(EVENT_STREAM_CLIENTS).set(0.0);
    // The backup alert reads `increase()` of failures, which misses a series' first sample.
    for result in ["written", "failed"] {
        counter!(BACKUPS_TOTAL, "result" => result).increment(0);
    }
    // A counter's series appears at its first increment, and `increase()` cannot see that
    // first one: the first breach after a restart would go unalerted. Start the series that
    // alerts read at zero.
    for stage in crate::domain::SlaStage::ALL {
        for class in crate::domain::AreaClass::ALL {
            for result in ["met", "breached"] {
                counter!(
                    SLA_TOTAL,
                    "stage" => stage.as_str(),
                    "area_class" => class.as_str(),
                    "result" => result,
                )
                .increment(0);
            }
        }
    }
    for reason in ["rejected", "acknowledge_timeout"] {
        counter!(REASSIGNMENTS_TOTAL, "reason" => reason).increment(0);
    }
}

pub fn http_request(route: &str, method: &str, status: u16, seconds: f64) {
    let labels = [
        ("route", route.to_owned()),
        ("method", method.to_owned()),
        ("status", status.to_string()),
    ];
    counter!(HTTP_REQUESTS_TOTAL, &labels).increment(1);
    histogram!(HTTP_REQUEST_DURATION_SECONDS, &labels).record(seconds);
}

/// A new ticket and what intake did with it (`dispatched`, `queued` or `merged`).
pub fn ticket_created(category: &'static str, outcome: &'static str) {
    counter!(TICKETS_TOTAL, "category" => category, "outcome" => outcome).increment(1);
}

/// One recorded event: its count, and what [`observe`] made of it for `ticket`.
pub fn record(event: &Event, ticket: Option<&Ticket>, observations: &[Observation]) {
    counter!(EVENTS_TOTAL, "event" => event.kind.name()).increment(1);
    let Some(ticket) = ticket else {
        return;
    };
    let area_class = ticket.area_class.as_str();
    for observation in observations {
        match *observation {
            Observation::Interval { interval, seconds } => {
                let name = match interval {
                    Interval::ReportToDispatch => REPORT_TO_DISPATCH_SECONDS,
                    Interval::DispatchToAcknowledge => DISPATCH_TO_ACKNOWLEDGE_SECONDS,
                    Interval::ReportToArrival => REPORT_TO_ARRIVAL_SECONDS,
                    Interval::ArrivalToRestoration => ARRIVAL_TO_RESTORATION_SECONDS,
                    Interval::RestorationToReturn => RESTORATION_TO_RETURN_SECONDS,
                };
                histogram!(
                    name,
                    "area_class" => area_class,
                    "category_class" => ticket.report.category.class(),
                    "station" => ticket.station.to_string(),
                )
                .record(seconds);
            }
            Observation::Sla { stage, met } => counter!(
                SLA_TOTAL,
                "stage" => stage.as_str(),
                "area_class" => area_class,
                "result" => if met { "met" } else { "breached" },
            )
            .increment(1),
            Observation::Warning { stage, level } => counter!(
                SLA_WARNINGS_TOTAL,
                "stage" => stage.as_str(),
                "level" => format!("{}", level.fraction()),
            )
            .increment(1),
            Observation::Reassignment(reason) => {
                counter!(REASSIGNMENTS_TOTAL, "reason" => reason).increment(1);
            }
            Observation::Outcome(outcome) => counter!(
                TICKETS_TOTAL,
                "category" => ticket.report.category.as_str(),
                "outcome" => outcome,
            )
            .increment(1),
        }
    }
}

/// The engine took `seconds` to decide a `command` (`report`, `ticket_step`, `crew_duty`,
/// `crew_position` or `fire_deadlines`).
pub fn engine_decision(command: &'static str, seconds: f64) {
    histogram!(ENGINE_DECISION_SECONDS, "command" => command).record(seconds);
}

/// A crew's position ping: taken, or dropped as not newer than the last fix.
pub fn crew_ping(accepted: bool) {
    let outcome = if accepted { "accepted" } else { "stale" };
    counter!(CREW_PINGS_TOTAL, "outcome" => outcome).increment(1);
}

/// What the gauges show, read from the engine when `/metrics` is scraped (so an age keeps
/// growing between events, and the write path never pays for them).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Gauges {
    pub census: Census,
    pub queued: usize,
    pub oldest_queued_age_seconds: f64,
    /// Unix seconds of the latest event; `None` before the first.
    pub last_event_seconds: Option<f64>,
    /// Whether this instance decides for its region.
    pub decides: bool,
    /// Whether storm mode is on.
    pub storm: bool,
    /// Unix seconds of the newest backup; `None` before the first.
    pub last_backup_seconds: Option<f64>,
}

pub fn set_gauges(gauges: &Gauges) {
    for state in TicketState::ALL {
        if !state.is_final() {
            gauge!(OPEN_TICKETS, "state" => state.as_str())
                .set(gauges.census.tickets[state.index()] as f64);
        }
    }
    for (name, count) in CrewStatus::NAMES.iter().zip(gauges.census.crews) {
        gauge!(CREWS, "state" => *name).set(count as f64);
    }
    gauge!(QUEUED_TICKETS).set(gauges.queued as f64);
    gauge!(OLDEST_QUEUED_AGE_SECONDS).set(gauges.oldest_queued_age_seconds);
    gauge!(LAST_EVENT_TIMESTAMP_SECONDS).set(gauges.last_event_seconds.unwrap_or(0.0));
    gauge!(DECIDES).set(if gauges.decides { 1.0 } else { 0.0 });
    gauge!(STORM_MODE).set(if gauges.storm { 1.0 } else { 0.0 });
    gauge!(LAST_BACKUP_TIMESTAMP_SECONDS).set(gauges.last_backup_seconds.unwrap_or(0.0));
}

/// A backup was asked for: `written` or not.
pub fn backup(written: bool) {
    let result = if written { "written" } else { "failed" };
    counter!(BACKUPS_TOTAL, "result" => result).increment(1);
}

/// A client connected to (`+1`) or left (`-1`) the event stream.
pub fn event_stream_clients(delta: f64) {
    gauge!(EVENT_STREAM_CLIENTS).increment(delta);
}

pub fn store_write(durability: &'static str, seconds: f64) {
    histogram!(STORE_WRITE_DURATION_SECONDS, "durability" => durability).record(seconds);
}

pub fn store_failed() {
    gauge!(STORE_FAILED).set(1.0);
}

/// Memory was rebuilt from the store (start-up, or a shared store's heal), breaking
/// `problems` invariants.
pub fn state_rebuilt(problems: usize) {
    gauge!(RECOVERED_STATE_PROBLEMS).set(problems as f64);
}

/// Memory was rebuilt from a shared store after a failure: writes are accepted again.
pub fn store_recovered() {
    gauge!(STORE_FAILED).set(0.0);
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
