//! Point → the supply station whose service area holds it. An R-tree over the envelopes of
//! the areas' polygons narrows the search; `geo` decides exact containment. A point just
//! outside every area (offshore, or on a boundary drawn a little short) goes to the nearest
//! area within a configured distance, since a real caller there still needs a crew.

use crate::domain::LatLon;
use geo::{BoundingRect, Closest, ClosestPoint, Intersects, MultiPolygon, Point, Polygon};
use rstar::primitives::{GeomWithData, Rectangle};
use rstar::{AABB, RTree};

/// Where a point was placed: inside an area, or near one within the fallback distance.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Located {
    Inside { station: usize },
    Near { station: usize, distance_km: f64 },
}

impl Located {
    pub fn station(self) -> usize {
        match self {
            Located::Inside { station } | Located::Near { station, .. } => station,
        }
    }
}

/// The point is in no service area and farther than the fallback distance from all of them.
#[derive(Debug, Clone, Copy, PartialEq, thiserror::Error)]
#[error(
    "the location is outside every service area (nearest {nearest_km:?} km, limit {limit_km} km)"
)]
pub struct OutsideServiceAreas {
    /// Distance to the nearest area, when one is within the search window.
    pub nearest_km: Option<f64>,
    pub limit_km: f64,
}

#[derive(Debug)]
pub struct ServiceAreaIndex {
    /// Each polygon part with the index of its station.
    parts: Vec<(Polygon<f64>, usize)>,
    tree: RTree<GeomWithData<Rectangle<[f64; 2]>, usize>>,
    fallback_km: f64,
}

impl ServiceAreaIndex {
    /// `areas[i]` is the service area of station `i`.
    pub fn new(areas: &[MultiPolygon<f64>], fallback_km: f64) -> Self {
        let parts: Vec<(Polygon<f64>, usize)> = areas
            .iter()
            .enumerate()
            .flat_map(|(station, area)| area.0.iter().map(move |p| (p.clone(), station)))
            .collect();
        let envelopes = parts
            .iter()
            .enumerate()
            .filter_map(|(part, (polygon, _))| {
                let rect = polygon.bounding_rect()?;
                let corners = Rectangle::from_corners(
                    [rect.min().x, rect.min().y],
                    [rect.max().x, rect.max().y],
                );
                Some(GeomWithData::new(corners, part))
            })
            .collect();
        Self {
            parts,
            tree: RTree::bulk_load(envelopes),
            fallback_km,
        }
    }

    pub fn fallback_km(&self) -> f64 {
        self.fallback_km
    }

    /// The service area of each station as polygon parts, each with its station's index:
    /// what a map draws.
    pub fn parts(&self) -> impl Iterator<Item = (&Polygon<f64>, usize)> {
        self.parts
            .iter()
            .map(|(polygon, station)| (polygon, *station))
    }

    /// Whether `at` lies in the box that bounds every service area widened by `km` on each
    /// side (so up to about 1.4 × `km` from the box's corners). A filter for fixes that
    /// cannot be right (a phone's GPS answering 0°N 0°E), not geography: the box's corners
    /// may hold no area at all.
    pub fn within_km_of_region(&self, at: LatLon, km: f64) -> bool {
        let region = self.tree.root().envelope();
        let (lower, upper) = (region.lower(), region.upper());
        let dlat = km / 111.0;
        // A degree of longitude is shortest at the box's edge farthest from the equator.
        let widest_lat = lower[1].abs().max(upper[1].abs()).min(89.0);
        let dlon = dlat / widest_lat.to_radians().cos();
        (lower[0] - dlon..=upper[0] + dlon).contains(&at.lon())
            && (lower[1] - dlat..=upper[1] + dlat).contains(&at.lat())
    }

    pub fn locate(&self, at: LatLon) -> Result<Located, OutsideServiceAreas> {
        let point = at.point();
        // Areas tile the region, so a point is in one area, or on a shared border of several:
        // the lowest station index wins there so the answer never depends on tree order.
        let inside = self
            .tree
            .locate_all_at_point(&[at.lon(), at.lat()])
            .map(|entry| &self.parts[entry.data])
            .filter(|(polygon, _)| polygon.intersects(&point))
            .map(|(_, station)| *station)
            .min();
        if let Some(station) = inside {
            return Ok(Located::Inside { station });
        }
        self.nearest_within_fallback(at, point)
    }

    fn nearest_within_fallback(
        &self,
        at: LatLon,
        point: Point<f64>,
    ) -> Result<Located, OutsideServiceAreas> {
        // Degrees per km shrink with latitude for longitude; search a window a little wider
        // than the limit and measure the real distance.
        let dlat = self.fallback_km / 111.0 * 1.05;
        let dlon = dlat / at.lat().to_radians().cos().max(0.01);
        let window = AABB::from_corners(
            [at.lon() - dlon, at.lat() - dlat],
            [at.lon() + dlon, at.lat() + dlat],
        );
        let nearest = self
            .tree
            .locate_in_envelope_intersecting(&window)
            .filter_map(|entry| {
                let (polygon, station) = &self.parts[entry.data];
                let closest = match polygon.closest_point(&point) {
                    Closest::Intersection(p) | Closest::SinglePoint(p) => p,
                    Closest::Indeterminate => return None,
                };
                let closest = LatLon::new(closest.y(), closest.x()).ok()?;
                Some((at.haversine_km(closest), *station))
            })
            .min_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        match nearest {
            Some((distance_km, station)) if distance_km <= self.fallback_km => Ok(Located::Near {
                station,
                distance_km,
            }),
            other => Err(OutsideServiceAreas {
                nearest_km: other.map(|n| n.0),
                limit_km: self.fallback_km,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use geo::{Contains, polygon};
    use proptest::prelude::*;

    /// Two unit-ish squares side by side sharing the border x = 114.1.
    fn two_squares() -> ServiceAreaIndex {
        let west = polygon![(x: 114.0, y: 23.0), (x: 114.1, y: 23.0), (x: 114.1, y: 23.1), (x: 114.0, y: 23.1)];
        let east = polygon![(x: 114.1, y: 23.0), (x: 114.2, y: 23.0), (x: 114.2, y: 23.1), (x: 114.1, y: 23.1)];
        ServiceAreaIndex::new(&[MultiPolygon(vec![west]), MultiPolygon(vec![east])], 5.0)
    }

    fn at(lat: f64, lon: f64) -> LatLon {
        LatLon::new(lat, lon).unwrap()
    }

    #[test]
    fn inside_each_area() {
        let index = two_squares();
        assert_eq!(
            index.locate(at(23.05, 114.05)),
            Ok(Located::Inside { station: 0 })
        );
        assert_eq!(
            index.locate(at(23.05, 114.15)),
            Ok(Located::Inside { station: 1 })
        );
    }

    #[test]
    fn a_point_on_a_shared_border_goes_to_the_lower_station() {
        assert_eq!(
            two_squares().locate(at(23.05, 114.1)),
            Ok(Located::Inside { station: 0 })
        );
    }

    #[test]
    fn near_an_area_within_the_limit_goes_to_it() {
        // About 2.2 km south of the east square.
        match two_squares().locate(at(22.98, 114.15)) {
            Ok(Located::Near {
                station: 1,
                distance_km,
            }) => {
                assert!((distance_km - 2.22).abs() < 0.05, "{distance_km}")
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_region_reaches_its_bounding_box_and_the_limit_around_it() {
        let index = two_squares();
        // The box is 114.0–114.2 E, 23.0–23.1 N; 50 km is about 0.45° of latitude.
        for (lat, lon) in [
            (23.05, 114.05),
            (23.5, 114.1),
            (22.6, 114.6),
            (23.1, 113.55),
        ] {
            assert!(
                index.within_km_of_region(at(lat, lon), 50.0),
                "{lat}, {lon}"
            );
        }
        for (lat, lon) in [(0.0, 0.0), (23.6, 114.1), (22.5, 114.1), (23.05, 114.75)] {
            assert!(
                !index.within_km_of_region(at(lat, lon), 50.0),
                "{lat}, {lon}"
            );
        }
        assert!(!index.within_km_of_region(at(23.0, 114.21), 0.0));
        assert!(
            index.within_km_of_region(at(23.0, 114.2), 0.0),
            "the edge is inside"
        );
    }

    #[test]
    fn far_from_every_area_is_a_typed_error() {
        let err = two_squares().locate(at(22.5, 114.15)).unwrap_err();
        assert_eq!(err.nearest_km, None);
        let err = two_squares().locate(at(22.954, 114.15)).unwrap_err();
        assert!(
            err.nearest_km.is_some_and(|d| d > 5.0 && d < 5.2),
            "{err:?}"
        );
    }

    proptest! {
        /// Locate agrees with brute-force containment for points anywhere around the areas.
        #[test]
        fn locate_agrees_with_brute_force(lat in 22.9f64..23.2, lon in 113.9f64..114.3) {
            let index = two_squares();
            let p = at(lat, lon);
            let brute = index.parts.iter().filter(|(poly, _)| poly.contains(&p.point())).map(|(_, s)| *s).min();
            match (index.locate(p), brute) {
                (Ok(Located::Inside { station }), Some(s)) => prop_assert_eq!(station, s),
                (Ok(Located::Inside { .. }), None) => {} // on a border: intersects, not contains
                (Ok(Located::Near { distance_km, .. }), None) => prop_assert!(distance_km <= 5.0),
                (Err(e), None) => prop_assert!(e.nearest_km.is_none_or(|d| d > 5.0)),
                (other, brute) => prop_assert!(false, "{other:?} vs {brute:?}"),
            }
        }
    }
}
