//! What an rclone sync or copy did, or would do with `--dry-run`, read from
//! its JSON log (`-v --use-json-log`): files copied new, replaced, deleted
//! (with versions: moved into the version folder), and the errors.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use serde_json::Value;

use crate::process::Ended;

/// One file's fate in a transfer.
#[derive(Debug, Default, Clone, Copy)]
struct Seen {
    copied: bool,
    replaced: bool,
    moved: bool,
    deleted: bool,
}

#[derive(Debug, Default)]
pub struct Observer {
    files: BTreeMap<String, Seen>,
    pub errors: Vec<String>,
    pub max_delete_tripped: bool,
}

/// The outcome, each list sorted.
#[derive(Debug, Default, Serialize, PartialEq, Eq)]
pub struct Changes {
    pub copied: Vec<String>,
    pub replaced: Vec<String>,
    pub deleted: Vec<String>,
}

impl Changes {
    /// One line per file on stdout, for `--dry-run`: `new`, `replace` or
    /// `delete`, then the path as rclone names it (control characters are
    /// symbols such as `␊` there; what a terminal would still act on is
    /// escaped, see [`super::names::shown`]).
    pub fn print(&self) -> anyhow::Result<()> {
        for (word, paths) in [
            ("new", &self.copied),
            ("replace", &self.replaced),
            ("delete", &self.deleted),
        ] {
            for p in paths {
                crate::outln!("{word:<8} {}", super::names::shown(p));
            }
        }
        Ok(())
    }
}

impl Observer {
    /// Reads one log line; lines that are not rclone JSON are ignored.
    pub fn line(&mut self, line: &str) {
        let Ok(v) = serde_json::from_str::<Value>(line) else {
            return;
        };
        let msg = v["msg"].as_str().unwrap_or_default();
        // The final stats line carries the cause of a fatal error, which
        // the error lines only call "Fatal error received".
        if let Some(last) = v["stats"]["lastError"].as_str() {
            let last = last.trim();
            if !last.is_empty() && !self.errors.iter().any(|e| e.contains(last)) {
                self.errors.push(last.to_string());
            }
            return;
        }
        if v["level"] == "error" {
            if msg.contains("--max-delete threshold reached") {
                self.max_delete_tripped = true;
            }
            if !msg.contains("Failed to seek log file") && !msg.contains("Fatal error received") {
                let object = v["object"]
                    .as_str()
                    .map(|o| format!("{o}: "))
                    .unwrap_or_default();
                self.errors.push(format!("{object}{}", msg.trim()));
            }
            return;
        }
        let Some(object) = v["object"].as_str() else {
            return;
        };
        let seen = self.files.entry(object.to_string()).or_default();
        match (v["skipped"].as_str(), msg) {
            (Some("copy"), _) | (None, "Copied (new)") => seen.copied = true,
            (None, "Copied (replaced existing)") => seen.replaced = true,
            // With --backup-dir a replaced file is first moved aside, then
            // copied; a deleted one is moved aside and then reported again.
            (Some("move"), _) | (None, "Moved (server-side)") => seen.moved = true,
            (Some("move into backup dir"), _)
            | (Some("delete"), _)
            | (None, "Moved into backup dir")
            | (None, "Deleted") => seen.deleted = true,
            _ => {}
        }
    }

    /// Why rclone failed: its logged errors, then what it printed on stderr
    /// (a fatal error such as "overlapping remotes" appears only there).
    pub fn failure(&self, end: &Ended) -> String {
        let mut why: Vec<String> = self.errors.clone();
        for line in end.stderr_tail.lines().map(str::trim) {
            if !line.is_empty()
                && !line.contains("Failed to seek log file")
                && !why.iter().any(|w| w.contains(line))
            {
                why.push(line.to_string());
            }
        }
        if why.is_empty() {
            super::names::shown(&end.describe())
        } else {
            super::names::shown(&why.join("; "))
        }
    }

    /// `existing`: paths the destination held before, to tell a replaced
    /// file from a new one when rclone's log does not (a dry run without
    /// versions). `known`: the exact names of the files involved (source
    /// and destination), to give back to each name in rclone's JSON log the
    /// invalid UTF-8 bytes that JSON replaced with U+FFFD.
    pub fn finish<'a>(
        self,
        existing: &BTreeSet<String>,
        known: impl IntoIterator<Item = &'a String>,
    ) -> Changes {
        // A set per JSON form: a file on both sides (replaced) is known
        // twice under one name, and is still one file.
        let mut exact: BTreeMap<String, BTreeSet<&String>> = BTreeMap::new();
        for name in known {
            if name.contains('\u{201b}') {
                exact
                    .entry(super::names::json_form(name))
                    .or_default()
                    .insert(name);
            }
        }
        let mut merged: BTreeMap<String, Seen> = BTreeMap::new();
        for (logged, s) in self.files {
            let path = match exact.get(&logged) {
                Some(names) if names.len() == 1 => {
                    names.iter().next().map_or(logged, |n| (*n).clone())
                }
                _ => logged,
            };
            let m = merged.entry(path).or_default();
            m.copied |= s.copied;
            m.replaced |= s.replaced;
            m.moved |= s.moved;
            m.deleted |= s.deleted;
        }
        let mut c = Changes::default();
        for (path, s) in merged {
            if s.deleted {
                c.deleted.push(path);
            } else if s.replaced || (s.copied && (s.moved || existing.contains(&path))) {
                c.replaced.push(path);
            } else if s.copied {
                c.copied.push(path);
            }
        }
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(level: &str, msg: &str, object: &str, skipped: Option<&str>) -> String {
        let mut v = serde_json::json!({"level": level, "msg": msg, "object": object});
        if let Some(s) = skipped {
            v["skipped"] = s.into();
        }
        v.to_string()
    }

    #[test]
    fn real_run_with_versions() {
        let mut o = Observer::default();
        for l in [
            line("info", "Moved (server-side)", "a", None),
            line("info", "Copied (new)", "a", None),
            line("info", "Copied (new)", "z", None),
            line("info", "Moved (server-side)", "n", None),
            line("info", "Moved into backup dir", "n", None),
            "not json".to_string(),
        ] {
            o.line(&l);
        }
        let c = o.finish(&BTreeSet::new(), []);
        assert_eq!(c.copied, vec!["z"]);
        assert_eq!(c.replaced, vec!["a"]);
        assert_eq!(c.deleted, vec!["n"]);
    }

    #[test]
    fn names_json_mangled_get_their_bytes_back() {
        let mut o = Observer::default();
        o.line(&line("info", "Copied (new)", "bad\u{fffd}.txt", None));
        o.line(&line("info", "Copied (new)", "two\u{fffd}", None));
        o.line(&line("info", "Copied (new)", "new\u{240a}line", None));
        let known = [
            "bad\u{201b}FF.txt".to_string(),
            "two\u{201b}FE".to_string(),
            "two\u{201b}FF".to_string(),
        ];
        let c = o.finish(&BTreeSet::new(), &known);
        // Two names JSON cannot tell apart stay as rclone logged them.
        assert_eq!(
            c.copied,
            vec!["bad\u{201b}FF.txt", "new\u{240a}line", "two\u{fffd}"]
        );
    }

    #[test]
    fn dry_run_without_versions_and_errors() {
        let mut o = Observer::default();
        o.line(&line(
            "warning",
            "Skipped copy as --dry-run is set (size 3)",
            "a",
            Some("copy"),
        ));
        o.line(&line(
            "warning",
            "Skipped copy as --dry-run is set (size 3)",
            "b",
            Some("copy"),
        ));
        o.line(&line(
            "warning",
            "Skipped delete as --dry-run is set (size 3)",
            "c",
            Some("delete"),
        ));
        o.line(&serde_json::json!({"level": "error", "msg": "Got fatal error on delete: --max-delete threshold reached"}).to_string());
        assert!(o.max_delete_tripped);
        o.line(&serde_json::json!({"level": "error", "msg": "Fatal error received - not attempting retries"}).to_string());
        o.line(&serde_json::json!({"level": "info", "msg": "stats", "stats": {"lastError": "can't sync or move files on overlapping remotes"}}).to_string());
        assert_eq!(o.errors.len(), 2, "{:?}", o.errors);
        assert!(o.errors[1].contains("overlapping"));
        let c = o.finish(&BTreeSet::from(["a".to_string(), "c".to_string()]), []);
        assert_eq!(
            (c.copied, c.replaced, c.deleted),
            (vec!["b".into()], vec!["a".into()], vec!["c".into()])
        );
    }
    /// A replaced file whose name holds a byte that is not UTF-8 is known
    /// on both sides under the same exact name: its logged (U+FFFD) form
    /// goes back to that one name, so it is told replaced, not new.
    #[test]
    fn a_replaced_non_utf8_name_gets_its_exact_name_back() {
        let mut o = Observer::default();
        let exact = "caf\u{201b}E9.txt".to_string();
        o.line(&line(
            "warning",
            "Skipped copy as --dry-run is set (size 8)",
            "caf\u{FFFD}.txt",
            Some("copy"),
        ));
        let existing = BTreeSet::from([exact.clone()]);
        let c = o.finish(&existing, [&exact, &exact]);
        assert_eq!(c.replaced, vec![exact]);
        assert!(c.copied.is_empty());
    }
}
