"""The web page on a stack that answers downloads by presigned redirect (the S3 store): the
Download button still saves the MP3, fetched from the bucket, and the API token goes nowhere."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.support import media
from tests.support.browser import DESKTOP, chromium
from tests.support.wait import scaled

pytestmark = [pytest.mark.e2e, pytest.mark.stores("s3")]

expect.set_options(timeout=scaled(20_000))
PASSWORD = "password-1"


def test_download_button_saves_the_mp3_from_the_bucket(stack, admin, clip, tmp_path):
    email = "web-s3@example.com"
    created = admin.post("/users", json={"name": "web-s3", "email": email, "password": PASSWORD})
    assert created.status_code == 201, created.text
    seen: list[str] = []
    with chromium() as browser:
        context = browser.new_context(viewport=DESKTOP, accept_downloads=True)
        try:
            page = context.new_page()
            page.on("request", lambda request: seen.append(request.url))
            page.goto(stack.url("/app/"))
            page.get_by_label("Email").fill(email)
            page.get_by_label("Password").fill(PASSWORD)
            page.get_by_role("button", name="Sign in").click()
            expect(page.get_by_text(f"Signed in as {email}")).to_be_visible()
            page.get_by_label("Drop videos here").set_input_files(clip)
            row = page.locator("#jobs li", has=page.locator(".name", has_text="video_3s"))
            expect(row).to_have_attribute("data-status", "done", timeout=90_000)

            with page.expect_download() as info:
                row.get_by_role("button", name="Download").click()
            download = info.value
            assert download.suggested_filename == "video_3s_160x120.mp3"
            saved = tmp_path / download.suggested_filename
            download.save_as(saved)
            assert media.is_mpeg_audio(saved)
            assert download.url.startswith(stack.settings.s3_endpoint_url + "/")
            token = page.evaluate("() => sessionStorage.getItem('vid2mp3.token')")
            assert token and not [url for url in seen if token in url]
        finally:
            context.close()
