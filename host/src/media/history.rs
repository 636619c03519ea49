//! The past of the media folder: which backups exist, what each one's
//! mirror held (its file list), and how to rebuild the folder as a past
//! backup left it from the mirror and the version folders.
//!
//! Why this works: a backup with versions moves every file it would
//! overwrite or delete into its own version folder before changing it. So
//! the copy that backup B left of a file `f` stays in the mirror until the
//! next backup that touches `f`, which moves it into *its* version folder.
//! Hence B's copy of `f` is in the oldest version folder stamped after B that
//! holds `f`, or, if no later backup touched `f`, still in the mirror. B's
//! file list says which files B had, so files created after B (present in
//! the mirror, absent from B's list) are left out.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::stamp;
use crate::rclone::Entry;

/// `<stamp>.files.json`: the mirror's files after a successful backup.
pub const FILE_LIST_SUFFIX: &str = ".files.json";
/// `<stamp>.unversioned`: a backup ran without versions; nothing before
/// it can be rebuilt.
pub const UNVERSIONED_SUFFIX: &str = ".unversioned";

/// One file of a backup's file list.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct FileState {
    pub path: String,
    pub size: i64,
    pub mod_time: DateTime<Utc>,
}

/// What `<stamp>.files.json` holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FileList {
    pub stamp: String,
    pub files: Vec<FileState>,
}

/// Everything in the versions folder, from one recursive listing.
#[derive(Debug, Default)]
pub struct History {
    /// Stamps of backups that completed and wrote their file list, oldest first.
    pub backups: Vec<String>,
    /// Stamps of backups that ran without versions.
    pub unversioned: Vec<String>,
    /// Version folders: stamp -> path in it -> size.
    pub folders: BTreeMap<String, BTreeMap<String, i64>>,
}

impl History {
    /// From `rclone lsjson -R --files-only` of the versions folder.
    pub fn from_listing(entries: &[Entry]) -> History {
        let mut h = History::default();
        for e in entries {
            match e.path.split_once('/') {
                Some((stamp, rest)) if stamp::parse(stamp).is_some() => {
                    h.folders
                        .entry(stamp.to_string())
                        .or_default()
                        .insert(rest.to_string(), e.size);
                }
                Some(_) => {}
                None => {
                    if let Some(s) = e.path.strip_suffix(FILE_LIST_SUFFIX) {
                        if stamp::parse(s).is_some() {
                            h.backups.push(s.to_string());
                        }
                    } else if let Some(s) = e.path.strip_suffix(UNVERSIONED_SUFFIX) {
                        h.unversioned.push(s.to_string());
                    }
                }
            }
        }
        h.backups.sort();
        h.unversioned.sort();
        h
    }

    /// The backups that `--at` can restore: those after which every backup
    /// kept versions.
    pub fn restorable(&self) -> &[String] {
        let first = match self.unversioned.last() {
            Some(u) => self.backups.partition_point(|b| b < u),
            None => 0,
        };
        &self.backups[first..]
    }

    /// The backup that holds the state at `at`: the newest restorable
    /// one stamped at or before it.
    pub fn backup_at(&self, at: DateTime<Utc>) -> Result<&str, String> {
        let restorable = self.restorable();
        let at_stamp = stamp::format(at);
        match restorable.iter().rev().find(|b| **b <= at_stamp) {
            Some(b) => Ok(b),
            None => {
                let why = match self.unversioned.last() {
                    Some(u) => format!(
                        "the backup of {u} ran with media_versions = false, so no earlier state can be rebuilt"
                    ),
                    None => "no media backup had been made by then (or its versions were pruned by media_versions_keep)".to_string(),
                };
                let oldest = restorable
                    .first()
                    .map(|b| format!("the oldest restorable backup is {b}"))
                    .unwrap_or_else(|| {
                        "there is no restorable backup; run mediabackup first".into()
                    });
                Err(format!("{why}; {oldest}"))
            }
        }
    }
}

/// Where each file of a past backup is to be fetched from.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Rebuild {
    /// Version folder stamp (`None`: the mirror) -> files to take from it.
    pub sources: BTreeMap<Option<String>, Vec<String>>,
    pub files: BTreeSet<String>,
}

/// Plans rebuilding backup `list.stamp`. `mirror` holds the mirror's
/// files and sizes. Fails when a file cannot be found with the size the
/// list recorded: the history is damaged and the result would be wrong.
pub fn rebuild(
    list: &FileList,
    history: &History,
    mirror: &BTreeMap<String, i64>,
) -> Result<Rebuild, String> {
    let later: Vec<(&String, &BTreeMap<String, i64>)> = history
        .folders
        .iter()
        .filter(|(s, _)| s.as_str() > list.stamp.as_str())
        .collect();
    let mut plan = Rebuild::default();
    for f in &list.files {
        let found = later
            .iter()
            .find_map(|(s, files)| files.get(&f.path).map(|size| (Some((*s).clone()), *size)))
            .or_else(|| mirror.get(&f.path).map(|size| (None, *size)));
        match found {
            Some((source, size)) if size == f.size => {
                plan.sources.entry(source).or_default().push(f.path.clone());
                plan.files.insert(f.path.clone());
            }
            Some((source, size)) => {
                return Err(format!(
                    "`{}` of the backup of {} should be {} bytes, but the copy in {} is {size}",
                    f.path,
                    list.stamp,
                    f.size,
                    source
                        .map(|s| format!("version folder {s}"))
                        .unwrap_or_else(|| "the mirror".into())
                ))
            }
            None => {
                return Err(format!(
                "`{}` of the backup of {} is neither in a later version folder nor in the mirror",
                f.path, list.stamp
            ))
            }
        }
    }
    Ok(plan)
}

/// What pruning removes so that backups from `oldest_kept` on stay
/// restorable: older file lists and markers, and version folders stamped at
/// or before it (rebuilding a backup reads only later version folders).
pub fn prune_plan(history: &History, oldest_kept: &str) -> (Vec<String>, Vec<String>) {
    let mut files = Vec::new();
    for b in history.backups.iter().filter(|b| b.as_str() < oldest_kept) {
        files.push(format!("{b}{FILE_LIST_SUFFIX}"));
    }
    // A marker stamped like the oldest kept backup is that backup's own:
    // kept, so that --at before it can say why it cannot go further back.
    for u in history
        .unversioned
        .iter()
        .filter(|u| u.as_str() < oldest_kept)
    {
        files.push(format!("{u}{UNVERSIONED_SUFFIX}"));
    }
    let folders = history
        .folders
        .keys()
        .filter(|s| s.as_str() <= oldest_kept)
        .cloned()
        .collect();
    (files, folders)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn t(n: u32) -> String {
        stamp::format(Utc.with_ymd_and_hms(2026, 1, n, 0, 0, 0).unwrap())
    }

    fn entry(path: String, size: i64) -> Entry {
        Entry {
            path: path.clone(),
            name: path,
            size,
            mod_time: Utc::now(),
            is_dir: false,
        }
    }

    fn list(stamp: String, files: &[(&str, i64)]) -> FileList {
        FileList {
            stamp,
            files: files
                .iter()
                .map(|(p, s)| FileState {
                    path: p.to_string(),
                    size: *s,
                    mod_time: Utc::now(),
                })
                .collect(),
        }
    }

    /// Backups 1, 2, 3: `a` 1 byte, changed to 2 bytes at 2, deleted at 3;
    /// `b` created at 2; `c` 5 bytes throughout.
    fn history() -> History {
        History::from_listing(&[
            entry(format!("{}{FILE_LIST_SUFFIX}", t(1)), 9),
            entry(format!("{}{FILE_LIST_SUFFIX}", t(2)), 9),
            entry(format!("{}{FILE_LIST_SUFFIX}", t(3)), 9),
            entry(format!("{}/a", t(2)), 1),
            entry(format!("{}/a", t(3)), 2),
        ])
    }

    #[test]
    fn rebuilds_each_backup() {
        let h = history();
        let mirror = BTreeMap::from([("b".to_string(), 3), ("c".to_string(), 5)]);
        let one = rebuild(&list(t(1), &[("a", 1), ("c", 5)]), &h, &mirror).unwrap();
        assert_eq!(one.sources[&Some(t(2))], vec!["a"]);
        assert_eq!(one.sources[&None], vec!["c"]);
        assert!(!one.files.contains("b"));
        let two = rebuild(&list(t(2), &[("a", 2), ("b", 3), ("c", 5)]), &h, &mirror).unwrap();
        assert_eq!(two.sources[&Some(t(3))], vec!["a"]);
        assert_eq!(two.sources[&None], vec!["b", "c"]);
        let bad = rebuild(&list(t(1), &[("a", 7)]), &h, &mirror).unwrap_err();
        assert!(bad.contains("7 bytes"), "{bad}");
    }

    #[test]
    fn choice_of_backup_and_unversioned_break() {
        let mut h = history();
        let noon = |d| Utc.with_ymd_and_hms(2026, 1, d, 12, 0, 0).unwrap();
        assert_eq!(h.backup_at(noon(2)).unwrap(), t(2));
        assert_eq!(
            h.backup_at(Utc.with_ymd_and_hms(2026, 1, 3, 0, 0, 0).unwrap())
                .unwrap(),
            t(3)
        );
        assert!(h
            .backup_at(Utc.with_ymd_and_hms(2025, 1, 1, 0, 0, 0).unwrap())
            .is_err());
        h.unversioned.push(stamp::format(noon(2)));
        assert_eq!(h.restorable(), &[t(3)]);
        let e = h.backup_at(noon(2)).unwrap_err();
        assert!(e.contains("media_versions = false"), "{e}");
    }

    #[test]
    fn prune_keeps_what_later_backups_need() {
        let h = history();
        let (files, folders) = prune_plan(&h, &t(2));
        assert_eq!(files, vec![format!("{}{FILE_LIST_SUFFIX}", t(1))]);
        assert_eq!(folders, vec![t(2)]);
        // A backup made without versions: its own marker stays with it.
        let mut h = history();
        h.unversioned = vec![t(1), t(3)];
        let (files, _) = prune_plan(&h, &t(3));
        assert!(files.contains(&format!("{}{UNVERSIONED_SUFFIX}", t(1))));
        assert!(!files.contains(&format!("{}{UNVERSIONED_SUFFIX}", t(3))));
    }
}
