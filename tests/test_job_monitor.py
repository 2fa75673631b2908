"""Aufträge, the Owner's job monitor (issue 6, point 8), on a real Redis: failed jobs with
their traceback, "Erneut versuchen" (one job, all of a queue) and "Löschen" as CSRF POSTs,
workers and cron schedulers alive or dead, running and scheduled jobs, shortened args,
the page without Redis and with Redis down, English, and no access for anyone but the Owner."""
from __future__ import annotations

import re
import uuid
from datetime import datetime, timedelta, timezone

import pytest
import redis
from rq import Queue, SimpleWorker, Worker
from rq.cron import CronScheduler
from rq.executions import Execution
from rq.job import Job
from rq.registry import FailedJobRegistry, ScheduledJobRegistry
from rq.utils import utcformat

from tests.conftest import TEST_REDIS_URL, post_form
from tests.helpers_perm import html, is_login_redirect, session_csrf

PAGE = "/auftraege/"
FAILURE = "Absichtlich fehlgeschlagen für den Auftragsmonitor"


def failing_job(body: str = "") -> None:
    """A job that always fails (imported by the worker as tests.test_job_monitor.failing_job)."""
    raise ValueError(FAILURE)


def periodic_job() -> None:
    """A cron job's function (never run here)."""


def wipe(connection) -> None:
    """Everything RQ keeps in this test process's own Redis database (conftest: one per
    process): queues, registries, job hashes, worker and cron scheduler registrations."""
    keys = list(connection.scan_iter("rq:*"))
    if keys:
        connection.delete(*keys)


@pytest.fixture()
def rq_redis(rq_queues):
    connection = redis.Redis.from_url(TEST_REDIS_URL, socket_timeout=5)
    wipe(connection)
    yield connection
    wipe(connection)


def fail_jobs(connection, count: int = 1, queue: str = "default", body: str = "kurz") -> list[str]:
    """Enqueue `count` failing jobs and run them with a burst worker: they end in the failed registry."""
    q = Queue(queue, connection=connection)
    ids = [q.enqueue(failing_job, body).id for _ in range(count)]
    SimpleWorker([q], connection=connection, name=f"tb-burst-{uuid.uuid4().hex[:8]}").work(burst=True)
    registry = FailedJobRegistry(queue, connection=connection)
    assert all(job_id in registry for job_id in ids)
    return ids


def queue_row(page: str, name: str) -> dict[str, int]:
    row = re.search(rf'<tr class="tb-queue" data-queue="{name}">(.*?)</tr>', page, re.S)
    assert row, f"no row of queue {name}"
    return {kind: int(re.sub(r"<[^>]+>", "", value).strip())
            for kind, value in re.findall(r'class="tb-count-(\w+)">(.*?)</td>', row.group(1), re.S)}


def post(client, url: str, data: dict):
    """POST with this session's CSRF token (the page has no form once nothing has failed)."""
    return client.post(url, data={**data, "csrf_token": session_csrf(client)})


def failed_count(connection, queue: str = "default") -> int:
    return FailedJobRegistry(queue, connection=connection).get_job_count(cleanup=False)


# --- the page ----------------------------------------------------------------------------
def test_failed_job_shows_with_its_traceback_and_shortened_args(owner, rq_redis):
    body = "Liebe Anna, " + "X" * 500
    (job_id,) = fail_jobs(rq_redis, body=body)
    response = owner.get(PAGE)
    assert response.status_code == 200
    page = html(response)
    assert "Fehlgeschlagene Aufträge" in page and f'data-id="{job_id}"' in page
    assert "tests.test_job_monitor.failing_job" in page
    assert "Traceback (most recent call last)" in page and f"ValueError: {FAILURE}" in page
    assert "Liebe Anna" in page and "X" * 70 not in page  # at most ~80 characters of the args
    args = re.findall(r'<code class="tb-job-args">(.*?)</code>', page, re.S)
    assert args and all(len(text) <= 100 for text in args)  # 80 characters, HTML-escaped quotes
    assert queue_row(page, "default") == {"queued": 0, "started": 0, "failed": 1, "scheduled": 0, "deferred": 0}
    for name in ("notifications", "exports", "geocoding"):
        assert queue_row(page, name)["failed"] == 0
    assert "Worker aktiv: 0" in page  # the burst worker registered its death
    assert "Zeitplan (cron) aktiv: nein" in page
    assert "Alle erneut versuchen" in page and "Erneut versuchen" in page and "Löschen" in page


def test_retry_puts_the_job_back_and_get_or_a_forged_post_changes_nothing(owner, rq_redis):
    (job_id,) = fail_jobs(rq_redis)
    queue = Queue("default", connection=rq_redis)
    for url in ("/auftraege/retry/", "/auftraege/retry-all/", "/auftraege/delete/"):
        assert owner.get(f"{url}?job_id={job_id}&queue=default&confirm=1").status_code == 405
    assert owner.post("/auftraege/retry/", data={"job_id": job_id}).status_code == 400  # no CSRF token
    assert owner.post("/auftraege/retry/", data={"job_id": job_id, "csrf_token": "forged"}).status_code == 400
    assert (queue.count, failed_count(rq_redis)) == (0, 1)

    response = post_form(owner, "/auftraege/retry/", {"job_id": job_id}, form_url=PAGE)
    assert response.status_code == 302 and response.location.endswith(PAGE)
    assert (queue.count, failed_count(rq_redis)) == (1, 0)
    assert queue.get_job_ids() == [job_id]
    page = html(owner.get(PAGE))
    assert f"Auftrag {job_id} wird erneut versucht (Warteschlange default)." in page
    assert queue_row(page, "default")["queued"] == 1 and queue_row(page, "default")["failed"] == 0

    response = post(owner, "/auftraege/retry/", {"job_id": job_id})  # not failed any more
    assert response.status_code == 302
    assert "ist kein fehlgeschlagener Auftrag (mehr)" in html(owner.get(PAGE))
    assert queue.count == 1


def test_retry_all_of_a_queue(owner, rq_redis):
    ids = fail_jobs(rq_redis, count=2)
    (other,) = fail_jobs(rq_redis, queue="notifications")
    response = post_form(owner, "/auftraege/retry-all/", {"queue": "default"}, form_url=PAGE)
    assert response.status_code == 302
    assert sorted(Queue("default", connection=rq_redis).get_job_ids()) == sorted(ids)
    assert failed_count(rq_redis) == 0 and failed_count(rq_redis, "notifications") == 1  # the other queue stays
    page = html(owner.get(PAGE))
    assert "Fehlgeschlagene Aufträge der Warteschlange default erneut eingereiht: 2." in page
    assert f'data-id="{other}"' in page
    post(owner, "/auftraege/retry-all/", {"queue": "default"})
    assert "Die Warteschlange default hat keine fehlgeschlagenen Aufträge." in html(owner.get(PAGE))


def test_delete_asks_first_then_deletes(owner, rq_redis):
    (job_id,) = fail_jobs(rq_redis)
    response = post_form(owner, "/auftraege/delete/", {"job_id": job_id}, form_url=PAGE)
    assert response.status_code == 200
    page = html(response)
    assert "Fehlgeschlagenen Auftrag löschen" in page and "Löschen bestätigen" in page and job_id in page
    assert Job.exists(job_id, connection=rq_redis) and failed_count(rq_redis) == 1  # nothing deleted yet

    response = post_form(owner, "/auftraege/delete/", {"job_id": job_id, "confirm": "1"}, form_url=PAGE)
    assert response.status_code == 302
    assert not Job.exists(job_id, connection=rq_redis) and failed_count(rq_redis) == 0
    assert f"Auftrag {job_id} gelöscht." in html(owner.get(PAGE))
    assert Queue("default", connection=rq_redis).count == 0  # deleted, not retried


def test_delete_and_retry_only_touch_failed_jobs(owner, rq_redis):
    """A queued job named in the form is neither deleted nor put on the queue twice."""
    queue = Queue("default", connection=rq_redis)
    job = queue.enqueue(failing_job, "wartet")
    for data in ({"job_id": job.id, "confirm": "1"}, {"job_id": job.id}):
        url = "/auftraege/delete/" if "confirm" in data else "/auftraege/retry/"
        assert post(owner, url, data).status_code == 302
    assert Job.exists(job.id, connection=rq_redis) and queue.get_job_ids() == [job.id]


def test_posts_naming_nothing_or_junk(owner, rq_redis):
    token = session_csrf(owner)
    for url in ("/auftraege/retry/", "/auftraege/delete/"):
        response = owner.post(url, data={"csrf_token": token})
        assert response.status_code == 200 and "Bitte einen fehlgeschlagenen Auftrag wählen." in html(response)
        assert owner.post(url, data={"csrf_token": token, "job_id": "../../etc"}).status_code == 400
        assert owner.post(url, data={"csrf_token": token, "job_id": "x" * 500}).status_code == 400
        response = owner.post(url, data={"csrf_token": token, "job_id": "gibt-es-nicht"})
        assert response.status_code == 302
    response = owner.post("/auftraege/retry-all/", data={"csrf_token": token, "queue": "rq:queue:default"})
    assert response.status_code == 200 and "Bitte eine Warteschlange wählen." in html(response)


def test_live_and_dead_workers(owner, rq_redis):
    live = Worker(["default", "notifications"], connection=rq_redis, name=f"tb-live-{uuid.uuid4().hex[:8]}")
    live.register_birth()
    live.heartbeat()
    dead = Worker(["exports"], connection=rq_redis, name=f"tb-dead-{uuid.uuid4().hex[:8]}")
    dead.register_birth()  # then crashed: its last heartbeat is older than its TTL, no death registered
    stale = datetime.now(timezone.utc) - timedelta(seconds=dead.worker_ttl + 60)
    rq_redis.hset(dead.key, "last_heartbeat", utcformat(stale))

    page = html(owner.get(PAGE))
    assert "Worker aktiv: 1" in page
    assert re.search(rf'<tr class="tb-worker tb-alive" data-name="{live.name}">', page)
    assert re.search(rf'<tr class="tb-worker tb-dead" data-name="{dead.name}">', page)
    row = re.search(rf'data-name="{live.name}">(.*?)</tr>', page, re.S).group(1)
    assert "default, notifications" in row and "vor " in row

    live.register_death()
    dead.register_death()
    assert "Worker aktiv: 0" in html(owner.get(PAGE))


def test_running_job_and_the_workers_current_job(owner, rq_redis):
    worker = Worker(["default"], connection=rq_redis, name=f"tb-busy-{uuid.uuid4().hex[:8]}")
    worker.register_birth()
    worker.set_state("busy")
    job = Queue("default", connection=rq_redis).enqueue(periodic_job)
    with rq_redis.pipeline() as pipeline:
        Execution.create(job, ttl=300, pipeline=pipeline, worker_name=worker.name)
        pipeline.execute()
    page = html(owner.get(PAGE))
    assert re.search(rf'<tr class="tb-started-job" data-id="{job.id}">', page)
    assert queue_row(page, "default")["started"] == 1
    row = re.search(rf'data-name="{worker.name}">(.*?)</tr>', page, re.S).group(1)
    assert "arbeitet" in row and "tests.test_job_monitor.periodic_job" in row and job.id in row


def test_cron_scheduler_and_its_jobs(app, owner, rq_redis):
    assert "Zeitplan (cron) aktiv: nein" in html(owner.get(PAGE))
    cron = CronScheduler(rq_redis, name=f"tb-cron-{uuid.uuid4().hex[:8]}")
    nightly = cron.register(periodic_job, "exports", cron="30 2 * * *")
    cron.register(failing_job, "notifications", interval=300)
    cron.register_birth()
    cron.heartbeat()

    page = html(owner.get(PAGE))
    assert "Zeitplan (cron) aktiv: ja" in page
    block = re.search(rf'<div class="tb-cron tb-alive" data-name="{cron.name}">(.*?)</div>', page, re.S)
    assert block, "the cron scheduler is shown alive"
    text = block.group(1)
    assert "tests.test_job_monitor.periodic_job" in text and "30 2 * * *" in text
    assert "tests.test_job_monitor.failing_job" in text and "alle 300 s" in text
    from app.formatting import fmt_datetime

    with app.app_context():
        assert fmt_datetime(nightly.next_enqueue_time) in text  # next run, business local time

    # a scheduler that stopped sending heartbeats (killed): not alive any more
    rq_redis.zadd("rq:cron_schedulers", {cron.name: datetime.now(timezone.utc).timestamp() - 600})
    page = html(owner.get(PAGE))
    assert "Zeitplan (cron) aktiv: nein" in page
    assert f'<div class="tb-cron tb-dead" data-name="{cron.name}">' in page


def test_scheduled_job_with_its_time(owner, rq_redis):
    when = datetime(2030, 1, 7, 11, 15, tzinfo=timezone.utc)
    job = Queue("geocoding", connection=rq_redis).enqueue_at(when, periodic_job)
    assert job.id in ScheduledJobRegistry("geocoding", connection=rq_redis)
    page = html(owner.get(PAGE))
    row = re.search(rf'<tr class="tb-scheduled-job" data-id="{job.id}">(.*?)</tr>', page, re.S)
    assert row and "07.01.2030 12:15" in row.group(1)  # Europe/Berlin in winter: UTC+1
    assert queue_row(page, "geocoding")["scheduled"] == 1


# --- who may see it -------------------------------------------------------------------------
@pytest.mark.parametrize("role", ["manager", "employee", "viewer"])
def test_nobody_but_the_owner(request, role, rq_redis):
    (job_id,) = fail_jobs(rq_redis)
    client = request.getfixturevalue(role)
    response = client.get(PAGE)
    assert response.status_code == 403
    assert job_id not in html(response) and FAILURE not in html(response)
    token = session_csrf(client)
    for url, data in (("/auftraege/retry/", {"job_id": job_id}), ("/auftraege/retry-all/", {"queue": "default"}),
                      ("/auftraege/delete/", {"job_id": job_id, "confirm": "1"})):
        assert client.post(url, data={**data, "csrf_token": token}).status_code == 403
    assert failed_count(rq_redis) == 1 and Job.exists(job_id, connection=rq_redis)
    assert PAGE not in html(client.get("/"))  # no menu entry


def test_anonymous_goes_to_the_login(client_for, rq_redis):
    assert is_login_redirect(client_for(None).get(PAGE))


def test_only_the_owner_role_holds_its_permissions(app, owner):
    from app.security import ROLE_PERMISSIONS

    assert all("JobMonitorView" not in declared for declared in ROLE_PERMISSIONS.values())
    sm = app.appbuilder.sm
    with app.app_context():
        holders = {
            role.name for role in sm.get_all_roles()
            for pv in role.permissions if pv.view_menu.name in ("JobMonitorView", "Aufträge")
        }
    assert holders == {"Owner"}
    assert f'href="{PAGE}"' in html(owner.get("/"))  # the Owner's menu has it (Einstellungen)


# --- without Redis, Redis down, English --------------------------------------------------------
def test_without_redis_the_page_says_so(app, owner, monkeypatch):
    monkeypatch.setitem(app.config, "REDIS_URL", None)
    response = owner.get(PAGE)
    assert response.status_code == 200
    page = html(response)
    assert "Kein Redis konfiguriert (REDIS_URL): Hintergrundaufträge laufen im Webprozess mit" in page
    assert "<h4>" not in page and "Worker aktiv" not in page and "tb-queues" not in page  # nothing else
    response = post(owner, "/auftraege/retry/", {"job_id": "abc"})
    assert response.status_code == 200 and "Kein Redis konfiguriert" in html(response)


def test_redis_down_is_no_500(app, owner, monkeypatch):
    monkeypatch.setitem(app.config, "REDIS_URL", "redis://127.0.0.1:1/0")
    response = owner.get(PAGE)
    assert response.status_code == 200 and "Redis ist nicht erreichbar" in html(response)


def test_page_in_english(owner, rq_redis):
    fail_jobs(rq_redis)
    assert owner.get("/lang/en").status_code == 302
    page = html(owner.get(PAGE))
    for text in ("Jobs", "Workers active: 0", "Schedule (cron) active: no", "Queues", "Failed jobs",
                 "Scheduled jobs", "Running jobs", "Retry all", "Retry", "Delete", "Waiting", "Deferred"):
        assert text in page, text
    for text in ("Warteschlangen", "Fehlgeschlagene Aufträge", "Worker aktiv", "Erneut versuchen"):
        assert text not in page, text
    response = post_form(owner, "/auftraege/retry-all/", {"queue": "default"}, form_url=PAGE)
    assert response.status_code == 302
    assert "Failed jobs of queue default enqueued again: 1." in html(owner.get(PAGE))
    assert owner.get("/lang/de").status_code == 302


def test_geocoding_jobs_held_back_by_the_rate_limit_count_as_waiting(app, owner, rq_redis):
    """The geocoding queue runs one job at a time (RQ RateLimit): the second job waits in the
    limiter's set, not in the queue — the page counts it as waiting all the same."""
    from app.jobs.queue import enqueue_now

    with app.app_context():
        for _ in range(3):
            enqueue_now("os.getcwd", queue="geocoding")
    assert Queue("geocoding", connection=rq_redis).count == 1  # two held back by the limiter
    page = owner.get("/auftraege/").get_data(as_text=True)
    assert queue_row(page, "geocoding")["queued"] == 3
