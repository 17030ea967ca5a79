//! Writing `stations.geojson` and `crews.json` so that the same stations always give the same
//! bytes: fields in a fixed order (structs, and the `extra` map filled in sorted key order,
//! which also holds if serde_json's `preserve_order` gets switched on by another crate),
//! coordinates already rounded to 6 decimals (serde_json then prints the shortest exact
//! decimal), one feature or crew per line so that a diff of two generations stays readable.

use geo_types::{LineString, MultiPolygon};
use serde::Serialize;

use crate::format::{CrewRecord, StationProperties};

/// A GeoJSON Polygon or MultiPolygon, coordinates as `[lon, lat]`.
#[derive(Debug, Serialize)]
#[serde(tag = "type", content = "coordinates")]
enum GeometryOut {
    Polygon(Vec<Vec<[f64; 2]>>),
    MultiPolygon(Vec<Vec<Vec<[f64; 2]>>>),
}

impl GeometryOut {
    fn from_area(area: &MultiPolygon<f64>) -> Self {
        let ring = |r: &LineString<f64>| r.0.iter().map(|c| [c.x, c.y]).collect::<Vec<_>>();
        let mut polygons: Vec<Vec<Vec<[f64; 2]>>> = area
            .0
            .iter()
            .map(|p| {
                std::iter::once(p.exterior())
                    .chain(p.interiors())
                    .map(ring)
                    .collect()
            })
            .collect();
        if polygons.len() == 1 {
            Self::Polygon(polygons.remove(0))
        } else {
            Self::MultiPolygon(polygons)
        }
    }
}

#[derive(Debug, Serialize)]
struct FeatureOut<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    id: &'a str,
    properties: &'a StationProperties,
    geometry: GeometryOut,
}

/// How the files were made; written as the foreign member `generator` of the collection
/// (RFC 7946 §6.1) so that a reader can tell how to make them again.
#[derive(Debug, Clone, Serialize)]
pub struct GeneratorInfo {
    pub command: String,
    pub seed: u64,
    /// `--customers`, when given.
    pub customers: Option<u64>,
}

/// The text of `stations.geojson`.
pub fn stations_geojson(
    stations: &[(StationProperties, MultiPolygon<f64>)],
    info: &GeneratorInfo,
) -> Result<String, serde_json::Error> {
    let mut out = String::from("{\"type\":\"FeatureCollection\",\"generator\":");
    out.push_str(&serde_json::to_string(info)?);
    out.push_str(",\"features\":[\n");
    for (i, (properties, area)) in stations.iter().enumerate() {
        let feature = FeatureOut {
            kind: "Feature",
            id: &properties.id,
            properties,
            geometry: GeometryOut::from_area(area),
        };
        out.push_str(&serde_json::to_string(&feature)?);
        out.push_str(if i + 1 < stations.len() { ",\n" } else { "\n" });
    }
    out.push_str("]}\n");
    Ok(out)
}

/// The text of `crews.json`.
pub fn crews_json(crews: &[CrewRecord]) -> Result<String, serde_json::Error> {
    let mut out = String::from("[\n");
    for (i, crew) in crews.iter().enumerate() {
        out.push_str(&serde_json::to_string(crew)?);
        out.push_str(if i + 1 < crews.len() { ",\n" } else { "\n" });
    }
    out.push_str("]\n");
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::{AreaClass, Skill};
    use geo_types::{Coord, Rect};

    #[test]
    fn stations_round_trip_through_geojson() {
        let area = MultiPolygon(vec![
            Rect::new(Coord { x: 114.0, y: 23.0 }, Coord { x: 114.1, y: 23.1 }).to_polygon(),
        ]);
        let mut extra = serde_json::Map::new();
        extra.insert("name_en".into(), "A Supply Station".into());
        let props = StationProperties {
            id: "441302-01".into(),
            name: "甲供电所".into(),
            area_class: AreaClass::Urban,
            customers: 12,
            district: "惠城区".into(),
            lat: 23.05,
            lon: 114.05,
            extra,
        };
        let info = GeneratorInfo {
            command: "geo-data generate".into(),
            seed: 1,
            customers: None,
        };
        let text = stations_geojson(&[(props.clone(), area)], &info).unwrap();
        assert!(text.contains("\"type\":\"Polygon\""));
        let fc: geojson::FeatureCollection = text.parse().unwrap();
        let back: StationProperties = serde_json::from_value(serde_json::Value::Object(
            fc.features[0].properties.clone().unwrap(),
        ))
        .unwrap();
        assert_eq!(back, props);
    }

    #[test]
    fn crews_are_one_per_line() {
        let crew = CrewRecord {
            id: "441302-01-c1".into(),
            station_id: "441302-01".into(),
            skills: vec![Skill::Lv, Skill::Hv],
            lat: 23.0,
            lon: 114.0,
        };
        let text = crews_json(&[crew.clone(), crew]).unwrap();
        assert_eq!(text.lines().count(), 4);
        let back: Vec<CrewRecord> = serde_json::from_str(&text).unwrap();
        assert_eq!(back.len(), 2);
        assert_eq!(crews_json(&[]).unwrap(), "[\n]\n");
    }
}
