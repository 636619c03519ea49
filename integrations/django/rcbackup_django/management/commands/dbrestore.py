"""``manage.py dbrestore [-d ALIAS] [-i NAME] [--noinput]``, run by rcbackup.

The backup is resolved first (``listbackups --json``), then the question is
asked, then ``pre_db_restore`` is sent with that backup's path, and rcbackup
restores exactly that backup (``-i NAME``): the path receivers see is the one
restored, even if a new backup is published meanwhile.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from rcbackup_django import runner
from rcbackup_django.bridge import bridged, confirm, rcbackup_exit, send_post, send_pre
from rcbackup_django.signals import post_db_restore, pre_db_restore


class Command(BaseCommand):
    help = "Restore a database from the rclone remote with rcbackup."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "-d", "--database", default="", help="Database alias; required when several databases are configured."
        )
        parser.add_argument(
            "-i", "--input-path", default="", help="Backup name (or DB_BACKUP_DIR/name); default: the newest."
        )
        parser.add_argument(
            "--noinput", action="store_false", dest="interactive", default=True, help="Do not ask before restoring."
        )

    @bridged
    def handle(self, *args: Any, **options: Any) -> None:
        database = str(options["database"])
        verbosity = int(options["verbosity"])
        if not database:
            if len(settings.DATABASES) > 1:
                raise CommandError(
                    "Multiple databases are configured. Please specify which one to restore with --database.",
                    returncode=runner.EXIT_USAGE,
                )
            database = next(iter(settings.DATABASES))
        elif database not in settings.DATABASES:
            raise CommandError(f"Database '{database}' is not configured.", returncode=runner.EXIT_USAGE)
        gen = runner.prepare([database])
        runner.warn(gen, verbosity)
        flags = runner.verbosity_flags(verbosity)

        with rcbackup_exit():
            listing = runner.run(gen, [*flags, "listbackups", "-d", database, "--json"], capture=True).json()
        name = self._choose(listing, database, str(options["input_path"]), gen.db_backup_dir)
        path = f"{gen.db_backup_dir}/{name}"

        confirm(f"Restore database '{database}' from '{path}'?", bool(options["interactive"]))
        send_pre(
            pre_db_restore, "pre_db_restore", f"restore of '{database}'", sender=self.__class__, database=database, path=path
        )
        if verbosity >= 1:
            self.stdout.write(f"Restoring database '{database}' from {path}")
        with rcbackup_exit():
            # The question was asked above, so rcbackup must not ask again.
            runner.run(gen, [*flags, "dbrestore", "-d", database, "-i", name, "--noinput"], capture=True)
        send_post(post_db_restore, "post_db_restore", f"'{database}' was restored from {path}", sender=self.__class__, database=database)
        if verbosity >= 1:
            self.stdout.write(self.style.SUCCESS(f"Restore completed from: {path}"))

    @staticmethod
    def _choose(listing: list[dict[str, Any]], database: str, wanted: str, backup_dir: str) -> str:
        """The name of the backup to restore, refused as rcbackup would refuse it."""
        backups = [e for e in listing if e.get("status") in {"ok", "damaged"} and e.get("database") == database]
        intact = next((e["name"] for e in backups if e["status"] == "ok"), None)
        hint = f"; the newest intact backup is {intact}: pass -i {intact}" if intact else ""
        if wanted:
            name = wanted.removeprefix(f"{backup_dir}/")
            entry = next((e for e in backups if e["name"] == name), None)
            if entry is None:
                raise CommandError(
                    f"No backup '{name}' of database '{database}' (manage.py listbackups -d {database} lists them)."
                )
        elif not backups:
            raise CommandError(f"No backups found for database '{database}'.")
        else:
            entry = backups[0]
        if entry["status"] != "ok":
            raise CommandError(
                f"Backup '{entry['name']}' of database '{database}' is damaged ({entry.get('problem', 'see listbackups')}){hint}",
                returncode=runner.EXIT_INTEGRITY,
            )
        return str(entry["name"])
