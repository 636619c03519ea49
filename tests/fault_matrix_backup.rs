//! The fault matrix of `dbbackup`: for each engine and each step of a
//! backup, each fault that means something there, delivered for real while
//! the run is held at that step (host/src/failpoint.rs); every case ends
//! with `check_invariants` (tests/common/mod.rs).
//!
//! Steps, in the order a run reaches them:
//! - `dump-started`: the dump tool and `rclone rcat` run, the dump is
//!   mid-stream (its output is larger than the pipe, so it is blocked
//!   writing), and the listing of the names in use is about to run beside
//!   it: this one hold covers "dump start", "mid-stream" and "listing";
//! - `uploaded`: the upload is complete under `partial/`;
//! - `claim`, `claimed`: before and after the claim on the name;
//! - `moved`: the data object is in place, its record not yet written;
//! - `recorded`: the record is written, the claim not yet dropped;
//! - `cleaning`, `deleting` (with `--clean`, `db_cleanup_keep = 1`): before
//!   retention, and between deleting the old backup's data and its record.
//!
//! Combinations skipped, and why:
//! - `KillChild` of the dump tool only at `dump-started`, and of rclone
//!   only there with one rclone process per call: at every other step no
//!   child of the run is alive (rclone is called once per operation and
//!   has ended). With one rclone server per run (the default mode) the
//!   server is killed at every step: the operation it was serving fails,
//!   and the run goes on (and cleans up) with one process per call;
//! - `RemoteFull` at `claimed` and `recorded`: what follows (a rename, a
//!   delete) needs no space, so they are `moved` and `cleaning` again;
//! - `Object` damage, each target once: the previous backup's object at
//!   `cleaning` (the same object is the target at `dump-started` and
//!   `claim`), the upload in `partial/` at `uploaded` (as at `claimed`), the
//!   new data object at `moved` and `recorded`; none at `deleting` (its
//!   data was just deleted); `Duplicate` of an upload in `partial/` is
//!   skipped (a copy of a partial is not a thing any tool makes);
//! - `Record` damage, each target once: the previous backup's record at
//!   `claim` (the same target at every step before `recorded`), the new
//!   record at `recorded`, and at `deleting` the record of the backup that
//!   retention is deleting.
//!
//! PostgreSQL and MariaDB run a subset (`ENGINE_SUBSET`): what differs by
//! engine is the dump tool, so every fault at `dump-started`, and one
//! signal and one damage at the publish and retention steps; the catalog
//! code after the stream is the same for every engine and is walked in full
//! with SQLite.

mod common;

use common::*;

use Damage::*;
use Fault::*;

const DAMAGES: [Damage; 4] = [Flip, Truncate, Delete, Duplicate];

/// Every meaningful fault at `step` (see the module comment).
fn faults_at(engine: Engine, step: &str) -> Vec<Fault> {
    let mut out = vec![SigkillRcbackup, SigtermRcbackup];
    if step == "dump-started" {
        out.push(KillChild(engine.dump_tool()));
        out.push(KillChild("rclone"));
    } else if rclone_server_mode() {
        // The run's server is alive at every step.
        out.push(KillChild("rclone"));
    }
    if matches!(
        step,
        "dump-started" | "uploaded" | "claim" | "moved" | "cleaning"
    ) {
        out.push(RemoteFull);
    }
    out.push(RemoteGone);
    // Each target once: the previous backup's object at `cleaning` (the
    // same object as at `dump-started` and `claim`), the upload at
    // `uploaded` (as at `claimed`), the new object at `moved` and
    // `recorded`; the previous backup's record at `claim` (as at every step
    // before `recorded`), the new record at `recorded`, the record retention
    // is deleting at `deleting`.
    if matches!(step, "uploaded" | "moved" | "recorded" | "cleaning") {
        for d in DAMAGES {
            if !(d == Duplicate && step == "uploaded") {
                out.push(Object(d));
            }
        }
    }
    if matches!(step, "claim" | "recorded" | "deleting") {
        for d in DAMAGES {
            out.push(Record(d));
        }
    }
    out
}

/// The PostgreSQL and MariaDB subset.
const ENGINE_SUBSET: &[(&str, Fault)] = &[
    ("dump-started", SigkillRcbackup),
    ("dump-started", SigtermRcbackup),
    ("dump-started", KillChild("")), // the engine's dump tool
    ("dump-started", KillChild("rclone")),
    ("dump-started", RemoteFull),
    ("dump-started", RemoteGone),
    ("moved", SigkillRcbackup),
    ("moved", Object(Flip)),
    ("recorded", SigtermRcbackup),
    ("recorded", Record(Truncate)),
    ("cleaning", Object(Truncate)),
    ("deleting", SigkillRcbackup),
];

/// A file to damage (relative to the store), and whether it belongs to the
/// backup being made.
type Target = Option<(String, bool)>;

fn is_cleaning(step: &str) -> bool {
    matches!(step, "cleaning" | "deleting")
}

/// The only file in `dir` (relative to the store), if any.
fn only_file_in(world: &World, dir: &str) -> Option<String> {
    let files: Vec<String> = store_files(world)
        .into_iter()
        .filter(|f| f.strip_prefix(dir).is_some_and(|rest| !rest.contains('/')))
        .collect();
    assert!(files.len() <= 1, "several files in {dir}: {files:?}");
    files.into_iter().next()
}

/// Runs one case: a first backup, a change, a second run held at `step`,
/// the fault, the run's end, the invariants.
fn run_case(engine: Engine, step: &'static str, fault: Fault) {
    let remote = if fault == RemoteGone {
        Remote::Webdav
    } else {
        Remote::Local
    };
    let mut world = World::new(remote);
    if fault == RemoteGone {
        // rclone's default retries keep a run against a gone server busy
        // for minutes (3 x 10 tries with back-off); one try each is the
        // same fault, sooner.
        world.setting("rclone_flags = [\"--retries\", \"1\", \"--low-level-retries\", \"1\"]");
    }
    let store = world.store.clone();
    let disk = (fault == RemoteFull).then(|| SmallDisk::mount(&store, "48m"));
    let big = match engine {
        Engine::Sqlite => 5000,
        _ => 10000,
    };
    let db = TestDb::create(&mut world, engine, 500, big);
    let mut expected = Expected::default();
    world.ok(&["dbbackup"]);
    let b0 = world.names(None).remove(0);
    expected.before.insert(b0.clone(), db.fingerprint());
    db.exec("INSERT INTO items VALUES (900001, 'made after the first backup', 1);");
    expected.new_content = Some(db.fingerprint());

    let args: &[&str] = if is_cleaning(step) {
        world.setting("db_cleanup_keep = 1");
        expected.may_go.insert(b0.clone());
        &["dbbackup", "--clean"]
    } else {
        &["dbbackup"]
    };
    let mut held = world.spawn_held(args, step);
    held.wait_at(step);
    let pid = held.child.id();
    let family = snapshot(&descendants(pid));
    if is_cleaning(step) || step == "recorded" {
        // Published before the hold: it is a backup whatever comes next.
        expected.new_reported = true;
    }

    // The object and record the damage faults aim at.
    let new_data = || {
        store_files(&world)
            .into_iter()
            .find(|f| f.starts_with("db/") && !f[3..].contains('/') && f[3..] != b0)
            .expect("the new data object")
    };
    let (object, record): (Target, Target) = match step {
        "dump-started" | "claim" | "cleaning" | "deleting" => (
            Some((format!("db/{b0}"), false)),
            Some((format!("db/.rcbackup/records/{b0}.json"), false)),
        ),
        "uploaded" | "claimed" => (
            only_file_in(&world, "db/.rcbackup/partial/").map(|p| (p, true)),
            Some((format!("db/.rcbackup/records/{b0}.json"), false)),
        ),
        "moved" => (
            Some((new_data(), true)),
            Some((format!("db/.rcbackup/records/{b0}.json"), false)),
        ),
        "recorded" => {
            let d = new_data();
            let name = d[3..].to_string();
            (
                Some((d, true)),
                Some((format!("db/.rcbackup/records/{name}.json"), true)),
            )
        }
        _ => unreachable!("{step}"),
    };

    let mut filler = None;
    let hit = hit_process(
        &held,
        fault,
        engine.dump_tool(),
        rclone_carrier("rcat"),
        &family,
    );
    let released = !matches!(hit, Some(ProcessHit::RunSignalled));
    match fault {
        _ if hit.is_some() => {}
        SigkillRcbackup | SigtermRcbackup | KillChild(_) => unreachable!("hit above"),
        RemoteFull => filler = Some(disk.as_ref().unwrap().fill()),
        RemoteGone => world.webdav = None,
        Object(d) | Record(d) => {
            let target = if matches!(fault, Object(_)) {
                &object
            } else {
                &record
            };
            let (rel, is_new) = target.clone().expect("a target for the damage");
            let file = store.join(&rel);
            let base = file.file_name().unwrap().to_str().unwrap().to_string();
            // A record's copy under another record name; a data object's
            // copy is a file that is not rcbackup's.
            let copy_name = match base.strip_suffix(".json") {
                Some(stem) => format!("{stem}.copy.json"),
                None => format!("{base}.copy"),
            };
            if let Some(copy) = damage_file(&file, d, &copy_name) {
                if matches!(fault, Object(_)) {
                    let rel = copy.strip_prefix(&store).unwrap().display().to_string();
                    expected.test_files.insert(rel);
                }
            } else if is_new {
                expected.touched_new = true;
            } else {
                expected.touched.insert(b0.clone());
            }
        }
    }
    if released {
        held.release(step);
    }
    let r = held.finish();
    // Children orphaned by a SIGKILL end on their own (closed pipes); give
    // them time, then make sure.
    let _ = std::panic::catch_unwind(|| {
        wait_until(20, "the run's children to end", || {
            family
                .iter()
                .all(|(p, argv)| cmdline(*p) != *argv || !alive(*p))
        })
    });
    kill_leftovers(&family);
    assert_lacks(&r.stderr, &["panicked"]);
    let allowed: &[i32] = match fault {
        SigkillRcbackup => &[-1],
        SigtermRcbackup if step == "recorded" => &[0],
        // Held between a delete's data and record: the run finishes that
        // delete (a record without data is a leftover), then stops: 130.
        SigtermRcbackup => &[130],
        _ => &[0, 1, 4],
    };
    assert!(
        allowed.contains(&r.code),
        "exit {} (expected one of {allowed:?}): {}",
        r.code,
        r.stderr
    );
    if r.code == 1 || r.code == 4 {
        assert!(
            r.stderr.contains("rror"),
            "a failure without a message: {:?}",
            r.stderr
        );
    }
    if r.code == 0 {
        expected.new_reported = true;
    }
    if let Some(f) = filler {
        std::fs::remove_file(f).unwrap();
    }
    if fault == RemoteGone {
        world.restart_webdav();
    }
    check_invariants(&mut world, &db, &expected);
    drop(disk);
}

fn sqlite_steps(steps: &[&'static str]) {
    let mut cases = Vec::new();
    for &step in steps {
        for fault in faults_at(Engine::Sqlite, step) {
            cases.push((Engine::Sqlite, step, fault));
        }
    }
    run_cases(cases, run_case);
}

#[test]
fn sqlite_dump_and_upload() {
    sqlite_steps(&["dump-started", "uploaded"]);
}

#[test]
fn sqlite_claim() {
    sqlite_steps(&["claim", "claimed"]);
}

#[test]
fn sqlite_move_and_record() {
    sqlite_steps(&["moved", "recorded"]);
}

#[test]
fn sqlite_retention() {
    sqlite_steps(&["cleaning", "deleting"]);
}

fn engine_subset(engine: Engine) {
    let cases = ENGINE_SUBSET
        .iter()
        .map(|&(step, fault)| (engine, step, fault))
        .collect();
    run_cases(cases, run_case);
}

#[test]
fn postgresql_subset() {
    engine_subset(Engine::Postgres);
}

#[test]
fn mariadb_subset() {
    engine_subset(Engine::Mariadb);
}
