"""``manage.py mediabackup``, run by rcbackup (a guarded sync with version folders)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from rcbackup_django import runner
from rcbackup_django.bridge import bridged, rcbackup_exit, send_post, send_pre
from rcbackup_django.config import media_root_setting
from rcbackup_django.signals import post_media_backup, pre_media_backup


class Command(BaseCommand):
    help = "Back up MEDIA_ROOT to the rclone remote with rcbackup."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--noinput", action="store_true", help="Accepted for django-dbbackup's scripts; never asks.")

    @bridged
    def handle(self, *args: Any, **options: Any) -> None:
        verbosity = int(options["verbosity"])
        gen = runner.prepare([])
        if gen.media_refused:
            raise CommandError(f"{gen.media_refused}; nothing was done.", returncode=runner.EXIT_USAGE)
        if "media_root" not in gen.config:
            raise CommandError("MEDIA_ROOT is not configured.", returncode=runner.EXIT_USAGE)
        root = Path(str(gen.config["media_root"]))
        if not root.is_dir():
            # rcbackup would refuse it too, but naming its generated config's media_root.
            setting = media_root_setting(settings)
            missing = not root.exists()
            raise CommandError(
                f"{setting} {root} {'does not exist' if missing else 'is not a folder'}; nothing was done. "
                f"Fix {setting} in your settings" + (", or mount or create the folder" if missing else ""),
                returncode=runner.EXIT_FAILED if missing else runner.EXIT_USAGE,
            )
        runner.warn(gen, verbosity)
        send_pre(pre_media_backup, "pre_media_backup", "media backup", sender=self.__class__)
        with rcbackup_exit():
            runner.run(gen, [*runner.verbosity_flags(verbosity), "mediabackup"], capture=verbosity < 1)
        send_post(post_media_backup, "post_media_backup", "the media backup was made", sender=self.__class__)
        if verbosity >= 1:
            self.stdout.write(self.style.SUCCESS("Media backup completed."))
