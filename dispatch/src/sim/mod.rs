//! The restoration simulator: a discrete-event simulation on a virtual clock that drives the
//! real engine through a scenario (a normal day, a typhoon) under each dispatch policy, and
//! reports what a utility asks: arrivals within the deadline by area class, arrival and
//! restoration times, queues and waits, customer-minutes, crew use, each beside a lower
//! bound no policy can beat. Deterministic for a seed; no clock, no I/O except in [`files`].
//!
//! `scenario` reads the file, `calls` draws the calls, `run` plays one policy, `report`
//! turns a run into figures and markdown, `charts` into PNGs, `files` reads and writes.

pub mod calls;
pub mod charts;
pub mod files;
pub mod report;
mod rng;
pub mod run;
pub mod scenario;
#[cfg(test)]
mod tests;

pub use report::PolicyReport;
pub use run::RunOutcome;
pub use scenario::{Scenario, ScenarioError};

use crate::engine::DispatchPolicy;
use crate::region::{Region, RegionError};
use std::path::PathBuf;

/// How a run dispatches: one of the engine's policies all day long, or `nearest` with storm
/// mode (batch while the queue is long), which is what the service does once storm mode is
/// configured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dispatch {
    Policy(DispatchPolicy),
    NearestWithStormMode,
}

impl Dispatch {
    pub const ALL: [Dispatch; 4] = [
        Dispatch::Policy(DispatchPolicy::Nearest),
        Dispatch::Policy(DispatchPolicy::Station),
        Dispatch::Policy(DispatchPolicy::Batch),
        Dispatch::NearestWithStormMode,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Dispatch::Policy(policy) => policy.as_str(),
            Dispatch::NearestWithStormMode => "nearest+storm",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|d| d.name() == name)
    }
}

impl std::fmt::Display for Dispatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The queue length at which the `nearest+storm` run enters storm mode, unless the
/// scenario's `[engine.storm] enter_queue` says otherwise.
pub const DEFAULT_STORM_QUEUE: u32 = 40;

#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error(transparent)]
    Scenario(#[from] ScenarioError),
    #[error("the scenario's engine settings: {0}")]
    Engine(#[from] crate::engine::ConfigError),
    #[error("cannot load the region in {path}: {source}")]
    Region {
        path: PathBuf,
        #[source]
        source: RegionError,
    },
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Chart(#[from] charts::ChartError),
}

/// A scenario on a region with its calls drawn: each policy runs against the same calls.
#[derive(Debug, Clone)]
pub struct Simulation {
    pub scenario: Scenario,
    pub region: Region,
    pub seed: u64,
    calls: Vec<calls::Call>,
}

impl Simulation {
    /// Draws the scenario's calls for `seed` (the scenario's own seed when `None`).
    pub fn new(scenario: Scenario, region: Region, seed: Option<u64>) -> Self {
        let seed = seed.unwrap_or(scenario.seed);
        let places = calls::Places::new(&region.stations, &region.areas);
        let calls = calls::generate(&scenario, &places, seed);
        Self {
            scenario,
            region,
            seed,
            calls,
        }
    }

    pub fn calls(&self) -> &[calls::Call] {
        &self.calls
    }

    /// Plays the scenario dispatching as `dispatch` says.
    pub fn run(&self, dispatch: Dispatch) -> Result<RunOutcome, SimError> {
        run::run(
            &self.scenario,
            &self.region,
            &self.calls,
            dispatch,
            self.seed,
        )
    }

    /// The comparison of finished runs as markdown.
    pub fn markdown(&self, outcomes: &[RunOutcome]) -> String {
        let reports: Vec<PolicyReport> = outcomes.iter().map(PolicyReport::of).collect();
        report::markdown(
            &self.scenario.name,
            self.seed,
            self.scenario.hours,
            &reports,
        )
    }
}
