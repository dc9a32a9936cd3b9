"""Test helpers: an HTTP client that speaks to the live server with a real Host header, and a mail sink."""

from __future__ import annotations

import asyncio
import email
import email.policy
import itertools
import re
import socket
import threading
import uuid
from dataclasses import dataclass, field

import requests
from aiosmtpd.controller import Controller

from devtools.waits import wait_until

PASSWORD = "correct-Horse-battery-9"
# Limits on waits for something that comes sooner or later (an answer, a mail): they say "never", not "slow".
ANSWER_TIMEOUT = 120.0
_counter = itertools.count(1)


def unique_email(prefix: str = "user", domain: str = "example.org") -> str:
    return f"{prefix}{next(_counter)}-{uuid.uuid4().hex[:6]}@{domain}"


class Api:
    """One browser-like client of one host: its own cookie jar, its Host header on every request.

    Cookie-authenticated writes carry the CSRF header, as a frontend would;
    `csrf=False` leaves it off.
    """

    def __init__(self, base_url: str, host: str) -> None:
        self.base_url = base_url
        self.host = host
        self.session = requests.Session()

    def request(
        self,
        method: str,
        path: str,
        *,
        token: str | None = None,
        csrf: bool = True,
        headers: dict | None = None,
        **kwargs,
    ) -> requests.Response:
        headers = {"Host": self.host, **(headers or {})}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        if csrf and "csrftoken" in self.session.cookies:
            headers.setdefault("X-CSRFToken", self.session.cookies["csrftoken"])
        # Generous: an answer that comes late on a busy machine is still an answer.
        kwargs.setdefault("timeout", ANSWER_TIMEOUT)
        return self.session.request(method, self.base_url + path, headers=headers, **kwargs)

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, **kw):
        return self.request("POST", path, **kw)

    def put(self, path, **kw):
        return self.request("PUT", path, **kw)

    def patch(self, path, **kw):
        return self.request("PATCH", path, **kw)

    def delete(self, path, **kw):
        return self.request("DELETE", path, **kw)

    def cookie(self, name: str) -> str | None:
        return self.session.cookies.get(name)

    def login(self, email_address: str, password: str = PASSWORD) -> requests.Response:
        response = self.post("/accounts/login/", json={"email": email_address, "password": password})
        assert response.status_code == 200, response.text
        return response

    def admin_login(self, email_address: str, password: str = PASSWORD) -> requests.Response:
        """The Django admin's login form (platform domain): 302 to /admin/ on success, the form again if not."""
        if not self.cookie("csrftoken"):
            self.get("/admin/login/")
        return self.post(
            "/admin/login/?next=/admin/",
            allow_redirects=False,
            data={
                "username": email_address,
                "password": password,
                "next": "/admin/",
                "csrfmiddlewaretoken": self.cookie("csrftoken"),
            },
        )


@dataclass
class SentMail:
    to: list[str]
    subject: str
    text: str
    html: str | None
    message_id: str = ""


@dataclass
class MailSink:
    """A real SMTP server (aiosmtpd) in the test process, keeping what it receives.

    `hold()` makes it take each message's DATA and not answer until `release()`; a held message whose client
    goes away before the answer is dropped, not kept (the client was never told it was taken: it sends it
    again). `stop()`/`start()` take it off the network and back.

    Its port stays reserved while it is stopped: `reservation`, a socket bound to it (with SO_REUSEADDR, as
    asyncio binds the server's, and never listening), is held for the sink's whole life. Connections are refused
    while it is stopped, and no other process gets the port from the kernel meanwhile (`free_port()` elsewhere in
    a parallel run), so `start()` can always listen on it again.
    """

    messages: list[SentMail] = field(default_factory=list)
    held: list[str] = field(default_factory=list)  # recipients of messages it is holding (or held)
    dropped: list[str] = field(default_factory=list)  # recipients of held messages whose client went away
    lock: threading.Lock = field(default_factory=threading.Lock)
    gate: threading.Event = field(default_factory=threading.Event)
    controller: Controller | None = None
    port: int = 0
    host: str = "127.0.0.1"
    reservation: socket.socket | None = None

    def __post_init__(self) -> None:
        self.gate.set()

    def hold(self) -> None:
        self.gate.clear()

    def release(self) -> None:
        self.gate.set()

    def holding(self, address: str) -> bool:
        with self.lock:
            return address.lower() in self.held

    def start(self) -> None:
        if self.reservation is None:
            self.reservation = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            self.reservation.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self.reservation.bind((self.host, self.port))  # port 0: the kernel's choice
            self.port = self.reservation.getsockname()[1]
        self.controller = Controller(self, hostname=self.host, port=self.port)
        self.controller.start()

    def stop(self) -> None:
        self.controller.stop()

    def close(self) -> None:
        self.stop()
        if self.reservation is not None:
            self.reservation.close()

    async def handle_DATA(self, server, session, envelope):
        if not self.gate.is_set():
            with self.lock:
                self.held.extend(r.lower() for r in envelope.rcpt_tos)
            try:
                await asyncio.get_running_loop().run_in_executor(None, self.gate.wait)
            except asyncio.CancelledError:  # aiosmtpd cancels the handler when the connection is lost
                with self.lock:
                    self.dropped.extend(r.lower() for r in envelope.rcpt_tos)
                raise
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        text = message.get_body(("plain",))
        html = message.get_body(("html",))
        with self.lock:
            self.messages.append(
                SentMail(
                    to=[r.lower() for r in envelope.rcpt_tos],
                    subject=str(message["subject"]),
                    text=text.get_content() if text else "",
                    html=html.get_content() if html else None,
                    message_id=str(message["message-id"] or ""),
                )
            )
        return "250 OK"

    def to(self, address: str) -> list[SentMail]:
        with self.lock:
            return [m for m in self.messages if address.lower() in m.to]

    def wait_for(self, address: str, *, count: int = 1, timeout: float = ANSWER_TIMEOUT) -> list[SentMail]:
        wait_until(
            lambda: len(self.to(address)) >= count,
            timeout,
            lambda: f"expected {count} mail(s) to {address}, got {len(self.to(address))}",
            interval=0.05,
        )
        return self.to(address)


def start_mail_sink(host: str = "127.0.0.1", port: int = 0) -> MailSink:
    sink = MailSink(port=port, host=host)
    sink.start()
    return sink


def link_in(mail: SentMail, pattern: str) -> re.Match:
    match = re.search(pattern, mail.text)
    assert match, f"no link matching {pattern!r} in:\n{mail.text}"
    return match
