//! The `--json` documents (their shapes are in docs/json.md): one JSON
//! object on stdout whose first key is `"version"`, the version of that
//! command's shape (an incompatible change makes it 2), then its fields.
//! Times are RFC 3339 UTC strings, sizes bytes, durations `duration_ms`.

use anyhow::Result;
use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::compression::Codec;
use crate::record::BackupRecord;

/// The version of every shape this module prints today.
pub const VERSION: u32 = 1;

#[derive(Serialize)]
struct Document<'a, T: Serialize> {
    version: u32,
    /// The tenant of a `--tenant` run; absent for the top level's own (an
    /// additive field: version 1 still).
    #[serde(skip_serializing_if = "Option::is_none")]
    tenant: Option<String>,
    #[serde(flatten)]
    body: &'a T,
}

/// The tenant the run's config was selected for (set once, when it loads).
static TENANT: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// Notes the tenant of this run (`--tenant`): every document names it.
pub fn note_tenant(tenant: Option<&str>) {
    if let Some(t) = tenant {
        let _ = TENANT.set(t.to_string());
    }
}

/// Prints `body` as one document, `"version": 1` first, then `"tenant"` on a
/// tenant's run.
pub fn print<T: Serialize>(body: &T) -> Result<()> {
    let text = serde_json::to_string_pretty(&Document {
        version: VERSION,
        tenant: TENANT.get().cloned(),
        body,
    })?;
    crate::outln!("{text}");
    Ok(())
}

/// RFC 3339, UTC, whole seconds: `2026-11-28T10:00:00Z`.
pub fn time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

pub fn millis(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// How a backup is stored, as `listbackups --json` says it.
pub fn compression(c: Option<Codec>) -> &'static str {
    match c {
        Some(c) => c.as_str(),
        None => "none",
    }
}

/// A backup as every document describes it (the fields of a
/// `listbackups --json` entry of status `ok`).
#[derive(Serialize)]
pub struct Backup {
    pub database: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    pub name: String,
    pub path: String,
    pub engine: &'static str,
    pub size: u64,
    pub sha256: String,
    pub compression: &'static str,
    pub created: String,
}

impl Backup {
    pub fn of(record: &BackupRecord, path: String) -> Backup {
        Backup {
            database: record.database.clone(),
            tenant: record.tenant.clone(),
            name: record.name.clone(),
            path,
            engine: record.engine.as_str(),
            size: record.size,
            sha256: record.sha256.clone(),
            compression: compression(record.compression),
            created: time(record.created),
        }
    }
}
