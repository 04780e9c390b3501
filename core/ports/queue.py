"""The task queue: what the services ask the workers to do."""

from __future__ import annotations

import abc


class TaskQueue(abc.ABC):
    @abc.abstractmethod
    def enqueue_convert(self, job_id: str) -> None: ...

    @abc.abstractmethod
    def enqueue_fetch(self, job_id: str) -> None:
        """Download an imported job's video (fetch queue)."""

    @abc.abstractmethod
    def enqueue_notify(self, job_id: str, holder: str | None = None) -> None:
        """Email the owner (notify queue); `holder` names a claim made for that task."""

    @abc.abstractmethod
    def enqueue_account_email(self, user_id: int, kind: str, address: str | None = None) -> None:
        """Send one AccountEmail (notify queue); `address`: the address to confirm, or the old
        address told of a change."""

    @abc.abstractmethod
    def enqueue_event(self, job_id: str, event: str) -> None:
        """Tell the job owner's webhooks about event (webhooks queue)."""

    @abc.abstractmethod
    def enqueue_delivery(self, delivery_id: str, holder: str | None = None) -> None:
        """Deliver (again) one webhook message (webhooks queue)."""

    @abc.abstractmethod
    def pending_convert_ids(self) -> set[str] | None:
        """Job ids waiting in the convert queue; None when the broker cannot tell."""
