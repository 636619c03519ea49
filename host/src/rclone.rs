//! Every call to the rclone binary goes through here: the remote path
//! rules, `--config` and `rclone_flags`, and how rclone's exit codes are read.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use anyhow::Result;
use chrono::{DateTime, Utc};
use serde::Deserialize;

use crate::config::Settings;
use crate::exit;
use crate::process::{Ended, Proc};

/// rclone's exit codes for "directory not found" and "file not found".
const EXIT_DIR_NOT_FOUND: i32 = 3;
const EXIT_FILE_NOT_FOUND: i32 = 4;

#[derive(Debug, Clone)]
pub struct Rclone {
    pub binary: String,
    pub config: Option<PathBuf>,
    pub flags: Vec<String>,
    pub remote: String,
}

/// One entry of `rclone lsjson`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Entry {
    pub path: String,
    pub name: String,
    pub size: i64,
    pub mod_time: DateTime<Utc>,
    pub is_dir: bool,
}

/// Joins `remote` and a relative path. `name:` is the remote's root, so
/// `name:` + `db` is `name:db` (not `name:/db`, which is the filesystem root
/// on local and SFTP remotes); a trailing slash or none give the same path.
pub fn join(remote: &str, rel: &str) -> String {
    let rel = rel.trim_start_matches('/');
    if rel.is_empty() {
        return remote.to_string();
    }
    if remote.ends_with(':') {
        return format!("{remote}{rel}");
    }
    let base = remote.trim_end_matches('/');
    if base.is_empty() {
        // remote = "/" : the filesystem root, spelled as the user wrote it.
        return format!("/{rel}");
    }
    format!("{base}/{rel}")
}

impl Rclone {
    pub fn from_settings(s: &Settings) -> Rclone {
        Rclone {
            binary: s.rclone_binary.clone(),
            config: s.rclone_config.clone(),
            flags: s.rclone_flags.clone(),
            remote: s.remote.clone(),
        }
    }

    /// The full rclone path of `rel` below the configured remote.
    pub fn path(&self, rel: &str) -> String {
        join(&self.remote, rel)
    }

    /// `rclone <args> [--config F] <rclone_flags>`, stdio null.
    pub fn command<S: AsRef<std::ffi::OsStr>>(&self, args: &[S]) -> Command {
        let mut cmd = Command::new(&self.binary);
        cmd.args(args);
        if let Some(c) = &self.config {
            cmd.arg("--config").arg(c);
        }
        cmd.args(&self.flags);
        cmd.stdin(Stdio::null()).stdout(Stdio::null());
        cmd
    }

    /// Runs rclone to completion, collecting stdout.
    pub fn output<S: AsRef<std::ffi::OsStr>>(&self, args: &[S]) -> Result<(Ended, Vec<u8>)> {
        let mut cmd = self.command(args);
        cmd.stdout(Stdio::piped());
        let mut p = Proc::spawn("rclone", &mut cmd)?;
        let mut out = Vec::new();
        std::io::copy(&mut p.take_stdout(), &mut out)
            .map_err(|e| exit::failed(format!("reading rclone's output: {e}")))?;
        Ok((p.wait()?, out))
    }

    /// Lists the files (not folders) of `rel`, non-recursively. A folder that
    /// does not exist is `None`: no backups yet, not an error.
    pub fn list_files(&self, rel: &str) -> Result<Option<Vec<Entry>>> {
        self.lsjson(rel, &["--files-only"])
    }

    /// Lists the files of `rel` and its subfolders down to `depth` levels;
    /// `Entry::path` is relative to `rel`.
    pub fn list_files_recursive(&self, rel: &str, depth: u32) -> Result<Option<Vec<Entry>>> {
        self.lsjson(
            rel,
            &["--files-only", "-R", "--max-depth", &depth.to_string()],
        )
    }

    /// Every file below `rel`, at any depth; `Entry::path` is relative to `rel`.
    pub fn list_all(&self, rel: &str) -> Result<Option<Vec<Entry>>> {
        self.lsjson(rel, &["--files-only", "-R"])
    }

    fn lsjson(&self, rel: &str, flags: &[&str]) -> Result<Option<Vec<Entry>>> {
        let path = self.path(rel);
        let mut args = vec!["lsjson", "--no-mimetype"];
        args.extend_from_slice(flags);
        args.push(&path);
        let (end, out) = self.output(&args)?;
        if is_not_found(&end) {
            return Ok(None);
        }
        if !end.success() {
            return Err(remote_error(&format!("listing {path}"), &end));
        }
        let entries: Vec<Entry> = serde_json::from_slice(&out).map_err(|e| {
            exit::failed(format!(
                "rclone lsjson {path} gave output rcbackup cannot read: {e}"
            ))
        })?;
        Ok(Some(entries))
    }

    /// The concatenated contents of the files in folder `rel` whose names
    /// match the glob `include`, in no promised order; `None` when the
    /// folder does not exist.
    pub fn cat_folder(&self, rel: &str, include: &str) -> Result<Option<Vec<u8>>> {
        let path = self.path(rel);
        let (end, out) = self.output(&[
            "cat",
            "--max-depth",
            "1",
            "--include",
            include,
            path.as_str(),
        ])?;
        if is_not_found(&end) {
            return Ok(None);
        }
        if !end.success() {
            return Err(remote_error(&format!("reading {path}"), &end));
        }
        Ok(Some(out))
    }

    /// Starts `rclone rcat` writing to `rel`; the caller feeds its stdin.
    pub fn spawn_rcat(&self, rel: &str) -> Result<Proc> {
        let mut cmd = self.command(&["rcat", self.path(rel).as_str()]);
        cmd.stdin(Stdio::piped());
        Proc::spawn("rclone", &mut cmd)
    }

    /// Starts `rclone cat` of `rel`; the caller reads its stdout.
    pub fn spawn_cat(&self, rel: &str) -> Result<Proc> {
        let mut cmd = self.command(&["cat", self.path(rel).as_str()]);
        cmd.stdout(Stdio::piped());
        Proc::spawn("rclone", &mut cmd)
    }

    /// Writes a small object in one go.
    pub fn put(&self, rel: &str, bytes: &[u8]) -> Result<()> {
        let path = self.path(rel);
        let mut p = self.spawn_rcat(rel)?;
        let mut stdin = p.take_stdin();
        let wrote = stdin.write_all(bytes);
        drop(stdin);
        let end = p.wait()?;
        if !end.success() || wrote.is_err() {
            return Err(remote_error(&format!("writing {path}"), &end));
        }
        Ok(())
    }

    /// Moves `from` to `to` unless `to` exists. `Ok(false)`: `to` existed,
    /// nothing moved. rclone's exit code is 0 either way, so the outcome is
    /// read from its debug log, and if that says neither, from whether
    /// `from` is still there.
    pub fn move_no_clobber(&self, from: &str, to: &str) -> Result<bool> {
        let (src, dst) = (self.path(from), self.path(to));
        let (end, _) = self.output(&[
            "moveto",
            "--ignore-existing",
            "--log-level",
            "DEBUG",
            src.as_str(),
            dst.as_str(),
        ])?;
        if !end.success() {
            return Err(remote_error(&format!("moving {src} to {dst}"), &end));
        }
        let log = &end.stderr_tail;
        if log.contains("Destination exists, skipping")
            || log.contains("destination file exists and --ignore-existing is set")
        {
            return Ok(false);
        }
        if log.contains("Moved (server-side)") || log.contains("Copied (") {
            return Ok(true);
        }
        let (parent, file) = from.rsplit_once('/').unwrap_or(("", from));
        let still_there = self
            .list_files(parent)?
            .unwrap_or_default()
            .iter()
            .any(|e| e.name == file);
        Ok(!still_there)
    }

    /// One small file's contents, or `None` when it does not exist.
    pub fn cat(&self, rel: &str) -> Result<Option<Vec<u8>>> {
        let path = self.path(rel);
        let (end, out) = self.output(&["cat", path.as_str()])?;
        if is_not_found(&end) {
            return Ok(None);
        }
        if !end.success() {
            return Err(remote_error(&format!("reading {path}"), &end));
        }
        Ok(Some(out))
    }

    /// Deletes folder `rel` and everything in it; a folder already gone is
    /// not an error.
    pub fn purge(&self, rel: &str) -> Result<()> {
        let path = self.path(rel);
        let (end, _) = self.output(&["purge", path.as_str()])?;
        if end.success() || is_not_found(&end) {
            return Ok(());
        }
        Err(remote_error(&format!("deleting folder {path}"), &end))
    }

    /// Runs a transfer (`sync`, `copy`, ...) with rclone's JSON log sent to
    /// `each_line`, one line per file acted on. `input`, if any, is fed to
    /// rclone's stdin (for `--files-from-raw -`).
    pub fn transfer(
        &self,
        args: &[String],
        input: Option<Vec<u8>>,
        each_line: &mut dyn FnMut(&str),
    ) -> Result<Ended> {
        use std::io::BufRead;
        // The log goes to stdout so that Proc keeps collecting stderr for
        // the error message; rclone writes nothing else there for these.
        let mut cmd = self.command(args);
        cmd.args([
            "-v",
            "--use-json-log",
            "--stats",
            "0",
            "--log-file",
            "/dev/stdout",
        ]);
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
                Ok(l) => each_line(&l),
                Err(_) => break,
            }
        }
        if let Some(f) = feeder {
            let _ = f.join();
        }
        p.wait()
    }

    /// Deletes one file; a file already gone is not an error.
    pub fn deletefile(&self, rel: &str) -> Result<()> {
        let path = self.path(rel);
        let (end, _) = self.output(&["deletefile", path.as_str()])?;
        if end.success() || is_not_found(&end) || end.stderr_tail.contains("not found") {
            return Ok(());
        }
        Err(remote_error(&format!("deleting {path}"), &end))
    }
}

pub fn is_not_found(end: &Ended) -> bool {
    matches!(
        end.code(),
        Some(EXIT_DIR_NOT_FOUND) | Some(EXIT_FILE_NOT_FOUND)
    )
}

/// An rclone failure, with what to check.
pub fn remote_error(what: &str, end: &Ended) -> anyhow::Error {
    exit::failed(format!(
        "{what} failed: {}. Check that the remote is reachable and `remote` in the config is right (try `rclone lsd` on it)",
        end.describe()
    ))
}

#[cfg(test)]
mod tests {
    use super::join;

    #[test]
    fn remote_root_is_not_filesystem_root() {
        assert_eq!(join("backups:", "db/x"), "backups:db/x");
        assert_eq!(join("s3:bucket/app", "db"), "s3:bucket/app/db");
        assert_eq!(join("s3:bucket/app/", "db"), "s3:bucket/app/db");
        assert_eq!(join("/srv/backups/", "db"), "/srv/backups/db");
        assert_eq!(join("/srv/backups", "/db"), "/srv/backups/db");
        assert_eq!(join("/", "db"), "/db");
    }
}
