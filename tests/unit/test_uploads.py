import io

import pytest

from api.jobs import content_disposition
from api.uploads import MultipartUpload
from core.domain.errors import InvalidInput

BOUNDARY = b"XyZ123"


def body(*parts: tuple[str, str | None, bytes]) -> bytes:
    out = b""
    for name, filename, data in parts:
        disposition = f'form-data; name="{name}"'
        if filename is not None:
            disposition += f'; filename="{filename}"'
        out += b"--" + BOUNDARY + b"\r\nContent-Disposition: " + disposition.encode() + b"\r\n"
        if filename is not None:
            out += b"Content-Type: application/octet-stream\r\n"
        out += b"\r\n" + data + b"\r\n"
    return out + b"--" + BOUNDARY + b"--\r\n"


def read(raw: bytes):
    upload = MultipartUpload(io.BytesIO(raw), BOUNDARY)
    upload.find_file()
    data = b"".join(upload)
    return upload, data


def test_file_streams_and_later_fields_are_seen():
    payload = bytes(range(256)) * 5000
    upload, data = read(body(("file", "clip.mp4", payload), ("bitrate", None, b"320k")))
    assert data == payload and upload.filename == "clip.mp4"
    assert upload.fields == {"bitrate": "320k"}


def test_fields_before_the_file_are_seen_first():
    raw = body(("bitrate", None, b"128k"), ("file", "a.mp4", b"abc"))
    upload = MultipartUpload(io.BytesIO(raw), BOUNDARY)
    upload.find_file()
    assert upload.fields == {"bitrate": "128k"}
    assert b"".join(upload) == b"abc"


def test_missing_file_part_is_invalid_input():
    with pytest.raises(InvalidInput, match="file"):
        read(body(("other", None, b"x")))


def test_truncated_body_is_invalid_input():
    raw = body(("file", "a.mp4", b"x" * 1000))[:500]
    with pytest.raises(InvalidInput):
        read(raw)


def test_content_disposition_is_rfc6266_safe():
    value = content_disposition('Été "quoted"\\/.mp3')
    assert value.startswith('attachment; filename="')
    ascii_part = value.split(";")[1]
    assert all(32 <= ord(ch) < 127 for ch in value)
    assert '"quoted"' not in ascii_part
    assert "filename*=UTF-8''%C3%89t%C3%A9" in value


class Endless(io.RawIOBase):
    """A request body that never shows its boundary: `limit` bytes of filler, counted."""

    def __init__(self, prefix: bytes, limit: int):
        self.prefix, self.limit, self.sent = prefix, limit, 0

    def readable(self):
        return True

    def read(self, size=-1):
        if self.sent >= self.limit:
            return b""
        size = min(size if size > 0 else 65536, self.limit - self.sent)
        chunk = (self.prefix + b"A" * size)[:size] if self.sent == 0 else b"A" * size
        self.sent += len(chunk)
        return chunk


@pytest.mark.parametrize(
    "prefix",
    [
        b"",  # a preamble that never ends
        # part headers that never end
        b"--" + BOUNDARY + b'\r\nContent-Disposition: form-data; name="file"; filename="x',
    ],
    ids=["preamble", "part-headers"],
)
def test_a_body_without_boundary_or_header_end_is_refused_with_little_read(prefix):
    import tracemalloc

    stream = Endless(prefix, 300 * 2**20)
    tracemalloc.start()
    try:
        with pytest.raises(InvalidInput, match="malformed"):
            MultipartUpload(stream, BOUNDARY).find_file()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert stream.sent <= 64 * 1024  # refused after a few KiB, not after 300 MiB
    assert peak < 1 * 2**20


def test_a_large_file_part_still_streams_with_small_memory():
    import tracemalloc

    payload = b"v" * (8 * 2**20)
    raw = body(("file", "big.mp4", payload))
    tracemalloc.start()
    try:
        upload = MultipartUpload(io.BytesIO(raw), BOUNDARY)
        upload.find_file()
        total = sum(len(chunk) for chunk in upload)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert total == len(payload)
    assert peak < len(raw) + 4 * 2**20  # the test's own copy, plus a few read buffers
