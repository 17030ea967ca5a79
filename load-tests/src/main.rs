//! The load harness: drives a `dispatch serve` it starts itself for each round (on
//! loopback, with a fresh data directory and known tokens) with N concurrent clients, and
//! measures the same clients against a minimal axum handler it also starts — the HTTP floor
//! of this machine — so every figure comes with its ratio to a baseline run beside it. With
//! `--backends embedded,redis` it also starts a `redis-server` and two instances sharing it,
//! with half the clients on each, and reports the Redis pair against the embedded service
//! measured in the same rounds.
//!
//! `cargo run --release -p load-tests -- --help`

mod clients;
mod cpu;
mod floor;
mod redis;
mod service;

use anyhow::Context;
use clap::Parser;
use clients::{Outcome, Scenario};
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Parser)]
#[command(about = "Benchmark the dispatch service against the HTTP floor of this machine")]
struct Args {
    /// The `dispatch` binary to start (build it with `cargo build --release -p dispatch`).
    #[arg(long, default_value = "target/release/dispatch")]
    dispatch_bin: PathBuf,
    /// The region directory the service loads; report points are drawn from it.
    #[arg(long, default_value = "geo-data/regions/huizhou")]
    region: PathBuf,
    /// Concurrent clients.
    #[arg(long, default_value_t = 64)]
    clients: usize,
    /// How long each measurement runs.
    #[arg(long, default_value = "10", value_parser = seconds)]
    seconds: Duration,
    /// Upper bound on requests per measurement, whatever the duration.
    #[arg(long, default_value_t = 200_000)]
    max_requests: u64,
    /// How many times to alternate floor and service per measurement; the summary line gives
    /// the median of the rounds' ratios, which is what to quote on a noisy machine.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=10))]
    rounds: u32,
    /// Which measurements to run.
    #[arg(long, value_delimiter = ',', default_value = "create,ping")]
    scenarios: Vec<Scenario>,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Internal: serve the HTTP floor on this port (the harness starts itself this way).
    #[arg(long, hide = true)]
    serve_floor: Option<u16>,
    /// The service's log filter. `info` (the default, as deployed) logs every ticket.
    #[arg(long, default_value = "info")]
    log_filter: String,
    /// Which stores to measure: `embedded` (one instance), `redis` (two instances sharing a
    /// Redis the harness starts, with `appendfsync always`).
    #[arg(long, value_delimiter = ',', default_value = "embedded")]
    backends: Vec<BackendName>,
    /// Redis's automatic AOF rewrites: `auto` (Redis's defaults: whenever the file has
    /// doubled past 64 MB) or `off` (`auto-aof-rewrite-percentage 0`, as a deployment that
    /// runs BGREWRITEAOF off-peak would). At the harness's rates `auto` rewrites the whole,
    /// never-trimmed log every few seconds on the cores the instances use.
    #[arg(long, value_enum, default_value = "auto")]
    redis_aof_rewrite: redis::AofRewrite,
    /// Keep the same services (and Redis) across rounds instead of starting fresh ones for
    /// each: every round then also carries the open tickets of the rounds before it.
    #[arg(long)]
    reuse_services: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum BackendName {
    Embedded,
    Redis,
}

/// The instances of one backend under test.
struct UnderTest {
    name: &'static str,
    services: Vec<service::Service>,
    urls: Vec<String>,
    crew_tokens: std::collections::HashMap<String, String>,
    /// Every server process of this backend (instances and Redis), for their CPU time.
    pids: Vec<u32>,
    /// Kept alive while the services use it; asked for its AOF rewrites.
    redis: Option<redis::RedisProcess>,
}

fn seconds(s: &str) -> Result<Duration, String> {
    let secs: u64 = s.parse().map_err(|e| format!("{e}"))?;
    if !(1..=600).contains(&secs) {
        return Err("between 1 and 600 seconds".into());
    }
    Ok(Duration::from_secs(secs))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if let Some(port) = args.serve_floor {
        return floor::serve(port).await;
    }
    let points = clients::report_points(&args.region, args.seed)
        .with_context(|| format!("reading region {}", args.region.display()))?;
    let crews = geo_data::region::load_crews(&args.region)?;

    let floor = floor::start().await?;
    let start_all = || async {
        let mut under_test = Vec::new();
        for backend in &args.backends {
            under_test.push(start_backend(&args, *backend, &crews).await?);
        }
        anyhow::Ok(under_test)
    };
    let mut under_test = start_all().await?;
    // Whether a measurement has run on the services in `under_test`.
    let mut used = false;

    println!(
        "{} clients, {} s per measurement, at most {} requests; {} report points, {} crews",
        args.clients,
        args.seconds.as_secs(),
        args.max_requests,
        points.len(),
        crews.len()
    );
    println!(
        "| measurement | requests | errors | req/s | p50 ms | p99 ms | p99.9 ms | server CPU µs/req | client CPU µs/req | floor req/s | ratio |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    let limits = clients::Limits {
        clients: args.clients,
        duration: args.seconds,
        max_requests: args.max_requests,
    };
    for scenario in &args.scenarios {
        // Per backend: each round's share of the floor, and of the first backend.
        let mut shares = vec![Vec::new(); under_test.len()];
        let mut against_first = vec![Vec::new(); under_test.len()];
        let mut cpu_per_request = vec![Vec::new(); under_test.len()];
        let mut floor_cpu_per_request = Vec::new();
        let floor_pids = [floor
            .pid()
            .context("the floor server exited before the measurement")?];
        for _ in 0..args.rounds {
            if used && !args.reuse_services {
                // Each round on fresh services and a fresh Redis: the tickets a round leaves
                // open (some 100,000, far beyond a typhoon's backlog) would otherwise weigh on
                // the next, and the rounds would not be samples of the same thing.
                stop_all(std::mem::take(&mut under_test)).await?;
                under_test = start_all().await?;
            }
            used = true;
            // The floor, then each backend, with the same clients and limits: each round's
            // ratios compare runs a few seconds apart.
            let cpu_before = cpu::seconds(&floor_pids)?;
            let client_before = cpu::own_seconds()?;
            let machine_before = cpu::machine()?;
            let baseline = clients::run_floor(&floor.url, *scenario, &limits, &points).await?;
            let machine = cpu::machine()?.since(&machine_before);
            let floor_cpu = per_request_us(cpu::seconds(&floor_pids)? - cpu_before, &baseline);
            let client_cpu = per_request_us(cpu::own_seconds()? - client_before, &baseline);
            floor_cpu_per_request.push(floor_cpu);
            let floor_row = format!("{} (floor)", scenario.name());
            print_row(
                &floor_row,
                &baseline,
                Some((floor_cpu, client_cpu)),
                &baseline,
            );
            print_machine(&machine);
            let mut first = None;
            for (i, backend) in under_test.iter().enumerate() {
                let cpu_before = cpu::seconds(&backend.pids)?;
                let client_before = cpu::own_seconds()?;
                let machine_before = cpu::machine()?;
                let rewrites_before = backend
                    .redis
                    .as_ref()
                    .map(redis::RedisProcess::aof_rewrites)
                    .transpose()?;
                let measured = match scenario {
                    Scenario::Create => {
                        clients::run_create(
                            &backend.urls,
                            &backend.services[0].agent_token,
                            &backend.crew_tokens,
                            &limits,
                            &points,
                            args.seed,
                        )
                        .await?
                    }
                    Scenario::Ping => {
                        clients::run_ping(
                            &backend.urls,
                            &backend.crew_tokens,
                            &limits,
                            &points,
                            args.seed,
                        )
                        .await?
                    }
                };
                let machine = cpu::machine()?.since(&machine_before);
                let cpu = per_request_us(cpu::seconds(&backend.pids)? - cpu_before, &measured);
                let client_cpu = per_request_us(cpu::own_seconds()? - client_before, &measured);
                cpu_per_request[i].push(cpu);
                let name = format!("{} ({})", scenario.name(), backend.name);
                print_row(&name, &measured, Some((cpu, client_cpu)), &baseline);
                if let Some(acks) = &measured.secondary {
                    // Their CPU is inside the row above: the two kinds share the processes.
                    print_row("  of which crew acks", acks, None, &baseline);
                }
                print_machine(&machine);
                println!(
                    "|   server memory after it: {:.0} MiB resident | | | | | | | | | | |",
                    cpu::resident_mib(&backend.pids)?
                );
                if let (Some(redis), Some(before)) = (&backend.redis, rewrites_before) {
                    // Not waited for: a rewrite still running shows in the next measurement
                    // with --reuse-services; otherwise the Redis shutdown stops it.
                    let during = redis.aof_rewrites()?.saturating_sub(before);
                    println!(
                        "|   Redis AOF rewrites started during it: {during}; Redis data after it: {:.0} MiB | | | | | | | | | | |",
                        redis.used_memory_mib()?
                    );
                }
                let throughput = measured.throughput();
                shares[i].push(throughput / baseline.throughput().max(f64::MIN_POSITIVE));
                let first = *first.get_or_insert(throughput);
                against_first[i].push(throughput / first.max(f64::MIN_POSITIVE));
            }
        }
        let floor_cpu = median(&mut floor_cpu_per_request);
        for (i, backend) in under_test.iter().enumerate() {
            println!(
                "| **{} ({}) — median share of the floor over {} rounds** | | | | | | | | | | **{:.0} %** |",
                scenario.name(),
                backend.name,
                args.rounds,
                100.0 * median(&mut shares[i])
            );
            let cpu = median(&mut cpu_per_request[i]);
            println!(
                "| **{} ({}) — median server CPU per request, floor's {:.0} µs** | | | | | | | **{:.0} µs** | | | **{:.1} × floor** |",
                scenario.name(),
                backend.name,
                floor_cpu,
                cpu,
                cpu / floor_cpu.max(f64::MIN_POSITIVE)
            );
            if i > 0 {
                println!(
                    "| **{} ({}) — median ratio to {}** | | | | | | | | | | **{:.0} %** |",
                    scenario.name(),
                    backend.name,
                    under_test[0].name,
                    100.0 * median(&mut against_first[i])
                );
            }
        }
    }
    stop_all(under_test).await
}

/// Starts one backend's servers on a fresh data directory (and a fresh Redis), with a token
/// minted for every crew.
async fn start_backend(
    args: &Args,
    backend: BackendName,
    crews: &[geo_data::format::CrewRecord],
) -> anyhow::Result<UnderTest> {
    let (name, redis, spec, instances) = match backend {
        BackendName::Embedded => ("embedded", None, service::Backend::Embedded, 1),
        BackendName::Redis => {
            let redis = redis::start(args.redis_aof_rewrite)?;
            let spec = service::Backend::Redis {
                url: redis.url.clone(),
            };
            ("redis ×2", Some(redis), spec, 2)
        }
    };
    let mut services = Vec::new();
    for _ in 0..instances {
        services
            .push(service::start(&args.dispatch_bin, &args.region, &args.log_filter, &spec).await?);
    }
    let crew_tokens = services[0].mint_crew_tokens(crews).await?;
    let urls = services.iter().map(|s| s.url.clone()).collect();
    // A server already gone would make its CPU silently zero: refuse to measure instead.
    let mut pids = services
        .iter()
        .map(|s| {
            s.pid()
                .context("a dispatch instance exited before the measurement")
        })
        .collect::<anyhow::Result<Vec<u32>>>()?;
    pids.extend(redis.as_ref().map(redis::RedisProcess::pid));
    Ok(UnderTest {
        name,
        services,
        urls,
        crew_tokens,
        pids,
        redis,
    })
}

/// Stops every backend's services; their data directories and Redis go with them.
async fn stop_all(under_test: Vec<UnderTest>) -> anyhow::Result<()> {
    for backend in under_test {
        for service in backend.services {
            service.stop().await?;
        }
    }
    Ok(())
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(0.0)
}

/// Server CPU microseconds per request of `outcome`.
fn per_request_us(cpu_seconds: f64, outcome: &Outcome) -> f64 {
    1e6 * cpu_seconds / (outcome.requests.max(1) as f64)
}

/// `cpu_us`: the servers' and the harness's CPU per request, when measured for this row.
/// Where the two cores' time went during the measurement above.
fn print_machine(machine: &cpu::MachineShares) {
    println!("|   the machine during it: {machine} | | | | | | | | | | |");
}

fn print_row(name: &str, measured: &Outcome, cpu_us: Option<(f64, f64)>, floor: &Outcome) {
    let h = &measured.latency_us;
    let ms = |q: f64| h.value_at_quantile(q) as f64 / 1000.0;
    let (server, client) = cpu_us.map_or_else(Default::default, |(server, client)| {
        (format!("{server:.0}"), format!("{client:.0}"))
    });
    println!(
        "| {name} | {} | {} | {:.0} | {:.2} | {:.2} | {:.2} | {server} | {client} | {:.0} | {:.0} % |",
        measured.requests,
        measured.errors,
        measured.throughput(),
        ms(0.5),
        ms(0.99),
        ms(0.999),
        floor.throughput(),
        100.0 * measured.throughput() / floor.throughput().max(f64::MIN_POSITIVE)
    );
}
