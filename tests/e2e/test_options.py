"""Audio options through the real stack: upload with options -> worker -> the MP3 has them."""

from __future__ import annotations

import os

import pytest
from mutagen.id3 import PictureType
from mutagen.mp3 import MP3, BitrateMode

from tests.support import media
from tests.support.wait import wait_for

pytestmark = pytest.mark.e2e


def upload(client, path, params=None, **form):
    with open(path, "rb") as fh:
        return client.post(
            "/upload", files={"file": (os.path.basename(path), fh)}, data=form, params=params
        )


def finished(client, accepted):
    assert accepted.status_code == 202, accepted.text
    job_id = accepted.json()["job_id"]

    def ended():
        job = client.get(f"/jobs/{job_id}").json()
        return job if job["status"] in ("done", "failed") else None

    return wait_for(ended, timeout=60, what=f"job {job_id} to finish")


def download(client, job, tmp_path) -> str:
    response = client.get(f"/jobs/{job['id']}/mp3")
    assert response.status_code == 200
    out = tmp_path / f"{job['id']}.mp3"
    out.write_bytes(response.content)
    return str(out)


@pytest.fixture(scope="session")
def two_languages(media_dir):
    return media.make_two_language_video(media_dir, 4.0)


def test_options_reach_the_mp3(stack, new_user, two_languages, tmp_path):
    user, _ = new_user()
    job = finished(
        user,
        upload(
            user,
            two_languages,
            params={"track": "1", "cover": "frame"},
            quality="2",
            start="0.5",
            end="00:00:03.000",
            artist="Zoë",
            loudness="-16",
        ),
    )
    assert job["status"] == "done", job
    assert job["mode"] == "encode" and job["bitrate"] == "V2" and job["notes"] == []
    assert job["options"] == {
        "format": "mp3",
        "quality": 2,
        "start": 0.5,
        "end": 3.0,
        "loudness": -16.0,
        "title": "two_languages_4s",
        "artist": "Zoë",
        "cover": "frame",
        "track": 1,
    }
    assert job["source"]["video"] == {"width": 160, "height": 120}
    assert [
        (t["language"], t["channels"], t["sample_rate"]) for t in job["source"]["audio_tracks"]
    ] == [("eng", 1, 44100), ("fra", 2, 48000)]
    assert job["source"]["duration"] == pytest.approx(4.0, abs=0.1)
    mp3 = download(user, job, tmp_path)
    audio = MP3(mp3)
    assert audio.info.bitrate_mode is BitrateMode.VBR
    assert (audio.info.sample_rate, audio.info.channels) == (48000, 2)  # the French track
    assert media.mp3_duration(mp3) == pytest.approx(2.5, abs=0.05)
    assert str(audio.tags["TIT2"]) == "two_languages_4s" and str(audio.tags["TPE1"]) == "Zoë"
    [cover] = audio.tags.getall("APIC")
    assert cover.type == PictureType.COVER_FRONT and cover.mime == "image/jpeg"
    integrated, peak = media.loudness(mp3)
    assert integrated == pytest.approx(-16.0, abs=1.0) and peak <= -1.0


def test_an_mp3_upload_is_copied(stack, new_user, media_dir, tmp_path):
    user, _ = new_user()
    source = media.make_mp3_source(media_dir, 4.0)
    job = finished(user, upload(user, source, album="Copies"))
    assert job["status"] == "done", job
    assert job["mode"] == "copy" and job["source"]["audio_tracks"][0]["codec"] == "mp3"
    mp3 = download(user, job, tmp_path)
    assert media.mpeg_audio_frames(mp3) == media.mpeg_audio_frames(source)
    assert str(MP3(mp3).tags["TALB"]) == "Copies"


def test_a_missing_track_fails_the_job_naming_how_many(stack, new_user, two_languages):
    user, _ = new_user()
    job = finished(user, upload(user, two_languages, track="5"))
    assert job["status"] == "failed"
    assert job["error"] == "there is no audio track 5: the file has 2 audio tracks (from 0)"


def test_a_window_outside_the_source_fails_the_job(stack, new_user, clip):
    user, _ = new_user()
    job = finished(user, upload(user, clip, start="00:01:00"))
    assert job["status"] == "failed"
    assert job["error"].startswith("the start and end are outside the source")


def test_a_cover_without_video_is_a_note(stack, new_user, media_dir, tmp_path):
    user, _ = new_user()
    job = finished(user, upload(user, media.make_audio_only(media_dir, 2.0), cover="frame"))
    assert job["status"] == "done", job
    assert job["notes"] == ["the source has no video, so the MP3 has no cover"]
    assert MP3(download(user, job, tmp_path)).tags.getall("APIC") == []
