//! Seeded random streams: one per purpose and index (the calls, each ticket, each dispatch),
//! so that a draw for one thing never shifts the draws for another, and a seed gives the
//! same run on any machine (PCG's output is fixed by its algorithm).

use rand::SeedableRng;
use rand_pcg::Pcg64Mcg;

/// What a stream is for; part of its seed.
pub mod purpose {
    pub const CALLS: u64 = 1;
    pub const TICKET: u64 = 2;
    pub const DISPATCH: u64 = 3;
    pub const CREW: u64 = 4;
}

/// The stream for `purpose` and `index` under `seed`.
pub fn stream(seed: u64, purpose: u64, index: u64) -> Pcg64Mcg {
    Pcg64Mcg::seed_from_u64(mix(mix(mix(seed) ^ purpose) ^ index))
}

/// SplitMix64's finaliser: nearby inputs give unrelated outputs.
fn mix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::RngExt;

    #[test]
    fn streams_differ_by_purpose_and_index_and_repeat_for_a_seed() {
        let draw = |seed, purpose, index| stream(seed, purpose, index).random::<u64>();
        assert_eq!(draw(1, 2, 3), draw(1, 2, 3));
        assert_ne!(draw(1, 2, 3), draw(1, 2, 4));
        assert_ne!(draw(1, 2, 3), draw(1, 3, 3));
        assert_ne!(draw(1, 2, 3), draw(2, 2, 3));
    }
}
