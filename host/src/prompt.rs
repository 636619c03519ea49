//! The y/N confirmation before a restore.

use std::io::IsTerminal;
use std::os::fd::AsRawFd;

use anyhow::Result;

use crate::exit;

/// Asks `question [y/N]` on the terminal. Without a terminal on stdin it
/// refuses at once rather than hang or guess. Ctrl-C or SIGTERM while it
/// waits cancels (exit 130); nothing typed afterwards is read.
pub fn confirm(question: &str) -> Result<()> {
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        return Err(exit::refused(format!(
            "{question} needs an answer, but stdin is not a terminal; pass --noinput to go ahead without asking"
        )));
    }
    {
        use std::io::Write;
        let mut err = std::io::stderr().lock();
        let _ = write!(err, "{question} [y/N] ");
        let _ = err.flush();
    }
    let answer = read_answer(&stdin)?;
    match answer.trim().to_ascii_lowercase().as_str() {
        "y" | "yes" => Ok(()),
        _ => Err(exit::refused("restore cancelled; nothing was changed")),
    }
}

const CANCELLED: &str = "the restore was cancelled at the prompt; nothing was changed";

/// Reads one line, looking every 100 ms whether a signal asked to stop, so
/// that an interrupt at the prompt is never followed by a restore.
fn read_answer(stdin: &std::io::Stdin) -> Result<String> {
    let fd = stdin.as_raw_fd();
    let mut line = Vec::new();
    loop {
        crate::interrupt::stop_if_interrupted(CANCELLED)?;
        let mut poll = libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: poll(2) on one valid pollfd.
        let ready = unsafe { libc::poll(&mut poll, 1, 100) };
        if ready <= 0 {
            continue;
        }
        let mut byte = 0u8;
        // One byte at a time, from the descriptor itself: std's Stdin is
        // buffered, so its first read took the whole line ("y\n") into its
        // buffer, poll(2) then saw nothing more to read, and on a terminal
        // the answer was never acted on (a pipe's end hid that in tests).
        // SAFETY: read(2) of one byte into a valid one-byte buffer.
        let n = unsafe { libc::read(fd, (&raw mut byte).cast(), 1) };
        match n {
            0 => break,
            // A terminal in raw mode sends Enter as \r.
            1 if byte == b'\n' || byte == b'\r' => break,
            1 => line.push(byte),
            _ => {
                let e = std::io::Error::last_os_error();
                if e.kind() == std::io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(exit::failed(format!("reading the answer: {e}")));
            }
        }
    }
    crate::interrupt::stop_if_interrupted(CANCELLED)?;
    Ok(String::from_utf8_lossy(&line).into_owned())
}
