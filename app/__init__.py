"""Terminbuch: the app factory. Wiring only."""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from flask import Flask
from sqlalchemy.orm import configure_mappers

MIGRATIONS_DIR = str(Path(__file__).resolve().parent.parent / "migrations")


def create_app(config: Any = "config.Config") -> Flask:
    """Build the app. `config` is an import path, a config class, or a dict of
    overrides on top of `config.Config`. Safe to call more than once (tests)."""
    flask_app = Flask(__name__)
    flask_app.config.from_object("config.Config")
    if isinstance(config, dict):
        flask_app.config.update(config)
    else:
        flask_app.config.from_object(config)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    from flask_appbuilder import AppBuilder

    from app import models  # noqa: F401  (defines every versioned model)
    from app.extensions import csrf, db, migrate
    from app.jobs import queue  # noqa: F401  (enqueues jobs after commit)
    from app.security import TerminbuchSecurityManager
    from app.services import (
        geocoding,  # noqa: F401  (re-queues customers whose address changed)
        staff_notifications,  # noqa: F401  (tells employees of their bookings)
    )
    from app.views.home import HomeView

    configure_mappers()
    db.init_app(flask_app)
    csrf.init_app(flask_app)
    from app.views.base import reject_nul_bytes

    flask_app.before_request(reject_nul_bytes)
    migrate.init_app(flask_app, db, directory=MIGRATIONS_DIR)

    with flask_app.app_context():
        appbuilder = AppBuilder(
            update_perms=False,
            indexview=HomeView,
            security_manager_class=TerminbuchSecurityManager,
            base_template="terminbuch/base.html",
        )
        appbuilder.init_app(flask_app, db.session)
        from app.views import register_views

        register_views(appbuilder)

    from app.cli import register_cli

    register_cli(flask_app)
    from app.views.errors import register_error_pages

    register_error_pages(flask_app)
    return flask_app
