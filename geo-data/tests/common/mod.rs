//! Helpers shared by the integration tests: running the generator into a temporary region
//! directory, reading back what it wrote, and checking the invariants every region must keep.

// Each test binary uses a different subset of the helpers. Helpers outside #[test] functions
// are not covered by clippy.toml's allow-unwrap-in-tests, yet a panic here is a failed test too.
#![allow(dead_code, clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::path::Path;

use geo::{
    Area, BooleanOps, BoundingRect, Distance, Euclidean, GeodesicArea, Intersects, Validation,
};
use geo_data::format::{BOUNDARY_FILE, CrewRecord, DISTRICTS_FILE, PLACES_FILE, Skill};
use geo_data::generate::{GenerateOptions, Generated, generate_dir};
use geo_data::input::read_region_input;
use geo_data::region::{StationArea, load_crews, load_stations};
use geo_types::{Coord, MultiPolygon, Point, Rect};

/// Points this close (degrees) to an edge may fall in zero or two areas.
pub const EDGE_TOLERANCE: f64 = 1e-9;

/// A generated region as read back from its files.
pub struct Region {
    pub boundary: MultiPolygon<f64>,
    pub boundary_rect: Rect<f64>,
    pub stations: Vec<StationArea>,
    pub rects: Vec<Rect<f64>>,
    pub crews: Vec<CrewRecord>,
    pub stations_bytes: Vec<u8>,
    pub crews_bytes: Vec<u8>,
    pub generated: Generated,
}

/// Copies the three input files of `source` into a fresh directory, generates there, and reads
/// the result back through the same reader the dispatch service uses.
pub fn generate_copy(source: &Path, options: &GenerateOptions) -> Region {
    let dir = tempfile::tempdir().unwrap();
    for file in [BOUNDARY_FILE, DISTRICTS_FILE, PLACES_FILE] {
        std::fs::copy(source.join(file), dir.path().join(file)).unwrap();
    }
    let generated = generate_dir(dir.path(), options).unwrap();
    read_back(dir.path(), generated)
}

pub fn read_back(dir: &Path, generated: Generated) -> Region {
    let boundary = read_region_input(dir).unwrap().boundary;
    let stations = load_stations(dir).unwrap();
    let rects = stations
        .iter()
        .map(|s| s.area.bounding_rect().unwrap())
        .collect();
    Region {
        boundary_rect: boundary.bounding_rect().unwrap(),
        boundary,
        rects,
        crews: load_crews(dir).unwrap(),
        stations,
        stations_bytes: std::fs::read(dir.join(geo_data::format::STATIONS_FILE)).unwrap(),
        crews_bytes: std::fs::read(dir.join(geo_data::format::CREWS_FILE)).unwrap(),
        generated,
    }
}

fn near_edge(area: &MultiPolygon<f64>, p: &Point<f64>) -> bool {
    area.0.iter().any(|poly| {
        std::iter::once(poly.exterior())
            .chain(poly.interiors())
            .any(|ring| Euclidean.distance(p, ring) < EDGE_TOLERANCE)
    })
}

impl Region {
    /// The point at fractions `(u, v)` of the boundary's bounding box.
    pub fn point_at(&self, u: f64, v: f64) -> Point<f64> {
        let r = self.boundary_rect;
        Point::new(r.min().x + u * r.width(), r.min().y + v * r.height())
    }

    /// `Ok(true)` when the point is inside the boundary and in exactly one area, `Ok(false)`
    /// when it is outside the boundary or too close to an edge to tell, `Err` otherwise.
    pub fn check_point(&self, p: Point<f64>) -> Result<bool, String> {
        if !self.boundary.intersects(&p) {
            return Ok(false);
        }
        let hits: Vec<&str> = self
            .stations
            .iter()
            .zip(&self.rects)
            .filter(|(_, r)| r.intersects(&p))
            .filter(|(s, _)| s.area.intersects(&p))
            .map(|(s, _)| s.properties.id.as_str())
            .collect();
        if hits.len() == 1 {
            return Ok(true);
        }
        let near = near_edge(&self.boundary, &p)
            || self
                .stations
                .iter()
                .zip(&self.rects)
                .filter(|(_, r)| {
                    // A point outside a rect by more than the tolerance is far from its edges.
                    let grown = Rect::new(
                        Coord {
                            x: r.min().x - 1e-6,
                            y: r.min().y - 1e-6,
                        },
                        Coord {
                            x: r.max().x + 1e-6,
                            y: r.max().y + 1e-6,
                        },
                    );
                    grown.intersects(&p)
                })
                .any(|(s, _)| near_edge(&s.area, &p));
        if near {
            Ok(false)
        } else {
            Err(format!("{p:?} lies in {} areas: {hits:?}", hits.len()))
        }
    }

    /// Total geodesic area of the stations' areas over the boundary's.
    pub fn area_ratio(&self) -> f64 {
        let areas: f64 = self
            .stations
            .iter()
            .map(|s| s.area.geodesic_area_unsigned())
            .sum();
        areas / self.boundary.geodesic_area_unsigned()
    }

    /// Total area (degrees²) where two stations' areas overlap. Shared borders are
    /// identical on both sides, so anything above i_overlay's own noise is a real overlap.
    pub fn overlap_area(&self) -> f64 {
        let mut total = 0.0;
        for (i, (a, ra)) in self.stations.iter().zip(&self.rects).enumerate() {
            for (b, rb) in self.stations.iter().zip(&self.rects).skip(i + 1) {
                if ra.intersects(rb) {
                    total += a.area.intersection(&b.area).unsigned_area();
                }
            }
        }
        total
    }

    /// Every edge of every area is an edge of a neighbouring area too, run the other way, or
    /// lies on the region's outline (within 1e-6°: where a station border meets the outline,
    /// the rounded meeting point may leave the outline's straight edge by up to 7 cm). Together
    /// with the overlap and point checks this makes the areas an exact partition.
    pub fn check_borders_match(&self) {
        type Edge = ((u64, u64), (u64, u64));
        let bits = |c: &Coord<f64>| (c.x.to_bits(), c.y.to_bits());
        let edges_of = |area: &MultiPolygon<f64>| -> Vec<(Edge, Point<f64>)> {
            area.0
                .iter()
                .flat_map(|p| std::iter::once(p.exterior()).chain(p.interiors()))
                .flat_map(|ring| ring.lines())
                .map(|l| {
                    let mid = Point::new((l.start.x + l.end.x) / 2.0, (l.start.y + l.end.y) / 2.0);
                    ((bits(&l.start), bits(&l.end)), mid)
                })
                .collect()
        };
        let mut all = std::collections::HashSet::new();
        for s in &self.stations {
            for (edge, _) in edges_of(&s.area) {
                assert!(
                    all.insert(edge),
                    "station {}: an edge repeats",
                    s.properties.id
                );
            }
        }
        let outline: std::collections::HashSet<Edge> = edges_of(&self.boundary)
            .into_iter()
            .flat_map(|((a, b), _)| [(a, b), (b, a)])
            .collect();
        let rings: Vec<&geo_types::LineString<f64>> = self
            .boundary
            .0
            .iter()
            .flat_map(|p| std::iter::once(p.exterior()).chain(p.interiors()))
            .collect();
        for s in &self.stations {
            for ((a, b), mid) in edges_of(&s.area) {
                if all.contains(&(b, a)) || outline.contains(&(a, b)) {
                    continue;
                }
                let off = rings
                    .iter()
                    .map(|r| Euclidean.distance(&mid, *r))
                    .fold(f64::INFINITY, f64::min);
                assert!(
                    off < 1e-6,
                    "station {}: the edge at {mid:?} is shared with no area and {off:e}° off the outline",
                    s.properties.id
                );
            }
        }
    }

    /// Every area is a valid (Multi)Polygon: closed rings, no self-intersection, holes inside.
    pub fn check_valid(&self) {
        for s in &self.stations {
            let errors = s.area.validation_errors();
            assert!(
                errors.is_empty(),
                "station {}: {:?}",
                s.properties.id,
                errors.iter().take(3).collect::<Vec<_>>()
            );
        }
    }

    pub fn check_stations_in_own_area(&self) {
        for s in &self.stations {
            let p = Point::new(s.properties.lon, s.properties.lat);
            assert!(
                s.area.intersects(&p),
                "station {} at {p:?} is outside its own area",
                s.properties.id
            );
        }
    }

    pub fn check_crews(&self) {
        let mut per_station: BTreeMap<&str, Vec<&CrewRecord>> = self
            .stations
            .iter()
            .map(|s| (s.properties.id.as_str(), Vec::new()))
            .collect();
        for crew in &self.crews {
            per_station
                .get_mut(crew.station_id.as_str())
                .unwrap_or_else(|| panic!("crew {} has an unknown station", crew.id))
                .push(crew);
        }
        for (station, crews) in &per_station {
            assert!(
                (2..=8).contains(&crews.len()),
                "station {station} has {} crews",
                crews.len()
            );
            for skill in [Skill::Hv, Skill::Lv] {
                assert!(
                    crews.iter().any(|c| c.skills.contains(&skill)),
                    "station {station} has no {skill:?} crew"
                );
            }
        }
        let mut ids: Vec<&str> = self.crews.iter().map(|c| c.id.as_str()).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), self.crews.len(), "crew ids repeat");
    }

    pub fn customers(&self) -> u64 {
        self.stations.iter().map(|s| s.properties.customers).sum()
    }
}
