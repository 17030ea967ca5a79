//! Reports computed from tickets as pure functions: deadline compliance per SLA stage
//! ([`sla`]), the reliability indices SAIFI / SAIDI / CAIDI / RS ([`reliability`]) and the
//! estimated time of restoration of an open ticket ([`etr`]); for the control room, the
//! deadline clocks an open ticket runs ([`deadlines`]) and the fault heat map ([`heat`]).
//! Nothing here does I/O or reads a clock: the dispatcher hands in the tickets, the stations
//! and `now`.
//!
//! Every report covers a half-open window `[from, to)` ([`Window`]), so consecutive windows
//! never count the same thing twice.

pub mod deadlines;
pub mod etr;
pub mod heat;
pub mod reliability;
pub mod sla;

pub use etr::{EtrConfig, RepairStats, estimate_restoration};
pub use reliability::{ReliabilityConfig, ReliabilityReport};
pub use sla::{SlaSummary, StageSummary, summarize_sla};

use crate::domain::Timestamp;

/// The report configuration (`[reliability]`, `[etr]`), held by the dispatcher.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ReportSettings {
    pub reliability: ReliabilityConfig,
    pub etr: EtrConfig,
}

/// A report's period, `[from, to)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub from: Timestamp,
    pub to: Timestamp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum WindowError {
    #[error("from must be before to")]
    Empty,
}

impl Window {
    /// Refuses empty and reversed windows: a rate over zero hours has no meaning.
    pub fn new(from: Timestamp, to: Timestamp) -> Result<Self, WindowError> {
        if from < to {
            Ok(Self { from, to })
        } else {
            Err(WindowError::Empty)
        }
    }

    pub fn contains(&self, at: Timestamp) -> bool {
        self.from <= at && at < self.to
    }

    pub fn hours(&self) -> f64 {
        self.to.minutes_since(self.from) / 60.0
    }
}

/// The `q`-quantile (0..=1) by nearest rank of `sorted` (ascending): the smallest value with
/// at least `q` of the values at or below it. Nearest rank always answers a value that was
/// observed, which is what a supervisor expects of "p90 = 52 minutes".
pub fn nearest_rank(sorted: &[f64], q: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let n = sorted.len();
    // ceil(q * n) as a 1-based rank, at least 1. `n` is a count of tickets, far below 2^52,
    // so the float round trip is exact.
    let rank = ((q.clamp(0.0, 1.0) * n as f64).ceil() as usize).clamp(1, n);
    sorted.get(rank - 1).copied()
}

/// The median of `values` (any order): the middle value, or the mean of the two middle ones.
pub fn median(values: &[f64]) -> Option<f64> {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => sorted.get(n / 2).copied(),
        _ => Some((sorted[n / 2 - 1] + sorted[n / 2]) / 2.0),
    }
}

/// Rounds for display: one decimal is the precision of a minute-level clock.
pub fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_are_half_open_and_never_empty() {
        let w = Window::new(Timestamp::from_millis(0), Timestamp::from_millis(3_600_000)).unwrap();
        assert!(w.contains(Timestamp::from_millis(0)));
        assert!(!w.contains(Timestamp::from_millis(3_600_000)));
        assert_eq!(w.hours(), 1.0);
        let t = Timestamp::from_millis(5);
        assert_eq!(Window::new(t, t), Err(WindowError::Empty));
    }

    #[test]
    fn nearest_rank_percentiles_by_hand() {
        // 10 values 1..=10: p50 → rank ceil(5.0) = 5 → 5; p90 → rank ceil(9.0) = 9 → 9.
        let v: Vec<f64> = (1..=10).map(f64::from).collect();
        assert_eq!(nearest_rank(&v, 0.5), Some(5.0));
        assert_eq!(nearest_rank(&v, 0.9), Some(9.0));
        // 3 values: p90 → rank ceil(2.7) = 3 → the largest.
        assert_eq!(nearest_rank(&[4.0, 8.0, 15.0], 0.9), Some(15.0));
        assert_eq!(nearest_rank(&[], 0.5), None);
    }

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median(&[30.0, 10.0, 20.0]), Some(20.0));
        // (20 + 30) / 2 = 25
        assert_eq!(median(&[40.0, 10.0, 30.0, 20.0]), Some(25.0));
        assert_eq!(median(&[]), None);
    }
}
