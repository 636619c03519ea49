//! Issue 10, tenants: each isolation property, proven on real tools and
//! servers. Two tenants (usually `a` and `b`) with the same database alias
//! `main`; one runs, and the test shows that nothing of the other's is
//! seen, touched or handed to its processes. backup-all's one-process
//! versions are in tests/backup_all.rs.

mod common;
mod policy_support;

use std::path::PathBuf;

use common::{assert_mentions, sqlite, PgDb, Remote, World, DB_PASSWORD, DB_USER, PASSWORD_VAR};
use policy_support::rust_guest;
use serde_json::Value;

/// A world whose tenants are files in `tenants/` (tenants_dir), with its
/// own compile cache; the top level has no database.
fn tenants_world() -> World {
    let mut w = World::new(Remote::Local);
    w.setting("tenants_dir = \"tenants\"");
    std::fs::create_dir_all(w.path("tenants")).unwrap();
    let cache = w.path("cache").display().to_string();
    w.set_env("RCBACKUP_CACHE_DIR", cache);
    w
}

fn tenant(w: &World, name: &str, text: &str) {
    std::fs::write(w.path(&format!("tenants/{name}.toml")), text).unwrap();
}

/// Tenant `name` with a seeded SQLite database `main`; `extra` is added.
fn sqlite_tenant(w: &World, name: &str, extra: &str) -> PathBuf {
    let file = w.path(&format!("{name}.sqlite3"));
    if !file.exists() {
        sqlite(&file, &common::seed_sql(20));
    }
    // Top-level keys first: after a section they would belong to it.
    let (keys, sections) = match extra.find('[') {
        Some(i) => extra.split_at(i),
        None => (extra, ""),
    };
    tenant(
        w,
        name,
        &format!(
            "{keys}[databases.main]\nengine = \"sqlite\"\nname = \"{}\"\n{sections}",
            file.display()
        ),
    );
    file
}

/// `--tenant T listbackups --json`: the complete backups' names.
fn names(w: &World, t: &str) -> Vec<String> {
    let r = w.ok(&["--tenant", t, "listbackups", "--json"]);
    let v: Vec<Value> = serde_json::from_str(&r.stdout).unwrap();
    v.iter()
        .filter(|b| b["status"] == "ok")
        .map(|b| b["name"].as_str().unwrap().to_string())
        .collect()
}

/// Every stored file, relative to the store.
fn stored(w: &World) -> Vec<String> {
    w.stored_files()
        .iter()
        .map(|p| p.strip_prefix(&w.store).unwrap().display().to_string())
        .collect()
}

/// Tenant `t` lists exactly one backup, damaged for the reason `says`.
fn one_damaged_backup(w: &World, t: &str, says: &str) {
    let r = w.ok(&["--tenant", t, "listbackups", "--json"]);
    let v: Vec<Value> = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v.len(), 1, "{v:#?}");
    assert_eq!(v[0]["status"], "damaged", "{v:#?}");
    assert!(v[0]["problem"].as_str().unwrap().contains(says), "{v:#?}");
}

fn hostile_policy(role: &str, config: &str, limits: &str) -> String {
    format!(
        "[policies.{role}]\nmodule = \"{}\"\nconfig = {{ {config} }}\nlimits = {{ {limits} }}\n",
        rust_guest("hostile").display()
    )
}

/// A tenant's backups live only under its own path: two tenants with the
/// same alias back up; every object of each is below `tenants/<name>/`,
/// each record names its tenant, and each sees only its own backups.
#[test]
fn a_tenants_backups_live_only_under_its_own_path() {
    let w = tenants_world();
    sqlite_tenant(&w, "a", "");
    sqlite_tenant(&w, "b", "");
    w.ok(&["--tenant", "a", "dbbackup"]);
    w.ok(&["--tenant", "b", "dbbackup"]);
    w.ok(&["--tenant", "b", "dbbackup"]);
    let files = stored(&w);
    assert!(!files.is_empty());
    for f in &files {
        assert!(
            f.starts_with("tenants/a/") || f.starts_with("tenants/b/"),
            "{f} is outside every tenant's folder: {files:#?}"
        );
    }
    let a = names(&w, "a");
    let b = names(&w, "b");
    assert_eq!((a.len(), b.len()), (1, 2), "{a:?} {b:?}");
    // The same alias in the same second may give the same name: each in
    // its own folder.
    for n in &a {
        assert!(files.iter().any(|f| f == &format!("tenants/a/db/{n}")));
    }
    for n in &b {
        assert!(files.iter().any(|f| f == &format!("tenants/b/db/{n}")));
    }
    // The records say whose they are; so does every row and document.
    let r = w.ok(&["--tenant", "b", "listbackups", "--json"]);
    let rows: Vec<Value> = serde_json::from_str(&r.stdout).unwrap();
    assert!(rows.iter().all(|r| r["tenant"] == "b"), "{rows:#?}");
    let r = w.ok(&["--tenant", "a", "dbbackup", "--json"]);
    let doc: Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(doc["version"], 1, "{doc:#}");
    assert_eq!(doc["tenant"], "a", "{doc:#}");
    assert!(
        r.stdout.trim_start()[1..]
            .trim_start()
            .starts_with("\"version\": 1,"),
        "{}",
        r.stdout
    );
    for f in std::fs::read_dir(w.store.join("tenants/a/db/.rcbackup/records")).unwrap() {
        let text = std::fs::read_to_string(f.unwrap().path()).unwrap();
        assert!(text.contains("\"tenant\":\"a\""), "{text}");
    }
}

/// A tenant's retention policy only ever sees its own series: A's policy
/// says every backup it is shown and deletes all but the newest; A's cleanup shows
/// it only A's backups (each with tenant a) and B keeps every one of its.
#[test]
fn a_tenants_retention_sees_only_its_own_series() {
    let w = tenants_world();
    sqlite_tenant(
        &w,
        "a",
        &hostile_policy("retention", "mode = \"show-delete-old\"", ""),
    );
    // B's names differ from A's (they could be equal, each in its own
    // folder), so that a name in A's log would be B's backup.
    sqlite_tenant(
        &w,
        "b",
        "db_cleanup_keep = 10\ndb_filename_template = \"b-{database}-{datetime}.{ext}\"\n",
    );
    for _ in 0..3 {
        w.ok(&["--tenant", "b", "dbbackup"]);
        w.ok(&["--tenant", "a", "dbbackup"]);
    }
    let b_before = names(&w, "b");
    let a_before = names(&w, "a");
    assert_eq!((a_before.len(), b_before.len()), (3, 3));
    let r = w.ok(&["--tenant", "a", "prune"]);
    let shown: Vec<&str> = r.stderr.lines().filter(|l| l.contains("shown ")).collect();
    assert_eq!(shown.len(), 3, "{}", r.stderr);
    for (line, name) in shown.iter().zip(&a_before) {
        let _ = name;
        assert!(line.contains("tenant=a"), "{line}");
        assert!(line.contains("database=main"), "{line}");
    }
    for n in &a_before {
        assert!(
            shown.iter().any(|l| l.contains(n.as_str())),
            "{n}: {shown:?}"
        );
    }
    for n in &b_before {
        assert!(!r.stderr.contains(n.as_str()), "A's cleanup saw {n}");
    }
    // A's policy deleted what it was shown (but the newest); B still has
    // every backup.
    assert_eq!(names(&w, "a").len(), 1);
    assert_eq!(names(&w, "b"), b_before);
}

/// A tenant's hooks receive only its own events: A's hook logs every event
/// (with its tenant); B's hook vetoes everything. B's backup is vetoed by
/// B's hook only (A's never runs); A's backup runs, its events all say
/// tenant a, and B's hook never sees it.
#[test]
fn a_tenants_hooks_receive_only_its_own_events() {
    let w = tenants_world();
    let log = rust_guest("event_log");
    sqlite_tenant(
        &w,
        "a",
        &format!("[[hooks]]\nmodule = \"{}\"\n", log.display()),
    );
    sqlite_tenant(
        &w,
        "b",
        &format!(
            "[[hooks]]\nmodule = \"{}\"\nconfig = {{ mode = \"b-vetoes\" }}\n",
            rust_guest("hostile").display()
        ),
    );
    let r = w.run(&["--tenant", "b", "dbbackup"]);
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert_mentions(&r.stderr, &["b-vetoes"]);
    assert!(
        !r.stderr.contains("\"event\""),
        "A's hook ran: {}",
        r.stderr
    );

    let r = w.ok(&["--tenant", "a", "dbbackup"]);
    let events: Vec<Value> = r
        .stderr
        .lines()
        .filter_map(|l| l.find("{\"").map(|i| &l[i..]))
        .filter_map(|j| serde_json::from_str::<Value>(j).ok())
        .filter(|v| v.get("event").is_some())
        .collect();
    let kinds: Vec<&str> = events
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["pre-db-backup", "post-db-backup"], "{}", r.stderr);
    for e in &events {
        assert_eq!(e["tenant"], "a", "{e}");
    }
    assert!(!r.stderr.contains("b-vetoes"), "B's hook saw A's event");
}

/// Reads /proc/<pid>/environ as NAME=VALUE strings.
fn environ(pid: u32) -> Vec<String> {
    std::fs::read(format!("/proc/{pid}/environ"))
        .unwrap_or_default()
        .split(|b| *b == 0)
        .filter(|s| !s.is_empty())
        .map(|s| String::from_utf8_lossy(s).into_owned())
        .collect()
}

/// A tenant's secrets reach only its own dump and restore processes, and
/// only as the engine passes them: A's PostgreSQL dump is held while it
/// streams; neither pg_dump nor rclone has B's password variable (nor C's
/// URL variable), neither has A's variable by its configured name, pg_dump
/// has A's password as PGPASSWORD (how the engine passes it) and rclone
/// has no password at all. Then the same for A's pg_restore.
#[test]
fn a_tenants_secrets_reach_only_its_own_dump_and_restore_processes() {
    let mut w = tenants_world();
    // Only the tenants' own variables: the harness's default one is not in
    // this config.
    w.env.retain(|(k, _)| k != PASSWORD_VAR);
    w.set_env("TENANT_A_PW", DB_PASSWORD.into());
    w.set_env("TENANT_B_PW", "b-secret-never-for-a".into());
    w.set_env(
        "TENANT_C_URL",
        "postgres://x:b-url-secret@127.0.0.1/nothing".into(),
    );
    let db = PgDb::create("tenant_secret");
    common::pg_big_table(&db.0, 40_000);
    let pg = |name: &str, var: &str| {
        format!(
            "[databases.main]\nengine = \"postgresql\"\nname = \"{name}\"\nhost = \"127.0.0.1\"\nuser = \"{DB_USER}\"\npassword_env = \"{var}\"\n"
        )
    };
    tenant(&w, "a", &pg(&db.0, "TENANT_A_PW"));
    tenant(&w, "b", &pg("elsewhere", "TENANT_B_PW"));
    tenant(
        &w,
        "c",
        "[databases.other]\nengine = \"postgresql\"\nurl_env = \"TENANT_C_URL\"\n",
    );
    let mut held = w.spawn_held(&["--tenant", "a", "dbbackup"], "dump-started");
    held.wait_at("dump-started");
    let pid = held.child.id();
    let children = common::descendants(pid);
    let dump = common::live_child(pid, "pg_dump", &[])
        .unwrap_or_else(|| panic!("no pg_dump among {children:?}"));
    let rclones: Vec<u32> = children
        .iter()
        .copied()
        .filter(|p| {
            common::cmdline(*p)
                .split(' ')
                .next()
                .is_some_and(|w| w.ends_with("rclone"))
        })
        .collect();
    assert!(!rclones.is_empty(), "no rclone among {children:?}");
    let dump_env = environ(dump);
    assert!(
        !dump_env.is_empty(),
        "pg_dump's environment could not be read"
    );
    for var in [&dump_env] {
        for e in var.iter() {
            assert!(!e.starts_with("TENANT_B_PW="), "{e} reached pg_dump");
            assert!(!e.starts_with("TENANT_C_URL="), "{e} reached pg_dump");
            assert!(
                !e.starts_with("TENANT_A_PW="),
                "{e} reached pg_dump by its name"
            );
            assert!(!e.contains("b-secret-never-for-a") && !e.contains("b-url-secret"));
        }
    }
    assert!(
        dump_env.contains(&format!("PGPASSWORD={DB_PASSWORD}")),
        "the engine passes A's password as PGPASSWORD"
    );
    for r in rclones {
        let env = environ(r);
        assert!(!env.is_empty(), "rclone's environment could not be read");
        for e in &env {
            assert!(
                !e.contains(DB_PASSWORD)
                    && !e.contains("b-secret-never-for-a")
                    && !e.contains("b-url-secret"),
                "a database secret reached rclone: {}",
                e.split('=').next().unwrap_or_default()
            );
        }
    }
    held.release("dump-started");
    let r = held.finish();
    assert_eq!(r.code, 0, "{}", r.stderr);

    // The restore: pg_restore the same way, held while it streams.
    let mut held = w.spawn_held(
        &["--tenant", "a", "dbrestore", "--noinput"],
        "restore-streaming",
    );
    held.wait_at("restore-streaming");
    let pid = held.child.id();
    let restore = common::live_child(pid, "pg_restore", &[])
        .unwrap_or_else(|| panic!("no pg_restore among {:?}", common::descendants(pid)));
    let env = environ(restore);
    assert!(
        !env.is_empty(),
        "pg_restore's environment could not be read"
    );
    for e in &env {
        assert!(
            !e.starts_with("TENANT_B_PW=")
                && !e.starts_with("TENANT_C_URL=")
                && !e.starts_with("TENANT_A_PW="),
            "{e} reached pg_restore"
        );
    }
    assert!(env.contains(&format!("PGPASSWORD={DB_PASSWORD}")));
    held.release("restore-streaming");
    let r = held.finish();
    assert_eq!(r.code, 0, "{}", r.stderr);
}

/// A tenant's policy limits are its own: the same module allocating 40 MiB
/// fails under A's 32 MiB limit and succeeds under B's 64 MiB.
#[test]
fn a_tenants_policy_limits_are_its_own() {
    let w = tenants_world();
    sqlite_tenant(
        &w,
        "a",
        &hostile_policy("naming", "mode = \"alloc\", mib = 40", "memory_mib = 32"),
    );
    sqlite_tenant(
        &w,
        "b",
        &hostile_policy("naming", "mode = \"alloc\", mib = 40", "memory_mib = 64"),
    );
    let r = w.run(&["--tenant", "a", "dbbackup"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert_mentions(&r.stderr, &["more than 32 MiB"]);
    w.ok(&["--tenant", "b", "dbbackup"]);
    assert_eq!(names(&w, "b").len(), 1);
    assert!(names(&w, "a").is_empty());
}

/// One tenant's failing or hostile policy affects no other tenant: A's
/// naming policy traps, then spins past its deadline; each time A fails
/// and B (no policy of its own, the top level's defaults) backs up.
#[test]
fn one_tenants_hostile_policy_affects_no_other() {
    let w = tenants_world();
    sqlite_tenant(&w, "b", "");
    for (mode, limits, why) in [
        ("trap", "", "it trapped"),
        (
            "spin",
            "fuel = 1_000_000_000_000, deadline_ms = 1000",
            "ran past its deadline",
        ),
    ] {
        sqlite_tenant(
            &w,
            "a",
            &hostile_policy("naming", &format!("mode = \"{mode}\""), limits),
        );
        let r = w.run(&["--tenant", "a", "dbbackup"]);
        assert_eq!(r.code, 1, "{mode}: {}", r.stderr);
        assert_mentions(&r.stderr, &[why]);
        w.ok(&["--tenant", "b", "dbbackup"]);
    }
    assert!(names(&w, "a").is_empty());
    assert_eq!(names(&w, "b").len(), 2);
}

/// `{tenant}` in db_filename_template: inherited from the top level, each
/// tenant's names carry its own name; a top level with databases of its
/// own refuses the template (exit 2, naming the key).
#[test]
fn tenant_in_the_filename_template() {
    let mut w = tenants_world();
    w.setting("db_filename_template = \"{tenant}-{database}-{datetime}.{ext}\"");
    sqlite_tenant(&w, "acme", "");
    sqlite_tenant(&w, "globex", "");
    w.ok(&["--tenant", "acme", "dbbackup"]);
    w.ok(&["--tenant", "globex", "dbbackup"]);
    let a = names(&w, "acme");
    let g = names(&w, "globex");
    assert!(a.len() == 1 && a[0].starts_with("acme-main-"), "{a:?}");
    assert!(g.len() == 1 && g[0].starts_with("globex-main-"), "{g:?}");
    // Retention finds the series by the rendered template.
    w.ok(&["--tenant", "acme", "dbbackup", "--clean"]);
    assert_eq!(names(&w, "acme").len(), 2);

    w.seeded_sqlite("own", 3);
    let r = w.run(&["--tenant", "acme", "listbackups"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert_mentions(&r.stderr, &["db_filename_template", "{tenant}"]);
}

/// `--tenant` with a bad, unknown or broken tenant: exit 2, a clear
/// message, nothing run.
#[test]
fn tenant_option_with_a_bad_unknown_or_broken_tenant_exits_2() {
    let w = tenants_world();
    sqlite_tenant(&w, "good", "");
    tenant(&w, "broken", "db_cleanup_kep = 3\n");
    for (t, says) in [
        ("Good", "did you mean `good`?"),
        ("../etc", "is not a tenant name"),
        ("nosuch", "no tenant `nosuch`"),
        ("broken", "did you mean `db_cleanup_keep`?"),
    ] {
        let r = w.run(&["--tenant", t, "dbbackup"]);
        assert_eq!(r.code, 2, "{t}: {}", r.stderr);
        assert_mentions(&r.stderr, &[says]);
    }
    assert!(stored(&w).is_empty(), "{:?}", stored(&w));
    // config check: the broken tenant is a failed check naming it; the
    // good one passes; --tenant good checks it alone, fully.
    let r = w.run(&["config", "check"]);
    assert_eq!(r.code, 2, "{}\n{}", r.stdout, r.stderr);
    assert!(
        r.stdout
            .lines()
            .any(|l| l.starts_with("error") && l.contains("tenant broken")),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout
            .lines()
            .any(|l| l.starts_with("ok") && l.contains("tenant good")),
        "{}",
        r.stdout
    );
    let r = w.run(&["--tenant", "good", "config", "check"]);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    assert_mentions(&r.stdout, &["tenant good of", "every check passed"]);
    let r = w.run(&["--tenant", "broken", "config", "check"]);
    assert_eq!(r.code, 2, "{}\n{}", r.stdout, r.stderr);
}

/// `listbackups --all-tenants`: every tenant's backups with its tenant; a
/// broken tenant and one whose remote cannot be listed are each a line
/// saying so, the others still listed, exit 1.
#[test]
fn listbackups_all_tenants() {
    let w = tenants_world();
    sqlite_tenant(&w, "a", "");
    sqlite_tenant(&w, "b", "");
    w.ok(&["--tenant", "a", "dbbackup"]);
    w.ok(&["--tenant", "b", "dbbackup"]);
    w.ok(&["--tenant", "b", "dbbackup"]);
    let r = w.ok(&["listbackups", "--all-tenants", "--json"]);
    let rows: Vec<Value> = serde_json::from_str(&r.stdout).unwrap();
    let count = |t: &str| {
        rows.iter()
            .filter(|r| r["status"] == "ok" && r["tenant"] == t)
            .count()
    };
    assert_eq!((count("a"), count("b")), (1, 2), "{rows:#?}");
    let r = w.ok(&["listbackups", "--all-tenants"]);
    assert!(
        r.stdout.lines().next().unwrap().starts_with("TENANT"),
        "{}",
        r.stdout
    );
    assert_eq!(r.stdout.lines().filter(|l| l.starts_with("b ")).count(), 2);

    tenant(&w, "broken", "db_cleanup_kep = 3\n");
    tenant(
        &w,
        "gone",
        &format!(
            "remote = \"nosuchremote:x\"\n[databases.main]\nengine = \"sqlite\"\nname = \"{}\"\n",
            w.path("a.sqlite3").display()
        ),
    );
    let r = w.run(&["listbackups", "--all-tenants"]);
    assert_eq!(r.code, 1, "{}\n{}", r.stdout, r.stderr);
    assert_mentions(
        &r.stderr,
        &["tenant broken", "tenant gone", "2 of the config's tenants"],
    );
    assert_eq!(r.stdout.lines().filter(|l| l.starts_with("a ")).count(), 1);
    assert_eq!(r.stdout.lines().filter(|l| l.starts_with("b ")).count(), 2);
    let r = w.run(&["listbackups", "--all-tenants", "--json"]);
    assert_eq!(r.code, 1);
    let rows: Vec<Value> = serde_json::from_str(&r.stdout).unwrap();
    let errors: Vec<&str> = rows
        .iter()
        .filter(|r| r["status"] == "error")
        .map(|r| r["tenant"].as_str().unwrap())
        .collect();
    assert_eq!(errors, ["broken", "gone"], "{rows:#?}");
}

/// Every log line of a tenant's run carries the tenant: text (`tenant=a`)
/// and JSON (the span); the metrics series has its `tenant` label.
#[test]
fn a_tenants_log_lines_and_metrics_name_it() {
    let w = tenants_world();
    sqlite_tenant(&w, "a", "");
    let metrics = w.path("m.prom");
    let r = w.ok(&[
        "--tenant",
        "a",
        "-v",
        "dbbackup",
        "--metrics-file",
        metrics.to_str().unwrap(),
    ]);
    let lines: Vec<&str> = r.stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(!lines.is_empty());
    for l in &lines {
        assert!(l.contains("tenant=a") || l.contains("tenant{"), "{l}");
    }
    let m = std::fs::read_to_string(&metrics).unwrap();
    assert!(
        m.contains("command=\"dbbackup\",database=\"main\",tenant=\"a\""),
        "{m}"
    );
    let r = w.ok(&["--tenant", "a", "--log-format", "json", "dbbackup"]);
    for l in r.stderr.lines().filter(|l| !l.trim().is_empty()) {
        let v: Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"));
        assert_eq!(v["span"]["tenant"], "a", "{l}");
    }
}

/// drill: two tenants with the same alias on one PostgreSQL server; B
/// keeps its drill's scratch database, A's `drill --cleanup` (which drops
/// every kept scratch database of its own) leaves B's alone; B's cleanup
/// drops it.
#[test]
fn a_tenants_drill_cleanup_never_drops_another_tenants_scratch() {
    let mut w = tenants_world();
    let live_a = PgDb::create("tenant_drill_a");
    let live_b = PgDb::create("tenant_drill_b");
    for (t, db) in [("a", &live_a), ("b", &live_b)] {
        let var = format!("TENANT_{}_PW", t.to_uppercase());
        w.set_env(&var, common::DB_PASSWORD.into());
        common::psql(
            &db.0,
            "CREATE TABLE t (x int); INSERT INTO t VALUES (1), (2);",
        );
        tenant(
            &w,
            t,
            &format!(
                "[databases.main]\nengine = \"postgresql\"\nname = \"{}\"\nhost = \"127.0.0.1\"\nuser = \"{DB_USER}\"\npassword_env = \"{var}\"\n",
                db.0
            ),
        );
        w.ok(&["--tenant", t, "dbbackup"]);
    }
    let scratch_of = |t: &str| -> String {
        let r = w.ok(&["--tenant", t, "drill", "--keep", "--json"]);
        let v: Value = serde_json::from_str(&r.stdout).unwrap();
        assert_eq!(v["tenant"], t, "{v}");
        v["scratch"].as_str().unwrap().to_string()
    };
    let exists = |name: &str| {
        common::psql(
            "postgres",
            &format!("SELECT count(*) FROM pg_database WHERE datname = '{name}'"),
        )
        .trim()
            == "1"
    };
    let b = scratch_of("b");
    let a = scratch_of("a");
    assert!(exists(&b) && exists(&a), "{a} {b}");
    assert_ne!(a, b);
    let r = w.ok(&["--tenant", "a", "drill", "--cleanup"]);
    assert!(!exists(&a), "A's cleanup left its own {a}: {}", r.stdout);
    assert!(exists(&b), "A's cleanup dropped B's {b}: {}", r.stdout);
    assert!(
        !r.stdout.contains(&b),
        "A's cleanup saw B's {b}: {}",
        r.stdout
    );
    w.ok(&["--tenant", "b", "drill", "--cleanup"]);
    assert!(!exists(&b));
}

/// Found by a hostile check: tenant `b`'s file names tenant `a`'s password
/// variable, which would hand a's secret to b's dump tool, pointed at
/// whatever server b's file names. b does not run; a and other tenants
/// are untouched. `x` naming a variable of `x-y`'s namespace
/// (`TENANT_X_Y_...`, inside its own prefix) does not run either, and
/// breaks no one else.
#[test]
fn a_tenant_cannot_borrow_another_tenants_password_variable() {
    let mut w = tenants_world();
    w.set_env("TENANT_A_PW", "a-secret-value".into());
    w.set_env("TENANT_X_Y_PW", "xy-secret-value".into());
    let pg = |var: &str| {
        format!(
            "[databases.main]\nengine = \"postgresql\"\nname = \"x\"\nhost = \"127.0.0.1\"\nuser = \"{DB_USER}\"\npassword_env = \"{var}\"\n"
        )
    };
    tenant(&w, "a", &pg("TENANT_A_PW"));
    tenant(&w, "b", &pg("TENANT_A_PW"));
    tenant(&w, "x", &pg("TENANT_X_Y_PW"));
    tenant(&w, "x-y", &pg("TENANT_X_Y_PW"));
    sqlite_tenant(&w, "c", "");
    let r = w.run(&["--tenant", "b", "dbbackup"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert_mentions(&r.stderr, &["TENANT_A_PW", "named TENANT_B_..."]);
    assert!(!r.stderr.contains("a-secret-value"), "{}", r.stderr);
    // a itself is not broken by b's file (its database does not exist:
    // a connection error, not a config error).
    let r = w.run(&["--tenant", "a", "dbbackup"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    // x may not name what is x-y's; x-y keeps it (a connection error).
    let r = w.run(&["--tenant", "x", "dbbackup"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert_mentions(&r.stderr, &["TENANT_X_Y_PW", "another tenant's namespace"]);
    assert!(!r.stderr.contains("xy-secret-value"), "{}", r.stderr);
    assert_eq!(w.run(&["--tenant", "x-y", "dbbackup"]).code, 1);
    w.ok(&["--tenant", "c", "dbbackup"]);
}

/// Outside review: a tenant chooses its databases' host and user, and its
/// tools logged in with what the machine holds for the operator (PGPASSWORD
/// or MYSQL_PWD in rcbackup's environment, a passfile, `~/.my.cnf`), so a
/// tenant file could dump a database it has no password for. The top level
/// still may (operators rely on it); a tenant may not, nor may its URL
/// name a file of credentials.
#[test]
fn a_tenants_connection_gets_none_of_the_operators_credentials() {
    let mut w = tenants_world();
    w.env.retain(|(k, _)| k != PASSWORD_VAR);
    let pg = PgDb::create("ambient");
    let my = common::MyDb::create("ambient");
    common::psql(&pg.0, "CREATE TABLE t (x int); INSERT INTO t VALUES (1);");
    common::mariadb(
        Some(&my.0),
        "CREATE TABLE t (x int); INSERT INTO t VALUES (1);",
    );
    // The same two databases, no password variable, at the top level and
    // in tenant `t`.
    let sections = format!(
        "[databases.pg]\nengine = \"postgresql\"\nname = \"{}\"\nhost = \"127.0.0.1\"\nuser = \"{DB_USER}\"\n\
         [databases.my]\nengine = \"mariadb\"\nname = \"{}\"\nhost = \"127.0.0.1\"\nport = 3306\nuser = \"{DB_USER}\"\n",
        pg.0, my.0
    );
    w.databases.push_str(&sections);
    tenant(&w, "t", &sections);

    let home = w.path("home");
    std::fs::create_dir_all(&home).unwrap();
    let pgpass = home.join("pgpass");
    std::fs::write(&pgpass, format!("*:*:*:{DB_USER}:{DB_PASSWORD}\n")).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&pgpass, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::write(
        home.join(".my.cnf"),
        format!("[client]\npassword={DB_PASSWORD}\n"),
    )
    .unwrap();
    std::fs::set_permissions(home.join(".my.cnf"), std::fs::Permissions::from_mode(0o600)).unwrap();
    let ambient: [(&str, Vec<(&str, String)>); 2] = [
        (
            "in the environment",
            vec![
                ("PGPASSWORD", DB_PASSWORD.to_string()),
                ("MYSQL_PWD", DB_PASSWORD.to_string()),
            ],
        ),
        (
            "in files",
            vec![
                ("PGPASSFILE", pgpass.display().to_string()),
                ("HOME", home.display().to_string()),
            ],
        ),
    ];
    for (how, vars) in ambient {
        w.env.retain(|(k, _)| {
            !["PGPASSWORD", "MYSQL_PWD", "PGPASSFILE", "HOME"].contains(&k.as_str())
        });
        for (k, v) in vars {
            w.set_env(k, v);
        }
        for db in ["pg", "my"] {
            // The operator's own database logs in with them ...
            w.ok(&["dbbackup", "-d", db]);
            // ... a tenant's does not.
            let r = w.run(&["--tenant", "t", "dbbackup", "-d", db]);
            assert_eq!(r.code, 1, "{db}, password {how}: {}", r.stderr);
            assert!(!r.stderr.contains(DB_PASSWORD), "{}", r.stderr);
        }
    }
    assert!(names(&w, "t").is_empty());

    for (param, url) in [
        (
            "passfile",
            format!(
                "postgres://{DB_USER}@127.0.0.1/{}?passfile={}",
                pg.0,
                pgpass.display()
            ),
        ),
        (
            "service",
            format!("postgres://{DB_USER}@127.0.0.1/{}?service=ops", pg.0),
        ),
        (
            "sslkey",
            format!(
                "postgres://{DB_USER}@127.0.0.1/{}?sslkey=/root/.postgresql/postgresql.key",
                pg.0
            ),
        ),
        (
            "ssl-key",
            format!(
                "mariadb://{DB_USER}@127.0.0.1:3306/{}?ssl-key=/root/client.key",
                my.0
            ),
        ),
    ] {
        tenant(&w, "u", &format!("[databases.main]\nurl = \"{url}\"\n"));
        let r = w.run(&["--tenant", "u", "dbbackup"]);
        assert_eq!(r.code, 2, "{param}: {}", r.stderr);
        assert_mentions(&r.stderr, &[param, "file of credentials", "tenants/u.toml"]);
    }

    // Outside review (round 3): on the local socket the servers log the
    // operator's OS user in without a password (rcbackup runs as root
    // here, and MariaDB's root@localhost uses unix_socket): a tenant
    // database without a host dumped the `mysql` system database.
    for (what, section) in [
        (
            "no host",
            "[databases.main]\nengine = \"mariadb\"\nname = \"mysql\"\nuser = \"root\"\n".to_string(),
        ),
        (
            "a socket folder",
            "[databases.main]\nengine = \"postgresql\"\nname = \"postgres\"\nhost = \"/var/run/postgresql\"\nuser = \"postgres\"\n".to_string(),
        ),
        (
            "a URL without host",
            "[databases.main]\nurl = \"mysql://root@/mysql\"\n".to_string(),
        ),
    ] {
        tenant(&w, "u", &section);
        let r = w.run(&["--tenant", "u", "dbbackup"]);
        assert_eq!(r.code, 2, "{what}: {}", r.stderr);
        assert_mentions(&r.stderr, &["over TCP only", "tenants/u.toml"]);
    }
    // `localhost` is TCP for a tenant's MariaDB tools, not the socket.
    tenant(
        &w,
        "u",
        "[databases.main]\nengine = \"mariadb\"\nname = \"mysql\"\nhost = \"localhost\"\nuser = \"root\"\n",
    );
    let r = w.run(&["--tenant", "u", "dbbackup"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(names(&w, "u").is_empty());

    // Outside review (round 3): a tenant file naming the program rclone is
    // run as (or flags that run one) ran it with the operator's rights.
    for (key, line) in [
        ("rclone_binary", "rclone_binary = \"/bin/sh\"\n"),
        (
            "rclone_config",
            "rclone_config = \"/root/.config/rclone/rclone.conf\"\n",
        ),
        (
            "rclone_flags",
            "rclone_flags = [\"--password-command\", \"id\"]\n",
        ),
    ] {
        tenant(&w, "u", &format!("{line}{sections}"));
        let r = w.run(&["--tenant", "u", "dbbackup", "-d", "pg"]);
        assert_eq!(r.code, 2, "{key}: {}", r.stderr);
        assert_mentions(&r.stderr, &[key, "tenants/u.toml"]);
    }
}

/// Outside review: a tenant whose file does not parse, is too large, or is
/// defined twice kept its password variables in every other tenant's
/// children; a tenant naming PATH (or RCLONE_CONFIG, HOME) as its password
/// variable had it taken from every child, breaking every tenant; and one
/// naming the operator's AWS_SECRET_ACCESS_KEY had it sent to its server
/// as a password (and taken from rclone). Outside a tenant's namespace a
/// variable is refused and never taken from the children.
#[test]
fn broken_tenants_secrets_and_tool_variables() {
    let mut w = tenants_world();
    let envlog = w.path("sqlite3-env");
    w.set_env("ENVLOG", envlog.display().to_string());
    w.wrap_tool("sqlite3", "env >> \"$ENVLOG\"\nexec \"$REAL\" \"$@\"");
    for var in [
        "TENANT_BROKEN_PW",
        "TENANT_BIG_PW",
        "TENANT_TWICE_A",
        "TENANT_TWICE_B",
    ] {
        w.set_env(var, format!("secret-of-{var}"));
    }
    let pg = |var: &str| {
        format!(
            "[databases.main]\nengine = \"postgresql\"\nname = \"x\"\npassword_env = \"{var}\"\n"
        )
    };
    tenant(
        &w,
        "broken",
        &format!("{}\nthis is not toml [", pg("TENANT_BROKEN_PW")),
    );
    tenant(
        &w,
        "big",
        &format!("{}# {}\n", pg("TENANT_BIG_PW"), "x".repeat(2 << 20)),
    );
    tenant(&w, "twice", &pg("TENANT_TWICE_A"));
    w.setting(
        "[tenants.twice.databases.main]\nengine = \"postgresql\"\nname = \"x\"\npassword_env = \"TENANT_TWICE_B\"\n",
    );
    tenant(&w, "tool", &pg("PATH"));
    tenant(&w, "cloud", &pg("AWS_SECRET_ACCESS_KEY"));
    w.set_env("AWS_SECRET_ACCESS_KEY", "the-operators-key".into());
    sqlite_tenant(&w, "c", "");
    for t in ["broken", "big", "twice"] {
        assert_eq!(w.run(&["--tenant", t, "dbbackup"]).code, 2, "{t}");
    }
    for (t, var) in [("tool", "PATH"), ("cloud", "AWS_SECRET_ACCESS_KEY")] {
        let r = w.run(&["--tenant", t, "dbbackup"]);
        assert_eq!(r.code, 2, "{}", r.stderr);
        assert_mentions(
            &r.stderr,
            &[var, "must be its own", &format!("tenants/{t}.toml")],
        );
        assert!(!r.stderr.contains("the-operators-key"), "{}", r.stderr);
    }

    // Tenant c still finds its tools (PATH is not taken from children, nor
    // the operator's key), and its sqlite3 sees none of the broken
    // tenants' secrets.
    w.ok(&["--tenant", "c", "dbbackup"]);
    let env = std::fs::read_to_string(&envlog).unwrap();
    assert!(env.lines().any(|l| l.starts_with("PATH=")), "{env}");
    assert!(
        env.lines()
            .any(|l| l == "AWS_SECRET_ACCESS_KEY=the-operators-key"),
        "{env}"
    );
    for var in [
        "TENANT_BROKEN_PW",
        "TENANT_BIG_PW",
        "TENANT_TWICE_A",
        "TENANT_TWICE_B",
    ] {
        assert!(
            !env.contains(&format!("secret-of-{var}")),
            "{var} reached sqlite3"
        );
    }
}

/// Outside review: tenant b's remote spelled `:local:` + tenant a's folder
/// passed the overlap check, and `--tenant b dbrestore` restored a's data.
/// The spelling is now known; a spelling no check can know (a symlink, an
/// rclone alias) still cannot mix them: a backup whose record names
/// another tenant is damaged there, never restored, retained or deleted.
#[test]
fn a_backup_of_another_tenant_is_never_a_tenants_own() {
    let mut w = tenants_world();
    w.setting("db_cleanup_keep = 1");
    // a's own remote, a local folder as rcbackup sees one.
    let a_folder = w.path("store-a");
    sqlite_tenant(&w, "a", &format!("remote = \"{}\"\n", a_folder.display()));
    let b_file = sqlite_tenant(&w, "b", "");
    sqlite(&b_file, "DELETE FROM items;");
    w.ok(&["--tenant", "a", "dbbackup"]);

    // The spelling the check knows: refused.
    let b_text = std::fs::read_to_string(w.path("tenants/b.toml")).unwrap();
    tenant(
        &w,
        "b",
        &format!(
            "remote = \":local:{}/../store-a\"\n{b_text}",
            a_folder.display()
        ),
    );
    let r = w.run(&["--tenant", "b", "listbackups"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert_mentions(&r.stderr, &["overlaps"]);

    // One it cannot know: a symlink to a's folder.
    let link = w.path("b-link");
    std::os::unix::fs::symlink(&a_folder, &link).unwrap();
    tenant(
        &w,
        "b",
        &format!("remote = \"{}\"\n{b_text}", link.display()),
    );
    one_damaged_backup(&w, "b", "made for tenant `a`, not tenant `b`");
    let r = w.run(&["--tenant", "b", "dbrestore", "--noinput"]);
    assert_ne!(r.code, 0, "{}", r.stderr);
    assert_eq!(sqlite(&b_file, "SELECT count(*) FROM items;").trim(), "0");
    // b's own backup with keep = 1 deletes none of a's, nor does a's.
    w.ok(&["--tenant", "b", "dbbackup", "--clean"]);
    w.ok(&["--tenant", "a", "dbbackup", "--clean"]);
    assert_eq!(names(&w, "a").len(), 1);
    assert_eq!(names(&w, "b").len(), 1);
    let records = std::fs::read_dir(a_folder.join("db/.rcbackup/records"))
        .unwrap()
        .count();
    assert_eq!(records, 2, "one backup of each tenant is left");
}

/// Outside review: `listbackups --all-tenants -d TYPO` exited 0 with an
/// empty table; a tenant file name holding a newline was printed raw
/// (a forged row); -q dropped the tenant and database from a job's ERROR
/// line; the closing line of a tenant's run did not name the tenant.
#[test]
fn operator_output_names_tenants_safely() {
    let w = tenants_world();
    sqlite_tenant(&w, "a", "");
    tenant(
        &w,
        "bad",
        "[databases.main]\nengine = \"sqlite\"\nname = \"/nonexistent/x.sqlite3\"\n",
    );
    std::fs::write(w.path("tenants/x\nforged  ok.toml"), "").unwrap();
    w.ok(&["--tenant", "a", "dbbackup"]);

    let r = w.run(&["listbackups", "--all-tenants", "-d", "mian"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert_mentions(&r.stderr, &["mian"]);

    let r = w.run(&["listbackups", "--all-tenants"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    for out in [&r.stdout, &r.stderr] {
        assert!(!out.contains("x\nforged"), "{out}");
    }
    let r = w.run(&["listbackups", "--all-tenants", "--json"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert_mentions(&r.stderr, &["see their `error` entries"]);
    let r = w.run(&["-q", "backup-all"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(!r.stdout.contains("x\nforged"), "{}", r.stdout);
    // Outside review (round 5): config check's label was the raw name.
    let check = w.run(&["config", "check"]);
    assert_ne!(check.code, 0, "{}", check.stderr);
    assert!(!check.stdout.contains("x\nforged"), "{}", check.stdout);
    assert!(!check.stderr.contains("x\nforged"), "{}", check.stderr);
    assert!(
        r.stderr.lines().any(|l| l.contains("ERROR")
            && l.contains("tenant=\"bad\"")
            && l.contains("database=\"main\"")),
        "{}",
        r.stderr
    );
    let r = w.run(&["-q", "--tenant", "bad", "dbbackup"]);
    assert_ne!(r.code, 0);
    assert!(
        r.stderr
            .lines()
            .any(|l| l.starts_with("rcbackup: error: tenant=bad: ")),
        "{}",
        r.stderr
    );
}

/// Outside review (round 3): a tenant's `dump_args`/`restore_args` reached
/// the tools unchecked: `--protocol=socket -uroot` logged in as root,
/// `--plugin-dir` loaded a library as root, sqlite3's `-cmd .shell` ran a
/// command. A tenant's tool arguments may only choose what is dumped and
/// how it is restored.
#[test]
fn a_tenants_tool_arguments_choose_what_is_dumped_only() {
    let mut w = tenants_world();
    let ran = w.path("shell-ran");
    let my = common::MyDb::create("targs");
    let pg = PgDb::create("targs");
    common::psql(&pg.0, "CREATE TABLE t (x int); CREATE TABLE skip (y int);");
    w.set_env("TENANT_U_PW", DB_PASSWORD.into());
    let maria = |args: &str| {
        format!(
            "[databases.main]\nengine = \"mariadb\"\nname = \"{}\"\nhost = \"127.0.0.1\"\nport = 3306\nuser = \"{DB_USER}\"\npassword_env = \"TENANT_U_PW\"\n{args}\n",
            my.0
        )
    };
    let sqlite_db = w.path("u.sqlite3");
    sqlite(&sqlite_db, "CREATE TABLE t (x int);");
    for (what, text) in [
        ("socket login", maria("dump_args = [\"--protocol=socket\", \"-uroot\"]")),
        ("plugin", maria("dump_args = [\"--plugin-dir=/tmp\", \"--default-auth=x\"]")),
        ("tee", maria("restore_args = [\"--tee=/tmp/r4-tee\"]")),
        ("host", maria("restore_args = [\"--host=10.0.0.1\"]")),
        (
            "sqlite shell",
            format!(
                "[databases.main]\nengine = \"sqlite\"\nname = \"{}\"\ndump_args = [\"-cmd\", \".shell touch {}\"]\n",
                sqlite_db.display(),
                ran.display()
            ),
        ),
        (
            "a value passing for an option",
            maria("dump_args = [\"--ignore-table\", \"--host=10.0.0.1\"]"),
        ),
        // Outside review (round 5): `--table` alone took rcbackup's own
        // `--dbname=...` as its value.
        ("an option without its value", maria("dump_args = [\"--ignore-table\"]")),
    ] {
        tenant(&w, "u", &text);
        let r = w.run(&["--tenant", "u", "dbbackup"]);
        assert_eq!(r.code, 2, "{what}: {}", r.stderr);
        assert_mentions(&r.stderr, &["may not pass to its tools", "tenants/u.toml"]);
    }
    assert!(!ran.exists(), "sqlite3 ran the tenant's shell command");
    // What to dump is the tenant's to choose.
    tenant(
        &w,
        "u",
        &format!(
            "[databases.main]\nengine = \"postgresql\"\nname = \"{}\"\nhost = \"127.0.0.1\"\nuser = \"{DB_USER}\"\npassword_env = \"TENANT_U_PW\"\ndump_args = [\"--exclude-table=skip\", \"--no-owner\"]\n",
            pg.0
        ),
    );
    w.ok(&["--tenant", "u", "dbbackup"]);
}

/// Outside review (round 3): backup-all's periodic progress lines did not
/// say whose dump they counted.
#[test]
fn backup_all_progress_lines_name_the_job() {
    let mut w = tenants_world();
    sqlite_tenant(&w, "slow", "");
    w.wrap_tool(
        "sqlite3",
        r#"case " $* " in *" .dump "*) sleep 2.5;; esac
exec "$REAL" "$@""#,
    );
    w.set_env("RCBACKUP_PROGRESS_INTERVAL", "1".into());
    let r = w.run(&["backup-all"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let progress: Vec<&str> = r
        .stderr
        .lines()
        .filter(|l| l.contains("backing up `main`"))
        .collect();
    assert!(!progress.is_empty(), "{}", r.stderr);
    for l in progress {
        assert!(l.contains("tenant=\"slow\""), "{l}");
    }
}

/// Outside review (round 4): other spellings around the tenant rules. A
/// PostgreSQL host list with a socket folder, a MariaDB `protocol=socket`
/// parameter, a connection-string remote with options (`key_file`, an
/// `alias` of any path), a file-reading rclone flag; a tenant naming a
/// variable of a longer tenant name's namespace (even when that tenant's
/// file is broken), which also no longer breaks that tenant; two names
/// that are one namespace; a backup of the top level's in a tenant's
/// folder.
#[test]
fn the_tenant_rules_hold_in_other_spellings() {
    let mut w = tenants_world();
    let refused = |w: &World, t: &str, says: &[&str]| {
        let r = w.run(&["--tenant", t, "dbbackup"]);
        assert_eq!(r.code, 2, "{t}: {}", r.stderr);
        assert_mentions(&r.stderr, says);
    };
    for section in [
        "engine = \"postgresql\"\nname = \"postgres\"\nhost = \"nonexistent.invalid,/var/run/postgresql\"\nuser = \"postgres\"",
        "url = \"postgres://postgres@/postgres?host=x.invalid,/var/run/postgresql\"",
        "url = \"mysql://root@127.0.0.1:3306/mysql?protocol=socket\"",
    ] {
        tenant(&w, "u", &format!("[databases.main]\n{section}\n"));
        refused(&w, "u", &["over TCP only"]);
    }
    for (key, line) in [
        (
            "remote",
            "remote = \":sftp,host=127.0.0.1,key_file=/root/.ssh/id_rsa:x\"\n",
        ),
        ("remote", "remote = \":alias,remote=/srv:x\"\n"),
        (
            "rclone_flags",
            "rclone_flags = [\"--sftp-key-file=/root/.ssh/id_rsa\"]\n",
        ),
        (
            "rclone_flags",
            "rclone_flags = [\"--s3-shared-credentials-file\", \"/root/.aws/credentials\"]\n",
        ),
    ] {
        let file = w.path("u.sqlite3");
        tenant(
            &w,
            "u",
            &format!(
                "{line}[databases.main]\nengine = \"sqlite\"\nname = \"{}\"\n",
                file.display()
            ),
        );
        refused(&w, "u", &[key, "tenants/u.toml"]);
    }
    std::fs::remove_file(w.path("tenants/u.toml")).unwrap();

    // Namespaces: `a-b` owns TENANT_A_B_..., never `a`.
    w.set_env("TENANT_A_B_PW", "ab-secret".into());
    let pg = |var: &str| {
        format!(
            "[databases.main]\nengine = \"postgresql\"\nname = \"x\"\nhost = \"127.0.0.1\"\nuser = \"{DB_USER}\"\npassword_env = \"{var}\"\n"
        )
    };
    tenant(&w, "a-b", &pg("TENANT_A_B_PW"));
    tenant(&w, "a", &pg("TENANT_A_B_PW"));
    refused(&w, "a", &["TENANT_A_B_PW", "another tenant's namespace"]);
    // a-b is not broken by a's file (its database does not exist: exit 1).
    let r = w.run(&["--tenant", "a-b", "dbbackup"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    // Nor may a take it while a-b's file does not load.
    tenant(&w, "a-b", &format!("{}\nnot toml [", pg("TENANT_A_B_PW")));
    refused(&w, "a", &["TENANT_A_B_PW", "another tenant's namespace"]);
    // a_b and a-b are one namespace: neither runs.
    tenant(&w, "a-b", &pg("TENANT_A_B_PW"));
    tenant(&w, "a_b", &pg("TENANT_A_B_OTHER"));
    refused(&w, "a-b", &["are one for its variables", "`a_b`"]);
    refused(&w, "a_b", &["are one for its variables", "`a-b`"]);
    for t in ["a", "a-b", "a_b"] {
        std::fs::remove_file(w.path(&format!("tenants/{t}.toml"))).unwrap();
    }

    // The top level's backups (their records name no tenant) in a tenant's
    // folder, reached through a symlink: damaged there, never restored.
    let top_db = w.seeded_sqlite("default", 5);
    w.ok(&["dbbackup"]);
    let link = w.path("store-link");
    std::os::unix::fs::symlink(&w.store, &link).unwrap();
    let c_file = sqlite_tenant(&w, "c", &format!("remote = \"{}\"\n", link.display()));
    sqlite(&c_file, "DELETE FROM items;");
    one_damaged_backup(&w, "c", "made for the top level, not tenant `c`");
    let r = w.run(&["--tenant", "c", "dbrestore", "-d", "main", "--noinput"]);
    assert_ne!(r.code, 0, "{}", r.stderr);
    assert_eq!(sqlite(&c_file, "SELECT count(*) FROM items;").trim(), "0");
    let _ = top_db;
}

/// Outside review (round 5): every tenant inherited the operator's
/// media_root, so a tenant backed up the operator's media into its own
/// folder and its `mediarestore --mirror` would delete what is not its
/// own; and `config check` passed a tenant with no databases, which every
/// run of it refuses.
#[test]
fn a_tenant_has_media_and_databases_of_its_own_only() {
    let mut w = tenants_world();
    let media = w.path("media-top");
    std::fs::create_dir_all(&media).unwrap();
    std::fs::write(media.join("operator.txt"), "the operator's").unwrap();
    w.setting(&format!("media_root = \"{}\"", media.display()));
    sqlite_tenant(&w, "a", "");
    let r = w.run(&["--tenant", "a", "mediabackup"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert_mentions(&r.stderr, &["media_root"]);
    assert!(
        !stored(&w).iter().any(|p| p.contains("operator.txt")),
        "{:?}",
        stored(&w)
    );
    // Its own folder, apart from the operator's: fine.
    let own = w.path("media-a");
    std::fs::create_dir_all(&own).unwrap();
    std::fs::write(own.join("a.txt"), "a's").unwrap();
    sqlite_tenant(&w, "a", &format!("media_root = \"{}\"\n", own.display()));
    w.ok(&["--tenant", "a", "mediabackup"]);
    // One inside the operator's: broken.
    sqlite_tenant(
        &w,
        "b",
        &format!("media_root = \"{}/sub\"\n", media.display()),
    );
    let r = w.run(&["--tenant", "b", "mediabackup"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert_mentions(&r.stderr, &["overlaps the top level's media_root"]);
    std::fs::remove_file(w.path("tenants/b.toml")).unwrap();

    tenant(&w, "nodb", "db_cleanup_keep = 3\n");
    for args in [
        &["config", "check"][..],
        &["--tenant", "nodb", "config", "check"][..],
    ] {
        let r = w.run(args);
        assert_eq!(r.code, 2, "{args:?}: {}\n{}", r.stdout, r.stderr);
        assert_mentions(
            &format!("{}{}", r.stdout, r.stderr),
            &["tenant nodb has no databases"],
        );
    }
}
