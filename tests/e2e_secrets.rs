//! The database password never appears in the argv of any process
//! rcbackup starts, nor in its log even at -vv; it reaches the dump and
//! restore tools through their environment.

mod common;

use std::time::{Duration, Instant};

use common::*;

/// What the watcher saw while one rcbackup command ran.
#[derive(Default)]
struct Seen {
    /// The real tool (by /proc/PID/exe), not only its wrapper, was running.
    real_tool: bool,
    /// The password was in that tool's environment.
    password_in_env: bool,
    processes: usize,
}

/// Runs `rcbackup -vv ARGS` with `tool` slowed down by a wrapper that
/// pauses before becoming the real tool (same argv, same environment), and
/// reads /proc/PID/cmdline of every descendant of rcbackup every few
/// milliseconds until it ends. Panics if the password is in any argv or in
/// the log.
fn watch(world: &mut World, args: &[&str], tool: &str) -> Seen {
    world.wrap_tool(tool, r#"sleep 0.5; exec "$REAL" "$@""#);
    let mut full = vec!["-vv"];
    full.extend_from_slice(args);
    let mut child = world.spawn(&full);
    // Drain the pipes while watching, so a chatty -vv cannot block the child.
    let mut stderr_pipe = child.stderr.take().unwrap();
    let mut stdout_pipe = child.stdout.take().unwrap();
    let err_reader = std::thread::spawn(move || {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut stderr_pipe, &mut s).unwrap();
        s
    });
    let out_reader = std::thread::spawn(move || {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut stdout_pipe, &mut s).unwrap();
        s
    });
    let mut seen = Seen::default();
    let mut pids = std::collections::BTreeSet::new();
    let until = Instant::now() + Duration::from_secs(120);
    while child.try_wait().unwrap().is_none() {
        assert!(Instant::now() < until, "rcbackup {args:?} did not finish");
        for pid in descendants(child.id()) {
            let argv = cmdline(pid);
            assert!(
                !argv.contains(DB_PASSWORD),
                "the password is in the argv of process {pid}: {argv}"
            );
            if argv.is_empty() {
                continue;
            }
            pids.insert(pid);
            let exe = std::fs::read_link(format!("/proc/{pid}/exe")).unwrap_or_default();
            if exe.file_name().is_some_and(|f| f == tool) {
                seen.real_tool = true;
                if let Ok(env) = std::fs::read(format!("/proc/{pid}/environ")) {
                    seen.password_in_env |= String::from_utf8_lossy(&env).contains(DB_PASSWORD);
                }
            }
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let status = child.wait().unwrap();
    let stderr = err_reader.join().unwrap();
    let stdout = out_reader.join().unwrap();
    assert!(status.success(), "rcbackup {args:?}: {stderr}");
    assert!(
        stderr.contains("spawning"),
        "-vv logs the commands it runs: {stderr}"
    );
    assert!(
        !stderr.contains(DB_PASSWORD) && !stdout.contains(DB_PASSWORD),
        "the password is in the output: {stderr}"
    );
    seen.processes = pids.len();
    assert!(
        seen.real_tool,
        "the watcher never saw the real {tool} running"
    );
    assert!(
        seen.password_in_env,
        "the password reaches {tool} through its environment"
    );
    assert!(seen.processes >= 2, "saw the tool and rclone");
    seen
}

#[test]
fn postgresql_password_stays_out_of_argv_and_logs() {
    let mut world = World::new(Remote::Local);
    let db = PgDb::create("secret");
    psql(&db.0, &seed_sql(100));
    pg_big_table(&db.0, 100_000);
    world.postgres("default", &db.0);
    watch(&mut world, &["dbbackup"], "pg_dump");
    assert_eq!(world.list(None).len(), 1);
    world.path_prefix.clear();
    watch(&mut world, &["dbrestore", "--noinput"], "pg_restore");
    assert_eq!(psql(&db.0, "SELECT count(*) FROM big").trim(), "100000");
}

#[test]
fn mariadb_password_stays_out_of_argv_and_logs() {
    let mut world = World::new(Remote::Local);
    let db = MyDb::create("secret");
    mariadb(Some(&db.0), &seed_sql(100));
    mariadb_big_table(&db.0, 100_000);
    world.mariadb("default", &db.0);
    watch(&mut world, &["dbbackup"], "mariadb-dump");
    assert_eq!(world.list(None).len(), 1);
    world.path_prefix.clear();
    watch(&mut world, &["dbrestore", "--noinput"], "mariadb");
    assert_eq!(
        mariadb(Some(&db.0), "SELECT count(*) FROM big").trim(),
        "100000"
    );
}

/// A password inside a DATABASE_URL (url_env) is taken apart: the URL
/// never reaches an argv or the log.
#[test]
fn password_in_database_url_stays_out_of_argv_and_logs() {
    let mut world = World::new(Remote::Local);
    let db = PgDb::create("secreturl");
    psql(&db.0, &seed_sql(100));
    world
        .databases
        .push_str("[databases.default]\nurl_env = \"APP_DATABASE_URL\"\n");
    world.env.push((
        "APP_DATABASE_URL".into(),
        format!("postgres://{DB_USER}:{DB_PASSWORD}@127.0.0.1:5432/{}", db.0),
    ));
    watch(&mut world, &["dbbackup"], "pg_dump");
    assert_eq!(world.list(None).len(), 1);
}

/// A failing run at -vv (wrong database name) shows the tool's complaint
/// but not the password.
#[test]
fn failure_messages_hold_no_password() {
    let mut world = World::new(Remote::Local);
    world.postgres("default", "rcb_no_such_database_here");
    let r = world.run(&["-vv", "dbbackup"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.contains("does not exist"), "{}", r.stderr);
    assert!(!r.stderr.contains(DB_PASSWORD), "{}", r.stderr);
}
