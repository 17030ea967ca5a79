//! What the control room's map draws beyond stations and crews: each station's service area
//! (`GET /v1/service-areas`) and the fault heat map over H3 cells (`GET /v1/fault-cells`),
//! both as GeoJSON so any GIS tool can read them too.

use super::AppState;
use super::V1Errors;
use super::error::ApiError;
use super::extract::{QueryOf, Who};
use super::reports::parse_window;
use super::wire::{AreaClassWire, LocationOut};
use crate::reports::heat::{DEFAULT_RESOLUTION, RESOLUTIONS, cell_ring};
use crate::service::{Action, ServiceArea};
use axum::Json;
use axum::extract::State;
use geo::{MultiPolygon, Simplify};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// Outlines are simplified to this many degrees (about 30 m): invisible on a city map, and
/// it takes the region's 16,000 vertices down to a few thousand.
const OUTLINE_TOLERANCE_DEG: f64 = 0.0003;

/// GeoJSON's fixed type names, as one-value enums so the schema says exactly that.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
pub enum FeatureCollectionType {
    FeatureCollection,
}

#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
pub enum FeatureType {
    Feature,
}

#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
pub enum MultiPolygonType {
    MultiPolygon,
}

#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
pub enum PolygonType {
    Polygon,
}

/// A GeoJSON MultiPolygon: polygons of rings of `[lon, lat]` (WGS84).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct MultiPolygonGeometry {
    #[serde(rename = "type")]
    pub kind: MultiPolygonType,
    pub coordinates: Vec<Vec<Vec<[f64; 2]>>>,
}

/// A GeoJSON Polygon: rings of `[lon, lat]` (WGS84).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PolygonGeometry {
    #[serde(rename = "type")]
    pub kind: PolygonType,
    pub coordinates: Vec<Vec<[f64; 2]>>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ServiceAreaProperties {
    /// The station's id.
    pub id: String,
    pub name: String,
    pub area_class: AreaClassWire,
    pub district: String,
    pub customers: u64,
    /// The station itself.
    pub station: LocationOut,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ServiceAreaFeature {
    #[serde(rename = "type")]
    pub kind: FeatureType,
    /// The station's id.
    pub id: String,
    pub properties: ServiceAreaProperties,
    pub geometry: MultiPolygonGeometry,
}

/// Every station's service area, one Feature each.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ServiceAreaCollection {
    #[serde(rename = "type")]
    pub kind: FeatureCollectionType,
    pub features: Vec<ServiceAreaFeature>,
}

/// Degrees to 5 decimals (about 1 m): finer only makes the document longer.
fn round5(x: f64) -> f64 {
    (x * 1e5).round() / 1e5
}

fn outline(area: &MultiPolygon<f64>) -> Vec<Vec<Vec<[f64; 2]>>> {
    area.simplify(OUTLINE_TOLERANCE_DEG)
        .0
        .iter()
        .map(|polygon| {
            std::iter::once(polygon.exterior())
                .chain(polygon.interiors())
                .map(|ring| ring.coords().map(|c| [round5(c.x), round5(c.y)]).collect())
                .collect()
        })
        .collect()
}

impl From<&ServiceArea> for ServiceAreaFeature {
    fn from(area: &ServiceArea) -> Self {
        let s = &area.station;
        Self {
            kind: FeatureType::Feature,
            id: s.id.to_string(),
            properties: ServiceAreaProperties {
                id: s.id.to_string(),
                name: s.name.clone(),
                area_class: s.area_class.into(),
                district: s.district.clone(),
                customers: s.customers,
                station: s.location.into(),
            },
            geometry: MultiPolygonGeometry {
                kind: MultiPolygonType::MultiPolygon,
                coordinates: outline(&area.area),
            },
        }
    }
}

/// Each station's service area as GeoJSON (outlines simplified to about 30 m).
#[utoipa::path(
    operation_id = "service_areas",
    get, path = "/v1/service-areas", tag = "reading",
    responses((status = 200, description = "GeoJSON FeatureCollection", body = ServiceAreaCollection), V1Errors),
    security(("bearer" = []))
)]
pub async fn service_areas(
    State(app): State<AppState>,
    who: Who,
) -> Result<Json<ServiceAreaCollection>, ApiError> {
    who.require(Action::ListStations)?;
    let areas = app.dispatcher.service_areas().await?;
    Ok(Json(ServiceAreaCollection {
        kind: FeatureCollectionType::FeatureCollection,
        features: areas.iter().map(ServiceAreaFeature::from).collect(),
    }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct FaultCellParams {
    /// Reports made from (inclusive; RFC 3339 with an offset); a day before `to` when absent.
    #[param(format = DateTime)]
    from: Option<String>,
    /// Reports made before (exclusive); now when absent.
    #[param(format = DateTime)]
    to: Option<String>,
    /// H3 resolution, 5 to 9; 7 (cells of about 5 km²) when absent.
    #[param(value_type = Option<u8>)]
    resolution: Option<String>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct FaultCellProperties {
    /// The H3 cell index (hexadecimal).
    pub cell: String,
    /// Reports in the period located in the cell, repeats included.
    pub reports: u64,
    /// Of those, tickets still open.
    pub open: u64,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct FaultCellFeature {
    #[serde(rename = "type")]
    pub kind: FeatureType,
    pub id: String,
    pub properties: FaultCellProperties,
    pub geometry: PolygonGeometry,
}

/// The cells with at least one report, hottest first.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct FaultCellCollection {
    #[serde(rename = "type")]
    pub kind: FeatureCollectionType,
    pub resolution: u8,
    pub features: Vec<FaultCellFeature>,
}

/// The fault heat map: reports of a period per H3 cell, as GeoJSON hexagons.
#[utoipa::path(
    operation_id = "fault_cells",
    get, path = "/v1/fault-cells", tag = "reading",
    params(FaultCellParams),
    responses((status = 200, description = "GeoJSON FeatureCollection", body = FaultCellCollection), V1Errors),
    security(("bearer" = []))
)]
pub async fn fault_cells(
    State(app): State<AppState>,
    who: Who,
    QueryOf(params): QueryOf<FaultCellParams>,
) -> Result<Json<FaultCellCollection>, ApiError> {
    who.require(Action::ReadReports)?;
    let window = parse_window(&params.from, &params.to, app.dispatcher.now())?;
    let bad_resolution = || {
        ApiError::InvalidQuery(format!(
            "resolution: a whole number from {} to {}",
            RESOLUTIONS.start(),
            RESOLUTIONS.end()
        ))
    };
    let number = match params.resolution.as_deref().map(str::trim) {
        None | Some("") => DEFAULT_RESOLUTION,
        Some(text) => text
            .parse::<u8>()
            .ok()
            .filter(|r| RESOLUTIONS.contains(r))
            .ok_or_else(bad_resolution)?,
    };
    let resolution = h3o::Resolution::try_from(number).map_err(|_| bad_resolution())?;
    let cells = app.dispatcher.fault_cells(window, resolution).await?;
    Ok(Json(FaultCellCollection {
        kind: FeatureCollectionType::FeatureCollection,
        resolution: number,
        features: cells
            .iter()
            .map(|c| FaultCellFeature {
                kind: FeatureType::Feature,
                id: c.cell.to_string(),
                properties: FaultCellProperties {
                    cell: c.cell.to_string(),
                    reports: c.reports,
                    open: c.open,
                },
                geometry: PolygonGeometry {
                    kind: PolygonType::Polygon,
                    coordinates: vec![cell_ring(c.cell)],
                },
            })
            .collect(),
    }))
}
