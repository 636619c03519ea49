//! Random bytes from the kernel, for secrets (the rclone server's and a
//! drill user's passwords) and names that must not collide.

use std::io::Read;

/// Fills `buf`, or `None` if /dev/urandom cannot be read.
fn fill(buf: &mut [u8]) -> Option<()> {
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(buf))
        .ok()
}

/// `N` random bytes.
pub fn bytes<const N: usize>() -> Option<[u8; N]> {
    let mut b = [0u8; N];
    fill(&mut b)?;
    Some(b)
}

/// `n` random bytes as hex.
pub fn hex(n: usize) -> Option<String> {
    let mut b = vec![0u8; n];
    fill(&mut b)?;
    Some(hex::encode(b))
}
