//! Hook: records every event as one JSON line in rcbackup's log. Never
//! vetoes, unless the config names events to veto (useful for drills).
//!
//! config: `{ veto = [] }`, e.g. `{ veto = ["pre-db-restore"] }`

use rcbackup_guest::{export_policy, Event, Hooks};
use serde::Deserialize;

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
struct Config {
    veto: Vec<String>,
}

struct EventLog;

impl Hooks for EventLog {
    fn on_event(e: Event) -> Result<(), String> {
        let config: Config = rcbackup_guest::config()?;
        let line = serde_json::json!({
            "event": e.kind.as_str(),
            "database": e.database,
            "tenant": e.tenant,
            "backup": e.backup,
            "size": e.size,
            "sha256": e.sha256,
            "duration_ms": e.duration_ms,
            "error": e.error,
            "time": e.now,
        });
        rcbackup_guest::log::info(&line.to_string());
        if config.veto.iter().any(|v| v == e.kind.as_str()) {
            return Err(format!(
                "event-log is configured to veto {}",
                e.kind.as_str()
            ));
        }
        Ok(())
    }
}

export_policy!(EventLog: hooks);
