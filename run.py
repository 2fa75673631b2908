"""`python run.py` serves the app (what `make run` starts); `FLASK_APP=run.py flask …` runs any command.

With a Redis that answers (REDIS_URL, or a local one on 127.0.0.1:6379 when REDIS_URL is
unset; REDIS_URL=none switches it off) the web process starts an RQ worker (`flask worker`)
and the cron process (`flask cron`) beside itself and stops them when it ends. Without
Redis the jobs run inside the web process and the schedule in a background thread.
"""
import logging
import os
import signal
import subprocess
import sys
from pathlib import Path

from app import create_app

LOCAL_REDIS = "redis://127.0.0.1:6379/0"
log = logging.getLogger("terminbuch")

app = create_app()


def _redis_answers(url: str) -> bool:
    from redis import Redis
    from redis.exceptions import RedisError

    try:
        return bool(Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2).ping())
    except (RedisError, OSError, ValueError):
        return False


def _die_with_parent() -> None:
    """Linux: the worker and cron end when the web process ends, however it ends."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def start_background(url: str) -> list[subprocess.Popen]:
    env = {**os.environ, "REDIS_URL": url, "FLASK_APP": "run.py"}
    flask = str(Path(sys.executable).parent / "flask")
    return [subprocess.Popen([flask, command], env=env, cwd=Path(__file__).parent, preexec_fn=_die_with_parent)
            for command in ("worker", "cron")]


def main() -> None:
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # stop the worker and cron on the way out
    url = os.environ.get("REDIS_URL") or LOCAL_REDIS
    children: list[subprocess.Popen] = []
    if url.lower() != "none" and _redis_answers(url):
        app.config["REDIS_URL"] = url
        children = start_background(url)
        log.info("Redis %s: RQ-Worker und Zeitplan (cron) laufen neben dem Webserver", url)
    else:
        from app.jobs.schedule import start_inline_cron, use_business_time_zone

        app.config["REDIS_URL"] = None
        use_business_time_zone(app.config)
        start_inline_cron(app)
        log.warning("Kein Redis erreichbar: Aufträge laufen im Webprozess, der Zeitplan in einem Hintergrund-Thread")
    try:
        app.run(host=os.environ.get("HOST", "127.0.0.1"), port=app.config["PORT"])
    finally:
        for child in children:
            child.terminate()
        for child in children:
            try:
                child.wait(10)
            except subprocess.TimeoutExpired:
                child.kill()


if __name__ == "__main__":
    main()
