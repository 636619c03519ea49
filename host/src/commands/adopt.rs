//! `adopt`: record the backups django-rclone and django-dbbackup made in
//! the backup folder, so that rcbackup lists, verifies, retains and
//! restores them (host/src/adopt/ does the judging and the reading).

use std::collections::BTreeMap;

use anyhow::Result;
use chrono::Utc;
use serde::Serialize;

use super::{json, Context};
use crate::adopt::{self, Candidate, Naming, Refusal, Target};
use crate::cli::AdoptArgs;
use crate::exit;
use crate::lock::Series;
use crate::naming::printable;
use crate::record::{Adopted, BackupRecord};

/// The largest `.metadata` file read.
const METADATA_MAX: u64 = 64 * 1024;

pub fn run(ctx: &Context, args: &AdoptArgs) -> Result<()> {
    let naming = Naming::new(
        &ctx.config,
        args.template.as_deref(),
        args.date_format.as_deref(),
        args.utc,
    )
    .map_err(exit::usage)?;
    let only = match &args.database {
        Some(a) => Some(ctx.config.alias(Some(a))?.to_string()),
        None => None,
    };
    // Every configured database takes part in attribution, also with -d:
    // a name that fits two databases is ambiguous whichever is asked for.
    let mut targets = Vec::new();
    for alias in ctx.config.databases.keys() {
        match ctx.config.database(Some(alias)) {
            Ok(db) => targets.push(Target {
                alias: alias.clone(),
                engine: db.engine,
                db_name: Some(adopt::dbbackup_name(&db.name, db.engine)),
            }),
            Err(e) => tracing::warn!(
                "database `{alias}` is left out of adopt: {e:#}; files of it are reported as not attributable"
            ),
        }
    }
    let catalog = ctx.catalog();
    let dir = catalog.dir().to_string();
    let listing = catalog.list()?;
    let entries = ctx.rclone.list_files(&dir)?.unwrap_or_default();
    let foreign: Vec<_> = entries
        .into_iter()
        .filter(|e| !e.is_dir && listing.foreign.contains(&e.name))
        .collect();
    let mut metadata = BTreeMap::new();
    for e in foreign.iter().filter(|e| e.name.ends_with(".metadata")) {
        // django-dbbackup's are about 100 bytes: a large one is not its.
        if e.size > METADATA_MAX as i64 {
            tracing::warn!(
                "{} is {} bytes, more than django-dbbackup's metadata ever is ({} KiB at most read): ignored",
                printable(&e.name),
                e.size,
                METADATA_MAX / 1024
            );
            continue;
        }
        if !crate::catalog::nameable(&e.name) {
            continue;
        }
        if let Some(bytes) = ctx.rclone.cat(&format!("{dir}/{}", e.name))? {
            metadata.insert(e.name.clone(), bytes);
        }
    }
    let present = listing.taken.clone();
    let mut plan = adopt::plan(&foreign, &present, &targets, &naming, &metadata);
    if let Some(a) = &only {
        plan.candidates.retain(|c| &c.alias == a);
    }
    let recorded = listing
        .backups
        .iter()
        .filter(|b| b.adopted.is_some())
        .count();

    let mut report = Report {
        dbbackup_zone: naming.zone.clone(),
        dry_run: args.dry_run,
        adopted: Vec::new(),
        not_adopted: std::mem::take(&mut plan.refused),
        already_adopted: recorded,
        interrupted: false,
        not_reached: Vec::new(),
    };
    let mut failed = None;
    if args.dry_run {
        report.adopted = plan.candidates.iter().map(Row::planned).collect();
    } else {
        // Per database, under its series lock (as every writer of a series
        // takes it): two adopts, or an adopt and a prune, never race on it.
        let mut by_alias: BTreeMap<&str, Vec<&Candidate>> = BTreeMap::new();
        for c in &plan.candidates {
            by_alias.entry(&c.alias).or_default().push(c);
        }
        let mut rest: Vec<&Candidate> = Vec::new();
        'dbs: for (alias, cands) in by_alias {
            if report.interrupted {
                rest.extend(cands);
                continue;
            }
            let lock = ctx.lock(Series::Db(alias.to_string()), "adopt")?;
            for (i, c) in cands.iter().enumerate() {
                if crate::interrupt::interrupted() {
                    report.interrupted = true;
                    rest.extend(&cands[i..]);
                    continue 'dbs;
                }
                match adopt_one(ctx, &catalog, c) {
                    Ok(Ok(row)) => report.adopted.push(row),
                    Ok(Err(r)) => report.not_adopted.push(r),
                    // Stopped by an interrupt: the file is not to blame.
                    Err(_) if crate::interrupt::interrupted() => {
                        report.interrupted = true;
                        rest.extend(&cands[i..]);
                        continue 'dbs;
                    }
                    Err(e) => {
                        tracing::error!("{}: {e:#}", printable(&c.name));
                        report.not_adopted.push(Refusal {
                            name: c.name.clone(),
                            reason: format!("{e:#}"),
                            damaged: false,
                            unsupported: false,
                        });
                        failed.get_or_insert(e);
                    }
                }
                lock.check()?;
            }
        }
        report.not_reached = rest.iter().map(|c| c.name.clone()).collect();
        if report.interrupted {
            failed = Some(exit::interrupted_at(format!(
                "{} backup(s) adopted, {} file(s) not reached; every record is whole; run adopt again for the rest",
                report.adopted.len(),
                report.not_reached.len()
            )));
        }
    }
    if args.json {
        json::print(&report)?;
    } else {
        print_text(&report, &plan.metadata)?;
    }
    if let Some(e) = failed {
        return Err(e);
    }
    if report
        .not_adopted
        .iter()
        .any(|n| n.damaged && n.reason != CHANGED)
    {
        return Err(exit::integrity(
            "some files were read and are damaged (see above): they were not adopted",
        ));
    }
    if report.not_adopted.iter().any(|n| n.damaged) {
        return Err(exit::integrity(
            "some files changed while they were read (see above): they were not adopted; run adopt again",
        ));
    }
    Ok(())
}

const CHANGED: &str = "it changed (or was deleted) while it was read; run adopt again";

/// Is `c` as the listing before its read showed it (and of `read` bytes)?
fn unchanged(
    ctx: &Context,
    catalog: &crate::catalog::Catalog<'_>,
    c: &Candidate,
    read: Option<u64>,
) -> Result<bool> {
    let now = ctx.rclone.list_files(catalog.dir())?.unwrap_or_default();
    Ok(now.iter().find(|e| e.name == c.name).is_some_and(|e| {
        read.is_none_or(|r| e.size as u64 == r)
            && e.size as u64 == c.size
            && e.mod_time == c.mod_time
    }))
}

/// Reads one file and writes its record. `Ok(Err)`: not adopted, and why.
fn adopt_one(
    ctx: &Context,
    catalog: &crate::catalog::Catalog<'_>,
    c: &Candidate,
) -> Result<std::result::Result<Row, Refusal>> {
    let refuse = |reason: String, damaged: bool| Refusal {
        name: c.name.clone(),
        reason,
        damaged,
        unsupported: false,
    };
    // Another adopt (before this one took the lock) may have recorded it.
    if ctx.rclone.cat(&catalog.record_path(&c.name))?.is_some() {
        return Ok(Err(refuse(
            "already recorded (by a run beside this one)".into(),
            false,
        )));
    }
    let data = catalog.data_path(&c.name);
    let changed = || refuse(CHANGED.into(), true);
    let read = match adopt::read(&ctx.rclone, &data, c.gzip, c.engine) {
        Ok(Ok(r)) => r,
        Ok(Err(n)) => {
            // A file that grew or shrank under the read (rclone per call
            // reads to whatever end it finds) looks cut short: it changed,
            // it is not damaged.
            if n.damaged && !crate::interrupt::interrupted() && !unchanged(ctx, catalog, c, None)? {
                return Ok(Err(changed()));
            }
            return Ok(Err(Refusal {
                unsupported: n.unsupported,
                ..refuse(n.why, n.damaged)
            }));
        }
        // rclone fails a read of a file that grows or shrinks under it
        // (its size no longer the one it announced): say so, as below.
        Err(e) => {
            if !crate::interrupt::interrupted() && !unchanged(ctx, catalog, c, None)? {
                return Ok(Err(changed()));
            }
            return Err(e);
        }
    };
    // A file changed or replaced while it was read: its hash is of
    // neither version.
    if !unchanged(ctx, catalog, c, Some(read.size))? {
        return Ok(Err(changed()));
    }
    let record = BackupRecord {
        finished: c.mod_time,
        ..BackupRecord::new(
            &c.name,
            &c.alias,
            c.engine,
            read.size,
            read.sha256.clone(),
            c.created,
        )
    }
    .of_tenant(ctx.config.tenant.clone())
    .adopted(
        Adopted {
            from: c.origin,
            layout: read.layout,
            at: Utc::now(),
        },
        c.gzip,
    );
    {
        // The record is one write: an interrupt waits for it, so it is
        // whole or absent.
        let _whole = crate::interrupt::shield();
        ctx.rclone
            .put(&catalog.record_path(&c.name), record.to_line().as_bytes())?;
    }
    Ok(Ok(Row {
        name: c.name.clone(),
        database: c.alias.clone(),
        created: json::time(c.created),
        from: c.origin.as_str(),
        layout: Some(read.layout.as_str()),
        compression: json::compression(record.compression),
        size: Some(read.size),
        sha256: Some(read.sha256),
        connector: c.connector.clone(),
    }))
}

/// `adopt --json` (docs/json.md).
#[derive(Serialize)]
struct Report {
    dry_run: bool,
    /// Adopted now (with --dry-run: would be adopted).
    adopted: Vec<Row>,
    not_adopted: Vec<Refusal>,
    /// Backups adopted by earlier runs.
    already_adopted: usize,
    /// Stopped by Ctrl-C or SIGTERM before every file was looked at.
    interrupted: bool,
    /// The zone django-dbbackup's names were read in, if given.
    dbbackup_zone: Option<String>,
    /// The files an interrupted run did not reach (neither adopted nor
    /// refused): run adopt again.
    not_reached: Vec<String>,
}

#[derive(Serialize)]
struct Row {
    name: String,
    database: String,
    created: String,
    from: &'static str,
    /// What it holds; unknown before it is read (--dry-run).
    layout: Option<&'static str>,
    compression: &'static str,
    size: Option<u64>,
    sha256: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    connector: Option<String>,
}

impl Row {
    fn planned(c: &Candidate) -> Row {
        Row {
            name: c.name.clone(),
            database: c.alias.clone(),
            created: json::time(c.created),
            from: c.origin.as_str(),
            layout: None,
            compression: if c.gzip { "gzip" } else { "none" },
            size: Some(c.size),
            sha256: None,
            connector: c.connector.clone(),
        }
    }
}

fn print_text(r: &Report, metadata: &[String]) -> Result<()> {
    let verb = if r.dry_run { "would adopt" } else { "adopted" };
    for a in &r.adopted {
        crate::outln!(
            "{verb}  {}  as `{}`, made {} by {}, {}{}",
            printable(&a.name),
            a.database,
            a.created,
            a.from,
            a.layout.unwrap_or("format checked when adopted"),
            if a.compression == "gzip" {
                ", gzip'd"
            } else {
                ""
            }
        );
    }
    for n in &r.not_adopted {
        let how = if n.unsupported { " (unsupported)" } else { "" };
        crate::outln!("not adopted{how}  {}: {}", printable(&n.name), n.reason);
    }
    for m in metadata {
        crate::outln!(
            "read  {}: django-dbbackup's metadata of a backup (not a backup)",
            printable(m)
        );
    }
    for n in &r.not_reached {
        crate::outln!("not reached  {} (interrupted)", printable(n));
    }
    if let Some(z) = &r.dbbackup_zone {
        crate::outln!("django-dbbackup's names read in {z}");
    }
    let what = if r.dry_run {
        "dry run: nothing was changed"
    } else {
        "done"
    };
    if r.interrupted {
        crate::outln!(
            "interrupted: {} backup(s) adopted, {} file(s) not adopted, {} not reached, {} adopted earlier; run adopt again for the rest",
            r.adopted.len(),
            r.not_adopted.len(),
            r.not_reached.len(),
            r.already_adopted
        );
    } else if r.adopted.is_empty() && r.not_adopted.iter().any(|n| n.damaged) {
        // Not "nothing to adopt": a file changed while read (or damaged)
        // is still there to adopt once it is whole.
        crate::outln!(
            "no backup {verb}: {} file(s) not adopted (see above), {} adopted earlier; {what}",
            r.not_adopted.len(),
            r.already_adopted
        );
    } else if r.adopted.is_empty() {
        crate::outln!(
            "nothing to adopt ({} backup(s) adopted earlier, {} file(s) not adopted); {what}",
            r.already_adopted,
            r.not_adopted.len()
        );
    } else {
        crate::outln!(
            "{} backup(s) {verb}, {} file(s) not adopted, {} adopted earlier; {what}",
            r.adopted.len(),
            r.not_adopted.len(),
            r.already_adopted
        );
    }
    Ok(())
}
