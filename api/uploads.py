"""Streams a multipart upload part by part, so a video never sits whole in memory or on disk."""

from __future__ import annotations

from typing import IO, Iterator

from werkzeug.sansio.multipart import Data, Epilogue, Field, File, MultipartDecoder, NeedData

from core.domain.errors import InvalidInput

READ_SIZE = 256 * 1024
MAX_FIELD_BYTES = 4096
MAX_PARTS = 16
# Bytes the decoder may take in without producing an event: a preamble or part headers
# longer than this are refused, so a body that never shows its boundary is not buffered.
MAX_HEADER_BYTES = 16 * 1024


class MultipartUpload:
    """Iterating yields the bytes of the file part; text fields land in `fields` as they pass."""

    def __init__(self, stream: IO[bytes], boundary: bytes, file_field: str = "file"):
        self._stream = stream
        self._decoder = MultipartDecoder(boundary, max_parts=MAX_PARTS)
        self._file_field = file_field
        self.filename: str | None = None
        self.fields: dict[str, str] = {}
        self._part: tuple[str, str] | None = None  # (kind, name)
        self._field_buffer = bytearray()
        self._eof = False
        self._unparsed = 0  # bytes received since the decoder last produced an event

    def _events(self) -> Iterator[object]:
        while True:
            try:
                event = self._decoder.next_event()
            except ValueError:
                raise InvalidInput("the multipart body is malformed") from None
            if isinstance(event, NeedData):
                if self._eof:
                    raise InvalidInput("the multipart body ended early")
                if self._unparsed > MAX_HEADER_BYTES:
                    raise InvalidInput(
                        "the multipart body is malformed: no boundary or part "
                        f"headers within {MAX_HEADER_BYTES // 1024} KiB"
                    )
                chunk = self._stream.read(READ_SIZE if self._part else MAX_HEADER_BYTES)
                self._eof = not chunk
                self._unparsed += len(chunk)
                self._decoder.receive_data(chunk or None)
                continue
            self._unparsed = 0
            yield event
            if isinstance(event, Epilogue):
                return

    def find_file(self) -> None:
        """Read text fields until the file part starts; InvalidInput if there is none."""
        for event in self._events():
            if isinstance(event, File) and event.name == self._file_field:
                self.filename = event.filename or "upload"
                self._part = ("file", event.name)
                return
            self._consume(event)
        raise InvalidInput(
            "send the video as multipart form field 'file'", {"fields": {"file": ["missing"]}}
        )

    def _consume(self, event: object) -> None:
        if isinstance(event, Field):
            self._part = ("field", event.name)
            self._field_buffer.clear()
        elif isinstance(event, File):
            self._part = ("other-file", event.name)
        elif isinstance(event, Data) and self._part and self._part[0] == "field":
            self._field_buffer += event.data
            if len(self._field_buffer) > MAX_FIELD_BYTES:
                raise InvalidInput(f"form field {self._part[1]!r} is too long")
            if not event.more_data:
                self.fields[self._part[1]] = self._field_buffer.decode("utf-8", "replace")

    def __iter__(self) -> Iterator[bytes]:
        """The file's bytes; then the rest of the body is read so later fields are known."""
        if self._part is None or self._part[0] != "file":
            self.find_file()
        events = self._events()
        for event in events:
            if isinstance(event, Data) and self._part and self._part[0] == "file":
                if event.data:
                    yield event.data
                if not event.more_data:
                    self._part = None
                    break
            else:
                self._consume(event)
        for event in events:
            self._consume(event)
