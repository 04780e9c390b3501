"""One-time upload links: their records, found by the hash of their token."""

from __future__ import annotations

import abc
from datetime import datetime

from core.domain.upload_links import UploadLink


class UploadLinkRepository(abc.ABC):
    @abc.abstractmethod
    def add(self, link: UploadLink) -> UploadLink: ...

    @abc.abstractmethod
    def get(self, link_id: str) -> UploadLink | None: ...

    @abc.abstractmethod
    def find(self, token_hash: bytes) -> UploadLink | None:
        """The link of a token (deleted ones too), by an indexed lookup of its hash."""

    @abc.abstractmethod
    def list(self, owner_id: int) -> list[UploadLink]:
        """The owner's links that are not deleted, newest first."""

    @abc.abstractmethod
    def count_open(self, owner_id: int, now: datetime) -> int:
        """The owner's links still waiting for their file."""

    @abc.abstractmethod
    def delete(self, link_id: str, now: datetime) -> bool:
        """Mark deleted (its token then answers 410); False when it was already."""

    @abc.abstractmethod
    def claim(
        self, link_id: str, now: datetime, stale_before: datetime, resumable_stale_before: datetime
    ) -> bool:
        """Take the link for one upload: True for exactly one caller while it is open, unused,
        not deleted and not claimed since stale_before (resumable_stale_before when the claim
        holds a resumable upload). Forgets the resumable upload of an earlier claim."""

    @abc.abstractmethod
    def attach(self, link_id: str, upload_id: str, now: datetime) -> None:
        """The claim holds this resumable upload (and was renewed now)."""

    @abc.abstractmethod
    def complete(self, link_id: str, job_id: str) -> None:
        """The claimed upload made its job: the link is used."""

    @abc.abstractmethod
    def release(self, link_id: str) -> None:
        """The claimed upload failed: the link takes a file again."""
