//! An example hook: freezes databases. Backups and restores of a database
//! listed in `frozen` are vetoed with the configured reason; every finished
//! operation is summarised in the log.
//!
//! ```toml
//! [[hooks]]
//! module = "freeze_hook.wasm"
//! events = ["pre-db-backup", "pre-db-restore", "post-db-backup", "post-db-restore"]
//! on_error = "fail"
//! config = { frozen = ["legacy"], reason = "legacy is read-only during the migration" }
//! ```

use rcbackup_guest::{export_policy, Event, EventKind, Hooks};
use serde::Deserialize;

#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
struct Config {
    frozen: Vec<String>,
    reason: Option<String>,
}

struct FreezeHook;

impl Hooks for FreezeHook {
    fn on_event(event: Event) -> Result<(), String> {
        let config: Config = rcbackup_guest::config()?;
        let database = event.database.clone().unwrap_or_default();
        match event.kind {
            EventKind::PreDbBackup | EventKind::PreDbRestore
                if config.frozen.contains(&database) =>
            {
                Err(config
                    .reason
                    .unwrap_or_else(|| format!("`{database}` is frozen")))
            }
            EventKind::PostDbBackup | EventKind::PostDbRestore => {
                rcbackup_guest::log::info(&format!(
                    "{} of `{database}` done: {} bytes in {} ms",
                    event.kind.as_str(),
                    event.size.unwrap_or(0),
                    event.duration_ms.unwrap_or(0)
                ));
                Ok(())
            }
            _ => Ok(()),
        }
    }
}

export_policy!(FreezeHook: hooks);
