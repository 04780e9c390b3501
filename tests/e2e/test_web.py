"""The web page at /app/ and the API docs at /docs, in Debian's Chromium against the real stack."""

from __future__ import annotations

import base64
import re
from datetime import datetime
from pathlib import Path

import pytest
import requests
from playwright.sync_api import expect

from api.option_schemas import upload_body
from api.web import CONTENT_SECURITY_POLICY
from tests.support import media
from tests.support.browser import DESKTOP, PHONE, Trouble, chromium, screenshot
from tests.support.client import login
from tests.support.options import WITH_FADE_IN
from tests.support.stack import workers_answer
from tests.support.wait import scaled, wait_for

pytestmark = [
    pytest.mark.e2e,
    # The page is the same whatever the blob store: one stack is enough.
    pytest.mark.stores("directory"),
]

# A loaded machine hashes a password (argon2) or answers a poll slowly: deadlines, not sleeps.
expect.set_options(timeout=scaled(20_000))
PASSWORD = "password-1"
CONVERSION_TIMEOUT_MS = scaled(90_000)


@pytest.fixture(scope="module")
def browser():
    with chromium() as running:
        yield running


@pytest.fixture
def open_page(browser, stack):
    """Pages in fresh contexts; afterwards none may have broken the CSP, thrown, or gone
    to another origin."""
    opened: list[tuple[object, Trouble]] = []

    def open_(viewport=DESKTOP):
        context = browser.new_context(viewport=viewport, accept_downloads=True)
        page = context.new_page()
        page.set_default_timeout(scaled(20_000))
        trouble = Trouble(stack.base_url)
        trouble.watch(page)
        opened.append((context, trouble))
        return page, trouble

    yield open_
    for context, _ in opened:
        context.close()
    for _, trouble in opened:
        assert trouble.csp_violations == [], trouble.csp_violations
        assert trouble.page_errors == [], trouble.page_errors
        assert trouble.foreign_requests == [], trouble.foreign_requests


_numbers = iter(range(1, 10_000))


@pytest.fixture
def account(stack, admin):
    """A new user: (email, id)."""
    n = next(_numbers)
    email = f"web{n}@example.com"
    created = admin.post("/users", json={"name": f"web{n}", "email": email, "password": PASSWORD})
    assert created.status_code == 201, created.text
    return email, created.json()["id"]


def sign_in(page, stack, email, password=PASSWORD, succeeds=True):
    response = page.goto(stack.url("/app/"))
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    if succeeds:
        expect(page.get_by_text(f"Signed in as {email}")).to_be_visible()
    return response


def job_row(page, filename):
    return page.locator("#jobs li", has=page.locator(".name", has_text=filename))


def upload_row(page, filename):
    return page.locator("#uploads li", has=page.locator(".name", has_text=filename))


def test_sign_in_convert_download_delete_sign_out(open_page, stack, account, clip, tmp_path):
    email, _ = account
    page, _ = open_page(DESKTOP)
    response = sign_in(page, stack, email)
    assert response.headers["content-security-policy"] == CONTENT_SECURITY_POLICY

    page.get_by_label("Bitrate").select_option("128k")
    page.get_by_label("Drop videos here").set_input_files(clip)
    name = "video_3s_160x120.mp4"
    uploaded = upload_row(page, name)
    expect(uploaded.locator(".status")).to_contain_text("Uploaded 100%")
    expect(uploaded.locator("progress")).to_have_attribute("value", "100")

    row = job_row(page, name)
    expect(row).to_have_attribute("data-status", "done", timeout=CONVERSION_TIMEOUT_MS)
    expect(row.locator("progress")).to_have_attribute("value", "100")
    expect(row.locator(".status")).to_contain_text(re.compile(r"Done · 3\.\d s · \d+ KB · 128k"))
    screenshot(page, "web-desktop", tmp_path)

    with page.expect_download() as info:
        row.get_by_role("button", name="Download").click()
    download = info.value
    assert download.suggested_filename == "video_3s_160x120.mp3"
    saved = tmp_path / download.suggested_filename
    download.save_as(saved)
    assert media.is_mpeg_audio(saved)
    assert abs(media.mp3_duration(saved) - 3.0) <= 0.2
    expect(row.get_by_role("status")).to_have_text("Saved video_3s_160x120.mp3.")

    # The token is in no URL and not in localStorage.
    storage = page.evaluate("() => JSON.stringify(window.localStorage)")
    token = page.evaluate("() => sessionStorage.getItem('vid2mp3.token')")
    assert token and token not in storage and token not in page.url
    assert token not in (download.url or "")

    job_id = row.get_attribute("data-job-id")
    row.get_by_role("button", name="Delete").click()
    expect(row).to_have_count(0)
    user = login(stack, email, PASSWORD)
    assert user.get(f"/jobs/{job_id}").status_code == 404

    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("button", name="Sign in")).to_be_visible()
    expect(page.locator("#notice")).to_have_text("You are signed out.")
    assert page.evaluate("() => sessionStorage.getItem('vid2mp3.token')") is None


def test_a_large_file_goes_over_tus_and_survives_a_dropped_chunk(
    open_page, stack, account, clip, tmp_path
):
    email, _ = account
    page, _ = open_page(DESKTOP)
    size = Path(clip).stat().st_size
    chunk = size // 6 + 1
    # What counts as large, and the chunk size, scaled down so the clip takes six PATCHes.
    page.add_init_script(f"window.VID2MP3_TUS = {{ minBytes: 1, chunkBytes: {chunk} }};")
    sign_in(page, stack, email)
    requests_seen: list[tuple[str, int | None]] = []
    dropped: list[int] = []

    def cut_the_third_patch(route):
        request = route.request
        offset = request.headers.get("upload-offset")
        requests_seen.append((request.method, None if offset is None else int(offset)))
        if request.method == "PATCH" and len(requests_seen) == 4 and not dropped:
            dropped.append(int(offset))
            route.abort("connectionreset")  # the network fails mid-upload
            return
        route.fallback()

    page.route(re.compile(r".*/uploads/.*"), cut_the_third_patch)
    page.get_by_label("Title").fill("Über tus")
    page.get_by_label("Drop videos here").set_input_files(clip)
    name = Path(clip).name
    uploaded = upload_row(page, name)
    expect(uploaded.locator(".status")).to_contain_text("Uploaded 100%", timeout=scaled(60_000))
    row = job_row(page, name)
    expect(row).to_have_attribute("data-status", "done", timeout=CONVERSION_TIMEOUT_MS)

    methods = [method for method, _ in requests_seen]
    assert methods.count("POST") == 1, requests_seen  # one upload, however many chunks
    assert "HEAD" in methods  # the client asked where to resume
    patches = [offset for method, offset in requests_seen if method == "PATCH"]
    assert dropped and dropped[0] > 0
    assert patches.count(dropped[0]) == 2, patches  # resumed where it broke, not from 0
    assert patches == sorted(patches) and len(set(patches)) == 6

    job = login(stack, email, PASSWORD).get(f"/jobs/{row.get_attribute('data-job-id')}").json()
    assert job["video_size"] == size and job["options"]["title"] == "Über tus"
    with page.expect_download() as info:
        row.get_by_role("button", name="Download").click()
    saved = tmp_path / "tus.mp3"
    info.value.save_as(saved)
    assert abs(media.mp3_duration(saved) - 3.0) <= 0.2


def drop_file(page, selector, path):
    """Drag a file from the desktop onto an element, as a person does."""
    data = base64.b64encode(Path(path).read_bytes()).decode()
    transfer = page.evaluate_handle(
        """([name, data]) => {
        const bytes = Uint8Array.from(atob(data), (c) => c.charCodeAt(0));
        const transfer = new DataTransfer();
        transfer.items.add(new File([bytes], name, { type: "video/mp4" }));
        return transfer;
    }""",
        [Path(path).name, data],
    )
    page.dispatch_event(selector, "dragover", {"dataTransfer": transfer})
    page.dispatch_event(selector, "drop", {"dataTransfer": transfer})


def test_copy_link_is_offered_only_when_the_server_has_links(open_page, stack, account, clip):
    email, _ = account
    page, _ = open_page(DESKTOP)
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    sign_in(page, stack, email)
    drop_file(page, "#drop-zone", clip)
    expect(upload_row(page, "video_3s_160x120.mp4").locator(".status")).to_contain_text(
        "Uploaded 100%"
    )
    row = job_row(page, "video_3s_160x120.mp4")
    expect(row).to_have_attribute("data-status", "done", timeout=CONVERSION_TIMEOUT_MS)
    button = row.get_by_role("button", name="Copy link")
    paths = requests.get(stack.url("/openapi.json"), timeout=10).json()["paths"]
    if "/jobs/{job_id}/links" in paths:
        button.click()
        expect(row.get_by_role("status")).to_contain_text("Link copied")
        copied = page.evaluate("() => navigator.clipboard.readText()")
        assert requests.get(copied, timeout=10).status_code == 200
    else:
        expect(button).to_be_disabled()
        expect(page.locator("#links-note")).to_have_text(
            "Copy link is not available: this server does not offer shareable links yet."
        )


def test_phone_keyboard_and_a_file_that_is_not_a_video(
    open_page, stack, account, clip, media_dir, tmp_path
):
    email, _ = account
    page, _ = open_page(PHONE)
    page.goto(stack.url("/app/"))
    expect(page.get_by_label("Email")).to_be_focused()
    page.keyboard.type(email)
    page.keyboard.press("Tab")
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    expect(page.get_by_text(f"Signed in as {email}")).to_be_visible()

    # Tab reaches the file picker (inside the drop zone) and the options before it.
    for _ in range(30):
        page.keyboard.press("Tab")
        if page.evaluate("() => document.activeElement.id") == "files":
            break
    expect(page.locator("#files")).to_be_focused()

    notes = media.make_text_as_mp4(media_dir)
    page.get_by_label("Drop videos here").set_input_files([notes, clip])
    expect(upload_row(page, "notes.mp4").get_by_role("alert")).to_contain_text(
        "“notes.mp4” is not a video we accept"
    )
    expect(job_row(page, "video_3s_160x120.mp4")).to_have_attribute(
        "data-status", "done", timeout=CONVERSION_TIMEOUT_MS
    )
    assert not job_row(page, "notes.mp4").count()

    width = page.evaluate("() => document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"the page is {width} px wide on a {PHONE['width']} px phone"
    for name in ("Download", "Delete"):
        box = job_row(page, "video_3s_160x120.mp4").get_by_role("button", name=name).bounding_box()
        assert box and box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"]
    screenshot(page, "web-phone", tmp_path)


def expect_ended(row, words, actions=("Delete",)):
    """An ended job: its words, no progress bar (spinning or not), and only `actions`."""
    expect(row.locator(".status")).to_have_text(words)
    expect(row.locator("progress")).to_be_hidden()
    for name in ("Download", "Copy link", "Cancel", "Delete"):
        button = row.get_by_role("button", name=name)
        if name in actions:
            expect(button).to_be_visible()
        else:
            expect(button).to_be_hidden()


def test_cancel_a_job_that_waits_for_a_worker(open_page, stack, account, clip):
    email, _ = account
    page, _ = open_page(DESKTOP)
    sign_in(page, stack, email)
    stack.stop("worker-convert")  # nobody converts: the job stays queued until cancelled
    try:
        page.get_by_label("Drop videos here").set_input_files(clip)
        row = job_row(page, "video_3s_160x120.mp4")
        expect(row).to_have_attribute("data-status", "queued")
        expect(row.locator(".status")).to_have_text("Queued")
        expect(row.get_by_role("button", name="Download")).to_be_hidden()
        job_id = row.get_attribute("data-job-id")
        row.get_by_role("button", name="Cancel").click()
        expect(row).to_have_attribute("data-status", "cancelled")
        expect_ended(row, "Cancelled")
        user = login(stack, email, PASSWORD)
        assert user.get(f"/jobs/{job_id}").json()["status"] == "cancelled"
    finally:
        stack.start("worker-convert")
        wait_for(
            lambda: workers_answer(stack.container, ("convert",)),
            timeout=60,
            what="the convert worker to come back",
        )


def test_failed_and_expired_jobs_say_so(open_page, stack, account, clip, media_dir):
    email, _ = account
    page, _ = open_page(DESKTOP)
    sign_in(page, stack, email)
    broken = media.make_truncated_mp4(media_dir)
    page.get_by_label("Drop videos here").set_input_files([clip, broken])
    done = job_row(page, Path(clip).name)
    failed = job_row(page, Path(broken).name)
    expect(failed).to_have_attribute("data-status", "failed", timeout=CONVERSION_TIMEOUT_MS)
    expect_ended(failed, re.compile(r"^Failed: \S"))
    expect(done).to_have_attribute("data-status", "done", timeout=CONVERSION_TIMEOUT_MS)

    # Its MP3 passes the retention time: the sweeper's purge marks it expired.
    job_id = done.get_attribute("data-job-id")
    container = stack.container
    assert container.job_repo.update(job_id, {"expires_at": datetime(2000, 6, 15, 12)})
    assert job_id in container.retention.purge()
    page.get_by_role("button", name="Refresh").click()
    expect(done).to_have_attribute("data-status", "expired")
    expect_ended(done, re.compile(r"^Expired: the MP3 was deleted \(kept until .*2000"))
    user = login(stack, email, PASSWORD)
    assert user.get(f"/jobs/{job_id}/mp3").status_code == 410


def test_revoked_token_returns_to_sign_in_with_a_message(open_page, stack, account, admin):
    email, user_id = account
    page, _ = open_page(DESKTOP)
    sign_in(page, stack, email)
    expect(page.locator("#jobs-empty")).to_be_visible()
    # A password change revokes every token of the user: the page's next poll gets 401.
    changed = admin.patch(
        f"/users/{user_id}",
        json={"password": "password-2", "current_password": stack.settings.admin_password},
    )
    assert changed.status_code == 200, changed.text
    expect(page.get_by_role("button", name="Sign in")).to_be_visible(timeout=scaled(20_000))
    expect(page.locator("#notice")).to_have_text(
        "You have been signed out because your session expired. Please sign in again."
    )
    assert page.evaluate("() => sessionStorage.getItem('vid2mp3.token')") is None


def test_a_confirmation_link_confirms_the_address_once_signed_in(open_page, stack, account, smtp):
    """The link in the email (sent by the notify worker) opens the page; the address changes
    only when the account's owner signs in there, and the old address is told."""
    email, user_id = account
    inbox, _ = smtp
    new = f"moved{next(_numbers)}@example.org"
    user = login(stack, email, PASSWORD)
    asked = user.patch(f"/users/{user_id}", json={"email": new, "current_password": PASSWORD})
    assert asked.status_code == 200 and asked.json()["pending_email"] == new, asked.text

    def mail(to, subject):
        return next(
            (m for m in inbox.received() if m["To"] == to and m["Subject"] == subject), None
        )

    confirm = wait_for(
        lambda: mail(new, "Confirm your email address for vid2mp3"),
        timeout=60,
        what="the confirmation email",
    )
    link = re.search(r"http\S+#confirm-email=[\w.-]+", confirm.get_payload(decode=True).decode())
    page, _ = open_page(DESKTOP)
    page.goto(link.group(0))
    expect(page.locator("#notice")).to_have_text(
        "Sign in to the account to confirm your email address."
    )
    assert "confirm-email" not in page.url  # the token left the address bar and history
    assert user.get(f"/users/{user_id}").json()["email"] == email  # following it did nothing
    sign_in(page, stack, email)
    expect(page.locator("#notice")).to_have_text(f"Your email address is now {new}.")
    assert user.get(f"/users/{user_id}").json()["email"] == new
    wait_for(
        lambda: mail(email, "The email address of your vid2mp3 account was changed"),
        timeout=60,
        what="the notice to the old address",
    )


def test_wrong_password_then_too_many_attempts(open_page, stack):
    page, _ = open_page(DESKTOP)
    email = f"nobody{next(_numbers)}@example.com"
    sign_in(page, stack, email, "wrong-password", succeeds=False)
    error = page.locator("#sign-in-error")
    expect(error).to_have_text("Wrong email or password.")
    limit = stack.settings.login_max_failures
    for _ in range(limit):
        page.get_by_role("button", name="Sign in").click()
        expect(page.get_by_role("button", name="Sign in")).to_be_enabled()
    expect(error).to_contain_text("Too many sign-in attempts. Please try again in ")
    expect(error).to_contain_text(re.compile(r"in \d+ (seconds|minutes) \(at \d\d:\d\d"))


def test_error_messages_in_words(open_page, stack):
    page, _ = open_page(DESKTOP)
    page.goto(stack.url("/app/"))
    words = page.evaluate("""async () => {
        const { ApiError, describeError, parseRetryAfter } = await import('/app/api.js');
        const what = '“big.mp4”';
        return {
          tooLarge: describeError(new ApiError(413, 'uploads are limited to 2048 MiB'), {what}),
          notVideo: describeError(new ApiError(415, 'not a video'), {what}),
          tooMany: describeError(new ApiError(429, 'slow down', {retryAfter: 30}), {what}),
          expired: describeError(new ApiError(401, 'token expired'), {what}),
          offline: describeError(new ApiError(0, ''), {what}),
          cutOff: describeError(new ApiError(0, ''), {what, action: 'upload'}),
          dated: parseRetryAfter(new Date(Date.now() + 120000).toUTCString()),
        };
    }""")
    assert words["tooLarge"] == "“big.mp4” is too large (uploads are limited to 2048 MiB)."
    assert words["notVideo"] == "“big.mp4” is not a video we accept: not a video."
    assert words["tooMany"].startswith("Too many requests. Please try again in 30 seconds (at ")
    assert words["expired"].startswith("You have been signed out because your session expired")
    assert words["offline"].startswith("Could not reach the server.")
    assert words["cutOff"].startswith("The upload of “big.mp4” was cut off")
    assert 118 <= words["dated"] <= 121


def test_every_job_status_has_its_own_words(open_page, stack):
    page, _ = open_page(DESKTOP)
    page.goto(stack.url("/app/"))
    spec = requests.get(stack.url("/openapi.json"), timeout=10).json()
    [query] = [p for p in spec["paths"]["/jobs"]["get"]["parameters"] if p["name"] == "status"]
    statuses = query["schema"]["enum"]
    words = page.evaluate(
        """async (statuses) => {
        const { statusWords } = await import('/app/jobs.js');
        return Object.fromEntries(statuses.map((status) => [status, statusWords({ status })]));
    }""",
        statuses,
    )
    # Each status has words of its own that name it: no "Failed" for a cancelled job, and a new
    # status of the API fails here until the page words it.
    for status, said in words.items():
        assert said.startswith(status.capitalize()), words


def test_page_offers_every_upload_option_of_the_api(open_page, stack, account):
    email, _ = account
    page, _ = open_page(DESKTOP)
    sign_in(page, stack, email)
    spec = requests.get(stack.url("/openapi.json"), timeout=10).json()
    body = spec["paths"]["/upload"]["post"]["requestBody"]["content"]["multipart/form-data"]
    options = {k: v for k, v in body["schema"]["properties"].items() if k != "file"}
    assert options, "the API documents no upload option"
    for name, schema in sorted(options.items()):
        control = page.locator(f"#upload-form [name='{name}']")
        expect(control).to_have_count(1)
        # shown once a format that takes it is chosen
        page.get_by_label("Format").select_option(schema["x-formats"][0])
        label = page.locator(f"label[for='{control.get_attribute('id')}']")
        expect(label).to_be_visible()


def test_the_form_is_the_described_options_and_an_added_one_appears(
    open_page, stack, account, clip
):
    """The page builds its form from /openapi.json: served the document of a description with
    one more option, it offers that option, labelled and explained, and sends it."""
    spec = requests.get(stack.url("/openapi.json"), timeout=10).json()
    spec["paths"]["/upload"]["post"]["requestBody"] = upload_body(WITH_FADE_IN)
    email, _ = account
    page, _ = open_page(DESKTOP)
    page.route("**/openapi.json", lambda route: route.fulfill(json=spec))
    sign_in(page, stack, email)

    added = page.get_by_label("Fade in (s)")
    for attribute, value in (("type", "number"), ("min", "0"), ("max", "10"), ("step", "any")):
        expect(added).to_have_attribute(attribute, value)
    expect(added).to_have_attribute("placeholder", "no fade")
    expect(page.locator("#option-fade_in-hint")).to_have_text(
        "fade the audio in over this long; omitted: no fade"
    )
    # The described ones, as described: words for choices, the default where no words say
    # otherwise, a list for a short integer range.
    expect(page.get_by_label("Bitrate")).to_have_value("")
    expect(page.get_by_label("Bitrate").locator("option").first).to_have_text("192k; 128k for opus")
    expect(page.get_by_label("Cover")).to_have_value("none")
    expect(page.get_by_label("Channels").locator("option")).to_have_text(
        ["as the source", "mono", "stereo"]
    )
    expect(page.get_by_label("VBR quality").locator("option")).to_have_count(11)
    expect(page.get_by_label("Audio track")).to_have_attribute("max", "63")

    added.fill("2.5")
    page.get_by_label("Channels").select_option("1")
    with page.expect_request(lambda r: r.method == "POST" and r.url.endswith("/upload")) as sent:
        page.get_by_label("Drop videos here").set_input_files(clip)
    body = sent.value.post_data_buffer or b""
    assert b'name="fade_in"\r\n\r\n2.5\r\n' in body
    assert b'name="channels"\r\n\r\n1\r\n' in body
    assert b'name="bitrate"' not in body  # left to the server
    expect(upload_row(page, "video_3s_160x120.mp4").locator(".status")).to_contain_text(
        "Uploaded 100%"
    )


def test_a_format_shows_its_own_options_and_its_file_is_saved_with_its_extension(
    open_page, stack, account, clip, tmp_path
):
    """Choosing FLAC hides the bitrate and VBR quality and offers the compression level; what
    is sent is what is shown; the download is a FLAC named .flac (mutagen reads it)."""
    import mutagen

    email, _ = account
    page, _ = open_page(DESKTOP)
    sign_in(page, stack, email)
    expect(page.get_by_label("Format")).to_have_value("mp3")
    expect(page.get_by_label("FLAC compression")).to_be_hidden()
    page.get_by_label("VBR quality").select_option("2")  # chosen, then hidden by the format
    page.get_by_label("Format").select_option("flac")
    expect(page.get_by_label("Bitrate")).to_be_hidden()
    expect(page.get_by_label("VBR quality")).to_be_hidden()
    page.get_by_label("FLAC compression").fill("8")
    with page.expect_request(lambda r: r.method == "POST" and r.url.endswith("/upload")) as sent:
        page.get_by_label("Drop videos here").set_input_files(clip)
    body = sent.value.post_data_buffer or b""
    assert b'name="format"\r\n\r\nflac\r\n' in body
    assert b'name="compression"\r\n\r\n8\r\n' in body
    assert b'name="quality"' not in body

    row = job_row(page, "video_3s_160x120.mp4")
    expect(row).to_have_attribute("data-status", "done", timeout=CONVERSION_TIMEOUT_MS)
    expect(row.locator(".status")).to_contain_text(re.compile(r"Done · FLAC · 3\.\d s"))
    with page.expect_download() as info:
        row.get_by_role("button", name="Download").click()
    download = info.value
    assert download.suggested_filename == "video_3s_160x120.flac"
    saved = tmp_path / download.suggested_filename
    download.save_as(saved)
    found = mutagen.File(saved)
    assert type(found).__name__ == "FLAC" and abs(found.info.length - 3.0) <= 0.05


def test_security_headers_and_the_service_document(stack):
    for path in ("/app/", "/app/app.js", "/app/style.css", "/docs", "/docs/assets/docs.js"):
        response = requests.get(stack.url(path), timeout=10)
        assert response.status_code == 200, path
        assert response.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY, path
        assert response.headers["X-Content-Type-Options"] == "nosniff", path
        assert response.headers["Referrer-Policy"] == "no-referrer", path
        assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
    assert (
        requests.get(stack.url("/app/app.js"), timeout=10)
        .headers["Content-Type"]
        .startswith("text/javascript")
    )
    moved = requests.get(stack.url("/app"), allow_redirects=False, timeout=10)
    assert moved.status_code == 308 and moved.headers["Location"].endswith("/app/")
    index = requests.get(stack.url("/"), timeout=10)
    assert index.json()["service"] == "vid2mp3" and "hits" in index.json()


def test_docs_show_the_operations_without_leaving_the_api(open_page, stack, tmp_path):
    page, trouble = open_page(DESKTOP)
    response = page.goto(stack.url("/docs"))
    assert response.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    expect(page.locator('.opblock-summary-path[data-path="/upload"]')).to_be_visible()
    paths = requests.get(stack.url("/openapi.json"), timeout=10).json()["paths"]
    operations = sum(len([m for m in ops if m != "parameters"]) for ops in paths.values())
    expect(page.locator(".opblock")).to_have_count(operations)
    screenshot(page, "docs-desktop", tmp_path)
    assert trouble.foreign_requests == []
    licence = requests.get(stack.url("/docs/LICENSE"), timeout=10)
    assert licence.status_code == 200 and "Apache License" in licence.text


def test_convert_from_a_link(open_page, stack, account, clip):
    """The "from a link" field: the server fetches the video (status words while it does),
    converts it with the options chosen above, and the page offers the MP3."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    video = Path(clip).read_bytes()

    class Serve(BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Type", "video/mp4")
            self.send_header("Content-Length", str(len(video)))
            self.end_headers()
            self.wfile.write(video)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Serve)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        email, _ = account
        page, _ = open_page(DESKTOP)
        sign_in(page, stack, email)
        page.get_by_label("Bitrate").select_option("192k")
        page.get_by_label("Or convert from a link").fill("not a link")
        page.get_by_role("button", name="Convert from link").click()
        expect(page.locator("#link-error")).to_contain_text("starting with http")
        url = f"http://127.0.0.1:{server.server_port}/films/lecture.mp4"
        page.get_by_label("Or convert from a link").fill(url)
        page.get_by_role("button", name="Convert from link").click()
        expect(page.locator("#notice")).to_contain_text("fetching the video")
        row = job_row(page, "lecture.mp4")
        expect(row).to_have_attribute("data-status", "done", timeout=CONVERSION_TIMEOUT_MS)
        expect(row.locator(".status")).to_contain_text(re.compile(r"Done · 3\.\d s · .* · 192k"))
        expect(page.get_by_label("Or convert from a link")).to_have_value("")
    finally:
        server.shutdown()
        server.server_close()


def test_a_job_is_followed_by_its_events_and_polled_when_they_are_refused(
    open_page, stack, account, clip
):
    email, _ = account
    page, _ = open_page(DESKTOP)
    streams = []
    page.on("request", lambda r: streams.append(r.url) if "/events" in r.url else None)
    sign_in(page, stack, email)
    token = page.evaluate("sessionStorage.getItem('vid2mp3.token')") or ""
    stack.stop("worker-convert")  # the job waits: its stream opens before anything happens
    try:
        page.get_by_label("Drop videos here").set_input_files(clip)
        row = job_row(page, "video_3s_160x120.mp4")
        expect(row).to_have_attribute("data-status", "queued")
        expect(row).to_have_attribute("data-live", "events")
        # From here the list is not polled: what the row shows comes through the stream.
        page.route("**/jobs?per_page=*", lambda route: route.abort())
    finally:
        stack.start("worker-convert")
    expect(row).to_have_attribute("data-status", "done", timeout=CONVERSION_TIMEOUT_MS)
    expect(row.get_by_role("button", name="Download")).to_be_visible()
    opened = [url for url in streams if "/events?ticket=" in url]
    assert opened and all(token not in url for url in opened if token), opened
    page.unroute("**/jobs?per_page=*")

    # Streams refused (a busy server): the page polls, and the bar still moves to the end.
    other, _ = open_page(DESKTOP)
    other.route(
        "**/events/ticket",
        lambda route: route.fulfill(
            status=503,
            headers={"Retry-After": "5", "Content-Type": "application/json"},
            body='{"status": 503, "code": "busy", "message": "too many event streams"}',
        ),
    )
    sign_in(other, stack, email)
    other.get_by_label("Drop videos here").set_input_files(clip)
    rows = other.locator("#jobs li", has=other.locator(".name", has_text="video_3s_160x120.mp4"))
    expect(rows.first).to_have_attribute("data-status", "done", timeout=CONVERSION_TIMEOUT_MS)
    expect(rows.first).not_to_have_attribute("data-live", "events")
