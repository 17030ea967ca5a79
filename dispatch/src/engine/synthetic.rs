//! Synthetic regions for tests and benchmarks: a grid of square service areas with crews
//! scattered inside them. Real regions come from `geo-data`; these exist to scale the
//! engine to sizes no real city has (1,000 stations, 100,000 crews) and to keep tests small.

use crate::domain::{
    AreaClass, Crew, CrewId, CrewStatus, LatLon, Skill, SkillSet, Station, StationId,
};
use crate::geo::LocalProjection;
use crate::region::Region;
use geo::{MultiPolygon, polygon};
use rand::rngs::SmallRng;
use rand::{RngExt, SeedableRng};

/// South-west corner of every synthetic grid: near Huizhou, so the projection and speeds
/// behave as they would there.
const ORIGIN: (f64, f64) = (22.5, 113.8);

/// A grid of `rows × cols` square service areas of `cell_km`, with `crews` crews spread
/// evenly over the stations at random points of their areas. Stations in the middle third
/// are urban, the outer ring remote, the rest rural. Every crew has `lv`; about half `hv`,
/// a quarter `meter`. Same arguments, same region.
pub fn grid(rows: usize, cols: usize, cell_km: f64, crews: usize, seed: u64) -> Region {
    let mut rng = SmallRng::seed_from_u64(seed);
    let [dlon, dlat] = LocalProjection::new(ORIGIN.0, ORIGIN.1).degrees(cell_km);
    let mut stations = Vec::with_capacity(rows * cols);
    let mut areas = Vec::with_capacity(rows * cols);
    let ring = |i: usize, n: usize| i.min(n - 1 - i) as f64 / (n as f64 / 2.0).max(1.0);
    for r in 0..rows {
        for c in 0..cols {
            let (south, west) = (ORIGIN.0 + r as f64 * dlat, ORIGIN.1 + c as f64 * dlon);
            let (north, east) = (south + dlat, west + dlon);
            let centrality = ring(r, rows).min(ring(c, cols));
            let area_class = if centrality >= 0.66 {
                AreaClass::Urban
            } else if r == 0 || c == 0 || r == rows - 1 || c == cols - 1 {
                AreaClass::Remote
            } else {
                AreaClass::Rural
            };
            let location = LatLon::new((south + north) / 2.0, (west + east) / 2.0)
                .unwrap_or_else(|_| origin());
            stations.push(Station {
                id: StationId::new(format!("S{r:03}-{c:03}")),
                name: format!("Station {r}-{c}"),
                area_class,
                customers: match area_class {
                    AreaClass::Urban => 40_000,
                    AreaClass::Rural => 15_000,
                    AreaClass::Remote => 5_000,
                },
                district: format!("D{}", r * 3 / rows.max(1)),
                location,
            });
            areas.push(MultiPolygon(vec![polygon![
                (x: west, y: south), (x: east, y: south), (x: east, y: north), (x: west, y: north),
            ]]));
        }
    }
    let crews = (0..crews)
        .map(|i| {
            let station = i % stations.len().max(1);
            let centre = stations[station].location;
            let lat = centre.lat() + (rng.random::<f64>() - 0.5) * dlat * 0.98;
            let lon = centre.lon() + (rng.random::<f64>() - 0.5) * dlon * 0.98;
            let mut skills: SkillSet = [Skill::Lv].into_iter().collect();
            if rng.random_bool(0.5) {
                skills.insert(Skill::Hv);
            }
            if rng.random_bool(0.25) {
                skills.insert(Skill::Meter);
            }
            Crew {
                id: CrewId::new(format!("C{i:06}")),
                station: stations[station].id.clone(),
                skills,
                position: LatLon::new(lat, lon).unwrap_or(centre),
                position_at: None,
                position_fix_at: None,
                status: CrewStatus::Available,
            }
        })
        .collect();
    Region {
        stations,
        areas,
        crews,
    }
}

fn origin() -> LatLon {
    LatLon::new(ORIGIN.0, ORIGIN.1).unwrap_or_else(|_| unreachable!("the origin is a valid point"))
}

/// A random point inside the grid's extent.
pub fn random_point(rng: &mut impl rand::Rng, rows: usize, cols: usize, cell_km: f64) -> LatLon {
    let [dlon, dlat] = LocalProjection::new(ORIGIN.0, ORIGIN.1).degrees(cell_km);
    let lat = ORIGIN.0 + rng.random::<f64>() * dlat * rows as f64;
    let lon = ORIGIN.1 + rng.random::<f64>() * dlon * cols as f64;
    LatLon::new(lat, lon).unwrap_or_else(|_| origin())
}
