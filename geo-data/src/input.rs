//! Reading the real geography of a region directory: `boundary.geojson`, `districts.geojson`
//! and `places.geojson`, the only inputs of the generator.
//!
//! Property names follow the form of `shared/geo-ref/huizhou/` (see its SOURCES.md), but the
//! reader is lenient, because the generator must work on regions it has never seen: numbers may
//! come as strings and the other way round, and every property of a place except its point may
//! be missing or `null`.

use crate::format::{BOUNDARY_FILE, DISTRICTS_FILE, PLACES_FILE};
use crate::region::{RegionError, feature_area, read_feature_collection};
use geo_types::{Coord, MultiPolygon};
use serde_json::{Map, Value};
use std::path::Path;

/// A county-level district: the unit a service area never crosses.
#[derive(Debug, Clone)]
pub struct District {
    /// The administrative code (`adcode`); when missing, the district's 1-based position in
    /// the file, zero-padded to two digits.
    pub adcode: String,
    /// The district's name (`name`); the adcode when missing.
    pub name: String,
    /// WGS84 longitude/latitude.
    pub area: MultiPolygon<f64>,
}

/// A named populated place: a candidate seat of a supply station.
#[derive(Debug, Clone)]
pub struct Place {
    pub geonameid: Option<u64>,
    /// The romanised name (`name`).
    pub name: Option<String>,
    /// The Chinese name (`name_zh`), with its 镇/街道/乡 suffix when matched to a township.
    pub name_zh: Option<String>,
    /// GeoNames feature code: `PPLA2`, `PPLA3`, `PPLA4`, …
    pub feature_code: Option<String>,
    pub township_code: Option<String>,
    /// Urban residents' committees (居民委员会) of the place's township.
    pub residents_committees: Option<u64>,
    /// Rural villagers' committees (村民委员会) of the place's township.
    pub villagers_committees: Option<u64>,
    /// WGS84 longitude (x) and latitude (y).
    pub location: Coord<f64>,
}

/// Everything the generator reads from a region directory.
#[derive(Debug, Clone)]
pub struct RegionInput {
    /// The region's name (`name` of the first boundary feature), when given.
    pub name: Option<String>,
    /// The region's adcode (`adcode` of the first boundary feature), when given.
    pub adcode: Option<String>,
    /// The union of all boundary features' polygons, WGS84.
    pub boundary: MultiPolygon<f64>,
    /// In file order.
    pub districts: Vec<District>,
    /// In file order.
    pub places: Vec<Place>,
}

/// Reads the three input files of a region directory.
pub fn read_region_input(dir: &Path) -> Result<RegionInput, RegionError> {
    let boundary_path = dir.join(BOUNDARY_FILE);
    let boundary_fc = read_feature_collection(&boundary_path)?;
    let mut boundary = MultiPolygon(Vec::new());
    let mut name = None;
    let mut adcode = None;
    for (index, feature) in boundary_fc.features.iter().enumerate() {
        boundary
            .0
            .extend(feature_area(&boundary_path, index, feature)?.0);
        if index == 0 {
            name = prop_string(feature.properties.as_ref(), "name");
            adcode = prop_string(feature.properties.as_ref(), "adcode");
        }
    }
    if boundary.0.is_empty() {
        return Err(RegionError::Feature {
            path: boundary_path,
            index: 0,
            reason: "the boundary has no polygon".into(),
        });
    }

    let districts_path = dir.join(DISTRICTS_FILE);
    let districts_fc = read_feature_collection(&districts_path)?;
    let districts = districts_fc
        .features
        .iter()
        .enumerate()
        .map(|(index, feature)| {
            let props = feature.properties.as_ref();
            let adcode =
                prop_string(props, "adcode").unwrap_or_else(|| format!("{:02}", index + 1));
            let name = prop_string(props, "name").unwrap_or_else(|| adcode.clone());
            Ok(District {
                adcode,
                name,
                area: feature_area(&districts_path, index, feature)?,
            })
        })
        .collect::<Result<Vec<_>, RegionError>>()?;

    let places_path = dir.join(PLACES_FILE);
    let places_fc = read_feature_collection(&places_path)?;
    let places = places_fc
        .features
        .iter()
        .enumerate()
        .map(|(index, feature)| read_place(&places_path, index, feature))
        .collect::<Result<Vec<_>, RegionError>>()?;

    Ok(RegionInput {
        name,
        adcode,
        boundary,
        districts,
        places,
    })
}

fn read_place(path: &Path, index: usize, feature: &geojson::Feature) -> Result<Place, RegionError> {
    let bad = |reason: &str| RegionError::Feature {
        path: path.to_owned(),
        index,
        reason: reason.to_owned(),
    };
    let location = match feature.geometry.as_ref().map(|g| &g.value) {
        Some(geojson::GeometryValue::Point { coordinates }) => match coordinates.as_slice() {
            [lon, lat, ..] if lon.is_finite() && lat.is_finite() => Coord { x: *lon, y: *lat },
            _ => return Err(bad("a place's point needs a finite longitude and latitude")),
        },
        _ => return Err(bad("a place must be a Point")),
    };
    let props = feature.properties.as_ref();
    Ok(Place {
        geonameid: prop_u64(props, "geonameid"),
        name: prop_string(props, "name"),
        name_zh: prop_string(props, "name_zh"),
        feature_code: prop_string(props, "feature_code"),
        township_code: prop_string(props, "township_code"),
        residents_committees: prop_u64(props, "residents_committees"),
        villagers_committees: prop_u64(props, "villagers_committees"),
        location,
    })
}

/// A non-empty string property; numbers are accepted because adcodes are sometimes numeric.
fn prop_string(props: Option<&Map<String, Value>>, key: &str) -> Option<String> {
    match props?.get(key)? {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_owned()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// A non-negative integer property; integral floats and numeric strings are accepted.
fn prop_u64(props: Option<&Map<String, Value>>, key: &str) -> Option<u64> {
    match props?.get(key)? {
        Value::Number(n) => n.as_u64().or_else(|| {
            n.as_f64()
                .filter(|f| f.is_finite() && *f >= 0.0 && f.fract() == 0.0 && *f < 9.0e15)
                // Exact: the value is integral and below 2^53.
                .map(|f| f as u64)
        }),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn map(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => panic!("not an object"),
        }
    }

    #[test]
    fn lenient_properties() {
        let m = map(
            json!({"a": "441302", "b": 441302, "c": null, "d": " ", "e": 12.0, "f": "7", "g": -1}),
        );
        assert_eq!(prop_string(Some(&m), "a").as_deref(), Some("441302"));
        assert_eq!(prop_string(Some(&m), "b").as_deref(), Some("441302"));
        assert_eq!(prop_string(Some(&m), "c"), None);
        assert_eq!(prop_string(Some(&m), "d"), None);
        assert_eq!(prop_u64(Some(&m), "e"), Some(12));
        assert_eq!(prop_u64(Some(&m), "f"), Some(7));
        assert_eq!(prop_u64(Some(&m), "g"), None);
        assert_eq!(prop_u64(Some(&m), "c"), None);
        assert_eq!(prop_u64(None, "e"), None);
    }
}
