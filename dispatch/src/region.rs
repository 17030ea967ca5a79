//! Loading a region directory (see `geo_data::format`) into the domain's stations and crews
//! and the service areas, checking the references between them.

use crate::domain::{
    Crew, CrewId, CrewStatus, LatLon, LocationError, SkillSet, Station, StationId,
};
use geo::MultiPolygon;
use std::collections::HashSet;
use std::path::Path;

/// A region as the engine needs it: `stations[i]` owns `areas[i]`.
#[derive(Debug, Clone)]
pub struct Region {
    pub stations: Vec<Station>,
    pub areas: Vec<MultiPolygon<f64>>,
    pub crews: Vec<Crew>,
}

#[derive(Debug, thiserror::Error)]
pub enum RegionError {
    #[error(transparent)]
    Files(#[from] geo_data::region::RegionError),
    #[error("station {station} has an invalid location")]
    StationLocation {
        station: String,
        #[source]
        source: LocationError,
    },
    #[error("crew {crew} has an invalid location")]
    CrewLocation {
        crew: String,
        #[source]
        source: LocationError,
    },
    #[error("crew {crew} belongs to station {station}, which the region does not have")]
    UnknownStation { crew: String, station: String },
    #[error("{kind} id {id} appears twice")]
    Duplicate { kind: &'static str, id: String },
    #[error("the region has no stations")]
    Empty,
}

impl Region {
    /// Reads `stations.geojson` and `crews.json` of a region directory. Crews start on duty,
    /// available at their recorded position.
    pub fn load(dir: &Path) -> Result<Self, RegionError> {
        let station_areas = geo_data::region::load_stations(dir)?;
        let crew_records = geo_data::region::load_crews(dir)?;
        let mut stations = Vec::with_capacity(station_areas.len());
        let mut areas = Vec::with_capacity(station_areas.len());
        let mut station_ids = HashSet::new();
        for station in station_areas {
            let p = station.properties;
            if !station_ids.insert(p.id.clone()) {
                return Err(RegionError::Duplicate {
                    kind: "station",
                    id: p.id,
                });
            }
            let location =
                LatLon::new(p.lat, p.lon).map_err(|source| RegionError::StationLocation {
                    station: p.id.clone(),
                    source,
                })?;
            stations.push(Station {
                id: StationId::new(p.id),
                name: p.name,
                area_class: p.area_class,
                customers: p.customers,
                district: p.district,
                location,
            });
            areas.push(station.area);
        }
        if stations.is_empty() {
            return Err(RegionError::Empty);
        }
        let mut crew_ids = HashSet::new();
        let mut crews = Vec::with_capacity(crew_records.len());
        for record in crew_records {
            if !station_ids.contains(&record.station_id) {
                return Err(RegionError::UnknownStation {
                    crew: record.id,
                    station: record.station_id,
                });
            }
            if !crew_ids.insert(record.id.clone()) {
                return Err(RegionError::Duplicate {
                    kind: "crew",
                    id: record.id,
                });
            }
            let position = LatLon::new(record.lat, record.lon).map_err(|source| {
                RegionError::CrewLocation {
                    crew: record.id.clone(),
                    source,
                }
            })?;
            crews.push(Crew {
                id: CrewId::new(record.id),
                station: StationId::new(record.station_id),
                skills: record.skills.into_iter().collect::<SkillSet>(),
                position,
                position_at: None,
                position_fix_at: None,
                status: CrewStatus::Available,
            });
        }
        Ok(Self {
            stations,
            areas,
            crews,
        })
    }
}
