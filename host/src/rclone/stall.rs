//! Reads from rclone that get no byte for too long: a remote that stopped
//! answering (a server that hangs, a network that drops packets without a
//! reset) must end a read with an error naming the remote, not hold the
//! run forever.
//!
//! What is bounded is a *stall*: the time one read waits for its next byte
//! (the answer's headers, then each chunk of the body), never the length of
//! a transfer, and never the time the caller spends between reads (a slow
//! restore tool). Bounded: object reads (backups, records) and listings, in
//! both ways of reaching rclone; not uploads, moves and deletes, whose
//! answer may rightly take long (a server-side copy of a large object).
//!
//! The limit is rclone's own idle timeout on the remote's connections
//! (`--timeout` in `rclone_flags`, else `RCLONE_TIMEOUT`, else rclone's
//! 5 minutes; never less than those 5 minutes) plus [`GRACE`]: rclone's own
//! timeout, whose error says more, comes first, and this one catches what
//! rclone does not bound. `--timeout 0` (rclone waits forever) leaves reads
//! unbounded too. A test build honours `RCBACKUP_TEST_STALL_SECS` (the
//! limit in seconds) so that a test need not wait minutes.
//!
//! After a stall the remote is taken as gone for the rest of the run: a
//! later bounded read fails at once, saying so, instead of waiting the
//! limit again (a `verify --all` of hundreds of backups would otherwise
//! wait that long for each). So is a bounded read that rclone itself gave
//! up on after no byte for its own idle limit (`--timeout`): the usual way
//! a silent remote ends a read, since rclone's limit comes first.

use std::io::{self, Read};
use std::os::fd::AsRawFd;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// rclone's default `--timeout`: its idle limit on the remote's connections.
const RCLONE_DEFAULT: Duration = Duration::from_secs(300);
/// How much longer than rclone's own limit a read may wait.
pub const GRACE: Duration = Duration::from_secs(60);

/// The stall limit of a run's reads, and whether one has stalled.
#[derive(Clone, Debug)]
pub struct Stall {
    /// `None`: reads wait as long as rclone does (`--timeout 0`).
    pub limit: Option<Duration>,
    /// Whether the limit is a deadline for an answer (`config check`)
    /// rather than the idle time of a read: only the words differ.
    answer: bool,
    /// rclone's own idle limit (`--timeout`): a read that failed after no
    /// byte for this long was given up by rclone on a silent remote.
    rclone_idle: Option<Duration>,
    remote: String,
    /// Set once a read stalled: how (`no data for 360 s`).
    seen: Arc<Mutex<Option<String>>>,
}

impl Stall {
    /// The limit for `remote` with `flags` (`rclone_flags`).
    pub fn new(remote: &str, flags: &[String]) -> Stall {
        let env = std::env::var("RCLONE_TIMEOUT").ok();
        Stall {
            limit: limit_for(flags, env.as_deref()),
            rclone_idle: rclone_idle(flags, env.as_deref()),
            answer: false,
            remote: remote.to_string(),
            seen: Arc::default(),
        }
    }

    /// A deadline of `limit` for each answer: no byte within it is "the
    /// remote did not answer within N s".
    pub fn deadline(remote: &str, limit: Duration) -> Stall {
        Stall {
            limit: Some(limit),
            rclone_idle: None,
            answer: true,
            remote: remote.to_string(),
            seen: Arc::default(),
        }
    }

    /// Err(words) when a read of this run has stalled already: the remote
    /// is not asked again.
    pub fn check(&self) -> Result<(), String> {
        match &*self.seen.lock().unwrap_or_else(|e| e.into_inner()) {
            Some(how) => Err(format!(
                "not tried: the remote {} stopped answering earlier in this run ({how})",
                self.remote,
            )),
            None => Ok(()),
        }
    }

    fn secs(&self) -> u64 {
        self.limit.map_or(0, |l| l.as_secs())
    }

    /// Notes that a read stalled; its words, naming the remote.
    pub fn stalled(&self) -> String {
        let secs = self.secs();
        let words = if self.answer {
            format!("the remote {} did not answer within {secs} s", self.remote)
        } else {
            format!(
                "no data from the remote {} for {secs} s: it stopped answering",
                self.remote
            )
        };
        let how = if self.answer {
            format!("no answer within {secs} s")
        } else {
            format!("no data for {secs} s")
        };
        self.mark(how, !self.answer);
        words
    }

    /// After a bounded read failed with `quiet` since its last byte (or
    /// its start): when that is rclone's own idle limit or more, rclone
    /// gave up on a silent remote, and the rest of the run's reads fail at
    /// once. Whether it was so.
    pub fn judge(&self, quiet: Duration) -> bool {
        match self.rclone_idle {
            Some(idle) if quiet >= idle => {
                self.mark(
                    format!("no data for {} s, then rclone gave up", quiet.as_secs()),
                    true,
                );
                true
            }
            _ => false,
        }
    }

    fn mark(&self, how: String, warn: bool) {
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        if seen.is_none() {
            if warn {
                tracing::warn!(
                    "the remote {} stopped answering ({how}); the rest of this run's reads of it fail at once",
                    self.remote
                );
            }
            *seen = Some(how);
        }
    }

    /// [`Stall::stalled`] as the error of a read.
    pub fn stalled_io(&self) -> io::Error {
        io::Error::new(io::ErrorKind::TimedOut, Stalled(self.stalled()))
    }
}

/// The error of a read that stalled (inside an `io::Error`).
#[derive(Debug)]
struct Stalled(String);

impl std::fmt::Display for Stalled {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Stalled {}

/// Whether `e` is a read's stall (its text then says which remote).
pub fn is_stall(e: &io::Error) -> bool {
    e.get_ref().is_some_and(|x| x.is::<Stalled>())
}

/// The limit for `flags`, with `env` the value of `RCLONE_TIMEOUT` (which
/// rclone reads when the flag is absent).
fn limit_for(flags: &[String], env: Option<&str>) -> Option<Duration> {
    #[cfg(debug_assertions)]
    if let Some(secs) = std::env::var("RCBACKUP_TEST_STALL_SECS")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
    {
        return Some(Duration::from_secs(secs));
    }
    let rclone = rclone_idle(flags, env)?;
    Some(rclone.max(RCLONE_DEFAULT) + GRACE)
}

/// rclone's own idle limit with `flags` and `RCLONE_TIMEOUT` = `env`:
/// `None` for `--timeout 0` (none).
fn rclone_idle(flags: &[String], env: Option<&str>) -> Option<Duration> {
    let given = timeout_flag(flags).or_else(|| env.map(str::to_string));
    match given.as_deref().map(str::trim) {
        None => Some(RCLONE_DEFAULT),
        // rclone refuses a value it cannot read: it never gets this far.
        Some(v) => match go_duration(v) {
            Some(d) if d.is_zero() => None,
            Some(d) => Some(d),
            None => Some(RCLONE_DEFAULT),
        },
    }
}

/// The value of the last `--timeout` in `flags` (`--timeout 10m` or
/// `--timeout=10m`), as rclone would take it.
fn timeout_flag(flags: &[String]) -> Option<String> {
    let mut found = None;
    let mut it = flags.iter();
    while let Some(f) = it.next() {
        if f == "--timeout" {
            found = it.next().cloned();
        } else if let Some(v) = f.strip_prefix("--timeout=") {
            found = Some(v.to_string());
        }
    }
    found
}

/// A duration as rclone reads one: Go's `1h30m`, `90s`, `2.5m`, `500ms`,
/// rclone's `d`, `w`, `M`, `y`, a bare number of seconds, or `off`
/// (zero: no limit).
fn go_duration(text: &str) -> Option<Duration> {
    if text == "off" {
        return Some(Duration::ZERO);
    }
    if let Ok(secs) = text.parse::<f64>() {
        return Duration::try_from_secs_f64(secs).ok();
    }
    let mut total = 0f64;
    let mut rest = text;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let n: f64 = rest[..num_len].parse().ok()?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let secs = match &rest[..unit_len] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            "d" => 86400.0,
            "w" => 7.0 * 86400.0,
            "M" => 30.0 * 86400.0,
            "y" => 365.0 * 86400.0,
            _ => return None,
        };
        total += n * secs;
        rest = &rest[unit_len..];
    }
    Duration::try_from_secs_f64(total).ok()
}

/// A pipe from an rclone process whose every read waits at most the stall
/// limit for its first byte.
pub struct PipeWatch<R> {
    inner: R,
    stall: Stall,
    /// The last byte's time (or the start's).
    last: Instant,
    /// An object's download: its end after a silence of rclone's idle
    /// limit is rclone giving up ([`Stall::judge`]). Not for a listing,
    /// whose output may rightly come only at its end.
    judge_end: bool,
}

impl<R> PipeWatch<R> {
    pub fn new(inner: R, stall: Stall, judge_end: bool) -> PipeWatch<R> {
        PipeWatch {
            inner,
            stall,
            last: Instant::now(),
            judge_end,
        }
    }

    /// How long since the last byte (or the start).
    pub fn quiet(&self) -> Duration {
        self.last.elapsed()
    }
}

impl<R: Read + AsRawFd> Read for PipeWatch<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if let Some(limit) = self.stall.limit {
            wait_readable(self.inner.as_raw_fd(), limit).map_err(|e| match e {
                None => self.stall.stalled_io(),
                Some(e) => e,
            })?;
        }
        match self.inner.read(buf) {
            Ok(0) if self.judge_end => {
                self.stall.judge(self.quiet());
                Ok(0)
            }
            Ok(n) => {
                if n > 0 {
                    self.last = Instant::now();
                }
                Ok(n)
            }
            Err(e) => {
                self.stall.judge(self.quiet());
                Err(e)
            }
        }
    }
}

/// Waits until `fd` can be read (data, or its end) for at most `limit`:
/// `Err(None)` when the time ran out.
fn wait_readable(fd: std::os::fd::RawFd, limit: Duration) -> Result<(), Option<io::Error>> {
    let until = Instant::now() + limit;
    loop {
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(None);
        }
        let mut pfd = libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        let ms = left.as_millis().clamp(1, i32::MAX as u128) as i32;
        // SAFETY: one pollfd that lives across the call.
        match unsafe { libc::poll(&mut pfd, 1, ms) } {
            0 => continue,
            n if n > 0 => return Ok(()),
            _ => {
                let e = io::Error::last_os_error();
                if e.kind() != io::ErrorKind::Interrupted {
                    return Err(Some(e));
                }
                // A signal: the run stops if it was told to (as a read
                // from the server does), else waits on.
                if crate::interrupt::interrupted() {
                    return Err(Some(io::Error::other("interrupted")));
                }
            }
        }
    }
}

/// The body of a server's answer: its reads are bounded by the request's
/// per-read timeout; one that runs out becomes the stall's error.
pub struct BodyWatch {
    inner: Box<dyn Read + Send>,
    stall: Stall,
    /// The last byte's time (or the answer's headers').
    last: Instant,
}

impl BodyWatch {
    pub fn new(inner: Box<dyn Read + Send>, stall: Stall) -> BodyWatch {
        BodyWatch {
            inner,
            stall,
            last: Instant::now(),
        }
    }
}

impl Read for BodyWatch {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.inner.read(buf) {
            Ok(n) => {
                if n > 0 {
                    self.last = Instant::now();
                }
                Ok(n)
            }
            Err(e) if timed_out(&e) => Err(self.stall.stalled_io()),
            Err(e) => {
                self.stall.judge(self.last.elapsed());
                Err(e)
            }
        }
    }
}

/// Whether a body read failed on ureq's per-read timeout.
fn timed_out(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::TimedOut
        || e.get_ref()
            .and_then(|x| x.downcast_ref::<ureq::Error>())
            .is_some_and(|u| matches!(u, ureq::Error::Timeout(_)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flags(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn durations_as_rclone_reads_them() {
        assert_eq!(go_duration("5m"), Some(Duration::from_secs(300)));
        assert_eq!(go_duration("1h30m"), Some(Duration::from_secs(5400)));
        assert_eq!(go_duration("90"), Some(Duration::from_secs(90)));
        assert_eq!(go_duration("1.5s"), Some(Duration::from_millis(1500)));
        assert_eq!(go_duration("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(go_duration("2d"), Some(Duration::from_secs(172800)));
        assert_eq!(go_duration("0"), Some(Duration::ZERO));
        assert_eq!(go_duration("off"), Some(Duration::ZERO));
        assert_eq!(go_duration("5x"), None);
        assert_eq!(go_duration("m"), None);
        assert_eq!(go_duration("inf"), None);
        assert_eq!(go_duration("-5"), None);
    }

    #[test]
    fn limit_follows_a_longer_rclone_timeout() {
        if std::env::var_os("RCBACKUP_TEST_STALL_SECS").is_some() {
            return;
        }
        let default = Some(RCLONE_DEFAULT + GRACE);
        assert_eq!(limit_for(&[], None), default);
        // Shorter than rclone's default: rclone's own error comes first anyway.
        assert_eq!(limit_for(&flags(&["--timeout", "30s"]), None), default);
        assert_eq!(
            limit_for(&flags(&["--timeout", "20m"]), None),
            Some(Duration::from_secs(1200) + GRACE)
        );
        assert_eq!(
            limit_for(&flags(&["--retries", "1", "--timeout=1h"]), None),
            Some(Duration::from_secs(3600) + GRACE)
        );
        assert_eq!(
            limit_for(&[], Some("30m")),
            Some(Duration::from_secs(1800) + GRACE)
        );
        // The flag wins over the environment, as in rclone.
        assert_eq!(
            limit_for(&flags(&["--timeout", "1m"]), Some("30m")),
            default
        );
        assert_eq!(limit_for(&flags(&["--timeout", "0"]), None), None);
        assert_eq!(limit_for(&flags(&["--timeout", "nonsense"]), None), default);
    }

    #[test]
    fn a_failure_after_rclones_own_limit_marks_the_remote_gone() {
        let stall = Stall::new("dav:", &flags(&["--timeout", "2s"]));
        assert!(!stall.judge(Duration::from_secs(1)));
        assert!(stall.check().is_ok());
        assert!(stall.judge(Duration::from_secs(2)));
        assert_eq!(
            stall.check().unwrap_err(),
            "not tried: the remote dav: stopped answering earlier in this run (no data for 2 s, then rclone gave up)"
        );
        // `--timeout 0`: rclone never gives up on a silence.
        let unbounded = Stall::new("dav:", &flags(&["--timeout", "0"]));
        assert!(!unbounded.judge(Duration::from_secs(86400)));
    }

    #[test]
    fn a_pipe_without_data_stalls_and_the_next_read_is_refused() {
        let stall = Stall::deadline("dav:", Duration::from_millis(200));
        let (read, write) = std::io::pipe().unwrap();
        let mut watched = PipeWatch::new(read, stall.clone(), true);
        let started = Instant::now();
        let e = watched.read(&mut [0u8; 16]).unwrap_err();
        assert!(started.elapsed() >= Duration::from_millis(200));
        assert!(is_stall(&e), "{e}");
        assert!(e
            .to_string()
            .starts_with("the remote dav: did not answer within"));
        assert!(stall.check().unwrap_err().starts_with("not tried: "));
        // Data (or its end) in time: read as usual.
        drop(write);
        assert_eq!(watched.read(&mut [0u8; 16]).unwrap(), 0);
    }
}
