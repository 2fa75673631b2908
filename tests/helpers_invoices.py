"""Clean-up of test invoices. An issued invoice can never be deleted (ORM guard and database
triggers, migration e5f6a7b8c9d0): tests that create one remove it with `delete_invoices`, which
switches the triggers off inside the clean-up transaction and deletes with plain SQL."""
from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.models import Invoice


def _triggers_off(connection) -> list[str]:
    """Switch the immutability triggers off for the clean-up (issued invoices can never be
    deleted otherwise); returns what _triggers_on needs to switch them on again."""
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql("ALTER TABLE invoice DISABLE TRIGGER invoice_immutable")
        connection.exec_driver_sql("ALTER TABLE invoice_line DISABLE TRIGGER invoice_line_immutable")
        return []
    rows = connection.exec_driver_sql(
        "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND name LIKE 'invoice%immutable%'").all()
    for name, _sql in rows:
        connection.exec_driver_sql(f"DROP TRIGGER {name}")
    return [sql for _name, sql in rows]


def _triggers_on(connection, saved: list[str]) -> None:
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql("ALTER TABLE invoice ENABLE TRIGGER invoice_immutable")
        connection.exec_driver_sql("ALTER TABLE invoice_line ENABLE TRIGGER invoice_line_immutable")
        return
    for sql in saved:
        connection.exec_driver_sql(sql)


def delete_invoices(session: Session, ids: list[int]) -> None:
    """Delete the invoices `ids` (any status), their lines, Storno invoices and history rows;
    the caller commits. Test clean-up only: the app itself never deletes an issued invoice."""
    if not ids:
        return
    metadata = Invoice.__table__.metadata
    connection = session.connection()
    invoice = metadata.tables["invoice"]
    ids = list(ids) + list(connection.scalars(sa.select(invoice.c.id).where(invoice.c.cancels_id.in_(ids))))
    saved = _triggers_off(connection)
    try:
        for name in ("invoice_line", "invoice_line_version"):
            table = metadata.tables[name]
            connection.execute(sa.delete(table).where(table.c.invoice_id.in_(ids)))
        connection.execute(sa.delete(invoice).where(invoice.c.id.in_(ids), invoice.c.cancels_id.is_not(None)))
        connection.execute(sa.delete(invoice).where(invoice.c.id.in_(ids)))
        version = metadata.tables["invoice_version"]
        connection.execute(sa.delete(version).where(version.c.id.in_(ids)))
    finally:
        _triggers_on(connection, saved)
    session.expire_all()
