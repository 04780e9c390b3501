"""Mailers: SMTP for real delivery, an outbox directory of .eml files as the embedded default."""

from __future__ import annotations

import os
import smtplib
import ssl
import tempfile
import uuid
from email.message import EmailMessage
from email.utils import make_msgid
from urllib.parse import parse_qs, unquote, urlsplit

from core.domain.values import Email
from core.ports.mail import Mailer, MailError


def _message(email: Email, sender: str) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = email.to
    msg["Subject"] = email.subject
    msg["Message-ID"] = email.message_id or make_msgid(domain="vid2mp3.local")
    msg.set_content(email.body)
    return msg


class SMTPMailer(Mailer):
    """Sends over SMTP from a URL: smtp://[user:pass@]host[:port][?starttls=1] or smtps://."""

    def __init__(self, url: str, sender: str, timeout: float = 10.0):
        parts = urlsplit(url)
        if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
            raise ValueError("SMTP_URL must look like smtp://host:port or smtps://host:port")
        self.ssl = parts.scheme == "smtps"
        self.host = parts.hostname
        self.port = parts.port or (465 if self.ssl else 25)
        self.username = unquote(parts.username) if parts.username else None
        self.password = unquote(parts.password) if parts.password else None
        self.starttls = parse_qs(parts.query).get("starttls", ["0"])[0] in ("1", "true", "yes")
        self.sender = sender
        self.timeout = timeout

    def send(self, email: Email) -> None:
        msg = _message(email, self.sender)
        try:
            if self.ssl:
                client: smtplib.SMTP = smtplib.SMTP_SSL(
                    self.host, self.port, timeout=self.timeout, context=ssl.create_default_context()
                )
            else:
                client = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
            with client:
                if self.starttls:
                    client.starttls(context=ssl.create_default_context())
                if self.username:
                    client.login(self.username, self.password or "")
                client.send_message(msg)
        except (OSError, smtplib.SMTPException) as exc:
            raise MailError(f"SMTP delivery to {self.host}:{self.port} failed: {exc}") from exc


class OutboxMailer(Mailer):
    """Writes each email as an .eml file into a directory (atomically, via rename)."""

    def __init__(self, directory: str, sender: str):
        self.directory = directory
        self.sender = sender

    def send(self, email: Email) -> None:
        msg = _message(email, self.sender)
        try:
            os.makedirs(self.directory, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.directory, suffix=".tmp")
            try:
                with os.fdopen(fd, "wb") as fh:
                    fh.write(bytes(msg))
                os.replace(tmp, os.path.join(self.directory, f"{uuid.uuid4().hex}.eml"))
            except BaseException:
                if os.path.exists(tmp):
                    os.unlink(tmp)
                raise
        except OSError as exc:
            raise MailError(f"cannot write to outbox {self.directory}: {exc}") from exc
