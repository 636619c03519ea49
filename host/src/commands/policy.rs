//! `rcbackup policy test` and `rcbackup policy compile`: work on one module,
//! without a config file, so policy authors can try a module before using it.

use std::path::Path;
use std::sync::{Arc, Mutex};

use anyhow::Result;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::cli::{PolicyCommand, PolicyTestArgs};
use crate::database::EngineKind;
use crate::exit;
use crate::policy::bindings::{hooks, naming, restore_approval};
use crate::policy::http::secrets::SecretSection;
use crate::policy::http::{resolve_spec, Exchange, HttpGrant};
use crate::policy::limits::LimitsSection;
use crate::policy::runtime::{Grants, Linking, LoadedModule, Role, Runtime};
use crate::policy::text::escape;
use crate::policy::{from_guest_decisions, guest_series, to_guest_backup, EventKind};
use crate::record::BackupRecord;
use crate::retention;

pub fn run(cmd: &PolicyCommand) -> Result<()> {
    match cmd {
        PolicyCommand::Test(a) => test(a),
        PolicyCommand::Compile(a) => {
            for path in &a.modules {
                compile(path)?;
            }
            Ok(())
        }
    }
}

fn compile(path: &Path) -> Result<()> {
    let bytes = std::fs::read(path)
        .map_err(|e| exit::usage(format!("cannot read {}: {e}", path.display())))?;
    crate::policy::runtime::check_component(path, &bytes)?;
    let started = std::time::Instant::now();
    let runtime = Runtime::global()?;
    let cached = match runtime.precompile(&bytes) {
        Ok(cached) => cached,
        Err(e) => {
            // A damaged component gets the error (exit 2) a config gets when
            // it loads one; else it was the cache that could not be written.
            runtime.load(path, Linking::Http)?;
            return Err(exit::failed(format!(
                "cannot cache the compiled {}: {e:#}",
                path.display()
            )));
        }
    };
    match cached {
        Some(cached) => crate::outln!(
            "compiled {} in {} ms into {}",
            path.display(),
            started.elapsed().as_millis(),
            cached.display()
        ),
        None => crate::outln!(
            "compiled {} in {} ms; no cache folder (set RCBACKUP_CACHE_DIR or HOME), so runs compile it again",
            path.display(),
            started.elapsed().as_millis()
        ),
    }
    // Linked as a hook granted HTTP would be: compiling checks the module,
    // not a grant (a run checks that against its config).
    let module = runtime.load(path, Linking::Http)?;
    let roles: Vec<&str> = ROLES
        .iter()
        .filter(|r| module.exports(**r))
        .map(|r| r.as_str())
        .collect();
    crate::outln!("roles: {}", roles.join(", "));
    Ok(())
}

const ROLES: [Role; 4] = [
    Role::Retention,
    Role::Naming,
    Role::RestoreApproval,
    Role::Hook,
];

/// The input file of `policy test`: the fields of the chosen role.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TestInput {
    role: Option<String>,
    /// The time of the operation (default: now).
    now: Option<DateTime<Utc>>,
    #[serde(default)]
    config: serde_json::Map<String, serde_json::Value>,
    #[serde(default)]
    limits: LimitsSection,
    /// hooks: what HTTP the hook is granted, as in its `[[hooks]]` entry.
    #[serde(default)]
    allow_http: Vec<String>,
    #[serde(default)]
    secrets: std::collections::BTreeMap<String, SecretSection>,
    /// retention: the series.
    backups: Option<Vec<TestBackup>>,
    /// naming: the new backup.
    naming: Option<TestNaming>,
    /// restore-approval: the request.
    restore: Option<TestRestore>,
    /// hooks: the event.
    event: Option<TestEvent>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct TestBackup {
    name: String,
    #[serde(default = "default_database")]
    database: String,
    tenant: Option<String>,
    #[serde(default = "default_engine_kind")]
    engine: EngineKind,
    created: DateTime<Utc>,
    #[serde(default)]
    size: u64,
    #[serde(default)]
    sha256: String,
}

fn default_database() -> String {
    "default".into()
}
fn default_engine_kind() -> EngineKind {
    EngineKind::Sqlite
}
fn default_engine() -> String {
    "sqlite".into()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TestNaming {
    #[serde(default = "default_database")]
    database: String,
    #[serde(default = "default_engine")]
    engine: String,
    tenant: Option<String>,
    #[serde(default = "default_extension")]
    extension: String,
}

fn default_extension() -> String {
    "sqlite3".into()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TestRestore {
    #[serde(default = "default_database")]
    database: String,
    tenant: Option<String>,
    backup: TestBackup,
    #[serde(default = "default_requester")]
    requested_by: String,
    #[serde(default)]
    noinput: bool,
}

fn default_requester() -> String {
    "policy-test".into()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TestEvent {
    kind: String,
    database: Option<String>,
    tenant: Option<String>,
    backup: Option<String>,
    size: Option<u64>,
    sha256: Option<String>,
    duration_ms: Option<u64>,
    error: Option<String>,
}

impl TestBackup {
    fn record(&self) -> Result<BackupRecord> {
        let engine = self.engine;
        Ok(BackupRecord {
            format: crate::record::PLAIN_FORMAT,
            name: self.name.clone(),
            database: self.database.clone(),
            tenant: self.tenant.clone(),
            engine,
            size: self.size,
            sha256: self.sha256.clone(),
            compression: None,
            adopted: None,
            created: self.created,
            finished: self.created,
            tool: BackupRecord::tool_version(),
        })
    }
}

fn parse_role(name: &str) -> Result<Role> {
    ROLES
        .into_iter()
        .find(|r| r.as_str() == name || (name == "hook" && *r == Role::Hook))
        .ok_or_else(|| {
            exit::usage(format!(
                "`{name}` is not a role; use retention, naming, restore-approval or hooks"
            ))
        })
}

fn test(args: &PolicyTestArgs) -> Result<()> {
    let text = std::fs::read_to_string(&args.input)
        .map_err(|e| exit::usage(format!("cannot read {}: {e}", args.input.display())))?;
    let input: TestInput = serde_json::from_str(&text)
        .map_err(|e| exit::usage(format!("input {}: {e}", args.input.display())))?;
    let http_spec = resolve_spec(&input.allow_http, &input.secrets)
        .map_err(|(key, why)| exit::usage(format!("input: `{key}`: {why}")))?;
    if args.send && http_spec.is_none() {
        return Err(exit::usage(
            "--send sends the hook's HTTP requests, and the input grants none: add \"allow_http\"",
        ));
    }
    let linking = match http_spec {
        Some(_) => Linking::Http,
        None => Linking::Plain,
    };
    let module = Runtime::global()?.load(&args.module, linking)?;
    let role = match args.role.as_deref().or(input.role.as_deref()) {
        Some(r) => parse_role(r)?,
        None => infer_role(&input, &module)?,
    };
    crate::policy::require_role(&module, role)?;
    let mut limits = input
        .limits
        .resolve()
        .map_err(|why| exit::usage(format!("input: {why}")))?;
    if http_spec.is_some() && input.limits.deadline_ms.is_none() {
        limits.deadline = crate::policy::limits::HTTP_DEADLINE;
    }
    if http_spec.is_some() && role != Role::Hook {
        return Err(exit::usage(format!(
            "input: only hooks may be granted HTTP (allow_http), not the {} role",
            role.as_str()
        )));
    }
    let config_json = serde_json::to_string(&input.config)?;
    let now = input.now.unwrap_or_else(Utc::now);
    let missing = |key: &str| {
        exit::usage(format!(
            "input {} has no `{key}`, which the {} role needs",
            args.input.display(),
            role.as_str()
        ))
    };
    match role {
        Role::Retention => {
            let backups = input.backups.as_ref().ok_or_else(|| missing("backups"))?;
            let series: Vec<BackupRecord> = backups
                .iter()
                .map(TestBackup::record)
                .collect::<Result<_>>()?;
            let guest = guest_series(&series);
            let answer = module.retention(&config_json, &limits, &guest, now.timestamp())?;
            let decisions = from_guest_decisions(answer);
            let refused = retention::check_decisions(&series, &decisions).err();
            if args.json {
                super::json::print(&TestReport {
                    role: role.as_str(),
                    answer: Answer::Retention {
                        decisions: decisions
                            .iter()
                            .map(|d| JsonDecision {
                                name: d.name.clone(),
                                action: if d.keep { "keep" } else { "delete" },
                                reason: d.reason.clone(),
                            })
                            .collect(),
                    },
                    accepted: refused.is_none(),
                    refused_because: refused.clone(),
                })?;
            } else {
                for d in &decisions {
                    let verb = if d.keep { "keep" } else { "delete" };
                    crate::outln!("{verb:>6}  {}  ({})", escape(&d.name), d.reason);
                }
            }
            if let Some(why) = refused {
                return Err(exit::failed(format!(
                    "rcbackup would refuse this result as a whole and delete nothing: {why}"
                )));
            }
        }
        Role::Naming => {
            let n = input.naming.as_ref().ok_or_else(|| missing("naming"))?;
            let ctx = naming::NamingContext {
                database: n.database.clone(),
                engine: n.engine.clone(),
                tenant: n.tenant.clone(),
                now: now.timestamp(),
                extension: n.extension.clone(),
                default_name: format!(
                    "{}-{}.{}",
                    n.database,
                    now.format(crate::naming::DateFormat::DEFAULT),
                    n.extension
                ),
            };
            let name = module.naming(&config_json, &limits, &ctx)?;
            let refused = crate::naming::check_file_name(&name).err();
            if args.json {
                super::json::print(&TestReport {
                    role: role.as_str(),
                    answer: Answer::Naming { name: name.clone() },
                    accepted: refused.is_none(),
                    refused_because: refused.as_ref().map(|why| format!("it {why}")),
                })?;
            } else {
                crate::outln!("name: {}", escape(&name));
            }
            if let Some(why) = refused {
                return Err(exit::failed(format!(
                    "rcbackup would refuse the name `{}`: it {why}",
                    escape(&name)
                )));
            }
        }
        Role::RestoreApproval => {
            let r = input.restore.as_ref().ok_or_else(|| missing("restore"))?;
            let req = restore_approval::RestoreRequest {
                database: r.database.clone(),
                tenant: r.tenant.clone(),
                backup: to_guest_backup(&r.backup.record()?),
                requested_by: r.requested_by.clone(),
                noinput: r.noinput,
                now: now.timestamp(),
            };
            let (decision, reason) = match module.approve(&config_json, &limits, &req)? {
                restore_approval::Approval::Allow => ("allow", None),
                restore_approval::Approval::AskUser => ("ask-user", None),
                restore_approval::Approval::Deny(why) => ("deny", Some(why)),
            };
            if args.json {
                super::json::print(&TestReport {
                    role: role.as_str(),
                    answer: Answer::Approval { decision, reason },
                    accepted: true,
                    refused_because: None,
                })?;
            } else {
                match reason {
                    Some(why) => crate::outln!("{decision}: {}", escape(&why)),
                    None => crate::outln!("{decision}"),
                }
            }
        }
        Role::Hook => {
            let e = input.event.as_ref().ok_or_else(|| missing("event"))?;
            let kind = EventKind::parse(&e.kind)
                .ok_or_else(|| exit::usage(format!("input: `{}` is not an event", e.kind)))?;
            let mut event = crate::policy::Event::new(kind, now);
            event.database = e.database.clone();
            event.tenant = e.tenant.clone();
            event.backup = e.backup.clone();
            event.size = e.size;
            event.sha256 = e.sha256.clone();
            event.duration = e.duration_ms.map(std::time::Duration::from_millis);
            event.error = e.error.clone();
            let journal = Arc::new(Mutex::new(Vec::new()));
            let grants = Grants {
                http: http_spec
                    .as_ref()
                    .map(|h| HttpGrant::for_test(h, limits.http, args.send).map(Arc::new))
                    .transpose()
                    .map_err(|why| exit::usage(format!("input: {why}")))?,
                journal: Some(journal.clone()),
            };
            let answer = module.on_event(&config_json, &limits, &grants, &guest_event(&event));
            let requests = std::mem::take(&mut *journal.lock().unwrap_or_else(|e| e.into_inner()));
            if !args.json {
                for r in &requests {
                    crate::outln!("request: {} {} -> {}", r.method, r.url, r.outcome);
                }
            }
            let (outcome, reason) = match answer? {
                Ok(()) => ("ok", None),
                Err(why) if kind.is_pre() => ("veto", Some(why)),
                Err(why) => ("failed", Some(why)),
            };
            if args.json {
                super::json::print(&TestReport {
                    role: role.as_str(),
                    answer: Answer::Hook {
                        event: kind.as_str(),
                        outcome,
                        reason,
                        requests,
                    },
                    accepted: true,
                    refused_because: None,
                })?;
            } else {
                match reason {
                    Some(why) => crate::outln!("{outcome}: {}", escape(&why)),
                    None => crate::outln!("{outcome}"),
                }
            }
        }
    }
    Ok(())
}

/// `policy test --json`. See docs/json.md.
#[derive(Serialize)]
struct TestReport {
    role: &'static str,
    #[serde(flatten)]
    answer: Answer,
    /// Whether rcbackup would act on the answer (false: it would refuse it
    /// as a whole, and the command exits 1).
    accepted: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    refused_because: Option<String>,
}

#[derive(Serialize)]
#[serde(untagged)]
enum Answer {
    Retention {
        decisions: Vec<JsonDecision>,
    },
    Naming {
        name: String,
    },
    Approval {
        decision: &'static str,
        #[serde(skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    Hook {
        event: &'static str,
        outcome: &'static str,
        #[serde(skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
        /// The HTTP requests it made, in order (none without allow_http).
        requests: Vec<Exchange>,
    },
}

#[derive(Serialize)]
struct JsonDecision {
    name: String,
    action: &'static str,
    reason: String,
}

fn guest_event(e: &crate::policy::Event) -> hooks::Event {
    crate::policy::guest_event(e)
}

fn infer_role(input: &TestInput, module: &LoadedModule) -> Result<Role> {
    let by_input = [
        (input.backups.is_some(), Role::Retention),
        (input.naming.is_some(), Role::Naming),
        (input.restore.is_some(), Role::RestoreApproval),
        (input.event.is_some(), Role::Hook),
    ];
    let given: Vec<Role> = by_input
        .iter()
        .filter(|(g, _)| *g)
        .map(|(_, r)| *r)
        .collect();
    if let [one] = given[..] {
        return Ok(one);
    }
    let exported: Vec<Role> = ROLES.into_iter().filter(|r| module.exports(*r)).collect();
    if let [one] = exported[..] {
        return Ok(one);
    }
    Err(exit::usage(
        "cannot tell which role to test; pass --role retention|naming|restore-approval|hooks",
    ))
}
