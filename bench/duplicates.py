"""Duplicate candidate search at 100,000 customers (issue 4, point 3).

    .venv/bin/python bench/duplicates.py                       # SQLite file, 100,000 customers
    .venv/bin/python bench/duplicates.py --postgres-url postgresql://postgres@127.0.0.1:5432/postgres
    .venv/bin/python bench/duplicates.py --customers 20000 --rounds 1

Generates --customers customers into a fresh database (SQLite: a temporary file;
PostgreSQL: the database `tb_bench_duplicates`, dropped afterwards): German first and
last names drawn Zipf-like from common names (with their spelling variants: Meyer/Maier/
Mayr, Müller/Mueller, Schmidt/Schmitt …) plus generated rare surnames; --dup-rate of
them are second records of an earlier customer (umlaut spelt out, phonetic variant,
first/last name swapped, e-mail in other case, phone in another format, initial only),
--family-rate share a phone with a relative of another first name.

Times `candidate_pairs()` (median of --rounds), next to a bare SQL baseline measured in
the same run: the GROUP BY on the normalized e-mail (lower/trim) plus the GROUP BY on
the phone column — the exact-match part a database alone can do — and the one SELECT of
the columns the search loads. Prints the ratio and how many planted duplicates were
found (recall). Target: ≤ 10 s for 100,000 customers.
"""
from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from pathlib import Path

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import fresh_app, on_fresh_database

PG_DATABASE = "tb_bench_duplicates"

FIRST_NAMES = [
    "Anna", "Maria", "Ursula", "Monika", "Petra", "Elisabeth", "Sabine", "Renate", "Helga", "Karin",
    "Brigitte", "Ingrid", "Erika", "Andrea", "Gisela", "Claudia", "Susanne", "Gabriele", "Christa", "Christine",
    "Hildegard", "Stefanie", "Julia", "Katrin", "Nicole", "Sandra", "Jürgen", "Thomas", "Michael", "Andreas",
    "Peter", "Wolfgang", "Klaus", "Stefan", "Stephan", "Christian", "Uwe", "Werner", "Hans", "Frank", "Bernd",
    "Jörg", "Dieter", "Horst", "Manfred", "Günter", "Matthias", "Alexander", "Martin", "Markus", "Ralf",
    "Sven", "Tobias", "Florian", "Lukas", "Jonas", "Felix", "Leon", "Paul", "Emma", "Mia", "Lena", "Lea",
    "Sophie", "Hannah", "Laura", "Lara", "Lisa", "Marie", "Greta", "Ida", "Frieda", "Mathilda", "Theo",
    "Konstantin", "Friedrich", "Ottilie", "Waltraud", "Rosalinde", "Gottfried", "Björn", "Jens", "Heike",
]
LAST_NAMES = [
    "Müller", "Schmidt", "Schneider", "Fischer", "Weber", "Meyer", "Wagner", "Becker", "Schulz", "Hoffmann",
    "Schäfer", "Koch", "Bauer", "Richter", "Klein", "Wolf", "Schröder", "Neumann", "Schwarz", "Zimmermann",
    "Braun", "Krüger", "Hofmann", "Hartmann", "Lange", "Schmitt", "Werner", "Schmitz", "Krause", "Meier",
    "Lehmann", "Schmid", "Schulze", "Maier", "Köhler", "Herrmann", "König", "Walter", "Mayer", "Huber",
    "Kaiser", "Fuchs", "Peters", "Lang", "Scholz", "Möller", "Weiß", "Jung", "Hahn", "Schubert", "Vogel",
    "Friedrich", "Keller", "Günther", "Frank", "Berger", "Winkler", "Roth", "Beck", "Lorenz", "Baumann",
    "Franke", "Albrecht", "Schuster", "Simon", "Ludwig", "Böhm", "Winter", "Kraus", "Martin", "Schumacher",
    "Krämer", "Vogt", "Stein", "Jäger", "Otto", "Sommer", "Groß", "Seidel", "Heinrich", "Brandt", "Haas",
    "Schreiber", "Graf", "Schulte", "Dietrich", "Ziegler", "Kuhn", "Kühn", "Pohl", "Engel", "Horn", "Busch",
    "Bergmann", "Thomas", "Voigt", "Sauer", "Arnold", "Wolff", "Pfeiffer", "Mayr", "Meyr", "Strauß",
]
SYLLABLES_A = ["Brand", "Wald", "Ober", "Unter", "Eichen", "Linden", "Rosen", "Stein", "Holz", "Feld", "Berg",
               "Wasser", "Sonnen", "Kirch", "Mühl", "Hagen", "Schnee", "Eisen", "Gold", "Silber", "Tannen",
               "Birken", "Fichten", "Buchen", "Kessel", "Hammer", "Nagel", "Pfann", "Kraut", "Vogel"]
SYLLABLES_B = ["stätter", "huber", "mann", "bauer", "meier", "müller", "schmied", "hofer", "berger", "thaler",
               "wirth", "gruber", "reiter", "steiner", "felder", "holzer", "mayr", "hauser", "brunner", "acker",
               "bichler", "lechner", "moser", "pichler", "egger", "wimmer", "fink", "heim", "rath", "wald"]
MIDDLE = ["", "", "", "en", "er", "el", "ing", "s"]
ENDINGS = ["", "", "", "s", "er", "inger"]
# Share of customers with one of the common LAST_NAMES (Zipf-weighted: Müller ≈ 1.8 % of
# all customers, several times its real share — the blocks are larger than in life).
COMMON_SHARE = 0.2
SPELL_OUT = str.maketrans({"ä": "ae", "ö": "oe", "ü": "ue", "ß": "ss", "Ä": "Ae", "Ö": "Oe", "Ü": "Ue"})
PHONETIC_VARIANTS = {"Meyer": "Maier", "Maier": "Mayr", "Mayer": "Meier", "Meier": "Meyer", "Schmidt": "Schmitt",
                     "Schmitt": "Schmid", "Schmid": "Schmidt", "Stefan": "Stephan", "Katrin": "Catrin",
                     "Hoffmann": "Hofmann", "Hofmann": "Hoffmann", "Wolf": "Wolff", "Wolff": "Wolf"}


def zipf_weights(n: int, s: float = 1.0) -> list[float]:
    return [1 / (rank + 1) ** s for rank in range(n)]


def phone_number(rng: random.Random) -> tuple[str, str]:
    area = rng.choice(["30", "40", "89", "221", "69", "711", "211", "231", "201", "421", "511", "351", "341"])
    subscriber = str(rng.randint(1000000, 99999999))
    return area, subscriber


def phone_formats(area: str, subscriber: str) -> list[str]:
    return [f"0{area} {subscriber}", f"+49 {area} {subscriber}", f"0{area}/{subscriber}",
            f"+49 (0){area} {subscriber[:3]} {subscriber[3:]}", f"0049{area}{subscriber}"]


def generate(count: int, dup_rate: float, family_rate: float, seed: int = 7) -> tuple[list[dict], set[tuple]]:
    """`count` customer rows and the set of planted duplicate pairs (indexes, low < high)."""
    rng = random.Random(seed)
    first_w, last_w = zipf_weights(len(FIRST_NAMES), 0.5), zipf_weights(len(LAST_NAMES), 0.8)
    rows: list[dict] = []
    planted: set[tuple[int, int]] = set()
    phones: list[tuple[str, str]] = []
    used_emails: set[str] = set()
    for i in range(count):
        if rows and rng.random() < dup_rate:
            j = rng.randrange(len(rows))
            original, (area, subscriber) = rows[j], phones[j]
            first, last = original["first_name"], original["last_name"]
            variant = rng.randrange(5)
            if variant == 0:
                first, last = first.translate(SPELL_OUT), last.translate(SPELL_OUT)
            elif variant == 1:
                last = PHONETIC_VARIANTS.get(last, last + "e")
                first = PHONETIC_VARIANTS.get(first, first)
            elif variant == 2:
                first, last = last, first
            elif variant == 3:
                first = first[0] + "."
            row = {"first_name": first, "last_name": last, "email": None, "phone": None}
            shouted = original["email"].upper() if original["email"] else None
            original_email_used = bool(shouted) and shouted not in used_emails and rng.random() < 0.5
            if original_email_used:
                row["email"] = shouted  # the unique column is case-sensitive
                used_emails.add(shouted)
            if not original_email_used or rng.random() < 0.5:
                row["phone"] = rng.choice(phone_formats(area, subscriber))
            rows.append(row)
            phones.append((area, subscriber))
            planted.add((j, i))
            continue
        first = rng.choices(FIRST_NAMES, first_w)[0]
        if rng.random() < COMMON_SHARE:
            last = rng.choices(LAST_NAMES, last_w)[0]
        else:  # the long tail: rare compound names ("Brandstätter", "Eichenhuberer" …)
            last = rng.choice(SYLLABLES_A) + rng.choice(MIDDLE) + rng.choice(SYLLABLES_B) + rng.choice(ENDINGS)
        area, subscriber = phone_number(rng)
        if rows and rng.random() < family_rate:  # a relative: same phone, other first name
            j = rng.randrange(len(rows))
            area, subscriber = phones[j]
            last = rows[j]["last_name"]
        email = f"{first.translate(SPELL_OUT).lower()}.{last.translate(SPELL_OUT).lower()}.{i}@example.org"
        rows.append({
            "first_name": first, "last_name": last,
            "email": email if rng.random() < 0.8 else None,
            "phone": rng.choice(phone_formats(area, subscriber)) if rng.random() < 0.85 else None,
        })
        phones.append((area, subscriber))
    return rows, planted


def seed(flask_app, rows: list[dict]) -> list[int]:
    from app.extensions import db
    from app.models import Customer

    with flask_app.app_context():
        table = Customer.__table__
        with db.engine.begin() as conn:
            for start in range(0, len(rows), 5000):
                conn.execute(sa.insert(table), [{**row, "country": "DE"} for row in rows[start:start + 5000]])
            ids = list(conn.scalars(sa.select(table.c.id).order_by(table.c.id)))
    return ids


def timed(func, rounds: int) -> tuple[float, float, object]:
    """(median wall seconds, median CPU seconds of this process, result): the CPU time shows
    the work when other processes share the cores."""
    walls, cpus, result = [], [], None
    for _ in range(rounds):
        wall, cpu = time.perf_counter(), time.process_time()
        result = func()
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return statistics.median(walls), statistics.median(cpus), result


def run(url: str, label: str, args) -> None:
    from app.extensions import db
    from app.models import Customer
    from app.services.duplicates import candidate_pairs, load_people

    flask_app = fresh_app(url)
    rows, planted = generate(args.customers, args.dup_rate, args.family_rate)
    start = time.perf_counter()
    ids = seed(flask_app, rows)
    seed_s = time.perf_counter() - start
    email = sa.func.lower(sa.func.trim(Customer.email))

    def baseline():
        by_email = db.session.execute(sa.select(email, sa.func.count()).where(Customer.email.isnot(None))
                                      .group_by(email).having(sa.func.count() > 1)).all()
        by_phone = db.session.execute(sa.select(Customer.phone, sa.func.count()).where(Customer.phone.isnot(None))
                                      .group_by(Customer.phone).having(sa.func.count() > 1)).all()
        return len(by_email) + len(by_phone)

    with flask_app.app_context():
        base_s, _, groups = timed(baseline, args.rounds)
        load_s, load_cpu, people = timed(lambda: load_people(db.session), args.rounds)
        db.session.rollback()
        search_s, search_cpu, found = timed(lambda: candidate_pairs(db.session), args.rounds)
    pairs = {(c.low_id, c.high_id) for c in found}
    hits = sum((ids[low], ids[high]) in pairs for low, high in planted)
    print(f"{label}: {len(rows):,} customers seeded in {seed_s:.1f} s; {len(planted):,} planted duplicates; "
          f"load average {Path('/proc/loadavg').read_text().split()[0] if Path('/proc/loadavg').exists() else '?'}")
    print(f"  baseline SQL (GROUP BY lower(trim(email)), GROUP BY phone): {base_s * 1000:.0f} ms, {groups:,} groups")
    print(f"  load (one SELECT of the needed columns, normalize, phonetic codes): {load_s:.2f} s "
          f"(CPU {load_cpu:.2f} s, {len(people):,} rows)")
    print(f"  candidate_pairs: {search_s:.2f} s (CPU {search_cpu:.2f} s; median of {args.rounds}), "
          f"{len(found):,} pairs; ratio to baseline {search_s / base_s:.0f}x; planted found {hits:,}/{len(planted):,} "
          f"({hits / max(len(planted), 1):.0%}); target <= 10 s: {'met' if search_s <= 10 else 'MISSED'}")
    with flask_app.app_context():
        db.session.remove()
        db.engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--dup-rate", type=float, default=0.03)
    parser.add_argument("--family-rate", type=float, default=0.02)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--postgres-url", help="admin URL of a PostgreSQL server (else SQLite)")
    args = parser.parse_args()
    on_fresh_database(args.postgres_url, PG_DATABASE, "tb-bench-dup-", lambda url, label: run(url, label, args))


if __name__ == "__main__":
    main()
