//! The committed Huizhou region: it regenerates byte for byte, and its areas, stations and
//! crews keep every invariant. Huizhou is generated once for the whole file.

mod common;

use std::path::PathBuf;
use std::sync::OnceLock;

use common::{Region, generate_copy};
use geo_data::format::{AreaClass, CREWS_FILE, STATIONS_FILE};
use geo_data::generate::GenerateOptions;
use proptest::prelude::*;

/// The arguments the committed files were generated with (see the region's SOURCES.md):
/// `cargo run -p geo-data -- generate geo-data/regions/huizhou --seed 1 --customers 1780000`.
const COMMITTED: GenerateOptions = GenerateOptions {
    seed: 1,
    customers: Some(1_780_000),
};

fn committed_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("regions/huizhou")
}

fn huizhou() -> &'static Region {
    static REGION: OnceLock<Region> = OnceLock::new();
    REGION.get_or_init(|| generate_copy(&committed_dir(), &COMMITTED))
}

#[test]
fn committed_files_regenerate_byte_identically() {
    let region = huizhou();
    let dir = committed_dir();
    let stations = std::fs::read(dir.join(STATIONS_FILE)).unwrap();
    let crews = std::fs::read(dir.join(CREWS_FILE)).unwrap();
    assert!(
        region.stations_bytes == stations,
        "{STATIONS_FILE} differs from a fresh generation: run the command in SOURCES.md"
    );
    assert!(
        region.crews_bytes == crews,
        "{CREWS_FILE} differs from a fresh generation: run the command in SOURCES.md"
    );
}

#[test]
fn same_seed_same_bytes_other_seed_other_crews() {
    let again = generate_copy(&committed_dir(), &COMMITTED);
    assert!(again.stations_bytes == huizhou().stations_bytes);
    assert!(again.crews_bytes == huizhou().crews_bytes);
    let other = generate_copy(
        &committed_dir(),
        &GenerateOptions {
            seed: 2,
            ..COMMITTED
        },
    );
    assert!(other.crews_bytes != huizhou().crews_bytes);
    assert_eq!(other.crews.len(), huizhou().crews.len());
}

#[test]
fn areas_cover_the_boundary() {
    let ratio = huizhou().area_ratio();
    assert!((ratio - 1.0).abs() < 0.005, "areas / boundary = {ratio}");
}

#[test]
fn areas_do_not_overlap() {
    // 1e-10 square degrees is about 1 m².
    let overlap = huizhou().overlap_area();
    assert!(
        overlap < 1e-10,
        "areas overlap by {overlap:e} square degrees"
    );
}

#[test]
fn areas_are_valid_polygons() {
    huizhou().check_valid();
}

#[test]
fn neighbouring_areas_share_their_borders_exactly() {
    huizhou().check_borders_match();
}

#[test]
fn stations_lie_in_their_own_areas() {
    huizhou().check_stations_in_own_area();
}

#[test]
fn crews_and_customers() {
    let region = huizhou();
    region.check_crews();
    assert_eq!(region.customers(), 1_780_000);
}

#[test]
fn every_place_and_district_has_a_station() {
    let region = huizhou();
    // 78 GeoNames places, all inside a district and at distinct points.
    assert_eq!(region.stations.len(), 78);
    assert!(
        region.generated.warnings.is_empty(),
        "{:?}",
        region.generated.warnings
    );
    for adcode in ["441302", "441303", "441322", "441323", "441324"] {
        let first = format!("{adcode}-01");
        assert!(region.stations.iter().any(|s| s.properties.id == first));
    }
    let ids: std::collections::BTreeSet<&str> = region
        .stations
        .iter()
        .map(|s| s.properties.id.as_str())
        .collect();
    assert_eq!(ids.len(), region.stations.len());
}

#[test]
fn seats_are_urban_and_first() {
    let region = huizhou();
    for (id, name) in [
        ("441302-01", "惠州供电所"),
        ("441303-01", "淡水供电所"),
        ("441322-01", "罗阳供电所"),
        ("441323-01", "平山供电所"),
        ("441324-01", "龙城供电所"),
    ] {
        let s = region
            .stations
            .iter()
            .find(|s| s.properties.id == id)
            .unwrap();
        assert_eq!(s.properties.name, name);
        assert_eq!(s.properties.area_class, AreaClass::Urban);
    }
    for class in [AreaClass::Rural, AreaClass::Remote] {
        assert!(
            region
                .stations
                .iter()
                .any(|s| s.properties.area_class == class)
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn every_point_is_in_exactly_one_area(
        points in proptest::collection::vec((0.0..1.0f64, 0.0..1.0f64), 40)
    ) {
        let region = huizhou();
        for (u, v) in points {
            if let Err(e) = region.check_point(region.point_at(u, v)) {
                prop_assert!(false, "{}", e);
            }
        }
    }
}
