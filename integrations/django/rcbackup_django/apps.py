from __future__ import annotations

from typing import Any

from django.apps import AppConfig
from django.conf import settings
from django.core import checks


class RcbackupDjangoConfig(AppConfig):
    name = "rcbackup_django"
    verbose_name = "rcbackup bridge"

    def ready(self) -> None:
        checks.register(check_shadowing_apps)


SHADOWING = {"django_rclone": "django-rclone", "dbbackup": "django-dbbackup"}


def check_shadowing_apps(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """django-rclone and django-dbbackup define the same command names; Django
    runs the command of the app listed first in INSTALLED_APPS."""
    found = []
    for app, package in SHADOWING.items():
        if app in settings.INSTALLED_APPS:
            found.append(
                checks.Warning(
                    f"'{app}' ({package}) is in INSTALLED_APPS beside 'rcbackup_django': both define dbbackup, "
                    "dbrestore, listbackups, mediabackup and mediarestore, and Django runs those of the app listed first.",
                    hint=f"Remove '{app}' from INSTALLED_APPS. The package may stay installed: receivers importing "
                    "django_rclone.signals keep working with the bridge.",
                    id="rcbackup_django.W001",
                )
            )
    return found
