//! How many backups dump at once in this process. One `dbbackup` has one;
//! `backup-all --jobs N` allows N: a job takes a slot before anything else
//! (a job waiting for one holds no lock, name or event) and gives it back
//! once its dump is uploaded, so its publishing, hooks and cleanup (round
//! trips to the remote, no database and little CPU) overlap the next
//! job's dump instead of queueing before it.

use std::sync::{Condvar, Mutex};
use std::time::Duration;

use anyhow::Result;

use crate::exit;

struct State {
    /// `None`: no bound (a single run).
    limit: Option<usize>,
    used: usize,
}

static STATE: Mutex<State> = Mutex::new(State {
    limit: None,
    used: 0,
});
static FREED: Condvar = Condvar::new();

/// At most `n` dumps at once from now on.
pub fn limit(n: usize) {
    lock().limit = Some(n.max(1));
}

/// A dump's slot, given back when dropped.
pub struct Slot {
    counted: bool,
}

/// Waits for a free slot; fails (exit 130) once the run is interrupted.
pub fn take() -> Result<Slot> {
    let mut state = lock();
    loop {
        if crate::interrupt::interrupted() {
            return Err(exit::interrupted());
        }
        match state.limit {
            None => return Ok(Slot { counted: false }),
            Some(limit) if state.used < limit => {
                state.used += 1;
                return Ok(Slot { counted: true });
            }
            // Woken when a slot is freed; the timeout notices an interrupt.
            Some(_) => {
                state = FREED
                    .wait_timeout(state, Duration::from_millis(100))
                    .unwrap_or_else(|e| e.into_inner())
                    .0;
            }
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        if self.counted {
            lock().used -= 1;
            FREED.notify_one();
        }
    }
}

fn lock() -> std::sync::MutexGuard<'static, State> {
    STATE.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn never_more_than_the_limit_at_once() {
        limit(2);
        let inside = AtomicUsize::new(0);
        let most = AtomicUsize::new(0);
        std::thread::scope(|s| {
            for _ in 0..8 {
                s.spawn(|| {
                    let _slot = take().unwrap();
                    let now = inside.fetch_add(1, Ordering::SeqCst) + 1;
                    most.fetch_max(now, Ordering::SeqCst);
                    std::thread::sleep(Duration::from_millis(20));
                    inside.fetch_sub(1, Ordering::SeqCst);
                });
            }
        });
        assert_eq!(most.load(Ordering::SeqCst), 2);
        assert_eq!(lock().used, 0);
    }
}
