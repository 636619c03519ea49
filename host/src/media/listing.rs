//! Listing a media folder on the remote with every name exact.
//!
//! `rclone lsjson` cannot do it: Go's JSON encoder turns each invalid UTF-8
//! byte of a name into U+FFFD, so two names can list alike and neither can
//! be handed back to rclone. `rclone lsf` prints rclone's names as they are
//! (in its standard encoding, which holds no control character, so one
//! name a line is safe); rcbackup turns each into its text form
//! ([`super::names`]).

use std::io::Read;
use std::process::Stdio;

use anyhow::Result;
use chrono::{NaiveDateTime, TimeZone, Utc};

use super::names;
use crate::exit;
use crate::process::Proc;
use crate::rclone::{is_not_found, Entry, Rclone};

/// Every file below `rel`, at any depth, `Entry::path` relative to `rel` in
/// rcbackup's text form. A folder that does not exist is `None`.
pub fn list_all(rclone: &Rclone, rel: &str) -> Result<Option<Vec<Entry>>> {
    let path = rclone.path(rel);
    let mut cmd = rclone.command(&[
        "lsf",
        "-R",
        "--files-only",
        "--format",
        "stp",
        "--separator",
        ";",
        path.as_str(),
    ]);
    // lsf prints times in the local zone, to the second.
    cmd.env("TZ", "UTC").stdout(Stdio::piped());
    let mut p = Proc::spawn("rclone", &mut cmd)?;
    let mut out = Vec::new();
    p.take_stdout()
        .read_to_end(&mut out)
        .map_err(|e| exit::failed(format!("reading rclone's output: {e}")))?;
    let end = p.wait()?;
    if is_not_found(&end) {
        return Ok(None);
    }
    if !end.success() {
        return Err(rclone.failure(&format!("listing {path}"), &end));
    }
    let mut entries = Vec::new();
    for line in out.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
        let entry = parse(line).ok_or_else(|| {
            exit::failed(format!(
                "rclone lsf {path} printed a line rcbackup cannot read: {}",
                names::shown(&String::from_utf8_lossy(line))
            ))
        })?;
        entries.push(entry);
    }
    Ok(Some(entries))
}

/// `size;YYYY-MM-DD hh:mm:ss;path` (the path last: it may hold `;`).
fn parse(line: &[u8]) -> Option<Entry> {
    let mut parts = line.splitn(3, |b| *b == b';');
    let size: i64 = std::str::from_utf8(parts.next()?).ok()?.parse().ok()?;
    let time = std::str::from_utf8(parts.next()?).ok()?;
    let time = NaiveDateTime::parse_from_str(time, "%Y-%m-%d %H:%M:%S").ok()?;
    let path = names::to_text(parts.next()?);
    if path.is_empty() {
        return None;
    }
    let name = path.rsplit('/').next().unwrap_or(&path).to_string();
    Some(Entry {
        path,
        name,
        size,
        mod_time: Utc.from_utc_datetime(&time),
        is_dir: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_lsf_lines() {
        let e = parse(b"12;2026-11-27 23:55:53;sub/a;b\xff.txt").unwrap();
        assert_eq!(e.path, "sub/a;b\u{201b}FF.txt");
        assert_eq!(e.name, "a;b\u{201b}FF.txt");
        assert_eq!(e.size, 12);
        assert_eq!(e.mod_time.to_rfc3339(), "2026-11-27T23:55:53+00:00");
        assert!(parse(b"x;2026-11-27 23:55:53;a").is_none());
        assert!(parse(b"1;2026-11-27 23:55:53;").is_none());
    }
}
