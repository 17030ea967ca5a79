//! Reading a region directory: the generated stations with their service areas, and the crews.

use crate::format::{CREWS_FILE, CrewRecord, STATIONS_FILE, StationProperties};
use geo_types::{Geometry, MultiPolygon};
use std::path::{Path, PathBuf};

/// Why a region directory could not be read.
#[derive(Debug, thiserror::Error)]
pub enum RegionError {
    #[error("cannot read {path}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is not valid GeoJSON")]
    GeoJson {
        path: PathBuf,
        #[source]
        source: Box<geojson::Error>,
    },
    #[error("{path} is not valid JSON of the expected shape")]
    Json {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("{path}: feature {index}: {reason}")]
    Feature {
        path: PathBuf,
        index: usize,
        reason: String,
    },
}

/// A supply station and the service area it answers for.
#[derive(Debug, Clone)]
pub struct StationArea {
    pub properties: StationProperties,
    pub area: MultiPolygon<f64>,
}

fn read(path: &Path) -> Result<String, RegionError> {
    std::fs::read_to_string(path).map_err(|source| RegionError::Io {
        path: path.to_owned(),
        source,
    })
}

/// Reads any GeoJSON FeatureCollection of the region directory.
pub fn read_feature_collection(path: &Path) -> Result<geojson::FeatureCollection, RegionError> {
    let text = read(path)?;
    text.parse::<geojson::FeatureCollection>()
        .map_err(|source| RegionError::GeoJson {
            path: path.to_owned(),
            source: Box::new(source),
        })
}

/// Turns a Polygon or MultiPolygon feature geometry into a MultiPolygon.
pub fn feature_area(
    path: &Path,
    index: usize,
    feature: &geojson::Feature,
) -> Result<MultiPolygon<f64>, RegionError> {
    let bad = |reason: String| RegionError::Feature {
        path: path.to_owned(),
        index,
        reason,
    };
    let geometry = feature
        .geometry
        .as_ref()
        .ok_or_else(|| bad("no geometry".into()))?;
    let geometry: Geometry<f64> = geometry
        .clone()
        .try_into()
        .map_err(|e: geojson::Error| bad(e.to_string()))?;
    match geometry {
        Geometry::Polygon(p) => Ok(MultiPolygon(vec![p])),
        Geometry::MultiPolygon(mp) => Ok(mp),
        _ => Err(bad("expected a Polygon or MultiPolygon".into())),
    }
}

/// Reads `stations.geojson` of a region directory.
pub fn load_stations(dir: &Path) -> Result<Vec<StationArea>, RegionError> {
    let path = dir.join(STATIONS_FILE);
    let collection = read_feature_collection(&path)?;
    collection
        .features
        .iter()
        .enumerate()
        .map(|(index, feature)| {
            let area = feature_area(&path, index, feature)?;
            let properties = feature
                .properties
                .clone()
                .ok_or_else(|| RegionError::Feature {
                    path: path.clone(),
                    index,
                    reason: "no properties".into(),
                })?;
            let properties: StationProperties =
                serde_json::from_value(serde_json::Value::Object(properties)).map_err(|e| {
                    RegionError::Feature {
                        path: path.clone(),
                        index,
                        reason: e.to_string(),
                    }
                })?;
            Ok(StationArea { properties, area })
        })
        .collect()
}

/// Reads `crews.json` of a region directory.
pub fn load_crews(dir: &Path) -> Result<Vec<CrewRecord>, RegionError> {
    let path = dir.join(CREWS_FILE);
    let text = read(&path)?;
    serde_json::from_str(&text).map_err(|source| RegionError::Json { path, source })
}
