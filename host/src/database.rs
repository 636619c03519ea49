//! A configured database: its engine, where it lives, and how its password
//! is found. The password itself is read from the environment only when a
//! command needs it, and is handed to the dump and restore tools through
//! their environment, never through argv.

use std::fmt;

use anyhow::Result;
use serde::Deserialize;

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
}

/// Where the password comes from. Never holds the password itself, so a
/// `Database` can be printed or logged safely.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PasswordSource {
    None,
    /// The name of an environment variable holding the password.
    Env(String),
    /// The password part of the URL held in this environment variable.
    UrlEnv(String),
    /// The password part of the `url` key. The URL is kept out of Debug.
    Url(Redacted),
}

/// A string that prints as `***`.
#[derive(Clone, PartialEq, Eq)]
pub struct Redacted(String);

impl fmt::Debug for Redacted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
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
    pub dump_args: Vec<String>,
    pub restore_args: Vec<String>,
}

type KeyError = (&'static str, String);

impl Database {
    pub fn from_section(
        alias: &str,
        s: DatabaseSection,
    ) -> std::result::Result<Database, KeyError> {
        if alias.is_empty()
            || alias
                .chars()
                .any(|c| !(c.is_ascii_alphanumeric() || c == '_' || c == '-'))
        {
            return Err((
                "",
                format!("the alias `{alias}` may only hold letters, digits, `_` and `-`"),
            ));
        }
        let from_url = match (&s.url, &s.url_env) {
            (Some(_), Some(_)) => {
                return Err(("url", "set either `url` or `url_env`, not both".into()))
            }
            (Some(u), None) => Some((
                parse_url(u).map_err(|e| ("url", e))?,
                PasswordSource::Url(Redacted(u.clone())),
            )),
            (None, Some(var)) => {
                let u = std::env::var(var).map_err(|_| {
                    ("url_env", format!("environment variable `{var}` is not set; export it with the database URL"))
                })?;
                Some((
                    parse_url(&u).map_err(|e| ("url_env", format!("the URL in `{var}`: {e}")))?,
                    PasswordSource::UrlEnv(var.clone()),
                ))
            }
            (None, None) => None,
        };
        if let Some((u, password)) = from_url {
            for (key, set) in [
                ("engine", s.engine.is_some()),
                ("name", s.name.is_some()),
                ("host", s.host.is_some()),
                ("port", s.port.is_some()),
                ("user", s.user.is_some()),
                ("password_env", s.password_env.is_some()),
            ] {
                if set {
                    return Err((key, "cannot be combined with `url`/`url_env`; put it in the URL or drop the URL".into()));
                }
            }
            let password = if u.has_password {
                password
            } else {
                PasswordSource::None
            };
            return Ok(Database {
                alias: alias.into(),
                engine: u.engine,
                name: u.name,
                host: u.host,
                port: u.port,
                user: u.user,
                password,
                dump_args: s.dump_args,
                restore_args: s.restore_args,
            });
        }
        let engine = s.engine.ok_or((
            "engine",
            "is required: one of postgresql, postgis, mysql, mariadb, sqlite (or give `url`)"
                .to_string(),
        ))?;
        let name = s.name.filter(|n| !n.is_empty()).ok_or((
            "name",
            if engine == EngineKind::Sqlite {
                "is required: the path of the SQLite file"
            } else {
                "is required: the database name"
            }
            .to_string(),
        ))?;
        if engine == EngineKind::Sqlite {
            for (key, set) in [
                ("host", s.host.is_some()),
                ("port", s.port.is_some()),
                ("user", s.user.is_some()),
                ("password_env", s.password_env.is_some()),
            ] {
                if set {
                    return Err((key, "does not apply to sqlite; remove it".into()));
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
            dump_args: s.dump_args,
            restore_args: s.restore_args,
        })
    }

    /// Reads the password now. The error never includes the value.
    pub fn password(&self) -> Result<Option<String>> {
        match &self.password {
            PasswordSource::None => Ok(None),
            PasswordSource::Env(var) => std::env::var(var).map(Some).map_err(|_| {
                exit::usage(format!(
                    "database `{}`: password_env names `{var}`, which is not set; export it before running rcbackup",
                    self.alias
                ))
            }),
            PasswordSource::UrlEnv(var) => {
                let u = std::env::var(var).map_err(|_| exit::usage(format!("database `{}`: `{var}` is not set", self.alias)))?;
                Ok(url_password(&u))
            }
            PasswordSource::Url(Redacted(u)) => Ok(url_password(u)),
        }
    }
}

#[derive(Debug)]
struct UrlParts {
    engine: EngineKind,
    name: String,
    host: Option<String>,
    port: Option<u16>,
    user: Option<String>,
    has_password: bool,
}

/// DATABASE_URL form, as dj-database-url reads it: `sqlite:////abs/path`
/// (four slashes) is an absolute path, `sqlite:///rel.db` a relative one.
fn parse_url(u: &str) -> std::result::Result<UrlParts, String> {
    // Errors never echo the URL: it may hold a password.
    let parsed = url::Url::parse(u).map_err(|e| format!("not a valid database URL ({e})"))?;
    let engine = EngineKind::from_url_scheme(parsed.scheme()).ok_or_else(|| {
        format!(
            "unknown scheme `{}`; use postgres://, postgis://, mysql://, mariadb:// or sqlite:///",
            parsed.scheme()
        )
    })?;
    let path = parsed.path();
    let name = if engine == EngineKind::Sqlite {
        path.strip_prefix('/').unwrap_or(path).to_string()
    } else {
        decode(path.trim_start_matches('/'))
    };
    if name.is_empty() {
        return Err("the URL names no database (add /NAME, or sqlite:///path.db)".into());
    }
    let host = parsed
        .host_str()
        .filter(|h| !h.is_empty())
        .map(str::to_string);
    let user = Some(parsed.username())
        .filter(|s| !s.is_empty())
        .map(decode);
    Ok(UrlParts {
        engine,
        name,
        host,
        port: parsed.port(),
        user,
        has_password: parsed.password().is_some(),
    })
}

fn url_password(u: &str) -> Option<String> {
    let parsed = url::Url::parse(u).ok()?;
    let p = parsed.password()?;
    Some(decode(p))
}

fn decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_forms() {
        let u = parse_url("postgres://bob:s%40cret@db.example:5433/app").unwrap();
        assert_eq!(
            (
                u.engine,
                u.name.as_str(),
                u.port,
                u.user.as_deref(),
                u.has_password
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
        assert!(parse_url("oracle://h/x").is_err());
    }

    #[test]
    fn url_errors_do_not_echo_password() {
        let e = parse_url("postgres://bob:hunter2@/").unwrap_err();
        assert!(!e.contains("hunter2"));
    }

    #[test]
    fn debug_hides_url() {
        let d = Database::from_section(
            "x",
            DatabaseSection {
                url: Some("postgres://u:hunter2@h/app".into()),
                ..Default::default()
            },
        )
        .unwrap();
        assert!(!format!("{d:?}").contains("hunter2"));
    }
}
