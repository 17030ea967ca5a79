//! Deadline compliance per SLA stage over a window: how many stage clocks were met or
//! breached, compliance %, p50 / p90 minutes, per stage and per area class, and the average
//! arrival minutes per area class (State Grid's commitment is worded as an average).
//!
//! # What counts, precisely
//! - **Stages and their clocks** (start → stop), limits from [`SlaPolicy::limit_minutes`]:
//!   acknowledge = dispatch → acknowledged; arrive = report → on site; restore = on site →
//!   restored; return = restored → order returned.
//! - **Tickets**: every ticket except `merged` (a repeat call has no work of its own; its
//!   incident's ticket is counted) and `cancelled` (the work was called off, whatever stages
//!   it had done). `customer_internal` tickets have no arrive stage (no limit), so they are
//!   never in the arrive figures; their other stages count.
//! - **Completed stage**: counted in the window that holds its **stop** time. Met when its
//!   minutes ≤ the limit, else breached. Its minutes enter p50 / p90 and the averages.
//! - **Open stage** (started, not stopped): counted as **breached** in the window that holds
//!   its **deadline** (start + limit) if that deadline is before `now`; an open stage still
//!   within its limit is not counted at all (it has neither met nor missed anything yet).
//!   It has no duration, so it is not in p50 / p90. When it later stops it moves to the
//!   window of its stop time: a report answers what is known when it is asked.
//! - Each stage clock is therefore counted at most once over consecutive windows.
//! - **Acknowledge** has one clock per dispatch. A dispatch that timed out unacknowledged
//!   (and went on to another crew, or back to the queue) is **breached**, counted in the
//!   window that holds its deadline, without minutes (nobody acknowledged); the ticket's
//!   latest dispatch is counted as any stage is. A rejected dispatch is not counted: the
//!   crew answered in time, and the job went on. A ticket back in the queue has no
//!   acknowledge clock running. `dispatch_sla_total` counts the same way.
//! - `compliance_percent` = met / (met + breached) × 100; absent when nothing counted.
//!   Percentiles are by nearest rank ([`super::nearest_rank`]).

use super::{Window, nearest_rank, round1};
use crate::domain::{AreaClass, SlaPolicy, SlaStage, Ticket, TicketState, Timestamp};

/// The three area classes in report order.
pub const AREA_CLASSES: [AreaClass; 3] = [AreaClass::Urban, AreaClass::Rural, AreaClass::Remote];

/// Met / breached counts and the minutes of completed stages.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StageCounts {
    /// `met + breached`.
    pub count: u64,
    pub met: u64,
    pub breached: u64,
    /// Of `breached`: stages still open whose deadline has passed.
    pub open_breached: u64,
    /// Minutes of the completed stages, ascending once finished.
    pub minutes: Vec<f64>,
}

impl StageCounts {
    fn add_completed(&mut self, minutes: f64, limit: u32) {
        self.count += 1;
        if minutes <= f64::from(limit) {
            self.met += 1;
        } else {
            self.breached += 1;
        }
        self.minutes.push(minutes);
    }

    fn add_open_breach(&mut self) {
        self.add_breach_without_minutes();
        self.open_breached += 1;
    }

    fn add_breach_without_minutes(&mut self) {
        self.count += 1;
        self.breached += 1;
    }

    fn finish(&mut self) {
        self.minutes.sort_by(f64::total_cmp);
    }

    pub fn compliance_percent(&self) -> Option<f64> {
        (self.count > 0).then(|| round1(self.met as f64 * 100.0 / self.count as f64))
    }

    pub fn p50_minutes(&self) -> Option<f64> {
        nearest_rank(&self.minutes, 0.5).map(round1)
    }

    pub fn p90_minutes(&self) -> Option<f64> {
        nearest_rank(&self.minutes, 0.9).map(round1)
    }

    pub fn average_minutes(&self) -> Option<f64> {
        (!self.minutes.is_empty())
            .then(|| round1(self.minutes.iter().sum::<f64>() / self.minutes.len() as f64))
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct StageSummary {
    pub stage: SlaStage,
    pub all: StageCounts,
    /// In [`AREA_CLASSES`] order.
    pub by_area_class: [(AreaClass, StageCounts); 3],
}

/// The period average of arrival minutes in one area class, beside its limit.
#[derive(Debug, Clone, PartialEq)]
pub struct ArrivalAverage {
    pub area_class: AreaClass,
    /// Arrivals completed in the window.
    pub arrivals: u64,
    pub average_minutes: Option<f64>,
    pub limit_minutes: u32,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SlaSummary {
    /// In [`SlaStage::ALL`] order.
    pub stages: Vec<StageSummary>,
    pub arrival_average: Vec<ArrivalAverage>,
}

/// The start and stop of `stage` for `ticket`, when the stage has started.
fn clock(ticket: &Ticket, stage: SlaStage) -> Option<(Timestamp, Option<Timestamp>)> {
    match stage {
        // Back in the queue after a decline, no dispatch is waiting to be acknowledged (the
        // stale `dispatched_at` is the declined one).
        SlaStage::Acknowledge if ticket.state == TicketState::Queued => None,
        SlaStage::Acknowledge => Some((ticket.dispatched_at?, ticket.acknowledged_at)),
        SlaStage::Arrive => Some((ticket.reported_at, ticket.arrived_at)),
        SlaStage::Restore => Some((ticket.arrived_at?, ticket.restored_at)),
        SlaStage::Return => Some((ticket.restored_at?, ticket.returned_at)),
    }
}

fn class_index(class: AreaClass) -> usize {
    match class {
        AreaClass::Urban => 0,
        AreaClass::Rural => 1,
        AreaClass::Remote => 2,
    }
}

/// Summarizes the stage clocks of `tickets` over `window`, as of `now`.
pub fn summarize_sla<'a>(
    tickets: impl IntoIterator<Item = &'a Ticket>,
    policy: &SlaPolicy,
    window: Window,
    now: Timestamp,
) -> SlaSummary {
    let mut stages: Vec<StageSummary> = SlaStage::ALL
        .into_iter()
        .map(|stage| StageSummary {
            stage,
            all: StageCounts::default(),
            by_area_class: AREA_CLASSES.map(|c| (c, StageCounts::default())),
        })
        .collect();
    for ticket in tickets {
        if matches!(ticket.state, TicketState::Merged | TicketState::Cancelled) {
            continue;
        }
        for summary in &mut stages {
            let Some(limit) = policy.limit_minutes(
                summary.stage,
                ticket.area_class,
                ticket.report.category,
                ticket.priority,
            ) else {
                continue;
            };
            let by_class = &mut summary.by_area_class[class_index(ticket.area_class)].1;
            if summary.stage == SlaStage::Acknowledge {
                for missed in &ticket.acknowledge_timeouts {
                    if window.contains(*missed) {
                        summary.all.add_breach_without_minutes();
                        by_class.add_breach_without_minutes();
                    }
                }
            }
            let Some((start, stop)) = clock(ticket, summary.stage) else {
                continue;
            };
            match stop {
                Some(stop) if window.contains(stop) => {
                    let minutes = stop.minutes_since(start);
                    summary.all.add_completed(minutes, limit);
                    by_class.add_completed(minutes, limit);
                }
                Some(_) => {}
                None => {
                    let deadline = start.plus_minutes(limit);
                    if deadline.passed_by(now) && window.contains(deadline) {
                        summary.all.add_open_breach();
                        by_class.add_open_breach();
                    }
                }
            }
        }
    }
    for summary in &mut stages {
        summary.all.finish();
        for (_, counts) in &mut summary.by_area_class {
            counts.finish();
        }
    }
    let arrival_average = stages
        .iter()
        .find(|s| s.stage == SlaStage::Arrive)
        .map(|arrive| {
            arrive
                .by_area_class
                .iter()
                .map(|(class, counts)| ArrivalAverage {
                    area_class: *class,
                    arrivals: counts.minutes.len() as u64,
                    average_minutes: counts.average_minutes(),
                    limit_minutes: policy.arrive_minutes(*class),
                })
                .collect()
        })
        .unwrap_or_default();
    SlaSummary {
        stages,
        arrival_average,
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::domain::{
        Caller, CrewId, FaultCategory, FaultReport, IncidentId, LatLon, Priority, StationId,
        TicketId,
    };

    pub const MIN: i64 = 60_000;

    pub fn at(minutes: i64) -> Timestamp {
        Timestamp::from_millis(minutes * MIN)
    }

    /// A ticket reported at minute `reported` in an urban station.
    pub fn ticket(id: &str, category: FaultCategory, class: AreaClass, reported: i64) -> Ticket {
        let report = FaultReport {
            caller: Caller {
                name: "Li".into(),
                // Digits, one number per id, as the API admits phones.
                phone: format!(
                    "138{}",
                    id.bytes().map(|b| b.to_string()).collect::<String>()
                ),
            },
            location: LatLon::new(23.1, 114.4).unwrap(),
            address: "1 Road".into(),
            category,
            priority: Priority::Normal,
            important_customer: false,
            description: String::new(),
        };
        Ticket::new(
            TicketId::new(id),
            IncidentId::new(format!("I-{id}")),
            StationId::new("S1"),
            class,
            report,
            at(reported),
            None,
        )
    }

    /// Stamps the stage times (minutes) and the matching state.
    pub fn walked(mut t: Ticket, steps: &[i64]) -> Ticket {
        let mut steps = steps.iter().copied().map(at);
        t.crew = Some(CrewId::new("C1"));
        t.eta_minutes = Some(10.0);
        t.state = TicketState::Dispatched;
        t.dispatched_at = steps.next();
        if let Some(s) = steps.next() {
            t.acknowledged_at = Some(s);
            t.state = TicketState::EnRoute;
        }
        if let Some(s) = steps.next() {
            t.arrived_at = Some(s);
            t.state = TicketState::OnSite;
        }
        if let Some(s) = steps.next() {
            t.restored_at = Some(s);
            t.state = TicketState::Restored;
        }
        if let Some(s) = steps.next() {
            t.returned_at = Some(s);
            t.state = TicketState::Returned;
        }
        t
    }

    fn stage(summary: &SlaSummary, stage: SlaStage) -> &StageSummary {
        summary.stages.iter().find(|s| s.stage == stage).unwrap()
    }

    #[test]
    fn each_timed_out_dispatch_is_an_acknowledge_breach_in_the_window_of_its_deadline() {
        let policy = SlaPolicy::default(); // acknowledge within 5 minutes
        use AreaClass::Urban;
        use FaultCategory::NoPower;
        // Dispatched at 1 and 6, both timed out (deadlines 6 and 11); the third crew,
        // dispatched at 11, acknowledged at 13: met in 2 minutes.
        let mut t = walked(ticket("A", NoPower, Urban, 0), &[11, 13]);
        t.acknowledge_timeouts = vec![at(6), at(11)];
        let ack = |from, to| {
            let window = Window::new(at(from), at(to)).unwrap();
            let s = summarize_sla([&t], &policy, window, at(600));
            let counts = stage(&s, SlaStage::Acknowledge).all.clone();
            (
                counts.count,
                counts.met,
                counts.breached,
                counts.open_breached,
            )
        };
        assert_eq!(ack(0, 600), (3, 1, 2, 0));
        assert_eq!(
            ack(0, 10),
            (1, 0, 1, 0),
            "only the first deadline is in the window"
        );
        assert_eq!(ack(10, 600), (2, 1, 1, 0));
        let window = Window::new(at(0), at(600)).unwrap();
        let s = summarize_sla([&t], &policy, window, at(600));
        let all = &stage(&s, SlaStage::Acknowledge).all;
        assert_eq!(
            all.minutes,
            vec![2.0],
            "a missed acknowledgement has no minutes"
        );
        assert_eq!(all.compliance_percent(), Some(33.3));
        // A cancelled or merged ticket counts nowhere, its timeouts included.
        t.state = TicketState::Cancelled;
        let s = summarize_sla([&t], &policy, window, at(600));
        assert_eq!(stage(&s, SlaStage::Acknowledge).all.count, 0);
    }

    #[test]
    fn met_breached_open_and_excluded_by_hand() {
        let policy = SlaPolicy::default(); // urban: ack 5, arrive 45, restore 180, return 30
        let window = Window::new(at(0), at(600)).unwrap();
        let now = at(600);
        use AreaClass::Urban;
        use FaultCategory::*;
        let tickets = vec![
            // A: dispatched 1, ack 4 (3 min, met), arrived 41 (41 min, met), restored 101
            // (60, met), returned 111 (10, met).
            walked(ticket("A", NoPower, Urban, 0), &[1, 4, 41, 101, 111]),
            // B: dispatched 1, ack 9 (8 min, breached), arrived 61 (61, breached), open on
            // site since 61: restore deadline 61 + 180 = 241 < now → open breach.
            walked(ticket("B", AreaOutage, Urban, 0), &[1, 9, 61]),
            // C: dispatched 500 not acknowledged; deadline 505 < now → open breach; its
            // arrive clock started at 499, deadline 544 < 600 → open breach too.
            walked(ticket("C", Other, Urban, 499), &[500]),
            // D: reported 590, dispatched 591: ack deadline 596 < 600 → open breach; arrive
            // deadline 635 is after now → not counted.
            walked(ticket("D", Other, Urban, 590), &[591]),
            // G: declined back to the queue (stale dispatch at 1): no acknowledge clock;
            // its arrive deadline 0 + 45 < now → an open arrive breach.
            {
                let mut g = walked(ticket("G", Other, Urban, 0), &[1]);
                g.state = TicketState::Queued;
                g.crew = None;
                g
            },
            // E: customer internal: no arrive stage; ack 2 → 3 (1 min, met).
            walked(ticket("E", CustomerInternal, Urban, 0), &[2, 3]),
            // F: cancelled after an acknowledgement: excluded everywhere.
            {
                let mut f = walked(ticket("F", NoPower, Urban, 0), &[1, 2]);
                f.state = TicketState::Cancelled;
                f
            },
        ];
        let s = summarize_sla(&tickets, &policy, window, now);

        let ack = &stage(&s, SlaStage::Acknowledge).all;
        // completed: A 3 (met), B 8 (breached), E 1 (met); open breaches: C, D.
        assert_eq!(
            (ack.count, ack.met, ack.breached, ack.open_breached),
            (5, 2, 3, 2)
        );
        // 2 / 5 = 40 %
        assert_eq!(ack.compliance_percent(), Some(40.0));
        // sorted minutes [1, 3, 8]: p50 rank ceil(1.5) = 2 → 3; p90 rank ceil(2.7) = 3 → 8
        assert_eq!(ack.p50_minutes(), Some(3.0));
        assert_eq!(ack.p90_minutes(), Some(8.0));

        let arrive = &stage(&s, SlaStage::Arrive).all;
        // A 41 met, B 61 breached, C and G open breaches; D within its limit; E has no
        // arrive stage.
        assert_eq!((arrive.count, arrive.met, arrive.breached), (4, 1, 3));
        // average of completed arrivals = (41 + 61) / 2 = 51
        let urban = &s.arrival_average[0];
        assert_eq!(urban.area_class, Urban);
        assert_eq!((urban.arrivals, urban.average_minutes), (2, Some(51.0)));
        assert_eq!(urban.limit_minutes, 45);

        let restore = &stage(&s, SlaStage::Restore).all;
        // A 60 met; B open since 61, deadline 241 passed → breach.
        assert_eq!((restore.count, restore.met, restore.breached), (2, 1, 1));
        let ret = &stage(&s, SlaStage::Return).all;
        assert_eq!((ret.count, ret.met, ret.breached), (1, 1, 0));
        // Every ticket here is urban.
        assert_eq!(stage(&s, SlaStage::Arrive).by_area_class[0].1.count, 4);
        assert_eq!(stage(&s, SlaStage::Arrive).by_area_class[1].1.count, 0);
    }

    #[test]
    fn a_stage_counts_in_the_window_of_its_stop() {
        let policy = SlaPolicy::default();
        // Arrived at minute 50 (rural limit 90: met). The window [60, 120) does not hold the
        // stop, so nothing is counted there; [0, 60) does.
        let t = walked(
            ticket("A", FaultCategory::NoPower, AreaClass::Rural, 0),
            &[1, 2, 50],
        );
        let later = Window::new(at(60), at(120)).unwrap();
        let s = summarize_sla([&t], &policy, later, at(200));
        assert_eq!(stage(&s, SlaStage::Arrive).all.count, 0);
        let earlier = Window::new(at(0), at(60)).unwrap();
        let s = summarize_sla([&t], &policy, earlier, at(200));
        let rural = &stage(&s, SlaStage::Arrive).by_area_class[1];
        assert_eq!((rural.0, rural.1.met), (AreaClass::Rural, 1));
        assert_eq!(s.arrival_average[1].limit_minutes, 90);
    }
}
