//! The store: where every event, idempotency key and crew token is kept, behind one trait
//! with an embedded backend (redb, on local disk) and, later, a Redis backend. The engine's
//! state is never stored as such: it is rebuilt at start by replaying the events.
//!
//! # Contract every backend keeps
//! - `append` enqueues the batch **when it is called**, not when its future is polled, so
//!   batches reach the store in the order the engine decided them (callers call it while
//!   they hold the engine's lock, and await the future after releasing it).
//! - A batch is all or nothing: its events, its idempotency record and its crew token are
//!   committed together.
//! - With [`Durability::Durable`] the future resolves `Ok` only once the batch is on disk
//!   (fsync): a crash after that loses nothing. [`Durability::Lazy`] batches (crew position
//!   pings, where a lost one is harmless) are committed with the next commit and may be lost
//!   in a crash; they are never reordered before an earlier batch.
//! - An error says whether the batch may have been written: see [`StoreError`].

#[doc(hidden)]
pub mod conformance;
pub mod embedded;

pub use embedded::EmbeddedStore;

use crate::domain::{CrewId, Event, TicketId};
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
    pub idempotency: Vec<IdempotencyRecord>,
    pub crew_tokens: Vec<CrewTokenRecord>,
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
}

impl StoreError {
    /// True when the batch certainly was not written.
    pub fn is_certainly_aborted(&self) -> bool {
        matches!(self, StoreError::Unavailable(_))
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
}
