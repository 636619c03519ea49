//! The fault matrix of `dbrestore`: a backup B0 of content C0, the database
//! changed to C1, `dbrestore --noinput -i B0` held at a step of the restore
//! (host/src/failpoint.rs), a fault delivered for real, the run's end; then:
//! - exit 0 means the database is exactly C0; any other exit means it is
//!   exactly C1 (checked on the seeded tables and on the `big` table(s) the
//!   restore rewrites first), except MariaDB after its check, which may be
//!   partly restored only if the error says so;
//! - the exit code is the documented one for that fault, and a failure
//!   says what state the database was left in;
//! - a staging file a killed SQLite restore left is listed as a leftover;
//! - `check_invariants` (tests/common/mod.rs).
//!
//! Steps, in the order a restore reaches them:
//! - `restore-started`: approved, nothing read, no child started
//!   ("download");
//! - `restore-streaming`: the restore tool got the first chunk, rclone cat
//!   is still sending (the backups are several pipe buffers large)
//!   ("mid-stream"; MariaDB: of the restoring pass, after its check);
//! - `restore-streamed`: the whole stream matched its record, its last
//!   chunk not yet handed to the tool ("before commit");
//! - `restore-swap` (SQLite only): the staging file passed its checks and
//!   is about to be renamed over the database ("swap").
//!
//! Combinations skipped, and why:
//! - `RemoteFull`: a restore writes nothing to the remote;
//! - `SigkillRcbackup` at `restore-started`: nothing has started, so
//!   nothing can be left; SIGTERM there checks the run says so;
//! - `KillChild` at `restore-started` (no child yet), `rclone` at
//!   `restore-streamed` (cat has ended: its exit was checked), anything at
//!   `restore-swap` (no child alive); with one rclone server per run
//!   (the default mode) the server is alive at every step, and killing it
//!   at `restore-started` and `restore-streamed` is walked too: the run goes
//!   on with one process per call and the restore completes (exit 0);
//! - `RemoteGone` at `restore-swap`: nothing is read after
//!   `restore-streamed`, so it is that case again;
//! - `Record` damage only at `restore-started`: the record is read before
//!   the restore starts and the run uses that copy at every step, so later
//!   steps are the same case; `Truncate` is skipped (to the catalog it is a
//!   damaged record like `Flip`; tests/fault_matrix_backup.rs walks both);
//! - `Object` damage at `restore-started` (before the read) and
//!   `restore-streaming` (during it, where `Flip` changes a byte near the
//!   end, not yet read); none after the stream matched its record (it was
//!   read whole: the `Record` cases at `restore-started` already cover a
//!   damage that shows only later); `Duplicate` is skipped (a copy beside
//!   the object changes nothing a restore reads; the backup matrix checks
//!   the copy is listed `foreign`).
//!
//! Mid-stream, rclone runs with `--buffer-size 0` (else it reads up to
//! 16 MiB ahead and a damage or a stopped server after the hold reaches
//! nothing). A stopped webdav server may still have delivered the rest
//! (what it had sent is in the sockets' buffers): then the restore is
//! whole, and exit 0 with the backup's content is the right outcome.
//!
//! PostgreSQL and MariaDB run a subset (`ENGINE_SUBSET`): what differs by
//! engine is the restore tool and how it commits, so: the object damaged
//! before the read (PostgreSQL: pg_restore stopped before commit; MariaDB:
//! refused by the check), the tool killed and the object truncated
//! mid-stream, and SIGKILL, SIGTERM and the tool killed before commit.
//! The rest (the interruption check at `restore-started`, rclone killed or
//! the server gone while streaming) is `Source::stream`, the same code for
//! every engine, and walked with SQLite.
//!
//! MariaDB killed with SIGKILL after its check: its client gets the end of
//! its input and runs what it read, so the database may be partly restored
//! and nothing can say so (the run is gone). That is allowed here (the
//! README promises the message only for failures rcbackup lives through);
//! `check_invariants` then shows the next restore repairs it.

mod common;

use std::panic::catch_unwind;
use std::path::{Path, PathBuf};

use common::*;

use Damage::*;
use Fault::*;

/// Every meaningful fault at `step` (see the module comment).
fn faults_at(engine: Engine, step: &str) -> Vec<Fault> {
    let mut out = vec![SigtermRcbackup];
    match step {
        "restore-started" => {
            out.push(RemoteGone);
            if rclone_server_mode() {
                // The run's server, killed before the download: the run
                // goes on with one rclone process per call.
                out.push(KillChild("rclone"));
            }
            out.extend([Object(Flip), Object(Truncate), Object(Delete)]);
            out.extend([Record(Flip), Record(Delete), Record(Duplicate)]);
            return out;
        }
        "restore-streaming" => {
            out.push(KillChild("rclone"));
            out.push(KillChild(engine.restore_tool()));
            out.push(RemoteGone);
            out.extend([Object(Flip), Object(Truncate), Object(Delete)]);
        }
        "restore-streamed" => {
            out.push(KillChild(engine.restore_tool()));
            out.push(RemoteGone);
            if rclone_server_mode() {
                // The run's server, killed once the stream matched: nothing
                // more is read, the restore completes.
                out.push(KillChild("rclone"));
            }
        }
        "restore-swap" => {}
        _ => unreachable!("{step}"),
    }
    out.push(SigkillRcbackup);
    out
}

/// The PostgreSQL and MariaDB subset.
const ENGINE_SUBSET: &[(&str, Fault)] = &[
    ("restore-started", Object(Flip)),
    ("restore-streaming", KillChild("")), // the engine's restore tool
    ("restore-streaming", Object(Truncate)),
    ("restore-streamed", SigkillRcbackup),
    ("restore-streamed", SigtermRcbackup),
    ("restore-streamed", KillChild("")),
];

/// Row count and SHA-256 of everything a restore rewrites: the seeded
/// tables and the size and first row of the big one(s) (a dump restores
/// those first, so a restore stopped early shows there). `None` if the
/// tables are not all there (MariaDB, partly restored).
fn full_fingerprint(db: &TestDb) -> Option<(usize, String)> {
    let big = match db.engine {
        Engine::Sqlite => "SELECT COUNT(*), MAX(id) FROM big; SELECT v FROM big WHERE id = 1;",
        _ => {
            "SELECT COUNT(*), MAX(id) FROM big; SELECT v FROM big WHERE id = 1; \
             SELECT COUNT(*), MAX(id) FROM big2;"
        }
    };
    if db.engine == Engine::Mariadb {
        // A partial restore may have dropped a table and not yet made it.
        let tables = db.exec(
            "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = DATABASE() \
             AND table_name IN ('items', 'notes', 'big', 'big2');",
        );
        if tables.trim() != "4" {
            return None;
        }
    }
    Some(fingerprint(&db.exec(&format!("{CONTENT_QUERY} {big}"))))
}

/// Changes one byte near the end of a file, keeping its size.
/// In place: a reader that has the file open sees it change, never shrink.
fn flip_near_end(file: &Path) {
    use std::io::{Read, Seek, SeekFrom, Write};
    let mut f = std::fs::File::options()
        .read(true)
        .write(true)
        .open(file)
        .unwrap();
    let at = SeekFrom::End(-100);
    let mut byte = [0u8];
    f.seek(at).unwrap();
    f.read_exact(&mut byte).unwrap();
    f.seek(at).unwrap();
    f.write_all(&[byte[0] ^ 0x55]).unwrap();
}

/// SQLite staging files (and journals) beside the database.
fn staging_files(world: &World) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(world.dir.path())
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with(".default.sqlite3.rcbackup-restore-")
        })
        .collect();
    out.sort();
    out
}

/// The exit codes the README documents for `fault` at `step`.
fn allowed_codes(step: &str, fault: Fault) -> &'static [i32] {
    match (step, fault) {
        (_, SigkillRcbackup) => &[-1],
        (_, SigtermRcbackup) => &[130],
        ("restore-started" | "restore-streamed", KillChild("rclone")) => &[0],
        // The run's server, killed mid-stream, may already have sent the
        // rest into the socket's buffers: the stream then ends whole and
        // matches its record, and the restore is whole (0). A per-call
        // `rclone cat` killed is a failure by its exit status (1).
        ("restore-streaming", KillChild("rclone")) if rclone_server_mode() => &[0, 1],
        (_, KillChild(_)) => &[1],
        ("restore-started", RemoteGone) => &[1],
        ("restore-started", Object(Flip | Truncate)) => &[4],
        // Gone: rclone's not-found (1), or 4 if a future check names it.
        ("restore-started", Object(Delete)) => &[4],
        ("restore-started", Record(_)) => &[0],
        ("restore-streamed", RemoteGone) => &[0],
        // Mid-stream the fault may miss what is left to read (the data a
        // stopped server had sent; a deleted file read through its open
        // descriptor): then the restore is whole, 0.
        ("restore-streaming", RemoteGone | Object(_)) => &[0, 1, 4],
        _ => unreachable!("{step} {fault:?}"),
    }
}

/// Runs one case: a backup, a change, a restore held at `step`, the fault,
/// the run's end, the checks.
fn run_case(engine: Engine, step: &'static str, fault: Fault) {
    let remote = if fault == RemoteGone {
        Remote::Webdav
    } else {
        Remote::Local
    };
    let mut world = World::new(remote);
    if step == "restore-streaming" {
        // rclone cat reads ahead into a buffer (16 MiB by default): without
        // it, what the run has not read yet is still on the remote, where
        // the fault can reach it.
        world.setting("rclone_flags = [\"--buffer-size\", \"0\", \"--retries\", \"1\", \"--low-level-retries\", \"1\"]");
    } else if fault == RemoteGone {
        // One try each: rclone's default retries keep a run against a gone
        // server busy for minutes.
        world.setting("rclone_flags = [\"--retries\", \"1\", \"--low-level-retries\", \"1\"]");
    }
    let store = world.store.clone();
    // Mid-stream, larger than the pipes (1 MiB each) and the chunks
    // rcbackup holds, once compressed (zstd halves these hex rows): rclone
    // is still sending while the run is held. Elsewhere small: the size
    // changes nothing there but the time.
    let big = match (engine, step) {
        (Engine::Sqlite, "restore-streaming") => 80000,
        (_, "restore-streaming") => 100000,
        _ => 2000,
    };
    let db = TestDb::create(&mut world, engine, 500, big);
    let mut expected = Expected::default();
    world.ok(&["dbbackup"]);
    let b0 = world.names(None).remove(0);
    expected.before.insert(b0.clone(), db.fingerprint());
    let c0 = full_fingerprint(&db).unwrap();
    db.exec(
        "INSERT INTO items VALUES (900001, 'made after the backup', 1);\n\
         UPDATE big SET v = 'changed after the backup' WHERE id = 1;",
    );
    let c1 = full_fingerprint(&db).unwrap();
    assert_ne!(c0, c1);

    let mut held = world.spawn_held(&["dbrestore", "--noinput", "-i", &b0], step);
    held.wait_at(step);
    let pid = held.child.id();
    let family = snapshot(&descendants(pid));

    let object = format!("db/{b0}");
    let record = format!("db/.rcbackup/records/{b0}.json");
    let hit = hit_process(
        &held,
        fault,
        engine.restore_tool(),
        rclone_carrier("cat"),
        &family,
    );
    let released = !matches!(hit, Some(ProcessHit::RunSignalled));
    match fault {
        _ if hit.is_some() => {
            if let Some(ProcessHit::ChildKilled(child)) = hit {
                // Dead before the run goes on, so the run meets the fault.
                wait_until(10, "the killed child to end", || !alive(child));
            }
        }
        SigkillRcbackup | SigtermRcbackup | KillChild(_) => unreachable!("hit above"),
        RemoteFull => unreachable!("a restore writes nothing to the remote"),
        RemoteGone => world.webdav = None,
        Object(d) | Record(d) => {
            let rel = if matches!(fault, Object(_)) {
                &object
            } else {
                &record
            };
            let file = store.join(rel);
            let base = file.file_name().unwrap().to_str().unwrap().to_string();
            let copy_name = match base.strip_suffix(".json") {
                Some(stem) => format!("{stem}.copy.json"),
                None => format!("{base}.copy"),
            };
            let copy = if step == "restore-streaming" && d == Flip {
                // Where the run has not read yet (the middle may be).
                flip_near_end(&file);
                None
            } else {
                damage_file(&file, d, &copy_name)
            };
            if let Some(copy) = copy {
                if matches!(fault, Object(_)) {
                    let rel = copy.strip_prefix(&store).unwrap().display().to_string();
                    expected.test_files.insert(rel);
                }
            } else {
                expected.touched.insert(b0.clone());
            }
        }
    }
    if released {
        held.release(step);
    }
    let r = held.finish();
    // Children orphaned by a SIGKILL end on their own (their input closes);
    // pg_restore must first roll back. Give them time, then make sure.
    let _ = catch_unwind(|| {
        wait_until(30, "the run's children to end", || {
            family
                .iter()
                .all(|(p, argv)| cmdline(*p) != *argv || !alive(*p))
        })
    });
    kill_leftovers(&family);
    assert_lacks(&r.stderr, &["panicked"]);

    eprintln!(
        "  exit {}: {}",
        r.code,
        r.stderr.lines().last().unwrap_or("")
    );
    let allowed = allowed_codes(step, fault);
    assert!(
        allowed.contains(&r.code),
        "exit {} (expected one of {allowed:?}): {}",
        r.code,
        r.stderr
    );
    let after_check =
        engine == Engine::Mariadb && matches!(step, "restore-streaming" | "restore-streamed");
    let now = full_fingerprint(&db);
    match r.code {
        0 => assert_eq!(
            now.as_ref(),
            Some(&c0),
            "dbrestore exited 0, but the database is not the backup's content"
        ),
        // SIGKILL: nothing can be said; only MariaDB after its check may
        // have been partly restored (see the module comment).
        -1 if after_check => {}
        -1 => assert_eq!(
            now.as_ref(),
            Some(&c1),
            "a restore killed with SIGKILL changed the database"
        ),
        _ if after_check => {
            // The client ran: the error must say the database may be
            // partly restored, whatever state it is in.
            assert_mentions(&r.stderr, &["partly restored"]);
        }
        _ => {
            assert_eq!(
                now.as_ref(),
                Some(&c1),
                "a failed restore (exit {}) changed the database: {}",
                r.code,
                r.stderr
            );
            // ... and says so.
            let says = [
                "left as it was",
                "nothing was changed",
                "nothing was restored",
            ];
            assert!(
                says.iter().any(|s| r.stderr.contains(s)),
                "a failed restore (exit {}) does not say the database is unchanged: {}",
                r.code,
                r.stderr
            );
        }
    }

    // A staging file is what a SQLite restore killed after it made one
    // leaves: only then, listed as a leftover, and named by the cleanup
    // (check_invariants then runs it). sqlite3 creates the file at its
    // first write, so a shell killed with its parent before reading
    // anything leaves none: that is not required.
    let staging = staging_files(&world);
    if engine == Engine::Sqlite && fault == SigkillRcbackup && step != "restore-started" {
        let list = world.list(None);
        for s in &staging {
            let path = s.display().to_string();
            let listed = list.iter().any(|e| {
                e["status"] == "leftover"
                    && e["kind"] == "restore-staging"
                    && e["path"] == path.as_str()
            });
            assert!(listed, "staging file {path} is not listed: {list:#?}");
        }
        let plan = world.ok(&["dbbackup", "--clean", "--dry-run"]);
        for s in &staging {
            assert_mentions(&plan.stdout, &[&format!("would delete  {}", s.display())]);
        }
    } else {
        assert!(staging.is_empty(), "the restore left {staging:?}");
    }

    if fault == RemoteGone {
        world.restart_webdav();
    }
    check_invariants(&mut world, &db, &expected);
    let staging = staging_files(&world);
    assert!(staging.is_empty(), "left after --clean: {staging:?}");
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
fn sqlite_download() {
    sqlite_steps(&["restore-started"]);
}

#[test]
fn sqlite_mid_stream() {
    sqlite_steps(&["restore-streaming"]);
}

#[test]
fn sqlite_commit_and_swap() {
    sqlite_steps(&["restore-streamed", "restore-swap"]);
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
