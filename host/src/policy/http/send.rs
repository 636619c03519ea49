//! Sends one checked request: resolves the name itself, connects only to an
//! address it checked (so a name cannot be re-resolved to another address
//! between the check and the connection), speaks HTTP/1.1 over TCP or TLS,
//! and bounds the bytes each way and the time of the whole exchange.

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::task::{ready, Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame};
use http_body_util::BodyExt;
use tokio::net::TcpStream;
use tokio::time::Instant;
use wasmtime_wasi_http::io::TokioIo;
use wasmtime_wasi_http::{Error, WasiBody};

use super::grant::{reserved_range, Origin, Scheme};
use super::secrets::{Redactor, Scrubber};

/// Name lookups running at once, in the whole process.
const RESOLVERS: usize = 8;

/// What one call's requests have used, shared by the bodies of all its
/// requests (which run on tasks of their own).
#[derive(Debug, Default)]
pub struct Usage {
    pub sent: AtomicU64,
    pub received: AtomicU64,
}

/// The bounds one request runs under.
#[derive(Debug, Clone, Copy)]
pub struct RequestBounds {
    /// When the request (response body included) must be over.
    pub ends: Instant,
    /// For the whole call, in bytes.
    pub max_sent: u64,
    pub max_received: u64,
}

/// Why a request was refused before a connection was made: said to the
/// guest and logged by the caller.
pub fn refused(why: String) -> Error {
    Error::InternalError(Some(format!("rcbackup refused the request: {why}")))
}

/// The addresses to try for `origin`: the granted address itself, or those
/// its name resolves to that are public. `literal`: the origin's host is an
/// address the config grants as such.
async fn addresses(origin: &Origin, ends: Instant, label: &str) -> Result<Vec<SocketAddr>, Error> {
    if let Some(ip) = origin.address() {
        return Ok(vec![SocketAddr::new(ip, origin.port)]);
    }
    // The system resolver blocks and cannot be cancelled: it runs on a
    // thread of its own, left behind at the deadline (tokio's blocking pool
    // would hold the process's exit until the lookup gave up).
    // At most RESOLVERS lookups at once in the process: a hook making
    // thousands of requests to names that never resolve waits here, within
    // its deadline, instead of starting a thread for each.
    static LOOKUPS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(RESOLVERS);
    let permit = tokio::time::timeout_at(ends, LOOKUPS.acquire())
        .await
        .map_err(|_| Error::DnsTimeout)?
        .map_err(|_| Error::DnsTimeout)?;
    let (tx, rx) = tokio::sync::oneshot::channel();
    let (host, port) = (origin.host.clone(), origin.port);
    std::thread::Builder::new()
        .name("rcbackup-dns".into())
        .spawn(move || {
            let _permit = permit;
            let _ = tx.send(std::net::ToSocketAddrs::to_socket_addrs(&(
                host.as_str(),
                port,
            )));
        })
        .map_err(|e| Error::InternalError(Some(format!("cannot start a resolver thread: {e}"))))?;
    let resolved: Vec<SocketAddr> = tokio::time::timeout_at(ends, rx)
        .await
        .map_err(|_| Error::DnsTimeout)?
        .map_err(|_| Error::DnsTimeout)?
        .map_err(|e| Error::DnsError {
            rcode: Some(e.to_string()),
            info_code: None,
        })?
        .collect();
    let (public, reserved): (Vec<SocketAddr>, Vec<SocketAddr>) = resolved
        .into_iter()
        .partition(|a| reserved_range(a.ip()).is_none());
    if public.is_empty() {
        let Some(first) = reserved.first() else {
            return Err(Error::DestinationNotFound);
        };
        let range = reserved_range(first.ip()).unwrap_or("reserved");
        // The operator's log gets the address; the guest only the refusal
        // (what a name resolves to inside the operator's network is not the
        // hook's to learn).
        tracing::warn!(
            "{label} {} resolves to {} ({range}); a name may lead only to public addresses: \
             grant the address itself (e.g. {}://{}:{}) if the hook is meant to reach it",
            origin.host,
            first.ip(),
            origin.scheme.as_str(),
            bracket(first.ip()),
            origin.port,
        );
        return Err(refused(format!(
            "{} does not resolve to a public address (a name may lead only to public addresses; rcbackup's log says more)",
            origin.host
        )));
    }
    Ok(public)
}

fn bracket(ip: IpAddr) -> String {
    match ip {
        IpAddr::V6(v6) => format!("[{v6}]"),
        v4 => v4.to_string(),
    }
}

trait Stream: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static> Stream for T {}

fn tls_config() -> Arc<rustls::ClientConfig> {
    static CONFIG: OnceLock<Arc<rustls::ClientConfig>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let roots = rustls::RootCertStore {
                roots: webpki_roots::TLS_SERVER_ROOTS.into(),
            };
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            Arc::new(
                rustls::ClientConfig::builder_with_provider(provider)
                    .with_safe_default_protocol_versions()
                    .expect("ring supports the default TLS versions")
                    .with_root_certificates(roots)
                    .with_no_client_auth(),
            )
        })
        .clone()
}

/// Connections hooks hold open at once, in the whole process: one tenant's
/// hook opening hundreds must not take the file descriptors another
/// tenant's backup needs.
const CONNECTIONS: usize = 64;

static OPEN: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(CONNECTIONS);

async fn connect(origin: &Origin, ends: Instant, label: &str) -> Result<Box<dyn Stream>, Error> {
    let mut last = None;
    let mut tcp = None;
    for addr in addresses(origin, ends, label).await? {
        match tokio::time::timeout_at(ends, TcpStream::connect(addr)).await {
            Ok(Ok(s)) => {
                tcp = Some(s);
                break;
            }
            Ok(Err(e)) => last = Some(e),
            Err(_) => return Err(Error::ConnectionTimeout),
        }
    }
    let tcp = match (tcp, last) {
        (Some(s), _) => s,
        (None, Some(e)) => return Err(Error::Connect(e)),
        (None, None) => return Err(Error::DestinationNotFound),
    };
    let _ = tcp.set_nodelay(true);
    if origin.scheme == Scheme::Http {
        return Ok(Box::new(tcp));
    }
    let name = match origin.address() {
        Some(ip) => rustls::pki_types::ServerName::from(ip),
        None => rustls::pki_types::ServerName::try_from(origin.host.clone())
            .map_err(|_| Error::HttpRequestUriInvalid)?,
    };
    let tls = tokio::time::timeout_at(
        ends,
        tokio_rustls::TlsConnector::from(tls_config()).connect(name, tcp),
    )
    .await
    .map_err(|_| Error::ConnectionTimeout)?
    .map_err(Error::Tls)?;
    Ok(Box::new(tls))
}

/// The response and the future that drives the connection after it (as
/// wasi:http's sender returns them).
pub type Sent = (
    http::Response<WasiBody>,
    Box<dyn std::future::Future<Output = Result<(), Error>> + Send>,
);

/// Sends `req` (whose URI has the scheme and authority) to `origin`.
pub async fn send(
    mut req: http::Request<WasiBody>,
    origin: Origin,
    usage: Arc<Usage>,
    bounds: RequestBounds,
    redactor: Redactor,
    label: &str,
) -> Result<Sent, Error> {
    let permit = tokio::time::timeout_at(bounds.ends, OPEN.acquire())
        .await
        .map_err(|_| Error::ConnectionLimitReached)?
        .map_err(|_| Error::ConnectionLimitReached)?;
    let stream = connect(&origin, bounds.ends, label).await?;
    let (mut sender, conn) = tokio::time::timeout_at(
        bounds.ends,
        hyper::client::conn::http1::Builder::new()
            // The response head: enough for any notification service.
            .max_buf_size(64 << 10)
            .handshake::<_, WasiBody>(TokioIo::new(stream)),
    )
    .await
    .map_err(|_| Error::ConnectionTimeout)?
    .map_err(Error::Hyper)?;
    // Origin form on the wire: the scheme and authority went into the
    // connection and the Host header.
    let path = req
        .uri()
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_string();
    *req.uri_mut() = http::Uri::try_from(path).map_err(|_| Error::HttpRequestUriInvalid)?;
    let req = req.map(|body| {
        Bounded {
            inner: body,
            usage: usage.clone(),
            bounds,
            direction: Direction::Sent,
            sleep: None,
            label: None,
        }
        .boxed_unsync()
    });
    let mut conn = Some(conn);
    let mut response = std::pin::pin!(sender.send_request(req));
    // Waits for the response head while driving the connection's I/O.
    let head = std::future::poll_fn(|cx| {
        if let Poll::Ready(r) = response.as_mut().poll(cx) {
            return Poll::Ready(r.map_err(Error::Hyper));
        }
        if let Some(c) = conn.as_mut() {
            if let Poll::Ready(r) = Pin::new(c).poll(cx) {
                conn = None;
                if let Err(e) = r {
                    return Poll::Ready(Err(Error::Hyper(e)));
                }
                return response.as_mut().poll(cx).map_err(Error::Hyper);
            }
        }
        Poll::Pending
    });
    let res = tokio::time::timeout_at(bounds.ends, head)
        .await
        .map_err(|_| Error::ConnectionReadTimeout)??;
    let mut res = res.map(|incoming| {
        Bounded {
            inner: incoming.map_err(Error::Hyper).boxed_unsync(),
            usage,
            bounds,
            direction: Direction::Received,
            sleep: None,
            label: Some(label.to_string()),
        }
        .boxed_unsync()
    });
    // A server that sends a secret back (an error page quoting the request)
    // must not hand it to the guest: its headers and body are scrubbed.
    if !redactor.is_empty() {
        for value in res.headers_mut().values_mut() {
            let scrubbed = redactor.scrub(value.as_bytes());
            if scrubbed != value.as_bytes() {
                *value = http::HeaderValue::from_bytes(&scrubbed)
                    .unwrap_or_else(|_| http::HeaderValue::from_static("[secret]"));
            }
        }
        res = res.map(|body| {
            Scrubbed {
                inner: body,
                scrubber: redactor.stream(),
                done: false,
            }
            .boxed_unsync()
        });
    }
    let ends = bounds.ends;
    let io = async move {
        // The connection's slot is given back when it closes.
        let _permit = permit;
        let Some(conn) = conn else { return Ok(()) };
        match tokio::time::timeout_at(ends, conn).await {
            Ok(r) => r.map_err(Error::Hyper),
            Err(_) => Err(Error::ConnectionReadTimeout),
        }
    };
    Ok((res, Box::new(io)))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Direction {
    Sent,
    Received,
}

/// A body that counts its bytes into the call's usage, fails past the
/// call's bound, and fails when the request's time is up.
struct Bounded {
    inner: WasiBody,
    usage: Arc<Usage>,
    bounds: RequestBounds,
    direction: Direction,
    sleep: Option<Pin<Box<tokio::time::Sleep>>>,
    /// A response body's request, for the one line that says it was cut
    /// (a request body's failure is the request's own, logged with it).
    label: Option<String>,
}

impl Bounded {
    fn cut(&mut self, why: std::fmt::Arguments) {
        if let Some(label) = self.label.take() {
            tracing::warn!("{label} response cut: {why}");
        }
    }
}

impl Body for Bounded {
    type Data = Bytes;
    type Error = Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Error>>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    let (counter, max) = match this.direction {
                        Direction::Sent => (&this.usage.sent, this.bounds.max_sent),
                        Direction::Received => (&this.usage.received, this.bounds.max_received),
                    };
                    let total =
                        counter.fetch_add(data.len() as u64, Ordering::Relaxed) + data.len() as u64;
                    if total > max {
                        this.cut(format_args!(
                            "over the {} KiB the call may receive (limits.http_received_kib)",
                            max >> 10
                        ));
                        return Poll::Ready(Some(Err(match this.direction {
                            Direction::Sent => Error::HttpRequestBodySize(Some(max)),
                            Direction::Received => Error::HttpResponseBodySize(Some(max)),
                        })));
                    }
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Pending => {
                let ends = this.bounds.ends;
                let sleep = this
                    .sleep
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(ends)));
                ready!(sleep.as_mut().poll(cx));
                this.cut(format_args!(
                    "no more of it in time (limits.http_request_ms, within the call's deadline)"
                ));
                Poll::Ready(Some(Err(match this.direction {
                    Direction::Sent => Error::ConnectionWriteTimeout,
                    Direction::Received => Error::ConnectionReadTimeout,
                })))
            }
            other => other,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// A response body with the hook's secret values replaced (see
/// [`Redactor::stream`]).
struct Scrubbed {
    inner: WasiBody,
    scrubber: Scrubber,
    done: bool,
}

impl Body for Scrubbed {
    type Data = Bytes;
    type Error = Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Error>>> {
        let this = &mut *self;
        loop {
            if this.done {
                return Poll::Ready(None);
            }
            match ready!(Pin::new(&mut this.inner).poll_frame(cx)) {
                Some(Ok(frame)) => match frame.into_data() {
                    Ok(data) => {
                        let out = this.scrubber.chunk(&data);
                        if !out.is_empty() {
                            return Poll::Ready(Some(Ok(Frame::data(Bytes::from(out)))));
                        }
                    }
                    Err(trailers) => return Poll::Ready(Some(Ok(trailers))),
                },
                Some(Err(e)) => return Poll::Ready(Some(Err(e))),
                None => {
                    this.done = true;
                    let rest = this.scrubber.finish();
                    if !rest.is_empty() {
                        return Poll::Ready(Some(Ok(Frame::data(Bytes::from(rest)))));
                    }
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.done
    }
}
