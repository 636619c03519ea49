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

/// A password that no message, log line or JSON output may show.
const PLANTED: &str = "Hunter2SecretPW";

/// Runs `rcbackup -vv ARGS` and insists that the planted password appears
/// nowhere in what it printed; returns the run.
fn run_clean(world: &World, args: &[&str]) -> Run {
    let mut full = vec!["-vv"];
    full.extend_from_slice(args);
    let r = world.run(&full);
    assert!(
        !r.stderr.contains(PLANTED) && !r.stdout.contains(PLANTED),
        "rcbackup {args:?} printed the password:\n{}\n{}",
        r.stdout,
        r.stderr
    );
    r
}

/// A TOML syntax error on the line of a `url` holding a password: the
/// message names the line and the key, and does not quote the line.
#[test]
fn config_syntax_error_does_not_quote_the_password() {
    let mut world = World::new(Remote::Local);
    for broken in [
        // the closing quote forgotten
        format!("url = \"postgres://app:{PLANTED}@127.0.0.1:5432/app\n"),
        // no quotes at all
        format!("url = postgres://app:{PLANTED}@127.0.0.1:5432/app\n"),
        // a stray character after the string
        format!("url = \"postgres://app:{PLANTED}@127.0.0.1:5432/app\"x\n"),
    ] {
        world.databases = format!("[databases.default]\n{broken}");
        let r = run_clean(&world, &["listbackups"]);
        assert_eq!(r.code, 2, "{}", r.stderr);
        assert!(r.stderr.contains("line "), "names the line: {}", r.stderr);
        assert!(
            r.stderr.contains("`databases.default.url`"),
            "names the key: {}",
            r.stderr
        );
    }
}

/// `password_env` holding the password itself (a common mistake) is not
/// echoed back as the name of a missing variable.
#[test]
fn password_env_holding_the_password_is_not_echoed() {
    let mut world = World::new(Remote::Local);
    for value in [PLANTED.to_string(), format!("{PLANTED} with spaces")] {
        world.databases = format!(
            "[databases.default]\nengine = \"postgresql\"\nname = \"app\"\nhost = \"127.0.0.1\"\nuser = \"{DB_USER}\"\npassword_env = \"{value}\"\n"
        );
        let r = run_clean(&world, &["dbbackup"]);
        assert_eq!(r.code, 2, "{}", r.stderr);
        assert!(r.stderr.contains("password_env"), "{}", r.stderr);
        // The same mistake in url_env.
        world.databases = format!("[databases.default]\nurl_env = \"{value}\"\n");
        let r = run_clean(&world, &["dbbackup"]);
        assert_eq!(r.code, 2, "{}", r.stderr);
        assert!(r.stderr.contains("url_env"), "{}", r.stderr);
    }
}

/// A value of the wrong type: the message says the key, what was found,
/// what is expected and an example, without Rust type names.
#[test]
fn type_errors_say_key_found_expected_and_example() {
    let mut world = World::new(Remote::Local);
    world.setting("db_cleanup_keep = \"10\"");
    let r = run_clean(&world, &["listbackups"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    for part in [
        "`db_cleanup_keep`",
        "found a string",
        "expected an integer",
        "db_cleanup_keep = 10",
    ] {
        assert!(r.stderr.contains(part), "{part:?} in: {}", r.stderr);
    }
    assert!(!r.stderr.contains("i64"), "{}", r.stderr);

    let mut world = World::new(Remote::Local);
    world.databases = format!(
        "[databases.default]\nengine = \"postgresql\"\nname = \"app\"\nport = \"{PLANTED}\"\n"
    );
    let r = run_clean(&world, &["listbackups"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    for part in ["`databases.default.port`", "found a string", "port = 5432"] {
        assert!(r.stderr.contains(part), "{part:?} in: {}", r.stderr);
    }
    assert!(!r.stderr.contains("u16"), "{}", r.stderr);
}

/// `?sslmode=verify-full` reaches libpq: against the test server, whose
/// certificate no root certificate vouches for, the dump cannot connect.
/// (Dropped, libpq would connect with its default `prefer`.)
#[test]
fn postgres_url_sslmode_reaches_libpq() {
    let mut world = World::new(Remote::Local);
    let db = PgDb::create("sslmode");
    psql(&db.0, &seed_sql(10));
    let missing = world.path("no-such-root.crt");
    world
        .databases
        .push_str("[databases.default]\nurl_env = \"APP_DATABASE_URL\"\n");
    world.env.push((
        "APP_DATABASE_URL".into(),
        format!(
            "postgres://{DB_USER}:{DB_PASSWORD}@127.0.0.1:5432/{}?sslmode=verify-full&sslrootcert={}",
            db.0,
            missing.display()
        ),
    ));
    let r = world.run(&["dbbackup"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(
        r.stderr.contains("root certificate") && r.stderr.contains("no-such-root.crt"),
        "libpq's verification failed: {}",
        r.stderr
    );
    assert!(!r.stderr.contains(DB_PASSWORD), "{}", r.stderr);
    assert!(world.list(None).is_empty());

    // An accepted parameter that the server can meet: the backup works.
    world.set_env(
        "APP_DATABASE_URL",
        format!(
            "postgres://{DB_USER}:{DB_PASSWORD}@127.0.0.1:5432/{}?sslmode=require&application_name=rcbackup-test",
            db.0
        ),
    );
    world.ok(&["dbbackup"]);
    assert_eq!(world.list(None).len(), 1);
}

/// A query parameter rcbackup does not know is refused by name, before
/// anything runs; the URL (and its password) is not shown.
#[test]
fn unknown_url_parameters_are_refused_by_name() {
    let mut world = World::new(Remote::Local);
    world.databases = format!(
        "[databases.default]\nurl = \"postgres://{DB_USER}:{PLANTED}@127.0.0.1:5432/app?sslmode=require&sslmod=verify-full&currentSchema=x\"\n"
    );
    let r = run_clean(&world, &["dbbackup"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr.contains("`sslmod`") && r.stderr.contains("`currentSchema`"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("databases.default.url"), "{}", r.stderr);
}

/// `?ssl-mode=REQUIRED` reaches the MariaDB client: the test server has no
/// TLS, so the dump must fail instead of connecting in the clear.
#[test]
fn mariadb_url_ssl_mode_reaches_the_client() {
    let mut world = World::new(Remote::Local);
    let db = MyDb::create("sslmode");
    mariadb(Some(&db.0), &seed_sql(10));
    world
        .databases
        .push_str("[databases.default]\nurl_env = \"APP_DATABASE_URL\"\n");
    world.env.push((
        "APP_DATABASE_URL".into(),
        format!(
            "mysql://{DB_USER}:{DB_PASSWORD}@127.0.0.1:3306/{}?ssl-mode=REQUIRED",
            db.0
        ),
    ));
    let r = world.run(&["dbbackup"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.contains("SSL"), "{}", r.stderr);
    assert!(world.list(None).is_empty());

    // DISABLED is honoured too, and the backup works.
    world.set_env(
        "APP_DATABASE_URL",
        format!(
            "mysql://{DB_USER}:{DB_PASSWORD}@127.0.0.1:3306/{}?ssl-mode=DISABLED&charset=utf8mb4",
            db.0
        ),
    );
    world.ok(&["dbbackup"]);
    assert_eq!(world.list(None).len(), 1);
}

/// A database whose `url_env` variable is unset breaks only the commands
/// that use it: the other aliases back up and list as before.
#[test]
fn unset_url_env_breaks_only_its_own_database() {
    let mut world = World::new(Remote::Local);
    world.seeded_sqlite("default", 10);
    world
        .databases
        .push_str("[databases.other]\nurl_env = \"RCBACKUP_TEST_UNSET_URL\"\n");
    world.env.retain(|(k, _)| k != "RCBACKUP_TEST_UNSET_URL");
    world.ok(&["dbbackup", "-d", "default"]);
    world.ok(&["listbackups"]);
    assert_eq!(world.list(Some("default")).len(), 1);
    world.ok(&["verify", "-d", "default"]);
    let r = world.run(&["dbbackup", "-d", "other"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr.contains("databases.other.url_env") && r.stderr.contains("not set"),
        "{}",
        r.stderr
    );
}
