//! Write an rcbackup policy in Rust: implement the trait of each role your
//! type plays ([`Retention`], [`Naming`], [`RestoreApproval`], [`Hooks`]),
//! name those roles once with [`export_policy!`], and build with
//! `cargo build --target wasm32-wasip2 --release`.
//!
//! A component built with this crate exports exactly the roles named in
//! `export_policy!` (the interfaces of `wit/policy.wit`), so rcbackup can
//! refuse, when its config loads, a module configured for a role it does not
//! play.

/// The guest side of `wit/policy.wit`: one world per role, so that each role
/// is exported only by the modules that implement it. The shared types and
/// the host interface are generated once, with the retention world, and
/// reused by the others.
#[doc(hidden)]
pub mod bindings {
    pub mod retention {
        wit_bindgen::generate!({
            path: "wit",
            world: "retention-policy",
            pub_export_macro: true,
            export_macro_name: "export",
            default_bindings_module: "rcbackup_guest::bindings::retention",
        });
    }
    pub mod naming {
        wit_bindgen::generate!({
            path: "wit",
            world: "naming-policy",
            with: {
                "rcbackup:policy/types@0.1.0": crate::bindings::retention::rcbackup::policy::types,
                "rcbackup:policy/host@0.1.0": crate::bindings::retention::rcbackup::policy::host,
            },
            pub_export_macro: true,
            export_macro_name: "export",
            default_bindings_module: "rcbackup_guest::bindings::naming",
        });
    }
    pub mod restore_approval {
        wit_bindgen::generate!({
            path: "wit",
            world: "restore-approval-policy",
            with: {
                "rcbackup:policy/types@0.1.0": crate::bindings::retention::rcbackup::policy::types,
                "rcbackup:policy/host@0.1.0": crate::bindings::retention::rcbackup::policy::host,
            },
            pub_export_macro: true,
            export_macro_name: "export",
            default_bindings_module: "rcbackup_guest::bindings::restore_approval",
        });
    }
    pub mod hooks {
        wit_bindgen::generate!({
            path: "wit",
            world: "hook",
            with: {
                "rcbackup:policy/types@0.1.0": crate::bindings::retention::rcbackup::policy::types,
                "rcbackup:policy/host@0.1.0": crate::bindings::retention::rcbackup::policy::host,
            },
            pub_export_macro: true,
            export_macro_name: "export",
            default_bindings_module: "rcbackup_guest::bindings::hooks",
        });
    }
}

pub use bindings::hooks::exports::rcbackup::policy::hooks::{Event, EventKind};
pub use bindings::naming::exports::rcbackup::policy::naming::NamingContext;
pub use bindings::restore_approval::exports::rcbackup::policy::restore_approval::{
    Approval, MediaRestoreRequest, RestoreRequest,
};
pub use bindings::retention::exports::rcbackup::policy::retention::Decision;
pub use bindings::retention::rcbackup::policy::types::{Backup, Timestamp};

/// The retention role: which backups of one series to keep.
pub trait Retention {
    /// One decision per backup of `series` (one database, newest first), any
    /// order.
    fn retention(series: Vec<Backup>, now: Timestamp) -> Result<Vec<Decision>, String>;
}

/// The naming role: the file name of a new backup.
pub trait Naming {
    fn naming(context: NamingContext) -> Result<String, String>;
}

/// The restore-approval role: allow, ask the user, or deny a restore.
pub trait RestoreApproval {
    /// A `dbrestore`.
    fn approve_restore(request: RestoreRequest) -> Approval;

    /// A `mediarestore`; by default the built-in rule (ask at the prompt
    /// unless `--noinput`).
    fn approve_media_restore(request: MediaRestoreRequest) -> Approval {
        let _ = request;
        Approval::AskUser
    }
}

/// The hooks role: every lifecycle event.
pub trait Hooks {
    /// `Err(reason)` on a "pre" event vetoes the operation.
    fn on_event(event: Event) -> Result<(), String>;
}

/// Logging into rcbackup's own log, tagged with the module's name.
pub mod log {
    use crate::bindings::retention::rcbackup::policy::host::{self, Level};

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
    let text = bindings::retention::rcbackup::policy::host::config();
    serde_json::from_str(&text).map_err(|e| format!("bad policy config {text}: {e}"))
}

/// The raw config JSON, for policies that read it themselves.
pub fn config_json() -> String {
    bindings::retention::rcbackup::policy::host::config()
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

/// Exports `$ty` in the roles named after the colon, and in no other:
/// `export_policy!(KeepLast: retention);`,
/// `export_policy!(Guard: restore_approval, hooks);`. Each role needs the
/// type to implement its trait ([`Retention`], [`Naming`],
/// [`RestoreApproval`], [`Hooks`]). rcbackup refuses a module configured for
/// a role it does not export, when the config loads.
#[macro_export]
macro_rules! export_policy {
    ($ty:ident : $($role:ident),+ $(,)?) => {
        $( $crate::__export_role!($ty, $role); )+
    };
    ($ty:ident) => {
        ::core::compile_error!(
            "name the roles the type implements: `export_policy!(MyPolicy: retention)`; \
             roles: retention, naming, restore_approval, hooks"
        );
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __export_role {
    ($ty:ident, retention) => {
        const _: () = {
            impl $crate::bindings::retention::exports::rcbackup::policy::retention::Guest for $ty {
                fn decide(
                    series: ::std::vec::Vec<$crate::Backup>,
                    now: $crate::Timestamp,
                ) -> ::std::result::Result<::std::vec::Vec<$crate::Decision>, ::std::string::String>
                {
                    <$ty as $crate::Retention>::retention(series, now)
                }
            }
            $crate::bindings::retention::export!($ty with_types_in $crate::bindings::retention);
        };
    };
    ($ty:ident, naming) => {
        const _: () = {
            impl $crate::bindings::naming::exports::rcbackup::policy::naming::Guest for $ty {
                fn name(
                    context: $crate::NamingContext,
                ) -> ::std::result::Result<::std::string::String, ::std::string::String> {
                    <$ty as $crate::Naming>::naming(context)
                }
            }
            $crate::bindings::naming::export!($ty with_types_in $crate::bindings::naming);
        };
    };
    ($ty:ident, restore_approval) => {
        const _: () = {
            impl $crate::bindings::restore_approval::exports::rcbackup::policy::restore_approval::Guest
                for $ty
            {
                fn approve(request: $crate::RestoreRequest) -> $crate::Approval {
                    <$ty as $crate::RestoreApproval>::approve_restore(request)
                }
                fn approve_media(request: $crate::MediaRestoreRequest) -> $crate::Approval {
                    <$ty as $crate::RestoreApproval>::approve_media_restore(request)
                }
            }
            $crate::bindings::restore_approval::export!(
                $ty with_types_in $crate::bindings::restore_approval
            );
        };
    };
    ($ty:ident, hooks) => {
        const _: () = {
            impl $crate::bindings::hooks::exports::rcbackup::policy::hooks::Guest for $ty {
                fn on_event(
                    event: $crate::Event,
                ) -> ::std::result::Result<(), ::std::string::String> {
                    <$ty as $crate::Hooks>::on_event(event)
                }
            }
            $crate::bindings::hooks::export!($ty with_types_in $crate::bindings::hooks);
        };
    };
    ($ty:ident, $other:ident) => {
        ::core::compile_error!(::core::concat!(
            "`",
            ::core::stringify!($other),
            "` is not a role; use retention, naming, restore_approval or hooks"
        ));
    };
}
