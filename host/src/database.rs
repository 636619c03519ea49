//! A configured database: its engine, where it lives, and how its password
//! is found. The password itself is read from the environment only when a
//! command needs it, and is handed to the dump and restore tools through
//! their environment, never through argv.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use anyhow::Result;
use serde::Deserialize;

use crate::compression::Compression;
use crate::exit;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EngineKind {
    Postgresql,
    Postgis,
    Mysql,
    Mariadb,
    Sqlite,
}

impl EngineKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EngineKind::Postgresql => "postgresql",
            EngineKind::Postgis => "postgis",
            EngineKind::Mysql => "mysql",
            EngineKind::Mariadb => "mariadb",
            EngineKind::Sqlite => "sqlite",
        }
    }

    fn from_url_scheme(s: &str) -> Option<EngineKind> {
        Some(match s {
            "postgres" | "postgresql" | "pgsql" => EngineKind::Postgresql,
            "postgis" => EngineKind::Postgis,
            "mysql" => EngineKind::Mysql,
            "mariadb" => EngineKind::Mariadb,
            "sqlite" | "sqlite3" => EngineKind::Sqlite,
            _ => return None,
        })
    }
}

impl fmt::Display for EngineKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `[databases.<alias>]` as written.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseSection {
    pub engine: Option<EngineKind>,
    pub name: Option<String>,
    pub host: Option<String>,
    pub port: Option<u16>,
    pub user: Option<String>,
    pub password_env: Option<String>,
    pub url: Option<String>,
    pub url_env: Option<String>,
    #[serde(default)]
    pub dump_args: Vec<String>,
    #[serde(default)]
    pub restore_args: Vec<String>,
    /// Overrides the top-level `compression` (read by the config).
    pub compression: Option<String>,
}

/// Where the password comes from. Never holds the password itself, and
/// its Debug shows no variable name either (a common mistake is to write
/// the password itself where the name belongs), so a `Database` can be
/// printed or logged safely.
#[derive(Clone, PartialEq, Eq)]
pub enum PasswordSource {
    None,
    /// The name of an environment variable holding the password.
    Env(String),
    /// The password part of the URL held in this environment variable.
    UrlEnv(String),
    /// The password part of the `url` key. The URL is kept out of Debug.
    Url(Redacted),
    /// A password rcbackup made itself (a drill's temporary MariaDB user).
    Given(Redacted),
}

impl fmt::Debug for PasswordSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PasswordSource::None => "None",
            PasswordSource::Env(_) => "Env(***)",
            PasswordSource::UrlEnv(_) => "UrlEnv(***)",
            PasswordSource::Url(_) => "Url(***)",
            PasswordSource::Given(_) => "Given(***)",
        })
    }
}

/// A string that prints as `***`.
#[derive(Clone, PartialEq, Eq)]
pub struct Redacted(String);

impl Redacted {
    pub fn new(secret: String) -> Redacted {
        Redacted(secret)
    }
}

impl fmt::Debug for Redacted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// Connection options from a URL's query string, as the engine's tools
/// take them: libpq's environment variables (`PGSSLMODE`, ...) for
/// PostgreSQL, options of the MariaDB client for MariaDB/MySQL. Only
/// non-secret parameters are accepted, so both may be logged.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConnOptions {
    /// Variables set in the tools' environment.
    pub env: Vec<(&'static str, String)>,
    /// Options added to the tools' command line.
    pub args: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct Database {
    pub alias: String,
    pub engine: EngineKind,
    /// The database name, or the file path for SQLite.
    pub name: String,
    pub host: Option<String>,
    pub port: Option<u16>,
    pub user: Option<String>,
    pub password: PasswordSource,
    /// What the URL's query string asked of the connection (TLS, timeouts).
    pub options: ConnOptions,
    pub dump_args: Vec<String>,
    pub restore_args: Vec<String>,
    /// A drill's scratch copy, restored from a backup that is not trusted
    /// to be what rcbackup made: its restore tools run confined (no option
    /// files, no client commands, no local files) and their failures speak
    /// of the scratch copy, not of a live database.
    pub scratch: bool,
    /// Whether the tools may use credentials rcbackup did not hand them:
    /// `~/.pgpass`, `pg_service.conf`, `~/.postgresql`'s client key,
    /// `~/.my.cnf`, PGPASSWORD or MYSQL_PWD in rcbackup's environment. The
    /// operator's own databases may; a tenant's may not, as its connection
    /// (host, user) is the tenant's to choose and would carry the
    /// operator's password or key to a server of the tenant's choosing.
    pub ambient_credentials: bool,
}

/// The URL parameters that point the tools at a file of credentials
/// (`passfile`, `service`, a client key or certificate): refused for a
/// database without ambient credentials, whose files they would be the
/// operator's.
const CREDENTIAL_FILE_PARAMS: &[&str] = &[
    "PGPASSFILE",
    "PGSERVICE",
    "PGSSLCERT",
    "PGSSLKEY",
    "--ssl-cert",
    "--ssl-key",
];

type KeyError = (&'static str, String);

/// A `[databases.<alias>]` section, checked when the config loads. A
/// database given by `url_env` reads its variable only when a command uses
/// it ([`DatabaseEntry::get`]), so an unset variable breaks only that
/// database, not the others in the file.
#[derive(Debug, Clone)]
pub struct DatabaseEntry {
    alias: String,
    /// The `url_env` section still to be read, if any.
    pending: Option<DatabaseSection>,
    resolved: OnceLock<Database>,
    /// The config file's folder, the base of a relative SQLite path.
    base: Option<PathBuf>,
    /// How its dumps are compressed (its own key, else the top level's).
    compression: Compression,
    /// See [`Database::ambient_credentials`].
    ambient_credentials: bool,
}

/// The rule for a database alias (`[databases.<alias>]`): letters,
/// digits, `_` and `-`; else why not.
pub fn check_alias(alias: &str) -> std::result::Result<(), String> {
    if alias.is_empty()
        || alias
            .chars()
            .any(|c| !(c.is_ascii_alphanumeric() || c == '_' || c == '-'))
    {
        return Err(format!(
            "the alias `{}` may only hold letters, digits, `_` and `-`, e.g. [databases.default]",
            crate::naming::printable(alias)
        ));
    }
    Ok(())
}

impl DatabaseEntry {
    /// Checks the section; a `url_env` is only recorded, not read.
    pub fn from_section(
        alias: &str,
        s: DatabaseSection,
        compression: Compression,
    ) -> std::result::Result<DatabaseEntry, KeyError> {
        check_alias(alias).map_err(|why| ("", why))?;
        let entry = DatabaseEntry {
            alias: alias.to_string(),
            pending: None,
            resolved: OnceLock::new(),
            base: None,
            compression,
            ambient_credentials: true,
        };
        if let Some(var) = &s.url_env {
            check_var_name("url_env", var, "the database URL", "DATABASE_URL")?;
            if s.url.is_some() {
                return Err((
                    "url",
                    "set either `url` or `url_env`, not both: e.g. url_env = \"DATABASE_URL\""
                        .into(),
                ));
            }
            not_beside_url(&s)?;
            return Ok(DatabaseEntry {
                pending: Some(s),
                ..entry
            });
        }
        let db = Database::from_section(alias, s, None)?;
        let _ = entry.resolved.set(db);
        Ok(entry)
    }

    /// Makes a relative SQLite path relative to `base` (the config file's
    /// folder), now or when `url_env` is read: one rule for every path.
    pub fn relative_to(mut self, base: &Path) -> std::result::Result<DatabaseEntry, KeyError> {
        self.base = Some(base.to_path_buf());
        if let Some(db) = self.resolved.take() {
            let _ = self.resolved.set(self.placed(db)?);
        }
        Ok(self)
    }

    /// A tenant's database: its tools get no credential rcbackup did not
    /// hand them ([`Database::ambient_credentials`]), and its URL may not
    /// name a file of credentials.
    pub fn without_ambient_credentials(mut self) -> std::result::Result<DatabaseEntry, KeyError> {
        self.ambient_credentials = false;
        if let Some(db) = self.resolved.take() {
            let _ = self.resolved.set(self.placed(db)?);
        }
        Ok(self)
    }

    fn placed(&self, mut db: Database) -> std::result::Result<Database, KeyError> {
        if let (EngineKind::Sqlite, Some(base)) = (db.engine, &self.base) {
            db.name = crate::config::below(base, &db.name).map_err(|why| ("name", why))?;
        }
        db.ambient_credentials = self.ambient_credentials;
        if !db.ambient_credentials && db.engine != EngineKind::Sqlite {
            // On a local socket the server may take the operator's own OS
            // identity as the login (PostgreSQL's peer, MariaDB's
            // unix_socket): no password needed, no file to keep back.
            let key = match (&self.pending, &db.password) {
                (Some(_), _) => "url_env",
                (None, PasswordSource::Url(_)) => "url",
                _ => "host",
            };
            let socket = match db.host.as_deref() {
                None | Some("") => Some("no host (the tools' default, a local socket)".to_string()),
                // libpq tries each host of a list in turn: one socket folder
                // among them is the socket.
                Some(h) if h.contains(',') => Some(format!(
                    "the host list `{}` (one host only)",
                    crate::naming::printable(h)
                )),
                Some(h) if h.starts_with('/') || h.starts_with('@') => {
                    Some(format!("the socket `{}`", crate::naming::printable(h)))
                }
                Some(_) => db
                    .options
                    .args
                    .iter()
                    .chain(
                        db.options
                            .env
                            .iter()
                            .filter(|(v, _)| *v == "PGHOSTADDR")
                            .map(|(_, a)| a),
                    )
                    .find(|a| {
                        let a = a.to_ascii_lowercase();
                        a.starts_with("--socket") || a.starts_with("--protocol") || a.contains(',')
                    })
                    .map(|_| "a `socket` or `protocol` parameter, or an address list".to_string()),
            };
            if let Some(socket) = socket {
                return Err((
                    key,
                    format!(
                        "a tenant's database is reached over TCP only, and this one has {socket}: on a local socket the server may log in the operator's own user without a password. Give the server's name or address, e.g. host = \"127.0.0.1\""
                    ),
                ));
            }
        }
        if !db.ambient_credentials {
            for (key, args) in [
                ("dump_args", &db.dump_args),
                ("restore_args", &db.restore_args),
            ] {
                tenant_tool_args(db.engine, key, args).map_err(|why| (key, why))?;
            }
        }
        if !db.ambient_credentials {
            let named = db
                .options
                .env
                .iter()
                .map(|(var, _)| *var)
                .chain(
                    db.options
                        .args
                        .iter()
                        .map(|a| a.split('=').next().unwrap_or(a)),
                )
                .find(|p| CREDENTIAL_FILE_PARAMS.contains(p));
            if let Some(p) = named {
                let key = if self.pending.is_some() {
                    "url_env"
                } else {
                    "url"
                };
                return Err((
                    key,
                    format!(
                        "the URL names a file of credentials ({}); a tenant's database may not use files of the machine rcbackup runs on for its login. Put the password in the URL or password_env",
                        credential_param_name(p)
                    ),
                ));
            }
        }
        Ok(db)
    }

    pub fn compression(&self) -> Compression {
        self.compression
    }

    pub fn alias(&self) -> &str {
        &self.alias
    }

    /// The database, reading its `url_env` variable the first time.
    /// The error names the key, never the variable's value.
    pub fn get(&self) -> std::result::Result<&Database, KeyError> {
        if let Some(db) = self.resolved.get() {
            return Ok(db);
        }
        let s = self
            .pending
            .clone()
            .expect("an unresolved entry has a url_env");
        let var = s.url_env.as_deref().unwrap_or_default();
        let url = match std::env::var(var) {
            Ok(u) => u,
            Err(std::env::VarError::NotPresent) => return Err((
                "url_env",
                "names an environment variable that is not set. Export it with this database's URL before running rcbackup (e.g. postgres://user:password@host:5432/name), or choose another database with -d".into(),
            )),
            Err(std::env::VarError::NotUnicode(_)) => {
                return Err((
                    "url_env",
                    "names an environment variable that does not hold text; it must hold the database URL (e.g. postgres://user:password@host:5432/name)".into(),
                ))
            }
        };
        let db = self.placed(Database::from_section(&self.alias, s, Some(&url))?)?;
        Ok(self.resolved.get_or_init(|| db))
    }
}

/// `password_env` and `url_env` hold the NAME of a variable. A value that
/// cannot be one is most likely the secret itself: refused without
/// showing it.
fn check_var_name(
    key: &'static str,
    var: &str,
    holds: &str,
    example: &str,
) -> std::result::Result<(), KeyError> {
    let ok = var
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && var.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if ok {
        Ok(())
    } else {
        Err((
            key,
            format!("is not the name of an environment variable (letters, digits and `_`, not starting with a digit); it must name the variable that holds {holds}, not hold it itself (the value is not shown, as it may be a secret); e.g. {key} = \"{example}\""),
        ))
    }
}

/// Refuses a password in `dump_args` / `restore_args`: it would sit on the
/// tool's command line (readable by every user through `ps`) and in the
/// `-v` log. The value is never shown.
fn check_tool_args(key: &'static str, args: &[String]) -> std::result::Result<(), KeyError> {
    for (i, arg) in args.iter().enumerate() {
        let lower = arg.to_ascii_lowercase();
        let flag = lower.split('=').next().unwrap_or_default();
        // mariadb's `-pSECRET` (pg_dump's `-p` is the port, always digits).
        let short_password = flag.starts_with("-p")
            && !flag.starts_with("--")
            && flag.len() > 2
            && !flag[2..].chars().all(|c| c.is_ascii_digit());
        let in_conninfo = lower.contains("password=");
        let in_url = lower.contains("://")
            && lower
                .split_once("://")
                .and_then(|(_, rest)| rest.split_once('@'))
                .is_some_and(|(userinfo, _)| userinfo.contains(':'));
        if flag.contains("password")
            || flag.contains("passwd")
            || short_password
            || in_conninfo
            || in_url
        {
            return Err((
                key,
                format!(
                    "item {} holds a password (not shown); on the tool's command line every user of the machine can read it (`ps`), and -v logs it. \
                     Put the password in an environment variable and name it with `password_env` (or use `url_env`), and remove it from {key}",
                    i + 1
                ),
            ));
        }
    }
    Ok(())
}

/// The keys a URL already gives.
fn not_beside_url(s: &DatabaseSection) -> std::result::Result<(), KeyError> {
    for (key, set) in [
        ("engine", s.engine.is_some()),
        ("name", s.name.is_some()),
        ("host", s.host.is_some()),
        ("port", s.port.is_some()),
        ("user", s.user.is_some()),
        ("password_env", s.password_env.is_some()),
    ] {
        if set {
            return Err((key, "cannot be combined with `url`/`url_env`: the URL already says it. Put it in the URL (postgres://user:password@host:5432/name) or drop the URL".into()));
        }
    }
    Ok(())
}

impl Database {
    /// A database from its section; `env_url` is the value of its
    /// `url_env` variable, read by the caller.
    fn from_section(
        alias: &str,
        s: DatabaseSection,
        env_url: Option<&str>,
    ) -> std::result::Result<Database, KeyError> {
        let from_url = match (&s.url, env_url) {
            (Some(_), Some(_)) => {
                return Err((
                    "url",
                    "set either `url` or `url_env`, not both: e.g. url_env = \"DATABASE_URL\""
                        .into(),
                ))
            }
            (Some(u), None) => Some((
                parse_url(u).map_err(|e| ("url", e))?,
                PasswordSource::Url(Redacted(u.clone())),
            )),
            (None, Some(u)) => Some((
                parse_url(u)
                    .map_err(|e| ("url_env", format!("the URL in the variable it names: {e}")))?,
                PasswordSource::UrlEnv(s.url_env.clone().unwrap_or_default()),
            )),
            (None, None) => None,
        };
        check_tool_args("dump_args", &s.dump_args)?;
        check_tool_args("restore_args", &s.restore_args)?;
        if let Some((u, password)) = from_url {
            not_beside_url(&s)?;
            let key = if env_url.is_some() { "url_env" } else { "url" };
            let options = conn_options(u.engine, &u.query).map_err(|e| {
                (
                    key,
                    if env_url.is_some() {
                        format!("the URL in the variable it names: {e}")
                    } else {
                        e
                    },
                )
            })?;
            let password = if u.password.is_some() {
                password
            } else {
                PasswordSource::None
            };
            let host =
                match (u.host, options.host) {
                    (Some(_), Some(_)) => return Err((
                        key,
                        "the URL gives a host twice (before the path and as `?host=`); keep one"
                            .into(),
                    )),
                    (a, b) => a.or(b),
                };
            return Ok(Database {
                alias: alias.into(),
                engine: u.engine,
                name: u.name,
                host,
                port: u.port,
                user: u.user,
                password,
                options: options.options,
                dump_args: s.dump_args,
                restore_args: s.restore_args,
                scratch: false,
                ambient_credentials: true,
            });
        }
        let engine = s.engine.ok_or((
            "engine",
            "is required: one of postgresql, postgis, mysql, mariadb, sqlite, e.g. engine = \"postgresql\" (or give the whole database as url = \"postgres://user@host:5432/name\")"
                .to_string(),
        ))?;
        let name = s.name.filter(|n| !n.is_empty()).ok_or((
            "name",
            if engine == EngineKind::Sqlite {
                "is required: the path of the SQLite file, e.g. name = \"/srv/app/db.sqlite3\""
            } else {
                "is required: the database name, e.g. name = \"app\""
            }
            .to_string(),
        ))?;
        if let Some(var) = &s.password_env {
            check_var_name("password_env", var, "the password", "APP_DB_PASSWORD")?;
        }
        if s.port == Some(0) {
            return Err((
                "port",
                "is 0; give the server's port, from 1 to 65535 (e.g. port = 5432), or leave it out for the tool's default".into(),
            ));
        }
        if let Some(host) = &s.host {
            if host.trim().is_empty() {
                return Err((
                    "host",
                    "is empty; give the server's name or address (e.g. host = \"db.internal\"), or leave it out for the tool's default (a local socket)".into(),
                ));
            }
            // `name:5432`: one colon and digits after it (an IPv6 address
            // has several colons and stays as written).
            if let Some((_, port)) = host.split_once(':') {
                if !port.contains(':')
                    && !port.is_empty()
                    && port.chars().all(|c| c.is_ascii_digit())
                {
                    return Err((
                        "host",
                        format!("holds a port (`:{port}`); write the host alone and the port as its own key, e.g. port = {port}"),
                    ));
                }
            }
        }
        if engine == EngineKind::Sqlite {
            for (key, set) in [
                ("host", s.host.is_some()),
                ("port", s.port.is_some()),
                ("user", s.user.is_some()),
                ("password_env", s.password_env.is_some()),
            ] {
                if set {
                    return Err((
                        key,
                        "does not apply to sqlite (a file needs no server or login); remove it"
                            .into(),
                    ));
                }
            }
        }
        Ok(Database {
            alias: alias.into(),
            engine,
            name,
            host: s.host,
            port: s.port,
            user: s.user,
            password: s
                .password_env
                .map(PasswordSource::Env)
                .unwrap_or(PasswordSource::None),
            options: ConnOptions::default(),
            dump_args: s.dump_args,
            restore_args: s.restore_args,
            scratch: false,
            ambient_credentials: true,
        })
    }

    /// Reads the password now. The error never includes the value, nor
    /// the variable's name (it may be the password, written by mistake
    /// where the name belongs).
    pub fn password(&self) -> Result<Option<String>> {
        let unset = |key: &str, holds: &str| {
            exit::usage(format!(
                "database `{}`: the environment variable that `databases.{}.{key}` names is not set; export it with {holds} before running rcbackup (the name is not shown: if you wrote the password itself there, put it in a variable instead and write that variable's name, e.g. {key} = \"APP_DB_PASSWORD\")",
                self.alias, self.alias
            ))
        };
        match &self.password {
            PasswordSource::None => Ok(None),
            PasswordSource::Env(var) => std::env::var(var)
                .map(Some)
                .map_err(|_| unset("password_env", "the password")),
            PasswordSource::UrlEnv(var) => {
                let u = std::env::var(var).map_err(|_| unset("url_env", "the database URL"))?;
                Ok(url_password(&u))
            }
            PasswordSource::Url(Redacted(u)) => Ok(url_password(u)),
            PasswordSource::Given(Redacted(p)) => Ok(Some(p.clone())),
        }
    }
}

/// The parts of a DATABASE_URL.
#[derive(Debug, Clone, PartialEq, Eq)]
struct UrlParts {
    engine: EngineKind,
    name: String,
    host: Option<String>,
    port: Option<u16>,
    user: Option<String>,
    password: Option<Redacted>,
    /// The query string's parameters, decoded, in order.
    query: Vec<(String, String)>,
}

/// DATABASE_URL form, as dj-database-url reads it: `sqlite:////abs/path`
/// (four slashes) is an absolute path, `sqlite:///rel.db` a relative one.
fn parse_url(u: &str) -> std::result::Result<UrlParts, String> {
    // Errors never echo the URL nor any part of it: it may hold a password.
    let parsed = url::Url::parse(&with_host(u)).map_err(|e| {
        format!("not a valid database URL ({e}); the form is postgres://user:password@host:5432/name, mysql://..., or sqlite:////absolute/path.db")
    })?;
    let engine = EngineKind::from_url_scheme(parsed.scheme()).ok_or_else(|| {
        let shown = if u.contains("://") && parsed.scheme().len() <= 16 {
            format!(" `{}`", parsed.scheme())
        } else {
            String::new()
        };
        format!(
            "unknown scheme{shown}; use postgres://, postgis://, mysql://, mariadb:// or sqlite:///, e.g. postgres://user:password@host:5432/name"
        )
    })?;
    let host = parsed
        .host_str()
        .filter(|h| !h.is_empty() && *h != NO_HOST)
        // IPv6 literals are bracketed in a URL, not for the tools.
        .map(|h| decode(h.trim_start_matches('[').trim_end_matches(']')));
    if engine == EngineKind::Sqlite && (host.is_some() || parsed.port().is_some()) {
        return Err("a sqlite URL names a file, not a server: write sqlite:////absolute/path.db (four slashes) or sqlite:///relative.db".into());
    }
    let name = decode(parsed.path().strip_prefix('/').unwrap_or(parsed.path()));
    if name.is_empty() {
        return Err("the URL names no database: add /NAME, e.g. postgres://user@host:5432/NAME, or sqlite:////absolute/path.db".into());
    }
    if name.contains('\0') {
        return Err("the database name in the URL holds a NUL byte (%00); remove it".into());
    }
    if parsed.fragment().is_some() {
        // Most often a `#` in a password, which cuts the URL there.
        return Err("the URL has a `#` part, which no database tool reads; a `#` inside the password or name must be written %23".into());
    }
    if parsed.port() == Some(0) {
        return Err(
            "the URL gives port 0; give the server's port (e.g. :5432) or leave it out".into(),
        );
    }
    let user = Some(parsed.username())
        .filter(|s| !s.is_empty())
        .map(decode);
    Ok(UrlParts {
        engine,
        name,
        host,
        port: parsed.port(),
        user,
        password: parsed.password().map(|p| Redacted(decode(p))),
        query: parsed
            .query_pairs()
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect(),
    })
}

/// Stands in for the host of a URL that has a user but no host
/// (`postgres://user:pw@/name?host=/socket/dir`, as Cloud SQL URLs are
/// written, or the local socket): libpq takes it, the url crate does not.
const NO_HOST: &str = "rcbackup-no-host.invalid";

fn with_host(u: &str) -> std::borrow::Cow<'_, str> {
    if let Some((scheme, rest)) = u.split_once("://") {
        let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let authority = &rest[..end];
        if let Some(userinfo) = authority.strip_suffix('@') {
            return format!("{scheme}://{userinfo}@{NO_HOST}{}", &rest[end..]).into();
        }
    }
    u.into()
}

fn url_password(u: &str) -> Option<String> {
    let parsed = url::Url::parse(&with_host(u)).ok()?;
    let p = parsed.password()?;
    Some(decode(p))
}

fn decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}

/// What the query string gave: the tools' options, and a host given as
/// `?host=` (a socket folder, as Cloud SQL URLs carry it).
#[derive(Debug, Default)]
struct QueryOptions {
    options: ConnOptions,
    host: Option<String>,
}

/// libpq's URL parameters that have an environment variable, and its name.
/// Secrets (`password`, `sslpassword`) are not among them: they would need a
/// command line or a file.
const PG_PARAMS: &[(&str, &str)] = &[
    ("sslmode", "PGSSLMODE"),
    ("sslrootcert", "PGSSLROOTCERT"),
    ("sslcert", "PGSSLCERT"),
    ("sslkey", "PGSSLKEY"),
    ("sslcrl", "PGSSLCRL"),
    ("sslcrldir", "PGSSLCRLDIR"),
    ("sslsni", "PGSSLSNI"),
    ("sslcompression", "PGSSLCOMPRESSION"),
    ("ssl_min_protocol_version", "PGSSLMINPROTOCOLVERSION"),
    ("ssl_max_protocol_version", "PGSSLMAXPROTOCOLVERSION"),
    ("requiressl", "PGREQUIRESSL"),
    ("gssencmode", "PGGSSENCMODE"),
    ("krbsrvname", "PGKRBSRVNAME"),
    ("gsslib", "PGGSSLIB"),
    ("channel_binding", "PGCHANNELBINDING"),
    ("requirepeer", "PGREQUIREPEER"),
    ("connect_timeout", "PGCONNECT_TIMEOUT"),
    ("application_name", "PGAPPNAME"),
    ("options", "PGOPTIONS"),
    ("client_encoding", "PGCLIENTENCODING"),
    ("target_session_attrs", "PGTARGETSESSIONATTRS"),
    ("service", "PGSERVICE"),
    ("passfile", "PGPASSFILE"),
    ("hostaddr", "PGHOSTADDR"),
];

const PG_SSLMODES: &[&str] = &[
    "disable",
    "allow",
    "prefer",
    "require",
    "verify-ca",
    "verify-full",
];

/// The MariaDB client's options a URL may set (`_` and `-` both accepted).
const MYSQL_PARAMS: &[&str] = &[
    "ssl",
    "ssl-mode",
    "ssl-ca",
    "ssl-capath",
    "ssl-cert",
    "ssl-key",
    "ssl-cipher",
    "ssl-crl",
    "ssl-crlpath",
    "ssl-verify-server-cert",
    "tls-version",
    "charset",
    "socket",
    "protocol",
];

/// A parameter's name as it may be shown: it could be anything a user
/// pasted, so only what looks like a parameter name is echoed.
fn shown_name(k: &str) -> String {
    if !k.is_empty()
        && k.len() <= 40
        && k.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.')
    {
        format!("`{k}`")
    } else {
        "a parameter whose name is not shown".to_string()
    }
}

/// Turns the query string into the tools' options; refuses what rcbackup
/// does not know, naming it, so nothing is dropped without a word.
fn conn_options(
    engine: EngineKind,
    query: &[(String, String)],
) -> std::result::Result<QueryOptions, String> {
    if query.is_empty() {
        return Ok(QueryOptions::default());
    }
    let mut seen = std::collections::BTreeSet::new();
    for (k, v) in query {
        if !seen.insert(k.replace('_', "-").to_ascii_lowercase()) {
            return Err(format!(
                "the query parameter {} is given twice; keep one",
                shown_name(k)
            ));
        }
        if v.chars().any(|c| c.is_control()) {
            return Err(format!(
                "the query parameter {} holds a control character; remove it",
                shown_name(k)
            ));
        }
    }
    match engine {
        EngineKind::Sqlite => Err(format!(
            "a sqlite URL takes no query parameters, and this one has {}; remove the `?...` part",
            query
                .iter()
                .map(|(k, _)| shown_name(k))
                .collect::<Vec<_>>()
                .join(", ")
        )),
        EngineKind::Postgresql | EngineKind::Postgis => pg_options(query),
        EngineKind::Mysql | EngineKind::Mariadb => mysql_options(query),
    }
}

/// The options a tenant's `dump_args` and `restore_args` may hold: what
/// is dumped and how it is restored, never where the tool connects, how
/// it logs in, what it loads or runs, or which files it reads or writes
/// (`--host`, `--protocol`, `--plugin-dir`, `--defaults-extra-file`,
/// `--tee`, sqlite3's `-cmd .shell`, ...). A name ending in `=` takes a
/// value, given in the same item (`--table=t`): `--table` alone would take
/// the next argument, rcbackup's own `--dbname`, as its value.
const TENANT_PG_ARGS: &[&str] = &[
    "--exclude-table=",
    "--exclude-table-data=",
    "--exclude-table-and-children=",
    "--exclude-table-data-and-children=",
    "--table=",
    "--table-and-children=",
    "--schema=",
    "--exclude-schema=",
    "--extension=",
    "--exclude-extension=",
    "--no-owner",
    "--no-privileges",
    "--no-acl",
    "--no-comments",
    "--no-tablespaces",
    "--no-publications",
    "--no-subscriptions",
    "--no-security-labels",
    "--no-large-objects",
    "--no-blobs",
    "--no-table-access-method",
    "--no-toast-compression",
    "--no-unlogged-table-data",
    "--quote-all-identifiers",
    "--lock-wait-timeout=",
    "--data-only",
    "--schema-only",
    "--clean",
    "--if-exists",
    "--single-transaction",
    "--exit-on-error",
    "--disable-triggers",
    "--no-data-for-failed-tables",
    "--strict-names",
    "--enable-row-security",
    "--section=",
];
const TENANT_MYSQL_ARGS: &[&str] = &[
    "--ignore-table=",
    "--ignore-table-data=",
    "--single-transaction",
    "--skip-lock-tables",
    "--lock-tables",
    "--quick",
    "--routines",
    "--triggers",
    "--skip-triggers",
    "--events",
    "--no-data",
    "--no-create-info",
    "--no-create-db",
    "--hex-blob",
    "--skip-extended-insert",
    "--extended-insert",
    "--complete-insert",
    "--insert-ignore",
    "--replace",
    "--add-drop-table",
    "--skip-add-drop-table",
    "--add-drop-trigger",
    "--order-by-primary",
    "--max-allowed-packet=",
    "--net-buffer-length=",
    "--default-character-set=",
    "--set-charset",
    "--skip-set-charset",
    "--tz-utc",
    "--skip-tz-utc",
    "--force",
    "--binary-mode",
];

/// Refuses a tenant's tool argument outside [`TENANT_PG_ARGS`] /
/// [`TENANT_MYSQL_ARGS`] (a SQLite tenant may pass none: sqlite3's options
/// run commands and read files).
fn tenant_tool_args(
    engine: EngineKind,
    key: &str,
    args: &[String],
) -> std::result::Result<(), String> {
    let allowed: &[&str] = match engine {
        EngineKind::Postgresql | EngineKind::Postgis => TENANT_PG_ARGS,
        EngineKind::Mysql | EngineKind::Mariadb => TENANT_MYSQL_ARGS,
        EngineKind::Sqlite => &[],
    };
    for arg in args {
        let known = allowed.iter().any(|a| match a.strip_suffix('=') {
            Some(_) => arg.len() > a.len() && arg.starts_with(a),
            None => arg == a,
        });
        if !known {
            return Err(format!(
                "holds `{}`, which a tenant's database may not pass to its tools: a tenant's {key} may only choose what is dumped or how it is restored, as `--option` or `--option=value` ({}), never where the tool connects, how it logs in, or what it loads, runs, reads or writes",
                crate::naming::printable(arg),
                if allowed.is_empty() {
                    "none for SQLite".to_string()
                } else {
                    format!("e.g. {}", allowed[..3].join("..., "))
                }
            ));
        }
    }
    Ok(())
}

/// The URL parameter behind a [`CREDENTIAL_FILE_PARAMS`] entry.
fn credential_param_name(p: &str) -> &str {
    match p {
        "PGPASSFILE" => "passfile",
        "PGSERVICE" => "service",
        "PGSSLCERT" => "sslcert",
        "PGSSLKEY" => "sslkey",
        other => other.trim_start_matches('-'),
    }
}

fn unknown_params(unknown: &[&str], known: &str) -> String {
    let names: Vec<String> = unknown.iter().map(|k| shown_name(k)).collect();
    let (s, them) = if names.len() == 1 {
        ("parameter", "it")
    } else {
        ("parameters", "them")
    };
    format!(
        "rcbackup does not know the URL's query {s} {} and would not pass {them} on; remove {them} or use one of: {known} (see README, \"Config\")",
        names.join(", ")
    )
}

fn timeout(k: &str, v: &str) -> std::result::Result<(), String> {
    match v.parse::<u32>() {
        Ok(_) => Ok(()),
        Err(_) => Err(format!(
            "the query parameter `{k}` must be a number of seconds, e.g. {k}=10"
        )),
    }
}

fn pg_options(query: &[(String, String)]) -> std::result::Result<QueryOptions, String> {
    let mut out = QueryOptions::default();
    let mut unknown = Vec::new();
    for (k, v) in query {
        match k.as_str() {
            "password" | "sslpassword" => {
                return Err(format!(
                    "the query parameter `{k}` holds a secret, which rcbackup passes to the tools only through `user:password@` in the URL (PGPASSWORD); {}",
                    if k == "password" {
                        "move the password there"
                    } else {
                        "use a client key without a passphrase, or a passfile"
                    }
                ))
            }
            "user" | "port" | "dbname" => {
                return Err(format!(
                    "the query parameter `{k}` repeats a part of the URL; write it in the URL itself: postgres://user@host:5432/dbname"
                ))
            }
            "host" => out.host = Some(v.clone()),
            "sslmode" if !PG_SSLMODES.contains(&v.as_str()) => {
                return Err(format!(
                    "the query parameter `sslmode` must be one of {}, e.g. sslmode=verify-full",
                    PG_SSLMODES.join(", ")
                ))
            }
            "connect_timeout" => {
                timeout(k, v)?;
                out.options.env.push(("PGCONNECT_TIMEOUT", v.clone()));
            }
            _ => match PG_PARAMS.iter().find(|(name, _)| name == k) {
                Some((_, var)) => out.options.env.push((var, v.clone())),
                None => unknown.push(k.as_str()),
            },
        }
    }
    if !unknown.is_empty() {
        let known: Vec<&str> = PG_PARAMS.iter().map(|(k, _)| *k).chain(["host"]).collect();
        return Err(unknown_params(&unknown, &known.join(", ")));
    }
    Ok(out)
}

fn truthy(k: &str, v: &str) -> std::result::Result<bool, String> {
    match v.to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        _ => Err(format!(
            "the query parameter `{k}` must be true or false, e.g. {k}=true"
        )),
    }
}

/// The MariaDB client requires TLS only when it also verifies the server's
/// certificate (`--ssl` alone falls back to a plain connection), so every
/// mode that requires TLS verifies: stricter than asked, never weaker.
fn mysql_options(query: &[(String, String)]) -> std::result::Result<QueryOptions, String> {
    let mut out = QueryOptions::default();
    let mut unknown = Vec::new();
    // `ssl`/`ssl-mode`: None is not given; Some(None) the client's default
    // (PREFERRED); Some(Some(true)) TLS required and verified.
    let mut mode: Option<Option<bool>> = None;
    let mut ca = false;
    let mut verify: Option<bool> = None;
    let mut args = Vec::new();
    for (k, v) in query {
        let name = k.replace('_', "-").to_ascii_lowercase();
        match name.as_str() {
            "ssl" => mode = Some(Some(truthy(k, v)?)),
            "ssl-mode" => {
                mode = Some(match v.to_ascii_uppercase().as_str() {
                    "DISABLED" => Some(false),
                    "PREFERRED" => None,
                    "REQUIRED" | "VERIFY-CA" | "VERIFY_CA" | "VERIFY-IDENTITY"
                    | "VERIFY_IDENTITY" => Some(true),
                    _ => return Err(format!(
                        "the query parameter `{k}` must be one of DISABLED, PREFERRED, REQUIRED, VERIFY_CA, VERIFY_IDENTITY, e.g. {k}=VERIFY_IDENTITY"
                    )),
                })
            }
            "ssl-verify-server-cert" => verify = Some(truthy(k, v)?),
            "ssl-ca" | "ssl-capath" => {
                // A CA to check the server against asks for the check.
                ca = true;
                args.push(format!("--{name}={v}"));
            }
            "connect-timeout" => {
                return Err(format!(
                    "the query parameter `{k}` cannot be passed on: mariadb-dump has no such option; remove it"
                ))
            }
            "charset" => args.push(format!("--default-character-set={v}")),
            _ if MYSQL_PARAMS.contains(&name.as_str()) => args.push(format!("--{name}={v}")),
            _ => unknown.push(k.as_str()),
        }
    }
    if !unknown.is_empty() {
        return Err(unknown_params(&unknown, &MYSQL_PARAMS.join(", ")));
    }
    let require = mode.unwrap_or(if ca { Some(true) } else { None });
    match (require, verify) {
        (Some(true), Some(false)) => {
            return Err("the URL requires TLS but sets ssl-verify-server-cert=false: the MariaDB client requires TLS only when it verifies the server's certificate; remove ssl-verify-server-cert=false".into())
        }
        (Some(false), Some(true)) => {
            return Err("the URL disables TLS but sets ssl-verify-server-cert=true; keep one".into())
        }
        (Some(true), _) | (None, Some(true)) => {
            out.options.args.push("--ssl".into());
            out.options.args.push("--ssl-verify-server-cert".into());
        }
        (Some(false), _) => out.options.args.push("--skip-ssl".into()),
        (None, _) => {}
    }
    out.options.args.extend(args);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(super) fn url_db(u: &str) -> std::result::Result<Database, KeyError> {
        let e = DatabaseEntry::from_section(
            "x",
            DatabaseSection {
                url: Some(u.into()),
                ..Default::default()
            },
            Compression::DEFAULT,
        )?;
        e.get().cloned()
    }

    #[test]
    fn url_forms() {
        let u = parse_url("postgres://bob:s%40cret@db.example:5433/app").unwrap();
        assert_eq!(
            (
                u.engine,
                u.name.as_str(),
                u.port,
                u.user.as_deref(),
                u.password.is_some()
            ),
            (EngineKind::Postgresql, "app", Some(5433), Some("bob"), true)
        );
        assert_eq!(
            url_password("postgres://bob:s%40cret@h/app").as_deref(),
            Some("s@cret")
        );
        assert_eq!(
            parse_url("sqlite:////var/db.sqlite3").unwrap().name,
            "/var/db.sqlite3"
        );
        assert_eq!(parse_url("sqlite:///rel.db").unwrap().name, "rel.db");
        assert_eq!(
            parse_url("sqlite:////srv/my%20app.db").unwrap().name,
            "/srv/my app.db"
        );
        assert_eq!(
            parse_url("postgres://u@[::1]:5432/app")
                .unwrap()
                .host
                .as_deref(),
            Some("::1")
        );
        assert!(parse_url("oracle://h/x").is_err());
    }

    #[test]
    fn url_errors_do_not_echo_password() {
        let e = parse_url("postgres://bob:hunter2@/").unwrap_err();
        assert!(!e.contains("hunter2"));
        let e = parse_url("hunter2:x").unwrap_err();
        assert!(!e.contains("hunter2"), "{e}");
    }

    /// A password in dump or restore arguments would be on the command
    /// line and in the -v log; a port of 0 and a host holding a port fail
    /// only when the dump runs. All are refused at load, by key.
    #[test]
    fn secrets_in_tool_args_and_bad_host_or_port_are_refused_at_load() {
        let section = |f: &dyn Fn(&mut DatabaseSection)| {
            let mut s = DatabaseSection {
                engine: Some(EngineKind::Postgresql),
                name: Some("app".into()),
                ..Default::default()
            };
            f(&mut s);
            DatabaseEntry::from_section("x", s, Compression::DEFAULT)
        };
        for (args, restore) in [
            (vec!["--password=Zq9pw"], false),
            (vec!["-pZq9pw"], false),
            (vec!["--dbname=postgres://u:Zq9pw@h/app"], false),
            (vec!["--dbname", "host=h password=Zq9pw"], true),
        ] {
            let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
            let e = section(&|s| {
                if restore {
                    s.restore_args = args.clone()
                } else {
                    s.dump_args = args.clone()
                }
            })
            .unwrap_err();
            let key = if restore { "restore_args" } else { "dump_args" };
            assert_eq!(e.0, key, "{args:?}");
            assert!(e.1.contains("password") && !e.1.contains("Zq9"), "{}", e.1);
        }
        for ok in [
            vec!["-p5433"],
            vec!["--no-owner", "-Z0"],
            vec!["--dbname=postgres://u@h/app"],
        ] {
            let args: Vec<String> = ok.iter().map(|a| a.to_string()).collect();
            section(&|s| s.dump_args = args.clone()).unwrap();
        }
        assert_eq!(section(&|s| s.port = Some(0)).unwrap_err().0, "port");
        for host in ["", " ", "db.internal:5432"] {
            assert_eq!(
                section(&|s| s.host = Some(host.into())).unwrap_err().0,
                "host",
                "{host:?}"
            );
        }
        for host in ["::1", "db.internal", "/var/run/postgresql"] {
            section(&|s| s.host = Some(host.into())).unwrap();
        }
    }

    /// A `#` in a password cut the URL there without a word; port 0 failed
    /// only when the dump ran.
    #[test]
    fn a_url_fragment_or_port_zero_is_refused_unshown() {
        for u in [
            "postgres://u:Zq9#pw@h/app",
            "postgres://u@h/app#x",
            "postgres://u:Zq9@h:0/app",
        ] {
            let e = parse_url(u).err().unwrap_or_else(|| panic!("{u} accepted"));
            assert!(!e.contains("Zq9"), "{e}");
        }
        assert!(parse_url("postgres://u:Zq9%23pw@h/app").is_ok());
    }

    #[test]
    fn debug_hides_url_and_variable_names() {
        let d = url_db("postgres://u:hunter2@h/app").unwrap();
        assert!(!format!("{d:?}").contains("hunter2"));
        let d = Database::from_section(
            "x",
            DatabaseSection {
                engine: Some(EngineKind::Postgresql),
                name: Some("app".into()),
                password_env: Some("Hunter2Secret".into()),
                ..Default::default()
            },
            None,
        )
        .unwrap();
        assert!(!format!("{d:?}").contains("Hunter2Secret"));
        let e = d.password().unwrap_err();
        assert!(!format!("{e:#}").contains("Hunter2Secret"), "{e:#}");
    }

    #[test]
    fn postgres_query_goes_to_libpq_environment() {
        let d = url_db(
            "postgres://u:pw@h/app?sslmode=verify-full&sslrootcert=/etc/ca.pem&connect_timeout=5&application_name=x",
        )
        .unwrap();
        assert_eq!(
            d.options.env,
            vec![
                ("PGSSLMODE", "verify-full".to_string()),
                ("PGSSLROOTCERT", "/etc/ca.pem".to_string()),
                ("PGCONNECT_TIMEOUT", "5".to_string()),
                ("PGAPPNAME", "x".to_string()),
            ]
        );
        assert!(d.options.args.is_empty());
        // Cloud SQL: a socket folder as ?host=.
        let d = url_db("postgres://u:pw@/app?host=/cloudsql/p:r:i").unwrap();
        assert_eq!(d.host.as_deref(), Some("/cloudsql/p:r:i"));
    }

    #[test]
    fn unknown_and_secret_parameters_are_refused_by_name() {
        let (k, e) = url_db("postgres://u:pw@h/app?sslmod=require&currentSchema=s").unwrap_err();
        assert_eq!(k, "url");
        assert!(
            e.contains("`sslmod`") && e.contains("`currentSchema`"),
            "{e}"
        );
        for bad in [
            "?sslmode=verify_full",
            "?password=zz9secret",
            "?sslpassword=zz9secret",
            "?connect_timeout=soon",
            "?sslmode=require&sslmode=disable",
        ] {
            let (_, e) = url_db(&format!("postgres://u:pw@h/app{bad}")).unwrap_err();
            assert!(!e.contains("zz9secret") && !e.contains("pw@"), "{e}");
        }
        let (_, e) = url_db("sqlite:////x.db?mode=ro").unwrap_err();
        assert!(e.contains("`mode`"), "{e}");
    }

    #[test]
    fn mysql_query_goes_to_client_options() {
        let args = |q: &str| url_db(&format!("mysql://u:pw@h/app?{q}")).map(|d| d.options.args);
        let verified = vec!["--ssl".to_string(), "--ssl-verify-server-cert".to_string()];
        assert_eq!(args("ssl-mode=REQUIRED").unwrap(), verified);
        assert_eq!(args("ssl_mode=verify_identity").unwrap(), verified);
        assert_eq!(args("ssl=true").unwrap(), verified);
        assert_eq!(args("ssl-mode=DISABLED").unwrap(), vec!["--skip-ssl"]);
        assert_eq!(args("ssl-mode=PREFERRED").unwrap(), Vec::<String>::new());
        assert_eq!(
            args("ssl-ca=/ca.pem&charset=utf8mb4").unwrap(),
            vec![
                "--ssl",
                "--ssl-verify-server-cert",
                "--ssl-ca=/ca.pem",
                "--default-character-set=utf8mb4"
            ]
        );
        let (_, e) = args("connect_timeout=3").unwrap_err();
        assert!(e.contains("`connect_timeout`"), "{e}");
        assert!(args("ssl-mode=REQUIRED&ssl-verify-server-cert=false").is_err());
        let (_, e) = args("sslmode=require").unwrap_err();
        assert!(e.contains("`sslmode`"), "{e}");
    }

    #[test]
    fn url_env_is_read_only_when_used() {
        let entry = DatabaseEntry::from_section(
            "x",
            DatabaseSection {
                url_env: Some("RCBACKUP_UNIT_TEST_NEVER_SET".into()),
                ..Default::default()
            },
            Compression::DEFAULT,
        )
        .unwrap();
        assert_eq!(entry.alias(), "x");
        let (k, e) = entry.get().unwrap_err();
        assert_eq!(k, "url_env");
        assert!(e.contains("not set"), "{e}");
        // A value that cannot be a variable's name is refused at load,
        // without being shown.
        let (k, e) = DatabaseEntry::from_section(
            "x",
            DatabaseSection {
                url_env: Some("postgres://u:zz9secret@h/app".into()),
                ..Default::default()
            },
            Compression::DEFAULT,
        )
        .unwrap_err();
        assert_eq!(k, "url_env");
        assert!(!e.contains("zz9secret"), "{e}");
    }
}

/// Property tests of the DATABASE_URL parser: it never panics, never shows
/// a password planted in the URL, a parsed URL round-trips, and a refused
/// URL names the key.
#[cfg(test)]
mod proptests {
    use super::tests::url_db;
    use super::*;
    use proptest::prelude::*;
    use std::fmt::Write;

    const SECRET_SET: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'_')
        .remove(b'.');

    fn enc(s: &str) -> String {
        percent_encoding::utf8_percent_encode(s, SECRET_SET).to_string()
    }

    /// The URL that says `parts` (the password given separately).
    fn compose(p: &UrlParts, password: Option<&str>) -> String {
        let scheme = match p.engine {
            EngineKind::Postgresql => "postgres",
            EngineKind::Postgis => "postgis",
            EngineKind::Mysql => "mysql",
            EngineKind::Mariadb => "mariadb",
            EngineKind::Sqlite => "sqlite",
        };
        let mut u = format!("{scheme}://");
        if let Some(user) = &p.user {
            u.push_str(&enc(user));
            if let Some(pw) = password {
                write!(u, ":{}", enc(pw)).unwrap();
            }
            u.push('@');
        }
        if let Some(h) = &p.host {
            if h.contains(':') {
                write!(u, "[{h}]").unwrap();
            } else {
                u.push_str(h);
            }
        }
        if let Some(port) = p.port {
            write!(u, ":{port}").unwrap();
        }
        u.push('/');
        u.push_str(&enc(&p.name));
        if !p.query.is_empty() {
            u.push('?');
            let q: Vec<String> = p
                .query
                .iter()
                .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
                .collect();
            u.push_str(&q.join("&"));
        }
        u
    }

    fn server_engine() -> impl Strategy<Value = EngineKind> {
        prop_oneof![
            Just(EngineKind::Postgresql),
            Just(EngineKind::Postgis),
            Just(EngineKind::Mysql),
            Just(EngineKind::Mariadb),
        ]
    }

    fn host() -> impl Strategy<Value = Option<String>> {
        prop_oneof![
            Just(None),
            "[a-z][a-z0-9-]{0,20}(\\.[a-z][a-z0-9-]{0,10}){0,3}".prop_map(Some),
            Just(Some("127.0.0.1".to_string())),
            Just(Some("::1".to_string())),
        ]
    }

    fn password() -> impl Strategy<Value = String> {
        // Long enough to be told apart from the rest of a message.
        "[A-Za-z0-9!@#$%^&*()/:?=+ ]{8,24}".prop_map(|p| format!("Zq{p}"))
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

        #[test]
        fn never_panics(u in any::<String>()) {
            let _ = parse_url(&u);
            let _ = url_db(&u);
        }

        #[test]
        fn parts_round_trip(
            engine in server_engine(),
            user in "[a-zA-Z0-9@:/ _.-]{1,16}",
            pw in proptest::option::of(password()),
            host in host(),
            port in proptest::option::of(1u16..),
            // `.` and `..` segments are resolved by URL parsing (also as
            // %2E): a name made of them cannot be written in a URL.
            name in "[a-zA-Z0-9 _./@?#%-]{1,24}"
                .prop_filter("dot segment", |n| !n.split('/').any(|s| s == "." || s == "..")),
        ) {
            // A port needs a host to follow.
            let port = if host.is_some() { port } else { None };
            let parts = UrlParts {
                engine,
                name,
                host,
                port,
                user: Some(user),
                password: pw.clone().map(Redacted),
                query: Vec::new(),
            };
            let url = compose(&parts, pw.as_deref());
            let back = parse_url(&url).map_err(TestCaseError::fail)?;
            prop_assert_eq!(&back, &parts, "{}", url);
            prop_assert_eq!(url_password(&url), pw);
        }

        #[test]
        fn sqlite_paths_round_trip(path in "/?[a-zA-Z0-9 _%#?-][a-zA-Z0-9 _.%#?-]{0,20}(/[a-zA-Z0-9 _-][a-zA-Z0-9 _.-]{0,10}){0,3}") {
            let url = format!("sqlite:///{}", path.split('/').map(enc).collect::<Vec<_>>().join("/"));
            let back = parse_url(&url).map_err(TestCaseError::fail)?;
            prop_assert_eq!(back.name, path);
        }

        /// A password planted in the URL never appears in an error, however
        /// the URL around it is broken.
        #[test]
        fn no_secret_in_errors(
            engine in prop_oneof![Just("postgres"), Just("mysql"), Just("sqlite"), Just("oracle"), Just("")],
            pw in password(),
            host in "[a-z0-9.:\\[\\]%]{0,12}",
            port in "[0-9a-z]{0,7}",
            path in "[a-zA-Z0-9/%]{0,10}",
            query in "[a-z_=&%]{0,30}",
            cut in 0usize..80,
        ) {
            let whole = format!("{engine}://user:{pw}@{host}:{port}/{path}?{query}");
            // Also every prefix: a URL cut short by a stray quote or newline.
            let cut = whole.char_indices().map(|(i, _)| i).nth(cut).unwrap_or(whole.len());
            for u in [whole.as_str(), &whole[..cut]] {
                for (key, e) in [url_db(u).err(), parse_url(u).err().map(|e| ("url", e))].into_iter().flatten() {
                    prop_assert!(!e.contains(&pw), "{} -> {}", u, e);
                    prop_assert!(!e.contains(&enc(&pw)), "{} -> {}", u, e);
                    prop_assert_eq!(key, "url");
                }
            }
        }

        /// Query parameters: accepted ones reach the tools, every refused
        /// one is named.
        #[test]
        fn query_parameters_are_passed_or_named(
            engine in server_engine(),
            params in proptest::collection::btree_map("[a-z][a-z_-]{0,14}", "[a-z0-9/.]{1,10}", 0..5),
        ) {
            let parts = UrlParts {
                engine,
                name: "app".into(),
                host: Some("h".into()),
                port: None,
                user: Some("u".into()),
                password: None,
                query: params.clone().into_iter().collect(),
            };
            let url = compose(&parts, None);
            match url_db(&url) {
                Ok(_) => {
                    for k in params.keys() {
                        let known = match engine {
                            EngineKind::Mysql | EngineKind::Mariadb => {
                                MYSQL_PARAMS.contains(&k.replace('_', "-").as_str())
                            }
                            _ => k == "host" || PG_PARAMS.iter().any(|(p, _)| p == k),
                        };
                        prop_assert!(known, "{} accepted `{}`", url, k);
                    }
                }
                Err((key, e)) => {
                    prop_assert_eq!(key, "url");
                    let named = params.keys().any(|k| e.contains(&format!("`{k}`")))
                        || e.contains("twice") || e.contains("TLS");
                    prop_assert!(named, "{} -> {}", url, e);
                }
            }
        }
    }
}
