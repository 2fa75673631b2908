"""Acting user for code that runs outside a request (jobs, CLI, seeder)."""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from flask import current_app, g

from app.security import SYSTEM_USERNAME


@contextmanager
def acting_as(username: str = SYSTEM_USERNAME) -> Iterator[object]:
    """Put a FAB user on `g.user` so Continuum records them as the actor."""
    sm = current_app.appbuilder.sm
    user = sm.find_user(username=username)
    if user is None:
        raise RuntimeError(f"user {username!r} missing: run `flask init` first")
    previous = getattr(g, "user", None)
    g.user = user
    try:
        yield user
    finally:
        g.user = previous
