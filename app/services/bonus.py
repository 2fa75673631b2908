"""Umsatzbonus and Empfehlungsbonus: the points ledger (`BonusTransaction`).

A customer's balance in a program is the sum of their ledger lines, never a counter kept
by hand. Lines are only ever added: a mistake or a step taken back is a correction line
that names the line it takes back (`reverses_id`, UNIQUE: a line is taken back at most
once).

The rules are states, kept by the same before_flush hook as the pass card redemptions
(app/models/cards.py), so they hold for every way a booking changes (status workflow,
forms, API, history revert, deletion):
- a completed, paid booking has exactly one standing earn line per program that covers
  its service; any other booking has none (leaving "completed" or a deletion books the
  correction). "Paid": a price above 0 that no pass card unit settled (the card's sale was
  the revenue). Points = ⌊price × points per euro⌋.
- a booking's standing reward (redeemed on the booking, which lowered its price) is taken
  back when the booking is cancelled: the points come back and the price is restored.
- a discount line of an invoice draft that is deleted (alone or with its draft) gives its
  points back; a Storno gives back the points of the cancelled invoice's rewards.
- points already redeemed are not taken from the reward: when their booking is taken back
  afterwards, the balance may fall below 0 (the ledger tells the truth; the next visits
  fill it up), and no reward can be redeemed until it reaches the threshold again.
- the referrer of a customer earns the program's referral points once, when that
  customer's first booking is completed: never for a self-referral, never twice (UNIQUE
  `referred_customer_id`, also counting customers merged into this one).
Concurrent changes of one booking (or redemptions of one customer's points) wait for each
other on its row (`_lock`) before they read the ledger."""
from __future__ import annotations

from datetime import datetime
from decimal import ROUND_FLOOR, Decimal

from flask_babel import gettext as _
from sqlalchemy import and_, exists, false, func, not_, or_, select, update
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.orm import Session, aliased

from app.formatting import fmt_date, fmt_money, to_local
from app.models import (
    BonusProgram,
    BonusTransaction,
    Booking,
    Customer,
    CustomerMerge,
    Invoice,
    InvoiceLine,
    PassRedemption,
    Service,
)
from app.models.bonus import bonus_program_service
from app.models.bookings import _status_kind
from app.models.invoices import ZERO, cents, invoiced
from app.models.types import utcnow
from app.services.cards import booking_customer_id as _customer_id


class BonusRefused(ValueError):
    """A reward cannot be redeemed or taken back; the text says why (German, for the user)."""


# --- reading the ledger -------------------------------------------------------------
def balance(session: Session, customer_id: int, program_id: int) -> int:
    """The customer's points in the program: the sum of their ledger lines."""
    return session.scalar(
        select(func.coalesce(func.sum(BonusTransaction.points), 0))
        .where(BonusTransaction.customer_id == customer_id, BonusTransaction.program_id == program_id)
    ) or 0


def balances(session: Session, customer_id: int) -> dict[int, int]:
    """program id → balance, for every program the customer has lines in."""
    return dict(session.execute(
        select(BonusTransaction.program_id, func.sum(BonusTransaction.points))
        .where(BonusTransaction.customer_id == customer_id).group_by(BonusTransaction.program_id)
    ).all())


def standing(session: Session, *conditions) -> list[BonusTransaction]:
    """Ledger lines matching `conditions` that no correction has taken back yet."""
    reversal = aliased(BonusTransaction)
    return list(session.scalars(
        select(BonusTransaction).where(
            *conditions, not_(exists().where(reversal.reverses_id == BonusTransaction.id)))
        .order_by(BonusTransaction.id)
    ))


def program_overview(session: Session, customer_id: int) -> list[dict]:
    """Per active program (and any other the customer has points in): balance, threshold,
    progress in percent (capped at 100) and the points still missing for the reward."""
    held = balances(session, customer_id)
    programs = session.scalars(
        select(BonusProgram).where(or_(BonusProgram.active.is_(True), BonusProgram.id.in_(list(held))))
        .order_by(BonusProgram.name)
    )
    overview = []
    for program in programs:
        points = held.get(program.id, 0)
        overview.append({
            "program": program, "balance": points, "threshold": program.threshold,
            "progress": min(100, max(0, points * 100 // program.threshold)),
            "missing": max(0, program.threshold - points),
            "can_redeem": program.active and points >= program.threshold,
        })
    return overview


# --- which program covers a booking ---------------------------------------------------
def covering_programs(session: Session, service: Service) -> list[BonusProgram]:
    """Active programs whose bookings of `service` earn points: a program with listed
    services covers exactly those, one without covers its category's, one with neither all."""
    listed = exists().where(bonus_program_service.c.program_id == BonusProgram.id)
    return list(session.scalars(
        select(BonusProgram).where(
            BonusProgram.active.is_(True),
            or_(
                exists().where(bonus_program_service.c.program_id == BonusProgram.id,
                               bonus_program_service.c.service_id == service.id),
                and_(not_(listed), or_(BonusProgram.category.is_(None), BonusProgram.category == service.category)),
            ),
        ).order_by(BonusProgram.id)
    ))


def earned_points(price: Decimal | None, program: BonusProgram) -> int:
    if not price or price <= 0:
        return 0
    return int((Decimal(price) * Decimal(program.points_per_euro)).to_integral_value(rounding=ROUND_FLOOR))


# --- corrections --------------------------------------------------------------------
def reverse(session: Session, line: BonusTransaction, reason: str) -> BonusTransaction | None:
    """Take `line` back with a correction of the opposite points (None: already taken back)."""
    pending = any(isinstance(obj, BonusTransaction) and obj.reverses is line for obj in session.new)
    if pending or (line.id is not None and session.scalar(
            select(BonusTransaction.id).where(BonusTransaction.reverses_id == line.id))):
        return None
    correction = BonusTransaction(
        customer_id=line.customer_id, program_id=line.program_id, booking_id=line.booking_id,
        kind="correction", points=-line.points, reason=reason, reverses=line,
    )
    session.add(correction)
    return correction


# --- the flush hook -------------------------------------------------------------------
def _changed(booking: Booking, *names: str) -> bool:
    attrs = sa_inspect(booking).attrs
    return any(attrs[name].history.has_changes() for name in names)


def _lock(session: Session, model, pk: int | None) -> None:
    """Lock the row before reading what depends on it: PostgreSQL SELECT … FOR UPDATE; on
    SQLite a write of no row, which takes the database's write lock now (like BEGIN
    IMMEDIATE) instead of at the flush — a second writer waits here and then reads the first
    one's lines."""
    if pk is None:
        return
    if session.get_bind().dialect.name == "sqlite":
        # a write that changes no row (and fires no trigger) takes SQLite's one write lock
        session.execute(update(BonusProgram).where(false()).values(id=BonusProgram.id)
                        .execution_options(synchronize_session=False))
    else:
        session.execute(select(model.id).where(model.id == pk).with_for_update())


class _Redemptions:
    """The pass card redemptions of this flush, gathered once (a bulk flush of n bookings
    would otherwise scan the session n times)."""

    def __init__(self, session: Session):
        self.new_for = {id(obj.booking) for obj in session.new if isinstance(obj, PassRedemption)}
        self.new_ids = {obj.booking_id for obj in session.new if isinstance(obj, PassRedemption)}
        self.gone = {obj.id for obj in session.deleted if isinstance(obj, PassRedemption)}

    def settle(self, session: Session, booking: Booking, is_new: bool) -> bool:
        """Whether a pass card unit pays for the booking once this flush is written."""
        if id(booking) in self.new_for or (booking.id is not None and booking.id in self.new_ids):
            return True
        if booking.id is None or is_new:  # a new booking has no stored redemption
            return False
        return any(pk not in self.gone for pk in session.scalars(
            select(PassRedemption.id).where(PassRedemption.booking_id == booking.id)))


def _service(session: Session, booking: Booking) -> Service | None:
    return booking.service or session.get(Service, booking.service_id)


def _booking_price(session: Session, booking: Booking) -> Decimal | None:
    if booking.price is not None:
        return booking.price
    service = _service(session, booking)
    return service.price if service is not None else None


HOOK_OFF = "tb_bonus_hook_off"  # session.info key: the demo seeder writes its planned ledger itself
# What a booking's earn line depends on: a change of any of these books it anew.
EARN_INPUTS = ("status", "status_id", "price", "customer", "customer_id", "service", "service_id")


def sync_bonus(session: Session) -> None:
    """Bring the ledger in line with every new, changed or deleted booking, every deleted
    bonus discount line and every changed invoice draft with a reward of this flush (called
    before each flush, after the pass card redemptions)."""
    if session.info.get(HOOK_OFF):
        return
    bookings: list[tuple[Booking, str | None, bool]] = []
    kinds: dict[int, str] = {}
    with session.no_autoflush:
        for obj in (*session.new, *session.dirty):
            if isinstance(obj, Booking) and obj not in session.deleted and (
                    obj in session.new or _changed(obj, *EARN_INPUTS)):
                bookings.append((obj, _status_kind(session, obj, kinds), obj in session.new))
        deleted = [obj for obj in session.deleted if isinstance(obj, Booking)]
        discount_lines = [obj for obj in session.deleted
                          if isinstance(obj, InvoiceLine) and obj.bonus_transaction_id is not None]
        drafts = _changed_drafts(session)
        if not bookings and not deleted and not discount_lines and not drafts:
            return
        actives = set(session.scalars(select(BonusProgram.active).distinct()))
        if not actives:
            return  # no program, hence no ledger line to earn, redeem or take back
        now = utcnow()
        referred_now: set[int] = set()
        programs: dict[int, list[BonusProgram]] = {}  # service id → covering programs, once per flush
        redemptions = _Redemptions(session)
        completing = {_customer_id(b) for b, kind, _new in bookings if kind == "completed"} - {None}
        referred = set(session.scalars(select(Customer.id).where(
            Customer.id.in_(completing), Customer.referred_by_id.is_not(None)))) if completing else set()
        for booking, kind, is_new in bookings:
            if is_new and True not in actives:
                continue  # nothing to earn, nothing to take back (the demo seeder's bulk inserts)
            if not is_new:  # a new booking has no stored lines to race for
                _lock(session, Booking, booking.id)
            _sync_earnings(session, booking, kind, is_new, programs, redemptions)
            if kind == "cancellation" and not is_new and not _booking_invoiced(session, booking):
                for line in standing(session, BonusTransaction.booking_id == booking.id,
                                     BonusTransaction.kind == "redeem"):
                    _take_back_booking_reward(session, booking, line, _("Termin abgesagt: Prämie zurückgebucht"))
            if kind == "completed":
                _pay_referral(session, booking, referred_now, now, referred)
        for booking in deleted:
            _lock(session, Booking, booking.id)
            for line in standing(session, BonusTransaction.booking_id == booking.id,
                                 BonusTransaction.kind.in_(("earn", "redeem"))):
                correction = reverse(session, line, _("Termin gelöscht: Punkte zurückgebucht"))
                if correction is not None:
                    correction.booking_id = None  # the booking row goes
        _reverse_rewards(session, [line.bonus_transaction_id for line in discount_lines],
                         _("Rabattposition entfernt: Prämie zurückgebucht"))
        _reverse_rewards(session, session.scalars(select(InvoiceLine.bonus_transaction_id).join(Invoice).where(
            InvoiceLine.invoice_id.in_(drafts), InvoiceLine.bonus_transaction_id.is_not(None),
            Invoice.status == "draft")) if drafts else [], _("Rechnungsentwurf geändert: Prämie zurückgebucht"))


def _changed_drafts(session: Session) -> set[int]:
    """Invoices of this flush whose reward no longer fits: a line other than its discount
    added, changed or deleted, or the customer changed."""
    ids: set[int] = set()
    for obj in (*session.new, *session.dirty, *session.deleted):
        if isinstance(obj, InvoiceLine) and obj.bonus_transaction_id is None:
            if obj in session.dirty and not session.is_modified(obj):
                continue
            invoice_id = obj.invoice.id if obj.invoice is not None else obj.invoice_id
            if invoice_id is not None:
                ids.add(invoice_id)
        elif isinstance(obj, Invoice) and obj in session.dirty and obj.id is not None and \
                _changed(obj, "customer", "customer_id"):
            ids.add(obj.id)
    return ids


def _sync_earnings(session: Session, booking: Booking, kind: str | None, is_new: bool,
                   programs: dict[int, list[BonusProgram]], redemptions: _Redemptions) -> None:
    service = _service(session, booking)
    expected: dict[int, tuple[BonusProgram, int]] = {}
    if kind == "completed" and service is not None and not redemptions.settle(session, booking, is_new):
        price = _booking_price(session, booking)
        if service.id not in programs:
            programs[service.id] = covering_programs(session, service)
        for program in programs[service.id]:
            points = earned_points(price, program)
            if points > 0:
                expected[program.id] = (program, points)
    current = [] if is_new or booking.id is None else standing(
        session, BonusTransaction.booking_id == booking.id, BonusTransaction.kind == "earn")
    customer_id = _customer_id(booking)
    held = set()
    for line in current:
        wanted = expected.get(line.program_id)
        if wanted is not None and wanted[1] == line.points and line.customer_id == customer_id \
                and line.program_id not in held:
            held.add(line.program_id)
            continue
        reverse(session, line, _("Termin geändert: Punkte zurückgebucht") if kind == "completed"
                else _("Termin nicht mehr abgeschlossen: Punkte zurückgebucht"))
    for program_id, (program, points) in expected.items():
        if program_id in held:
            continue
        session.add(BonusTransaction(
            customer_id=customer_id, program=program, booking=booking, kind="earn", points=points,
            reason=_("Termin abgeschlossen: %(service)s", service=service.name),
        ))


def _reverse_rewards(session: Session, transaction_ids, reason: str, *, keep_lines: bool = False,
                     ) -> list[BonusTransaction]:
    """Take back the rewards redeemed by these ledger lines: their points come back once and,
    unless `keep_lines` (an issued invoice keeps its lines), their discount lines on a draft go
    — all of them (one per VAT rate), also when only one was deleted. A deleted discount line,
    a changed draft (the reward was computed on other lines or for another customer: redeem it
    again if wanted), "Prämie zurücknehmen" and a Storno all come here."""
    corrections = []
    for transaction_id in dict.fromkeys(transaction_ids):
        if not keep_lines:
            for line in session.scalars(select(InvoiceLine).where(InvoiceLine.bonus_transaction_id == transaction_id)):
                if line not in session.deleted:
                    session.delete(line)
        redemption = session.get(BonusTransaction, transaction_id)
        correction = reverse(session, redemption, reason) if redemption is not None else None
        if correction is not None:
            corrections.append(correction)
    return corrections


# --- referral bonus -------------------------------------------------------------------
def _merged_into(session: Session, customer_id: int) -> list[int]:
    return list(session.scalars(select(CustomerMerge.removed_id).where(
        CustomerMerge.kept_id == customer_id, CustomerMerge.undone_at.is_(None))))


def referral_paid(session: Session, customer_id: int) -> bool:
    """Whether a referral was paid for this customer or a duplicate merged into them."""
    ids = [customer_id, *_merged_into(session, customer_id)]
    pending = any(isinstance(obj, BonusTransaction) and obj.referred_customer_id in ids for obj in session.new)
    return pending or session.scalar(
        select(BonusTransaction.id).where(BonusTransaction.referred_customer_id.in_(ids)).limit(1)) is not None


def referral_program(session: Session, service: Service | None) -> BonusProgram | None:
    """The program whose referral points are paid: one covering the service first."""
    candidates = covering_programs(session, service) if service is not None else []
    for program in candidates:
        if program.referral_points > 0:
            return program
    return session.scalars(select(BonusProgram).where(
        BonusProgram.active.is_(True), BonusProgram.referral_points > 0).order_by(BonusProgram.id)).first()


def _pay_referral(session: Session, booking: Booking, referred_now: set[int], now: datetime,
                  referred: set[int]) -> None:
    """`referred`: the ids of this flush's customers who were referred (read once per flush)."""
    loaded = sa_inspect(booking).dict.get("customer")
    if _customer_id(booking) not in referred and (loaded is None or loaded.referred_by_id is None):
        return
    customer = loaded or session.get(Customer, booking.customer_id)
    if customer is None or customer.referred_by_id is None or customer.id is None:
        return
    if customer.id in referred_now or customer.referred_by_id == customer.id or customer.erased_at is not None:
        return
    _lock(session, Customer, customer.id)  # two first bookings completed at once: one payout
    referrer = session.get(Customer, customer.referred_by_id)
    if referrer is None or referrer.erased_at is not None or referral_paid(session, customer.id):
        return
    others = select(Booking.id).where(Booking.customer_id == customer.id, Booking.status.has(kind="completed"))
    if booking.id is not None:
        others = others.where(Booking.id != booking.id)
    if session.scalar(others.limit(1)) is not None:
        return  # not the first completed booking
    program = referral_program(session, _service(session, booking))
    if program is None:
        return
    referred_now.add(customer.id)
    session.add(BonusTransaction(
        customer_id=referrer.id, program=program, kind="referral", points=program.referral_points,
        referred_customer_id=customer.id, created_at=now,
        reason=_("Empfehlung: erster Termin von Kund:in #%(id)s abgeschlossen", id=customer.id),
    ))


def reverse_merged_referral(session: Session, kept_id: int, removed_id: int) -> BonusTransaction | None:
    """Merging duplicates: when both records paid their referrer, the removed one's payout
    is taken back (one person, one referral). Called by the merge before it commits."""
    lines = standing(session, BonusTransaction.kind == "referral",
                     BonusTransaction.referred_customer_id.in_((kept_id, removed_id)))
    for line in lines:  # a duplicate that referred itself (now one person: the kept customer)
        if line.customer_id == kept_id:
            return reverse(session, line, _("Empfehlung an sich selbst (Dublette zusammengeführt): zurückgebucht"))
    if len(lines) < 2:
        return None
    removed = next(line for line in lines if line.referred_customer_id == removed_id)
    return reverse(session, removed, _("Empfehlung doppelt (Dublette zusammengeführt): zurückgebucht"))


# --- redeeming a reward ---------------------------------------------------------------
def _check_redeemable(session: Session, customer_id: int, program: BonusProgram) -> None:
    if not program.active:
        raise BonusRefused(_("Das Bonusprogramm „%(name)s“ ist nicht aktiv.", name=program.name))
    points = balance(session, customer_id, program.id)
    if points < program.threshold:
        raise BonusRefused(_("Für die Prämie fehlen noch %(missing)s Punkte (Stand %(balance)s von %(threshold)s).",
                             missing=program.threshold - points, balance=points, threshold=program.threshold))


def reward_amount(program: BonusProgram, gross: Decimal) -> Decimal:
    """What the reward takes off a gross amount: a percentage, or a fixed amount up to it."""
    if gross <= 0:
        return ZERO
    if program.reward_kind == "percent":
        return cents(gross * Decimal(program.reward_value) / 100)
    return min(cents(Decimal(program.reward_value)), gross)


def split_by_rate(amount: Decimal, gross_by_rate: dict[Decimal, Decimal]) -> dict[Decimal, Decimal]:
    """`amount` shared over the VAT rates in proportion to their gross (the remainder
    cent goes to the largest share), so the discount lowers each rate's tax base."""
    total = sum(gross_by_rate.values(), ZERO)
    if total <= 0 or amount <= 0:
        return {}
    shares = {rate: cents(amount * gross / total) for rate, gross in gross_by_rate.items()}
    largest = max(gross_by_rate, key=lambda rate: (gross_by_rate[rate], rate))
    shares[largest] += amount - sum(shares.values(), ZERO)
    return {rate: share for rate, share in shares.items() if share != 0}


def redeem_on_invoice(session: Session, invoice: Invoice, program: BonusProgram) -> BonusTransaction:
    """The reward as discount lines (one per VAT rate, prices incl. VAT) on a draft, paid for
    by a redeem line of −threshold points. BonusRefused when it cannot be (nothing changed).
    The draft and the customer are locked first and the draft read again: a double click
    (or two screens at once) redeems once."""
    _lock(session, Invoice, invoice.id)
    _lock(session, Customer, invoice.customer_id)
    if invoice.id is not None:
        session.refresh(invoice, ["status", "customer_id", "lines"])
    if invoice.status != "draft":
        raise BonusRefused(_("Eine Prämie kann nur auf einen Rechnungsentwurf eingelöst werden."))
    if any(line.bonus_transaction_id is not None for line in invoice.lines):
        raise BonusRefused(_("Auf dieser Rechnung ist bereits eine Prämie eingelöst."))
    _check_redeemable(session, invoice.customer_id, program)
    gross_by_rate: dict[Decimal, Decimal] = {}
    for line in invoice.lines:
        rate = Decimal(line.vat_rate)
        gross_by_rate[rate] = gross_by_rate.get(rate, ZERO) + line.gross
    gross_by_rate = {rate: gross for rate, gross in gross_by_rate.items() if gross > 0}
    amount = reward_amount(program, sum(gross_by_rate.values(), ZERO))
    shares = split_by_rate(amount, gross_by_rate)
    if not shares:
        raise BonusRefused(_("Die Rechnung hat noch keinen Betrag, von dem die Prämie abgezogen werden kann."))
    redemption = BonusTransaction(
        customer_id=invoice.customer_id, program=program, kind="redeem", points=-program.threshold,
        reason=_("Prämie „%(reward)s“ auf Rechnung (Entwurf #%(id)s): −%(amount)s",
                 reward=program.reward_name, id=invoice.id, amount=fmt_money(amount)),
    )
    session.add(redemption)
    session.flush()
    position = max((line.position for line in invoice.lines), default=0)
    for rate, share in sorted(shares.items()):
        position += 1
        invoice.lines.append(InvoiceLine(
            position=position, description=_("Bonus: %(reward)s", reward=program.reward_name),
            quantity=Decimal("1"), unit_price=-share, vat_rate=rate, gross_pricing=True,
            bonus_transaction_id=redemption.id,
        ))
    session.flush()
    return redemption


def reverse_invoice_rewards(session: Session, invoice: Invoice) -> list[BonusTransaction]:
    """Storno: the rewards redeemed on the cancelled invoice give their points back."""
    return _reverse_rewards(session, _reward_ids(invoice), keep_lines=True,
                            reason=_("Storno der Rechnung %(number)s: Prämie zurückgebucht", number=invoice.number))


def _reward_ids(invoice: Invoice) -> list[int]:
    return [line.bonus_transaction_id for line in invoice.lines if line.bonus_transaction_id is not None]


def take_back_invoice_reward(session: Session, invoice: Invoice) -> list[BonusTransaction]:
    """"Prämie zurücknehmen" on a draft: its discount lines go, the points come back."""
    _lock(session, Invoice, invoice.id)
    if invoice.id is not None:
        session.refresh(invoice, ["status", "lines"])
    if invoice.status != "draft" or not _reward_ids(invoice):
        raise BonusRefused(_("Auf diesem Rechnungsentwurf ist keine Prämie eingelöst."))
    corrections = _reverse_rewards(session, _reward_ids(invoice), _("Prämie zurückgenommen"))
    session.flush()
    return corrections


def _booking_invoiced(session: Session, booking: Booking) -> bool:
    """On an invoice that stands (the same rule as the billable bookings)."""
    if booking.id is None:
        return False
    return session.scalar(invoiced(InvoiceLine.booking_id).where(InvoiceLine.booking_id == booking.id)
                          .limit(1)) is not None


def redeem_on_booking(session: Session, booking: Booking, program: BonusProgram) -> BonusTransaction:
    """The reward of a program that covers the booking's service lowers its price (a
    percentage or a fixed amount, at most the price), paid for by a redeem line of
    −threshold points on the booking."""
    _lock(session, Booking, booking.id)  # then read it again: a double click redeems once
    _lock(session, Customer, booking.customer_id)
    if booking.id is not None:
        session.refresh(booking, ["price", "status_id", "status"])
    kind = _status_kind(session, booking, {})
    if kind in ("cancellation", "no_show"):
        raise BonusRefused(_("Auf einen abgesagten oder nicht wahrgenommenen Termin kann keine Prämie "
                             "eingelöst werden."))
    if booking.id is not None and standing(session, BonusTransaction.booking_id == booking.id,
                                           BonusTransaction.kind == "redeem"):
        raise BonusRefused(_("Auf diesen Termin ist bereits eine Prämie eingelöst."))
    if booking.id is not None and _booking_invoiced(session, booking):
        raise BonusRefused(_("Der Termin steht schon auf einer Rechnung: die Prämie dort einlösen."))
    _check_redeemable(session, booking.customer_id, program)
    service = _service(session, booking)
    if service is None or program not in covering_programs(session, service):
        raise BonusRefused(_("Die Prämie „%(reward)s“ gilt nicht für %(service)s.", reward=program.reward_name,
                             service=service.name if service is not None else "–"))
    price = cents(Decimal(_booking_price(session, booking) or 0))
    amount = reward_amount(program, price)
    if amount <= 0:
        raise BonusRefused(_("Der Termin hat keinen Preis, von dem die Prämie abgezogen werden kann."))
    booking.price = price - amount
    redemption = BonusTransaction(
        customer_id=booking.customer_id, program=program, booking=booking, kind="redeem",
        points=-program.threshold, discount=amount,
        reason=_("Prämie „%(reward)s“ auf Termin am %(date)s: %(before)s → %(after)s",
                 reward=program.reward_name, date=fmt_date(to_local(booking.start_at)),
                 before=fmt_money(price), after=fmt_money(booking.price)),
    )
    session.add(redemption)
    session.flush()
    return redemption


def check_price_revert(session: Session, booking: Booking) -> None:
    """A history revert must not bring back a price that a reward lowered (or undo one)
    without its points: refused while the booking has a reward line (ValueError, German)."""
    if session.scalar(select(BonusTransaction.id).where(
            BonusTransaction.booking_id == booking.id, BonusTransaction.kind == "redeem").limit(1)) is not None:
        raise ValueError(_("Der Preis dieses Termins hängt an einer Bonusprämie: bitte die Prämie auf der "
                           "Terminseite einlösen oder zurücknehmen statt den Preis zurückzusetzen."))


def _take_back_booking_reward(session: Session, booking: Booking, line: BonusTransaction, reason: str):
    correction = reverse(session, line, reason)
    if correction is not None and line.discount:
        booking.price = (booking.price or ZERO) + Decimal(line.discount)
    return correction


def undo_booking_reward(session: Session, line: BonusTransaction) -> BonusTransaction:
    """"Prämie zurücknehmen" on a booking: price restored, points back (once)."""
    if line.kind != "redeem" or line.booking_id is None:
        raise BonusRefused(_("Diese Buchung ist keine Prämie auf einen Termin."))
    booking = session.get(Booking, line.booking_id)
    _lock(session, Booking, booking.id)
    session.refresh(booking, ["price"])
    if _booking_invoiced(session, booking):
        raise BonusRefused(_("Der Termin steht schon auf einer Rechnung: die Prämie kann nicht mehr "
                             "zurückgenommen werden."))
    correction = _take_back_booking_reward(session, booking, line, _("Prämie zurückgenommen"))
    if correction is None:
        raise BonusRefused(_("Diese Prämie wurde bereits zurückgenommen."))
    session.flush()
    return correction
