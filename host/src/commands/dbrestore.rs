//! `dbrestore`: approval first, then rclone cat | host (verify) | restore tool.

use std::time::Instant;

use anyhow::Result;
use chrono::Utc;

use super::{apply_approval, choose_backup, with_events, Context};
use crate::cli::DbRestoreArgs;
use crate::engines::{self, Source};
use crate::exit;
use crate::lock::Series;
use crate::policy::{Event, EventKind, RestoreRequest};

pub fn run(ctx: &Context, args: &DbRestoreArgs) -> Result<()> {
    // Restoring into the wrong database is not undoable: with several
    // configured, say which (django-rclone's rule), even if one is "default".
    if args.database.is_none() && ctx.config.databases.len() > 1 {
        return Err(exit::usage(format!(
            "several databases are configured ({}); choose the one to restore with -d/--database",
            ctx.config
                .databases
                .keys()
                .cloned()
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    let db = ctx.config.database(args.database.as_deref())?;
    crate::metrics::note_database(&db.alias);
    let catalog = ctx.catalog();
    let listing = catalog.list()?;
    let backup = choose_backup(
        &listing,
        catalog.dir(),
        &db.alias,
        args.input_path.as_deref(),
    )?;
    crate::metrics::note_size(backup.size);
    if !engines::compatible(backup.engine, db.engine) {
        return Err(exit::usage(format!(
            "backup {} was made from a {} database and cannot be restored into `{}`, which is {}",
            backup.name, backup.engine, db.alias, db.engine
        )));
    }
    let now = Utc::now();
    let request = RestoreRequest {
        database: db.alias.clone(),
        tenant: None,
        backup: backup.clone(),
        requested_by: std::env::var("USER").unwrap_or_else(|_| "unknown".into()),
        noinput: args.noinput,
        now,
    };
    let question = format!(
        "Restore database '{}' from '{}'?",
        db.alias,
        catalog.data_path(&backup.name)
    );
    let what = format!("restore of `{}`", db.alias);
    apply_approval(
        ctx.policies.approve_restore(&request),
        args.noinput,
        &question,
        &what,
    )?;

    let mut pre = Event::new(EventKind::PreDbRestore, now);
    pre.database = Some(db.alias.clone());
    pre.backup = Some(backup.name.clone());
    pre.size = Some(backup.size);
    pre.sha256 = Some(backup.sha256.clone());
    let events = (EventKind::PostDbRestore, EventKind::DbRestoreFailed);
    with_events(ctx, pre, &what, events, |_| {
        // No backup or prune of this database while it is restored (and no
        // second restore), held until the restore ends. Taken once the
        // restore is approved and no hook vetoed it: a refused restore
        // touches nothing on the remote, not even a lock.
        // A backup of another alias (`-i`) is that alias's series: its
        // lock too, so its prune cannot delete the backup being read. Taken
        // in name order, so two crossing restores cannot hold one each.
        let mut aliases = vec![db.alias.as_str(), backup.database.as_str()];
        aliases.sort_unstable();
        aliases.dedup();
        let locks = aliases
            .into_iter()
            .map(|alias| ctx.lock(Series::Db(alias.to_string()), "dbrestore"))
            .collect::<Result<Vec<_>>>()
            .map_err(|e| exit::with_note(e, "the database was left as it was"))?;
        let started = Instant::now();
        // A lost lock (unlock --force, a lease that ran out) may let a
        // backup or another restore of this database run beside this one:
        // the live database is not replaced then.
        let locks_held = || -> Result<()> {
            for lock in &locks {
                lock.check_for_local_step()?;
            }
            Ok(())
        };
        let source = Source {
            rclone: &ctx.rclone,
            path: catalog.data_path(&backup.name),
            record: backup,
            may_commit: Some(&locks_held),
        };
        engines::restore(db, &source)?;
        tracing::info!(
            "restored `{}` from {} in {:.1}s",
            db.alias,
            backup.name,
            started.elapsed().as_secs_f64()
        );
        Ok(())
    })
}
