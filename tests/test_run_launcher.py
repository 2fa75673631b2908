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
from pathlib import Path

from tests.conftest import TEST_REDIS_URL

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def launch(app, redis_url: str, port: int) -> subprocess.Popen:
    env = {**os.environ, "DATABASE_URL": app.config["SQLALCHEMY_DATABASE_URI"], "REDIS_URL": redis_url,
           "INSTANCE_PATH": app.config["INSTANCE_DIR"], "SECRET_KEY": "test-secret-not-for-production",
           "PORT": str(port), "FLASK_APP": "run.py"}
    return subprocess.Popen([sys.executable, "run.py"], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


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


def test_with_redis_the_worker_and_cron_start_and_stop_with_the_web_server(app, rq_queues):
    from rq import Worker
    from rq.cron import CronScheduler

    connection = rq_queues["default"].connection
    connection.delete("terminbuch:cron:leader")
    port = free_port()
    process = launch(app, TEST_REDIS_URL, port)
    try:
        assert wait_for(lambda: serves(port)), "the web server did not come up"
        assert wait_for(lambda: len(Worker.all(connection=connection)) == 1), "no worker registered"
        # fully started: RQ installs its SIGTERM handler (warm shutdown, deregistration) only after
        # registering and starting its scheduler; "idle" comes after that
        assert wait_for(lambda: Worker.all(connection=connection)[0].get_state() == "idle"), "worker never idle"
        assert wait_for(lambda: len(CronScheduler.all(connection)) == 1), "no cron process registered"
        worker = Worker.all(connection=connection)[0]
        assert {queue.name for queue in worker.queues} == {"default", "notifications", "exports", "geocoding"}
    finally:
        process.send_signal(signal.SIGTERM)
        output = process.communicate(timeout=60)[0]
    assert "RQ-Worker und Zeitplan (cron) laufen neben dem Webserver" in output
    assert wait_for(lambda: not Worker.all(connection=connection) and not CronScheduler.all(connection), 30), \
        "the worker or cron outlived the web server"


def test_without_redis_one_log_line_says_jobs_run_in_the_web_process(app):
    port = free_port()
    process = launch(app, "none", port)
    try:
        assert wait_for(lambda: serves(port)), "the web server did not come up"
    finally:
        process.send_signal(signal.SIGTERM)
        output = process.communicate(timeout=30)[0]
    lines = [line for line in output.splitlines() if "Redis" in line]
    assert len(lines) == 1 and "Aufträge laufen im Webprozess" in lines[0], lines
