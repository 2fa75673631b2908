"""The customer map with 10,000 geocoded customers: server render of the frame, its size,
and the time until the map is interactive in headless Chromium.

    .venv/bin/python bench/map_page.py [--customers 10000] [--rounds 20] [--browser-rounds 5]
                                       [--postgres-url postgresql://postgres@127.0.0.1:5432/postgres]

Seeded with Core inserts on a fresh database (migrations, `flask init`): the demo's two
locations, one service per category, six employees, `--customers` customers spread a few
hundred metres around the demo's postcode centroids (app/demo.py Planner.position: 10 %
"approx"), three bookings each (two past, one future for 60 %), a pass card for every tenth.
1. server: `/karte/frame?color=category` through the Flask test client logged in as the Owner,
   median of `--rounds` after two warm-up requests (targets: median <= 500 ms, HTML with the
   data <= 2 MB); beside it in the same run the map's SELECT alone (fetch all rows), the
   marker rows built from it, and folium's render of them.
2. browser: the app served by werkzeug in a thread; headless Chromium (/usr/bin/chromium,
   through Playwright's `executable_path`, tiles blocked) opens `/karte/` as the Owner; the
   time from navigation until the first cluster icon in the iframe is visible and the main
   thread is free again (target <= 3 s), median of `--browser-rounds`.
SQLite on a temporary file, PostgreSQL in a throw-away database.
"""
from __future__ import annotations

import argparse
import logging
import random
import re
import statistics
import sys
import threading
import time
from datetime import timedelta
from pathlib import Path

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import fresh_app, on_fresh_database

PG_DATABASE = "tb_bench_map_page"
OWNER, PASSWORD = "bench-owner", "Bench-Passwort-123"
CHROMIUM = "/usr/bin/chromium"
FRAME = "/karte/frame?color=category"
CSRF_RE = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')
# In every frame (the iframe too): when the first cluster icon is in the DOM, then when the
# main thread is free again (the next task after the clustering).
FIRST_CLUSTER_JS = """
new MutationObserver(function (mutations, observer) {
  if (document.querySelector('.marker-cluster')) {
    window.__tbClusterAt = performance.now();
    observer.disconnect();
    setTimeout(function () { window.__tbIdleAt = performance.now(); }, 0);
  }
}).observe(document, {childList: true, subtree: true});
"""


def seed(flask_app, count: int) -> None:
    from app.demo import LOCATION_ADDRESSES, REGIONS, Planner
    from app.extensions import db
    from app.models import (
        Booking,
        BookingStatus,
        Customer,
        Employee,
        Location,
        PassCard,
        PassCardType,
        Service,
    )
    from app.models.services import SERVICE_CATEGORIES
    from app.models.types import utcnow

    rng = random.Random(7)
    sm = flask_app.appbuilder.sm
    sm.add_user(OWNER, "Bench", "Owner", "bench-owner@example.org", sm.find_role("Owner"), password=PASSWORD)
    now = utcnow()
    locations = [Location(name=f"Filiale {index + 1}", street=street, postal_code=plz, city=city, lat=lat, lon=lon)
                 for index, (street, plz, city, lat, lon) in enumerate(LOCATION_ADDRESSES)]
    services = [Service(name=f"Benchmark {key}", category=key, duration_minutes=30, price=20)
                for key in SERVICE_CATEGORIES]
    employees = [Employee(first_name=f"Mitarbeiterin{n}", last_name="Bench", location=locations[n % len(locations)])
                 for n in range(6)]
    card_type = PassCardType(name="Benchmark 10er", units=10, price=180)
    db.session.add_all([*locations, *services, *employees, card_type])
    db.session.commit()
    weights = [region[4] for region in REGIONS]
    rows = []
    for n in range(count):
        plz, city, lat, lon, _weight = rng.choices(REGIONS, weights=weights)[0]
        lat, lon, status = Planner.position(rng, lat, lon)
        rows.append({"first_name": rng.choice(["Anna", "Jonas", "Mia", "Lukas", "Lea", "Finn"]),
                     "last_name": f"Kundin{n}", "street": f"Benchstraße {n % 180 + 1}", "postal_code": plz,
                     "city": city, "country": "DE", "language": "de", "lat": lat, "lon": lon,
                     "geocode_status": status, "geocoded_at": now, "created_at": now,
                     "emoji_marker": "⭐" if n % 40 == 0 else None, "consent_email": False, "consent_sms": False})
    db.session.execute(sa.insert(Customer.__table__), rows)
    ids = db.session.scalars(sa.select(Customer.id).order_by(Customer.id)).all()
    confirmed = db.session.scalar(sa.select(BookingStatus.id).where(BookingStatus.kind == "confirmation"))
    slots = [0] * len(employees)  # one hour per booking and employee: no overlap (the double-booking trigger)
    bookings = []
    for n, customer_id in enumerate(ids):
        for future in (False, False, n % 5 < 3):
            e = rng.randrange(len(employees))
            slots[e] += 1
            start = (now + timedelta(days=1) if future else now - timedelta(days=400)) + timedelta(hours=slots[e])
            service = rng.choice(services)
            bookings.append({
                "customer_id": customer_id, "service_id": service.id, "employee_id": employees[e].id,
                "location_id": employees[e].location_id, "status_id": confirmed, "start_at": start,
                "end_at": start + timedelta(minutes=30), "price": 20, "source": "backoffice", "reminder": False,
                "created_at": now, "hours_override": False, "cancelled": False, "shared_slot": False})
    db.session.execute(sa.insert(Booking.__table__), bookings)
    db.session.execute(sa.insert(PassCard.__table__), [
        {"type_id": card_type.id, "customer_id": customer_id, "units_total": 10, "units_used": n % 10,
         "price": 180, "purchased_at": now} for n, customer_id in enumerate(ids[::10])])
    db.session.commit()


def login(client) -> None:
    token = CSRF_RE.search(client.get("/login/").get_data(as_text=True)).group(1)
    response = client.post("/login/", data={"username": OWNER, "password": PASSWORD, "csrf_token": token})
    assert response.status_code == 302, "bench login failed"


def timed(func, rounds: int) -> tuple[float, object]:
    times, result = [], None
    for _ in range(rounds):
        start = time.perf_counter()
        result = func()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def server_numbers(flask_app, rounds: int) -> dict:
    from app.extensions import db
    from app.jobs.base import acting_as
    from app.models.types import utcnow
    from app.services import customer_map as service
    from app.views import map as view

    client = flask_app.test_client()
    login(client)
    for _ in range(2):
        client.get(FRAME)

    def frame():
        response = client.get(FRAME)
        assert response.status_code == 200
        return response.get_data()

    render, html = timed(frame, rounds)

    def heat():
        response = client.get(f"{FRAME}&heat=1")
        assert response.status_code == 200
        return response.get_data()

    heat_render, heat_html = timed(heat, max(rounds // 4, 1))
    filters = service.MapFilters(color_by="category")
    with flask_app.test_request_context(FRAME), acting_as(OWNER):
        now = utcnow()
        locations = service.location_rows(db.session)
        statement = service.map_statement(filters, now, True)
        sql, rows = timed(lambda: db.session.execute(statement).all(), rounds)
        data_time, data = timed(lambda: service.map_data(db.session, filters, now, locations, True), rounds)
        parsed = view.MapRequest(color_by="category")
        folium_time, _html = timed(lambda: view.render_map(data, parsed, locations, True), rounds)
    payload = len(service.to_script_json(data.rows).encode())
    return {"render": render, "bytes": len(html), "payload": payload, "heat": heat_render,
            "heat_bytes": len(heat_html), "sql": sql, "rows": len(rows),
            "markers": data.shown, "data": data_time, "folium": folium_time}


def browser_numbers(flask_app, rounds: int) -> dict | None:
    from playwright.sync_api import sync_playwright
    from werkzeug.serving import make_server

    if not Path(CHROMIUM).exists():
        print(f"  browser: {CHROMIUM} missing; skipped")
        return None
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no line per request
    server = make_server("127.0.0.1", 0, flask_app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.server_port}"
    results: dict[str, list[float]] = {"wall": [], "cluster": [], "idle": [], "html": []}
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
            context = browser.new_context(viewport={"width": 1300, "height": 900})
            context.add_init_script(FIRST_CLUSTER_JS)
            tile_host = re.escape(urlsplit_host(flask_app.config["MAP_TILES_URL"]))
            context.route(re.compile(rf"^https?://{tile_host}/"), lambda route: route.abort())
            page = context.new_page()
            page.goto(f"{base}/login/")
            page.fill("#username", OWNER)
            page.fill("#password", PASSWORD)
            with page.expect_navigation():
                page.click("[type=submit]")
            for n in range(rounds + 1):
                start = time.perf_counter()
                page.goto(f"{base}/karte/?color=category", wait_until="commit")
                frame = page.frame_locator("iframe.tb-map-frame")
                frame.locator(".marker-cluster").first.wait_for(state="visible", timeout=30_000)
                inner = next(f for f in page.frames if "/karte/frame" in f.url)
                inner.wait_for_function("window.__tbIdleAt !== undefined", timeout=30_000)
                wall = time.perf_counter() - start
                timing = inner.evaluate("""() => ({cluster: window.__tbClusterAt, idle: window.__tbIdleAt,
                    html: performance.getEntriesByType('navigation')[0].responseEnd})""")
                if n == 0:
                    continue  # warm-up: the browser's cache of the static files
                results["wall"].append(wall)
                results["cluster"].append(timing["cluster"] / 1000)
                results["idle"].append(timing["idle"] / 1000)
                results["html"].append(timing["html"] / 1000)
            browser.close()
    finally:
        server.shutdown()
    return {key: statistics.median(values) for key, values in results.items()}


def urlsplit_host(url: str) -> str:
    from urllib.parse import urlsplit

    return urlsplit(url.replace("{s}", "a")).hostname or "tile.invalid"


def bench(url: str, label: str, customers: int, rounds: int, browser_rounds: int) -> None:
    from app.extensions import db

    flask_app = fresh_app(url)
    flask_app.config["GEOCODER_URL"] = None  # the benchmark's addresses are made up: no geocoding jobs
    with flask_app.app_context():
        start = time.perf_counter()
        seed(flask_app, customers)
        seeded = time.perf_counter() - start
    numbers = server_numbers(flask_app, rounds)
    print(f"{label}: {customers} customers ({numbers['markers']} with coordinates, seeded in {seeded:.1f} s), "
          f"median of {rounds}")
    print(f"  frame render   {numbers['render'] * 1000:7.1f} ms  (target <= 500 ms)   "
          f"HTML {numbers['bytes'] / 1e6:.2f} MB, marker JSON {numbers['payload'] / 1e6:.2f} MB (target <= 2 MB)")
    print(f"  with heat=1    {numbers['heat'] * 1000:7.1f} ms   HTML {numbers['heat_bytes'] / 1e6:.2f} MB")
    print(f"  SQL alone      {numbers['sql'] * 1000:7.1f} ms  ({numbers['rows']} rows)   "
          f"ratio frame / SQL {numbers['render'] / numbers['sql']:.1f}x")
    print(f"  rows + Python  {numbers['data'] * 1000:7.1f} ms   folium render {numbers['folium'] * 1000:6.1f} ms")
    if browser_rounds:
        browser = browser_numbers(flask_app, browser_rounds)
        if browser is not None:
            print(f"  Chromium /karte/ -> first cluster visible + idle {browser['wall'] * 1000:7.0f} ms "
                  f"(target <= 3000 ms), median of {browser_rounds}; inside the iframe: HTML loaded "
                  f"{browser['html'] * 1000:.0f} ms, first cluster {browser['cluster'] * 1000:.0f} ms, "
                  f"idle {browser['idle'] * 1000:.0f} ms")
    with flask_app.app_context():
        db.engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--browser-rounds", type=int, default=5)
    parser.add_argument("--postgres-url")
    args = parser.parse_args()
    on_fresh_database(args.postgres_url, PG_DATABASE, "tb-bench-map-",
                      lambda url, label: bench(url, label, args.customers, args.rounds, args.browser_rounds))


if __name__ == "__main__":
    main()
