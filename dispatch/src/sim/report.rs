//! What a run's outcome says: the figures a utility asks for, per policy, beside the lower
//! bound computed over the very same tickets, and the markdown table of all of them.
//!
//! # Definitions
//! - **Tickets** are the reports not merged into an open incident (a merged repeat call gets
//!   no crew of its own).
//! - **In time**: of the tickets with an arrival deadline whose outcome is known at the end
//!   (the crew arrived, or the deadline passed), the share where the crew arrived by it.
//! - **Arrival** and **restoration** minutes run from the report; over the tickets that got
//!   there by the end (p90 by nearest rank).
//! - **Waits** run from the report to the (latest) dispatch, or to the end for a ticket
//!   still waiting; a ticket "waited" when that is over a minute (under `batch` every
//!   ticket waits for the next assignment, up to its 30 s interval).
//! - **Mean drive** is the engine's estimate of travel for the crews it sent: how far the
//!   policy sends crews.
//! - **Customer-minutes** (SAIDI-style): for each ticket of a supply interruption, the
//!   customers its category interrupts times the minutes from report to restoration, or to
//!   the end while still out, so that a policy cannot look better by leaving work undone.
//!   Divided by the customers served it is SAIDI in minutes.
//! - **Crew use**: crews busy (from dispatch to the returned order) over crews on duty,
//!   sampled every few minutes.
//! - **Lower bound**: each ticket reached at its bound (`run.rs`), with its own repair time
//!   after that; the same tickets, so each figure of a run is no better than its bound.

use super::Dispatch;
use super::run::RunOutcome;
use crate::domain::{AreaClass, TicketState};
use crate::reports::nearest_rank;
use std::fmt::Write;

/// Tickets that met a deadline out of those whose outcome is known.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Share {
    pub met: usize,
    pub due: usize,
}

impl Share {
    pub fn percent(self) -> Option<f64> {
        (self.due > 0).then(|| 100.0 * self.met as f64 / self.due as f64)
    }
}

/// A share per area class and over all.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ByClass {
    pub urban: Share,
    pub rural: Share,
    pub remote: Share,
    pub all: Share,
}

impl ByClass {
    fn count(&mut self, class: AreaClass, met: bool) {
        let share = match class {
            AreaClass::Urban => &mut self.urban,
            AreaClass::Rural => &mut self.rural,
            AreaClass::Remote => &mut self.remote,
        };
        for s in [share, &mut self.all] {
            s.due += 1;
            s.met += usize::from(met);
        }
    }
}

/// How the reports ended: every one accounted for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Ends {
    pub merged: usize,
    /// Work order returned (or closed after it).
    pub returned: usize,
    /// Still open: waiting, or a crew on it.
    pub open: usize,
    /// Anything else (cancelled): a simulation never cancels, so this should stay 0.
    pub other: usize,
}

/// One run's figures, beside its lower bound.
#[derive(Debug, Clone, PartialEq)]
pub struct PolicyReport {
    pub dispatch: Dispatch,
    pub calls: usize,
    pub refused: usize,
    pub reported: usize,
    pub ends: Ends,
    pub in_time: ByClass,
    pub bound_in_time: ByClass,
    pub mean_arrival: Option<f64>,
    pub p90_arrival: Option<f64>,
    pub bound_mean_arrival: Option<f64>,
    pub bound_p90_arrival: Option<f64>,
    pub mean_restoration: Option<f64>,
    pub bound_mean_restoration: Option<f64>,
    /// Tickets that had no crew on the way a minute after the report (or ever).
    pub waited: usize,
    /// The engine's mean travel estimate of the crews it sent.
    pub mean_eta: Option<f64>,
    pub waiting_at_end: usize,
    pub longest_wait_minutes: f64,
    pub customer_minutes: f64,
    pub bound_customer_minutes: f64,
    pub saidi_minutes: f64,
    pub crew_use: Option<f64>,
    pub storm_switches: usize,
    pub refused_steps: usize,
}

fn mean(values: &[f64]) -> Option<f64> {
    (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64)
}

fn sorted(mut values: Vec<f64>) -> Vec<f64> {
    values.sort_by(f64::total_cmp);
    values
}

impl PolicyReport {
    pub fn of(outcome: &RunOutcome) -> Self {
        let end = outcome.end;
        let mut ends = Ends::default();
        let mut in_time = ByClass::default();
        let mut bound_in_time = ByClass::default();
        let (mut arrival, mut bound_arrival) = (Vec::new(), Vec::new());
        let (mut restoration, mut bound_restoration) = (Vec::new(), Vec::new());
        let (mut waited, mut waiting_at_end) = (0, 0);
        let mut eta = Vec::new();
        let mut longest_wait: f64 = 0.0;
        let (mut customer_minutes, mut bound_customer_minutes) = (0.0, 0.0);
        for t in &outcome.tickets {
            match t.state {
                TicketState::Merged => ends.merged += 1,
                TicketState::Returned | TicketState::Closed => ends.returned += 1,
                TicketState::Cancelled => ends.other += 1,
                _ => ends.open += 1,
            }
            if t.state == TicketState::Merged {
                continue;
            }
            waiting_at_end += usize::from(t.state == TicketState::Queued);
            let waited_until = match (t.state, t.dispatched_at) {
                (TicketState::Queued, _) | (_, None) => end,
                (_, Some(at)) => at,
            };
            let wait = waited_until.minutes_since(t.reported_at);
            waited += usize::from(wait > 1.0);
            longest_wait = longest_wait.max(wait);
            eta.extend(t.eta_minutes);
            let bound_arrives = t.bound_minutes;
            if let Some(by) = t.arrive_by
                && (t.arrived_at.is_some() || by <= end)
            {
                in_time.count(t.area_class, t.arrived_at.is_some_and(|at| at <= by));
                let limit = by.minutes_since(t.reported_at);
                bound_in_time.count(t.area_class, bound_arrives.is_some_and(|m| m <= limit));
            }
            if let Some(at) = t.arrived_at {
                arrival.push(at.minutes_since(t.reported_at));
                bound_arrival.extend(bound_arrives);
            }
            if let Some(at) = t.restored_at {
                restoration.push(at.minutes_since(t.reported_at));
                bound_restoration.extend(bound_arrives.map(|m| m + t.repair_minutes));
            }
            if let Some(customers) = t.customers {
                let out_until = t.restored_at.unwrap_or(end).min(end);
                customer_minutes += customers as f64 * out_until.minutes_since(t.reported_at);
                let horizon = end.minutes_since(t.reported_at);
                let bound_out =
                    bound_arrives.map_or(horizon, |m| (m + t.repair_minutes).min(horizon));
                bound_customer_minutes += customers as f64 * bound_out;
            }
        }
        let arrival = sorted(arrival);
        let bound_arrival = sorted(bound_arrival);
        Self {
            dispatch: outcome.dispatch,
            calls: outcome.calls,
            refused: outcome.refused,
            reported: outcome.reported,
            ends,
            in_time,
            bound_in_time,
            mean_arrival: mean(&arrival),
            p90_arrival: nearest_rank(&arrival, 0.9),
            bound_mean_arrival: mean(&bound_arrival),
            bound_p90_arrival: nearest_rank(&bound_arrival, 0.9),
            mean_restoration: mean(&restoration),
            bound_mean_restoration: mean(&bound_restoration),
            waited,
            mean_eta: mean(&eta),
            waiting_at_end,
            longest_wait_minutes: longest_wait,
            customer_minutes,
            bound_customer_minutes,
            saidi_minutes: customer_minutes / outcome.customers_served.max(1) as f64,
            crew_use: (outcome.on_duty_samples > 0)
                .then(|| outcome.busy_samples as f64 / outcome.on_duty_samples as f64),
            storm_switches: outcome.storm_switches,
            refused_steps: outcome.refused_steps,
        }
    }
}

fn pct(share: Share) -> String {
    share
        .percent()
        .map_or_else(|| "–".to_owned(), |p| format!("{p:.1} %"))
}

fn minutes(value: Option<f64>) -> String {
    value.map_or_else(|| "–".to_owned(), |m| format!("{m:.0}"))
}

fn hours_minutes(minutes: f64) -> String {
    let total = minutes.round() as i64;
    format!("{}:{:02}", total / 60, total % 60)
}

/// The comparison as markdown: one table of the policies, one of each beside its bound.
pub fn markdown(scenario: &str, seed: u64, hours: f64, reports: &[PolicyReport]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Scenario `{scenario}`, seed {seed}, {hours} simulated hours.\n"
    );
    let _ = writeln!(
        out,
        "| dispatch | in time | urban | rural | remote | mean arrival (min) | p90 arrival (min) | mean restoration (min) | mean drive (min) | waited > 1 min | longest wait (h:mm) | waiting at end | customer-min (SAIDI min) | crew use |"
    );
    let _ = writeln!(
        out,
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
    );
    for r in reports {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {:.2} M ({:.1}) | {} |",
            r.dispatch,
            pct(r.in_time.all),
            pct(r.in_time.urban),
            pct(r.in_time.rural),
            pct(r.in_time.remote),
            minutes(r.mean_arrival),
            minutes(r.p90_arrival),
            minutes(r.mean_restoration),
            minutes(r.mean_eta),
            r.waited,
            hours_minutes(r.longest_wait_minutes),
            r.waiting_at_end,
            r.customer_minutes / 1e6,
            r.saidi_minutes,
            r.crew_use
                .map_or_else(|| "–".to_owned(), |u| format!("{:.0} %", u * 100.0)),
        );
    }
    let _ = writeln!(
        out,
        "\nLower bound (each ticket reached by the nearest crew with the skill, no waiting, at the fastest pace), over each run's own tickets:\n"
    );
    let _ = writeln!(
        out,
        "| run | in time (bound) | in time ÷ bound | mean arrival (bound, min) | p90 arrival (bound, min) | mean restoration (bound, min) | customer-min (bound) | calls | tickets | merged | returned | open at end |"
    );
    let _ = writeln!(
        out,
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
    );
    for r in reports {
        let ratio = match (r.in_time.all.percent(), r.bound_in_time.all.percent()) {
            (Some(a), Some(b)) if b > 0.0 => format!("{:.2}", a / b),
            _ => "–".to_owned(),
        };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {:.2} M | {} | {} | {} | {} | {} |",
            r.dispatch,
            pct(r.bound_in_time.all),
            ratio,
            minutes(r.bound_mean_arrival),
            minutes(r.bound_p90_arrival),
            minutes(r.bound_mean_restoration),
            r.bound_customer_minutes / 1e6,
            r.calls,
            r.reported - r.ends.merged,
            r.ends.merged,
            r.ends.returned,
            r.ends.open,
        );
    }
    out
}
