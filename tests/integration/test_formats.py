"""Each output format on the real transcoder, from generated media, checked by oracles we did
not write: mutagen (container, codec, tags, cover), ffmpeg's own per-packet MD5s for copies
and its decoder for the duration."""

from __future__ import annotations

from pathlib import Path

import mutagen
import pytest
from mutagen.flac import FLAC
from mutagen.mp4 import MP4
from mutagen.oggopus import OggOpus
from mutagen.wave import WAVE

from core.adapters.ffmpeg.transcoder import FFmpegTranscoder
from core.domain.errors import InvalidInput
from core.domain.media import Encoded, MediaLimits
from core.domain.options import AUDIO_FORMATS, AudioOptions
from tests.support.media import (
    audio_packets,
    decoded_duration,
    make_audio_only,
    make_video,
    make_webm,
    riff_info,
)

LIMITS = MediaLimits(
    max_duration=4 * 3600.0,
    min_sample_rate=8000,
    max_output_bytes=600 * 2**20,
    memory_bytes=2048 * 2**20,
)
TRANSCODER = FFmpegTranscoder(LIMITS)
KINDS = {"mp3": "MP3", "m4a": "MP4", "opus": "OggOpus", "flac": "FLAC", "wav": "WAVE"}


def convert(src: str, dst: str, filename: str = "clip.mp4", **fields: str) -> Encoded:
    """What the service does: parse the fields as the API does, default the title, convert."""
    options = AudioOptions.parse(fields).titled(filename)
    return TRANSCODER.encode_audio(src, dst, options)


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("format-media")


@pytest.fixture(scope="module")
def video(media: Path) -> str:
    return make_video(media, 3.0)  # H.264 + AAC in MP4


@pytest.mark.parametrize("fmt", [f.name for f in AUDIO_FORMATS])
def test_each_format_is_its_own_container_and_codec_with_the_sources_duration(
    media: Path, tmp_path: Path, fmt: str
) -> None:
    src = make_audio_only(media, 3.0, "mp3" if fmt != "mp3" else "wav")  # never a copy
    dst = str(tmp_path / f"out.{fmt}")
    result = convert(src, dst, format=fmt, artist="Ann")
    assert result.mode == "encode"
    found = mutagen.File(dst)
    assert type(found).__name__ == KINDS[fmt]
    assert decoded_duration(dst) == pytest.approx(3.0, abs=0.05)
    assert result.duration == pytest.approx(3.0, abs=0.05)


def test_m4a_is_aac_lc_with_its_index_first_and_mp4_tags(video: str, tmp_path: Path) -> None:
    dst = str(tmp_path / "out.m4a")
    convert(video, dst, format="m4a", bitrate="128k", title="T", artist="A", album="B")
    found = MP4(dst)
    assert found.info.codec == "mp4a.40.2"  # AAC-LC
    assert found.tags is not None
    assert (found.tags["\xa9nam"], found.tags["\xa9ART"], found.tags["\xa9alb"]) == (
        ["T"],
        ["A"],
        ["B"],
    )
    head = Path(dst).read_bytes()
    assert head.find(b"moov") < head.find(b"mdat")  # +faststart
    assert 100_000 < found.info.bitrate < 160_000


def test_opus_is_in_ogg_at_48k_with_vorbis_comments(media: Path, tmp_path: Path) -> None:
    src = make_audio_only(media, 3.0, "m4a")  # 44.1 kHz AAC
    dst = str(tmp_path / "out.opus")
    convert(src, dst, format="opus", bitrate="128k", artist="A")
    found = OggOpus(dst)
    assert found.tags is not None
    assert found.tags["title"] == ["clip"] and found.tags["artist"] == ["A"]
    assert Path(dst).read_bytes()[:4] == b"OggS"


@pytest.mark.parametrize("level", ["0", "12"])
def test_flac_is_lossless_at_any_compression_level(media: Path, tmp_path: Path, level: str) -> None:
    src = make_audio_only(media, 3.0, "wav")
    dst = str(tmp_path / "out.flac")
    assert convert(src, dst, format="flac", compression=level).mode == "encode"
    found = FLAC(dst)
    assert found.tags is not None and found.tags["title"] == ["clip"]
    assert found.info.sample_rate == 44100 and found.info.bits_per_sample == 16
    # the same samples at every level: FLAC stores their MD5 in its STREAMINFO
    assert (
        found.info.md5_signature == FLAC(_flac(src, tmp_path / "reference.flac")).info.md5_signature
    )


def _flac(src: str, dst: Path) -> str:
    from tests.support.media import run_ffmpeg

    run_ffmpeg("-i", src, "-c:a", "flac", str(dst))
    return str(dst)


def test_wav_is_16_bit_pcm_with_riff_info_tags(video: str, tmp_path: Path) -> None:
    dst = str(tmp_path / "out.wav")
    convert(video, dst, format="wav", sample_rate="22050", channels="1", artist="A")
    found = WAVE(dst)
    assert (found.info.sample_rate, found.info.channels, found.info.bits_per_sample) == (
        22050,
        1,
        16,
    )
    tags = riff_info(dst)
    assert (tags["INAM"], tags["IART"]) == ("clip", "A")


# --- copies ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "make,fmt",
    [
        (lambda d: make_video(d, 3.0), "m4a"),  # AAC in MP4
        (lambda d: make_video(d, 3.0, fmt="mkv"), "m4a"),  # AAC in MKV
        (lambda d: make_audio_only(d, 3.0, "aac"), "m4a"),  # ADTS
        (lambda d: make_webm(d, 3.0), "opus"),  # Opus in WebM
        (lambda d: make_audio_only(d, 3.0, "opus"), "opus"),
        (lambda d: make_audio_only(d, 3.0, "flac"), "flac"),
        (lambda d: make_audio_only(d, 3.0, "wav"), "wav"),
    ],
)
def test_a_track_already_in_the_formats_codec_is_copied_packet_for_packet(
    media: Path, tmp_path: Path, make, fmt: str
) -> None:
    src = make(media)
    dst = str(tmp_path / f"out.{fmt}")
    result = convert(src, dst, format=fmt, artist="A")
    assert result.mode == "copy"
    # ADTS headers are not kept in MP4: the source's packets as MP4 holds them
    adts = src.endswith(".aac")
    assert audio_packets(dst) == audio_packets(src, bsf="aac_adtstoasc" if adts else None)
    assert decoded_duration(dst) == pytest.approx(decoded_duration(src), abs=0.05)


@pytest.mark.parametrize(
    "fields",
    [
        {"format": "m4a", "bitrate": "256k"},
        {"format": "m4a", "channels": "1"},
        {"format": "opus", "sample_rate": "24000"},
        {"format": "flac", "compression": "8"},
        {"format": "mp3"},  # AAC is not MP3
    ],
)
def test_an_option_that_changes_the_audio_or_another_codec_encodes(
    video: str, tmp_path: Path, fields: dict[str, str]
) -> None:
    src = video if fields["format"] in ("m4a", "mp3") else None
    if src is None:
        src = make_audio_only(tmp_path, 3.0, fields["format"])
    dst = str(tmp_path / f"out.{fields['format']}")
    result = convert(src, dst, **fields)
    assert result.mode == "encode"
    assert audio_packets(dst) != audio_packets(src)


# --- options that do not apply ----------------------------------------------------------------


@pytest.mark.parametrize(
    "fields,name,said",
    [
        ({"format": "wav", "bitrate": "192k"}, "bitrate", "format wav"),
        ({"format": "flac", "quality": "2"}, "quality", "format flac"),
        ({"format": "m4a", "quality": "2"}, "quality", "format m4a"),
        ({"format": "opus", "compression": "5"}, "compression", "format opus"),
        ({"compression": "5"}, "compression", "format mp3"),
        ({"format": "wav", "cover": "frame"}, "cover", "format wav"),
        ({"format": "opus", "sample_rate": "44100"}, "sample_rate", "format opus"),
        ({"format": "ogg"}, "format", "one of mp3, m4a, opus, flac, wav"),
    ],
)
def test_an_option_the_format_does_not_take_is_refused_naming_both(
    fields: dict[str, str], name: str, said: str
) -> None:
    with pytest.raises(InvalidInput) as refused:
        AudioOptions.parse(fields)
    messages = refused.value.details["fields"]
    assert list(messages) == [name]
    assert said in messages[name][0]
    with pytest.raises(ValueError, match=name):  # the transcoder's own check says it too
        AudioOptions(**{k: _typed(k, v) for k, v in fields.items()}).check()


def _typed(name: str, value: str) -> object:
    return int(value) if name in ("quality", "compression", "sample_rate") else value


# --- covers ---------------------------------------------------------------------------------


def _is_front_jpeg(data: bytes) -> None:
    import io

    from PIL import Image

    with Image.open(io.BytesIO(data)) as image:
        assert image.format == "JPEG" and image.size == (160, 120)


@pytest.mark.parametrize("copy", [True, False])
def test_m4a_carries_the_cover_as_covr(video: str, tmp_path: Path, copy: bool) -> None:
    dst = str(tmp_path / "out.m4a")
    fields = {"format": "m4a", "cover": "frame"} | ({} if copy else {"bitrate": "128k"})
    result = convert(video, dst, **fields)
    assert result.mode == ("copy" if copy else "encode") and result.notes == ()
    found = MP4(dst)
    assert found.tags is not None and len(found.tags["covr"]) == 1
    cover = found.tags["covr"][0]
    assert cover.imageformat == cover.FORMAT_JPEG
    _is_front_jpeg(bytes(cover))
    assert decoded_duration(dst) == pytest.approx(3.0, abs=0.05)


def test_flac_carries_the_cover_as_a_front_cover_picture_block(video: str, tmp_path: Path) -> None:
    dst = str(tmp_path / "out.flac")
    convert(video, dst, format="flac", cover="frame")
    pictures = FLAC(dst).pictures
    assert [(p.type, p.mime) for p in pictures] == [(3, "image/jpeg")]  # 3: front cover
    _is_front_jpeg(pictures[0].data)


def test_opus_carries_the_cover_as_metadata_block_picture(video: str, tmp_path: Path) -> None:
    import base64

    from mutagen.flac import Picture

    dst = str(tmp_path / "out.opus")
    result = convert(video, dst, format="opus", cover="frame", title="T")
    assert result.notes == ()
    found = OggOpus(dst)
    assert found.tags is not None and found.tags["title"] == ["T"]
    [block] = found.tags["metadata_block_picture"]
    picture = Picture(base64.b64decode(block))
    assert (picture.type, picture.mime, picture.width, picture.height) == (
        3,
        "image/jpeg",
        160,
        120,
    )
    _is_front_jpeg(picture.data)
    assert decoded_duration(dst) == pytest.approx(3.0, abs=0.05)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.opus"]  # no file of ours left


def test_an_opus_track_in_webm_is_copied_with_a_cover(media: Path, tmp_path: Path) -> None:
    src = make_webm(media, 3.0)
    dst = str(tmp_path / "out.opus")
    result = convert(src, dst, format="opus", cover="frame")
    assert result.mode == "copy" and result.notes == ()
    assert audio_packets(dst) == audio_packets(src)
    tags = OggOpus(dst).tags
    assert tags is not None and len(tags["metadata_block_picture"]) == 1


def test_a_cover_without_video_is_a_note_naming_the_format(media: Path, tmp_path: Path) -> None:
    src = make_audio_only(media, 2.0, "wav")
    result = convert(src, str(tmp_path / "out.flac"), format="flac", cover="frame")
    assert result.notes == ("the source has no video, so the FLAC has no cover",)
    assert FLAC(str(tmp_path / "out.flac")).pictures == []


def test_a_wav_over_the_output_ceiling_is_refused_before_it_is_written(
    media: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dataclasses import replace

    from core.adapters.ffmpeg import process as ffmpeg_process
    from core.domain.errors import MediaError

    small = FFmpegTranscoder(replace(LIMITS, max_output_bytes=2**20))  # 1 MiB
    src = make_audio_only(media, 20.0, "m4a")  # 20 s mono 44.1 kHz: 1.7 MiB as PCM
    dst = str(tmp_path / "out.wav")
    runs: list[list[str]] = []
    real = ffmpeg_process.run

    def counted(args: list[str], *rest, **kwargs):
        runs.append(args)
        return real(args, *rest, **kwargs)

    monkeypatch.setattr(ffmpeg_process, "run", counted)
    with pytest.raises(MediaError) as refused:
        small.encode_audio(src, dst, AudioOptions(format="wav"))
    assert str(refused.value) == "the WAV would be larger than the 1 MiB limit"
    assert len(runs) == 1 and not Path(dst).exists()
    assert refused.value.detail == "2 MiB of PCM"  # said on the description, not by the rlimit
    # the estimate follows the options: 8 kHz is 320 kB
    made = small.encode_audio(src, dst, AudioOptions(format="wav", sample_rate=8000))
    assert made.duration == pytest.approx(20.0, abs=0.05)
    assert WAVE(dst).info.sample_rate == 8000
