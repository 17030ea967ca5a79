//! The service-level policy: which deadlines a ticket gets, and the checkpoints (warnings,
//! then the breach) on each. Limits are configuration, never constants in the decision code;
//! the defaults are State Grid's published commitments.
//!
//! # Stages
//! Each [`SlaStage`] is a clock from a start event to a stop event:
//!
//! | stage | starts at | stops at | default limit |
//! | --- | --- | --- | --- |
//! | acknowledge | `dispatched` | `acknowledged`, `declined`, `cancelled` | 5 min |
//! | arrive | `reported` | `arrived`, `merged`, `cancelled` | 45 / 90 / 120 min (urban / rural / remote); none for customer-internal faults |
//! | restore | `arrived` | `restored`, `cancelled` | 180 / 240 / 240 min |
//! | return | `restored` | `returned` | 30 min |
//!
//! Before each limit, warnings fire at fractions of it (`warn_at`, default 50 % and 80 %,
//! as provinces run multi-level time-limit warnings). Emergencies may have limits of their
//! own (`[sla.emergency]`); a stage may have warning levels of its own (`[sla.warnings]`).
//!
//! ```toml
//! [sla]
//! acknowledge = 5
//! arrive_urban = 45
//! arrive_rural = 90
//! arrive_remote = 120
//! warn_at = [0.5, 0.8]
//! [sla.emergency]          # any limit key; the others stay as above
//! arrive_urban = 30
//! [sla.warnings]           # per stage, replacing warn_at
//! acknowledge = [0.6]
//! ```

use super::{AreaClass, FaultCategory, Priority, TicketId, Timestamp};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Limits in minutes, warning levels as fractions of a limit.
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
    /// Warnings before every limit, as fractions of it.
    pub warn_at: WarnLevels,
    /// Warning levels of one stage, replacing `warn_at` for it.
    pub warnings: StageWarnings,
    /// Limits that replace the above for emergencies (hazards always are).
    pub emergency: LimitOverrides,
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
            warn_at: WarnLevels::DEFAULT,
            warnings: StageWarnings::default(),
            emergency: LimitOverrides::default(),
        }
    }
}

/// Per-priority limits: each `None` keeps the general limit. Keys as in `[sla]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitOverrides {
    pub acknowledge: Option<u32>,
    pub arrive_urban: Option<u32>,
    pub arrive_rural: Option<u32>,
    pub arrive_remote: Option<u32>,
    pub restore_urban: Option<u32>,
    pub restore_rural: Option<u32>,
    pub restore_remote: Option<u32>,
    #[serde(rename = "return")]
    pub return_order: Option<u32>,
}

/// Per-stage warning levels; a stage left out uses `warn_at`. An unknown stage name is
/// refused when the configuration is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StageWarnings {
    pub acknowledge: Option<WarnLevels>,
    pub arrive: Option<WarnLevels>,
    pub restore: Option<WarnLevels>,
    #[serde(rename = "return")]
    pub return_order: Option<WarnLevels>,
}

/// A warning level: a fraction of a stage's limit, strictly between 0 and 1, kept in
/// thousandths so that it is exact, ordered and hashable (it keys checkpoints and events).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct WarnLevel(u16);

impl WarnLevel {
    /// `None` unless `fraction` is strictly between 0 and 1 (to the thousandth).
    pub fn from_fraction(fraction: f64) -> Option<Self> {
        if !(fraction > 0.0 && fraction < 1.0) {
            return None;
        }
        let permille = (fraction * 1000.0).round();
        (1.0..=999.0)
            .contains(&permille)
            .then_some(Self(permille as u16))
    }

    pub fn permille(self) -> u16 {
        self.0
    }

    pub fn fraction(self) -> f64 {
        f64::from(self.0) / 1000.0
    }

    /// The instant this level of a clock from `start` to `limit` is reached. Integer
    /// arithmetic, so replay computes the very same instant.
    pub fn instant(self, start: Timestamp, limit: Timestamp) -> Timestamp {
        let span = i128::from(limit.as_millis()) - i128::from(start.as_millis());
        let offset = span.max(0) * i128::from(self.0) / 1000;
        let at = i128::from(start.as_millis()) + offset;
        Timestamp::from_millis(i64::try_from(at).unwrap_or(i64::MAX))
    }
}

impl Serialize for WarnLevel {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_f64(self.fraction())
    }
}

impl<'de> Deserialize<'de> for WarnLevel {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let fraction = f64::deserialize(deserializer)?;
        WarnLevel::from_fraction(fraction).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "a warning level is a fraction of the limit strictly between 0 and 1, \
                 not {fraction}"
            ))
        })
    }
}

/// The warning levels of a stage, ascending and distinct. A fixed-size set, so that the
/// policy stays `Copy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct WarnLevels {
    levels: [WarnLevel; WarnLevels::MAX],
    len: u8,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WarnLevelsError {
    #[error("at most {} warning levels per stage", WarnLevels::MAX)]
    TooMany,
}

impl WarnLevels {
    /// Hebei runs four levels; eight leaves room without making the set unbounded.
    pub const MAX: usize = 8;
    /// 50 % and 80 % of the limit.
    pub const DEFAULT: WarnLevels = WarnLevels {
        levels: [
            WarnLevel(500),
            WarnLevel(800),
            WarnLevel(0),
            WarnLevel(0),
            WarnLevel(0),
            WarnLevel(0),
            WarnLevel(0),
            WarnLevel(0),
        ],
        len: 2,
    };
    pub const NONE: WarnLevels = WarnLevels {
        levels: [WarnLevel(0); WarnLevels::MAX],
        len: 0,
    };

    /// Sorts and drops repeats.
    pub fn new(levels: impl IntoIterator<Item = WarnLevel>) -> Result<Self, WarnLevelsError> {
        let mut all: Vec<WarnLevel> = levels.into_iter().collect();
        all.sort_unstable();
        all.dedup();
        if all.len() > Self::MAX {
            return Err(WarnLevelsError::TooMany);
        }
        let mut out = Self::NONE;
        for (slot, level) in out.levels.iter_mut().zip(&all) {
            *slot = *level;
        }
        out.len = all.len() as u8;
        Ok(out)
    }

    pub fn iter(&self) -> impl Iterator<Item = WarnLevel> + '_ {
        self.levels[..usize::from(self.len)].iter().copied()
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl Default for WarnLevels {
    fn default() -> Self {
        Self::DEFAULT
    }
}

impl Serialize for WarnLevels {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.iter())
    }
}

impl<'de> Deserialize<'de> for WarnLevels {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let levels = Vec::<WarnLevel>::deserialize(deserializer)?;
        WarnLevels::new(levels).map_err(serde::de::Error::custom)
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

/// What happens when a checkpoint comes due.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum CheckpointKind {
    /// An `sla_warning` at this fraction of the limit.
    Warning(WarnLevel),
    /// An `sla_breached`: the limit passed with the stage still running.
    Breach,
    /// The acknowledgement deadline of the current dispatch: the job goes to the next crew.
    /// Unlike warnings and breaches (once per ticket and stage), one per dispatch. Ordered
    /// after `Breach`, so a breach due at the same instant is recorded before the timeout
    /// stops the stage.
    AcknowledgeTimeout,
}

/// One pending action of a ticket's clock. Ordered by instant first, so a set of them
/// yields the next due one first; the rest of the key makes the order total (replay and
/// live runs fire in the same order).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Checkpoint {
    pub at: Timestamp,
    pub ticket: TicketId,
    pub stage: SlaStage,
    pub kind: CheckpointKind,
}

/// The deadlines that hold for a ticket now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Deadlines {
    /// Set while a crew has the job and has not acknowledged it.
    pub acknowledge_by: Option<Timestamp>,
    /// `None` for customer-internal faults, which have no arrival commitment.
    pub arrive_by: Option<Timestamp>,
    /// Set when the crew arrives: power back by then.
    pub restore_by: Option<Timestamp>,
    /// Set when power is restored: the work order returned by then.
    pub return_by: Option<Timestamp>,
}

impl SlaPolicy {
    pub fn validate(&self) -> Result<(), SlaPolicyError> {
        let e = &self.emergency;
        for (name, minutes) in [
            ("acknowledge", Some(self.acknowledge)),
            ("arrive_urban", Some(self.arrive_urban)),
            ("arrive_rural", Some(self.arrive_rural)),
            ("arrive_remote", Some(self.arrive_remote)),
            ("restore_urban", Some(self.restore_urban)),
            ("restore_rural", Some(self.restore_rural)),
            ("restore_remote", Some(self.restore_remote)),
            ("return", Some(self.return_order)),
            ("emergency.acknowledge", e.acknowledge),
            ("emergency.arrive_urban", e.arrive_urban),
            ("emergency.arrive_rural", e.arrive_rural),
            ("emergency.arrive_remote", e.arrive_remote),
            ("emergency.restore_urban", e.restore_urban),
            ("emergency.restore_rural", e.restore_rural),
            ("emergency.restore_remote", e.restore_remote),
            ("emergency.return", e.return_order),
        ] {
            if minutes == Some(0) {
                return Err(SlaPolicyError::Zero(name));
            }
        }
        // Warning levels are checked as they are read (`WarnLevel` cannot hold a value
        // outside (0, 1)), so there is nothing left to check for them here.
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
    /// it (customer-internal faults have no arrival commitment). Emergencies take the limits
    /// of `[sla.emergency]` where it sets them.
    pub fn limit_minutes(
        &self,
        stage: SlaStage,
        class: AreaClass,
        category: FaultCategory,
        priority: Priority,
    ) -> Option<u32> {
        fn by_class<T>(class: AreaClass, urban: T, rural: T, remote: T) -> T {
            match class {
                AreaClass::Urban => urban,
                AreaClass::Rural => rural,
                AreaClass::Remote => remote,
            }
        }
        let general = match stage {
            SlaStage::Acknowledge => self.acknowledge,
            SlaStage::Arrive if !category.has_arrival_clock() => return None,
            SlaStage::Arrive => self.arrive_minutes(class),
            SlaStage::Restore => by_class(
                class,
                self.restore_urban,
                self.restore_rural,
                self.restore_remote,
            ),
            SlaStage::Return => self.return_order,
        };
        let special = match priority {
            Priority::Normal => None,
            Priority::Emergency => {
                let e = &self.emergency;
                match stage {
                    SlaStage::Acknowledge => e.acknowledge,
                    SlaStage::Arrive => {
                        by_class(class, e.arrive_urban, e.arrive_rural, e.arrive_remote)
                    }
                    SlaStage::Restore => {
                        by_class(class, e.restore_urban, e.restore_rural, e.restore_remote)
                    }
                    SlaStage::Return => e.return_order,
                }
            }
        };
        Some(special.unwrap_or(general))
    }

    /// When `stage`, started at `start`, is due; `None` when the stage has no clock.
    pub fn due(
        &self,
        stage: SlaStage,
        start: Timestamp,
        class: AreaClass,
        category: FaultCategory,
        priority: Priority,
    ) -> Option<Timestamp> {
        self.limit_minutes(stage, class, category, priority)
            .map(|minutes| start.plus_minutes(minutes))
    }

    /// The warning levels of `stage`.
    pub fn warn_levels(&self, stage: SlaStage) -> WarnLevels {
        let own = match stage {
            SlaStage::Acknowledge => self.warnings.acknowledge,
            SlaStage::Arrive => self.warnings.arrive,
            SlaStage::Restore => self.warnings.restore,
            SlaStage::Return => self.warnings.return_order,
        };
        own.unwrap_or(self.warn_at)
    }

    /// The warnings and the breach of a clock running from `start` to `limit`, in order.
    pub fn checkpoints(
        &self,
        stage: SlaStage,
        start: Timestamp,
        limit: Timestamp,
    ) -> impl Iterator<Item = (Timestamp, CheckpointKind)> + '_ {
        let levels = self.warn_levels(stage);
        (0..usize::from(levels.len))
            .map(move |i| levels.levels[i])
            .map(move |level| (level.instant(start, limit), CheckpointKind::Warning(level)))
            .chain(std::iter::once((limit, CheckpointKind::Breach)))
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

    #[test]
    fn every_stage_has_its_default_limit_and_customer_internal_no_arrival() {
        let policy = SlaPolicy::default();
        let limit =
            |stage, class, category| policy.limit_minutes(stage, class, category, Priority::Normal);
        let no_power = FaultCategory::NoPower;
        assert_eq!(
            limit(SlaStage::Acknowledge, AreaClass::Remote, no_power),
            Some(5)
        );
        assert_eq!(
            limit(SlaStage::Arrive, AreaClass::Rural, no_power),
            Some(90)
        );
        assert_eq!(
            limit(SlaStage::Restore, AreaClass::Urban, no_power),
            Some(180)
        );
        assert_eq!(
            limit(SlaStage::Restore, AreaClass::Remote, no_power),
            Some(240)
        );
        assert_eq!(
            limit(SlaStage::Return, AreaClass::Urban, no_power),
            Some(30)
        );
        let internal = FaultCategory::CustomerInternal;
        assert_eq!(limit(SlaStage::Arrive, AreaClass::Urban, internal), None);
        assert_eq!(
            limit(SlaStage::Restore, AreaClass::Urban, internal),
            Some(180)
        );
    }

    #[test]
    fn emergencies_take_only_the_limits_set_for_them() {
        let mut policy = SlaPolicy::default();
        policy.emergency.restore_urban = Some(120);
        let restore = |priority| {
            policy.limit_minutes(
                SlaStage::Restore,
                AreaClass::Urban,
                FaultCategory::NoPower,
                priority,
            )
        };
        assert_eq!(restore(Priority::Emergency), Some(120));
        assert_eq!(restore(Priority::Normal), Some(180));
        assert_eq!(
            policy.limit_minutes(
                SlaStage::Arrive,
                AreaClass::Urban,
                FaultCategory::NoPower,
                Priority::Emergency
            ),
            Some(45)
        );
        policy.emergency.acknowledge = Some(0);
        assert_eq!(
            policy.validate(),
            Err(SlaPolicyError::Zero("emergency.acknowledge"))
        );
    }

    #[test]
    fn checkpoints_are_the_warnings_then_the_breach() {
        let policy = SlaPolicy::default();
        let start = Timestamp::from_millis(1_000);
        let limit = start.plus_minutes(45);
        let points: Vec<_> = policy.checkpoints(SlaStage::Arrive, start, limit).collect();
        let half = WarnLevel::from_fraction(0.5).unwrap();
        let most = WarnLevel::from_fraction(0.8).unwrap();
        assert_eq!(
            points,
            [
                (
                    Timestamp::from_millis(1_000 + 1_350_000),
                    CheckpointKind::Warning(half)
                ),
                (
                    Timestamp::from_millis(1_000 + 2_160_000),
                    CheckpointKind::Warning(most)
                ),
                (limit, CheckpointKind::Breach),
            ]
        );
        // A breach sorts after every warning and before the timeout it precedes.
        assert!(CheckpointKind::Warning(most) < CheckpointKind::Breach);
        assert!(CheckpointKind::Breach < CheckpointKind::AcknowledgeTimeout);
    }

    #[test]
    fn warning_levels_are_fractions_strictly_inside_the_limit() {
        for bad in [0.0, 1.0, -0.5, 1.5, 0.0001, 0.9996, f64::NAN] {
            assert_eq!(WarnLevel::from_fraction(bad), None, "{bad}");
        }
        assert_eq!(
            WarnLevel::from_fraction(0.25).map(WarnLevel::permille),
            Some(250)
        );
        let levels =
            WarnLevels::new([0.8, 0.5, 0.8].map(|f| WarnLevel::from_fraction(f).unwrap())).unwrap();
        assert_eq!(levels, WarnLevels::DEFAULT);
        let many = (1..=9).map(|i| WarnLevel::from_fraction(f64::from(i) / 10.0).unwrap());
        assert_eq!(WarnLevels::new(many), Err(WarnLevelsError::TooMany));
        let json = serde_json::to_string(&WarnLevels::DEFAULT).unwrap();
        assert_eq!(json, "[0.5,0.8]");
        assert!(serde_json::from_str::<WarnLevels>("[0.5,1.0]").is_err());
    }
}
