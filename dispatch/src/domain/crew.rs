//! A repair crew: where it is, what it can do, and whether it can take a job.

use super::{CrewId, LatLon, Skill, StationId, TicketId, Timestamp};
use serde::{Deserialize, Serialize};

/// A small set of skills, kept as bits because the crew index asks it on every candidate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SkillSet(u8);

impl SkillSet {
    pub const ALL_SKILLS: [Skill; 3] = [Skill::Lv, Skill::Hv, Skill::Meter];

    fn bit(skill: Skill) -> u8 {
        match skill {
            Skill::Lv => 1,
            Skill::Hv => 2,
            Skill::Meter => 4,
        }
    }

    pub fn contains(self, skill: Skill) -> bool {
        self.0 & Self::bit(skill) != 0
    }

    pub fn insert(&mut self, skill: Skill) {
        self.0 |= Self::bit(skill);
    }

    pub fn iter(self) -> impl Iterator<Item = Skill> {
        Self::ALL_SKILLS
            .into_iter()
            .filter(move |s| self.contains(*s))
    }
}

impl FromIterator<Skill> for SkillSet {
    fn from_iter<I: IntoIterator<Item = Skill>>(iter: I) -> Self {
        let mut set = SkillSet::default();
        for skill in iter {
            set.insert(skill);
        }
        set
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", content = "ticket", rename_all = "snake_case")]
pub enum CrewStatus {
    OffDuty,
    /// On duty and free: in the pool the engine dispatches from.
    Available,
    /// Holds one job, from dispatch until the order is returned.
    Assigned(TicketId),
    /// Missed an acknowledgement: out of the pool until it reports duty or position again.
    Unresponsive,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Crew {
    pub id: CrewId,
    pub station: StationId,
    pub skills: SkillSet,
    pub position: LatLon,
    /// When this service learned the position.
    pub position_at: Option<Timestamp>,
    /// When the crew's phone says it took its last position fix (by the phone's clock,
    /// capped a few minutes past this service's): fixes are ordered by it, so a late or
    /// repeated one never moves the crew back, across restarts too.
    #[serde(default)]
    pub position_fix_at: Option<Timestamp>,
    pub status: CrewStatus,
}

impl Crew {
    pub fn is_available(&self) -> bool {
        self.status == CrewStatus::Available
    }

    pub fn job(&self) -> Option<&TicketId> {
        match &self.status {
            CrewStatus::Assigned(ticket) => Some(ticket),
            _ => None,
        }
    }
}

impl CrewStatus {
    /// The status names, in the order of [`CrewStatus::index`]: for counts and labels.
    pub const NAMES: [&'static str; 4] = ["off_duty", "available", "assigned", "unresponsive"];

    /// A dense index into [`CrewStatus::NAMES`].
    pub fn index(&self) -> usize {
        match self {
            CrewStatus::OffDuty => 0,
            CrewStatus::Available => 1,
            CrewStatus::Assigned(_) => 2,
            CrewStatus::Unresponsive => 3,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skill_set_holds_what_was_put_in() {
        let set: SkillSet = [Skill::Lv, Skill::Meter].into_iter().collect();
        assert!(set.contains(Skill::Lv));
        assert!(!set.contains(Skill::Hv));
        assert_eq!(
            set.iter().collect::<Vec<_>>(),
            vec![Skill::Lv, Skill::Meter]
        );
    }
}
