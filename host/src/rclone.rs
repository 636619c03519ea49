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

/// Flags rcbackup sets itself, or whose effect breaks what it relies on,
/// with the reason given when `rclone_flags` holds one of them.
const OWNED_FLAGS: &[(&[&str], &str)] = &[
    (
        &[
            "-v", "--verbose", "-q", "--quiet", "--log-level", "--log-file", "--use-json-log",
            "--log-format", "--syslog", "--syslog-facility", "--log-systemd", "--stats-log-level",
        ],
        "rcbackup sets rclone's log level and log destination itself (a media transfer reports its files in rclone's JSON log, and rclone's stderr becomes rcbackup's error message); a second setting breaks those or makes rclone refuse to start (\"Can't set -v and --log-level\"). For more or less output use rcbackup's own -v / -q or RCBACKUP_LOG",
    ),
    (&["--config"], "use the `rclone_config` key instead"),
    (
        &["-n", "--dry-run", "-i", "--interactive"],
        "it would make every upload, move and delete a no-op or a question, so backups would look made and be missing. Use rcbackup's own --dry-run",
    ),
    (
        &["-P", "--progress"],
        "it writes to standard output, which carries rclone's listings and the backup's data on restore",
    ),
    (&["--max-delete"], "use the `media_max_delete` key instead"),
    (
        &["--backup-dir", "--suffix", "--suffix-keep-extension", "--compare-dest", "--copy-dest"],
        "rcbackup keeps what a media backup replaces in its own version folders; use `media_versions`",
    ),
    (
        &[
            "--include", "--exclude", "--filter", "--include-from", "--exclude-from",
            "--filter-from", "--files-from", "--files-from-raw", "--min-size", "--max-size",
            "--min-age", "--max-age", "--exclude-if-present", "--max-depth", "--delete-excluded",
        ],
        "rclone applies a filter to every call, also to the listings of backups and integrity records, so backups would be hidden from listbackups, retention and restore",
    ),
    (
        &[
            "--dump", "--dump-headers", "--dump-bodies", "--dump-auth", "--dump-requests",
            "--dump-responses",
        ],
        "it writes HTTP headers (with the remote's credentials) and bodies (the backup's rows) into rclone's log, which rcbackup shows in its log and errors",
    ),
    (
        &["--error-on-no-transfer"],
        "it makes rclone exit 9 when nothing changed, which rcbackup would take for a failed media backup",
    ),
];

/// Checks `rclone_flags`: every flag rcbackup owns is refused with the
/// reason, and so is a flag written with its value in one item.
pub fn check_flags(flags: &[String]) -> Result<(), String> {
    if let Some(first) = flags.first() {
        if !first.starts_with('-') {
            return Err(format!(
                "starts with `{first}`, which is not a flag; write flags and their values as separate items, e.g. rclone_flags = [\"--retries\", \"1\"]"
            ));
        }
    }
    for flag in flags {
        if flag.trim().is_empty() {
            return Err("holds an empty item, which rclone takes for a path; remove it".into());
        }
        let Some(body) = flag.strip_prefix('-') else {
            continue; // the value of the flag before it
        };
        let name = flag.split('=').next().unwrap_or(flag);
        if name.contains(char::is_whitespace) {
            return Err(format!(
                "`{flag}` holds a space; write a flag and its value as two items, e.g. [\"--retries\", \"1\"], or as `--retries=1`"
            ));
        }
        let names: Vec<String> = if body.starts_with('-') {
            vec![name.to_string()]
        } else {
            // `-vP`: a cluster of one-letter flags.
            name[1..].chars().map(|c| format!("-{c}")).collect()
        };
        if body.starts_with('-') && names_secret(&name[2..]) {
            return Err(format!(
                "`{name}` would put a secret on rclone's command line, where every user of the machine can read it (`ps`), and into rcbackup's -v log. \
                 Put it in rclone's config file (`rclone config`, which obscures it) or in the environment (RCLONE_<FLAG> or RCLONE_CONFIG_<REMOTE>_<OPTION>), and remove it from rclone_flags"
            ));
        }
        for n in &names {
            if let Some((_, why)) = OWNED_FLAGS
                .iter()
                .find(|(owned, _)| owned.contains(&n.as_str()))
            {
                return Err(format!("`{flag}` cannot be used: {why}. Remove it"));
            }
        }
    }
    Ok(())
}

/// Whether an rclone option (a backend flag without its `--`, such as
/// `crypt-password` or `s3-secret-access-key`, or a connection-string option
/// such as `pass`) holds a secret: rclone's own names for passwords, keys,
/// tokens and credentials.
pub fn names_secret(option: &str) -> bool {
    let option = option.to_ascii_lowercase().replace('_', "-");
    let last = option.rsplit('-').next().unwrap_or(&option);
    matches!(
        last,
        "pass" | "password" | "password2" | "secret" | "token" | "key" | "pem" | "passphrase"
    ) || ["secret", "credentials", "sas-url", "bearer", "api-key"]
        .iter()
        .any(|s| option.contains(s))
}

/// Refuses a `remote` whose connection string carries a secret
/// (`:webdav,url=...,pass=...:path`): the remote is shown in logs, errors and
/// `listbackups --json`, and goes on rclone's command line.
pub fn check_remote(remote: &str) -> Result<(), String> {
    // The remote's spec runs to the first `:` outside quotes; its options
    // follow commas, and a value may be quoted with ' or " (rclone's
    // connection-string syntax: `:webdav,url='http://h:1',pass=x:path`).
    let body = remote.strip_prefix(':').unwrap_or(remote);
    let mut options = vec![String::new()];
    let mut quote = None;
    for c in body.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '\'' | '"') => quote = Some(c),
            (None, ':') => break,
            (None, ',') => options.push(String::new()),
            (None, c) => options.last_mut().expect("one at least").push(c),
        }
    }
    for option in options.iter().skip(1) {
        let name = option.split('=').next().unwrap_or_default().trim();
        if names_secret(name) {
            return Err(format!(
                "is a connection string whose option `{name}` holds a secret (not shown); the remote is printed in logs, errors and `listbackups --json` and goes on rclone's command line. \
                 Define the remote in rclone's config file (`rclone config`, which obscures it) or with RCLONE_CONFIG_<REMOTE>_<OPTION> variables, and name it here, e.g. remote = \"backups:app\""
            ));
        }
    }
    Ok(())
}

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
            return Err(self.failure(&format!("listing {path}"), &end));
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
            return Err(self.failure(&format!("reading {path}"), &end));
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
            return Err(self.failure(&format!("writing {path}"), &end));
        }
        Ok(())
    }

    /// Moves `from` to `to` unless `to` exists. `Ok(false)`: `to` existed,
    /// nothing moved. rclone's exit code is 0 either way, so the outcome is
    /// read from whether `from` is still there (a listing, never rclone's
    /// log text, whose wording and level rcbackup does not control).
    pub fn move_no_clobber(&self, from: &str, to: &str) -> Result<bool> {
        let (src, dst) = (self.path(from), self.path(to));
        let (end, _) = self.output(&["moveto", "--ignore-existing", src.as_str(), dst.as_str()])?;
        if !end.success() {
            return Err(self.failure(&format!("moving {src} to {dst}"), &end));
        }
        Ok(!self.exists(from)?)
    }

    /// Whether the file `rel` is there.
    fn exists(&self, rel: &str) -> Result<bool> {
        let (parent, file) = rel.rsplit_once('/').unwrap_or(("", rel));
        Ok(self
            .list_files(parent)?
            .unwrap_or_default()
            .iter()
            .any(|e| e.name == file))
    }

    /// One small file's contents, or `None` when it does not exist.
    pub fn cat(&self, rel: &str) -> Result<Option<Vec<u8>>> {
        let path = self.path(rel);
        let (end, out) = self.output(&["cat", path.as_str()])?;
        if is_not_found(&end) {
            return Ok(None);
        }
        if !end.success() {
            return Err(self.failure(&format!("reading {path}"), &end));
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
        Err(self.failure(&format!("deleting folder {path}"), &end))
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
        if end.success() || is_not_found(&end) {
            return Ok(());
        }
        // Some backends report a missing file with a plain failure: ask
        // the listing rather than reading rclone's words.
        if matches!(self.exists(rel), Ok(false)) {
            return Ok(());
        }
        Err(self.failure(&format!("deleting {path}"), &end))
    }
}

impl Rclone {
    /// An rclone failure, as [`remote_error`] words it, unless the cause is
    /// a remote that rclone's config does not define: that one is named
    /// first, with the fix.
    pub fn failure(&self, what: &str, end: &Ended) -> anyhow::Error {
        self.missing_remote()
            .unwrap_or_else(|| remote_error(what, end))
    }

    /// `Some(error)` when `remote` names a remote that rclone's config
    /// lacks (asked with `rclone listremotes`, which also lists remotes
    /// defined by RCLONE_CONFIG_* variables). Called only after a failure,
    /// so a run that works pays nothing for it.
    pub fn missing_remote(&self) -> Option<anyhow::Error> {
        let name = remote_name(&self.remote)?;
        let (end, out) = self.output(&["listremotes"]).ok()?;
        if !end.success() {
            return None;
        }
        let listed = String::from_utf8_lossy(&out);
        if listed
            .lines()
            .any(|l| l.trim().strip_suffix(':') == Some(name))
        {
            return None;
        }
        let file = match &self.config {
            Some(c) => format!("rclone's config file {} (`rclone_config`)", c.display()),
            None => "rclone's default config file (`rclone config file` shows which; set `rclone_config` to use another)".to_string(),
        };
        let known: Vec<&str> = listed
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect();
        let known = if known.is_empty() {
            "it defines no remotes".to_string()
        } else {
            format!("it defines {}", known.join(" "))
        };
        Some(exit::usage(format!(
            "the remote `{name}` (from `remote = \"{}\"`) is not defined in {file}; {known}. \
             Define it with `rclone config{}` (or RCLONE_CONFIG_{}_TYPE and the like in the environment), or fix `remote` in rcbackup's config",
            self.remote,
            self.config
                .as_ref()
                .map(|c| format!(" --config {}", c.display()))
                .unwrap_or_default(),
            name.to_uppercase().replace(['-', '.', ' '], "_")
        )))
    }
}

/// The configured remote's name in `name:path` (also `name,opt=v:path`);
/// `None` for a local path or an on-the-fly `:backend:` remote.
fn remote_name(remote: &str) -> Option<&str> {
    let (head, _) = remote.split_once(':')?;
    if head.contains(['/', '\\']) {
        return None;
    }
    let name = head.split(',').next()?;
    (!name.is_empty()).then_some(name)
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
    use super::{check_flags, check_remote, join, remote_name};

    #[test]
    fn remote_names() {
        assert_eq!(remote_name("backups:"), Some("backups"));
        assert_eq!(remote_name("s3:bucket/app"), Some("s3"));
        assert_eq!(remote_name("s3,region=eu:bucket"), Some("s3"));
        assert_eq!(remote_name(":local:/srv"), None);
        assert_eq!(remote_name("/srv/backups"), None);
        assert_eq!(remote_name("./rel/a:b"), None);
    }

    /// Issue 8, item 5: the flags rcbackup owns are refused, in every
    /// spelling, and ones that only tune rclone are taken.
    #[test]
    fn secrets_in_a_connection_string_remote_are_refused_unshown() {
        for r in [
            ":webdav,url='http://127.0.0.1:1',user=hx,pass=Zq9Obscured:cs",
            "dav,pass=Zq9Obscured:cs",
            ":s3,secret_access_key=Zq9Obscured:b",
            ":crypt,remote='x:',password=Zq9Obscured:",
        ] {
            let e = check_remote(r).unwrap_err();
            assert!(e.contains("secret") && !e.contains("Zq9"), "{r}: {e}");
        }
        for r in [
            "backups:",
            "s3:bucket/app",
            "/srv/b",
            ":local:/srv/b",
            "dav,user=hx:cs",
            "rel/dir",
        ] {
            check_remote(r).unwrap();
        }
    }

    #[test]
    fn owned_flags_are_refused_with_the_reason() {
        let v = |f: &[&str]| f.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        for (flags, why) in [
            (v(&["-v"]), "log level"),
            (v(&["-vv"]), "log level"),
            (v(&["--checksum", "-qP"]), "log level"),
            (v(&["--verbose=2"]), "log level"),
            (v(&["--log-level", "INFO"]), "log level"),
            (v(&["--log-level=DEBUG"]), "log level"),
            (v(&["--log-file", "/tmp/x"]), "log level"),
            (v(&["--use-json-log"]), "log level"),
            (v(&["--config", "x"]), "rclone_config"),
            (v(&["--dry-run"]), "no-op"),
            (v(&["-n"]), "no-op"),
            (v(&["-P"]), "standard output"),
            (v(&["--max-delete", "3"]), "media_max_delete"),
            (v(&["--backup-dir=x:y"]), "media_versions"),
            (v(&["--exclude", "*.tmp"]), "hidden"),
            (v(&["--max-age", "1d"]), "hidden"),
            (v(&["--error-on-no-transfer"]), "exit 9"),
            (v(&["--retries 1"]), "two items"),
            (v(&["retries", "1"]), "not a flag"),
            (v(&["--dump", "auth"]), "credentials"),
            (v(&["--dump-bodies"]), "credentials"),
            (v(&["--fast-list", ""]), "empty item"),
            (v(&["--crypt-password", "x"]), "secret"),
            (v(&["--s3-secret-access-key=x"]), "secret"),
            (v(&["--webdav-pass", "x"]), "secret"),
            (v(&["--sftp-key-pem", "x"]), "secret"),
            (v(&["--azureblob-key=x"]), "secret"),
            (v(&["--drive-service-account-credentials", "{}"]), "secret"),
            (v(&["--webdav-bearer-token", "x"]), "secret"),
        ] {
            let got = check_flags(&flags).unwrap_err();
            assert!(got.contains(why), "{flags:?}: {got}");
        }
        for ok in [
            v(&[]),
            v(&[
                "--sftp-key-file",
                "/k",
                "--s3-sse-kms-key-id",
                "x",
                "--drive-keep-revision-forever",
            ]),
            v(&["--retries", "1"]),
            v(&["--low-level-retries=2", "--checksum", "-c"]),
            v(&["--transfers", "4", "--bwlimit", "10M", "--fast-list"]),
            v(&["--s3-upload-cutoff", "0"]),
        ] {
            check_flags(&ok).unwrap_or_else(|e| panic!("{ok:?}: {e}"));
        }
    }

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
