//! Config values a new user gets wrong, tried with the real binary, rclone
//! and SQLite (issue 8): rclone flags that fight rcbackup's own, relative
//! paths run from another folder, a remote rclone does not know, log flags
//! against RCBACKUP_LOG, and django-dbbackup's `--noinput` on `dbbackup`.

mod common;

use common::*;

/// A SQLite world whose config names its database relative to the config
/// file's folder.
fn relative_world() -> World {
    let mut w = World::new(Remote::Local);
    sqlite(&w.path("app.sqlite3"), &seed_sql(50));
    w.databases
        .push_str("[databases.default]\nengine = \"sqlite\"\nname = \"app.sqlite3\"\n");
    w
}

/// Item 5: flags that conflict with the ones rcbackup sets are refused when
/// the config loads, naming the flag and the reason, before any upload.
/// Before the fix `-v` and `--log-level` uploaded the whole dump and then
/// failed ("Can't set -v and --log-level"), and mediabackup failed with
/// "Failed to seek log file".
#[test]
fn rclone_flags_that_fight_rcbackup_are_refused_at_load() {
    for flags in [
        r#"["-v"]"#,
        r#"["-q"]"#,
        r#"["--log-level", "INFO"]"#,
        r#"["--retries", "1", "--log-level=DEBUG"]"#,
        r#"["-vv"]"#,
        r#"["--dry-run"]"#,
        r#"["-P"]"#,
        r#"["--config", "/etc/rclone.conf"]"#,
        r#"["--exclude", "*.tmp"]"#,
        r#"["--retries 1"]"#,
    ] {
        let mut w = relative_world();
        let root = w.path("media");
        std::fs::create_dir_all(&root).unwrap();
        std::fs::write(root.join("a.txt"), "a").unwrap();
        w.setting("media_root = \"media\"");
        w.setting(&format!("rclone_flags = {flags}"));
        for cmd in [&["dbbackup"][..], &["mediabackup"], &["listbackups"]] {
            let r = w.run(cmd);
            assert_eq!(r.code, 2, "{flags} {cmd:?}: {}", r.stderr);
            assert_mentions(&r.stderr, &["rclone_flags"]);
            assert!(
                r.stderr.lines().count() <= 2,
                "{flags}: one message, not rclone's log:\n{}",
                r.stderr
            );
        }
        assert!(
            w.stored_files().is_empty(),
            "{flags}: something was uploaded: {:?}",
            w.stored_files()
        );
    }
    // Flags that only tune rclone are taken, and the backup works with them.
    let mut w = relative_world();
    w.setting(r#"rclone_flags = ["--retries", "1", "--low-level-retries=2", "--checksum", "--transfers", "4"]"#);
    w.ok(&["dbbackup"]);
    assert_eq!(w.names(None).len(), 1);
}

/// Item 7: run from `/`, relative paths still mean the config file's
/// folder (before the fix `media_root = "media"` became `/media` and the
/// SQLite name was looked up in `/`).
#[test]
fn relative_paths_follow_the_config_file_from_any_working_directory() {
    let mut w = relative_world();
    let root = w.path("media");
    std::fs::create_dir_all(&root).unwrap();
    std::fs::write(root.join("photo.jpg"), "jpeg").unwrap();
    std::fs::write(w.path("rclone.conf"), "").unwrap();
    w.setting("media_root = \"media\"");
    w.setting("rclone_config = \"rclone.conf\"");
    for args in [&["dbbackup"][..], &["mediabackup"]] {
        let out = w.command(args).current_dir("/").output().unwrap();
        let r = Run::from(out);
        assert_eq!(r.code, 0, "{args:?} from /: {}", r.stderr);
    }
    assert_eq!(w.names(None).len(), 1);
    assert_eq!(
        std::fs::read(w.store.join("media/photo.jpg")).unwrap(),
        b"jpeg"
    );
}

/// Item 6: an rclone_config that does not exist was ignored (rclone fell
/// back to its default config); it is a config error naming the file.
#[test]
fn a_missing_rclone_config_is_a_config_error() {
    let mut w = relative_world();
    w.setting("rclone_config = \"no-such-rclone.conf\"");
    let r = w.run(&["listbackups"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert_mentions(
        &r.stderr,
        &[
            "rclone_config",
            &w.path("no-such-rclone.conf").display().to_string(),
            "does not exist",
        ],
    );
}

/// Item 8: a remote missing from rclone's config. The cause was buried
/// after rclone's NOTICE lines; now the first line names the remote, the
/// rclone config file, and the fix, and it is a config error (exit 2).
#[test]
fn a_remote_missing_from_rclone_config_is_named_with_the_fix() {
    let mut w = relative_world();
    let conf = w.path("rclone.conf");
    std::fs::write(&conf, "[other]\ntype = local\n").unwrap();
    w.setting("rclone_config = \"rclone.conf\"");
    w.remote = "nosuch:backups".into();
    for args in [
        &["listbackups"][..],
        &["dbbackup"],
        &["dbrestore", "--noinput"],
    ] {
        let r = w.run(args);
        assert_eq!(r.code, 2, "{args:?}: {}", r.stderr);
        let first = r.stderr.lines().next().unwrap_or_default();
        assert_mentions(
            first,
            &["`nosuch`", &conf.display().to_string(), "rclone config"],
        );
        assert_lacks(&r.stderr, &["NOTICE", "WARN"]);
    }
    // A remote that is defined but fails for another reason is not called
    // missing.
    let mut w = World::new(Remote::Webdav);
    w.seeded_sqlite("default", 5);
    w.webdav = None;
    w.setting(r#"rclone_flags = ["--retries", "1", "--low-level-retries", "1"]"#);
    let r = w.run(&["listbackups"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert_lacks(&r.stderr, &["not defined in rclone's config"]);
}

/// Item 11: -q and -v win over RCBACKUP_LOG (before, RCBACKUP_LOG=debug
/// silently overrode -q).
#[test]
fn log_flags_win_over_rcbackup_log() {
    let w = relative_world();
    let quiet = Run::from(
        w.command(&["-q", "dbbackup"])
            .env("RCBACKUP_LOG", "debug")
            .output()
            .unwrap(),
    );
    assert_eq!(quiet.code, 0, "{}", quiet.stderr);
    assert_eq!(quiet.stderr, "", "-q must leave only warnings and errors");
    let plain = Run::from(
        w.command(&["dbbackup"])
            .env("RCBACKUP_LOG", "debug")
            .output()
            .unwrap(),
    );
    assert_mentions(&plain.stderr, &["DEBUG"]);
    let help = w.ok(&["--help"]).stdout;
    assert_mentions(&help, &["RCBACKUP_LOG"]);
    // A filter that does not parse was ignored without a word.
    let bad = Run::from(
        w.command(&["listbackups"])
            .env("RCBACKUP_LOG", "rcbackup=[")
            .output()
            .unwrap(),
    );
    assert_eq!(bad.code, 0, "{}", bad.stderr);
    assert_mentions(
        &bad.stderr,
        &["RCBACKUP_LOG is not a log filter", "RCBACKUP_LOG=debug"],
    );
}

/// Item 23: django-dbbackup's `dbbackup --noinput` (and `mediabackup
/// --noinput`) are taken (a no-op), so that scripts written for it keep
/// working; before, clap refused them with exit 2.
#[test]
fn dbbackup_takes_noinput() {
    let mut w = relative_world();
    w.ok(&["dbbackup", "--noinput"]);
    assert_eq!(w.names(None).len(), 1);
    let root = w.path("media");
    std::fs::create_dir_all(&root).unwrap();
    std::fs::write(root.join("a.txt"), "a").unwrap();
    w.setting("media_root = \"media\"");
    w.ok(&["mediabackup", "--noinput"]);
}

/// From the outside review (issue 8): a relative local `remote` followed
/// the working directory, so cron and a shell saw two different stores;
/// `--dry-run` said exit 0 where the real run stops at once (an unset
/// password variable, a missing SQLite file); rclone flags and dump
/// arguments could put credentials into logs and onto command lines.
#[test]
fn review_findings_on_config_values_hold() {
    // One store, whatever folder the run starts from.
    let mut w = relative_world();
    w.remote = "relative/store".into();
    let sub = w.path("sub");
    std::fs::create_dir_all(&sub).unwrap();
    for from in [w.dir.path().to_path_buf(), sub.clone(), "/".into()] {
        let r = Run::from(
            w.command(&["dbbackup"])
                .current_dir(&from)
                .output()
                .unwrap(),
        );
        assert_eq!(r.code, 0, "from {}: {}", from.display(), r.stderr);
    }
    assert!(
        !sub.join("relative").exists(),
        "a second store below the working folder"
    );
    let listed = Run::from(
        w.command(&["listbackups", "--json"])
            .current_dir("/")
            .output()
            .unwrap(),
    );
    assert_eq!(listed.code, 0, "{}", listed.stderr);
    let entries: serde_json::Value = serde_json::from_str(&listed.stdout).unwrap();
    assert_eq!(
        entries.as_array().map(Vec::len),
        Some(3),
        "{}",
        listed.stdout
    );
    w.remote = "~/backups".into();
    let r = w.run(&["listbackups"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert_mentions(&r.stderr, &["remote", "absolute path"]);

    // --dry-run stops where the real run would.
    let mut w = relative_world();
    w.databases.push_str(
        "[databases.pg]\nengine = \"postgresql\"\nname = \"app\"\nhost = \"127.0.0.1\"\npassword_env = \"RCBACKUP_TEST_SURELY_UNSET\"\n\
         [databases.gone]\nengine = \"sqlite\"\nname = \"missing.sqlite3\"\n",
    );
    for (alias, code, says) in [("pg", 2, "password_env"), ("gone", 1, "does not exist")] {
        for args in [
            &["dbbackup", "-d", alias, "--dry-run"][..],
            &["dbbackup", "-d", alias],
        ] {
            let r = w.run(args);
            assert_eq!(r.code, code, "{args:?}: {}", r.stderr);
            assert_mentions(&r.stderr, &[says]);
        }
    }
    assert!(w.stored_files().is_empty());

    // Credentials never reach a log or a command line through the config.
    for (line, key) in [
        (r#"rclone_flags = ["--dump", "auth"]"#, "rclone_flags"),
        (
            r#"rclone_flags = ["--crypt-password", "Zq9Secret"]"#,
            "rclone_flags",
        ),
        (r#"rclone_flags = ["--fast-list", ""]"#, "rclone_flags"),
    ] {
        let mut w = relative_world();
        w.setting(line);
        let r = w.run(&["-v", "dbbackup"]);
        assert_eq!(r.code, 2, "{line}: {}", r.stderr);
        assert_mentions(&r.stderr, &[key]);
        assert_lacks(&r.stderr, &["Zq9Secret"]);
    }
    let mut w = relative_world();
    w.remote = ":webdav,url='http://127.0.0.1:9',user=u,pass=Zq9Obscured:cs".into();
    let r = w.run(&["-v", "listbackups", "--json"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert_lacks(&format!("{}{}", r.stdout, r.stderr), &["Zq9Obscured"]);
    let mut w = World::new(Remote::Local);
    w.databases.push_str(
        "[databases.default]\nengine = \"mysql\"\nname = \"app\"\ndump_args = [\"--password=Zq9Dump\"]\n",
    );
    let r = w.run(&["-v", "dbbackup"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert_mentions(&r.stderr, &["dump_args", "password_env"]);
    assert_lacks(&r.stderr, &["Zq9Dump"]);
}
