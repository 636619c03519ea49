//! `mediarestore`: work out what the restore brings back (the mirror, or a
//! past backup rebuilt from the mirror and the version folders) and what it
//! would delete, show it, get approval, then copy and, with `--mirror`,
//! delete. Local files are never deleted without `--mirror`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context as _, Result};
use chrono::{DateTime, Utc};

use super::{apply_approval, with_events, Context};
use crate::cli::MediaRestoreArgs;
use crate::exit;
use crate::lock::Series;
use crate::media::changes::{Changes, Observer};
use crate::media::history::{self, FileList, History};
use crate::media::local::LocalFile;
use crate::media::{listing, local, names, stamp, Layout};
use crate::policy::{Event, EventKind, MediaRestoreRequest};

/// One remote folder to copy from, and which of its files (`None`: all),
/// named in the text form of [`names`].
struct Source {
    dir: String,
    files: Option<Vec<String>>,
}

/// What a restore will do.
struct Plan {
    sources: Vec<Source>,
    /// The files the restored folder holds (those of the backup), by the
    /// names rclone gives them.
    files: BTreeSet<String>,
    /// With `--at`: the stamp of the backup restored.
    backup_stamp: Option<String>,
}

pub fn run(ctx: &Context, args: &MediaRestoreArgs) -> Result<()> {
    let settings = &ctx.config.settings;
    let root = local::configured_root(settings, &ctx.config.path)?;
    if root.exists() && !root.is_dir() {
        return Err(exit::usage(format!(
            "media_root {} is not a folder; point media_root in {} at the media folder",
            names::shown_path(&root),
            ctx.config.path.display()
        )));
    }
    let root_arg = local::root_arg(&root, &ctx.config.path)?;
    let layout = Layout::new(&settings.media_backup_dir);
    let mirror = ctx.rclone.path(&layout.mirror);
    // The time is checked before the remote is asked anything.
    let at = match args.at.as_deref() {
        None => None,
        Some(text) => Some((text, parse_at(text)?)),
    };
    let plan = plan(ctx, &layout, at)?;
    // Local and backed-up files compare by the names rclone gives them:
    // the raw local bytes (a line break, an invalid UTF-8 byte) are not
    // what rclone lists, and comparing those would take every such file
    // for one the backup lacks.
    let local_files = local::files(&root)?;
    let extra: Vec<(&String, &LocalFile)> = local_files
        .iter()
        .filter(|(name, _)| !plan.files.contains(*name))
        .collect();
    let deletes: Vec<PathBuf> = if args.mirror {
        extra.iter().map(|(_, f)| f.rel.clone()).collect()
    } else {
        Vec::new()
    };
    // A local name rclone cannot read is shown as it is on disk.
    let extra: Vec<String> = extra
        .into_iter()
        .map(|(name, f)| {
            if f.representable {
                name.clone()
            } else {
                f.rel.to_string_lossy().into_owned()
            }
        })
        .collect();

    // What the copy would change, as rclone sees it, before anything does.
    let mut preview = copy(ctx, &plan, &root_arg, true, &local_files)?;
    let as_of = plan
        .backup_stamp
        .as_ref()
        .map(|s| format!(" as of the backup of {s}"))
        .unwrap_or_default();
    explain(
        &plan,
        &preview,
        &extra,
        args.mirror,
        &format!("{} from {mirror}{as_of}", names::shown_path(&root)),
    );
    if args.dry_run {
        preview.deleted = if args.mirror { extra } else { Vec::new() };
        preview.print()?;
        crate::errln!("dry run: nothing was changed");
        return Ok(());
    }

    let now = Utc::now();
    let request = MediaRestoreRequest {
        tenant: None,
        target: names::shown_path(&root),
        source: mirror.clone(),
        backup_stamp: plan.backup_stamp.clone(),
        files: plan.files.len() as u64,
        deletes: deletes.len() as u64,
        requested_by: std::env::var("USER").unwrap_or_else(|_| "unknown".into()),
        noinput: args.noinput,
        now,
    };
    let question = if deletes.is_empty() {
        format!(
            "Restore media into '{}' from '{mirror}'{as_of}?",
            names::shown_path(&root)
        )
    } else {
        format!(
            "Restore media into '{}' from '{mirror}'{as_of} and delete {} local files?",
            names::shown_path(&root),
            deletes.len()
        )
    };
    let approval = ctx.policies.approve_media_restore(&request);
    apply_approval(approval, args.noinput, &question, "media restore")?;

    let mut pre = Event::new(EventKind::PreMediaRestore, now);
    pre.backup = Some(
        plan.backup_stamp
            .clone()
            .unwrap_or_else(|| layout.mirror.clone()),
    );
    let kinds = (EventKind::PostMediaRestore, EventKind::MediaRestoreFailed);
    let started = Instant::now();
    let changes = with_events(ctx, pre, "media restore", kinds, |_| {
        // No media backup changes the mirror while it is read back. Taken
        // once the restore is approved and no hook vetoed it.
        let lock = ctx
            .lock(Series::Media, "mediarestore")
            .map_err(|e| exit::with_note(e, "no local file was changed"))?;
        let changes = copy(ctx, &plan, &root_arg, false, &local_files)?;
        // Deletes only after every file came back: a failed or interrupted
        // copy deletes nothing.
        if crate::interrupt::interrupted() {
            return Err(exit::Failure::new(
                exit::FailureKind::Interrupted,
                "interrupted after the files were copied; no local file was deleted",
            )
            .into());
        }
        crate::failpoint::reached("media-copied");
        // A lost lock (unlock --force, a lease that ran out) lets a media
        // backup read this folder half restored: delete nothing then.
        lock.check_for_local_step().map_err(|e| {
            exit::with_note(e, "the files were copied back; no local file was deleted")
        })?;
        local::delete_files(&root, &deletes)?;
        Ok(changes)
    })?;
    tracing::info!(
        "restored media into {}: {} new, {} replaced, {} deleted in {:.1}s",
        names::shown_path(&root),
        changes.copied.len(),
        changes.replaced.len(),
        deletes.len(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Tells, before the question, what the restore changes: above all the
/// local content it replaces and, with --mirror, every file it deletes.
fn explain(plan: &Plan, preview: &Changes, extra: &[String], mirror: bool, what: &str) {
    let changed = preview.copied.len() + preview.replaced.len();
    crate::errln!(
        "Restore {} files into {what}: {} new, {} replaced (their local content is lost), {} unchanged.",
        plan.files.len(),
        preview.copied.len(),
        preview.replaced.len(),
        plan.files.len().saturating_sub(changed),
    );
    if extra.is_empty() {
        return;
    }
    if mirror {
        crate::errln!(
            "--mirror deletes these {} local files, which the backup lacks:",
            extra.len()
        );
        for d in extra {
            crate::errln!("  {}", names::shown(d));
        }
    } else {
        crate::errln!(
            "{} local files that the backup lacks are kept (--mirror would delete them).",
            extra.len()
        );
    }
}

/// The mirror as it is, or with `--at` the backup that held the state at
/// that time, rebuilt from the mirror and the later version folders.
fn plan(ctx: &Context, layout: &Layout, at: Option<(&str, DateTime<Utc>)>) -> Result<Plan> {
    let mirror_path = ctx.rclone.path(&layout.mirror);
    let mirror: BTreeMap<String, i64> = listing::list_all(&ctx.rclone, &layout.mirror)?
        .ok_or_else(|| {
            exit::failed(format!(
                "there is no media backup at {mirror_path}; run `rcbackup mediabackup` first, or check `remote` and `media_backup_dir`"
            ))
        })?
        .into_iter()
        .map(|e| (e.path, e.size))
        .collect();
    let Some((at_text, at)) = at else {
        return Ok(Plan {
            sources: vec![Source {
                dir: layout.mirror.clone(),
                files: None,
            }],
            files: mirror.into_keys().collect(),
            backup_stamp: None,
        });
    };
    let history = History::from_listing(
        &listing::list_all(&ctx.rclone, &layout.versions)?.unwrap_or_default(),
    );
    let chosen = history
        .backup_at(at)
        .map_err(|why| exit::failed(format!("cannot restore media as of {at_text}: {why}")))?
        .to_string();
    let list_path = layout.file_list(&chosen);
    let bytes = ctx.rclone.cat(&list_path)?.ok_or_else(|| {
        exit::failed(format!(
            "the file list {} vanished while reading; is a mediabackup pruning at the same time? Try again",
            ctx.rclone.path(&list_path)
        ))
    })?;
    let list: FileList = serde_json::from_slice(&bytes)
        .with_context(|| format!("reading the file list {}", ctx.rclone.path(&list_path)))?;
    let rebuild = history::rebuild(&list, &history, &mirror).map_err(|why| {
        exit::integrity(format!(
            "cannot rebuild the media backup of {chosen}: {why}; the versions on the remote are incomplete (were files deleted by hand?)"
        ))
    })?;
    let sources = rebuild
        .sources
        .into_iter()
        .map(|(stamp, files)| Source {
            dir: stamp.map_or_else(|| layout.mirror.clone(), |s| layout.version_folder(&s)),
            files: Some(files),
        })
        .collect();
    Ok(Plan {
        sources,
        files: rebuild.files,
        backup_stamp: Some(chosen),
    })
}

/// `rclone copy` from each source into the local folder `root_arg` (never
/// deletes), or with `dry_run` what it would do.
fn copy(
    ctx: &Context,
    plan: &Plan,
    root_arg: &str,
    dry_run: bool,
    local_files: &BTreeMap<String, LocalFile>,
) -> Result<Changes> {
    let existing: BTreeSet<String> = local_files.keys().cloned().collect();
    let mut all = Changes::default();
    for source in &plan.sources {
        let from = ctx.rclone.path(&source.dir);
        let mut args: Vec<String> = vec![
            "copy".into(),
            from.clone(),
            root_arg.to_string(),
            // Each distinct name is a distinct file, as the backup stored it.
            "--no-unicode-normalization".into(),
        ];
        // rclone reads the list one name a line, in its own encoding: the
        // text form holds no line break (a `\n` in a name is `␊` there),
        // and its `‛XX` are turned back into the bytes they stand for.
        if let Some(odd) = source
            .files
            .iter()
            .flatten()
            .find(|f| f.contains(['\n', '\r']))
        {
            return Err(exit::failed(format!(
                "the backup's file list names {}, which is not a name rclone lists; was the file list edited by hand?",
                names::shown(odd)
            )));
        }
        let input = source.files.as_ref().map(|files| {
            args.push("--files-from-raw".into());
            args.push("-".into());
            let mut bytes = Vec::new();
            for f in files {
                bytes.extend_from_slice(&names::to_standard(f));
                bytes.push(b'\n');
            }
            bytes
        });
        if dry_run {
            args.push("--dry-run".into());
        }
        let mut observer = Observer::default();
        let end = ctx
            .rclone
            .transfer(&args, input, &mut |l| observer.line(l))?;
        if !end.success() {
            let why = observer.failure(&end);
            return Err(exit::failed(format!(
                "copying {from} into {} failed: {why}. No local file was deleted; files copied before the failure stay. Fix the cause and run mediarestore again",
                names::shown(root_arg)
            )));
        }
        let c = observer.finish(&existing, plan.files.iter().chain(existing.iter()));
        all.copied.extend(c.copied);
        all.replaced.extend(c.replaced);
    }
    all.copied.sort();
    all.replaced.sort();
    Ok(all)
}

fn parse_at(text: &str) -> Result<DateTime<Utc>> {
    stamp::parse_user_time(text).ok_or_else(|| {
        exit::usage(format!(
            "--at `{text}` is not a time rcbackup can read; write e.g. 2026-11-26T21:00:00Z, \"2026-11-26 21:00\" (UTC) or 2026-11-26"
        ))
    })
}
