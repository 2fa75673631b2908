"""The one way code puts work on the RQ queue.

Jobs are enqueued only once the transaction that asked for them has committed
(a worker must never pick up a job for a row that is not stored, nor run a job
whose request was rolled back). Without a configured Redis (`REDIS_URL` unset:
the embedded SQLite setup of `make run`) nothing is enqueued; what a job would
do stays recorded in the database (e.g. a NotificationLog row "queued").
"""
from __future__ import annotations

import logging
from typing import Any

from flask import current_app, has_app_context
from sqlalchemy import event
from sqlalchemy.orm import Session, scoped_session

log = logging.getLogger(__name__)
PENDING_KEY = "terminbuch_pending_jobs"


def redis_connection():
    """A Redis client for `REDIS_URL`, or None when none is configured."""
    url = current_app.config.get("REDIS_URL") if has_app_context() else None
    if not url:
        return None
    from redis import Redis

    return Redis.from_url(url)


def enqueue_now(func: str, *args: Any, queue: str = "default"):
    """Enqueue `func` (dotted path) at once; returns the RQ job or None without Redis."""
    connection = redis_connection()
    if connection is None:
        log.info("no REDIS_URL: %s%r not enqueued", func, args)
        return None
    from rq import Queue

    return Queue(queue, connection=connection).enqueue(func, *args)


def enqueue_after_commit(session: Session, func: str, *args: Any, queue: str = "default") -> None:
    """Enqueue `func(*args)` when `session` commits; dropped on rollback."""
    if isinstance(session, scoped_session):
        session = session()
    if not session.in_transaction():
        session.begin()  # the job belongs to a transaction: its rollback must drop it
    session.info.setdefault(PENDING_KEY, []).append((func, args, queue))


@event.listens_for(Session, "after_commit")
def _enqueue_pending(session: Session) -> None:
    pending = session.info.pop(PENDING_KEY, [])
    for func, args, queue in pending:
        try:
            enqueue_now(func, *args, queue=queue)
        except Exception:  # the commit stands; the database row says what is still to do
            log.exception("could not enqueue %s%r", func, args)


@event.listens_for(Session, "after_soft_rollback")
def _drop_pending(session: Session, previous_transaction) -> None:
    if previous_transaction.parent is None:  # the outermost transaction, not a savepoint
        session.info.pop(PENDING_KEY, None)
