//! The promises a small plausible bug in the core would break, each held by
//! an end-to-end test that fails when the bug is put in: what the listing
//! shows, which backup restore and verify pick, how old an abandoned upload
//! is, and that a vetoing hook or a denying approval changes nothing and
//! downloads nothing. SQLite and a local-folder remote, so that a test can
//! damage the stored objects directly.

mod common;
mod policy_support;

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use common::*;
use policy_support::rust_guest;

/// A world with one SQLite database `default` (table `t`) and its own
/// policy compile cache.
fn world() -> (World, PathBuf) {
    let w = policy_support::world();
    let file = w.path("app.sqlite3");
    (w, file)
}

fn rows(file: &Path) -> String {
    sqlite(
        file,
        "SELECT group_concat(x, ',') FROM (SELECT x FROM t ORDER BY x);",
    )
    .trim()
    .to_string()
}

/// Backs up once per content: before each backup, `t` gets one more row,
/// so backup #i (0-based) restores rows 1..=i+1. Returns the names, oldest
/// first.
fn backups_with_growing_content(w: &World, file: &Path, n: u32) -> Vec<String> {
    let mut names = Vec::new();
    for i in 0..n {
        if i > 0 {
            sqlite(file, &format!("INSERT INTO t VALUES ({});", i + 1));
        }
        w.ok(&["dbbackup"]);
        let listed = w.names(None);
        assert_eq!(listed.len(), i as usize + 1, "{listed:?}");
        // Newest first: the one just made is on top.
        names.push(listed[0].clone());
        // Distinct created seconds, so that "newest" never rests on a tie.
        std::thread::sleep(Duration::from_millis(1100));
    }
    names
}

fn data_object(w: &World, name: &str) -> PathBuf {
    w.store.join("db").join(name)
}

fn partial_dir(w: &World) -> PathBuf {
    w.store.join("db/.rcbackup/partial")
}

/// Logs every rclone call's argv, one line each, to the returned file; with
/// one rclone server per run, every call rcbackup makes to it, in the same
/// words (`cat PATH`, `rcat PATH`, ...), taken from its -v log.
fn log_rclone(w: &mut World) -> PathBuf {
    let log = w.path("rclone-calls.log");
    w.log_server_calls(&log);
    w.wrap_tool(
        "rclone",
        &format!(
            "printf '%s\\n' \"$*\" >> '{}'\nexec \"$REAL\" \"$@\"",
            log.display()
        ),
    );
    log
}

fn calls(log: &Path) -> Vec<String> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn restore_and_verify_pick_the_newest_backup() {
    let (w, file) = world();
    let names = backups_with_growing_content(&w, &file, 3);
    assert_eq!(
        w.names(None),
        [names[2].clone(), names[1].clone(), names[0].clone()]
    );
    sqlite(&file, "DELETE FROM t;");
    w.ok(&["dbrestore", "--noinput"]);
    assert_eq!(rows(&file), "1,2,3", "restored the newest backup");
    let r = w.ok(&["verify"]);
    assert!(
        r.stdout.starts_with(&format!("{}: OK", names[2])),
        "verify checked the newest: {}",
        r.stdout
    );
    // -i still picks the one named.
    w.ok(&["dbrestore", "--noinput", "-i", &names[0]]);
    assert_eq!(rows(&file), "1");
}

#[test]
fn listing_never_passes_a_backup_of_the_wrong_size_or_without_data_as_good() {
    let (w, file) = world();
    let names = backups_with_growing_content(&w, &file, 3);

    // The newest grows by one byte: its record no longer matches.
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(data_object(&w, &names[2]))
        .unwrap();
    std::io::Write::write_all(&mut f, b"\n").unwrap();
    drop(f);
    assert_eq!(
        w.names(None),
        [names[1].clone(), names[0].clone()],
        "wrong size not listed"
    );
    // Damaged is not hidden: restore and verify refuse it, naming the
    // newest intact backup, and take that one only when told to.
    sqlite(&file, "DELETE FROM t;");
    let r = w.run(&["dbrestore", "--noinput"]);
    assert_eq!(r.code, 4, "{}", r.stderr);
    assert_mentions(&r.stderr, &[&names[2], &format!("-i {}", names[1])]);
    assert_eq!(rows(&file), "", "nothing restored");
    w.ok(&["dbrestore", "--noinput", "-i", &names[1]]);
    assert_eq!(rows(&file), "1,2");
    assert_eq!(w.run(&["verify"]).code, 4);
    let r = w.ok(&["verify", "-i", &names[1]]);
    assert!(
        r.stdout.starts_with(&format!("{}: OK", names[1])),
        "{}",
        r.stdout
    );

    // The middle one loses its data object; its record stays.
    std::fs::remove_file(data_object(&w, &names[1])).unwrap();
    assert!(w
        .store
        .join(format!("db/.rcbackup/records/{}.json", names[1]))
        .is_file());
    assert_eq!(
        w.names(None),
        [names[0].clone()],
        "a record without data not listed"
    );
    sqlite(&file, "DELETE FROM t;");
    w.ok(&["dbrestore", "--noinput", "-i", &names[0]]);
    assert_eq!(rows(&file), "1");
    let r = w.run(&["dbrestore", "--noinput", "-i", &names[1]]);
    assert_eq!(r.code, 4, "{}", r.stderr);
    assert_mentions(&r.stderr, &[&names[1], "data object is missing"]);
}

#[test]
fn abandoned_upload_age_counts_its_last_write() {
    let (w, _) = world();
    w.ok(&["dbbackup"]);
    let dir = partial_dir(&w);
    std::fs::create_dir_all(&dir).unwrap();
    let long_ago = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000_000);
    let now_secs = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let make = |name: &str, old_mtime: bool| {
        let p = dir.join(name);
        std::fs::write(&p, b"half an upload").unwrap();
        if old_mtime {
            let f = std::fs::File::options().write(true).open(&p).unwrap();
            f.set_modified(long_ago).unwrap();
        }
        p
    };
    // An old run id, but written a moment ago: a run that is still going
    // (a long dump, or a clock that was wrong when it started).
    let old_id_fresh_write = make("default-a.sqlite3.1000000000-41", false);
    // A fresh run id, last written long ago: started just now.
    let fresh_id_old_write = make(&format!("default-b.sqlite3.{now_secs}-42"), true);
    // Old by both: abandoned.
    let abandoned = make("default-c.sqlite3.1000000000-43", true);

    let dry = w.ok(&["dbbackup", "--clean", "--dry-run"]);
    assert!(
        dry.stdout.contains("default-c.sqlite3.1000000000-43"),
        "{}",
        dry.stdout
    );
    assert_lacks(&dry.stdout, &["1000000000-41", &format!("{now_secs}-42")]);

    w.ok(&["dbbackup", "--clean"]);
    assert!(!abandoned.exists(), "the abandoned upload is removed");
    assert!(
        old_id_fresh_write.exists(),
        "an upload written a moment ago survives whatever its run id says"
    );
    assert!(
        fresh_id_old_write.exists(),
        "an upload begun just now survives"
    );
    assert_eq!(w.names(None).len(), 2);
}

/// `[[hooks]]` event-log vetoing every "pre" event but the backup's.
fn add_vetoing_hook(w: &mut World) {
    w.databases.push_str(&format!(
        "\n[[hooks]]\nmodule = \"{}\"\nconfig = {{ veto = [\"pre-db-restore\", \"pre-media-backup\", \"pre-media-restore\"] }}\n",
        rust_guest("event_log").display()
    ));
}

fn media_world() -> (World, PathBuf, PathBuf, PathBuf) {
    let (mut w, file) = world();
    let root = w.path("media");
    std::fs::create_dir_all(&root).unwrap();
    std::fs::write(root.join("a.txt"), "as backed up").unwrap();
    w.setting(&format!("media_root = \"{}\"", root.display()));
    w.ok(&["mediabackup"]);
    let mirror = w.store.join("media");
    assert_eq!(
        std::fs::read_to_string(mirror.join("a.txt")).unwrap(),
        "as backed up"
    );
    (w, file, root, mirror)
}

fn tree(dir: &Path) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .filter(|e| e.path().is_file())
        .map(|e| {
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read_to_string(e.path()).unwrap(),
            )
        })
        .collect();
    out.sort();
    out
}

/// No rclone call read a backup or wrote local media: no `cat` of a data
/// object, no copy or sync that is not a dry run.
#[track_caller]
fn nothing_downloaded(log: &Path) {
    for call in calls(log) {
        let words: Vec<&str> = call.split_whitespace().collect();
        let verb = words.first().copied().unwrap_or("");
        let reads_backup = verb == "cat" && !call.contains(".rcbackup/records");
        let copies = ["copy", "copyto", "sync", "move", "moveto"].contains(&verb)
            && !words.contains(&"--dry-run");
        assert!(
            !reads_backup && !copies,
            "this rclone call reads or changes data: {call}\nall calls: {:#?}",
            calls(log)
        );
    }
}

#[test]
fn a_vetoing_pre_hook_stops_restores_and_media_changing_nothing() {
    let (mut w, file, root, mirror) = media_world();
    w.ok(&["dbbackup"]);
    add_vetoing_hook(&mut w);
    // Change the data after the backups, so that a restore would show.
    sqlite(&file, "INSERT INTO t VALUES (2);");
    std::fs::write(root.join("a.txt"), "changed since").unwrap();
    std::fs::write(root.join("new.txt"), "new").unwrap();
    let local_before = tree(&root);
    let mirror_before = tree(&mirror);
    let store_before = w.stored_files();
    let log = log_rclone(&mut w);

    let r = w.run(&["dbrestore", "--noinput"]);
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert_mentions(
        &r.stderr,
        &["vetoed", "event-log is configured to veto pre-db-restore"],
    );
    assert_eq!(rows(&file), "1,2", "the database is untouched");

    let r = w.run(&["mediarestore", "--noinput"]);
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert_mentions(&r.stderr, &["vetoed", "veto pre-media-restore"]);
    assert_eq!(tree(&root), local_before, "the media folder is untouched");

    let r = w.run(&["mediabackup"]);
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert_mentions(&r.stderr, &["vetoed", "veto pre-media-backup"]);
    assert_eq!(tree(&mirror), mirror_before, "the mirror is untouched");
    assert_eq!(
        w.stored_files(),
        store_before,
        "nothing on the remote changed"
    );
    nothing_downloaded(&log);
    // The hook is what stopped them: without it, each goes through.
    w.databases = w.databases.split("\n[[hooks]]").next().unwrap().to_string();
    w.ok(&["dbrestore", "--noinput"]);
    assert_eq!(rows(&file), "1");
}

#[test]
fn a_denied_restore_changes_nothing_and_downloads_nothing() {
    let (mut w, file, root, _) = media_world();
    w.ok(&["dbbackup"]);
    w.databases.push_str(&format!(
        "\n[policies.restore_approval]\nmodule = \"{}\"\nconfig = {{ protected = [\"default\"], protect_media = true, window = {{ start = \"00:00\", end = \"00:00\" }} }}\n",
        rust_guest("protected_restore").display()
    ));
    // Change the data first: a restore that ran in spite of the denial
    // would bring the backed-up state back.
    sqlite(&file, "DELETE FROM t; INSERT INTO t VALUES (7), (8);");
    std::fs::remove_file(root.join("a.txt")).unwrap();
    std::fs::write(root.join("b.txt"), "new").unwrap();
    let local_before = tree(&root);
    let log = log_rclone(&mut w);

    let r = w.run(&["dbrestore", "--noinput"]);
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert_mentions(
        &r.stderr,
        &[
            "denied",
            "maintenance window is closed",
            "nothing was changed",
        ],
    );
    assert_eq!(rows(&file), "7,8", "the database is untouched");

    let r = w.run(&["mediarestore", "--noinput", "--mirror"]);
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert_mentions(&r.stderr, &["denied", "the media folder is protected"]);
    assert_eq!(tree(&root), local_before, "the media folder is untouched");

    assert!(!calls(&log).is_empty(), "the rclone log works");
    nothing_downloaded(&log);
}
