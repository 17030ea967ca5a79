//! A real `redis-server` (Debian's package, which `scripts/test.sh` installs) started by a
//! test on a free loopback port in a temporary directory, and stopped with it. Never the
//! machine's own Redis on the standard port. Also a three-master Redis Cluster built from
//! such servers with `redis-cli --cluster create`.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tempfile::TempDir;

const START_TIMEOUT: Duration = Duration::from_secs(20);

/// A free loopback port: bound, read, released. Another process could take it before the
/// server does; the start then fails loudly rather than using someone else's server.
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a free loopback port");
    listener.local_addr().expect("the bound address").port()
}

#[derive(Debug)]
pub struct RedisServer {
    pub port: u16,
    dir: PathBuf,
    _tmp: Option<TempDir>,
    args: Vec<String>,
    child: Option<Child>,
}

impl RedisServer {
    /// Persistent as the service wants it: AOF with an fsync per write.
    pub fn start() -> Self {
        Self::start_with(&[
            "--appendonly",
            "yes",
            "--appendfsync",
            "always",
            "--save",
            "",
        ])
    }

    /// Keeps nothing on disk: what the service refuses unless told otherwise.
    pub fn start_volatile() -> Self {
        Self::start_with(&["--appendonly", "no", "--save", ""])
    }

    pub fn start_with(args: &[&str]) -> Self {
        let tmp = tempfile::tempdir().expect("a temporary directory");
        let dir = tmp.path().to_path_buf();
        let mut server = Self {
            port: free_port(),
            dir,
            _tmp: Some(tmp),
            args: args.iter().map(|a| (*a).to_owned()).collect(),
            child: None,
        };
        server.spawn();
        server
    }

    fn in_dir(dir: &Path, args: &[&str]) -> Self {
        let mut server = Self {
            port: free_port(),
            dir: dir.to_path_buf(),
            _tmp: None,
            args: args.iter().map(|a| (*a).to_owned()).collect(),
            child: None,
        };
        server.spawn();
        server
    }

    fn spawn(&mut self) {
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .arg("--dir")
            .arg(&self.dir)
            .args([
                "--daemonize",
                "no",
                "--protected-mode",
                "yes",
                "--logfile",
                "",
            ])
            .args(&self.args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect(
                "redis-server not found: run scripts/test.sh, which installs Debian's redis-server",
            );
        self.child = Some(child);
        self.wait_answering();
    }

    fn wait_answering(&self) {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if self.cli(&["PING"]).is_some_and(|out| out.trim() == "PONG") {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "redis-server on port {} did not start",
                self.port
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Runs `redis-cli` against this server; its output, or `None` if it failed.
    pub fn cli(&self, args: &[&str]) -> Option<String> {
        let output = Command::new("redis-cli")
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
            .args(args)
            .output()
            .ok()?;
        output
            .status
            .success()
            .then(|| String::from_utf8_lossy(&output.stdout).into_owned())
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// SIGKILL: what a crash of Redis looks like.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port and directory (its AOF).
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Three masters joined into a Cluster by `redis-cli --cluster create`.
#[derive(Debug)]
pub struct RedisCluster {
    pub nodes: Vec<RedisServer>,
    _tmp: TempDir,
}

impl RedisCluster {
    pub fn start() -> Self {
        let tmp = tempfile::tempdir().expect("a temporary directory");
        let nodes: Vec<RedisServer> = (0..3)
            .map(|i| {
                let dir = tmp.path().join(format!("node-{i}"));
                std::fs::create_dir_all(&dir).expect("a node directory");
                RedisServer::in_dir(
                    &dir,
                    &[
                        "--cluster-enabled",
                        "yes",
                        "--cluster-config-file",
                        "nodes.conf",
                        "--cluster-node-timeout",
                        "2000",
                        "--appendonly",
                        "yes",
                        "--appendfsync",
                        "always",
                        "--save",
                        "",
                    ],
                )
            })
            .collect();
        let addresses: Vec<String> = nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port))
            .collect();
        let created = Command::new("redis-cli")
            .arg("--cluster")
            .arg("create")
            .args(&addresses)
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .output()
            .expect("redis-cli runs");
        assert!(
            created.status.success(),
            "redis-cli --cluster create failed: {}",
            String::from_utf8_lossy(&created.stdout)
        );
        let cluster = Self { nodes, _tmp: tmp };
        let deadline = Instant::now() + START_TIMEOUT;
        while !cluster.nodes.iter().all(|n| {
            n.cli(&["CLUSTER", "INFO"])
                .is_some_and(|i| i.contains("cluster_state:ok"))
        }) {
            assert!(Instant::now() < deadline, "the cluster did not become ok");
            std::thread::sleep(Duration::from_millis(50));
        }
        cluster
    }

    pub fn urls(&self) -> Vec<String> {
        self.nodes.iter().map(RedisServer::url).collect()
    }

    /// The port of the master that serves `key`'s slot.
    pub fn master_of(&self, key: &str) -> u16 {
        let slot: u16 = self.nodes[0]
            .cli(&["CLUSTER", "KEYSLOT", key])
            .and_then(|s| s.trim().parse().ok())
            .expect("CLUSTER KEYSLOT answers");
        // "<id> <ip:port@bus> <flags> <master> <ping> <pong> <epoch> <state> <slot ranges>..."
        let nodes = self.nodes[0]
            .cli(&["CLUSTER", "NODES"])
            .expect("CLUSTER NODES answers");
        for line in nodes.lines() {
            let fields: Vec<&str> = line.split_whitespace().collect();
            if fields.len() < 9 || !fields[2].contains("master") {
                continue;
            }
            let port: u16 = fields[1]
                .split('@')
                .next()
                .and_then(|a| a.rsplit(':').next())
                .and_then(|p| p.parse().ok())
                .expect("a node address");
            for range in &fields[8..] {
                let (from, to) = range.split_once('-').unwrap_or((range, range));
                if let (Ok(from), Ok(to)) = (from.parse::<u16>(), to.parse::<u16>())
                    && (from..=to).contains(&slot)
                {
                    return port;
                }
            }
        }
        panic!("no master serves slot {slot}");
    }
}
