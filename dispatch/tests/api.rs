//! The v1 contract over real HTTP on loopback: a ticket's whole life, every error code with
//! its body, the authorization matrix, idempotency, datums, listings, operations endpoints,
//! and a graceful restart that keeps everything.

// Tests: a panic is a failed test, and helpers outside #[test] functions unwrap too.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

fn events(ticket: &Value) -> Vec<String> {
    ticket["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn a_ticket_lives_from_report_to_close_and_its_timeline_says_so() {
    let app = TestApp::spawn().await;
    let created = app
        .create(report_at(STATION_LAT, STATION_LON, "no_power"))
        .await;
    assert_eq!(created["state"], "dispatched");
    assert_eq!(created["station_id"], STATION);
    assert!(created["crew_id"].is_string());
    assert!(created["incident_id"].is_string());
    assert!(created["eta_minutes"].as_f64().unwrap() >= 0.0);
    assert!(created["deadlines"]["acknowledge_by"].is_string());
    assert!(created["deadlines"]["arrive_by"].is_string());
    // Ticket ids are UUID v7.
    assert_eq!(
        uuid::Uuid::parse_str(id(&created))
            .unwrap()
            .get_version_num(),
        7
    );

    let token = app.crew_token_of(&created).await;
    app.walk(
        &created,
        &token,
        &["ack", "depart", "arrive", "restore", "return"],
    )
    .await;
    let (status, closed) = app
        .post(
            &format!("/v1/tickets/{}/close", id(&created)),
            AGENT,
            json!({"callback": {"satisfied": true, "note": "thanks"}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{closed}");
    assert_eq!(closed["state"], "closed");

    let (status, ticket) = app
        .get(&format!("/v1/tickets/{}", id(&created)), AGENT)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(ticket["state"], "closed");
    assert_eq!(ticket["caller"]["phone"], "13800001234");
    assert_eq!(ticket["work_order"]["fault_class"], "low_voltage");
    assert_eq!(ticket["callback"]["satisfied"], true);
    assert_eq!(
        events(&ticket),
        [
            "reported",
            "dispatched",
            "acknowledged",
            "departed",
            "arrived",
            "restored",
            "returned",
            "closed"
        ]
    );
    let timeline = ticket["timeline"].as_array().unwrap();
    let times: Vec<jiff::Timestamp> = timeline
        .iter()
        .map(|e| e["at"].as_str().unwrap().parse().unwrap())
        .collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "{times:?}");
    let crew = created["crew_id"].as_str().unwrap();
    assert_eq!(timeline[0]["actor"], "agent");
    assert_eq!(timeline[1]["actor"], "system");
    assert_eq!(timeline[1]["crew_id"], crew);
    assert_eq!(timeline[2]["actor"], format!("crew:{crew}"));
    assert_eq!(timeline[7]["actor"], "agent");
    // The crew is free again.
    let (_, crews) = app.get("/v1/crews", SUPERVISOR).await;
    let record = crews["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == crew)
        .unwrap();
    assert_eq!(record["state"], "available");
}

#[tokio::test]
async fn a_repeat_report_is_merged_into_the_open_incident_without_a_second_crew() {
    let app = TestApp::spawn().await;
    let first = app
        .create(report_at(STATION_LAT, STATION_LON, "area_outage"))
        .await;
    let second = app
        .create(report_at(STATION_LAT + 0.0005, STATION_LON, "no_power"))
        .await;
    assert_eq!(second["state"], "merged");
    assert_eq!(second["incident_id"], first["incident_id"]);
    assert!(second["crew_id"].is_null());

    // A caller who rings back is told how the repair of their fault goes, to the end.
    let app = &app;
    let read = |ticket: &Value| {
        let path = format!("/v1/tickets/{}", id(ticket));
        async move { app.get(&path, AGENT).await.1 }
    };
    let repeat = read(&second).await;
    assert_eq!(repeat["first_report"]["ticket_id"], first["id"], "{repeat}");
    assert_eq!(repeat["first_report"]["state"], "dispatched");
    assert_eq!(repeat["first_report"]["crew_id"], first["crew_id"]);
    assert!(read(&first).await.get("first_report").is_none());
    let token = app.crew_token_of(&first).await;
    app.walk(&first, &token, &["ack", "depart", "arrive", "restore"])
        .await;
    let repeat = read(&second).await;
    assert_eq!(repeat["state"], "merged");
    assert_eq!(repeat["first_report"]["state"], "restored", "{repeat}");
    let restored = read(&first).await;
    assert!(repeat["first_report"]["restored_at"].is_string());
    assert!(repeat["first_report"]["arrived_at"].is_string());
    assert_eq!(
        repeat["first_report"]["restored_at"], restored["timeline"][5]["at"],
        "{restored}"
    );
}

#[tokio::test]
async fn a_rejected_job_goes_to_another_crew() {
    let app = TestApp::spawn().await;
    let created = app.create(report()).await;
    let token = app.crew_token_of(&created).await;
    let (status, after) = app
        .post(
            &format!("/v1/tickets/{}/reject", id(&created)),
            &token,
            json!({"reason": "vehicle broke down"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{after}");
    assert_eq!(after["state"], "dispatched");
    assert_ne!(after["crew_id"], created["crew_id"]);
    let (_, ticket) = app
        .get(&format!("/v1/tickets/{}", id(&created)), SUPERVISOR)
        .await;
    assert_eq!(
        events(&ticket),
        ["reported", "dispatched", "declined", "dispatched"]
    );
    assert_eq!(
        ticket["timeline"][2]["reason"],
        "rejected: vehicle broke down"
    );
    // The crew that rejected it no longer reads it.
    let (status, _) = app
        .get(&format!("/v1/tickets/{}", id(&created)), &token)
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn cancelling_frees_the_crew() {
    let app = TestApp::spawn().await;
    let created = app.create(report()).await;
    let (status, cancelled) = app
        .post(
            &format!("/v1/tickets/{}/cancel", id(&created)),
            SUPERVISOR,
            json!({"reason": "caller found the breaker off"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{cancelled}");
    assert_eq!(cancelled["state"], "cancelled");
    let crew = created["crew_id"].as_str().unwrap();
    let (_, jobs) = app.get(&format!("/v1/crews/{crew}/jobs"), SUPERVISOR).await;
    assert_eq!(jobs["items"], json!([]));
}

#[tokio::test]
async fn a_first_report_with_repeats_waiting_is_cancelled_only_with_them() {
    let app = TestApp::spawn().await;
    let first = app
        .create(report_at(STATION_LAT, STATION_LON, "no_power"))
        .await;
    let repeat = app
        .create(report_at(STATION_LAT + 0.0005, STATION_LON, "no_power"))
        .await;
    assert_eq!(repeat["state"], "merged");
    let cancel = format!("/v1/tickets/{}/cancel", id(&first));
    let (status, refused) = app
        .post(
            &cancel,
            AGENT,
            json!({"reason": "caller found the breaker off"}),
        )
        .await;
    assert_eq!(
        error_code(status, &refused, StatusCode::CONFLICT),
        "incident_has_repeats"
    );
    let (_, unchanged) = app
        .get(&format!("/v1/tickets/{}", id(&first)), SUPERVISOR)
        .await;
    assert_eq!(unchanged["state"], "dispatched");
    assert_eq!(events(&unchanged), ["reported", "dispatched"]);

    let (status, cancelled) = app
        .post(
            &cancel,
            SUPERVISOR,
            json!({"reason": "planned outage, announced", "with_repeats": true}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{cancelled}");
    assert_eq!(cancelled["state"], "cancelled");
    let (_, repeat) = app
        .get(&format!("/v1/tickets/{}", id(&repeat)), SUPERVISOR)
        .await;
    assert_eq!(repeat["state"], "cancelled");
    assert_eq!(events(&repeat), ["reported", "merged", "cancelled"]);
    let crew = first["crew_id"].as_str().unwrap();
    let (_, jobs) = app.get(&format!("/v1/crews/{crew}/jobs"), SUPERVISOR).await;
    assert_eq!(jobs["items"], json!([]));
}

mod errors {
    use super::*;

    async fn create_raw(app: &TestApp, body: &str) -> (StatusCode, Value) {
        send(
            app.request(Method::POST, "/v1/tickets", Some(AGENT))
                .header("content-type", "application/json")
                .body(body.to_owned()),
        )
        .await
    }

    async fn ticket_count(app: &TestApp) -> usize {
        let (_, list) = app.get("/v1/tickets?limit=500", AGENT).await;
        list["items"].as_array().unwrap().len()
    }

    #[tokio::test]
    async fn every_error_code_of_the_contract_with_its_body_and_nothing_changes() {
        let app = TestApp::spawn().await;
        let ticket = app.create(report()).await;
        let (_, before) = app
            .get(&format!("/v1/tickets/{}", id(&ticket)), AGENT)
            .await;

        // 400: malformed JSON, unknown field, missing field, NaN, out of range, too long.
        let (status, body) = create_raw(&app, r#"{"caller": {"name": "x""#).await;
        assert_eq!(
            error_code(status, &body, StatusCode::BAD_REQUEST),
            "malformed_json"
        );
        let mut unknown = report();
        unknown["colour"] = json!("red");
        let (status, body) = app.post("/v1/tickets", AGENT, unknown).await;
        assert_eq!(
            error_code(status, &body, StatusCode::BAD_REQUEST),
            "invalid_field"
        );
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("colour")
        );
        let mut missing = report();
        missing.as_object_mut().unwrap().remove("location");
        let (status, body) = app.post("/v1/tickets", AGENT, missing).await;
        assert_eq!(
            error_code(status, &body, StatusCode::BAD_REQUEST),
            "invalid_field"
        );
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("location")
        );
        let nan = report()
            .to_string()
            .replace(&format!("\"lat\":{STATION_LAT}"), "\"lat\":NaN");
        assert!(nan.contains("NaN"));
        let (status, body) = create_raw(&app, &nan).await;
        assert_eq!(
            error_code(status, &body, StatusCode::BAD_REQUEST),
            "malformed_json"
        );
        let mut far = report();
        far["location"]["lat"] = json!(95.0);
        let (status, body) = app.post("/v1/tickets", AGENT, far).await;
        assert_eq!(
            error_code(status, &body, StatusCode::BAD_REQUEST),
            "invalid_field"
        );
        let mut long = report();
        long["address"] = json!("长".repeat(501));
        let (status, body) = app.post("/v1/tickets", AGENT, long).await;
        assert_eq!(
            error_code(status, &body, StatusCode::BAD_REQUEST),
            "invalid_field"
        );
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("address")
        );
        let mut category = report();
        category["category"] = json!("meteor_strike");
        let (status, body) = app.post("/v1/tickets", AGENT, category).await;
        assert_eq!(
            error_code(status, &body, StatusCode::BAD_REQUEST),
            "invalid_field"
        );
        let (status, body) = app.get("/v1/tickets?limit=0", AGENT).await;
        assert_eq!(
            error_code(status, &body, StatusCode::BAD_REQUEST),
            "invalid_query"
        );
        let (status, body) = app.get("/v1/tickets?colour=red", AGENT).await;
        assert_eq!(
            error_code(status, &body, StatusCode::BAD_REQUEST),
            "invalid_query"
        );

        // 401: no token, an unknown token, another scheme.
        let (status, body) = send(app.request(Method::GET, "/v1/tickets", None)).await;
        assert_eq!(
            error_code(status, &body, StatusCode::UNAUTHORIZED),
            "unauthorized"
        );
        let (status, body) = app.get("/v1/tickets", "not-a-real-token-at-all").await;
        assert_eq!(
            error_code(status, &body, StatusCode::UNAUTHORIZED),
            "unauthorized"
        );
        let (status, body) = send(
            app.request(Method::GET, "/v1/tickets", None)
                .header("authorization", format!("Basic {AGENT}")),
        )
        .await;
        assert_eq!(
            error_code(status, &body, StatusCode::UNAUTHORIZED),
            "unauthorized"
        );

        // 403: an agent cannot ack; a crew cannot create tickets.
        let path = format!("/v1/tickets/{}", id(&ticket));
        let (status, body) = app.post(&format!("{path}/ack"), AGENT, json!({})).await;
        assert_eq!(
            error_code(status, &body, StatusCode::FORBIDDEN),
            "forbidden"
        );
        let crew_token = app.crew_token_of(&ticket).await;
        let (status, body) = app.post("/v1/tickets", &crew_token, report()).await;
        assert_eq!(
            error_code(status, &body, StatusCode::FORBIDDEN),
            "forbidden"
        );

        // 404: an unknown ticket, an unknown crew, an unknown route.
        let (status, body) = app
            .get("/v1/tickets/0190b6c8-0000-7000-8000-000000000000", AGENT)
            .await;
        assert_eq!(
            error_code(status, &body, StatusCode::NOT_FOUND),
            "not_found"
        );
        let (status, body) = app
            .post(
                "/v1/admin/crew-tokens",
                ADMIN,
                json!({"crew_id": "no-such-crew"}),
            )
            .await;
        assert_eq!(
            error_code(status, &body, StatusCode::NOT_FOUND),
            "not_found"
        );
        let (status, body) = app.get("/v1/nothing-here", AGENT).await;
        assert_eq!(
            error_code(status, &body, StatusCode::NOT_FOUND),
            "not_found"
        );

        // 405 as JSON too.
        let (status, body) = send(app.request(Method::DELETE, "/v1/tickets", Some(AGENT))).await;
        assert_eq!(
            error_code(status, &body, StatusCode::METHOD_NOT_ALLOWED),
            "method_not_allowed"
        );

        // 409: out of order (arrive before ack), close before return.
        let (status, body) = app
            .post(&format!("{path}/arrive"), &crew_token, json!({}))
            .await;
        assert_eq!(
            error_code(status, &body, StatusCode::CONFLICT),
            "wrong_state"
        );
        let (status, body) = app
            .post(
                &format!("{path}/close"),
                AGENT,
                json!({"callback": {"satisfied": true}}),
            )
            .await;
        assert_eq!(
            error_code(status, &body, StatusCode::CONFLICT),
            "wrong_state"
        );
        // A return without its required fields is a 400, whatever the state.
        let (status, body) = app
            .post(
                &format!("{path}/return"),
                &crew_token,
                json!({"cause": "x"}),
            )
            .await;
        assert_eq!(
            error_code(status, &body, StatusCode::BAD_REQUEST),
            "invalid_field"
        );

        // 413: a body over 64 KiB.
        let mut huge = report();
        huge["description"] = json!("x".repeat(70 * 1024));
        let (status, body) = app.post("/v1/tickets", AGENT, huge).await;
        assert_eq!(
            error_code(status, &body, StatusCode::PAYLOAD_TOO_LARGE),
            "payload_too_large"
        );

        // 415: not JSON.
        let (status, body) = send(
            app.request(Method::POST, "/v1/tickets", Some(AGENT))
                .header("content-type", "text/plain")
                .body(report().to_string()),
        )
        .await;
        assert_eq!(
            error_code(status, &body, StatusCode::UNSUPPORTED_MEDIA_TYPE),
            "unsupported_media_type"
        );

        // 422: outside every service area (Beijing); an idempotency conflict.
        let (status, body) = app
            .post("/v1/tickets", AGENT, report_at(39.9, 116.4, "no_power"))
            .await;
        assert_eq!(
            error_code(status, &body, StatusCode::UNPROCESSABLE_ENTITY),
            "outside_service_area"
        );
        let keyed = |body: Value| {
            app.request(Method::POST, "/v1/tickets", Some(AGENT))
                .header("idempotency-key", "conflict-1")
                .json(&body)
        };
        let (status, _) = send(keyed(report())).await;
        assert_eq!(status, StatusCode::CREATED);
        let (status, body) = send(keyed(report_at(STATION_LAT, STATION_LON, "meter"))).await;
        assert_eq!(
            error_code(status, &body, StatusCode::UNPROCESSABLE_ENTITY),
            "idempotency_conflict"
        );

        // Nothing changed: two tickets (the first and the keyed one), the first as it was.
        assert_eq!(ticket_count(&app).await, 2);
        let (_, after) = app.get(&path, AGENT).await;
        assert_eq!(after, before);
    }

    #[tokio::test]
    async fn error_bodies_are_json_with_a_json_content_type() {
        let app = TestApp::spawn().await;
        let response = app
            .request(Method::GET, "/v1/tickets", None)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(response.headers()["content-type"], "application/json");
        assert_eq!(response.headers()["www-authenticate"], "Bearer");
    }

    #[tokio::test]
    async fn a_crew_going_off_duty_with_a_job_is_refused() {
        let app = TestApp::spawn().await;
        let ticket = app.create(report()).await;
        let token = app.crew_token_of(&ticket).await;
        let crew = ticket["crew_id"].as_str().unwrap();
        let (status, body) = app
            .post(
                &format!("/v1/crews/{crew}/duty"),
                &token,
                json!({"on_duty": false}),
            )
            .await;
        assert_eq!(
            error_code(status, &body, StatusCode::CONFLICT),
            "crew_has_job"
        );
    }
}

mod authorization {
    use super::*;

    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum Caller {
        Nobody,
        Agent,
        Supervisor,
        Admin,
        /// The crew of the row's ticket.
        OwnCrew,
        OtherCrew,
    }
    use Caller::*;

    const CALLERS: [Caller; 6] = [Nobody, OtherCrew, Admin, Agent, Supervisor, OwnCrew];

    /// Each endpoint with who may call it; everyone else gets 403 (401 without a token).
    fn matrix() -> Vec<(&'static str, &'static str, Value, &'static [Caller])> {
        vec![
            ("POST", "/v1/tickets", report(), &[Agent, Supervisor]),
            ("GET", "/v1/tickets", Value::Null, &[Agent, Supervisor]),
            (
                "GET",
                "/v1/tickets/{t}",
                Value::Null,
                &[Agent, Supervisor, OwnCrew],
            ),
            ("POST", "/v1/tickets/{t}/ack", json!({}), &[OwnCrew]),
            (
                "POST",
                "/v1/tickets/{t}/reject",
                json!({"reason": "busy"}),
                &[OwnCrew],
            ),
            ("POST", "/v1/tickets/{t}/depart", json!({}), &[OwnCrew]),
            ("POST", "/v1/tickets/{t}/arrive", json!({}), &[OwnCrew]),
            ("POST", "/v1/tickets/{t}/restore", json!({}), &[OwnCrew]),
            (
                "POST",
                "/v1/tickets/{t}/return",
                json!({"fault_class": "low_voltage", "cause": "fuse", "ownership": "utility"}),
                &[OwnCrew],
            ),
            (
                "POST",
                "/v1/tickets/{t}/close",
                json!({"callback": {"satisfied": true}}),
                &[Agent],
            ),
            (
                "POST",
                "/v1/tickets/{t}/cancel",
                json!({"reason": "duplicate"}),
                &[Agent, Supervisor],
            ),
            (
                "GET",
                "/v1/crews/{c}/jobs",
                Value::Null,
                &[OwnCrew, Supervisor, Admin],
            ),
            (
                "POST",
                "/v1/crews/{c}/position",
                json!({"lat": STATION_LAT, "lon": STATION_LON, "at": "2030-01-01T00:00:00Z"}),
                &[OwnCrew],
            ),
            (
                "POST",
                "/v1/crews/{c}/duty",
                json!({"on_duty": true}),
                &[OwnCrew],
            ),
            ("GET", "/v1/stations", Value::Null, &[Supervisor, Admin]),
            ("GET", "/v1/crews", Value::Null, &[Supervisor, Admin]),
            ("GET", "/v1/events", Value::Null, &[Supervisor, Admin]),
            ("GET", "/v1/storm", Value::Null, &[Supervisor, Admin]),
            (
                "POST",
                "/v1/storm",
                json!({"mode": "automatic"}),
                &[Supervisor],
            ),
            (
                "POST",
                "/v1/admin/crew-tokens",
                json!({"crew_id": "441302-01-c1"}),
                &[Admin],
            ),
            // The other crew's: the admin's call revokes the tokens of the crew named, and
            // the own crew still has to be refused after it.
            (
                "DELETE",
                "/v1/admin/crews/{o}/tokens",
                Value::Null,
                &[Admin],
            ),
            ("POST", "/v1/admin/backups", Value::Null, &[Admin]),
        ]
    }

    #[tokio::test]
    async fn each_endpoint_by_each_role() {
        let app = TestApp::spawn().await;
        for (method, template, body, allowed) in matrix() {
            // A fresh ticket per row, so one row's steps do not disturb another's.
            let ticket = app.create(report()).await;
            let crew = ticket["crew_id"].as_str().unwrap().to_owned();
            let own = app.crew_token(&crew).await;
            let other_crew = if crew == "441302-01-c1" {
                "441302-01-c2"
            } else {
                "441302-01-c1"
            };
            let other = app.crew_token(other_crew).await;
            let path = template
                .replace("{t}", id(&ticket))
                .replace("{c}", &crew)
                .replace("{o}", other_crew);
            for caller in CALLERS {
                let token = match caller {
                    Nobody => None,
                    Agent => Some(AGENT),
                    Supervisor => Some(SUPERVISOR),
                    Admin => Some(ADMIN),
                    OwnCrew => Some(own.as_str()),
                    OtherCrew => Some(other.as_str()),
                };
                let method = Method::from_bytes(method.as_bytes()).unwrap();
                let mut request = app.request(method.clone(), &path, token);
                if !body.is_null() {
                    request = request.json(&body);
                }
                // The event stream never ends: its status is the answer.
                let (status, answer) = if template == "/v1/events" {
                    (request.send().await.unwrap().status(), Value::Null)
                } else {
                    send(request).await
                };
                let context = format!("{method} {template} as {caller:?}: {status} {answer}");
                match caller {
                    Nobody => assert_eq!(status, StatusCode::UNAUTHORIZED, "{context}"),
                    _ if allowed.contains(&caller) => assert!(
                        status != StatusCode::UNAUTHORIZED && status != StatusCode::FORBIDDEN,
                        "{context}"
                    ),
                    _ => assert_eq!(status, StatusCode::FORBIDDEN, "{context}"),
                }
            }
        }
    }

    #[tokio::test]
    async fn crew_a_can_neither_read_nor_act_on_crew_bs_job() {
        let app = TestApp::spawn().await;
        let a = app.create(report()).await;
        let b = app.create(report()).await;
        assert_ne!(a["crew_id"], b["crew_id"]);
        let token_a = app.crew_token_of(&a).await;
        let b_path = format!("/v1/tickets/{}", id(&b));
        let (status, _) = app.get(&b_path, &token_a).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        for step in ["ack", "depart", "arrive", "restore"] {
            let (status, _) = app
                .post(&format!("{b_path}/{step}"), &token_a, json!({}))
                .await;
            assert_eq!(status, StatusCode::FORBIDDEN, "{step}");
        }
        let crew_b = b["crew_id"].as_str().unwrap();
        let (status, _) = app.get(&format!("/v1/crews/{crew_b}/jobs"), &token_a).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        let (status, _) = app
            .post(
                &format!("/v1/crews/{crew_b}/position"),
                &token_a,
                json!({"lat": STATION_LAT, "lon": STATION_LON}),
            )
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        // B's job is untouched and A still reads its own.
        let (_, still) = app.get(&b_path, SUPERVISOR).await;
        assert_eq!(still["state"], "dispatched");
        let (status, own) = app.get(&format!("/v1/tickets/{}", id(&a)), &token_a).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(own["caller"]["phone"], "13800001234");
        let crew_a = a["crew_id"].as_str().unwrap();
        let (status, jobs) = app.get(&format!("/v1/crews/{crew_a}/jobs"), &token_a).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(jobs["items"][0]["id"], a["id"]);
        assert_eq!(jobs["items"][0]["caller"]["phone"], "13800001234");
        // An admin reads crews' jobs but not tickets, and so not who called.
        let (status, seen) = app.get(&format!("/v1/crews/{crew_a}/jobs"), ADMIN).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(seen["items"][0]["id"], a["id"]);
        assert_eq!(
            seen["items"][0]["caller"],
            json!({"name": "李*", "phone": "138****1234"})
        );
    }
}

#[tokio::test]
async fn the_same_idempotency_key_gives_one_ticket() {
    let app = TestApp::spawn().await;
    let create = |body: Value, key: &'static str| {
        send(
            app.request(Method::POST, "/v1/tickets", Some(AGENT))
                .header("idempotency-key", key)
                .json(&body),
        )
    };
    let (first_status, first) = create(report(), "call-20250601-0001").await;
    assert_eq!(first_status, StatusCode::CREATED);
    // The same request with its keys in another order and other spacing is the same request.
    let reordered = format!(
        r#"{{ "description": "no power since 10:00", "important_customer": false,
             "priority": "normal", "category": "other", "address": "惠城区 河南岸 1号",
             "location": {{ "lon": {STATION_LON}, "lat": {STATION_LAT} }},
             "caller": {{ "phone": "13800001234", "name": "李明" }} }}"#
    );
    let (second_status, second) = send(
        app.request(Method::POST, "/v1/tickets", Some(AGENT))
            .header("idempotency-key", "call-20250601-0001")
            .header("content-type", "application/json")
            .body(reordered),
    )
    .await;
    assert_eq!(second_status, StatusCode::OK, "{second}");
    assert_eq!(second["id"], first["id"]);
    let (third_status, third) = create(
        report_at(STATION_LAT, STATION_LON, "meter"),
        "call-20250601-0001",
    )
    .await;
    assert_eq!(
        error_code(third_status, &third, StatusCode::UNPROCESSABLE_ENTITY),
        "idempotency_conflict"
    );
    let (_, list) = app.get("/v1/tickets", AGENT).await;
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
    // A bad key is a 400.
    let (status, body) = create(report(), "has spaces").await;
    assert_eq!(
        error_code(status, &body, StatusCode::BAD_REQUEST),
        "invalid_header"
    );
}

mod datums {
    use super::*;
    use dispatch::datum;
    use dispatch::domain::LatLon;
    use dispatch::geo::ServiceAreaIndex;
    use dispatch::region::Region;

    /// A WGS84 point whose GCJ-02 coordinates, read as WGS84, fall in another station: the
    /// half kilometre the contract warns about.
    fn point_near_a_border() -> (LatLon, String, String) {
        let region = Region::load(&region_dir()).unwrap();
        let index = ServiceAreaIndex::new(&region.areas, 5.0);
        let station = |p: LatLon| {
            index
                .locate(p)
                .ok()
                .map(|l| region.stations[l.station()].id.to_string())
        };
        for i in 0..400 {
            for j in 0..400 {
                let wgs =
                    LatLon::new(22.9 + f64::from(i) * 0.001, 114.2 + f64::from(j) * 0.001).unwrap();
                let (glat, glon) = datum::wgs84_to_gcj02(wgs.lat(), wgs.lon());
                let misread = LatLon::new(glat, glon).unwrap();
                if let (Some(right), Some(wrong)) = (station(wgs), station(misread))
                    && right != wrong
                {
                    return (wgs, right, wrong);
                }
            }
        }
        panic!("no border point found near Huizhou");
    }

    #[tokio::test]
    async fn a_gcj02_location_near_a_border_lands_in_the_same_station_as_its_wgs84_twin() {
        let (wgs, right, wrong) = point_near_a_border();
        let (glat, glon) = datum::wgs84_to_gcj02(wgs.lat(), wgs.lon());
        let app = TestApp::spawn().await;

        let by_wgs = app.create(report_at(wgs.lat(), wgs.lon(), "other")).await;
        let mut gcj = report_at(glat, glon, "other");
        gcj["location"]["datum"] = json!("gcj02");
        let by_gcj = app.create(gcj).await;
        let naive = app.create(report_at(glat, glon, "other")).await;

        assert_eq!(by_wgs["station_id"], right.as_str());
        assert_eq!(by_gcj["station_id"], right.as_str());
        assert_eq!(naive["station_id"], wrong.as_str());
        // Answers are in WGS84 only.
        assert!((by_gcj["location"]["lat"].as_f64().unwrap() - wgs.lat()).abs() < 1e-6);
        assert!((by_gcj["location"]["lon"].as_f64().unwrap() - wgs.lon()).abs() < 1e-6);

        let (blat, blon) = datum::gcj02_to_bd09(glat, glon);
        let mut bd = report_at(blat, blon, "other");
        bd["location"]["datum"] = json!("bd09");
        let by_bd = app.create(bd).await;
        assert_eq!(by_bd["station_id"], right.as_str());
    }
}

#[tokio::test]
async fn listing_pages_in_creation_order_and_filters() {
    let app = TestApp::spawn().await;
    let mut ids = Vec::new();
    for _ in 0..5 {
        ids.push(
            app.create(report()).await["id"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    let first = ids[0].clone();
    let (status, _) = app
        .post(
            &format!("/v1/tickets/{first}/cancel"),
            AGENT,
            json!({"reason": "duplicate call"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);

    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/v1/tickets?limit=2&cursor={c}"),
            None => "/v1/tickets?limit=2".to_owned(),
        };
        let (status, page) = app.get(&path, SUPERVISOR).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        let items = page["items"].as_array().unwrap();
        assert!(items.len() <= 2);
        seen.extend(items.iter().map(|t| t["id"].as_str().unwrap().to_owned()));
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen, ids);

    let (_, cancelled) = app.get("/v1/tickets?state=cancelled", AGENT).await;
    assert_eq!(cancelled["items"].as_array().unwrap().len(), 1);
    assert_eq!(cancelled["items"][0]["id"], first.as_str());
    let (_, here) = app
        .get(
            &format!("/v1/tickets?station_id={STATION}&state=dispatched"),
            AGENT,
        )
        .await;
    assert_eq!(here["items"].as_array().unwrap().len(), 4);
    let (_, elsewhere) = app.get("/v1/tickets?station_id=441302-02", AGENT).await;
    assert_eq!(elsewhere["items"], json!([]));
    let (status, body) = app.get("/v1/tickets?state=lost", AGENT).await;
    assert_eq!(
        error_code(status, &body, StatusCode::BAD_REQUEST),
        "invalid_query"
    );
    let (status, body) = app.get("/v1/tickets?limit=501", AGENT).await;
    assert_eq!(
        error_code(status, &body, StatusCode::BAD_REQUEST),
        "invalid_query"
    );
    let (status, body) = app.get("/v1/tickets?cursor=nonsense", AGENT).await;
    assert_eq!(
        error_code(status, &body, StatusCode::BAD_REQUEST),
        "invalid_query"
    );
}

#[tokio::test]
async fn stations_and_crews_are_listed_with_state_and_position() {
    let app = TestApp::spawn().await;
    let (status, stations) = app.get("/v1/stations", ADMIN).await;
    assert_eq!(status, StatusCode::OK);
    let stations = stations["items"].as_array().unwrap();
    assert_eq!(stations.len(), 78);
    assert!(
        stations
            .iter()
            .any(|s| s["id"] == STATION && s["area_class"] == "urban")
    );

    let ticket = app.create(report()).await;
    let crew = ticket["crew_id"].as_str().unwrap();
    let token = app.crew_token(crew).await;
    let status = app
        .request(
            Method::POST,
            &format!("/v1/crews/{crew}/position"),
            Some(&token),
        )
        .json(&json!({"lat": 23.1, "lon": 114.4, "at": "2030-01-01T08:00:00+08:00"}))
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, StatusCode::NO_CONTENT);
    // A phone whose GPS answers 0°N 0°E is told so, and the crew stays where it was.
    let glitch = app
        .request(
            Method::POST,
            &format!("/v1/crews/{crew}/position"),
            Some(&token),
        )
        .json(&json!({"lat": 0.0, "lon": 0.0}))
        .send()
        .await
        .unwrap();
    assert_eq!(glitch.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body: serde_json::Value = glitch.json().await.unwrap();
    assert_eq!(body["error"]["code"], "outside_service_area", "{body}");
    let (_, crews) = app.get("/v1/crews", SUPERVISOR).await;
    let crews = crews["items"].as_array().unwrap();
    assert_eq!(crews.len(), 220);
    let record = crews.iter().find(|c| c["id"] == crew).unwrap();
    assert_eq!(record["state"], "assigned");
    assert_eq!(record["ticket_id"], ticket["id"]);
    assert_eq!(record["position"], json!({"lat": 23.1, "lon": 114.4}));
    assert!(record["position_at"].is_string());
    assert!(
        crews
            .iter()
            .all(|c| c["skills"].as_array().is_some_and(|s| !s.is_empty()))
    );
}

#[tokio::test]
async fn operations_endpoints_answer_without_a_token() {
    let app = TestApp::spawn().await;
    let (status, body) = send(app.request(Method::GET, "/healthz", None)).await;
    assert_eq!(
        (status, body["status"].as_str()),
        (StatusCode::OK, Some("ok"))
    );
    let (status, body) = send(app.request(Method::GET, "/readyz", None)).await;
    assert_eq!(
        (status, body["status"].as_str()),
        (StatusCode::OK, Some("ready"))
    );

    let (_, doc) = send(app.request(Method::GET, "/openapi.json", None)).await;
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let paths = doc["paths"].as_object().unwrap();
    for path in [
        "/v1/tickets",
        "/v1/tickets/{id}",
        "/v1/tickets/{id}/cancel",
        "/v1/tickets/{id}/close",
        "/v1/tickets/{id}/ack",
        "/v1/tickets/{id}/reject",
        "/v1/tickets/{id}/depart",
        "/v1/tickets/{id}/arrive",
        "/v1/tickets/{id}/restore",
        "/v1/tickets/{id}/return",
        "/v1/crews/{id}/jobs",
        "/v1/crews/{id}/position",
        "/v1/crews/{id}/duty",
        "/v1/stations",
        "/v1/crews",
        "/v1/admin/crew-tokens",
        "/v1/admin/crews/{id}/tokens",
        "/v1/admin/backups",
        "/v1/events",
        "/v1/storm",
        "/healthz",
        "/readyz",
        "/metrics",
        "/openapi.json",
    ] {
        assert!(
            paths.contains_key(path),
            "{path} missing from /openapi.json"
        );
    }
    assert!(paths["/v1/tickets"]["post"]["requestBody"].is_object());
    let mut operation_ids = std::collections::HashSet::new();
    for item in paths.values() {
        for operation in item.as_object().unwrap().values() {
            let id = operation["operationId"].as_str().unwrap();
            assert!(
                operation_ids.insert(id.to_owned()),
                "operationId {id} twice"
            );
        }
    }
    assert!(doc["components"]["securitySchemes"]["bearer"].is_object());
    // Every schema a path or schema refers to is in the document (utoipa collects them from
    // the handlers; a type only named in a doc attribute would dangle).
    fn refs(value: &Value, out: &mut Vec<String>) {
        match value {
            Value::Object(map) => {
                if let Some(Value::String(r)) = map.get("$ref") {
                    out.push(r.clone());
                }
                map.values().for_each(|v| refs(v, out));
            }
            Value::Array(items) => items.iter().for_each(|v| refs(v, out)),
            _ => {}
        }
    }
    let mut found = Vec::new();
    refs(&doc, &mut found);
    for r in &found {
        let name = r.trim_start_matches("#/components/schemas/");
        assert!(
            doc["components"]["schemas"][name].is_object(),
            "{r} dangles in /openapi.json"
        );
    }
    for schema in ["CancelRequest", "FirstReportOut", "TicketDetail"] {
        assert!(
            found.iter().any(|r| r.ends_with(&format!("/{schema}"))),
            "{schema} is not referred to"
        );
    }

    let ticket = app.create(report()).await;
    app.get(&format!("/v1/tickets/{}", id(&ticket)), AGENT)
        .await;
    let response = app
        .request(Method::GET, "/metrics", None)
        .send()
        .await
        .unwrap();
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let text = response.text().await.unwrap();
    assert!(text.contains(r#"route="/v1/tickets/{id}""#), "{text}");
    assert!(
        text.contains("dispatch_http_request_duration_seconds_bucket"),
        "{text}"
    );
    assert!(text.contains("dispatch_tickets_total"), "{text}");
    assert!(
        !text.contains(id(&ticket)),
        "a ticket id leaked into a label"
    );
}

/// An admin's backup holds every ticket answered before it, and put in place of the store's
/// file it restores them: state, timeline, idempotency keys and minted tokens; what came
/// after the backup is not in it. A Redis store is backed up with Redis's tools: 422.
#[tokio::test]
async fn a_backup_restores_every_ticket_answered_before_it() {
    let app = TestApp::spawn().await;
    let (status, body) = app.post("/v1/admin/backups", ADMIN, Value::Null).await;
    if app.place.on_redis() {
        assert_eq!(
            error_code(status, &body, StatusCode::UNPROCESSABLE_ENTITY),
            "backup_not_supported"
        );
        return;
    }
    assert_eq!(status, StatusCode::CREATED, "{body}");
    // Counters are process-wide and other tests run beside this one; only this test backs
    // up, but compare before and after all the same.
    let written = r#"dispatch_backups_total{result="written"}"#;
    let backups_written = || async {
        let text = app
            .request(Method::GET, "/metrics", None)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        metric_value(&text, written)
    };
    let written_before = backups_written().await;
    let (status, body) = app.post("/v1/admin/backups", AGENT, Value::Null).await;
    assert_eq!(
        error_code(status, &body, StatusCode::FORBIDDEN),
        "forbidden"
    );

    let keyed = app
        .request(Method::POST, "/v1/tickets", Some(AGENT))
        .header("Idempotency-Key", "call-0042")
        .json(&report());
    let (status, kept) = send(keyed).await;
    assert_eq!(status, StatusCode::CREATED, "{kept}");
    let crew_token = app.crew_token_of(&kept).await;
    app.walk(&kept, &crew_token, &["ack", "depart"]).await;
    let path = format!("/v1/tickets/{}", id(&kept));
    let (_, before) = app.get(&path, AGENT).await;

    let (status, backup) = app.post("/v1/admin/backups", ADMIN, Value::Null).await;
    assert_eq!(status, StatusCode::CREATED, "{backup}");
    let file = std::path::PathBuf::from(backup["file"].as_str().unwrap());
    let data = app.place.dir.path().join("data");
    assert_eq!(file.parent(), Some(data.join("backups").as_path()));
    assert!(backup["events"].as_u64().unwrap() >= 4, "{backup}");
    assert_eq!(
        backup["bytes"].as_u64(),
        Some(std::fs::metadata(&file).unwrap().len())
    );
    assert!(
        backup["taken_at"].as_str().unwrap().ends_with('Z'),
        "{backup}"
    );
    assert_eq!(
        backup["removed"],
        json!([]),
        "two backups of the seven kept"
    );
    assert!(
        backups_written().await >= written_before + 1.0,
        "the backup was not counted"
    );
    let later = app.create(report()).await;

    // Restore: the service stopped, the backup in place of the store's file.
    let place = app.stop().await;
    std::fs::copy(&file, data.join("dispatch.redb")).unwrap();
    let app = TestApp::spawn_in(place).await;
    let (status, after) = app.get(&path, AGENT).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(after, before, "the ticket and its timeline as they were");
    let (status, body) = app.get(&format!("/v1/tickets/{}", id(&later)), AGENT).await;
    assert_eq!(
        error_code(status, &body, StatusCode::NOT_FOUND),
        "not_found"
    );
    let repeat = app
        .request(Method::POST, "/v1/tickets", Some(AGENT))
        .header("Idempotency-Key", "call-0042")
        .json(&report());
    let (status, again) = send(repeat).await;
    assert_eq!((status, id(&again)), (StatusCode::OK, id(&kept)));
    app.walk(&kept, &crew_token, &["arrive"]).await;
}

/// A backup that cannot be written (here: `backups` is a file, not a directory) is a 503
/// with `Retry-After` and leaves the store taking writes.
#[tokio::test]
async fn a_backup_that_cannot_be_written_is_a_503_and_the_store_goes_on() {
    let app = TestApp::spawn().await;
    if app.place.on_redis() {
        // The service keeps no file of its own on Redis: Redis's own tools back it up.
        let (status, body) = app.post("/v1/admin/backups", ADMIN, json!({})).await;
        assert_eq!(
            error_code(status, &body, StatusCode::UNPROCESSABLE_ENTITY),
            "backup_not_supported"
        );
        return;
    }
    let backups = app.place.dir.path().join("data").join("backups");
    std::fs::write(&backups, b"in the way").unwrap();
    let response = app
        .request(Method::POST, "/v1/admin/backups", Some(ADMIN))
        .send()
        .await
        .unwrap();
    assert!(response.headers().contains_key("retry-after"));
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        error_code(status, &body, StatusCode::SERVICE_UNAVAILABLE),
        "backup_failed"
    );
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.starts_with("the backup was not written: cannot create"),
        "the reason, not a store said to be down: {message}"
    );
    let ticket = app.create(report()).await;
    let (status, _) = app
        .get(&format!("/v1/tickets/{}", id(&ticket)), AGENT)
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = app.get("/readyz", AGENT).await;
    assert_eq!(status, StatusCode::OK);
}

/// Every accepted connection has the kernel's keepalive timer running once idle (Linux's
/// `/proc/net/tcp` shows timer 2 on it), so a phone that vanished is let go.
#[tokio::test]
async fn an_idle_connection_has_the_keepalive_timer_running() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let app = TestApp::spawn().await;
    let mut client = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    let mine = client.local_addr().unwrap().port();
    client
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut answer = [0u8; 512];
    let read = client.read(&mut answer).await.unwrap();
    assert!(answer[..read].starts_with(b"HTTP/1.1 200"));
    // The service's end: local port the service's, remote port this client's.
    let wanted = format!(":{:04X} ", app.addr.port());
    let peer = format!(":{mine:04X} ");
    let mut timer = None;
    for _ in 0..50 {
        let table = std::fs::read_to_string("/proc/net/tcp").unwrap();
        timer = table.lines().skip(1).find_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let (local, remote) = (format!("{} ", fields[1]), format!("{} ", fields[2]));
            (local.ends_with(&wanted) && remote.ends_with(&peer))
                .then(|| fields[5].split(':').next().unwrap_or("").to_owned())
        });
        if timer.as_deref() == Some("02") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(timer.as_deref(), Some("02"), "the keepalive timer");
}

#[tokio::test]
async fn a_revoked_crew_token_opens_nothing_from_the_answer_on_even_after_a_restart() {
    let app = TestApp::spawn().await;
    let ticket = app.create(report()).await;
    let crew = ticket["crew_id"].as_str().unwrap().to_owned();
    let lost = app.crew_token(&crew).await;
    let jobs = format!("/v1/crews/{crew}/jobs");
    let (status, _) = app.get(&jobs, &lost).await;
    assert_eq!(status, StatusCode::OK);
    let other_crew = if crew == "441302-01-c1" {
        "441302-01-c2"
    } else {
        "441302-01-c1"
    };
    let others = app.crew_token(other_crew).await;

    let revoke = |crew: &str| {
        app.request(
            Method::DELETE,
            &format!("/v1/admin/crews/{crew}/tokens"),
            Some(ADMIN),
        )
    };
    let (status, body) = send(revoke(&crew)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body, json!({"crew_id": crew, "revoked": 1}));
    let (status, body) = app.get(&jobs, &lost).await;
    assert_eq!(
        error_code(status, &body, StatusCode::UNAUTHORIZED),
        "unauthorized"
    );
    // The lost phone cannot act on the job either, and the ticket is as it was.
    let (status, _) = app
        .post(
            &format!("/v1/tickets/{}/ack", id(&ticket)),
            &lost,
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (_, now) = app
        .get(&format!("/v1/tickets/{}", id(&ticket)), AGENT)
        .await;
    assert_eq!(now["state"], ticket["state"]);
    // Again: nothing left to revoke. An unknown crew: 404.
    let (status, body) = send(revoke(&crew)).await;
    assert_eq!(
        (status, body["revoked"].clone()),
        (StatusCode::OK, json!(0))
    );
    let (status, body) = send(revoke("no-such-crew")).await;
    assert_eq!(
        error_code(status, &body, StatusCode::NOT_FOUND),
        "not_found"
    );
    let new_phone = app.crew_token(&crew).await;

    let app = TestApp::spawn_in(app.stop().await).await;
    let (status, _) = app.get(&jobs, &lost).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    app.walk(&ticket, &new_phone, &["ack"]).await;
    let (status, _) = app
        .get(&format!("/v1/crews/{other_crew}/jobs"), &others)
        .await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn a_graceful_restart_keeps_tickets_timelines_keys_and_crew_tokens() {
    let app = TestApp::spawn().await;
    let keyed = || {
        app.request(Method::POST, "/v1/tickets", Some(AGENT))
            .header("idempotency-key", "restart-1")
            .json(&report())
    };
    let (status, ticket) = send(keyed()).await;
    assert_eq!(status, StatusCode::CREATED);
    let token = app.crew_token_of(&ticket).await;
    app.walk(&ticket, &token, &["ack"]).await;
    let (_, before) = app
        .get(&format!("/v1/tickets/{}", id(&ticket)), AGENT)
        .await;

    let app = TestApp::spawn_in(app.stop().await).await;
    let (_, after) = app
        .get(&format!("/v1/tickets/{}", id(&ticket)), AGENT)
        .await;
    assert_eq!(after, before);
    let (status, again) = send(
        app.request(Method::POST, "/v1/tickets", Some(AGENT))
            .header("idempotency-key", "restart-1")
            .json(&report()),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(again["id"], ticket["id"]);
    app.walk(&ticket, &token, &["depart"]).await;
}

mod store_and_deadlines {
    use super::*;
    use dispatch::config::ServerConfig;
    use dispatch::service::{Clock, ManualClock, SystemClock};
    use std::sync::Arc;

    /// The service on a store whose writes and close can be made to fail or hang.
    async fn on_a_faulty_store() -> (Arc<FaultyStore>, TestApp) {
        let store = FaultyStore::new();
        let app = TestApp::spawn_with(
            store.clone(),
            Arc::new(SystemClock),
            ServerConfig::default(),
        )
        .await;
        (store, app)
    }

    /// A disk hung in an fsync must not keep the process from exiting at SIGTERM: the last
    /// commit is waited for as long as any write (`store.write_timeout_ms`), then given up.
    #[tokio::test]
    async fn a_store_that_cannot_close_does_not_hold_the_shutdown() {
        let (store, app) = on_a_faulty_store().await;
        app.create(report()).await;
        store.stall();
        let (_, result) = app.stop_outcome().await;
        let error = result.expect_err("a close that never finished").to_string();
        assert!(error.contains("close"), "{error}");
        store.release();
    }

    #[tokio::test]
    async fn a_failed_write_answers_503_and_the_service_stops_writing() {
        let (store, app) = on_a_faulty_store().await;
        let ticket = app.create(report()).await;
        store.fail();

        let response = app
            .request(Method::POST, "/v1/tickets", Some(AGENT))
            .json(&report())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(response.headers().contains_key("retry-after"));
        let body: Value = response.json().await.unwrap();
        assert_eq!(
            error_code(
                StatusCode::SERVICE_UNAVAILABLE,
                &body,
                StatusCode::SERVICE_UNAVAILABLE
            ),
            "outcome_unknown",
            "a failed fsync may have written the ticket"
        );
        assert!(
            !body.to_string().contains("fsync"),
            "a 5xx body leaks the cause: {body}"
        );
        // From then on nothing is written, and the answer says so.
        let (status, body) = app.post("/v1/tickets", AGENT, report()).await;
        assert_eq!(
            error_code(status, &body, StatusCode::SERVICE_UNAVAILABLE),
            "store_unavailable"
        );

        let response = app
            .request(Method::GET, "/readyz", None)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(response.headers().contains_key("retry-after"));
        // Memory may be ahead of disk now: reads and writes are refused until a restart.
        let (status, _) = app
            .get(&format!("/v1/tickets/{}", id(&ticket)), AGENT)
            .await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        let (status, _) = send(app.request(Method::GET, "/healthz", None)).await;
        assert_eq!(status, StatusCode::OK);
    }

    /// A service whose store holds its commits until released, with one report sent and
    /// waiting on its commit: the request stays under way until `store.release()`.
    async fn with_a_report_held(
        server: ServerConfig,
    ) -> (
        TestApp,
        Arc<FaultyStore>,
        tokio::task::JoinHandle<(StatusCode, Value)>,
    ) {
        let store = FaultyStore::new();
        let app = TestApp::spawn_with(store.clone(), Arc::new(SystemClock), server).await;
        store.stall();
        let slow = tokio::spawn(send(
            app.request(Method::POST, "/v1/tickets", Some(AGENT))
                .json(&report()),
        ));
        store.arrived.notified().await;
        (app, store, slow)
    }

    /// SIGTERM while a report is being committed: no new connection is taken, the report is
    /// still answered 201, and then the service stops cleanly.
    #[tokio::test]
    async fn a_shutdown_finishes_the_requests_under_way() {
        let (mut app, store, slow) = with_a_report_held(ServerConfig::default()).await;
        app.signal_shutdown();
        let addr = app.addr;
        tokio::time::timeout(std::time::Duration::from_secs(10), async move {
            while tokio::net::TcpStream::connect(addr).await.is_ok() {
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
        })
        .await
        .expect("new connections are refused once the signal is in");

        store.release();
        let (status, created) = slow.await.unwrap();
        assert_eq!(status, StatusCode::CREATED, "{created}");
        app.stop().await;
    }

    #[tokio::test]
    async fn requests_over_the_in_flight_limit_are_answered_429() {
        // The report holds the only slot while its commit waits.
        let (app, store, slow) = with_a_report_held(ServerConfig {
            max_in_flight: 1,
            ..ServerConfig::default()
        })
        .await;
        let response = app
            .request(Method::GET, "/v1/tickets", Some(AGENT))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert!(response.headers().contains_key("retry-after"));
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["code"], "rate_limited");
        // Operations endpoints are never shed.
        let (status, _) = send(app.request(Method::GET, "/healthz", None)).await;
        assert_eq!(status, StatusCode::OK);

        store.release();
        let (status, created) = slow.await.unwrap();
        assert_eq!(status, StatusCode::CREATED, "{created}");
        let (status, _) = app.get("/v1/tickets", AGENT).await;
        assert_eq!(status, StatusCode::OK);
    }

    /// A service with these server settings, on the real clock and a store that keeps up.
    async fn serving(server: ServerConfig) -> TestApp {
        TestApp::spawn_with(FaultyStore::new(), Arc::new(SystemClock), server).await
    }

    /// A phone that loses signal halfway through sending a report must not hold its place
    /// under `max_in_flight` for ever: its silent body is given up with 408, and the place is
    /// free for the next request.
    #[tokio::test]
    async fn a_body_that_stops_arriving_is_answered_408_and_frees_its_place() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let app = serving(ServerConfig {
            max_in_flight: 1,
            body_timeout_ms: 300,
            ..ServerConfig::default()
        })
        .await;
        let mut stalled = tokio::net::TcpStream::connect(app.addr).await.unwrap();
        let head = format!(
            "POST /v1/tickets HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {AGENT}\r\n\
             Content-Type: application/json\r\nContent-Length: 400\r\n\r\n{{\"category\":",
            app.addr
        );
        stalled.write_all(head.as_bytes()).await.unwrap();
        let mut answer = vec![0u8; 4096];
        let read = tokio::time::timeout(
            std::time::Duration::from_secs(10),
            stalled.read(&mut answer),
        )
        .await
        .expect("the stalled request is answered, not held")
        .unwrap();
        let answer = String::from_utf8_lossy(&answer[..read]);
        assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
        assert!(answer.contains("request_timeout"), "{answer}");
        let (status, created) = app.post("/v1/tickets", AGENT, report()).await;
        assert_eq!(status, StatusCode::CREATED, "{created}");
    }

    /// A client that sends half a request head and then nothing (a phone losing signal, a
    /// slow-loris attack) holds no connection for ever: it is closed once the head is
    /// `server.header_timeout_ms` late. So is a keep-alive connection left idle that long.
    #[tokio::test]
    async fn a_request_head_that_stops_arriving_closes_its_connection() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let app = serving(ServerConfig {
            header_timeout_ms: 300,
            ..ServerConfig::default()
        })
        .await;
        let closed_within = |mut connection: tokio::net::TcpStream| async move {
            let mut answer = Vec::new();
            tokio::time::timeout(
                std::time::Duration::from_secs(10),
                connection.read_to_end(&mut answer),
            )
            .await
            .expect("the connection is closed, not held")
            .map(|_| answer)
        };

        let mut half_head = tokio::net::TcpStream::connect(app.addr).await.unwrap();
        half_head
            .write_all(format!("GET /healthz HTTP/1.1\r\nHost: {}\r\n", app.addr).as_bytes())
            .await
            .unwrap();
        let answer = closed_within(half_head).await;
        // No request came whole, so nothing was answered.
        assert!(
            answer.is_err() || answer.as_ref().is_ok_and(Vec::is_empty),
            "{answer:?}"
        );

        let mut idle = tokio::net::TcpStream::connect(app.addr).await.unwrap();
        idle.write_all(format!("GET /healthz HTTP/1.1\r\nHost: {}\r\n\r\n", app.addr).as_bytes())
            .await
            .unwrap();
        let answer = String::from_utf8_lossy(&closed_within(idle).await.unwrap()).into_owned();
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");

        // A client that keeps up is served as before.
        let (status, created) = app.post("/v1/tickets", AGENT, report()).await;
        assert_eq!(status, StatusCode::CREATED, "{created}");
    }

    #[tokio::test]
    async fn a_dispatch_not_acknowledged_in_time_goes_to_the_next_crew() {
        let clock = Arc::new(ManualClock::new(SystemClock.now()));
        let app = TestApp::spawn_on_clock(clock.clone()).await;
        let ticket = app.create(report()).await;
        let first = ticket["crew_id"].as_str().unwrap().to_owned();

        // Just past the five minutes: at the deadline itself the crew may still acknowledge.
        clock.advance_minutes(5);
        clock.advance_millis(1);
        app.fire_deadlines().await;

        let (_, after) = app
            .get(&format!("/v1/tickets/{}", id(&ticket)), SUPERVISOR)
            .await;
        assert_eq!(after["state"], "dispatched");
        assert_ne!(after["crew_id"], first.as_str());
        // The acknowledgement clock warned at 50 % and 80 % and breached before the timeout
        // sent the job on.
        assert_eq!(
            events(&after),
            [
                "reported",
                "dispatched",
                "sla_warning",
                "sla_warning",
                "sla_breached",
                "declined",
                "dispatched"
            ]
        );
        let timeline = &after["timeline"];
        assert_eq!(timeline[2]["stage"], "acknowledge");
        assert_eq!(timeline[2]["level"], 0.5);
        assert_eq!(timeline[3]["level"], 0.8);
        assert_eq!(timeline[4]["stage"], "acknowledge");
        assert!(timeline[4].get("level").is_none());
        assert_eq!(timeline[4]["actor"], "system");
        assert_eq!(timeline[5]["reason"], "acknowledge_timeout");
        assert_eq!(timeline[5]["actor"], "system");
        let (_, crews) = app.get("/v1/crews", SUPERVISOR).await;
        let missed = crews["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["id"] == first.as_str())
            .unwrap();
        assert_eq!(missed["state"], "unresponsive");
    }
}

mod live_events {
    use super::*;
    use std::time::Duration;

    /// One Server-Sent Event: its `event`, `id` and parsed `data`.
    #[derive(Debug)]
    struct Frame {
        event: String,
        id: u64,
        data: Value,
    }

    /// Reads the stream until `done` holds for the frames so far (or fails after a while,
    /// so a missing event fails the test instead of hanging it).
    async fn read_until(
        response: &mut reqwest::Response,
        raw: &mut String,
        done: impl Fn(&[Frame]) -> bool,
    ) -> Vec<Frame> {
        let read = async {
            loop {
                let frames = parse(raw);
                if done(&frames) {
                    return frames;
                }
                let chunk = response.chunk().await.unwrap().expect("the stream goes on");
                raw.push_str(std::str::from_utf8(&chunk).unwrap());
            }
        };
        tokio::time::timeout(Duration::from_secs(10), read)
            .await
            .expect("the expected events arrive")
    }

    fn parse(raw: &str) -> Vec<Frame> {
        raw.split("\n\n")
            .filter_map(|block| {
                let field = |name: &str| {
                    block
                        .lines()
                        .find_map(|l| l.strip_prefix(name).map(str::to_owned))
                };
                Some(Frame {
                    event: field("event: ")?,
                    id: field("id: ")?.parse().ok()?,
                    data: serde_json::from_str(&field("data: ")?).ok()?,
                })
            })
            .collect()
    }

    #[tokio::test]
    async fn a_supervisor_sees_each_committed_change_with_the_ticket_and_crew_but_no_phone() {
        let app = TestApp::spawn().await;
        let mut stream = app
            .request(Method::GET, "/v1/events", Some(SUPERVISOR))
            .send()
            .await
            .unwrap();
        assert_eq!(stream.status(), StatusCode::OK);
        assert!(
            stream.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/event-stream")
        );
        let ticket = app.create(report()).await;
        let token = app.crew_token_of(&ticket).await;
        app.walk(&ticket, &token, &["ack"]).await;

        let mut raw = String::new();
        let frames = read_until(&mut stream, &mut raw, |frames| {
            frames.iter().any(|f| f.event == "acknowledged")
        })
        .await;
        let names: Vec<_> = frames.iter().map(|f| f.event.as_str()).collect();
        assert_eq!(names, ["reported", "dispatched", "acknowledged"]);
        let ids: Vec<_> = frames.iter().map(|f| f.id).collect();
        assert!(ids.windows(2).all(|w| w[1] == w[0] + 1), "{ids:?}");
        for frame in &frames {
            assert_eq!(frame.data["ticket_id"], ticket["id"]);
            assert_eq!(frame.data["event"], frame.event.as_str());
            assert_eq!(frame.data["ticket"]["id"], ticket["id"]);
        }
        let dispatched = &frames[1].data;
        assert_eq!(dispatched["crew_id"], ticket["crew_id"]);
        assert_eq!(dispatched["crew"]["id"], ticket["crew_id"]);
        assert_eq!(dispatched["crew"]["state"], "assigned");
        assert_eq!(frames[2].data["ticket"]["state"], "acknowledged");
        assert!(!raw.contains("13800001234"), "a phone number in the feed");
    }

    #[tokio::test]
    async fn a_failed_request_publishes_nothing() {
        let app = TestApp::spawn().await;
        let mut stream = app
            .request(Method::GET, "/v1/events", Some(ADMIN))
            .send()
            .await
            .unwrap();
        let ticket = app.create(report()).await;
        // Out of order: depart before ack is refused, and nothing is published for it.
        let token = app.crew_token_of(&ticket).await;
        let (status, _) = app
            .post(
                &format!("/v1/tickets/{}/depart", id(&ticket)),
                &token,
                json!({}),
            )
            .await;
        assert_eq!(status, StatusCode::CONFLICT);
        app.walk(&ticket, &token, &["ack"]).await;
        let mut raw = String::new();
        let frames = read_until(&mut stream, &mut raw, |frames| {
            frames.iter().any(|f| f.event == "acknowledged")
        })
        .await;
        assert!(!frames.iter().any(|f| f.event == "departed"), "{frames:?}");
    }
}

mod metrics_exposition {
    use super::*;

    #[tokio::test]
    async fn a_ticket_walked_to_return_is_counted_in_every_instrument() {
        let app = TestApp::spawn().await;
        let metrics = || async {
            app.request(Method::GET, "/metrics", None)
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap()
        };
        // Counters are process-wide and other tests run beside this one: compare before
        // and after, and only with series this test alone moves (its station, "meter").
        let arrive_met = r#"dispatch_sla_total{stage="arrive",area_class="urban",result="met"}"#;
        let meter_dispatched = r#"dispatch_tickets_total{category="meter",outcome="dispatched"}"#;
        let before = metrics().await;

        let ticket = app
            .create(report_at(STATION_LAT, STATION_LON, "meter"))
            .await;
        let token = app.crew_token_of(&ticket).await;
        app.walk(
            &ticket,
            &token,
            &["ack", "depart", "arrive", "restore", "return"],
        )
        .await;

        let after = metrics().await;
        assert!(
            metric_value(&after, meter_dispatched) >= metric_value(&before, meter_dispatched) + 1.0
        );
        assert!(metric_value(&after, arrive_met) >= metric_value(&before, arrive_met) + 1.0);
        for histogram in [
            "dispatch_report_to_dispatch_seconds_bucket",
            "dispatch_dispatch_to_acknowledge_seconds_bucket",
            "dispatch_report_to_arrival_seconds_bucket",
            "dispatch_arrival_to_restoration_seconds_bucket",
            "dispatch_restoration_to_return_seconds_bucket",
        ] {
            let series = format!(
                r#"{histogram}{{area_class="urban",category_class="service",station="{STATION}",le="+Inf"}}"#
            );
            assert!(
                metric_value(&after, &series) >= 1.0,
                "{series} missing:\n{after}"
            );
        }
        assert!(
            after.contains(
                r#"dispatch_engine_decision_seconds_bucket{command="report",le="0.000001"}"#
            ),
            "{after}"
        );
        // Gauges are read from this service at scrape time.
        assert!(
            after.contains(r#"dispatch_crews{state="available"}"#),
            "{after}"
        );
        assert!(
            after.contains(r#"dispatch_open_tickets{state="returned"}"#),
            "{after}"
        );
        assert!(
            after.contains("dispatch_oldest_queued_age_seconds"),
            "{after}"
        );
        assert!(
            after.contains("dispatch_last_event_timestamp_seconds"),
            "{after}"
        );
    }
}

mod storm_mode {
    use super::*;

    #[tokio::test]
    async fn a_supervisor_switches_storm_mode_and_waiting_tickets_go_out_together() {
        let app =
            TestApp::spawn_on_clock(std::sync::Arc::new(dispatch::service::SystemClock)).await;
        let (status, before) = app.get("/v1/storm", SUPERVISOR).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(
            (&before["on"], &before["pinned"], &before["policy"]),
            (&json!(false), &json!(false), &json!("nearest"))
        );

        let (status, on) = app
            .post("/v1/storm", SUPERVISOR, json!({"mode": "on"}))
            .await;
        assert_eq!(status, StatusCode::OK, "{on}");
        assert_eq!(
            (&on["on"], &on["pinned"], &on["policy"]),
            (&json!(true), &json!(true), &json!("batch"))
        );
        // In storm mode a report waits for the next assignment instead of going out at once.
        let waiting = app.create(report()).await;
        assert_eq!(waiting["state"], "queued");
        let dispatcher = app.dispatcher.as_ref().unwrap();
        assert_eq!(dispatcher.assign_batch().await.unwrap(), 1);
        let (_, ticket) = app
            .get(&format!("/v1/tickets/{}", id(&waiting)), AGENT)
            .await;
        assert_eq!(ticket["state"], "dispatched");
        let events: Vec<_> = events(&ticket);
        assert_eq!(events, ["reported", "queued", "dispatched"]);

        let (_, automatic) = app
            .post("/v1/storm", SUPERVISOR, json!({"mode": "automatic"}))
            .await;
        assert_eq!(automatic["pinned"], false);
        let (status, body) = app
            .post("/v1/storm", SUPERVISOR, json!({"mode": "hurricane"}))
            .await;
        assert_eq!(
            error_code(status, &body, StatusCode::BAD_REQUEST),
            "invalid_field"
        );
    }
}
