//! `rcbackup init`: writes a commented starter config, from flags or a
//! DATABASE_URL.
//!
//! Every key the README documents is in the file: the chosen values set,
//! the others commented out with their defaults. The database's password is
//! never written nor printed: the config names the environment variable
//! that will hold it (`password_env`), or, for a URL whose query string
//! carries connection options only a URL can say (`sslmode`, ...), the
//! variable that holds the whole URL (`url_env`). init says which variable
//! to set.
//!
//! The text is parsed by the config loader before it is written, so init
//! never writes a file rcbackup refuses; the file appears whole (written
//! aside, then linked into place) and an existing one is never replaced
//! without `--force`, even by a concurrent init. It is mode 0600 whatever
//! the umask.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Result;

use crate::cli::{Cli, InitArgs};
use crate::config::{self, Config};
use crate::database::{Database, EngineKind};
use crate::errln;
use crate::exit;
use crate::output;

/// The variable a URL with query parameters is read from when it did not
/// come from one.
const URL_VAR: &str = "DATABASE_URL";

/// The `[databases.<alias>]` section init writes.
#[derive(Debug, Default, PartialEq)]
struct Section {
    engine: Option<EngineKind>,
    name: Option<String>,
    host: Option<String>,
    port: Option<u16>,
    user: Option<String>,
    /// The variable that will hold the password.
    password_env: Option<String>,
    /// The variable that holds the whole URL (query parameters).
    url_env: Option<String>,
}

pub fn run(cli: &Cli, a: &InitArgs) -> Result<()> {
    let target = match &a.output {
        Some(p) if p.as_os_str() == "-" => None,
        Some(p) => Some(p.clone()),
        None => Some(config::locate(cli.config.as_deref())),
    };
    // Relative paths in the file are relative to its folder; on stdout, to
    // the folder it will most likely be saved in: this one.
    let as_if = target
        .clone()
        .unwrap_or_else(|| PathBuf::from(config::DEFAULT_CONFIG));
    if let Some(t) = &target {
        if t.exists() && !a.force {
            return Err(exists(t));
        }
    }
    // The config's own rule, before the alias goes into a section header
    // (where `x y` would read as broken TOML) or into a URL's check.
    crate::database::check_alias(&a.alias)
        .map_err(|why| exit::usage(format!("--alias is refused: {why}; nothing was written")))?;
    let (section, from_flag_with_password) = database_section(a, &as_if)?;
    let text = render(a, &section)?;
    // What init writes, rcbackup must load: a bad --remote, --host, ...
    // is refused here, with the key, before anything is written.
    Config::parse(&text, &as_if)
        .map_err(|e| exit::with_note(e, "nothing was written; fix the flag that sets that key"))?;
    match &target {
        None => output::write(format_args!("{text}"))?,
        Some(t) => write_new(t, &text, a.force)?,
    }
    if from_flag_with_password {
        // A warning: shown with -q too.
        errln!(
            "rcbackup: warning: the password in --database-url was on rcbackup's command line, where every user of this machine can read it (ps); prefer the DATABASE_URL variable"
        );
    }
    if cli.quiet {
        return Ok(());
    }
    let written = match &target {
        Some(t) => format!("wrote {}", t.display()),
        None => "wrote the config to standard output".to_string(),
    };
    let check = match &target {
        Some(t) if cli.config.is_some() || a.output.is_some() => {
            format!("rcbackup --config {} config check", shell_word(t))
        }
        _ => "rcbackup config check".to_string(),
    };
    let secret = match (&section.password_env, &section.url_env) {
        (Some(var), _) => format!(
            "Before running rcbackup, put the database's password in the environment variable {var} (export {var}=...): it is not in the file. "
        ),
        (None, Some(var)) => format!(
            "The URL has query parameters, which only a URL carries, so the config reads the whole URL from the environment variable {var} (url_env): set {var} to it (password included) before running rcbackup. "
        ),
        (None, None) => String::new(),
    };
    errln!("rcbackup: {written}. {secret}Then check it with `{check}`.");
    Ok(())
}

fn exists(t: &Path) -> anyhow::Error {
    exit::usage(format!(
        "{} exists; init does not replace a config. Pass --force to replace it, or --output PATH to write elsewhere (--output - prints it)",
        t.display()
    ))
}

/// A path as one shell word.
fn shell_word(p: &Path) -> String {
    let s = p.display().to_string();
    if s.chars()
        .all(|c| c.is_ascii_alphanumeric() || "/._-+=,@".contains(c))
    {
        s
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

/// The database section, from flags or from a URL; and whether a password
/// came on the command line.
fn database_section(a: &InitArgs, as_if: &Path) -> Result<(Section, bool)> {
    if let Some(engine) = &a.engine {
        let engine = parse_engine(engine)?;
        let server = engine != EngineKind::Sqlite;
        return Ok((
            Section {
                engine: Some(engine),
                name: a.name.clone(),
                host: a.host.clone(),
                port: a.port,
                user: a.user.clone(),
                password_env: match &a.password_env {
                    Some(v) => Some(v.clone()),
                    None if server => Some(default_password_var(&a.alias)),
                    None => None,
                },
                url_env: None,
            },
            false,
        ));
    }
    let (url, origin) = match &a.database_url {
        Some(u) => (u.clone(), None),
        None => match std::env::var(URL_VAR) {
            Ok(u) if !u.trim().is_empty() => (u, Some(URL_VAR)),
            Ok(_) | Err(std::env::VarError::NotPresent) => {
                return Err(exit::usage(
                    "init needs the database: pass --database-url URL or set DATABASE_URL \
                     (e.g. postgres://app@127.0.0.1:5432/app), or give --engine and --name \
                     (e.g. rcbackup init --engine postgresql --name app --host 127.0.0.1 --user app)",
                ))
            }
            Err(std::env::VarError::NotUnicode(_)) => {
                return Err(exit::usage(
                    "DATABASE_URL does not hold text; set it to the database URL (e.g. postgres://app@127.0.0.1:5432/app) or pass --engine and --name",
                ))
            }
        },
    };
    let from = origin.map_or("--database-url".to_string(), |v| format!("${v}"));
    let (db, has_password) = parse_database_url(&url, &a.alias, as_if, &from)?;
    let query = has_query(&url);
    let section = if query {
        Section {
            url_env: Some(origin.unwrap_or(URL_VAR).to_string()),
            ..Section::default()
        }
    } else {
        Section {
            engine: Some(db.engine),
            name: Some(db.name.clone()),
            host: db.host.clone(),
            port: db.port,
            user: db.user.clone(),
            password_env: match &a.password_env {
                Some(v) => Some(v.clone()),
                None if has_password => Some(default_password_var(&a.alias)),
                None => None,
            },
            url_env: None,
        }
    };
    if query && a.password_env.is_some() {
        return Err(exit::usage(format!(
            "the URL in {from} has query parameters, so the config reads the whole URL (password included) from a variable (url_env): --password-env does not apply. Drop --password-env, or the query parameters"
        )));
    }
    Ok((section, has_password && a.database_url.is_some()))
}

/// Checks a DATABASE_URL exactly as the config loader checks a `url`
/// (same refusals, same words), never showing it.
fn parse_database_url(
    url: &str,
    alias: &str,
    as_if: &Path,
    from: &str,
) -> Result<(Database, bool)> {
    let text = format!(
        "remote = \"init:\"\n[databases.{}]\nurl = {}\n",
        toml_str(alias),
        toml_str(url)
    );
    let refused = |e: anyhow::Error| {
        let m = format!("{e:#}");
        let why = m
            .split_once("url`: ")
            .or_else(|| m.split_once("`: "))
            .map_or(m.as_str(), |(_, w)| w)
            .to_string();
        exit::usage(format!(
            "the database URL in {from} is refused (it is not shown: it may hold a password): {why}"
        ))
    };
    let cfg = Config::parse(&text, as_if).map_err(refused)?;
    let db = cfg.database(Some(alias)).map_err(refused)?.clone();
    let has_password = db.password()?.is_some_and(|p| !p.is_empty());
    Ok((db, has_password))
}

/// Whether a URL has a query string (connection options).
fn has_query(url: &str) -> bool {
    url.split_once("://")
        .is_some_and(|(_, rest)| rest.contains('?'))
}

fn parse_engine(s: &str) -> Result<EngineKind> {
    Ok(match s {
        "postgresql" | "postgres" => EngineKind::Postgresql,
        "postgis" => EngineKind::Postgis,
        "mysql" => EngineKind::Mysql,
        "mariadb" => EngineKind::Mariadb,
        "sqlite" => EngineKind::Sqlite,
        _ => {
            return Err(exit::usage(format!(
                "--engine `{}` is not an engine rcbackup knows; use postgresql, postgis, mysql, mariadb or sqlite",
                crate::naming::printable(s)
            )))
        }
    })
}

/// RCBACKUP_DB_PASSWORD, or RCBACKUP_<ALIAS>_DB_PASSWORD.
fn default_password_var(alias: &str) -> String {
    if alias == "default" {
        "RCBACKUP_DB_PASSWORD".to_string()
    } else {
        format!(
            "RCBACKUP_{}_DB_PASSWORD",
            alias.to_ascii_uppercase().replace('-', "_")
        )
    }
}

/// A TOML string (quoted and escaped).
fn toml_str(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

fn path_str(key: &str, p: &Path) -> Result<String> {
    p.to_str().map(toml_str).ok_or_else(|| {
        exit::usage(format!(
            "--{key} {} is not UTF-8, which a config file cannot hold; use a path of UTF-8 text",
            p.display()
        ))
    })
}

/// The file's text.
fn render(a: &InitArgs, s: &Section) -> Result<String> {
    let mut t = String::new();
    let mut line = |l: &str| {
        t.push_str(l);
        t.push('\n');
    };
    line("# rcbackup config, written by `rcbackup init`. Every key is described in the");
    line("# README (\"Config\"); a commented key shows its default or an example.");
    line("# Check it with `rcbackup config check`. Relative paths are relative to this file's folder.");
    line("");
    match &a.remote {
        Some(r) => line(&format!(
            "remote = {}   # where backups go: an rclone remote with optional path, or a local folder",
            toml_str(r)
        )),
        None => {
            line("# Where backups go: an rclone remote with optional path (e.g. \"s3:my-bucket/app\"),");
            line("# or a local folder. This one is the folder `backups` beside this file: change it.");
            line("remote = \"backups\"");
        }
    }
    line("# rclone_binary = \"rclone\"");
    line("# rclone_config = \"/etc/rclone.conf\"   # must exist; default: rclone's own");
    line("# rclone_flags = [\"--transfers\", \"4\"]   # added to every rclone call; one item per flag or value");
    line("# db_backup_dir = \"db\"");
    line("# db_filename_template = \"{database}-{datetime}.{ext}\"");
    line("# db_date_format = \"%Y-%m-%d-%H%M%S\"    # UTC");
    line("# db_cleanup_keep = 10");
    match &a.media_root {
        Some(m) => line(&format!("media_root = {}", path_str("media-root", m)?)),
        None => line("# media_root = \"/srv/app/media\""),
    }
    line("# media_backup_dir = \"media\"");
    line("# media_versions = true");
    line("# media_versions_keep = \"30d\"         # or a count, e.g. 10; default: keep all");
    line("# media_max_delete = 500               # default: no limit");
    line("# abandoned_after_hours = 24");
    line("# compression = \"zstd\"                # or \"zstd:9\", \"engine\", \"none\"");
    line("");
    line(&format!("[databases.{}]", a.alias));
    if let Some(var) = &s.url_env {
        line(&format!(
            "url_env = {}   # the NAME of the variable holding the database URL (password included)",
            toml_str(var)
        ));
    } else {
        let engine = s.engine.expect("a section without url_env has an engine");
        line(&format!(
            "engine = {}             # postgresql, postgis, mysql, mariadb, sqlite",
            toml_str(engine.as_str())
        ));
        let name = s.name.as_deref().unwrap_or_default();
        line(&format!(
            "name = {}   # {}",
            toml_str(name),
            if engine == EngineKind::Sqlite {
                "the SQLite file's path"
            } else {
                "the database name"
            }
        ));
        if engine != EngineKind::Sqlite {
            let default_port = match engine {
                EngineKind::Mysql | EngineKind::Mariadb => 3306,
                _ => 5432,
            };
            match &s.host {
                Some(h) => line(&format!("host = {}", toml_str(h))),
                None => {
                    line("# host = \"127.0.0.1\"               # default: the tools' local socket")
                }
            }
            match s.port {
                Some(p) => line(&format!("port = {p}")),
                None => line(&format!("# port = {default_port}")),
            }
            match &s.user {
                Some(u) => line(&format!("user = {}", toml_str(u))),
                None => line(
                    "# user = \"app\"                     # default: the tools' (your login name)",
                ),
            }
            match &s.password_env {
                Some(v) => line(&format!(
                    "password_env = {}   # the NAME of the variable holding the password",
                    toml_str(v)
                )),
                None => line(
                    "# password_env = \"RCBACKUP_DB_PASSWORD\"   # the NAME of the variable holding the password",
                ),
            }
        }
        line("# Instead of the keys above: url_env = \"DATABASE_URL\" (the NAME of a variable holding a DATABASE_URL)");
    }
    line("# dump_args = []                       # appended to the dump tool's arguments");
    line("# restore_args = []                    # appended to the restore tool's arguments");
    line("# compression = \"zstd\"                # this database's own, over the top-level key");
    line("");
    line("# WebAssembly policies (docs/policies.md); without them the built-in rules apply.");
    line("# [policies.retention]");
    line("# module = \"policies/keep_last.wasm\"");
    line("# config = { keep = 14 }");
    line("# [policies.naming]");
    line("# module = \"naming.wasm\"");
    line("# [policies.restore_approval]");
    line("# module = \"protected_restore.wasm\"");
    line("# [[hooks]]");
    line("# module = \"event_log.wasm\"");
    line("# on_error = \"warn\"");
    Ok(t)
}

/// A new file (never an existing one), mode 0600 whatever the umask: the
/// config names the tools rcbackup runs (`rclone_binary`), so only its
/// owner may change it.
fn new_file(path: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    // The umask can only take bits away from 0600; this gives back those a
    // stricter one took (0400 would be a config its owner cannot edit). A
    // file system that refuses it leaves the file no more open than 0600.
    let _ = f.set_permissions(std::fs::Permissions::from_mode(0o600));
    Ok(f)
}

/// Writes `text` to `path` whole: into a file beside it (mode 0600), then
/// linked into place (which fails if `path` exists, even if another init
/// made it a moment ago), or renamed over it with `force`.
fn write_new(path: &Path, text: &str, force: bool) -> Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let file_name = path
        .file_name()
        .ok_or_else(|| exit::usage(format!("{} is not a file name", path.display())))?;
    let aside = dir.join(format!(
        ".{}.rcbackup-init-{}",
        file_name.to_string_lossy(),
        std::process::id()
    ));
    let cannot = |e: std::io::Error, what: &Path| {
        exit::failed(format!(
            "cannot write {}: {e}; nothing was written",
            what.display()
        ))
    };
    let result = (|| {
        let mut f = new_file(&aside).map_err(|e| cannot(e, path))?;
        f.write_all(text.as_bytes())
            .and_then(|_| f.sync_all())
            .map_err(|e| cannot(e, path))?;
        if force {
            return std::fs::rename(&aside, path).map_err(|e| cannot(e, path));
        }
        match std::fs::hard_link(&aside, path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Err(exists(path)),
            // A file system without hard links: create it, never replace.
            Err(_) => {
                let mut f = new_file(path).map_err(|e| {
                    if e.kind() == std::io::ErrorKind::AlreadyExists {
                        exists(path)
                    } else {
                        cannot(e, path)
                    }
                })?;
                f.write_all(text.as_bytes()).map_err(|e| {
                    let _ = std::fs::remove_file(path);
                    cannot(e, path)
                })
            }
        }
    })();
    let _ = std::fs::remove_file(&aside);
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(url: Option<&str>) -> InitArgs {
        InitArgs {
            database_url: url.map(str::to_string),
            engine: None,
            name: None,
            host: None,
            port: None,
            user: None,
            password_env: None,
            alias: "default".into(),
            remote: Some("b:".into()),
            media_root: None,
            output: None,
            force: false,
        }
    }

    fn section(url: &str) -> Result<Section> {
        database_section(&args(Some(url)), Path::new("/tmp/x/rcbackup.toml")).map(|(s, _)| s)
    }

    #[test]
    fn urls_become_fields_and_a_password_variable() {
        let s = section("postgres://app%40corp:p%40ss%3Aw%2Frd@db.example:6543/my%20db").unwrap();
        assert_eq!(s.engine, Some(EngineKind::Postgresql));
        assert_eq!(s.name.as_deref(), Some("my db"));
        assert_eq!(s.host.as_deref(), Some("db.example"));
        assert_eq!(s.port, Some(6543));
        assert_eq!(s.user.as_deref(), Some("app@corp"));
        assert_eq!(s.password_env.as_deref(), Some("RCBACKUP_DB_PASSWORD"));
        // IPv6: the brackets are the URL's, not the host's.
        let s = section("mariadb://u:pw@[::1]:3307/app").unwrap();
        assert_eq!(s.engine, Some(EngineKind::Mariadb));
        assert_eq!(s.host.as_deref(), Some("::1"));
        // No password in the URL: no variable to set.
        let s = section("mysql://u@h/app").unwrap();
        assert_eq!(s.password_env, None);
        let s = section("postgis://u:pw@h/gis").unwrap();
        assert_eq!(s.engine, Some(EngineKind::Postgis));
        let s = section("sqlite:////srv/app/db.sqlite3").unwrap();
        assert_eq!(s.name.as_deref(), Some("/srv/app/db.sqlite3"));
        assert_eq!(s.password_env, None);
        // Relative: below the config file's folder.
        let s = section("sqlite:///app.db").unwrap();
        assert_eq!(s.name.as_deref(), Some("/tmp/x/app.db"));
    }

    #[test]
    fn query_parameters_keep_the_url_in_a_variable() {
        let s = section("postgres://u:pw@h/app?sslmode=require").unwrap();
        assert_eq!(
            s,
            Section {
                url_env: Some("DATABASE_URL".into()),
                ..Section::default()
            }
        );
    }

    #[test]
    fn bad_urls_are_refused_unshown() {
        for url in [
            "postgres://u:Zq9secret@h/app?bogus=1",
            "postgres://u:Zq9se#cret@h/app",
            "oracle://u:Zq9secret@h/app",
            "postgres://u:Zq9secret@h:99999/app",
            "postgres://u:Zq9secret@h",
            "postgres://u:Zq9secret@h/app?password=Zq9secret",
        ] {
            let e = section(url).unwrap_err();
            let m = format!("{e:#}");
            assert_eq!(exit::code_for(&e), exit::ExitCode::Usage, "{m}");
            assert!(!m.contains("Zq9"), "{url}: {m}");
            assert!(m.contains("--database-url"), "{m}");
        }
    }

    /// Every key the config loader knows is in the starter file (set or
    /// commented), so a key added later is not forgotten here.
    #[test]
    fn the_starter_file_names_every_key() {
        let text = render(&args(None), &section("postgres://u:pw@h/app").unwrap()).unwrap();
        let keys = |toml_text: &str, f: fn(&str) -> String| -> Vec<String> {
            let m = f(toml_text);
            let (_, list) = m.split_once("expected").expect(&m);
            list.split('`')
                .skip(1)
                .step_by(2)
                .map(str::to_string)
                .collect()
        };
        let settings = keys("zzz = 1", |t| {
            toml::from_str::<crate::config::SettingsLayer>(t)
                .unwrap_err()
                .to_string()
        });
        let db = keys("zzz = 1", |t| {
            toml::from_str::<crate::database::DatabaseSection>(t)
                .unwrap_err()
                .to_string()
        });
        assert!(settings.len() > 10 && db.len() > 8, "{settings:?} {db:?}");
        for k in settings.iter().chain(&db) {
            if k == "url" {
                continue;
            }
            assert!(
                text.lines().any(|l| {
                    let l = l.trim_start_matches("# ");
                    l.starts_with(&format!("{k} =")) || l.contains(&format!(" {k} = "))
                }),
                "`{k}` is not in the starter file:\n{text}"
            );
        }
    }
}
