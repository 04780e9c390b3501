"""A small Server-Sent Events reader over a streaming `requests` response, for the tests."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any, Iterator

import requests


@dataclass
class Event:
    event: str | None = None  # None for a comment
    id: str | None = None
    data: Any = None
    comment: str | None = None
    received: float = field(default_factory=time.monotonic)


def open_stream(url: str, headers: dict[str, str] | None = None, timeout: float = 30.0):
    """GET url as an event stream (the caller closes the response)."""
    from tests.support.api_statuses import record_http

    return requests.get(
        url,
        headers={"Accept": "text/event-stream", **(headers or {})},
        stream=True,
        timeout=(5, timeout),
        hooks={"response": record_http},
    )


def events(response: requests.Response) -> Iterator[Event]:
    """The frames of the stream as they arrive, comments included, until it ends."""
    current = Event()
    data: list[str] = []
    for line in response.iter_lines(chunk_size=None, decode_unicode=True):
        if line == "":
            if data or current.event or current.id:
                current.data = json.loads("\n".join(data)) if data else None
                current.received = time.monotonic()
                yield current
            current, data = Event(), []
            continue
        name, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if name == "":
            yield Event(comment=value.strip())
        elif name == "data":
            data.append(value)
        elif name == "event":
            current.event = value
        elif name == "id":
            current.id = value
