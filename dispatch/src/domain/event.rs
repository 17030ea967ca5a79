//! Events: every change of a ticket or crew, stamped with time and actor. The store keeps
//! them, a ticket's timeline is its events, and replaying them rebuilds the engine's state.

use super::{
    AreaClass, Callback, CrewId, DeclineReason, FaultReport, IncidentId, LatLon, SlaStage,
    StationId, TicketId, Timestamp, WarnLevel, WorkOrderReturn,
};
use serde::{Deserialize, Serialize};

/// Who caused a change. Agents and supervisors are roles here; which person it was is the
/// API's business (it may record it beside the event).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "role", content = "id", rename_all = "snake_case")]
pub enum Actor {
    /// The service itself: dispatch decisions and deadlines.
    System,
    Agent,
    Supervisor,
    Crew(CrewId),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub at: Timestamp,
    pub actor: Actor,
    #[serde(flatten)]
    pub kind: EventKind,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum EventKind {
    /// A report became a ticket of `station`; `incident` is the fault it is about (its own,
    /// new one unless a `Merged` follows).
    Reported {
        ticket: TicketId,
        incident: IncidentId,
        station: StationId,
        area_class: AreaClass,
        report: FaultReport,
        arrive_by: Option<crate::domain::Timestamp>,
    },
    /// A repeat report of an open incident: no crew of its own.
    Merged {
        ticket: TicketId,
        incident: IncidentId,
    },
    /// No crew free: the ticket waits by priority.
    Queued {
        ticket: TicketId,
    },
    Dispatched {
        ticket: TicketId,
        crew: CrewId,
        eta_minutes: f64,
        acknowledge_by: Timestamp,
    },
    /// The crew rejected the job or let it time out; the ticket goes back to be dispatched.
    Declined {
        ticket: TicketId,
        crew: CrewId,
        reason: DeclineReason,
    },
    Acknowledged {
        ticket: TicketId,
        crew: CrewId,
    },
    Departed {
        ticket: TicketId,
        crew: CrewId,
    },
    Arrived {
        ticket: TicketId,
        crew: CrewId,
        location: Option<LatLon>,
    },
    Restored {
        ticket: TicketId,
        crew: CrewId,
        cause: Option<String>,
    },
    Returned {
        ticket: TicketId,
        crew: CrewId,
        order: WorkOrderReturn,
    },
    Closed {
        ticket: TicketId,
        callback: Callback,
    },
    /// `crew` is the crew released by the cancellation, if one had the job.
    Cancelled {
        ticket: TicketId,
        crew: Option<CrewId>,
        reason: String,
    },
    /// `stage` has run `level` of its limit (a fraction): a warning before the breach. At most
    /// once per ticket, stage and level.
    SlaWarning {
        ticket: TicketId,
        stage: SlaStage,
        level: WarnLevel,
    },
    /// `stage` ran past its limit. At most once per ticket and stage.
    SlaBreached {
        ticket: TicketId,
        stage: SlaStage,
    },
    CrewDuty {
        crew: CrewId,
        on_duty: bool,
    },
    CrewPosition {
        crew: CrewId,
        location: LatLon,
        /// When the phone took the fix, by its clock (capped), if it said.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        fix_at: Option<Timestamp>,
    },
    /// Storm mode began (`on`) or ended: while on, tickets wait for the batch assignment
    /// whatever the configured policy. `queued` is the queue's length at the switch.
    StormMode {
        on: bool,
        reason: StormReason,
        queued: u32,
    },
}

/// Why storm mode was switched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StormReason {
    /// The queue reached the configured threshold.
    QueueAbove,
    /// After an assignment, the queue was down to the configured level.
    QueueDrained,
    /// A supervisor's switch: the automatic rule leaves it alone until handed back.
    Supervisor,
    /// A supervisor handed storm mode back to the automatic rule (`on` unchanged).
    Automatic,
}

impl StormReason {
    pub fn as_str(self) -> &'static str {
        match self {
            StormReason::QueueAbove => "queue_above",
            StormReason::QueueDrained => "queue_drained",
            StormReason::Supervisor => "supervisor",
            StormReason::Automatic => "automatic",
        }
    }
}

impl EventKind {
    /// The crew whose position this event sets: a position fix, or an arrival on site (the
    /// crew is where the fault is). A store that keeps fixes apart from its log must not let
    /// an older fix undo either.
    pub fn sets_position_of(&self) -> Option<&CrewId> {
        match self {
            EventKind::CrewPosition { crew, .. } | EventKind::Arrived { crew, .. } => Some(crew),
            _ => None,
        }
    }

    /// The ticket whose timeline this event belongs to.
    pub fn ticket(&self) -> Option<&TicketId> {
        match self {
            EventKind::Reported { ticket, .. }
            | EventKind::Merged { ticket, .. }
            | EventKind::Queued { ticket }
            | EventKind::Dispatched { ticket, .. }
            | EventKind::Declined { ticket, .. }
            | EventKind::Acknowledged { ticket, .. }
            | EventKind::Departed { ticket, .. }
            | EventKind::Arrived { ticket, .. }
            | EventKind::Restored { ticket, .. }
            | EventKind::Returned { ticket, .. }
            | EventKind::Closed { ticket, .. }
            | EventKind::Cancelled { ticket, .. }
            | EventKind::SlaWarning { ticket, .. }
            | EventKind::SlaBreached { ticket, .. } => Some(ticket),
            EventKind::CrewDuty { .. }
            | EventKind::CrewPosition { .. }
            | EventKind::StormMode { .. } => None,
        }
    }

    /// Whether every number the event carries is finite. JSON has no NaN or infinity (they
    /// become `null` and never read back), and a `LatLon` is finite by construction, so the
    /// estimate is the one number to check.
    pub fn numbers_are_finite(&self) -> bool {
        match self {
            EventKind::Dispatched { eta_minutes, .. } => eta_minutes.is_finite(),
            _ => true,
        }
    }

    /// The state a ticket is in right after this event, when the event moves it (a
    /// projection for stores and displays; `Ticket::apply` is the rule, and a test holds the
    /// two together).
    pub fn resulting_state(&self) -> Option<super::TicketState> {
        use super::TicketState as S;
        Some(match self {
            EventKind::Reported { .. } | EventKind::Queued { .. } | EventKind::Declined { .. } => {
                S::Queued
            }
            EventKind::Merged { .. } => S::Merged,
            EventKind::Dispatched { .. } => S::Dispatched,
            EventKind::Acknowledged { .. } => S::Acknowledged,
            EventKind::Departed { .. } => S::EnRoute,
            EventKind::Arrived { .. } => S::OnSite,
            EventKind::Restored { .. } => S::Restored,
            EventKind::Returned { .. } => S::Returned,
            EventKind::Closed { .. } => S::Closed,
            EventKind::Cancelled { .. } => S::Cancelled,
            EventKind::SlaWarning { .. }
            | EventKind::SlaBreached { .. }
            | EventKind::CrewDuty { .. }
            | EventKind::CrewPosition { .. }
            | EventKind::StormMode { .. } => return None,
        })
    }

    /// The snake_case name used on timelines and in metrics.
    pub fn name(&self) -> &'static str {
        match self {
            EventKind::Reported { .. } => "reported",
            EventKind::Merged { .. } => "merged",
            EventKind::Queued { .. } => "queued",
            EventKind::Dispatched { .. } => "dispatched",
            EventKind::Declined { .. } => "declined",
            EventKind::Acknowledged { .. } => "acknowledged",
            EventKind::Departed { .. } => "departed",
            EventKind::Arrived { .. } => "arrived",
            EventKind::Restored { .. } => "restored",
            EventKind::Returned { .. } => "returned",
            EventKind::Closed { .. } => "closed",
            EventKind::Cancelled { .. } => "cancelled",
            EventKind::SlaWarning { .. } => "sla_warning",
            EventKind::SlaBreached { .. } => "sla_breached",
            EventKind::CrewDuty { .. } => "crew_duty",
            EventKind::CrewPosition { .. } => "crew_position",
            EventKind::StormMode { .. } => "storm_mode",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_resulting_state_is_what_applying_the_event_gives() {
        let events = crate::store::conformance::every_kind_of_event();
        let Some(Event {
            at,
            kind:
                EventKind::Reported {
                    ticket,
                    incident,
                    station,
                    area_class,
                    report,
                    arrive_by,
                },
            ..
        }) = events.first().cloned()
        else {
            panic!("every_kind_of_event starts with a report");
        };
        let fresh = crate::domain::Ticket::new(
            ticket, incident, station, area_class, report, at, arrive_by,
        );
        for event in &events {
            let mut ticket = fresh.clone();
            ticket.apply(event);
            match event.kind.resulting_state() {
                Some(state) => assert_eq!(ticket.state, state, "{}", event.kind.name()),
                None => assert_eq!(ticket.state, fresh.state, "{}", event.kind.name()),
            }
        }
    }

    #[test]
    fn events_round_trip_through_json_with_a_readable_tag() {
        let event = Event {
            at: Timestamp::from_millis(42),
            actor: Actor::Crew(CrewId::new("C1")),
            kind: EventKind::Acknowledged {
                ticket: TicketId::new("T1"),
                crew: CrewId::new("C1"),
            },
        };
        let json = serde_json::to_value(&event).unwrap();
        assert_eq!(json["event"], "acknowledged");
        assert_eq!(json["actor"]["role"], "crew");
        let back: Event = serde_json::from_value(json).unwrap();
        assert_eq!(back, event);
    }

    #[test]
    fn sla_events_carry_stage_and_level_as_a_fraction() {
        let event = Event {
            at: Timestamp::from_millis(42),
            actor: Actor::System,
            kind: EventKind::SlaWarning {
                ticket: TicketId::new("T1"),
                stage: SlaStage::Arrive,
                level: WarnLevel::from_fraction(0.8).unwrap(),
            },
        };
        let json = serde_json::to_value(&event).unwrap();
        assert_eq!(json["event"], "sla_warning");
        assert_eq!(json["stage"], "arrive");
        assert_eq!(json["level"], 0.8);
        let back: Event = serde_json::from_value(json).unwrap();
        assert_eq!(back, event);
        let breach = serde_json::json!({
            "at": 1, "actor": {"role": "system"}, "event": "sla_breached",
            "ticket": "T1", "stage": "return"
        });
        let back: Event = serde_json::from_value(breach).unwrap();
        assert_eq!(back.kind.name(), "sla_breached");
    }

    #[test]
    fn storm_mode_belongs_to_no_ticket_and_reads_back() {
        let event = Event {
            at: Timestamp::from_millis(7),
            actor: Actor::System,
            kind: EventKind::StormMode {
                on: true,
                reason: StormReason::QueueAbove,
                queued: 40,
            },
        };
        let json = serde_json::to_value(&event).unwrap();
        assert_eq!(json["event"], "storm_mode");
        assert_eq!(json["reason"], "queue_above");
        assert_eq!(event.kind.ticket(), None);
        let back: Event = serde_json::from_value(json).unwrap();
        assert_eq!(back, event);
    }
}
