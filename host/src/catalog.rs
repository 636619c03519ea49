//! The backup folder on the remote, and what counts as a backup in it.
//!
//! ```text
//! <remote>/<db_backup_dir>/
//!     <name>                          data objects (the dumps)
//!     .rcbackup/records/<name>.json   integrity records, one JSON line each
//!     .rcbackup/partial/<name>.<run>  uploads in progress or abandoned
//!     .rcbackup/claims/<name>.<run>   a run's claim on a name while it publishes
//! ```
//!
//! Publishing ([`Catalog::publish`]): the upload goes to `partial/`; the run
//! then writes a claim on the name it wants, lists the claims, and keeps the
//! name only if no other claim, data object or record holds it (otherwise it
//! withdraws and tries the next `-N` name); then it moves the upload into
//! place, writes the record, and drops its claim. A claim is visible before
//! its owner looks for rivals, so of two runs after one name at most one
//! sees no rival; rclone's `moveto --ignore-existing` is only a second guard
//! (it checks, then renames: not atomic).
//!
//! A backup is a record and a data object that agree on the size. A record
//! that does not read, names another backup, or disagrees with its data
//! object makes that one backup *damaged* (listed as such, never restored
//! or counted by retention); it never affects another. Everything else an
//! interrupted run can leave is a *leftover* with a kind, listed and removed
//! by `--clean` once untouched for `abandoned_after_hours`. Data objects with
//! neither record nor claim were not made by rcbackup and are never touched.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use anyhow::Result;
use chrono::{DateTime, Utc};

use crate::exit;
use crate::failpoint;
use crate::interrupt;
use crate::naming::{printable, MAX_NAME_LEN};
use crate::rclone::{Entry, Rclone};
use crate::record::{BackupRecord, RECORD_FORMAT};
use crate::retention::sort_newest_first;

const META: &str = ".rcbackup";
/// How many record files are read at once when they must be read one by one.
const RECORD_READERS: usize = 8;
/// How many names publishing tries before giving up.
const MAX_CLAIMS: usize = 50;

pub struct Catalog<'a> {
    rclone: &'a Rclone,
    dir: String,
    /// The tenant whose folder this is (`None`: the top level).
    tenant: Option<String>,
}

/// What one look at the backup folder found.
#[derive(Debug, Default)]
pub struct Listing {
    /// Complete backups, newest first.
    pub backups: Vec<BackupRecord>,
    /// Backups whose record or data object is wrong, newest first.
    pub damaged: Vec<Damaged>,
    /// What interrupted runs left, oldest first.
    pub leftovers: Vec<Leftover>,
    /// Data objects with neither record nor claim: not rcbackup's.
    pub foreign: Vec<String>,
    /// Every name in use by a data object, a record or a claim.
    pub taken: BTreeSet<String>,
    /// Names with a claim, and when the newest of its claims was touched.
    /// A complete backup keeps its run's claim until that run ends.
    pub claimed: BTreeMap<String, DateTime<Utc>>,
}

/// A backup that must not be used: what is wrong, and what is known of it.
#[derive(Debug, Clone)]
pub struct Damaged {
    pub name: String,
    /// The record, when it could be read.
    pub record: Option<BackupRecord>,
    pub problem: String,
    /// Its created time from the record, else the data object's time.
    pub when: DateTime<Utc>,
}

impl Damaged {
    /// The database it belongs to, when its record says.
    pub fn database(&self) -> Option<&str> {
        self.record.as_ref().map(|r| r.database.as_str())
    }
}

/// What kind of thing an interrupted run left.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeftoverKind {
    /// An upload that never finished (killed, or failed and not removed).
    PartialUpload,
    /// A data object moved into place whose record was never written.
    UnrecordedData,
    /// A record whose data object is gone (an interrupted delete, or the
    /// data was removed by hand).
    RecordWithoutData,
    /// A claim on a name that its run no longer needs.
    StaleClaim,
}

impl LeftoverKind {
    pub fn as_str(self) -> &'static str {
        match self {
            LeftoverKind::PartialUpload => "partial-upload",
            LeftoverKind::UnrecordedData => "unrecorded-data",
            LeftoverKind::RecordWithoutData => "record-without-data",
            LeftoverKind::StaleClaim => "stale-claim",
        }
    }
}

/// Something an interrupted run left behind.
#[derive(Debug, Clone)]
pub struct Leftover {
    pub kind: LeftoverKind,
    /// The backup name it concerns.
    pub name: String,
    /// Every object that makes it up, relative to the remote.
    pub paths: Vec<String>,
    /// The newest time any of its objects was touched.
    pub last_seen: DateTime<Utc>,
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

    pub fn find_damaged(&self, name: &str) -> Option<&Damaged> {
        self.damaged.iter().find(|d| d.name == name)
    }

    /// Damaged backups that may belong to `database`: those whose record
    /// says so, and those whose record is unreadable (they could be anyone's).
    pub fn damaged_of<'l>(&'l self, database: &'l str) -> impl Iterator<Item = &'l Damaged> {
        self.damaged
            .iter()
            .filter(move |d| d.database().is_none_or(|db| db == database))
    }

    /// Whether a run that is (or may still be) going holds `name`: its
    /// claim was touched after `cutoff`.
    pub fn in_flight(&self, name: &str, cutoff: DateTime<Utc>) -> bool {
        self.claimed.get(name).is_some_and(|t| *t >= cutoff)
    }

    /// Leftovers not touched since `cutoff`.
    pub fn abandoned(&self, cutoff: DateTime<Utc>) -> impl Iterator<Item = &Leftover> {
        self.leftovers.iter().filter(move |l| l.last_seen < cutoff)
    }
}

/// The objects of a backup folder, sorted by where they live.
#[derive(Default)]
struct Objects {
    data: BTreeMap<String, Entry>,
    /// Record files by backup name (file name without `.json`).
    records: BTreeMap<String, Entry>,
    partials: Vec<Entry>,
    /// Claims by backup name: (run id, entry).
    claims: BTreeMap<String, Vec<(String, Entry)>>,
}

impl Objects {
    fn sort(entries: Vec<Entry>) -> Objects {
        let mut o = Objects::default();
        let records = format!("{META}/records/");
        let partial = format!("{META}/partial/");
        let claims = format!("{META}/claims/");
        for e in entries {
            if let Some(f) = e.path.strip_prefix(&records) {
                // Only `<name>.json` is a record; an editor's `x.json.bak`
                // or anything else in the folder is not.
                if let Some(name) = f.strip_suffix(".json") {
                    if !name.is_empty() && !f.contains('/') {
                        o.records.insert(name.to_string(), e);
                    }
                }
            } else if let Some(f) = e.path.strip_prefix(&partial) {
                if !f.contains('/') {
                    o.partials.push(e);
                }
            } else if let Some(f) = e.path.strip_prefix(&claims) {
                if let Some((name, run)) = f.rsplit_once('.') {
                    if !f.contains('/') && !name.is_empty() {
                        let run = run.to_string();
                        o.claims.entry(name.to_string()).or_default().push((run, e));
                    }
                }
            } else if !e.path.contains('/') {
                o.data.insert(e.path.clone(), e);
            }
        }
        o
    }

    fn taken(&self) -> BTreeSet<String> {
        self.data
            .keys()
            .chain(self.records.keys())
            .chain(self.claims.keys())
            .cloned()
            .collect()
    }
}

impl<'a> Catalog<'a> {
    pub fn new(rclone: &'a Rclone, dir: &str) -> Catalog<'a> {
        Catalog {
            rclone,
            dir: dir.to_string(),
            tenant: None,
        }
    }

    /// The folder of `tenant`: a backup whose record names another tenant
    /// is damaged here, never restored, retained or counted as this
    /// tenant's (the config checks keep tenants' folders apart; this holds
    /// even for spellings of one folder those checks do not know).
    pub fn of_tenant(self, tenant: Option<&str>) -> Catalog<'a> {
        Catalog {
            tenant: tenant.map(str::to_string),
            ..self
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

    fn claim_path(&self, name: &str, run_id: &str) -> String {
        format!("{}/{META}/claims/{name}.{run_id}", self.dir)
    }

    fn records_dir(&self) -> String {
        format!("{}/{META}/records", self.dir)
    }

    /// Every file of the backup folder and its `.rcbackup` folders: one call.
    fn objects(&self) -> Result<Objects> {
        let entries = self
            .rclone
            .list_files_recursive(&self.dir, 3)?
            .unwrap_or_default();
        Ok(Objects::sort(entries))
    }

    pub fn list(&self) -> Result<Listing> {
        // Two independent rclone calls: run them side by side. The records
        // are read in one go, and each is then judged on its own.
        let (objects, joined) = std::thread::scope(|s| {
            let joined = s.spawn(|| self.rclone.cat_folder(&self.records_dir(), ".json"));
            let objects = self.objects();
            (objects, joined.join().expect("listing thread"))
        });
        let objects = objects?;
        let joined = joined?.unwrap_or_default();
        let records = self.read_records(&objects, &joined)?;
        let mut listing = judge(&self.dir, objects, records);
        self.set_apart_other_tenants(&mut listing);
        Ok(listing)
    }

    /// Moves a backup whose record names a tenant other than this folder's
    /// (or none, the top level's, in a tenant's folder) to the damaged
    /// ones.
    fn set_apart_other_tenants(&self, listing: &mut Listing) {
        let (own, other): (Vec<_>, Vec<_>) = std::mem::take(&mut listing.backups)
            .into_iter()
            .partition(|r| r.tenant == self.tenant);
        listing.backups = own;
        if other.is_empty() {
            return;
        }
        for rec in other {
            let whose = |t: Option<&str>| match t {
                Some(t) => format!("tenant `{}`", printable(t)),
                None => "the top level".to_string(),
            };
            let problem = format!(
                "its record says it was made for {}, not {}: two backup folders are one; give each tenant its own `remote` or path",
                whose(rec.tenant.as_deref()),
                whose(self.tenant.as_deref())
            );
            listing.damaged.push(Damaged {
                name: rec.name.clone(),
                when: rec.created,
                record: Some(rec),
                problem,
            });
        }
        listing.damaged.sort_by_key(|d| std::cmp::Reverse(d.when));
    }

    /// Each record file's parsed contents (or why it does not parse).
    ///
    /// `joined` is every record file concatenated in an order rclone does
    /// not promise. A line is taken as a file's contents only when it parses,
    /// names that file, and is exactly that file's size; every file not
    /// accounted for so is read again on its own. So a damaged, truncated or
    /// duplicated record costs one more read, and affects only itself.
    fn read_records(
        &self,
        objects: &Objects,
        joined: &[u8],
    ) -> Result<BTreeMap<String, Result<BackupRecord, String>>> {
        let mut out: BTreeMap<String, Result<BackupRecord, String>> = BTreeMap::new();
        for line in joined.split_inclusive(|&b| b == b'\n') {
            // A line may hold several records whose files lack a final
            // newline (written by hand or another tool): take each value
            // with its exact extent, up to the first that does not parse.
            let mut values = serde_json::Deserializer::from_slice(line).into_iter::<BackupRecord>();
            let mut start = 0;
            // A record that contradicts itself is read again on its own,
            // where BackupRecord::parse says why.
            while let Some(Ok(rec)) = values
                .next()
                .filter(|r| r.as_ref().map_or(true, |rec| rec.inconsistency().is_none()))
            {
                let mut end = values.byte_offset();
                // The newline that ends the line belongs to the last record.
                if line[end..].iter().all(u8::is_ascii_whitespace) {
                    end = line.len();
                }
                let fits = objects
                    .records
                    .get(&rec.name)
                    .is_some_and(|e| e.size == (end - start) as i64);
                if fits && !out.contains_key(&rec.name) {
                    out.insert(rec.name.clone(), Ok(rec));
                }
                start = end;
            }
        }
        let rest: Vec<&String> = objects
            .records
            .keys()
            .filter(|n| !out.contains_key(*n))
            .collect();
        // Each on its own, a few at a time: only damage gets here.
        for batch in rest.chunks(RECORD_READERS) {
            let read = std::thread::scope(|s| {
                let readers: Vec<_> = batch
                    .iter()
                    .map(|name| s.spawn(move || (name, self.rclone.cat(&self.record_path(name)))))
                    .collect();
                readers
                    .into_iter()
                    .map(|r| r.join().expect("record reader"))
                    .collect::<Vec<_>>()
            });
            for (name, bytes) in read {
                match bytes? {
                    // Gone since the listing: a concurrent delete.
                    None => {}
                    Some(bytes) => {
                        out.insert((*name).clone(), parse_record(name, &bytes));
                    }
                }
            }
        }
        Ok(out)
    }

    /// Every name in use by a data object, a record or a claim: one rclone
    /// call, for choosing a new name without reading the records.
    pub fn taken_names(&self) -> Result<BTreeSet<String>> {
        Ok(self.objects()?.taken())
    }

    /// A name not in `taken`: `name`, else `name` with
    /// `-2`, `-3`, ... before its extension. The stem is shortened when the
    /// suffix would make the name longer than [`MAX_NAME_LEN`], so every
    /// object of the backup still fits (see [`crate::naming`]).
    pub fn unique_name(taken: &BTreeSet<String>, name: &str) -> String {
        if !taken.contains(name) {
            return name.to_string();
        }
        let (stem, ext) = crate::naming::split_extension(name);
        (2..)
            .map(|n| {
                let suffix = format!("-{n}{ext}");
                match MAX_NAME_LEN.checked_sub(suffix.len()) {
                    Some(room) if room > 0 => format!("{}{suffix}", cut(stem, room)),
                    // An "extension" that long is part of the stem (but a
                    // compressed backup's name still ends in `.zst`).
                    _ => {
                        let (body, zst) = match name.strip_suffix(".zst") {
                            Some(b) if !b.is_empty() => (b, ".zst"),
                            _ => (name, ""),
                        };
                        let suffix = format!("-{n}{zst}");
                        format!("{}{suffix}", cut(body, MAX_NAME_LEN - suffix.len()))
                    }
                }
            })
            .find(|candidate| !taken.contains(candidate))
            .expect("some suffix is free")
    }

    /// Every object a backup named `name` made by run `run_id` writes: its
    /// data, its upload in progress, its claim and its record. Their names
    /// are checked before the dump starts.
    pub fn object_paths(&self, name: &str, run_id: &str) -> [String; 4] {
        [
            self.data_path(name),
            self.partial_path(name, run_id),
            self.claim_path(name, run_id),
            self.record_path(name),
        ]
    }

    /// Makes the uploaded `partial` a backup under `wanted`, or under the
    /// first free `-2`, `-3`, ... variant (see the module's comment for the
    /// protocol). On any failure or interrupt it undoes what it did, so
    /// nothing is published; what an undo cannot remove is a leftover that
    /// `--clean` knows.
    pub fn publish(
        &self,
        partial: &str,
        wanted: &str,
        run_id: &str,
        taken: &BTreeSet<String>,
        mut record: BackupRecord,
    ) -> Result<BackupRecord> {
        let mut taken = taken.clone();
        for attempt in 0..MAX_CLAIMS {
            let name = Catalog::unique_name(&taken, wanted);
            failpoint::reached("claim");
            interrupt::stop_if_interrupted(exit::NOTHING_PUBLISHED)?;
            record.name = name.clone();
            let claim = self.claim_path(&name, run_id);
            if let Err(e) = self.rclone.put(&claim, record.to_line().as_bytes()) {
                // A failed write may still have left part of the claim.
                self.undo(&[&claim]);
                return Err(e);
            }
            let rivals = match self.objects() {
                Ok(o) => Rivals::of(&o, &name, run_id),
                Err(e) => {
                    self.undo(&[&claim]);
                    return Err(e);
                }
            };
            if rivals != Rivals::None {
                self.undo(&[&claim]);
                // Two runs in step would withdraw in step for ever: let
                // chance decide who goes first next time.
                std::thread::sleep(jitter(attempt));
                // Only claims in the way: their runs may have withdrawn too,
                // so the name may still be free.
                let free = rivals == Rivals::ClaimsOnly
                    && self
                        .objects()
                        .is_ok_and(|o| Rivals::of(&o, &name, run_id) == Rivals::None);
                if !free {
                    tracing::info!(
                        "`{name}` is taken or being claimed by another run; trying the next name"
                    );
                    taken.insert(name);
                }
                continue;
            }
            failpoint::reached("claimed");
            if let Err(e) = interrupt::stop_if_interrupted(exit::NOTHING_PUBLISHED) {
                self.undo(&[&claim]);
                return Err(e);
            }
            let data = self.data_path(&name);
            match self.rclone.move_no_clobber(partial, &data) {
                Ok(true) => {}
                Ok(false) => {
                    // Someone who does not claim (a person, another tool)
                    // put an object there meanwhile.
                    self.undo(&[&claim]);
                    taken.insert(name);
                    continue;
                }
                Err(e) => {
                    // The move may have happened: the claim marks the data
                    // as ours, for the undo or for a later --clean.
                    self.undo(&[&data, &claim]);
                    return Err(e);
                }
            }
            failpoint::reached("moved");
            if let Err(e) = interrupt::stop_if_interrupted(exit::NOTHING_PUBLISHED) {
                self.undo(&[&data, &claim]);
                return Err(e);
            }
            let record_path = self.record_path(&name);
            if let Err(e) = self.rclone.put(&record_path, record.to_line().as_bytes()) {
                // Without its record the data is no backup: don't leave it.
                self.undo(&[&data, &record_path, &claim]);
                return Err(e);
            }
            failpoint::reached("recorded");
            // The claim stays until the run ends ([`Catalog::release`]):
            // while it is there, no other run's retention deletes this backup.
            return Ok(record);
        }
        Err(exit::failed(format!(
            "could not claim a free name for `{wanted}` after {MAX_CLAIMS} tries; is another rcbackup racing on the same database?"
        )))
    }

    /// Drops the claim a run kept on the backup it published, once the run
    /// is done with it. Tried twice: an interrupt may have stopped the first
    /// rclone. What stays is a stale claim that `--clean` removes.
    pub fn release(&self, name: &str, run_id: &str) {
        let claim = self.claim_path(name, run_id);
        let Err(first) = self.rclone.deletefile(&claim) else {
            return;
        };
        if let Err(e) = self.rclone.deletefile(&claim) {
            tracing::warn!(
                "backup {name} is complete, but its claim {} could not be removed ({first:#}; {e:#}); a later --clean removes it",
                self.rclone.path(&claim)
            );
        }
    }

    /// Removes what a failed publish made, in order; what cannot be removed
    /// stays a leftover that `--clean` recognises.
    fn undo(&self, paths: &[&str]) {
        for p in paths {
            if let Err(e) = self.rclone.deletefile(p) {
                tracing::warn!(
                    "could not remove {} ({e:#}); a later --clean removes it",
                    self.rclone.path(p)
                );
                return;
            }
        }
    }

    /// Deletes a backup: data first, so an interruption leaves only a record
    /// without data, which is never listed and is a leftover.
    pub fn delete(&self, name: &str) -> Result<()> {
        // Once begun, both halves run to their end: a signal stops the run
        // after them (the caller checks), never between.
        let _whole = crate::interrupt::shield();
        self.rclone.deletefile(&self.data_path(name))?;
        failpoint::reached("deleting");
        self.rclone.deletefile(&self.record_path(name))
    }

    /// Removes every object of a leftover: data before record before claim,
    /// so an interruption leaves a leftover of the same or a later kind.
    pub fn remove(&self, leftover: &Leftover) -> Result<()> {
        for p in &leftover.paths {
            self.rclone.deletefile(p)?;
        }
        Ok(())
    }

    /// Which of `paths` (relative to the remote, as a leftover's) are still
    /// listed: one listing, to confirm deletions rclone reported as done.
    pub fn still_listed(&self, paths: &BTreeSet<&str>) -> Result<BTreeSet<String>> {
        let entries = self
            .rclone
            .list_files_recursive(&self.dir, 3)?
            .unwrap_or_default();
        Ok(entries
            .into_iter()
            .map(|e| format!("{}/{}", self.dir, e.path))
            .filter(|p| paths.contains(p.as_str()))
            .collect())
    }

    /// The full rclone path of a catalog path, for messages.
    pub fn show(&self, rel: &str) -> String {
        self.rclone.path(rel)
    }
}

/// What stands in the way of a run claiming a name.
#[derive(Debug, PartialEq, Eq)]
enum Rivals {
    None,
    /// Only other runs' claims.
    ClaimsOnly,
    /// A data object or a record: the name is taken for good.
    Taken,
}

impl Rivals {
    fn of(o: &Objects, name: &str, run_id: &str) -> Rivals {
        if o.data.contains_key(name) || o.records.contains_key(name) {
            Rivals::Taken
        } else if o
            .claims
            .get(name)
            .is_some_and(|c| c.iter().any(|(run, _)| run != run_id))
        {
            Rivals::ClaimsOnly
        } else {
            Rivals::None
        }
    }
}

/// Whether rclone can be given `path`, as its listing names it, and reach
/// exactly that object. Its JSON listing shows a byte that is not UTF-8 as
/// U+FFFD, and a name holding its quote character `‛` may not come back as
/// it was listed: such a name, handed back, names another object (or none).
pub fn nameable(path: &str) -> bool {
    !path.contains(['\u{FFFD}', '\u{201B}'])
}

/// The time before which a leftover counts as abandoned.
pub fn abandoned_before(now: DateTime<Utc>, max_age: Duration) -> DateTime<Utc> {
    chrono::Duration::from_std(max_age)
        .ok()
        .and_then(|age| now.checked_sub_signed(age))
        .unwrap_or(DateTime::<Utc>::MIN_UTC)
}

/// Up to 200 ms, different for every process and attempt.
fn jitter(attempt: usize) -> Duration {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_usize(attempt);
    h.write_u32(std::process::id());
    Duration::from_millis(h.finish() % 200)
}

/// A record file's contents judged on their own.
fn parse_record(file_name: &str, bytes: &[u8]) -> Result<BackupRecord, String> {
    let rec = BackupRecord::parse(bytes).map_err(|e| {
        if bytes.is_empty() {
            "its integrity record is empty".to_string()
        } else {
            format!(
                "its integrity record does not read ({})",
                crate::naming::printable(&e)
            )
        }
    })?;
    if rec.name != file_name {
        return Err(format!(
            "its integrity record names another backup (`{}`)",
            crate::naming::printable(&rec.name)
        ));
    }
    Ok(rec)
}

/// Sorts what is in the folder into backups, damaged backups, leftovers and
/// foreign files.
fn judge(
    dir: &str,
    mut objects: Objects,
    records: BTreeMap<String, Result<BackupRecord, String>>,
) -> Listing {
    // lsjson gave paths relative to the backup folder; leftovers carry
    // paths relative to the remote, ready to delete.
    for e in objects
        .data
        .values_mut()
        .chain(objects.records.values_mut())
        .chain(objects.partials.iter_mut())
        .chain(objects.claims.values_mut().flatten().map(|(_, e)| e))
    {
        e.path = format!("{dir}/{}", e.path);
    }
    let mut listing = Listing {
        taken: objects.taken(),
        ..Default::default()
    };
    for (name, judged) in &records {
        let file = &objects.records[name];
        let data = objects.data.get(name);
        let claims = objects.claims.get(name);
        match (judged, data) {
            (Ok(rec), Some(d)) if rec.format > RECORD_FORMAT => listing.damaged.push(Damaged {
                name: name.clone(),
                record: Some(rec.clone()),
                problem: format!(
                    "its record has format {}, newer than this rcbackup reads ({RECORD_FORMAT}); upgrade rcbackup",
                    rec.format
                ),
                when: d.mod_time,
            }),
            (Ok(rec), Some(d)) if d.size == rec.size as i64 => listing.backups.push(rec.clone()),
            (Ok(rec), Some(d)) => listing.damaged.push(Damaged {
                name: name.clone(),
                record: Some(rec.clone()),
                problem: format!(
                    "the data object is {} bytes but its record says {}",
                    d.size, rec.size
                ),
                when: rec.created,
            }),
            // Written by a run that was killed while writing it: the data
            // was never reported as a backup.
            (Err(_), Some(d)) if claims.is_some() => {
                let mut paths = vec![d.path.clone(), file.path.clone()];
                let mut last_seen = d.mod_time.max(file.mod_time);
                for (_, c) in claims.into_iter().flatten() {
                    paths.push(c.path.clone());
                    last_seen = last_seen.max(c.mod_time);
                }
                listing.leftovers.push(Leftover {
                    kind: LeftoverKind::UnrecordedData,
                    name: name.clone(),
                    paths,
                    last_seen,
                });
            }
            (Err(problem), Some(d)) => listing.damaged.push(Damaged {
                name: name.clone(),
                record: None,
                problem: problem.clone(),
                when: d.mod_time,
            }),
            (judged, None) => {
                // A backup whose data is gone is not silently skipped:
                // restore and verify must not fall back past it unasked.
                if let Ok(rec) = judged {
                    listing.damaged.push(Damaged {
                        name: name.clone(),
                        record: Some(rec.clone()),
                        problem: "its data object is missing (deleted from the remote, or a delete was interrupted)".into(),
                        when: rec.created,
                    });
                }
                listing.leftovers.push(Leftover {
                    kind: LeftoverKind::RecordWithoutData,
                    name: name.clone(),
                    paths: vec![file.path.clone()],
                    last_seen: file.mod_time,
                });
            }
        }
    }
    for (name, claims) in &objects.claims {
        if records.get(name).is_some_and(|r| r.is_err()) && objects.data.contains_key(name) {
            continue; // counted with its unreadable record above
        }
        let mut paths = Vec::new();
        let mut last_seen = DateTime::<Utc>::MIN_UTC;
        let kind = match objects.data.get(name) {
            Some(d) if !records.contains_key(name) => {
                paths.push(d.path.clone());
                last_seen = d.mod_time;
                LeftoverKind::UnrecordedData
            }
            _ => LeftoverKind::StaleClaim,
        };
        let mut claim_seen = DateTime::<Utc>::MIN_UTC;
        for (run, c) in claims {
            paths.push(c.path.clone());
            claim_seen = claim_seen.max(c.mod_time).max(run_started(run));
        }
        last_seen = last_seen.max(claim_seen);
        listing.claimed.insert(name.clone(), claim_seen);
        listing.leftovers.push(Leftover {
            kind,
            name: name.clone(),
            paths,
            last_seen,
        });
    }
    for e in &objects.partials {
        let (name, run) = e.name.rsplit_once('.').unwrap_or((&e.name, ""));
        listing.leftovers.push(Leftover {
            kind: LeftoverKind::PartialUpload,
            name: name.to_string(),
            paths: vec![e.path.clone()],
            // A run id's time is when the upload began; the object's time
            // may be later (still being written) — the later one counts.
            last_seen: e.mod_time.max(run_started(run)),
        });
    }
    listing.foreign = objects
        .data
        .keys()
        .filter(|n| !records.contains_key(*n) && !objects.claims.contains_key(*n))
        .cloned()
        .collect();
    sort_newest_first(&mut listing.backups);
    listing.damaged.sort_by_key(|d| std::cmp::Reverse(d.when));
    listing.leftovers.sort_by_key(|l| l.last_seen);
    listing
}

/// A run id, `<unix seconds>-<pid>`: unique per host and second, and it
/// tells cleanup when the run began. At most [`MAX_RUN_ID_LEN`] bytes, and
/// without a `.`, so that `<name>.<run id>` parses back.
pub fn run_id(now: DateTime<Utc>) -> String {
    format!("{}-{}", now.timestamp(), std::process::id())
}

/// The longest start of `s` of at most `max` bytes, cut between characters.
fn cut(s: &str, max: usize) -> &str {
    let mut end = max.min(s.len());
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// When the run with this id began; the distant past if the id does not say.
fn run_started(run: &str) -> DateTime<Utc> {
    run.split('-')
        .next()
        .and_then(|s| s.parse::<i64>().ok())
        .and_then(|secs| DateTime::from_timestamp(secs, 0))
        .unwrap_or(DateTime::<Utc>::MIN_UTC)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::naming::MAX_RUN_ID_LEN;

    #[test]
    fn unique_names_get_a_suffix() {
        let mut taken = BTreeSet::new();
        assert_eq!(Catalog::unique_name(&taken, "a-1.dump"), "a-1.dump");
        taken.insert("a-1.dump".to_string());
        taken.insert("a-1-2.dump".to_string());
        assert_eq!(Catalog::unique_name(&taken, "a-1.dump"), "a-1-3.dump");
    }

    /// Issue 8, item 17: the `-N` twin of a name at the limit must fit
    /// every object as the name does.
    #[test]
    fn unique_names_stay_within_the_name_limit() {
        let long = format!("{}.sqlite3", "a".repeat(MAX_NAME_LEN - 8));
        assert_eq!(long.len(), MAX_NAME_LEN);
        let mut taken = BTreeSet::from([long.clone()]);
        let twin = Catalog::unique_name(&taken, &long);
        assert_eq!(twin.len(), MAX_NAME_LEN, "{twin}");
        assert!(twin.ends_with("a-2.sqlite3"), "{twin}");
        taken.insert(twin);
        assert!(Catalog::unique_name(&taken, &long).ends_with("a-3.sqlite3"));
        // Characters are not cut in half.
        let wide = format!("{}.x", "é".repeat((MAX_NAME_LEN - 2) / 2));
        let twin = Catalog::unique_name(&BTreeSet::from([wide.clone()]), &wide);
        assert!(
            twin.len() <= MAX_NAME_LEN && twin.ends_with("é-2.x"),
            "{twin}"
        );
        // An extension too long to keep whole is part of the stem.
        let odd = format!("a.{}", "b".repeat(MAX_NAME_LEN - 2));
        let twin = Catalog::unique_name(&BTreeSet::from([odd.clone()]), &odd);
        assert_eq!(twin.len(), MAX_NAME_LEN, "{twin}");
        assert!(twin.starts_with("a.b") && twin.ends_with("b-2"), "{twin}");
        let odd = format!("a.{}.zst", "b".repeat(MAX_NAME_LEN - 6));
        let twin = Catalog::unique_name(&BTreeSet::from([odd.clone()]), &odd);
        assert_eq!(twin.len(), MAX_NAME_LEN, "{twin}");
        assert!(
            twin.starts_with("a.b") && twin.ends_with("b-2.zst"),
            "{twin}"
        );
    }

    #[test]
    fn run_ids_fit_their_room_in_object_names() {
        let id = run_id(Utc::now());
        assert!(id.len() <= MAX_RUN_ID_LEN && !id.contains('.'), "{id}");
        // The widest: eleven characters of seconds, a ten-digit pid.
        assert_eq!(
            format!("{}-{}", -9_999_999_999i64, u32::MAX).len(),
            MAX_RUN_ID_LEN
        );
        assert_eq!(
            format!("{}-{}", 99_999_999_999i64, u32::MAX).len(),
            MAX_RUN_ID_LEN
        );
    }

    #[test]
    fn run_start_is_read_from_run_id() {
        assert_eq!(run_started("1700000000-42").timestamp(), 1_700_000_000);
        assert_eq!(run_started("garbage"), DateTime::<Utc>::MIN_UTC);
    }

    fn at(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(secs, 0).unwrap()
    }

    fn entry(path: &str, size: i64, secs: i64) -> Entry {
        Entry {
            path: path.to_string(),
            name: path.rsplit('/').next().unwrap().to_string(),
            size,
            mod_time: at(secs),
            is_dir: false,
        }
    }

    fn record(name: &str, database: &str, size: u64, secs: i64) -> BackupRecord {
        BackupRecord {
            format: crate::record::PLAIN_FORMAT,
            name: name.to_string(),
            database: database.to_string(),
            tenant: None,
            engine: crate::database::EngineKind::Sqlite,
            size,
            sha256: "00".repeat(32),
            compression: None,
            adopted: None,
            created: at(secs),
            finished: at(secs),
            tool: "rcbackup test".to_string(),
        }
    }

    fn keys<V>(m: &BTreeMap<String, V>) -> Vec<&str> {
        m.keys().map(String::as_str).collect()
    }

    #[test]
    fn objects_are_sorted_by_where_they_live() {
        let o = Objects::sort(
            [
                "a.dump",
                "sub/nested.dump",
                ".rcbackup/records/a.dump.json",
                ".rcbackup/records/a.dump.json.bak",
                ".rcbackup/records/.json",
                ".rcbackup/records/sub/x.json",
                ".rcbackup/partial/b.dump.100-1",
                ".rcbackup/partial/sub/c.dump.100-1",
                ".rcbackup/claims/c.dump.100-2",
                ".rcbackup/claims/c.dump.100-3",
                ".rcbackup/claims/.100-4",
                ".rcbackup/claims/noextension",
                ".rcbackup/claims/sub/d.dump.100-5",
                ".rcbackup/stray",
            ]
            .iter()
            .map(|p| entry(p, 1, 0))
            .collect(),
        );
        assert_eq!(keys(&o.data), ["a.dump"]);
        assert_eq!(keys(&o.records), ["a.dump"]);
        let partials: Vec<&str> = o.partials.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(partials, [".rcbackup/partial/b.dump.100-1"]);
        assert_eq!(keys(&o.claims), ["c.dump"]);
        let runs: Vec<&str> = o.claims["c.dump"].iter().map(|(r, _)| r.as_str()).collect();
        assert_eq!(runs, ["100-2", "100-3"]);
        let taken: Vec<String> = o.taken().into_iter().collect();
        assert_eq!(taken, ["a.dump", "c.dump"]);
    }

    /// The folder of `judge`'s test: one of each thing a folder can hold.
    fn judged() -> Listing {
        let o = Objects::sort(vec![
            // good: a backup.
            entry("good.dump", 10, 100),
            entry(".rcbackup/records/good.dump.json", 300, 100),
            // newer: a record of a later format.
            entry("newer.dump", 10, 110),
            entry(".rcbackup/records/newer.dump.json", 300, 110),
            // short: the data disagrees with the record's size.
            entry("short.dump", 9, 120),
            entry(".rcbackup/records/short.dump.json", 300, 120),
            // broken: an unreadable record, no claim.
            entry("broken.dump", 10, 130),
            entry(".rcbackup/records/broken.dump.json", 3, 131),
            // killed: an unreadable record with its run's claim.
            entry("killed.dump", 10, 140),
            entry(".rcbackup/records/killed.dump.json", 3, 141),
            entry(".rcbackup/claims/killed.dump.140-7", 0, 142),
            // orphan: a record without data.
            entry(".rcbackup/records/orphan.dump.json", 300, 150),
            // moved: data and a claim, no record yet.
            entry("moved.dump", 10, 160),
            entry(".rcbackup/claims/moved.dump.160-8", 0, 161),
            // stale: a claim left on a healthy backup.
            entry("stale.dump", 10, 170),
            entry(".rcbackup/records/stale.dump.json", 300, 170),
            entry(".rcbackup/claims/stale.dump.900-9", 0, 171),
            // partial: an upload in progress, its run began at 950.
            entry(".rcbackup/partial/part.dump.950-10", 5, 180),
            // foreign: somebody else's file.
            entry("theirs.txt", 1, 190),
        ]);
        let mut newer = record("newer.dump", "db", 10, 110);
        newer.format = RECORD_FORMAT + 1;
        let records = BTreeMap::from([
            (
                "good.dump".to_string(),
                Ok(record("good.dump", "db", 10, 100)),
            ),
            ("newer.dump".to_string(), Ok(newer)),
            (
                "short.dump".to_string(),
                Ok(record("short.dump", "other", 10, 120)),
            ),
            ("broken.dump".to_string(), Err("unreadable".to_string())),
            ("killed.dump".to_string(), Err("unreadable".to_string())),
            (
                "orphan.dump".to_string(),
                Ok(record("orphan.dump", "db", 10, 150)),
            ),
            (
                "stale.dump".to_string(),
                Ok(record("stale.dump", "db", 10, 170)),
            ),
        ]);
        judge("dir", o, records)
    }

    #[test]
    fn judge_sorts_a_folder_into_backups_damaged_leftovers_and_foreign() {
        let l = judged();
        let names: Vec<&str> = l.backups.iter().map(|b| b.name.as_str()).collect();
        assert_eq!(names, ["stale.dump", "good.dump"], "newest first");
        let damaged: Vec<(&str, &str)> = l
            .damaged
            .iter()
            .map(|d| (d.name.as_str(), d.problem.as_str()))
            .collect();
        // Newest first; a record whose data is gone is damaged too.
        assert_eq!(damaged.len(), 4, "{damaged:?}");
        assert_eq!(damaged[0].0, "orphan.dump");
        assert!(damaged[0].1.contains("missing"), "{}", damaged[0].1);
        let damaged = &damaged[1..];
        assert_eq!(damaged[0].0, "broken.dump");
        assert_eq!(damaged[0].1, "unreadable");
        assert_eq!(l.damaged[1].when, at(130), "the data object's time");
        assert!(l.damaged[1].record.is_none());
        assert_eq!(damaged[1].0, "short.dump");
        assert!(
            damaged[1].1.contains("9 bytes but its record says 10"),
            "{}",
            damaged[1].1
        );
        assert_eq!(damaged[2].0, "newer.dump");
        assert!(
            damaged[2].1.contains("upgrade rcbackup"),
            "{}",
            damaged[2].1
        );
        let leftovers: Vec<(LeftoverKind, &str, Vec<&str>, DateTime<Utc>)> = l
            .leftovers
            .iter()
            .map(|x| {
                let paths = x.paths.iter().map(String::as_str).collect();
                (x.kind, x.name.as_str(), paths, x.last_seen)
            })
            .collect();
        assert_eq!(
            leftovers,
            [
                (
                    LeftoverKind::UnrecordedData,
                    "killed.dump",
                    vec![
                        "dir/killed.dump",
                        "dir/.rcbackup/records/killed.dump.json",
                        "dir/.rcbackup/claims/killed.dump.140-7"
                    ],
                    at(142)
                ),
                (
                    LeftoverKind::RecordWithoutData,
                    "orphan.dump",
                    vec!["dir/.rcbackup/records/orphan.dump.json"],
                    at(150)
                ),
                (
                    LeftoverKind::UnrecordedData,
                    "moved.dump",
                    vec!["dir/moved.dump", "dir/.rcbackup/claims/moved.dump.160-8"],
                    at(161)
                ),
                (
                    LeftoverKind::StaleClaim,
                    "stale.dump",
                    vec!["dir/.rcbackup/claims/stale.dump.900-9"],
                    at(900)
                ),
                (
                    LeftoverKind::PartialUpload,
                    "part.dump",
                    vec!["dir/.rcbackup/partial/part.dump.950-10"],
                    at(950)
                ),
            ]
        );
        assert_eq!(l.foreign, ["theirs.txt"]);
        let taken: Vec<&str> = l.taken.iter().map(String::as_str).collect();
        assert_eq!(
            taken,
            [
                "broken.dump",
                "good.dump",
                "killed.dump",
                "moved.dump",
                "newer.dump",
                "orphan.dump",
                "short.dump",
                "stale.dump",
                "theirs.txt"
            ]
        );
    }

    #[test]
    fn damaged_of_a_database_includes_the_unreadable() {
        let l = judged();
        let of = |db: &str| -> Vec<String> { l.damaged_of(db).map(|d| d.name.clone()).collect() };
        assert_eq!(of("db"), ["orphan.dump", "broken.dump", "newer.dump"]);
        assert_eq!(of("other"), ["broken.dump", "short.dump"]);
    }

    #[test]
    fn abandoned_means_untouched_strictly_before_the_cutoff() {
        let l = judged();
        let names: Vec<&str> = l.abandoned(at(161)).map(|x| x.name.as_str()).collect();
        assert_eq!(names, ["killed.dump", "orphan.dump"]);
        assert_eq!(l.abandoned(at(0)).count(), 0);
    }

    #[test]
    fn abandoned_before_is_now_minus_the_age() {
        let now = at(1_700_000_000);
        assert_eq!(
            abandoned_before(now, Duration::from_secs(3600)),
            at(1_700_000_000 - 3600)
        );
        assert_eq!(
            abandoned_before(now, Duration::from_secs(u64::MAX)),
            DateTime::<Utc>::MIN_UTC
        );
    }

    #[test]
    fn a_record_is_judged_on_its_own() {
        let good = record("a.dump", "db", 10, 100);
        let line = serde_json::to_vec(&good).unwrap();
        assert_eq!(parse_record("a.dump", &line), Ok(good));
        let e = parse_record("b.dump", &line).unwrap_err();
        assert!(e.contains("names another backup (`a.dump`)"), "{e}");
        let e = parse_record("a.dump", b"").unwrap_err();
        assert!(e.contains("is empty"), "{e}");
        let e = parse_record("a.dump", b"{\"format\":").unwrap_err();
        assert!(e.contains("does not read"), "{e}");
    }

    #[test]
    fn unique_names_keep_the_extension_or_have_none() {
        let taken: BTreeSet<String> = ["a.dump", ".hidden", "plain", "a-2.dump"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(Catalog::unique_name(&taken, "a.dump"), "a-3.dump");
        assert_eq!(Catalog::unique_name(&taken, ".hidden"), ".hidden-2");
        assert_eq!(Catalog::unique_name(&taken, "plain"), "plain-2");
        assert_eq!(Catalog::unique_name(&taken, "b.dump"), "b.dump");
        // A compressed backup's twin keeps `.dump.zst` whole.
        let taken = BTreeSet::from(["a.dump.zst".to_string()]);
        assert_eq!(Catalog::unique_name(&taken, "a.dump.zst"), "a-2.dump.zst");
    }

    /// Records come from the joined read when a line fits its file, and
    /// from the file itself otherwise: a file deleted since the joined read
    /// is only missed when it is read again.
    #[test]
    fn read_records_takes_fitting_lines_and_reads_the_rest_again() {
        let dir = tempfile::tempdir().unwrap();
        let rclone = Rclone::new(
            "rclone",
            None,
            vec!["--config".to_string(), "/dev/null".to_string()],
            &dir.path().display().to_string(),
        );
        let records = dir.path().join("db/.rcbackup/records");
        std::fs::create_dir_all(&records).unwrap();
        let line = |r: &BackupRecord| {
            let mut v = serde_json::to_vec(r).unwrap();
            v.push(b'\n');
            v
        };
        let a = record("a.dump", "db", 10, 100);
        let mut a_twin = a.clone();
        a_twin.sha256 = "11".repeat(32);
        let b = record("b.dump", "db", 10, 100);
        // a: its line fits; the file is gone (never read again).
        // b: its line does not fit the file, which holds garbage.
        std::fs::write(records.join("b.dump.json"), b"garbage").unwrap();
        let objects = Objects::sort(vec![
            entry(".rcbackup/records/a.dump.json", line(&a).len() as i64, 0),
            entry(".rcbackup/records/b.dump.json", 7, 0),
        ]);
        let joined = [line(&a), line(&a_twin), line(&b)].concat();
        let catalog = Catalog::new(&rclone, "db");
        let out = catalog.read_records(&objects, &joined).unwrap();
        assert_eq!(keys(&out), ["a.dump", "b.dump"]);
        assert_eq!(out["a.dump"], Ok(a), "the first fitting line");
        let e = out["b.dump"].as_ref().unwrap_err();
        assert!(e.contains("does not read"), "{e}");
    }
}

/// Property tests of the catalog's reading of rclone listings: the names it
/// derives parse back, and no listing, however odd, makes it panic or lose
/// track of a data object.
#[cfg(test)]
mod props {
    use super::*;
    use crate::naming::{check_file_name, check_object_path, MAX_RUN_ID_LEN};
    use proptest::prelude::*;

    fn entry(path: &str, size: i64, secs: i64) -> Entry {
        Entry {
            path: path.to_string(),
            name: path.rsplit('/').next().unwrap().to_string(),
            size,
            mod_time: DateTime::from_timestamp(secs, 0).unwrap(),
            is_dir: false,
        }
    }

    fn rclone() -> Rclone {
        Rclone::new("rclone", None, Vec::new(), "r:")
    }

    fn secs() -> impl Strategy<Value = i64> {
        -9_999_999_999i64..=99_999_999_999
    }

    /// Paths of the shapes a backup folder holds, and any at all.
    fn paths() -> impl Strategy<Value = String> {
        let prefix = prop_oneof![
            Just(""),
            Just(".rcbackup/records/"),
            Just(".rcbackup/partial/"),
            Just(".rcbackup/claims/"),
            Just(".rcbackup/"),
            Just("sub/"),
        ];
        let rest = prop_oneof![
            "[ab]{0,2}(\\.json|\\.dump|\\.[0-9]{1,3}-[0-9]{1,3}|\\.|-)?",
            "[ab./-]{0,6}",
            any::<String>(),
        ];
        (prefix, rest).prop_map(|(p, r)| format!("{p}{r}"))
    }

    /// `rclone lsjson` output, right and wrong: entries with odd paths,
    /// sizes and times, missing or mistyped fields.
    fn lsjson() -> impl Strategy<Value = serde_json::Value> {
        use serde_json::{json, Value};
        let time = prop_oneof![
            secs().prop_map(|s| Value::from(DateTime::from_timestamp(s, 0).unwrap().to_rfc3339())),
            Just(Value::from("2024-01-02T03:04:05.123456789+02:00")),
            any::<String>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
        ];
        let size = prop_oneof![
            any::<i64>().prop_map(Value::from),
            Just(Value::from(-1)),
            any::<f64>().prop_map(Value::from),
            Just(Value::from(u64::MAX)),
            Just(Value::Null),
        ];
        let one = (paths(), size, time, any::<bool>(), any::<bool>()).prop_map(
            |(path, size, time, is_dir, drop_name)| {
                let mut e = json!({
                    "Path": path,
                    "Name": path.rsplit('/').next().unwrap_or(""),
                    "Size": size,
                    "ModTime": time,
                    "IsDir": is_dir,
                });
                if drop_name {
                    e.as_object_mut().unwrap().remove("Name");
                }
                e
            },
        );
        proptest::collection::vec(one, 0..20).prop_map(Value::from)
    }

    proptest! {
        /// Whatever name the guard accepts and whatever the run id, the
        /// catalog reads the name back from its upload in progress, its
        /// claim and its record, and every object's name fits a crypt
        /// remote.
        #[test]
        fn derived_names_parse_back(
            name in crate::naming::props::names(),
            secs in secs(),
            pid in any::<u32>(),
        ) {
            prop_assume!(check_file_name(&name).is_ok());
            let run = format!("{secs}-{pid}");
            prop_assert!(run.len() <= MAX_RUN_ID_LEN);
            let rclone = rclone();
            let catalog = Catalog::new(&rclone, "db");
            let paths = catalog.object_paths(&name, &run);
            for p in &paths {
                prop_assert!(check_object_path(p).is_ok(), "{}", p);
            }
            // lsjson gives paths relative to the backup folder.
            let entries = paths
                .iter()
                .map(|p| entry(p.strip_prefix("db/").unwrap(), 1, 0))
                .collect();
            let o = Objects::sort(entries);
            prop_assert_eq!(o.data.keys().collect::<Vec<_>>(), [&name]);
            prop_assert_eq!(o.records.keys().collect::<Vec<_>>(), [&name]);
            prop_assert_eq!(o.claims.keys().collect::<Vec<_>>(), [&name]);
            prop_assert_eq!(&o.claims[&name][0].0, &run);
            prop_assert_eq!(o.partials.len(), 1);
            let listing = judge("db", o, BTreeMap::from([(name.clone(), Err("x".into()))]));
            let partial = listing
                .leftovers
                .iter()
                .find(|l| l.kind == LeftoverKind::PartialUpload)
                .unwrap();
            prop_assert_eq!(&partial.name, &name);
            if secs >= 0 {
                prop_assert_eq!(partial.last_seen.timestamp(), secs);
            }
        }

        /// The `-N` twin of an accepted name is accepted too.
        #[test]
        fn a_unique_name_passes_the_guard(
            name in crate::naming::props::names(),
            more in proptest::collection::vec(2u32..6, 0..4),
        ) {
            prop_assume!(check_file_name(&name).is_ok());
            let mut taken = BTreeSet::from([name.clone()]);
            for _ in more {
                let next = Catalog::unique_name(&taken, &name);
                prop_assert!(check_file_name(&next).is_ok(), "{:?}: {:?}", next, check_file_name(&next));
                prop_assert!(!taken.contains(&next));
                taken.insert(next);
            }
        }

        /// No listing makes the catalog panic, and every data object ends
        /// up somewhere: a backup, damaged, part of a leftover, or foreign.
        #[test]
        fn any_listing_is_judged_without_losing_a_data_object(
            files in proptest::collection::vec((paths(), any::<i64>(), secs()), 0..30),
            readable in proptest::collection::vec((any::<bool>(), 0u64..3, 0u32..3), 0..30),
        ) {
            let o = Objects::sort(files.iter().map(|(p, size, t)| entry(p, *size, *t)).collect());
            let data: Vec<String> = o.data.keys().cloned().collect();
            let records: BTreeMap<String, Result<BackupRecord, String>> = o
                .records
                .keys()
                .zip(readable.iter().cycle())
                .map(|(name, (ok, size, format))| {
                    let judged = if *ok {
                        Ok(BackupRecord {
                            format: *format,
                            name: name.clone(),
                            database: "db".into(),
                            tenant: None,
                            engine: crate::database::EngineKind::Sqlite,
                            size: *size,
                            sha256: String::new(),
                            compression: None,
                            adopted: None,
                            created: DateTime::<Utc>::MIN_UTC,
                            finished: DateTime::<Utc>::MIN_UTC,
                            tool: String::new(),
                        })
                    } else {
                        Err("unreadable".to_string())
                    };
                    (name.clone(), judged)
                })
                .collect();
            let listing = judge("db", o, records);
            for name in &data {
                let path = format!("db/{name}");
                let placed = listing.backups.iter().any(|b| &b.name == name)
                    || listing.damaged.iter().any(|d| &d.name == name)
                    || listing.leftovers.iter().any(|l| l.paths.contains(&path))
                    || listing.foreign.contains(name);
                prop_assert!(placed, "{:?} is nowhere", name);
                prop_assert!(listing.taken.contains(name));
            }
            for b in &listing.backups {
                prop_assert!(data.contains(&b.name));
            }
        }

        /// Whatever rclone prints, reading it as a listing never panics.
        #[test]
        fn any_lsjson_output_never_panics(
            bytes in prop_oneof![
                proptest::collection::vec(any::<u8>(), 0..300),
                lsjson().prop_map(|v| serde_json::to_vec(&v).unwrap()),
            ]
        ) {
            if let Ok(entries) = serde_json::from_slice::<Vec<Entry>>(&bytes) {
                let _ = judge("db", Objects::sort(entries), BTreeMap::new());
            }
        }
    }
}
