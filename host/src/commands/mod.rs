//! One module per command; this one loads what every command needs.

mod dbbackup;
mod dbrestore;
mod listbackups;
mod listmedia;
mod mediabackup;
mod mediarestore;
mod verify;

use anyhow::Result;

use crate::catalog::{Catalog, Listing};
use crate::cli::{Cli, Commands};
use crate::config::{self, Config};
use crate::exit;
use crate::policy::Policies;
use crate::rclone::Rclone;
use crate::record::BackupRecord;

/// What a command runs with: the config, the rclone wrapper, the policies.
pub struct Context {
    pub config: Config,
    pub rclone: Rclone,
    pub policies: Policies,
}

impl Context {
    pub fn load(cli: &Cli) -> Result<Context> {
        let config = Config::load(&config::locate(cli.config.as_deref()))?;
        let rclone = Rclone::from_settings(&config.settings);
        Ok(Context {
            config,
            rclone,
            policies: Policies::builtin(),
        })
    }

    pub fn catalog(&self) -> Catalog<'_> {
        Catalog::new(&self.rclone, &self.config.settings.db_backup_dir)
    }
}

pub fn run(cli: Cli) -> Result<()> {
    let ctx = Context::load(&cli)?;
    match &cli.command {
        Commands::Dbbackup(a) => dbbackup::run(&ctx, a),
        Commands::Dbrestore(a) => dbrestore::run(&ctx, a),
        Commands::Listbackups(a) => listbackups::run(&ctx, a),
        Commands::Verify(a) => verify::run(&ctx, a),
        Commands::Mediabackup(a) => mediabackup::run(&ctx, a),
        Commands::Mediarestore(a) => mediarestore::run(&ctx, a),
    }
}

/// The backup `-i NAME` names (also accepted as `db/NAME`, the way
/// django-rclone prints paths), or the newest of `database`.
pub fn choose_backup<'l>(
    listing: &'l Listing,
    backup_dir: &str,
    database: &str,
    input: Option<&str>,
) -> Result<&'l BackupRecord> {
    match input {
        Some(name) => {
            let name = name.strip_prefix(&format!("{backup_dir}/")).unwrap_or(name);
            listing.find(name).ok_or_else(|| {
                exit::failed(format!(
                    "no complete backup named `{name}` in {backup_dir}/; see `rcbackup listbackups` for the names"
                ))
            })
        }
        None => listing.backups.iter().find(|b| b.database == database).ok_or_else(|| {
            exit::failed(format!(
                "database `{database}` has no complete backup in {backup_dir}/ yet; run `rcbackup dbbackup -d {database}` first"
            ))
        }),
    }
}

/// Bytes for people: 1.2 MiB.
pub fn human_size(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}
