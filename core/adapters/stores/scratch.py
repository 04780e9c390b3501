"""Scratch directories on local disk: one per conversion attempt, never shared."""

from __future__ import annotations

import glob
import os
import re
import shutil
from contextlib import contextmanager
from typing import Iterator

from core.ports.files import ScratchSpace

_ID = re.compile(r"^[0-9a-f]{32}$")


class LocalScratch(ScratchSpace):
    def __init__(self, root: str):
        self.root = root

    @contextmanager
    def attempt(self, job_id: str, attempt_id: str) -> Iterator[str]:
        if not (_ID.match(job_id) and _ID.match(attempt_id)):
            raise ValueError("job and attempt ids are 32 hex digits")
        os.makedirs(self.root, mode=0o700, exist_ok=True)
        for leftover in glob.glob(os.path.join(self.root, f"job-{job_id}-*")):
            if not leftover.endswith(attempt_id):
                shutil.rmtree(leftover, ignore_errors=True)
        path = os.path.join(self.root, f"job-{job_id}-{attempt_id}")
        os.mkdir(path, 0o700)
        try:
            yield path
        finally:
            shutil.rmtree(path, ignore_errors=True)
