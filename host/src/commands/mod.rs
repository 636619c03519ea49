//! One module per command; this one loads what every command needs.

mod adopt;
mod backup_all;
mod completions;
mod config_check;
mod dbbackup;
mod dbrestore;
mod drill;
mod init;
mod listbackups;
mod listmedia;
mod man;
mod mediabackup;
mod mediarestore;
mod policy;
mod verify;
// Part of issue 11 (--json, prune): the JSON documents and `prune`.
mod json;
mod prune;
mod unlock;

use anyhow::Result;

use crate::catalog::{Catalog, Listing};
use crate::cli::{Cli, Commands};
use crate::config::{self, Config};
use crate::exit;
use crate::lock::{Lock, Request, Series};
use crate::naming::printable;
use crate::policy::{Approval, Event, EventKind, Policies};
use crate::prompt;
use crate::rclone::Rclone;
use crate::record::BackupRecord;

/// What a command runs with: the config, the rclone wrapper, the policies.
pub struct Context {
    pub config: Config,
    pub rclone: Rclone,
    pub policies: Policies,
    /// `--lock-wait`: how long [`Context::lock`] waits for a holder.
    pub lock_wait: std::time::Duration,
}

impl Context {
    pub fn load(cli: &Cli) -> Result<Context> {
        let config =
            Config::load(&config::locate(cli.config.as_deref()))?.select(cli.tenant.as_deref())?;
        crate::metrics::note_configured(config.databases.keys());
        crate::metrics::note_tenant(config.tenant.as_deref());
        json::note_tenant(config.tenant.as_deref());
        let rclone = Rclone::for_run(&config.settings)?;
        Ok(Context {
            rclone,
            policies: Policies::from_config(&config.policies)?.for_tenant(config.tenant.clone()),
            config,
            lock_wait: cli.lock_wait,
        })
    }

    /// Takes the lease lock on `series` for `command` (waiting up to
    /// --lock-wait): held until the returned value is dropped.
    pub fn lock(&self, series: Series, command: &str) -> Result<Lock> {
        Lock::acquire(Request {
            rclone: &self.rclone,
            db_backup_dir: &self.config.settings.db_backup_dir,
            series,
            command,
            tenant: self.config.tenant.as_deref(),
            wait: self.lock_wait,
        })
    }

    pub fn catalog(&self) -> Catalog<'_> {
        Catalog::new(&self.rclone, &self.config.settings.db_backup_dir)
            .of_tenant(self.config.tenant.as_deref())
    }
}

pub fn run(cli: Cli) -> Result<()> {
    // `policy test/compile` work on a module alone, without a config file.
    if let Commands::Policy(a) = &cli.command {
        return policy::run(a);
    }
    // Setup help: no config yet (init, completions, man), or checking it.
    match &cli.command {
        Commands::Init(a) => return init::run(&cli, a),
        Commands::Config(crate::cli::ConfigCommand::Check(a)) => return config_check::run(&cli, a),
        Commands::Completions(a) => return completions::run(a),
        Commands::Man(a) => return man::run(a),
        // Many configs (its --tenant is a pattern): its own loading.
        Commands::BackupAll(a) => return backup_all::run(&cli, a),
        Commands::Listbackups(a) if a.all_tenants => return listbackups::run_all_tenants(&cli, a),
        _ => {}
    }
    let ctx = Context::load(&cli)?;
    match &cli.command {
        Commands::Dbbackup(a) => dbbackup::run(&ctx, a),
        Commands::Dbrestore(a) => dbrestore::run(&ctx, a),
        Commands::Listbackups(a) => listbackups::run(&ctx, a),
        Commands::Verify(a) => verify::run(&ctx, a),
        Commands::Mediabackup(a) => mediabackup::run(&ctx, a),
        Commands::Mediarestore(a) => mediarestore::run(&ctx, a),
        Commands::Drill(a) => drill::run(&ctx, a),
        Commands::Prune(a) => prune::run(&ctx, a),
        Commands::Adopt(a) => adopt::run(&ctx, a),
        Commands::Unlock(a) => unlock::run(&ctx, a),
        Commands::Policy(_)
        | Commands::BackupAll(_)
        | Commands::Init(_)
        | Commands::Config(_)
        | Commands::Completions(_)
        | Commands::Man(_) => unreachable!("handled above"),
    }
}

/// The backup `-i NAME` names (also accepted as `db/NAME`, the way
/// django-rclone prints paths), or the newest of `database`.
///
/// Never falls back to an older backup without saying so: a damaged backup
/// named with `-i`, or a damaged backup newer than the newest intact one,
/// is an integrity error (exit 4) that names the intact one to choose.
pub fn choose_backup<'l>(
    listing: &'l Listing,
    backup_dir: &str,
    database: &str,
    input: Option<&str>,
) -> Result<&'l BackupRecord> {
    if let Some(name) = input {
        let name = name.strip_prefix(&format!("{backup_dir}/")).unwrap_or(name);
        if let Some(b) = listing.find(name) {
            return Ok(b);
        }
        if let Some(d) = listing.find_damaged(name) {
            return Err(exit::integrity(format!(
                "backup `{}` is damaged: {}. Choose an intact backup (`rcbackup listbackups` marks each)",
                printable(name),
                d.problem
            )));
        }
        let zst = format!("{name}{}", crate::compression::Codec::Zstd.suffix());
        if listing.find(&zst).is_some() {
            return Err(exit::failed(format!(
                "no complete backup named `{}` in {backup_dir}/, but there is `{}` (a compressed backup's name ends in `.zst`): pass `-i {}`",
                printable(name),
                printable(&zst),
                printable(&zst)
            )));
        }
        return Err(exit::failed(format!(
            "no complete backup named `{}` in {backup_dir}/; see `rcbackup listbackups` for the names",
            printable(name)
        )));
    }
    let newest = listing.backups.iter().find(|b| b.database == database);
    let newer_damaged = listing
        .damaged_of(database)
        .find(|d| newest.is_none_or(|b| d.when > b.created));
    match (newest, newer_damaged) {
        (Some(b), None) => Ok(b),
        (Some(b), Some(d)) => Err(exit::integrity(format!(
            "the newest backup of `{database}`, `{}`, is damaged: {}. The newest intact one is `{}` (made {}); \
             to use it, pass `-i {}`",
            printable(&d.name),
            d.problem,
            b.name,
            b.created.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            b.name
        ))),
        (None, Some(d)) => Err(exit::integrity(format!(
            "database `{database}` has no intact backup in {backup_dir}/: `{}` is damaged: {}",
            printable(&d.name),
            d.problem
        ))),
        (None, None) => Err(exit::failed(format!(
            "database `{database}` has no complete backup in {backup_dir}/ yet; run `rcbackup dbbackup -d {database}` first"
        ))),
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

/// Runs `body` between lifecycle events: `pre` first (a hook's error answer
/// is a veto, exit 3; a hook that fails, exit 1: nothing runs either way),
/// then `post` on success or `failed` with the error, each carrying the
/// time taken. A hook failing on `failed` is only logged:
/// the command's own error is the one to report.
pub fn with_events<T>(
    ctx: &Context,
    pre: Event,
    what: &str,
    (post, failed): (EventKind, EventKind),
    body: impl FnOnce(&mut Event) -> Result<T>,
) -> Result<T> {
    ctx.policies
        .emit_pre(&pre, what)
        .map_err(|e| exit::with_note(e, "nothing was changed"))?;
    let started = std::time::Instant::now();
    // The body may add to what `post`/`failed` report (a media backup's
    // stamp, known only once its lock is held).
    let mut done = pre;
    let outcome = body(&mut done);
    done.now = chrono::Utc::now();
    done.duration = Some(started.elapsed());
    match outcome {
        Ok(v) => {
            done.kind = post;
            ctx.policies.emit(&done)?;
            Ok(v)
        }
        Err(e) => Err(emit_failed(ctx, done, failed, e)),
    }
}

/// Sends `done` as the `failed` event of `e` and gives `e` back: a hook
/// failing on it is only logged, the command's own error is the one to
/// report.
pub fn emit_failed(
    ctx: &Context,
    mut done: Event,
    failed: EventKind,
    e: anyhow::Error,
) -> anyhow::Error {
    done.kind = failed;
    done.error = Some(format!("{e:#}"));
    if let Err(hook) = ctx.policies.emit(&done) {
        tracing::warn!("a hook failed on {}: {hook:#}", done.kind.as_str());
    }
    e
}

/// Applies a restore approval: go on, ask at the terminal (unless
/// `noinput`), or refuse with the policy's reason.
pub fn apply_approval(
    approval: Result<Approval>,
    noinput: bool,
    question: &str,
    what: &str,
) -> Result<()> {
    match approval {
        Ok(Approval::Allow) => Ok(()),
        Ok(Approval::AskUser) if noinput => Ok(()),
        Ok(Approval::AskUser) => prompt::confirm(question),
        Ok(Approval::Deny(why)) => Err(exit::refused(format!(
            "{what} denied: {why}; nothing was changed"
        ))),
        Err(e) => Err(exit::refused(format!(
            "{what} denied: the approval policy failed: {e:#}; nothing was changed"
        ))),
    }
}
