//! The region directory's file format: the one definition that the generator writes and the
//! dispatch service reads, so the two can never disagree about a field.
//!
//! A region directory holds `boundary.geojson`, `districts.geojson` and `places.geojson`
//! (real geography, WGS84) and the generated `stations.geojson` and `crews.json`.

use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

pub const BOUNDARY_FILE: &str = "boundary.geojson";
pub const DISTRICTS_FILE: &str = "districts.geojson";
pub const PLACES_FILE: &str = "places.geojson";
pub const STATIONS_FILE: &str = "stations.geojson";
pub const CREWS_FILE: &str = "crews.json";

/// How a station's service area is classed; picks the arrival deadline (45 / 90 / 120 min).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AreaClass {
    Urban,
    Rural,
    Remote,
}

impl AreaClass {
    pub const ALL: [AreaClass; 3] = [AreaClass::Urban, AreaClass::Rural, AreaClass::Remote];

    /// The snake_case name, as in the files and on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            AreaClass::Urban => "urban",
            AreaClass::Rural => "rural",
            AreaClass::Remote => "remote",
        }
    }
}

/// What a repair crew is qualified for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Skill {
    /// Low voltage and household supply.
    Lv,
    /// 10 kV lines and equipment.
    Hv,
    /// Metering.
    Meter,
}

/// The properties of one Feature of `stations.geojson`; the Feature's geometry is the
/// station's service area (Polygon or MultiPolygon, WGS84).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StationProperties {
    pub id: String,
    pub name: String,
    pub area_class: AreaClass,
    /// Low-voltage customers served: the denominator of SAIFI/SAIDI and the weight for
    /// spreading simulated faults.
    pub customers: u64,
    /// The county-level district's name, as in `districts.geojson`.
    pub district: String,
    /// The station's own location (WGS84).
    pub lat: f64,
    pub lon: f64,
    /// Anything else the generator records (source place, committee counts, …).
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

/// One element of `crews.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CrewRecord {
    pub id: String,
    pub station_id: String,
    pub skills: Vec<Skill>,
    pub lat: f64,
    pub lon: f64,
}

/// Paths of a region directory's files.
#[derive(Debug, Clone)]
pub struct RegionDir {
    pub root: PathBuf,
}

impl RegionDir {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    pub fn file(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }
}
