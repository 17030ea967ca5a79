//! A set of keyed points in projected kilometres with O(log n) insert, remove and nearest
//! search: the building block of the crew and incident indexes.

use rstar::RTree;
use rstar::primitives::GeomWithData;

/// Points are stored as `f32`: an R-tree node of `f64` points costs a third more memory, and
/// projected coordinates near the region's centre keep metre precision in `f32`. Callers
/// pass `f64` and the conversion is the same on insert and remove, so keys are found again.
type Entry<K> = GeomWithData<[f32; 2], K>;

fn narrow(at: [f64; 2]) -> [f32; 2] {
    [at[0] as f32, at[1] as f32]
}

/// The caller keeps each key's point (it needs it anyway) and hands it back to `remove`,
/// so the index itself stores no map beside the tree.
#[derive(Debug, Clone)]
pub struct PointIndex<K: Copy + PartialEq> {
    tree: RTree<Entry<K>>,
}

impl<K: Copy + PartialEq> Default for PointIndex<K> {
    fn default() -> Self {
        Self { tree: RTree::new() }
    }
}

impl<K: Copy + PartialEq> PointIndex<K> {
    /// Builds in one pass (bulk loading packs the tree better than repeated inserts).
    pub fn bulk_load(entries: Vec<(K, [f64; 2])>) -> Self {
        Self {
            tree: RTree::bulk_load(
                entries
                    .into_iter()
                    .map(|(key, at)| GeomWithData::new(narrow(at), key))
                    .collect(),
            ),
        }
    }

    pub fn insert(&mut self, key: K, at: [f64; 2]) {
        self.tree.insert(GeomWithData::new(narrow(at), key));
    }

    /// Removes `key` stored at `at`; false when it was not there.
    pub fn remove(&mut self, key: K, at: [f64; 2]) -> bool {
        self.tree
            .remove(&GeomWithData::new(narrow(at), key))
            .is_some()
    }

    pub fn len(&self) -> usize {
        self.tree.size()
    }

    pub fn is_empty(&self) -> bool {
        self.tree.size() == 0
    }

    /// Keys in order of distance from `at`, with the distance in km, lazily.
    pub fn nearest(&self, at: [f64; 2]) -> impl Iterator<Item = (K, f64)> + '_ {
        self.tree
            .nearest_neighbor_iter_with_distance_2(&narrow(at))
            .map(|(entry, d2)| (entry.data, f64::from(d2).sqrt()))
    }

    /// The nearest key, with its distance in km: cheaper than `nearest().next()`, which sets
    /// up a heap for the lazy walk.
    pub fn nearest_one(&self, at: [f64; 2]) -> Option<(K, f64)> {
        let at = narrow(at);
        self.tree.nearest_neighbor(&at).map(|entry| {
            let (dx, dy) = (entry.geom()[0] - at[0], entry.geom()[1] - at[1]);
            (entry.data, f64::from(dx * dx + dy * dy).sqrt())
        })
    }

    /// Keys within `radius_km` of `at`, in no particular order.
    pub fn within(&self, at: [f64; 2], radius_km: f64) -> impl Iterator<Item = K> + '_ {
        let radius = radius_km as f32;
        self.tree
            .locate_within_distance(narrow(at), radius * radius)
            .map(|entry| entry.data)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// After any mix of inserts and removes, `nearest` yields exactly the keys present,
        /// closest first.
        #[test]
        fn nearest_is_sorted_and_complete(
            ops in proptest::collection::vec((0u32..40, -50.0f64..50.0, -50.0f64..50.0, any::<bool>()), 1..120)
        ) {
            let mut index = PointIndex::default();
            let mut present: std::collections::HashMap<u32, [f64; 2]> = Default::default();
            for (key, x, y, insert) in ops {
                if insert && !present.contains_key(&key) {
                    index.insert(key, [x, y]);
                    present.insert(key, [x, y]);
                } else if let Some(at) = present.remove(&key) {
                    prop_assert!(index.remove(key, at));
                }
            }
            let found: Vec<(u32, f64)> = index.nearest([0.0, 0.0]).collect();
            prop_assert_eq!(found.len(), present.len());
            prop_assert!(found.windows(2).all(|w| w[0].1 <= w[1].1));
            for (key, d) in found {
                let [x, y] = present[&key];
                prop_assert!(((x * x + y * y).sqrt() - d).abs() < 1e-4);
            }
        }
    }

    #[test]
    fn within_finds_only_points_in_the_radius() {
        let index =
            PointIndex::bulk_load(vec![(1u32, [0.0, 0.0]), (2, [0.2, 0.0]), (3, [0.5, 0.0])]);
        let mut near: Vec<u32> = index.within([0.0, 0.0], 0.3).collect();
        near.sort();
        assert_eq!(near, vec![1, 2]);
        assert!(!index.clone().remove(9, [0.0, 0.0]));
    }
}
