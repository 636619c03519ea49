//! `drill`: prove that a backup restores. The backup is restored, through
//! the same code and checks as `dbrestore` ([`engines::restore`]), into a
//! scratch database (PostgreSQL/MariaDB: a new database on the same server;
//! SQLite: a file in a private temporary folder), the rows of every table
//! are counted, and the scratch database is dropped. See docs/drill.md.
//!
//! The live database is never touched: the scratch database is a clone of
//! the configured one with another name, built so that it cannot equal any
//! configured database's; every statement the drill issues names the
//! scratch database (engines/scratch.rs). No approval is asked and hooks
//! get no events: nothing the application uses changes.
//!
//! Orphans: each run holds a lock in its own folder,
//! `$TMPDIR/rcbackup-drill-<uid>/<scratch name>/`, for as long as it runs.
//! A run killed with SIGKILL leaves its scratch database and that folder;
//! the next drill of the database finds the folder unlocked (the run is
//! provably dead) and drops both. A scratch database with no folder here
//! (a drill on another machine) is dropped once its name's time stamp is
//! `abandoned_after_hours` old, and only if it carries the drill's mark.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Result;
use chrono::{DateTime, NaiveDateTime, Utc};

use super::{choose_backup, Context};
use crate::cli::DrillArgs;
use crate::database::{Database, EngineKind, PasswordSource, Redacted};
use crate::engines::scratch::{self, TableRows};
use crate::engines::{self, Source};
use crate::exit;
use crate::naming::printable;

const PREFIX: &str = "rcbackup_drill_";
/// The time stamp in a scratch name (UTC).
const STAMP: &str = "%Y%m%d%H%M%S";
/// PostgreSQL's identifier limit; MariaDB's is 64.
const MAX_NAME: usize = 63;
/// `_<14-digit stamp>_<pid, up to 7 digits>_<6 hex>`.
const TAIL: usize = 1 + 14 + 1 + 7 + 1 + 6;

/// The alias as it appears in scratch names: itself, or when too long, its
/// start and a digest of the whole (aliases hold letters, digits, `_`, `-`).
fn alias_part(alias: &str) -> String {
    use sha2::Digest as _;
    let room = MAX_NAME - PREFIX.len() - TAIL;
    if alias.len() <= room {
        return alias.to_string();
    }
    let digest = hex::encode(&sha2::Sha256::digest(alias.as_bytes())[..4]);
    let keep = room - 1 - digest.len();
    format!("{}-{digest}", &alias[..keep])
}

/// Where a tenant's scratch names start: never with [`PREFIX`] (its next
/// character is `t`, not `_`), so no top-level alias's names are a
/// tenant's, and with a digest of the tenant and alias, so that tenants
/// sharing a database server with the same alias (`main`) never see,
/// count or drop each other's scratch databases.
const TENANT_PREFIX: &str = "rcbackup_drillt_";

/// The start of every scratch name of `alias` (of `tenant`, if any).
fn name_prefix(tenant: Option<&str>, alias: &str) -> String {
    match tenant {
        None => format!("{PREFIX}{}_", alias_part(alias)),
        Some(t) => {
            use sha2::Digest as _;
            let digest = sha2::Sha256::digest(format!("{t}\0{alias}").as_bytes());
            // 16 + 12 + 1 + TAIL (30) = 59 bytes, within MAX_NAME.
            format!("{TENANT_PREFIX}{}_", &hex::encode(digest)[..12])
        }
    }
}

/// A new scratch name for `alias` (of `tenant`, if any).
fn scratch_name(
    tenant: Option<&str>,
    alias: &str,
    now: DateTime<Utc>,
    pid: u32,
    random: [u8; 3],
) -> String {
    format!(
        "{}{}_{pid}_{}",
        name_prefix(tenant, alias),
        now.format(STAMP),
        hex::encode(random)
    )
}

/// When the drill that made `name` started, if `name` is a scratch name of
/// `alias`: exactly the prefix, a stamp, a pid and six hex digits.
fn parse_scratch(name: &str, tenant: Option<&str>, alias: &str) -> Option<DateTime<Utc>> {
    let rest = name.strip_prefix(&name_prefix(tenant, alias))?;
    let mut parts = rest.split('_');
    let (stamp, pid, random) = (parts.next()?, parts.next()?, parts.next()?);
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if parts.next().is_some()
        || stamp.len() != 14
        || !digits(stamp)
        || !digits(pid)
        || pid.len() > 7
        || random.len() != 6
        || !random
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return None;
    }
    NaiveDateTime::parse_from_str(stamp, STAMP)
        .ok()
        .map(|t| t.and_utc())
}

fn random3() -> [u8; 3] {
    crate::random::bytes().unwrap_or_else(|| {
        let n = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let b = n.to_le_bytes();
        [b[0], b[1], b[2]]
    })
}

/// `$TMPDIR/rcbackup-drill-<uid>`: private to this user.
fn base_dir() -> Result<PathBuf> {
    use std::os::unix::fs::{DirBuilderExt, MetadataExt};
    // SAFETY: geteuid cannot fail.
    let uid = unsafe { libc::geteuid() };
    // TMPDIR set but empty (an environment template's blank) is unset, as
    // for every tool: not the current folder.
    let tmp = std::env::var_os("TMPDIR")
        .filter(|t| !t.is_empty())
        .map_or_else(|| PathBuf::from("/tmp"), PathBuf::from);
    let base = tmp.join(format!("rcbackup-drill-{uid}"));
    match std::fs::DirBuilder::new().mode(0o700).create(&base) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => {
            return Err(exit::failed(format!(
                "cannot create the drill's folder {}: {e}; set TMPDIR to a writable folder",
                base.display()
            )))
        }
    }
    let m = std::fs::symlink_metadata(&base)
        .map_err(|e| exit::failed(format!("{}: {e}", base.display())))?;
    if !m.is_dir() || m.uid() != uid || m.mode() & 0o077 != 0 {
        return Err(exit::failed(format!(
            "{} is not a private folder of this user (a directory of uid {uid}, mode 0700); remove it, or set TMPDIR to another folder",
            base.display()
        )));
    }
    Ok(base)
}

/// Takes the lock of a run folder without waiting; `None` if a running
/// drill holds it.
fn try_lock(file: &File) -> bool {
    use std::os::fd::AsRawFd;
    // SAFETY: flock on a descriptor we own.
    unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) == 0 }
}

/// This run's folder, locked while the run lives; removed when dropped
/// unless kept.
struct RunDir {
    path: PathBuf,
    _lock: File,
    remove: bool,
}

impl RunDir {
    fn create(base: &Path, name: &str) -> Result<RunDir> {
        // Made under a temporary name and locked before it gets its own,
        // so that no other drill ever sees it unlocked.
        let tmp = base.join(format!(".new-{name}"));
        let path = base.join(name);
        let fail = |e: std::io::Error| {
            exit::failed(format!(
                "cannot create the drill's folder {}: {e}",
                path.display()
            ))
        };
        std::fs::create_dir(&tmp).map_err(fail)?;
        let lock = File::create(tmp.join("lock")).map_err(fail)?;
        if !try_lock(&lock) {
            return Err(fail(std::io::Error::other("cannot lock it")));
        }
        std::fs::rename(&tmp, &path).map_err(fail)?;
        Ok(RunDir {
            path,
            _lock: lock,
            remove: true,
        })
    }
}

impl Drop for RunDir {
    fn drop(&mut self) {
        if self.remove {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

/// The state of an earlier drill's folder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Local {
    Running,
    Dead,
    Kept,
}

fn local_state(dir: &Path) -> Local {
    if dir.join("kept").exists() {
        return Local::Kept;
    }
    match File::open(dir.join("lock")) {
        Ok(f) if !try_lock(&f) => Local::Running,
        // No lock file: a folder cut short; nothing holds it.
        _ => Local::Dead,
    }
}

/// Removes what earlier drills of `db` left: dead runs' scratch databases
/// and folders at once; kept ones when `all` or when stale; ones with no
/// folder here (another machine's) only when marked and stale. Never a
/// running drill's, never a configured database. Returns what it removed.
/// What a cleanup did: the scratch databases (SQLite: folders) removed, and
/// those of this alias it left, with why.
#[derive(Default)]
struct Cleaned {
    removed: Vec<String>,
    left: Vec<Left>,
}

#[derive(serde::Serialize)]
struct Left {
    name: String,
    reason: String,
}

fn cleanup(ctx: &Context, db: &Database, base: &Path, all: bool) -> Result<Cleaned> {
    let tenant = ctx.config.tenant.as_deref();
    let stale_before = chrono::Duration::from_std(ctx.config.settings.abandoned_after)
        .ok()
        .and_then(|d| Utc::now().checked_sub_signed(d))
        .unwrap_or(DateTime::<Utc>::MIN_UTC);
    let stale = |t: DateTime<Utc>| t < stale_before;
    let mut removed = Vec::new();
    let mut left = Vec::new();
    let mut locals = std::collections::BTreeMap::new();
    if let Ok(entries) = std::fs::read_dir(base) {
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if let Some(started) = parse_scratch(&name, tenant, &db.alias) {
                locals.insert(name, (e.path(), started, local_state(&e.path())));
            } else if let Some(n) = name.strip_prefix(".new-") {
                // A run killed while making its folder (a moment's window).
                if parse_scratch(n, tenant, &db.alias)
                    .is_some_and(|t| t < Utc::now() - chrono::Duration::hours(1))
                {
                    let _ = std::fs::remove_dir_all(e.path());
                }
            }
        }
    }
    let goes = |state: Local, started: DateTime<Utc>| match state {
        Local::Running => false,
        Local::Dead => true,
        Local::Kept => all || stale(started),
    };
    if db.engine != EngineKind::Sqlite {
        let live_names: Vec<String> = ctx
            .config
            .databases
            .values()
            .filter_map(|e| e.get().ok())
            .filter(|d| engines::compatible(d.engine, db.engine))
            .map(|d| d.name.clone())
            .collect();
        for found in scratch::list(db, &name_prefix(tenant, &db.alias))? {
            let Some(started) = parse_scratch(&found.name, tenant, &db.alias) else {
                continue;
            };
            if live_names.contains(&found.name) {
                continue;
            }
            let go = match locals.get(&found.name) {
                Some((_, _, state)) => goes(*state, started),
                None => found.marked && stale(started),
            };
            if !go {
                let reason = match locals.get(&found.name) {
                    Some((_, _, Local::Running)) => "a drill running on this machine".to_string(),
                    Some(_) => "kept by --keep".to_string(),
                    None if !found.marked => {
                        "not marked as a drill's scratch database (no comment): never dropped by rcbackup; drop it by hand if you know it is one".to_string()
                    }
                    None => format!(
                        "no drill of this machine made it (another machine's, or its folder is gone): dropped once {} old, from {}",
                        humantime_hours(ctx.config.settings.abandoned_after),
                        (started + (Utc::now() - stale_before)).format("%Y-%m-%d %H:%M UTC")
                    ),
                };
                left.push(Left {
                    name: found.name.clone(),
                    reason,
                });
            }
            if go {
                scratch::drop(db, &found.name)?;
                tracing::info!(
                    "dropped {}, the scratch database of an earlier drill of `{}` that is no longer running",
                    found.name,
                    db.alias
                );
                removed.push(found.name.clone());
                if let Some((path, _, _)) = locals.remove(&found.name) {
                    let _ = std::fs::remove_dir_all(path);
                }
            }
        }
    }
    for (path, started, state) in locals.into_values() {
        if goes(state, started) {
            match std::fs::remove_dir_all(&path) {
                Ok(()) => {
                    if db.engine == EngineKind::Sqlite {
                        tracing::info!(
                            "removed {}, left by an earlier drill of `{}`",
                            path.display(),
                            db.alias
                        );
                        removed.push(path.display().to_string());
                    }
                }
                Err(e) => tracing::warn!("cannot remove {}: {e}", path.display()),
            }
        }
    }
    Ok(Cleaned { removed, left })
}

fn humantime_hours(d: std::time::Duration) -> String {
    format!("abandoned_after_hours ({} h)", d.as_secs() / 3600)
}

/// How far a drill got: what its failure message may claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    Nothing,
    Created,
    Restored,
}

/// A MariaDB restore the server refused as the drill's user: the backup
/// names another database (the drill's user may change only the scratch).
fn beyond_scratch(db: &Database, e: anyhow::Error) -> anyhow::Error {
    let text = format!("{e:#}");
    if !matches!(db.engine, EngineKind::Mysql | EngineKind::Mariadb) {
        return e;
    }
    if text.contains("SET USER") {
        return exit::with_note(
            e,
            "the backup holds a view, trigger, routine or event that runs as another account (its DEFINER); \
             the drill's user may change only the scratch database and may not create objects that would run with another account's rights, \
             so a drill cannot restore this database (dbrestore can)",
        );
    }
    if text.contains("ERROR 1045") {
        return exit::with_note(
            e,
            "the drill's temporary user could not log in, at the host of the configured account; \
             an anonymous account (''@'localhost') takes precedence over accounts at '%': \
             create the configured user at the host it connects from, or drop the anonymous account",
        );
    }
    // A statement's denial names its line; a login's does not.
    let statement_denied = text.lines().any(|l| {
        l.contains(" at line ")
            && (l.contains("Access denied for user") || l.contains("denied to user"))
    });
    if !statement_denied {
        return e;
    }
    exit::with_note(
        e,
        "the backup's statements reach beyond its own database (a dump made with --databases or --all-databases \
         creates and uses its database by name; or the backup was altered); the drill's user may change only the scratch database, \
         so the server refused them and no other database changed. Drill a backup made without --databases",
    )
}

#[derive(serde::Serialize)]
struct CleanupReport<'a> {
    version: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    tenant: Option<&'a str>,
    database: &'a str,
    removed: &'a [String],
    left: &'a [Left],
}

#[derive(serde::Serialize)]
struct Report<'a> {
    version: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    tenant: Option<&'a str>,
    backup: &'a str,
    database: &'a str,
    engine: &'a str,
    scratch: &'a str,
    kept: bool,
    started: String,
    duration_ms: u64,
    tables: &'a [TableRows],
    total_rows: u64,
}

pub fn run(ctx: &Context, args: &DrillArgs) -> Result<()> {
    let db = ctx.config.database(args.database.as_deref())?;
    crate::metrics::note_database(&db.alias);
    let base = base_dir()?;
    if args.cleanup {
        let cleaned = cleanup(ctx, db, &base, true)?;
        if args.json {
            let report = CleanupReport {
                version: 1,
                tenant: ctx.config.tenant.as_deref(),
                database: &db.alias,
                removed: &cleaned.removed,
                left: &cleaned.left,
            };
            let text = serde_json::to_string(&report)
                .map_err(|e| exit::failed(format!("cannot encode the result: {e}")))?;
            crate::outln!("{text}");
            return Ok(());
        }
        if cleaned.removed.is_empty() && cleaned.left.is_empty() {
            crate::outln!(
                "nothing to remove: no earlier drill of `{}` left anything",
                db.alias
            );
        }
        let mariadb = matches!(db.engine, EngineKind::Mysql | EngineKind::Mariadb);
        for r in &cleaned.removed {
            if mariadb {
                crate::outln!(
                    "removed {} (and its user {}, if it was left)",
                    printable(r),
                    scratch::drill_user(r)
                );
            } else {
                crate::outln!("removed {}", printable(r));
            }
        }
        for l in &cleaned.left {
            crate::outln!("left {}: {}", printable(&l.name), l.reason);
        }
        return Ok(());
    }
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
            "backup {} was made from a {} database and cannot be restored into a {} scratch database for `{}`",
            backup.name, backup.engine, db.engine, db.alias
        )));
    }
    if let Err(e) = cleanup(ctx, db, &base, false).map(|_| ()) {
        tracing::warn!("cannot remove what earlier drills left: {e:#}");
    }

    let started_at = Utc::now();
    let name = scratch_name(
        ctx.config.tenant.as_deref(),
        &db.alias,
        started_at,
        std::process::id(),
        random3(),
    );
    let mut run_dir = RunDir::create(&base, &name)?;
    let mut target = db.clone();
    target.scratch = true;
    // restore_args are for restores over the live database, and may name
    // a target (pg_restore --create restores into the database the
    // backup names): a drill restores with the engine's own options only.
    target.restore_args = Vec::new();
    let shown = match db.engine {
        EngineKind::Sqlite => {
            target.name = run_dir
                .path
                .join(format!("{name}.sqlite3"))
                .display()
                .to_string();
            target.name.clone()
        }
        EngineKind::Mysql | EngineKind::Mariadb => {
            // No --one-database: it silently skips what follows a `USE
            // other`, and a drill that skipped part of a backup proves
            // nothing. The drill's user may not use another database, so
            // the server refuses that `USE` and the drill fails.
            target.name = name.clone();
            name.clone()
        }
        EngineKind::Postgresql | EngineKind::Postgis => {
            target.name = name.clone();
            name.clone()
        }
    };
    if target.name == db.name {
        // Cannot happen (the names differ in form); never risk it.
        return Err(exit::failed(format!(
            "the scratch name {} equals the live database's; nothing was done",
            target.name
        )));
    }
    if !db.restore_args.is_empty() {
        tracing::info!("restore_args of `{}` are not used by a drill", db.alias);
    }
    tracing::info!(
        "drill of `{}`: restoring {} into scratch {} {}",
        db.alias,
        backup.name,
        if db.engine == EngineKind::Sqlite {
            "file"
        } else {
            "database"
        },
        shown
    );

    let clock = Instant::now();
    let mut stage = Stage::Nothing;
    let mut orphan_possible = false;
    let outcome = (|| -> Result<Vec<TableRows>> {
        if let Err(e) = scratch::create(db, &target.name) {
            // A create cut short may have made it: dropped quietly (a user
            // who may not create it cannot drop it either, and needs no
            // second error about a database that never was).
            if scratch::drop(db, &target.name).is_err() {
                // Left to the next drill, which finds this run dead.
                orphan_possible = true;
            }
            return Err(e);
        }
        stage = Stage::Created;
        if let Some(r) = scratch::restorer(db, &target.name)? {
            target.user = Some(r.user);
            target.password = PasswordSource::Given(Redacted::new(r.password));
        }
        crate::failpoint::reached("drill-created");
        if crate::interrupt::interrupted() {
            return Err(exit::interrupted_at(
                "interrupted before the drill's restore",
            ));
        }
        let source = Source {
            rclone: &ctx.rclone,
            path: catalog.data_path(&backup.name),
            record: backup,
            may_commit: None,
        };
        stage = Stage::Restored;
        engines::restore(&target, &source).map_err(|e| beyond_scratch(db, e))?;
        let tables = scratch::count_rows(&target)?;
        crate::failpoint::reached("drill-counted");
        if crate::interrupt::interrupted() {
            return Err(exit::interrupted_at("interrupted after counting"));
        }
        if tables.is_empty() {
            return Err(exit::failed(format!(
                "backup {} restored, but holds no table: a drill of it proves nothing. \
                 If `{}` really has no table yet, there is nothing to drill",
                backup.name, db.alias
            )));
        }
        Ok(tables)
    })();
    let duration = clock.elapsed();
    let keep = args.keep && outcome.is_ok();
    let mut dropped = Ok(());
    if keep {
        let _ = File::create(run_dir.path.join("kept"));
        run_dir.remove = false;
    } else if stage != Stage::Nothing && db.engine != EngineKind::Sqlite {
        dropped = scratch::drop(db, &target.name);
    }
    if dropped.is_err() || orphan_possible {
        // Leave the folder: the next drill sees the run dead and drops it.
        run_dir.remove = false;
    }
    drop(run_dir);
    let place = format!(
        "the scratch {} {shown}",
        if db.engine == EngineKind::Sqlite {
            "file"
        } else {
            "database"
        }
    );
    let tables = match (outcome, dropped) {
        (Ok(t), Ok(())) => t,
        (Ok(_), Err(e)) => return Err(e),
        (Err(e), dropped) => {
            if let Err(d) = dropped {
                tracing::warn!("{d:#}");
            }
            let note = match stage {
                Stage::Restored => {
                    format!(
                        "the drill's restore target was {place}, never `{}`",
                        db.name
                    )
                }
                Stage::Nothing | Stage::Created => "nothing was restored".to_string(),
            };
            return Err(exit::with_note(e, &note));
        }
    };

    let total: u64 = tables.iter().map(|t| t.rows).sum();
    if args.json {
        let report = Report {
            version: 1,
            tenant: ctx.config.tenant.as_deref(),
            backup: &backup.name,
            database: &db.alias,
            engine: db.engine.as_str(),
            scratch: &shown,
            kept: keep,
            started: started_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            duration_ms: duration.as_millis() as u64,
            tables: &tables,
            total_rows: total,
        };
        let text = serde_json::to_string(&report)
            .map_err(|e| exit::failed(format!("cannot encode the result: {e}")))?;
        crate::outln!("{text}");
        return Ok(());
    }
    crate::outln!(
        "drill of `{}` ({}): backup {} restored into scratch {} {}, {}",
        db.alias,
        db.engine,
        backup.name,
        if db.engine == EngineKind::Sqlite {
            "file"
        } else {
            "database"
        },
        printable(&shown),
        if keep {
            "kept (remove it with `rcbackup drill --cleanup`)"
        } else {
            "then dropped"
        }
    );
    let pg = matches!(db.engine, EngineKind::Postgresql | EngineKind::Postgis);
    let rows: Vec<[String; 3]> = tables
        .iter()
        .map(|t| {
            [
                t.schema.as_deref().map(printable).unwrap_or_default(),
                printable(&t.name),
                t.rows.to_string(),
            ]
        })
        .collect();
    let width = |i: usize, head: &str| {
        rows.iter()
            .map(|r| r[i].chars().count())
            .chain([head.len()])
            .max()
            .unwrap_or(0)
    };
    let (ws, wt, wr) = (width(0, "SCHEMA"), width(1, "TABLE"), width(2, "ROWS"));
    if pg {
        crate::outln!("{:<ws$}  {:<wt$}  {:>wr$}", "SCHEMA", "TABLE", "ROWS");
    } else {
        crate::outln!("{:<wt$}  {:>wr$}", "TABLE", "ROWS");
    }
    for r in &rows {
        if pg {
            crate::outln!("{:<ws$}  {:<wt$}  {:>wr$}", r[0], r[1], r[2]);
        } else {
            crate::outln!("{:<wt$}  {:>wr$}", r[1], r[2]);
        }
    }
    crate::outln!(
        "total: {} tables, {total} rows, in {:.1}s",
        tables.len(),
        duration.as_secs_f64()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn names_fit_the_engines_and_parse_back() {
        let now = at("2026-11-28T10:00:00Z");
        for alias in ["default", "a", "app-2", &"x".repeat(200), "A_b_C"] {
            let n = scratch_name(None, alias, now, 4_194_304, [0xab, 0xcd, 0xef]);
            assert!(n.len() <= MAX_NAME, "{n} is {} bytes", n.len());
            assert!(n.starts_with(PREFIX));
            assert_eq!(parse_scratch(&n, None, alias), Some(now), "{n}");
        }
        // Long aliases that share a start get different names.
        let a = scratch_name(None, &"x".repeat(40), now, 1, [0; 3]);
        let b = scratch_name(None, &format!("{}y", "x".repeat(39)), now, 1, [0; 3]);
        assert_ne!(a, b);
    }

    /// A name is a scratch of exactly one alias, and look-alikes are not.
    #[test]
    fn only_exact_scratch_names_parse() {
        let now = at("2026-11-28T10:00:00Z");
        let n = scratch_name(None, "app", now, 42, [1, 2, 3]);
        assert_eq!(n, "rcbackup_drill_app_20261128100000_42_010203");
        assert!(parse_scratch(&n, None, "app").is_some());
        assert!(parse_scratch(&n, None, "ap").is_none());
        assert!(parse_scratch(
            &scratch_name(None, "app_x", now, 42, [1, 2, 3]),
            None,
            "app"
        )
        .is_none());
        for bad in [
            "rcbackup_drill_app_old",
            "rcbackup_drill_app_20261128100000_42_01020",
            "rcbackup_drill_app_20261128100000_42_0102034",
            "rcbackup_drill_app_20261128100000_42_01020G",
            "rcbackup_drill_app_20261128100000__010203",
            "rcbackup_drill_app_2026112810000_42_010203",
            "rcbackup_drill_app_20261328100000_42_010203",
            "rcbackup_drill_app_20261128100000_42_010203_x",
            "rcbackup_drill_app_20261128100000_12345678_010203",
            "app",
        ] {
            assert!(parse_scratch(bad, None, "app").is_none(), "{bad}");
        }
    }

    /// Two tenants with the same alias on one server, and the top level
    /// with any alias, never parse each other's scratch names: one's
    /// cleanup never drops another's scratch database.
    #[test]
    fn scratch_names_do_not_cross_tenants() {
        let now = at("2026-11-28T10:00:00Z");
        let owners = [None, Some("acme"), Some("globex"), Some("a")];
        let aliases = ["main", "acme", "t", &"x".repeat(200)];
        for o in owners {
            for a in aliases {
                let n = scratch_name(o, a, now, 4_194_304, [1, 2, 3]);
                assert!(n.len() <= MAX_NAME, "{n}");
                for p in owners {
                    for b in aliases {
                        let mine = p == o && a == b;
                        assert_eq!(parse_scratch(&n, p, b).is_some(), mine, "{n} {p:?} {b}");
                    }
                }
            }
        }
        // No top-level alias's prefix is the start of a tenant's name.
        let t = scratch_name(Some("acme"), "main", now, 1, [0; 3]);
        assert!(!t.starts_with(PREFIX), "{t}");
    }

    /// No configured name can be a fresh scratch name of its own alias's
    /// form unless it was made by a drill; and a scratch never equals the
    /// live name it was made for.
    #[test]
    fn scratch_never_equals_live() {
        let now = Utc::now();
        for live in ["app", "rcbackup_drill_app", "rcbackup_drill_app_"] {
            assert_ne!(scratch_name(None, "app", now, 1, [0; 3]), live);
        }
    }
}
