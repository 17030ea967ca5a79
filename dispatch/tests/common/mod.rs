//! Shared by the HTTP test binaries: [`TestApp::spawn`] runs the real service (`dispatch::run`)
//! on a loopback port with a temporary data directory and the bundled Huizhou region, and
//! offers a client with the test tokens.

// Each test binary uses its own part of this module.
#![allow(dead_code)]

pub mod process;
pub mod redis;

use dispatch::config::{Config, Role, ServerConfig, TokenConfig};
use dispatch::domain::{Event, TicketId};
use dispatch::service::{Clock, Dispatcher};
use dispatch::store::{Batch, Durability, EmbeddedStore, Recovered, Store, StoreError};
use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use reqwest::{Client, Method, RequestBuilder, StatusCode};
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tempfile::TempDir;
use tokio::sync::Notify;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub const AGENT: &str = "agent-token-for-tests-0001";
pub const SUPERVISOR: &str = "supervisor-token-for-tests-0001";
pub const ADMIN: &str = "admin-token-for-tests-0001";

/// Where every test request has to be answered by.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);

/// The station whose own location the tests report from: 惠州供电所, urban.
pub const STATION: &str = "441302-01";
pub const STATION_LAT: f64 = 23.11147;
pub const STATION_LON: f64 = 114.41523;

pub fn region_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../geo-data/regions/huizhou")
}

pub fn tokens() -> Vec<TokenConfig> {
    [
        (AGENT, Role::Agent),
        (SUPERVISOR, Role::Supervisor),
        (ADMIN, Role::Admin),
    ]
    .into_iter()
    .map(|(token, role)| TokenConfig {
        token: token.into(),
        role,
        crew_id: None,
    })
    .collect()
}

/// The test tokens as a configuration file's `[[tokens]]` tables.
pub fn tokens_toml() -> String {
    tokens()
        .iter()
        .map(|t| {
            format!(
                "[[tokens]]\ntoken = {:?}\nrole = {:?}\n",
                t.token,
                t.role.as_str()
            )
        })
        .collect()
}

pub fn client() -> Client {
    Client::builder()
        .timeout(REQUEST_TIMEOUT)
        .build()
        .expect("a plain HTTP client builds")
}

/// A fault report at `(lat, lon)`; `other` faults never merge, so each is its own job.
pub fn report_at(lat: f64, lon: f64, category: &str) -> Value {
    json!({
        "caller": {"name": "李明", "phone": "13800001234"},
        "location": {"lat": lat, "lon": lon},
        "address": "惠城区 河南岸 1号",
        "category": category,
        "priority": "normal",
        "important_customer": false,
        "description": "no power since 10:00",
    })
}

/// A ticket's id, from its JSON.
pub fn id(ticket: &Value) -> &str {
    ticket["id"].as_str().expect("a ticket has an id")
}

pub fn report() -> Value {
    report_at(STATION_LAT, STATION_LON, "other")
}

/// Where a test app keeps its data: a temporary directory and, when the suite runs on Redis
/// (`DISPATCH_TEST_STORE=redis`, as `scripts/test.sh` runs the HTTP suites a second time), a
/// `redis-server` of its own. It outlives a stop, so a restart finds what was written.
#[derive(Debug)]
pub struct DataPlace {
    pub dir: TempDir,
    redis: Option<redis::RedisServer>,
}

impl DataPlace {
    /// A fresh place on the backend this run of the suite tests.
    pub fn new() -> Self {
        let on_redis = std::env::var("DISPATCH_TEST_STORE").is_ok_and(|v| v == "redis");
        Self {
            dir: tempfile::tempdir().expect("a temporary directory"),
            redis: on_redis.then(redis::RedisServer::start),
        }
    }

    /// Whether the app keeps its data in Redis rather than in the embedded store.
    pub fn on_redis(&self) -> bool {
        self.redis.is_some()
    }

    /// A fresh place on the embedded store, whatever the suite's backend: for apps that
    /// bring their own store.
    fn embedded() -> Self {
        Self {
            dir: tempfile::tempdir().expect("a temporary directory"),
            redis: None,
        }
    }
}

impl Default for DataPlace {
    fn default() -> Self {
        Self::new()
    }
}

#[derive(Debug)]
pub struct TestApp {
    pub addr: SocketAddr,
    pub client: Client,
    /// Holds the data directory (and Redis); dropped last.
    pub place: DataPlace,
    /// Set for apps started with [`TestApp::spawn_with`].
    pub dispatcher: Option<Arc<Dispatcher>>,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<Result<(), dispatch::ServeError>>>,
}

impl TestApp {
    pub async fn spawn() -> Self {
        Self::spawn_in(DataPlace::new()).await
    }

    fn config(place: &DataPlace) -> Config {
        let store = match &place.redis {
            None => dispatch::config::StoreConfig {
                path: place.dir.path().join("data"),
                ..Default::default()
            },
            Some(redis) => dispatch::config::StoreConfig {
                kind: dispatch::config::StoreKind::Redis,
                url: Some(dispatch::config::RedisUrls::One(redis.url())),
                namespace: Some("huizhou".into()),
                path: place.dir.path().join("data"),
                ..Default::default()
            },
        };
        Config {
            store,
            region: dispatch::config::RegionConfig { path: region_dir() },
            tokens: tokens(),
            ..Config::default()
        }
    }

    /// Runs the service (`dispatch::run`) on the data directory of `dir`: a restart when it
    /// was used before.
    pub async fn spawn_in(place: DataPlace) -> Self {
        Self::spawn_in_at(place, "127.0.0.1:0").await
    }

    /// Like [`TestApp::spawn_in`] on a given address: a restart where clients knew it.
    pub async fn spawn_in_at(place: DataPlace, addr: &str) -> Self {
        let config = Self::config(&place);
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .expect("a loopback port");
        let addr = listener.local_addr().expect("a bound address");
        let (shutdown, signal) = oneshot::channel::<()>();
        let server = tokio::spawn(dispatch::run(config, listener, async move {
            let _ = signal.await;
        }));
        let app = Self {
            addr,
            client: client(),
            place,
            dispatcher: None,
            shutdown: Some(shutdown),
            server: Some(server),
        };
        app.wait_ready().await;
        app
    }

    /// Runs the service with simulated agents and crews (`dispatch::demo::run`), deadlines
    /// compressed to demo pace.
    pub async fn spawn_demo(options: dispatch::demo::DemoOptions) -> Self {
        let place = DataPlace::embedded();
        let config = Self::config(&place);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a loopback port");
        let addr = listener.local_addr().expect("a bound address");
        let (shutdown, signal) = oneshot::channel::<()>();
        let server = tokio::spawn(dispatch::demo::run(
            config,
            listener,
            async move {
                let _ = signal.await;
            },
            options,
        ));
        let app = Self {
            addr,
            client: client(),
            place,
            dispatcher: None,
            shutdown: Some(shutdown),
            server: Some(server),
        };
        app.wait_ready().await;
        app
    }

    /// Runs the service on a store and clock of the test's choosing. The store is the
    /// test's (an in-memory one that fails on demand, say), so such a test runs on it
    /// whichever backend the suite tests; [`TestApp::spawn_on_clock`] follows the backend.
    pub async fn spawn_with(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        server: ServerConfig,
    ) -> Self {
        Self::spawn_recovered(DataPlace::embedded(), store, clock, server).await
    }

    /// Runs the service on the backend this run of the suite tests (`DISPATCH_TEST_STORE`),
    /// on a clock of the test's choosing.
    pub async fn spawn_on_clock(clock: Arc<dyn Clock>) -> Self {
        let place = DataPlace::new();
        let config = Self::config(&place);
        let store = dispatch::open_store(&config)
            .await
            .expect("the test's store opens");
        Self::spawn_recovered(place, store, clock, ServerConfig::default()).await
    }

    async fn spawn_recovered(
        place: DataPlace,
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        server: ServerConfig,
    ) -> Self {
        let config = Self::config(&place);
        let dispatcher = Arc::new(
            dispatch::recover(&config, store, clock)
                .await
                .expect("the service recovers"),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a loopback port");
        let addr = listener.local_addr().expect("a bound address");
        let (shutdown, signal) = oneshot::channel::<()>();
        let serving = dispatcher.clone();
        let server = tokio::spawn(async move {
            dispatch::serve(serving, &server, listener, async move {
                let _ = signal.await;
            })
            .await
        });
        let app = Self {
            addr,
            client: client(),
            place,
            dispatcher: Some(dispatcher),
            shutdown: Some(shutdown),
            server: Some(server),
        };
        app.wait_ready().await;
        app
    }

    /// Polls `/readyz` until it answers 200, for at most 30 s.
    pub async fn wait_ready(&self) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(response) = self.client.get(self.url("/readyz")).send().await
                && response.status() == StatusCode::OK
            {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the service did not become ready"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Shuts down gracefully and returns the data place for a restart.
    pub async fn stop(self) -> DataPlace {
        let (place, result) = self.stop_outcome().await;
        result.expect("the service stops cleanly");
        place
    }

    /// Sends the shutdown signal (as SIGTERM would) without waiting for the service to stop.
    pub fn signal_shutdown(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
    }

    /// Stops the service as SIGTERM would, and answers how `serve` ended.
    pub async fn stop_outcome(mut self) -> (DataPlace, Result<(), dispatch::ServeError>) {
        self.signal_shutdown();
        let mut result = Ok(());
        if let Some(server) = self.server.take() {
            result = tokio::time::timeout(Duration::from_secs(30), server)
                .await
                .expect("the service stops within 30 s")
                .expect("the server task does not panic");
        }
        let TestApp { place, .. } = self;
        (place, result)
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub fn request(&self, method: Method, path: &str, token: Option<&str>) -> RequestBuilder {
        let builder = self.client.request(method, self.url(path));
        match token {
            Some(token) => builder.bearer_auth(token),
            None => builder,
        }
    }

    pub async fn get(&self, path: &str, token: &str) -> (StatusCode, Value) {
        send(self.request(Method::GET, path, Some(token))).await
    }

    pub async fn post(&self, path: &str, token: &str, body: Value) -> (StatusCode, Value) {
        send(self.request(Method::POST, path, Some(token)).json(&body)).await
    }

    pub async fn create(&self, body: Value) -> Value {
        let (status, ticket) = self.post("/v1/tickets", AGENT, body).await;
        assert_eq!(status, StatusCode::CREATED, "{ticket}");
        ticket
    }

    /// A fresh crew token for the crew of `ticket`.
    pub async fn crew_token_of(&self, ticket: &Value) -> String {
        let crew = ticket["crew_id"].as_str().expect("the ticket has a crew");
        self.crew_token(crew).await
    }

    pub async fn crew_token(&self, crew: &str) -> String {
        let (status, body) = self
            .post("/v1/admin/crew-tokens", ADMIN, json!({"crew_id": crew}))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body["token"].as_str().expect("a token").to_owned()
    }

    /// Takes a dispatched ticket through `steps` with its crew's token.
    /// Runs the deadline driver now. The background one sleeps on real time until the
    /// deadline it computed from the clock; calling it makes a test independent of that
    /// timing (whichever runs first fires the deadlines, once).
    pub async fn fire_deadlines(&self) {
        self.dispatcher
            .as_ref()
            .expect("an in-process service")
            .fire_deadlines()
            .await
            .expect("the deadlines fire");
    }

    pub async fn walk(&self, ticket: &Value, crew_token: &str, steps: &[&str]) {
        let id = ticket["id"].as_str().expect("an id");
        for step in steps {
            let body = match *step {
                "return" => json!({"fault_class": "low_voltage", "cause": "blown fuse",
                                   "ownership": "utility", "resolution": "fuse replaced"}),
                "reject" => json!({"reason": "vehicle broke down"}),
                "arrive" => json!({"location": {"lat": STATION_LAT, "lon": STATION_LON}}),
                "restore" => json!({"cause": "blown fuse"}),
                _ => json!({}),
            };
            let (status, answer) = self
                .post(&format!("/v1/tickets/{id}/{step}"), crew_token, body)
                .await;
            assert_eq!(status, StatusCode::OK, "{step}: {answer}");
        }
    }
}

/// Sends and decodes the JSON answer (`Value::Null` for an empty body).
pub async fn send(request: RequestBuilder) -> (StatusCode, Value) {
    let response = request.send().await.expect("the service answers");
    let status = response.status();
    let bytes = response.bytes().await.expect("a whole body");
    let value = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).unwrap_or_else(|_| {
            panic!(
                "{status}: the body is not JSON: {}",
                String::from_utf8_lossy(&bytes)
            )
        })
    };
    (status, value)
}

/// Asserts the contract's error body and returns its code.
pub fn error_code(status: StatusCode, body: &Value, expected: StatusCode) -> String {
    assert_eq!(status, expected, "{body}");
    let code = body["error"]["code"]
        .as_str()
        .unwrap_or_else(|| panic!("no error.code in {body}"));
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "no error.message in {body}"
    );
    code.to_owned()
}

/// A store for tests of the layers above it: the in-memory embedded store, with faults on
/// demand. `fail()` makes every later append fail as an fsync would; `stall()` holds the next
/// appends until `release()`, telling `arrived` when one comes in.
#[derive(Debug)]
pub struct FaultyStore {
    inner: EmbeddedStore,
    failing: AtomicBool,
    stalled: AtomicBool,
    pub arrived: Arc<Notify>,
    released: Arc<Notify>,
}

impl FaultyStore {
    pub fn new() -> Arc<Self> {
        Arc::new(Self {
            inner: EmbeddedStore::in_memory().expect("an in-memory store"),
            failing: AtomicBool::new(false),
            stalled: AtomicBool::new(false),
            arrived: Arc::new(Notify::new()),
            released: Arc::new(Notify::new()),
        })
    }

    pub fn fail(&self) {
        self.failing.store(true, Ordering::SeqCst);
    }

    pub fn stall(&self) {
        self.stalled.store(true, Ordering::SeqCst);
    }

    pub fn release(&self) {
        self.stalled.store(false, Ordering::SeqCst);
        self.released.notify_waiters();
        self.released.notify_one();
    }
}

impl Store for FaultyStore {
    fn append(
        &self,
        batch: Batch,
        durability: Durability,
    ) -> BoxFuture<'static, Result<(), StoreError>> {
        if self.failing.load(Ordering::SeqCst) {
            return futures_util::future::ready(Err(StoreError::OutcomeUnknown(
                "injected: fsync failed".into(),
            )))
            .boxed();
        }
        let appended = self.inner.append(batch, durability);
        if !self.stalled.load(Ordering::SeqCst) {
            return appended;
        }
        self.arrived.notify_one();
        let released = self.released.clone();
        async move {
            released.notified().await;
            appended.await
        }
        .boxed()
    }

    fn replay<'a>(
        &'a self,
        sink: &'a mut (dyn FnMut(Event) + Send),
    ) -> BoxFuture<'a, Result<Recovered, StoreError>> {
        self.inner.replay(sink)
    }

    fn timeline(&self, ticket: &TicketId) -> BoxFuture<'_, Result<Vec<Event>, StoreError>> {
        self.inner.timeline(ticket)
    }

    fn ping(&self) -> BoxFuture<'_, Result<(), StoreError>> {
        if self.failing.load(Ordering::SeqCst) {
            return futures_util::future::ready(Err(StoreError::Unavailable("injected".into())))
                .boxed();
        }
        self.inner.ping()
    }

    /// Hangs while stalled, as a disk stuck in an fsync would.
    fn close(&self) -> BoxFuture<'_, Result<(), StoreError>> {
        let stalled = self.stalled.load(Ordering::SeqCst);
        let released = self.released.clone();
        async move {
            if stalled {
                released.notified().await;
            }
            self.inner.close().await
        }
        .boxed()
    }
}

/// The value of the series whose line starts with `series` (name and labels as rendered on
/// `/metrics`), or 0 when absent.
pub fn metric_value(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series))
        .map_or(0.0, |rest| {
            rest.trim().parse().expect("a number after the series")
        })
}
