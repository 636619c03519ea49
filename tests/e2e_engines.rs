//! The engines never fake a backup or a restore: a dump that reports an
//! error or lacks its format's framing is never published, a restore never
//! swaps in (or commits) what did not replay cleanly, and a restored SQLite
//! file keeps its owner, mode and symlinks.

mod common;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;

// ---- helpers -------------------------------------------------------------

fn data_file(world: &World, name: &str) -> PathBuf {
    world.store.join("db").join(name)
}

fn record_file(world: &World, name: &str) -> PathBuf {
    world
        .store
        .join("db/.rcbackup/records")
        .join(format!("{name}.json"))
}

/// Replaces a stored backup's data with `bytes` and rewrites its record to
/// match, as a backup made by an earlier version would be.
fn replace_backup(world: &World, name: &str, bytes: &[u8]) {
    std::fs::write(data_file(world, name), bytes).unwrap();
    let rec = record_file(world, name);
    let mut v: serde_json::Value =
        serde_json::from_str(std::fs::read_to_string(&rec).unwrap().trim()).unwrap();
    v["size"] = serde_json::json!(bytes.len());
    v["sha256"] = serde_json::json!(sha256_hex(bytes));
    std::fs::write(&rec, format!("{v}\n")).unwrap();
}

/// Files in the data folder of the store (published or not).
fn data_objects(world: &World) -> Vec<PathBuf> {
    std::fs::read_dir(world.store.join("db"))
        .map(|d| {
            d.flatten()
                .map(|e| e.path())
                .filter(|p| p.is_file())
                .collect()
        })
        .unwrap_or_default()
}

/// Asserts a failed dump: exit 1, "dump failed", `why` named, nothing
/// published.
#[track_caller]
fn assert_dump_refused(world: &World, r: &Run, why: &[&str]) {
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert_mentions(&r.stderr, &["dump failed", "Nothing was published"]);
    assert_mentions(&r.stderr, why);
    assert!(world.list(None).is_empty(), "nothing listed");
    assert!(data_objects(world).is_empty(), "{:?}", world.stored_files());
}

/// Sets the failpoint variables so that the next run holds at `step`.
fn pause_at(world: &mut World, step: &str) -> PathBuf {
    let dir = world.path("pause");
    std::fs::create_dir_all(&dir).unwrap();
    world
        .env
        .retain(|(k, _)| !k.starts_with("RCBACKUP_TEST_PAUSE"));
    world
        .env
        .push(("RCBACKUP_TEST_PAUSE".into(), step.to_string()));
    world
        .env
        .push(("RCBACKUP_TEST_PAUSE_DIR".into(), dir.display().to_string()));
    dir
}

fn wait_reached(dir: &Path, step: &str) {
    wait_until(60, &format!("the run to reach {step}"), || {
        std::fs::read_dir(dir).unwrap().flatten().any(|e| {
            let n = e.file_name().to_string_lossy().into_owned();
            n.starts_with(&format!("{step}.")) && n.ends_with(".reached")
        })
    });
}

fn sigterm(pid: u32) {
    unsafe {
        libc::kill(pid as libc::pid_t, libc::SIGTERM);
    }
}

/// A SQLite world with `rows` items in `default`.
fn sqlite_world(rows: u32) -> (World, PathBuf) {
    let mut world = World::new(Remote::Local);
    let file = world.seeded_sqlite("default", rows);
    (world, file)
}

fn sqlite_items(file: &Path) -> String {
    sqlite(file, "SELECT count(*) FROM items;")
        .trim()
        .to_string()
}

/// Files beside `file` whose name marks them as a restore's staging.
fn staging_files(file: &Path) -> Vec<PathBuf> {
    let base = file.file_name().unwrap().to_string_lossy().into_owned();
    std::fs::read_dir(file.parent().unwrap())
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            let n = p.file_name().unwrap().to_string_lossy().into_owned();
            n.starts_with(&format!(".{base}.")) && n.contains("restore")
        })
        .collect()
}

// ---- SQLite dumps --------------------------------------------------------

/// A database with a corrupt page: `sqlite3 .dump` exits 0 and writes
/// `/****** CORRUPTION ERROR` and `ROLLBACK; -- due to errors` into its
/// output. That is a failed backup, not a hundred-byte one.
#[test]
fn sqlite_corrupt_database_is_not_backed_up() {
    let (world, file) = sqlite_world(3000);
    let mut b = std::fs::read(&file).unwrap();
    assert!(b.len() > 8 * 4096);
    for x in &mut b[4096 * 5..4096 * 6] {
        *x = 0xff;
    }
    std::fs::write(&file, b).unwrap();
    let r = world.run(&["dbbackup"]);
    assert_dump_refused(&world, &r, &["ERROR"]);
}

/// A file that is not SQLite at all (an encrypted database, a stray file).
#[test]
fn sqlite_file_that_is_not_a_database_is_not_backed_up() {
    let mut world = World::new(Remote::Local);
    let file = world.path("stray.sqlite3");
    std::fs::write(&file, vec![0x5au8; 3000]).unwrap();
    world.sqlite("default", &file);
    let r = world.run(&["dbbackup"]);
    assert_dump_refused(&world, &r, &["not a database"]);
}

/// A writer holds the database while the dump starts: the dump waits for
/// it (a bounded time) and backs up the committed data.
#[test]
fn sqlite_busy_database_waits_for_the_writer() {
    let (world, file) = sqlite_world(500);
    let sql = world.path("writer.sql");
    std::fs::write(
        &sql,
        ".timeout 10000\nBEGIN EXCLUSIVE;\nINSERT INTO notes VALUES (3, 'written while busy');\n",
    )
    .unwrap();
    let mut writer = Command::new("bash")
        .arg("-c")
        .arg(format!(
            "(cat '{}'; sleep 2; echo 'COMMIT;') | sqlite3 -bail '{}'",
            sql.display(),
            file.display()
        ))
        .spawn()
        .unwrap();
    // Until the writer holds its lock, a plain read succeeds.
    wait_until(10, "the writer's lock", || {
        Command::new("sqlite3")
            .arg(&file)
            .arg("SELECT count(*) FROM items;")
            .output()
            .map(|o| !o.status.success())
            .unwrap_or(false)
    });
    let r = world.run(&["dbbackup"]);
    assert!(writer.wait().unwrap().success());
    assert_eq!(r.code, 0, "{}", r.stderr);
    std::fs::remove_file(&file).unwrap();
    world.ok(&["dbrestore", "--noinput"]);
    assert_eq!(sqlite_items(&file), "500");
    assert_eq!(
        sqlite(&file, "SELECT body FROM notes WHERE id = 3;").trim(),
        "written while busy"
    );
}

/// A dump without its closing `COMMIT;` (cut short, exit 0) is a failed
/// backup, and a few of them with --clean leave the good backup alone.
#[test]
fn sqlite_dump_without_commit_is_not_published_nor_counted() {
    let (mut world, _) = sqlite_world(300);
    world.setting("db_cleanup_keep = 1");
    world.ok(&["dbbackup"]);
    let good = world.names(None);
    assert_eq!(good.len(), 1);
    world.wrap_tool("sqlite3", r#""$REAL" "$@" | head -n -1"#);
    for _ in 0..2 {
        let r = world.run(&["dbbackup", "--clean"]);
        assert_eq!(r.code, 1, "{}", r.stderr);
        assert_mentions(
            &r.stderr,
            &["dump failed", "COMMIT;", "Nothing was published"],
        );
    }
    world.path_prefix.clear();
    assert_eq!(world.names(None), good);
}

// ---- every engine's framing ------------------------------------------------

#[test]
fn pg_dump_with_empty_output_is_a_failed_backup() {
    let db = PgDb::create("eng");
    psql(&db.0, &seed_sql(50));
    let mut world = World::new(Remote::Local);
    world.postgres("default", &db.0);
    world.setting("db_cleanup_keep = 1");
    world.ok(&["dbbackup"]);
    let good = world.names(None);
    world.wrap_tool("pg_dump", "exit 0");
    for _ in 0..2 {
        let r = world.run(&["dbbackup", "--clean"]);
        assert_eq!(r.code, 1, "{}", r.stderr);
        assert_mentions(
            &r.stderr,
            &["dump failed", "empty", "Nothing was published"],
        );
    }
    world.wrap_tool("pg_dump", r#"echo "not a custom archive""#);
    let r = world.run(&["dbbackup"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert_mentions(&r.stderr, &["dump failed", "PGDMP"]);
    world.path_prefix.clear();
    assert_eq!(world.names(None), good);
}

#[test]
fn mariadb_dump_without_its_trailer_is_a_failed_backup() {
    let db = MyDb::create("eng");
    mariadb(Some(&db.0), &seed_sql(50));
    let mut world = World::new(Remote::Local);
    world.mariadb("default", &db.0);
    world.wrap_tool("mariadb-dump", r#""$REAL" "$@" | head -n -2"#);
    let r = world.run(&["dbbackup"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert_mentions(&r.stderr, &["dump failed", "-- Dump completed"]);
    world.path_prefix.clear();
    assert!(world.list(None).is_empty());
    world.ok(&["dbbackup"]);
}

/// `dump_args` that would remove the framing are refused up front.
#[test]
fn dump_args_removing_the_framing_are_refused() {
    let pg = PgDb::create("eng");
    let my = MyDb::create("eng");
    let mut world = World::new(Remote::Local);
    world.databases = format!(
        "[databases.pg]\nengine = \"postgresql\"\nname = \"{}\"\nhost = \"127.0.0.1\"\nuser = \"{DB_USER}\"\npassword_env = \"{PASSWORD_VAR}\"\ndump_args = [\"--format=plain\"]\n\
         [databases.my]\nengine = \"mariadb\"\nname = \"{}\"\nhost = \"127.0.0.1\"\nuser = \"{DB_USER}\"\npassword_env = \"{PASSWORD_VAR}\"\ndump_args = [\"--compact\"]\n",
        pg.0, my.0
    );
    for (alias, arg) in [("pg", "--format=plain"), ("my", "--compact")] {
        let r = world.run(&["dbbackup", "-d", alias]);
        assert_eq!(r.code, 2, "{}", r.stderr);
        assert_mentions(&r.stderr, &["dump_args", arg]);
    }
    assert!(world.list(None).is_empty());
}

// ---- SQLite restores -----------------------------------------------------

/// A backup made before the dump was checked, ending in `ROLLBACK; -- due
/// to errors`: the replay "succeeds" into an empty file, which must never
/// replace the database.
#[test]
fn sqlite_restore_never_swaps_in_a_dump_that_rolled_back() {
    let (mut world, file) = sqlite_world(400);
    // The test rewrites the stored SQL: stored as the dump tool wrote it.
    world.setting("compression = \"none\"");
    world.ok(&["dbbackup"]);
    let name = world.names(None).remove(0);
    let bad = "PRAGMA foreign_keys=OFF;\nBEGIN TRANSACTION;\n/**** ERROR: (26) file is not a database *****/\nROLLBACK; -- due to errors\n";
    replace_backup(&world, &name, bad.as_bytes());
    let r = world.run(&["dbrestore", "--noinput"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert_mentions(&r.stderr, &["left as it was"]);
    assert_eq!(sqlite_items(&file), "400");
    assert!(staging_files(&file).is_empty());
}

/// A replay that fails (a statement the shell rejects) leaves the file, and
/// the error does not echo the backup's rows.
#[test]
fn sqlite_failed_replay_keeps_the_file_and_prints_no_rows() {
    let (mut world, file) = sqlite_world(200);
    // The test rewrites the stored SQL: stored as the dump tool wrote it.
    world.setting("compression = \"none\"");
    world.ok(&["dbbackup"]);
    let name = world.names(None).remove(0);
    let good = std::fs::read_to_string(data_file(&world, &name)).unwrap();
    let bad = good.replacen(
        "COMMIT;",
        "INSERT INTO items VALUES(99999 'SECRET-sq-4417', 1);\nCOMMIT;",
        1,
    );
    replace_backup(&world, &name, bad.as_bytes());
    sqlite(&file, "DELETE FROM items WHERE id > 100;");
    let r = world.run(&["dbrestore", "--noinput"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert_mentions(&r.stderr, &["restore failed", "left as it was"]);
    assert_lacks(&r.stderr, &["SECRET-sq-4417"]);
    assert_eq!(sqlite_items(&file), "100");
}

/// The restored file keeps the owner, group and mode of the one it replaces.
#[test]
fn sqlite_restore_keeps_owner_group_and_mode() {
    let (world, file) = sqlite_world(100);
    world.ok(&["dbbackup"]);
    sqlite(&file, "DELETE FROM items;");
    let (uid, gid) = (65534, 65534);
    std::os::unix::fs::chown(&file, Some(uid), Some(gid)).unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    world.ok(&["dbrestore", "--noinput"]);
    let m = std::fs::metadata(&file).unwrap();
    assert_eq!((m.uid(), m.gid()), (uid, gid));
    assert_eq!(m.mode() & 0o7777, 0o600);
    assert_eq!(sqlite_items(&file), "100");
}

/// A database path that is a symlink: the restore writes the file it points
/// to and keeps the link.
#[test]
fn sqlite_restore_through_a_symlink_keeps_the_link() {
    let mut world = World::new(Remote::Local);
    let shared = world.path("shared");
    std::fs::create_dir_all(&shared).unwrap();
    let real = shared.join("app.sqlite3");
    sqlite(&real, &seed_sql(150));
    let link = world.path("app.sqlite3");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    world.sqlite("default", &link);
    world.ok(&["dbbackup"]);
    sqlite(&real, "DELETE FROM items;");
    world.ok(&["dbrestore", "--noinput"]);
    assert!(std::fs::symlink_metadata(&link)
        .unwrap()
        .file_type()
        .is_symlink());
    assert_eq!(std::fs::read_link(&link).unwrap(), real);
    assert_eq!(sqlite_items(&real), "150");
    assert!(staging_files(&link).is_empty() && staging_files(&real).is_empty());
}

/// A restore killed with SIGKILL just before its rename leaves its staging
/// file; the next restore removes it.
#[test]
fn sqlite_staging_left_by_a_killed_restore_is_removed_next_time() {
    let (mut world, file) = sqlite_world(300);
    world.ok(&["dbbackup"]);
    let dir = pause_at(&mut world, "restore-swap");
    let child = world.spawn(&["dbrestore", "--noinput"]);
    wait_reached(&dir, "restore-swap");
    sigkill(child.id());
    let _ = child.wait_with_output();
    let left = staging_files(&file);
    assert!(!left.is_empty(), "the killed run left its staging file");
    // A journal beside it, as a shell killed mid-transaction leaves.
    let mut journal = left[0].as_os_str().to_owned();
    journal.push("-journal");
    std::fs::write(PathBuf::from(journal), b"x").unwrap();
    world
        .env
        .retain(|(k, _)| !k.starts_with("RCBACKUP_TEST_PAUSE"));
    world.ok(&["dbrestore", "--noinput"]);
    assert!(
        staging_files(&file).is_empty(),
        "{:?}",
        staging_files(&file)
    );
    assert_eq!(sqlite_items(&file), "300");
}

// ---- MariaDB restores ----------------------------------------------------

/// A backup that fails half-way through the replay (a statement the server
/// rejects, after the tables were loaded): exit 1, the database may be
/// partly restored, and no row data in the error.
#[test]
fn mariadb_restore_failing_half_way_says_partly_restored_and_prints_no_rows() {
    let db = MyDb::create("eng");
    mariadb(Some(&db.0), &seed_sql(300));
    let mut world = World::new(Remote::Local);
    world.mariadb("default", &db.0);
    world.wrap_tool(
        "mariadb-dump",
        r#""$REAL" "$@" | sed 's/^UNLOCK TABLES;$/UNLOCK TABLES;\nINSERT INTO items VALUES (99999 '"'"'SECRET-my-9031'"'"', 1);/'"#,
    );
    world.ok(&["dbbackup"]);
    world.path_prefix.clear();
    let r = world.run(&["dbrestore", "--noinput"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert_mentions(&r.stderr, &["restore failed", "partly restored"]);
    assert_lacks(&r.stderr, &["SECRET-my-9031"]);
}

/// SIGTERM while the client is replaying: exit 130, "interrupted", the
/// database may be partly restored; never "the backup changed".
#[test]
fn mariadb_restore_interrupted_says_so() {
    let db = MyDb::create("eng");
    mariadb(Some(&db.0), &seed_sql(300));
    let mut world = World::new(Remote::Local);
    world.mariadb("default", &db.0);
    world.ok(&["dbbackup"]);
    let dir = pause_at(&mut world, "restore-streamed");
    let child = world.spawn(&["dbrestore", "--noinput"]);
    wait_reached(&dir, "restore-streamed");
    sigterm(child.id());
    let r = Run::from(child.wait_with_output().unwrap());
    assert_eq!(r.code, 130, "{}", r.stderr);
    assert_mentions(&r.stderr, &["interrupted", "partly restored"]);
    assert_lacks(&r.stderr, &["the backup changed"]);
}

// ---- PostgreSQL restores -------------------------------------------------

/// A PostgreSQL database named `dbname=<other>` is backed up and restored
/// as itself, never read as a connection string.
#[test]
fn pg_database_name_is_never_a_connection_string() {
    let other = PgDb::create("eng");
    psql(&other.0, &seed_sql(20));
    let weird = format!("dbname={}", other.0);
    psql("postgres", &format!("CREATE DATABASE \"{weird}\""));
    let _guard = PgDb(weird.clone());
    let conn = format!("dbname='{weird}'");
    psql(
        &conn,
        "CREATE TABLE marker (v TEXT); INSERT INTO marker VALUES ('the weird one');",
    );
    let mut world = World::new(Remote::Local);
    world.postgres("default", &weird);
    world.ok(&["dbbackup"]);
    psql(&conn, "DELETE FROM marker;");
    world.ok(&["dbrestore", "--noinput"]);
    assert_eq!(psql(&conn, "SELECT v FROM marker;").trim(), "the weird one");
    // The other database was neither read nor written.
    assert_eq!(psql(&other.0, "SELECT count(*) FROM items;").trim(), "20");
    assert_eq!(
        psql(
            &other.0,
            "SELECT count(*) FROM pg_tables WHERE tablename = 'marker';"
        )
        .trim(),
        "0"
    );
}

/// An uncompressed custom-format dump with one changed digit (pg_restore
/// accepts it) and a slow end of stream: the damaged rows are never
/// committed, and the database is as it was.
#[test]
fn pg_damaged_uncompressed_backup_is_never_committed() {
    let db = PgDb::create("eng");
    psql(&db.0, &seed_sql(2000));
    let mut world = World::new(Remote::Local);
    world.databases = format!(
        "[databases.default]\nengine = \"postgresql\"\nname = \"{}\"\nhost = \"127.0.0.1\"\nuser = \"{DB_USER}\"\npassword_env = \"{PASSWORD_VAR}\"\ncompression = \"none\"\n",
        db.0
    );
    world.ok(&["dbbackup"]);
    let name = world.names(None).remove(0);
    let obj = data_file(&world, &name);
    let mut b = std::fs::read(&obj).unwrap();
    let at = b
        .windows(10)
        .position(|w| w == b"item-1500-")
        .expect("the row in the uncompressed dump");
    b[at + 5] = b'7'; // item-1500 -> item-7500
    std::fs::write(&obj, &b).unwrap();
    psql(
        &db.0,
        "DELETE FROM items; INSERT INTO notes VALUES (3, 'after the backup');",
    );
    world.wrap_tool(
        "rclone",
        r#"case " $* " in
             *" cat "*) t=$(mktemp); "$REAL" "$@" > "$t" || exit 1
                        head -c -40 "$t"; sleep 1.5; tail -c 40 "$t"; rm -f "$t" ;;
             *) exec "$REAL" "$@" ;;
           esac"#,
    );
    let r = world.run(&["dbrestore", "--noinput"]);
    assert_eq!(r.code, 4, "{}", r.stderr);
    assert_mentions(&r.stderr, &["integrity", "left as it was"]);
    assert_eq!(psql(&db.0, "SELECT count(*) FROM items;").trim(), "0");
    assert_eq!(psql(&db.0, "SELECT count(*) FROM notes;").trim(), "3");
}

fn postgis_world(dump_db: &str) -> World {
    let mut world = World::new(Remote::Local);
    world.databases = format!(
        "[databases.default]\nengine = \"postgis\"\nname = \"{dump_db}\"\nhost = \"127.0.0.1\"\nuser = \"{DB_USER}\"\npassword_env = \"{PASSWORD_VAR}\"\ndump_args = [\"--table=places\"]\n"
    );
    world
}

fn postgis_installed(db: &str) -> bool {
    psql(
        db,
        "SELECT count(*) FROM pg_extension WHERE extname = 'postgis';",
    )
    .trim()
        == "1"
}

/// A dump of one table (`--table`) does not create PostGIS itself: the
/// restore into a database without it must create it, and the data comes
/// back.
#[test]
fn postgis_restore_creates_the_extension_the_dump_lacks() {
    let src = PgDb::create("gis");
    psql(
        &src.0,
        "CREATE EXTENSION postgis; CREATE TABLE places (id INT PRIMARY KEY, geom geometry(Point, 4326));
         INSERT INTO places VALUES (1, ST_SetSRID(ST_MakePoint(2.35, 48.85), 4326));",
    );
    let mut world = postgis_world(&src.0);
    world.ok(&["dbbackup"]);
    let fresh = PgDb::create("gis");
    world.databases = world.databases.replace(&src.0, &fresh.0);
    world.ok(&["dbrestore", "--noinput"]);
    assert!(postgis_installed(&fresh.0));
    assert_eq!(
        psql(&fresh.0, "SELECT ST_AsText(geom) FROM places;").trim(),
        "POINT(2.35 48.85)"
    );
}

/// A damaged PostGIS backup restored into a database without PostGIS: exit
/// 4, "left as it was", and truly so: the extension was not created.
#[test]
fn postgis_damaged_backup_changes_nothing() {
    let src = PgDb::create("gis");
    psql(
        &src.0,
        "CREATE EXTENSION postgis; CREATE TABLE places (id INT PRIMARY KEY, geom geometry(Point, 4326));
         INSERT INTO places VALUES (1, ST_SetSRID(ST_MakePoint(2.35, 48.85), 4326));",
    );
    let mut world = postgis_world(&src.0);
    world.ok(&["dbbackup"]);
    let name = world.names(None).remove(0);
    flip_byte(&data_file(&world, &name));
    let fresh = PgDb::create("gis");
    world.databases = world.databases.replace(&src.0, &fresh.0);
    let r = world.run(&["dbrestore", "--noinput"]);
    assert_eq!(r.code, 4, "{}", r.stderr);
    assert_mentions(&r.stderr, &["left as it was"]);
    assert!(
        !postgis_installed(&fresh.0),
        "nothing changed in the target"
    );
}

/// A dump tool that exits 0 having written a stub or a cut-off dump (found
/// by an outside review: a 5-byte `PGDMP`, the first 20 kB of a real dump,
/// a lone `-- Dump completed` trailer, junk that ends in `COMMIT;`) was
/// published as a backup, and `--clean` then evicted the good ones.
#[test]
fn stub_or_cut_off_dumps_that_exit_0_publish_nothing() {
    let db = PgDb::create("eng");
    psql(&db.0, &seed_sql(50));
    pg_big_table(&db.0, 3000);
    let mut world = World::new(Remote::Local);
    world.postgres("default", &db.0);
    world.setting("db_cleanup_keep = 1");
    world.ok(&["dbbackup"]);
    let good = world.names(None);
    for (body, why) in [
        (r#""$REAL" "$@" | head -c 20000; exit 0"#, "does not end"),
        ("printf PGDMP", "header"),
        (r#""$REAL" "$@" | head -c 11; exit 0"#, "does not end"),
    ] {
        world.wrap_tool("pg_dump", body);
        let r = world.run(&["dbbackup", "--clean"]);
        assert_eq!(r.code, 1, "{body}: {}", r.stderr);
        assert_mentions(&r.stderr, &["dump failed", why, "Nothing was published"]);
    }
    world.path_prefix.clear();
    assert_eq!(world.names(None), good);

    let my = MyDb::create("eng");
    mariadb(Some(&my.0), &seed_sql(50));
    let mut world = World::new(Remote::Local);
    world.mariadb("default", &my.0);
    world.wrap_tool(
        "mariadb-dump",
        "echo '-- Dump completed on 2026-01-01  0:00:00'",
    );
    let r = world.run(&["dbbackup"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert_mentions(&r.stderr, &["dump failed", "header"]);
    world.path_prefix.clear();
    assert!(world.names(None).is_empty());

    let (mut world, _) = sqlite_world(20);
    world.wrap_tool(
        "sqlite3",
        "head -c 5000 /dev/urandom | base64; echo 'COMMIT;'",
    );
    let r = world.run(&["dbbackup"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert_mentions(&r.stderr, &["dump failed", "does not start"]);
    world.path_prefix.clear();
    assert!(world.names(None).is_empty());
}

/// A SQLite database whose file name is long (245 bytes) backed up but
/// could never be restored: the staging file's name passed 255 bytes.
#[test]
fn sqlite_database_with_a_long_file_name_restores() {
    let mut world = World::new(Remote::Local);
    let file = world.path(&format!("{}.db", "a".repeat(242)));
    sqlite(&file, &seed_sql(30));
    world.sqlite("default", &file);
    world.ok(&["dbbackup"]);
    sqlite(&file, "DELETE FROM items");
    world.ok(&["dbrestore", "--noinput"]);
    assert_eq!(sqlite(&file, "SELECT count(*) FROM items").trim(), "30");
    assert!(staging_files(&file).is_empty());
}
