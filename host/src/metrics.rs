//! `--metrics-file PATH`: after each run of a command that backs up,
//! restores or checks, the Prometheus text-format metrics of every
//! (command, database, tenant) the file has seen, for node_exporter's
//! textfile collector (docs/monitoring.md).
//!
//! The file is read, updated with this run and replaced atomically (a
//! temporary file in the same folder, not ending in `.prom`, mode 0644,
//! renamed over it), under an flock on `PATH.lock`, so that two runs at once
//! keep each other's series. A previous file rcbackup cannot read (damaged,
//! or another program's) is replaced with a warning. Failing to write is a
//! warning, never a change of the run's exit code.
//!
//! A command reports what it learned with [`note_database`] and
//! [`note_size`], and `Context::load` the aliases the config defines with
//! [`note_configured`]; `lib.rs` calls [`after_run`] with the outcome. A new
//! command records by being named in [`target`].

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{anyhow, Result};

use crate::cli::Commands;
use crate::naming::printable;

/// What one run did, for one series.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub command: String,
    pub database: String,
    pub tenant: String,
    pub success: bool,
    pub exit_code: i32,
    pub finished: SystemTime,
    pub duration: Duration,
    /// The backup's size in bytes, when the run knows it.
    pub size: Option<u64>,
}

/// The commands that record, and the `-d` they were given.
pub fn target(command: &Commands) -> Option<(&'static str, Option<String>)> {
    match command {
        Commands::Dbbackup(a) => Some(("dbbackup", a.database.clone())),
        Commands::Dbrestore(a) => Some(("dbrestore", a.database.clone())),
        Commands::Verify(a) => Some(("verify", a.database.clone())),
        Commands::Mediabackup(_) => Some(("mediabackup", None)),
        // A drill's last success is the proof that backups restore.
        Commands::Drill(a) if !a.cleanup => Some(("drill", a.database.clone())),
        _ => None,
    }
}

struct Noted {
    database: Option<String>,
    /// The tenant of the run (`--tenant`), once its config loaded.
    tenant: Option<String>,
    size: Option<u64>,
    /// The aliases of the config, once it loaded.
    configured: Option<Vec<String>>,
}

static NOTED: Mutex<Noted> = Mutex::new(Noted {
    database: None,
    tenant: None,
    size: None,
    configured: None,
});

/// The aliases the config defines, once it has loaded: a `-d` given is a
/// label value only if it is one of them.
pub fn note_configured<'a>(aliases: impl IntoIterator<Item = &'a String>) {
    if let Ok(mut n) = NOTED.lock() {
        n.configured = Some(aliases.into_iter().cloned().collect());
    }
}

/// The tenant this run works for (its config loaded): the `tenant` label.
pub fn note_tenant(tenant: Option<&str>) {
    if let Ok(mut n) = NOTED.lock() {
        n.tenant = tenant.map(str::to_string);
    }
}

/// The database this run works on (its alias), once the command knows it.
pub fn note_database(alias: &str) {
    if let Ok(mut n) = NOTED.lock() {
        n.database = Some(alias.to_string());
    }
}

/// The size of the backup this run made or read.
pub fn note_size(bytes: u64) {
    if let Ok(mut n) = NOTED.lock() {
        n.size = Some(bytes);
    }
}

/// Records a finished run in `path`; a failure is a warning.
pub fn after_run(
    path: &Path,
    (command, given_database): (&str, Option<String>),
    exit_code: i32,
    duration: Duration,
) {
    let (database, tenant, size, configured) = match NOTED.lock() {
        Ok(n) => (
            n.database.clone(),
            n.tenant.clone(),
            n.size,
            n.configured.clone(),
        ),
        Err(_) => (None, None, None, None),
    };
    // A run that failed before it reached its database (an unset url_env)
    // is filed under the -d it was given if the config defines that
    // alias; a typo, or any -d when the config did not load, under "":
    // a mistyped -d never adds a series (the file keeps every series it
    // ever had).
    let given_database =
        given_database.filter(|d| configured.as_ref().is_some_and(|c| c.contains(d)));
    let outcome = Outcome {
        command: command.to_string(),
        database: database.or(given_database).unwrap_or_default(),
        tenant: tenant.unwrap_or_default(),
        success: exit_code == 0,
        exit_code,
        finished: SystemTime::now(),
        duration,
        size,
    };
    if let Err(e) = record(path, &outcome) {
        tracing::warn!(
            "could not write the metrics file {}: {e:#}; the run's result is unchanged",
            path.display()
        );
    }
}

/// The metric families, in the order written.
const FAMILIES: [(&str, &str, &str); 7] = [
    (
        "rcbackup_last_run_timestamp_seconds",
        "gauge",
        "When the last run of this command for this database ended (Unix time).",
    ),
    (
        "rcbackup_last_success_timestamp_seconds",
        "gauge",
        "When the last successful run ended (Unix time); absent until one succeeds.",
    ),
    (
        "rcbackup_last_run_success",
        "gauge",
        "1 if the last run succeeded, else 0.",
    ),
    (
        "rcbackup_last_run_exit_code",
        "gauge",
        "The exit code of the last run (README, Exit codes).",
    ),
    (
        "rcbackup_last_run_duration_seconds",
        "gauge",
        "How long the last run took.",
    ),
    (
        "rcbackup_last_backup_size_bytes",
        "gauge",
        "Stored size of the backup the last run that knew it made or read.",
    ),
    (
        "rcbackup_failures_total",
        "counter",
        "Runs that failed, since the metrics file was made.",
    ),
];

/// The values of one series.
#[derive(Debug, Clone, Default, PartialEq)]
struct Series {
    values: [Option<f64>; 7],
}

type Key = (String, String, String);

/// The file `--metrics-file` (else `$RCBACKUP_METRICS_FILE`, where an
/// empty value counts as unset) names, if any.
pub fn file(cli: &crate::cli::Cli) -> Option<PathBuf> {
    cli.metrics_file.clone().or_else(|| {
        std::env::var_os("RCBACKUP_METRICS_FILE")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    })
}

/// Records `outcome` in the file at `path`.
pub fn record(path: &Path, outcome: &Outcome) -> Result<()> {
    record_all(path, std::slice::from_ref(outcome))
}

/// Records every outcome (`backup-all`: one per job) in one write.
pub fn record_all(path: &Path, outcomes: &[Outcome]) -> Result<()> {
    // Only a regular file (or a link, which is replaced, not followed) is
    // ever replaced: renaming over `/dev/null` would turn the device into a
    // file, and opening a FIFO would wait for a reader forever.
    if let Ok(m) = fs::symlink_metadata(path) {
        if !m.is_file() && !m.file_type().is_symlink() {
            return Err(anyhow!(
                "it exists and is not a regular file (a device, FIFO, socket or folder); give --metrics-file a file's path"
            ));
        }
    }
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let file_name = path
        .file_name()
        .ok_or_else(|| anyhow!("it names no file"))?
        .to_string_lossy()
        .into_owned();
    let _lock = lock(&dir.join(format!("{file_name}.lock")))?;
    let mut all = match fs::read(path) {
        Ok(bytes) => match std::str::from_utf8(&bytes)
            .map_err(|_| "it is not text".to_string())
            .and_then(parse)
        {
            Ok(all) => all,
            Err(why) => {
                tracing::warn!(
                    "the metrics file {} is not one rcbackup wrote ({}); starting it over",
                    path.display(),
                    printable(&why)
                );
                BTreeMap::new()
            }
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
        Err(e) => return Err(anyhow!("cannot read it: {e}")),
    };
    for outcome in outcomes {
        update(&mut all, outcome);
    }
    crate::failpoint::reached("metrics-write");
    // Temporary files of runs killed while writing: only the lock holder
    // writes one, so every one found now is stale.
    let prefix = format!(".{file_name}.tmp-");
    if let Ok(entries) = fs::read_dir(&dir) {
        for e in entries.flatten() {
            if e.file_name().to_string_lossy().starts_with(&prefix) {
                let _ = fs::remove_file(e.path());
            }
        }
    }
    let tmp = dir.join(format!("{prefix}{}", std::process::id()));
    let written = (|| -> std::io::Result<()> {
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o644)
            .open(&tmp)?;
        // Whatever the umask: node_exporter runs as another user.
        f.set_permissions(fs::Permissions::from_mode(0o644))?;
        f.write_all(render(&all).as_bytes())?;
        f.sync_all()?;
        crate::failpoint::reached("metrics-rename");
        fs::rename(&tmp, path)
    })();
    if let Err(e) = written {
        let _ = fs::remove_file(&tmp);
        return Err(anyhow!("cannot write it: {e}"));
    }
    Ok(())
}

/// An exclusive flock on `path`, waited for up to 30 s.
fn lock(path: &Path) -> Result<File> {
    let f = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o644)
        .open(path)
        .map_err(|e| anyhow!("cannot open its lock file {}: {e}", path.display()))?;
    let until = Instant::now() + Duration::from_secs(30);
    loop {
        // SAFETY: flock(2) on a descriptor we own.
        if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0 {
            return Ok(f);
        }
        let e = std::io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::EWOULDBLOCK)
            && e.kind() != std::io::ErrorKind::Interrupted
        {
            return Err(anyhow!("cannot lock {}: {e}", path.display()));
        }
        if Instant::now() > until {
            return Err(anyhow!("another run held {} for over 30 s", path.display()));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn update(all: &mut BTreeMap<Key, Series>, o: &Outcome) {
    let key = (o.command.clone(), o.database.clone(), o.tenant.clone());
    let s = all.entry(key).or_default();
    let finished = o
        .finished
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs() as f64;
    s.values[0] = Some(finished);
    if o.success {
        s.values[1] = Some(finished);
    }
    s.values[2] = Some(if o.success { 1.0 } else { 0.0 });
    s.values[3] = Some(o.exit_code as f64);
    s.values[4] = Some((o.duration.as_secs_f64() * 1000.0).round() / 1000.0);
    if let Some(size) = o.size {
        s.values[5] = Some(size as f64);
    }
    let failures = s.values[6].unwrap_or(0.0);
    s.values[6] = Some(failures + if o.success { 0.0 } else { 1.0 });
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn render(all: &BTreeMap<Key, Series>) -> String {
    let mut out = String::new();
    for (i, (name, kind, help)) in FAMILIES.iter().enumerate() {
        out.push_str(&format!("# HELP {name} {help}\n# TYPE {name} {kind}\n"));
        for ((command, database, tenant), s) in all {
            if let Some(v) = s.values[i] {
                out.push_str(&format!(
                    "{name}{{command=\"{}\",database=\"{}\",tenant=\"{}\"}} {v}\n",
                    escape(command),
                    escape(database),
                    escape(tenant)
                ));
            }
        }
    }
    out
}

/// Reads a file [`render`] wrote; anything else is an error saying why.
fn parse(text: &str) -> std::result::Result<BTreeMap<Key, Series>, String> {
    let mut all: BTreeMap<Key, Series> = BTreeMap::new();
    for (n, line) in text.lines().enumerate() {
        let at = |why: &str| format!("line {}: {why}", n + 1);
        if line.is_empty() {
            continue;
        }
        if let Some(c) = line
            .strip_prefix("# HELP ")
            .or_else(|| line.strip_prefix("# TYPE "))
        {
            let name = c.split(' ').next().unwrap_or_default();
            if !FAMILIES.iter().any(|(f, _, _)| *f == name) {
                return Err(at("a comment about a metric rcbackup does not write"));
            }
            continue;
        }
        let (name, rest) = line
            .split_once('{')
            .ok_or_else(|| at("not a sample with labels"))?;
        let family = FAMILIES
            .iter()
            .position(|(f, _, _)| *f == name)
            .ok_or_else(|| at("a metric rcbackup does not write"))?;
        let mut labels: BTreeMap<String, String> = BTreeMap::new();
        let mut chars = rest.chars();
        loop {
            let key: String = chars.by_ref().take_while(|c| *c != '=').collect();
            if chars.next() != Some('"') {
                return Err(at("a label value is not quoted"));
            }
            let mut value = String::new();
            loop {
                match chars.next() {
                    Some('"') => break,
                    Some('\\') => match chars.next() {
                        Some('n') => value.push('\n'),
                        Some(c @ ('\\' | '"')) => value.push(c),
                        _ => return Err(at("a bad escape")),
                    },
                    Some(c) => value.push(c),
                    None => return Err(at("an unterminated label value")),
                }
            }
            labels.insert(key, value);
            match chars.next() {
                Some(',') => continue,
                Some('}') => break,
                _ => return Err(at("labels not closed")),
            }
        }
        let value = chars.as_str();
        let value: f64 = value
            .strip_prefix(' ')
            .and_then(|v| v.parse().ok())
            .filter(|v: &f64| v.is_finite())
            .ok_or_else(|| at("the value is not a number"))?;
        // Times, durations, sizes, counts and exit codes: never negative.
        if value < 0.0 {
            return Err(at("a negative value, which rcbackup never writes"));
        }
        let get = |k: &str| labels.get(k).cloned();
        let (Some(command), Some(database), Some(tenant), 3) =
            (get("command"), get("database"), get("tenant"), labels.len())
        else {
            return Err(at("not the labels command, database and tenant"));
        };
        all.entry((command, database, tenant)).or_default().values[family] = Some(value);
    }
    Ok(all)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(success: bool, size: Option<u64>) -> Outcome {
        Outcome {
            command: "dbbackup".into(),
            database: "a \"b\"\\\nc".into(),
            tenant: String::new(),
            success,
            exit_code: if success { 0 } else { 1 },
            finished: UNIX_EPOCH + Duration::from_secs(1_800_000_000),
            duration: Duration::from_millis(1234),
            size,
        }
    }

    #[test]
    fn renders_and_reads_back_what_it_wrote() {
        let mut all = BTreeMap::new();
        update(&mut all, &outcome(true, Some(u64::from(u32::MAX) * 1000)));
        update(&mut all, &outcome(false, None));
        let text = render(&all);
        assert!(text.contains("rcbackup_failures_total{command=\"dbbackup\",database=\"a \\\"b\\\"\\\\\\nc\",tenant=\"\"} 1\n"), "{text}");
        assert!(text.contains("rcbackup_last_success_timestamp_seconds{command=\"dbbackup\",database=\"a \\\"b\\\"\\\\\\nc\",tenant=\"\"} 1800000000\n"), "{text}");
        assert!(text.contains("} 4294967295000\n"), "{text}");
        assert!(text.contains("rcbackup_last_run_duration_seconds{command=\"dbbackup\",database=\"a \\\"b\\\"\\\\\\nc\",tenant=\"\"} 1.234\n"), "{text}");
        assert_eq!(parse(&text).unwrap(), all);
    }

    #[test]
    fn refuses_what_it_did_not_write() {
        for bad in [
            "x 1\n",
            "node_load1{a=\"b\"} 1\n",
            "rcbackup_failures_total{command=\"a\",database=\"b\"} 1\n",
            "rcbackup_failures_total{command=\"a\",database=\"b\",tenant=\"\"} NaN\n",
            "rcbackup_failures_total{command=\"a\",database=\"b\",tenant=\"\"}\n",
            "rcbackup_failures_total{command=\"a,database=\"b\",tenant=\"\"} 1\n",
            "rcbackup_failures_total{command=\"a\\q\",database=\"b\",tenant=\"\"} 1\n",
            "rcbackup_failures_total{command=\"a\",database=\"b\",tenant=\"\"} -5\n",
            "# HELP x y\n",
            "# TYPE node_load1 gauge\n",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }
}
