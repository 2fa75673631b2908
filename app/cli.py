"""Flask commands: `flask init`, `flask demo seed`."""
from __future__ import annotations

import os
import secrets
import time
from pathlib import Path

import click
from flask import Flask, current_app
from flask.cli import AppGroup, with_appcontext
from sqlalchemy import func, select

from app.extensions import db
from app.security import OWNER, SYSTEM_USERNAME, sync_roles

BUILTIN_STATUSES = [
    # name, kind, position, colour, description
    ("angefragt", "start", 10, "#f0ad4e", "Anfrage eingegangen, noch nicht bestätigt."),
    ("bestätigt", "confirmation", 20, "#5cb85c", "Termin ist bestätigt."),
    ("storniert", "cancellation", 30, "#d9534f", "Termin wurde abgesagt."),
    ("abgeschlossen", "completed", 40, "#337ab7", "Termin hat stattgefunden."),
    ("nicht erschienen", "no_show", 50, "#777777", "Kund:in ist nicht erschienen."),
]
DEFAULT_SETTINGS = [
    ("business_name", "Terminbuch Demo", "Name des Betriebs (Rechnungen, E-Mails)"),
    ("business_address", "", "Anschrift des Betriebs"),
    ("vat_rates", "19,7,0", "Mehrwertsteuersätze der Rechnungspositionen in Prozent, durch Komma getrennt"),
    ("reminder_hours", "24", "Erinnerung so viele Stunden vor dem Termin"),
    ("booking_retention_days", "", "Aufbewahrung von Terminen in Tagen (leer = unbegrenzt)"),
    ("history_retention_days", "", "Aufbewahrung des Verlaufs in Tagen (leer oder 0 = unbegrenzt)"),
    ("export_async_threshold", "20000", "Exporte mit mehr Zeilen werden im Hintergrund erstellt"),
    ("nightly_export_query", "", "Filter des nächtlichen Excel-Exports der Terminliste: die Adresszeile der "
     "gefilterten Liste ab „?“ (Zeitraum _flt_1_start_at/_flt_2_start_at: feste Daten). Leer oder ohne "
     "Zeitraum = alle Termine aller Jahre (nicht das Fenster der Liste). Ein ungültiger Filter: kein Export, "
     "Fehler im Protokoll"),
    ("nightly_export_keep", "7", "So viele nächtliche Exporte (exports/nightly) werden aufbewahrt (mindestens 1)"),
    ("call_link_scheme", "tel", "Art der Anruf-Links bei Telefonnummern: tel, sip oder callto"),
    ("document_max_mb", "10", "Höchstgröße eines Dokuments in der Kundenakte in MB (1 bis 100)"),
    ("card_renewal_remaining", "2", "Erinnerung zur Kartenverlängerung bei so vielen verbleibenden Einheiten"),
    ("backup_keep", "14", "So viele nächtliche Sicherungen werden aufbewahrt"),
]


def init_app_data() -> None:
    """Roles, permissions, the system user, built-in statuses and settings. Idempotent."""
    from app.models import BookingStatus, Setting

    appbuilder = current_app.appbuilder
    sync_roles(appbuilder)
    sm = appbuilder.sm
    if sm.find_user(username=SYSTEM_USERNAME) is None:
        user = sm.add_user(
            SYSTEM_USERNAME, "System", "Terminbuch", "system@terminbuch.invalid",
            sm.find_role(OWNER), password=secrets.token_urlsafe(32),
        )
        user.active = False  # acts for jobs and the seeder, never logs in
        db.session.commit()
    existing = set(db.session.scalars(select(BookingStatus.name)))
    for name, kind, position, color, description in BUILTIN_STATUSES:
        if name not in existing:
            db.session.add(BookingStatus(
                name=name, kind=kind, position=position, color=color,
                description=description, builtin=True,
            ))
    existing = set(db.session.scalars(select(Setting.key)))
    for key, value, description in DEFAULT_SETTINGS:
        if key not in existing:
            db.session.add(Setting(key=key, value=value, description=description))
    from app.jobs.base import acting_as
    from app.services.lenses import seed_builtin_lenses

    with acting_as():
        seed_builtin_lenses(db.session)  # the built-in lenses (customers, open invoices), keyed by builtin_key
        db.session.commit()


demo = AppGroup("demo", help="Demo data.")


@demo.command("seed")
@click.option("--customers", default=2000, show_default=True)
@click.option("--bookings", default=40000, show_default=True)
@click.option("--seed", "seed_value", default=42, show_default=True)
@click.option("--if-empty", is_flag=True, help="Do nothing when the database already has customers.")
@click.option("--fast/--orm", "fast", default=None,
              help="Core inserts (versions written alongside) or the ORM path; default: ORM up to 100,000 bookings.")
@with_appcontext
def demo_seed(customers: int, bookings: int, seed_value: int, if_empty: bool, fast: bool | None) -> None:
    """Fill an empty database with a believable German business."""
    from app.demo import seed_demo
    from app.models import Customer

    if db.session.scalar(select(func.count(Customer.id))):
        if if_empty:
            click.echo("Datenbank enthält schon Daten – keine Demodaten angelegt.")
            return
        raise click.ClickException("Die Datenbank ist nicht leer; Demodaten nur in eine leere Datenbank.")
    password = demo_password()
    started = time.perf_counter()
    logins = seed_demo(customers=customers, bookings=bookings, seed=seed_value, password=password, fast=fast)
    click.echo(f"Demodaten angelegt in {time.perf_counter() - started:.1f} s.")
    click.echo(f"Demo-Logins (Passwort: {password}): {', '.join(logins)}")


DEMO_USERNAMES = ["owner", "manager", "viewer"] + [f"employee{n}" for n in range(1, 9)]


def demo_password() -> str:
    """DEMO_PASSWORD from the environment, else one generated once into instance/."""
    if os.environ.get("DEMO_PASSWORD"):
        return os.environ["DEMO_PASSWORD"]
    path = Path(current_app.config["INSTANCE_DIR"]) / "demo_password"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(9))
        path.chmod(0o600)
    return path.read_text().strip()


@demo.command("logins")
@with_appcontext
def demo_logins() -> None:
    """Print the demo logins that exist in this database."""
    sm = current_app.appbuilder.sm
    present = [name for name in DEMO_USERNAMES if sm.find_user(username=name) is not None]
    if not present:
        click.echo("Keine Demo-Logins in dieser Datenbank.")
        return
    click.echo(f"Demo-Logins: {', '.join(present)}")
    if os.environ.get("DEMO_PASSWORD") or (Path(current_app.config["INSTANCE_DIR"]) / "demo_password").exists():
        click.echo(f"Passwort:    {demo_password()}")


@click.command("init")
@with_appcontext
def init_command() -> None:
    """Sync roles and permissions, create the system user and built-in data."""
    init_app_data()
    click.echo("Rollen, Berechtigungen und Grunddaten sind aktuell.")


history = AppGroup("history", help="Audit trail (version history).")


@history.command("purge")
@with_appcontext
def history_purge() -> None:
    """Remove history older than the setting history_retention_days."""
    from app.services.history import purge_history, retention_days

    if retention_days(db.session) is None:
        click.echo("Aufbewahrung des Verlaufs unbegrenzt (history_retention_days leer oder 0) – nichts gelöscht.")
        return
    removed = purge_history(db.session)
    db.session.commit()
    click.echo(f"{removed} Versionen aus dem Verlauf entfernt.")


backup = AppGroup("backup", help="Backups of the database (app/services/backup.py).")


@backup.command("create")
@with_appcontext
def backup_create() -> None:
    """Back up the configured database into BACKUP_DIR (default instance/backups)."""
    from app.services.backup import BackupError, create_backup

    try:
        path = create_backup()
    except BackupError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"Sicherung geschrieben: {path} ({path.stat().st_size} Bytes).")


@backup.command("list")
@with_appcontext
def backup_list() -> None:
    """The backups of BACKUP_DIR, newest first."""
    from app.services.backup import default_dir, list_backups

    paths = list_backups()
    if not paths:
        click.echo(f"Keine Sicherungen in {default_dir()}.")
        return
    for path in paths:
        click.echo(f"{path.name}  {path.stat().st_size:>12} Bytes")


@backup.command("restore")
@click.argument("file")
@click.option("--database-url", default=None, help="Target database (default: the configured one); must be empty.")
@with_appcontext
def backup_restore(file: str, database_url: str | None) -> None:
    """Play a backup (a path, or a name in BACKUP_DIR) into an EMPTY database."""
    from app.services.backup import BackupError, default_dir, restore_backup

    path = Path(file)
    if not path.exists() and path.name == file:
        path = default_dir() / file
    url = database_url or db.engine.url.render_as_string(hide_password=False)
    db.session.remove()  # no open transaction of this process on the target
    try:
        restore_backup(path, url)
    except BackupError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"Sicherung {path.name} zurückgespielt.")


def register_cli(flask_app: Flask) -> None:
    flask_app.cli.add_command(init_command)
    flask_app.cli.add_command(demo)
    flask_app.cli.add_command(history)
    flask_app.cli.add_command(backup)
    from app.jobs.cli import register_job_cli

    register_job_cli(flask_app)
