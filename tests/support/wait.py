"""Polling with a deadline: the only way the tests wait for work (shared with bench and make up)."""

from devtools.processes import wait_for

__all__ = ["wait_for"]
