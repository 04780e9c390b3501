"""Upload -> convert worker -> MP3 in the blob store -> email -> download, over real processes."""

from __future__ import annotations

import pytest

from core.domain.errors import MediaError
from tests.support import media
from tests.support.jobs import start_job, upload, wait_job
from tests.support.wait import wait_for

pytestmark = pytest.mark.e2e


def test_upload_convert_email_download(stack, new_user, smtp, clip, tmp_path):
    user, email = new_user()
    accepted = upload(user, clip, bitrate="128k")
    assert accepted.status_code == 202, accepted.text
    job_id = accepted.json()["job_id"]
    assert accepted.json()["status_url"] == f"/jobs/{job_id}"

    job = wait_job(user, job_id)
    assert job["status"] == "done", job
    assert job["progress"] == 100 and job["bitrate"] == "128k"
    assert abs(job["duration_s"] - 3.0) <= 0.2 and job["mp3_size"] > 0
    assert job["links"]["mp3"] == f"/jobs/{job_id}/mp3"

    inbox, _ = smtp
    [mail] = wait_for(
        lambda: [m for m in inbox.received() if m["To"] == email], timeout=30, what="the email"
    )
    body = mail.get_payload(decode=True).decode()
    assert job_id in body and f"{stack.base_url}/jobs/{job_id}/mp3" in body

    response = user.get(f"/jobs/{job_id}/mp3")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "audio/mpeg"
    assert int(response.headers["Content-Length"]) == len(response.content) == job["mp3_size"]
    assert response.headers["ETag"]
    assert response.headers["Content-Disposition"].startswith('attachment; filename="')
    assert ".mp3" in response.headers["Content-Disposition"]
    out = tmp_path / "out.mp3"
    out.write_bytes(response.content)
    assert media.is_mpeg_audio(out)
    assert abs(media.mp3_duration(out) - 3.0) <= 0.2

    by_fid = user.get("/download", params={"fid": job["mp3_fid"]})
    assert by_fid.status_code == 200 and by_fid.content == response.content

    listed = user.get("/jobs").json()
    assert listed["items"][0]["id"] == job_id and listed["total"] >= 1


def test_range_requests(stack, new_user, clip):
    user, _ = new_user()
    job = wait_job(user, upload(user, clip).json()["job_id"])
    whole = user.get(f"/jobs/{job['id']}/mp3").content
    part = user.get(f"/jobs/{job['id']}/mp3", headers={"Range": "bytes=100-199"})
    assert part.status_code == 206 and part.content == whole[100:200]
    assert part.headers["Content-Range"] == f"bytes 100-199/{len(whole)}"
    tail = user.get(f"/jobs/{job['id']}/mp3", headers={"Range": "bytes=-50"})
    assert tail.status_code == 206 and tail.content == whole[-50:]
    beyond = user.get(f"/jobs/{job['id']}/mp3", headers={"Range": f"bytes={len(whole) + 10}-"})
    assert beyond.status_code == 416 and beyond.headers["Content-Range"] == f"bytes */{len(whole)}"


def test_others_cannot_see_or_download(stack, new_user, clip):
    owner, _ = new_user()
    stranger, _ = new_user()
    job = wait_job(owner, upload(owner, clip).json()["job_id"])
    assert stranger.get(f"/jobs/{job['id']}").status_code == 404
    assert stranger.get(f"/jobs/{job['id']}/mp3").status_code == 404
    assert stranger.get("/download", params={"fid": job["mp3_fid"]}).status_code == 404
    assert stranger.delete(f"/jobs/{job['id']}").status_code == 404
    assert owner.get(f"/jobs/{job['id']}/mp3").status_code == 200


def test_delete_job_removes_it(stack, new_user, clip):
    user, _ = new_user()
    job = wait_job(user, upload(user, clip).json()["job_id"])
    assert user.delete(f"/jobs/{job['id']}").status_code == 204
    assert user.get(f"/jobs/{job['id']}").status_code == 404
    assert user.get("/download", params={"fid": job["mp3_fid"]}).status_code == 404


@pytest.mark.stores("directory")  # input handling does not depend on the blob store
@pytest.mark.parametrize(
    "maker,status,error",
    [
        # the index at the end was cut off: ffmpeg cannot tell what the file is
        (media.make_truncated_mp4, "failed", MediaError.NOT_MEDIA),
        (media.make_silent_video, "failed", MediaError.NO_AUDIO),
        (media.make_audio_only, "done", None),
    ],
)
def test_odd_inputs_end_cleanly(stack, new_user, media_dir, maker, status, error):
    user, _ = new_user()
    accepted = upload(user, maker(media_dir))
    assert accepted.status_code == 202, accepted.text
    job = wait_job(user, accepted.json()["job_id"])
    assert job["status"] == status, job
    if status == "failed":
        assert job["error"] == error, job
        assert job["attempts"] == 1 and job["mp3_fid"] is None


def test_webm_from_either_store_converts(stack, new_user, media_dir):
    """A WebM has no declared duration and is read from the store as a stream."""
    user, _ = new_user()
    accepted = upload(user, media.make_webm(media_dir))
    assert accepted.status_code == 202, accepted.text
    job = wait_job(user, accepted.json()["job_id"])
    assert job["status"] == "done", job
    assert job["mp3_size"] > 0 and job["error"] is None


@pytest.mark.parametrize("maker,status", [(media.make_text_as_mp4, 415), (media.make_empty, 422)])
def test_non_media_is_refused_without_a_job(
    stack, new_user, stored_videos, media_dir, maker, status
):
    user, _ = new_user()
    before = stored_videos()
    response = upload(user, maker(media_dir))
    assert response.status_code == status and response.json()["code"]
    assert user.get("/jobs").json()["total"] == 0
    assert stored_videos() == before


def test_upload_needs_a_token_and_a_file(stack, new_user, stored_videos, clip):
    import requests

    before = stored_videos()
    with open(clip, "rb") as fh:
        anonymous = requests.post(stack.url("/upload"), files={"file": fh}, timeout=10)
    assert anonymous.status_code == 401
    user, _ = new_user()
    assert user.post("/upload", data={"bitrate": "192k"}).status_code == 415
    with open(clip, "rb") as fh:
        wrong = user.post("/upload", files={"other": fh})
    assert wrong.status_code == 422
    assert upload(user, clip, bitrate="999k").status_code == 422
    assert user.get("/jobs").json()["total"] == 0
    assert stored_videos() == before


@pytest.mark.stores("directory")  # Flower runs with the directory stack
def test_flower_lists_both_workers_behind_auth(stack):
    import requests

    url = f"http://127.0.0.1:{stack.env['FLOWER_PORT']}"
    wait_for(lambda: _flower_up(url), timeout=30, what="Flower")
    assert requests.get(f"{url}/api/workers", timeout=10).status_code == 401
    user, password = stack.env["FLOWER_BASIC_AUTH"].split(":")
    workers = wait_for(
        lambda: requests.get(
            f"{url}/api/workers?refresh=1", auth=(user, password), timeout=10
        ).json(),
        timeout=30,
        what="workers",
    )
    names = " ".join(workers)
    assert "convert@" in names and "notify@" in names


@pytest.mark.stores("directory")  # Flower runs with the directory stack
def test_flower_turns_the_workers_task_events_on_and_lists_a_conversion(stack, new_user, clip):
    """Workers send task events only while a monitor asks for them (no -E: they cost CPU on
    every task); Flower asks, so its task list shows the conversions."""
    import requests

    url = f"http://127.0.0.1:{stack.env['FLOWER_PORT']}"
    wait_for(lambda: _flower_up(url), timeout=30, what="Flower")
    auth = tuple(stack.env["FLOWER_BASIC_AUTH"].split(":"))
    user, _ = new_user()
    converted: list[str] = []

    def listed() -> bool:
        tasks = requests.get(f"{url}/api/tasks", auth=auth, timeout=10).json()
        seen = " ".join(f"{t.get('name')} {t.get('args')}" for t in tasks.values())
        if any(job_id in seen for job_id in converted):
            return "convert" in seen
        # events reach Flower once its enable_events reached the worker: convert another
        converted.append(start_job(user, clip))
        assert wait_job(user, converted[-1])["status"] == "done"
        return False

    wait_for(listed, timeout=90, interval=1, what="a conversion in Flower's task list")


def _flower_up(url):
    import requests

    try:
        return requests.get(url, timeout=2).status_code in (200, 401)
    except requests.RequestException:
        return False


@pytest.mark.stores("directory")  # naming does not depend on the blob store
@pytest.mark.parametrize(
    "filename,expected",
    [
        ("../../etc/passwd.mp4", "passwd.mp3"),
        ("Été à Paris.mp4", "Été à Paris.mp3"),
        ("ünïcödé 😀.mov", "ünïcödé 😀.mp3"),
    ],
)
def test_download_names_are_safe(stack, new_user, clip, filename, expected):
    from urllib.parse import quote, unquote

    user, _ = new_user()
    with open(clip, "rb") as fh:
        accepted = user.post("/upload", files={"file": (filename, fh)})
    assert accepted.status_code == 202, accepted.text
    job = wait_job(user, accepted.json()["job_id"])
    header = user.get(f"/jobs/{job['id']}/mp3").headers["Content-Disposition"]
    assert all(32 <= ord(ch) < 127 for ch in header)  # nothing raw reaches the header
    disposition, fallback, extended = (part.strip() for part in header.split(";"))
    assert disposition == "attachment"
    assert fallback.startswith('filename="') and "/" not in fallback and "\\" not in fallback
    assert extended == f"filename*=UTF-8''{quote(expected, safe='')}"
    assert unquote(extended.split("''", 1)[1]) == expected
