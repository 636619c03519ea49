//! Ctrl-C, SIGTERM and SIGHUP: stop the children, let the command clean up
//! what it started (e.g. delete its unfinished upload), and exit with 130.
//! A second signal exits at once, unless it came within a second of the
//! first (a hangup, or systemd's SendSIGHUP, sends two at once). Either way
//! nothing half-made is ever published: that rests on the catalog's rules,
//! not on this module.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

static INTERRUPTED: AtomicBool = AtomicBool::new(false);
/// Signals this close after the first are the same request to stop; a later
/// one quits at once.
const SAME_REQUEST: std::time::Duration = std::time::Duration::from_secs(1);
static CHILDREN: Mutex<BTreeSet<u32>> = Mutex::new(BTreeSet::new());
/// Wakes whatever waits in [`wait`] (a guest call) when the first signal comes.
static WAKE: tokio::sync::Notify = tokio::sync::Notify::const_new();

/// Starts the thread that handles the signals.
pub fn install() {
    // SIGHUP, when the run was started with it ignored, stays ignored:
    // `nohup rcbackup ...` must outlive the shell that started it.
    let handled: Vec<i32> = [SIGINT, SIGTERM, SIGHUP]
        .into_iter()
        .filter(|&s| s != SIGHUP || !ignored(s))
        .collect();
    let Ok(mut signals) = Signals::new(handled) else {
        return;
    };
    std::thread::spawn(move || {
        let mut first: Option<std::time::Instant> = None;
        for signal in signals.forever() {
            if let Some(at) = first {
                // A hangup, or systemd's SendSIGHUP after SIGTERM, delivers
                // two signals at once: that is one request to stop, and
                // quitting at once would leave the lock and the upload.
                if at.elapsed() < SAME_REQUEST {
                    tracing::debug!("signal {signal} came with the first; still stopping");
                    continue;
                }
                std::process::exit(130);
            }
            first = Some(std::time::Instant::now());
            INTERRUPTED.store(true, Ordering::SeqCst);
            tracing::warn!("interrupted (signal {signal}); stopping and cleaning up, signal again to quit at once");
            WAKE.notify_waiters();
            let children = CHILDREN.lock().map(|c| c.clone()).unwrap_or_default();
            for pid in children {
                // SAFETY: kill(2) on a pid of a child we spawned and have not reaped.
                unsafe {
                    libc::kill(pid as libc::pid_t, libc::SIGTERM);
                }
            }
        }
    });
}

/// Whether `signal` is ignored (SIG_IGN) in this process.
fn ignored(signal: i32) -> bool {
    // SAFETY: sigaction(2) with a null new action only reads the current one.
    unsafe {
        let mut old: libc::sigaction = std::mem::zeroed();
        libc::sigaction(signal, std::ptr::null(), &mut old) == 0
            && old.sa_sigaction == libc::SIG_IGN
    }
}

pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

/// Stops the command here if it was interrupted: exit 130 with `message`
/// (what was and was not done).
pub fn stop_if_interrupted(message: &str) -> anyhow::Result<()> {
    if interrupted() {
        return Err(crate::exit::interrupted_at(message));
    }
    Ok(())
}

/// Resolves once the run is interrupted (at once if it already is): a guest
/// call waits on it beside the guest, so one signal ends the call.
pub async fn wait() {
    let mut notified = std::pin::pin!(WAKE.notified());
    // Registered before the flag is read, so a signal in between still wakes it.
    notified.as_mut().enable();
    if interrupted() {
        return;
    }
    notified.await;
}

/// Called by `Proc` when a child starts and when it has been reaped.
/// Whether children started on this thread now are shielded.
pub fn shielded() -> bool {
    SHIELDED.with(|s| s.get())
}

pub fn track(pid: u32) {
    if shielded() {
        return;
    }
    if let Ok(mut c) = CHILDREN.lock() {
        c.insert(pid);
    }
}

thread_local! {
    /// Children this thread starts now are left to finish when a signal
    /// comes (see [`shield`]).
    static SHIELDED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// While the returned guard lives, children started on this thread are not
/// stopped by the first signal: for short steps that must not end half-way
/// (the data and record deletions of one backup). The command checks
/// [`interrupted`] after the step; a second signal still quits at once.
pub fn shield() -> Shield {
    Shield(SHIELDED.with(|s| s.replace(true)))
}

/// See [`shield`].
pub struct Shield(bool);

impl Drop for Shield {
    fn drop(&mut self) {
        SHIELDED.with(|s| s.set(self.0));
    }
}

pub fn untrack(pid: u32) {
    if let Ok(mut c) = CHILDREN.lock() {
        c.remove(&pid);
    }
}
