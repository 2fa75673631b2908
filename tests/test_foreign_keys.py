"""Foreign keys hold on SQLite as on PostgreSQL: a customer with bookings cannot be
deleted (RESTRICT), a deleted customer's pets go with it as versioned deletes."""
from __future__ import annotations

import sqlalchemy as sa

from tests.conftest import csrf_token


def test_sqlite_connections_enforce_foreign_keys(app_ctx):
    from app.extensions import db

    if db.engine.dialect.name == "sqlite":
        assert db.session.execute(sa.text("PRAGMA foreign_keys")).scalar() == 1


def test_customer_with_bookings_cannot_be_deleted(app, world, manager):
    from app.extensions import db
    from app.models import Booking, Customer

    token = csrf_token(manager, f"/customerview/show/{world.customer1}")
    response = manager.post(f"/customerview/delete/{world.customer1}", data={"csrf_token": token},
                            follow_redirects=True)
    assert response.status_code == 200
    with app.app_context():
        assert db.session.get(Customer, world.customer1) is not None
        assert db.session.get(Booking, world.booking1).customer_id == world.customer1
    refusal = "Der Eintrag kann nicht gelöscht werden: andere Einträge verweisen auf ihn"
    assert refusal in response.get_data(as_text=True)
