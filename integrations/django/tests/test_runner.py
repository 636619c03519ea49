"""Unit tests of how the bridge hands rcbackup its config and asks its question
(no database, no rcbackup). Run as tests/test_config.py says."""

from __future__ import annotations

import io
import os
import sys
import tomllib
import unittest
from unittest import mock

from django.core.management.base import CommandError

from rcbackup_django.bridge import confirm
from rcbackup_django.config import Generated
from rcbackup_django.runner import _config_file, generated_note


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
            mock.patch("builtins.input", side_effect=KeyboardInterrupt),
            mock.patch.object(sys, "stderr", io.StringIO()),
        ):
            with self.assertRaises(CommandError) as caught:
                confirm("Restore?", True)
        self.assertEqual(caught.exception.returncode, 130)
        self.assertIn("interrupted", str(caught.exception))


if __name__ == "__main__":
    unittest.main()
