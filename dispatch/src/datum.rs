//! Chinese map datums to WGS84. Phones and map apps in China report GCJ-02 (Amap, Tencent,
//! WeChat) or BD-09 (Baidu), about half a kilometre off WGS84 around Huizhou: enough to pick
//! the wrong station near a border, so every location is converted before anything else.
//!
//! GCJ-02 is published only as a forward transform (WGS84 → GCJ-02, on the Krasovsky
//! ellipsoid); its inverse here is found by fixed-point iteration on that forward formula,
//! which converges to well under a millimetre in a few steps because the offset varies slowly.
//! BD-09 is a further rotation and scaling of GCJ-02, whose public inverse is refined the same
//! way. Outside mainland China both apps report WGS84 unchanged, and so does this.

use std::f64::consts::PI;

/// The datum a client's coordinates are in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Datum {
    #[default]
    Wgs84,
    Gcj02,
    Bd09,
}

/// Semi-major axis of the Krasovsky 1940 ellipsoid, as in the public GCJ-02 formula.
const A: f64 = 6_378_245.0;
/// Its first eccentricity squared.
#[allow(clippy::excessive_precision)] // written as published, to be checked against it by eye
const EE: f64 = 0.006_693_421_622_965_943_23;
/// The BD-09 constant: π × 3000 / 180.
const X_PI: f64 = PI * 3000.0 / 180.0;
/// Iterations stop once a step moves less than this (degrees; about 0.1 mm).
const TOLERANCE_DEG: f64 = 1e-9;
const MAX_ITERATIONS: usize = 30;

/// `(lat, lon)` in `datum` to WGS84 `(lat, lon)`. Non-finite input comes back unchanged, so
/// the caller's range check still sees it.
pub fn to_wgs84(datum: Datum, lat: f64, lon: f64) -> (f64, f64) {
    if !(lat.is_finite() && lon.is_finite()) {
        return (lat, lon);
    }
    match datum {
        Datum::Wgs84 => (lat, lon),
        Datum::Gcj02 => gcj02_to_wgs84(lat, lon),
        // Outside China Baidu's coordinates are not shifted either (as the module says).
        Datum::Bd09 if out_of_china(lat, lon) => (lat, lon),
        Datum::Bd09 => {
            let (lat, lon) = bd09_to_gcj02(lat, lon);
            gcj02_to_wgs84(lat, lon)
        }
    }
}

/// The rough box the GCJ-02 offset applies in (the formula's own test, as published).
fn out_of_china(lat: f64, lon: f64) -> bool {
    !(72.004..=137.8347).contains(&lon) || !(0.8293..=55.8271).contains(&lat)
}

fn transform_lat(x: f64, y: f64) -> f64 {
    let mut r = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * x.abs().sqrt();
    r += (20.0 * (6.0 * x * PI).sin() + 20.0 * (2.0 * x * PI).sin()) * 2.0 / 3.0;
    r += (20.0 * (y * PI).sin() + 40.0 * (y / 3.0 * PI).sin()) * 2.0 / 3.0;
    r += (160.0 * (y / 12.0 * PI).sin() + 320.0 * (y * PI / 30.0).sin()) * 2.0 / 3.0;
    r
}

fn transform_lon(x: f64, y: f64) -> f64 {
    let mut r = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * x.abs().sqrt();
    r += (20.0 * (6.0 * x * PI).sin() + 20.0 * (2.0 * x * PI).sin()) * 2.0 / 3.0;
    r += (20.0 * (x * PI).sin() + 40.0 * (x / 3.0 * PI).sin()) * 2.0 / 3.0;
    r += (150.0 * (x / 12.0 * PI).sin() + 300.0 * (x / 30.0 * PI).sin()) * 2.0 / 3.0;
    r
}

/// The public forward transform, WGS84 → GCJ-02.
pub fn wgs84_to_gcj02(lat: f64, lon: f64) -> (f64, f64) {
    if out_of_china(lat, lon) {
        return (lat, lon);
    }
    let dlat = transform_lat(lon - 105.0, lat - 35.0);
    let dlon = transform_lon(lon - 105.0, lat - 35.0);
    let radlat = lat / 180.0 * PI;
    let magic = 1.0 - EE * radlat.sin() * radlat.sin();
    let sqrt_magic = magic.sqrt();
    let dlat = (dlat * 180.0) / ((A * (1.0 - EE)) / (magic * sqrt_magic) * PI);
    let dlon = (dlon * 180.0) / (A / sqrt_magic * radlat.cos() * PI);
    (lat + dlat, lon + dlon)
}

/// GCJ-02 → WGS84: the point whose forward transform is the given one.
pub fn gcj02_to_wgs84(lat: f64, lon: f64) -> (f64, f64) {
    invert(lat, lon, wgs84_to_gcj02)
}

/// The public forward transform, GCJ-02 → BD-09.
pub fn gcj02_to_bd09(lat: f64, lon: f64) -> (f64, f64) {
    let (x, y) = (lon, lat);
    let z = (x * x + y * y).sqrt() + 0.000_02 * (y * X_PI).sin();
    let theta = y.atan2(x) + 0.000_003 * (x * X_PI).cos();
    (z * theta.sin() + 0.006, z * theta.cos() + 0.0065)
}

/// BD-09 → GCJ-02: the public inverse formula, which is itself approximate, refined against
/// the forward transform.
pub fn bd09_to_gcj02(lat: f64, lon: f64) -> (f64, f64) {
    let (x, y) = (lon - 0.0065, lat - 0.006);
    let z = (x * x + y * y).sqrt() - 0.000_02 * (y * X_PI).sin();
    let theta = y.atan2(x) - 0.000_003 * (x * X_PI).cos();
    let start = (z * theta.sin(), z * theta.cos());
    refine(start, (lat, lon), gcj02_to_bd09)
}

fn invert(lat: f64, lon: f64, forward: fn(f64, f64) -> (f64, f64)) -> (f64, f64) {
    refine((lat, lon), (lat, lon), forward)
}

/// Fixed-point iteration: move the guess by the forward transform's miss until it hits.
fn refine(
    mut guess: (f64, f64),
    target: (f64, f64),
    forward: fn(f64, f64) -> (f64, f64),
) -> (f64, f64) {
    for _ in 0..MAX_ITERATIONS {
        let (flat, flon) = forward(guess.0, guess.1);
        let (dlat, dlon) = (flat - target.0, flon - target.1);
        guess = (guess.0 - dlat, guess.1 - dlon);
        if dlat.abs() < TOLERANCE_DEG && dlon.abs() < TOLERANCE_DEG {
            break;
        }
    }
    guess
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn close(a: (f64, f64), b: (f64, f64), tolerance: f64) -> bool {
        (a.0 - b.0).abs() <= tolerance && (a.1 - b.1).abs() <= tolerance
    }

    // Published pairs of wandergis/coordtransform (Tiananmen, lon 116.404, lat 39.915), the
    // reference most Chinese implementations check against.
    const WGS: (f64, f64) = (39.915, 116.404);
    const GCJ_OF_WGS: (f64, f64) = (39.916_404_281_501_64, 116.410_244_499_169_38);
    const BD_OF_WGS: (f64, f64) = (39.922_699_552_216_216, 116.416_627_243_787_33);
    const BD_OF_POINT: (f64, f64) = (39.921_336_993_510_21, 116.410_369_493_710_29);
    const GCJ_OF_BD_POINT: (f64, f64) = (39.908_656_739_576_31, 116.397_627_291_193_15);

    #[test]
    fn forward_gcj02_matches_the_published_pair() {
        assert!(close(wgs84_to_gcj02(WGS.0, WGS.1), GCJ_OF_WGS, 1e-12));
    }

    #[test]
    fn forward_bd09_matches_the_published_pair() {
        assert!(close(gcj02_to_bd09(WGS.0, WGS.1), BD_OF_POINT, 1e-12));
    }

    #[test]
    fn inverse_gcj02_returns_the_published_wgs84_point() {
        let back = to_wgs84(Datum::Gcj02, GCJ_OF_WGS.0, GCJ_OF_WGS.1);
        assert!(close(back, WGS, 1e-8), "{back:?}");
    }

    #[test]
    fn inverse_bd09_returns_the_published_wgs84_point() {
        let back = to_wgs84(Datum::Bd09, BD_OF_WGS.0, BD_OF_WGS.1);
        assert!(close(back, WGS, 1e-8), "{back:?}");
    }

    #[test]
    fn bd09_to_gcj02_is_close_to_the_published_approximate_inverse() {
        // The published inverse is approximate; the refined one differs by under 1e-5°.
        let gcj = bd09_to_gcj02(WGS.0, WGS.1);
        assert!(close(gcj, GCJ_OF_BD_POINT, 1e-5), "{gcj:?}");
        assert!(close(gcj02_to_bd09(gcj.0, gcj.1), WGS, 1e-9));
    }

    #[test]
    fn huizhou_offset_is_about_half_a_kilometre() {
        // Huizhou city centre: the datum error the contract warns about.
        let (lat, lon) = (23.11, 114.41);
        let (glat, glon) = wgs84_to_gcj02(lat, lon);
        let km = crate::domain::LatLon::new(lat, lon)
            .unwrap()
            .haversine_km(crate::domain::LatLon::new(glat, glon).unwrap());
        assert!((0.3..0.8).contains(&km), "{km} km");
    }

    #[test]
    fn outside_china_nothing_moves() {
        assert_eq!(to_wgs84(Datum::Gcj02, 48.85, 2.35), (48.85, 2.35));
        assert_eq!(to_wgs84(Datum::Bd09, 48.85, 2.35), (48.85, 2.35));
        assert_eq!(wgs84_to_gcj02(-33.9, 151.2), (-33.9, 151.2));
    }

    #[test]
    fn non_finite_input_is_left_for_the_range_check() {
        let (lat, lon) = to_wgs84(Datum::Gcj02, f64::NAN, 114.0);
        assert!(lat.is_nan());
        assert_eq!(lon, 114.0);
    }

    proptest! {
        /// Forward then inverse returns the point within 1e-6° anywhere in mainland China's box.
        #[test]
        fn gcj02_round_trip(lat in 18.0f64..53.0, lon in 74.0f64..134.0) {
            let (glat, glon) = wgs84_to_gcj02(lat, lon);
            let back = to_wgs84(Datum::Gcj02, glat, glon);
            prop_assert!(close(back, (lat, lon), 1e-6), "{back:?} vs {:?}", (lat, lon));
        }

        #[test]
        fn bd09_round_trip(lat in 18.0f64..53.0, lon in 74.0f64..134.0) {
            let (glat, glon) = wgs84_to_gcj02(lat, lon);
            let (blat, blon) = gcj02_to_bd09(glat, glon);
            let back = to_wgs84(Datum::Bd09, blat, blon);
            prop_assert!(close(back, (lat, lon), 1e-6), "{back:?} vs {:?}", (lat, lon));
        }
    }
}
