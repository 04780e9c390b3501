"""A real SMTP server (aiosmtpd) on a free port that keeps what it receives."""
from __future__ import annotations

import email
import socket
import threading
from contextlib import contextmanager
from email.message import Message
from typing import Iterator

from aiosmtpd.controller import Controller


class Inbox:
    def __init__(self):
        self.messages: list[Message] = []
        self._lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):  # aiosmtpd handler hook
        with self._lock:
            self.messages.append(email.message_from_bytes(envelope.content))
        return "250 OK"

    def received(self) -> list[Message]:
        with self._lock:
            return list(self.messages)


@contextmanager
def smtp_server() -> Iterator[tuple[Inbox, int]]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield inbox, port
    finally:
        controller.stop()
