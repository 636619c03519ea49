//! The integrity record stored on the remote beside every backup.
//!
//! A backup exists only when its record and its data object are both there
//! and agree on the size. The record carries what restore checks (size and
//! SHA-256) and what listing and retention read (database, engine, created
//! time), so nothing is ever parsed back out of a file name.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::database::EngineKind;

pub const RECORD_FORMAT: u32 = 1;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackupRecord {
    pub format: u32,
    /// The data object's file name inside the backup folder.
    pub name: String,
    /// The alias of the database in the config, e.g. "default".
    pub database: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    pub engine: EngineKind,
    pub size: u64,
    pub sha256: String,
    /// When the backup started (the time its name was made from), UTC.
    pub created: DateTime<Utc>,
    /// When the upload finished, UTC.
    pub finished: DateTime<Utc>,
    /// `rcbackup <version>` that wrote it.
    pub tool: String,
}

impl BackupRecord {
    /// The record of a backup of `database` started at `created`; the
    /// upload finished now.
    pub fn new(
        name: &str,
        database: &str,
        engine: EngineKind,
        size: u64,
        sha256: String,
        created: DateTime<Utc>,
    ) -> BackupRecord {
        BackupRecord {
            format: RECORD_FORMAT,
            name: name.to_string(),
            database: database.to_string(),
            tenant: None,
            engine,
            size,
            sha256,
            created,
            finished: Utc::now(),
            tool: BackupRecord::tool_version(),
        }
    }

    /// One JSON line: records are read back concatenated by one `rclone cat`.
    pub fn to_line(&self) -> String {
        let mut s = serde_json::to_string(self).expect("record serializes");
        s.push('\n');
        s
    }

    pub fn tool_version() -> String {
        format!("rcbackup {}", env!("CARGO_PKG_VERSION"))
    }
}
