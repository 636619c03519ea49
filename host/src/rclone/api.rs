//! Calls to the run's rclone server: JSON methods (`operations/list`, ...),
//! objects read with GET (`--rc-serve`), and streamed uploads to
//! `operations/uploadfile` as a multipart body sent while it is produced.

use std::io::{self, Cursor, Read};
use std::time::Instant;

use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use serde_json::Value;

use super::server::{CallError, Server};
use super::stall::{BodyWatch, Stall};

/// Escaped in a path segment of a URL: all but RFC 3986's unreserved.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');
/// The same, keeping `/` between segments.
const PATH: &AsciiSet = &SEGMENT.remove(b'/');

/// Largest JSON answer read (a listing of a very large folder).
const ANSWER_LIMIT: u64 = 1 << 30;

impl Server {
    /// Calls rc method `method` (e.g. `operations/list`) with `params`.
    pub fn call(&self, method: &str, params: Value) -> Result<Value, CallError> {
        self.call_within(method, params, None)
    }

    /// [`Server::call`] whose answer may go without a byte for at most
    /// `stall`'s limit: for listings and lookups, whose answer comes
    /// within rclone's own timeouts from a remote that answers.
    pub fn call_watched(
        &self,
        method: &str,
        params: Value,
        stall: &Stall,
    ) -> Result<Value, CallError> {
        stall.check().map_err(CallError::Stalled)?;
        self.call_within(method, params, Some(stall))
    }

    fn call_within(
        &self,
        method: &str,
        params: Value,
        stall: Option<&Stall>,
    ) -> Result<Value, CallError> {
        let url = self.base()?;
        let started = Instant::now();
        // rclone gave up on a silent remote: the run's other reads need not
        // (not when the server itself has ended).
        let judge = |e: CallError| {
            if let (Some(stall), CallError::Rclone(_) | CallError::Transport(_)) = (stall, &e) {
                if !self.has_exited() {
                    stall.judge(started.elapsed());
                }
            }
            e
        };
        let answer = self
            .agent
            .post(format!("{url}/{method}"))
            .config()
            .timeout_per_read(stall.and_then(|s| s.limit))
            .build()
            .header("Authorization", &self.auth)
            .header("Content-Type", "application/json")
            .send(params.to_string().as_bytes());
        let mut answer = answer.map_err(|e| judge(self.no_answer(method, e, stall)))?;
        let status = answer.status().as_u16();
        let body = answer
            .body_mut()
            .with_config()
            .limit(ANSWER_LIMIT)
            .read_to_vec()
            .map_err(|e| judge(self.no_answer(method, e, stall)))?;
        let value: Value = serde_json::from_slice(&body).map_err(|e| {
            CallError::Rclone(format!(
                "{method} gave an answer rcbackup cannot read ({e})"
            ))
        })?;
        match status {
            200 => Ok(value),
            404 => Err(CallError::NotFound),
            _ => Err(judge(CallError::Rclone(error_text(&value, status)))),
        }
    }

    /// Object `rel` of remote `fs`, read as it arrives; the answer's
    /// headers and each read of its body wait at most `stall`'s limit.
    pub fn get(
        &self,
        fs: &str,
        rel: &str,
        stall: &Stall,
    ) -> Result<Box<dyn Read + Send>, CallError> {
        stall.check().map_err(CallError::Stalled)?;
        let url = self.base()?;
        let target = format!(
            "{url}/%5B{}%5D/{}",
            utf8_percent_encode(fs, SEGMENT),
            utf8_percent_encode(rel.trim_start_matches('/'), PATH)
        );
        let started = Instant::now();
        let answer = self
            .agent
            .get(target)
            .config()
            .timeout_per_read(stall.limit)
            .build()
            .header("Authorization", &self.auth)
            .call();
        let answer =
            answer.map_err(
                |e| match self.no_answer("reading an object", e, Some(stall)) {
                    CallError::Transport(t) => {
                        if !self.has_exited() {
                            stall.judge(started.elapsed());
                        }
                        CallError::Transport(t)
                    }
                    other => other,
                },
            )?;
        match answer.status().as_u16() {
            200 => Ok(Box::new(BodyWatch::new(
                Box::new(answer.into_body().into_reader()),
                stall.clone(),
            ))),
            404 => Err(CallError::NotFound),
            status => {
                // rclone gave up on a silent remote: the run's other reads
                // need not.
                stall.judge(started.elapsed());
                Err(refusal(answer.into_body(), status))
            }
        }
    }

    /// Uploads `body` as object `dir/name` of remote `fs`, streaming it.
    pub fn upload(
        &self,
        fs: &str,
        dir: &str,
        name: &str,
        body: impl Read + Send + 'static,
    ) -> Result<(), CallError> {
        let url = self.base()?;
        // A boundary no dump could hold by chance: 128 random bits.
        let boundary = format!(
            "rcbackup-{}",
            crate::random::hex(16).unwrap_or_else(|| format!("{:x}", std::process::id()))
        );
        let head = format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"file0\"; filename=\"{}\"\r\nContent-Type: application/octet-stream\r\n\r\n",
            name.replace('\\', "\\\\").replace('"', "\\\"")
        );
        let tail = format!("\r\n--{boundary}--\r\n");
        let multipart = Cursor::new(head.into_bytes())
            .chain(body)
            .chain(Cursor::new(tail.into_bytes()));
        let target = format!(
            "{url}/operations/uploadfile?fs={}&remote={}",
            utf8_percent_encode(fs, SEGMENT),
            utf8_percent_encode(dir.trim_matches('/'), SEGMENT)
        );
        let answer = self
            .agent
            .post(target)
            .header("Authorization", &self.auth)
            .header(
                "Content-Type",
                format!("multipart/form-data; boundary={boundary}"),
            )
            .send(ureq::SendBody::from_owned_reader(multipart));
        let answer = match answer {
            Ok(a) => a,
            Err(e) => {
                // The server stops reading when the upload fails on its
                // side: its own words are in its log.
                if let Some(ended) = self.ended() {
                    return Err(CallError::Transport(ended));
                }
                return Err(match self.last_error_about("operations/uploadfile") {
                    Some(said) => CallError::Rclone(said),
                    None => CallError::Transport(format!(
                        "the upload to the rclone server broke off: {e}"
                    )),
                });
            }
        };
        let status = answer.status().as_u16();
        if status == 200 {
            return Ok(());
        }
        Err(refusal(answer.into_body(), status))
    }

    fn base(&self) -> Result<String, CallError> {
        self.url().ok_or_else(|| {
            CallError::Transport("the rclone server of this run is not running".into())
        })
    }

    fn no_answer(&self, what: &str, e: ureq::Error, stall: Option<&Stall>) -> CallError {
        if let (Some(stall), ureq::Error::Timeout(_)) = (stall, &e) {
            return CallError::Stalled(stall.stalled());
        }
        match self.ended() {
            Some(ended) => CallError::Transport(ended),
            None => {
                CallError::Transport(format!("no answer from the rclone server to {what}: {e}"))
            }
        }
    }
}

/// An answer other than 200/404 whose body was not read yet: rclone's words
/// from its JSON error, or the status alone.
fn refusal(mut body: ureq::Body, status: u16) -> CallError {
    let text = body
        .with_config()
        .limit(64 * 1024)
        .read_to_string()
        .unwrap_or_default();
    CallError::Rclone(
        serde_json::from_str::<Value>(&text)
            .map(|v| error_text(&v, status))
            .unwrap_or_else(|_| format!("HTTP status {status}")),
    )
}

/// rclone's `{"error": "...", "status": N}`, as its words.
fn error_text(answer: &Value, status: u16) -> String {
    answer
        .get("error")
        .and_then(Value::as_str)
        .map(str::to_string)
        .unwrap_or_else(|| format!("HTTP status {status}"))
}

/// An upload's body source: the pipe the caller writes, cut short with an
/// error (never a clean end) when the upload is abandoned or the run
/// interrupted, so the server never stores a cut stream as a whole object.
pub struct Guarded<R> {
    pub inner: R,
    pub abandoned: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl<R: Read> Read for Guarded<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let stop = || {
            self.abandoned.load(std::sync::atomic::Ordering::SeqCst)
                || crate::interrupt::interrupted()
        };
        if stop() {
            return Err(io::Error::other("upload abandoned"));
        }
        let n = self.inner.read(buf)?;
        if n == 0 && stop() {
            return Err(io::Error::other("upload abandoned"));
        }
        Ok(n)
    }
}

/// A download's body: ends with an error once the run is interrupted, so a
/// restore stopped by a signal does not read the rest of a large backup.
pub struct Interruptible(pub Box<dyn Read + Send>);

impl Read for Interruptible {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if crate::interrupt::interrupted() {
            return Err(io::Error::other("interrupted"));
        }
        self.0.read(buf)
    }
}
