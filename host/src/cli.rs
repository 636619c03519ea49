//! The command line. Command and option names are django-rclone's.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "rcbackup",
    version,
    about = "Stream database dumps into any storage rclone reaches, and back.",
    after_help = "Environment:\n  RCBACKUP_CONFIG  the config file when --config is not given\n  RCBACKUP_LOG     a tracing filter for the log (e.g. rcbackup=debug), used only when neither -v nor -q is given\n  RCBACKUP_PROGRESS_INTERVAL  seconds between progress log lines when stderr is not a terminal (default 60)\n  RCBACKUP_METRICS_FILE  the metrics file when --metrics-file is not given"
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

    /// Log format on stderr: text, or json (one JSON object a line with
    /// timestamp, level, message and the event's fields; no live progress line).
    #[arg(long, global = true, value_name = "FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// After the run (dbbackup, dbrestore, verify, mediabackup, drill,
    /// backup-all), write
    /// Prometheus metrics to PATH for node_exporter's textfile collector
    /// (see docs/monitoring.md). A failure to write is only a warning.
    /// Default: $RCBACKUP_METRICS_FILE (read by `lib.rs`, where an empty
    /// value counts as unset: a variable left empty by an environment
    /// template must not stop the backup).
    #[arg(long, global = true, value_name = "PATH")]
    pub metrics_file: Option<PathBuf>,

    /// Run on tenant NAME's config (its `[tenants.NAME]` section or
    /// `tenants_dir/NAME.toml`, over the top level). Without it: the top
    /// level's own databases. `backup-all` takes a pattern instead.
    #[arg(long, global = true, value_name = "NAME")]
    pub tenant: Option<String>,

    /// How long to wait for another run's lock on the same series (a
    /// database's backups, or the media backup) before failing with exit 5:
    /// seconds, or e.g. 30s, 5m, 1h (at most 168h). Default 0: fail at once, naming the
    /// holder. See docs/locks.md.
    #[arg(long, global = true, value_name = "DURATION", default_value = "0", value_parser = crate::lock::parse_wait)]
    pub lock_wait: std::time::Duration,

    #[command(subcommand)]
    pub command: Commands,
}

/// The log's format on stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
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
    /// Prove a backup restores: restore it into a scratch database (never the
    /// live one), count the rows of every table, drop the scratch database.
    Drill(DrillArgs),
    /// Back up every database of every tenant (or of the tenants --tenant
    /// PATTERN matches), N dumps at a time, and print a summary of every one.
    BackupAll(BackupAllArgs),
    /// Try out and precompile WebAssembly policies.
    #[command(subcommand)]
    Policy(PolicyCommand),
    /// Apply retention (db_cleanup_keep or the retention policy) without
    /// making a backup, and remove what interrupted runs left.
    Prune(PruneArgs),
    /// Record the backups django-rclone or django-dbbackup made in the
    /// backup folder, so that they are listed, verified, retained and
    /// restored like rcbackup's own (docs/adopt.md).
    Adopt(AdoptArgs),
    /// Write a commented starter config (from flags or a DATABASE_URL).
    Init(InitArgs),
    /// Check the config file and what it relies on.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Remove the locks of runs that are gone (stale ones; with --force,
    /// every lock of the series) and list the live ones with their holders.
    Unlock(UnlockArgs),
    /// Print a completion script for a shell, generated from this command line.
    Completions(CompletionsArgs),
    /// Print the man page (roff), generated from this command line.
    Man(ManArgs),
}

#[derive(Debug, Args)]
#[command(
    after_help = "The password is never written into the file nor printed: the config names an \
environment variable (password_env, or url_env for a URL with query parameters) and init says which to set. \
Then run `rcbackup config check`."
)]
pub struct InitArgs {
    /// The database as a URL: postgres://, postgresql://, postgis://,
    /// mysql://, mariadb://, sqlite:///relative.db or sqlite:////absolute.db
    /// (default: $DATABASE_URL when no --engine is given). Prefer the
    /// variable: a password on a command line is visible to every user.
    #[arg(long, value_name = "URL", conflicts_with_all = ["engine", "name", "host", "port", "user"])]
    pub database_url: Option<String>,
    /// The engine, when the database is given by flags: postgresql, postgis,
    /// mysql, mariadb or sqlite.
    #[arg(long, value_name = "ENGINE", requires = "name",
          value_parser = ["postgresql", "postgis", "mysql", "mariadb", "sqlite"])]
    pub engine: Option<String>,
    /// The database name (for sqlite, the file's path).
    #[arg(long, value_name = "NAME", requires = "engine")]
    pub name: Option<String>,
    /// The server's host name or address (default: the tools' local socket).
    #[arg(long, value_name = "HOST", requires = "engine")]
    pub host: Option<String>,
    /// The server's port.
    #[arg(long, value_name = "PORT", requires = "engine")]
    pub port: Option<u16>,
    /// The user to log in as.
    #[arg(long, value_name = "USER", requires = "engine")]
    pub user: Option<String>,
    /// The NAME of the environment variable that will hold the password
    /// (default: RCBACKUP_DB_PASSWORD, or RCBACKUP_<ALIAS>_DB_PASSWORD).
    #[arg(long, value_name = "VAR")]
    pub password_env: Option<String>,
    /// The database's alias in the config ([databases.ALIAS]).
    #[arg(long, value_name = "ALIAS", default_value = "default")]
    pub alias: String,
    /// Where backups go: an rclone remote with optional path (e.g.
    /// s3:my-bucket/app), or a local folder (default: the folder `backups`
    /// beside the config file).
    #[arg(long, value_name = "REMOTE:PATH")]
    pub remote: Option<String>,
    /// The media folder to back up with mediabackup.
    #[arg(long, value_name = "DIR")]
    pub media_root: Option<std::path::PathBuf>,
    /// Where to write the config, `-` for standard output (default: --config,
    /// else $RCBACKUP_CONFIG, else ./rcbackup.toml).
    #[arg(short, long, value_name = "PATH")]
    pub output: Option<std::path::PathBuf>,
    /// Replace the file if it exists.
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Check the config, its policies, rclone, the remote and each database.
    ///
    /// Loads the config and its policies as a run does (no policy is called),
    /// looks for rclone and each engine's tools, lists the backup folder,
    /// connects to each database and compares pg_dump's version with the
    /// server's; prints one line per check (ok, warning or error). Exit 0
    /// when nothing failed (warnings allowed), 2 for a config error, 1 for
    /// another failed check.
    Check(ConfigCheckArgs),
}

#[derive(Debug, Args)]
pub struct ConfigCheckArgs {
    /// Print one JSON object instead of lines (see docs/setup.md).
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell.
    #[arg(value_enum)]
    pub shell: Shell,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum Shell {
    Bash,
    Zsh,
    Fish,
}

#[derive(Debug, Args)]
pub struct ManArgs {
    /// Write one page per command (rcbackup.1, rcbackup-dbbackup.1, ...)
    /// into this folder instead of printing the main page.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<std::path::PathBuf>,
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
    /// Send the hook's HTTP requests to the hosts the input grants (without
    /// it they are checked and shown, and answered 200 with an empty body).
    #[arg(long)]
    pub send: bool,
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
    /// Every tenant's backups (and the top level's own), with a tenant
    /// column: for the operator. A tenant whose config is broken or whose
    /// remote cannot be listed is a line saying so (exit 1 at the end).
    #[arg(long, conflicts_with = "media")]
    pub all_tenants: bool,
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
#[command(
    after_help = "Without --force only stale locks go: those whose lease ran out, and those of \
processes on this host that no longer run. A live lock is listed with its holder; remove it with \
--force only when you are sure that run is gone: a run whose lock is removed stops before its \
next change (exit 5)."
)]
pub struct UnlockArgs {
    /// Only the locks of this database's backups (default: every series).
    #[arg(short, long, value_name = "ALIAS", conflicts_with = "media")]
    pub database: Option<String>,
    /// Only the locks of the media backup.
    #[arg(long)]
    pub media: bool,
    /// Remove live locks too.
    #[arg(long)]
    pub force: bool,
    /// Print what was removed and what is still held as one JSON document.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct AdoptArgs {
    /// Only this database's backups (every configured database still takes
    /// part in telling whose a file is).
    #[arg(short, long, value_name = "ALIAS")]
    pub database: Option<String>,
    /// Change nothing, read no backup: show each file, adopted (as which
    /// database, made when, by which tool) or not, and why.
    #[arg(long)]
    pub dry_run: bool,
    /// django-dbbackup's DBBACKUP_FILENAME_TEMPLATE, if it was not the
    /// default, e.g. "{databasename}-{datetime}.{extension}".
    #[arg(long, value_name = "TEMPLATE")]
    pub template: Option<String>,
    /// django-dbbackup's DBBACKUP_DATE_FORMAT, if it was not the default.
    #[arg(long, value_name = "FORMAT")]
    pub date_format: Option<String>,
    /// django-dbbackup's times are UTC (its machine ran in UTC, or
    /// TIME_ZONE), not this machine's local time.
    #[arg(long)]
    pub utc: bool,
    /// Print what was adopted and what not as one JSON document.
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

#[derive(Debug, Args)]
pub struct DrillArgs {
    /// Database alias from the config.
    #[arg(short, long, value_name = "ALIAS")]
    pub database: Option<String>,
    /// Backup name to drill (default: the newest of the database).
    #[arg(
        short,
        long = "input-path",
        value_name = "NAME",
        conflicts_with = "cleanup"
    )]
    pub input_path: Option<String>,
    /// Print one JSON object (docs/json.md, "drill") instead of a table
    /// (with --cleanup: what was removed).
    #[arg(long)]
    pub json: bool,
    /// Keep the scratch database (SQLite: file) for a look instead of dropping
    /// it; `drill --cleanup` removes it, as does a drill once it is
    /// abandoned_after_hours old.
    #[arg(long, conflicts_with = "cleanup")]
    pub keep: bool,
    /// Restore nothing: remove what earlier drills of the database left
    /// (killed runs, --keep), and print what was removed.
    #[arg(long)]
    pub cleanup: bool,
}

#[derive(Debug, Args)]
#[command(
    after_help = "Which databases: every tenant's and, without --tenant, the top level's own. \
--tenant takes a pattern here (`*` any characters, `?` one character, e.g. --tenant 'shop-*'). \
One failure does not stop the others. Exit 0 if every backup was made, 1 if any failed, \
2 for a usage or config error before anything ran, 130 if interrupted (the summary is printed all the same)."
)]
pub struct BackupAllArgs {
    /// At most N dumps at a time, 1 to 64 (default: the number of CPUs,
    /// at least 2 and at most 8).
    #[arg(short, long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=64))]
    pub jobs: Option<u16>,
    /// Only this shard's share of the tenants: I of N copies (0 <= I < N)
    /// that together cover every tenant exactly once, e.g. in a Kubernetes
    /// Indexed Job --shard "$JOB_COMPLETION_INDEX/4".
    #[arg(long, value_name = "I/N")]
    pub shard: Option<crate::shard::Shard>,
    /// After each successful backup, apply retention to that database, as
    /// `dbbackup --clean` does.
    #[arg(long)]
    pub clean: bool,
    /// Print the summary as one JSON document (docs/json.md) instead of a
    /// table.
    #[arg(long)]
    pub json: bool,
}
