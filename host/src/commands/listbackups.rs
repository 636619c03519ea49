//! `listbackups`: every backup, newest first, with its status — and what
//! interrupted runs left — as a table or JSON.

use anyhow::Result;
use serde::Serialize;

use super::{human_size, Context};
use crate::catalog::Listing;
use crate::cli::{Cli, ListArgs};
use crate::config::{self, Config};
use crate::exit;
use crate::naming::printable;
use crate::policy::Policies;

/// One entry of `listbackups --json`. `status` says which fields are there:
/// `ok` and `damaged` describe backups (a damaged one has `problem`, and
/// lacks what its unreadable record would have said); `leftover` is what an
/// interrupted run left (`kind`, `last_seen`); `foreign` is a file in the
/// backup folder that rcbackup did not make and never touches.
#[derive(Serialize, Default)]
struct Row {
    status: &'static str,
    /// Empty only in an `error` row of `--all-tenants` (a tenant that could
    /// not be listed), which has `tenant` and `problem` instead.
    #[serde(skip_serializing_if = "String::is_empty")]
    name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    database: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tenant: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    engine: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    size: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    created: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sha256: Option<String>,
    /// "zstd", or "none" when stored as the dump tool wrote it.
    #[serde(skip_serializing_if = "Option::is_none")]
    compression: Option<&'static str>,
    #[serde(skip_serializing_if = "String::is_empty")]
    path: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    problem: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    kind: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    last_seen: Option<String>,
}

fn rfc3339(t: chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn rows(ctx: &Context, listing: &Listing, database: Option<&str>) -> Vec<Row> {
    let catalog = ctx.catalog();
    let mut rows: Vec<(chrono::DateTime<chrono::Utc>, Row)> = Vec::new();
    let backup_row = |status, b: &crate::record::BackupRecord| Row {
        status,
        name: b.name.clone(),
        database: Some(b.database.clone()),
        tenant: b.tenant.clone(),
        engine: Some(b.engine.as_str()),
        size: Some(b.size),
        created: Some(rfc3339(b.created)),
        sha256: Some(b.sha256.clone()),
        compression: Some(match b.compression {
            Some(c) => c.as_str(),
            None => "none",
        }),
        path: ctx.rclone.path(&catalog.data_path(&b.name)),
        ..Default::default()
    };
    for b in &listing.backups {
        if database.is_none_or(|d| b.database == d) {
            rows.push((b.created, backup_row("ok", b)));
        }
    }
    let damaged: Vec<_> = match database {
        Some(d) => listing.damaged_of(d).collect(),
        None => listing.damaged.iter().collect(),
    };
    for d in damaged {
        let row = match &d.record {
            Some(r) => backup_row("damaged", r),
            None => Row {
                status: "damaged",
                name: d.name.clone(),
                path: ctx.rclone.path(&catalog.data_path(&d.name)),
                ..Default::default()
            },
        };
        rows.push((
            d.when,
            Row {
                problem: Some(d.problem.clone()),
                ..row
            },
        ));
    }
    // Newest first, stable for equal times.
    rows.sort_by_key(|r| std::cmp::Reverse(r.0));
    let mut rows: Vec<Row> = rows.into_iter().map(|(_, r)| r).collect();
    for l in &listing.leftovers {
        rows.push(Row {
            status: "leftover",
            name: l.name.clone(),
            path: l
                .paths
                .iter()
                .map(|p| ctx.rclone.path(p))
                .collect::<Vec<_>>()
                .join(" "),
            kind: Some(l.kind.as_str()),
            last_seen: Some(rfc3339(l.last_seen)),
            ..Default::default()
        });
    }
    for entry in ctx.config.databases.values() {
        if database.is_some_and(|d| d != entry.alias()) {
            continue;
        }
        // A database whose url_env is unset has no local leftovers to show.
        let Ok(db) = entry.get() else { continue };
        for l in crate::engines::restore_leftovers(db) {
            rows.push(Row {
                status: "leftover",
                name: db.alias.clone(),
                database: Some(db.alias.clone()),
                path: l.path.display().to_string(),
                kind: Some("restore-staging"),
                last_seen: Some(rfc3339(l.last_seen)),
                ..Default::default()
            });
        }
    }
    for name in &listing.foreign {
        rows.push(Row {
            status: "foreign",
            name: name.clone(),
            path: ctx.rclone.path(&catalog.data_path(name)),
            ..Default::default()
        });
    }
    // On a tenant's run every entry names it (a record's own tenant wins).
    for r in &mut rows {
        if r.tenant.is_none() {
            r.tenant = ctx.config.tenant.clone();
        }
    }
    rows
}

/// A signal before a listing is printed stops it (exit 130, nothing on
/// stdout): whoever sent it must not take a listing for an answer.
pub(super) const NOTHING_LISTED: &str = "interrupted; nothing was listed";

pub fn run(ctx: &Context, args: &ListArgs) -> Result<()> {
    if args.media {
        return super::listmedia::run(ctx, args.json);
    }
    if let Some(alias) = &args.database {
        ctx.config.alias(Some(alias))?;
    }
    let catalog = ctx.catalog();
    let listing = catalog.list()?;
    let rows = rows(ctx, &listing, args.database.as_deref());
    crate::failpoint::reached("listed");
    crate::interrupt::stop_if_interrupted(NOTHING_LISTED)?;
    if args.json {
        crate::outln!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(());
    }
    print_table(ctx, &rows)
}

fn print_table(ctx: &Context, rows: &[Row]) -> Result<()> {
    let (backups, others): (Vec<&Row>, Vec<&Row>) = rows
        .iter()
        .partition(|r| r.status == "ok" || r.status == "damaged");
    if backups.is_empty() {
        crate::errln!("no backups in {}", ctx.rclone.path(ctx.catalog().dir()));
    } else {
        let names: Vec<String> = backups.iter().map(|r| printable(&r.name)).collect();
        let width = names.iter().map(|n| n.len()).max().unwrap_or(4).max(4);
        let db = |r: &Row| r.database.clone().unwrap_or_else(|| "?".into());
        let dbw = backups
            .iter()
            .map(|r| db(r).len())
            .max()
            .unwrap_or(8)
            .max(8);
        crate::outln!(
            "{:<width$}  {:<dbw$}  {:>10}  {:<20}  STATUS",
            "NAME",
            "DATABASE",
            "SIZE",
            "CREATED (UTC)"
        );
        for (r, name) in backups.iter().zip(&names) {
            let status = match &r.problem {
                Some(p) => format!("DAMAGED: {p}"),
                None => "ok".to_string(),
            };
            crate::outln!(
                "{:<width$}  {:<dbw$}  {:>10}  {:<20}  {status}",
                name,
                db(r),
                r.size.map(human_size).unwrap_or_else(|| "?".into()),
                r.created.as_deref().unwrap_or("?"),
            );
        }
    }
    let leftovers: Vec<&&Row> = others.iter().filter(|r| r.status == "leftover").collect();
    if !leftovers.is_empty() {
        crate::outln!(
            "\nleft by interrupted runs (`dbbackup --clean` removes each once untouched for {} h):",
            ctx.config.settings.abandoned_after.as_secs() / 3600
        );
        for r in leftovers {
            crate::outln!(
                "  {:<20}  {}  last touched {}",
                r.kind.unwrap_or_default(),
                printable(&r.path),
                r.last_seen.as_deref().unwrap_or("?")
            );
        }
    }
    let foreign: Vec<&&Row> = others.iter().filter(|r| r.status == "foreign").collect();
    if !foreign.is_empty() {
        crate::outln!(
            "\n{} file(s) without an integrity record (not made by rcbackup; never listed as backups or deleted):",
            foreign.len()
        );
        for r in foreign {
            crate::outln!("  {}", printable(&r.name));
        }
    }
    Ok(())
}

/// `listbackups --all-tenants`: the operator's view of every tenant's
/// backups (and the top level's own, when it has databases), each row
/// naming its tenant. A tenant whose config is broken or whose remote
/// cannot be listed is one `error` row; the others are still listed, and
/// the run exits 1 at the end. One rclone (server) per distinct rclone
/// binary, config and flags, as in backup-all.
pub fn run_all_tenants(cli: &Cli, args: &ListArgs) -> Result<()> {
    if cli.tenant.is_some() {
        return Err(exit::usage(
            "listbackups --all-tenants lists every tenant: leave out --tenant (or drop --all-tenants to list one tenant)",
        ));
    }
    let top = Config::load(&config::locate(cli.config.as_deref()))?;
    let mut units: Vec<(Option<String>, std::result::Result<Config, String>)> = Vec::new();
    if !top.databases.is_empty() || top.tenants.is_empty() {
        units.push((None, Ok(top.clone())));
    }
    for (name, entry) in top.tenants.entries() {
        units.push((
            Some(name.to_string()),
            entry.cloned().map_err(str::to_string),
        ));
    }
    // A misspelt -d lists nothing anywhere: a usage error, as it is for
    // one config, not an empty table.
    if let Some(alias) = args.database.as_deref() {
        let known = units
            .iter()
            .any(|(_, c)| c.as_ref().is_ok_and(|c| c.databases.contains_key(alias)));
        if !known {
            return Err(exit::usage(format!(
                "no tenant (nor the top level) has a database `{}`; run `rcbackup listbackups --all-tenants` without -d to see the databases there are",
                printable(alias)
            )));
        }
    }
    let mut servers = crate::rclone::Servers::default();
    let mut all: Vec<Row> = Vec::new();
    let mut failed = 0usize;
    for (tenant, config) in units {
        let listed = config.map_err(anyhow::Error::msg).and_then(|config| {
            let ctx = Context {
                rclone: servers.for_settings(&config.settings)?,
                policies: Policies::builtin(),
                config,
                // A listing takes no lock.
                lock_wait: std::time::Duration::ZERO,
            };
            let listing = ctx.catalog().list()?;
            let mut rows = rows(&ctx, &listing, args.database.as_deref());
            for r in &mut rows {
                r.tenant = tenant.clone();
            }
            Ok(rows)
        });
        match listed {
            Ok(rows) => all.extend(rows),
            Err(e) => {
                failed += 1;
                let why = crate::render_error(&e);
                if !args.json {
                    crate::errln!(
                        "tenant {}: cannot list its backups: {why}",
                        tenant.as_deref().map_or("(top level)".into(), printable)
                    );
                }
                all.push(Row {
                    status: "error",
                    tenant: tenant.clone(),
                    problem: Some(why),
                    ..Default::default()
                });
            }
        }
    }
    crate::interrupt::stop_if_interrupted(NOTHING_LISTED)?;
    if args.json {
        crate::outln!("{}", serde_json::to_string_pretty(&all)?);
    } else {
        print_all_tenants(&all)?;
    }
    if failed > 0 {
        return Err(exit::failed(format!(
            "{failed} of the config's tenants could not be listed ({}); the others are listed",
            if args.json {
                "see their `error` entries"
            } else {
                "see above"
            }
        )));
    }
    Ok(())
}

fn print_all_tenants(rows: &[Row]) -> Result<()> {
    let backups: Vec<&Row> = rows
        .iter()
        .filter(|r| r.status == "ok" || r.status == "damaged")
        .collect();
    if backups.is_empty() {
        crate::errln!("no backups in any tenant");
        return Ok(());
    }
    // A tenant file's name may hold a newline: never a forged row.
    let tenant = |r: &Row| r.tenant.as_deref().map_or("-".into(), printable);
    let db = |r: &Row| r.database.clone().unwrap_or_else(|| "?".into());
    let names: Vec<String> = backups.iter().map(|r| printable(&r.name)).collect();
    let width = names.iter().map(|n| n.len()).max().unwrap_or(4).max(4);
    let tw = backups
        .iter()
        .map(|r| tenant(r).len())
        .max()
        .unwrap_or(6)
        .max(6);
    let dbw = backups
        .iter()
        .map(|r| db(r).len())
        .max()
        .unwrap_or(8)
        .max(8);
    crate::outln!(
        "{:<tw$}  {:<width$}  {:<dbw$}  {:>10}  {:<20}  STATUS",
        "TENANT",
        "NAME",
        "DATABASE",
        "SIZE",
        "CREATED (UTC)"
    );
    for (r, name) in backups.iter().zip(&names) {
        let status = match &r.problem {
            Some(p) => format!("DAMAGED: {p}"),
            None => "ok".to_string(),
        };
        crate::outln!(
            "{:<tw$}  {:<width$}  {:<dbw$}  {:>10}  {:<20}  {status}",
            tenant(r),
            name,
            db(r),
            r.size.map(human_size).unwrap_or_else(|| "?".into()),
            r.created.as_deref().unwrap_or("?"),
        );
    }
    Ok(())
}
