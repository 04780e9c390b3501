"""Polling with a deadline: the only way the tests wait for work (shared with bench and make up).

Every deadline a test sets is for an idle machine; `TEST_TIME_SCALE` (a number, default 1)
multiplies them all, for a machine busy with other work: `TEST_TIME_SCALE=3 make test`. It
stretches how long a test waits, never the delays or timeouts the code under test is given.
"""

from __future__ import annotations

import os
from typing import Callable, TypeVar

from devtools import processes

T = TypeVar("T")


def _time_scale(raw: str) -> float:
    try:
        scale = float(raw)
    except ValueError:
        scale = 0.0
    if not scale > 0 or scale == float("inf"):
        raise ValueError(f"TEST_TIME_SCALE must be a number above 0 (e.g. 3), not {raw!r}")
    return scale


TIME_SCALE = _time_scale(os.environ.get("TEST_TIME_SCALE", "1"))


def scaled(seconds: float) -> float:
    """A deadline of `seconds` on an idle machine, times TEST_TIME_SCALE."""
    return seconds * TIME_SCALE


def wait_for(
    check: Callable[[], T], timeout: float = 30.0, interval: float = 0.05, what: str = "condition"
) -> T:
    """Call check until it returns something truthy; fail naming `what` after the (scaled)
    timeout."""
    return processes.wait_for(check, scaled(timeout), interval, what)
