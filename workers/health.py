"""Probe: exit 0 when this host's worker for QUEUE answers a ping, else 1.

`python -m workers.health convert` (a Kubernetes startup/liveness probe command)."""

from __future__ import annotations

import socket
import sys

from celeryconfig import QUEUES
from core.bootstrap import Container
from core.settings import ConfigError, Settings


def main(argv: list[str]) -> int:
    if len(argv) < 1 or argv[0] not in QUEUES:
        print(f"usage: python -m workers.health {{{'|'.join(QUEUES)}}} [host]", file=sys.stderr)
        return 2
    host = argv[1] if len(argv) > 1 else socket.gethostname()
    node = f"{argv[0]}@{host}"
    try:
        app = Container(Settings.from_env()).celery
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    try:
        replies = app.control.ping(destination=[node], timeout=3.0)
    except Exception as exc:  # broker down: not healthy, and say why
        print(f"{node}: broker unreachable: {exc}", file=sys.stderr)
        return 1
    if any(node in reply for reply in replies):
        print(f"{node}: ok")
        return 0
    print(f"{node}: no reply", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
