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
}
