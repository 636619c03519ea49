//! One rclone process per operation: `rclone lsjson`, `rclone rcat`, ...
//! The fallback when no server runs (see the module above), and the way for
//! what rclone's API cannot do (media transfers that report each file).

use std::io::Write;
use std::process::Stdio;
use std::time::Duration;

use anyhow::Result;

use super::stall::{is_stall, PipeWatch};
use super::{Download, Entry, Outcome, Rclone, Upload};
use crate::exit;
use crate::process::{Ended, Proc};

/// rclone's exit codes for "directory not found" and "file not found".
const EXIT_DIR_NOT_FOUND: i32 = 3;
const EXIT_FILE_NOT_FOUND: i32 = 4;

pub fn is_not_found(end: &Ended) -> bool {
    matches!(
        end.code(),
        Some(EXIT_DIR_NOT_FOUND) | Some(EXIT_FILE_NOT_FOUND)
    )
}

/// Why an rclone process failed. One killed by a signal after the run was
/// interrupted was stopped by the interrupt (its handler stops every child):
/// that is the interrupt, not the remote's fault, so no advice about the
/// remote. The caller's interrupt handling says what that leaves.
fn failure(rc: &Rclone, what: &str, end: &Ended) -> anyhow::Error {
    if crate::interrupt::interrupted() && end.code().is_none() {
        tracing::debug!("stopped by the interrupt: {what}: {}", end.describe());
        return exit::interrupted_at(format!("{what} was stopped by the interrupt"));
    }
    rc.failure(what, end)
}

impl From<Ended> for Outcome {
    fn from(end: Ended) -> Outcome {
        Outcome {
            ok: end.success(),
            not_found: is_not_found(&end),
            said: end.describe(),
        }
    }
}

/// Runs rclone to completion, collecting stdout.
pub fn output<S: AsRef<std::ffi::OsStr>>(rc: &Rclone, args: &[S]) -> Result<(Ended, Vec<u8>)> {
    let mut cmd = rc.command(args);
    cmd.stdout(Stdio::piped());
    let mut p = Proc::spawn("rclone", &mut cmd)?;
    let mut out = Vec::new();
    std::io::copy(&mut p.take_stdout(), &mut out)
        .map_err(|e| exit::failed(format!("reading rclone's output: {e}")))?;
    Ok((p.wait()?, out))
}

/// [`output`] for a listing or a read (`what`, e.g. "listing dav:db"):
/// rclone's output may go without a byte for at most the stall limit
/// (see the `stall` module); then rclone is stopped and the error says the
/// remote stopped answering. Not tried at all after an earlier stall.
fn watched_output<S: AsRef<std::ffi::OsStr>>(
    rc: &Rclone,
    args: &[S],
    what: &str,
) -> Result<(Ended, Vec<u8>)> {
    rc.stall
        .check()
        .map_err(|said| super::remote_error(what, &said))?;
    let mut cmd = rc.command(args);
    cmd.stdout(Stdio::piped());
    let mut p = Proc::spawn("rclone", &mut cmd)?;
    let mut out = Vec::new();
    let mut watched = PipeWatch::new(p.take_stdout(), rc.stall.clone(), false);
    if let Err(e) = std::io::copy(&mut watched, &mut out) {
        p.kill();
        let _ = p.wait();
        if is_stall(&e) {
            return Err(super::remote_error(what, &e.to_string()));
        }
        return Err(exit::failed(format!("reading rclone's output: {e}")));
    }
    let end = p.wait()?;
    if !end.success() && !is_not_found(&end) {
        // rclone gave up on a silent remote: the run's other reads need not.
        rc.stall.judge(watched.quiet());
    }
    Ok((end, out))
}

/// `rclone lsjson` of `rel` with `flags`; `None` when the folder is missing.
pub fn lsjson(rc: &Rclone, rel: &str, flags: &[&str]) -> Result<Option<Vec<Entry>>> {
    let path = rc.path(rel);
    let mut args = vec!["lsjson", "--no-mimetype"];
    args.extend_from_slice(flags);
    args.push(&path);
    let (end, out) = watched_output(rc, &args, &format!("listing {path}"))?;
    if is_not_found(&end) {
        return Ok(None);
    }
    if !end.success() {
        return Err(failure(rc, &format!("listing {path}"), &end));
    }
    let entries: Vec<Entry> = serde_json::from_slice(&out).map_err(|e| {
        exit::failed(format!(
            "rclone lsjson {path} gave output rcbackup cannot read: {e}"
        ))
    })?;
    Ok(Some(entries))
}

/// The files of folder `rel` whose names end in `suffix`, concatenated.
pub fn cat_folder(rc: &Rclone, rel: &str, suffix: &str) -> Result<Option<Vec<u8>>> {
    let path = rc.path(rel);
    let include = format!("*{suffix}");
    let (end, out) = watched_output(
        rc,
        &[
            "cat",
            "--max-depth",
            "1",
            "--include",
            include.as_str(),
            path.as_str(),
        ],
        &format!("reading {path}"),
    )?;
    if is_not_found(&end) {
        return Ok(None);
    }
    if !end.success() {
        return Err(failure(rc, &format!("reading {path}"), &end));
    }
    Ok(Some(out))
}

/// `rclone rcat` into `rel`, fed through a pipe the caller writes.
pub fn upload(rc: &Rclone, rel: &str) -> Result<Upload> {
    let (read, write) =
        std::io::pipe().map_err(|e| exit::failed(format!("cannot make a pipe: {e}")))?;
    let mut cmd = rc.command(&["rcat", rc.path(rel).as_str()]);
    cmd.stdin(read);
    // `cmd` holds the pipe's read end until it is dropped at the end of
    // this function: from then on a dead rcat makes writes fail at once.
    let p = Proc::spawn("rclone", &mut cmd)?;
    Ok(Upload::by_process(write, p))
}

/// `rclone cat` of `rel`, read by the caller.
pub fn download(rc: &Rclone, rel: &str) -> Result<Download> {
    let path = rc.path(rel);
    rc.stall
        .check()
        .map_err(|said| super::remote_error(&format!("reading {path}"), &said))?;
    let mut cmd = rc.command(&["cat", path.as_str()]);
    cmd.stdout(Stdio::piped());
    let mut p = Proc::spawn("rclone", &mut cmd)?;
    let out = p.take_stdout();
    crate::process::widen_pipe(&out);
    let watched = PipeWatch::new(out, rc.stall.clone(), true);
    Ok(Download::by_process(Box::new(watched), p))
}

pub fn put(rc: &Rclone, rel: &str, bytes: &[u8]) -> Result<()> {
    let path = rc.path(rel);
    let mut cmd = rc.command(&["rcat", path.as_str()]);
    cmd.stdin(Stdio::piped());
    let mut p = Proc::spawn("rclone", &mut cmd)?;
    let mut input = p.take_stdin();
    let wrote = input.write_all(bytes);
    drop(input);
    let end = p.wait()?;
    if !end.success() || wrote.is_err() {
        return Err(failure(rc, &format!("writing {path}"), &end));
    }
    Ok(())
}

/// `moveto --ignore-existing`; whether it moved is asked of a listing, never
/// of rclone's log text, whose wording and level rcbackup does not control.
pub fn move_no_clobber(rc: &Rclone, from: &str, to: &str) -> Result<bool> {
    let (src, dst) = (rc.path(from), rc.path(to));
    let (end, _) = output(
        rc,
        &["moveto", "--ignore-existing", src.as_str(), dst.as_str()],
    )?;
    if !end.success() {
        return Err(failure(rc, &format!("moving {src} to {dst}"), &end));
    }
    Ok(!exists(rc, from)?)
}

/// Whether the file `rel` is there.
pub fn exists(rc: &Rclone, rel: &str) -> Result<bool> {
    let (parent, file) = rel.rsplit_once('/').unwrap_or(("", rel));
    Ok(lsjson(rc, parent, &["--files-only"])?
        .unwrap_or_default()
        .iter()
        .any(|e| e.name == file))
}

pub fn cat(rc: &Rclone, rel: &str) -> Result<Option<Vec<u8>>> {
    let path = rc.path(rel);
    let (end, out) = watched_output(rc, &["cat", path.as_str()], &format!("reading {path}"))?;
    if is_not_found(&end) {
        return Ok(None);
    }
    if !end.success() {
        return Err(failure(rc, &format!("reading {path}"), &end));
    }
    Ok(Some(out))
}

pub fn purge(rc: &Rclone, rel: &str) -> Result<()> {
    let path = rc.path(rel);
    let (end, _) = output(rc, &["purge", path.as_str()])?;
    if end.success() || is_not_found(&end) {
        return Ok(());
    }
    Err(failure(rc, &format!("deleting folder {path}"), &end))
}

pub fn deletefile(rc: &Rclone, rel: &str) -> Result<()> {
    let path = rc.path(rel);
    let (end, _) = output(rc, &["deletefile", path.as_str()])?;
    if end.success() || is_not_found(&end) {
        return Ok(());
    }
    // Some backends report a missing file with a plain failure: ask the
    // listing rather than reading rclone's words.
    if matches!(exists(rc, rel), Ok(false)) {
        return Ok(());
    }
    Err(failure(rc, &format!("deleting {path}"), &end))
}

/// The remotes rclone's config defines, one `name:` a line.
pub fn listremotes(rc: &Rclone) -> Option<Vec<String>> {
    let (end, out) = output(rc, &["listremotes"]).ok()?;
    if !end.success() {
        return None;
    }
    Some(
        String::from_utf8_lossy(&out)
            .lines()
            .map(|l| l.trim().trim_end_matches(':').to_string())
            .filter(|l| !l.is_empty())
            .collect(),
    )
}

/// Runs a transfer (`sync`, `copy`, ...) with rclone's JSON log sent to
/// `each_line`, one line per file acted on. `input`, if any, is fed to
/// rclone's stdin (for `--files-from-raw -`).
pub fn transfer(
    rc: &Rclone,
    args: &[String],
    input: Option<Vec<u8>>,
    each_line: &mut dyn FnMut(&str),
) -> Result<Ended> {
    use std::io::BufRead;
    // The log goes to stdout so that Proc keeps collecting stderr for
    // the error message; rclone writes nothing else there for these.
    let mut cmd = rc.command(args);
    // With progress shown, rclone logs its stats (files and bytes done and
    // due) every second on a terminal, every progress interval otherwise;
    // they feed the progress line. Without, only its final stats line.
    let every = match crate::progress::mode() {
        crate::progress::Mode::Off => None,
        crate::progress::Mode::Bar => Some(Duration::from_secs(1)),
        crate::progress::Mode::Log(every) => Some(every),
    };
    let stats = every.map_or("0".to_string(), |d| format!("{}ms", d.as_millis().max(100)));
    cmd.args([
        "-v",
        "--use-json-log",
        "--stats",
        &stats,
        "--stats-log-level",
        "INFO",
        "--log-file",
        "/dev/stdout",
    ]);
    let meter = every.map(|_| {
        crate::progress::Meter::transfer(format!(
            "media {}",
            args.first().map_or("transfer", String::as_str)
        ))
    });
    cmd.stdout(Stdio::piped());
    if input.is_some() {
        cmd.stdin(Stdio::piped());
    }
    let mut p = Proc::spawn("rclone", &mut cmd)?;
    let feeder = input.map(|bytes| {
        let mut stdin = p.take_stdin();
        std::thread::spawn(move || {
            let _ = stdin.write_all(&bytes);
        })
    });
    let reader = std::io::BufReader::new(p.take_stdout());
    for line in reader.lines() {
        match line {
            Ok(l) => {
                if let Some(m) = &meter {
                    feed_stats(m, &l);
                }
                each_line(&l)
            }
            Err(_) => break,
        }
    }
    drop(meter);
    if let Some(f) = feeder {
        let _ = f.join();
    }
    p.wait()
}

/// rclone's stats line (`{"stats":{"bytes":..,"totalBytes":..,"transfers":..,
/// "totalTransfers":..}}`, the figures of `rclone --progress`) into `meter`.
fn feed_stats(meter: &crate::progress::Meter, line: &str) {
    if !line.contains("\"stats\"") {
        return;
    }
    let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else {
        return;
    };
    let s = &v["stats"];
    let n = |k: &str| s[k].as_u64().unwrap_or(0);
    if s.is_object() {
        meter.transfer_stats(
            n("bytes"),
            n("totalBytes"),
            n("transfers"),
            n("totalTransfers"),
        );
    }
}
