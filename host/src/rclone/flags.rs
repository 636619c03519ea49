//! What `rclone_flags` and `remote` may hold: flags rcbackup owns are
//! refused with the reason, and secrets never reach a command line or a log.

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
        if name == "--rc" || name.starts_with("--rc-") {
            return Err(format!(
                "`{flag}` cannot be used: rcbackup runs rclone's remote-control server itself, on 127.0.0.1 with a user and password made for each run, and an rc flag would change where it listens or who may use it. Remove it"
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
            (Some(_), c) => options.last_mut().expect("one at least").push(c),
            (None, '\'' | '"') => quote = Some(c),
            (None, ':') => break,
            (None, ',') => options.push(String::new()),
            (None, c) => options.last_mut().expect("one at least").push(c),
        }
    }
    for option in options.iter().skip(1) {
        let (name, value) = option.split_once('=').unwrap_or((option, ""));
        let name = name.trim();
        // Headers carry Authorization, cookies, API keys; a URL may carry
        // a user and password (`http://u:p@h`) or a token in its query.
        let url_credentials = value.split_once("://").is_some_and(|(_, rest)| {
            let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
            authority.contains('@') || rest.contains('?')
        });
        if names_secret(name) || name.eq_ignore_ascii_case("headers") || url_credentials {
            return Err(format!(
                "is a connection string whose option `{name}` holds a secret (not shown); the remote is printed in logs, errors and `listbackups --json` and goes on rclone's command line. \
                 Define the remote in rclone's config file (`rclone config`, which obscures it) or with RCLONE_CONFIG_<REMOTE>_<OPTION> variables, and name it here, e.g. remote = \"backups:app\""
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{check_flags, check_remote};

    /// Issue 8, item 5: the flags rcbackup owns are refused, in every
    /// spelling, and ones that only tune rclone are taken.
    #[test]
    fn secrets_in_a_connection_string_remote_are_refused_unshown() {
        for r in [
            ":webdav,url='http://127.0.0.1:1',user=hx,pass=Zq9Obscured:cs",
            "dav,pass=Zq9Obscured:cs",
            ":s3,secret_access_key=Zq9Obscured:b",
            ":crypt,remote='x:',password=Zq9Obscured:",
            // Outside review (issue 10, round 3): credentials rclone takes
            // in other options.
            ":webdav,url=\"http://bob:Zq9Obscured@127.0.0.1:1/\":c1",
            ":webdav,url=\"http://127.0.0.1:1/?token=Zq9Obscured\":c2",
            ":webdav,headers=\"Authorization,Bearer Zq9Obscured\":c4",
            ":http,url='http://127.0.0.1:1/',headers='X-Api-Key,Zq9Obscured':c5",
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
            (v(&["--rc-no-auth"]), "remote-control server"),
            (v(&["--rc-addr", "0.0.0.0:5572"]), "remote-control server"),
            (v(&["--rc"]), "remote-control server"),
            (v(&["--rc-user=x"]), "remote-control server"),
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
}
