//! Supply stations (供电所): where they are, what they are called, how they are numbered, and
//! how their service areas are classed.
//!
//! **Seats.** A station sits at each town-level place of `places.geojson` (GeoNames points of
//! township and county seats). A place belongs to the district its point lies in
//! (point-in-polygon; the place's own `county_adcode` is not trusted); a place outside every
//! district is skipped with a warning, and so is a place within 1 m of an earlier one in the
//! same district, since two stations cannot share a point. A district with no place gets one
//! station at an interior point of the district (geo's `InteriorPoint`), named after the
//! district.
//!
//! **Ids and order.** Districts in adcode order; within a district, seats of a county or
//! higher first (see [`is_seat`]), then by GeoNames feature code (PPLC, PPLA, PPLA2, PPLA3,
//! PPLA4, then any other), then north to south, then west to east. The id is the district's adcode and the 1-based position,
//! zero-padded to two digits: `441302-01`.
//!
//! **Names.** The Chinese name of the place with a trailing 街道, 镇 or 乡 (and an ethnic
//! township's "…族乡") removed, plus 供电所: 淡水街道 → 淡水供电所. The English name is the
//! place's romanised name plus "Supply Station". A district station uses the district's name
//! without its trailing 区, 县 or 市 (kept when fewer than two characters would remain). With
//! no romanised name at hand (district stations, places without `name`) the English name uses
//! the Chinese stem; a place with no name at all is 未名供电所, "Unnamed Supply Station". When two stations of a
//! region would get the same name, each gets its district's short name in parentheses:
//! 龙华供电所（博罗）, and "Longhua Supply Station (441322)".
//!
//! **Area class.** Decided in this order, from the station's committees, its customers and the
//! geodesic area of its service area:
//! 1. `urban` if the station sits at a seat of a county or higher ([`is_seat`]), or at least half of its
//!    township's village-level committees are urban residents' committees, or it serves at
//!    least [`URBAN_DENSITY`] customers per km²;
//! 2. `remote` if it serves fewer than [`REMOTE_DENSITY`] customers per km² (mountain and
//!    forest townships, where a crew drives far between scattered villages);
//! 3. `rural` otherwise.

use crate::customers::{Committees, CommitteesSource};
use crate::format::AreaClass;
use crate::input::Place;

/// Customers per km² from which a station counts as urban whatever its committees.
pub const URBAN_DENSITY: f64 = 1_000.0;

/// Customers per km² below which a station that is not urban counts as remote.
pub const REMOTE_DENSITY: f64 = 80.0;

/// Places closer than this (km) to an earlier place of the same district are skipped.
pub const MIN_SEPARATION_KM: f64 = 0.001;

/// Where a station sits.
#[derive(Debug, Clone)]
pub enum StationSeat {
    /// At a place of `places.geojson`.
    Place(Box<Place>),
    /// At an interior point of a district that has no place.
    DistrictInterior,
}

/// A station as the generator builds it, before it is written.
#[derive(Debug, Clone)]
pub struct Station {
    pub id: String,
    pub name: String,
    pub name_en: String,
    /// Index into the region's districts.
    pub district: usize,
    pub seat: StationSeat,
    /// WGS84, rounded to 6 decimals.
    pub location: geo_types::Coord<f64>,
    pub committees: Committees,
    pub committees_source: CommitteesSource,
    pub households: u64,
    pub customers: u64,
    /// Geodesic area of the written service area.
    pub area_km2: f64,
    pub area_class: AreaClass,
}

/// Rank of a GeoNames feature code for ordering; lower comes first. The first four are seats
/// of a county or higher.
pub fn feature_rank(feature_code: Option<&str>) -> u8 {
    match feature_code {
        Some("PPLC") => 0,
        Some("PPLA") => 1,
        Some("PPLA2") => 2,
        Some("PPLA3") => 3,
        Some("PPLA4") => 4,
        _ => 5,
    }
}

/// Whether a place is the seat of a county or higher: GeoNames says so (PPLC, PPLA, PPLA2,
/// PPLA3), or its township code is a county's first subdistrict (`…001`), which NBS gives to
/// the county seat's subdistrict. GeoNames misses some seats: Longmen's 龙城街道 is a PPLA4.
pub fn is_seat(place: &Place) -> bool {
    feature_rank(place.feature_code.as_deref()) <= 3
        || place
            .township_code
            .as_deref()
            .is_some_and(|code| code.len() == 9 && code.ends_with("001"))
}

/// The stem of a township name: without 街道, 镇, 乡 or an ethnic township's 族乡 suffix.
pub fn township_stem(name: &str) -> &str {
    if let Some(stem) = name.strip_suffix("族乡") {
        // "蓝田瑶族乡": drop the ethnic group's name too (one character before 族).
        let mut chars = stem.char_indices();
        if let Some((i, _)) = chars.next_back()
            && i > 0
        {
            return &stem[..i];
        }
    }
    for suffix in ["街道", "镇", "乡"] {
        if let Some(stem) = name.strip_suffix(suffix)
            && !stem.is_empty()
        {
            return stem;
        }
    }
    name
}

/// The stem of a district name: without 区, 县 or 市 when at least two characters remain.
pub fn district_stem(name: &str) -> &str {
    for suffix in ["区", "县", "市"] {
        if let Some(stem) = name.strip_suffix(suffix)
            && stem.chars().count() >= 2
        {
            return stem;
        }
    }
    name
}

/// Chinese and English names of a station at a place.
pub fn place_names(place: &Place) -> (String, String) {
    let zh = place
        .name_zh
        .as_deref()
        .map(township_stem)
        .or(place.name.as_deref())
        .unwrap_or("未名");
    let en = place
        .name
        .as_deref()
        .or(place.name_zh.as_deref().map(township_stem))
        .unwrap_or("Unnamed");
    (format!("{zh}供电所"), format!("{en} Supply Station"))
}

/// Chinese and English names of a station at a district's interior point.
pub fn district_names(district_name: &str) -> (String, String) {
    let stem = district_stem(district_name);
    (format!("{stem}供电所"), format!("{stem} Supply Station"))
}

/// Customers per km², with a floor on the area so that a sliver cannot divide by zero.
pub fn density(customers: u64, area_km2: f64) -> f64 {
    customers as f64 / area_km2.max(0.01)
}

/// The area class by the rule in the module documentation.
pub fn classify(seat: bool, committees: Committees, customers: u64, area_km2: f64) -> AreaClass {
    let density = density(customers, area_km2);
    if seat || committees.mostly_urban() || density >= URBAN_DENSITY {
        AreaClass::Urban
    } else if density < REMOTE_DENSITY {
        AreaClass::Remote
    } else {
        AreaClass::Rural
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(residents: u64, villagers: u64) -> Committees {
        Committees {
            residents,
            villagers,
        }
    }

    #[test]
    fn stems() {
        assert_eq!(township_stem("淡水街道"), "淡水");
        assert_eq!(township_stem("湖镇镇"), "湖镇");
        assert_eq!(township_stem("蓝田瑶族乡"), "蓝田");
        assert_eq!(township_stem("矮陂"), "矮陂");
        assert_eq!(township_stem("镇"), "镇");
        assert_eq!(district_stem("惠城区"), "惠城");
        assert_eq!(district_stem("城区"), "城区");
        assert_eq!(district_stem("博罗县"), "博罗");
    }

    #[test]
    fn names() {
        let place = Place {
            geonameid: Some(1),
            name: Some("Danshui".into()),
            name_zh: Some("淡水街道".into()),
            feature_code: Some("PPLA3".into()),
            township_code: None,
            residents_committees: None,
            villagers_committees: None,
            location: geo_types::Coord { x: 0.0, y: 0.0 },
        };
        assert_eq!(
            place_names(&place),
            ("淡水供电所".into(), "Danshui Supply Station".into())
        );
        let bare = Place {
            name: None,
            name_zh: None,
            ..place
        };
        assert_eq!(place_names(&bare).0, "未名供电所");
        assert_eq!(district_names("惠城区").0, "惠城供电所");
    }

    #[test]
    fn seats_and_ranks() {
        let place = |code: Option<&str>, township: Option<&str>| Place {
            geonameid: None,
            name: None,
            name_zh: None,
            feature_code: code.map(str::to_owned),
            township_code: township.map(str::to_owned),
            residents_committees: None,
            villagers_committees: None,
            location: geo_types::Coord { x: 0.0, y: 0.0 },
        };
        assert!(is_seat(&place(Some("PPLA2"), None)));
        assert!(is_seat(&place(Some("PPLA3"), Some("441303001"))));
        assert!(!is_seat(&place(Some("PPLA4"), Some("441324002"))));
        assert!(is_seat(&place(Some("PPLA4"), Some("441324001"))));
        assert!(!is_seat(&place(None, None)));
        assert!(feature_rank(Some("PPLA4")) < feature_rank(Some("PPL")));
    }

    #[test]
    fn area_classes() {
        assert_eq!(classify(true, c(0, 20), 100, 1_000.0), AreaClass::Urban);
        assert_eq!(classify(false, c(10, 6), 100, 1_000.0), AreaClass::Urban);
        assert_eq!(classify(false, c(1, 20), 50_000, 40.0), AreaClass::Urban);
        assert_eq!(classify(false, c(1, 20), 5_000, 100.0), AreaClass::Remote);
        assert_eq!(classify(false, c(1, 20), 20_000, 100.0), AreaClass::Rural);
        assert_eq!(classify(false, c(1, 20), 1, 0.0), AreaClass::Rural);
    }
}
