//! The estimated time of restoration (ETR) of an open ticket: when the crew will be there, plus
//! how long a repair of the ticket's category usually takes.
//!
//! # Formula
//! ETR = max(now, arrival + repair), where
//! - arrival = `arrived_at` once the crew is on site, else dispatch time + `eta_minutes`
//!   (and never before `now`: a late crew has not arrived in the past);
//! - repair = the median of restored_at − arrived_at over the returned orders of the
//!   category, once at least `min_samples` exist; until then the configured prior.
//!
//! The result is never before `now`: a repair running over its median is "any moment now",
//! not a time already gone.
//!
//! # When there is none
//! - **Queued** tickets: no crew has the job, so there is no arrival to estimate; a time made
//!   of the arrival limit would be a promise dressed as an estimate. No ETR.
//! - **Merged** tickets: none of their own; the dispatcher gives them their incident's.
//! - Restored, returned, closed, cancelled: power is back or the work is off. No ETR.

use super::median;
use crate::domain::{FaultCategory, Ticket, TicketState, Timestamp};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};

/// `[etr]`: the repair-duration priors and when learned durations replace them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EtrConfig {
    /// Returned orders of a category needed before their median replaces the prior.
    pub min_samples: usize,
    /// Repair minutes (arrival → restoration) per category before enough are learned,
    /// overriding the defaults: `no_power` 60, `area_outage` 120, `line_down` 180,
    /// `equipment_fire` 180, `voltage_quality` 90, `meter` 45, `customer_internal` 60,
    /// `other` 60.
    pub prior_repair_minutes: BTreeMap<FaultCategory, u32>,
}

impl Default for EtrConfig {
    fn default() -> Self {
        Self {
            min_samples: 20,
            prior_repair_minutes: BTreeMap::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EtrConfigError {
    #[error("etr.min_samples must be at least 1")]
    NoSamples,
    #[error("etr.prior_repair_minutes: every prior must be at least one minute")]
    ZeroPrior,
}

impl EtrConfig {
    pub fn validate(&self) -> Result<(), EtrConfigError> {
        if self.min_samples == 0 {
            return Err(EtrConfigError::NoSamples);
        }
        if self.prior_repair_minutes.values().any(|&m| m == 0) {
            return Err(EtrConfigError::ZeroPrior);
        }
        Ok(())
    }

    pub fn prior_minutes(&self, category: FaultCategory) -> u32 {
        self.prior_repair_minutes
            .get(&category)
            .copied()
            .unwrap_or(match category {
                FaultCategory::NoPower => 60,
                FaultCategory::AreaOutage => 120,
                FaultCategory::LineDown | FaultCategory::EquipmentFire => 180,
                FaultCategory::VoltageQuality => 90,
                FaultCategory::Meter => 45,
                FaultCategory::CustomerInternal | FaultCategory::Other => 60,
            })
    }
}

/// The repair minutes to expect per category: learned medians or priors.
#[derive(Debug, Clone, PartialEq)]
pub struct RepairStats {
    minutes: HashMap<FaultCategory, f64>,
}

impl RepairStats {
    /// Learns from the returned orders among `tickets` (returned or closed, with arrival and
    /// restoration stamped).
    pub fn learn<'a>(tickets: impl IntoIterator<Item = &'a Ticket>, config: &EtrConfig) -> Self {
        let mut samples: HashMap<FaultCategory, Vec<f64>> = HashMap::new();
        for t in tickets {
            if !matches!(t.state, TicketState::Returned | TicketState::Closed) {
                continue;
            }
            if let (Some(arrived), Some(restored)) = (t.arrived_at, t.restored_at) {
                samples
                    .entry(t.report.category)
                    .or_default()
                    .push(restored.minutes_since(arrived));
            }
        }
        let minutes = FaultCategory::ALL
            .into_iter()
            .map(|category| {
                let learned = samples
                    .get(&category)
                    .filter(|s| s.len() >= config.min_samples)
                    .and_then(|s| median(s));
                let minutes = learned.unwrap_or_else(|| f64::from(config.prior_minutes(category)));
                (category, minutes)
            })
            .collect();
        Self { minutes }
    }

    pub fn repair_minutes(&self, category: FaultCategory) -> f64 {
        self.minutes.get(&category).copied().unwrap_or(0.0)
    }
}

/// The ETR of `ticket` as of `now`; `None` when there is none (see the module doc).
pub fn estimate_restoration(
    ticket: &Ticket,
    stats: &RepairStats,
    now: Timestamp,
) -> Option<Timestamp> {
    let arrival = match ticket.state {
        TicketState::OnSite => ticket.arrived_at?,
        TicketState::Dispatched | TicketState::Acknowledged | TicketState::EnRoute => {
            let travel_ms = (ticket.eta_minutes? * 60_000.0).round();
            // An eta is minutes of travel; anything not finite or negative is not an estimate.
            if !travel_ms.is_finite() || travel_ms < 0.0 {
                return None;
            }
            let at = Timestamp::from_millis(
                ticket
                    .dispatched_at?
                    .as_millis()
                    .saturating_add(travel_ms as i64),
            );
            at.max(now)
        }
        TicketState::Queued
        | TicketState::Merged
        | TicketState::Restored
        | TicketState::Returned
        | TicketState::Closed
        | TicketState::Cancelled => return None,
    };
    let repair_ms = (stats.repair_minutes(ticket.report.category) * 60_000.0).round() as i64;
    Some(Timestamp::from_millis(arrival.as_millis().saturating_add(repair_ms)).max(now))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::AreaClass;
    use crate::reports::sla::tests::{at, ticket, walked};
    use FaultCategory::*;

    /// `n` returned no-power orders with repairs of the given minutes (arrival at 30).
    fn returned(repairs: &[i64]) -> Vec<Ticket> {
        repairs
            .iter()
            .enumerate()
            .map(|(i, r)| {
                walked(
                    ticket(&format!("R{i}"), NoPower, AreaClass::Urban, 0),
                    &[1, 2, 30, 30 + r, 40 + r],
                )
            })
            .collect()
    }

    #[test]
    fn the_prior_holds_until_enough_orders_are_returned() {
        let config = EtrConfig {
            min_samples: 3,
            ..EtrConfig::default()
        };
        // Two orders (repairs 20 and 40): fewer than 3 → the no_power prior, 60.
        let few = RepairStats::learn(&returned(&[20, 40]), &config);
        assert_eq!(few.repair_minutes(NoPower), 60.0);
        // Three (20, 40, 100): median 40. Other categories keep their priors.
        let enough = RepairStats::learn(&returned(&[20, 40, 100]), &config);
        assert_eq!(enough.repair_minutes(NoPower), 40.0);
        assert_eq!(enough.repair_minutes(AreaOutage), 120.0);
    }

    #[test]
    fn etr_by_state_by_hand() {
        let config = EtrConfig::default();
        let stats = RepairStats::learn(&[], &config);
        // Dispatched at 1 with eta 10 → arrival 11; + no_power prior 60 → 71.
        let dispatched = walked(ticket("A", NoPower, AreaClass::Urban, 0), &[1]);
        assert_eq!(
            estimate_restoration(&dispatched, &stats, at(5)),
            Some(at(71))
        );
        // Same ticket asked at 20: the crew is late, arrival taken as now (20) → 80.
        assert_eq!(
            estimate_restoration(&dispatched, &stats, at(20)),
            Some(at(80))
        );
        // On site since 30, area outage prior 120 → 150.
        let on_site = walked(ticket("B", AreaOutage, AreaClass::Urban, 0), &[1, 2, 30]);
        assert_eq!(
            estimate_restoration(&on_site, &stats, at(40)),
            Some(at(150))
        );
        // Asked at 200: overrunning → now.
        assert_eq!(
            estimate_restoration(&on_site, &stats, at(200)),
            Some(at(200))
        );
        // Queued, merged, restored: none.
        let queued = ticket("C", NoPower, AreaClass::Urban, 0);
        assert_eq!(estimate_restoration(&queued, &stats, at(5)), None);
        let restored = walked(ticket("D", NoPower, AreaClass::Urban, 0), &[1, 2, 30, 50]);
        assert_eq!(estimate_restoration(&restored, &stats, at(60)), None);
    }

    #[test]
    fn configuration_is_checked() {
        assert_eq!(EtrConfig::default().validate(), Ok(()));
        let zero = EtrConfig {
            min_samples: 0,
            ..EtrConfig::default()
        };
        assert_eq!(zero.validate(), Err(EtrConfigError::NoSamples));
    }
}
