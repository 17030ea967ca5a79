//! A point on the earth in WGS84 decimal degrees, valid by construction.

use geo::{Distance, Haversine, Point};
use serde::{Deserialize, Serialize};

/// Read from stored events and files through [`LatLon::new`] too: a point out of range
/// never gets in, whatever wrote it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "UncheckedLatLon")]
pub struct LatLon {
    lat: f64,
    lon: f64,
}

#[derive(Deserialize)]
struct UncheckedLatLon {
    lat: f64,
    lon: f64,
}

impl TryFrom<UncheckedLatLon> for LatLon {
    type Error = LocationError;

    fn try_from(point: UncheckedLatLon) -> Result<Self, LocationError> {
        LatLon::new(point.lat, point.lon)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, thiserror::Error)]
pub enum LocationError {
    #[error("latitude must be a finite number between -90 and 90")]
    Latitude,
    #[error("longitude must be a finite number between -180 and 180")]
    Longitude,
}

impl LatLon {
    pub fn new(lat: f64, lon: f64) -> Result<Self, LocationError> {
        if !lat.is_finite() || !(-90.0..=90.0).contains(&lat) {
            return Err(LocationError::Latitude);
        }
        if !lon.is_finite() || !(-180.0..=180.0).contains(&lon) {
            return Err(LocationError::Longitude);
        }
        Ok(Self { lat, lon })
    }

    pub fn lat(self) -> f64 {
        self.lat
    }

    pub fn lon(self) -> f64 {
        self.lon
    }

    pub fn point(self) -> Point<f64> {
        Point::new(self.lon, self.lat)
    }

    /// Great-circle distance on a sphere of the mean earth radius.
    pub fn haversine_km(self, other: LatLon) -> f64 {
        Haversine.distance(self.point(), other.point()) / 1000.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_out_of_range_and_non_finite() {
        assert!(LatLon::new(23.1, 114.4).is_ok());
        assert_eq!(LatLon::new(f64::NAN, 114.0), Err(LocationError::Latitude));
        assert_eq!(LatLon::new(91.0, 114.0), Err(LocationError::Latitude));
        assert_eq!(LatLon::new(23.0, 180.5), Err(LocationError::Longitude));
        assert_eq!(
            LatLon::new(23.0, f64::INFINITY),
            Err(LocationError::Longitude)
        );
    }

    #[test]
    fn deserializing_checks_the_range_as_new_does() {
        let point: LatLon = serde_json::from_str(r#"{"lat": 23.1, "lon": 114.4}"#).unwrap();
        assert_eq!(point, LatLon::new(23.1, 114.4).unwrap());
        for bad in [
            r#"{"lat": 91.0, "lon": 114.4}"#,
            r#"{"lat": 23.1, "lon": -180.5}"#,
        ] {
            let refused = serde_json::from_str::<LatLon>(bad).unwrap_err();
            assert!(
                refused.to_string().contains("must be a finite number"),
                "{refused}"
            );
        }
    }

    #[test]
    fn haversine_matches_a_known_distance() {
        // One degree of latitude is about 111.2 km on the mean sphere.
        let a = LatLon::new(23.0, 114.0).unwrap();
        let b = LatLon::new(24.0, 114.0).unwrap();
        assert!((a.haversine_km(b) - 111.195).abs() < 0.01);
        assert_eq!(a.haversine_km(a), 0.0);
    }
}
