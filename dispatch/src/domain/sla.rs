//! The service-level policy: which deadlines a ticket gets. Limits are configuration, never
//! constants in the decision code; the defaults are State Grid's published commitments.

use super::{AreaClass, FaultCategory, Timestamp};
use serde::{Deserialize, Serialize};

/// Limits in minutes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SlaPolicy {
    /// From dispatch to the crew's acknowledgement.
    pub acknowledge: u32,
    /// From the report to the crew on site, per area class of the ticket's station.
    pub arrive_urban: u32,
    pub arrive_rural: u32,
    pub arrive_remote: u32,
    /// From arrival to power restored, per area class (State Grid: 3 h urban, 4 h rural).
    pub restore_urban: u32,
    pub restore_rural: u32,
    pub restore_remote: u32,
    /// From restoration to the work order returned.
    #[serde(rename = "return")]
    pub return_order: u32,
}

impl Default for SlaPolicy {
    fn default() -> Self {
        Self {
            acknowledge: 5,
            arrive_urban: 45,
            arrive_rural: 90,
            arrive_remote: 120,
            restore_urban: 180,
            restore_rural: 240,
            restore_remote: 240,
            return_order: 30,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SlaPolicyError {
    #[error("sla.{0} must be at least one minute")]
    Zero(&'static str),
}

/// The clocks a ticket runs against, each from a start event to a stop event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SlaStage {
    /// Dispatch → the crew acknowledges.
    Acknowledge,
    /// Report → the crew is on site (none for customer-internal faults).
    Arrive,
    /// Arrival → power restored.
    Restore,
    /// Restoration → the work order is returned.
    Return,
}

impl SlaStage {
    pub const ALL: [SlaStage; 4] = [
        SlaStage::Acknowledge,
        SlaStage::Arrive,
        SlaStage::Restore,
        SlaStage::Return,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            SlaStage::Acknowledge => "acknowledge",
            SlaStage::Arrive => "arrive",
            SlaStage::Restore => "restore",
            SlaStage::Return => "return",
        }
    }
}

/// The deadlines that hold for a ticket now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Deadlines {
    /// Set while a crew has the job and has not acknowledged it.
    pub acknowledge_by: Option<Timestamp>,
    /// `None` for customer-internal faults, which have no arrival commitment.
    pub arrive_by: Option<Timestamp>,
}

impl SlaPolicy {
    pub fn validate(&self) -> Result<(), SlaPolicyError> {
        for (name, minutes) in [
            ("acknowledge", self.acknowledge),
            ("arrive_urban", self.arrive_urban),
            ("arrive_rural", self.arrive_rural),
            ("arrive_remote", self.arrive_remote),
            ("restore_urban", self.restore_urban),
            ("restore_rural", self.restore_rural),
            ("restore_remote", self.restore_remote),
            ("return", self.return_order),
        ] {
            if minutes == 0 {
                return Err(SlaPolicyError::Zero(name));
            }
        }
        Ok(())
    }

    pub fn arrive_minutes(&self, area_class: AreaClass) -> u32 {
        match area_class {
            AreaClass::Urban => self.arrive_urban,
            AreaClass::Rural => self.arrive_rural,
            AreaClass::Remote => self.arrive_remote,
        }
    }

    /// The limit of `stage` for a ticket, in minutes; `None` when the stage has no clock for
    /// it (customer-internal faults have no arrival commitment). `priority` is part of the
    /// question because limits may differ by priority; today they do not.
    pub fn limit_minutes(
        &self,
        stage: SlaStage,
        class: AreaClass,
        category: FaultCategory,
        _priority: super::Priority,
    ) -> Option<u32> {
        let by_class = |urban, rural, remote| match class {
            AreaClass::Urban => urban,
            AreaClass::Rural => rural,
            AreaClass::Remote => remote,
        };
        match stage {
            SlaStage::Acknowledge => Some(self.acknowledge),
            SlaStage::Arrive => category
                .has_arrival_clock()
                .then(|| self.arrive_minutes(class)),
            SlaStage::Restore => Some(by_class(
                self.restore_urban,
                self.restore_rural,
                self.restore_remote,
            )),
            SlaStage::Return => Some(self.return_order),
        }
    }

    /// The arrival deadline counts from the report, as the published commitment does.
    pub fn arrive_by(
        &self,
        reported_at: Timestamp,
        category: FaultCategory,
        area_class: AreaClass,
    ) -> Option<Timestamp> {
        category
            .has_arrival_clock()
            .then(|| reported_at.plus_minutes(self.arrive_minutes(area_class)))
    }

    /// The acknowledgement clock starts when a crew is given the job.
    pub fn acknowledge_by(&self, dispatched_at: Timestamp) -> Timestamp {
        dispatched_at.plus_minutes(self.acknowledge)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arrival_deadline_by_area_class_from_report_time() {
        let policy = SlaPolicy::default();
        let t0 = Timestamp::from_millis(1_000);
        let minutes = |class| {
            policy
                .arrive_by(t0, FaultCategory::NoPower, class)
                .map(|t| t.minutes_since(t0))
        };
        assert_eq!(minutes(AreaClass::Urban), Some(45.0));
        assert_eq!(minutes(AreaClass::Rural), Some(90.0));
        assert_eq!(minutes(AreaClass::Remote), Some(120.0));
    }

    #[test]
    fn customer_internal_has_no_arrival_deadline() {
        let policy = SlaPolicy::default();
        let t0 = Timestamp::from_millis(0);
        assert_eq!(
            policy.arrive_by(t0, FaultCategory::CustomerInternal, AreaClass::Urban),
            None
        );
    }

    #[test]
    fn limits_are_configuration() {
        let policy = SlaPolicy {
            arrive_urban: 60,
            acknowledge: 3,
            ..SlaPolicy::default()
        };
        let t0 = Timestamp::from_millis(0);
        assert_eq!(
            policy.arrive_by(t0, FaultCategory::LineDown, AreaClass::Urban),
            Some(t0.plus_minutes(60))
        );
        assert_eq!(policy.acknowledge_by(t0), t0.plus_minutes(3));
        assert_eq!(
            SlaPolicy {
                acknowledge: 0,
                ..policy
            }
            .validate(),
            Err(SlaPolicyError::Zero("acknowledge"))
        );
    }
}
