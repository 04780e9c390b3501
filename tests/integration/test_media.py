"""The ffmpeg transcoder and the sniffer against the real bundled ffmpeg, on generated media."""

from __future__ import annotations

import io
import os
import time
import zipfile
from pathlib import Path
from typing import Callable, Iterator

import psutil
import pytest
from celery.exceptions import SoftTimeLimitExceeded

from core.adapters.ffmpeg.transcoder import PROGRESS_SECONDS, FFmpegTranscoder
from core.adapters.sniffer import sniff
from core.domain.errors import MediaError
from core.domain.media import AudioTrack, Encoded, MediaInfo, MediaLimits
from core.domain.options import AudioOptions
from tests.support.media import (
    is_mpeg_audio,
    make_audio_only,
    make_empty,
    make_silent_video,
    make_text_as_mp4,
    make_truncated_mp4,
    make_video,
    make_webm,
    mp3_duration,
)

LIMITS = MediaLimits(
    max_duration=4 * 3600.0,
    min_sample_rate=8000,
    max_output_bytes=600 * 2**20,
    memory_bytes=2048 * 2**20,
)
TRANSCODER = FFmpegTranscoder(LIMITS)


def probe(path: str) -> MediaInfo:
    return TRANSCODER.probe(path)


def encode_audio(
    src: str, dst: str, bitrate: str = "192k", transcoder: FFmpegTranscoder = TRANSCODER, **kwargs
) -> Encoded:
    return transcoder.encode_audio(
        src, dst, AudioOptions(bitrate=bitrate), transcoder.probe(src), **kwargs
    )


def ffmpeg_children() -> list[psutil.Process]:
    """ffmpeg processes (running or zombie) below this test process."""
    found = []
    for child in psutil.Process().children(recursive=True):
        try:
            if "ffmpeg" in child.name():
                found.append(child)
        except psutil.NoSuchProcess:
            pass
    return found


@pytest.fixture(autouse=True)
def no_ffmpeg_left_behind() -> Iterator[None]:
    """Every test must leave no ffmpeg child, running or unreaped."""
    yield
    assert ffmpeg_children() == []


@pytest.fixture(scope="module")
def media_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("media")


@pytest.fixture(scope="module")
def video_mp4(media_dir: Path) -> str:
    return make_video(media_dir, 3.0)


@pytest.fixture(scope="module")
def long_audio(media_dir: Path) -> str:
    """Two minutes of Opus: long enough for ffmpeg to report progress several times."""
    return make_audio_only(media_dir, 120.0, fmt="opus")


@pytest.fixture
def dst(tmp_path: Path) -> str:
    return str(tmp_path / "out.mp3")


def assert_clear_error(error: MediaError) -> None:
    """A message a user can read: one short line, no Python or ffmpeg internals dumped."""
    message = str(error)
    assert message and "\n" not in message and len(message) <= 200
    assert "Traceback" not in message and "moviepy" not in message.lower()


# --- probe ------------------------------------------------------------------------------


def test_probe_describes_a_video(video_mp4: str) -> None:
    info = probe(video_mp4)
    assert info == MediaInfo(
        duration=pytest.approx(3.0, abs=0.1),
        has_audio=True,
        has_video=True,
        audio_codec="aac",
        video_size=(160, 120),
        sample_rate=44100,
        audio_tracks=(AudioTrack("aac", 1, 44100, None),),
    )


def test_probe_rejects_a_playlist(media_dir: Path, tmp_path: Path) -> None:
    segment = make_video(media_dir, 1.0, fmt="ts")
    playlist = tmp_path / "upload.m3u8"
    playlist.write_text(
        f"#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXTINF:1,\n{segment}\n#EXT-X-ENDLIST\n"
    )
    with pytest.raises(MediaError, match=MediaError.NOT_MEDIA) as caught:
        probe(str(playlist))
    assert_clear_error(caught.value)


# --- encode: inputs that work ------------------------------------------------------------


def test_mp4_becomes_an_mp3_of_the_same_duration(video_mp4: str, dst: str) -> None:
    info = encode_audio(video_mp4, dst)
    assert is_mpeg_audio(dst)
    assert mp3_duration(dst) == pytest.approx(3.0, abs=0.2)
    assert info.mode == "encode"
    assert info.duration == pytest.approx(3.0, abs=0.2)


def test_bitrate_sets_the_output_size(video_mp4: str, tmp_path: Path) -> None:
    low, high = str(tmp_path / "128.mp3"), str(tmp_path / "320.mp3")
    encode_audio(video_mp4, low, bitrate="128k")
    encode_audio(video_mp4, high, bitrate="320k")
    ratio = os.path.getsize(high) / os.path.getsize(low)
    assert 2.0 < ratio < 3.0  # 320/128 = 2.5, plus tag and header overhead


def test_an_unknown_bitrate_is_refused(video_mp4: str, dst: str) -> None:
    with pytest.raises(ValueError, match="bitrate"):
        encode_audio(video_mp4, dst, bitrate="100k")
    assert not os.path.exists(dst)


def test_progress_rises_while_ffmpeg_runs(long_audio: str, dst: str) -> None:
    seen: list[tuple[float, float]] = []
    encode_audio(long_audio, dst, on_progress=lambda p: seen.append((time.monotonic(), p)))
    assert seen, "no progress reported during a two-minute encode"
    percents = [p for _, p in seen]
    assert all(0.0 < p < 100.0 for p in percents)  # 100 is the job's done, not a report
    assert all(a < b for a, b in zip(percents, percents[1:]))
    # one report every PROGRESS_SECONDS at most: each is a job write and an event
    gaps = [b - a for (a, _), (b, _) in zip(seen, seen[1:])]
    assert all(gap >= PROGRESS_SECONDS * 0.9 for gap in gaps), gaps
    assert mp3_duration(dst) == pytest.approx(120.0, abs=0.5)


@pytest.mark.parametrize("faststart", [False, True], ids=["moov-at-end", "faststart"])
def test_mp4_works_wherever_its_index_is(media_dir: Path, dst: str, faststart: bool) -> None:
    src = make_video(media_dir, 2.0, faststart=faststart)
    data = Path(src).read_bytes()
    assert (data.index(b"moov") > data.index(b"mdat")) is not faststart
    encode_audio(src, dst)
    assert mp3_duration(dst) == pytest.approx(2.0, abs=0.2)


@pytest.mark.parametrize("streamed", [False, True], ids=["webm", "webm-without-duration"])
def test_webm_works(media_dir: Path, dst: str, streamed: bool) -> None:
    src = make_webm(media_dir, 3.0, streamed=streamed)
    assert (probe(src).duration is None) is streamed
    seen: list[float] = []
    encode_audio(src, dst, on_progress=seen.append)
    assert is_mpeg_audio(dst)
    assert mp3_duration(dst) == pytest.approx(3.0, abs=0.2)
    if streamed:
        assert seen == []  # no input duration, so no percentage to report


@pytest.mark.parametrize("fmt", ["m4a", "wav"])
def test_audio_only_input_works(media_dir: Path, dst: str, fmt: str) -> None:
    src = make_audio_only(media_dir, 3.0, fmt=fmt)
    encode_audio(src, dst)
    assert mp3_duration(dst) == pytest.approx(3.0, abs=0.2)


@pytest.mark.parametrize("fmt", ["mkv", "avi", "mov", "wmv"])
def test_other_containers_work(media_dir: Path, dst: str, fmt: str) -> None:
    src = make_video(media_dir, 2.0, fmt=fmt)
    encode_audio(src, dst)
    assert mp3_duration(dst) == pytest.approx(2.0, abs=0.2)


# --- encode: inputs that fail clearly ----------------------------------------------------


def test_silent_video_fails_with_a_message_about_audio(media_dir: Path, dst: str) -> None:
    with pytest.raises(MediaError, match=MediaError.NO_AUDIO) as caught:
        encode_audio(make_silent_video(media_dir, 2.0), dst)
    assert_clear_error(caught.value)
    assert not os.path.exists(dst)


@pytest.mark.parametrize(
    "make, expected",
    [
        (make_text_as_mp4, MediaError.NOT_MEDIA),
        (make_empty, MediaError.EMPTY),
        (make_truncated_mp4, MediaError.NOT_MEDIA),  # the moov index at the end was cut off
    ],
)
def test_unreadable_input_fails_clearly(
    media_dir: Path, dst: str, make: Callable[[Path], str], expected: str
) -> None:
    with pytest.raises(MediaError) as caught:
        encode_audio(make(media_dir), dst)
    assert str(caught.value) == expected
    assert_clear_error(caught.value)
    assert not os.path.exists(dst)


def test_truncated_faststart_mp4_fails_the_duration_check(media_dir: Path, dst: str) -> None:
    # The index is intact and says 3 s, but only ~40% of the data is there: ffmpeg exits 0
    # with about 1 s of audio, so the duration check has to catch it.
    src = make_truncated_mp4(media_dir, faststart=True)
    assert probe(src).duration == pytest.approx(3.0, abs=0.1)
    with pytest.raises(MediaError) as caught:
        encode_audio(src, dst)
    assert str(caught.value) == MediaError.DAMAGED and "1." in caught.value.detail
    assert_clear_error(caught.value)
    assert not os.path.exists(dst)


# --- encode: interruptions ---------------------------------------------------------------


@pytest.mark.parametrize("interruption", [KeyboardInterrupt, SoftTimeLimitExceeded])
def test_an_interruption_kills_ffmpeg_and_removes_dst(
    long_audio: str, dst: str, interruption: type[BaseException]
) -> None:
    running: list[psutil.Process] = []

    def interrupt(percent: float) -> None:
        running.extend(ffmpeg_children())
        raise interruption()

    with pytest.raises(interruption):
        encode_audio(long_audio, dst, on_progress=interrupt)
    assert running, "ffmpeg should still have been running when progress was reported"
    assert not any(p.is_running() and p.status() != psutil.STATUS_ZOMBIE for p in running)
    assert not os.path.exists(dst)


def test_timeout_kills_ffmpeg_and_removes_dst(long_audio: str, dst: str) -> None:
    impatient = FFmpegTranscoder(LIMITS)
    impatient.timeout_floor, impatient.min_speed = 0.3, 1e9
    with pytest.raises(MediaError) as caught:
        encode_audio(long_audio, dst, transcoder=impatient)
    assert str(caught.value) == MediaError.TOO_SLOW
    assert not os.path.exists(dst)


# --- sniff ------------------------------------------------------------------------------


def head_of(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read(4096)


@pytest.mark.parametrize(
    "make, expected",
    [
        (lambda d: make_video(d, 1.0), "mp4"),
        (lambda d: make_video(d, 1.0, faststart=True), "mp4"),
        (lambda d: make_video(d, 1.0, fmt="mov"), "mov"),
        (lambda d: make_video(d, 1.0, fmt="3gp"), "3gp"),
        (lambda d: make_video(d, 1.0, fmt="mkv"), "matroska/webm"),
        (lambda d: make_webm(d, 1.0), "matroska/webm"),
        (lambda d: make_webm(d, 1.0, streamed=True), "matroska/webm"),
        (lambda d: make_video(d, 1.0, fmt="avi"), "avi"),
        (lambda d: make_video(d, 1.0, fmt="ts"), "mpeg-ts"),
        (lambda d: make_video(d, 1.0, fmt="mpg"), "mpeg-ps"),
        (lambda d: make_video(d, 1.0, fmt="flv"), "flv"),
        (lambda d: make_video(d, 1.0, fmt="ogv"), "ogg"),
        (lambda d: make_video(d, 1.0, fmt="wmv"), "asf"),
        (lambda d: make_silent_video(d, 1.0), "mp4"),
        (lambda d: make_audio_only(d, 1.0, fmt="m4a"), "mp4"),
        (lambda d: make_audio_only(d, 1.0, fmt="wav"), "wav"),
        (lambda d: make_audio_only(d, 1.0, fmt="mp3"), "mp3"),
        (lambda d: make_audio_only(d, 1.0, fmt="flac"), "flac"),
        (lambda d: make_audio_only(d, 1.0, fmt="ogg"), "ogg"),
        (lambda d: make_audio_only(d, 1.0, fmt="aac"), "aac"),
    ],
    ids=[
        "mp4",
        "mp4-faststart",
        "mov",
        "3gp",
        "mkv",
        "webm",
        "webm-streamed",
        "avi",
        "ts",
        "mpg",
        "flv",
        "ogv",
        "wmv",
        "silent-mp4",
        "m4a",
        "wav",
        "mp3",
        "flac",
        "ogg",
        "adts",
    ],
)
def test_sniff_recognizes_generated_media(
    tmp_path: Path, make: Callable[[Path], str], expected: str
) -> None:
    assert sniff(head_of(make(tmp_path))) == expected


def test_sniff_recognizes_our_own_mp3(video_mp4: str, dst: str) -> None:
    encode_audio(video_mp4, dst)
    assert sniff(head_of(dst)) == "mp3"


def test_sniff_recognizes_a_truncated_mp4(media_dir: Path) -> None:
    # The header is intact; rejecting it is ffmpeg's job, later.
    assert sniff(head_of(make_truncated_mp4(media_dir))) == "mp4"


def zip_bytes() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("video.mp4", b"not really")
    return buffer.getvalue()


@pytest.mark.parametrize(
    "make",
    [
        lambda d: make_text_as_mp4(d),
        lambda d: make_empty(d),
    ],
    ids=["text-as-mp4", "empty"],
)
def test_sniff_rejects_generated_non_media(tmp_path: Path, make: Callable[[Path], str]) -> None:
    assert sniff(head_of(make(tmp_path))) is None


@pytest.mark.parametrize(
    "head",
    [
        zip_bytes(),
        b"<!DOCTYPE html>\n<html><head><title>Video</title></head><body></body></html>\n",
        "Протокол встречи, не видео\n".encode("utf-8"),
    ],
    ids=["zip", "html", "utf8-text"],
)
def test_sniff_rejects_non_media_bytes(head: bytes) -> None:
    assert sniff(head) is None
