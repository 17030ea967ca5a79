//! A small region the generator has never seen, built in a temporary directory: a square
//! boundary split into two districts by a zigzag line, with 3 to 5 places in one district and
//! none in the other. Whatever the places, their properties and the options, every invariant
//! of a region must hold.

mod common;

use std::path::Path;

use common::{Region, read_back};
use geo_data::format::{BOUNDARY_FILE, DISTRICTS_FILE, PLACES_FILE};
use geo_data::generate::{GenerateOptions, generate_dir};
use proptest::prelude::*;
use serde_json::{Value, json};

const WEST: [[f64; 2]; 6] = [
    [100.0, 30.0],
    [100.1, 30.0],
    [100.12, 30.1],
    [100.1, 30.2],
    [100.0, 30.2],
    [100.0, 30.0],
];
const EAST: [[f64; 2]; 6] = [
    [100.1, 30.0],
    [100.2, 30.0],
    [100.2, 30.2],
    [100.1, 30.2],
    [100.12, 30.1],
    [100.1, 30.0],
];

#[derive(Debug, Clone)]
struct PlaceSpec {
    /// Fractions of the district's free box.
    u: f64,
    v: f64,
    committees: Option<(u64, u64)>,
    feature_code: Option<&'static str>,
    named: bool,
}

fn place_spec() -> impl Strategy<Value = PlaceSpec> {
    (
        0.0..1.0f64,
        0.0..1.0f64,
        proptest::option::of((0u64..20, 0u64..40)),
        proptest::option::of(prop_oneof![Just("PPLA3"), Just("PPLA4"), Just("PPL")]),
        any::<bool>(),
    )
        .prop_map(|(u, v, committees, feature_code, named)| PlaceSpec {
            u,
            v,
            committees,
            feature_code,
            named,
        })
}

fn polygon_feature(properties: Value, ring: &[[f64; 2]]) -> Value {
    json!({"type": "Feature", "properties": properties,
           "geometry": {"type": "Polygon", "coordinates": [ring]}})
}

/// Writes the region's three input files; the places go to the west district when
/// `places_west`, else to the east one.
fn write_region(dir: &Path, places: &[PlaceSpec], places_west: bool) {
    let boundary = json!({"type": "FeatureCollection", "features": [polygon_feature(
        json!({"adcode": "900000", "name": "测试市"}),
        &[[100.0, 30.0], [100.2, 30.0], [100.2, 30.2], [100.0, 30.2], [100.0, 30.0]],
    )]});
    // East first: the generator must order districts by adcode, not by file order.
    let districts = json!({"type": "FeatureCollection", "features": [
        polygon_feature(json!({"adcode": "900002", "name": "乙县"}), &EAST),
        polygon_feature(json!({"adcode": "900001", "name": "甲区"}), &WEST),
    ]});
    // A box inside the chosen district, clear of the zigzag.
    let (x0, x1) = if places_west {
        (100.002, 100.098)
    } else {
        (100.122, 100.198)
    };
    let features: Vec<Value> = places
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let lon = ((x0 + p.u * (x1 - x0)) * 1e5).round() / 1e5;
            let lat = ((30.002 + p.v * 0.196) * 1e5).round() / 1e5;
            let (residents, villagers) = match p.committees {
                Some((r, v)) => (json!(r), json!(v)),
                None => (Value::Null, Value::Null),
            };
            json!({"type": "Feature",
                   "properties": {
                       "geonameid": 1000 + i,
                       "name": if p.named { json!(format!("Place{i}")) } else { Value::Null },
                       "name_zh": if p.named { json!(format!("地{i}镇")) } else { Value::Null },
                       "feature_code": p.feature_code,
                       "population": Value::Null,
                       "residents_committees": residents,
                       "villagers_committees": villagers,
                   },
                   "geometry": {"type": "Point", "coordinates": [lon, lat]}})
        })
        .collect();
    let places = json!({"type": "FeatureCollection", "features": features});
    for (file, value) in [
        (BOUNDARY_FILE, boundary),
        (DISTRICTS_FILE, districts),
        (PLACES_FILE, places),
    ] {
        std::fs::write(dir.join(file), value.to_string()).expect("write the test region");
    }
}

fn generate(places: &[PlaceSpec], places_west: bool, options: &GenerateOptions) -> Region {
    let dir = tempfile::tempdir().expect("a temporary directory");
    write_region(dir.path(), places, places_west);
    let generated = generate_dir(dir.path(), options).expect("the generator accepts the region");
    read_back(dir.path(), generated)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn unseen_region_keeps_every_invariant(
        places in proptest::collection::vec(place_spec(), 3..=5),
        places_west in any::<bool>(),
        seed in any::<u64>(),
        customers in proptest::option::of(0u64..5_000_000),
        points in proptest::collection::vec((0.0..1.0f64, 0.0..1.0f64), 40),
    ) {
        let options = GenerateOptions { seed, customers };
        let region = generate(&places, places_west, &options);
        let again = generate(&places, places_west, &options);
        prop_assert!(region.stations_bytes == again.stations_bytes, "stations differ for one seed");
        prop_assert!(region.crews_bytes == again.crews_bytes, "crews differ for one seed");

        for (u, v) in points {
            if let Err(e) = region.check_point(region.point_at(u, v)) {
                prop_assert!(false, "{}", e);
            }
        }
        let ratio = region.area_ratio();
        prop_assert!((ratio - 1.0).abs() < 0.005, "areas / boundary = {}", ratio);
        let overlap = region.overlap_area();
        prop_assert!(overlap < 1e-12, "areas overlap by {:e} square degrees", overlap);
        region.check_borders_match();
        region.check_valid();
        region.check_stations_in_own_area();
        region.check_crews();

        let expected = match customers {
            Some(n) => n,
            None => region
                .stations
                .iter()
                .map(|s| s.properties.extra["households_estimate"].as_u64().unwrap())
                .sum(),
        };
        prop_assert_eq!(region.customers(), expected);

        // The district without a place has one station, at an interior point, named after it.
        let (empty_adcode, empty_name) =
            if places_west { ("900002", "乙县供电所") } else { ("900001", "甲区供电所") };
        let in_empty: Vec<_> = region
            .stations
            .iter()
            .filter(|s| s.properties.extra["district_adcode"] == empty_adcode)
            .collect();
        prop_assert_eq!(in_empty.len(), 1);
        prop_assert_eq!(&in_empty[0].properties.id, &format!("{empty_adcode}-01"));
        prop_assert_eq!(&in_empty[0].properties.name, empty_name);
        prop_assert_eq!(&in_empty[0].properties.extra["seat"], "district_interior_point");

        // Places one metre apart or more each get a station; rounding to 1e-5° can merge two.
        prop_assert!(region.stations.len() <= places.len() + 1);
        prop_assert!(region.stations.len() >= 2);
    }
}

#[test]
fn seed_moves_only_the_crews() {
    let places: Vec<PlaceSpec> = [(0.2, 0.3), (0.7, 0.8), (0.5, 0.5)]
        .into_iter()
        .map(|(u, v)| PlaceSpec {
            u,
            v,
            committees: Some((2, 10)),
            feature_code: Some("PPLA4"),
            named: true,
        })
        .collect();
    let one = generate(&places, true, &GenerateOptions::default());
    let two = generate(
        &places,
        true,
        &GenerateOptions {
            seed: 2,
            customers: None,
        },
    );
    assert!(one.crews_bytes != two.crews_bytes);
    let geometry = |r: &Region| {
        r.stations
            .iter()
            .map(|s| s.area.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(geometry(&one), geometry(&two));
    assert_eq!(one.stations.len(), 4);
    // 3 places of 2 residents' and 10 villagers' committees: 15,000 households each.
    assert_eq!(one.customers(), 45_000 + 15_000);
}
