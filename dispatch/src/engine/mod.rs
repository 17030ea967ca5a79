//! The dispatch engine: for a fault report, the station that owns it, a repeat of an open
//! incident or not, and the crew that goes; then every later step of tickets and crews. It is
//! pure and in memory: commands and `now` in, events out; the same events replayed through
//! [`Engine::apply`] rebuild the same state, which is how the service recovers.
//!
//! # Properties (each has a property test in `tests.rs`)
//! 1. **Never a busy crew**: a crew is dispatched only while available (on duty, no job,
//!    not unresponsive); no crew ever holds two active jobs.
//! 2. **Right skill**: the crew has the skill the ticket's category requires.
//! 3. **Shortest estimated travel within reach**: a crew is eligible when it has the right
//!    skill, is available, has not declined this ticket, and is of the ticket's own station
//!    or has an estimate of at most the borrow reach ([`EngineConfig::borrow_reach`]: by
//!    default the arrival limit of the ticket's area class). Among eligible crews the chosen
//!    one has the shortest estimate, except for rule 4; with none eligible, none is sent.
//! 4. **Own station first among equals**: the best crew of the ticket's own station (always
//!    eligible, however far) is sent unless another eligible crew arrives more than
//!    `own_station_margin_minutes` sooner.
//! 5. **Deterministic**: the same state and command give the same events, whatever the
//!    insertion order of the indexes; ties break by own station, then crew id.
//! 6. **Every dispatched ticket has exactly one crew**, and a declined (rejected or timed
//!    out) assignment frees the crew and at once re-dispatches the ticket or queues it.
//! 7. **Queue order**: whenever crews become free, waiting tickets are served emergency first,
//!    then important customers, then earliest arrival deadline, each by the crew rules 3–4
//!    give it; a ticket no free crew is eligible for (a free crew of another station may be
//!    beyond its reach) is passed over and waits. After every command no waiting ticket has
//!    an eligible free crew.
//! 8. **Replay**: applying the emitted events to an engine built from the same region gives
//!    the same state, pending SLA checkpoints included.
//! 9. **Deadlines act once**: [`Command::FireDeadlines`] records every checkpoint passed
//!    before `now` (warnings and breaches of the stages a ticket is in, acknowledgement timeouts),
//!    never one before it is due, and a warning or breach at most once per ticket, stage and
//!    level (the acknowledgement: per dispatch, each crew's clock its own); a stage that
//!    stops (the crew arrives in time) drops its pending checkpoints, and a step on a ticket
//!    first records that ticket's warnings and breaches due before it (it may come before
//!    the driver's run), so a stage never stops past its limit unbreached.
//!    [`Engine::next_deadline`] says when the next one is due, so a driver can sleep till then.
//! 10. **Policies**: the configured [`DispatchPolicy`] decides how crews are chosen.
//!     `nearest` is rules 3–4; `station` sends only the ticket's own station's crews (its
//!     nearest free skilled one, ties by crew id) and otherwise lets the ticket wait;
//!     `batch` queues every ticket and [`Command::AssignBatch`] assigns waiting tickets to
//!     free crews in one optimal matching (`batch.rs`), with no borrow reach (its score
//!     weighs every minute of travel already). Rules 1, 2, 5, 6 and 8 hold under all three;
//!     the queue is work-conserving (rule 7) after every command under `nearest` (within
//!     reach) and `station` (within a station), and after every `AssignBatch` under `batch`
//!     (any free skilled crew that has not declined is given work).
//! 11. **Storm mode**: when `storm.enter_queue` tickets wait, or a supervisor says so
//!     ([`Command::Storm`]), the engine uses `batch` whatever its policy, and returns to it
//!     when an assignment leaves at most `storm.leave_queue` waiting (unless a supervisor
//!     pinned it). Each switch is a `storm_mode` event, so replay restores the mode.
//! 12. **No repeat is stranded**: a merged repeat report's customer waits on its incident's
//!     master; the master is cancelled only with its open repeats
//!     ([`EngineError::IncidentHasRepeats`] otherwise), so every merged ticket's incident is
//!     open or was closed by the master's restoration.

mod batch;
mod config;
mod deadlines;
mod incidents;
pub mod matching;
mod queue;
pub mod synthetic;
#[cfg(test)]
mod tests;

pub use batch::{Scores, assign, pair_score};
pub use config::{BatchConfig, ConfigError, DispatchPolicy, EngineConfig, Speeds, StormConfig};
pub use incidents::Incident;
pub use matching::Choice;

use crate::domain::{
    Actor, AreaClass, Checkpoint, CheckpointKind, Crew, CrewId, CrewStatus, Deadlines,
    DeclineReason, Event, EventKind, FaultReport, IncidentId, LatLon, SlaStage, Station, StationId,
    StormReason, Ticket, TicketCommand, TicketId, TicketState, Timestamp, TransitionError,
};
use crate::geo::{CrewIndex, LocalProjection, OutsideServiceAreas, ServiceAreaIndex};
use crate::region::Region;
use deadlines::DeadlineBook;
use foldhash::{HashMap, HashMapExt};
use incidents::IncidentBook;
use queue::DispatchQueue;
use std::collections::{BTreeMap, BTreeSet};

/// What can be asked of the engine.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// A new report from a 95598 agent; `ticket` is the id the caller allocated.
    Report {
        ticket: TicketId,
        report: FaultReport,
    },
    /// A step on an existing ticket.
    Ticket {
        ticket: TicketId,
        command: TicketCommand,
    },
    CrewDuty {
        crew: CrewId,
        on_duty: bool,
    },
    CrewPosition {
        crew: CrewId,
        location: LatLon,
        /// When the phone took the fix, by its clock, if it said: a fix no later than the
        /// crew's last one is a late or repeated ping and records nothing.
        fix_at: Option<Timestamp>,
    },
    /// Records every SLA checkpoint passed before `now`: `sla_warning` and `sla_breached` events,
    /// and acknowledgement timeouts (the job goes to the next crew). Issued by the deadline
    /// driver when [`Engine::next_deadline`] has come; never fails, and does nothing when
    /// nothing is due.
    FireDeadlines,
    /// Under the `batch` policy (or in storm mode), assigns waiting tickets to free crews in
    /// one optimal matching; issued by a driver every `batch.interval_seconds` while
    /// [`Engine::batching`] says so. Never fails; does nothing under the other policies.
    AssignBatch,
    /// A supervisor's storm switch. The engine records the actor given; who may issue it is
    /// the service's role table's business.
    Storm(StormSwitch),
}

/// What a supervisor can do with storm mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StormSwitch {
    /// Storm mode on, and kept on until a supervisor says otherwise.
    On,
    /// Storm mode off, and kept off until a supervisor says otherwise.
    Off,
    /// Back to the automatic rule of `[engine.storm]`.
    Automatic,
}

/// Whether the engine is in storm mode, and whether a supervisor pinned that.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StormState {
    pub on: bool,
    /// Set by a supervisor's switch: the automatic rule leaves the mode alone.
    pub pinned: bool,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EngineError {
    #[error("no ticket {0}")]
    UnknownTicket(TicketId),
    #[error("no crew {0}")]
    UnknownCrew(CrewId),
    #[error("ticket {0} exists already")]
    DuplicateTicket(TicketId),
    #[error(transparent)]
    Transition(#[from] TransitionError),
    #[error(transparent)]
    OutsideServiceAreas(#[from] OutsideServiceAreas),
    #[error("crew {0} holds a job; it must return or reject it before going off duty")]
    CrewHasJob(CrewId),
    #[error("a crew may report only for itself")]
    NotThisCrew,
    #[error(
        "the fix is more than {limit_km} km outside the region's service areas: a GPS fault, \
         most likely; the crew stays where its last fix put it"
    )]
    FixOutsideRegion { limit_km: f64 },
    #[error(
        "ticket {ticket} is the first report of a fault that {repeats} other open report(s) \
         repeat: cancelled alone, their customers would have no crew coming. Send \
         \"with_repeats\": true to cancel them too, or leave this ticket open"
    )]
    IncidentHasRepeats { ticket: TicketId, repeats: usize },
}

#[derive(Debug, Clone)]
struct CrewSlot {
    crew: Crew,
    /// Dense index of the crew's station.
    station: Option<u32>,
    /// Where the crew sits in the pool, when it is in it.
    indexed_at: Option<[f64; 2]>,
}

/// How many tickets are in each state and crews in each status, kept as events apply so the
/// gauges cost nothing to read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Census {
    /// Indexed by [`TicketState::index`]; tickets forgotten from memory are not counted.
    pub tickets: [usize; TicketState::ALL.len()],
    /// Indexed by [`CrewStatus::index`].
    pub crews: [usize; CrewStatus::NAMES.len()],
}

#[derive(Debug)]
pub struct Engine {
    config: EngineConfig,
    projection: LocalProjection,
    stations: Vec<Station>,
    station_by_id: HashMap<StationId, usize>,
    areas: ServiceAreaIndex,
    crews: Vec<CrewSlot>,
    crew_by_id: HashMap<CrewId, u32>,
    pool: CrewIndex,
    /// Ordered by id, so listings can page with a cursor.
    tickets: BTreeMap<TicketId, Ticket>,
    incidents: IncidentBook,
    /// Each merged repeat report's first report (主单), kept after the incident closes so a
    /// caller who rings back can be told how the repair went.
    first_reports: HashMap<TicketId, TicketId>,
    queue: DispatchQueue,
    /// Pending SLA checkpoints of open tickets; kept by `apply`, so replay rebuilds it.
    deadlines: DeadlineBook,
    /// Crews by status; tickets are counted from `by_state`.
    crew_census: [usize; CrewStatus::NAMES.len()],
    /// Ticket ids by state, in id order: a listing of one state pages through its own
    /// tickets instead of every ticket the engine ever held, under the engine's lock.
    by_state: [BTreeSet<TicketId>; TicketState::ALL.len()],
    /// Kept by `apply` from `storm_mode` events.
    storm: StormState,
    /// Crews that entered the pool (came free, or moved while free) since the `nearest`
    /// queue was last served: after a serve no waiting ticket has an eligible free crew, so
    /// only these can make one servable (see `serve_queue_nearest`). `None`: not followed
    /// (a new or replayed engine, another policy in force, or too many): the next serve
    /// looks at every free crew. A cost cache only: what is dispatched never depends on it.
    fresh: Option<Vec<u32>>,
}

/// Beyond this many crews come free between two serves of the queue, the serve looks at
/// every waiting ticket's own choice instead (one pool search per ticket).
const FRESH_LIMIT: usize = 32;

impl Engine {
    pub fn new(config: EngineConfig, region: Region) -> Result<Self, ConfigError> {
        config.validate()?;
        let Region {
            stations,
            areas,
            crews,
        } = region;
        let projection = middle(&stations);
        let station_by_id: HashMap<StationId, usize> = stations
            .iter()
            .enumerate()
            .map(|(i, s)| (s.id.clone(), i))
            .collect();
        let areas = ServiceAreaIndex::new(&areas, config.outside_area_limit_km);
        let mut engine = Self {
            config,
            projection,
            stations,
            station_by_id,
            areas,
            crews: Vec::with_capacity(crews.len()),
            crew_by_id: HashMap::with_capacity(crews.len()),
            pool: CrewIndex::default(),
            tickets: BTreeMap::new(),
            incidents: IncidentBook::default(),
            first_reports: HashMap::new(),
            queue: DispatchQueue::default(),
            deadlines: DeadlineBook::default(),
            crew_census: Default::default(),
            by_state: Default::default(),
            storm: StormState::default(),
            fresh: None,
        };
        for crew in crews {
            let dense = engine.crews.len() as u32;
            engine.crew_census[crew.status.index()] += 1;
            engine.crew_by_id.insert(crew.id.clone(), dense);
            let station = engine.station_by_id.get(&crew.station).map(|&s| s as u32);
            engine.crews.push(CrewSlot {
                crew,
                station,
                indexed_at: None,
            });
            engine.sync_pool(dense);
        }
        Ok(engine)
    }

    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    pub fn stations(&self) -> &[Station] {
        &self.stations
    }

    /// Each station with its service area, in the order of [`Engine::stations`].
    pub fn service_areas(&self) -> Vec<(&Station, ::geo::MultiPolygon<f64>)> {
        let mut areas: Vec<Vec<::geo::Polygon<f64>>> = vec![Vec::new(); self.stations.len()];
        for (polygon, station) in self.areas.parts() {
            if let Some(parts) = areas.get_mut(station) {
                parts.push(polygon.clone());
            }
        }
        self.stations
            .iter()
            .zip(areas)
            .map(|(station, parts)| (station, ::geo::MultiPolygon(parts)))
            .collect()
    }

    pub fn station(&self, id: &StationId) -> Option<&Station> {
        self.station_by_id.get(id).map(|&i| &self.stations[i])
    }

    pub fn crews(&self) -> impl Iterator<Item = &Crew> {
        self.crews.iter().map(|slot| &slot.crew)
    }

    pub fn crew(&self, id: &CrewId) -> Option<&Crew> {
        self.crew_by_id
            .get(id)
            .map(|&i| &self.crews[i as usize].crew)
    }

    pub fn ticket(&self, id: &TicketId) -> Option<&Ticket> {
        self.tickets.get(id)
    }

    /// Tickets in id order.
    pub fn tickets(&self) -> impl Iterator<Item = &Ticket> {
        self.tickets.values()
    }

    /// Tickets with an id after `cursor`, in id order: a page of a listing.
    pub fn tickets_after(&self, cursor: Option<&TicketId>) -> impl Iterator<Item = &Ticket> {
        use std::ops::Bound;
        let start = match cursor {
            Some(c) => Bound::Excluded(c),
            None => Bound::Unbounded,
        };
        self.tickets
            .range::<TicketId, _>((start, Bound::Unbounded))
            .map(|(_, t)| t)
    }

    /// The tickets in `state` after `cursor` (exclusive), in id order.
    pub fn tickets_in_state_after(
        &self,
        state: TicketState,
        cursor: Option<&TicketId>,
    ) -> impl Iterator<Item = &Ticket> {
        use std::ops::Bound;
        let start = match cursor {
            Some(c) => Bound::Excluded(c),
            None => Bound::Unbounded,
        };
        self.by_state[state.index()]
            .range::<TicketId, _>((start, Bound::Unbounded))
            .filter_map(|id| self.tickets.get(id))
    }

    pub fn incident(&self, id: &IncidentId) -> Option<&Incident> {
        self.incidents.get(id)
    }

    /// The first report of the fault `ticket` repeats, when it is a merged repeat: the
    /// ticket whose crew does the repair, open or not.
    pub fn first_report_of(&self, ticket: &TicketId) -> Option<&Ticket> {
        self.first_reports
            .get(ticket)
            .and_then(|first| self.tickets.get(first))
    }

    pub fn open_incidents(&self) -> usize {
        self.incidents.len()
    }

    /// How many tickets wait for a crew, in O(1).
    pub fn queue_len(&self) -> usize {
        self.queue.len()
    }

    /// Tickets by state and crews by status, in O(1).
    pub fn census(&self) -> Census {
        Census {
            tickets: std::array::from_fn(|i| self.by_state[i].len()),
            crews: self.crew_census,
        }
    }

    /// When the waiting ticket reported first was reported, in O(1).
    pub fn oldest_queued_report(&self) -> Option<Timestamp> {
        self.queue.oldest_report()
    }

    /// Waiting tickets in the order they will be served.
    pub fn queued(&self) -> impl Iterator<Item = &TicketId> {
        self.queue.iter()
    }

    pub fn storm(&self) -> StormState {
        self.storm
    }

    /// The policy in force: `batch` in storm mode, the configured one otherwise.
    pub fn policy(&self) -> DispatchPolicy {
        if self.storm.on {
            DispatchPolicy::Batch
        } else {
            self.config.policy
        }
    }

    /// Whether tickets wait for [`Command::AssignBatch`]: a driver should issue it every
    /// `batch.interval_seconds` while this holds.
    pub fn batching(&self) -> bool {
        self.policy() == DispatchPolicy::Batch
    }

    /// Drops a finished ticket (closed, cancelled or merged) from memory: the store keeps its
    /// history, the engine only the work in hand. False when the ticket is still open.
    pub fn forget(&mut self, ticket: &TicketId) -> bool {
        let Some(t) = self.tickets.get(ticket).filter(|t| t.state.is_final()) else {
            return false;
        };
        let (state, incident) = (t.state, t.incident.clone());
        if state == TicketState::Merged {
            // Forgotten, it no longer waits on its incident's first report.
            self.incidents.drop_repeat(&incident, ticket);
        }
        self.by_state[state.index()].remove(ticket);
        self.tickets.remove(ticket);
        self.deadlines.close(ticket);
        self.first_reports.remove(ticket);
        true
    }

    /// When the next pending SLA checkpoint of any open ticket is due: the instant to run
    /// [`Command::FireDeadlines`] at. `None` when no clock runs.
    pub fn next_deadline(&self) -> Option<Timestamp> {
        self.deadlines.next().map(|c| c.at.first_instant_past())
    }

    /// The pending checkpoints of one ticket, in no particular order.
    pub fn pending_checkpoints(&self, ticket: &TicketId) -> &[Checkpoint] {
        self.deadlines.pending(ticket)
    }

    /// Whether a warning or breach of `ticket` has been recorded (open tickets only).
    pub fn checkpoint_fired(
        &self,
        ticket: &TicketId,
        stage: SlaStage,
        kind: CheckpointKind,
    ) -> bool {
        self.deadlines.has_fired(ticket, stage, kind)
    }

    /// Decides a command and applies its events. On error nothing has changed.
    pub fn handle(
        &mut self,
        command: Command,
        actor: Actor,
        now: Timestamp,
    ) -> Result<Vec<Event>, EngineError> {
        let mut events = Vec::new();
        match command {
            Command::Report { ticket, report } => {
                self.report(ticket, report, actor, now, &mut events)?
            }
            Command::Ticket {
                ticket,
                mut command,
            } => {
                // An arrival is recorded whatever its fix says, since its time is what the
                // SLA needs; a fix far outside the region puts the crew at the fault's
                // location instead, as an arrival without one does.
                if let TicketCommand::Arrive { location } = &mut command
                    && location.is_some_and(|at| !self.fix_in_reach(at))
                {
                    *location = None;
                }
                let current = self
                    .tickets
                    .get(&ticket)
                    .ok_or_else(|| EngineError::UnknownTicket(ticket.clone()))?;
                let kind = current.decide(&command, &actor, now)?;
                let repeats = match &command {
                    TicketCommand::Cancel { with_repeats, .. } => {
                        self.repeats_cancelled_with(&ticket, *with_repeats, &actor, now)?
                    }
                    _ => Vec::new(),
                };
                // Warnings and breaches already due come first: the step would stop their
                // clock, and one that lands between a deadline and the driver's run would
                // otherwise leave a breach that happened unrecorded.
                self.fire_due_of(&ticket, now, &mut events);
                let redispatch = matches!(kind, EventKind::Declined { .. });
                self.record(now, actor.clone(), kind, &mut events);
                for kind in repeats {
                    self.record(now, actor.clone(), kind, &mut events);
                }
                if redispatch {
                    self.dispatch_or_queue(&ticket, now, &mut events);
                }
            }
            Command::CrewDuty { crew, on_duty } => {
                let slot = self.crew_for(&crew, &actor)?;
                let current = &self.crews[slot as usize].crew;
                if !on_duty && current.job().is_some() {
                    return Err(EngineError::CrewHasJob(crew));
                }
                self.record(
                    now,
                    actor,
                    EventKind::CrewDuty { crew, on_duty },
                    &mut events,
                );
            }
            Command::CrewPosition {
                crew,
                location,
                fix_at,
            } => {
                let slot = self.crew_for(&crew, &actor)?;
                if !self.fix_in_reach(location) {
                    return Err(EngineError::FixOutsideRegion {
                        limit_km: self.config.crew_fix_limit_km,
                    });
                }
                let last = self.crews[slot as usize].crew.position_fix_at;
                let stale = matches!((fix_at, last), (Some(fix), Some(last)) if fix <= last);
                if !stale {
                    self.record(
                        now,
                        actor,
                        EventKind::CrewPosition {
                            crew,
                            location,
                            fix_at,
                        },
                        &mut events,
                    );
                }
            }
            Command::FireDeadlines => self.fire_deadlines(now, &mut events),
            Command::AssignBatch => {
                if self.batching() {
                    self.assign_batch(now, &mut events);
                    self.leave_storm_if_drained(now, &mut events);
                }
            }
            Command::Storm(switch) => {
                let (on, reason) = match switch {
                    StormSwitch::On => (true, StormReason::Supervisor),
                    StormSwitch::Off => (false, StormReason::Supervisor),
                    StormSwitch::Automatic => (self.storm.on, StormReason::Automatic),
                };
                let queued = self.queue_len_u32();
                self.record(
                    now,
                    actor,
                    EventKind::StormMode { on, reason, queued },
                    &mut events,
                );
            }
        }
        self.serve_queue(now, &mut events);
        self.enter_storm_if_queue_above(now, &mut events);
        Ok(events)
    }

    /// The cancellations of the repeats that wait on `master`, decided before anything is
    /// recorded so that a refusal changes nothing. Cancelling a master alone would close its
    /// incident and leave the customers who called about the same fault with no crew coming
    /// and no way to get one, as their merged tickets are finished.
    fn repeats_cancelled_with(
        &self,
        master: &TicketId,
        with_repeats: bool,
        actor: &Actor,
        now: Timestamp,
    ) -> Result<Vec<EventKind>, EngineError> {
        let repeats = self.repeats_waiting_on(master);
        if repeats.is_empty() {
            return Ok(Vec::new());
        }
        if !with_repeats {
            return Err(EngineError::IncidentHasRepeats {
                ticket: master.clone(),
                repeats: repeats.len(),
            });
        }
        repeats
            .iter()
            .filter_map(|id| self.tickets.get(id))
            .map(|repeat| {
                let cancel = TicketCommand::Cancel {
                    reason: format!("cancelled with the ticket it repeats, {master}"),
                    with_repeats: false,
                };
                Ok(repeat.decide(&cancel, actor, now)?)
            })
            .collect()
    }

    fn queue_len_u32(&self) -> u32 {
        u32::try_from(self.queue.len()).unwrap_or(u32::MAX)
    }

    /// The automatic rule's way in: enough tickets wait, and no supervisor pinned the mode.
    fn enter_storm_if_queue_above(&mut self, now: Timestamp, events: &mut Vec<Event>) {
        let Some(enter) = self.config.storm.enter_queue else {
            return;
        };
        let queued = self.queue_len_u32();
        if !self.storm.on && !self.storm.pinned && queued >= enter {
            let kind = EventKind::StormMode {
                on: true,
                reason: StormReason::QueueAbove,
                queued,
            };
            self.record(now, Actor::System, kind, events);
        }
    }

    /// The automatic rule's way out, looked at after each assignment: the queue is down to
    /// `storm.leave_queue`. The few left are then served by the configured policy.
    fn leave_storm_if_drained(&mut self, now: Timestamp, events: &mut Vec<Event>) {
        let queued = self.queue_len_u32();
        if self.storm.on && !self.storm.pinned && queued <= self.config.storm.leave_queue {
            let kind = EventKind::StormMode {
                on: false,
                reason: StormReason::QueueDrained,
                queued,
            };
            self.record(now, Actor::System, kind, events);
        }
    }

    /// Records every checkpoint passed before `now`, earliest first (ties in the book's total
    /// order, so a live run and a replay agree).
    fn fire_deadlines(&mut self, now: Timestamp, events: &mut Vec<Event>) {
        while let Some(due) = self.deadlines.first_due(now) {
            let kind = match due.kind {
                CheckpointKind::Warning(_) | CheckpointKind::Breach => clock_event(&due),
                // The ticket's own rule decides; the book arms a timeout only while it holds,
                // so a refusal here would be a bookkeeping slip, and is dropped below.
                CheckpointKind::AcknowledgeTimeout => self.tickets.get(&due.ticket).and_then(|t| {
                    t.decide(&TicketCommand::AcknowledgeTimeout, &Actor::System, now)
                        .ok()
                }),
            };
            if let Some(kind) = kind {
                let redispatch = matches!(kind, EventKind::Declined { .. });
                self.record(now, Actor::System, kind, events);
                if redispatch {
                    self.dispatch_or_queue(&due.ticket, now, events);
                }
            }
            // Applying the event disarmed it; dropping it again makes sure the loop ends even
            // if it did not.
            self.deadlines.remove(&due);
        }
    }

    /// Records the warnings and breaches of `ticket` due before `now`, in order. Not its
    /// acknowledgement timeout: a late acknowledgement that comes before the driver hands the
    /// job on is still taken.
    fn fire_due_of(&mut self, ticket: &TicketId, now: Timestamp, events: &mut Vec<Event>) {
        let mut due: Vec<Checkpoint> = self
            .deadlines
            .pending(ticket)
            .iter()
            .filter(|c| c.at.passed_by(now))
            .cloned()
            .collect();
        due.sort();
        for checkpoint in due {
            if let Some(kind) = clock_event(&checkpoint) {
                self.record(now, Actor::System, kind, events);
            }
        }
    }

    /// The acknowledgement deadline of a dispatch to `ticket` made at `now`.
    fn acknowledge_by(&self, ticket: &Ticket, now: Timestamp) -> Timestamp {
        self.config
            .sla
            .due(
                SlaStage::Acknowledge,
                now,
                ticket.area_class,
                ticket.report.category,
                ticket.priority,
            )
            .unwrap_or_else(|| self.config.sla.acknowledge_by(now))
    }

    /// Whether a crew's fix could be right: within `crew_fix_limit_km` of the region.
    fn fix_in_reach(&self, at: LatLon) -> bool {
        self.areas
            .within_km_of_region(at, self.config.crew_fix_limit_km)
    }

    fn crew_for(&self, crew: &CrewId, actor: &Actor) -> Result<u32, EngineError> {
        let slot = *self
            .crew_by_id
            .get(crew)
            .ok_or_else(|| EngineError::UnknownCrew(crew.clone()))?;
        match actor {
            Actor::Crew(own) if own != crew => Err(EngineError::NotThisCrew),
            _ => Ok(slot),
        }
    }

    fn report(
        &mut self,
        ticket: TicketId,
        report: FaultReport,
        actor: Actor,
        now: Timestamp,
        events: &mut Vec<Event>,
    ) -> Result<(), EngineError> {
        if self.tickets.contains_key(&ticket) {
            return Err(EngineError::DuplicateTicket(ticket));
        }
        let station = &self.stations[self.areas.locate(report.location)?.station()];
        let area_class = station.area_class;
        let arrive_by = self.config.sla.due(
            SlaStage::Arrive,
            now,
            area_class,
            report.category,
            report.effective_priority(),
        );
        let repeat_of = report.category.merge_group().and_then(|group| {
            let window = self.config.merge_window_minutes;
            let window_start =
                Timestamp::from_millis(now.as_millis().saturating_sub(i64::from(window) * 60_000));
            self.incidents.find_repeat_of(
                report.location,
                self.projection.to_km(report.location),
                group,
                self.config.merge_radius_m / 1000.0,
                window_start,
            )
        });
        let incident = match repeat_of {
            Some(incident) => incident.id.clone(),
            None => IncidentId::new(format!("I-{ticket}")),
        };
        let merged = repeat_of.is_some();
        let station = station.id.clone();
        self.record(
            now,
            actor,
            EventKind::Reported {
                ticket: ticket.clone(),
                incident: incident.clone(),
                station,
                area_class,
                report,
                arrive_by,
            },
            events,
        );
        if merged {
            self.record(
                now,
                Actor::System,
                EventKind::Merged { ticket, incident },
                events,
            );
        } else {
            self.dispatch_or_queue(&ticket, now, events);
        }
        Ok(())
    }

    /// Sends the best crew to a waiting ticket, or queues it when none is free.
    fn dispatch_or_queue(&mut self, ticket: &TicketId, now: Timestamp, events: &mut Vec<Event>) {
        let Some(current) = self.tickets.get(ticket) else {
            return;
        };
        let kind = match self.immediate_choice(current) {
            Some(choice) => EventKind::Dispatched {
                ticket: ticket.clone(),
                crew: self.crews[choice.crew as usize].crew.id.clone(),
                eta_minutes: choice.eta_minutes,
                acknowledge_by: self.acknowledge_by(current, now),
            },
            None if self.queue.contains(current) => return,
            // A declined ticket is out of the queue until this event puts it back, so its
            // timeline says it waits.
            None => EventKind::Queued {
                ticket: ticket.clone(),
            },
        };
        self.record(now, Actor::System, kind, events);
    }

    /// Records the dispatch of a waiting ticket to a chosen crew.
    fn dispatch(
        &mut self,
        ticket: &TicketId,
        choice: Choice,
        now: Timestamp,
        events: &mut Vec<Event>,
    ) {
        let Some(acknowledge_by) = self
            .tickets
            .get(ticket)
            .map(|t| self.acknowledge_by(t, now))
        else {
            return;
        };
        let kind = EventKind::Dispatched {
            ticket: ticket.clone(),
            crew: self.crews[choice.crew as usize].crew.id.clone(),
            eta_minutes: choice.eta_minutes,
            acknowledge_by,
        };
        self.record(now, Actor::System, kind, events);
    }

    /// Gives free crews to waiting tickets as the policy in force says; under `batch` they
    /// wait for [`Command::AssignBatch`].
    fn serve_queue(&mut self, now: Timestamp, events: &mut Vec<Event>) {
        match self.policy() {
            DispatchPolicy::Nearest => self.serve_queue_nearest(now, events),
            DispatchPolicy::Station => self.serve_queue_by_station(now, events),
            DispatchPolicy::Batch => {}
        }
        if self.policy() != DispatchPolicy::Nearest {
            // Their queues leave tickets that a `nearest` crew could take.
            self.fresh = None;
        }
    }

    /// Gives free crews to waiting tickets in serving order, until no waiting ticket can be
    /// served: each waiting ticket, in turn, takes the crew [`Engine::choose_crew`] gives it.
    /// Tickets no free crew may take (wrong skill, declined by it, beyond the borrow reach of
    /// another station's crew) stay waiting.
    ///
    /// Runs after every command, so it must cost nothing in a storm, when the queue holds
    /// thousands of tickets: it returns before touching the queue when no crew is free, and
    /// otherwise walks the queue once, resuming after each dispatch (a ticket passed over
    /// stays unservable, since the pool only shrinks during the walk). With the reach, a crew
    /// may stay free while thousands wait far from it, so the walk must not ask the pool
    /// about each of them after every command: it asks only about the tickets one of the
    /// crews that came free since the last serve (`fresh`) could take, found by a planar
    /// distance test on the queue's own records. After a serve no waiting ticket has an
    /// eligible free crew, and a ticket is queued only when it has none, so the others still
    /// have none: the walk gives the same dispatches as asking about every ticket.
    fn serve_queue_nearest(&mut self, now: Timestamp, events: &mut Vec<Event>) {
        let Some(mut slots) = self.fresh.take() else {
            self.fresh = Some(Vec::new());
            return self.serve_queue_walking_all(now, events);
        };
        let any_free = crate::domain::SkillSet::ALL_SKILLS
            .into_iter()
            .any(|skill| self.pool.available(skill) > 0);
        let mut crews: Vec<FreshCrew> = Vec::new();
        if self.queue.len() > 0 && any_free {
            crews.extend(slots.drain(..).filter_map(|slot| {
                let s = &self.crews[slot as usize];
                Some(FreshCrew {
                    slot,
                    station: s.station,
                    skills: s.crew.skills,
                    at_km: s.indexed_at?,
                })
            }));
        }
        slots.clear();
        self.fresh = Some(slots);
        if crews.is_empty() {
            return;
        }
        crews.sort_by_key(|c| c.slot);
        crews.dedup_by_key(|c| c.slot);
        // The projection is within 1 % of great-circle distances (see `LocalProjection`):
        // 3 % of slack over the reach in km keeps every crew the exact estimate would allow.
        let reach_km = |class| {
            let km = self.config.reach_km(self.config.borrow_reach(class), class);
            km * 1.03 + 1e-3
        };
        let (urban, rural, remote) = (
            reach_km(AreaClass::Urban),
            reach_km(AreaClass::Rural),
            reach_km(AreaClass::Remote),
        );
        let mut resume: Option<queue::QueueKey> = None;
        loop {
            crews.retain(|c| self.crews[c.slot as usize].indexed_at.is_some());
            if crews.is_empty() {
                return;
            }
            let next = self
                .queue
                .waiting_after(resume.as_ref())
                .find_map(|(key, spot)| {
                    let reach = match spot.class {
                        AreaClass::Urban => urban,
                        AreaClass::Rural => rural,
                        AreaClass::Remote => remote,
                    };
                    let could = crews.iter().any(|c| {
                        c.skills.contains(spot.skill)
                            && (spot.station.is_none()
                                || spot.station == c.station
                                || planar_km(c.at_km, spot.at_km) <= reach)
                    });
                    if !could {
                        return None;
                    }
                    let ticket = self.tickets.get(key.ticket())?;
                    Some((key.clone(), self.choose_crew(ticket)?))
                });
            let Some((key, choice)) = next else {
                return;
            };
            self.dispatch(key.ticket(), choice, now, events);
            resume = Some(key);
        }
    }

    /// The queue served by asking the pool for every waiting ticket that needs a skill some
    /// free crew has: when the crews that came free are not known (or are many).
    fn serve_queue_walking_all(&mut self, now: Timestamp, events: &mut Vec<Event>) {
        let mut resume: Option<queue::QueueKey> = None;
        loop {
            let free = |skill| self.pool.available(skill) > 0;
            if !crate::domain::SkillSet::ALL_SKILLS.into_iter().any(free) {
                return;
            }
            let next = self.queue.after(resume.as_ref()).find_map(|key| {
                let ticket = self.tickets.get(key.ticket())?;
                if !free(ticket.report.category.required_skill()) {
                    return None;
                }
                Some((key.clone(), self.choose_crew(ticket)?))
            });
            let Some((key, choice)) = next else {
                return;
            };
            self.dispatch(key.ticket(), choice, now, events);
            resume = Some(key);
        }
    }

    /// The `station` policy's queue: each station with a free crew serves its own waiting
    /// tickets in serving order. Only stations with both are walked, so a long queue costs
    /// nothing while its stations' crews are all out.
    fn serve_queue_by_station(&mut self, now: Timestamp, events: &mut Vec<Event>) {
        for station in 0..self.stations.len() as u32 {
            let mut resume: Option<queue::QueueKey> = None;
            while self.pool.has_free_at(station) && self.queue.has_waiting_at(station) {
                let next = self
                    .queue
                    .of_station(station, resume.as_ref())
                    .find_map(|key| {
                        let ticket = self.tickets.get(key.ticket())?;
                        Some((key.clone(), self.choose_own_crew(ticket)?))
                    });
                let Some((key, choice)) = next else {
                    break;
                };
                self.dispatch(key.ticket(), choice, now, events);
                resume = Some(key);
            }
        }
    }

    /// The crew the policy in force sends to `ticket` at once; `None` under `batch`, where
    /// tickets wait for the assignment.
    fn immediate_choice(&self, ticket: &Ticket) -> Option<Choice> {
        match self.policy() {
            DispatchPolicy::Nearest => self.choose_crew(ticket),
            DispatchPolicy::Station => self.choose_own_crew(ticket),
            DispatchPolicy::Batch => None,
        }
    }

    /// The crew the `station` policy would send to `ticket` now: its own station's best.
    pub fn choose_own_crew(&self, ticket: &Ticket) -> Option<Choice> {
        matching::choose_own_crew(
            &self.config,
            &self.pool,
            |slot| self.crews.get(slot as usize).map(|s| &s.crew),
            |p| self.projection.to_km(p),
            ticket,
            self.station_by_id.get(&ticket.station).map(|&s| s as u32),
        )
    }

    /// The crew the `nearest` rule would send to `ticket` now, without sending it.
    pub fn choose_crew(&self, ticket: &Ticket) -> Option<Choice> {
        matching::choose_crew(
            &self.config,
            &self.pool,
            |slot| self.crews.get(slot as usize).map(|s| &s.crew),
            |p| self.projection.to_km(p),
            ticket,
            self.station_by_id.get(&ticket.station).map(|&s| s as u32),
        )
    }

    fn record(&mut self, at: Timestamp, actor: Actor, kind: EventKind, events: &mut Vec<Event>) {
        let event = Event { at, actor, kind };
        self.apply(&event);
        events.push(event);
    }

    /// Applies one event: from `handle`, or replayed from the store at start-up. Events about
    /// unknown tickets or crews are ignored, so a log from an older region still loads.
    pub fn apply(&mut self, event: &Event) {
        match &event.kind {
            EventKind::Reported {
                ticket,
                incident,
                station,
                area_class,
                report,
                arrive_by,
            } => {
                let new = Ticket::new(
                    ticket.clone(),
                    incident.clone(),
                    station.clone(),
                    *area_class,
                    report.clone(),
                    event.at,
                    *arrive_by,
                );
                if let Some(group) = report.category.merge_group()
                    && self.incidents.get(incident).is_none()
                {
                    self.incidents.open(
                        incident.clone(),
                        ticket.clone(),
                        report.location,
                        self.projection.to_km(report.location),
                        group,
                        event.at,
                    );
                }
                let state = new.state;
                if let Some(old) = self.tickets.insert(ticket.clone(), new) {
                    // A log that reports one ticket twice: the later report wins.
                    self.by_state[old.state.index()].remove(ticket);
                }
                self.by_state[state.index()].insert(ticket.clone());
            }
            EventKind::Merged { ticket, incident } => {
                let first = self.incidents.get(incident).map(|open| open.master.clone());
                if let Some(first) = &first {
                    self.first_reports.insert(ticket.clone(), first.clone());
                }
                self.incidents.record_repeat(incident, ticket, event.at);
                self.apply_to_ticket(ticket, event);
                if let Some(first) = first {
                    self.raise_for_repeat(&first, ticket);
                }
            }
            EventKind::Queued { ticket } => {
                self.apply_to_ticket(ticket, event);
                if let Some(t) = self.tickets.get(ticket) {
                    let spot = queue::Spot {
                        station: self.station_by_id.get(&t.station).map(|&s| s as u32),
                        skill: t.report.category.required_skill(),
                        class: t.area_class,
                        at_km: self.projection.to_km(t.report.location),
                    };
                    self.queue.insert(t, spot);
                }
            }
            EventKind::Dispatched { ticket, crew, .. } => {
                if let Some(t) = self.tickets.get(ticket) {
                    self.queue.remove(t);
                }
                self.apply_to_ticket(ticket, event);
                self.set_crew_status(crew, CrewStatus::Assigned(ticket.clone()));
            }
            EventKind::Declined {
                ticket,
                crew,
                reason,
            } => {
                self.apply_to_ticket(ticket, event);
                let status = match reason {
                    DeclineReason::Rejected { .. } => CrewStatus::Available,
                    DeclineReason::AcknowledgeTimeout => CrewStatus::Unresponsive,
                };
                self.set_crew_status(crew, status);
            }
            EventKind::Acknowledged { ticket, .. } | EventKind::Departed { ticket, .. } => {
                self.apply_to_ticket(ticket, event);
            }
            EventKind::Arrived {
                ticket,
                crew,
                location,
            } => {
                self.apply_to_ticket(ticket, event);
                let at = location.or_else(|| self.tickets.get(ticket).map(|t| t.report.location));
                if let Some(at) = at {
                    self.set_crew_position(crew, at, event.at, None);
                }
            }
            EventKind::Restored { ticket, .. } => {
                self.apply_to_ticket(ticket, event);
                self.close_incident_of(ticket);
            }
            EventKind::Returned { ticket, crew, .. } => {
                self.apply_to_ticket(ticket, event);
                self.set_crew_status(crew, CrewStatus::Available);
            }
            EventKind::Closed { ticket, .. } => self.apply_to_ticket(ticket, event),
            EventKind::Cancelled { ticket, crew, .. } => {
                if let Some(t) = self.tickets.get(ticket) {
                    self.queue.remove(t);
                }
                self.apply_to_ticket(ticket, event);
                self.close_incident_of(ticket);
                if let Some(crew) = crew {
                    self.set_crew_status(crew, CrewStatus::Available);
                }
            }
            EventKind::CrewDuty { crew, on_duty } => {
                let status = if *on_duty {
                    CrewStatus::Available
                } else {
                    CrewStatus::OffDuty
                };
                // Coming on duty never takes a job away from a crew that has one.
                if self.crew(crew).is_some_and(|c| c.job().is_none()) {
                    self.set_crew_status(crew, status);
                }
            }
            EventKind::CrewPosition {
                crew,
                location,
                fix_at,
            } => {
                self.set_crew_position(crew, *location, event.at, *fix_at);
                // A position report is a sign of life from a crew that missed an ack.
                if self
                    .crew(crew)
                    .is_some_and(|c| c.status == CrewStatus::Unresponsive)
                {
                    self.set_crew_status(crew, CrewStatus::Available);
                }
            }
            // Checkpoints only: see `track_sla`.
            EventKind::SlaWarning { .. } | EventKind::SlaBreached { .. } => {}
            EventKind::StormMode { on, reason, .. } => {
                self.storm = StormState {
                    on: *on,
                    pinned: *reason == StormReason::Supervisor,
                };
                // Tickets queued under `batch` were not offered to the free crews one by one.
                self.fresh = None;
            }
        }
        self.track_sla(event);
    }

    /// Keeps the SLA checkpoints in step with a ticket's stages: a start event arms a stage's
    /// warnings and breach, a stop event drops those still pending, a recorded warning or
    /// breach is marked fired. Limits come from the events where they carry them (arrival,
    /// acknowledgement) and from the policy otherwise (restoration, return).
    fn track_sla(&mut self, event: &Event) {
        let Some(ticket) = event.kind.ticket() else {
            return;
        };
        let Some(t) = self.tickets.get(ticket) else {
            return;
        };
        let (class, category, priority) = (t.area_class, t.report.category, t.priority);
        let ticket = ticket.clone();
        let sla = self.config.sla;
        let due = |stage| sla.due(stage, event.at, class, category, priority);
        match &event.kind {
            EventKind::Reported {
                arrive_by: Some(limit),
                ..
            } => self.arm_stage(&ticket, SlaStage::Arrive, event.at, *limit),
            EventKind::Dispatched { acknowledge_by, .. } => {
                // Each crew's acknowledgement is a clock of its own, warned and breached
                // apart from the one the crew before missed or declined.
                self.deadlines.restart(&ticket, SlaStage::Acknowledge);
                self.arm_stage(&ticket, SlaStage::Acknowledge, event.at, *acknowledge_by);
                self.deadlines.arm(Checkpoint {
                    at: *acknowledge_by,
                    ticket,
                    stage: SlaStage::Acknowledge,
                    kind: CheckpointKind::AcknowledgeTimeout,
                });
            }
            EventKind::Declined { .. } | EventKind::Acknowledged { .. } => {
                self.deadlines.disarm(&ticket, SlaStage::Acknowledge);
            }
            EventKind::Arrived { .. } => {
                self.deadlines.disarm(&ticket, SlaStage::Arrive);
                let limit = due(SlaStage::Restore);
                self.set_deadline(&ticket, |d| d.restore_by = limit);
                if let Some(limit) = limit {
                    self.arm_stage(&ticket, SlaStage::Restore, event.at, limit);
                }
            }
            EventKind::Restored { .. } => {
                self.deadlines.disarm(&ticket, SlaStage::Restore);
                let limit = due(SlaStage::Return);
                self.set_deadline(&ticket, |d| d.return_by = limit);
                if let Some(limit) = limit {
                    self.arm_stage(&ticket, SlaStage::Return, event.at, limit);
                }
            }
            EventKind::Returned { .. } => self.deadlines.disarm(&ticket, SlaStage::Return),
            // A merged ticket runs on its incident's master; a finished one on nothing.
            EventKind::Merged { .. } | EventKind::Closed { .. } | EventKind::Cancelled { .. } => {
                self.deadlines.close(&ticket)
            }
            EventKind::SlaWarning { stage, level, .. } => {
                self.deadlines
                    .fired(&ticket, *stage, CheckpointKind::Warning(*level));
            }
            EventKind::SlaBreached { stage, .. } => {
                self.deadlines
                    .fired(&ticket, *stage, CheckpointKind::Breach);
            }
            _ => {}
        }
    }

    /// Records a deadline that the policy (not the event) sets, so reads show it.
    fn set_deadline(&mut self, ticket: &TicketId, set: impl FnOnce(&mut Deadlines)) {
        if let Some(t) = self.tickets.get_mut(ticket) {
            set(&mut t.deadlines);
        }
    }

    /// Arms the warnings and the breach of a stage running from `start` to `limit`.
    fn arm_stage(
        &mut self,
        ticket: &TicketId,
        stage: SlaStage,
        start: Timestamp,
        limit: Timestamp,
    ) {
        let checkpoints: Vec<_> = self.config.sla.checkpoints(stage, start, limit).collect();
        for (at, kind) in checkpoints {
            self.deadlines.arm(Checkpoint {
                at,
                ticket: ticket.clone(),
                stage,
                kind,
            });
        }
    }

    fn apply_to_ticket(&mut self, ticket: &TicketId, event: &Event) {
        if let Some(t) = self.tickets.get_mut(ticket) {
            let before = t.state;
            t.apply(event);
            let after = t.state;
            if after != before {
                self.by_state[before.index()].remove(ticket);
                self.by_state[after.index()].insert(ticket.clone());
            }
        }
    }

    /// The ticket's incident closes when the ticket is its master; a repeat leaves it.
    fn close_incident_of(&mut self, ticket: &TicketId) {
        let Some(t) = self.tickets.get(ticket) else {
            return;
        };
        let id = t.incident.clone();
        match self.incidents.get(&id) {
            Some(incident) if incident.master == *ticket => self.incidents.close(&id),
            Some(_) => self.incidents.drop_repeat(&id, ticket),
            None => {}
        }
    }

    /// The open repeat reports merged into `ticket`'s incident, when `ticket` is its master.
    fn repeats_waiting_on(&self, ticket: &TicketId) -> &[TicketId] {
        self.tickets
            .get(ticket)
            .and_then(|t| self.incidents.get(&t.incident))
            .filter(|incident| incident.master == *ticket)
            .map_or(&[], |incident| incident.repeats.as_slice())
    }

    fn set_crew_status(&mut self, crew: &CrewId, status: CrewStatus) {
        if let Some(&slot) = self.crew_by_id.get(crew) {
            let record = &mut self.crews[slot as usize].crew;
            self.crew_census[record.status.index()] -= 1;
            self.crew_census[status.index()] += 1;
            record.status = status;
            self.sync_pool(slot);
        }
    }

    /// An emergency or an important customer merged into an incident waits on its first
    /// report's crew: the first report is served as they would have been, and a waiting one
    /// moves up the queue. Derived from the `merged` event alone, so a replay rebuilds it.
    fn raise_for_repeat(&mut self, first: &TicketId, repeat: &TicketId) {
        let Some(repeat) = self.tickets.get(repeat).map(Ticket::precedence) else {
            return;
        };
        let Some(ticket) = self.tickets.get_mut(first) else {
            return;
        };
        if !ticket.raised_by(repeat) {
            return;
        }
        // The queue's key is derived from the ticket: out under the old one, in under the new.
        let spot = self.queue.take(ticket);
        ticket.raise_for_repeat(repeat);
        if let Some(spot) = spot {
            self.queue.insert(ticket, spot);
        }
    }

    /// Sets a crew's position from a fix its store kept apart from the log
    /// ([`crate::store::Recovered::positions`]), after the replay: the position only. Unlike
    /// applying the event, it brings no unresponsive crew back: the fix came while the
    /// crew was answering, and whatever the log holds after it stands.
    pub fn restore_crew_position(&mut self, event: &Event) {
        if let EventKind::CrewPosition {
            crew,
            location,
            fix_at,
        } = &event.kind
        {
            self.set_crew_position(crew, *location, event.at, *fix_at);
        }
    }

    /// `when`: as the service learned it; `fix_at`: when the phone says it took the fix.
    fn set_crew_position(
        &mut self,
        crew: &CrewId,
        at: LatLon,
        when: Timestamp,
        fix_at: Option<Timestamp>,
    ) {
        if let Some(&slot) = self.crew_by_id.get(crew) {
            let record = &mut self.crews[slot as usize].crew;
            record.position = at;
            record.position_at = Some(when);
            record.position_fix_at = record.position_fix_at.max(fix_at);
            self.sync_pool(slot);
        }
    }

    /// Puts the crew in the pool at its position when it is available, takes it out when not:
    /// the one place where the pool and the crew's status are kept in step.
    fn sync_pool(&mut self, slot: u32) {
        let CrewSlot {
            crew,
            station,
            indexed_at,
        } = &mut self.crews[slot as usize];
        let wanted = crew
            .is_available()
            .then(|| self.projection.to_km(crew.position));
        if *indexed_at == wanted {
            return;
        }
        if let Some(old) = indexed_at.take() {
            self.pool.remove(slot, *station, crew.skills, old);
        }
        if let Some(new) = wanted {
            self.pool.insert(slot, *station, crew.skills, new);
            *indexed_at = Some(new);
            if let Some(fresh) = &mut self.fresh {
                if fresh.len() < FRESH_LIMIT {
                    fresh.push(slot);
                } else {
                    self.fresh = None;
                }
            }
        }
    }

    /// Checks the invariants that tie tickets, crews, the pool and the queue together, and
    /// returns every violation found (empty when all hold). For tests and start-up checks.
    pub fn audit(&self) -> Vec<String> {
        let mut problems = Vec::new();
        for (
            slot,
            CrewSlot {
                crew,
                indexed_at,
                station,
            },
        ) in self.crews.iter().enumerate()
        {
            if crew.is_available() != indexed_at.is_some() {
                problems.push(format!(
                    "crew {}: pool membership disagrees with {:?}",
                    crew.id, crew.status
                ));
            }
            if crew.is_available() && !self.pool.holds(slot as u32, *station, crew.skills) {
                problems.push(format!("crew {} is available but not in the pool", crew.id));
            }
            if let Some(job) = crew.job() {
                match self.tickets.get(job) {
                    Some(t) if t.state.holds_crew() && t.crew.as_ref() == Some(&crew.id) => {
                        let skill = t.report.category.required_skill();
                        if !crew.skills.contains(skill) {
                            problems.push(format!(
                                "crew {} holds {job} without the {skill:?} skill it needs",
                                crew.id
                            ));
                        }
                    }
                    other => problems.push(format!(
                        "crew {} (slot {slot}) holds {job}, which is {:?}",
                        crew.id,
                        other.map(|t| (t.state, t.crew.clone()))
                    )),
                }
            }
        }
        let mut queued = 0;
        let mut armed = 0;
        for ticket in self.tickets.values() {
            if ticket.state.holds_crew() {
                match ticket.crew.as_ref().and_then(|c| self.crew(c)) {
                    Some(crew) if crew.job() == Some(&ticket.id) => {}
                    other => problems.push(format!(
                        "ticket {} is {} but its crew is {:?}",
                        ticket.id,
                        ticket.state,
                        other.map(|c| (&c.id, &c.status))
                    )),
                }
            }
            let pending = self.deadlines.pending(&ticket.id);
            if ticket.state.is_final() && !pending.is_empty() {
                problems.push(format!(
                    "ticket {} is {} with clocks running",
                    ticket.id, ticket.state
                ));
            }
            let timeouts: Vec<_> = pending
                .iter()
                .filter(|c| c.kind == CheckpointKind::AcknowledgeTimeout)
                .map(|c| c.at)
                .collect();
            let want = (ticket.state == TicketState::Dispatched)
                .then_some(ticket.deadlines.acknowledge_by)
                .flatten();
            if timeouts != want.into_iter().collect::<Vec<_>>() {
                problems.push(format!(
                    "ticket {} is {} (ack by {want:?}) with acknowledgement timeouts at {timeouts:?}",
                    ticket.id, ticket.state
                ));
            }
            armed += pending.len();
            if ticket.state == TicketState::Queued {
                queued += 1;
                if !self.queue.contains(ticket) {
                    problems.push(format!(
                        "ticket {} is queued but not in the queue",
                        ticket.id
                    ));
                }
            }
        }
        if armed != self.deadlines.len() || !self.deadlines.consistent() {
            problems.push(format!(
                "{} checkpoints pending, {armed} of them for known tickets",
                self.deadlines.len()
            ));
        }
        let mut census = Census::default();
        for ticket in self.tickets.values() {
            census.tickets[ticket.state.index()] += 1;
        }
        for slot in &self.crews {
            census.crews[slot.crew.status.index()] += 1;
        }
        // The census counts tickets from the state index: equal counts and every id in the
        // right state mean the index holds exactly the tickets of each state.
        for state in TicketState::ALL {
            if self.by_state[state.index()]
                .iter()
                .any(|id| self.tickets.get(id).is_none_or(|t| t.state != state))
            {
                problems.push(format!("the {state} index holds a ticket in another state"));
            }
        }
        if census != self.census() {
            problems.push(format!(
                "census {:?} disagrees with a count {census:?}",
                self.census()
            ));
        }
        if queued != self.queue.len() {
            problems.push(format!(
                "{} queue entries for {queued} queued tickets",
                self.queue.len()
            ));
        }
        if !self.queue.consistent() {
            problems.push("the queue's station lists disagree with the queue".to_owned());
        }
        problems
    }
}

/// A crew that came free since the queue was last served, as the queue walk tests it.
#[derive(Debug, Clone, Copy)]
struct FreshCrew {
    slot: u32,
    station: Option<u32>,
    skills: crate::domain::SkillSet,
    at_km: [f64; 2],
}

fn planar_km(a: [f64; 2], b: [f64; 2]) -> f64 {
    ((a[0] - b[0]).powi(2) + (a[1] - b[1]).powi(2)).sqrt()
}

/// A projection centred on the middle of the stations' extent.
fn middle(stations: &[Station]) -> LocalProjection {
    let (mut lat, mut lon) = ((f64::MAX, f64::MIN), (f64::MAX, f64::MIN));
    for s in stations {
        lat = (lat.0.min(s.location.lat()), lat.1.max(s.location.lat()));
        lon = (lon.0.min(s.location.lon()), lon.1.max(s.location.lon()));
    }
    if stations.is_empty() {
        return LocalProjection::new(0.0, 0.0);
    }
    LocalProjection::new((lat.0 + lat.1) / 2.0, (lon.0 + lon.1) / 2.0)
}

/// The event a warning or breach checkpoint records; none for an acknowledgement timeout,
/// which is a decision on the ticket, not a mark on its clock.
fn clock_event(due: &Checkpoint) -> Option<EventKind> {
    match due.kind {
        CheckpointKind::Warning(level) => Some(EventKind::SlaWarning {
            ticket: due.ticket.clone(),
            stage: due.stage,
            level,
        }),
        CheckpointKind::Breach => Some(EventKind::SlaBreached {
            ticket: due.ticket.clone(),
            stage: due.stage,
        }),
        CheckpointKind::AcknowledgeTimeout => None,
    }
}
