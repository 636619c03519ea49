//! Named steps at which a test build can hold a run, so that the fault tests
//! can deliver a real fault (a signal, a stopped server, a damaged object)
//! at exactly that moment.
//!
//! Only debug builds (the ones `cargo test` runs) read the variables; a
//! release build compiles [`reached`] to nothing.
//!
//! - `RCBACKUP_TEST_PAUSE=step[,step...]`: the steps to hold at;
//! - `RCBACKUP_TEST_PAUSE_DIR=DIR`: on reaching a listed step the run creates
//!   `DIR/<step>.<pid>.reached`, then waits until `DIR/<step>.go` or
//!   `DIR/<step>.<pid>.go` exists (or a signal interrupts it, or 120 s pass).
//!
//! Steps of `dbbackup`: `dump-started`, `uploaded`, `claim`, `claimed`,
//! `moved`, `recorded`, `cleaning`, `deleting`. Steps of `dbrestore`:
//! `restore-started` (before any child starts), `restore-streaming` (the
//! restore tool got the first chunk, rclone cat still runs; MariaDB: of the
//! restoring pass, after the check), `restore-streamed` (the whole stream
//! matched its record, its last chunk not yet handed over), `restore-swap`
//! (SQLite: the staging file passed its checks, not yet renamed). Steps of
//! `drill`: `drill-created` (the scratch database exists, the restore not
//! yet started), then dbrestore's steps (into the scratch database), then
//! `drill-counted` (rows counted, the scratch database not yet dropped). Step of
//! every policy call (any command, `policy test` too): `guest-call` (the
//! call's Store is made and its deadline runs; the guest not yet started).
//! Steps of `--metrics-file` (any recording command): `metrics-write` (the
//! lock is held and the previous file read, nothing written yet),
//! `metrics-rename` (the new content is in the temporary file, synced, not
//! yet renamed over the file).
//! Step of `mediabackup`: `media-synced` (the mirror is synced, the file
//! list not yet written). Step of `mediarestore`: `media-copied` (every
//! file came back, `--mirror`'s deletions not yet made).
//! Step of every command that takes a lease lock (dbbackup, prune,
//! dbrestore, mediabackup, mediarestore; crate::lock): `locked` (the lock
//! is held and its renewal runs; nothing of the series touched yet).
//! Step of `verify`: `verify-next` (before each backup is read; with
//! `--all`, once per backup). `prune` holds at `dbbackup`'s `cleaning`
//! (before it decides) and `deleting` (a backup's data object deleted, its
//! record not yet). Step of `listbackups` (not `--all-tenants`): `listed`
//! (the catalog is read, nothing printed yet).

/// Holds the run here if a test asked for `step`.
#[inline]
pub fn reached(step: &str) {
    #[cfg(debug_assertions)]
    hold(step);
    #[cfg(not(debug_assertions))]
    let _ = step;
}

#[cfg(debug_assertions)]
fn hold(step: &str) {
    use std::path::PathBuf;
    use std::time::{Duration, Instant};
    let Ok(steps) = std::env::var("RCBACKUP_TEST_PAUSE") else {
        return;
    };
    if !steps.split(',').any(|s| s.trim() == step) {
        return;
    }
    let Some(dir) = std::env::var_os("RCBACKUP_TEST_PAUSE_DIR").map(PathBuf::from) else {
        return;
    };
    let pid = std::process::id();
    let _ = std::fs::write(dir.join(format!("{step}.{pid}.reached")), b"");
    let go = [
        dir.join(format!("{step}.go")),
        dir.join(format!("{step}.{pid}.go")),
    ];
    let until = Instant::now() + Duration::from_secs(120);
    while Instant::now() < until && !crate::interrupt::interrupted() {
        if go.iter().any(|p| p.exists()) {
            return;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}
