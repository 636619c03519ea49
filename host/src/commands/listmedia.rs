//! `listbackups --media`: the mirror's size, every media backup and
//! version folder with its time and size, and which ones `mediarestore
//! --at` can go back to.

use anyhow::Result;
use serde::Serialize;

use super::{human_size, Context};
use crate::media::{listing, History, Layout};

#[derive(Serialize)]
struct Report {
    /// On a tenant's run.
    #[serde(skip_serializing_if = "Option::is_none")]
    tenant: Option<String>,
    mirror: String,
    files: u64,
    size: u64,
    /// Every backup that wrote a file list or left a version folder, oldest first.
    backups: Vec<BackupRow>,
}

#[derive(Serialize)]
struct BackupRow {
    stamp: String,
    /// The backup finished and wrote its file list (a failed run may still
    /// have left a version folder, which rebuilding earlier backups uses).
    complete: bool,
    /// Restorable with `mediarestore --at`.
    restorable: bool,
    /// What this backup replaced or deleted, kept in its version folder.
    version_files: u64,
    version_size: u64,
}

pub fn run(ctx: &Context, json: bool) -> Result<()> {
    let layout = Layout::new(&ctx.config.settings.media_backup_dir);
    // Exact names: two files whose names differ only in bytes that are not
    // UTF-8 are two files (rclone's JSON listing would show them alike).
    let mirror = listing::list_all(&ctx.rclone, &layout.mirror)?.unwrap_or_default();
    let history = History::from_listing(
        &listing::list_all(&ctx.rclone, &layout.versions)?.unwrap_or_default(),
    );
    let restorable = history.restorable();
    let stamps: std::collections::BTreeSet<&String> = history
        .backups
        .iter()
        .chain(history.folders.keys())
        .collect();
    let backups = stamps
        .into_iter()
        .map(|stamp| {
            let folder = history.folders.get(stamp);
            BackupRow {
                stamp: stamp.clone(),
                complete: history.backups.contains(stamp),
                restorable: restorable.contains(stamp),
                version_files: folder.map_or(0, |f| f.len() as u64),
                version_size: folder.map_or(0, |f| f.values().map(|s| (*s).max(0) as u64).sum()),
            }
        })
        .collect();
    let report = Report {
        tenant: ctx.config.tenant.clone(),
        mirror: ctx.rclone.path(&layout.mirror),
        files: mirror.len() as u64,
        size: mirror.iter().map(|e| e.size.max(0) as u64).sum(),
        backups,
    };
    crate::interrupt::stop_if_interrupted(super::listbackups::NOTHING_LISTED)?;
    if json {
        crate::outln!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(());
    }
    crate::outln!(
        "{}: {} files, {}",
        report.mirror,
        report.files,
        human_size(report.size)
    );
    if report.backups.is_empty() {
        crate::outln!("no media backups with a file list or version folder yet");
        return Ok(());
    }
    crate::outln!(
        "{:<24}  {:>8}  {:>10}  RESTORABLE",
        "BACKUP (UTC)",
        "VERSIONS",
        "SIZE"
    );
    for b in &report.backups {
        crate::outln!(
            "{:<24}  {:>8}  {:>10}  {}",
            b.stamp,
            b.version_files,
            human_size(b.version_size),
            match (b.complete, b.restorable) {
                (false, _) => "no (failed run)",
                (true, true) => "yes",
                (true, false) => "no (a later backup kept no versions)",
            }
        );
    }
    Ok(())
}
