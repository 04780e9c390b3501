"""Uploads written by an attacker, against the real bundled ffmpeg.

Each manifest points at a local "victim" file (or a loopback listener): the test proves its
content never reaches an MP3, that ffmpeg never opened it (strace), and that no connection is
made. Bombs (1 Hz WAVs, endless sources, huge outputs) fail fast with a clear reason."""

from __future__ import annotations

import os
import shutil
import socket
import stat
import subprocess
import threading
import time
from pathlib import Path
from typing import Iterator

import psutil
import pytest

from core.adapters.ffmpeg import process as ffmpeg_process
from core.adapters.ffmpeg.describe import describe
from core.adapters.ffmpeg.transcoder import FFmpegTranscoder
from core.adapters.sniffer import sniff
from core.domain.errors import MediaError
from core.domain.media import MediaLimits
from core.domain.options import AudioOptions
from tests.support.hostile import padded_like_ts
from tests.support.media import make_audio_only, make_video, make_webm
from tests.support.wait import scaled

LIMITS = MediaLimits(
    max_duration=4 * 3600.0,
    min_sample_rate=8000,
    max_output_bytes=600 * 2**20,
    memory_bytes=2048 * 2**20,
)


@pytest.fixture(params=["probe-first", "one-run"])
def encode(request: pytest.FixtureRequest):
    """Encode as a caller with a probe's result does, or as the service does: one run that
    describes its input itself. Every ceiling must hold both ways."""

    def run(
        transcoder: FFmpegTranscoder,
        src: str,
        dst: str,
        bitrate: str = "192k",
        source=None,
        **kwargs,
    ):
        if request.param == "probe-first" and source is None:
            source = transcoder.probe(src)
        elif request.param == "one-run":
            source = None
        return transcoder.encode_audio(src, dst, AudioOptions(bitrate=bitrate), source, **kwargs)

    return run


@pytest.fixture(scope="module")
def victim_audio(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    return Path(make_audio_only(tmp_path_factory.mktemp("victim"), 2.0, fmt="wav")).read_bytes()


@pytest.fixture
def victim(victim_audio: bytes, tmp_path: Path) -> Path:
    """A private local media file beside the upload, which no upload may read. Its name has a
    media extension, so no demuxer refuses it by name."""
    target = tmp_path / "victim.mp4"
    target.write_bytes(victim_audio)
    return target


@pytest.fixture
def listener() -> Iterator[tuple[int, list[bytes]]]:
    """A loopback TCP listener recording every connection it is offered."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    server.settimeout(0.2)
    accepted: list[bytes] = []
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                continue
            with conn:
                conn.settimeout(1)
                try:
                    accepted.append(conn.recv(4096))
                except OSError:
                    accepted.append(b"")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield server.getsockname()[1], accepted
    stop.set()
    thread.join(2)
    server.close()


def dash(*urls: str, tail: bytes = b"") -> bytes:
    sets = b"".join(
        b'<AdaptationSet mimeType="audio/mp4"><Representation id="r%d" '
        b'bandwidth="%d"><BaseURL>%s</BaseURL></Representation></AdaptationSet>'
        % (n, 1000 - n, url.encode())
        for n, url in enumerate(urls)
    )
    return (
        b'<?xml version="1.0"?>\n<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" type="static" '
        b'mediaPresentationDuration="PT2S" minBufferTime="PT1S" '
        b'profiles="urn:mpeg:dash:profile:isoff-on-demand:2011"><Period>'
        + sets
        + b"</Period></MPD>\n"
        + tail
    )


def manifests(victim: Path, port: int) -> dict[str, bytes]:
    local, remote = f"file:{victim}", f"http://127.0.0.1:{port}/victim.mp4"
    return {
        "dash": dash(local),
        "dash-remote": dash(remote),
        # A malformed line makes libxml2 print text that looks like ffmpeg's header.
        "dash-spoof": dash(local, tail=b"<bad>Input #0, mov, from 'file:/tmp/x':\n"),
        "hls": (
            b"#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:2,\n"
            + local.encode()
            + b"\n#EXTINF:2,\n"
            + remote.encode()
            + b"\n#EXT-X-ENDLIST\n"
        ),
        "concat": b"ffconcat version 1.0\nfile '" + victim.name.encode() + b"'\n",
        # SBaGen synthesises 24 h of audio from 50 bytes of text.
        "sbg": b"-SE\nalpha: 200+10/50\nNOW alpha\n+24:00:00 alpha\n",
    }


KINDS = ["dash", "dash-remote", "dash-spoof", "hls", "concat", "sbg"]


def traced_transcoder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> tuple[FFmpegTranscoder, Path]:
    """A transcoder whose ffmpeg runs under strace, logging every file it opens."""
    strace = shutil.which("strace")
    assert strace, "strace is needed for the open-file audit (.ci/run installs it)"
    log = tmp_path / "opened.log"
    wrapper = tmp_path / "ffmpeg"
    wrapper.write_text(
        f"#!/bin/sh\nexec {strace} -f -qq -e trace=open,openat,connect "
        f'-o {log} {ffmpeg_process.ffmpeg_exe()} "$@"\n'
    )
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setattr(ffmpeg_process, "ffmpeg_exe", lambda: str(wrapper))
    return FFmpegTranscoder(LIMITS), log


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("disguise", ["plain", "ts-padded", "m2ts-padded"])
def test_manifests_are_refused_before_they_read_anything(
    kind: str,
    disguise: str,
    victim: Path,
    listener,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    encode,
) -> None:
    port, accepted = listener
    text = manifests(victim, port)[kind]
    data = {
        "plain": text,
        "ts-padded": padded_like_ts(text, 0, 188, 8192),
        "m2ts-padded": padded_like_ts(text, 4, 192, 8192),
    }[disguise]
    upload = tmp_path / "source"  # scratch files carry no user-chosen extension
    upload.write_bytes(data)
    assert sniff(data) is None  # the early refusal
    transcoder, log = traced_transcoder(tmp_path, monkeypatch)
    with pytest.raises(MediaError) as caught:  # and the gate, were the sniffer fooled
        encode(transcoder, str(upload), str(tmp_path / "out.mp3"))
    assert str(caught.value) == MediaError.NOT_MEDIA
    assert not (tmp_path / "out.mp3").exists()
    trace = log.read_text()
    assert str(upload) in trace  # the audit saw ffmpeg open our input...
    assert str(victim) not in trace and "victim" not in trace  # ...and never the victim
    assert f"sin_port=htons({port})" not in trace and accepted == []


@pytest.mark.parametrize("kind", ["dash", "concat", "sbg"])
def test_without_the_allow_list_these_uploads_would_leak_or_explode(
    kind: str, victim: Path, listener, tmp_path: Path
) -> None:
    """The attacks are real: plain ffmpeg follows the manifest into the local file, or
    synthesises hours of audio, which is what the test above proves we never do."""
    port, _ = listener
    upload = tmp_path / "source"
    upload.write_bytes(manifests(victim, port)[kind])
    out = tmp_path / "leak.wav"
    done = subprocess.run(
        [
            ffmpeg_process.ffmpeg_exe(),
            "-nostdin",
            "-y",
            "-protocol_whitelist",
            "file",
            "-i",
            f"file:{upload}",
            "-map",
            "0:a:0",
            "-t",
            "1",
            str(out),
        ],
        capture_output=True,
        timeout=scaled(60),
    )
    assert done.returncode == 0 and out.stat().st_size > 10_000, done.stderr[-500:]


def test_a_probe_output_spoof_is_not_read_as_our_header() -> None:
    ours = "file:/scratch/job-1/blob-abc"
    spoof = (
        "[dash @ 0x1] parser error: Input #0, mov, from 'file:/scratch/job-1/blob-abc':\n"
        "Input #0, mov, from 'file:/elsewhere':\n  Duration: 00:00:02.00\n"
        "  Stream #0:0: Audio: aac, 44100 Hz\n"
    )
    assert describe(spoof, ours) is None
    real = (
        f"Input #0, wav, from '{ours}':\n  Duration: 00:00:02.00, bitrate: 705 kb/s\n"
        "  Stream #0:0: Audio: pcm_s16le, 44100 Hz, mono\n"
        "Input #1, mov, from 'file:/other':\n  Stream #1:0: Video: h264, 640x480\n"
    )
    info = describe(real, ours)
    assert info is not None and info.duration == 2.0 and info.has_audio
    assert not info.has_video  # lines after our block belong to someone else


def wav_header(rate: int, seconds: float) -> bytes:
    """A PCM WAV header declaring `seconds` of mono 16-bit audio at `rate` Hz."""
    data = int(rate * seconds) * 2
    return (
        b"RIFF"
        + (36 + data).to_bytes(4, "little")
        + b"WAVEfmt "
        + (16).to_bytes(4, "little")
        + (1).to_bytes(2, "little")
        + (1).to_bytes(2, "little")
        + rate.to_bytes(4, "little")
        + (rate * 2).to_bytes(4, "little")
        + (2).to_bytes(2, "little")
        + (16).to_bytes(2, "little")
        + b"data"
        + data.to_bytes(4, "little")
    )


@pytest.mark.parametrize("rate", [1, 100, 4000])
def test_low_sample_rate_bombs_are_refused_fast(rate: int, tmp_path: Path, encode) -> None:
    """A 30 KB WAV at 1 Hz would be an 8-hour MP3: refused from the header, in well under 1 s."""
    seconds = 15_000 / rate * 2  # 30 KB of samples
    upload = tmp_path / "source"
    upload.write_bytes(wav_header(rate, seconds) + os.urandom(int(rate * seconds) * 2))
    transcoder = FFmpegTranscoder(LIMITS)
    started = time.monotonic()
    with pytest.raises(MediaError) as caught:
        encode(transcoder, str(upload), str(tmp_path / "out.mp3"))
    assert str(caught.value) == MediaError.LOW_SAMPLE_RATE.format(rate=8000)
    assert not (tmp_path / "out.mp3").exists()
    assert time.monotonic() - started < 5


def test_a_source_longer_than_the_limit_fails_before_encoding(tmp_path: Path, encode) -> None:
    src = make_audio_only(tmp_path, 3.0, fmt="wav")
    transcoder = FFmpegTranscoder(MediaLimits(2.0, 8000, 2**30, 2**31))
    with pytest.raises(MediaError) as caught:
        encode(transcoder, src, str(tmp_path / "out.mp3"))
    assert str(caught.value) == "longer than the 2 s limit"
    assert not (tmp_path / "out.mp3").exists()


def test_an_undeclared_duration_stops_at_the_limit(tmp_path: Path, encode) -> None:
    src = make_webm(tmp_path, 4.0, streamed=True)
    transcoder = FFmpegTranscoder(MediaLimits(2.0, 8000, 2**30, 2**31))
    source = transcoder.probe(src)
    assert source.duration is None
    with pytest.raises(MediaError) as caught:
        encode(transcoder, src, str(tmp_path / "out.mp3"), source=source)
    assert str(caught.value) == "longer than the 2 s limit"
    assert not (tmp_path / "out.mp3").exists()


def test_the_output_ceiling_stops_ffmpeg(tmp_path: Path, encode) -> None:
    src = make_audio_only(tmp_path, 10.0, fmt="wav")
    transcoder = FFmpegTranscoder(MediaLimits(3600.0, 8000, 20_000, 2**31))
    with pytest.raises(MediaError) as caught:
        encode(transcoder, src, str(tmp_path / "out.mp3"), "320k")
    assert str(caught.value).startswith("the MP3 would be larger than")
    assert not (tmp_path / "out.mp3").exists()


def test_ffmpeg_runs_without_secrets_and_under_limits(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, encode
) -> None:
    monkeypatch.setenv("JWT_SECRET", "a-secret-ffmpeg-must-not-see-0123456789")
    monkeypatch.setenv("MYSQL_PASSWORD", "another-secret")
    # Long enough for progress reports while ffmpeg still runs: a fast machine encodes a short
    # source before its first report, and the last report comes as ffmpeg exits.
    src = make_audio_only(tmp_path, 600.0, fmt="opus")
    seen: dict[str, str] = {}

    def inspect(percent: float) -> None:
        if seen:
            return
        for child in psutil.Process().children(recursive=True):
            try:
                if "ffmpeg" not in child.name():
                    continue
                environ = Path(f"/proc/{child.pid}/environ").read_text()
                limits = Path(f"/proc/{child.pid}/limits").read_text()
            except (psutil.NoSuchProcess, ProcessLookupError, FileNotFoundError):
                continue  # it exited meanwhile: the next report tries again
            seen.update(environ=environ, limits=limits)

    transcoder = FFmpegTranscoder(LIMITS)
    encode(transcoder, src, str(tmp_path / "out.mp3"), on_progress=inspect)
    assert seen, "ffmpeg should have reported progress while running"
    environ = dict(item.split("=", 1) for item in seen["environ"].split("\0") if "=" in item)
    assert "JWT_SECRET" not in environ and "MYSQL_PASSWORD" not in environ
    assert set(environ) <= {"PATH", "LC_ALL"}
    limits = {line[:26].strip(): line[26:].split() for line in seen["limits"].splitlines()[1:]}
    assert limits["Max address space"][0] == str(LIMITS.memory_bytes)
    assert limits["Max file size"][0] == str(LIMITS.max_output_bytes)
    assert limits["Max cpu time"][0] != "unlimited"


def test_the_tested_ffmpeg_is_accepted_and_another_is_refused(tmp_path: Path) -> None:
    assert ffmpeg_process.check_ffmpeg_version() is None
    fake = tmp_path / "ffmpeg"
    fake.write_text("#!/bin/sh\necho 'ffmpeg version 4.2.2 Copyright (c) 2000-2019'\n")
    fake.chmod(0o755)
    refusal = ffmpeg_process.check_ffmpeg_version(str(fake))
    assert refusal is not None and "4.2" in refusal and "\n" not in refusal


def test_a_real_video_still_converts_under_all_of_this(tmp_path: Path, encode) -> None:
    src = make_video(tmp_path, 2.0)
    transcoder = FFmpegTranscoder(LIMITS)
    info = encode(transcoder, src, str(tmp_path / "out.mp3"))
    assert info.duration == pytest.approx(2.0, abs=0.2)
    assert info.source is not None and info.source.video_size == (160, 120)
