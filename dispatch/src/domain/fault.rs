//! What is wrong and how urgent it is: the intake category and priority, and what the crew
//! reports when it returns the work order (回单) and the customer says at the callback (回访).

use geo_data::format::Skill;
use serde::{Deserialize, Serialize};

/// The symptom as the 95598 agent records it at intake.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultCategory {
    /// One customer without power.
    NoPower,
    /// Several customers or a whole area without power.
    AreaOutage,
    LineDown,
    EquipmentFire,
    VoltageQuality,
    Meter,
    /// Inside the customer's installation: a paid service, not on the arrival clock.
    CustomerInternal,
    Other,
}

/// Categories whose reports can be repeats of one fault in the network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MergeGroup {
    /// One customer without power: a low-voltage job.
    CustomerOutage,
    /// Several customers or an area without power: a fault on the 10 kV network, for a crew
    /// with `hv`.
    AreaOutage,
    /// A line down or equipment on fire: often the cause of an outage nearby, and always an
    /// emergency.
    Hazard,
    VoltageQuality,
}

impl MergeGroup {
    /// Whether a report of this group may be merged into an open incident of `incident`'s.
    /// A report joins only an incident whose crew has the skill it needs and comes at least
    /// as urgently: a customer's outage joins an area's or a hazard's (that crew clears the
    /// likely cause), an area's outage joins a hazard's, but never the other way: merged into
    /// a lesser incident, the bigger fault would wait at its priority for a crew that may lack
    /// `hv`, and no second crew would ever be sent.
    pub fn may_join(self, incident: MergeGroup) -> bool {
        match self {
            MergeGroup::CustomerOutage => matches!(
                incident,
                MergeGroup::CustomerOutage | MergeGroup::AreaOutage | MergeGroup::Hazard
            ),
            MergeGroup::AreaOutage => {
                matches!(incident, MergeGroup::AreaOutage | MergeGroup::Hazard)
            }
            MergeGroup::Hazard => incident == MergeGroup::Hazard,
            MergeGroup::VoltageQuality => incident == MergeGroup::VoltageQuality,
        }
    }
}

impl FaultCategory {
    pub const ALL: [FaultCategory; 8] = [
        FaultCategory::NoPower,
        FaultCategory::AreaOutage,
        FaultCategory::LineDown,
        FaultCategory::EquipmentFire,
        FaultCategory::VoltageQuality,
        FaultCategory::Meter,
        FaultCategory::CustomerInternal,
        FaultCategory::Other,
    ];

    /// The snake_case name, as on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            FaultCategory::NoPower => "no_power",
            FaultCategory::AreaOutage => "area_outage",
            FaultCategory::LineDown => "line_down",
            FaultCategory::EquipmentFire => "equipment_fire",
            FaultCategory::VoltageQuality => "voltage_quality",
            FaultCategory::Meter => "meter",
            FaultCategory::CustomerInternal => "customer_internal",
            FaultCategory::Other => "other",
        }
    }

    /// A coarse class for metric labels and dashboards: `hazard` (a line down, a fire),
    /// `outage` (supply lost), `service` (quality, metering, other) or `customer` (inside
    /// the customer's installation, off the arrival clock).
    pub fn class(self) -> &'static str {
        match self {
            FaultCategory::LineDown | FaultCategory::EquipmentFire => "hazard",
            FaultCategory::NoPower | FaultCategory::AreaOutage => "outage",
            FaultCategory::VoltageQuality | FaultCategory::Meter | FaultCategory::Other => {
                "service"
            }
            FaultCategory::CustomerInternal => "customer",
        }
    }

    /// The skill a crew needs to take the job. Outages of an area and anything on the 10 kV
    /// network need `hv`; single customers, quality and the customer's side are low voltage.
    pub fn required_skill(self) -> Skill {
        match self {
            FaultCategory::AreaOutage | FaultCategory::LineDown | FaultCategory::EquipmentFire => {
                Skill::Hv
            }
            FaultCategory::Meter => Skill::Meter,
            FaultCategory::NoPower
            | FaultCategory::VoltageQuality
            | FaultCategory::CustomerInternal
            | FaultCategory::Other => Skill::Lv,
        }
    }

    /// Safety hazards are emergencies whatever the agent chose.
    pub fn forces_emergency(self) -> bool {
        matches!(self, FaultCategory::LineDown | FaultCategory::EquipmentFire)
    }

    /// Customer-internal faults are outside the utility's repair duty: no arrival commitment.
    pub fn has_arrival_clock(self) -> bool {
        self != FaultCategory::CustomerInternal
    }

    /// `None` for faults that are one customer's own (a meter, the installation, "other"):
    /// two of those next door to each other are still two jobs.
    pub fn merge_group(self) -> Option<MergeGroup> {
        match self {
            FaultCategory::NoPower => Some(MergeGroup::CustomerOutage),
            FaultCategory::AreaOutage => Some(MergeGroup::AreaOutage),
            FaultCategory::LineDown | FaultCategory::EquipmentFire => Some(MergeGroup::Hazard),
            FaultCategory::VoltageQuality => Some(MergeGroup::VoltageQuality),
            FaultCategory::Meter | FaultCategory::CustomerInternal | FaultCategory::Other => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Priority {
    Emergency,
    Normal,
}

/// First-level fault class of real repair reports, given when the order is returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultClass {
    HighVoltage,
    LowVoltage,
    PowerQuality,
    CustomerInternal,
    NonElectrical,
    Metering,
}

/// Who owns the failed equipment: decides who pays and whether the outage counts against the
/// utility's reliability.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Ownership {
    Utility,
    Customer,
}

/// Why supply was lost, as reliability statistics class it (DL/T 836.1): kept with each
/// order so that indices with exclusions can be derived (RS-2 leaves out external causes,
/// RS-3 a shortage of system supply).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutageCause {
    /// A fault of the utility's network: what a repair ticket usually is.
    #[default]
    Fault,
    /// Planned work (预安排停电) the caller did not know of.
    Planned,
    /// Outside influence: a third party's excavator, a vehicle, a typhoon's debris from
    /// outside the corridor (外部影响).
    External,
    /// Load shed for a shortage of system supply (系统电源不足限电).
    SupplyLimit,
}

impl OutageCause {
    pub const ALL: [OutageCause; 4] = [
        OutageCause::Fault,
        OutageCause::Planned,
        OutageCause::External,
        OutageCause::SupplyLimit,
    ];
}

/// The crew's return of the work order (回单): it cannot be returned without these.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkOrderReturn {
    pub fault_class: FaultClass,
    pub cause: String,
    pub ownership: Ownership,
    pub resolution: Option<String>,
    /// Orders stored before the cause was kept read as faults.
    #[serde(default)]
    pub outage_cause: OutageCause,
}

/// What the customer said at the callback (回访).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Callback {
    pub satisfied: bool,
    pub note: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hazards_are_emergencies_and_need_hv() {
        for category in FaultCategory::ALL {
            if category.forces_emergency() {
                assert_eq!(category.required_skill(), Skill::Hv);
            }
        }
    }

    #[test]
    fn only_customer_internal_has_no_arrival_clock() {
        let without: Vec<_> = FaultCategory::ALL
            .into_iter()
            .filter(|c| !c.has_arrival_clock())
            .collect();
        assert_eq!(without, vec![FaultCategory::CustomerInternal]);
    }

    #[test]
    fn one_customers_own_faults_never_merge() {
        assert_eq!(FaultCategory::Meter.merge_group(), None);
        assert_eq!(FaultCategory::CustomerInternal.merge_group(), None);
        assert_eq!(FaultCategory::Other.merge_group(), None);
    }

    /// Every pair of groups: a report joins only an incident at least as big and urgent.
    #[test]
    fn reports_join_only_incidents_at_least_as_big_and_urgent() {
        use MergeGroup::*;
        let all = [CustomerOutage, AreaOutage, Hazard, VoltageQuality];
        let joins: Vec<_> = all
            .iter()
            .flat_map(|a| all.iter().map(move |b| (*a, *b)))
            .filter(|(report, incident)| report.may_join(*incident))
            .collect();
        assert_eq!(
            joins,
            [
                (CustomerOutage, CustomerOutage),
                (CustomerOutage, AreaOutage),
                (CustomerOutage, Hazard),
                (AreaOutage, AreaOutage),
                (AreaOutage, Hazard),
                (Hazard, Hazard),
                (VoltageQuality, VoltageQuality)
            ]
        );
        assert_eq!(FaultCategory::NoPower.merge_group(), Some(CustomerOutage));
        assert_eq!(FaultCategory::AreaOutage.merge_group(), Some(AreaOutage));
        assert_eq!(FaultCategory::LineDown.merge_group(), Some(Hazard));
        assert_eq!(FaultCategory::EquipmentFire.merge_group(), Some(Hazard));
    }
}
