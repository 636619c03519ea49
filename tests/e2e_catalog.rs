//! The catalog under damage and concurrency: damaged or stray records,
//! backups that disagree with their records, runs killed or interrupted at
//! each step of publishing, runs racing for one name, concurrent cleanups,
//! closed outputs, and an interrupt at the restore prompt.

mod common;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use common::*;

fn sqlite_world() -> (World, PathBuf) {
    let mut world = World::new(Remote::Local);
    let file = world.seeded_sqlite("default", 2000);
    (world, file)
}

fn count(file: &std::path::Path) -> String {
    sqlite(file, "SELECT count(*) FROM items")
        .trim()
        .to_string()
}

/// Three backups of 2000, 2001 and 2002 rows; their names, oldest first.
fn three_backups(world: &World, file: &std::path::Path) -> Vec<String> {
    let mut names = Vec::new();
    for extra in 0..3 {
        if extra > 0 {
            sqlite(
                file,
                &format!("INSERT INTO items VALUES ({}, 'x', 1)", 3000 + extra),
            );
            // A new second: names sort as the backups were made, so a
            // damaged record is read just before the next one.
            std::thread::sleep(Duration::from_millis(1100));
        }
        world.ok(&["dbbackup"]);
        names.push(world.names(None).remove(0));
    }
    names
}

fn record_file(world: &World, name: &str) -> PathBuf {
    world
        .store
        .join(format!("db/.rcbackup/records/{name}.json"))
}

fn entries(world: &World, status: &str) -> Vec<serde_json::Value> {
    world
        .list(None)
        .into_iter()
        .filter(|e| e["status"] == status)
        .collect()
}

/// A truncated record used to hide the next, intact backup (the records
/// were read as one stream split into lines), and restore then took an
/// older one with exit 0. Now it affects only its own backup.
#[test]
fn a_damaged_record_hides_no_other_backup() {
    let (world, file) = sqlite_world();
    let names = three_backups(&world, &file);
    let middle = record_file(&world, &names[1]);
    let text = std::fs::read(&middle).unwrap();
    std::fs::write(&middle, &text[..text.len() / 2]).unwrap();

    assert_eq!(world.names(None), [names[2].clone(), names[0].clone()]);
    let damaged = entries(&world, "damaged");
    assert_eq!(damaged.len(), 1, "{damaged:?}");
    assert_eq!(damaged[0]["name"], names[1].as_str());
    let table = world.ok(&["listbackups"]).stdout;
    assert!(table.contains("DAMAGED"), "{table}");

    sqlite(&file, "DELETE FROM items");
    world.ok(&["dbrestore", "--noinput"]);
    assert_eq!(count(&file), "2002", "the newest backup was restored");

    // The newest record damaged: no silent fall-back to an older backup.
    let newest = record_file(&world, &names[2]);
    std::fs::write(&newest, b"{\"format\":1,\"na").unwrap();
    sqlite(&file, "DELETE FROM items");
    let r = world.run(&["dbrestore", "--noinput"]);
    assert_eq!(r.code, 4, "{}", r.stderr);
    assert_mentions(&r.stderr, &[&names[2], &names[0], "-i"]);
    assert_eq!(count(&file), "0", "nothing was restored");
    let v = world.run(&["verify"]);
    assert_eq!(v.code, 4, "{}", v.stderr);
    let v = world.run(&["verify", "-i", &names[2]]);
    assert_eq!(v.code, 4, "{}", v.stderr);
    world.ok(&["dbrestore", "--noinput", "-i", &names[0]]);
    assert_eq!(count(&file), "2000");
}

/// An editor's backup of a record, or a copy under another record name,
/// listed a backup twice and made every --clean fail.
#[test]
fn stray_files_in_the_records_folder_are_not_records() {
    let (world, file) = sqlite_world();
    let names = three_backups(&world, &file);
    let rec = record_file(&world, &names[0]);
    std::fs::copy(&rec, rec.with_extension("json.bak")).unwrap();
    std::fs::copy(&rec, rec.with_file_name("copy-of-a-record.json")).unwrap();
    std::fs::copy(&rec, rec.with_file_name(format!("{}.json", names[1]))).unwrap();

    let listed = world.names(None);
    assert_eq!(listed, [names[2].clone(), names[0].clone()], "each once");
    // names[1]'s record file now holds names[0]'s record: damaged, named.
    let damaged = entries(&world, "damaged");
    assert_eq!(damaged.len(), 1, "{damaged:?}");
    assert_eq!(damaged[0]["name"], names[1].as_str());
    assert!(damaged[0]["problem"]
        .as_str()
        .unwrap()
        .contains("names another backup"));
    world.ok(&["dbbackup", "--clean"]);
    assert_eq!(world.names(None).len(), 3);
}

/// A data object that no longer matches its record's size used to be
/// skipped with a warning: restore took the previous backup with exit 0
/// and `verify -i` said there was no such backup (exit 1).
#[test]
fn a_backup_that_disagrees_with_its_record_is_shown_damaged_and_refused() {
    let (mut world, file) = sqlite_world();
    let names = three_backups(&world, &file);
    let data = world.store.join(format!("db/{}", names[2]));
    let mut bytes = std::fs::read(&data).unwrap();
    bytes.extend_from_slice(b"-- appended\n");
    std::fs::write(&data, bytes).unwrap();

    let damaged = entries(&world, "damaged");
    assert_eq!(damaged.len(), 1);
    assert_eq!(damaged[0]["name"], names[2].as_str());
    assert_eq!(damaged[0]["database"], "default");
    let v = world.run(&["verify", "-i", &names[2]]);
    assert_eq!(v.code, 4, "{}", v.stderr);
    assert_mentions(&v.stderr, &["damaged", "bytes"]);

    sqlite(&file, "DELETE FROM items");
    let r = world.run(&["dbrestore", "--noinput"]);
    assert_eq!(r.code, 4, "{}", r.stderr);
    assert_mentions(&r.stderr, &[&names[2], &format!("-i {}", names[1])]);
    assert_eq!(count(&file), "0");
    let r = world.run(&["dbrestore", "--noinput", "-i", &names[2]]);
    assert_eq!(r.code, 4, "{}", r.stderr);
    world.ok(&["dbrestore", "--noinput", "-i", &names[1]]);
    assert_eq!(count(&file), "2001");
    // Retention neither counts nor deletes it.
    world.setting("db_cleanup_keep = 1");
    let r = world.ok(&["dbbackup", "--clean"]);
    assert!(r.stderr.contains("damaged"), "{}", r.stderr);
    assert!(data.exists());
}

/// Every file below the store, as paths relative to it.
fn store_files(world: &World) -> BTreeSet<String> {
    world
        .stored_files()
        .into_iter()
        .map(|p| p.strip_prefix(&world.store).unwrap().display().to_string())
        .collect()
}

/// Renames a claim or partial to an old run id and ages every file given.
fn make_abandoned(world: &World, files: &BTreeSet<String>) {
    for rel in files {
        let mut p = world.store.join(rel);
        let parent = p.parent().unwrap().file_name().unwrap().to_owned();
        if parent == "claims" || parent == "partial" {
            let name = p.file_name().unwrap().to_str().unwrap().to_string();
            let (stem, run) = name.rsplit_once('.').unwrap();
            let pid = run.split_once('-').unwrap().1;
            let old = p.with_file_name(format!("{stem}.1000000000-{pid}"));
            std::fs::rename(&p, &old).unwrap();
            p = old;
        }
        age(&p);
    }
}

/// A run SIGKILLed at each step of publishing leaves nothing that is
/// listed as a backup; what it leaves is listed as a leftover of the right
/// kind, kept while young, and removed by --clean once abandoned.
#[test]
fn a_run_killed_at_each_publish_step_leaves_only_leftovers_clean_removes() {
    for (step, kinds) in [
        ("uploaded", &["partial-upload"][..]),
        ("claimed", &["partial-upload", "stale-claim"][..]),
        ("moved", &["unrecorded-data"][..]),
        ("recorded", &["stale-claim"][..]),
    ] {
        let (world, _) = sqlite_world();
        world.ok(&["dbbackup"]);
        let before_names = world.names(None);
        let before = store_files(&world);
        let mut held = world.spawn_held(&["dbbackup"], step);
        held.wait_at(step);
        held.signal(libc::SIGKILL);
        held.finish();
        let names = world.names(None);
        if step == "recorded" {
            assert_eq!(names.len(), 2, "{step}: the record makes it a backup");
        } else {
            assert_eq!(names, before_names, "{step}: nothing new is listed");
        }
        let left: Vec<_> = entries(&world, "leftover");
        let mut found: Vec<_> = left.iter().map(|l| l["kind"].as_str().unwrap()).collect();
        found.sort();
        assert_eq!(found, kinds, "{step}: {left:?}");
        let table = world.ok(&["listbackups"]).stdout;
        for kind in kinds {
            assert!(table.contains(kind), "{step}: {table}");
        }

        // Young: it may be a run still going; --clean leaves it.
        // The killed run's lock object is not a leftover: the next run to
        // lock the database sees its pid is dead and removes it.
        let (locks, new): (BTreeSet<String>, BTreeSet<String>) = store_files(&world)
            .difference(&before)
            .cloned()
            .partition(|f| f.contains(".rcbackup/locks/"));
        world.ok(&["dbbackup", "--clean"]);
        let now = store_files(&world);
        for f in &new {
            assert!(now.contains(f), "{step}: young {f} kept");
        }
        for f in &locks {
            assert!(!now.contains(f), "{step}: the dead run's lock {f} removed");
        }
        let leftovers_now: BTreeSet<String> = new
            .iter()
            .filter(|f| {
                f.contains(".rcbackup/claims") || f.contains(".rcbackup/partial") || {
                    // the unrecorded data object itself
                    step == "moved" && !f.contains(".rcbackup")
                }
            })
            .cloned()
            .collect();
        make_abandoned(&world, &leftovers_now);
        let dry = world.ok(&["dbbackup", "--clean", "--dry-run"]);
        assert!(
            dry.stdout.contains("would delete"),
            "{step}: {}",
            dry.stdout
        );
        world.ok(&["dbbackup", "--clean"]);
        assert!(
            entries(&world, "leftover").is_empty(),
            "{step}: abandoned leftovers removed: {:?}",
            store_files(&world)
        );
        let files = store_files(&world);
        assert!(
            !files
                .iter()
                .any(|f| f.contains("claims/") || f.contains("partial/")),
            "{step}: {files:?}"
        );
        // Every backup listed verifies; every data object has its record.
        for n in world.names(None) {
            world.ok(&["verify", "-i", &n]);
        }
        let data: Vec<_> = files.iter().filter(|f| !f.contains(".rcbackup")).collect();
        assert_eq!(data.len(), world.names(None).len(), "{step}: {files:?}");
    }
}

/// SIGTERM at each step before the record is written: exit 130, nothing
/// published, nothing left behind.
#[test]
fn sigterm_at_each_publish_step_publishes_nothing_and_leaves_nothing() {
    for step in ["dump-started", "uploaded", "claim", "claimed", "moved"] {
        let (world, _) = sqlite_world();
        world.ok(&["dbbackup"]);
        let before = store_files(&world);
        let mut held = world.spawn_held(&["dbbackup"], step);
        held.wait_at(step);
        held.signal(libc::SIGTERM);
        let r = held.finish();
        assert_eq!(r.code, 130, "{step}: {}", r.stderr);
        assert_eq!(store_files(&world), before, "{step}: nothing left");
        assert_eq!(world.names(None).len(), 1);
    }
    // After the record: the backup is complete and reported as made.
    let (world, _) = sqlite_world();
    let mut held = world.spawn_held(&["dbbackup"], "recorded");
    held.wait_at("recorded");
    held.signal(libc::SIGTERM);
    let r = held.finish();
    assert_eq!(r.code, 0, "{}", r.stderr);
    let names = world.names(None);
    assert_eq!(names.len(), 1);
    world.ok(&["verify", "-i", &names[0]]);
    // Its claim went with it: nothing is left for --clean.
    assert!(
        entries(&world, "leftover").is_empty(),
        "{:?}",
        world.list(None)
    );
}

/// Two runs that want the same name, their claim steps lined up in time,
/// over many trials: both succeed under different names, and every backup
/// is listed and matches its record. (`moveto --ignore-existing` alone
/// collided in about 6% of such pairs.) The lock keeps two runs of one
/// database apart (tests/locks.rs); the claims are the second guard, for a
/// run whose lock was removed by mistake: here after a checked it, before
/// its claim.
#[test]
fn runs_claiming_one_name_at_the_same_moment_never_share_it() {
    const TRIALS: usize = 20;
    let (mut world, _) = sqlite_world();
    // Every run of the day wants the same name.
    world.setting("db_date_format = \"%Y-%m-%d\"");
    world.ok(&["listbackups"]);
    for trial in 0..TRIALS {
        let mut a = world.spawn_held(&["dbbackup"], "claim");
        a.wait_at("claim");
        world.ok(&["unlock", "--force"]);
        let mut b = world.spawn_held(&["dbbackup"], "claim");
        b.wait_at("claim");
        // One write releases both at once.
        std::fs::write(a.dir.path().join("claim.go"), b"").unwrap();
        std::fs::write(b.dir.path().join("claim.go"), b"").unwrap();
        let (ra, rb) = (a.finish(), b.finish());
        assert_eq!(ra.code, 0, "trial {trial}: {}", ra.stderr);
        assert_eq!(rb.code, 0, "trial {trial}: {}", rb.stderr);
    }
    let names = world.names(None);
    assert_eq!(names.len(), 2 * TRIALS, "{names:?}");
    let distinct: BTreeSet<_> = names.iter().collect();
    assert_eq!(distinct.len(), names.len());
    assert!(entries(&world, "damaged").is_empty());
    assert!(entries(&world, "leftover").is_empty());
    for n in &names {
        world.ok(&["verify", "-i", n]);
    }
}

/// A run whose own backup is no longer among the newest `keep` when its
/// cleanup starts (a concurrent run published since) used to fail with
/// "would delete the backup just made". It keeps its backup and succeeds.
#[test]
fn concurrent_cleanups_do_not_fail_each_other() {
    let (mut world, _) = sqlite_world();
    world.setting("db_cleanup_keep = 1");
    world.ok(&["dbbackup"]);
    let mut a = world.spawn_held(&["dbbackup", "--clean"], "cleaning");
    a.wait_at("cleaning");
    let mine: Vec<String> = world.names(None);
    // Waits for a's lock (tests/locks.rs), then publishes a newer backup.
    let b = world.spawn(&["--lock-wait", "60", "dbbackup"]);
    a.release("cleaning");
    let r = a.finish();
    assert_eq!(r.code, 0, "{}", r.stderr);
    let rb = b.wait_with_output().unwrap();
    assert!(
        rb.status.success(),
        "{}",
        String::from_utf8_lossy(&rb.stderr)
    );
    let after = world.names(None);
    assert!(after.contains(&mine[0]), "a's own backup kept: {after:?}");

    // And a crowd of them, keep = 2.
    world.settings = world
        .settings
        .replace("db_cleanup_keep = 1", "db_cleanup_keep = 2");
    for round in 0..3 {
        let children: Vec<_> = (0..4)
            .map(|_| world.spawn(&["--lock-wait", "120", "dbbackup", "--clean"]))
            .collect();
        for c in children {
            let out = c.wait_with_output().unwrap();
            assert!(
                out.status.success(),
                "round {round}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
    assert!(world.names(None).len() >= 2);
    assert!(entries(&world, "damaged").is_empty());
}

/// Writing to a closed pipe, a closed descriptor or a full disk is an
/// error with exit 1, never a panic (101), and never stops a backup half-way.
#[test]
fn a_closed_or_failing_output_is_an_error_not_a_panic() {
    let (world, _) = sqlite_world();
    world.ok(&["dbbackup"]);

    let mut child = world
        .command(&["listbackups"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take()); // `| head -0`
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("standard output") && !err.contains("panicked"),
        "{err}"
    );

    for args in [
        &["listbackups", "--json"][..],
        &["verify"][..],
        &["listbackups"][..],
    ] {
        let full = std::fs::File::options()
            .write(true)
            .open("/dev/full")
            .unwrap();
        let out = world.command(args).stdout(full).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?} > /dev/full: {err}");
        assert!(!err.contains("panicked"), "{err}");
    }

    // `listbackups --json >&-`: nothing written must not be success.
    let env = world.command(&[]);
    let mut closed = std::process::Command::new("bash");
    closed
        .arg("-c")
        .arg(format!("exec '{}' listbackups --json >&-", bin()));
    for (k, v) in env.get_envs() {
        if let Some(v) = v {
            closed.env(k, v);
        }
    }
    closed.current_dir(world.dir.path());
    let out = closed.output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // `rcbackup -v dbbackup 2>&1 | head -0`: the backup still completes.
    let mut child = world
        .command(&["-v", "dbbackup"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    drop(child.stderr.take());
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0));
    let names = world.names(None);
    assert_eq!(names.len(), 2);
    assert!(entries(&world, "leftover").is_empty());
    for n in names {
        world.ok(&["verify", "-i", &n]);
    }
}

/// `dbrestore` on a terminal (`script`), its input piped, and what it
/// prints gathered by a thread as it comes.
#[allow(clippy::type_complexity)]
fn restore_on_terminal(
    world: &World,
) -> (
    std::process::Child,
    std::sync::Arc<std::sync::Mutex<Vec<u8>>>,
    std::thread::JoinHandle<()>,
) {
    use std::io::Read;
    let mut child = world
        .on_terminal_command("dbrestore")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = child.stdout.take().unwrap();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let reader = {
        let seen = seen.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = out.read(&mut buf) {
                if n == 0 {
                    break;
                }
                seen.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        })
    };
    (child, seen, reader)
}

/// Ctrl-C at the [y/N] prompt used to print that it was stopping and then
/// keep waiting; a `y` typed afterwards restored. It cancels, exit 130.
#[test]
fn an_interrupt_at_the_restore_prompt_cancels() {
    use std::io::Write;
    let (world, file) = sqlite_world();
    world.ok(&["dbbackup"]);
    sqlite(&file, "DELETE FROM items");
    let (mut child, seen, reader) = restore_on_terminal(&world);
    // The rcbackup process itself, known by its executable: `script` runs
    // it through a shell whose command line also says "dbrestore", and a
    // shell that does not exec its last command would take the signal in
    // its place (it did on CI, and the `y` typed afterwards restored).
    let binary = std::fs::canonicalize(bin()).unwrap();
    let rcbackup = {
        let mut found = None;
        wait_until(30, "rcbackup to start", || {
            found = descendants(child.id()).into_iter().find(|p| {
                std::fs::read_link(format!("/proc/{p}/exe")).is_ok_and(|exe| exe == binary)
            });
            found.is_some()
        });
        found.unwrap()
    };
    wait_until(60, "the question", || {
        String::from_utf8_lossy(&seen.lock().unwrap()).contains("[y/N]")
    });
    // It is now waiting for an answer.
    unsafe {
        libc::kill(rcbackup as libc::pid_t, libc::SIGINT);
    }
    std::thread::sleep(Duration::from_millis(500));
    let mut stdin = child.stdin.take().unwrap();
    let _ = stdin.write_all(b"y\n");
    drop(stdin);
    let status = child.wait().unwrap();
    reader.join().unwrap();
    let shown = String::from_utf8_lossy(&seen.lock().unwrap()).into_owned();
    assert_eq!(status.code(), Some(130), "{shown}");
    assert!(shown.contains("[y/N]"), "{shown}");
    assert_eq!(count(&file), "0", "nothing restored");
}

/// Outside review: the answer typed at the prompt was never acted on while
/// the terminal stayed open: std's buffered stdin took the whole line on its
/// first one-byte read, and poll(2) then waited for more. The tests typed
/// the answer and closed the terminal, whose end-of-file released the rest
/// of the line. Here the terminal stays open, as a person's does.
#[test]
fn an_answer_at_the_prompt_is_acted_on_while_the_terminal_stays_open() {
    use std::io::Write;
    let (world, file) = sqlite_world();
    world.ok(&["dbbackup"]);
    let rows = count(&file);
    for (answer, code, left) in [("n\n", 3, "0"), ("y\n", 0, rows.as_str())] {
        sqlite(&file, "DELETE FROM items");
        let (mut child, seen, reader) = restore_on_terminal(&world);
        wait_until(60, "the question", || {
            String::from_utf8_lossy(&seen.lock().unwrap()).contains("[y/N]")
        });
        // Typed, and the terminal left open.
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(answer.as_bytes()).unwrap();
        stdin.flush().unwrap();
        let mut status = None;
        wait_until(60, "rcbackup to act on the answer", || {
            status = child.try_wait().unwrap();
            status.is_some()
        });
        drop(stdin);
        reader.join().unwrap();
        let shown = String::from_utf8_lossy(&seen.lock().unwrap()).into_owned();
        assert_eq!(status.unwrap().code(), Some(code), "{answer:?}: {shown}");
        assert_eq!(count(&file), left, "{answer:?}");
    }
}

/// rclone failing after it moved the upload into place (or while writing
/// the record) used to leave a full-size data object without a record that
/// no --clean removed. The run undoes its work: exit 1, nothing left.
#[test]
fn an_rclone_error_after_the_move_leaves_nothing() {
    if rclone_server_mode() {
        return the_server_ending_after_the_move_leaves_nothing();
    }
    for (what, body) in [
        (
            "moveto moved, then failed",
            r#""$REAL" "$@"; st=$?; for a in "$@"; do [ "$a" = moveto ] && exit 1; done; exit $st"#,
        ),
        (
            "record write failed",
            r#"if [ "$1" = rcat ]; then case "$2" in *.rcbackup/records/*) cat >/dev/null; echo "simulated failure" >&2; exit 1;; esac; fi; exec "$REAL" "$@""#,
        ),
    ] {
        let (mut world, _) = sqlite_world();
        world.ok(&["dbbackup"]);
        let before = store_files(&world);
        world.wrap_tool("rclone", body);
        let r = world.run(&["dbbackup"]);
        assert_eq!(r.code, 1, "{what}: {}", r.stderr);
        assert!(
            r.stderr.contains("nothing was published"),
            "{what}: {}",
            r.stderr
        );
        world.path_prefix.clear();
        assert_eq!(store_files(&world), before, "{what}: nothing left");
        assert_eq!(world.names(None).len(), 1, "{what}");
    }
}

/// The same with one server per run: the server ends (killed, as the OOM
/// killer would) once the data object is in place. The run notices before
/// its next call, says so, and finishes with one rclone process per call:
/// the backup is published whole, and nothing is left over.
fn the_server_ending_after_the_move_leaves_nothing() {
    let (world, _) = sqlite_world();
    world.ok(&["dbbackup"]);
    let mut held = world.spawn_held(&["dbbackup"], "moved");
    held.wait_at("moved");
    let server = live_child(held.child.id(), "rclone", &["rcd"]).expect("the run's server");
    sigkill(server);
    wait_until(10, "the server to end", || !alive(server));
    held.release("moved");
    let r = held.finish();
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_mentions(
        &r.stderr,
        &[
            "rclone server of this run",
            "killed by signal 9",
            "one rclone process per call",
        ],
    );
    assert_eq!(world.names(None).len(), 2);
    assert!(entries(&world, "leftover").is_empty());
    world.ok(&["verify"]);
}

/// A backup whose data object vanished from the remote (its record stays)
/// was skipped: restore took the older one with exit 0, and verify passed.
#[test]
fn a_newest_backup_whose_data_is_gone_is_not_skipped() {
    let (world, file) = sqlite_world();
    let names = three_backups(&world, &file);
    std::fs::remove_file(world.store.join(format!("db/{}", names[2]))).unwrap();
    sqlite(&file, "DELETE FROM items");
    let r = world.run(&["dbrestore", "--noinput"]);
    assert_eq!(r.code, 4, "{}", r.stderr);
    assert_mentions(
        &r.stderr,
        &[&names[2], "missing", &format!("-i {}", names[1])],
    );
    assert_eq!(count(&file), "0");
    assert_eq!(world.run(&["verify"]).code, 4);
    let damaged = entries(&world, "damaged");
    assert_eq!(damaged.len(), 1, "{damaged:?}");
    world.ok(&["dbrestore", "--noinput", "-i", &names[1]]);
    assert_eq!(count(&file), "2001");
}

/// A run's backup is not deleted by another run's retention while the run
/// that made it is still going (it holds its claim until it ends); it used
/// to be, and the run then reported a backup that was gone.
#[test]
fn a_backup_is_not_deleted_by_another_run_while_its_run_is_going() {
    let (mut world, _) = sqlite_world();
    world.setting("db_cleanup_keep = 1");
    world.ok(&["dbbackup"]);
    let mut a = world.spawn_held(&["dbbackup"], "recorded");
    a.wait_at("recorded");
    let a_backup = world.names(None).remove(0);
    std::thread::sleep(Duration::from_millis(1100));
    // a's lock keeps b out; someone removes it by mistake (a lock is the
    // first guard, the claim a holds until it ends is the second).
    world.ok(&["unlock", "--force"]);
    let b = world.ok(&["dbbackup", "--clean"]);
    assert!(
        world.names(None).contains(&a_backup),
        "a's backup kept while a runs: {}",
        b.stderr
    );
    a.release("recorded");
    let r = a.finish();
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(world.names(None).contains(&a_backup));
    // Once a has ended, retention treats it like any other backup.
    std::thread::sleep(Duration::from_millis(1100));
    world.ok(&["dbbackup", "--clean"]);
    assert_eq!(world.names(None).len(), 1);
    assert!(entries(&world, "leftover").is_empty());
}

/// Records without a final newline (written by another tool) were each
/// read again with their own rclone call: 2,000 of them took minutes.
/// They are taken from the one read of the folder.
#[test]
fn records_without_a_final_newline_are_read_in_one_go() {
    let (mut world, _) = sqlite_world();
    world.ok(&["dbbackup"]);
    let name = world.names(None).remove(0);
    let data = std::fs::read(world.store.join(format!("db/{name}"))).unwrap();
    let record: serde_json::Value =
        serde_json::from_slice(&std::fs::read(record_file(&world, &name)).unwrap()).unwrap();
    for i in 0..40 {
        let n = format!("default-2025-01-01-{i:06}.sqlite3");
        std::fs::write(world.store.join(format!("db/{n}")), &data).unwrap();
        let mut r = record.clone();
        r["name"] = n.clone().into();
        r["created"] = format!("2025-01-01T00:00:{:02}Z", i % 60).into();
        // serde_json::to_vec: compact, no newline at the end.
        std::fs::write(record_file(&world, &n), serde_json::to_vec(&r).unwrap()).unwrap();
    }
    let log = world.path("rclone-calls.log");
    world.wrap_tool(
        "rclone",
        &format!(r#"echo "$1" >> '{}'; exec "$REAL" "$@""#, log.display()),
    );
    assert_eq!(world.names(None).len(), 41);
    let calls = std::fs::read_to_string(&log).unwrap();
    if rclone_server_mode() {
        // Every record is one request to the run's server, read once:
        // no rclone process but the server.
        assert_eq!(calls.trim(), "rcd", "only the server ran: {calls}");
    } else {
        let cats = calls.lines().filter(|l| *l == "cat").count();
        assert_eq!(cats, 1, "one read of the records folder: {calls}");
    }
}

/// SIGTERM while `--clean` runs, after the backup was published: the
/// backup stands and the message says so (it used to blame the remote,
/// naming the rclone call the signal stopped).
#[test]
fn an_interrupt_during_cleanup_names_the_published_backup() {
    let (world, _) = sqlite_world();
    world.ok(&["dbbackup"]);
    let mut held = world.spawn_held(&["dbbackup", "--clean"], "cleaning");
    held.wait_at("cleaning");
    held.signal(libc::SIGTERM);
    let r = held.finish();
    assert_eq!(r.code, 130, "{}", r.stderr);
    let names = world.names(None);
    assert_eq!(names.len(), 2);
    assert_mentions(
        &r.stderr,
        &[&names[0], "is complete", "cleanup did not finish"],
    );
    assert_lacks(&r.stderr, &["Check that the remote"]);
    world.ok(&["verify", "-i", &names[0]]);
    assert!(
        entries(&world, "leftover").is_empty(),
        "{:?}",
        world.list(None)
    );
}

/// A backup name `len` bytes long made by the template, on `world`'s
/// `default` SQLite database (`%Y-%m-%d` dates, extension `sqlite3`).
fn template_of_length(len: usize) -> String {
    // "default-" + "YYYY-MM-DD" + "-" + pad + ".sqlite3"
    let fixed = "default-".len() + 10 + 1 + ".sqlite3".len();
    format!(
        "{{database}}-{{datetime}}-{}.{{ext}}",
        "x".repeat(len - fixed)
    )
}

/// Issue 8, item 17: a crypt remote (standard filename encryption) refuses
/// an object name longer than 143 bytes. Backup names of 130 and 143 bytes
/// passed the name guard and failed after the dump had started, because the
/// upload in `partial/`, the claim and the record have longer names than the
/// backup. Now the limit on a backup name leaves room for every object it
/// needs: the longest allowed name backs up, gets its `-2` twin and reads
/// back through crypt, and a longer one is refused before anything is
/// dumped (exit 2: it is the config's template that is too long).
#[test]
fn every_object_of_a_backup_fits_a_crypt_remote() {
    let mut world = World::new(Remote::Crypt);
    world.seeded_sqlite("default", 50);
    let dumped = world.mark_runs_of("sqlite3");
    let limit = 120;
    for len in [143, 130, limit + 1] {
        // Uncompressed: the name is exactly the template's length.
        world.settings = format!(
            "db_filename_template = \"{}\"\ndb_date_format = \"%Y-%m-%d\"\ncompression = \"none\"\n",
            template_of_length(len)
        );
        let r = world.run(&["dbbackup"]);
        assert_eq!(r.code, 2, "a {len}-byte name:\n{}", r.stderr);
        assert!(
            r.stderr.contains(&format!("is {len} bytes long"))
                && r.stderr.contains(&format!("at most {limit} bytes"))
                && r.stderr.contains("db_filename_template"),
            "a {len}-byte name: {}",
            r.stderr
        );
        assert!(!dumped.exists(), "a {len}-byte name: the dump was started");
        assert_eq!(world.stored_files(), Vec::<PathBuf>::new(), "{len} bytes");
    }

    world.settings = format!(
        "db_filename_template = \"{}\"\ndb_date_format = \"%Y-%m-%d\"\ncompression = \"none\"\n",
        template_of_length(limit)
    );
    world.ok(&["dbbackup"]);
    // The same day: the same name, so the second run takes its `-2` twin,
    // which must fit as well. (A run that crosses midnight UTC gets a new
    // name instead; a third run then makes the twin.)
    world.ok(&["dbbackup"]);
    let mut list = world.list(None);
    if !list
        .iter()
        .any(|b| b["name"].as_str().unwrap().ends_with("-2.sqlite3"))
    {
        world.ok(&["dbbackup"]);
        list = world.list(None);
    }
    let names: Vec<&str> = list.iter().map(|b| b["name"].as_str().unwrap()).collect();
    assert!(
        list.iter().all(|b| b["status"] == "ok"),
        "only backups, no leftover: {list:?}"
    );
    assert!((2..=3).contains(&names.len()), "{names:?}");
    for name in &names {
        assert!(name.len() <= limit, "{name} is {} bytes", name.len());
        assert!(name.ends_with(".sqlite3"), "{name}");
        world.ok(&["verify", "-i", name]);
    }
    assert!(names.iter().any(|n| n.len() == limit), "{names:?}");
    assert!(names.iter().any(|n| n.ends_with("-2.sqlite3")), "{names:?}");
}

/// Issue 8, item 18, for names from the template: a right-to-left
/// override (`{database}-{datetime}` U+202E `gpj.exe` shows as
/// `...exe.jpg`), a wildcard and a leading space are refused when the
/// config loads (exit 2, before any dump), and the message shows the
/// override escaped, not applied.
#[test]
fn template_names_with_hidden_or_special_characters_are_refused() {
    let mut world = World::new(Remote::Local);
    world.seeded_sqlite("default", 5);
    let dumped = world.mark_runs_of("sqlite3");
    for (template, shown, cause) in [
        (
            "{database}-{datetime}\\u202Egpj.{ext}",
            "{database}-{datetime}\\u{202e}gpj.{ext}",
            "U+202E, a bidirectional control",
        ),
        ("{database}-*-{datetime}.{ext}", "-*-", "contains `*`"),
        (
            " {database}-{datetime}.{ext}",
            " {database}",
            "starts or ends with a space",
        ),
    ] {
        world.settings = format!("db_filename_template = \"{template}\"\n");
        let r = world.run(&["dbbackup"]);
        assert_eq!(r.code, 2, "{template}: {}", r.stderr);
        assert!(
            r.stderr.contains("db_filename_template")
                && r.stderr.contains(shown)
                && r.stderr.contains(cause),
            "{template}: {}",
            r.stderr
        );
        assert!(!r.stderr.contains('\u{202E}'), "{}", r.stderr);
        assert!(!dumped.exists(), "{template}: the dump ran");
        assert_eq!(world.stored_files(), Vec::<PathBuf>::new());
    }
}

/// Outside review of the Django bridge: `listbackups` interrupted after it
/// had read the catalog said it was stopping, then printed the whole listing
/// and exited 0, and the bridge took that listing to restore from. An
/// interrupt before the report is printed stops it: exit 130, nothing on
/// stdout, in text and JSON.
#[test]
fn an_interrupted_listing_prints_nothing_and_exits_130() {
    let (world, _) = sqlite_world();
    world.ok(&["dbbackup"]);
    for args in [&["listbackups"][..], &["listbackups", "--json"]] {
        let mut held = world.spawn_held(args, "listed");
        held.wait_at("listed");
        held.signal(libc::SIGINT);
        let r = held.finish();
        assert_eq!(r.code, 130, "{args:?}: {}", r.stderr);
        assert_eq!(r.stdout, "", "{args:?}");
        assert!(
            r.stderr.contains("interrupted; nothing was listed"),
            "{args:?}: {}",
            r.stderr
        );
    }
    // Not interrupted: listed.
    assert_eq!(world.list(None).len(), 1);
}

/// Outside review of the Django bridge: two signals at once (a hangup;
/// systemd's SIGTERM then SendSIGHUP) made rcbackup quit at once, leaving
/// its lock and its partial upload. They are one stop: it cleans up.
#[test]
fn two_signals_at_once_are_one_stop() {
    let (world, _) = sqlite_world();
    world.ok(&["dbbackup"]);
    let before = store_files(&world);
    let mut held = world.spawn_held(&["dbbackup"], "uploaded");
    held.wait_at("uploaded");
    held.signal(libc::SIGTERM);
    held.signal(libc::SIGHUP);
    let r = held.finish();
    assert_eq!(r.code, 130, "{}", r.stderr);
    assert!(r.stderr.contains("nothing was published"), "{}", r.stderr);
    assert_eq!(store_files(&world), before);
}

/// Outside review: rcbackup handled SIGHUP even when it was started with
/// SIGHUP ignored, so `nohup rcbackup dbbackup &` was interrupted when
/// the shell that started it ended. An ignored SIGHUP stays ignored; a
/// handled one still interrupts (exit 130).
#[test]
fn a_run_started_with_sighup_ignored_outlives_a_hangup() {
    use std::os::unix::process::CommandExt;
    let (world, _) = sqlite_world();
    for ignored in [true, false] {
        let dir = tempfile::tempdir().unwrap();
        let mut cmd = world.command(&["dbbackup"]);
        cmd.env("RCBACKUP_TEST_PAUSE", "dump-started")
            .env("RCBACKUP_TEST_PAUSE_DIR", dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if ignored {
            // SAFETY: signal(2) between fork and exec, as nohup does.
            unsafe {
                cmd.pre_exec(|| {
                    libc::signal(libc::SIGHUP, libc::SIG_IGN);
                    Ok(())
                });
            }
        }
        let mut held = Held {
            child: cmd.spawn().unwrap(),
            dir,
        };
        held.wait_at("dump-started");
        held.signal(libc::SIGHUP);
        std::thread::sleep(Duration::from_millis(300));
        held.release("dump-started");
        let r = held.finish();
        let want = if ignored { 0 } else { 130 };
        assert_eq!(r.code, want, "SIGHUP ignored: {ignored}: {}", r.stderr);
    }
    assert_eq!(world.names(None).len(), 1);
}

/// Outside review (round 5): with one rclone server per run, SIGTERM during
/// a slow upload let the upload run to its end (33 s at 300 KB/s) before
/// the run deleted it and exited. The upload stops at once.
#[test]
fn sigterm_stops_a_slow_upload_at_once() {
    let mut world = World::new(Remote::Local);
    let file = world.path("big.sqlite3");
    let blob: String = (0..4_000_000u32)
        .map(|i| char::from(b'a' + (i.wrapping_mul(2_654_435_761) >> 27) as u8 % 26))
        .collect();
    let blob_file = world.path("blob.txt");
    std::fs::write(&blob_file, blob).unwrap();
    sqlite(
        &file,
        &format!(
            "CREATE TABLE t (x); INSERT INTO t VALUES (readfile('{}'));",
            blob_file.display()
        ),
    );
    world.sqlite("default", &file);
    world.setting("compression = \"none\"");
    world.setting("rclone_flags = [\"--bwlimit\", \"300k\"]");
    let mut held = world.spawn_held(&["dbbackup"], "dump-started");
    held.wait_at("dump-started");
    held.release("dump-started");
    std::thread::sleep(Duration::from_millis(1500));
    let stopped = std::time::Instant::now();
    held.signal(libc::SIGTERM);
    let r = held.finish();
    assert_eq!(r.code, 130, "{}", r.stderr);
    assert!(
        stopped.elapsed() < Duration::from_secs(5),
        "the run took {:?} to stop",
        stopped.elapsed()
    );
    assert!(world.names(None).is_empty());
    let left: Vec<String> = store_files(&world)
        .into_iter()
        .filter(|p| !p.contains("/locks/"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}
