"""The three channels against real servers on 127.0.0.1 (tests/servers.py): what arrives
at the SMTP server, the SMS gateway and the Telegram Bot API, and which failures are
transient (retried) or permanent — with short German texts that never hold the message
or a token."""
from __future__ import annotations

import pytest

from app.services.channels import PermanentSendError, TransientSendError, send
from tests.servers import HOST, closed_port, configured, silent_port

TOKEN = "geheimes-token-123"
BOT_TOKEN = "4711:bot-geheimnis"
BODY = "Hallo Anna,\n\nIhr Termin ist bestätigt: Montag, 14. Januar um 09:00 Uhr. Grüße aus Köln – ÄÖÜß ✓"


def sms_config(stub, **extra) -> dict:
    return {"SMS_GATEWAY_URL": f"{stub.url}/v1/sms", "SMS_GATEWAY_TOKEN": TOKEN, "SMS_SENDER": "Studio",
            "NOTIFY_TIMEOUT": 5, **extra}


def telegram_config(stub, **extra) -> dict:
    return {"TELEGRAM_API_URL": stub.url, "TELEGRAM_BOT_TOKEN": BOT_TOKEN, "NOTIFY_TIMEOUT": 5, **extra}


def assert_clean(error: Exception, *secrets: str) -> None:
    text = str(error)
    assert text and len(text) < 200
    for secret in (BODY, "Ihr Termin", TOKEN, BOT_TOKEN, *secrets):
        assert secret not in text, (secret, text)


# --- e-mail ------------------------------------------------------------------------------
def test_email_arrives_as_utf8_text_with_date_and_message_id(app_ctx, smtp_server):
    with configured(app_ctx, **smtp_server.config()):
        send("email", "anna@example.org", "Buchungsbestätigung: Einzelstunde", BODY)
    [received] = smtp_server.messages
    assert received.rcpt_tos == ["anna@example.org"]
    assert received.mail_from == "termine@test.example"
    message = received.message
    assert message["To"] == "anna@example.org"
    assert message["From"] == "Terminbuch <termine@test.example>"
    assert message["Subject"] == "Buchungsbestätigung: Einzelstunde"
    assert message["Date"] and message["Message-ID"].endswith("@test.example>")
    assert message.get_content_type() == "text/plain" and message.get_content_charset() == "utf-8"
    assert received.text.rstrip("\n") == BODY


def test_email_subject_stays_one_header_line(app_ctx, smtp_server):
    with configured(app_ctx, **smtp_server.config()):
        send("email", "anna@example.org", "Termin\r\nBcc: spion@example.org", "Text")
    [received] = smtp_server.messages
    assert received.rcpt_tos == ["anna@example.org"]
    assert received.message["Bcc"] is None
    assert received.message["Subject"] == "Termin Bcc: spion@example.org"


def test_email_login_with_username_and_password(app_ctx):
    from tests.servers import SmtpServer

    server = SmtpServer(auth=True).start()
    try:
        with configured(app_ctx, **server.config(MAIL_USERNAME="studio", MAIL_PASSWORD="richtig")):
            send("email", "anna@example.org", "Betreff", "Text")
        assert server.logins == [("studio", "richtig")] and len(server.messages) == 1
        with configured(app_ctx, **server.config(MAIL_USERNAME="studio", MAIL_PASSWORD="falsch")), \
                pytest.raises(PermanentSendError) as refused:
            send("email", "anna@example.org", "Betreff", "Text")
        assert "Anmeldung" in str(refused.value)
        assert_clean(refused.value, "falsch", "richtig")
        assert len(server.messages) == 1
    finally:
        server.stop()


@pytest.mark.parametrize(("reply", "error"), [("550 5.1.1 No such user", PermanentSendError),
                                              ("450 4.2.1 Mailbox busy", TransientSendError)])
def test_refused_recipient_is_permanent_for_5xx_and_transient_for_4xx(app_ctx, smtp_server, reply, error):
    smtp_server.rcpt_reply = reply
    with configured(app_ctx, **smtp_server.config()), pytest.raises(error) as failed:
        send("email", "weg@example.org", "Betreff", BODY)
    assert "Empfängeradresse abgelehnt" in str(failed.value) and reply[:3] in str(failed.value)
    assert_clean(failed.value)
    assert smtp_server.messages == []


def test_starttls_asked_for_but_not_offered_is_permanent(app_ctx, smtp_server):
    with configured(app_ctx, **smtp_server.config(MAIL_USE_TLS=True)), pytest.raises(PermanentSendError) as failed:
        send("email", "anna@example.org", "Betreff", BODY)
    assert "STARTTLS" in str(failed.value)
    assert smtp_server.messages == []


def test_mail_server_not_running_is_transient(app_ctx):
    with configured(app_ctx, MAIL_SERVER=HOST, MAIL_PORT=closed_port(), MAIL_USE_TLS=False, MAIL_USE_SSL=False,
                    NOTIFY_TIMEOUT=2), pytest.raises(TransientSendError) as failed:
        send("email", "anna@example.org", "Betreff", BODY)
    assert str(failed.value) == "Mailserver nicht erreichbar."


def test_silent_mail_server_times_out_as_transient(app_ctx):
    with silent_port() as port, configured(app_ctx, MAIL_SERVER=HOST, MAIL_PORT=port, MAIL_USE_TLS=False,
                                           MAIL_USE_SSL=False, NOTIFY_TIMEOUT=0.5), \
            pytest.raises(TransientSendError):
        send("email", "anna@example.org", "Betreff", BODY)


def test_email_not_configured_is_permanent_in_german(app_ctx):
    with configured(app_ctx, MAIL_SERVER=None), pytest.raises(PermanentSendError) as failed:
        send("email", "anna@example.org", "Betreff", BODY)
    assert str(failed.value) == "E-Mail-Versand ist nicht eingerichtet (MAIL_SERVER fehlt)."


def test_invalid_address_is_permanent(app_ctx, smtp_server):
    with configured(app_ctx, **smtp_server.config()), pytest.raises(PermanentSendError) as failed:
        send("email", "keine-adresse", "Betreff", BODY)
    assert str(failed.value) == "Ungültige E-Mail-Adresse."
    assert smtp_server.messages == []


def test_unknown_channel_is_permanent(app_ctx):
    with pytest.raises(PermanentSendError):
        send("fax", "+49301234567", "Betreff", BODY)


# --- SMS -----------------------------------------------------------------------------------
def test_sms_is_a_json_post_with_bearer_token(app_ctx, http_stub):
    with configured(app_ctx, **sms_config(http_stub)):
        send("sms", "0151 2345 678", "Betreff", BODY)
    [request] = http_stub.requests
    assert (request.method, request.path) == ("POST", "/v1/sms")
    assert request.headers["Authorization"] == f"Bearer {TOKEN}"
    assert request.headers["Content-Type"].startswith("application/json")
    assert request.json == {"to": "+491512345678", "from": "Studio", "text": BODY}


@pytest.mark.parametrize("status", [500, 503, 429])
def test_sms_gateway_5xx_and_429_are_transient(app_ctx, http_stub, status):
    http_stub.answer(status)
    with configured(app_ctx, **sms_config(http_stub)), pytest.raises(TransientSendError) as failed:
        send("sms", "+491512345678", "Betreff", BODY)
    assert str(failed.value) == f"SMS-Gateway antwortet HTTP {status}."
    assert_clean(failed.value)


@pytest.mark.parametrize("status", [400, 401, 404, 302])
def test_sms_gateway_4xx_and_redirects_are_permanent(app_ctx, http_stub, status):
    http_stub.answer(status)
    with configured(app_ctx, **sms_config(http_stub)), pytest.raises(PermanentSendError) as failed:
        send("sms", "+491512345678", "Betreff", BODY)
    assert str(failed.value) == f"SMS-Gateway lehnt ab: HTTP {status}."
    assert_clean(failed.value)
    assert len(http_stub.requests) == 1  # a redirect is not followed


def test_sms_gateway_unreachable_or_silent_is_transient(app_ctx):
    with configured(app_ctx, SMS_GATEWAY_URL=f"http://{HOST}:{closed_port()}/sms", SMS_GATEWAY_TOKEN=TOKEN,
                    NOTIFY_TIMEOUT=2), pytest.raises(TransientSendError) as failed:
        send("sms", "+491512345678", "Betreff", BODY)
    assert str(failed.value) == "SMS-Gateway nicht erreichbar."
    with silent_port() as port, configured(app_ctx, SMS_GATEWAY_URL=f"http://{HOST}:{port}/sms",
                                           SMS_GATEWAY_TOKEN=TOKEN, NOTIFY_TIMEOUT=0.5), \
            pytest.raises(TransientSendError):
        send("sms", "+491512345678", "Betreff", BODY)


def test_sms_not_configured_or_bad_number_is_permanent(app_ctx, http_stub):
    with configured(app_ctx, SMS_GATEWAY_URL=None), pytest.raises(PermanentSendError) as failed:
        send("sms", "+491512345678", "Betreff", BODY)
    assert str(failed.value) == "SMS-Versand ist nicht eingerichtet (SMS_GATEWAY_URL fehlt)."
    with configured(app_ctx, **sms_config(http_stub)), pytest.raises(PermanentSendError) as failed:
        send("sms", "12", "Betreff", BODY)
    assert str(failed.value) == "Ungültige Telefonnummer."
    with configured(app_ctx, **sms_config(http_stub, SMS_GATEWAY_URL="file:///etc/passwd")), \
            pytest.raises(PermanentSendError):
        send("sms", "+491512345678", "Betreff", BODY)
    assert http_stub.requests == []


# --- Telegram ------------------------------------------------------------------------------
def test_telegram_posts_send_message_with_the_bot_token_in_the_path(app_ctx, http_stub):
    with configured(app_ctx, **telegram_config(http_stub)):
        send("telegram", "987654", "Betreff", BODY)
    [request] = http_stub.requests
    assert request.path == f"/bot{BOT_TOKEN}/sendMessage"
    assert request.json == {"chat_id": "987654", "text": BODY}


def test_telegram_ok_false_is_permanent(app_ctx, http_stub):
    http_stub.answer((200, {"ok": False, "description": "Forbidden: bot was blocked by the user"}))
    with configured(app_ctx, **telegram_config(http_stub)), pytest.raises(PermanentSendError) as failed:
        send("telegram", "987654", "Betreff", BODY)
    assert str(failed.value) == "Telegram lehnt ab: Forbidden: bot was blocked by the user"
    assert_clean(failed.value)


def test_telegram_400_is_permanent_with_its_description_and_without_the_token(app_ctx, http_stub):
    http_stub.answer((400, {"ok": False, "error_code": 400, "description": "Bad Request: chat not found"}))
    with configured(app_ctx, **telegram_config(http_stub)), pytest.raises(PermanentSendError) as failed:
        send("telegram", "987654", "Betreff", BODY)
    assert str(failed.value) == "Telegram lehnt ab: Bad Request: chat not found"
    assert_clean(failed.value)


def test_telegram_5xx_and_unreachable_are_transient(app_ctx, http_stub):
    http_stub.answer(502)
    with configured(app_ctx, **telegram_config(http_stub)), pytest.raises(TransientSendError) as failed:
        send("telegram", "987654", "Betreff", BODY)
    assert str(failed.value) == "Telegram antwortet HTTP 502."
    with configured(app_ctx, **telegram_config(http_stub, TELEGRAM_API_URL=f"http://{HOST}:{closed_port()}")), \
            pytest.raises(TransientSendError) as failed:
        send("telegram", "987654", "Betreff", BODY)
    assert_clean(failed.value)


def test_telegram_not_configured_is_permanent(app_ctx):
    with configured(app_ctx, TELEGRAM_BOT_TOKEN=None), pytest.raises(PermanentSendError) as failed:
        send("telegram", "987654", "Betreff", BODY)
    assert str(failed.value) == "Telegram-Versand ist nicht eingerichtet (TELEGRAM_BOT_TOKEN fehlt)."
