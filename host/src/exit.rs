//! Exit codes and the error kinds that choose them.
//!
//! Callers inside the library return `anyhow::Error`; where the exit code
//! matters, the root cause is a [`Failure`] whose kind picks the code. The
//! codes are part of the documented interface (README, "Exit codes").

use std::fmt;

/// The documented exit codes of `rcbackup`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitCode {
    Success = 0,
    /// A backup, restore, verify, listing or cleanup failed (dump tool,
    /// rclone, restore tool, or the remote).
    Failed = 1,
    /// The command line or the config file is wrong.
    Usage = 2,
    /// A restore was refused: by the user at the prompt, for lack of a
    /// terminal without --noinput, or by a policy; or an operation was
    /// vetoed by a hook (its error answer to a `pre-` event; a hook that
    /// fails is `Failed`).
    Refused = 3,
    /// A backup's size or SHA-256 does not match its integrity record.
    Integrity = 4,
    /// Another run holds the lock on the series (database or media backup)
    /// past --lock-wait, or this run lost its lock (see docs/locks.md).
    Locked = 5,
    /// Interrupted by Ctrl-C or SIGTERM.
    Interrupted = 130,
}

/// The kind of failure, which decides the exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    Failed,
    Usage,
    Refused,
    Integrity,
    Locked,
    Interrupted,
}

impl FailureKind {
    pub fn exit_code(self) -> ExitCode {
        match self {
            FailureKind::Failed => ExitCode::Failed,
            FailureKind::Usage => ExitCode::Usage,
            FailureKind::Refused => ExitCode::Refused,
            FailureKind::Integrity => ExitCode::Integrity,
            FailureKind::Locked => ExitCode::Locked,
            FailureKind::Interrupted => ExitCode::Interrupted,
        }
    }
}

/// A typed failure carried inside an `anyhow::Error` chain.
#[derive(Debug)]
pub struct Failure {
    pub kind: FailureKind,
    pub message: String,
}

impl Failure {
    pub fn new(kind: FailureKind, message: impl Into<String>) -> Self {
        Failure {
            kind,
            message: message.into(),
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Failure {}

/// Shorthands that build an `anyhow::Error` of a given kind.
pub fn usage(message: impl Into<String>) -> anyhow::Error {
    Failure::new(FailureKind::Usage, message).into()
}
pub fn refused(message: impl Into<String>) -> anyhow::Error {
    Failure::new(FailureKind::Refused, message).into()
}
pub fn integrity(message: impl Into<String>) -> anyhow::Error {
    Failure::new(FailureKind::Integrity, message).into()
}
pub fn locked(message: impl Into<String>) -> anyhow::Error {
    Failure::new(FailureKind::Locked, message).into()
}
pub fn failed(message: impl Into<String>) -> anyhow::Error {
    Failure::new(FailureKind::Failed, message).into()
}
/// What an interrupt before a backup's record is written leaves: nothing.
pub const NOTHING_PUBLISHED: &str = "interrupted; nothing was published";
pub fn interrupted() -> anyhow::Error {
    interrupted_at(NOTHING_PUBLISHED)
}
pub fn interrupted_at(message: impl Into<String>) -> anyhow::Error {
    Failure::new(FailureKind::Interrupted, message).into()
}

/// The exit code for an error: the kind of the first `Failure` in its chain,
/// else `Failed`.
pub fn code_for(err: &anyhow::Error) -> ExitCode {
    err.chain()
        .find_map(|e| e.downcast_ref::<Failure>())
        .map(|f| f.kind.exit_code())
        .unwrap_or(ExitCode::Failed)
}

/// Appends `note` to an error's message, keeping its kind (and exit code):
/// "backup x failed its integrity check: ...; the database was left as it was".
pub fn with_note(err: anyhow::Error, note: &str) -> anyhow::Error {
    let kind = err
        .chain()
        .find_map(|e| e.downcast_ref::<Failure>())
        .map_or(FailureKind::Failed, |f| f.kind);
    Failure::new(kind, format!("{err:#}; {note}")).into()
}
