"""Mailers against a real SMTP server and a real outbox directory."""

import email

import pytest

from core.adapters.mail import OutboxMailer, SMTPMailer
from core.domain.values import Email
from core.ports.mail import MailError
from tests.support.smtp import smtp_server

MESSAGE = Email(
    to="owner@example.com",
    subject="Your MP3 is ready",
    body="Job abc is done.",
    message_id="<job-abc@vid2mp3>",
)


def test_smtp_delivers_the_email():
    with smtp_server() as (inbox, port):
        SMTPMailer(f"smtp://127.0.0.1:{port}", "vid2mp3 <noreply@example.com>").send(MESSAGE)
        [received] = inbox.received()
    assert received["To"] == "owner@example.com" and received["Subject"] == "Your MP3 is ready"
    assert received["Message-ID"] == "<job-abc@vid2mp3>"
    assert "Job abc is done." in received.get_payload(decode=True).decode()


def test_smtp_down_raises_mail_error():
    with smtp_server() as (_, port):
        pass  # stopped: nothing listens on port now
    with pytest.raises(MailError):
        SMTPMailer(f"smtp://127.0.0.1:{port}", "noreply@example.com", timeout=2).send(MESSAGE)


def test_outbox_writes_one_eml_per_email(tmp_path):
    OutboxMailer(str(tmp_path / "outbox"), "noreply@example.com").send(MESSAGE)
    [eml] = list((tmp_path / "outbox").iterdir())
    assert eml.suffix == ".eml"
    parsed = email.message_from_bytes(eml.read_bytes())
    assert parsed["To"] == "owner@example.com"


@pytest.mark.parametrize("url", ["http://host", "smtp://", "mail.example.com"])
def test_bad_smtp_urls_are_refused(url):
    with pytest.raises(ValueError):
        SMTPMailer(url, "noreply@example.com")
