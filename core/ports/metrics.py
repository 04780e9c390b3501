"""What the service counts for its operators."""

from __future__ import annotations

import abc
from typing import Literal

# The closed sets of outcomes, one place: the services can report nothing else (mypy checks
# it) and the Prometheus adapter pre-creates a series for each.
JobOutcome = Literal["succeeded", "failed", "cancelled"]
EmailOutcome = Literal["sent", "skipped", "retry", "failed"]
WebhookOutcome = Literal["delivered", "retry", "disabled", "deferred", "failed"]


class Metrics(abc.ABC):
    """What the service counts for its operators; the Prometheus adapter implements it."""

    @abc.abstractmethod
    def upload_received(self, size: int) -> None:
        """A video of `size` bytes was accepted."""

    @abc.abstractmethod
    def job_finished(self, outcome: JobOutcome, seconds: float | None = None) -> None:
        """A conversion ended: succeeded (with its duration), failed or cancelled."""

    @abc.abstractmethod
    def email(self, outcome: EmailOutcome) -> None:
        """An email delivery attempt: sent, skipped, retry or failed."""

    @abc.abstractmethod
    def http_request(self, method: str, route: str, status: int, seconds: float) -> None:
        """An HTTP request answered, by route template (never the raw path; "<unmatched>"
        when no route matched). The method is counted as "other" unless it is a standard one."""

    @abc.abstractmethod
    def webhook(self, outcome: WebhookOutcome) -> None:
        """A webhook delivery attempt: delivered, retry, disabled or failed; or a turn waited
        for a receiver's or owner's fair share (deferred)."""


class NullMetrics(Metrics):
    """Counts nothing (unit tests, tools)."""

    def upload_received(self, size: int) -> None:
        pass

    def job_finished(self, outcome: JobOutcome, seconds: float | None = None) -> None:
        pass

    def email(self, outcome: EmailOutcome) -> None:
        pass

    def webhook(self, outcome: WebhookOutcome) -> None:
        pass

    def http_request(self, method: str, route: str, status: int, seconds: float) -> None:
        pass
