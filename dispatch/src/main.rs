//! `dispatch serve [--config FILE]`, `dispatch simulate …` and `dispatch demo`: the command
//! line. Everything else lives in the library, in `dispatch::run`, `dispatch::sim` and
//! `dispatch::demo`.

use anyhow::Context;
use clap::{Parser, Subcommand};
use dispatch::config::{Config, DevTokens, LogConfig, LogFormat};
use dispatch::demo::DemoOptions;
use dispatch::sim::Dispatch;
use std::io::IsTerminal;
use std::path::PathBuf;
use tracing_subscriber::EnvFilter;

// glibc's malloc was a tenth of the service's CPU under load (many small strings and JSON
// buffers per request); mimalloc serves that pattern with less work. It is built without
// transparent huge pages (`no_thp` in Cargo.toml): the kernel zeroes a huge page, 2 MiB, in
// one go inside whichever request first touches it, and that stall was the tail of creation
// latency (p99 13-15 ms with, 8-11 ms without, in the same load-tests session).
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
    /// Play a scenario through the engine under dispatch policies and compare them.
    Simulate(SimulateArgs),
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

#[derive(Debug, clap::Args)]
struct SimulateArgs {
    /// A region directory (stations, service areas, crews).
    #[arg(long, value_name = "DIR")]
    region: PathBuf,
    /// A scenario file (TOML), e.g. dispatch/scenarios/huizhou/typhoon.toml.
    #[arg(long, value_name = "FILE")]
    scenario: PathBuf,
    /// nearest, station, batch, nearest+storm (nearest with storm mode), or all of them.
    #[arg(long, default_value = "all", value_parser = parse_policies)]
    policy: Policies,
    /// The random seed; the scenario's own when left out.
    #[arg(long)]
    seed: Option<u64>,
    /// Write report.md, compliance.png and queue.png here.
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// The TrueType font the charts are drawn with.
    #[arg(long, value_name = "FILE", default_value = dispatch::sim::files::DEFAULT_FONT)]
    font: PathBuf,
}

#[derive(Debug, Clone)]
struct Policies(Vec<Dispatch>);

fn parse_policies(name: &str) -> Result<Policies, String> {
    if name == "all" {
        return Ok(Policies(Dispatch::ALL.to_vec()));
    }
    Dispatch::from_name(name)
        .map(|p| Policies(vec![p]))
        .ok_or_else(|| {
            format!("{name} is not a policy: nearest, station, batch, nearest+storm or all")
        })
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
        Command::Simulate(args) => simulate(args),
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

/// Runs each policy, timing it (the one clock read, here and not in the library), then
/// prints the comparison and writes the files.
fn simulate(args: SimulateArgs) -> anyhow::Result<()> {
    let simulation = dispatch::sim::files::load(&args.region, &args.scenario, args.seed)?;
    eprintln!(
        "{}: {} calls over {} h, seed {}",
        simulation.scenario.name,
        simulation.calls().len(),
        simulation.scenario.hours,
        simulation.seed
    );
    let mut outcomes = Vec::new();
    for policy in args.policy.0 {
        let started = std::time::Instant::now();
        outcomes.push(simulation.run(policy)?);
        eprintln!(
            "{policy}: simulated in {:.1} s",
            started.elapsed().as_secs_f64()
        );
    }
    print!("{}", simulation.markdown(&outcomes));
    if let Some(out) = &args.out {
        dispatch::sim::files::write_outputs(&simulation, &outcomes, out, &args.font)?;
        eprintln!(
            "wrote report.md, compliance.png and queue.png to {}",
            out.display()
        );
    }
    Ok(())
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
