//! The control room as a person sees it, and the reads behind it.
//!
//! `reads`: what the page adds to the API (service areas, running deadlines, reassignments,
//! the fault heat map) and the page's own files, over real HTTP.
//!
//! `browser`: the service with demo traffic, the page opened in headless Chromium (Debian's
//! `chromium`, driven over the DevTools protocol), waited on until tickets and crews are
//! drawn, every drawn ticket and crew checked against the API, a ticket opened with its
//! caller's phone masked, and screenshots saved under `target/`. A missing browser fails the
//! test: `scripts/test.sh` installs it.

// Tests: a panic is a failed test, and helpers outside #[test] functions unwrap too.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

mod reads {
    use super::*;
    use dispatch::api::wire::rfc3339;
    use dispatch::domain::Timestamp;
    use dispatch::service::{Clock, ManualClock, SystemClock};
    use geo::{Contains, Coord, LineString, Point, Polygon};
    use std::sync::Arc;

    /// From an hour ago to an hour ahead of `now`.
    fn around(now: Timestamp) -> String {
        let from = rfc3339(Timestamp::from_millis(now.as_millis() - 3_600_000));
        let to = rfc3339(Timestamp::from_millis(now.as_millis() + 3_600_000));
        format!("from={from}&to={to}")
    }

    fn ring(value: &Value) -> LineString<f64> {
        value
            .as_array()
            .unwrap()
            .iter()
            .map(|c| Coord {
                x: c[0].as_f64().unwrap(),
                y: c[1].as_f64().unwrap(),
            })
            .collect()
    }

    #[tokio::test]
    async fn service_areas_are_geojson_holding_their_own_station() {
        let app = TestApp::spawn().await;
        let (status, body) = app.get("/v1/service-areas", SUPERVISOR).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["type"], "FeatureCollection");
        let (_, stations) = app.get("/v1/stations", SUPERVISOR).await;
        let stations = stations["items"].as_array().unwrap();
        let features = body["features"].as_array().unwrap();
        assert_eq!(features.len(), stations.len());
        let mut vertices = 0;
        for station in stations {
            let feature = features
                .iter()
                .find(|f| f["id"] == station["id"])
                .unwrap_or_else(|| panic!("no area for {}", station["id"]));
            assert_eq!(feature["type"], "Feature");
            assert_eq!(feature["properties"]["name"], station["name"]);
            assert_eq!(feature["properties"]["area_class"], station["area_class"]);
            assert_eq!(feature["geometry"]["type"], "MultiPolygon");
            // Simplified, the outline still holds the station it belongs to.
            let at = Point::new(
                station["location"]["lon"].as_f64().unwrap(),
                station["location"]["lat"].as_f64().unwrap(),
            );
            let polygons: Vec<Polygon<f64>> = feature["geometry"]["coordinates"]
                .as_array()
                .unwrap()
                .iter()
                .map(|rings| {
                    let rings = rings.as_array().unwrap();
                    let exterior = ring(&rings[0]);
                    assert_eq!(exterior.0.first(), exterior.0.last(), "rings are closed");
                    vertices += exterior.0.len();
                    Polygon::new(exterior, rings[1..].iter().map(ring).collect())
                })
                .collect();
            assert!(
                polygons.iter().any(|p| p.contains(&at)),
                "station {} lies outside its own simplified area",
                station["id"]
            );
        }
        // The bundled region has about 16,000 vertices; the map needs far fewer.
        assert!(vertices < 8_000, "{vertices} vertices: not simplified");

        let (status, _) = app.get("/v1/service-areas", AGENT).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        let (status, _) = send(app.request(Method::GET, "/v1/service-areas", None)).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }

    /// A service on a clock the test moves, with one ticket reported at the station.
    async fn one_ticket_on_a_manual_clock() -> (TestApp, Arc<ManualClock>, Value) {
        let clock = Arc::new(ManualClock::new(SystemClock.now()));
        let app = TestApp::spawn_on_clock(clock.clone()).await;
        let ticket = app
            .create(report_at(STATION_LAT, STATION_LON, "no_power"))
            .await;
        (app, clock, ticket)
    }

    #[tokio::test]
    async fn the_next_crews_acknowledgement_clock_starts_on_time() {
        let (app, clock, ticket) = one_ticket_on_a_manual_clock().await;
        // The first crew lets its 5 minutes pass: warned, breached, and the job handed on.
        clock.advance_minutes(6);
        app.fire_deadlines().await;
        let (_, now) = app
            .get(&format!("/v1/tickets/{}", id(&ticket)), SUPERVISOR)
            .await;
        assert_eq!(now["state"], "dispatched", "{now}");
        assert_ne!(now["crew_id"], ticket["crew_id"]);
        let (_, list) = app.get("/v1/deadlines", SUPERVISOR).await;
        let acknowledge: Vec<&Value> = list["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|d| d["ticket_id"] == ticket["id"] && d["stage"] == "acknowledge")
            .collect();
        assert_eq!(acknowledge.len(), 1, "{list}");
        // The second crew has its own 5 minutes; the first crew's breach is not its.
        assert_eq!(acknowledge[0]["risk"], "on_time", "{list}");
        assert!(acknowledge[0]["seconds_left"].as_f64().unwrap() > 290.0);
    }

    #[tokio::test]
    async fn running_deadlines_turn_warned_then_breached_as_they_are_recorded() {
        let (app, clock, ticket) = one_ticket_on_a_manual_clock().await;
        let mine = |list: &Value| -> Vec<Value> {
            list["items"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|d| d["ticket_id"] == ticket["id"])
                .cloned()
                .collect()
        };

        let (status, list) = app.get("/v1/deadlines", SUPERVISOR).await;
        assert_eq!(status, StatusCode::OK, "{list}");
        // Dispatched: acknowledge (5 min) and arrive (45 min, urban) run together, soonest
        // due first.
        let clocks = mine(&list);
        assert_eq!(clocks.len(), 2, "{list}");
        assert_eq!(clocks[0]["stage"], "acknowledge");
        assert_eq!(clocks[0]["due"], ticket["deadlines"]["acknowledge_by"]);
        assert_eq!(clocks[1]["stage"], "arrive");
        assert_eq!(clocks[1]["due"], ticket["deadlines"]["arrive_by"]);
        assert!(clocks.iter().all(|c| c["risk"] == "on_time"), "{list}");
        let left = clocks[0]["seconds_left"].as_f64().unwrap();
        assert!((299.0..=300.0).contains(&left), "{left}");

        // 3 minutes: the acknowledgement's 50 % warning is due and recorded.
        clock.advance_minutes(3);
        app.fire_deadlines().await;
        let (_, list) = app.get("/v1/deadlines", SUPERVISOR).await;
        let clocks = mine(&list);
        assert_eq!(clocks[0]["risk"], "warned", "{list}");
        assert_eq!(clocks[0]["warned_level"], 0.5);
        assert_eq!(clocks[1]["risk"], "on_time");

        // The crew acknowledges and sets off; at 46 minutes the arrival is breached.
        let token = app.crew_token_of(&ticket).await;
        app.walk(&ticket, &token, &["ack", "depart"]).await;
        clock.advance_minutes(43);
        app.fire_deadlines().await;
        let (_, list) = app.get("/v1/deadlines", SUPERVISOR).await;
        let clocks = mine(&list);
        assert_eq!(clocks.len(), 1, "{list}");
        assert_eq!(clocks[0]["stage"], "arrive");
        assert_eq!(clocks[0]["state"], "en_route");
        assert_eq!(clocks[0]["risk"], "breached");
        assert!(clocks[0]["seconds_left"].as_f64().unwrap() < 0.0);

        // On site: only the restoration clock runs.
        app.walk(&ticket, &token, &["arrive"]).await;
        let (_, list) = app.get("/v1/deadlines", SUPERVISOR).await;
        let clocks = mine(&list);
        assert_eq!(clocks.len(), 1, "{list}");
        assert_eq!(clocks[0]["stage"], "restore");
        assert_eq!(clocks[0]["risk"], "on_time");

        let (status, _) = app.get("/v1/deadlines", AGENT).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
    }

    #[tokio::test]
    async fn reassignments_say_who_lost_which_job_and_why() {
        let clock = Arc::new(ManualClock::new(SystemClock.now()));
        let app = TestApp::spawn_on_clock(clock.clone()).await;
        let window = around(clock.now());
        let first = app.create(report()).await;
        let rejecting = first["crew_id"].as_str().unwrap().to_owned();
        let token = app.crew_token_of(&first).await;
        app.walk(&first, &token, &["reject"]).await;
        // The next crew does not answer within the 5 minutes either.
        let (_, now) = app
            .get(&format!("/v1/tickets/{}", id(&first)), SUPERVISOR)
            .await;
        let silent = now["crew_id"].as_str().unwrap().to_owned();
        assert_ne!(silent, rejecting);
        clock.advance_minutes(6);
        app.fire_deadlines().await;
        // A ticket nobody declined is not listed.
        app.create(report_at(23.0795, 114.4037, "other")).await;

        let (status, list) = app
            .get(&format!("/v1/reassignments?{window}"), SUPERVISOR)
            .await;
        assert_eq!(status, StatusCode::OK, "{list}");
        assert_eq!(list["count"], 2, "{list}");
        assert_eq!(list["rejected"], 1);
        assert_eq!(list["acknowledge_timeout"], 1);
        let items = list["items"].as_array().unwrap();
        // The latest first.
        assert_eq!(items[0]["reason"], "acknowledge_timeout");
        assert_eq!(items[0]["crew_id"], silent.as_str());
        assert_eq!(items[1]["reason"], "rejected");
        assert_eq!(items[1]["crew_id"], rejecting.as_str());
        assert_eq!(items[1]["note"], "vehicle broke down");
        assert!(items.iter().all(|i| i["ticket_id"] == first["id"]));
        assert!(items.iter().all(|i| i["station_id"] == STATION));

        // The counts cover the period; the list only `limit` items.
        let (_, one) = app
            .get(&format!("/v1/reassignments?{window}&limit=1"), SUPERVISOR)
            .await;
        assert_eq!(one["count"], 2);
        assert_eq!(one["items"].as_array().unwrap().len(), 1);
        // A period before any of it holds none.
        let before = rfc3339(Timestamp::from_millis(clock.now().as_millis() - 86_400_000));
        let early = rfc3339(Timestamp::from_millis(clock.now().as_millis() - 43_200_000));
        let (_, none) = app
            .get(
                &format!("/v1/reassignments?from={before}&to={early}"),
                SUPERVISOR,
            )
            .await;
        assert_eq!(none["count"], 0, "{none}");

        let (status, body) = app
            .get(&format!("/v1/reassignments?{window}&limit=0"), SUPERVISOR)
            .await;
        assert_eq!(
            error_code(status, &body, StatusCode::BAD_REQUEST),
            "invalid_query"
        );
    }

    #[tokio::test]
    async fn the_heat_map_counts_reports_per_h3_cell() {
        let app = TestApp::spawn().await;
        let window = around(SystemClock.now());
        // Two calls a few metres apart and one across town.
        app.create(report_at(STATION_LAT, STATION_LON, "no_power"))
            .await;
        app.create(report_at(STATION_LAT + 0.0002, STATION_LON, "no_power"))
            .await;
        app.create(report_at(23.0795, 114.4037, "other")).await;

        let (status, cells) = app
            .get(&format!("/v1/fault-cells?{window}"), SUPERVISOR)
            .await;
        assert_eq!(status, StatusCode::OK, "{cells}");
        assert_eq!(cells["type"], "FeatureCollection");
        assert_eq!(cells["resolution"], 7);
        let features = cells["features"].as_array().unwrap();
        let counts: Vec<u64> = features
            .iter()
            .map(|f| f["properties"]["reports"].as_u64().unwrap())
            .collect();
        assert_eq!(counts, [2, 1], "{cells}");
        // The repeat merged into the first: two reports, one ticket still open.
        assert_eq!(features[0]["properties"]["open"], 1);
        let hexagon = ring(&features[0]["geometry"]["coordinates"][0]);
        assert_eq!(hexagon.0.len(), 7, "a closed hexagon");
        let home = Point::new(STATION_LON, STATION_LAT);
        assert!(Polygon::new(hexagon, vec![]).contains(&home));

        // Finer cells still count the same reports.
        let (_, fine) = app
            .get(
                &format!("/v1/fault-cells?{window}&resolution=9"),
                SUPERVISOR,
            )
            .await;
        let total: u64 = fine["features"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["properties"]["reports"].as_u64().unwrap())
            .sum();
        assert_eq!(total, 3);

        let (status, body) = app
            .get(
                &format!("/v1/fault-cells?{window}&resolution=12"),
                SUPERVISOR,
            )
            .await;
        assert_eq!(
            error_code(status, &body, StatusCode::BAD_REQUEST),
            "invalid_query"
        );
        // Without times: the last 24 hours, which hold the three reports above.
        let (status, body) = app.get("/v1/fault-cells", SUPERVISOR).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["features"], cells["features"], "{body}");
    }

    #[tokio::test]
    async fn the_page_is_served_without_a_token_and_only_from_here() {
        let app = TestApp::spawn().await;
        let page = app.client.get(app.url("/")).send().await.unwrap();
        assert_eq!(page.status(), StatusCode::OK);
        let headers = page.headers().clone();
        assert!(
            headers["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/html")
        );
        let csp = headers["content-security-policy"].to_str().unwrap();
        assert!(csp.contains("script-src 'self'"), "{csp}");
        assert!(csp.contains("connect-src 'self'"), "{csp}");
        let html = page.text().await.unwrap();
        assert!(html.contains("/ui/js/main.js"), "{html}");
        // Offline: nothing is fetched from anywhere else.
        assert!(!html.contains("http://") && !html.contains("https://"));

        for (path, kind) in [
            ("/ui/js/main.js", "text/javascript"),
            ("/ui/style.css", "text/css"),
        ] {
            let response = app.client.get(app.url(path)).send().await.unwrap();
            assert_eq!(response.status(), StatusCode::OK, "{path}");
            assert!(
                response.headers()["content-type"]
                    .to_str()
                    .unwrap()
                    .starts_with(kind),
                "{path}"
            );
        }
        let (status, body) = send(app.request(Method::GET, "/ui/nothing.js", None)).await;
        assert_eq!(
            error_code(status, &body, StatusCode::NOT_FOUND),
            "not_found"
        );

        // The new reads are in the API's document.
        let (_, doc) = send(app.request(Method::GET, "/openapi.json", None)).await;
        for path in [
            "/v1/service-areas",
            "/v1/deadlines",
            "/v1/reassignments",
            "/v1/fault-cells",
        ] {
            assert!(doc["paths"].get(path).is_some(), "{path} not documented");
        }
    }
}

mod browser {
    use super::*;
    use anyhow::{Context, bail, ensure};
    use base64::Engine;
    use dispatch::demo::DemoOptions;
    use futures_util::{SinkExt, StreamExt};
    use std::collections::BTreeMap;
    use std::path::{Path, PathBuf};
    use std::process::Stdio;
    use std::time::Duration;
    use tempfile::TempDir;
    use tokio::net::TcpStream;
    use tokio::process::{Child, Command};
    use tokio::time::Instant;
    use tokio_tungstenite::tungstenite::Message;
    use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

    /// Debian's package puts the browser here; `scripts/test.sh` installs it when missing.
    const CHROMIUM: &str = "/usr/bin/chromium";
    /// How often a condition on the page is looked at again.
    const POLL: Duration = Duration::from_millis(250);

    fn screenshot_path(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../target")
            .join(name)
    }

    /// Headless Chromium with a profile of its own, killed (by its own process id) when
    /// dropped.
    struct Chromium {
        child: Child,
        devtools_port: u16,
        _profile: TempDir,
    }

    impl Chromium {
        async fn launch(url: &str) -> anyhow::Result<Self> {
            let profile = tempfile::tempdir()?;
            let child = Command::new(CHROMIUM)
                .args([
                    "--headless",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-quic",
                    "--no-first-run",
                    "--no-default-browser-check",
                    // Without these Chromium keeps calling home on a closed network.
                    "--disable-background-networking",
                    "--disable-component-update",
                    "--disable-sync",
                    "--disable-extensions",
                    "--disable-dev-shm-usage",
                    "--mute-audio",
                    "--hide-scrollbars",
                    "--window-size=1600,1000",
                    "--remote-debugging-port=0",
                ])
                .arg(format!("--user-data-dir={}", profile.path().display()))
                .arg(url)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .kill_on_drop(true)
                .spawn()
                .with_context(|| {
                    format!(
                        "cannot start {CHROMIUM}: install Debian's chromium (scripts/test.sh does)"
                    )
                })?;
            // Chromium writes the port it chose into the profile once it listens.
            let port_file = profile.path().join("DevToolsActivePort");
            let deadline = Instant::now() + Duration::from_secs(30);
            let devtools_port = loop {
                if let Ok(text) = tokio::fs::read_to_string(&port_file).await
                    && let Some(port) = text.lines().next().and_then(|l| l.trim().parse().ok())
                {
                    break port;
                }
                ensure!(
                    Instant::now() < deadline,
                    "Chromium did not open its DevTools port within 30 s"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            };
            Ok(Self {
                child,
                devtools_port,
                _profile: profile,
            })
        }

        /// The tab showing `url`'s origin.
        async fn page(&self, origin: &str) -> anyhow::Result<Page> {
            let list_url = format!("http://127.0.0.1:{}/json/list", self.devtools_port);
            let deadline = Instant::now() + Duration::from_secs(30);
            let socket = loop {
                let targets: Value = client().get(&list_url).send().await?.json().await?;
                let found = targets.as_array().and_then(|targets| {
                    targets.iter().find(|t| {
                        t["type"] == "page"
                            && t["url"].as_str().is_some_and(|u| u.starts_with(origin))
                    })
                });
                if let Some(socket) = found.and_then(|t| t["webSocketDebuggerUrl"].as_str()) {
                    break socket.to_owned();
                }
                ensure!(
                    Instant::now() < deadline,
                    "no tab on {origin} within 30 s: {targets}"
                );
                tokio::time::sleep(POLL).await;
            };
            let (ws, _) = tokio_tungstenite::connect_async(socket.as_str())
                .await
                .context("connecting to the tab's DevTools socket")?;
            let mut page = Page { ws, next_id: 0 };
            // A fixed viewport, so screenshots do not depend on the window's decorations.
            page.call(
                "Emulation.setDeviceMetricsOverride",
                json!({"width": 1600, "height": 1000, "deviceScaleFactor": 1, "mobile": false}),
            )
            .await?;
            Ok(page)
        }

        async fn close(mut self, page: &mut Page) {
            // Politely first, so the browser's helpers exit with it; then by its process id.
            let _ = page.call("Browser.close", json!({})).await;
            if tokio::time::timeout(Duration::from_secs(10), self.child.wait())
                .await
                .is_err()
            {
                let _ = self.child.kill().await;
            }
        }
    }

    /// One tab over the DevTools protocol.
    struct Page {
        ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
        next_id: u64,
    }

    impl Page {
        async fn call(&mut self, method: &str, params: Value) -> anyhow::Result<Value> {
            self.next_id += 1;
            let id = self.next_id;
            let message = json!({"id": id, "method": method, "params": params});
            self.ws.send(Message::text(message.to_string())).await?;
            let answer = async {
                while let Some(message) = self.ws.next().await {
                    let Message::Text(text) = message? else {
                        continue;
                    };
                    let value: Value = serde_json::from_str(text.as_str())?;
                    // Anything else is an event of a domain we did not ask for.
                    if value["id"] == id {
                        if let Some(error) = value.get("error") {
                            bail!("{method}: {error}");
                        }
                        return Ok(value["result"].clone());
                    }
                }
                bail!("the DevTools socket closed during {method}")
            };
            tokio::time::timeout(Duration::from_secs(30), answer)
                .await
                .with_context(|| format!("{method} took over 30 s"))?
        }

        /// Evaluates `expression` in the page and answers its JSON value.
        async fn eval(&mut self, expression: &str) -> anyhow::Result<Value> {
            let result = self
                .call(
                    "Runtime.evaluate",
                    json!({"expression": expression, "returnByValue": true, "awaitPromise": true}),
                )
                .await?;
            if let Some(exception) = result.get("exceptionDetails") {
                bail!("the page threw: {exception}");
            }
            Ok(result["result"]["value"].clone())
        }

        async fn click(&mut self, x: f64, y: f64) -> anyhow::Result<()> {
            for kind in ["mouseMoved", "mousePressed", "mouseReleased"] {
                self.call(
                    "Input.dispatchMouseEvent",
                    json!({"type": kind, "x": x, "y": y, "button": "left", "clickCount": 1}),
                )
                .await?;
            }
            Ok(())
        }

        async fn screenshot(&mut self, path: &Path) -> anyhow::Result<()> {
            let shot = self
                .call("Page.captureScreenshot", json!({"format": "png"}))
                .await?;
            let png = base64::engine::general_purpose::STANDARD
                .decode(shot["data"].as_str().context("no screenshot data")?)?;
            ensure!(png.starts_with(b"\x89PNG"), "the screenshot is not a PNG");
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)?;
            }
            std::fs::write(path, png)?;
            Ok(())
        }

        /// Polls `expression` until `done` holds for its value; fails after `within`.
        async fn wait_for(
            &mut self,
            what: &str,
            within: Duration,
            expression: &str,
            done: impl Fn(&Value) -> bool,
        ) -> anyhow::Result<Value> {
            let deadline = Instant::now() + within;
            loop {
                let value = self.eval(expression).await?;
                if done(&value) {
                    return Ok(value);
                }
                ensure!(
                    Instant::now() < deadline,
                    "{what}: not within {within:?}; last seen {value}"
                );
                tokio::time::sleep(POLL).await;
            }
        }
    }

    /// What the page has drawn and counted, as data attributes say.
    const DRAWN: &str = r#"(() => {
        const map = document.getElementById('map');
        if (!map) return null;
        const attr = (e, name) => e.getAttribute(name);
        return {
            stream: document.body.dataset.stream,
            loaded: document.body.dataset.loaded === 'true',
            areas: Number(map.dataset.areasDrawn || 0),
            tickets: [...map.querySelectorAll('[data-ticket-id]')].map(e => [attr(e, 'data-ticket-id'), attr(e, 'data-state'), attr(e, 'data-risk')]),
            crews: [...map.querySelectorAll('[data-crew-id]')].map(e => [attr(e, 'data-crew-id'), attr(e, 'data-crew-state'), attr(e, 'data-view')]),
            by_state: Object.fromEntries([...document.querySelectorAll('#panel-states [data-state]')].map(e => [e.dataset.state, Number(e.dataset.count)])),
            compliance_rows: document.querySelectorAll('#panel-compliance tr[data-stage]').length,
        };
    })()"#;

    /// The API's view of the same, in the page's terms.
    #[derive(Debug, PartialEq)]
    struct Snapshot {
        /// Ticket id → (state, worst deadline risk), for the states the map draws.
        tickets: BTreeMap<String, (String, String)>,
        /// Open tickets per state, returned ones included.
        by_state: BTreeMap<String, u64>,
        /// Crew id → state.
        crews: BTreeMap<String, String>,
    }

    const OPEN_STATES: [&str; 7] = [
        "queued",
        "dispatched",
        "acknowledged",
        "en_route",
        "on_site",
        "restored",
        "returned",
    ];

    async fn api_snapshot(app: &TestApp) -> Snapshot {
        let rank = |r: &str| match r {
            "breached" => 2,
            "warned" => 1,
            _ => 0,
        };
        let (_, deadlines) = app.get("/v1/deadlines", SUPERVISOR).await;
        let mut risk: BTreeMap<String, String> = BTreeMap::new();
        for clock in deadlines["items"].as_array().unwrap() {
            let ticket = clock["ticket_id"].as_str().unwrap().to_owned();
            let r = clock["risk"].as_str().unwrap();
            let worst = risk.entry(ticket).or_insert_with(|| "on_time".into());
            if rank(r) > rank(worst) {
                *worst = r.to_owned();
            }
        }
        let mut tickets = BTreeMap::new();
        let mut by_state = BTreeMap::new();
        for state in OPEN_STATES {
            let (_, page) = app
                .get(&format!("/v1/tickets?state={state}&limit=500"), SUPERVISOR)
                .await;
            assert!(page["next_cursor"].is_null(), "more than 500 {state}");
            let items = page["items"].as_array().unwrap();
            by_state.insert(state.to_owned(), items.len() as u64);
            if state == "returned" {
                continue;
            }
            for t in items {
                let id = id(t).to_owned();
                let r = risk.get(&id).cloned().unwrap_or_else(|| "on_time".into());
                tickets.insert(id, (state.to_owned(), r));
            }
        }
        let (_, crews) = app.get("/v1/crews", SUPERVISOR).await;
        let crews = crews["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                (
                    c["id"].as_str().unwrap().to_owned(),
                    c["state"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        Snapshot {
            tickets,
            by_state,
            crews,
        }
    }

    fn page_snapshot(drawn: &Value) -> Snapshot {
        let text = |v: &Value| v.as_str().unwrap_or_default().to_owned();
        Snapshot {
            tickets: drawn["tickets"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| (text(&t[0]), (text(&t[1]), text(&t[2]))))
                .collect(),
            by_state: drawn["by_state"]
                .as_object()
                .unwrap()
                .iter()
                .map(|(k, v)| (k.clone(), v.as_u64().unwrap()))
                .collect(),
            crews: drawn["crews"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| (text(&c[0]), text(&c[1])))
                .collect(),
        }
    }

    /// A drawn ticket whose centre is not covered by another marker: where a person would
    /// click it.
    const CLICKABLE_TICKET: &str = r#"(() => {
        for (const e of document.querySelectorAll('#map [data-ticket-id]')) {
            const box = e.getBoundingClientRect();
            const x = box.left + box.width / 2, y = box.top + box.height / 2;
            const hit = document.elementFromPoint(x, y)?.closest('[data-ticket-id]');
            if (hit === e) return { id: e.dataset.ticketId, x, y };
        }
        return null;
    })()"#;

    const DETAILS: &str = r#"(() => {
        const d = document.getElementById('details');
        return {
            hidden: d.hidden,
            id: d.dataset.id || null,
            timeline: d.querySelectorAll('.timeline li').length,
            text: d.innerText,
            html: document.documentElement.outerHTML,
        };
    })()"#;

    /// Opens the page signed in as the supervisor.
    async fn open(app: &TestApp) -> (Chromium, Page) {
        let origin = app.url("/");
        let chromium = Chromium::launch(&format!("{origin}#token={SUPERVISOR}"))
            .await
            .unwrap();
        let mut page = chromium.page(&origin).await.unwrap();
        // The tab may still hold about:blank: everything else runs in the page's own document.
        page.wait_for(
            "the page's document",
            Duration::from_secs(30),
            "({ href: location.href, ready: document.readyState })",
            |d| {
                d["ready"] == "complete"
                    && d["href"]
                        .as_str()
                        .is_some_and(|h| h.starts_with(origin.as_str()))
            },
        )
        .await
        .unwrap();
        (chromium, page)
    }

    /// The page's pure helpers, run in the browser they are written for: the stream's SSE
    /// framing however the bytes are split, phone masking, and which deadline clocks run.
    const HELPERS: &str = r#"(async () => {
        const { SseParser } = await import('/ui/js/stream.js');
        const { maskPhone, maskName, duration, learnServerTime, serverNow } = await import('/ui/js/format.js');
        const { runningStages, State } = await import('/ui/js/state.js');
        const { deadlineRows } = await import('/ui/js/details.js');
        const text = ': keep-alive\r\nevent: dispatched\r\nid: 7\r\ndata: {"a":\r\ndata: 1}\r\n\r\n'
            + 'event: missed\ndata: 3\n\nid: 9\ndata: plain\n\n';
        const splits = [];
        for (let cut = 0; cut <= text.length; cut += 1) {
            const frames = [];
            const parser = new SseParser((f) => frames.push(f));
            parser.push(text.slice(0, cut));
            parser.push(text.slice(cut));
            splits.push(JSON.stringify(frames));
        }
        const t = (state, deadlines) => runningStages({ state, deadlines }).map((s) => s.stage);
        const d = { acknowledge_by: '2025-06-01T08:05:00.000Z', arrive_by: '2025-06-01T08:45:00.000Z' };
        return {
            frames: JSON.parse(splits[0]),
            same_whatever_the_split: new Set(splits).size === 1,
            phones: ['13800001234', '+86 138-0000-1234', '12345', ''].map(maskPhone),
            name: maskName('李明'),
            durations: [59, 61, 3725, -30].map(duration),
            stages: {
                queued: t('queued', { arrive_by: d.arrive_by }),
                dispatched: t('dispatched', d),
                en_route: t('en_route', { arrive_by: d.arrive_by }),
                on_site: t('on_site', { arrive_by: d.arrive_by, restore_by: d.arrive_by }),
                restored: t('restored', { return_by: d.arrive_by }),
                returned: t('returned', d),
                customer_internal: t('queued', {}),
            },
            // The service's clock three minutes ahead of this browser's (learned, then undone).
            server_ahead_s: (() => {
                learnServerTime(new Date(Date.now() + 180000).toISOString());
                const ahead = Math.round((serverNow() - Date.now()) / 1000);
                learnServerTime(new Date().toISOString());
                return ahead;
            })(),
            // A crew misses its acknowledgement: breached, then the job goes to the next
            // crew, whose own five minutes have just begun.
            next_crew: (() => {
                const state = new State();
                const at = Date.parse('2025-06-01T08:06:00.000Z');
                const ticket = (crew, acknowledge_by) => ({
                    id: 'T', state: 'dispatched', crew_id: crew,
                    deadlines: { acknowledge_by, arrive_by: d.arrive_by },
                });
                state.apply('dispatched', { ticket_id: 'T', ticket: ticket('A', d.acknowledge_by) });
                state.apply('sla_breached', { ticket_id: 'T', stage: 'acknowledge', ticket: ticket('A', d.acknowledge_by) });
                const missed = state.risk(state.tickets.get('T'), at);
                state.apply('declined', { ticket_id: 'T', reason: 'acknowledge_timeout', ticket: ticket('A', d.acknowledge_by) });
                state.apply('dispatched', { ticket_id: 'T', ticket: ticket('B', '2025-06-01T08:11:00.000Z') });
                return [missed, state.risk(state.tickets.get('T'), at)];
            })(),
            // On site at 08:50, its arrival met; the restore clock runs until 11:45.
            drawer: deadlineRows(
                { state: 'on_site', deadlines: { arrive_by: d.arrive_by, restore_by: '2025-06-01T11:45:00.000Z' } },
                Date.parse('2025-06-01T09:00:00.000Z'),
            ),
        };
    })()"#;

    /// Runs `script` (an async function's call) in the page of a fresh service and answers
    /// its value, once the page's modules load.
    async fn in_the_page(what: &str, within: Duration, script: &str) -> Value {
        let app = TestApp::spawn().await;
        let (chromium, mut page) = open(&app).await;
        let found = page.wait_for(what, within, script, |v| !v.is_null()).await;
        chromium.close(&mut page).await;
        app.stop().await;
        found.unwrap()
    }

    #[tokio::test]
    async fn the_page_helpers_frame_mask_and_time_as_they_should() {
        let found = in_the_page("the page's modules", Duration::from_secs(30), HELPERS).await;
        assert_eq!(
            found["frames"],
            json!([
                {"event": "dispatched", "id": "7", "data": "{\"a\":\n1}"},
                {"event": "missed", "id": "", "data": "3"},
                {"event": "message", "id": "9", "data": "plain"},
            ]),
            "{found}"
        );
        assert_eq!(found["same_whatever_the_split"], true, "{found}");
        assert_eq!(
            found["phones"],
            json!(["138****1234", "861******1234", "***45", ""])
        );
        assert_eq!(found["name"], "李*");
        assert_eq!(
            found["durations"],
            json!(["0:59", "1:01", "1:02:05", "−0:30"])
        );
        let stages = &found["stages"];
        assert_eq!(stages["queued"], json!(["arrive"]));
        assert_eq!(stages["dispatched"], json!(["acknowledge", "arrive"]));
        assert_eq!(stages["en_route"], json!(["arrive"]));
        assert_eq!(stages["on_site"], json!(["restore"]));
        assert_eq!(stages["restored"], json!(["return"]));
        assert_eq!(stages["returned"], json!([]));
        assert_eq!(stages["customer_internal"], json!([]));
        assert_eq!(
            found["next_crew"],
            json!(["breached", "on_time"]),
            "{found}"
        );
        assert_eq!(
            found["drawer"],
            json!([
                {"name": "arrive_by", "at": "2025-06-01T08:45:00.000Z", "left": null},
                {"name": "restore_by", "at": "2025-06-01T11:45:00.000Z", "left": 9900},
            ]),
            "a stopped clock counts nothing down"
        );
        assert_eq!(found["server_ahead_s"], 180, "{found}");
    }

    /// The live stream against a fake `/v1/events` in the page: a `missed` event, a failed
    /// reload and a silent connection each end the session, close its connection and start a
    /// new one that reloads and goes live again; events after that still arrive.
    const STREAM_STARTS_OVER: &str = r#"(async () => {
        const { LiveStream } = await import('/ui/js/stream.js');
        const encode = (text) => new TextEncoder().encode(text);
        const realFetch = window.fetch;
        const opened = [];
        window.fetch = async (url, init) => {
            if (url !== '/v1/events') return realFetch(url, init);
            const entry = { aborted: false };
            const body = new ReadableStream({ start(c) { entry.send = (t) => c.enqueue(encode(t)); } });
            init.signal.addEventListener('abort', () => { entry.aborted = true; });
            opened.push(entry);
            return new Response(body, { status: 200 });
        };
        const until = async (what, test) => {
            for (let i = 0; i < 400; i += 1) {
                if (test()) return;
                await new Promise((r) => setTimeout(r, 25));
            }
            throw new Error('not seen: ' + what);
        };
        const statuses = [];
        const events = [];
        let reloads = 0;
        const stream = new LiveStream({
            api: { headers: () => ({}) },
            reload: async () => {
                reloads += 1;
                if (reloads === 2) throw new Error('the reload answered 503');
            },
            onEvent: (f) => events.push(f.id),
            onStatus: (s) => statuses.push(s),
            onAuthError: () => statuses.push('auth'),
            silenceMs: 1500,
        });
        try {
            stream.start();
            await until('live', () => statuses.at(-1) === 'live');
            opened[0].send('id: 1\ndata: a\n\n');
            await until('event 1', () => events.includes('1'));
            // Too far behind: a new stream, whose reload fails; then a third, live.
            opened[0].send('event: missed\ndata: 5000\n\n');
            await until('live on a third stream', () => opened.length === 3 && statuses.at(-1) === 'live');
            const afterMissed = { first_closed: opened[0].aborted, second_closed: opened[1].aborted, reloads };
            opened[2].send('id: 2\ndata: b\n\n');
            await until('event 2', () => events.includes('2'));
            // Then nothing, not even a keep-alive: taken for dead, and a fourth stream.
            await until('a fourth stream', () => opened.length === 4);
            return { ...afterMissed, third_closed: opened[2].aborted, events, reconnected: statuses.includes('reconnecting') };
        } finally {
            stream.stop();
            window.fetch = realFetch;
        }
    })()"#;

    #[tokio::test]
    async fn the_stream_starts_over_after_missed_events_a_failed_reload_or_silence() {
        let found = in_the_page(
            "the stream's new sessions",
            Duration::from_secs(60),
            STREAM_STARTS_OVER,
        )
        .await;
        assert_eq!(
            found,
            json!({
                "first_closed": true,
                "second_closed": true,
                "reloads": 3,
                "third_closed": true,
                "events": ["1", "2"],
                "reconnected": true,
            })
        );
    }

    const STATUS: &str = r#"(() => ({
        stream: document.body.dataset.stream,
        tickets: [...document.querySelectorAll('#map [data-ticket-id]')].map(e => e.getAttribute('data-ticket-id')).sort(),
    }))()"#;

    #[tokio::test]
    async fn after_a_restart_the_page_reconnects_and_reloads() {
        let app = TestApp::spawn().await;
        let first = app.create(report()).await;
        let addr = app.addr.to_string();
        let (chromium, mut page) = open(&app).await;
        let outcome = async {
            page.wait_for(
                "the first ticket, live",
                Duration::from_secs(30),
                STATUS,
                |s| s["stream"] == "live" && s["tickets"] == json!([id(&first)]),
            )
            .await?;
            // The service stops: its event stream ends and the page says so.
            let dir = app.stop().await;
            page.wait_for("reconnecting", Duration::from_secs(30), STATUS, |s| {
                s["stream"] == "reconnecting"
            })
            .await?;
            // Back on the same address, with a ticket the page never saw an event for.
            let app = TestApp::spawn_in_at(dir, &addr).await;
            let second = app.create(report_at(23.0795, 114.4037, "other")).await;
            let mut both = vec![id(&first).to_owned(), id(&second).to_owned()];
            both.sort();
            let seen = page
                .wait_for(
                    "live again with both tickets",
                    Duration::from_secs(40),
                    STATUS,
                    |s| s["stream"] == "live" && s["tickets"] == json!(both),
                )
                .await;
            app.stop().await;
            seen.map(|_| ())
        }
        .await;
        chromium.close(&mut page).await;
        outcome.unwrap();
    }

    #[tokio::test]
    async fn the_page_draws_the_live_demo_as_the_api_tells_it() {
        let app = TestApp::spawn_demo(DemoOptions {
            seed: 5,
            calls_per_minute: 40.0,
            warm_up_calls: 16,
            ..DemoOptions::default()
        })
        .await;
        let (chromium, mut page) = open(&app).await;
        let outcome = check_page(&app, &mut page).await;
        chromium.close(&mut page).await;
        app.stop().await;
        outcome.unwrap();
    }

    async fn check_page(app: &TestApp, page: &mut Page) -> anyhow::Result<()> {
        let (_, areas) = app.get("/v1/service-areas", SUPERVISOR).await;
        let areas = areas["features"].as_array().unwrap().len() as u64;
        let (_, crews) = app.get("/v1/crews", SUPERVISOR).await;
        let crews = crews["items"].as_array().unwrap().len();

        // The page signed in from the fragment, drew the region and every crew, and the demo
        // has run long enough for crews on the road and on site and a deadline at risk.
        let any = |d: &Value, list: &str, column: usize, value: &str| {
            d[list]
                .as_array()
                .is_some_and(|items| items.iter().any(|i| i[column] == value))
        };
        page.wait_for(
            "the live map with crews at work and a deadline at risk",
            Duration::from_secs(150),
            DRAWN,
            |d| {
                d["stream"] == "live"
                    && d["loaded"] == true
                    && d["areas"] == areas
                    && d["crews"].as_array().is_some_and(|c| c.len() == crews)
                    && d["tickets"].as_array().is_some_and(|t| t.len() >= 8)
                    && any(d, "crews", 2, "en_route")
                    && any(d, "crews", 2, "on_site")
                    && (any(d, "tickets", 2, "warned") || any(d, "tickets", 2, "breached"))
                    && d["compliance_rows"] == 4
            },
        )
        .await?;

        // The token left the address bar, and lives in the session only.
        let address = page.eval("location.href").await?;
        ensure!(
            !address.as_str().unwrap_or_default().contains("token"),
            "the token is still in the address: {address}"
        );

        // Traffic keeps moving, so compare when the API says the same twice around the look
        // at the page: then the page must say it too.
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut last = None;
        loop {
            let before = api_snapshot(app).await;
            let drawn = page.eval(DRAWN).await?;
            let after = api_snapshot(app).await;
            let shown = page_snapshot(&drawn);
            if before == after {
                if shown == before {
                    break;
                }
                last = Some((shown, before));
            }
            ensure!(
                Instant::now() < deadline,
                "the page never matched a quiet moment of the API within 60 s; last: {last:#?}"
            );
            tokio::time::sleep(POLL).await;
        }

        page.screenshot(&screenshot_path("control-room.png"))
            .await?;

        // A person clicks a ticket: its details and timeline open, the phone masked.
        let target = page
            .wait_for(
                "a ticket not hidden under a crew",
                Duration::from_secs(30),
                CLICKABLE_TICKET,
                |t| !t.is_null(),
            )
            .await?;
        let ticket = target["id"].as_str().context("a ticket id")?.to_owned();
        page.click(target["x"].as_f64().unwrap(), target["y"].as_f64().unwrap())
            .await?;
        let details = page
            .wait_for(
                "the ticket's details with its timeline",
                Duration::from_secs(20),
                DETAILS,
                |d| {
                    d["hidden"] == false
                        && d["id"] == ticket.as_str()
                        && d["timeline"].as_u64() > Some(0)
                },
            )
            .await?;
        let (_, full) = app.get(&format!("/v1/tickets/{ticket}"), SUPERVISOR).await;
        let phone = full["caller"]["phone"].as_str().context("a phone")?;
        let html = details["html"].as_str().unwrap_or_default();
        ensure!(
            !html.contains(phone),
            "the full phone {phone} is on the page"
        );
        let masked = format!("{}****{}", &phone[..3], &phone[phone.len() - 4..]);
        let text = details["text"].as_str().unwrap_or_default();
        ensure!(text.contains(&masked), "no {masked} in the details: {text}");
        let timeline = full["timeline"].as_array().map_or(0, Vec::len) as u64;
        ensure!(
            details["timeline"].as_u64() <= Some(timeline),
            "more timeline entries drawn than the ticket has"
        );
        page.screenshot(&screenshot_path("control-room-details.png"))
            .await?;
        Ok(())
    }
}

mod demo {
    use super::*;
    use dispatch::demo::DemoOptions;
    use std::collections::BTreeSet;
    use std::time::Duration;

    /// Every kind of step the demo is meant to show, from the call to the callback.
    const LIFE: [&str; 12] = [
        "reported",
        "merged",
        "dispatched",
        "declined",
        "acknowledged",
        "departed",
        "crew_position",
        "arrived",
        "restored",
        "returned",
        "closed",
        "sla_warning",
    ];

    /// Complete SSE blocks of `raw` as (event, data); the incomplete tail stays in `raw`.
    fn frames(raw: &mut String) -> Vec<(String, Value)> {
        let Some(end) = raw.rfind("\n\n") else {
            return Vec::new();
        };
        let complete: String = raw.drain(..end + 2).collect();
        complete
            .split("\n\n")
            .filter_map(|block| {
                let field = |name: &str| block.lines().find_map(|l| l.strip_prefix(name));
                Some((
                    field("event: ")?.to_owned(),
                    serde_json::from_str(field("data: ")?).ok()?,
                ))
            })
            .collect()
    }

    #[tokio::test]
    async fn demo_traffic_walks_tickets_through_their_life_as_agent_and_crews() {
        let app = TestApp::spawn_demo(DemoOptions {
            seed: 11,
            calls_per_minute: 120.0,
            warm_up_calls: 20,
            speedup: 240.0,
        })
        .await;
        // The shared client times whole requests out; this one lasts as long as the watch.
        let mut stream = reqwest::Client::new()
            .get(app.url("/v1/events"))
            .bearer_auth(SUPERVISOR)
            .send()
            .await
            .unwrap();
        assert_eq!(stream.status(), StatusCode::OK);
        let mut seen = BTreeSet::new();
        let mut raw = String::new();
        let watch = async {
            while !LIFE.iter().all(|e| seen.contains(*e)) {
                let chunk = stream.chunk().await.unwrap().expect("the stream goes on");
                raw.push_str(std::str::from_utf8(&chunk).unwrap());
                for (event, data) in frames(&mut raw) {
                    let actor = data["actor"].as_str().unwrap().to_owned();
                    let crew = data["crew"]["id"].as_str().map(|c| format!("crew:{c}"));
                    // Each simulated actor acts as itself: the agent reports and closes,
                    // each crew steps its own job and reports its own position.
                    match event.as_str() {
                        "reported" | "closed" => assert_eq!(actor, "agent", "{event}: {data}"),
                        "acknowledged" | "departed" | "arrived" | "restored" | "returned"
                        | "crew_position" | "crew_duty" => {
                            assert_eq!(Some(actor), crew, "{event}: {data}")
                        }
                        "declined" => assert!(
                            actor == "system" || Some(&actor) == crew.as_ref(),
                            "{event}: {data}"
                        ),
                        _ => {}
                    }
                    seen.insert(event);
                }
            }
        };
        let finished = tokio::time::timeout(Duration::from_secs(120), watch).await;
        app.stop().await;
        assert!(
            finished.is_ok(),
            "within 120 s the demo showed only {seen:?} of {LIFE:?}"
        );
    }
}
