//! `dispatch serve [--config FILE]` and `dispatch demo`: the service's command line.
//! Everything else lives in the library, in `dispatch::run` and `dispatch::demo`.

use anyhow::Context;
use clap::{Parser, Subcommand};
use dispatch::config::{Config, DevTokens, LogConfig, LogFormat};
use dispatch::demo::DemoOptions;
use std::io::IsTerminal;
use std::path::PathBuf;
use tracing_subscriber::EnvFilter;

// glibc's malloc was a tenth of the service's CPU under load (many small strings and JSON
// buffers per request); mimalloc serves that pattern with less work.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Debug, Parser)]
#[command(
    version,
    about = "Fault-repair dispatch for electric power distribution utilities"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the HTTP API until SIGTERM or Ctrl-C.
    Serve {
        /// A TOML configuration file; without it, the documented defaults.
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
    },
    /// Serve with simulated agents and crews driving traffic over the region, deadlines
    /// compressed to demo pace; open the printed address for the control room.
    Demo {
        /// A TOML configuration file; its store path is ignored (see --data).
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
        /// The demo's own data directory, never the service's: demo traffic is not real.
        #[arg(long, value_name = "DIR", default_value = "data-demo")]
        data: PathBuf,
        /// Seeds the simulation's random choices.
        #[arg(long, default_value_t = DemoOptions::default().seed)]
        seed: u64,
        /// Average calls per minute.
        #[arg(long, default_value_t = DemoOptions::default().calls_per_minute)]
        calls_per_minute: f64,
        /// How many times faster than life crews drive and repair and deadlines run.
        #[arg(long, default_value_t = DemoOptions::default().speedup)]
        speedup: f64,
    },
}

fn main() -> anyhow::Result<()> {
    let Cli { command } = Cli::parse();
    match command {
        Command::Serve { config } => {
            let config = Config::load(config.as_deref())?;
            init_tracing(&config.log)?;
            let runtime = tokio::runtime::Runtime::new().context("starting the runtime")?;
            runtime.block_on(serve(config))
        }
        Command::Demo {
            config,
            data,
            seed,
            calls_per_minute,
            speedup,
        } => {
            let mut config = Config::load(config.as_deref())?;
            config.store.path = data;
            init_tracing(&config.log)?;
            let options = DemoOptions {
                seed,
                calls_per_minute,
                speedup,
                ..DemoOptions::default()
            };
            let runtime = tokio::runtime::Runtime::new().context("starting the runtime")?;
            runtime.block_on(demo(config, options))
        }
    }
}

async fn demo(config: Config, options: DemoOptions) -> anyhow::Result<()> {
    let bind = config.server.bind;
    let listener = tokio::net::TcpListener::bind(bind)
        .await
        .with_context(|| format!("cannot listen on {bind}"))?;
    // The demo's own throwaway tokens may be shown: with them the address opens the page
    // signed in. Configured tokens are never printed.
    let page = format!("http://{}/", listener.local_addr()?);
    if config.tokens.is_empty() {
        let (_, tokens) = DevTokens::load_or_create(&config.store.path)?;
        println!("control room: {page}#token={}", tokens.supervisor);
    } else {
        println!("control room: {page} (sign in with a supervisor token)");
    }
    dispatch::demo::run(config, listener, shutdown_signal(), options).await?;
    Ok(())
}

async fn serve(config: Config) -> anyhow::Result<()> {
    let bind = config.server.bind;
    let listener = tokio::net::TcpListener::bind(bind)
        .await
        .with_context(|| format!("cannot listen on {bind}"))?;
    dispatch::run(config, listener, shutdown_signal()).await?;
    Ok(())
}

fn init_tracing(log: &LogConfig) -> anyhow::Result<()> {
    let filter = EnvFilter::try_new(&log.filter)
        .with_context(|| format!("log.filter {:?} is not a valid filter", log.filter))?;
    // Colours only on a terminal: in a file or a pipe they are noise.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stdout().is_terminal());
    match log.format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
    Ok(())
}

/// Resolves at the first SIGTERM or Ctrl-C.
async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::error!(%error, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::error!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
}
