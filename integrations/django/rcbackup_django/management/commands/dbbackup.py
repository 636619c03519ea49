"""``manage.py dbbackup [-d ALIAS] [--clean]``, run by rcbackup."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from rcbackup_django import runner
from rcbackup_django.bridge import bridged, rcbackup_exit, send_post, send_pre
from rcbackup_django.signals import post_db_backup, pre_db_backup


class Command(BaseCommand):
    help = "Back up a database to the rclone remote with rcbackup."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("-d", "--database", default="default", help="Database alias to back up (default: 'default').")
        parser.add_argument("--clean", action="store_true", help="Then remove old backups beyond DB_CLEANUP_KEEP.")
        parser.add_argument("--noinput", action="store_true", help="Accepted for django-dbbackup's scripts; dbbackup never asks.")

    @bridged
    def handle(self, *args: Any, **options: Any) -> None:
        database = str(options["database"])
        verbosity = int(options["verbosity"])
        if database not in settings.DATABASES:
            raise CommandError(f"Database '{database}' is not configured.", returncode=runner.EXIT_USAGE)
        gen = runner.prepare([database])
        runner.warn(gen, verbosity)
        flags = runner.verbosity_flags(verbosity)

        send_pre(pre_db_backup, "pre_db_backup", f"backup of '{database}'", sender=self.__class__, database=database)
        if verbosity >= 1:
            self.stdout.write(f"Backing up database '{database}'")
        with rcbackup_exit():
            made = runner.run(gen, [*flags, "dbbackup", "-d", database, "--json"], capture=True).json()
        path = f"{gen.db_backup_dir}/{made['backups'][0]['name']}"
        send_post(
            post_db_backup, "post_db_backup", f"backup {path} was made", sender=self.__class__, database=database, path=path
        )
        if verbosity >= 1:
            self.stdout.write(self.style.SUCCESS(f"Backup completed: {path}"))

        if options["clean"]:
            # After post_db_backup, as django-rclone cleans up: `prune -d` is exactly
            # what `dbbackup --clean` does after its backup.
            with rcbackup_exit():
                pruned = runner.run(gen, [*flags, "prune", "-d", database, "--json"], capture=True).json()
            if verbosity >= 1:
                for db in pruned.get("databases", []):
                    for decision in db.get("decisions", []):
                        if decision.get("action") == "delete":
                            self.stdout.write(f"Removing old backup: {gen.db_backup_dir}/{decision['name']}")
