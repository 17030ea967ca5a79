//! The deadline clocks an open ticket runs now: which SLA stages are under way, since when
//! and until when. The control room colours a ticket by the worst of them and lists the
//! tickets nearest to a breach by their time left.
//!
//! Which stage runs follows from the ticket's state, as the SLA policy defines the stages
//! (see [`crate::domain::SlaPolicy`]): arrival runs from the report until the crew is on site, so a
//! dispatched ticket runs two clocks at once (acknowledge and arrive).

use crate::domain::{SlaStage, Ticket, TicketState, Timestamp, WarnLevel, WarnLevels};

/// One stage under way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunningStage {
    pub stage: SlaStage,
    /// When the clock started: the dispatch, report, arrival or restoration.
    pub started_at: Option<Timestamp>,
    pub due: Timestamp,
}

impl RunningStage {
    /// The highest warning level this clock has reached at `now`, and whether it is past
    /// due. Judged on this clock's own start and due, not on the checkpoints recorded for the
    /// stage: the acknowledgement clock restarts with each dispatch, and a warning or breach
    /// recorded against the crew before is not the next crew's.
    pub fn reached(&self, now: Timestamp, levels: WarnLevels) -> (Option<WarnLevel>, bool) {
        let warned = self.started_at.and_then(|start| {
            levels
                .iter()
                .filter(|level| level.instant(start, self.due).passed_by(now))
                .max()
        });
        (warned, self.due.passed_by(now))
    }
}

/// The clocks `ticket` runs now; none once the work order is returned, and none for a stage
/// without a limit (customer-internal faults have no arrival clock).
pub fn running_stages(ticket: &Ticket) -> Vec<RunningStage> {
    let d = &ticket.deadlines;
    let mut running = Vec::with_capacity(2);
    let mut add = |stage, started_at, due: Option<Timestamp>| {
        if let Some(due) = due {
            running.push(RunningStage {
                stage,
                started_at,
                due,
            });
        }
    };
    match ticket.state {
        TicketState::Dispatched => {
            add(
                SlaStage::Acknowledge,
                ticket.dispatched_at,
                d.acknowledge_by,
            );
            add(SlaStage::Arrive, Some(ticket.reported_at), d.arrive_by);
        }
        TicketState::Queued | TicketState::Acknowledged | TicketState::EnRoute => {
            add(SlaStage::Arrive, Some(ticket.reported_at), d.arrive_by);
        }
        TicketState::OnSite => add(SlaStage::Restore, ticket.arrived_at, d.restore_by),
        TicketState::Restored => add(SlaStage::Return, ticket.restored_at, d.return_by),
        TicketState::Returned
        | TicketState::Closed
        | TicketState::Cancelled
        | TicketState::Merged => {}
    }
    running
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{
        AreaClass, Caller, CrewId, Deadlines, FaultCategory, FaultReport, IncidentId, LatLon,
        Priority, StationId, TicketId,
    };

    fn ticket(category: FaultCategory) -> Ticket {
        let t0 = Timestamp::from_millis(0);
        let report = FaultReport {
            caller: Caller {
                name: String::new(),
                phone: "1".into(),
            },
            location: LatLon::new(23.1, 114.4).unwrap(),
            address: "x".into(),
            category,
            priority: Priority::Normal,
            important_customer: false,
            description: String::new(),
        };
        let arrive_by = category.has_arrival_clock().then(|| t0.plus_minutes(45));
        Ticket::new(
            TicketId::new("t"),
            IncidentId::new("i"),
            StationId::new("s"),
            AreaClass::Urban,
            report,
            t0,
            arrive_by,
        )
    }

    fn stages(t: &Ticket) -> Vec<SlaStage> {
        running_stages(t).iter().map(|r| r.stage).collect()
    }

    #[test]
    fn each_state_runs_the_clocks_of_its_stages() {
        let t0 = Timestamp::from_millis(0);
        let mut t = ticket(FaultCategory::NoPower);
        assert_eq!(stages(&t), [SlaStage::Arrive]);
        assert_eq!(running_stages(&t)[0].due, t0.plus_minutes(45));

        t.state = TicketState::Dispatched;
        t.crew = Some(CrewId::new("c"));
        t.dispatched_at = Some(t0.plus_minutes(1));
        t.deadlines.acknowledge_by = Some(t0.plus_minutes(6));
        let running = running_stages(&t);
        assert_eq!(stages(&t), [SlaStage::Acknowledge, SlaStage::Arrive]);
        assert_eq!(running[0].started_at, Some(t0.plus_minutes(1)));
        assert_eq!(running[0].due, t0.plus_minutes(6));

        t.state = TicketState::EnRoute;
        t.deadlines.acknowledge_by = None;
        assert_eq!(stages(&t), [SlaStage::Arrive]);

        t.state = TicketState::OnSite;
        t.arrived_at = Some(t0.plus_minutes(30));
        t.deadlines.restore_by = Some(t0.plus_minutes(210));
        assert_eq!(stages(&t), [SlaStage::Restore]);
        assert_eq!(running_stages(&t)[0].started_at, Some(t0.plus_minutes(30)));

        t.state = TicketState::Restored;
        t.deadlines.return_by = Some(t0.plus_minutes(240));
        assert_eq!(stages(&t), [SlaStage::Return]);

        t.state = TicketState::Returned;
        assert!(stages(&t).is_empty());
    }

    #[test]
    fn a_clock_is_judged_on_its_own_start_and_due() {
        let levels = WarnLevels::new([
            WarnLevel::from_fraction(0.5).unwrap(),
            WarnLevel::from_fraction(0.8).unwrap(),
        ])
        .unwrap();
        let clock = RunningStage {
            stage: SlaStage::Acknowledge,
            started_at: Some(Timestamp::from_millis(0).plus_minutes(60)),
            due: Timestamp::from_millis(0).plus_minutes(70),
        };
        let at = |m| clock.reached(Timestamp::from_millis(0).plus_minutes(m), levels);
        let just_past = |m| {
            let instant = Timestamp::from_millis(0).plus_minutes(m);
            clock.reached(instant.first_instant_past(), levels)
        };
        // A second crew's clock, from minute 60: the first crew's breach at 10 is not its.
        assert_eq!(at(64), (None, false));
        assert_eq!(
            at(65),
            (None, false),
            "at its instant a level is not yet passed"
        );
        assert_eq!(just_past(65), (WarnLevel::from_fraction(0.5), false));
        assert_eq!(at(69), (WarnLevel::from_fraction(0.8), false));
        assert_eq!(
            at(70),
            (WarnLevel::from_fraction(0.8), false),
            "met at the limit"
        );
        assert_eq!(just_past(70), (WarnLevel::from_fraction(0.8), true));
    }

    #[test]
    fn a_customer_internal_fault_runs_no_arrival_clock() {
        let t = ticket(FaultCategory::CustomerInternal);
        assert_eq!(t.deadlines, Deadlines::default());
        assert!(stages(&t).is_empty());
    }
}
