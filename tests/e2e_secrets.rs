//! The database password never appears in any process's argv or in the
//! log, even at -vv; it reaches the dump tool through its environment.

mod support;

use std::process::Stdio;
use std::time::{Duration, Instant};

use support::*;

/// Watches every process's /proc/PID/cmdline while `rcbackup dbbackup -vv`
/// runs a (slowed-down) dump; returns what was seen of the dump tool.
fn watch_dump(world: &mut World, tool: &str) {
    // The wrapper pauses before becoming the real tool (same argv, same
    // environment), so the watcher has time to look at both.
    world.wrap_tool(
        tool,
        r#"sleep 1; exec -a "$(basename "$REAL")" "$REAL" "$@""#,
    );
    let mut child = world
        .command(&["-vv", "dbbackup"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut saw_tool = false;
    let mut saw_env = false;
    let until = Instant::now() + Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() {
        assert!(Instant::now() < until, "dbbackup did not finish");
        for entry in std::fs::read_dir("/proc").unwrap().flatten() {
            let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
                continue;
            };
            let text = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            assert!(
                !text.contains(DB_PASSWORD),
                "the password is in the argv of {:?}: {text}",
                entry.path()
            );
            if text.contains(tool) && text.contains("--") {
                saw_tool = true;
                if let Ok(env) = std::fs::read(entry.path().join("environ")) {
                    saw_env |= String::from_utf8_lossy(&env).contains(DB_PASSWORD);
                }
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(saw_tool, "the watcher never saw {tool} running");
    assert!(
        saw_env,
        "the password reaches {tool} through its environment"
    );
    assert!(
        stderr.contains("spawning"),
        "-vv logs the commands: {stderr}"
    );
    assert!(
        !stderr.contains(DB_PASSWORD),
        "the password is in the log: {stderr}"
    );
    assert_eq!(world.list(None).len(), 1);
}

#[test]
fn postgresql_password_stays_out_of_argv_and_logs() {
    let mut world = World::new(Remote::Local);
    let db = PgDb::create("secret");
    psql(&db.0, &seed_sql(100));
    world.postgres("default", &db.0);
    watch_dump(&mut world, "pg_dump");
}

#[test]
fn mariadb_password_stays_out_of_argv_and_logs() {
    let mut world = World::new(Remote::Local);
    let db = MyDb::create("secret");
    mariadb(Some(&db.0), &seed_sql(100));
    world.mariadb("default", &db.0);
    watch_dump(&mut world, "mariadb-dump");
}

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
    watch_dump(&mut world, "pg_dump");
}
