//! The pool of available crews, one R-tree per skill so that a search for an `hv` crew never
//! walks past `lv`-only crews. Crews are known by their dense index in the engine's table.

use super::PointIndex;
use crate::domain::{Skill, SkillSet};

#[derive(Debug, Clone, Default)]
pub struct CrewIndex {
    lv: PointIndex<u32>,
    hv: PointIndex<u32>,
    meter: PointIndex<u32>,
}

impl CrewIndex {
    fn tree(&self, skill: Skill) -> &PointIndex<u32> {
        match skill {
            Skill::Lv => &self.lv,
            Skill::Hv => &self.hv,
            Skill::Meter => &self.meter,
        }
    }

    fn tree_mut(&mut self, skill: Skill) -> &mut PointIndex<u32> {
        match skill {
            Skill::Lv => &mut self.lv,
            Skill::Hv => &mut self.hv,
            Skill::Meter => &mut self.meter,
        }
    }

    pub fn insert(&mut self, crew: u32, skills: SkillSet, at: [f64; 2]) {
        for skill in skills.iter() {
            self.tree_mut(skill).insert(crew, at);
        }
    }

    pub fn remove(&mut self, crew: u32, skills: SkillSet, at: [f64; 2]) {
        for skill in skills.iter() {
            self.tree_mut(skill).remove(crew, at);
        }
    }

    /// Available crews with `skill`, nearest first, with the projected distance in km.
    pub fn nearest(&self, skill: Skill, at: [f64; 2]) -> impl Iterator<Item = (u32, f64)> + '_ {
        self.tree(skill).nearest(at)
    }

    pub fn available(&self, skill: Skill) -> usize {
        self.tree(skill).len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_crew_is_found_only_under_its_own_skills() {
        let mut index = CrewIndex::default();
        let lv_hv: SkillSet = [Skill::Lv, Skill::Hv].into_iter().collect();
        index.insert(7, lv_hv, [1.0, 1.0]);
        assert_eq!(
            index.nearest(Skill::Hv, [0.0, 0.0]).next().map(|c| c.0),
            Some(7)
        );
        assert_eq!(index.nearest(Skill::Meter, [0.0, 0.0]).next(), None);
        index.remove(7, lv_hv, [1.0, 1.0]);
        assert_eq!(index.available(Skill::Lv), 0);
        assert_eq!(index.available(Skill::Hv), 0);
    }
}
