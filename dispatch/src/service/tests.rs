//! Unit tests of the dispatcher: deadlines with a manual clock, recovery by replay, and what
//! happens when the store fails. The HTTP suite in `tests/api.rs` covers the rest.

use super::*;
use crate::domain::{Caller, FaultCategory, Priority};
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
    assert_eq!(dispatcher.expire_acknowledgements().await.unwrap(), 0);

    clock.advance_minutes(1);
    assert_eq!(dispatcher.expire_acknowledgements().await.unwrap(), 1);
    let after = dispatcher
        .ticket(&Principal::Agent, &created.ticket.id)
        .await
        .unwrap();
    assert_eq!(after.ticket.state, TicketState::Dispatched);
    let second = after.ticket.crew.clone().unwrap();
    assert_ne!(second, first);
    let names: Vec<_> = after.timeline.iter().map(|e| e.kind.name()).collect();
    assert_eq!(
        names,
        ["reported", "dispatched", "declined", "dispatched"],
        "{names:?}"
    );
    // The second crew's own clock started at the re-dispatch.
    clock.advance_minutes(4);
    assert_eq!(dispatcher.expire_acknowledgements().await.unwrap(), 0);
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
    assert_eq!(dispatcher.expire_acknowledgements().await.unwrap(), 0);
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
}

impl Store for FailingStore {
    fn append(
        &self,
        batch: Batch,
        durability: Durability,
    ) -> BoxFuture<'static, Result<(), StoreError>> {
        if self.appends.fetch_add(1, Ordering::SeqCst) < self.healthy {
            self.inner.append(batch, durability)
        } else {
            futures_util::future::ready(Err(StoreError::OutcomeUnknown("fsync failed".into())))
                .boxed()
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
    let store = Arc::new(FailingStore {
        inner: EmbeddedStore::in_memory().unwrap(),
        healthy: 1,
        appends: AtomicUsize::new(0),
    });
    let clock = Arc::new(ManualClock::new(T0));
    let (dispatcher, report) = dispatcher(store, clock, 4).await;
    let ok = dispatcher
        .create_ticket(&Principal::Agent, report.clone(), None)
        .await
        .unwrap();
    assert!(dispatcher.ready().await);

    let failed = dispatcher
        .create_ticket(&Principal::Agent, report.clone(), None)
        .await;
    assert!(matches!(failed, Err(ServiceError::Unavailable)));
    assert!(!dispatcher.ready().await);
    let refused = dispatcher
        .create_ticket(&Principal::Agent, report, None)
        .await;
    assert!(matches!(refused, Err(ServiceError::Unavailable)));
    // Reads wait on the failed commit, so they do not show what the disk may lack.
    let read = dispatcher.ticket(&Principal::Agent, &ok.ticket.id).await;
    assert!(matches!(read, Err(ServiceError::Unavailable)));
}

#[tokio::test]
async fn an_engine_error_writes_nothing() {
    let store = Arc::new(FailingStore {
        inner: EmbeddedStore::in_memory().unwrap(),
        healthy: 1,
        appends: AtomicUsize::new(0),
    });
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

#[tokio::test]
async fn late_position_fixes_are_dropped() {
    let clock = Arc::new(ManualClock::new(T0));
    let (dispatcher, report) = dispatcher(memory_store(), clock, 4).await;
    let crew = dispatcher.crews().await.unwrap()[0].clone();
    let who = Principal::Crew(crew.id.clone());
    let here = report.location;
    dispatcher
        .crew_position(&who, &crew.id, here, Some(T0.plus_minutes(2)))
        .await
        .unwrap();
    let elsewhere = LatLon::new(here.lat() + 0.01, here.lon()).unwrap();
    dispatcher
        .crew_position(&who, &crew.id, elsewhere, Some(T0.plus_minutes(1)))
        .await
        .unwrap();
    let now = dispatcher
        .crews()
        .await
        .unwrap()
        .into_iter()
        .find(|c| c.id == crew.id)
        .unwrap();
    assert_eq!(now.position, here);
}
