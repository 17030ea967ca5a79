//! A `redis-server` for the Redis measurements (Debian's package; `scripts/test.sh` installs
//! it): on a free loopback port, in a temporary directory, with the persistence the service
//! asks for in production (`appendonly yes`, `appendfsync always`), automatic AOF rewrites as
//! `--redis-aof-rewrite` says; killed when dropped.

use anyhow::{Context, bail};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct RedisProcess {
    pub url: String,
    port: u16,
    child: Child,
    _dir: tempfile::TempDir,
}

/// Whether Redis rewrites its append-only file by itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum AofRewrite {
    /// Redis's defaults (`auto-aof-rewrite-percentage 100`, `auto-aof-rewrite-min-size 64mb`).
    Auto,
    /// `auto-aof-rewrite-percentage 0`: only an explicit BGREWRITEAOF rewrites.
    Off,
}

pub fn start(rewrite: AofRewrite) -> anyhow::Result<RedisProcess> {
    let dir = tempfile::tempdir()?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let child = Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .arg("--dir")
        .arg(dir.path())
        .args([
            "--appendonly",
            "yes",
            "--appendfsync",
            "always",
            "--save",
            "",
        ])
        .args(match rewrite {
            AofRewrite::Auto => &[][..],
            AofRewrite::Off => &["--auto-aof-rewrite-percentage", "0"][..],
        })
        .args(["--logfile", ""])
        .stdout(Stdio::null())
        .spawn()
        .context("starting redis-server (Debian's redis-server package)")?;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let pong = Command::new("redis-cli")
            .args(["-p", &port.to_string(), "PING"])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "PONG")
            .unwrap_or(false);
        if pong {
            break;
        }
        if Instant::now() > deadline {
            bail!("redis-server did not answer within 20 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(RedisProcess {
        url: format!("redis://127.0.0.1:{port}/"),
        port,
        child,
        _dir: dir,
    })
}

impl RedisProcess {
    /// The server's process id, for its CPU time.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// AOF rewrites so far: each forks a child that rewrites the whole file, a burst of CPU
    /// and disk on this machine's two cores that a measurement should say it contains.
    pub fn aof_rewrites(&self) -> anyhow::Result<u64> {
        self.info_number("persistence", "aof_rewrites")
    }

    /// What Redis's data takes in memory (`used_memory`), in MiB: with the log never
    /// trimmed, what a deployment sizes its Redis host by.
    pub fn used_memory_mib(&self) -> anyhow::Result<f64> {
        Ok(self.info_number("memory", "used_memory")? as f64 / (1024.0 * 1024.0))
    }

    fn info_number(&self, section: &str, field: &str) -> anyhow::Result<u64> {
        let info = Command::new("redis-cli")
            .args(["-p", &self.port.to_string(), "INFO", section])
            .output()
            .with_context(|| format!("running redis-cli INFO {section}"))?;
        let text = String::from_utf8_lossy(&info.stdout);
        let prefix = format!("{field}:");
        text.lines()
            .find_map(|line| line.trim().strip_prefix(prefix.as_str()))
            .with_context(|| format!("INFO {section} has no {field}"))?
            .parse()
            .with_context(|| format!("{field} is not a number"))
    }
}

impl Drop for RedisProcess {
    /// Shuts Redis down rather than killing it: a shutdown also stops an AOF rewrite child,
    /// which a killed server would leave running, orphaned, on the cores the next round
    /// measures. Killed after all if it has not gone within a few seconds.
    fn drop(&mut self) {
        let _ = Command::new("redis-cli")
            .args(["-p", &self.port.to_string(), "SHUTDOWN", "NOSAVE"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
