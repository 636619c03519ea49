//! Outgoing HTTP for hooks (the `http-hook` world): one blocking call per
//! request. A hook that calls it imports `wasi:http/outgoing-handler`, which
//! rcbackup links only for a `[[hooks]]` entry granting `allow_http`.
//!
//! ```no_run
//! fn ping(url: &str) -> Result<(), String> {
//!     let response = rcbackup_guest::http::post(url, "text/plain", "done")?;
//!     if !response.is_success() {
//!         return Err(format!("the ping got HTTP {}", response.status));
//!     }
//!     Ok(())
//! }
//! ```
//!
//! rcbackup checks every request before it leaves: a scheme, host or port
//! the hook's config does not grant (`allow_http`) fails with rcbackup's own
//! message ("rcbackup refused ..."), which [`HttpError`] carries as it is so
//! that a hook can return it. Redirects are never followed: a 3xx comes back
//! as a [`Response`]. `{{secret:NAME}}` in the path, the query or a header
//! value is replaced by rcbackup on the way out (never in the body); the hook
//! never sees the value.

use std::fmt;

use crate::bindings::http::wasi::http::outgoing_handler;
use crate::bindings::http::wasi::http::types::{
    self as wasi_http, ErrorCode, Fields, IncomingBody, OutgoingBody, OutgoingRequest, Scheme,
};
use crate::bindings::http::wasi::io::streams::StreamError;

/// The most bytes handed to the output stream in one `write`.
const WRITE_CHUNK: usize = 4096;
/// The most bytes asked of the input stream in one `read`.
const READ_CHUNK: u64 = 64 * 1024;

/// An HTTP method.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Head,
    Post,
    Put,
    Patch,
    Delete,
    Options,
}

impl Method {
    fn to_wasi(self) -> wasi_http::Method {
        match self {
            Method::Get => wasi_http::Method::Get,
            Method::Head => wasi_http::Method::Head,
            Method::Post => wasi_http::Method::Post,
            Method::Put => wasi_http::Method::Put,
            Method::Patch => wasi_http::Method::Patch,
            Method::Delete => wasi_http::Method::Delete,
            Method::Options => wasi_http::Method::Options,
        }
    }

    /// Whether the method carries a body, so that an empty one is sent as
    /// `content-length: 0` rather than none.
    fn has_body(self) -> bool {
        matches!(self, Method::Post | Method::Put | Method::Patch)
    }
}

/// Why a request got no response: refused by rcbackup, not sent, or cut
/// short. The message is fit to return from `on_event` as it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpError {
    message: String,
}

impl HttpError {
    fn new(message: impl Into<String>) -> Self {
        HttpError {
            message: message.into(),
        }
    }

    /// The message: rcbackup's own words when it refused the request
    /// ("rcbackup refused ..."), else what went wrong.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// Whether rcbackup refused the request (a host, port or scheme not
    /// granted, a limit reached): retrying will not help.
    pub fn is_refused(&self) -> bool {
        self.message.starts_with("rcbackup refused")
    }
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for HttpError {}

impl From<HttpError> for String {
    fn from(e: HttpError) -> String {
        e.message
    }
}

/// A response, its body read to the end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    /// Names in lower case, values as text (bytes that are not UTF-8 become
    /// U+FFFD), in the order received.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    /// The body as text (bytes that are not UTF-8 become U+FFFD).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The first value of header `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// A 2xx status.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

/// The parts of an `http://` or `https://` URL that a request is made of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Url {
    /// `http` or `https`, lower case.
    pub scheme: String,
    /// `host[:port]`, as written.
    pub authority: String,
    /// `/path?query`, at least `/`, without the `#fragment`; spaces,
    /// control and non-ASCII characters percent-encoded.
    pub path_with_query: String,
}

impl Url {
    /// Splits `url`; only `http` and `https`, and no `user:password@`
    /// (a secret belongs in a header, as `{{secret:NAME}}`).
    pub fn parse(url: &str) -> Result<Url, HttpError> {
        let url = url.trim();
        let (scheme, rest) = url
            .split_once("://")
            .ok_or_else(|| HttpError::new("the URL has no scheme: write http:// or https://"))?;
        let scheme = scheme.to_ascii_lowercase();
        if scheme != "http" && scheme != "https" {
            return Err(HttpError::new(format!(
                "the URL's scheme is {scheme}: only http and https are supported"
            )));
        }
        let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let (authority, tail) = rest.split_at(end);
        if authority.is_empty() {
            return Err(HttpError::new("the URL has no host"));
        }
        if authority.contains('@') {
            return Err(HttpError::new(
                "the URL holds a user name or password: send credentials in a header instead",
            ));
        }
        if authority
            .bytes()
            .any(|b| b <= b' ' || b >= 0x7f || b"\\\"<>{}|^`".contains(&b))
        {
            return Err(HttpError::new("the URL's host is not a valid host name"));
        }
        let tail = tail.split('#').next().unwrap_or("");
        let mut path_with_query = String::with_capacity(tail.len() + 1);
        if !tail.starts_with('/') {
            path_with_query.push('/');
        }
        for c in tail.chars() {
            if c.is_ascii() && !c.is_ascii_control() && !matches!(c, ' ' | '"' | '<' | '>' | '`') {
                path_with_query.push(c);
            } else {
                let mut buf = [0u8; 4];
                for b in c.encode_utf8(&mut buf).bytes() {
                    path_with_query.push_str(&format!("%{b:02X}"));
                }
            }
        }
        Ok(Url {
            scheme,
            authority: authority.to_string(),
            path_with_query,
        })
    }

    /// `scheme://authority`: what errors name, since a path may hold a
    /// token.
    pub fn origin(&self) -> String {
        format!("{}://{}", self.scheme, self.authority)
    }
}

/// A request being built: `Request::new(Method::Post, url).header(k,
/// v).body(bytes).send()`.
#[derive(Debug, Clone)]
pub struct Request {
    method: Method,
    url: String,
    headers: Vec<(String, Vec<u8>)>,
    body: Vec<u8>,
}

impl Request {
    pub fn new(method: Method, url: impl Into<String>) -> Self {
        Request {
            method,
            url: url.into(),
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    /// Adds a header (another one of the same name is kept too). A value
    /// may hold `{{secret:NAME}}`, which rcbackup fills on the way out.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<Vec<u8>>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// The body, sent as it is (rcbackup fills no `{{secret:...}}` in it).
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }

    /// Sends the request and reads the whole response. Any status is a
    /// response, 3xx included: redirects are not followed.
    pub fn send(self) -> Result<Response, HttpError> {
        let url = Url::parse(&self.url)?;
        let origin = url.origin();
        let failed = |what: &str| HttpError::new(format!("request to {origin}: {what}"));

        let headers = Fields::new();
        for (name, value) in &self.headers {
            headers
                .append(&name.to_ascii_lowercase(), value)
                .map_err(|e| failed(&format!("header `{name}` refused: {e:?}")))?;
        }
        let has_length = self
            .headers
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case("content-length"));
        if !has_length && (self.method.has_body() || !self.body.is_empty()) {
            headers
                .append("content-length", self.body.len().to_string().as_bytes())
                .map_err(|e| failed(&format!("header `content-length` refused: {e:?}")))?;
        }

        let request = OutgoingRequest::new(headers);
        request
            .set_method(&self.method.to_wasi())
            .map_err(|()| failed("the method was refused"))?;
        let scheme = if url.scheme == "https" {
            Scheme::Https
        } else {
            Scheme::Http
        };
        request
            .set_scheme(Some(&scheme))
            .map_err(|()| failed("the scheme was refused"))?;
        request
            .set_authority(Some(&url.authority))
            .map_err(|()| failed("the host is not valid"))?;
        request
            .set_path_with_query(Some(&url.path_with_query))
            .map_err(|()| failed("the path or query is not valid"))?;
        let body = request
            .body()
            .map_err(|()| failed("its body could not be opened"))?;

        let future =
            outgoing_handler::handle(request, None).map_err(|code| error(&origin, &code))?;

        // The body goes out after `handle`: the host reads it as it is
        // written.
        let written = write_body(body, &self.body, &origin);

        future.subscribe().block();
        let response = match future.get() {
            Some(Ok(Ok(response))) => response,
            Some(Ok(Err(code))) => return Err(error(&origin, &code)),
            Some(Err(())) => return Err(failed("its response was taken twice")),
            None => return Err(failed("no response arrived")),
        };
        drop(future);
        // A body that could not be written all, answered all the same: the
        // answer may be to a request the server never read whole.
        written?;

        let status = response.status();
        let headers = response
            .headers()
            .entries()
            .into_iter()
            .map(|(n, v)| (n, String::from_utf8_lossy(&v).into_owned()))
            .collect();
        let incoming = response
            .consume()
            .map_err(|()| failed("its response body could not be opened"))?;
        let body = read_body(&incoming).map_err(|e| match e {
            ReadError::Code(code) => error(&origin, &code),
            ReadError::Other(text) => failed(&format!("reading the response: {text}")),
        })?;
        drop(IncomingBody::finish(incoming));
        drop(response);
        Ok(Response {
            status,
            headers,
            body,
        })
    }
}

/// `GET url`.
pub fn get(url: &str) -> Result<Response, HttpError> {
    Request::new(Method::Get, url).send()
}

/// `POST url` with `body` of type `content_type`.
pub fn post(
    url: &str,
    content_type: &str,
    body: impl Into<Vec<u8>>,
) -> Result<Response, HttpError> {
    Request::new(Method::Post, url)
        .header("content-type", content_type)
        .body(body)
        .send()
}

/// Writes `data` into `body` (at most [`WRITE_CHUNK`] bytes a write, as
/// much as the stream says it takes) and finishes it.
fn write_body(body: OutgoingBody, data: &[u8], origin: &str) -> Result<(), HttpError> {
    let stream_error = |e: StreamError| match e {
        StreamError::Closed => HttpError::new(format!(
            "request to {origin}: the connection closed while the body was sent"
        )),
        StreamError::LastOperationFailed(e) => match wasi_http::http_error_code(&e) {
            Some(code) => error(origin, &code),
            None => HttpError::new(format!("request to {origin}: {}", e.to_debug_string())),
        },
    };
    {
        let stream = body.write().map_err(|()| {
            HttpError::new(format!("request to {origin}: its body could not be opened"))
        })?;
        let mut rest = data;
        while !rest.is_empty() {
            let room = stream.check_write().map_err(stream_error)?;
            if room == 0 {
                stream.subscribe().block();
                continue;
            }
            let n = rest
                .len()
                .min(WRITE_CHUNK)
                .min(usize::try_from(room).unwrap_or(usize::MAX));
            stream.write(&rest[..n]).map_err(stream_error)?;
            rest = &rest[n..];
        }
        stream.blocking_flush().map_err(stream_error)?;
        // The stream is dropped before its body is finished.
    }
    OutgoingBody::finish(body, None).map_err(|code| error(origin, &code))
}

enum ReadError {
    Code(ErrorCode),
    Other(String),
}

/// The whole of a response body.
fn read_body(body: &IncomingBody) -> Result<Vec<u8>, ReadError> {
    let stream = body
        .stream()
        .map_err(|()| ReadError::Other("the body could not be opened".into()))?;
    let mut out = Vec::new();
    loop {
        match stream.blocking_read(READ_CHUNK) {
            Ok(bytes) => out.extend_from_slice(&bytes),
            Err(StreamError::Closed) => return Ok(out),
            Err(StreamError::LastOperationFailed(e)) => {
                return Err(match wasi_http::http_error_code(&e) {
                    Some(code) => ReadError::Code(code),
                    None => ReadError::Other(e.to_debug_string()),
                })
            }
        }
    }
}

/// An error code as an [`HttpError`]: rcbackup's own message
/// ("rcbackup refused ...") as it is, anything else as `request to ORIGIN:
/// what`.
fn error(origin: &str, code: &ErrorCode) -> HttpError {
    match code {
        ErrorCode::InternalError(Some(message)) if message.starts_with("rcbackup") => {
            HttpError::new(message.clone())
        }
        other => HttpError::new(format!("request to {origin}: {}", describe(other))),
    }
}

/// An error code in words.
fn describe(code: &ErrorCode) -> String {
    match code {
        ErrorCode::InternalError(Some(message)) => message.clone(),
        ErrorCode::InternalError(None) => "failed inside the host".into(),
        ErrorCode::DnsTimeout => "its name did not resolve in time".into(),
        ErrorCode::DnsError(e) => format!(
            "its name did not resolve ({})",
            e.rcode.as_deref().unwrap_or("no answer")
        ),
        ErrorCode::DestinationNotFound => "no such host".into(),
        ErrorCode::DestinationUnavailable => "the host is unavailable".into(),
        ErrorCode::DestinationIpProhibited => "the address is prohibited".into(),
        ErrorCode::DestinationIpUnroutable => "the address is unroutable".into(),
        ErrorCode::ConnectionRefused => "connection refused".into(),
        ErrorCode::ConnectionTerminated => "connection closed by the server".into(),
        ErrorCode::ConnectionTimeout => "timed out connecting".into(),
        ErrorCode::ConnectionReadTimeout => "timed out waiting for the server".into(),
        ErrorCode::ConnectionWriteTimeout => "timed out sending".into(),
        ErrorCode::TlsProtocolError => "TLS protocol error".into(),
        ErrorCode::TlsCertificateError => "the server's TLS certificate was refused".into(),
        ErrorCode::TlsAlertReceived(a) => format!(
            "TLS alert from the server ({})",
            a.alert_message.as_deref().unwrap_or("no message")
        ),
        ErrorCode::HttpRequestBodySize(_) => "the request body is too large".into(),
        ErrorCode::HttpResponseBodySize(_) => "the response body is too large".into(),
        ErrorCode::HttpResponseIncomplete => "the response was cut short".into(),
        ErrorCode::HttpResponseTimeout => "timed out waiting for the response".into(),
        ErrorCode::HttpRequestUriInvalid => "the URL is not valid".into(),
        ErrorCode::HttpProtocolError => "HTTP protocol error".into(),
        other => format!("{other:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::Url;

    fn parts(url: &str) -> (String, String, String) {
        let u = Url::parse(url).unwrap();
        (u.scheme, u.authority, u.path_with_query)
    }

    #[test]
    fn urls_split_into_scheme_authority_path() {
        assert_eq!(
            parts("https://hc-ping.com/abc/start"),
            ("https".into(), "hc-ping.com".into(), "/abc/start".into())
        );
        assert_eq!(
            parts("HTTP://127.0.0.1:8080"),
            ("http".into(), "127.0.0.1:8080".into(), "/".into())
        );
        assert_eq!(parts("https://h.example?x=1").2, "/?x=1");
        assert_eq!(parts("https://h.example/p?q=a b#frag").2, "/p?q=a%20b");
        assert_eq!(parts("https://h.example/café").2, "/caf%C3%A9");
        assert_eq!(
            parts("https://hc-ping.com/{{secret:key}}/db").2,
            "/{{secret:key}}/db"
        );
        assert_eq!(parts("https://[::1]:443/x").1, "[::1]:443");
    }

    #[test]
    fn bad_urls_are_refused() {
        for url in [
            "hc-ping.com/x",
            "ftp://h/x",
            "https:///x",
            "https://user:pw@h/x",
            "https://h x/",
        ] {
            assert!(Url::parse(url).is_err(), "{url}");
        }
        assert!(!Url::parse("https://user:hunter2@h/")
            .unwrap_err()
            .message()
            .contains("hunter2"));
    }
}
