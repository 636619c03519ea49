//! rcbackup: stream database dumps into any storage rclone reaches, restore
//! them by streaming back, and let WebAssembly policies make the decisions
//! that differ between users.

pub mod adopt;
pub mod catalog;
pub mod cli;
pub mod commands;
pub mod compression;
pub mod config;
pub mod database;
pub mod dump_slots;
pub mod engines;
pub mod exit;
pub mod failpoint;
pub mod interrupt;
pub mod lock;
pub mod media;
pub mod metrics;
pub mod naming;
pub mod output;
pub mod pipeline;
pub mod policy;
pub mod process;
pub mod progress;
pub mod prompt;
pub mod random;
pub mod rclone;
pub mod record;
pub mod retention;
pub mod shard;

use exit::ExitCode;

/// Runs one command line and returns the exit code; errors are printed here,
/// once, for people.
pub fn run(cli: cli::Cli) -> ExitCode {
    let json = cli.log_format == cli::LogFormat::Json;
    // backup-all runs many dumps at once: no live line (it could show only
    // one of them), the log's progress lines instead.
    let many = matches!(cli.command, cli::Commands::BackupAll(_));
    // A tenant's run: every log line carries `tenant=NAME` (text) or
    // `"span": {"tenant": NAME, "name": "tenant"}` (JSON), from the span
    // below or, on other threads, from the log's format. Only a valid
    // name (an invalid one is refused when the config loads); backup-all's
    // --tenant is a pattern, and its jobs have spans of their own.
    let tenant = cli
        .tenant
        .clone()
        .filter(|t| !many && config::check_tenant_name(t).is_ok());
    init_logging(cli.verbose, cli.quiet, json, tenant.clone());
    progress::init(cli.quiet, json || many);
    interrupt::install();
    let metrics = metrics::file(&cli).zip(metrics::target(&cli.command));
    let started = std::time::Instant::now();
    let span = tenant
        .as_deref()
        .map(|t| tracing::error_span!("tenant", tenant = %t).entered());
    let result = commands::run(cli);
    tracing::debug!(peak_rss_kib = peak_rss_kib(), "done");
    let (code, report) = match result {
        Ok(()) => (ExitCode::Success, None),
        Err(e) if interrupt::interrupted() => (
            ExitCode::Interrupted,
            Some(("interrupted", render_error(&e))),
        ),
        Err(e) => (exit::code_for(&e), Some(("error", render_error(&e)))),
    };
    if let Some((path, target)) = metrics {
        metrics::after_run(&path, target, code as i32, started.elapsed());
    }
    drop(span);
    if let Some((what, message)) = report {
        if json {
            // The closing error is a log line too, for log shippers.
            let tenant = match &tenant {
                Some(t) => format!(r#","tenant":{}"#, serde_json::Value::from(t.as_str())),
                None => String::new(),
            };
            output::note(format_args!(
                r#"{{"timestamp":"{}","level":"ERROR","message":{},"exit_code":{}{tenant}}}"#,
                chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
                serde_json::Value::from(format!("{what}: {message}")),
                code as i32
            ));
        } else {
            // As on every other line of a tenant's run.
            let tenant = tenant.map_or(String::new(), |t| format!("tenant={t}: "));
            output::note(format_args!("rcbackup: {what}: {tenant}{message}"));
        }
    }
    code
}

/// The chain of an error, outermost first, without repeating a message that
/// the next one already contains.
pub fn render_error(e: &anyhow::Error) -> String {
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

/// A log line's format that names the run's tenant on lines logged outside
/// its span (threads a command starts, which do not inherit the span):
/// text gets `tenant{tenant=NAME}: ` after the level, JSON the same
/// `"span"` a line inside it has.
struct TenantFormat<F> {
    inner: F,
    tenant: Option<String>,
}

impl<S, N, F> tracing_subscriber::fmt::FormatEvent<S, N> for TenantFormat<F>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    N: for<'a> tracing_subscriber::fmt::FormatFields<'a> + 'static,
    F: tracing_subscriber::fmt::FormatEvent<S, N>,
{
    fn format_event(
        &self,
        ctx: &tracing_subscriber::fmt::FmtContext<'_, S, N>,
        mut writer: tracing_subscriber::fmt::format::Writer<'_>,
        event: &tracing::Event<'_>,
    ) -> std::fmt::Result {
        let Some(tenant) = self
            .tenant
            .as_deref()
            .filter(|_| ctx.lookup_current().is_none())
        else {
            return self.inner.format_event(ctx, writer, event);
        };
        let mut line = String::new();
        self.inner.format_event(
            ctx,
            tracing_subscriber::fmt::format::Writer::new(&mut line),
            event,
        )?;
        let trimmed = line.trim_end();
        if trimmed.starts_with('{') && trimmed.ends_with('}') {
            let at = trimmed.len() - 1;
            line.insert_str(
                at,
                &format!(r#","span":{{"tenant":"{tenant}","name":"tenant"}}"#),
            );
        } else {
            let level = event.metadata().level().as_str();
            let at = line
                .find(level)
                .map(|i| i + level.len())
                .and_then(|i| line[i..].find(' ').map(|j| i + j + 1))
                .unwrap_or(0);
            line.insert_str(at, &format!("tenant{{tenant={tenant}}}: "));
        }
        writer.write_str(&line)
    }
}

fn init_logging(verbose: u8, quiet: bool, json: bool, tenant: Option<String>) {
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
        // Log lines go above the live progress line, never into it.
        .with_writer(|| progress::LogWriter)
        // Its default reports a failed log write with eprintln!, which
        // panics when stderr is a closed pipe (`rcbackup -v ... 2>&1 | head`).
        .log_internal_errors(false)
        .with_target(false);
    // JSON: one object a line, the event's fields beside timestamp (RFC 3339,
    // UTC), level and message.
    // -vv shows seconds since start, to see where a run spends its time.
    let _ = if json {
        builder
            .with_ansi(false)
            .json()
            .flatten_event(true)
            // backup-all's jobs: their tenant and database (`"span":
            // {"tenant": ..., "database": ..., "name": "job"}`); a --tenant
            // run's `{"tenant": ..., "name": "tenant"}`; no key outside a
            // span.
            .with_current_span(true)
            .with_span_list(false)
            .map_event_format(|inner| TenantFormat { inner, tenant })
            .try_init()
    } else if verbose >= 2 {
        builder
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .with_timer(tracing_subscriber::fmt::time::uptime())
            .map_event_format(|inner| TenantFormat { inner, tenant })
            .try_init()
    } else {
        builder
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .without_time()
            .map_event_format(|inner| TenantFormat { inner, tenant })
            .try_init()
    };
    if let Some(why) = bad_env {
        tracing::warn!(
            "RCBACKUP_LOG is not a log filter rcbackup understands ({}); logging at info. Use e.g. RCBACKUP_LOG=debug or RCBACKUP_LOG=rcbackup=trace",
            naming::printable(&why)
        );
    }
}
