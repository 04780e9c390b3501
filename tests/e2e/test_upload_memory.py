"""Large uploads reuse the API's memory (core/malloc.py): with glibc's default settings each
MiB of an upload went through buffers whose pages were new to the process, a page fault
for every 4 KiB (28,000 faults for a 32 MiB body; 45-61 ms of the API's CPU per 13 MiB
upload, 23-29 ms with core/malloc.py). The real gunicorn's workers are watched through /proc."""

from __future__ import annotations

import wave
from pathlib import Path

import psutil
import pytest

from tests.support.client import login
from tests.support.stack import running_api

pytestmark = pytest.mark.e2e

BODY_BYTES = 32 * 1024 * 1024
PAGE = 4096


def minor_faults(pid: int) -> int:
    """Minor page faults of a process (field 10 of /proc/<pid>/stat)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    return int(stat[stat.rindex(")") + 2 :].split()[7])


def api_faults(api) -> int:
    workers = psutil.Process(api.processes["api"].pid).children()
    assert workers, "gunicorn has no worker"
    return sum(minor_faults(w.pid) for w in workers)


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    settings = {"WEB_CONCURRENCY": "1", "API_THREADS": "2", "MAX_UPLOAD_MB": "64"}
    with running_api(tmp_path_factory.mktemp("upload-memory"), settings) as running:
        yield running


@pytest.fixture(scope="module")
def big_wav(tmp_path_factory) -> Path:
    """A 32 MiB WAV of silence (a sound the sniffer accepts), written without ffmpeg."""
    path = tmp_path_factory.mktemp("wav") / "silence.wav"
    with wave.open(str(path), "wb") as out:
        out.setnchannels(2)
        out.setsampwidth(2)
        out.setframerate(44100)
        out.writeframes(bytes(BODY_BYTES))
    return path


def test_an_upload_does_not_fault_in_a_page_per_4_kib_it_receives(api, big_wav):
    user = login(api, api.settings.admin_email, api.settings.admin_password)

    def upload() -> None:
        with open(big_wav, "rb") as fh:
            answer = user.post("/upload", files={"file": ("silence.wav", fh)})
        assert answer.status_code == 202, answer.text

    for _ in range(3):  # the arenas grow once, to what an upload needs at its peak
        upload()
    before = api_faults(api)
    upload()
    upload()
    per_upload = (api_faults(api) - before) / 2
    body_pages = BODY_BYTES // PAGE
    assert per_upload < body_pages / 4, (
        f"{per_upload:.0f} page faults per {BODY_BYTES >> 20} MiB upload "
        f"({body_pages} pages received)"
    )
