//! Lease locks on the remote (host/src/lock.rs, docs/locks.md): real
//! rcbackup processes against real rclone (a local folder remote and
//! `rclone serve webdav`), held at failpoints while another run tries.

mod common;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use common::*;

/// Exit code of "another run holds the series" and "the lock was lost".
const LOCKED: i32 = 5;

fn world(remote: Remote) -> World {
    let mut w = World::new(remote);
    w.setting("compression = \"none\"");
    w.seeded_sqlite("default", 200);
    w
}

/// The lock folder of database `alias` in the local store.
fn lock_dir(w: &World, alias: &str) -> PathBuf {
    w.store.join(format!("db/.rcbackup/locks/db-{alias}"))
}

fn lock_files(w: &World, alias: &str) -> Vec<PathBuf> {
    std::fs::read_dir(lock_dir(w, alias))
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .collect()
}

/// Waits for a run started with `World::spawn`, insisting on exit 0.
fn finished_ok(child: std::process::Child) -> Run {
    let r = Run::from(child.wait_with_output().unwrap());
    assert_eq!(r.code, 0, "{}", r.stderr);
    r
}

fn host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .unwrap()
        .trim()
        .to_string()
}

/// Writes a lock object as another run would, straight into the store.
fn craft_lock(w: &World, alias: &str, id: &str, host: &str, pid: u32, expires_in_secs: i64) {
    let now = chrono::Utc::now();
    let body = serde_json::json!({
        "version": 1,
        "id": id,
        "command": "dbbackup",
        "host": host,
        "pid": pid,
        "tenant": null,
        "series": format!("db-{alias}"),
        "created": (now - chrono::Duration::hours(2)).to_rfc3339(),
        "expires": (now + chrono::Duration::seconds(expires_in_secs)).to_rfc3339(),
        "held": true,
    });
    std::fs::create_dir_all(lock_dir(w, alias)).unwrap();
    std::fs::write(
        lock_dir(w, alias).join(format!("{id}.json")),
        body.to_string(),
    )
    .unwrap();
}

fn second_run_fails_naming_the_holder_then_waits(remote: Remote) {
    let w = world(remote);
    let mut first = w.spawn_held(&["dbbackup"], "locked");
    first.wait_at("locked");
    let pid = first.child.id();

    let second = w.run(&["dbbackup"]);
    assert_eq!(second.code, LOCKED, "{}", second.stderr);
    assert_mentions(
        &second.stderr,
        &[
            "database `default` is locked",
            "`dbbackup`",
            &format!("host {}", host()),
            &format!("pid {pid}"),
            "running since",
            "lease until",
            "rcbackup unlock -d default --force",
        ],
    );

    // With --lock-wait it waits for the holder, then goes on.
    let mut waiting = w.spawn(&["--lock-wait", "60s", "dbbackup", "--json"]);
    std::thread::sleep(Duration::from_secs(3));
    assert!(
        waiting.try_wait().unwrap().is_none(),
        "the waiting run must not finish while the first holds the lock"
    );
    let released = chrono::Utc::now();
    first.release("locked");
    let first = first.finish();
    assert_eq!(first.code, 0, "{}", first.stderr);
    let waited = finished_ok(waiting);
    assert_eq!(w.names(Some("default")).len(), 2);
    // Outside review: the waiting run was named and dated when it started,
    // before the run it waited for, so "newest" (restore, retention) was
    // the older dump. It is named and dated once it holds the lock.
    // (With three runs, the later-started waiter could go first and the
    // earlier one be published last under the older name.)
    let made: serde_json::Value = serde_json::from_str(&waited.stdout).unwrap();
    let made = &made["backups"][0];
    let created: chrono::DateTime<chrono::Utc> = made["created"].as_str().unwrap().parse().unwrap();
    assert!(
        created >= released - chrono::Duration::seconds(1),
        "dated {created}, before the run it waited for ended ({released})"
    );
    let newest = &w.list(Some("default"))[0];
    assert_eq!(newest["name"], made["name"], "{newest:#} {made:#}");
    assert!(
        lock_files(&w, "default").is_empty(),
        "locks left: {:?}",
        lock_files(&w, "default")
    );
}

/// Fails before the fix: the second run made a backup beside the first.
#[test]
fn second_backup_of_a_database_is_refused_or_waits_local() {
    second_run_fails_naming_the_holder_then_waits(Remote::Local);
}

#[test]
fn second_backup_of_a_database_is_refused_or_waits_webdav() {
    second_run_fails_naming_the_holder_then_waits(Remote::Webdav);
}

#[test]
fn different_databases_back_up_side_by_side() {
    let mut w = world(Remote::Local);
    w.seeded_sqlite("other", 50);
    let mut first = w.spawn_held(&["dbbackup", "-d", "default"], "locked");
    first.wait_at("locked");
    w.ok(&["dbbackup", "-d", "other"]);
    first.release("locked");
    assert_eq!(first.finish().code, 0);
    assert_eq!(w.names(Some("other")).len(), 1);
    assert_eq!(w.names(Some("default")).len(), 1);
}

#[test]
fn prune_and_restore_wait_for_a_backup_of_their_database() {
    let w = world(Remote::Local);
    w.ok(&["dbbackup"]);
    let file = w.path("default.sqlite3");
    let before = sqlite(&file, "SELECT count(*) FROM items;");
    let mut held = w.spawn_held(&["dbbackup"], "locked");
    held.wait_at("locked");

    for args in [
        &["prune", "-d", "default"][..],
        &["prune"][..],
        &["dbrestore", "--noinput"][..],
    ] {
        let r = w.run(args);
        assert_eq!(r.code, LOCKED, "{args:?}: {}", r.stderr);
        assert_mentions(&r.stderr, &["locked", "nothing was changed"]);
    }
    // Only reading: no lock.
    w.ok(&["prune", "--dry-run"]);
    w.ok(&["listbackups"]);
    w.ok(&["verify", "--all"]);
    assert_eq!(sqlite(&file, "SELECT count(*) FROM items;"), before);

    held.release("locked");
    assert_eq!(held.finish().code, 0);
    w.ok(&["dbrestore", "--noinput"]);
}

/// A holder SIGKILLed on this host frees its series at once: its pid is dead.
#[test]
fn a_holder_killed_here_frees_the_series_at_once() {
    let w = world(Remote::Local);
    let mut held = w.spawn_held(&["dbbackup"], "locked");
    held.wait_at("locked");
    let children = snapshot(&descendants(held.child.id()));
    held.signal(libc::SIGKILL);
    let _ = held.finish();
    kill_leftovers(&children);
    assert_eq!(
        lock_files(&w, "default").len(),
        1,
        "SIGKILL leaves the lock object"
    );

    let started = Instant::now();
    let r = w.run(&["dbbackup"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(started.elapsed() < Duration::from_secs(30));
    assert_eq!(w.names(Some("default")).len(), 1);
    // The next holder removed the dead one's object.
    assert_mentions(
        &r.stderr,
        &["removed a stale lock", "no longer runs on this host"],
    );
    assert!(lock_files(&w, "default").is_empty());
    let u = w.ok(&["unlock", "-d", "default"]);
    assert_mentions(&u.stdout, &["no locks"]);
}

#[test]
fn another_hosts_lock_blocks_until_its_lease_ends() {
    let w = world(Remote::Local);
    // Expired: ignored.
    craft_lock(&w, "default", "expired0000", "elsewhere", 4242, -60);
    w.ok(&["dbbackup"]);
    // Live on another host (its pid means nothing here): blocks.
    craft_lock(&w, "default", "live000000", "elsewhere", 4242, 600);
    let r = w.run(&["dbbackup"]);
    assert_eq!(r.code, LOCKED, "{}", r.stderr);
    assert_mentions(
        &r.stderr,
        &["host elsewhere", "pid 4242", "unlock -d default --force"],
    );
    assert_eq!(w.names(Some("default")).len(), 1);

    // Lock objects are none of the catalog's business.
    for args in [
        &["listbackups", "--json"][..],
        &["verify", "--all"][..],
        &["prune", "--dry-run", "--json"][..],
    ] {
        let out = w.ok(args);
        assert_lacks(&out.stdout, &["locks", "live000000", "expired0000"]);
        assert_lacks(
            &out.stderr,
            &["locks/", "live000000", "expired0000", "leftover"],
        );
    }
}

#[test]
fn unlock_removes_stale_locks_and_with_force_live_ones() {
    let w = world(Remote::Local);
    craft_lock(&w, "default", "stale00000", "elsewhere", 1, -60);
    craft_lock(&w, "default", "live000000", "elsewhere", 4242, 600);

    let u = w.ok(&["unlock"]);
    assert_mentions(
        &u.stdout,
        &[
            "removed the lock of database `default`",
            "its lease ran out",
            "still held by `dbbackup` on host elsewhere (pid 4242",
            "rcbackup unlock -d default --force",
        ],
    );
    let left: Vec<String> = lock_files(&w, "default")
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(left, ["live000000.json"]);
    assert_eq!(w.run(&["dbbackup"]).code, LOCKED);

    let j = w.ok(&["unlock", "-d", "default", "--force", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&j.stdout).unwrap();
    assert_eq!(v["removed"].as_array().unwrap().len(), 1);
    assert!(lock_files(&w, "default").is_empty());
    w.ok(&["dbbackup"]);
}

fn lost_lock_publishes_nothing(remote: Remote) {
    let w = world(remote);
    let mut held = w.spawn_held(&["dbbackup"], "uploaded");
    held.wait_at("uploaded");
    // Someone ran `unlock --force` (another run may now hold the series).
    let u = w.ok(&["unlock", "-d", "default", "--force"]);
    assert_mentions(&u.stdout, &["removed the lock of database `default`"]);
    assert!(lock_files(&w, "default").is_empty());
    held.release("uploaded");
    let r = held.finish();
    assert_eq!(r.code, LOCKED, "{}", r.stderr);
    assert_mentions(
        &r.stderr,
        &[
            "lock on database `default` was lost",
            "nothing was published",
        ],
    );
    assert!(w.names(Some("default")).is_empty());
    let left: Vec<String> = store_files(&w).into_iter().collect();
    assert!(
        left.iter()
            .all(|f| !f.contains("partial") && !f.contains("claims")),
        "half-made objects left: {left:?}"
    );
}

/// Fails before the check: the backup was published by a run that no longer
/// held the series.
#[test]
fn a_lost_lock_publishes_nothing_local() {
    lost_lock_publishes_nothing(Remote::Local);
}

#[test]
fn a_lost_lock_publishes_nothing_webdav() {
    lost_lock_publishes_nothing(Remote::Webdav);
}

#[test]
fn an_interrupted_run_releases_its_lock() {
    let w = world(Remote::Local);
    let mut held = w.spawn_held(&["dbbackup"], "locked");
    held.wait_at("locked");
    assert_eq!(lock_files(&w, "default").len(), 1);
    held.signal(libc::SIGTERM);
    let r = held.finish();
    assert_eq!(r.code, 130, "{}", r.stderr);
    assert!(
        lock_files(&w, "default").is_empty(),
        "lock left after the interrupt: {:?}",
        lock_files(&w, "default")
    );
}

/// A world with a media folder holding `a.txt`, and its path.
fn media_world() -> (World, PathBuf) {
    let mut w = World::new(Remote::Local);
    let root = w.path("media");
    std::fs::create_dir_all(&root).unwrap();
    std::fs::write(root.join("a.txt"), "alpha").unwrap();
    w.setting(&format!("media_root = \"{}\"", root.display()));
    (w, root)
}

#[test]
fn media_backups_lock_each_other() {
    let (w, root) = media_world();
    w.ok(&["mediabackup"]);
    std::fs::write(root.join("b.txt"), "bravo").unwrap();
    let mut held = w.spawn_held(&["mediabackup"], "locked");
    held.wait_at("locked");
    let r = w.run(&["mediabackup"]);
    assert_eq!(r.code, LOCKED, "{}", r.stderr);
    assert_mentions(
        &r.stderr,
        &["the media backup is locked", "unlock --media --force"],
    );
    let r = w.run(&["mediarestore", "--noinput"]);
    assert_eq!(r.code, LOCKED, "{}", r.stderr);
    held.release("locked");
    assert_eq!(held.finish().code, 0);
    assert!(w.store.join("media/b.txt").exists());
    assert!(!w
        .store
        .join("db/.rcbackup/locks/media")
        .read_dir()
        .is_ok_and(|mut d| d.next().is_some()));
}

/// Outside review: a media backup that waited for the lock kept the stamp
/// of its start, older than the one it waited for, so `mediarestore --at`
/// read the versions out of order. The stamp is taken with the lock held.
#[test]
fn a_media_backup_that_waited_is_stamped_after_the_one_it_waited_for() {
    let (mut w, root) = media_world();
    w.setting("media_versions = true");
    w.ok(&["mediabackup"]);
    std::fs::write(root.join("a.txt"), "alpha 2").unwrap();
    let mut held = w.spawn_held(&["mediabackup", "--json"], "locked");
    held.wait_at("locked");
    let waiting = w.spawn(&["--lock-wait", "60s", "mediabackup", "--json"]);
    std::thread::sleep(Duration::from_secs(2));
    let released = chrono::Utc::now();
    held.release("locked");
    let first = held.finish();
    assert_eq!(first.code, 0, "{}", first.stderr);
    let waited = finished_ok(waiting);
    let stamp = |out: &[u8]| {
        let v: serde_json::Value = serde_json::from_slice(out).unwrap();
        v["stamp"].as_str().unwrap().to_string()
    };
    let (first, waited) = (
        stamp(first.stdout.as_bytes()),
        stamp(waited.stdout.as_bytes()),
    );
    assert!(first < waited, "{first} then {waited}");
    // Stamped once it held the lock, not when it started waiting (with
    // three runs, the later-started waiter could go first).
    let released = released.format("%Y-%m-%dT%H%M%S%.3fZ").to_string();
    assert!(waited > released, "stamped {waited}, before {released}");
}

/// Outside review: `dbrestore -d X -i <a backup of Y>` locked only X, so
/// a prune of Y could delete the backup it was reading. It locks Y too.
#[test]
fn a_restore_from_another_databases_backup_locks_that_database_too() {
    let mut w = world(Remote::Local);
    let other = w.seeded_sqlite("other", 30);
    w.ok(&["dbbackup", "-d", "other"]);
    let name = w.names(Some("other"))[0].clone();
    let mut held = w.spawn_held(&["dbbackup", "-d", "other"], "locked");
    held.wait_at("locked");
    let before = sqlite(&w.path("default.sqlite3"), "SELECT count(*) FROM items;");
    let r = w.run(&["dbrestore", "-d", "default", "-i", &name, "--noinput"]);
    assert_eq!(r.code, LOCKED, "{}", r.stderr);
    assert_mentions(&r.stderr, &["database `other` is locked"]);
    assert_eq!(
        sqlite(&w.path("default.sqlite3"), "SELECT count(*) FROM items;"),
        before
    );
    held.release("locked");
    assert_eq!(held.finish().code, 0);
    w.ok(&["dbrestore", "-d", "default", "-i", &name, "--noinput"]);
    assert_eq!(
        sqlite(&w.path("default.sqlite3"), "SELECT count(*) FROM items;"),
        sqlite(&other, "SELECT count(*) FROM items;")
    );
    assert!(lock_files(&w, "default").is_empty() && lock_files(&w, "other").is_empty());
}

fn many_runs_take_turns(remote: Remote) {
    let mut w = world(remote);
    // Each dump marks that it is inside; a second one inside at the same
    // time leaves `overlap`.
    let inside = w.path("inside");
    let overlap = w.path("overlap");
    w.wrap_tool(
        "sqlite3",
        &format!(
            "mkdir '{}' 2>/dev/null || touch '{}'\nsleep 0.3\n\"$REAL\" \"$@\"; rc=$?\nrmdir '{}' 2>/dev/null\nexit $rc",
            inside.display(),
            overlap.display(),
            inside.display()
        ),
    );
    let runs: Vec<_> = (0..6)
        .map(|_| w.spawn(&["--lock-wait", "120s", "dbbackup"]))
        .collect();
    for r in runs {
        finished_ok(r);
    }
    assert!(
        !overlap.exists(),
        "two dumps of the same database ran at once"
    );
    assert_eq!(w.names(Some("default")).len(), 6);
    assert!(lock_files(&w, "default").is_empty());
}

#[test]
fn many_runs_of_one_database_take_turns_local() {
    many_runs_take_turns(Remote::Local);
}

#[test]
fn many_runs_of_one_database_take_turns_webdav() {
    many_runs_take_turns(Remote::Webdav);
}

/// backup-all: a database another run holds fails only its own row; a
/// tenant's lock lives in the tenant's own folder and names the tenant.
#[test]
fn backup_all_fails_only_the_locked_row() {
    let mut w = World::new(Remote::Local);
    w.setting("tenants_dir = \"tenants\"");
    std::fs::create_dir_all(w.path("tenants")).unwrap();
    for t in ["acme", "beta"] {
        let file = w.path(&format!("{t}.sqlite3"));
        sqlite(&file, &seed_sql(30));
        std::fs::write(
            w.path(&format!("tenants/{t}.toml")),
            format!(
                "[databases.main]\nengine = \"sqlite\"\nname = \"{}\"\n",
                file.display()
            ),
        )
        .unwrap();
    }
    let mut held = w.spawn_held(&["--tenant", "acme", "dbbackup", "-d", "main"], "locked");
    held.wait_at("locked");
    let dir = w.store.join("tenants/acme/db/.rcbackup/locks/db-main");
    let objects: Vec<_> = std::fs::read_dir(&dir).unwrap().flatten().collect();
    assert_eq!(objects.len(), 1);
    let lock: serde_json::Value =
        serde_json::from_slice(&std::fs::read(objects[0].path()).unwrap()).unwrap();
    assert_eq!(lock["tenant"], "acme");
    assert_eq!(lock["held"], true);

    let r = w.run(&["backup-all", "--json"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    let rows = v["databases"].as_array().unwrap();
    let acme = rows.iter().find(|r| r["tenant"] == "acme").unwrap();
    let beta = rows.iter().find(|r| r["tenant"] == "beta").unwrap();
    assert_eq!(acme["status"], "failed", "{v:#}");
    assert_mentions(
        &acme.to_string(),
        &["locked", "--tenant acme unlock -d main --force"],
    );
    assert_eq!(beta["status"], "ok", "{v:#}");

    held.release("locked");
    assert_eq!(held.finish().code, 0);
    // With --lock-wait the next backup-all waits its turn where it must.
    let mut held = w.spawn_held(&["--tenant", "acme", "dbbackup", "-d", "main"], "locked");
    held.wait_at("locked");
    let all = w.spawn(&["--lock-wait", "60", "backup-all", "--json"]);
    std::thread::sleep(Duration::from_secs(2));
    held.release("locked");
    assert_eq!(held.finish().code, 0);
    finished_ok(all);
}

/// Found by a hostile check: a large object of garbage in a lock folder. It is not
/// read into memory, the run that gives up names it (not "other runs
/// again and again"), and `unlock --force` clears it.
#[test]
fn garbage_in_the_lock_folder_is_named_and_unlock_clears_it() {
    let w = world(Remote::Local);
    std::fs::create_dir_all(lock_dir(&w, "default")).unwrap();
    let junk: Vec<u8> = (0..4_000_000u64).map(|i| (i * 7919 % 251) as u8).collect();
    std::fs::write(lock_dir(&w, "default").join("junk.json"), junk).unwrap();

    let r = w.run(&["dbbackup"]);
    assert_eq!(r.code, LOCKED, "{}", r.stderr);
    assert_mentions(
        &r.stderr,
        &[
            "junk.json",
            "does not read as a lock",
            "rcbackup unlock -d default --force",
        ],
    );
    assert!(!r.stderr.contains("again and again"), "{}", r.stderr);
    assert_eq!(
        lock_files(&w, "default").len(),
        1,
        "only the garbage is left"
    );

    w.ok(&["unlock", "-d", "default", "--force"]);
    assert!(lock_files(&w, "default").is_empty());
    w.ok(&["dbbackup"]);
}

/// Outside review: under contention on a WebDAV remote, reading another
/// run's lock object could fail ("Peer disconnected") while the object
/// was there, and the run failed (exit 1) instead of looking again. Here
/// rclone fails the first read of a lock object once (one rclone process
/// per call; the server reads them itself in the other mode).
#[test]
fn a_lock_object_that_cannot_be_read_once_is_read_again() {
    if rclone_server_mode() {
        return;
    }
    let mut w = world(Remote::Local);
    let failed = w.path("failed-once");
    w.wrap_tool(
        "rclone",
        &format!(
            "if [ \"$1\" = cat ] && [[ \"$2\" == */.rcbackup/locks/* ]] && [ ! -e '{0}' ]; then touch '{0}'; echo 'Failed to cat: Peer disconnected' >&2; exit 1; fi\nexec \"$REAL\" \"$@\"",
            failed.display()
        ),
    );
    w.ok(&["dbbackup"]);
    assert!(failed.exists(), "the wrapper never failed a read");
    assert_eq!(w.names(Some("default")).len(), 1);
    assert!(lock_files(&w, "default").is_empty());
}

/// Outside review (round 3): a lock object with `held: false` left by a
/// run killed between its two writes on another host made every run fail
/// "locked by other runs again and again", naming no one. It names the
/// object's writer and the way to remove it.
#[test]
fn a_run_killed_while_taking_the_lock_elsewhere_is_named() {
    let w = world(Remote::Local);
    let now = chrono::Utc::now();
    let body = serde_json::json!({
        "version": 1, "id": "aaaa", "command": "dbbackup", "host": "otherhost",
        "pid": 77, "tenant": null, "series": "db-default",
        "created": now.to_rfc3339(),
        "expires": (now + chrono::Duration::minutes(10)).to_rfc3339(),
        "held": false,
    });
    std::fs::create_dir_all(lock_dir(&w, "default")).unwrap();
    std::fs::write(lock_dir(&w, "default").join("aaaa.json"), body.to_string()).unwrap();
    let r = w.run(&["dbbackup"]);
    assert_eq!(r.code, LOCKED, "{}", r.stderr);
    assert_mentions(
        &r.stderr,
        &[
            "never came to hold it",
            "host otherhost",
            "pid 77",
            "rcbackup unlock -d default --force",
        ],
    );
    w.ok(&["unlock", "-d", "default", "--force"]);
    w.ok(&["dbbackup"]);
}

/// Outside review (round 3): a hand-written record naming the database
/// `../../...` made `dbrestore -i` write its lock outside the lock folder
/// (and leave it there). A record whose database (or tenant) no config
/// could have is damaged: listed so, never restored, never a path.
#[test]
fn a_record_naming_an_impossible_database_is_damaged() {
    let w = world(Remote::Local);
    w.ok(&["dbbackup"]);
    let name = w.names(Some("default"))[0].clone();
    let evil = format!("evil-{name}");
    let db = w.store.join("db");
    std::fs::copy(db.join(&name), db.join(&evil)).unwrap();
    let records = db.join(".rcbackup/records");
    let mut record: serde_json::Value =
        serde_json::from_slice(&std::fs::read(records.join(format!("{name}.json"))).unwrap())
            .unwrap();
    record["name"] = evil.clone().into();
    record["database"] = "../../../escaped/db-main".into();
    std::fs::write(records.join(format!("{evil}.json")), format!("{record}\n")).unwrap();
    let listed = w.list(None);
    let entry = listed.iter().find(|b| b["name"] == evil.as_str()).unwrap();
    assert_eq!(entry["status"], "damaged", "{entry:#}");
    assert!(
        entry["problem"]
            .as_str()
            .unwrap()
            .contains("field `database`"),
        "{entry:#}"
    );
    let r = w.run(&["dbrestore", "-d", "default", "-i", &evil, "--noinput"]);
    assert_ne!(r.code, 0, "{}", r.stderr);
    let stray: Vec<String> = store_files(&w)
        .into_iter()
        .filter(|p| p.contains("escaped"))
        .collect();
    assert!(stray.is_empty(), "{stray:?}");
    assert!(lock_files(&w, "default").is_empty());
}

/// Outside review (round 3): with a connection-string remote whose options
/// hold a URL (`:webdav,url='http://...':path`), the run's rclone server
/// could not be asked for the lock it had just written (the URL it was
/// asked with broke), so every locked command failed. Such a remote is
/// reached by one rclone process per call.
#[test]
fn a_connection_string_remote_with_a_url_option_works() {
    let mut w = world(Remote::Webdav);
    let url = w
        .env
        .iter()
        .find(|(k, _)| k == "RCLONE_CONFIG_DAV_URL")
        .map(|(_, v)| v.clone())
        .unwrap();
    w.remote = format!(":webdav,url='{url}',vendor=other:cs");
    w.ok(&["dbbackup"]);
    w.ok(&["--lock-wait", "10s", "dbbackup"]);
    assert_eq!(w.names(Some("default")).len(), 2);
    w.ok(&["dbrestore", "--noinput"]);
    w.ok(&["prune", "-d", "default"]);
    assert!(w.store.join("cs/db").is_dir());
}

/// Outside review (round 5): a media backup whose lock was removed during
/// its sync went on to write its file list (a backup point `--at` offers)
/// with exit 0, and a `mediarestore --mirror` whose lock was removed went
/// on to delete local files. Both stop with exit 5.
#[test]
fn media_runs_that_lost_their_lock_record_and_delete_nothing() {
    let (w, root) = media_world();
    w.ok(&["mediabackup"]);
    let lists = |w: &World| {
        std::fs::read_dir(w.store.join("media-versions"))
            .map(|d| d.count())
            .unwrap_or(0)
    };
    let before = lists(&w);
    std::fs::write(root.join("b.txt"), "bravo").unwrap();
    let mut held = w.spawn_held(&["mediabackup"], "media-synced");
    held.wait_at("media-synced");
    w.ok(&["unlock", "--media", "--force"]);
    held.release("media-synced");
    let r = held.finish();
    assert_eq!(r.code, LOCKED, "{}", r.stderr);
    assert_mentions(&r.stderr, &["this backup was not recorded"]);
    assert_eq!(lists(&w), before, "a file list was written");

    std::fs::write(root.join("local-only.txt"), "keep me").unwrap();
    let mut held = w.spawn_held(&["mediarestore", "--mirror", "--noinput"], "media-copied");
    held.wait_at("media-copied");
    w.ok(&["unlock", "--media", "--force"]);
    held.release("media-copied");
    let r = held.finish();
    assert_eq!(r.code, LOCKED, "{}", r.stderr);
    assert_mentions(&r.stderr, &["no local file was deleted"]);
    assert!(root.join("local-only.txt").exists());
}

/// Outside review (round 5): a SQLite restore whose lock was removed while
/// it downloaded still swapped the restored copy over the live database.
/// It stops with exit 5 and leaves the database as it was.
#[test]
fn a_restore_that_lost_its_lock_leaves_the_database_as_it_was() {
    let w = world(Remote::Local);
    w.ok(&["dbbackup"]);
    let file = w.path("default.sqlite3");
    sqlite(&file, "DELETE FROM items;");
    let mut held = w.spawn_held(&["dbrestore", "--noinput"], "restore-swap");
    held.wait_at("restore-swap");
    w.ok(&["unlock", "-d", "default", "--force"]);
    held.release("restore-swap");
    let r = held.finish();
    assert_eq!(r.code, LOCKED, "{}", r.stderr);
    assert_eq!(sqlite(&file, "SELECT count(*) FROM items;").trim(), "0");
}
