//! Unit tests of the dispatcher: deadlines with a manual clock, recovery by replay, and what
//! happens when the store fails. The HTTP suite in `tests/api.rs` covers the rest.

use super::*;
use crate::domain::{
    Caller, CrewStatus, FaultCategory, FaultClass, Ownership, Priority, SlaStage, WorkOrderReturn,
};
use crate::engine::{EngineConfig, synthetic};
use crate::store::{EmbeddedStore, Recovered};
use futures_util::future::BoxFuture;
use std::sync::atomic::AtomicUsize;

const T0: Timestamp = Timestamp::from_millis(1_750_000_000_000);

fn engine(crews: usize) -> Engine {
    Engine::new(
        EngineConfig::default(),
        synthetic::grid(2, 2, 4.0, crews, 7),
    )
    .unwrap()
}

fn report(engine: &Engine) -> FaultReport {
    FaultReport {
        caller: Caller {
            name: "Chen".into(),
            phone: "13900000000".into(),
        },
        location: engine.stations()[0].location,
        address: "1 Road".into(),
        category: FaultCategory::Other,
        priority: Priority::Normal,
        important_customer: false,
        description: String::new(),
    }
}

async fn dispatcher(
    store: Arc<dyn Store>,
    clock: Arc<ManualClock>,
    crews: usize,
) -> (Dispatcher, FaultReport) {
    let engine = engine(crews);
    let report = report(&engine);
    let dispatcher = Dispatcher::recover(
        engine,
        store,
        TokenBook::default(),
        clock,
        DispatcherOptions::default(),
    )
    .await
    .unwrap();
    (dispatcher, report)
}

fn memory_store() -> Arc<dyn Store> {
    Arc::new(EmbeddedStore::in_memory().unwrap())
}

#[tokio::test]
async fn an_unacknowledged_job_goes_to_the_next_crew_at_its_deadline() {
    let clock = Arc::new(ManualClock::new(T0));
    let (dispatcher, report) = dispatcher(memory_store(), clock.clone(), 4).await;
    let created = dispatcher
        .create_ticket(&Principal::Agent, report, None)
        .await
        .unwrap();
    let first = created.ticket.crew.clone().unwrap();

    clock.advance_minutes(4);
    assert_eq!(dispatcher.fire_deadlines().await.unwrap().timeouts, 0);

    clock.advance_minutes(1);
    assert_eq!(
        dispatcher.fire_deadlines().await.unwrap().timeouts,
        0,
        "at the deadline itself the crew may still acknowledge"
    );
    clock.advance_millis(1);
    assert_eq!(dispatcher.fire_deadlines().await.unwrap().timeouts, 1);
    let after = dispatcher
        .ticket(&Principal::Agent, &created.ticket.id)
        .await
        .unwrap();
    assert_eq!(after.ticket.state, TicketState::Dispatched);
    let second = after.ticket.crew.clone().unwrap();
    assert_ne!(second, first);
    let names: Vec<_> = after
        .timeline
        .iter()
        .map(|e| e.kind.name())
        .filter(|n| !n.starts_with("sla_"))
        .collect();
    assert_eq!(
        names,
        ["reported", "dispatched", "declined", "dispatched"],
        "{names:?}"
    );
    // The second crew's own clock started at the re-dispatch.
    clock.advance_minutes(4);
    assert_eq!(dispatcher.fire_deadlines().await.unwrap().timeouts, 0);
}

#[tokio::test]
async fn an_acknowledged_job_never_times_out() {
    let clock = Arc::new(ManualClock::new(T0));
    let (dispatcher, report) = dispatcher(memory_store(), clock.clone(), 4).await;
    let created = dispatcher
        .create_ticket(&Principal::Agent, report, None)
        .await
        .unwrap();
    let crew = Principal::Crew(created.ticket.crew.clone().unwrap());
    dispatcher
        .ticket_step(&crew, &created.ticket.id, TicketCommand::Acknowledge)
        .await
        .unwrap();
    clock.advance_minutes(60);
    assert_eq!(dispatcher.fire_deadlines().await.unwrap().timeouts, 0);
}

#[tokio::test]
async fn revoked_crew_tokens_stay_dead_across_a_restart_and_spare_other_crews() {
    let store = memory_store();
    let clock = Arc::new(ManualClock::new(T0));
    let (first, report) = dispatcher(store.clone(), clock.clone(), 4).await;
    let created = first
        .create_ticket(&Principal::Agent, report, None)
        .await
        .unwrap();
    let crew = created.ticket.crew.clone().unwrap();
    let other = first
        .crews()
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.id)
        .find(|id| *id != crew)
        .unwrap();
    let lost = first.mint_crew_token(&crew).await.unwrap();
    let spare = first.mint_crew_token(&crew).await.unwrap();
    let others = first.mint_crew_token(&other).await.unwrap();

    assert_eq!(first.revoke_crew_tokens(&crew).await.unwrap(), 2);
    assert_eq!(first.authenticate(&lost), None);
    assert_eq!(first.authenticate(&spare), None);
    // Nothing left to withdraw: answered, nothing written.
    assert_eq!(first.revoke_crew_tokens(&crew).await.unwrap(), 0);
    assert!(matches!(
        first.revoke_crew_tokens(&CrewId::new("no-such-crew")).await,
        Err(ServiceError::NotFound("crew"))
    ));
    let new_phone = first.mint_crew_token(&crew).await.unwrap();
    drop(first);

    let (second, _) = dispatcher(store, clock, 4).await;
    assert_eq!(second.authenticate(&lost), None);
    assert_eq!(second.authenticate(&spare), None);
    assert_eq!(
        second.authenticate(&new_phone),
        Some(Principal::Crew(crew.clone()))
    );
    assert_eq!(second.authenticate(&others), Some(Principal::Crew(other)));
}

#[tokio::test]
async fn a_restart_rebuilds_tickets_keys_and_crew_tokens_from_the_store() {
    let store = memory_store();
    let clock = Arc::new(ManualClock::new(T0));
    let (first, report) = dispatcher(store.clone(), clock.clone(), 4).await;
    let key = IdempotencyKey {
        key: "k1".into(),
        request_sha256: [7; 32],
    };
    let created = first
        .create_ticket(&Principal::Agent, report.clone(), Some(key.clone()))
        .await
        .unwrap();
    let crew = created.ticket.crew.clone().unwrap();
    let token = first.mint_crew_token(&crew).await.unwrap();
    drop(first);

    let (second, _) = dispatcher(store, clock, 4).await;
    assert_eq!(
        second.authenticate(&token),
        Some(Principal::Crew(crew.clone()))
    );
    let again = second
        .create_ticket(&Principal::Agent, report.clone(), Some(key.clone()))
        .await
        .unwrap();
    assert!(again.repeat);
    assert_eq!(again.ticket.id, created.ticket.id);
    let conflict = second
        .create_ticket(
            &Principal::Agent,
            report,
            Some(IdempotencyKey {
                request_sha256: [8; 32],
                ..key
            }),
        )
        .await;
    assert!(matches!(conflict, Err(ServiceError::IdempotencyConflict)));
    let acked = second
        .ticket_step(
            &Principal::Crew(crew),
            &created.ticket.id,
            TicketCommand::Acknowledge,
        )
        .await
        .unwrap();
    assert_eq!(acked.state, TicketState::Acknowledged);
}

#[tokio::test]
async fn a_crew_acts_only_on_its_own_job() {
    let clock = Arc::new(ManualClock::new(T0));
    let (dispatcher, report) = dispatcher(memory_store(), clock, 4).await;
    let created = dispatcher
        .create_ticket(&Principal::Agent, report, None)
        .await
        .unwrap();
    let other = dispatcher
        .crews()
        .await
        .unwrap()
        .into_iter()
        .find(|c| Some(&c.id) != created.ticket.crew.as_ref())
        .unwrap();
    let result = dispatcher
        .ticket_step(
            &Principal::Crew(other.id.clone()),
            &created.ticket.id,
            TicketCommand::Acknowledge,
        )
        .await;
    assert!(matches!(result, Err(ServiceError::Forbidden(_))));
    let read = dispatcher
        .ticket(&Principal::Crew(other.id), &created.ticket.id)
        .await;
    assert!(matches!(read, Err(ServiceError::Forbidden(_))));
}

/// A store whose appends fail after `healthy` of them: the dispatcher must stop writing.
#[derive(Debug)]
struct FailingStore {
    inner: EmbeddedStore,
    healthy: usize,
    appends: AtomicUsize,
    /// How appends after the healthy ones fail; `None`: they never answer.
    failure: Option<StoreError>,
}

impl FailingStore {
    /// The first `healthy` appends commit; the ones after fail as a failed fsync does.
    fn after(healthy: usize) -> Self {
        Self::failing_with(
            healthy,
            Some(StoreError::OutcomeUnknown("fsync failed".into())),
        )
    }

    fn failing_with(healthy: usize, failure: Option<StoreError>) -> Self {
        Self {
            inner: EmbeddedStore::in_memory().unwrap(),
            healthy,
            appends: AtomicUsize::new(0),
            failure,
        }
    }
}

impl Store for FailingStore {
    fn append(
        &self,
        batch: Batch,
        durability: Durability,
    ) -> BoxFuture<'static, Result<(), StoreError>> {
        if self.appends.fetch_add(1, Ordering::SeqCst) < self.healthy {
            return self.inner.append(batch, durability);
        }
        match &self.failure {
            Some(error) => futures_util::future::ready(Err(error.clone())).boxed(),
            None => futures_util::future::pending().boxed(),
        }
    }

    fn replay<'a>(
        &'a self,
        sink: &'a mut (dyn FnMut(Event) + Send),
    ) -> BoxFuture<'a, Result<Recovered, StoreError>> {
        self.inner.replay(sink)
    }

    fn timeline(&self, ticket: &TicketId) -> BoxFuture<'_, Result<Vec<Event>, StoreError>> {
        self.inner.timeline(ticket)
    }

    fn ping(&self) -> BoxFuture<'_, Result<(), StoreError>> {
        self.inner.ping()
    }

    fn close(&self) -> BoxFuture<'_, Result<(), StoreError>> {
        self.inner.close()
    }
}

#[tokio::test]
async fn after_a_failed_write_every_write_is_refused_and_the_service_is_not_ready() {
    let store = Arc::new(FailingStore::after(1));
    let clock = Arc::new(ManualClock::new(T0));
    let (dispatcher, report) = dispatcher(store, clock, 4).await;
    let ok = dispatcher
        .create_ticket(&Principal::Agent, report.clone(), None)
        .await
        .unwrap();
    assert!(dispatcher.ready().await);

    // A failed fsync may have written the batch: the answer must not say it did not.
    let failed = dispatcher
        .create_ticket(&Principal::Agent, report.clone(), None)
        .await;
    assert!(matches!(failed, Err(ServiceError::OutcomeUnknown)));
    assert!(!dispatcher.ready().await);
    let refused = dispatcher
        .create_ticket(&Principal::Agent, report, None)
        .await;
    assert!(matches!(refused, Err(ServiceError::Unavailable)));
    // Reads wait on the failed commit, so they do not show what the disk may lack.
    let read = dispatcher.ticket(&Principal::Agent, &ok.ticket.id).await;
    assert!(matches!(read, Err(ServiceError::Unavailable)));
}

/// What a failed write answers says whether it may have landed: a store that certainly wrote
/// nothing answers "unavailable", so the same request may be sent again; a commit that did
/// not answer within `write_timeout` may still land, so it answers "outcome unknown".
#[tokio::test]
async fn a_write_answers_whether_it_may_have_landed() {
    let refused = Some(StoreError::Unavailable("connection refused".into()));
    for (failure, unknown) in [(refused, false), (None, true)] {
        let store = Arc::new(FailingStore::failing_with(0, failure));
        let engine = engine(4);
        let report = report(&engine);
        let dispatcher = Dispatcher::recover(
            engine,
            store,
            TokenBook::default(),
            Arc::new(ManualClock::new(T0)),
            DispatcherOptions {
                write_timeout: Duration::from_millis(50),
                ..DispatcherOptions::default()
            },
        )
        .await
        .unwrap();
        let failed = dispatcher
            .create_ticket(&Principal::Agent, report, None)
            .await;
        if unknown {
            assert!(
                matches!(failed, Err(ServiceError::OutcomeUnknown)),
                "{failed:?}"
            );
        } else {
            assert!(
                matches!(failed, Err(ServiceError::Unavailable)),
                "{failed:?}"
            );
        }
        assert!(!dispatcher.ready().await);
    }
}

#[tokio::test]
async fn an_engine_error_writes_nothing() {
    let store = Arc::new(FailingStore::after(1));
    let clock = Arc::new(ManualClock::new(T0));
    let (dispatcher, report) = dispatcher(store.clone(), clock, 4).await;
    let created = dispatcher
        .create_ticket(&Principal::Agent, report, None)
        .await
        .unwrap();
    let crew = Principal::Crew(created.ticket.crew.clone().unwrap());
    // Out of order: arrive before acknowledging.
    let wrong = dispatcher
        .ticket_step(
            &crew,
            &created.ticket.id,
            TicketCommand::Arrive { location: None },
        )
        .await;
    assert!(matches!(
        wrong,
        Err(ServiceError::Engine(EngineError::Transition(_)))
    ));
    assert_eq!(store.appends.load(Ordering::SeqCst), 1);
    assert!(dispatcher.ready().await);
}

/// The first crew's position after two fixes: one `here` at `first`, then, the clock moved
/// on by `minutes`, one a little north at `second`. Returns (here, north, where the crew is).
async fn after_two_fixes(
    first: Timestamp,
    minutes: i64,
    second: Timestamp,
) -> (LatLon, LatLon, LatLon) {
    let clock = Arc::new(ManualClock::new(T0));
    let (dispatcher, report) = dispatcher(memory_store(), clock.clone(), 4).await;
    let crew = dispatcher.crews().await.unwrap()[0].id.clone();
    let who = Principal::Crew(crew.clone());
    let here = report.location;
    let north = LatLon::new(here.lat() + 0.01, here.lon()).unwrap();
    dispatcher
        .crew_position(&who, &crew, here, Some(first))
        .await
        .unwrap();
    clock.advance_minutes(minutes);
    dispatcher
        .crew_position(&who, &crew, north, Some(second))
        .await
        .unwrap();
    let crews = dispatcher.crews().await.unwrap();
    let now = crews.into_iter().find(|c| c.id == crew).unwrap();
    (here, north, now.position)
}

#[tokio::test]
async fn late_position_fixes_are_dropped() {
    let (here, _, now) = after_two_fixes(T0.plus_minutes(2), 0, T0.plus_minutes(1)).await;
    assert_eq!(now, here);
}

/// A phone whose clock runs a year ahead sends one fix; once its clock is set right, its
/// fixes are taken again (the far-future time counted as now, not kept as the last fix).
#[tokio::test]
async fn a_fix_from_a_clock_far_ahead_does_not_silence_the_crew() {
    let a_year_ahead = T0.plus_minutes(365 * 24 * 60);
    let (_, north, now) = after_two_fixes(a_year_ahead, 6, T0.plus_minutes(6)).await;
    assert_eq!(now, north);
}

/// A store that keeps everything in memory and answers at once on the caller's thread. Under
/// paused tokio time the runtime advances the clock whenever it is idle; with no writer
/// thread to wait for, it is idle only when the test itself waits, so deadlines fire exactly
/// when the test moves time.
#[derive(Debug, Default)]
struct SyncStore {
    log: std::sync::Mutex<(Vec<Event>, Vec<IdempotencyRecord>, Vec<CrewTokenRecord>)>,
    /// With a gate, the store takes backups, and each finishes when the gate lets it.
    backup_gate: Option<Arc<tokio::sync::Notify>>,
}

impl Store for SyncStore {
    fn append(
        &self,
        batch: Batch,
        _durability: Durability,
    ) -> BoxFuture<'static, Result<(), StoreError>> {
        let mut log = self.log.lock().unwrap();
        log.0.extend(batch.events);
        log.1.extend(batch.idempotency);
        log.2.extend(batch.crew_token);
        log.2
            .retain(|minted| !batch.revoked_crew_tokens.contains(minted));
        futures_util::future::ready(Ok(())).boxed()
    }

    fn replay<'a>(
        &'a self,
        sink: &'a mut (dyn FnMut(Event) + Send),
    ) -> BoxFuture<'a, Result<Recovered, StoreError>> {
        let (events, idempotency, crew_tokens) = self.log.lock().unwrap().clone();
        let count = events.len() as u64;
        for event in events {
            sink(event);
        }
        futures_util::future::ready(Ok(Recovered {
            events: count,
            last_seq: 0,
            idempotency,
            crew_tokens,
            positions: Vec::new(),
        }))
        .boxed()
    }

    fn timeline(&self, ticket: &TicketId) -> BoxFuture<'_, Result<Vec<Event>, StoreError>> {
        let events = self
            .log
            .lock()
            .unwrap()
            .0
            .iter()
            .filter(|e| e.kind.ticket() == Some(ticket))
            .cloned()
            .collect();
        futures_util::future::ready(Ok(events)).boxed()
    }

    fn ping(&self) -> BoxFuture<'_, Result<(), StoreError>> {
        futures_util::future::ready(Ok(())).boxed()
    }

    fn close(&self) -> BoxFuture<'_, Result<(), StoreError>> {
        futures_util::future::ready(Ok(())).boxed()
    }

    fn backup(
        &self,
        taken_at: Timestamp,
        _keep: u32,
    ) -> Option<BoxFuture<'_, Result<crate::store::Backup, StoreError>>> {
        let gate = self.backup_gate.clone()?;
        Some(
            async move {
                gate.notified().await;
                Ok(crate::store::Backup {
                    path: "backup.redb".into(),
                    events: 0,
                    bytes: 0,
                    taken_at,
                    removed: Vec::new(),
                })
            }
            .boxed(),
        )
    }
}

/// A backup asked for while another is being written is refused at once, not queued behind
/// it; once that one is done (or given up), the next may start.
#[tokio::test]
async fn a_backup_asked_for_while_one_is_written_is_refused() {
    let gate = Arc::new(tokio::sync::Notify::new());
    let store = Arc::new(SyncStore {
        backup_gate: Some(gate.clone()),
        ..SyncStore::default()
    });
    let (dispatcher, _) = dispatcher(store, Arc::new(ManualClock::new(T0)), 1).await;
    let dispatcher = Arc::new(dispatcher);
    let start = |dispatcher: &Arc<Dispatcher>| {
        let dispatcher = dispatcher.clone();
        tokio::spawn(async move { dispatcher.back_up_store().await })
    };
    let under_way = || async {
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
    };

    let first = start(&dispatcher);
    under_way().await;
    let second = tokio::time::timeout(Duration::from_secs(5), dispatcher.back_up_store())
        .await
        .expect("the second backup is answered at once, not queued");
    assert!(matches!(second, Err(ServiceError::BackupUnderWay)));
    gate.notify_one();
    assert!(first.await.unwrap().is_ok());

    // A backup whose request was dropped (its client went away) does not block the next.
    let abandoned = start(&dispatcher);
    under_way().await;
    abandoned.abort();
    assert!(abandoned.await.unwrap_err().is_cancelled());
    let next = start(&dispatcher);
    under_way().await;
    gate.notify_one();
    assert!(next.await.unwrap().is_ok());
}

/// A dispatcher on `store` with its deadline driver running.
async fn driven(
    store: Arc<dyn Store>,
    clock: Arc<ManualClock>,
) -> (Arc<Dispatcher>, FaultReport, tokio::task::JoinHandle<()>) {
    let (dispatcher, report) = dispatcher(store, clock, 4).await;
    let dispatcher = Arc::new(dispatcher);
    let driver = tokio::spawn(dispatcher.clone().drive_deadlines());
    settle().await;
    (dispatcher, report, driver)
}

/// Lets every task that can run, run: under paused time a sleep returns only once the
/// runtime is idle (the driver asleep again).
async fn settle() {
    tokio::time::sleep(Duration::from_millis(1)).await;
}

/// Moves the service's clock and tokio's paused clock together, then lets the driver act.
async fn pass(clock: &ManualClock, minutes: i64) {
    pass_millis(clock, minutes * 60_000).await;
}

async fn pass_millis(clock: &ManualClock, millis: i64) {
    clock.advance_millis(millis);
    tokio::time::advance(Duration::from_millis(millis as u64)).await;
    settle().await;
}

/// The SLA events of a timeline as `name:stage[:level‰]`.
fn sla_marks(timeline: &[Event]) -> Vec<String> {
    timeline
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::SlaWarning { stage, level, .. } => {
                Some(format!("warning:{}:{}", stage.as_str(), level.permille()))
            }
            EventKind::SlaBreached { stage, .. } => Some(format!("breach:{}", stage.as_str())),
            _ => None,
        })
        .collect()
}

async fn timeline(dispatcher: &Dispatcher, id: &TicketId) -> TicketWithTimeline {
    dispatcher.ticket(&Principal::Agent, id).await.unwrap()
}

async fn walk(dispatcher: &Dispatcher, id: &TicketId, steps: Vec<TicketCommand>) {
    let crew = timeline(dispatcher, id).await.ticket.crew.unwrap();
    for step in steps {
        dispatcher
            .ticket_step(&Principal::Crew(crew.clone()), id, step)
            .await
            .unwrap();
    }
}

/// An incident whose repeat call came from across a station's border counts whole under the
/// station of the ticket whose crew repairs it: the stations' reports add up to the region's.
#[tokio::test]
async fn an_incident_across_a_station_border_counts_under_its_first_reports_station() {
    use crate::reports::{ReliabilityConfig, Window};
    let clock = Arc::new(ManualClock::new(T0));
    let stations = engine(8).stations().to_vec();
    let (west, east) = (&stations[0], &stations[1]);
    assert_eq!(
        west.location.lat(),
        east.location.lat(),
        "neighbours on one row"
    );
    let border = (west.location.lon() + east.location.lon()) / 2.0;
    let (dispatcher, mut report) = dispatcher(memory_store(), clock.clone(), 8).await;
    report.category = FaultCategory::NoPower;
    let create = |lon: f64, phone: &str| {
        let mut call = report.clone();
        call.location = LatLon::new(west.location.lat(), lon).unwrap();
        call.caller.phone = phone.into();
        let dispatcher = &dispatcher;
        async move {
            dispatcher
                .create_ticket(&Principal::Agent, call, None)
                .await
                .unwrap()
                .ticket
        }
    };
    // About 50 m either side of the border: one fault, two stations.
    let first = create(border - 0.0005, "13900000001").await;
    let repeat = create(border + 0.0005, "13900000002").await;
    assert_eq!((&first.station, &repeat.station), (&west.id, &east.id));
    assert_eq!(repeat.state, TicketState::Merged);
    clock.advance_minutes(10);
    walk(
        &dispatcher,
        &first.id,
        vec![
            TicketCommand::Acknowledge,
            TicketCommand::Depart,
            TicketCommand::Arrive { location: None },
            TicketCommand::Restore { cause: None },
        ],
    )
    .await;
    let window = Window::new(T0, Timestamp::from_millis(T0.as_millis() + 86_400_000)).unwrap();
    let interrupted = |station: Option<StationId>| {
        let dispatcher = &dispatcher;
        async move {
            dispatcher
                .reliability(window, station.as_ref(), &ReliabilityConfig::default())
                .await
                .unwrap()
                .customers_interrupted
        }
    };
    assert_eq!(interrupted(None).await, 2);
    assert_eq!(interrupted(Some(west.id.clone())).await, 2);
    assert_eq!(interrupted(Some(east.id.clone())).await, 0);
}

fn order() -> WorkOrderReturn {
    WorkOrderReturn {
        fault_class: FaultClass::LowVoltage,
        cause: "fuse".into(),
        ownership: Ownership::Utility,
        resolution: None,
        outage_cause: crate::domain::OutageCause::Fault,
    }
}

#[tokio::test(start_paused = true)]
async fn the_driver_sends_a_missed_job_to_the_next_crew_without_being_called() {
    let clock = Arc::new(ManualClock::new(T0));
    let (dispatcher, report, _driver) = driven(Arc::new(SyncStore::default()), clock.clone()).await;
    let created = dispatcher
        .create_ticket(&Principal::Agent, report, None)
        .await
        .unwrap();
    let first = created.ticket.crew.clone().unwrap();
    assert_eq!(
        dispatcher.next_deadline().unwrap(),
        Some(Timestamp::from_millis(T0.as_millis() + 150_001)),
        "the driver wakes just past the acknowledgement's 50 % warning"
    );

    pass(&clock, 3).await;
    let early = timeline(&dispatcher, &created.ticket.id).await;
    assert_eq!(sla_marks(&early.timeline), ["warning:acknowledge:500"]);
    assert_eq!(early.ticket.crew.as_ref(), Some(&first));

    pass(&clock, 2).await;
    pass_millis(&clock, 1).await;
    let after = timeline(&dispatcher, &created.ticket.id).await;
    assert_eq!(after.ticket.state, TicketState::Dispatched);
    assert_ne!(after.ticket.crew.as_ref(), Some(&first));
    let names: Vec<_> = after.timeline.iter().map(|e| e.kind.name()).collect();
    assert_eq!(
        names,
        [
            "reported",
            "dispatched",
            "sla_warning",
            "sla_warning",
            "sla_breached",
            "declined",
            "dispatched"
        ],
    );
    let crews = dispatcher.crews().await.unwrap();
    let late = crews.iter().find(|c| c.id == first).unwrap();
    assert_eq!(late.status, CrewStatus::Unresponsive);
    // The second crew's clock started at the re-dispatch: warned, breached and handed on
    // in its turn, each of its marks once.
    pass(&clock, 5).await;
    pass_millis(&clock, 1).await;
    let again = timeline(&dispatcher, &created.ticket.id).await;
    let declines = again
        .timeline
        .iter()
        .filter(|e| matches!(e.kind, EventKind::Declined { .. }))
        .count();
    assert_eq!(declines, 2);
    let marks = sla_marks(&again.timeline);
    let clock_marks = [
        "warning:acknowledge:500",
        "warning:acknowledge:800",
        "breach:acknowledge",
    ];
    assert_eq!(marks, [clock_marks, clock_marks].concat());
}

/// Acknowledged at once, departed, then left: the arrival clock warns and breaches; after
/// a late arrival the restoration clock does.
async fn a_late_job(steps: &[i64]) -> Vec<String> {
    let clock = Arc::new(ManualClock::new(T0));
    let (dispatcher, report, _driver) = driven(Arc::new(SyncStore::default()), clock.clone()).await;
    let id = dispatcher
        .create_ticket(&Principal::Agent, report, None)
        .await
        .unwrap()
        .ticket
        .id;
    walk(
        &dispatcher,
        &id,
        vec![TicketCommand::Acknowledge, TicketCommand::Depart],
    )
    .await;
    for &minutes in steps {
        pass(&clock, minutes).await;
    }
    walk(
        &dispatcher,
        &id,
        vec![TicketCommand::Arrive { location: None }],
    )
    .await;
    for &minutes in steps {
        pass(&clock, minutes * 2).await;
    }
    sla_marks(&timeline(&dispatcher, &id).await.timeline)
}

#[tokio::test(start_paused = true)]
async fn warnings_and_breaches_fire_once_whether_time_jumps_or_creeps() {
    let jump = a_late_job(&[150]).await;
    let creep = a_late_job(&[1; 150]).await;
    assert_eq!(jump, creep);
    assert_eq!(
        jump,
        [
            "warning:arrive:500",
            "warning:arrive:800",
            "breach:arrive",
            "warning:restore:500",
            "warning:restore:800",
            "breach:restore"
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn an_arrival_in_time_drops_the_pending_arrival_checkpoints() {
    let clock = Arc::new(ManualClock::new(T0));
    let (dispatcher, report, _driver) = driven(Arc::new(SyncStore::default()), clock.clone()).await;
    let id = dispatcher
        .create_ticket(&Principal::Agent, report, None)
        .await
        .unwrap()
        .ticket
        .id;
    walk(
        &dispatcher,
        &id,
        vec![
            TicketCommand::Acknowledge,
            TicketCommand::Depart,
            TicketCommand::Arrive { location: None },
        ],
    )
    .await;
    {
        let inner = dispatcher.inner.lock().unwrap();
        let stages: Vec<_> = inner
            .engine
            .pending_checkpoints(&id)
            .iter()
            .map(|c| c.stage)
            .collect();
        assert!(stages.iter().all(|s| *s == SlaStage::Restore), "{stages:?}");
        assert_eq!(stages.len(), 3);
    }
    walk(
        &dispatcher,
        &id,
        vec![
            TicketCommand::Restore { cause: None },
            TicketCommand::Return(order()),
        ],
    )
    .await;
    assert_eq!(dispatcher.next_deadline().unwrap(), None);
    pass(&clock, 24 * 60).await;
    assert!(sla_marks(&timeline(&dispatcher, &id).await.timeline).is_empty());
}

#[tokio::test(start_paused = true)]
async fn deadlines_passed_while_down_fire_once_after_a_restart() {
    let store: Arc<dyn Store> = Arc::new(SyncStore::default());
    let clock = Arc::new(ManualClock::new(T0));
    let (first, report, driver) = driven(store.clone(), clock.clone()).await;
    let created = first
        .create_ticket(&Principal::Agent, report, None)
        .await
        .unwrap();
    let missed = created.ticket.crew.clone().unwrap();
    pass(&clock, 3).await;
    assert_eq!(
        sla_marks(&timeline(&first, &created.ticket.id).await.timeline),
        ["warning:acknowledge:500"]
    );
    driver.abort();
    drop(first);

    // Down for three hours: every arrival checkpoint and the acknowledgement timeout passed.
    clock.advance_minutes(180);
    let (second, _, driver) = driven(store.clone(), clock.clone()).await;
    let after = timeline(&second, &created.ticket.id).await;
    let marks = sla_marks(&after.timeline);
    assert_eq!(
        marks,
        [
            "warning:acknowledge:500",
            "warning:acknowledge:800",
            "breach:acknowledge",
            "warning:arrive:500",
            "warning:arrive:800",
            "breach:arrive"
        ]
    );
    assert_eq!(after.ticket.state, TicketState::Dispatched);
    assert_ne!(after.ticket.crew.as_ref(), Some(&missed));
    let crews = second.crews().await.unwrap();
    let late = crews.iter().find(|c| c.id == missed).unwrap();
    assert_eq!(late.status, CrewStatus::Unresponsive);
    driver.abort();
    drop(second);

    // Another restart at once: what fired is known, nothing fires again.
    let (third, _, _driver) = driven(store, clock).await;
    assert_eq!(
        third.fire_deadlines().await.unwrap(),
        FiredDeadlines::default()
    );
    let again = timeline(&third, &created.ticket.id).await;
    assert_eq!(sla_marks(&again.timeline), marks);
    assert_eq!(again.timeline.len(), after.timeline.len());
}

#[tokio::test(start_paused = true)]
async fn waiting_tickets_go_by_priority_when_a_crew_comes_on_duty_or_returns_an_order() {
    let clock = Arc::new(ManualClock::new(T0));
    let (dispatcher, normal, _) = driven(Arc::new(SyncStore::default()), clock.clone()).await;
    let skill = normal.category.required_skill();
    let crews = dispatcher.crews().await.unwrap();
    for crew in &crews {
        dispatcher
            .crew_duty(&Principal::Supervisor, &crew.id, false)
            .await
            .unwrap();
    }
    let first = dispatcher
        .create_ticket(&Principal::Agent, normal.clone(), None)
        .await
        .unwrap()
        .ticket;
    clock.advance_minutes(1);
    let emergency = FaultReport {
        priority: Priority::Emergency,
        ..normal
    };
    let second = dispatcher
        .create_ticket(&Principal::Agent, emergency, None)
        .await
        .unwrap()
        .ticket;
    assert_eq!(first.state, TicketState::Queued);
    assert_eq!(second.state, TicketState::Queued);

    let crew = crews
        .iter()
        .find(|c| c.skills.contains(skill))
        .expect("a crew with the skill");
    dispatcher
        .crew_duty(&Principal::Supervisor, &crew.id, true)
        .await
        .unwrap();
    let served = timeline(&dispatcher, &second.id).await.ticket;
    assert_eq!(
        served.state,
        TicketState::Dispatched,
        "the emergency goes first"
    );
    assert_eq!(served.crew.as_ref(), Some(&crew.id));
    assert_eq!(
        timeline(&dispatcher, &first.id).await.ticket.state,
        TicketState::Queued
    );

    walk(
        &dispatcher,
        &second.id,
        vec![
            TicketCommand::Acknowledge,
            TicketCommand::Depart,
            TicketCommand::Arrive { location: None },
            TicketCommand::Restore { cause: None },
            TicketCommand::Return(order()),
        ],
    )
    .await;
    let next = timeline(&dispatcher, &first.id).await.ticket;
    assert_eq!(
        next.state,
        TicketState::Dispatched,
        "served when the order came back"
    );
    assert_eq!(next.crew.as_ref(), Some(&crew.id));
}

#[tokio::test(start_paused = true)]
async fn a_write_with_an_earlier_deadline_wakes_the_sleeping_driver() {
    let clock = Arc::new(ManualClock::new(T0));
    let (mut dispatcher, report) =
        dispatcher(Arc::new(SyncStore::default()), clock.clone(), 4).await;
    // No periodic re-check: only the wake-up can bring the driver to the new deadline.
    dispatcher.deadline_recheck = Duration::from_secs(365 * 24 * 3600);
    let dispatcher = Arc::new(dispatcher);
    let _driver = tokio::spawn(dispatcher.clone().drive_deadlines());
    let first = dispatcher
        .create_ticket(&Principal::Agent, report.clone(), None)
        .await
        .unwrap()
        .ticket
        .id;
    walk(&dispatcher, &first, vec![TicketCommand::Acknowledge]).await;
    settle().await;
    // The driver now sleeps until the first ticket's arrival warning, many minutes away.
    let later = dispatcher.next_deadline().unwrap().unwrap();
    assert!(later >= T0.plus_minutes(20), "{later:?}");

    let second = dispatcher
        .create_ticket(&Principal::Agent, report, None)
        .await
        .unwrap()
        .ticket
        .id;
    pass(&clock, 3).await;
    assert_eq!(
        sla_marks(&timeline(&dispatcher, &second).await.timeline),
        ["warning:acknowledge:500"]
    );
}

/// The backup gauge reads the newest backup the store's directory holds, so a restart does
/// not look like backups stopping, and each backup written moves it on.
#[tokio::test]
async fn the_newest_backup_is_known_from_start_and_after_each_backup() {
    let dir = tempfile::tempdir().unwrap();
    let backups = dir.path().join("backups");
    std::fs::create_dir_all(&backups).unwrap();
    for name in [
        "dispatch-20250614T020000Z.redb",
        "dispatch-20250615T020000Z.redb",
        "dispatch-20250615T020000Z-2.redb",
        "operator-copy-20300101T000000Z.redb",
    ] {
        std::fs::write(backups.join(name), b"x").unwrap();
    }
    let store: Arc<dyn Store> = Arc::new(EmbeddedStore::open(dir.path()).unwrap());
    let clock = Arc::new(ManualClock::new(T0));
    let (service, _) = dispatcher(store, clock.clone(), 2).await;
    // 2025-06-15T02:00:00Z: the newest backup's name; not the operator's own file.
    let at_start = 1_749_952_800.0;
    assert_eq!(
        service.gauges().unwrap().last_backup_seconds,
        Some(at_start)
    );

    let backup = service.back_up_store().await.unwrap();
    assert_eq!(backup.taken_at, T0);
    assert_eq!(
        service.gauges().unwrap().last_backup_seconds,
        Some(T0.as_millis() as f64 / 1000.0)
    );

    // A store with no file of its own has no backups at all.
    let (fresh, _) = dispatcher(memory_store(), clock, 2).await;
    assert_eq!(fresh.gauges().unwrap().last_backup_seconds, None);
}

/// A crew's position fix, as its phone sends it.
async fn ping(dispatcher: &Dispatcher, crew: &CrewId, at: LatLon) {
    let who = Principal::Crew(crew.clone());
    dispatcher
        .crew_position(&who, crew, at, None)
        .await
        .unwrap();
}

/// A crew's fixes are not logged one by one on the embedded store: only each crew's latest
/// is kept, so a day of pings does not fill the log. After a restart every crew is where
/// its last fix put it; a fix that brought an unresponsive crew back is logged, so that
/// crew is back after the restart too, while one whose last fix came before it stopped
/// answering stays unresponsive.
#[tokio::test]
async fn crew_fixes_survive_a_restart_without_filling_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(T0));
    let open = || -> Arc<dyn Store> { Arc::new(EmbeddedStore::open(dir.path()).unwrap()) };
    let near =
        |base: LatLon, i: u32| LatLon::new(base.lat() + f64::from(i) * 1e-4, base.lon()).unwrap();
    let (back, silent, answering, base) = {
        let store = open();
        let (dispatcher, report) = dispatcher(store.clone(), clock.clone(), 4).await;
        let base = report.location;
        let created = dispatcher
            .create_ticket(&Principal::Agent, report, None)
            .await
            .unwrap();
        let back = created.ticket.crew.clone().unwrap();
        clock.advance_minutes(5);
        clock.advance_millis(1);
        assert_eq!(dispatcher.fire_deadlines().await.unwrap().timeouts, 1);
        // The next crew sends fixes, then stops answering too.
        let silent = dispatcher
            .ticket(&Principal::Agent, &created.ticket.id)
            .await
            .unwrap()
            .ticket
            .crew
            .unwrap();
        for i in 1..=3 {
            ping(&dispatcher, &silent, near(base, 100 + i)).await;
        }
        clock.advance_minutes(5);
        clock.advance_millis(1);
        assert_eq!(dispatcher.fire_deadlines().await.unwrap().timeouts, 1);
        let crews = dispatcher.crews().await.unwrap();
        let answering = crews
            .iter()
            .find(|c| c.id != back && c.id != silent)
            .unwrap()
            .id
            .clone();
        for i in 1..=50 {
            ping(&dispatcher, &answering, near(base, i)).await;
        }
        // The first crew's phone is heard from again: it is back.
        ping(&dispatcher, &back, near(base, 99)).await;
        drop(dispatcher);
        store.close().await.unwrap();
        (back, silent, answering, base)
    };

    let store = open();
    let (events, _) = crate::store::conformance::replay_all(store.as_ref()).await;
    let logged_fixes = events
        .iter()
        .filter(|e| matches!(e.kind, EventKind::CrewPosition { .. }))
        .count();
    assert_eq!(
        logged_fixes, 1,
        "only the fix that brought a crew back is logged"
    );
    let (dispatcher, _) = dispatcher(store, clock, 4).await;
    let crews = dispatcher.crews().await.unwrap();
    let crew = |id: &CrewId| crews.iter().find(|c| &c.id == id).unwrap().clone();
    assert_eq!(crew(&answering).position, near(base, 50));
    assert_eq!(crew(&back).position, near(base, 99));
    assert_ne!(crew(&back).status, CrewStatus::Unresponsive);
    assert_eq!(crew(&silent).position, near(base, 103));
    assert_eq!(crew(&silent).status, CrewStatus::Unresponsive);
}
