//! Write an rcbackup policy in Rust: implement the trait of each role your
//! type plays ([`Retention`], [`Naming`], [`RestoreApproval`], [`Hooks`]),
//! name those roles once with [`export_policy!`], and build with
//! `cargo build --target wasm32-wasip2 --release`. A hook may make HTTP
//! requests with [`http`] (the `http-hook` world).
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
    /// The imports of the `http-hook` world beyond those of `hook`:
    /// `wasi:http/outgoing-handler` and the WASI types it uses (http, io,
    /// clocks), generated here only, for [`crate::http`]. A world of
    /// imports alone: a hook that calls [`crate::http`] exports the hooks
    /// role as every hook does (`export_policy!(MyHook: hooks)`), and so
    /// becomes a component of the `http-hook` world; a policy that does not
    /// call it imports none of this. (This world's description is in every
    /// module built with the SDK, so their `wasi:io` imports are named at
    /// its version, 0.2.12, the one rcbackup's wasmtime provides, rather
    /// than at the version of Rust's std.)
    pub mod http {
        wit_bindgen::generate!({
            path: "wit",
            inline: "
                package rcbackup:guest-sdk;
                world http-client {
                    import wasi:http/outgoing-handler@0.2.12;
                }
            ",
            world: "rcbackup:guest-sdk/http-client",
            generate_all,
        });
    }
}

pub mod http;

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

    /// A timestamp (seconds since the epoch, UTC) in RFC 3339:
    /// `2026-03-01T02:00:00Z`.
    pub fn rfc3339(timestamp: i64) -> String {
        let (y, m, d) = civil(timestamp.div_euclid(86_400));
        let s = timestamp.rem_euclid(86_400);
        format!(
            "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
            s / 3600,
            s / 60 % 60,
            s % 60
        )
    }

    #[cfg(test)]
    mod tests {
        #[test]
        fn civil_dates() {
            assert_eq!(super::civil(0), (1970, 1, 1));
            assert_eq!(super::civil(19_723), (2024, 1, 1));
            assert_eq!(super::civil(11_016), (2000, 2, 29));
            assert_eq!(super::rfc3339(0), "1970-01-01T00:00:00Z");
            assert_eq!(super::rfc3339(1_772_330_461), "2026-03-01T02:01:01Z");
            assert_eq!(super::rfc3339(-1), "1969-12-31T23:59:59Z");
        }
    }
}

/// Numbers and text as people read them, for hooks that write messages.
pub mod text {
    /// A size in bytes: `512 B`, `12.3 MiB`.
    pub fn size(bytes: u64) -> String {
        const UNITS: [&str; 6] = ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
        if bytes < 1024 {
            return format!("{bytes} B");
        }
        let mut value = bytes as f64 / 1024.0;
        let mut unit = 0;
        while value >= 1024.0 && unit + 1 < UNITS.len() {
            value /= 1024.0;
            unit += 1;
        }
        format!("{value:.1} {}", UNITS[unit])
    }

    /// A duration in milliseconds: `850 ms`, `4.2 s`, `3 min 12 s`,
    /// `2 h 5 min`.
    pub fn duration(ms: u64) -> String {
        let s = ms / 1000;
        match ms {
            0..=999 => format!("{ms} ms"),
            1_000..=59_999 => format!("{}.{} s", s, ms % 1000 / 100),
            60_000..=3_599_999 => format!("{} min {} s", s / 60, s % 60),
            _ => format!("{} h {} min", s / 3600, s / 60 % 60),
        }
    }

    /// The first `max` bytes of `text` at most, cut at a character
    /// boundary.
    pub fn truncate(text: &str, max: usize) -> &str {
        if text.len() <= max {
            return text;
        }
        let mut end = max;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        &text[..end]
    }

    #[cfg(test)]
    mod tests {
        #[test]
        fn sizes_durations_and_cuts() {
            assert_eq!(super::size(512), "512 B");
            assert_eq!(super::size(12_897_485), "12.3 MiB");
            assert_eq!(super::size(3 << 30), "3.0 GiB");
            assert_eq!(super::size(1536), "1.5 KiB");
            assert_eq!(super::size(u64::MAX), "16.0 EiB");
            assert_eq!(super::duration(850), "850 ms");
            assert_eq!(super::duration(4_230), "4.2 s");
            assert_eq!(super::duration(59_999), "59.9 s");
            assert_eq!(super::duration(192_000), "3 min 12 s");
            assert_eq!(super::duration(7_500_000), "2 h 5 min");
            assert_eq!(super::truncate("abc", 10), "abc");
            assert_eq!(super::truncate("caf\u{e9}", 4), "caf");
        }
    }
}

/// The policy's `config` table from the rcbackup config file, read into `T`.
///
/// The error names the key at fault and what was expected, never a value
/// (a policy's config may hold a token or a key): `config key
/// `webhook_token` is not a key of this policy; its keys are: veto`,
/// `config key `keep`: found a string, expected a whole number`.
pub fn config<T: serde::de::DeserializeOwned>() -> Result<T, String> {
    parse_config(&bindings::retention::rcbackup::policy::host::config())
}

/// [`config`] on a given JSON text (for tests, and policies that read the
/// config themselves).
pub fn parse_config<T: serde::de::DeserializeOwned>(json: &str) -> Result<T, String> {
    let mut de = serde_json::Deserializer::from_str(json);
    serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path: Vec<String> = e.path().iter().map(|s| s.to_string()).collect();
        let message = e.inner().to_string();
        config_error(json, &path, &message)
    })
}

/// A config error in words, without the values of the config: the known
/// forms of serde's messages are rewritten, any other message has every
/// value of the config cut out.
fn config_error(json: &str, path: &[String], message: &str) -> String {
    // serde_json appends the position in the JSON text, which means nothing
    // to someone who wrote TOML.
    let message = match message.rfind(" at line ") {
        Some(i) => &message[..i],
        None => message,
    };
    let key = |field: Option<&str>| {
        let mut all: Vec<&str> = path.iter().map(String::as_str).collect();
        // The path may already end with the field.
        if let Some(f) = field {
            if all.last() != Some(&f) {
                all.push(f);
            }
        }
        let mut out = String::new();
        for part in all {
            if !out.is_empty() && !part.starts_with('[') {
                out.push('.');
            }
            out.push_str(part);
        }
        out
    };
    if let Some(rest) = message.strip_prefix("unknown field ") {
        let field = backticked(rest).next().unwrap_or("?");
        let known: Vec<&str> = rest
            .split_once("expected")
            .map(|(_, k)| backticked(k).collect())
            .unwrap_or_default();
        let keys = if known.is_empty() {
            "it takes no keys here".to_string()
        } else {
            format!("its keys here are: {}", known.join(", "))
        };
        return format!(
            "config key `{}` is not a key of this policy; {keys}",
            key(Some(field))
        );
    }
    if let Some(rest) = message.strip_prefix("missing field ") {
        let field = backticked(rest).next().unwrap_or("?");
        return format!("config key `{}` is required and missing", key(Some(field)));
    }
    if let Some(rest) = message.strip_prefix("duplicate field ") {
        let field = backticked(rest).next().unwrap_or("?");
        return format!("config key `{}` is given twice", key(Some(field)));
    }
    let at = if path.is_empty() {
        "the config".to_string()
    } else {
        format!("config key `{}`", key(None))
    };
    for (prefix, how) in [
        ("invalid type: ", ""),
        ("invalid value: ", " that is not valid"),
    ] {
        if let Some(rest) = message.strip_prefix(prefix) {
            // The expected part comes from the policy's code, the found part
            // from the config: only its kind is said.
            let (found, expected) = rest.rsplit_once(", expected ").unwrap_or((rest, "?"));
            return format!(
                "{at}: found {}{how}, expected {}",
                kind_of(found),
                in_words(expected)
            );
        }
    }
    if let Some(rest) = message.strip_prefix("unknown variant ") {
        let known: Vec<&str> = rest
            .split_once("expected")
            .map(|(_, k)| backticked(k).collect())
            .unwrap_or_default();
        return format!(
            "{at}: not one of the accepted values ({})",
            known.join(", ")
        );
    }
    if message.starts_with("invalid length ") {
        return format!("{at}: {message}");
    }
    // Any other message (a policy's own check, say) may quote a value: cut
    // out every value of the config.
    format!("{at}: {}", scrub(json, message))
}

/// The `backticked` names in a serde message.
fn backticked(text: &str) -> impl Iterator<Item = &str> {
    text.split('`').skip(1).step_by(2)
}

/// What serde found, by kind only: `string "..."` is "a string".
fn kind_of(found: &str) -> &'static str {
    match found.split(' ').next().unwrap_or("") {
        "string" => "a string",
        "integer" => "an integer",
        "floating" => "a number with a fraction",
        "boolean" => "true or false",
        "char" => "a character",
        "sequence" => "a list",
        "map" => "a table",
        "unit" | "null" => "nothing",
        _ => "a value of another kind",
    }
}

/// What a policy expects, without Rust's type names.
fn in_words(expected: &str) -> String {
    match expected {
        "u8" | "u16" | "u32" | "u64" | "u128" | "usize" => "a whole number, 0 or more".into(),
        "i8" | "i16" | "i32" | "i64" | "i128" | "isize" => "a whole number".into(),
        "f32" | "f64" => "a number".into(),
        "a sequence" => "a list".into(),
        "a boolean" => "true or false".into(),
        e if e.starts_with("struct ") || e == "a map" => "a table".into(),
        e => e.to_string(),
    }
}

/// `message` with every string (of 3 bytes or more) and number of the
/// config `json` replaced by `…`.
fn scrub(json: &str, message: &str) -> String {
    fn values(v: &serde_json::Value, out: &mut Vec<String>) {
        match v {
            serde_json::Value::String(s) if s.len() >= 3 => out.push(s.clone()),
            serde_json::Value::Number(n) => out.push(n.to_string()),
            serde_json::Value::Array(a) => a.iter().for_each(|v| values(v, out)),
            serde_json::Value::Object(o) => o.values().for_each(|v| values(v, out)),
            _ => {}
        }
    }
    let mut found = Vec::new();
    if let Ok(v) = serde_json::from_str::<serde_json::Value>(json) {
        values(&v, &mut found);
    }
    // Longest first, so that a value inside another is not left behind.
    found.sort_by_key(|s| std::cmp::Reverse(s.len()));
    let mut out = message.to_string();
    for v in found {
        out = out.replace(&v, "…");
    }
    out
}

/// The raw config JSON, for policies that read it themselves.
pub fn config_json() -> String {
    bindings::retention::rcbackup::policy::host::config()
}

/// Where an event stands in its operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// `pre-...`: about to start (an error vetoes it).
    Pre,
    /// `post-...`: done.
    Post,
    /// `...-failed`: failed.
    Failed,
}

/// For a hook that only notifies (a ping, a chat message): its failure on
/// a `pre-` event is logged as a warning and answered `Ok`, since an error
/// there would veto the operation whatever `on_error` says, unless `veto`
/// asks for that. Other events' failures are returned for `on_error`.
pub fn notify_outcome(
    kind: EventKind,
    veto: bool,
    outcome: Result<(), String>,
) -> Result<(), String> {
    match outcome {
        Err(why) if kind.phase() == Phase::Pre && !veto => {
            log::warn(&format!(
                "{why} (not a veto: set veto = true in the config to stop the operation when this fails)"
            ));
            Ok(())
        }
        other => other,
    }
}

impl EventKind {
    /// Pre, post or failed.
    pub fn phase(&self) -> Phase {
        use EventKind::*;
        match self {
            PreDbBackup | PreDbRestore | PreMediaBackup | PreMediaRestore => Phase::Pre,
            PostDbBackup | PostDbRestore | PostMediaBackup | PostMediaRestore => Phase::Post,
            DbBackupFailed | DbRestoreFailed | MediaBackupFailed | MediaRestoreFailed => {
                Phase::Failed
            }
        }
    }

    /// An event of a media backup or restore (it has no database).
    pub fn is_media(&self) -> bool {
        self.as_str().contains("media")
    }

    /// An event of a restore (database or media).
    pub fn is_restore(&self) -> bool {
        self.as_str().contains("restore")
    }

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
///
/// A hook that makes HTTP requests ([`http`]) is exported as `hooks` too:
/// its component imports `wasi:http/outgoing-handler` (the `http-hook`
/// world), and rcbackup runs it only as a `[[hooks]]` entry that grants
/// `allow_http`.
#[macro_export]
macro_rules! export_policy {
    ($ty:ident : $($role:ident),+ $(,)?) => {
        $( $crate::__export_role!($ty, $role); )+
        // Off wasm32 (a policy's unit tests on the build machine) nothing
        // is exported: the export names are not valid symbols there. The
        // type is still used, for the dead-code lint.
        #[cfg(not(target_arch = "wasm32"))]
        const _: fn() -> ::core::any::TypeId = ::core::any::TypeId::of::<$ty>;
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
        #[cfg(target_arch = "wasm32")]
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
        #[cfg(target_arch = "wasm32")]
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
        #[cfg(target_arch = "wasm32")]
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
        #[cfg(target_arch = "wasm32")]
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

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Config {
        #[serde(default)]
        keep: u32,
        #[serde(default)]
        veto: Vec<String>,
        window: Option<Window>,
        #[serde(default)]
        mode: Option<Mode>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Window {
        start: String,
    }

    #[derive(Debug, Deserialize)]
    #[serde(rename_all = "lowercase")]
    enum Mode {
        Fast,
        Slow,
    }

    fn err(json: &str) -> String {
        let e = super::parse_config::<Config>(json).unwrap_err();
        assert!(!e.contains("Hunter2"), "a value shown: {e}");
        assert!(!e.contains("line 1"), "a JSON position: {e}");
        e
    }

    /// Outside review of issue 8, item 2: the config JSON (secrets
    /// included) was echoed whole in every config error.
    #[test]
    fn config_errors_name_the_key_and_show_no_value() {
        let e = err(r#"{"veto":[],"webhook_token":"Hunter2Hook"}"#);
        assert!(
            e.contains("config key `webhook_token` is not a key of this policy")
                && e.contains("keep, veto, window, mode"),
            "{e}"
        );
        let e = err(r#"{"keep":"Hunter2Keep"}"#);
        assert_eq!(
            e,
            "config key `keep`: found a string, expected a whole number, 0 or more"
        );
        let e = err(r#"{"keep":-1414141}"#);
        assert!(
            e.contains("`keep`: found an integer") && !e.contains("1414141"),
            "{e}"
        );
        let e = err(r#"{"window":{"start":"02:00","token":"Hunter2"}}"#);
        assert!(e.contains("config key `window.token`"), "{e}");
        let e = err(r#"{"window":{}}"#);
        assert!(e.contains("config key `window.start` is required"), "{e}");
        let e = err(r#"{"veto":["a",{"x":"Hunter2"}]}"#);
        assert!(e.contains("config key `veto[1]`: found a table"), "{e}");
        let e = err(r#"{"mode":"Hunter2"}"#);
        assert!(
            e.contains("`mode`: not one of the accepted values (fast, slow)"),
            "{e}"
        );
        let e = err(r#"{"veto":"Hunter2, expected a list"}"#);
        assert!(e.contains("`veto`: found a string, expected a list"), "{e}");
        assert_eq!(
            super::scrub(r#"{"a":"Hunter2","b":12345}"#, "x Hunter2 12345"),
            "x … …"
        );
    }
}
