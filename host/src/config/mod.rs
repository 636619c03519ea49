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

use crate::compression::Compression;
use crate::database::{Database, DatabaseEntry, DatabaseSection};
use crate::exit;
use crate::media::VersionsKeep;
use crate::naming::{DateFormat, FilenameTemplate};
use crate::policy::config::{HookSection, PoliciesSection, PolicyConfig};

mod tenants;
pub use tenants::{check_tenant_name, Tenants};

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
    pub compression: Option<String>,
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
            compression: pick(&self.compression, &over.compression),
        }
    }
}

impl SettingsLayer {
    /// The layer with every relative path made absolute below `base`, the
    /// folder of the file it was written in. Values that are not relative
    /// paths are left for [`Settings::resolve`] to check.
    fn anchored(mut self, base: &Path) -> std::result::Result<SettingsLayer, KeyError> {
        if let Some(r) = self.remote.take() {
            let relative = !r.trim().is_empty() && !r.starts_with('~');
            self.remote = Some(if relative {
                local_remote_below(base, r)?
            } else {
                r
            });
        }
        if let Some(b) = self.rclone_binary.take() {
            self.rclone_binary = Some(if b.contains('/') {
                below(base, &b).map_err(|e| ("rclone_binary", e))?
            } else {
                b
            });
        }
        self.rclone_config = self.rclone_config.map(|c| below_path(base, &c));
        self.media_root = self.media_root.map(|m| below_path(base, &m));
        Ok(self)
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
    /// Absent and empty differ for a tenant: absent inherits the top
    /// level's hooks, `hooks = []` has none.
    #[serde(default)]
    hooks: Option<Vec<HookSection>>,
}

/// Top-level keys that open a section rather than set a setting.
const SECTION_KEYS: [&str; 3] = ["databases", "policies", "hooks"];
/// Top-level keys of the operator's file only: a tenant has no tenants.
const TENANT_KEYS: [&str; 3] = ["tenants", "tenants_dir", "tenant_limits"];

/// One file's (or one `[tenants.<name>]` section's) keys, read and typed
/// but not yet merged or checked: relative paths already made absolute
/// below the folder of the file they were written in, so that a tenant
/// file elsewhere inherits them unchanged.
#[derive(Debug)]
struct Layer {
    settings: SettingsLayer,
    sections: Sections,
    dir: PathBuf,
}

impl Layer {
    /// `source` names where the keys were written, for error messages.
    fn read(mut table: toml::Table, source: &Path, dir: &Path) -> Result<Layer> {
        let mut sections = toml::Table::new();
        for key in SECTION_KEYS {
            if let Some(v) = table.remove(key) {
                sections.insert(key.to_string(), v);
            }
        }
        let settings: SettingsLayer = typed(table, source)?;
        let settings = settings
            .anchored(dir)
            .map_err(|(k, why)| key_error(source, k, why))?;
        Ok(Layer {
            settings,
            sections: typed(sections, source)?,
            dir: dir.to_path_buf(),
        })
    }

    /// The config this layer gives over `parent` (a tenant over the top
    /// level), or on its own.
    fn resolve(
        self,
        source: &Path,
        parent: Option<(&SettingsLayer, &PolicyConfig)>,
    ) -> Result<Config> {
        let bad = |key: &str, why: String| key_error(source, key, why);
        let merged = match parent {
            Some((p, _)) => p.merged(&self.settings),
            None => self.settings.clone(),
        };
        let settings = Settings::resolve(&merged, &self.dir).map_err(|(k, why)| bad(k, why))?;
        let mut databases = BTreeMap::new();
        for (alias, section) in self.sections.databases {
            let compression = match &section.compression {
                Some(c) => {
                    Compression::parse(c).map_err(|why| bad(&db_key(&alias, "compression"), why))?
                }
                None => settings.compression,
            };
            // An engine read from a URL at run time is checked before its
            // dump (engines::dump_command).
            if let Some(engine) = section.engine {
                crate::engines::refuse_own_compression(engine, &section.dump_args, compression)
                    .map_err(|why| bad(&db_key(&alias, "dump_args"), why))?;
            }
            let db = DatabaseEntry::from_section(&alias, section, compression)
                .and_then(|db| db.relative_to(&self.dir))
                .map_err(|(k, why)| bad(&db_key(&alias, k), why))?;
            databases.insert(alias, db);
        }
        let hooks = self.sections.hooks.as_deref();
        let own = PolicyConfig::resolve(
            &self.sections.policies,
            hooks.unwrap_or_default(),
            &self.dir,
        )
        .map_err(|(k, why)| bad(&k, why))?;
        let policies = match parent {
            Some((_, p)) => own.over(p, hooks.is_some()),
            None => own,
        };
        Ok(Config {
            path: source.to_path_buf(),
            settings,
            databases,
            policies,
            tenant: None,
            tenants: Tenants::default(),
        })
    }
}

/// The variables `[databases.*]` of one file or tenant section name with
/// `password_env` or `url_env`, read from its raw keys (so a tenant whose
/// keys are wrong still has its secrets kept from every other child).
fn secret_var_names(table: &toml::Table) -> Vec<String> {
    let databases = table
        .get("databases")
        .and_then(toml::Value::as_table)
        .into_iter()
        .flat_map(|dbs| dbs.values())
        .filter_map(toml::Value::as_table)
        .flat_map(|db| ["password_env", "url_env"].map(|k| db.get(k)))
        .flatten();
    // A hook's `secrets`: `name = "VAR"` or `name = { env = "VAR", ... }`.
    let hooks = table
        .get("hooks")
        .and_then(toml::Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|h| h.get("secrets")?.as_table())
        .flat_map(|secrets| secrets.values())
        .filter_map(|v| match v {
            toml::Value::Table(t) => t.get("env"),
            other => Some(other),
        });
    databases
        .chain(hooks)
        .filter_map(|v| v.as_str().map(str::to_string))
        .collect()
}

/// A config error at `key` of `source`.
fn key_error(source: &Path, key: &str, why: String) -> anyhow::Error {
    exit::usage(format!(
        "config file {}: key `{key}`: {why}",
        source.display()
    ))
}

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
    /// How dumps are compressed unless a database says otherwise.
    pub compression: Compression,
}

/// The loaded config.
#[derive(Debug, Clone)]
pub struct Config {
    pub path: PathBuf,
    pub settings: Settings,
    /// Checked when the file loads; a database's environment (`url_env`)
    /// is read only by [`Config::database`], when a command uses it.
    pub databases: BTreeMap<String, DatabaseEntry>,
    /// `[policies]` and `[[hooks]]`: empty means the built-in behaviour.
    pub policies: PolicyConfig,
    /// The tenant this config was resolved for; `None`: the operator's own
    /// databases (the top level of the file).
    pub tenant: Option<String>,
    /// Every tenant of the file, resolved at load (empty in a tenant's own
    /// config: tenants do not nest).
    pub tenants: Tenants,
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
        // Settings and sections are read separately (serde's flatten would
        // lose the key names in error messages).
        let mut table: toml::Table =
            toml::from_str(text).map_err(|e| syntax_error(text, path, &e))?;
        let tenant_sections = table.remove("tenants");
        let tenants_dir = table.remove("tenants_dir");
        let tenant_limits = match table.remove("tenant_limits") {
            None => crate::policy::limits::LimitsSection::default(),
            Some(v) => {
                let section: crate::policy::limits::LimitsSection =
                    v.try_into().map_err(|e: toml::de::Error| {
                        key_error(path, "tenant_limits", e.message().to_string())
                    })?;
                section
                    .resolve()
                    .map_err(|why| key_error(path, "tenant_limits", why))?;
                section
            }
        };
        let top_secret_vars = secret_var_names(&table);
        crate::process::note_secret_vars(top_secret_vars.clone());
        // Every relative path in the file is relative to the file's folder.
        let top = Layer::read(table, path, &config_dir(path))?;
        let top_settings = top.settings.clone();
        let dir = top.dir.clone();
        let mut config = top.resolve(path, None)?;
        // `{tenant}` names the tenant; the top level's own databases have
        // none, so a template they would use may not have it (tenants that
        // inherit it get their name filled in).
        if config.settings.db_filename_template.uses_tenant() && !config.databases.is_empty() {
            return Err(key_error(
                path,
                "db_filename_template",
                format!(
                    "`{}` uses {{tenant}}, but the top level's own databases have no tenant; move them into a tenant, or set db_filename_template without {{tenant}} at the top level and with it in each tenant",
                    crate::naming::printable(config.settings.db_filename_template.as_str())
                ),
            ));
        }
        config.tenants = tenants::load(
            tenants::Sources {
                sections: tenant_sections,
                dir: tenants_dir,
                top_secret_vars,
                limits_ceiling: tenant_limits.tenant_ceiling(),
            },
            path,
            &dir,
            &top_settings,
            &config,
        )?;
        Ok(config)
    }

    /// The config a run uses: the operator's own (`None`), or the tenant
    /// `--tenant NAME` names, with everything it does not set inherited.
    pub fn select(self, tenant: Option<&str>) -> Result<Config> {
        match tenant {
            None => Ok(self),
            Some(name) => self.tenants.get(name, &self.path).cloned(),
        }
    }

    /// How the dumps of database `alias` are compressed.
    pub fn compression(&self, alias: &str) -> Compression {
        self.databases
            .get(alias)
            .map_or(self.settings.compression, |e| e.compression())
    }

    /// The database for `-d ALIAS`, or the only/"default" one without it,
    /// reading its environment (`url_env`) now: a database a command does
    /// not use never stops it.
    pub fn database(&self, alias: Option<&str>) -> Result<&Database> {
        let entry = self.entry(alias)?;
        entry.get().map_err(|(k, why)| {
            exit::usage(format!(
                "config file {}: key `{}`: {why}",
                self.path.display(),
                db_key(entry.alias(), k)
            ))
        })
    }

    /// The alias `-d ALIAS` (or its absence) chooses, without reading the
    /// database's environment: for commands that touch no database.
    pub fn alias(&self, alias: Option<&str>) -> Result<&str> {
        self.entry(alias).map(DatabaseEntry::alias)
    }

    fn entry(&self, alias: Option<&str>) -> Result<&DatabaseEntry> {
        if let Some(a) = alias {
            if a.contains(',') && !self.databases.contains_key(a) {
                return Err(exit::usage(format!(
                    "-d takes one database alias per run, not a list (`{}`); run rcbackup once per alias, e.g. for d in {}; do rcbackup dbbackup -d \"$d\"; done",
                    crate::naming::printable(a),
                    crate::naming::printable(&a.split(',').map(str::trim).collect::<Vec<_>>().join(" "))
                )));
            }
            return self.databases.get(a).ok_or_else(|| {
                exit::usage(format!(
                    "no database `{a}` in {}; configured: {}. Add a [databases.{a}] section or pick one of those",
                    self.path.display(),
                    self.aliases(),
                    a = crate::naming::printable(a)
                ))
            });
        }
        match self.databases.len() {
            0 if !self.tenants.is_empty() => Err(exit::usage(format!(
                "no databases at the top level of {}; its databases belong to tenants: pass --tenant NAME ({})",
                self.path.display(),
                self.tenants.some_names()
            ))),
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

/// A `remote` that is a local path (rclone's rule: no `name:` before the
/// first `/`) is relative to the config file's folder like every path, not
/// to the working directory, so cron and a shell see the same backups.
fn local_remote_below(base: &Path, remote: String) -> std::result::Result<String, KeyError> {
    // `:local:PATH` is the local path PATH, relative or not: one rule for
    // both spellings, and one place for the overlap check to compare.
    let remote = match remote.strip_prefix(":local:") {
        // `./` keeps a relative `x:y` a path, not the remote `x`.
        Some(path) if path.contains(':') && !path.starts_with('/') => format!("./{path}"),
        Some(path) if !path.is_empty() => path.to_string(),
        _ => remote,
    };
    let is_remote = match remote.find(':') {
        Some(colon) => !remote[..colon].contains('/'),
        None => false,
    };
    if is_remote || remote.starts_with('/') {
        return Ok(remote);
    }
    if remote.starts_with('~') {
        return Err((
            "remote",
            format!(
                "is `{remote}`; neither rclone nor rcbackup expands `~`: write the absolute path, e.g. remote = \"/home/app/backups\""
            ),
        ));
    }
    below(base, &remote).map_err(|e| ("remote", e))
}

/// One spelling for one place: `.` segments and repeated or trailing `/`
/// dropped, `..` resolved in a local path and refused in a remote's. Two
/// tenants' places are compared as text (config/tenants.rs), and rclone's
/// API fails on a path such as `/a/../b` where the command line did not.
/// An on-the-fly backend (`:s3:path`) is one remote like a named one, and
/// `:local:/path` is the local path `/path`. A connection string
/// (`:s3,opts:path`) is left as written: its options may hold `:` and `/`.
fn normal_remote(remote: &str) -> std::result::Result<String, String> {
    let (prefix, path, local) = match remote.find(':') {
        Some(0) => {
            let rest = &remote[1..];
            let Some(c) = rest.find(':').filter(|&c| !rest[..c].contains([',', '/'])) else {
                return Ok(remote.to_string());
            };
            let (backend, path) = (&rest[..c], &rest[c + 1..]);
            if backend == "local" && path.starts_with('/') {
                return normal_remote(path);
            }
            (&remote[..c + 2], path, false)
        }
        Some(c) if !remote[..c].contains('/') => {
            let name = &remote[..c];
            if name.contains(',') {
                return Ok(remote.to_string());
            }
            (&remote[..=c], &remote[c + 1..], false)
        }
        _ => ("", remote, true),
    };
    let mut parts: Vec<&str> = Vec::new();
    for seg in path.split('/') {
        match seg {
            "" | "." => {}
            ".." if local => {
                parts.pop();
            }
            ".." => {
                return Err(format!(
                    "has `..` in the path after `{prefix}`; write the folder without it, e.g. remote = \"{prefix}backups/app\""
                ))
            }
            s => parts.push(s),
        }
    }
    let root = if path.starts_with('/') { "/" } else { "" };
    Ok(format!("{prefix}{root}{}", parts.join("/")))
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
pub(crate) fn below(base: &Path, value: &str) -> std::result::Result<String, String> {
    let p = below_path(base, Path::new(value));
    p.to_str().map(str::to_string).ok_or_else(|| {
        format!(
            "`{value}` is relative to the config file's folder {}, whose path is not UTF-8; write it as an absolute path",
            base.display()
        )
    })
}

/// `databases.<alias>.<key>`, or the section itself.
fn db_key(alias: &str, key: &str) -> String {
    // An alias that breaks the rules may hold a newline or a bidi control.
    let alias = crate::naming::printable(alias);
    if key.is_empty() {
        format!("databases.{alias}")
    } else {
        format!("databases.{alias}.{key}")
    }
}

/// Deserializes a table, naming the key at fault on error, with what was
/// found, what is expected and an example ([`explain`]).
fn typed<T: serde::de::DeserializeOwned>(table: toml::Table, path: &Path) -> Result<T> {
    let doc = toml::Value::Table(table);
    serde_path_to_error::deserialize(doc.clone()).map_err(|e| {
        let at: Vec<String> = e
            .path()
            .iter()
            .map(|seg| match seg {
                serde_path_to_error::Segment::Seq { index } => index.to_string(),
                serde_path_to_error::Segment::Map { key } => key.clone(),
                serde_path_to_error::Segment::Enum { variant } => variant.clone(),
                serde_path_to_error::Segment::Unknown => "?".into(),
            })
            .collect();
        let message = e.into_inner().message().trim_end().to_string();
        exit::usage(format!(
            "config file {}: {}",
            path.display(),
            explain(&doc, &at, &message)
        ))
    })
}

/// `text` with every backtick-quoted part replaced by `…`.
fn unquote_values(text: &str) -> String {
    let mut out = String::new();
    let mut parts = text.split('`');
    if let Some(first) = parts.next() {
        out.push_str(first);
    }
    let rest: Vec<&str> = parts.collect();
    for (i, part) in rest.iter().enumerate() {
        if i % 2 == 0 && i + 1 < rest.len() {
            out.push_str("`…`");
        } else if i % 2 == 1 {
            out.push_str(part);
        } else {
            // An unpaired backtick: keep the rest as it was.
            out.push('`');
            out.push_str(part);
        }
    }
    out
}

/// A TOML syntax error: the message with the line, column and key, never
/// the line itself (it may hold a password, e.g. in a `url`).
fn syntax_error(text: &str, path: &Path, e: &toml::de::Error) -> anyhow::Error {
    let what = e
        .message()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("; ");
    // The toml crate quotes values in its messages (`integer `1234...` as
    // i128`); a value may be a secret, so what it quotes is not shown.
    let what = unquote_values(&what);
    let what = if what.contains("as i128") {
        "a number too large (integers must fit in 64 bits; a password or name belongs in double quotes)".to_string()
    } else {
        what
    };
    let Some(span) = e.span() else {
        return exit::usage(format!(
            "config file {}: not valid TOML: {what}",
            path.display()
        ));
    };
    let mut start = span.start.min(text.len());
    while !text.is_char_boundary(start) {
        start -= 1;
    }
    let before = &text[..start];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    let at = match key_on_line(text, line) {
        Some(key) => format!(" (key `{key}`)"),
        None => String::new(),
    };
    let fix = if what.contains("duplicate") {
        "A key may be set once in each section, and each [section] opened once: remove the other one"
    } else if what.contains("string") || what.contains("quote") {
        "Strings go in double quotes and end on the same line, e.g. url = \"postgres://app@db.example:5432/app\""
    } else {
        "Write one `key = value` per line, strings in double quotes, sections as [databases.NAME], e.g. db_cleanup_keep = 10"
    };
    exit::usage(format!(
        "config file {}, line {line}, column {column}{at}: not valid TOML: {what}. {fix} \
         (the line is not shown: it may hold a password)",
        path.display()
    ))
}

/// The key a line sets, with the `[section]` above it: `databases.default.url`.
/// Only plain names are returned, never a value.
fn key_on_line(text: &str, line: usize) -> Option<String> {
    let plain = |s: &str| {
        let s = s.trim();
        (!s.is_empty()
            && s.split('.').all(|p| {
                let p = p.trim();
                !p.is_empty()
                    && p.chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
            }))
        .then(|| s.split('.').map(str::trim).collect::<Vec<_>>().join("."))
    };
    let lines: Vec<&str> = text.split('\n').collect();
    let this = lines.get(line.checked_sub(1)?)?.trim();
    if this.starts_with('[') {
        return None;
    }
    let key = plain(this.split_once('=')?.0)?;
    let section = lines[..line - 1].iter().rev().find_map(|l| {
        let l = l.trim();
        let inner = l
            .strip_prefix("[[")
            .and_then(|r| r.split_once("]]"))
            .map(|(a, _)| a);
        let inner = inner.or_else(|| {
            l.strip_prefix('[')
                .and_then(|r| r.split_once(']'))
                .map(|(a, _)| a)
        });
        inner.map(plain)
    });
    Some(match section {
        Some(Some(s)) => format!("{s}.{key}"),
        Some(None) => return None,
        None => key,
    })
}

/// What a key expects, with an example of a right value.
fn key_doc(at: &[String]) -> Option<(&'static str, String)> {
    let eg = |v: &str| format!("{} = {v}", at.last().map_or("", String::as_str));
    Some(
        match at.iter().map(String::as_str).collect::<Vec<_>>()[..] {
            ["remote"] => (
                "a string naming an rclone remote",
                eg("\"s3:my-bucket/app\""),
            ),
            ["rclone_binary"] => ("a string: the rclone executable", eg("\"rclone\"")),
            ["rclone_config"] => (
                "a string: the path of rclone's config file",
                eg("\"/etc/rclone.conf\""),
            ),
            ["rclone_flags", _] => (
                "a string: every item of rclone_flags is one",
                "rclone_flags = [\"--transfers\", \"4\"]".into(),
            ),
            ["rclone_flags"] => (
                "an array of strings",
                "rclone_flags = [\"--transfers\", \"4\"]".into(),
            ),
            ["db_backup_dir"] => ("a string: a folder below the remote", eg("\"db\"")),
            ["media_backup_dir"] => ("a string: a folder below the remote", eg("\"media\"")),
            ["db_filename_template"] => ("a string", eg("\"{database}-{datetime}.{ext}\"")),
            ["db_date_format"] => ("a string: a strftime format", eg("\"%Y-%m-%d-%H%M%S\"")),
            ["db_cleanup_keep"] => ("an integer (1 or more)", eg("10")),
            ["media_root"] => (
                "a string: the media folder's path",
                eg("\"/srv/app/media\""),
            ),
            ["media_versions"] => ("true or false", eg("true")),
            ["media_versions_keep"] => ("a count or an age", eg("\"30d\"")),
            ["media_max_delete"] => ("an integer (0 or more)", eg("500")),
            ["abandoned_after_hours"] => ("an integer (1 or more)", eg("24")),
            ["databases"] => (
                "a table of databases, one section each",
                "[databases.default] with engine = \"postgresql\" and name = \"app\"".into(),
            ),
            ["databases", _] => (
                "a section",
                "[databases.default] with engine = \"postgresql\" and name = \"app\"".into(),
            ),
            ["databases", _, "engine"] => (
                "one of postgresql, postgis, mysql, mariadb, sqlite",
                eg("\"postgresql\""),
            ),
            ["databases", _, "name"] => (
                "a string: the database name, or the SQLite file's path",
                eg("\"app\""),
            ),
            ["databases", _, "host"] => (
                "a string: a host name, address or socket folder",
                eg("\"db.example\""),
            ),
            ["databases", _, "port"] => ("an integer from 1 to 65535", eg("5432")),
            ["databases", _, "user"] => ("a string", eg("\"app\"")),
            ["databases", _, "password_env"] => (
                "a string: the NAME of an environment variable holding the password",
                eg("\"APP_DB_PASSWORD\""),
            ),
            ["databases", _, "url"] => (
                "a string: a DATABASE_URL",
                eg("\"postgres://app@db.example:5432/app\""),
            ),
            ["databases", _, "url_env"] => (
                "a string: the NAME of an environment variable holding a DATABASE_URL",
                eg("\"DATABASE_URL\""),
            ),
            ["databases", _, k @ ("dump_args" | "restore_args"), _] => (
                "a string: every item of the list is one",
                format!("{k} = [\"--exclude-table=django_session\"]"),
            ),
            ["databases", _, k @ ("dump_args" | "restore_args")] => (
                "an array of strings",
                format!("{k} = [\"--exclude-table=django_session\"]"),
            ),
            _ => return None,
        },
    )
}

/// The value at `at` in the file, if there is one.
fn value_at<'a>(doc: &'a toml::Value, at: &[String]) -> Option<&'a toml::Value> {
    at.iter().try_fold(doc, |v, seg| match v {
        toml::Value::Table(t) => t.get(seg),
        toml::Value::Array(a) => a.get(seg.parse::<usize>().ok()?),
        _ => None,
    })
}

/// What was found, in words. A value is shown only where it cannot be a
/// secret: top-level settings that are not strings (a `remote` may be an
/// rclone connection string with credentials), and a database's `engine`
/// and `port`. Elsewhere only its kind is named.
fn describe_found(v: &toml::Value, at: &[String]) -> String {
    let show = match at.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        ["databases", _, "port"] => !v.is_str(),
        ["databases" | "policies" | "hooks", ..] => false,
        [_, ..] => !v.is_str(),
        _ => false,
    };
    match v {
        toml::Value::String(s) => {
            let engine = at.len() == 3 && at[0] == "databases" && at[2] == "engine";
            let lower = s.to_ascii_lowercase();
            let holds = if engine && lower.contains("postg") {
                " (not shown; did you mean \"postgresql\"?)"
            } else if engine && (lower.contains("mysql") || lower.contains("maria")) {
                " (not shown; did you mean \"mysql\"?)"
            } else if engine && lower.contains("sqlite") {
                " (not shown; did you mean \"sqlite\"?)"
            } else if s.trim().parse::<i64>().is_ok() {
                " holding a number (write it without quotes)"
            } else if matches!(s.trim(), "true" | "false") {
                " holding true or false (write it without quotes)"
            } else {
                ""
            };
            if show {
                format!("the string \"{}\"", s.escape_debug())
            } else {
                format!("a string{holds}")
            }
        }
        toml::Value::Integer(i) if show => format!("the integer {i}"),
        toml::Value::Integer(_) => "an integer".into(),
        toml::Value::Float(f) if show => format!("the number {f}"),
        toml::Value::Float(_) => "a number with a fraction".into(),
        toml::Value::Boolean(b) if show => format!("`{b}`"),
        toml::Value::Boolean(_) => "true or false".into(),
        toml::Value::Datetime(_) => "a date or time".into(),
        toml::Value::Array(_) => "an array".into(),
        toml::Value::Table(_) => "a table".into(),
    }
}

/// serde's "expected" in words, for keys [`key_doc`] does not know (the
/// policy sections), with an example of the right kind.
fn expected_in_words(expected: &str, key: &str) -> (String, String) {
    let e = expected.trim();
    let int = |what: &str| (what.to_string(), format!("{key} = 10"));
    match e {
        "i8" | "i16" | "i32" | "i64" | "i128" | "isize" => int("an integer"),
        "u8" | "u16" | "u32" | "u64" | "u128" | "usize" => int("an integer, 0 or more"),
        "f32" | "f64" => ("a number".into(), format!("{key} = 1.5")),
        "a boolean" => ("true or false".into(), format!("{key} = true")),
        "a string" | "a borrowed string" | "a character" => {
            ("a string".into(), format!("{key} = \"...\""))
        }
        "a sequence" => ("an array".into(), format!("{key} = [\"...\"]")),
        _ if e == "a map" || e.starts_with("struct ") || e.starts_with("a table") => {
            ("a table".into(), format!("[{key}]"))
        }
        _ if e.starts_with("one of ") || e.starts_with('`') => (
            e.replace('`', ""),
            format!("{key} = \"{}\"", e.split('`').nth(1).unwrap_or("...")),
        ),
        _ => (scrub(e), format!("see README, \"Config\", for `{key}`")),
    }
}

/// A message with any quoted value taken out: serde's messages quote the
/// value they found (`invalid type: string "..."`).
fn scrub(message: &str) -> String {
    let mut out = String::new();
    let mut rest = message;
    while let Some(i) = rest.find('"') {
        out.push_str(&rest[..i]);
        match rest[i + 1..].find('"') {
            Some(j) => {
                out.push_str("\"...\"");
                rest = &rest[i + 1 + j + 1..];
            }
            None => {
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

/// The first `backquoted` word of `s`.
fn quoted_name(s: &str) -> Option<&str> {
    let (_, rest) = s.split_once('`')?;
    rest.split_once('`').map(|(name, _)| name)
}

/// The closest of `known` to `typo`, if it is close.
fn did_you_mean<'a>(typo: &str, known: &[&'a str]) -> Option<&'a str> {
    fn distance(a: &str, b: &str) -> usize {
        let b: Vec<char> = b.chars().collect();
        let mut row: Vec<usize> = (0..=b.len()).collect();
        for (i, ca) in a.chars().enumerate() {
            let mut prev = row[0];
            row[0] = i + 1;
            for (j, cb) in b.iter().enumerate() {
                let here = row[j + 1];
                row[j + 1] = (prev + usize::from(ca != *cb))
                    .min(row[j] + 1)
                    .min(here + 1);
                prev = here;
            }
        }
        row[b.len()]
    }
    known
        .iter()
        .map(|k| (distance(typo, k), *k))
        .filter(|(d, k)| *d <= 2.max(k.len() / 4))
        .min()
        .map(|(_, k)| k)
}

/// A serde error at `at` in words: the key, what was found, what is
/// expected and an example, without Rust type names or the value of a key
/// that may hold a secret.
fn explain(doc: &toml::Value, at: &[String], message: &str) -> String {
    let join = |extra: Option<&str>| {
        let mut all: Vec<&str> = at.iter().map(String::as_str).collect();
        all.extend(extra);
        all.join(".")
    };
    if let Some(rest) = message.strip_prefix("unknown field ") {
        let field = quoted_name(rest).unwrap_or("?");
        // serde_path_to_error's path may already end with the field.
        let at = at.strip_suffix(&[field.to_string()]).unwrap_or(at);
        let join = |extra: Option<&str>| {
            let mut all: Vec<&str> = at.iter().map(String::as_str).collect();
            all.extend(extra);
            all.join(".")
        };
        let mut known: Vec<&str> = rest
            .split_once("expected")
            .map(|(_, k)| k.split('`').skip(1).step_by(2).collect())
            .unwrap_or_default();
        if at.is_empty() && known.contains(&"remote") {
            // The sections were read apart from the settings.
            known.extend(SECTION_KEYS);
            known.extend(TENANT_KEYS);
        }
        const DB_KEYS: [&str; 8] = [
            "engine",
            "name",
            "host",
            "port",
            "user",
            "password_env",
            "url",
            "url_env",
        ];
        let hint = if field == "password" || field.ends_with("_password") {
            "a password never goes in the config file: put it in an environment variable and name that variable with password_env = \"APP_DB_PASSWORD\" in [databases.NAME] (the value is not shown). ".to_string()
        } else if at.is_empty() && DB_KEYS.contains(&field) {
            format!("`{field}` belongs in a database's section ([databases.default], then {field} = ...). ")
        } else {
            match did_you_mean(field, &known) {
                Some(k) => format!("did you mean `{k}`? "),
                None => String::new(),
            }
        };
        let keys = if known.is_empty() {
            "This section takes no keys".to_string()
        } else {
            format!("The keys here are: {}", known.join(", "))
        };
        return format!(
            "key `{}` is not a known key: {hint}{keys} (see README, \"Config\")",
            join(Some(field))
        );
    }
    if let Some(rest) = message.strip_prefix("missing field ") {
        let field = quoted_name(rest).unwrap_or("?");
        let mut path = at.to_vec();
        path.push(field.to_string());
        let (expected, example) = key_doc(&path)
            .map(|(e, x)| (e.to_string(), x))
            .unwrap_or_else(|| ("a value".into(), "see README, \"Config\"".into()));
        return format!(
            "key `{}` is required and missing: expected {expected}, e.g. {example}",
            join(Some(field))
        );
    }
    let key = join(None);
    let found = match value_at(doc, at) {
        Some(v) => describe_found(v, at),
        None => message
            .split_once(": ")
            .and_then(|(_, f)| f.split(", expected").next())
            .map(scrub)
            .unwrap_or_else(|| "a value of the wrong kind".into()),
    };
    let serde_expected = message
        .split_once("expected ")
        .map_or("", |(_, e)| e)
        .to_string();
    let last = at.last().map_or("", String::as_str);
    let (expected, example) = match key_doc(at) {
        Some((e, x)) => (e.to_string(), x),
        None => expected_in_words(&serde_expected, last),
    };
    if key.is_empty() {
        return format!("found {found}, expected {expected} (see README, \"Config\")");
    }
    format!("key `{key}`: found {found}, expected {expected}; e.g. {example}")
}

/// How config errors read: no secret, and the key, what was found, what
/// is expected and an example.
#[cfg(test)]
mod error_tests {
    use super::*;

    fn err(text: &str) -> String {
        let e = Config::parse(text, Path::new("x.toml")).unwrap_err();
        assert_eq!(
            crate::exit::code_for(&e),
            crate::exit::ExitCode::Usage,
            "{e:#}"
        );
        format!("{e:#}")
    }

    #[test]
    fn type_errors_name_key_found_expected_example() {
        for (text, parts) in [
            (
                "db_cleanup_keep = \"10\"",
                &["`db_cleanup_keep`", "found a string holding a number", "expected an integer", "db_cleanup_keep = 10"][..],
            ),
            ("media_versions = \"yes\"", &["`media_versions`", "found a string", "true or false", "media_versions = true"]),
            ("rclone_flags = \"-v\"", &["`rclone_flags`", "found a string", "an array of strings", "rclone_flags = ["]),
            ("rclone_flags = [1]", &["`rclone_flags.0`", "the integer 1", "expected a string"]),
            ("remote = 5", &["`remote`", "the integer 5", "remote = \"s3:"]),
            ("remot = \"b:\"", &["`remot`", "did you mean `remote`?"]),
            ("[databases.main]\nengine = \"oracle\"\nname = \"x\"", &["`databases.main.engine`", "found a string,", "one of postgresql", "engine = \"postgresql\""]),
            ("[databases.main]\nengine = \"postgresql\"\nname = \"x\"\nport = 70000", &["`databases.main.port`", "the integer 70000", "from 1 to 65535", "port = 5432"]),
            ("[databases.main]\nengine = \"postgresql\"\nname = \"x\"\npasword_env = \"P\"", &["`databases.main.pasword_env`", "did you mean `password_env`?"]),
            ("[databases.main]\nengine = \"postgresql\"\nname = \"x\"\ndump_args = \"--no-owner\"", &["`databases.main.dump_args`", "an array of strings", "dump_args = ["]),
            ("databases = 1", &["`databases`", "a table", "[databases.default]"]),
            ("[database.main]\nengine = \"sqlite\"", &["`database`", "did you mean `databases`?"]),
            ("engine = \"sqlite\"", &["`engine`", "[databases.default]"]),
            ("[databases.main]\nengine = \"mysql\"\nname = \"x\"\npassword = \"Zq9pw\"", &["`databases.main.password`", "password_env"]),
        ] {
            let text = if text.starts_with("remote") { text.to_string() } else { format!("remote = \"b:\"\n{text}\n") };
            let m = err(&text);
            for p in parts {
                assert!(m.contains(p), "{p:?} not in: {m}");
            }
            for rust in ["i64", "u16", "a sequence", "invalid type", "struct "] {
                assert!(!m.contains(rust), "{rust:?} in: {m}");
            }
        }
    }

    #[test]
    fn secrets_are_never_shown() {
        let pw = "Zq9HiddenPassw0rd";
        for text in [
            format!("[databases.d]\nurl = \"postgres://u:{pw}@h/app\nname = \"x\""),
            format!("[databases.d]\nurl = postgres://u:{pw}@h/app"),
            format!("[databases.d]\nurl = \"postgres://u:{pw}@h/app\" trailing"),
            format!("[databases.d]\nurl = \"postgres://u:{pw}@h/app?bogus=1\""),
            format!("[databases.d]\nurl = \"postgres://u:{pw}@h:99999/app\""),
            format!("[databases.d]\nurl = \"postgres://u:{pw}@h/app\"\nurl = \"x\""),
            format!("[databases.d]\nengine = \"postgresql\"\nname = \"x\"\npassword_env = \"{pw} !\""),
            format!("[databases.d]\nengine = \"postgresql\"\nname = \"x\"\npassword_env = 12345678{pw}"),
            format!("[databases.d]\nengine = \"postgresql\"\nname = \"x\"\nport = \"{pw}\""),
            format!("[databases.d]\nengine = \"{pw}\"\nname = \"x\""),
            "[databases.d]\nengine = \"postgresql\"\nname = \"x\"\npassword_env = 98765432109876543210987".to_string(),
            format!("[databases.d]\nengine = \"postgresql\"\nname = \"x\"\nuser = [\"{pw}\"]"),
            format!("remote = \":s3,secret_access_key={pw}:b\"\nremote = 1"),
            format!("remote = [\":s3,secret_access_key={pw}:b\"]"),
            format!("[policies.retention]\nmodule = \"x.wasm\"\nconfig = {{ token = \"{pw}\" }}\nlimits = \"{pw}\""),
        ] {
            let text = if text.starts_with("remote") { text } else { format!("remote = \"b:\"\n{text}\n") };
            let m = err(&text);
            assert!(!m.contains(pw), "{text}\n-> {m}");
            assert!(!m.contains("98765432109876543210987"), "{text}\n-> {m}");
        }
    }

    #[test]
    fn syntax_errors_name_line_and_key() {
        let m =
            err("remote = \"b:\"\n\n[databases.default]\nurl = \"postgres://u:Zq9secret@h/app\n");
        assert!(m.contains("line 4"), "{m}");
        assert!(m.contains("`databases.default.url`"), "{m}");
        assert!(!m.contains("Zq9secret"), "{m}");
        let m = err("remote = \"b:\"\n[databases.default\n");
        assert!(m.contains("line 2"), "{m}");
    }
}

/// Property tests of the config parser: no panic; no secret planted in a
/// `url` or `password_env` appears in an error, however the file around
/// it is broken; a value of the wrong kind is refused naming its key.
#[cfg(test)]
mod proptests {
    use super::*;
    use proptest::prelude::*;

    fn secret() -> impl Strategy<Value = String> {
        "[A-Za-z0-9!#$%&*+,./:;<>?@^_~ -]{10,24}".prop_map(|s| format!("Zq{s}"))
    }

    /// Inserts `what` at the `at`-th character boundary, or deletes the
    /// character there when `what` is empty.
    fn mutate(text: &str, at: usize, what: &str) -> String {
        let bounds: Vec<usize> = text
            .char_indices()
            .map(|(i, _)| i)
            .chain([text.len()])
            .collect();
        let i = bounds[at % bounds.len()];
        let mut out = text[..i].to_string();
        if what.is_empty() {
            let next = text[i..].chars().next().map_or(0, char::len_utf8);
            out.push_str(&text[i + next..]);
        } else {
            out.push_str(what);
            out.push_str(&text[i..]);
        }
        out
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

        #[test]
        fn never_panics(text in any::<String>()) {
            let _ = Config::parse(&text, Path::new("x.toml"));
        }

        #[test]
        fn never_panics_on_near_configs(
            edits in proptest::collection::vec((0usize..400, prop_oneof![Just(""), Just("\""), Just("["), Just("]"), Just("="), Just("\n"), Just("{"), Just("'"), Just("1"), Just(".")]), 0..4),
        ) {
            let mut text = "remote = \"b:\"\ndb_cleanup_keep = 3\nrclone_flags = [\"--fast-list\"]\n[databases.default]\nengine = \"postgresql\"\nname = \"app\"\nport = 5432\n[policies.retention]\nmodule = \"k.wasm\"\nconfig = { keep = 3 }\n".to_string();
            for (at, what) in &edits {
                text = mutate(&text, *at, what);
            }
            let _ = Config::parse(&text, Path::new("x.toml"));
        }

        #[test]
        fn no_secret_in_any_error(
            pw in secret(),
            in_url in any::<bool>(),
            edits in proptest::collection::vec((0usize..300, prop_oneof![Just(""), Just("\""), Just("\n"), Just("="), Just("["), Just("]"), Just("'"), Just("\\"), Just(" "), Just("#"), Just("{")]), 0..3),
        ) {
            let line = if in_url {
                let enc = percent_encoding::utf8_percent_encode(&pw, percent_encoding::NON_ALPHANUMERIC).to_string();
                // Sometimes written raw: a user pastes what they have.
                let shown = if pw.len() % 2 == 0 { enc } else { pw.clone() };
                format!("url = \"postgres://app:{shown}@db.example:5432/app?sslmode=require\"")
            } else {
                format!("engine = \"postgresql\"\nname = \"app\"\npassword_env = \"{pw}\"")
            };
            let mut text = format!("remote = \"b:\"\n[databases.default]\n{line}\n");
            for (at, what) in &edits {
                text = mutate(&text, *at, what);
            }
            if let Err(e) = Config::parse(&text, Path::new("x.toml")) {
                let m = format!("{e:#}");
                prop_assert!(!m.contains(&pw), "{}\n-> {}", text, m);
            }
            // And at use: an unset password_env names no value either.
            if let Ok(c) = Config::parse(&text, Path::new("x.toml")) {
                if let Ok(db) = c.database(None) {
                    if let Err(e) = db.password() {
                        let m = format!("{e:#}");
                        prop_assert!(!m.contains(&pw), "{}\n-> {}", text, m);
                    }
                }
            }
        }

        #[test]
        fn wrong_kinds_name_the_key(
            key in prop_oneof![
                Just("db_cleanup_keep"), Just("media_max_delete"), Just("abandoned_after_hours"),
                Just("media_versions"), Just("remote"), Just("rclone_flags"), Just("db_backup_dir"),
                Just("databases.d.port"), Just("databases.d.name"), Just("databases.d.password_env"),
                Just("databases.d.dump_args"),
            ],
            value in prop_oneof![Just("\"x y\""), Just("1.5"), Just("true"), Just("[1, 2]"), Just("{ a = 1 }"), Just("1979-05-27")],
        ) {
            let (section, leaf) = match key.rsplit_once('.') {
                Some((s, l)) => (format!("[{s}]\nengine = \"postgresql\"\n"), l),
                None => (String::new(), key),
            };
            let text = format!("remote = \"b:\"\n{section}{leaf} = {value}\n");
            let text = if key == "remote" { format!("{leaf} = {value}\n") } else { text };
            let text = if section.is_empty() || leaf == "name" { text } else { text.replace("engine = \"postgresql\"\n", "engine = \"postgresql\"\nname = \"app\"\n") };
            if let Err(e) = Config::parse(&text, Path::new("x.toml")) {
                let m = format!("{e:#}");
                prop_assert!(m.contains(&format!("`{key}")), "{}\n-> {}", text, m);
                prop_assert!(m.contains("expected") || m.contains("e.g."), "{}\n-> {}", text, m);
            } else {
                // Only a string is a right kind for string keys (the toml
                // crate hands a bare date to a string key as its text).
                let string_key = ["remote", "db_backup_dir", "databases.d.name", "databases.d.password_env"].contains(&key);
                prop_assert!(
                    (value.starts_with('"') || value == "1979-05-27") && string_key
                        || key == "media_versions" && value == "true",
                    "{} accepted",
                    text
                );
            }
        }
    }
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
        crate::rclone::check_remote(&remote).map_err(|e| ("remote", e))?;
        let remote = local_remote_below(base, remote)?;
        let remote = normal_remote(&remote).map_err(|e| ("remote", e))?;
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
        let compression = match &layer.compression {
            Some(c) => Compression::parse(c).map_err(|e| ("compression", e))?,
            None => Compression::DEFAULT,
        };
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
            compression,
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
/// the media root lacks. Compared regardless of case: on storage that
/// ignores it (S3-compatible services, macOS, Windows shares) `DB` is `db`.
fn media_dirs_apart(db_dir: &str, media_dir: &str) -> std::result::Result<(), KeyError> {
    let versions = crate::media::versions_dir(media_dir);
    let inside = |a: &str, b: &str| {
        let (a, b) = (a.to_lowercase(), b.to_lowercase());
        a == b || a.starts_with(&format!("{b}/"))
    };
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
        let c = Config::parse(
            "remote = \"b:\"\n[databases.default]\nengine = \"sqlite\"\nname = \"x\"\n",
            Path::new("x.toml"),
        )
        .unwrap();
        let m = format!("{:#}", c.database(Some("default,other")).unwrap_err());
        assert!(m.contains("one database alias per run"), "{m}");
        // An alias with a right-to-left override or a newline is shown
        // escaped, never applied.
        // (TOML escapes: the key holds the characters themselves.)
        for alias in ["x\\u202Egpj", "a\\nERROR b"] {
            let m = err(&format!(
                "remote = \"b:\"\n[databases.\"{alias}\"]\nengine = \"sqlite\"\nname = \"x\"\n"
            ));
            assert!(!m.contains('\u{202e}') && !m.contains('\n'), "{m}");
            assert!(m.contains("may only hold"), "{m}");
        }
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
            "media_backup_dir = \"DB\"",
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
             [databases.d]\nengine = \"postgresql\"\nname = \"app\"\n\
             [databases.e]\nurl_env = \"RCBACKUP_TEST_RELATIVE_SQLITE_URL\"\n",
            &etc.join("rcbackup.toml"),
        )
        .unwrap();
        let s = &c.settings;
        assert_eq!(s.media_root, Some(etc.join("media")));
        assert_eq!(s.rclone_config, Some(etc.join("rclone.conf")));
        assert_eq!(s.rclone_binary, etc.join("bin/rclone").to_str().unwrap());
        let name = |a: &str| c.databases[a].get().unwrap().name.clone();
        assert_eq!(name("a"), etc.join("app.db").to_str().unwrap());
        assert_eq!(name("b"), etc.join("rel/b.db").to_str().unwrap());
        assert_eq!(name("c"), "/abs/c.db");
        // A database name is no path, and a bare program name is looked
        // up on PATH.
        assert_eq!(name("d"), "app");
        // A URL read from the environment later follows the same rule.
        std::env::set_var("RCBACKUP_TEST_RELATIVE_SQLITE_URL", "sqlite:///env/e.db");
        assert_eq!(name("e"), etc.join("env/e.db").to_str().unwrap());
        let c = Config::parse(
            "remote = \"b:\"\nmedia_root = \"/srv/m\"\n",
            &etc.join("x.toml"),
        )
        .unwrap();
        assert_eq!(c.settings.rclone_binary, "rclone");
        assert_eq!(c.settings.media_root, Some(PathBuf::from("/srv/m")));
        // A local-path remote follows the same rule; remotes and absolute
        // paths stay as written; `~` is refused (nothing expands it).
        for (remote, want) in [
            (
                "relative/store",
                etc.join("relative/store").to_str().unwrap().to_string(),
            ),
            ("store", etc.join("store").to_str().unwrap().to_string()),
            ("b:rel/x", "b:rel/x".to_string()),
            // Outside review (issue 10): `:local:rel` went to rclone as
            // is, relative to the working directory.
            (":local:rel", etc.join("rel").to_str().unwrap().to_string()),
            ("/abs/store", "/abs/store".to_string()),
            (
                "./odd:name",
                etc.join("odd:name").to_str().unwrap().to_string(),
            ),
        ] {
            let c =
                Config::parse(&format!("remote = \"{remote}\"\n"), &etc.join("x.toml")).unwrap();
            assert_eq!(c.settings.remote, want, "{remote}");
        }
        let e = Config::parse("remote = \"~/b\"\n", &etc.join("x.toml")).unwrap_err();
        assert!(format!("{e:#}").contains("expands `~`"), "{e:#}");
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
