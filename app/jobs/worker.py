"""RQ workers that run every job inside an app context of their own (redash's pattern:
the worker is started from the Flask CLI, `flask worker`, so jobs see the app's config
and database). A forked work horse drops the database connections it inherited."""
from __future__ import annotations

from collections.abc import Sequence

from flask import Flask
from rq import Queue, SimpleWorker, Worker

from app.jobs.queue import QUEUES


class AppContextMixin:
    flask_app: Flask | None = None

    def perform_job(self, job, queue, execution):
        from app.extensions import db

        if self.flask_app is None:
            from app import create_app

            type(self).flask_app = create_app()
        with self.flask_app.app_context():
            if getattr(self, "_is_horse", False):
                db.engine.dispose(close=False)  # the parent's pooled connections are not ours
            try:
                return super().perform_job(job, queue, execution)
            finally:
                db.session.remove()


class AppWorker(AppContextMixin, Worker):
    """Forks a work horse per job (a job that crashes or hangs does not take the worker along)."""


class AppSimpleWorker(AppContextMixin, SimpleWorker):
    """Runs jobs in its own process (tests, benchmarks)."""


def make_worker(flask_app: Flask, queues: Sequence[str] = QUEUES, *, simple: bool = False,
                name: str | None = None) -> Worker:
    from app.jobs.queue import redis_connection

    with flask_app.app_context():
        connection = redis_connection()
    if connection is None:
        raise RuntimeError("REDIS_URL is not configured: no worker needed, jobs run inline")
    cls = AppSimpleWorker if simple else AppWorker
    worker_cls = type(cls.__name__, (cls,), {"flask_app": flask_app})
    return worker_cls([Queue(name_, connection=connection) for name_ in queues], connection=connection,
                      name=name)
