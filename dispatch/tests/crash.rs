//! The promise behind every 2xx: the real `dispatch` binary is SIGKILLed while concurrent
//! reports and crew steps are under way, then restarted on the same data directory, three
//! times. Every ticket that got a 201 must be there, in the state its last 2xx said (or the
//! state of a request that was cut off, whose outcome the client never learnt), with a
//! timeline that matches; a report whose answer was lost, retried with its Idempotency-Key,
//! must not make a second ticket; minted crew tokens must still work; and new work must be
//! accepted afterwards. Finally SIGTERM must stop the service cleanly.

// Tests: a panic is a failed test, and helpers outside #[test] functions unwrap too.
#![allow(clippy::unwrap_used)]

mod common;

use common::process::ServiceProcess as Server;
use common::*;
use reqwest::{Client, Method, StatusCode};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::process::Command;
use tokio::sync::Notify;

const ROUNDS: usize = 3;
const WORKERS: usize = 6;
/// Successful requests per round before the kill: enough for every step to be cut off
/// somewhere, bounded so the test stays short.
const OPERATIONS_BEFORE_KILL: usize = 150;
/// No worker reports more than this many tickets in a round.
const MAX_TICKETS_PER_WORKER: usize = 40;

/// The steps of a ticket's life after dispatch: (path suffix, body, state it leads to).
fn steps() -> Vec<(&'static str, Value, &'static str)> {
    vec![
        ("ack", json!({}), "acknowledged"),
        ("depart", json!({}), "en_route"),
        ("arrive", json!({}), "on_site"),
        ("restore", json!({"cause": "blown fuse"}), "restored"),
        (
            "return",
            json!({"fault_class": "low_voltage", "cause": "blown fuse", "ownership": "utility"}),
            "returned",
        ),
    ]
}

/// The timeline a ticket of this workload has in each state.
fn timeline_for(state: &str) -> Vec<&'static str> {
    let life = [
        ("dispatched", "dispatched"),
        ("acknowledged", "acknowledged"),
        ("en_route", "departed"),
        ("on_site", "arrived"),
        ("restored", "restored"),
        ("returned", "returned"),
        ("closed", "closed"),
    ];
    if state == "queued" {
        return vec!["reported", "queued"];
    }
    let mut events = vec!["reported"];
    for (s, event) in life {
        events.push(event);
        if s == state {
            return events;
        }
    }
    panic!("unexpected state {state}");
}

/// What the client knows about one ticket.
#[derive(Debug, Clone)]
struct Track {
    /// The state its last 2xx said.
    confirmed: String,
    /// The state a request cut off by the kill would have led to.
    attempted: Option<String>,
    crew_token: Option<String>,
}

#[derive(Debug, Default)]
struct Ledger {
    tickets: HashMap<String, Track>,
    /// Idempotency keys (and bodies) of reports that got a 201.
    created_keys: Vec<String>,
    /// Reports whose answer was lost.
    unanswered: Vec<(String, Value)>,
    /// Answers no kill explains (4xx, 5xx): the test fails on any.
    unexpected: Vec<String>,
}

fn write_config(dir: &Path) -> std::path::PathBuf {
    let path = dir.join("dispatch.toml");
    let text = format!(
        r#"
[server]
bind = "127.0.0.1:0"
shutdown_grace_seconds = 10
[store]
kind = "embedded"
path = {data:?}
[region]
path = {region:?}
[log]
format = "json"
filter = "info"
{tokens}"#,
        data = dir.join("data").display().to_string(),
        region = region_dir().display().to_string(),
        tokens = tokens_toml(),
    );
    std::fs::write(&path, text).unwrap();
    path
}

enum Outcome {
    Answered(StatusCode, Value),
    /// No answer: the service died under the request.
    Lost,
}

async fn call(
    client: &Client,
    server: &str,
    method: Method,
    path: &str,
    token: &str,
    body: Option<&Value>,
    key: Option<&str>,
) -> Outcome {
    let mut request = client
        .request(method, format!("{server}{path}"))
        .bearer_auth(token);
    if let Some(body) = body {
        request = request.json(body);
    }
    if let Some(key) = key {
        request = request.header("idempotency-key", key);
    }
    let Ok(response) = request.send().await else {
        return Outcome::Lost;
    };
    let status = response.status();
    match response.bytes().await {
        Ok(bytes) => Outcome::Answered(
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        ),
        Err(_) => Outcome::Lost,
    }
}

/// One worker: report tickets and take each through its life until the service dies.
async fn worker(
    round: usize,
    index: usize,
    server: String,
    ledger: Arc<Mutex<Ledger>>,
    done: Arc<AtomicUsize>,
    threshold: Arc<Notify>,
    dead: Arc<AtomicBool>,
) {
    let client = client();
    let succeeded = || {
        if done.fetch_add(1, Ordering::SeqCst) + 1 == OPERATIONS_BEFORE_KILL {
            threshold.notify_one();
        }
    };
    let unexpected = |what: String| ledger.lock().unwrap().unexpected.push(what);
    for n in 0..MAX_TICKETS_PER_WORKER {
        if dead.load(Ordering::SeqCst) {
            return;
        }
        let key = format!("crash-r{round}-w{index}-n{n}");
        // Spread the reports a little so several stations' crews take part.
        let body = report_at(
            STATION_LAT + (index as f64) * 0.002,
            STATION_LON + (n % 5) as f64 * 0.002,
            "other",
        );
        let ticket = match call(
            &client,
            &server,
            Method::POST,
            "/v1/tickets",
            AGENT,
            Some(&body),
            Some(&key),
        )
        .await
        {
            Outcome::Answered(StatusCode::CREATED, ticket) => ticket,
            Outcome::Answered(status, body) => {
                return unexpected(format!("create: {status} {body}"));
            }
            Outcome::Lost => {
                ledger.lock().unwrap().unanswered.push((key, body));
                return;
            }
        };
        succeeded();
        let id = ticket["id"].as_str().unwrap().to_owned();
        let state = ticket["state"].as_str().unwrap().to_owned();
        {
            let mut ledger = ledger.lock().unwrap();
            ledger.created_keys.push(key);
            ledger.tickets.insert(
                id.clone(),
                Track {
                    confirmed: state.clone(),
                    attempted: None,
                    crew_token: None,
                },
            );
        }
        if state != "dispatched" {
            continue;
        }
        let crew = ticket["crew_id"].as_str().unwrap();
        let token = match call(
            &client,
            &server,
            Method::POST,
            "/v1/admin/crew-tokens",
            ADMIN,
            Some(&json!({"crew_id": crew})),
            None,
        )
        .await
        {
            Outcome::Answered(StatusCode::CREATED, answer) => {
                answer["token"].as_str().unwrap().to_owned()
            }
            Outcome::Answered(status, body) => return unexpected(format!("mint: {status} {body}")),
            Outcome::Lost => return,
        };
        succeeded();
        ledger
            .lock()
            .unwrap()
            .tickets
            .get_mut(&id)
            .unwrap()
            .crew_token = Some(token.clone());
        let mut life: Vec<(&str, Value, &str, &str)> = steps()
            .into_iter()
            .map(|(step, body, state)| (step, body, state, token.as_str()))
            .collect();
        life.push((
            "close",
            json!({"callback": {"satisfied": true}}),
            "closed",
            AGENT,
        ));
        for (step, body, next, token) in life {
            ledger
                .lock()
                .unwrap()
                .tickets
                .get_mut(&id)
                .unwrap()
                .attempted = Some(next.to_owned());
            match call(
                &client,
                &server,
                Method::POST,
                &format!("/v1/tickets/{id}/{step}"),
                token,
                Some(&body),
                None,
            )
            .await
            {
                Outcome::Answered(StatusCode::OK, answer) => {
                    assert_eq!(answer["state"], next);
                    let mut ledger = ledger.lock().unwrap();
                    let track = ledger.tickets.get_mut(&id).unwrap();
                    track.confirmed = next.to_owned();
                    track.attempted = None;
                }
                Outcome::Answered(status, body) => {
                    return unexpected(format!("{step}: {status} {body}"));
                }
                Outcome::Lost => return,
            }
            succeeded();
        }
    }
}

/// After a restart: everything the client was told is there.
async fn verify(server: &Server, ledger: &Mutex<Ledger>) {
    let client = client();
    let base = server.url("");
    let (tickets, unanswered, mut expected_total) = {
        let mut ledger = ledger.lock().unwrap();
        assert!(ledger.unexpected.is_empty(), "{:?}", ledger.unexpected);
        let unanswered = std::mem::take(&mut ledger.unanswered);
        (
            ledger.tickets.clone(),
            unanswered,
            ledger.created_keys.len(),
        )
    };
    for (id, track) in &tickets {
        let Outcome::Answered(status, ticket) = call(
            &client,
            &base,
            Method::GET,
            &format!("/v1/tickets/{id}"),
            AGENT,
            None,
            None,
        )
        .await
        else {
            panic!("no answer for {id}");
        };
        assert_eq!(status, StatusCode::OK, "ticket {id} lost: {ticket}");
        let state = ticket["state"].as_str().unwrap();
        assert!(
            state == track.confirmed || track.attempted.as_deref() == Some(state),
            "ticket {id} is {state}; the client was told {} (and tried {:?})",
            track.confirmed,
            track.attempted
        );
        let events: Vec<&str> = ticket["timeline"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["event"].as_str().unwrap())
            .collect();
        assert_eq!(events, timeline_for(state), "timeline of {id}");
    }
    // A report whose answer was lost, retried with its key, is at most one ticket.
    for (key, body) in &unanswered {
        match call(
            &client,
            &base,
            Method::POST,
            "/v1/tickets",
            AGENT,
            Some(body),
            Some(key),
        )
        .await
        {
            Outcome::Answered(StatusCode::OK | StatusCode::CREATED, ticket) => {
                let mut ledger = ledger.lock().unwrap();
                ledger.created_keys.push(key.clone());
                ledger.tickets.insert(
                    ticket["id"].as_str().unwrap().to_owned(),
                    Track {
                        confirmed: ticket["state"].as_str().unwrap().to_owned(),
                        attempted: None,
                        crew_token: None,
                    },
                );
                expected_total += 1;
            }
            Outcome::Answered(status, answer) => panic!("retry of {key}: {status} {answer}"),
            Outcome::Lost => panic!("retry of {key}: no answer"),
        }
    }
    let Outcome::Answered(_, list) = call(
        &client,
        &base,
        Method::GET,
        "/v1/tickets?limit=500",
        SUPERVISOR,
        None,
        None,
    )
    .await
    else {
        panic!("no answer to the listing");
    };
    assert_eq!(
        list["items"].as_array().unwrap().len(),
        expected_total,
        "one ticket per idempotency key"
    );
}

/// Takes every open ticket to its close, with the crew token minted before the crash where
/// there is one: proves tokens survive, and frees the crews for the next round.
async fn finish_open_tickets(server: &Server, ledger: &Mutex<Ledger>) {
    let client = client();
    let base = server.url("");
    let tickets = ledger.lock().unwrap().tickets.clone();
    for (id, track) in tickets {
        let Outcome::Answered(_, ticket) = call(
            &client,
            &base,
            Method::GET,
            &format!("/v1/tickets/{id}"),
            AGENT,
            None,
            None,
        )
        .await
        else {
            panic!("no answer for {id}");
        };
        let mut state = ticket["state"].as_str().unwrap().to_owned();
        if !matches!(
            state.as_str(),
            "dispatched" | "acknowledged" | "en_route" | "on_site" | "restored" | "returned"
        ) {
            continue;
        }
        let token = match track.crew_token {
            Some(token) => token,
            None => {
                let crew = ticket["crew_id"].as_str().unwrap();
                let Outcome::Answered(StatusCode::CREATED, answer) = call(
                    &client,
                    &base,
                    Method::POST,
                    "/v1/admin/crew-tokens",
                    ADMIN,
                    Some(&json!({"crew_id": crew})),
                    None,
                )
                .await
                else {
                    panic!("minting a token for {crew} failed");
                };
                answer["token"].as_str().unwrap().to_owned()
            }
        };
        let mut life: Vec<(&str, Value, &str, &str)> = steps()
            .into_iter()
            .map(|(step, body, state)| (step, body, state, token.as_str()))
            .collect();
        life.push((
            "close",
            json!({"callback": {"satisfied": true}}),
            "closed",
            AGENT,
        ));
        let from = timeline_for(&state).len() - 2;
        for (step, body, next, token) in life.into_iter().skip(from) {
            let Outcome::Answered(status, answer) = call(
                &client,
                &base,
                Method::POST,
                &format!("/v1/tickets/{id}/{step}"),
                token,
                Some(&body),
                None,
            )
            .await
            else {
                panic!("{step} of {id}: no answer");
            };
            assert_eq!(status, StatusCode::OK, "{step} of {id} ({state}): {answer}");
            state = next.to_owned();
        }
        let mut ledger = ledger.lock().unwrap();
        let track = ledger.tickets.get_mut(&id).unwrap();
        track.confirmed = state;
        track.attempted = None;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_acknowledged_write_survives_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path());
    let ledger = Arc::new(Mutex::new(Ledger::default()));
    let mut server = Server::start(&config).await;

    for round in 0..ROUNDS {
        let done = Arc::new(AtomicUsize::new(0));
        let threshold = Arc::new(Notify::new());
        let dead = Arc::new(AtomicBool::new(false));
        let workers: Vec<_> = (0..WORKERS)
            .map(|w| {
                tokio::spawn(worker(
                    round,
                    w,
                    server.url(""),
                    ledger.clone(),
                    done.clone(),
                    threshold.clone(),
                    dead.clone(),
                ))
            })
            .collect();
        // Kill at the threshold, with requests in flight; or when the workers ran out of
        // tickets first (a kill then still tests recovery).
        let all_finished = futures_util::future::join_all(workers);
        tokio::pin!(all_finished);
        let finished_first = tokio::select! {
            () = threshold.notified() => None,
            results = &mut all_finished => Some(results),
        };
        server.child.kill().await.unwrap();
        dead.store(true, Ordering::SeqCst);
        let results = match finished_first {
            Some(results) => results,
            None => tokio::time::timeout(Duration::from_secs(60), all_finished)
                .await
                .expect("the workers stop once the service is gone"),
        };
        for result in results {
            result.expect("a worker panicked");
        }
        assert!(
            done.load(Ordering::SeqCst) > 0,
            "round {round}: nothing succeeded before the kill"
        );

        server = Server::start(&config).await;
        {
            let ledger = ledger.lock().unwrap();
            let cut_off = ledger
                .tickets
                .values()
                .filter(|t| t.attempted.is_some())
                .count();
            eprintln!(
                "round {round}: {} requests answered, {} tickets so far, {cut_off} steps and {} reports cut off by the kill",
                done.load(Ordering::SeqCst),
                ledger.tickets.len(),
                ledger.unanswered.len(),
            );
        }
        verify(&server, &ledger).await;
        finish_open_tickets(&server, &ledger).await;
    }

    // New work is accepted after the last restart.
    let client = client();
    let Outcome::Answered(status, _) = call(
        &client,
        &server.url(""),
        Method::POST,
        "/v1/tickets",
        AGENT,
        Some(&report()),
        None,
    )
    .await
    else {
        panic!("no answer after the last restart");
    };
    assert_eq!(status, StatusCode::CREATED);

    // SIGTERM: a clean stop.
    let pid = server.child.id().unwrap();
    let signalled = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .await
        .unwrap();
    assert!(signalled.success());
    let status = tokio::time::timeout(Duration::from_secs(30), server.child.wait())
        .await
        .expect("the service stops within 30 s of SIGTERM")
        .unwrap();
    assert!(status.success(), "exit status after SIGTERM: {status}");
}

/// A log whose replay breaks an invariant (here one crew sent to two tickets, as a bug or a
/// hand-edited store could leave it) still starts, and says so on /metrics for the alert.
#[tokio::test]
async fn a_rebuilt_state_that_breaks_an_invariant_is_reported() {
    use dispatch::domain::{Actor, CrewId, Event, EventKind, TicketId, Timestamp};
    use dispatch::store::{Batch, Durability, EmbeddedStore, Store};

    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path());
    let mut server = Server::start(&config).await;
    let http = client();
    let mut tickets = Vec::new();
    for lat in [STATION_LAT, STATION_LAT + 0.05] {
        let (status, ticket) = send(
            http.post(server.url("/v1/tickets"))
                .bearer_auth(AGENT)
                .json(&report_at(lat, STATION_LON, "no_power")),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{ticket}");
        tickets.push(ticket);
    }
    let problems = |text: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix("dispatch_recovered_state_problems "))
            .map(|v| v.trim().parse::<f64>().unwrap())
    };
    let metrics = http.get(server.url("/metrics")).send().await.unwrap();
    assert_eq!(problems(&metrics.text().await.unwrap()), Some(0.0));
    server.child.kill().await.unwrap();
    let _ = server.child.wait().await;

    // The first ticket's crew, sent to the second ticket as well.
    let now = Timestamp::from_millis(
        i64::try_from(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_millis(),
        )
        .unwrap(),
    );
    let store = EmbeddedStore::open(&dir.path().join("data")).unwrap();
    let crew = CrewId::new(tickets[0]["crew_id"].as_str().unwrap());
    let twice = Event {
        at: now,
        actor: Actor::System,
        kind: EventKind::Dispatched {
            ticket: TicketId::new(id(&tickets[1])),
            crew,
            eta_minutes: 5.0,
            acknowledge_by: now.plus_minutes(5),
        },
    };
    let batch = Batch {
        events: vec![twice],
        ..Batch::default()
    };
    store.append(batch, Durability::Durable).await.unwrap();
    store.close().await.unwrap();
    drop(store);

    let server = Server::start(&config).await;
    let metrics = http.get(server.url("/metrics")).send().await.unwrap();
    let found = problems(&metrics.text().await.unwrap());
    assert!(found.is_some_and(|n| n >= 1.0), "{found:?}");
}
