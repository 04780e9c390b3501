"""Each format over the API (Flask's test client, MariaDB, Redis, the directory store), the job
converted by the real Conversion service and ffmpeg: the job's JSON, /jobs/<id>/audio with its
type, name and ranges, /jobs/<id>/mp3 kept for MP3 jobs, links, and the 422s."""

from __future__ import annotations

import io
import re
import tempfile

import mutagen
import pytest

from tests.support.media import make_video

TYPES = {
    "mp3": "audio/mpeg",
    "m4a": "audio/mp4",
    "opus": "audio/ogg",
    "flac": "audio/flac",
    "wav": "audio/wav",
}
KINDS = {"mp3": "MP3", "m4a": "MP4", "opus": "OggOpus", "flac": "FLAC", "wav": "WAVE"}


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> bytes:
    with open(make_video(tmp_path_factory.mktemp("api-formats"), 1.0), "rb") as fh:
        return fh.read()


def upload(client, headers, data: bytes, **fields: str):
    return client.post(
        "/upload",
        headers=headers,
        content_type="multipart/form-data",
        data={**fields, "file": (io.BytesIO(data), "My clip.mp4")},
    )


def converted(client, container, headers, clip: bytes, **fields: str) -> dict:
    """A job uploaded with these fields and converted, as GET /jobs/<id> shows it."""
    accepted = upload(client, headers, clip, **fields)
    assert accepted.status_code == 202, accepted.get_json()
    job_id = accepted.get_json()["job_id"]
    assert container.conversion.convert(job_id).value == "done"
    return client.get(f"/jobs/{job_id}", headers=headers).get_json()


def parsed(body: bytes) -> str:
    """What mutagen makes of a downloaded file: its kind."""
    with tempfile.NamedTemporaryFile() as fh:
        fh.write(body)
        fh.flush()
        found = mutagen.File(fh.name)
    return type(found).__name__


@pytest.mark.parametrize("fmt", list(TYPES))
def test_audio_serves_each_format_with_its_type_name_and_ranges(
    client, container, auth, clip, fmt: str
) -> None:
    _, headers = auth.new_user()
    job = converted(client, container, headers, clip, format=fmt)
    assert (job["format"], job["content_type"]) == (fmt, TYPES[fmt])
    assert job["options"]["format"] == fmt
    assert job["links"]["audio"] == f"/jobs/{job['id']}/audio"
    whole = client.get(job["links"]["audio"], headers=headers)
    assert whole.status_code == 200 and whole.mimetype == TYPES[fmt]
    assert f"My clip.{fmt}" in whole.headers["Content-Disposition"]
    assert len(whole.data) == job["output_size"] == job["mp3_size"]
    assert parsed(whole.data) == KINDS[fmt]
    part = client.get(job["links"]["audio"], headers={**headers, "Range": "bytes=10-19"})
    assert part.status_code == 206 and part.headers["Content-Length"] == "10"
    assert part.headers["Content-Range"] == f"bytes 10-19/{len(whole.data)}"
    # a file on disk goes to gunicorn's sendfile wrapper, which stops at Content-Length
    assert part.data[:10] == whole.data[10:20]
    by_fid = client.get(f"/download?fid={job['mp3_fid']}", headers=headers)
    assert by_fid.mimetype == TYPES[fmt] and by_fid.data == whole.data
    link = client.post(f"/jobs/{job['id']}/links", headers=headers, json={"expires_in": 60})
    path = re.sub(r"^https?://[^/]+", "", link.get_json()["url"])
    linked = client.get(path)
    assert linked.mimetype == TYPES[fmt] and linked.data == whole.data


def test_mp3_stays_the_mp3_jobs_route_and_names_audio_for_the_others(
    client, container, auth, clip
) -> None:
    _, headers = auth.new_user()
    mp3 = converted(client, container, headers, clip)
    assert mp3["format"] == "mp3" and mp3["links"]["mp3"] == f"/jobs/{mp3['id']}/mp3"
    served = client.get(mp3["links"]["mp3"], headers=headers)
    assert served.status_code == 200 and served.mimetype == "audio/mpeg"
    assert served.data == client.get(mp3["links"]["audio"], headers=headers).data

    flac = converted(client, container, headers, clip, format="flac")
    assert flac["links"]["mp3"] is None
    refused = client.get(f"/jobs/{flac['id']}/mp3", headers=headers)
    assert refused.status_code == 409
    assert f"/jobs/{flac['id']}/audio" in refused.get_json()["message"]
    assert "flac" in refused.get_json()["message"]


def test_audio_of_a_job_not_done_or_not_yours_is_404(client, auth, clip) -> None:
    _, alice = auth.new_user()
    _, bob = auth.new_user()
    job_id = upload(client, alice, clip, format="opus").get_json()["job_id"]
    waiting = client.get(f"/jobs/{job_id}/audio", headers=alice)
    assert waiting.status_code == 404 and waiting.get_json()["message"] == (
        "the Opus file is not ready"
    )
    assert client.get(f"/jobs/{job_id}/audio", headers=bob).status_code == 404


@pytest.mark.parametrize(
    "fields,name,said",
    [
        ({"format": "wav", "bitrate": "320k"}, "bitrate", "format wav"),
        ({"format": "m4a", "quality": "2"}, "quality", "format m4a"),
        ({"compression": "3"}, "compression", "format mp3"),
        ({"format": "wav", "cover": "frame"}, "cover", "format wav"),
        ({"format": "opus", "sample_rate": "44100"}, "sample_rate", "format opus"),
        ({"format": "aiff"}, "format", "one of mp3, m4a, opus, flac, wav"),
    ],
)
def test_an_option_the_format_does_not_take_is_a_422_naming_both(
    client, auth, clip, fields: dict[str, str], name: str, said: str
) -> None:
    _, headers = auth.new_user()
    refused = upload(client, headers, clip, **fields)
    assert refused.status_code == 422
    messages = refused.get_json()["errors"]["json"]
    assert list(messages) == [name] and said in messages[name][0]
    assert client.get("/jobs", headers=headers).get_json()["total"] == 0


def test_audio_is_conditional_and_expires_as_mp3_does(client, container, auth, clip) -> None:
    from core.domain.jobs import JobStatus

    _, headers = auth.new_user()
    job = converted(client, container, headers, clip, format="m4a")
    audio = job["links"]["audio"]
    etag = client.get(audio, headers=headers).headers["ETag"]
    assert client.get(audio, headers={**headers, "If-None-Match": etag}).status_code == 304
    assert client.get(audio, headers={**headers, "If-Match": '"other"'}).status_code == 412
    beyond = client.get(audio, headers={**headers, "Range": f"bytes={10**9}-"})
    assert beyond.status_code == 416
    container.job_repo.update(job["id"], {"status": JobStatus.EXPIRED})
    gone = client.get(audio, headers=headers)
    assert gone.status_code == 410 and gone.get_json()["message"] == (
        "the M4A has expired and was deleted"
    )
