"""Django settings -> an rcbackup config.

Reads ``settings.DATABASES``, ``MEDIA_ROOT``, django-rclone's ``DJANGO_RCLONE``
dict, the ``DBBACKUP_*`` settings of django-dbbackup where they map, and the
bridge's own ``RCBACKUP`` dict, and returns:

- the config as a dict (written as TOML by :mod:`rcbackup_django.tomlwrite`),
  which never holds a password: a database's password is named by
  ``password_env`` (or is inside the URL that ``url_env`` names);
- the values of those variables (``secrets``), which the bridge puts only in
  the environment of the rcbackup process it starts;
- warnings naming each setting that does not map, and why.

A setting that cannot be honoured in a way that matters (an engine rcbackup
has no tool for, a file-name template with a placeholder it lacks, a storage
that is not a local folder and no ``REMOTE``) is a :class:`ConfigError`
naming the setting and what to do.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode


class ConfigError(Exception):
    """A Django setting the bridge cannot turn into rcbackup config."""


@dataclass
class Variable:
    """An environment variable the config names, and what it must hold."""

    name: str
    holds: str  # e.g. "the password of DATABASES['default']"
    example: str  # what to export, with the secret as a placeholder


@dataclass
class Generated:
    config: dict[str, Any]
    # Variable name -> value: passwords, or URLs holding one. Environment only.
    secrets: dict[str, str] = field(default_factory=dict)
    variables: list[Variable] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    # The backups' folder below the REMOTE the user set, when it is not
    # db_backup_dir: "" for backups at that folder's root (_backups_at_root).
    user_backup_dir: str | None = None
    # Why media commands are refused (backups at REMOTE's root, where the
    # media mirror cannot go below REMOTE beside them); None when allowed.
    media_refused: str | None = None

    @property
    def db_backup_dir(self) -> str:
        """DB_BACKUP_DIR as django-rclone puts it in paths (``<dir>/<name>``, below REMOTE)."""
        if self.user_backup_dir is not None:
            return self.user_backup_dir
        return str(self.config.get("db_backup_dir", "db")).strip("/")


# Django ENGINE -> rcbackup engine. The same engines django-rclone's default
# CONNECTOR_MAPPING knows, minus MongoDB (rcbackup has no MongoDB engine).
ENGINES: dict[str, str] = {
    "django.db.backends.postgresql": "postgresql",
    "django.db.backends.postgresql_psycopg2": "postgresql",
    "django.contrib.gis.db.backends.postgis": "postgis",
    "django.db.backends.mysql": "mysql",
    "django.contrib.gis.db.backends.mysql": "mysql",
    "django.db.backends.sqlite3": "sqlite",
    "django.contrib.gis.db.backends.spatialite": "sqlite",
    "django_prometheus.db.backends.postgresql": "postgresql",
    "django_prometheus.db.backends.postgis": "postgis",
    "django_prometheus.db.backends.mysql": "mysql",
    "django_prometheus.db.backends.sqlite3": "sqlite",
}

# django-rclone's and django-dbbackup's connector classes -> rcbackup engine,
# for CONNECTORS / CONNECTOR_MAPPING entries that name them.
CONNECTOR_CLASSES: dict[str, str] = {
    "django_rclone.db.postgresql.PgDumpConnector": "postgresql",
    "django_rclone.db.postgresql.PgDumpGisConnector": "postgis",
    "django_rclone.db.mysql.MysqlDumpConnector": "mysql",
    "django_rclone.db.sqlite.SqliteConnector": "sqlite",
    "dbbackup.db.postgresql.PgDumpConnector": "postgresql",
    "dbbackup.db.postgresql.PgDumpBinaryConnector": "postgresql",
    "dbbackup.db.postgresql.PgDumpGisConnector": "postgis",
    "dbbackup.db.mysql.MysqlDumpConnector": "mysql",
    "dbbackup.db.sqlite.SqliteConnector": "sqlite",
    "dbbackup.db.sqlite.SqliteCPConnector": "sqlite",
}

# DJANGO_RCLONE keys -> rcbackup keys (DESIGN principle 7: same names, lower case).
DJANGO_RCLONE_KEYS: dict[str, str] = {
    "REMOTE": "remote",
    "RCLONE_BINARY": "rclone_binary",
    "RCLONE_CONFIG": "rclone_config",
    "RCLONE_FLAGS": "rclone_flags",
    "DB_BACKUP_DIR": "db_backup_dir",
    "DB_FILENAME_TEMPLATE": "db_filename_template",
    "DB_DATE_FORMAT": "db_date_format",
    "DB_CLEANUP_KEEP": "db_cleanup_keep",
    "MEDIA_BACKUP_DIR": "media_backup_dir",
}

# libpq parameters (Django OPTIONS of a PostgreSQL database) that rcbackup
# takes in a URL's query string and hands to pg_dump/pg_restore.
PG_URL_PARAMS = frozenset(
    "sslmode sslrootcert sslcert sslkey sslcrl sslcrldir sslsni sslcompression "
    "ssl_min_protocol_version ssl_max_protocol_version requiressl gssencmode krbsrvname "
    "gsslib channel_binding requirepeer connect_timeout application_name options "
    "client_encoding target_session_attrs service passfile hostaddr".split()
)
# OPTIONS that configure Django's or psycopg's connection, not a dump.
PG_DJANGO_ONLY = frozenset(
    "isolation_level server_side_binding pool assume_role cursor_factory prepare_threshold context".split()
)
# mysqlclient OPTIONS -> the MariaDB client options rcbackup takes in a URL.
MYSQL_URL_PARAMS: dict[str, str] = {
    "charset": "charset",
    "unix_socket": "socket",
    "ssl_mode": "ssl-mode",
}
MYSQL_SSL_KEYS: dict[str, str] = {"ca": "ssl-ca", "capath": "ssl-capath", "cert": "ssl-cert", "key": "ssl-key", "cipher": "ssl-cipher"}
MYSQL_DJANGO_ONLY = frozenset("init_command sql_mode isolation_level autocommit use_unicode".split())

# DBBACKUP_* settings that have no rcbackup counterpart, and why.
DBBACKUP_NOT_MAPPED: dict[str, str] = {
    "DBBACKUP_GPG_RECIPIENT": "encrypt with an rclone crypt remote as REMOTE instead",
    "DBBACKUP_GPG_ALWAYS_TRUST": "encrypt with an rclone crypt remote as REMOTE instead",
    "DBBACKUP_CLEANUP_KEEP_MEDIA": "media backups are a mirror with version folders (media_versions_keep in RCBACKUP['CONFIG'])",
    "DBBACKUP_CLEANUP_KEEP_FILTER": "use a retention policy (RCBACKUP['CONFIG']['policies'])",
    "DBBACKUP_MEDIA_FILENAME_TEMPLATE": "media backups are a mirror, not archives with names",
    "DBBACKUP_CONNECTORS": "use dump_args/restore_args of the database in an rcbackup config",
    "DBBACKUP_CONNECTOR_MAPPING": "ENGINE is mapped directly",
    "DBBACKUP_SEND_EMAIL": "use --metrics-file and alerts (docs/monitoring.md)",
    "DBBACKUP_ADMIN": "use --metrics-file and alerts (docs/monitoring.md)",
    "DBBACKUP_SERVER_EMAIL": "use --metrics-file and alerts (docs/monitoring.md)",
    "DBBACKUP_EMAIL_SUBJECT_PREFIX": "use --metrics-file and alerts (docs/monitoring.md)",
    "DBBACKUP_TMP_DIR": "rcbackup streams and writes no temporary file",
    "DBBACKUP_TMP_FILE_MAX_SIZE": "rcbackup streams and writes no temporary file",
    "DBBACKUP_TMP_FILE_READ_SIZE": "rcbackup streams and writes no temporary file",
    "DBBACKUP_BACKUP_METADATA_SETTER": "every backup has an integrity record of its own",
    "DBBACKUP_RESTORE_METADATA_VALIDATOR": "use a restore approval policy (RCBACKUP['CONFIG']['policies'])",
}

# A shell line that reads a password on stdin (so not in the shell's history,
# and with no quoting to get right) and prints it percent-encoded for a URL.
ENCODE_PASSWORD = (
    "python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.stdin.readline().rstrip(\"\\n\"), safe=\"\"))'"
)

_ALIAS = re.compile(r"^[A-Za-z0-9_-]+$")
_FILESYSTEM_STORAGE = "django.core.files.storage.FileSystemStorage"


def generate(settings: Any, aliases: Iterable[str] | None = None, *, cwd: Path | None = None) -> Generated:
    """The rcbackup config for ``aliases`` (default: every database of
    ``DBBACKUP_DATABASES``, else of ``DATABASES``). Relative paths are made
    absolute against ``cwd`` (default: the working directory), as Django and
    rclone would read them, since rcbackup reads them relative to its config
    file's folder."""
    base = cwd or Path.cwd()
    gen = Generated(config={})
    rclone: Mapping[str, Any] = getattr(settings, "DJANGO_RCLONE", None) or {}
    if not isinstance(rclone, Mapping):
        raise ConfigError("DJANGO_RCLONE must be a dict, e.g. DJANGO_RCLONE = {'REMOTE': 's3:bucket/app'}")
    bridge: Mapping[str, Any] = getattr(settings, "RCBACKUP", None) or {}

    _top_level(settings, rclone, gen, base)
    databases: Mapping[str, Mapping[str, Any]] = getattr(settings, "DATABASES", {}) or {}
    if aliases is None:
        listed = getattr(settings, "DBBACKUP_DATABASES", None)
        aliases = list(databases.keys() if listed is None else listed)
    section: dict[str, Any] = {}
    seen_vars: dict[str, str] = {}
    for alias in aliases:
        if alias not in databases:
            raise ConfigError(f"Database '{alias}' is not configured in settings.DATABASES.")
        section[alias] = _database(alias, databases[alias], rclone, gen, base, seen_vars)
    if section:
        gen.config["databases"] = section

    extra = bridge.get("CONFIG") or {}
    if not isinstance(extra, Mapping):
        raise ConfigError("RCBACKUP['CONFIG'] must be a dict of rcbackup config keys, e.g. {'compression': 'zstd:6'}")
    for key, value in extra.items():
        if key == "databases":
            raise ConfigError(
                "RCBACKUP['CONFIG'] may not hold 'databases': they come from settings.DATABASES "
                "(use RCBACKUP['DATABASE_CONFIG'][alias] for dump_args, restore_args or compression)"
            )
        gen.config[key] = value
    per_db = bridge.get("DATABASE_CONFIG") or {}
    for alias, keys in per_db.items():
        if alias in section:
            for key in keys:
                if key in {"password_env", "url", "url_env"}:
                    raise ConfigError(
                        f"RCBACKUP['DATABASE_CONFIG']['{alias}'] may not set {key}: the bridge passes the "
                        "password of settings.DATABASES itself"
                    )
            section[alias].update(keys)
    return gen


def env_var(alias: str, kind: str) -> str:
    """The variable that holds the password (kind PASSWORD) or URL (kind URL) of ``alias``."""
    return f"RCBACKUP_DB_{kind}_{alias.upper().replace('-', '_')}"


def _top_level(settings: Any, rclone: Mapping[str, Any], gen: Generated, base: Path) -> None:
    cfg = gen.config
    for key, value in rclone.items():
        if key in DJANGO_RCLONE_KEYS:
            if value is not None and value != "":
                cfg[DJANGO_RCLONE_KEYS[key]] = value
        elif key in {"CONNECTORS", "CONNECTOR_MAPPING"}:
            pass  # read per database
        else:
            gen.warnings.append(f"DJANGO_RCLONE['{key}'] is not a django-rclone setting the bridge knows; ignored")

    _dbbackup_settings(settings, cfg, gen)

    at_root = isinstance(rclone.get("DB_BACKUP_DIR"), str) and not str(rclone["DB_BACKUP_DIR"]).strip("/")
    if "remote" not in cfg:
        location = _storage_location(settings)
        cfg["remote"] = _remote(location, base)
        if "db_backup_dir" in cfg:
            gen.warnings.append(
                f"DJANGO_RCLONE['REMOTE'] is not set: backups go below the folder of STORAGES['dbbackup'] ({location})"
            )
        elif not at_root:
            # django-dbbackup writes its files directly into the storage's folder.
            _backups_at_root(cfg, gen, f"STORAGES['dbbackup'] location ({location})", "django-dbbackup")
    else:
        if _storage_setting(settings) is not None:
            gen.warnings.append("STORAGES['dbbackup'] (django-dbbackup's storage) is ignored: DJANGO_RCLONE['REMOTE'] is set")
        cfg["remote"] = _remote(str(cfg["remote"]), base)
    if at_root:
        _backups_at_root(cfg, gen, "DJANGO_RCLONE['DB_BACKUP_DIR'] = ''", "django-rclone")

    if "rclone_config" in cfg:
        cfg["rclone_config"] = str(base / str(cfg["rclone_config"]))
    binary = cfg.get("rclone_binary")
    if isinstance(binary, str) and "/" in binary:
        cfg["rclone_binary"] = str(base / binary)
    flags = cfg.get("rclone_flags")
    if flags is not None and (not isinstance(flags, (list, tuple)) or not all(isinstance(f, str) for f in flags)):
        raise ConfigError("DJANGO_RCLONE['RCLONE_FLAGS'] must be a list of strings, e.g. ['--transfers', '4']")

    media_root = getattr(settings, media_root_setting(settings), "")
    if media_root and gen.media_refused is None:
        cfg["media_root"] = str(base / str(media_root))


def media_root_setting(settings: Any) -> str:
    """The setting media_root comes from: DBBACKUP_MEDIA_PATH wins, as in django-dbbackup."""
    return "DBBACKUP_MEDIA_PATH" if getattr(settings, "DBBACKUP_MEDIA_PATH", None) else "MEDIA_ROOT"


def _dbbackup_settings(settings: Any, cfg: dict[str, Any], gen: Generated) -> None:
    """The DBBACKUP_* settings that map; DJANGO_RCLONE's win."""
    keep = getattr(settings, "DBBACKUP_CLEANUP_KEEP", None)
    if keep is not None and "db_cleanup_keep" not in cfg:
        cfg["db_cleanup_keep"] = keep
    date_format = getattr(settings, "DBBACKUP_DATE_FORMAT", None)
    if date_format is not None and "db_date_format" not in cfg:
        cfg["db_date_format"] = date_format
    template = getattr(settings, "DBBACKUP_FILENAME_TEMPLATE", None)
    if template is not None and "db_filename_template" not in cfg:
        cfg["db_filename_template"] = translate_dbbackup_template(template)
    for name, why in DBBACKUP_NOT_MAPPED.items():
        if hasattr(settings, name):
            gen.warnings.append(f"{name} has no rcbackup counterpart and is ignored: {why}")


def translate_dbbackup_template(template: object) -> str:
    """django-dbbackup's DBBACKUP_FILENAME_TEMPLATE in rcbackup's placeholders."""
    if not isinstance(template, str):
        raise ConfigError(
            "DBBACKUP_FILENAME_TEMPLATE is a function; rcbackup takes a string. "
            "Set DJANGO_RCLONE['DB_FILENAME_TEMPLATE'] (placeholders {database}, {datetime}, {ext}) "
            "or use a naming policy"
        )
    if "{servername}" in template:
        raise ConfigError(
            "DBBACKUP_FILENAME_TEMPLATE uses {servername}, which rcbackup's names do not have. "
            "Set DJANGO_RCLONE['DB_FILENAME_TEMPLATE'] without it, e.g. '{database}-{datetime}.{ext}' "
            "(it wins over DBBACKUP_FILENAME_TEMPLATE)"
        )
    out = (
        template.replace("{databasename}", "{database}")
        .replace("{extension}", "{ext}")
        .replace("{content_type}", "db")
    )
    unknown = sorted(set(re.findall(r"\{([^{}]*)\}", out)) - {"database", "datetime", "ext"})
    if unknown:
        raise ConfigError(
            f"DBBACKUP_FILENAME_TEMPLATE uses {{{unknown[0]}}}, which rcbackup does not know; "
            "set DJANGO_RCLONE['DB_FILENAME_TEMPLATE'] with {database}, {datetime} and {ext}"
        )
    return out


def _storage_setting(settings: Any) -> tuple[str, Mapping[str, Any]] | None:
    storages = getattr(settings, "STORAGES", None) or {}
    if "dbbackup" in storages:
        s = storages["dbbackup"]
        return str(s.get("BACKEND", _FILESYSTEM_STORAGE)), s.get("OPTIONS", {}) or {}
    if hasattr(settings, "DBBACKUP_STORAGE"):
        return str(settings.DBBACKUP_STORAGE), getattr(settings, "DBBACKUP_STORAGE_OPTIONS", {}) or {}
    return None


def _storage_location(settings: Any) -> str:
    """The folder of a FileSystemStorage ``STORAGES['dbbackup']``, the remote when ``REMOTE`` is not set."""
    storage = _storage_setting(settings)
    if storage is None:
        raise ConfigError(
            "No remote: set DJANGO_RCLONE = {'REMOTE': 'myremote:backups'} (an rclone remote, "
            "defined with `rclone config`, or a local folder)"
        )
    backend, options = storage
    location = options.get("location")
    if backend == _FILESYSTEM_STORAGE and location:
        return str(location)
    raise ConfigError(
        f"STORAGES['dbbackup'] uses {backend}"
        + ("" if backend != _FILESYSTEM_STORAGE else " without OPTIONS['location']")
        + ", which the bridge cannot turn into an rclone remote. Define the storage as an rclone remote "
        "(`rclone config`; credentials live there) and set DJANGO_RCLONE = {'REMOTE': 'name:bucket/path'}"
    )


def split_remote(remote: str) -> tuple[str, str] | None:
    """``remote`` as (the folder above it, its last folder's name), both as
    rclone reads them: ``s3:b/app`` -> (``s3:b``, ``app``), ``s3:b`` ->
    (``s3:``, ``b``), ``/srv/backups`` -> (``/srv``, ``backups``); None for a
    remote's root (``s3:``, ``/``), which has no folder above it."""
    first_slash = remote.find("/")
    colon = remote.rfind(":", 0, first_slash if first_slash >= 0 else len(remote))
    prefix, path = remote[: colon + 1], remote[colon + 1 :]
    stripped = path.rstrip("/")
    if not stripped:
        return None
    if "/" not in stripped:  # the folder is directly below the remote's name
        return (prefix, stripped) if stripped not in {".", ".."} else None
    head, name = stripped.rsplit("/", 1)
    if name in {".", ".."}:
        return None
    return prefix + (head or "/"), name


def _backups_at_root(cfg: dict[str, Any], gen: Generated, setting: str, tool: str) -> None:
    """Backups that sit directly in the folder ``cfg['remote']`` (django-dbbackup's
    storage, django-rclone with an empty DB_BACKUP_DIR): rcbackup keeps them in a
    folder below its remote, never at its root, so the remote becomes the folder
    above and db_backup_dir that folder's name. The media mirror can go neither
    inside the backups' folder (rcbackup refuses the overlap; django-rclone kept
    it at REMOTE/media) nor outside the location the user configured (beside a
    bucket is another bucket): media commands are refused, naming what to set."""
    remote = str(cfg["remote"])
    parts = split_remote(remote)
    if parts is None:
        raise ConfigError(
            f"{setting}: {tool} kept the database backups at the root of {remote}, which rcbackup cannot do "
            "(they go in a folder below its remote). Move them into a folder (e.g. `rclone move` them into "
            f"{remote.rstrip('/')}/db) and set DJANGO_RCLONE = {{'REMOTE': {remote!r}, 'DB_BACKUP_DIR': 'db'}}"
        )
    media_dir = str(cfg.pop("media_backup_dir", "media")).strip("/") or "media"
    cfg["remote"], cfg["db_backup_dir"] = parts
    gen.user_backup_dir = ""
    inside = f"{remote.rstrip('/')}/db"
    gen.media_refused = (
        f"{setting}: the database backups are kept directly in {remote}, and the media backup would go in "
        f"{remote.rstrip('/')}/{media_dir} (where django-rclone keeps it), inside the backups' folder, which "
        "rcbackup cannot do (the media mirror may not overlap the database backups), and it never puts media "
        f"outside {remote}. To back up media, move the database backups into a folder (e.g. {inside}) and set "
        f"DJANGO_RCLONE = {{'REMOTE': {remote!r}, 'DB_BACKUP_DIR': 'db'}}: the media backup then goes in "
        f"{remote.rstrip('/')}/{media_dir}"
    )
    gen.warnings.append(
        f"{setting}: {tool} keeps the database backups directly in {remote}; rcbackup keeps them in a folder "
        f"below its remote, so remote = {parts[0]!r} and db_backup_dir = {parts[1]!r} (the same files). "
        "mediabackup, mediarestore and listbackups --media are refused in this layout (media_root is left out)"
    )


def _remote(remote: str, base: Path) -> str:
    """A local-path remote made absolute (rcbackup reads a relative one
    against its config file's folder; Django users mean the working directory)."""
    if not remote:
        raise ConfigError("DJANGO_RCLONE['REMOTE'] is empty; set it, e.g. 's3:bucket/app'")
    head = remote.split(":", 1)[0]
    is_path = ":" not in remote or "/" in head
    if is_path and not remote.startswith("/"):
        return str(base / remote)
    return remote


def _engine(alias: str, db: Mapping[str, Any], rclone: Mapping[str, Any]) -> str:
    engine = str(db.get("ENGINE", ""))
    connector = (rclone.get("CONNECTORS") or {}).get(alias) or (rclone.get("CONNECTOR_MAPPING") or {}).get(engine)
    if connector:
        if connector in CONNECTOR_CLASSES:
            return CONNECTOR_CLASSES[connector]
        raise ConfigError(
            f"DJANGO_RCLONE connector {connector} for database '{alias}' is a custom class; rcbackup runs its own "
            "dump and restore tools (engines postgresql, postgis, mysql, sqlite). Remove the entry, and use "
            f"RCBACKUP['DATABASE_CONFIG']['{alias}'] = {{'dump_args': [...], 'restore_args': [...]}} for extra options"
        )
    if engine in ENGINES:
        return ENGINES[engine]
    if "mongo" in engine or engine == "djongo":
        raise ConfigError(f"DATABASES['{alias}'] uses {engine}: rcbackup has no MongoDB engine")
    raise ConfigError(
        f"DATABASES['{alias}']['ENGINE'] is {engine!r}, which rcbackup cannot back up "
        "(it knows PostgreSQL, PostGIS, MySQL/MariaDB and SQLite). Leave the database out with "
        "DBBACKUP_DATABASES = [...] or pass -d with another alias"
    )


def _database(
    alias: str,
    db: Mapping[str, Any],
    rclone: Mapping[str, Any],
    gen: Generated,
    base: Path,
    seen_vars: dict[str, str],
) -> dict[str, Any]:
    if not _ALIAS.match(alias):
        raise ConfigError(
            f"Database alias {alias!r} cannot be an rcbackup database (letters, digits, '_' and '-' only); "
            "rename it, or leave it out with DBBACKUP_DATABASES"
        )
    engine = _engine(alias, db, rclone)
    name = str(db.get("NAME") or "")
    if not name:
        raise ConfigError(f"DATABASES['{alias}']['NAME'] is empty")
    if engine == "sqlite":
        if name == ":memory:" or name.startswith("file:"):
            raise ConfigError(f"DATABASES['{alias}']['NAME'] is {name!r}: rcbackup backs up SQLite files by path")
        for key, value in (db.get("OPTIONS") or {}).items():
            gen.warnings.append(f"DATABASES['{alias}']['OPTIONS']['{key}'] does not concern a dump; ignored")
        return {"engine": "sqlite", "name": str(base / name)}

    host = str(db.get("HOST") or "")
    port = str(db.get("PORT") or "")
    user = str(db.get("USER") or "")
    password = str(db.get("PASSWORD") or "")
    query = _url_query(alias, engine, db.get("OPTIONS") or {}, gen)
    if host.startswith("/") and engine != "mysql":
        # A socket folder: libpq's host, which rcbackup takes as ?host=.
        query.append(("host", host))
        host = ""
    elif host.startswith("/"):
        query.append(("socket", host))
        host = ""
    if port and not port.isdigit():
        raise ConfigError(f"DATABASES['{alias}']['PORT'] is {port!r}, not a number")

    if not query:
        section: dict[str, Any] = {"engine": engine, "name": name}
        if host:
            section["host"] = host
        if port:
            section["port"] = int(port)
        if user:
            section["user"] = user
        if password:
            var = _claim(env_var(alias, "PASSWORD"), alias, seen_vars)
            section["password_env"] = var
            gen.secrets[var] = password
            gen.variables.append(Variable(var, f"the password of DATABASES['{alias}']", f"export {var}='<password>'"))
        return section

    # OPTIONS that reach the tools: the database as a URL in a variable.
    scheme = {"postgresql": "postgres", "postgis": "postgis", "mysql": "mysql"}[engine]
    var = _claim(env_var(alias, "URL"), alias, seen_vars)

    def url(secret: str) -> str:
        auth = quote(user, safe="") + (":" + secret if password else "") + "@" if user or password else ""
        where = (f"[{host}]" if ":" in host else host) + (f":{port}" if port else "")
        return f"{scheme}://{auth}{where}/{quote(name, safe='')}?{urlencode(query, safe='/')}"

    gen.secrets[var] = url(quote(password, safe=""))
    holds = f"the URL of DATABASES['{alias}'] with its OPTIONS"
    if password:
        holds += f"; <password> percent-encoded (`{ENCODE_PASSWORD}` prints it)"
    gen.variables.append(Variable(var, holds, f"export {var}='{url('<password>')}'"))
    return {"url_env": var}


def _claim(var: str, alias: str, seen: dict[str, str]) -> str:
    if var in seen and seen[var] != alias:
        raise ConfigError(
            f"Database aliases '{seen[var]}' and '{alias}' would share the variable {var}; rename one of them"
        )
    seen[var] = alias
    return var


def _url_query(alias: str, engine: str, options: Mapping[str, Any], gen: Generated) -> list[tuple[str, str]]:
    query: list[tuple[str, str]] = []
    where = f"DATABASES['{alias}']['OPTIONS']"
    for key, value in options.items():
        if engine in {"postgresql", "postgis"}:
            if key in PG_URL_PARAMS:
                query.append((key, str(value)))
            elif key in PG_DJANGO_ONLY:
                gen.warnings.append(f"{where}['{key}'] configures Django's connection, not a dump; ignored")
            else:
                gen.warnings.append(f"{where}['{key}'] is not passed to pg_dump/pg_restore (rcbackup does not take it)")
        elif key in MYSQL_URL_PARAMS:
            query.append((MYSQL_URL_PARAMS[key], str(value)))
        elif key == "ssl" and isinstance(value, Mapping):
            for k, v in value.items():
                if k in MYSQL_SSL_KEYS:
                    query.append((MYSQL_SSL_KEYS[k], str(v)))
                else:
                    gen.warnings.append(f"{where}['ssl']['{k}'] is not passed to mariadb-dump; ignored")
        elif key in MYSQL_DJANGO_ONLY:
            gen.warnings.append(f"{where}['{key}'] configures Django's connection, not a dump; ignored")
        else:
            gen.warnings.append(f"{where}['{key}'] is not passed to mariadb-dump/mariadb (rcbackup does not take it)")
    return query


def process_env(gen: Generated, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of the rcbackup process: ours, with the secrets added
    (they reach rcbackup only this way) and RCBACKUP_CONFIG removed (the
    bridge passes --config)."""
    env = dict(os.environ if base is None else base)
    env.pop("RCBACKUP_CONFIG", None)
    env.update(gen.secrets)
    return env
