//! `verify`: read backups back and check them against their records: one
//! (`-i NAME`, or the newest of a database), or with `--all` every backup
//! (`--newest`: the newest of each database), reporting each.

use anyhow::Result;
use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{choose_backup, human_size, json, Context};
use crate::catalog::{Catalog, Listing};
use crate::cli::VerifyArgs;
use crate::engines::Source;
use crate::exit::{self, ExitCode};
use crate::naming::printable;
use crate::record::BackupRecord;

/// `verify --json`. See docs/json.md.
#[derive(Serialize)]
struct Report {
    checked: Vec<Checked>,
    ok: usize,
    damaged: usize,
    errors: usize,
}

/// One backup's outcome: `ok`, `damaged` (it does not match its record, or
/// the listing found it damaged) or `error` (it could not be read for
/// another reason: the remote, rclone).
#[derive(Serialize)]
struct Checked {
    status: &'static str,
    name: String,
    path: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    database: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    size: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sha256: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    created: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    problem: Option<String>,
}

/// What to check: an intact backup (read it), or one the listing already
/// found damaged (not read again).
enum Target<'l> {
    Intact(&'l BackupRecord),
    Damaged(&'l crate::catalog::Damaged),
}

impl Target<'_> {
    fn when(&self) -> DateTime<Utc> {
        match self {
            Target::Intact(b) => b.created,
            Target::Damaged(d) => d.when,
        }
    }
    fn name(&self) -> &str {
        match self {
            Target::Intact(b) => &b.name,
            Target::Damaged(d) => &d.name,
        }
    }
    fn database(&self) -> Option<&str> {
        match self {
            Target::Intact(b) => Some(&b.database),
            Target::Damaged(d) => d.database(),
        }
    }
}

pub fn run(ctx: &Context, args: &VerifyArgs) -> Result<()> {
    let catalog = ctx.catalog();
    if args.all {
        if let Some(alias) = &args.database {
            ctx.config.alias(Some(alias))?;
        }
    }
    let listing = catalog.list()?;
    let targets = if args.all {
        every(&listing, args.database.as_deref(), args.newest)
    } else {
        let alias = match (&args.database, &args.input_path) {
            (None, Some(_)) => String::new(),
            (d, _) => ctx.config.alias(d.as_deref())?.to_string(),
        };
        if !alias.is_empty() {
            crate::metrics::note_database(&alias);
        }
        let backup = choose_backup(&listing, catalog.dir(), &alias, args.input_path.as_deref())?;
        crate::metrics::note_database(&backup.database);
        crate::metrics::note_size(backup.size);
        vec![Target::Intact(backup)]
    };
    if args.all && targets.is_empty() {
        // Nothing to check is a failure, as for `verify` of one database: a
        // wiped remote or a wrong db_backup_dir must not keep a nightly
        // `verify --all` green.
        return Err(exit::failed(format!(
            "no backups{} in {}: nothing was verified. Check remote and db_backup_dir in the config, or make a backup first",
            args.database
                .as_deref()
                .map(|d| format!(" of `{d}`"))
                .unwrap_or_default(),
            ctx.rclone.path(catalog.dir())
        )));
    }
    let mut report = Report {
        checked: Vec::new(),
        ok: 0,
        damaged: 0,
        errors: 0,
    };
    // The first error that is not damage, to exit with if nothing is damaged.
    let mut first_error: Option<anyhow::Error> = None;
    let total = targets.len();
    for (i, target) in targets.iter().enumerate() {
        crate::failpoint::reached("verify-next");
        if crate::interrupt::interrupted() {
            return Err(exit::interrupted_at(format!(
                "interrupted; verified {i} of {total} backups"
            )));
        }
        let checked = check(ctx, &catalog, target);
        let checked = match checked {
            Ok(c) => c,
            Err(e) if crate::interrupt::interrupted() => {
                return Err(exit::with_note(
                    e,
                    &format!("verified {i} of {total} backups before the interrupt"),
                ));
            }
            Err(e) => {
                // A single verify reports its error as before.
                if !args.all && !args.json {
                    return Err(e);
                }
                let c = failure(ctx, &catalog, target, &e);
                if c.status == "error" && first_error.is_none() {
                    first_error = Some(e);
                }
                c
            }
        };
        match checked.status {
            "ok" => report.ok += 1,
            "damaged" => report.damaged += 1,
            _ => report.errors += 1,
        }
        if !args.json {
            print_line(&checked)?;
        }
        report.checked.push(checked);
    }
    if args.json {
        json::print(&report)?;
    } else if args.all {
        tracing::info!(
            "verified {total} backup(s): {} ok, {} damaged, {} could not be read",
            report.ok,
            report.damaged,
            report.errors
        );
    }
    if report.damaged > 0 {
        let names: Vec<String> = report
            .checked
            .iter()
            .filter(|c| c.status == "damaged")
            .map(|c| printable(&c.name))
            .collect();
        let detail = match (&report.checked[..], args.all) {
            ([one], false) => one.problem.clone().unwrap_or_default(),
            _ => format!(
                "{} of {total} backups are damaged: {}. Restore another backup (rcbackup listbackups marks each), and remove the damaged ones by hand",
                names.len(),
                names.join(", ")
            ),
        };
        return Err(exit::integrity(detail));
    }
    if let Some(e) = first_error {
        if args.all {
            return Err(exit::failed(format!(
                "{} of {total} backups could not be read: the first: {e:#}",
                report.errors
            )));
        }
        return Err(e);
    }
    Ok(())
}

/// Every backup (of `database`), newest first, damaged ones included;
/// `newest`: only the newest of each database. A damaged backup whose
/// record cannot be read may belong to any database: it stays when it is
/// newer than the newest of one of them (then it may be that one's newest,
/// and a restore of the newest would refuse it, as `dbrestore` does).
fn every<'l>(listing: &'l Listing, database: Option<&'l str>, newest: bool) -> Vec<Target<'l>> {
    let mut targets: Vec<Target> = listing
        .backups
        .iter()
        .filter(|b| database.is_none_or(|d| b.database == d))
        .map(Target::Intact)
        .collect();
    let damaged: Vec<_> = match database {
        Some(d) => listing.damaged_of(d).collect(),
        None => listing.damaged.iter().collect(),
    };
    targets.extend(damaged.into_iter().map(Target::Damaged));
    targets.sort_by(|a, b| b.when().cmp(&a.when()).then_with(|| b.name().cmp(a.name())));
    if newest {
        let mut seen = std::collections::BTreeSet::new();
        let mut oldest_newest: Option<DateTime<Utc>> = None;
        for t in &targets {
            if let Some(db) = t.database() {
                if seen.insert(db) {
                    oldest_newest = Some(t.when());
                }
            }
        }
        let mut seen = std::collections::BTreeSet::new();
        targets.retain(|t| match t.database() {
            Some(db) => seen.insert(db.to_string()),
            None => oldest_newest.is_none_or(|w| t.when() > w),
        });
    }
    targets
}

fn check(ctx: &Context, catalog: &Catalog, target: &Target) -> Result<Checked> {
    let path = ctx.rclone.path(&catalog.data_path(target.name()));
    match target {
        Target::Damaged(d) => {
            let r = d.record.as_ref();
            Ok(Checked {
                status: "damaged",
                name: d.name.clone(),
                path,
                database: r.map(|r| r.database.clone()),
                size: r.map(|r| r.size),
                sha256: r.map(|r| r.sha256.clone()),
                created: r.map(|r| json::time(r.created)),
                problem: Some(d.problem.clone()),
            })
        }
        Target::Intact(backup) => {
            let source = Source {
                rclone: &ctx.rclone,
                path: catalog.data_path(&backup.name),
                record: backup,
                may_commit: None,
            };
            source.verify()?;
            Ok(intact(backup, path, "ok", None))
        }
    }
}

fn intact(
    b: &BackupRecord,
    path: String,
    status: &'static str,
    problem: Option<String>,
) -> Checked {
    Checked {
        status,
        name: b.name.clone(),
        path,
        database: Some(b.database.clone()),
        size: Some(b.size),
        sha256: Some(b.sha256.clone()),
        created: Some(json::time(b.created)),
        problem,
    }
}

/// A read that failed: damage (exit code 4's kind) or another error.
fn failure(ctx: &Context, catalog: &Catalog, target: &Target, e: &anyhow::Error) -> Checked {
    let status = if exit::code_for(e) == ExitCode::Integrity {
        "damaged"
    } else {
        "error"
    };
    let path = ctx.rclone.path(&catalog.data_path(target.name()));
    match target {
        Target::Intact(b) => intact(b, path, status, Some(format!("{e:#}"))),
        Target::Damaged(_) => unreachable!("a damaged target is not read"),
    }
}

fn print_line(c: &Checked) -> Result<()> {
    match (c.status, &c.problem) {
        ("ok", _) => crate::outln!(
            "{}: OK ({}, sha256 {})",
            printable(&c.name),
            human_size(c.size.unwrap_or(0)),
            c.sha256.as_deref().unwrap_or("")
        ),
        ("damaged", p) => crate::outln!(
            "{}: DAMAGED: {}",
            printable(&c.name),
            p.as_deref().unwrap_or("")
        ),
        (_, p) => crate::outln!(
            "{}: ERROR: {}",
            printable(&c.name),
            p.as_deref().unwrap_or("")
        ),
    }
    Ok(())
}
