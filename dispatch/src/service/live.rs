//! The live feed behind `GET /v1/events`: every committed event, in the order the engine
//! decided them, with the ticket and crew it touched as they stand after its batch, so a
//! control-room page can redraw without asking again.
//!
//! An event is published only once its batch is on disk: a watcher never sees what a crash
//! could take back. Batches are handed over in decision order (under the engine's lock) and
//! one task awaits their commits in that order, so the feed keeps the log's order. Nothing is
//! prepared while no one watches, so the write path pays nothing for an unwatched feed.

use super::Commit;
use crate::domain::{Crew, CrewId, Event, EventKind, Ticket};
use crate::engine::Engine;
use crate::metrics;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::sync::{broadcast, mpsc, watch};

/// How many events a slow watcher may fall behind before it is told it missed some.
const BACKLOG: usize = 4096;

/// One committed event as the feed shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct LiveEvent {
    /// Increases by one per published event while the process runs; a gap means events
    /// were recorded while no one watched.
    pub seq: u64,
    pub event: Event,
    /// The event's ticket after its batch.
    pub ticket: Option<Ticket>,
    /// The crew the event names, after its batch.
    pub crew: Option<Crew>,
}

/// What a watcher receives next.
#[derive(Debug, Clone, PartialEq)]
pub enum Received {
    Event(Arc<LiveEvent>),
    /// The watcher fell this many events behind and they are gone: it should reload.
    Missed(u64),
}

type Pending = (Commit, Vec<Arc<LiveEvent>>);

#[derive(Debug)]
pub(super) struct LiveFeed {
    sender: broadcast::Sender<Arc<LiveEvent>>,
    pending: mpsc::UnboundedSender<Pending>,
    seq: AtomicU64,
    ended: watch::Sender<bool>,
}

impl LiveFeed {
    /// Starts the task that publishes batches as their commits finish; it ends when the
    /// feed is dropped. Call inside a tokio runtime.
    pub(super) fn start() -> Self {
        let (sender, _) = broadcast::channel(BACKLOG);
        let (pending, mut batches) = mpsc::unbounded_channel::<Pending>();
        let publisher = sender.clone();
        tokio::spawn(async move {
            while let Some((commit, events)) = batches.recv().await {
                // A failed commit fails the dispatcher: its events are not shown.
                if commit.await.is_ok() {
                    for event in events {
                        // No receiver left is fine: the feed is live only.
                        let _ = publisher.send(event);
                    }
                }
            }
        });
        Self {
            sender,
            pending,
            seq: AtomicU64::new(0),
            ended: watch::Sender::new(false),
        }
    }

    /// The feed's view of `events`, which `engine` has applied; `None` while no one
    /// watches. Call with the engine locked, before [`LiveFeed::publish_after`].
    pub(super) fn prepare(&self, engine: &Engine, events: &[Event]) -> Option<Vec<Arc<LiveEvent>>> {
        if self.sender.receiver_count() == 0 || events.is_empty() {
            return None;
        }
        let first = self.seq.fetch_add(events.len() as u64, Ordering::Relaxed);
        Some(
            events
                .iter()
                .zip(first..)
                .map(|(event, seq)| {
                    Arc::new(LiveEvent {
                        seq,
                        event: event.clone(),
                        ticket: event.kind.ticket().and_then(|t| engine.ticket(t)).cloned(),
                        crew: crew_of(&event.kind).and_then(|c| engine.crew(c)).cloned(),
                    })
                })
                .collect(),
        )
    }

    /// Publishes `events` once `commit` is durable, after every batch handed over before.
    pub(super) fn publish_after(&self, commit: Commit, events: Vec<Arc<LiveEvent>>) {
        // The receiver lives as long as the runtime; if it is gone, so is every watcher.
        let _ = self.pending.send((commit, events));
    }

    pub(super) fn subscribe(&self) -> Subscription {
        metrics::event_stream_clients(1.0);
        Subscription {
            events: self.sender.subscribe(),
            ended: self.ended.subscribe(),
        }
    }

    /// Ends every subscription (shutdown).
    pub(super) fn end(&self) {
        self.ended.send_replace(true);
    }
}

/// One watcher's place in the feed.
#[derive(Debug)]
pub struct Subscription {
    events: broadcast::Receiver<Arc<LiveEvent>>,
    ended: watch::Receiver<bool>,
}

impl Subscription {
    /// The next event, or `None` once the feed has ended.
    pub async fn next(&mut self) -> Option<Received> {
        if *self.ended.borrow() {
            return None;
        }
        tokio::select! {
            received = self.events.recv() => match received {
                Ok(event) => Some(Received::Event(event)),
                Err(broadcast::error::RecvError::Lagged(missed)) => Some(Received::Missed(missed)),
                Err(broadcast::error::RecvError::Closed) => None,
            },
            _ = self.ended.wait_for(|ended| *ended) => None,
        }
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        metrics::event_stream_clients(-1.0);
    }
}

/// The crew an event is about, if any.
fn crew_of(kind: &EventKind) -> Option<&CrewId> {
    match kind {
        EventKind::Dispatched { crew, .. }
        | EventKind::Declined { crew, .. }
        | EventKind::Acknowledged { crew, .. }
        | EventKind::Departed { crew, .. }
        | EventKind::Arrived { crew, .. }
        | EventKind::Restored { crew, .. }
        | EventKind::Returned { crew, .. }
        | EventKind::CrewDuty { crew, .. }
        | EventKind::CrewPosition { crew, .. } => Some(crew),
        EventKind::Cancelled { crew, .. } => crew.as_ref(),
        EventKind::Reported { .. }
        | EventKind::Merged { .. }
        | EventKind::Queued { .. }
        | EventKind::Closed { .. }
        | EventKind::SlaWarning { .. }
        | EventKind::SlaBreached { .. }
        | EventKind::StormMode { .. } => None,
    }
}
