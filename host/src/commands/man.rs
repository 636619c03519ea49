//! `rcbackup man`: the man page (roff), rendered by clap_mangen from the
//! command-line definition, so it documents whatever commands and options
//! this build has.

use std::path::Path;

use anyhow::Result;
use clap::CommandFactory;

use crate::cli::{Cli, ManArgs};
use crate::exit;
use crate::output;

/// The man page (roff) on standard output, or with `--dir` one page per
/// command written into that folder (the names printed, one a line).
pub fn run(a: &ManArgs) -> Result<()> {
    let cmd = Cli::command();
    match &a.dir {
        None => {
            let mut page = Vec::new();
            clap_mangen::Man::new(cmd)
                .render(&mut page)
                .map_err(|e| exit::failed(format!("cannot render the man page: {e}")))?;
            output::write(format_args!("{}", String::from_utf8_lossy(&page)))
        }
        Some(dir) => write_pages(cmd, dir),
    }
}

fn write_pages(cmd: clap::Command, dir: &Path) -> Result<()> {
    if !dir.is_dir() {
        return Err(exit::usage(format!(
            "--dir {}: {}; create it first (e.g. mkdir -p {})",
            dir.display(),
            if dir.exists() {
                "is not a folder"
            } else {
                "does not exist"
            },
            dir.display()
        )));
    }
    let mut cmd = cmd.disable_help_subcommand(true);
    cmd.build();
    let mut written = Vec::new();
    page_tree(cmd, dir, &mut written)?;
    for file in written {
        crate::outln!("{}", file.display());
    }
    Ok(())
}

/// Writes the page of `cmd` (`rcbackup.1`, `rcbackup-policy-test.1`, as
/// clap_mangen names them), then those of its subcommands.
fn page_tree(cmd: clap::Command, dir: &Path, written: &mut Vec<std::path::PathBuf>) -> Result<()> {
    let man = clap_mangen::Man::new(cmd.clone());
    let file = dir.join(man.get_filename());
    let mut page = Vec::new();
    man.render(&mut page).map_err(|e| {
        exit::failed(format!(
            "cannot render the man page {}: {e}",
            file.display()
        ))
    })?;
    std::fs::write(&file, page)
        .map_err(|e| exit::failed(format!("cannot write {}: {e}", file.display())))?;
    written.push(file);
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        page_tree(sub.clone(), dir, written)?;
    }
    Ok(())
}
