//! The dispatch service: for a fault report, which station owns it and which crew goes; then
//! every step of the ticket's life against its deadlines.
//!
//! `domain` is the pure core, `geo` the spatial indexes, `engine` the decisions that combine
//! them, `store` where events are kept, `service` the dispatcher that ties engine and store
//! together, and `api` the HTTP surface. [`run`] starts it all; `main.rs` and the tests both
//! call it. `sim` plays scenarios through the same engine to compare dispatch policies;
//! [`demo`] runs the service with simulated agents and crews. See ARCHITECTURE.md for the map.

pub mod api;
pub mod config;
pub mod datum;
pub mod demo;
pub mod domain;
pub mod engine;
pub mod geo;
pub mod metrics;
pub mod region;
pub mod reports;
pub mod service;
pub mod sim;
pub mod store;

use config::{Config, ConfigError, DevTokens, ServerConfig, StoreKind};
use domain::CrewId;
use engine::Engine;
use region::{Region, RegionError};
use service::{Clock, Dispatcher, DispatcherOptions, SystemClock, TokenBook};
use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use store::{EmbeddedStore, RedisStore, Store, StoreError};
use tokio::net::TcpListener;

/// How often the metrics recorder drops idle series and refreshes histogram windows.
const METRICS_UPKEEP: Duration = Duration::from_secs(5);

/// How long a driver that panicked (or stopped, on a shared store) waits before it runs again.
const DRIVER_RESTART: Duration = Duration::from_secs(1);

/// Why the service could not start, or stopped badly.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("cannot load the region in {path}: {source}")]
    Region {
        path: PathBuf,
        #[source]
        source: RegionError,
    },
    #[error("invalid engine configuration: {0}")]
    Engine(#[from] engine::ConfigError),
    #[error("a configured token names crew {0}, which the region does not have")]
    UnknownTokenCrew(String),
    #[error("cannot open the store in {path}: {source}")]
    StoreOpen {
        path: PathBuf,
        #[source]
        source: StoreError,
    },
    #[error("cannot open the Redis store: {0}")]
    RedisOpen(#[source] StoreError),
    #[error("cannot recover from the store: {0}")]
    Recovery(#[source] StoreError),
    #[error("serving HTTP failed: {0}")]
    Io(#[from] std::io::Error),
    #[error("the store did not close cleanly: {0}")]
    Close(#[source] StoreError),
}

/// Serves the API on `listener` until `shutdown` resolves: then stops accepting, lets
/// in-flight requests finish (for at most `server.shutdown_grace_seconds`), and closes the
/// store. Recovery from the store happens before the first request is accepted.
pub async fn run(
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let dispatcher = open(&config).await?;
    serve(dispatcher, &config.server, listener, shutdown).await
}

/// Opens the configured store and recovers the dispatcher from it: [`run`] before it serves.
pub async fn open(config: &Config) -> Result<Arc<Dispatcher>, ServeError> {
    config.validate()?;
    // The recorder before the recovery, so what the recovery reports is kept.
    metrics::install();
    let store = open_store(config).await?;
    Ok(Arc::new(
        recover(config, store, Arc::new(SystemClock)).await?,
    ))
}

/// Opens the store `config` names: the embedded file or Redis. For [`open`], and for callers
/// (tests) that recover on a clock of their own.
pub async fn open_store(config: &Config) -> Result<Arc<dyn Store>, ServeError> {
    Ok(match config.store.kind {
        StoreKind::Embedded => {
            let path = config.store.path.clone();
            let opened = tokio::task::spawn_blocking(move || EmbeddedStore::open(&path))
                .await
                .map_err(|e| ServeError::StoreOpen {
                    path: config.store.path.clone(),
                    source: StoreError::Unavailable(e.to_string()),
                })?;
            Arc::new(opened.map_err(|source| ServeError::StoreOpen {
                path: config.store.path.clone(),
                source,
            })?)
        }
        StoreKind::Redis => Arc::new(
            RedisStore::open(redis_options(config)?)
                .await
                .map_err(ServeError::RedisOpen)?,
        ),
    })
}

/// How the Redis store of `config` connects: its namespace defaults to the region
/// directory's name.
pub fn redis_options(config: &Config) -> Result<store::redis::RedisOptions, ServeError> {
    let namespace = match &config.store.namespace {
        Some(namespace) => namespace.clone(),
        None => config
            .region_dir()?
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "region".into()),
    };
    Ok(store::redis::RedisOptions {
        urls: config
            .store
            .url
            .as_ref()
            .map(config::RedisUrls::to_vec)
            .unwrap_or_default(),
        namespace,
        timeout: config.store.command_timeout(),
        allow_volatile: config.store.allow_volatile,
    })
}

/// Loads the region, builds the engine and the tokens, and replays `store` into them: the
/// start-up of [`run`], for callers (tests) that bring their own store and clock.
pub async fn recover(
    config: &Config,
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
) -> Result<Dispatcher, ServeError> {
    config.validate()?;
    let region_dir = config.region_dir()?;
    let region = Region::load(&region_dir).map_err(|source| ServeError::Region {
        path: region_dir.clone(),
        source,
    })?;
    let engine = Engine::new(config.engine_config(), region.clone())?;
    tracing::info!(region = %region_dir.display(), "region loaded");
    // The configuration was validated just above, so the engine builds again the same way.
    let engine_config = config.engine_config();
    let rebuild: service::EngineFactory = Box::new(move || {
        Engine::new(engine_config.clone(), region.clone())
            .unwrap_or_else(|_| unreachable!("this configuration built an engine at start"))
    });

    let tokens = if config.tokens.is_empty() {
        let (path, dev) = DevTokens::load_or_create(&config.store.path)?;
        tracing::warn!(
            path = %path.display(),
            "no [[tokens]] configured: using the development tokens in this file"
        );
        dev.token_configs()
    } else {
        config.tokens.clone()
    };
    for token in &tokens {
        if let Some(crew) = &token.crew_id
            && engine.crew(&CrewId::new(crew.as_str())).is_none()
        {
            return Err(ServeError::UnknownTokenCrew(crew.clone()));
        }
    }
    Dispatcher::recover_shared(
        engine,
        store,
        TokenBook::new(&tokens),
        clock,
        DispatcherOptions {
            write_timeout: config.store.write_timeout(),
            lease: config.store.lease(),
            backups_keep: config.store.backups_keep,
            reports: reports::ReportSettings {
                reliability: config.reliability.clone(),
                etr: config.etr.clone(),
            },
        },
        Some(rebuild),
    )
    .await
    .map_err(ServeError::Recovery)
}

/// Serves a recovered dispatcher until `shutdown` resolves, then closes its store: the
/// second half of [`run`].
pub async fn serve(
    dispatcher: Arc<Dispatcher>,
    server: &ServerConfig,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let metrics = metrics::install();
    let app = api::app(dispatcher.clone(), metrics.clone(), server);
    // A shared store heals without a restart, so its drivers must outlive a failure; a store
    // of its own needs a restart after one, which starts them again.
    let shared = dispatcher.is_shared();
    let deadlines = tokio::spawn(supervise("deadline driver", shared, {
        let dispatcher = dispatcher.clone();
        move || dispatcher.clone().drive_deadlines()
    }));
    let batches = tokio::spawn(supervise("batch driver", shared, {
        let dispatcher = dispatcher.clone();
        move || dispatcher.clone().drive_batches()
    }));
    // With a shared store: follow the log, take the lease when free, heal after a failure.
    let mut replication = Vec::new();
    if dispatcher.is_shared() {
        let holder = match &server.advertise_url {
            Some(url) => url.trim_end_matches('/').to_owned(),
            None => format!("http://{}", listener.local_addr()?),
        };
        replication.push(tokio::spawn(dispatcher.clone().follow_log()));
        replication.push(tokio::spawn(dispatcher.clone().keep_lease(holder)));
        replication.push(tokio::spawn(dispatcher.clone().heal()));
    }
    let upkeep = tokio::spawn(async move {
        let mut tick = tokio::time::interval(METRICS_UPKEEP);
        loop {
            tick.tick().await;
            metrics.run_upkeep();
        }
    });

    tracing::info!(addr = %listener.local_addr()?, "listening");
    let (signalled, on_signal) = tokio::sync::oneshot::channel::<()>();
    let streams = dispatcher.clone();
    let serve = api::connections::serve(
        listener,
        app,
        Duration::from_millis(server.header_timeout_ms),
        async move {
            shutdown.await;
            tracing::info!("shutting down: no new connections, finishing requests under way");
            // Event streams never finish by themselves: end them so they do not hold the
            // shutdown for the whole grace period.
            streams.end_streams();
            let _ = signalled.send(());
        },
    );
    let grace = Duration::from_secs(server.shutdown_grace_seconds);
    tokio::select! {
        () = serve => {}
        () = async move {
            match on_signal.await {
                Ok(()) => tokio::time::sleep(grace).await,
                // The signal's sender went with the server's future: it is done.
                Err(_) => std::future::pending().await,
            }
        } => {
            tracing::warn!(grace_seconds = grace.as_secs(), "requests still under way after the grace period: closing anyway");
        }
    }
    deadlines.abort();
    batches.abort();
    upkeep.abort();
    for task in replication {
        task.abort();
    }
    // Bounded like any write: a disk hung in an fsync must not keep the process from exiting
    // (what it had not committed was never acknowledged).
    let closed = match tokio::time::timeout(dispatcher.write_timeout(), dispatcher.close()).await {
        Ok(closed) => closed,
        Err(_) => Err(StoreError::OutcomeUnknown(
            "the store did not finish its last commit within store.write_timeout_ms".into(),
        )),
    };
    closed.map_err(ServeError::Close)?;
    tracing::info!("stopped");
    Ok(())
}

/// Runs a background driver, and runs it again a moment later if it panics (a bug in one
/// decision must not leave every later deadline unfired) or, when `restart_when_stopped`,
/// if it returns: a driver returns when the engine's lock was poisoned or the dispatcher
/// failed, which a shared store heals without a restart. Aborting this task stops both.
async fn supervise<F, Fut>(name: &'static str, restart_when_stopped: bool, mut run: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = ()>,
{
    use futures_util::FutureExt;
    loop {
        match std::panic::AssertUnwindSafe(run()).catch_unwind().await {
            Ok(()) if !restart_when_stopped => return,
            Ok(()) => tracing::warn!(driver = name, "stopped; it starts again in a second"),
            Err(_) => tracing::error!(driver = name, "panicked; it starts again in a second"),
        }
        tokio::time::sleep(DRIVER_RESTART).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A driver that panics on its first run and returns on the next ones; counts its runs.
    fn flaky(
        runs: Arc<AtomicUsize>,
    ) -> impl FnMut() -> futures_util::future::BoxFuture<'static, ()> {
        use futures_util::FutureExt;
        move || {
            let runs = Arc::clone(&runs);
            async move {
                if runs.fetch_add(1, Ordering::SeqCst) == 0 {
                    panic!("a bug in one decision");
                }
            }
            .boxed()
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_driver_that_panics_runs_again_and_one_that_returns_only_on_a_shared_store() {
        let runs = Arc::new(AtomicUsize::new(0));
        // Own store: after the panic it runs again; when that run returns, it stays stopped.
        tokio::time::timeout(
            DRIVER_RESTART * 60,
            supervise("test", false, flaky(runs.clone())),
        )
        .await
        .expect("a driver that returned was started again on a store of its own");
        assert_eq!(runs.load(Ordering::SeqCst), 2);

        // Shared store: a run that returns is started again too, until aborted.
        let runs = Arc::new(AtomicUsize::new(0));
        let task = tokio::spawn(supervise("test", true, flaky(runs.clone())));
        tokio::time::sleep(DRIVER_RESTART * 5 + DRIVER_RESTART / 2).await;
        task.abort();
        assert_eq!(
            runs.load(Ordering::SeqCst),
            6,
            "one run at once, then one every second"
        );
    }
}
