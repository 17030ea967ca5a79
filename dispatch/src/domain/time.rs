//! Instants as milliseconds since the Unix epoch (UTC). The domain never reads a clock; the
//! caller hands in `now`, which is what makes every decision replayable and testable.

use serde::{Deserialize, Serialize};
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Timestamp(i64);

impl Timestamp {
    pub const fn from_millis(millis: i64) -> Self {
        Self(millis)
    }

    pub const fn as_millis(self) -> i64 {
        self.0
    }

    /// Saturates rather than wrapping: a deadline far in the future is still in the future.
    pub fn plus(self, duration: Duration) -> Self {
        let millis = i64::try_from(duration.as_millis()).unwrap_or(i64::MAX);
        Self(self.0.saturating_add(millis))
    }

    /// Whether a deadline at this instant has passed by `now`: only strictly after it, as a
    /// step at its very millisecond meets it. The one rule the deadline driver, a step's own
    /// breaches, the ticket's timeout and the reports all judge by.
    pub fn passed_by(self, now: Timestamp) -> bool {
        self < now
    }

    /// The first instant at which a deadline at this one has passed ([`Timestamp::passed_by`]).
    pub fn first_instant_past(self) -> Self {
        Self(self.0.saturating_add(1))
    }

    pub fn plus_minutes(self, minutes: u32) -> Self {
        Self(self.0.saturating_add(i64::from(minutes) * 60_000))
    }

    /// Time from `earlier` to `self`; zero when `earlier` is later.
    pub fn since(self, earlier: Timestamp) -> Duration {
        Duration::from_millis(u64::try_from(self.0.saturating_sub(earlier.0)).unwrap_or(0))
    }

    pub fn minutes_since(self, earlier: Timestamp) -> f64 {
        self.since(earlier).as_secs_f64() / 60.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arithmetic_saturates_instead_of_wrapping() {
        let t = Timestamp::from_millis(i64::MAX - 10);
        assert_eq!(t.plus_minutes(1), Timestamp::from_millis(i64::MAX));
        assert_eq!(
            Timestamp::from_millis(0).since(Timestamp::from_millis(5)),
            Duration::ZERO
        );
        assert_eq!(
            Timestamp::from_millis(90_000).minutes_since(Timestamp::from_millis(0)),
            1.5
        );
    }

    #[test]
    fn a_deadline_passes_only_after_its_instant() {
        let due = Timestamp::from_millis(1_000);
        assert!(!due.passed_by(Timestamp::from_millis(999)));
        assert!(!due.passed_by(due), "a step at the instant meets it");
        assert!(due.passed_by(due.first_instant_past()));
        assert_eq!(due.first_instant_past(), Timestamp::from_millis(1_001));
        let last = Timestamp::from_millis(i64::MAX);
        assert_eq!(last.first_instant_past(), last, "saturates");
    }
}
