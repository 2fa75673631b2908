"""Kunden, Hunde, Dokumente."""
from __future__ import annotations

from datetime import date, datetime

from flask_appbuilder import Model
from flask_babel import lazy_gettext as _l
from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.extensions import acting_user_id
from app.models.types import UTCDateTime, utcnow


def _acting_user_id() -> int | None:
    return acting_user_id()


# Emoji markers with their meaning; any other short emoji may be entered too.
EMOJI_MARKERS = {
    "📞": _l("Rückruf"),
    "⭐": _l("VIP"),
    "🆕": _l("Neu"),
    "⚠️": _l("Achtung"),
    "🎂": _l("Geburtstag"),
    "💶": _l("Offene Zahlung"),
    "🐕": _l("Hundekunde"),
}
EMOJI_MAX_LENGTH = 8
# The German names of the customer fields, for every screen (forms, lists, import, compare).
CUSTOMER_LABELS = {
    "display_name": _l("Name"),
    "first_name": _l("Vorname"),
    "last_name": _l("Nachname"),
    "emoji_marker": _l("Markierung"),
    "email": _l("E-Mail"),
    "phone": _l("Telefon"),
    "street": _l("Straße"),
    "postal_code": _l("PLZ"),
    "city": _l("Ort"),
    "country": _l("Land"),
    "birth_date": _l("Geburtsdatum"),
    "notes": _l("Notizen"),
    "consent_email": _l("Einwilligung E-Mail"),
    "consent_sms": _l("Einwilligung SMS"),
    "consent_at": _l("Einwilligung am"),
    "language": _l("Sprache"),
    "referred_by": _l("Empfohlen von"),
    "created_at": _l("Angelegt am"),
    "geocode_status": _l("Geokodierung"),
    "erased_at": _l("Auf Anfrage gelöscht am"),
    "lat": _l("Breitengrad"),
    "lon": _l("Längengrad"),
    "geocoded_at": _l("Geokodiert am"),
    "geocoded_address": _l("Geokodierte Anschrift"),
}
CUSTOMER_LANGUAGES = {"de": _l("Deutsch"), "en": _l("Englisch")}
GEOCODE_STATUSES = {"ok": _l("gefunden"), "not_found": _l("nicht gefunden"), "error": _l("Fehler"),
                    "approx": _l("ungefähr")}


class Customer(Model):
    __tablename__ = "customer"
    __versioned__ = {}

    id: Mapped[int] = mapped_column(primary_key=True)
    first_name: Mapped[str] = mapped_column(String(80))
    last_name: Mapped[str] = mapped_column(String(80), index=True)
    # No VARCHAR length: the named check constraint below is the one rule, so an
    # over-long marker is an IntegrityError on SQLite and PostgreSQL alike.
    emoji_marker: Mapped[str | None] = mapped_column(String)
    email: Mapped[str | None] = mapped_column(String(200), unique=True)
    phone: Mapped[str | None] = mapped_column(String(40), index=True)
    street: Mapped[str | None] = mapped_column(String(200))
    postal_code: Mapped[str | None] = mapped_column(String(10))
    city: Mapped[str | None] = mapped_column(String(120))
    country: Mapped[str] = mapped_column(String(2), default="DE", server_default="DE")
    birth_date: Mapped[date | None] = mapped_column(Date)
    lat: Mapped[float | None]
    lon: Mapped[float | None]
    geocoded_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    geocode_status: Mapped[str | None] = mapped_column(String(12))
    # The address string that was geocoded: a changed address no longer matches it.
    geocoded_address: Mapped[str | None] = mapped_column(String(300))
    notes: Mapped[str | None] = mapped_column(Text)
    consent_email: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")
    consent_sms: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")
    consent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # The language of the customer's mails and SMS (the screens follow the user's switch).
    language: Mapped[str] = mapped_column(
        String(2), CheckConstraint("language IN ('de', 'en')", name="ck_customer_language"),
        default="de", server_default="de")
    referred_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("customer.id", ondelete="SET NULL"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    created_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("ab_user.id", ondelete="SET NULL"), default=_acting_user_id, index=True
    )
    # Set by "Löschen auf Anfrage" (GDPR erasure): the row stays for statistics, anonymized.
    erased_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    referred_by: Mapped[Customer | None] = relationship(remote_side=[id])
    pets: Mapped[list[Pet]] = relationship(
        back_populates="customer", cascade="all, delete-orphan"
    )
    documents: Mapped[list[Document]] = relationship(
        back_populates="customer", cascade="all, delete-orphan"
    )

    __table_args__ = (
        CheckConstraint(
            f"emoji_marker IS NULL OR length(emoji_marker) <= {EMOJI_MAX_LENGTH}",
            name="ck_customer_emoji_length",
        ),
        CheckConstraint("lat IS NULL OR (lat BETWEEN -90 AND 90)", name="ck_customer_lat"),
        CheckConstraint("lon IS NULL OR (lon BETWEEN -180 AND 180)", name="ck_customer_lon"),
        CheckConstraint("referred_by_id IS NULL OR referred_by_id <> id", name="ck_customer_self_referral"),
        CheckConstraint(
            "geocode_status IS NULL OR geocode_status IN ('ok', 'not_found', 'error', 'approx')",
            name="ck_customer_geocode_status",
        ),
        Index("ix_customer_name", "last_name", "first_name"),
    )

    @property
    def full_name(self) -> str:
        return f"{self.first_name} {self.last_name}"

    @property
    def display_name(self) -> str:
        """The name as shown everywhere, with the emoji marker in front (`⭐ Anna Berg`)."""
        if self.emoji_marker:
            return f"{self.emoji_marker} {self.full_name}"
        return self.full_name

    def __str__(self) -> str:
        return self.display_name


class Pet(Model):
    __tablename__ = "pet"
    __versioned__ = {}

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customer.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(80))
    species: Mapped[str] = mapped_column(String(40), default="Hund", server_default="Hund")
    breed: Mapped[str | None] = mapped_column(String(80))
    birth_date: Mapped[date | None] = mapped_column(Date)
    notes: Mapped[str | None] = mapped_column(Text)

    customer: Mapped[Customer] = relationship(back_populates="pets")

    def __str__(self) -> str:
        return self.name


class Document(Model):
    """A file in the customer file; the bytes live outside the web root under `stored_name`."""

    __tablename__ = "document"
    __versioned__ = {}

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customer.id", ondelete="CASCADE"), index=True)
    title: Mapped[str] = mapped_column(String(200))
    filename: Mapped[str] = mapped_column(String(255))
    stored_name: Mapped[str] = mapped_column(String(64), unique=True)
    content_type: Mapped[str] = mapped_column(String(100))
    size_bytes: Mapped[int] = mapped_column(Integer)
    uploaded_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    customer: Mapped[Customer] = relationship(back_populates="documents")

    __table_args__ = (CheckConstraint("size_bytes >= 0", name="ck_document_size"),)

    def __str__(self) -> str:
        return self.title


class DuplicateDismissal(Model):
    """"Keine Dublette": the pair (lower id, higher id) is never proposed again."""

    __tablename__ = "duplicate_dismissal"
    __versioned__ = {}

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_low_id: Mapped[int] = mapped_column(ForeignKey("customer.id", ondelete="CASCADE"))
    customer_high_id: Mapped[int] = mapped_column(ForeignKey("customer.id", ondelete="CASCADE"), index=True)
    dismissed_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    dismissed_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("ab_user.id", ondelete="SET NULL"), default=_acting_user_id
    )

    __table_args__ = (
        UniqueConstraint("customer_low_id", "customer_high_id", name="uq_duplicate_dismissal_pair"),
        CheckConstraint("customer_low_id < customer_high_id", name="ck_duplicate_dismissal_order"),
    )


class CustomerMerge(Model):
    """One merge of two customers: what was moved from the removed customer to the kept
    one and which empty fields of the kept one were filled — enough for the undo. The
    removed customer's data lives on in its version rows (restored by the undo)."""

    __tablename__ = "customer_merge"

    id: Mapped[int] = mapped_column(primary_key=True)
    kept_id: Mapped[int | None] = mapped_column(ForeignKey("customer.id", ondelete="SET NULL"), index=True)
    removed_id: Mapped[int] = mapped_column(Integer, index=True)  # no FK: that row is deleted
    moved: Mapped[dict] = mapped_column(JSON, default=dict)  # {"booking": [ids], ...}
    filled: Mapped[list] = mapped_column(JSON, default=list)  # field names filled on the kept customer
    transaction_id: Mapped[int | None] = mapped_column(BigInteger)  # Continuum transaction of the merge
    merged_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    merged_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("ab_user.id", ondelete="SET NULL"), default=_acting_user_id
    )
    undone_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    undone_by_id: Mapped[int | None] = mapped_column(ForeignKey("ab_user.id", ondelete="SET NULL"))

    kept: Mapped[Customer | None] = relationship(foreign_keys=[kept_id])

    __table_args__ = (CheckConstraint("kept_id IS NULL OR kept_id <> removed_id", name="ck_customer_merge_pair"),)


class CustomerErasure(Model):
    """"Löschen auf Anfrage" was carried out: who and when — never what was erased.
    `retained` names what the law obliges the business to keep (ids and reasons only)."""

    __tablename__ = "customer_erasure"

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customer.id", ondelete="SET NULL"), index=True)
    erased_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    erased_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("ab_user.id", ondelete="SET NULL"), default=_acting_user_id
    )
    retained: Mapped[list] = mapped_column(JSON, default=list)  # [{"table": "invoice", "id": 3, "reason": "..."}]
