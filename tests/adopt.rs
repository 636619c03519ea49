//! `rcbackup adopt` (docs/adopt.md) on backups made by the real
//! django-rclone 0.4 and django-dbbackup 5.x, installed from PyPI by
//! scripts/setup.sh, run in a tiny Django project made here: PostgreSQL
//! and SQLite, plain, custom-format and gzip'd; then listed, verified,
//! restored, pruned and checked for damage by rcbackup.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;

/// The venv scripts/setup.sh makes (RCBACKUP_DJANGO_VENV overrides it).
fn python() -> PathBuf {
    let venv = std::env::var("RCBACKUP_DJANGO_VENV")
        .unwrap_or_else(|_| "/opt/rcbackup-django-venv".into());
    let py = Path::new(&venv).join("bin/python");
    assert!(
        py.is_file(),
        "{} is missing: the adopt tests need Django, django-rclone 0.4 and django-dbbackup 5.x in a venv; run scripts/setup.sh",
        py.display()
    );
    py
}

const SETTINGS: &str = r#"
import os
SECRET_KEY = "adopt-test"
INSTALLED_APPS = ["django.contrib.contenttypes", "django.contrib.auth", os.environ["APP"]]
DATABASES = {
    "default": {"ENGINE": "django.db.backends.postgresql", "NAME": os.environ["PGDB"],
                "USER": "rcbackup", "PASSWORD": os.environ["PGPW"], "HOST": "127.0.0.1", "PORT": "5432"},
    "lite": {"ENGINE": "django.db.backends.sqlite3", "NAME": os.environ["LITE"]},
}
DJANGO_RCLONE = {"REMOTE": os.environ["STORE"]}
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "dbbackup": {"BACKEND": "django.core.files.storage.FileSystemStorage",
                 "OPTIONS": {"location": os.path.join(os.environ["STORE"], "db")}},
}
DBBACKUP_HOSTNAME = "web1"
DBBACKUP_CONNECTORS = {"default": {"CONNECTOR": os.environ["PGCONN"]}} if os.environ.get("PGCONN") else {}
# django-dbbackup names its files in Django's TIME_ZONE (Django sets the
# process's TZ to it): +9 h, so that a name read as UTC is in the future.
TIME_ZONE = "Asia/Tokyo"
USE_TZ = True
"#;

const MANAGE: &str = r#"
import os, sys
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "settings")
from django.core.management import execute_from_command_line
execute_from_command_line(sys.argv)
"#;

struct Django {
    dir: PathBuf,
    env: Vec<(String, String)>,
}

impl Django {
    fn new(w: &World, pg: &str, lite: &Path) -> Django {
        let dir = w.path("django");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("settings.py"), SETTINGS).unwrap();
        std::fs::write(dir.join("manage.py"), MANAGE).unwrap();
        Django {
            dir,
            env: vec![
                ("PGDB".into(), pg.into()),
                ("PGPW".into(), "rcbackup-test-pw".into()),
                ("LITE".into(), lite.display().to_string()),
                ("STORE".into(), w.store.display().to_string()),
            ],
        }
    }

    /// `manage.py dbbackup ARGS` of `app` (`django_rclone` or `dbbackup`).
    fn dbbackup(&self, app: &str, pg_connector: Option<&str>, args: &[&str]) {
        let mut cmd = Command::new(python());
        cmd.arg(self.dir.join("manage.py"))
            .arg("dbbackup")
            .args(args);
        cmd.env("APP", app).env_remove("PGCONN");
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        if let Some(c) = pg_connector {
            cmd.env("PGCONN", c);
        }
        let out = cmd.output().unwrap();
        assert!(
            out.status.success(),
            "{app} dbbackup {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

fn files(w: &World, suffix: &str) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(w.store.join("db"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(suffix))
        .collect();
    v.sort();
    v
}

fn json(r: &Run) -> serde_json::Value {
    serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("{e}: {}", r.stdout))
}

fn names_of(v: &serde_json::Value, key: &str) -> Vec<String> {
    v[key]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn real_django_backups_are_adopted_listed_verified_restored_and_pruned() {
    let pg = PgDb::create("adopt");
    psql(&pg.0, "CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t SELECT g, 'row ' || g FROM generate_series(1, 5) g;");
    let mut w = World::new(Remote::Local);
    w.setting("db_cleanup_keep = 3");
    let lite = w.path("lite.sqlite3");
    sqlite(&lite, "CREATE TABLE t (id integer PRIMARY KEY, v text); INSERT INTO t VALUES (1, 'a'), (2, 'b'), (3, 'c');");
    w.postgres("default", &pg.0).sqlite("lite", &lite);
    let dj = Django::new(&w, &pg.0, &lite);

    // django-rclone: custom format for PostgreSQL, `.dump` text for SQLite.
    dj.dbbackup("django_rclone", None, &["-d", "default"]);
    dj.dbbackup("django_rclone", None, &["-d", "lite"]);
    // django-dbbackup: its default connectors (custom format `.psql.bin`,
    // a SQLite file `.sqlite3`), gzip'd, and plain SQL (PgDumpConnector).
    // A second apart: the same second would give the same name.
    let binary = "dbbackup.db.postgresql.PgDumpBinaryConnector";
    let plain = "dbbackup.db.postgresql.PgDumpConnector";
    dj.dbbackup("dbbackup", Some(binary), &["-d", "default"]);
    dj.dbbackup("dbbackup", None, &["-d", "lite"]);
    std::thread::sleep(std::time::Duration::from_millis(1100));
    dj.dbbackup("dbbackup", Some(binary), &["-d", "default", "--compress"]);
    dj.dbbackup("dbbackup", None, &["-d", "lite", "--compress"]);
    std::thread::sleep(std::time::Duration::from_millis(1100));
    dj.dbbackup("dbbackup", Some(plain), &["-d", "default", "--compress"]);
    let made: Vec<String> = std::fs::read_dir(w.store.join("db"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| !n.ends_with(".metadata"))
        .collect();
    assert_eq!(made.len(), 7, "{made:?}");
    assert_eq!(files(&w, ".metadata").len(), 5);
    // A file of no configured database, and a GPG-encrypted one.
    let db = w.store.join("db");
    std::fs::write(db.join("other-2026-01-01-000000.dump"), b"PGDMP...").unwrap();
    let plain_sql = files(&w, ".psql.gz")[0].clone();
    let gpg_name = "default-web1-2026-01-01-000000.psql.gz.gpg";
    let gpg = Command::new("gpg")
        .args([
            "--batch",
            "--yes",
            "--symmetric",
            "--passphrase",
            "x",
            "--homedir",
        ])
        .arg(w.path(""))
        .arg("--output")
        .arg(db.join(gpg_name))
        .arg(db.join(&plain_sql))
        .output()
        .expect("gpg is not installed; run scripts/setup.sh");
    assert!(
        gpg.status.success(),
        "{}",
        String::from_utf8_lossy(&gpg.stderr)
    );

    // django-dbbackup's names read as UTC are 9 h in the future: refused,
    // saying why, nothing adopted of them.
    w.set_env("TZ", "UTC".into());
    let r = w.run(&["adopt", "--dry-run", "-d", "lite"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_mentions(&r.stdout, &["would adopt  lite-", "TZ=<TIME_ZONE>"]);

    // In Django's zone: every backup, nothing read or written by a dry run.
    w.set_env("TZ", "Asia/Tokyo".into());
    let r = w.run(&["adopt", "--dry-run"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stdout.matches("would adopt  ").count(), 7, "{}", r.stdout);
    assert_mentions(
        &r.stdout,
        &[
            "not adopted  other-2026-01-01-000000.dump: its name is not one of",
            &format!("not adopted  {gpg_name}: GPG-encrypted"),
            "gpg --decrypt",
            "dry run: nothing was changed",
        ],
    );
    assert!(!w.store.join("db/.rcbackup/records").exists());

    let r = w.run(&["adopt", "--json"]);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    let v = json(&r);
    assert_eq!(v["version"], 1);
    let adopted = v["adopted"].as_array().unwrap();
    assert_eq!(adopted.len(), 7, "{v:#}");
    let by_name = |n: &str| {
        adopted
            .iter()
            .find(|a| a["name"].as_str().unwrap().ends_with(n))
            .unwrap()
            .clone()
    };
    assert_eq!(by_name(".psql.gz")["layout"], "pg-plain");
    assert_eq!(by_name(".psql.gz")["compression"], "gzip");
    assert_eq!(by_name(".psql.bin")["layout"], "pg-custom");
    assert_eq!(by_name(".psql.bin")["from"], "django-dbbackup");
    for a in adopted {
        let name = a["name"].as_str().unwrap();
        let bytes = std::fs::read(db.join(name)).unwrap();
        assert_eq!(a["sha256"], sha256_hex(&bytes), "{name}");
        assert_eq!(a["size"], bytes.len(), "{name}");
        // Its time from its name, in the right zone: within a minute of
        // when the file was written.
        let created = chrono::DateTime::parse_from_rfc3339(a["created"].as_str().unwrap()).unwrap();
        let written: chrono::DateTime<chrono::Utc> = std::fs::metadata(db.join(name))
            .unwrap()
            .modified()
            .unwrap()
            .into();
        assert!(
            (written - created.to_utc()).num_seconds().abs() < 60,
            "{name}: {created} vs {written}"
        );
        if name.ends_with(".sqlite3") && name.contains("web1") {
            assert_eq!(a["layout"], "sqlite-file");
        } else if name.ends_with(".sqlite3") {
            assert_eq!(a["layout"], "sqlite-dump");
        }
    }
    let refused = names_of(&v, "not_adopted");
    assert!(
        refused.contains(&gpg_name.to_string())
            && refused.contains(&"other-2026-01-01-000000.dump".to_string()),
        "{refused:?}"
    );

    // Idempotent: a second run adopts nothing and says so.
    let r = w.ok(&["adopt"]);
    assert_mentions(
        &r.stdout,
        &["nothing to adopt (7 backup(s) adopted earlier"],
    );

    // Listed, verified; the .metadata, the stranger and the .gpg stay
    // foreign files, never touched.
    let listed = w.names(None);
    assert_eq!(listed.len(), 7, "{listed:?}");
    let r = w.run(&["verify", "--all"]);
    assert_eq!(r.code, 0, "{}", r.stderr);

    // Restores: gzip'd plain SQL through psql, the newest of SQLite (a
    // gzip'd SQLite file from django-dbbackup) without -i.
    psql(&pg.0, "DELETE FROM t WHERE id > 1");
    w.ok(&["dbrestore", "-d", "default", "-i", &plain_sql, "--noinput"]);
    assert_eq!(psql(&pg.0, "SELECT count(*) FROM t").trim(), "5");
    let newest_lite = &w.names(Some("lite"))[0];
    assert!(newest_lite.ends_with(".sqlite3.gz"), "{newest_lite}");
    sqlite(&lite, "DELETE FROM t");
    w.ok(&["dbrestore", "-d", "lite", "--noinput"]);
    assert_eq!(sqlite(&lite, "SELECT count(*) FROM t").trim(), "3");
    let rclone_lite = files(&w, ".sqlite3")
        .into_iter()
        .find(|n| !n.contains("web1"))
        .unwrap();
    sqlite(&lite, "DELETE FROM t");
    w.ok(&["dbrestore", "-d", "lite", "-i", &rclone_lite, "--noinput"]);
    assert_eq!(sqlite(&lite, "SELECT count(*) FROM t").trim(), "3");

    // Retention: adopted backups are their database's series.
    let before = w.names(Some("default"));
    assert_eq!(before.len(), 4);
    let r = w.ok(&["prune", "--json"]);
    let oldest = before.last().unwrap();
    assert!(
        !db.join(oldest).exists(),
        "{oldest} was not pruned: {}",
        r.stdout
    );
    assert_eq!(w.names(Some("default")), before[..3].to_vec());
    assert_eq!(w.names(Some("lite")).len(), 3);

    // A truncated gzip is reported as damaged (exit 4), not adopted; a
    // `.psql` that holds custom format is adopted as what it holds.
    let gz = files(&w, ".psql.bin.gz")[0].clone();
    let gz_bytes = std::fs::read(db.join(&gz)).unwrap();
    let cut = "default-web1-2026-01-02-000000.psql.bin.gz";
    std::fs::write(db.join(cut), &gz_bytes[..gz_bytes.len() - 12]).unwrap();
    let custom = files(&w, ".psql.bin").into_iter().next().unwrap();
    let misnamed = "default-web1-2026-01-03-000000.psql";
    std::fs::copy(db.join(&custom), db.join(misnamed)).unwrap();
    let r = w.run(&["adopt", "--json"]);
    assert_eq!(r.code, 4, "{}\n{}", r.stdout, r.stderr);
    let v = json(&r);
    assert_eq!(names_of(&v, "adopted"), vec![misnamed.to_string()]);
    assert_eq!(v["adopted"][0]["layout"], "pg-custom");
    let damaged = v["not_adopted"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["name"] == cut)
        .unwrap()
        .clone();
    assert_eq!(damaged["damaged"], true);
    assert!(
        damaged["reason"].as_str().unwrap().contains("decompress"),
        "{damaged}"
    );

    // Damage after adoption is caught by verify and restore (exit 4).
    flip_byte(&db.join(&plain_sql));
    let r = w.run(&["verify", "-i", &plain_sql]);
    assert_eq!(r.code, 4, "{}", r.stderr);
    let r = w.run(&["dbrestore", "-d", "default", "-i", &plain_sql, "--noinput"]);
    assert_eq!(r.code, 4, "{}", r.stderr);
    assert_eq!(psql(&pg.0, "SELECT count(*) FROM t").trim(), "5");
}

/// `pg_dump --format=plain` of `db`, with `extra` options.
fn pg_dump_plain(db: &str, extra: &[&str]) -> String {
    let out = Command::new("pg_dump")
        .args(["-h", "127.0.0.1", "-U", DB_USER, "--format=plain"])
        .args(extra)
        .arg(db)
        .env("PGPASSWORD", DB_PASSWORD)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Review 13: plain SQL that would make psql run a shell command (#1) is
/// not adopted, and verify and dbrestore agree on one adopted before (#2);
/// a `--create` dump is refused as such (#14); django-dbbackup names need
/// their zone (#3), a repeated DST hour is the earlier instant (#11), a
/// name rclone cannot give back is reported as such (#7), a huge
/// `.metadata` is not read (#6).
#[test]
fn hostile_and_odd_plain_dumps_are_refused_with_their_reason() {
    let pg = PgDb::create("adopt_hostile");
    psql(&pg.0, "CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t VALUES (1, 'it''s \\! not a command');");
    let mut w = World::new(Remote::Local);
    w.postgres("default", &pg.0);
    let db = w.store.join("db");
    std::fs::create_dir_all(&db).unwrap();
    let genuine = pg_dump_plain(&pg.0, &[]);
    let at = genuine.find("SET row_security = off;\n").unwrap() + 24;
    let pwned = w.path("pwned");
    let inject = |s: &str| format!("{}{s}{}", &genuine[..at], &genuine[at..]);
    let good = "default-vm-2026-01-01-050000.psql";
    let fold = "default-vm-2026-10-25-023000.psql";
    let v02 = "default-vm-2026-01-01-050002.psql";
    let v07 = "default-vm-2026-01-01-050007.psql";
    let v21 = "default-vm-2026-01-01-050021.psql";
    let create = "default-vm-2026-01-01-050100.psql";
    let odd = "default-a\u{201b}b-2026-01-01-050200.psql";
    let p = pwned.display();
    std::fs::write(db.join(good), &genuine).unwrap();
    std::fs::write(db.join(fold), &genuine).unwrap();
    std::fs::write(db.join(v02), inject(&format!("SELECT 1; \\! touch {p}\n"))).unwrap();
    std::fs::write(
        db.join(v07),
        inject(&format!("-- harmless\r\\! touch {p}\n")),
    )
    .unwrap();
    let key = genuine
        .lines()
        .find_map(|l| l.strip_prefix("\\unrestrict "))
        .unwrap_or("k")
        .to_string();
    std::fs::write(
        db.join(v21),
        genuine.replace(
            &format!("\\unrestrict {key}\n"),
            &format!("\\unrestrict {key} \\! touch {p}\n"),
        ),
    )
    .unwrap();
    std::fs::write(
        db.join(create),
        pg_dump_plain(&pg.0, &["--create", "--clean", "--if-exists"]),
    )
    .unwrap();
    std::fs::write(db.join(odd), &genuine).unwrap();
    std::fs::write(db.join(format!("{good}.metadata")), vec![b' '; 100 * 1024]).unwrap();

    // No zone given: django-dbbackup's names are not guessed.
    w.set_env("TZ", String::new());
    let r = w.run(&["adopt", "--dry-run"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stdout.matches("would adopt  ").count(), 0, "{}", r.stdout);
    assert_mentions(
        &r.stdout,
        &[
            &format!("not adopted  {good}: django-dbbackup"),
            "TZ=<TIME_ZONE>",
        ],
    );
    assert_mentions(&r.stderr, &["more than django-dbbackup's metadata ever is"]);

    w.set_env("TZ", "Europe/Paris".into());
    let r = w.run(&["adopt", "--dry-run"]);
    assert_mentions(
        &r.stdout,
        &[&format!(
            "would adopt  {fold}  as `default`, made 2026-10-25T00:30:00Z"
        )],
    );
    let r = w.run(&["adopt", "--json"]);
    assert_eq!(r.code, 4, "{}\n{}", r.stdout, r.stderr);
    let v = json(&r);
    let mut adopted = names_of(&v, "adopted");
    adopted.sort();
    assert_eq!(adopted, vec![good.to_string(), fold.to_string()]);
    assert_eq!(v["interrupted"], false);
    assert_eq!(v["not_reached"], serde_json::json!([]));
    let reason = |n: &str| {
        v["not_adopted"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["name"] == n)
            .unwrap_or_else(|| panic!("{n} not reported: {v:#}"))
            .clone()
    };
    for bad in [v02, v07, v21] {
        let r = reason(bad);
        assert_eq!(r["damaged"], true, "{r}");
        assert!(
            r["reason"].as_str().unwrap().contains("meta-command"),
            "{r}"
        );
    }
    let c = reason(create);
    assert_eq!(c["damaged"], false, "{c}");
    assert!(c["reason"].as_str().unwrap().contains("--create"), "{c}");
    // Reported under the name rclone lists (its quote doubled).
    let o = reason(&odd.replace('\u{201b}', "\u{201b}\u{201b}"));
    assert!(
        o["reason"].as_str().unwrap().contains("not representable"),
        "{o}"
    );
    assert!(!pwned.exists());

    // A backup an older rcbackup adopted: verify says damaged (exit 4), as
    // dbrestore refuses it, and psql never runs the command.
    let records = db.join(".rcbackup/records");
    let rec = std::fs::read_to_string(records.join(format!("{good}.json"))).unwrap();
    let bytes = std::fs::read(db.join(v02)).unwrap();
    let sum = Command::new("sha256sum")
        .arg(db.join(v02))
        .output()
        .unwrap();
    let sum = String::from_utf8(sum.stdout).unwrap()[..64].to_string();
    let mut r: serde_json::Value = serde_json::from_str(rec.trim()).unwrap();
    r["name"] = v02.into();
    r["size"] = bytes.len().into();
    r["sha256"] = sum.into();
    std::fs::write(records.join(format!("{v02}.json")), format!("{r}\n")).unwrap();
    let ver = w.run(&["verify", "-i", v02]);
    assert_eq!(ver.code, 4, "{}\n{}", ver.stdout, ver.stderr);
    assert_mentions(&format!("{}{}", ver.stdout, ver.stderr), &["meta-command"]);
    let res = w.run(&["dbrestore", "-d", "default", "-i", v02, "--noinput"]);
    assert_eq!(res.code, 4, "{}", res.stderr);
    assert!(!pwned.exists());
    // The genuine one restores (psql restricted by rcbackup's own key);
    // a dump without --clean restores into an empty database.
    psql(&pg.0, "DROP TABLE t");
    let res = w.run(&["dbrestore", "-d", "default", "-i", good, "--noinput"]);
    assert_eq!(res.code, 0, "{}", res.stderr);
    assert_eq!(
        psql(&pg.0, "SELECT v FROM t").trim(),
        "it's \\! not a command"
    );
}

/// A sqlite3 `.dump` text of about `mb` MB, as django-rclone names it.
fn big_sqlite_dump(path: &Path, mb: usize) {
    use std::io::Write;
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    f.write_all(b"PRAGMA foreign_keys=OFF;\nBEGIN TRANSACTION;\nCREATE TABLE t(x);\n")
        .unwrap();
    let line = format!("INSERT INTO t VALUES('{}');\n", "x".repeat(1000));
    for _ in 0..mb * 1000 {
        f.write_all(line.as_bytes()).unwrap();
    }
    f.write_all(b"COMMIT;\n").unwrap();
}

/// Review 13 #4: Ctrl-C during a read says `interrupted`, blames no file
/// and lists the files not reached; #5: a file growing while read is
/// "changed while read" (exit 4), not an rclone error.
#[test]
fn an_interrupted_or_changed_read_is_reported_as_such() {
    let mut w = World::new(Remote::Local);
    let lite = w.path("lite.sqlite3");
    sqlite(&lite, "CREATE TABLE t (x);");
    w.sqlite("lite", &lite);
    let db = w.store.join("db");
    std::fs::create_dir_all(&db).unwrap();
    let names = [
        "lite-2026-01-01-040000.sqlite3",
        "lite-2026-01-01-040001.sqlite3",
        "lite-2026-01-01-040002.sqlite3",
    ];
    for n in names {
        big_sqlite_dump(&db.join(n), 400);
    }
    // Interrupted while reading. An interrupt that lands before the first
    // read (still listing: slower with one rclone process per call) ends
    // the run with the error alone, exit 130, and no document; it is sent
    // again later then.
    let interrupted = |args: &[&str]| -> Run {
        for wait_ms in [700, 2000, 4000] {
            let child = w.spawn(args);
            std::thread::sleep(std::time::Duration::from_millis(wait_ms));
            Command::new("kill")
                .args(["-INT", &child.id().to_string()])
                .status()
                .unwrap();
            let r = Run::from(child.wait_with_output().unwrap());
            assert_eq!(r.code, 130, "{}\n{}", r.stdout, r.stderr);
            if !r.stdout.trim().is_empty() {
                return r;
            }
        }
        panic!("adopt was never interrupted while reading");
    };
    let r = interrupted(&["adopt", "--json"]);
    let v = json(&r);
    assert_eq!(v["interrupted"], true, "{v:#}");
    assert_eq!(v["not_adopted"], serde_json::json!([]), "{v:#}");
    let reached = v["adopted"].as_array().unwrap().len();
    assert_eq!(
        v["not_reached"].as_array().unwrap().len() + reached,
        names.len(),
        "{v:#}"
    );
    // Text: the summary says so.
    let r = interrupted(&["adopt"]);
    assert_mentions(&r.stdout, &["interrupted: ", "not reached"]);
    assert!(!r.stdout.contains("nothing to adopt"), "{}", r.stdout);
    assert!(
        !r.stderr.contains("interrupted: interrupted"),
        "{}",
        r.stderr
    );
    assert!(!r.stderr.contains("adopted before"), "{}", r.stderr);

    // Growing under the read: every file grows until the run ends, so
    // whichever is being read (whenever the listing ends: later with one
    // rclone process per call) changes under the read.
    let mut child = w.spawn(&["adopt", "--json"]);
    let victim = v["not_reached"][0].as_str().map(String::from);
    let until = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() && std::time::Instant::now() < until {
        for n in names {
            use std::io::Write;
            let mut f = std::fs::OpenOptions::new()
                .append(true)
                .open(db.join(n))
                .unwrap();
            f.write_all(b"-- junk\n").unwrap();
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let r = Run::from(child.wait_with_output().unwrap());
    assert_eq!(r.code, 4, "{}\n{}\n{victim:?}", r.stdout, r.stderr);
    let v = json(&r);
    let changed = v["not_adopted"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| {
            n["reason"]
                .as_str()
                .unwrap()
                .contains("changed (or was deleted) while it was read")
        })
        .count();
    assert!(changed >= 1, "{v:#}");
    // Not called damaged when only changed (review 13b, #6).
    let only_changed = v["not_adopted"]
        .as_array()
        .unwrap()
        .iter()
        .all(|n| n["reason"].as_str().unwrap().contains("while it was read"));
    if only_changed {
        assert_mentions(&r.stderr, &["changed while they were read"]);
        assert!(!r.stderr.contains("damaged"), "{}", r.stderr);
    }
}

/// Review 13b: genuine pg_dump output with `\'` and trailing backslashes
/// in standard strings adopts and restores (#2); set_config/DO switching
/// client_encoding is not adopted (#1); a psql without `\restrict` is
/// refused before it runs (#1); an unknown TZ is refused, the zone used is
/// shown (#3).
#[test]
fn backslash_strings_adopt_and_encoding_switches_and_old_psql_do_not() {
    let pg = PgDb::create("adopt_awkward");
    psql(
        &pg.0,
        "CREATE TABLE people (id int PRIMARY KEY, name text DEFAULT 'O\\''Brien'); \
         CREATE VIEW v AS SELECT id, name || '\\' AS n FROM people; \
         COMMENT ON TABLE people IS 'from PHP addslashes: O\\''Brien'; \
         INSERT INTO people VALUES (1, 'C:\\'); INSERT INTO people (id) VALUES (2);",
    );
    let mut w = World::new(Remote::Local);
    w.postgres("default", &pg.0);
    let db = w.store.join("db");
    std::fs::create_dir_all(&db).unwrap();
    let plain = pg_dump_plain(&pg.0, &["--clean", "--if-exists"]);
    assert!(plain.contains("'O\\''Brien'"), "{plain}");
    let p1 = "default-vm-2026-01-01-050100.psql";
    let p2 = "default-vm-2026-01-01-050101.psql";
    let p3 = "default-vm-2026-01-01-050102.psql";
    let sc = "default-vm-2026-01-01-051000.psql";
    let dob = "default-vm-2026-01-01-051001.psql";
    std::fs::write(db.join(p1), &plain).unwrap();
    std::fs::write(db.join(p2), pg_dump_plain(&pg.0, &["--inserts"])).unwrap();
    std::fs::write(db.join(p3), pg_dump_plain(&pg.0, &["--column-inserts"])).unwrap();
    let pwned = w.path("pwned");
    let at = plain.find("SET row_security = off;\n").unwrap() + 24;
    let inject = |s: &str| format!("{}{s}{}", &plain[..at], &plain[at..]);
    std::fs::write(
        db.join(sc),
        inject(&format!(
            "SELECT set_config('client_encoding','SJIS',false);\nSELECT '\u{100}' -- ' \\! touch {}\n",
            pwned.display()
        )),
    )
    .unwrap();
    std::fs::write(
        db.join(dob),
        inject("DO $$BEGIN PERFORM set_config('client_encoding','SJIS',false); END$$;\n"),
    )
    .unwrap();

    w.set_env("TZ", "America/Chicgo".into());
    let r = w.run(&["adopt", "--dry-run"]);
    assert_eq!(r.code, 2, "{}\n{}", r.stdout, r.stderr);
    assert_mentions(&r.stderr, &["TZ=\"America/Chicgo\" is not a time zone"]);

    w.set_env("TZ", "UTC".into());
    let r = w.run(&["adopt"]);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    assert_mentions(
        &r.stdout,
        &[
            &format!("adopted  {p1}"),
            &format!("adopted  {p2}"),
            &format!("adopted  {p3}"),
            &format!("not adopted (unsupported)  {sc}: it names `client_encoding`"),
            &format!("not adopted (unsupported)  {dob}: it names `client_encoding`"),
            "django-dbbackup's names read in TZ=UTC",
        ],
    );
    assert!(!r.stdout.contains("damaged") && !r.stderr.contains("damaged"));

    // A psql older than 15.14 is refused before anything runs.
    let bin = w.path("oldpsql");
    std::fs::create_dir_all(&bin).unwrap();
    let ran = w.path("psql-ran");
    let wrapper = bin.join("psql");
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\nif [ \"$1\" = --version ]; then echo 'psql (PostgreSQL) 15.13'; exit 0; fi\ntouch {}\nexec /usr/bin/psql \"$@\"\n",
            ran.display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
    w.path_prefix.insert(0, bin.clone());
    let r = w.run(&["dbrestore", "-d", "default", "-i", p1, "--noinput"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert_mentions(&r.stderr, &["psql 15.13", "\\restrict", "15.14"]);
    assert!(!ran.exists(), "psql ran");
    w.path_prefix.retain(|d| *d != bin);

    // With this machine's psql, each restores the right values.
    for name in [p1, p2, p3] {
        psql(&pg.0, "DROP VIEW IF EXISTS v; DROP TABLE IF EXISTS people");
        let r = w.run(&["dbrestore", "-d", "default", "-i", name, "--noinput"]);
        assert_eq!(r.code, 0, "{name}: {}", r.stderr);
        assert_eq!(
            psql(&pg.0, "SELECT string_agg(n, ',' ORDER BY id) FROM v").trim(),
            "C:\\\\,O\\'Brien\\",
            "{name}"
        );
        assert_eq!(
            psql(&pg.0, "SELECT obj_description('people'::regclass)").trim(),
            "from PHP addslashes: O\\'Brien",
            "{name}"
        );
    }
    assert!(!pwned.exists());
}
