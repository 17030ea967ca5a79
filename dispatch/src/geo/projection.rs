//! A local equirectangular projection to kilometres. Over a city-sized region its distances
//! are within a fraction of a percent of great-circle ones, so the R-trees can use plain
//! Euclidean distance and the final estimate uses the exact haversine.

use crate::domain::LatLon;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LocalProjection {
    origin: (f64, f64),
    km_per_degree_lon: f64,
    km_per_degree_lat: f64,
}

impl LocalProjection {
    /// Kilometres per degree of latitude on the mean sphere.
    const KM_PER_DEGREE: f64 = 6_371.008_8 * std::f64::consts::PI / 180.0;

    /// A projection true at `reference_lat`, with `reference` at (0, 0): use the region's
    /// middle, so that coordinates stay small and keep their precision as `f32`.
    pub fn new(reference_lat: f64, reference_lon: f64) -> Self {
        Self {
            origin: (reference_lat, reference_lon),
            km_per_degree_lon: Self::KM_PER_DEGREE * reference_lat.to_radians().cos(),
            km_per_degree_lat: Self::KM_PER_DEGREE,
        }
    }

    pub fn to_km(&self, point: LatLon) -> [f64; 2] {
        [
            (point.lon() - self.origin.1) * self.km_per_degree_lon,
            (point.lat() - self.origin.0) * self.km_per_degree_lat,
        ]
    }

    /// How many degrees of longitude and latitude `km` spans here.
    pub fn degrees(&self, km: f64) -> [f64; 2] {
        [km / self.km_per_degree_lon, km / self.km_per_degree_lat]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Within 100 km of the reference latitude the projected distance is within 1 % of
        /// the great-circle distance: the margin the engine's search bounds rely on.
        #[test]
        fn projected_distance_is_close_to_great_circle(
            lat1 in 22.0f64..24.0, lon1 in 113.5f64..115.5,
            dlat in -0.5f64..0.5, dlon in -0.5f64..0.5,
        ) {
            let projection = LocalProjection::new(23.0, 114.5);
            let a = LatLon::new(lat1, lon1).unwrap();
            let b = LatLon::new(lat1 + dlat, lon1 + dlon).unwrap();
            let [ax, ay] = projection.to_km(a);
            let [bx, by] = projection.to_km(b);
            let projected = ((ax - bx).powi(2) + (ay - by).powi(2)).sqrt();
            let great_circle = a.haversine_km(b);
            prop_assert!((projected - great_circle).abs() <= 0.01 * great_circle + 1e-9,
                "{projected} vs {great_circle}");
        }
    }
}
