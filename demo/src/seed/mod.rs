//! `seed`: load the demo through the HQ API only (API.md), safe to run twice.
//!
//! Per city: the city (with its boundary), teams, territories (districts round-robin over the
//! teams), a manager and agents (homes inside their team's districts), and merchants sampled
//! uniformly inside districts, owned by an agent of the district's team. Then HQ users, a
//! few manual directives and the strategy rules (`rules.rs`, each printed with its preview). Randomness is seeded per city, so a second run sends the same bodies
//! with the same `Idempotency-Key`s, and the server answers with the first responses.

mod accounts;
mod directives;
mod people;
mod places;
mod rules;

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use rand::{rngs::StdRng, SeedableRng};

use crate::api::Api;
use crate::cities;

pub use people::DEMO_PASSWORD;

#[derive(Args, Debug)]
pub struct SeedArgs {
    /// hq-console base URL.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub hq: String,
    #[arg(long, default_value = "admin")]
    pub admin_user: String,
    #[arg(long, env = "FIELDOPS__AUTH__BOOTSTRAP_ADMIN_PASSWORD")]
    pub admin_password: String,
    /// Folder with the decoded `<city_id>.json` files.
    #[arg(long, default_value = ".cache/geo")]
    pub geo_dir: PathBuf,
    /// Where created user ids are remembered (used when the API cannot list users).
    #[arg(long, default_value = ".cache/demo-users.json")]
    pub state_file: PathBuf,
    /// Comma-separated city ids, or `all`.
    #[arg(long, default_value = "all")]
    pub cities: String,
    #[arg(long, default_value_t = 3)]
    pub teams_per_city: usize,
    #[arg(long, default_value_t = 20)]
    pub agents_per_city: usize,
    #[arg(long, default_value_t = 3000)]
    pub accounts_per_city: usize,
    /// Accounts per import request.
    #[arg(long, default_value_t = 2000)]
    pub batch_size: usize,
    /// Do not issue the demo directives.
    #[arg(long)]
    pub no_directives: bool,
    /// Do not create the demo strategy rules.
    #[arg(long)]
    pub no_rules: bool,
}

/// A stable 64-bit seed from a string (FNV-1a), so every run samples the same data.
pub fn seeded_rng(label: &str) -> StdRng {
    let hash = label.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3));
    StdRng::seed_from_u64(hash)
}

pub async fn run(args: SeedArgs) -> Result<()> {
    let selected = cities::select(&args.cities)?;
    let api = Api::new(&args.hq)?.login(&args.admin_user, &args.admin_password).await?;
    eprintln!("seed: logged in to {} as {}", args.hq, args.admin_user);
    let mut dir = people::Directory::open(&args.state_file)?;

    for (n, city) in selected.iter().enumerate() {
        eprintln!("seed: [{}/{}] {} ({})", n + 1, selected.len(), city.name_en, city.name_zh);
        let mut rng = seeded_rng(city.id);
        let place = places::seed_city(&api, city, &args).await?;
        let agents = people::seed_city_people(&api, &mut dir, city, &place, &args, &mut rng).await?;
        accounts::seed_accounts(&api, city, &place, &agents, &args, &mut rng).await?;
        dir.save()?;
    }
    people::seed_hq_people(&api, &mut dir).await?;
    dir.save()?;
    if !args.no_directives || !args.no_rules {
        // Directives and rules are the strategist's (API.md); admin only if that login fails.
        let strategist = match Api::new(&args.hq)?.login("strategist", DEMO_PASSWORD).await {
            Ok(s) => s,
            Err(e) => {
                eprintln!("warning: {e:#}; acting as {}", args.admin_user);
                api.clone()
            }
        };
        if !args.no_directives {
            directives::seed_directives(&strategist, &selected).await?;
        }
        if !args.no_rules {
            rules::seed_rules(&strategist).await?;
        }
    }
    print_logins(&args, &selected);
    Ok(())
}

fn print_logins(args: &SeedArgs, selected: &[cities::City]) {
    println!();
    println!("Demo logins (password for all but admin: {DEMO_PASSWORD})");
    println!("  admin        {} / (the admin password you gave)", args.admin_user);
    println!("  strategist   hq_strategist");
    println!("  coo          coo");
    for c in selected {
        println!(
            "  {}-manager   city_manager, {}; agents {}-agent-01 .. {}-agent-{:02}",
            c.short, c.id, c.short, c.short, args.agents_per_city
        );
    }
}
