//! Starts the real `dispatch serve` on a free loopback port with a fresh data directory and
//! a config holding known tokens — on its embedded store, or on a shared Redis — waits for
//! `/readyz`, and stops it at the end.

use anyhow::{Context, bail};
use geo_data::format::CrewRecord;
use std::collections::HashMap;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::process::{Child, Command};

pub struct Service {
    pub url: String,
    pub agent_token: String,
    admin_token: String,
    child: Child,
    _data: tempfile::TempDir,
}

fn token(seed: &str) -> String {
    // Fixed tokens: this is a throwaway service on loopback for one benchmark run.
    format!("loadtest-{seed}-0123456789abcdef")
}

/// Where the service keeps its log.
#[derive(Debug, Clone)]
pub enum Backend {
    Embedded,
    /// A Redis shared with other instances (namespace `loadtest`).
    Redis {
        url: String,
    },
}

pub async fn start(
    binary: &Path,
    region: &Path,
    log_filter: &str,
    backend: &Backend,
) -> anyhow::Result<Service> {
    if !binary.exists() {
        bail!(
            "{} not found: build it first with `cargo build --release -p dispatch`",
            binary.display()
        );
    }
    let data = tempfile::tempdir()?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let (agent, admin) = (token("agent"), token("admin"));
    let region = std::fs::canonicalize(region)?;
    let store = match backend {
        Backend::Embedded => "kind = \"embedded\"".to_owned(),
        Backend::Redis { url } => {
            format!("kind = \"redis\"\nurl = \"{url}\"\nnamespace = \"loadtest\"")
        }
    };
    let config = format!(
        r#"[server]
bind = "127.0.0.1:{port}"
[store]
{store}
path = "{data}"
[region]
path = "{region}"
[log]
filter = "{log_filter}"
[[tokens]]
token = "{agent}"
role = "agent"
[[tokens]]
token = "{admin}"
role = "admin"
"#,
        data = data.path().join("store").display(),
        region = region.display(),
        log_filter = log_filter,
    );
    let config_path = data.path().join("dispatch.toml");
    std::fs::write(&config_path, config)?;
    let child = Command::new(binary)
        .arg("serve")
        .arg("--config")
        .arg(&config_path)
        .stdout(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("starting {}", binary.display()))?;
    let url = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(r) = client.get(format!("{url}/readyz")).send().await
            && r.status().is_success()
        {
            break;
        }
        if Instant::now() > deadline {
            bail!("dispatch did not become ready within 60 s");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(Service {
        url,
        agent_token: agent,
        admin_token: admin,
        child,
        _data: data,
    })
}

impl Service {
    /// A token for every crew, minted through the admin API as a deployment would.
    pub async fn mint_crew_tokens(
        &self,
        crews: &[CrewRecord],
    ) -> anyhow::Result<HashMap<String, String>> {
        let client = reqwest::Client::new();
        let mut tokens = HashMap::new();
        for crew in crews {
            let response = client
                .post(format!("{}/v1/admin/crew-tokens", self.url))
                .bearer_auth(&self.admin_token)
                .json(&serde_json::json!({ "crew_id": crew.id }))
                .send()
                .await?;
            if !response.status().is_success() {
                bail!("minting a token for {}: {}", crew.id, response.status());
            }
            let body: serde_json::Value = response.json().await?;
            let token = body["token"]
                .as_str()
                .context("the token response has no token")?;
            tokens.insert(crew.id.clone(), token.to_owned());
        }
        Ok(tokens)
    }

    /// The service's process id, for its CPU time.
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    pub async fn stop(mut self) -> anyhow::Result<()> {
        self.child.kill().await?;
        Ok(())
    }
}
