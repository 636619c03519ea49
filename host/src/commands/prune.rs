//! `prune`: retention without a backup (like restic's `forget --prune`):
//! the same decisions and deletions as `dbbackup --clean`, for one
//! database or every configured one, then the leftovers of interrupted runs.

use std::collections::BTreeSet;

use anyhow::Result;
use chrono::Utc;
use serde::Serialize;

use super::dbbackup::{Cleaner, Cleanup};
use super::{json, Context};
use crate::cli::PruneArgs;
use crate::lock::Series;

pub fn run(ctx: &Context, args: &PruneArgs) -> Result<()> {
    let aliases: Vec<&str> = match &args.database {
        Some(a) => vec![ctx.config.alias(Some(a))?],
        None => ctx.config.databases.keys().map(String::as_str).collect(),
    };
    // Each database pruned is locked (in the config's order, so two prunes
    // never wait on each other crosswise) before anything is listed; a dry
    // run changes nothing and takes none.
    let locks = if args.dry_run {
        Vec::new()
    } else {
        aliases
            .iter()
            .map(|a| ctx.lock(Series::Db(a.to_string()), "prune"))
            .collect::<Result<Vec<_>>>()?
    };
    let catalog = ctx.catalog();
    let listing = catalog.list()?;
    let configured: BTreeSet<&str> = ctx.config.databases.keys().map(String::as_str).collect();
    if args.database.is_none() {
        let strangers: BTreeSet<&str> = listing
            .backups
            .iter()
            .map(|b| b.database.as_str())
            .filter(|d| !configured.contains(d))
            .collect();
        for d in strangers {
            tracing::info!(
                "backups of database `{d}`, which is not in the config, are left alone; add it to the config to prune them"
            );
        }
    }
    let now = Utc::now();
    let mut cleaner = Cleaner::start(ctx, &catalog, &listing, now, args.dry_run, None)?;
    if args.database.is_some() {
        // Only this database's things: its backups and its leftovers.
        cleaner.only(aliases[0]);
    }
    cleaner.guarded_by(locks.iter().collect());
    for alias in &aliases {
        cleaner.series(alias, &listing.series(alias))?;
    }
    // Restore staging files are local: only for databases whose settings
    // resolve (a url_env that is unset here has none to look for).
    let local: Vec<_> = aliases
        .iter()
        .filter_map(|a| ctx.config.databases.get(*a))
        .filter_map(|e| e.get().ok())
        .collect();
    cleaner.leftovers(&local)?;
    let report = cleaner.report;
    if args.json {
        return json::print(&PruneReport {
            dry_run: args.dry_run,
            report,
        });
    }
    print_text(&report, args.dry_run)
}

/// `prune --json`. See docs/json.md.
#[derive(Serialize)]
struct PruneReport {
    dry_run: bool,
    #[serde(flatten)]
    report: Cleanup,
}

fn print_text(report: &Cleanup, dry_run: bool) -> Result<()> {
    for line in report.lines(dry_run, true) {
        crate::outln!("{line}");
    }
    let deleted: usize = report
        .databases
        .iter()
        .flat_map(|s| &s.decisions)
        .filter(|d| d.action == "delete")
        .count();
    let kept: usize = report
        .databases
        .iter()
        .flat_map(|s| &s.decisions)
        .filter(|d| d.action == "keep")
        .count();
    tracing::info!(
        "{}{deleted} backup(s) {}, {kept} kept, {} leftover(s) {}",
        if dry_run { "dry run: " } else { "" },
        if dry_run {
            "would be deleted"
        } else {
            "deleted"
        },
        report.leftovers.len(),
        if dry_run {
            "would be removed; nothing was changed"
        } else {
            "removed"
        }
    );
    Ok(())
}
