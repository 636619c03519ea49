//! README, "Coming from django-rclone or django-dbbackup": both ways over,
//! step by step as the README gives them, against the real django-rclone
//! 0.4.0 and django-dbbackup 5.4.0 of the venv scripts/setup.sh makes, in a
//! Django project made here with a PostgreSQL and a SQLite database.
//!
//! Path 1: a django-rclone project switches INSTALLED_APPS to the bridge
//! (integrations/django, taken from this worktree through PYTHONPATH),
//! adopts the old backups with the config `manage.py rcbackup_config`
//! prints, and keeps typing `manage.py dbbackup`/`listbackups`/`dbrestore`.
//! Path 2: a django-dbbackup project leaves Django's settings for plain
//! rcbackup: config, `config check`, `TZ=... adopt`, `verify --all`,
//! `dbbackup --clean`, `dbrestore -i <adopted>`.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

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

const MANAGE: &str = r#"
import os, sys
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "settings")
from django.core.management import execute_from_command_line
execute_from_command_line(sys.argv)
"#;

/// A Django project in a scratch folder: `manage.py`, a `settings.py`
/// rewritten at each step, a SQLite file and a PostgreSQL database.
struct Project {
    dir: tempfile::TempDir,
    pg: PgDb,
    lite: PathBuf,
}

impl Project {
    fn new(prefix: &str) -> Project {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("manage.py"), MANAGE).unwrap();
        let pg = PgDb::create(prefix);
        let lite = dir.path().join("lite.sqlite3");
        Project { dir, pg, lite }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// `settings.py`: these apps, both databases (`default` PostgreSQL,
    /// `lite` SQLite), and `extra` lines.
    fn settings(&self, apps: &[&str], extra: &str) {
        let text = format!(
            "SECRET_KEY = 'coming-from'\nUSE_TZ = True\n\
             INSTALLED_APPS = ['django.contrib.contenttypes', 'django.contrib.auth', {apps}]\n\
             DATABASES = {{\n\
             \x20   'default': {{'ENGINE': 'django.db.backends.postgresql', 'NAME': '{pg}', 'USER': '{DB_USER}',\n\
             \x20               'PASSWORD': '{DB_PASSWORD}', 'HOST': '127.0.0.1', 'PORT': '5432'}},\n\
             \x20   'lite': {{'ENGINE': 'django.db.backends.sqlite3', 'NAME': {lite:?}}},\n\
             }}\n{extra}\n",
            apps = apps
                .iter()
                .map(|a| format!("{a:?}"))
                .collect::<Vec<_>>()
                .join(", "),
            pg = self.pg.0,
            lite = self.lite.display().to_string(),
        );
        std::fs::write(self.path("settings.py"), text).unwrap();
    }

    /// `python manage.py ARGS` in the project folder, the bridge on
    /// PYTHONPATH (as `pip install integrations/django` would put it).
    fn manage(&self, args: &[&str]) -> Run {
        Command::new(venv_python())
            .arg("manage.py")
            .args(args)
            .current_dir(self.dir.path())
            .env("PYTHONPATH", bridge_dir())
            .env("RCLONE_CONFIG_LOC_TYPE", "local")
            .env_remove("RCBACKUP_CONFIG")
            .env_remove("TZ")
            .stdin(Stdio::null())
            .output()
            .unwrap()
            .into()
    }

    #[track_caller]
    fn ok(&self, args: &[&str]) -> Run {
        let r = self.manage(args);
        assert_eq!(
            r.code, 0,
            "manage.py {args:?} failed:\n{}\n{}",
            r.stdout, r.stderr
        );
        r
    }

    /// `rcbackup --config CONFIG ARGS` as a user runs it beside the project:
    /// `env` exported (the variables the config's comments name, TZ).
    fn rcbackup(&self, config: &Path, env: &[(&str, &str)], args: &[&str]) -> Run {
        let mut cmd = Command::new(bin());
        cmd.arg("--config")
            .arg(config)
            .args(args)
            .current_dir(self.dir.path())
            .env("RCLONE_CONFIG_LOC_TYPE", "local")
            .env_remove("RCBACKUP_CONFIG")
            .env_remove("RCBACKUP_LOG")
            .env_remove("TZ")
            .stdin(Stdio::null());
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.output().unwrap().into()
    }

    #[track_caller]
    fn rcbackup_ok(&self, config: &Path, env: &[(&str, &str)], args: &[&str]) -> Run {
        let r = self.rcbackup(config, env, args);
        assert_eq!(
            r.code, 0,
            "rcbackup {args:?} failed:\n{}\n{}",
            r.stdout, r.stderr
        );
        r
    }

    /// The rows of `t` in both databases, as `id=v,...`.
    fn pg_rows(&self) -> String {
        psql(
            &self.pg.0,
            "SELECT coalesce(string_agg(id || '=' || v, ',' ORDER BY id), '') FROM t",
        )
        .trim()
        .to_string()
    }

    fn lite_rows(&self) -> String {
        sqlite(
            &self.lite,
            "SELECT coalesce(group_concat(id || '=' || v, ','), '') FROM (SELECT id, v FROM t ORDER BY id);",
        )
        .trim()
        .to_string()
    }

    /// Sets `t` in both databases to rows `1..=n` with values `<tag> <id>`.
    fn set_rows(&self, tag: &str, n: u32) {
        let sql = format!(
            "DELETE FROM t; {}",
            (1..=n)
                .map(|i| format!("INSERT INTO t VALUES ({i}, '{tag} {i}');"))
                .collect::<String>()
        );
        psql(&self.pg.0, &sql);
        sqlite(&self.lite, &sql);
    }

    fn seed(&self, tag: &str, n: u32) {
        psql(&self.pg.0, "CREATE TABLE t (id int PRIMARY KEY, v text);");
        sqlite(
            &self.lite,
            "CREATE TABLE t (id integer PRIMARY KEY, v text);",
        );
        self.set_rows(tag, n);
    }
}

/// `id=<tag> id,...` for rows `1..=n`.
fn rows(tag: &str, n: u32) -> String {
    (1..=n)
        .map(|i| format!("{i}={tag} {i}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// The files in `folder` (not its subfolders), sorted.
fn files_in(folder: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(folder)
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.file_type().unwrap().is_file())
        .map(|e| e.file_name().into_string().unwrap())
        .collect();
    v.sort();
    v
}

/// The one name in `names` starting with `prefix` and ending with `suffix`.
#[track_caller]
fn one(names: &[String], prefix: &str, suffix: &str) -> String {
    let found: Vec<&String> = names
        .iter()
        .filter(|n| n.starts_with(prefix) && n.ends_with(suffix))
        .collect();
    assert_eq!(found.len(), 1, "{prefix}*{suffix} in {names:?}");
    found[0].clone()
}

/// The variables `rcbackup_config`'s comments say to export
/// (`#   export NAME='...'    # what it holds`).
fn exported_variables(config: &str) -> Vec<String> {
    config
        .lines()
        .filter_map(|l| l.trim_start_matches('#').trim().strip_prefix("export "))
        .map(|rest| rest.split('=').next().unwrap().to_string())
        .collect()
}

/// `listbackups --json` entries that are backups: (database, name, status),
/// newest first.
fn listed(json: &str) -> Vec<(String, String, String)> {
    let v: Vec<serde_json::Value> =
        serde_json::from_str(json).unwrap_or_else(|e| panic!("{e}: {json}"));
    v.iter()
        .filter(|e| e["database"].is_string())
        .map(|e| {
            (
                e["database"].as_str().unwrap().to_string(),
                e["name"].as_str().unwrap().to_string(),
                e["status"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn names_of(list: &[(String, String, String)], db: &str) -> Vec<String> {
    list.iter()
        .filter(|(d, _, _)| d == db)
        .map(|(_, n, _)| n.clone())
        .collect()
}

/// The backup name in the bridge's `Backup completed: db/NAME`.
#[track_caller]
fn completed(stdout: &str) -> String {
    stdout
        .lines()
        .find_map(|l| l.strip_prefix("Backup completed: db/"))
        .unwrap_or_else(|| panic!("no `Backup completed` in {stdout}"))
        .trim()
        .to_string()
}

#[test]
fn path_1_django_rclone_project_moves_to_the_bridge_and_keeps_its_old_backups() {
    let p = Project::new("cf1");
    let store = p.path("store");
    std::fs::create_dir_all(&store).unwrap();
    let rclone = format!(
        "DJANGO_RCLONE = {{'REMOTE': 'loc:{}', 'DB_CLEANUP_KEEP': 1}}",
        store.display()
    );
    p.seed("old", 5);

    // (a) django-rclone's own `manage.py dbbackup`, once per alias.
    p.settings(&["django_rclone"], &rclone);
    p.ok(&["dbbackup", "-d", "default"]);
    p.ok(&["dbbackup", "-d", "lite"]);
    let made = files_in(&store.join("db"));
    assert_eq!(made.len(), 2, "{made:?}");
    let old_pg = one(&made, "default-", ".dump");
    let old_lite = one(&made, "lite-", ".sqlite3");

    // (b) Step 2: the bridge instead of django_rclone, DJANGO_RCLONE kept.
    // `check` warns while the old app is still listed, and not after.
    let bridge = format!("{rclone}\nRCBACKUP = {{'BINARY': {:?}}}", bin());
    p.settings(&["django_rclone", "rcbackup_django"], &bridge);
    let r = p.ok(&["check"]);
    assert_mentions(
        &format!("{}{}", r.stdout, r.stderr),
        &["rcbackup_django.W001", "'django_rclone'"],
    );
    p.settings(&["rcbackup_django"], &bridge);
    let r = p.ok(&["check"]);
    assert_mentions(&r.stdout, &["System check identified no issues"]);
    assert_lacks(&r.stderr, &["W001"]);

    // (c) Step 3: `rcbackup_config > cfg`, export what its comments name,
    // `adopt --dry-run`, then `adopt`.
    let r = p.ok(&["rcbackup_config"]);
    let config = p.path("rcbackup.toml");
    std::fs::write(&config, &r.stdout).unwrap();
    assert_eq!(
        exported_variables(&r.stdout),
        ["RCBACKUP_DB_PASSWORD_DEFAULT"],
        "{}",
        r.stdout
    );
    assert_lacks(&r.stdout, &[DB_PASSWORD]);
    let env = [("RCBACKUP_DB_PASSWORD_DEFAULT", DB_PASSWORD)];
    let r = p.rcbackup_ok(&config, &env, &["adopt", "--dry-run"]);
    assert_mentions(
        &r.stdout,
        &[
            &format!("would adopt  {old_pg}  as `default`"),
            &format!("would adopt  {old_lite}  as `lite`"),
            "by django-rclone",
            "dry run: nothing was changed",
        ],
    );
    assert!(!store.join("db/.rcbackup/records").exists());
    let r = p.rcbackup_ok(&config, &env, &["adopt"]);
    assert_mentions(&r.stdout, &[&old_pg, &old_lite]);
    for name in [&old_pg, &old_lite] {
        assert!(
            store
                .join(format!("db/.rcbackup/records/{name}.json"))
                .is_file(),
            "no record for {name}: {}",
            r.stdout
        );
    }

    // Step 4, "restores the newest, whichever tool made it": right after
    // adopt the newest is django-rclone's. With two databases `dbrestore`
    // needs `-d` (as django-rclone's): without it, exit 2.
    let r = p.manage(&["dbrestore", "--noinput"]);
    assert_eq!(r.code, 2, "{}\n{}", r.stdout, r.stderr);
    assert_mentions(&r.stderr, &["Multiple databases are configured"]);
    p.set_rows("lost", 1);
    for (alias, name) in [("default", &old_pg), ("lite", &old_lite)] {
        let r = p.ok(&["dbrestore", "--noinput", "-d", alias]);
        assert_mentions(&r.stdout, &[&format!("Restore completed from: db/{name}")]);
    }
    assert_eq!(p.pg_rows(), rows("old", 5));
    assert_eq!(p.lite_rows(), rows("old", 5));

    // (d) Step 4: `manage.py dbbackup` is now the bridge: new backups of
    // new rows; `listbackups` shows old and new.
    p.set_rows("new", 7);
    let new_pg = completed(&p.ok(&["dbbackup", "-d", "default"]).stdout);
    let new_lite = completed(&p.ok(&["dbbackup", "-d", "lite"]).stdout);
    assert!(new_pg.ends_with(".dump.zst"), "{new_pg}");
    assert!(new_lite.ends_with(".sqlite3.zst"), "{new_lite}");
    let table = p.ok(&["listbackups"]).stdout;
    assert_mentions(&table, &[&old_pg, &old_lite, &new_pg, &new_lite]);
    let list = listed(&p.ok(&["listbackups", "--json"]).stdout);
    assert_eq!(
        names_of(&list, "default"),
        [new_pg.as_str(), old_pg.as_str()]
    );
    assert_eq!(
        names_of(&list, "lite"),
        [new_lite.as_str(), old_lite.as_str()]
    );
    assert!(list.iter().all(|(_, _, s)| s == "ok"), "{list:?}");

    // `dbrestore --noinput -d ALIAS`: the newest, the bridge's.
    p.set_rows("changed", 2);
    for (alias, name) in [("default", &new_pg), ("lite", &new_lite)] {
        let r = p.ok(&["dbrestore", "--noinput", "-d", alias]);
        assert_mentions(&r.stdout, &[&format!("Restore completed from: db/{name}")]);
    }
    assert_eq!(p.pg_rows(), rows("new", 7));
    assert_eq!(p.lite_rows(), rows("new", 7));

    // `-i` an adopted backup, by name: django-rclone's rows back.
    for (alias, name) in [("default", &old_pg), ("lite", &old_lite)] {
        let r = p.ok(&["dbrestore", "--noinput", "-d", alias, "-i", name]);
        assert_mentions(&r.stdout, &[&format!("Restore completed from: db/{name}")]);
    }
    assert_eq!(p.pg_rows(), rows("old", 5));
    assert_eq!(p.lite_rows(), rows("old", 5));

    // `dbbackup --clean` with DB_CLEANUP_KEEP = 1: the adopted backup goes
    // with the older new one; only the backup just made stays.
    for (alias, old, new) in [
        ("default", &old_pg, &new_pg),
        ("lite", &old_lite, &new_lite),
    ] {
        let r = p.ok(&["dbbackup", "-d", alias, "--clean"]);
        let newest = completed(&r.stdout);
        assert_ne!(&newest, new);
        assert_mentions(
            &r.stdout,
            &[
                &format!("Removing old backup: db/{old}"),
                &format!("Removing old backup: db/{new}"),
            ],
        );
        let list = listed(&p.ok(&["listbackups", "--json", "-d", alias]).stdout);
        assert_eq!(names_of(&list, alias), [newest]);
        assert!(!store.join("db").join(old).exists());
        assert!(!store.join("db").join(new).exists());
    }
    // What is left restores: the rows of the last backups (django-rclone's).
    p.set_rows("gone", 1);
    p.ok(&["dbrestore", "--noinput", "-d", "default"]);
    assert_eq!(p.pg_rows(), rows("old", 5));
}

#[test]
fn path_2_django_dbbackup_project_leaves_for_plain_rcbackup() {
    let p = Project::new("cf2");
    let backups = p.path("backups");
    std::fs::create_dir_all(&backups).unwrap();
    // django-dbbackup names its files in Django's TIME_ZONE: one 9 h from
    // UTC, so that a name read in the wrong zone is refused, not misdated.
    let dbbackup = format!(
        "TIME_ZONE = 'Asia/Tokyo'\nDBBACKUP_HOSTNAME = 'web1'\nDBBACKUP_CLEANUP_KEEP = 2\n\
         STORAGES = {{\n\
         \x20   'default': {{'BACKEND': 'django.core.files.storage.FileSystemStorage'}},\n\
         \x20   'dbbackup': {{'BACKEND': 'django.core.files.storage.FileSystemStorage',\n\
         \x20                 'OPTIONS': {{'location': {:?}}}}},\n\
         }}",
        backups.display().to_string()
    );
    p.settings(&["dbbackup"], &dbbackup);

    // The real django-dbbackup, twice (a second apart: names have seconds),
    // each run backing up every database.
    p.seed("first", 3);
    p.ok(&["dbbackup"]);
    std::thread::sleep(std::time::Duration::from_millis(1100));
    p.set_rows("second", 4);
    p.ok(&["dbbackup"]);
    let made = files_in(&backups);
    let dj_pg: Vec<String> = made
        .iter()
        .filter(|n| n.starts_with("default-web1-") && n.ends_with(".psql.bin"))
        .cloned()
        .collect();
    let dj_lite: Vec<String> = made
        .iter()
        .filter(|n| n.starts_with("lite-web1-") && n.ends_with(".sqlite3"))
        .cloned()
        .collect();
    assert_eq!((dj_pg.len(), dj_lite.len()), (2, 2), "{made:?}");
    assert_eq!(made.len(), 8, "4 backups and their .metadata: {made:?}");

    // Step 1: `manage.py rcbackup_config` with the bridge in INSTALLED_APPS
    // (its command exists only there), the variables its comments name.
    p.settings(&["dbbackup", "rcbackup_django"], &dbbackup);
    let r = p.ok(&["rcbackup_config"]);
    assert_eq!(
        exported_variables(&r.stdout),
        ["RCBACKUP_DB_PASSWORD_DEFAULT"],
        "{}",
        r.stdout
    );
    let config = p.path("rcbackup.toml");
    std::fs::write(&config, &r.stdout).unwrap();
    let pw = [("RCBACKUP_DB_PASSWORD_DEFAULT", DB_PASSWORD)];
    let tz = [
        ("RCBACKUP_DB_PASSWORD_DEFAULT", DB_PASSWORD),
        ("TZ", "Asia/Tokyo"),
    ];

    // django-dbbackup wrote its files directly into the storage's folder:
    // the generated config makes remote the folder above and db_backup_dir
    // the storage's folder (docs/django.md), so adopt finds them as they are.
    assert_mentions(
        &r.stdout,
        &[
            &format!("remote = {:?}", p.dir.path().display().to_string()),
            "db_backup_dir = \"backups\"",
        ],
    );

    // Step 2: `config check`, reaching both databases.
    let r = p.rcbackup_ok(&config, &pw, &["config", "check"]);
    assert_mentions(
        &r.stdout,
        &["database default:", "database lite:", "every check passed"],
    );

    // Step 3: `TZ=<TIME_ZONE> rcbackup adopt --dry-run`, then `adopt`;
    // read as UTC instead, the names are 9 h in the future and refused.
    let r = p.rcbackup_ok(&config, &pw, &["adopt", "--dry-run", "--utc"]);
    assert_eq!(r.stdout.matches("would adopt  ").count(), 0, "{}", r.stdout);
    assert_mentions(&r.stdout, &["TZ=<TIME_ZONE>"]);
    let r = p.rcbackup_ok(&config, &tz, &["adopt", "--dry-run"]);
    assert_eq!(r.stdout.matches("would adopt  ").count(), 4, "{}", r.stdout);
    for name in dj_pg.iter().chain(&dj_lite) {
        assert_mentions(&r.stdout, &[&format!("would adopt  {name}  as `")]);
    }
    assert_mentions(
        &r.stdout,
        &["by django-dbbackup", "dry run: nothing was changed"],
    );
    let r = p.rcbackup_ok(&config, &tz, &["adopt"]);
    assert_lacks(&r.stdout, &["not adopted  "]);
    let r = p.rcbackup_ok(&config, &pw, &["listbackups", "--json"]);
    let v: Vec<serde_json::Value> = serde_json::from_str(&r.stdout).unwrap();
    let adopted: Vec<&serde_json::Value> = v.iter().filter(|e| e["status"] == "ok").collect();
    assert_eq!(adopted.len(), 4, "{v:#?}");
    for e in adopted {
        // Dated in Django's zone: within a minute of when it was written.
        let name = e["name"].as_str().unwrap();
        let created = chrono::DateTime::parse_from_rfc3339(e["created"].as_str().unwrap()).unwrap();
        let written: chrono::DateTime<chrono::Utc> = std::fs::metadata(backups.join(name))
            .unwrap()
            .modified()
            .unwrap()
            .into();
        assert!(
            (written - created.to_utc()).num_seconds().abs() < 60,
            "{name}: {created} vs {written}"
        );
    }
    let r = p.rcbackup_ok(&config, &pw, &["verify", "--all"]);
    for name in dj_pg.iter().chain(&dj_lite) {
        assert_mentions(&format!("{}{}", r.stdout, r.stderr), &[name]);
    }

    // Step 4: `rcbackup dbbackup --clean` in cron: one database per run
    // (without -d, `default`), DBBACKUP_CLEANUP_KEEP (2) counting the
    // adopted backups: the oldest django-dbbackup one goes.
    p.set_rows("third", 6);
    let r = p.rcbackup_ok(&config, &pw, &["dbbackup", "--clean", "--json"]);
    let doc: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(doc["backups"][0]["database"], "default", "{doc:#}");
    let new_pg = doc["backups"][0]["name"].as_str().unwrap().to_string();
    p.rcbackup_ok(&config, &pw, &["dbbackup", "-d", "lite", "--clean"]);
    let list = listed(
        &p.rcbackup_ok(&config, &pw, &["listbackups", "--json"])
            .stdout,
    );
    assert_eq!(
        names_of(&list, "default"),
        [new_pg.as_str(), dj_pg[1].as_str()]
    );
    let lite_list = names_of(&list, "lite");
    assert_eq!(lite_list.len(), 2, "{lite_list:?}");
    assert_eq!(lite_list[1], dj_lite[1]);
    assert!(!backups.join(&dj_pg[0]).exists());
    assert!(!backups.join(&dj_lite[0]).exists());
    // Its .metadata stays, a foreign file (docs/adopt.md, Safety).
    assert!(backups.join(format!("{}.metadata", dj_pg[0])).exists());

    // `rcbackup dbrestore --noinput -i <adopted name>`: the second run's
    // rows back, from django-dbbackup's files; the newest is rcbackup's.
    p.set_rows("changed", 1);
    // With several databases, -d is needed even with -i (as for
    // django-rclone's and the bridge's dbrestore): without it, exit 2.
    let r = p.rcbackup(&config, &pw, &["dbrestore", "--noinput", "-i", &dj_pg[1]]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert_mentions(&r.stderr, &["choose the one to restore with -d"]);
    for (alias, name) in [("default", &dj_pg[1]), ("lite", &dj_lite[1])] {
        p.rcbackup_ok(
            &config,
            &pw,
            &["dbrestore", "--noinput", "-d", alias, "-i", name],
        );
    }
    assert_eq!(p.pg_rows(), rows("second", 4));
    assert_eq!(p.lite_rows(), rows("second", 4));
    p.rcbackup_ok(&config, &pw, &["dbrestore", "--noinput", "-d", "default"]);
    assert_eq!(p.pg_rows(), rows("third", 6));
}
