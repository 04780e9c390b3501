"""Webhooks: receivers and deliveries, and the sender that posts a signed message."""

from __future__ import annotations

import abc
from datetime import datetime
from typing import Any

from core.domain.webhooks import WebhookDelivery, WebhookEndpoint


class WebhookRepository(abc.ABC):
    @abc.abstractmethod
    def add_endpoint(self, endpoint: WebhookEndpoint) -> WebhookEndpoint: ...

    @abc.abstractmethod
    def get_endpoint(self, endpoint_id: str) -> WebhookEndpoint | None: ...

    @abc.abstractmethod
    def list_endpoints(self, owner_id: int) -> list[WebhookEndpoint]: ...

    @abc.abstractmethod
    def endpoints_for(self, owner_id: int, event: str) -> list[WebhookEndpoint]:
        """The owner's enabled endpoints subscribed to event."""

    @abc.abstractmethod
    def delete_endpoint(self, endpoint_id: str) -> bool: ...

    @abc.abstractmethod
    def job_endpoint(self, endpoint: WebhookEndpoint) -> WebhookEndpoint:
        """The receiver of one job's own webhook_url (endpoint.job_id), added unless it is
        there already; listed nowhere but under its job."""

    @abc.abstractmethod
    def endpoint_of_job(self, job_id: str) -> WebhookEndpoint | None: ...

    @abc.abstractmethod
    def signing_secret(self, owner_id: int, new: str, replace: bool = False) -> str:
        """The account's signing secret for its jobs' own webhooks: `new` becomes it when it
        has none yet (or, with replace, in any case); returns the one in force."""

    @abc.abstractmethod
    def disable_endpoint(self, endpoint_id: str) -> None: ...

    @abc.abstractmethod
    def add_delivery(self, delivery: WebhookDelivery) -> bool:
        """Insert unless (endpoint, job, event) has one already; True when inserted."""

    @abc.abstractmethod
    def get_delivery(self, delivery_id: str) -> WebhookDelivery | None: ...

    @abc.abstractmethod
    def list_deliveries(self, endpoint_id: str, limit: int) -> list[WebhookDelivery]:
        """Newest first."""

    @abc.abstractmethod
    def update_delivery(self, delivery_id: str, changes: dict[str, Any]) -> None: ...

    @abc.abstractmethod
    def claim_delivery(
        self, delivery_id: str, holder: str, until: datetime, now: datetime, force: bool = False
    ) -> bool:
        """Let holder send the delivery until `until`: True when it is neither delivered nor
        failed and no other holder's claim runs at `now` (a holder may extend its own;
        `force` takes it from any holder: a manual redelivery)."""

    @abc.abstractmethod
    def unannounced(self, ended_after: datetime, ended_before: datetime) -> list[tuple[str, str]]:
        """(job_id, event) for jobs that ended within the window, unchanged since its end,
        while an enabled endpoint of their owner was subscribed to the outcome's event, and
        that endpoint has no delivery of the job: events whose emission was lost."""


class WebhookSender(abc.ABC):
    """Posts one signed webhook message to a receiver."""

    @abc.abstractmethod
    def check_url(self, url: str) -> None:
        """Raise InvalidInput unless url is http(s) and every address it resolves to may be
        called (public, unless private receivers are allowed)."""

    @abc.abstractmethod
    def send(self, url: str, secret: str, msg_id: str, body: str) -> int:
        """Sign and POST body; the receiver's status code (redirects are not followed).
        Raises WebhookError when no answer came (refused address, timeout, connection)."""


class WebhookError(Exception):
    """A webhook message got no answer; the message is a short reason, safe to show."""
