//! The `batch` policy: every interval, the waiting tickets and the free crews are matched in
//! one optimal assignment instead of one ticket at a time, so that in a storm a crew that
//! comes free takes work near it that can still be reached in time, not the oldest ticket
//! it may take (under `nearest`, within its borrow reach), which in a storm is mostly late
//! already.
//!
//! # The score of sending crew c to ticket t
//! In minutes of travel, with `e` the estimated travel of c to t at `now`:
//!
//! `score = emergency + important + on_time + wait_weight × waited − e`
//!
//! - `emergency`, `important`: `batch.emergency_minutes` / `batch.important_minutes` when
//!   the ticket is one;
//! - `on_time`: when c can still arrive by the ticket's arrival deadline (`now + e ≤
//!   arrive_by`), `batch.on_time_minutes × (1 + closeness)`, where closeness is the share
//!   of the ticket's arrival limit already gone (0 at the report, 1 at the deadline): the
//!   ticket that will be lost if not taken now counts most. It is the ticket's, the same for
//!   every crew, so travel keeps its full weight between crews;
//! - `waited`: minutes since the report, so that a ticket past hope still rises and is
//!   served in the end.
//!
//! # The assignment
//! The most pairs first (a free crew never idles while a ticket it could take waits among
//! the candidates), then the highest total score: Kuhn–Munkres (`pathfinding`) on integer
//! scores, with infeasible pairs (wrong skill, declined) below every feasible one. Started
//! work is pinned: only free crews and waiting tickets take part, no dispatch is undone.
//!
//! # Bounds (a typhoon queue holds thousands)
//! Candidate tickets: the `batch.max_tickets` most urgent in serving order, and each free
//! crew's `batch.tickets_per_crew` nearest it can take. Candidate crews: each candidate
//! ticket's `batch.crews_per_ticket` nearest eligible free crews, and the free crews that
//! brought a ticket in. Afterwards each crew still free takes its nearest waiting ticket, if
//! any it can take: the queue stays work-conserving as under `nearest`.
//!
//! # Determinism
//! Rows are tickets in serving order, columns crews in id order, scores integers
//! (hundredths of a minute): the same state gives the same events whatever the order the
//! region listed its crews in.

use super::{Choice, Engine};
use crate::domain::{Event, Ticket, TicketId, Timestamp};
use crate::engine::config::BatchConfig;
use crate::engine::queue::QueueKey;
use pathfinding::kuhn_munkres::{Weights, kuhn_munkres};
use std::collections::BTreeSet;

/// Scores are kept within ± this many hundredths of a minute (almost two years), so that
/// the feasibility offset below dominates any sum of them.
const SCORE_LIMIT: i64 = 100_000_000;

/// The score of sending a crew with estimated travel `eta_minutes` to `ticket` at `now`.
pub fn pair_score(config: &BatchConfig, ticket: &Ticket, eta_minutes: f64, now: Timestamp) -> f64 {
    let mut score = -eta_minutes;
    if ticket.served_as_emergency() {
        score += config.emergency_minutes;
    }
    if ticket.served_as_important() {
        score += config.important_minutes;
    }
    if let Some(arrive_by) = ticket.deadlines.arrive_by {
        let left = signed_minutes(arrive_by, now);
        if eta_minutes <= left {
            let limit = signed_minutes(arrive_by, ticket.reported_at).max(1.0);
            let closeness = 1.0 - (left / limit).clamp(0.0, 1.0);
            score += config.on_time_minutes * (1.0 + closeness);
        }
    }
    score + config.wait_weight * now.minutes_since(ticket.reported_at)
}

/// `to − from` in minutes, negative when `to` is earlier.
fn signed_minutes(to: Timestamp, from: Timestamp) -> f64 {
    (to.as_millis() - from.as_millis()) as f64 / 60_000.0
}

/// Pair scores of candidate tickets (rows) × crews (columns); `None` where the crew cannot
/// take the ticket.
#[derive(Debug, Clone)]
pub struct Scores {
    rows: usize,
    columns: usize,
    cells: Vec<Option<i64>>,
}

impl Scores {
    pub fn new(rows: usize, columns: usize) -> Self {
        Self {
            rows,
            columns,
            cells: vec![None; rows * columns],
        }
    }

    /// Sets a feasible pair's score in minutes.
    pub fn set(&mut self, row: usize, column: usize, minutes: f64) {
        let hundredths = (minutes * 100.0).round().clamp(-1e8, 1e8) as i64;
        self.cells[row * self.columns + column] = Some(hundredths);
    }

    pub fn get(&self, row: usize, column: usize) -> Option<i64> {
        self.cells[row * self.columns + column]
    }
}

/// The scores as Kuhn–Munkres wants them: at most as many rows as columns (transposed when
/// there are more tickets than crews), every feasible pair above every infeasible one by more
/// than any sum of scores can make up, so the most pairs win before the best total.
struct Offset<'a> {
    scores: &'a Scores,
    transposed: bool,
    feasible: i64,
    negated: bool,
}

impl Weights<i64> for Offset<'_> {
    fn rows(&self) -> usize {
        if self.transposed {
            self.scores.columns
        } else {
            self.scores.rows
        }
    }

    fn columns(&self) -> usize {
        if self.transposed {
            self.scores.rows
        } else {
            self.scores.columns
        }
    }

    fn at(&self, row: usize, column: usize) -> i64 {
        let (r, c) = if self.transposed {
            (column, row)
        } else {
            (row, column)
        };
        let weight = self.scores.get(r, c).map_or(0, |s| self.feasible + s);
        if self.negated { -weight } else { weight }
    }

    fn neg(&self) -> Self {
        Self {
            negated: !self.negated,
            ..*self
        }
    }
}

/// The assignment with the most feasible pairs and, among those, the highest total score:
/// (row, column) pairs in row order.
pub fn assign(scores: &Scores) -> Vec<(usize, usize)> {
    let pairs = scores.rows.min(scores.columns);
    if pairs == 0 {
        return Vec::new();
    }
    // Any set of `pairs` scores sums to less than 2 × pairs × SCORE_LIMIT in absolute value,
    // so one more feasible pair always outweighs it. Candidate sets are bounded by the free
    // crews (hundreds), far below where this would overflow.
    let feasible = 2 * (pairs as i64 + 1) * SCORE_LIMIT;
    let weights = Offset {
        scores,
        transposed: scores.rows > scores.columns,
        feasible,
        negated: false,
    };
    let (_, assigned) = kuhn_munkres(&weights);
    let mut result: Vec<(usize, usize)> = assigned
        .into_iter()
        .enumerate()
        .map(|(row, column)| {
            if weights.transposed {
                (column, row)
            } else {
                (row, column)
            }
        })
        .filter(|&(row, column)| scores.get(row, column).is_some())
        .collect();
    result.sort_unstable();
    result
}

/// One assignment's candidates: tickets in serving order, crews (dense slots) in id order,
/// and each pair's estimated travel where the crew can take the ticket.
struct Problem {
    tickets: Vec<TicketId>,
    crews: Vec<u32>,
    scores: Scores,
    eta: Vec<Option<f64>>,
}

impl Engine {
    /// `Command::AssignBatch`: assigns waiting tickets to free crews (see the module doc),
    /// then lets each crew still free take its nearest waiting ticket.
    pub(super) fn assign_batch(&mut self, now: Timestamp, events: &mut Vec<Event>) {
        if self.queue.len() == 0 {
            return;
        }
        let problem = self.batch_problem(now);
        for (row, column) in assign(&problem.scores) {
            let eta = problem.eta[row * problem.crews.len() + column];
            if let Some(eta_minutes) = eta {
                let choice = Choice {
                    crew: problem.crews[column],
                    eta_minutes,
                };
                self.dispatch(&problem.tickets[row], choice, now, events);
            }
        }
        self.serve_leftover(now, events);
    }

    /// Free crews, in crew id order, with their place in the pool's plane.
    fn free_crews(&self) -> Vec<(u32, [f64; 2])> {
        let mut free: Vec<(u32, [f64; 2])> = self
            .crews
            .iter()
            .enumerate()
            .filter_map(|(slot, s)| s.indexed_at.map(|at| (slot as u32, at)))
            .collect();
        free.sort_by(|a, b| {
            self.crews[a.0 as usize]
                .crew
                .id
                .cmp(&self.crews[b.0 as usize].crew.id)
        });
        free
    }

    fn batch_problem(&self, now: Timestamp) -> Problem {
        let config = &self.config.batch;
        let free = self.free_crews();
        let mut candidates: BTreeSet<&QueueKey> = self
            .queue
            .after(None)
            .take(config.max_tickets as usize)
            .collect();
        // Each free crew's nearest waiting tickets of a skill it has, by one walk of the
        // queue. Skipped when free crews are many and the walk would be long: then the queue
        // is short next to them, and the urgent tickets above cover it.
        let per_crew = config.tickets_per_crew as usize;
        let mut brought: BTreeSet<u32> = BTreeSet::new();
        if per_crew > 0 && free.len().saturating_mul(self.queue.len()) <= 4_000_000 {
            let mut nearest: Vec<Vec<(f64, &QueueKey)>> = vec![Vec::new(); free.len()];
            for (key, spot) in self.queue.waiting() {
                for (i, (slot, at)) in free.iter().enumerate() {
                    if !self.crews[*slot as usize].crew.skills.contains(spot.skill) {
                        continue;
                    }
                    let d2 = (at[0] - spot.at_km[0]).powi(2) + (at[1] - spot.at_km[1]).powi(2);
                    let list = &mut nearest[i];
                    if list.len() < per_crew || d2 < list[list.len() - 1].0 {
                        let place = list.partition_point(|(d, _)| *d <= d2);
                        list.insert(place, (d2, key));
                        list.truncate(per_crew);
                    }
                }
            }
            for (i, list) in nearest.into_iter().enumerate() {
                if !list.is_empty() {
                    brought.insert(free[i].0);
                }
                candidates.extend(list.into_iter().map(|(_, key)| key));
            }
        }
        let tickets: Vec<&Ticket> = candidates
            .into_iter()
            .filter_map(|key| self.tickets.get(key.ticket()))
            .collect();
        // Each candidate ticket's nearest eligible free crews.
        let mut crews = brought;
        for ticket in &tickets {
            let skill = ticket.report.category.required_skill();
            let at = self.projection.to_km(ticket.report.location);
            crews.extend(
                self.pool
                    .nearest(skill, at)
                    .map(|(slot, _)| slot)
                    .filter(|&slot| {
                        !ticket
                            .declined_by
                            .contains(&self.crews[slot as usize].crew.id)
                    })
                    .take(config.crews_per_ticket as usize),
            );
        }
        let mut crews: Vec<u32> = crews.into_iter().collect();
        crews.sort_by(|a, b| {
            self.crews[*a as usize]
                .crew
                .id
                .cmp(&self.crews[*b as usize].crew.id)
        });

        let mut scores = Scores::new(tickets.len(), crews.len());
        let mut eta = vec![None; tickets.len() * crews.len()];
        for (row, ticket) in tickets.iter().enumerate() {
            let skill = ticket.report.category.required_skill();
            for (column, &slot) in crews.iter().enumerate() {
                let crew = &self.crews[slot as usize].crew;
                if !crew.skills.contains(skill) || ticket.declined_by.contains(&crew.id) {
                    continue;
                }
                let minutes = self.config.travel_minutes(
                    crew.position.haversine_km(ticket.report.location),
                    ticket.area_class,
                );
                scores.set(row, column, pair_score(config, ticket, minutes, now));
                eta[row * crews.len() + column] = Some(minutes);
            }
        }
        Problem {
            tickets: tickets.iter().map(|t| t.id.clone()).collect(),
            crews,
            scores,
            eta,
        }
    }

    /// Each crew still free, in id order, takes the waiting ticket it reaches soonest (ties:
    /// serving order), so that no ticket waits while a crew that could take it is free.
    fn serve_leftover(&mut self, now: Timestamp, events: &mut Vec<Event>) {
        for (slot, _) in self.free_crews() {
            if self.queue.len() == 0 {
                return;
            }
            let crew = &self.crews[slot as usize].crew;
            if !crew.is_available() {
                continue;
            }
            let mut best: Option<(f64, &TicketId)> = None;
            for (key, spot) in self.queue.waiting() {
                if !crew.skills.contains(spot.skill) {
                    continue;
                }
                let Some(ticket) = self.tickets.get(key.ticket()) else {
                    continue;
                };
                if ticket.declined_by.contains(&crew.id) {
                    continue;
                }
                let minutes = self.config.travel_minutes(
                    crew.position.haversine_km(ticket.report.location),
                    ticket.area_class,
                );
                if best.is_none_or(|(b, _)| minutes < b) {
                    best = Some((minutes, key.ticket()));
                }
            }
            if let Some((eta_minutes, ticket)) = best {
                let ticket = ticket.clone();
                let choice = Choice {
                    crew: slot,
                    eta_minutes,
                };
                self.dispatch(&ticket, choice, now, events);
            }
        }
    }
}

/// How many tickets and crews the next assignment would weigh, for tests of its bounds.
#[cfg(test)]
pub(super) fn candidate_count(engine: &Engine, now: Timestamp) -> (usize, usize) {
    let problem = engine.batch_problem(now);
    (problem.tickets.len(), problem.crews.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The reference: every assignment of rows to distinct columns (or none), by brute force.
    fn brute_force(scores: &Scores) -> (usize, i64) {
        fn walk(
            scores: &Scores,
            row: usize,
            used: &mut Vec<bool>,
            best: &mut (usize, i64),
            acc: (usize, i64),
        ) {
            if row == scores.rows {
                if acc.0 > best.0 || (acc.0 == best.0 && acc.1 > best.1) {
                    *best = acc;
                }
                return;
            }
            walk(scores, row + 1, used, best, acc);
            for column in 0..scores.columns {
                if let (false, Some(s)) = (used[column], scores.get(row, column)) {
                    used[column] = true;
                    walk(scores, row + 1, used, best, (acc.0 + 1, acc.1 + s));
                    used[column] = false;
                }
            }
        }
        let mut best = (0, i64::MIN);
        walk(
            scores,
            0,
            &mut vec![false; scores.columns],
            &mut best,
            (0, 0),
        );
        best
    }

    proptest! {
        /// The assignment has the most feasible pairs, then the highest total: the brute
        /// force's optimum, on both orientations of the matrix.
        #[test]
        fn assignment_is_optimal(
            rows in 0usize..6,
            columns in 0usize..6,
            cells in prop::collection::vec(prop::option::weighted(0.6, -500.0f64..500.0), 36),
        ) {
            let mut scores = Scores::new(rows, columns);
            for r in 0..rows {
                for c in 0..columns {
                    if let Some(s) = cells[r * 6 + c] {
                        scores.set(r, c, s);
                    }
                }
            }
            let pairs = assign(&scores);
            let rows_used: BTreeSet<_> = pairs.iter().map(|p| p.0).collect();
            let columns_used: BTreeSet<_> = pairs.iter().map(|p| p.1).collect();
            prop_assert_eq!(rows_used.len(), pairs.len());
            prop_assert_eq!(columns_used.len(), pairs.len());
            let total: i64 = pairs.iter().map(|&(r, c)| scores.get(r, c).unwrap()).sum();
            let (best_pairs, best_total) = brute_force(&scores);
            prop_assert_eq!(pairs.len(), best_pairs);
            if best_pairs > 0 {
                prop_assert_eq!(total, best_total);
            }
        }
    }

    #[test]
    fn a_ticket_that_can_still_be_reached_in_time_scores_above_one_that_cannot() {
        use crate::domain::{
            AreaClass, Caller, FaultCategory, FaultReport, IncidentId, LatLon, Priority, StationId,
        };
        let minutes = |m: i64| Timestamp::from_millis(m * 60_000);
        let ticket = Ticket::new(
            TicketId::new("T"),
            IncidentId::new("I"),
            StationId::new("S"),
            AreaClass::Urban,
            FaultReport {
                caller: Caller {
                    name: "Chen".into(),
                    phone: "1".into(),
                },
                location: LatLon::new(23.0, 114.0).unwrap(),
                address: String::new(),
                category: FaultCategory::NoPower,
                priority: Priority::Normal,
                important_customer: false,
                description: String::new(),
            },
            minutes(0),
            Some(minutes(45)),
        );
        let config = BatchConfig {
            on_time_minutes: 45.0,
            wait_weight: 0.0,
            ..BatchConfig::default()
        };
        // At 30 min, 10 minutes away: in time, 15 of the 45 minutes left (closeness 2/3).
        let in_time = pair_score(&config, &ticket, 10.0, minutes(30));
        let expected = -10.0 + 45.0 * (1.0 + 2.0 / 3.0);
        assert!((in_time - expected).abs() < 1e-9, "{in_time} vs {expected}");
        // 20 minutes away: too late, only the travel counts.
        assert_eq!(pair_score(&config, &ticket, 20.0, minutes(30)), -20.0);
        // Closer to its deadline with the same travel: worth more; a longer drive, less.
        assert!(pair_score(&config, &ticket, 10.0, minutes(34)) > in_time);
        assert!(pair_score(&config, &ticket, 12.0, minutes(30)) < in_time);
    }
}
