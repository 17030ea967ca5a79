//! `recovery`: how fast the service comes back after a restart, and how fast the embedded
//! store takes writes.
//!
//! Setup, untimed by criterion: the engine is driven through ticket lifecycles (report,
//! dispatch, acknowledge, depart, arrive, restore, return, close; some rejects and
//! cancellations; crew position pings) on a synthetic region of 100 stations and 1,000
//! crews until it has produced 1,000,000 events. Every decision is one batch, as the service
//! writes it (reports with their idempotency record, pings lazily), all enqueued at once
//! into an embedded store on disk; that bulk load is timed once and printed, as are opening
//! the file after a crash (a copy of the live file: redb repairs it) and after a clean close,
//! and a first replay on the freshly opened file.
//!
//! Timed:
//! - `replay/engine-apply`: every event replayed into a fresh `Engine::apply`, the real
//!   recovery path. Baseline beside it: `replay/discard`, the same replay into a sink that
//!   drops each event (store read and JSON decode alone).
//! - `append/group-commit-1000-decisions`: 1,000 decisions enqueued together and awaited,
//!   durable. Baseline: `append/one-at-a-time-20-decisions`, each awaited before the next,
//!   so each pays its own fsync.
//!
//! Run: `cargo bench -p dispatch --bench recovery`

use criterion::{BatchSize, Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use dispatch::domain::{
    Actor, Callback, Caller, FaultCategory, FaultClass, FaultReport, Ownership, Priority,
    TicketCommand, TicketId, TicketState, Timestamp, WorkOrderReturn,
};
use dispatch::engine::{Command, Engine, EngineConfig, synthetic};
use dispatch::region::Region;
use dispatch::store::{Batch, Durability, EmbeddedStore, IdempotencyRecord, Store};
use rand::rngs::SmallRng;
use rand::{RngExt, SeedableRng};
use std::hint::black_box;
use std::time::{Duration, Instant};

const EVENTS: usize = 1_000_000;
/// Open tickets at any moment: a busy day in a city.
const OPEN_TICKETS: usize = 400;
/// Decisions enqueued before awaiting them, while loading: bounds the futures held.
const LOAD_WAVE: usize = 20_000;
const GRID: (usize, usize, f64) = (10, 10, 4.0);

fn region() -> Region {
    synthetic::grid(GRID.0, GRID.1, GRID.2, 1_000, 11)
}

fn engine(region: &Region) -> Engine {
    Engine::new(EngineConfig::default(), region.clone()).expect("the default config is valid")
}

/// One engine decision, as the service would append it.
struct Decision {
    batch: Batch,
    durability: Durability,
}

/// Drives the engine until it has emitted `target` events.
fn decisions(region: &Region, target: usize, seed: u64) -> Vec<Decision> {
    let mut engine = engine(region);
    let mut rng = SmallRng::seed_from_u64(seed);
    let mut now = 1_750_000_000_000i64;
    let mut open: Vec<TicketId> = Vec::new();
    let mut next_ticket = 0u64;
    let mut emitted = 0usize;
    let mut out = Vec::new();
    while emitted < target {
        now += rng.random_range(0..2_000);
        let at = Timestamp::from_millis(now);
        let roll: f64 = rng.random();
        let (command, actor, durability, idempotency) = if roll < 0.2 {
            let crew = &region.crews[rng.random_range(0..region.crews.len())];
            let location = synthetic::random_point(&mut rng, GRID.0, GRID.1, GRID.2);
            (
                Command::CrewPosition {
                    crew: crew.id.clone(),
                    location,
                    fix_at: None,
                },
                Actor::Crew(crew.id.clone()),
                Durability::Lazy,
                None,
            )
        } else if open.len() < OPEN_TICKETS && roll < 0.45 {
            let ticket = TicketId::new(format!("T{next_ticket:08}"));
            next_ticket += 1;
            let categories = FaultCategory::ALL;
            let report = FaultReport {
                caller: Caller {
                    name: "王女士".into(),
                    phone: format!("138{:08}", rng.random_range(0..100_000_000u64)),
                },
                location: synthetic::random_point(&mut rng, GRID.0, GRID.1, GRID.2),
                address: "惠城区 河南岸 演达大道 12 号".into(),
                category: categories[rng.random_range(0..categories.len())],
                priority: if rng.random_bool(0.1) {
                    Priority::Emergency
                } else {
                    Priority::Normal
                },
                important_customer: rng.random_bool(0.05),
                description: "家里停电，邻居也没电".into(),
            };
            let record = IdempotencyRecord {
                key: format!("idem-{}", ticket.as_str()),
                request_sha256: [rng.random(); 32],
                ticket: ticket.clone(),
            };
            open.push(ticket.clone());
            (
                Command::Report { ticket, report },
                Actor::Agent,
                Durability::Durable,
                Some(record),
            )
        } else if open.is_empty() {
            continue;
        } else {
            let slot = rng.random_range(0..open.len());
            let id = open[slot].clone();
            let Some(ticket) = engine.ticket(&id) else {
                open.swap_remove(slot);
                continue;
            };
            if ticket.state.is_final() {
                engine.forget(&id);
                open.swap_remove(slot);
                continue;
            }
            let crew = ticket.crew.clone().map(Actor::Crew);
            let by_crew = |command: TicketCommand| crew.clone().map(|actor| (command, actor));
            let step = match ticket.state {
                TicketState::Queued => None,
                TicketState::Dispatched if rng.random_bool(0.03) => {
                    by_crew(TicketCommand::Reject {
                        reason: "车辆故障".into(),
                    })
                }
                TicketState::Dispatched if rng.random_bool(0.01) => Some((
                    TicketCommand::Cancel {
                        reason: "客户来电取消".into(),
                        with_repeats: true,
                    },
                    Actor::Agent,
                )),
                TicketState::Dispatched => by_crew(TicketCommand::Acknowledge),
                TicketState::Acknowledged => by_crew(TicketCommand::Depart),
                TicketState::EnRoute => by_crew(TicketCommand::Arrive { location: None }),
                TicketState::OnSite => by_crew(TicketCommand::Restore {
                    cause: Some("低压熔断器熔断".into()),
                }),
                TicketState::Restored => by_crew(TicketCommand::Return(WorkOrderReturn {
                    fault_class: FaultClass::LowVoltage,
                    cause: "熔断器老化".into(),
                    ownership: Ownership::Utility,
                    resolution: Some("更换熔断器".into()),
                    outage_cause: dispatch::domain::OutageCause::Fault,
                })),
                TicketState::Returned => Some((
                    TicketCommand::Close(Callback {
                        satisfied: true,
                        note: None,
                    }),
                    Actor::Agent,
                )),
                TicketState::Closed | TicketState::Cancelled | TicketState::Merged => None,
            };
            let Some((command, actor)) = step else {
                continue;
            };
            (
                Command::Ticket {
                    ticket: id,
                    command,
                },
                actor,
                Durability::Durable,
                None,
            )
        };
        let Ok(events) = engine.handle(command, actor, at) else {
            continue;
        };
        emitted += events.len();
        out.push(Decision {
            batch: Batch {
                events,
                idempotency,
                ..Batch::default()
            },
            durability,
        });
    }
    out
}

/// Enqueues every decision, in waves, and awaits them; returns the elapsed time.
async fn append_all<'a>(
    store: &EmbeddedStore,
    decisions: impl Iterator<Item = &'a Decision>,
) -> Duration {
    let start = Instant::now();
    let mut pending = Vec::with_capacity(LOAD_WAVE);
    for decision in decisions {
        pending.push(store.append(decision.batch.clone(), decision.durability));
        if pending.len() == LOAD_WAVE {
            for result in futures_util::future::join_all(pending.drain(..)).await {
                result.expect("append");
            }
        }
    }
    for result in futures_util::future::join_all(pending).await {
        result.expect("append");
    }
    start.elapsed()
}

fn per_second(n: u64, elapsed: Duration) -> f64 {
    n as f64 / elapsed.as_secs_f64()
}

fn benches(c: &mut Criterion) {
    let runtime = tokio::runtime::Runtime::new().expect("a tokio runtime");
    let region = region();

    let started = Instant::now();
    let decisions = decisions(&region, EVENTS, 7);
    let events: u64 = decisions.iter().map(|d| d.batch.events.len() as u64).sum();
    println!(
        "generated {events} events in {} decisions by the engine in {:.1} s",
        decisions.len(),
        started.elapsed().as_secs_f64()
    );

    let dir = tempfile::tempdir().expect("a temporary directory");
    let store = EmbeddedStore::open(dir.path()).expect("open the store");
    let elapsed = runtime.block_on(append_all(&store, decisions.iter()));
    let file = std::fs::metadata(dir.path().join(dispatch::store::embedded::FILE_NAME))
        .map(|m| m.len())
        .unwrap_or(0);
    println!(
        "bulk load: {events} events, {} decisions in {:.2} s = {:.0} events/s, {:.0} decisions/s; \
         {} commits; file {:.0} MiB",
        decisions.len(),
        elapsed.as_secs_f64(),
        per_second(events, elapsed),
        per_second(decisions.len() as u64, elapsed),
        store.commits(),
        file as f64 / (1024.0 * 1024.0)
    );

    // What a restart costs before replay: opening after a crash (a copy of the live file,
    // never closed, which redb must repair) and after a clean close.
    let live = dir.path().join(dispatch::store::embedded::FILE_NAME);
    let crash = tempfile::tempdir().expect("a temporary directory");
    let started = Instant::now();
    std::fs::copy(
        &live,
        crash.path().join(dispatch::store::embedded::FILE_NAME),
    )
    .expect("copy the live file");
    let plain_copy = started.elapsed();
    let started = Instant::now();
    let crashed = EmbeddedStore::open(crash.path()).expect("open after a crash");
    println!(
        "open after a crash (repair of the whole file): {:.2} s",
        started.elapsed().as_secs_f64()
    );
    drop(crashed);
    drop(crash);
    drop(store);
    let started = Instant::now();
    let store = EmbeddedStore::open(dir.path()).expect("reopen the store");
    println!(
        "open after a clean close: {:.3} s",
        started.elapsed().as_secs_f64()
    );

    // An online backup copies row by row from a snapshot; the baseline is the plain file
    // copy above, which is only safe with the service stopped.
    let started = Instant::now();
    let backup = runtime
        .block_on(
            store
                .backup(dispatch::domain::Timestamp::from_millis(0), 0)
                .expect("a store on disk backs up"),
        )
        .expect("the backup");
    let elapsed = started.elapsed();
    assert_eq!(backup.events, events);
    println!(
        "online backup: {} events, {:.0} MiB in {:.2} s; plain copy of the {:.0} MiB file: {:.2} s \
         (ratio {:.1})",
        backup.events,
        backup.bytes as f64 / (1024.0 * 1024.0),
        elapsed.as_secs_f64(),
        file as f64 / (1024.0 * 1024.0),
        plain_copy.as_secs_f64(),
        elapsed.as_secs_f64() / plain_copy.as_secs_f64()
    );

    // Once, outside criterion, on the freshly opened file (redb's cache empty): the
    // replayed engine is sound, and a plain figure to print.
    let mut check = engine(&region);
    let started = Instant::now();
    let recovered = runtime
        .block_on(store.replay(&mut |event| check.apply(&event)))
        .expect("replay");
    let elapsed = started.elapsed();
    assert_eq!(recovered.events, events);
    let problems = check.audit();
    assert!(problems.is_empty(), "replayed engine: {problems:?}");
    println!(
        "recovery: {} events into Engine::apply in {:.2} s = {:.0} events/s; {} idempotency keys; \
         {} tickets in memory",
        recovered.events,
        elapsed.as_secs_f64(),
        per_second(recovered.events, elapsed),
        recovered.idempotency.len(),
        check.tickets().count()
    );
    drop(check);

    let mut group = c.benchmark_group("replay");
    group.sample_size(10);
    group.sampling_mode(SamplingMode::Flat);
    group.measurement_time(Duration::from_secs(30));
    group.throughput(Throughput::Elements(events));
    group.bench_function("engine-apply", |b| {
        b.iter_batched(
            || engine(&region),
            |mut engine| {
                runtime
                    .block_on(store.replay(&mut |event| engine.apply(&event)))
                    .expect("replay");
                engine
            },
            BatchSize::PerIteration,
        )
    });
    group.bench_function("discard", |b| {
        b.iter(|| {
            runtime
                .block_on(store.replay(&mut |event| {
                    black_box(event);
                }))
                .expect("replay")
        })
    });
    group.finish();

    let writes = tempfile::tempdir().expect("a temporary directory");
    let writer = EmbeddedStore::open(writes.path()).expect("open the store");
    let sample: Vec<&Decision> = decisions.iter().take(10_000).collect();
    let mut next = 0usize;
    let mut take = |n: usize| {
        let chosen: Vec<&Decision> = (0..n).map(|i| sample[(next + i) % sample.len()]).collect();
        next += n;
        chosen
    };
    let mut group = c.benchmark_group("append");
    group.sample_size(10);
    group.throughput(Throughput::Elements(1_000));
    group.bench_function("group-commit-1000-decisions", |b| {
        b.iter_batched(
            || take(1_000),
            |chosen| runtime.block_on(append_all(&writer, chosen.into_iter())),
            BatchSize::PerIteration,
        )
    });
    group.throughput(Throughput::Elements(20));
    group.bench_function("one-at-a-time-20-decisions", |b| {
        b.iter_batched(
            || take(20),
            |chosen| {
                runtime.block_on(async {
                    for decision in chosen {
                        writer
                            .append(decision.batch.clone(), Durability::Durable)
                            .await
                            .expect("append");
                    }
                })
            },
            BatchSize::PerIteration,
        )
    });
    group.finish();
}

criterion_group! {
    name = recovery_benches;
    // Figures are quoted, never plotted; plotting needs system fonts a fresh machine lacks
    // (criterion's plotters backend panics without them, after the measurements).
    config = Criterion::default().without_plots();
    targets = benches
}
criterion_main!(recovery_benches);
