"""rcbackup_django: django-rclone's management commands and signals, run by rcbackup.

Add ``"rcbackup_django"`` to INSTALLED_APPS; see README.md.
"""

__version__ = "0.1.0"
