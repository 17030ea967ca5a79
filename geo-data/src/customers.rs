//! Customers served per station, estimated from the village-level committees of the station's
//! township: the best density proxy in the public data (populations are mostly missing).
//!
//! **Households rule.** A station's estimated households are
//! `2,500 × residents' committees + 1,000 × villagers' committees`: an urban residents'
//! committee (居民委员会, 社区) typically serves a few thousand households, a rural villagers'
//! committee (村民委员会) several hundred to a thousand or so. Over all of Huizhou's 306 and
//! 1,043 committees this gives 1.81 M, against about 1.78 M low-voltage customers. Other
//! village-level units (forest farms and the like) are left out.
//!
//! **Missing counts.** A place whose committee counts are unknown (for example Huizhou's city
//! seat point, which stands for four central subdistricts, or a station put at a district's
//! interior point) takes the element-wise lower median of the known counts, looking in turn
//! at: places of the same rank (seat of a county or higher, or not) in the same district; of
//! the same rank in the whole region; all places of the region; and, when the region has no
//! counts at all, [`DEFAULT_SEAT`] or [`DEFAULT_TOWNSHIP`]. GeoNames populations are not used:
//! the few there are count whole cities (2.9 M for the Huizhou point).
//!
//! **Scaling.** With `--customers N` the households are only weights: each station gets its
//! share of `N` by the largest-remainder method (ties to the earlier station), so the
//! counts are integers that sum to exactly `N`. Without it, the households are the customers.

use serde::Serialize;

pub const HOUSEHOLDS_PER_RESIDENTS_COMMITTEE: u64 = 2_500;
pub const HOUSEHOLDS_PER_VILLAGERS_COMMITTEE: u64 = 1_000;

/// Counts for a seat with no known counts in a region with none at all: about the median of
/// Huizhou's county seats.
pub const DEFAULT_SEAT: Committees = Committees {
    residents: 20,
    villagers: 20,
};

/// Counts for a township with no known counts in a region with none at all: about the median
/// of Huizhou's townships.
pub const DEFAULT_TOWNSHIP: Committees = Committees {
    residents: 2,
    villagers: 15,
};

/// Village-level committees of a township.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Committees {
    /// Urban residents' committees (居民委员会).
    pub residents: u64,
    /// Rural villagers' committees (村民委员会).
    pub villagers: u64,
}

impl Committees {
    /// Estimated households by the rule in the module documentation.
    pub fn households(&self) -> u64 {
        self.residents
            .saturating_mul(HOUSEHOLDS_PER_RESIDENTS_COMMITTEE)
            .saturating_add(
                self.villagers
                    .saturating_mul(HOUSEHOLDS_PER_VILLAGERS_COMMITTEE),
            )
    }

    /// Whether at least half of the committees are urban residents' committees.
    pub fn mostly_urban(&self) -> bool {
        let total = self.residents.saturating_add(self.villagers);
        total > 0 && self.residents.saturating_mul(2) >= total
    }
}

/// Where a station's committee counts came from; written to `stations.geojson` as
/// `committees_source`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CommitteesSource {
    /// The place's own township.
    Place,
    /// Median of the places of the same rank in the same district.
    DistrictMedian,
    /// Median of the places of the same rank in the region.
    RegionRankMedian,
    /// Median of all places of the region.
    RegionMedian,
    /// [`DEFAULT_SEAT`] or [`DEFAULT_TOWNSHIP`].
    Default,
}

impl CommitteesSource {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Place => "place",
            Self::DistrictMedian => "district_median",
            Self::RegionRankMedian => "region_rank_median",
            Self::RegionMedian => "region_median",
            Self::Default => "default",
        }
    }
}

/// What the fallback needs to know about one station.
#[derive(Debug, Clone, Copy)]
pub struct CommitteesInput {
    pub district: usize,
    /// Seat of a county or higher ([`crate::stations::is_seat`]).
    pub seat: bool,
    pub known: Option<Committees>,
}

/// Fills in the missing counts by the fallback in the module documentation.
pub fn fill_committees(inputs: &[CommitteesInput]) -> Vec<(Committees, CommitteesSource)> {
    inputs
        .iter()
        .map(|input| {
            if let Some(known) = input.known {
                return (known, CommitteesSource::Place);
            }
            for source in [
                CommitteesSource::DistrictMedian,
                CommitteesSource::RegionRankMedian,
                CommitteesSource::RegionMedian,
            ] {
                let pool: Vec<Committees> = inputs
                    .iter()
                    .filter(|other| in_pool(source, input, other))
                    .filter_map(|other| other.known)
                    .collect();
                if let Some(median) = lower_median(&pool) {
                    return (median, source);
                }
            }
            let default = if input.seat {
                DEFAULT_SEAT
            } else {
                DEFAULT_TOWNSHIP
            };
            (default, CommitteesSource::Default)
        })
        .collect()
}

/// Whether `other` is among the places whose median the fallback step `source` takes for
/// `input`.
fn in_pool(source: CommitteesSource, input: &CommitteesInput, other: &CommitteesInput) -> bool {
    match source {
        CommitteesSource::DistrictMedian => {
            other.district == input.district && other.seat == input.seat
        }
        CommitteesSource::RegionRankMedian => other.seat == input.seat,
        CommitteesSource::RegionMedian => true,
        CommitteesSource::Place | CommitteesSource::Default => false,
    }
}

fn lower_median(pool: &[Committees]) -> Option<Committees> {
    if pool.is_empty() {
        return None;
    }
    let pick = |mut v: Vec<u64>| {
        v.sort_unstable();
        v[(v.len() - 1) / 2]
    };
    Some(Committees {
        residents: pick(pool.iter().map(|c| c.residents).collect()),
        villagers: pick(pool.iter().map(|c| c.villagers).collect()),
    })
}

/// Splits `total` in proportion to `weights` by the largest-remainder method: the result sums
/// to exactly `total`, and equal remainders go to the earlier index. All-zero weights count as
/// equal weights.
pub fn apportion(weights: &[u64], total: u64) -> Vec<u64> {
    if weights.is_empty() {
        return Vec::new();
    }
    let ones;
    let weights = if weights.iter().all(|w| *w == 0) {
        ones = vec![1; weights.len()];
        &ones
    } else {
        weights
    };
    let sum: u128 = weights.iter().map(|w| u128::from(*w)).sum();
    let total_wide = u128::from(total);
    let mut shares: Vec<(u64, u128)> = weights
        .iter()
        .map(|w| {
            let exact = total_wide * u128::from(*w);
            // Each quotient is at most `total`, so it fits in u64.
            let quotient = u64::try_from(exact / sum).unwrap_or(u64::MAX);
            (quotient, exact % sum)
        })
        .collect();
    let given: u64 = shares.iter().map(|(q, _)| *q).sum();
    let mut order: Vec<usize> = (0..shares.len()).collect();
    order.sort_by(|a, b| shares[*b].1.cmp(&shares[*a].1).then(a.cmp(b)));
    // Fewer than `weights.len()` units remain, since each share lost less than one.
    for i in order
        .into_iter()
        .take(usize::try_from(total - given).unwrap_or(usize::MAX))
    {
        shares[i].0 += 1;
    }
    shares.into_iter().map(|(q, _)| q).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn c(residents: u64, villagers: u64) -> Committees {
        Committees {
            residents,
            villagers,
        }
    }

    #[test]
    fn households_rule() {
        assert_eq!(c(306, 1_043).households(), 1_808_000);
        assert!(c(10, 6).mostly_urban());
        assert!(c(4, 4).mostly_urban());
        assert!(!c(4, 13).mostly_urban());
        assert!(!c(0, 0).mostly_urban());
    }

    #[test]
    fn fallback_order() {
        let input = |district, seat, known| CommitteesInput {
            district,
            seat,
            known,
        };
        let filled = fill_committees(&[
            input(0, true, None),
            input(0, false, Some(c(1, 10))),
            input(0, false, Some(c(3, 30))),
            input(0, false, None),
            input(1, true, Some(c(20, 8))),
            input(1, true, Some(c(19, 31))),
            input(1, true, Some(c(22, 24))),
            input(1, false, None),
            input(2, false, None),
        ]);
        assert_eq!(filled[0], (c(20, 24), CommitteesSource::RegionRankMedian));
        assert_eq!(filled[3], (c(1, 10), CommitteesSource::DistrictMedian));
        assert_eq!(filled[7], (c(1, 10), CommitteesSource::RegionRankMedian));
        assert_eq!(filled[4], (c(20, 8), CommitteesSource::Place));
        let none = fill_committees(&[input(0, true, None), input(0, false, None)]);
        assert_eq!(none[0], (DEFAULT_SEAT, CommitteesSource::Default));
        assert_eq!(none[1], (DEFAULT_TOWNSHIP, CommitteesSource::Default));
        let other_rank = fill_committees(&[input(0, true, None), input(0, false, Some(c(2, 9)))]);
        assert_eq!(other_rank[0], (c(2, 9), CommitteesSource::RegionMedian));
    }

    #[test]
    fn apportion_examples() {
        assert_eq!(apportion(&[1, 1, 1], 10), vec![4, 3, 3]);
        assert_eq!(apportion(&[0, 0], 3), vec![2, 1]);
        assert_eq!(apportion(&[5, 0], 3), vec![3, 0]);
        assert_eq!(apportion(&[], 3), Vec::<u64>::new());
        assert_eq!(apportion(&[2, 3], 0), vec![0, 0]);
    }

    proptest! {
        #[test]
        fn apportion_sums_exactly(
            weights in proptest::collection::vec(0u64..200_000, 1..100),
            total in 0u64..10_000_000,
        ) {
            let shares = apportion(&weights, total);
            prop_assert_eq!(shares.iter().sum::<u64>(), total);
            let sum: u64 = weights.iter().sum();
            if sum > 0 {
                for (w, s) in weights.iter().zip(&shares) {
                    let exact = total as f64 * *w as f64 / sum as f64;
                    prop_assert!((*s as f64 - exact).abs() < 1.0 + 1e-9);
                }
            }
        }
    }
}
