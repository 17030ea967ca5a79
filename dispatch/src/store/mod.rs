//! The store: where every event, idempotency key and crew token is kept, behind one trait
//! with an embedded backend (redb, on local disk) and a Redis backend that several instances
//! share. The engine's state is never stored as such: it is rebuilt at start by replaying the
//! events.
//!
//! # Contract every backend keeps
//! - `append` enqueues the batch **when it is called**, not when its future is polled, so
//!   batches reach the store in the order the engine decided them (callers call it while
//!   they hold the engine's lock, and await the future after releasing it).
//! - A batch is all or nothing: its events, its idempotency record, its crew token and its
//!   revocations are committed together.
//! - A crew token revoked by a batch is not among the [`Recovered::crew_tokens`] of any later
//!   replay.
//! - With [`Durability::Durable`] the future resolves `Ok` only once the batch is on disk
//!   (fsync): a crash after that loses nothing. [`Durability::Lazy`] batches (crew position
//!   pings, where a lost one is harmless) are committed with the next commit and may be lost
//!   in a crash; they are never reordered before an earlier batch.
//! - An error says whether the batch may have been written: see [`StoreError`].
//!
//! A store that several instances share ([`Store::shared`]) also numbers its batches, lets
//! one instance at a time append (the holder of the region's lease), and lets every instance
//! follow what is appended: see [`SharedLog`].

#[doc(hidden)]
pub mod conformance;
pub mod embedded;
pub mod redis;

pub use embedded::EmbeddedStore;
pub use redis::RedisStore;

use crate::domain::{CrewId, Event, TicketId, Timestamp};
use futures_util::future::BoxFuture;

/// A client's `Idempotency-Key` and what it produced.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct IdempotencyRecord {
    pub key: String,
    /// SHA-256 of the request body as received: the same key with another body is a 422.
    pub request_sha256: [u8; 32],
    pub ticket: TicketId,
}

/// A crew token minted by an admin. Only its SHA-256 is kept.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CrewTokenRecord {
    pub token_sha256: [u8; 32],
    pub crew: CrewId,
}

/// What one engine decision writes.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Batch {
    pub events: Vec<Event>,
    pub idempotency: Option<IdempotencyRecord>,
    pub crew_token: Option<CrewTokenRecord>,
    /// Crew tokens withdrawn (a lost or stolen phone): from this batch on they open nothing.
    pub revoked_crew_tokens: Vec<CrewTokenRecord>,
    /// The batch is one crew position fix that changes nothing but the crew's position (the
    /// crew was answering: a fix from an unresponsive crew also brings it back, and is not
    /// one of these). A store may keep only each crew's latest such fix instead of logging
    /// every one, and hand it back in [`Recovered::positions`].
    pub supersedable_position: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// Resolve only once on disk.
    Durable,
    /// Resolve once accepted; written with the next commit.
    Lazy,
}

/// What a store holds besides the event log, for rebuilding the service at start.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Recovered {
    pub events: u64,
    /// The sequence number of the last batch replayed: 0 for an empty log, and always 0 for
    /// a store that is not shared (it does not number batches).
    pub last_seq: u64,
    pub idempotency: Vec<IdempotencyRecord>,
    /// The crew tokens minted and not revoked.
    pub crew_tokens: Vec<CrewTokenRecord>,
    /// Each crew's latest [`Batch::supersedable_position`] fix that the store kept apart from
    /// the log, when it came after every event in the log that set that crew's position
    /// ([`crate::domain::EventKind::sets_position_of`]): to be set as the crew's position
    /// after the replay, and nothing else (it brings no crew back).
    pub positions: Vec<Event>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// Nothing was written; the same request may be retried.
    #[error("the store is unavailable: {0}")]
    Unavailable(String),
    /// The batch may or may not have been written (a timeout after sending, a failed
    /// fsync). The caller must not answer as if it succeeded, nor as if it did not.
    #[error("the store's outcome is unknown: {0}")]
    OutcomeUnknown(String),
    /// The stored data cannot be read back: needs an operator.
    #[error("the stored data is unreadable: {0}")]
    Corrupt(String),
    /// The store is reachable but not fit for the promises the service makes (no
    /// persistence, a server too old): needs an operator. Nothing was written.
    #[error("the store is not fit for use: {0}")]
    Unfit(String),
    /// Something the store does one at a time (a backup) is under way, so this one was not
    /// started. Nothing was written.
    #[error("the store is busy: {0}")]
    Busy(String),
}

impl StoreError {
    /// True when the batch certainly was not written.
    pub fn is_certainly_aborted(&self) -> bool {
        matches!(
            self,
            StoreError::Unavailable(_) | StoreError::Unfit(_) | StoreError::Busy(_)
        )
    }
}

/// One store, whatever the backend. Object-safe so the backend can be chosen by config.
pub trait Store: Send + Sync + std::fmt::Debug + 'static {
    /// Enqueues `batch` now; the future resolves when it is committed with `durability`.
    fn append(
        &self,
        batch: Batch,
        durability: Durability,
    ) -> BoxFuture<'static, Result<(), StoreError>>;

    /// Feeds every stored event, oldest first, to `sink`, and returns the other records.
    fn replay<'a>(
        &'a self,
        sink: &'a mut (dyn FnMut(Event) + Send),
    ) -> BoxFuture<'a, Result<Recovered, StoreError>>;

    /// The events of one ticket, oldest first (its timeline); empty for an unknown ticket.
    fn timeline(&self, ticket: &TicketId) -> BoxFuture<'_, Result<Vec<Event>, StoreError>>;

    /// Answers when the store can take writes (`/readyz`).
    fn ping(&self) -> BoxFuture<'_, Result<(), StoreError>>;

    /// Commits everything accepted so far and stops taking batches (graceful shutdown).
    fn close(&self) -> BoxFuture<'_, Result<(), StoreError>>;

    /// The shared side of a store several instances use; `None` for a store that this
    /// process alone writes.
    fn shared(&self) -> Option<&dyn SharedLog> {
        None
    }

    /// Writes a consistent copy of everything committed so far into a new file of its own,
    /// named for `taken_at`, while writes go on, then removes the oldest backups so that
    /// `keep` remain (0: none removed). `None` when the backend keeps no file of its own to
    /// copy: Redis is backed up with Redis's tools, a store in memory has no disk.
    fn backup(
        &self,
        _taken_at: Timestamp,
        _keep: u32,
    ) -> Option<BoxFuture<'_, Result<Backup, StoreError>>> {
        None
    }

    /// When the newest backup [`Store::backup`] left was taken (to the second), if any.
    fn newest_backup(&self) -> Option<Timestamp> {
        None
    }
}

/// A backup [`Store::backup`] wrote and synced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backup {
    /// The backup's file: a store file of the same format, ready to be put in place of the
    /// store's own.
    pub path: std::path::PathBuf,
    /// The events it holds: every event committed when the backup began.
    pub events: u64,
    pub bytes: u64,
    /// When it was asked for: it names the file.
    pub taken_at: Timestamp,
    /// Older backups removed after it, beyond the number kept.
    pub removed: Vec<std::path::PathBuf>,
}

/// A batch with its place in a shared log: 1 for the first batch ever appended, then one
/// more per batch, with no gaps.
#[derive(Debug, Clone, PartialEq)]
pub struct Sequenced {
    pub seq: u64,
    pub batch: Batch,
}

/// The outcome of asking for the region's lease.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lease {
    /// This instance holds it; the log's last batch then was `head`. Appends are refused
    /// until [`SharedLog::fence`] says where this instance's appends begin.
    Acquired { head: u64 },
    /// Another instance holds it, advertising `holder` (where to send writes).
    HeldBy(String),
    /// Nobody holds it, but taking it failed in a race: ask again.
    Vacant,
}

/// A log that several instances share: one at a time appends (the lease holder, fenced so a
/// deposed holder's appends are refused), every one follows.
///
/// # Contract
/// - Appends succeed only while this instance holds the lease and is fenced, and only in
///   sequence: a batch whose number does not follow the log's last one is refused as
///   certainly not written. So two instances can never both extend the log, even if one
///   still believes it leads after its lease has passed to the other.
/// - [`SharedLog::tail`] returns batches after the last one replayed or tailed, in order,
///   each exactly once per call sequence.
pub trait SharedLog: Send + Sync + std::fmt::Debug {
    /// Tries to take the region's lease for `ttl`, advertising `holder` to the others.
    fn acquire(
        &self,
        holder: &str,
        ttl: std::time::Duration,
    ) -> BoxFuture<'_, Result<Lease, StoreError>>;

    /// Extends the lease this instance holds; `Ok(false)` when it is no longer its own.
    fn renew(&self, ttl: std::time::Duration) -> BoxFuture<'_, Result<bool, StoreError>>;

    /// Gives the lease up (shutdown), so another instance need not wait for it to expire.
    fn release(&self) -> BoxFuture<'_, Result<(), StoreError>>;

    /// Lets appends through under the lease taken last, numbering them from `next_seq`.
    fn fence(&self, next_seq: u64);

    /// Refuses appends from now on (the lease is lost or given up).
    fn unfence(&self);

    /// Batches appended after the last one replayed or tailed, oldest first; waits up to
    /// `wait` for one when there is none.
    fn tail(&self, wait: std::time::Duration) -> BoxFuture<'_, Result<Vec<Sequenced>, StoreError>>;

    /// The sequence number of the log's last batch (0 when empty).
    fn head(&self) -> BoxFuture<'_, Result<u64, StoreError>>;
}
