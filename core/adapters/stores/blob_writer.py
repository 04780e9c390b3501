"""What both blob stores hand to a caller while a file streams in."""

from __future__ import annotations

from typing import Any, Callable


class CountingWriter:
    """Passes bytes to a sink and counts them: the size is known without a second pass."""

    def __init__(self, fid: str, sink: Callable[[bytes], Any]):
        self.fid = fid
        self.size = 0
        self._sink = sink

    def write(self, data: bytes) -> int:
        """Append data; returns the number of bytes written."""
        self._sink(data)
        written = memoryview(data).nbytes
        self.size += written
        return written
