//! The real `dispatch` binary as a child process: started with a configuration file, its
//! address read from its JSON log, ready when `/readyz` says so; killed on drop.

use super::client;
use reqwest::StatusCode;
use serde_json::Value;
use std::net::SocketAddr;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

const START_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Debug)]
pub struct ServiceProcess {
    pub child: Child,
    pub addr: SocketAddr,
}

impl ServiceProcess {
    /// Starts `dispatch serve --config CONFIG` (a JSON log at info, bound to port 0) and
    /// waits until it is ready.
    pub async fn start(config: &Path) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_dispatch"))
            .args(["serve", "--config"])
            .arg(config)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("the dispatch binary starts");
        let stdout = child.stdout.take().expect("stdout is piped");
        let (tx, rx) = tokio::sync::oneshot::channel();
        // Reads the JSON log for the bound address, then keeps draining it so the service
        // never blocks on a full pipe.
        tokio::spawn(async move {
            let mut tx = Some(tx);
            let mut lines = BufReader::new(stdout).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                let Ok(entry) = serde_json::from_str::<Value>(&line) else {
                    continue;
                };
                if entry["fields"]["message"] == "listening"
                    && let Some(addr) = entry["fields"]["addr"].as_str()
                    && let Some(tx) = tx.take()
                {
                    let _ = tx.send(
                        addr.parse::<SocketAddr>()
                            .expect("the logged address parses"),
                    );
                }
            }
        });
        let addr = tokio::time::timeout(START_TIMEOUT, rx)
            .await
            .expect("the service logs its address in time")
            .expect("the service logs its address before exiting");
        let server = Self { child, addr };
        server.wait_ready().await;
        server
    }

    pub async fn wait_ready(&self) {
        let client = client();
        let deadline = tokio::time::Instant::now() + START_TIMEOUT;
        loop {
            if let Ok(response) = client.get(self.url("/readyz")).send().await
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

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }
}
