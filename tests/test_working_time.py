"""Working hours and absences as a rule for booking writes (app/services/working_time.py),
the Manager/Owner override (audited in booking_version), and the free-slots endpoint
of the booking form.

Everything here lives in 2034 so the session-wide world (2030) and other modules
do not interfere; dates are built in Europe/Berlin and converted (DST-safe)."""
from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from tests.conftest import ROLE_USERS, temporary_booking
from tests.helpers_perm import api_token, bearer, pop_flashes, session_csrf

BERLIN = ZoneInfo("Europe/Berlin")
UTC = timezone.utc
MONDAY = date(2034, 6, 5)  # summer time (UTC+2)
SATURDAY = MONDAY + timedelta(days=5)
AFTER_SPRING = date(2034, 3, 27)  # the Monday after the spring DST change (Sunday 26 March)
OVERRIDE = "Außerhalb der Arbeitszeit/Abwesenheit trotzdem buchen"
OVERRIDE_REFUSED = ("Nur Manager:innen und Inhaber:innen dürfen außerhalb der Arbeitszeit oder während "
                    "einer Abwesenheit buchen.")


def local(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute), tzinfo=BERLIN).astimezone(UTC)


def form_time(day: date, hour: int, minute: int = 0) -> str:
    return f"{datetime.combine(day, time(hour, minute)):%Y-%m-%d %H:%M:%S}"


@pytest.fixture(scope="module")
def wt(app, world):
    """Wanda: Mon–Fri 09:00–12:00 and 13:00–17:00, plus Tuesday 12:00–13:00 (adjacent
    blocks); an absence of Eva Eins (employee1, Mon–Fri 9–18) on Wednesday."""
    from app.extensions import db
    from app.jobs.base import acting_as
    from app.models import Absence, Employee, WorkingHours

    with app.app_context(), acting_as():
        wanda = Employee(first_name="Wanda", last_name="Werktag", location_id=world.location)
        db.session.add(wanda)
        for weekday in range(5):
            db.session.add_all([
                WorkingHours(employee=wanda, weekday=weekday, start_time=time(9), end_time=time(12)),
                WorkingHours(employee=wanda, weekday=weekday, start_time=time(13), end_time=time(17)),
            ])
        db.session.add(WorkingHours(employee=wanda, weekday=1, start_time=time(12), end_time=time(13)))
        wednesday = MONDAY + timedelta(days=2)
        absence = Absence(employee_id=world.employee1, kind="vacation", start_at=local(wednesday, 0),
                          end_at=local(wednesday, 14))
        db.session.add(absence)
        db.session.commit()
        return {"wanda": wanda.id, "absence": absence.id}


def count(app, comment: str) -> int:
    from app.extensions import db
    from app.models import Booking

    with app.app_context():
        return db.session.scalar(sa.select(sa.func.count()).select_from(Booking).where(Booking.comment == comment))


def stored(app, comment: str):
    from app.extensions import db
    from app.models import Booking

    with app.app_context():
        return db.session.scalars(sa.select(Booking).where(Booking.comment == comment)).one()


def booking_form(world, start: str, comment: str, **extra) -> dict:
    return {"customer": world.customer1, "service": world.service, "employee": world.employee1,
            "start_at": start, "end_at": "", "source": "backoffice", "reminder": "y", "comment": comment, **extra}


def post(client, url: str, data: dict):
    response = client.post(url, data={**data, "csrf_token": session_csrf(client)})
    return response, [message for _, message in pop_flashes(client)]


def api_payload(world, start: datetime, comment: str, **extra) -> dict:
    return {"customer": world.customer1, "service": world.service, "employee": world.employee1,
            "start_at": start.isoformat(), "end_at": (start + timedelta(hours=1)).isoformat(), "comment": comment,
            **extra}


# --- the rule ----------------------------------------------------------------------
def test_conflict_inside_outside_and_across_blocks(app_ctx, wt):
    from app.extensions import db
    from app.services.working_time import working_time_conflict

    def conflict(day, h1, m1, h2, m2):
        return working_time_conflict(db.session, wt["wanda"], local(day, h1, m1), local(day, h2, m2))

    assert conflict(MONDAY, 9, 0, 10, 0) is None
    assert conflict(MONDAY, 16, 0, 17, 0) is None  # ends exactly at the block end
    assert conflict(MONDAY, 11, 30, 12, 30) == "Wanda Werktag arbeitet am Montag, 05.06.2034 nicht zu dieser Zeit."
    assert conflict(MONDAY, 8, 45, 9, 45) is not None
    assert conflict(MONDAY + timedelta(days=1), 11, 30, 12, 30) is None  # Tuesday: 9–12, 12–13, 13–17 joined
    assert conflict(SATURDAY, 10, 0, 11, 0) == "Wanda Werktag arbeitet am Samstag, 10.06.2034 nicht zu dieser Zeit."
    # a booking over midnight lies in no block
    assert working_time_conflict(db.session, wt["wanda"], local(MONDAY, 16), local(MONDAY + timedelta(days=1), 10))
    assert working_time_conflict(db.session, None, local(SATURDAY, 3), local(SATURDAY, 4)) is None


def test_conflict_on_the_day_after_the_dst_change(app_ctx, wt):
    """09:00 local is 07:00 UTC after the spring change (08:00 UTC the week before)."""
    from app.extensions import db
    from app.services.working_time import working_time_conflict

    nine = local(AFTER_SPRING, 9)
    assert nine == datetime(2034, 3, 27, 7, tzinfo=UTC)
    assert working_time_conflict(db.session, wt["wanda"], nine, nine + timedelta(hours=1)) is None
    early = nine - timedelta(minutes=30)
    assert working_time_conflict(db.session, wt["wanda"], early, early + timedelta(hours=1)) is not None
    week_before = local(AFTER_SPRING - timedelta(days=7), 9)
    assert week_before == datetime(2034, 3, 20, 8, tzinfo=UTC)
    assert working_time_conflict(db.session, wt["wanda"], week_before, week_before + timedelta(hours=1)) is None


def test_absence_conflict_names_the_absence(app_ctx, world, wt):
    from app.extensions import db
    from app.services.working_time import working_time_conflict

    wednesday = MONDAY + timedelta(days=2)
    message = working_time_conflict(db.session, world.employee1, local(wednesday, 13), local(wednesday, 14))
    assert message == "Eva Eins ist vom 07.06.2034 00:00 bis 07.06.2034 14:00 abwesend (Urlaub)."
    assert working_time_conflict(db.session, world.employee1, local(wednesday, 14), local(wednesday, 15)) is None


# --- forms and API ---------------------------------------------------------------------
def test_form_refuses_outside_hours_in_german_and_stores_nothing(app, world, wt, manager):
    comment = "WT Formular außerhalb"
    _response, flashed = post(manager, "/bookingview/add", booking_form(world, form_time(MONDAY, 7), comment))
    assert "Eva Eins arbeitet am Montag, 05.06.2034 nicht zu dieser Zeit." in flashed
    assert count(app, comment) == 0


def test_form_refuses_during_absence(app, world, wt, manager):
    comment = "WT Formular Urlaub"
    wednesday = MONDAY + timedelta(days=2)
    _response, flashed = post(manager, "/bookingview/add", booking_form(world, form_time(wednesday, 10), comment))
    assert "Eva Eins ist vom 07.06.2034 00:00 bis 07.06.2034 14:00 abwesend (Urlaub)." in flashed
    assert count(app, comment) == 0


def test_form_accepts_inside_hours_for_an_employee(app, world, wt, employee):
    comment = "WT Formular innerhalb"
    response, flashed = post(employee, "/bookingview/add", booking_form(world, form_time(MONDAY, 9), comment))
    assert response.status_code == 302, flashed
    booking = stored(app, comment)
    assert booking.start_at == local(MONDAY, 9) and booking.hours_override is False


def test_api_refuses_outside_hours_with_400(app, world, wt):
    comment = "WT API außerhalb"
    headers = bearer(api_token(app, "owner"))
    response = app.test_client().post("/api/v1/booking/", json=api_payload(world, local(SATURDAY, 10), comment),
                                      headers=headers)
    assert response.status_code == 400
    assert response.get_json()["message"] == "Eva Eins arbeitet am Samstag, 10.06.2034 nicht zu dieser Zeit."
    assert count(app, comment) == 0
    inside = api_payload(world, local(MONDAY + timedelta(days=1), 10), comment)
    response = app.test_client().post("/api/v1/booking/", json=inside, headers=headers)
    assert response.status_code == 201, response.get_json()


def test_manager_override_is_stored_and_audited(app, world, wt, manager):
    from sqlalchemy_continuum import transaction_class, version_class

    from app.extensions import db
    from app.models import Booking

    comment = "WT Override Manager"
    assert OVERRIDE in manager.get("/bookingview/add").get_data(as_text=True)
    response, flashed = post(manager, "/bookingview/add",
                             booking_form(world, form_time(SATURDAY, 11), comment, hours_override="y"))
    assert response.status_code == 302, flashed
    booking = stored(app, comment)
    assert booking.hours_override is True and booking.start_at == local(SATURDAY, 11)
    with app.app_context():
        cls = version_class(Booking)
        version = db.session.scalars(sa.select(cls).where(cls.id == booking.id)).one()
        assert version.hours_override is True
        transaction = db.session.get(transaction_class(Booking), version.transaction_id)
        assert transaction.user_id == world.user_manager


def test_employee_cannot_override_by_form_or_api(app, world, wt, employee):
    assert OVERRIDE not in employee.get("/bookingview/add").get_data(as_text=True)
    comment = "WT Override Mitarbeiterin"
    _response, flashed = post(employee, "/bookingview/add",
                              booking_form(world, form_time(SATURDAY, 12), comment, hours_override="y"))
    assert OVERRIDE_REFUSED in flashed
    assert count(app, comment) == 0
    headers = bearer(api_token(app, ROLE_USERS["Employee"]))
    payload = api_payload(world, local(SATURDAY, 12), comment, hours_override=True)
    response = app.test_client().post("/api/v1/booking/", json=payload, headers=headers)
    assert response.status_code == 400
    assert response.get_json()["message"] == OVERRIDE_REFUSED
    assert count(app, comment) == 0
    # inside working hours the flag alone is refused too (it would claim an override)
    payload = api_payload(world, local(MONDAY, 15), comment, hours_override=True)
    assert app.test_client().post("/api/v1/booking/", json=payload, headers=headers).status_code == 400
    assert count(app, comment) == 0


@pytest.fixture()
def saturday_booking(app, world, wt):
    """An old booking of Eva Eins on a Saturday, stored without the screens' checks."""
    with temporary_booking(app, local(SATURDAY - timedelta(days=7), 10), comment="WT Samstag alt") as pk:
        yield pk


def test_status_or_comment_change_of_an_old_booking_outside_hours_is_allowed(app, world, saturday_booking,
                                                                            manager, employee):
    from app.extensions import db
    from app.models import Booking

    pk = saturday_booking
    day = SATURDAY - timedelta(days=7)
    form = booking_form(world, form_time(day, 10), "WT Samstag Kommentar",
                        end_at=form_time(day, 11), status=world.confirmed)
    response, flashed = post(employee, f"/bookingview/edit/{pk}", form)
    assert response.status_code == 302, flashed
    headers = bearer(api_token(app, "owner"))
    response = app.test_client().put(f"/api/v1/booking/{pk}", json={"comment": "WT Samstag API"}, headers=headers)
    assert response.status_code == 200, response.get_json()
    # moving it (still on the Saturday) is a new placement: refused
    response, flashed = post(manager, f"/bookingview/edit/{pk}", {**form, "start_at": form_time(day, 12),
                                                                  "end_at": ""})
    assert "Eva Eins arbeitet am Samstag, 03.06.2034 nicht zu dieser Zeit." in flashed
    with app.app_context():
        booking = db.session.get(Booking, pk)
        assert (booking.start_at, booking.comment) == (local(day, 10), "WT Samstag API")


# --- free slots in the booking form --------------------------------------------------------
def slots_json(client, **args):
    return client.get("/bookingview/slots", query_string=args)


def test_slots_endpoint_returns_free_slots(app, world, wt, manager):
    from app.services.availability import free_slots

    day = MONDAY + timedelta(days=3)
    response = slots_json(manager, service=world.service, employee=wt["wanda"], date=day.isoformat())
    assert response.status_code == 200
    got = response.get_json()["slots"]
    with app.app_context():
        expected = free_slots(world.service, day, day, wt["wanda"])
    assert [slot["utc"] for slot in got] == [slot.start.isoformat() for slot in expected]
    assert got[0]["start"] == form_time(day, 9) and got[0]["label"] == "09:00"
    assert {slot["employee"] for slot in got} == {"Wanda Werktag"}
    assert form_time(day, 12) not in {slot["start"] for slot in got}  # the lunch gap
    # nothing chosen yet: no slots (the form asks once all three are chosen)
    assert slots_json(manager).get_json() == {"slots": []}


def test_slots_endpoint_employee_sees_only_own(app, world, wt, employee, viewer):
    day = MONDAY + timedelta(days=3)
    response = slots_json(employee, service=world.service, employee=world.employee2, date=day.isoformat())
    assert response.status_code == 403
    response = slots_json(employee, service=world.service, date=day.isoformat())
    assert response.status_code == 200
    assert {slot["employee_id"] for slot in response.get_json()["slots"]} == {world.employee1}
    assert slots_json(viewer, service=world.service, date=day.isoformat()).status_code == 403


@pytest.mark.parametrize("args", [
    {"service": "abc", "date": "2034-06-08"},
    {"service": "1", "date": "2034-13-01"},
    {"service": "987654321", "date": "2034-06-08"},
    {"service": "1", "date": "2034-06-08", "days": "99"},
    {"service": "1", "employee": "x", "date": "2034-06-08"},
])
def test_slots_endpoint_bad_input_is_400_in_german(manager, world, args):
    args = {key: (str(world.service) if value == "1" else value) for key, value in args.items()}
    response = slots_json(manager, **args)
    assert response.status_code == 400
    assert response.get_json()["message"].startswith(("Ungültig", "Unbekannte", "Höchstens"))


def test_an_employee_keeps_but_cannot_extend_a_managers_override(app, world, wt, manager, employee):
    """The Employee may edit the comment of a booking the manager placed outside the hours
    (the flag stays); moving it is checked again: the manager's override does not travel."""
    comment = "WT Override bleibt"
    response, flashed = post(manager, "/bookingview/add",
                             booking_form(world, form_time(SATURDAY, 14), comment, hours_override="y"))
    assert response.status_code == 302, flashed
    pk = stored(app, comment).id
    form = booking_form(world, form_time(SATURDAY, 14), comment + " geändert", end_at=form_time(SATURDAY, 15),
                        status=world.confirmed)
    response, flashed = post(employee, f"/bookingview/edit/{pk}", form)
    assert response.status_code == 302, flashed
    assert stored(app, comment + " geändert").hours_override is True
    response, flashed = post(employee, f"/bookingview/edit/{pk}", {**form, "start_at": form_time(SATURDAY, 16),
                                                                   "end_at": ""})
    assert "Eva Eins arbeitet am Samstag, 10.06.2034 nicht zu dieser Zeit." in flashed
    booking = stored(app, comment + " geändert")
    assert (booking.start_at, booking.hours_override) == (local(SATURDAY, 14), True)
