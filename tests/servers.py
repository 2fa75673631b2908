"""Real servers for the notification tests, in the test process on 127.0.0.1 and a free
port: an SMTP server (aiosmtpd) that keeps what it receives, and an HTTP server that
records each request and answers with a programmable sequence of status codes (the SMS
gateway and the Telegram Bot API). Fixtures `smtp_server` and `http_stub` are in
tests/conftest.py; `configured` sets config values for one test and restores them."""
from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult

HOST = "127.0.0.1"
_MISSING = object()


@contextmanager
def configured(app, **values) -> Iterator[None]:
    """Set `app.config` values for the block (the app fixture is session-wide)."""
    previous = {key: app.config.get(key, _MISSING) for key in values}
    app.config.update(values)
    try:
        yield
    finally:
        for key, value in previous.items():
            if value is _MISSING:
                app.config.pop(key, None)
            else:
                app.config[key] = value


def closed_port() -> int:
    """A port on 127.0.0.1 where nothing listens (connecting is refused)."""
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


# --- SMTP ------------------------------------------------------------------------------
@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage
    raw: bytes

    @property
    def text(self) -> str:
        """The decoded body with the wire's CRLF line ends as "\\n"."""
        return self.message.get_content().replace("\r\n", "\n")


class _Handler:
    def __init__(self, server: SmtpServer):
        self.server = server

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.server.rcpt_reply:
            return self.server.rcpt_reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        raw = envelope.original_content or envelope.content
        self.server.messages.append(Received(
            mail_from=envelope.mail_from, rcpt_tos=list(envelope.rcpt_tos), raw=raw,
            message=message_from_bytes(raw, policy=policy.default),
        ))
        return "250 Message accepted"


class _FreePortController(Controller):
    """aiosmtpd's Controller on port 0: the port the system chose is read back before
    the Controller connects to its own server."""

    def _trigger_server(self):
        if self.port == 0 and self.server is not None:
            self.port = self.server.sockets[0].getsockname()[1]
        super()._trigger_server()


@dataclass
class SmtpServer:
    """An SMTP server collecting messages. `rcpt_reply` (e.g. "550 No such user") refuses
    every recipient; `logins` records AUTH attempts when started with `auth=True`."""

    auth: bool = False
    messages: list[Received] = field(default_factory=list)
    logins: list[tuple[str, str]] = field(default_factory=list)
    rcpt_reply: str | None = None
    controller: Controller | None = None

    def _authenticate(self, server, session, envelope, mechanism, auth_data) -> AuthResult:
        login, password = auth_data.login.decode(), auth_data.password.decode()
        self.logins.append((login, password))
        return AuthResult(success=password == "richtig", handled=False)

    def start(self) -> SmtpServer:
        extra = {"authenticator": self._authenticate, "auth_require_tls": False} if self.auth else {}
        self.controller = _FreePortController(_Handler(self), hostname=HOST, port=0, **extra)
        self.controller.start()
        return self

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None

    @property
    def port(self) -> int:
        assert self.controller is not None
        return self.controller.port

    def config(self, **extra) -> dict:
        """The MAIL_* settings that send to this server (plain SMTP, no STARTTLS)."""
        return {"MAIL_SERVER": HOST, "MAIL_PORT": self.port, "MAIL_USE_TLS": False, "MAIL_USE_SSL": False,
                "MAIL_USERNAME": None, "MAIL_PASSWORD": None, "MAIL_SENDER": "Terminbuch <termine@test.example>",
                "NOTIFY_TIMEOUT": 5, **extra}


# --- HTTP ------------------------------------------------------------------------------
@dataclass
class Request:
    method: str
    path: str  # with the query string
    headers: dict[str, str]
    json: object
    at: float = field(default_factory=time.monotonic)  # when it arrived (time.monotonic())

    @property
    def query(self) -> dict[str, str]:
        """The query string's arguments (the last value of each)."""
        return dict(parse_qsl(urlsplit(self.path).query, keep_blank_values=True))


class HttpStub:
    """An HTTP server recording requests (POST with its JSON body, GET with its query string,
    e.g. Nominatim's /search). Answers come from `answer(...)`: status codes (or (status,
    JSON body) pairs) used in turn, the last one for every later request."""

    def __init__(self) -> None:
        self.requests: list[Request] = []
        self._answers: list[tuple[int, object]] = [(200, {"ok": True, "result": {}})]
        self._lock = threading.Lock()
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                try:
                    payload = json.loads(raw.decode("utf-8")) if raw else None
                except ValueError:
                    payload = raw
                self._reply(*stub._next(Request("POST", self.path, dict(self.headers.items()), payload)))

            def do_GET(self):
                self._reply(*stub._next(Request("GET", self.path, dict(self.headers.items()), None)))

            def _reply(self, status: int, body: object) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                if 300 <= status < 400:
                    self.send_header("Location", "/elsewhere")
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format, *args):
                pass

        self.server = ThreadingHTTPServer((HOST, 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, name="http-stub", daemon=True)

    def _next(self, request: Request) -> tuple[int, object]:
        with self._lock:
            self.requests.append(request)
            return self._answers.pop(0) if len(self._answers) > 1 else self._answers[0]

    def answer(self, *answers: int | tuple[int, object]) -> HttpStub:
        def full(value):
            if isinstance(value, tuple):
                return value
            body = {"ok": True, "result": {"message_id": 1}} if value < 300 else \
                {"ok": False, "error_code": value, "description": f"Stub error {value}"}
            return value, body

        with self._lock:
            self._answers = [full(value) for value in answers]
        return self

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.server.server_address[1]}"

    def start(self) -> HttpStub:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@contextmanager
def silent_port() -> Iterator[int]:
    """A port that accepts connections (the kernel's backlog) but never says a word:
    every read times out."""
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        sock.listen(8)
        yield sock.getsockname()[1]
