//! Several instances on one shared store (Redis): one decides, every one follows.
//!
//! The engine decides in memory, so only one instance may decide for a region at a time: the
//! holder of the region's lease ([`Dispatcher::keep_lease`]). It takes the lease only once
//! its engine has followed the log to the end, fences its appends with it (the store refuses
//! them once the lease has passed on), and gives it up when it cannot renew it. The others
//! follow the log into their engines ([`Dispatcher::follow_log`]), so they answer reads and
//! feed `/v1/events` themselves, and the API hands their writes to the holder.
//!
//! Memory may run ahead of the log when an append fails (Redis down, a lease lost under a
//! pause). The instance then refuses writes, waits for the store, rebuilds its engine from the
//! log and takes part again ([`Dispatcher::heal`]) — no restart needed.

use super::{Dispatcher, Inner, ServiceError};
use crate::engine::Engine;
use crate::store::{Lease, Sequenced, SharedLog};
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// Makes the fresh engine (region and configuration loaded) that a rebuild replays into.
pub type EngineFactory = Box<dyn Fn() -> Engine + Send + Sync>;

/// How long a follower waits for a batch before asking again.
const TAIL_WAIT: Duration = Duration::from_millis(500);
/// How often the heal task looks for a failure, and then for the store.
const HEAL_POLL: Duration = Duration::from_millis(250);

pub(super) struct Replication {
    factory: EngineFactory,
    leading: AtomicBool,
    /// Where the deciding instance takes writes, when known.
    leader: Mutex<Option<String>>,
    /// The sequence number of the last batch in memory.
    applied: watch::Sender<u64>,
}

impl std::fmt::Debug for Replication {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Replication")
            .field("leading", &self.leading)
            .field("leader", &self.leader)
            .field("applied", &*self.applied.borrow())
            .finish_non_exhaustive()
    }
}

impl Replication {
    pub(super) fn new(factory: EngineFactory, applied: u64) -> Self {
        Self {
            factory,
            leading: AtomicBool::new(false),
            leader: Mutex::new(None),
            applied: watch::Sender::new(applied),
        }
    }

    pub(super) fn leading(&self) -> bool {
        self.leading.load(Ordering::SeqCst)
    }

    pub(super) fn applied(&self, seq: u64) {
        self.applied.send_replace(seq);
    }

    fn set_leader(&self, leader: Option<String>) {
        match self.leader.lock() {
            Ok(mut current) => *current = leader,
            Err(poisoned) => *poisoned.into_inner() = leader,
        }
    }

    fn leader(&self) -> Option<String> {
        match self.leader.lock() {
            Ok(current) => current.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }
}

impl Dispatcher {
    /// True with a store that several instances share.
    pub fn is_shared(&self) -> bool {
        self.replication.is_some()
    }

    /// Where to send writes when another instance decides (`None`: this one decides, or the
    /// holder is not known yet).
    pub fn leader_url(&self) -> Option<String> {
        let replication = self.replication.as_ref()?;
        if replication.leading() {
            None
        } else {
            replication.leader()
        }
    }

    /// The sequence number of the last batch this instance has in memory (0 with a store of
    /// its own, which does not number batches).
    pub fn applied_seq(&self) -> u64 {
        self.replication.as_ref().map_or(0, |r| *r.applied.borrow())
    }

    /// Waits until batch `seq` is in memory; false if it is not within `timeout`.
    pub async fn wait_applied(&self, seq: u64, timeout: Duration) -> bool {
        let Some(replication) = &self.replication else {
            return true;
        };
        let mut applied = replication.applied.subscribe();
        matches!(
            tokio::time::timeout(timeout, applied.wait_for(|&a| a >= seq)).await,
            Ok(Ok(_))
        )
    }

    /// Before a read on an instance that follows: waits until it has everything the log
    /// held when the read came, so every instance answers alike.
    pub async fn catch_up(&self) -> Result<(), ServiceError> {
        let Some(log) = self.store.shared() else {
            return Ok(());
        };
        if self.decides() {
            return Ok(());
        }
        let timeout = self.options.write_timeout;
        let head = tokio::time::timeout(timeout, log.head())
            .await
            .map_err(|_| ServiceError::Unavailable)?
            .map_err(|_| ServiceError::Unavailable)?;
        if self.wait_applied(head, timeout).await {
            Ok(())
        } else {
            Err(ServiceError::Unavailable)
        }
    }

    /// Applies a batch another instance appended. Batches already in memory are skipped; a
    /// gap means something was missed, so memory is rebuilt.
    fn apply_replicated(&self, sequenced: Sequenced) -> Result<(), ServiceError> {
        let Sequenced { seq, batch } = sequenced;
        let mut inner = self.lock()?;
        if seq <= inner.applied_seq {
            return Ok(());
        }
        if seq != inner.applied_seq + 1 {
            self.health.fail(&format!(
                "the log went from batch {} to {seq}: a batch was missed",
                inner.applied_seq
            ));
            return Err(ServiceError::Unavailable);
        }
        for event in &batch.events {
            inner.engine.apply(event);
            inner.note(event);
        }
        if let Some(record) = batch.idempotency {
            inner.idempotency.insert(record.key.clone(), record);
        }
        if let Some(record) = batch.crew_token {
            self.tokens.add_crew_token(record.token_sha256, record.crew);
        }
        self.tokens.remove_crew_tokens(
            batch
                .revoked_crew_tokens
                .iter()
                .map(|record| &record.token_sha256),
        );
        // Already durable: shown at once.
        if let Some(live) = self.live.prepare(&inner.engine, &batch.events) {
            self.live.publish_after(super::committed(), live);
        }
        inner.applied_seq = seq;
        if let Some(replication) = &self.replication {
            replication.applied(seq);
        }
        Ok(())
    }

    /// Follows the log into memory while another instance decides; runs until aborted.
    pub async fn follow_log(self: Arc<Self>) {
        let Some(log) = self.store.shared() else {
            return;
        };
        let mut warned_at: Option<Instant> = None;
        loop {
            if self.health.is_failed() || self.decides() {
                tokio::time::sleep(HEAL_POLL).await;
                continue;
            }
            match log.tail(TAIL_WAIT).await {
                Ok(batches) => {
                    for batch in batches {
                        if self.apply_replicated(batch).is_err() {
                            break;
                        }
                    }
                }
                Err(error) => {
                    if warned_at.is_none_or(|at| at.elapsed() > Duration::from_secs(10)) {
                        tracing::warn!(%error, "cannot follow the shared log; retrying");
                        warned_at = Some(Instant::now());
                    }
                    tokio::time::sleep(TAIL_WAIT).await;
                }
            }
        }
    }

    /// Takes the region's lease when it is free and this instance has followed the log to
    /// its end, renews it while held (every third of `options.lease`), and steps down when
    /// it cannot renew it. `holder` is the URL the other instances send writes to. Runs until aborted.
    pub async fn keep_lease(self: Arc<Self>, holder: String) {
        let (Some(log), Some(replication)) = (self.store.shared(), &self.replication) else {
            return;
        };
        let ttl = self.options.lease;
        let tick = ttl / 3;
        loop {
            if self.health.is_failed() {
                // `heal` steps down and rebuilds; the lease is sought again afterwards.
            } else if replication.leading() {
                match tokio::time::timeout(tick, log.renew(ttl)).await {
                    Ok(Ok(true)) => {}
                    Ok(Ok(false)) => self.lose_lease(log, "the lease passed to another instance"),
                    Ok(Err(_)) | Err(_) => self.lose_lease(log, "the lease could not be renewed"),
                }
            } else {
                match tokio::time::timeout(tick, log.acquire(&holder, ttl)).await {
                    Ok(Ok(Lease::Acquired { head })) => {
                        if self.wait_applied(head, ttl / 2).await {
                            self.take_lead(log, replication, &holder);
                        } else {
                            tracing::warn!(
                                head,
                                "took the lease but could not follow the log to its end in time: giving it back"
                            );
                            let _ = log.release().await;
                        }
                    }
                    Ok(Ok(Lease::HeldBy(other))) => replication.set_leader(Some(other)),
                    Ok(Ok(Lease::Vacant)) => {}
                    Ok(Err(_)) | Err(_) => replication.set_leader(None),
                }
            }
            tokio::time::sleep(tick).await;
        }
    }

    fn take_lead(&self, log: &dyn SharedLog, replication: &Replication, holder: &str) {
        let Ok(inner) = self.lock() else {
            return;
        };
        log.fence(inner.applied_seq + 1);
        replication.leading.store(true, Ordering::SeqCst);
        replication.set_leader(Some(holder.to_owned()));
        let applied = inner.applied_seq;
        drop(inner);
        tracing::info!(applied, "this instance now decides for the region");
        // Deadlines that came due while another instance decided are this one's now.
        self.deadline_moved.notify_one();
    }

    /// Stops deciding once the lease is lost, and has memory rebuilt from the log: what this
    /// instance decided last may have been refused by the log (a position ping's append,
    /// answered before Redis had it, fails with no caller to tell), and memory ahead of the
    /// log would take the next holder's batches of those numbers for ones it already had.
    fn lose_lease(&self, log: &dyn SharedLog, why: &str) {
        self.step_down(log, why);
        self.health.must_rebuild(why);
    }

    fn step_down(&self, log: &dyn SharedLog, why: &str) {
        if let Some(replication) = &self.replication {
            log.unfence();
            replication.leading.store(false, Ordering::SeqCst);
            replication.set_leader(None);
            tracing::warn!(why, "this instance no longer decides for the region");
        }
    }

    /// Waits for a failed write, then for the store, then rebuilds memory from the log and
    /// accepts writes again. Runs until aborted; only with a shared store, whose log is the
    /// whole truth (a store of its own needs an operator and a restart).
    pub async fn heal(self: Arc<Self>) {
        let Some(replication) = &self.replication else {
            return;
        };
        loop {
            tokio::time::sleep(HEAL_POLL).await;
            if !self.health.is_failed() {
                continue;
            }
            // Memory may be ahead of the log: stop deciding before anything else.
            if replication.leading()
                && let Some(log) = self.store.shared()
            {
                self.step_down(log, "a write failed: rebuilding from the log");
            }
            if self.store.ping().await.is_err() {
                continue;
            }
            let engine = (replication.factory)();
            match Self::load(engine, self.store.as_ref(), &self.tokens).await {
                Ok(inner) => {
                    let applied = inner.applied_seq;
                    self.replace_inner(inner);
                    replication.applied(applied);
                    self.health.recovered();
                }
                Err(error) => {
                    tracing::warn!(%error, "rebuilding from the shared log failed; retrying")
                }
            }
        }
    }

    fn replace_inner(&self, fresh: Inner) {
        match self.inner.lock() {
            Ok(mut inner) => *inner = fresh,
            Err(poisoned) => {
                *poisoned.into_inner() = fresh;
                self.inner.clear_poison();
            }
        }
    }
}
