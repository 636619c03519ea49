//! The decisions that differ between users and tenants: naming, retention,
//! restore approval, and lifecycle events.
//!
//! Commands call only this facade. Without any configured policy it gives
//! the built-in behaviour (the filename template, keep the newest N, the
//! y/N prompt, no hooks). The WebAssembly runtime plugs in behind it.

pub mod bindings;
pub mod cache;
pub mod config;
pub mod http;
pub mod limits;
pub mod runtime;
pub mod text;

use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, Result};
use chrono::{DateTime, Utc};

use self::bindings::{hooks, naming, restore_approval, types};
use self::config::{HookSpec, ModuleSpec, OnError, PolicyConfig};
use self::runtime::{Grants, GuestFailure, Linking, LoadedModule, Role, Runtime};
use self::text::escape;

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
    pub const ALL: [EventKind; 12] = [
        EventKind::PreDbBackup,
        EventKind::PostDbBackup,
        EventKind::DbBackupFailed,
        EventKind::PreDbRestore,
        EventKind::PostDbRestore,
        EventKind::DbRestoreFailed,
        EventKind::PreMediaBackup,
        EventKind::PostMediaBackup,
        EventKind::MediaBackupFailed,
        EventKind::PreMediaRestore,
        EventKind::PostMediaRestore,
        EventKind::MediaRestoreFailed,
    ];

    pub fn parse(name: &str) -> Option<EventKind> {
        EventKind::ALL.into_iter().find(|k| k.as_str() == name)
    }

    fn to_guest(self) -> hooks::EventKind {
        use hooks::EventKind as G;
        match self {
            EventKind::PreDbBackup => G::PreDbBackup,
            EventKind::PostDbBackup => G::PostDbBackup,
            EventKind::DbBackupFailed => G::DbBackupFailed,
            EventKind::PreDbRestore => G::PreDbRestore,
            EventKind::PostDbRestore => G::PostDbRestore,
            EventKind::DbRestoreFailed => G::DbRestoreFailed,
            EventKind::PreMediaBackup => G::PreMediaBackup,
            EventKind::PostMediaBackup => G::PostMediaBackup,
            EventKind::MediaBackupFailed => G::MediaBackupFailed,
            EventKind::PreMediaRestore => G::PreMediaRestore,
            EventKind::PostMediaRestore => G::PostMediaRestore,
            EventKind::MediaRestoreFailed => G::MediaRestoreFailed,
        }
    }

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

/// A loaded module with the config and limits it runs under.
#[derive(Clone)]
pub struct GuestPolicy {
    pub module: Arc<LoadedModule>,
    pub config_json: String,
    pub limits: limits::Limits,
    /// What HTTP it is granted, its secrets read (hooks only).
    pub http: Option<Arc<http::HttpGrant>>,
    /// Why its calls cannot be made (a secret's variable is not set): each
    /// call fails with this, as `on_error` says, while commands that send
    /// no events (listbackups, verify) go on.
    pub unready: Option<String>,
}

impl GuestPolicy {
    /// Loads the module and checks that it plays `role`; `key` is where the
    /// config names it (`policies.retention`, `hooks[0]`), for the error.
    pub fn load(spec: &ModuleSpec, role: Role, key: &str) -> Result<GuestPolicy> {
        let in_config = |e: anyhow::Error| e.context(key.to_string());
        let linking = match spec.http {
            Some(_) => Linking::Http,
            None => Linking::Plain,
        };
        let module = Runtime::global()?
            .load(&spec.path, linking)
            .map_err(in_config)?;
        require_role(&module, role).map_err(in_config)?;
        let (http, unready) = match spec
            .http
            .as_ref()
            .map(|h| http::HttpGrant::ready(h, spec.limits.http))
        {
            None => (None, None),
            Some(Ok(grant)) => (Some(Arc::new(grant)), None),
            Some(Err(why)) => {
                tracing::warn!("{key}: {why}; each call of this hook fails until it is set");
                (None, Some(format!("{key}: {why}")))
            }
        };
        Ok(GuestPolicy {
            module: Arc::new(module),
            config_json: spec.config_json.clone(),
            limits: spec.limits,
            http,
            unready,
        })
    }
}

impl GuestPolicy {
    /// A module with a config and the default limits, outside any config
    /// file (benchmarks, tests, `policy test`).
    pub fn open(path: &std::path::Path, config_json: &str) -> Result<GuestPolicy> {
        Ok(GuestPolicy {
            module: Arc::new(load_module(path)?),
            config_json: config_json.to_string(),
            limits: limits::Limits::default(),
            http: None,
            unready: None,
        })
    }
}

struct Hook {
    policy: GuestPolicy,
    events: Option<Vec<EventKind>>,
    on_error: OnError,
}

/// The set of policies in force for one run.
#[derive(Default)]
pub struct Policies {
    retention: Option<GuestPolicy>,
    naming: Option<GuestPolicy>,
    restore_approval: Option<GuestPolicy>,
    hooks: Vec<Hook>,
    /// The tenant these policies decide for (`None`: the top level). Every
    /// request and event they pass to a guest carries it, whatever the
    /// caller filled in: one place, so no command can forget it.
    tenant: Option<String>,
}

impl std::fmt::Debug for Policies {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let name = |p: &Option<GuestPolicy>| p.as_ref().map(|p| p.module.name.clone());
        f.debug_struct("Policies")
            .field("retention", &name(&self.retention))
            .field("naming", &name(&self.naming))
            .field("restore_approval", &name(&self.restore_approval))
            .field("hooks", &self.hooks.len())
            .finish()
    }
}

/// A series as guests get it: newest first at full precision, since the
/// guest's timestamps show whole seconds only.
pub fn guest_series(series: &[BackupRecord]) -> Vec<types::Backup> {
    let mut sorted = series.to_vec();
    retention::sort_newest_first(&mut sorted);
    sorted.iter().map(to_guest_backup).collect()
}

pub fn to_guest_backup(b: &BackupRecord) -> types::Backup {
    types::Backup {
        name: b.name.clone(),
        database: b.database.clone(),
        tenant: b.tenant.clone(),
        engine: b.engine.as_str().to_string(),
        created: b.created.timestamp(),
        size: b.size,
        sha256: b.sha256.clone(),
    }
}

impl Policies {
    /// Built-in behaviour only.
    pub fn builtin() -> Policies {
        Policies::default()
    }

    /// Built-in behaviour except for retention.
    pub fn with_retention(policy: GuestPolicy) -> Policies {
        Policies {
            retention: Some(policy),
            ..Policies::default()
        }
    }

    /// The same policies deciding for `tenant`: every request and event
    /// they hand a guest names it.
    pub fn for_tenant(mut self, tenant: Option<String>) -> Policies {
        self.tenant = tenant;
        self
    }

    /// Loads every configured module (compiling it, or reading the cache), so
    /// that a broken module stops a run before anything is done.
    pub fn from_config(config: &PolicyConfig) -> Result<Policies> {
        if config.is_empty() {
            return Ok(Policies::builtin());
        }
        let one = |spec: &Option<ModuleSpec>, role: Role, key: &str| {
            spec.as_ref()
                .map(|s| GuestPolicy::load(s, role, key))
                .transpose()
        };
        let mut hooks = Vec::new();
        for (
            i,
            HookSpec {
                module,
                events,
                on_error,
            },
        ) in config.hooks.iter().enumerate()
        {
            hooks.push(Hook {
                policy: GuestPolicy::load(module, Role::Hook, &format!("hooks[{i}]"))?,
                events: events.clone(),
                on_error: *on_error,
            });
        }
        Ok(Policies {
            retention: one(&config.retention, Role::Retention, "policies.retention")?,
            naming: one(&config.naming, Role::Naming, "policies.naming")?,
            restore_approval: one(
                &config.restore_approval,
                Role::RestoreApproval,
                "policies.restore_approval",
            )?,
            hooks,
            tenant: None,
        })
    }

    /// The file name for a new backup. The caller checks the result.
    pub fn name_backup(&self, ctx: &NamingContext) -> Result<String> {
        let Some(p) = &self.naming else {
            return Ok(ctx.default_name.clone());
        };
        let guest_ctx = naming::NamingContext {
            database: ctx.database.clone(),
            engine: ctx.engine.clone(),
            tenant: self.tenant.clone().or_else(|| ctx.tenant.clone()),
            now: ctx.now.timestamp(),
            extension: ctx.extension.clone(),
            default_name: ctx.default_name.clone(),
        };
        let name = p.module.naming(&p.config_json, &p.limits, &guest_ctx)?;
        Ok(checked_name(name).map_err(|f| p.module.failed(Role::Naming, f))?)
    }

    /// The naming policy's module, if backup names come from one.
    pub fn naming_module(&self) -> Option<&str> {
        self.naming.as_ref().map(|p| p.module.name.as_str())
    }

    /// The retention policy's module, if retention comes from one.
    pub fn retention_module(&self) -> Option<&str> {
        self.retention.as_ref().map(|p| p.module.name.as_str())
    }

    /// Keep or delete for each backup of one series; `keep` is db_cleanup_keep.
    pub fn retention(
        &self,
        series: &[BackupRecord],
        now: DateTime<Utc>,
        keep: usize,
    ) -> Result<Vec<Decision>> {
        let Some(p) = &self.retention else {
            return Ok(retention::keep_last(series, keep));
        };
        let mut input = guest_series(series);
        for b in &mut input {
            if b.tenant.is_none() {
                b.tenant = self.tenant.clone();
            }
        }
        let answer = p
            .module
            .retention(&p.config_json, &p.limits, &input, now.timestamp())?;
        Ok(checked_decisions(series, answer).map_err(|f| p.module.failed(Role::Retention, f))?)
    }

    pub fn approve_restore(&self, req: &RestoreRequest) -> Result<Approval> {
        let Some(p) = &self.restore_approval else {
            return Ok(Approval::AskUser);
        };
        let guest_req = restore_approval::RestoreRequest {
            database: req.database.clone(),
            tenant: self.tenant.clone().or_else(|| req.tenant.clone()),
            backup: to_guest_backup(&req.backup),
            requested_by: req.requested_by.clone(),
            noinput: req.noinput,
            now: req.now.timestamp(),
        };
        let answer = p.module.approve(&p.config_json, &p.limits, &guest_req)?;
        Ok(from_guest_approval(answer, &p.module.name))
    }

    /// Allow, deny or ask for a media restore; asked before any media file
    /// is downloaded.
    pub fn approve_media_restore(&self, req: &MediaRestoreRequest) -> Result<Approval> {
        let Some(p) = &self.restore_approval else {
            return Ok(Approval::AskUser);
        };
        let guest_req = restore_approval::MediaRestoreRequest {
            tenant: self.tenant.clone().or_else(|| req.tenant.clone()),
            target: req.target.clone(),
            source: req.source.clone(),
            backup_stamp: req.backup_stamp.clone(),
            files: req.files,
            deletes: req.deletes,
            requested_by: req.requested_by.clone(),
            noinput: req.noinput,
            now: req.now.timestamp(),
        };
        let answer = p
            .module
            .approve_media(&p.config_json, &p.limits, &guest_req)?;
        Ok(from_guest_approval(answer, &p.module.name))
    }

    /// Sends a `pre-` event to the hooks before the operation `what` (e.g.
    /// "backup of `default`"). A hook's error answer is a veto: refused,
    /// exit 3. A hook that fails to answer (traps, runs out of a limit)
    /// with `on_error = "fail"` is a failure, exit 1 (130 if interrupted):
    /// the operation does not start either way.
    pub fn emit_pre(&self, event: &Event, what: &str) -> Result<()> {
        match self.deliver(event) {
            Ok(()) => Ok(()),
            Err(HookStop::Veto {
                module,
                event,
                reason,
            }) => Err(crate::exit::refused(format!(
                "{what} vetoed by hook {module} on {event}: {}",
                escape(&reason)
            ))),
            Err(HookStop::Failed(e)) => {
                Err(crate::exit::failed(format!("{what} not started: {e:#}")))
            }
        }
    }

    /// Sends an event (not a `pre-` one: see [`Policies::emit_pre`]) to the
    /// hooks; an error is a hook that failed with `on_error = "fail"`.
    pub fn emit(&self, event: &Event) -> Result<()> {
        match self.deliver(event) {
            Ok(()) => Ok(()),
            Err(HookStop::Veto {
                module,
                event,
                reason,
            }) => Err(anyhow!("hook {module} vetoed {event}: {}", escape(&reason))),
            Err(HookStop::Failed(e)) => Err(e),
        }
    }

    /// Delivers an event to the hooks that subscribe to it, in order; stops
    /// at a veto (an error answer to a `pre-` event) or at a hook that
    /// fails with `on_error = "fail"`.
    fn deliver(&self, event: &Event) -> Result<(), HookStop> {
        tracing::debug!(event = event.kind.as_str(), database = ?event.database, tenant = ?self.tenant, backup = ?event.backup, "event");
        let subscribed = self.hooks.iter().filter(|h| {
            h.events
                .as_ref()
                .is_none_or(|kinds| kinds.contains(&event.kind))
        });
        let mut guest_event = guest_event(event);
        if guest_event.tenant.is_none() {
            guest_event.tenant = self.tenant.clone();
        }
        for hook in subscribed {
            let p = &hook.policy;
            let grants = Grants {
                http: p.http.clone(),
                journal: None,
            };
            let outcome = match &p.unready {
                Some(why) => Err(anyhow!("hook {} not run: {why}", p.module.name)),
                None => Ok(p
                    .module
                    .on_event(&p.config_json, &p.limits, &grants, &guest_event)),
            };
            let failure = match outcome {
                Err(e) => e,
                Ok(outcome) => match outcome {
                    Ok(Ok(())) => continue,
                    Ok(Err(reason)) if event.kind.is_pre() => {
                        return Err(HookStop::Veto {
                            module: p.module.name.clone(),
                            event: event.kind.as_str(),
                            reason,
                        });
                    }
                    Ok(Err(reason)) => anyhow!(
                        "hook {} failed on {}: {}",
                        p.module.name,
                        event.kind.as_str(),
                        escape(&reason)
                    ),
                    Err(e) => {
                        anyhow::Error::new(e).context(format!("hook on {}", event.kind.as_str()))
                    }
                },
            };
            match hook.on_error {
                // An interrupt ends the run, whatever on_error says.
                OnError::Warn if !crate::interrupt::interrupted() => {
                    tracing::warn!("{failure:#} (on_error = \"warn\": going on)")
                }
                OnError::Warn | OnError::Fail => return Err(HookStop::Failed(failure)),
            }
        }
        Ok(())
    }
}

/// Why delivering an event stopped.
enum HookStop {
    /// A hook answered an error to a `pre-` event: its answer, not a failure.
    Veto {
        module: String,
        event: &'static str,
        reason: String,
    },
    /// A hook failed (or answered an error to another event) and its
    /// `on_error` is "fail".
    Failed(anyhow::Error),
}

fn from_guest_approval(answer: restore_approval::Approval, module: &str) -> Approval {
    match answer {
        restore_approval::Approval::Allow => Approval::Allow,
        restore_approval::Approval::AskUser => Approval::AskUser,
        restore_approval::Approval::Deny(why) => {
            Approval::Deny(format!("{} (policy {module})", escape(&why)))
        }
    }
}

/// A naming policy's answer, if rcbackup can use it as a backup's name.
pub fn checked_name(name: String) -> Result<String, GuestFailure> {
    match crate::naming::check_file_name(&name) {
        Ok(()) => Ok(name),
        Err(why) => Err(GuestFailure::BadOutput(format!("the name `{name}` {why}"))),
    }
}

/// A retention policy's answer for `series`, refused as a whole unless it
/// decides once on every backup of the series and keeps the newest.
pub fn checked_decisions(
    series: &[BackupRecord],
    answer: Vec<bindings::retention::Decision>,
) -> Result<Vec<Decision>, GuestFailure> {
    let decisions = from_guest_decisions(answer);
    retention::check_decisions(series, &decisions)
        .map_err(|why| GuestFailure::BadOutput(format!("{why}; the whole result is refused")))?;
    Ok(decisions)
}

/// The guest's decisions; reasons are escaped (they are only shown), names
/// are kept as given, to be checked against the series.
pub fn from_guest_decisions(answer: Vec<bindings::retention::Decision>) -> Vec<Decision> {
    answer
        .into_iter()
        .map(|d| Decision {
            reason: escape(&d.reason).into_owned(),
            name: d.name,
            keep: d.keep,
        })
        .collect()
}

pub fn guest_event(event: &Event) -> hooks::Event {
    hooks::Event {
        kind: event.kind.to_guest(),
        database: event.database.clone(),
        tenant: event.tenant.clone(),
        backup: event.backup.clone(),
        size: event.size,
        sha256: event.sha256.clone(),
        duration_ms: event.duration.map(|d| d.as_millis() as u64),
        error: event.error.clone(),
        now: event.now.timestamp(),
    }
}

/// Loads one module for `rcbackup policy test/compile`; its errors name the
/// file.
pub fn load_module(path: &std::path::Path) -> Result<LoadedModule> {
    Runtime::global()?.load(path, Linking::Plain)
}

/// A usage error (exit 2) unless `module` exports `role`: it names the
/// module, the role, the roles it does export and what to do.
pub fn require_role(module: &LoadedModule, role: Role) -> Result<()> {
    if module.exports(role) {
        return Ok(());
    }
    let roles = module.roles();
    let exported = if roles.is_empty() {
        "no role of rcbackup:policy at all".to_string()
    } else {
        roles
            .iter()
            .map(|r| r.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let fix = match roles[..] {
        [one] => format!(
            "Configure it under {} instead, or use a module that implements {}",
            one.config_section(),
            role.as_str()
        ),
        _ => format!("Use a module that implements {}", role.as_str()),
    };
    Err(crate::exit::usage(format!(
        "policy module {} does not export the {} role (interface rcbackup:policy/{}); \
         it exports: {exported}. {fix} (with the Rust SDK: `export_policy!(MyPolicy: {})`)",
        module.name,
        role.as_str(),
        role.as_str(),
        role.sdk_name()
    )))
}

#[cfg(test)]
mod tests {
    //! Every value a guest returns, whatever it is: no panic, nothing unsafe
    //! reaches a log or a terminal, and a refused value is named.
    use super::*;
    use crate::database::EngineKind;
    use chrono::TimeZone;
    use proptest::prelude::*;

    fn shown_safely(text: &str) -> bool {
        !text.chars().any(text::is_unsafe)
    }

    fn record(name: &str, secs: i64) -> BackupRecord {
        let at = Utc.timestamp_opt(1_700_000_000 + secs, 0).unwrap();
        BackupRecord {
            format: 1,
            name: name.to_string(),
            database: "default".into(),
            tenant: None,
            engine: EngineKind::Sqlite,
            size: 1,
            sha256: String::new(),
            compression: None,
            adopted: None,
            created: at,
            finished: at,
            tool: String::new(),
        }
    }

    /// Names the guest may answer with: mostly the series' own, sometimes
    /// anything at all.
    fn answer_name() -> impl Strategy<Value = String> {
        prop_oneof![
            4 => (0..6usize).prop_map(|i| format!("b{i}.sqlite3")),
            1 => any::<String>(),
        ]
    }

    proptest! {
        #[test]
        fn any_decisions_are_checked_without_panic(
            n in 1..6usize,
            answer in proptest::collection::vec((answer_name(), any::<bool>(), any::<String>()), 0..10),
        ) {
            let series: Vec<BackupRecord> =
                (0..n).map(|i| record(&format!("b{i}.sqlite3"), i as i64)).collect();
            let guest: Vec<bindings::retention::Decision> = answer
                .iter()
                .map(|(name, keep, reason)| bindings::retention::Decision {
                    name: name.clone(),
                    keep: *keep,
                    reason: reason.clone(),
                })
                .collect();
            match checked_decisions(&series, guest) {
                Ok(decisions) => {
                    prop_assert_eq!(decisions.len(), n);
                    for d in &decisions {
                        prop_assert!(series.iter().any(|b| b.name == d.name));
                        prop_assert!(shown_safely(&d.reason), "{:?}", d.reason);
                    }
                    // The newest is kept.
                    let newest = format!("b{}.sqlite3", n - 1);
                    prop_assert!(decisions.iter().any(|d| d.name == newest && d.keep));
                }
                Err(failure) => {
                    let message = failure.to_string();
                    prop_assert!(shown_safely(&message), "{:?}", message);
                    prop_assert!(message.starts_with("bad output: "), "{}", message);
                    // The refusal names the decision at fault, or the count.
                    let named = answer
                        .iter()
                        .any(|(name, _, _)| message.contains(&format!("`{}`", text::escape(name))));
                    prop_assert!(
                        named || message.contains(&format!("of the {n} backups")),
                        "{}",
                        message
                    );
                }
            }
        }

        #[test]
        fn any_name_is_checked_without_panic(name in any::<String>()) {
            match checked_name(name.clone()) {
                Ok(n) => prop_assert_eq!(&n, &name),
                Err(failure) => {
                    let message = failure.to_string();
                    prop_assert!(shown_safely(&message), "{:?}", message);
                    let escaped = text::escape(&name);
                    prop_assert!(
                        message.contains(&format!("the name `{escaped}`")),
                        "{}",
                        message
                    );
                }
            }
        }

        #[test]
        fn any_approval_reason_is_shown_safely(reason in any::<String>(), allow in any::<bool>()) {
            let answer = if allow {
                restore_approval::Approval::Allow
            } else {
                restore_approval::Approval::Deny(reason.clone())
            };
            match from_guest_approval(answer, "guard.wasm") {
                Approval::Allow => prop_assert!(allow),
                Approval::Deny(why) => {
                    prop_assert!(!allow);
                    prop_assert!(shown_safely(&why), "{:?}", why);
                    prop_assert!(why.ends_with("(policy guard.wasm)"), "{}", why);
                }
                Approval::AskUser => prop_assert!(false, "an answer changed into ask-user"),
            }
        }

        #[test]
        fn any_guest_error_text_is_shown_safely(text in any::<String>()) {
            for failure in [
                GuestFailure::Trap(text.clone()),
                GuestFailure::Returned(text.clone()),
                GuestFailure::BadOutput(text.clone()),
            ] {
                let message = failure.to_string();
                prop_assert!(shown_safely(&message), "{:?}", message);
            }
        }
    }
}
