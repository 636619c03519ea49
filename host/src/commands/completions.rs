//! `rcbackup completions SHELL`: clap_complete's script, generated from the
//! command-line definition, so it completes whatever commands and options
//! this build has.

use anyhow::Result;
use clap::CommandFactory;

use crate::cli::{Cli, CompletionsArgs, Shell};
use crate::output;

/// The completion script for a shell, on standard output.
pub fn run(a: &CompletionsArgs) -> Result<()> {
    let mut cmd = Cli::command();
    let mut script = Vec::new();
    match a.shell {
        Shell::Bash => clap_complete::generate(
            clap_complete::Shell::Bash,
            &mut cmd,
            "rcbackup",
            &mut script,
        ),
        Shell::Zsh => {
            clap_complete::generate(clap_complete::Shell::Zsh, &mut cmd, "rcbackup", &mut script)
        }
        Shell::Fish => clap_complete::generate(
            clap_complete::Shell::Fish,
            &mut cmd,
            "rcbackup",
            &mut script,
        ),
    }
    output::write(format_args!("{}", String::from_utf8_lossy(&script)))
}
