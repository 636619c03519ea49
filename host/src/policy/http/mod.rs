//! Outgoing HTTP for hooks: the capability a `[[hooks]]` entry grants with
//! `allow_http`, and nothing beyond it (docs/policies.md, "HTTP").
//!
//! A hook granted HTTP gets `wasi:http/outgoing-handler` (wasmtime's own
//! implementation of the types and streams); every request it makes goes
//! through [`gate::Gate`], which checks it against the grants, fills in its
//! secrets and counts it against the call's bounds, and [`send`], which
//! resolves names itself and connects only to addresses it checked.

pub mod gate;
pub mod grant;
pub mod secrets;
pub mod send;

use std::time::Duration;

use serde::Serialize;

use self::grant::Grant;
use self::secrets::{Redactor, Secret, SecretSpec};

/// What `allow_http` and `secrets` of a hook say, checked at config load.
#[derive(Debug, Clone)]
pub struct HttpSpec {
    pub origins: Vec<Grant>,
    pub secrets: Vec<SecretSpec>,
}

/// Per-call bounds of a hook's HTTP (`limits.http_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpBounds {
    pub requests: u32,
    pub sent_bytes: u64,
    pub received_bytes: u64,
    /// Each request, from its start to the end of its response body.
    pub request_time: Duration,
}

impl Default for HttpBounds {
    fn default() -> Self {
        // A few pings or messages per event, each small; a server that does
        // not answer within 5 s is not waited for.
        HttpBounds {
            requests: 8,
            sent_bytes: 256 << 10,
            received_bytes: 256 << 10,
            request_time: Duration::from_secs(5),
        }
    }
}

/// A hook's HTTP capability, ready for its calls.
#[derive(Debug)]
pub struct HttpGrant {
    pub origins: Vec<Grant>,
    pub secrets: Vec<Secret>,
    pub bounds: HttpBounds,
    /// False for `policy test` without `--send`: requests are checked and
    /// shown, then answered 200 with an empty body, never sent.
    pub send: bool,
    /// Hides the secrets' values in whatever comes from the hook or its
    /// servers; made once from `secrets`.
    pub redactor: Redactor,
}

impl HttpGrant {
    /// Reads the secrets' values; the error names the variable.
    pub fn ready(spec: &HttpSpec, bounds: HttpBounds) -> Result<HttpGrant, String> {
        let secrets: Vec<Secret> = spec
            .secrets
            .iter()
            .map(SecretSpec::read)
            .collect::<Result<_, _>>()?;
        Ok(HttpGrant {
            origins: spec.origins.clone(),
            redactor: Redactor::new(&secrets),
            secrets,
            bounds,
            send: true,
        })
    }

    /// For `policy test`: secrets are read when `send` is asked for (and
    /// then must be set); otherwise their values are never needed.
    pub fn for_test(spec: &HttpSpec, bounds: HttpBounds, send: bool) -> Result<HttpGrant, String> {
        if send {
            return Ok(HttpGrant {
                send,
                ..HttpGrant::ready(spec, bounds)?
            });
        }
        // Unread secrets have no value: nothing to hide.
        Ok(HttpGrant {
            origins: spec.origins.clone(),
            secrets: spec.secrets.iter().map(SecretSpec::unread).collect(),
            redactor: Redactor::default(),
            bounds,
            send,
        })
    }

    fn shown_origins(&self) -> String {
        self.origins
            .iter()
            .map(|g| g.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// One request of a call, as `policy test` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct Exchange {
    pub method: String,
    /// As the guest wrote it: secrets as `{{secret:NAME}}`.
    pub url: String,
    /// The status, the failure, or why it was refused or not sent.
    pub outcome: String,
    pub sent: bool,
}

/// Checks `allow_http` and `secrets` of a `[[hooks]]` entry; errors are
/// (key, why) under the hook's key.
pub fn resolve_spec(
    allow_http: &[String],
    secrets: &std::collections::BTreeMap<String, secrets::SecretSection>,
) -> Result<Option<HttpSpec>, (String, String)> {
    if allow_http.is_empty() {
        if !secrets.is_empty() {
            return Err((
                "secrets".into(),
                "secrets go only into HTTP requests, and this hook is granted none: \
                 add allow_http = [\"https://...\"] or remove secrets"
                    .into(),
            ));
        }
        return Ok(None);
    }
    let origins = allow_http
        .iter()
        .enumerate()
        .map(|(i, e)| Grant::parse(e).map_err(|why| (format!("allow_http[{i}]"), why)))
        .collect::<Result<Vec<_>, _>>()?;
    let mut specs = Vec::new();
    for (name, section) in secrets {
        let key = format!("secrets.{name}");
        secrets::check_name(name).map_err(|why| (key.clone(), why))?;
        let (var, hosts) = match section {
            secrets::SecretSection::Var(v) => (v, None),
            secrets::SecretSection::Scoped { env, hosts } => (env, hosts.as_ref()),
        };
        secrets::check_var(var).map_err(|why| (key.clone(), why))?;
        let hosts = match hosts {
            None => None,
            Some(list) if list.is_empty() => {
                return Err((
                    format!("{key}.hosts"),
                    "names no host: leave `hosts` out for every granted host".into(),
                ))
            }
            Some(list) => Some(
                list.iter()
                    .enumerate()
                    .map(|(i, e)| {
                        let g = Grant::parse(e).map_err(|why| (format!("{key}.hosts[{i}]"), why))?;
                        // A secret's host must be one the hook may reach at
                        // all, or the scope says more than it grants.
                        if !origins.contains(&g) {
                            return Err((
                                format!("{key}.hosts[{i}]"),
                                format!("`{e}` is not in allow_http; a secret goes only to granted hosts"),
                            ));
                        }
                        Ok(g)
                    })
                    .collect::<Result<Vec<_>, _>>()?,
            ),
        };
        specs.push(SecretSpec {
            name: name.clone(),
            var: var.clone(),
            hosts,
        });
    }
    Ok(Some(HttpSpec {
        origins,
        secrets: specs,
    }))
}
