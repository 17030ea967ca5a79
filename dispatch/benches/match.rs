//! `match`: one report through the engine — locate the station, look for an open incident,
//! choose the crew, claim it in the pool, record the events — on the bundled Huizhou region
//! and on synthetic regions of 1,000 stations with 10,000 and 100,000 crews. Each timed
//! report is cancelled and forgotten untimed, so every iteration sees the same pool. Also
//! prints the memory per crew: of the pool alone, and of the whole engine. Beside each region,
//! `linear-scan/…` times the same choice by scanning every crew: the baseline.
//!
//! Run: `cargo bench -p dispatch --bench match`

use criterion::{Criterion, criterion_group, criterion_main};
use dispatch::domain::{
    Actor, Caller, FaultCategory, FaultReport, LatLon, Priority, TicketCommand, TicketId, Timestamp,
};
use dispatch::engine::{Command, Engine, EngineConfig, synthetic};
use dispatch::geo::{CrewIndex, LocalProjection};
use dispatch::region::Region;
use rand::rngs::SmallRng;
use rand::{RngExt, SeedableRng};
use stats_alloc::{INSTRUMENTED_SYSTEM, Region as AllocRegion, StatsAlloc};
use std::alloc::System;
use std::hint::black_box;
use std::path::Path;
use std::time::{Duration, Instant};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// Report points near crews (faults happen where customers are, and crews are placed by
/// customers), alternating a low-voltage and a 10 kV category.
fn reports(region: &Region, seed: u64) -> Vec<FaultReport> {
    let mut rng = SmallRng::seed_from_u64(seed);
    (0..4096)
        .map(|i| {
            let near = &region.crews[rng.random_range(0..region.crews.len())];
            let location = LatLon::new(
                near.position.lat() + (rng.random::<f64>() - 0.5) * 0.02,
                near.position.lon() + (rng.random::<f64>() - 0.5) * 0.02,
            )
            .expect("within a hundredth of a degree of a real crew");
            FaultReport {
                caller: Caller {
                    name: "Wang".into(),
                    phone: "13800000000".into(),
                },
                location,
                address: "a road".into(),
                category: [FaultCategory::NoPower, FaultCategory::AreaOutage][i % 2],
                priority: Priority::Normal,
                important_customer: false,
                description: String::new(),
            }
        })
        .collect()
}

fn bench_region(c: &mut Criterion, name: &str, region: Region) {
    let reports = reports(&region, 7);
    let mut engine = Engine::new(EngineConfig::default(), region).expect("default config is valid");
    let mut n = 0u64;
    c.bench_function(&format!("match/{name}"), |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let ticket = TicketId::new(format!("T{n}"));
                let report = reports[(n % 4096) as usize].clone();
                let now = Timestamp::from_millis(n as i64 * 1000);
                n += 1;
                let command = Command::Report {
                    ticket: ticket.clone(),
                    report,
                };
                let start = Instant::now();
                let events = engine.handle(command, Actor::Agent, now);
                total += start.elapsed();
                black_box(&events);
                let cancel = Command::Ticket {
                    ticket: ticket.clone(),
                    command: TicketCommand::Cancel {
                        reason: "bench".into(),
                        with_repeats: true,
                    },
                };
                // Back to the state before the report, so every iteration meets the same
                // engine: its incident closes and its crew is free again.
                let _ = engine.handle(cancel, Actor::Agent, now);
                engine.forget(&ticket);
            }
            total
        })
    });
}

/// The baseline beside each figure: the same choice by a linear scan over every crew
/// (nearest skilled crew by great-circle estimate), with no index at all.
fn bench_linear_scan(c: &mut Criterion, name: &str, region: &Region) {
    let reports = reports(region, 7);
    let config = EngineConfig::default();
    let mut n = 0usize;
    c.bench_function(&format!("linear-scan/{name}"), |b| {
        b.iter(|| {
            let report = &reports[n % 4096];
            n += 1;
            let skill = report.category.required_skill();
            region
                .crews
                .iter()
                .filter(|crew| crew.skills.contains(skill))
                .map(|crew| {
                    let km = crew.position.haversine_km(report.location);
                    (
                        config.travel_minutes(km, dispatch::domain::AreaClass::Urban),
                        &crew.id,
                    )
                })
                .min_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(b.1)))
                .map(|(eta, id)| (eta, id.clone()))
        })
    });
}

/// Net bytes allocated while `build` runs, per crew.
fn bytes_per_crew<T>(crews: usize, build: impl FnOnce() -> T) -> f64 {
    let measured = AllocRegion::new(GLOBAL);
    let built = build();
    let stats = measured.change();
    black_box(&built);
    (stats.bytes_allocated as f64 - stats.bytes_deallocated as f64) / crews as f64
}

fn memory(name: &str, region: &Region) {
    let n = region.crews.len();
    let projection = LocalProjection::new(23.0, 114.5);
    let pool = bytes_per_crew(n, || {
        let mut pool = CrewIndex::default();
        for (i, crew) in region.crews.iter().enumerate() {
            pool.insert(
                i as u32,
                Some((i % 1000) as u32),
                crew.skills,
                projection.to_km(crew.position),
            );
        }
        pool
    });
    let mut without_crews = region.clone();
    without_crews.crews.clear();
    let base = bytes_per_crew(n, || Engine::new(EngineConfig::default(), without_crews));
    let whole = bytes_per_crew(n, || Engine::new(EngineConfig::default(), region.clone()));
    println!(
        "{name}: {} stations, {n} crews; memory per crew: pool {pool:.0} B, engine {:.0} B",
        region.stations.len(),
        whole - base
    );
}

fn benches(c: &mut Criterion) {
    let huizhou = Path::new(env!("CARGO_MANIFEST_DIR")).join("../geo-data/regions/huizhou");
    let region = Region::load(&huizhou).expect("the bundled Huizhou region loads");
    memory("huizhou", &region);
    bench_linear_scan(c, "huizhou", &region);
    bench_region(c, "huizhou", region);
    for crews in [10_000, 100_000] {
        // 40 × 25 cells of 3.4 km: about Huizhou's 11,500 km².
        let region = synthetic::grid(25, 40, 3.4, crews, 11);
        let name = format!("synthetic-1000-stations-{crews}-crews");
        memory(&name, &region);
        bench_linear_scan(c, &name, &region);
        bench_region(c, &name, region);
    }
}

criterion_group! {
    name = match_benches;
    // Figures are quoted, never plotted; plotting needs system fonts a fresh machine lacks
    // (criterion's plotters backend panics without them, after the measurements).
    config = Criterion::default().without_plots();
    targets = benches
}
criterion_main!(match_benches);
