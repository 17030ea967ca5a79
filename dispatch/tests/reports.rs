//! The report endpoints over real HTTP: deadline compliance and reliability indices of a
//! ticket walked through its life on a manual clock, the estimated restoration time, and the
//! query errors (bad times, empty windows, unknown stations, wrong roles) and the default
//! window.

// Tests: a panic is a failed test, and helpers outside #[test] functions unwrap too.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use dispatch::api::wire::rfc3339;
use dispatch::domain::Timestamp;
use dispatch::reports::EtrConfig;
use dispatch::service::{Clock, ManualClock, SystemClock, TicketFilter};
use reqwest::StatusCode;
use serde_json::Value;
use std::sync::Arc;

fn stage<'a>(summary: &'a Value, name: &str) -> &'a Value {
    summary["stages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["stage"] == name)
        .unwrap_or_else(|| panic!("no stage {name} in {summary}"))
}

/// A service whose clock moves only when the test says, and the time it starts at.
async fn app_on_a_manual_clock() -> (Timestamp, Arc<ManualClock>, TestApp) {
    let start = SystemClock.now();
    let clock = Arc::new(ManualClock::new(start));
    let app = TestApp::spawn_on_clock(clock.clone()).await;
    (start, clock, app)
}

/// The SLA summary for the `hours` from `start`, asked as a supervisor.
async fn sla_summary(app: &TestApp, start: Timestamp, hours: i64) -> Value {
    let from = rfc3339(start);
    let to = rfc3339(Timestamp::from_millis(
        start.as_millis() + hours * 3_600_000,
    ));
    let (status, summary) = app
        .get(&format!("/v1/sla/summary?from={from}&to={to}"), SUPERVISOR)
        .await;
    assert_eq!(status, StatusCode::OK, "{summary}");
    summary
}

/// Steps one crew action at the clock's current time.
async fn step(app: &TestApp, ticket: &Value, token: &str, name: &str) {
    app.walk(ticket, token, &[name]).await;
}

async fn station_customers(app: &TestApp) -> u64 {
    let (_, stations) = app.get("/v1/stations", SUPERVISOR).await;
    stations["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == STATION)
        .unwrap()["customers"]
        .as_u64()
        .unwrap()
}

#[tokio::test]
async fn a_walked_ticket_shows_in_the_sla_summary_and_the_reliability_indices() {
    let (start, clock, app) = app_on_a_manual_clock().await;
    // One customer without power at the urban station; the clock moves between steps:
    // report 0 → ack 3 → depart 3 → arrive 43 → restore 103 → return 113 (minutes).
    let ticket = app
        .create(report_at(STATION_LAT, STATION_LON, "no_power"))
        .await;
    let token = app.crew_token_of(&ticket).await;
    clock.advance_minutes(3);
    step(&app, &ticket, &token, "ack").await;
    step(&app, &ticket, &token, "depart").await;
    clock.advance_minutes(40);
    step(&app, &ticket, &token, "arrive").await;
    clock.advance_minutes(60);
    step(&app, &ticket, &token, "restore").await;
    clock.advance_minutes(10);
    step(&app, &ticket, &token, "return").await;

    let from = rfc3339(Timestamp::from_millis(start.as_millis() - 3_600_000));
    let to = rfc3339(Timestamp::from_millis(start.as_millis() + 86_400_000));
    let query = format!("from={from}&to={to}&station_id={STATION}");

    let (status, summary) = app
        .get(&format!("/v1/sla/summary?{query}"), SUPERVISOR)
        .await;
    assert_eq!(status, StatusCode::OK, "{summary}");
    // ack 3 ≤ 5, arrive 43 ≤ 45, restore 60 ≤ 180, return 10 ≤ 30: all met.
    for (name, minutes) in [
        ("acknowledge", 3.0),
        ("arrive", 43.0),
        ("restore", 60.0),
        ("return", 10.0),
    ] {
        let s = stage(&summary, name);
        assert_eq!(
            (s["count"].as_u64(), s["met"].as_u64()),
            (Some(1), Some(1)),
            "{s}"
        );
        assert_eq!(s["breached"], 0, "{s}");
        assert_eq!(s["compliance_percent"], 100.0, "{s}");
        assert_eq!(s["p50_minutes"], minutes, "{s}");
        assert_eq!(s["p90_minutes"], minutes, "{s}");
        assert_eq!(s["by_area_class"][0]["area_class"], "urban");
        assert_eq!(s["by_area_class"][0]["count"], 1);
    }
    let urban = &summary["arrival_average"][0];
    assert_eq!(urban["area_class"], "urban");
    assert_eq!(urban["average_minutes"], 43.0);
    assert_eq!(urban["limit_minutes"], 45);

    let customers = station_customers(&app).await;
    let (status, r) = app.get(&format!("/v1/reliability?{query}"), ADMIN).await;
    assert_eq!(status, StatusCode::OK, "{r}");
    // One customer out from the report to the restoration: 103 minutes.
    // SAIFI = 1 / N; SAIDI = 103 / N; CAIDI = 103; CHI = 103 / 60; period 25 h.
    let n = customers as f64;
    assert_eq!(r["customers_served"], customers);
    assert_eq!(r["customers_interrupted"], 1);
    assert_eq!(r["customer_minutes_interrupted"], 103.0);
    assert_eq!(r["caidi_minutes"], 103.0);
    assert_eq!(r["period_hours"], 25.0);
    let close = |v: &Value, x: f64| (v.as_f64().unwrap() - x).abs() < 1e-3 * x.max(1e-6);
    assert!(close(&r["saifi"], 1.0 / n), "{r}");
    assert!(close(&r["saidi_minutes"], 103.0 / n), "{r}");
    assert!(close(&r["customer_hours_interrupted"], 103.0 / 60.0), "{r}");
    assert!(close(&r["rs"], 1.0 - (103.0 / 60.0) / (n * 25.0)), "{r}");

    // A window that ends before the restoration holds no interruption.
    let early = rfc3339(Timestamp::from_millis(start.as_millis() + 60_000));
    let (_, r) = app
        .get(
            &format!("/v1/reliability?from={from}&to={early}"),
            SUPERVISOR,
        )
        .await;
    assert_eq!(r["customers_interrupted"], 0, "{r}");
    assert_eq!(r["caidi_minutes"], Value::Null);
    assert_eq!(r["rs"], 1.0);
}

#[tokio::test]
async fn an_open_ticket_past_its_deadline_counts_as_breached() {
    let (start, clock, app) = app_on_a_manual_clock().await;
    let ticket = app
        .create(report_at(STATION_LAT, STATION_LON, "no_power"))
        .await;
    let token = app.crew_token_of(&ticket).await;
    step(&app, &ticket, &token, "ack").await;
    step(&app, &ticket, &token, "depart").await;
    // Not there after 50 minutes: the urban arrival deadline (45) has passed.
    clock.advance_minutes(50);
    let summary = sla_summary(&app, start, 2).await;
    let arrive = stage(&summary, "arrive");
    assert_eq!(arrive["breached"], 1, "{arrive}");
    assert_eq!(arrive["open_breached"], 1, "{arrive}");
    assert_eq!(arrive["compliance_percent"], 0.0);
    // An open stage has no duration yet.
    assert_eq!(arrive["p50_minutes"], Value::Null);
    // The restore stage has not started: nothing counted.
    assert_eq!(stage(&summary, "restore")["count"], 0);
}

#[tokio::test]
async fn an_open_ticket_has_an_estimated_restoration_time() {
    let (_, _, app) = app_on_a_manual_clock().await;
    let created = app
        .create(report_at(STATION_LAT, STATION_LON, "no_power"))
        .await;
    let dispatcher = app.dispatcher.as_ref().unwrap();
    let page = dispatcher
        .tickets(&TicketFilter::default(), None, 10)
        .await
        .unwrap();
    let ticket = page
        .items
        .iter()
        .find(|t| t.id.to_string() == created["id"].as_str().unwrap())
        .unwrap();
    let estimates = dispatcher
        .restoration_estimates(std::slice::from_ref(ticket), &EtrConfig::default())
        .await
        .unwrap();
    // Dispatched at once: arrival = dispatch + eta, then the no_power prior of 60 minutes.
    let eta_ms = (ticket.eta_minutes.unwrap() * 60_000.0).round() as i64;
    let expected = ticket.dispatched_at.unwrap().as_millis() + eta_ms + 60 * 60_000;
    assert_eq!(estimates, vec![Some(Timestamp::from_millis(expected))]);

    // The same estimate is what an agent reads on the ticket, to tell the caller.
    let (status, read) = app
        .get(
            &format!("/v1/tickets/{}", created["id"].as_str().unwrap()),
            AGENT,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(read["etr"], rfc3339(Timestamp::from_millis(expected)));
    // A queued or final ticket has none; creation answers without one.
    assert!(created.get("etr").is_none());
}

/// A crew that returns the order of an outage a third party caused says so; the report then
/// gives RS-2 (without external causes) beside RS-1, and the count per cause.
#[tokio::test]
async fn an_outage_returned_as_externally_caused_is_left_out_of_rs_2() {
    let (start, clock, app) = app_on_a_manual_clock().await;
    let ticket = app
        .create(report_at(STATION_LAT, STATION_LON, "area_outage"))
        .await;
    let token = app.crew_token_of(&ticket).await;
    app.walk(&ticket, &token, &["ack", "depart", "arrive"])
        .await;
    clock.advance_minutes(90);
    app.walk(&ticket, &token, &["restore"]).await;
    let path = format!("/v1/tickets/{}/return", id(&ticket));
    let order = |cause: &str| {
        serde_json::json!({"fault_class": "high_voltage", "cause": "excavator cut the cable",
            "ownership": "utility", "outage_cause": cause})
    };
    let (status, body) = app.post(&path, &token, order("typhoon")).await;
    assert_eq!(
        error_code(status, &body, StatusCode::BAD_REQUEST),
        "invalid_field"
    );
    let (status, body) = app.post(&path, &token, order("external")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (_, read) = app
        .get(&format!("/v1/tickets/{}", id(&ticket)), SUPERVISOR)
        .await;
    assert_eq!(read["work_order"]["outage_cause"], "external", "{read}");

    let from = rfc3339(start);
    let to = rfc3339(Timestamp::from_millis(start.as_millis() + 86_400_000));
    let (_, r) = app
        .get(&format!("/v1/reliability?from={from}&to={to}"), SUPERVISOR)
        .await;
    assert!(r["rs"].as_f64().unwrap() < 1.0, "{r}");
    assert_eq!(r["rs_excluding_external"], 1.0, "{r}");
    assert_eq!(r["rs_excluding_supply_limit"], r["rs"], "{r}");
    assert_eq!(
        r["interruptions_by_cause"],
        serde_json::json!({"fault": 0, "planned": 0, "external": 1, "supply_limit": 0})
    );
}

#[tokio::test]
async fn bad_report_queries_are_refused() {
    let app = TestApp::spawn().await;
    let ok = "from=2026-01-01T00:00:00Z&to=2026-02-01T00:00:00Z";
    for path in ["/v1/sla/summary", "/v1/reliability"] {
        for (query, expected, code) in [
            (
                "from=2999-01-01T00:00:00Z",
                StatusCode::BAD_REQUEST,
                "invalid_query",
            ),
            (
                "from=yesterday&to=2026-02-01T00:00:00Z",
                StatusCode::BAD_REQUEST,
                "invalid_query",
            ),
            (
                "from=2026-02-01T00:00:00Z&to=2026-01-01T00:00:00Z",
                StatusCode::BAD_REQUEST,
                "invalid_query",
            ),
            (
                "from=2026-01-01T00:00:00Z&to=2026-01-01T00:00:00Z",
                StatusCode::BAD_REQUEST,
                "invalid_query",
            ),
            (
                &format!("{ok}&station=x"),
                StatusCode::BAD_REQUEST,
                "invalid_query",
            ),
            (
                &format!("{ok}&station_id=nowhere"),
                StatusCode::NOT_FOUND,
                "not_found",
            ),
        ] {
            let (status, body) = app.get(&format!("{path}?{query}"), SUPERVISOR).await;
            assert_eq!(error_code(status, &body, expected), code, "{path}?{query}");
        }
        let (status, body) = app.get(&format!("{path}?{ok}"), AGENT).await;
        assert_eq!(
            error_code(status, &body, StatusCode::FORBIDDEN),
            "forbidden"
        );
        let (status, _) =
            send(app.request(reqwest::Method::GET, &format!("{path}?{ok}"), None)).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        let (status, body) = app.get(&format!("{path}?{ok}"), ADMIN).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    // Without times, the last 24 hours up to now.
    for path in ["/v1/sla/summary", "/v1/reliability"] {
        let (status, body) = app.get(path, SUPERVISOR).await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
    }
    let (_, r) = app.get("/v1/reliability", SUPERVISOR).await;
    assert_eq!(r["period_hours"], 24.0, "{r}");
    let (_, r) = app
        .get("/v1/reliability?to=2026-01-02T00:00:00Z", SUPERVISOR)
        .await;
    assert_eq!(r["period_hours"], 24.0, "{r}");
    // Both are in the OpenAPI document.
    let (_, doc) = send(app.request(reqwest::Method::GET, "/openapi.json", None)).await;
    assert!(doc["paths"]["/v1/sla/summary"]["get"].is_object());
    assert!(doc["paths"]["/v1/reliability"]["get"].is_object());
}

/// Each dispatch has its own acknowledge clock: the one that timed out is a breach, the next
/// crew's acknowledgement in time is met (as `dispatch_sla_total` counts them).
#[tokio::test]
async fn a_timed_out_dispatch_is_an_acknowledge_breach_beside_the_next_crews_ack() {
    let (start, clock, app) = app_on_a_manual_clock().await;
    let ticket = app
        .create(report_at(STATION_LAT, STATION_LON, "no_power"))
        .await;
    // Just past the five minutes: at the deadline itself the crew may still acknowledge.
    clock.advance_minutes(5);
    clock.advance_millis(1);
    app.fire_deadlines().await;
    let (_, redispatched) = app
        .get(&format!("/v1/tickets/{}", id(&ticket)), SUPERVISOR)
        .await;
    assert_eq!(redispatched["state"], "dispatched", "{redispatched}");
    clock.advance_minutes(1);
    let token = app.crew_token_of(&redispatched).await;
    step(&app, &redispatched, &token, "ack").await;

    let summary = sla_summary(&app, start, 1).await;
    let ack = stage(&summary, "acknowledge");
    assert_eq!(ack["count"], 2, "{ack}");
    assert_eq!(ack["met"], 1, "{ack}");
    assert_eq!(ack["breached"], 1, "{ack}");
    assert_eq!(ack["open_breached"], 0, "{ack}");
    assert_eq!(ack["compliance_percent"], 50.0, "{ack}");
    assert_eq!(
        ack["p50_minutes"], 1.0,
        "only the acknowledgement has minutes: {ack}"
    );
}
