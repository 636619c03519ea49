//! The y/N confirmation before a restore.

use std::io::{BufRead, IsTerminal, Write};

use anyhow::Result;

use crate::exit;

/// Asks `question [y/N]` on the terminal. Without a terminal on stdin it
/// refuses at once rather than hang or guess.
pub fn confirm(question: &str) -> Result<()> {
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        return Err(exit::refused(format!(
            "{question} needs an answer, but stdin is not a terminal; pass --noinput to go ahead without asking"
        )));
    }
    eprint!("{question} [y/N] ");
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    stdin.lock().read_line(&mut answer)?;
    match answer.trim().to_ascii_lowercase().as_str() {
        "y" | "yes" => Ok(()),
        _ => Err(exit::refused("restore cancelled; nothing was changed")),
    }
}
