//! The engine's tunables. Every limit is configuration; the defaults are the issue's and
//! `shared/domain.md`'s figures, and the dispatch policy with its batch and storm settings.

use crate::domain::{AreaClass, SlaPolicy};
use serde::{Deserialize, Serialize};

/// Average road speed by the area class of the ticket's station, km/h.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Speeds {
    pub urban: f64,
    pub rural: f64,
    pub remote: f64,
}

impl Default for Speeds {
    fn default() -> Self {
        Self {
            urban: 25.0,
            rural: 40.0,
            remote: 30.0,
        }
    }
}

impl Speeds {
    pub fn for_class(&self, class: AreaClass) -> f64 {
        match class {
            AreaClass::Urban => self.urban,
            AreaClass::Rural => self.rural,
            AreaClass::Remote => self.remote,
        }
    }
}

/// How the engine gives free crews to tickets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DispatchPolicy {
    /// Each ticket at once to the nearest free skilled crew, the own station's first unless
    /// a neighbour's arrives more than `own_station_margin_minutes` sooner; a neighbour's
    /// crew only within `borrow_reach_minutes`.
    #[default]
    Nearest,
    /// Each ticket at once to its own station's nearest free skilled crew, and to no other:
    /// what a station's duty lead does. It waits while its station has none free.
    Station,
    /// Tickets wait; [`super::Command::AssignBatch`], run every `batch.interval_seconds`,
    /// gives the waiting ones to the free crews in one optimal assignment.
    Batch,
}

impl DispatchPolicy {
    pub const ALL: [DispatchPolicy; 3] = [
        DispatchPolicy::Nearest,
        DispatchPolicy::Station,
        DispatchPolicy::Batch,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            DispatchPolicy::Nearest => "nearest",
            DispatchPolicy::Station => "station",
            DispatchPolicy::Batch => "batch",
        }
    }

    /// The policy of a name as configuration and the command line spell it.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.as_str() == name)
    }
}

impl std::fmt::Display for DispatchPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `[engine.batch]`: the size of each assignment and what its cost weighs. A pair's score is
/// in minutes of travel (see `engine/batch.rs`): sending a crew to a ticket is worth the
/// bonuses below, minus the minutes it drives.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BatchConfig {
    /// How often a driver should run `AssignBatch` (the engine keeps no timer itself).
    pub interval_seconds: u32,
    /// The most urgent waiting tickets (in serving order) always in the assignment.
    pub max_tickets: u32,
    /// Also in it: each free crew's nearest waiting tickets it can take, this many.
    pub tickets_per_crew: u32,
    /// Free crews in it: each candidate ticket's nearest eligible ones, this many.
    pub crews_per_ticket: u32,
    /// Worth of serving an emergency, in minutes of travel.
    pub emergency_minutes: f64,
    /// Worth of serving an important customer, in minutes of travel.
    pub important_minutes: f64,
    /// Worth of an arrival within the ticket's deadline, in minutes of travel; up to twice
    /// this as the last moment to make it comes closer.
    pub on_time_minutes: f64,
    /// Worth of each minute a ticket has waited, so that no ticket waits for ever. Kept
    /// small: in the simulated typhoon 0.25 (an hour's wait worth 15 minutes' drive) sent
    /// crews to tickets already late and halved the arrivals in time.
    pub wait_weight: f64,
}

impl Default for BatchConfig {
    fn default() -> Self {
        Self {
            interval_seconds: 30,
            max_tickets: 100,
            tickets_per_crew: 16,
            crews_per_ticket: 6,
            emergency_minutes: 60.0,
            important_minutes: 30.0,
            on_time_minutes: 60.0,
            wait_weight: 0.02,
        }
    }
}

/// `[engine.storm]`: when the engine leaves its policy for `batch` by itself. A supervisor
/// can switch storm mode on or off whatever these say.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StormConfig {
    /// Storm mode begins when this many tickets wait (40 by default: in the simulated
    /// typhoon one-by-one dispatch spends each freed crew on the oldest ticket in its reach,
    /// mostly already late, and storm mode restores arrivals in time); `None`: only by a
    /// supervisor's switch.
    /// Storm mode needs a driver that runs `AssignBatch` (the service has one).
    pub enter_queue: Option<u32>,
    /// Storm mode ends when, after an assignment, at most this many tickets still wait.
    pub leave_queue: u32,
}

impl Default for StormConfig {
    fn default() -> Self {
        Self {
            enter_queue: Some(40),
            leave_queue: 5,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EngineConfig {
    pub sla: SlaPolicy,
    /// Road distance ÷ great-circle distance.
    pub circuity: f64,
    pub speed_kmh: Speeds,
    /// A neighbouring station's crew is sent only when it arrives this much sooner than the
    /// ticket's own station's best crew.
    pub own_station_margin_minutes: f64,
    /// Under `nearest`, a ticket takes a crew of another station only when that crew's
    /// estimated travel is at most this many minutes; its own station's crews may always go.
    /// A ticket with no such crew free waits for one, as when no crew is free at all. Unset
    /// (the default): the arrival limit of the ticket's area class (`sla.arrive_urban`,
    /// `arrive_rural`, `arrive_remote`: 45 / 90 / 120 min), since a crew that cannot make
    /// the commitment even if sent at the report is no help worth a drive across the city
    /// while work waits near it. `inf`: no limit (any free crew, however far). `batch`
    /// ignores it: its score already weighs every minute of travel.
    pub borrow_reach_minutes: Option<f64>,
    /// A point outside every service area goes to the nearest one within this distance.
    pub outside_area_limit_km: f64,
    /// A crew's position fix farther than this outside the box bounding every service area
    /// is refused (an arrival's fix is ignored instead): a phone's GPS glitch (0°N 0°E) must
    /// not move a crew out of reach of every ticket. Crews working near the region's edge
    /// stay well inside it. At least `outside_area_limit_km`, so a crew at any ticket the
    /// service accepted may report from there.
    pub crew_fix_limit_km: f64,
    /// A report this close to an open incident of a compatible category is a repeat…
    pub merge_radius_m: f64,
    /// …if that incident's latest report is at most this old.
    pub merge_window_minutes: u32,
    /// The policy outside storm mode.
    pub policy: DispatchPolicy,
    pub batch: BatchConfig,
    pub storm: StormConfig,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            sla: SlaPolicy::default(),
            circuity: 1.3,
            speed_kmh: Speeds::default(),
            own_station_margin_minutes: 10.0,
            borrow_reach_minutes: None,
            outside_area_limit_km: 5.0,
            crew_fix_limit_km: 50.0,
            merge_radius_m: 300.0,
            merge_window_minutes: 120,
            policy: DispatchPolicy::Nearest,
            batch: BatchConfig::default(),
            storm: StormConfig::default(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ConfigError {
    #[error("{0} must be a positive, finite number")]
    NotPositive(&'static str),
    #[error("{0} must be zero or more and finite")]
    Negative(&'static str),
    #[error("{0} must be zero or more (inf: no limit)")]
    NegativeReach(&'static str),
    #[error("{0} must be at least 1")]
    Zero(&'static str),
    #[error(
        "crew_fix_limit_km must be at least outside_area_limit_km, or a crew at a ticket the \
         service accepted could not report its position there"
    )]
    CrewFixLimitBelowAreaLimit,
    #[error("storm.leave_queue must be below storm.enter_queue, or storm mode would never end")]
    StormNeverEnds,
    #[error(transparent)]
    Sla(#[from] crate::domain::SlaPolicyError),
}

impl EngineConfig {
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.sla.validate()?;
        for (name, value) in [
            ("circuity", self.circuity),
            ("speed_kmh.urban", self.speed_kmh.urban),
            ("speed_kmh.rural", self.speed_kmh.rural),
            ("speed_kmh.remote", self.speed_kmh.remote),
        ] {
            if !(value.is_finite() && value > 0.0) {
                return Err(ConfigError::NotPositive(name));
            }
        }
        for (name, value) in [
            (
                "own_station_margin_minutes",
                self.own_station_margin_minutes,
            ),
            ("outside_area_limit_km", self.outside_area_limit_km),
            ("crew_fix_limit_km", self.crew_fix_limit_km),
            ("merge_radius_m", self.merge_radius_m),
            ("batch.emergency_minutes", self.batch.emergency_minutes),
            ("batch.important_minutes", self.batch.important_minutes),
            ("batch.on_time_minutes", self.batch.on_time_minutes),
            ("batch.wait_weight", self.batch.wait_weight),
        ] {
            if !(value.is_finite() && value >= 0.0) {
                return Err(ConfigError::Negative(name));
            }
        }
        if self
            .borrow_reach_minutes
            .is_some_and(|reach| reach.is_nan() || reach < 0.0)
        {
            return Err(ConfigError::NegativeReach("borrow_reach_minutes"));
        }
        for (name, value) in [
            ("batch.interval_seconds", self.batch.interval_seconds),
            ("batch.max_tickets", self.batch.max_tickets),
            ("batch.crews_per_ticket", self.batch.crews_per_ticket),
        ] {
            if value == 0 {
                return Err(ConfigError::Zero(name));
            }
        }
        if self
            .storm
            .enter_queue
            .is_some_and(|enter| self.storm.leave_queue >= enter)
        {
            return Err(ConfigError::StormNeverEnds);
        }
        if self.crew_fix_limit_km < self.outside_area_limit_km {
            return Err(ConfigError::CrewFixLimitBelowAreaLimit);
        }
        Ok(())
    }

    /// Estimated travel minutes for a great-circle distance, at the speed of `class`.
    pub fn travel_minutes(&self, km: f64, class: AreaClass) -> f64 {
        km * self.circuity / self.speed_kmh.for_class(class) * 60.0
    }

    /// How many estimated minutes away a crew of another station may be for `nearest` to
    /// send it to a ticket of `class` (see `borrow_reach_minutes`).
    pub fn borrow_reach(&self, class: AreaClass) -> f64 {
        self.borrow_reach_minutes
            .unwrap_or_else(|| f64::from(self.sla.arrive_minutes(class)))
    }

    /// The distance that `minutes` of travel covers, the inverse of `travel_minutes`.
    pub fn reach_km(&self, minutes: f64, class: AreaClass) -> f64 {
        minutes / 60.0 * self.speed_kmh.for_class(class) / self.circuity
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn travel_estimate_uses_circuity_and_class_speed() {
        let config = EngineConfig::default();
        // 10 km × 1.3 ÷ 25 km/h = 0.52 h = 31.2 min.
        assert!((config.travel_minutes(10.0, AreaClass::Urban) - 31.2).abs() < 1e-9);
        assert!((config.reach_km(31.2, AreaClass::Urban) - 10.0).abs() < 1e-9);
    }

    #[test]
    fn nonsense_is_refused() {
        let mut config = EngineConfig::default();
        assert_eq!(config.validate(), Ok(()));
        config.circuity = 0.0;
        assert_eq!(config.validate(), Err(ConfigError::NotPositive("circuity")));
        config.circuity = 1.3;
        config.merge_radius_m = f64::NAN;
        assert_eq!(
            config.validate(),
            Err(ConfigError::Negative("merge_radius_m"))
        );
        config.merge_radius_m = 300.0;
        config.borrow_reach_minutes = Some(-1.0);
        assert_eq!(
            config.validate(),
            Err(ConfigError::NegativeReach("borrow_reach_minutes"))
        );
        config.borrow_reach_minutes = Some(f64::NAN);
        assert!(config.validate().is_err());
        config.borrow_reach_minutes = Some(f64::INFINITY);
        assert_eq!(config.validate(), Ok(()));
        config.borrow_reach_minutes = None;
        config.crew_fix_limit_km = config.outside_area_limit_km - 0.5;
        assert_eq!(
            config.validate(),
            Err(ConfigError::CrewFixLimitBelowAreaLimit)
        );
        config.crew_fix_limit_km = config.outside_area_limit_km;
        assert_eq!(config.validate(), Ok(()));
        config.storm.enter_queue = Some(5);
        assert_eq!(config.validate(), Err(ConfigError::StormNeverEnds));
        config.storm.leave_queue = 4;
        config.batch.max_tickets = 0;
        assert_eq!(
            config.validate(),
            Err(ConfigError::Zero("batch.max_tickets"))
        );
    }

    #[test]
    fn the_borrow_reach_is_the_class_arrival_limit_unless_set() {
        let mut config = EngineConfig::default();
        assert_eq!(config.borrow_reach(AreaClass::Urban), 45.0);
        assert_eq!(config.borrow_reach(AreaClass::Rural), 90.0);
        assert_eq!(config.borrow_reach(AreaClass::Remote), 120.0);
        config.sla.arrive_rural = 60;
        assert_eq!(config.borrow_reach(AreaClass::Rural), 60.0);
        config.borrow_reach_minutes = Some(30.0);
        assert_eq!(config.borrow_reach(AreaClass::Remote), 30.0);
        // `inf` in TOML: no limit, the rule before the reach.
        use figment::providers::{Format, Toml};
        let config: EngineConfig =
            figment::Figment::from(Toml::string("borrow_reach_minutes = inf"))
                .extract()
                .unwrap();
        assert_eq!(config.borrow_reach(AreaClass::Urban), f64::INFINITY);
        assert_eq!(
            config.reach_km(f64::INFINITY, AreaClass::Urban),
            f64::INFINITY
        );
    }

    #[test]
    fn policies_read_by_name() {
        for policy in DispatchPolicy::ALL {
            assert_eq!(DispatchPolicy::from_name(policy.as_str()), Some(policy));
        }
        assert_eq!(DispatchPolicy::from_name("fastest"), None);
        let config: EngineConfig =
            serde_json::from_str(r#"{"policy": "batch", "storm": {"enter_queue": 40}}"#).unwrap();
        assert_eq!(config.policy, DispatchPolicy::Batch);
        assert_eq!(config.storm.enter_queue, Some(40));
        assert_eq!(config.storm.leave_queue, 5);
    }
}
