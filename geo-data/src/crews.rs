//! Repair crews (抢修班组): how many each station has, what they can do, and where they start.
//!
//! **Count.** One crew per [`CUSTOMERS_PER_CREW`] customers served, rounded up, and never
//! fewer than [`MIN_CREWS`] (one can be out while the other answers) nor more than
//! [`MAX_CREWS`] per station.
//!
//! **Skills.** Every crew does low-voltage work (`lv`); the odd-numbered crews (1st, 3rd, …)
//! also do 10 kV work (`hv`) and the even-numbered ones metering (`meter`). So every station
//! has at least one `hv` crew, one `lv` crew and one `meter` crew.
//!
//! **Ids and start positions.** `{station id}-c{n}`, n from 1. Each crew starts at its
//! station, moved by a seeded jitter of at most [`JITTER_KM`] (uniform over the disc), so that
//! crews of one station do not sit on one pixel. A jittered point outside the station's own
//! service area (a station on the coast) is drawn again, up to 16 times, then the crew starts
//! exactly at the station. The generator is a PCG-64 (`rand_pcg::Pcg64`) seeded with
//! `seed_from_u64(seed)`: a fixed algorithm, so the same seed gives the same crews with any
//! version of the crate.

use geo::Intersects;
use geo_types::{Coord, MultiPolygon, Point};
use rand_pcg::Pcg64;
use rand_pcg::rand_core::Rng;

use crate::format::{CrewRecord, Skill};
use crate::projection::{LocalProjection, round6};

pub const CUSTOMERS_PER_CREW: u64 = 10_000;
pub const MIN_CREWS: u64 = 2;
pub const MAX_CREWS: u64 = 8;

/// Largest distance of a crew's start from its station, km.
pub const JITTER_KM: f64 = 0.15;

const JITTER_TRIES: usize = 16;

/// Crews of a station serving `customers`.
pub fn crew_count(customers: u64) -> u64 {
    customers
        .div_ceil(CUSTOMERS_PER_CREW)
        .clamp(MIN_CREWS, MAX_CREWS)
}

/// Skills of the `n`-th crew of a station (1-based).
pub fn crew_skills(n: u64) -> Vec<Skill> {
    if n % 2 == 1 {
        vec![Skill::Lv, Skill::Hv]
    } else {
        vec![Skill::Lv, Skill::Meter]
    }
}

/// A uniform draw in [0, 1) from the top 53 bits, written out here because rand's float
/// sampling is not promised to stay the same across versions.
fn unit(rng: &mut Pcg64) -> f64 {
    (rng.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}

/// The crews of one station. `location` is the station (WGS84), `area` its written service
/// area (WGS84).
pub fn station_crews(
    station_id: &str,
    customers: u64,
    location: Coord<f64>,
    area: &MultiPolygon<f64>,
    projection: &LocalProjection,
    rng: &mut Pcg64,
) -> Vec<CrewRecord> {
    let centre = projection.forward(location);
    (1..=crew_count(customers))
        .map(|n| {
            let mut start = location;
            for _ in 0..JITTER_TRIES {
                let r = JITTER_KM * unit(rng).sqrt();
                let angle = std::f64::consts::TAU * unit(rng);
                let moved = projection.inverse(Coord {
                    x: centre.x + r * angle.cos(),
                    y: centre.y + r * angle.sin(),
                });
                let moved = Coord {
                    x: round6(moved.x),
                    y: round6(moved.y),
                };
                if area.intersects(&Point(moved)) {
                    start = moved;
                    break;
                }
            }
            CrewRecord {
                id: format!("{station_id}-c{n}"),
                station_id: station_id.to_owned(),
                skills: crew_skills(n),
                lat: start.y,
                lon: start.x,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_pcg::rand_core::SeedableRng;

    #[test]
    fn counts() {
        assert_eq!(crew_count(0), 2);
        assert_eq!(crew_count(20_000), 2);
        assert_eq!(crew_count(20_001), 3);
        assert_eq!(crew_count(75_000), 8);
        assert_eq!(crew_count(10_000_000), 8);
    }

    #[test]
    fn skills_cover_hv_lv_meter() {
        let two: Vec<Skill> = (1..=2).flat_map(crew_skills).collect();
        for s in [Skill::Lv, Skill::Hv, Skill::Meter] {
            assert!(two.contains(&s));
        }
    }

    #[test]
    fn pcg_is_portable() {
        // Pinned output: a change here means the generated crews.json changes for a seed.
        let mut rng = Pcg64::seed_from_u64(1);
        assert_eq!(rng.next_u64(), 15_492_934_433_077_865_799);
        let u = unit(&mut rng);
        assert!((0.0..1.0).contains(&u));
    }

    #[test]
    fn jitter_stays_close_and_inside() {
        let p = LocalProjection::new(114.0, 23.0);
        let location = Coord { x: 114.0, y: 23.0 };
        let area = MultiPolygon(vec![
            geo_types::Rect::new(Coord { x: 113.9, y: 22.9 }, Coord { x: 114.1, y: 23.0 })
                .to_polygon(),
        ]);
        let mut rng = Pcg64::seed_from_u64(7);
        let crews = station_crews("x-01", 80_000, location, &area, &p, &mut rng);
        assert_eq!(crews.len(), 8);
        for crew in &crews {
            let d = p.forward(Coord {
                x: crew.lon,
                y: crew.lat,
            });
            assert!(d.x.hypot(d.y) <= JITTER_KM + 1e-3);
            assert!(area.intersects(&Point::new(crew.lon, crew.lat)));
        }
    }
}
