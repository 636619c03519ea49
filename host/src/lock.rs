//! Lease locks on the remote: one series (a database's backups, or the
//! media backup) is backed up, pruned or restored by one run at a time,
//! whichever machine or process it runs on.
//!
//! ```text
//! <remote>/<db_backup_dir>/.rcbackup/locks/db-<alias>/<id>.json
//! <remote>/<db_backup_dir>/.rcbackup/locks/media/<id>.json
//! ```
//! (The catalog reads only `records/`, `partial/` and `claims/` of
//! `.rcbackup`, so a lock is never a backup, a leftover or damage; a media
//! sync never reaches db_backup_dir, which config keeps apart from it.)
//!
//! Object stores have no atomic create through rclone, so taking a lock is
//! restic's dance: write our lock object (`held: false`), list the folder,
//! and read every other lock. One that is neither stale nor ours stops us:
//! a `held` one is a holder (we delete ours and wait, up to `--lock-wait`,
//! then fail with exit 5 naming it); one that is not yet `held` is a run
//! that wrote at the same moment (a collision: both delete theirs and try
//! again after a random delay, a bounded number of times, even with
//! `--lock-wait 0`). Seeing no other, we hold the lock and mark ours `held`.
//! Two writers cannot both see none: each wrote before it listed, so the
//! later lister sees the earlier's object.
//!
//! A lock is *stale* when its lease ran out by our clock, or when it was
//! written on this host by a process that no longer exists (`kill(pid, 0)`
//! says ESRCH): a run SIGKILLed here frees its series at once, one on
//! another host when its lease ends. Clocks of the machines sharing a
//! remote are assumed to agree to well within the lease (NTP).
//!
//! While held, a thread renews the lease every [`RENEW_EVERY`] (a third of
//! [`LEASE`]). If our object is gone (someone ran `unlock --force`) or the
//! lease ran out before a renewal succeeded, the lock is *lost*: the command
//! calls [`Lock::check`] before each step that commits (publishing, each
//! deletion, writing into a database) and fails instead. The lock is a
//! value: dropping it stops the renewal and deletes the object, on success,
//! error and interrupt alike; a SIGKILL leaves it to the rules above. Many
//! locks can live in one process (backup-all): nothing here is global.

use std::fmt;
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::exit;
use crate::failpoint;
use crate::rclone::Rclone;

/// How long a lock lasts without renewal: 15 minutes. Renewed every five
/// minutes (a failed renewal retried every [`RETRY_RENEWAL`]), so a remote
/// that fails for ten minutes, or clocks that differ by a few minutes, do
/// not free a live lock; short enough that a holder that died on another
/// machine (an OOM-killed pod) blocks its series for a quarter of an hour
/// at most. (restic: 30 minutes, refreshed every 5.)
pub const LEASE: Duration = Duration::from_secs(15 * 60);
/// How often a held lock is renewed.
pub const RENEW_EVERY: Duration = Duration::from_secs(5 * 60);
/// How soon a failed renewal is tried again.
const RETRY_RENEWAL: Duration = Duration::from_secs(30);
/// How many times two runs that wrote at the same moment back off and try
/// again before the run gives up (exit 5).
const MAX_COLLISIONS: u32 = 12;
/// How many times a run looks again at an object that does not read as a
/// lock before it gives up (one being written reads at the next look).
const UNREADABLE_RETRIES: u32 = 2;
/// The lock object's format.
const VERSION: u32 = 1;
/// The longest `--lock-wait`: a week. A run that waits longer is not
/// waiting for another run any more (and a wait beyond what a clock can
/// add must fail as a usage error, not overflow).
const MAX_WAIT: Duration = Duration::from_secs(7 * 24 * 3600);
/// The largest object in a lock folder that is read as a lock.
const MAX_LOCK_BYTES: i64 = 64 * 1024;

/// What a lock protects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Series {
    /// The backups of one database alias.
    Db(String),
    /// The media backup.
    Media,
}

impl Series {
    /// The folder name under `.rcbackup/locks/`.
    pub fn key(&self) -> String {
        match self {
            Series::Db(alias) => format!("db-{alias}"),
            Series::Media => "media".to_string(),
        }
    }

    /// The series of a lock folder's name.
    pub fn from_key(key: &str) -> Option<Series> {
        match key {
            "media" => Some(Series::Media),
            _ => key
                .strip_prefix("db-")
                .filter(|a| !a.is_empty())
                .map(|a| Series::Db(a.to_string())),
        }
    }

    /// The `unlock` options that name it.
    pub fn unlock_args(&self) -> String {
        match self {
            Series::Db(alias) => format!("-d {alias}"),
            Series::Media => "--media".to_string(),
        }
    }
}

impl fmt::Display for Series {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Series::Db(alias) => write!(f, "database `{alias}`"),
            Series::Media => f.write_str("the media backup"),
        }
    }
}

/// The lock folder of all series.
pub fn locks_dir(db_backup_dir: &str) -> String {
    format!("{db_backup_dir}/.rcbackup/locks")
}

/// The lock folder of one series.
pub fn series_dir(db_backup_dir: &str, series: &Series) -> String {
    format!("{}/{}", locks_dir(db_backup_dir), series.key())
}

/// The lock object (JSON).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct LockInfo {
    pub version: u32,
    pub id: String,
    pub command: String,
    pub host: String,
    pub pid: u32,
    pub tenant: Option<String>,
    pub series: String,
    pub created: DateTime<Utc>,
    pub expires: DateTime<Utc>,
    /// False while its run checks for others; true once it holds the lock.
    #[serde(default)]
    pub held: bool,
    /// Which pids `pid` is one of ([`pid_space`]): a lock without it is
    /// never judged by its pid, only by its lease.
    #[serde(default)]
    pub pid_space: Option<String>,
}

impl LockInfo {
    /// Why it no longer counts, or `None` if it is live.
    pub fn stale(&self, now: DateTime<Utc>, this_host: &str) -> Option<String> {
        if self.expires <= now {
            return Some(format!("its lease ran out at {}", time(self.expires)));
        }
        // The host name alone does not say the pid is one of ours: two
        // containers (or machines) may share a name, each with its own pids.
        let same_pids = self.pid_space.is_some() && self.pid_space.as_deref() == pid_space();
        if self.host == this_host && same_pids && !pid_alive(self.pid) {
            return Some(format!("process {} no longer runs on this host", self.pid));
        }
        None
    }

    /// "dbbackup on host web1 (pid 42, tenant acme), since ..., lease until ..."
    pub fn holder(&self) -> String {
        format!(
            "`{}` on host {} (pid {}{}), running since {}, lease until {}",
            self.command,
            self.host,
            self.pid,
            self.tenant
                .as_deref()
                .map(|t| format!(", tenant {t}"))
                .unwrap_or_default(),
            time(self.created),
            time(self.expires)
        )
    }
}

fn time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// Whether a process with this pid exists on this host.
pub fn pid_alive(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    if pid <= 0 {
        return false;
    }
    // SAFETY: kill with signal 0 only checks that the process exists.
    let r = unsafe { libc::kill(pid, 0) };
    r == 0 || std::io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH)
}

/// This boot of this machine's kernel and this process's pid namespace
/// (`<boot id>/<pid namespace>`): two processes see the same pids exactly
/// when they share both. `None` where /proc does not say.
pub fn pid_space() -> Option<&'static str> {
    static SPACE: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    SPACE
        .get_or_init(|| {
            let boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").ok()?;
            let ns = std::fs::read_link("/proc/self/ns/pid").ok()?;
            Some(format!("{}/{}", boot.trim(), ns.to_str()?))
        })
        .as_deref()
}

/// This machine's host name.
pub fn host_name() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: gethostname writes at most buf.len() bytes into buf.
    let r = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if r != 0 {
        return "unknown".to_string();
    }
    let end = buf.iter().position(|b| *b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

/// `--lock-wait`: `0`, `90` (seconds), `30s`, `5m`, `1h`.
pub fn parse_wait(s: &str) -> std::result::Result<Duration, String> {
    let s = s.trim();
    let (digits, unit) = match s.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => s.split_at(i),
        None => (s, "s"),
    };
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("`{s}` is not a duration: give seconds, or e.g. 30s, 5m, 1h"))?;
    let secs = match unit {
        "s" => Some(n),
        "m" => n.checked_mul(60),
        "h" => n.checked_mul(3600),
        _ => None,
    }
    .ok_or_else(|| format!("`{s}` is not a duration: give seconds, or e.g. 30s, 5m, 1h"))?;
    if secs > MAX_WAIT.as_secs() {
        return Err(format!(
            "`{s}` is longer than rcbackup waits for a lock: at most {}h (a week)",
            MAX_WAIT.as_secs() / 3600
        ));
    }
    Ok(Duration::from_secs(secs))
}

/// One lock object found in a folder.
#[derive(Debug)]
pub struct Found {
    /// Its path relative to the remote.
    pub path: String,
    /// `None`: it does not read as a lock.
    pub info: Option<LockInfo>,
    /// When the object was last written (for one that does not read).
    pub mod_time: DateTime<Utc>,
}

/// Every lock object of one series' folder.
pub fn read_series(rclone: &Rclone, dir: &str) -> Result<Vec<Found>> {
    let entries = rclone.list_files(dir)?.unwrap_or_default();
    let mut found = Vec::new();
    for e in entries {
        if !e.name.ends_with(".json") {
            continue;
        }
        let path = format!("{dir}/{}", e.name);
        // A lock object is a few hundred bytes: anything much larger is not
        // one, and is not read into memory to find that out.
        if e.size > MAX_LOCK_BYTES {
            found.push(Found {
                info: None,
                path,
                mod_time: e.mod_time,
            });
            continue;
        }
        // Gone since the listing: its run released it. (Some remotes
        // answer a read of a file deleted meanwhile with an error, not
        // "not found": a second listing tells.) One that is still there
        // but cannot be read (a WebDAV server dropping the connection
        // while another run rewrites it) is unreadable, as a half-written
        // one is: looked at again before it counts as garbage.
        let bytes = match rclone.cat(&path) {
            Ok(Some(b)) => b,
            Ok(None) => continue,
            Err(e) => match exists(rclone, &path) {
                Ok(false) => continue,
                Ok(true) => {
                    tracing::debug!("cannot read the lock object {path} now: {e:#}");
                    Vec::new()
                }
                Err(_) => return Err(e),
            },
        };
        found.push(Found {
            info: serde_json::from_slice(&bytes).ok(),
            path,
            mod_time: e.mod_time,
        });
    }
    Ok(found)
}

/// Removes the stale locks of a series, as its new holder: what killed
/// runs left (`unlock` does the same by hand). A holder whose lease ran
/// out and is still working finds its lock gone and stops (see
/// [`Lock::check`]). Best effort: a failure leaves them for the next run.
fn remove_stale(rclone: &Rclone, found: &[Found], own: &str, host: &str) {
    let now = Utc::now();
    for f in found {
        let why = match &f.info {
            Some(i) if i.id == own => continue,
            Some(i) => i.stale(now, host),
            None => (now - f.mod_time >= chrono::Duration::from_std(LEASE).expect("lease"))
                .then(|| "it does not read as a lock and is older than a lease".to_string()),
        };
        let Some(why) = why else { continue };
        match rclone.deletefile(&f.path) {
            Ok(()) => tracing::info!(
                "removed a stale lock ({why}): {}",
                f.info
                    .as_ref()
                    .map_or_else(|| rclone.path(&f.path), LockInfo::holder)
            ),
            Err(e) => tracing::debug!("could not remove the stale lock {}: {e:#}", f.path),
        }
    }
}

/// What one look at the folder said.
enum Seen {
    Free,
    /// An object that does not read as a lock, younger than a lease (being
    /// written): its path, which the run names if it gives up.
    Collision(String),
    /// Another run wrote at the same moment and does not hold the lock
    /// yet (or was killed between its two writes): named if the run gives
    /// up.
    Contended(LockInfo),
    Held(LockInfo),
}

fn judge(found: &[Found], own: &str, now: DateTime<Utc>, host: &str) -> Seen {
    let mut collision = None;
    let mut unreadable = None;
    for f in found {
        let Some(info) = &f.info else {
            // Being written right now (a backend that shows a file while it
            // is written), or garbage: garbage older than a lease is stale.
            if now - f.mod_time < chrono::Duration::from_std(LEASE).expect("lease") {
                unreadable.get_or_insert_with(|| f.path.clone());
            }
            continue;
        };
        if info.id == own || info.stale(now, host).is_some() {
            continue;
        }
        if info.held {
            return Seen::Held(info.clone());
        }
        collision.get_or_insert_with(|| info.clone());
    }
    match (collision, unreadable) {
        (None, None) => Seen::Free,
        (Some(other), _) => Seen::Contended(other),
        (None, Some(path)) => Seen::Collision(path),
    }
}

/// What the renewal thread and [`Lock::check`] share.
struct Shared {
    rclone: Rclone,
    path: String,
    series: Series,
    tenant: Option<String>,
    state: Mutex<State>,
    wake: Condvar,
}

struct State {
    info: LockInfo,
    /// Why the lock was lost, once it is.
    lost: Option<String>,
    stop: bool,
}

/// A held lease lock: dropping it releases it.
pub struct Lock {
    shared: Arc<Shared>,
    renewer: Option<JoinHandle<()>>,
}

/// What a lock is taken for and by whom.
pub struct Request<'a> {
    pub rclone: &'a Rclone,
    pub db_backup_dir: &'a str,
    pub series: Series,
    /// The command that takes it: `dbbackup`, `prune`, ...
    pub command: &'a str,
    pub tenant: Option<&'a str>,
    /// How long to wait for a holder to finish.
    pub wait: Duration,
}

impl Lock {
    /// Takes the lock, waiting up to `wait` for a holder; fails with exit 5
    /// naming the holder when it cannot.
    pub fn acquire(req: Request<'_>) -> Result<Lock> {
        let dir = series_dir(req.db_backup_dir, &req.series);
        let host = host_name();
        let deadline = Instant::now() + req.wait;
        let mut collisions = 0;
        let mut waiting_logged = false;
        loop {
            if crate::interrupt::interrupted() {
                return Err(exit::interrupted_at(
                    "interrupted while taking a lock; nothing was changed",
                ));
            }
            // A new name each attempt: a reader that listed our withdrawn
            // object never finds it back in its place.
            let id = crate::random::hex(12).ok_or_else(|| {
                exit::failed("cannot read /dev/urandom for a lock id; check that /dev is mounted")
            })?;
            let path = format!("{dir}/{id}.json");
            let now = Utc::now();
            let mut info = LockInfo {
                version: VERSION,
                id: id.clone(),
                command: req.command.to_string(),
                host: host.clone(),
                pid: std::process::id(),
                tenant: req.tenant.map(str::to_string),
                series: req.series.key(),
                created: now,
                expires: now + chrono::Duration::from_std(LEASE).expect("lease"),
                held: false,
                pid_space: pid_space().map(str::to_string),
            };
            // The first write is often the run's first touch of the remote:
            // its failure must read as the remote's, not a riddle about locks.
            let taking = || {
                format!(
                    "could not take the lock on {} (the first write of this run to the remote); nothing was changed",
                    req.series
                )
            };
            write(req.rclone, &path, &info)
                .inspect_err(|_| {
                    let _ = req.rclone.deletefile(&path);
                })
                .with_context(taking)?;
            let found = read_series(req.rclone, &dir)
                .inspect_err(|_| {
                    let _ = req.rclone.deletefile(&path);
                })
                .with_context(taking)?;
            let seen = judge(&found, &id, Utc::now(), &host);
            // An object still unreadable at the third look is not one being
            // written: no point in a dozen more.
            let retries = match &seen {
                Seen::Collision(_) => UNREADABLE_RETRIES,
                _ => MAX_COLLISIONS,
            };
            match seen {
                Seen::Free => {
                    info.held = true;
                    if let Err(e) = write(req.rclone, &path, &info) {
                        let _ = req.rclone.deletefile(&path);
                        return Err(e);
                    }
                    tracing::debug!("took the lock on {} ({path})", req.series);
                    remove_stale(req.rclone, &found, &id, &host);
                    let lock = Lock::start(Shared {
                        rclone: req.rclone.clone(),
                        path,
                        series: req.series,
                        tenant: req.tenant.map(str::to_string),
                        state: Mutex::new(State {
                            info,
                            lost: None,
                            stop: false,
                        }),
                        wake: Condvar::new(),
                    });
                    failpoint::reached("locked");
                    return Ok(lock);
                }
                // Bounded, even with --lock-wait 0; within --lock-wait, as
                // long as it lasts.
                Seen::Collision(_) | Seen::Contended(_)
                    if collisions < retries || Instant::now() < deadline =>
                {
                    req.rclone.deletefile(&path)?;
                    collisions += 1;
                    tracing::debug!(
                        "another run wrote a lock on {} at the same moment; trying again",
                        req.series
                    );
                    std::thread::sleep(jitter(200, 1500));
                }
                Seen::Contended(other) => {
                    req.rclone.deletefile(&path)?;
                    let tenant = tenant_flag(req.tenant);
                    return Err(exit::locked(format!(
                        "{} is being locked by another run again and again, which never came to hold it: {}; nothing was changed. Try again later; if that run is gone (killed while it took the lock), remove its lock with `rcbackup{tenant} unlock {} --force`",
                        req.series,
                        other.holder(),
                        req.series.unlock_args()
                    )));
                }
                Seen::Collision(garbage) => {
                    req.rclone.deletefile(&path)?;
                    let tenant = tenant_flag(req.tenant);
                    return Err(exit::locked(format!(
                        "{} cannot be locked: {} in its lock folder does not read as a lock, and an object being written looks the same; nothing was changed. It is taken for stale {} minutes after it was written; if no rcbackup run is writing it, remove it now with `rcbackup{tenant} unlock {} --force`",
                        req.series,
                        req.rclone.path(&garbage),
                        LEASE.as_secs() / 60,
                        req.series.unlock_args()
                    )));
                }
                Seen::Held(holder) => {
                    req.rclone.deletefile(&path)?;
                    if Instant::now() >= deadline {
                        return Err(held_error(&req.series, req.tenant, &holder, req.wait));
                    }
                    if !waiting_logged {
                        tracing::info!(
                            "{} is locked by {}; waiting up to {}s (--lock-wait)",
                            req.series,
                            holder.holder(),
                            req.wait.as_secs()
                        );
                        waiting_logged = true;
                    }
                    let left = deadline.saturating_duration_since(Instant::now());
                    sleep_interruptibly(
                        jitter(1000, 2000).min(left.max(Duration::from_millis(50))),
                    );
                }
            }
        }
    }

    fn start(shared: Shared) -> Lock {
        let shared = Arc::new(shared);
        let for_thread = Arc::clone(&shared);
        let renewer = std::thread::Builder::new()
            .name("lock-renewal".into())
            .spawn(move || renew_until_stopped(&for_thread))
            .ok();
        Lock { shared, renewer }
    }

    /// The series it locks.
    pub fn series(&self) -> &Series {
        &self.shared.series
    }

    /// The lock object as last written.
    pub fn info(&self) -> LockInfo {
        self.shared.state.lock().expect("lock state").info.clone()
    }

    /// Fails (exit 5) if the lock was lost: its object is gone (someone ran
    /// `unlock --force`) or its lease ran out. Looks at the remote, so it
    /// is called before each step that commits, not in loops over bytes.
    pub fn check(&self) -> Result<()> {
        let lost = self.lost_reason();
        if let Some(why) = lost {
            return Err(self.lost_error(&why));
        }
        match exists(&self.shared.rclone, &self.shared.path) {
            Ok(true) => Ok(()),
            Ok(false) => {
                let why = "its lock object was removed (by `rcbackup unlock --force`, or by another run that took it for stale: this run was stopped or frozen past its lease)".to_string();
                self.mark_lost(&why);
                Err(self.lost_error(&why))
            }
            Err(e) => Err(e.context(format!(
                "could not check the lock on {}; nothing more was changed",
                self.shared.series
            ))),
        }
    }

    /// [`Lock::check`] for a step that changes only this machine (a SQLite
    /// restore's swap, `mediarestore --mirror`'s deletions): a remote that
    /// does not answer is no loss there. No other run may take the series
    /// before this run's lease ends, and the step needs no remote; a lock
    /// object seen gone, or a lease run out, still stops it.
    pub fn check_for_local_step(&self) -> Result<()> {
        match self.check() {
            Err(e)
                if self.lost_reason().is_none() && exit::code_for(&e) != exit::ExitCode::Locked =>
            {
                tracing::warn!(
                    "could not look at the lock on {} ({e:#}); its lease runs until {}, so this run goes on",
                    self.shared.series,
                    time(self.shared.state.lock().expect("lock state").info.expires)
                );
                Ok(())
            }
            other => other,
        }
    }

    fn lost_reason(&self) -> Option<String> {
        let state = self.shared.state.lock().expect("lock state");
        if let Some(why) = &state.lost {
            return Some(why.clone());
        }
        (state.info.expires <= Utc::now()).then(|| {
            format!(
                "its lease ran out at {} before it could be renewed",
                time(state.info.expires)
            )
        })
    }

    fn mark_lost(&self, why: &str) {
        let mut state = self.shared.state.lock().expect("lock state");
        state.lost.get_or_insert_with(|| why.to_string());
    }

    fn lost_error(&self, why: &str) -> anyhow::Error {
        exit::locked(format!(
            "the lock on {} was lost: {why}; another run may be working on it, so this run stopped before changing more",
            self.shared.series
        ))
    }
}

impl Drop for Lock {
    fn drop(&mut self) {
        {
            let mut state = self.shared.state.lock().expect("lock state");
            state.stop = true;
        }
        self.shared.wake.notify_all();
        if let Some(t) = self.renewer.take() {
            let _ = t.join();
        }
        let lost = self.shared.state.lock().expect("lock state").lost.is_some();
        // Our object (our own id) is deleted even when the lock was lost:
        // it is no one else's. Shielded: an interrupt must not stop it.
        let _shield = crate::interrupt::shield();
        match self.shared.rclone.deletefile(&self.shared.path) {
            Ok(()) => tracing::debug!("released the lock on {}", self.shared.series),
            Err(e) if !lost => tracing::warn!(
                "could not remove the lock object {} ({e:#}); it expires by itself, or remove it with `rcbackup{} unlock {}`",
                self.shared.rclone.path(&self.shared.path),
                tenant_flag(self.shared.tenant.as_deref()),
                self.shared.series.unlock_args()
            ),
            Err(_) => {}
        }
    }
}

fn renew_until_stopped(shared: &Shared) {
    let mut next = RENEW_EVERY;
    loop {
        {
            let state = shared.state.lock().expect("lock state");
            let (state, _) = shared
                .wake
                .wait_timeout_while(state, next, |s| !s.stop)
                .expect("lock state");
            if state.stop || state.lost.is_some() {
                return;
            }
        }
        next = match renew(shared) {
            Ok(()) => RENEW_EVERY,
            Err(Gone) => return,
            Err(Retry) => RETRY_RENEWAL,
        };
    }
}

enum RenewError {
    Gone,
    Retry,
}
use RenewError::{Gone, Retry};

fn renew(shared: &Shared) -> std::result::Result<(), RenewError> {
    let mut info = shared.state.lock().expect("lock state").info.clone();
    let fail = |why: String| {
        let mut state = shared.state.lock().expect("lock state");
        if state.info.expires <= Utc::now() {
            tracing::warn!(
                "the lock on {} was lost: its lease ran out while renewal failed ({why})",
                shared.series
            );
            state
                .lost
                .get_or_insert(format!("its lease ran out while renewal failed ({why})"));
            return Gone;
        }
        tracing::warn!(
            "could not renew the lock on {} ({why}); trying again",
            shared.series
        );
        Retry
    };
    match exists(&shared.rclone, &shared.path) {
        Ok(true) => {}
        Ok(false) => {
            let why = "its lock object was removed (by `rcbackup unlock --force`, or by another run that took it for stale: this run was stopped or frozen past its lease)";
            tracing::warn!("the lock on {} was lost: {why}", shared.series);
            let mut state = shared.state.lock().expect("lock state");
            state.lost.get_or_insert(why.to_string());
            return Err(Gone);
        }
        Err(e) => return Err(fail(format!("{e:#}"))),
    }
    info.expires = Utc::now() + chrono::Duration::from_std(LEASE).expect("lease");
    match write(&shared.rclone, &shared.path, &info) {
        Ok(()) => {
            shared.state.lock().expect("lock state").info = info;
            Ok(())
        }
        Err(e) => Err(fail(format!("{e:#}"))),
    }
}

/// Whether the object `path` is there: by listing its folder, which every
/// remote answers alike for a missing file.
fn exists(rclone: &Rclone, path: &str) -> Result<bool> {
    let (dir, name) = path.rsplit_once('/').unwrap_or(("", path));
    Ok(rclone
        .list_files(dir)?
        .is_some_and(|entries| entries.iter().any(|e| e.name == name)))
}

fn write(rclone: &Rclone, path: &str, info: &LockInfo) -> Result<()> {
    let body = serde_json::to_vec(info).expect("a lock serialises");
    rclone.put(path, &body)
}

fn held_error(
    series: &Series,
    tenant: Option<&str>,
    holder: &LockInfo,
    waited: Duration,
) -> anyhow::Error {
    let tenant = tenant_flag(tenant);
    exit::locked(format!(
        "{series} is locked by another run: {}{}; nothing was changed. Wait for it (or pass --lock-wait, e.g. --lock-wait 10m); if that run is gone (its process is dead), remove its lock with `rcbackup{tenant} unlock {} --force`",
        holder.holder(),
        if waited.is_zero() {
            String::new()
        } else {
            format!(" (waited {}s)", waited.as_secs())
        },
        series.unlock_args()
    ))
}

/// ` --tenant NAME` for a command line the user is told to run, or
/// nothing for the top level.
pub fn tenant_flag(tenant: Option<&str>) -> String {
    tenant.map(|t| format!(" --tenant {t}")).unwrap_or_default()
}

/// A random pause between `lo` and `hi` milliseconds.
fn jitter(lo: u64, hi: u64) -> Duration {
    let r = crate::random::bytes::<2>().map_or(0, |b| u16::from_le_bytes(b) as u64);
    Duration::from_millis(lo + r % (hi - lo).max(1))
}

/// Sleeps, waking early when the run is interrupted.
fn sleep_interruptibly(d: Duration) {
    let until = Instant::now() + d;
    while Instant::now() < until && !crate::interrupt::interrupted() {
        std::thread::sleep(Duration::from_millis(50).min(until - Instant::now()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(id: &str, host: &str, pid: u32, held: bool, expires_in: i64) -> LockInfo {
        let now = Utc::now();
        LockInfo {
            version: VERSION,
            id: id.into(),
            command: "dbbackup".into(),
            host: host.into(),
            pid,
            tenant: None,
            series: "db-default".into(),
            created: now,
            expires: now + chrono::Duration::seconds(expires_in),
            held,
            pid_space: pid_space().map(str::to_string),
        }
    }

    fn found(i: LockInfo) -> Found {
        Found {
            path: format!("x/{}.json", i.id),
            info: Some(i),
            mod_time: Utc::now(),
        }
    }

    #[test]
    fn waits_parse() {
        assert_eq!(parse_wait("0"), Ok(Duration::ZERO));
        assert_eq!(parse_wait("90"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_wait("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_wait("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_wait("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_wait("168h"), Ok(MAX_WAIT));
        // Own check: these overflowed `Instant::now() + wait` (a panic).
        for bad in [
            "",
            "m",
            "5x",
            "-1",
            "1.5m",
            "5 m",
            "169h",
            "18446744073709551615",
            "5124095576030431h",
        ] {
            assert!(parse_wait(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn series_keys_round_trip() {
        for s in [Series::Db("shop-1".into()), Series::Media] {
            assert_eq!(Series::from_key(&s.key()), Some(s));
        }
        assert_eq!(Series::from_key("db-"), None);
        assert_eq!(Series::from_key("other"), None);
    }

    #[test]
    fn stale_by_lease_or_dead_pid_on_this_host() {
        let now = Utc::now();
        let me = std::process::id();
        assert!(info("a", "h", me, true, 60).stale(now, "h").is_none());
        assert!(info("a", "h", me, true, -1).stale(now, "h").is_some());
        // A pid that cannot exist (above pid_max) is dead here...
        assert!(info("a", "h", 99_999_999, true, 60)
            .stale(now, "h")
            .is_some());
        // ...but says nothing on another host: only its lease counts there.
        assert!(info("a", "other", 99_999_999, true, 60)
            .stale(now, "h")
            .is_none());
        // ...nor on a host of the same name with other pids (another
        // container named alike, this machine before a reboot), nor when
        // the writer did not say which pids it counted in.
        for space in [Some("other-boot/pid:[1]".to_string()), None] {
            let mut i = info("a", "h", 99_999_999, true, 60);
            i.pid_space = space;
            assert!(i.stale(now, "h").is_none(), "{:?}", i.pid_space);
        }
    }

    #[test]
    fn judges_holders_collisions_and_stale_ones() {
        let now = Utc::now();
        let me = std::process::id();
        let ours = found(info("ours", "h", me, false, 60));
        assert!(matches!(judge(&[], "ours", now, "h"), Seen::Free));
        assert!(matches!(
            judge(std::slice::from_ref(&ours), "ours", now, "h"),
            Seen::Free
        ));
        let expired = found(info("old", "other", 1, true, -5));
        let dead = found(info("dead", "h", 99_999_999, true, 600));
        assert!(matches!(
            judge(&[expired, dead], "ours", now, "h"),
            Seen::Free
        ));
        let trying = found(info("b", "other", 1, false, 600));
        assert!(matches!(
            judge(
                &[found(info("ours", "h", me, false, 60)), trying],
                "ours",
                now,
                "h"
            ),
            Seen::Contended(_)
        ));
        let holder = found(info("c", "other", 1, true, 600));
        let trying = found(info("b", "other", 1, false, 600));
        match judge(&[trying, holder], "ours", now, "h") {
            Seen::Held(i) => assert_eq!(i.id, "c"),
            _ => panic!("a holder must win over a collision"),
        }
        // Another lock of this same process (backup-all) is live.
        let sibling = found(info("s", "h", me, true, 600));
        assert!(matches!(judge(&[sibling], "ours", now, "h"), Seen::Held(_)));
        // An object that does not read: a collision while fresh, stale later.
        let fresh = Found {
            path: "x/y.json".into(),
            info: None,
            mod_time: now,
        };
        match judge(&[fresh], "ours", now, "h") {
            Seen::Collision(p) => assert_eq!(p, "x/y.json"),
            _ => panic!("a fresh object that does not read must be named"),
        }
        let old = Found {
            path: "x/y.json".into(),
            info: None,
            mod_time: now - chrono::Duration::hours(1),
        };
        assert!(matches!(judge(&[old], "ours", now, "h"), Seen::Free));
    }

    #[test]
    fn the_renewal_comes_well_inside_the_lease() {
        assert!(RENEW_EVERY * 3 <= LEASE);
        assert!(RETRY_RENEWAL * 10 < LEASE - RENEW_EVERY);
    }
}
