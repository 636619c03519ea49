"""``manage.py mediarestore [--noinput] [--mirror]``, run by rcbackup."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from rcbackup_django import runner
from rcbackup_django.bridge import bridged, confirm, rcbackup_exit, send_post, send_pre
from rcbackup_django.signals import post_media_restore, pre_media_restore


class Command(BaseCommand):
    help = "Restore MEDIA_ROOT from the rclone remote with rcbackup."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--noinput", action="store_false", dest="interactive", default=True, help="Do not ask before restoring."
        )
        parser.add_argument(
            "--mirror", action="store_true", help="Also delete local files the backup lacks (django-rclone always did)."
        )

    @bridged
    def handle(self, *args: Any, **options: Any) -> None:
        verbosity = int(options["verbosity"])
        gen = runner.prepare([])
        if gen.media_refused:
            raise CommandError(f"{gen.media_refused}; nothing was done.", returncode=runner.EXIT_USAGE)
        media_root = gen.config.get("media_root")
        if not media_root:
            raise CommandError("MEDIA_ROOT is not configured.", returncode=runner.EXIT_USAGE)
        runner.warn(gen, verbosity)
        mirror = bool(options["mirror"])
        source = f"{gen.config['remote']}/{gen.config.get('media_backup_dir', 'media')}"
        deleting = ", deleting local files the backup lacks" if mirror else ""
        confirm(f"Restore media into '{media_root}' from '{source}'{deleting}?", bool(options["interactive"]))

        send_pre(pre_media_restore, "pre_media_restore", "media restore", sender=self.__class__)
        argv = [*runner.verbosity_flags(verbosity), "mediarestore", "--noinput"]
        if mirror:
            argv.append("--mirror")
        with rcbackup_exit():
            runner.run(gen, argv, capture=verbosity < 1)
        send_post(post_media_restore, "post_media_restore", "the media was restored", sender=self.__class__)
        if verbosity >= 1:
            self.stdout.write(self.style.SUCCESS("Media restore completed."))
