//! The Redis store: the store contract (`dispatch::store::conformance`) against a real
//! `redis-server` started by each test, then what only a shared log has: the lease that fences
//! a deposed holder, numbered batches, the claim check, following the log, the persistence
//! check at start, and Redis dying under it.

// Tests: a panic is a failed test.
#![allow(clippy::unwrap_used)]

mod common;

use common::redis::RedisServer;
use dispatch::domain::{Actor, CrewId, Event, EventKind, TicketId, Timestamp};
use dispatch::store::conformance::{
    Backend, acknowledged, crew_position, crew_token_record, departed, events_batch,
    numbered_batch, replay_all,
};
use dispatch::store::redis::RedisOptions;
use dispatch::store::{Batch, Durability, Lease, RedisStore, SharedLog, Store, StoreError};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

const LEASE: Duration = Duration::from_secs(60);

fn options(server: &RedisServer, namespace: &str) -> RedisOptions {
    RedisOptions {
        urls: vec![server.url()],
        namespace: namespace.to_owned(),
        timeout: Duration::from_secs(2),
        allow_volatile: false,
    }
}

fn lease_key(namespace: &str) -> String {
    format!("dispatch:{{{namespace}}}:lease")
}

/// Takes the lease (clearing one a dropped store left behind) and fences appends after the
/// log's end: the store can then append, as the lease holder's can.
async fn lead(server: &RedisServer, store: &RedisStore) {
    for _ in 0..3 {
        match store.acquire("http://test", LEASE).await.unwrap() {
            Lease::Acquired { head } => {
                store.fence(head + 1);
                return;
            }
            Lease::HeldBy(_) | Lease::Vacant => {
                server.cli(&["DEL", &lease_key(store.namespace())]).unwrap();
            }
        }
    }
    panic!("could not take the lease");
}

struct Redis {
    server: RedisServer,
}

impl Redis {
    fn start() -> Self {
        Self {
            server: RedisServer::start(),
        }
    }
}

static NAMESPACES: AtomicU64 = AtomicU64::new(0);

impl Backend for Redis {
    type Store = RedisStore;
    type Location = String;

    fn location(&self) -> String {
        format!("region-{}", NAMESPACES.fetch_add(1, Ordering::Relaxed))
    }

    async fn open(&self, namespace: &String) -> RedisStore {
        let store = RedisStore::open(options(&self.server, namespace))
            .await
            .expect("open the Redis store");
        lead(&self.server, &store).await;
        store
    }
}

dispatch::store_conformance_tests!(Redis::start());

fn dispatched(at: i64, ticket: &str, crew: &str) -> Event {
    Event {
        at: Timestamp::from_millis(at),
        actor: Actor::System,
        kind: EventKind::Dispatched {
            ticket: TicketId::new(ticket),
            crew: CrewId::new(crew),
            eta_minutes: 12.5,
            acknowledge_by: Timestamp::from_millis(at + 300_000),
        },
    }
}

async fn open(server: &RedisServer, namespace: &str) -> RedisStore {
    RedisStore::open(options(server, namespace)).await.unwrap()
}

#[tokio::test]
async fn a_deposed_holder_cannot_append_behind_the_new_one() {
    let server = RedisServer::start();
    let old = open(&server, "huizhou").await;
    lead(&server, &old).await;
    old.append(numbered_batch(1), Durability::Durable)
        .await
        .unwrap();

    // The old holder pauses past its lease; another instance takes over.
    server.cli(&["DEL", &lease_key("huizhou")]).unwrap();
    let new = open(&server, "huizhou").await;
    let (_, recovered) = replay_all(&new).await;
    match new.acquire("http://new", LEASE).await.unwrap() {
        Lease::Acquired { head } => {
            assert_eq!(head, recovered.last_seq);
            new.fence(head + 1);
        }
        other => panic!("the lease was free, got {other:?}"),
    }

    let refused = old
        .append(numbered_batch(2), Durability::Durable)
        .await
        .unwrap_err();
    assert!(refused.is_certainly_aborted(), "{refused:?}");
    new.append(numbered_batch(3), Durability::Durable)
        .await
        .unwrap();

    let (events, recovered) = replay_all(&open(&server, "huizhou").await).await;
    let want: Vec<Event> = [1, 3]
        .iter()
        .flat_map(|n| numbered_batch(*n).events)
        .collect();
    assert_eq!(events, want);
    assert_eq!(recovered.last_seq, 2);
    // The old holder learns who leads now.
    assert_eq!(
        old.acquire("http://old", LEASE).await.unwrap(),
        Lease::HeldBy("http://new".into())
    );
}

#[tokio::test]
async fn a_batch_out_of_sequence_is_refused_and_nothing_is_written() {
    let server = RedisServer::start();
    let store = open(&server, "huizhou").await;
    match store.acquire("http://test", LEASE).await.unwrap() {
        // As if memory were ahead of the log by four batches.
        Lease::Acquired { head } => store.fence(head + 5),
        other => panic!("{other:?}"),
    }
    let refused = store
        .append(numbered_batch(1), Durability::Durable)
        .await
        .unwrap_err();
    assert!(refused.is_certainly_aborted(), "{refused:?}");
    assert_eq!(store.head().await.unwrap(), 0);
    let (events, _) = replay_all(&store).await;
    assert!(events.is_empty());
}

/// A client that lost the answer to an append may send the same call again on a new
/// connection (the cluster client retries so). Once applied, the call answers as it did the
/// first time, and the log holds it once: refusing it as out of sequence would tell the
/// service that nothing was written, and its caller that the change was not made.
#[tokio::test]
async fn the_same_append_sent_again_answers_as_the_first_and_is_logged_once() {
    let server = RedisServer::start();
    let store = open(&server, "huizhou").await;
    let head = match store.acquire("http://test", LEASE).await.unwrap() {
        Lease::Acquired { head } => head,
        other => panic!("{other:?}"),
    };
    store.fence(head + 1);
    store
        .append(numbered_batch(1), Durability::Durable)
        .await
        .unwrap();
    // The same call again: same first sequence number, same batch.
    store.fence(head + 1);
    store
        .append(numbered_batch(1), Durability::Durable)
        .await
        .expect("a repeated call that was applied is not refused");
    assert_eq!(store.head().await.unwrap(), head + 1);
    let (events, _) = replay_all(&store).await;
    assert_eq!(events, numbered_batch(1).events);

    // Another batch at a taken place is still refused, and writes nothing.
    store.fence(head + 1);
    let refused = store
        .append(numbered_batch(2), Durability::Durable)
        .await
        .unwrap_err();
    assert!(refused.is_certainly_aborted(), "{refused:?}");
    let (events, _) = replay_all(&store).await;
    assert_eq!(events, numbered_batch(1).events);
}

#[tokio::test]
async fn a_crew_is_never_claimed_twice_nor_a_ticket_given_two_crews() {
    let server = RedisServer::start();
    let store = open(&server, "huizhou").await;
    lead(&server, &store).await;
    store
        .append(
            events_batch(vec![dispatched(1, "T-1", "C-1")]),
            Durability::Durable,
        )
        .await
        .unwrap();

    for (ticket, crew) in [("T-2", "C-1"), ("T-1", "C-2")] {
        let refused = store
            .append(
                events_batch(vec![dispatched(2, ticket, crew)]),
                Durability::Durable,
            )
            .await
            .unwrap_err();
        assert!(
            refused.is_certainly_aborted(),
            "{ticket} → {crew}: {refused:?}"
        );
        // After a refusal the store takes nothing until re-fenced at the log's end.
        let still = store
            .append(numbered_batch(9), Durability::Durable)
            .await
            .unwrap_err();
        assert!(still.is_certainly_aborted());
        store.fence(store.head().await.unwrap() + 1);
    }

    // Once C-1 returns T-1 it may take another job.
    let returned = Event {
        at: Timestamp::from_millis(3),
        actor: Actor::Crew(CrewId::new("C-1")),
        kind: EventKind::Declined {
            ticket: TicketId::new("T-1"),
            crew: CrewId::new("C-1"),
            reason: dispatch::domain::DeclineReason::AcknowledgeTimeout,
        },
    };
    store
        .append(
            events_batch(vec![returned.clone(), dispatched(4, "T-2", "C-1")]),
            Durability::Durable,
        )
        .await
        .unwrap();
    let (events, _) = replay_all(&store).await;
    assert_eq!(
        events,
        vec![
            dispatched(1, "T-1", "C-1"),
            returned,
            dispatched(4, "T-2", "C-1")
        ]
    );
    assert_eq!(
        server
            .cli(&["HGET", "dispatch:{huizhou}:crew-jobs", "C-1"])
            .unwrap()
            .trim(),
        "T-2"
    );
    // The released ticket has no crew left in the hash; the new claim is there.
    let crew_of = |ticket: &str| {
        server
            .cli(&["HGET", "dispatch:{huizhou}:ticket-crews", ticket])
            .unwrap()
            .trim()
            .to_owned()
    };
    assert_eq!(crew_of("T-1"), "");
    assert_eq!(crew_of("T-2"), "C-1");
    assert_eq!(
        server
            .cli(&["HGET", "dispatch:{huizhou}:ticket:T-2", "state"])
            .unwrap()
            .trim(),
        "dispatched"
    );
}

/// A storm's batch assignment can dispatch hundreds of crews in one batch: every claim is
/// recorded and checked, however the script reads and writes them (a call per claim now;
/// a rewrite into calls of many claims each was tried, and this guards the next one).
#[tokio::test]
async fn a_batch_of_more_claims_than_one_call_takes_records_every_one() {
    const CLAIMS: usize = 1_200;
    let server = RedisServer::start();
    let store = open(&server, "huizhou").await;
    lead(&server, &store).await;
    let storm: Vec<Event> = (0..CLAIMS)
        .map(|i| dispatched(1, &format!("T-{i}"), &format!("C-{i}")))
        .collect();
    store
        .append(events_batch(storm), Durability::Durable)
        .await
        .unwrap();
    for hash in ["crew-jobs", "ticket-crews"] {
        let count = server
            .cli(&["HLEN", &format!("dispatch:{{huizhou}}:{hash}")])
            .unwrap();
        assert_eq!(count.trim(), CLAIMS.to_string(), "{hash}");
    }
    // And the last of them is checked like the first: its crew cannot be claimed again.
    let refused = store
        .append(
            events_batch(vec![dispatched(2, "T-new", &format!("C-{}", CLAIMS - 1))]),
            Durability::Durable,
        )
        .await
        .unwrap_err();
    assert!(refused.is_certainly_aborted(), "{refused:?}");
}

#[tokio::test]
async fn a_follower_tails_every_batch_in_order_with_its_number() {
    let server = RedisServer::start();
    let leader = open(&server, "huizhou").await;
    lead(&server, &leader).await;
    leader
        .append(numbered_batch(0), Durability::Durable)
        .await
        .unwrap();
    let follower = open(&server, "huizhou").await;
    let (events, recovered) = replay_all(&follower).await;
    assert_eq!(events, numbered_batch(0).events);
    assert_eq!(recovered.last_seq, 1);

    for n in 1..=5 {
        leader
            .append(numbered_batch(n), Durability::Durable)
            .await
            .unwrap();
    }
    let mut tailed = Vec::new();
    while tailed.len() < 5 {
        tailed.extend(follower.tail(Duration::from_secs(2)).await.unwrap());
    }
    let seqs: Vec<u64> = tailed.iter().map(|b| b.seq).collect();
    assert_eq!(seqs, vec![2, 3, 4, 5, 6]);
    for (n, batch) in (1..=5).zip(&tailed) {
        assert_eq!(batch.batch, numbered_batch(n));
    }
    // Nothing new: an empty answer after the wait.
    assert!(
        follower
            .tail(Duration::from_millis(50))
            .await
            .unwrap()
            .is_empty()
    );
}

/// A Redis without an append-only file loses, when it crashes, what it acknowledged since its
/// last snapshot (or everything, without snapshots): refused unless the operator allows it.
#[tokio::test]
async fn a_redis_without_an_append_only_file_is_refused_unless_allowed() {
    let volatile = RedisServer::start_volatile();
    let snapshots_only = RedisServer::start_with(&["--appendonly", "no", "--save", "60 1"]);
    for server in [&volatile, &snapshots_only] {
        let refused = RedisStore::open(options(server, "huizhou"))
            .await
            .unwrap_err();
        assert!(
            matches!(&refused, StoreError::Unfit(m) if m.contains("appendonly")),
            "{refused}"
        );
        let allowed = RedisStore::open(RedisOptions {
            allow_volatile: true,
            ..options(server, "huizhou")
        })
        .await;
        assert!(allowed.is_ok());
    }
}

#[tokio::test]
async fn a_redis_that_dies_fails_appends_and_what_it_acknowledged_survives_its_restart() {
    let mut server = RedisServer::start();
    let store = open(&server, "huizhou").await;
    lead(&server, &store).await;
    store
        .append(numbered_batch(1), Durability::Durable)
        .await
        .unwrap();

    server.kill();
    let failed = tokio::time::timeout(
        Duration::from_secs(15),
        store.append(numbered_batch(2), Durability::Durable),
    )
    .await
    .expect("an append fails within its timeout, not hangs");
    assert!(failed.is_err());
    assert!(store.ping().await.is_err());

    server.restart();
    let after = open(&server, "huizhou").await;
    let (events, recovered) = replay_all(&after).await;
    assert_eq!(recovered.last_seq, 1, "only the acknowledged batch");
    assert_eq!(events, numbered_batch(1).events);
}

/// The crew-token hash holds the minted tokens not revoked: a revocation deletes its fields
/// in the same script that appends it.
#[tokio::test]
async fn a_revocation_deletes_the_tokens_from_the_hash() {
    let server = RedisServer::start();
    let store = open(&server, "tokens").await;
    lead(&server, &store).await;
    for n in [1, 2] {
        let batch = Batch {
            crew_token: Some(crew_token_record(n, "C-1")),
            ..Batch::default()
        };
        store.append(batch, Durability::Durable).await.unwrap();
    }
    let revocation = Batch {
        revoked_crew_tokens: vec![crew_token_record(1, "C-1")],
        ..Batch::default()
    };
    store.append(revocation, Durability::Durable).await.unwrap();
    let fields = server
        .cli(&["HKEYS", "dispatch:{tokens}:crew-tokens"])
        .unwrap();
    let kept: String = crew_token_record(2, "C-1")
        .token_sha256
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(fields.lines().collect::<Vec<_>>(), vec![kept.as_str()]);
}

/// A timeline lists the log entries that hold its ticket's events, not the events again; one
/// written before (each event's JSON in the list) still reads, in order, with what came after.
#[tokio::test]
async fn a_timeline_names_log_entries_and_one_of_events_still_reads() {
    let server = RedisServer::start();
    let store = open(&server, "timelines").await;
    lead(&server, &store).await;
    let key = "dispatch:{timelines}:timeline:T-1";
    let written_before = acknowledged(1, "T-1");
    server
        .cli(&[
            "RPUSH",
            key,
            &serde_json::to_string(&written_before).unwrap(),
        ])
        .unwrap();
    store
        .append(
            events_batch(vec![
                departed(2, "T-1"),
                crew_position(3),
                acknowledged(4, "T-2"),
                departed(5, "T-1"),
            ]),
            Durability::Durable,
        )
        .await
        .unwrap();
    store
        .append(
            events_batch(vec![acknowledged(6, "T-2")]),
            Durability::Durable,
        )
        .await
        .unwrap();

    let timeline = store.timeline(&TicketId::new("T-1")).await.unwrap();
    assert_eq!(
        timeline,
        vec![written_before, departed(2, "T-1"), departed(5, "T-1")]
    );
    let t2 = store.timeline(&TicketId::new("T-2")).await.unwrap();
    assert_eq!(t2, vec![acknowledged(4, "T-2"), acknowledged(6, "T-2")]);
    // One list entry per batch that touched the ticket: the old event, then one log id.
    let entries = server.cli(&["LRANGE", key, "0", "-1"]).unwrap();
    let entries: Vec<&str> = entries.lines().collect();
    assert_eq!(entries.len(), 2, "{entries:?}");
    assert!(entries[0].starts_with('{'), "{entries:?}");
    assert!(
        entries[1].contains('-') && !entries[1].contains('{'),
        "not a log entry id: {entries:?}"
    );
}
