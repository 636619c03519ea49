//! `rcbackup config check`: everything a run relies on, checked without
//! making a backup, one line per check.
//!
//! - the config file, with every check a run makes when it loads;
//! - each policy module, compiled (or loaded from the cache) and checked for
//!   the role it is configured for, as a run loads it; no guest is called;
//! - rclone: present, and its version; the remote: a listing of the backup
//!   folder (a folder that does not exist yet is a new setup, not an error;
//!   no answer within 30 s is an error);
//!   `media_root`, when set: an existing folder;
//! - each database: its environment (`url_env`, `password_env`), the
//!   engine's tools on PATH, and a connection with the config's credentials
//!   (the server's version); a pg_dump older than the server is a warning.
//!
//! Exit 0 when no check failed (warnings allowed), 2 when a failure is a
//! config error (the file, a policy, an unset variable, a remote rclone
//! does not define), else 1. No secret is printed: every message comes from
//! the same secret-free errors a run gives.

use std::io::Read;
use std::process::Stdio;
use std::time::Duration;

use anyhow::Result;

use crate::cli::{Cli, ConfigCheckArgs};
use crate::config::{self, Config};
use crate::database::{Database, EngineKind};
use crate::exit::{self, ExitCode};
use crate::policy::config::ModuleSpec;
use crate::policy::runtime::Role;
use crate::policy::GuestPolicy;
use crate::process::{on_path, Proc};
use crate::rclone::{Rclone, Stall};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    Ok,
    Warning,
    Error,
}

impl Status {
    fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Warning => "warning",
            Status::Error => "error",
        }
    }
}

struct Check {
    check: String,
    status: Status,
    message: String,
    /// For an error: config error (2) or other failure (1).
    code: ExitCode,
}

#[derive(Default)]
struct Report {
    checks: Vec<Check>,
}

impl Report {
    fn ok(&mut self, check: &str, message: impl Into<String>) {
        self.push(check, Status::Ok, message.into(), ExitCode::Success);
    }
    fn warn(&mut self, check: &str, message: impl Into<String>) {
        self.push(check, Status::Warning, message.into(), ExitCode::Success);
    }
    /// An error; its exit code is the error's own (2 for config errors).
    fn error(&mut self, check: &str, e: &anyhow::Error) {
        let code = match exit::code_for(e) {
            ExitCode::Usage => ExitCode::Usage,
            _ => ExitCode::Failed,
        };
        self.push(check, Status::Error, format!("{e:#}"), code);
    }
    fn push(&mut self, check: &str, status: Status, message: String, code: ExitCode) {
        self.checks.push(Check {
            check: check.to_string(),
            status,
            message,
            code,
        });
    }
    fn count(&self, s: Status) -> usize {
        self.checks.iter().filter(|c| c.status == s).count()
    }
}

pub fn run(cli: &Cli, a: &ConfigCheckArgs) -> Result<()> {
    let path = config::locate(cli.config.as_deref());
    let mut report = Report::default();
    // With --tenant: that tenant's config, checked fully (its remote and
    // databases too). Without: the top level fully, and every tenant's
    // config and policy modules (not 500 remotes and connections: those
    // are checked one tenant at a time with --tenant).
    let loaded = Config::load(&path).and_then(|c| match &cli.tenant {
        Some(name) => {
            let tenants = c.tenants.clone();
            c.select(Some(name)).map(|t| (t, tenants, true))
        }
        None => {
            let tenants = c.tenants.clone();
            Ok((c, tenants, false))
        }
    });
    match loaded {
        Err(e) => report.error("config", &e),
        Ok((config, tenants, one_tenant)) => {
            let n = config.databases.len();
            let whose = match &config.tenant {
                Some(t) => format!("tenant {t} of {}", path.display()),
                None => path.display().to_string(),
            };
            report.ok(
                "config",
                format!(
                    "{} loads: remote {}, {n} database{} ({})",
                    whose,
                    config.settings.remote,
                    if n == 1 { "" } else { "s" },
                    config
                        .databases
                        .keys()
                        .map(String::as_str)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            );
            if let (Some(t), true) = (&config.tenant, config.databases.is_empty()) {
                report.push("databases", Status::Error, no_databases(t), ExitCode::Usage);
            }
            check_policies(&config, &mut report);
            check_rclone_environment(&mut report);
            if check_rclone(&config, &mut report) {
                check_remote(&config, &mut report);
            }
            check_media_root(&config, &mut report);
            for alias in config.databases.keys() {
                check_database(&config, alias, &mut report);
            }
            if !one_tenant {
                check_tenants(&tenants, &mut report);
            }
        }
    }
    let errors = report.count(Status::Error);
    let warnings = report.count(Status::Warning);
    if a.json {
        /// The `--json` document, version 1 (docs/setup.md); fields in
        /// this order.
        #[derive(serde::Serialize)]
        struct Doc<'a> {
            version: u32,
            #[serde(skip_serializing_if = "Option::is_none")]
            tenant: Option<&'a str>,
            config: String,
            ok: bool,
            errors: usize,
            warnings: usize,
            checks: Vec<Line<'a>>,
        }
        #[derive(serde::Serialize)]
        struct Line<'a> {
            check: &'a str,
            status: &'a str,
            message: &'a str,
        }
        let doc = Doc {
            version: 1,
            tenant: cli.tenant.as_deref(),
            config: path.display().to_string(),
            ok: errors == 0,
            errors,
            warnings,
            checks: report
                .checks
                .iter()
                .map(|c| Line {
                    check: &c.check,
                    status: c.status.as_str(),
                    message: &c.message,
                })
                .collect(),
        };
        crate::outln!("{}", serde_json::to_string_pretty(&doc).expect("JSON"));
    } else {
        for c in &report.checks {
            crate::outln!("{:<7} {}: {}", c.status.as_str(), c.check, c.message);
        }
    }
    if errors == 0 {
        if !a.json {
            crate::outln!(
                "config check: every check passed{}",
                match warnings {
                    0 => String::new(),
                    1 => " (1 warning)".to_string(),
                    n => format!(" ({n} warnings)"),
                }
            );
        }
        return Ok(());
    }
    let summary = format!(
        "config check: {errors} check{} failed (see the `error` lines above{})",
        if errors == 1 { "" } else { "s" },
        if a.json { ", in the JSON" } else { "" }
    );
    if report
        .checks
        .iter()
        .any(|c| c.status == Status::Error && c.code == ExitCode::Usage)
    {
        Err(exit::usage(summary))
    } else {
        Err(exit::failed(summary))
    }
}

/// Every tenant: its config resolves (a broken one is a failed check
/// naming it and why; exit 2) and its policy modules load for their roles.
/// What a tenant without databases is told: every run of it refuses,
/// and backup-all fails its row.
fn no_databases(name: &str) -> String {
    let name = crate::naming::printable(name);
    format!(
        "tenant {name} has no databases: `--tenant {name} dbbackup` refuses and backup-all fails its row; give it a [databases.<alias>] section (or remove the tenant)"
    )
}

/// One line per tenant; its remote and databases are checked with
/// `config check --tenant NAME`.
fn check_tenants(tenants: &config::Tenants, report: &mut Report) {
    for (name, entry) in tenants.entries() {
        // A tenant file's name may hold a newline or escapes.
        let check = format!("tenant {}", crate::naming::printable(name));
        match entry {
            Err(why) => report.push(&check, Status::Error, why.to_string(), ExitCode::Usage),
            Ok(c) => {
                let mut own = Report::default();
                check_policies(c, &mut own);
                let failed: Vec<Check> = own
                    .checks
                    .into_iter()
                    .filter(|c| c.status == Status::Error)
                    .collect();
                if c.databases.is_empty() {
                    report.push(&check, Status::Error, no_databases(name), ExitCode::Usage);
                } else if failed.is_empty() {
                    let n = c.databases.len();
                    report.ok(
                        &check,
                        format!(
                            "loads: remote {}, {n} database{}; its remote and databases: `rcbackup --tenant {name} config check`",
                            c.settings.remote,
                            if n == 1 { "" } else { "s" },
                        ),
                    );
                }
                for f in failed {
                    report.push(
                        &format!("{check}: {}", f.check),
                        f.status,
                        f.message,
                        f.code,
                    );
                }
            }
        }
    }
}

fn check_policies(config: &Config, report: &mut Report) {
    let p = &config.policies;
    let mut modules: Vec<(String, &ModuleSpec, Role)> = Vec::new();
    if let Some(m) = &p.retention {
        modules.push(("policies.retention".into(), m, Role::Retention));
    }
    if let Some(m) = &p.naming {
        modules.push(("policies.naming".into(), m, Role::Naming));
    }
    if let Some(m) = &p.restore_approval {
        modules.push(("policies.restore_approval".into(), m, Role::RestoreApproval));
    }
    for (i, h) in p.hooks.iter().enumerate() {
        modules.push((format!("hooks[{i}]"), &h.module, Role::Hook));
    }
    for (key, spec, role) in modules {
        let check = format!("policy {key}");
        match GuestPolicy::load(spec, role, &key) {
            // Runs go on without the hook's secret, failing its calls;
            // the check says so as an error.
            Ok(GuestPolicy {
                unready: Some(why), ..
            }) => report.error(&check, &anyhow::anyhow!("{why}")),
            Ok(_) => report.ok(
                &check,
                format!(
                    "{} loads and exports {} (not called){}",
                    spec.path.display(),
                    role.as_str(),
                    match &spec.http {
                        None => String::new(),
                        Some(h) => format!(
                            "; granted HTTP to {}{}",
                            h.origins
                                .iter()
                                .map(|g| g.to_string())
                                .collect::<Vec<_>>()
                                .join(", "),
                            if h.secrets.is_empty() {
                                String::new()
                            } else {
                                format!(
                                    " with the secrets {}",
                                    h.secrets
                                        .iter()
                                        .map(|s| s.name.as_str())
                                        .collect::<Vec<_>>()
                                        .join(", ")
                                )
                            }
                        ),
                    }
                ),
            ),
            Err(e) => report.error(&check, &e),
        }
    }
}

/// rclone is there and answers `version`; false when it is not.
fn check_rclone(config: &Config, report: &mut Report) -> bool {
    let rc = Rclone::from_settings(&config.settings);
    let mut cmd = rc.command(&["version"]);
    cmd.stdout(Stdio::piped());
    let ended = Proc::spawn("rclone", &mut cmd).and_then(|mut p| {
        let mut out = String::new();
        let _ = p.take_stdout().read_to_string(&mut out);
        Ok((p.wait()?, out))
    });
    match ended {
        Ok((end, out)) if end.success() => {
            let version = out.lines().next().unwrap_or("").trim().to_string();
            report.ok(
                "rclone",
                format!("{version} ({})", config.settings.rclone_binary),
            );
            true
        }
        Ok((end, _)) => {
            report.error(
                "rclone",
                &exit::failed(format!(
                    "`{} version` failed: {}. Check rclone_binary and rclone_flags",
                    config.settings.rclone_binary,
                    end.describe()
                )),
            );
            false
        }
        Err(e) => {
            report.error("rclone", &e);
            false
        }
    }
}

/// `RCLONE_<FLAG>` variables reach every rclone rcbackup starts (all but
/// `RCLONE_RC*`, which it removes): one standing for a flag that
/// `rclone_flags` may not hold (`RCLONE_DRY_RUN`, `RCLONE_LOG_LEVEL`,
/// `RCLONE_INCLUDE`, ...) is a warning. Secrets are at home there
/// (`RCLONE_S3_SECRET_ACCESS_KEY`): never a warning. Values are not shown.
fn check_rclone_environment(report: &mut Report) {
    let mut names: Vec<String> = std::env::vars_os()
        .filter_map(|(k, _)| k.into_string().ok())
        .filter(|k| k.starts_with("RCLONE_"))
        .collect();
    names.sort();
    for name in names {
        let option = name["RCLONE_".len()..]
            .to_ascii_lowercase()
            .replace('_', "-");
        if option.is_empty()
            || name == "RCLONE_CONFIG"
            || name.starts_with("RCLONE_CONFIG_")
            || name == "RCLONE_RC"
            || name.starts_with("RCLONE_RC_")
            || crate::rclone::names_secret(&option)
        {
            continue;
        }
        if let Err(why) = crate::rclone::check_flags(&[format!("--{option}")]) {
            report.warn(
                "environment",
                format!(
                    "{name} reaches every rclone rcbackup starts, as `--{option}` would; in rclone_flags that {}. Unset {name} for rcbackup (its value is not shown)",
                    why.trim_start_matches(&format!("`--{option}` ")).trim_end_matches(". Remove it")
                ),
            );
        }
    }
}

/// How long the remote's listing may go without a byte of answer.
const REMOTE_DEADLINE: Duration = Duration::from_secs(30);

/// A listing of the backup folder, with rclone told to try once: a check
/// should answer quickly. A remote that gives no answer within
/// [`REMOTE_DEADLINE`] (a server that accepts connections and never
/// replies) fails the check with those words; rclone's own timeout would
/// wait 5 minutes.
fn check_remote(config: &Config, report: &mut Report) {
    let mut rc = Rclone::from_settings(&config.settings);
    // The user's rclone_flags come after and win.
    rc.flags.splice(
        0..0,
        ["--retries", "1", "--low-level-retries", "1"].map(String::from),
    );
    rc.stall = Stall::deadline(&rc.remote, REMOTE_DEADLINE);
    let dir = &config.settings.db_backup_dir;
    let shown = rc.path(dir);
    match rc.list_files(dir) {
        Ok(None) => report.ok(
            "remote",
            format!("{shown} answers; the folder does not exist yet (a new setup: the first backup makes it)"),
        ),
        Ok(Some(files)) => report.ok(
            "remote",
            format!(
                "{shown} answers: {} file{}",
                files.len(),
                if files.len() == 1 { "" } else { "s" }
            ),
        ),
        Err(e) => report.error("remote", &e),
    }
}

fn check_media_root(config: &Config, report: &mut Report) {
    let Some(m) = &config.settings.media_root else {
        return;
    };
    if m.is_dir() {
        report.ok("media_root", format!("{} is a folder", m.display()));
    } else {
        report.warn(
            "media_root",
            format!(
                "{} {}; mediabackup refuses until it is a folder (fix media_root, or create it)",
                m.display(),
                if m.exists() {
                    "is not a folder"
                } else {
                    "does not exist"
                }
            ),
        );
    }
}

/// The tools a database's backups and restores run, each as alternatives
/// (MariaDB's names first, MySQL's where those are missing).
fn tools(engine: EngineKind) -> Vec<&'static [&'static str]> {
    match engine {
        EngineKind::Postgresql | EngineKind::Postgis => {
            vec![&["pg_dump"], &["pg_restore"], &["psql"]]
        }
        EngineKind::Mysql | EngineKind::Mariadb => {
            vec![&["mariadb-dump", "mysqldump"], &["mariadb", "mysql"]]
        }
        EngineKind::Sqlite => vec![&["sqlite3"]],
    }
}

fn check_database(config: &Config, alias: &str, report: &mut Report) {
    let check = format!("database {alias}");
    let db = match config.database(Some(alias)) {
        Ok(db) => db,
        Err(e) => return report.error(&check, &e),
    };
    if let Err(e) = db.password() {
        // Its words start with the database, which the check names already.
        let m = format!("{e:#}");
        let m = m
            .strip_prefix(&format!("database `{alias}`: "))
            .unwrap_or(&m);
        let e = match exit::code_for(&e) {
            ExitCode::Usage => exit::usage(m),
            _ => exit::failed(m),
        };
        return report.error(&check, &e);
    }
    let mut found = Vec::new();
    let mut missing = Vec::new();
    for alternatives in tools(db.engine) {
        match alternatives.iter().find(|t| on_path(t)) {
            Some(t) => found.push(*t),
            None => missing.push(alternatives.join(" or ")),
        }
    }
    if !missing.is_empty() {
        let hint = crate::process::install_hint(tools(db.engine)[0][0]);
        return report.error(
            &check,
            &exit::failed(format!(
                "{} not found on PATH; {} backups and restores of `{alias}` need {}. {hint}",
                missing.join(", "),
                db.engine,
                if missing.len() == 1 { "it" } else { "them" }
            )),
        );
    }
    let version = match crate::engines::server_version(db) {
        Ok(v) => v,
        Err(e) => return report.error(&check, &e),
    };
    let server = match db.engine {
        EngineKind::Postgresql | EngineKind::Postgis => {
            format!("PostgreSQL {}", pg_version_text(&version))
        }
        EngineKind::Mysql | EngineKind::Mariadb => format!("server {version}"),
        EngineKind::Sqlite => format!("SQLite {version}"),
    };
    report.ok(
        &check,
        format!(
            "{} `{}` answers ({server}); tools: {}",
            db.engine,
            crate::naming::printable(&db.name),
            found.join(", ")
        ),
    );
    if matches!(db.engine, EngineKind::Postgresql | EngineKind::Postgis) {
        check_pg_dump_version(db, &version, &check, report);
    }
}

/// `150004` as `15.4`, `90624` as `9.6.24`.
fn pg_version_text(num: &str) -> String {
    match num.parse::<u32>() {
        Ok(n) if n >= 100_000 => format!("{}.{}", n / 10_000, n % 10_000),
        Ok(n) => format!("{}.{}.{}", n / 10_000, n / 100 % 100, n % 100),
        Err(_) => num.to_string(),
    }
}

/// The major version as a comparable number and as text: 15 for 15.x,
/// 906 ("9.6") for 9.6.x.
fn pg_major_of_num(n: u32) -> (u32, String) {
    if n >= 100_000 {
        (n / 10_000, (n / 10_000).to_string())
    } else {
        (n / 100, format!("{}.{}", n / 10_000, n / 100 % 100))
    }
}

/// pg_dump's `--version` line (`pg_dump (PostgreSQL) 15.4 (Debian ...)`)
/// as the same kind of number.
fn pg_dump_major(line: &str) -> Option<(u32, String)> {
    let v = line
        .split_whitespace()
        .find(|w| w.chars().next().is_some_and(|c| c.is_ascii_digit()))?;
    let mut parts = v
        .split(|c: char| !c.is_ascii_digit())
        .filter(|p| !p.is_empty());
    let major: u32 = parts.next()?.parse().ok()?;
    if major >= 10 {
        Some((major, major.to_string()))
    } else {
        let minor: u32 = parts.next()?.parse().ok()?;
        Some((major * 100 + minor, format!("{major}.{minor}")))
    }
}

fn check_pg_dump_version(db: &Database, server_num: &str, check: &str, report: &mut Report) {
    let Ok(num) = server_num.parse::<u32>() else {
        return;
    };
    let (server, server_text) = pg_major_of_num(num);
    let mut cmd = std::process::Command::new("pg_dump");
    cmd.arg("--version")
        .stdout(Stdio::piped())
        .stdin(Stdio::null());
    let out = Proc::spawn("pg_dump", &mut cmd).and_then(|mut p| {
        let mut out = String::new();
        let _ = p.take_stdout().read_to_string(&mut out);
        Ok((p.wait()?, out))
    });
    let line = match out {
        Ok((end, out)) if end.success() => out.lines().next().unwrap_or("").to_string(),
        Ok((end, _)) => {
            return report.warn(
                check,
                format!("`pg_dump --version` failed: {}", end.describe()),
            )
        }
        Err(e) => return report.warn(check, format!("{e:#}")),
    };
    match pg_dump_major(&line) {
        Some((dump, dump_text)) if dump < server => report.warn(
            check,
            format!(
                "pg_dump is version {dump_text}, older than the server of `{}` ({server_text}): pg_dump refuses to dump a newer server (\"server version mismatch\"), so its backups would fail. \
                 Install the PostgreSQL {server_text} client tools (e.g. apt-get install postgresql-client-{server_text}) and put them first on PATH",
                db.alias
            ),
        ),
        Some((_, dump_text)) => report.ok(
            check,
            format!("pg_dump {dump_text} can dump a PostgreSQL {server_text} server"),
        ),
        None => report.warn(
            check,
            format!(
                "cannot read pg_dump's version from `{}`",
                crate::naming::printable(line.trim())
            ),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postgres_versions() {
        assert_eq!(pg_version_text("150004"), "15.4");
        assert_eq!(pg_version_text("90624"), "9.6.24");
        assert_eq!(pg_major_of_num(150004), (15, "15".into()));
        assert_eq!(pg_major_of_num(90624), (906, "9.6".into()));
        assert_eq!(
            pg_dump_major("pg_dump (PostgreSQL) 15.4 (Debian 15.4-1.pgdg120+1)"),
            Some((15, "15".into()))
        );
        assert_eq!(
            pg_dump_major("pg_dump (PostgreSQL) 9.6.24"),
            Some((906, "9.6".into()))
        );
        assert_eq!(
            pg_dump_major("pg_dump (PostgreSQL) 17beta1"),
            Some((17, "17".into()))
        );
        assert_eq!(pg_dump_major("nonsense"), None);
    }
}
