//! `listbackups`: complete backups, newest first, as a table or JSON.

use anyhow::Result;
use serde::Serialize;

use super::{human_size, Context};
use crate::cli::ListArgs;

#[derive(Serialize)]
struct Row<'a> {
    name: &'a str,
    database: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    tenant: Option<&'a str>,
    engine: &'a str,
    size: u64,
    created: String,
    sha256: &'a str,
    path: String,
}

pub fn run(ctx: &Context, args: &ListArgs) -> Result<()> {
    if args.media {
        return super::listmedia::run(ctx, args.json);
    }
    if let Some(alias) = &args.database {
        ctx.config.database(Some(alias))?;
    }
    let catalog = ctx.catalog();
    let listing = catalog.list()?;
    let rows: Vec<Row> = listing
        .backups
        .iter()
        .filter(|b| args.database.as_deref().is_none_or(|d| b.database == d))
        .map(|b| Row {
            name: &b.name,
            database: &b.database,
            tenant: b.tenant.as_deref(),
            engine: b.engine.as_str(),
            size: b.size,
            created: b.created.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            sha256: &b.sha256,
            path: ctx.rclone.path(&catalog.data_path(&b.name)),
        })
        .collect();
    if args.json {
        crate::outln!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(());
    }
    if rows.is_empty() {
        crate::errln!("no backups in {}", ctx.rclone.path(catalog.dir()));
        return Ok(());
    }
    let width = rows.iter().map(|r| r.name.len()).max().unwrap_or(4).max(4);
    let dbw = rows
        .iter()
        .map(|r| r.database.len())
        .max()
        .unwrap_or(8)
        .max(8);
    crate::outln!(
        "{:<width$}  {:<dbw$}  {:>10}  CREATED (UTC)",
        "NAME",
        "DATABASE",
        "SIZE"
    );
    for r in &rows {
        crate::outln!(
            "{:<width$}  {:<dbw$}  {:>10}  {}",
            r.name,
            r.database,
            human_size(r.size),
            r.created
        );
    }
    Ok(())
}
