//! What happens when things break: failing dumps and uploads, a killed run,
//! damaged backups, wrong passwords, and retention that must stay in its
//! own series.

mod common;

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::*;

/// Stored as the dump writes it: these tests watch the upload of a dump's
/// bytes as they come (zstd would hold a slow dump's few KiB in its buffer,
/// and 300 KB of padding compresses to almost nothing). Compressed streams
/// meet the same faults in the fault matrices.
fn sqlite_world(remote: Remote) -> (World, PathBuf) {
    let mut world = World::new(remote);
    world.setting("compression = \"none\"");
    let file = world.seeded_sqlite("default", 2000);
    (world, file)
}

fn partials(world: &World) -> Vec<PathBuf> {
    world
        .stored_files()
        .into_iter()
        .filter(|p| p.components().any(|c| c.as_os_str() == "partial"))
        .collect()
}

/// The partial-upload folder of the local store behind the remote.
fn partial_dir(world: &World) -> PathBuf {
    world.store.join("db/.rcbackup/partial")
}

/// Bash that waits (at most 30 s) until an upload is under way, i.e. a
/// partial object exists on the local store: rclone has passed its 100 KiB
/// in-memory cutoff and is writing to the remote.
fn wait_for_partial_sh(world: &World) -> String {
    format!(
        r#"for _ in $(seq 600); do [ -n "$(ls -A '{}' 2>/dev/null)" ] && break; sleep 0.05; done"#,
        partial_dir(world).display()
    )
}

/// A fake `sqlite3` that prints the real dump and a lot more SQL, waits
/// until the upload is under way, then fails.
#[test]
fn dump_failing_half_way_publishes_nothing_sqlite() {
    let (mut world, _) = sqlite_world(Remote::Local);
    let wait = wait_for_partial_sh(&world);
    world.wrap_tool(
        "sqlite3",
        &format!(
            r#""$REAL" "$@"; yes -- '-- more SQL' | head -c 400000; {wait}; sleep 0.2
               echo "simulated failure half-way" >&2; exit 1"#
        ),
    );
    let r = world.run(&["dbbackup"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert_mentions(
        &r.stderr,
        &[
            "dump failed: sqlite3 exited with code 1",
            "simulated failure half-way",
        ],
    );
    assert_lacks(&r.stderr, &["upload failed"]);
    assert!(world.list(None).is_empty());
    assert!(partials(&world).is_empty(), "the partial upload is removed");
    assert!(
        !world
            .store
            .join("db")
            .read_dir()
            .unwrap()
            .flatten()
            .any(|e| e.path().is_file()),
        "no data object: {:?}",
        world.stored_files()
    );
}

/// Runs `dbbackup` with `tool` wrapped so that it lets its first bytes
/// through, then holds the rest back (the real tool blocks writing, its
/// connection open, half-way through its output). Once the upload is under
/// way, `break_connection` cuts the tool's server connection; then the rest
/// flows and the tool fails for real. Checks that the run failed naming
/// the dump, and left nothing.
fn dump_broken_half_way(world: &mut World, tool: &str, break_connection: impl FnOnce()) -> Run {
    let flag = world.path(&format!("{tool}.go"));
    world.wrap_tool(
        tool,
        &format!(
            r#"set -o pipefail
               "$REAL" "$@" | {{ head -c 300000; for _ in $(seq 1200); do [ -e '{}' ] && break; sleep 0.05; done; cat; }}"#,
            flag.display()
        ),
    );
    let child = world.spawn(&["dbbackup"]);
    wait_until(30, "the upload to start", || !partials(world).is_empty());
    break_connection();
    std::fs::write(&flag, "").unwrap();
    let r = Run::from(child.wait_with_output().unwrap());
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(
        r.stderr.contains(&format!("dump failed: {tool}")),
        "{}",
        r.stderr
    );
    assert!(!r.stderr.contains("upload failed"), "{}", r.stderr);
    assert!(world.list(None).is_empty());
    assert!(partials(world).is_empty(), "{:?}", world.stored_files());
    r
}

/// A real pg_dump failing half-way: its server connection is terminated
/// while it is in the middle of the data, after the upload began.
#[test]
fn dump_failing_half_way_publishes_nothing_postgresql() {
    let mut world = World::new(Remote::Local);
    world.setting("compression = \"none\""); // as sqlite_world says
    let db = PgDb::create("half");
    psql(&db.0, &seed_sql(100));
    pg_big_table(&db.0, 200_000);
    world.postgres("default", &db.0);
    let r = dump_broken_half_way(&mut world, "pg_dump", || {
        let killed = psql(
            "postgres",
            &format!(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
                 WHERE datname = '{}' AND application_name = 'pg_dump'",
                db.0
            ),
        );
        assert_eq!(killed.trim(), "1", "pg_dump's connection was found");
    });
    assert!(
        r.stderr.contains("Dumping the contents of table"),
        "pg_dump's own complaint is shown: {}",
        r.stderr
    );
}

/// The same for a real mariadb-dump whose connection is killed half-way.
#[test]
fn dump_failing_half_way_publishes_nothing_mariadb() {
    let mut world = World::new(Remote::Local);
    world.setting("compression = \"none\""); // as sqlite_world says
    let db = MyDb::create("half");
    mariadb(Some(&db.0), &seed_sql(100));
    mariadb_big_table(&db.0, 200_000);
    world.mariadb("default", &db.0);
    let r = dump_broken_half_way(&mut world, "mariadb-dump", || {
        let ids = mariadb(
            None,
            &format!(
                "SELECT id FROM information_schema.processlist WHERE db = '{}' AND id <> CONNECTION_ID()",
                db.0
            ),
        );
        let ids: Vec<&str> = ids.split_whitespace().collect();
        assert_eq!(ids.len(), 1, "mariadb-dump's connection: {ids:?}");
        mariadb(None, &format!("KILL {}", ids[0]));
    });
    assert!(r.stderr.contains("Lost connection"), "{}", r.stderr);
}

/// A webdav remote on a port nothing listens on: the error blames the
/// upload and names the remote, never the dump; listing it is an error, not
/// "no backups".
#[test]
fn unreachable_remote_is_blamed_not_the_dump() {
    let (mut world, _) = sqlite_world(Remote::Local);
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
    assert_lacks(&r.stderr, &["dump failed"]);
    // The remote is blamed with rclone's reason: the lock object is the
    // run's first write, before any dump.
    assert_mentions(
        &r.stderr,
        &[
            "could not take the lock",
            "gone:db/",
            "connection refused",
            "Check that the remote is reachable",
        ],
    );

    let r = world.run(&["listbackups", "--json"]);
    assert_eq!(
        r.code, 1,
        "an unreachable remote is not an empty one: {}",
        r.stdout
    );
    assert!(r.stderr.contains("gone:"), "{}", r.stderr);
}

/// The one rclone process carrying the upload among `family`: `rclone rcat`
/// into partial/, or the run's server.
fn uploader(family: &[(u32, String)]) -> u32 {
    let found: Vec<u32> = family
        .iter()
        .filter(|(_, argv)| match rclone_server_mode() {
            true => argv.starts_with("rclone rcd "),
            false => argv.contains("rcat") && argv.contains("partial"),
        })
        .map(|(p, _)| *p)
        .collect();
    assert_eq!(found.len(), 1, "one rclone carrying the upload: {family:?}");
    found[0]
}

/// The parent of a live process, from /proc (None once it is gone).
fn parent_of(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, after) = stat.rsplit_once(')')?;
    after.split_whitespace().nth(1)?.parse().ok()
}

/// Runs `dbbackup` with a dump that prints the real dump and 300 KB more,
/// then goes on as `rest` (bash) says, for a minute; kills rclone rcat (as
/// the OOM killer would) once the upload is under way, and checks that the
/// upload, not the dump, is blamed, that the dump process is gone by the
/// time rcbackup exits (stopped, not waited for, not left running), and
/// that nothing is published.
fn upload_dies_mid_stream(rest: &str) {
    let (mut world, _) = sqlite_world(Remote::Local);
    world.wrap_tool(
        "sqlite3",
        &format!(r#""$REAL" "$@"; yes -- '-- more SQL' | head -c 300000; {rest}"#),
    );
    let child = world.spawn(&["dbbackup"]);
    wait_until(30, "the upload to start", || !partials(&world).is_empty());
    let family = snapshot(&descendants(child.id()));
    let uploader = uploader(&family);
    // The dump: rcbackup's child that is not rclone (the wrapper, whatever
    // it has exec'd by now; a listing may run beside the upload, and one
    // that just ended is a zombie with no argv).
    let dumps: Vec<u32> = family
        .iter()
        .filter(|(p, argv)| {
            !argv.is_empty() && !argv.starts_with("rclone ") && parent_of(*p) == Some(child.id())
        })
        .map(|(p, _)| *p)
        .collect();
    assert_eq!(dumps.len(), 1, "one dump process: {family:?}");
    let dump = dumps[0];
    assert!(alive(dump), "the dump runs while the upload does");
    sigkill(uploader);
    let started = Instant::now();
    // The dump itself must end (stopped by rcbackup: it would run for a
    // minute otherwise), whether or not rcbackup has exited yet.
    while alive(dump) && started.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(25));
    }
    let dump_stopped = !alive(dump);
    let dump_took = started.elapsed();
    kill_leftovers(&family);
    let r = Run::from(child.wait_with_output().unwrap());
    let took = started.elapsed();
    assert!(
        dump_stopped,
        "the dump (pid {dump}) still ran {dump_took:?} after the upload died"
    );
    assert!(
        !alive(dump),
        "the dump (pid {dump}) still runs after rcbackup exited"
    );
    assert!(
        took < Duration::from_secs(30),
        "rcbackup ended promptly: {took:?}"
    );
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert_mentions(
        &r.stderr,
        &["upload failed", rclone_killed(), "killed by signal 9"],
    );
    assert_lacks(&r.stderr, &["dump failed"]);
    world.path_prefix.clear();
    assert!(world.list(None).is_empty());
    assert!(partials(&world).is_empty(), "{:?}", world.stored_files());
}

/// The upload dies while the dump is still producing (slowly, for a
/// minute). A local remote: rclone streams to it. (To webdav, rclone 1.60's
/// rcat spools to a local file and uploads at the end, so a server that goes
/// away is only noticed once the dump is done.)
#[test]
fn upload_failing_mid_stream_is_blamed_and_stops_the_dump() {
    upload_dies_mid_stream(
        r#"for i in $(seq 600); do echo "-- still dumping $i"; sleep 0.1; done"#,
    );
}

/// The same while the dump is silent (say pg_dump waiting for a lock for a
/// minute): rcbackup watches the upload process itself, so it stops the
/// dump at once instead of waiting for the dump's next write.
#[test]
fn upload_failing_while_the_dump_is_silent_stops_the_dump() {
    upload_dies_mid_stream("exec sleep 60");
}

/// rcbackup SIGKILLed in the middle of an upload (no chance to clean up):
/// rclone sees its input end and stores what it got as a complete-looking
/// object. That leftover is never listed, restored or counted by retention,
/// a young one survives --clean (it could be a running upload), and an
/// abandoned one is removed by --clean.
#[test]
fn sigkilled_run_leaves_nothing_listed_and_is_cleaned_when_abandoned() {
    let (mut world, file) = sqlite_world(Remote::Local);
    world.setting("db_cleanup_keep = 1");
    world.ok(&["dbbackup"]);
    let good = world.names(None);
    assert_eq!(good.len(), 1);
    let store_before = world.stored_files();

    // A slow dump: the real dump and more than rclone's 100 KiB cutoff, so
    // the upload has begun, then a long pause.
    world.wrap_tool(
        "sqlite3",
        r#""$REAL" "$@"; yes -- '-- padding' | head -c 300000; exec sleep 60"#,
    );
    let mut child = world
        .command(&["dbbackup"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_until(30, "the upload to start", || !partials(&world).is_empty());
    std::thread::sleep(Duration::from_millis(300));
    let family = snapshot(&descendants(child.id()));
    let uploader = uploader(&family);
    // SIGKILL rcbackup itself: no handler runs.
    child.kill().unwrap();
    child.wait().unwrap();
    // Its rclone children see their input end and finish on their own (the
    // run's server is killed with it by the kernel).
    wait_until(30, "rclone rcat to finish", || !alive(uploader));
    // Stop the slow dump, which is still sleeping.
    kill_leftovers(&family);
    let leftovers = partials(&world);
    if rclone_server_mode() {
        // The run's server sees its connection close when rcbackup dies, a
        // moment before the kernel kills it too: if it gets to run in that
        // moment, rclone removes the partial object itself (nothing left
        // over, the better outcome); if not, the object stays, as in
        // per-call mode. Both must hold what follows.
        assert!(leftovers.len() <= 1, "{:?}", world.stored_files());
    } else {
        assert_eq!(leftovers.len(), 1, "{:?}", world.stored_files());
    }
    for p in &leftovers {
        assert!(std::fs::metadata(p).unwrap().len() > 100_000);
    }
    // The killed run's lock object is not a leftover: the next run that
    // locks the database sees its pid is dead and removes it.
    let (locks, left): (Vec<PathBuf>, Vec<PathBuf>) = world
        .stored_files()
        .into_iter()
        .filter(|p| !store_before.contains(p))
        .partition(|p| p.to_string_lossy().contains("/.rcbackup/locks/"));
    assert_eq!(locks.len(), 1, "{locks:?}");

    world.path_prefix.clear();
    assert_eq!(world.names(None), good, "the leftover is not listed");
    // Restore picks the complete backup.
    sqlite(&file, "DELETE FROM items");
    world.ok(&["dbrestore", "--noinput"]);
    assert_eq!(sqlite(&file, "SELECT count(*) FROM items").trim(), "2000");
    // --clean keeps 1: the new backup; the young leftover stays.
    world.ok(&["dbbackup", "--clean"]);
    let after = world.names(None);
    assert_eq!(after.len(), 1);
    assert_ne!(after, good);
    assert_eq!(
        partials(&world),
        leftovers,
        "a young leftover may be a running upload"
    );
    for p in &left {
        assert!(p.exists(), "young leftover {} kept", p.display());
    }
    for p in &locks {
        assert!(!p.exists(), "the dead run's lock {} removed", p.display());
    }

    // Age what the killed run left past abandoned_after_hours (24 by
    // default). Cleanup trusts the later of the run id's start time and the
    // last write, so an abandoned upload is one whose run id *and* mtime are
    // old: rename it to an old run id, and set its mtime back.
    let long_ago = std::time::SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000_000);
    let mut aged = Vec::new();
    for p in &left {
        let mut target = p.clone();
        if p.starts_with(partial_dir(&world)) {
            let name = p.file_name().unwrap().to_str().unwrap().to_string();
            let (stem, run) = name.rsplit_once('.').unwrap();
            let pid = run.split_once('-').unwrap().1;
            target = p.with_file_name(format!("{stem}.1000000000-{pid}"));
            std::fs::rename(p, &target).unwrap();
        }
        let f = std::fs::File::options().write(true).open(&target).unwrap();
        f.set_modified(long_ago).unwrap();
        aged.push(target);
    }
    assert_eq!(world.names(None), after, "still not listed");

    // --dry-run names them and deletes nothing.
    let dry = world.ok(&["dbbackup", "--clean", "--dry-run"]);
    for p in &aged {
        let base = p.file_name().unwrap().to_str().unwrap();
        assert!(
            dry.stdout.contains(base),
            "dry run names {base}: {}",
            dry.stdout
        );
        assert!(p.exists());
    }

    world.ok(&["dbbackup", "--clean"]);
    for p in &aged {
        assert!(!p.exists(), "abandoned {} removed", p.display());
    }
    assert!(partials(&world).is_empty(), "{:?}", world.stored_files());
    assert_eq!(world.names(None).len(), 1);
}

/// SIGTERM in the middle of an upload: exit 130, the unfinished upload is
/// removed, nothing is listed.
#[test]
fn sigterm_during_upload_exits_130_and_leaves_nothing() {
    let (mut world, _) = sqlite_world(Remote::Local);
    world.wrap_tool(
        "sqlite3",
        r#""$REAL" "$@"; yes -- '-- padding' | head -c 300000; exec sleep 60"#,
    );
    let child = world.spawn(&["dbbackup"]);
    wait_until(30, "the upload to start", || !partials(&world).is_empty());
    let family = snapshot(&descendants(child.id()));
    unsafe {
        libc::kill(child.id() as i32, libc::SIGTERM);
    }
    let started = Instant::now();
    let r = Run::from(child.wait_with_output().unwrap());
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "stopped promptly"
    );
    kill_leftovers(&family);
    assert_eq!(r.code, 130, "{}", r.stderr);
    // The signal is the cause, not what the stopped upload said of it.
    assert_mentions(&r.stderr, &["interrupted; nothing was published"]);
    assert_lacks(&r.stderr, &["upload failed", "check the remote"]);
    world.path_prefix.clear();
    assert!(world.list(None).is_empty());
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

/// Backs up a PostgreSQL database, flips a byte in the stored object (the
/// biggest file in the store: the data, encrypted or not), changes the
/// database, and tries to restore: the database must be as it was.
fn flipped_bytes_postgresql(remote: Remote) -> (World, Run) {
    let crypt = matches!(remote, Remote::Crypt);
    let mut world = World::new(remote);
    if crypt {
        // Several of crypt's 64 KiB blocks, so that the flipped byte is in
        // a whole one: rclone reports damage to the last, partial block as
        // "unexpected EOF", which a cut connection gives too.
        world.setting("compression = \"none\"");
    }
    let db = PgDb::create("flip");
    psql(&db.0, &seed_sql(5000));
    world.postgres("default", &db.0);
    world.ok(&["dbbackup"]);
    let object = world
        .stored_files()
        .into_iter()
        .max_by_key(|p| std::fs::metadata(p).unwrap().len())
        .unwrap();
    flip_byte(&object);
    psql(&db.0, "DELETE FROM items WHERE id > 5");
    let before = fingerprint(&psql(&db.0, CONTENT_QUERY));
    let r = world.run(&["dbrestore", "--noinput"]);
    assert_eq!(
        fingerprint(&psql(&db.0, CONTENT_QUERY)),
        before,
        "rolled back: {}",
        r.stderr
    );
    assert_mentions(&r.stderr, &["left as it was"]);
    (world, r)
}

#[test]
fn flipped_bytes_refused_postgresql() {
    let (world, r) = flipped_bytes_postgresql(Remote::Local);
    assert_eq!(r.code, 4, "{}", r.stderr);
    assert_mentions(&r.stderr, &["integrity"]);
    assert_eq!(world.run(&["verify"]).code, 4);
}

/// On a crypt remote a flipped byte breaks the encrypted block's
/// authentication, so rclone itself fails to read it: the transaction is
/// rolled back all the same, and rclone's reason is reported as damage
/// (exit 4), in both rclone modes (the server only cuts its answer short;
/// its log says why).
#[test]
fn flipped_bytes_on_crypt_remote_leave_postgresql_unchanged() {
    let (world, r) = flipped_bytes_postgresql(Remote::Crypt);
    assert_eq!(r.code, 4, "{}", r.stderr);
    assert_mentions(&r.stderr, &["could not authenticate a block"]);
    let v = world.run(&["verify"]);
    assert_eq!(v.code, 4, "{}", v.stderr);
    assert_mentions(&v.stderr, &["could not authenticate a block"]);
}

/// A PostgreSQL restore that fails half-way for its own reasons (here a
/// view created after the backup depends on a table pg_restore must drop)
/// is one transaction: rolled back, the database as it was.
#[test]
fn postgresql_restore_failing_half_way_is_rolled_back() {
    let mut world = World::new(Remote::Local);
    let db = PgDb::create("rollback");
    psql(&db.0, &seed_sql(3000));
    world.postgres("default", &db.0);
    world.ok(&["dbbackup"]);
    psql(
        &db.0,
        "DELETE FROM notes; DELETE FROM items WHERE id > 100; \
         CREATE VIEW cheap_items AS SELECT * FROM items WHERE qty < 10;",
    );
    let before = fingerprint(&psql(&db.0, CONTENT_QUERY));
    let r = world.run(&["dbrestore", "--noinput"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert_mentions(&r.stderr, &["restore failed: pg_restore", "rolled back"]);
    assert_eq!(fingerprint(&psql(&db.0, CONTENT_QUERY)), before);
    assert_eq!(psql(&db.0, "SELECT count(*) FROM notes").trim(), "0");
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

/// `dbbackup` with a wrong password in the variable `password_env` names:
/// a failed dump with the server's complaint (`says`), no password in the
/// output, nothing stored on the remote.
fn wrong_password(world: &mut World, tool: &str, says: &str) {
    world.set_env(PASSWORD_VAR, "not-the-password".into());
    let r = world.run(&["dbbackup"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(
        r.stderr.contains(&format!("dump failed: {tool}")),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains(says), "{}", r.stderr);
    assert!(!r.stderr.contains("not-the-password"));
    assert!(world.list(None).is_empty());
    assert!(
        world.stored_files().is_empty(),
        "nothing stored: {:?}",
        world.stored_files()
    );

    // No password variable at all: a usage error naming the key, not the
    // variable (issue 8: people write the password itself where its
    // variable's name belongs, and it must not be echoed back).
    world.env.retain(|(k, _)| k != PASSWORD_VAR);
    let r = world.run(&["dbbackup"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr.contains("`databases.default.password_env`") && r.stderr.contains("not set"),
        "{}",
        r.stderr
    );
    assert!(!r.stderr.contains(PASSWORD_VAR), "{}", r.stderr);
}

#[test]
fn wrong_password_postgresql_is_clear_and_publishes_nothing() {
    let mut world = World::new(Remote::Local);
    let db = PgDb::create("pw");
    psql(&db.0, &seed_sql(10));
    world.postgres("default", &db.0);
    wrong_password(&mut world, "pg_dump", "password authentication failed");
}

#[test]
fn wrong_password_mariadb_is_clear_and_publishes_nothing() {
    let mut world = World::new(Remote::Local);
    let db = MyDb::create("pw");
    mariadb(Some(&db.0), &seed_sql(10));
    world.mariadb("default", &db.0);
    wrong_password(&mut world, "mariadb-dump", "Access denied");
}

#[test]
fn prefix_sharing_aliases_keep_separate_retention() {
    let mut world = World::new(Remote::Local);
    world.setting("db_cleanup_keep = 2");
    for alias in ["app", "app2"] {
        world.seeded_sqlite(alias, 10);
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
    // With the planned backup on top, keep 2 means the two oldest of app go.
    let would: Vec<&str> = dry
        .stdout
        .lines()
        .filter(|l| l.contains("would delete"))
        .collect();
    assert_eq!(would.len(), 2, "{}", dry.stdout);
    // Newest first, like every listing: #3 then #4 of the planned series.
    assert!(would[0].contains(&app_before[1]), "{}", dry.stdout);
    assert!(would[1].contains(&app_before[2]), "{}", dry.stdout);
    assert!(
        !dry.stdout.contains("app2-"),
        "app2 is not in app's series: {}",
        dry.stdout
    );
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

    // And the other way round: cleaning app2 leaves app alone.
    world.ok(&["dbbackup", "-d", "app2", "--clean"]);
    assert_eq!(world.names(Some("app2")).len(), 2);
    assert_eq!(world.names(Some("app")), app_after);
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

/// Runs started together (cron firing twice, two operators) choose the
/// same name in the same second; each must end up as its own complete
/// backup: never several "backed up" with one backup left.
#[test]
fn concurrent_same_second_backups_do_not_overwrite() {
    let (mut world, _) = sqlite_world(Remote::Local);
    // Minute resolution, so that the runs surely share their {datetime}.
    world.setting("db_date_format = \"%Y-%m-%d-%H%M\"");
    // Dumps that take a second, so that the runs surely overlap.
    world.wrap_tool("sqlite3", r#"sleep 1; exec "$REAL" "$@""#);
    const RUNS: usize = 4;
    // Each takes the database's lock in turn (--lock-wait); the names are
    // still chosen within the same minute, so they must not collide.
    let runs: Vec<_> = (0..RUNS)
        .map(|_| world.spawn(&["dbbackup", "--lock-wait", "120s"]))
        .collect();
    for r in runs
        .into_iter()
        .map(|c| Run::from(c.wait_with_output().unwrap()))
    {
        assert_eq!(r.code, 0, "{}", r.stderr);
    }
    let names = world.names(None);
    assert_eq!(
        names.len(),
        RUNS,
        "{RUNS} runs reported success but {} backups exist: {names:?}",
        names.len()
    );
    world.path_prefix.clear();
    for n in &names {
        world.ok(&["verify", "-i", n]);
    }
}

/// On a terminal the restore asks django-rclone's question first; only
/// "y" goes ahead, anything else (Enter included) changes nothing.
#[test]
fn restore_asks_on_a_terminal() {
    let (world, file) = sqlite_world(Remote::Local);
    world.ok(&["dbbackup"]);
    let name = world.names(None).remove(0);
    sqlite(&file, "DELETE FROM items");
    for answer in ["n\n", "\n"] {
        let r = world.run_on_terminal("dbrestore", answer);
        assert_eq!(r.code, 3, "answer {answer:?}: {}", r.stdout);
        assert_mentions(
            &r.stdout,
            &[&format!(
                "Restore database 'default' from 'db/{name}'? [y/N]"
            )],
        );
        assert_eq!(sqlite(&file, "SELECT count(*) FROM items").trim(), "0");
    }
    let r = world.run_on_terminal("dbrestore", "y\n");
    assert_eq!(r.code, 0, "{}", r.stdout);
    assert_eq!(sqlite(&file, "SELECT count(*) FROM items").trim(), "2000");
}

#[test]
fn restore_without_terminal_or_noinput_refuses() {
    let (world, file) = sqlite_world(Remote::Local);
    world.ok(&["dbbackup"]);
    sqlite(&file, "DELETE FROM items");
    let r = world.run(&["dbrestore"]);
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(
        r.stderr.contains("--noinput") && r.stderr.contains("terminal"),
        "{}",
        r.stderr
    );
    assert_eq!(sqlite(&file, "SELECT count(*) FROM items").trim(), "0");
}

/// Runs `listbackups` with `settings` added to a valid config; expects
/// exit 2 and an error naming the config file and every string in `names`.
fn config_error(settings: &str, names: &[&str]) {
    let (mut world, _) = sqlite_world(Remote::Local);
    world.setting(settings);
    let r = world.run(&["listbackups"]);
    assert_eq!(r.code, 2, "{settings}: {}", r.stderr);
    let file = world.config_path().display().to_string();
    assert!(r.stderr.contains(&file), "names {file}: {}", r.stderr);
    for n in names {
        assert!(r.stderr.contains(n), "names {n}: {}", r.stderr);
    }
    assert!(!r.stderr.contains("panicked"), "{}", r.stderr);
}

#[test]
fn config_errors_name_file_and_key() {
    config_error("db_cleanup_keep = 0", &["db_cleanup_keep"]);
    config_error("db_date_format = \"%Y-%m-%d-%Q\"", &["db_date_format"]);
    // A format the tool could not parse back (no date) is refused at load.
    config_error("db_date_format = \"%H%M%S\"", &["db_date_format"]);
    config_error("remot = \"x:\"", &["remot"]);
    config_error("db_cleanup_keep = \"ten\"", &["db_cleanup_keep"]);
    config_error(
        "[databases.other]\nengine = \"sqlite\"\nname = \"x.db\"\npasword_env = \"P\"",
        &["databases.other", "pasword_env"],
    );
    config_error(
        "[databases.other]\nengine = \"oracle\"\nname = \"x\"",
        &["databases.other", "engine"],
    );
}

/// `rcbackup --config FILE ARGS`, nothing else from the environment.
fn run_with_config(file: &std::path::Path, args: &[&str]) -> Run {
    Run::from(
        std::process::Command::new(bin())
            .arg("--config")
            .arg(file)
            .args(args)
            .env_remove("RCBACKUP_CONFIG")
            .stdin(Stdio::null())
            .output()
            .unwrap(),
    )
}

#[test]
fn missing_remote_and_missing_file_are_config_errors() {
    let (world, db_file) = sqlite_world(Remote::Local);
    let file = world.config_path();
    std::fs::write(
        &file,
        format!(
            "db_cleanup_keep = 3\n[databases.default]\nengine = \"sqlite\"\nname = \"{}\"\n",
            db_file.display()
        ),
    )
    .unwrap();
    let r = run_with_config(&file, &["dbbackup"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert_mentions(&r.stderr, &[file.to_str().unwrap(), "`remote`", "required"]);

    let missing = world.path("nowhere.toml");
    let r = run_with_config(&missing, &["listbackups"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert_mentions(&r.stderr, &[missing.to_str().unwrap()]);
}
