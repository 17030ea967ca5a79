//! Service areas: each district is split among its stations by a Voronoi diagram, so every
//! point is served by the station nearest to it within its own district.
//!
//! Everything here works in the kilometre plane of [`crate::projection`]. A district's areas
//! are the Voronoi cells of that district's stations (geo's `Voronoi`, built on spade) clipped
//! to the district with geo's `BooleanOps` (i_overlay), so an area never crosses a district
//! line, the areas of a district cover it without overlap, and the districts tile the
//! boundary. Cells are computed per district on purpose: a supply station belongs to the
//! county's power supply bureau and does not serve the next county.
//!
//! Shared borders are made identical on both sides after the 6-decimal rounding
//! ([`make_borders_agree`]), so neighbouring areas meet without slivers. What remains is
//! where a station border meets the region's outer boundary: there the area's outline may
//! leave the boundary's straight edge by up to 7 cm. geo has no operation that makes a
//! coverage's borders agree (GEOS calls it coverage cleaning), hence the small pass here, on
//! rstar.
//!
//! Two details make this work for any set of sites, including one site or collinear sites
//! (which a Voronoi diagram alone cannot turn into cells): three far-away helper sites are
//! added around the district, at ten times its extent, so no point of the district is closer
//! to them than to a real site while the real sites' cells become bounded; and a district with
//! one station gets the whole district without any diagram.

use geo::{
    Area, BooleanOps, BoundingRect, Contains, Orient, Voronoi, VoronoiError, orient::Direction,
};
use geo_types::{Coord, LineString, MultiPoint, MultiPolygon, Point, Polygon, Rect};
use rstar::primitives::GeomWithData;
use rstar::{AABB, RTree};
use std::collections::{HashMap, HashSet};

use crate::projection::{LocalProjection, round6};

/// Why a district could not be split among its stations.
#[derive(Debug, thiserror::Error)]
pub enum AreaError {
    #[error("district {district}: the Voronoi diagram of its stations failed: {source}")]
    Voronoi {
        district: String,
        #[source]
        source: VoronoiError,
    },
    #[error("district {district}: no Voronoi cell contains station {site} of the district")]
    MissingCell { district: String, site: usize },
    #[error("district {district}: station {site} got an empty service area")]
    EmptyArea { district: String, site: usize },
}

/// Makes the districts a partition of the boundary: each district is clipped to the boundary,
/// and what an earlier district (in the given order) already covers is removed, so sloppy
/// input can never give overlapping areas or areas outside the region. Districts that tile
/// the boundary, as Huizhou's do, come back unchanged up to i_overlay's snapping grid
/// (sub-millimetre), which the 6-decimal output rounding removes.
///
/// Also returns the area (km²) of the boundary that no district covers; the caller warns when
/// it is more than rounding noise.
pub fn tidy_districts(
    boundary: &MultiPolygon<f64>,
    districts: &[MultiPolygon<f64>],
) -> (Vec<MultiPolygon<f64>>, f64) {
    let mut covered = MultiPolygon(Vec::new());
    let mut tidied = Vec::with_capacity(districts.len());
    for district in districts {
        let mut part = district.intersection(boundary);
        if !covered.0.is_empty() {
            part = part.difference(&covered);
        }
        covered = if covered.0.is_empty() {
            part.clone()
        } else {
            covered.union(&part)
        };
        tidied.push(part);
    }
    let uncovered = boundary.difference(&covered).unsigned_area();
    (tidied, uncovered)
}

/// Splits one district (km plane) among its stations `sites` (km plane, distinct, inside the
/// district): element `i` of the result is the service area of `sites[i]`.
pub fn partition_district(
    district_name: &str,
    district: &MultiPolygon<f64>,
    sites: &[Coord<f64>],
) -> Result<Vec<MultiPolygon<f64>>, AreaError> {
    if sites.len() <= 1 {
        return Ok(sites.iter().map(|_| district.clone()).collect());
    }
    let extent = extent_of(district, sites);
    let centre = extent.center();
    let diagonal = extent.width().hypot(extent.height()).max(1.0);
    let r = 10.0 * diagonal;
    let half_root3 = 3.0_f64.sqrt() / 2.0;
    let helpers = [
        Coord {
            x: centre.x,
            y: centre.y + r,
        },
        Coord {
            x: centre.x - r * half_root3,
            y: centre.y - r / 2.0,
        },
        Coord {
            x: centre.x + r * half_root3,
            y: centre.y - r / 2.0,
        },
    ];
    let all: MultiPoint<f64> = sites
        .iter()
        .chain(helpers.iter())
        .map(|c| Point(*c))
        .collect();
    let cells = all.voronoi_cells().map_err(|source| AreaError::Voronoi {
        district: district_name.to_owned(),
        source,
    })?;

    sites
        .iter()
        .enumerate()
        .map(|(site, c)| {
            // geo does not promise the cells in input order, so each site finds its own cell:
            // a site lies strictly inside its cell because the sites are distinct.
            let cell = cells
                .iter()
                .find(|cell| cell.contains(&Point(*c)))
                .ok_or_else(|| AreaError::MissingCell {
                    district: district_name.to_owned(),
                    site,
                })?;
            let area = district.intersection(cell);
            if area.0.is_empty() {
                return Err(AreaError::EmptyArea {
                    district: district_name.to_owned(),
                    site,
                });
            }
            Ok(area)
        })
        .collect()
}

fn extent_of(district: &MultiPolygon<f64>, sites: &[Coord<f64>]) -> Rect<f64> {
    let mut min = Coord {
        x: f64::INFINITY,
        y: f64::INFINITY,
    };
    let mut max = Coord {
        x: f64::NEG_INFINITY,
        y: f64::NEG_INFINITY,
    };
    let corners = district
        .bounding_rect()
        .map(|r| [r.min(), r.max()])
        .into_iter()
        .flatten();
    for c in corners.chain(sites.iter().copied()) {
        min.x = min.x.min(c.x);
        min.y = min.y.min(c.y);
        max.x = max.x.max(c.x);
        max.y = max.y.max(c.y);
    }
    Rect::new(min, max)
}

/// Turns a km-plane area into the WGS84 geometry that is written: coordinates rounded to 6
/// decimals, repeated points and rings that collapsed in the rounding removed, exterior
/// rings counter-clockwise and holes clockwise (RFC 7946).
pub fn to_output_area(area: &MultiPolygon<f64>, projection: &LocalProjection) -> MultiPolygon<f64> {
    clean_area(&projection.inverse_area(area)).orient(Direction::Default)
}

/// Rounds, and drops repeated points and the rings and polygons that collapse.
fn clean_area(area: &MultiPolygon<f64>) -> MultiPolygon<f64> {
    area.0
        .iter()
        .filter_map(|polygon| {
            let exterior = clean_ring(polygon.exterior())?;
            let interiors = polygon.interiors().iter().filter_map(clean_ring).collect();
            Some(Polygon::new(exterior, interiors))
        })
        .collect()
}

fn clean_ring(ring: &LineString<f64>) -> Option<LineString<f64>> {
    let mut coords: Vec<Coord<f64>> = Vec::with_capacity(ring.0.len() + 1);
    for c in &ring.0 {
        let c = Coord {
            x: round6(c.x),
            y: round6(c.y),
        };
        if coords.last() != Some(&c) {
            coords.push(c);
        }
    }
    while coords.len() > 1 && coords.first() == coords.last() {
        coords.pop();
    }
    if coords.len() < 3 {
        return None;
    }
    let mut ring = LineString::new(coords);
    ring.close();
    let collapsed = Polygon::new(ring.clone(), Vec::new()).unsigned_area() == 0.0;
    (!collapsed).then_some(ring)
}

/// Rounded points further apart than this (degrees, on either axis) are never unified: two
/// roundings of one point computed twice differ by at most one unit of the sixth decimal.
pub const SNAP_TOLERANCE: f64 = 1.5e-6;

/// How far (degrees) a meeting point may lie from a neighbouring district's edge and still be
/// taken as lying on it: rounding moves a point by at most 0.71e-6° (half a unit of the sixth
/// decimal on each axis).
pub const NODE_TOLERANCE: f64 = 0.75e-6;

/// How far (degrees) an input vertex may lie from an edge and count as exactly on it: float
/// noise only.
pub const EXACT_TOLERANCE: f64 = 1e-12;

type Key = (u64, u64);

/// Where a vertex offered for insertion comes from.
#[derive(Debug, Clone, Copy)]
struct Origin {
    district: usize,
    /// A vertex of the input boundary or districts.
    input: bool,
}

fn key(c: Coord<f64>) -> Key {
    (c.x.to_bits(), c.y.to_bits())
}

fn rings_mut(area: &mut MultiPolygon<f64>, mut f: impl FnMut(&mut LineString<f64>)) {
    for polygon in &mut area.0 {
        polygon.exterior_mut(&mut f);
        polygon.interiors_mut(|rings| rings.iter_mut().for_each(&mut f));
    }
}

fn rings(area: &MultiPolygon<f64>) -> impl Iterator<Item = &LineString<f64>> {
    area.0
        .iter()
        .flat_map(|p| std::iter::once(p.exterior()).chain(p.interiors()))
}

/// Makes the rounded outlines of neighbouring areas agree exactly, so that they meet without
/// slivers of overlap or gap. Each area comes from its own clipping, so a point two areas
/// share (a Voronoi vertex, or where a station border meets the district line) is computed
/// twice, a fraction of a millimetre apart, and now and then the two round to neighbouring
/// points of the 6-decimal grid; and where a station border meets a district line, the
/// neighbouring district's area has no vertex at all, and the rounded point lies up to 7 cm
/// off its straight edge. So, after rounding:
///
/// 1. vertices that are not input vertices and lie within [`SNAP_TOLERANCE`] of each other
///    become one: the input vertex among their neighbours if there is one (input vertices never
///    move), else the smallest of them (by longitude, then latitude);
/// 2. each such point is inserted into every edge of an area of *another* district that passes
///    within [`NODE_TOLERANCE`] of it, strictly between the edge's ends (step 1 already made the
///    areas of one district agree). An input vertex is inserted only where it lies exactly on
///    the edge: i_overlay drops a vertex that is collinear on its integer grid, in one clipping
///    and not in the other; and an input vertex can lie a hair from a station border that runs
///    past a district's corner, where inserting it would bend that border.
///
/// `districts[i]` is the district of `areas[i]`; `input_vertices` holds the rounded vertices of
/// the input boundary and districts.
pub fn make_borders_agree(
    areas: &mut [MultiPolygon<f64>],
    districts: &[usize],
    input_vertices: &HashSet<(u64, u64)>,
) {
    snap_vertices(areas, input_vertices);
    for area in areas.iter_mut() {
        *area = clean_area(area);
    }

    let mut points: Vec<GeomWithData<[f64; 2], Origin>> = Vec::new();
    let mut seen = HashSet::new();
    for (area, district) in areas.iter().zip(districts) {
        for c in rings(area).flat_map(|r| r.0.iter()) {
            if seen.insert((key(*c), *district)) {
                let origin = Origin {
                    district: *district,
                    input: input_vertices.contains(&key(*c)),
                };
                points.push(GeomWithData::new([c.x, c.y], origin));
            }
        }
    }
    let index = RTree::bulk_load(points);
    for (area, district) in areas.iter_mut().zip(districts) {
        rings_mut(area, |ring| node_ring(ring, *district, &index));
    }
}

/// Step 1 of [`make_borders_agree`].
fn snap_vertices(areas: &mut [MultiPolygon<f64>], input_vertices: &HashSet<Key>) {
    let mut vertices: Vec<Coord<f64>> = areas
        .iter()
        .flat_map(rings)
        .flat_map(|r| r.0.iter().copied())
        .collect();
    vertices.sort_by(|a, b| a.x.total_cmp(&b.x).then(a.y.total_cmp(&b.y)));
    vertices.dedup();
    let index = RTree::bulk_load(
        vertices
            .iter()
            .enumerate()
            .map(|(i, c)| GeomWithData::new([c.x, c.y], i))
            .collect(),
    );
    let near = |c: Coord<f64>| {
        index.locate_in_envelope(&AABB::from_corners(
            [c.x - SNAP_TOLERANCE, c.y - SNAP_TOLERANCE],
            [c.x + SNAP_TOLERANCE, c.y + SNAP_TOLERANCE],
        ))
    };

    let mut target: HashMap<Key, Coord<f64>> = HashMap::new();
    let mut done = vec![false; vertices.len()];
    // `vertices` is sorted, so the first member of each group is its smallest.
    for start in 0..vertices.len() {
        if done[start] || input_vertices.contains(&key(vertices[start])) {
            continue;
        }
        let mut group = vec![start];
        done[start] = true;
        let mut anchor: Option<usize> = None;
        let mut next = 0;
        while next < group.len() {
            for p in near(vertices[group[next]]) {
                let i = p.data;
                if input_vertices.contains(&key(vertices[i])) {
                    anchor = Some(anchor.map_or(i, |a| a.min(i)));
                } else if !done[i] {
                    done[i] = true;
                    group.push(i);
                }
            }
            next += 1;
        }
        let to = vertices[anchor.unwrap_or(start)];
        for i in group {
            if vertices[i] != to {
                target.insert(key(vertices[i]), to);
            }
        }
    }
    if target.is_empty() {
        return;
    }
    for area in areas.iter_mut() {
        rings_mut(area, |ring| {
            for c in ring.0.iter_mut() {
                if let Some(to) = target.get(&key(*c)) {
                    *c = *to;
                }
            }
        });
    }
}

fn node_ring(
    ring: &mut LineString<f64>,
    district: usize,
    index: &RTree<GeomWithData<[f64; 2], Origin>>,
) {
    let own: HashSet<Key> = ring.0.iter().map(|c| key(*c)).collect();
    let mut out: Vec<Coord<f64>> = Vec::with_capacity(ring.0.len());
    for edge in ring.lines() {
        out.push(edge.start);
        let (a, b) = (edge.start, edge.end);
        let d = b - a;
        let length2 = d.x * d.x + d.y * d.y;
        if length2 == 0.0 {
            continue;
        }
        let envelope = AABB::from_corners(
            [a.x.min(b.x) - NODE_TOLERANCE, a.y.min(b.y) - NODE_TOLERANCE],
            [a.x.max(b.x) + NODE_TOLERANCE, a.y.max(b.y) + NODE_TOLERANCE],
        );
        let mut on_edge: Vec<(f64, Coord<f64>)> = index
            .locate_in_envelope(&envelope)
            .filter(|p| p.data.district != district)
            .filter_map(|p| {
                let c = Coord {
                    x: p.geom()[0],
                    y: p.geom()[1],
                };
                if own.contains(&key(c)) {
                    return None;
                }
                let v = c - a;
                let t = (v.x * d.x + v.y * d.y) / length2;
                let off = (v.x * d.y - v.y * d.x).abs() / length2.sqrt();
                let tolerance = if p.data.input {
                    EXACT_TOLERANCE
                } else {
                    NODE_TOLERANCE
                };
                (t > 0.0 && t < 1.0 && off <= tolerance).then_some((t, c))
            })
            .collect();
        on_edge.sort_by(|x, y| x.0.total_cmp(&y.0).then(x.1.x.total_cmp(&y.1.x)));
        on_edge.dedup_by(|x, y| x.1 == y.1);
        out.extend(on_edge.into_iter().map(|(_, p)| p));
    }
    if let Some(first) = out.first().copied() {
        out.push(first);
    }
    ring.0 = out;
}

#[cfg(test)]
mod tests {
    use super::*;
    use geo::Intersects;

    fn square(x0: f64, y0: f64, x1: f64, y1: f64) -> MultiPolygon<f64> {
        MultiPolygon(vec![
            Rect::new(Coord { x: x0, y: y0 }, Coord { x: x1, y: y1 }).to_polygon(),
        ])
    }

    #[test]
    fn one_site_gets_the_district() {
        let d = square(0.0, 0.0, 10.0, 10.0);
        let areas = partition_district("d", &d, &[Coord { x: 3.0, y: 3.0 }]).unwrap();
        assert_eq!(areas, vec![d]);
    }

    #[test]
    fn collinear_sites_split_into_strips() {
        let d = square(0.0, 0.0, 30.0, 10.0);
        let sites = [
            Coord { x: 5.0, y: 5.0 },
            Coord { x: 15.0, y: 5.0 },
            Coord { x: 25.0, y: 5.0 },
        ];
        let areas = partition_district("d", &d, &sites).unwrap();
        assert_eq!(areas.len(), sites.len());
        for (area, site) in areas.iter().zip(sites) {
            assert!((area.unsigned_area() - 100.0).abs() < 1e-6, "{area:?}");
            assert!(area.intersects(&Point(site)));
        }
    }

    #[test]
    fn two_sites_split_at_the_bisector() {
        let d = square(0.0, 0.0, 10.0, 10.0);
        let sites = [Coord { x: 2.0, y: 2.0 }, Coord { x: 4.0, y: 2.0 }];
        let areas = partition_district("d", &d, &sites).unwrap();
        assert!((areas[0].unsigned_area() - 30.0).abs() < 1e-6);
        assert!((areas[1].unsigned_area() - 70.0).abs() < 1e-6);
    }

    #[test]
    fn overlapping_districts_are_tidied() {
        let boundary = square(0.0, 0.0, 10.0, 10.0);
        let districts = [square(-1.0, 0.0, 6.0, 10.0), square(4.0, 0.0, 10.0, 10.0)];
        let (tidied, uncovered) = tidy_districts(&boundary, &districts);
        assert!((tidied[0].unsigned_area() - 60.0).abs() < 1e-6);
        assert!((tidied[1].unsigned_area() - 40.0).abs() < 1e-6);
        assert!(uncovered.abs() < 1e-6);
    }

    #[test]
    fn t_junctions_are_noded() {
        // The left area has a vertex at (1, 0.5) on the right area's straight edge x = 1.
        let left = MultiPolygon(vec![Polygon::new(
            LineString::from(vec![
                (0.0, 0.0),
                (1.0, 0.0),
                (1.0, 0.5),
                (1.0, 1.0),
                (0.0, 1.0),
            ]),
            vec![],
        )]);
        let right = MultiPolygon(vec![Polygon::new(
            LineString::from(vec![(1.0, 0.0), (2.0, 0.0), (2.0, 1.0), (1.0, 1.0)]),
            vec![],
        )]);
        let mut areas = vec![left.clone(), right];
        let input: HashSet<(u64, u64)> = [(1.0, 0.0), (1.0, 1.0)]
            .iter()
            .map(|(x, y): &(f64, f64)| (x.to_bits(), y.to_bits()))
            .collect();
        make_borders_agree(&mut areas, &[0, 1], &input);
        assert_eq!(areas[0], left);
        assert_eq!(
            areas[1].0[0].exterior().0,
            vec![
                Coord { x: 1.0, y: 0.0 },
                Coord { x: 2.0, y: 0.0 },
                Coord { x: 2.0, y: 1.0 },
                Coord { x: 1.0, y: 1.0 },
                Coord { x: 1.0, y: 0.5 },
                Coord { x: 1.0, y: 0.0 },
            ]
        );
        // An input vertex exactly on the edge is inserted too.
        let mut with_input = vec![left, areas[1].clone()];
        with_input[1] = MultiPolygon(vec![Polygon::new(
            LineString::from(vec![(1.0, 0.0), (2.0, 0.0), (2.0, 1.0), (1.0, 1.0)]),
            vec![],
        )]);
        let expected = areas[1].clone();
        let input: HashSet<(u64, u64)> = [(1.0_f64, 0.5_f64)]
            .iter()
            .map(|(x, y)| (x.to_bits(), y.to_bits()))
            .collect();
        make_borders_agree(&mut with_input, &[0, 1], &input);
        assert_eq!(with_input[1], expected);
    }

    #[test]
    fn input_vertices_and_own_district_are_not_noded() {
        // (1.000001, 0.5) is an input vertex, a corner of the right area, 0.5e-6 from the left
        // area's slanted edge.
        let left = MultiPolygon(vec![Polygon::new(
            LineString::from(vec![(0.0, 0.0), (1.0, 0.0), (1.000001, 1.0), (0.0, 1.0)]),
            vec![],
        )]);
        let right = MultiPolygon(vec![Polygon::new(
            LineString::from(vec![
                (1.0, 0.0),
                (2.0, 0.0),
                (2.0, 1.0),
                (1.000001, 1.0),
                (1.000001, 0.5),
            ]),
            vec![],
        )]);
        let input: HashSet<(u64, u64)> = [(1.000001_f64, 0.5_f64)]
            .iter()
            .map(|(x, y)| (x.to_bits(), y.to_bits()))
            .collect();
        let mut areas = vec![left.clone(), right.clone()];
        make_borders_agree(&mut areas, &[0, 1], &input);
        assert_eq!(areas, vec![left.clone(), right.clone()]);
        let mut same_district = vec![left.clone(), right.clone()];
        make_borders_agree(&mut same_district, &[0, 0], &HashSet::new());
        assert_eq!(same_district, vec![left, right]);
    }

    #[test]
    fn output_is_rounded_and_counter_clockwise() {
        let p = LocalProjection::new(0.0, 0.0);
        // Clockwise in km, with a repeated point that the cleaning removes.
        let area = MultiPolygon(vec![Polygon::new(
            LineString::from(vec![
                (0.0, 0.0),
                (0.0, 1.0),
                (1.0, 1.0),
                (1.0, 1.0),
                (1.0, 0.0),
                (0.0, 0.0),
            ]),
            vec![],
        )]);
        let out = to_output_area(&area, &p);
        let ring = out.0[0].exterior();
        assert!(
            ring.0
                .iter()
                .all(|c| round6(c.x) == c.x && round6(c.y) == c.y)
        );
        assert!(geo::Winding::is_ccw(ring));
        assert_eq!(ring.0.len(), 5);
    }
}
