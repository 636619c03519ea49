//! Hook: POSTs each event to a URL, as JSON, or as a Slack message.
//!
//! config: `{ url = "https://hooks.example/rcbackup" }`, optionally
//! `format = "slack"` (default `"json"`) and
//! `headers = { Authorization = "Bearer {{secret:token}}" }`. rcbackup fills
//! `{{secret:NAME}}` in the URL's path and query and in header values on the
//! way out, never in the body. Which events are sent is the `[[hooks]]`
//! entry's `events`. A status other than 2xx is an error (which `on_error`
//! handles).

use std::collections::BTreeMap;

use rcbackup_guest::http::{Method, Request, Url};
use rcbackup_guest::{export_policy, text, time, Event, EventKind, Hooks, Phase};
use serde::Deserialize;

/// The most of a failure's text put in a message.
const MAX_ERROR: usize = 10 * 1024;

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
struct Config {
    /// An error on a `pre-` event vetoes the operation (default: a warning).
    #[serde(default)]
    veto: bool,
    url: String,
    #[serde(default)]
    format: Format,
    #[serde(default)]
    headers: BTreeMap<String, String>,
}

#[derive(Deserialize, Debug, Default, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
enum Format {
    #[default]
    Json,
    Slack,
}

/// The event as one JSON object.
fn json_body(e: &Event) -> serde_json::Value {
    serde_json::json!({
        "event": e.kind.as_str(),
        "database": e.database,
        "tenant": e.tenant,
        "backup": e.backup,
        "size": e.size,
        "sha256": e.sha256,
        "duration_ms": e.duration_ms,
        "error": e.error.as_deref().map(|s| text::truncate(s, MAX_ERROR)),
        "time": time::rfc3339(e.now),
    })
}

/// The event as a sentence: "rcbackup: backup of database `default`
/// finished: default-....sqlite3.gz (12.3 MiB, 4.2 s)".
fn sentence(e: &Event) -> String {
    let db = e.database.as_deref().unwrap_or("?");
    let what = match (e.kind.is_media(), e.kind.is_restore()) {
        (false, false) => format!("backup of database `{db}`"),
        (false, true) => match &e.backup {
            Some(b) => format!("restore of database `{db}` from {b}"),
            None => format!("restore of database `{db}`"),
        },
        (true, false) => "media backup".to_string(),
        (true, true) => "media restore".to_string(),
    };
    let of_tenant = e
        .tenant
        .as_deref()
        .map(|t| format!(" of tenant `{t}`"))
        .unwrap_or_default();
    let outcome = match e.kind.phase() {
        Phase::Pre => "starting".to_string(),
        Phase::Post => match (&e.backup, e.kind) {
            (Some(b), EventKind::PostDbBackup) => format!("finished: {b}{}", details(e)),
            _ => format!("finished{}", details(e)),
        },
        Phase::Failed => {
            let error = e.error.as_deref().unwrap_or("no reason given");
            format!("FAILED{}: {}", details(e), text::truncate(error, MAX_ERROR))
        }
    };
    format!("rcbackup: {what}{of_tenant} {outcome}")
}

/// ` (12.3 MiB, 4.2 s)`, with what the event has of the two.
fn details(e: &Event) -> String {
    let parts: Vec<String> = [e.size.map(text::size), e.duration_ms.map(text::duration)]
        .into_iter()
        .flatten()
        .collect();
    if parts.is_empty() {
        String::new()
    } else {
        format!(" ({})", parts.join(", "))
    }
}

/// Slack's `text`, with the three characters it reads as markup escaped.
fn slack_body(e: &Event) -> serde_json::Value {
    let text = sentence(e)
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;");
    serde_json::json!({ "text": text })
}

fn body(format: Format, e: &Event) -> String {
    match format {
        Format::Json => json_body(e),
        Format::Slack => slack_body(e),
    }
    .to_string()
}

struct Webhook;

impl Hooks for Webhook {
    /// A notification that fails on a `pre-` event is a warning, not a
    /// veto, unless the config says `veto = true`: the monitoring or chat
    /// service being down must not stop backups (`on_error` cannot help
    /// there, since an error answer to a `pre-` event is always a veto).
    fn on_event(event: Event) -> Result<(), String> {
        let config: Config = rcbackup_guest::config()?;
        let kind = event.kind;
        rcbackup_guest::notify_outcome(kind, config.veto, notify(&config, event))
    }
}

fn notify(config: &Config, event: Event) -> Result<(), String> {
    let origin = Url::parse(&config.url)
        .map_err(|e| format!("config key `url`: {e}"))?
        .origin();
    let mut request = Request::new(Method::Post, &config.url)
        .header("content-type", "application/json")
        .body(body(config.format, &event));
    for (name, value) in &config.headers {
        request = request.header(name.as_str(), value.as_str());
    }
    let response = request.send()?;
    if !response.is_success() {
        // What the server says, in short: Slack answers `invalid_payload`,
        // `no_text`, ...
        let said = response.text();
        let said = text::truncate(said.trim(), 200);
        return Err(format!(
            "webhook {origin} answered HTTP {} on {}{}{}",
            response.status,
            event.kind.as_str(),
            if said.is_empty() { "" } else { ": " },
            said
        ));
    }
    Ok(())
}

export_policy!(Webhook: hooks);

#[cfg(test)]
mod tests {
    use super::*;

    fn event(kind: EventKind) -> Event {
        Event {
            kind,
            database: Some("default".into()),
            tenant: None,
            backup: Some("default-2026-03-01-020000.sqlite3.gz".into()),
            size: Some(12_897_485),
            sha256: Some("ab".repeat(32)),
            duration_ms: Some(4_230),
            error: None,
            now: 1_772_330_400,
        }
    }

    #[test]
    fn json_has_every_field_and_an_rfc3339_time() {
        let v = json_body(&event(EventKind::PostDbBackup));
        assert_eq!(
            v,
            serde_json::json!({
                "event": "post-db-backup",
                "database": "default",
                "tenant": null,
                "backup": "default-2026-03-01-020000.sqlite3.gz",
                "size": 12_897_485,
                "sha256": "ab".repeat(32),
                "duration_ms": 4_230,
                "error": null,
                "time": "2026-03-01T02:00:00Z",
            })
        );
    }

    #[test]
    fn slack_sentences() {
        let text = |e: &Event| slack_body(e)["text"].as_str().unwrap().to_string();
        assert_eq!(
            text(&event(EventKind::PostDbBackup)),
            "rcbackup: backup of database `default` finished: \
             default-2026-03-01-020000.sqlite3.gz (12.3 MiB, 4.2 s)"
        );
        let mut e = event(EventKind::PreDbBackup);
        e.tenant = Some("acme".into());
        e.backup = None;
        e.size = None;
        e.duration_ms = None;
        assert_eq!(
            text(&e),
            "rcbackup: backup of database `default` of tenant `acme` starting"
        );
        let mut e = event(EventKind::DbBackupFailed);
        e.backup = None;
        e.size = None;
        e.error = Some("pg_dump: <host> & port refused".into());
        assert_eq!(
            text(&e),
            "rcbackup: backup of database `default` FAILED (4.2 s): \
             pg_dump: &lt;host&gt; &amp; port refused"
        );
        assert_eq!(
            text(&event(EventKind::PostDbRestore)),
            "rcbackup: restore of database `default` from \
             default-2026-03-01-020000.sqlite3.gz finished (12.3 MiB, 4.2 s)"
        );
        let mut e = event(EventKind::PostMediaBackup);
        e.database = None;
        e.backup = None;
        assert_eq!(
            text(&e),
            "rcbackup: media backup finished (12.3 MiB, 4.2 s)"
        );
    }

    #[test]
    fn config_shape() {
        let c: Config = rcbackup_guest::parse_config(
            r#"{"url": "https://hooks.slack.com/services/{{secret:path}}", "format": "slack",
                "headers": {"Authorization": "Bearer {{secret:token}}"}}"#,
        )
        .unwrap();
        assert_eq!(c.format, Format::Slack);
        assert_eq!(c.headers["Authorization"], "Bearer {{secret:token}}");
        let e =
            rcbackup_guest::parse_config::<Config>(r#"{"url": "x", "format": "xml"}"#).unwrap_err();
        assert!(e.contains("accepted values (json, slack)"), "{e}");
        let e = rcbackup_guest::parse_config::<Config>("{}").unwrap_err();
        assert!(e.contains("`url` is required"), "{e}");
    }
}
