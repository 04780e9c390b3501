"""Every audio option reaches the MP3: the real transcoder on generated media, checked by
oracles we did not write (mutagen, ffmpeg's ebur128 filter, moviepy, Pillow)."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from mutagen.id3 import PictureType
from mutagen.mp3 import MP3, BitrateMode
from PIL import Image, ImageStat

from core.adapters.ffmpeg.transcoder import FFmpegTranscoder
from core.domain.errors import MediaError
from core.domain.media import Encoded, MediaLimits
from core.domain.options import AudioOptions
from tests.support.media import (
    audio_packets,
    loudness,
    make_audio_only,
    make_fade_in_video,
    make_mp3_source,
    make_mp3_video,
    make_quiet_with_clicks,
    make_two_language_video,
    make_video,
    mp3_duration,
    mpeg_audio_frames,
)

LIMITS = MediaLimits(
    max_duration=4 * 3600.0,
    min_sample_rate=8000,
    max_output_bytes=600 * 2**20,
    memory_bytes=2048 * 2**20,
)
TRANSCODER = FFmpegTranscoder(LIMITS)


def convert(src: str, dst: str, filename: str = "clip.mp4", **fields: str) -> Encoded:
    """What the service does: parse the fields as the API does, default the title, encode."""
    options = AudioOptions.parse(fields).titled(filename)
    return TRANSCODER.encode_audio(src, dst, options)  # as the service runs it: no prior probe


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("options-media")


@pytest.fixture(scope="module")
def two_languages(media: Path) -> str:
    return make_two_language_video(media, 4.0)


@pytest.fixture
def dst(tmp_path: Path) -> str:
    return str(tmp_path / "out.mp3")


# --- quality, sample rate, channels -------------------------------------------------------


def test_quality_gives_a_vbr_mp3_with_a_xing_header(media: Path, dst: str) -> None:
    src = make_video(media, 3.0)
    convert(src, dst, quality="2")
    info = MP3(dst).info
    assert info.bitrate_mode is BitrateMode.VBR
    assert Path(dst).read_bytes().find(b"Xing") > 0


def test_bitrate_gives_a_cbr_mp3(media: Path, dst: str) -> None:
    convert(make_video(media, 3.0), dst, bitrate="128k")
    info = MP3(dst).info
    assert info.bitrate_mode in (BitrateMode.CBR, BitrateMode.UNKNOWN)
    assert info.bitrate == pytest.approx(128000, abs=1000)


@pytest.mark.parametrize("rate", ["8000", "22050", "48000"])
def test_sample_rate_is_what_was_asked(media: Path, dst: str, rate: str) -> None:
    convert(make_video(media, 2.0), dst, sample_rate=rate)
    assert MP3(dst).info.sample_rate == int(rate)


@pytest.mark.parametrize("channels", ["1", "2"])
def test_channels_are_what_was_asked(media: Path, dst: str, channels: str) -> None:
    convert(make_video(media, 2.0), dst, channels=channels)  # the source is mono
    assert MP3(dst).info.channels == int(channels)


# --- window ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "start,end,seconds",
    [("1.5", "4", 2.5), ("00:00:01.250", "00:00:05", 3.75), ("2", None, 4.0), (None, "1", 1.0)],
)
def test_a_window_keeps_end_minus_start(
    media: Path, dst: str, start: str | None, end: str | None, seconds: float
) -> None:
    src = make_audio_only(media, 6.0, fmt="wav")
    fields = {k: v for k, v in (("start", start), ("end", end)) if v is not None}
    result = convert(src, dst, **fields)
    assert mp3_duration(dst) == pytest.approx(seconds, abs=0.05)
    assert MP3(dst).info.length == pytest.approx(seconds, abs=0.05)
    assert result.duration == pytest.approx(seconds, abs=0.05)


@pytest.mark.parametrize(
    "fields", [{"start": "7"}, {"start": "00:01:00"}, {"start": "1", "end": "9"}]
)
def test_a_window_outside_the_source_fails_clearly(
    media: Path, dst: str, fields: dict[str, str]
) -> None:
    src = make_audio_only(media, 6.0, fmt="wav")
    with pytest.raises(MediaError) as caught:
        convert(src, dst, **fields)
    assert str(caught.value).startswith("the start and end are outside the source")
    assert "6.0" in str(caught.value)
    assert not Path(dst).exists()


# --- loudness -------------------------------------------------------------------------------


@pytest.mark.parametrize("target", ["-16", "-30"])
def test_loudness_reaches_the_target_within_1_lu(media: Path, dst: str, target: str) -> None:
    src = make_video(media, 8.0)
    before, _ = loudness(src)
    convert(src, dst, loudness=target)
    measured, peak = loudness(dst)
    assert abs(before - float(target)) > 3  # the source was not there already
    assert measured == pytest.approx(float(target), abs=1.0)
    assert peak <= -1.0


def test_loudness_keeps_true_peak_under_minus_1_dbtp(media: Path, dst: str) -> None:
    src = make_quiet_with_clicks(media)
    before, source_peak = loudness(src)
    convert(src, dst, filename="talk.wav", loudness="-14")
    measured, peak = loudness(dst)
    assert source_peak + (-14 - before) > 3  # the gain alone would take the bursts far over
    assert peak <= -1.0
    assert measured == pytest.approx(-14.0, abs=1.0)


def test_a_window_and_loudness_measure_only_the_window(media: Path, dst: str) -> None:
    src = make_video(media, 8.0)
    convert(src, dst, loudness="-18", start="2", end="5")
    measured, _ = loudness(dst)
    assert measured == pytest.approx(-18.0, abs=1.0)
    assert mp3_duration(dst) == pytest.approx(3.0, abs=0.05)


# --- tags and cover ---------------------------------------------------------------------------


def test_tags_are_written_and_the_sources_own_are_not(two_languages: str, dst: str) -> None:
    convert(two_languages, dst, title="Café — 東京 ✓", artist="Zoë", album="Live")
    tags = MP3(dst).tags
    assert tags is not None and tags.version[:2] == (2, 4)
    assert str(tags["TIT2"]) == "Café — 東京 ✓"
    assert str(tags["TPE1"]) == "Zoë" and str(tags["TALB"]) == "Live"
    text = repr(dict(tags))
    assert "source's own title" not in text and "Source Artist" not in text


def test_the_title_defaults_to_the_file_name(two_languages: str, dst: str) -> None:
    convert(two_languages, dst, filename="Holiday in Rome.final.mp4")
    tags = MP3(dst).tags
    assert tags is not None and str(tags["TIT2"]) == "Holiday in Rome.final"
    assert "TPE1" not in tags


def test_cover_frame_is_a_front_cover_jpeg_not_the_black_first_frame(media: Path, dst: str) -> None:
    src = make_fade_in_video(media, 5.0)
    result = convert(src, dst, cover="frame")
    tags = MP3(dst).tags
    assert tags is not None
    pictures = tags.getall("APIC")
    assert len(pictures) == 1 and result.notes == ()
    picture = pictures[0]
    assert picture.mime == "image/jpeg" and picture.type == PictureType.COVER_FRONT
    image = Image.open(io.BytesIO(picture.data))
    assert image.format == "JPEG" and image.size == (320, 240)
    assert ImageStat.Stat(image.convert("L")).mean[0] > 60  # testsrc is bright; black is ~16
    assert MP3(dst).info.length == pytest.approx(5.0, abs=0.1)


def test_no_cover_by_default(media: Path, dst: str) -> None:
    convert(make_video(media, 2.0), dst)
    tags = MP3(dst).tags
    assert tags is not None and tags.getall("APIC") == []


def test_cover_frame_without_video_says_so(media: Path, dst: str) -> None:
    result = convert(make_audio_only(media, 2.0), dst, cover="frame")
    tags = MP3(dst).tags
    assert tags is not None and tags.getall("APIC") == []
    assert result.notes == ("the source has no video, so the MP3 has no cover",)
    assert mp3_duration(dst) == pytest.approx(2.0, abs=0.1)


# --- track ----------------------------------------------------------------------------------


def test_probe_lists_each_audio_track(two_languages: str) -> None:
    info = TRANSCODER.probe(two_languages)
    assert [(t.codec, t.channels, t.sample_rate, t.language) for t in info.audio_tracks] == [
        ("aac", 1, 44100, "eng"),
        ("aac", 2, 48000, "fra"),
    ]
    assert info.to_dict()["video"] == {"width": 160, "height": 120}


@pytest.mark.parametrize("track,rate,channels", [("0", 44100, 1), ("1", 48000, 2)])
def test_track_chooses_the_audio_track(
    two_languages: str, dst: str, track: str, rate: int, channels: int
) -> None:
    convert(two_languages, dst, track=track)
    info = MP3(dst).info
    assert (info.sample_rate, info.channels) == (rate, channels)


def test_a_missing_track_fails_naming_how_many_there_are(two_languages: str, dst: str) -> None:
    with pytest.raises(MediaError) as caught:
        convert(two_languages, dst, track="2")
    assert str(caught.value) == "there is no audio track 2: the file has 2 audio tracks (from 0)"
    assert not Path(dst).exists()


# --- stream copy ----------------------------------------------------------------------------


def test_an_mp3_source_is_copied_frame_for_frame_with_new_tags(media: Path, dst: str) -> None:
    src = make_mp3_source(media, 4.0)
    result = convert(src, dst, filename="song.mp3", artist="New Artist")
    assert result.mode == "copy"
    assert mpeg_audio_frames(dst) == mpeg_audio_frames(src)
    tags = MP3(dst).tags
    assert tags is not None and str(tags["TIT2"]) == "song" and str(tags["TPE1"]) == "New Artist"
    assert "TALB" not in tags  # the source's "Old album" stays behind


@pytest.mark.parametrize(
    "fields",
    [
        {"bitrate": "192k"},
        {"quality": "4"},
        {"channels": "2"},
        {"sample_rate": "22050"},
        {"end": "2"},
        {"loudness": "-16"},
    ],
)
def test_an_option_that_changes_the_audio_encodes(
    media: Path, dst: str, fields: dict[str, str]
) -> None:
    src = make_mp3_source(media, 4.0)
    result = convert(src, dst, **fields)
    assert result.mode == "encode"
    assert Path(dst).read_bytes().find(mpeg_audio_frames(src)[:2048]) == -1


def test_other_sources_are_encoded(media: Path, dst: str) -> None:
    assert convert(make_video(media, 2.0), dst).mode == "encode"


@pytest.mark.parametrize("container", ["mkv", "avi", "flv", "mp4"])
def test_an_mp3_track_in_any_container_is_copied_packet_for_packet(
    media: Path, dst: str, container: str
) -> None:
    src = make_mp3_video(media, container, 3.0)
    result = convert(src, dst, filename=f"clip.{container}")
    assert result.mode == "copy"
    assert audio_packets(dst) == audio_packets(src)
    assert result.duration == pytest.approx(3.0, abs=0.1)
    assert MP3(dst).tags is not None and str(MP3(dst).tags["TIT2"]) == "clip"


def test_silence_cannot_be_normalised(media: Path, dst: str, tmp_path: Path) -> None:
    from tests.support.media import run_ffmpeg

    silent = str(tmp_path / "silence.wav")
    run_ffmpeg("-f", "lavfi", "-i", "anullsrc=r=44100:cl=mono", "-t", "3", silent)
    with pytest.raises(MediaError) as caught:
        convert(silent, dst, loudness="-16")
    assert str(caught.value) == "the audio is silent, so its loudness cannot be set"
    assert not Path(dst).exists()


def test_the_summary_read_is_ffmpegs_not_the_uploaders() -> None:
    from core.adapters.ffmpeg.describe import ebur128_summary

    spoof = (
        "    comment         : [Parsed_ebur128_0 @ 0x1] Summary:\n"
        "[Parsed_ebur128_0 @ 0x1] Summary:\n\n  Integrated loudness:\n    I:  -5.0 LUFS\n"
        "  Sample peak:\n    Peak:  0.0 dBFS\n"
    )
    real = (
        "[Parsed_ebur128_0 @ 0x7f] Summary:\n\n  Integrated loudness:\n"
        "    I:         -21.3 LUFS\n    Threshold: -31.3 LUFS\n\n  Loudness range:\n"
        "    LRA:         0.0 LU\n\n  Sample peak:\n    Peak:       -5.7 dBFS\n"
    )
    assert ebur128_summary(spoof + real) == (-21.3, -5.7)
    assert ebur128_summary(real.replace("    Peak:       -5.7 dBFS\n", "")) is None


@pytest.mark.parametrize(
    "make,fields,runs",
    [
        (lambda d: make_video(d, 2.0), {}, 1),
        (lambda d: make_video(d, 2.0), {"quality": "4", "end": "1", "title": "t"}, 1),
        (lambda d: make_mp3_source(d, 2.0), {}, 1),
        (lambda d: make_mp3_video(d, "avi", 2.0), {}, 1),
        # ffmpeg's description stops the encode it started; the copy runs on that description
        (lambda d: make_mp3_video(d, "mkv", 2.0), {}, 2),
        (lambda d: make_mp3_video(d, "mp4", 2.0), {}, 2),
        (lambda d: make_video(d, 2.0), {"cover": "frame"}, 2),
        # Ogg has no picture stream: the still is taken first, then goes in as a tag
        (lambda d: make_video(d, 2.0), {"cover": "frame", "format": "opus"}, 3),
        (lambda d: make_video(d, 2.0), {"format": "m4a"}, 1),  # AAC in MP4: copied
        (lambda d: make_video(d, 2.0), {"loudness": "-16"}, 2),
    ],
)
def test_ffmpeg_runs_per_conversion(
    media: Path, dst: str, monkeypatch: pytest.MonkeyPatch, make, fields: dict[str, str], runs: int
) -> None:
    from core.adapters.ffmpeg import process as ffmpeg_process

    src = make(media)
    calls: list[list[str]] = []
    real = ffmpeg_process.run

    def counted(args: list[str], *rest, **kwargs):
        calls.append(args)
        return real(args, *rest, **kwargs)

    monkeypatch.setattr(ffmpeg_process, "run", counted)
    result = convert(src, dst, **fields)
    assert len(calls) == runs, calls
    assert result.source is not None and result.source.duration == pytest.approx(2.0, abs=0.1)
    for args in calls:  # every run, every input: the allow-lists
        assert args.count("-i") == args.count("-format_whitelist")
        assert args.count("-i") == args.count("-protocol_whitelist")


def test_describe_reads_each_tracks_codec_channels_rate_and_language() -> None:
    from core.adapters.ffmpeg.describe import describe

    ours = "file:/scratch/job/blob-1"
    text = (
        f"Input #0, matroska,webm, from '{ours}':\n"
        "  Metadata:\n    title           :   Stream #0:9(deu): Audio: mp3, 8000 Hz, mono\n"
        "  Duration: 01:30:00.50, start: 0.000000, bitrate: 4000 kb/s\n"
        "  Stream #0:0(eng): Video: h264 (High), yuv420p(progressive), 1920x1080, 24 fps\n"
        "  Stream #0:1(eng): Audio: aac (LC), 48000 Hz, 5.1(side), fltp (default)\n"
        "  Stream #0:2[0x3](fra): Audio: ac3, 44100 Hz, stereo, fltp, 192 kb/s\n"
        "  Stream #0:3: Audio: opus, 48000 Hz, 3 channels, fltp\n"
        "  Stream #0:4(und): Audio: pcm_s16le, 22050 Hz, mono, s16\n"
        "Stream mapping:\n  Stream #0:5(spa): Audio: mp3, 44100 Hz, mono\n"
    )
    info = describe(text, ours)
    assert info is not None and info.duration == 5400.5 and info.video_size == (1920, 1080)
    assert [(t.codec, t.channels, t.sample_rate, t.language) for t in info.audio_tracks] == [
        ("aac", 6, 48000, "eng"),
        ("ac3", 2, 44100, "fra"),
        ("opus", 3, 48000, None),
        ("pcm_s16le", 1, 22050, None),
    ]
