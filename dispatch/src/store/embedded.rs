//! The embedded backend: one redb file, `dispatch.redb`, on local disk, written by one writer
//! thread that commits every batch waiting into one transaction (group commit), so that many
//! concurrent reports share one fsync.
//!
//! # Layout
//! | table           | key                  | value                                   |
//! |-----------------|----------------------|-----------------------------------------|
//! | `meta`          | `"format"`           | `u64`, [`FORMAT`]                       |
//! | `events`        | `u64` sequence       | the [`Event`] as JSON                   |
//! | `ticket_events` | `(ticket id, seq)`   | `()`: a ticket's timeline, in order     |
//! | `idempotency`   | idempotency key      | `(request SHA-256, ticket id)`          |
//! | `crew_tokens`   | token SHA-256        | crew id (a revoked token's row is gone) |
//! | `crew_positions`| crew id              | `(next seq, the position event as JSON)` |
//!
//! `crew_positions` holds each crew's latest position fix that changed nothing else
//! ([`Batch::supersedable_position`]), overwritten by the next: a ping every half minute
//! from every crew would otherwise be nearly all of the log, growing it (and every restart's
//! replay) by a few hundred thousand events a day. The sequence number stored with it is
//! the log's next one when it was written, so replay knows whether it came after the
//! last event in the log that set the crew's position (a fix that brought a crew back, an
//! arrival on site). The writer holds these fixes until its next transaction (within
//! [`LAZY_SYNC_INTERVAL`]), so a group of pings alone commits nothing.
//!
//! Events are JSON because the domain types already serialize that way and an operator can
//! read them with any redb tool; replay decodes about a million per second (see the
//! `recovery` bench). The `meta` table lets a later format refuse, rather than misread, a
//! file it does not know.
//!
//! # Group commit
//! [`Store::append`] sends the batch down a channel before it returns, so batches reach the
//! writer in call order. The writer takes everything waiting (up to [`MAX_GROUP_EVENTS`]),
//! writes it in one transaction and commits once:
//! - with an fsync (`redb::Durability::Immediate`) when any batch in the group is
//!   [`Durability::Durable`], then answers each durable batch;
//! - without one (`redb::Durability::None`) when the group holds only
//!   [`Durability::Lazy`] batches. Their futures resolved as soon as they were enqueued, so
//!   the writer first lets more gather for [`LAZY_GATHER`]; the next fsync makes them
//!   durable, and the writer forces one within [`LAZY_SYNC_INTERVAL`] of the first unsynced
//!   commit, so a crash loses at most about that much of them.
//!
//! # Failure
//! The engine applies a batch to its memory before the store commits it. Once one batch
//! fails, the engine therefore holds something the log may lack, and any later batch may
//! depend on it. So the first failure of any kind (a commit that fails, a transaction that
//! cannot be written, an event that would not read back) stops the write side for good:
//! the batches in the failed commit get [`StoreError::OutcomeUnknown`] (or
//! [`StoreError::Unavailable`] when the transaction certainly did not commit), and every
//! later append, ping and close gets [`StoreError::Unavailable`]. The service must then
//! restart and rebuild its state by replaying the log, which holds exactly what committed.
//!
//! # Backups
//! [`Store::backup`] copies every table from one read transaction into a new file in
//! `backups/` (see `backup.rs`), beside the writer, which goes on committing.

mod backup;

pub use backup::DIR_NAME as BACKUP_DIR_NAME;

use super::{
    Backup, Batch, CrewTokenRecord, Durability, IdempotencyRecord, Recovered, Store, StoreError,
};
use crate::domain::{Event, TicketId, Timestamp};
use futures_util::future::BoxFuture;
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

/// The file inside the store's directory.
pub const FILE_NAME: &str = "dispatch.redb";

/// The layout version in the `meta` table. Bump it with any change a reader of the old
/// layout would misread, and teach `open` to migrate or refuse.
pub const FORMAT: u64 = 1;

/// The most events the writer puts in one transaction (a single larger batch still goes
/// whole): bounds how long the first batch of a group waits for the others to be written.
pub const MAX_GROUP_EVENTS: usize = 16_384;

/// The longest a lazy batch stays committed without an fsync: after this long the writer
/// forces one, busy or idle.
pub const LAZY_SYNC_INTERVAL: Duration = Duration::from_secs(1);

/// How long the writer gathers a group that only lazy batches are in (crew pings, whose
/// callers were answered on enqueue) before committing it. Committing each ping on its own
/// made the writer sleep and be woken for nearly every one: a fifth of the service's CPU
/// under a flood of pings. A durable batch arriving meanwhile waits at most this long.
pub const LAZY_GATHER: Duration = Duration::from_millis(1);

/// Events decoded per message from the replay reader to the sink.
const REPLAY_CHUNK: usize = 1024;
/// Chunks in flight between the replay reader and the sink: the reader decodes ahead while
/// the sink applies, with bounded memory.
const REPLAY_CHUNKS_AHEAD: usize = 8;

const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
const EVENTS: TableDefinition<u64, &[u8]> = TableDefinition::new("events");
const TICKET_EVENTS: TableDefinition<(&str, u64), ()> = TableDefinition::new("ticket_events");
const IDEMPOTENCY: TableDefinition<&str, (&[u8; 32], &str)> = TableDefinition::new("idempotency");
const CREW_TOKENS: TableDefinition<&[u8; 32], &str> = TableDefinition::new("crew_tokens");
const CREW_POSITIONS: TableDefinition<&str, (u64, &[u8])> = TableDefinition::new("crew_positions");

/// The redb-backed [`Store`]. Open one per directory; a second open of the same directory
/// (in this process or another) fails with [`StoreError::Unavailable`].
///
/// Dropping it commits what was accepted and stops the writer, as [`Store::close`] does
/// but without an answer; call `close` to learn whether the last commit succeeded.
#[derive(Debug)]
pub struct EmbeddedStore {
    db: Arc<Database>,
    shared: Arc<Shared>,
    writer: Mutex<WriterHandle>,
    /// Where the data lives, for logs.
    location: String,
    /// The store's directory; `None` for a store that is not a file (no backups then).
    dir: Option<PathBuf>,
    /// Set from a backup's start until its copy is written, even when whoever asked for it
    /// stopped waiting: backups go one at a time, and one asked for meanwhile is refused
    /// rather than queued holding a read snapshot.
    backing_up: Arc<AtomicBool>,
}

/// Clears [`EmbeddedStore::backing_up`] when dropped: at the end of the copy, or with a
/// backup's future dropped before its copy began.
struct BackupUnderWay(Arc<AtomicBool>);

impl Drop for BackupUnderWay {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

/// What the store and its writer thread both see.
#[derive(Debug, Default)]
struct Shared {
    commits: AtomicU64,
    /// Why the write side stopped, once it has.
    failure: OnceLock<String>,
}

#[derive(Debug)]
struct WriterHandle {
    /// The only sender: taking it out (close, drop) is what tells the writer to finish.
    requests: Option<Sender<Request>>,
    thread: Option<JoinHandle<()>>,
}

type Reply = oneshot::Sender<Result<(), StoreError>>;

#[derive(Debug)]
enum Request {
    /// `reply` is `None` for a lazy batch: its caller was answered on enqueue.
    Append { batch: Batch, reply: Option<Reply> },
    /// Answered once everything before it is committed with an fsync.
    Flush(Reply),
    /// Answered after the group it arrived in is done: proves the writer is turning.
    Ping(Reply),
    /// Answered, once everything before it is committed with an fsync and before anything
    /// after it is, with a read transaction of exactly that: what a backup copies, so that
    /// it never holds a lazy batch a crash could still take from the store's own file.
    Snapshot(oneshot::Sender<Result<redb::ReadTransaction, StoreError>>),
}

impl Request {
    /// A batch whose caller is not waiting for it.
    fn is_lazy(&self) -> bool {
        matches!(self, Request::Append { reply: None, .. })
    }

    fn events(&self) -> usize {
        match self {
            Request::Append { batch, .. } => batch.events.len(),
            Request::Flush(_) | Request::Ping(_) | Request::Snapshot(_) => 0,
        }
    }
}

impl EmbeddedStore {
    /// Opens the store in `dir`, creating the directory and the database file if needed.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        std::fs::create_dir_all(dir).map_err(|e| {
            StoreError::Unavailable(format!(
                "cannot create the store directory {}: {e}",
                dir.display()
            ))
        })?;
        let path: PathBuf = dir.join(FILE_NAME);
        let db = Database::create(&path).map_err(|e| open_error(&path.display().to_string(), e))?;
        let mut store = Self::start(db, path.display().to_string())?;
        store.dir = Some(dir.to_path_buf());
        Ok(store)
    }

    /// A store that lives in memory only and never touches the disk: for tests of the layers
    /// above the store, where an fsync per commit would only slow them down.
    pub fn in_memory() -> Result<Self, StoreError> {
        Self::with_backend(redb::backends::InMemoryBackend::new(), "memory")
    }

    /// Opens the store on any redb storage backend; `location` names it in logs. Tests use
    /// this to inject storage faults.
    pub fn with_backend(
        backend: impl redb::StorageBackend,
        location: &str,
    ) -> Result<Self, StoreError> {
        let db = redb::Builder::new()
            .create_with_backend(backend)
            .map_err(|e| open_error(location, e))?;
        Self::start(db, location.to_owned())
    }

    /// Write transactions committed so far (with or without an fsync): fewer than the
    /// appends when group commit is working.
    pub fn commits(&self) -> u64 {
        self.shared.commits.load(Ordering::Relaxed)
    }

    /// Where the data lives: the file's path, or a backend's name.
    pub fn location(&self) -> &str {
        &self.location
    }

    fn start(db: Database, location: String) -> Result<Self, StoreError> {
        let next_seq = prepare(&db).map_err(|e| e.at(&location))?;
        let db = Arc::new(db);
        let shared = Arc::new(Shared::default());
        let (requests, inbox) = std::sync::mpsc::channel();
        let writer = Writer {
            db: Arc::clone(&db),
            shared: Arc::clone(&shared),
            next_seq,
            unsynced_since: None,
            storage_broken: false,
            location: location.clone(),
            pending_positions: Default::default(),
        };
        let thread = std::thread::Builder::new()
            .name("store-writer".into())
            .spawn(move || writer.run(inbox))
            .map_err(|e| StoreError::Unavailable(format!("cannot start the store writer: {e}")))?;
        tracing::info!(store.location = %location, store.next_seq = next_seq, "store opened");
        Ok(Self {
            db,
            shared,
            writer: Mutex::new(WriterHandle {
                requests: Some(requests),
                thread: Some(thread),
            }),
            location,
            dir: None,
            backing_up: Arc::default(),
        })
    }

    /// Hands a request to the writer, now.
    fn send(&self, request: Request) -> Result<(), StoreError> {
        if let Some(reason) = self.shared.failure.get() {
            return Err(failed(reason));
        }
        let handle = self
            .writer
            .lock()
            .map_err(|_| StoreError::Unavailable("the store's writer handle is poisoned".into()))?;
        let requests = handle
            .requests
            .as_ref()
            .ok_or_else(|| StoreError::Unavailable("the store is closed".into()))?;
        requests
            .send(request)
            .map_err(|_| StoreError::Unavailable("the store's writer has stopped".into()))
    }

    /// Takes the sender and the thread out, so no request can follow.
    fn detach_writer(&self) -> (Option<Sender<Request>>, Option<JoinHandle<()>>) {
        // A poisoned lock only means a panic elsewhere while it was held; the handle inside
        // is still the one to shut down.
        let mut handle = self
            .writer
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        (handle.requests.take(), handle.thread.take())
    }
}

impl Drop for EmbeddedStore {
    fn drop(&mut self) {
        let (requests, thread) = self.detach_writer();
        // Dropping the only sender lets the writer commit what is queued and return.
        drop(requests);
        if let Some(thread) = thread
            && thread.join().is_err()
        {
            tracing::error!(store.location = %self.location, "the store writer panicked");
        }
    }
}

impl Store for EmbeddedStore {
    fn append(
        &self,
        batch: Batch,
        durability: Durability,
    ) -> BoxFuture<'static, Result<(), StoreError>> {
        match durability {
            Durability::Lazy => {
                let sent = self.send(Request::Append { batch, reply: None });
                Box::pin(async move { sent })
            }
            Durability::Durable => {
                let (reply, answer) = oneshot::channel();
                let sent = self.send(Request::Append {
                    batch,
                    reply: Some(reply),
                });
                Box::pin(async move {
                    sent?;
                    answer.await.unwrap_or_else(|_| Err(writer_vanished()))
                })
            }
        }
    }

    fn replay<'a>(
        &'a self,
        sink: &'a mut (dyn FnMut(Event) + Send),
    ) -> BoxFuture<'a, Result<Recovered, StoreError>> {
        Box::pin(async move {
            let (chunks, mut inbox) = tokio::sync::mpsc::channel(REPLAY_CHUNKS_AHEAD);
            let db = Arc::clone(&self.db);
            // A thread of its own rather than the runtime's blocking pool: replay reads the
            // whole file, and a std thread needs no runtime to be running.
            std::thread::Builder::new()
                .name("store-replay".into())
                .spawn(move || {
                    let outcome = read_everything(&db, &chunks);
                    // Let go of the database before the last message, so a caller that drops
                    // the store on receiving it can reopen the file at once.
                    drop(db);
                    // The receiver is gone only when the replay future was dropped.
                    let _ = chunks.blocking_send(outcome.map(ReplayChunk::Done));
                })
                .map_err(|e| StoreError::Unavailable(format!("cannot start replay: {e}")))?;
            let mut count = 0u64;
            while let Some(chunk) = inbox.recv().await {
                match chunk? {
                    ReplayChunk::Events(events) => {
                        for event in events {
                            count += 1;
                            sink(event);
                        }
                    }
                    ReplayChunk::Done(mut recovered) => {
                        recovered.events = count;
                        tracing::info!(
                            store.location = %self.location,
                            store.events = count,
                            store.idempotency_keys = recovered.idempotency.len(),
                            store.crew_tokens = recovered.crew_tokens.len(),
                            "store replayed"
                        );
                        return Ok(recovered);
                    }
                }
            }
            Err(StoreError::Unavailable(
                "the replay reader stopped before the end of the log".into(),
            ))
        })
    }

    fn timeline(&self, ticket: &TicketId) -> BoxFuture<'_, Result<Vec<Event>, StoreError>> {
        let db = Arc::clone(&self.db);
        let ticket = ticket.clone();
        Box::pin(blocking(move || read_timeline(&db, &ticket)))
    }

    fn ping(&self) -> BoxFuture<'_, Result<(), StoreError>> {
        let (reply, answer) = oneshot::channel();
        let sent = self.send(Request::Ping(reply));
        let db = Arc::clone(&self.db);
        Box::pin(async move {
            sent?;
            answer.await.unwrap_or_else(|_| {
                Err(StoreError::Unavailable(
                    "the store's writer has stopped".into(),
                ))
            })?;
            blocking(move || {
                let txn = db.begin_read().map_err(read_error)?;
                txn.open_table(EVENTS).map_err(read_error)?;
                Ok(())
            })
            .await
        })
    }

    fn backup(
        &self,
        taken_at: Timestamp,
        keep: u32,
    ) -> Option<BoxFuture<'_, Result<Backup, StoreError>>> {
        let dir = self.dir.clone()?;
        if self.backing_up.swap(true, Ordering::AcqRel) {
            return Some(Box::pin(async {
                Err(StoreError::Busy("a backup is being written already".into()))
            }));
        }
        let under_way = BackupUnderWay(Arc::clone(&self.backing_up));
        let (reply, answer) = oneshot::channel();
        let sent = self.send(Request::Snapshot(reply));
        Some(Box::pin(async move {
            sent?;
            let snapshot = answer.await.unwrap_or_else(|_| Err(writer_vanished()))?;
            // The copy owns the mark: it goes on when the request is dropped, and so does
            // the refusal of another backup.
            blocking(move || {
                let _under_way = under_way;
                backup::write(snapshot, &dir, taken_at, keep)
            })
            .await
        }))
    }

    fn newest_backup(&self) -> Option<Timestamp> {
        backup::newest(self.dir.as_deref()?)
    }

    fn close(&self) -> BoxFuture<'_, Result<(), StoreError>> {
        let (requests, thread) = self.detach_writer();
        Box::pin(async move {
            let Some(requests) = requests else {
                // Closed already: nothing left to commit.
                return Ok(());
            };
            let (reply, answer) = oneshot::channel();
            let mut result = match requests.send(Request::Flush(reply)) {
                Ok(()) => {
                    drop(requests);
                    answer.await.unwrap_or_else(|_| Err(writer_vanished()))
                }
                Err(_) => Err(StoreError::Unavailable(
                    "the store's writer has stopped".into(),
                )),
            };
            if let Some(thread) = thread {
                // The writer returns right after the flush; joining waits for that, off the
                // runtime's workers.
                let joined = blocking(move || {
                    thread
                        .join()
                        .map_err(|_| StoreError::OutcomeUnknown("the store writer panicked".into()))
                })
                .await;
                result = result.and(joined);
            }
            tracing::info!(store.location = %self.location, ok = result.is_ok(), "store closed");
            result
        })
    }
}

/// Creates the tables, checks the format, and returns the next event sequence number.
fn prepare(db: &Database) -> Result<u64, PrepareError> {
    let txn = db.begin_write()?;
    let next_seq = {
        let mut meta = txn.open_table(META)?;
        let found = meta.get("format")?.map(|v| v.value());
        match found {
            None => {
                meta.insert("format", FORMAT)?;
            }
            Some(FORMAT) => {}
            Some(other) => return Err(PrepareError::Format(other)),
        }
        txn.open_table(TICKET_EVENTS)?;
        txn.open_table(IDEMPOTENCY)?;
        txn.open_table(CREW_TOKENS)?;
        txn.open_table(CREW_POSITIONS)?;
        let events = txn.open_table(EVENTS)?;
        let last = events.last()?.map(|(seq, _)| seq.value());
        match last {
            None => 0,
            Some(last) => last.checked_add(1).ok_or(PrepareError::SequenceExhausted)?,
        }
    };
    txn.commit()?;
    Ok(next_seq)
}

#[derive(Debug)]
enum PrepareError {
    Redb(redb::Error),
    Format(u64),
    SequenceExhausted,
}

impl<E: Into<redb::Error>> From<E> for PrepareError {
    fn from(e: E) -> Self {
        PrepareError::Redb(e.into())
    }
}

impl PrepareError {
    fn at(self, location: &str) -> StoreError {
        match self {
            PrepareError::Format(found) => StoreError::Corrupt(format!(
                "{location} has layout format {found}; this build reads format {FORMAT}"
            )),
            PrepareError::SequenceExhausted => {
                StoreError::Corrupt(format!("{location} has used every event sequence number"))
            }
            PrepareError::Redb(e) => classify(format!("cannot prepare {location}"), e),
        }
    }
}

fn open_error(location: &str, e: redb::DatabaseError) -> StoreError {
    classify(format!("cannot open {location}"), e.into())
}

/// Unreadable data needs an operator; anything else may pass (disk full, file locked).
fn classify(context: String, e: redb::Error) -> StoreError {
    match e {
        redb::Error::Corrupted(_) | redb::Error::UpgradeRequired(_) => {
            StoreError::Corrupt(format!("{context}: {e}"))
        }
        redb::Error::DatabaseAlreadyOpen => StoreError::Unavailable(format!(
            "{context}: the database is open already, in this process or another"
        )),
        _ => StoreError::Unavailable(format!("{context}: {e}")),
    }
}

fn read_error(e: impl Into<redb::Error>) -> StoreError {
    classify("cannot read the store".into(), e.into())
}

fn failed(reason: &str) -> StoreError {
    StoreError::Unavailable(format!(
        "the store stopped taking writes after a failure ({reason}); restart to recover"
    ))
}

fn writer_vanished() -> StoreError {
    StoreError::OutcomeUnknown("the store's writer stopped before answering".into())
}

/// Runs a blocking read off the async runtime's workers when there is a runtime, inline
/// when there is none.
async fn blocking<T: Send + 'static>(
    read: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    match tokio::runtime::Handle::try_current() {
        Ok(runtime) => runtime
            .spawn_blocking(read)
            .await
            .map_err(|e| StoreError::Unavailable(format!("the store read did not finish: {e}")))?,
        Err(_) => read(),
    }
}

fn decode(seq: u64, bytes: &[u8]) -> Result<Event, StoreError> {
    serde_json::from_slice(bytes)
        .map_err(|e| StoreError::Corrupt(format!("event {seq} cannot be decoded: {e}")))
}

fn read_timeline(db: &Database, ticket: &TicketId) -> Result<Vec<Event>, StoreError> {
    let txn = db.begin_read().map_err(read_error)?;
    let index = txn.open_table(TICKET_EVENTS).map_err(read_error)?;
    let events = txn.open_table(EVENTS).map_err(read_error)?;
    let id = ticket.as_str();
    let mut timeline = Vec::new();
    for entry in index
        .range((id, 0u64)..=(id, u64::MAX))
        .map_err(read_error)?
    {
        let (key, _) = entry.map_err(read_error)?;
        let seq = key.value().1;
        let bytes = events.get(seq).map_err(read_error)?.ok_or_else(|| {
            StoreError::Corrupt(format!(
                "ticket {ticket}'s timeline names missing event {seq}"
            ))
        })?;
        timeline.push(decode(seq, bytes.value())?);
    }
    Ok(timeline)
}

/// Calls `row` with every row of `table`, in key order.
fn for_each_row<K: redb::Key + 'static, V: redb::Value + 'static>(
    txn: &redb::ReadTransaction,
    table: TableDefinition<K, V>,
    mut row: impl for<'a> FnMut(K::SelfType<'a>, V::SelfType<'a>) -> Result<(), StoreError>,
) -> Result<(), StoreError> {
    for entry in txn
        .open_table(table)
        .map_err(read_error)?
        .iter()
        .map_err(read_error)?
    {
        let (key, value) = entry.map_err(read_error)?;
        row(key.value(), value.value())?;
    }
    Ok(())
}

#[derive(Debug)]
enum ReplayChunk {
    Events(Vec<Event>),
    Done(Recovered),
}

/// Streams every event to `chunks`, then returns the other records, all from one snapshot.
fn read_everything(
    db: &Database,
    chunks: &tokio::sync::mpsc::Sender<Result<ReplayChunk, StoreError>>,
) -> Result<Recovered, StoreError> {
    let txn = db.begin_read().map_err(read_error)?;
    let events = txn.open_table(EVENTS).map_err(read_error)?;
    let mut chunk = Vec::with_capacity(REPLAY_CHUNK);
    let stopped = || StoreError::Unavailable("the replay was abandoned".into());
    // Per crew, the sequence number of the last event in the log that set its position.
    let mut logged_position: std::collections::HashMap<crate::domain::CrewId, u64> =
        std::collections::HashMap::new();
    for entry in events.iter().map_err(read_error)? {
        let (seq, bytes) = entry.map_err(read_error)?;
        let event = decode(seq.value(), bytes.value())?;
        if let Some(crew) = event.kind.sets_position_of() {
            // The id is a reference count: no allocation per logged fix.
            logged_position.insert(crew.clone(), seq.value());
        }
        chunk.push(event);
        if chunk.len() == REPLAY_CHUNK {
            let full = std::mem::replace(&mut chunk, Vec::with_capacity(REPLAY_CHUNK));
            chunks
                .blocking_send(Ok(ReplayChunk::Events(full)))
                .map_err(|_| stopped())?;
        }
    }
    if !chunk.is_empty() {
        chunks
            .blocking_send(Ok(ReplayChunk::Events(chunk)))
            .map_err(|_| stopped())?;
    }
    let mut idempotency = Vec::new();
    for_each_row(&txn, IDEMPOTENCY, |key, (request_sha256, ticket)| {
        idempotency.push(IdempotencyRecord {
            key: key.to_owned(),
            request_sha256: *request_sha256,
            ticket: TicketId::new(ticket),
        });
        Ok(())
    })?;
    let mut crew_tokens = Vec::new();
    for_each_row(&txn, CREW_TOKENS, |token, crew| {
        crew_tokens.push(CrewTokenRecord {
            token_sha256: *token,
            crew: crate::domain::CrewId::new(crew),
        });
        Ok(())
    })?;
    let mut positions = Vec::new();
    for_each_row(&txn, CREW_POSITIONS, |crew, (written_before, bytes)| {
        let after_the_log = logged_position
            .get(&crate::domain::CrewId::new(crew))
            .is_none_or(|&logged| written_before > logged);
        if after_the_log {
            positions.push(decode(written_before, bytes)?);
        }
        Ok(())
    })?;
    Ok(Recovered {
        events: 0,
        last_seq: 0,
        idempotency,
        crew_tokens,
        positions,
    })
}

/// A batch ready to be written: events encoded, and checked to read back.
#[derive(Debug)]
struct Encoded {
    events: Vec<(Option<TicketId>, Vec<u8>)>,
    /// A supersedable position fix: the crew's id and the event, kept in `crew_positions`
    /// instead of `events`.
    positions: Vec<(crate::domain::CrewId, Vec<u8>)>,
    idempotency: Option<IdempotencyRecord>,
    crew_token: Option<CrewTokenRecord>,
    revoked_crew_tokens: Vec<CrewTokenRecord>,
}

impl Encoded {
    /// Refuses an event that would not decode: a non-finite number becomes JSON `null`, and
    /// written, it would make every later replay fail. Locations are finite by construction,
    /// so checking the event's own numbers is enough; decoding every event back to be sure
    /// cost the writer a fifth of its time.
    fn new(batch: Batch) -> Result<Self, String> {
        let mut events = Vec::with_capacity(batch.events.len());
        let mut positions = Vec::new();
        for event in batch.events {
            if !event.kind.numbers_are_finite() {
                return Err(format!(
                    "a {} event has a non-finite number and would not read back",
                    event.kind.name()
                ));
            }
            let bytes = serde_json::to_vec(&event)
                .map_err(|e| format!("a {} event cannot be encoded: {e}", event.kind.name()))?;
            match &event.kind {
                crate::domain::EventKind::CrewPosition { crew, .. }
                    if batch.supersedable_position =>
                {
                    positions.push((crew.clone(), bytes));
                }
                _ => events.push((event.kind.ticket().cloned(), bytes)),
            }
        }
        Ok(Self {
            events,
            positions,
            idempotency: batch.idempotency,
            crew_token: batch.crew_token,
            revoked_crew_tokens: batch.revoked_crew_tokens,
        })
    }
}

impl Encoded {
    /// Nothing for the transaction: no events, records or fixes.
    fn is_empty(&self) -> bool {
        self.events.is_empty()
            && self.positions.is_empty()
            && self.idempotency.is_none()
            && self.crew_token.is_none()
            && self.revoked_crew_tokens.is_empty()
    }
}

/// How a group's transaction ended when it did not commit.
enum WriteFailure {
    /// Certainly not committed: the transaction never reached `commit`.
    Aborted(String),
    /// `commit` itself failed: it may or may not be on disk.
    Unknown(String),
}

struct Writer {
    db: Arc<Database>,
    shared: Arc<Shared>,
    next_seq: u64,
    /// When the oldest commit not yet fsynced was made.
    unsynced_since: Option<Instant>,
    /// A transaction failed: the storage is not to be written again. (A refused event stops
    /// the store too, but leaves the storage sound enough to sync what committed.)
    storage_broken: bool,
    location: String,
    /// Supersedable fixes not written yet, each crew's latest, with the log's next sequence
    /// number when each came: written with the next transaction, which comes within
    /// [`LAZY_SYNC_INTERVAL`] (they count as unsynced), so a group of pings alone costs no
    /// transaction.
    pending_positions: std::collections::HashMap<crate::domain::CrewId, (u64, Vec<u8>)>,
}

impl Writer {
    fn run(mut self, inbox: Receiver<Request>) {
        loop {
            let first = match self.unsynced_since {
                Some(since) => {
                    match inbox.recv_timeout(LAZY_SYNC_INTERVAL.saturating_sub(since.elapsed())) {
                        Ok(request) => request,
                        Err(RecvTimeoutError::Timeout) => {
                            self.sync();
                            continue;
                        }
                        Err(RecvTimeoutError::Disconnected) => break,
                    }
                }
                None => match inbox.recv() {
                    Ok(request) => request,
                    Err(_) => break,
                },
            };
            let mut events = first.events();
            let mut group = vec![first];
            take_waiting(&inbox, &mut group, &mut events);
            if group.iter().all(Request::is_lazy) && events < MAX_GROUP_EVENTS {
                // Nobody waits on these: let more gather. Sleeping rather than waiting on the
                // channel spares every sender the wake-up of this thread.
                std::thread::sleep(LAZY_GATHER);
                take_waiting(&inbox, &mut group, &mut events);
            }
            self.process(group);
        }
        // Every sender is gone (close or drop) and everything queued was handled.
        if self.unsynced_since.is_some() {
            self.sync();
        }
    }

    fn process(&mut self, group: Vec<Request>) {
        if let Some(reason) = self.shared.failure.get() {
            let error = failed(reason);
            for request in group {
                answer(request, Err(error.clone()));
            }
            return;
        }
        let mut appends: Vec<(Encoded, Option<Reply>)> = Vec::with_capacity(group.len());
        let mut others = Vec::new();
        let mut refused: Option<String> = None;
        for request in group {
            match request {
                Request::Append { batch, reply } if refused.is_none() => {
                    match Encoded::new(batch) {
                        Ok(encoded) => appends.push((encoded, reply)),
                        Err(reason) => {
                            // This batch and the ones after it are not written: they may rest
                            // on state the log will never have. Those before it are.
                            refused = Some(reason.clone());
                            answer_reply(reply, Err(failed(&reason)));
                        }
                    }
                }
                Request::Append { reply, .. } => {
                    answer_reply(reply, Err(failed(refused.as_deref().unwrap_or_default())));
                }
                other => others.push(other),
            }
        }
        // Supersedable fixes wait for the next transaction, each crew's latest only.
        let mut seq = self.next_seq;
        for (encoded, _) in &mut appends {
            for (crew, bytes) in encoded.positions.drain(..) {
                self.pending_positions.insert(crew, (seq, bytes));
            }
            seq = seq.saturating_add(encoded.events.len() as u64);
        }
        if !self.pending_positions.is_empty() && self.unsynced_since.is_none() {
            self.unsynced_since = Some(Instant::now());
        }
        let anything_to_write = appends.iter().any(|(encoded, _)| !encoded.is_empty());
        let must_sync = appends.iter().any(|(_, reply)| reply.is_some())
            || others
                .iter()
                .any(|r| matches!(r, Request::Flush(_) | Request::Snapshot(_)))
            || self
                .unsynced_since
                .is_some_and(|since| since.elapsed() >= LAZY_SYNC_INTERVAL);
        let outcome = if anything_to_write || (must_sync && self.unsynced_since.is_some()) {
            self.write(&appends, must_sync)
        } else {
            Ok(())
        };
        let (append_error, other_error) = match &outcome {
            Ok(()) => (None, None),
            Err(WriteFailure::Aborted(reason)) => {
                self.storage_broken = true;
                self.fail(reason);
                (Some(failed(reason)), Some(failed(reason)))
            }
            Err(WriteFailure::Unknown(reason)) => {
                self.storage_broken = true;
                self.fail(reason);
                let unknown = StoreError::OutcomeUnknown(format!(
                    "the commit failed and may or may not have reached the disk: {reason}"
                ));
                (Some(unknown), Some(failed(reason)))
            }
        };
        for (_, reply) in appends {
            answer_reply(reply, append_error.clone().map_or(Ok(()), Err));
        }
        if let Some(reason) = &refused {
            self.fail(reason);
        }
        for request in others {
            let result = match (&request, &append_error, &other_error) {
                // A flush whose commit failed cannot say what reached the disk.
                (Request::Flush(_) | Request::Snapshot(_), Some(e), _) => Err(e.clone()),
                (_, _, Some(e)) => Err(e.clone()),
                _ => match self.shared.failure.get() {
                    Some(reason) => Err(failed(reason)),
                    None => Ok(()),
                },
            };
            match request {
                // Taken here, between this group's commit and the next: nothing lazy
                // committed after the fsync can be in it.
                Request::Snapshot(reply) => {
                    let snapshot = result.and_then(|()| self.db.begin_read().map_err(read_error));
                    let _ = reply.send(snapshot);
                }
                request => answer(request, result),
            }
        }
    }

    /// Writes the group in one transaction and commits it, with an fsync when `sync`.
    fn write(
        &mut self,
        appends: &[(Encoded, Option<Reply>)],
        sync: bool,
    ) -> Result<(), WriteFailure> {
        let aborted = |e: redb::Error| WriteFailure::Aborted(e.to_string());
        let mut txn = self.db.begin_write().map_err(|e| aborted(e.into()))?;
        let durability = if sync {
            redb::Durability::Immediate
        } else {
            redb::Durability::None
        };
        txn.set_durability(durability)
            .map_err(|e| aborted(e.into()))?;
        let mut seq = self.next_seq;
        {
            let mut events = txn.open_table(EVENTS).map_err(|e| aborted(e.into()))?;
            let mut index = txn
                .open_table(TICKET_EVENTS)
                .map_err(|e| aborted(e.into()))?;
            let mut idempotency = txn.open_table(IDEMPOTENCY).map_err(|e| aborted(e.into()))?;
            let mut tokens = txn.open_table(CREW_TOKENS).map_err(|e| aborted(e.into()))?;
            if !self.pending_positions.is_empty() {
                let mut positions = txn
                    .open_table(CREW_POSITIONS)
                    .map_err(|e| aborted(e.into()))?;
                for (crew, (written_before, bytes)) in self.pending_positions.drain() {
                    positions
                        .insert(crew.as_str(), (written_before, bytes.as_slice()))
                        .map_err(|e| aborted(e.into()))?;
                }
            }
            for (batch, _) in appends {
                for (ticket, bytes) in &batch.events {
                    events
                        .insert(seq, bytes.as_slice())
                        .map_err(|e| aborted(e.into()))?;
                    if let Some(ticket) = ticket {
                        index
                            .insert((ticket.as_str(), seq), ())
                            .map_err(|e| aborted(e.into()))?;
                    }
                    seq = seq.checked_add(1).ok_or_else(|| {
                        WriteFailure::Aborted("the event sequence is exhausted".into())
                    })?;
                }
                if let Some(record) = &batch.idempotency {
                    idempotency
                        .insert(
                            record.key.as_str(),
                            (&record.request_sha256, record.ticket.as_str()),
                        )
                        .map_err(|e| aborted(e.into()))?;
                }
                if let Some(record) = &batch.crew_token {
                    tokens
                        .insert(&record.token_sha256, record.crew.as_str())
                        .map_err(|e| aborted(e.into()))?;
                }
                for record in &batch.revoked_crew_tokens {
                    tokens
                        .remove(&record.token_sha256)
                        .map_err(|e| aborted(e.into()))?;
                }
            }
        }
        txn.commit()
            .map_err(|e| WriteFailure::Unknown(e.to_string()))?;
        self.next_seq = seq;
        self.shared.commits.fetch_add(1, Ordering::Relaxed);
        if sync {
            self.unsynced_since = None;
        } else if self.unsynced_since.is_none() {
            self.unsynced_since = Some(Instant::now());
        }
        tracing::trace!(
            store.location = %self.location,
            store.batches = appends.len(),
            store.fsync = sync,
            "store commit"
        );
        Ok(())
    }

    /// Makes earlier commits without an fsync durable, with an empty commit that has one.
    fn sync(&mut self) {
        if self.storage_broken {
            // Nothing more can be synced; forget it, or the idle wait would spin.
            self.unsynced_since = None;
            return;
        }
        match self.write(&[], true) {
            Ok(()) => {}
            Err(WriteFailure::Aborted(reason) | WriteFailure::Unknown(reason)) => {
                self.storage_broken = true;
                self.fail(&reason);
            }
        }
    }

    fn fail(&self, reason: &str) {
        if self.shared.failure.set(reason.to_owned()).is_ok() {
            tracing::error!(
                store.location = %self.location,
                error = reason,
                "the store stopped taking writes; restart the service to replay the log"
            );
        }
    }
}

/// Moves the requests waiting now into `group`, up to [`MAX_GROUP_EVENTS`].
fn take_waiting(inbox: &Receiver<Request>, group: &mut Vec<Request>, events: &mut usize) {
    while *events < MAX_GROUP_EVENTS {
        match inbox.try_recv() {
            Ok(request) => {
                *events += request.events();
                group.push(request);
            }
            Err(_) => break,
        }
    }
}

fn answer(request: Request, result: Result<(), StoreError>) {
    match request {
        Request::Append { reply, .. } => answer_reply(reply, result),
        Request::Flush(reply) | Request::Ping(reply) => {
            // The caller may have stopped waiting; nothing to do then.
            let _ = reply.send(result);
        }
        Request::Snapshot(reply) => {
            // Only failures come here: a snapshot is taken where its group is committed.
            let error = result.err().unwrap_or_else(|| {
                StoreError::Unavailable("the store's writer took no snapshot".into())
            });
            let _ = reply.send(Err(error));
        }
    }
}

fn answer_reply(reply: Option<Reply>, result: Result<(), StoreError>) {
    match reply {
        Some(reply) => {
            let _ = reply.send(result);
        }
        None => {
            if let Err(e) = result {
                // Its caller was answered on enqueue; a lost lazy batch is only logged.
                tracing::warn!(error = %e, "a lazy batch was not written");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::conformance::{self, Backend};
    use redb::StorageBackend;
    use redb::backends::InMemoryBackend;

    /// Memory that outlives the database on it, so the suite can reopen it; `close` is not
    /// passed on, since the bytes are all there is.
    #[derive(Debug, Clone, Default)]
    struct SharedMemory(Arc<InMemoryBackend>);

    impl StorageBackend for SharedMemory {
        fn len(&self) -> Result<u64, std::io::Error> {
            StorageBackend::len(&*self.0)
        }
        fn read(&self, offset: u64, out: &mut [u8]) -> Result<(), std::io::Error> {
            StorageBackend::read(&*self.0, offset, out)
        }
        fn set_len(&self, len: u64) -> Result<(), std::io::Error> {
            StorageBackend::set_len(&*self.0, len)
        }
        fn sync_data(&self) -> Result<(), std::io::Error> {
            StorageBackend::sync_data(&*self.0)
        }
        fn write(&self, offset: u64, data: &[u8]) -> Result<(), std::io::Error> {
            StorageBackend::write(&*self.0, offset, data)
        }
    }

    struct InMemory;

    impl Backend for InMemory {
        type Store = EmbeddedStore;
        type Location = SharedMemory;

        fn location(&self) -> SharedMemory {
            SharedMemory::default()
        }

        async fn open(&self, location: &SharedMemory) -> EmbeddedStore {
            EmbeddedStore::with_backend(location.clone(), "memory").unwrap()
        }
    }

    /// The in-memory store is what other layers' tests use: it keeps the same contract.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn the_in_memory_store_keeps_the_store_contract() {
        conformance::run_all(&InMemory).await;
    }

    /// A group of supersedable fixes alone commits nothing: the fixes wait for the next
    /// transaction, which the writer forces within `LAZY_SYNC_INTERVAL` when nothing else
    /// comes, and only each crew's latest is written.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn fixes_alone_wait_for_the_next_transaction_but_not_longer() {
        let memory = SharedMemory::default();
        let store = EmbeddedStore::with_backend(memory.clone(), "memory").unwrap();
        let before = store.commits();
        for at in 1..=20 {
            let fix = Batch {
                events: vec![conformance::crew_position_of("C-1", at)],
                supersedable_position: true,
                ..Batch::default()
            };
            store.append(fix, Durability::Lazy).await.unwrap();
        }
        // Answered once the writer has handled everything before it.
        store.ping().await.unwrap();
        assert_eq!(
            store.commits(),
            before,
            "a group of fixes alone was committed"
        );
        let deadline = Instant::now() + 10 * LAZY_SYNC_INTERVAL;
        while store.commits() == before {
            assert!(Instant::now() < deadline, "the fixes were never written");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        drop(store);
        let reopened = EmbeddedStore::with_backend(memory, "memory").unwrap();
        let (events, recovered) = conformance::replay_all(&reopened).await;
        assert!(events.is_empty(), "{events:?}");
        assert_eq!(
            recovered.positions,
            vec![conformance::crew_position_of("C-1", 20)]
        );
    }

    #[test]
    fn an_event_that_would_not_decode_is_refused_before_writing() {
        let mut event = conformance::every_kind_of_event()
            .into_iter()
            .find(|e| matches!(e.kind, crate::domain::EventKind::Dispatched { .. }))
            .unwrap();
        if let crate::domain::EventKind::Dispatched { eta_minutes, .. } = &mut event.kind {
            *eta_minutes = f64::INFINITY;
        }
        let refused = Encoded::new(conformance::events_batch(vec![event])).unwrap_err();
        assert!(refused.contains("dispatched"), "{refused}");
    }

    #[test]
    fn every_kind_of_event_encodes_and_is_indexed_under_its_ticket() {
        let events = conformance::every_kind_of_event();
        let encoded = Encoded::new(conformance::events_batch(events.clone())).unwrap();
        assert_eq!(encoded.events.len(), events.len());
        for ((ticket, bytes), event) in encoded.events.iter().zip(&events) {
            assert_eq!(ticket.as_ref(), event.kind.ticket());
            assert_eq!(&decode(0, bytes).unwrap(), event);
        }
    }

    /// Without a tokio runtime (a plain thread, another executor) the store still answers:
    /// reads run inline and the replay reader is a thread of its own.
    #[test]
    fn works_without_a_tokio_runtime() {
        let store = EmbeddedStore::in_memory().unwrap();
        let batch = conformance::numbered_batch(0);
        block_on(store.append(batch.clone(), Durability::Durable)).unwrap();
        let mut events = Vec::new();
        let mut sink = |e| events.push(e);
        let recovered = block_on(store.replay(&mut sink)).unwrap();
        assert_eq!(recovered.events, batch.events.len() as u64);
        assert_eq!(events, batch.events);
        let timeline = block_on(store.timeline(&TicketId::new("T-0"))).unwrap();
        assert_eq!(timeline, batch.events);
        block_on(store.ping()).unwrap();
        block_on(store.close()).unwrap();
    }

    /// Polls on this thread until ready, with no runtime at all.
    fn block_on<F: std::future::Future>(future: F) -> F::Output {
        assert!(tokio::runtime::Handle::try_current().is_err());
        let mut future = std::pin::pin!(future);
        let mut context = std::task::Context::from_waker(std::task::Waker::noop());
        loop {
            if let std::task::Poll::Ready(output) = future.as_mut().poll(&mut context) {
                return output;
            }
            std::thread::yield_now();
        }
    }
}
