//! The backup folder on the remote, and what counts as a backup in it.
//!
//! ```text
//! <remote>/<db_backup_dir>/
//!     <name>                          data objects (the dumps)
//!     .rcbackup/records/<name>.json   integrity records, one JSON line each
//!     .rcbackup/partial/<name>.<run>  uploads in progress or abandoned
//! ```
//!
//! A backup is listed only when its record and its data object both exist
//! and agree on the size. Uploads go to `partial/` and are moved into place
//! (never over an existing object) only after the dump and the upload both
//! succeeded, and the record is written after that; deletion removes the
//! data object before the record. Every state an interrupted run can leave
//! is therefore either a whole backup or something no listing, retention or
//! restore ever sees.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use anyhow::Result;
use chrono::{DateTime, Utc};

use crate::rclone::Rclone;
use crate::record::BackupRecord;
use crate::retention::sort_newest_first;

const META: &str = ".rcbackup";
/// How many `-N` names publishing tries before giving up.
const MAX_CLAIMS: usize = 50;

pub struct Catalog<'a> {
    rclone: &'a Rclone,
    dir: String,
}

/// What one look at the backup folder found.
#[derive(Debug, Default)]
pub struct Listing {
    /// Complete backups, newest first.
    pub backups: Vec<BackupRecord>,
    /// Every name in use by a data object or a record, complete or not.
    pub taken: BTreeSet<String>,
    /// Names of the data objects in the folder.
    pub data: BTreeSet<String>,
}

impl Listing {
    /// The complete backups of one database (exact alias), newest first.
    pub fn series(&self, database: &str) -> Vec<BackupRecord> {
        self.backups
            .iter()
            .filter(|b| b.database == database)
            .cloned()
            .collect()
    }

    pub fn find(&self, name: &str) -> Option<&BackupRecord> {
        self.backups.iter().find(|b| b.name == name)
    }
}

/// Something an interrupted run left behind.
#[derive(Debug, Clone)]
pub struct Leftover {
    /// Path relative to the remote.
    pub path: String,
    pub last_seen: DateTime<Utc>,
}

impl<'a> Catalog<'a> {
    pub fn new(rclone: &'a Rclone, dir: &str) -> Catalog<'a> {
        Catalog {
            rclone,
            dir: dir.to_string(),
        }
    }

    pub fn dir(&self) -> &str {
        &self.dir
    }

    pub fn data_path(&self, name: &str) -> String {
        format!("{}/{name}", self.dir)
    }

    pub fn record_path(&self, name: &str) -> String {
        format!("{}/{META}/records/{name}.json", self.dir)
    }

    pub fn partial_path(&self, name: &str, run_id: &str) -> String {
        format!("{}/{META}/partial/{name}.{run_id}", self.dir)
    }

    pub fn list(&self) -> Result<Listing> {
        // Two independent rclone calls: run them side by side.
        let (files, records) = std::thread::scope(|s| {
            let records = s.spawn(|| {
                self.rclone
                    .cat_folder(&format!("{}/{META}/records", self.dir))
            });
            let files = self.rclone.list_files(&self.dir);
            (files, records.join().expect("listing thread"))
        });
        let files = files?.unwrap_or_default();
        let records = records?.unwrap_or_default();
        let sizes: BTreeMap<String, i64> = files.into_iter().map(|e| (e.name, e.size)).collect();
        let mut listing = Listing {
            taken: sizes.keys().cloned().collect(),
            data: sizes.keys().cloned().collect(),
            ..Default::default()
        };
        for line in String::from_utf8_lossy(&records).lines() {
            if line.trim().is_empty() {
                continue;
            }
            let rec: BackupRecord = match serde_json::from_str(line) {
                Ok(r) => r,
                Err(e) => {
                    tracing::warn!(
                        "skipping an unreadable integrity record in {}/{META}/records ({e})",
                        self.dir
                    );
                    continue;
                }
            };
            listing.taken.insert(rec.name.clone());
            match sizes.get(&rec.name) {
                Some(&size) if size == rec.size as i64 => listing.backups.push(rec),
                Some(&size) => tracing::warn!(
                    "backup {} is {size} bytes on the remote but its record says {}; not listed. Run `rcbackup verify -i {}`",
                    rec.name, rec.size, rec.name
                ),
                // A record without data: a publish or a delete was interrupted.
                None => {}
            }
        }
        sort_newest_first(&mut listing.backups);
        Ok(listing)
    }

    /// Every name in use by a data object or a record: one rclone call,
    /// for choosing a new name without reading the records.
    pub fn taken_names(&self) -> Result<BTreeSet<String>> {
        let records = format!("{META}/records/");
        let files = self
            .rclone
            .list_files_recursive(&self.dir, 3)?
            .unwrap_or_default();
        Ok(files
            .into_iter()
            .filter_map(|e| match e.path.strip_prefix(&records) {
                Some(r) => r.strip_suffix(".json").map(str::to_string),
                None if !e.path.contains('/') => Some(e.path),
                None => None,
            })
            .collect())
    }

    /// A name not in `taken`: `name`, else `name` with
    /// `-2`, `-3`, ... before its extension.
    pub fn unique_name(taken: &BTreeSet<String>, name: &str) -> String {
        if !taken.contains(name) {
            return name.to_string();
        }
        let (stem, ext) = match name.rfind('.') {
            Some(i) if i > 0 => (&name[..i], &name[i..]),
            _ => (name, ""),
        };
        (2..)
            .map(|n| format!("{stem}-{n}{ext}"))
            .find(|candidate| !taken.contains(candidate))
            .expect("some suffix is free")
    }

    /// Makes an uploaded partial a backup under `wanted`, or under the first
    /// free `-2`, `-3`, ... variant. The name is claimed by moving the data
    /// without overwriting (rclone `--ignore-existing`), so two runs racing
    /// for one name never clobber each other; then the record is written,
    /// and only from then on is it a backup.
    pub fn publish(
        &self,
        partial: &str,
        wanted: &str,
        taken: &BTreeSet<String>,
        mut record: BackupRecord,
    ) -> Result<BackupRecord> {
        let mut taken = taken.clone();
        for _ in 0..MAX_CLAIMS {
            let name = Catalog::unique_name(&taken, wanted);
            let data = self.data_path(&name);
            if !self.rclone.move_no_clobber(partial, &data)? {
                tracing::info!("`{name}` was taken meanwhile; trying the next name");
                taken.insert(name);
                continue;
            }
            record.name = name;
            if let Err(e) = self
                .rclone
                .put(&self.record_path(&record.name), record.to_line().as_bytes())
            {
                // Without its record the data is no backup: don't leave it.
                let _ = self.rclone.deletefile(&data);
                return Err(e);
            }
            return Ok(record);
        }
        Err(crate::exit::failed(format!(
            "could not find a free name for `{wanted}` after {MAX_CLAIMS} tries; is another rcbackup racing on the same database?"
        )))
    }

    /// Deletes a backup: data first, so an interruption leaves only a record
    /// without data, which is never listed.
    pub fn delete(&self, name: &str) -> Result<()> {
        self.rclone.deletefile(&self.data_path(name))?;
        self.rclone.deletefile(&self.record_path(name))
    }

    /// Partial uploads and data-less records not touched for `max_age`.
    pub fn leftovers(
        &self,
        listing: &Listing,
        now: DateTime<Utc>,
        max_age: Duration,
    ) -> Result<Vec<Leftover>> {
        let cutoff = now - chrono::Duration::from_std(max_age).unwrap_or(chrono::Duration::MAX);
        let mut out = Vec::new();
        let partial_dir = format!("{}/{META}/partial", self.dir);
        for e in self.rclone.list_files(&partial_dir)?.unwrap_or_default() {
            let last_seen = partial_started(&e.name).map_or(e.mod_time, |t| t.max(e.mod_time));
            if last_seen < cutoff {
                out.push(Leftover {
                    path: format!("{partial_dir}/{}", e.name),
                    last_seen,
                });
            }
        }
        let records_dir = format!("{}/{META}/records", self.dir);
        for e in self.rclone.list_files(&records_dir)?.unwrap_or_default() {
            let Some(name) = e.name.strip_suffix(".json") else {
                continue;
            };
            // A record whose data exists (even with a wrong size) stays for
            // `verify` to explain; one without data is a dead publish or delete.
            if !listing.data.contains(name) && e.mod_time < cutoff {
                out.push(Leftover {
                    path: format!("{records_dir}/{}", e.name),
                    last_seen: e.mod_time,
                });
            }
        }
        Ok(out)
    }

    pub fn remove(&self, leftover: &Leftover) -> Result<()> {
        self.rclone.deletefile(&leftover.path)
    }
}

/// A run id, `<unix seconds>-<pid>`: unique per host and second, and it
/// tells cleanup when the upload began.
pub fn run_id(now: DateTime<Utc>) -> String {
    format!("{}-{}", now.timestamp(), std::process::id())
}

fn partial_started(file_name: &str) -> Option<DateTime<Utc>> {
    let run = file_name.rsplit('.').next()?;
    let secs: i64 = run.split('-').next()?.parse().ok()?;
    DateTime::from_timestamp(secs, 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unique_names_get_a_suffix() {
        let mut l = Listing::default();
        assert_eq!(Catalog::unique_name(&l.taken, "a-1.dump"), "a-1.dump");
        l.taken.insert("a-1.dump".into());
        l.taken.insert("a-1-2.dump".into());
        assert_eq!(Catalog::unique_name(&l.taken, "a-1.dump"), "a-1-3.dump");
    }

    #[test]
    fn partial_start_is_read_from_run_id() {
        let t = partial_started("db-2024.dump.1700000000-42").unwrap();
        assert_eq!(t.timestamp(), 1_700_000_000);
    }
}
