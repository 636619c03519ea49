//! How a dump is compressed on its way to the remote, and decompressed on
//! its way back: multi-threaded zstd in rcbackup (the default), nothing, or
//! what the engine's dump tool does itself (`pg_dump -Fc`'s zlib).
//!
//! The record's size and SHA-256 are always of the stored bytes, so a
//! restore checks exactly what is on the remote before anything commits;
//! the dump framing check (engines/framing.rs) reads the dump itself.
//!
//! - Backup: dump tool → framing check → [`Compressing`] → upload; the
//!   compressor counts and hashes what it hands to the upload.
//! - Restore and verify: download → size and SHA-256 check (holding back the
//!   last stored chunk) → [`Decompressor`] → restore tool. One stored chunk
//!   can hold the whole end of a dump, so the decompressor holds back the
//!   last [`HELD_TAIL`] bytes of the *dump* as well, until the caller has
//!   matched the whole stored stream and the zstd frame ended
//!   ([`Decompressor::finish`]). A stream that matches its record but does
//!   not decompress is an integrity failure ([`Decompressor::corrupt`]).

use std::io::{self, Write};
use std::sync::atomic::{AtomicUsize, Ordering};

use serde::{Deserialize, Serialize};

use crate::pipeline::Tally;

/// The `compression` setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// zstd at `level`, by rcbackup; the dump tool writes uncompressed.
    Zstd { level: i32 },
    /// Stored as the dump tool writes it, asked not to compress.
    None,
    /// Stored as the dump tool writes it with its own defaults: PostgreSQL's
    /// custom format compresses with zlib; MariaDB and SQLite dumps are text.
    Engine,
}

/// zstd's highest level rcbackup takes. Higher levels use larger windows
/// and search harder: level 19 on 150 MB of random bytea took 229 MiB of
/// memory and 13 minutes (level 3: 27 MiB, 6.6 s), which breaks the memory
/// bound of a backup and every cron window.
pub const MAX_ZSTD_LEVEL: i32 = 9;

impl Compression {
    /// zstd level 3: faster than the dump tools themselves on this path and
    /// smaller than pg_dump's zlib (README, "Compression").
    pub const DEFAULT: Compression = Compression::Zstd { level: 3 };

    /// `zstd`, `zstd:LEVEL`, `none` or `engine`; the error says what is
    /// expected.
    pub fn parse(text: &str) -> Result<Compression, String> {
        let expected = "expected \"zstd\" (level 3), \"zstd:LEVEL\" with LEVEL from 1 to 9, \"none\" or \"engine\", e.g. compression = \"zstd:6\"";
        match text {
            "zstd" => return Ok(Compression::DEFAULT),
            "none" => return Ok(Compression::None),
            "engine" => return Ok(Compression::Engine),
            _ => {}
        }
        let level = text
            .strip_prefix("zstd:")
            // Digits only: no sign, no spaces, no leading zero.
            .filter(|l| l.bytes().all(|b| b.is_ascii_digit()) && !l.starts_with('0'))
            .and_then(|l| l.parse::<i32>().ok())
            .filter(|l| (1..=MAX_ZSTD_LEVEL).contains(l))
            .ok_or_else(|| format!("is `{}`; {expected}", crate::naming::printable(text)))?;
        Ok(Compression::Zstd { level })
    }

    /// What the stored object is compressed with by rcbackup, for the record.
    pub fn codec(self) -> Option<Codec> {
        match self {
            Compression::Zstd { .. } => Some(Codec::Zstd),
            _ => None,
        }
    }

    /// Whether the dump tool is left to compress as it does by default.
    pub fn by_engine(self) -> bool {
        self == Compression::Engine
    }
}

impl std::fmt::Display for Compression {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Compression::Zstd { level } => write!(f, "zstd:{level}"),
            Compression::None => f.write_str("none"),
            Compression::Engine => f.write_str("engine"),
        }
    }
}

/// How a stored object is compressed by rcbackup (the record's
/// `compression`); absent for one stored as the dump tool wrote it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Codec {
    Zstd,
    /// Only in records of adopted backups (django-dbbackup's `--compress`):
    /// rcbackup reads gzip, it never writes it.
    Gzip,
}

impl Codec {
    /// Added to the backup's file extension: `.dump.zst`.
    pub fn suffix(self) -> &'static str {
        match self {
            Codec::Zstd => ".zst",
            Codec::Gzip => ".gz",
        }
    }

    /// As the record and `--json` spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            Codec::Zstd => "zstd",
            Codec::Gzip => "gzip",
        }
    }
}

/// Counts and hashes what is written through it: the stored bytes.
pub struct Tallied<W: Write> {
    pub inner: W,
    pub tally: Tally,
}

impl<W: Write> Write for Tallied<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.tally.add(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// The writer a dump goes into on its way to the upload.
pub enum Compressing<W: Write> {
    Plain(Tallied<W>),
    Zstd(zstd::stream::write::Encoder<'static, Tallied<W>>),
}

impl<W: Write> Compressing<W> {
    pub fn new(compression: Compression, inner: W) -> io::Result<Compressing<W>> {
        let tallied = Tallied {
            inner,
            tally: Tally::default(),
        };
        Ok(match compression {
            Compression::Zstd { level } => {
                let mut enc = zstd::stream::write::Encoder::new(tallied, level)?;
                enc.multithread(workers())?;
                // zstd's default job for level 3 is 8 MiB, and it holds a few
                // per worker in and out: 2 MiB jobs keep rcbackup's peak
                // RSS near 40 MiB (README, "Compression").
                enc.set_parameter(zstd::stream::raw::CParameter::JobSize(JOB_SIZE))?;
                enc.include_checksum(true)?;
                Compressing::Zstd(enc)
            }
            _ => Compressing::Plain(tallied),
        })
    }

    /// Ends the stream (zstd's last frame) and gives the count and SHA-256
    /// of the stored bytes, and the inner writer (for the caller to close).
    pub fn finish(self) -> io::Result<(crate::pipeline::Digest, W)> {
        let mut tallied = match self {
            Compressing::Plain(t) => t,
            Compressing::Zstd(enc) => enc.finish()?,
        };
        tallied.flush()?;
        Ok((tallied.tally.finish(), tallied.inner))
    }
}

/// Bytes of input per zstd job (one worker's unit of work).
const JOB_SIZE: u32 = 2 << 20;

/// At most this many compression workers: more buys nothing at the speed
/// a dump tool writes, and each holds its own buffers.
const MAX_WORKERS: usize = 4;

/// How many dumps this process compresses at once (`backup-all --jobs`);
/// 1 for every other command.
static CONCURRENT_DUMPS: AtomicUsize = AtomicUsize::new(1);

/// Says that `n` dumps will be compressed at the same time, so that each
/// takes its share of the cores rather than all of them.
pub fn set_concurrent_dumps(n: usize) {
    CONCURRENT_DUMPS.store(n.max(1), Ordering::Relaxed);
}

/// zstd workers for one dump: they compress beside the relay, one per core
/// (on 2 cores, 2 workers). When other dumps run beside this one and take
/// the cores already, none: compressing on the relay's own thread costs no
/// worker threads (their setup, hand-offs and buffers, about 8 MiB of peak
/// memory per job) that would buy nothing but contention.
fn workers() -> u32 {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    match CONCURRENT_DUMPS.load(Ordering::Relaxed) {
        1 => cores.min(MAX_WORKERS) as u32,
        dumps if cores / dumps <= 1 => 0,
        dumps => (cores / dumps).min(MAX_WORKERS) as u32,
    }
}

impl<W: Write> Write for Compressing<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Compressing::Plain(t) => t.write(buf),
            Compressing::Zstd(e) => e.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            // A zstd flush would end a block early and cost ratio; the
            // stream is flushed once, by `finish`.
            Compressing::Plain(t) => t.flush(),
            Compressing::Zstd(_) => Ok(()),
        }
    }
}

/// The largest window the decompressor accepts (2^24 = 16 MiB; level 9
/// uses 4 MiB, level 3 2 MiB). A damaged stream is decompressed before its hash is known
/// to mismatch: its header must not make the host allocate zstd's default
/// limit of 128 MiB.
const MAX_WINDOW_LOG: u32 = 24;

/// How much of the decompressed dump is held back until the whole stored
/// stream matched its record and the zstd frame ended.
pub const HELD_TAIL: usize = 64 * 1024;

/// Forwards all but the last [`HELD_TAIL`] bytes written to it; remembers
/// whether its inner writer failed. Once `discard` is set, forwards nothing.
struct HoldTail<W: Write> {
    inner: W,
    tail: Vec<u8>,
    failed: bool,
    discard: bool,
}

impl<W: Write> HoldTail<W> {
    /// Hands `bytes` to the inner writer (unless discarding), noting a
    /// failure. A free function over the fields, so that a slice of the
    /// tail can be passed without copying it out first.
    fn pass(inner: &mut W, failed: &mut bool, discard: bool, bytes: &[u8]) -> io::Result<()> {
        if discard {
            return Ok(());
        }
        inner.write_all(bytes).inspect_err(|_| *failed = true)
    }

    /// Hands over the held tail and flushes.
    fn release(&mut self) -> io::Result<()> {
        Self::pass(&mut self.inner, &mut self.failed, self.discard, &self.tail)?;
        self.tail.clear();
        self.flush()
    }
}

impl<W: Write> Write for HoldTail<W> {
    // On the restore's data path: no allocation per write, the tail is
    // passed from where it lies and then dropped from the front.
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let excess = (self.tail.len() + buf.len()).saturating_sub(HELD_TAIL);
        let from_tail = excess.min(self.tail.len());
        if from_tail > 0 {
            Self::pass(
                &mut self.inner,
                &mut self.failed,
                self.discard,
                &self.tail[..from_tail],
            )?;
            self.tail.drain(..from_tail);
        }
        let from_buf = excess - from_tail;
        Self::pass(
            &mut self.inner,
            &mut self.failed,
            self.discard,
            &buf[..from_buf],
        )?;
        self.tail.extend_from_slice(&buf[from_buf..]);
        Ok(buf.len())
    }

    /// Flushes what was handed over; the tail stays held. (The relay
    /// flushes at the end of the stored stream, before its hash is judged:
    /// a flush must not release the tail.)
    fn flush(&mut self) -> io::Result<()> {
        if self.discard {
            return Ok(());
        }
        self.inner.flush().inspect_err(|_| self.failed = true)
    }
}

enum Decoding<W: Write> {
    Plain(W),
    Zstd(Box<zstd::stream::write::Decoder<'static, HoldTail<W>>>),
    Gzip(Box<flate2::write::GzDecoder<HoldTail<W>>>),
}

impl<W: Write> Decoding<W> {
    fn hold(&self) -> Option<&HoldTail<W>> {
        match self {
            Decoding::Plain(_) => None,
            Decoding::Zstd(d) => Some(d.get_ref()),
            Decoding::Gzip(d) => Some(d.get_ref()),
        }
    }

    fn hold_mut(&mut self) -> Option<&mut HoldTail<W>> {
        match self {
            Decoding::Plain(_) => None,
            Decoding::Zstd(d) => Some(d.get_mut()),
            Decoding::Gzip(d) => Some(d.get_mut()),
        }
    }
}

/// The restore side: decompresses what is written into `W`, the restore
/// tool's input (or passes it through, for a backup stored as the dump tool
/// wrote it), holding back the tail of the dump until
/// [`Decompressor::finish`], which the caller calls only once the whole
/// stored stream matched its record: however the stored bytes fell into
/// chunks, a restore tool never gets the end of a dump that did not match.
///
/// After the restore tool stopped, [`Decompressor::discard`] keeps
/// decompressing the rest into nothing: a damaged backup often makes the
/// tool fail first, and the damage is the cause to report.
pub struct Decompressor<W: Write> {
    inner: Decoding<W>,
    /// Why the zstd stream did not decode (as opposed to `W` failing).
    corrupt: Option<String>,
    discarding: bool,
    /// What the write that the restore tool's failure stopped did not
    /// decompress (zstd's writer takes no input in a call that fails), to
    /// be decompressed first once discarding.
    unconsumed: Vec<u8>,
}

impl<W: Write> Decompressor<W> {
    pub fn new(inner: W, codec: Option<Codec>) -> io::Result<Decompressor<W>> {
        let inner = match codec {
            None => Decoding::Plain(inner),
            Some(Codec::Zstd) => {
                let mut d = zstd::stream::write::Decoder::new(HoldTail {
                    inner,
                    tail: Vec::with_capacity(HELD_TAIL),
                    failed: false,
                    discard: false,
                })?;
                d.window_log_max(MAX_WINDOW_LOG)?;
                Decoding::Zstd(Box::new(d))
            }
            Some(Codec::Gzip) => {
                Decoding::Gzip(Box::new(flate2::write::GzDecoder::new(HoldTail {
                    inner,
                    tail: Vec::with_capacity(HELD_TAIL),
                    failed: false,
                    discard: false,
                })))
            }
        };
        Ok(Decompressor {
            inner,
            corrupt: None,
            discarding: false,
            unconsumed: Vec::new(),
        })
    }

    /// From now on writes never fail and reach nothing: the rest of the
    /// stream is only decompressed, to tell whether it decodes
    /// ([`Self::corrupt`], and [`Self::finish`] for its end).
    pub fn discard(&mut self) {
        self.discarding = true;
        if let Some(hold) = self.inner.hold_mut() {
            hold.discard = true;
            hold.failed = false;
            hold.tail.clear();
        }
        let rest = std::mem::take(&mut self.unconsumed);
        let _ = self.write_all(&rest);
    }

    /// Why the stored stream did not decompress, if it did not: a write or
    /// [`Self::finish`] that failed for that reason, not because the
    /// restore tool stopped reading.
    pub fn corrupt(&self) -> Option<&str> {
        self.corrupt.as_deref()
    }

    /// Notes a failure of the zstd stream itself as corruption.
    fn judge(&mut self, e: io::Error) -> io::Error {
        let what = match &self.inner {
            Decoding::Plain(_) => return e,
            Decoding::Zstd(_) => "zstd",
            Decoding::Gzip(_) => "gzip",
        };
        if self.inner.hold().is_some_and(|h| !h.failed) && self.corrupt.is_none() {
            self.corrupt = Some(match e.kind() {
                io::ErrorKind::UnexpectedEof => {
                    format!("the {what} stream ends in the middle of a frame")
                }
                // A gzip member that ended, followed by more bytes: the
                // write side takes none of them.
                io::ErrorKind::WriteZero => format!("the {what} stream has bytes after its end"),
                _ => format!("{what}: {e}"),
            });
        }
        e
    }

    /// After the whole stored stream was written and matched its record:
    /// checks that the zstd stream ended on a complete frame, then hands
    /// over the held tail and flushes. A failure is corruption when
    /// [`Self::corrupt`] says so, else the restore tool's.
    pub fn finish(&mut self) -> io::Result<()> {
        if self.discarding && self.corrupt.is_some() {
            return Ok(());
        }
        let r = match &mut self.inner {
            Decoding::Plain(_) if self.discarding => Ok(()),
            Decoding::Plain(w) => w.flush(),
            Decoding::Zstd(d) => match d.do_finish() {
                Ok(()) => d.get_mut().release(),
                Err(e) => Err(e),
            },
            // try_finish checks the member's trailer (CRC-32 and length);
            // a stream cut short ends without one.
            Decoding::Gzip(d) => match d.try_finish() {
                Ok(()) => d.get_mut().release(),
                Err(e) => Err(e),
            },
        };
        let r = r.map_err(|e| self.judge(e));
        if self.discarding {
            return Ok(());
        }
        r
    }
}

impl<W: Write> Write for Decompressor<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.discarding {
            if self.corrupt.is_none() {
                let r = match &mut self.inner {
                    Decoding::Plain(_) => Ok(()),
                    Decoding::Zstd(d) => d.write_all(buf),
                    Decoding::Gzip(d) => d.write_all(buf),
                };
                if let Err(e) = r {
                    self.judge(e);
                }
            }
            return Ok(buf.len());
        }
        let r = match &mut self.inner {
            Decoding::Plain(w) => w.write(buf),
            Decoding::Zstd(d) => d.write(buf).inspect_err(|_| {
                if d.get_ref().failed {
                    self.unconsumed = buf.to_vec();
                }
            }),
            Decoding::Gzip(d) => match d.write(buf) {
                // After the member's end the decoder takes nothing: bytes
                // past a gzip stream's end are damage, not silence.
                Ok(0) if !buf.is_empty() => Err(io::Error::new(
                    io::ErrorKind::WriteZero,
                    "bytes after the end of the gzip stream",
                )),
                r => r.inspect_err(|_| {
                    if d.get_ref().failed {
                        self.unconsumed = buf.to_vec();
                    }
                }),
            },
        };
        r.map_err(|e| self.judge(e))
    }

    fn flush(&mut self) -> io::Result<()> {
        if self.discarding {
            return Ok(());
        }
        let r = match &mut self.inner {
            Decoding::Plain(w) => w.flush(),
            Decoding::Zstd(d) => d.flush(),
            // A flush would push the decoder's buffered output out but
            // never the held tail: the same as zstd's.
            Decoding::Gzip(d) => d.flush(),
        };
        r.map_err(|e| self.judge(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_parse() {
        assert_eq!(Compression::parse("zstd"), Ok(Compression::DEFAULT));
        assert_eq!(
            Compression::parse("zstd:9"),
            Ok(Compression::Zstd { level: 9 })
        );
        assert_eq!(Compression::parse("none"), Ok(Compression::None));
        assert_eq!(Compression::parse("engine"), Ok(Compression::Engine));
        for bad in [
            "zstd:0", "zstd:10", "zstd:20", "zstd:-1", "gzip", "ZSTD", "zstd:", "", "zstd:+3",
            "zstd:03", "zstd: 3",
        ] {
            let e = Compression::parse(bad).unwrap_err();
            assert!(e.contains("zstd:LEVEL"), "{bad}: {e}");
        }
    }

    fn sample(len: usize) -> Vec<u8> {
        // Compressible but not trivial: a repeating text with a counter.
        let mut v = Vec::with_capacity(len);
        let mut i = 0u64;
        while v.len() < len {
            v.extend_from_slice(
                format!("INSERT INTO t VALUES ({i}, 'row {}');\n", i % 97).as_bytes(),
            );
            i += 1;
        }
        v.truncate(len);
        v
    }

    fn compress(data: &[u8], level: i32) -> Vec<u8> {
        let mut c = Compressing::new(Compression::Zstd { level }, Vec::new()).unwrap();
        for chunk in data.chunks(100_000) {
            c.write_all(chunk).unwrap();
        }
        c.finish().unwrap().1
    }

    /// What a zstd decompressor handed on so far.
    fn delivered(d: &Decompressor<Vec<u8>>) -> &[u8] {
        match &d.inner {
            Decoding::Zstd(dec) => &dec.get_ref().inner,
            Decoding::Gzip(dec) => &dec.get_ref().inner,
            Decoding::Plain(w) => w,
        }
    }

    struct Closed;
    impl Write for Closed {
        fn write(&mut self, _: &[u8]) -> io::Result<usize> {
            Err(io::ErrorKind::BrokenPipe.into())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_stream_round_trips_and_the_digest_is_of_the_stored_bytes() {
        let data: Vec<u8> = (0..3_000_000u32)
            .flat_map(|i| (i % 97).to_le_bytes())
            .collect();
        let mut c = Compressing::new(Compression::DEFAULT, Vec::new()).unwrap();
        for chunk in data.chunks(100_000) {
            c.write_all(chunk).unwrap();
        }
        let (digest, stored) = c.finish().unwrap();
        assert_eq!(digest.size, stored.len() as u64);
        let mut tally = Tally::default();
        tally.add(&stored);
        assert_eq!(digest, tally.finish());
        assert!(stored.len() < data.len() / 4, "{} bytes", stored.len());
        assert_eq!(&stored[..4], &[0x28, 0xb5, 0x2f, 0xfd], "zstd magic");
        let mut d = Decompressor::new(Vec::new(), Some(Codec::Zstd)).unwrap();
        for chunk in stored.chunks(7_777) {
            d.write_all(chunk).unwrap();
        }
        d.finish().unwrap();
        assert!(delivered(&d) == data, "decompressed differs");
    }

    /// However the stored bytes are cut, the restore tool gets nothing of
    /// the last HELD_TAIL bytes of the dump before finish(): not even when
    /// everything but the frame's last byte was written and flushed.
    #[test]
    fn the_tail_of_the_dump_waits_for_finish() {
        let data = sample(1024 * 1024);
        let stored = compress(&data, 1);
        let mut d = Decompressor::new(Vec::new(), Some(Codec::Zstd)).unwrap();
        d.write_all(&stored[..stored.len() - 1]).unwrap();
        d.flush().unwrap();
        let got = delivered(&d);
        assert!(
            got.len() <= data.len() - HELD_TAIL,
            "{} of {}",
            got.len(),
            data.len()
        );
        assert!(got[..] == data[..got.len()]);
        d.write_all(&stored[stored.len() - 1..]).unwrap();
        d.finish().unwrap();
        assert!(delivered(&d) == data);
    }

    #[test]
    fn a_damaged_or_cut_stream_is_corrupt_not_a_consumer_failure() {
        let data = sample(2 * 1024 * 1024);
        let stored = compress(&data, 3);
        // Cut short: finish() says the frame did not end.
        let mut d = Decompressor::new(io::sink(), Some(Codec::Zstd)).unwrap();
        d.write_all(&stored[..stored.len() / 2]).unwrap();
        assert!(d.finish().is_err());
        let why = d.corrupt().unwrap_or_default();
        assert!(why.contains("ends in the middle of a frame"), "{why}");
        // A flipped byte: the block or the frame's checksum fails.
        for at in [4usize, 20, stored.len() / 2, stored.len() - 2] {
            let mut bad = stored.clone();
            bad[at] ^= 0x55;
            let mut d = Decompressor::new(io::sink(), Some(Codec::Zstd)).unwrap();
            let r = bad
                .chunks(65_536)
                .try_for_each(|c| d.write_all(c))
                .and_then(|_| d.finish());
            assert!(r.is_err(), "flip at {at} went unnoticed");
            assert!(d.corrupt().is_some(), "flip at {at}");
        }
        // Not zstd at all.
        let mut d = Decompressor::new(io::sink(), Some(Codec::Zstd)).unwrap();
        let r = d
            .write_all(b"PGDMP this is not zstd")
            .and_then(|_| d.finish());
        assert!(r.is_err() && d.corrupt().is_some());
    }

    /// A frame header asking for a window past MAX_WINDOW_LOG is refused,
    /// not allocated.
    #[test]
    fn a_huge_window_is_refused() {
        let data = sample(300_000);
        let mut enc = zstd::stream::write::Encoder::new(Vec::new(), 3).unwrap();
        enc.set_parameter(zstd::stream::raw::CParameter::WindowLog(27))
            .unwrap();
        enc.long_distance_matching(true).unwrap();
        enc.write_all(&data).unwrap();
        let stored = enc.finish().unwrap();
        let mut d = Decompressor::new(io::sink(), Some(Codec::Zstd)).unwrap();
        let r = d.write_all(&stored).and_then(|_| d.finish());
        assert!(r.is_err(), "a 128 MiB window was accepted");
        assert!(d.corrupt().is_some());
    }

    /// After the restore tool stopped, the rest is still decompressed (into
    /// nothing), so damage further on is found; an intact rest is not.
    #[test]
    fn after_the_consumer_stopped_the_rest_is_still_checked() {
        let stored = compress(&sample(3 * 1024 * 1024), 3);
        let mut bad = stored.clone();
        let at = bad.len() * 3 / 4;
        bad[at] ^= 0x55;
        for (bytes, damaged) in [
            (&stored, false),
            (&bad, true),
            (&stored[..stored.len() - 9].to_vec(), true),
        ] {
            let mut d = Decompressor::new(Closed, Some(Codec::Zstd)).unwrap();
            let mut chunks = bytes.chunks(65_536);
            assert!(chunks.by_ref().try_for_each(|c| d.write_all(c)).is_err());
            assert_eq!(d.corrupt(), None, "the consumer's failure");
            d.discard();
            for c in chunks {
                d.write_all(c).unwrap();
            }
            d.finish().unwrap();
            assert_eq!(d.corrupt().is_some(), damaged, "{:?}", d.corrupt());
        }
    }

    /// A backup stored as the dump tool wrote it passes through unchanged.
    #[test]
    fn an_uncompressed_backup_passes_through() {
        let data = sample(300_000);
        let mut d = Decompressor::new(Vec::new(), None).unwrap();
        d.write_all(&data).unwrap();
        d.finish().unwrap();
        assert!(delivered(&d) == data);
    }

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        enc.write_all(data).unwrap();
        enc.finish().unwrap()
    }

    /// An adopted django-dbbackup `--compress` backup: decompressed with the
    /// dump's tail held back like zstd's; cut short, flipped or followed by
    /// more bytes, it is corrupt.
    #[test]
    fn gzip_is_read_like_zstd() {
        let data = sample(1024 * 1024);
        let stored = gzip(&data);
        let mut d = Decompressor::new(Vec::new(), Some(Codec::Gzip)).unwrap();
        for c in stored.chunks(10_000) {
            d.write_all(c).unwrap();
        }
        d.flush().unwrap();
        assert!(delivered(&d).len() <= data.len() - HELD_TAIL);
        d.finish().unwrap();
        assert!(delivered(&d) == data);

        let mut cut = Decompressor::new(io::sink(), Some(Codec::Gzip)).unwrap();
        cut.write_all(&stored[..stored.len() - 5]).unwrap();
        assert!(cut.finish().is_err());
        assert!(cut.corrupt().is_some());

        let mut flipped = stored.clone();
        let at = flipped.len() - 6; // the CRC-32
        flipped[at] ^= 1;
        let mut d = Decompressor::new(io::sink(), Some(Codec::Gzip)).unwrap();
        let r = d.write_all(&flipped).and_then(|_| d.finish());
        assert!(r.is_err() && d.corrupt().is_some());

        let mut longer = stored.clone();
        longer.extend_from_slice(b"more");
        let mut d = Decompressor::new(io::sink(), Some(Codec::Gzip)).unwrap();
        let r = d.write_all(&longer).and_then(|_| d.finish());
        assert!(r.is_err(), "bytes after the end went unnoticed");
        assert!(
            d.corrupt().is_some_and(|w| w.contains("after its end")),
            "{:?}",
            d.corrupt()
        );
    }
}
