//! The dispatcher: the engine behind a lock, the store behind it, and the rules that tie the
//! two together so that an answer never promises more than the disk holds.
//!
//! # The write path
//! Lock the engine → read the clock → `engine.handle` → on `Ok`, hand the events to
//! `Store::append` *while still holding the lock* (the store enqueues when called, so batches
//! reach it in the order the engine decided them) → release the lock → await the commit →
//! only then answer 2xx. An engine error changes nothing, in memory or on disk.
//!
//! # When the store fails
//! The engine has already applied a batch when its commit fails or times out, so memory may
//! be ahead of disk. The dispatcher then marks itself failed: every later write is refused
//! (503 with `Retry-After`), `/readyz` says not ready, and reads wait on the failed commit and
//! answer 503 too. Recovery is a restart, which rebuilds memory from what the store holds.
//!
//! # Reads
//! A read waits for the latest durable commit that was enqueued before it (its "horizon"),
//! so nothing is shown that a crash could take back. The wait is usually nil.
//!
//! # Deadlines
//! The engine knows every pending SLA checkpoint and when the next is due
//! ([`Engine::next_deadline`]). [`Dispatcher::drive_deadlines`] sleeps until then (or until
//! a write arms an earlier one and wakes it through a [`Notify`]), then runs
//! [`Command::FireDeadlines`] under the lock and commits its events durably like any
//! decision: warnings, breaches and acknowledgement timeouts with their re-dispatches. After
//! a restart the replayed engine knows which checkpoints fired already, so those that came
//! due while the service was down fire at once, and once.
//!
//! # Several instances (a shared store)
//! With a store that several instances share, one instance at a time decides: the holder of
//! the region's lease. The others follow the log into their own engines (reads, the live
//! feed) and the API hands their writes to the holder; see `replication.rs`.
//!
//! # Crew positions
//! Position pings are written `Lazy`: answered once the store has them, not once on disk. A
//! ping lost in a crash is harmless (the next one replaces it), and syncing each one would
//! spend the disk on the least valuable data. A ping whose batch also dispatches a ticket (an
//! unresponsive crew coming back) is written durably like any other decision.

pub mod auth;
mod clock;
mod control_room;
mod live;
mod replication;
mod reports;
#[cfg(test)]
mod tests;

pub use auth::{Action, Principal, TokenBook, permits};
pub use clock::{Clock, ManualClock, SystemClock};
pub use control_room::{Reassignment, RunningDeadline, ServiceArea};

use crate::domain::{
    Actor, CheckpointKind, Crew, CrewId, CrewStatus, DeclineReason, Event, EventKind, FaultReport,
    LatLon, Station, StationId, Ticket, TicketCommand, TicketId, TicketState, Timestamp,
};
use crate::engine::{Command, DispatchPolicy, Engine, EngineError, StormSwitch};
use crate::metrics;
use crate::store::{
    Backup, Batch, CrewTokenRecord, Durability, IdempotencyRecord, Store, StoreError,
};
use futures_util::FutureExt;
use futures_util::future::{BoxFuture, Shared};
use live::LiveFeed;
pub use live::{LiveEvent, Received, Subscription};
pub use replication::EngineFactory;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio::sync::Notify;

/// The longest the deadline driver sleeps without looking at the clock again. It sleeps on
/// the monotonic clock while deadlines are wall-clock instants, so a stepped wall clock (NTP)
/// is noticed within this; it is not a polling tick (nothing is decided unless a deadline
/// is due).
const MAX_DEADLINE_SLEEP: Duration = Duration::from_secs(60);

#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("no such {0}")]
    NotFound(&'static str),
    #[error("{0}")]
    Forbidden(&'static str),
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error("this Idempotency-Key was used with another request")]
    IdempotencyConflict,
    /// The store failed or the service is marked failed; nothing was changed: retry later.
    #[error("the store is unavailable")]
    Unavailable,
    /// The change was handed to the store but its commit was not confirmed: it may have
    /// been stored.
    #[error("the store did not confirm the change")]
    OutcomeUnknown,
    /// Another instance decides for the region (or none does, during a change-over).
    #[error("this instance does not hold the region's lease")]
    NotLeader,
    /// The store keeps no file of its own to copy (Redis: use Redis's own backups).
    #[error("this store is not backed up by the service: {0}")]
    BackupNotSupported(&'static str),
    /// The backup could not be written; the store itself is untouched.
    #[error("{0}")]
    BackupFailed(String),
    /// Another backup is being written; this one was not started.
    #[error("a backup is being written already")]
    BackupUnderWay,
}

/// An `Idempotency-Key` with the digest of the request it came with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey {
    pub key: String,
    pub request_sha256: [u8; 32],
}

#[derive(Debug, Clone)]
pub struct Created {
    pub ticket: Ticket,
    /// True when the key was seen before: the ticket is the one it created then.
    pub repeat: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TicketFilter {
    pub state: Option<TicketState>,
    pub station: Option<StationId>,
}

impl TicketFilter {
    fn matches(&self, ticket: &Ticket) -> bool {
        self.state.is_none_or(|s| ticket.state == s)
            && self.station.as_ref().is_none_or(|s| ticket.station == *s)
    }
}

#[derive(Debug, Clone)]
pub struct Page {
    pub items: Vec<Ticket>,
    /// The id to pass as `cursor` for the next page; `None` on the last page.
    pub next_cursor: Option<TicketId>,
}

/// A ticket with its history from the store.
#[derive(Debug, Clone)]
pub struct TicketWithTimeline {
    pub ticket: Ticket,
    pub timeline: Vec<Event>,
    /// For a merged repeat, the first report of its fault, as it stands now.
    pub first_report: Option<Ticket>,
}

#[derive(Debug, Clone)]
pub struct DispatcherOptions {
    /// A commit that takes longer counts as failed.
    pub write_timeout: Duration,
    /// With a shared store: how long the region's lease lasts unless renewed.
    pub lease: Duration,
    /// How the reports and restoration estimates count (`[reliability]`, `[etr]`).
    pub reports: crate::reports::ReportSettings,
    /// How many store backups to keep (0: all).
    pub backups_keep: u32,
}

impl Default for DispatcherOptions {
    fn default() -> Self {
        Self {
            write_timeout: Duration::from_secs(10),
            lease: Duration::from_secs(3),
            reports: crate::reports::ReportSettings::default(),
            backups_keep: crate::config::StoreConfig::default().backups_keep,
        }
    }
}

/// How far ahead of this service's clock a crew's fix time is taken as it is: phones'
/// clocks drift by seconds, sometimes minutes.
const FIX_CLOCK_SKEW: Duration = Duration::from_secs(5 * 60);

/// A commit did not succeed; the reason was logged where it happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum WriteFailed {
    /// Certainly not written: the same request may be sent again as it is.
    Aborted,
    /// Perhaps written (a timeout after the batch was handed to the store, a failed fsync):
    /// a request sent again without its `Idempotency-Key` may do the change twice.
    Unknown,
}

/// The outcome of one batch's commit, which several waiters may share.
type Commit = Shared<BoxFuture<'static, Result<(), WriteFailed>>>;

fn committed() -> Commit {
    futures_util::future::ready(Ok(())).boxed().shared()
}

/// Whether the dispatcher may still write.
#[derive(Debug, Default)]
struct Health {
    failed: AtomicBool,
}

impl Health {
    fn fail(&self, reason: &str) {
        if !self.failed.swap(true, Ordering::SeqCst) {
            tracing::error!(
                reason,
                "a store write failed: memory may be ahead of disk, so writes are refused \
                 until the service is restarted"
            );
            metrics::store_failed();
        }
    }

    /// Memory may hold writes the shared log does not, though none failed where a caller
    /// waited: refuse writes until it is rebuilt from the log (`heal`).
    fn must_rebuild(&self, reason: &str) {
        if !self.failed.swap(true, Ordering::SeqCst) {
            tracing::warn!(
                reason,
                "memory may be ahead of the shared log: writes are refused until it is rebuilt"
            );
            metrics::store_failed();
        }
    }

    fn is_failed(&self) -> bool {
        self.failed.load(Ordering::SeqCst)
    }

    /// Writes are accepted again: memory was rebuilt from the store.
    fn recovered(&self) {
        if self.failed.swap(false, Ordering::SeqCst) {
            tracing::info!("memory rebuilt from the store: writes are accepted again");
            metrics::store_recovered();
        }
    }
}

#[derive(Debug)]
struct Inner {
    engine: Engine,
    idempotency: HashMap<String, IdempotencyRecord>,
    /// The deadline the driver sleeps until (`None`: no deadline, it waits to be woken). A
    /// write that arms an earlier one wakes it. Starts at the earliest instant, so nothing
    /// wakes the driver before it has looked for itself.
    driver_until: Option<Timestamp>,
    /// Time of the latest event: `now` never goes back, so timelines stay in order even if
    /// the wall clock steps back.
    last_now: Timestamp,
    /// When the latest event was recorded (or replayed), for the "no events lately" alarm.
    last_event_at: Option<Timestamp>,
    /// The latest durable commit: what a read must wait for.
    horizon: Commit,
    /// Orders returned since start (recovered ones are not counted: the cache below starts
    /// empty), so the learned repair durations are recomputed only after a new return.
    returned_orders: u64,
    /// Repair durations learned from returned orders, and the count they were learned at.
    repair_stats: Option<(u64, crate::reports::RepairStats)>,
    /// With a shared store: the sequence number of the last batch in memory (decided here,
    /// or followed from the log).
    applied_seq: u64,
}

impl Inner {
    fn now(&mut self, clock: &dyn Clock) -> Timestamp {
        self.last_now = self.last_now.max(clock.now());
        self.last_now
    }

    fn note(&mut self, event: &Event) {
        self.last_now = self.last_now.max(event.at);
        self.last_event_at = Some(self.last_now);
        if matches!(event.kind, EventKind::Returned { .. }) {
            self.returned_orders += 1;
        }
    }

    /// Decides `command` on the engine, timing the decision for the metrics.
    fn decide(
        &mut self,
        command: Command,
        actor: Actor,
        now: Timestamp,
    ) -> Result<Vec<Event>, EngineError> {
        let label = match &command {
            Command::Report { .. } => "report",
            Command::Ticket { .. } => "ticket_step",
            Command::CrewDuty { .. } => "crew_duty",
            Command::CrewPosition { .. } => "crew_position",
            Command::FireDeadlines => "fire_deadlines",
            Command::AssignBatch => "assign_batch",
            Command::Storm(_) => "storm",
        };
        let started = Instant::now();
        let decided = self.engine.handle(command, actor, now);
        metrics::engine_decision(label, started.elapsed().as_secs_f64());
        decided
    }

    /// True when the engine's next deadline is earlier than the one the driver sleeps for:
    /// the driver must be woken (and is then taken to sleep for the new one).
    fn deadline_moved_up(&mut self) -> bool {
        let next = self.engine.next_deadline();
        let earlier = match (next, self.driver_until) {
            (Some(next), Some(until)) => next < until,
            (Some(_), None) => true,
            (None, _) => false,
        };
        if earlier {
            self.driver_until = next;
        }
        earlier
    }
}

/// Storm mode as a supervisor sees it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StormStatus {
    pub on: bool,
    /// Set by a supervisor: the automatic rule leaves it alone.
    pub pinned: bool,
    /// The policy in force now (`batch` while storm mode is on).
    pub policy: DispatchPolicy,
    pub queued: usize,
}

impl StormStatus {
    fn of(engine: &Engine) -> Self {
        let storm = engine.storm();
        Self {
            on: storm.on,
            pinned: storm.pinned,
            policy: engine.policy(),
            queued: engine.queue_len(),
        }
    }
}

/// What one run of the deadline driver recorded.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FiredDeadlines {
    pub warnings: usize,
    pub breaches: usize,
    /// Dispatches whose acknowledgement deadline passed (the job went to the next crew).
    pub timeouts: usize,
}

impl FiredDeadlines {
    /// Counts and logs the checkpoints `events` record, whoever recorded them: the driver,
    /// or a step that came after a deadline the driver had not reached yet.
    fn logged(events: &[Event]) -> Self {
        let mut fired = Self::default();
        for event in events {
            match &event.kind {
                EventKind::SlaWarning {
                    ticket,
                    stage,
                    level,
                } => {
                    fired.warnings += 1;
                    tracing::info!(
                        ticket.id = %ticket,
                        stage = stage.as_str(),
                        level = level.fraction(),
                        "SLA warning"
                    );
                }
                EventKind::SlaBreached { ticket, stage } => {
                    fired.breaches += 1;
                    tracing::warn!(ticket.id = %ticket, stage = stage.as_str(), "SLA breached");
                }
                EventKind::Declined {
                    ticket,
                    crew,
                    reason: DeclineReason::AcknowledgeTimeout,
                } => {
                    fired.timeouts += 1;
                    tracing::warn!(
                        ticket.id = %ticket,
                        crew.id = %crew,
                        "acknowledgement deadline passed: the job goes to the next crew"
                    );
                }
                _ => {}
            }
        }
        fired
    }
}

#[derive(Debug)]
pub struct Dispatcher {
    inner: Mutex<Inner>,
    store: Arc<dyn Store>,
    tokens: TokenBook,
    clock: Arc<dyn Clock>,
    health: Arc<Health>,
    options: DispatcherOptions,
    /// Wakes the deadline driver when a write arms a deadline earlier than its sleep.
    deadline_moved: Notify,
    /// The longest the driver sleeps before reading the clock again (`MAX_DEADLINE_SLEEP`;
    /// tests lengthen it to show that the wake-up alone brings an earlier deadline forward).
    deadline_recheck: Duration,
    /// Committed events for `/v1/events`.
    live: LiveFeed,
    /// Set with a shared store: who decides, and how far this instance has followed.
    replication: Option<replication::Replication>,
    /// Set while a backup is being written: a second one is refused rather than queued
    /// behind it, holding its request and a read snapshot that keeps the store's freed
    /// pages from reuse for as long as it waits.
    backup_under_way: AtomicBool,
}

/// Clears [`Dispatcher::backup_under_way`] when the backup ends, however it ends.
struct BackupUnderWay<'a>(&'a AtomicBool);

impl Drop for BackupUnderWay<'_> {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

impl Dispatcher {
    /// Rebuilds the service from a store this process alone writes: every event through
    /// `Engine::apply`, then the idempotency keys and minted crew tokens.
    pub async fn recover(
        engine: Engine,
        store: Arc<dyn Store>,
        tokens: TokenBook,
        clock: Arc<dyn Clock>,
        options: DispatcherOptions,
    ) -> Result<Self, StoreError> {
        Self::recover_shared(engine, store, tokens, clock, options, None).await
    }

    /// [`Dispatcher::recover`] for any store: with a shared one, `rebuild_engine` makes the
    /// fresh engine that a later rebuild (after a failed write) replays into (ignored for a
    /// store this process alone writes).
    pub async fn recover_shared(
        engine: Engine,
        store: Arc<dyn Store>,
        tokens: TokenBook,
        clock: Arc<dyn Clock>,
        options: DispatcherOptions,
        rebuild_engine: Option<replication::EngineFactory>,
    ) -> Result<Self, StoreError> {
        let inner = Self::load(engine, store.as_ref(), &tokens).await?;
        let replication = match (store.shared(), rebuild_engine) {
            (Some(_), Some(factory)) => {
                Some(replication::Replication::new(factory, inner.applied_seq))
            }
            (Some(_), None) => {
                return Err(StoreError::Unfit(
                    "a shared store needs an engine factory to rebuild from".into(),
                ));
            }
            (None, _) => None,
        };
        Ok(Self {
            inner: Mutex::new(inner),
            store,
            tokens,
            clock,
            health: Arc::default(),
            options,
            deadline_moved: Notify::new(),
            deadline_recheck: MAX_DEADLINE_SLEEP,
            live: LiveFeed::start(),
            replication,
            backup_under_way: AtomicBool::new(false),
        })
    }

    /// Memory as the store holds it: `engine` (fresh) with every event replayed into it.
    async fn load(
        engine: Engine,
        store: &dyn Store,
        tokens: &TokenBook,
    ) -> Result<Inner, StoreError> {
        let mut inner = Inner {
            engine,
            idempotency: HashMap::new(),
            driver_until: Some(Timestamp::from_millis(i64::MIN)),
            last_now: Timestamp::from_millis(0),
            last_event_at: None,
            returned_orders: 0,
            repair_stats: None,
            horizon: committed(),
            applied_seq: 0,
        };
        let started = Instant::now();
        let recovered = {
            let mut sink = |event: Event| {
                inner.last_now = inner.last_now.max(event.at);
                inner.last_event_at = Some(inner.last_now);
                inner.engine.apply(&event);
            };
            store.replay(&mut sink).await?
        };
        for fix in &recovered.positions {
            inner.last_now = inner.last_now.max(fix.at);
            inner.last_event_at = Some(inner.last_now);
            inner.engine.restore_crew_position(fix);
        }
        inner.applied_seq = recovered.last_seq;
        for record in recovered.idempotency {
            inner.idempotency.insert(record.key.clone(), record);
        }
        tokens.set_crew_tokens(
            recovered
                .crew_tokens
                .into_iter()
                .map(|record| (record.token_sha256, record.crew)),
        );
        let problems = inner.engine.audit();
        for problem in problems.iter().take(20) {
            tracing::error!(problem, "state rebuilt from the store breaks an invariant");
        }
        // The service still starts: refusing to would leave agents with nothing, and the
        // log is the truth to repair from. Supervisors are told instead (an alert).
        metrics::state_rebuilt(problems.len());
        tracing::info!(
            events = recovered.events,
            batches = recovered.last_seq,
            tickets = inner.engine.tickets().count(),
            next_deadline_ms = inner.engine.next_deadline().map(|t| t.as_millis()),
            idempotency_keys = inner.idempotency.len(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "recovered from the store"
        );
        Ok(inner)
    }

    /// The committed events from now on, in order, for `/v1/events`.
    pub fn subscribe(&self) -> Subscription {
        self.live.subscribe()
    }

    /// Ends every event stream: the first step of a shutdown, so open streams do not hold
    /// the server past its grace period.
    pub fn end_streams(&self) {
        self.live.end();
    }

    /// The gauges' values now (read when `/metrics` is scraped).
    /// An instance that follows another reports zeros, so summing a region's instances
    /// gives the deciding one's figures (and counters are recorded only where decisions are).
    pub fn gauges(&self) -> Result<metrics::Gauges, ServiceError> {
        if !self.decides() {
            return Ok(metrics::Gauges::default());
        }
        // Read from the backups' names, outside the lock: a scrape's directory listing, so a
        // restart or a backup copied in by hand counts as the files say.
        let last_backup_seconds = self
            .store
            .newest_backup()
            .map(|at| at.as_millis() as f64 / 1000.0);
        let inner = self.lock()?;
        let now = inner.last_now.max(self.clock.now());
        Ok(metrics::Gauges {
            census: inner.engine.census(),
            queued: inner.engine.queue_len(),
            oldest_queued_age_seconds: inner
                .engine
                .oldest_queued_report()
                .map_or(0.0, |at| now.since(at).as_secs_f64()),
            last_event_seconds: inner.last_event_at.map(|at| at.as_millis() as f64 / 1000.0),
            decides: self.decides(),
            storm: inner.engine.storm().on,
            last_backup_seconds,
        })
    }

    /// What "now" is for a request's defaults: the time the service stamps events with
    /// (never before the last event, whatever this instance's clock says).
    pub fn now(&self) -> Timestamp {
        match self.lock() {
            Ok(mut inner) => inner.now(self.clock.as_ref()),
            Err(_) => self.clock.now(),
        }
    }

    /// How long a write may take before it counts as failed.
    pub fn write_timeout(&self) -> Duration {
        self.options.write_timeout
    }

    pub fn authenticate(&self, token: &str) -> Option<Principal> {
        self.tokens.authenticate(token)
    }

    /// True while writes are accepted and the store answers.
    /// With a shared store, also: this instance decides, or knows the one that does (it
    /// can take writes by handing them over).
    pub async fn ready(&self) -> bool {
        if self.health.is_failed() {
            return false;
        }
        if self.is_shared() && !self.decides() && self.leader_url().is_none() {
            return false;
        }
        matches!(
            tokio::time::timeout(self.options.write_timeout, self.store.ping()).await,
            Ok(Ok(()))
        )
    }

    /// Commits what the store has accepted and stops it: the last step of a shutdown.
    pub async fn close(&self) -> Result<(), StoreError> {
        self.store.close().await
    }

    fn lock(&self) -> Result<MutexGuard<'_, Inner>, ServiceError> {
        // A panic while the engine was locked may have left it half-changed: treat it as a
        // failed store, so a restart rebuilds it from disk.
        self.inner.lock().map_err(|_| {
            self.health.fail("the engine lock was poisoned by a panic");
            ServiceError::Unavailable
        })
    }

    fn writable(&self) -> Result<(), ServiceError> {
        if self.health.is_failed() {
            Err(ServiceError::Unavailable)
        } else if !self.decides() {
            Err(ServiceError::NotLeader)
        } else {
            Ok(())
        }
    }

    /// Whether this instance makes decisions: always with a store of its own; with a shared
    /// one, while it holds the region's lease.
    pub fn decides(&self) -> bool {
        self.replication.as_ref().is_none_or(|r| r.leading())
    }

    /// Hands a batch to the store; call with the engine locked. The commit runs in its own
    /// task, so a failure is noticed even if the request that caused it goes away.
    fn commit(&self, inner: &mut Inner, batch: Batch, durability: Durability) -> Commit {
        let sla = inner.engine.config().sla;
        for event in &batch.events {
            let ticket_id = event.kind.ticket();
            let ticket = ticket_id.and_then(|id| inner.engine.ticket(id));
            let observations = metrics::observe(event, ticket, &sla, |stage| {
                ticket_id.is_some_and(|id| {
                    inner
                        .engine
                        .checkpoint_fired(id, stage, CheckpointKind::Breach)
                })
            });
            metrics::record(event, ticket, &observations);
            inner.note(event);
        }
        let live = self.live.prepare(&inner.engine, &batch.events);
        if inner.deadline_moved_up() {
            // A stored permit if the driver is not waiting yet: the wake-up is never lost.
            self.deadline_moved.notify_one();
        }
        let appended = self.store.append(batch, durability);
        inner.applied_seq += 1;
        if let Some(replication) = &self.replication {
            replication.applied(inner.applied_seq);
        }
        let health = self.health.clone();
        let timeout = self.options.write_timeout;
        let label = match durability {
            Durability::Durable => "durable",
            Durability::Lazy => "lazy",
        };
        let commit = async move {
            let started = Instant::now();
            let result = tokio::time::timeout(timeout, appended).await;
            metrics::store_write(label, started.elapsed().as_secs_f64());
            match result {
                Ok(Ok(())) => Ok(()),
                Ok(Err(error)) => {
                    health.fail(&error.to_string());
                    Err(if error.is_certainly_aborted() {
                        WriteFailed::Aborted
                    } else {
                        WriteFailed::Unknown
                    })
                }
                Err(_) => {
                    // The batch is with the store and may still land.
                    health.fail("a commit did not finish within store.write_timeout_ms");
                    Err(WriteFailed::Unknown)
                }
            }
        }
        .boxed()
        .shared();
        tokio::spawn(commit.clone());
        if durability == Durability::Durable {
            inner.horizon = commit.clone();
        }
        if let Some(live) = live {
            self.live.publish_after(commit.clone(), live);
        }
        commit
    }

    /// A decision's events alone, committed durably: most decisions write nothing else.
    fn commit_events(&self, inner: &mut Inner, events: Vec<Event>) -> Commit {
        self.commit(
            inner,
            Batch {
                events,
                ..Batch::default()
            },
            Durability::Durable,
        )
    }

    /// Waits for a write's own commit: its answer says whether the change may have landed.
    async fn settled(commit: Commit) -> Result<(), ServiceError> {
        commit.await.map_err(|failed| match failed {
            WriteFailed::Aborted => ServiceError::Unavailable,
            WriteFailed::Unknown => ServiceError::OutcomeUnknown,
        })
    }

    /// Waits until what a read would show is durable (the horizon of the writes before it);
    /// a read changes nothing, so any failure there is just the store being unavailable.
    async fn visible(horizon: Commit) -> Result<(), ServiceError> {
        horizon.await.map_err(|_| ServiceError::Unavailable)
    }

    /// A new report from an agent or supervisor. With a key seen before, the ticket it made
    /// (and `repeat`), or a conflict when the request differs.
    pub async fn create_ticket(
        &self,
        who: &Principal,
        report: FaultReport,
        key: Option<IdempotencyKey>,
    ) -> Result<Created, ServiceError> {
        let actor = who
            .actor()
            .ok_or(ServiceError::Forbidden("this role cannot create tickets"))?;
        let (ticket, repeat, commit) = {
            let mut inner = self.lock()?;
            let seen = key
                .as_ref()
                .and_then(|k| inner.idempotency.get(&k.key).map(|r| (k, r)));
            if let Some((key, record)) = seen {
                if record.request_sha256 != key.request_sha256 {
                    return Err(ServiceError::IdempotencyConflict);
                }
                let ticket = inner
                    .engine
                    .ticket(&record.ticket)
                    .cloned()
                    .ok_or(ServiceError::NotFound("ticket"))?;
                (ticket, true, inner.horizon.clone())
            } else {
                self.writable()?;
                let id = TicketId::new(uuid::Uuid::now_v7().to_string());
                let now = inner.now(self.clock.as_ref());
                let events = inner.decide(
                    Command::Report {
                        ticket: id.clone(),
                        report,
                    },
                    actor,
                    now,
                )?;
                let ticket = inner
                    .engine
                    .ticket(&id)
                    .cloned()
                    .ok_or(ServiceError::NotFound("ticket"))?;
                let idempotency = key.map(|k| IdempotencyRecord {
                    key: k.key,
                    request_sha256: k.request_sha256,
                    ticket: id.clone(),
                });
                if let Some(record) = &idempotency {
                    inner.idempotency.insert(record.key.clone(), record.clone());
                }
                let commit = self.commit(
                    &mut inner,
                    Batch {
                        events,
                        idempotency,
                        ..Batch::default()
                    },
                    Durability::Durable,
                );
                metrics::ticket_created(ticket.report.category.as_str(), ticket.state.as_str());
                (ticket, false, commit)
            }
        };
        if repeat {
            // Nothing was written for it: the ticket is shown once what made it is durable.
            Self::visible(commit).await?;
        } else {
            Self::settled(commit).await?;
        }
        if !repeat {
            tracing::info!(
                ticket.id = %ticket.id,
                station.id = %ticket.station,
                crew.id = ticket.crew.as_ref().map(|c| c.as_str()),
                incident.id = %ticket.incident,
                state = %ticket.state,
                "ticket created"
            );
        }
        Ok(Created { ticket, repeat })
    }

    /// A step on a ticket: a crew's (its own job only), or an agent's or supervisor's.
    pub async fn ticket_step(
        &self,
        who: &Principal,
        id: &TicketId,
        command: TicketCommand,
    ) -> Result<Ticket, ServiceError> {
        let actor = who
            .actor()
            .ok_or(ServiceError::Forbidden("this role cannot act on tickets"))?;
        let name = command.name();
        let (ticket, commit) = {
            let mut inner = self.lock()?;
            let current = inner
                .engine
                .ticket(id)
                .ok_or(ServiceError::NotFound("ticket"))?;
            if let Principal::Crew(crew) = who
                && current.crew.as_ref() != Some(crew)
            {
                return Err(ServiceError::Forbidden(
                    "this ticket is not your crew's job",
                ));
            }
            self.writable()?;
            let now = inner.now(self.clock.as_ref());
            let events = inner.decide(
                Command::Ticket {
                    ticket: id.clone(),
                    command,
                },
                actor,
                now,
            )?;
            FiredDeadlines::logged(&events);
            let ticket = inner
                .engine
                .ticket(id)
                .cloned()
                .ok_or(ServiceError::NotFound("ticket"))?;
            let commit = self.commit_events(&mut inner, events);
            (ticket, commit)
        };
        Self::settled(commit).await?;
        tracing::info!(
            ticket.id = %ticket.id,
            crew.id = ticket.crew.as_ref().map(|c| c.as_str()),
            step = name,
            state = %ticket.state,
            "ticket step"
        );
        Ok(ticket)
    }

    /// One ticket with its timeline. A crew sees only tickets given to it.
    pub async fn ticket(
        &self,
        who: &Principal,
        id: &TicketId,
    ) -> Result<TicketWithTimeline, ServiceError> {
        let (ticket, first_report, horizon) = {
            let inner = self.lock()?;
            let ticket = inner
                .engine
                .ticket(id)
                .cloned()
                .ok_or(ServiceError::NotFound("ticket"))?;
            if let Principal::Crew(crew) = who
                && ticket.crew.as_ref() != Some(crew)
            {
                return Err(ServiceError::Forbidden(
                    "this ticket is not your crew's job",
                ));
            }
            let first_report = inner.engine.first_report_of(id).cloned();
            (ticket, first_report, inner.horizon.clone())
        };
        Self::visible(horizon).await?;
        let timeline = tokio::time::timeout(self.options.write_timeout, self.store.timeline(id))
            .await
            .map_err(|_| ServiceError::Unavailable)?
            .map_err(|error| {
                tracing::warn!(ticket.id = %id, %error, "reading a timeline failed");
                ServiceError::Unavailable
            })?;
        Ok(TicketWithTimeline {
            ticket,
            timeline,
            first_report,
        })
    }

    /// A page of tickets in creation order (ids are time-ordered).
    pub async fn tickets(
        &self,
        filter: &TicketFilter,
        cursor: Option<&TicketId>,
        limit: usize,
    ) -> Result<Page, ServiceError> {
        let (page, horizon) = {
            let inner = self.lock()?;
            let mut items = Vec::with_capacity(limit.min(64));
            let mut more = false;
            let candidates: Box<dyn Iterator<Item = &Ticket>> = match filter.state {
                Some(state) => Box::new(inner.engine.tickets_in_state_after(state, cursor)),
                None => Box::new(inner.engine.tickets_after(cursor)),
            };
            for ticket in candidates.filter(|t| filter.matches(t)) {
                if items.len() == limit {
                    more = true;
                    break;
                }
                items.push(ticket.clone());
            }
            let next_cursor = if more {
                items.last().map(|t: &Ticket| t.id.clone())
            } else {
                None
            };
            (Page { items, next_cursor }, inner.horizon.clone())
        };
        Self::visible(horizon).await?;
        Ok(page)
    }

    /// The crew's current job, if any. The engine gives a crew one job at a time and a waiting
    /// ticket no crew, so a crew has no queued jobs of its own.
    pub async fn crew_jobs(
        &self,
        who: &Principal,
        crew: &CrewId,
    ) -> Result<Vec<Ticket>, ServiceError> {
        let (jobs, horizon) = {
            let inner = self.lock()?;
            let record = inner
                .engine
                .crew(crew)
                .ok_or(ServiceError::NotFound("crew"))?;
            Self::check_own_crew(who, crew)?;
            let jobs = record
                .job()
                .and_then(|t| inner.engine.ticket(t))
                .cloned()
                .into_iter()
                .collect();
            (jobs, inner.horizon.clone())
        };
        Self::visible(horizon).await?;
        Ok(jobs)
    }

    fn check_own_crew(who: &Principal, crew: &CrewId) -> Result<(), ServiceError> {
        match who {
            Principal::Crew(own) if own != crew => Err(ServiceError::Forbidden(
                "a crew token acts only for its own crew",
            )),
            _ => Ok(()),
        }
    }

    pub async fn crew_duty(
        &self,
        who: &Principal,
        crew: &CrewId,
        on_duty: bool,
    ) -> Result<(), ServiceError> {
        let command = Command::CrewDuty {
            crew: crew.clone(),
            on_duty,
        };
        self.crew_report(who, crew, command).await?;
        tracing::info!(crew.id = %crew, on_duty, "crew duty");
        Ok(())
    }

    /// A crew's position fix taken at `fix_at` (when the app says). A fix no newer than the
    /// last accepted one is a late or repeated ping and changes nothing.
    pub async fn crew_position(
        &self,
        who: &Principal,
        crew: &CrewId,
        location: LatLon,
        fix_at: Option<Timestamp>,
    ) -> Result<(), ServiceError> {
        let command = Command::CrewPosition {
            crew: crew.clone(),
            location,
            fix_at,
        };
        self.crew_report(who, crew, command).await
    }

    /// What a crew reports about itself (duty, position): checked to be its own, decided,
    /// and committed. Position-only batches are `Lazy`; anything that also dispatches is
    /// durable like any other decision.
    async fn crew_report(
        &self,
        who: &Principal,
        crew: &CrewId,
        mut command: Command,
    ) -> Result<(), ServiceError> {
        let actor = who.actor().ok_or(ServiceError::Forbidden(
            "this role cannot report for a crew",
        ))?;
        let commit = {
            let mut inner = self.lock()?;
            // A fix from an unresponsive crew brings it back: a change beyond its position.
            let answering = inner
                .engine
                .crew(crew)
                .ok_or(ServiceError::NotFound("crew"))?
                .status
                != CrewStatus::Unresponsive;
            Self::check_own_crew(who, crew)?;
            self.writable()?;
            let now = inner.now(self.clock.as_ref());
            let position = if let Command::CrewPosition { fix_at, .. } = &mut command {
                // A phone whose clock runs ahead would otherwise set a fix time that no
                // later, true one could pass, silencing the crew: a fix beyond this clock by
                // more than a phone's drift counts as taken then.
                *fix_at = fix_at.map(|at| at.min(now.plus(FIX_CLOCK_SKEW)));
                true
            } else {
                false
            };
            let events = inner.decide(command, actor, now)?;
            if position {
                // Nothing recorded: a late or repeated fix.
                metrics::crew_ping(!events.is_empty());
            }
            if events.is_empty() {
                return Ok(());
            }
            let only_positions = events
                .iter()
                .all(|e| matches!(e.kind, EventKind::CrewPosition { .. }));
            let durability = if only_positions {
                Durability::Lazy
            } else {
                Durability::Durable
            };
            self.commit(
                &mut inner,
                Batch {
                    events,
                    supersedable_position: position && answering && only_positions,
                    ..Batch::default()
                },
                durability,
            )
        };
        Self::settled(commit).await
    }

    pub async fn stations(&self) -> Result<Vec<Station>, ServiceError> {
        Ok(self.lock()?.engine.stations().to_vec())
    }

    pub async fn crews(&self) -> Result<Vec<Crew>, ServiceError> {
        let (crews, horizon) = {
            let inner = self.lock()?;
            (
                inner.engine.crews().cloned().collect::<Vec<_>>(),
                inner.horizon.clone(),
            )
        };
        Self::visible(horizon).await?;
        Ok(crews)
    }

    /// Mints a bearer token for `crew`; only its digest is kept. The token is returned only
    /// once it is on disk, so it works after a restart.
    pub async fn mint_crew_token(&self, crew: &CrewId) -> Result<String, ServiceError> {
        let token = crate::config::random_token();
        let digest = auth::sha256(token.as_bytes());
        let commit = {
            let mut inner = self.lock()?;
            inner
                .engine
                .crew(crew)
                .ok_or(ServiceError::NotFound("crew"))?;
            self.writable()?;
            self.commit(
                &mut inner,
                Batch {
                    crew_token: Some(CrewTokenRecord {
                        token_sha256: digest,
                        crew: crew.clone(),
                    }),
                    ..Batch::default()
                },
                Durability::Durable,
            )
        };
        Self::settled(commit).await?;
        self.tokens.add_crew_token(digest, crew.clone());
        tracing::info!(crew.id = %crew, "crew token minted");
        Ok(token)
    }

    /// Withdraws every token minted for `crew` (a lost or stolen phone) and answers how many;
    /// an admin then mints a new one for the crew's new phone. Answers once the revocation is
    /// on disk, so the tokens stay dead after a restart. Tokens from the token file are not
    /// minted and stay: they change with the file.
    pub async fn revoke_crew_tokens(&self, crew: &CrewId) -> Result<usize, ServiceError> {
        let (revoked, commit) = {
            let mut inner = self.lock()?;
            inner
                .engine
                .crew(crew)
                .ok_or(ServiceError::NotFound("crew"))?;
            let digests = self.tokens.minted_for(crew);
            if digests.is_empty() {
                // Nothing to withdraw: nothing to write, and the answer says so.
                return Ok(0);
            }
            self.writable()?;
            let revoked: Vec<CrewTokenRecord> = digests
                .into_iter()
                .map(|token_sha256| CrewTokenRecord {
                    token_sha256,
                    crew: crew.clone(),
                })
                .collect();
            let commit = self.commit(
                &mut inner,
                Batch {
                    revoked_crew_tokens: revoked.clone(),
                    ..Batch::default()
                },
                Durability::Durable,
            );
            (revoked, commit)
        };
        Self::settled(commit).await?;
        self.tokens
            .remove_crew_tokens(revoked.iter().map(|record| &record.token_sha256));
        tracing::info!(crew.id = %crew, tokens = revoked.len(), "crew tokens revoked");
        Ok(revoked.len())
    }

    /// Writes an online backup of the store: everything committed when it begins, while
    /// writes go on. Only the embedded store has one; Redis is backed up with Redis's tools.
    pub async fn back_up_store(&self) -> Result<Backup, ServiceError> {
        if self.backup_under_way.swap(true, Ordering::AcqRel) {
            return Err(ServiceError::BackupUnderWay);
        }
        let _under_way = BackupUnderWay(&self.backup_under_way);
        let taken_at = self.clock.now();
        let backup = self
            .store
            .backup(taken_at, self.options.backups_keep)
            .ok_or(ServiceError::BackupNotSupported(
                "only the embedded store on disk is; back up Redis with its own persistence",
            ))?;
        let backup = backup.await.map_err(|error| match error {
            // The store's own copy outlives a request that stopped waiting for it.
            StoreError::Busy(_) => ServiceError::BackupUnderWay,
            StoreError::Unavailable(reason)
            | StoreError::OutcomeUnknown(reason)
            | StoreError::Corrupt(reason)
            | StoreError::Unfit(reason) => {
                metrics::backup(false);
                tracing::error!(error = %reason, "store backup failed");
                // The reason alone: the error's own wording ("the store is unavailable") is
                // not true of a store that goes on taking writes.
                ServiceError::BackupFailed(reason)
            }
        })?;
        tracing::info!(
            backup.path = %backup.path.display(),
            backup.events = backup.events,
            backup.bytes = backup.bytes,
            backup.removed = backup.removed.len(),
            "store backed up"
        );
        metrics::backup(true);
        Ok(backup)
    }

    /// Records every SLA checkpoint passed before now ([`Command::FireDeadlines`]): warnings,
    /// breaches, and acknowledgement timeouts whose jobs go to the next crew (or the queue).
    /// Answers once the events are on disk.
    pub async fn fire_deadlines(&self) -> Result<FiredDeadlines, ServiceError> {
        let mut fired = FiredDeadlines::default();
        let commit = {
            let mut inner = self.lock()?;
            if self.health.is_failed() || !self.decides() {
                return Ok(fired);
            }
            let now = inner.now(self.clock.as_ref());
            if inner.engine.next_deadline().is_none_or(|at| at > now) {
                return Ok(fired);
            }
            let events = inner.decide(Command::FireDeadlines, Actor::System, now)?;
            fired = FiredDeadlines::logged(&events);
            if events.is_empty() {
                return Ok(fired);
            }
            self.commit_events(&mut inner, events)
        };
        Self::settled(commit).await?;
        Ok(fired)
    }

    /// Assigns waiting tickets to free crews together ([`Command::AssignBatch`]) while the
    /// engine batches (the `batch` policy, or storm mode); nothing otherwise. Answers once
    /// the dispatches are on disk, with how many there were.
    pub async fn assign_batch(&self) -> Result<usize, ServiceError> {
        let commit = {
            let mut inner = self.lock()?;
            if self.health.is_failed() || !self.decides() || !inner.engine.batching() {
                return Ok(0);
            }
            let now = inner.now(self.clock.as_ref());
            let events = inner.decide(Command::AssignBatch, Actor::System, now)?;
            let dispatched = events
                .iter()
                .filter(|e| matches!(e.kind, EventKind::Dispatched { .. }))
                .count();
            if events.is_empty() {
                return Ok(0);
            }
            (dispatched, self.commit_events(&mut inner, events))
        };
        Self::settled(commit.1).await?;
        if commit.0 > 0 {
            tracing::info!(dispatched = commit.0, "batch assignment");
        }
        Ok(commit.0)
    }

    /// Runs [`Dispatcher::assign_batch`] every `[engine.batch] interval_seconds`, until the
    /// task is aborted. Cheap while the engine dispatches each ticket at once.
    pub async fn drive_batches(self: Arc<Self>) {
        let interval = match self.lock() {
            Ok(inner) => Duration::from_secs(u64::from(
                inner.engine.config().batch.interval_seconds.max(1),
            )),
            Err(_) => return,
        };
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if let Err(error) = self.assign_batch().await {
                tracing::warn!(%error, "a batch assignment failed");
            }
        }
    }

    /// A supervisor's switch of storm mode: on or off (pinned until handed back), or back to
    /// the automatic rule. Answers the state after it, once on disk.
    pub async fn switch_storm(
        &self,
        who: &Principal,
        switch: StormSwitch,
    ) -> Result<StormStatus, ServiceError> {
        let actor = who.actor().ok_or(ServiceError::Forbidden(
            "this role cannot switch storm mode",
        ))?;
        let (status, commit, changed) = {
            let mut inner = self.lock()?;
            self.writable()?;
            let now = inner.now(self.clock.as_ref());
            let events = inner.decide(Command::Storm(switch), actor, now)?;
            let status = StormStatus::of(&inner.engine);
            let changed = !events.is_empty();
            let commit = if changed {
                self.commit_events(&mut inner, events)
            } else {
                inner.horizon.clone()
            };
            (status, commit, changed)
        };
        if changed {
            Self::settled(commit).await?;
        } else {
            Self::visible(commit).await?;
        }
        tracing::warn!(
            on = status.on,
            pinned = status.pinned,
            "storm mode switched by a supervisor"
        );
        Ok(status)
    }

    /// Whether storm mode is on, and how tickets are dispatched now.
    pub async fn storm(&self) -> Result<StormStatus, ServiceError> {
        let (status, horizon) = {
            let inner = self.lock()?;
            (StormStatus::of(&inner.engine), inner.horizon.clone())
        };
        Self::visible(horizon).await?;
        Ok(status)
    }

    /// When the next SLA checkpoint is due, if any clock runs.
    pub fn next_deadline(&self) -> Result<Option<Timestamp>, ServiceError> {
        Ok(self.lock()?.engine.next_deadline())
    }

    /// Sleeps until the next deadline, fires what is due, and again, until the task is
    /// aborted. A write that arms an earlier deadline wakes it. It stops once the dispatcher
    /// has failed: nothing can be written until a restart, which fires what is overdue.
    pub async fn drive_deadlines(self: Arc<Self>) {
        loop {
            let wait = {
                let Ok(mut inner) = self.lock() else {
                    return;
                };
                let next = inner.engine.next_deadline();
                inner.driver_until = next;
                // `inner.now` without moving it: the clock is read, not an event recorded.
                let now = inner.last_now.max(self.clock.now());
                next.map(|at| at.since(now))
            };
            if self.health.is_failed() && self.replication.is_none() {
                tracing::warn!("the deadline driver stops: the dispatcher has failed");
                return;
            }
            // Another instance decides (or this one is rebuilding): wait to be told.
            let wait = if self.decides() && !self.health.is_failed() {
                wait
            } else {
                Some(self.deadline_recheck)
            };
            match wait {
                Some(wait) if wait.is_zero() => {
                    if let Err(error) = self.fire_deadlines().await {
                        tracing::warn!(%error, "firing deadlines failed");
                    }
                }
                Some(wait) => {
                    tokio::select! {
                        () = tokio::time::sleep(wait.min(self.deadline_recheck)) => {}
                        () = self.deadline_moved.notified() => {}
                    }
                }
                None => self.deadline_moved.notified().await,
            }
        }
    }
}
