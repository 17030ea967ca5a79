//! The embedded store: the store contract (`dispatch::store::conformance`) on temporary
//! directories, then what only this backend has: group commit, recovery from a copy of a
//! live file (what a crash leaves), storage faults, its layout version.

use dispatch::domain::{Actor, CrewId, Event, EventKind, TicketId, Timestamp};
use dispatch::store::conformance::{
    Backend, acknowledged, crew_position_of, crew_token_record, events_batch, idempotency_record,
    numbered_batch, queued, replay_all,
};
use dispatch::store::embedded::{BACKUP_DIR_NAME, FILE_NAME};
use dispatch::store::{Batch, Durability, EmbeddedStore, Store, StoreError};
use redb::StorageBackend;
use redb::backends::InMemoryBackend;
use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use tempfile::TempDir;

#[derive(Debug, Default)]
struct Embedded;

impl Backend for Embedded {
    type Store = EmbeddedStore;
    type Location = TempDir;

    fn location(&self) -> TempDir {
        tempfile::tempdir().expect("a temporary directory")
    }

    async fn open(&self, location: &TempDir) -> EmbeddedStore {
        EmbeddedStore::open(location.path()).expect("open the store")
    }
}

dispatch::store_conformance_tests!(Embedded);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_appends_share_commits() {
    const APPENDS: u64 = 200;
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(dir.path()).unwrap();
    let before = store.commits();
    // Enqueued back to back, as concurrent requests are: the writer finds many waiting.
    let pending: Vec<_> = (0..APPENDS)
        .map(|n| store.append(numbered_batch(n * 5), Durability::Durable))
        .collect();
    for result in futures_util::future::join_all(pending).await {
        result.unwrap();
    }
    let commits = store.commits() - before;
    assert!(commits >= 1);
    assert!(
        commits < APPENDS,
        "{APPENDS} durable appends took {commits} commits: no grouping"
    );
    let (events, _) = replay_all(&store).await;
    let expected: Vec<Event> = (0..APPENDS)
        .flat_map(|n| numbered_batch(n * 5).events)
        .collect();
    assert_eq!(events, expected);
}

/// A copy of the file taken while the store is open is what a crash leaves on disk: the
/// file was not closed, so opening it runs redb's repair. Everything acknowledged is there.
#[tokio::test]
async fn a_copy_of_a_live_file_recovers_what_was_acknowledged() {
    let live = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(live.path()).unwrap();
    for n in 0..20 {
        store
            .append(numbered_batch(n * 5), Durability::Durable)
            .await
            .unwrap();
    }
    let crashed = tempfile::tempdir().unwrap();
    std::fs::copy(live.path().join(FILE_NAME), crashed.path().join(FILE_NAME)).unwrap();
    let recovered = EmbeddedStore::open(crashed.path()).unwrap();
    let (events, _) = replay_all(&recovered).await;
    let expected: Vec<Event> = (0..20).flat_map(|n| numbered_batch(n * 5).events).collect();
    assert_eq!(events, expected);
    drop(store);
}

#[tokio::test]
async fn a_second_open_of_the_same_directory_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let _first = EmbeddedStore::open(dir.path()).unwrap();
    let second = EmbeddedStore::open(dir.path()).unwrap_err();
    assert!(matches!(second, StoreError::Unavailable(_)), "{second:?}");
}

#[tokio::test]
async fn open_creates_missing_directories() {
    let dir = tempfile::tempdir().unwrap();
    let nested = dir.path().join("var").join("dispatch");
    let store = EmbeddedStore::open(&nested).unwrap();
    store.ping().await.unwrap();
    assert!(nested.join(FILE_NAME).is_file());
}

#[tokio::test]
async fn a_file_of_another_layout_format_is_refused_as_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    {
        let db = redb::Database::create(dir.path().join(FILE_NAME)).unwrap();
        let txn = db.begin_write().unwrap();
        {
            let mut meta = txn
                .open_table(redb::TableDefinition::<&str, u64>::new("meta"))
                .unwrap();
            meta.insert("format", 99).unwrap();
        }
        txn.commit().unwrap();
    }
    let refused = EmbeddedStore::open(dir.path()).unwrap_err();
    assert!(matches!(refused, StoreError::Corrupt(_)), "{refused:?}");
}

/// An event that would not read back (a non-finite ETA becomes JSON `null`) would poison
/// every later replay: it is refused, the store stops, and what came before is intact.
#[tokio::test]
async fn an_event_that_would_not_read_back_is_refused_and_stops_the_store() {
    let store = EmbeddedStore::in_memory().unwrap();
    let good = events_batch(vec![acknowledged(1, "T-1")]);
    store
        .append(good.clone(), Durability::Durable)
        .await
        .unwrap();
    let poison = events_batch(vec![Event {
        at: Timestamp::from_millis(2),
        actor: Actor::System,
        kind: EventKind::Dispatched {
            ticket: TicketId::new("T-2"),
            crew: CrewId::new("C-2"),
            eta_minutes: f64::NAN,
            acknowledge_by: Timestamp::from_millis(3),
        },
    }]);
    let refused = store.append(poison, Durability::Durable).await.unwrap_err();
    assert!(refused.is_certainly_aborted(), "{refused:?}");
    let after = store
        .append(
            events_batch(vec![acknowledged(4, "T-1")]),
            Durability::Durable,
        )
        .await
        .unwrap_err();
    assert!(after.is_certainly_aborted(), "{after:?}");
    store.ping().await.unwrap_err();
    let (events, _) = replay_all(&store).await;
    assert_eq!(events, good.events);
}

/// A redb storage backend in memory whose fsync or writes can be made to fail, and whose
/// bytes outlive the database, so a test can reopen what a failed store left.
#[derive(Debug, Clone, Default)]
struct Faulty {
    bytes: Arc<InMemoryBackend>,
    fail_sync: Arc<AtomicBool>,
    fail_writes: Arc<AtomicBool>,
    syncs: Arc<AtomicU64>,
}

impl Faulty {
    fn reopen(&self) -> EmbeddedStore {
        let healthy = Faulty {
            bytes: Arc::clone(&self.bytes),
            ..Faulty::default()
        };
        EmbeddedStore::with_backend(healthy, "faulty-memory").expect("reopen the store")
    }
}

impl StorageBackend for Faulty {
    fn len(&self) -> Result<u64, io::Error> {
        StorageBackend::len(&*self.bytes)
    }

    fn read(&self, offset: u64, out: &mut [u8]) -> Result<(), io::Error> {
        StorageBackend::read(&*self.bytes, offset, out)
    }

    fn set_len(&self, len: u64) -> Result<(), io::Error> {
        StorageBackend::set_len(&*self.bytes, len)
    }

    fn sync_data(&self) -> Result<(), io::Error> {
        if self.fail_sync.load(Ordering::SeqCst) {
            return Err(io::Error::other("injected fsync failure"));
        }
        self.syncs.fetch_add(1, Ordering::SeqCst);
        StorageBackend::sync_data(&*self.bytes)
    }

    fn write(&self, offset: u64, data: &[u8]) -> Result<(), io::Error> {
        if self.fail_writes.load(Ordering::SeqCst) {
            return Err(io::Error::other("injected write failure"));
        }
        StorageBackend::write(&*self.bytes, offset, data)
    }
}

/// Every batch in a failed commit is told the outcome is unknown, nothing more is taken,
/// and after a restart the batch is there whole or not at all.
async fn a_failed_commit(fault: impl Fn(&Faulty)) {
    let backend = Faulty::default();
    let store =
        EmbeddedStore::with_backend(backend.clone(), "faulty-memory").expect("open the store");
    let first = numbered_batch(0);
    store
        .append(first.clone(), Durability::Durable)
        .await
        .expect("append before the fault");
    fault(&backend);
    let doomed = Batch {
        events: vec![acknowledged(10, "T-9"), acknowledged(11, "T-9")],
        idempotency: Some(dispatch::store::conformance::idempotency_record("k", "T-9")),
        ..Batch::default()
    };
    let failed = store
        .append(doomed.clone(), Durability::Durable)
        .await
        .expect_err("append into a failing commit");
    assert!(
        matches!(failed, StoreError::OutcomeUnknown(_)),
        "{failed:?}"
    );
    let refused = store
        .append(numbered_batch(1), Durability::Durable)
        .await
        .expect_err("append after the failure");
    assert!(refused.is_certainly_aborted(), "{refused:?}");
    store.ping().await.expect_err("ping after the failure");
    store.close().await.expect_err("close after the failure");
    drop(store);

    let restarted = backend.reopen();
    let (events, recovered) = replay_all(&restarted).await;
    let mut whole = first.events.clone();
    whole.extend(doomed.events.clone());
    if events == first.events {
        assert!(recovered.idempotency.is_empty());
    } else {
        assert_eq!(events, whole, "part of the failed batch survived");
        assert_eq!(recovered.idempotency.len(), 1);
    }
}

#[tokio::test]
async fn a_failed_fsync_answers_outcome_unknown_and_stops_the_store() {
    a_failed_commit(|b| b.fail_sync.store(true, Ordering::SeqCst)).await;
}

#[tokio::test]
async fn a_failed_write_answers_outcome_unknown_and_stops_the_store() {
    a_failed_commit(|b| b.fail_writes.store(true, Ordering::SeqCst)).await;
}

/// Lazy batches are committed without an fsync (readers see them at once); the next
/// durable commit, or close, syncs them.
#[tokio::test]
async fn lazy_batches_commit_without_fsync_until_a_durable_one() {
    let backend = Faulty::default();
    let store = EmbeddedStore::with_backend(backend.clone(), "faulty-memory").unwrap();
    let syncs = || backend.syncs.load(Ordering::SeqCst);
    let before = syncs();
    let lazy = numbered_batch(4);
    store.append(lazy.clone(), Durability::Lazy).await.unwrap();
    // The ping is answered after the group it joins is done, so the lazy batch is in.
    store.ping().await.unwrap();
    assert_eq!(syncs(), before, "a lazy batch was fsynced on its own");
    let (events, _) = replay_all(&store).await;
    assert_eq!(events, lazy.events);
    store.close().await.unwrap();
    assert!(syncs() > before, "close did not fsync the lazy batch");
}

/// Batch `k` of the backup test: three events of ticket `T-k`, its idempotency record and a
/// crew token, so a copy that split a batch would show in every table.
fn whole_batch(k: u64) -> Batch {
    let ticket = format!("T-{k}");
    Batch {
        events: (0..3).map(|i| queued(k * 10 + i, &ticket)).collect(),
        idempotency: Some(idempotency_record(&format!("key-{k}"), &ticket)),
        crew_token: Some(crew_token_record(k, &format!("C-{k}"))),
        revoked_crew_tokens: Vec::new(),
        supersedable_position: false,
    }
}

/// A backup taken while batches are being appended holds every batch acknowledged before it
/// began and, of the rest, a prefix of whole batches (events, records, timelines), and opens
/// as a store of its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_taken_during_appends_holds_whole_batches_and_opens_as_a_store() {
    const BEFORE: u64 = 50;
    const BATCHES: u64 = 600;
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(EmbeddedStore::open(dir.path()).unwrap());
    // A crew's latest fix, kept apart from the log: the backup copies it too.
    let fix = crew_position_of("C-9", 5);
    store
        .append(
            Batch {
                events: vec![fix.clone()],
                supersedable_position: true,
                ..Batch::default()
            },
            Durability::Lazy,
        )
        .await
        .unwrap();
    for k in 0..BEFORE {
        store
            .append(whole_batch(k), Durability::Durable)
            .await
            .unwrap();
    }
    let writer = {
        let store = Arc::clone(&store);
        tokio::spawn(async move {
            for k in BEFORE..BATCHES {
                store
                    .append(whole_batch(k), Durability::Durable)
                    .await
                    .expect("append");
            }
        })
    };
    let backup = store
        .backup(Timestamp::from_millis(1_764_594_309_000), 2)
        .expect("a store on disk backs up")
        .await
        .expect("the backup");
    writer.await.expect("writer task");

    let backups = dir.path().join(BACKUP_DIR_NAME);
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&backups).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700, "backups hold personal data: {mode:o}");
    }
    assert_eq!(
        backup.path,
        backups.join("dispatch-20251201T130509Z.redb"),
        "named for its time, beside the store"
    );
    let files: Vec<_> = std::fs::read_dir(&backups)
        .unwrap()
        .map(|entry| entry.unwrap().file_name())
        .collect();
    assert_eq!(files.len(), 1, "no partial file left: {files:?}");
    assert_eq!(backup.bytes, std::fs::metadata(&backup.path).unwrap().len());

    let restored = tempfile::tempdir().unwrap();
    std::fs::copy(&backup.path, restored.path().join(FILE_NAME)).unwrap();
    let copy = EmbeddedStore::open(restored.path()).unwrap();
    let (events, recovered) = replay_all(&copy).await;
    assert_eq!(events.len() as u64, backup.events);
    assert_eq!(events.len() % 3, 0, "part of a batch");
    let batches = events.len() as u64 / 3;
    assert!(batches >= BEFORE, "only {batches} batches");
    let expected: Vec<Event> = (0..batches).flat_map(|k| whole_batch(k).events).collect();
    assert_eq!(events, expected);
    assert_eq!(recovered.idempotency.len() as u64, batches);
    assert_eq!(recovered.crew_tokens.len() as u64, batches);
    assert_eq!(recovered.positions, vec![fix]);
    let timeline = copy
        .timeline(&TicketId::new(format!("T-{}", BEFORE - 1)))
        .await
        .unwrap();
    assert_eq!(timeline, whole_batch(BEFORE - 1).events);
    // The copy takes appends like any store.
    copy.append(whole_batch(batches), Durability::Durable)
        .await
        .unwrap();

    // A second backup in the same second gets a name of its own, and holds everything; it
    // clears away what a copy cut short by a crash left.
    let cut_short = backups.join(".dispatch-20250101T000000Z.redb.partial");
    std::fs::write(&cut_short, b"cut short").unwrap();
    let second = store
        .backup(Timestamp::from_millis(1_764_594_309_500), 2)
        .expect("a store on disk backs up")
        .await
        .unwrap();
    assert_eq!(
        second.path,
        backups.join("dispatch-20251201T130509Z-2.redb")
    );
    assert_eq!(second.events, BATCHES * 3);
    assert!(
        !cut_short.exists(),
        "a partial file outlived the next backup"
    );
    assert!(backup.removed.is_empty() && second.removed.is_empty());

    // A third, with two kept: the oldest goes, the newer two stay.
    let third = store
        .backup(Timestamp::from_millis(1_764_597_909_000), 2)
        .expect("a store on disk backs up")
        .await
        .unwrap();
    assert_eq!(third.removed, std::slice::from_ref(&backup.path));
    assert!(!backup.path.exists());
    assert!(second.path.exists() && third.path.exists());
}

/// Lazy batches (pings) are answered before they are on disk; a backup asked for after them
/// holds them all, synced first, rather than whichever the writer had committed by then.
#[tokio::test]
async fn a_backup_holds_the_lazy_batches_appended_before_it() {
    const LAZY: u64 = 200;
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(dir.path()).unwrap();
    for k in 0..LAZY {
        store
            .append(whole_batch(k), Durability::Lazy)
            .await
            .unwrap();
    }
    let backup = store
        .backup(Timestamp::from_millis(1_764_594_309_000), 0)
        .expect("a store on disk backs up")
        .await
        .unwrap();
    assert_eq!(backup.events, LAZY * 3);
    let restored = tempfile::tempdir().unwrap();
    std::fs::copy(&backup.path, restored.path().join(FILE_NAME)).unwrap();
    let (events, _) = replay_all(&EmbeddedStore::open(restored.path()).unwrap()).await;
    let expected: Vec<Event> = (0..LAZY).flat_map(|k| whole_batch(k).events).collect();
    assert_eq!(events, expected);
}

#[test]
fn a_store_in_memory_has_no_backup() {
    let store = EmbeddedStore::in_memory().unwrap();
    assert!(store.backup(Timestamp::from_millis(0), 7).is_none());
}

/// Backups go one at a time: one asked for while another is under way is refused at once as
/// busy, with nothing written, rather than queued holding a read snapshot; the mark lasts
/// until the copy is written, and a backup dropped before its copy began leaves none.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_asked_for_while_another_is_under_way_is_refused_as_busy() {
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(dir.path()).unwrap();
    for k in 0..20 {
        store
            .append(whole_batch(k), Durability::Durable)
            .await
            .unwrap();
    }
    let at = |second: i64| Timestamp::from_millis(1_764_594_309_000 + second * 1000);
    let first = store.backup(at(0), 0).expect("a store on disk backs up");
    let refused = store.backup(at(1), 0).unwrap().await.unwrap_err();
    assert!(matches!(refused, StoreError::Busy(_)), "{refused:?}");
    assert!(refused.is_certainly_aborted());
    first.await.expect("the first backup");
    store.backup(at(2), 0).unwrap().await.expect("the next one");
    drop(store.backup(at(3), 0).unwrap());
    store
        .backup(at(4), 0)
        .unwrap()
        .await
        .expect("one after a backup dropped before it began");
    let written = std::fs::read_dir(dir.path().join(BACKUP_DIR_NAME))
        .unwrap()
        .count();
    assert_eq!(
        written, 3,
        "the refused and the dropped backups wrote nothing"
    );
}
