//! Progress of a long step (a dump streaming out, a backup read back, a
//! media transfer), shown as people and log shippers expect it:
//! - on a terminal (stderr is a tty), without `-q` and with text logs: one
//!   live line drawn by indicatif, cleared when the step ends, before any
//!   result is printed; log lines written meanwhile go above it
//!   ([`suspend`]), never into it;
//! - otherwise (cron, Kubernetes, `--log-format json`), without `-q`: an
//!   info log event every interval (60 s; `RCBACKUP_PROGRESS_INTERVAL=SECONDS`)
//!   with the same figures, as its message and as fields;
//! - with `-q`: nothing.
//!
//! Counting costs one relaxed atomic add per chunk (256 KiB on the dump and
//! restore paths); drawing and logging happen on the meter's own thread.

use std::io::{self, IsTerminal, Read, Write};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::commands::human_size;

/// How this run shows progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Off,
    /// A live line on the terminal.
    Bar,
    /// An info log event every so often.
    Log(Duration),
}

static MODE: OnceLock<Mode> = OnceLock::new();
const DEFAULT_INTERVAL: Duration = Duration::from_secs(60);
/// How often the live line is redrawn.
const REDRAW: Duration = Duration::from_millis(150);

/// Chooses the mode once per run, after logging is set up (a bad
/// `RCBACKUP_PROGRESS_INTERVAL` is a warning).
pub fn init(quiet: bool, json_logs: bool) {
    let interval = interval();
    let mode = if quiet {
        Mode::Off
    } else if !json_logs && io::stderr().is_terminal() {
        Mode::Bar
    } else {
        Mode::Log(interval)
    };
    let _ = MODE.set(mode);
}

/// The mode chosen by [`init`] (off when it was not called: a library use).
pub fn mode() -> Mode {
    MODE.get().copied().unwrap_or(Mode::Off)
}

fn interval() -> Duration {
    let Ok(v) = std::env::var("RCBACKUP_PROGRESS_INTERVAL") else {
        return DEFAULT_INTERVAL;
    };
    match v.trim().parse::<f64>() {
        Ok(s) if (0.1..=86_400.0).contains(&s) => Duration::from_secs_f64(s),
        _ => {
            tracing::warn!(
                "RCBACKUP_PROGRESS_INTERVAL is not a number of seconds from 0.1 to 86400; logging progress every 60 s"
            );
            DEFAULT_INTERVAL
        }
    }
}

/// The live line, while one is drawn.
static ACTIVE: Mutex<Option<ProgressBar>> = Mutex::new(None);

/// Runs `f` (a write to the terminal) with the live line, if any, taken
/// away and drawn again after: log lines and messages never mix with it.
pub fn suspend<R>(f: impl FnOnce() -> R) -> R {
    let bar = ACTIVE.lock().ok().and_then(|g| g.clone());
    match bar {
        Some(b) => b.suspend(f),
        None => f(),
    }
}

/// Stderr for the log: each write goes above the live line.
pub struct LogWriter;

impl Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        suspend(|| io::stderr().write(buf))
    }
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        suspend(|| io::stderr().write_all(buf))
    }
    fn flush(&mut self) -> io::Result<()> {
        io::stderr().flush()
    }
}

/// What a meter measures, which decides its figures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Task {
    /// Bytes out of the dump tool, and bytes stored (after compression).
    Dump,
    /// Bytes read of a known total.
    Read,
    /// Files and bytes of an rclone transfer, as rclone reports them.
    Transfer,
}

/// Which figure a [`Counter`] adds to.
#[derive(Debug, Clone, Copy)]
pub enum Figure {
    /// Dumped, read or transferred bytes.
    Bytes,
    /// Stored bytes of a dump.
    Stored,
}

struct Shared {
    what: String,
    task: Task,
    bytes: AtomicU64,
    stored: AtomicU64,
    total: AtomicU64,
    files: AtomicU64,
    files_total: AtomicU64,
    started: Instant,
    stop: Mutex<bool>,
    wake: Condvar,
}

/// Counts one step's bytes; shows them while it lives.
pub struct Meter {
    shared: Arc<Shared>,
    ticker: Option<JoinHandle<()>>,
    bar: Option<ProgressBar>,
}

impl Meter {
    /// A dump streaming out: bytes dumped and stored, no total.
    pub fn dump(what: impl Into<String>) -> Meter {
        Meter::start(what.into(), Task::Dump, 0)
    }

    /// A backup read back: `total` bytes stored.
    pub fn read(what: impl Into<String>, total: u64) -> Meter {
        Meter::start(what.into(), Task::Read, total)
    }

    /// An rclone transfer, fed by [`Meter::transfer_stats`].
    pub fn transfer(what: impl Into<String>) -> Meter {
        Meter::start(what.into(), Task::Transfer, 0)
    }

    fn start(what: String, task: Task, total: u64) -> Meter {
        let shared = Arc::new(Shared {
            what,
            task,
            bytes: AtomicU64::new(0),
            stored: AtomicU64::new(0),
            total: AtomicU64::new(total),
            files: AtomicU64::new(0),
            files_total: AtomicU64::new(0),
            started: Instant::now(),
            stop: Mutex::new(false),
            wake: Condvar::new(),
        });
        let (bar, every) = match mode() {
            Mode::Off => {
                return Meter {
                    shared,
                    ticker: None,
                    bar: None,
                }
            }
            Mode::Bar => {
                let bar = ProgressBar::with_draw_target(
                    (task == Task::Read).then_some(total.max(1)),
                    ProgressDrawTarget::stderr_with_hz(8),
                );
                let template = if task == Task::Read {
                    "{spinner} [{bar:20}] {wide_msg}"
                } else {
                    "{spinner} {wide_msg}"
                };
                if let Ok(style) = ProgressStyle::with_template(template) {
                    bar.set_style(style.progress_chars("=> "));
                }
                bar.set_message(figures(&shared).0);
                if let Ok(mut g) = ACTIVE.lock() {
                    *g = Some(bar.clone());
                }
                (Some(bar), REDRAW)
            }
            Mode::Log(every) => (None, every),
        };
        let ticker = {
            let shared = Arc::clone(&shared);
            let bar = bar.clone();
            // Its lines carry the span of the thread that made the meter
            // (backup-all's job{tenant database}), as that thread's do.
            let span = tracing::Span::current();
            std::thread::Builder::new()
                .name("progress".into())
                .spawn(move || span.in_scope(|| tick(&shared, bar.as_ref(), every)))
                .ok()
        };
        Meter {
            shared,
            ticker,
            bar,
        }
    }

    /// A counter that adds to `figure`, for [`Counting`].
    pub fn counter(&self, figure: Figure) -> Counter {
        Counter {
            shared: Arc::clone(&self.shared),
            figure,
        }
    }

    /// rclone's latest stats of a transfer: bytes and files done and due.
    pub fn transfer_stats(&self, bytes: u64, total: u64, files: u64, files_total: u64) {
        let s = &self.shared;
        s.bytes.store(bytes, Relaxed);
        s.total.store(total, Relaxed);
        s.files.store(files, Relaxed);
        s.files_total.store(files_total, Relaxed);
    }
}

impl Drop for Meter {
    fn drop(&mut self) {
        if let Ok(mut stop) = self.shared.stop.lock() {
            *stop = true;
        }
        self.shared.wake.notify_all();
        if let Some(t) = self.ticker.take() {
            let _ = t.join();
        }
        if let Some(bar) = self.bar.take() {
            if let Ok(mut g) = ACTIVE.lock() {
                *g = None;
            }
            bar.finish_and_clear();
        }
    }
}

/// The meter's thread: redraws the line, or logs every `every`, until the
/// meter is dropped.
fn tick(shared: &Shared, bar: Option<&ProgressBar>, every: Duration) {
    let Ok(mut stopped) = shared.stop.lock() else {
        return;
    };
    loop {
        // The meter may be dropped before this thread first waits: its
        // stop is a flag checked here, not only a wake-up.
        let Ok((g, _)) = shared
            .wake
            .wait_timeout_while(stopped, every, |stop| !*stop)
        else {
            return;
        };
        stopped = g;
        if *stopped {
            return;
        }
        let (text, f) = figures(shared);
        match bar {
            Some(b) => {
                if shared.task == Task::Read {
                    b.set_position(f.bytes.min(f.total));
                }
                b.set_message(text);
                b.tick();
            }
            None => log(shared.task, &text, &f),
        }
    }
}

/// The numbers behind one progress line.
struct Figures {
    bytes: u64,
    stored: u64,
    total: u64,
    files: u64,
    files_total: u64,
    elapsed: Duration,
    rate: u64,
    eta: Option<Duration>,
}

/// The line for people and its numbers; the same in both modes.
fn figures(s: &Shared) -> (String, Figures) {
    let elapsed = s.started.elapsed();
    let bytes = s.bytes.load(Relaxed);
    let total = s.total.load(Relaxed);
    let secs = elapsed.as_secs_f64();
    let rate = if secs > 0.0 {
        (bytes as f64 / secs) as u64
    } else {
        0
    };
    let eta = (rate > 0 && total > bytes).then(|| Duration::from_secs((total - bytes) / rate));
    let f = Figures {
        bytes,
        stored: s.stored.load(Relaxed),
        total,
        files: s.files.load(Relaxed),
        files_total: s.files_total.load(Relaxed),
        elapsed,
        rate,
        eta,
    };
    let percent = |done: u64, of: u64| {
        if of == 0 {
            100
        } else {
            (done.min(of) as u128 * 100 / of as u128) as u64
        }
    };
    let numbers = match s.task {
        Task::Dump => format!(
            "{} dumped, {} stored, {}/s, {} elapsed",
            human_size(f.bytes),
            human_size(f.stored),
            human_size(f.rate),
            clock(f.elapsed)
        ),
        Task::Read => format!(
            "{}% {} of {}, {}/s, {} elapsed{}",
            percent(f.bytes, f.total),
            human_size(f.bytes),
            human_size(f.total),
            human_size(f.rate),
            clock(f.elapsed),
            f.eta
                .map(|e| format!(", ETA {}", clock(e)))
                .unwrap_or_default()
        ),
        Task::Transfer => format!(
            "{} of {} files, {}% {} of {}, {}/s, {} elapsed",
            f.files,
            f.files_total,
            percent(f.bytes, f.total),
            human_size(f.bytes),
            human_size(f.total),
            human_size(f.rate),
            clock(f.elapsed)
        ),
    };
    // On a terminal the figures come first: a narrow one cuts the end.
    let text = match mode() {
        Mode::Bar => format!("{numbers} - {}", s.what),
        _ => format!("{}: {numbers}", s.what),
    };
    (text, f)
}

fn log(task: Task, text: &str, f: &Figures) {
    let elapsed_ms = f.elapsed.as_millis() as u64;
    match task {
        Task::Dump => tracing::info!(
            dumped_bytes = f.bytes,
            stored_bytes = f.stored,
            bytes_per_second = f.rate,
            elapsed_ms,
            "{text}"
        ),
        Task::Read => tracing::info!(
            read_bytes = f.bytes,
            total_bytes = f.total,
            bytes_per_second = f.rate,
            elapsed_ms,
            eta_seconds = f.eta.map(|e| e.as_secs()),
            "{text}"
        ),
        Task::Transfer => tracing::info!(
            transferred_bytes = f.bytes,
            total_bytes = f.total,
            files = f.files,
            total_files = f.files_total,
            bytes_per_second = f.rate,
            elapsed_ms,
            "{text}"
        ),
    }
}

/// 0:01:05
fn clock(d: Duration) -> String {
    let s = d.as_secs();
    format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
}

/// Adds to one figure of a meter.
#[derive(Clone)]
pub struct Counter {
    shared: Arc<Shared>,
    figure: Figure,
}

impl Counter {
    #[inline]
    pub fn add(&self, n: usize) {
        let slot = match self.figure {
            Figure::Bytes => &self.shared.bytes,
            Figure::Stored => &self.shared.stored,
        };
        slot.fetch_add(n as u64, Relaxed);
    }
}

/// A reader or writer that counts what passes through it.
pub struct Counting<T> {
    pub inner: T,
    counter: Counter,
}

impl<T> Counting<T> {
    pub fn new(inner: T, counter: Counter) -> Counting<T> {
        Counting { inner, counter }
    }
}

impl<T: Read> Read for Counting<T> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.counter.add(n);
        Ok(n)
    }
}

impl<T: Write> Write for Counting<T> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.counter.add(n);
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_what_passes_and_words_it() {
        let _ = MODE.set(Mode::Log(Duration::from_secs(60)));
        let started = Instant::now();
        let m = Meter::read("verifying x", 1000);
        let mut r = Counting::new(&[7u8; 250][..], m.counter(Figure::Bytes));
        let mut sink = Vec::new();
        std::io::copy(&mut r, &mut sink).unwrap();
        let (text, f) = figures(&m.shared);
        assert_eq!(f.bytes, 250);
        assert!(
            text.starts_with("verifying x: 25% 250 B of 1000 B, "),
            "{text}"
        );
        let d = Meter::dump("backing up `a`");
        let mut w = Counting::new(Vec::new(), d.counter(Figure::Stored));
        w.write_all(&[1; 2048]).unwrap();
        let (text, _) = figures(&d.shared);
        assert!(text.contains("0 B dumped, 2.0 KiB stored"), "{text}");
        assert_eq!(clock(Duration::from_secs(3725)), "1:02:05");
        drop((m, d));
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "a meter's end waited for its interval"
        );
    }

    #[test]
    fn a_transfer_takes_rclones_figures() {
        let m = Meter::transfer("media sync");
        m.transfer_stats(50, 200, 1, 4);
        let (text, _) = figures(&m.shared);
        assert!(
            text.starts_with("media sync: 1 of 4 files, 25% 50 B of 200 B"),
            "{text}"
        );
    }
}
