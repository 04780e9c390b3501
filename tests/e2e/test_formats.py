"""Each output format through the real stack (gunicorn, the convert worker, both blob stores):
upload -> job -> GET /jobs/<id>/audio, checked by oracles we did not write: mutagen for the
container, tags and cover, ffmpeg's decoder for the duration (within 50 ms) and ffmpeg's
per-packet MD5s for copies."""

from __future__ import annotations

import base64
import io
import os

import mutagen
import pytest
from mutagen.flac import Picture
from PIL import Image

from tests.support import media
from tests.support.wait import wait_for

pytestmark = pytest.mark.e2e

# format: (Content-Type, mutagen's class, mode for an H.264/AAC MP4 with no option changing
# the audio)
FORMATS = {
    "mp3": ("audio/mpeg", "MP3", "encode"),
    "m4a": ("audio/mp4", "MP4", "copy"),
    "opus": ("audio/ogg", "OggOpus", "encode"),
    "flac": ("audio/flac", "FLAC", "encode"),
    "wav": ("audio/wav", "WAVE", "encode"),
}


def converted(client, path: str, **form: str) -> dict:
    with open(path, "rb") as fh:
        accepted = client.post("/upload", files={"file": (os.path.basename(path), fh)}, data=form)
    assert accepted.status_code == 202, accepted.text
    job_id = accepted.json()["job_id"]

    def ended():
        job = client.get(f"/jobs/{job_id}").json()
        return job if job["status"] in ("done", "failed") else None

    return wait_for(ended, timeout=60, what=f"job {job_id} to finish")


def cover_of(found, fmt: str) -> bytes | None:
    """The front cover's bytes as mutagen reads them from each container."""
    tags = found.tags
    if fmt == "mp3":
        pictures = tags.getall("APIC")
        return pictures[0].data if pictures else None
    if fmt == "m4a":
        return bytes(tags["covr"][0]) if "covr" in tags else None
    if fmt == "flac":
        return found.pictures[0].data if found.pictures else None
    if fmt == "opus":
        blocks = tags.get("metadata_block_picture", [])
        return Picture(base64.b64decode(blocks[0])).data if blocks else None
    return None


def artist_of(found, fmt: str) -> str:
    tags = found.tags
    if fmt == "mp3":
        return str(tags["TPE1"])
    if fmt == "m4a":
        return tags["\xa9ART"][0]
    return tags["artist"][0]


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_each_format_end_to_end(stack, new_user, clip, tmp_path, fmt: str) -> None:
    content_type, kind, mode = FORMATS[fmt]
    user, _ = new_user()
    fields = {"format": fmt} | ({} if fmt == "wav" else {"cover": "frame", "artist": "Zoë"})
    job = converted(user, clip, **fields)
    assert job["status"] == "done", job
    assert (job["format"], job["content_type"], job["mode"]) == (fmt, content_type, mode)
    assert job["notes"] == []
    served = user.get(job["links"]["audio"])
    assert served.status_code == 200
    assert served.headers["Content-Type"] == content_type
    assert served.headers["Content-Disposition"].endswith(f"video_3s_160x120.{fmt}")
    assert len(served.content) == job["output_size"]
    # Range over gunicorn: exactly the bytes asked for
    part = user.get(job["links"]["audio"], headers={"Range": "bytes=100-199"})
    assert part.status_code == 206 and part.content == served.content[100:200]

    saved = tmp_path / f"out.{fmt}"
    saved.write_bytes(served.content)
    found = mutagen.File(saved)
    assert type(found).__name__ == kind
    assert media.decoded_duration(saved) == pytest.approx(media.decoded_duration(clip), abs=0.05)
    if fmt == "wav":
        assert media.riff_info(saved)["INAM"] == "video_3s_160x120"
    else:
        assert artist_of(found, fmt) == "Zoë"
        cover = cover_of(found, fmt)
        assert cover is not None
        with Image.open(io.BytesIO(cover)) as image:
            assert image.format == "JPEG" and image.size == (160, 120)
    if mode == "copy":
        assert media.audio_packets(saved) == media.audio_packets(clip)
    mp3_route = user.get(f"/jobs/{job['id']}/mp3")
    if fmt == "mp3":
        assert mp3_route.status_code == 200 and mp3_route.content == served.content
    else:
        assert mp3_route.status_code == 409
        assert f"/jobs/{job['id']}/audio" in mp3_route.json()["message"]


@pytest.mark.parametrize(
    "make,fmt",
    [
        (lambda d: media.make_mp3_video(d, "mkv", 3.0), "mp3"),  # the defect: MP3 in MKV
        (lambda d: media.make_mp3_video(d, "flv", 3.0), "mp3"),
        (lambda d: media.make_webm(d, 3.0), "opus"),
        (lambda d: media.make_audio_only(d, 3.0, "flac"), "flac"),
    ],
)
def test_a_track_in_the_formats_codec_is_copied_bit_exact(
    stack, new_user, media_dir, tmp_path, make, fmt: str
) -> None:
    src = make(media_dir)
    user, _ = new_user()
    job = converted(user, src, format=fmt)
    assert job["status"] == "done" and job["mode"] == "copy", job
    saved = tmp_path / f"out.{fmt}"
    saved.write_bytes(user.get(job["links"]["audio"]).content)
    assert media.audio_packets(saved) == media.audio_packets(src)
    assert media.decoded_duration(saved) == pytest.approx(media.decoded_duration(src), abs=0.05)


def test_an_option_the_format_does_not_take_is_a_422_naming_both(stack, new_user, clip) -> None:
    user, _ = new_user()
    with open(clip, "rb") as fh:
        refused = user.post(
            "/upload",
            files={"file": ("clip.mp4", fh)},
            data={"format": "opus", "quality": "3"},
        )
    assert refused.status_code == 422
    assert refused.json()["errors"]["json"] == {
        "quality": ["does not apply to format opus (only to mp3)"]
    }
