//! `mediabackup`: refuse what could wipe the remote copy, then `rclone sync`
//! media_root into the mirror, moving what it replaces or deletes into this
//! run's version folder; then record the mirror's file list and prune.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use anyhow::Result;
use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{json, with_events, Context};
use crate::cli::MediaBackupArgs;
use crate::exit;
use crate::lock::{Lock, Series};
use crate::media::changes::{Changes, Observer};
use crate::media::history::{self, FileList, FileState, History};
use crate::media::local::{self, LocalFile, RootState};
use crate::media::{listing, names, stamp, Layout};
use crate::policy::{Event, EventKind};

pub fn run(ctx: &Context, args: &MediaBackupArgs) -> Result<()> {
    let settings = &ctx.config.settings;
    let root = local::configured_root(settings, &ctx.config.path)?;
    let layout = Layout::new(&settings.media_backup_dir);
    refuse_unsafe_source(ctx, &root, &layout, args.allow_empty)?;
    let root_arg = local::root_arg(&root, &ctx.config.path)?;
    if args.dry_run {
        let local_files = local::files(&root)?;
        refuse_unreadable_names(&local_files)?;
        let stamp = stamp::format(Utc::now());
        let mut sync = sync_args(ctx, &layout, root_arg, &stamp);
        sync.push("--dry-run".into());
        let plan = Plan {
            layout: &layout,
            stamp: &stamp,
            root: &root,
            local_files: &local_files,
        };
        return dry_run(ctx, &plan, &sync, args.json);
    }

    // A hook may veto the backup before anything on the remote is touched,
    // not even a lock object; the backup's stamp is not known yet (its
    // `pre-media-backup` event has none): it is taken once the lock is held.
    let pre = Event::new(EventKind::PreMediaBackup, Utc::now());
    let kinds = (EventKind::PostMediaBackup, EventKind::MediaBackupFailed);
    let started = Instant::now();
    let (changes, lock, now, stamp, local_files) =
        with_events(ctx, pre, "media backup", kinds, |done| {
            // One media backup or restore at a time, here or on any
            // machine, held until the run ends. Taken before the run's
            // time: a run that waited for another lists the folder and is
            // stamped after it, so stamps order the versions the way
            // `mediarestore --at` reads them.
            let lock = ctx
                .lock(Series::Media, "mediabackup")
                .map_err(|e| exit::with_note(e, "the media backup was not changed"))?;
            let local_files = local::files(&root)?;
            refuse_unreadable_names(&local_files)?;
            let now = Utc::now();
            let stamp = stamp::format(now);
            done.backup = Some(stamp.clone());
            let sync = sync_args(ctx, &layout, root_arg, &stamp);
            let changes = sync_and_record(
                ctx,
                &layout,
                &sync,
                &stamp,
                now,
                (&root, &local_files),
                &lock,
            )?;
            Ok((changes, lock, now, stamp, local_files))
        })?;
    let kept = if settings.media_versions
        && !(changes.replaced.is_empty() && changes.deleted.is_empty())
    {
        format!(
            "; earlier copies kept in {}",
            ctx.rclone.path(&layout.version_folder(&stamp))
        )
    } else {
        String::new()
    };
    let duration = started.elapsed();
    tracing::info!(
        "media backup {stamp}: {} new, {} replaced, {} deleted in {:.1}s{kept}",
        changes.copied.len(),
        changes.replaced.len(),
        changes.deleted.len(),
        duration.as_secs_f64(),
    );
    if let Some(keep) = settings.media_versions_keep {
        // The backup itself is done; a failed prune only leaves old
        // versions in place, so it warns rather than fails the run.
        if let Err(e) = prune(ctx, &layout, keep, now, &lock) {
            tracing::warn!("the media backup succeeded, but pruning old versions failed: {e:#}");
        }
    }
    if args.json {
        let plan = Plan {
            layout: &layout,
            stamp: &stamp,
            root: &root,
            local_files: &local_files,
        };
        // Printed once the backup is done: a closed stdout fails the run
        // (exit 1) but undoes nothing.
        return json::print(&plan.report(ctx, &changes, None, Some(duration)));
    }
    Ok(())
}

/// `rclone sync` of the media folder into the mirror, replaced and
/// deleted files kept in the version folder of `stamp` (media_versions).
fn sync_args(ctx: &Context, layout: &Layout, root_arg: String, stamp: &str) -> Vec<String> {
    let settings = &ctx.config.settings;
    let mut sync: Vec<String> = vec![
        "sync".into(),
        root_arg,
        ctx.rclone.path(&layout.mirror),
        // Two names that differ only in their Unicode normalisation form are
        // two files; rclone would otherwise skip one of them, silently.
        "--no-unicode-normalization".into(),
    ];
    if settings.media_versions {
        sync.push("--backup-dir".into());
        sync.push(ctx.rclone.path(&layout.version_folder(stamp)));
    }
    if let Some(n) = settings.media_max_delete {
        sync.push("--max-delete".into());
        sync.push(n.to_string());
    }
    sync
}

/// What a media backup works on, to describe it as JSON.
struct Plan<'a> {
    layout: &'a Layout,
    stamp: &'a str,
    root: &'a std::path::Path,
    local_files: &'a BTreeMap<String, LocalFile>,
}

/// `mediabackup --json`. See docs/json.md.
#[derive(Serialize)]
struct MediaReport {
    dry_run: bool,
    /// The backup's UTC stamp: its version folder's and file list's name.
    stamp: String,
    /// Where what the sync replaced or deleted went (full rclone path);
    /// null when nothing was, or media_versions is off.
    version_folder: Option<String>,
    copied: Count,
    replaced: Count,
    deleted: Count,
    /// Absent on a dry run.
    #[serde(skip_serializing_if = "Option::is_none")]
    duration_ms: Option<u64>,
}

#[derive(Serialize)]
struct Count {
    files: usize,
    /// copied, replaced: the size of the new content (read from
    /// media_root); deleted: the size the remote copy had, known on a dry
    /// run, null after a real one.
    bytes: Option<u64>,
    /// The paths, as rclone names them (only on a dry run).
    #[serde(skip_serializing_if = "Option::is_none")]
    paths: Option<Vec<String>>,
}

impl Plan<'_> {
    fn report(
        &self,
        ctx: &Context,
        changes: &Changes,
        remote_sizes: Option<&BTreeMap<String, u64>>,
        duration: Option<std::time::Duration>,
    ) -> MediaReport {
        let dry_run = duration.is_none();
        let local_bytes = |paths: &[String]| -> Option<u64> {
            Some(
                paths
                    .iter()
                    .filter_map(|p| self.local_files.get(p))
                    .filter_map(|f| std::fs::metadata(self.root.join(&f.rel)).ok())
                    .map(|m| m.len())
                    .sum(),
            )
        };
        let count = |paths: &[String], bytes: Option<u64>| Count {
            files: paths.len(),
            bytes,
            paths: dry_run.then(|| paths.to_vec()),
        };
        let moved = !(changes.replaced.is_empty() && changes.deleted.is_empty());
        MediaReport {
            dry_run,
            stamp: self.stamp.to_string(),
            version_folder: (ctx.config.settings.media_versions && moved)
                .then(|| ctx.rclone.path(&self.layout.version_folder(self.stamp))),
            copied: count(&changes.copied, local_bytes(&changes.copied)),
            replaced: count(&changes.replaced, local_bytes(&changes.replaced)),
            deleted: count(
                &changes.deleted,
                remote_sizes.map(|sizes| changes.deleted.iter().filter_map(|p| sizes.get(p)).sum()),
            ),
            duration_ms: duration.map(json::millis),
        }
    }
}

/// A missing, wrong or empty media_root must not reach `rclone sync`: it
/// would delete the whole remote copy.
fn refuse_unsafe_source(
    ctx: &Context,
    root: &std::path::Path,
    layout: &Layout,
    allow_empty: bool,
) -> Result<()> {
    let config = ctx.config.path.display();
    match local::root_state(root)? {
        RootState::HasFiles => Ok(()),
        RootState::Missing => Err(exit::failed(format!(
            "media_root {} does not exist; nothing was changed. Fix media_root in {config}, or mount or create the folder",
            root.display()
        ))),
        RootState::NotAFolder => Err(exit::usage(format!(
            "media_root {} is not a folder; nothing was changed. Point media_root in {config} at the media folder",
            root.display()
        ))),
        RootState::Empty if allow_empty => Ok(()),
        RootState::Empty => {
            let held = listing::list_all(&ctx.rclone, &layout.mirror)?.map_or(0, |v| v.len());
            if held == 0 {
                return Ok(());
            }
            Err(exit::failed(format!(
                "media_root {} is empty but the media backup {} holds {held} files; syncing would empty it, so nothing was changed. \
                 If the folder is meant to be empty now, run `rcbackup mediabackup --allow-empty` (with versions on, the files are kept in a version folder)",
                root.display(),
                ctx.rclone.path(&layout.mirror)
            )))
        }
    }
}

/// rclone 1.60 cannot read a file whose name it cannot represent (a lone
/// `‛`): the sync would copy everything else and then fail. Refused before
/// anything is copied, naming the files.
fn refuse_unreadable_names(local_files: &BTreeMap<String, LocalFile>) -> Result<()> {
    let (shown, count) = local::unreadable(local_files, 20);
    if count == 0 {
        return Ok(());
    }
    let more = if count > shown.len() {
        format!(" (and {} more)", count - shown.len())
    } else {
        String::new()
    };
    Err(exit::failed(format!(
        "rclone cannot read {count} file(s) in media_root because of their names: {}{more}; nothing was changed. \
         rclone 1.60 reads a `\u{201b}` (U+201B) that is not doubled or followed by `\u{2400}`, `\u{ff0f}` or a control-character symbol as two, \
         so it cannot open such a file; rename these files (for example replace `\u{201b}` by `'`) and run mediabackup again",
        shown.join(", ")
    )))
}

fn dry_run(ctx: &Context, plan: &Plan, sync: &[String], as_json: bool) -> Result<()> {
    let layout = plan.layout;
    let sizes: BTreeMap<String, u64> = listing::list_all(&ctx.rclone, &layout.mirror)?
        .unwrap_or_default()
        .into_iter()
        .map(|e| (e.path, u64::try_from(e.size).unwrap_or(0)))
        .collect();
    let existing: BTreeSet<String> = sizes.keys().cloned().collect();
    let changes = run_sync(
        ctx,
        sync,
        &existing,
        plan.local_files.keys().chain(existing.iter()),
    )?;
    let versions = ctx.config.settings.media_versions;
    if as_json {
        json::print(&plan.report(ctx, &changes, Some(&sizes), None))?;
    } else {
        changes.print()?;
    }
    crate::errln!(
        "dry run: {} new, {} replaced, {} deleted; nothing was changed{}",
        changes.copied.len(),
        changes.replaced.len(),
        changes.deleted.len(),
        if versions && !(changes.replaced.is_empty() && changes.deleted.is_empty()) {
            format!(
                " (a real run keeps the replaced and deleted files in {}/<stamp>)",
                ctx.rclone.path(&layout.versions)
            )
        } else {
            String::new()
        }
    );
    Ok(())
}

/// Runs the sync and reads what it did; a failed sync is an error that
/// says whether the max-delete guard stopped it.
fn run_sync<'a>(
    ctx: &Context,
    sync: &[String],
    existing: &BTreeSet<String>,
    known: impl IntoIterator<Item = &'a String>,
) -> Result<Changes> {
    let mut observer = Observer::default();
    let end = ctx.rclone.transfer(sync, None, &mut |l| observer.line(l))?;
    let tripped =
        observer.max_delete_tripped || end.stderr_tail.contains("--max-delete threshold reached");
    if !end.success() {
        let settings = &ctx.config.settings;
        let limit = settings.media_max_delete.unwrap_or(0);
        if tripped && sync.iter().any(|a| a == "--dry-run") {
            return Err(exit::failed(format!(
                "dry run: the sync would delete more than {limit} files from {}, so a real run would be stopped by the media_max_delete guard; nothing was changed. \
                 If these deletions are intended, raise media_max_delete in {}; otherwise check media_root",
                ctx.rclone.path(&settings.media_backup_dir),
                ctx.config.path.display()
            )));
        }
        if tripped {
            return Err(exit::failed(format!(
                "media backup stopped by the media_max_delete guard: the sync would delete more than {limit} files from {}, so it removed at most {limit}{} \
                 and stopped (new and changed files were copied; no file list was written, so this run does not count for --at). \
                 If these deletions are intended, raise media_max_delete in {}; otherwise check media_root",
                ctx.rclone.path(&settings.media_backup_dir),
                if settings.media_versions { " (moved into the version folder, not lost)" } else { "" },
                ctx.config.path.display()
            )));
        }
        let errors = observer.failure(&end);
        return Err(exit::failed(format!(
            "rclone sync of the media folder failed: {errors}. rclone deletes nothing from the backup after an error; fix the cause and run mediabackup again"
        )));
    }
    Ok(observer.finish(existing, known))
}

/// The sync, then the mirror's file list, which is what makes this backup
/// restorable with `--at`.
fn sync_and_record(
    ctx: &Context,
    layout: &Layout,
    sync: &[String],
    stamp: &str,
    now: DateTime<Utc>,
    (root, before): (&std::path::Path, &BTreeMap<String, LocalFile>),
    lock: &Lock,
) -> Result<Changes> {
    if !ctx.config.settings.media_versions {
        // Written first: even if this run dies half-way it has overwritten
        // files without keeping them, and --at must know that.
        ctx.rclone.put(
            &format!("{}/{stamp}{}", layout.versions, history::UNVERSIONED_SUFFIX),
            now.to_rfc3339().as_bytes(),
        )?;
    }
    let changes = run_sync(ctx, sync, &BTreeSet::new(), before.keys())?;
    crate::failpoint::reached("media-synced");
    // A run that lost its lock during the sync (unlock --force, a lease
    // that ran out) may have shared the mirror with another: it publishes
    // no backup point for `--at`.
    lock.check().map_err(|e| {
        exit::with_note(
            e,
            "the mirror was synced, but this backup was not recorded (no file list; `mediarestore --at` will not offer it); run mediabackup again",
        )
    })?;
    let listed = listing::list_all(&ctx.rclone, &layout.mirror)?.unwrap_or_default();
    warn_skipped_files(ctx, layout, root, before, &listed)?;
    let files = listed
        .into_iter()
        .map(|e| FileState {
            path: e.path,
            size: e.size,
            mod_time: e.mod_time,
        })
        .collect();
    let list = FileList {
        stamp: stamp.to_string(),
        files,
    };
    ctx.rclone
        .put(&layout.file_list(stamp), &serde_json::to_vec(&list)?)?;
    Ok(changes)
}

/// Checks the data, not only rclone's exit code: every file that was in
/// media_root before the sync and still is should be in the mirror under
/// the name rclone gives it. One that is not was left out (a name the
/// remote folds into another, or a filter in rclone_flags); that is said,
/// naming the files, rather than passed over in silence. A warning, not a
/// failure, since excluding files through rclone_flags is legitimate.
fn warn_skipped_files(
    ctx: &Context,
    layout: &Layout,
    root: &std::path::Path,
    before: &BTreeMap<String, LocalFile>,
    listed: &[crate::rclone::Entry],
) -> Result<()> {
    let stored: BTreeSet<&str> = listed.iter().map(|e| e.path.as_str()).collect();
    let missing: Vec<&String> = before
        .keys()
        .filter(|name| !stored.contains(name.as_str()))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    // A file the application deleted during the sync is not missing.
    let now = local::files(root)?;
    let missing: Vec<String> = missing
        .into_iter()
        .filter(|name| now.contains_key(*name))
        .map(|name| names::shown(name))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let count = missing.len();
    let first: Vec<String> = missing.into_iter().take(20).collect();
    tracing::warn!(
        "{count} file(s) of media_root are not in {} after the sync, so this backup lacks them: {}{}. \
         If rclone_flags exclude them on purpose, nothing is wrong; otherwise the remote folds names together (case, Unicode normalisation) \
         or refuses them: rename the files or use a remote that keeps every name",
        ctx.rclone.path(&layout.mirror),
        first.join(", "),
        if count > first.len() { ", ..." } else { "" }
    );
    Ok(())
}

/// Removes the file lists and version folders that media_versions_keep no
/// longer needs.
fn prune(
    ctx: &Context,
    layout: &Layout,
    keep: crate::media::VersionsKeep,
    now: DateTime<Utc>,
    lock: &Lock,
) -> Result<()> {
    let entries = listing::list_all(&ctx.rclone, &layout.versions)?.unwrap_or_default();
    let history = History::from_listing(&entries);
    let stamps: Vec<(&str, DateTime<Utc>)> = history
        .restorable()
        .iter()
        .filter_map(|s| stamp::parse(s).map(|t| (s.as_str(), t)))
        .collect();
    let Some(oldest) = keep.oldest_kept(&stamps, now) else {
        return Ok(());
    };
    let (files, folders) = history::prune_plan(&history, oldest);
    if !(files.is_empty() && folders.is_empty()) {
        lock.check()?;
    }
    for f in &files {
        ctx.rclone.deletefile(&format!("{}/{f}", layout.versions))?;
    }
    for f in &folders {
        ctx.rclone.purge(&layout.version_folder(f))?;
    }
    if !(files.is_empty() && folders.is_empty()) {
        tracing::info!(
            "pruned media versions older than {oldest} (media_versions_keep): {} version folders, {} file lists",
            folders.len(),
            files.len()
        );
    }
    Ok(())
}
