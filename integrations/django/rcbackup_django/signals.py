"""The signals django-rclone sends, sent by the bridge at the same moments.

When django-rclone is installed, these ARE its signal objects
(``django_rclone.signals.pre_db_backup is rcbackup_django.signals.pre_db_backup``),
so receivers connected with ``from django_rclone.signals import ...`` keep
working unchanged. Without django-rclone they are the bridge's own signals of
the same names and arguments: change such imports to
``from rcbackup_django.signals import ...``. The bridge never defines a module
called ``django_rclone``: it would shadow the real package.

Arguments (``sender`` is the bridge's management command class, as django-rclone
sends its own command class):

- ``pre_db_backup(database)``; ``post_db_backup(database, path)``
- ``pre_db_restore(database, path)``; ``post_db_restore(database)``
- ``pre_media_backup()``, ``post_media_backup()``, ``pre_media_restore()``,
  ``post_media_restore()``

``database`` is the alias in ``settings.DATABASES``; ``path`` is the backup's
path below the remote, ``<DB_BACKUP_DIR>/<name>`` (``db/default-...dump.zst``).
"""

from __future__ import annotations

from django.dispatch import Signal

try:
    from django_rclone import signals as _django_rclone
except ImportError:  # django-rclone not installed: the bridge's own signals.
    _django_rclone = None

if _django_rclone is not None:
    pre_db_backup: Signal = _django_rclone.pre_db_backup
    post_db_backup: Signal = _django_rclone.post_db_backup
    pre_db_restore: Signal = _django_rclone.pre_db_restore
    post_db_restore: Signal = _django_rclone.post_db_restore
    pre_media_backup: Signal = _django_rclone.pre_media_backup
    post_media_backup: Signal = _django_rclone.post_media_backup
    pre_media_restore: Signal = _django_rclone.pre_media_restore
    post_media_restore: Signal = _django_rclone.post_media_restore
else:
    pre_db_backup = Signal()
    post_db_backup = Signal()
    pre_db_restore = Signal()
    post_db_restore = Signal()
    pre_media_backup = Signal()
    post_media_backup = Signal()
    pre_media_restore = Signal()
    post_media_restore = Signal()

__all__ = [
    "pre_db_backup",
    "post_db_backup",
    "pre_db_restore",
    "post_db_restore",
    "pre_media_backup",
    "post_media_backup",
    "pre_media_restore",
    "post_media_restore",
]
