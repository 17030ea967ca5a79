//! The contract of [`Store`], as tests written once and run against every backend:
//! [`store_conformance_tests!`](crate::store_conformance_tests) stamps out one tokio test per
//! property for a [`Backend`]. Test support, public so integration tests can reach it; a
//! broken property panics, as an assertion does.

use super::{Batch, CrewTokenRecord, Durability, IdempotencyRecord, Recovered, Store};
use crate::domain::{
    Actor, AreaClass, Callback, Caller, CrewId, DeclineReason, Event, EventKind, FaultCategory,
    FaultClass, FaultReport, IncidentId, LatLon, Ownership, Priority, SlaStage, StationId,
    StormReason, TicketId, Timestamp, WarnLevel, WorkOrderReturn,
};
use std::future::Future;
use std::sync::Arc;

/// How the suite gets stores of one backend.
pub trait Backend: Send + Sync + 'static {
    type Store: Store;
    /// Where one store's data lives (a directory, a key prefix). Dropping it may delete it.
    type Location: Send + Sync;

    /// New, empty storage.
    fn location(&self) -> Self::Location;

    /// Opens the store at `location`. Opening it again after the first store is dropped must
    /// see everything the first one committed: that is a restart.
    fn open(&self, location: &Self::Location) -> impl Future<Output = Self::Store> + Send;
}

/// One `#[tokio::test]` per property of the store contract, for the backend `$backend` (an
/// expression evaluated afresh in each test). Use it once per backend, in a test file.
#[macro_export]
macro_rules! store_conformance_tests {
    ($backend:expr) => {
        $crate::store_conformance_tests!(@each $backend;
            empty_store_replays_nothing,
            open_store_answers_ping,
            every_kind_of_event_comes_back_equal,
            replay_keeps_call_order_across_concurrent_appends,
            append_is_enqueued_when_called_not_when_awaited,
            readers_never_see_part_of_a_batch,
            timeline_holds_one_tickets_events_oldest_first,
            records_come_back_in_replay,
            acknowledged_batches_survive_reopen,
            close_commits_lazy_batches_and_refuses_appends,
            each_crews_latest_position_comes_back,
        );
    };
    (@each $backend:expr; $($property:ident),+ $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $property() {
                $crate::store::conformance::$property(&$backend).await;
            }
        )+
    };
}

/// Every property in turn, on one backend.
pub async fn run_all<B: Backend>(backend: &B) {
    empty_store_replays_nothing(backend).await;
    open_store_answers_ping(backend).await;
    every_kind_of_event_comes_back_equal(backend).await;
    replay_keeps_call_order_across_concurrent_appends(backend).await;
    append_is_enqueued_when_called_not_when_awaited(backend).await;
    readers_never_see_part_of_a_batch(backend).await;
    timeline_holds_one_tickets_events_oldest_first(backend).await;
    records_come_back_in_replay(backend).await;
    acknowledged_batches_survive_reopen(backend).await;
    close_commits_lazy_batches_and_refuses_appends(backend).await;
    each_crews_latest_position_comes_back(backend).await;
}

pub async fn empty_store_replays_nothing<B: Backend>(backend: &B) {
    let store = backend.open(&backend.location()).await;
    let (events, recovered) = replay_all(&store).await;
    assert!(events.is_empty(), "a new store replayed {events:?}");
    assert_eq!(recovered, Recovered::default());
    let timeline = store
        .timeline(&TicketId::new("T-unknown"))
        .await
        .expect("timeline of an unknown ticket");
    assert!(timeline.is_empty());
}

pub async fn open_store_answers_ping<B: Backend>(backend: &B) {
    let store = backend.open(&backend.location()).await;
    store.ping().await.expect("ping of an open store");
}

pub async fn every_kind_of_event_comes_back_equal<B: Backend>(backend: &B) {
    let store = backend.open(&backend.location()).await;
    let events = every_kind_of_event();
    store
        .append(events_batch(events.clone()), Durability::Durable)
        .await
        .expect("append");
    let (replayed, recovered) = replay_all(&store).await;
    assert_eq!(replayed, events);
    assert_eq!(recovered.events, events.len() as u64);
}

/// Many tasks append the way the service does: each takes the engine's lock, calls
/// `append` under it, releases it and only then awaits. Replay gives the call order.
pub async fn replay_keeps_call_order_across_concurrent_appends<B: Backend>(backend: &B) {
    const TASKS: u64 = 16;
    const APPENDS_PER_TASK: u64 = 40;
    let store = Arc::new(backend.open(&backend.location()).await);
    let engine_lock = Arc::new(tokio::sync::Mutex::new(0u64));
    let mut tasks = Vec::new();
    for _ in 0..TASKS {
        let store = Arc::clone(&store);
        let engine_lock = Arc::clone(&engine_lock);
        tasks.push(tokio::spawn(async move {
            for _ in 0..APPENDS_PER_TASK {
                let pending = {
                    let mut next = engine_lock.lock().await;
                    let n = *next;
                    *next += 1;
                    // Every fifth decision is a crew position ping, appended lazily.
                    let durability = if n % 5 == 4 {
                        Durability::Lazy
                    } else {
                        Durability::Durable
                    };
                    store.append(numbered_batch(n), durability)
                };
                pending.await.expect("append");
            }
        }));
    }
    for task in tasks {
        task.await.expect("appending task");
    }
    let appends = TASKS * APPENDS_PER_TASK;
    barrier(&*store, appends).await;
    let (events, _) = replay_all(&*store).await;
    let expected: Vec<Event> = (0..=appends)
        .flat_map(|n| numbered_batch(n).events)
        .collect();
    assert_eq!(events.len(), expected.len());
    for (i, (got, want)) in events.iter().zip(&expected).enumerate() {
        assert_eq!(got, want, "event {i} is out of call order");
    }
}

/// The contract's first rule: the batch is queued by the call itself, so a caller that
/// never awaits (or is cancelled) still has it written, in order.
pub async fn append_is_enqueued_when_called_not_when_awaited<B: Backend>(backend: &B) {
    let store = backend.open(&backend.location()).await;
    let never_awaited = store.append(numbered_batch(0), Durability::Durable);
    let awaited_first = store.append(numbered_batch(1), Durability::Durable);
    drop(never_awaited);
    awaited_first.await.expect("append");
    let (events, _) = replay_all(&store).await;
    let expected: Vec<Event> = (0..2).flat_map(|n| numbered_batch(n).events).collect();
    assert_eq!(events, expected);
}

/// A batch is all or nothing: a reader racing the writer sees whole batches only, their
/// events, idempotency record and crew token together.
pub async fn readers_never_see_part_of_a_batch<B: Backend>(backend: &B) {
    const BATCHES: u64 = 60;
    const EVENTS_PER_BATCH: u64 = 5;
    let store = Arc::new(backend.open(&backend.location()).await);
    let writer = {
        let store = Arc::clone(&store);
        tokio::spawn(async move {
            let mut pending = Vec::new();
            for k in 0..BATCHES {
                let ticket = format!("T-{k}");
                let events = (0..EVENTS_PER_BATCH)
                    .map(|i| queued(k * 10 + i, &ticket))
                    .collect();
                let batch = Batch {
                    events,
                    idempotency: Some(idempotency_record(&format!("key-{k}"), &ticket)),
                    crew_token: Some(crew_token_record(k, &format!("C-{k}"))),
                    revoked_crew_tokens: Vec::new(),
                    supersedable_position: false,
                };
                pending.push(store.append(batch, Durability::Durable));
                if k % 4 == 3 {
                    for append in pending.drain(..) {
                        append.await.expect("append");
                    }
                }
            }
            for append in pending {
                append.await.expect("append");
            }
        })
    };
    let mut looks = 0;
    loop {
        let finished = writer.is_finished();
        let (events, recovered) = replay_all(&*store).await;
        let batches = events.len() as u64 / EVENTS_PER_BATCH;
        assert_eq!(events.len() as u64 % EVENTS_PER_BATCH, 0, "part of a batch");
        assert_eq!(recovered.idempotency.len() as u64, batches);
        assert_eq!(recovered.crew_tokens.len() as u64, batches);
        let middle = format!("T-{}", BATCHES / 2);
        let timeline = store
            .timeline(&TicketId::new(middle))
            .await
            .expect("timeline");
        assert!(
            timeline.is_empty() || timeline.len() as u64 == EVENTS_PER_BATCH,
            "a timeline with part of a batch: {timeline:?}"
        );
        looks += 1;
        if finished {
            assert_eq!(batches, BATCHES);
            break;
        }
        tokio::task::yield_now().await;
    }
    writer.await.expect("writer task");
    assert!(looks >= 1);
}

pub async fn timeline_holds_one_tickets_events_oldest_first<B: Backend>(backend: &B) {
    let store = backend.open(&backend.location()).await;
    // "T1" is a prefix of "T10": an index keyed by text alone would mix them.
    let plan = [
        ("T1", 1),
        ("T10", 2),
        ("", 3),
        ("T1", 4),
        ("T2", 5),
        ("T10", 6),
        ("T1", 7),
        ("", 8),
        ("T1", 9),
    ];
    let event_for = |(ticket, at): (&str, u64)| {
        if ticket.is_empty() {
            crew_position(at)
        } else {
            acknowledged(at, ticket)
        }
    };
    let events: Vec<Event> = plan.iter().copied().map(event_for).collect();
    // In three batches, so the timeline spans commits.
    for chunk in events.chunks(4) {
        store
            .append(events_batch(chunk.to_vec()), Durability::Durable)
            .await
            .expect("append");
    }
    for ticket in ["T1", "T10", "T2"] {
        let want: Vec<Event> = plan
            .iter()
            .copied()
            .filter(|(t, _)| *t == ticket)
            .map(event_for)
            .collect();
        let got = store
            .timeline(&TicketId::new(ticket))
            .await
            .expect("timeline");
        assert_eq!(got, want, "timeline of {ticket}");
    }
    let none = store
        .timeline(&TicketId::new("T3"))
        .await
        .expect("timeline");
    assert!(none.is_empty());
}

pub async fn records_come_back_in_replay<B: Backend>(backend: &B) {
    let store = backend.open(&backend.location()).await;
    let keys = [("key-b", "T-2"), ("key-a", "T-1"), ("key-c", "T-3")];
    for (key, ticket) in keys {
        let batch = Batch {
            events: vec![queued(0, ticket)],
            idempotency: Some(idempotency_record(key, ticket)),
            ..Batch::default()
        };
        store
            .append(batch, Durability::Durable)
            .await
            .expect("append");
    }
    // A token minted by an admin is a batch without events.
    for (n, crew) in [(7, "C-7"), (3, "C-3"), (5, "C-7")] {
        let batch = Batch {
            crew_token: Some(crew_token_record(n, crew)),
            ..Batch::default()
        };
        store
            .append(batch, Durability::Durable)
            .await
            .expect("append");
    }
    // A revocation withdraws tokens minted before it, in the same log, whatever else the
    // batch holds; a later mint for the same crew stands.
    let revocation = Batch {
        events: vec![queued(1, "T-1")],
        revoked_crew_tokens: vec![crew_token_record(7, "C-7"), crew_token_record(5, "C-7")],
        ..Batch::default()
    };
    store
        .append(revocation, Durability::Durable)
        .await
        .expect("append");
    let batch = Batch {
        crew_token: Some(crew_token_record(9, "C-7")),
        ..Batch::default()
    };
    store
        .append(batch, Durability::Durable)
        .await
        .expect("append");
    let (events, recovered) = replay_all(&store).await;
    assert_eq!(events.len(), 4);
    let mut idempotency = recovered.idempotency;
    idempotency.sort_by(|a, b| a.key.cmp(&b.key));
    let mut want: Vec<IdempotencyRecord> = keys
        .iter()
        .map(|(key, ticket)| idempotency_record(key, ticket))
        .collect();
    want.sort_by(|a, b| a.key.cmp(&b.key));
    assert_eq!(idempotency, want);
    let mut tokens = recovered.crew_tokens;
    tokens.sort_by_key(|t| t.token_sha256);
    let mut want = vec![crew_token_record(3, "C-3"), crew_token_record(9, "C-7")];
    want.sort_by_key(|t| t.token_sha256);
    assert_eq!(tokens, want);
}

/// Everything acknowledged durable is there after the store is dropped and reopened, and
/// new events follow the old ones.
pub async fn acknowledged_batches_survive_reopen<B: Backend>(backend: &B) {
    let location = backend.location();
    let first = Batch {
        events: vec![reported(1, "T-1"), acknowledged(2, "T-1")],
        idempotency: Some(idempotency_record("key-1", "T-1")),
        crew_token: Some(crew_token_record(1, "C-1")),
        revoked_crew_tokens: Vec::new(),
        supersedable_position: false,
    };
    let lazy = events_batch(vec![crew_position(3)]);
    let last = events_batch(vec![acknowledged(4, "T-2")]);
    {
        let store = backend.open(&location).await;
        store
            .append(first.clone(), Durability::Durable)
            .await
            .expect("append");
        store
            .append(lazy.clone(), Durability::Lazy)
            .await
            .expect("lazy append");
        // Durable after the lazy one: the lazy one is committed no later than this.
        store
            .append(last.clone(), Durability::Durable)
            .await
            .expect("append");
    }
    let store = backend.open(&location).await;
    let (events, recovered) = replay_all(&store).await;
    let mut want: Vec<Event> = [&first, &lazy, &last]
        .iter()
        .flat_map(|b| b.events.clone())
        .collect();
    assert_eq!(events, want);
    assert_eq!(
        recovered.idempotency,
        vec![idempotency_record("key-1", "T-1")]
    );
    assert_eq!(recovered.crew_tokens, vec![crew_token_record(1, "C-1")]);
    let after = events_batch(vec![departed(5, "T-1")]);
    store
        .append(after.clone(), Durability::Durable)
        .await
        .expect("append after reopen");
    want.extend(after.events.clone());
    let (events, _) = replay_all(&store).await;
    assert_eq!(events, want);
    let timeline = store
        .timeline(&TicketId::new("T-1"))
        .await
        .expect("timeline");
    assert_eq!(
        timeline,
        vec![
            reported(1, "T-1"),
            acknowledged(2, "T-1"),
            departed(5, "T-1")
        ]
    );
}

/// Each crew's latest position comes back after a reopen, however the store keeps the
/// supersedable fixes (logged like any event, or only each crew's latest, apart from the
/// log): the service sets what `Recovered::positions` holds after the replay, so that must
/// be the latest fix, and a fix logged after a kept one must win over it.
pub async fn each_crews_latest_position_comes_back<B: Backend>(backend: &B) {
    let location = backend.location();
    let fix = |crew: &str, at: u64| Batch {
        events: vec![crew_position_of(crew, at)],
        supersedable_position: true,
        ..Batch::default()
    };
    // C-1: kept fixes, a logged one (it brought the crew back), then a kept one again.
    // C-2: kept fixes, then a logged one, which is the latest.
    // C-3: a kept fix, then at once its arrival on site, which puts it where the fault is.
    let appends = [
        fix("C-1", 1),
        fix("C-2", 2),
        fix("C-1", 3),
        events_batch(vec![crew_position_of("C-1", 4)]),
        fix("C-2", 5),
        events_batch(vec![queued(6, "T-1")]),
        fix("C-1", 7),
        events_batch(vec![crew_position_of("C-2", 8)]),
        fix("C-3", 9),
        events_batch(vec![arrived(10, "T-3", "C-3")]),
    ];
    {
        let store = backend.open(&location).await;
        for batch in &appends {
            store
                .append(batch.clone(), Durability::Lazy)
                .await
                .expect("lazy append");
        }
        barrier(&store, 100).await;
    }
    let store = backend.open(&location).await;
    let (events, recovered) = replay_all(&store).await;
    // As the service rebuilds positions: the log in order, then the kept fixes.
    let mut latest: std::collections::BTreeMap<String, i64> = Default::default();
    for event in events.iter().chain(&recovered.positions) {
        if let Some(crew) = event.kind.sets_position_of() {
            latest.insert(crew.to_string(), event.at.as_millis());
        }
    }
    assert_eq!(
        latest,
        [
            ("C-1".to_owned(), 7),
            ("C-2".to_owned(), 8),
            ("C-3".to_owned(), 10)
        ]
        .into(),
        "log {events:?}, kept apart {:?}",
        recovered.positions
    );
    // Every event but the supersedable fixes is in the log, in order (a store may log
    // those too).
    let kept_apart = [1, 2, 3, 5, 7, 9].map(millis);
    let logged: Vec<&Event> = events
        .iter()
        .filter(|e| {
            !(matches!(e.kind, EventKind::CrewPosition { .. }) && kept_apart.contains(&e.at))
        })
        .collect();
    assert_eq!(
        logged,
        [
            &crew_position_of("C-1", 4),
            &queued(6, "T-1"),
            &crew_position_of("C-2", 8),
            &arrived(10, "T-3", "C-3"),
        ]
        .into_iter()
        .chain(numbered_batch(100).events.iter())
        .collect::<Vec<_>>()
    );
}

/// `close` commits what it accepted, even lazily, and then refuses appends as certainly not
/// written.
pub async fn close_commits_lazy_batches_and_refuses_appends<B: Backend>(backend: &B) {
    let location = backend.location();
    let lazy = events_batch(vec![crew_position(1)]);
    {
        let store = backend.open(&location).await;
        store
            .append(lazy.clone(), Durability::Lazy)
            .await
            .expect("lazy append");
        store.close().await.expect("close");
        for durability in [Durability::Durable, Durability::Lazy] {
            let refused = store
                .append(numbered_batch(1), durability)
                .await
                .expect_err("append after close");
            assert!(
                refused.is_certainly_aborted(),
                "append after close must be refused as not written, got {refused:?}"
            );
        }
        store.ping().await.expect_err("ping after close");
    }
    let store = backend.open(&location).await;
    let (events, _) = replay_all(&store).await;
    assert_eq!(events, lazy.events);
}

/// Replays everything into a vector.
pub async fn replay_all<S: Store + ?Sized>(store: &S) -> (Vec<Event>, Recovered) {
    let mut events = Vec::new();
    let mut sink = |event| events.push(event);
    let recovered = store.replay(&mut sink).await.expect("replay");
    assert_eq!(recovered.events, events.len() as u64, "replay's own count");
    (events, recovered)
}

/// A durable append of batch `n`: once it resolves, everything appended before is in.
async fn barrier<S: Store + ?Sized>(store: &S, n: u64) {
    store
        .append(numbered_batch(n), Durability::Durable)
        .await
        .expect("barrier append");
}

/// Batch `n` of a numbered sequence: one to three events whose times encode `n`, about a
/// few tickets, or a crew position for every fifth.
pub fn numbered_batch(n: u64) -> Batch {
    let base = n * 10;
    let ticket = format!("T-{}", n % 7);
    let events = if n % 5 == 4 {
        vec![crew_position(base)]
    } else {
        (0..=(n % 3))
            .map(|i| acknowledged(base + i, &ticket))
            .collect()
    };
    events_batch(events)
}

pub fn events_batch(events: Vec<Event>) -> Batch {
    Batch {
        events,
        ..Batch::default()
    }
}

pub fn idempotency_record(key: &str, ticket: &str) -> IdempotencyRecord {
    let mut request_sha256 = [0u8; 32];
    for (byte, source) in request_sha256.iter_mut().zip(key.bytes().cycle()) {
        *byte = source;
    }
    IdempotencyRecord {
        key: key.to_owned(),
        request_sha256,
        ticket: TicketId::new(ticket),
    }
}

pub fn crew_token_record(n: u64, crew: &str) -> CrewTokenRecord {
    let mut token_sha256 = [0xA5u8; 32];
    token_sha256[..8].copy_from_slice(&n.to_be_bytes());
    CrewTokenRecord {
        token_sha256,
        crew: CrewId::new(crew),
    }
}

fn millis(at: u64) -> Timestamp {
    Timestamp::from_millis(i64::try_from(at).unwrap_or(i64::MAX))
}

fn location() -> LatLon {
    LatLon::new(23.0867, 114.4159).unwrap_or_else(|_| unreachable!("a point in Huizhou"))
}

pub fn queued(at: u64, ticket: &str) -> Event {
    Event {
        at: millis(at),
        actor: Actor::System,
        kind: EventKind::Queued {
            ticket: TicketId::new(ticket),
        },
    }
}

pub fn acknowledged(at: u64, ticket: &str) -> Event {
    Event {
        at: millis(at),
        actor: Actor::Crew(CrewId::new("C-1")),
        kind: EventKind::Acknowledged {
            ticket: TicketId::new(ticket),
            crew: CrewId::new("C-1"),
        },
    }
}

pub fn arrived(at: u64, ticket: &str, crew: &str) -> Event {
    Event {
        at: millis(at),
        actor: Actor::Crew(CrewId::new(crew)),
        kind: EventKind::Arrived {
            ticket: TicketId::new(ticket),
            crew: CrewId::new(crew),
            location: Some(location()),
        },
    }
}

pub fn departed(at: u64, ticket: &str) -> Event {
    Event {
        at: millis(at),
        actor: Actor::Crew(CrewId::new("C-1")),
        kind: EventKind::Departed {
            ticket: TicketId::new(ticket),
            crew: CrewId::new("C-1"),
        },
    }
}

pub fn crew_position(at: u64) -> Event {
    crew_position_of("C-1", at)
}

pub fn crew_position_of(crew: &str, at: u64) -> Event {
    Event {
        at: millis(at),
        actor: Actor::Crew(CrewId::new(crew)),
        kind: EventKind::CrewPosition {
            crew: CrewId::new(crew),
            location: location(),
            fix_at: None,
        },
    }
}

fn report() -> FaultReport {
    FaultReport {
        caller: Caller {
            name: "王先生".into(),
            phone: "13800000000".into(),
        },
        location: location(),
        address: "惠城区 江北 文明一路 3 号".into(),
        category: FaultCategory::NoPower,
        priority: Priority::Normal,
        important_customer: false,
        description: "整栋楼停电".into(),
    }
}

pub fn reported(at: u64, ticket: &str) -> Event {
    Event {
        at: millis(at),
        actor: Actor::Agent,
        kind: EventKind::Reported {
            ticket: TicketId::new(ticket),
            incident: IncidentId::new(format!("I-{ticket}")),
            station: StationId::new("S-1"),
            area_class: AreaClass::Urban,
            report: report(),
            arrive_by: Some(millis(at + 45 * 60_000)),
        },
    }
}

/// One event of every kind, with every optional field both set and unset somewhere.
pub fn every_kind_of_event() -> Vec<Event> {
    let t = || TicketId::new("T-1");
    let c = || CrewId::new("C-1");
    let crew = || Actor::Crew(CrewId::new("C-1"));
    let kinds = vec![
        (
            Actor::Agent,
            EventKind::Reported {
                ticket: t(),
                incident: IncidentId::new("I-1"),
                station: StationId::new("S-1"),
                area_class: AreaClass::Rural,
                report: report(),
                arrive_by: None,
            },
        ),
        (
            Actor::System,
            EventKind::Merged {
                ticket: t(),
                incident: IncidentId::new("I-0"),
            },
        ),
        (Actor::System, EventKind::Queued { ticket: t() }),
        (
            Actor::System,
            EventKind::Dispatched {
                ticket: t(),
                crew: c(),
                eta_minutes: 17.25,
                acknowledge_by: millis(120_000),
            },
        ),
        (
            crew(),
            EventKind::Declined {
                ticket: t(),
                crew: c(),
                reason: DeclineReason::Rejected {
                    reason: "vehicle broke down".into(),
                },
            },
        ),
        (
            Actor::System,
            EventKind::Declined {
                ticket: t(),
                crew: c(),
                reason: DeclineReason::AcknowledgeTimeout,
            },
        ),
        (
            crew(),
            EventKind::Acknowledged {
                ticket: t(),
                crew: c(),
            },
        ),
        (
            crew(),
            EventKind::Departed {
                ticket: t(),
                crew: c(),
            },
        ),
        (
            crew(),
            EventKind::Arrived {
                ticket: t(),
                crew: c(),
                location: Some(location()),
            },
        ),
        (
            crew(),
            EventKind::Arrived {
                ticket: t(),
                crew: c(),
                location: None,
            },
        ),
        (
            crew(),
            EventKind::Restored {
                ticket: t(),
                crew: c(),
                cause: Some("blown fuse".into()),
            },
        ),
        (
            crew(),
            EventKind::Returned {
                ticket: t(),
                crew: c(),
                order: WorkOrderReturn {
                    fault_class: FaultClass::LowVoltage,
                    cause: "fuse".into(),
                    ownership: Ownership::Utility,
                    resolution: None,
                    outage_cause: crate::domain::OutageCause::Fault,
                },
            },
        ),
        (
            Actor::Agent,
            EventKind::Closed {
                ticket: t(),
                callback: Callback {
                    satisfied: true,
                    note: Some("thanks".into()),
                },
            },
        ),
        (
            Actor::Supervisor,
            EventKind::Cancelled {
                ticket: TicketId::new("T-2"),
                crew: None,
                reason: "duplicate".into(),
            },
        ),
        (
            Actor::System,
            EventKind::SlaWarning {
                ticket: t(),
                stage: SlaStage::Arrive,
                level: WarnLevel::from_fraction(0.8).unwrap_or_else(|| unreachable!()),
            },
        ),
        (
            Actor::System,
            EventKind::SlaBreached {
                ticket: t(),
                stage: SlaStage::Restore,
            },
        ),
        (
            crew(),
            EventKind::CrewDuty {
                crew: c(),
                on_duty: true,
            },
        ),
        (
            crew(),
            EventKind::CrewPosition {
                crew: c(),
                location: location(),
                fix_at: None,
            },
        ),
        (
            crew(),
            EventKind::CrewPosition {
                crew: c(),
                location: location(),
                fix_at: Some(millis(90_000)),
            },
        ),
        (
            Actor::System,
            EventKind::StormMode {
                on: true,
                reason: StormReason::QueueAbove,
                queued: 40,
            },
        ),
        (
            Actor::Supervisor,
            EventKind::StormMode {
                on: false,
                reason: StormReason::Supervisor,
                queued: 3,
            },
        ),
        (
            Actor::System,
            EventKind::StormMode {
                on: false,
                reason: StormReason::QueueDrained,
                queued: 0,
            },
        ),
        (
            Actor::Supervisor,
            EventKind::StormMode {
                on: false,
                reason: StormReason::Automatic,
                queued: 7,
            },
        ),
    ];
    kinds
        .into_iter()
        .zip(1u64..)
        .map(|((actor, kind), at)| Event {
            at: millis(at * 1000),
            actor,
            kind,
        })
        .collect()
}
