"""Sending email."""

from __future__ import annotations

import abc

from core.domain.values import Email


class Mailer(abc.ABC):
    @abc.abstractmethod
    def send(self, email: Email) -> None:
        """Deliver or raise; transient failures raise MailError."""


class MailError(Exception):
    """Mail could not be delivered now; worth retrying."""
