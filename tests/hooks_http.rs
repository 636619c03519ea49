//! Hooks granted HTTP (issue 12), end to end through the CLI against a real
//! HTTP server on 127.0.0.1 started here: the ready-made `ping` and
//! `webhook` hooks deliver what they promise; a hostile hook is refused for
//! an ungranted origin, a redirect to one, a name that resolves to a private
//! address, past its request count and byte bounds, and against a server
//! that never answers; no secret reaches a log.

mod common;
mod policy_support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{assert_lacks, assert_mentions, World};
use policy_support::{hostile_http, python_http_hook, rust_guest, world};

/// One request the server received.
#[derive(Debug, Clone)]
struct Seen {
    method: String,
    target: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Seen {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// An HTTP/1.1 server on 127.0.0.1 answering by path:
/// `/redirect?to=URL` 302 to URL; `/hang` never answers; `/big` 1 MiB;
/// `/status/N` N; `/echo` the request's target, headers and body back;
/// anything else 200 "OK".
struct Server {
    port: u16,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Server {
    fn start() -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
        let log = seen.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { continue };
                let log = log.clone();
                std::thread::spawn(move || serve(conn, log));
            }
        });
        Server { port, seen }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn origin(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

fn serve(conn: TcpStream, log: Arc<Mutex<Vec<Seen>>>) {
    conn.set_read_timeout(Some(Duration::from_secs(30))).ok();
    let mut reader = BufReader::new(conn.try_clone().unwrap());
    let mut line = String::new();
    if reader.read_line(&mut line).unwrap_or(0) == 0 {
        return;
    }
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or_default().to_string();
    let target = parts.next().unwrap_or_default().to_string();
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).unwrap_or(0) == 0 {
            return;
        }
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.push((k.trim().to_string(), v.trim().to_string()));
        }
    }
    let get = |name: &str| {
        headers
            .iter()
            .find(|(k, _): &&(String, String)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
    };
    let mut body = Vec::new();
    if let Some(n) = get("content-length").and_then(|n| n.parse::<usize>().ok()) {
        body.resize(n, 0);
        if reader.read_exact(&mut body).is_err() {
            body.clear();
        }
    } else if get("transfer-encoding").is_some_and(|t| t.contains("chunked")) {
        loop {
            let mut size = String::new();
            if reader.read_line(&mut size).unwrap_or(0) == 0 {
                break;
            }
            let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
            let mut chunk = vec![0; n + 2];
            if reader.read_exact(&mut chunk).is_err() {
                break;
            }
            if n == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..n]);
        }
    }
    let seen = Seen {
        method,
        target: target.clone(),
        headers,
        body,
    };
    log.lock().unwrap().push(seen.clone());
    let mut out = conn;
    let path = target.split('?').next().unwrap_or_default();
    let (status, extra, payload): (u16, String, Vec<u8>) = if path == "/redirect" {
        let to = target.split_once("?to=").map(|x| x.1).unwrap_or("/");
        (302, format!("location: {to}\r\n"), Vec::new())
    } else if path == "/hang" {
        std::thread::sleep(Duration::from_secs(60));
        return;
    } else if path == "/big" {
        (200, String::new(), vec![b'b'; 1 << 20])
    } else if let Some(n) = path.strip_prefix("/status/") {
        (n.parse().unwrap_or(500), String::new(), b"no".to_vec())
    } else if path == "/echo" {
        let mut text = format!("{target}\n");
        for (k, v) in &seen.headers {
            text.push_str(&format!("{k}: {v}\n"));
        }
        text.push_str(&seen.text());
        (200, String::new(), text.into_bytes())
    } else {
        (200, String::new(), b"OK".to_vec())
    };
    let head = format!(
        "HTTP/1.1 {status} X\r\ncontent-length: {}\r\nconnection: close\r\n{extra}\r\n",
        payload.len()
    );
    let _ = out.write_all(head.as_bytes());
    let _ = out.write_all(&payload);
}

fn module(p: &Path) -> String {
    p.display().to_string()
}

fn add(w: &mut World, toml: &str) {
    w.databases.push_str(toml);
    w.databases.push('\n');
}

/// A world whose one hook is the hostile HTTP guest, on post-db-backup,
/// granted `grants`, configured by `config` (inline TOML), with `extra`
/// lines in its entry.
fn hostile(grants: &[String], config: &str, extra: &str) -> World {
    let mut w = world();
    let allow = grants
        .iter()
        .map(|g| format!("\"{g}\""))
        .collect::<Vec<_>>()
        .join(", ");
    add(
        &mut w,
        &format!(
            "[[hooks]]\nmodule = \"{}\"\nevents = [\"post-db-backup\"]\nallow_http = [{allow}]\nconfig = {config}\n{extra}",
            module(&hostile_http())
        ),
    );
    w
}

const PING_KEY: &str = "PingKey-7f3a9c-Secret";

#[test]
fn ping_reports_start_success_and_failure_with_the_reason() {
    let server = Server::start();
    let mut w = world();
    w.set_env("HC_TEST_PING_KEY", PING_KEY.into());
    add(
        &mut w,
        &format!(
            "[[hooks]]\nmodule = \"{}\"\nevents = [\"pre-db-backup\", \"post-db-backup\", \"db-backup-failed\"]\non_error = \"warn\"\nallow_http = [\"{}\"]\nsecrets = {{ ping_key = \"HC_TEST_PING_KEY\" }}\nconfig = {{ url = \"{}\" }}\n",
            module(&rust_guest("ping")),
            server.origin(),
            server.url("/{{secret:ping_key}}/{database}")
        ),
    );
    let r = w.ok(&["-vv", "dbbackup"]);
    let seen = server.seen();
    let targets: Vec<&str> = seen.iter().map(|s| s.target.as_str()).collect();
    assert_eq!(
        targets,
        [
            format!("/{PING_KEY}/default/start"),
            format!("/{PING_KEY}/default")
        ],
        "{}",
        r.stderr
    );
    assert!(seen.iter().all(|s| s.method == "POST"));
    let name = &w.names(None)[0];
    assert!(seen[1].text().contains(name.as_str()), "{:?}", seen[1]);
    // The key went to the server only: not in any log line at -vv.
    assert_lacks(&r.stderr, &[PING_KEY]);
    assert_lacks(&r.stdout, &[PING_KEY]);
    assert_mentions(&r.stderr, &["{{secret:ping_key}}"]);

    // A failing dump: /fail, with the reason in the body.
    w.wrap_tool("sqlite3", "echo 'disk I/O error (injected)' >&2; exit 1");
    let r = w.run(&["-vv", "dbbackup"]);
    assert_ne!(r.code, 0, "{}", r.stderr);
    let seen = server.seen();
    let fail = seen.last().unwrap();
    assert_eq!(fail.target, format!("/{PING_KEY}/default/fail"));
    assert!(
        fail.text().contains("disk I/O error (injected)"),
        "{fail:?}"
    );
    assert_lacks(&r.stderr, &[PING_KEY]);
}

/// The monitoring service being down must not stop backups: a failed
/// `/start` ping is a warning unless the config asks for a veto.
#[test]
fn a_failed_start_ping_is_a_warning_unless_it_may_veto() {
    let server = Server::start();
    for (veto, code) in [("", 0), (", veto = true", 3)] {
        let mut w = world();
        add(
            &mut w,
            &format!(
                "[[hooks]]\nmodule = \"{}\"\nevents = [\"pre-db-backup\"]\non_error = \"warn\"\nallow_http = [\"{}\"]\nconfig = {{ url = \"{}\"{veto} }}\n",
                module(&rust_guest("ping")),
                server.origin(),
                server.url("/status/404")
            ),
        );
        let r = w.run(&["dbbackup"]);
        assert_eq!(r.code, code, "veto `{veto}`: {}", r.stderr);
        assert_mentions(&r.stderr, &["ping to", "answered HTTP"]);
        assert_eq!(w.stored_files().is_empty(), code != 0);
    }
}

#[test]
fn webhook_posts_each_event_as_json_and_as_slack_text() {
    let server = Server::start();
    let mut w = world();
    w.set_env("WEBHOOK_TEST_TOKEN", "tok-91bd0e-Secret".into());
    add(
        &mut w,
        &format!(
            "[[hooks]]\nmodule = \"{m}\"\nevents = [\"post-db-backup\"]\nallow_http = [\"{o}\"]\nsecrets = {{ token = \"WEBHOOK_TEST_TOKEN\" }}\nconfig = {{ url = \"{u}\", headers = {{ Authorization = \"Bearer {{{{secret:token}}}}\" }} }}\n\n\
             [[hooks]]\nmodule = \"{m}\"\nevents = [\"post-db-backup\"]\nallow_http = [\"{o}\"]\nconfig = {{ url = \"{s}\", format = \"slack\" }}\n",
            m = module(&rust_guest("webhook")),
            o = server.origin(),
            u = server.url("/json"),
            s = server.url("/slack"),
        ),
    );
    let r = w.ok(&["-vv", "dbbackup"]);
    let seen = server.seen();
    assert_eq!(seen.len(), 2, "{}", r.stderr);
    let json: serde_json::Value = serde_json::from_slice(&seen[0].body).unwrap();
    assert_eq!(seen[0].target, "/json");
    assert_eq!(json["event"], "post-db-backup");
    assert_eq!(json["database"], "default");
    assert_eq!(json["backup"], w.names(None)[0].as_str());
    assert_eq!(
        seen[0].header("authorization"),
        Some("Bearer tok-91bd0e-Secret")
    );
    assert_eq!(seen[0].header("content-type"), Some("application/json"));
    let slack: serde_json::Value = serde_json::from_slice(&seen[1].body).unwrap();
    let text = slack["text"].as_str().unwrap();
    assert!(
        text.contains("backup of database `default` finished"),
        "{text}"
    );
    assert_lacks(&r.stderr, &["tok-91bd0e-Secret"]);
}

#[test]
fn a_request_to_an_ungranted_origin_fails_in_the_guest_and_is_logged() {
    let granted = Server::start();
    let other = Server::start();
    let mut w = hostile(
        &[granted.origin()],
        &format!("{{ do = \"get\", url = \"{}\" }}", other.url("/x")),
        "",
    );
    let r = w.run(&["dbbackup"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert_mentions(
        &r.stderr,
        &[
            "rcbackup refused the request",
            &format!("{} is not granted", other.origin()),
            "[hostile_http.wasm] HTTP request refused",
        ],
    );
    assert!(other.seen().is_empty());
    // Another scheme or port of a granted host is another origin.
    w = hostile(
        &[granted.origin()],
        &format!(
            "{{ do = \"get\", url = \"https://127.0.0.1:{}/x\" }}",
            granted.port
        ),
        "",
    );
    let r = w.run(&["dbbackup"]);
    assert_mentions(&r.stderr, &["is not granted"]);
    assert!(granted.seen().is_empty());
}

#[test]
fn a_redirect_to_an_ungranted_origin_is_not_followed() {
    let granted = Server::start();
    let other = Server::start();
    let w = hostile(
        &[granted.origin()],
        &format!(
            "{{ do = \"follow\", url = \"{}\" }}",
            granted.url(&format!("/redirect?to={}", other.url("/landing")))
        ),
        "",
    );
    let r = w.run(&["dbbackup"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert_mentions(&r.stderr, &["HTTP 302", "rcbackup refused the request"]);
    assert_eq!(granted.seen().len(), 1);
    assert!(
        other.seen().is_empty(),
        "the redirect reached {:?}",
        other.seen()
    );
}

#[test]
fn a_name_that_resolves_to_a_private_address_is_refused() {
    let server = Server::start();
    let w = hostile(
        &[format!("http://localhost:{}", server.port)],
        &format!(
            "{{ do = \"get\", url = \"http://localhost:{}/x\" }}",
            server.port
        ),
        "",
    );
    let r = w.run(&["dbbackup"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert_mentions(
        &r.stderr,
        &[
            "localhost resolves to",
            "loopback",
            "grant the address itself",
            // The guest learns only that it was refused, not the address.
            "localhost does not resolve to a public address",
        ],
    );
    assert!(server.seen().is_empty());
}

#[test]
fn requests_past_the_count_are_refused() {
    let server = Server::start();
    let w = hostile(
        &[server.origin()],
        &format!(
            "{{ do = \"many\", url = \"{}\", count = 20 }}",
            server.url("/n")
        ),
        "limits = { http_requests = 3 }\n",
    );
    let r = w.run(&["dbbackup"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert_mentions(&r.stderr, &["request 3: HTTP 200", "limits.http_requests"]);
    assert_eq!(server.seen().len(), 3);
}

#[test]
fn bytes_past_the_bounds_are_refused_both_ways() {
    let server = Server::start();
    let w = hostile(
        &[server.origin()],
        &format!(
            "{{ do = \"upload\", url = \"{}\", bytes = 200000 }}",
            server.url("/up")
        ),
        "limits = { http_sent_kib = 16 }\n",
    );
    let r = w.run(&["dbbackup"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(
        server.seen().iter().all(|s| s.body.len() <= 16 << 10),
        "the server got a body past the bound"
    );
    let w = hostile(
        &[server.origin()],
        &format!("{{ do = \"download\", url = \"{}\" }}", server.url("/big")),
        "limits = { http_received_kib = 64 }\n",
    );
    let r = w.run(&["dbbackup"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert_lacks(&r.stderr, &["download HTTP 200, 1048576 bytes"]);
}

#[test]
fn a_server_that_never_answers_cannot_hold_the_backup() {
    let server = Server::start();
    for (on_error, code) in [("warn", 0), ("fail", 1)] {
        let w = hostile(
            &[server.origin()],
            &format!("{{ do = \"get\", url = \"{}\" }}", server.url("/hang")),
            &format!(
                "on_error = \"{on_error}\"\nlimits = {{ deadline_ms = 4000, http_request_ms = 1000 }}\n"
            ),
        );
        let started = Instant::now();
        let r = w.run(&["dbbackup"]);
        let took = started.elapsed();
        assert_eq!(r.code, code, "on_error = {on_error}: {}", r.stderr);
        // The server holds the request for 60 s; the request's own bound
        // (1 s) ends it, well within the call's deadline.
        assert!(took < Duration::from_secs(30), "took {took:?}");
        assert_mentions(&r.stderr, &["no answer in time"]);
        assert_eq!(w.names(None).len(), 1, "the backup itself was published");
    }
    // A guest that never finishes its request body is ended by the deadline.
    let w = hostile(
        &[server.origin()],
        &format!("{{ do = \"unfinished\", url = \"{}\" }}", server.url("/u")),
        "limits = { deadline_ms = 3000, http_request_ms = 60000 }\n",
    );
    let started = Instant::now();
    let r = w.run(&["dbbackup"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(started.elapsed() < Duration::from_secs(30));
}

#[test]
fn a_secret_echoed_back_by_a_granted_server_is_redacted_everywhere() {
    let server = Server::start();
    let mut w = hostile(
        &[server.origin()],
        &format!(
            "{{ do = \"secret-echo\", url = \"{}\", secret = \"token\", return_body = true }}",
            server.url("/echo")
        ),
        "secrets = { token = \"ECHO_TEST_TOKEN\" }\n",
    );
    w.set_env("ECHO_TEST_TOKEN", "Echo-Value 42/x".into());
    let r = w.run(&["-vv", "dbbackup"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    let seen = server.seen();
    // Query and header were filled in; the body never is.
    assert!(
        seen[0].target.contains("echo=Echo-Value%2042/x"),
        "{:?}",
        seen[0]
    );
    assert_eq!(seen[0].header("x-echo"), Some("Echo-Value 42/x"));
    assert_eq!(seen[0].text(), "{{secret:token}}");
    assert_lacks(&r.stderr, &["Echo-Value 42/x", "Echo-Value%2042"]);
    assert_mentions(&r.stderr, &["[secret token]"]);
}

/// A server quoting the request back (as error pages do) cannot hand the
/// value to the guest: the response is scrubbed before the guest reads it,
/// so the guest cannot pass it on, changed or not, to another granted host.
#[test]
fn a_secret_sent_back_never_reaches_the_guest() {
    let echo = Server::start();
    let other = Server::start();
    let mut w = hostile(
        &[echo.origin(), other.origin()],
        &format!(
            "{{ do = \"relay\", url = \"{}\", to = \"{}\" }}",
            echo.url("/echo?q={{secret:t}}"),
            other.url("/sink")
        ),
        &format!(
            "secrets = {{ t = {{ env = \"RELAY_TEST_TOKEN\", hosts = [\"{}\"] }} }}\n",
            echo.origin()
        ),
    );
    w.set_env("RELAY_TEST_TOKEN", "RelayValue9137".into());
    let r = w.run(&["-vv", "dbbackup"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(echo.seen()[0].target.contains("q=RelayValue9137"));
    let sink = other.seen();
    assert_eq!(sink.len(), 1, "{}", r.stderr);
    let got = sink[0].text();
    assert!(got.contains("[secret t]"), "{got}");
    assert!(
        !got.contains("RelayValue9137") && !got.contains("7319eulaVyaleR"),
        "the value reached another host: {got}"
    );
    assert_lacks(&r.stderr, &["RelayValue9137", "7319eulaVyaleR"]);
}

#[test]
fn a_secret_goes_only_to_its_own_hosts() {
    let slack = Server::start();
    let other = Server::start();
    let mut w = hostile(
        &[slack.origin(), other.origin()],
        &format!(
            "{{ do = \"secret-echo\", url = \"{}\", secret = \"token\", in = [\"query\"] }}",
            other.url("/echo")
        ),
        &format!(
            "secrets = {{ token = {{ env = \"SCOPED_TEST_TOKEN\", hosts = [\"{}\"] }} }}\n",
            slack.origin()
        ),
    );
    w.set_env("SCOPED_TEST_TOKEN", "Scoped-Secret-55".into());
    let r = w.run(&["dbbackup"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert_mentions(&r.stderr, &["the secret `token` is not for"]);
    assert!(other.seen().is_empty());
    assert_lacks(&r.stderr, &["Scoped-Secret-55"]);
}

#[test]
fn http_is_linked_only_for_a_hook_that_is_granted_it() {
    // The same module without allow_http is refused when the config loads.
    let mut w = world();
    add(
        &mut w,
        &format!(
            "[[hooks]]\nmodule = \"{}\"\nconfig = {{ do = \"get\", url = \"http://127.0.0.1:9/\" }}\n",
            module(&hostile_http())
        ),
    );
    let r = w.run(&["dbbackup"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert_mentions(&r.stderr, &["hooks[0]", "imports wasi:http", "allow_http"]);
    assert!(w.stored_files().is_empty());
    // Only hooks may be granted HTTP; secrets and bounds need a grant.
    for (extra, says) in [
        (
            format!(
                "[policies.retention]\nmodule = \"{}\"\nallow_http = [\"https://x.example\"]\n",
                module(&rust_guest("keep_last"))
            ),
            "only hooks",
        ),
        (
            format!(
                "[[hooks]]\nmodule = \"{}\"\nsecrets = {{ t = \"X\" }}\n",
                module(&rust_guest("event_log"))
            ),
            "granted none",
        ),
        (
            format!(
                "[[hooks]]\nmodule = \"{}\"\nallow_http = [\"https://*.com\"]\n",
                module(&rust_guest("event_log"))
            ),
            "hooks[0].allow_http[0]",
        ),
    ] {
        let mut w = world();
        add(&mut w, &extra);
        let r = w.run(&["dbbackup"]);
        assert_eq!(r.code, 2, "{extra}: {}", r.stderr);
        assert_mentions(&r.stderr, &[says]);
    }
    // A secret whose variable is unset: commands that send no events go
    // on (with a warning); each call of the hook fails, as on_error says,
    // without running it.
    let server = Server::start();
    let w = hostile(
        &[server.origin()],
        &format!("{{ do = \"get\", url = \"{}\" }}", server.url("/x")),
        "secrets = { t = \"RCBACKUP_TEST_UNSET_VAR\" }\n",
    );
    let r = w.ok(&["listbackups"]);
    assert_mentions(&r.stderr, &["RCBACKUP_TEST_UNSET_VAR is not set"]);
    let r = w.run(&["dbbackup"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert_mentions(
        &r.stderr,
        &[
            "hook hostile_http.wasm not run",
            "RCBACKUP_TEST_UNSET_VAR is not set",
        ],
    );
    assert!(server.seen().is_empty());
}

#[test]
fn policy_test_shows_the_requests_and_sends_them_only_when_asked() {
    let server = Server::start();
    let w = world();
    let input = w.path("event.json");
    std::fs::write(
        &input,
        serde_json::json!({
            "allow_http": [server.origin()],
            "secrets": { "ping_key": "POLICY_TEST_PING_KEY" },
            "config": { "url": server.url("/{{secret:ping_key}}/{database}") },
            "event": { "kind": "db-backup-failed", "database": "default", "error": "boom" }
        })
        .to_string(),
    )
    .unwrap();
    let ping = module(&rust_guest("ping"));
    let input = input.display().to_string();
    // Without --send (and without the variable): shown, not sent.
    let r = w.ok(&["policy", "test", &ping, "--input", &input]);
    assert_mentions(
        &r.stdout,
        &[
            "request: POST",
            "/{{secret:ping_key}}/default/fail",
            "not sent",
        ],
    );
    assert!(server.seen().is_empty());
    let r = w.ok(&["policy", "test", &ping, "--input", &input, "--json"]);
    let doc: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(doc["requests"][0]["sent"], false);
    // --send needs the secret, and sends.
    let r = w.run(&["policy", "test", &ping, "--input", &input, "--send"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert_mentions(&r.stderr, &["POLICY_TEST_PING_KEY"]);
    let mut w = w;
    w.set_env("POLICY_TEST_PING_KEY", "pt-key-31".into());
    let r = w.ok(&["policy", "test", &ping, "--input", &input, "--send"]);
    assert_mentions(&r.stdout, &["-> 200 OK"]);
    assert_lacks(&r.stdout, &["pt-key-31"]);
    assert_eq!(server.seen()[0].target, "/pt-key-31/default/fail");
    assert_eq!(server.seen()[0].text(), "boom");
}

#[test]
fn a_tenant_may_not_grant_itself_the_operators_network() {
    let mut w = world();
    let file = w.path("acme.sqlite3");
    add(
        &mut w,
        &format!(
            "[tenants.acme]\n[tenants.acme.databases.default]\nengine = \"sqlite\"\nname = \"{}\"\n[[tenants.acme.hooks]]\nmodule = \"{}\"\nallow_http = [\"http://169.254.169.254\"]\n",
            file.display(),
            module(&hostile_http())
        ),
    );
    let r = w.run(&["--tenant", "acme", "dbbackup"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert_mentions(&r.stderr, &["hooks[0].allow_http", "169.254.169.254"]);

    // Nor take a hook secret from a variable outside its namespace (the
    // operator's HOME, AWS keys, ...).
    let server = Server::start();
    let mut w = world();
    let file = w.path("acme.sqlite3");
    add(
        &mut w,
        &format!(
            "[tenants.acme]\n[tenants.acme.databases.default]\nengine = \"sqlite\"\nname = \"{}\"\n[[tenants.acme.hooks]]\nmodule = \"{}\"\nallow_http = [\"{}\"]\nsecrets = {{ t = \"HOME\" }}\nconfig = {{ do = \"get\", url = \"{}\" }}\n",
            file.display(),
            module(&hostile_http()),
            server.origin(),
            server.url("/{{secret:t}}")
        ),
    );
    let r = w.run(&["--tenant", "acme", "dbbackup"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert_mentions(&r.stderr, &["HOME", "TENANT_ACME_"]);
    assert!(server.seen().is_empty());
}

/// A tenant's own hook may not hold a backup-all job longer than the
/// operator allows (its deadline, its requests' time): tenant_limits.
#[test]
fn a_tenants_own_limits_are_capped_by_the_operator() {
    let tenant = |w: &mut World, limits: &str| {
        let file = w.path("acme.sqlite3");
        common::sqlite(&file, "CREATE TABLE t(x);");
        add(
            w,
            &format!(
                "[tenants.acme]\n[tenants.acme.databases.default]\nengine = \"sqlite\"\nname = \"{}\"\n[[tenants.acme.hooks]]\nmodule = \"{}\"\nlimits = {{ {limits} }}\n",
                file.display(),
                module(&rust_guest("event_log"))
            ),
        );
    };
    let mut w = world();
    tenant(&mut w, "deadline_ms = 86400000");
    let r = w.run(&["--tenant", "acme", "dbbackup"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert_mentions(
        &r.stderr,
        &[
            "hooks[0].limits.deadline_ms",
            "at most 60000",
            "tenant_limits",
        ],
    );
    let mut w = world();
    w.setting("tenant_limits = { deadline_ms = 86400000 }");
    tenant(&mut w, "deadline_ms = 86400000");
    w.ok(&["--tenant", "acme", "dbbackup"]);
    let mut w = world();
    w.setting("tenant_limits = { memory_mib = 64 }");
    tenant(&mut w, "memory_mib = 128");
    let r = w.run(&["--tenant", "acme", "dbbackup"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert_mentions(&r.stderr, &["hooks[0].limits.memory_mib", "at most 64"]);
}

#[test]
fn the_python_http_hook_example_posts_each_event() {
    let server = Server::start();
    let mut w = world();
    add(
        &mut w,
        &format!(
            "[[hooks]]\nmodule = \"{}\"\nevents = [\"post-db-backup\"]\nallow_http = [\"{}\"]\nconfig = {{ url = \"{}\" }}\nlimits = {{ deadline_ms = 30000 }}\n",
            module(&python_http_hook()),
            server.origin(),
            server.url("/py")
        ),
    );
    let r = w.ok(&["dbbackup"]);
    let seen = server.seen();
    assert_eq!(seen.len(), 1, "{}", r.stderr);
    let body: serde_json::Value = serde_json::from_slice(&seen[0].body).unwrap();
    assert_eq!(body["event"], "post-db-backup", "{body}");
}
