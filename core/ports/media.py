"""The media tools: an early sniff of an upload's first bytes, and the transcoder."""

from __future__ import annotations

import abc
from typing import Callable

from core.domain.media import Encoded, MediaInfo
from core.domain.options import AudioOptions


class Sniffer(abc.ABC):
    """A fast early refusal of uploads that are not audio or video; not the gate itself."""

    head_bytes: int = 4096

    @abc.abstractmethod
    def sniff(self, head: bytes) -> str | None:
        """Short container name when the first bytes carry a known signature, else None."""


class Transcoder(abc.ABC):
    """Runs the untrusted media tool. Raises MediaError with a user-facing reason."""

    @abc.abstractmethod
    def probe(self, path: str) -> MediaInfo: ...

    @abc.abstractmethod
    def encode_audio(
        self,
        src: str,
        dst: str,
        options: AudioOptions,
        source: MediaInfo | None = None,
        on_progress: Callable[[float], None] | None = None,
        should_stop: Callable[[], bool] | None = None,
    ) -> Encoded:
        """Write src's chosen audio track with the options applied at dst, in the options'
        format (copied when the track is in the format's codec already and no option changes
        it); stops early when should_stop().
        Without `source` (a probe's result) it describes src itself, within the same ceilings;
        `Encoded.source` is the description either way."""
