"""The one way code puts work on the RQ queue.

Jobs are enqueued only once the transaction that asked for them has committed
(a worker must never pick up a job for a row that is not stored, nor run a job
whose request was rolled back). With `REDIS_URL` configured they go to RQ (queues
`QUEUES`, retried with back-off where `RETRY_QUEUES` says so, failures kept in RQ's
failed registry for the job monitor). Without Redis (the embedded SQLite setup)
they run inline in the web process: in one background thread (`INLINE_JOBS =
"thread"`, the default) or at once after the commit (`"sync"`, the tests).
"""
from __future__ import annotations

import logging
import queue as stdlib_queue
import threading
from collections.abc import Iterable
from typing import Any

from flask import Flask, current_app, has_app_context
from rq import Retry
from rq.utils import import_attribute
from sqlalchemy import event
from sqlalchemy.orm import Session, scoped_session

log = logging.getLogger(__name__)
PENDING_KEY = "terminbuch_pending_jobs"
QUEUES = ("default", "notifications", "exports", "geocoding")
# Transient failures (a mail server or gateway away, a geocoder timing out) are retried.
RETRY_QUEUES = {"notifications", "geocoding"}
DEFAULT_RETRY_INTERVALS = (30, 120, 600)
# At most this many jobs of a queue run at once, over all workers (RQ's RateLimit): the geocoder
# is asked by one job at a time (Nominatim's policy: at most one request per second).
CONCURRENCY = {"geocoding": ("geocoder", 1)}
FAILED_JOB_TTL = 7 * 24 * 3600  # failed jobs stay a week in the job monitor


_clients: dict[str, Any] = {}


def redis_connection():
    """A Redis client for `REDIS_URL` (one per URL and process: its connection pool is
    reused, not a new TCP connection per job), or None when none is configured."""
    url = current_app.config.get("REDIS_URL") if has_app_context() else None
    if not url:
        return None
    client = _clients.get(url)
    if client is None:
        from redis import Redis

        client = _clients[url] = Redis.from_url(url, socket_timeout=10)
    return client


def retry_policy(queue: str) -> Retry | None:
    """Retry with back-off (config JOB_RETRY_INTERVALS, seconds) for the queues of RETRY_QUEUES."""
    if queue not in RETRY_QUEUES:
        return None
    intervals: Iterable[int] = current_app.config.get("JOB_RETRY_INTERVALS") or DEFAULT_RETRY_INTERVALS
    intervals = [int(value) for value in intervals]
    return Retry(max=len(intervals), interval=intervals)


def enqueue_now(func: str, *args: Any, queue: str = "default", job_id: str | None = None,
                meta: dict | None = None):
    """Enqueue `func` (dotted path) on RQ and return the job; without Redis run it inline
    (see the module text) and return None."""
    connection = redis_connection()
    if connection is None:
        run_inline(func, args)
        return None
    from rq import Queue, RateLimit

    limit = CONCURRENCY.get(queue)
    return Queue(queue, connection=connection).enqueue(
        func, args=args, job_id=job_id, meta=meta, retry=retry_policy(queue), failure_ttl=FAILED_JOB_TTL,
        rate_limit=RateLimit(*limit) if limit else None,
    )


def enqueue_after_commit(session: Session, func: str, *args: Any, queue: str = "default",
                         job_id: str | None = None, meta: dict | None = None) -> None:
    """Enqueue `func(*args)` when `session` commits; dropped on rollback."""
    if isinstance(session, scoped_session):
        session = session()
    if not session.in_transaction():
        session.begin()  # the job belongs to a transaction: its rollback must drop it
    session.info.setdefault(PENDING_KEY, []).append((func, args, queue, job_id, meta))


@event.listens_for(Session, "after_commit")
def _enqueue_pending(session: Session) -> None:
    pending = session.info.pop(PENDING_KEY, [])
    for func, args, queue, job_id, meta in pending:
        try:
            enqueue_now(func, *args, queue=queue, job_id=job_id, meta=meta)
        except Exception:  # the commit stands; the database row says what is still to do
            log.exception("could not enqueue %s%r", func, args)


@event.listens_for(Session, "after_soft_rollback")
def _drop_pending(session: Session, previous_transaction) -> None:
    if previous_transaction.parent is None:  # the outermost transaction, not a savepoint
        session.info.pop(PENDING_KEY, None)


# --- without Redis: inline --------------------------------------------------------------
_inline_queue: stdlib_queue.Queue = stdlib_queue.Queue()
_inline_thread: threading.Thread | None = None
_inline_lock = threading.Lock()


def run_job(flask_app: Flask, func: str, args: tuple) -> Any:
    """Run one job in an app context (and so a database session) of its own."""
    from app.extensions import db

    with flask_app.app_context():
        try:
            return import_attribute(func)(*args)
        finally:
            db.session.remove()


def run_inline(func: str, args: tuple) -> None:
    """Run a job without Redis. Called after a commit: the job gets its own app context
    (its own session), never the committing one, which may not run SQL any more."""
    flask_app = current_app._get_current_object()
    if flask_app.config.get("INLINE_JOBS", "thread") == "sync":
        try:
            run_job(flask_app, func, args)
        except Exception:  # as a worker would: logged, the request goes on
            log.exception("inline job %s%r failed", func, args)
        return
    _start_inline_thread()
    _inline_queue.put((flask_app, func, args))


def _start_inline_thread() -> None:
    global _inline_thread
    with _inline_lock:
        if _inline_thread is not None and _inline_thread.is_alive():
            return
        _inline_thread = threading.Thread(target=_inline_loop, name="terminbuch-inline-jobs", daemon=True)
        _inline_thread.start()


def _inline_loop() -> None:
    while True:
        flask_app, func, args = _inline_queue.get()
        try:
            run_job(flask_app, func, args)
        except Exception:
            log.exception("inline job %s%r failed", func, args)
        finally:
            _inline_queue.task_done()


def wait_for_inline_jobs() -> None:
    """Block until the inline thread has run everything handed to it (tests, shutdown)."""
    _inline_queue.join()
