//! The engine's tunables. Every limit is configuration; the defaults are the and
//! `shared/domain.md`'s figures.

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
    /// A point outside every service area goes to the nearest one within this distance.
    pub outside_area_limit_km: f64,
    /// A report this close to an open incident of a compatible category is a repeat…
    pub merge_radius_m: f64,
    /// …if that incident's latest report is at most this old.
    pub merge_window_minutes: u32,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            sla: SlaPolicy::default(),
            circuity: 1.3,
            speed_kmh: Speeds::default(),
            own_station_margin_minutes: 10.0,
            outside_area_limit_km: 5.0,
            merge_radius_m: 300.0,
            merge_window_minutes: 120,
        }
    }
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ConfigError {
    #[error("{0} must be a positive, finite number")]
    NotPositive(&'static str),
    #[error("{0} must be zero or more and finite")]
    Negative(&'static str),
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
            ("merge_radius_m", self.merge_radius_m),
        ] {
            if !(value.is_finite() && value >= 0.0) {
                return Err(ConfigError::Negative(name));
            }
        }
        Ok(())
    }

    /// Estimated travel minutes for a great-circle distance, at the speed of `class`.
    pub fn travel_minutes(&self, km: f64, class: AreaClass) -> f64 {
        km * self.circuity / self.speed_kmh.for_class(class) * 60.0
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
    }
}
