"""Linsen (gespeicherte Filter) und Einstellungen."""
from __future__ import annotations

from flask_appbuilder import Model
from sqlalchemy import Boolean, Column, ForeignKey, String, Table, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

lens_role = Table(
    "lens_role",
    Model.metadata,
    Column("lens_id", ForeignKey("lens.id", ondelete="CASCADE"), primary_key=True),
    Column("role_id", ForeignKey("ab_role.id", ondelete="CASCADE"), primary_key=True),
)


class Lens(Model):
    """A named, saved filter of one list view, private to its owner or shared with roles."""

    __tablename__ = "lens"
    __versioned__ = {}

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(120))
    view_name: Mapped[str] = mapped_column(String(80))
    query_string: Mapped[str] = mapped_column(Text, default="")
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("ab_user.id", ondelete="CASCADE"))
    shared: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")
    builtin: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")
    # A built-in lens's stable key ("overdue", "duplicates" …): its rows come from code.
    builtin_key: Mapped[str | None] = mapped_column(String(40))

    owner = relationship("User")
    roles = relationship("Role", secondary=lens_role)

    __table_args__ = (
        UniqueConstraint("owner_id", "view_name", "name", name="uq_lens_owner_view_name"),
        UniqueConstraint("builtin_key", name="uq_lens_builtin_key"),
    )

    def __str__(self) -> str:
        return self.name


class Setting(Model):
    """A business setting (name, address, reminder lead time …) as key and text value."""

    __tablename__ = "setting"
    __versioned__ = {}

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(80), unique=True)
    value: Mapped[str] = mapped_column(Text, default="")
    description: Mapped[str | None] = mapped_column(Text)

    def __str__(self) -> str:
        return self.key
