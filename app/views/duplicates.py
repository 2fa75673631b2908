"""Dubletten: candidate pairs, the side-by-side compare page (which is the merge
confirmation), "Zusammenführen", "Keine Dublette", and the list of merges with the
Owner's "Rückgängig machen" (see app/services/duplicates.py).

Manager and Owner (app/security.py); every change is a POST (CSRF). A POST naming
nothing re-renders its page with a German error (200); junk ids answer 400, missing
or hidden customers 404."""
from __future__ import annotations

from typing import Any

from flask import abort, flash, redirect, request, url_for
from flask_appbuilder import BaseView, expose, has_access
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select

from app.extensions import db
from app.formatting import fmt_date, fmt_datetime
from app.models import Customer, CustomerMerge
from app.models.customers import CUSTOMER_LABELS
from app.security import restrict, row_predicate
from app.services.duplicates import (
    candidate_pairs,
    dismiss_pair,
    fill_plan,
    merge_customers,
    person_record,
    related_counts,
    score_pair,
    undo_merge,
)
from app.services.history import user_names
from app.services.phone import normalize_phone
from app.views.validators import parse_id

# What a merge moves, by CustomerMerge.moved key; unknown (future) tables show their name.
KIND_LABELS = {
    "booking": _l("Termine"),
    "pet": _l("Hunde"),
    "pass_card": _l("Mehrfachkarten"),
    "bonus_transaction": _l("Bonusbuchungen"),
    "document": _l("Dokumente"),
    "invoice": _l("Rechnungen"),
    "notification_log": _l("Benachrichtigungen"),
    "customer.referred_by_id": _l("geworbene Kund:innen"),
    "customer_merge.kept_id": _l("frühere Zusammenführungen"),
    "customer_erasure": _l("Löschprotokolle"),
    "duplicate_dismissal": _l("„Keine Dublette“-Vermerke"),
    "duplicate_dismissal.customer_low_id": _l("„Keine Dublette“-Vermerke"),
    "duplicate_dismissal.customer_high_id": _l("„Keine Dublette“-Vermerke"),
}
FIELD_LABELS = {**CUSTOMER_LABELS, "referred_by_id": CUSTOMER_LABELS["referred_by"]}
COMPARED_FIELDS = ("first_name", "last_name", "emoji_marker", "email", "phone", "street", "postal_code", "city",
                   "birth_date", "notes", "referred_by_id", "created_at")


def kind_label(key: str) -> str:
    return str(KIND_LABELS.get(key, key))


def field_label(name: str) -> str:
    return str(FIELD_LABELS.get(name, name))


def _shown(customer: Customer, name: str) -> str:
    value = getattr(customer, name)
    if value is None or value == "":
        return ""
    if name == "birth_date":
        return fmt_date(value)
    if name == "created_at":
        return fmt_datetime(value)
    if name == "referred_by_id":
        other = db.session.get(Customer, value)
        return other.full_name if other is not None else f"#{value}"
    return str(value)


def _differing(kept: Customer, removed: Customer) -> list[str]:
    """Fields the removed customer has filled differently from the kept one: not taken over by a
    merge (the kept values win), so the compare page names them before the merge."""
    taken = fill_plan(kept, removed)
    return [field_label(name) for name in COMPARED_FIELDS
            if name not in taken and name != "created_at" and _shown(removed, name)
            and _shown(kept, name) and _comparable(removed, name) != _comparable(kept, name)]


def _comparable(customer: Customer, name: str) -> str:
    """The value as the duplicate search compares it ("0162/935…" is "+49162935…")."""
    if name == "phone":
        return normalize_phone(customer.phone) or _shown(customer, name)
    if name == "email":
        return _shown(customer, name).strip().lower()
    return _shown(customer, name)


class DuplicateView(BaseView):
    """Dubletten (Manager, Owner); undo of a merge: Owner only."""

    route_base = "/dubletten"
    default_view = "list"
    page_size = 25

    # --- candidate list -------------------------------------------------------------
    @expose("/")
    @expose("/list/")
    @has_access
    def list(self):
        page = max(request.args.get("page", 0, type=int), 0)
        pairs = candidate_pairs(db.session)
        if row_predicate(Customer) is not None:  # Manager and Owner see every customer anyway
            visible = set(db.session.scalars(restrict(select(Customer.id), Customer)))
            pairs = [c for c in pairs if c.low_id in visible and c.high_id in visible]
        total = len(pairs)
        shown = pairs[page * self.page_size:(page + 1) * self.page_size]
        ids = {pk for c in shown for pk in (c.low_id, c.high_id)}
        customers = {c.id: c for c in db.session.scalars(select(Customer).where(Customer.id.in_(ids)))} if ids else {}
        merges = db.session.scalar(select(func.count()).select_from(CustomerMerge)) or 0
        return self.render_template(
            "terminbuch/duplicate_list.html", pairs=shown, customers=customers, total=total, page=page,
            pages=(total + self.page_size - 1) // self.page_size, merges=merges,
        )

    # --- compare (the merge confirmation) ------------------------------------------------
    def _pair(self, source: Any) -> tuple[Customer, Customer] | None:
        """The two customers named by `a` and `b` of the args/form: None when not given;
        400 on junk, 404 when missing or hidden by the row rules."""
        raw_a, raw_b = source.get("a", ""), source.get("b", "")
        if not raw_a.strip() and not raw_b.strip():
            return None
        a, b = parse_id(raw_a), parse_id(raw_b)
        if a is None or b is None:
            abort(400)
        found = {c.id: c for c in db.session.scalars(
            restrict(select(Customer).where(Customer.id.in_({a, b})), Customer))}
        if a not in found or b not in found:
            abort(404)
        return found[a], found[b]

    @expose("/compare/")
    @has_access
    def compare(self):
        pair = self._pair(request.args)
        if pair is None:
            return self.render_compare(None, error=_("Bitte zwei Kund:innen zum Vergleichen wählen."))
        return self.render_compare(pair)

    def render_compare(self, pair: tuple[Customer, Customer] | None, error: str | None = None,
                       kept_id: int | None = None):
        context: dict[str, Any] = {"pair": pair, "error": error}
        if pair is not None:
            a, b = pair
            score, reasons = score_pair(*(person_record(c.id, c.first_name, c.last_name, c.email, c.phone,
                                                  c.birth_date, c.postal_code) for c in pair))
            counts = {c.id: related_counts(db.session, c.id) for c in pair}
            kinds = sorted({key for per in counts.values() for key in per}, key=lambda k: kind_label(k))
            rows = [(field_label(name), _shown(a, name), _shown(b, name)) for name in COMPARED_FIELDS]
            fills = {a.id: [field_label(n) for n in fill_plan(a, b)], b.id: [field_label(n) for n in fill_plan(b, a)]}
            lost = {a.id: _differing(a, b), b.id: _differing(b, a)}
            context.update(a=a, b=b, score=score, reasons=reasons, counts=counts, kinds=kinds, rows=rows,
                           fills=fills, lost=lost, kept_id=kept_id or a.id, kind_label=kind_label)
        return self.render_template("terminbuch/duplicate_compare.html", **context)

    @expose("/merge/", methods=["POST"])
    @has_access
    def merge(self):
        pair = self._pair(request.form)
        if pair is None:
            return self.render_compare(None, error=_("Bitte zwei Kund:innen zum Zusammenführen wählen."))
        a, b = pair
        kept_id = parse_id(request.form.get("kept"))
        if kept_id not in (a.id, b.id):
            return self.render_compare(pair, error=_("Bitte wählen, welche Kund:in behalten wird."))
        removed = b if kept_id == a.id else a
        removed_name, removed_id = removed.full_name, removed.id
        try:
            merge_customers(db.session, kept_id, removed_id)
            db.session.commit()
        except (ValueError, LookupError) as exc:
            db.session.rollback()
            message = str(exc) if isinstance(exc, ValueError) else _("Diese Kund:in gibt es nicht mehr.")
            return self.render_compare(self._pair(request.form), error=message, kept_id=kept_id)
        kept = db.session.get(Customer, kept_id)
        flash(_("%(removed)s (#%(removed_id)d) wurde mit %(kept)s (#%(kept_id)d) zusammengeführt.",
                removed=removed_name, removed_id=removed_id, kept=kept.full_name, kept_id=kept.id), "success")
        return redirect(url_for("CustomerView.show", pk=kept_id))

    @expose("/dismiss/", methods=["POST"])
    @has_access
    def dismiss(self):
        pair = self._pair(request.form)
        if pair is None:
            return self.render_compare(None, error=_("Bitte zwei Kund:innen wählen."))
        try:
            dismiss_pair(db.session, pair[0].id, pair[1].id)
            db.session.commit()
        except ValueError as exc:
            db.session.rollback()
            return self.render_compare(self._pair(request.form), error=str(exc))
        flash(_("Als „Keine Dublette“ vermerkt: %(a)s und %(b)s werden nicht mehr vorgeschlagen.",
                a=pair[0].full_name, b=pair[1].full_name), "success")
        return redirect(url_for(f"{self.endpoint}.list"))

    # --- merges and undo -----------------------------------------------------------------
    @expose("/merges/")
    @has_access
    def merges(self):
        return self.render_merges()

    def render_merges(self, error: str | None = None):
        page = max(request.args.get("page", 0, type=int), 0)
        total = db.session.scalar(select(func.count()).select_from(CustomerMerge)) or 0
        merges = list(db.session.scalars(select(CustomerMerge).order_by(CustomerMerge.id.desc())
                                         .limit(self.page_size).offset(page * self.page_size)))
        users = user_names(db.session, {m.merged_by_id for m in merges} | {m.undone_by_id for m in merges})
        entries = [self._merge_entry(m, users) for m in merges]
        can_undo = self.appbuilder.sm.has_access("can_undo", self.class_permission_name)
        return self.render_template(
            "terminbuch/duplicate_merges.html", entries=entries, total=total, page=page, error=error,
            pages=(total + self.page_size - 1) // self.page_size, can_undo=can_undo,
        )

    def _merge_entry(self, merge: CustomerMerge, users: dict[int, str]) -> dict[str, Any]:
        from app.services.history import last_live_versions

        removed = db.session.get(Customer, merge.removed_id)
        if removed is not None:
            removed_name = removed.full_name
        else:
            version = last_live_versions(db.session, Customer, [merge.removed_id]).get(merge.removed_id)
            removed_name = f"{version.first_name} {version.last_name}" if version is not None else ""
        return {
            "merge": merge,
            "kept": merge.kept,
            "removed_name": removed_name,
            "when": fmt_datetime(merge.merged_at),
            "who": users.get(merge.merged_by_id, ""),
            "undone_when": fmt_datetime(merge.undone_at) if merge.undone_at else "",
            "undone_who": users.get(merge.undone_by_id, "") if merge.undone_by_id else "",
            "moved": [(kind_label(key), len(ids)) for key, ids in (merge.moved or {}).items()
                      if key in KIND_LABELS or ":" not in key],
            "filled": [field_label(name) for name in merge.filled or []],
        }

    @expose("/undo/", methods=["POST"])
    @has_access
    def undo(self):
        raw = request.form.get("merge", "")
        if not raw.strip():
            return self.render_merges(error=_("Bitte eine Zusammenführung wählen."))
        merge_id = parse_id(raw)
        if merge_id is None:
            abort(400)
        merge = db.session.get(CustomerMerge, merge_id)
        if merge is None:
            abort(404)
        users = user_names(db.session, {merge.merged_by_id})
        entry = self._merge_entry(merge, users)
        if merge.undone_at is not None:
            return self.render_template("terminbuch/duplicate_undo.html", entry=entry,
                                        error=_("Diese Zusammenführung wurde schon rückgängig gemacht."))
        if request.form.get("confirm") != "1":
            return self.render_template("terminbuch/duplicate_undo.html", entry=entry, error=None)
        try:
            undo_merge(db.session, merge_id)
            db.session.commit()
        except (ValueError, LookupError) as exc:
            db.session.rollback()
            merge = db.session.get(CustomerMerge, merge_id)
            return self.render_template("terminbuch/duplicate_undo.html", entry=self._merge_entry(merge, users),
                                        error=str(exc) if isinstance(exc, ValueError) else _("Nicht gefunden."))
        flash(_("Zusammenführung rückgängig gemacht: %(name)s ist wieder da.", name=entry["removed_name"]),
              "success")
        return redirect(url_for(f"{self.endpoint}.merges"))
