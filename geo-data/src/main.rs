//! `geo-data`: the command line of the region generator.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use geo_data::format::AreaClass;
use geo_data::generate::{DEFAULT_SEED, GenerateOptions, generate_dir};

#[derive(Debug, Parser)]
#[command(
    version,
    about = "Regions from real geography for the dispatch service"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Write stations.geojson and crews.json into a region directory from its
    /// boundary.geojson, districts.geojson and places.geojson.
    Generate {
        /// The region directory.
        dir: PathBuf,
        /// Seeds the crews' start positions; the same seed gives the same bytes.
        #[arg(long, default_value_t = DEFAULT_SEED)]
        seed: u64,
        /// Total low-voltage customers to spread over the stations (default: the
        /// committee-based households estimate).
        #[arg(long)]
        customers: Option<u64>,
    },
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Generate {
            dir,
            seed,
            customers,
        } => {
            let options = GenerateOptions { seed, customers };
            let generated = generate_dir(&dir, &options)
                .with_context(|| format!("generating the region in {}", dir.display()))?;
            for warning in &generated.warnings {
                eprintln!("warning: {warning}");
            }
            let counts = generated.class_counts();
            println!("district\turban\trural\tremote\tstations\tcustomers");
            for (d, district) in generated.districts.iter().enumerate() {
                let n = |class| counts.get(&(d, class)).copied().unwrap_or(0);
                let customers: u64 = generated
                    .stations
                    .iter()
                    .filter(|s| s.district == d)
                    .map(|s| s.customers)
                    .sum();
                println!(
                    "{} {}\t{}\t{}\t{}\t{}\t{}",
                    district.adcode,
                    district.name,
                    n(AreaClass::Urban),
                    n(AreaClass::Rural),
                    n(AreaClass::Remote),
                    n(AreaClass::Urban) + n(AreaClass::Rural) + n(AreaClass::Remote),
                    customers
                );
            }
            println!(
                "{} stations, {} crews, {} customers written to {}",
                generated.stations.len(),
                generated.crews.len(),
                generated.stations.iter().map(|s| s.customers).sum::<u64>(),
                dir.display()
            );
            Ok(())
        }
    }
}
