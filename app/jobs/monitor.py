"""What the job monitor ("Aufträge") reads from RQ's own registries in Redis — queues and
their counts, workers, the `rq cron` schedulers with their cron jobs, running, failed and
scheduled jobs — and the three things it may change: retry a failed job, retry every
failed job of a queue, delete a failed job.

Reading runs none of RQ's registry cleanups: the started registry's cleanup runs the
failure callbacks of abandoned jobs, which belongs in a worker, not in a page view. A
job's arguments may carry a message body: the monitor shows at most `ARGS_SHOWN`
characters of them.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime, timezone

from rq import Queue, Worker
from rq.cron import CronScheduler
from rq.defaults import DEFAULT_CRON_SCHEDULER_TTL
from rq.exceptions import InvalidJobOperation, NoSuchJobError
from rq.job import JOB_ID_PATTERN, Job, JobStatus
from rq.registry import (
    DeferredJobRegistry,
    FailedJobRegistry,
    ScheduledJobRegistry,
    StartedJobRegistry,
)

from app.jobs.queue import CONCURRENCY, QUEUES

ARGS_SHOWN = 80  # characters of a job's arguments (they may carry a message body)
JOBS_SHOWN = 50  # jobs per queue and list
TRACEBACK_SHOWN = 8000  # characters of a traceback (its end: where it failed)
MAX_JOB_ID = 128


def shorten(text: str, limit: int = ARGS_SHOWN) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def valid_job_id(value: str) -> bool:
    return 0 < len(value) <= MAX_JOB_ID and JOB_ID_PATTERN.fullmatch(value) is not None


def _aware(value: datetime | None) -> datetime | None:
    """RQ's datetimes are UTC; a never-computed "next run" is datetime.max (not shown)."""
    if value is None or value.year >= 9999:
        return None
    return value if value.tzinfo is not None else value.replace(tzinfo=timezone.utc)


def _age(value: datetime | None, now: datetime) -> float | None:
    return (now - value).total_seconds() if value is not None else None


# --- what the page shows ---------------------------------------------------------------
@dataclass
class QueueCounts:
    name: str
    queued: int
    started: int
    failed: int
    scheduled: int
    deferred: int


@dataclass
class JobInfo:
    id: str
    queue: str
    func: str
    args: str
    enqueued_at: datetime | None
    ended_at: datetime | None
    scheduled_for: datetime | None = None
    traceback: str = ""

    @property
    def error(self) -> str:
        """The traceback's last line (the exception), for the summary."""
        lines = [line for line in self.traceback.strip().splitlines() if line.strip()]
        return lines[-1] if lines else ""


@dataclass
class WorkerInfo:
    name: str
    queues: list[str]
    state: str
    last_heartbeat: datetime | None
    heartbeat_age: float | None
    alive: bool
    current_job_id: str | None
    current_func: str | None


@dataclass
class CronJobInfo:
    name: str
    func: str
    queue: str
    cron: str | None
    interval: int | None
    next_run: datetime | None
    last_run: datetime | None


@dataclass
class SchedulerInfo:
    name: str
    hostname: str
    pid: int
    last_heartbeat: datetime | None
    heartbeat_age: float | None
    alive: bool
    jobs: list[CronJobInfo] = field(default_factory=list)


@dataclass
class Overview:
    queues: list[QueueCounts]
    workers: list[WorkerInfo]
    schedulers: list[SchedulerInfo]
    started: list[JobInfo]
    failed: list[JobInfo]
    scheduled: list[JobInfo]

    @property
    def workers_alive(self) -> int:
        return sum(1 for worker in self.workers if worker.alive)

    @property
    def cron_alive(self) -> bool:
        return any(scheduler.alive for scheduler in self.schedulers)

    @property
    def failed_by_queue(self) -> dict[str, int]:
        return {counts.name: counts.failed for counts in self.queues}


# --- reading -------------------------------------------------------------------------------
def _failed_count(registry: FailedJobRegistry) -> int:
    """Entries not expired yet (score = expiry time; a negative score never expires)."""
    connection = registry.connection
    return connection.zcard(registry.key) - connection.zcount(registry.key, 0, time.time())


def _rate_limited(connection, name: str) -> int:
    """Jobs RQ's RateLimit holds back for this queue (app/jobs/queue.py CONCURRENCY): they
    wait too, in rq:rl:<key>:rate_limited rather than in the queue."""
    limit = CONCURRENCY.get(name)
    return connection.zcard(f"rq:rl:{limit[0]}:rate_limited") if limit else 0


def queue_counts(connection, name: str) -> QueueCounts:
    queue = Queue(name, connection=connection)
    return QueueCounts(
        name=name,
        queued=queue.count + _rate_limited(connection, name),
        started=StartedJobRegistry(queue=queue).get_job_count(cleanup=False),
        failed=_failed_count(FailedJobRegistry(queue=queue)),
        scheduled=ScheduledJobRegistry(queue=queue).get_job_count(cleanup=False),
        deferred=DeferredJobRegistry(queue=queue).get_job_count(cleanup=False),
    )


def _func_name(job: Job) -> str:
    try:
        return job.func_name or "?"
    except Exception:  # a job whose data this process cannot unpickle
        return "?"


def call_args(job: Job, limit: int = ARGS_SHOWN) -> str:
    """The job's arguments as in a call, at most `limit` characters."""
    try:
        parts = [repr(arg)[: limit + 1] for arg in job.args]
        parts += [f"{key}={value!r}"[: limit + 1] for key, value in sorted(job.kwargs.items())]
    except Exception:
        return "?"
    return shorten(", ".join(parts), limit)


def traceback_of(job: Job) -> str:
    """The traceback of the job's last failure: RQ 3 keeps it in the job's results."""
    try:
        latest = job.latest_result()
        text = latest.exc_string if latest is not None else None
        if not text:
            text = next((result.exc_string for result in job.results() if result.exc_string), None)
    except Exception:
        text = None
    text = text or job._exc_info or ""  # older jobs: the exc_info field of the job hash
    return text if len(text) <= TRACEBACK_SHOWN else "…" + text[-TRACEBACK_SHOWN:]


def job_info(job: Job, *, with_traceback: bool = False, scheduled_for: datetime | None = None) -> JobInfo:
    return JobInfo(
        id=job.id, queue=job.origin, func=_func_name(job), args=call_args(job),
        enqueued_at=_aware(job.enqueued_at), ended_at=_aware(job.ended_at), scheduled_for=scheduled_for,
        traceback=traceback_of(job) if with_traceback else "",
    )


def _fetch(connection, job_ids: list[str]) -> list[Job]:
    return [job for job in Job.fetch_many(job_ids, connection=connection) if job is not None]


def started_jobs(connection, name: str) -> list[JobInfo]:
    registry = StartedJobRegistry(name, connection=connection)
    ids = registry.get_job_ids(0, JOBS_SHOWN - 1, cleanup=False)
    return [job_info(job) for job in _fetch(connection, list(dict.fromkeys(ids)))]


def failed_jobs(connection, name: str) -> list[JobInfo]:
    """Newest first (the score is the expiry time: failure time + failure TTL)."""
    registry = FailedJobRegistry(name, connection=connection)
    ids = registry.get_job_ids(0, JOBS_SHOWN - 1, desc=True, cleanup=False)
    jobs = [job_info(job, with_traceback=True) for job in _fetch(connection, ids)]
    epoch = datetime.min.replace(tzinfo=timezone.utc)
    return sorted(jobs, key=lambda job: job.ended_at or job.enqueued_at or epoch, reverse=True)


def scheduled_jobs(connection, name: str) -> list[JobInfo]:
    registry = ScheduledJobRegistry(name, connection=connection)
    entries = connection.zrange(registry.key, 0, JOBS_SHOWN - 1, withscores=True)
    when = {entry.decode() if isinstance(entry, bytes) else entry: score for entry, score in entries}
    return [job_info(job, scheduled_for=datetime.fromtimestamp(when[job.id], timezone.utc))
            for job in _fetch(connection, list(when))]


def workers(connection, now: datetime) -> list[WorkerInfo]:
    """Every registered worker; one whose last heartbeat is older than its TTL is not alive
    (it died without registering its death)."""
    found = []
    for worker in sorted(Worker.all(connection=connection), key=lambda w: w.name):
        heartbeat = _aware(worker.last_heartbeat)
        age = _age(heartbeat, now)
        job_id = worker.get_current_job_id()
        current = _fetch(connection, [job_id]) if job_id else []
        found.append(WorkerInfo(
            name=worker.name, queues=worker.queue_names(), state=worker.get_state(),
            last_heartbeat=heartbeat, heartbeat_age=age,
            alive=age is not None and age <= worker.worker_ttl,
            current_job_id=job_id, current_func=_func_name(current[0]) if current else None,
        ))
    return found


def schedulers(connection, now: datetime) -> list[SchedulerInfo]:
    """The `rq cron` processes and the cron jobs each registered (RQ stores them with the
    scheduler); alive while its heartbeat is younger than RQ's scheduler TTL."""
    found = []
    for scheduler in CronScheduler.all(connection, cleanup=False):
        heartbeat = _aware(scheduler.last_heartbeat)
        age = _age(heartbeat, now)
        jobs = [
            CronJobInfo(name=job.name, func=job.func_name, queue=job.queue_name, cron=job.cron,
                        interval=job.interval, next_run=_aware(job.next_enqueue_time),
                        last_run=_aware(job.latest_enqueue_time))
            for job in scheduler.get_jobs()
        ]
        found.append(SchedulerInfo(
            name=scheduler.name, hostname=scheduler.hostname, pid=scheduler.pid,
            last_heartbeat=heartbeat, heartbeat_age=age,
            alive=age is not None and age <= DEFAULT_CRON_SCHEDULER_TTL, jobs=jobs,
        ))
    return sorted(found, key=lambda s: s.name)


def overview(connection, queues: tuple[str, ...] = QUEUES) -> Overview:
    now = datetime.now(timezone.utc)
    return Overview(
        queues=[queue_counts(connection, name) for name in queues],
        workers=workers(connection, now),
        schedulers=schedulers(connection, now),
        started=[job for name in queues for job in started_jobs(connection, name)],
        failed=[job for name in queues for job in failed_jobs(connection, name)],
        scheduled=[job for name in queues for job in scheduled_jobs(connection, name)],
    )


# --- changing: failed jobs only ------------------------------------------------------------
def failed_job(connection, job_id: str) -> Job | None:
    """The job, if it is in the failed registry of one of our queues."""
    try:
        job = Job.fetch(job_id, connection=connection)
    except NoSuchJobError:
        return None
    if job.origin not in QUEUES or job.id not in FailedJobRegistry(job.origin, connection=connection):
        return None
    return job


def retry_failed(connection, job_id: str) -> Job | None:
    """Put a failed job back on its queue (RQ's requeue); None when it is no failed job (any more)."""
    job = failed_job(connection, job_id)
    if job is None:
        return None
    try:
        return FailedJobRegistry(job.origin, connection=connection).requeue(job)
    except InvalidJobOperation:  # retried by someone else in the meantime
        return None


def retry_all_failed(connection, name: str) -> int:
    """Put every failed job of the queue back on it; entries whose job has expired are dropped."""
    registry = FailedJobRegistry(name, connection=connection)
    retried = 0
    for job_id in registry.get_job_ids(cleanup=False):
        try:
            registry.requeue(job_id)
        except NoSuchJobError:
            connection.zrem(registry.key, job_id)
        except InvalidJobOperation:
            continue
        else:
            retried += 1
    return retried


def delete_failed(connection, job_id: str) -> bool:
    job = failed_job(connection, job_id)
    if job is None or job.get_status(refresh=True) not in (JobStatus.FAILED, JobStatus.STOPPED):
        return False
    job.delete()
    return True
