//! The bundled Huizhou region as the service sees it: it loads, its stations and crews refer
//! to each other, and the service-area index places every station and every crew in the
//! station's own area.

use dispatch::domain::LatLon;
use dispatch::geo::{Located, ServiceAreaIndex};
use dispatch::region::Region;
use proptest::prelude::*;
use std::path::Path;
use std::sync::OnceLock;

fn huizhou() -> &'static (Region, ServiceAreaIndex) {
    static REGION: OnceLock<(Region, ServiceAreaIndex)> = OnceLock::new();
    REGION.get_or_init(|| {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../geo-data/regions/huizhou");
        let region = Region::load(&dir).expect("the bundled Huizhou region loads");
        let index = ServiceAreaIndex::new(&region.areas, 5.0);
        (region, index)
    })
}

#[test]
fn every_station_and_crew_is_inside_its_own_service_area() {
    let (region, index) = huizhou();
    assert_eq!(region.stations.len(), 78);
    assert!(region.crews.len() >= 2 * region.stations.len());
    for (i, station) in region.stations.iter().enumerate() {
        assert_eq!(
            index.locate(station.location),
            Ok(Located::Inside { station: i }),
            "{}",
            station.id
        );
    }
    for crew in &region.crews {
        let located = index.locate(crew.position).unwrap();
        assert_eq!(
            region.stations[located.station()].id,
            crew.station,
            "{}",
            crew.id
        );
    }
}

#[test]
fn the_sea_far_off_daya_bay_is_outside_every_area() {
    let (_, index) = huizhou();
    let open_sea = LatLon::new(22.2, 114.8).unwrap();
    assert!(index.locate(open_sea).is_err());
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// A point inside a station's area is located to that station (areas do not overlap,
    /// so the index's answer is the only one).
    #[test]
    fn points_inside_an_area_are_located_to_its_station(
        station in 0usize..78, dlat in -0.03f64..0.03, dlon in -0.03f64..0.03,
    ) {
        use geo::Contains;
        let (region, index) = huizhou();
        let s = &region.stations[station];
        let p = LatLon::new(s.location.lat() + dlat, s.location.lon() + dlon).unwrap();
        if region.areas[station].contains(&p.point()) {
            prop_assert_eq!(index.locate(p), Ok(Located::Inside { station }));
        }
    }
}
