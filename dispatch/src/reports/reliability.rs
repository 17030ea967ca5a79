//! Reliability indices over a window: SAIFI, SAIDI, CAIDI, customer-hours interrupted (时户数)
//! and the reliability rate RS (DL/T 836.1), from restored incidents and the customers each
//! interrupted, never counting a customer twice in overlapping interruptions.
//!
//! # Formulas
//! With N_i the customers of sustained interruption i (after the deduplication below), r_i its
//! minutes, N_T the customers served and H the window's hours:
//! - SAIFI = Σ N_i / N_T (interruptions per customer)
//! - SAIDI = Σ r_i N_i / N_T (minutes per customer); Σ r_i N_i is the customer-minutes CMI
//! - CAIDI = SAIDI / SAIFI = CMI / Σ N_i (minutes per interrupted customer); absent when no
//!   customer was interrupted
//! - customer-hours interrupted (时户数) CHI = CMI / 60
//! - RS = 1 − CHI / (N_T × H), kept within [0, 1]
//!
//! # Choices (there is no network model)
//! - **Which incidents**: tickets are grouped by incident (a merged repeat call joins its
//!   incident's group). An incident counts when its ticket (the one not merged) has power
//!   restored within `[from, to)`; the whole interruption, report to restoration, belongs to
//!   the window of its restoration (so SAIFI and SAIDI describe the same interruptions and
//!   every interruption falls in exactly one of consecutive windows). Open incidents are not
//!   counted yet. Its start is the earliest report of the group (the true start is unknown;
//!   the first call is the earliest evidence), its end the restoration.
//! - **Only supply interruptions**: categories `no_power`, `area_outage`, `line_down`,
//!   `equipment_fire`. Voltage quality, meters and `other` are not interruptions.
//! - **Exclusions**: cancelled tickets; `customer_internal` tickets; orders returned with
//!   ownership `customer` or fault class `customer_internal` (the customer's own equipment is
//!   not the utility's reliability); interruptions shorter than `momentary_minutes` (default
//!   5) are momentary: counted in `momentary_interruptions`, not in SAIFI / SAIDI.
//! - **Customers of an incident**: the configured estimate of the largest category in the
//!   group (`no_power` 1; `area_outage`, `line_down`, `equipment_fire` 150, a transformer
//!   area 台区), or the number of distinct callers' phones in the group if that is larger. So
//!   merged repeat calls never add to an area incident's estimate, but three neighbours
//!   calling about one no-power fault are three customers known to be out.
//! - **No double counting**:
//!   1. A one-customer interruption is keyed by its caller's phone: overlapping interruptions
//!      of the same phone in a station are one interruption over the union of their times.
//!   2. Two incidents the engine did not merge are taken as distinct faults (farther apart
//!      than the merge radius, outside the merge window, or a bigger fault that would not join
//!      a lesser one: an area's outage reported after a household's nearby, whose customers
//!      are then counted beside the area's estimate, a known overcount of a few customers
//!      without a network model), so their customers are taken as distinct,
//!      but a station can never have more customers out at once than it serves: within a
//!      station, the customers out at time t are n(t) = min(Σ N_i over interruptions under way
//!      at t, station customers); CMI = ∫ n(t) dt; and the customer interruptions are the
//!      rises of n(t), each customer newly out counted once. So overlapping interruptions never
//!      count more customers than the station serves, and interruptions that never overlap
//!      each count in full even when a third overlaps both.
//!   3. Interruptions of different stations never share customers (a customer has one station).
//! - Overlaps are resolved among the interruptions restored in the window; one that straddles
//!   the window's start is compared only with those of the same window.

use super::Window;
use crate::domain::{
    FaultCategory, FaultClass, OutageCause, Ownership, StationId, Ticket, TicketState, Timestamp,
};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap, HashSet};

/// `[reliability]`: how incidents become customers interrupted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReliabilityConfig {
    /// Interruptions shorter than this are momentary, not sustained (the 5-minute rule).
    pub momentary_minutes: u32,
    /// Customers one incident of a category interrupts, overriding the defaults (`no_power`
    /// 1; `area_outage`, `line_down`, `equipment_fire` 150). Only supply categories.
    pub customers_per_incident: BTreeMap<FaultCategory, u64>,
}

impl Default for ReliabilityConfig {
    fn default() -> Self {
        Self {
            momentary_minutes: 5,
            customers_per_incident: BTreeMap::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReliabilityConfigError {
    #[error(
        "reliability.customers_per_incident.{0}: only supply interruptions (no_power, area_outage, line_down, equipment_fire) take an estimate"
    )]
    NotAnInterruption(&'static str),
    #[error("reliability.customers_per_incident.{0} must be at least 1")]
    Zero(&'static str),
}

impl ReliabilityConfig {
    pub fn validate(&self) -> Result<(), ReliabilityConfigError> {
        for (&category, &customers) in &self.customers_per_incident {
            if default_customers(category).is_none() {
                return Err(ReliabilityConfigError::NotAnInterruption(category.as_str()));
            }
            if customers == 0 {
                return Err(ReliabilityConfigError::Zero(category.as_str()));
            }
        }
        Ok(())
    }

    /// Customers one incident of `category` interrupts; `None` when the category is not a
    /// supply interruption.
    pub fn customers_for(&self, category: FaultCategory) -> Option<u64> {
        let default = default_customers(category)?;
        Some(
            self.customers_per_incident
                .get(&category)
                .copied()
                .unwrap_or(default),
        )
    }
}

/// The built-in estimates; `None` marks the categories that are not supply interruptions.
fn default_customers(category: FaultCategory) -> Option<u64> {
    match category {
        FaultCategory::NoPower => Some(1),
        // A transformer area (台区): on the order of 100–200 low-voltage customers.
        FaultCategory::AreaOutage | FaultCategory::LineDown | FaultCategory::EquipmentFire => {
            Some(150)
        }
        FaultCategory::VoltageQuality
        | FaultCategory::Meter
        | FaultCategory::CustomerInternal
        | FaultCategory::Other => None,
    }
}

/// Whether an interruption from `start` to `end` lasted past the momentary limit.
fn lasted(start: Timestamp, end: Timestamp, momentary_ms: i64) -> bool {
    end.as_millis().saturating_sub(start.as_millis()) >= momentary_ms
}

/// One restored supply interruption as the indices see it.
#[derive(Debug, Clone, PartialEq)]
pub struct Interruption {
    pub station: StationId,
    pub start: Timestamp,
    pub end: Timestamp,
    pub customers: u64,
    /// The caller's phone when the interruption is one customer's: the key that keeps that
    /// customer from being counted twice. Never logged.
    pub phone: Option<String>,
    /// Why the interruption is left out of the indices, if it is.
    pub excluded: Option<Exclusion>,
    /// As the returned work order classes it; `fault` until it is returned.
    pub cause: OutageCause,
}

impl Interruption {
    /// Whether it belongs to a report over `window` on the stations of `served`: restored
    /// in the window, in one of them.
    fn counts_in(&self, window: Window, served: &HashMap<StationId, u64>) -> bool {
        window.contains(self.end) && served.contains_key(&self.station)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exclusion {
    /// `customer_internal` category, or an order returned as customer-owned.
    CustomerSide,
}

/// The restored supply interruptions among `tickets`, one per incident (see the module doc).
pub fn interruptions_from_tickets<'a>(
    tickets: impl IntoIterator<Item = &'a Ticket>,
    config: &ReliabilityConfig,
) -> Vec<Interruption> {
    let mut groups: HashMap<_, Vec<&Ticket>> = HashMap::new();
    for ticket in tickets {
        if ticket.state == TicketState::Cancelled {
            continue;
        }
        groups
            .entry(ticket.incident.clone())
            .or_default()
            .push(ticket);
    }
    let mut out = Vec::new();
    for group in groups.values() {
        let Some(lead) = group.iter().find(|t| t.state != TicketState::Merged) else {
            continue;
        };
        let Some(end) = lead.restored_at else {
            continue;
        };
        let customer_side = lead.report.category == FaultCategory::CustomerInternal
            || lead.order.as_ref().is_some_and(|o| {
                o.ownership == Ownership::Customer || o.fault_class == FaultClass::CustomerInternal
            });
        let estimate = group
            .iter()
            .filter_map(|t| config.customers_for(t.report.category))
            .max();
        let Some(estimate) = estimate else {
            if customer_side {
                // A customer-internal ticket is no supply category, but its exclusion is
                // still worth counting.
                out.push(Interruption {
                    station: lead.station.clone(),
                    start: lead.reported_at,
                    end,
                    customers: 1,
                    phone: None,
                    excluded: Some(Exclusion::CustomerSide),
                    cause: OutageCause::Fault,
                });
            }
            continue;
        };
        // One customer however their number was typed on each call.
        let phones: HashSet<String> = group.iter().map(|t| t.report.caller.phone_key()).collect();
        let customers = estimate.max(phones.len() as u64);
        let phone = (customers == 1)
            .then(|| phones.into_iter().next())
            .flatten();
        let start = group
            .iter()
            .map(|t| t.reported_at)
            .min()
            .unwrap_or(lead.reported_at);
        out.push(Interruption {
            station: lead.station.clone(),
            start,
            end,
            customers,
            phone,
            excluded: customer_side.then_some(Exclusion::CustomerSide),
            cause: lead
                .order
                .as_ref()
                .map_or_else(OutageCause::default, |o| o.outage_cause),
        });
    }
    out
}

/// The indices and every count they were computed from.
#[derive(Debug, Clone, PartialEq)]
pub struct ReliabilityReport {
    /// N_T: customers of the stations reported on.
    pub customers_served: u64,
    pub period_hours: f64,
    /// Sustained interruptions after merging one customer's overlapping ones.
    pub sustained_interruptions: u64,
    pub momentary_interruptions: u64,
    /// Restored in the window but left out as the customer's own fault.
    pub excluded_customer_side: u64,
    /// Σ N_i after clipping overlapping interruptions at the station's customers.
    pub customers_interrupted: u64,
    /// CMI = Σ r_i N_i, minutes.
    pub customer_minutes_interrupted: f64,
    pub customer_hours_interrupted: f64,
    /// `None` when no customers are served (the indices are per customer).
    pub saifi: Option<f64>,
    pub saidi_minutes: Option<f64>,
    /// `None` when no customer was interrupted.
    pub caidi_minutes: Option<f64>,
    /// RS-1: every counted interruption.
    pub rs: Option<f64>,
    /// RS-2: leaving out interruptions of `external` cause.
    pub rs_excluding_external: Option<f64>,
    /// RS-3: leaving out interruptions of `supply_limit` cause.
    pub rs_excluding_supply_limit: Option<f64>,
    /// Sustained interruptions restored in the window and counted (not the customer's own,
    /// not of another station), per cause, in [`OutageCause::ALL`] order; before one
    /// customer's overlapping interruptions are merged.
    pub by_cause: [(OutageCause, u64); 4],
}

/// Computes the indices over `window` for the stations in `served` (station → customers).
/// Interruptions of other stations are ignored.
pub fn reliability(
    interruptions: &[Interruption],
    served: &HashMap<StationId, u64>,
    window: Window,
    config: &ReliabilityConfig,
) -> ReliabilityReport {
    let rs_without = |cause| indices(interruptions, served, window, config, Some(cause)).rs;
    ReliabilityReport {
        rs_excluding_external: rs_without(OutageCause::External),
        rs_excluding_supply_limit: rs_without(OutageCause::SupplyLimit),
        ..indices(interruptions, served, window, config, None)
    }
}

/// The indices over every interruption given but those of cause `leave_out` (RS-2 and RS-3
/// are left to [`reliability`]).
fn indices(
    interruptions: &[Interruption],
    served: &HashMap<StationId, u64>,
    window: Window,
    config: &ReliabilityConfig,
    leave_out: Option<OutageCause>,
) -> ReliabilityReport {
    let momentary_ms = i64::from(config.momentary_minutes) * 60_000;
    let mut excluded_customer_side = 0;
    // Per station: one-customer interruptions by phone, and the rest.
    let mut by_phone: HashMap<(&StationId, &str), Vec<(Timestamp, Timestamp)>> = HashMap::new();
    let mut spans: HashMap<&StationId, Vec<(Timestamp, Timestamp, u64)>> = HashMap::new();
    let mut by_cause = OutageCause::ALL.map(|cause| (cause, 0));
    for i in interruptions {
        if !i.counts_in(window, served) || leave_out == Some(i.cause) {
            continue;
        }
        if i.excluded.is_some() {
            excluded_customer_side += 1;
            continue;
        }
        if lasted(i.start, i.end, momentary_ms)
            && let Some((_, count)) = by_cause.iter_mut().find(|(cause, _)| *cause == i.cause)
        {
            *count += 1;
        }
        match &i.phone {
            Some(phone) => by_phone
                .entry((&i.station, phone.as_str()))
                .or_default()
                .push((i.start, i.end)),
            None => spans
                .entry(&i.station)
                .or_default()
                .push((i.start, i.end, i.customers)),
        }
    }
    for ((station, _), mut times) in by_phone {
        times.sort();
        let mut merged: Vec<(Timestamp, Timestamp)> = Vec::new();
        for (start, end) in times {
            match merged.last_mut() {
                Some(last) if start <= last.1 => last.1 = last.1.max(end),
                _ => merged.push((start, end)),
            }
        }
        let list = spans.entry(station).or_default();
        list.extend(merged.into_iter().map(|(s, e)| (s, e, 1)));
    }

    let mut momentary = 0;
    let mut sustained = 0;
    let mut customers_interrupted = 0u64;
    let mut customer_ms = 0f64;
    for (station, list) in spans {
        let cap = served.get(station).copied().unwrap_or(0);
        let list: Vec<_> = list
            .into_iter()
            .filter(|(s, e, _)| {
                let long = lasted(*s, *e, momentary_ms);
                if !long {
                    momentary += 1;
                }
                long
            })
            .collect();
        sustained += list.len() as u64;
        let clipped = clipped_customers(&list, cap);
        customers_interrupted += clipped.newly_out;
        customer_ms += clipped.customer_millis;
    }

    let customer_minutes = customer_ms / 60_000.0;
    let customers_served: u64 = served.values().sum();
    let period_hours = window.hours();
    let n_t = customers_served as f64;
    let per_customer = |x: f64| (customers_served > 0).then(|| x / n_t);
    let customer_hours = customer_minutes / 60.0;
    ReliabilityReport {
        customers_served,
        period_hours,
        sustained_interruptions: sustained,
        momentary_interruptions: momentary,
        excluded_customer_side,
        customers_interrupted,
        customer_minutes_interrupted: customer_minutes,
        customer_hours_interrupted: customer_hours,
        saifi: per_customer(customers_interrupted as f64),
        saidi_minutes: per_customer(customer_minutes),
        caidi_minutes: (customers_interrupted > 0)
            .then(|| customer_minutes / customers_interrupted as f64),
        rs: (customers_served > 0)
            .then(|| (1.0 - customer_hours / (n_t * period_hours)).clamp(0.0, 1.0)),
        rs_excluding_external: None,
        rs_excluding_supply_limit: None,
        by_cause,
    }
}

/// What a station's interruptions come to once no more customers are out at once than it
/// serves.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Clipped {
    /// The rises of min(n(t), cap): customers newly out, each counted once.
    newly_out: u64,
    /// ∫ min(n(t), cap) dt, in customer-milliseconds.
    customer_millis: f64,
}

/// `n(t)` is the customers of the intervals under way at t; a sweep over the start (+) and
/// end (−) points. At one instant ends come first, so an interruption that begins as another
/// ends counts its customers again.
fn clipped_customers(list: &[(Timestamp, Timestamp, u64)], cap: u64) -> Clipped {
    let mut points: Vec<(i64, i128)> = Vec::with_capacity(list.len() * 2);
    for (start, end, customers) in list {
        let n = i128::from(*customers);
        points.push((start.as_millis(), n));
        points.push((end.as_millis(), -n));
    }
    points.sort_unstable();
    let cap = i128::from(cap);
    let mut clipped = Clipped {
        newly_out: 0,
        customer_millis: 0.0,
    };
    let mut under_way: i128 = 0;
    let mut last = None;
    for (t, delta) in points {
        let out = under_way.clamp(0, cap);
        if let Some(prev) = last {
            clipped.customer_millis += out as f64 * (t - prev) as f64;
        }
        under_way += delta;
        let rise = under_way.clamp(0, cap) - out;
        if rise > 0 {
            clipped.newly_out = clipped
                .newly_out
                .saturating_add(u64::try_from(rise).unwrap_or(u64::MAX));
        }
        last = Some(t);
    }
    clipped
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{AreaClass, WorkOrderReturn};
    use crate::reports::sla::tests::{at, ticket, walked};
    use proptest::prelude::*;

    fn outage(
        station: &str,
        start: i64,
        end: i64,
        customers: u64,
        phone: Option<&str>,
    ) -> Interruption {
        Interruption {
            station: StationId::new(station),
            start: at(start),
            end: at(end),
            customers,
            phone: phone.map(str::to_owned),
            excluded: None,
            cause: OutageCause::Fault,
        }
    }

    fn served(stations: &[(&str, u64)]) -> HashMap<StationId, u64> {
        stations
            .iter()
            .map(|(s, n)| (StationId::new(*s), *n))
            .collect()
    }

    fn day() -> Window {
        Window::new(at(0), at(24 * 60)).unwrap()
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    #[test]
    fn overlapping_area_outages_are_clipped_at_the_stations_customers() {
        // Station S: 200 customers. A: 150 customers 10:00–12:00; B: 150 customers
        // 11:00–13:00. At once: 10–11 150; 11–12 300 → clipped to 200; 12–13 150.
        // CMI = 150·60 + 200·60 + 150·60 = 9 000 + 12 000 + 9 000 = 30 000 customer-minutes.
        // Customers newly out: 150 at 10:00, 50 more at 11:00 (300 clipped to 200) = 200.
        // SAIFI = 200 / 200 = 1; SAIDI = 30 000 / 200 = 150 min; CAIDI = 150 / 1 = 150 min.
        // CHI = 30 000 / 60 = 500 h; RS = 1 − 500 / (200 · 24) = 1 − 0.1041666… = 0.8958333…
        let list = [
            outage("S", 600, 720, 150, None),
            outage("S", 660, 780, 150, None),
        ];
        let r = reliability(
            &list,
            &served(&[("S", 200)]),
            day(),
            &ReliabilityConfig::default(),
        );
        assert_eq!(r.customers_interrupted, 200);
        assert!(close(r.customer_minutes_interrupted, 30_000.0));
        assert!(close(r.saifi.unwrap(), 1.0));
        assert!(close(r.saidi_minutes.unwrap(), 150.0));
        assert!(close(r.caidi_minutes.unwrap(), 150.0));
        assert!(close(r.customer_hours_interrupted, 500.0));
        assert!(close(r.rs.unwrap(), 1.0 - 500.0 / 4800.0));
        assert_eq!(r.sustained_interruptions, 2);
    }

    #[test]
    fn a_small_outage_overlapping_two_others_does_not_merge_them() {
        // Station S: 200 customers. A: 150 customers 10:00–11:00; C: 150 customers
        // 12:00–13:00; they never overlap: 300 customer interruptions. B: 2 customers
        // (two callers of one no-power fault) 10:55–12:05 overlaps both. Customers newly
        // out: 150 at 10:00, 2 at 10:55, 150 at 12:00 (B's 2 still out: 152 ≤ 200) = 302.
        // Counting chains of overlaps as one group would give min(302, 200) = 200: adding
        // a 2-customer outage would have taken 100 interruptions away.
        // CMI = 150·60 + 2·70 + 150·60 = 18 140 customer-minutes.
        let without_b = [
            outage("S", 600, 660, 150, None),
            outage("S", 720, 780, 150, None),
        ];
        let mut with_b = without_b.to_vec();
        with_b.push(outage("S", 655, 725, 2, None));
        let config = ReliabilityConfig::default();
        let station = served(&[("S", 200)]);
        let before = reliability(&without_b, &station, day(), &config);
        let after = reliability(&with_b, &station, day(), &config);
        assert_eq!(before.customers_interrupted, 300);
        assert_eq!(after.customers_interrupted, 302);
        assert!(close(after.customer_minutes_interrupted, 18_140.0));
        assert!(close(after.saifi.unwrap(), 302.0 / 200.0));
    }

    #[test]
    fn one_customers_overlapping_calls_count_once_and_momentary_ones_not_at_all() {
        // Station S: 1 000 customers; the day is 24 h.
        // Phone P: out 10:00–11:00 and again (a second, unmerged ticket) 10:30–11:30 →
        //   one interruption 10:00–11:30 = 90 min, 1 customer.
        // Phone Q: 60 min, 1 customer. Phone R: 3 min → momentary, not counted.
        // Area outage: 150 customers for 120 min = 18 000 customer-minutes.
        // CI = 1 + 1 + 150 = 152 (no group exceeds 1 000).
        // CMI = 90 + 60 + 18 000 = 18 150. SAIFI = 152 / 1 000 = 0.152;
        // SAIDI = 18 150 / 1 000 = 18.15 min; CAIDI = 18 150 / 152 = 119.4078… min;
        // CHI = 18 150 / 60 = 302.5 h; RS = 1 − 302.5 / (1 000 · 24) = 0.98739583…
        let list = [
            outage("S", 600, 660, 1, Some("P")),
            outage("S", 630, 690, 1, Some("P")),
            outage("S", 700, 760, 1, Some("Q")),
            outage("S", 800, 803, 1, Some("R")),
            outage("S", 900, 1020, 150, None),
        ];
        let r = reliability(
            &list,
            &served(&[("S", 1000)]),
            day(),
            &ReliabilityConfig::default(),
        );
        assert_eq!(r.sustained_interruptions, 3);
        assert_eq!(r.momentary_interruptions, 1);
        assert_eq!(r.customers_interrupted, 152);
        assert!(close(r.customer_minutes_interrupted, 18_150.0));
        assert!(close(r.saifi.unwrap(), 0.152));
        assert!(close(r.saidi_minutes.unwrap(), 18.15));
        assert!(close(r.caidi_minutes.unwrap(), 18_150.0 / 152.0));
        assert!(close(r.customer_hours_interrupted, 302.5));
        assert!(close(r.rs.unwrap(), 1.0 - 302.5 / 24_000.0));
    }

    #[test]
    fn the_window_holds_what_was_restored_in_it_and_stations_never_share_customers() {
        // S1 (100 customers): 60 min × 10, restored at 01:00 → in the window.
        // S2 (300 customers): 30 min × 10 restored at 00:30 → in; another restored on the
        // next day → out. N_T = 400. CI = 20; CMI = 600 + 300 = 900; SAIFI = 20 / 400 = 0.05;
        // SAIDI = 900 / 400 = 2.25; CAIDI = 45.
        let list = [
            outage("S1", 0, 60, 10, None),
            outage("S2", 0, 30, 10, None),
            outage("S2", 1500, 1600, 10, None),
            outage("OTHER", 0, 60, 10, None),
        ];
        let r = reliability(
            &list,
            &served(&[("S1", 100), ("S2", 300)]),
            day(),
            &ReliabilityConfig::default(),
        );
        assert_eq!(r.customers_served, 400);
        assert_eq!(r.customers_interrupted, 20);
        assert!(close(r.saifi.unwrap(), 0.05));
        assert!(close(r.saidi_minutes.unwrap(), 2.25));
        assert!(close(r.caidi_minutes.unwrap(), 45.0));
        let none = reliability(
            &[],
            &served(&[("S1", 100)]),
            day(),
            &ReliabilityConfig::default(),
        );
        assert_eq!(
            (none.saifi, none.caidi_minutes, none.rs),
            (Some(0.0), None, Some(1.0))
        );
    }

    #[test]
    fn tickets_become_incidents_merged_calls_add_no_customers_and_exclusions_hold() {
        use FaultCategory::*;
        let config = ReliabilityConfig::default();
        let urban = AreaClass::Urban;
        // An area outage reported at 0, restored at 100, with two merged repeat calls
        // from other phones: 150 customers (the estimate), not 152.
        let lead = walked(ticket("A", AreaOutage, urban, 0), &[1, 2, 30, 100]);
        let repeat = |id: &str, category| {
            let mut t = ticket(id, category, urban, 5);
            t.state = TicketState::Merged;
            t.incident = lead.incident.clone();
            t
        };
        let (r1, r2) = (repeat("B", NoPower), repeat("C", NoPower));
        // A no-power fault with one neighbour's repeat: 2 distinct phones → 2 customers.
        let np = walked(ticket("D", NoPower, urban, 0), &[1, 2, 30, 100]);
        let mut np_repeat = ticket("E", NoPower, urban, 3);
        np_repeat.state = TicketState::Merged;
        np_repeat.incident = np.incident.clone();
        // Returned as the customer's own equipment: excluded.
        let mut own = walked(ticket("F", NoPower, urban, 0), &[1, 2, 30, 100, 110]);
        own.order = Some(WorkOrderReturn {
            fault_class: FaultClass::LowVoltage,
            cause: "customer's breaker".into(),
            ownership: Ownership::Customer,
            resolution: None,
            outage_cause: crate::domain::OutageCause::Fault,
        });
        // Not restored, voltage quality, cancelled: no interruption.
        let open = walked(ticket("G", AreaOutage, urban, 0), &[1, 2, 30]);
        let quality = walked(ticket("H", VoltageQuality, urban, 0), &[1, 2, 30, 100]);
        let mut cancelled = walked(ticket("I", LineDown, urban, 0), &[1]);
        cancelled.state = TicketState::Cancelled;
        let tickets = [lead, r1, r2, np, np_repeat, own, open, quality, cancelled];
        let mut list = interruptions_from_tickets(&tickets, &config);
        list.sort_by_key(|i| i.customers);
        let summary: Vec<_> = list
            .iter()
            .map(|i| (i.customers, i.phone.is_some(), i.excluded.is_some()))
            .collect();
        assert_eq!(
            summary,
            [(1, true, true), (2, false, false), (150, false, false)]
        );
    }

    /// The cause each order gives is kept, and the indices that leave a cause out are
    /// derived from it (DL/T 836.1: RS-2 without external causes, RS-3 without load shed).
    #[test]
    fn indices_without_external_causes_or_load_shedding_are_derived() {
        let served = served(&[("S1", 1_000)]);
        let config = ReliabilityConfig::default();
        let window = day();
        let mut excavator = outage("S1", 0, 120, 100, None);
        excavator.cause = OutageCause::External;
        let mut shed = outage("S1", 200, 260, 300, None);
        shed.cause = OutageCause::SupplyLimit;
        let fault = outage("S1", 300, 330, 50, None);
        // Under the momentary limit: in no index and in no count.
        let mut blip = outage("S1", 400, 402, 80, None);
        blip.cause = OutageCause::External;
        let r = reliability(
            &[excavator, shed, fault.clone(), blip],
            &served,
            window,
            &config,
        );
        let alone = |list: &[Interruption]| reliability(list, &served, window, &config).rs;
        let hours = |customer_minutes: f64| customer_minutes / 60.0;
        let rs = |customer_minutes: f64| 1.0 - hours(customer_minutes) / (1_000.0 * 24.0);
        let close = |a: Option<f64>, b: f64| (a.unwrap() - b).abs() < 1e-12;
        assert!(close(r.rs, rs(100.0 * 120.0 + 300.0 * 60.0 + 50.0 * 30.0)));
        assert!(close(
            r.rs_excluding_external,
            rs(300.0 * 60.0 + 50.0 * 30.0)
        ));
        assert!(close(
            r.rs_excluding_supply_limit,
            rs(100.0 * 120.0 + 50.0 * 30.0)
        ));
        assert_eq!(alone(std::slice::from_ref(&fault)), Some(rs(50.0 * 30.0)));
        assert_eq!(
            r.by_cause,
            [
                (OutageCause::Fault, 1),
                (OutageCause::Planned, 0),
                (OutageCause::External, 1),
                (OutageCause::SupplyLimit, 1)
            ]
        );
        // An order returned with its cause gives the interruption that cause.
        let urban = AreaClass::Urban;
        let mut lead = walked(
            ticket("A", FaultCategory::AreaOutage, urban, 0),
            &[1, 2, 30, 100, 110],
        );
        lead.order = Some(WorkOrderReturn {
            fault_class: FaultClass::HighVoltage,
            cause: "excavator cut the cable".into(),
            ownership: Ownership::Utility,
            resolution: None,
            outage_cause: OutageCause::External,
        });
        let list = interruptions_from_tickets(&[lead], &config);
        assert_eq!(list[0].cause, OutageCause::External);
    }

    /// A customer who rings back from another channel, their number typed another way, is
    /// still one customer interrupted once (domain: never count a customer twice).
    #[test]
    fn one_customer_typed_two_ways_is_counted_once() {
        let urban = AreaClass::Urban;
        let mut first = walked(
            ticket("A", FaultCategory::NoPower, urban, 0),
            &[1, 2, 30, 60],
        );
        first.report.caller.phone = "13800001234".into();
        let mut again = ticket("B", FaultCategory::NoPower, urban, 10);
        again.state = TicketState::Merged;
        again.incident = first.incident.clone();
        again.report.caller.phone = "+86 138-0000-1234".into();
        let list = interruptions_from_tickets(&[first, again], &ReliabilityConfig::default());
        assert_eq!(list.len(), 1);
        assert_eq!(list[0].customers, 1);
        assert_eq!(list[0].phone.as_deref(), Some("13800001234"));
    }

    #[test]
    fn configuration_is_checked() {
        let mut config = ReliabilityConfig::default();
        config
            .customers_per_incident
            .insert(FaultCategory::AreaOutage, 400);
        assert_eq!(config.validate(), Ok(()));
        assert_eq!(config.customers_for(FaultCategory::AreaOutage), Some(400));
        config
            .customers_per_incident
            .insert(FaultCategory::Meter, 1);
        assert_eq!(
            config.validate(),
            Err(ReliabilityConfigError::NotAnInterruption("meter"))
        );
    }

    fn arb_interruption() -> impl Strategy<Value = Interruption> {
        (
            0..2usize,
            0..1_500i64,
            1..300i64,
            prop_oneof![Just(1u64), 1..400u64],
            prop::option::of(0..4u8),
        )
            .prop_map(|(station, start, len, customers, phone)| {
                let phone = phone.map(|p| format!("1380000000{p}"));
                Interruption {
                    station: StationId::new(["S1", "S2"][station]),
                    start: at(start),
                    end: at(start + len),
                    customers: if phone.is_some() { 1 } else { customers },
                    phone,
                    excluded: None,
                    cause: OutageCause::Fault,
                }
            })
    }

    proptest! {
        #[test]
        fn a_fully_overlapped_duplicate_call_changes_nothing(
            list in prop::collection::vec(arb_interruption(), 1..30),
            pick in any::<prop::sample::Index>(),
            trim in 0..100i64,
        ) {
            let config = ReliabilityConfig::default();
            let served = served(&[("S1", 500), ("S2", 2_000)]);
            let window = Window::new(at(0), at(2_000)).unwrap();
            let before = reliability(&list, &served, window, &config);
            // The same customer again, inside an interruption they already had: a repeat
            // call that was not merged.
            let original = &list[pick.index(list.len())];
            let mut duplicate = original.clone();
            if duplicate.phone.is_none() {
                duplicate.phone = Some("13900000000".into());
                duplicate.customers = 1;
            }
            let mut with = list.clone();
            let mut base = duplicate.clone();
            base.start = original.start;
            base.end = original.end;
            with.push(base.clone());
            let len = base.end.as_millis() - base.start.as_millis();
            let cut = (trim * 60_000).min(len / 2);
            duplicate.start = Timestamp::from_millis(base.start.as_millis() + cut);
            duplicate.end = Timestamp::from_millis(base.end.as_millis());
            let once = reliability(&with, &served, window, &config);
            with.push(duplicate);
            let twice = reliability(&with, &served, window, &config);
            prop_assert_eq!(&once.customers_interrupted, &twice.customers_interrupted);
            prop_assert!(close(once.customer_minutes_interrupted, twice.customer_minutes_interrupted));
            prop_assert_eq!(once.momentary_interruptions, twice.momentary_interruptions);
            if original.phone.is_some() {
                // The exact same call twice is the same customer once.
                prop_assert_eq!(&before.customers_interrupted, &once.customers_interrupted);
                prop_assert!(close(before.customer_minutes_interrupted, once.customer_minutes_interrupted));
            }
        }

        #[test]
        fn saidi_is_saifi_times_caidi_and_rs_within_bounds(
            list in prop::collection::vec(arb_interruption(), 0..30),
        ) {
            let served = served(&[("S1", 500), ("S2", 2_000)]);
            let window = Window::new(at(0), at(2_000)).unwrap();
            let r = reliability(&list, &served, window, &ReliabilityConfig::default());
            let (saifi, saidi) = (r.saifi.unwrap(), r.saidi_minutes.unwrap());
            match r.caidi_minutes {
                Some(caidi) => prop_assert!((saifi * caidi - saidi).abs() < 1e-6 * saidi.max(1.0)),
                None => prop_assert_eq!(saidi, 0.0),
            }
            let rs = r.rs.unwrap();
            prop_assert!((0.0..=1.0).contains(&rs));
            // Merging one customer's calls and clipping overlaps only ever take customers
            // away: never more than the counted interruptions' own, each at most its
            // station's customers.
            let most: u64 = list
                .iter()
                .filter(|i| i.counts_in(window, &served) && i.excluded.is_none())
                .map(|i| i.customers.min(served[&i.station]))
                .sum();
            prop_assert!(r.customers_interrupted <= most);
        }
    }
}
