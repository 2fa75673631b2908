"""The invoice as a PDF (A4, fpdf2): the content of the printable view
(templates/terminbuch/invoice_print.html with invoice_macros.html lines_table) — sender line,
addressee as issued, number and date, the Storno's reference, the lines with net / VAT / gross,
the VAT per rate and the totals, the note. A draft says "Entwurf" and is marked as no valid
invoice on every page.

The text is in the user's language (gettext, like the screens); numbers and amounts are German
(app.formatting). The fonts are embedded (subset) from app/static/fonts: DejaVu Sans, which
has the umlauts, €, „ “ and – that the core PDF fonts (latin-1) lack, and no system font is
needed at run time."""
from __future__ import annotations

from pathlib import Path

from flask import has_request_context
from flask_babel import get_locale
from flask_babel import gettext as _
from fpdf import FPDF, FontFace
from fpdf.enums import TableBordersLayout, XPos, YPos

from app.formatting import fmt_date, fmt_money, fmt_rate, to_local
from app.models import Invoice

FONT_DIR = Path(__file__).resolve().parent.parent / "static" / "fonts"
FONT = "DejaVuSans"
FONT_FILES = {"": "DejaVuSans.ttf", "B": "DejaVuSans-Bold.ttf"}

# the page of the print CSS: @page { size: A4; margin: 20mm 18mm 20mm 22mm }, in mm
MARGIN_TOP, MARGIN_RIGHT, MARGIN_BOTTOM, MARGIN_LEFT = 20, 18, 20, 22
BODY_PT, SENDER_PT, TITLE_PT, TABLE_PT, FOOTER_PT = 10, 8, 14, 8.5, 7.5
MIN_TABLE_PT = 6.5  # the lines table shrinks to this size before its columns wrap
RECIPIENT_HEIGHT = 35  # .tb-recipient { min-height: 35mm }: the window of the envelope
CELL_PADDING = (1.2, 1.0)  # mm, vertical and horizontal
MUTED, RULE, LINE_GREY, RED = (102, 102, 102), (153, 153, 153), (200, 200, 200), (170, 0, 0)
WATERMARK_GREY = (232, 232, 232)
MIN_DESCRIPTION = 40  # mm: the description's column is at least this wide
PAGES_SENTINEL = 987654321


class _InvoicePDF(FPDF):
    """A4 pages with the print view's margins; a draft's watermark, page numbers below."""

    def __init__(self, invoice: Invoice):
        super().__init__(orientation="P", unit="mm", format="A4")
        self.draft = invoice.status == "draft"
        self.label = str(invoice)  # the number, or "Entwurf #id"
        for style, name in FONT_FILES.items():
            self.add_font(FONT, style, str(FONT_DIR / name))
        self.set_margins(MARGIN_LEFT, MARGIN_TOP, MARGIN_RIGHT)
        self.set_auto_page_break(True, margin=MARGIN_BOTTOM)
        self.alias_nb_pages()

    def header(self) -> None:
        if not self.draft:
            return
        with self.local_context(text_color=WATERMARK_GREY):
            self.set_font(FONT, "B", 72)
            text = _("Entwurf").upper()
            x = (self.w - self.get_string_width(text)) / 2
            with self.rotation(angle=45, x=self.w / 2, y=self.h / 2):
                self.text(x, self.h / 2 + self.font_size * 0.36, text)  # the capitals' middle on the centre
        self.set_font(FONT, "", BODY_PT)

    def footer(self) -> None:
        self.set_y(-MARGIN_BOTTOM + 6)
        with self.local_context(text_color=MUTED):
            self.set_font(FONT, "", FOOTER_PT)
            # the pagination's message (%d): a number stands for the page count, which fpdf2
            # fills in at the end through its alias
            text = _("Seite %(page)d von %(pages)d", page=self.page_no(), pages=PAGES_SENTINEL)
            text = text.replace(str(PAGES_SENTINEL), self.str_alias_nb_pages)
            self.cell(0, 4, f"{self.label} · {text}", align="L")


def _column_widths(pdf: FPDF, rows: list[list[str]], bold: list[list[str]], width: float) -> tuple[list[float], float]:
    """(widths, font size): each column as wide as its widest text (`bold`: the headings and the
    sum), the description the rest — in the table's font size, or a smaller one (down to
    MIN_TABLE_PT) when the amounts would leave the description less than MIN_DESCRIPTION."""
    pad = 2 * CELL_PADDING[1] + 0.5
    size = TABLE_PT
    while True:
        widths = []
        for column in range(len(bold[0])):
            widest = 0.0
            for style, texts in (("", rows), ("B", bold)):
                pdf.set_font(FONT, style, size)
                widest = max([widest, *(pdf.get_string_width(row[column]) for row in texts)])
            widths.append(widest + pad)
        others = sum(widths) - widths[1]
        if width - others >= MIN_DESCRIPTION or size <= MIN_TABLE_PT:
            break
        size -= 0.5
    widths[1] = max(width - others, MIN_DESCRIPTION)
    if sum(widths) > width:  # still too wide: the amount columns share what is left (and wrap)
        scale = (width - widths[1]) / others
        widths = [w if index == 1 else w * scale for index, w in enumerate(widths)]
    return widths, size


def _lines_table(pdf: FPDF, invoice: Invoice) -> None:
    """lines_table of invoice_macros.html: the lines, the VAT per rate, the totals."""
    headings = [_("Pos."), _("Beschreibung"), _("Menge"), _("Einzelpreis"), _("Netto"), _("MwSt.-Satz"),
                _("MwSt."), _("Brutto")]
    rows = [
        [str(line.position), line.description or "", fmt_rate(line.quantity),
         f"{fmt_money(line.unit_price)} {_('brutto') if line.gross_pricing else _('netto')}",
         fmt_money(line.net), f"{fmt_rate(line.vat_rate)} %", fmt_money(line.vat), fmt_money(line.gross)]
        for line in invoice.lines
    ]
    # below the lines: (label, net, VAT, gross) per VAT rate, then the sum (in bold)
    totals = [(_("davon %(rate)s %% MwSt.", rate=fmt_rate(rate)), fmt_money(net), fmt_money(vat), fmt_money(gross))
              for rate, net, vat, gross in invoice.vat_breakdown()]
    totals.append((_("Summe"), fmt_money(invoice.total_net), fmt_money(invoice.total_vat),
                   fmt_money(invoice.total_gross)))
    # the totals stand in Netto, MwSt. and Brutto: they count for those columns' widths
    sizing = [["", "", "", "", net, "", vat, gross] for _label, net, vat, gross in totals]
    width = pdf.w - pdf.l_margin - pdf.r_margin
    widths, size = _column_widths(pdf, rows + sizing[:-1], [headings, sizing[-1]], width)
    pdf.set_font(FONT, "", size)
    right, left = "RIGHT", "LEFT"
    line_height = pdf.font_size * 1.3
    with pdf.local_context(draw_color=LINE_GREY, line_width=0.2), pdf.table(
        width=width, col_widths=widths, align=left, text_align=(left, left, right, right, right, right, right, right),
        borders_layout=TableBordersLayout.HORIZONTAL_LINES, headings_style=FontFace(emphasis="BOLD"),
        line_height=line_height, padding=CELL_PADDING, v_align="TOP",
    ) as table:
        table.row(headings)
        for cells in rows:
            table.row(cells)
        if not rows:
            table.row().cell(_("Noch keine Positionen."), colspan=8, style=FontFace(color=MUTED))
        for index, (label, net, vat, gross) in enumerate(totals, start=1):
            row = table.row(style=FontFace(emphasis="BOLD") if index == len(totals) else None)
            row.cell(label, colspan=4, align=right)
            for text in (net, "", vat, gross):
                row.cell(text)
    # tfoot th { border-top: 2px solid #000 }: the line above the sum (its row: one line high)
    top = pdf.y - line_height - 2 * CELL_PADDING[0]
    with pdf.local_context(line_width=0.5):
        pdf.line(pdf.l_margin, top, pdf.l_margin + width, top)


def invoice_pdf(invoice: Invoice, business_name: str, business_address: str) -> bytes:
    """The invoice as an A4 PDF (the printable view's content)."""
    draft = invoice.status == "draft"
    number = invoice.number or _("Entwurf")
    pdf = _InvoicePDF(invoice)
    pdf.set_title(str(invoice))
    pdf.set_author(business_name or "Terminbuch")
    pdf.set_creator("Terminbuch")
    locale = get_locale() if has_request_context() else None
    pdf.set_lang(str(locale or "de").replace("_", "-"))
    pdf.add_page()
    content = pdf.w - pdf.l_margin - pdf.r_margin

    # .tb-sender: name · address in one small line, underlined
    sender = " · ".join(part for part in [business_name, *(business_address or "").splitlines()] if part.strip())
    with pdf.local_context(text_color=MUTED):
        pdf.set_font(FONT, "", SENDER_PT)
        pdf.multi_cell(content, 4, sender, align="L", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    with pdf.local_context(draw_color=RULE, line_width=0.2):
        pdf.line(pdf.l_margin, pdf.y + 0.5, pdf.l_margin + content, pdf.y + 0.5)
    pdf.ln(4)

    # .tb-recipient: the addressee, at least the height of the envelope's window
    top = pdf.y
    name, address = invoice.addressee()
    pdf.set_font(FONT, "", BODY_PT)
    pdf.multi_cell(content / 2, 5, "\n".join(part for part in (name, address) if part), align="L",
                   new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_y(max(pdf.y, top + RECIPIENT_HEIGHT))

    # .tb-meta: number and date, right-aligned
    issued_on = fmt_date(to_local(invoice.issued_at)) if invoice.issued_at else "–"
    for label, value, style in ((_("Rechnungsnummer"), number, "B"), (_("Rechnungsdatum"), issued_on, "")):
        pdf.set_font(FONT, style, BODY_PT)
        value_width = pdf.get_string_width(value) + 1
        pdf.set_font(FONT, "", BODY_PT)
        pdf.cell(content - value_width, 5, f"{label}:", align="R")
        pdf.set_font(FONT, style, BODY_PT)
        pdf.cell(value_width, 5, value, align="R", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.ln(8)

    # h1: Rechnung, or the Storno's reference to the cancelled invoice
    title = (_("Stornorechnung zu %(number)s", number=invoice.cancels.number) if invoice.cancels
             else _("Rechnung"))
    pdf.set_font(FONT, "B", TITLE_PT)
    pdf.multi_cell(content, 7, title, align="L", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    if draft:
        with pdf.local_context(text_color=RED):
            pdf.set_font(FONT, "B", BODY_PT)
            pdf.multi_cell(content, 5, _("Entwurf – keine gültige Rechnung"), align="L",
                           new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.ln(4)

    _lines_table(pdf, invoice)
    if invoice.note:
        pdf.ln(5)
        pdf.set_font(FONT, "", BODY_PT)
        pdf.multi_cell(content, 5, invoice.note, align="L", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    return bytes(pdf.output())
