//! The host's relay between two processes: a fixed buffer, a byte count and
//! a SHA-256 over everything that passes, and an account of which end
//! stopped first. Memory use does not depend on how much flows through.

use std::io::{self, Read, Write};

use sha2::{Digest as _, Sha256};

/// Size of the relay buffer: the only memory that grows with throughput.
const BUF: usize = 256 * 1024;

/// Size and SHA-256 (lower-case hex) of a stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Digest {
    pub size: u64,
    pub sha256: String,
}

/// Why a relay stopped.
#[derive(Debug)]
pub enum End {
    /// The source reached end-of-file and everything was written.
    SourceDone,
    /// Reading the source failed.
    SourceFailed(io::Error),
    /// Writing to the sink failed: it exited or closed its input.
    SinkFailed(io::Error),
    /// The source sent more than `limit` bytes.
    TooLong,
}

/// A running byte count and SHA-256, carried across relays of one stream.
#[derive(Default)]
pub struct Tally {
    hasher: Sha256,
    size: u64,
}

impl Tally {
    /// Counts and hashes `bytes`.
    pub fn add(&mut self, bytes: &[u8]) {
        self.size += bytes.len() as u64;
        self.hasher.update(bytes);
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    pub fn finish(self) -> Digest {
        Digest {
            size: self.size,
            sha256: hex::encode(self.hasher.finalize()),
        }
    }
}

/// Copies `src` to `dst` until EOF or an error, hashing as it goes. With a
/// `limit`, stops as soon as more than `limit` bytes arrive. `dst` is flushed
/// but not closed: the caller decides when its reader sees EOF.
pub fn relay(src: &mut dyn Read, dst: &mut dyn Write, limit: Option<u64>) -> (End, Digest) {
    let mut tally = Tally::default();
    let end = relay_counted(src, dst, limit, &mut tally);
    (end, tally.finish())
}

/// [`relay`] into an existing tally, so a stream can be finished elsewhere
/// (e.g. drained to check its hash after its consumer stopped).
pub fn relay_counted(
    src: &mut dyn Read,
    dst: &mut dyn Write,
    limit: Option<u64>,
    tally: &mut Tally,
) -> End {
    pump(src, dst, limit, tally, None)
}

/// [`relay_counted`], except that the last chunk read is not written but
/// left in `held`: the consumer cannot finish (and so cannot commit) until
/// the caller has checked the whole stream and writes `held` itself.
pub fn relay_holding_last(
    src: &mut dyn Read,
    dst: &mut dyn Write,
    limit: Option<u64>,
    tally: &mut Tally,
    held: &mut Vec<u8>,
) -> End {
    pump(src, dst, limit, tally, Some(held))
}

fn pump(
    src: &mut dyn Read,
    dst: &mut dyn Write,
    limit: Option<u64>,
    tally: &mut Tally,
    mut held: Option<&mut Vec<u8>>,
) -> End {
    let mut buf = vec![0u8; BUF];
    if let Some(h) = held.as_deref_mut() {
        h.clear();
        h.reserve(BUF);
    }
    let end = loop {
        let n = match src.read(&mut buf) {
            Ok(0) => break End::SourceDone,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => break End::SourceFailed(e),
        };
        tally.size += n as u64;
        if limit.is_some_and(|l| tally.size > l) {
            break End::TooLong;
        }
        tally.hasher.update(&buf[..n]);
        // Holding back: write the previous chunk, keep this one.
        let written = match held.as_deref_mut() {
            Some(h) => {
                let r = dst.write_all(h);
                h.clear();
                h.extend_from_slice(&buf[..n]);
                r
            }
            None => dst.write_all(&buf[..n]),
        };
        if let Err(e) = written {
            break End::SinkFailed(e);
        }
    };
    match (end, dst.flush()) {
        (End::SourceDone, Err(e)) => End::SinkFailed(e),
        (end, _) => end,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_and_counts() {
        let (end, d) = relay(&mut &b"abc"[..], &mut Vec::new(), None);
        assert!(matches!(end, End::SourceDone));
        assert_eq!(d.size, 3);
        assert_eq!(
            d.sha256,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn holds_back_the_last_chunk() {
        let mut out = Vec::new();
        let mut tally = Tally::default();
        let mut held = Vec::new();
        let end = relay_holding_last(&mut &b"abc"[..], &mut out, None, &mut tally, &mut held);
        assert!(matches!(end, End::SourceDone));
        assert!(
            out.is_empty(),
            "nothing reaches the consumer before the check"
        );
        assert_eq!(held, b"abc");
        assert_eq!(tally.finish().size, 3);
    }

    #[test]
    fn stops_past_limit() {
        let (end, _) = relay(&mut &b"abcdef"[..], &mut Vec::new(), Some(3));
        assert!(matches!(end, End::TooLong));
    }

    /// Hands out `data` in pieces of at most `step` bytes, with an
    /// `Interrupted` error before the first piece, then fails with `fail`
    /// (if any) instead of reaching EOF.
    struct Trickle {
        data: Vec<u8>,
        at: usize,
        step: usize,
        interrupted: bool,
        fail: Option<io::ErrorKind>,
    }

    impl Trickle {
        fn new(data: Vec<u8>, step: usize) -> Trickle {
            Trickle {
                data,
                at: 0,
                step,
                interrupted: false,
                fail: None,
            }
        }
    }

    impl Read for Trickle {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if !self.interrupted {
                self.interrupted = true;
                return Err(io::ErrorKind::Interrupted.into());
            }
            if self.at == self.data.len() {
                if let Some(kind) = self.fail {
                    return Err(kind.into());
                }
            }
            let n = self.step.min(buf.len()).min(self.data.len() - self.at);
            buf[..n].copy_from_slice(&self.data[self.at..self.at + n]);
            self.at += n;
            Ok(n)
        }
    }

    fn sample(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 7 % 251) as u8).collect()
    }

    fn sha(data: &[u8]) -> String {
        hex::encode(Sha256::digest(data))
    }

    #[test]
    fn relays_many_chunks_whole_after_an_interrupted_read() {
        let data = sample(3 * BUF + 12_345);
        let mut out = Vec::new();
        let (end, d) = relay(&mut Trickle::new(data.clone(), 100_000), &mut out, None);
        assert!(matches!(end, End::SourceDone), "{end:?}");
        assert_eq!(out, data);
        assert_eq!(d.size, data.len() as u64);
        assert_eq!(d.sha256, sha(&data));
    }

    #[test]
    fn limit_is_inclusive() {
        let data = sample(1000);
        let (end, d) = relay(&mut &data[..], &mut Vec::new(), Some(1000));
        assert!(matches!(end, End::SourceDone), "{end:?}");
        assert_eq!(d.size, 1000);
        let (end, _) = relay(&mut &data[..], &mut Vec::new(), Some(999));
        assert!(matches!(end, End::TooLong), "{end:?}");
    }

    #[test]
    fn nothing_past_the_limit_is_written() {
        let data = sample(2 * BUF);
        let mut out = Vec::new();
        let (end, _) = relay(&mut Trickle::new(data, BUF), &mut out, Some(BUF as u64 + 1));
        assert!(matches!(end, End::TooLong), "{end:?}");
        assert_eq!(
            out.len(),
            BUF,
            "the chunk that crossed the limit is not written"
        );
    }

    #[test]
    fn holding_back_writes_all_but_the_last_chunk() {
        let data = sample(2 * BUF + 500);
        let mut out = Vec::new();
        let mut tally = Tally::default();
        let mut held = vec![9u8; 3];
        let end = relay_holding_last(
            &mut Trickle::new(data.clone(), BUF),
            &mut out,
            None,
            &mut tally,
            &mut held,
        );
        assert!(matches!(end, End::SourceDone), "{end:?}");
        assert_eq!(out, data[..2 * BUF]);
        assert_eq!(held, data[2 * BUF..]);
        let d = tally.finish();
        assert_eq!((d.size, d.sha256), (data.len() as u64, sha(&data)));
    }

    #[test]
    fn a_tally_carries_across_relays() {
        let mut tally = Tally::default();
        let mut out = Vec::new();
        relay_counted(&mut &b"hello "[..], &mut out, None, &mut tally);
        assert_eq!(tally.size(), 6);
        relay_counted(&mut &b"world"[..], &mut out, Some(11), &mut tally);
        assert_eq!(out, b"hello world");
        let d = tally.finish();
        assert_eq!(d.size, 11);
        assert_eq!(d.sha256, sha(b"hello world"));
    }

    #[test]
    fn a_failing_source_is_reported() {
        let mut src = Trickle::new(sample(10), 4);
        src.fail = Some(io::ErrorKind::BrokenPipe);
        let mut out = Vec::new();
        let (end, d) = relay(&mut src, &mut out, None);
        assert!(
            matches!(&end, End::SourceFailed(e) if e.kind() == io::ErrorKind::BrokenPipe),
            "{end:?}"
        );
        assert_eq!(d.size, 10);
        assert_eq!(out.len(), 10);
    }

    /// Takes `room` bytes, then fails writes; `flush_fails` fails flush.
    struct Sink {
        room: usize,
        got: Vec<u8>,
        flush_fails: bool,
    }

    impl Write for Sink {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            if self.got.len() >= self.room {
                return Err(io::ErrorKind::BrokenPipe.into());
            }
            let n = buf.len().min(self.room - self.got.len());
            self.got.extend_from_slice(&buf[..n]);
            Ok(n)
        }
        fn flush(&mut self) -> io::Result<()> {
            if self.flush_fails {
                Err(io::ErrorKind::BrokenPipe.into())
            } else {
                Ok(())
            }
        }
    }

    #[test]
    fn a_failing_sink_is_reported() {
        let data = sample(3 * BUF);
        let mut sink = Sink {
            room: BUF + 10,
            got: Vec::new(),
            flush_fails: false,
        };
        let (end, _) = relay(&mut Trickle::new(data, BUF), &mut sink, None);
        assert!(matches!(end, End::SinkFailed(_)), "{end:?}");
        // A sink that took everything but cannot flush it failed too.
        let mut sink = Sink {
            room: usize::MAX,
            got: Vec::new(),
            flush_fails: true,
        };
        let (end, _) = relay(&mut &b"abc"[..], &mut sink, None);
        assert!(matches!(end, End::SinkFailed(_)), "{end:?}");
        // While a source failure stays the cause even if flushing fails.
        let mut src = Trickle::new(sample(5), 5);
        src.fail = Some(io::ErrorKind::Other);
        let (end, _) = relay(&mut src, &mut sink, None);
        assert!(matches!(end, End::SourceFailed(_)), "{end:?}");
    }

    /// Remembers the size of every buffer it is asked to fill.
    struct Offered {
        data: Vec<u8>,
        sizes: Vec<usize>,
    }

    impl Read for Offered {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            self.sizes.push(buf.len());
            let n = buf.len().min(self.data.len());
            buf[..n].copy_from_slice(&self.data[..n]);
            self.data.drain(..n);
            Ok(n)
        }
    }

    /// The source is read 256 KiB at a time: few enough system calls for a
    /// dump of many GiB, and the only buffer the relay holds.
    #[test]
    fn reads_in_fixed_256_kib_chunks() {
        let data = sample(600 * 1024);
        let mut src = Offered {
            data: data.clone(),
            sizes: Vec::new(),
        };
        let mut out = Vec::new();
        let (end, _) = relay(&mut src, &mut out, None);
        assert!(matches!(end, End::SourceDone), "{end:?}");
        assert_eq!(out, data);
        assert_eq!(src.sizes, [256 * 1024; 4]);
    }
}
