//! A hook that makes HTTP requests it may or may not be granted, for the
//! tests of issue 12: the config's `do` picks what it does on every event.
//! It answers `Ok` when every request got a response, else `Err` with the
//! error's text as it is (rcbackup's own `rcbackup refused ...` when the
//! host refused), so that tests can assert on the message; what it saw goes
//! to the log, as `hostile-http: ...` lines.
//!
//! - `{"do": "get", "url": U, "headers": {..}}`: one GET;
//! - `{"do": "follow", "url": U, "hops": 5}`: GET, then GET each 3xx's
//!   `location` itself (the host never follows);
//! - `{"do": "many", "url": U, "count": 50}`: `count` GETs, one after another;
//! - `{"do": "parallel", "url": U, "count": 50}`: `count` GETs all started
//!   before any answer is awaited;
//! - `{"do": "upload", "url": U, "bytes": N}`: a POST of N bytes;
//! - `{"do": "download", "url": U}`: a GET, its body read to the end;
//! - `{"do": "secret-echo", "url": U, "secret": "NAME", "in": ["query",
//!   "header", "body"], "return_body": false}`: a POST with
//!   `{{secret:NAME}}` in the query (`echo=`), the header `x-echo` and the
//!   body, then logs the response body (and with `return_body`, answers it
//!   as an error), to check what the host substitutes and what it redacts;
//! - `{"do": "relay", "url": U, "to": V}`: a GET of U, then its body (and
//!   the body reversed) POSTed to V;
//! - `{"do": "unfinished", "url": U}`: a POST whose body is never finished,
//!   then waits for its response forever (the host's time limits must end
//!   it).

use std::collections::BTreeMap;

use rcbackup_guest::bindings::http::wasi::http::{outgoing_handler, types};
use rcbackup_guest::http::{Method, Request, Response, Url};
use rcbackup_guest::{export_policy, log, Event, Hooks};
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    #[serde(rename = "do")]
    action: String,
    url: String,
    #[serde(default)]
    headers: BTreeMap<String, String>,
    #[serde(default = "five")]
    hops: u32,
    #[serde(default = "one")]
    count: u32,
    #[serde(default)]
    bytes: usize,
    #[serde(default)]
    secret: String,
    #[serde(default, rename = "in")]
    places: Vec<String>,
    #[serde(default)]
    return_body: bool,
    #[serde(default)]
    to: String,
}

fn five() -> u32 {
    5
}

fn one() -> u32 {
    1
}

fn say(what: &str) {
    log::info(&format!("hostile-http: {what}"));
}

fn request(config: &Config, method: Method, url: &str) -> Request {
    let mut r = Request::new(method, url);
    for (k, v) in &config.headers {
        r = r.header(k.as_str(), v.as_str());
    }
    r
}

fn seen(r: &Response) -> String {
    format!("HTTP {}, {} bytes", r.status, r.body.len())
}

/// `location` relative to `url`.
fn resolve(url: &str, location: &str) -> Result<String, String> {
    if location.starts_with("http://") || location.starts_with("https://") {
        return Ok(location.to_string());
    }
    let base = Url::parse(url)?;
    Ok(if let Some(rest) = location.strip_prefix("//") {
        format!("{}://{rest}", base.scheme)
    } else if location.starts_with('/') {
        format!("{}{location}", base.origin())
    } else {
        let path = base.path_with_query.split('?').next().unwrap_or("/");
        let dir = &path[..path.rfind('/').map_or(0, |i| i + 1)];
        format!("{}{dir}{location}", base.origin())
    })
}

/// The text of an error code: rcbackup's message as it is.
fn code_text(code: &types::ErrorCode) -> String {
    match code {
        types::ErrorCode::InternalError(Some(m)) => m.clone(),
        other => format!("{other:?}"),
    }
}

/// A request made with the WASI calls themselves, and its body.
fn raw_request(
    url: &Url,
    method: types::Method,
    headers: types::Fields,
) -> Result<(types::OutgoingRequest, types::OutgoingBody), String> {
    let req = types::OutgoingRequest::new(headers);
    req.set_method(&method).map_err(|()| "method")?;
    let scheme = if url.scheme == "https" {
        types::Scheme::Https
    } else {
        types::Scheme::Http
    };
    req.set_scheme(Some(&scheme)).map_err(|()| "scheme")?;
    req.set_authority(Some(&url.authority))
        .map_err(|()| "authority")?;
    req.set_path_with_query(Some(&url.path_with_query))
        .map_err(|()| "path")?;
    let body = req.body().map_err(|()| "body")?;
    Ok((req, body))
}

/// A GET, its (empty) body finished at once.
fn start_get(url: &Url) -> Result<types::FutureIncomingResponse, String> {
    let (req, body) = raw_request(url, types::Method::Get, types::Fields::new())?;
    let future = outgoing_handler::handle(req, None).map_err(|c| code_text(&c))?;
    types::OutgoingBody::finish(body, None).map_err(|c| code_text(&c))?;
    Ok(future)
}

fn run(config: &Config) -> Result<(), String> {
    match config.action.as_str() {
        "get" | "download" => {
            let r = request(config, Method::Get, &config.url).send()?;
            say(&format!("{} {}", config.action, seen(&r)));
        }
        "follow" => {
            let mut url = config.url.clone();
            for hop in 0..=config.hops {
                let r = request(config, Method::Get, &url).send()?;
                let location = r.header("location").map(str::to_string);
                match location {
                    Some(to) if (300..400).contains(&r.status) => {
                        say(&format!("hop {hop}: HTTP {} to {to}", r.status));
                        url = resolve(&url, &to)?;
                    }
                    _ => {
                        say(&format!("followed {hop} redirects: {}", seen(&r)));
                        return Ok(());
                    }
                }
            }
            return Err(format!("still redirected after {} hops", config.hops));
        }
        "many" => {
            for i in 0..config.count {
                match request(config, Method::Get, &config.url).send() {
                    Ok(r) => say(&format!("request {}: {}", i + 1, seen(&r))),
                    Err(e) => {
                        say(&format!("request {} failed", i + 1));
                        return Err(e.into());
                    }
                }
            }
        }
        "parallel" => {
            let url = Url::parse(&config.url)?;
            let mut futures = Vec::new();
            for i in 0..config.count {
                match start_get(&url) {
                    Ok(f) => futures.push(f),
                    Err(e) => {
                        say(&format!("request {} not started", i + 1));
                        return Err(e);
                    }
                }
            }
            say(&format!("{} requests started", futures.len()));
            for (i, f) in futures.iter().enumerate() {
                f.subscribe().block();
                match f.get() {
                    Some(Ok(Ok(r))) => say(&format!("request {}: HTTP {}", i + 1, r.status())),
                    Some(Ok(Err(code))) => return Err(code_text(&code)),
                    _ => return Err(format!("request {}: no response", i + 1)),
                }
            }
        }
        "upload" => {
            let r = request(config, Method::Post, &config.url)
                .header("content-type", "application/octet-stream")
                .body(vec![b'x'; config.bytes])
                .send()?;
            say(&format!("uploaded {} bytes: {}", config.bytes, seen(&r)));
        }
        "relay" => {
            // What a granted server sends back (a reflected secret, say),
            // sent on to another granted host, raw and reversed.
            let r = request(config, Method::Get, &config.url).send()?;
            let mut reversed = r.body.clone();
            reversed.reverse();
            let mut both = r.body.clone();
            both.push(b'\n');
            both.extend_from_slice(&reversed);
            let sent = request(config, Method::Post, &config.to)
                .body(both)
                .send()?;
            say(&format!("relayed {} bytes: {}", r.body.len(), seen(&sent)));
        }
        "secret-echo" => {
            let token = format!("{{{{secret:{}}}}}", config.secret);
            let all = config.places.is_empty();
            let wants = |p: &str| all || config.places.iter().any(|x| x == p);
            let mut url = config.url.clone();
            if wants("query") {
                url.push(if url.contains('?') { '&' } else { '?' });
                url.push_str(&format!("echo={token}"));
            }
            let mut r = request(config, Method::Post, &url);
            if wants("header") {
                r = r.header("x-echo", token.as_str());
            }
            if wants("body") {
                r = r.body(token.clone());
            }
            let r = r.send()?;
            let text = r.text();
            say(&format!("echoed: {text}"));
            if config.return_body {
                return Err(text);
            }
        }
        "unfinished" => {
            let url = Url::parse(&config.url)?;
            let headers = types::Fields::new();
            headers
                .append("content-length", b"1000")
                .map_err(|e| format!("{e:?}"))?;
            let (req, body) = raw_request(&url, types::Method::Post, headers)?;
            let future = outgoing_handler::handle(req, None).map_err(|c| code_text(&c))?;
            let stream = body.write().map_err(|()| "stream")?;
            let _ = stream.write(b"x");
            say("body started, never finished; waiting for the response");
            future.subscribe().block();
            let outcome = match future.get() {
                Some(Ok(Ok(r))) => format!("HTTP {}", r.status()),
                Some(Ok(Err(code))) => return Err(code_text(&code)),
                _ => "no response".to_string(),
            };
            drop(stream);
            drop(body);
            say(&format!("unfinished request answered: {outcome}"));
        }
        other => return Err(format!("hostile-http: unknown `do`: {other}")),
    }
    Ok(())
}

struct HostileHttp;

impl Hooks for HostileHttp {
    fn on_event(_event: Event) -> Result<(), String> {
        let config: Config = rcbackup_guest::config()?;
        run(&config)
    }
}

export_policy!(HostileHttp: hooks);
