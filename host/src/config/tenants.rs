//! Tenants: `[tenants.<name>]` sections of the config file and one
//! `<name>.toml` per tenant in `tenants_dir`. A tenant is one more layer of
//! the same keys over the top level; resolving it gives an ordinary
//! [`Config`], so commands run on a tenant exactly as on the operator's own
//! databases (no `if tenant` below this module).
//!
//! Every tenant is resolved when the file loads, but a tenant whose keys
//! are wrong is only marked broken: one platform-generated file with a
//! mistake must not stop every other tenant's backup. It fails when it is
//! used (`--tenant`, `backup-all`, `config check`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Result;

use super::{below_path, key_error, secret_var_names, syntax_error, Config, Layer, SettingsLayer};
use crate::exit;
use crate::naming::printable;

/// Where a tenant without its own `remote` keeps its backups: below the
/// top level's remote, `tenants/<name>/`.
pub const TENANTS_FOLDER: &str = "tenants";

/// The most bytes a tenant name may have: it becomes a folder name and a
/// label in metrics and logs.
const MAX_NAME: usize = 63;

/// The rule for a tenant name: 1-63 of lowercase ASCII letters, digits,
/// `-` and `_`, starting with a letter or digit. Lowercase only, so two
/// tenants never differ by case alone (case-insensitive storage would merge
/// them); no dots, slashes or spaces, so a name is always one plain folder.
pub fn check_tenant_name(name: &str) -> std::result::Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= MAX_NAME
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
        && name
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    if ok {
        return Ok(());
    }
    let lower = name.to_ascii_lowercase();
    let hint = if lower != name && check_tenant_name(&lower).is_ok() {
        format!(" (did you mean `{lower}`?)")
    } else {
        String::new()
    };
    Err(format!(
        "`{}` is not a tenant name{hint}: use 1 to {MAX_NAME} lowercase letters, digits, `-` and `_`, starting with a letter or digit, e.g. acme-shop",
        printable(name)
    ))
}

/// The raw top-level keys that declare tenants.
pub struct Sources {
    pub sections: Option<toml::Value>,
    pub dir: Option<toml::Value>,
    /// The variables the top level's own databases take secrets from.
    pub top_secret_vars: Vec<String>,
    /// The most a tenant's own policies and hooks may set in `limits`.
    pub limits_ceiling: crate::policy::limits::LimitsSection,
}

/// Every tenant of a config, resolved, or why it cannot be used.
#[derive(Debug, Clone, Default)]
pub struct Tenants {
    entries: Arc<BTreeMap<String, std::result::Result<Config, String>>>,
}

impl Tenants {
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Every tenant by name, in name order: its config, or why it is
    /// broken. A file whose name is not a tenant name is listed under that
    /// name (made printable), broken.
    pub fn entries(&self) -> impl Iterator<Item = (&str, std::result::Result<&Config, &str>)> {
        self.entries
            .iter()
            .map(|(n, e)| (n.as_str(), e.as_ref().map_err(String::as_str)))
    }

    /// The tenant `name` (from `--tenant`): exit 2 when there is none or it
    /// is broken.
    pub fn get(&self, name: &str, file: &Path) -> Result<&Config> {
        check_tenant_name(name).map_err(|why| exit::usage(format!("--tenant: {why}")))?;
        match self.entries.get(name) {
            Some(Ok(c)) => Ok(c),
            Some(Err(why)) => Err(exit::usage(why.clone())),
            None => Err(exit::usage(format!(
                "no tenant `{name}` in {}; {}. Add a [tenants.{name}] section or a {name}.toml in tenants_dir",
                file.display(),
                self.some_names()
            ))),
        }
    }

    /// "tenants: a, b, c and 497 more", for messages.
    pub fn some_names(&self) -> String {
        const SHOWN: usize = 10;
        if self.entries.is_empty() {
            return "it defines no tenants".into();
        }
        let names: Vec<&str> = self
            .entries
            .keys()
            .take(SHOWN)
            .map(String::as_str)
            .collect();
        let more = self.entries.len().saturating_sub(SHOWN);
        if more > 0 {
            format!("tenants: {} and {more} more", names.join(", "))
        } else {
            format!("tenants: {}", names.join(", "))
        }
    }
}

/// A tenant's keys and where they were written, before resolving.
struct Declared {
    table: toml::Table,
    /// The file, or the main file with the section named, for messages.
    source: PathBuf,
    /// The folder relative paths are relative to.
    dir: PathBuf,
}

/// Reads `[tenants.*]` and `tenants_dir`, resolves every tenant over the top
/// level (`top_layer`, `top`), and checks that no two places overlap.
pub(super) fn load(
    sources: Sources,
    file: &Path,
    file_dir: &Path,
    top_layer: &SettingsLayer,
    top: &Config,
) -> Result<Tenants> {
    let ceiling = sources.limits_ceiling;
    let mut declared: BTreeMap<String, std::result::Result<Declared, String>> = BTreeMap::new();
    // The secret variables of tenants that cannot run (a file that does
    // not parse, a tenant defined twice): still kept from every child.
    let mut loose_vars: Vec<String> = Vec::new();
    if let Some(v) = sources.sections {
        let toml::Value::Table(t) = v else {
            return Err(key_error(
                file,
                "tenants",
                "expected a table of tenants, one section each, e.g. [tenants.acme] with db_cleanup_keep = 5".into(),
            ));
        };
        for (name, value) in t {
            let entry = match value {
                toml::Value::Table(table) => Ok(Declared {
                    table,
                    source: PathBuf::from(format!("{} [tenants.{}]", file.display(), printable(&name))),
                    dir: file_dir.to_path_buf(),
                }),
                _ => Err(format!(
                    "config file {}: key `tenants.{}`: expected a section, e.g. [tenants.acme] with db_cleanup_keep = 5",
                    file.display(),
                    printable(&name)
                )),
            };
            declared.insert(name, entry);
        }
    }
    if let Some(v) = sources.dir {
        let toml::Value::String(d) = v else {
            return Err(key_error(
                file,
                "tenants_dir",
                "expected a string: the folder of one <name>.toml per tenant, e.g. tenants_dir = \"tenants\"".into(),
            ));
        };
        let dir = below_path(file_dir, Path::new(&d));
        for (name, entry) in read_dir(&dir, file, &mut loose_vars)? {
            if let Some(Ok(section)) = declared.get(&name) {
                loose_vars.extend(secret_var_names(&section.table));
            }
            if let (true, Ok(d)) = (declared.contains_key(&name), &entry) {
                loose_vars.extend(secret_var_names(&d.table));
            }
            let entry = match (declared.contains_key(&name), entry) {
                (true, Ok(d)) => Err(format!(
                    "tenant `{}` is defined twice: in {} and as [tenants.{}] in {}; keep one",
                    printable(&name),
                    d.source.display(),
                    printable(&name),
                    file.display()
                )),
                (_, e) => e,
            };
            declared.insert(name, entry);
        }
    }
    if declared.is_empty() {
        return Ok(Tenants::default());
    }
    refuse_top_dirs_in_tenants_folder(top, file)?;
    // Each tenant's secret variables, read once: kept from every child,
    // and no two tenants may share one.
    let secret_vars: BTreeMap<String, Vec<String>> = declared
        .iter()
        .filter_map(|(name, d)| Some((name.clone(), secret_var_names(&d.as_ref().ok()?.table))))
        .collect();
    // Only variables in the tenants' namespace are kept from children: a
    // tenant naming another (PATH, AWS_SECRET_ACCESS_KEY, ...) is refused,
    // and taking that from every child would break every tenant's run.
    for vars in secret_vars.values().chain([&loose_vars]) {
        crate::process::note_secret_vars(
            vars.iter()
                .filter(|v| v.starts_with(TENANT_VAR_PREFIX))
                .cloned(),
        );
    }
    // After the variables were noted: a tenant broken here still had them.
    refuse_one_namespace(&mut declared);
    let secret_vars = secret_vars
        .into_iter()
        .filter(|(name, _)| declared[name].is_ok())
        .collect();
    // Every declared tenant's namespace, broken ones' too, made once.
    let namespaces: Vec<String> = declared.keys().map(|n| tenant_var_prefix(n)).collect();
    let secret_vars = refuse_foreign_variables(&mut declared, secret_vars, &namespaces);
    refuse_shared_secrets(&mut declared, &secret_vars, &sources.top_secret_vars);
    let mut entries: BTreeMap<String, std::result::Result<Config, String>> = declared
        .into_iter()
        .map(|(name, d)| {
            let resolved = d.and_then(|d| {
                check_tenant_name(&name).map_err(|why| format!("{}: {why}", d.source.display()))?;
                resolve(&name, d, top_layer, top, &ceiling).map_err(|e| format!("{e:#}"))
            });
            (name, resolved)
        })
        .collect();
    refuse_overlaps(&mut entries, top);
    refuse_shared_media_roots(&mut entries, top);
    Ok(Tenants {
        entries: Arc::new(entries),
    })
}

/// The `<name>.toml` files of `dir`, each read and parsed (or why not).
/// Other files (an editor's `.swp`, a README) are not tenants.
fn read_dir(
    dir: &Path,
    file: &Path,
    loose_vars: &mut Vec<String>,
) -> Result<Vec<(String, std::result::Result<Declared, String>)>> {
    let list = std::fs::read_dir(dir).map_err(|e| {
        key_error(
            file,
            "tenants_dir",
            format!(
                "cannot read the folder {}: {e}. Create it (one <name>.toml per tenant) or fix the path (relative to the config file's folder)",
                dir.display()
            ),
        )
    })?;
    let mut out = Vec::new();
    for item in list {
        let item = item.map_err(|e| {
            key_error(
                file,
                "tenants_dir",
                format!("cannot list {}: {e}", dir.display()),
            )
        })?;
        let path = item.path();
        let raw = item.file_name();
        let Some(stem) = raw.as_encoded_bytes().strip_suffix(b".toml") else {
            continue;
        };
        // `.toml` alone must not become the empty name, the top level's
        // key in shards and summaries.
        let name = match String::from_utf8_lossy(stem).into_owned() {
            n if n.is_empty() => ".toml".to_string(),
            n => n,
        };
        // Named in messages as printable text: a file name may hold a
        // newline, which would forge a line of a table or log.
        let shown = PathBuf::from(printable(&path.to_string_lossy()));
        let entry = tenant_file(&path, &shown)
            .and_then(|text| {
                toml::from_str::<toml::Table>(&text)
                    .map_err(|e| format!("{:#}", syntax_error(&text, &shown, &e)))
            })
            .map(|table| Declared {
                table,
                source: shown.clone(),
                dir: dir.to_path_buf(),
            });
        if entry.is_err() {
            loose_vars.extend(loose_secret_vars(&path));
        }
        out.push((name, entry));
    }
    Ok(out)
}

/// The most bytes a tenant file may have: a few keys per database.
const MAX_TENANT_FILE: u64 = 1024 * 1024;

/// The most bytes of a broken tenant file searched for secret variables.
const MAX_SCANNED_FILE: u64 = 64 * 1024 * 1024;

/// The variables a tenant file that cannot be used (it does not parse, or
/// is too large) seems to name with `password_env` or `url_env`, found in
/// its text without parsing it: kept from every child all the same, since
/// the platform may have set them.
fn loose_secret_vars(path: &Path) -> Vec<String> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let Ok(file) = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
    else {
        return Vec::new();
    };
    if !file.metadata().is_ok_and(|m| m.is_file()) {
        return Vec::new();
    }
    let mut bytes = Vec::new();
    if file.take(MAX_SCANNED_FILE).read_to_end(&mut bytes).is_err() {
        return Vec::new();
    }
    secret_vars_in_text(&String::from_utf8_lossy(&bytes))
}

/// Every `password_env = "X"` / `url_env = 'X'` (any quoting of the key,
/// dotted or inline) in `text`.
fn secret_vars_in_text(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for key in ["password_env", "url_env"] {
        for (at, _) in text.match_indices(key) {
            let rest = text[at + key.len()..].trim_start_matches(['"', '\'', ' ', '\t']);
            let Some(rest) = rest.strip_prefix('=') else {
                continue;
            };
            let rest = rest.trim_start_matches([' ', '\t']);
            let Some(quote) = rest.chars().next().filter(|c| *c == '"' || *c == '\'') else {
                continue;
            };
            let value: String = rest[1..]
                .chars()
                .take_while(|c| *c != quote && *c != '\n')
                .collect();
            if !value.is_empty() {
                out.push(value);
            }
        }
    }
    out
}

/// A tenant file's text. Anything but a regular file is refused without
/// being opened (a FIFO would block the whole run for ever, a device
/// would never end), as is a dangling link or a directory named `.toml`:
/// each is a broken tenant, never a silently missing one.
fn tenant_file(path: &Path, shown: &Path) -> std::result::Result<String, String> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let cannot =
        |e: std::io::Error| format!("cannot read the tenant file {}: {e}", shown.display());
    // Opened without blocking and judged by what was opened, so a file
    // swapped for a FIFO after a check still cannot hold the run.
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .map_err(cannot)?;
    let meta = file.metadata().map_err(cannot)?;
    if !meta.is_file() {
        return Err(format!(
            "the tenant file {} is not a regular file ({}); a tenant file holds TOML",
            shown.display(),
            if meta.is_dir() {
                "a folder"
            } else {
                "a pipe, socket or device"
            }
        ));
    }
    let mut text = String::new();
    file.take(MAX_TENANT_FILE + 1)
        .read_to_string(&mut text)
        .map_err(cannot)?;
    if text.len() as u64 > MAX_TENANT_FILE {
        return Err(format!(
            "the tenant file {} is larger than the {MAX_TENANT_FILE} bytes a tenant's keys need",
            shown.display()
        ));
    }
    Ok(text)
}

/// One tenant's config: its keys over the top level's, its backups below
/// `<remote>/tenants/<name>/` unless it names its own remote.
fn resolve(
    name: &str,
    d: Declared,
    top_layer: &SettingsLayer,
    top: &Config,
    ceiling: &crate::policy::limits::LimitsSection,
) -> Result<Config> {
    let table = d.table;
    if let Some((key, value, most)) = limits_above(&table, ceiling) {
        return Err(key_error(
            &d.source,
            &key,
            format!(
                "is {value}; a tenant's own policies and hooks may set at most {most} (the top level's tenant_limits): one tenant's guest must not hold a backup-all job, or the machine, longer than the operator allows"
            ),
        ));
    }
    for key in super::TENANT_KEYS {
        if table.contains_key(key) {
            return Err(key_error(
                &d.source,
                key,
                "tenants do not nest: only the top level of the config file declares tenants"
                    .into(),
            ));
        }
    }
    for key in OPERATOR_KEYS {
        if table.contains_key(key) {
            return Err(key_error(
                &d.source,
                key,
                "is the operator's, set at the top level only: a tenant's would run a program of its choosing (or read the operator's rclone remotes) with the operator's rights and environment".into(),
            ));
        }
    }
    if let Some(toml::Value::String(remote)) = table.get("remote") {
        // `:backend,option=value,...:path` sets backend options the way
        // rclone_flags do (`ssh=`, `key_file=`, an `alias` of any path):
        // a tenant names a remote of the operator's rclone config, or a
        // path, or `:backend:path`.
        if remote.starts_with(':') && remote.split(':').nth(1).is_some_and(|b| b.contains(',')) {
            return Err(key_error(
                &d.source,
                "remote",
                "is a connection string with options, which may run a program, read a key of the machine or reach any folder under another name; a tenant's remote is a remote of the operator's rclone config (`name:path`), a path, or `:backend:path`".into(),
            ));
        }
    }
    if let Some(toml::Value::Array(flags)) = table.get("rclone_flags") {
        if let Some(flag) = flags
            .iter()
            .filter_map(toml::Value::as_str)
            .find(|f| runs_a_program(f))
        {
            return Err(key_error(
                &d.source,
                "rclone_flags",
                format!(
                    "holds `{}`, which makes rclone run a program or use a client key of the machine; a tenant's rclone flags may not (set such flags at the top level)",
                    printable(flag)
                ),
            ));
        }
    }
    if let Some((i, entry, range)) = reserved_http_grant(&table) {
        return Err(key_error(
            &d.source,
            &format!("hooks[{i}].allow_http"),
            format!(
                "grants `{entry}`, an address in a reserved range ({range}): the operator's network, a cloud's metadata service, are not a tenant's to reach (a hook of the top level may be granted such an address)"
            ),
        ));
    }
    let own_remote = table.contains_key("remote");
    let own_media = table.contains_key("media_root");
    let mut layer = Layer::read(table, &d.source, &d.dir)?;
    if !own_remote {
        layer.settings.remote = Some(crate::rclone::join(
            &top.settings.remote,
            &format!("{TENANTS_FOLDER}/{name}"),
        ));
    }
    let mut config = layer.resolve(&d.source, Some((top_layer, &top.policies)))?;
    // The operator's media folder is not a tenant's: backed up into a
    // tenant's folder, or restored with --mirror by a tenant, it would
    // hand over or delete what is not the tenant's. A tenant has media
    // only with a media_root of its own.
    if !own_media {
        config.settings.media_root = None;
    }
    let template = &config.settings.db_filename_template;
    if template.uses_tenant() {
        config.settings.db_filename_template = template
            .for_tenant(name)
            .map_err(|why| key_error(&d.source, "db_filename_template", why))?;
    }
    // Its connections are its own to choose: they get no credential of
    // this machine's (see Database::ambient_credentials).
    let databases = std::mem::take(&mut config.databases);
    for (alias, entry) in databases {
        let entry = entry
            .without_ambient_credentials()
            .map_err(|(key, why)| key_error(&d.source, &format!("databases.{alias}.{key}"), why))?;
        config.databases.insert(alias, entry);
    }
    config.tenant = Some(name.to_string());
    Ok(config)
}

/// Keys only the top level may set: a tenant's would choose the program
/// rcbackup runs as the operator, or the operator's rclone remotes.
const OPERATOR_KEYS: [&str; 2] = ["rclone_binary", "rclone_config"];

/// Whether an rclone flag makes rclone run a program (`--password-command`,
/// `--webdav-bearer-token-command`, `--sftp-ssh`, `--metadata-mapper`) or
/// use a client certificate or key of this machine.
fn runs_a_program(flag: &str) -> bool {
    let name = flag
        .split('=')
        .next()
        .unwrap_or(flag)
        .to_ascii_lowercase()
        .replace('_', "-");
    name.contains("command")
        || name.ends_with("-ssh")
        || name == "ssh"
        || name.contains("metadata-mapper")
        || name.contains("client-cert")
        || name.contains("client-key")
        || name.contains("key-file")
        || name.contains("pubkey")
        // A file of the machine: a key, credentials, a service account.
        || name.ends_with("-file")
        || name.ends_with("-files")
        || name.ends_with("file")
}

/// With tenants below `<remote>/tenants/`, the top level's own folders
/// must stay out of that folder: a media sync into it would delete every
/// tenant's backups.
fn refuse_top_dirs_in_tenants_folder(top: &Config, file: &Path) -> Result<()> {
    for (key, dir) in [
        ("db_backup_dir", &top.settings.db_backup_dir),
        ("media_backup_dir", &top.settings.media_backup_dir),
    ] {
        let first = dir.split('/').next().unwrap_or_default();
        if first.eq_ignore_ascii_case(TENANTS_FOLDER) {
            return Err(key_error(
                file,
                key,
                format!(
                    "is `{dir}`, inside `{TENANTS_FOLDER}/`, where tenants without their own remote keep their backups; choose another folder, e.g. {key} = \"{}\"",
                    if key == "db_backup_dir" { "db" } else { "media" }
                ),
            ));
        }
    }
    Ok(())
}

/// The places on the remote a config writes to: its database backups and
/// its media mirror (with its version folders below or beside it, which
/// [`Settings::resolve`](super::Settings::resolve) keeps apart).
fn places(c: &Config) -> [String; 3] {
    let s = &c.settings;
    [
        crate::rclone::join(&s.remote, &s.db_backup_dir),
        crate::rclone::join(&s.remote, &s.media_backup_dir),
        crate::rclone::join(&s.remote, &crate::media::versions_dir(&s.media_backup_dir)),
    ]
}

/// Marks broken every tenant whose local `media_root` is, holds or lies
/// inside another tenant's or the top level's: one's `mediarestore
/// --mirror` would delete the other's files, one's backup copy the
/// other's into its own folder.
fn refuse_shared_media_roots(
    entries: &mut BTreeMap<String, std::result::Result<Config, String>>,
    top: &Config,
) {
    let roots: Vec<(Option<String>, PathBuf)> = top
        .settings
        .media_root
        .iter()
        .map(|r| (None, r.clone()))
        .chain(entries.iter().filter_map(|(n, e)| {
            let root = e.as_ref().ok()?.settings.media_root.clone()?;
            Some((Some(n.clone()), root))
        }))
        .map(|(owner, root)| (owner, lexically_normal(&root)))
        .collect();
    let mut found: BTreeMap<String, String> = BTreeMap::new();
    for (name, root) in roots.iter().filter_map(|(n, r)| Some((n.as_ref()?, r))) {
        let clash = roots.iter().find(|(o, r)| {
            o.as_ref() != Some(name) && (root.starts_with(r) || r.starts_with(root))
        });
        if let Some((other, r)) = clash {
            let whose = match other {
                Some(o) => format!("tenant `{o}`'s"),
                None => "the top level's".to_string(),
            };
            found.insert(
                name.clone(),
                format!(
                    "tenant `{name}`: its media_root {} overlaps {whose} media_root {}; each tenant's media needs a folder of its own",
                    root.display(),
                    r.display()
                ),
            );
        }
    }
    for (name, why) in found {
        entries.insert(name, Err(why));
    }
}

/// `path` with `.` dropped and `..` resolved, without asking the disk
/// (the folder need not exist yet): one spelling to compare.
fn lexically_normal(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir => {
                out.pop();
            }
            c => out.push(c),
        }
    }
    out
}

/// Whether `a` is `b` or lies inside it, as rclone paths, regardless of
/// case (storage that ignores case makes `Tenants/a` and `tenants/a` one).
fn inside(a: &str, b: &str) -> bool {
    let (a, b) = (a.to_lowercase(), b.to_lowercase());
    let (a, b) = (a.trim_end_matches('/'), b.trim_end_matches('/'));
    a == b || a.starts_with(&format!("{b}/")) || (b.ends_with(':') && a.starts_with(b))
}

/// Marks broken every tenant whose name is another's for variables
/// (`a-b` and `a_b` are both `TENANT_A_B_`): neither could tell its
/// variables from the other's.
fn refuse_one_namespace(declared: &mut BTreeMap<String, std::result::Result<Declared, String>>) {
    let mut by_prefix: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for name in declared.keys().filter(|n| check_tenant_name(n).is_ok()) {
        by_prefix
            .entry(tenant_var_prefix(name))
            .or_default()
            .push(name.clone());
    }
    for (prefix, names) in by_prefix.into_iter().filter(|(_, n)| n.len() > 1) {
        for name in &names {
            let others: Vec<String> = names
                .iter()
                .filter(|o| *o != name)
                .map(|o| format!("`{o}`"))
                .collect();
            let why = format!(
                "tenant `{name}`: its name and {} are one for its variables ({prefix}...), which must be each tenant's own; rename one of them",
                others.join(", ")
            );
            declared.insert(name.clone(), Err(why));
        }
    }
}

/// The first `limits` key of a tenant's own policies or hooks above the
/// ceiling: (its key, its value, the most allowed).
fn limits_above(
    table: &toml::Table,
    ceiling: &crate::policy::limits::LimitsSection,
) -> Option<(String, u64, u64)> {
    let parse = |v: &toml::Value| -> Option<crate::policy::limits::LimitsSection> {
        v.get("limits")?.clone().try_into().ok()
    };
    let policies = table
        .get("policies")
        .and_then(toml::Value::as_table)
        .into_iter()
        .flatten()
        .map(|(role, v)| (format!("policies.{role}.limits"), v));
    let hooks = table
        .get("hooks")
        .and_then(toml::Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
        .map(|(i, v)| (format!("hooks[{i}].limits"), v));
    policies.chain(hooks).find_map(|(at, v)| {
        let (key, value, most) = parse(v)?.above(ceiling)?;
        Some((format!("{at}.{key}"), value, most))
    })
}

/// A hook of a tenant's own granted an address in a reserved range (the
/// loopback, the machine's private network, a cloud's metadata service at
/// 169.254.169.254): (the hook's index, the entry).
fn reserved_http_grant(table: &toml::Table) -> Option<(usize, String, &'static str)> {
    let hooks = table.get("hooks")?.as_array()?;
    hooks.iter().enumerate().find_map(|(i, hook)| {
        let grants = hook.get("allow_http")?.as_array()?;
        grants
            .iter()
            .filter_map(toml::Value::as_str)
            .find_map(|entry| {
                let grant = crate::policy::http::grant::Grant::parse(entry).ok()?;
                match grant.host {
                    crate::policy::http::grant::HostPattern::Address(ip) => {
                        crate::policy::http::grant::reserved_range(ip)
                            .map(|range| (i, entry.to_string(), range))
                    }
                    _ => None,
                }
            })
    })
}

/// What every tenant's secret variable starts with: `TENANT_<NAME>_`.
const TENANT_VAR_PREFIX: &str = "TENANT_";

/// The prefix of tenant `name`'s secret variables: `TENANT_ACME_SHOP_` for
/// `acme-shop`.
fn tenant_var_prefix(name: &str) -> String {
    format!(
        "{TENANT_VAR_PREFIX}{}_",
        name.to_ascii_uppercase().replace('-', "_")
    )
}

/// Marks broken every tenant that takes a secret from a variable outside
/// its namespace (`TENANT_<NAME>_...`), and gives the others' variables.
/// The operator's environment holds what the tools read for themselves
/// (PATH, HOME, rclone's AWS_SECRET_ACCESS_KEY, ...): a tenant file naming
/// one would send it to a server of the tenant's choosing as a password.
/// A namespace keeps them all out, where a list of names would miss one.
///
/// A namespace inside another's belongs to the longer name: `TENANT_A_B_PW`
/// is tenant `a-b`'s (or `a_b`'s) whenever such a tenant is declared (even
/// broken), never `a`'s, so `a`'s file cannot take `a-b`'s password nor
/// break `a-b` by naming it.
fn refuse_foreign_variables(
    declared: &mut BTreeMap<String, std::result::Result<Declared, String>>,
    secret_vars: BTreeMap<String, Vec<String>>,
    namespaces: &[String],
) -> BTreeMap<String, Vec<String>> {
    let mut kept = BTreeMap::new();
    for (name, vars) in secret_vars {
        let prefix = tenant_var_prefix(&name);
        let owner = |var: &str| -> Option<&String> {
            namespaces
                .iter()
                .filter(|p| p.len() > prefix.len() && var.starts_with(p.as_str()))
                .max_by_key(|p| p.len())
        };
        let foreign = vars
            .iter()
            .find(|v| !v.starts_with(&prefix) || owner(v).is_some());
        let Some(var) = foreign else {
            kept.insert(name, vars);
            continue;
        };
        let Some(Ok(d)) = declared.get(&name) else {
            continue;
        };
        if let Some(other) = owner(var) {
            let why = format!(
                "{}: tenant `{name}`: it takes a secret (a database's password_env or url_env, a hook's secrets) from the variable {var}, which is in another tenant's namespace ({other}...); a tenant's variables must be its own (e.g. {prefix}DB_PASSWORD)",
                d.source.display(),
            );
            declared.insert(name, Err(why));
            continue;
        }
        let why = format!(
            "{}: tenant `{name}`: it takes a secret (a database's password_env or url_env, a hook's secrets) from the variable {var}; a tenant's variables must be its own, named {prefix}... (e.g. {prefix}DB_PASSWORD), so that no tenant file can name one of the operator's (PATH, AWS_SECRET_ACCESS_KEY, ...)",
            d.source.display(),
        );
        declared.insert(name, Err(why));
    }
    kept
}

/// Marks broken every tenant that takes a secret (`password_env`,
/// `url_env`) from a variable another tenant or the top level also names:
/// each tenant's secrets may reach only its own processes, and a tenant
/// file (often generated from what a tenant typed) that names another's
/// variable would hand that password to its own dump tool, connected to a
/// server of its choosing.
fn refuse_shared_secrets(
    declared: &mut BTreeMap<String, std::result::Result<Declared, String>>,
    secret_vars: &BTreeMap<String, Vec<String>>,
    top_vars: &[String],
) {
    let mut owners: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (name, vars) in secret_vars {
        let vars: std::collections::BTreeSet<&String> = vars.iter().collect();
        for var in vars {
            owners.entry(var).or_default().push(name);
        }
    }
    let mut broken: BTreeMap<String, String> = BTreeMap::new();
    for (var, tenants) in &owners {
        let by_top = top_vars.iter().any(|t| t == var);
        if tenants.len() + usize::from(by_top) < 2 {
            continue;
        }
        for t in tenants {
            let others: Vec<String> = tenants
                .iter()
                .filter(|o| *o != t)
                .map(|o| format!("tenant `{o}`"))
                .chain(by_top.then(|| "the top level".to_string()))
                .collect();
            let source = match &declared[*t] {
                Ok(d) => d.source.display().to_string(),
                Err(_) => continue,
            };
            broken.entry(t.to_string()).or_insert(format!(
                "{}: tenant `{t}`: it takes a secret (a database's password_env or url_env, a hook's secrets) from the variable {var}, which {} also names; a tenant's secrets may reach only its own dump and restore processes, so each tenant needs variables of its own (e.g. {}DB_PASSWORD)",
                source,
                others.join(" and "),
                tenant_var_prefix(t)
            ));
        }
    }
    for (name, why) in broken {
        declared.insert(name, Err(why));
    }
}

/// Marks broken every tenant whose places overlap another tenant's or the
/// top level's: one tenant's cleanup or media sync would delete or read the
/// other's backups. Only a tenant with its own `remote` can overlap (the
/// others each have their own folder); names written differently for the
/// same storage (two rclone remotes on one bucket) cannot be seen here.
fn refuse_overlaps(
    entries: &mut BTreeMap<String, std::result::Result<Config, String>>,
    top: &Config,
) {
    let mut owners: Vec<(Option<&str>, String)> =
        places(top).into_iter().map(|p| (None, p)).collect();
    owners.push((
        None,
        crate::rclone::join(&top.settings.remote, TENANTS_FOLDER),
    ));
    let mut found: BTreeMap<String, String> = BTreeMap::new();
    let resolved: Vec<(&str, [String; 3])> = entries
        .iter()
        .filter_map(|(n, e)| e.as_ref().ok().map(|c| (n.as_str(), places(c))))
        .collect();
    let own_remote = |name: &str| {
        let inherited =
            crate::rclone::join(&top.settings.remote, &format!("{TENANTS_FOLDER}/{name}"));
        entries[name]
            .as_ref()
            .is_ok_and(|c| c.settings.remote != inherited)
    };
    for (name, ps) in &resolved {
        if !own_remote(name) {
            owners.extend(ps.iter().map(|p| (Some(*name), p.clone())));
        }
    }
    for (name, ps) in &resolved {
        if !own_remote(name) {
            continue;
        }
        for p in ps {
            let clash = owners
                .iter()
                .find(|(owner, q)| *owner != Some(*name) && (inside(p, q) || inside(q, p)));
            if let Some((owner, q)) = clash {
                // Two tenants with their own remotes on one place: neither
                // may run, or the first one's cleanup would see the other's.
                if let Some(o) = owner.filter(|o| own_remote(o)) {
                    found.entry(o.to_string()).or_insert(format!(
                        "tenant `{o}`: its folder `{q}` overlaps tenant `{name}`'s folder `{p}`; each tenant's backups need a place of their own. Give one of them another remote"
                    ));
                }
                let whose = match owner {
                    Some(o) => format!("tenant `{o}`'s folder `{q}`"),
                    None => format!("the top level's folder `{q}`"),
                };
                found.entry(name.to_string()).or_insert(format!(
                    "tenant `{name}`: its folder `{p}` overlaps {whose}; each tenant's backups need a place of their own. Give it another remote (or leave `remote` out to use {})",
                    crate::rclone::join(&top.settings.remote, &format!("{TENANTS_FOLDER}/{name}"))
                ));
            }
        }
        owners.extend(ps.iter().map(|p| (Some(*name), p.clone())));
    }
    for (name, why) in found {
        entries.insert(name, Err(why));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A config file `main` in a fresh folder, with `files` in `tenants/`.
    fn load(main: &str, files: &[(&str, &str)]) -> (tempfile::TempDir, Config) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("tenants")).unwrap();
        for (name, text) in files {
            std::fs::write(dir.path().join("tenants").join(name), text).unwrap();
        }
        for module in ["top.wasm", "c.wasm", "r.wasm"] {
            std::fs::write(dir.path().join(module), b"").unwrap();
        }
        let path = dir.path().join("rcbackup.toml");
        std::fs::write(&path, main).unwrap();
        let c = Config::load(&path).unwrap();
        (dir, c)
    }

    fn broken<'a>(c: &'a Config, name: &str) -> &'a str {
        let (_, e) = c.tenants.entries().find(|(n, _)| *n == name).expect(name);
        e.expect_err(name)
    }

    const SQLITE: &str = "[databases.main]\nengine = \"sqlite\"\nname = \"app.db\"\n";

    /// Outside review (round 5): two tenants (or a tenant and the top
    /// level) with one local media folder, or one inside the other.
    #[test]
    fn media_roots_may_not_overlap() {
        let (dir, c) = load(
            "remote = \"backups\"\nmedia_root = \"media\"\ntenants_dir = \"tenants\"\n",
            &[
                ("top.toml", "media_root = \"../media/sub\"\n"),
                ("a.toml", "media_root = \"/srv/shared\"\n"),
                ("b.toml", "media_root = \"/srv/shared/b\"\n"),
                ("own.toml", "media_root = \"/srv/own\"\n"),
                ("none.toml", ""),
            ],
        );
        for (t, other) in [
            ("top", "the top level's"),
            ("a", "tenant `b`'s"),
            ("b", "tenant `a`'s"),
        ] {
            assert!(broken(&c, t).contains(other), "{t}: {}", broken(&c, t));
        }
        assert!(c.tenants.get("own", &c.path).is_ok());
        let none = c.clone().select(Some("none")).unwrap();
        assert_eq!(none.settings.media_root, None);
        let _ = dir;
    }

    #[test]
    fn tenants_inherit_and_live_below_their_own_folder() {
        let main = format!(
            "remote = \"backups\"\ndb_cleanup_keep = 3\nmedia_root = \"media\"\ntenants_dir = \"tenants\"\n\
             [tenants.acme]\ndb_cleanup_keep = 7\n{}",
            SQLITE.replace("[databases.", "[tenants.acme.databases.")
        );
        let (dir, c) = load(
            &main,
            &[("globex.toml", SQLITE), ("README", "not a tenant")],
        );
        let root = dir.path();
        let acme = c.clone().select(Some("acme")).unwrap();
        assert_eq!(acme.tenant.as_deref(), Some("acme"));
        assert_eq!(acme.settings.db_cleanup_keep, 7);
        assert_eq!(
            acme.settings.remote,
            format!("{}/backups/tenants/acme", root.display())
        );
        let globex = c.clone().select(Some("globex")).unwrap();
        assert_eq!(globex.settings.db_cleanup_keep, 3);
        assert_eq!(
            globex.settings.remote,
            format!("{}/backups/tenants/globex", root.display())
        );
        // The operator's media folder is not inherited (outside review,
        // issue 10 round 5: a tenant backed it up and --mirror restored
        // over it); a tenant file's own paths are relative to its folder.
        assert_eq!(globex.settings.media_root, None);
        let db = globex.database(Some("main")).unwrap();
        assert_eq!(db.name, root.join("tenants/app.db").to_str().unwrap());
        assert_eq!(c.tenants.len(), 2);
        assert!(c.tenant.is_none());
        let e = format!(
            "{:#}",
            c.clone().select(None).unwrap().database(None).unwrap_err()
        );
        assert!(e.contains("--tenant") && e.contains("acme, globex"), "{e}");
    }

    #[test]
    fn a_broken_tenant_breaks_only_itself() {
        let (_d, c) = load(
            "remote = \"b:\"\ntenants_dir = \"tenants\"\n[tenants.dup]\n",
            &[
                ("good.toml", SQLITE),
                ("Acme.toml", SQLITE),
                ("bad-key.toml", "db_cleanup_kep = 3\n"),
                ("bad-syntax.toml", "db_cleanup_keep = \n"),
                ("dup.toml", ""),
                ("nested.toml", "tenants_dir = \"x\"\n"),
                ("zero.toml", "db_cleanup_keep = 0\n"),
            ],
        );
        assert!(c.clone().select(Some("good")).is_ok());
        assert!(broken(&c, "Acme").contains("did you mean `acme`?"));
        assert!(broken(&c, "bad-key").contains("did you mean `db_cleanup_keep`?"));
        assert!(broken(&c, "bad-key").contains("bad-key.toml"));
        assert!(broken(&c, "bad-syntax").contains("line 1"));
        assert!(broken(&c, "dup").contains("defined twice"));
        assert!(broken(&c, "nested").contains("do not nest"));
        assert!(broken(&c, "zero").contains("db_cleanup_keep"));
        let e = c.clone().select(Some("zero")).unwrap_err();
        assert_eq!(exit::code_for(&e), exit::ExitCode::Usage);
        for bad in ["../x", "a/b", "", "UPPER", "x.y", &"a".repeat(64)] {
            let e = format!("{:#}", c.clone().select(Some(bad)).unwrap_err());
            assert!(e.contains("not a tenant name"), "{bad}: {e}");
        }
        let e = format!("{:#}", c.clone().select(Some("nobody")).unwrap_err());
        assert!(
            e.contains("no tenant `nobody`") && e.contains("good"),
            "{e}"
        );
    }

    /// Found by a hostile check: a tenant file naming another tenant's (or
    /// the top level's) password variable would hand that secret to its
    /// own dump tool.
    #[test]
    fn no_two_tenants_share_a_secret_variable() {
        let db = |var: &str| {
            format!("[databases.main]\nengine = \"postgresql\"\nname = \"x\"\nhost = \"db\"\npassword_env = \"{var}\"\n")
        };
        let (_d, c) = load(
            &format!(
                "remote = \"b:app\"\ntenants_dir = \"tenants\"\n{}",
                db("TENANT_C_PW")
            ),
            &[
                // `a`'s prefix holds `a-b`'s namespace.
                ("a.toml", &db("TENANT_A_B_PW")),
                ("a-b.toml", &db("TENANT_A_B_PW")),
                ("c.toml", &db("TENANT_C_PW")),
                ("d.toml", &db("D_PW")),
                (
                    "e.toml",
                    "[databases.main]\nengine = \"postgresql\"\nname = \"x\"\nurl_env = \"AWS_SECRET_ACCESS_KEY\"\n",
                ),
                ("f.toml", &db("TENANT_F_PW")),
            ],
        );
        // `a` may not name what is `a-b`'s; `a-b` keeps it.
        assert!(
            broken(&c, "a").contains("another tenant's namespace (TENANT_A_B_...)"),
            "{}",
            broken(&c, "a")
        );
        assert!(c.tenants.get("a-b", &c.path).is_ok());
        let why = broken(&c, "c");
        assert!(
            why.contains("the top level") && why.contains("variables of its own"),
            "{why}"
        );
        assert!(why.contains("tenants/c.toml"), "{why}");
        for (t, var, prefix) in [
            ("d", "D_PW", "TENANT_D_"),
            ("e", "AWS_SECRET_ACCESS_KEY", "TENANT_E_"),
        ] {
            let why = broken(&c, t);
            assert!(
                why.contains(var) && why.contains(&format!("named {prefix}...")),
                "{t}: {why}"
            );
        }
        assert!(c.tenants.get("f", &c.path).is_ok());
        assert!(
            c.clone().select(None).is_ok(),
            "the top level is the operator's"
        );
    }

    #[test]
    fn places_may_not_overlap() {
        let (_d, c) = load(
            "remote = \"b:app\"\n\
             [tenants.a]\nremote = \"b:app/db/x\"\n\
             [tenants.b]\nremote = \"b:app/tenants/c\"\n\
             [tenants.c]\n\
             [tenants.d]\nremote = \"s3:shared\"\n\
             [tenants.e]\nremote = \"s3:shared\"\n\
             [tenants.f]\nremote = \"s3:f\"\n",
            &[],
        );
        assert!(
            broken(&c, "a").contains("top level's folder `b:app/db`"),
            "{}",
            broken(&c, "a")
        );
        assert!(
            broken(&c, "b").contains("overlaps the top level's folder `b:app/tenants`"),
            "{}",
            broken(&c, "b")
        );
        assert!(
            broken(&c, "d").contains("tenant `e`"),
            "{}",
            broken(&c, "d")
        );
        assert!(
            broken(&c, "e").contains("tenant `d`"),
            "{}",
            broken(&c, "e")
        );
        assert!(c.clone().select(Some("c")).is_ok());
        assert!(c.clone().select(Some("f")).is_ok());
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.toml");
        std::fs::write(
            &path,
            "remote = \"b:\"\nmedia_backup_dir = \"tenants/m\"\n[tenants.a]\n",
        )
        .unwrap();
        let e = format!("{:#}", Config::load(&path).unwrap_err());
        assert!(
            e.contains("media_backup_dir") && e.contains("tenants/"),
            "{e}"
        );
    }

    /// Outside review: the same place spelled with `..`, `.` or `//` passed
    /// the overlap check (a tenant's backups restored into the top level's
    /// database, one tenant's prune deleting another's backups, a tenant's
    /// media sync into `tenants/` deleting every tenant's backups), and a
    /// remote path with `..` made every backup unreadable through the API.
    #[test]
    fn places_are_compared_as_one_spelling() {
        let (_d, c) = load(
            "remote = \"remote\"\ntenants_dir = \"tenants\"\nmedia_versions = true\n\
             [tenants.acme]\n\
             [tenants.dotdot]\nremote = \"tenants/../remote\"\n\
             [tenants.dot]\nremote = \"./remote//tenants/acme\"\n\
             [tenants.media]\nremote = \"x/../remote\"\nmedia_backup_dir = \"tenants\"\n\
             [tenants.versions]\nremote = \"remote/media-versions\"\n\
             [tenants.named]\nremote = \"b:x/../y\"\n\
             [tenants.fine]\nremote = \"b://store/./fine/\"\n\
             [tenants.abs]\nremote = \"/srv/store\"\n\
             [tenants.onthefly]\nremote = \":local:/x/../srv/store/\"\n\
             [tenants.relfly]\nremote = \":local:remote/tenants/acme\"\n\
             [tenants.relown]\nremote = \":local:own/./x\"\n\
             [tenants.upper]\nremote = \"REMOTE/Tenants/ACME\"\n\
             [tenants.s3]\nremote = \":s3:bucket/./app/\"\n",
            &[("rel.toml", "remote = \"../remote\"\n")],
        );
        for t in [
            // `upper`: storage that ignores case makes it acme's folder.
            "dotdot", "dot", "media", "versions", "rel", "onthefly", "relfly", "upper",
        ] {
            assert!(broken(&c, t).contains("overlaps"), "{t}: {}", broken(&c, t));
        }
        assert!(
            broken(&c, "named").contains("`..`"),
            "{}",
            broken(&c, "named")
        );
        let fine = c.clone().select(Some("fine")).unwrap();
        assert_eq!(fine.settings.remote, "b:/store/fine");
        // Relative to the config's folder, as a bare path is.
        let relown = c.clone().select(Some("relown")).unwrap();
        assert_eq!(
            relown.settings.remote,
            _d.path().join("own/x").display().to_string()
        );
        let s3 = c.clone().select(Some("s3")).unwrap();
        assert_eq!(s3.settings.remote, ":s3:bucket/app");
        assert!(c.clone().select(Some("acme")).is_ok());
    }

    /// Outside review: a FIFO named `x.toml` blocked the whole run for ever
    /// (before any job, deaf to the first SIGTERM); a dangling link and a
    /// folder named `x.toml` made a tenant silently disappear.
    #[test]
    fn only_regular_files_are_tenant_files() {
        let dir = tempfile::tempdir().unwrap();
        let t = dir.path().join("tenants");
        std::fs::create_dir(&t).unwrap();
        std::fs::write(t.join("good.toml"), "").unwrap();
        let fifo = std::ffi::CString::new(t.join("fifo.toml").to_str().unwrap()).unwrap();
        // SAFETY: mkfifo on a path we own.
        assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0);
        std::os::unix::fs::symlink(dir.path().join("missing"), t.join("dangling.toml")).unwrap();
        std::fs::create_dir(t.join("folder.toml")).unwrap();
        std::fs::write(t.join(".toml"), "").unwrap();
        std::fs::write(t.join("huge.toml"), vec![b'#'; 1024 * 1024 + 1]).unwrap();
        let path = dir.path().join("rcbackup.toml");
        std::fs::write(&path, "remote = \"b:\"\ntenants_dir = \"tenants\"\n").unwrap();
        let c = Config::load(&path).unwrap();
        assert!(c.clone().select(Some("good")).is_ok());
        assert!(
            broken(&c, "fifo").contains("not a regular file"),
            "{}",
            broken(&c, "fifo")
        );
        assert!(
            broken(&c, "folder").contains("a folder"),
            "{}",
            broken(&c, "folder")
        );
        assert!(
            broken(&c, "dangling").contains("cannot read"),
            "{}",
            broken(&c, "dangling")
        );
        assert!(
            broken(&c, "huge").contains("larger than"),
            "{}",
            broken(&c, "huge")
        );
        assert!(
            broken(&c, ".toml").contains("not a tenant name"),
            "{}",
            broken(&c, ".toml")
        );
    }

    #[test]
    fn hooks_are_inherited_unless_the_tenant_has_its_own() {
        let (dir, c) = load(
            "remote = \"b:\"\n[[hooks]]\nmodule = \"top.wasm\"\n[tenants.a]\n[tenants.b]\nhooks = []\n\
             [tenants.c]\n[[tenants.c.hooks]]\nmodule = \"c.wasm\"\n[tenants.c.policies.retention]\nmodule = \"r.wasm\"\n",
            &[],
        );
        let hooks = |t: &str| -> Vec<PathBuf> {
            let c = c.clone().select(Some(t)).unwrap();
            c.policies
                .hooks
                .iter()
                .map(|h| h.module.path.clone())
                .collect()
        };
        assert_eq!(hooks("a"), vec![dir.path().join("top.wasm")]);
        assert!(hooks("b").is_empty());
        assert_eq!(hooks("c"), vec![dir.path().join("c.wasm")]);
        let c3 = c.clone().select(Some("c")).unwrap();
        assert_eq!(
            c3.policies.retention.unwrap().path,
            dir.path().join("r.wasm")
        );
        assert!(c
            .clone()
            .select(Some("a"))
            .unwrap()
            .policies
            .retention
            .is_none());
    }
}
