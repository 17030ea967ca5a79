//! A scenario file (TOML): what happens in the simulated hours. Fault reports at a base rate
//! spread by customers served, surges such as a typhoon moving along a track, the crews'
//! shifts and behaviour, travel and repair times. Every number is the file's; the defaults
//! here are only what a field left out means. `dispatch/scenarios/huizhou/` has examples
//! with the reasoning behind their numbers.

use crate::domain::{AreaClass, FaultCategory};
use crate::engine::EngineConfig;
use serde::Deserialize;
use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    pub name: String,
    /// Simulated hours from local midnight.
    pub hours: f64,
    #[serde(default = "default_seed")]
    pub seed: u64,
    pub calls: Calls,
    #[serde(default, rename = "surge")]
    pub surges: Vec<Surge>,
    #[serde(default)]
    pub crews: CrewBehaviour,
    #[serde(default)]
    pub travel: Travel,
    /// Repair time on site per category (log-normal); a category left out takes `default`.
    #[serde(default)]
    pub repair: Repair,
    /// Customers one incident of a category interrupts, for the customer-minutes; as the
    /// reliability report's `customers_per_incident` (supply categories only).
    #[serde(default)]
    pub customers_per_incident: BTreeMap<FaultCategory, u64>,
    /// The engine's settings (`[engine]` as in the service's configuration) under which the
    /// policies run; the policy itself is the simulator's to set.
    #[serde(default)]
    pub engine: EngineConfig,
}

fn default_seed() -> u64 {
    1
}

/// Fault reports on an ordinary day.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Calls {
    /// Reports a day over the whole region, spread over stations by customers served.
    pub base_per_day: f64,
    /// Relative weight of each hour of the day (24 values); flat when left out.
    #[serde(default)]
    pub hourly_profile: Option<Vec<f64>>,
    /// Relative weights of the categories.
    pub mix: BTreeMap<FaultCategory, f64>,
    /// Share of reports that repeat an open fault (another caller of the same outage).
    #[serde(default)]
    pub repeat_share: f64,
    /// Share of reports the agent marks emergency (hazards always are).
    #[serde(default)]
    pub emergency_share: f64,
    /// Share of reports from important customers (hospitals, water works).
    #[serde(default)]
    pub important_share: f64,
}

/// A surge of reports on top of the base: a storm's footprint moving along a track (one
/// point: a fixed area), its rate ramping up to a peak and decaying after it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Surge {
    pub name: String,
    pub start_hour: f64,
    pub peak_hour: f64,
    /// Reports an hour at the peak, over the whole region.
    pub peak_per_hour: f64,
    /// After the peak the rate falls by e every this many hours.
    pub decay_hours: f64,
    /// No surge reports after this hour; open-ended when left out.
    #[serde(default)]
    pub end_hour: Option<f64>,
    pub repeat_share: f64,
    /// `[lat, lon, hour]` points of the footprint's centre, in time order.
    pub track: Vec<[f64; 3]>,
    /// The footprint's radius (one standard deviation of a Gaussian), km.
    pub radius_km: f64,
    /// The footprint's intensity far from the centre, as a share of the centre's: wind and
    /// rain reach the whole region.
    #[serde(default)]
    pub floor: f64,
    pub mix: BTreeMap<FaultCategory, f64>,
    #[serde(default)]
    pub emergency_share: f64,
    #[serde(default)]
    pub important_share: f64,
    /// Repair times multiplied by this for the surge's faults (debris, flooding).
    #[serde(default = "one")]
    pub repair_factor: f64,
}

fn one() -> f64 {
    1.0
}

/// A uniform range of minutes.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Minutes {
    pub min: f64,
    pub max: f64,
}

impl Minutes {
    const fn new(min: f64, max: f64) -> Self {
        Self { min, max }
    }
}

/// A shift: crews on it are on duty from `start_hour` for `hours`, every day.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Shift {
    pub start_hour: f64,
    pub hours: f64,
    /// Share of each station's crews on this shift.
    pub share: f64,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CrewBehaviour {
    /// Every crew works one shift; the shares add up to 1.
    #[serde(rename = "shift")]
    pub shifts: Vec<Shift>,
    /// Chance that a crew misses a dispatch and lets it time out.
    pub ack_miss: f64,
    /// From dispatch to the acknowledgement.
    pub ack_minutes: Minutes,
    /// From the acknowledgement to setting off.
    pub ready_minutes: Minutes,
    /// From restoration to the returned work order (the crew is still bound).
    pub order_minutes: Minutes,
    /// From a missed acknowledgement to the crew reporting in again.
    pub back_in_touch_minutes: Minutes,
    /// A crew with nothing to do drives back to its station.
    pub return_to_station: bool,
}

impl Default for CrewBehaviour {
    fn default() -> Self {
        Self {
            shifts: vec![Shift {
                start_hour: 0.0,
                hours: 24.0,
                share: 1.0,
            }],
            ack_miss: 0.03,
            ack_minutes: Minutes::new(0.5, 3.0),
            ready_minutes: Minutes::new(1.0, 5.0),
            order_minutes: Minutes::new(5.0, 15.0),
            back_in_touch_minutes: Minutes::new(10.0, 30.0),
            return_to_station: true,
        }
    }
}

/// How fast crews really drive (the engine estimates with its own speeds).
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Travel {
    /// Road distance ÷ great-circle distance.
    pub circuity: f64,
    pub urban_kmh: f64,
    pub rural_kmh: f64,
    pub remote_kmh: f64,
    /// Each trip's time is multiplied by a log-normal factor of median 1 and this sigma…
    pub sigma: f64,
    /// …kept within these bounds (no trip is more than this much faster than the norm).
    pub min_factor: f64,
    pub max_factor: f64,
}

impl Default for Travel {
    fn default() -> Self {
        Self {
            circuity: 1.3,
            urban_kmh: 25.0,
            rural_kmh: 40.0,
            remote_kmh: 30.0,
            sigma: 0.25,
            min_factor: 0.7,
            max_factor: 2.5,
        }
    }
}

impl Travel {
    pub fn kmh(&self, class: AreaClass) -> f64 {
        match class {
            AreaClass::Urban => self.urban_kmh,
            AreaClass::Rural => self.rural_kmh,
            AreaClass::Remote => self.remote_kmh,
        }
    }

    /// Minutes per km at the fastest any trip can go: the lower bound's pace.
    pub fn fastest_minutes_per_km(&self) -> f64 {
        let fastest = self.urban_kmh.max(self.rural_kmh).max(self.remote_kmh);
        self.circuity * self.min_factor / fastest * 60.0
    }
}

/// A log-normal duration: `median` minutes, `sigma` the log's standard deviation.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogNormalMinutes {
    pub median: f64,
    pub sigma: f64,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Repair {
    pub default: LogNormalMinutes,
    pub by_category: BTreeMap<FaultCategory, LogNormalMinutes>,
}

impl Default for Repair {
    fn default() -> Self {
        Self {
            default: LogNormalMinutes {
                median: 45.0,
                sigma: 0.6,
            },
            by_category: BTreeMap::new(),
        }
    }
}

impl Repair {
    pub fn of(&self, category: FaultCategory) -> LogNormalMinutes {
        self.by_category
            .get(&category)
            .copied()
            .unwrap_or(self.default)
    }
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ScenarioError {
    #[error("cannot read the scenario: {0}")]
    Parse(String),
    #[error("{0}")]
    Invalid(String),
}

impl Scenario {
    /// Parses and validates a scenario file's text.
    pub fn from_toml(text: &str) -> Result<Self, ScenarioError> {
        use figment::Figment;
        use figment::providers::{Format, Toml};
        let scenario: Scenario = Figment::from(Toml::string(text))
            .extract()
            .map_err(|e| ScenarioError::Parse(e.to_string()))?;
        scenario.validate()?;
        Ok(scenario)
    }

    pub fn validate(&self) -> Result<(), ScenarioError> {
        let invalid = |what: &str| Err(ScenarioError::Invalid(what.to_owned()));
        let finite_non_negative = |x: f64| x.is_finite() && x >= 0.0;
        let share = |x: f64| (0.0..=1.0).contains(&x);
        // Upper bounds keep every instant the run computes far inside the clock's range and
        // the calls drawn up front within memory: a typo of a few zeros is refused, not run.
        if !(self.hours.is_finite() && self.hours > 0.0 && self.hours <= MAX_HOURS) {
            return invalid(&format!("hours must be positive and at most {MAX_HOURS}"));
        }
        if !(finite_non_negative(self.calls.base_per_day)
            && self.calls.base_per_day <= MAX_CALLS_PER_DAY)
        {
            return invalid(&format!(
                "calls.base_per_day must be between 0 and {MAX_CALLS_PER_DAY}"
            ));
        }
        check_mix("calls.mix", &self.calls.mix)?;
        if let Some(profile) = &self.calls.hourly_profile
            && (profile.len() != 24
                || !profile.iter().all(|&w| finite_non_negative(w))
                || profile.iter().sum::<f64>() <= 0.0)
        {
            return invalid("calls.hourly_profile must be 24 weights, not all zero");
        }
        for s in [
            self.calls.repeat_share,
            self.calls.emergency_share,
            self.calls.important_share,
        ] {
            if !share(s) {
                return invalid("calls shares must be between 0 and 1");
            }
        }
        for surge in &self.surges {
            let name = &surge.name;
            check_mix(&format!("surge {name}: mix"), &surge.mix)?;
            if !(surge.start_hour <= surge.peak_hour
                && finite_non_negative(surge.start_hour)
                && surge.peak_hour.is_finite())
            {
                return invalid(&format!("surge {name}: start_hour ≤ peak_hour, both ≥ 0"));
            }
            if surge
                .end_hour
                .is_some_and(|end| !(end.is_finite() && end >= surge.start_hour))
            {
                return invalid(&format!(
                    "surge {name}: end_hour must not come before start_hour"
                ));
            }
            if !(finite_non_negative(surge.peak_per_hour)
                && surge.peak_per_hour <= MAX_CALLS_PER_DAY / 24.0
                && surge.decay_hours > 0.0
                && surge.decay_hours.is_finite()
                && surge.radius_km > 0.0
                && surge.radius_km.is_finite()
                && surge.repair_factor > 0.0
                && surge.repair_factor.is_finite())
            {
                return invalid(&format!(
                    "surge {name}: peak_per_hour ≥ 0; decay_hours, radius_km, repair_factor > 0"
                ));
            }
            if ![
                surge.repeat_share,
                surge.floor,
                surge.emergency_share,
                surge.important_share,
            ]
            .into_iter()
            .all(share)
            {
                return invalid(&format!("surge {name}: shares must be between 0 and 1"));
            }
            if surge.track.is_empty()
                || surge.track.windows(2).any(|w| w[0][2] > w[1][2])
                || surge
                    .track
                    .iter()
                    .any(|p| crate::domain::LatLon::new(p[0], p[1]).is_err() || !p[2].is_finite())
            {
                return invalid(&format!(
                    "surge {name}: track must be [lat, lon, hour] points in time order"
                ));
            }
        }
        let crews = &self.crews;
        if crews.shifts.is_empty()
            || (crews.shifts.iter().map(|s| s.share).sum::<f64>() - 1.0).abs() > 1e-6
            || !crews.shifts.iter().all(|s| {
                share(s.share)
                    && s.hours > 0.0
                    && s.hours <= 24.0
                    && finite_non_negative(s.start_hour)
            })
        {
            return invalid("crews.shift: shares adding up to 1, hours in (0, 24]");
        }
        if !share(crews.ack_miss) {
            return invalid("crews.ack_miss must be between 0 and 1");
        }
        for (name, range) in [
            ("ack_minutes", crews.ack_minutes),
            ("ready_minutes", crews.ready_minutes),
            ("order_minutes", crews.order_minutes),
            ("back_in_touch_minutes", crews.back_in_touch_minutes),
        ] {
            if !(finite_non_negative(range.min)
                && range.min <= range.max
                && range.max <= MAX_DURATION_MINUTES)
            {
                return invalid(&format!(
                    "crews.{name}: 0 ≤ min ≤ max ≤ {MAX_DURATION_MINUTES}"
                ));
            }
        }
        let t = &self.travel;
        let speeds_positive = [t.circuity, t.urban_kmh, t.rural_kmh, t.remote_kmh]
            .into_iter()
            .all(|x| x.is_finite() && x > 0.0);
        let factors_around_one = t.min_factor > 0.0
            && t.min_factor <= 1.0
            && t.max_factor >= 1.0
            && t.max_factor <= MAX_TRAVEL_FACTOR;
        if !(speeds_positive
            && finite_non_negative(t.sigma)
            && t.sigma <= MAX_SIGMA
            && factors_around_one)
        {
            return invalid(&format!(
                "travel: positive speeds and circuity, 0 < min_factor ≤ 1 ≤ max_factor ≤ \
                 {MAX_TRAVEL_FACTOR}, 0 ≤ sigma ≤ {MAX_SIGMA}"
            ));
        }
        for d in std::iter::once(&self.repair.default).chain(self.repair.by_category.values()) {
            if !(d.median > 0.0
                && d.median <= MAX_DURATION_MINUTES
                && finite_non_negative(d.sigma)
                && d.sigma <= MAX_SIGMA)
            {
                return invalid(&format!(
                    "repair: 0 < median ≤ {MAX_DURATION_MINUTES} and 0 ≤ sigma ≤ {MAX_SIGMA}"
                ));
            }
        }
        let reliability = crate::reports::ReliabilityConfig {
            customers_per_incident: self.customers_per_incident.clone(),
            ..Default::default()
        };
        reliability
            .validate()
            .map_err(|e| ScenarioError::Invalid(e.to_string()))?;
        self.engine
            .validate()
            .map_err(|e| ScenarioError::Invalid(format!("engine: {e}")))?;
        Ok(())
    }
}

/// The longest scenario: two weeks.
const MAX_HOURS: f64 = 24.0 * 14.0;
/// More calls a day than a province's whole typhoon (214,000) many times over.
const MAX_CALLS_PER_DAY: f64 = 1_000_000.0;
/// A week: no repair, drive or crew delay is longer.
const MAX_DURATION_MINUTES: f64 = 7.0 * 24.0 * 60.0;
/// The log-normal spreads: e^(2·4) ≈ 3,000 times the median four deviations out.
const MAX_SIGMA: f64 = 2.0;
const MAX_TRAVEL_FACTOR: f64 = 10.0;

fn check_mix(name: &str, mix: &BTreeMap<FaultCategory, f64>) -> Result<(), ScenarioError> {
    if mix.values().all(|w| w.is_finite() && *w >= 0.0) && mix.values().sum::<f64>() > 0.0 {
        Ok(())
    } else {
        Err(ScenarioError::Invalid(format!(
            "{name}: weights must be zero or more, not all zero"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SMALL: &str = r#"
        name = "small"
        hours = 6
        [calls]
        base_per_day = 100
        mix = { no_power = 3, area_outage = 1 }
        [[surge]]
        name = "squall"
        start_hour = 1
        peak_hour = 2
        peak_per_hour = 50
        decay_hours = 1
        repeat_share = 0.5
        track = [[23.1, 114.4, 1.0]]
        radius_km = 20
        mix = { line_down = 1 }
        [repair.by_category]
        line_down = { median = 120, sigma = 0.5 }
    "#;

    #[test]
    fn a_scenario_reads_with_defaults_for_what_it_leaves_out() {
        let scenario = Scenario::from_toml(SMALL).unwrap();
        assert_eq!(scenario.seed, 1);
        assert_eq!(scenario.surges.len(), 1);
        assert_eq!(scenario.crews.shifts.len(), 1);
        assert_eq!(scenario.repair.of(FaultCategory::LineDown).median, 120.0);
        assert_eq!(scenario.repair.of(FaultCategory::Meter).median, 45.0);
        assert_eq!(scenario.engine, EngineConfig::default());
    }

    #[test]
    fn nonsense_is_refused_with_the_field_named() {
        let unknown = SMALL.replace("hours = 6", "hours = 6\ntypo = 1");
        assert!(matches!(
            Scenario::from_toml(&unknown),
            Err(ScenarioError::Parse(_))
        ));
        let negative = SMALL.replace("base_per_day = 100", "base_per_day = -1");
        let error = Scenario::from_toml(&negative).unwrap_err().to_string();
        assert!(error.contains("base_per_day"), "{error}");
        let shifts = format!("{SMALL}\n[[crews.shift]]\nstart_hour = 8\nhours = 12\nshare = 0.5\n");
        let error = Scenario::from_toml(&shifts).unwrap_err().to_string();
        assert!(error.contains("shift"), "{error}");
        let backwards = SMALL.replace(
            "[[23.1, 114.4, 1.0]]",
            "[[23.1, 114.4, 3.0], [23.2, 114.5, 1.0]]",
        );
        let error = Scenario::from_toml(&backwards).unwrap_err().to_string();
        assert!(error.contains("track"), "{error}");
    }

    /// Values a few zeros too large: refused at load, where before they ran for ever
    /// (`hours`), or wrapped the run's clock (a repair of 1e300 minutes).
    #[test]
    fn values_beyond_any_storm_are_refused_with_the_field_named() {
        let cases = [
            ("hours = 6", "hours = 1e12", "hours"),
            ("base_per_day = 100", "base_per_day = 1e9", "base_per_day"),
            ("peak_per_hour = 50", "peak_per_hour = 1e9", "peak_per_hour"),
            (
                "decay_hours = 1",
                "decay_hours = 1\nend_hour = 0.5",
                "end_hour",
            ),
            (
                "median = 120, sigma = 0.5",
                "median = 1e300, sigma = 0.5",
                "repair",
            ),
            (
                "median = 120, sigma = 0.5",
                "median = 120, sigma = 40",
                "repair",
            ),
        ];
        for (from, to, field) in cases {
            assert!(SMALL.contains(from), "{from}");
            let text = SMALL.replace(from, to);
            let error = Scenario::from_toml(&text)
                .map(|_| ())
                .unwrap_err()
                .to_string();
            assert!(error.contains(field), "{to}: {error}");
        }
        let travel = format!("{SMALL}\n[travel]\nmax_factor = 1e6\n");
        let error = Scenario::from_toml(&travel)
            .map(|_| ())
            .unwrap_err()
            .to_string();
        assert!(error.contains("max_factor"), "{error}");
        // The bundled scenarios stay well inside.
        for file in ["normal-day.toml", "typhoon.toml"] {
            let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("scenarios/huizhou")
                .join(file);
            let text = std::fs::read_to_string(&path).unwrap();
            assert!(Scenario::from_toml(&text).is_ok(), "{file}");
        }
    }
}
