"""The nightly backup: one backup of the configured database, then rotation to the
setting `backup_keep` (default 14). Scheduled in app/jobs/schedule.py; runs in the
app context the worker gives every job. It writes no row, so nothing is versioned
and no acting user is needed."""
from __future__ import annotations

import logging

from app.extensions import db
from app.services.backup import create_backup, keep_setting, rotate_backups

log = logging.getLogger(__name__)


def nightly_backup() -> str:
    """Back up, keep the newest `backup_keep` backups; returns the new file's name."""
    keep = keep_setting(db.session)
    db.session.rollback()  # no transaction of this session stays open during the backup
    path = create_backup()
    removed = rotate_backups(keep, path.parent, current=path)
    log.info("backup %s written to %s (%d bytes), %d old backups removed, keeping %d",
             path.name, path.parent, path.stat().st_size, len(removed), keep)
    return path.name

