//! Issue 10, backup-all: every database of every tenant (several SQLite
//! tenants, one PostgreSQL, one MariaDB, and the top level's own), at most
//! `--jobs N` dumps at a time, one failure failing only its row, the
//! summary as a table or `--json`, SIGTERM mid-run, `--shard I/N` across
//! processes run as Kubernetes pods would, one compile per policy module.
//! Real servers and tools throughout; scripts/test.sh runs this file in
//! both rclone modes.

mod common;
mod policy_support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::{
    assert_mentions, fingerprint, sqlite, MyDb, PgDb, Remote, Run, World, CONTENT_QUERY, DB_USER,
};
use policy_support::rust_guest;
use serde_json::Value;

// ---- helpers -----------------------------------------------------------

/// A world whose tenants are files in `tenants/` (tenants_dir), with its own
/// compile cache; the top level has no database unless a test adds one.
fn tenants_world() -> World {
    let mut w = World::new(Remote::Local);
    w.setting("tenants_dir = \"tenants\"");
    std::fs::create_dir_all(w.path("tenants")).unwrap();
    let cache = w.path("cache").display().to_string();
    w.set_env("RCBACKUP_CACHE_DIR", cache);
    w
}

/// Writes tenant `name`'s file.
fn tenant(w: &World, name: &str, text: &str) {
    std::fs::write(w.path(&format!("tenants/{name}.toml")), text).unwrap();
}

/// A SQLite tenant `name` with database `main`, seeded; `extra` is added
/// to its file (policies).
fn sqlite_tenant(w: &World, name: &str, extra: &str) -> PathBuf {
    let file = w.path(&format!("{name}.sqlite3"));
    sqlite(&file, &common::seed_sql(30));
    tenant(
        w,
        name,
        &format!(
            "[databases.main]\nengine = \"sqlite\"\nname = \"{}\"\n{extra}",
            file.display()
        ),
    );
    file
}

fn server_db(engine: &str, name: &str, port: u16, password_env: &str) -> String {
    format!(
        "[databases.main]\nengine = \"{engine}\"\nname = \"{name}\"\nhost = \"127.0.0.1\"\nport = {port}\nuser = \"{DB_USER}\"\npassword_env = \"{password_env}\"\n"
    )
}

/// The records of the backups in tenant `name`'s folder (the top level's
/// with `None`).
fn records(w: &World, name: Option<&str>) -> Vec<String> {
    let dir = match name {
        Some(t) => w.store.join(format!("tenants/{t}/db/.rcbackup/records")),
        None => w.store.join("db/.rcbackup/records"),
    };
    let mut out: Vec<String> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    out.sort();
    out
}

/// Files under the store in a folder named `folder` (`partial`, `claims`).
fn in_folder(w: &World, folder: &str) -> Vec<PathBuf> {
    w.stored_files()
        .into_iter()
        .filter(|p| p.parent().and_then(Path::file_name) == Some(folder.as_ref()))
        .collect()
}

/// Parses `backup-all --json` and checks what every summary must hold:
/// `"version": 1` first, the counts agree with the rows.
fn summary(stdout: &str) -> Value {
    let v: Value = serde_json::from_str(stdout)
        .unwrap_or_else(|e| panic!("backup-all --json is not one JSON document ({e}): {stdout}"));
    assert!(
        stdout.trim_start()[1..]
            .trim_start()
            .starts_with("\"version\": 1,"),
        "{stdout}"
    );
    let rows = v["databases"].as_array().unwrap();
    for (status, key) in [
        ("ok", "ok"),
        ("failed", "failed"),
        ("interrupted", "interrupted"),
        ("not-run", "not_run"),
    ] {
        let n = rows.iter().filter(|r| r["status"] == status).count() as u64;
        assert_eq!(v["counts"][key], n, "{key}: {v:#}");
    }
    v
}

/// The row of (tenant, database) in a summary.
fn row<'a>(v: &'a Value, tenant: Option<&str>, database: Option<&str>) -> &'a Value {
    v["databases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["tenant"].as_str() == tenant && r["database"].as_str() == database)
        .unwrap_or_else(|| panic!("no row for {tenant:?}/{database:?}: {v:#}"))
}

/// `sh -c SCRIPT` with the world's environment and `extra`, as a pod runs
/// its command; `$RCBACKUP` is the binary.
fn sh(w: &World, script: &str, extra: &[(&str, &str)]) -> Command {
    let env = w.command(&[]);
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg(script)
        .current_dir(w.dir.path())
        .env("RCBACKUP", common::bin())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env.get_envs() {
        match v {
            Some(v) => cmd.env(k, v),
            None => cmd.env_remove(k),
        };
    }
    for (k, v) in extra {
        cmd.env(k, v);
    }
    cmd
}

// ---- the tests ---------------------------------------------------------

/// Every database of every tenant (SQLite, PostgreSQL, MariaDB) and of the
/// top level is backed up exactly once, each restores, and the summary
/// (`--json`) names each with its backup.
#[test]
fn every_database_of_every_tenant_is_backed_up_once_and_restores() {
    let mut w = tenants_world();
    let top = w.seeded_sqlite("default", 20);
    let a = sqlite_tenant(&w, "shop-a", "");
    sqlite_tenant(&w, "shop-b", "");
    sqlite_tenant(&w, "shop-c", "");
    let pg = PgDb::create("ball");
    common::psql(&pg.0, &common::seed_sql(40));
    tenant(
        &w,
        "pg",
        &server_db("postgresql", &pg.0, 5432, "TENANT_PG_PW"),
    );
    w.set_env("TENANT_PG_PW", common::DB_PASSWORD.into());
    let my = MyDb::create("ball");
    common::mariadb(Some(&my.0), &common::seed_sql(40));
    // Each tenant's secret in a variable of its own, TENANT_<NAME>_...
    w.set_env("TENANT_MARIA_PW", common::DB_PASSWORD.into());
    tenant(
        &w,
        "maria",
        &server_db("mariadb", &my.0, 3306, "TENANT_MARIA_PW"),
    );

    let r = w.run(&["backup-all", "--jobs", "2", "--json"]);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    let v = summary(&r.stdout);
    assert_eq!(v["jobs"], 2);
    assert_eq!(v["interrupted"], false);
    assert_eq!(v["counts"]["ok"], 6, "{v:#}");
    let mut units: Vec<Option<&str>> = vec![None];
    units.extend(["maria", "pg", "shop-a", "shop-b", "shop-c"].map(Some));
    for t in &units {
        let db = if t.is_some() { "main" } else { "default" };
        let r = row(&v, *t, Some(db));
        assert_eq!(r["status"], "ok", "{r:#}");
        assert_eq!(r["exit_code"], 0);
        let name = r["backup"]["name"].as_str().unwrap();
        // One backup each, in the tenant's own folder, the one named.
        assert_eq!(records(&w, *t), vec![format!("{name}.json")], "{t:?}");
        let path = r["backup"]["path"].as_str().unwrap();
        match t {
            Some(t) => assert!(path.contains(&format!("/tenants/{t}/db/")), "{path}"),
            None => assert!(path.ends_with(&format!("/db/{name}")), "{path}"),
        }
    }
    // The log says which tenant and database each line is about.
    assert_mentions(
        &r.stderr,
        &["tenant=\"pg\" database=\"main\"", "done: ok", "6/6 done"],
    );

    // Each restores: the data, changed since, comes back.
    let before = fingerprint(&common::psql(&pg.0, CONTENT_QUERY));
    common::psql(&pg.0, "DELETE FROM items");
    w.ok(&["--tenant", "pg", "dbrestore", "--noinput"]);
    assert_eq!(fingerprint(&common::psql(&pg.0, CONTENT_QUERY)), before);

    let before = fingerprint(&common::mariadb(Some(&my.0), CONTENT_QUERY));
    common::mariadb(Some(&my.0), "DELETE FROM items");
    w.ok(&["--tenant", "maria", "dbrestore", "--noinput"]);
    assert_eq!(
        fingerprint(&common::mariadb(Some(&my.0), CONTENT_QUERY)),
        before
    );

    for (file, tenant) in [(&a, Some("shop-a")), (&top, None)] {
        let before = fingerprint(&sqlite(file, CONTENT_QUERY));
        sqlite(file, "DELETE FROM items;");
        let mut args = vec!["dbrestore", "--noinput"];
        if let Some(t) = tenant {
            args.splice(0..0, ["--tenant", t]);
        }
        w.ok(&args);
        assert_eq!(fingerprint(&sqlite(file, CONTENT_QUERY)), before);
    }
    for t in ["shop-b", "shop-c"] {
        w.ok(&["--tenant", t, "verify"]);
    }
}

/// `--jobs 2` runs two dumps at once and never more: each dump (a wrapper
/// around sqlite3 that takes 0.4 s more) logs when it starts and ends.
#[test]
fn jobs_2_never_runs_more_than_2_dumps_at_once() {
    let mut w = tenants_world();
    for i in 0..6 {
        sqlite_tenant(&w, &format!("t{i}"), "");
    }
    let log = w.path("dumps.log");
    w.wrap_tool(
        "sqlite3",
        &format!(
            r#"case " $* " in *" .dump "*)
  echo "start $$ $(date +%s%N)" >> '{l}'; sleep 0.4
  "$REAL" "$@"; rc=$?
  echo "end $$ $(date +%s%N)" >> '{l}'; exit $rc;;
esac
exec "$REAL" "$@""#,
            l = log.display()
        ),
    );
    let r = w.run(&["backup-all", "--jobs", "2"]);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    let text = std::fs::read_to_string(&log).unwrap();
    let mut events: Vec<(u128, i32)> = text
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            (f[2].parse().unwrap(), if f[0] == "start" { 1 } else { -1 })
        })
        .collect();
    // At the same instant an end counts before a start.
    events.sort();
    let (mut now, mut most) = (0, 0);
    for (_, d) in &events {
        now += d;
        most = most.max(now);
    }
    assert_eq!(events.len(), 12, "{text}");
    assert_eq!(
        most, 2,
        "at most 2 dumps at once, and 2 did run together:\n{text}"
    );
    // The table: one line per tenant, each ok, then the counts.
    for i in 0..6 {
        assert!(
            r.stdout
                .lines()
                .any(|l| l.starts_with(&format!("t{i} ")) && l.contains(" ok ")),
            "{}",
            r.stdout
        );
    }
    assert_mentions(
        &r.stdout,
        &["6 ok, 0 failed, 0 interrupted, 0 not run (of 6)"],
    );
}

/// One tenant failing, in every way it can, fails only its own row: a
/// broken tenant file, an unset password variable, a dump that fails, and a
/// policy that loops forever, traps, or eats memory. The others are backed
/// up, among them a tenant whose policy needs more memory than another
/// tenant's limit of the same module allows; exit 1; the summary and the
/// metrics name each one's fate.
#[test]
fn each_failure_fails_only_its_own_row() {
    let mut w = tenants_world();
    w.set_env("TENANT_NODB_PW", common::DB_PASSWORD.into());
    sqlite_tenant(&w, "good-a", "");
    sqlite_tenant(&w, "good-b", "");
    tenant(&w, "broken", "db_cleanup_kep = 3\n");
    tenant(
        &w,
        "nopass",
        &server_db("postgresql", "whatever", 5432, "TENANT_NOPASS_NEVER_SET_PW"),
    );
    tenant(
        &w,
        "nodb",
        &server_db("postgresql", "rcb_no_such_database", 5432, "TENANT_NODB_PW"),
    );
    let hostile = rust_guest("hostile");
    for (name, config, limits) in [
        (
            "spin",
            "mode = \"spin\"",
            "fuel = 1_000_000_000_000, deadline_ms = 1000",
        ),
        ("trap", "mode = \"trap\"", ""),
        ("bomb", "mode = \"memory\"", "memory_mib = 32"),
        // The same module, the same 40 MiB: each tenant's limit is its own.
        ("cramped", "mode = \"alloc\", mib = 40", "memory_mib = 32"),
        ("roomy", "mode = \"alloc\", mib = 40", "memory_mib = 64"),
    ] {
        sqlite_tenant(
            &w,
            name,
            &format!(
                "[policies.naming]\nmodule = \"{}\"\nconfig = {{ {config} }}\nlimits = {{ {limits} }}\n",
                hostile.display()
            ),
        );
    }
    let metrics = w.path("rcbackup.prom");
    let r = w.run(&[
        "backup-all",
        "--jobs",
        "3",
        "--metrics-file",
        metrics.to_str().unwrap(),
    ]);
    assert_eq!(r.code, 1, "{}\n{}", r.stdout, r.stderr);
    assert_mentions(&r.stderr, &["7 of 10 backup(s) failed"]);
    let line = |t: &str| -> String {
        r.stdout
            .lines()
            .find(|l| l.starts_with(&format!("{t} ")))
            .unwrap_or_else(|| panic!("no line for {t}:\n{}", r.stdout))
            .to_string()
    };
    for t in ["good-a", "good-b", "roomy"] {
        assert!(line(t).contains(" ok "), "{}", r.stdout);
        assert_eq!(records(&w, Some(t)).len(), 1);
    }
    for (t, why) in [
        ("broken", "did you mean `db_cleanup_keep`?"),
        ("nopass", "is not set"),
        ("nodb", "dump failed: pg_dump exited with code 1"),
        (
            "spin",
            "naming policy hostile.wasm: it ran past its deadline of 1000 ms",
        ),
        ("trap", "naming policy hostile.wasm: it trapped"),
        (
            "bomb",
            "naming policy hostile.wasm: it tried to use more than 32 MiB",
        ),
        (
            "cramped",
            "naming policy hostile.wasm: it tried to use more than 32 MiB",
        ),
    ] {
        let l = line(t);
        assert!(l.contains(" failed ") && l.contains(why), "{t}: {l}");
        assert!(records(&w, Some(t)).is_empty(), "{t} has a backup");
    }
    assert_mentions(
        &r.stdout,
        &["3 ok, 7 failed, 0 interrupted, 0 not run (of 10)"],
    );
    // The password variable's name is said, never a value.
    assert!(!r.stdout.contains(common::DB_PASSWORD));

    // One series per job, written once at the end, with the tenant.
    let m = std::fs::read_to_string(&metrics).unwrap();
    let code = |db: &str, t: &str| -> String {
        let key = format!(
            "rcbackup_last_run_exit_code{{command=\"dbbackup\",database=\"{db}\",tenant=\"{t}\"}} "
        );
        m.lines()
            .find_map(|l| l.strip_prefix(&key))
            .unwrap_or_else(|| panic!("no {key} in:\n{m}"))
            .to_string()
    };
    assert_eq!(code("main", "good-a"), "0");
    assert_eq!(code("main", "good-b"), "0");
    assert_eq!(code("", "broken"), "2");
    assert_eq!(code("main", "nopass"), "2");
    assert_eq!(code("main", "nodb"), "1");
    assert_eq!(code("main", "spin"), "1");
    let sizes = m
        .lines()
        .filter(|l| l.starts_with("rcbackup_last_backup_size_bytes{"))
        .count();
    assert_eq!(sizes, 3, "{m}");
    let series = m
        .lines()
        .filter(|l| l.starts_with("rcbackup_last_run_timestamp_seconds{"))
        .count();
    assert_eq!(series, 10, "{m}");
}

/// A policy module that many tenants use (some through copies of the file
/// elsewhere) is compiled once for the run: one "compiled" line at -v, and
/// every other tenant's load shares it; each still runs its own config. One
/// rclone server serves them all.
#[test]
fn a_module_shared_by_many_tenants_is_compiled_once() {
    let w = tenants_world();
    let module = rust_guest("keep_last");
    let copy = w.path("copy-of-keep-last.wasm");
    std::fs::copy(&module, &copy).unwrap();
    for (i, m) in [&module, &module, &copy, &module, &copy].iter().enumerate() {
        sqlite_tenant(
            &w,
            &format!("t{i}"),
            &format!(
                "[policies.retention]\nmodule = \"{}\"\nconfig = {{ keep = {} }}\n",
                m.display(),
                i + 1
            ),
        );
    }
    // Other rclone flags: a server of their own.
    let file = w.path("own-flags.sqlite3");
    sqlite(&file, &common::seed_sql(3));
    tenant(
        &w,
        "own-flags",
        &format!(
            "rclone_flags = [\"--retries\", \"1\"]\n[databases.main]\nengine = \"sqlite\"\nname = \"{}\"\n",
            file.display()
        ),
    );
    let r = w.run(&["-v", "backup-all", "--clean", "--jobs", "2"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let compiled: Vec<&str> = r
        .stderr
        .lines()
        .filter(|l| {
            l.contains("policy module")
                && (l.contains(": compiled in") || l.contains(": loaded from the cache"))
        })
        .collect();
    assert_eq!(compiled.len(), 1, "{compiled:#?}\n{}", r.stderr);
    let shared = r
        .stderr
        .lines()
        .filter(|l| l.contains("already compiled in this run"))
        .count();
    assert_eq!(shared, 4, "{}", r.stderr);
    // And one rclone server served every tenant of the same rclone
    // settings, another the tenant with other flags (none: one per call).
    let servers: Vec<&str> = r
        .stderr
        .lines()
        .filter(|l| l.contains("rclone: one server for this run"))
        .collect();
    if common::rclone_server_mode() {
        assert_eq!(servers.len(), 2, "{}", r.stderr);
        assert_eq!(
            servers
                .iter()
                .filter(|l| l.contains("tenant=\"own-flags\""))
                .count(),
            1,
            "{servers:#?}"
        );
    } else {
        assert!(servers.is_empty(), "{servers:#?}");
    }
    // Each tenant's retention ran with its own config (keep = i + 1).
    for i in 0..5 {
        assert_mentions(
            &r.stderr,
            &[&format!("tenant=\"t{i}\" database=\"main\"}}: keep main-")],
        );
        assert_mentions(&r.stderr, &[&format!("(one of the newest {} (#1))", i + 1)]);
    }
}

/// SIGTERM mid-run: the two running dumps stop, every child ends, nothing
/// partial stays on the remote, the jobs not yet started never start, and
/// the summary (printed all the same) says which; exit 130. (Jobs waiting
/// for a dump slot beside the two dumps hold nothing: they did not run.)
#[test]
fn sigterm_stops_every_job_and_leaves_nothing() {
    let mut w = tenants_world();
    for i in 0..5 {
        sqlite_tenant(&w, &format!("t{i}"), "");
    }
    let marks = w.path("marks");
    std::fs::create_dir_all(&marks).unwrap();
    // Each dump marks its start, then waits (as a dump of a large database
    // would) until it is stopped.
    w.wrap_tool(
        "sqlite3",
        &format!(
            r#"case " $* " in *" .dump "*)
  touch '{m}'/$$
  trap 'kill $s 2>/dev/null; exit 143' TERM
  sleep 60 & s=$!; wait $s; exec "$REAL" "$@";;
esac
exec "$REAL" "$@""#,
            m = marks.display()
        ),
    );
    let child = w.spawn(&["backup-all", "--jobs", "2", "--json"]);
    let count = || std::fs::read_dir(&marks).unwrap().count();
    common::wait_until(60, "two dumps to start", || count() == 2);
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert_eq!(count(), 2, "a third dump started with --jobs 2");
    let procs = common::snapshot(&common::descendants(child.id()));
    assert!(
        procs
            .iter()
            .filter(|(_, argv)| argv.contains("sleep 60"))
            .count()
            == 2,
        "{procs:#?}"
    );
    unsafe {
        libc::kill(child.id() as i32, libc::SIGTERM);
    }
    let r = Run::from(child.wait_with_output().unwrap());
    let left: Vec<&(u32, String)> = procs
        .iter()
        .filter(|(p, argv)| common::alive(*p) && common::cmdline(*p) == *argv)
        .collect();
    common::kill_leftovers(&procs);
    assert!(left.is_empty(), "still running after the run: {left:#?}");
    assert_eq!(r.code, 130, "{}\n{}", r.stdout, r.stderr);
    let v = summary(&r.stdout);
    assert_eq!(v["interrupted"], true);
    assert_eq!(v["counts"]["interrupted"], 2, "{v:#}");
    assert_eq!(v["counts"]["not_run"], 3, "{v:#}");
    assert_eq!(count(), 2, "a job started after the signal");
    for r in v["databases"].as_array().unwrap() {
        if r["status"] == "not-run" {
            assert!(
                r["exit_code"].is_null() && r["duration_ms"].is_null(),
                "{r:#}"
            );
        } else {
            assert_eq!(r["exit_code"], 130, "{r:#}");
        }
    }
    assert_mentions(
        &r.stderr,
        &["rcbackup: interrupted: 0 backed up, 0 failed, 2 stopped, 3 not started"],
    );
    assert!(
        !r.stderr.contains("interrupted: interrupted"),
        "{}",
        r.stderr
    );
    // Nothing left on the remote: no partial upload, claim or backup.
    assert!(
        in_folder(&w, "partial").is_empty(),
        "{:#?}",
        w.stored_files()
    );
    assert!(
        in_folder(&w, "claims").is_empty(),
        "{:#?}",
        w.stored_files()
    );
    for i in 0..5 {
        assert!(records(&w, Some(&format!("t{i}"))).is_empty());
    }
}

/// Three shard processes side by side, each started as a pod of an
/// Indexed Job starts it (`JOB_COMPLETION_INDEX` in its environment,
/// `--shard "$JOB_COMPLETION_INDEX/3"` in its command): every tenant, and
/// the top level, is backed up exactly once, by one of them. An empty
/// index, or one past the count, is refused before anything runs.
#[test]
fn three_shards_back_up_every_tenant_exactly_once() {
    let mut w = tenants_world();
    w.seeded_sqlite("default", 5);
    let names: Vec<String> = (0..9).map(|i| format!("tenant-{i}")).collect();
    for n in &names {
        sqlite_tenant(&w, n, "");
    }
    let script = r#"exec "$RCBACKUP" backup-all --json --shard "$JOB_COMPLETION_INDEX/3""#;
    let pods: Vec<_> = (0..3)
        .map(|i| {
            sh(&w, script, &[("JOB_COMPLETION_INDEX", &i.to_string())])
                .spawn()
                .unwrap()
        })
        .collect();
    let mut seen: BTreeMap<Option<String>, usize> = BTreeMap::new();
    for (i, pod) in pods.into_iter().enumerate() {
        let r = Run::from(pod.wait_with_output().unwrap());
        assert_eq!(r.code, 0, "shard {i}: {}\n{}", r.stdout, r.stderr);
        let v = summary(&r.stdout);
        assert_eq!(v["shard"], format!("{i}/3"));
        for row in v["databases"].as_array().unwrap() {
            assert_eq!(row["status"], "ok");
            *seen
                .entry(row["tenant"].as_str().map(str::to_string))
                .or_default() += 1;
        }
    }
    let mut expected: BTreeMap<Option<String>, usize> =
        names.iter().map(|n| (Some(n.clone()), 1)).collect();
    expected.insert(None, 1);
    assert_eq!(seen, expected);
    for n in &names {
        assert_eq!(records(&w, Some(n)).len(), 1, "{n}");
    }
    assert_eq!(records(&w, None).len(), 1);

    let before = w.stored_files();
    for (index, says) in [
        ("", "was $JOB_COMPLETION_INDEX empty or unset?"),
        ("3", "there is no shard 3 of 3"),
    ] {
        let out = sh(&w, script, &[("JOB_COMPLETION_INDEX", index)])
            .output()
            .unwrap();
        let r = Run::from(out);
        assert_eq!(r.code, 2, "{index:?}: {}", r.stderr);
        assert_mentions(&r.stderr, &["--shard", says]);
        assert!(r.stdout.is_empty());
    }
    assert_eq!(
        w.stored_files(),
        before,
        "a refused run backed something up"
    );
}

/// Usage errors stop the run before anything is backed up: exit 2.
#[test]
fn usage_errors_exit_2_before_anything_runs() {
    let w = tenants_world();
    sqlite_tenant(&w, "acme", "");
    for (args, says) in [
        (&["backup-all", "--jobs", "0"][..], "0 is not in 1..=64"),
        (&["backup-all", "--jobs", "65"], "65 is not in 1..=64"),
        (
            &["backup-all", "--shard", "4/4"],
            "there is no shard 4 of 4",
        ),
        (
            &["backup-all", "--shard", "/4"],
            "was $JOB_COMPLETION_INDEX empty",
        ),
        (
            &["--tenant", "Acme*", "backup-all"],
            "`Acme*` is not a tenant name or pattern",
        ),
        (
            &["--tenant", "nobody*", "backup-all"],
            "`nobody*` matches no tenant",
        ),
    ] {
        let r = w.run(args);
        assert_eq!(r.code, 2, "{args:?}: {}", r.stderr);
        assert_mentions(&r.stderr, &[says]);
        assert!(r.stdout.is_empty(), "{args:?}: {}", r.stdout);
    }
    assert!(w.stored_files().is_empty(), "{:#?}", w.stored_files());
    // A pattern picks its tenants only, and never the top level.
    sqlite_tenant(&w, "acme-2", "");
    sqlite_tenant(&w, "other", "");
    let r = w.run(&[
        "--tenant",
        "acme*",
        "--log-format",
        "json",
        "backup-all",
        "--json",
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let v = summary(&r.stdout);
    // JSON logs carry each job's tenant and database too.
    let spans: BTreeSet<(String, String)> = r
        .stderr
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter_map(|l| {
            let s = l.get("span")?;
            Some((
                s["tenant"].as_str()?.to_string(),
                s["database"].as_str()?.to_string(),
            ))
        })
        .collect();
    assert_eq!(
        spans,
        BTreeSet::from([
            ("acme".to_string(), "main".to_string()),
            ("acme-2".to_string(), "main".to_string())
        ]),
        "{}",
        r.stderr
    );
    let tenants: BTreeSet<&str> = v["databases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["tenant"].as_str().unwrap())
        .collect();
    assert_eq!(tenants, BTreeSet::from(["acme", "acme-2"]));
}

/// Outside review: a FIFO in tenants_dir blocked every backup for ever
/// (and the first SIGTERM); a dangling link, a folder named `x.toml` and a
/// tenant with no databases were left out of the summary, exit 0. Each is
/// now a failed row and every other tenant is backed up.
#[test]
fn odd_tenant_files_and_empty_tenants_are_failed_rows() {
    let w = tenants_world();
    sqlite_tenant(&w, "good", "");
    let fifo = std::ffi::CString::new(w.path("tenants/fifo.toml").to_str().unwrap()).unwrap();
    // SAFETY: mkfifo on a path the test owns.
    assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0);
    std::os::unix::fs::symlink(w.path("missing"), w.path("tenants/dangling.toml")).unwrap();
    std::fs::create_dir(w.path("tenants/folder.toml")).unwrap();
    tenant(&w, "empty", "db_cleanup_keep = 3\n");
    let started = std::time::Instant::now();
    let r = w.run(&["backup-all", "--json"]);
    assert!(started.elapsed() < std::time::Duration::from_secs(60));
    assert_eq!(r.code, 1, "{}", r.stderr);
    let v = summary(&r.stdout);
    assert_eq!(row(&v, Some("good"), Some("main"))["status"], "ok", "{v:#}");
    for (t, says) in [
        ("fifo", "not a regular file"),
        ("dangling", "cannot read"),
        ("folder", "a folder"),
        ("empty", "has no databases"),
    ] {
        let r = row(&v, Some(t), None);
        assert_eq!(r["status"], "failed", "{t}: {v:#}");
        assert!(
            r["error"].as_str().unwrap_or_default().contains(says),
            "{t}: {v:#}"
        );
    }
    assert_eq!(records(&w, Some("good")).len(), 1);
}
