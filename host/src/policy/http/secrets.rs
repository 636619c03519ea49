//! Secrets for hooks: values the host puts into a hook's requests, so that
//! the guest never holds them.
//!
//! The config names an environment variable per secret
//! (`secrets = { token = "SLACK_TOKEN" }`); the guest writes
//! `{{secret:token}}` where the value goes (the path and query of a URL, a
//! header value), and the host replaces it as the request leaves, for the
//! hosts the secret is meant for. The value never enters the guest's
//! memory, a log line or `policy test`'s output; should a granted server
//! send it back, whatever the guest then logs or answers is redacted.

use std::borrow::Cow;

use percent_encoding::{utf8_percent_encode, AsciiSet, CONTROLS};
use serde::Deserialize;

use super::grant::{Grant, Origin};

pub const OPEN: &str = "{{secret:";
pub const CLOSE: &str = "}}";

/// `secrets.NAME` in a `[[hooks]]` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum SecretSection {
    /// `token = "SLACK_TOKEN"`: for every granted host.
    Var(String),
    /// `token = { env = "SLACK_TOKEN", hosts = ["https://hooks.slack.com"] }`.
    Scoped {
        env: String,
        #[serde(default)]
        hosts: Option<Vec<String>>,
    },
}

/// A secret as the config names it, checked; its value is read when the
/// module is loaded for a run.
#[derive(Debug, Clone)]
pub struct SecretSpec {
    pub name: String,
    pub var: String,
    /// `None`: every origin the hook is granted.
    pub hosts: Option<Vec<Grant>>,
}

/// A secret with its value.
#[derive(Clone)]
pub struct Secret {
    pub name: String,
    pub value: String,
    pub hosts: Option<Vec<Grant>>,
}

/// Never shows the value.
impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Secret").field("name", &self.name).finish()
    }
}

/// A secret's name: what `{{secret:NAME}}` may say.
pub fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty()
        || name.len() > 64
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        return Err(format!(
            "`{name}` is not a secret name (letters, digits, `_` and `-`, at most 64)"
        ));
    }
    Ok(())
}

/// An environment variable's name as a secret source.
pub fn check_var(var: &str) -> Result<(), String> {
    if var.is_empty()
        || !var.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        || var.as_bytes()[0].is_ascii_digit()
    {
        return Err(
            "is not the name of an environment variable (letters, digits and `_`); \
             a secret's value never goes in the config file: name the variable that holds it"
                .into(),
        );
    }
    Ok(())
}

impl SecretSpec {
    /// Reads the value from the environment; the error names the variable,
    /// never a value.
    pub fn read(&self) -> Result<Secret, String> {
        let value = match std::env::var(&self.var) {
            Ok(v) if !v.is_empty() => v,
            Ok(_) => {
                return Err(format!(
                    "secret `{}`: the environment variable {} is empty",
                    self.name, self.var
                ))
            }
            Err(std::env::VarError::NotPresent) => {
                return Err(format!(
                "secret `{}`: the environment variable {} is not set; set it to the secret's value",
                self.name, self.var
            ))
            }
            Err(std::env::VarError::NotUnicode(_)) => {
                return Err(format!(
                    "secret `{}`: the environment variable {} is not valid UTF-8",
                    self.name, self.var
                ))
            }
        };
        Ok(Secret {
            name: self.name.clone(),
            value,
            hosts: self.hosts.clone(),
        })
    }

    /// A stand-in for `policy test` without the variable: the requests are
    /// shown, not sent, so the value is never needed.
    pub fn unread(&self) -> Secret {
        Secret {
            name: self.name.clone(),
            value: String::new(),
            hosts: self.hosts.clone(),
        }
    }
}

/// Where a placeholder is replaced: what the value must be made into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Place {
    /// The path of a URL: characters a URL may not hold are percent-encoded
    /// (others, `/` and `%` included, are kept: a value may be a path, such
    /// as a Slack webhook's `T000/B000/XXXX`, or already encoded).
    Path,
    /// The query of a URL: as in a path, and `&`, `=`, `+` and `;` too, so
    /// that a value stays one parameter's value.
    Query,
    /// A header value: visible ASCII and spaces only.
    Header,
}

/// Characters percent-encoded when a value goes into a URL.
const QUERY_UNSAFE: &AsciiSet = &URL_UNSAFE.add(b'&').add(b'=').add(b'+').add(b';');

const URL_UNSAFE: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'`')
    .add(b'{')
    .add(b'}')
    .add(b'|')
    .add(b'\\')
    .add(b'^')
    .add(b'[')
    .add(b']');

/// Replaces every `{{secret:NAME}}` in `text` for a request to `origin`.
/// `Ok(None)`: there was none. The error says which placeholder could not
/// be filled and why, without any value.
pub fn substitute(
    text: &str,
    origin: &Origin,
    secrets: &[Secret],
    place: Place,
) -> Result<Option<String>, String> {
    if !text.contains(OPEN) {
        return Ok(None);
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(OPEN) {
        out.push_str(&rest[..at]);
        let after = &rest[at + OPEN.len()..];
        let end = after
            .find(CLOSE)
            .ok_or_else(|| format!("`{OPEN}` without its closing `{CLOSE}`"))?;
        let name = &after[..end];
        let secret = secrets.iter().find(|s| s.name == name).ok_or_else(|| {
            format!(
                "{OPEN}{}{CLOSE} names no secret of this hook (its config's `secrets` has {})",
                super::super::text::escape(name),
                if secrets.is_empty() {
                    "none".to_string()
                } else {
                    secrets
                        .iter()
                        .map(|s| s.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                }
            )
        })?;
        if let Some(hosts) = &secret.hosts {
            if !hosts.iter().any(|g| g.matches(origin)) {
                return Err(format!(
                    "the secret `{name}` is not for {origin} (its `hosts` are {})",
                    hosts
                        .iter()
                        .map(|g| g.to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
        }
        match place {
            Place::Path => out.extend(utf8_percent_encode(&secret.value, URL_UNSAFE)),
            Place::Query => out.extend(utf8_percent_encode(&secret.value, QUERY_UNSAFE)),
            Place::Header => {
                if !secret
                    .value
                    .bytes()
                    .all(|b| b == b' ' || b == b'\t' || (0x21..0x7f).contains(&b))
                {
                    return Err(format!(
                        "the value of the secret `{name}` cannot go in a header (only visible ASCII and spaces can)"
                    ));
                }
                out.push_str(&secret.value)
            }
        }
        rest = &after[end + CLOSE.len()..];
    }
    out.push_str(rest);
    Ok(Some(out))
}

/// Hides secret values in text that came from a guest (a log line, an
/// answer): each becomes `[secret NAME]`.
#[derive(Clone, Default)]
pub struct Redactor {
    secrets: Vec<(String, String)>,
}

/// Names the secrets, never their values.
impl std::fmt::Debug for Redactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.secrets.iter().map(|(_, name)| name))
            .finish()
    }
}

impl Redactor {
    pub fn new(secrets: &[Secret]) -> Redactor {
        let mut secrets: Vec<(String, String)> = secrets
            .iter()
            .filter(|s| !s.value.is_empty())
            .map(|s| (s.value.clone(), s.name.clone()))
            .collect();
        // The longest first: a value containing another is hidden whole.
        secrets.sort_by_key(|(v, _)| std::cmp::Reverse(v.len()));
        Redactor { secrets }
    }

    /// Whether there is anything to hide.
    pub fn is_empty(&self) -> bool {
        self.secrets.is_empty()
    }

    /// Every form a value is hidden in (as is, percent-encoded), with what
    /// replaces it.
    fn forms(&self) -> impl Iterator<Item = (String, String)> + '_ {
        self.secrets.iter().flat_map(|(value, name)| {
            let shown = format!("[secret {name}]");
            let mut forms = vec![(value.clone(), shown.clone())];
            for set in [URL_UNSAFE, QUERY_UNSAFE] {
                let encoded = utf8_percent_encode(value, set).to_string();
                if !forms.iter().any(|(f, _)| *f == encoded) {
                    forms.push((encoded, shown.clone()));
                }
            }
            forms
        })
    }

    /// The longest form, in bytes: what a stream must hold back to find a
    /// value split across two chunks.
    fn longest(&self) -> usize {
        self.forms().map(|(v, _)| v.len()).max().unwrap_or(0)
    }

    /// `bytes` with every form of every value replaced.
    pub fn scrub(&self, bytes: &[u8]) -> Vec<u8> {
        let mut out = bytes.to_vec();
        for (value, shown) in self.forms() {
            if memchr::memmem::find(&out, value.as_bytes()).is_none() {
                continue;
            }
            let mut next = Vec::with_capacity(out.len());
            let mut rest = &out[..];
            while let Some(at) = memchr::memmem::find(rest, value.as_bytes()) {
                next.extend_from_slice(&rest[..at]);
                next.extend_from_slice(shown.as_bytes());
                rest = &rest[at + value.len()..];
            }
            next.extend_from_slice(rest);
            out = next;
        }
        out
    }

    /// A scrubber for one stream (a response body): values split across
    /// chunks are found too.
    pub fn stream(&self) -> Scrubber {
        Scrubber {
            redactor: self.clone(),
            held: Vec::new(),
            keep: self.longest().saturating_sub(1),
        }
    }

    pub fn redact<'a>(&self, text: &'a str) -> Cow<'a, str> {
        let mut text = Cow::Borrowed(text);
        for (value, name) in &self.secrets {
            for form in [
                Cow::Borrowed(value.as_str()),
                Cow::Owned(utf8_percent_encode(value, URL_UNSAFE).to_string()),
                Cow::Owned(utf8_percent_encode(value, QUERY_UNSAFE).to_string()),
            ] {
                if text.contains(form.as_ref()) {
                    text = Cow::Owned(text.replace(form.as_ref(), &format!("[secret {name}]")));
                }
            }
        }
        text
    }
}

/// Scrubs one stream chunk by chunk, holding back the last bytes of each
/// chunk (fewer than the longest value) until the next shows whether they
/// start a value.
pub struct Scrubber {
    redactor: Redactor,
    held: Vec<u8>,
    keep: usize,
}

impl Scrubber {
    /// What of the stream so far can be passed on.
    pub fn chunk(&mut self, data: &[u8]) -> Vec<u8> {
        self.held.extend_from_slice(data);
        let scrubbed = self.redactor.scrub(&self.held);
        let cut = scrubbed.len().saturating_sub(self.keep);
        self.held = scrubbed[cut..].to_vec();
        scrubbed[..cut].to_vec()
    }

    /// The rest, at the end of the stream.
    pub fn finish(&mut self) -> Vec<u8> {
        let rest = std::mem::take(&mut self.held);
        self.redactor.scrub(&rest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::http::grant::{origin_of, Scheme};

    fn secrets() -> Vec<Secret> {
        vec![
            Secret {
                name: "token".into(),
                value: "s3cr3t value/x".into(),
                hosts: None,
            },
            Secret {
                name: "slack".into(),
                value: "T00/B00/XXX".into(),
                hosts: Some(vec![Grant::parse("https://hooks.slack.com").unwrap()]),
            },
        ]
    }

    #[test]
    fn placeholders_are_filled_for_their_hosts_only() {
        let slack = origin_of(Scheme::Https, "hooks.slack.com").unwrap();
        let other = origin_of(Scheme::Https, "evil.example").unwrap();
        let s = secrets();
        assert_eq!(
            substitute("/services/{{secret:slack}}", &slack, &s, Place::Path).unwrap(),
            Some("/services/T00/B00/XXX".into())
        );
        let e = substitute("/x?{{secret:slack}}", &other, &s, Place::Path).unwrap_err();
        assert!(e.contains("not for https://evil.example"), "{e}");
        assert!(!e.contains("T00"), "{e}");
        assert_eq!(
            substitute("/a/{{secret:token}}", &other, &s, Place::Path).unwrap(),
            Some("/a/s3cr3t%20value/x".into())
        );
        assert_eq!(
            substitute("Bearer {{secret:token}}", &other, &s, Place::Header).unwrap(),
            Some("Bearer s3cr3t value/x".into())
        );
        assert_eq!(substitute("/plain", &other, &s, Place::Path).unwrap(), None);
        // In a query the value stays one parameter's value.
        let q = vec![Secret {
            name: "q".into(),
            value: "a&b=c+d;e".into(),
            hosts: None,
        }];
        assert_eq!(
            substitute("t={{secret:q}}&x=1", &other, &q, Place::Query).unwrap(),
            Some("t=a%26b%3Dc%2Bd%3Be&x=1".into())
        );
        let e = substitute("/{{secret:nope}}", &other, &s, Place::Path).unwrap_err();
        assert!(
            e.contains("names no secret") && e.contains("token, slack"),
            "{e}"
        );
        let e = substitute("/{{secret:token", &other, &s, Place::Path).unwrap_err();
        assert!(e.contains("closing"), "{e}");
    }

    #[test]
    fn values_a_header_cannot_hold_are_refused() {
        let o = origin_of(Scheme::Https, "x.example").unwrap();
        let s = vec![Secret {
            name: "t".into(),
            value: "line\r\nInjected: 1".into(),
            hosts: None,
        }];
        let e = substitute("{{secret:t}}", &o, &s, Place::Header).unwrap_err();
        assert!(
            e.contains("cannot go in a header") && !e.contains("Injected"),
            "{e}"
        );
    }

    #[test]
    fn a_stream_is_scrubbed_whatever_its_chunks() {
        let r = Redactor::new(&secrets());
        let text = b"a s3cr3t value/x b s3cr3t%20value/x c T00/B00/XXX d";
        for size in 1..text.len() {
            let mut s = r.stream();
            let mut out = Vec::new();
            for chunk in text.chunks(size) {
                out.extend(s.chunk(chunk));
            }
            out.extend(s.finish());
            assert_eq!(
                String::from_utf8(out).unwrap(),
                "a [secret token] b [secret token] c [secret slack] d",
                "chunks of {size}"
            );
        }
    }

    #[test]
    fn redaction_hides_values_plain_and_encoded() {
        let r = Redactor::new(&secrets());
        assert_eq!(
            r.redact("got s3cr3t value/x and s3cr3t%20value/x, T00/B00/XXX"),
            "got [secret token] and [secret token], [secret slack]"
        );
        assert!(matches!(r.redact("nothing here"), Cow::Borrowed(_)));
    }
}
