"""`make run` (python run.py): with a Redis that answers, the web server starts an RQ worker and
the cron process beside itself — the job monitor's registries see both — and stops them when it
ends; without Redis it says so in one log line and serves on its own."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import pytest
import redis

from tests.conftest import REQUIRE_SERVICES, _worker

ROOT = Path(__file__).resolve().parent.parent


def launcher_redis_url() -> str:
    """A Redis database of its own (not the one of this process's other tests): a worker that
    outlived its test must not take their jobs."""
    worker = _worker()
    index = int(worker[2:]) if worker.startswith("gw") and worker[2:].isdigit() else 0
    first = int(os.environ.get("TEST_REDIS_DB", "15"))
    return f"redis://127.0.0.1:6379/{(first - 4 - index % 4) % 16}"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def launched(app, redis_url: str, tmp_path):
    """`python run.py` in a process group of its own, its output in a file (a pipe nobody reads
    would fill and block it); the whole group is killed at the end whatever happened."""
    port = free_port()
    log_path = tmp_path / "run.log"
    env = {**os.environ, "DATABASE_URL": app.config["SQLALCHEMY_DATABASE_URI"], "REDIS_URL": redis_url,
           "INSTANCE_PATH": app.config["INSTANCE_DIR"], "SECRET_KEY": "test-secret-not-for-production",
           "PORT": str(port), "FLASK_APP": "run.py"}
    with open(log_path, "w") as log:
        process = subprocess.Popen([sys.executable, "run.py"], cwd=ROOT, env=env, stdout=log,
                                   stderr=subprocess.STDOUT, start_new_session=True)
    try:
        yield process, port, log_path
    finally:
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        process.wait(10)


def stop(process: subprocess.Popen) -> int:
    process.send_signal(signal.SIGTERM)
    return process.wait(60)


def wait_for(check, seconds: float = 60.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.3)
    return False


def serves(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


@pytest.fixture()
def launcher_redis():
    connection = redis.Redis.from_url(launcher_redis_url(), socket_timeout=5)
    try:
        connection.ping()
    except redis.RedisError:
        assert not REQUIRE_SERVICES, "Redis does not answer but REQUIRE_SERVICES=1"
        pytest.fail("Redis at 127.0.0.1:6379 is needed for this test")
    connection.flushdb()
    yield connection
    connection.flushdb()


def test_with_redis_the_worker_and_cron_start_and_stop_with_the_web_server(app, launcher_redis, tmp_path):
    from rq import Worker
    from rq.cron import CronScheduler

    connection = launcher_redis
    with launched(app, launcher_redis_url(), tmp_path) as (process, port, log_path):
        assert wait_for(lambda: serves(port)), "the web server did not come up"
        assert wait_for(lambda: len(Worker.all(connection=connection)) == 1), "no worker registered"
        # fully started: RQ installs its SIGTERM handler (warm shutdown, deregistration) only after
        # registering and starting its scheduler; "idle" comes after that
        assert wait_for(lambda: Worker.all(connection=connection)[0].get_state() == "idle"), "worker never idle"
        assert wait_for(lambda: len(CronScheduler.all(connection)) == 1), "no cron process registered"
        worker = Worker.all(connection=connection)[0]
        assert {queue.name for queue in worker.queues} == {"default", "notifications", "exports", "geocoding"}
        assert stop(process) == 0
        assert wait_for(lambda: not Worker.all(connection=connection) and not CronScheduler.all(connection), 30), \
            "the worker or cron outlived the web server"
        output = log_path.read_text()
    assert "RQ-Worker und Zeitplan (cron) laufen neben dem Webserver" in output


def test_without_redis_one_log_line_says_jobs_run_in_the_web_process(app, tmp_path):
    with launched(app, "none", tmp_path) as (process, port, log_path):
        assert wait_for(lambda: serves(port)), "the web server did not come up"
        assert stop(process) == 0
        output = log_path.read_text()
    lines = [line for line in output.splitlines() if "Redis" in line]
    assert len(lines) == 1 and "Aufträge laufen im Webprozess" in lines[0], lines
