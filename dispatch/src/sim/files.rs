//! The simulator's only I/O: reading the region, the scenario and the charts' font, and
//! writing the report and the charts into an output directory.

use super::{RunOutcome, Scenario, SimError, Simulation, charts};
use crate::region::Region;
use std::path::Path;

/// The Debian font the charts use unless told otherwise (package fonts-dejavu-core).
pub const DEFAULT_FONT: &str = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf";

fn read(path: &Path) -> Result<Vec<u8>, SimError> {
    std::fs::read(path).map_err(|source| SimError::Read {
        path: path.to_owned(),
        source,
    })
}

fn write(path: &Path, bytes: &[u8]) -> Result<(), SimError> {
    std::fs::write(path, bytes).map_err(|source| SimError::Write {
        path: path.to_owned(),
        source,
    })
}

/// Loads a region directory and a scenario file and draws the calls.
pub fn load(region: &Path, scenario: &Path, seed: Option<u64>) -> Result<Simulation, SimError> {
    let text = String::from_utf8_lossy(&read(scenario)?).into_owned();
    let scenario = Scenario::from_toml(&text)?;
    let region = Region::load(region).map_err(|source| SimError::Region {
        path: region.to_owned(),
        source,
    })?;
    Ok(Simulation::new(scenario, region, seed))
}

/// Writes `report.md`, `compliance.png` and `queue.png` into `dir` (created if missing),
/// drawing text with the font file `font`.
pub fn write_outputs(
    simulation: &Simulation,
    outcomes: &[RunOutcome],
    dir: &Path,
    font: &Path,
) -> Result<(), SimError> {
    charts::use_font(read(font)?)?;
    std::fs::create_dir_all(dir).map_err(|source| SimError::Write {
        path: dir.to_owned(),
        source,
    })?;
    let name = &simulation.scenario.name;
    write(
        &dir.join("report.md"),
        simulation.markdown(outcomes).as_bytes(),
    )?;
    write(
        &dir.join("compliance.png"),
        &charts::compliance(name, outcomes)?,
    )?;
    write(&dir.join("queue.png"), &charts::queue(name, outcomes)?)?;
    Ok(())
}
