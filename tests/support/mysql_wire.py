"""A MySQL forwarder that counts the commands clients send: queries, pings and the rest, read
from the wire protocol's packet headers (independent of the driver under test)."""

from __future__ import annotations

import collections
import socket
import threading
from typing import Callable

from tests.support.proxy import Outage

# Command bytes of the MySQL client/server protocol (each command waits for one answer).
COMMANDS = {0x01: "quit", 0x02: "init_db", 0x03: "query", 0x0E: "ping", 0x16: "prepare"}


class CommandCounter(Outage):
    """Forwards to the MySQL server at target and counts each command by name."""

    def __init__(self, target_host: str, target_port: int):
        super().__init__(target_host, target_port)
        self.counts: collections.Counter[str] = collections.Counter()
        self.statements: list[str] = []
        self._count_lock = threading.Lock()

    def snapshot(self) -> collections.Counter[str]:
        with self._count_lock:
            return collections.Counter(self.counts)

    def _forwarder(self) -> Callable[[bytes, socket.socket], bool]:
        buffer = bytearray()

        def forward(data: bytes, upstream: socket.socket) -> bool:
            buffer.extend(data)
            while len(buffer) >= 4:
                length = int.from_bytes(buffer[:3], "little")
                if len(buffer) < 4 + length:
                    break
                sequence, payload = buffer[3], bytes(buffer[4 : 4 + length])
                del buffer[: 4 + length]
                if sequence == 0 and payload:  # a new command (the handshake has seq >= 1)
                    name = COMMANDS.get(payload[0], f"0x{payload[0]:02x}")
                    with self._count_lock:
                        self.counts[name] += 1
                        if name == "query":
                            self.statements.append(payload[1:].decode("utf-8", "replace"))
            upstream.sendall(data)
            return True

        return forward
