//! `backup-all`: every database of every tenant (or of the tenants
//! `--tenant PATTERN` matches, or of this `--shard`'s share of them), and
//! the top level's own databases when no pattern is given, at most
//! `--jobs N` dumps at a time; then a summary of every one.
//!
//! Each job is exactly `rcbackup --tenant T dbbackup -d ALIAS [--clean]`
//! ([`dbbackup::back_up`]) on the tenant's resolved config: its hooks,
//! naming and retention policies, records and checks. What the jobs share
//! is only what costs a process or a compile: one rclone server per
//! distinct (rclone_binary, rclone_config, rclone_flags), started on the
//! main thread before any job (so that it dies with rcbackup), and each
//! policy module compiled once for the run (`policy::runtime`); every job
//! gets its own policy instances, limits and events.
//!
//! The scheduler is a current-thread tokio runtime: a semaphore of 2N
//! permits (N jobs up to the end of their dumps, N more publishing or
//! waiting for a dump slot: see [`IN_FLIGHT_PER_DUMP`]), each job on
//! tokio's blocking pool (a dump is blocking work:
//! pipes, child processes, the rclone server's HTTP), all in a JoinSet.
//! One job's failure (a broken tenant, an unset password, a failing dump, a
//! policy that loops, traps or eats memory) fails its row only. On Ctrl-C,
//! SIGTERM or SIGHUP no job starts any more, and the running ones stop the
//! way `dbbackup` stops (`crate::interrupt` TERMs every child; each job
//! removes its partial upload); the summary says which did not run.
//!
//! The top level is shown as tenant `-` in the table and `null` in JSON,
//! labelled `tenant=""` in metrics (as `dbbackup` without `--tenant` is),
//! and sharded as one unit under [`shard::TOP_LEVEL`].

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, Instant, SystemTime};

use anyhow::Result;
use serde::Serialize;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;

use super::dbbackup::{self, BackedUp};
use super::{human_size, json, Context};
use crate::cli::{BackupAllArgs, Cli, DbBackupArgs};
use crate::config::{self, Config};
use crate::exit::{self, ExitCode};
use crate::naming::printable;
use crate::policy::Policies;
use crate::rclone::Rclone;
use crate::shard;

/// `--jobs` by default: the number of CPUs, at least 2 and at most 8. A
/// dump keeps about one core busy (the dump tool, zstd in rcbackup), so
/// more jobs than cores only queue for the CPU; at least 2 so that one
/// job's waits (the database, the remote) overlap another's work even on
/// one core; at most 8 so that a large machine does not open dozens of
/// connections to one database server unasked.
pub fn default_jobs() -> usize {
    std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .clamp(2, 8)
}

/// Whose databases: a tenant, or the top level (`None`).
struct Unit {
    tenant: Option<String>,
    /// The resolved config, or why the tenant is broken.
    config: std::result::Result<Config, String>,
}

impl Unit {
    /// The name it is sharded under.
    fn shard_key(&self) -> &str {
        self.tenant.as_deref().unwrap_or(shard::TOP_LEVEL)
    }
}

/// A tenant's (or the top level's) config and rclone, shared by its jobs.
struct Place {
    config: Config,
    rclone: Rclone,
}

/// One row of the summary to be: a database to back up, or a broken
/// tenant (no database: its config did not resolve).
struct Job {
    tenant: Option<String>,
    database: Option<String>,
    place: std::result::Result<Arc<Place>, String>,
}

/// How a job ended.
enum Outcome {
    Ok(Box<BackedUp>),
    /// Failed; the reason and the exit code `dbbackup` would have given.
    Failed(String, ExitCode),
    /// Stopped by the interrupt while it ran.
    Interrupted(String),
    /// Never started: the run was interrupted first.
    NotRun,
}

struct Row {
    tenant: Option<String>,
    database: Option<String>,
    outcome: Outcome,
    duration: Option<Duration>,
    finished: SystemTime,
}

impl Row {
    fn status(&self) -> &'static str {
        match self.outcome {
            Outcome::Ok(_) => "ok",
            Outcome::Failed(..) => "failed",
            Outcome::Interrupted(_) => "interrupted",
            Outcome::NotRun => "not-run",
        }
    }

    fn exit_code(&self) -> Option<ExitCode> {
        match &self.outcome {
            Outcome::Ok(_) => Some(ExitCode::Success),
            Outcome::Failed(_, code) => Some(*code),
            Outcome::Interrupted(_) => Some(ExitCode::Interrupted),
            Outcome::NotRun => None,
        }
    }
}

pub fn run(cli: &Cli, args: &BackupAllArgs) -> Result<()> {
    let jobs = args.jobs.map_or_else(default_jobs, usize::from);
    let pattern = cli.tenant.as_deref().map(check_pattern).transpose()?;
    let config = Config::load(&config::locate(cli.config.as_deref()))?;
    let units = units(&config, pattern)?;
    let of = units.len();
    let units: Vec<Unit> = match args.shard {
        Some(s) => units
            .into_iter()
            .filter(|u| s.owns(u.shard_key()))
            .collect(),
        None => units,
    };
    let kept = units.len();
    if let Some(s) = args.shard.filter(|_| kept == 0) {
        // Legitimate with few tenants, but also what an N that does not
        // match the number of pods looks like: say so.
        tracing::warn!(
            "shard {s} owns none of the {of} tenant(s) (the top level counts as one): nothing to back up here; check that N is the number of copies running"
        );
    }
    let planned = plan(units)?;
    let tenants: std::collections::BTreeSet<&str> =
        planned.iter().filter_map(|j| j.tenant.as_deref()).collect();
    let broken = planned.iter().filter(|j| j.database.is_none()).count();
    tracing::info!(
        "backing up {} database(s) of {} tenant(s){}{}{}, {jobs} dump(s) at a time",
        planned.len() - broken,
        tenants.len(),
        if planned.iter().any(|j| j.tenant.is_none()) {
            " and of the top level"
        } else {
            ""
        },
        if broken > 0 {
            format!(" ({broken} tenant(s) broken)")
        } else {
            String::new()
        },
        args.shard
            .map(|s| format!("; shard {s} takes {kept} of the {of} (the top level counts as one)"))
            .unwrap_or_default(),
    );
    let opts = JobOpts {
        clean: args.clean,
        lock_wait: cli.lock_wait,
    };
    crate::compression::set_concurrent_dumps(jobs);
    crate::dump_slots::limit(jobs);
    // glibc gives each new thread a malloc arena of its own, which keeps
    // what a job freed for that thread: with 2N job threads the run's
    // peak memory grew with the number of tenants. Two arenas serve jobs
    // that allocate a few buffers each.
    #[cfg(target_env = "gnu")]
    // SAFETY: mallopt only sets an allocator parameter; called before the
    // job threads start.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
    let rows = schedule(planned, IN_FLIGHT_PER_DUMP * jobs, opts)?;
    if let Some(path) = crate::metrics::file(cli) {
        write_metrics(&path, &rows);
    }
    let counts = Counts::of(&rows);
    if args.json {
        json::print(&Summary {
            interrupted: crate::interrupt::interrupted(),
            jobs,
            shard: args.shard.map(|s| s.to_string()),
            counts: counts.clone(),
            databases: rows.iter().map(row_json).collect(),
        })?;
    } else {
        print_table(&rows, &counts)?;
    }
    if crate::interrupt::interrupted() {
        return Err(exit::interrupted_at(format!(
            "{} backed up, {} failed, {} stopped, {} not started (see the summary)",
            counts.ok, counts.failed, counts.interrupted, counts.not_run
        )));
    }
    if counts.failed > 0 {
        return Err(exit::failed(if counts.ok == 0 {
            format!("every backup failed ({}; see the summary)", counts.failed)
        } else {
            format!(
                "{} of {} backup(s) failed (see the summary); the other {} were made",
                counts.failed,
                rows.len(),
                counts.ok
            )
        }));
    }
    Ok(())
}

/// `--tenant` for backup-all: a tenant name, or a pattern of one with `*`
/// (any characters) and `?` (one character).
fn check_pattern(p: &str) -> Result<&str> {
    let ok = !p.is_empty()
        && p.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'-' | b'_' | b'*' | b'?')
        });
    if ok {
        return Ok(p);
    }
    Err(exit::usage(format!(
        "--tenant `{}` is not a tenant name or pattern: backup-all takes a tenant name (lowercase letters, digits, `-` and `_`) or a pattern of one with `*` (any characters) and `?` (one character), e.g. --tenant 'shop-*'",
        printable(p)
    )))
}

/// Whether `name` matches the glob `pattern` (`*`, `?`).
fn glob(pattern: &str, name: &str) -> bool {
    let (p, n) = (pattern.as_bytes(), name.as_bytes());
    let (mut i, mut j) = (0, 0);
    // Where the last `*` was, and where in `name` it matched up to.
    let mut star: Option<(usize, usize)> = None;
    while j < n.len() {
        if i < p.len() && (p[i] == b'?' || p[i] == n[j]) {
            i += 1;
            j += 1;
        } else if i < p.len() && p[i] == b'*' {
            star = Some((i, j));
            i += 1;
        } else if let Some((si, sj)) = star {
            i = si + 1;
            j = sj + 1;
            star = Some((si, sj + 1));
        } else {
            return false;
        }
    }
    p[i..].iter().all(|&c| c == b'*')
}

/// The top level (without a pattern, when it has databases of its own)
/// and every tenant the pattern matches, in name order.
fn units(config: &Config, pattern: Option<&str>) -> Result<Vec<Unit>> {
    let mut out = Vec::new();
    if pattern.is_none() && !config.databases.is_empty() {
        out.push(Unit {
            tenant: None,
            config: Ok(config.clone()),
        });
    }
    for (name, entry) in config.tenants.entries() {
        if pattern.is_some_and(|p| !glob(p, name)) {
            continue;
        }
        out.push(Unit {
            tenant: Some(name.to_string()),
            config: entry.cloned().map_err(str::to_string),
        });
    }
    if out.is_empty() {
        let file = config.path.display();
        return Err(exit::usage(match pattern {
            Some(p) => format!(
                "--tenant `{p}` matches no tenant in {file}; {}",
                config.tenants.some_names()
            ),
            None => format!(
                "nothing to back up: {file} has no databases at the top level and no tenants"
            ),
        }));
    }
    Ok(out)
}

/// The jobs of `units`, with one rclone (and server) per distinct
/// (binary, config, flags), started here, on the main thread.
fn plan(units: Vec<Unit>) -> Result<Vec<Job>> {
    let mut servers = crate::rclone::Servers::default();
    let mut jobs = Vec::new();
    for unit in units {
        let config = match unit.config {
            Ok(c) => c,
            Err(why) => {
                jobs.push(Job {
                    tenant: unit.tenant,
                    database: None,
                    place: Err(why),
                });
                continue;
            }
        };
        if config.databases.is_empty() {
            // The top level has none when every database is a tenant's. A
            // tenant with none is unprotected: a failed row, never silence.
            if let Some(t) = &unit.tenant {
                jobs.push(Job {
                    tenant: unit.tenant.clone(),
                    database: None,
                    place: Err(format!(
                        "tenant `{t}` has no databases, so nothing of it is backed up; add a [databases.<alias>] section to {}",
                        config.path.display()
                    )),
                });
            }
            continue;
        }
        let place = Arc::new(Place {
            rclone: servers.for_settings(&config.settings)?,
            config,
        });
        for alias in place.config.databases.keys() {
            jobs.push(Job {
                tenant: unit.tenant.clone(),
                database: Some(alias.clone()),
                place: Ok(place.clone()),
            });
        }
    }
    Ok(jobs)
}

/// Jobs under way per dump slot (`--jobs`, [`crate::dump_slots`]): a job
/// holds its slot from its start until its dump is uploaded, then
/// publishes, runs its hooks and cleans up while the next job dumps (round
/// trips to the remote that would otherwise leave the cores idle between
/// dumps). Jobs waiting for a slot hold nothing.
const IN_FLIGHT_PER_DUMP: usize = 2;

/// Runs the jobs, at most `n` at a time, until all ran or the run is
/// interrupted; a row for every job, in the jobs' order.
/// What every job does the same: `--clean`, and `--lock-wait` for each
/// database's lock (a lock not had in time fails that job's row only).
#[derive(Clone, Copy)]
struct JobOpts {
    clean: bool,
    lock_wait: std::time::Duration,
}

fn schedule(jobs: Vec<Job>, n: usize, opts: JobOpts) -> Result<Vec<Row>> {
    // One blocking thread per job: a job's permit is released when its
    // thread finishes, so without this bound the next job could start on
    // a new thread before the old one is back in the pool, and each new
    // thread grows the allocator's arenas (peak memory grew with the
    // number of tenants).
    let runtime = tokio::runtime::Builder::new_current_thread()
        .max_blocking_threads(n)
        .build()
        .map_err(|e| exit::failed(format!("cannot start the job scheduler: {e}")))?;
    let total = jobs.len();
    let done = Arc::new(AtomicUsize::new(0));
    let permits = Arc::new(Semaphore::new(n));
    let mut rows: Vec<Option<Row>> = (0..total).map(|_| None).collect();
    runtime.block_on(async {
        let mut running = JoinSet::new();
        let mut waiting = jobs.into_iter().enumerate();
        for (i, job) in waiting.by_ref() {
            let Some(permit) = permit_unless_interrupted(&permits).await else {
                rows[i] = Some(not_run(job));
                break;
            };
            let done = done.clone();
            running.spawn_blocking(move || {
                let _permit: OwnedSemaphorePermit = permit;
                (i, run_job(job, opts, &done, total))
            });
        }
        for (i, job) in waiting {
            rows[i] = Some(not_run(job));
        }
        while let Some(joined) = running.join_next().await {
            // A job's panic is caught in `run_job`; a join error is a bug.
            if let Ok((i, row)) = joined {
                rows[i] = Some(row);
            }
        }
    });
    Ok(rows
        .into_iter()
        .map(|r| {
            r.unwrap_or_else(|| Row {
                tenant: None,
                database: None,
                outcome: Outcome::Failed("the job was lost (a bug)".into(), ExitCode::Failed),
                duration: None,
                finished: SystemTime::now(),
            })
        })
        .collect())
}

/// A permit to start a job, or `None` once the run is interrupted.
async fn permit_unless_interrupted(permits: &Arc<Semaphore>) -> Option<OwnedSemaphorePermit> {
    let mut acquire = std::pin::pin!(permits.clone().acquire_owned());
    let mut signal = std::pin::pin!(crate::interrupt::wait());
    std::future::poll_fn(|cx| {
        if signal.as_mut().poll(cx).is_ready() {
            return Poll::Ready(None);
        }
        match acquire.as_mut().poll(cx) {
            Poll::Ready(p) => Poll::Ready(p.ok()),
            Poll::Pending => Poll::Pending,
        }
    })
    .await
}

fn not_run(job: Job) -> Row {
    Row {
        tenant: job.tenant,
        database: job.database,
        outcome: Outcome::NotRun,
        duration: None,
        finished: SystemTime::now(),
    }
}

/// One job, on a thread of tokio's blocking pool; its log lines carry the
/// tenant and the database.
fn run_job(job: Job, opts: JobOpts, done: &AtomicUsize, total: usize) -> Row {
    // At ERROR level, so that -q (warnings and errors only) keeps it.
    let span = tracing::error_span!(
        "job",
        tenant = tracing::field::Empty,
        database = tracing::field::Empty
    );
    if let Some(t) = &job.tenant {
        span.record("tenant", t.as_str());
    }
    if let Some(d) = &job.database {
        span.record("database", d.as_str());
    }
    let _entered = span.enter();
    // A job waiting for its dump slot holds nothing yet (no lock, no name,
    // no event): one stopped while waiting did not run.
    let Ok(slot) = crate::dump_slots::take() else {
        return not_run(job);
    };
    let started = Instant::now();
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        back_up_one(&job, opts, slot)
    }))
    .unwrap_or_else(|_| {
        Err(exit::failed(
            "rcbackup failed inside this job (a bug: the panic above says where)",
        ))
    });
    let duration = started.elapsed();
    let outcome = match result {
        Ok(made) => Outcome::Ok(Box::new(made)),
        Err(e) => {
            let why = crate::render_error(&e).replace('\n', " ");
            match exit::code_for(&e) {
                ExitCode::Interrupted => Outcome::Interrupted(why),
                code => Outcome::Failed(why, code),
            }
        }
    };
    let k = done.fetch_add(1, Ordering::SeqCst) + 1;
    match &outcome {
        Outcome::Ok(m) => tracing::info!(
            "{k}/{total} done: ok, {} ({}) in {:.1} s",
            m.record.name,
            human_size(m.record.size),
            duration.as_secs_f64()
        ),
        Outcome::Failed(why, _) => tracing::error!("{k}/{total} done: failed: {why}"),
        Outcome::Interrupted(why) => tracing::warn!("{k}/{total} done: {why}"),
        Outcome::NotRun => {}
    }
    Row {
        tenant: job.tenant,
        database: job.database,
        outcome,
        duration: Some(duration),
        finished: SystemTime::now(),
    }
}

/// What `rcbackup --tenant T dbbackup -d ALIAS [--clean]` does, on the
/// tenant's config, the run's rclone and policies loaded for this job.
fn back_up_one(job: &Job, opts: JobOpts, slot: crate::dump_slots::Slot) -> Result<BackedUp> {
    let place = job.place.as_ref().map_err(|why| exit::usage(why.clone()))?;
    let ctx = Context {
        policies: Policies::from_config(&place.config.policies)?
            .for_tenant(place.config.tenant.clone()),
        rclone: place.rclone.clone(),
        config: place.config.clone(),
        lock_wait: opts.lock_wait,
    };
    let args = DbBackupArgs {
        database: job.database.clone(),
        noinput: false,
        clean: opts.clean,
        dry_run: false,
        json: false,
    };
    dbbackup::back_up(&ctx, &args, Some(slot))?
        .ok_or_else(|| exit::failed("no backup was made (a bug: not a dry run)"))
}

/// One series per job that ran: `command="dbbackup"`, so a tenant's
/// database has the same series whether `dbbackup` or `backup-all` backed
/// it up. A job that never started leaves its series as it was.
fn write_metrics(path: &std::path::Path, rows: &[Row]) {
    let outcomes: Vec<crate::metrics::Outcome> = rows
        .iter()
        .filter_map(|r| {
            let code = r.exit_code()?;
            Some(crate::metrics::Outcome {
                command: "dbbackup".into(),
                database: r.database.clone().unwrap_or_default(),
                tenant: r.tenant.clone().unwrap_or_default(),
                success: code == ExitCode::Success,
                exit_code: code as i32,
                finished: r.finished,
                duration: r.duration.unwrap_or_default(),
                size: match &r.outcome {
                    Outcome::Ok(m) => Some(m.record.size),
                    _ => None,
                },
            })
        })
        .collect();
    if let Err(e) = crate::metrics::record_all(path, &outcomes) {
        tracing::warn!(
            "could not write the metrics file {}: {e:#}; the run's result is unchanged",
            path.display()
        );
    }
}

#[derive(Clone, Default, Serialize)]
struct Counts {
    ok: usize,
    failed: usize,
    interrupted: usize,
    not_run: usize,
}

impl Counts {
    fn of(rows: &[Row]) -> Counts {
        let mut c = Counts::default();
        for r in rows {
            match r.outcome {
                Outcome::Ok(_) => c.ok += 1,
                Outcome::Failed(..) => c.failed += 1,
                Outcome::Interrupted(_) => c.interrupted += 1,
                Outcome::NotRun => c.not_run += 1,
            }
        }
        c
    }
}

/// `backup-all --json` (docs/json.md).
#[derive(Serialize)]
struct Summary {
    interrupted: bool,
    jobs: usize,
    shard: Option<String>,
    counts: Counts,
    databases: Vec<RowJson>,
}

#[derive(Serialize)]
struct RowJson {
    tenant: Option<String>,
    database: Option<String>,
    status: &'static str,
    exit_code: Option<i32>,
    duration_ms: Option<u64>,
    backup: Option<json::Backup>,
    error: Option<String>,
}

fn row_json(r: &Row) -> RowJson {
    let (backup, error) = match &r.outcome {
        Outcome::Ok(m) => (Some(json::Backup::of(&m.record, m.path.clone())), None),
        Outcome::Failed(why, _) | Outcome::Interrupted(why) => (None, Some(why.clone())),
        Outcome::NotRun => (
            None,
            Some("not started: the run was interrupted first".to_string()),
        ),
    };
    RowJson {
        tenant: r.tenant.clone(),
        database: r.database.clone(),
        status: r.status(),
        exit_code: r.exit_code().map(|c| c as i32),
        duration_ms: r.duration.map(json::millis),
        backup,
        error,
    }
}

/// The summary as a table: one line per database, then the counts.
fn print_table(rows: &[Row], counts: &Counts) -> Result<()> {
    let cells: Vec<[String; 6]> = rows
        .iter()
        .map(|r| {
            let (size, what) = match &r.outcome {
                Outcome::Ok(m) => (human_size(m.record.size), m.record.name.clone()),
                Outcome::Failed(why, _) | Outcome::Interrupted(why) => ("-".into(), why.clone()),
                Outcome::NotRun => (
                    "-".into(),
                    "not started: the run was interrupted first".into(),
                ),
            };
            [
                r.tenant.as_deref().map_or("-".into(), printable),
                r.database.as_deref().map_or("-".into(), printable),
                r.status().to_string(),
                size,
                r.duration
                    .map_or("-".into(), |d| format!("{:.1}s", d.as_secs_f64())),
                what,
            ]
        })
        .collect();
    let header = [
        "TENANT",
        "DATABASE",
        "STATUS",
        "SIZE",
        "TIME",
        "BACKUP / REASON",
    ];
    let mut width = header.map(str::len);
    for c in &cells {
        for (w, cell) in width.iter_mut().zip(c) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |c: [&str; 6]| {
        format!(
            "{:<w0$}  {:<w1$}  {:<w2$}  {:>w3$}  {:>w4$}  {}",
            c[0],
            c[1],
            c[2],
            c[3],
            c[4],
            c[5],
            w0 = width[0],
            w1 = width[1],
            w2 = width[2],
            w3 = width[3],
            w4 = width[4],
        )
    };
    crate::outln!("{}", line(header));
    for c in &cells {
        crate::outln!("{}", line(c.each_ref().map(String::as_str)).trim_end());
    }
    crate::outln!(
        "{} ok, {} failed, {} interrupted, {} not run (of {})",
        counts.ok,
        counts.failed,
        counts.interrupted,
        counts.not_run,
        rows.len()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_as_shells_do() {
        for (p, n, m) in [
            ("*", "acme", true),
            ("acme", "acme", true),
            ("acme", "acme2", false),
            ("acme*", "acme", true),
            ("acme*", "acme-shop", true),
            ("*-shop", "acme-shop", true),
            ("*-shop", "acme-shop2", false),
            ("a?me", "acme", true),
            ("a?me", "ame", false),
            ("*a*b*", "xxaxxbxx", true),
            ("*a*b*", "xxbxxaxx", false),
            ("a*a*a", "aaa", true),
            ("a*a*a", "aa", false),
            ("??", "ab", true),
            ("??", "abc", false),
        ] {
            assert_eq!(glob(p, n), m, "{p} ~ {n}");
        }
    }

    #[test]
    fn patterns_are_tenant_names_with_wildcards() {
        assert!(check_pattern("shop-*").is_ok());
        assert!(check_pattern("a?c_1").is_ok());
        for bad in ["", "Acme", "../x", "a/b", "[ab]", "a b"] {
            let e = format!("{:#}", check_pattern(bad).unwrap_err());
            assert!(e.contains("not a tenant name or pattern"), "{bad}: {e}");
        }
    }
}
