//! What a command prints as its result goes to standard output through
//! here. Writing never panics: a closed pipe (`rcbackup listbackups | head -1`),
//! a closed descriptor or a full disk becomes an ordinary error with exit
//! code 1, reported once on stderr. Commands print only after their work is
//! done, so a failing output never interrupts a backup's commit.

use std::fmt::Display;
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Result;

use crate::exit;

/// Writes `text` and a newline to stdout, and flushes.
pub fn line(text: impl Display) -> Result<()> {
    write(format_args!("{text}\n"))
}

static STDOUT_CLOSED: AtomicBool = AtomicBool::new(false);

/// Called by `main` when descriptor 1 was closed at start (Rust then puts
/// /dev/null there): results would vanish, so writing them is an error.
pub fn mark_stdout_closed() {
    STDOUT_CLOSED.store(true, Ordering::SeqCst);
}

/// Writes formatted text to stdout, and flushes.
pub fn write(args: std::fmt::Arguments) -> Result<()> {
    if STDOUT_CLOSED.load(Ordering::SeqCst) {
        return Err(exit::failed(
            "cannot write the result: standard output is closed",
        ));
    }
    let mut out = std::io::stdout().lock();
    out.write_fmt(args)
        .and_then(|_| out.flush())
        .map_err(|e| exit::failed(format!("cannot write the result to standard output: {e}")))
}

/// Writes a line to stderr, ignoring failure: a message for people has
/// nowhere else to go when stderr is closed.
pub fn note(text: impl Display) {
    // Above the live progress line, if one is drawn.
    crate::progress::suspend(|| {
        let mut err = std::io::stderr().lock();
        let _ = writeln!(err, "{text}");
        let _ = err.flush();
    })
}

/// `println!` for results: writes through [`write`] and returns early with
/// its error (the calling function returns `anyhow::Result`).
#[macro_export]
macro_rules! outln {
    ($($arg:tt)*) => {
        $crate::output::write(format_args!("{}\n", format_args!($($arg)*)))?
    };
}

/// `eprintln!` that never panics.
#[macro_export]
macro_rules! errln {
    ($($arg:tt)*) => {
        $crate::output::note(format_args!($($arg)*))
    };
}
