"""`flask worker` and `flask cron`: the RQ worker and the one cron process, with the app;
`flask geocode missing`."""
from __future__ import annotations

import click
from flask import current_app
from flask.cli import AppGroup, with_appcontext

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


geocode_group = AppGroup("geocode", help="Geokodierung der Kundenadressen.")


@geocode_group.command("missing")
@with_appcontext
def geocode_missing_command() -> None:
    """Queue every customer without an exact position; without Redis geocode them right here
    (one request per GEOCODER_MIN_DELAY seconds)."""
    from app.jobs.geocoding import geocode_customers, geocode_missing, missing_customer_ids
    from app.services.geocoding import CHUNK, chunks

    if redis_connection() is not None:
        count = geocode_missing()
        click.echo(f"{count} Adressen zum Geokodieren eingereiht.")
        return
    ids = missing_customer_ids()
    click.echo(f"{len(ids)} Adressen werden geokodiert (ohne Redis: in diesem Prozess) …")
    totals: dict[str, int] = {}
    for chunk in chunks(ids, CHUNK):
        for status, count in geocode_customers(chunk).items():
            totals[status] = totals.get(status, 0) + count
    click.echo(", ".join(f"{status}: {count}" for status, count in sorted(totals.items())) or "nichts zu tun")


def register_job_cli(flask_app) -> None:
    flask_app.cli.add_command(worker_command)
    flask_app.cli.add_command(cron_command)
    flask_app.cli.add_command(geocode_group)
