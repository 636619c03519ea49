//! The Django bridge (integrations/django, package `rcbackup_django`) in a
//! real Django project made at test time: `manage.py dbbackup`,
//! `listbackups`, `dbrestore`, `mediabackup`, `mediarestore` and
//! `rcbackup_config` with the venv scripts/setup.sh makes (Django 5.2,
//! django-rclone 0.4.0, psycopg), against the real PostgreSQL and SQLite,
//! with signal receivers that record what they get. The bridge is taken from
//! this worktree through PYTHONPATH, so no stale install is tested.

mod common;

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use common::*;

fn venv_python() -> PathBuf {
    let venv = std::env::var("RCBACKUP_DJANGO_VENV")
        .unwrap_or_else(|_| "/opt/rcbackup-django-venv".to_string());
    let python = Path::new(&venv).join("bin/python");
    assert!(
        python.exists(),
        "the Django test venv is missing ({}): run `bash scripts/setup.sh` (or set RCBACKUP_DJANGO_VENV)",
        python.display()
    );
    python
}

fn bridge_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../integrations/django")
}

/// The test app: a receiver for each of django-rclone's signals that
/// appends `{signal, sender, kwargs}` to $RECORD_FILE, and raises when
/// $RAISE_ON names the signal, or sleeps $SLEEP_SECS (after creating
/// `$RECORD_FILE.sleeping`) when $SLEEP_ON does. Half are connected through
/// `django_rclone.signals` (as an existing project's receivers are), half
/// through `rcbackup_django.signals`.
const RECORDER: &str = r#"
import json, os, time
from django.apps import AppConfig

def record(name):
    def receiver(sender, **kwargs):
        kwargs.pop("signal", None)
        with open(os.environ["RECORD_FILE"], "a") as f:
            f.write(json.dumps({"signal": name, "sender": f"{sender.__module__}.{sender.__name__}", "kwargs": kwargs}) + "\n")
        if os.environ.get("RAISE_ON") == name:
            raise RuntimeError(f"receiver says no to {name}")
        if os.environ.get("SLEEP_ON") == name:
            open(os.environ["RECORD_FILE"] + ".sleeping", "w").close()
            time.sleep(float(os.environ["SLEEP_SECS"]))
    return receiver

class RecorderConfig(AppConfig):
    name = "recorder"
    def ready(self):
        import django_rclone.signals as upstream
        import rcbackup_django.signals as bridge
        for i, name in enumerate(["pre_db_backup", "post_db_backup", "pre_db_restore", "post_db_restore",
                                  "pre_media_backup", "post_media_backup", "pre_media_restore", "post_media_restore"]):
            module = upstream if i % 2 == 0 else bridge
            getattr(module, name).connect(record(name), weak=False)
"#;

const MANAGE: &str = r#"
import os, sys
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "settings")
from django.core.management import execute_from_command_line
execute_from_command_line(sys.argv)
"#;

struct Project {
    dir: tempfile::TempDir,
    /// The folder behind the `loc:` rclone remote.
    store: PathBuf,
    media: PathBuf,
    binary: String,
}

impl Project {
    /// A project with `databases` (a Python dict literal) and `extra` settings lines.
    fn new(databases: &str, extra: &str) -> Project {
        let dir = tempfile::tempdir().unwrap();
        let store = dir.path().join("store");
        let media = dir.path().join("media");
        std::fs::create_dir_all(&store).unwrap();
        std::fs::create_dir_all(media.join("docs")).unwrap();
        std::fs::create_dir_all(dir.path().join("recorder")).unwrap();
        std::fs::create_dir_all(dir.path().join("tmp")).unwrap();
        std::fs::write(dir.path().join("recorder/__init__.py"), "").unwrap();
        std::fs::write(dir.path().join("recorder/apps.py"), RECORDER).unwrap();
        std::fs::write(dir.path().join("manage.py"), MANAGE).unwrap();
        let p = Project {
            binary: bin().to_string(),
            dir,
            store,
            media,
        };
        p.settings(databases, extra);
        p
    }

    fn settings(&self, databases: &str, extra: &str) {
        let text = format!(
            "SECRET_KEY = 'test'\nUSE_TZ = True\n\
             INSTALLED_APPS = ['rcbackup_django', 'recorder.apps.RecorderConfig']\n\
             DATABASES = {databases}\n\
             MEDIA_ROOT = {media:?}\n\
             DJANGO_RCLONE = {{'REMOTE': 'loc:{store}', 'DB_CLEANUP_KEEP': 2}}\n\
             RCBACKUP = {{'BINARY': {binary:?}}}\n{extra}\n",
            media = self.media.display().to_string(),
            store = self.store.display(),
            binary = self.binary,
        );
        std::fs::write(self.dir.path().join("settings.py"), text).unwrap();
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    fn manage(&self, args: &[&str]) -> Command {
        let mut cmd = self.python(&["manage.py"]);
        cmd.args(args);
        cmd
    }

    /// The project's Python with `args`, in the project, as manage.py runs.
    fn python(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(venv_python());
        cmd.args(args)
            .current_dir(self.dir.path())
            .env("PYTHONPATH", bridge_dir())
            .env("RECORD_FILE", self.path("signals.jsonl"))
            .env("RCLONE_CONFIG_LOC_TYPE", "local")
            .env("TMPDIR", self.path("tmp"))
            .env_remove("RCBACKUP_CONFIG")
            .env_remove("RAISE_ON")
            .env_remove("SLEEP_ON")
            .stdin(Stdio::null());
        // As from a terminal: a test run started in the background by a
        // script inherits SIGINT ignored, which the bridge keeps ignored.
        // SAFETY: signal(2) between fork and exec.
        unsafe {
            cmd.pre_exec(|| {
                libc::signal(libc::SIGINT, libc::SIG_DFL);
                Ok(())
            });
        }
        cmd
    }

    fn run(&self, args: &[&str]) -> Output {
        self.manage(args).output().unwrap()
    }

    #[track_caller]
    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "manage.py {args:?} failed ({:?}):\n{}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// The signals received so far, then forgotten.
    fn signals(&self) -> Vec<serde_json::Value> {
        let file = self.path("signals.jsonl");
        let text = std::fs::read_to_string(&file).unwrap_or_default();
        let _ = std::fs::remove_file(&file);
        text.lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    /// Starts `cmd` (made by `manage`) with rcbackup held at `step`, and
    /// waits until it holds there; `release` lets it go on.
    fn hold(&self, mut cmd: Command, step: &str) -> std::process::Child {
        let pause = self.path("pause");
        let _ = std::fs::remove_dir_all(&pause);
        std::fs::create_dir_all(&pause).unwrap();
        let child = cmd
            .env("RCBACKUP_TEST_PAUSE", step)
            .env("RCBACKUP_TEST_PAUSE_DIR", &pause)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        wait_until(60, &format!("rcbackup to reach `{step}`"), || {
            std::fs::read_dir(&pause).unwrap().flatten().any(|e| {
                e.file_name()
                    .to_string_lossy()
                    .starts_with(&format!("{step}."))
            })
        });
        child
    }

    fn release(&self, step: &str) {
        std::fs::write(self.path("pause").join(format!("{step}.go")), b"").unwrap();
    }

    fn backups(&self) -> Vec<String> {
        let out = self.ok(&["listbackups", "--json"]);
        let list: Vec<serde_json::Value> = serde_json::from_str(&out).unwrap();
        list.iter()
            .filter(|e| e["status"] == "ok")
            .map(|e| e["name"].as_str().unwrap().to_string())
            .collect()
    }
}

/// A project whose `default` database is SQLite with `rows` items.
fn sqlite_project(rows: u32) -> (Project, PathBuf) {
    let p = Project::new("{}", "");
    let db = p.path("app.sqlite3");
    sqlite(&db, &seed_sql(rows));
    p.settings(&sqlite_db(&db), "");
    (p, db)
}

fn names(signals: &[serde_json::Value]) -> Vec<&str> {
    signals
        .iter()
        .map(|s| s["signal"].as_str().unwrap())
        .collect()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn sqlite_db(file: &Path) -> String {
    format!(
        "{{'default': {{'ENGINE': 'django.db.backends.sqlite3', 'NAME': {:?}}}}}",
        file.display().to_string()
    )
}

/// A PostgreSQL role with a password full of quotes, spaces, URL
/// delimiters and non-ASCII letters, owning a fresh database: the bridge
/// must hand it over intact in both of its forms (password_env, url_env).
struct OddRole {
    role: String,
    password: &'static str,
    db: PgDb,
}

impl OddRole {
    fn create() -> OddRole {
        let db = PgDb::create("bridge");
        let role = format!("{}_role", db.0);
        let password = "p w'\"ü#%@:/?&=\\ é";
        let literal = password.replace('\'', "''");
        psql("postgres", &format!("DROP ROLE IF EXISTS {role}"));
        psql(
            "postgres",
            &format!(
                "CREATE ROLE {role} LOGIN PASSWORD '{literal}'; ALTER DATABASE {} OWNER TO {role}",
                db.0
            ),
        );
        OddRole { role, password, db }
    }

    /// Its DATABASES entry, with `options` inside OPTIONS.
    fn entry(&self, options: &str) -> String {
        format!(
            "{{'ENGINE': 'django.db.backends.postgresql', 'NAME': '{}', 'HOST': '127.0.0.1', 'PORT': '5432', 'USER': '{}', 'PASSWORD': {:?}, 'OPTIONS': {{{options}}}}}",
            self.db.0, self.role, self.password
        )
    }

    fn settings(&self, options: &str) -> String {
        format!("{{'default': {}}}", self.entry(options))
    }

    /// Tables owned by the role, so that its restore may drop them.
    fn seed(&self) {
        psql(
            &self.db.0,
            &format!("SET ROLE {};\n{}", self.role, seed_sql(20)),
        );
    }
}

impl Drop for OddRole {
    fn drop(&mut self) {
        let db = std::mem::take(&mut self.db.0);
        drop(PgDb(db));
        let _ = Command::new("psql")
            .args([
                "-X",
                "-q",
                "-h",
                "127.0.0.1",
                "-U",
                DB_USER,
                "-d",
                "postgres",
                "-c",
            ])
            .arg(format!("DROP ROLE IF EXISTS {}", self.role))
            .env("PGPASSWORD", DB_PASSWORD)
            .output();
    }
}

/// A wrapper in front of rcbackup that records the argv, what the generated
/// config is (`readlink` of its descriptor: a memfd, no file on disk), its
/// text, and whether its environment holds `needle`.
fn spy(p: &Project, needle: &str) -> PathBuf {
    let script = p.path("spy.sh");
    let log = p.path("spy.log");
    let needle_file = p.path("needle");
    std::fs::write(&needle_file, needle).unwrap();
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\nprintf '%s\\n' \"$*\" >> {log}\n\
             cfg=$2; readlink \"/proc/$$/fd/${{cfg##*/}}\" >> {log}; cat \"$cfg\" >> {log}\n\
             if tr '\\0' '\\n' < /proc/$$/environ | grep -qF -f {needle}; then echo ENV-HAS-PASSWORD >> {log}; fi\n\
             exec {bin} \"$@\"\n",
            log = log.display(),
            needle = needle_file.display(),
            bin = bin()
        ),
    )
    .unwrap();
    std::process::Command::new("chmod")
        .arg("+x")
        .arg(&script)
        .status()
        .unwrap();
    log
}

#[test]
fn postgres_backup_list_restore_with_signals_and_no_password_in_argv_or_config() {
    let odd = OddRole::create();
    odd.seed();
    let mut p = Project::new(&odd.settings(""), "");
    let log = spy(&p, odd.password);
    p.binary = p.path("spy.sh").display().to_string();
    p.settings(&odd.settings(""), "");
    let before = psql(&odd.db.0, CONTENT_QUERY);

    let out = p.ok(&["dbbackup"]);
    let signals = p.signals();
    assert_eq!(names(&signals), ["pre_db_backup", "post_db_backup"]);
    assert_eq!(
        signals[0]["kwargs"],
        serde_json::json!({"database": "default"})
    );
    assert_eq!(
        signals[0]["sender"],
        "rcbackup_django.management.commands.dbbackup.Command"
    );
    let path = signals[1]["kwargs"]["path"].as_str().unwrap().to_string();
    let name = path.strip_prefix("db/").unwrap().to_string();
    assert_eq!(p.backups(), [name]);
    assert_mentions(&out, &[&format!("Backup completed: {path}")]);

    // What rcbackup was given: the password in its environment only.
    let spied = std::fs::read_to_string(&log).unwrap();
    assert!(!spied.contains(odd.password), "{spied}");
    assert!(!spied.contains("p w"), "{spied}");
    assert_mentions(
        &spied,
        &[
            "--config /dev/fd/",
            "\n/memfd:rcbackup-django.toml",
            "password_env = \"RCBACKUP_DB_PASSWORD_DEFAULT\"",
            "ENV-HAS-PASSWORD",
        ],
    );

    // A second backup, then restore the older one by name: rows back, and
    // the signals name exactly the backup restored.
    psql(&odd.db.0, "DELETE FROM items WHERE id > 10");
    std::thread::sleep(std::time::Duration::from_millis(1100));
    p.ok(&["dbbackup"]);
    p.signals();
    assert_eq!(p.backups().len(), 2);
    p.ok(&["dbrestore", "--noinput", "-i", &path]);
    assert_eq!(psql(&odd.db.0, CONTENT_QUERY), before);
    let signals = p.signals();
    assert_eq!(names(&signals), ["pre_db_restore", "post_db_restore"]);
    assert_eq!(
        signals[0]["kwargs"],
        serde_json::json!({"database": "default", "path": path})
    );
    assert_eq!(
        signals[1]["kwargs"],
        serde_json::json!({"database": "default"})
    );

    // Without -i: the newest; without --noinput and a terminal: refused
    // before any signal.
    let out = p.run(&["dbrestore"]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert_mentions(&stderr(&out), &["--noinput"]);
    assert!(p.signals().is_empty());
    p.ok(&["dbrestore", "--noinput"]);
    let newest = &p.signals()[0]["kwargs"]["path"];
    assert_eq!(newest.as_str().unwrap(), format!("db/{}", p.backups()[0]));
    assert_eq!(psql(&odd.db.0, "SELECT count(*) FROM items").trim(), "10");

    // --clean keeps DB_CLEANUP_KEEP (2) after post_db_backup.
    let out = p.ok(&["dbbackup", "--clean"]);
    assert_mentions(&out, &["Removing old backup: db/"]);
    assert_eq!(p.backups().len(), 2);
}

#[test]
fn postgres_options_travel_as_a_url_in_the_environment() {
    let odd = OddRole::create();
    odd.seed();
    let settings = odd.settings("'sslmode': 'disable', 'application_name': 'bridge test'");
    let p = Project::new(&settings, "");
    p.ok(&["dbbackup"]);
    psql(&odd.db.0, "DELETE FROM items");
    p.ok(&["dbrestore", "--noinput"]);
    assert_eq!(psql(&odd.db.0, "SELECT count(*) FROM items").trim(), "20");
}

#[test]
fn sqlite_receivers_that_raise_and_failing_backups_send_no_post_signal() {
    let p = Project::new("{}", "");
    let db = p.path("app.sqlite3");
    sqlite(&db, &seed_sql(5));
    p.settings(&sqlite_db(&db), "");

    // A pre_db_backup receiver raising: exit 3, nothing published.
    let out = p
        .manage(&["dbbackup"])
        .env("RAISE_ON", "pre_db_backup")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert_mentions(
        &stderr(&out),
        &["pre_db_backup receiver raised RuntimeError", "not started"],
    );
    assert_eq!(names(&p.signals()), ["pre_db_backup"]);
    assert!(p.backups().is_empty());

    // A failing backup (the file is not a database): rcbackup's exit code,
    // pre sent, no post.
    std::fs::write(&db, b"this is not a database, whatever sqlite3 says").unwrap();
    let out = p.run(&["dbbackup"]);
    assert!(!out.status.success());
    assert_eq!(names(&p.signals()), ["pre_db_backup"]);
    assert!(p.backups().is_empty());

    // A post receiver raising: the backup stands, the command fails saying so.
    std::fs::remove_file(&db).unwrap();
    sqlite(&db, &seed_sql(5));
    let out = p
        .manage(&["dbbackup"])
        .env("RAISE_ON", "post_db_backup")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_mentions(
        &stderr(&out),
        &["was made, but a post_db_backup receiver raised"],
    );
    assert_eq!(p.backups().len(), 1);
    p.signals();

    // pre_db_restore raising: nothing restored.
    sqlite(&db, "DELETE FROM items;");
    let out = p
        .manage(&["dbrestore", "--noinput"])
        .env("RAISE_ON", "pre_db_restore")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    assert_eq!(sqlite(&db, "SELECT count(*) FROM items;").trim(), "0");
    p.ok(&["dbrestore", "--noinput"]);
    assert_eq!(sqlite(&db, "SELECT count(*) FROM items;").trim(), "5");

    // Unknown alias, unknown backup: clear errors, no signal.
    p.signals();
    let out = p.run(&["dbbackup", "-d", "nope"]);
    assert_eq!(out.status.code(), Some(2));
    assert_mentions(&stderr(&out), &["Database 'nope' is not configured"]);
    let out = p.run(&[
        "dbrestore",
        "--noinput",
        "-i",
        "default-1999-01-01-000000.sqlite3.zst",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert_mentions(
        &stderr(&out),
        &["No backup 'default-1999-01-01-000000.sqlite3.zst'"],
    );
    assert!(p.signals().is_empty());
}

#[test]
fn media_backup_and_restore_send_their_signals() {
    let p = Project::new("{}", "");
    let db = p.path("app.sqlite3");
    sqlite(&db, &seed_sql(1));
    p.settings(&sqlite_db(&db), "");
    std::fs::write(p.media.join("docs/a.txt"), "alpha").unwrap();
    std::fs::write(p.media.join("b.txt"), "beta").unwrap();

    p.ok(&["mediabackup"]);
    let signals = p.signals();
    assert_eq!(names(&signals), ["pre_media_backup", "post_media_backup"]);
    assert_eq!(signals[0]["kwargs"], serde_json::json!({}));
    assert!(String::from_utf8(
        p.manage(&["listbackups", "--media"])
            .output()
            .unwrap()
            .stdout
    )
    .unwrap()
    .contains('2'));

    std::fs::remove_file(p.media.join("docs/a.txt")).unwrap();
    let out = p.run(&["mediarestore"]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(p.signals().is_empty());
    p.ok(&["mediarestore", "--noinput"]);
    assert_eq!(
        std::fs::read_to_string(p.media.join("docs/a.txt")).unwrap(),
        "alpha"
    );
    assert_eq!(
        names(&p.signals()),
        ["pre_media_restore", "post_media_restore"]
    );
}

#[test]
fn rcbackup_config_prints_toml_that_config_check_accepts_without_any_password() {
    let odd = OddRole::create();
    let p = Project::new(
        "{}",
        "DBBACKUP_GPG_RECIPIENT = 'ops@example.com'\nDBBACKUP_DATE_FORMAT = '%Y%m%d-%H%M%S'",
    );
    let db = p.path("app.sqlite3");
    sqlite(&db, &seed_sql(1));
    let databases = format!(
        "{{'default': {{'ENGINE': 'django.db.backends.sqlite3', 'NAME': {:?}}}, 'pg-plain': {}, 'pg_opts': {}}}",
        db.display().to_string(),
        odd.entry(""),
        odd.entry("'sslmode': 'disable'"),
    );
    p.settings(
        &databases,
        "DBBACKUP_GPG_RECIPIENT = 'ops@example.com'\nDBBACKUP_DATE_FORMAT = '%Y%m%d-%H%M%S'",
    );

    let out = p.run(&["rcbackup_config"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8(out.stdout.clone()).unwrap();
    assert!(
        !text.contains(odd.password) && !text.contains("p w"),
        "{text}"
    );
    assert_mentions(&stderr(&out), &["DBBACKUP_GPG_RECIPIENT"]);
    assert_mentions(
        &text,
        &[
            "export RCBACKUP_DB_PASSWORD_PG_PLAIN='<password>'",
            "export RCBACKUP_DB_URL_PG_OPTS='postgres://",
            "<password>@127.0.0.1:5432/",
            "?sslmode=disable'",
            "<password> percent-encoded",
            "write a ' as '\\''",
            "DBBACKUP_GPG_RECIPIENT",
        ],
    );
    let doc: toml::Table = text.parse().expect("rcbackup_config prints TOML");
    assert_eq!(doc["db_date_format"].as_str(), Some("%Y%m%d-%H%M%S"));
    assert_eq!(
        doc["databases"]["pg_opts"]["url_env"].as_str(),
        Some("RCBACKUP_DB_URL_PG_OPTS")
    );

    // Written as rcbackup.toml, with the variables set as the comments say,
    // `rcbackup config check` accepts it and reaches both databases.
    let config = p.path("rcbackup.toml");
    std::fs::write(&config, &text).unwrap();
    // The URL's password percent-encoded with the line its comment gives
    // (reading the password on stdin).
    let line = text
        .split("percent-encoded (`")
        .nth(1)
        .and_then(|rest| rest.split("` prints it)").next())
        .expect("the URL variable's comment gives a line that encodes the password");
    let mut sh = Command::new("sh")
        .args(["-c", line])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(
        sh.stdin.as_mut().unwrap(),
        format!("{}\n", odd.password).as_bytes(),
    )
    .unwrap();
    let encoded = String::from_utf8(sh.wait_with_output().unwrap().stdout).unwrap();
    let encoded = encoded.trim();
    assert!(!encoded.is_empty() && !encoded.contains(' '), "{encoded}");
    let check = Command::new(bin())
        .args(["--config", config.to_str().unwrap(), "config", "check"])
        .env("RCLONE_CONFIG_LOC_TYPE", "local")
        .env("RCBACKUP_DB_PASSWORD_PG_PLAIN", odd.password)
        .env(
            "RCBACKUP_DB_URL_PG_OPTS",
            format!(
                "postgres://{}:{encoded}@127.0.0.1:5432/{}?sslmode=disable",
                odd.role, odd.db.0
            ),
        )
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&check.stdout),
        stderr(&check)
    );
}

#[test]
fn missing_binary_and_setting_mapping_errors_are_clear() {
    let mut p = Project::new("{}", "");
    let db = p.path("app.sqlite3");
    sqlite(&db, &seed_sql(1));
    p.binary = p.path("no-such-rcbackup").display().to_string();
    p.settings(&sqlite_db(&db), "");
    let out = p.run(&["dbbackup"]);
    assert_eq!(out.status.code(), Some(2));
    assert_mentions(
        &stderr(&out),
        &["RCBACKUP['BINARY']", "not an executable file"],
    );
    assert!(
        p.signals().is_empty(),
        "no signal before the binary is found"
    );

    p.binary = bin().to_string();
    p.settings(
        &sqlite_db(&db),
        "DBBACKUP_FILENAME_TEMPLATE = '{databasename}-{servername}-{datetime}.{extension}'",
    );
    let out = p.run(&["dbbackup"]);
    assert_eq!(out.status.code(), Some(2));
    assert_mentions(
        &stderr(&out),
        &["{servername}", "DJANGO_RCLONE['DB_FILENAME_TEMPLATE']"],
    );
}

#[test]
fn python_unit_tests_of_the_settings_mapping() {
    let out = Command::new(venv_python())
        .args(["-m", "unittest", "discover", "-s", "tests"])
        .current_dir(bridge_dir())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
}

/// SIGTERM to manage.py mid-backup reaches rcbackup (exit 130, nothing
/// published, no post signal); SIGKILL of manage.py stops rcbackup too
/// (PR_SET_PDEATHSIG), publishing nothing.
#[test]
fn stopping_manage_py_stops_rcbackup_and_publishes_nothing() {
    let p = Project::new("{}", "");
    let db = p.path("app.sqlite3");
    sqlite(&db, &seed_sql(50));
    p.settings(&sqlite_db(&db), "");
    let pause = p.path("pause");
    std::fs::create_dir_all(&pause).unwrap();
    let reached = |pause: &Path| {
        std::fs::read_dir(pause)
            .unwrap()
            .flatten()
            .find(|e| e.file_name().to_string_lossy().ends_with(".reached"))
            .map(|e| e.file_name().to_string_lossy().into_owned())
    };

    for signal in ["TERM", "KILL"] {
        for e in std::fs::read_dir(&pause).unwrap().flatten() {
            std::fs::remove_file(e.path()).unwrap();
        }
        let mut child = p
            .manage(&["dbbackup"])
            .env("RCBACKUP_TEST_PAUSE", "uploaded")
            .env("RCBACKUP_TEST_PAUSE_DIR", &pause)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        wait_until(60, "rcbackup to reach `uploaded`", || {
            reached(&pause).is_some()
        });
        let rcbackup_pid: u32 = reached(&pause)
            .unwrap()
            .split('.')
            .nth(1)
            .unwrap()
            .parse()
            .unwrap();
        Command::new("kill")
            .args([&format!("-{signal}"), &child.id().to_string()])
            .status()
            .unwrap();
        let status = child.wait().unwrap();
        wait_until(30, "rcbackup to stop", || !alive(rcbackup_pid));
        if signal == "TERM" {
            let mut err = String::new();
            std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
            assert_eq!(status.code(), Some(130), "{err}");
        }
        assert_eq!(names(&p.signals()), ["pre_db_backup"], "after SIG{signal}");
        assert!(p.backups().is_empty(), "after SIG{signal}");
        // The config was never a file: nothing left in TMPDIR, even after SIGKILL.
        let left: Vec<_> = std::fs::read_dir(p.path("tmp"))
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert!(left.is_empty(), "after SIG{signal}: {left:?}");
    }
}

/// Outside review: a signal to manage.py was passed to rcbackup, but the
/// bridge went on when that rcbackup ended with 0: a restore ran after the
/// listing that picks the backup was interrupted (post_db_restore sent,
/// exit 0), and `dbbackup --clean` started the prune, deleting backups,
/// after a signal that came once the backup's record was written. Now the
/// command starts nothing more and exits 130 saying what was done.
#[test]
fn a_signal_stops_the_command_even_when_rcbackups_step_had_finished() {
    let (p, db) = sqlite_project(3);
    p.ok(&["dbbackup"]);
    p.ok(&["dbbackup"]);
    p.signals();
    sqlite(&db, "DELETE FROM items;");

    // The listing before a restore: rcbackup holds once it has read the
    // catalog; the signal reaches it there.
    for signal in [libc::SIGINT, libc::SIGTERM] {
        let child = p.hold(p.manage(&["dbrestore", "--noinput"]), "listed");
        unsafe { libc::kill(child.id() as libc::pid_t, signal) };
        let out = child.wait_with_output().unwrap();
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), stderr(&out));
        assert_eq!(out.status.code(), Some(130), "signal {signal}: {text}");
        assert_lacks(&text, &["Restoring", "Restore completed", "Traceback"]);
        assert!(p.signals().is_empty(), "signal {signal}");
        assert_eq!(sqlite(&db, "SELECT count(*) FROM items;").trim(), "0");
    }

    // --clean: the signal comes once the new backup's record is written, so
    // the backup stands (rcbackup exits 0) — but no prune starts.
    let before = p.backups();
    assert_eq!(before.len(), 2);
    let child = p.hold(p.manage(&["dbbackup", "--clean"]), "recorded");
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
    let out = child.wait_with_output().unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(130), "{err}");
    assert_mentions(
        &err,
        &[
            "Interrupted: backup db/",
            "post_db_backup was not sent and nothing more was done",
        ],
    );
    assert_eq!(names(&p.signals()), ["pre_db_backup"]);
    let after = p.backups();
    assert_eq!(after.len(), 3, "nothing pruned: {after:?}");
    assert!(before.iter().all(|b| after.contains(b)));
}

/// A signal while a receiver runs lets it finish, then stops the command
/// before rcbackup starts; a second signal (over a second later) quits at
/// once.
#[test]
fn a_signal_during_a_receiver_stops_before_rcbackup_and_a_second_quits() {
    let (p, _) = sqlite_project(3);
    let sleeping = p.path("signals.jsonl.sleeping");
    for (signals, secs) in [(1, "2"), (2, "60")] {
        let _ = std::fs::remove_file(&sleeping);
        let started = std::time::Instant::now();
        let child = p
            .manage(&["dbbackup"])
            .env("SLEEP_ON", "pre_db_backup")
            .env("SLEEP_SECS", secs)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        wait_until(60, "the receiver to sleep", || sleeping.exists());
        for _ in 0..signals {
            unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
            // More than a second apart: closer ones are one stop.
            std::thread::sleep(std::time::Duration::from_millis(1300));
        }
        let out = child.wait_with_output().unwrap();
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(130), "{signals} signal(s): {err}");
        if signals == 1 {
            assert_mentions(
                &err,
                &[
                    "stopping before the next step",
                    "Interrupted: backup of 'default' not started; nothing was done",
                ],
            );
        } else {
            assert_mentions(&err, &["quitting at once"]);
            assert!(
                started.elapsed() < std::time::Duration::from_secs(30),
                "{err}"
            );
        }
        assert_lacks(&err, &["Traceback"]);
        assert_eq!(names(&p.signals()), ["pre_db_backup"]);
        assert!(p.backups().is_empty());
    }
}

/// Every file below `dir`, relative to it.
fn files_below(dir: &Path) -> Vec<String> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            if e.file_type().unwrap().is_dir() {
                stack.push(e.path());
            } else {
                found.push(e.path().strip_prefix(dir).unwrap().display().to_string());
            }
        }
    }
    found.sort();
    found
}

/// Outside review: two signals at once (a hangup; systemd's SIGTERM then
/// SendSIGHUP) were both passed on, and rcbackup quit at once, leaving its
/// lock and its partial upload. They are one stop: nothing is left. A
/// SIGINT that manage.py was started with ignored (a background job of a
/// script) stays ignored: the backup goes on.
#[test]
fn two_signals_at_once_are_one_stop_and_an_ignored_sigint_stays_ignored() {
    let (p, _) = sqlite_project(3);
    p.ok(&["dbbackup"]);
    p.signals();
    let before = files_below(&p.store);
    let child = p.hold(p.manage(&["dbbackup"]), "uploaded");
    // Back to back, as a hangup delivers them.
    for signal in [libc::SIGTERM, libc::SIGHUP] {
        unsafe { libc::kill(child.id() as libc::pid_t, signal) };
    }
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130), "{}", stderr(&out));
    assert_mentions(&stderr(&out), &["nothing was published"]);
    assert_eq!(files_below(&p.store), before, "{}", stderr(&out));
    assert_eq!(names(&p.signals()), ["pre_db_backup"]);

    let mut cmd = p.manage(&["dbbackup"]);
    // SAFETY: signal(2) between fork and exec, as a script's `cmd &` does.
    unsafe {
        cmd.pre_exec(|| {
            libc::signal(libc::SIGINT, libc::SIG_IGN);
            Ok(())
        });
    }
    let child = p.hold(cmd, "uploaded");
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGINT) };
    std::thread::sleep(std::time::Duration::from_millis(300));
    p.release("uploaded");
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(names(&p.signals()), ["pre_db_backup", "post_db_backup"]);
    assert_eq!(p.backups().len(), 2);
}

/// Outside review: with manage.py's stdin or stderr closed (some
/// supervisors start it so), the config's descriptor took 0 or 2, which
/// the child's stdio replaced: rcbackup read its config from /dev/null
/// (exit 2, blaming the settings), or, with stdout closed, from the pipe it
/// wrote its answer to, and hung.
#[test]
fn closed_stdio_does_not_take_the_configs_place() {
    let (p, _) = sqlite_project(3);
    for closed in ["<&-", "2>&-", "<&- 2>&-"] {
        let out = Command::new("sh")
            .args([
                "-c",
                &format!("exec \"$0\" manage.py dbbackup {closed}"),
                venv_python().to_str().unwrap(),
            ])
            .current_dir(p.dir.path())
            .env("PYTHONPATH", bridge_dir())
            .env("RECORD_FILE", p.path("signals.jsonl"))
            .env("RCLONE_CONFIG_LOC_TYPE", "local")
            .env("TMPDIR", p.path("tmp"))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{closed}: {}", stderr(&out));
        assert_eq!(
            names(&p.signals()),
            ["pre_db_backup", "post_db_backup"],
            "{closed}"
        );
    }
    assert_eq!(p.backups().len(), 3);
}

/// Outside review: every bridged command failed with "signal only works in
/// main thread" when run by call_command from a worker thread (a
/// scheduler, a thread pool), which django-rclone allowed. From a worker it
/// leaves signals alone; from the main thread, the caller's handlers come
/// back afterwards.
#[test]
fn call_command_works_from_a_worker_thread() {
    let (p, _) = sqlite_project(3);
    let script = r#"
import os, signal, threading
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "settings")
import django
django.setup()
from django.core.management import call_command
before = signal.getsignal(signal.SIGTERM)
errors = []
def work():
    try:
        call_command("dbbackup")
    except BaseException as exc:
        errors.append(repr(exc))
t = threading.Thread(target=work)
t.start()
t.join()
call_command("dbbackup")
print("errors:", errors, "handlers back:", signal.getsignal(signal.SIGTERM) is before)
"#;
    let out = p.python(&["-c", script]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}{}", stderr(&out));
    assert_mentions(&text, &["errors: [] handlers back: True"]);
    assert_eq!(
        names(&p.signals()),
        [
            "pre_db_backup",
            "post_db_backup",
            "pre_db_backup",
            "post_db_backup"
        ]
    );
    assert_eq!(p.backups().len(), 2);
}

/// Runs `manage.py ARGS` on a pseudo-terminal, answers its `[y/N]` question
/// with Ctrl-C, and prints what it wrote, then `EXIT <code>`.
// The child gets SIGINT's default disposition back: a test run started in
// the background by a non-interactive shell inherits SIGINT ignored, and
// Ctrl-C would then reach no one. Every wait is bounded (60 s for the
// question, 10 s after the Ctrl-C), so a question that never comes or a
// Ctrl-C that is not obeyed fails the test instead of hanging the suite.
// Both ends share one CPU: the question's write then wakes this script in
// the asker's place, and the Ctrl-C can land before the asker reads its
// answer, the moment that lost `input()` its Ctrl-C on CI.
const CTRL_C_AT_QUESTION: &str = r#"
import os, pty, select, signal, sys, time
os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
pid, fd = pty.fork()
if pid == 0:
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    os.execv(sys.executable, [sys.executable, "manage.py", *sys.argv[1:]])
def read(deadline):
    left = deadline - time.monotonic()
    if left <= 0 or not select.select([fd], [], [], left)[0]:
        os.kill(pid, signal.SIGKILL)
        raise SystemExit("timed out; output so far: %r" % out)
    return os.read(fd, 4096)
out = b""
deadline = time.monotonic() + 60
while b"[y/N]" not in out:
    out += read(deadline)
# What a Ctrl-C on the terminal sends to its foreground process group.
os.killpg(pid, signal.SIGINT)
# Obeyed at once (the asker looks every 0.2 s); 10 s is for a loaded machine.
deadline = min(deadline, time.monotonic() + 10)
try:
    while chunk := read(deadline):
        out += chunk
except OSError:
    pass
_, status = os.waitpid(pid, 0)
sys.stdout.write(out.decode(errors="replace") + f"\nEXIT {os.waitstatus_to_exitcode(status)}\n")
"#;

/// Ctrl-C at the question ends the command as rcbackup's own question does
/// (exit 130, nothing done, no traceback); a setting rcbackup refuses, or a
/// missing MEDIA_ROOT, is reported as the Django setting to change, not as
/// the generated config (which is gone once the run ends).
#[test]
fn interrupted_question_and_errors_name_django_settings() {
    let (p, db) = sqlite_project(3);
    p.ok(&["dbbackup"]);
    p.signals();
    sqlite(&db, "DELETE FROM items;");

    // Twenty times: the Ctrl-C lands at a different moment each time, and
    // the old `input()` lost one in ten to twenty here.
    for attempt in 1..=20 {
        let out = Command::new(venv_python())
            .args(["-c", CTRL_C_AT_QUESTION, "dbrestore"])
            .current_dir(p.dir.path())
            .env("PYTHONPATH", bridge_dir())
            .env("RECORD_FILE", p.path("signals.jsonl"))
            .env("RCLONE_CONFIG_LOC_TYPE", "local")
            .output()
            .unwrap();
        let text = format!(
            "attempt {attempt}:\n{}\n(stderr: {})",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert_mentions(&text, &["Restore cancelled (interrupted)", "EXIT 130"]);
        assert_lacks(&text, &["Traceback", "KeyboardInterrupt"]);
        assert!(p.signals().is_empty());
        assert_eq!(sqlite(&db, "SELECT count(*) FROM items;").trim(), "0");
    }

    // A missing MEDIA_ROOT: named, before any signal.
    p.settings(
        &sqlite_db(&db),
        "MEDIA_ROOT = '/nonexistent/rcbackup-media'",
    );
    let out = p.run(&["mediabackup"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_mentions(
        &stderr(&out),
        &[
            "MEDIA_ROOT /nonexistent/rcbackup-media does not exist",
            "Fix MEDIA_ROOT in your settings",
        ],
    );
    assert!(p.signals().is_empty());

    // rcbackup refusing a generated key: it names its config; the bridge
    // says that config comes from the Django settings, and which.
    p.settings(
        &sqlite_db(&db),
        &format!(
            "DJANGO_RCLONE = {{'REMOTE': 'loc:{}', 'RCLONE_FLAGS': ['--config', '/x']}}",
            p.store.display()
        ),
    );
    let out = p.run(&["dbbackup"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert_mentions(
        &stderr(&out),
        &[
            "rclone_flags",
            "the rcbackup config (/dev/fd/",
            "generated from your Django settings",
            "DJANGO_RCLONE keys are rcbackup's keys in lower case",
        ],
    );
}

/// django-rclone's `DB_BACKUP_DIR = ""` keeps backups at REMOTE's root:
/// the bridge backs up there too (remote = the folder above, db_backup_dir
/// = REMOTE's folder), lists and restores what is there; a remote's root
/// itself cannot be that folder: refused, naming the setting.
#[test]
fn empty_db_backup_dir_keeps_backups_at_the_remote_root() {
    let p = Project::new("{}", "");
    let db = p.path("app.sqlite3");
    sqlite(&db, &seed_sql(4));
    let root = format!(
        "DJANGO_RCLONE = {{'REMOTE': 'loc:{}', 'DB_BACKUP_DIR': ''}}",
        p.store.display()
    );
    p.settings(&sqlite_db(&db), &root);
    p.ok(&["dbbackup"]);
    let path = p.signals()[1]["kwargs"]["path"]
        .as_str()
        .unwrap()
        .to_string();
    // The signals' path is django-rclone's: "<DB_BACKUP_DIR>/<name>".
    let name = path.strip_prefix('/').expect(&path).to_string();
    assert!(p.store.join(&name).is_file(), "{name} directly in REMOTE");
    assert_eq!(p.backups(), [name]);
    sqlite(&db, "DELETE FROM items;");
    p.ok(&["dbrestore", "--noinput", "-i", &path]);
    assert_eq!(sqlite(&db, "SELECT count(*) FROM items;").trim(), "4");
    p.signals();

    // Review 13b, #4: media never goes beside REMOTE (for a bucket, another
    // bucket), and cannot go in REMOTE/media (inside the backups' folder):
    // refused, naming the settings and what to set; the same for
    // django-dbbackup's FileSystemStorage location.
    std::fs::create_dir_all(&p.media).unwrap();
    std::fs::write(p.media.join("a.txt"), "a").unwrap();
    let fs_storage = format!(
        "DJANGO_RCLONE = {{}}\nSTORAGES = {{'dbbackup': {{'BACKEND': 'django.core.files.storage.FileSystemStorage', 'OPTIONS': {{'location': '{}'}}}}}}",
        p.store.display()
    );
    for layout in [&root, &fs_storage] {
        p.settings(&sqlite_db(&db), layout);
        for cmd in [
            &["mediabackup"][..],
            &["mediarestore", "--noinput"],
            &["listbackups", "--media"],
        ] {
            let out = p.run(cmd);
            assert_eq!(out.status.code(), Some(2), "{cmd:?}: {}", stderr(&out));
            assert_mentions(
                &stderr(&out),
                &[
                    &format!("{}/media", p.store.display()),
                    "'DB_BACKUP_DIR': 'db'",
                    "nothing was done",
                ],
            );
        }
        let store = p.store.display().to_string();
        assert!(!std::path::Path::new(&format!("{store}-media")).exists());
        assert!(!p.store.join("media").exists());
        assert!(p.signals().is_empty());
    }

    p.settings(
        &sqlite_db(&db),
        "DJANGO_RCLONE = {'REMOTE': 'loc:', 'DB_BACKUP_DIR': ''}",
    );
    let out = p.run(&["dbbackup"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert_mentions(
        &stderr(&out),
        &["DJANGO_RCLONE['DB_BACKUP_DIR'] = ''", "root of loc:"],
    );
    assert!(p.signals().is_empty());
}
