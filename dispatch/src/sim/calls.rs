//! The calls a scenario makes: when, where and about what. They are drawn up front from a
//! random stream of their own, so that every policy faces the same faults at the same
//! moments (common random numbers: differences between policies are the policies', not the
//! dice's). Which open fault a repeat call is about depends on the run, so a repeat carries
//! its draw and is resolved when it comes.

use super::rng::{purpose, stream};
use super::scenario::{Calls, Scenario, Surge};
use crate::domain::{FaultCategory, LatLon, Station};
use crate::geo::LocalProjection;
use geo::{BoundingRect, Contains, MultiPolygon, Point};
use rand::RngExt;
use rand_distr::{Distribution, Poisson, StandardNormal};
use std::collections::BTreeMap;

/// A new fault in the network, as its first caller reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct Fault {
    /// Index of the station whose area holds the fault.
    pub station: usize,
    pub location: LatLon,
    pub category: FaultCategory,
    pub emergency: bool,
    pub important: bool,
    /// Repair times of this fault are multiplied by this (a storm's debris).
    pub repair_factor: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub enum CallKind {
    Fresh(Fault),
    /// Another caller of an open fault: `pick` in [0, 1) chooses which of those open at the
    /// time, the caller is `offset_m` (east, north) from it. With none open, it is `fallback`.
    Repeat {
        pick: f64,
        offset_m: [f64; 2],
        fallback: Fault,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    /// Milliseconds after the scenario's start.
    pub at_ms: i64,
    pub kind: CallKind,
}

/// How far a repeat caller is from the fault: within the engine's default merge radius.
const REPEAT_RADIUS_M: f64 = 150.0;

/// Where the calls of one source (the base rate or a surge) come from.
struct Source<'a> {
    mix: Vec<(FaultCategory, f64)>,
    repeat_share: f64,
    emergency_share: f64,
    important_share: f64,
    repair_factor: f64,
    surge: Option<&'a Surge>,
}

impl<'a> Source<'a> {
    fn base(calls: &Calls) -> Self {
        Self {
            mix: calls.mix.iter().map(|(c, w)| (*c, *w)).collect(),
            repeat_share: calls.repeat_share,
            emergency_share: calls.emergency_share,
            important_share: calls.important_share,
            repair_factor: 1.0,
            surge: None,
        }
    }

    fn surge(surge: &'a Surge) -> Self {
        Self {
            mix: surge.mix.iter().map(|(c, w)| (*c, *w)).collect(),
            repeat_share: surge.repeat_share,
            emergency_share: surge.emergency_share,
            important_share: surge.important_share,
            repair_factor: surge.repair_factor,
            surge: Some(surge),
        }
    }
}

/// Reports a minute from the base rate at `hour` hours after the start (local midnight).
pub fn base_per_minute(calls: &Calls, hour: f64) -> f64 {
    let weight = match &calls.hourly_profile {
        Some(profile) => {
            let total: f64 = profile.iter().sum();
            let slot = (hour.rem_euclid(24.0).floor() as usize).min(23);
            profile[slot] * 24.0 / total
        }
        None => 1.0,
    };
    calls.base_per_day / 1440.0 * weight
}

/// Reports a minute from a surge at `hour`: a ramp from its start to its peak, then an
/// exponential decay, nothing after its end.
pub fn surge_per_minute(surge: &Surge, hour: f64) -> f64 {
    if hour < surge.start_hour || surge.end_hour.is_some_and(|end| hour > end) {
        return 0.0;
    }
    let shape = if hour < surge.peak_hour {
        (hour - surge.start_hour) / (surge.peak_hour - surge.start_hour)
    } else {
        (-(hour - surge.peak_hour) / surge.decay_hours).exp()
    };
    surge.peak_per_hour / 60.0 * shape
}

/// The footprint's centre at `hour`: along the track, held at its ends. `None` only for a
/// track that validation would have refused (empty, or off the earth).
pub fn eye(surge: &Surge, hour: f64) -> Option<LatLon> {
    let track = &surge.track;
    let point = |p: &[f64; 3]| LatLon::new(p[0], p[1]).ok();
    match track.iter().position(|p| p[2] >= hour) {
        None => track.last().and_then(point),
        Some(0) => track.first().and_then(point),
        Some(i) => {
            let (a, b) = (track[i - 1], track[i]);
            let f = if b[2] > a[2] {
                (hour - a[2]) / (b[2] - a[2])
            } else {
                1.0
            };
            LatLon::new(a[0] + (b[0] - a[0]) * f, a[1] + (b[1] - a[1]) * f).ok()
        }
    }
}

/// The stations and their areas, and what picking a place in them needs.
#[derive(Debug)]
pub struct Places<'a> {
    stations: &'a [Station],
    areas: &'a [MultiPolygon<f64>],
    /// Standard deviation of a fault's distance from its station, degrees (lon, lat).
    spread: Vec<[f64; 2]>,
    base_weights: Vec<f64>,
}

impl<'a> Places<'a> {
    pub fn new(stations: &'a [Station], areas: &'a [MultiPolygon<f64>]) -> Self {
        let spread = stations
            .iter()
            .zip(areas)
            .map(|(station, area)| {
                let projection =
                    LocalProjection::new(station.location.lat(), station.location.lon());
                let (w, h) = area.bounding_rect().map_or((1.0, 1.0), |r| {
                    let [x0, y0] = projection.to_km(lat_lon(r.min().y, r.min().x, station));
                    let [x1, y1] = projection.to_km(lat_lon(r.max().y, r.max().x, station));
                    ((x1 - x0).abs(), (y1 - y0).abs())
                });
                // Customers crowd towards the station's town: a quarter of the area's size.
                projection.degrees(0.25 * (w * h).sqrt().max(0.5))
            })
            .collect();
        let base_weights = stations.iter().map(|s| s.customers as f64).collect();
        Self {
            stations,
            areas,
            spread,
            base_weights,
        }
    }

    /// Station weights for a source at `hour`: customers, times the surge's footprint.
    fn weights(&self, source: &Source, hour: f64) -> Vec<f64> {
        match source.surge {
            None => self.base_weights.clone(),
            Some(surge) => {
                let Some(centre) = eye(surge, hour) else {
                    return self.base_weights.clone();
                };
                self.stations
                    .iter()
                    .map(|s| {
                        let d = s.location.haversine_km(centre) / surge.radius_km;
                        let footprint = surge.floor + (1.0 - surge.floor) * (-0.5 * d * d).exp();
                        s.customers as f64 * footprint
                    })
                    .collect()
            }
        }
    }

    /// A point of the station's area, near its town; the station itself after 20 misses.
    fn point_in(&self, station: usize, rng: &mut impl rand::Rng) -> LatLon {
        let s = &self.stations[station];
        let [dlon, dlat] = self.spread[station];
        for _ in 0..20 {
            let (x, y): (f64, f64) = (
                StandardNormal.sample(&mut *rng),
                StandardNormal.sample(&mut *rng),
            );
            let (lat, lon) = (s.location.lat() + y * dlat, s.location.lon() + x * dlon);
            if self.areas[station].contains(&Point::new(lon, lat))
                && let Ok(at) = LatLon::new(lat, lon)
            {
                return at;
            }
        }
        s.location
    }
}

fn lat_lon(lat: f64, lon: f64, fallback: &Station) -> LatLon {
    LatLon::new(lat, lon).unwrap_or(fallback.location)
}

/// Index drawn from `weights` by a uniform `u` in [0, 1).
fn pick(weights: &[f64], u: f64) -> usize {
    let total: f64 = weights.iter().sum();
    let mut target = u * total;
    for (i, w) in weights.iter().enumerate() {
        if target < *w {
            return i;
        }
        target -= w;
    }
    weights.len().saturating_sub(1)
}

/// Every call of the scenario in time order, for `seed`.
pub fn generate(scenario: &Scenario, places: &Places, seed: u64) -> Vec<Call> {
    let mut rng = stream(seed, purpose::CALLS, 0);
    let base = Source::base(&scenario.calls);
    let surges: Vec<Source> = scenario.surges.iter().map(Source::surge).collect();
    let minutes = (scenario.hours * 60.0).ceil() as i64;
    let mut calls = Vec::new();
    // Station weights of a surge change with its footprint: kept per quarter hour.
    let mut weights: BTreeMap<(usize, i64), Vec<f64>> = BTreeMap::new();
    for minute in 0..minutes {
        let hour = (minute as f64 + 0.5) / 60.0;
        let rates: Vec<f64> = std::iter::once(base_per_minute(&scenario.calls, hour))
            .chain(scenario.surges.iter().map(|s| surge_per_minute(s, hour)))
            .collect();
        let total: f64 = rates.iter().sum();
        if total <= 0.0 {
            continue;
        }
        let count = Poisson::new(total).map_or(0.0, |p| p.sample(&mut rng)) as u64;
        let mut offsets: Vec<i64> = (0..count)
            .map(|_| (rng.random::<f64>() * 60_000.0) as i64)
            .collect();
        offsets.sort_unstable();
        for offset in offsets {
            let which = pick(&rates, rng.random::<f64>());
            let source = if which == 0 {
                &base
            } else {
                &surges[which - 1]
            };
            let slot = (minute / 15) * 15;
            let station_weights = weights
                .entry((which, slot))
                .or_insert_with(|| places.weights(source, (slot as f64 + 7.5) / 60.0));
            let fault = fresh_fault(source, places, station_weights, &mut rng);
            let kind = if rng.random_bool(source.repeat_share) {
                let angle = rng.random::<f64>() * std::f64::consts::TAU;
                let r = REPEAT_RADIUS_M * rng.random::<f64>().sqrt();
                CallKind::Repeat {
                    pick: rng.random::<f64>(),
                    offset_m: [r * angle.cos(), r * angle.sin()],
                    fallback: fault,
                }
            } else {
                CallKind::Fresh(fault)
            };
            calls.push(Call {
                at_ms: minute * 60_000 + offset,
                kind,
            });
        }
        // Quarter hours gone by are not needed again.
        weights.retain(|(_, slot), _| *slot >= (minute / 15) * 15);
    }
    calls
}

fn fresh_fault(
    source: &Source,
    places: &Places,
    station_weights: &[f64],
    rng: &mut impl rand::Rng,
) -> Fault {
    let station = pick(station_weights, rng.random::<f64>());
    let location = places.point_in(station, rng);
    let mix: Vec<f64> = source.mix.iter().map(|(_, w)| *w).collect();
    let category = source.mix[pick(&mix, rng.random::<f64>())].0;
    Fault {
        station,
        location,
        category,
        emergency: rng.random_bool(source.emergency_share),
        important: rng.random_bool(source.important_share),
        repair_factor: source.repair_factor,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::synthetic;

    fn squall() -> Surge {
        Surge {
            name: "squall".into(),
            start_hour: 2.0,
            peak_hour: 4.0,
            peak_per_hour: 600.0,
            decay_hours: 2.0,
            end_hour: Some(10.0),
            repeat_share: 0.5,
            track: vec![[22.5, 113.8, 2.0], [22.6, 113.9, 6.0]],
            radius_km: 5.0,
            floor: 0.0,
            mix: [(FaultCategory::LineDown, 1.0)].into_iter().collect(),
            emergency_share: 0.0,
            important_share: 0.0,
            repair_factor: 1.5,
        }
    }

    #[test]
    fn a_surge_ramps_to_its_peak_and_decays() {
        let s = squall();
        assert_eq!(surge_per_minute(&s, 1.0), 0.0);
        assert_eq!(surge_per_minute(&s, 3.0), 5.0);
        assert_eq!(surge_per_minute(&s, 4.0), 10.0);
        assert!((surge_per_minute(&s, 6.0) - 10.0 / std::f64::consts::E).abs() < 1e-12);
        assert_eq!(surge_per_minute(&s, 10.5), 0.0);
        // Halfway along the track in time, halfway in space.
        let mid = eye(&s, 4.0).unwrap();
        assert!((mid.lat() - 22.55).abs() < 1e-12 && (mid.lon() - 113.85).abs() < 1e-12);
        assert_eq!(eye(&s, 0.0).unwrap().lat(), 22.5);
        assert_eq!(eye(&s, 9.0).unwrap().lat(), 22.6);
    }

    #[test]
    fn calls_come_at_the_scenarios_rate_inside_the_areas_and_the_same_for_a_seed() {
        let region = synthetic::grid(4, 4, 5.0, 8, 1);
        let places = Places::new(&region.stations, &region.areas);
        let scenario = Scenario::from_toml(
            r#"
            name = "t"
            hours = 24
            [calls]
            base_per_day = 2000
            mix = { no_power = 1, meter = 1 }
            "#,
        )
        .unwrap();
        let calls = generate(&scenario, &places, 7);
        // Poisson with mean 2000: 5 standard deviations is about ±224.
        assert!((1776..=2224).contains(&calls.len()), "{}", calls.len());
        assert!(calls.windows(2).all(|w| w[0].at_ms <= w[1].at_ms));
        for call in &calls {
            let CallKind::Fresh(fault) = &call.kind else {
                panic!("no repeats were asked for");
            };
            let at = fault.location;
            assert!(region.areas[fault.station].contains(&Point::new(at.lon(), at.lat())));
        }
        assert_eq!(generate(&scenario, &places, 7), calls);
        assert_ne!(generate(&scenario, &places, 8), calls);
    }

    #[test]
    fn a_surges_calls_crowd_under_its_footprint() {
        let region = synthetic::grid(6, 6, 5.0, 8, 1);
        let places = Places::new(&region.stations, &region.areas);
        let mut scenario = Scenario::from_toml(
            r#"
            name = "t"
            hours = 10
            [calls]
            base_per_day = 0
            mix = { no_power = 1 }
            "#,
        )
        .unwrap();
        scenario.surges.push(squall());
        let calls = generate(&scenario, &places, 3);
        let centre = eye(&squall(), 4.0).unwrap();
        let near = |f: &Fault| region.stations[f.station].location.haversine_km(centre) < 10.0;
        let faults: Vec<&Fault> = calls
            .iter()
            .map(|c| match &c.kind {
                CallKind::Fresh(f) | CallKind::Repeat { fallback: f, .. } => f,
            })
            .collect();
        let share_near = faults.iter().filter(|f| near(f)).count() as f64 / faults.len() as f64;
        // Stations within 10 km of the eye are a small part of the 30 × 30 km grid.
        assert!(share_near > 0.5, "{share_near}");
        assert!(faults.iter().all(|f| f.category == FaultCategory::LineDown));
        assert!(calls.iter().all(|c| c.at_ms >= 2 * 3_600_000));
    }
}
