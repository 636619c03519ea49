"""Unit tests of how the bridge hands rcbackup its config and asks its question
(no database, no rcbackup). Run as tests/test_config.py says."""

from __future__ import annotations

import io
import os
import shutil
import signal
import sys
import tempfile
import threading
import tomllib
import unittest
from unittest import mock

from django.core.management.base import CommandError

from rcbackup_django.bridge import _ask, confirm
from rcbackup_django.config import Generated
from rcbackup_django import runner
from rcbackup_django.runner import RcbackupFailed, _config_file, generated_note


class ConfigHandover(unittest.TestCase):
    @unittest.skipUnless(hasattr(os, "memfd_create"), "memfd is Linux's")
    def test_config_is_in_memory_sealed_and_never_on_disk(self) -> None:
        gen = Generated(config={"remote": "/x", "databases": {"default": {"engine": "sqlite", "name": "/x.db"}}})
        with _config_file(gen) as handle:
            self.assertEqual(handle.path, f"/dev/fd/{handle.keep_fds[0]}")
            # What rcbackup does with --config: open the path and read it.
            with open(handle.path, "rb") as f:
                self.assertEqual(tomllib.loads(f.read().decode())["remote"], "/x")
            self.assertTrue(os.readlink(f"/proc/self/fd/{handle.keep_fds[0]}").startswith("/memfd:"))
            with self.assertRaises(PermissionError):  # sealed
                os.pwrite(handle.keep_fds[0], b"x", 0)
        with self.assertRaises(OSError):  # closed after the run
            os.fstat(handle.keep_fds[0])

    def test_note_names_the_settings_to_change(self) -> None:
        note = generated_note("/dev/fd/3")
        for part in ["/dev/fd/3", "generated from your Django settings", "MEDIA_ROOT", "DATABASES", "rcbackup_config"]:
            self.assertIn(part, note)


class Question(unittest.TestCase):
    def test_ctrl_c_at_the_question_is_exit_130_not_a_traceback(self) -> None:
        with (
            mock.patch.object(sys, "stdin", mock.Mock(isatty=lambda: True)),
            mock.patch("rcbackup_django.bridge._ask", side_effect=KeyboardInterrupt),
            mock.patch.object(sys, "stderr", io.StringIO()),
        ):
            with self.assertRaises(CommandError) as caught:
                confirm("Restore?", True)
        self.assertEqual(caught.exception.returncode, 130)
        self.assertIn("interrupted", str(caught.exception))

    def _stdin(self, data: bytes) -> io.TextIOWrapper:
        """A pipe as stdin holding ``data``, then its end."""
        r, w = os.pipe()
        os.write(w, data)
        os.close(w)
        stdin = os.fdopen(r, "r")
        self.addCleanup(stdin.close)
        return stdin

    def test_the_answer_is_one_line_and_end_of_input_is_eof(self) -> None:
        with mock.patch.object(sys, "stderr", io.StringIO()) as err:
            with mock.patch.object(sys, "stdin", self._stdin(b"y\nmore\n")):
                self.assertEqual(_ask("Q? "), "y\n")
            self.assertEqual(err.getvalue(), "Q? ")
            with mock.patch.object(sys, "stdin", self._stdin(b"")), self.assertRaises(EOFError):
                _ask("Q? ")

    def test_a_ctrl_c_while_waiting_for_the_answer_interrupts(self) -> None:
        # Sent from another thread, so it may land before the wait starts as
        # well as during it; either way it is not lost. The pipe's end comes
        # after 10 s, so a lost Ctrl-C fails (EOFError) instead of hanging.
        # Python's own SIGINT handler, as in a terminal: a test run started
        # in the background inherits SIGINT ignored.
        self.addCleanup(signal.signal, signal.SIGINT, signal.signal(signal.SIGINT, signal.default_int_handler))
        r, w = os.pipe()
        stdin = os.fdopen(r, "r")
        self.addCleanup(stdin.close)
        ctrl_c = threading.Timer(0.05, os.kill, (os.getpid(), signal.SIGINT))
        ended = threading.Event()

        def end() -> None:
            os.close(w)
            ended.set()

        ender = threading.Timer(10, end)
        try:
            with (
                mock.patch.object(sys, "stdin", stdin),
                mock.patch.object(sys, "stderr", io.StringIO()),
                self.assertRaises(KeyboardInterrupt),
            ):
                ctrl_c.start()
                ender.start()
                _ask("Q? ")
        finally:
            ctrl_c.join()
            ender.cancel()
            ender.join()
            if not ended.is_set():
                os.close(w)



class Stopping(unittest.TestCase):
    def _sleeper(self) -> str:
        """A stand-in for rcbackup that has no handler yet: killed by a signal."""
        folder = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, folder)
        path = os.path.join(folder, "sleeper")
        with open(path, "w") as f:
            f.write("#!/bin/sh\nexec sleep 30\n")
        os.chmod(path, 0o755)
        return path

    def test_a_signal_that_kills_rcbackup_before_it_handles_one_is_exit_130(self) -> None:
        # Outside review: a signal in rcbackup's first milliseconds (before
        # its handlers) ended the command with 143, "killed by signal 15".
        gen = Generated(config={"remote": "/x"})
        with mock.patch.object(runner, "binary", return_value=self._sleeper()):
            with runner.stoppable(), mock.patch.object(sys, "stderr", io.StringIO()):
                threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGTERM)).start()
                with self.assertRaises(RcbackupFailed) as caught:
                    runner.run(gen, ["dbbackup"], capture=True)
        self.assertEqual(caught.exception.code, 130)
        self.assertIn("it had done nothing", caught.exception.message)

    def test_off_the_main_thread_signals_are_left_alone(self) -> None:
        # Outside review: call_command from a worker thread failed with
        # "signal only works in main thread".
        errors: list[BaseException] = []

        def work() -> None:
            try:
                with runner.stoppable():
                    runner.stop_if_interrupted("never")
            except BaseException as exc:  # noqa: BLE001 - the test reports it
                errors.append(exc)

        before = signal.getsignal(signal.SIGTERM)
        t = threading.Thread(target=work)
        t.start()
        t.join()
        self.assertEqual(errors, [])
        self.assertIs(signal.getsignal(signal.SIGTERM), before)


if __name__ == "__main__":
    unittest.main()
