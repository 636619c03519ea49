//! The config file: where it is found, what it may contain, and the checks
//! that turn a mistake into an error naming the file, the key and the fix.
//!
//! The top-level keys keep django-rclone's setting names (lower-cased). They
//! are gathered in [`Settings`] so that a later `[tenants.<name>]` section can
//! override any of them for one tenant by merging a second layer of the same
//! keys over the first (see [`SettingsLayer`]).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Result;
use serde::Deserialize;

use crate::database::{Database, DatabaseSection};
use crate::exit;
use crate::media::VersionsKeep;
use crate::naming::{DateFormat, FilenameTemplate};
use crate::policy::config::{HookSection, PoliciesSection, PolicyConfig};

pub const CONFIG_ENV: &str = "RCBACKUP_CONFIG";
pub const DEFAULT_CONFIG: &str = "rcbackup.toml";

/// The keys a tenant section may override. Every field is optional; the
/// defaults are applied once all layers are merged.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SettingsLayer {
    pub remote: Option<String>,
    pub rclone_binary: Option<String>,
    pub rclone_config: Option<PathBuf>,
    pub rclone_flags: Option<Vec<String>>,
    pub db_backup_dir: Option<String>,
    pub db_filename_template: Option<String>,
    pub db_date_format: Option<String>,
    pub db_cleanup_keep: Option<i64>,
    pub media_root: Option<PathBuf>,
    pub media_backup_dir: Option<String>,
    pub media_versions: Option<bool>,
    pub media_versions_keep: Option<toml::Value>,
    pub media_max_delete: Option<i64>,
    pub abandoned_after_hours: Option<i64>,
}

impl SettingsLayer {
    /// `over` wins where it sets a key.
    pub fn merged(&self, over: &SettingsLayer) -> SettingsLayer {
        fn pick<T: Clone>(base: &Option<T>, over: &Option<T>) -> Option<T> {
            over.clone().or_else(|| base.clone())
        }
        SettingsLayer {
            remote: pick(&self.remote, &over.remote),
            rclone_binary: pick(&self.rclone_binary, &over.rclone_binary),
            rclone_config: pick(&self.rclone_config, &over.rclone_config),
            rclone_flags: pick(&self.rclone_flags, &over.rclone_flags),
            db_backup_dir: pick(&self.db_backup_dir, &over.db_backup_dir),
            db_filename_template: pick(&self.db_filename_template, &over.db_filename_template),
            db_date_format: pick(&self.db_date_format, &over.db_date_format),
            db_cleanup_keep: pick(&self.db_cleanup_keep, &over.db_cleanup_keep),
            media_root: pick(&self.media_root, &over.media_root),
            media_backup_dir: pick(&self.media_backup_dir, &over.media_backup_dir),
            media_versions: pick(&self.media_versions, &over.media_versions),
            media_versions_keep: pick(&self.media_versions_keep, &over.media_versions_keep),
            media_max_delete: pick(&self.media_max_delete, &over.media_max_delete),
            abandoned_after_hours: pick(&self.abandoned_after_hours, &over.abandoned_after_hours),
        }
    }
}

/// The largest `abandoned_after_hours`: 100 years. More would overflow the
/// time arithmetic of cleanup (and no upload runs that long).
pub const MAX_ABANDONED_AFTER_HOURS: i64 = 876_000;

/// The sections of the file beside the top-level settings.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Sections {
    #[serde(default)]
    databases: BTreeMap<String, DatabaseSection>,
    #[serde(default)]
    policies: PoliciesSection,
    #[serde(default)]
    hooks: Vec<HookSection>,
}

/// Top-level keys that open a section rather than set a setting.
const SECTION_KEYS: [&str; 3] = ["databases", "policies", "hooks"];

/// Settings with defaults applied and every value checked.
#[derive(Debug, Clone)]
pub struct Settings {
    pub remote: String,
    pub rclone_binary: String,
    pub rclone_config: Option<PathBuf>,
    pub rclone_flags: Vec<String>,
    pub db_backup_dir: String,
    pub db_filename_template: FilenameTemplate,
    pub db_date_format: DateFormat,
    pub db_cleanup_keep: usize,
    pub media_root: Option<PathBuf>,
    pub media_backup_dir: String,
    /// Keep what a media sync overwrites or deletes in dated version folders.
    pub media_versions: bool,
    /// How many media backups (or how long) stay restorable with `--at`;
    /// `None` keeps every version folder.
    pub media_versions_keep: Option<VersionsKeep>,
    /// A media sync that would delete more files than this stops.
    pub media_max_delete: Option<u64>,
    /// A leftover of an interrupted upload older than this is removed by
    /// cleanup; a younger one may still be an upload in progress.
    pub abandoned_after: Duration,
}

/// The loaded config.
#[derive(Debug, Clone)]
pub struct Config {
    pub path: PathBuf,
    pub settings: Settings,
    pub databases: BTreeMap<String, Database>,
    /// `[policies]` and `[[hooks]]`: empty means the built-in behaviour.
    pub policies: PolicyConfig,
}

/// Which file to read: `--config`, else `$RCBACKUP_CONFIG`, else `./rcbackup.toml`.
pub fn locate(flag: Option<&Path>) -> PathBuf {
    if let Some(p) = flag {
        return p.to_path_buf();
    }
    match std::env::var_os(CONFIG_ENV) {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => PathBuf::from(DEFAULT_CONFIG),
    }
}

impl Config {
    pub fn load(path: &Path) -> Result<Config> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            exit::usage(format!(
                "cannot read config file {}: {e}. Pass --config PATH, set {CONFIG_ENV}, \
                 or create ./{DEFAULT_CONFIG} (see README, \"Config\")",
                path.display()
            ))
        })?;
        Config::parse(&text, path)
    }

    pub fn parse(text: &str, path: &Path) -> Result<Config> {
        let syntax = |e: toml::de::Error| {
            exit::usage(format!(
                "config file {}: {}",
                path.display(),
                e.to_string().trim_end()
            ))
        };
        // Settings and sections are read separately (serde's flatten would
        // lose the key names in error messages).
        let mut table: toml::Table = toml::from_str(text).map_err(syntax)?;
        let mut sections = toml::Table::new();
        for key in SECTION_KEYS {
            if let Some(v) = table.remove(key) {
                sections.insert(key.to_string(), v);
            }
        }
        let bad = |key: &str, why: String| {
            exit::usage(format!(
                "config file {}: key `{key}`: {why}",
                path.display()
            ))
        };
        let layer: SettingsLayer = typed(table, path)?;
        let sections: Sections = typed(sections, path)?;
        // Every relative path in the file is relative to the file's folder.
        let config_dir = config_dir(path);
        let settings = Settings::resolve(&layer, &config_dir).map_err(|(k, why)| bad(k, why))?;
        let mut databases = BTreeMap::new();
        for (alias, section) in sections.databases {
            let mut db = Database::from_section(&alias, section)
                .map_err(|(k, why)| bad(&format!("databases.{alias}.{k}"), why))?;
            if db.engine == crate::database::EngineKind::Sqlite {
                db.name = below(&config_dir, &db.name)
                    .map_err(|why| bad(&format!("databases.{alias}.name"), why))?;
            }
            databases.insert(alias, db);
        }
        let policies = PolicyConfig::resolve(&sections.policies, &sections.hooks, &config_dir)
            .map_err(|(k, why)| bad(&k, why))?;
        Ok(Config {
            path: path.to_path_buf(),
            settings,
            databases,
            policies,
        })
    }

    /// The database for `-d ALIAS`, or the only/"default" one without it.
    pub fn database(&self, alias: Option<&str>) -> Result<&Database> {
        if let Some(a) = alias {
            return self.databases.get(a).ok_or_else(|| {
                exit::usage(format!(
                    "no database `{a}` in {}; configured: {}. Add a [databases.{a}] section or pick one of those",
                    self.path.display(),
                    self.aliases()
                ))
            });
        }
        match self.databases.len() {
            0 => Err(exit::usage(format!(
                "no databases in {}; add a [databases.default] section",
                self.path.display()
            ))),
            1 => Ok(self.databases.values().next().expect("one database")),
            _ => self.databases.get("default").ok_or_else(|| {
                exit::usage(format!(
                    "several databases are configured ({}); choose one with -d/--database",
                    self.aliases()
                ))
            }),
        }
    }

    fn aliases(&self) -> String {
        let names: Vec<&str> = self.databases.keys().map(String::as_str).collect();
        if names.is_empty() {
            "none".into()
        } else {
            names.join(", ")
        }
    }
}

type KeyError = (&'static str, String);

/// The folder of the config file, absolute: the base of every relative path
/// in it, whatever the working directory.
fn config_dir(path: &Path) -> PathBuf {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf())
}

/// `value` as a path: absolute as written, relative below `base`.
fn below_path(base: &Path, value: &Path) -> PathBuf {
    if value.is_absolute() {
        value.to_path_buf()
    } else {
        base.join(value)
    }
}

/// [`below_path`] for a path held as text (a SQLite `name`, `rclone_binary`).
fn below(base: &Path, value: &str) -> std::result::Result<String, String> {
    let p = below_path(base, Path::new(value));
    p.to_str().map(str::to_string).ok_or_else(|| {
        format!(
            "`{value}` is relative to the config file's folder {}, whose path is not UTF-8; write it as an absolute path",
            base.display()
        )
    })
}

/// Deserializes a table, naming the key at fault on error.
fn typed<T: serde::de::DeserializeOwned>(table: toml::Table, path: &Path) -> Result<T> {
    serde_path_to_error::deserialize(toml::Value::Table(table)).map_err(|e| {
        let at = e.path().to_string();
        let why = e.into_inner().message().trim_end().to_string();
        if at == "." {
            exit::usage(format!("config file {}: {why}", path.display()))
        } else {
            exit::usage(format!("config file {}: key `{at}`: {why}", path.display()))
        }
    })
}

impl Settings {
    /// Applies the defaults and checks every value; relative paths are made
    /// absolute below `base`, the config file's folder.
    pub fn resolve(layer: &SettingsLayer, base: &Path) -> std::result::Result<Settings, KeyError> {
        let remote = layer
            .remote
            .clone()
            .ok_or(("remote", "is required: the rclone remote to back up to, e.g. remote = \"s3:bucket/app\" or \"backups:\"".to_string()))?;
        if remote.trim().is_empty() {
            return Err((
                "remote",
                "is empty; name an rclone remote such as \"backups:\"".into(),
            ));
        }
        let keep = layer.db_cleanup_keep.unwrap_or(10);
        if keep < 1 {
            return Err((
                "db_cleanup_keep",
                format!("is {keep}, which would delete every backup including the new one; set 1 or more"),
            ));
        }
        let hours = layer.abandoned_after_hours.unwrap_or(24);
        if !(1..=MAX_ABANDONED_AFTER_HOURS).contains(&hours) {
            return Err((
                "abandoned_after_hours",
                format!(
                    "is {hours}; set 1 or more so that uploads in progress are never removed, \
                     and at most {MAX_ABANDONED_AFTER_HOURS} (100 years), e.g. abandoned_after_hours = 24"
                ),
            ));
        }
        let db_backup_dir = dir_key("db_backup_dir", layer.db_backup_dir.as_deref(), "db")?;
        let media_backup_dir = dir_key(
            "media_backup_dir",
            layer.media_backup_dir.as_deref(),
            "media",
        )?;
        media_dirs_apart(&db_backup_dir, &media_backup_dir)?;
        let media_versions_keep = layer
            .media_versions_keep
            .as_ref()
            .map(VersionsKeep::from_toml)
            .transpose()
            .map_err(|e| ("media_versions_keep", e))?;
        let media_max_delete = match layer.media_max_delete {
            Some(n) if n < 0 => {
                return Err((
                    "media_max_delete",
                    format!("is {n}; set 0 or more (0 lets a media backup delete nothing), or leave it out for no limit"),
                ))
            }
            n => n.map(|n| n as u64),
        };
        let template = FilenameTemplate::parse(
            layer
                .db_filename_template
                .as_deref()
                .unwrap_or(FilenameTemplate::DEFAULT),
        )
        .map_err(|e| ("db_filename_template", e))?;
        let date_format = DateFormat::parse(
            layer
                .db_date_format
                .as_deref()
                .unwrap_or(DateFormat::DEFAULT),
        )
        .map_err(|e| ("db_date_format", e))?;
        let rclone_binary = layer
            .rclone_binary
            .clone()
            .unwrap_or_else(|| "rclone".into());
        if rclone_binary.trim().is_empty() {
            return Err((
                "rclone_binary",
                "is empty; leave it out to use `rclone` from PATH".into(),
            ));
        }
        // A bare program name is looked up on PATH; a path is a path.
        let rclone_binary = if rclone_binary.contains('/') {
            below(base, &rclone_binary).map_err(|e| ("rclone_binary", e))?
        } else {
            rclone_binary
        };
        let rclone_config = match &layer.rclone_config {
            None => None,
            Some(c) => {
                let file = below_path(base, c);
                if !file.is_file() {
                    return Err((
                        "rclone_config",
                        format!(
                            "names {}, which {}; rclone would silently use its default config instead. \
                             Fix the path (relative paths are relative to the config file's folder), or leave the key out to use rclone's default",
                            file.display(),
                            if file.exists() { "is not a file" } else { "does not exist" }
                        ),
                    ));
                }
                Some(file)
            }
        };
        let media_root = layer.media_root.as_deref().map(|m| below_path(base, m));
        let rclone_flags = layer.rclone_flags.clone().unwrap_or_default();
        crate::rclone::check_flags(&rclone_flags).map_err(|e| ("rclone_flags", e))?;
        Ok(Settings {
            remote,
            rclone_binary,
            rclone_config,
            rclone_flags,
            db_backup_dir,
            db_filename_template: template,
            db_date_format: date_format,
            db_cleanup_keep: usize::try_from(keep).map_err(|_| {
                (
                    "db_cleanup_keep",
                    format!("is {keep}, more than this machine can count; set a smaller number such as 10"),
                )
            })?,
            media_root,
            media_backup_dir,
            media_versions: layer.media_versions.unwrap_or(true),
            media_versions_keep,
            media_max_delete,
            // In range (checked above): at most 876000 * 3600 seconds.
            abandoned_after: Duration::from_secs(hours.unsigned_abs() * 3600),
        })
    }
}

/// A folder below the remote: relative, no `..`, no empty segments.
fn dir_key(
    key: &'static str,
    value: Option<&str>,
    default: &str,
) -> std::result::Result<String, KeyError> {
    let v = value.unwrap_or(default).trim_matches('/');
    if v.is_empty() || v.split('/').any(|s| s.is_empty() || s == "." || s == "..") {
        return Err((
            key,
            format!("`{}` is not a plain folder path below the remote; use something like \"{default}\"", value.unwrap_or(default)),
        ));
    }
    Ok(v.to_string())
}

/// The media mirror, its version folders and the database backups must not
/// contain one another: a media sync deletes whatever its folder holds that
/// the media root lacks.
fn media_dirs_apart(db_dir: &str, media_dir: &str) -> std::result::Result<(), KeyError> {
    let versions = crate::media::versions_dir(media_dir);
    let inside = |a: &str, b: &str| a == b || a.starts_with(&format!("{b}/"));
    for (other, what) in [
        (media_dir, "the media mirror"),
        (versions.as_str(), "the media version folder"),
    ] {
        if inside(db_dir, other) || inside(other, db_dir) {
            return Err((
                "media_backup_dir",
                format!("{what} `{other}` overlaps db_backup_dir `{db_dir}`; a media backup would delete or mix up the database backups. Choose folders side by side, e.g. media_backup_dir = \"media\" and db_backup_dir = \"db\""),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exit::{code_for, ExitCode};

    fn err(text: &str) -> String {
        let e = Config::parse(text, Path::new("x.toml")).unwrap_err();
        assert_eq!(code_for(&e), ExitCode::Usage);
        format!("{e:#}")
    }

    #[test]
    fn defaults_apply() {
        let c = Config::parse(
            "remote = \"b:\"\n[databases.default]\nengine = \"sqlite\"\nname = \"x.db\"\n",
            Path::new("x.toml"),
        )
        .unwrap();
        assert_eq!(c.settings.db_cleanup_keep, 10);
        assert_eq!(c.settings.db_backup_dir, "db");
        assert_eq!(c.settings.rclone_binary, "rclone");
    }

    #[test]
    fn unknown_key_names_it() {
        let m = err("remote = \"b:\"\nremot = 1\n");
        assert!(m.contains("remot"), "{m}");
        assert!(m.contains("x.toml"), "{m}");
    }

    #[test]
    fn missing_remote_is_explained() {
        let m = err("db_cleanup_keep = 3\n");
        assert!(m.contains("`remote`") && m.contains("required"), "{m}");
    }

    #[test]
    fn keep_zero_rejected() {
        let m = err("remote = \"b:\"\ndb_cleanup_keep = 0\n");
        assert!(m.contains("db_cleanup_keep"), "{m}");
    }

    #[test]
    fn bad_date_format_rejected_at_load() {
        let m = err("remote = \"b:\"\ndb_date_format = \"%Q\"\n");
        assert!(m.contains("db_date_format"), "{m}");
        let m = err("remote = \"b:\"\ndb_date_format = \"%H%M\"\n");
        assert!(m.contains("db_date_format"), "{m}");
    }

    #[test]
    fn wrong_type_names_key() {
        let m = err("remote = \"b:\"\ndb_cleanup_keep = \"ten\"\n");
        assert!(m.contains("db_cleanup_keep"), "{m}");
    }

    #[test]
    fn database_errors_name_section() {
        let m = err("remote = \"b:\"\n[databases.main]\nengine = \"oracle\"\nname = \"x\"\n");
        assert!(m.contains("databases.main"), "{m}");
        let m = err("remote = \"b:\"\n[databases.main]\nengine = \"sqlite\"\nname = \"x\"\npasword_env = \"P\"\n");
        assert!(m.contains("pasword_env"), "{m}");
    }

    #[test]
    fn media_defaults() {
        let c = Config::parse("remote = \"b:\"\n", Path::new("x.toml")).unwrap();
        assert!(c.settings.media_versions);
        assert_eq!(c.settings.media_versions_keep, None);
        assert_eq!(c.settings.media_max_delete, None);
    }

    #[test]
    fn media_versions_keep_forms() {
        let keep = |v: &str| {
            Config::parse(
                &format!("remote = \"b:\"\nmedia_versions_keep = {v}\n"),
                Path::new("x.toml"),
            )
            .unwrap()
            .settings
            .media_versions_keep
        };
        assert_eq!(keep("7"), Some(VersionsKeep::Count(7)));
        assert_eq!(
            keep("\"30d\""),
            Some(VersionsKeep::Age(Duration::from_secs(30 * 86400)))
        );
        assert_eq!(
            keep("\"2w\""),
            Some(VersionsKeep::Age(Duration::from_secs(14 * 86400)))
        );
        assert_eq!(
            keep("\"12h\""),
            Some(VersionsKeep::Age(Duration::from_secs(12 * 3600)))
        );
        for bad in [
            "0",
            "-1",
            "\"30\"",
            "\"d\"",
            "\"0d\"",
            "\"30 days\"",
            "1.5",
            "true",
        ] {
            let m = err(&format!("remote = \"b:\"\nmedia_versions_keep = {bad}\n"));
            assert!(m.contains("media_versions_keep"), "{bad}: {m}");
        }
    }

    #[test]
    fn media_max_delete_and_versions_checked() {
        let m = err("remote = \"b:\"\nmedia_max_delete = -1\n");
        assert!(m.contains("media_max_delete"), "{m}");
        let m = err("remote = \"b:\"\nmedia_versions = \"yes\"\n");
        assert!(m.contains("media_versions"), "{m}");
        let c = Config::parse(
            "remote = \"b:\"\nmedia_max_delete = 0\nmedia_versions = false\n",
            Path::new("x.toml"),
        )
        .unwrap();
        assert_eq!(c.settings.media_max_delete, Some(0));
        assert!(!c.settings.media_versions);
    }

    #[test]
    fn media_dir_must_not_overlap() {
        for text in [
            "media_backup_dir = \"backups\"\ndb_backup_dir = \"backups/db\"",
            "media_backup_dir = \"db\"",
            "media_backup_dir = \"x/media\"\ndb_backup_dir = \"x\"",
            "db_backup_dir = \"media-versions\"",
        ] {
            let m = err(&format!("remote = \"b:\"\n{text}\n"));
            assert!(
                m.contains("media_backup_dir") && m.contains("overlaps"),
                "{m}"
            );
        }
        Config::parse(
            "remote = \"b:\"\nmedia_backup_dir = \"media\"\ndb_backup_dir = \"media-db\"\n",
            Path::new("x.toml"),
        )
        .unwrap();
    }

    /// Issue 8, item 4: values whose arithmetic would overflow (a panic,
    /// or a wrap-around that makes a two-hour-old upload look abandoned)
    /// are config errors at load, naming the key and the allowed range.
    #[test]
    fn out_of_range_values_are_refused_at_load_with_their_range() {
        for (text, key) in [
            (
                "abandoned_after_hours = 10000000000",
                "abandoned_after_hours",
            ),
            (
                "abandoned_after_hours = 5124095576030432",
                "abandoned_after_hours",
            ),
            (
                "abandoned_after_hours = 9223372036854775807",
                "abandoned_after_hours",
            ),
            ("abandoned_after_hours = 876001", "abandoned_after_hours"),
            ("media_versions_keep = \"99999999w\"", "media_versions_keep"),
            (
                "media_versions_keep = \"5124095576030432h\"",
                "media_versions_keep",
            ),
            ("media_versions_keep = \"36501d\"", "media_versions_keep"),
            (
                "media_versions_keep = \"99999999999999999999999d\"",
                "media_versions_keep",
            ),
        ] {
            let m = err(&format!("remote = \"b:\"\n{text}\n"));
            assert!(m.contains(&format!("`{key}`")), "{text}: {m}");
            assert!(m.contains("at most"), "{text}: no range in {m}");
        }
        // The largest allowed values load, and their durations are exact.
        let c = Config::parse(
            "remote = \"b:\"\nabandoned_after_hours = 876000\nmedia_versions_keep = \"36500d\"\n",
            Path::new("x.toml"),
        )
        .unwrap();
        assert_eq!(
            c.settings.abandoned_after,
            Duration::from_secs(876_000 * 3600)
        );
        assert_eq!(
            c.settings.media_versions_keep,
            Some(VersionsKeep::Age(Duration::from_secs(36_500 * 86_400)))
        );
    }

    /// Issue 8, item 7: one rule for every relative path, whatever the
    /// working directory: relative to the config file's folder.
    #[test]
    fn relative_paths_resolve_against_the_config_file_folder() {
        let dir = tempfile::tempdir().unwrap();
        let etc = dir.path().join("etc");
        std::fs::create_dir_all(&etc).unwrap();
        std::fs::write(etc.join("rclone.conf"), "").unwrap();
        let c = Config::parse(
            "remote = \"b:\"\nmedia_root = \"media\"\nrclone_config = \"rclone.conf\"\nrclone_binary = \"bin/rclone\"\n\
             [databases.a]\nengine = \"sqlite\"\nname = \"app.db\"\n\
             [databases.b]\nurl = \"sqlite:///rel/b.db\"\n\
             [databases.c]\nengine = \"sqlite\"\nname = \"/abs/c.db\"\n\
             [databases.d]\nengine = \"postgresql\"\nname = \"app\"\n",
            &etc.join("rcbackup.toml"),
        )
        .unwrap();
        let s = &c.settings;
        assert_eq!(s.media_root, Some(etc.join("media")));
        assert_eq!(s.rclone_config, Some(etc.join("rclone.conf")));
        assert_eq!(s.rclone_binary, etc.join("bin/rclone").to_str().unwrap());
        let name = |a: &str| c.databases[a].name.clone();
        assert_eq!(name("a"), etc.join("app.db").to_str().unwrap());
        assert_eq!(name("b"), etc.join("rel/b.db").to_str().unwrap());
        assert_eq!(name("c"), "/abs/c.db");
        // A database name is no path, and a bare program name is looked
        // up on PATH.
        assert_eq!(name("d"), "app");
        let c = Config::parse(
            "remote = \"b:\"\nmedia_root = \"/srv/m\"\n",
            &etc.join("x.toml"),
        )
        .unwrap();
        assert_eq!(c.settings.rclone_binary, "rclone");
        assert_eq!(c.settings.media_root, Some(PathBuf::from("/srv/m")));
    }

    /// Issue 8, item 6: an rclone_config that is not there was ignored and
    /// rclone fell back to its default config.
    #[test]
    fn rclone_config_must_be_a_file() {
        let dir = tempfile::tempdir().unwrap();
        for (value, shown) in [
            (
                "/nonexistent/rclone.conf".to_string(),
                "/nonexistent/rclone.conf".to_string(),
            ),
            (
                "missing.conf".to_string(),
                dir.path().join("missing.conf").display().to_string(),
            ),
            (
                dir.path().display().to_string(),
                dir.path().display().to_string(),
            ),
        ] {
            let e = Config::parse(
                &format!("remote = \"b:\"\nrclone_config = \"{value}\"\n"),
                &dir.path().join("rcbackup.toml"),
            )
            .unwrap_err();
            assert_eq!(code_for(&e), ExitCode::Usage);
            let m = format!("{e:#}");
            assert!(m.contains("`rclone_config`") && m.contains(&shown), "{m}");
        }
    }

    #[test]
    fn tenant_layer_overrides() {
        let base = SettingsLayer {
            remote: Some("a:".into()),
            db_cleanup_keep: Some(3),
            ..Default::default()
        };
        let over = SettingsLayer {
            db_cleanup_keep: Some(5),
            ..Default::default()
        };
        let s = Settings::resolve(&base.merged(&over), Path::new("/etc")).unwrap();
        assert_eq!(s.db_cleanup_keep, 5);
        assert_eq!(s.remote, "a:");
    }

    /// Property tests of the values `Settings::resolve` checks: whatever is
    /// written, loading never panics, a rejected value names its key, and an
    /// accepted one gives the value written (issue 8).
    mod props {
        use super::*;
        use proptest::prelude::*;

        fn load(line: &str) -> std::result::Result<Config, String> {
            Config::parse(
                &format!("remote = \"b:\"\n{line}\n"),
                Path::new("/etc/rcbackup/rcbackup.toml"),
            )
            .map_err(|e| {
                assert_eq!(code_for(&e), ExitCode::Usage, "{e:#}");
                format!("{e:#}")
            })
        }

        /// A TOML string literal holding `v`.
        fn quoted(v: &str) -> String {
            toml::Value::String(v.to_string()).to_string()
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(512))]

            #[test]
            fn numbers_load_exactly_or_are_refused_by_key(
                key in prop::sample::select(vec![
                    "abandoned_after_hours",
                    "db_cleanup_keep",
                    "media_max_delete",
                    "media_versions_keep",
                ]),
                n in prop_oneof![any::<i64>(), -2i64..1_000_000],
            ) {
                match load(&format!("{key} = {n}")) {
                    Ok(c) => {
                        let s = c.settings;
                        let got = match key {
                            "abandoned_after_hours" => i128::from(s.abandoned_after.as_secs() / 3600),
                            "db_cleanup_keep" => s.db_cleanup_keep as i128,
                            "media_max_delete" => i128::from(s.media_max_delete.unwrap()),
                            _ => match s.media_versions_keep {
                                Some(VersionsKeep::Count(c)) => i128::from(c),
                                other => panic!("{other:?}"),
                            },
                        };
                        prop_assert_eq!(got, i128::from(n));
                    }
                    Err(m) => prop_assert!(m.contains(&format!("key `{key}`")), "{}", m),
                }
            }

            #[test]
            fn ages_load_exactly_or_are_refused_by_key(
                n in prop_oneof![any::<u64>(), 0u64..100_000],
                unit in "[hdwmsy]?",
                pad in "[ +-]?",
            ) {
                let text = format!("{pad}{n}{unit}");
                match load(&format!("media_versions_keep = {}", quoted(&text))) {
                    Ok(c) => {
                        let secs = match unit.as_str() { "h" => 3600, "d" => 86_400, _ => 7 * 86_400 };
                        prop_assert!(pad.is_empty());
                        prop_assert_eq!(
                            c.settings.media_versions_keep,
                            Some(VersionsKeep::Age(Duration::from_secs(n * secs)))
                        );
                        prop_assert!(n * secs <= crate::media::keep::MAX_AGE.as_secs());
                    }
                    Err(m) => prop_assert!(m.contains("key `media_versions_keep`"), "{}", m),
                }
            }

            #[test]
            fn any_string_value_loads_or_is_refused_by_key(
                key in prop::sample::select(vec![
                    "media_versions_keep",
                    "db_date_format",
                    "db_filename_template",
                    "rclone_binary",
                    "rclone_config",
                    "db_backup_dir",
                    "media_backup_dir",
                    "remote",
                ]),
                v in prop_oneof![".{0,24}", "[%a-zA-Z0-9:/ ._-]{0,16}"],
            ) {
                let line = format!("{key} = {}", quoted(&v));
                let text = if key == "remote" { format!("{line}\n") } else { format!("remote = \"b:\"\n{line}\n") };
                match Config::parse(&text, Path::new("/etc/rcbackup/rcbackup.toml")) {
                    Ok(_) => {}
                    Err(e) => {
                        prop_assert_eq!(code_for(&e), ExitCode::Usage);
                        let m = format!("{e:#}");
                        prop_assert!(m.contains(&format!("key `{key}`")), "{}", m);
                    }
                }
            }

            #[test]
            fn any_rclone_flags_load_or_are_refused_by_key(
                flags in prop::collection::vec(
                    prop_oneof![
                        "-{1,2}[a-zA-Z-]{0,12}(=[a-zA-Z0-9]{0,4})?",
                        "[a-zA-Z0-9 ]{0,8}",
                        Just("-v".to_string()),
                        Just("--log-level".to_string()),
                    ],
                    0..5,
                ),
            ) {
                let list = flags.iter().map(|f| quoted(f)).collect::<Vec<_>>().join(", ");
                match load(&format!("rclone_flags = [{list}]")) {
                    Ok(c) => {
                        prop_assert_eq!(&c.settings.rclone_flags, &flags);
                        prop_assert!(!flags.iter().any(|f| f == "-v" || f == "--log-level"));
                    }
                    Err(m) => prop_assert!(m.contains("key `rclone_flags`"), "{}", m),
                }
            }
        }
    }
}
