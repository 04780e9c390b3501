"""The page an upload link opens, in Debian's Chromium against the real stack and workers."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests
from playwright.sync_api import expect
from tusclient.client import TusClient

from tests.support import media
from tests.support.browser import PHONE, Trouble, chromium, screenshot
from tests.support.wait import scaled, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.stores("directory")]
expect.set_options(timeout=scaled(20_000))
CONVERSION_TIMEOUT_MS = scaled(90_000)


@pytest.fixture(scope="module")
def browser():
    with chromium() as running:
        yield running


@pytest.fixture
def guest_page(browser, stack):
    """A fresh page with no account; afterwards it may not have broken the CSP, thrown, or
    gone to another origin."""
    context = browser.new_context(viewport=PHONE, accept_downloads=True)
    page = context.new_page()
    trouble = Trouble(stack.base_url)
    trouble.watch(page)
    yield page
    context.close()
    assert trouble.csp_violations == [] and trouble.page_errors == []
    assert trouble.foreign_requests == []


def make_link(client, **fields) -> str:
    made = client.post("/upload-links", json=fields)
    assert made.status_code == 201, made.text
    return urlsplit(made.json()["url"]).path


def test_a_guest_drops_a_file_sees_it_convert_and_downloads_it(
    stack, new_user, guest_page, clip, tmp_path
):
    owner, _ = new_user()
    path = make_link(owner, options={"bitrate": "128k"}, allow_download=True)
    page = guest_page
    response = page.goto(stack.url(path))
    assert response.headers["referrer-policy"] == "no-referrer"
    expect(page.locator("#guest-terms")).to_contain_text("One video or audio file")
    expect(page.locator("#guest-terms")).to_contain_text("download the MP3")
    page.get_by_label("Drop one video here").set_input_files(clip)
    expect(page.locator("#guest-status")).to_have_text("done", timeout=CONVERSION_TIMEOUT_MS)
    screenshot(page, "guest-done", tmp_path)
    with page.expect_download() as info:
        page.get_by_text("Download MP3").click()
    saved = tmp_path / "guest.mp3"
    info.value.save_as(saved)
    assert media.is_mpeg_audio(saved)
    assert abs(media.mp3_duration(saved) - 3.0) <= 0.2
    jobs = owner.get("/jobs").json()
    assert jobs["total"] == 1 and jobs["items"][0]["options"]["bitrate"] == "128k"

    page.reload()  # the link took its one file
    expect(page.locator("#notice")).to_have_text("This link was used already: it takes one file.")
    expect(page.locator("#guest-view")).to_be_hidden()

    # Neither the link's token nor a download link's reaches gunicorn's access log.
    download = owner.post(f"/jobs/{jobs['items'][0]['id']}/links", json={"expires_in": 600})
    download_path = urlsplit(download.json()["url"]).path
    assert requests.get(stack.url(download_path), timeout=10).status_code == 200
    token, download_token = path.rsplit("/", 1)[1], download_path.rsplit("/", 1)[1]
    logged = wait_for(
        lambda: "GET /links/[redacted]" in stack.log("api") and stack.log("api"),
        timeout=10,
        what="the download's access line",
    )
    assert "POST /guest/[redacted]/upload" in logged and "GET /guest/[redacted]/job" in logged
    assert token not in logged and download_token not in logged


def test_a_deleted_link_shows_why_and_a_refused_file_leaves_it_open(
    stack, new_user, guest_page, media_dir
):
    owner, _ = new_user()
    path = make_link(owner, max_mb=1)
    page = guest_page
    page.goto(stack.url(path))
    notes = media.make_text_as_mp4(media_dir)
    # the drop zone shows (and takes a file) once the link's terms have come back
    expect(page.locator("#guest-terms")).to_contain_text("One video or audio file")
    page.get_by_label("Drop one video here").set_input_files(notes)
    expect(page.locator("#notice")).to_contain_text("not a video or audio file")
    expect(page.locator("#guest-view")).to_be_visible()  # the guest may try again

    link_id = owner.get("/upload-links").json()[0]["id"]
    assert owner.delete(f"/upload-links/{link_id}").status_code == 204
    page.reload()
    expect(page.locator("#notice")).to_have_text("this upload link was deleted by its owner")
    expect(page.locator("#guest-view")).to_be_hidden()


def test_tuspy_sends_a_guests_file_through_a_link_in_pieces(stack, new_user, clip):
    """tuspy (the protocol's reference client for Python) against the link's tus routes, with
    checksums, no credential at all; the MP3 comes out with the clip's duration."""
    owner, _ = new_user()
    path = make_link(owner, allow_download=True)
    size = Path(clip).stat().st_size
    uploader = TusClient(stack.url(f"{path}/uploads/")).uploader(
        clip, chunk_size=size // 3 + 1, upload_checksum=True, metadata={"filename": "guest.mp4"}
    )
    uploader.upload()
    job_id = uploader.request.response_headers["vid2mp3-job-id"]

    def done():
        job = requests.get(stack.url(f"{path}/job"), timeout=10).json()
        return job if job["status"] in ("done", "failed") else None

    job = wait_for(done, timeout=90, what="the guest's job")
    assert job["id"] == job_id and job["status"] == "done"
    mp3 = requests.get(stack.url(job["download_url"]), timeout=30)
    assert mp3.status_code == 200 and mp3.headers["Content-Type"] == "audio/mpeg"
    assert owner.get(f"/jobs/{job_id}").json()["filename"] == "guest.mp4"
