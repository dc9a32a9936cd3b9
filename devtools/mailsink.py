"""A tiny SMTP sink for development.

Every message it receives is stored as a file in a Maildir (``new/``) and a
short summary plus the plain-text body is printed to stdout, so verification
and password-reset links show up in the terminal.

    python -m devtools.mailsink --port 1025 --maildir .run/mail
"""

import argparse
import asyncio
import email
import email.policy
import errno
import mailbox
import signal
import sys
from pathlib import Path

from aiosmtpd.smtp import SMTP


class MaildirHandler:
    """aiosmtpd handler: save to a Maildir, echo a summary to stdout."""

    def __init__(self, maildir: Path):
        self.maildir = mailbox.Maildir(str(maildir), create=True)

    async def handle_DATA(self, server, session, envelope):
        raw = envelope.original_content or envelope.content
        if isinstance(raw, str):
            raw = raw.encode("utf-8", "surrogateescape")
        key = self.maildir.add(raw)
        message = email.message_from_bytes(raw, policy=email.policy.default)
        print_message(message, envelope, key)
        return "250 Message accepted for delivery"


def text_body(message) -> str:
    part = message.get_body(preferencelist=("plain",))
    if part is None:
        part = message.get_body(preferencelist=("html",))
        if part is None:
            return "(no text body)"
    try:
        return part.get_content().rstrip()
    except (LookupError, KeyError, ValueError) as exc:  # odd charset or encoding
        return f"(could not decode body: {exc})"


def print_message(message, envelope, key: str) -> None:
    sender = message.get("From") or envelope.mail_from
    recipients = ", ".join(envelope.rcpt_tos)
    subject = message.get("Subject", "")
    print(f"mailsink: From: {sender} | To: {recipients} | Subject: {subject} [{key}]")
    for line in text_body(message).splitlines():
        print(f"    {line}")
    print("mailsink: " + "-" * 60, flush=True)


async def serve(host: str, port: int, maildir: Path) -> None:
    loop = asyncio.get_running_loop()
    handler = MaildirHandler(maildir)
    server = await loop.create_server(
        lambda: SMTP(handler, hostname="localhost", enable_SMTPUTF8=True),
        host=host,
        port=port,
    )
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    print(f"mailsink: listening on {host}:{port}, saving to {maildir}/new", flush=True)
    async with server:
        await stop.wait()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=1025)
    parser.add_argument("--maildir", type=Path, default=Path(".run/mail"))
    args = parser.parse_args(argv)
    try:
        asyncio.run(serve(args.host, args.port, args.maildir))
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            print(
                f"mailsink: error: port {args.port} on {args.host} is already in use "
                "(another mail sink running? pick another with --port / EMAIL_PORT)",
                file=sys.stderr,
            )
            return 1
        raise
    return 0


if __name__ == "__main__":
    sys.exit(main())
