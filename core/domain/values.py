"""Small values several parts share: numbers users write, the clock the repositories
keep, a page of a listing, an email."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

_DIGITS = re.compile(r"[0-9]+")
MAX_DIGITS = 18  # below 2**63: every such number fits a BIGINT


def ascii_int(text: str | None, max_digits: int = MAX_DIGITS) -> int | None:
    """The number written in text as 1 to max_digits plain ASCII digits, else None."""
    if text is None or len(text) > max_digits or not _DIGITS.fullmatch(text):
        return None
    return int(text)


def utcnow() -> datetime:
    """Now as the naive UTC datetime the repositories store."""
    return datetime.now(timezone.utc).replace(tzinfo=None)


@dataclass
class Page:
    """One page of a listing, with the total count."""

    items: list[Any]
    page: int
    per_page: int
    total: int


@dataclass
class Email:
    to: str
    subject: str
    body: str
    message_id: str | None = None
