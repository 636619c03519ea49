//! The checks every request of a hook passes before it leaves: its origin
//! is granted, its secrets are for that origin, and the call's bounds are
//! not spent. What is refused fails inside the guest with the reason, and
//! is logged with the module's name.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http::header::HeaderValue;
use http_body::Body as _;
use http_body_util::BodyExt;
use wasmtime_wasi_http::p2::bindings::http::types::ErrorCode;
use wasmtime_wasi_http::{Error, RequestOptions, WasiBody, WasiHttpHooks};

use super::grant::{origin_of, Origin, Scheme};
use super::secrets::{substitute, Place};
use super::send::{refused, send, RequestBounds, Sent, Usage};
use super::{Exchange, HttpGrant};
use crate::policy::text::escape;

/// Longest URL a log line or `policy test` shows, in characters.
const SHOWN_URL: usize = 300;

/// One call's gate.
pub struct Gate {
    module: String,
    grant: Option<Arc<HttpGrant>>,
    /// The call's deadline: no request outlives it.
    call_ends: Instant,
    requests: u32,
    usage: Arc<Usage>,
    /// What `policy test` shows: every request, sent or not.
    journal: Option<Arc<Mutex<Vec<Exchange>>>>,
    /// Warnings this call has written: past WARNINGS, one line says so and
    /// the rest are not shown (a hook failing a thousand requests must not
    /// write a thousand lines).
    warned: Arc<AtomicU32>,
}

/// Warnings about one call's requests that rcbackup's log shows.
const WARNINGS: u32 = 10;

/// Writes a warning about a request, unless the call has had its share.
fn warn_limited(warned: &AtomicU32, module: &str, line: std::fmt::Arguments) {
    match warned.fetch_add(1, Ordering::Relaxed) {
        n if n < WARNINGS => tracing::warn!("[{module}] {line}"),
        n if n == WARNINGS => tracing::warn!(
            "[{module}] more HTTP requests of this call were refused or failed; not shown"
        ),
        _ => {}
    }
}

impl Gate {
    /// A gate for a call; `None`: the module is granted nothing (its
    /// requests cannot be made at all: wasi:http is not linked for it).
    pub fn new(
        module: &str,
        grant: Option<Arc<HttpGrant>>,
        call_ends: Instant,
        journal: Option<Arc<Mutex<Vec<Exchange>>>>,
    ) -> Gate {
        Gate {
            module: module.to_string(),
            grant,
            call_ends,
            requests: 0,
            usage: Arc::default(),
            journal,
            warned: Arc::default(),
        }
    }

    fn note(&self, exchange: Exchange) {
        if let Some(j) = &self.journal {
            note(j, exchange);
        }
    }

    /// The request as it leaves, or why it may not.
    fn admit(
        &mut self,
        request: &mut http::Request<WasiBody>,
        shown: &str,
    ) -> Result<(Origin, Arc<HttpGrant>), String> {
        let Some(grant) = self.grant.clone() else {
            return Err("this hook is granted no HTTP (allow_http)".into());
        };
        self.requests += 1;
        if self.requests > grant.bounds.requests {
            return Err(format!(
                "this hook may make {} requests per call (limits.http_requests)",
                grant.bounds.requests
            ));
        }
        let uri = request.uri();
        let scheme = match uri.scheme_str() {
            Some(s) if s.eq_ignore_ascii_case("https") => Scheme::Https,
            Some(s) if s.eq_ignore_ascii_case("http") => Scheme::Http,
            _ => return Err(format!("{shown}: only http and https are granted")),
        };
        let origin = uri
            .authority()
            .and_then(|a| origin_of(scheme, a.as_str()))
            .ok_or_else(|| format!("{shown}: not a plain scheme://host[:port] URL"))?;
        if !grant.origins.iter().any(|g| g.matches(&origin)) {
            return Err(format!(
                "{origin} is not granted to this hook (its allow_http: {})",
                grant.shown_origins()
            ));
        }
        let used = self.usage.sent.load(Ordering::Relaxed);
        if used >= grant.bounds.sent_bytes && request.body().size_hint().lower() > 0 {
            return Err(format!(
                "this hook has sent its {} KiB per call (limits.http_sent_kib)",
                grant.bounds.sent_bytes >> 10
            ));
        }
        // Secrets go in last, once the origin is known to be granted.
        let whole = uri.path_and_query().map_or("/", |p| p.as_str());
        let (path, query) = match whole.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (whole, None),
        };
        let path_filled = substitute(path, &origin, &grant.secrets, Place::Path)?;
        let query_filled = query
            .map(|q| substitute(q, &origin, &grant.secrets, Place::Query))
            .transpose()?
            .flatten();
        if path_filled.is_some() || query_filled.is_some() {
            let mut filled = path_filled.unwrap_or_else(|| path.to_string());
            if let Some(q) = query_filled.as_deref().or(query) {
                filled.push('?');
                filled.push_str(q);
            }
            let mut parts = uri.clone().into_parts();
            parts.path_and_query =
                Some(filled.parse().map_err(|_| {
                    "the URL is not valid once its secrets are filled in".to_string()
                })?);
            *request.uri_mut() = http::Uri::from_parts(parts)
                .map_err(|_| "the URL is not valid once its secrets are filled in".to_string())?;
        }
        for value in request.headers_mut().values_mut() {
            let Ok(text) = value.to_str() else { continue };
            if let Some(filled) = substitute(text, &origin, &grant.secrets, Place::Header)? {
                let mut v = HeaderValue::from_str(&filled)
                    .map_err(|_| "a header is not valid once its secrets are filled in")?;
                v.set_sensitive(true);
                *value = v;
            }
        }
        Ok((origin, grant))
    }
}

/// Requests `policy test` lists at most; one more line says how many more
/// there were.
const SHOWN_REQUESTS: usize = 100;

fn note(journal: &Mutex<Vec<Exchange>>, exchange: Exchange) {
    let mut j = journal.lock().unwrap_or_else(|e| e.into_inner());
    match j.len() {
        n if n < SHOWN_REQUESTS => j.push(exchange),
        n if n == SHOWN_REQUESTS => j.push(Exchange {
            method: String::new(),
            url: String::new(),
            outcome: "more requests, not shown".into(),
            sent: false,
        }),
        _ => {}
    }
}

/// A URL as logs and `policy test` show it: as the guest wrote it (secrets
/// as placeholders), escaped, shortened.
fn shown_url(uri: &http::Uri) -> String {
    let text = escape(&uri.to_string()).into_owned();
    if text.chars().count() > SHOWN_URL {
        let cut: String = text.chars().take(SHOWN_URL).collect();
        format!("{cut}...")
    } else {
        text
    }
}

type Response = Box<dyn std::future::Future<Output = Result<Sent, Error>> + Send>;

impl WasiHttpHooks for Gate {
    /// The guest gets the cause (a bound it went past, a timeout), not
    /// hyper's "error from user's Body stream"; rcbackup's log has it,
    /// with the module, from the request's own line.
    fn p2_error_from_hyper(&mut self, err: &hyper::Error) -> ErrorCode {
        let mut source = std::error::Error::source(err);
        while let Some(s) = source {
            if let Some(ours) = s.downcast_ref::<Error>() {
                return match cause(ours) {
                    Error::HttpRequestBodySize(n) => ErrorCode::HttpRequestBodySize(*n),
                    Error::HttpResponseBodySize(n) => ErrorCode::HttpResponseBodySize(*n),
                    Error::ConnectionWriteTimeout => ErrorCode::ConnectionWriteTimeout,
                    Error::ConnectionReadTimeout => ErrorCode::ConnectionReadTimeout,
                    _ => ErrorCode::HttpProtocolError,
                };
            }
            source = s.source();
        }
        tracing::debug!("[{}] HTTP: {err}", self.module);
        if err.is_timeout() {
            ErrorCode::ConnectionReadTimeout
        } else {
            ErrorCode::HttpProtocolError
        }
    }

    fn p2_error_from_connect(&mut self, err: &std::io::Error) -> ErrorCode {
        tracing::debug!("[{}] HTTP connection: {err}", self.module);
        ErrorCode::ConnectionRefused
    }

    fn p2_error_from_tls(&mut self, err: &std::io::Error) -> ErrorCode {
        tracing::debug!("[{}] HTTP TLS: {err}", self.module);
        ErrorCode::TlsProtocolError
    }

    fn send_request(
        &mut self,
        mut request: http::Request<WasiBody>,
        _options: Option<RequestOptions>,
        _fut: Box<dyn std::future::Future<Output = Result<(), Error>> + Send>,
    ) -> Response {
        let method = request.method().to_string();
        // What the guest wrote may hold a value a server sent back (and
        // the guest changed past the scrubbing): logs see it redacted too.
        let redactor = self
            .grant
            .as_ref()
            .map(|g| g.redactor.clone())
            .unwrap_or_default();
        let url = redactor.redact(&shown_url(request.uri())).into_owned();
        let shown = format!("{method} {url}");
        let (origin, grant) = match self.admit(&mut request, &url) {
            Ok(ok) => ok,
            Err(why) => {
                warn_limited(
                    &self.warned,
                    &self.module,
                    format_args!("HTTP request refused: {shown}: {}", escape(&why)),
                );
                self.note(Exchange {
                    method,
                    url,
                    outcome: format!("refused: {why}"),
                    sent: false,
                });
                return Box::new(async move { Err(refused(why)) });
            }
        };
        if !grant.send {
            tracing::info!(
                "[{}] HTTP request (not sent: policy test without --send): {shown}",
                self.module
            );
            self.note(Exchange {
                method,
                url,
                outcome: "not sent; answered 200 with an empty body".into(),
                sent: false,
            });
            let max_sent = grant.bounds.sent_bytes;
            let usage = self.usage.clone();
            return Box::new(async move {
                // The guest writes the body after handing the request over:
                // read it (within the bound) as a send would, then answer.
                let mut body = request.into_body();
                while let Some(frame) = body.frame().await {
                    if let Some(data) = frame?.data_ref() {
                        let sent = usage.sent.fetch_add(data.len() as u64, Ordering::Relaxed)
                            + data.len() as u64;
                        if sent > max_sent {
                            return Err(Error::HttpRequestBodySize(Some(max_sent)));
                        }
                    }
                }
                let response = http::Response::builder()
                    .status(200)
                    .body(
                        http_body_util::Empty::new()
                            .map_err(|e: std::convert::Infallible| match e {})
                            .boxed_unsync(),
                    )
                    .map_err(|e| Error::InternalError(Some(e.to_string())))?;
                let io: Box<dyn std::future::Future<Output = Result<(), Error>> + Send> =
                    Box::new(async { Ok(()) });
                Ok((response, io))
            });
        }
        // Each request gets its bound, and never more than the call has left.
        let ends = (Instant::now() + grant.bounds.request_time).min(self.call_ends);
        let bounds = RequestBounds {
            ends: tokio::time::Instant::from_std(ends),
            max_sent: grant.bounds.sent_bytes,
            max_received: grant.bounds.received_bytes,
        };
        let module = self.module.clone();
        let journal = self.journal.clone();
        let usage = self.usage.clone();
        let warned = self.warned.clone();
        let started = Instant::now();
        Box::new(async move {
            let label = format!("[{module}] HTTP {shown}:");
            let result = send(request, origin, usage, bounds, redactor, &label).await;
            let ms = started.elapsed().as_millis();
            let mut refused_late = false;
            let outcome = match &result {
                Ok((r, _)) => {
                    tracing::debug!("[{module}] HTTP {shown} -> {} ({ms} ms)", r.status());
                    format!("{}", r.status())
                }
                // Refused once the name was resolved: said as every refusal is.
                Err(Error::InternalError(Some(why))) if why.starts_with("rcbackup refused") => {
                    let why = why.trim_start_matches("rcbackup refused the request: ");
                    warn_limited(
                        &warned,
                        &module,
                        format_args!("HTTP request refused: {shown}: {why}"),
                    );
                    refused_late = true;
                    format!("refused: {why}")
                }
                Err(e) => {
                    let why = describe(e, grant.bounds.request_time);
                    warn_limited(
                        &warned,
                        &module,
                        format_args!("HTTP {shown} failed after {ms} ms: {why}"),
                    );
                    why
                }
            };
            if let Some(j) = journal {
                note(
                    &j,
                    Exchange {
                        method,
                        url,
                        outcome,
                        sent: !refused_late,
                    },
                );
            }
            result
        })
    }
}

/// The error of ours inside a hyper error (a body of ours that failed:
/// a bound, a timeout), else the error itself.
fn cause(e: &Error) -> &Error {
    let Error::Hyper(h) = e else { return e };
    let mut source = std::error::Error::source(h);
    while let Some(s) = source {
        if let Some(ours) = s.downcast_ref::<Error>() {
            return cause(ours);
        }
        source = s.source();
    }
    e
}

/// A failure as the log says it.
fn describe(e: &Error, request_time: Duration) -> String {
    match cause(e) {
        Error::ConnectionTimeout
        | Error::ConnectionReadTimeout
        | Error::ConnectionWriteTimeout
        | Error::DnsTimeout => format!(
            "no answer in time (each request has {} ms, limits.http_request_ms, within the call's deadline)",
            request_time.as_millis()
        ),
        Error::HttpRequestBodySize(Some(n)) => {
            format!("over the {} KiB it may send per call (limits.http_sent_kib)", n >> 10)
        }
        Error::HttpResponseBodySize(Some(n)) => format!(
            "over the {} KiB it may receive per call (limits.http_received_kib)",
            n >> 10
        ),
        other => escape(&other.to_string()).into_owned(),
    }
}
