//! `fieldops-demo`: everything the one-command demo needs besides the services themselves.
//!
//! - `decode-geo`: decode the npm package's compressed district boundaries to plain GeoJSON.
//! - `seed`: load cities, teams, territories, users, accounts and a few directives through the
//!   HQ API (idempotent: safe to run twice).
//! - `simulate`: field agents that accept, check in, complete or reject their tasks and send
//!   intel, until Ctrl-C.
//! - `summary`: a live per-city table of every directive's funnel.

mod api;
mod cities;
mod echarts;
mod geo_prep;
mod sampling;
mod seed;
mod simulate;
mod summary;

use std::path::PathBuf;

use anyhow::Result;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "fieldops-demo", version, about = "fieldops demo data, field simulator and live summary")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Decode ECharts-compressed district files into plain GeoJSON, one file per city.
    DecodeGeo {
        /// Folder holding the package's `<source_file>.geojson` files.
        #[arg(long, default_value = ".cache/geo/raw")]
        src: PathBuf,
        /// Output folder for `<city_id>.json`.
        #[arg(long, default_value = ".cache/geo")]
        out: PathBuf,
        /// Comma-separated city ids, or `all`.
        #[arg(long, default_value = "all")]
        cities: String,
        /// Decode again even when the output exists.
        #[arg(long)]
        force: bool,
    },
    /// Load the demo data through the HQ API.
    Seed(seed::SeedArgs),
    /// Run simulated field agents against the city-agent API until Ctrl-C.
    Simulate(simulate::SimArgs),
    /// Print a live per-city table of directive progress.
    Summary(summary::SummaryArgs),
}

#[tokio::main]
async fn main() -> Result<()> {
    match Cli::parse().command {
        Command::DecodeGeo { src, out, cities, force } => geo_prep::run(&cities::select(&cities)?, &src, &out, force),
        Command::Seed(args) => seed::run(args).await,
        Command::Simulate(args) => simulate::run(args).await,
        Command::Summary(args) => summary::run(args).await,
    }
}
