//! rcbackup: stream database dumps into any storage rclone reaches, restore
//! them by streaming back, and let WebAssembly policies make the decisions
//! that differ between users.

pub mod catalog;
pub mod cli;
pub mod commands;
pub mod compression;
pub mod config;
pub mod database;
pub mod engines;
pub mod exit;
pub mod failpoint;
pub mod interrupt;
pub mod media;
pub mod naming;
pub mod output;
pub mod pipeline;
pub mod policy;
pub mod process;
pub mod prompt;
pub mod rclone;
pub mod record;
pub mod retention;

use exit::ExitCode;

/// Runs one command line and returns the exit code; errors are printed here,
/// once, for people.
pub fn run(cli: cli::Cli) -> ExitCode {
    init_logging(cli.verbose, cli.quiet);
    interrupt::install();
    let result = commands::run(cli);
    tracing::debug!(peak_rss_kib = peak_rss_kib(), "done");
    match result {
        Ok(()) => ExitCode::Success,
        Err(e) if interrupt::interrupted() => {
            output::note(format_args!("rcbackup: interrupted: {}", render_error(&e)));
            ExitCode::Interrupted
        }
        Err(e) => {
            let code = exit::code_for(&e);
            output::note(format_args!("rcbackup: error: {}", render_error(&e)));
            code
        }
    }
}

/// The chain of an error, outermost first, without repeating a message that
/// the next one already contains.
fn render_error(e: &anyhow::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    for cause in e.chain() {
        let s = cause.to_string();
        if parts.last().is_some_and(|p| p.contains(&s)) {
            continue;
        }
        parts.push(s);
    }
    parts.join(": ")
}

/// This process's own peak resident set (children not included); the
/// benchmark reads it from the debug log.
fn peak_rss_kib() -> i64 {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage fills the struct it is given.
    unsafe {
        libc::getrusage(libc::RUSAGE_SELF, usage.as_mut_ptr());
        usage.assume_init().ru_maxrss
    }
}

fn init_logging(verbose: u8, quiet: bool) {
    let level = match (quiet, verbose) {
        (true, _) => "warn",
        (false, 0) => "info",
        (false, 1) => "debug",
        _ => "trace",
    };
    // -q and -v win; RCBACKUP_LOG is the finer control when neither is given.
    let mut bad_env = None;
    let from_env = if quiet || verbose > 0 {
        None
    } else {
        match std::env::var("RCBACKUP_LOG") {
            Ok(v) if !v.trim().is_empty() => match tracing_subscriber::EnvFilter::try_new(&v) {
                Ok(f) => Some(f),
                Err(e) => {
                    bad_env = Some(e.to_string());
                    None
                }
            },
            _ => None,
        }
    };
    let filter = from_env
        .unwrap_or_else(|| tracing_subscriber::EnvFilter::new(format!("rcbackup={level},warn")));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Its default reports a failed log write with eprintln!, which
        // panics when stderr is a closed pipe (`rcbackup -v ... 2>&1 | head`).
        .log_internal_errors(false)
        .with_target(false)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    // -vv shows seconds since start, to see where a run spends its time.
    let _ = if verbose >= 2 {
        builder
            .with_timer(tracing_subscriber::fmt::time::uptime())
            .try_init()
    } else {
        builder.without_time().try_init()
    };
    if let Some(why) = bad_env {
        tracing::warn!(
            "RCBACKUP_LOG is not a log filter rcbackup understands ({}); logging at info. Use e.g. RCBACKUP_LOG=debug or RCBACKUP_LOG=rcbackup=trace",
            naming::printable(&why)
        );
    }
}
