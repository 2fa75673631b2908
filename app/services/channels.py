"""Sending one message over one channel — the only code that talks to a mail server or a
gateway. `send(channel, recipient, subject, body)` reads the app's config:

- "email": SMTP with smtplib (MAIL_SERVER, MAIL_PORT; MAIL_USE_SSL → SMTPS,
  MAIL_USE_TLS → STARTTLS; MAIL_USERNAME/MAIL_PASSWORD if set; from MAIL_SENDER),
  a UTF-8 text message with Date and Message-ID;
- "sms": a provider-agnostic JSON POST {"to", "from", "text"} to SMS_GATEWAY_URL with
  `Authorization: Bearer SMS_GATEWAY_TOKEN`;
- "telegram": the Bot API's sendMessage at TELEGRAM_API_URL with TELEGRAM_BOT_TOKEN.

SMS and Telegram carry the body only (the texts are written to stand alone). Every
connection has the timeout NOTIFY_TIMEOUT. A failure is a `TransientSendError` (worth
retrying: server away, timeout, HTTP 5xx/429, SMTP 4xx, connection dropped) or a
`PermanentSendError` (retrying cannot help: channel not set up, recipient refused,
HTTP 4xx, Telegram `ok: false`). Their texts are short, German and go into the
notification log, so they never contain the message, a password or a token.
"""
from __future__ import annotations

import json
import smtplib
import ssl
import urllib.error
import urllib.request
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import formatdate, make_msgid, parseaddr
from http.client import HTTPException
from urllib.parse import urlsplit

from flask import current_app

CHANNEL_NAMES = ("email", "sms", "telegram")
MAX_ANSWER = 64 * 1024  # bytes of a gateway's answer we read
MAX_DETAIL = 120  # characters of a gateway's own error description kept in our text


class SendError(Exception):
    """Sending failed; str() is the German text for the notification log."""


class TransientSendError(SendError):
    """Worth retrying later (with back-off)."""


class PermanentSendError(SendError):
    """Retrying cannot help: a configuration or recipient problem."""


def send(channel: str, recipient: str, subject: str, body: str) -> None:
    """Send one message; raises TransientSendError or PermanentSendError."""
    senders = {"email": send_email, "sms": send_sms, "telegram": send_telegram}
    sender = senders.get(channel)
    if sender is None:
        raise PermanentSendError(f"Unbekannter Kanal „{channel}“.")
    if not (recipient or "").strip():
        raise PermanentSendError("Kein Empfänger angegeben.")
    sender(recipient.strip(), subject, body)


def _config(key: str, default=None):
    return current_app.config.get(key, default)


def _timeout() -> float:
    try:
        return float(_config("NOTIFY_TIMEOUT") or 10)
    except (TypeError, ValueError):
        return 10.0


# --- e-mail ----------------------------------------------------------------------------
def build_email(sender: str, recipient: str, subject: str, body: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = recipient
    message["Subject"] = " ".join((subject or "").split())  # one line: no header injection
    message["Date"] = formatdate(localtime=False, usegmt=True)
    domain = parseaddr(sender)[1].rpartition("@")[2] or "localhost"
    message["Message-ID"] = make_msgid(domain=domain)
    message.set_content(body or "", charset="utf-8")
    return message


def _mail_address(value: str, what: str = "E-Mail-Adresse") -> str:
    """The bare address of `value`; PermanentSendError when it is none."""
    _name, address = parseaddr(value)
    if not address or "@" not in address or any(char in address for char in "\r\n"):
        raise PermanentSendError(f"Ungültige {what}.")
    try:
        Address(addr_spec=address)
    except (ValueError, IndexError) as exc:
        raise PermanentSendError(f"Ungültige {what}.") from exc
    return address


def _smtp_code_error(code: int, what: str) -> SendError:
    text = f"{what} (SMTP {code})."
    return TransientSendError(text) if 400 <= code < 500 else PermanentSendError(text)


def send_email(recipient: str, subject: str, body: str) -> None:
    server = _config("MAIL_SERVER")
    if not server:
        raise PermanentSendError("E-Mail-Versand ist nicht eingerichtet (MAIL_SERVER fehlt).")
    sender = _config("MAIL_SENDER") or "termine@localhost"
    from_address = _mail_address(sender, "Absenderadresse (MAIL_SENDER)")
    to_address = _mail_address(recipient)
    message = build_email(sender, to_address, subject, body)
    port = int(_config("MAIL_PORT") or (465 if _config("MAIL_USE_SSL") else 587))
    timeout = _timeout()
    try:
        if _config("MAIL_USE_SSL"):
            smtp = smtplib.SMTP_SSL(server, port, timeout=timeout, context=ssl.create_default_context())
        else:
            smtp = smtplib.SMTP(server, port, timeout=timeout)
    except ssl.SSLError as exc:
        raise PermanentSendError("TLS-Verbindung zum Mailserver fehlgeschlagen.") from exc
    except smtplib.SMTPConnectError as exc:
        raise _smtp_code_error(exc.smtp_code, "Mailserver nimmt keine Verbindung an") from exc
    except (smtplib.SMTPException, OSError) as exc:
        raise TransientSendError("Mailserver nicht erreichbar.") from exc
    try:
        _deliver(smtp, from_address, to_address, message)
    finally:
        try:
            smtp.quit()
        except (smtplib.SMTPException, OSError):
            smtp.close()


def _deliver(smtp: smtplib.SMTP, from_address: str, to_address: str, message: EmailMessage) -> None:
    try:
        if _config("MAIL_USE_TLS") and not _config("MAIL_USE_SSL"):
            smtp.starttls(context=ssl.create_default_context())
        if _config("MAIL_USERNAME"):
            smtp.login(_config("MAIL_USERNAME"), _config("MAIL_PASSWORD") or "")
        smtp.send_message(message, from_addr=from_address, to_addrs=[to_address])
    except smtplib.SMTPNotSupportedError as exc:
        raise PermanentSendError(
            "Der Mailserver unterstützt eine nötige Erweiterung nicht (STARTTLS, Anmeldung oder SMTPUTF8).") from exc
    except smtplib.SMTPAuthenticationError as exc:
        raise _smtp_code_error(exc.smtp_code, "Anmeldung am Mailserver abgelehnt") from exc
    except smtplib.SMTPRecipientsRefused as exc:
        code = next(iter(exc.recipients.values()), (550, b""))[0]
        raise _smtp_code_error(code, "Empfängeradresse abgelehnt") from exc
    except smtplib.SMTPSenderRefused as exc:
        raise _smtp_code_error(exc.smtp_code, "Absenderadresse abgelehnt") from exc
    except smtplib.SMTPServerDisconnected as exc:
        raise TransientSendError("Verbindung zum Mailserver abgebrochen.") from exc
    except smtplib.SMTPResponseException as exc:
        raise _smtp_code_error(exc.smtp_code, "Mailserver lehnt die Nachricht ab") from exc
    except ssl.SSLError as exc:
        raise PermanentSendError("TLS-Verbindung zum Mailserver fehlgeschlagen.") from exc
    except (smtplib.SMTPException, OSError) as exc:  # timeouts, resets
        raise TransientSendError("Mailserver nicht erreichbar.") from exc


# --- HTTP gateways ---------------------------------------------------------------------
class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A redirected POST would arrive as a GET without its text: treat 3xx as an answer."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


_opener = urllib.request.build_opener(_NoRedirect)


def post_json(url: str, payload: dict, headers: dict[str, str], service: str) -> tuple[int, bytes]:
    """POST `payload` as JSON; returns (status, answer) of a 2xx answer. Raises Transient-
    (unreachable, timeout, 5xx, 429) or PermanentSendError (any other status). `service`
    names the other side in the error text; the URL is never part of it (it may hold a token)."""
    if urlsplit(url).scheme not in ("http", "https"):
        raise PermanentSendError(f"{service}: Adresse muss mit http:// oder https:// beginnen.")
    request = urllib.request.Request(
        url, data=json.dumps(payload, ensure_ascii=False).encode("utf-8"), method="POST",
        headers={"Content-Type": "application/json; charset=utf-8", "Accept": "application/json",
                 "User-Agent": "Terminbuch", **headers},
    )
    try:
        with _opener.open(request, timeout=_timeout()) as response:
            return response.status, response.read(MAX_ANSWER)
    except urllib.error.HTTPError as exc:
        status, answer = exc.code, _read_quietly(exc)
        exc.close()
        if status == 429 or status >= 500:
            raise TransientSendError(f"{service} antwortet HTTP {status}.") from None
        raise HttpRefused(f"{service} lehnt ab: HTTP {status}.", status, answer) from None
    except urllib.error.URLError as exc:
        if isinstance(exc.reason, ssl.SSLError):
            raise PermanentSendError(f"{service}: TLS-Verbindung fehlgeschlagen.") from None
        raise TransientSendError(f"{service} nicht erreichbar.") from None
    except ssl.SSLError:
        raise PermanentSendError(f"{service}: TLS-Verbindung fehlgeschlagen.") from None
    except (HTTPException, OSError):  # timeout while reading, connection reset
        raise TransientSendError(f"{service} nicht erreichbar.") from None


class HttpRefused(PermanentSendError):
    """A 4xx answer (other than 429), with its status and body for a closer look."""

    def __init__(self, text: str, status: int, answer: bytes):
        super().__init__(text)
        self.status, self.answer = status, answer


def _read_quietly(response: urllib.error.HTTPError) -> bytes:
    try:
        return response.read(MAX_ANSWER)
    except (HTTPException, OSError):
        return b""


def _detail(answer: bytes) -> str:
    """A gateway's own error description ("description" of a JSON answer), shortened."""
    try:
        data = json.loads(answer.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return ""
    text = data.get("description") if isinstance(data, dict) else None
    if not isinstance(text, str):
        return ""
    text = " ".join(text.split())
    return text if len(text) <= MAX_DETAIL else text[: MAX_DETAIL - 1] + "…"


# --- SMS -------------------------------------------------------------------------------
def send_sms(recipient: str, subject: str, body: str) -> None:
    from app.services.phone import normalize_phone

    url = _config("SMS_GATEWAY_URL")
    if not url:
        raise PermanentSendError("SMS-Versand ist nicht eingerichtet (SMS_GATEWAY_URL fehlt).")
    number = normalize_phone(recipient)
    if number is None:
        raise PermanentSendError("Ungültige Telefonnummer.")
    headers = {}
    token = _config("SMS_GATEWAY_TOKEN")
    if token:
        headers["Authorization"] = f"Bearer {token}"
    payload = {"to": number, "from": _config("SMS_SENDER") or "Terminbuch", "text": body or ""}
    post_json(url, payload, headers, "SMS-Gateway")


# --- Telegram --------------------------------------------------------------------------
def send_telegram(recipient: str, subject: str, body: str) -> None:
    token = _config("TELEGRAM_BOT_TOKEN")
    if not token:
        raise PermanentSendError("Telegram-Versand ist nicht eingerichtet (TELEGRAM_BOT_TOKEN fehlt).")
    base = (_config("TELEGRAM_API_URL") or "https://api.telegram.org").rstrip("/")
    try:
        _status, answer = post_json(f"{base}/bot{token}/sendMessage", {"chat_id": recipient, "text": body or ""},
                                    {}, "Telegram")
    except HttpRefused as exc:
        detail = _detail(exc.answer)
        raise PermanentSendError(f"Telegram lehnt ab: {detail}" if detail else str(exc)) from None
    try:
        data = json.loads(answer.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise PermanentSendError("Telegram: unverständliche Antwort.") from None
    if not isinstance(data, dict) or data.get("ok") is not True:
        detail = _detail(answer)
        raise PermanentSendError(f"Telegram lehnt ab: {detail}" if detail else "Telegram lehnt ab.")
