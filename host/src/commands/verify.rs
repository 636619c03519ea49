//! `verify`: read a backup back and check it against its record.

use anyhow::Result;

use super::{choose_backup, human_size, Context};
use crate::cli::VerifyArgs;
use crate::engines::Source;

pub fn run(ctx: &Context, args: &VerifyArgs) -> Result<()> {
    let catalog = ctx.catalog();
    let listing = catalog.list()?;
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
    let source = Source {
        rclone: &ctx.rclone,
        path: catalog.data_path(&backup.name),
        record: backup,
    };
    source.verify()?;
    crate::outln!(
        "{}: OK ({}, sha256 {})",
        backup.name,
        human_size(backup.size),
        backup.sha256
    );
    Ok(())
}
