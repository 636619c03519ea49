//! Write an rcbackup policy in Rust: implement [`Policy`] for a type, call
//! [`export_policy!`] once, and build with
//! `cargo build --target wasm32-wasip2 --release`.
//!
//! A component built with this crate exports every role of the contract
//! (`wit/policy.wit`); the roles a type does not implement answer with the
//! trait's defaults (an error for retention and naming, "ask the user" for
//! restore approval, "no objection" for events). The host only calls the role
//! the config names the module for.

#[doc(hidden)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "wit",
        world: "policy",
        pub_export_macro: true,
        export_macro_name: "__export_world",
        default_bindings_module: "rcbackup_guest::bindings",
    });
}

pub use bindings::exports::rcbackup::policy::hooks::{Event, EventKind};
pub use bindings::exports::rcbackup::policy::naming::NamingContext;
pub use bindings::exports::rcbackup::policy::restore_approval::{
    Approval, MediaRestoreRequest, RestoreRequest,
};
pub use bindings::exports::rcbackup::policy::retention::Decision;
pub use bindings::rcbackup::policy::types::{Backup, Timestamp};

/// One type implements the roles it plays; the others keep these defaults.
pub trait Policy {
    /// One decision per backup of `series` (one database), any order.
    fn retention(series: Vec<Backup>, now: Timestamp) -> Result<Vec<Decision>, String> {
        let _ = (series, now);
        Err("this module does not implement the retention role".into())
    }

    /// The file name of a new backup.
    fn naming(context: NamingContext) -> Result<String, String> {
        let _ = context;
        Err("this module does not implement the naming role".into())
    }

    fn approve_restore(request: RestoreRequest) -> Approval {
        let _ = request;
        Approval::AskUser
    }

    fn approve_media_restore(request: MediaRestoreRequest) -> Approval {
        let _ = request;
        Approval::AskUser
    }

    /// `Err(reason)` on a "pre" event vetoes the operation.
    fn on_event(event: Event) -> Result<(), String> {
        let _ = event;
        Ok(())
    }
}

/// Logging into rcbackup's own log, tagged with the module's name.
pub mod log {
    use crate::bindings::rcbackup::policy::host::{self, Level};

    pub fn debug(message: &str) {
        host::log(Level::Debug, message)
    }
    pub fn info(message: &str) {
        host::log(Level::Info, message)
    }
    pub fn warn(message: &str) {
        host::log(Level::Warn, message)
    }
    pub fn error(message: &str) {
        host::log(Level::Error, message)
    }
}

/// Calendar arithmetic for the UTC timestamps the host hands over, so that
/// policies need no date library.
pub mod time {
    /// (year, month 1-12, day 1-31) of a count of days since 1970-01-01
    /// (Howard Hinnant's civil_from_days).
    pub fn civil(days: i64) -> (i64, u32, u32) {
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z.rem_euclid(146_097);
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
        let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
        (yoe + era * 400 + i64::from(m <= 2), m, d)
    }

    #[cfg(test)]
    mod tests {
        #[test]
        fn civil_dates() {
            assert_eq!(super::civil(0), (1970, 1, 1));
            assert_eq!(super::civil(19_723), (2024, 1, 1));
            assert_eq!(super::civil(11_016), (2000, 2, 29));
        }
    }
}

/// The policy's `config` table from the rcbackup config file, read into `T`.
pub fn config<T: serde::de::DeserializeOwned>() -> Result<T, String> {
    let text = bindings::rcbackup::policy::host::config();
    serde_json::from_str(&text).map_err(|e| format!("bad policy config {text}: {e}"))
}

/// The raw config JSON, for policies that read it themselves.
pub fn config_json() -> String {
    bindings::rcbackup::policy::host::config()
}

impl EventKind {
    /// The name used in the config's `events` list, e.g. "pre-db-backup".
    pub fn as_str(&self) -> &'static str {
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
}

/// Exports `$ty`, which implements [`Policy`], as the component's policy.
#[macro_export]
macro_rules! export_policy {
    ($ty:ident) => {
        const _: () = {
            use $crate::bindings::exports::rcbackup::policy as __roles;
            impl __roles::retention::Guest for $ty {
                fn decide(
                    series: ::std::vec::Vec<$crate::Backup>,
                    now: $crate::Timestamp,
                ) -> ::std::result::Result<::std::vec::Vec<$crate::Decision>, ::std::string::String>
                {
                    <$ty as $crate::Policy>::retention(series, now)
                }
            }
            impl __roles::naming::Guest for $ty {
                fn name(
                    context: $crate::NamingContext,
                ) -> ::std::result::Result<::std::string::String, ::std::string::String> {
                    <$ty as $crate::Policy>::naming(context)
                }
            }
            impl __roles::restore_approval::Guest for $ty {
                fn approve(request: $crate::RestoreRequest) -> $crate::Approval {
                    <$ty as $crate::Policy>::approve_restore(request)
                }
                fn approve_media(request: $crate::MediaRestoreRequest) -> $crate::Approval {
                    <$ty as $crate::Policy>::approve_media_restore(request)
                }
            }
            impl __roles::hooks::Guest for $ty {
                fn on_event(
                    event: $crate::Event,
                ) -> ::std::result::Result<(), ::std::string::String> {
                    <$ty as $crate::Policy>::on_event(event)
                }
            }
    $crate::bindings::__export_world!($ty with_types_in $crate::bindings);
        };
    };
}
