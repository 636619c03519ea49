//! What happens when things break: failing dumps and uploads, a killed run,
//! damaged backups, wrong passwords, and retention that must stay in its
//! own series.

mod support;

use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use support::*;

fn sqlite_world(remote: Remote) -> (World, PathBuf) {
    let mut world = World::new(remote);
    let file = world.path("app.sqlite3");
    sqlite(&file, &seed_sql(2000));
    world.sqlite("default", &file);
    (world, file)
}

fn partials(world: &World) -> Vec<PathBuf> {
    world
        .stored_files()
        .into_iter()
        .filter(|p| p.components().any(|c| c.as_os_str() == "partial"))
        .collect()
}

/// A dump tool that writes part of a real dump, then fails.
fn fail_half_way(world: &mut World, tool: &str) {
    world.wrap_tool(
        tool,
        r#"set -o pipefail; "$REAL" "$@" | head -c 20000; echo "simulated failure half-way" >&2; exit 1"#,
    );
}

#[test]
fn dump_failing_half_way_publishes_nothing_sqlite() {
    let (mut world, _) = sqlite_world(Remote::Local);
    fail_half_way(&mut world, "sqlite3");
    let r = world.run(&["dbbackup"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(
        r.stderr.contains("dump failed: sqlite3 exited with code 1"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains("simulated failure half-way"),
        "stderr tail: {}",
        r.stderr
    );
    assert!(world.list(None).is_empty());
    assert!(partials(&world).is_empty(), "the partial upload is removed");
}

#[test]
fn dump_failing_half_way_publishes_nothing_postgresql() {
    let mut world = World::new(Remote::Local);
    let db = PgDb::create("half");
    psql(&db.0, &seed_sql(20000));
    world.postgres("default", &db.0);
    fail_half_way(&mut world, "pg_dump");
    let r = world.run(&["dbbackup"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.contains("dump failed: pg_dump"), "{}", r.stderr);
    assert!(world.list(None).is_empty());
}

#[test]
fn unreachable_remote_is_blamed_not_the_dump() {
    let (mut world, _) = sqlite_world(Remote::Local);
    // A webdav remote on a port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    world
        .env
        .push(("RCLONE_CONFIG_GONE_TYPE".into(), "webdav".into()));
    world.env.push((
        "RCLONE_CONFIG_GONE_URL".into(),
        format!("http://127.0.0.1:{port}"),
    ));
    world
        .env
        .push(("RCLONE_LOW_LEVEL_RETRIES".into(), "1".into()));
    world.env.push(("RCLONE_RETRIES".into(), "1".into()));
    world.remote = "gone:".into();
    let r = world.run(&["dbbackup"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(!r.stderr.contains("dump failed"), "{}", r.stderr);
    assert!(
        r.stderr.contains("upload failed") || r.stderr.contains("rclone"),
        "names the remote side: {}",
        r.stderr
    );
}

#[test]
fn sigkilled_run_leaves_nothing_listed_and_is_cleaned_when_abandoned() {
    let (mut world, file) = sqlite_world(Remote::Local);
    world.setting("db_cleanup_keep = 1");
    world.ok(&["dbbackup"]);
    let good = world.names(None);
    assert_eq!(good.len(), 1);

    // A slow dump: more than rclone's 100 KiB streaming cutoff, so the
    // upload has begun, then a long pause.
    world.wrap_tool(
        "sqlite3",
        r#""$REAL" "$@"; yes '/* padding */' | head -c 300000; sleep 30"#,
    );
    let mut child = world
        .command(&["dbbackup"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .unwrap();
    let until = Instant::now() + Duration::from_secs(20);
    while partials(&world).is_empty() {
        assert!(Instant::now() < until, "no upload started");
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(300));
    // SIGKILL rcbackup itself, then stop what it left running.
    child.kill().unwrap();
    child.wait().unwrap();
    unsafe {
        libc::kill(-(child.id() as i32), libc::SIGKILL);
    }
    std::thread::sleep(Duration::from_millis(300));
    let leftovers = partials(&world);
    assert_eq!(leftovers.len(), 1, "{:?}", world.stored_files());

    world.path_prefix.clear();
    assert_eq!(world.names(None), good, "the leftover is not listed");
    // Restore picks the complete backup.
    sqlite(&file, "DELETE FROM items");
    world.ok(&["dbrestore", "--noinput"]);
    assert_eq!(sqlite(&file, "SELECT count(*) FROM items").trim(), "2000");
    // --clean keeps 1: the new backup; the leftover is young and stays.
    world.ok(&["dbbackup", "--clean"]);
    assert_eq!(world.names(None).len(), 1);
    assert_ne!(world.names(None), good);
    assert_eq!(
        partials(&world),
        leftovers,
        "a young leftover may be a running upload"
    );

    // Age the leftover past abandoned_after_hours (its run id holds its start
    // time, and its mtime is the last write), then --clean removes it.
    let old = leftovers[0].clone();
    let name = old.file_name().unwrap().to_str().unwrap().to_string();
    let (stem, run) = name.rsplit_once('.').unwrap();
    let pid = run.split_once('-').unwrap().1;
    let aged = old.with_file_name(format!("{stem}.1000000000-{pid}"));
    std::fs::rename(&old, &aged).unwrap();
    let t = std::fs::File::options().write(true).open(&aged).unwrap();
    t.set_modified(std::time::SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000_000))
        .unwrap();
    drop(t);
    world.ok(&["dbbackup", "--clean"]);
    assert!(partials(&world).is_empty(), "{:?}", world.stored_files());
}

fn data_object(world: &World) -> PathBuf {
    let dir = world.store.join("db");
    let files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    files[0].clone()
}

#[test]
fn flipped_bytes_refused_sqlite() {
    let (world, file) = sqlite_world(Remote::Local);
    world.ok(&["dbbackup"]);
    flip_byte(&data_object(&world));
    sqlite(&file, "DELETE FROM items WHERE id > 5");
    let before = fingerprint(&sqlite(&file, CONTENT_QUERY));
    let r = world.run(&["dbrestore", "--noinput"]);
    assert_eq!(r.code, 4, "{}", r.stderr);
    assert!(r.stderr.contains("integrity"), "{}", r.stderr);
    assert_eq!(
        fingerprint(&sqlite(&file, CONTENT_QUERY)),
        before,
        "unchanged"
    );
    assert_eq!(world.run(&["verify"]).code, 4);
}

#[test]
fn flipped_bytes_refused_postgresql() {
    let mut world = World::new(Remote::Local);
    let db = PgDb::create("flip");
    psql(&db.0, &seed_sql(5000));
    world.postgres("default", &db.0);
    world.ok(&["dbbackup"]);
    flip_byte(&data_object(&world));
    psql(&db.0, "DELETE FROM items WHERE id > 5");
    let before = fingerprint(&psql(&db.0, CONTENT_QUERY));
    let r = world.run(&["dbrestore", "--noinput"]);
    assert_eq!(r.code, 4, "{}", r.stderr);
    assert_eq!(
        fingerprint(&psql(&db.0, CONTENT_QUERY)),
        before,
        "rolled back"
    );
}

#[test]
fn flipped_bytes_refused_mariadb_before_anything_changes() {
    let mut world = World::new(Remote::Local);
    let db = MyDb::create("flip");
    mariadb(Some(&db.0), &seed_sql(3000));
    world.mariadb("default", &db.0);
    world.ok(&["dbbackup"]);
    flip_byte(&data_object(&world));
    mariadb(Some(&db.0), "DELETE FROM items WHERE id > 5");
    let before = fingerprint(&mariadb(Some(&db.0), CONTENT_QUERY));
    let r = world.run(&["dbrestore", "--noinput"]);
    assert_eq!(r.code, 4, "{}", r.stderr);
    assert!(r.stderr.contains("nothing was restored"), "{}", r.stderr);
    assert_eq!(fingerprint(&mariadb(Some(&db.0), CONTENT_QUERY)), before);
}

#[test]
fn wrong_password_is_clear_and_publishes_nothing() {
    let mut world = World::new(Remote::Local);
    let db = PgDb::create("pw");
    psql(&db.0, &seed_sql(10));
    world.postgres("default", &db.0);
    world.env.retain(|(k, _)| k != PASSWORD_VAR);
    world
        .env
        .push((PASSWORD_VAR.into(), "not-the-password".into()));
    let r = world.run(&["dbbackup"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(
        r.stderr.contains("password authentication failed"),
        "{}",
        r.stderr
    );
    assert!(!r.stderr.contains("not-the-password"));
    assert!(world.list(None).is_empty());
    assert!(partials(&world).is_empty());

    // No password variable at all: a usage error naming the variable.
    world.env.retain(|(k, _)| k != PASSWORD_VAR);
    let r = world.run(&["dbbackup"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains(PASSWORD_VAR), "{}", r.stderr);
}

#[test]
fn prefix_sharing_aliases_keep_separate_retention() {
    let mut world = World::new(Remote::Local);
    world.setting("db_cleanup_keep = 2");
    for alias in ["app", "app2"] {
        let file = world.path(&format!("{alias}.sqlite3"));
        sqlite(&file, &seed_sql(10));
        world.sqlite(alias, &file);
    }
    for _ in 0..3 {
        world.ok(&["dbbackup", "-d", "app2"]);
    }
    for _ in 0..3 {
        world.ok(&["dbbackup", "-d", "app"]);
    }
    let app2_before = world.names(Some("app2"));
    assert_eq!(app2_before.len(), 3);
    let app_before = world.names(Some("app"));

    let dry = world.ok(&["dbbackup", "-d", "app", "--clean", "--dry-run"]);
    assert!(dry.stdout.contains("would delete"), "{}", dry.stdout);
    assert_eq!(
        world.names(Some("app")),
        app_before,
        "--dry-run deletes nothing"
    );

    world.ok(&["dbbackup", "-d", "app", "--clean"]);
    let app_after = world.names(Some("app"));
    assert_eq!(app_after.len(), 2, "{app_after:?}");
    assert_eq!(
        app_after[1], app_before[0],
        "newest old one kept, new one on top"
    );
    assert_eq!(world.names(Some("app2")), app2_before, "app2 untouched");
}

#[test]
fn same_second_backups_do_not_overwrite() {
    let (mut world, _) = sqlite_world(Remote::Local);
    // Minute resolution: three quick backups share a {datetime}.
    world.setting("db_date_format = \"%Y-%m-%d-%H%M\"");
    for _ in 0..3 {
        world.ok(&["dbbackup"]);
    }
    let names = world.names(None);
    let unique: std::collections::BTreeSet<_> = names.iter().collect();
    // Across a minute boundary two names may differ by time instead; either
    // way three distinct, verifiable backups exist.
    assert_eq!(names.len(), 3, "{names:?}");
    assert_eq!(unique.len(), 3);
    for n in &names {
        world.ok(&["verify", "-i", n]);
    }
}

#[test]
fn restore_without_terminal_or_noinput_refuses() {
    let (world, file) = sqlite_world(Remote::Local);
    world.ok(&["dbbackup"]);
    sqlite(&file, "DELETE FROM items");
    let r = world.run(&["dbrestore"]);
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(r.stderr.contains("--noinput"), "{}", r.stderr);
    assert_eq!(sqlite(&file, "SELECT count(*) FROM items").trim(), "0");
}

#[test]
fn config_errors_name_file_and_key() {
    let (mut world, _) = sqlite_world(Remote::Local);
    world.setting("db_cleanup_keep = 0");
    let r = world.run(&["listbackups"]);
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains("db_cleanup_keep") && r.stderr.contains("rcbackup.toml"),
        "{}",
        r.stderr
    );

    let (mut world, _) = sqlite_world(Remote::Local);
    world.setting("db_date_format = \"%Y-%m-%d-%Q\"");
    let r = world.run(&["listbackups"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("db_date_format"), "{}", r.stderr);

    let (mut world, _) = sqlite_world(Remote::Local);
    world.setting("remot = \"x:\"");
    let r = world.run(&["listbackups"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("remot"), "{}", r.stderr);
}
