//! The Redis backend: a region's event log that several `dispatch serve` instances share, on
//! one Redis server or a Redis Cluster (redis-rs on tokio).
//!
//! # One writer at a time, every instance a reader
//! The engine decides in memory, so two instances deciding at once would each send a crew
//! the other already sent. Instead one instance at a time holds the region's **lease** (a key
//! with a time to live, renewed while held) and only it appends; the others follow the log
//! ([`SharedLog::tail`]) to keep their engines current for reads and `/v1/events`, and hand
//! writes to the holder (see `api/forward.rs`). Every append runs `append.lua`: it refuses
//! the batch unless the caller's lease value is the one in Redis and the batch's sequence
//! number follows the log's last, so a holder that lost its lease (a pause, a partition)
//! can never extend the log behind the new holder's back — its memory is then rebuilt from
//! the log. The same script checks, as a last line of defence, that no crew is claimed while
//! it holds another ticket and no ticket gets a second crew.
//!
//! # Keys
//! Every key of a region carries the hash tag `{namespace}` (the region's name by default),
//! so a region's whole log and its checks live in one Cluster slot and one script never
//! crosses slots; different regions spread over the shards.
//!
//! | key                                   | type   | holds                                   |
//! |---------------------------------------|--------|-----------------------------------------|
//! | `dispatch:{ns}:log`                   | stream | one entry per batch: `seq`, `batch` JSON |
//! | `dispatch:{ns}:seq`                   | string | the last batch's sequence number         |
//! | `dispatch:{ns}:lease`                 | string | `<token> <holder URL>`, with a TTL       |
//! | `dispatch:{ns}:idempotency`           | hash   | key → record JSON                        |
//! | `dispatch:{ns}:crew-tokens`           | hash   | token SHA-256 (hex) → crew id, unrevoked |
//! | `dispatch:{ns}:crew-jobs`             | hash   | crew → its ticket                        |
//! | `dispatch:{ns}:ticket-crews`          | hash   | ticket → its crew                        |
//! | `dispatch:{ns}:ticket:{id}`           | hash   | state, last event, station, incident     |
//! | `dispatch:{ns}:timeline:{id}`         | list   | ids of the log entries with its events   |
//!
//! # Durability
//! A batch is answered once Redis has answered the script: durable as far as Redis's own
//! persistence goes. Opening refuses a server without an append-only file (none at all, or
//! snapshots only: a Redis crash would take back every 201 since the last snapshot) unless
//! `allow_volatile` says the operator accepts losing acknowledged tickets; with the AOF a
//! Redis crash loses nothing, and `appendfsync always` (warned about otherwise) is what makes
//! a 201 survive a power cut.

use super::{
    Batch, CrewTokenRecord, Durability, IdempotencyRecord, Lease, Recovered, Sequenced, SharedLog,
    Store, StoreError,
};
use crate::domain::{Event, EventKind, TicketId};
use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, Pipeline, RedisError, RedisFuture, Script, Value};
use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write as _;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// The oldest server this backend runs on: exclusive `XRANGE` bounds came with 6.2.
const MIN_VERSION: (u32, u32) = (6, 2);

/// The most batches one script call appends: bounds how long one call holds Redis.
const MAX_GROUP: usize = 256;

/// Entries read per `XRANGE` page in a replay, and at most per tail.
const PAGE: usize = 1000;

/// How to reach Redis and which region's keys to use.
#[derive(Debug, Clone, PartialEq)]
pub struct RedisOptions {
    /// One URL for a single server; several (the seed nodes) for a Cluster.
    pub urls: Vec<String>,
    /// The hash tag of every key: the region's name.
    pub namespace: String,
    /// Every command not answered within this long fails (a write as outcome unknown).
    pub timeout: Duration,
    /// Accept a server that keeps nothing on disk.
    pub allow_volatile: bool,
}

impl RedisOptions {
    fn is_cluster(&self) -> bool {
        self.urls.len() > 1
    }
}

/// Whether `namespace` can be a key's hash tag: letters, digits, `-` and `_`, 1 to 64.
pub fn valid_namespace(namespace: &str) -> bool {
    (1..=64).contains(&namespace.len())
        && namespace
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// A connection to one server or to a Cluster, for the same commands.
#[derive(Clone)]
enum Connection {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Connection::Single(_) => "Connection::Single",
            Connection::Cluster(_) => "Connection::Cluster",
        })
    }
}

impl ConnectionLike for Connection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Connection::Single(c) => c.req_packed_command(cmd),
            Connection::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Connection::Single(c) => c.req_packed_commands(pipeline, offset, count),
            Connection::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Connection::Single(c) => c.get_db(),
            Connection::Cluster(c) => c.get_db(),
        }
    }
}

async fn connect(
    options: &RedisOptions,
    response_timeout: Option<Duration>,
) -> Result<Connection, StoreError> {
    let unavailable = |e: RedisError| {
        let urls: Vec<String> = options.urls.iter().map(|u| shown(u)).collect();
        StoreError::Unavailable(format!(
            "cannot connect to Redis at {}: {e}",
            urls.join(", ")
        ))
    };
    if options.is_cluster() {
        let mut builder = redis::cluster::ClusterClient::builder(options.urls.clone())
            .connection_timeout(options.timeout)
            .retries(2);
        if let Some(timeout) = response_timeout {
            builder = builder.response_timeout(timeout);
        }
        let client = builder.build().map_err(unavailable)?;
        let connection = tokio::time::timeout(options.timeout, client.get_async_connection())
            .await
            .map_err(|_| {
                StoreError::Unavailable("connecting to the Redis Cluster timed out".into())
            })?
            .map_err(unavailable)?;
        Ok(Connection::Cluster(connection))
    } else {
        let url = options
            .urls
            .first()
            .ok_or_else(|| StoreError::Unfit("no Redis URL is configured".into()))?;
        let client = redis::Client::open(url.as_str()).map_err(unavailable)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(options.timeout))
            .set_response_timeout(response_timeout)
            .set_number_of_retries(2);
        let connection = tokio::time::timeout(
            options.timeout,
            client.get_connection_manager_with_config(config),
        )
        .await
        .map_err(|_| {
            StoreError::Unavailable(format!("connecting to Redis at {} timed out", shown(url)))
        })?
        .map_err(unavailable)?;
        Ok(Connection::Single(connection))
    }
}

/// The keys of one region.
#[derive(Debug, Clone)]
struct Keys {
    prefix: String,
}

impl Keys {
    fn new(namespace: &str) -> Self {
        Self {
            prefix: format!("dispatch:{{{namespace}}}:"),
        }
    }

    fn key(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }

    fn log(&self) -> String {
        self.key("log")
    }

    fn seq(&self) -> String {
        self.key("seq")
    }

    fn lease(&self) -> String {
        self.key("lease")
    }

    fn ticket(&self, id: &TicketId) -> String {
        self.key(&format!("ticket:{id}"))
    }

    fn timeline(&self, id: &TicketId) -> String {
        self.key(&format!("timeline:{id}"))
    }
}

/// A batch as one log entry holds it (written by `encode`, which builds the same JSON from
/// events serialized once).
#[derive(Debug, Deserialize)]
struct StoredBatch {
    events: Vec<Event>,
    #[serde(default)]
    idempotency: Option<IdempotencyRecord>,
    #[serde(default)]
    crew_token: Option<CrewTokenRecord>,
    #[serde(default)]
    revoked_crew_tokens: Vec<CrewTokenRecord>,
}

/// Who may append now, and the number the next batch gets.
#[derive(Debug, Default)]
struct Fence {
    /// The lease value taken last (`None` before any).
    lease: Option<String>,
    /// Set while appends may go through.
    next_seq: Option<u64>,
}

type Reply = oneshot::Sender<Result<(), StoreError>>;

/// A batch handed to the writer: the lease it was decided under and its number.
#[derive(Debug)]
struct Pending {
    lease: String,
    seq: u64,
    batch: Batch,
    /// `None` for a lazy batch: its caller was answered on enqueue.
    reply: Option<Reply>,
}

#[derive(Debug)]
enum Request {
    /// Boxed so the channel's slots stay small: a batch is far larger than a flush's reply.
    Append(Box<Pending>),
    /// Answered once everything before it is written.
    Flush(Reply),
}

#[derive(Debug, Default)]
struct WriterState {
    fence: Fence,
    closed: bool,
    /// Why the write side stopped; cleared by the next [`SharedLog::fence`], which comes
    /// only after the service rebuilt its memory from the log.
    failure: Option<String>,
}

/// The Redis-backed [`Store`] and [`SharedLog`] of one region.
#[derive(Debug)]
pub struct RedisStore {
    options: RedisOptions,
    keys: Keys,
    /// Commands that answer at once.
    connection: Connection,
    /// `XREAD BLOCK` only: a blocked read would hold up every command behind it.
    tail_connection: tokio::sync::Mutex<Connection>,
    /// The id of the last log entry replayed or tailed.
    cursor: Mutex<String>,
    state: Arc<Mutex<WriterState>>,
    requests: mpsc::UnboundedSender<Request>,
}

impl RedisStore {
    /// Connects, checks the server (version, persistence), and starts the writer.
    pub async fn open(options: RedisOptions) -> Result<Self, StoreError> {
        if !valid_namespace(&options.namespace) {
            return Err(StoreError::Unfit(format!(
                "store.namespace {:?} must be 1 to 64 letters, digits, '-' or '_'",
                options.namespace
            )));
        }
        let connection = connect(&options, Some(options.timeout)).await?;
        // A blocking read waits longer than a command's timeout; `tail` bounds it itself.
        let tail_connection = connect(&options, None).await?;
        check_servers(&options).await?;
        let keys = Keys::new(&options.namespace);
        let state = Arc::new(Mutex::new(WriterState::default()));
        let (requests, queue) = mpsc::unbounded_channel();
        tokio::spawn(write_loop(
            connection.clone(),
            keys.clone(),
            options.timeout,
            state.clone(),
            queue,
        ));
        Ok(Self {
            options,
            keys,
            connection,
            tail_connection: tokio::sync::Mutex::new(tail_connection),
            cursor: Mutex::new("0-0".into()),
            state,
            requests,
        })
    }

    pub fn namespace(&self) -> &str {
        &self.options.namespace
    }

    fn state(&self) -> MutexGuard<'_, WriterState> {
        lock_state(&self.state)
    }

    async fn command<T: redis::FromRedisValue>(&self, cmd: &Cmd) -> Result<T, StoreError> {
        let mut connection = self.connection.clone();
        self.bounded(cmd.query_async(&mut connection)).await
    }

    async fn pipeline<T: redis::FromRedisValue>(&self, pipe: &Pipeline) -> Result<T, StoreError> {
        let mut connection = self.connection.clone();
        self.bounded(pipe.query_async(&mut connection)).await
    }

    /// A read's answer, or `Unavailable` when Redis fails it or does not answer in time.
    async fn bounded<T>(
        &self,
        answer: impl Future<Output = redis::RedisResult<T>>,
    ) -> Result<T, StoreError> {
        match tokio::time::timeout(self.options.timeout, answer).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(error)) => Err(StoreError::Unavailable(format!("Redis: {error}"))),
            Err(_) => Err(StoreError::Unavailable(
                "Redis did not answer in time".into(),
            )),
        }
    }

    async fn lease_script<T: redis::FromRedisValue>(
        &self,
        op: &str,
        value: &str,
        ttl: Duration,
    ) -> Result<T, StoreError> {
        let script = Script::new(include_str!("lease.lua"));
        let mut invocation = script.prepare_invoke();
        invocation
            .key(self.keys.lease())
            .key(self.keys.seq())
            .arg(op)
            .arg(value)
            .arg(u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX));
        let mut connection = self.connection.clone();
        match tokio::time::timeout(
            self.options.timeout,
            invocation.invoke_async(&mut connection),
        )
        .await
        {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(error)) => Err(StoreError::Unavailable(format!(
                "Redis lease {op}: {error}"
            ))),
            Err(_) => Err(StoreError::Unavailable(format!(
                "Redis lease {op} timed out"
            ))),
        }
    }

    fn cursor(&self) -> String {
        self.cursor
            .lock()
            .map(|c| c.clone())
            .unwrap_or_else(|poisoned| poisoned.into_inner().clone())
    }

    fn set_cursor(&self, id: String) {
        match self.cursor.lock() {
            Ok(mut cursor) => *cursor = id,
            Err(poisoned) => *poisoned.into_inner() = id,
        }
    }
}

/// The writer's state, locked. It is a few plain fields set in one statement each, so a
/// panic elsewhere cannot leave it half-written: a poisoned lock is still good.
fn lock_state(state: &Mutex<WriterState>) -> MutexGuard<'_, WriterState> {
    state
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Refuses a server too old, or one that keeps nothing on disk unless that is allowed. In a
/// Cluster every configured node is checked: list every master.
async fn check_servers(options: &RedisOptions) -> Result<(), StoreError> {
    for configured in &options.urls {
        let single = RedisOptions {
            urls: vec![configured.clone()],
            ..options.clone()
        };
        let url = shown(configured);
        let mut connection = connect(&single, Some(options.timeout)).await?;
        let info: String = redis::cmd("INFO")
            .arg("server")
            .query_async(&mut connection)
            .await
            .map_err(|e| StoreError::Unavailable(format!("INFO at {url}: {e}")))?;
        let version = info
            .lines()
            .find_map(|l| l.strip_prefix("redis_version:"))
            .map(str::trim)
            .unwrap_or("unknown");
        if !version_at_least(version, MIN_VERSION) {
            return Err(StoreError::Unfit(format!(
                "Redis at {url} is version {version}; at least {}.{} is needed",
                MIN_VERSION.0, MIN_VERSION.1
            )));
        }
        if options.allow_volatile {
            continue;
        }
        // One parameter per CONFIG GET: several in one need Redis 7.
        let mut config = HashMap::new();
        for parameter in ["appendonly", "appendfsync"] {
            let value: Result<HashMap<String, String>, RedisError> = redis::cmd("CONFIG")
                .arg("GET")
                .arg(parameter)
                .query_async(&mut connection)
                .await;
            config.extend(value.map_err(|e| {
                StoreError::Unfit(format!(
                    "cannot read the persistence settings of Redis at {url} ({e}); if they \
                     keep data on disk and CONFIG is disabled, set store.allow_volatile = true"
                ))
            })?);
        }
        if config.get("appendonly").is_none_or(|v| v != "yes") {
            return Err(StoreError::Unfit(format!(
                "Redis at {url} keeps no append-only file (appendonly no): a Redis crash \
                 would lose every acknowledged ticket since its last snapshot, if it takes \
                 any. Set `appendonly yes` (with `appendfsync always` for a 201 that survives \
                 a power cut), or set store.allow_volatile = true to accept the loss"
            )));
        }
        if let Some(fsync) = config.get("appendfsync").filter(|v| *v != "always") {
            tracing::warn!(
                url = %url,
                appendfsync = %fsync,
                "Redis does not fsync each write: a power cut loses up to the last second of acknowledged changes"
            );
        }
    }
    Ok(())
}

/// A Redis URL fit for a log line or an error message: its password (the only place Redis
/// credentials are configured) masked.
fn shown(url: &str) -> String {
    let Ok(mut parsed) = reqwest::Url::parse(url) else {
        return "<a Redis URL that does not parse>".to_owned();
    };
    if parsed.password().is_some() && parsed.set_password(Some("***")).is_err() {
        return "<a Redis URL with a password>".to_owned();
    }
    // A unix-socket URL carries its password in the query (`?pass=`).
    if parsed.query().is_some() {
        let pairs: Vec<(String, String)> = parsed
            .query_pairs()
            .map(|(key, value)| {
                let secret = matches!(key.as_ref(), "pass" | "password");
                let value = if secret {
                    "***".to_owned()
                } else {
                    value.into_owned()
                };
                (key.into_owned(), value)
            })
            .collect();
        parsed.query_pairs_mut().clear().extend_pairs(pairs);
    }
    parsed.to_string()
}

fn version_at_least(version: &str, (major, minor): (u32, u32)) -> bool {
    let mut parts = version.split('.').map(|p| p.parse::<u32>().ok());
    match (parts.next().flatten(), parts.next().flatten()) {
        (Some(a), Some(b)) => (a, b) >= (major, minor),
        _ => false,
    }
}

/// What one batch adds to the append script's keys and arguments.
fn encode(
    keys: &Keys,
    batch: &Batch,
    ticket_keys: &mut Vec<String>,
    key_index: &mut HashMap<String, usize>,
    args: &mut Vec<Vec<u8>>,
) -> Result<(), StoreError> {
    let unencodable =
        |e: serde_json::Error| StoreError::Unavailable(format!("cannot encode a batch: {e}"));
    let events = serde_json::to_string(&batch.events).map_err(unencodable)?;
    let mut payload = format!("{{\"events\":{events}");
    if let Some(record) = &batch.idempotency {
        payload.push_str(",\"idempotency\":");
        payload.push_str(&serde_json::to_string(record).map_err(unencodable)?);
    }
    if let Some(record) = &batch.crew_token {
        payload.push_str(",\"crew_token\":");
        payload.push_str(&serde_json::to_string(record).map_err(unencodable)?);
    }
    if !batch.revoked_crew_tokens.is_empty() {
        payload.push_str(",\"revoked_crew_tokens\":");
        payload.push_str(&serde_json::to_string(&batch.revoked_crew_tokens).map_err(unencodable)?);
    }
    payload.push('}');
    args.push(payload.into_bytes());
    match &batch.idempotency {
        Some(record) => {
            args.push(record.key.clone().into_bytes());
            args.push(serde_json::to_vec(record).map_err(unencodable)?);
        }
        None => args.extend([Vec::new(), Vec::new()]),
    }
    match &batch.crew_token {
        Some(record) => {
            args.push(hex(&record.token_sha256).into_bytes());
            args.push(record.crew.as_str().as_bytes().to_vec());
        }
        None => args.extend([Vec::new(), Vec::new()]),
    }
    args.push(batch.revoked_crew_tokens.len().to_string().into_bytes());
    for record in &batch.revoked_crew_tokens {
        args.push(hex(&record.token_sha256).into_bytes());
    }
    // Key indexes are 1-based in Lua, after the seven fixed keys.
    let mut index_of = |key: String| {
        let next = FIXED_KEYS + ticket_keys.len() + 1;
        *key_index.entry(key.clone()).or_insert_with(|| {
            ticket_keys.push(key);
            next
        })
    };
    let mut claims = Vec::new();
    // A timeline lists the log entries that hold its ticket's events, one per batch however
    // many events: the events themselves are written once, in the log. (Redis's time and
    // memory are what every instance shares, and the log is never trimmed.)
    let mut timelines: BTreeSet<usize> = BTreeSet::new();
    // One HSET per ticket hash, however many events.
    let mut updates: BTreeMap<usize, Vec<(&str, String)>> = BTreeMap::new();
    for event in &batch.events {
        match &event.kind {
            EventKind::Dispatched { ticket, crew, .. } => {
                claims.push(("claim", crew.as_str(), ticket.as_str()));
            }
            EventKind::Declined { ticket, crew, .. } | EventKind::Returned { ticket, crew, .. } => {
                claims.push(("release", crew.as_str(), ticket.as_str()));
            }
            EventKind::Cancelled {
                ticket,
                crew: Some(crew),
                ..
            } => claims.push(("release", crew.as_str(), ticket.as_str())),
            _ => {}
        }
        let Some(ticket) = event.kind.ticket() else {
            continue;
        };
        timelines.insert(index_of(keys.timeline(ticket)));
        let fields = updates.entry(index_of(keys.ticket(ticket))).or_default();
        fields.push(("last_event", event.kind.name().to_owned()));
        fields.push(("updated_at", event.at.as_millis().to_string()));
        if let Some(state) = event.kind.resulting_state() {
            fields.push(("state", state.as_str().to_owned()));
        }
        match &event.kind {
            EventKind::Reported {
                station, incident, ..
            } => {
                fields.push(("station", station.to_string()));
                fields.push(("incident", incident.to_string()));
            }
            EventKind::Merged { incident, .. } => {
                fields.push(("incident", incident.to_string()));
            }
            _ => {}
        }
    }
    args.push(claims.len().to_string().into_bytes());
    for (op, crew, ticket) in claims {
        args.extend([
            op.as_bytes().to_vec(),
            crew.as_bytes().to_vec(),
            ticket.as_bytes().to_vec(),
        ]);
    }
    args.push(timelines.len().to_string().into_bytes());
    args.extend(
        timelines
            .into_iter()
            .map(|index| index.to_string().into_bytes()),
    );
    args.push(updates.len().to_string().into_bytes());
    for (index, fields) in updates {
        args.push(index.to_string().into_bytes());
        args.push(fields.len().to_string().into_bytes());
        for (field, value) in fields {
            args.extend([field.as_bytes().to_vec(), value.into_bytes()]);
        }
    }
    Ok(())
}

/// The append script's fixed keys (log, seq, lease, idempotency, crew tokens, crew jobs,
/// ticket crews).
const FIXED_KEYS: usize = 7;

fn hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(out, "{b:02x}");
    }
    out
}

/// The writer: appends every waiting batch in one script call, in the order they were
/// handed over, and answers each. After a failure it refuses everything until re-fenced.
async fn write_loop(
    mut connection: Connection,
    keys: Keys,
    timeout: Duration,
    state: Arc<Mutex<WriterState>>,
    mut queue: mpsc::UnboundedReceiver<Request>,
) {
    let script = Script::new(include_str!("append.lua"));
    while let Some(first) = queue.recv().await {
        let mut waiting = vec![first];
        while waiting.len() < MAX_GROUP {
            match queue.try_recv() {
                Ok(request) => waiting.push(request),
                Err(_) => break,
            }
        }
        let mut group: Vec<Pending> = Vec::new();
        for request in waiting {
            match request {
                Request::Append(pending) => {
                    // A group holds consecutive batches under one lease only.
                    let breaks = group
                        .last()
                        .is_some_and(|p| p.lease != pending.lease || p.seq + 1 != pending.seq);
                    if breaks {
                        let full = std::mem::take(&mut group);
                        flush_group(&mut connection, &script, &keys, timeout, &state, full).await;
                    }
                    group.push(*pending);
                }
                Request::Flush(reply) => {
                    let full = std::mem::take(&mut group);
                    flush_group(&mut connection, &script, &keys, timeout, &state, full).await;
                    let failure = lock_state(&state).failure.clone();
                    let _ = reply.send(match failure {
                        Some(reason) => Err(StoreError::Unavailable(reason)),
                        None => Ok(()),
                    });
                }
            }
        }
        flush_group(&mut connection, &script, &keys, timeout, &state, group).await;
    }
}

async fn flush_group(
    connection: &mut Connection,
    script: &Script,
    keys: &Keys,
    timeout: Duration,
    state: &Mutex<WriterState>,
    group: Vec<Pending>,
) {
    let Some(first) = group.first() else {
        return;
    };
    let failed = lock_state(state).failure.clone();
    let result = match failed {
        Some(reason) => Err(StoreError::Unavailable(reason)),
        None => {
            append_group(
                connection,
                script,
                keys,
                timeout,
                &first.lease,
                first.seq,
                &group,
            )
            .await
        }
    };
    if let Err(error) = &result {
        let mut state = lock_state(state);
        if state.failure.is_none() {
            tracing::error!(%error, "a Redis append failed: appends stop until the service rebuilds from the log");
            state.failure = Some(error.to_string());
        }
    }
    for pending in group {
        if let Some(reply) = pending.reply {
            let _ = reply.send(result.clone());
        }
    }
}

async fn append_group(
    connection: &mut Connection,
    script: &Script,
    keys: &Keys,
    timeout: Duration,
    lease: &str,
    first_seq: u64,
    group: &[Pending],
) -> Result<(), StoreError> {
    let mut ticket_keys = Vec::new();
    let mut key_index = HashMap::new();
    let mut args: Vec<Vec<u8>> = vec![
        lease.as_bytes().to_vec(),
        first_seq.to_string().into_bytes(),
        group.len().to_string().into_bytes(),
    ];
    for pending in group {
        encode(
            keys,
            &pending.batch,
            &mut ticket_keys,
            &mut key_index,
            &mut args,
        )?;
    }
    let mut invocation = script.prepare_invoke();
    for key in [
        keys.log(),
        keys.seq(),
        keys.lease(),
        keys.key("idempotency"),
        keys.key("crew-tokens"),
        keys.key("crew-jobs"),
        keys.key("ticket-crews"),
    ]
    .into_iter()
    .chain(ticket_keys)
    {
        invocation.key(key);
    }
    for arg in args {
        invocation.arg(arg);
    }
    match tokio::time::timeout(timeout, invocation.invoke_async::<u64>(connection)).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(error)) => Err(classify(&error)),
        Err(_) => Err(StoreError::OutcomeUnknown(
            "Redis did not answer the append in time".into(),
        )),
    }
}

/// Whether a failed append may have been written.
fn classify(error: &RedisError) -> StoreError {
    match error.code() {
        Some(code @ ("NOTLEADER" | "OUTOFSEQ" | "CLAIM")) => {
            StoreError::Unavailable(format!("the append was refused ({code}): {error}"))
        }
        _ if error.is_connection_refusal() => {
            StoreError::Unavailable(format!("Redis refused the connection: {error}"))
        }
        _ => StoreError::OutcomeUnknown(format!("Redis append: {error}")),
    }
}

fn decode_entry(id: &str, fields: &HashMap<String, Value>) -> Result<Sequenced, StoreError> {
    let corrupt = |what: &str| StoreError::Corrupt(format!("log entry {id}: {what}"));
    let text = |name: &str| -> Result<String, StoreError> {
        match fields.get(name) {
            Some(value) => redis::from_redis_value_ref::<String>(value)
                .map_err(|e| corrupt(&format!("field {name}: {e}"))),
            None => Err(corrupt(&format!("no field {name}"))),
        }
    };
    let seq = text("seq")?
        .parse::<u64>()
        .map_err(|e| corrupt(&format!("seq: {e}")))?;
    let stored: StoredBatch =
        serde_json::from_str(&text("batch")?).map_err(|e| corrupt(&format!("batch: {e}")))?;
    Ok(Sequenced {
        seq,
        batch: Batch {
            events: stored.events,
            idempotency: stored.idempotency,
            crew_token: stored.crew_token,
            revoked_crew_tokens: stored.revoked_crew_tokens,
            // Every fix is in the log here: following instances learn positions from it.
            supersedable_position: false,
        },
    })
}

impl Store for RedisStore {
    fn append(
        &self,
        batch: Batch,
        durability: Durability,
    ) -> BoxFuture<'static, Result<(), StoreError>> {
        let refused = |reason: String| {
            futures_util::future::ready(Err(StoreError::Unavailable(reason))).boxed()
        };
        let mut state = self.state();
        if state.closed {
            return refused("the store is closed".into());
        }
        if let Some(reason) = &state.failure {
            return refused(reason.clone());
        }
        let (Some(lease), Some(seq)) = (state.fence.lease.clone(), state.fence.next_seq) else {
            return refused("this instance does not hold the region's lease".into());
        };
        state.fence.next_seq = Some(seq + 1);
        let (reply, answer) = oneshot::channel();
        let lazy = durability == Durability::Lazy;
        let request = Request::Append(Box::new(Pending {
            lease,
            seq,
            batch,
            reply: (!lazy).then_some(reply),
        }));
        drop(state);
        if self.requests.send(request).is_err() {
            return refused("the Redis writer has stopped".into());
        }
        if lazy {
            return futures_util::future::ready(Ok(())).boxed();
        }
        async move {
            answer.await.unwrap_or_else(|_| {
                Err(StoreError::OutcomeUnknown(
                    "the Redis writer stopped".into(),
                ))
            })
        }
        .boxed()
    }

    fn replay<'a>(
        &'a self,
        sink: &'a mut (dyn FnMut(Event) + Send),
    ) -> BoxFuture<'a, Result<Recovered, StoreError>> {
        async move {
            let mut recovered = Recovered::default();
            let mut start = "-".to_owned();
            loop {
                let page: redis::streams::StreamRangeReply = self
                    .command(
                        redis::cmd("XRANGE")
                            .arg(self.keys.log())
                            .arg(&start)
                            .arg("+")
                            .arg("COUNT")
                            .arg(PAGE),
                    )
                    .await?;
                let Some(last) = page.ids.last().map(|e| e.id.clone()) else {
                    break;
                };
                for entry in &page.ids {
                    let Sequenced { seq, batch } = decode_entry(&entry.id, &entry.map)?;
                    if seq != recovered.last_seq + 1 {
                        return Err(StoreError::Corrupt(format!(
                            "the log jumps from batch {} to {seq}",
                            recovered.last_seq
                        )));
                    }
                    recovered.last_seq = seq;
                    recovered.events += batch.events.len() as u64;
                    recovered.idempotency.extend(batch.idempotency);
                    recovered.crew_tokens.extend(batch.crew_token);
                    if !batch.revoked_crew_tokens.is_empty() {
                        recovered.crew_tokens.retain(|minted| {
                            !batch
                                .revoked_crew_tokens
                                .iter()
                                .any(|revoked| revoked.token_sha256 == minted.token_sha256)
                        });
                    }
                    for event in batch.events {
                        sink(event);
                    }
                }
                self.set_cursor(last.clone());
                if page.ids.len() < PAGE {
                    break;
                }
                start = format!("({last}");
            }
            Ok(recovered)
        }
        .boxed()
    }

    fn timeline(&self, ticket: &TicketId) -> BoxFuture<'_, Result<Vec<Event>, StoreError>> {
        let key = self.keys.timeline(ticket);
        let ticket = ticket.clone();
        async move {
            let entries: Vec<Vec<u8>> = self
                .command(redis::cmd("LRANGE").arg(&key).arg(0).arg(-1))
                .await?;
            // Each entry is the id of a log entry holding some of the ticket's events, or (as
            // written before the log held them alone) one event's JSON.
            let is_event = |entry: &[u8]| entry.starts_with(b"{");
            let corrupt = |e: serde_json::Error| StoreError::Corrupt(format!("{key}: {e}"));
            let log = self.keys.log();
            let mut lookups = redis::pipe();
            for entry in entries.iter().filter(|e| !is_event(e)) {
                lookups
                    .cmd("XRANGE")
                    .arg(&log)
                    .arg(entry.as_slice())
                    .arg(entry.as_slice());
            }
            let mut batches = if lookups.is_empty() {
                Vec::new()
            } else {
                self.pipeline::<Vec<redis::streams::StreamRangeReply>>(&lookups)
                    .await?
            }
            .into_iter();
            let mut timeline = Vec::new();
            for entry in &entries {
                if is_event(entry) {
                    timeline.push(serde_json::from_slice(entry).map_err(corrupt)?);
                    continue;
                }
                let found = batches
                    .next()
                    .and_then(|range| range.ids.into_iter().next());
                let Some(found) = found else {
                    return Err(StoreError::Corrupt(format!(
                        "{key} names log entry {} and the log has none",
                        String::from_utf8_lossy(entry)
                    )));
                };
                let Sequenced { batch, .. } = decode_entry(&found.id, &found.map)?;
                timeline.extend(
                    batch
                        .events
                        .into_iter()
                        .filter(|event| event.kind.ticket() == Some(&ticket)),
                );
            }
            Ok(timeline)
        }
        .boxed()
    }

    fn ping(&self) -> BoxFuture<'_, Result<(), StoreError>> {
        async move {
            if self.state().closed {
                return Err(StoreError::Unavailable("the store is closed".into()));
            }
            let pong: String = self.command(&redis::cmd("PING")).await?;
            if pong == "PONG" {
                Ok(())
            } else {
                Err(StoreError::Unavailable(format!("PING answered {pong:?}")))
            }
        }
        .boxed()
    }

    fn close(&self) -> BoxFuture<'_, Result<(), StoreError>> {
        async move {
            let (reply, answer) = oneshot::channel();
            let flushed = if self.requests.send(Request::Flush(reply)).is_ok() {
                answer.await.unwrap_or(Ok(()))
            } else {
                Ok(())
            };
            self.state().closed = true;
            // Let another instance take over at once instead of after the lease expires.
            let released = self.release().await;
            flushed.and(released)
        }
        .boxed()
    }

    fn shared(&self) -> Option<&dyn SharedLog> {
        Some(self)
    }
}

impl SharedLog for RedisStore {
    fn acquire(&self, holder: &str, ttl: Duration) -> BoxFuture<'_, Result<Lease, StoreError>> {
        let value = format!("{} {holder}", uuid::Uuid::now_v7());
        async move {
            let (outcome, detail): (String, String) =
                self.lease_script("acquire", &value, ttl).await?;
            match outcome.as_str() {
                "acquired" => {
                    let head = detail
                        .parse::<u64>()
                        .map_err(|e| StoreError::Corrupt(format!("{}: {e}", self.keys.seq())))?;
                    self.state().fence.lease = Some(value);
                    Ok(Lease::Acquired { head })
                }
                _ => match detail.split_once(' ') {
                    Some((_, holder)) => Ok(Lease::HeldBy(holder.to_owned())),
                    None => Ok(Lease::Vacant),
                },
            }
        }
        .boxed()
    }

    fn renew(&self, ttl: Duration) -> BoxFuture<'_, Result<bool, StoreError>> {
        async move {
            let Some(value) = self.state().fence.lease.clone() else {
                return Ok(false);
            };
            let renewed: i64 = self.lease_script("renew", &value, ttl).await?;
            Ok(renewed == 1)
        }
        .boxed()
    }

    fn release(&self) -> BoxFuture<'_, Result<(), StoreError>> {
        async move {
            let value = {
                let mut state = self.state();
                state.fence.next_seq = None;
                state.fence.lease.take()
            };
            if let Some(value) = value {
                let _: i64 = self.lease_script("release", &value, Duration::ZERO).await?;
            }
            Ok(())
        }
        .boxed()
    }

    fn fence(&self, next_seq: u64) {
        let mut state = self.state();
        state.fence.next_seq = Some(next_seq);
        state.failure = None;
    }

    fn unfence(&self) {
        self.state().fence.next_seq = None;
    }

    fn tail(&self, wait: Duration) -> BoxFuture<'_, Result<Vec<Sequenced>, StoreError>> {
        async move {
            let mut connection = self.tail_connection.lock().await;
            let cursor = self.cursor();
            let block = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX).max(1);
            let mut xread = redis::cmd("XREAD");
            xread
                .arg("COUNT")
                .arg(PAGE)
                .arg("BLOCK")
                .arg(block)
                .arg("STREAMS")
                .arg(self.keys.log())
                .arg(&cursor);
            let read =
                xread.query_async::<Option<redis::streams::StreamReadReply>>(&mut *connection);
            let reply = match tokio::time::timeout(wait + self.options.timeout, read).await {
                Ok(Ok(reply)) => reply,
                Ok(Err(error)) => {
                    return Err(StoreError::Unavailable(format!("Redis XREAD: {error}")));
                }
                Err(_) => return Err(StoreError::Unavailable("Redis XREAD timed out".into())),
            };
            let mut batches = Vec::new();
            let mut last = None;
            for entry in reply.into_iter().flat_map(|r| r.keys).flat_map(|k| k.ids) {
                batches.push(decode_entry(&entry.id, &entry.map)?);
                last = Some(entry.id);
            }
            if let Some(last) = last {
                self.set_cursor(last);
            }
            Ok(batches)
        }
        .boxed()
    }

    fn head(&self) -> BoxFuture<'_, Result<u64, StoreError>> {
        async move {
            let seq: Option<u64> = self.command(redis::cmd("GET").arg(self.keys.seq())).await?;
            Ok(seq.unwrap_or(0))
        }
        .boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_of_a_region_share_one_hash_tag() {
        let keys = Keys::new("huizhou");
        let ticket = TicketId::new("T-1");
        for key in [
            keys.log(),
            keys.seq(),
            keys.lease(),
            keys.ticket(&ticket),
            keys.timeline(&ticket),
        ] {
            assert!(key.starts_with("dispatch:{huizhou}:"), "{key}");
        }
    }

    #[test]
    fn namespaces_are_plain_tags() {
        assert!(valid_namespace("huizhou"));
        assert!(valid_namespace("region-2_b"));
        for bad in ["", "a{b", "a}b", "a b", "惠州", &"x".repeat(65)] {
            assert!(!valid_namespace(bad), "{bad}");
        }
    }

    #[test]
    fn a_redis_password_is_never_shown() {
        assert_eq!(
            shown("redis://:s3cret@10.0.0.5:6379/0"),
            "redis://:***@10.0.0.5:6379/0"
        );
        assert_eq!(
            shown("rediss://dispatch:s3cret@redis.example:6380"),
            "rediss://dispatch:***@redis.example:6380"
        );
        assert_eq!(shown("redis://127.0.0.1:6379"), "redis://127.0.0.1:6379");
        let socket = shown("redis+unix:///run/redis.sock?db=2&pass=s3cret");
        assert!(
            !socket.contains("s3cret") && socket.contains("db=2"),
            "{socket}"
        );
        assert!(!shown("redis://:s3cret@[::1").contains("s3cret"));
    }

    #[test]
    fn versions_compare_by_major_then_minor() {
        assert!(version_at_least("7.0.15", (6, 2)));
        assert!(version_at_least("6.2.0", (6, 2)));
        assert!(!version_at_least("6.0.16", (6, 2)));
        assert!(!version_at_least("5.9", (6, 2)));
        assert!(!version_at_least("unknown", (6, 2)));
    }

    #[test]
    fn an_append_that_timed_out_may_have_been_written() {
        let timeout = RedisError::from(std::io::Error::new(std::io::ErrorKind::TimedOut, "late"));
        assert!(!classify(&timeout).is_certainly_aborted());
    }
}
