"""`flask worker` and `flask cron`: the RQ worker and the one cron process, with the app."""
from __future__ import annotations

import click
from flask import current_app
from flask.cli import with_appcontext

from app.jobs.queue import QUEUES, redis_connection


def _connection_or_exit():
    connection = redis_connection()
    if connection is None:
        raise click.ClickException("REDIS_URL ist nicht gesetzt: Aufträge laufen ohne Worker im Webprozess.")
    return connection


@click.command("worker")
@click.option("--queue", "queues", multiple=True, help="Nur diese Warteschlangen (Standard: alle).")
@click.option("--burst", is_flag=True, help="Beenden, sobald die Warteschlangen leer sind.")
@click.option("--simple", is_flag=True, help="Aufträge im Prozess ausführen, ohne fork().")
@click.option("--name", default=None)
@with_appcontext
def worker_command(queues: tuple[str, ...], burst: bool, simple: bool, name: str | None) -> None:
    """Start an RQ worker for the app's queues (every job in its own app context)."""
    from app.jobs.worker import make_worker

    _connection_or_exit()
    worker = make_worker(current_app._get_current_object(), queues or QUEUES, simple=simple, name=name)
    worker.work(burst=burst, with_scheduler=True)


@click.command("cron")
@with_appcontext
def cron_command() -> None:
    """Start the cron process: enqueues the schedule while it holds the leader lock."""
    from app.jobs.schedule import GuardedCron, use_business_time_zone

    connection = _connection_or_exit()
    flask_app = current_app._get_current_object()
    use_business_time_zone(flask_app.config)
    GuardedCron(connection, flask_app).start()


def register_job_cli(flask_app) -> None:
    flask_app.cli.add_command(worker_command)
    flask_app.cli.add_command(cron_command)
