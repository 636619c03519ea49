"""What every bridged command does around rcbackup: send django-rclone's
signals with its semantics, ask before a restore, and turn rcbackup's exit
codes into the command's.

- A ``pre_`` signal is sent before rcbackup is started. A receiver that
  raises stops the command (exit 3, as a hook's veto in rcbackup): nothing
  is backed up or restored.
- A ``post_`` signal is sent only after rcbackup exited 0.
- rcbackup failing (its message is already on stderr) ends the command with
  rcbackup's exit code, and no ``post_`` signal is sent.
- SIGINT, SIGTERM or SIGHUP to manage.py (:func:`bridged`): passed to the
  rcbackup that runs; from then on no question is asked, no signal sent and
  no rcbackup started: the command ends with 130, saying what was done, even
  when that rcbackup finished its step (exit 0) as the signal came.
"""

from __future__ import annotations

import functools
import select
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from django.core.management.base import CommandError
from django.dispatch import Signal

from . import runner
from .runner import EXIT_INTERRUPTED, EXIT_REFUSED, RcbackupFailed


def bridged(handle: Callable[..., None]) -> Callable[..., None]:
    """A command's ``handle``, run with :func:`runner.stoppable`: a signal
    that came during its last step still ends it with 130."""

    @functools.wraps(handle)
    def run(*args: Any, **options: Any) -> None:
        with runner.stoppable():
            handle(*args, **options)
            runner.stop_if_interrupted("Interrupted as the command ended; every step above was done.")

    return run


def send_pre(signal: Signal, name: str, what: str, **kwargs: Any) -> None:
    """Sends a ``pre_`` signal; a receiver raising stops ``what`` before it starts."""
    not_started = f"Interrupted: {what} not started; nothing was done."
    runner.stop_if_interrupted(not_started)
    try:
        signal.send(**kwargs)
    except Exception as exc:
        raise CommandError(
            f"{what} not started: a {name} receiver raised {type(exc).__name__}: {exc}",
            returncode=EXIT_REFUSED,
        ) from exc
    runner.stop_if_interrupted(not_started)


def send_post(signal: Signal, name: str, done: str, **kwargs: Any) -> None:
    """Sends a ``post_`` signal; a receiver raising fails the command, saying what was done."""
    runner.stop_if_interrupted(f"Interrupted: {done}; {name} was not sent and nothing more was done.")
    try:
        signal.send(**kwargs)
    except Exception as exc:
        raise CommandError(f"{done}, but a {name} receiver raised {type(exc).__name__}: {exc}") from exc


@contextmanager
def rcbackup_exit() -> Iterator[None]:
    """Ends the command with rcbackup's exit code when it fails."""
    try:
        yield
    except RcbackupFailed as exc:
        if exc.message:
            sys.stderr.write(f"rcbackup_django: {exc.message}\n")
        raise SystemExit(exc.code) from None


def confirm(question: str, interactive: bool) -> None:
    """Asks ``question [y/N]`` unless ``--noinput``; without a terminal to ask
    on, refuses (exit 3) rather than guess. Ctrl-C at the question ends the
    command as rcbackup's own question does: exit 130, nothing done."""
    cancelled = "Restore cancelled (interrupted); nothing was done."
    runner.stop_if_interrupted(cancelled)
    if not interactive:
        return
    if not sys.stdin.isatty():
        raise CommandError(
            f"{question} -- no terminal to ask on; pass --noinput to restore without asking",
            returncode=EXIT_REFUSED,
        )
    try:
        with runner.asking():
            answer = _ask(f"{question} [y/N] ").strip().lower()
    except EOFError:
        sys.stderr.write("\n")  # Ctrl-D ends no line
        answer = ""
    except KeyboardInterrupt:
        sys.stderr.write("\n")
        raise CommandError(cancelled, returncode=EXIT_INTERRUPTED) from None
    runner.stop_if_interrupted(cancelled)
    if answer not in {"y", "yes"}:
        raise CommandError("Restore cancelled.", returncode=EXIT_REFUSED)


def _ask(prompt: str) -> str:
    """One line from the terminal, as ``input()`` reads it, but a Ctrl-C is
    never lost: ``input()`` blocks in read(2) with no Python code running, so
    a SIGINT that lands between its prompt and that read only marks itself
    pending and the question waits on (seen on CI). Waiting in short
    select(2)s lets Python act on a pending signal within a fifth of a second.
    The question goes to stderr, as rcbackup's own does, so it is seen when
    stdout is redirected; to stdout when only that is the terminal."""
    out = sys.stdout if sys.stdout.isatty() and not sys.stderr.isatty() else sys.stderr
    out.write(prompt)
    out.flush()
    fd = sys.stdin.fileno()
    while not select.select([fd], [], [], 0.2)[0]:
        if runner.interrupted():  # the command's own handler took the signal
            raise KeyboardInterrupt
    line = sys.stdin.readline()
    if not line:
        raise EOFError
    return line
