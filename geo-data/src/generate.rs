//! The generator: from a region's real geography (`boundary.geojson`, `districts.geojson`,
//! `places.geojson`) to its synthetic supply stations with service areas (`stations.geojson`)
//! and repair crews (`crews.json`).
//!
//! The steps, each documented in its module:
//! 1. project everything into the kilometre plane around the boundary's centre
//!    ([`crate::projection`]) and make the districts a partition of the boundary
//!    ([`crate::areas::tidy_districts`]);
//! 2. seat the stations at the places, numbered and named ([`crate::stations`]);
//! 3. split each district among its stations ([`crate::areas::partition_district`]), round,
//!    and make the neighbours' borders agree ([`crate::areas::make_borders_agree`]);
//! 4. estimate the customers ([`crate::customers`]) and class each area
//!    ([`crate::stations::classify`]);
//! 5. give each station its crews ([`crate::crews`]);
//! 6. write both files deterministically ([`crate::output`]).
//!
//! The output depends on nothing but the three input files, the seed and `--customers`: no
//! clock, no hash-map order, no threads. The seed only moves the crews' start positions.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};

use geo::{Area, BoundingRect, GeodesicArea, InteriorPoint, Intersects};
use geo_types::{Coord, MultiPolygon, Point};
use rand_pcg::Pcg64;
use rand_pcg::rand_core::SeedableRng;
use serde_json::{Map, Value};

use crate::areas::{
    AreaError, make_borders_agree, partition_district, tidy_districts, to_output_area,
};
use crate::crews::station_crews;
use crate::customers::{Committees, CommitteesInput, apportion, fill_committees};
use crate::format::{AreaClass, CREWS_FILE, CrewRecord, STATIONS_FILE, StationProperties};
use crate::input::{District, RegionInput, read_region_input};
use crate::output::{GeneratorInfo, crews_json, stations_geojson};
use crate::projection::{LocalProjection, round6};
use crate::region::RegionError;
use crate::stations::{
    MIN_SEPARATION_KM, Station, StationSeat, classify, district_names, district_stem, feature_rank,
    is_seat, place_names,
};

/// The seed when `--seed` is not given.
pub const DEFAULT_SEED: u64 = 1;

/// Share of the boundary's area that may be left uncovered by the districts before the
/// generator warns; below it is rounding noise.
const UNCOVERED_WARNING_SHARE: f64 = 1e-6;

/// What the generator is asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GenerateOptions {
    /// Seeds the crews' start jitter.
    pub seed: u64,
    /// Total customers to spread over the stations; `None` keeps the households estimate.
    pub customers: Option<u64>,
}

impl Default for GenerateOptions {
    fn default() -> Self {
        Self {
            seed: DEFAULT_SEED,
            customers: None,
        }
    }
}

/// Why generation failed.
#[derive(Debug, thiserror::Error)]
pub enum GenerateError {
    #[error(transparent)]
    Region(#[from] RegionError),
    #[error(transparent)]
    Area(#[from] AreaError),
    #[error("two districts share the adcode {0}")]
    DuplicateDistrict(String),
    #[error("the boundary has no coordinates")]
    EmptyBoundary,
    #[error("no district has any area inside the boundary")]
    NoStations,
    #[error("cannot serialise {what}: {source}")]
    Serialise {
        what: &'static str,
        #[source]
        source: serde_json::Error,
    },
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// A generated region.
#[derive(Debug, Clone)]
pub struct Generated {
    /// In id order.
    pub stations: Vec<Station>,
    /// The written service area of each station (WGS84), same order.
    pub areas: Vec<MultiPolygon<f64>>,
    /// The districts as read, in adcode order; [`Station::district`] indexes this.
    pub districts: Vec<District>,
    pub crews: Vec<CrewRecord>,
    /// Input that was skipped or looked wrong.
    pub warnings: Vec<String>,
    /// The text of `stations.geojson`.
    pub stations_geojson: String,
    /// The text of `crews.json`.
    pub crews_json: String,
}

impl Generated {
    /// Stations per district (by index) and area class.
    pub fn class_counts(&self) -> BTreeMap<(usize, AreaClass), usize> {
        let mut counts = BTreeMap::new();
        for s in &self.stations {
            *counts.entry((s.district, s.area_class)).or_insert(0) += 1;
        }
        counts
    }
}

/// Reads the region in `dir`, generates, and writes `stations.geojson` and `crews.json` there.
pub fn generate_dir(dir: &Path, options: &GenerateOptions) -> Result<Generated, GenerateError> {
    let input = read_region_input(dir)?;
    let generated = generate(&input, options)?;
    write_atomically(&dir.join(STATIONS_FILE), &generated.stations_geojson)?;
    write_atomically(&dir.join(CREWS_FILE), &generated.crews_json)?;
    Ok(generated)
}

/// A reader never sees half a file: write beside it, then rename over it.
fn write_atomically(path: &Path, text: &str) -> Result<(), GenerateError> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let err = |source| GenerateError::Write {
        path: path.to_owned(),
        source,
    };
    std::fs::write(&tmp, text).map_err(err)?;
    std::fs::rename(&tmp, path).map_err(err)
}

/// One station before its area and numbers are known.
struct Seat {
    district: usize,
    seat: StationSeat,
    /// WGS84, rounded to 6 decimals.
    location: Coord<f64>,
}

/// Generates stations and crews for a region in memory.
pub fn generate(
    input: &RegionInput,
    options: &GenerateOptions,
) -> Result<Generated, GenerateError> {
    let mut warnings = Vec::new();

    let districts = sorted_districts(input)?;
    let projection = match input.boundary.bounding_rect() {
        Some(rect) => LocalProjection::centred_on(rect),
        None => return Err(GenerateError::EmptyBoundary),
    };
    let boundary_km = projection.forward_area(&input.boundary);
    let districts_km: Vec<MultiPolygon<f64>> = districts
        .iter()
        .map(|d| projection.forward_area(&d.area))
        .collect();
    let (districts_km, uncovered_km2) = tidy_districts(&boundary_km, &districts_km);
    let boundary_km2 = boundary_km.unsigned_area();
    if uncovered_km2 > UNCOVERED_WARNING_SHARE * boundary_km2 {
        warnings.push(format!(
            "the districts leave {uncovered_km2:.3} km² of the boundary uncovered; no station serves it"
        ));
    }

    let seats = seat_stations(input, &districts, &districts_km, &projection, &mut warnings);
    if seats.is_empty() {
        return Err(GenerateError::NoStations);
    }

    let areas = service_areas(input, &seats, &districts, &districts_km, &projection)?;

    let filled = fill_committees(&seats.iter().map(committees_input).collect::<Vec<_>>());
    let households: Vec<u64> = filled.iter().map(|(c, _)| c.households()).collect();
    let customers = match options.customers {
        Some(total) => apportion(&households, total),
        None => households.clone(),
    };

    // Stations, numbered within their district.
    let mut stations = Vec::with_capacity(seats.len());
    let mut number_in_district: HashMap<usize, usize> = HashMap::new();
    for (i, seat) in seats.into_iter().enumerate() {
        let n = number_in_district.entry(seat.district).or_insert(0);
        *n += 1;
        let district = &districts[seat.district];
        let (name, name_en) = match &seat.seat {
            StationSeat::Place(p) => place_names(p),
            StationSeat::DistrictInterior => district_names(&district.name),
        };
        let area_km2 = (areas[i].geodesic_area_unsigned() / 1e6 * 100.0).round() / 100.0;
        let (committees, committees_source) = filled[i];
        stations.push(Station {
            id: format!("{}-{:02}", district.adcode, n),
            name,
            name_en,
            district: seat.district,
            area_class: classify(seat_is_seat(&seat.seat), committees, customers[i], area_km2),
            seat: seat.seat,
            location: seat.location,
            committees,
            committees_source,
            households: households[i],
            customers: customers[i],
            area_km2,
        });
    }
    disambiguate_names(&mut stations, &districts);

    let mut rng = Pcg64::seed_from_u64(options.seed);
    let crews: Vec<CrewRecord> = stations
        .iter()
        .zip(&areas)
        .flat_map(|(s, area)| {
            station_crews(&s.id, s.customers, s.location, area, &projection, &mut rng)
        })
        .collect();

    let features: Vec<(StationProperties, MultiPolygon<f64>)> = stations
        .iter()
        .zip(&areas)
        .map(|(s, area)| (station_properties(s, &districts), area.clone()))
        .collect();
    let info = GeneratorInfo {
        command: "geo-data generate".into(),
        seed: options.seed,
        customers: options.customers,
    };
    let stations_geojson =
        stations_geojson(&features, &info).map_err(|source| GenerateError::Serialise {
            what: STATIONS_FILE,
            source,
        })?;
    let crews_json = crews_json(&crews).map_err(|source| GenerateError::Serialise {
        what: CREWS_FILE,
        source,
    })?;

    Ok(Generated {
        stations,
        areas,
        districts,
        crews,
        warnings,
        stations_geojson,
        crews_json,
    })
}

/// The vertices of the boundary and the districts, rounded as the output is, as bit pairs.
fn input_vertices(input: &RegionInput) -> HashSet<(u64, u64)> {
    std::iter::once(&input.boundary)
        .chain(input.districts.iter().map(|d| &d.area))
        .flat_map(|area| area.0.iter())
        .flat_map(|polygon| std::iter::once(polygon.exterior()).chain(polygon.interiors()))
        .flat_map(|ring| ring.0.iter())
        .map(|c| (round6(c.x).to_bits(), round6(c.y).to_bits()))
        .collect()
}

/// The written (WGS84, rounded) service area of each seat, in seat order.
fn service_areas(
    input: &RegionInput,
    seats: &[Seat],
    districts: &[District],
    districts_km: &[MultiPolygon<f64>],
    projection: &LocalProjection,
) -> Result<Vec<MultiPolygon<f64>>, GenerateError> {
    let mut areas = Vec::with_capacity(seats.len());
    // `seats` comes grouped by district.
    for group in seats.chunk_by(|a, b| a.district == b.district) {
        let district = group[0].district;
        let sites: Vec<Coord<f64>> = group
            .iter()
            .map(|s| projection.forward(s.location))
            .collect();
        let district_areas =
            partition_district(&districts[district].name, &districts_km[district], &sites)?;
        areas.extend(district_areas.iter().map(|a| to_output_area(a, projection)));
    }
    let area_districts: Vec<usize> = seats.iter().map(|s| s.district).collect();
    make_borders_agree(&mut areas, &area_districts, &input_vertices(input));
    if let Some(i) = areas.iter().position(|a| a.0.is_empty()) {
        let district = seats[i].district;
        let first = seats
            .iter()
            .position(|s| s.district == district)
            .unwrap_or(i);
        return Err(AreaError::EmptyArea {
            district: districts[district].name.clone(),
            site: i - first,
        }
        .into());
    }
    Ok(areas)
}

fn committees_input(seat: &Seat) -> CommitteesInput {
    CommitteesInput {
        district: seat.district,
        seat: seat_is_seat(&seat.seat),
        known: match &seat.seat {
            StationSeat::Place(p) => {
                p.residents_committees
                    .zip(p.villagers_committees)
                    .map(|(residents, villagers)| Committees {
                        residents,
                        villagers,
                    })
            }
            StationSeat::DistrictInterior => None,
        },
    }
}

fn seat_is_seat(seat: &StationSeat) -> bool {
    match seat {
        StationSeat::Place(p) => is_seat(p),
        StationSeat::DistrictInterior => false,
    }
}

/// The districts in adcode order; a region without districts is one district, its boundary.
fn sorted_districts(input: &RegionInput) -> Result<Vec<District>, GenerateError> {
    let mut districts = if input.districts.is_empty() {
        vec![District {
            adcode: input.adcode.clone().unwrap_or_else(|| "00".into()),
            name: input.name.clone().unwrap_or_else(|| "region".into()),
            area: input.boundary.clone(),
        }]
    } else {
        input.districts.clone()
    };
    // Stable: districts with equal adcodes keep their file order (and are refused below).
    districts.sort_by(|a, b| a.adcode.cmp(&b.adcode));
    if let Some(pair) = districts.windows(2).find(|w| w[0].adcode == w[1].adcode) {
        return Err(GenerateError::DuplicateDistrict(pair[0].adcode.clone()));
    }
    Ok(districts)
}

/// The stations' seats, grouped by district in district order, each group in station order
/// (see [`crate::stations`]).
fn seat_stations(
    input: &RegionInput,
    districts: &[District],
    districts_km: &[MultiPolygon<f64>],
    projection: &LocalProjection,
    warnings: &mut Vec<String>,
) -> Vec<Seat> {
    let label = |p: &crate::input::Place| {
        p.name_zh
            .clone()
            .or_else(|| p.name.clone())
            .unwrap_or_else(|| format!("({}, {})", p.location.x, p.location.y))
    };
    let mut by_district: Vec<Vec<&crate::input::Place>> = vec![Vec::new(); districts.len()];
    for place in &input.places {
        let location = rounded(place.location);
        let site = Point(projection.forward(location));
        match districts_km.iter().position(|d| d.intersects(&site)) {
            Some(d) => by_district[d].push(place),
            None => warnings.push(format!(
                "place {} lies in no district; it gets no station",
                label(place)
            )),
        }
    }

    let mut seats = Vec::new();
    for (d, mut places) in by_district.into_iter().enumerate() {
        places.sort_by(|a, b| {
            is_seat(b)
                .cmp(&is_seat(a))
                .then(
                    feature_rank(a.feature_code.as_deref())
                        .cmp(&feature_rank(b.feature_code.as_deref())),
                )
                .then(b.location.y.total_cmp(&a.location.y))
                .then(a.location.x.total_cmp(&b.location.x))
                .then(a.name_zh.cmp(&b.name_zh))
                .then(a.name.cmp(&b.name))
                .then(a.geonameid.cmp(&b.geonameid))
        });
        let mut kept: Vec<Coord<f64>> = Vec::new();
        for place in places {
            let location = rounded(place.location);
            let site = projection.forward(location);
            if let Some(other) = kept
                .iter()
                .find(|k| (k.x - site.x).hypot(k.y - site.y) < MIN_SEPARATION_KM)
            {
                let other = projection.inverse(*other);
                warnings.push(format!(
                    "place {} is within {} m of another place of the district at ({:.6}, {:.6}); it gets no station",
                    label(place),
                    MIN_SEPARATION_KM * 1000.0,
                    other.x,
                    other.y
                ));
                continue;
            }
            kept.push(site);
            seats.push(Seat {
                district: d,
                seat: StationSeat::Place(Box::new(place.clone())),
                location,
            });
        }
        if kept.is_empty() {
            match districts_km[d].interior_point() {
                Some(point) => seats.push(Seat {
                    district: d,
                    seat: StationSeat::DistrictInterior,
                    location: rounded(projection.inverse(point.0)),
                }),
                None => warnings.push(format!(
                    "district {} has no area inside the boundary; it gets no station",
                    districts[d].name
                )),
            }
        }
    }
    seats
}

fn rounded(c: Coord<f64>) -> Coord<f64> {
    Coord {
        x: round6(c.x),
        y: round6(c.y),
    }
}

/// Names repeated within the region get the district's short name (Chinese) or adcode
/// (English) in parentheses.
fn disambiguate_names(stations: &mut [Station], districts: &[District]) {
    let mut seen: HashMap<String, usize> = HashMap::new();
    for s in stations.iter() {
        *seen.entry(s.name.clone()).or_insert(0) += 1;
    }
    for s in stations.iter_mut() {
        if seen.get(&s.name).copied().unwrap_or(0) > 1 {
            let district = &districts[s.district];
            s.name = format!("{}（{}）", s.name, district_stem(&district.name));
            s.name_en = format!("{} ({})", s.name_en, district.adcode);
        }
    }
}

/// The written properties; `extra` is filled in key order (see [`crate::output`]).
fn station_properties(s: &Station, districts: &[District]) -> StationProperties {
    let district = &districts[s.district];
    let mut extra: BTreeMap<&str, Value> = BTreeMap::new();
    extra.insert("area_km2", Value::from(s.area_km2));
    extra.insert(
        "committees_source",
        Value::from(s.committees_source.as_str()),
    );
    extra.insert("district_adcode", Value::from(district.adcode.clone()));
    extra.insert("households_estimate", Value::from(s.households));
    extra.insert("name_en", Value::from(s.name_en.clone()));
    extra.insert("residents_committees", Value::from(s.committees.residents));
    extra.insert("villagers_committees", Value::from(s.committees.villagers));
    match &s.seat {
        StationSeat::Place(p) => {
            extra.insert("seat", Value::from("place"));
            if let Some(code) = &p.feature_code {
                extra.insert("feature_code", Value::from(code.clone()));
            }
            if let Some(id) = p.geonameid {
                extra.insert("geonameid", Value::from(id));
            }
            if let Some(name) = p.name_zh.as_ref().or(p.name.as_ref()) {
                extra.insert("place", Value::from(name.clone()));
            }
            if let Some(code) = &p.township_code {
                extra.insert("township_code", Value::from(code.clone()));
            }
        }
        StationSeat::DistrictInterior => {
            extra.insert("seat", Value::from("district_interior_point"));
        }
    }
    StationProperties {
        id: s.id.clone(),
        name: s.name.clone(),
        area_class: s.area_class,
        customers: s.customers,
        district: district.name.clone(),
        lat: s.location.y,
        lon: s.location.x,
        extra: extra
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect::<Map<String, Value>>(),
    }
}
