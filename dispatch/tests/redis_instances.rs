//! Many instances, one truth: real `dispatch serve` processes sharing a real Redis (and a
//! real three-master Redis Cluster), started by the tests. Whatever instance each call lands
//! on, no crew is sent to two jobs, no ticket gets two crews, every timeline runs without
//! gaps, both instances answer the same for every ticket; Redis killed under load loses no
//! ticket that got a 201; the deciding instance killed, the other refuses writes with
//! `no_leader` until its lease lapses and then takes over; and a deadline two instances race
//! for acts once.

// Tests: a panic is a failed test, and helpers outside #[test] functions unwrap too.
#![allow(clippy::unwrap_used)]

mod common;

use common::process::ServiceProcess;
use common::redis::{RedisCluster, RedisServer};
use common::*;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How long a test waits for an instance to take over the writes.
const TAKEOVER: Duration = Duration::from_secs(30);

fn write_config(dir: &Path, name: &str, urls: &[String], namespace: &str) -> PathBuf {
    write_config_with_lease(dir, name, urls, namespace, 1500)
}

fn write_config_with_lease(
    dir: &Path,
    name: &str,
    urls: &[String],
    namespace: &str,
    lease_ms: u64,
) -> PathBuf {
    let path = dir.join(format!("{name}.toml"));
    let url = if urls.len() == 1 {
        format!("{:?}", urls[0])
    } else {
        format!("{urls:?}")
    };
    let text = format!(
        r#"
[server]
bind = "127.0.0.1:0"
shutdown_grace_seconds = 5
[store]
kind = "redis"
url = {url}
namespace = "{namespace}"
path = {data:?}
lease_ms = {lease_ms}
command_timeout_ms = 1000
write_timeout_ms = 3000
[region]
path = {region:?}
[log]
format = "json"
filter = "warn,dispatch=info"
{tokens}"#,
        data = dir.join(format!("data-{name}")).display().to_string(),
        region = region_dir().display().to_string(),
        tokens = tokens_toml(),
    );
    std::fs::write(&path, text).unwrap();
    path
}

/// A client call's answer: status and JSON body, or `None` when no answer came.
async fn call(
    url: String,
    method: Method,
    token: &str,
    body: Option<&Value>,
    key: Option<&str>,
) -> Option<(StatusCode, Value)> {
    let mut request = client().request(method, url).bearer_auth(token);
    if let Some(body) = body {
        request = request.json(body);
    }
    if let Some(key) = key {
        request = request.header("Idempotency-Key", key);
    }
    let response = request.send().await.ok()?;
    let status = response.status();
    let text = response.text().await.ok()?;
    Some((status, serde_json::from_str(&text).unwrap_or(Value::Null)))
}

/// Calls until an answer other than a 503 comes (a write may land while the instances
/// agree who decides); a 503 always carries Retry-After.
async fn call_retrying(
    instance: &ServiceProcess,
    method: Method,
    path: &str,
    token: &str,
    body: Option<&Value>,
    key: Option<&str>,
) -> (StatusCode, Value) {
    let deadline = tokio::time::Instant::now() + TAKEOVER;
    loop {
        if let Some((status, body)) =
            call(instance.url(path), method.clone(), token, body, key).await
            && status != StatusCode::SERVICE_UNAVAILABLE
        {
            return (status, body);
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{method} {path} kept failing"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// An admin mints a token for `crew` through `instance`.
async fn mint(instance: &ServiceProcess, crew: &str) -> (StatusCode, Value) {
    let body = json!({ "crew_id": crew });
    call_retrying(
        instance,
        Method::POST,
        "/v1/admin/crew-tokens",
        ADMIN,
        Some(&body),
        None,
    )
    .await
}

/// A report at one of the region's stations, spread so crews are contended.
fn spread_report(n: usize) -> Value {
    // Urban stations of Huizhou city: several reports land on each, more than its crews.
    const PLACES: [(f64, f64); 4] = [
        (23.11147, 114.41523),
        (23.0795, 114.4037),
        (23.0960, 114.3950),
        (23.0400, 114.4200),
    ];
    let (lat, lon) = PLACES[n % PLACES.len()];
    let mut report = report_at(lat + (n as f64) * 1e-5, lon, "other");
    report["caller"]["phone"] = json!(format!("1380000{n:04}"));
    report
}

/// What the client saw of the workload.
#[derive(Debug, Default)]
struct Seen {
    /// Ticket id → the state its last 2xx said.
    tickets: HashMap<String, String>,
    unexpected: Vec<String>,
}

/// Creates `count` tickets from `workers` concurrent clients, each call on the next
/// instance in turn, and walks some of the dispatched ones a few steps with their crew's
/// token, again on alternating instances.
async fn workload(instances: &[Arc<ServiceProcess>], count: usize, workers: usize) -> Seen {
    let seen = Arc::new(Mutex::new(Seen::default()));
    let next = Arc::new(AtomicUsize::new(0));
    let mut handles = Vec::new();
    for worker in 0..workers {
        let instances = instances.to_vec();
        let seen = seen.clone();
        let next = next.clone();
        handles.push(tokio::spawn(async move {
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= count {
                    return;
                }
                let at = |k: usize| instances[(n + k) % instances.len()].clone();
                let key = format!("load-{worker}-{n}");
                let (status, ticket) = call_retrying(
                    &at(0),
                    Method::POST,
                    "/v1/tickets",
                    AGENT,
                    Some(&spread_report(n)),
                    Some(&key),
                )
                .await;
                if status != StatusCode::CREATED {
                    seen.lock()
                        .unwrap()
                        .unexpected
                        .push(format!("create {status} {ticket}"));
                    continue;
                }
                let id = ticket["id"].as_str().unwrap().to_owned();
                let state = ticket["state"].as_str().unwrap().to_owned();
                seen.lock()
                    .unwrap()
                    .tickets
                    .insert(id.clone(), state.clone());
                if state != "dispatched" || n.is_multiple_of(3) {
                    continue;
                }
                let crew = ticket["crew_id"].as_str().unwrap().to_owned();
                let (status, minted) = mint(&at(1), &crew).await;
                if status != StatusCode::CREATED {
                    seen.lock()
                        .unwrap()
                        .unexpected
                        .push(format!("mint {status} {minted}"));
                    continue;
                }
                let token = minted["token"].as_str().unwrap().to_owned();
                // A few reject (the job goes on to another crew); the rest work it.
                let steps: &[(&str, &str)] = if n % 7 == 1 {
                    &[("reject", "queued_or_dispatched")]
                } else {
                    &[
                        ("ack", "acknowledged"),
                        ("depart", "en_route"),
                        ("arrive", "on_site"),
                    ]
                };
                for (i, (step, _)) in steps.iter().enumerate() {
                    let body = if *step == "reject" {
                        json!({"reason": "truck broke down"})
                    } else {
                        json!({})
                    };
                    let (status, after) = call_retrying(
                        &at(2 + i),
                        Method::POST,
                        &format!("/v1/tickets/{id}/{step}"),
                        &token,
                        Some(&body),
                        None,
                    )
                    .await;
                    if status != StatusCode::OK {
                        seen.lock()
                            .unwrap()
                            .unexpected
                            .push(format!("{step} {status} {after}"));
                        break;
                    }
                    let state = after["state"].as_str().unwrap().to_owned();
                    seen.lock().unwrap().tickets.insert(id.clone(), state);
                }
            }
        }));
    }
    for handle in handles {
        handle.await.unwrap();
    }
    Arc::try_unwrap(seen).unwrap().into_inner().unwrap()
}

/// Every ticket listed by `instance`, in creation order.
async fn all_tickets(instance: &ServiceProcess) -> Vec<Value> {
    let mut items = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/v1/tickets?limit=200&cursor={c}"),
            None => "/v1/tickets?limit=200".to_owned(),
        };
        let (status, page) =
            call_retrying(instance, Method::GET, &path, SUPERVISOR, None, None).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        items.extend(page["items"].as_array().unwrap().iter().cloned());
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => return items,
        }
    }
}

/// States in which a ticket holds its crew.
const HOLDS_CREW: [&str; 5] = [
    "dispatched",
    "acknowledged",
    "en_route",
    "on_site",
    "restored",
];

/// The events that may come right after each event on one ticket's timeline (SLA events
/// and merges aside): what "no gaps" means.
fn may_follow(previous: &str, next: &str) -> bool {
    matches!(
        (previous, next),
        ("reported", "dispatched" | "queued" | "merged")
            | ("queued", "dispatched" | "cancelled")
            | ("dispatched", "acknowledged" | "declined" | "cancelled")
            | ("declined", "dispatched" | "queued")
            | ("acknowledged", "departed" | "cancelled")
            | ("departed", "arrived" | "cancelled")
            | ("arrived", "restored")
            | ("restored", "returned")
            | ("returned", "closed")
    )
}

/// Checks one region's instances after the workload: the same answers everywhere, the
/// client's view confirmed, no crew or ticket double-booked, timelines without gaps.
async fn verify(instances: &[Arc<ServiceProcess>], seen: &Seen) {
    assert!(
        seen.unexpected.is_empty(),
        "unexpected answers: {:?}",
        seen.unexpected
    );
    let listed: Vec<Vec<Value>> =
        futures_util::future::join_all(instances.iter().map(|i| all_tickets(i))).await;
    for other in &listed[1..] {
        assert_eq!(&listed[0], other, "instances list different tickets");
    }
    let ids: HashSet<String> = listed[0]
        .iter()
        .map(|t| t["id"].as_str().unwrap().to_owned())
        .collect();
    for id in seen.tickets.keys() {
        assert!(ids.contains(id), "ticket {id} got a 2xx and is missing");
    }

    let mut crews_of_tickets: HashMap<String, String> = HashMap::new();
    for ticket in &listed[0] {
        let id = ticket["id"].as_str().unwrap();
        let path = format!("/v1/tickets/{id}");
        let mut answers = Vec::new();
        for instance in instances {
            let (status, detail) =
                call_retrying(instance, Method::GET, &path, AGENT, None, None).await;
            assert_eq!(status, StatusCode::OK);
            // The estimated restoration moves with the clock once a crew is overdue: it
            // differs between two reads whichever instance answers.
            let mut detail = detail;
            detail.as_object_mut().unwrap().remove("etr");
            answers.push(detail);
        }
        for other in &answers[1..] {
            assert_eq!(&answers[0], other, "instances answer {id} differently");
        }
        let detail = &answers[0];
        let state = detail["state"].as_str().unwrap();
        if let Some(confirmed) = seen.tickets.get(id)
            && HOLDS_CREW.contains(&confirmed.as_str())
        {
            assert_eq!(state, confirmed, "{id}");
        }
        let events: Vec<&str> = detail["timeline"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["event"].as_str().unwrap())
            .filter(|e| !e.starts_with("sla_"))
            .collect();
        assert_eq!(events.first(), Some(&"reported"), "{id}: {events:?}");
        for pair in events.windows(2) {
            assert!(may_follow(pair[0], pair[1]), "{id}: a gap in {events:?}");
        }
        if HOLDS_CREW.contains(&state) {
            let crew = detail["crew_id"].as_str().unwrap().to_owned();
            if let Some(other) = crews_of_tickets.insert(crew.clone(), id.to_owned()) {
                panic!("crew {crew} holds both {other} and {id}");
            }
        }
    }

    let mut crew_lists = Vec::new();
    for instance in instances {
        let (status, crews) =
            call_retrying(instance, Method::GET, "/v1/crews", SUPERVISOR, None, None).await;
        assert_eq!(status, StatusCode::OK);
        crew_lists.push(crews);
    }
    for other in &crew_lists[1..] {
        assert_eq!(&crew_lists[0], other, "instances disagree on the crews");
    }
    for crew in crew_lists[0]["items"].as_array().unwrap() {
        let id = crew["id"].as_str().unwrap();
        match crew["ticket_id"].as_str() {
            Some(ticket) => assert_eq!(
                crews_of_tickets.get(id).map(String::as_str),
                Some(ticket),
                "crew {id} says it holds {ticket}"
            ),
            None => assert!(
                !crews_of_tickets.contains_key(id),
                "crew {id} holds a ticket it does not show"
            ),
        }
    }
}

async fn start_instances(
    dir: &Path,
    urls: &[String],
    namespace: &str,
    count: usize,
) -> Vec<Arc<ServiceProcess>> {
    let mut instances = Vec::new();
    for i in 0..count {
        let config = write_config(dir, &format!("{namespace}-{i}"), urls, namespace);
        instances.push(Arc::new(ServiceProcess::start(&config).await));
    }
    instances
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_instances_on_one_redis_share_one_truth() {
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let instances = start_instances(dir.path(), &[redis.url()], "huizhou", 2).await;
    let seen = workload(&instances, 300, 24).await;
    verify(&instances, &seen).await;
    // Redis's own view of the claims agrees: one entry per crew that holds a job.
    let held = seen
        .tickets
        .values()
        .filter(|s| HOLDS_CREW.contains(&s.as_str()))
        .count();
    let jobs: usize = redis
        .cli(&["HLEN", "dispatch:{huizhou}:crew-jobs"])
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(
        jobs >= held,
        "{jobs} claims in Redis for {held} tickets holding crews"
    );
    a_revocation_reaches_every_instance(&instances).await;
}

/// Whether `token` opens `crew`'s jobs on `instance`, once the instance answers.
async fn opens(instance: &ServiceProcess, crew: &str, token: &str) -> bool {
    let path = format!("/v1/crews/{crew}/jobs");
    let (status, body) = call_retrying(instance, Method::GET, &path, token, None, None).await;
    match status {
        StatusCode::OK => true,
        StatusCode::UNAUTHORIZED => false,
        other => panic!("GET {path}: {other} {body}"),
    }
}

/// Asserts `token` opens (or not) on every instance. No waiting: a read on the instance that
/// does not decide first follows the log as far as it went, so a mint or a revocation
/// answered through any instance holds on all of them from that answer on.
async fn everywhere(instances: &[Arc<ServiceProcess>], crew: &str, token: &str, want: bool) {
    for instance in instances {
        assert_eq!(
            opens(instance, crew, token).await,
            want,
            "the token on {}",
            instance.url("")
        );
    }
}

/// A token minted through one instance and revoked through the other opens nothing on
/// either, whichever of them decides.
async fn a_revocation_reaches_every_instance(instances: &[Arc<ServiceProcess>]) {
    let (status, crews) =
        call_retrying(&instances[0], Method::GET, "/v1/crews", ADMIN, None, None).await;
    assert_eq!(status, StatusCode::OK, "{crews}");
    let crew = crews["items"][0]["id"].as_str().unwrap().to_owned();
    let (status, minted) = mint(&instances[0], &crew).await;
    assert_eq!(status, StatusCode::CREATED, "{minted}");
    let token = minted["token"].as_str().unwrap().to_owned();
    everywhere(instances, &crew, &token, true).await;
    let (status, revoked) = call_retrying(
        &instances[1],
        Method::DELETE,
        &format!("/v1/admin/crews/{crew}/tokens"),
        ADMIN,
        None,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{revoked}");
    assert!(revoked["revoked"].as_u64().unwrap() >= 1, "{revoked}");
    everywhere(instances, &crew, &token, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_regions_on_different_shards_of_a_three_master_cluster() {
    let cluster = RedisCluster::start();
    // Two namespaces whose hash tags fall on different masters.
    let candidates = [
        "north", "south", "east", "west", "huizhou", "shanwei", "heyuan",
    ];
    let first = candidates[0];
    let first_master = cluster.master_of(&format!("{{{first}}}"));
    let second = candidates[1..]
        .iter()
        .find(|ns| cluster.master_of(&format!("{{{ns}}}")) != first_master)
        .expect("some namespace hashes to another master");
    let dir = tempfile::tempdir().unwrap();
    let urls = cluster.urls();
    let north = start_instances(dir.path(), &urls, first, 2).await;
    let south = start_instances(dir.path(), &urls, second, 2).await;
    let (seen_north, seen_south) =
        tokio::join!(workload(&north, 120, 12), workload(&south, 120, 12));
    verify(&north, &seen_north).await;
    verify(&south, &seen_south).await;
    // Each region's log lives on its own master.
    for (namespace, master) in [
        (first, first_master),
        (*second, cluster.master_of(&format!("{{{second}}}"))),
    ] {
        let node = cluster.nodes.iter().find(|n| n.port == master).unwrap();
        let length: u64 = node
            .cli(&["XLEN", &format!("dispatch:{{{namespace}}}:log")])
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        assert!(length > 0, "{namespace}'s log is not on its master");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_killed_under_load_loses_no_ticket_that_got_a_201() {
    let mut redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let instances = start_instances(dir.path(), &[redis.url()], "huizhou", 2).await;
    // Someone decides before the load starts.
    let (status, _) = call_retrying(
        &instances[0],
        Method::POST,
        "/v1/tickets",
        AGENT,
        Some(&spread_report(0)),
        Some("warm-up"),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);

    let created = Arc::new(Mutex::new(Vec::<String>::new()));
    let refused = Arc::new(AtomicUsize::new(0));
    let other = Arc::new(Mutex::new(Vec::<String>::new()));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut clients = Vec::new();
    for worker in 0..8 {
        let instances = instances.clone();
        let (created, refused, other, stop) = (
            created.clone(),
            refused.clone(),
            other.clone(),
            stop.clone(),
        );
        clients.push(tokio::spawn(async move {
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) && n < 400 {
                n += 1;
                let instance = &instances[(worker + n) % instances.len()];
                let key = format!("kill-{worker}-{n}");
                match call(
                    instance.url("/v1/tickets"),
                    Method::POST,
                    AGENT,
                    Some(&spread_report(n)),
                    Some(&key),
                )
                .await
                {
                    Some((StatusCode::CREATED, ticket)) => {
                        created
                            .lock()
                            .unwrap()
                            .push(ticket["id"].as_str().unwrap().to_owned());
                    }
                    Some((StatusCode::SERVICE_UNAVAILABLE, _)) => {
                        refused.fetch_add(1, Ordering::Relaxed);
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                    Some((status, body)) => other.lock().unwrap().push(format!("{status} {body}")),
                    None => other.lock().unwrap().push("no answer".into()),
                }
            }
        }));
    }
    // Kill Redis once some tickets are in, and bring it back a little later.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while created.lock().unwrap().len() < 50 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no load went through"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    redis.kill();
    tokio::time::sleep(Duration::from_secs(2)).await;
    redis.restart();
    // Writes are taken again by themselves (the instances rebuild from the log).
    let deadline = tokio::time::Instant::now() + TAKEOVER;
    let resumed_at = created.lock().unwrap().len();
    while created.lock().unwrap().len() < resumed_at + 20 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "writes did not resume after Redis returned"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop.store(true, Ordering::Relaxed);
    for client in clients {
        client.await.unwrap();
    }
    assert!(
        other.lock().unwrap().is_empty(),
        "answers other than 201 and 503: {:?}",
        other.lock().unwrap()
    );
    assert!(
        refused.load(Ordering::Relaxed) > 0,
        "Redis was down and nobody got a 503"
    );
    let created = created.lock().unwrap().clone();
    for instance in &instances {
        holds_every(instance, &created).await;
    }
}

/// Every ticket that got a 201 reads back from `instance`.
async fn holds_every(instance: &ServiceProcess, created: &[String]) {
    for id in created {
        let (status, body) = call_retrying(
            instance,
            Method::GET,
            &format!("/v1/tickets/{id}"),
            AGENT,
            None,
            None,
        )
        .await;
        assert_eq!(
            status,
            StatusCode::OK,
            "ticket {id} got a 201 and is missing: {body}"
        );
    }
}

/// The deciding instance dies. Until the other takes the lease over, a write on it is
/// answered 503 `no_leader` with Retry-After (it cannot reach the holder, and it never
/// decides behind a live lease); then it decides, takes writes, and holds every ticket that
/// got a 201 before the death. (That a deposed holder can never write is tested with the
/// store, and by the deadline race below.)
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_deciding_instance_dies_and_the_other_takes_over() {
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let mut instances = Vec::new();
    for name in ["a", "b"] {
        // A long lease, renewed every 2 s: the dead holder's lease still has seconds to run
        // when the first write comes, however slow this machine is at the moment.
        let config = write_config_with_lease(
            dir.path(),
            &format!("huizhou-{name}"),
            &[redis.url()],
            "huizhou",
            6000,
        );
        instances.push(ServiceProcess::start(&config).await);
    }
    let mut created = Vec::new();
    for n in 0..6 {
        let (status, ticket) = call_retrying(
            &instances[n % 2],
            Method::POST,
            "/v1/tickets",
            AGENT,
            Some(&spread_report(n)),
            Some(&format!("before-{n}")),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{ticket}");
        created.push(id(&ticket).to_owned());
    }
    // The lease names its holder by the address it advertises (its bind address here).
    let lease_key = "dispatch:{huizhou}:lease";
    let lease = redis.cli(&["GET", lease_key]).unwrap();
    let holder = instances
        .iter()
        .position(|i| lease.contains(&i.addr.to_string()))
        .unwrap_or_else(|| panic!("no instance holds the lease {lease:?}"));
    // A write handed over is answered as the holder answered it, headers included.
    let handed_over = client()
        .post(instances[1 - holder].url("/v1/tickets"))
        .bearer_auth(AGENT)
        .header("Idempotency-Key", "handed-over")
        .json(&spread_report(50))
        .send()
        .await
        .unwrap();
    assert_eq!(handed_over.status(), StatusCode::CREATED);
    let location = handed_over.headers()["location"]
        .to_str()
        .unwrap()
        .to_owned();
    let ticket: Value = handed_over.json().await.unwrap();
    assert_eq!(location, format!("/v1/tickets/{}", id(&ticket)));
    created.push(id(&ticket).to_owned());
    let mut dead = instances.remove(holder);
    let survivor = instances.remove(0);
    dead.child.kill().await.unwrap();

    let mut refused_in_the_dead_lease = 0;
    let mut n = 0;
    let deadline = tokio::time::Instant::now() + TAKEOVER;
    let ticket = loop {
        n += 1;
        assert!(tokio::time::Instant::now() < deadline, "no takeover");
        let lease_left_ms: i64 = redis
            .cli(&["PTTL", lease_key])
            .and_then(|t| t.trim().parse().ok())
            .unwrap_or(-2);
        let dead_holds = redis
            .cli(&["GET", lease_key])
            .is_some_and(|v| v.contains(&dead.addr.to_string()));
        let response = client()
            .post(survivor.url("/v1/tickets"))
            .bearer_auth(AGENT)
            .header("Idempotency-Key", format!("after-{n}"))
            .json(&spread_report(100 + n))
            .send()
            .await
            .unwrap();
        let status = response.status();
        let retry_after = response.headers().contains_key("retry-after");
        let body: Value = response.json().await.unwrap();
        if status == StatusCode::CREATED {
            break body;
        }
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
        assert!(retry_after, "a 503 without Retry-After: {body}");
        if dead_holds && lease_left_ms > 1000 {
            // Sent with a second or more left on the dead holder's lease: the survivor
            // could only hand it over, and the holder cannot be reached.
            assert_eq!(body["error"]["code"], "no_leader", "{body}");
            refused_in_the_dead_lease += 1;
            // An unknown caller is told so, not to retry later.
            let stranger = client()
                .post(survivor.url("/v1/tickets"))
                .bearer_auth("not-a-token-anyone-was-given")
                .json(&spread_report(100 + n))
                .send()
                .await
                .unwrap();
            assert_eq!(stranger.status(), StatusCode::UNAUTHORIZED);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(
        refused_in_the_dead_lease > 0,
        "no write was sent while the dead holder's lease ran"
    );
    created.push(id(&ticket).to_owned());
    holds_every(&survivor, &created).await;
}

/// The crew's position as `instance` shows it to a supervisor.
async fn position_of(instance: &ServiceProcess, crew: &str) -> Option<(f64, f64)> {
    let (status, crews) = call(
        instance.url("/v1/crews"),
        Method::GET,
        SUPERVISOR,
        None,
        None,
    )
    .await?;
    if status != StatusCode::OK {
        return None;
    }
    let crew = crews["items"]
        .as_array()?
        .iter()
        .find(|c| c["id"] == crew)?;
    Some((
        crew["position"]["lat"].as_f64()?,
        crew["position"]["lon"].as_f64()?,
    ))
}

/// The deciding instance loses its lease while a crew's ping, a write answered before Redis
/// has it, is on its way: the log refuses it. The instance, no longer deciding, must not keep
/// a position the log never got: memory ahead of the log would take the next holder's batch
/// of that number for one it already had, and part ways with every other instance.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_ping_the_log_refused_is_not_kept_after_the_lease_is_lost() {
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    // A long lease, renewed every 2 s: the ping goes out while the instance still decides.
    let config = write_config_with_lease(dir.path(), "huizhou-a", &[redis.url()], "huizhou", 6000);
    let instance = ServiceProcess::start(&config).await;
    let (status, crews) =
        call_retrying(&instance, Method::GET, "/v1/crews", SUPERVISOR, None, None).await;
    assert_eq!(status, StatusCode::OK, "{crews}");
    let crew = crews["items"][0]["id"].as_str().unwrap().to_owned();
    let (status, minted) = mint(&instance, &crew).await;
    assert_eq!(status, StatusCode::CREATED, "{minted}");
    let token = minted["token"].as_str().unwrap().to_owned();
    let ping = |lat: f64| json!({"lat": lat, "lon": 114.40});
    let in_the_log = 23.10;
    let (status, body) = call_retrying(
        &instance,
        Method::POST,
        &format!("/v1/crews/{crew}/position"),
        &token,
        Some(&ping(in_the_log)),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");

    // Another holder takes the lease; the instance learns of it at its next renewal.
    redis
        .cli(&[
            "SET",
            "dispatch:{huizhou}:lease",
            "http://127.0.0.1:9",
            "PX",
            "60000",
        ])
        .unwrap();
    let refused = 23.20;
    let (status, body) = call(
        instance.url(&format!("/v1/crews/{crew}/position")),
        Method::POST,
        &token,
        Some(&ping(refused)),
        None,
    )
    .await
    .expect("an answer");
    assert_eq!(
        status,
        StatusCode::NO_CONTENT,
        "the ping was not taken while the instance still decided: {body}"
    );

    let deadline = tokio::time::Instant::now() + TAKEOVER;
    loop {
        let position = position_of(&instance, &crew).await;
        if position.is_some_and(|(lat, _)| (lat - in_the_log).abs() < 1e-9) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the instance kept a position the log refused: {position:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

mod deadline_race {
    use super::*;
    use dispatch::config::{Config, RedisUrls, RegionConfig, StoreConfig, StoreKind};
    use dispatch::domain::{
        Caller, DeclineReason, EventKind, FaultCategory, FaultReport, LatLon, Priority,
        TicketState, Timestamp,
    };
    use dispatch::service::{Dispatcher, ManualClock, Principal};
    use dispatch::store::{RedisStore, Store};

    fn config(redis: &RedisServer, dir: &Path) -> Config {
        Config {
            store: StoreConfig {
                kind: StoreKind::Redis,
                url: Some(RedisUrls::One(redis.url())),
                namespace: Some("huizhou".into()),
                path: dir.to_path_buf(),
                lease_ms: 900,
                ..StoreConfig::default()
            },
            region: RegionConfig { path: region_dir() },
            tokens: tokens(),
            ..Config::default()
        }
    }

    async fn instance(config: &Config, clock: Arc<ManualClock>) -> Arc<Dispatcher> {
        let store = RedisStore::open(dispatch::redis_options(config).unwrap())
            .await
            .unwrap();
        Arc::new(
            dispatch::recover(config, Arc::new(store), clock)
                .await
                .unwrap(),
        )
    }

    async fn until(what: &str, condition: impl Fn() -> bool) {
        let deadline = tokio::time::Instant::now() + TAKEOVER;
        while !condition() {
            assert!(
                tokio::time::Instant::now() < deadline,
                "timed out waiting: {what}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Instance A decides and stalls (it stops renewing its lease but still believes it
    /// decides); its lease lapses and B takes over. Both see the acknowledgement deadline of
    /// the same dispatch pass and fire at once: the job goes to the next crew once, the
    /// stale instance's write is refused, and it rebuilds to agree with B.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn a_deadline_two_deciding_instances_race_for_acts_once() {
        let redis = RedisServer::start();
        let dir = tempfile::tempdir().unwrap();
        let config = config(&redis, dir.path());
        let clock = Arc::new(ManualClock::new(Timestamp::from_millis(1_780_000_000_000)));

        let a = instance(&config, clock.clone()).await;
        let a_lease = tokio::spawn(a.clone().keep_lease("http://a.invalid".into()));
        tokio::spawn(a.clone().follow_log());
        tokio::spawn(a.clone().heal());
        until("A decides", || a.decides()).await;
        let b = instance(&config, clock.clone()).await;
        tokio::spawn(b.clone().keep_lease("http://b.invalid".into()));
        tokio::spawn(b.clone().follow_log());
        tokio::spawn(b.clone().heal());

        let report = FaultReport {
            caller: Caller {
                name: "陈".into(),
                phone: "13900000000".into(),
            },
            location: LatLon::new(STATION_LAT, STATION_LON).unwrap(),
            address: "惠城区 1号".into(),
            category: FaultCategory::Other,
            priority: Priority::Normal,
            important_customer: false,
            description: String::new(),
        };
        let ticket = a
            .create_ticket(&Principal::Agent, report, None)
            .await
            .unwrap()
            .ticket;
        assert_eq!(ticket.state, TicketState::Dispatched);
        let first_crew = ticket.crew.clone().unwrap();
        assert!(b.wait_applied(a.applied_seq(), TAKEOVER).await);

        // A stalls: no more renewals; its lease lapses and B takes it.
        a_lease.abort();
        redis.cli(&["DEL", "dispatch:{huizhou}:lease"]).unwrap();
        until("B decides", || b.decides()).await;
        assert!(
            a.decides(),
            "A has not noticed yet: both believe they decide"
        );

        clock.advance_minutes(6);
        let (from_a, from_b) = tokio::join!(a.fire_deadlines(), b.fire_deadlines());
        assert!(
            from_a.is_err(),
            "the stale instance's write must be refused"
        );
        assert_eq!(from_b.unwrap().timeouts, 1);

        // The log holds one reassignment, by the instance that held the lease.
        let reader = RedisStore::open(dispatch::redis_options(&config).unwrap())
            .await
            .unwrap();
        let mut events = Vec::new();
        let mut sink = |event| events.push(event);
        reader.replay(&mut sink).await.unwrap();
        let timeouts = events
            .iter()
            .filter(|e| {
                matches!(&e.kind, EventKind::Declined { ticket: t, reason: DeclineReason::AcknowledgeTimeout, .. } if *t == ticket.id)
            })
            .count();
        assert_eq!(timeouts, 1, "{events:#?}");

        // A rebuilds from the log by itself and then answers as B does.
        until("A rebuilt", || !a.decides()).await;
        let deadline = tokio::time::Instant::now() + TAKEOVER;
        loop {
            let seen_by_a = a.ticket(&Principal::Supervisor, &ticket.id).await;
            let seen_by_b = b.ticket(&Principal::Supervisor, &ticket.id).await.unwrap();
            if let Ok(seen_by_a) = seen_by_a
                && seen_by_a.timeline == seen_by_b.timeline
            {
                assert_ne!(seen_by_b.ticket.crew.as_ref(), Some(&first_crew));
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "A never caught up with B"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}
