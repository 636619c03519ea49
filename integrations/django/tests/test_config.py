"""Unit tests of the settings -> rcbackup config mapping (no database, no rcbackup).

Run: python -m unittest discover -s integrations/django/tests -t integrations/django
(tests/django_bridge.rs runs them with the test venv's Python).
"""

from __future__ import annotations

import subprocess
import tomllib
import unittest
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from urllib.parse import unquote

from rcbackup_django.config import ENCODE_PASSWORD, ConfigError, generate, split_remote, translate_dbbackup_template
from rcbackup_django.tomlwrite import dumps

PG = {"ENGINE": "django.db.backends.postgresql", "NAME": "app", "HOST": "db", "PORT": "5432", "USER": "u"}


def settings(**kw: Any) -> SimpleNamespace:
    base: dict[str, Any] = {"DATABASES": {"default": dict(PG)}, "DJANGO_RCLONE": {"REMOTE": "s3:b/app"}, "MEDIA_ROOT": ""}
    base.update(kw)
    return SimpleNamespace(**base)


class Mapping(unittest.TestCase):
    def test_django_rclone_keys_are_lowercased(self) -> None:
        keys = {
            "REMOTE": "s3:b",
            "RCLONE_BINARY": "rclone",
            "RCLONE_FLAGS": ["--transfers", "4"],
            "DB_BACKUP_DIR": "dumps",
            "DB_FILENAME_TEMPLATE": "{database}--{datetime}.{ext}",
            "DB_DATE_FORMAT": "%Y%m%d%H%M%S",
            "DB_CLEANUP_KEEP": 3,
            "MEDIA_BACKUP_DIR": "files",
        }
        cfg = generate(settings(DJANGO_RCLONE=keys)).config
        for key, value in keys.items():
            self.assertEqual(cfg[key.lower()], value)

    def test_password_goes_to_a_variable_never_the_config(self) -> None:
        db = dict(PG, PASSWORD="p w'\"ü#%@:")
        gen = generate(settings(DATABASES={"default": db, "other-db": dict(db)}))
        text = dumps(gen.config)
        self.assertNotIn("p w", text)
        self.assertEqual(gen.config["databases"]["default"]["password_env"], "RCBACKUP_DB_PASSWORD_DEFAULT")
        self.assertEqual(gen.config["databases"]["other-db"]["password_env"], "RCBACKUP_DB_PASSWORD_OTHER_DB")
        self.assertEqual(gen.secrets["RCBACKUP_DB_PASSWORD_DEFAULT"], "p w'\"ü#%@:")
        self.assertEqual(tomllib.loads(text)["databases"]["default"]["port"], 5432)

    def test_options_make_a_url_in_a_variable(self) -> None:
        db = dict(PG, PASSWORD="a@b:c/d#e f", OPTIONS={"sslmode": "require", "isolation_level": 1, "keepalives": 1})
        gen = generate(settings(DATABASES={"default": db}))
        self.assertEqual(gen.config["databases"]["default"], {"url_env": "RCBACKUP_DB_URL_DEFAULT"})
        url = gen.secrets["RCBACKUP_DB_URL_DEFAULT"]
        self.assertEqual(url, "postgres://u:a%40b%3Ac%2Fd%23e%20f@db:5432/app?sslmode=require")
        self.assertTrue(any("isolation_level" in w for w in gen.warnings))
        self.assertTrue(any("keepalives" in w for w in gen.warnings))
        self.assertNotIn("a@b", "".join(v.example for v in gen.variables))

    def test_url_variable_says_the_password_is_percent_encoded_and_how(self) -> None:
        db = dict(PG, PASSWORD="x", OPTIONS={"sslmode": "require"})
        (var,) = generate(settings(DATABASES={"default": db})).variables
        self.assertIn("<password> percent-encoded", var.holds)
        self.assertIn(ENCODE_PASSWORD, var.holds)
        password = "p w'\"ü#%@:/?&=\\ é"
        encoded = subprocess.run(
            ["sh", "-c", ENCODE_PASSWORD], input=password + "\n", capture_output=True, text=True, check=True
        ).stdout.strip()
        self.assertEqual(unquote(encoded), password)
        self.assertRegex(encoded, r"^[A-Za-z0-9%._~-]+$")

    def test_empty_db_backup_dir_keeps_the_backups_at_remote_root(self) -> None:
        # django-rclone's DB_BACKUP_DIR = "" puts backups at REMOTE's root; rcbackup
        # needs a folder, so REMOTE's last folder becomes db_backup_dir.
        for remote, parent, name in [("s3:b/app", "s3:b", "app"), ("s3:b", "s3:", "b"), ("/srv/bk/", "/srv", "bk")]:
            gen = generate(settings(DJANGO_RCLONE={"REMOTE": remote, "DB_BACKUP_DIR": ""}))
            self.assertEqual((gen.config["remote"], gen.config["db_backup_dir"]), (parent, name))
            # Never a sibling of REMOTE (for s3:b another bucket): media is refused,
            # naming django-rclone's REMOTE/media and what to set instead.
            self.assertNotIn("media_backup_dir", gen.config)
            self.assertNotIn("media_root", gen.config)
            self.assertIn(f"{remote.rstrip('/')}/media", gen.media_refused or "")
            self.assertIn("'DB_BACKUP_DIR': 'db'", gen.media_refused or "")
            self.assertEqual(gen.db_backup_dir, "")  # signals' paths are "/NAME", as django-rclone's
            self.assertTrue(any("DB_BACKUP_DIR" in w for w in gen.warnings))
        with self.assertRaisesRegex(ConfigError, r"DB_BACKUP_DIR.*root of s3:.*'DB_BACKUP_DIR': 'db'"):
            generate(settings(DJANGO_RCLONE={"REMOTE": "s3:", "DB_BACKUP_DIR": ""}))
        gen = generate(settings(DJANGO_RCLONE={"REMOTE": "s3:b/app", "DB_BACKUP_DIR": "", "MEDIA_BACKUP_DIR": "m"}))
        self.assertNotIn("media_backup_dir", gen.config)
        self.assertIn("s3:b/app/m", gen.media_refused or "")

    def test_split_remote(self) -> None:
        cases = {
            "s3:b/app": ("s3:b", "app"),
            "s3:b": ("s3:", "b"),
            "/srv/backups": ("/srv", "backups"),
            "/srv": ("/", "srv"),
            ":s3,a=b:bk/d": (":s3,a=b:bk", "d"),
            "/srv/a:b/c": ("/srv/a:b", "c"),
            "s3:": None,
            "/": None,
        }
        for remote, expected in cases.items():
            self.assertEqual(split_remote(remote), expected, remote)

    def test_colliding_variable_names_are_refused(self) -> None:
        db = dict(PG, PASSWORD="x")
        with self.assertRaisesRegex(ConfigError, "'a-b' and 'a_b'"):
            generate(settings(DATABASES={"a-b": db, "a_b": db}))

    def test_alias_rcbackup_cannot_name_is_refused(self) -> None:
        with self.assertRaisesRegex(ConfigError, "'my db'"):
            generate(settings(DATABASES={"my db": dict(PG)}))

    def test_unknown_engine_and_custom_connector_are_refused(self) -> None:
        with self.assertRaisesRegex(ConfigError, "oracle"):
            generate(settings(DATABASES={"default": dict(PG, ENGINE="django.db.backends.oracle")}))
        with self.assertRaisesRegex(ConfigError, "MongoDB"):
            generate(settings(DATABASES={"default": dict(PG, ENGINE="djongo")}))
        custom = {"REMOTE": "r:", "CONNECTORS": {"default": "myapp.MyConnector"}}
        with self.assertRaisesRegex(ConfigError, "custom class"):
            generate(settings(DJANGO_RCLONE=custom))
        gis = {"REMOTE": "r:", "CONNECTOR_MAPPING": {PG["ENGINE"]: "django_rclone.db.postgresql.PgDumpGisConnector"}}
        self.assertEqual(generate(settings(DJANGO_RCLONE=gis)).config["databases"]["default"]["engine"], "postgis")

    def test_relative_paths_are_made_absolute(self) -> None:
        s = settings(
            DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": "db.sqlite3"}},
            DJANGO_RCLONE={"REMOTE": "backups", "RCLONE_CONFIG": "rclone.conf"},
            MEDIA_ROOT="media",
        )
        cfg = generate(s, cwd=Path("/srv/app")).config
        self.assertEqual(cfg["remote"], "/srv/app/backups")
        self.assertEqual(cfg["rclone_config"], "/srv/app/rclone.conf")
        self.assertEqual(cfg["media_root"], "/srv/app/media")
        self.assertEqual(cfg["databases"]["default"]["name"], "/srv/app/db.sqlite3")
        self.assertEqual(generate(settings(DJANGO_RCLONE={"REMOTE": "s3:x/y"})).config["remote"], "s3:x/y")


class DbbackupSettings(unittest.TestCase):
    def test_mapped_settings(self) -> None:
        s = settings(
            DJANGO_RCLONE={},
            STORAGES={"dbbackup": {"BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": "/var/backups"}}},
            DBBACKUP_CLEANUP_KEEP=5,
            DBBACKUP_DATE_FORMAT="%Y%m%d-%H%M%S",
            DBBACKUP_FILENAME_TEMPLATE="{databasename}-{datetime}.{extension}",
            DBBACKUP_GPG_RECIPIENT="ops@example.com",
            DBBACKUP_DATABASES=[],
        )
        gen = generate(s)
        # django-dbbackup's files sit directly in the storage's folder.
        self.assertEqual((gen.config["remote"], gen.config["db_backup_dir"]), ("/var", "backups"))
        self.assertNotIn("media_backup_dir", gen.config)
        self.assertIn("/var/backups/media", gen.media_refused or "")
        self.assertTrue(any("db_backup_dir = 'backups'" in w for w in gen.warnings))
        self.assertEqual(gen.config["db_cleanup_keep"], 5)
        self.assertEqual(gen.config["db_date_format"], "%Y%m%d-%H%M%S")
        self.assertEqual(gen.config["db_filename_template"], "{database}-{datetime}.{ext}")
        self.assertNotIn("databases", gen.config)
        self.assertTrue(any("DBBACKUP_GPG_RECIPIENT" in w and "crypt" in w for w in gen.warnings))

    def test_storage_with_db_backup_dir_keeps_the_storage_as_remote(self) -> None:
        storages = {"dbbackup": {"BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": "bk"}}}
        cfg = generate(settings(DJANGO_RCLONE={"DB_BACKUP_DIR": "dumps"}, STORAGES=storages), cwd=Path("/srv")).config
        self.assertEqual((cfg["remote"], cfg["db_backup_dir"]), ("/srv/bk", "dumps"))
        self.assertNotIn("media_backup_dir", cfg)
        cfg = generate(settings(DJANGO_RCLONE={}, STORAGES=storages), cwd=Path("/srv")).config
        self.assertEqual((cfg["remote"], cfg["db_backup_dir"]), ("/srv", "bk"))

    def test_django_rclone_wins(self) -> None:
        s = settings(DJANGO_RCLONE={"REMOTE": "r:", "DB_CLEANUP_KEEP": 7}, DBBACKUP_CLEANUP_KEEP=5)
        self.assertEqual(generate(s).config["db_cleanup_keep"], 7)

    def test_untranslatable(self) -> None:
        with self.assertRaisesRegex(ConfigError, "servername"):
            translate_dbbackup_template("{databasename}-{servername}-{datetime}.{extension}")
        with self.assertRaisesRegex(ConfigError, "function"):
            translate_dbbackup_template(lambda **kw: "x")
        s3 = {"dbbackup": {"BACKEND": "storages.backends.s3.S3Storage", "OPTIONS": {"bucket_name": "b"}}}
        with self.assertRaisesRegex(ConfigError, "S3Storage.*REMOTE"):
            generate(settings(DJANGO_RCLONE={}, STORAGES=s3))


class Toml(unittest.TestCase):
    def test_round_trip(self) -> None:
        value = {
            "remote": 'a "quoted" \\ name\n\tü',
            "n": 3,
            "b": True,
            "flags": ["--x", "y z"],
            "policies": {"retention": {"module": "k.wasm", "config": {"keep": 14}}},
            "hooks": [{"module": "h.wasm", "on_error": "warn"}],
            "databases": {"my-db": {"engine": "sqlite", "name": "/x"}, "a.b": {"engine": "sqlite", "name": "/y"}},
        }
        self.assertEqual(tomllib.loads(dumps(value, ["a comment"])), value)


if __name__ == "__main__":
    unittest.main()
