//! What one recorded event means for the metrics: a pure mapping from the event and its
//! ticket (as it stands after the event) to observations, so the rules are unit-tested here
//! and [`super::record`] only hands them to the recorder.
//!
//! # SLA counting
//! Each stage of a ticket counts once: `breached` when its `sla_breached` event is recorded
//! (just past the limit, not when the late step finally comes, so alerts are timely), `met` when the
//! stage's stop event comes on time. A stop event after the limit whose breach was never
//! recorded (the service was down when the limit passed) counts as `breached` then.
//!
//! Acknowledge is the exception, as in the SLA summary ([`crate::reports::sla`]): it has one
//! clock per dispatch. A dispatch that times out is `breached` at its `declined` event (which
//! comes with the stage's breach, recorded only once per ticket, so that event is not what
//! counts); an acknowledgement is `met` or `breached` against its own dispatch's limit; a
//! rejection is not counted.

use crate::domain::{
    DeclineReason, Event, EventKind, SlaPolicy, SlaStage, Ticket, Timestamp, WarnLevel,
};

/// The intervals of a ticket's life measured as histograms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interval {
    /// Report → first dispatch (includes any wait in the queue).
    ReportToDispatch,
    /// Dispatch → the crew acknowledges.
    DispatchToAcknowledge,
    /// Report → the crew is on site.
    ReportToArrival,
    /// Arrival → power restored.
    ArrivalToRestoration,
    /// Restoration → the work order returned.
    RestorationToReturn,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Observation {
    Interval {
        interval: Interval,
        seconds: f64,
    },
    Sla {
        stage: SlaStage,
        met: bool,
    },
    Warning {
        stage: SlaStage,
        level: WarnLevel,
    },
    /// A job taken from its crew and sent on: `rejected` or `acknowledge_timeout`.
    Reassignment(&'static str),
    /// A ticket's outcome other than at intake (which the dispatcher counts where it
    /// knows the ticket is new): `cancelled`.
    Outcome(&'static str),
}

/// The observations of `event`, given its ticket after the event applied, the SLA policy,
/// and whether a breach of a stage had been recorded for the ticket before this event.
pub fn observe(
    event: &Event,
    ticket: Option<&Ticket>,
    sla: &SlaPolicy,
    breach_recorded: impl Fn(SlaStage) -> bool,
) -> Vec<Observation> {
    let Some(ticket) = ticket else {
        return Vec::new();
    };
    let at = event.at;
    let since = |start: Option<Timestamp>| start.map(|start| at.since(start).as_secs_f64());
    let interval = |interval, start: Option<Timestamp>| {
        since(start).map(|seconds| Observation::Interval { interval, seconds })
    };
    let stage_end = |stage, limit: Option<Timestamp>| {
        let limit = limit?;
        let met = !limit.passed_by(at);
        // Counted at the breach already, unless the breach never got recorded.
        (met || !breach_recorded(stage)).then_some(Observation::Sla { stage, met })
    };
    let mut out = Vec::new();
    match &event.kind {
        EventKind::Dispatched { .. } if !ticket.reassigned() => {
            out.extend(interval(
                Interval::ReportToDispatch,
                Some(ticket.reported_at),
            ));
        }
        EventKind::Declined { reason, .. } => match reason {
            DeclineReason::Rejected { .. } => out.push(Observation::Reassignment("rejected")),
            DeclineReason::AcknowledgeTimeout => {
                out.push(Observation::Sla {
                    stage: SlaStage::Acknowledge,
                    met: false,
                });
                out.push(Observation::Reassignment("acknowledge_timeout"));
            }
        },
        EventKind::Acknowledged { .. } => {
            out.extend(interval(
                Interval::DispatchToAcknowledge,
                ticket.dispatched_at,
            ));
            let limit = ticket.dispatched_at.and_then(|start| {
                sla.due(
                    SlaStage::Acknowledge,
                    start,
                    ticket.area_class,
                    ticket.report.category,
                    ticket.priority,
                )
            });
            out.extend(limit.map(|limit| Observation::Sla {
                stage: SlaStage::Acknowledge,
                met: !limit.passed_by(at),
            }));
        }
        EventKind::Arrived { .. } => {
            out.extend(interval(
                Interval::ReportToArrival,
                Some(ticket.reported_at),
            ));
            out.extend(stage_end(SlaStage::Arrive, ticket.deadlines.arrive_by));
        }
        EventKind::Restored { .. } => {
            out.extend(interval(Interval::ArrivalToRestoration, ticket.arrived_at));
            out.extend(stage_end(SlaStage::Restore, ticket.deadlines.restore_by));
        }
        EventKind::Returned { .. } => {
            out.extend(interval(Interval::RestorationToReturn, ticket.restored_at));
            out.extend(stage_end(SlaStage::Return, ticket.deadlines.return_by));
        }
        EventKind::Cancelled { .. } => out.push(Observation::Outcome("cancelled")),
        EventKind::SlaWarning { stage, level, .. } => out.push(Observation::Warning {
            stage: *stage,
            level: *level,
        }),
        // Per dispatch: counted at the timeout or the late acknowledgement instead.
        EventKind::SlaBreached {
            stage: SlaStage::Acknowledge,
            ..
        } => {}
        EventKind::SlaBreached { stage, .. } => out.push(Observation::Sla {
            stage: *stage,
            met: false,
        }),
        EventKind::Reported { .. }
        | EventKind::Merged { .. }
        | EventKind::Queued { .. }
        | EventKind::Dispatched { .. }
        | EventKind::Departed { .. }
        | EventKind::Closed { .. }
        | EventKind::CrewDuty { .. }
        | EventKind::CrewPosition { .. }
        | EventKind::StormMode { .. } => {}
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{
        Actor, AreaClass, Caller, CrewId, FaultCategory, FaultReport, IncidentId, LatLon, Priority,
        StationId, TicketId,
    };

    const MINUTE: i64 = 60_000;

    fn at(minutes: i64) -> Timestamp {
        Timestamp::from_millis(minutes * MINUTE)
    }

    /// A rural ticket reported at minute 0: arrive by 90, acknowledge within 5 of dispatch,
    /// restore within 240 of arrival, return within 30 of restoration (the defaults).
    fn ticket() -> Ticket {
        let report = FaultReport {
            caller: Caller {
                name: "李明".into(),
                phone: "13800001234".into(),
            },
            location: LatLon::new(23.0, 114.0).expect("a valid point"),
            address: "somewhere".into(),
            category: FaultCategory::NoPower,
            priority: Priority::Normal,
            important_customer: false,
            description: String::new(),
        };
        Ticket::new(
            TicketId::new("T1"),
            IncidentId::new("I-T1"),
            StationId::new("S1"),
            AreaClass::Rural,
            report,
            at(0),
            Some(at(90)),
        )
    }

    fn event(minute: i64, kind: EventKind) -> Event {
        Event {
            at: at(minute),
            actor: Actor::System,
            kind,
        }
    }

    fn crew() -> CrewId {
        CrewId::new("C1")
    }

    fn arrived(minute: i64) -> Event {
        event(
            minute,
            EventKind::Arrived {
                ticket: TicketId::new("T1"),
                crew: crew(),
                location: None,
            },
        )
    }

    fn never_breached(_: SlaStage) -> bool {
        false
    }

    #[test]
    fn an_arrival_in_time_is_met_and_measured_from_the_report() {
        let mut t = ticket();
        let e = arrived(60);
        t.apply(&e);
        let seen = observe(&e, Some(&t), &SlaPolicy::default(), never_breached);
        assert_eq!(
            seen,
            vec![
                Observation::Interval {
                    interval: Interval::ReportToArrival,
                    seconds: 3600.0
                },
                Observation::Sla {
                    stage: SlaStage::Arrive,
                    met: true
                },
            ]
        );
    }

    #[test]
    fn a_late_arrival_counts_as_breached_only_if_the_breach_was_not_recorded() {
        let mut t = ticket();
        let e = arrived(91);
        t.apply(&e);
        let policy = SlaPolicy::default();
        let unrecorded = observe(&e, Some(&t), &policy, never_breached);
        assert!(unrecorded.contains(&Observation::Sla {
            stage: SlaStage::Arrive,
            met: false
        }));
        let recorded = observe(&e, Some(&t), &policy, |stage| stage == SlaStage::Arrive);
        assert!(
            !recorded
                .iter()
                .any(|o| matches!(o, Observation::Sla { .. })),
            "{recorded:?}"
        );
    }

    #[test]
    fn the_limit_itself_is_still_in_time() {
        let mut t = ticket();
        let e = arrived(90);
        t.apply(&e);
        let seen = observe(&e, Some(&t), &SlaPolicy::default(), never_breached);
        assert!(seen.contains(&Observation::Sla {
            stage: SlaStage::Arrive,
            met: true
        }));
    }

    #[test]
    fn acknowledgement_is_measured_from_the_dispatch_it_answers() {
        let mut t = ticket();
        let dispatched = event(
            10,
            EventKind::Dispatched {
                ticket: TicketId::new("T1"),
                crew: crew(),
                eta_minutes: 20.0,
                acknowledge_by: at(15),
            },
        );
        t.apply(&dispatched);
        let policy = SlaPolicy::default();
        assert_eq!(
            observe(&dispatched, Some(&t), &policy, never_breached),
            vec![Observation::Interval {
                interval: Interval::ReportToDispatch,
                seconds: 600.0
            }]
        );
        let ack = event(
            16,
            EventKind::Acknowledged {
                ticket: TicketId::new("T1"),
                crew: crew(),
            },
        );
        t.apply(&ack);
        assert_eq!(
            observe(&ack, Some(&t), &policy, never_breached),
            vec![
                Observation::Interval {
                    interval: Interval::DispatchToAcknowledge,
                    seconds: 360.0
                },
                Observation::Sla {
                    stage: SlaStage::Acknowledge,
                    met: false
                },
            ]
        );
    }

    #[test]
    fn a_redispatch_is_not_a_second_report_to_dispatch() {
        let mut t = ticket();
        for e in [
            event(
                1,
                EventKind::Dispatched {
                    ticket: TicketId::new("T1"),
                    crew: crew(),
                    eta_minutes: 20.0,
                    acknowledge_by: at(6),
                },
            ),
            event(
                6,
                EventKind::Declined {
                    ticket: TicketId::new("T1"),
                    crew: crew(),
                    reason: DeclineReason::AcknowledgeTimeout,
                },
            ),
        ] {
            t.apply(&e);
        }
        let again = event(
            6,
            EventKind::Dispatched {
                ticket: TicketId::new("T1"),
                crew: CrewId::new("C2"),
                eta_minutes: 20.0,
                acknowledge_by: at(11),
            },
        );
        t.apply(&again);
        assert!(observe(&again, Some(&t), &SlaPolicy::default(), never_breached).is_empty());
    }

    #[test]
    fn a_breach_and_a_reassignment_count_when_recorded() {
        let t = ticket();
        let policy = SlaPolicy::default();
        let breach = event(
            90,
            EventKind::SlaBreached {
                ticket: TicketId::new("T1"),
                stage: SlaStage::Arrive,
            },
        );
        assert_eq!(
            observe(&breach, Some(&t), &policy, never_breached),
            vec![Observation::Sla {
                stage: SlaStage::Arrive,
                met: false
            }]
        );
        let declined = event(
            5,
            EventKind::Declined {
                ticket: TicketId::new("T1"),
                crew: crew(),
                reason: DeclineReason::Rejected {
                    reason: "truck broke down".into(),
                },
            },
        );
        assert_eq!(
            observe(&declined, Some(&t), &policy, never_breached),
            vec![Observation::Reassignment("rejected")]
        );
    }

    /// One acknowledge clock per dispatch, as the SLA summary counts: a timeout is a breach
    /// (the once-per-ticket breach event adds nothing), and the next crew's acknowledgement
    /// in time is met even though the ticket's acknowledge breach was recorded.
    #[test]
    fn each_dispatch_has_its_own_acknowledge_clock() {
        let mut t = ticket();
        let policy = SlaPolicy::default();
        let sla = |seen: Vec<Observation>| -> Vec<bool> {
            seen.into_iter()
                .filter_map(|o| match o {
                    Observation::Sla {
                        stage: SlaStage::Acknowledge,
                        met,
                    } => Some(met),
                    _ => None,
                })
                .collect()
        };
        let ticket_id = || TicketId::new("T1");
        let dispatched = |minute, crew: &str| {
            event(
                minute,
                EventKind::Dispatched {
                    ticket: ticket_id(),
                    crew: CrewId::new(crew),
                    eta_minutes: 20.0,
                    acknowledge_by: at(minute + 5),
                },
            )
        };
        t.apply(&dispatched(1, "C1"));
        let breach = event(
            6,
            EventKind::SlaBreached {
                ticket: ticket_id(),
                stage: SlaStage::Acknowledge,
            },
        );
        t.apply(&breach);
        assert_eq!(
            sla(observe(&breach, Some(&t), &policy, |_| false)),
            Vec::<bool>::new()
        );
        let timeout = event(
            6,
            EventKind::Declined {
                ticket: ticket_id(),
                crew: crew(),
                reason: DeclineReason::AcknowledgeTimeout,
            },
        );
        t.apply(&timeout);
        let seen = observe(&timeout, Some(&t), &policy, |_| true);
        assert!(seen.contains(&Observation::Reassignment("acknowledge_timeout")));
        assert_eq!(sla(seen), vec![false]);
        t.apply(&dispatched(6, "C2"));
        let ack = event(
            8,
            EventKind::Acknowledged {
                ticket: ticket_id(),
                crew: CrewId::new("C2"),
            },
        );
        t.apply(&ack);
        assert_eq!(sla(observe(&ack, Some(&t), &policy, |_| true)), vec![true]);
    }

    #[test]
    fn a_customer_internal_arrival_has_no_clock_to_meet() {
        let mut t = ticket();
        t.report.category = FaultCategory::CustomerInternal;
        t.deadlines.arrive_by = None;
        let e = arrived(300);
        t.apply(&e);
        let seen = observe(&e, Some(&t), &SlaPolicy::default(), never_breached);
        assert!(!seen.iter().any(|o| matches!(o, Observation::Sla { .. })));
    }

    #[test]
    fn events_without_a_known_ticket_observe_nothing() {
        assert!(observe(&arrived(1), None, &SlaPolicy::default(), never_breached).is_empty());
    }
}
