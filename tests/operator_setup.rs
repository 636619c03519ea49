//! Setup help (issue 11, part D), with the real binary, rclone, PostgreSQL,
//! MariaDB and SQLite: `rcbackup init` writes a config that passes `config
//! check` and backs up with the password from the environment, and never
//! holds or prints the password; `config check` finds a missing tool, an
//! unreachable remote, a bad policy and an older pg_dump, each with its
//! exit code; completions and the man page generate and are valid.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::*;

/// The variable init names for the password of database `default`.
const INIT_PASSWORD_VAR: &str = "RCBACKUP_DB_PASSWORD";

/// `rcbackup ARGS` in `world` without DATABASE_URL, unless `env` sets it.
fn rcb(world: &World, args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut cmd = world.command(args);
    cmd.env_remove("DATABASE_URL").env_remove(INIT_PASSWORD_VAR);
    for (k, v) in env {
        cmd.env(k, v);
    }
    Run::from(cmd.output().unwrap())
}

fn config_arg(file: &Path) -> String {
    file.display().to_string()
}

/// The password in the forms it could leak in.
fn assert_no_password(what: &str, text: &str) {
    for form in [DB_PASSWORD, "rcbackup%2Dtest%2Dpw", "test-pw"] {
        assert!(
            !text.contains(form),
            "{what} holds the password ({form}):\n{text}"
        );
    }
}

/// `rcbackup --help`'s command names (all of them, whoever added them).
fn subcommands() -> Vec<String> {
    let out = Command::new(bin()).arg("--help").output().unwrap();
    let help = String::from_utf8(out.stdout).unwrap();
    let names: Vec<String> = help
        .split("Commands:")
        .nth(1)
        .expect("--help lists commands")
        .lines()
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .filter(|n| n != "help")
        .collect();
    for own in ["init", "config", "completions", "man", "dbbackup"] {
        assert!(names.iter().any(|n| n == own), "{own} not in {names:?}");
    }
    names
}

/// For each engine: `init` from DATABASE_URL (password percent-encoded)
/// writes a config without the password, which `config check` passes and
/// `dbbackup` uses with the password from the variable init names; without
/// the variable both say it is unset (exit 2).
#[test]
fn init_from_a_database_url_passes_config_check_and_backs_up_for_each_engine() {
    let mut world = World::new(Remote::Local);
    let pg = PgDb::create("setup");
    psql(&pg.0, &seed_sql(20));
    let my = MyDb::create("setup");
    mariadb(Some(&my.0), &seed_sql(20));
    let file = world.path("app.sqlite3");
    sqlite(&file, &seed_sql(20));
    // Some world config for World::command; init's goes elsewhere.
    world.sqlite("unused", &file);
    let cases = [
        (
            "postgresql",
            format!(
                "postgres://{DB_USER}:rcbackup%2Dtest%2Dpw@127.0.0.1:5432/{}",
                pg.0
            ),
            true,
        ),
        (
            "mariadb",
            format!(
                "mariadb://{DB_USER}:rcbackup%2Dtest%2Dpw@127.0.0.1:3306/{}",
                my.0
            ),
            true,
        ),
        ("sqlite", format!("sqlite:///{}", file.display()), false),
    ];
    for (engine, url, server) in cases {
        let conf = world.path(&format!("init-{engine}.toml"));
        let remote = format!("{}-{engine}", world.remote);
        let r = rcb(
            &world,
            &["init", "--remote", &remote, "--output", &config_arg(&conf)],
            &[("DATABASE_URL", &url)],
        );
        assert_eq!(r.code, 0, "{engine}: {}", r.stderr);
        let text = std::fs::read_to_string(&conf).unwrap();
        assert_no_password(&format!("{engine}: the file"), &text);
        assert_no_password(&format!("{engine}: init's output"), &r.stderr);
        assert_no_password(&format!("{engine}: init's output"), &r.stdout);
        assert!(text.contains(&format!("engine = \"{engine}\"")), "{text}");
        if server {
            assert!(
                text.contains(&format!("password_env = \"{INIT_PASSWORD_VAR}\"")),
                "{text}"
            );
            assert_mentions(&r.stderr, &[INIT_PASSWORD_VAR, "config check"]);
        } else {
            assert!(!text.contains("\npassword_env"), "{text}");
        }
        let c = config_arg(&conf);
        let pw = [(INIT_PASSWORD_VAR, DB_PASSWORD)];
        let check = rcb(&world, &["--config", &c, "config", "check"], &pw);
        assert_eq!(
            check.code, 0,
            "{engine}: {}\n{}",
            check.stdout, check.stderr
        );
        assert_mentions(
            &check.stdout,
            &[
                "ok      config",
                "ok      remote",
                "ok      database default",
            ],
        );
        assert!(!check.stdout.contains("error"), "{}", check.stdout);
        assert_no_password("config check", &(check.stdout.clone() + &check.stderr));
        let backup = rcb(&world, &["--config", &c, "dbbackup"], &pw);
        assert_eq!(backup.code, 0, "{engine}: {}", backup.stderr);
        let list = rcb(&world, &["--config", &c, "listbackups", "--json"], &[]);
        let list: Vec<serde_json::Value> = serde_json::from_str(&list.stdout).unwrap();
        assert_eq!(list.len(), 1, "{list:?}");
        assert_eq!(list[0]["status"], "ok");
        if server {
            // Without the variable: a config error naming the key, exit 2.
            let check = rcb(&world, &["--config", &c, "config", "check"], &[]);
            assert_eq!(check.code, 2, "{}\n{}", check.stdout, check.stderr);
            assert_mentions(&check.stdout, &["error   database default", "password_env"]);
            let backup = rcb(&world, &["--config", &c, "dbbackup"], &[]);
            assert_eq!(backup.code, 2, "{}", backup.stderr);
        }
    }
}

/// A URL with query parameters (only a URL carries them) is read from its
/// variable: the file says `url_env`, and the backup works with it set.
#[test]
fn init_keeps_a_url_with_query_parameters_in_its_variable() {
    let mut world = World::new(Remote::Local);
    let pg = PgDb::create("setupq");
    psql(&pg.0, &seed_sql(5));
    world.postgres("unused", &pg.0);
    let url = format!(
        "postgresql://{DB_USER}:{DB_PASSWORD}@127.0.0.1:5432/{}?sslmode=disable&application_name=rcb%20init",
        pg.0
    );
    let conf = world.path("q.toml");
    let c = config_arg(&conf);
    let r = rcb(
        &world,
        &["init", "--remote", &world.remote, "--output", &c],
        &[("DATABASE_URL", &url)],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let text = std::fs::read_to_string(&conf).unwrap();
    assert_no_password("the file", &text);
    assert!(!text.contains("sslmode"), "{text}");
    assert!(text.contains("url_env = \"DATABASE_URL\""), "{text}");
    assert_mentions(&r.stderr, &["DATABASE_URL", "url_env"]);
    assert_no_password("init's output", &r.stderr);
    let env = [("DATABASE_URL", url.as_str())];
    let check = rcb(&world, &["--config", &c, "config", "check"], &env);
    assert_eq!(check.code, 0, "{}\n{}", check.stdout, check.stderr);
    assert_no_password("config check", &check.stdout);
    let b = rcb(&world, &["--config", &c, "dbbackup"], &env);
    assert_eq!(b.code, 0, "{}", b.stderr);
}

/// From flags, to stdout: what it prints is the config (nothing else on
/// stdout), and it loads; with stdout closed it fails (exit 1) instead of
/// "succeeding" with nothing written. Odd values (an IPv6 host, quotes and
/// a backslash in a name, a user with `@`) are written as TOML strings
/// that read back as given.
#[test]
fn init_from_flags_prints_a_config_that_loads() {
    let world = World::new(Remote::Local);
    let r = rcb(
        &world,
        &[
            "init",
            "--engine",
            "postgresql",
            "--name",
            "we\"ird\\db 1",
            "--host",
            "::1",
            "--port",
            "6543",
            "--user",
            "ops@corp",
            "--remote",
            "loc:/srv/b",
            "--output",
            "-",
        ],
        &[],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let doc: toml::Table = toml::from_str(&r.stdout).unwrap();
    let db = &doc["databases"]["default"];
    assert_eq!(db["name"].as_str(), Some("we\"ird\\db 1"));
    assert_eq!(db["host"].as_str(), Some("::1"));
    assert_eq!(db["port"].as_integer(), Some(6543));
    assert_eq!(db["user"].as_str(), Some("ops@corp"));
    assert_eq!(db["password_env"].as_str(), Some(INIT_PASSWORD_VAR));
    assert_eq!(doc["remote"].as_str(), Some("loc:/srv/b"));
    // Another alias gets its own variable.
    let r = rcb(
        &world,
        &[
            "init", "--engine", "mariadb", "--name", "a", "--alias", "shop-eu", "--output", "-",
        ],
        &[],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("[databases.shop-eu]"), "{}", r.stdout);
    assert!(
        r.stdout.contains("RCBACKUP_SHOP_EU_DB_PASSWORD"),
        "{}",
        r.stdout
    );
    // Closed stdout.
    let cmd = world.command(&[]);
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "'{}' init --engine sqlite --name x.db --output - >&-",
            cmd.get_program().to_string_lossy()
        ))
        .env_remove("DATABASE_URL")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("standard output"));
}

/// An existing file is never replaced without --force (exit 2, unchanged),
/// also when several inits race for the same path: exactly one writes it,
/// whole, and nothing is left beside it.
#[test]
fn init_refuses_to_overwrite_even_racing_itself() {
    let world = World::new(Remote::Local);
    let conf = world.path("mine.toml");
    std::fs::write(&conf, "remote = \"keep:\"\n").unwrap();
    let c = config_arg(&conf);
    let args = [
        "init", "--engine", "sqlite", "--name", "app.db", "--output", &c,
    ];
    let r = rcb(&world, &args, &[]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert_mentions(&r.stderr, &["exists", "--force"]);
    assert_eq!(
        std::fs::read_to_string(&conf).unwrap(),
        "remote = \"keep:\"\n"
    );
    let mut forced = args.to_vec();
    forced.push("--force");
    let r = rcb(&world, &forced, &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(std::fs::read_to_string(&conf)
        .unwrap()
        .contains("engine = \"sqlite\""));

    // Without --config or --output: $RCBACKUP_CONFIG (World sets it), which
    // World::command has just written.
    let r = rcb(
        &world,
        &["init", "--engine", "sqlite", "--name", "a.db"],
        &[],
    );
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("rcbackup.toml exists"), "{}", r.stderr);

    let raced = world.path("raced.toml");
    let rc = config_arg(&raced);
    let children: Vec<_> = (0..6)
        .map(|i| {
            let name = format!("app{i}.db");
            let mut cmd = world.command(&[
                "init", "--engine", "sqlite", "--name", &name, "--output", &rc,
            ]);
            cmd.env_remove("DATABASE_URL")
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let codes: Vec<i32> = children
        .into_iter()
        .map(|c| c.wait_with_output().unwrap().status.code().unwrap())
        .collect();
    assert_eq!(codes.iter().filter(|c| **c == 0).count(), 1, "{codes:?}");
    assert_eq!(codes.iter().filter(|c| **c == 2).count(), 5, "{codes:?}");
    let text = std::fs::read_to_string(&raced).unwrap();
    toml::from_str::<toml::Table>(&text).unwrap();
    assert!(text.contains("on_error = \"warn\""), "cut short:\n{text}");
    let leftovers: Vec<_> = std::fs::read_dir(world.dir.path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("rcbackup-init"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

/// A URL init cannot use is refused (exit 2) without showing it, and
/// nothing is written; a password given on the command line is warned
/// about; a bad --remote is refused by the config's own rule.
#[test]
fn init_refuses_bad_urls_and_values_without_showing_them() {
    let world = World::new(Remote::Local);
    let conf = world.path("bad.toml");
    let c = config_arg(&conf);
    for url in [
        "postgres://u:Zq9se#cret@h/app",
        "oracle://u:Zq9secret@h/app",
        "postgres://u:Zq9secret@h/app?bogus=Zq9x",
        "postgres://u:Zq9secret@[::1/app",
        "sqlite:///",
    ] {
        for (how, args, env) in [
            (
                "flag",
                vec!["init", "--database-url", url, "--output", &c],
                vec![],
            ),
            (
                "variable",
                vec!["init", "--output", &c],
                vec![("DATABASE_URL", url)],
            ),
        ] {
            let r = rcb(&world, &args, &env);
            assert_eq!(r.code, 2, "{url} by {how}: {}", r.stderr);
            assert!(!r.stderr.contains("Zq9"), "{url}: {}", r.stderr);
            assert!(r.stderr.contains("database URL"), "{}", r.stderr);
            assert!(!conf.exists(), "{url}: written");
        }
    }
    // Neither a URL nor flags: what to pass.
    let r = rcb(&world, &["init", "--output", &c], &[]);
    assert_eq!(r.code, 2);
    assert_mentions(&r.stderr, &["--database-url", "DATABASE_URL", "--engine"]);
    // A password on the command line: written nowhere, but warned about.
    let r = rcb(
        &world,
        &[
            "init",
            "--database-url",
            "mysql://u:Zq9secret@db.example/app",
            "--output",
            &c,
        ],
        &[],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_mentions(&r.stderr, &["command line", "DATABASE_URL"]);
    assert!(!r.stderr.contains("Zq9"), "{}", r.stderr);
    assert!(!std::fs::read_to_string(&conf).unwrap().contains("Zq9"));
    std::fs::remove_file(&conf).unwrap();
    // The config's own rules apply to what init would write.
    let r = rcb(
        &world,
        &[
            "init",
            "--engine",
            "sqlite",
            "--name",
            "a.db",
            "--remote",
            "~/backups",
            "--output",
            &c,
        ],
        &[],
    );
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert_mentions(&r.stderr, &["remote", "~", "nothing was written"]);
    assert!(!conf.exists());
}

/// An --alias the config would refuse is refused by init with the config's
/// own rule (exit 2, nothing written), whether the database comes from
/// flags or from a URL; not as broken TOML or as a bad URL.
#[test]
fn init_refuses_an_alias_the_config_would_refuse() {
    let world = World::new(Remote::Local);
    let conf = world.path("alias.toml");
    let c = config_arg(&conf);
    for alias in ["x y", "a.b", "a]b", "", "é", "x\"y", "a\nb"] {
        for (how, args, env) in [
            (
                "flags",
                vec![
                    "init", "--engine", "sqlite", "--name", "a.db", "--alias", alias, "--output",
                    &c,
                ],
                vec![],
            ),
            (
                "url",
                vec!["init", "--alias", alias, "--output", &c],
                vec![("DATABASE_URL", "postgres://u@h/app")],
            ),
        ] {
            let r = rcb(&world, &args, &env);
            assert_eq!(r.code, 2, "{alias:?} by {how}: {}", r.stderr);
            assert_mentions(
                &r.stderr,
                &["--alias", "may only hold letters, digits, `_` and `-`"],
            );
            assert_lacks(&r.stderr, &["TOML", "database URL"]);
            assert!(!conf.exists(), "{alias:?} by {how}: written");
        }
    }
    let r = rcb(
        &world,
        &[
            "init",
            "--engine",
            "sqlite",
            "--name",
            "a.db",
            "--alias",
            "Shop_2-eu",
            "--output",
            &c,
        ],
        &[],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(std::fs::read_to_string(&conf)
        .unwrap()
        .contains("[databases.Shop_2-eu]"));
}

/// The config init writes is mode 0600 whatever the umask (000 would make
/// it 0666: anyone could set `rclone_binary`), new or replaced with
/// --force.
#[test]
fn init_writes_the_config_0600_whatever_the_umask() {
    use std::os::unix::fs::PermissionsExt;
    let world = World::new(Remote::Local);
    let conf = world.path("open.toml");
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o7777;
    let init = |force: bool| {
        let cmd = world.command(&[]);
        let out = Command::new("sh")
            .arg("-c")
            .arg(format!(
                "umask 000; exec '{}' init --engine sqlite --name a.db --output '{}' {}",
                cmd.get_program().to_string_lossy(),
                conf.display(),
                if force { "--force" } else { "" }
            ))
            .env_remove("DATABASE_URL")
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{out:?}");
    };
    init(false);
    assert_eq!(mode(&conf), 0o600, "a new config");
    std::fs::set_permissions(&conf, std::fs::Permissions::from_mode(0o666)).unwrap();
    init(true);
    assert_eq!(mode(&conf), 0o600, "a config replaced with --force");
}

/// A folder with links to `tools` only, to use as PATH.
fn path_with(world: &World, tools: &[&str]) -> PathBuf {
    let dir = world.path("only-some-tools");
    std::fs::create_dir_all(&dir).unwrap();
    for t in tools {
        let link = dir.join(t);
        if !link.exists() {
            std::os::unix::fs::symlink(which(t), link).unwrap();
        }
    }
    dir
}

/// A tool the engine needs is missing from PATH: the check names it and
/// what to install, exit 1; the other checks still run.
#[test]
fn config_check_reports_a_missing_tool() {
    let mut world = World::new(Remote::Local);
    let pg = PgDb::create("setupt");
    world.postgres("default", &pg.0);
    let my = MyDb::create("setupt");
    world.mariadb("shop", &my.0);
    let dir = path_with(&world, &["rclone", "psql", "pg_restore", "mariadb"]);
    let mut cmd = world.command(&["config", "check"]);
    cmd.env("PATH", &dir);
    let r = Run::from(cmd.output().unwrap());
    assert_eq!(r.code, 1, "{}\n{}", r.stdout, r.stderr);
    assert_mentions(
        &r.stdout,
        &[
            "ok      remote",
            "error   database default: pg_dump not found on PATH",
            "postgresql-client",
            "error   database shop: mariadb-dump or mysqldump not found on PATH",
            "mariadb-client",
        ],
    );
    assert_mentions(&r.stderr, &["2 checks failed"]);
    // No rclone at all: said, and the remote is not asked.
    let dir = world.path("no-tools");
    std::fs::create_dir_all(&dir).unwrap();
    let mut cmd = world.command(&["config", "check"]);
    cmd.env("PATH", &dir);
    let r = Run::from(cmd.output().unwrap());
    assert_eq!(r.code, 1, "{}\n{}", r.stdout, r.stderr);
    assert_mentions(
        &r.stdout,
        &["error   rclone: cannot run `rclone`", "Install rclone"],
    );
    assert!(!r.stdout.contains("remote:"), "{}", r.stdout);
}

/// The remote does not answer (its WebDAV server stopped): exit 1, quickly;
/// a remote rclone does not define: a config error, exit 2.
#[test]
fn config_check_reports_an_unreachable_or_undefined_remote() {
    let mut world = World::new(Remote::Webdav);
    world.seeded_sqlite("default", 5);
    let r = world.run(&["config", "check"]);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    world.webdav = None;
    let started = std::time::Instant::now();
    let r = world.run(&["config", "check"]);
    assert_eq!(r.code, 1, "{}\n{}", r.stdout, r.stderr);
    assert_mentions(&r.stdout, &["error   remote:", "ok      database default"]);
    assert!(started.elapsed().as_secs() < 60, "{:?}", started.elapsed());
    world.remote = "nosuch:backups".into();
    let r = world.run(&["config", "check"]);
    assert_eq!(r.code, 2, "{}\n{}", r.stdout, r.stderr);
    assert_mentions(&r.stdout, &["error   remote:", "`nosuch` ", "not defined"]);
}

/// A policy module that is not a component: a config error naming the
/// key, exit 2; the rest is still checked.
#[test]
fn config_check_reports_a_bad_policy() {
    let mut world = World::new(Remote::Local);
    world.seeded_sqlite("default", 5);
    std::fs::write(world.path("bad.wasm"), b"\0asm not really").unwrap();
    world.setting("[policies.retention]\nmodule = \"bad.wasm\"\n");
    let r = world.run(&["config", "check"]);
    assert_eq!(r.code, 2, "{}\n{}", r.stdout, r.stderr);
    assert_mentions(
        &r.stdout,
        &[
            "error   policy policies.retention",
            "bad.wasm",
            "ok      database default",
        ],
    );
    // A module that does not exist fails the config itself.
    world.settings = "[policies.retention]\nmodule = \"gone.wasm\"\n".into();
    let r = world.run(&["config", "check"]);
    assert_eq!(r.code, 2, "{}\n{}", r.stdout, r.stderr);
    assert_mentions(&r.stdout, &["error   config"]);
}

/// pg_dump older than the server: a warning with what to install, exit 0;
/// in the JSON too, whose shape is the documented one.
#[test]
fn config_check_warns_when_pg_dump_is_older_than_the_server() {
    let mut world = World::new(Remote::Local);
    let pg = PgDb::create("setupv");
    world.postgres("default", &pg.0);
    world.wrap_tool(
        "pg_dump",
        "if [ \"$1\" = --version ]; then echo 'pg_dump (PostgreSQL) 12.17'; exit 0; fi\nexec \"$REAL\" \"$@\"",
    );
    let r = world.run(&["config", "check"]);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    assert_mentions(
        &r.stdout,
        &[
            "warning database default: pg_dump is version 12, older than the server",
            "postgresql-client-",
            "(1 warning)",
        ],
    );
    let r = world.run(&["config", "check", "--json"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let doc = check_json_shape(&r.stdout);
    assert_eq!(doc["ok"], true);
    assert_eq!(doc["warnings"], 1);
    assert!(doc["checks"]
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c["status"] == "warning"
            && c["message"]
                .as_str()
                .unwrap()
                .contains("pg_dump is version 12")));
}

/// An RCLONE_<FLAG> variable standing for a flag rclone_flags may not hold
/// reaches rclone all the same: a warning naming it (not its value); a
/// secret there is where it belongs, no warning; RCLONE_RC_* is removed by
/// rcbackup, no warning.
#[test]
fn config_check_warns_about_rclone_variables_that_break_backups() {
    let mut world = World::new(Remote::Local);
    world.seeded_sqlite("default", 5);
    world.set_env("RCLONE_DRY_RUN", "true".into());
    world.set_env("RCLONE_INCLUDE", "Zq9only*".into());
    world.set_env("RCLONE_S3_SECRET_ACCESS_KEY", "Zq9secret".into());
    world.set_env("RCLONE_RC_NO_AUTH", "true".into());
    world.set_env("RCLONE_TRANSFERS", "2".into());
    let r = world.run(&["config", "check"]);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    assert_mentions(
        &r.stdout,
        &[
            "warning environment: RCLONE_DRY_RUN",
            "--dry-run",
            "warning environment: RCLONE_INCLUDE",
            "(2 warnings)",
        ],
    );
    assert_lacks(
        &r.stdout,
        &[
            "Zq9",
            "RCLONE_S3_SECRET",
            "RCLONE_RC_NO_AUTH",
            "RCLONE_TRANSFERS",
            "RCLONE_CONFIG_LOC",
        ],
    );
}

/// The documented shape of `config check --json` (docs/setup.md): one
/// object, `version` first, then config, ok, errors, warnings, checks.
fn check_json_shape(stdout: &str) -> serde_json::Value {
    let doc: serde_json::Value = serde_json::from_str(stdout).unwrap();
    let obj = doc.as_object().unwrap();
    let mut keys: Vec<(usize, &str)> = obj
        .keys()
        .map(|k| (stdout.find(&format!("\"{k}\"")).unwrap(), k.as_str()))
        .collect();
    keys.sort();
    let keys: Vec<&str> = keys.into_iter().map(|(_, k)| k).collect();
    assert_eq!(
        keys,
        ["version", "config", "ok", "errors", "warnings", "checks"]
    );
    assert_eq!(doc["version"], 1);
    let checks = doc["checks"].as_array().unwrap();
    let count = |s: &str| checks.iter().filter(|c| c["status"] == s).count();
    assert_eq!(doc["errors"], count("error"));
    assert_eq!(doc["warnings"], count("warning"));
    assert_eq!(doc["ok"], count("error") == 0);
    for c in checks {
        let o = c.as_object().unwrap();
        assert_eq!(o.len(), 3, "{c}");
        assert!(o["check"].is_string() && o["message"].is_string(), "{c}");
        assert!(
            ["ok", "warning", "error"].contains(&o["status"].as_str().unwrap()),
            "{c}"
        );
    }
    doc
}

/// With --json a failing check still prints the whole report (stdout holds
/// only the JSON), and the exit code is the same as without.
#[test]
fn config_check_json_reports_failures_too() {
    let mut world = World::new(Remote::Local);
    world.seeded_sqlite("default", 5);
    world.sqlite("gone", &world.path("missing.sqlite3"));
    let r = world.run(&["config", "check", "--json"]);
    assert_eq!(r.code, 1, "{}\n{}", r.stdout, r.stderr);
    let doc = check_json_shape(&r.stdout);
    assert_eq!(doc["ok"], false);
    assert_eq!(doc["errors"], 1);
    // A config that does not load: exit 2, and still one document.
    world.setting("db_cleanup_keep = 0");
    let r = world.run(&["config", "check", "--json"]);
    assert_eq!(r.code, 2, "{}\n{}", r.stdout, r.stderr);
    let doc = check_json_shape(&r.stdout);
    assert_eq!(doc["checks"][0]["check"], "config");
    assert!(doc["checks"][0]["message"]
        .as_str()
        .unwrap()
        .contains("db_cleanup_keep"));
}

/// Each shell's completion script generates, names every subcommand, and
/// is valid for its shell (bash -n; zsh -n and fish -n where installed).
#[test]
fn completions_generate_for_every_shell_and_name_every_command() {
    let commands = subcommands();
    for shell in ["bash", "zsh", "fish"] {
        let out = Command::new(bin())
            .args(["completions", shell])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{shell}: {out:?}");
        let script = String::from_utf8(out.stdout).unwrap();
        for c in &commands {
            assert!(script.contains(c.as_str()), "{shell}: `{c}` missing");
        }
        assert!(script.contains("policy") && script.contains("check"));
        let installed = Command::new(shell).arg("-c").arg("true").output().is_ok();
        if shell == "bash" || installed {
            let file =
                std::env::temp_dir().join(format!("rcbackup-{}.{shell}", std::process::id()));
            std::fs::write(&file, &script).unwrap();
            let syntax = Command::new(shell).arg("-n").arg(&file).output().unwrap();
            let _ = std::fs::remove_file(&file);
            assert!(
                syntax.status.success(),
                "{shell} -n: {}",
                String::from_utf8_lossy(&syntax.stderr)
            );
        }
    }
    let out = Command::new(bin())
        .args(["completions", "tcsh"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    // Nowhere to write: exit 1, never a panic; `| head -1`: no panic.
    for (args, closed) in [
        ("completions bash >&-", true),
        ("man >&-", true),
        ("config check --config /nonexistent.toml >&-", true),
        ("completions zsh | head -1", false),
        ("man | head -1", false),
    ] {
        let out = Command::new("bash")
            .arg("-c")
            .arg(format!("set -o pipefail; '{}' {args}", bin()))
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!err.contains("panicked"), "{args}: {err}");
        if closed {
            assert_eq!(out.status.code(), Some(1), "{args}: {err}");
            assert!(err.contains("standard output"), "{args}: {err}");
        } else {
            assert!(matches!(out.status.code(), Some(0 | 1)), "{args}: {out:?}");
        }
    }
}

/// The man page generates, renders with `man -l` (else groff) without a
/// warning, and names every subcommand; --dir writes one page per command,
/// each of which renders.
#[test]
fn man_page_generates_and_renders() {
    let commands = subcommands();
    let out = Command::new(bin()).arg("man").output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let page = String::from_utf8(out.stdout).unwrap();
    assert!(
        page.starts_with(".ie") || page.contains(".TH rcbackup"),
        "{page}"
    );
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("rcbackup.1");
    std::fs::write(&file, &page).unwrap();
    let text = render(&file);
    for c in &commands {
        assert!(
            text.contains(c.as_str()),
            "`{c}` not in the man page:\n{text}"
        );
    }
    let out = Command::new(bin())
        .args(["man", "--dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let listed = String::from_utf8(out.stdout).unwrap();
    for c in &commands {
        let sub = dir.path().join(format!("rcbackup-{c}.1"));
        assert!(listed.contains(&sub.display().to_string()), "{listed}");
        render(&sub);
    }
    let check = dir.path().join("rcbackup-config-check.1");
    let check = render(&check);
    assert!(check.contains("json") && check.contains("Exit"), "{check}");
    let out = Command::new(bin())
        .args(["man", "--dir"])
        .arg(dir.path().join("missing"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
}

/// A page as text, by `man -l` or groff; fails on an error or warning.
fn render(page: &Path) -> String {
    let out = if Command::new("man").arg("--version").output().is_ok() {
        Command::new("man")
            .arg("-l")
            .arg(page)
            .env("MANPAGER", "cat")
            .env("MANWIDTH", "100")
            .env("MAN_KEEP_FORMATTING", "0")
            .output()
            .unwrap()
    } else {
        Command::new("groff")
            .args(["-man", "-Tutf8", "-ww", "-z"])
            .arg(page)
            .output()
            .unwrap()
    };
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && err.trim().is_empty(),
        "{}: {err}",
        page.display()
    );
    // Without a terminal man still overstrikes bold text (`x\bx`).
    let text = String::from_utf8_lossy(&out.stdout);
    let mut plain = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if chars.peek() == Some(&'\u{8}') {
            chars.next();
        } else {
            plain.push(c);
        }
    }
    plain
}
