"""``manage.py listbackups [-d ALIAS] [--media] [--json]``, run by rcbackup."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from rcbackup_django import runner
from rcbackup_django.bridge import bridged, rcbackup_exit


class Command(BaseCommand):
    help = "List database and media backups on the rclone remote with rcbackup."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("-d", "--database", default="", help="Only this database's backups.")
        parser.add_argument("--media", action="store_true", help="The media backup instead of database backups.")
        parser.add_argument("--json", action="store_true", help="rcbackup's JSON document (docs/json.md).")

    @bridged
    def handle(self, *args: Any, **options: Any) -> None:
        database = str(options["database"])
        verbosity = int(options["verbosity"])
        if database and database not in settings.DATABASES:
            raise CommandError(f"Database '{database}' is not configured.", returncode=runner.EXIT_USAGE)
        gen = runner.prepare([database] if database else [])
        runner.warn(gen, verbosity)
        argv = [*runner.verbosity_flags(verbosity), "listbackups"]
        if database:
            argv += ["-d", database]
        if options["media"]:
            if gen.media_refused:
                raise CommandError(f"{gen.media_refused}; nothing was done.", returncode=runner.EXIT_USAGE)
            argv.append("--media")
        if options["json"]:
            argv.append("--json")
        with rcbackup_exit():
            runner.run(gen, argv, capture=False)
