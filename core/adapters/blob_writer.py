"""What both blob stores hand to a caller while a file streams in."""
from __future__ import annotations

import hashlib
from typing import Any, Callable


class ChecksumWriter:
    """Passes bytes to a sink, counting the size and the md5 as they go."""

    def __init__(self, fid: str, sink: Callable[[bytes], Any]):
        self.fid = fid
        self.size = 0
        self._sink = sink
        self._md5 = hashlib.md5(usedforsecurity=False)

    def write(self, data: bytes) -> int:
        """Append data; returns the number of bytes written."""
        self._sink(data)
        self._md5.update(data)
        written = memoryview(data).nbytes
        self.size += written
        return written

    @property
    def md5(self) -> str:
        """Hex md5 of everything written so far."""
        return self._md5.hexdigest()
