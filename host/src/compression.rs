//! How a dump is compressed on its way to the remote, and decompressed on
//! its way back: multi-threaded zstd in rcbackup (the default), nothing, or
//! what the engine's dump tool does itself (`pg_dump -Fc`'s zlib).
//!
//! The record's size and SHA-256 are always of the stored bytes, so a
//! restore checks exactly what is on the remote before anything commits;
//! the dump framing check (engines/framing.rs) reads the dump itself.

use std::io::{self, Write};

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
}

impl Codec {
    /// Added to the backup's file extension: `.dump.zst`.
    pub fn suffix(self) -> &'static str {
        match self {
            Codec::Zstd => ".zst",
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
                // Workers compress beside the relay; on 2 cores, 2 workers.
                let workers = std::thread::available_parallelism()
                    .map(|n| n.get().min(MAX_WORKERS))
                    .unwrap_or(1) as u32;
                enc.multithread(workers)?;
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

/// Marks an error of the decompressor (not of the consumer behind it).
#[derive(Debug)]
pub struct NotDecodable(pub String);

impl std::fmt::Display for NotDecodable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for NotDecodable {}

/// Decompresses what is written into it into `inner` (the restore tool).
pub struct Decompressing<'a> {
    decoder: zstd::stream::write::Decoder<'static, WriteErrors<'a>>,
}

/// The consumer, its errors kept apart from the decoder's.
struct WriteErrors<'a> {
    inner: &'a mut dyn Write,
    failed: bool,
}

impl Write for WriteErrors<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.inner.write(buf).inspect_err(|_| self.failed = true)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush().inspect_err(|_| self.failed = true)
    }
}

impl<'a> Decompressing<'a> {
    pub fn new(inner: &'a mut dyn Write) -> io::Result<Decompressing<'a>> {
        Ok(Decompressing {
            decoder: zstd::stream::write::Decoder::new(WriteErrors {
                inner,
                failed: false,
            })?,
        })
    }

    fn tag(&self, e: io::Error) -> io::Error {
        if self.decoder.get_ref().failed {
            e
        } else {
            io::Error::new(io::ErrorKind::InvalidData, NotDecodable(e.to_string()))
        }
    }
}

impl Write for Decompressing<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.decoder.write(buf).map_err(|e| self.tag(e))
    }

    fn flush(&mut self) -> io::Result<()> {
        self.decoder.flush().map_err(|e| self.tag(e))
    }
}

/// Whether `e` came from decompressing (the stored object is not a zstd
/// stream), not from the consumer.
pub fn is_not_decodable(e: &io::Error) -> Option<String> {
    e.get_ref()
        .and_then(|inner| inner.downcast_ref::<NotDecodable>())
        .map(|d| d.0.clone())
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
            "zstd:0", "zstd:10", "zstd:20", "zstd:-1", "gzip", "ZSTD", "zstd:", "",
        ] {
            let e = Compression::parse(bad).unwrap_err();
            assert!(e.contains("zstd:LEVEL"), "{bad}: {e}");
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
        assert!(stored.len() < data.len() / 4, "{} bytes", stored.len());
        assert_eq!(&stored[..4], &[0x28, 0xb5, 0x2f, 0xfd], "zstd magic");
        let mut out = Vec::new();
        let mut d = Decompressing::new(&mut out).unwrap();
        d.write_all(&stored).unwrap();
        d.flush().unwrap();
        drop(d);
        assert_eq!(out, data);
    }

    #[test]
    fn bytes_that_are_not_zstd_are_a_decoding_error() {
        let mut out = Vec::new();
        let mut d = Decompressing::new(&mut out).unwrap();
        let e = d.write_all(b"PGDMP this is not zstd").unwrap_err();
        assert!(is_not_decodable(&e).is_some(), "{e}");
    }
}
