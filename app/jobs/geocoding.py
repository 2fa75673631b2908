"""Geocoding jobs (queue "geocoding": one job at a time over all workers, retried with
back-off — app/jobs/queue.py). They take lists of customer ids, not one id per job: an
address change, a list action or an import are one job each (CHUNK ids at most), so the
queue and the job monitor stay readable and a retry re-asks only what is not found yet.
Never run inside a web request: with Redis a worker runs them; without, the web process's
background thread (INLINE_JOBS "thread"; "sync" in the tests)."""
from __future__ import annotations

import logging
import time
from collections.abc import Sequence

import sqlalchemy as sa
from rq import get_current_job

from app.extensions import db
from app.jobs.base import acting_as
from app.jobs.queue import enqueue_now
from app.models import Customer
from app.services.geocoding import (
    CHUNK,
    JOB,
    QUEUE,
    GeocoderUnreachable,
    address_of,
    chunks,
    geocode_customer,
    needs_geocoding,
    place_approximately,
)

log = logging.getLogger(__name__)
# A job hands the ids left after this many seconds to a new job (RQ's default job timeout is 180 s).
JOB_BUDGET = 120.0


def geocode_customers(ids: Sequence[int]) -> dict[str, int]:
    """Geocode the customers `ids` that still need it (see needs_geocoding), each committed on
    its own; returns the count per status.

    When the geocoder cannot be reached, that customer and every later one of the job are
    placed at their postal code's centroid ("approx") without asking again, then the job
    raises so that RQ retries it (the retry geocodes them exactly). Without an RQ job (inline)
    there is no retry: logged, the customers stay "approx" for the next batch."""
    started = time.monotonic()
    counts: dict[str, int] = {}
    unreachable: GeocoderUnreachable | None = None
    pending = list(dict.fromkeys(int(pk) for pk in ids))
    with acting_as():
        for index, pk in enumerate(pending):
            if index and unreachable is None and time.monotonic() - started > JOB_BUDGET:
                enqueue_now(JOB, pending[index:], queue=QUEUE)
                log.info("geocoding: %d customers handed to a new job", len(pending) - index)
                break
            customer = db.session.get(Customer, pk, populate_existing=True)
            if customer is None or not needs_geocoding(customer):
                db.session.rollback()
                continue
            if unreachable is not None:
                status = place_approximately(customer)
            else:
                try:
                    status = geocode_customer(db.session, customer)
                except GeocoderUnreachable as exc:
                    unreachable, status = exc, exc.status
            db.session.commit()
            counts[status] = counts.get(status, 0) + 1
    if unreachable is not None:
        if get_current_job() is None:
            log.warning("geocoding: %s (no retry without a worker)", unreachable)
        else:
            raise unreachable
    return counts


def missing_customer_ids(retry_not_found: bool = True) -> list[int]:
    """Every customer with an address but without an exact ("ok") position of it; without
    `retry_not_found` not those Nominatim did not find at this very address."""
    stmt = sa.select(Customer.id, Customer.street, Customer.postal_code, Customer.city, Customer.country,
                     Customer.lat, Customer.lon, Customer.geocode_status, Customer.geocoded_address).where(
        Customer.erased_at.is_(None),
        sa.or_(Customer.postal_code.isnot(None), Customer.city.isnot(None)),
    ).order_by(Customer.id)
    found = []
    for row in db.session.execute(stmt):
        address = address_of(row)
        if address is None:
            continue
        if row.geocoded_address == address and (
                (row.geocode_status == "ok" and row.lat is not None and row.lon is not None)
                or (row.geocode_status == "not_found" and not retry_not_found)):
            continue
        found.append(row.id)
    return found


def geocode_missing(retry_not_found: bool = True) -> int:
    """Queue every customer without an exact position (CHUNK ids per job); returns how many.
    For `flask geocode missing`, and for a nightly schedule entry on the default queue with
    `retry_not_found=False` (what was not found stays so until the address is fixed)."""
    ids = missing_customer_ids(retry_not_found)
    db.session.rollback()
    for chunk in chunks(ids, CHUNK):
        enqueue_now(JOB, chunk, queue=QUEUE)
    return len(ids)
