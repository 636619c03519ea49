//! `unlock`: remove the locks of runs that are gone and show the live ones
//! (see crate::lock). Without --force only stale locks go (lease run out,
//! or their process no longer runs on this host); with --force every lock
//! of the series, live or not: the run that held one stops before its next
//! change (exit 5) when it notices.

use anyhow::Result;
use chrono::Utc;
use serde::Serialize;

use super::{json, Context};
use crate::cli::UnlockArgs;
use crate::exit;
use crate::lock::{self, Found, Series, LEASE};

pub fn run(ctx: &Context, args: &UnlockArgs) -> Result<()> {
    let dir = &ctx.config.settings.db_backup_dir;
    let series: Vec<Series> = if let Some(alias) = &args.database {
        crate::database::check_alias(alias).map_err(exit::usage)?;
        vec![Series::Db(alias.clone())]
    } else if args.media {
        vec![Series::Media]
    } else {
        every_series(ctx, dir)?
    };
    let host = lock::host_name();
    let now = Utc::now();
    let mut report = Report::default();
    for s in &series {
        for found in lock::read_series(&ctx.rclone, &lock::series_dir(dir, s))? {
            let Found {
                path,
                info,
                mod_time,
            } = found;
            let stale = match &info {
                Some(i) => i.stale(now, &host),
                None => (now - mod_time > chrono::Duration::from_std(LEASE).expect("lease"))
                    .then(|| "it does not read as a lock and is older than a lease".to_string()),
            };
            let holder = info.as_ref().map_or_else(
                || "an object that does not read as a lock".to_string(),
                |i| i.holder(),
            );
            let entry = Entry {
                series: s.key(),
                path: ctx.rclone.path(&path),
                holder,
                stale: stale.clone(),
            };
            if stale.is_some() || args.force {
                ctx.rclone.deletefile(&path)?;
                report.removed.push(entry);
            } else {
                report.held.push(entry);
            }
        }
    }
    if args.json {
        return json::print(&report);
    }
    let tenant = crate::lock::tenant_flag(ctx.config.tenant.as_deref());
    for e in &report.removed {
        let why = e.stale.as_deref().unwrap_or("--force");
        crate::outln!(
            "removed the lock of {} held by {} ({why})",
            shown(&e.series),
            e.holder
        );
    }
    for e in &report.held {
        let args = Series::from_key(&e.series).map_or_else(String::new, |s| s.unlock_args());
        crate::outln!(
            "{} is still held by {}; if you are sure that run is gone: rcbackup{tenant} unlock {args} --force",
            shown(&e.series),
            e.holder
        );
    }
    if report.removed.is_empty() && report.held.is_empty() {
        crate::outln!("no locks");
    }
    Ok(())
}

fn shown(key: &str) -> String {
    Series::from_key(key).map_or_else(|| key.to_string(), |s| s.to_string())
}

/// The series that have a lock folder.
fn every_series(ctx: &Context, dir: &str) -> Result<Vec<Series>> {
    let entries = ctx
        .rclone
        .list_files_recursive(&lock::locks_dir(dir), 2)?
        .unwrap_or_default();
    let mut keys: Vec<&str> = entries
        .iter()
        .filter_map(|e| e.path.split_once('/').map(|(k, _)| k))
        .collect();
    keys.sort_unstable();
    keys.dedup();
    Ok(keys.into_iter().filter_map(Series::from_key).collect())
}

/// `unlock --json`.
#[derive(Default, Serialize)]
struct Report {
    removed: Vec<Entry>,
    held: Vec<Entry>,
}

#[derive(Serialize)]
struct Entry {
    /// `db-<alias>` or `media`.
    series: String,
    path: String,
    holder: String,
    /// Why it was stale, if it was.
    stale: Option<String>,
}
