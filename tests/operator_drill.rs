//! `rcbackup drill`: a backup restored into a scratch database (PostgreSQL,
//! MariaDB: a new database on the same server; SQLite: a file in a private
//! temporary folder), counted table by table, and dropped. The live
//! database is never touched, whatever happens to the run: checked with
//! its fingerprint before and after, through damage, SIGKILL and SIGTERM.

mod common;

use std::path::PathBuf;

use common::*;
use serde_json::Value;

/// A live database of `engine`, configured as `alias` (unique per test, so
/// that tests running side by side never see each other's scratch
/// databases), seeded with 10 items, 2 notes and 50 rows in `big`
/// (and `big2` on the servers).
struct Live {
    engine: Engine,
    alias: String,
    handle: Handle,
}

enum Handle {
    Sqlite(PathBuf),
    Pg(PgDb),
    My(MyDb),
}

impl Live {
    fn create(world: &mut World, engine: Engine, alias: &str) -> Live {
        let handle = match engine {
            Engine::Sqlite => {
                let file = world.path(&format!("{alias}.sqlite3"));
                sqlite(
                    &file,
                    &format!(
                        "{}\nCREATE TABLE big (id INTEGER PRIMARY KEY, v TEXT NOT NULL);\n\
                         WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 50)\n\
                         INSERT INTO big SELECT x, hex(randomblob(32)) FROM c;\n",
                        seed_sql(10)
                    ),
                );
                world.sqlite(alias, &file);
                Handle::Sqlite(file)
            }
            Engine::Postgres => {
                let db = PgDb::create("drill");
                psql(&db.0, &seed_sql(10));
                pg_big_table(&db.0, 50);
                world.postgres(alias, &db.0);
                Handle::Pg(db)
            }
            Engine::Mariadb => {
                let db = MyDb::create("drill");
                mariadb(Some(&db.0), &seed_sql(10));
                mariadb_big_table(&db.0, 50);
                world.mariadb(alias, &db.0);
                Handle::My(db)
            }
        };
        // Scratch files of SQLite drills go to the world's own TMPDIR.
        std::fs::create_dir_all(world.path("tmp")).unwrap();
        world.set_env("TMPDIR", world.path("tmp").display().to_string());
        Live {
            engine,
            alias: alias.to_string(),
            handle,
        }
    }

    fn name(&self) -> String {
        match &self.handle {
            Handle::Sqlite(f) => f.display().to_string(),
            Handle::Pg(d) => d.0.clone(),
            Handle::My(d) => d.0.clone(),
        }
    }

    fn exec(&self, sql: &str) -> String {
        match &self.handle {
            Handle::Sqlite(f) => sqlite(f, sql),
            Handle::Pg(d) => psql(&d.0, sql),
            Handle::My(d) => mariadb(Some(&d.0), sql),
        }
    }

    /// Row count and SHA-256 of the seeded tables, and of `big`.
    fn fingerprint(&self) -> ((usize, String), (usize, String)) {
        (
            fingerprint(&self.exec(CONTENT_QUERY)),
            fingerprint(&self.exec("SELECT id, v FROM big ORDER BY id;")),
        )
    }

    /// The tables a drill must report, with their rows.
    fn expected_tables(&self) -> Vec<(Option<&'static str>, &'static str, u64)> {
        match self.engine {
            Engine::Sqlite => vec![(None, "big", 50), (None, "items", 10), (None, "notes", 2)],
            Engine::Postgres => vec![
                (Some("public"), "big", 50),
                (Some("public"), "big2", 50),
                (Some("public"), "items", 10),
                (Some("public"), "notes", 2),
            ],
            Engine::Mariadb => vec![
                (None, "big", 50),
                (None, "big2", 50),
                (None, "items", 10),
                (None, "notes", 2),
            ],
        }
    }

    fn engine_name(&self) -> &'static str {
        match self.engine {
            Engine::Sqlite => "sqlite",
            Engine::Postgres => "postgresql",
            Engine::Mariadb => "mariadb",
        }
    }

    /// The scratch databases (or SQLite scratch folders) of this alias
    /// that exist now.
    fn scratches(&self, world: &World) -> Vec<String> {
        let prefix = format!("rcbackup_drill_{}_", self.alias);
        match self.engine {
            Engine::Postgres => psql(
                "postgres",
                &format!(
                    "SELECT datname FROM pg_database WHERE starts_with(datname, '{prefix}') ORDER BY 1"
                ),
            )
            .lines()
            .map(str::to_string)
            .collect(),
            Engine::Mariadb => mariadb(
                None,
                &format!(
                    "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE LEFT(SCHEMA_NAME, {}) = '{prefix}' ORDER BY 1",
                    prefix.len()
                ),
            )
            .lines()
            .map(str::to_string)
            .collect(),
            Engine::Sqlite => {
                let mut found = Vec::new();
                walk(&world.path("tmp"), &mut found);
                found.retain(|p| p.contains("rcbackup_drill_") || p.contains("rcbackup-drill"));
                // The base folder itself may stay; what is in it may not.
                found.retain(|p| p.contains(&prefix));
                found
            }
        }
    }
}

fn walk(dir: &std::path::Path, out: &mut Vec<String>) {
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            out.push(e.path().display().to_string());
            if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                walk(&e.path(), out);
            }
        }
    }
}

const ENGINES: [Engine; 3] = [Engine::Sqlite, Engine::Postgres, Engine::Mariadb];

fn tag(engine: Engine) -> &'static str {
    match engine {
        Engine::Sqlite => "lite",
        Engine::Postgres => "pg",
        Engine::Mariadb => "my",
    }
}

fn drill_json(world: &World, alias: &str) -> (Value, String) {
    let r = world.ok(&["drill", "-d", alias, "--json"]);
    let v: Value = serde_json::from_str(&r.stdout)
        .unwrap_or_else(|e| panic!("drill --json gave {e}: {}", r.stdout));
    (v, r.stdout)
}

/// The documented shape (docs/json.md, "drill"), keys in order.
fn assert_shape(v: &Value, raw: &str, live: &Live, backup: &str) {
    let keys = [
        "version",
        "backup",
        "database",
        "engine",
        "scratch",
        "kept",
        "started",
        "duration_ms",
        "tables",
        "total_rows",
    ];
    let obj = v.as_object().expect("one JSON object");
    assert_eq!(obj.len(), keys.len(), "{raw}");
    let mut at = 0;
    for k in keys {
        let i = raw
            .find(&format!("\"{k}\":"))
            .unwrap_or_else(|| panic!("no key {k}: {raw}"));
        assert!(i >= at, "key {k} out of order: {raw}");
        at = i;
    }
    assert!(raw.trim_start().starts_with("{\"version\":1,"), "{raw}");
    assert_eq!(raw.trim_end().lines().count(), 1, "one document: {raw}");
    assert_eq!(v["backup"], backup);
    assert_eq!(v["database"], live.alias.as_str());
    assert_eq!(v["engine"], live.engine_name());
    assert_eq!(v["kept"], false);
    let scratch = v["scratch"].as_str().unwrap();
    assert!(
        scratch.contains(&format!("rcbackup_drill_{}_", live.alias)),
        "{scratch}"
    );
    assert_ne!(scratch, live.name());
    let started = v["started"].as_str().unwrap();
    assert!(
        chrono::DateTime::parse_from_rfc3339(started).is_ok() && started.ends_with('Z'),
        "{started}"
    );
    assert!(v["duration_ms"].is_u64(), "{raw}");
    let tables: Vec<(Option<String>, String, u64)> = v["tables"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            let o = t.as_object().unwrap();
            let expected_keys = if live.engine == Engine::Postgres {
                3
            } else {
                2
            };
            assert_eq!(o.len(), expected_keys, "{t}");
            (
                t.get("schema").map(|s| s.as_str().unwrap().to_string()),
                t["name"].as_str().unwrap().to_string(),
                t["rows"].as_u64().unwrap(),
            )
        })
        .collect();
    let want: Vec<(Option<String>, String, u64)> = live
        .expected_tables()
        .into_iter()
        .map(|(s, n, r)| (s.map(str::to_string), n.to_string(), r))
        .collect();
    assert_eq!(tables, want, "{raw}");
    assert_eq!(
        v["total_rows"].as_u64().unwrap(),
        want.iter().map(|t| t.2).sum::<u64>()
    );
}

/// For each engine: the drill reports every table's rows, in the
/// documented JSON shape, and the plain table too; the live database is
/// unchanged and no scratch database or file is left.
#[test]
fn drill_counts_rows_and_leaves_nothing() {
    for engine in ENGINES {
        let mut world = World::new(Remote::Local);
        let alias = format!("rows_{}", tag(engine));
        let live = Live::create(&mut world, engine, &alias);
        world.ok(&["dbbackup", "-d", &alias]);
        let backup = world.names(Some(&alias))[0].clone();
        let before = live.fingerprint();

        let (v, raw) = drill_json(&world, &alias);
        assert_shape(&v, &raw, &live, &backup);
        assert_eq!(live.fingerprint(), before, "{engine:?}: live changed");
        assert_eq!(live.scratches(&world), Vec::<String>::new(), "{engine:?}");

        let r = world.ok(&["drill", "-d", &alias, "-i", &backup]);
        assert_mentions(&r.stdout, &[&backup, "items", "notes", "big", "10", "50"]);
        assert_mentions(&r.stdout, &["total"]);
        assert_eq!(live.fingerprint(), before, "{engine:?}: live changed");
        assert_eq!(live.scratches(&world), Vec::<String>::new(), "{engine:?}");
    }
}

/// A damaged backup: exit 4 naming the damage, nothing left behind, the
/// live database unchanged.
#[test]
fn damaged_backup_exits_4_and_leaves_nothing() {
    for engine in ENGINES {
        let mut world = World::new(Remote::Local);
        let alias = format!("dmg_{}", tag(engine));
        let live = Live::create(&mut world, engine, &alias);
        world.ok(&["dbbackup", "-d", &alias]);
        let backup = world.names(Some(&alias))[0].clone();
        flip_byte(&world.store.join("db").join(&backup));
        let before = live.fingerprint();
        let r = world.run(&["drill", "-d", &alias, "-i", &backup, "--json"]);
        assert_eq!(r.code, 4, "{engine:?}: {}", r.stderr);
        assert_eq!(r.stdout, "", "nothing on stdout on failure");
        assert_mentions(&r.stderr, &[&backup]);
        assert_eq!(live.fingerprint(), before);
        assert_eq!(live.scratches(&world), Vec::<String>::new(), "{engine:?}");
    }
}

/// SIGKILL mid-restore (the restore tool is reading the scratch database's
/// stream): the live database is unchanged, the scratch database is an
/// orphan, and the next drill removes it (and leaves nothing itself).
#[test]
fn sigkill_mid_restore_leaves_live_unchanged_and_next_drill_removes_orphan() {
    for engine in ENGINES {
        let mut world = World::new(Remote::Local);
        let alias = format!("kill_{}", tag(engine));
        let live = Live::create(&mut world, engine, &alias);
        world.ok(&["dbbackup", "-d", &alias]);
        let before = live.fingerprint();

        let mut held = world.spawn_held(&["drill", "-d", &alias], "restore-streaming");
        held.wait_at("restore-streaming");
        let orphans = live.scratches(&world);
        assert!(
            !orphans.is_empty(),
            "{engine:?}: no scratch while restoring"
        );
        if engine == Engine::Mariadb {
            assert_eq!(drill_grants(&alias).len(), 1, "the drill's user");
        }
        sigkill(held.child.id());
        let _ = held.finish();
        assert_eq!(live.fingerprint(), before, "{engine:?}: live changed");
        // Its restore tool, if still running, ends on the closed pipe.
        wait_until(30, "the orphan to stay", || {
            !live.scratches(&world).is_empty()
        });

        let (v, _) = drill_json(&world, &alias);
        assert_eq!(
            v["total_rows"],
            if engine == Engine::Sqlite { 62 } else { 112 }
        );
        assert_eq!(
            live.scratches(&world),
            Vec::<String>::new(),
            "{engine:?}: the orphan of the killed drill is still there"
        );
        if engine == Engine::Mariadb {
            assert_eq!(drill_grants(&alias), Vec::<String>::new(), "its user");
        }
        assert_eq!(live.fingerprint(), before);
    }
}

/// SIGTERM mid-restore: exit 130, the scratch database dropped (the SQLite
/// folder removed), the live database unchanged.
#[test]
fn sigterm_mid_restore_exits_130_and_drops_the_scratch() {
    for engine in ENGINES {
        let mut world = World::new(Remote::Local);
        let alias = format!("term_{}", tag(engine));
        let live = Live::create(&mut world, engine, &alias);
        world.ok(&["dbbackup", "-d", &alias]);
        let before = live.fingerprint();
        for step in ["restore-streaming", "drill-counted"] {
            let mut held = world.spawn_held(&["drill", "-d", &alias, "--json"], step);
            held.wait_at(step);
            assert!(!live.scratches(&world).is_empty(), "{engine:?} {step}");
            held.signal(libc::SIGTERM);
            let r = held.finish();
            assert_eq!(r.code, 130, "{engine:?} {step}: {}", r.stderr);
            assert_eq!(r.stdout, "", "{engine:?} {step}");
            assert_eq!(live.fingerprint(), before, "{engine:?} {step}");
            assert_eq!(
                live.scratches(&world),
                Vec::<String>::new(),
                "{engine:?} {step}: scratch left behind"
            );
        }
    }
}

/// `--keep` leaves the scratch database for a look (and says where);
/// `--cleanup` removes it and restores nothing.
#[test]
fn keep_then_cleanup() {
    for engine in ENGINES {
        let mut world = World::new(Remote::Local);
        let alias = format!("keep_{}", tag(engine));
        let live = Live::create(&mut world, engine, &alias);
        world.ok(&["dbbackup", "-d", &alias]);
        let r = world.ok(&["drill", "-d", &alias, "--keep", "--json"]);
        let v: Value = serde_json::from_str(&r.stdout).unwrap();
        assert_eq!(v["kept"], true);
        let kept = live.scratches(&world);
        assert!(!kept.is_empty(), "{engine:?}");
        assert!(
            kept.iter()
                .any(|k| k.contains(v["scratch"].as_str().unwrap())
                    || v["scratch"].as_str().unwrap().contains(k.as_str())),
            "{kept:?} {v}"
        );
        // A new drill does not take a kept scratch for an orphan.
        world.ok(&["drill", "-d", &alias]);
        assert_eq!(live.scratches(&world), kept, "{engine:?}");
        let r = world.ok(&["drill", "-d", &alias, "--cleanup"]);
        assert_mentions(&r.stdout, &["rcbackup_drill_"]);
        assert_eq!(live.scratches(&world), Vec::<String>::new(), "{engine:?}");
        // --json: the documented shape, naming what went.
        world.ok(&["drill", "-d", &alias, "--keep"]);
        let kept = live.scratches(&world);
        let r = world.ok(&["drill", "-d", &alias, "--cleanup", "--json"]);
        assert!(
            r.stdout.starts_with("{\"version\":1,\"database\":"),
            "{}",
            r.stdout
        );
        let v: Value = serde_json::from_str(&r.stdout).unwrap();
        assert_eq!(v.as_object().unwrap().len(), 4, "{v}");
        assert_eq!(v["left"], serde_json::json!([]), "{v}");
        assert_eq!(v["database"], alias.as_str());
        let removed: Vec<&str> = v["removed"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r.as_str().unwrap())
            .collect();
        assert_eq!(removed.len(), 1, "{v}");
        assert!(
            kept.iter()
                .any(|k| removed[0].contains(k.as_str()) || k.contains(removed[0])),
            "{kept:?} {v}"
        );
        let r = world.ok(&["drill", "-d", &alias, "--cleanup", "--json"]);
        let v: Value = serde_json::from_str(&r.stdout).unwrap();
        assert_eq!(v["removed"], serde_json::json!([]), "{v}");
    }
}

/// Cleanup removes only what drills made: a database that merely looks
/// like a scratch database (a name that does not parse, or no drill's
/// mark and no local trace) is never dropped, even when old.
#[test]
fn cleanup_never_drops_a_look_alike() {
    let mut world = World::new(Remote::Local);
    let alias = "alike";
    let live = Live::create(&mut world, Engine::Postgres, alias);
    let look_alikes = [
        format!("rcbackup_drill_{alias}_old"),
        format!("rcbackup_drill_{alias}_20000101000000_1_abcdef"),
        format!("rcbackup_drill_{alias}x_20000101000000_1_abcdef"),
    ];
    let _guards: Vec<PgDb> = look_alikes
        .iter()
        .map(|n| {
            psql("postgres", &format!("DROP DATABASE IF EXISTS \"{n}\""));
            psql("postgres", &format!("CREATE DATABASE \"{n}\""));
            PgDb(n.clone())
        })
        .collect();
    // A marked one of another alias, old: not this alias's.
    let other = "rcbackup_drill_alikes_20000101000000_1_abcdef".to_string();
    psql("postgres", &format!("DROP DATABASE IF EXISTS \"{other}\""));
    psql("postgres", &format!("CREATE DATABASE \"{other}\""));
    psql(
        "postgres",
        &format!("COMMENT ON DATABASE \"{other}\" IS 'rcbackup drill scratch database'"),
    );
    let _other = PgDb(other.clone());
    // A marked one of this alias, old: an orphan, dropped.
    let orphan = format!("rcbackup_drill_{alias}_20000101000000_2_abcdef");
    psql("postgres", &format!("DROP DATABASE IF EXISTS \"{orphan}\""));
    psql("postgres", &format!("CREATE DATABASE \"{orphan}\""));
    psql(
        "postgres",
        &format!("COMMENT ON DATABASE \"{orphan}\" IS 'rcbackup drill scratch database'"),
    );
    let _orphan = PgDb(orphan.clone());

    world.ok(&["dbbackup", "-d", alias]);
    world.ok(&["drill", "-d", alias]);
    let mut left = live.scratches(&world);
    left.sort();
    let mut want = look_alikes[..2].to_vec();
    want.sort();
    assert_eq!(left, want);
    let all = psql("postgres", "SELECT datname FROM pg_database");
    assert!(all.lines().any(|l| l == look_alikes[2]), "{all}");
    assert!(
        !all.lines().any(|l| l == orphan),
        "the marked orphan stayed: {all}"
    );
    assert!(all.lines().any(|l| l == other), "{all}");
    assert!(all.lines().any(|l| l == live.name()), "{all}");
}

/// A role that may not create databases: a clear error naming the
/// privilege to grant, exit 1, the live database unchanged.
#[test]
fn without_create_privilege_the_error_names_it() {
    // PostgreSQL: a role without CREATEDB.
    {
        let mut world = World::new(Remote::Local);
        let live = Live::create(&mut world, Engine::Postgres, "nopriv_pg");
        world.ok(&["dbbackup", "-d", "nopriv_pg"]);
        let role = format!("rcb_nocreatedb_{}", std::process::id());
        psql(
            "postgres",
            &format!(
                "DROP ROLE IF EXISTS {role}; CREATE ROLE {role} LOGIN NOCREATEDB PASSWORD 'nopriv-pw'"
            ),
        );
        world.databases = world.databases.replace(
            &format!("user = \"{DB_USER}\""),
            &format!("user = \"{role}\""),
        );
        world.set_env(PASSWORD_VAR, "nopriv-pw".into());
        let before = live.fingerprint();
        let r = world.run(&["drill", "-d", "nopriv_pg"]);
        psql("postgres", &format!("DROP ROLE IF EXISTS {role}"));
        assert_eq!(r.code, 1, "{}", r.stderr);
        assert_mentions(&r.stderr, &["CREATEDB", &role, "ALTER ROLE"]);
        assert_lacks(&r.stderr, &["nopriv-pw", "panicked"]);
        assert_eq!(live.fingerprint(), before);
        assert_eq!(live.scratches(&world), Vec::<String>::new());
    }
    // MariaDB: a user with rights on the live database only.
    {
        let mut world = World::new(Remote::Local);
        let live = Live::create(&mut world, Engine::Mariadb, "nopriv_my");
        world.ok(&["dbbackup", "-d", "nopriv_my"]);
        let user = format!("rcb_nocreate_{}", std::process::id());
        mariadb(
            None,
            &format!(
                "DROP USER IF EXISTS '{user}'@'localhost'; CREATE USER '{user}'@'localhost' IDENTIFIED BY 'nopriv-pw'; \
                 GRANT SELECT ON `{}`.* TO '{user}'@'localhost'",
                live.name()
            ),
        );
        world.databases = world.databases.replace(
            &format!("user = \"{DB_USER}\""),
            &format!("user = \"{user}\""),
        );
        world.set_env(PASSWORD_VAR, "nopriv-pw".into());
        let before = live.fingerprint();
        let r = world.run(&["drill", "-d", "nopriv_my"]);
        assert_eq!(r.code, 1, "{}", r.stderr);
        assert_mentions(&r.stderr, &["GRANT", "rcbackup\\_drill\\_%", &user]);
        assert_mentions(&r.stderr, &["CREATE USER", "nothing was restored"]);
        assert_lacks(&r.stderr, &["nopriv-pw", "panicked", "cannot drop"]);
        assert_eq!(live.fingerprint(), before);
        assert_eq!(live.scratches(&world), Vec::<String>::new());
        // Every privilege on the drill's databases, but no CREATE USER: the
        // scratch database is made, the restricted user cannot be, so
        // nothing is restored and the scratch database goes.
        mariadb(
            None,
            &format!("GRANT ALL PRIVILEGES ON `rcbackup\\_drill\\_%`.* TO '{user}'@'localhost' WITH GRANT OPTION"),
        );
        let r = world.run(&["drill", "-d", "nopriv_my"]);
        mariadb(None, &format!("DROP USER IF EXISTS '{user}'@'localhost'"));
        assert_eq!(r.code, 1, "{}", r.stderr);
        assert_mentions(
            &r.stderr,
            &["temporary user", "CREATE USER", "nothing was restored"],
        );
        assert_lacks(&r.stderr, &["nopriv-pw", "panicked", "cannot drop"]);
        assert_eq!(live.fingerprint(), before);
        assert_eq!(live.scratches(&world), Vec::<String>::new());
    }
}

/// `drill --json >&-`: the result cannot be written, so exit 1; the
/// scratch database is dropped all the same.
#[test]
fn closed_stdout_exits_1_and_drops_the_scratch() {
    let mut world = World::new(Remote::Local);
    let live = Live::create(&mut world, Engine::Postgres, "closed_pg");
    world.ok(&["dbbackup", "-d", "closed_pg"]);
    let env = world.command(&[]);
    let mut closed = std::process::Command::new("bash");
    closed
        .arg("-c")
        .arg(format!("exec '{}' drill -d closed_pg --json >&-", bin()));
    for (k, v) in env.get_envs() {
        if let Some(v) = v {
            closed.env(k, v);
        }
    }
    closed.current_dir(world.dir.path());
    let out = closed.output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert_mentions(&err, &["standard output"]);
    assert_eq!(live.scratches(&world), Vec::<String>::new());
}

/// Rewrites backup `name`'s data object to `bytes` and its record to match:
/// an altered backup that passes every integrity check.
fn replace_matching(w: &World, name: &str, bytes: &[u8]) {
    std::fs::write(w.store.join(format!("db/{name}")), bytes).unwrap();
    let file = w.store.join(format!("db/.rcbackup/records/{name}.json"));
    let mut rec: Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    rec["size"] = bytes.len().into();
    rec["sha256"] = sha256_hex(bytes).into();
    std::fs::write(&file, format!("{rec}\n")).unwrap();
}

/// MariaDB accounts holding a grant on a scratch database of `alias` (the
/// drill's temporary users).
fn drill_grants(alias: &str) -> Vec<String> {
    mariadb(
        None,
        &format!(
            "SELECT CONCAT(User, '@', Host, ' on ', Db) FROM mysql.db WHERE REPLACE(Db, '\\\\', '') LIKE 'rcbackup_drill_{alias}_%'"
        ),
    )
    .lines()
    .map(str::to_string)
    .collect()
}

/// MariaDB: a drill restores as a temporary user that may change the
/// scratch database only. A backup made with `--databases live
/// --add-drop-database` starts with `DROP DATABASE live; CREATE DATABASE
/// live; USE live` (the client's --one-database filters only after a USE),
/// and an altered backup may name any database in any statement: the
/// server refuses both, the drill fails saying why, the live database and
/// the others are unchanged, and neither the scratch database nor the user
/// is left.
#[test]
fn mariadb_drill_cannot_reach_beyond_the_scratch_database() {
    // A dump of the live database made with --databases.
    {
        let mut world = World::new(Remote::Local);
        let live = Live::create(&mut world, Engine::Mariadb, "beyond_my");
        world.databases.push_str(&format!(
            "dump_args = [\"--databases\", \"{}\", \"--add-drop-database\"]\n",
            live.name()
        ));
        world.ok(&["dbbackup", "-d", "beyond_my"]);
        let before = live.fingerprint();
        let r = world.run(&["drill", "-d", "beyond_my"]);
        assert_eq!(r.code, 1, "{}", r.stderr);
        assert_mentions(&r.stderr, &["--databases", "only the scratch database"]);
        assert_lacks(&r.stderr, &["panicked", "rcbackup-test-pw"]);
        assert_eq!(live.fingerprint(), before, "the live database changed");
        assert_eq!(live.scratches(&world), Vec::<String>::new());
        assert_eq!(drill_grants("beyond_my"), Vec::<String>::new());
    }
    // An altered backup whose statements name the live database and
    // another one, its record rewritten to match.
    {
        let mut world = World::new(Remote::Local);
        let live = Live::create(&mut world, Engine::Mariadb, "crafted_my");
        let other = MyDb::create("drillother");
        mariadb(
            Some(&other.0),
            "CREATE TABLE o (x INT); INSERT INTO o VALUES (1);",
        );
        world.databases.push_str("compression = \"none\"\n");
        world.ok(&["dbbackup", "-d", "crafted_my"]);
        let backup = world.names(Some("crafted_my"))[0].clone();
        let dump = std::fs::read_to_string(world.store.join("db").join(&backup)).unwrap();
        let evil = format!(
            "INSERT INTO `{live}`.`notes` (id, body) VALUES (999, 'drill wrote here');\n\
             DELETE FROM `{live}`.`items`;\nDROP TABLE `{other}`.`o`;\n",
            live = live.name(),
            other = other.0
        );
        let at = dump.find("DROP TABLE IF EXISTS").unwrap();
        let altered = format!("{}{evil}{}", &dump[..at], &dump[at..]);
        replace_matching(&world, &backup, altered.as_bytes());
        let before = live.fingerprint();
        let r = world.run(&["drill", "-d", "crafted_my", "-i", &backup]);
        assert_eq!(r.code, 1, "{}", r.stderr);
        assert_mentions(&r.stderr, &["only the scratch database"]);
        assert_eq!(live.fingerprint(), before, "the live database changed");
        assert_eq!(
            mariadb(Some(&other.0), "SELECT COUNT(*) FROM o").trim(),
            "1"
        );
        assert_eq!(live.scratches(&world), Vec::<String>::new());
        assert_eq!(drill_grants("crafted_my"), Vec::<String>::new());
    }
    // A view defined by the configured account: it would run with that
    // account's rights, so the drill's user may not create it.
    {
        let mut world = World::new(Remote::Local);
        let live = Live::create(&mut world, Engine::Mariadb, "definer_my");
        live.exec(&format!(
            "CREATE DEFINER = '{DB_USER}'@'localhost' VIEW v AS SELECT id FROM items;"
        ));
        world.ok(&["dbbackup", "-d", "definer_my"]);
        let before = live.fingerprint();
        let r = world.run(&["drill", "-d", "definer_my"]);
        assert_eq!(r.code, 1, "{}", r.stderr);
        assert_mentions(&r.stderr, &["DEFINER", "dbrestore can"]);
        assert_eq!(live.fingerprint(), before, "the live database changed");
        assert_eq!(live.scratches(&world), Vec::<String>::new());
        assert_eq!(drill_grants("definer_my"), Vec::<String>::new());
    }
}

/// A backup that restores no table at all proves nothing: the drill fails
/// (exit 1) saying so, and leaves nothing.
#[test]
fn a_drill_that_restores_no_table_fails() {
    for engine in ENGINES {
        let mut world = World::new(Remote::Local);
        let alias = format!("empty_{}", tag(engine));
        let live = Live::create(&mut world, engine, &alias);
        live.exec(match engine {
            Engine::Postgres => "DROP TABLE items, notes, big, big2;",
            Engine::Mariadb => "DROP TABLE items, notes, big, big2;",
            Engine::Sqlite => "DROP TABLE items; DROP TABLE notes; DROP TABLE big;",
        });
        world.ok(&["dbbackup", "-d", &alias]);
        let r = world.run(&["drill", "-d", &alias, "--json"]);
        assert_eq!(r.code, 1, "{engine:?}: {}", r.stderr);
        assert_eq!(r.stdout, "", "{engine:?}");
        assert_mentions(&r.stderr, &["no table"]);
        assert_eq!(live.scratches(&world), Vec::<String>::new(), "{engine:?}");
    }
}

/// Stopped before its restore (SIGTERM at the scratch database's
/// creation): exit 130, and the message does not claim a restore happened.
#[test]
fn interrupted_before_the_restore_says_nothing_was_restored() {
    let mut world = World::new(Remote::Local);
    let live = Live::create(&mut world, Engine::Postgres, "early_pg");
    world.ok(&["dbbackup", "-d", "early_pg"]);
    let mut held = world.spawn_held(&["drill", "-d", "early_pg"], "drill-created");
    held.wait_at("drill-created");
    held.signal(libc::SIGTERM);
    let r = held.finish();
    assert_eq!(r.code, 130, "{}", r.stderr);
    assert_mentions(&r.stderr, &["nothing was restored"]);
    assert_lacks(&r.stderr, &["restore target was"]);
    assert_eq!(live.scratches(&world), Vec::<String>::new());
}

/// PostGIS: the scratch database gets the extension as a restore into an
/// empty database does (the role here may create it), the geometry table
/// is counted, and spatial_ref_sys (the extension's own table) too.
#[test]
fn postgis_drill_restores_geometry() {
    let mut world = World::new(Remote::Local);
    let live = PgDb::create("drillgis");
    psql(
        &live.0,
        "CREATE EXTENSION postgis;
         CREATE TABLE places (id INTEGER PRIMARY KEY, geom geometry(Point, 4326));
         INSERT INTO places VALUES (1, ST_SetSRID(ST_MakePoint(2.35, 48.85), 4326)),
                                   (2, ST_SetSRID(ST_MakePoint(-0.12, 51.5), 4326));",
    );
    world.postgres("gis_pg", &live.0);
    world.databases = world.databases.replace("\"postgresql\"", "\"postgis\"");
    world.ok(&["dbbackup", "-d", "gis_pg"]);
    let (v, _) = drill_json(&world, "gis_pg");
    let places = v["tables"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "places")
        .unwrap_or_else(|| panic!("no places in {v}"));
    assert_eq!(places["schema"], "public");
    assert_eq!(places["rows"], 2);
    let left = psql(
        "postgres",
        "SELECT count(*) FROM pg_database WHERE starts_with(datname, 'rcbackup_drill_gis_pg_')",
    );
    assert_eq!(left.trim(), "0");
}

/// A MariaDB backup altered to hold the client's own commands (a shell
/// command, `system`, reading a file of this machine with LOAD DATA LOCAL)
/// and left without mariadb-dump's first line (which turns the client's
/// sandbox mode on): neither a drill nor a restore runs them.
#[test]
fn client_commands_in_an_altered_mariadb_backup_never_run() {
    let mut world = World::new(Remote::Local);
    let live = Live::create(&mut world, Engine::Mariadb, "shell_my");
    world.databases.push_str("compression = \"none\"\n");
    world.ok(&["dbbackup", "-d", "shell_my"]);
    let backup = world.names(Some("shell_my"))[0].clone();
    let dump = std::fs::read_to_string(world.store.join("db").join(&backup)).unwrap();
    let secret = world.path("secret.txt");
    std::fs::write(&secret, "host file\n").unwrap();
    let (bang, system) = (world.path("by_bang"), world.path("by_system"));
    let evil = format!(
        "connect {} 127.0.0.2\n\\! touch {}\nsystem touch {}\nCREATE TABLE leak (l TEXT);\nLOAD DATA LOCAL INFILE '{}' INTO TABLE leak;\n",
        live.name(),
        bang.display(),
        system.display(),
        secret.display()
    );
    // Without the sandbox line (the first), the payload before the tables.
    let body = dump.split_once('\n').unwrap().1;
    let at = body.find("DROP TABLE IF EXISTS").unwrap();
    let altered = format!("{}{evil}{}", &body[..at], &body[at..]);
    replace_matching(&world, &backup, altered.as_bytes());
    let before = live.fingerprint();
    let r = world.run(&["drill", "-d", "shell_my", "-i", &backup]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    // `connect` (which --sandbox allows: it would hand the password to the
    // server the backup names) was not run by the client.
    assert_lacks(&r.stderr, &["Can't connect", "127.0.0.2"]);
    assert!(!bang.exists() && !system.exists(), "a shell command ran");
    assert_eq!(live.scratches(&world), Vec::<String>::new());
    // dbrestore (into the live database: the backup is trusted that far)
    // runs no command on this machine either.
    let r = world.run(&["dbrestore", "-d", "shell_my", "-i", &backup, "--noinput"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert_lacks(&r.stderr, &["Can't connect", "127.0.0.2"]);
    assert!(!bang.exists() && !system.exists(), "a shell command ran");
    let _ = before;
    // Only the LOAD DATA LOCAL: refused too.
    let only_load = format!(
        "{}CREATE TABLE leak (l TEXT);\nLOAD DATA LOCAL INFILE '{}' INTO TABLE leak;\n{}",
        &body[..at],
        secret.display(),
        &body[at..]
    );
    replace_matching(&world, &backup, only_load.as_bytes());
    let r = world.run(&["drill", "-d", "shell_my", "-i", &backup, "--keep"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert_eq!(live.scratches(&world), Vec::<String>::new());
}

/// A SQLite backup altered to run dot-commands (`.shell`, `.system`) and
/// to ATTACH the live file: neither a drill nor a restore runs them, and
/// the live file is unchanged.
#[test]
fn dot_commands_in_an_altered_sqlite_backup_never_run() {
    let mut world = World::new(Remote::Local);
    let live = Live::create(&mut world, Engine::Sqlite, "shell_lite");
    world.databases.push_str("compression = \"none\"\n");
    world.ok(&["dbbackup", "-d", "shell_lite"]);
    let backup = world.names(Some("shell_lite"))[0].clone();
    let (shell, system) = (world.path("by_shell"), world.path("by_system"));
    let altered = format!(
        "PRAGMA foreign_keys=OFF;\nBEGIN TRANSACTION;\nCREATE TABLE a(x);\nINSERT INTO a VALUES(1);\nCOMMIT;\n\
         .shell touch {}\n.system touch {}\nATTACH DATABASE '{}' AS l;\nDELETE FROM l.items;\nDETACH DATABASE l;\n\
         BEGIN TRANSACTION;\nCOMMIT;\n",
        shell.display(),
        system.display(),
        live.name()
    );
    replace_matching(&world, &backup, altered.as_bytes());
    let before = live.fingerprint();
    let r = world.run(&["drill", "-d", "shell_lite", "-i", &backup]);
    assert_eq!(r.code, 4, "{}", r.stderr);
    assert!(!shell.exists() && !system.exists(), "a shell command ran");
    assert_eq!(live.fingerprint(), before, "the live file changed");
    assert_eq!(live.scratches(&world), Vec::<String>::new());
    let r = world.run(&["dbrestore", "-d", "shell_lite", "-i", &backup, "--noinput"]);
    assert_eq!(r.code, 4, "{}", r.stderr);
    assert!(!shell.exists() && !system.exists(), "a shell command ran");
    assert_eq!(live.fingerprint(), before, "the live file changed");

    // What sqlite3's -safe mode lets through is refused by rcbackup before
    // sqlite3 sees it, as damage (exit 4), in a drill, a restore and
    // verify: `.trace FILE` (it truncates FILE and writes the statements
    // that follow into it); a NUL before a `.` line (the shell reads its
    // input in pieces measured with strlen, drops what the NUL ends, and
    // saw `.trace` at a line's start); fsdir(), the shell's file reader.
    let trace = format!(
        "PRAGMA foreign_keys=OFF;\nBEGIN TRANSACTION;\nCREATE TABLE a(x);\nCOMMIT;\n.trace {}\nSELECT 1 /*\nINJECTED\n*/;\n.trace off\nBEGIN TRANSACTION;\nCOMMIT;\n",
        live.name()
    );
    let secret = world.path("secret.txt");
    std::fs::write(&secret, "host secret\n").unwrap();
    let mut nul =
        b"PRAGMA foreign_keys=OFF;\nBEGIN TRANSACTION;\nCREATE TABLE a(x);\n\x00".to_vec();
    nul.extend_from_slice(&[b'-'; 98]);
    nul.extend_from_slice(format!(".trace {}\nSELECT 1;\nCOMMIT;\n", live.name()).as_bytes());
    let fsdir = format!(
        "PRAGMA foreign_keys=OFF;\nBEGIN TRANSACTION;\nCREATE TABLE leak AS SELECT name, data FROM fsdir('{}');\nCOMMIT;\n",
        secret.display()
    );
    let cases: [(Vec<u8>, &[&str]); 3] = [
        (trace.into_bytes(), &["shell runs", ".trace"]),
        (nul, &["NUL"]),
        (fsdir.into_bytes(), &["fsdir"]),
    ];
    for (altered, says) in cases {
        replace_matching(&world, &backup, &altered);
        for args in [
            vec!["drill", "-d", "shell_lite", "-i", backup.as_str()],
            vec![
                "dbrestore",
                "-d",
                "shell_lite",
                "-i",
                backup.as_str(),
                "--noinput",
            ],
            vec!["verify", "-d", "shell_lite", "-i", backup.as_str()],
        ] {
            let r = world.run(&args);
            assert_eq!(r.code, 4, "{says:?} {args:?}: {}", r.stderr);
            assert_mentions(&r.stderr, says);
            assert_eq!(
                live.fingerprint(),
                before,
                "{args:?}: the live file changed"
            );
        }
        let leaked = sqlite(
            std::path::Path::new(&live.name()),
            "SELECT count(*) FROM sqlite_schema WHERE name = 'leak';",
        );
        assert_eq!(leaked.trim(), "0");
    }
    assert_eq!(live.scratches(&world), Vec::<String>::new());
}

/// `USE other` in a MariaDB backup is not skipped in silence (a drill that
/// skipped part of a backup proves nothing): the drill's user may not use
/// another database, so the drill fails.
#[test]
fn a_use_of_another_database_fails_the_drill() {
    let mut world = World::new(Remote::Local);
    let live = Live::create(&mut world, Engine::Mariadb, "use_my");
    let other = MyDb::create("drilluse");
    mariadb(
        Some(&other.0),
        "CREATE TABLE o (x INT); INSERT INTO o VALUES (1);",
    );
    world.databases.push_str("compression = \"none\"\n");
    world.ok(&["dbbackup", "-d", "use_my"]);
    let backup = world.names(Some("use_my"))[0].clone();
    let dump = std::fs::read_to_string(world.store.join("db").join(&backup)).unwrap();
    let at = dump.find("DROP TABLE IF EXISTS").unwrap();
    let altered = format!(
        "{}USE `{}`;\nDROP TABLE o;\n{}",
        &dump[..at],
        other.0,
        &dump[at..]
    );
    replace_matching(&world, &backup, altered.as_bytes());
    let before = live.fingerprint();
    let r = world.run(&["drill", "-d", "use_my", "-i", &backup]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert_mentions(&r.stderr, &["only the scratch database"]);
    assert_eq!(
        mariadb(Some(&other.0), "SELECT COUNT(*) FROM o").trim(),
        "1"
    );
    assert_eq!(live.fingerprint(), before);
}

/// An option file (~/.my.cnf) with a `password=` line, common on database
/// hosts, is not read by the drill's user's clients: it would replace that
/// user's password. The drill works.
#[test]
fn an_option_file_password_does_not_break_the_drill() {
    let mut world = World::new(Remote::Local);
    let live = Live::create(&mut world, Engine::Mariadb, "cnf_my");
    let home = world.path("home");
    std::fs::create_dir_all(&home).unwrap();
    std::fs::write(
        home.join(".my.cnf"),
        "[client]\npassword=rcbackup-test-pw\n",
    )
    .unwrap();
    world.set_env("HOME", home.display().to_string());
    world.ok(&["dbbackup", "-d", "cnf_my"]);
    let (v, raw) = drill_json(&world, "cnf_my");
    assert_eq!(v["total_rows"], 112, "{raw}");
    assert_eq!(live.scratches(&world), Vec::<String>::new());
}

/// rcbackup killed with SIGKILL while the restore client is busy: the
/// client dies with it (it would go on running the backup's statements).
#[test]
fn a_killed_drill_takes_its_restore_client_with_it() {
    let mut world = World::new(Remote::Local);
    let live = Live::create(&mut world, Engine::Mariadb, "orphan_my");
    world.databases.push_str("compression = \"none\"\n");
    world.ok(&["dbbackup", "-d", "orphan_my"]);
    let backup = world.names(Some("orphan_my"))[0].clone();
    let dump = std::fs::read_to_string(world.store.join("db").join(&backup)).unwrap();
    let at = dump.find("DROP TABLE IF EXISTS").unwrap();
    let altered = format!("{}SELECT SLEEP(60);\n{}", &dump[..at], &dump[at..]);
    replace_matching(&world, &backup, altered.as_bytes());
    let mut child = world.spawn(&["drill", "-d", "orphan_my", "-i", &backup]);
    let client = |scratch: &str| -> Vec<u32> {
        std::fs::read_dir("/proc")
            .unwrap()
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
            .filter(|pid| {
                let argv = cmdline(*pid);
                argv.contains("--sandbox") && argv.contains(&format!("--database={scratch}"))
            })
            .collect()
    };
    let mut scratch = String::new();
    wait_until(30, "the restore client", || {
        if let Some(s) = live.scratches(&world).first() {
            scratch = s.clone();
        }
        !scratch.is_empty() && !client(&scratch).is_empty()
    });
    sigkill(child.id());
    let _ = child.wait();
    wait_until(10, "the restore client to die with rcbackup", || {
        client(&scratch).is_empty()
    });
    // The next drill's cleanup drops the orphan scratch database.
    let r = world.ok(&["drill", "-d", "orphan_my", "--cleanup"]);
    assert_mentions(&r.stdout, &[&scratch, "its user rcbackup_drill_"]);
    assert_eq!(live.scratches(&world), Vec::<String>::new());
    assert_eq!(drill_grants("orphan_my"), Vec::<String>::new());
}

/// `drill --cleanup` says what it leaves and why: a marked scratch
/// database that no drill of this machine made is dropped only once
/// abandoned_after_hours old, and the output says when.
#[test]
fn cleanup_says_what_it_leaves() {
    let mut world = World::new(Remote::Local);
    let alias = "leaves";
    let _live = Live::create(&mut world, Engine::Postgres, alias);
    let stamp = chrono::Utc::now().format("%Y%m%d%H%M%S");
    let foreign = format!("rcbackup_drill_{alias}_{stamp}_7_abcdef");
    psql(
        "postgres",
        &format!("DROP DATABASE IF EXISTS \"{foreign}\""),
    );
    psql("postgres", &format!("CREATE DATABASE \"{foreign}\""));
    psql(
        "postgres",
        &format!("COMMENT ON DATABASE \"{foreign}\" IS 'rcbackup drill scratch database'"),
    );
    let _guard = PgDb(foreign.clone());
    let r = world.ok(&["drill", "-d", alias, "--cleanup"]);
    assert_lacks(&r.stdout, &["nothing to remove"]);
    assert_mentions(
        &r.stdout,
        &[&format!("left {foreign}"), "abandoned_after_hours"],
    );
    let r = world.ok(&["drill", "-d", alias, "--cleanup", "--json"]);
    let v: Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["left"][0]["name"], foreign.as_str(), "{v}");
    assert!(v["left"][0]["reason"]
        .as_str()
        .unwrap()
        .contains("abandoned_after_hours"));
}

/// TMPDIR set but empty is unset: the SQLite drill's folder goes under
/// /tmp, not into the current folder.
#[test]
fn an_empty_tmpdir_is_not_the_current_folder() {
    let mut world = World::new(Remote::Local);
    let _live = Live::create(&mut world, Engine::Sqlite, "tmpdir_lite");
    world.ok(&["dbbackup", "-d", "tmpdir_lite"]);
    world.set_env("TMPDIR", String::new());
    let (v, _) = drill_json(&world, "tmpdir_lite");
    assert!(
        v["scratch"]
            .as_str()
            .unwrap()
            .starts_with("/tmp/rcbackup-drill-"),
        "{v}"
    );
    let here: Vec<String> = std::fs::read_dir(world.dir.path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("rcbackup-drill"))
        .collect();
    assert_eq!(here, Vec::<String>::new());
}
