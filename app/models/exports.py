"""Exporte, die im Hintergrund gebaut werden (über der Schwelle `export_async_threshold`)."""
from __future__ import annotations

from datetime import datetime

from flask_appbuilder import Model
from flask_babel import lazy_gettext as _l
from sqlalchemy import CheckConstraint, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.models.types import UTCDateTime, utcnow

EXPORT_FORMATS = ("csv", "xlsx")
EXPORT_STATUSES = {
    "queued": _l("In Warteschlange"), "running": _l("Läuft"), "done": _l("Fertig"), "failed": _l("Fehlgeschlagen"),
}


class ExportFile(Model):
    """One requested export: whose, of which list with which filters, and the file once built."""

    __tablename__ = "export_file"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("ab_user.id", ondelete="CASCADE"))
    view_name: Mapped[str] = mapped_column(String(80))
    format: Mapped[str] = mapped_column(String(8))
    query_string: Mapped[str] = mapped_column(Text, default="", server_default="")
    status: Mapped[str] = mapped_column(String(10), default="queued", server_default="queued")
    row_count: Mapped[int | None] = mapped_column(Integer)
    filename: Mapped[str] = mapped_column(String(120))
    stored_name: Mapped[str | None] = mapped_column(String(64), unique=True)
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    user = relationship("User")

    __table_args__ = (
        CheckConstraint("format IN ('csv', 'xlsx')", name="ck_export_file_format"),
        CheckConstraint("status IN ('queued', 'running', 'done', 'failed')", name="ck_export_file_status"),
        Index("ix_export_file_user", "user_id", "created_at"),
    )

    @property
    def download_id(self) -> int | None:
        """The id to download by, once the file is built."""
        return self.id if self.status == "done" else None

    @property
    def status_progress(self) -> tuple[int, str]:
        """(id, status): "Meine Exporte" shows a running export's progress from its job (by id)."""
        return self.id, self.status

    def __str__(self) -> str:
        return self.filename
