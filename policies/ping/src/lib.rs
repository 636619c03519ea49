//! Hook: pings a monitoring service the way healthchecks.io expects, so that
//! a backup that fails, or never runs, raises an alert there.
//!
//! - `pre-db-backup`, `pre-media-backup`: `POST <url>/start`;
//! - `post-db-backup`, `post-media-backup`: `POST <url>`, with a one-line
//!   summary as the body;
//! - `db-backup-failed`, `media-backup-failed`: `POST <url>/fail`, with the
//!   failure (the event's `error`, at most 10 KiB) as the body;
//! - the restore events the same way, with `restore = true` only.
//!
//! config: `{ url = "https://hc-ping.com/{{secret:ping_key}}/{database}" }`,
//! optionally `urls = { default = "...", analytics = "..." }` (per database
//! alias, before `url`), `media_url = "..."` (media events, before `url`),
//! `restore = true`. `{database}` and `{tenant}` are filled here (`{database}`
//! is `media` for media events); `{{secret:NAME}}` is filled by rcbackup on
//! the way out. A status other than 2xx is an error (which `on_error`
//! handles; on a `pre-` event it would veto, so grant it `on_error = "warn"`).

use std::collections::BTreeMap;

use rcbackup_guest::http::{Request, Url};
use rcbackup_guest::{export_policy, text, Event, Hooks, Phase};
use serde::Deserialize;

/// The most of a failure's text sent as the body of a `/fail` ping.
const MAX_BODY: usize = 10 * 1024;

#[derive(Deserialize, Default, Debug)]
#[serde(deny_unknown_fields, default)]
struct Config {
    /// An error on a `pre-` event vetoes the operation (default: a warning).
    #[serde(default)]
    veto: bool,
    url: Option<String>,
    urls: BTreeMap<String, String>,
    media_url: Option<String>,
    restore: bool,
}

/// The URL to ping for `event`, or none when the config asks for no ping.
fn ping_url(config: &Config, event: &Event) -> Result<Option<String>, String> {
    if config.url.is_none() && config.urls.is_empty() && config.media_url.is_none() {
        return Err("config key `url` is required (or `urls`, `media_url`)".into());
    }
    let kind = event.kind;
    if kind.is_restore() && !config.restore {
        return Ok(None);
    }
    let database = if kind.is_media() {
        "media"
    } else {
        event.database.as_deref().unwrap_or("")
    };
    let (template, key) = if kind.is_media() {
        (config.media_url.as_ref(), "media_url")
    } else {
        (config.urls.get(database), "urls")
    };
    let (template, key) = match (template, &config.url) {
        (Some(t), _) => (t, key),
        (None, Some(url)) => (url, "url"),
        (None, None) => return Ok(None),
    };
    let mut url = template.replace("{database}", &encode(database));
    if url.contains("{tenant}") {
        let tenant = event.tenant.as_deref().ok_or_else(|| {
            format!("config key `{key}` uses {{tenant}}, but this event has no tenant")
        })?;
        url = url.replace("{tenant}", &encode(tenant));
    }
    let suffix = match kind.phase() {
        Phase::Pre => "/start",
        Phase::Post => "",
        Phase::Failed => "/fail",
    };
    Ok(Some(with_suffix(&url, suffix)))
}

/// `url` with `suffix` added to its path, before any query.
fn with_suffix(url: &str, suffix: &str) -> String {
    let (path, query) = match url.find('?') {
        Some(i) => url.split_at(i),
        None => (url, ""),
    };
    format!("{}{suffix}{query}", path.trim_end_matches('/'))
}

/// `value` percent-encoded for a path segment.
fn encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The body of the ping: the failure for `/fail`, a one-line summary of
/// what was done for a success, nothing for `/start`.
fn body(event: &Event) -> String {
    match event.kind.phase() {
        Phase::Pre => String::new(),
        Phase::Failed => {
            let error = event.error.as_deref().unwrap_or("failed (no reason given)");
            text::truncate(error, MAX_BODY).to_string()
        }
        Phase::Post => {
            let mut line = event.kind.as_str().to_string();
            if let Some(db) = &event.database {
                line.push_str(&format!(" database={db}"));
            }
            if let Some(t) = &event.tenant {
                line.push_str(&format!(" tenant={t}"));
            }
            if let Some(b) = &event.backup {
                line.push_str(&format!(" backup={b}"));
            }
            if let Some(s) = event.size {
                line.push_str(&format!(" size={}", text::size(s)));
            }
            if let Some(ms) = event.duration_ms {
                line.push_str(&format!(" duration={}", text::duration(ms)));
            }
            line
        }
    }
}

struct PingHook;

impl Hooks for PingHook {
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
    let Some(url) = ping_url(config, &event)? else {
        return Ok(());
    };
    let origin = Url::parse(&url)
        .map_err(|e| format!("the ping URL (config key `url` or `urls`): {e}"))?
        .origin();
    let response = Request::new(rcbackup_guest::http::Method::Post, url)
        .header("content-type", "text/plain; charset=utf-8")
        .body(body(&event))
        .send()?;
    if !response.is_success() {
        return Err(format!(
            "ping to {origin} on {} answered HTTP {}",
            event.kind.as_str(),
            response.status
        ));
    }
    rcbackup_guest::log::debug(&format!("pinged {origin} on {}", event.kind.as_str()));
    Ok(())
}

export_policy!(PingHook: hooks);

#[cfg(test)]
mod tests {
    use super::*;
    use rcbackup_guest::EventKind;

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

    fn config(json: &str) -> Config {
        rcbackup_guest::parse_config(json).unwrap()
    }

    fn url(config: &Config, e: &Event) -> Option<String> {
        ping_url(config, e).unwrap()
    }

    #[test]
    fn each_event_pings_its_endpoint() {
        let c = config(r#"{"url": "https://hc-ping.com/{{secret:key}}/{database}"}"#);
        let base = "https://hc-ping.com/{{secret:key}}/default";
        assert_eq!(
            url(&c, &event(EventKind::PreDbBackup)),
            Some(format!("{base}/start"))
        );
        assert_eq!(
            url(&c, &event(EventKind::PostDbBackup)),
            Some(base.to_string())
        );
        assert_eq!(
            url(&c, &event(EventKind::DbBackupFailed)),
            Some(format!("{base}/fail"))
        );
        assert_eq!(
            url(&c, &event(EventKind::PreMediaBackup)),
            Some("https://hc-ping.com/{{secret:key}}/media/start".into())
        );
        // Restores only when asked.
        assert_eq!(url(&c, &event(EventKind::PreDbRestore)), None);
        let c = config(r#"{"url": "https://hc-ping.com/u", "restore": true}"#);
        assert_eq!(
            url(&c, &event(EventKind::DbRestoreFailed)),
            Some("https://hc-ping.com/u/fail".into())
        );
    }

    #[test]
    fn per_database_urls_queries_and_placeholders() {
        let c = config(
            r#"{"urls": {"analytics": "https://hc.example/a/?rid=1"},
                "media_url": "https://hc.example/m/"}"#,
        );
        let mut e = event(EventKind::PreDbBackup);
        // No URL for `default`: no ping.
        assert_eq!(url(&c, &e), None);
        e.database = Some("analytics".into());
        assert_eq!(url(&c, &e), Some("https://hc.example/a/start?rid=1".into()));
        assert_eq!(
            url(&c, &event(EventKind::MediaBackupFailed)),
            Some("https://hc.example/m/fail".into())
        );

        let c = config(r#"{"url": "https://hc.example/{tenant}/{database}"}"#);
        let mut e = event(EventKind::PostDbBackup);
        assert!(ping_url(&c, &e)
            .unwrap_err()
            .contains("`url` uses {tenant}"));
        e.tenant = Some("acme co".into());
        e.database = Some("db/1".into());
        assert_eq!(
            url(&c, &e),
            Some("https://hc.example/acme%20co/db%2F1".into())
        );

        assert!(ping_url(&config("{}"), &e)
            .unwrap_err()
            .contains("`url` is required"));
        assert!(rcbackup_guest::parse_config::<Config>(r#"{"uri": "x"}"#).is_err());
    }

    #[test]
    fn bodies() {
        assert_eq!(body(&event(EventKind::PreDbBackup)), "");
        assert_eq!(
            body(&event(EventKind::PostDbBackup)),
            "post-db-backup database=default backup=default-2026-03-01-020000.sqlite3.gz \
             size=12.3 MiB duration=4.2 s"
        );
        let mut e = event(EventKind::DbBackupFailed);
        e.error = Some("pg_dump: connection refused".into());
        assert_eq!(body(&e), "pg_dump: connection refused");
        e.error = Some("é".repeat(20_000));
        let b = body(&e);
        assert!(b.len() <= MAX_BODY && b.len() > MAX_BODY - 2, "{}", b.len());
    }
}
