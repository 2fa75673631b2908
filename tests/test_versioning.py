"""Audit versioning: every domain model is versioned by SQLAlchemy-Continuum and
every transaction names the FAB user who made it (a logged-in user through a
form, the `system` user for jobs and the seeder)."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa
from sqlalchemy_continuum import transaction_class, version_class
from sqlalchemy_continuum.exc import ClassNotVersioned

from tests.test_validation import form_values


def _versions(model, pk):
    from app.extensions import db

    cls = version_class(model)
    return db.session.scalars(
        sa.select(cls).where(cls.id == pk).order_by(cls.transaction_id)
    ).all()


def _user_id(username: str) -> int:
    from flask import current_app

    from app.extensions import db

    db.session.expire_all()
    return current_app.appbuilder.sm.find_user(username=username).id


@pytest.fixture()
def restore_customer1(app, world):
    """Put customer1's phone back after a test that edits it."""
    from app.extensions import db
    from app.jobs.base import acting_as
    from app.models import Customer

    with app.app_context():
        original = db.session.get(Customer, world.customer1).phone
    yield original
    with app.app_context(), acting_as():
        customer = db.session.get(Customer, world.customer1)
        customer.phone = original
        db.session.commit()


def test_edit_through_the_form_records_old_values_and_the_editor(app, client_for, world, restore_customer1):
    from app.extensions import db
    from app.models import Customer

    old_phone = restore_customer1
    new_phone = "+49 30 5550101"
    client = client_for("Manager")
    edit_url = f"/customerview/edit/{world.customer1}"
    form_html = client.get(edit_url).get_data(as_text=True)
    data = form_values(form_html, "phone")
    assert data["phone"] == old_phone
    assert data["referred_by"] == ""  # the AJAX select: an id or empty
    data["phone"] = new_phone
    started = datetime.now(timezone.utc).replace(tzinfo=None) - timedelta(seconds=5)

    response = client.post(edit_url, data=data)
    assert response.status_code == 302, response.get_data(as_text=True)[:2000]

    with app.app_context():
        assert db.session.get(Customer, world.customer1).phone == new_phone
        versions = _versions(Customer, world.customer1)
        assert len(versions) >= 2
        latest, previous = versions[-1], versions[-2]
        assert latest.phone == new_phone
        assert previous.phone == old_phone, "the version before the edit holds the old phone"
        assert latest.changeset["phone"] == [old_phone, new_phone]
        assert latest.operation_type == 1  # update

        transaction = db.session.get(transaction_class(Customer), latest.transaction_id)
        assert transaction.user_id == _user_id("manager") == world.user_manager
        assert transaction.user_id != _user_id("system")
        assert transaction.issued_at is not None
        assert transaction.issued_at >= started
        assert transaction.remote_addr  # the request's address


def test_rejected_edit_writes_no_version(app, client_for, world):
    """Bad input stores nothing — not even a version row."""
    from app.extensions import db
    from app.models import Customer

    with app.app_context():
        before = len(_versions(Customer, world.customer1))
        original = db.session.get(Customer, world.customer1).phone
    client = client_for("Manager")
    edit_url = f"/customerview/edit/{world.customer1}"
    data = form_values(client.get(edit_url).get_data(as_text=True), "phone")
    data["phone"] = "+49 30 9999999"
    data["emoji_marker"] = "⭐" * 9
    response = client.post(edit_url, data=data, follow_redirects=True)
    assert "Höchstens 8 Zeichen." in response.get_data(as_text=True)
    with app.app_context():
        assert len(_versions(Customer, world.customer1)) == before
        assert db.session.get(Customer, world.customer1).phone == original


def test_forged_post_without_csrf_changes_nothing(app, client_for, world):
    from app.extensions import db
    from app.models import Customer

    client = client_for("Manager")
    edit_url = f"/customerview/edit/{world.customer1}"
    data = form_values(client.get(edit_url).get_data(as_text=True), "phone")
    data.pop("csrf_token")
    data["phone"] = "+49 30 6666666"
    with app.app_context():
        before = len(_versions(Customer, world.customer1))
    response = client.post(edit_url, data=data)
    assert response.status_code == 400  # CSRFProtect refuses before the view runs
    with app.app_context():
        assert db.session.get(Customer, world.customer1).phone != "+49 30 6666666"
        assert len(_versions(Customer, world.customer1)) == before


def test_change_outside_a_request_is_attributed_to_system(app, world):
    from app.extensions import db
    from app.jobs.base import acting_as
    from app.models import Customer

    with app.app_context():
        with acting_as():
            customer = Customer(first_name="Jonas", last_name="Job", email="jonas.job@example.org")
            db.session.add(customer)
            db.session.commit()
            customer.notes = "vom Job geändert"
            db.session.commit()
            pk = customer.id
        versions = _versions(Customer, pk)
        assert [v.operation_type for v in versions] == [0, 1]  # insert, update
        assert versions[0].notes is None and versions[1].notes == "vom Job geändert"
        transaction_cls = transaction_class(Customer)
        system_id = _user_id("system")
        for version in versions:
            transaction = db.session.get(transaction_cls, version.transaction_id)
            assert transaction.user_id == system_id
            assert transaction.issued_at is not None
            assert transaction.remote_addr is None  # no request behind it


def test_acting_as_unknown_user_fails(app, world):
    from app.jobs.base import acting_as

    with app.app_context(), pytest.raises(RuntimeError, match="missing"):
        with acting_as("gibt-es-nicht"):
            pass


def test_acting_as_restores_previous_user(app, world):
    from flask import g

    from app.jobs.base import acting_as

    with app.app_context():
        g.user = None
        with acting_as() as user:
            assert g.user is user and user.username == "system"
        assert g.user is None


# Rows that are no business data, so no history: each with its reason.
UNVERSIONED = {
    "CalendarFeed": "holds only the hash of a secret ICS token; a history would keep revoked hashes",
    "ExportFile": "a temporary download of rows that are themselves versioned",
    "CustomerMerge": "the record of a merge (itself audit data; the merged rows are versioned)",
    "CustomerErasure": "the record of an erasure: who and when, never what (a history would add nothing)",
    "InvoiceCounter": "the last invoice number of a year; the issued invoices carry and version their numbers",
    "BookingReminder": "the claim that a booking's time was reminded; the NotificationLog it points to is versioned",
}


def test_every_domain_model_is_versioned(app):
    import app.models as models
    from app.extensions import db

    assert models.__all__
    for name in sorted(set(models.__all__) - set(UNVERSIONED)):
        model = getattr(models, name)
        cls = version_class(model)
        assert cls is not model, f"{name} is not versioned"
        assert cls.__table__.name == f"{model.__tablename__}_version", name
        assert {"transaction_id", "operation_type"} <= set(cls.__table__.columns.keys()), name
        # the version table exists in the migrated database
        with app.app_context():
            db.session.execute(sa.select(sa.func.count()).select_from(cls.__table__)).scalar_one()
        assert transaction_class(model).__tablename__ == "transaction"


def test_a_model_without_versioning_has_no_version_class(app):
    from flask_appbuilder.security.sqla.models import User

    with pytest.raises(ClassNotVersioned):
        version_class(User)


def test_every_app_model_is_exported_and_versioned(app):
    """A model added to app/models without `__versioned__` (or without being
    exported) fails here."""
    from flask_appbuilder import Model
    from sqlalchemy_continuum import versioning_manager

    import app.models as models

    version_classes = set(versioning_manager.version_class_map.values())
    ours = {
        mapper.class_ for mapper in Model.registry.mappers
        if mapper.class_.__module__.startswith("app.models")
        and mapper.class_ not in version_classes
        and mapper.class_ is not versioning_manager.transaction_cls
    }
    assert ours, "no app models found"
    assert {cls.__name__ for cls in ours} == set(models.__all__)
    for cls in ours:
        assert ("__versioned__" in cls.__dict__) is (cls.__name__ not in UNVERSIONED), cls.__name__


def test_a_new_row_never_inherits_a_deleted_rows_history(app, world):
    """Versions are keyed by id: the id of a deleted row must never be handed out
    again (SQLite reuses the highest rowid unless the table has AUTOINCREMENT)."""
    from app.extensions import db
    from app.jobs.base import acting_as
    from app.models import Customer

    with app.app_context(), acting_as():
        gone = Customer(first_name="Gelöscht", last_name="Zuletzt")
        db.session.add(gone)
        db.session.commit()
        gone_id = gone.id
        db.session.delete(gone)
        db.session.commit()
        fresh = Customer(first_name="Neu", last_name="Danach")
        db.session.add(fresh)
        db.session.commit()
        assert fresh.id != gone_id
        assert [v.operation_type for v in _versions(Customer, fresh.id)] == [0]
        assert [v.operation_type for v in _versions(Customer, gone_id)] == [0, 2]  # insert, delete
        assert _versions(Customer, gone_id)[-1].first_name == "Gelöscht"
