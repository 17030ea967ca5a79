//! One simulated run: a discrete-event loop on a virtual clock that drives the real engine
//! with one policy. Calls become `Report` commands; crews acknowledge (or miss), set off,
//! arrive, repair, restore and return the work order through the engine's own commands, as
//! their phones would; the engine's deadlines fire when due (timeouts re-dispatch, late crews
//! report in again later); shifts start and end; a batch driver runs `AssignBatch` every
//! interval while the engine batches. Nothing reads a clock: time is the agenda's.
//!
//! # The lower bound
//! For each ticket, the earliest any crew could possibly be there: the distance from the
//! nearest crew with the skill (where it is at the report, or where its current drive ends)
//! at the fastest pace any trip can have (the fastest class speed, the smallest travel
//! factor), with no waiting and no delay. Every trip in the simulation takes at least that
//! pace over the straight line, so by the triangle inequality no crew can arrive sooner,
//! whatever the policy: the bound holds ticket by ticket.

use super::calls::{Call, CallKind, Fault};
use super::rng::{purpose, stream};
use super::scenario::{Minutes, Scenario, Shift};
use super::{Dispatch, SimError};
use crate::domain::{
    Actor, AreaClass, Caller, CrewId, CrewStatus, DeclineReason, Event, EventKind, FaultClass,
    FaultReport, LatLon, Ownership, Priority, SkillSet, SlaStage, TicketCommand, TicketId,
    TicketState, Timestamp, WorkOrderReturn,
};
use crate::engine::{Command, DispatchPolicy, Engine, EngineError};
use crate::geo::LocalProjection;
use crate::region::Region;
use rand::RngExt;
use rand_distr::{Distribution, LogNormal};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};

/// The simulation's start: 2018-09-16 00:00 in Huizhou (UTC+8), the day Mangkhut came
/// ashore. Only its time of day matters (shifts, hourly profiles).
pub const START_MS: i64 = 1_537_027_200_000;

/// How often the run records the queue, the crews and compliance so far.
pub const SAMPLE_MINUTES: i64 = 5;

/// The state of the run at one moment, for the charts.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub hour: f64,
    pub queued: usize,
    pub busy_crews: usize,
    pub on_duty_crews: usize,
    /// Arrivals so far within their deadline, and arrival deadlines so far missed.
    pub on_time: usize,
    pub late: usize,
}

/// One ticket at the end of a run.
#[derive(Debug, Clone, PartialEq)]
pub struct TicketOutcome {
    pub id: TicketId,
    pub area_class: AreaClass,
    pub customers: Option<u64>,
    pub state: TicketState,
    pub reported_at: Timestamp,
    pub arrive_by: Option<Timestamp>,
    pub dispatched_at: Option<Timestamp>,
    pub arrived_at: Option<Timestamp>,
    pub restored_at: Option<Timestamp>,
    /// The engine's travel estimate for the crew it sent last.
    pub eta_minutes: Option<f64>,
    /// The lower bound of its arrival, minutes after the report; `None` when no crew of the
    /// region has the skill.
    pub bound_minutes: Option<f64>,
    /// Its repair takes this long once a crew is there.
    pub repair_minutes: f64,
}

/// Everything a run produced.
#[derive(Debug, Clone, PartialEq)]
pub struct RunOutcome {
    pub dispatch: Dispatch,
    pub start: Timestamp,
    pub end: Timestamp,
    pub calls: usize,
    /// Calls the engine refused (outside every service area).
    pub refused: usize,
    /// Reports accepted: `Reported` events seen.
    pub reported: usize,
    pub tickets: Vec<TicketOutcome>,
    pub samples: Vec<Sample>,
    /// Crew samples busy and on duty, summed over the samples.
    pub busy_samples: u64,
    pub on_duty_samples: u64,
    pub storm_switches: usize,
    /// Crew steps the engine refused: a simulation that follows the rules has none.
    pub refused_steps: usize,
    /// Customers served by the region: SAIDI's denominator.
    pub customers_served: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Agenda {
    Call(u32),
    Ack { crew: u32, epoch: u64 },
    Depart { crew: u32, epoch: u64 },
    Arrive { crew: u32, epoch: u64 },
    Restore { crew: u32, epoch: u64 },
    Return { crew: u32, epoch: u64 },
    Home { crew: u32, epoch: u64 },
    BackInTouch { crew: u32, epoch: u64 },
    ShiftStart { crew: u32 },
    ShiftEnd { crew: u32 },
    Batch,
    Sample,
}

struct CrewSim {
    id: CrewId,
    skills: SkillSet,
    station_location: LatLon,
    station_class: AreaClass,
    shift: Option<Shift>,
    on_shift: bool,
    /// Bumped whenever the crew's job changes, so that steps planned for an old job drop.
    epoch: u64,
    job: Option<usize>,
    /// Where the drive under way ends, while the crew is on the road to a job.
    driving_to: Option<LatLon>,
}

struct TicketSim {
    id: TicketId,
    number: u64,
    location: LatLon,
    travel_factor: f64,
    repair_minutes: f64,
    dispatches: u64,
    bound_minutes: Option<f64>,
    customers: Option<u64>,
}

/// Drives one engine through a scenario.
struct Runner<'a> {
    scenario: &'a Scenario,
    calls: &'a [Call],
    seed: u64,
    engine: Engine,
    end_ms: i64,
    agenda: BinaryHeap<Reverse<(i64, u64, Agenda)>>,
    next_seq: u64,
    crews: Vec<CrewSim>,
    crew_by_id: HashMap<CrewId, u32>,
    tickets: Vec<TicketSim>,
    ticket_by_id: HashMap<TicketId, usize>,
    /// Tickets whose incident is open and can take repeat calls, in the order they opened.
    open_faults: Vec<usize>,
    customers_served: u64,
    samples: Vec<Sample>,
    on_time: usize,
    late: usize,
    busy_samples: u64,
    on_duty_samples: u64,
    storm_switches: usize,
    refused: usize,
    refused_steps: usize,
    reported: usize,
    /// Repair time distributions per category.
    repair: Vec<(crate::domain::FaultCategory, LogNormal<f64>)>,
}

/// Runs `scenario`'s `calls` (from [`super::calls::generate`]) on `region`, dispatching as
/// `dispatch` says. The plain policies run without storm mode, whatever the scenario's
/// `[engine.storm]`, so that each is itself all day.
pub fn run(
    scenario: &Scenario,
    region: &Region,
    calls: &[Call],
    dispatch: Dispatch,
    seed: u64,
) -> Result<RunOutcome, SimError> {
    let mut config = scenario.engine.clone();
    match dispatch {
        Dispatch::Policy(policy) => {
            config.policy = policy;
            config.storm.enter_queue = None;
        }
        Dispatch::NearestWithStormMode => {
            config.policy = DispatchPolicy::Nearest;
            config.storm.enter_queue = Some(
                config
                    .storm
                    .enter_queue
                    .unwrap_or(super::DEFAULT_STORM_QUEUE),
            );
        }
    }
    let engine = Engine::new(config, region.clone())?;
    let mut runner = Runner::new(scenario, calls, seed, engine)?;
    runner.start();
    runner.run_to_end();
    Ok(runner.finish(dispatch))
}

fn minutes_ms(minutes: f64) -> i64 {
    (minutes * 60_000.0).round() as i64
}

fn uniform(range: Minutes, rng: &mut impl rand::Rng) -> f64 {
    range.min + (range.max - range.min) * rng.random::<f64>()
}

impl<'a> Runner<'a> {
    fn new(
        scenario: &'a Scenario,
        calls: &'a [Call],
        seed: u64,
        engine: Engine,
    ) -> Result<Self, SimError> {
        let stations = engine.stations().to_vec();
        let station_of: HashMap<_, _> = stations
            .iter()
            .enumerate()
            .map(|(i, s)| (s.id.clone(), i))
            .collect();
        let shifts = assign_shifts(&engine, &scenario.crews.shifts);
        let mut crews = Vec::new();
        let mut crew_by_id = HashMap::new();
        for (i, crew) in engine.crews().enumerate() {
            let station = station_of.get(&crew.station).map(|&s| &stations[s]);
            crew_by_id.insert(crew.id.clone(), i as u32);
            crews.push(CrewSim {
                id: crew.id.clone(),
                skills: crew.skills,
                station_location: station.map_or(crew.position, |s| s.location),
                station_class: station.map_or(AreaClass::Rural, |s| s.area_class),
                shift: shifts.get(&crew.id).copied(),
                on_shift: true,
                epoch: 0,
                job: None,
                driving_to: None,
            });
        }
        let mut repair = Vec::new();
        for category in crate::domain::FaultCategory::ALL {
            let d = scenario.repair.of(category);
            let distribution = LogNormal::new(d.median.ln(), d.sigma).map_err(|e| {
                super::ScenarioError::Invalid(format!("repair of {category:?}: {e}"))
            })?;
            repair.push((category, distribution));
        }
        Ok(Self {
            scenario,
            calls,
            seed,
            engine,
            end_ms: START_MS + minutes_ms(scenario.hours * 60.0),
            agenda: BinaryHeap::new(),
            next_seq: 0,
            crews,
            crew_by_id,
            tickets: Vec::new(),
            ticket_by_id: HashMap::new(),
            open_faults: Vec::new(),
            customers_served: stations.iter().map(|s| s.customers).sum(),
            samples: Vec::new(),
            on_time: 0,
            late: 0,
            busy_samples: 0,
            on_duty_samples: 0,
            storm_switches: 0,
            refused: 0,
            refused_steps: 0,
            reported: 0,
            repair,
        })
    }

    fn schedule(&mut self, at_ms: i64, what: Agenda) {
        if at_ms <= self.end_ms {
            self.agenda.push(Reverse((at_ms, self.next_seq, what)));
            self.next_seq += 1;
        }
    }

    fn start(&mut self) {
        for (i, call) in self.calls.iter().enumerate() {
            self.schedule(START_MS + call.at_ms, Agenda::Call(i as u32));
        }
        let day = minutes_ms(1440.0);
        for crew in 0..self.crews.len() as u32 {
            let Some(shift) = self.crews[crew as usize].shift else {
                continue;
            };
            if shift.hours >= 24.0 {
                continue;
            }
            let start = minutes_ms(shift.start_hour * 60.0).rem_euclid(day);
            let length = minutes_ms(shift.hours * 60.0);
            // Off at the start unless the shift (begun today or yesterday) covers midnight.
            if (-start).rem_euclid(day) >= length {
                self.crews[crew as usize].on_shift = false;
                let id = self.crews[crew as usize].id.clone();
                let off = Command::CrewDuty {
                    crew: id,
                    on_duty: false,
                };
                self.crew_command(crew, off, START_MS);
            }
            let first_start = if start == 0 { day } else { start };
            let end = (start + length).rem_euclid(day);
            let first_end = if end == 0 { day } else { end };
            self.schedule(START_MS + first_start, Agenda::ShiftStart { crew });
            self.schedule(START_MS + first_end, Agenda::ShiftEnd { crew });
        }
        let interval = i64::from(self.engine.config().batch.interval_seconds) * 1000;
        self.schedule(START_MS + interval, Agenda::Batch);
        self.schedule(START_MS, Agenda::Sample);
    }

    fn run_to_end(&mut self) {
        loop {
            let next_event = self.agenda.peek().map(|Reverse((at, _, _))| *at);
            let next_deadline = self
                .engine
                .next_deadline()
                .map(Timestamp::as_millis)
                .filter(|&at| at <= self.end_ms);
            match (next_event, next_deadline) {
                (None, None) => return,
                (event, Some(deadline)) if event.is_none_or(|e| deadline <= e) => {
                    let now = Timestamp::from_millis(deadline);
                    match self
                        .engine
                        .handle(Command::FireDeadlines, Actor::System, now)
                    {
                        Ok(events) => self.observe(&events, deadline),
                        Err(_) => self.refused_steps += 1,
                    }
                }
                _ => {
                    let Some(Reverse((at, _, what))) = self.agenda.pop() else {
                        return;
                    };
                    self.handle(at, what);
                }
            }
        }
    }

    fn handle(&mut self, now: i64, what: Agenda) {
        match what {
            Agenda::Call(i) => self.call(i as usize, now),
            Agenda::Ack { crew, epoch } => {
                if self.step(crew, epoch, TicketCommand::Acknowledge, now) {
                    let mut rng = self.crew_rng(crew, epoch, 1);
                    let ready = uniform(self.scenario.crews.ready_minutes, &mut rng);
                    self.schedule(now + minutes_ms(ready), Agenda::Depart { crew, epoch });
                }
            }
            Agenda::Depart { crew, epoch } => {
                if self.step(crew, epoch, TicketCommand::Depart, now)
                    && let Some(job) = self.crews[crew as usize].job
                {
                    let ticket = &self.tickets[job];
                    let from = self.position(crew);
                    let class = self
                        .engine
                        .ticket(&ticket.id)
                        .map_or(AreaClass::Rural, |t| t.area_class);
                    let minutes =
                        self.drive_minutes(from, ticket.location, class, ticket.travel_factor);
                    self.crews[crew as usize].driving_to = Some(ticket.location);
                    self.schedule(now + minutes_ms(minutes), Agenda::Arrive { crew, epoch });
                }
            }
            Agenda::Arrive { crew, epoch } => {
                if self.step(crew, epoch, TicketCommand::Arrive { location: None }, now)
                    && let Some(job) = self.crews[crew as usize].job
                {
                    self.crews[crew as usize].driving_to = None;
                    let repair = self.tickets[job].repair_minutes;
                    self.schedule(now + minutes_ms(repair), Agenda::Restore { crew, epoch });
                }
            }
            Agenda::Restore { crew, epoch } => {
                if self.step(crew, epoch, TicketCommand::Restore { cause: None }, now) {
                    let mut rng = self.crew_rng(crew, epoch, 2);
                    let order = uniform(self.scenario.crews.order_minutes, &mut rng);
                    self.schedule(now + minutes_ms(order), Agenda::Return { crew, epoch });
                }
            }
            Agenda::Return { crew, epoch } => {
                let order = TicketCommand::Return(WorkOrderReturn {
                    fault_class: FaultClass::LowVoltage,
                    cause: "simulated".into(),
                    ownership: Ownership::Utility,
                    resolution: None,
                    outage_cause: crate::domain::OutageCause::Fault,
                });
                if self.step(crew, epoch, order, now) {
                    self.after_job(crew, now);
                }
            }
            Agenda::Home { crew, epoch } => {
                let c = &self.crews[crew as usize];
                if c.epoch == epoch && self.status(crew) == Some(CrewStatus::Available) {
                    let location = c.station_location;
                    self.crew_command(
                        crew,
                        Command::CrewPosition {
                            crew: c.id.clone(),
                            location,
                            fix_at: None,
                        },
                        now,
                    );
                }
            }
            Agenda::BackInTouch { crew, epoch } => {
                let c = &self.crews[crew as usize];
                if c.epoch == epoch && self.status(crew) == Some(CrewStatus::Unresponsive) {
                    let command = if c.on_shift {
                        Command::CrewPosition {
                            crew: c.id.clone(),
                            location: self.position(crew),
                            fix_at: None,
                        }
                    } else {
                        Command::CrewDuty {
                            crew: c.id.clone(),
                            on_duty: false,
                        }
                    };
                    self.crew_command(crew, command, now);
                }
            }
            Agenda::ShiftStart { crew } => {
                self.crews[crew as usize].on_shift = true;
                if self.status(crew) == Some(CrewStatus::OffDuty) {
                    let id = self.crews[crew as usize].id.clone();
                    self.crew_command(
                        crew,
                        Command::CrewDuty {
                            crew: id,
                            on_duty: true,
                        },
                        now,
                    );
                }
                self.schedule(now + minutes_ms(1440.0), Agenda::ShiftStart { crew });
            }
            Agenda::ShiftEnd { crew } => {
                self.crews[crew as usize].on_shift = false;
                // A crew with a job finishes it first: see `after_job`.
                if self.crews[crew as usize].job.is_none()
                    && self.status(crew) != Some(CrewStatus::OffDuty)
                {
                    let id = self.crews[crew as usize].id.clone();
                    self.crew_command(
                        crew,
                        Command::CrewDuty {
                            crew: id,
                            on_duty: false,
                        },
                        now,
                    );
                }
                self.schedule(now + minutes_ms(1440.0), Agenda::ShiftEnd { crew });
            }
            Agenda::Batch => {
                if self.engine.batching() {
                    self.system_command(Command::AssignBatch, now);
                }
                let interval = i64::from(self.engine.config().batch.interval_seconds) * 1000;
                self.schedule(now + interval, Agenda::Batch);
            }
            Agenda::Sample => {
                self.sample(now);
                self.schedule(now + SAMPLE_MINUTES * 60_000, Agenda::Sample);
            }
        }
    }

    /// A crew finished its job: off duty if its shift is over, else back to its station. The
    /// engine may have given it the next job at once (a waiting ticket): then it works on,
    /// as crews do, and this comes again when that one is done.
    fn after_job(&mut self, crew: u32, now: i64) {
        let c = &self.crews[crew as usize];
        if c.job.is_some() {
            return;
        }
        if !c.on_shift {
            let id = c.id.clone();
            self.crew_command(
                crew,
                Command::CrewDuty {
                    crew: id,
                    on_duty: false,
                },
                now,
            );
            return;
        }
        if self.scenario.crews.return_to_station && self.status(crew) == Some(CrewStatus::Available)
        {
            let (from, to) = (self.position(crew), c.station_location);
            // The drive home is modelled as staying put for its length, then a position fix
            // at the station; a dispatch meanwhile starts from where the crew last reported.
            let minutes = self.drive_minutes(from, to, c.station_class, 1.0);
            if minutes > 0.0 {
                let epoch = c.epoch;
                self.schedule(now + minutes_ms(minutes), Agenda::Home { crew, epoch });
            }
        }
    }

    fn drive_minutes(&self, from: LatLon, to: LatLon, class: AreaClass, factor: f64) -> f64 {
        let travel = &self.scenario.travel;
        from.haversine_km(to) * travel.circuity * factor / travel.kmh(class) * 60.0
    }

    fn position(&self, crew: u32) -> LatLon {
        let c = &self.crews[crew as usize];
        self.engine
            .crew(&c.id)
            .map_or(c.station_location, |record| record.position)
    }

    fn status(&self, crew: u32) -> Option<CrewStatus> {
        self.engine
            .crew(&self.crews[crew as usize].id)
            .map(|c| c.status.clone())
    }

    fn crew_rng(&self, crew: u32, epoch: u64, what: u64) -> rand_pcg::Pcg64Mcg {
        stream(
            self.seed,
            purpose::CREW,
            (u64::from(crew) << 40) ^ (epoch << 4) ^ what,
        )
    }

    /// A step by the crew on its job, if the plan is still current. True when done.
    fn step(&mut self, crew: u32, epoch: u64, command: TicketCommand, now: i64) -> bool {
        let c = &self.crews[crew as usize];
        if c.epoch != epoch {
            return false;
        }
        let Some(job) = c.job else {
            return false;
        };
        let command = Command::Ticket {
            ticket: self.tickets[job].id.clone(),
            command,
        };
        self.crew_command(crew, command, now)
    }

    fn crew_command(&mut self, crew: u32, command: Command, now: i64) -> bool {
        let actor = Actor::Crew(self.crews[crew as usize].id.clone());
        self.command(command, actor, now)
    }

    fn system_command(&mut self, command: Command, now: i64) -> bool {
        self.command(command, Actor::System, now)
    }

    fn command(&mut self, command: Command, actor: Actor, now: i64) -> bool {
        match self
            .engine
            .handle(command, actor, Timestamp::from_millis(now))
        {
            Ok(events) => {
                self.observe(&events, now);
                true
            }
            Err(_) => {
                self.refused_steps += 1;
                false
            }
        }
    }

    fn call(&mut self, index: usize, now: i64) {
        let number = index as u64;
        let id = TicketId::new(format!("T{number:06}"));
        let (fault, location) = match &self.calls[index].kind {
            CallKind::Fresh(fault) => (fault.clone(), fault.location),
            CallKind::Repeat {
                pick,
                offset_m,
                fallback,
            } => match self.open_fault(*pick) {
                Some(of) => {
                    let at = self.tickets[of].location;
                    let [dlon, dlat] = LocalProjection::new(at.lat(), at.lon()).degrees(1.0);
                    let near = LatLon::new(
                        at.lat() + offset_m[1] / 1000.0 * dlat,
                        at.lon() + offset_m[0] / 1000.0 * dlon,
                    )
                    .unwrap_or(at);
                    let repeat = Fault {
                        station: fallback.station,
                        location: near,
                        category: crate::domain::FaultCategory::NoPower,
                        emergency: false,
                        important: false,
                        repair_factor: fallback.repair_factor,
                    };
                    (repeat, near)
                }
                None => (fallback.clone(), fallback.location),
            },
        };
        let mut rng = stream(self.seed, purpose::TICKET, number);
        let travel = &self.scenario.travel;
        let factor = if travel.sigma > 0.0 {
            LogNormal::new(0.0, travel.sigma)
                .map_or(1.0, |d| d.sample(&mut rng))
                .clamp(travel.min_factor, travel.max_factor)
        } else {
            1.0
        };
        let repair = self
            .repair
            .iter()
            .find(|(c, _)| *c == fault.category)
            .map_or(45.0, |(_, d)| d.sample(&mut rng))
            * fault.repair_factor;
        let skill = fault.category.required_skill();
        let bound_minutes = self
            .crews
            .iter()
            .enumerate()
            .filter(|(_, c)| c.skills.contains(skill))
            .map(|(i, c)| {
                c.driving_to
                    .unwrap_or_else(|| self.position(i as u32))
                    .haversine_km(location)
            })
            .min_by(f64::total_cmp)
            .map(|km| km * self.scenario.travel.fastest_minutes_per_km());
        let customers = crate::reports::ReliabilityConfig {
            customers_per_incident: self.scenario.customers_per_incident.clone(),
            ..Default::default()
        }
        .customers_for(fault.category);
        let report = FaultReport {
            caller: Caller {
                name: "simulated".into(),
                phone: format!("{number:011}"),
            },
            location,
            address: String::new(),
            category: fault.category,
            priority: if fault.emergency {
                Priority::Emergency
            } else {
                Priority::Normal
            },
            important_customer: fault.important,
            description: String::new(),
        };
        let index = self.tickets.len();
        self.tickets.push(TicketSim {
            id: id.clone(),
            number,
            location,
            travel_factor: factor,
            repair_minutes: repair,
            dispatches: 0,
            bound_minutes,
            customers,
        });
        self.ticket_by_id.insert(id.clone(), index);
        let command = Command::Report { ticket: id, report };
        match self
            .engine
            .handle(command, Actor::Agent, Timestamp::from_millis(now))
        {
            Ok(events) => {
                let merged = events
                    .iter()
                    .any(|e| matches!(e.kind, EventKind::Merged { .. }));
                if !merged && fault.category.merge_group().is_some() {
                    self.open_faults.push(index);
                }
                self.observe(&events, now);
            }
            Err(EngineError::OutsideServiceAreas(_)) => {
                self.refused += 1;
                self.tickets.pop();
            }
            Err(_) => {
                self.refused_steps += 1;
                self.tickets.pop();
            }
        }
    }

    /// The open fault a repeat call with draw `pick` is about.
    fn open_fault(&self, pick: f64) -> Option<usize> {
        let n = self.open_faults.len();
        (n > 0).then(|| self.open_faults[((pick * n as f64) as usize).min(n - 1)])
    }

    /// Reacts to what the engine recorded: crews given jobs, jobs lost, deadlines passed.
    fn observe(&mut self, events: &[Event], now: i64) {
        for event in events {
            match &event.kind {
                EventKind::Reported { .. } => self.reported += 1,
                EventKind::Dispatched { ticket, crew, .. } => self.dispatched(ticket, crew, now),
                EventKind::Declined { crew, reason, .. } => {
                    let Some(&c) = self.crew_by_id.get(crew) else {
                        continue;
                    };
                    let sim = &mut self.crews[c as usize];
                    sim.job = None;
                    sim.epoch += 1;
                    sim.driving_to = None;
                    if *reason == DeclineReason::AcknowledgeTimeout {
                        let epoch = sim.epoch;
                        let mut rng = self.crew_rng(c, epoch, 3);
                        let back = uniform(self.scenario.crews.back_in_touch_minutes, &mut rng);
                        self.schedule(
                            now + minutes_ms(back),
                            Agenda::BackInTouch { crew: c, epoch },
                        );
                    }
                }
                EventKind::Arrived { ticket, .. } => {
                    if let Some(t) = self.engine.ticket(ticket)
                        && t.deadlines.arrive_by.is_some_and(|by| event.at <= by)
                    {
                        self.on_time += 1;
                    }
                }
                EventKind::SlaBreached {
                    stage: SlaStage::Arrive,
                    ..
                } => self.late += 1,
                EventKind::Restored { ticket, .. } => {
                    if let Some(&t) = self.ticket_by_id.get(ticket) {
                        self.open_faults.retain(|&f| f != t);
                    }
                }
                EventKind::Returned { crew, .. } => {
                    if let Some(&c) = self.crew_by_id.get(crew) {
                        let sim = &mut self.crews[c as usize];
                        sim.job = None;
                        sim.epoch += 1;
                    }
                }
                EventKind::StormMode { .. } => self.storm_switches += 1,
                _ => {}
            }
        }
    }

    fn dispatched(&mut self, ticket: &TicketId, crew: &CrewId, now: i64) {
        let (Some(&t), Some(&c)) = (self.ticket_by_id.get(ticket), self.crew_by_id.get(crew))
        else {
            return;
        };
        let sim = &mut self.crews[c as usize];
        sim.job = Some(t);
        sim.epoch += 1;
        let epoch = sim.epoch;
        let ticket = &mut self.tickets[t];
        ticket.dispatches += 1;
        let mut rng = stream(
            self.seed,
            purpose::DISPATCH,
            (ticket.number << 16) ^ ticket.dispatches,
        );
        if rng.random_bool(self.scenario.crews.ack_miss) {
            return;
        }
        let ack = uniform(self.scenario.crews.ack_minutes, &mut rng);
        self.schedule(now + minutes_ms(ack), Agenda::Ack { crew: c, epoch });
    }

    fn sample(&mut self, now: i64) {
        let mut busy = 0;
        let mut on_duty = 0;
        for crew in self.engine.crews() {
            match crew.status {
                CrewStatus::OffDuty => {}
                CrewStatus::Assigned(_) => {
                    busy += 1;
                    on_duty += 1;
                }
                CrewStatus::Available | CrewStatus::Unresponsive => on_duty += 1,
            }
        }
        self.busy_samples += busy as u64;
        self.on_duty_samples += on_duty as u64;
        self.samples.push(Sample {
            hour: (now - START_MS) as f64 / 3_600_000.0,
            queued: self.engine.queue_len(),
            busy_crews: busy,
            on_duty_crews: on_duty,
            on_time: self.on_time,
            late: self.late,
        });
    }

    fn finish(self, dispatch: Dispatch) -> RunOutcome {
        let tickets = self
            .tickets
            .iter()
            .filter_map(|sim| {
                let t = self.engine.ticket(&sim.id)?;
                Some(TicketOutcome {
                    id: sim.id.clone(),
                    area_class: t.area_class,
                    customers: sim.customers,
                    state: t.state,
                    reported_at: t.reported_at,
                    arrive_by: t.deadlines.arrive_by,
                    dispatched_at: t.dispatched_at,
                    arrived_at: t.arrived_at,
                    restored_at: t.restored_at,
                    eta_minutes: t.eta_minutes,
                    bound_minutes: sim.bound_minutes,
                    repair_minutes: sim.repair_minutes,
                })
            })
            .collect();
        RunOutcome {
            dispatch,
            start: Timestamp::from_millis(START_MS),
            end: Timestamp::from_millis(self.end_ms),
            calls: self.calls.len(),
            refused: self.refused,
            reported: self.reported,
            tickets,
            samples: self.samples,
            busy_samples: self.busy_samples,
            on_duty_samples: self.on_duty_samples,
            storm_switches: self.storm_switches,
            refused_steps: self.refused_steps,
            customers_served: self.customers_served,
        }
    }
}

/// Each station's crews, in id order, spread over the shifts by their shares, so that every
/// station keeps someone on duty when it can.
fn assign_shifts(engine: &Engine, shifts: &[Shift]) -> HashMap<CrewId, Shift> {
    let mut by_station: std::collections::BTreeMap<_, Vec<CrewId>> = Default::default();
    for crew in engine.crews() {
        by_station
            .entry(crew.station.clone())
            .or_default()
            .push(crew.id.clone());
    }
    let mut assigned = HashMap::new();
    for crews in by_station.values_mut() {
        crews.sort();
        let n = crews.len() as f64;
        for (i, id) in crews.iter().enumerate() {
            let position = (i as f64 + 0.5) / n;
            let mut cumulative = 0.0;
            let shift = shifts
                .iter()
                .find(|s| {
                    cumulative += s.share;
                    position < cumulative
                })
                .or(shifts.last());
            if let Some(shift) = shift {
                assigned.insert(id.clone(), *shift);
            }
        }
    }
    assigned
}
