//! The command line. Command and option names are django-rclone's.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "rcbackup",
    version,
    about = "Stream database dumps into any storage rclone reaches, and back.",
    after_help = "Environment:\n  RCBACKUP_CONFIG  the config file when --config is not given\n  RCBACKUP_LOG     a tracing filter for the log (e.g. rcbackup=debug), used only when neither -v nor -q is given"
)]
pub struct Cli {
    /// Config file (default: $RCBACKUP_CONFIG, else ./rcbackup.toml).
    #[arg(long, global = true, value_name = "PATH")]
    pub config: Option<PathBuf>,

    /// More log output (-v debug, -vv trace with seconds since start). Wins over RCBACKUP_LOG.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,

    /// Only warnings and errors. Wins over RCBACKUP_LOG.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,

    #[command(subcommand)]
    pub command: Commands,
}

#[derive(Debug, Subcommand)]
pub enum Commands {
    /// Dump a database and stream it to the remote.
    Dbbackup(DbBackupArgs),
    /// Stream a backup back into its database.
    Dbrestore(DbRestoreArgs),
    /// List complete backups, newest first.
    Listbackups(ListArgs),
    /// Read a backup back and check its size and SHA-256.
    Verify(VerifyArgs),
    /// Bring the remote copy of media_root up to date (rclone sync), keeping
    /// what it replaces or deletes in a dated version folder.
    Mediabackup(MediaBackupArgs),
    /// Copy the media backup (or its state at a past time) back into media_root.
    Mediarestore(MediaRestoreArgs),
    /// Try out and precompile WebAssembly policies.
    #[command(subcommand)]
    Policy(PolicyCommand),
    /// Apply retention (db_cleanup_keep or the retention policy) without
    /// making a backup, and remove what interrupted runs left.
    Prune(PruneArgs),
}

#[derive(Debug, Args)]
pub struct MediaBackupArgs {
    /// Accepted and ignored, as django-dbbackup's scripts pass it:
    /// mediabackup never asks anything.
    #[arg(long)]
    pub noinput: bool,
    /// Sync even when media_root is empty and would empty the remote copy.
    #[arg(long)]
    pub allow_empty: bool,
    /// Change nothing: list what would be copied, replaced and deleted.
    #[arg(long)]
    pub dry_run: bool,
    /// Print what was copied, replaced and deleted as one JSON document
    /// (docs/json.md).
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct MediaRestoreArgs {
    /// Do not ask for confirmation.
    #[arg(long)]
    pub noinput: bool,
    /// Make media_root an exact copy: also delete local files the backup
    /// lacks (they are listed before anything happens).
    #[arg(long)]
    pub mirror: bool,
    /// Restore the folder as the last media backup at or before TIME left it
    /// (e.g. 2026-11-26T21:00:00Z, "2026-11-26 21:00" in UTC, or 2026-11-26).
    #[arg(long, value_name = "TIME")]
    pub at: Option<String>,
    /// Change nothing: list what the restore would bring back and delete.
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Run one role of a module on an input and print its decision.
    Test(PolicyTestArgs),
    /// Compile a module into the cache so that runs load it at once.
    Compile(PolicyCompileArgs),
}

#[derive(Debug, Args)]
pub struct PolicyTestArgs {
    /// The component (.wasm).
    #[arg(value_name = "MODULE")]
    pub module: PathBuf,
    /// retention, naming, restore-approval or hooks (default: the input's "role",
    /// else the only role the module exports).
    #[arg(long, value_name = "ROLE")]
    pub role: Option<String>,
    /// The input as JSON (see docs/policies.md, "policy test").
    #[arg(long, value_name = "FILE.json")]
    pub input: PathBuf,
    /// Print the decision as one JSON document (docs/json.md).
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct PolicyCompileArgs {
    #[arg(value_name = "MODULE", required = true)]
    pub modules: Vec<PathBuf>,
}

#[derive(Debug, Args)]
pub struct DbBackupArgs {
    /// Database alias from the config.
    #[arg(short, long, value_name = "ALIAS")]
    pub database: Option<String>,
    /// Accepted and ignored, as django-dbbackup's scripts pass it: dbbackup
    /// never asks anything.
    #[arg(long)]
    pub noinput: bool,
    /// After a successful backup, delete this database's backups beyond db_cleanup_keep.
    #[arg(long)]
    pub clean: bool,
    /// Change nothing: print the name the backup would get and, with --clean,
    /// which backups cleanup would delete.
    #[arg(long)]
    pub dry_run: bool,
    /// Print what was made (name, path, size, sha256, ...) and what cleanup
    /// did as one JSON document (docs/json.md).
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct DbRestoreArgs {
    #[arg(short, long, value_name = "ALIAS")]
    pub database: Option<String>,
    /// Backup name to restore (default: the newest of the database).
    #[arg(short, long = "input-path", value_name = "NAME")]
    pub input_path: Option<String>,
    /// Do not ask for confirmation.
    #[arg(long)]
    pub noinput: bool,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    #[arg(short, long, value_name = "ALIAS", conflicts_with = "media")]
    pub database: Option<String>,
    /// The media backup instead: the mirror's file count and size, and the
    /// backups that `mediarestore --at` can go back to.
    #[arg(long)]
    pub media: bool,
    /// Print JSON instead of a table (an array; with --media, one object).
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    #[arg(short, long, value_name = "ALIAS")]
    pub database: Option<String>,
    /// Backup name to verify (default: the newest of the database).
    #[arg(
        short,
        long = "input-path",
        value_name = "NAME",
        conflicts_with = "all"
    )]
    pub input_path: Option<String>,
    /// Check every backup (of -d ALIAS, else of every database), one line
    /// each; exit 4 if any is damaged, after checking all of them.
    #[arg(long)]
    pub all: bool,
    /// With --all: only the newest backup of each database.
    #[arg(long, requires = "all")]
    pub newest: bool,
    /// Print the backups checked as one JSON document (docs/json.md).
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct PruneArgs {
    /// Only this database's backups (default: every configured database).
    #[arg(short, long, value_name = "ALIAS")]
    pub database: Option<String>,
    /// Change nothing: show each decision (keep or delete, and why) and the
    /// leftovers that would be removed.
    #[arg(long)]
    pub dry_run: bool,
    /// Print the decisions and removals as one JSON document (docs/json.md).
    #[arg(long)]
    pub json: bool,
}
