//! The HTTP floor: a minimal axum handler that parses a JSON body of the same shape as a
//! ticket report and answers a small JSON, on loopback. What the service reaches is read
//! as a share of what this reaches on the same machine in the same run.
//!
//! It runs in a process of its own (this binary, started with `--serve-floor`), as the
//! service does: inside the harness's process it would share the clients' runtime, and the
//! comparison would be between two different things.

use anyhow::{Context, bail};
use axum::Json;
use axum::http::StatusCode;
use axum::routing::post;
use serde_json::{Value, json};
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::process::{Child, Command};

pub struct Floor {
    pub url: String,
    child: Child,
}

impl Floor {
    /// The floor server's process id, for its CPU time.
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }
}

/// Serves the floor on `port` until killed: the body of the `--serve-floor` process.
pub async fn serve(port: u16) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    let app = axum::Router::new().route(
        "/floor",
        post(|Json(body): Json<Value>| async move {
            (
                StatusCode::CREATED,
                Json(json!({"id": "floor", "echo": body.get("category")})),
            )
        }),
    );
    axum::serve(listener, app).await?;
    Ok(())
}

/// Starts this binary again as the floor server and waits until it answers.
pub async fn start() -> anyhow::Result<Floor> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let child = Command::new(std::env::current_exe()?)
        .arg("--serve-floor")
        .arg(port.to_string())
        .stdout(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .context("starting the floor server")?;
    let url = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(r) = client
            .post(format!("{url}/floor"))
            .json(&json!({}))
            .send()
            .await
            && r.status().is_success()
        {
            return Ok(Floor { url, child });
        }
        if Instant::now() > deadline {
            bail!("the floor server did not answer within 30 s");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
