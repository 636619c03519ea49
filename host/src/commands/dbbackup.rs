//! `dbbackup`: dump | host (count, SHA-256) | upload (rclone) into a partial
//! object, then publish, then (with --clean) apply retention.

use std::collections::BTreeSet;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use anyhow::Result;
use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{human_size, json, Context};
use crate::catalog::{
    abandoned_before, nameable, run_id, Catalog, Leftover, LeftoverKind, Listing,
};
use crate::cli::DbBackupArgs;
use crate::compression::{Compressing, Compression};
use crate::database::Database;
use crate::engines;
use crate::exit;
use crate::failpoint;
use crate::lock::{Lock, Series};
use crate::naming::{
    check_file_name, check_object_path, compressed_name, printable, MAX_OBJECT_NAME_LEN,
};
use crate::pipeline::{self, Digest, End};
use crate::policy::{Event, EventKind, NamingContext};
use crate::process::{widen_pipe, Proc};
use crate::progress;
use crate::rclone::Upload;
use crate::record::BackupRecord;
use crate::retention;

pub fn run(ctx: &Context, args: &DbBackupArgs) -> Result<()> {
    // None: a dry run, which printed its plan.
    let Some(made) = back_up(ctx, args, None)? else {
        return Ok(());
    };
    if args.json {
        // Printed once everything is done: a closed stdout fails the run
        // (exit 1) but undoes nothing.
        return json::print(&BackupReport {
            dry_run: false,
            backups: vec![Made::Done(MadeBackup {
                backup: json::Backup::of(&made.record, made.path),
                duration_ms: json::millis(made.duration),
            })],
            cleanup: made.cleanup.map(CleanupReport::of),
        });
    }
    Ok(())
}

/// What one backup made: the record, its full path, the time the dump,
/// upload and publish took, and with `--clean` what cleanup did.
pub(super) struct BackedUp {
    pub record: BackupRecord,
    pub path: String,
    pub duration: std::time::Duration,
    pub cleanup: Option<Cleanup>,
}

/// Everything `dbbackup` does (hooks, naming, the backup, `--clean`)
/// except printing its result, for `dbbackup` and each job of
/// `backup-all`, whose dump `slot` (crate::dump_slots) is given back once
/// the dump is uploaded. A dry run prints its plan and gives `None`.
pub(super) fn back_up(
    ctx: &Context,
    args: &DbBackupArgs,
    slot: Option<crate::dump_slots::Slot>,
) -> Result<Option<BackedUp>> {
    let db = ctx.config.database(args.database.as_deref())?;
    crate::metrics::note_database(&db.alias);
    // One run at a time per database, here or on any machine: held until
    // this function returns (the backup and its --clean). Taken before the
    // run's time and name: a run that waited for another is named and
    // dated after it, so "newest" and retention see the order the data
    // was dumped in.
    let lock = match args.dry_run {
        true => None,
        false => Some(ctx.lock(Series::Db(db.alias.clone()), "dbbackup")?),
    };
    let now = Utc::now();
    let catalog = ctx.catalog();
    let run = run_id(now);
    let name = choose_name(ctx, db, now)?;
    check_objects(&catalog, &name, &run)?;

    let Some(lock) = lock else {
        // Everything the real run would refuse before dumping is refused
        // here too: an unset password variable, a missing SQLite file,
        // dump_args that break the dump. The command is built, not run.
        engines::dump_command(db, ctx.config.compression(&db.alias))?;
        let listing = catalog.list()?;
        let name = Catalog::unique_name(&listing.taken, &name);
        let path = ctx.rclone.path(&catalog.data_path(&name));
        let cleanup = if args.clean {
            let mut series = listing.series(&db.alias);
            series.insert(0, planned_record(ctx, db, &name, now));
            let mut cleaner = Cleaner::start(ctx, &catalog, &listing, now, true, Some(&name))?;
            cleaner.only(&db.alias);
            cleaner.series(&db.alias, &series)?;
            cleaner.leftovers(&[db])?;
            Some(cleaner.report)
        } else {
            None
        };
        if args.json {
            let compression = json::compression(ctx.config.compression(&db.alias).codec());
            json::print(&BackupReport {
                dry_run: true,
                backups: vec![Made::Planned(Planned {
                    database: db.alias.clone(),
                    name,
                    path,
                    engine: db.engine.as_str(),
                    compression,
                })],
                cleanup: cleanup.map(CleanupReport::of),
            })?;
            return Ok(None);
        }
        crate::outln!("would back up database `{}` to {path}", db.alias);
        for line in cleanup.iter().flat_map(|c| c.lines(true, false)) {
            crate::outln!("{line}");
        }
        return Ok(None);
    };
    let mut pre = Event::new(EventKind::PreDbBackup, now);
    pre.database = Some(db.alias.clone());
    pre.backup = Some(name.clone());
    ctx.policies
        .emit_pre(&pre, &format!("backup of `{}`", db.alias))?;

    let started = Instant::now();
    let outcome = stream_and_publish(ctx, &catalog, db, (&name, &run, now), &lock, slot);
    let mut done = Event::new(EventKind::PostDbBackup, Utc::now());
    done.database = Some(db.alias.clone());
    done.backup = Some(name.clone());
    done.duration = Some(started.elapsed());
    let record = match outcome {
        Ok(r) => r,
        Err(e) => return Err(super::emit_failed(ctx, done, EventKind::DbBackupFailed, e)),
    };
    tracing::info!(
        "backed up `{}` to {} ({}, sha256 {}) in {:.1}s",
        db.alias,
        ctx.rclone.path(&catalog.data_path(&record.name)),
        human_size(record.size),
        record.sha256,
        started.elapsed().as_secs_f64()
    );
    crate::metrics::note_size(record.size);
    let duration = started.elapsed();
    done.backup = Some(record.name.clone());
    done.size = Some(record.size);
    done.sha256 = Some(record.sha256.clone());
    // The run's claim on its backup is held until here, whatever happens:
    // until then no other run's retention deletes the backup it reports.
    // What the cleanup deleted before it stopped, for the interrupt message.
    let mut went = "nothing was deleted".to_string();
    let finish = |went: &mut String| -> Result<Option<Cleanup>> {
        ctx.policies.emit(&done)?;
        if !args.clean {
            return Ok(None);
        }
        // List again: the new backup must be in the series retention sees.
        let listing = catalog.list()?;
        let series = listing.series(&db.alias);
        let mut cleaner = Cleaner::start(ctx, &catalog, &listing, now, false, Some(&record.name))?;
        cleaner.only(&db.alias);
        cleaner.guarded_by(vec![&lock]);
        let cleaned = cleaner
            .series(&db.alias, &series)
            .and_then(|()| cleaner.leftovers(&[db]));
        *went = cleaner.went();
        cleaned?;
        Ok(Some(cleaner.report))
    };
    let finished = finish(&mut went).map_err(|e| {
        if crate::interrupt::interrupted() {
            // Whatever the interrupt stopped (a hook, the listing, a delete),
            // the backup itself stands: say so, and what the cleanup did,
            // not the stopped step's error.
            tracing::debug!("after the interrupt: {e:#}");
            exit::interrupted_at(format!(
                "interrupted after the backup was published: {} ({}, sha256 {}) is complete; cleanup did not finish: {went}; every other backup is as it was",
                record.name,
                human_size(record.size),
                record.sha256
            ))
        } else {
            // A script that reads only the exit code and stderr (`-q
            // --json`) must still learn that the backup itself stands.
            exit::with_note(
                e,
                &format!(
                    "the backup was published: {} ({}, sha256 {}) is complete",
                    record.name,
                    human_size(record.size),
                    record.sha256
                ),
            )
        }
    });
    catalog.release(&record.name, &run);
    let cleanup = finished?;
    Ok(Some(BackedUp {
        path: ctx.rclone.path(&catalog.data_path(&record.name)),
        record,
        duration,
        cleanup,
    }))
}

/// `dbbackup --json`: what was made (or, on a dry run, would be), and
/// what cleanup did. See docs/json.md.
#[derive(Serialize)]
struct BackupReport {
    dry_run: bool,
    backups: Vec<Made>,
    /// Present with --clean.
    #[serde(skip_serializing_if = "Option::is_none")]
    cleanup: Option<CleanupReport>,
}

#[derive(Serialize)]
#[serde(untagged)]
enum Made {
    Done(MadeBackup),
    Planned(Planned),
}

#[derive(Serialize)]
struct MadeBackup {
    #[serde(flatten)]
    backup: json::Backup,
    duration_ms: u64,
}

#[derive(Serialize)]
struct Planned {
    database: String,
    name: String,
    path: String,
    engine: &'static str,
    compression: &'static str,
}

/// The cleanup of one database: its series' decisions and the leftovers.
#[derive(Serialize)]
struct CleanupReport {
    rule: String,
    decisions: Vec<Decided>,
    damaged: Vec<DamagedSkipped>,
    leftovers: Vec<LeftoverRemoval>,
}

impl CleanupReport {
    fn of(c: Cleanup) -> CleanupReport {
        let series = c.databases.into_iter().next();
        let (rule, decisions, mut damaged) = match series {
            Some(s) => (s.rule, s.decisions, s.damaged),
            None => (String::new(), Vec::new(), Vec::new()),
        };
        // One database: those whose record cannot be read (whoever's they
        // are) are with its own, as they always were in this shape.
        damaged.extend(c.damaged);
        CleanupReport {
            rule,
            decisions,
            damaged,
            leftovers: c.leftovers,
        }
    }
}

/// The template's name, or a naming policy's, checked. It is made unique
/// against the listing when the backup is published.
fn choose_name(ctx: &Context, db: &Database, now: DateTime<Utc>) -> Result<String> {
    let s = &ctx.config.settings;
    let codec = ctx.config.compression(&db.alias).codec();
    let ext = format!(
        "{}{}",
        engines::extension(db.engine),
        codec.map_or("", |c| c.suffix())
    );
    let template_error = |name: &str, why: &str| {
        exit::usage(format!(
            "the backup name `{}` that db_filename_template `{}` and db_date_format `{}` give for database `{}` {why}. Change db_filename_template (or db_date_format, or the database's alias)",
            printable(name),
            printable(s.db_filename_template.as_str()),
            printable(s.db_date_format.as_str()),
            printable(&db.alias),
        ))
    };
    let rendered = s
        .db_filename_template
        .render(&db.alias, &s.db_date_format.render(now), &ext);
    let default_name =
        compressed_name(rendered.clone(), codec).map_err(|why| template_error(&rendered, &why))?;
    let naming = NamingContext {
        database: db.alias.clone(),
        engine: db.engine.as_str().into(),
        tenant: ctx.config.tenant.clone(),
        now,
        extension: ext,
        default_name,
    };
    // A naming policy's name is checked by the policy runtime, which blames
    // the module; the template's is the config's. Either gets `.zst` if the
    // backup is compressed and the name lacks it.
    let name = ctx.policies.name_backup(&naming)?;
    let name = match ctx.policies.naming_module() {
        None => name,
        Some(module) => compressed_name(name.clone(), codec).map_err(|why| {
            exit::failed(format!(
                "naming policy {module}: the name `{}` {why}; use the extension it is given (`{}`)",
                printable(&name),
                naming.extension
            ))
        })?,
    };
    check_file_name(&name).map_err(|why| match ctx.policies.naming_module() {
        None => template_error(&name, &why),
        Some(module) => exit::failed(format!(
            "naming policy {module}: the name `{}` {why}",
            printable(&name)
        )),
    })?;
    // A policy's name is taken as given: an existing one is an error before
    // the dump, not silently suffixed as the built-in template's would be.
    if let Some(module) = ctx.policies.naming_module() {
        if ctx.catalog().taken_names()?.contains(&name) {
            return Err(exit::failed(format!(
                "naming policy {module}: the name `{name}` already exists in the backup folder; \
                 the policy must give a new name for every backup (include the time)"
            )));
        }
    }
    Ok(name)
}

/// Every object a backup of `name` by run `run` writes must have a name a
/// crypt remote takes: checked before the dump, not found out after it. The
/// name itself fits (the guard leaves room for the run id); a folder of
/// `db_backup_dir` may not.
fn check_objects(catalog: &Catalog, name: &str, run: &str) -> Result<()> {
    for path in catalog.object_paths(name, run) {
        check_object_path(&path).map_err(|why| {
            exit::usage(format!(
                "{why}. Shorten db_backup_dir (or the backup name) so that every folder and file name is at most {MAX_OBJECT_NAME_LEN} bytes"
            ))
        })?;
    }
    Ok(())
}

fn planned_record(ctx: &Context, db: &Database, name: &str, now: DateTime<Utc>) -> BackupRecord {
    BackupRecord::new(name, &db.alias, db.engine, 0, String::new(), now)
        .compressed(ctx.config.compression(&db.alias).codec())
        .of_tenant(ctx.config.tenant.clone())
}

/// Runs the dump into the upload, and publishes only if both succeeded,
/// under `name` or, if that is taken, a suffixed variant.
fn stream_and_publish(
    ctx: &Context,
    catalog: &Catalog,
    db: &Database,
    (name, run, now): (&str, &str, DateTime<Utc>),
    lock: &Lock,
    slot: Option<crate::dump_slots::Slot>,
) -> Result<BackupRecord> {
    let partial = catalog.partial_path(name, run);
    let compression = ctx.config.compression(&db.alias);
    let (tool, mut cmd) = engines::dump_command(db, compression)?;
    cmd.stdin(Stdio::null()).stdout(Stdio::piped());
    let mut upload = ctx.rclone.upload(&partial)?;
    let dump = match Proc::spawn(&tool, &mut cmd) {
        Ok(p) => p,
        Err(e) => {
            upload.abandon();
            let _ = upload.wait();
            remove_quietly(ctx, &partial);
            return Err(e);
        }
    };
    tracing::debug!(
        dump = dump.id(),
        upload = upload.pid(),
        "streaming to {}",
        ctx.rclone.path(&partial)
    );
    failpoint::reached("dump-started");

    // The names in use (one rclone call) are listed while the dump streams.
    let (streamed, taken) = std::thread::scope(|s| {
        let taken = s.spawn(|| catalog.taken_names());
        let check = engines::dump_check(db);
        let meter = progress::Meter::dump(format!("backing up `{}`", db.alias));
        let streamed = relay_and_judge(
            dump,
            upload,
            &ctx.rclone.path(catalog.dir()),
            check,
            compression,
            &meter,
        );
        drop(meter);
        (streamed, taken.join().expect("listing thread"))
    });
    drop(slot);
    let (digest, taken) = match (streamed, taken) {
        (Ok(d), Ok(t)) => (d, t),
        (Err(e), _) | (Ok(_), Err(e)) => {
            // A remote rclone does not know stored nothing: say so first.
            if let Some(missing) = ctx.rclone.missing_remote() {
                return Err(missing);
            }
            // The upload may have stored what it got before the failure.
            remove_quietly(ctx, &partial);
            if crate::interrupt::interrupted() {
                // The signal stopped the dump and the upload: whatever they
                // said about it is not the cause.
                tracing::debug!("after the interrupt: {e:#}");
                return Err(exit::interrupted());
            }
            return Err(e);
        }
    };
    failpoint::reached("uploaded");
    if crate::interrupt::interrupted() {
        remove_quietly(ctx, &partial);
        return Err(exit::interrupted());
    }
    // Another run may have taken the series if ours was lost: publish
    // nothing then.
    if let Err(e) = lock.check() {
        remove_quietly(ctx, &partial);
        return Err(exit::with_note(e, "nothing was published"));
    }
    let record = BackupRecord::new(name, &db.alias, db.engine, digest.size, digest.sha256, now)
        .compressed(compression.codec())
        .of_tenant(ctx.config.tenant.clone());
    match catalog.publish(&partial, name, run, &taken, record) {
        Ok(record) => Ok(record),
        Err(e) => {
            remove_quietly(ctx, &partial);
            if crate::interrupt::interrupted() {
                // Publishing undoes what it did when stopped: whatever step
                // the signal cut short, nothing was published.
                tracing::debug!("after the interrupt: {e:#}");
                return Err(exit::interrupted());
            }
            Err(e.context(format!(
                "the backup of `{}` was uploaded but could not be published; nothing was published",
                db.alias
            )))
        }
    }
}

/// Relays dump → upload and names the first cause when either end fails;
/// `dest` (the backup folder on the remote) is named when the upload fails.
/// Every chunk also goes through `check`, the engine's dump framing: a dump
/// that exited 0 but fails it (empty, no header or trailer, an error line)
/// is a failed dump, and nothing is published.
fn relay_and_judge(
    mut dump: Proc,
    mut upload: Upload,
    dest: &str,
    mut check: engines::DumpCheck,
    compression: Compression,
    meter: &progress::Meter,
) -> Result<Digest> {
    let from = dump.take_stdout();
    let to = upload.take_input();
    widen_pipe(&from);
    widen_pipe(&to);
    // The stored bytes (compressed or not) are what the record describes.
    // Both ends are counted for the progress line (an atomic add a chunk).
    let to = progress::Counting::new(to, meter.counter(progress::Figure::Stored));
    let mut to = Compressing::new(compression, to)
        .map_err(|e| exit::failed(format!("cannot start the zstd compressor: {e}")))?;
    let from = progress::Counting::new(from, meter.counter(progress::Figure::Bytes));
    let mut from = engines::CheckedRead {
        inner: from,
        check: &mut check,
    };
    let dump_pid = dump.id();
    let input_closed = AtomicBool::new(false);
    let upload_died_first = AtomicBool::new(false);
    let (closed, died) = (&input_closed, &upload_died_first);
    let (end, digest, upload_end) = std::thread::scope(|s| {
        // An upload only ends before its input closes if it failed. Stop the
        // dump then, not at its next write, which may be minutes away
        // (pg_dump waiting on a lock writes nothing).
        let watcher = s.spawn(move || {
            let ended = upload.wait();
            if !closed.load(Ordering::SeqCst) {
                died.store(true, Ordering::SeqCst);
                // SAFETY: kill(2) on our child, not yet reaped (the dump is
                // waited for only after this scope).
                unsafe {
                    libc::kill(dump_pid as libc::pid_t, libc::SIGTERM);
                }
            }
            ended
        });
        let (end, _) = pipeline::relay(&mut from, &mut to, None);
        // From here the upload may end: its input closes below, after the
        // compressor's last frame (an upload that dies meanwhile fails the
        // finish, which is blamed on the upload all the same).
        closed.store(true, Ordering::SeqCst);
        let (end, digest) = match end {
            End::SourceDone => match to.finish() {
                Ok((stored, pipe)) => {
                    drop(pipe);
                    (End::SourceDone, Some(stored))
                }
                Err(e) => (End::SinkFailed(e), None),
            },
            other => {
                drop(to);
                (other, None)
            }
        };
        (end, digest, watcher.join().expect("upload watcher"))
    });
    drop(from);
    let upload_first =
        upload_died_first.load(Ordering::SeqCst) || matches!(end, End::SinkFailed(_));
    if upload_first {
        dump.kill();
    }
    // Wait for both no matter what: each has its own stderr tail to tell.
    let dump_end = dump.wait()?;
    let upload_end = upload_end?;
    let upload_msg = || {
        exit::failed(format!(
            "upload failed: {}. Nothing was published; check the remote `{dest}` and the rclone settings",
            upload_end.describe()
        ))
    };
    let dump_msg = || {
        exit::failed(format!(
            "dump failed: {}. Nothing was published",
            dump_end.describe()
        ))
    };
    match end {
        _ if upload_first => Err(upload_msg()),
        End::SinkFailed(_) => unreachable!("counted as upload_first"),
        End::SourceFailed(e) => Err(exit::failed(format!(
            "reading the dump failed: {e}. Nothing was published"
        ))),
        End::TooLong => unreachable!("no limit on backups"),
        End::SourceDone if !dump_end.success() => Err(dump_msg()),
        End::SourceDone if !upload_end.success() => Err(upload_msg()),
        End::SourceDone => match check.finish() {
            Ok(()) => Ok(digest.expect("a finished stream has a digest")),
            Err(why) => {
                let stderr = dump_end.stderr_tail.trim();
                let said = if stderr.is_empty() {
                    String::new()
                } else {
                    format!(" It said: {stderr}.")
                };
                Err(exit::failed(format!(
                    "dump failed: {} exited 0, but {why}.{said} Nothing was published; check that the database is readable and that `dump_args` keep the dump tool's usual output",
                    dump_end.tool
                )))
            }
        },
    }
}

fn remove_quietly(ctx: &Context, path: &str) {
    if let Err(e) = ctx.rclone.deletefile(path) {
        tracing::warn!(
            "could not remove the unfinished upload {}, if the failed run made one ({e:#}); a later --clean removes it",
            ctx.rclone.path(path)
        );
    }
}

/// What cleanup decided (and, unless a dry run, did): the report of
/// `dbbackup --clean` and of `prune`, as text lines and as JSON.
#[derive(Debug, Default, Serialize)]
pub(super) struct Cleanup {
    /// One entry per series (database) retention looked at.
    pub databases: Vec<SeriesCleanup>,
    /// Damaged backups without a readable record of their own (it does not
    /// read, or names another backup): no database's (its alias is in the
    /// record), each listed once; no retention counts or deletes them.
    pub damaged: Vec<DamagedSkipped>,
    /// What interrupted runs left that was (or would be) removed; a
    /// removal is here only once a listing confirmed it.
    pub leftovers: Vec<LeftoverRemoval>,
}

#[derive(Debug, Serialize)]
pub(super) struct SeriesCleanup {
    pub database: String,
    /// `db_cleanup_keep = N`, or `policy MODULE`.
    pub rule: String,
    /// Newest first, every backup of the series.
    pub decisions: Vec<Decided>,
    /// Damaged backups whose record names this database: never counted
    /// or deleted by retention. (A record whose data object is gone is a
    /// leftover, not here.)
    pub damaged: Vec<DamagedSkipped>,
}

#[derive(Debug, Serialize)]
pub(super) struct Decided {
    pub name: String,
    /// `keep` or `delete` (on a dry run: would delete).
    pub action: &'static str,
    pub reason: String,
    pub created: String,
}

#[derive(Debug, Serialize)]
pub(super) struct DamagedSkipped {
    pub name: String,
    pub problem: String,
}

#[derive(Debug, Serialize)]
pub(super) struct LeftoverRemoval {
    /// `partial-upload`, `stale-claim`, `unrecorded-data`,
    /// `record-without-data` or `restore-staging`.
    pub kind: &'static str,
    /// Every object it is made of (full rclone paths; a local path for
    /// `restore-staging`).
    pub paths: Vec<String>,
    pub last_seen: String,
}

impl Cleanup {
    /// The text report: one line per decision and per leftover.
    pub fn lines(&self, dry_run: bool, headers: bool) -> Vec<String> {
        let mut out = Vec::new();
        for s in &self.databases {
            if headers {
                out.push(format!(
                    "database `{}` ({}, {} backup(s)):",
                    s.database,
                    s.rule,
                    s.decisions.len()
                ));
            }
            for d in &s.decisions {
                let verb = match (d.action, dry_run) {
                    ("keep", _) => "keep",
                    (_, true) => "would delete",
                    (_, false) => "deleted",
                };
                out.push(format!(
                    "{verb:>12}  {}  ({})",
                    printable(&d.name),
                    d.reason
                ));
            }
        }
        for l in &self.leftovers {
            let what = if l.kind == "restore-staging" {
                format!(
                    "{} (a restore's staging file left by a killed run)",
                    l.paths.join(" ")
                )
            } else {
                format!(
                    "{} ({}, left by an interrupted run, last touched {})",
                    printable(&l.paths.join(" ")),
                    l.kind,
                    l.last_seen
                )
            };
            let verb = if dry_run { "would delete" } else { "deleted" };
            out.push(format!("{verb:>12}  {what}"));
        }
        out
    }
}

fn damaged_skipped(d: &crate::catalog::Damaged) -> DamagedSkipped {
    DamagedSkipped {
        name: d.name.clone(),
        problem: d.problem.clone(),
    }
}

/// Retention for one series at a time, then the leftovers of interrupted
/// runs: what `dbbackup --clean` runs after its backup and `prune` runs on
/// its own. Whatever it has done is in `report` as it goes.
pub(super) struct Cleaner<'c> {
    ctx: &'c Context,
    catalog: &'c Catalog<'c>,
    listing: &'c Listing,
    now: DateTime<Utc>,
    dry_run: bool,
    /// The backup this run made (dbbackup): spared, and named if interrupted.
    just_made: Option<&'c str>,
    /// The one database whose leftovers are removed (`-d`, and dbbackup);
    /// `None`: every leftover, whatever its database.
    only: Option<&'c str>,
    cutoff: DateTime<Utc>,
    pub report: Cleanup,
    /// The backups deleted so far, and how many leftovers were removed
    /// (for the interrupt message).
    deleted: Vec<String>,
    removed: usize,
    /// The locks this cleanup runs under, checked before each deletion.
    locks: Vec<&'c Lock>,
}

impl<'c> Cleaner<'c> {
    pub fn start(
        ctx: &'c Context,
        catalog: &'c Catalog<'c>,
        listing: &'c Listing,
        now: DateTime<Utc>,
        dry_run: bool,
        just_made: Option<&'c str>,
    ) -> Result<Cleaner<'c>> {
        failpoint::reached("cleaning");
        let mut cleaner = Cleaner {
            ctx,
            catalog,
            listing,
            now,
            dry_run,
            just_made,
            only: None,
            cutoff: abandoned_before(now, ctx.config.settings.abandoned_after),
            report: Cleanup::default(),
            deleted: Vec::new(),
            removed: 0,
            locks: Vec::new(),
        };
        cleaner.stop()?;
        // A backup without a record of its own (one that does not read, or
        // names another backup) has no known database: warned about and
        // reported once, whichever databases this run cleans.
        for d in listing.damaged.iter().filter(|d| d.record.is_none()) {
            tracing::warn!(
                "backup {} is damaged ({}); no database's retention counts or deletes it (it has no readable record of its own, which is what names a backup's database). Check it with `rcbackup verify -i {}` and remove it by hand",
                printable(&d.name),
                d.problem,
                printable(&d.name)
            );
            cleaner.report.damaged.push(damaged_skipped(d));
        }
        Ok(cleaner)
    }

    /// Checks `locks` before each deletion: a lost lock stops the cleanup.
    pub fn guarded_by(&mut self, locks: Vec<&'c Lock>) {
        self.locks = locks;
    }

    /// Fails if a lock this cleanup runs under was lost: the lock of
    /// database `alias` if it has one, else every one.
    fn still_locked(&self, alias: Option<&str>) -> Result<()> {
        let series = alias.map(|a| Series::Db(a.to_string()));
        let own: Vec<&&Lock> = self
            .locks
            .iter()
            .filter(|l| series.as_ref() == Some(l.series()))
            .collect();
        let check = if own.is_empty() {
            self.locks.iter().collect()
        } else {
            own
        };
        for lock in check {
            lock.check()
                .map_err(|e| exit::with_note(e, &format!("cleanup stopped: {}", self.went())))?;
        }
        Ok(())
    }

    /// Removes only the leftovers that belong to database `alias`.
    pub fn only(&mut self, alias: &'c str) {
        self.only = Some(alias);
    }

    /// What was deleted so far: "nothing was deleted", "2 backup(s) were
    /// deleted (a, b) and 1 leftover(s) removed".
    pub fn went(&self) -> String {
        match (self.deleted.len(), self.removed) {
            (0, 0) => "nothing was deleted".to_string(),
            (0, r) => format!("{r} leftover(s) of interrupted runs were removed, no backup"),
            (_, r) => format!(
                "{} backup(s) were deleted ({}){}",
                self.deleted.len(),
                self.deleted
                    .iter()
                    .map(|n| printable(n))
                    .collect::<Vec<_>>()
                    .join(", "),
                if r > 0 {
                    format!(" and {r} leftover(s) removed")
                } else {
                    String::new()
                }
            ),
        }
    }

    fn stop(&self) -> Result<()> {
        if !crate::interrupt::interrupted() {
            return Ok(());
        }
        let done = self.went();
        if let Some(just_made) = self.just_made {
            return Err(exit::interrupted_at(format!(
                "interrupted before cleanup finished: {done}; backup {just_made} was published"
            )));
        }
        Err(exit::interrupted_at(format!(
            "interrupted before pruning finished: {done}; every other backup is as it was. Run `rcbackup prune` again to finish"
        )))
    }

    /// A deletion that failed because the run was interrupted (one process
    /// per call: the signal stops the rclone removing a leftover) is the
    /// interrupt, saying what went, not the stopped tool's error.
    fn cut_short(&self, e: anyhow::Error) -> anyhow::Error {
        match self.stop() {
            Err(interrupted) => {
                tracing::debug!("the deletion the interrupt stopped: {e:#}");
                interrupted
            }
            Ok(()) => e,
        }
    }

    /// Applies retention (db_cleanup_keep, or the retention policy) to the
    /// backups of `alias`; on a dry run only decides.
    pub fn series(&mut self, alias: &str, series: &[BackupRecord]) -> Result<()> {
        self.stop()?;
        let mut damaged = Vec::new();
        // By the alias in the record only, never by the name; a record
        // that cannot be read is no database's (see `start`).
        for d in (self.listing.damaged.iter()).filter(|d| d.database() == Some(alias)) {
            let without_data = self
                .listing
                .leftovers
                .iter()
                .find(|l| l.kind == LeftoverKind::RecordWithoutData && l.name == d.name);
            match without_data {
                // Removed as a leftover by this run (`leftovers`), and
                // reported there.
                Some(l) if l.last_seen < self.cutoff => {}
                Some(l) => tracing::warn!(
                    "backup {} is not whole: {}. Its record is a `record-without-data` leftover, which cleanup removes once untouched for abandoned_after_hours (from {}); until then listbackups shows it as damaged and restore refuses it",
                    printable(&d.name),
                    d.problem,
                    l.last_seen
                        .checked_add_signed(self.now - self.cutoff)
                        .map_or_else(|| "never".to_string(), json::time)
                ),
                None => {
                    tracing::warn!(
                        "backup {} is damaged ({}); retention neither counts nor deletes it. Check it with `rcbackup verify -i {}` and remove it by hand",
                        printable(&d.name),
                        d.problem,
                        printable(&d.name)
                    );
                    damaged.push(damaged_skipped(d));
                }
            }
        }
        let keep = self.ctx.config.settings.db_cleanup_keep;
        let rule = match self.ctx.policies.retention_module() {
            Some(module) => format!("policy {module}"),
            None => format!("db_cleanup_keep = {keep}"),
        };
        let mut decisions = self.ctx.policies.retention(series, self.now, keep)?;
        retention::check_decisions(series, &decisions).map_err(|why| {
            exit::failed(format!(
                "cleanup refused the retention decision for `{alias}`, so nothing of it was deleted: {why}"
            ))
        })?;
        if let Some(just_made) = self.just_made {
            retention::spare_just_made(&mut decisions, just_made);
        }
        let (listing, cutoff) = (self.listing, self.cutoff);
        retention::spare(
            &mut decisions,
            |name| listing.in_flight(name, cutoff),
            "its run is still going",
        );
        // Newest first, as listings show them.
        let created: std::collections::BTreeMap<&str, DateTime<Utc>> = series
            .iter()
            .map(|b| (b.name.as_str(), b.created))
            .collect();
        decisions.sort_by(|a, b| {
            created[b.name.as_str()]
                .cmp(&created[a.name.as_str()])
                .then_with(|| b.name.cmp(&a.name))
        });
        self.report.databases.push(SeriesCleanup {
            database: alias.to_string(),
            rule,
            decisions: decisions
                .iter()
                .map(|d| Decided {
                    name: d.name.clone(),
                    action: if d.keep { "keep" } else { "delete" },
                    reason: d.reason.clone(),
                    created: json::time(created[d.name.as_str()]),
                })
                .collect(),
            damaged,
        });
        for d in &decisions {
            let verb = if d.keep { "keep" } else { "delete" };
            tracing::debug!("{verb} {} ({})", d.name, d.reason);
        }
        if self.dry_run {
            return Ok(());
        }
        let mut deleted = Vec::new();
        for d in decisions.iter().filter(|d| !d.keep) {
            self.stop()?;
            self.still_locked(Some(alias))?;
            self.catalog
                .delete(&d.name)
                .map_err(|e| self.cut_short(e))?;
            self.deleted.push(d.name.clone());
            deleted.push(d);
        }
        if deleted.is_empty() {
            return Ok(());
        }
        // rclone may report a file deleted that it did not find: one
        // listing confirms before the deletions are claimed.
        let objects: Vec<(String, String)> = deleted
            .iter()
            .flat_map(|d| {
                let paths = [
                    self.catalog.data_path(&d.name),
                    self.catalog.record_path(&d.name),
                ];
                paths.map(|p| (d.name.clone(), p))
            })
            .collect();
        let still = self
            .catalog
            .still_listed(&objects.iter().map(|(_, p)| p.as_str()).collect())
            .map_err(|e| self.cut_short(e))?;
        for d in deleted {
            if let Some((_, p)) = objects
                .iter()
                .find(|(n, p)| *n == d.name && still.contains(p))
            {
                self.deleted.retain(|n| *n != d.name);
                let reason = format!(
                    "rclone reported it deleted, but {} is still there; remove it by hand",
                    self.catalog.show(p)
                );
                tracing::warn!("backup {}: {reason}", printable(&d.name));
                let report = self.report.databases.last_mut().expect("pushed above");
                if let Some(r) = report.decisions.iter_mut().find(|r| r.name == d.name) {
                    r.action = "keep";
                    r.reason = reason;
                }
                continue;
            }
            tracing::info!("deleted {} ({})", d.name, d.reason);
        }
        Ok(())
    }

    /// The configured database a leftover belongs to, as far as can be
    /// told: the one its readable record names; else the one whose backup
    /// names (db_filename_template around the alias) its name has, the
    /// longest alias that fits (`app-x-...` is `app-x`'s, not `app`'s).
    fn owner(&self, leftover: &Leftover) -> Option<&'c str> {
        let ctx: &'c Context = self.ctx;
        let config = &ctx.config;
        if let Some(db) = self
            .listing
            .find_damaged(&leftover.name)
            .and_then(|d| d.database())
        {
            return config.databases.get_key_value(db).map(|(k, _)| k.as_str());
        }
        let template = &config.settings.db_filename_template;
        config
            .databases
            .keys()
            .filter(|alias| {
                const MARK: &str = "\u{0}";
                let rendered = template.render(alias, MARK, MARK);
                let mut parts = rendered.split(MARK);
                let first = parts.next().unwrap_or_default();
                let Some(mut rest) = leftover.name.strip_prefix(first) else {
                    return false;
                };
                parts.filter(|p| !p.is_empty()).all(|p| match rest.find(p) {
                    Some(at) => {
                        rest = &rest[at + p.len()..];
                        true
                    }
                    None => false,
                })
            })
            .max_by_key(|alias| alias.len())
            .map(String::as_str)
    }

    /// Removes what interrupted runs left in the backup folder once it is
    /// `abandoned_after_hours` old, and the restore staging files of
    /// `local` (whose restores are not running).
    pub fn leftovers(&mut self, local: &[&Database]) -> Result<()> {
        self.stop()?;
        let mut others = 0;
        // Removed by rclone's word, to be confirmed by a listing.
        let mut removed: Vec<(LeftoverRemoval, &Leftover)> = Vec::new();
        for leftover in self.listing.abandoned(self.cutoff) {
            if let Some(only) = self.only {
                if self.owner(leftover) != Some(only) {
                    others += 1;
                    continue;
                }
            }
            if let Some(odd) = leftover.paths.iter().find(|p| !nameable(p)) {
                tracing::warn!(
                    "{} ({}, left by an interrupted run) cannot be removed through rclone: its name {} is not one rclone gives back byte for byte (rclone lists a byte that is not UTF-8 as U+FFFD, and its quote character `‛` changes on the way back). Remove it by hand",
                    printable(&self.catalog.show(&leftover.paths.join(" "))),
                    leftover.kind.as_str(),
                    printable(&self.catalog.show(odd)),
                );
                continue;
            }
            let removal = LeftoverRemoval {
                kind: leftover.kind.as_str(),
                paths: leftover
                    .paths
                    .iter()
                    .map(|p| self.catalog.show(p))
                    .collect(),
                last_seen: json::time(leftover.last_seen),
            };
            if self.dry_run {
                self.report.leftovers.push(removal);
                continue;
            }
            self.stop()?;
            self.still_locked(self.owner(leftover))?;
            self.catalog
                .remove(leftover)
                .map_err(|e| self.cut_short(e))?;
            self.removed += 1;
            removed.push((removal, leftover));
        }
        if others > 0 {
            if let Some(only) = self.only {
                tracing::info!(
                    "{others} leftover(s) of interrupted runs that are not database `{only}`'s (another database's, or whose database cannot be told) are left alone; `rcbackup prune` without -d removes them"
                );
            }
        }
        // rclone may report a file deleted that it did not find (a name it
        // lists differently from how it takes it): one listing confirms.
        if !removed.is_empty() {
            let paths: BTreeSet<&str> = removed
                .iter()
                .flat_map(|(_, l)| l.paths.iter().map(String::as_str))
                .collect();
            let still = self
                .catalog
                .still_listed(&paths)
                .map_err(|e| self.cut_short(e))?;
            for (removal, leftover) in removed {
                if leftover.paths.iter().any(|p| still.contains(p)) {
                    self.removed -= 1;
                    tracing::warn!(
                        "rclone reported {} ({}, left by an interrupted run) removed, but it is still there; remove it by hand",
                        printable(&removal.paths.join(" ")),
                        removal.kind
                    );
                    continue;
                }
                tracing::info!(
                    "removed {} ({}, left by an interrupted run, last touched {})",
                    printable(&removal.paths.join(" ")),
                    removal.kind,
                    removal.last_seen
                );
                self.report.leftovers.push(removal);
            }
        }
        for db in local {
            for l in engines::restore_leftovers(db) {
                if l.running {
                    continue;
                }
                if !self.dry_run {
                    self.stop()?;
                    engines::remove_local_leftover(&l).map_err(|e| self.cut_short(e))?;
                    self.removed += 1;
                    tracing::info!(
                        "removed {} (a restore's staging file left by a killed run)",
                        l.path.display()
                    );
                }
                self.report.leftovers.push(LeftoverRemoval {
                    kind: "restore-staging",
                    paths: vec![l.path.display().to_string()],
                    last_seen: json::time(l.last_seen),
                });
            }
        }
        Ok(())
    }
}
