//! The pool of available crews. One R-tree per skill answers "the nearest free crew that can
//! do this", so a search for an `hv` crew never walks past `lv`-only crews; beside it, each
//! station's free crews in a short list answer "the best crew of the ticket's own station"
//! without walking every crew between it and the ticket. Crews are known by their dense
//! index in the engine's table; stations likewise.

use super::PointIndex;
use crate::domain::{Skill, SkillSet};

#[derive(Debug, Clone, Default)]
pub struct CrewIndex {
    lv: PointIndex<u32>,
    hv: PointIndex<u32>,
    meter: PointIndex<u32>,
    /// Free crews of each station. A station has a handful of crews (2 to 8 in generated
    /// regions), so a list beats a tree here and updates are O(crews of the station).
    by_station: Vec<Vec<(u32, SkillSet, [f32; 2])>>,
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

    pub fn insert(&mut self, crew: u32, station: Option<u32>, skills: SkillSet, at: [f64; 2]) {
        for skill in skills.iter() {
            self.tree_mut(skill).insert(crew, at);
        }
        if let Some(station) = station {
            let station = station as usize;
            if self.by_station.len() <= station {
                self.by_station.resize_with(station + 1, Vec::new);
            }
            self.by_station[station].push((crew, skills, [at[0] as f32, at[1] as f32]));
        }
    }

    pub fn remove(&mut self, crew: u32, station: Option<u32>, skills: SkillSet, at: [f64; 2]) {
        for skill in skills.iter() {
            self.tree_mut(skill).remove(crew, at);
        }
        if let Some(list) = station.and_then(|s| self.by_station.get_mut(s as usize)) {
            list.retain(|(c, _, _)| *c != crew);
        }
    }

    /// Available crews with `skill`, nearest first, with the projected distance in km.
    pub fn nearest(&self, skill: Skill, at: [f64; 2]) -> impl Iterator<Item = (u32, f64)> + '_ {
        self.tree(skill).nearest(at)
    }

    /// The nearest available crew with `skill`.
    pub fn nearest_one(&self, skill: Skill, at: [f64; 2]) -> Option<(u32, f64)> {
        self.tree(skill).nearest_one(at)
    }

    /// Available crews with `skill` within `radius_km` of `at`, in no particular order.
    pub fn within(
        &self,
        skill: Skill,
        at: [f64; 2],
        radius_km: f64,
    ) -> impl Iterator<Item = u32> + '_ {
        self.tree(skill).within(at, radius_km)
    }

    /// Available crews of `station` with `skill`, in no particular order, with their
    /// projected distance from `at` in km.
    pub fn of_station(
        &self,
        station: u32,
        skill: Skill,
        at: [f64; 2],
    ) -> impl Iterator<Item = (u32, f64)> + '_ {
        self.by_station
            .get(station as usize)
            .into_iter()
            .flatten()
            .filter(move |(_, skills, _)| skills.contains(skill))
            .map(move |(crew, _, p)| {
                let (dx, dy) = (f64::from(p[0]) - at[0], f64::from(p[1]) - at[1]);
                (*crew, (dx * dx + dy * dy).sqrt())
            })
    }

    /// Whether `crew` is in the pool under every skill of `skills` and in its station's list:
    /// a full scan, for audits.
    pub fn holds(&self, crew: u32, station: Option<u32>, skills: SkillSet) -> bool {
        let in_trees = skills
            .iter()
            .all(|skill| self.tree(skill).nearest([0.0, 0.0]).any(|(c, _)| c == crew));
        let in_list = station.is_none_or(|s| {
            self.by_station
                .get(s as usize)
                .is_some_and(|list| list.iter().any(|(c, _, _)| *c == crew))
        });
        in_trees && in_list
    }

    /// Whether any crew of `station` is in the pool.
    pub fn has_free_at(&self, station: u32) -> bool {
        self.by_station
            .get(station as usize)
            .is_some_and(|list| !list.is_empty())
    }

    pub fn available(&self, skill: Skill) -> usize {
        self.tree(skill).len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_crew_is_found_only_under_its_own_skills_and_station() {
        let mut index = CrewIndex::default();
        let lv_hv: SkillSet = [Skill::Lv, Skill::Hv].into_iter().collect();
        index.insert(7, Some(2), lv_hv, [1.0, 1.0]);
        assert_eq!(
            index.nearest(Skill::Hv, [0.0, 0.0]).next().map(|c| c.0),
            Some(7)
        );
        assert_eq!(index.nearest(Skill::Meter, [0.0, 0.0]).next(), None);
        let own: Vec<_> = index.of_station(2, Skill::Hv, [1.0, 0.0]).collect();
        assert_eq!(own, vec![(7, 1.0)]);
        assert_eq!(index.of_station(2, Skill::Meter, [0.0, 0.0]).count(), 0);
        assert_eq!(index.of_station(0, Skill::Lv, [0.0, 0.0]).count(), 0);
        assert!(index.has_free_at(2));
        assert!(!index.has_free_at(0));
        index.remove(7, Some(2), lv_hv, [1.0, 1.0]);
        assert_eq!(index.available(Skill::Lv), 0);
        assert_eq!(index.available(Skill::Hv), 0);
        assert_eq!(index.of_station(2, Skill::Lv, [0.0, 0.0]).count(), 0);
        assert!(!index.has_free_at(2));
    }
}
