//! The decisions that differ between users and tenants: naming, retention,
//! restore approval, and lifecycle events.
//!
//! Commands call only this facade. Without any configured policy it gives
//! the built-in behaviour (the filename template, keep the newest N, the
//! y/N prompt, no hooks). The WebAssembly runtime plugs in behind it.

use std::time::Duration;

use anyhow::Result;
use chrono::{DateTime, Utc};

use crate::record::BackupRecord;
use crate::retention::{self, Decision};

/// What a naming decision is given.
#[derive(Debug, Clone)]
pub struct NamingContext {
    pub database: String,
    pub engine: String,
    pub tenant: Option<String>,
    pub now: DateTime<Utc>,
    pub extension: String,
    /// The name the built-in template gives.
    pub default_name: String,
}

/// What a restore approval is given.
#[derive(Debug, Clone)]
pub struct RestoreRequest {
    pub database: String,
    pub tenant: Option<String>,
    pub backup: BackupRecord,
    /// Who or what asked: the user name, or "cron"/"ci" when known.
    pub requested_by: String,
    pub noinput: bool,
    pub now: DateTime<Utc>,
}

/// What a media restore approval is given.
#[derive(Debug, Clone)]
pub struct MediaRestoreRequest {
    pub tenant: Option<String>,
    /// The local folder that will be written to.
    pub target: String,
    /// The remote folder restored from (the mirror).
    pub source: String,
    /// With `--at`: the stamp of the backup being restored.
    pub backup_stamp: Option<String>,
    /// Files the restore brings back.
    pub files: u64,
    /// Local files it deletes (`--mirror`).
    pub deletes: u64,
    pub requested_by: String,
    pub noinput: bool,
    pub now: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Approval {
    /// The built-in rule: ask at the prompt unless --noinput.
    AskUser,
    Allow,
    Deny(String),
}

/// Lifecycle events: the replacement for django-rclone's signals.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    PreDbBackup,
    PostDbBackup,
    DbBackupFailed,
    PreDbRestore,
    PostDbRestore,
    DbRestoreFailed,
    PreMediaBackup,
    PostMediaBackup,
    MediaBackupFailed,
    PreMediaRestore,
    PostMediaRestore,
    MediaRestoreFailed,
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::PreDbBackup => "pre-db-backup",
            EventKind::PostDbBackup => "post-db-backup",
            EventKind::DbBackupFailed => "db-backup-failed",
            EventKind::PreDbRestore => "pre-db-restore",
            EventKind::PostDbRestore => "post-db-restore",
            EventKind::DbRestoreFailed => "db-restore-failed",
            EventKind::PreMediaBackup => "pre-media-backup",
            EventKind::PostMediaBackup => "post-media-backup",
            EventKind::MediaBackupFailed => "media-backup-failed",
            EventKind::PreMediaRestore => "pre-media-restore",
            EventKind::PostMediaRestore => "post-media-restore",
            EventKind::MediaRestoreFailed => "media-restore-failed",
        }
    }

    pub fn is_pre(self) -> bool {
        matches!(
            self,
            EventKind::PreDbBackup
                | EventKind::PreDbRestore
                | EventKind::PreMediaBackup
                | EventKind::PreMediaRestore
        )
    }
}

/// What the host knows when an event fires.
#[derive(Debug, Clone)]
pub struct Event {
    pub kind: EventKind,
    pub database: Option<String>,
    pub tenant: Option<String>,
    pub backup: Option<String>,
    pub size: Option<u64>,
    pub sha256: Option<String>,
    pub duration: Option<Duration>,
    pub error: Option<String>,
    pub now: DateTime<Utc>,
}

impl Event {
    pub fn new(kind: EventKind, now: DateTime<Utc>) -> Event {
        Event {
            kind,
            database: None,
            tenant: None,
            backup: None,
            size: None,
            sha256: None,
            duration: None,
            error: None,
            now,
        }
    }
}

/// The set of policies in force for one run.
#[derive(Debug, Default)]
pub struct Policies {}

impl Policies {
    /// Built-in behaviour only.
    pub fn builtin() -> Policies {
        Policies {}
    }

    /// The file name for a new backup. The caller checks the result.
    pub fn name_backup(&self, ctx: &NamingContext) -> Result<String> {
        Ok(ctx.default_name.clone())
    }

    /// Keep or delete for each backup of one series; `keep` is db_cleanup_keep.
    pub fn retention(
        &self,
        series: &[BackupRecord],
        _now: DateTime<Utc>,
        keep: usize,
    ) -> Result<Vec<Decision>> {
        Ok(retention::keep_last(series, keep))
    }

    pub fn approve_restore(&self, _req: &RestoreRequest) -> Result<Approval> {
        Ok(Approval::AskUser)
    }

    /// Allow, deny or ask for a media restore; asked before any media file
    /// is downloaded.
    pub fn approve_media_restore(&self, _req: &MediaRestoreRequest) -> Result<Approval> {
        Ok(Approval::AskUser)
    }

    /// Sends an event to the hooks. For a "pre" event, an `Err` is a veto
    /// whose message is the reason; for others, a failing hook with
    /// `on_error = "fail"`.
    pub fn emit(&self, event: &Event) -> Result<()> {
        tracing::debug!(event = event.kind.as_str(), database = ?event.database, backup = ?event.backup, "event");
        Ok(())
    }
}
