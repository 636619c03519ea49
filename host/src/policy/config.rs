//! The `[policies]` and `[[hooks]]` sections of the config file.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::http::secrets::SecretSection;
use super::http::{resolve_spec, HttpSpec};
use super::limits::{Limits, LimitsSection, HTTP_DEADLINE};
use super::EventKind;

/// `[policies]`: at most one module per decision.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PoliciesSection {
    pub retention: Option<PolicySection>,
    pub naming: Option<PolicySection>,
    pub restore_approval: Option<PolicySection>,
}

/// `{ module = "path.wasm", config = { ... }, limits = { ... } }`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicySection {
    pub module: PathBuf,
    #[serde(default)]
    pub config: toml::Table,
    #[serde(default)]
    pub limits: LimitsSection,
    /// Only hooks may be granted HTTP: read to say so.
    #[serde(default)]
    pub allow_http: Option<toml::Value>,
}

/// What a failing hook does to the run.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnError {
    /// Fail the run (a pre event: stop the operation).
    #[default]
    Fail,
    /// Log a warning and go on.
    Warn,
}

/// `[[hooks]]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HookSection {
    pub module: PathBuf,
    /// Event names such as "pre-db-backup", or "all"; left out: all.
    #[serde(default)]
    pub events: Option<Vec<String>>,
    #[serde(default)]
    pub on_error: OnError,
    #[serde(default)]
    pub config: toml::Table,
    #[serde(default)]
    pub limits: LimitsSection,
    /// Origins the hook may send HTTP requests to (none by default).
    #[serde(default)]
    pub allow_http: Vec<String>,
    /// Secrets the host fills into those requests: NAME = variable.
    #[serde(default)]
    pub secrets: std::collections::BTreeMap<String, SecretSection>,
}

/// One configured module, checked: path resolved, limits and config ready.
#[derive(Debug, Clone)]
pub struct ModuleSpec {
    pub path: PathBuf,
    pub config_json: String,
    pub limits: Limits,
    /// What HTTP it is granted (hooks only).
    pub http: Option<HttpSpec>,
}

#[derive(Debug, Clone)]
pub struct HookSpec {
    pub module: ModuleSpec,
    /// None means every event.
    pub events: Option<Vec<EventKind>>,
    pub on_error: OnError,
}

/// The policy part of the config, checked at load.
#[derive(Debug, Clone, Default)]
pub struct PolicyConfig {
    pub retention: Option<ModuleSpec>,
    pub naming: Option<ModuleSpec>,
    pub restore_approval: Option<ModuleSpec>,
    pub hooks: Vec<HookSpec>,
}

impl PolicyConfig {
    pub fn is_empty(&self) -> bool {
        self.retention.is_none()
            && self.naming.is_none()
            && self.restore_approval.is_none()
            && self.hooks.is_empty()
    }

    /// A tenant's policies over the top level's: each role the tenant
    /// does not set is inherited, and so are the hooks unless the tenant
    /// has its own `hooks` (an empty list included).
    pub fn over(self, parent: &PolicyConfig, own_hooks: bool) -> PolicyConfig {
        PolicyConfig {
            retention: self.retention.or_else(|| parent.retention.clone()),
            naming: self.naming.or_else(|| parent.naming.clone()),
            restore_approval: self
                .restore_approval
                .or_else(|| parent.restore_approval.clone()),
            hooks: if own_hooks {
                self.hooks
            } else {
                parent.hooks.clone()
            },
        }
    }

    /// Checks the sections; errors are (key, why). Relative module paths are
    /// relative to the config file's folder.
    pub fn resolve(
        policies: &PoliciesSection,
        hooks: &[HookSection],
        config_dir: &Path,
    ) -> Result<PolicyConfig, (String, String)> {
        let one = |key: &str,
                   s: &Option<PolicySection>|
         -> Result<Option<ModuleSpec>, (String, String)> {
            let Some(s) = s else { return Ok(None) };
            if s.allow_http.is_some() || s.limits.sets_http() {
                return Err((
                    format!("policies.{key}"),
                    "only hooks ([[hooks]]) may be granted HTTP (allow_http, limits.http_*): a policy's decision depends on its input alone"
                        .into(),
                ));
            }
            module_spec(&s.module, &s.config, &s.limits, config_dir)
                .map(Some)
                .map_err(|why| (format!("policies.{key}"), why))
        };
        let mut out = PolicyConfig {
            retention: one("retention", &policies.retention)?,
            naming: one("naming", &policies.naming)?,
            restore_approval: one("restore_approval", &policies.restore_approval)?,
            hooks: Vec::new(),
        };
        for (i, h) in hooks.iter().enumerate() {
            let key = format!("hooks[{i}]");
            let mut module = module_spec(&h.module, &h.config, &h.limits, config_dir)
                .map_err(|why| (key.clone(), why))?;
            module.http = resolve_spec(&h.allow_http, &h.secrets)
                .map_err(|(k, why)| (format!("{key}.{k}"), why))?;
            match &module.http {
                None if h.limits.sets_http() => return Err((
                    format!("{key}.limits"),
                    "limits.http_* bound a hook's HTTP, and this hook is granted none (allow_http)"
                        .into(),
                )),
                Some(_) if h.limits.deadline_ms.is_none() => module.limits.deadline = HTTP_DEADLINE,
                _ => {}
            }
            let events = match h.events.as_deref() {
                None => None,
                // An empty list would read as "no events" to some and "all"
                // to others; a hook vetoing every backup is the price of the
                // wrong guess.
                Some([]) => {
                    return Err((
                        format!("{key}.events"),
                        "`events = []` names no event: leave `events` out for all events, \
                         or list some, e.g. events = [\"pre-db-backup\"]"
                            .into(),
                    ))
                }
                Some(names) if names.iter().any(|e| e == "all") => None,
                Some(names) => Some(
                    names
                        .iter()
                        .enumerate()
                        .map(|(n, name)| {
                            // Named by its place: values of hook keys are
                            // never shown.
                            EventKind::parse(name).ok_or_else(|| {
                                (
                                    format!("{key}.events[{n}]"),
                                    format!(
                                        "is not an event; use \"all\" or some of: {}",
                                        EventKind::ALL.map(|k| k.as_str()).join(", ")
                                    ),
                                )
                            })
                        })
                        .collect::<Result<Vec<_>, _>>()?,
                ),
            };
            out.hooks.push(HookSpec {
                module,
                events,
                on_error: h.on_error,
            });
        }
        Ok(out)
    }
}

fn module_spec(
    module: &Path,
    config: &toml::Table,
    limits: &LimitsSection,
    config_dir: &Path,
) -> Result<ModuleSpec, String> {
    let path = if module.is_relative() {
        config_dir.join(module)
    } else {
        module.to_path_buf()
    };
    if !path.is_file() {
        return Err(format!(
            "module `{}` is not a file (relative paths are relative to the config file)",
            path.display()
        ));
    }
    let config_json =
        serde_json::to_string(config).map_err(|e| format!("config cannot be handed over: {e}"))?;
    Ok(ModuleSpec {
        path,
        config_json,
        limits: limits.resolve()?,
        http: None,
    })
}

#[cfg(test)]
mod tests {
    use crate::config::Config;
    use crate::exit::{code_for, ExitCode};

    const BASE: &str =
        "remote = \"b:\"\n[databases.default]\nengine = \"sqlite\"\nname = \"x.db\"\n";

    fn err(extra: &str, dir: &std::path::Path) -> String {
        let path = dir.join("rcbackup.toml");
        let e = Config::parse(&format!("{BASE}{extra}"), &path).unwrap_err();
        assert_eq!(code_for(&e), ExitCode::Usage);
        format!("{e:#}")
    }

    #[test]
    fn policy_sections_are_checked_at_load() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("p.wasm"), b"").unwrap();
        let m = err(
            "[policies.retention]\nmodule = \"missing.wasm\"\n",
            dir.path(),
        );
        assert!(
            m.contains("policies.retention") && m.contains("missing.wasm"),
            "{m}"
        );
        let m = err("[policies.retention]\nmodul = \"p.wasm\"\n", dir.path());
        assert!(m.contains("modul"), "{m}");
        let m = err("[policies.cleanup]\nmodule = \"p.wasm\"\n", dir.path());
        assert!(m.contains("cleanup"), "{m}");
        let m = err(
            "[[hooks]]\nmodule = \"p.wasm\"\nevents = [\"pre-backup\"]\n",
            dir.path(),
        );
        assert!(
            m.contains("hooks[0].events") && m.contains("pre-db-backup"),
            "{m}"
        );
        let m = err(
            "[[hooks]]\nmodule = \"p.wasm\"\non_error = \"ignore\"\n",
            dir.path(),
        );
        assert!(m.contains("on_error"), "{m}");
        let m = err(
            "[policies.naming]\nmodule = \"p.wasm\"\nlimits = { fuel = 0 }\n",
            dir.path(),
        );
        assert!(m.contains("limits.fuel"), "{m}");
    }

    #[test]
    fn relative_modules_resolve_next_to_the_config() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("p.wasm"), b"").unwrap();
        let c = Config::parse(
            &format!("{BASE}[policies.retention]\nmodule = \"p.wasm\"\nconfig = {{ keep = 3 }}\nlimits = {{ memory_mib = 16 }}\n[[hooks]]\nmodule = \"p.wasm\"\n"),
            &dir.path().join("rcbackup.toml"),
        )
        .unwrap();
        let r = c.policies.retention.unwrap();
        assert_eq!(r.path, dir.path().join("p.wasm"));
        assert_eq!(r.config_json, "{\"keep\":3}");
        assert_eq!(r.limits.memory_bytes, 16 << 20);
        assert_eq!(c.policies.hooks[0].events, None);
    }

    /// Outside review of issue 8, item 3: `events = []` meant every event
    /// (a hook answering an error vetoed every backup). It is refused.
    #[test]
    fn an_empty_events_list_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("p.wasm"), b"").unwrap();
        let m = err("[[hooks]]\nmodule = \"p.wasm\"\nevents = []\n", dir.path());
        assert!(
            m.contains("hooks[0].events")
                && m.contains("leave `events` out for all events, or list some"),
            "{m}"
        );
    }
}
