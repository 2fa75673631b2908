"""The periodic jobs, declared as data, and the one `rq cron` process that enqueues them.

RQ's CronScheduler has no leader lock: two cron processes would enqueue every job
twice. `GuardedCron` enqueues only while it holds a Redis lock (a second process
waits as a stand-by and takes over when the first stops renewing), and gives every
run a job id made of the job's name and its due time, enqueued with `unique=True`:
even two leaders at once cannot enqueue one run twice. Cron strings are read in the
business time zone (config TIMEZONE). Without Redis, `start_inline_cron` runs the same
schedule in a background thread of the web process.
"""
from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone

from flask import Flask
from redis.exceptions import LockError
from rq import Queue
from rq.cron import CronJob, CronScheduler
from rq.exceptions import DuplicateJobError
from rq.utils import import_attribute

from app.jobs.queue import FAILED_JOB_TTL, retry_policy, run_job

log = logging.getLogger(__name__)
LEADER_KEY = "terminbuch:cron:leader"
LEADER_TTL = 90  # seconds; renewed on every pass (at most 60 s apart)


@dataclass(frozen=True)
class Periodic:
    func: str
    queue: str
    cron: str | None = None
    interval: int | None = None
    args: tuple = field(default_factory=tuple)

    @property
    def name(self) -> str:
        return self.func.rsplit(".", 1)[-1]


def schedule(config) -> list[Periodic]:
    return [
        Periodic("app.jobs.reminders.dispatch_reminders", "notifications",
                 interval=int(config.get("REMINDER_DISPATCH_SECONDS", 300))),
        Periodic("app.jobs.reminders.queue_card_renewals_job", "notifications", cron="0 9 * * *"),
        Periodic("app.jobs.exports.nightly_export", "exports", cron="30 2 * * *"),
        Periodic("app.jobs.backups.nightly_backup", "default", cron="0 3 * * *"),
        # customers still without an exact position (an unreachable geocoder, an "ungefähr" one)
        Periodic("app.jobs.geocoding.geocode_missing", "default", cron="0 4 * * *", args=(False,)),
    ]


def use_business_time_zone(config) -> None:
    """Cron strings match the process's local time: make that the business's."""
    os.environ["TZ"] = config.get("TIMEZONE", "Europe/Berlin")
    time.tzset()


def _cron_job(item: Periodic) -> CronJob:
    return CronJob(queue_name=item.queue, func=import_attribute(item.func), args=item.args,
                   cron=item.cron, interval=item.interval, name=item.name, failure_ttl=FAILED_JOB_TTL)


def run_id(cron_job: CronJob, now: datetime) -> str:
    """One id per due run: the due time for cron strings, the interval's slot otherwise."""
    if cron_job.cron and cron_job.next_enqueue_time is not None:
        due = int(cron_job.next_enqueue_time.timestamp())
    else:
        due = int(now.timestamp()) // cron_job.interval * cron_job.interval
    return f"cron-{cron_job.name}-{due}"


class GuardedCron(CronScheduler):
    """RQ's CronScheduler (it registers and heartbeats, so the job monitor sees it) that
    enqueues only as the leader, each run once."""

    def __init__(self, connection, flask_app: Flask, items: list[Periodic] | None = None, **kwargs) -> None:
        super().__init__(connection, **kwargs)
        self.flask_app = flask_app
        self.lock = connection.lock(LEADER_KEY, timeout=LEADER_TTL, thread_local=False)
        self.leader = False
        for item in items if items is not None else schedule(flask_app.config):
            self._cron_jobs.append(_cron_job(item))

    def hold_leadership(self) -> bool:
        try:
            if self.leader:
                self.lock.reacquire()
            else:
                self.leader = bool(self.lock.acquire(blocking=False))
                if self.leader:
                    self.log.info("cron %s: leader, enqueueing the schedule", self.name)
        except LockError:
            self.log.warning("cron %s: lost the leader lock", self.name)
            self.leader = False
        return self.leader

    def enqueue_jobs(self) -> list[CronJob]:
        if not self.hold_leadership():
            return []
        current = datetime.now(timezone.utc)
        enqueued = []
        for cron_job in self._cron_jobs:
            if not cron_job.should_run():
                continue
            queue = Queue(cron_job.queue_name, connection=self.connection)
            with self.flask_app.app_context():
                retry = retry_policy(cron_job.queue_name)
            try:
                queue.enqueue(cron_job.func, args=cron_job.args, job_id=run_id(cron_job, current), unique=True,
                              retry=retry, **cron_job.job_options)
                enqueued.append(cron_job)
            except DuplicateJobError:
                self.log.info("cron %s: %s already enqueued", self.name, cron_job.name)
            cron_job.set_enqueue_time(current)
        return enqueued

    def register_death(self, pipeline=None) -> None:
        if self.leader:
            try:
                self.lock.release()
            except LockError:
                pass
            self.leader = False
        super().register_death(pipeline)


# --- without Redis -----------------------------------------------------------------------
def start_inline_cron(flask_app: Flask, stop: threading.Event | None = None) -> threading.Thread:
    """Run the schedule in a daemon thread of this process (no Redis, no worker)."""
    cron_jobs = [_cron_job(item) for item in schedule(flask_app.config)]
    stop = stop or threading.Event()

    def loop() -> None:
        while not stop.is_set():
            for cron_job in cron_jobs:
                if cron_job.should_run():
                    cron_job.set_enqueue_time(datetime.now(timezone.utc))
                    try:
                        run_job(flask_app, cron_job.func_name, cron_job.args)
                    except Exception:
                        log.exception("scheduled job %s failed", cron_job.func_name)
            stop.wait(min(60.0, max(1.0, _seconds_to_next(cron_jobs))))

    thread = threading.Thread(target=loop, name="terminbuch-inline-cron", daemon=True)
    thread.start()
    return thread


def _seconds_to_next(cron_jobs: list[CronJob]) -> float:
    upcoming = [job.next_enqueue_time for job in cron_jobs if job.next_enqueue_time]
    if not upcoming:
        return 60.0
    return (min(upcoming) - datetime.now(timezone.utc)).total_seconds()
