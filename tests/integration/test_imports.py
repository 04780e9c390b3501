"""Import by URL against web servers of the test's own on loopback: the SSRF guard (with
IMPORT_ALLOW_PRIVATE off), redirects, deadlines, size caps, sniffing, and the job a user sees
(POST /jobs, then the fetch run in this process as the fetch worker runs it)."""

from __future__ import annotations

import dataclasses
import io
import itertools

import pytest

from core.adapters.fetch import HttpFetcher
from core.bootstrap import Container
from core.domain.jobs import JobStatus
from core.ports.imports import FetchError
from tests.support import media
from tests.support.media_server import MediaServer

_names = itertools.count(1)


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return media.make_video(tmp_path_factory.mktemp("import-media"), seconds=3.0)


@pytest.fixture
def served(clip):
    with MediaServer(clip) as server:
        yield server


@pytest.fixture(scope="module")
def imports(container):
    """The service as the fetch worker builds it, allowed to reach loopback (imports and
    webhooks), with a 1 MiB upload cap and a 3 s deadline (the session's database, migrated
    by `container`)."""
    settings = dataclasses.replace(
        container.settings,
        import_allow_private=True,
        import_timeout=3.0,
        max_upload_mb=1,
        webhook_allow_private=True,
    )
    built = Container(settings, passwords=container.passwords)
    yield built
    built.close()


@pytest.fixture
def user(imports, container):
    from api import create_app

    app = create_app(container=imports)
    app.config["TESTING"] = True
    client = app.test_client()
    n = next(_names)
    email, password = f"importer{n}@example.com", "password-1"
    admin = client.post(
        "/login", auth=(container.settings.admin_email, container.settings.admin_password)
    ).get_json()["access_token"]
    made = client.post(
        "/users",
        json={"name": f"importer{n}", "email": email, "password": password},
        headers={"Authorization": f"Bearer {admin}"},
    )
    assert made.status_code == 201, made.get_json()
    token = client.post("/login", auth=(email, password)).get_json()["access_token"]
    return client, {"Authorization": f"Bearer {token}"}


def _import(user, url, **fields):
    client, headers = user
    return client.post("/jobs", json={"url": url, **fields}, headers=headers)


def _fetched(imports, user, url, **fields):
    """POST /jobs, run its fetch as the worker would, and the job as GET /jobs/<id> shows it."""
    response = _import(user, url, **fields)
    assert response.status_code == 202, response.get_json()
    job_id = response.get_json()["job_id"]
    imports.imports.fetch(job_id)
    client, headers = user
    return client.get(f"/jobs/{job_id}", headers=headers).get_json()


def test_a_video_at_a_url_becomes_a_queued_job_with_its_bytes(imports, user, served, clip):
    response = _import(user, served.url("/video.mp4"), bitrate="128k", tag="order-7")
    assert response.status_code == 202
    body = response.get_json()
    assert body["status"] == "fetching"
    client, headers = user
    seen = client.get(body["status_url"], headers=headers).get_json()
    assert seen["status"] == "fetching" and seen["tag"] == "order-7"
    imports.imports.fetch(body["job_id"])
    job = client.get(body["status_url"], headers=headers).get_json()
    size = len(open(clip, "rb").read())
    assert job["status"] == "queued", job
    assert job["video_size"] == job["fetched_bytes"] == job["fetch_total"] == size
    assert job["filename"] == "video.mp4" and job["options"]["bitrate"] == "128k"
    stored = imports.job_repo.get(body["job_id"])
    with imports.blob_store.open("videos", stored.video_fid) as fh:
        assert fh.read() == open(clip, "rb").read()


def test_a_chunked_body_without_a_length_is_fetched_whole(imports, user, served, clip):
    job = _fetched(imports, user, served.url("/chunked.mp4"))
    assert job["status"] == "queued", job
    assert job["video_size"] == len(open(clip, "rb").read()) and job["fetch_total"] is None


def test_redirects_are_followed_up_to_five(imports, user, served):
    assert _fetched(imports, user, served.url("/hops/5"))["status"] == "queued"
    job = _fetched(imports, user, served.url("/hops/6"))
    assert job["status"] == "failed"
    assert job["error"].startswith("url_unreachable:") and "redirects" in job["error"]


def test_a_404_fails_the_job_saying_the_status(imports, user, served):
    job = _fetched(imports, user, served.url("/missing"))
    assert job["status"] == "failed"
    assert job["error"] == "http_status: the server answered 404"


def test_an_html_page_is_not_media(imports, user, served):
    job = _fetched(imports, user, served.url("/page.html"))
    assert job["status"] == "failed" and job["error"].startswith("not_media:")
    assert job["video_size"] == 0


def test_an_endless_body_stops_at_the_upload_cap(imports, user, served):
    job = _fetched(imports, user, served.url("/endless"))
    assert job["status"] == "failed" and job["error"].startswith("too_large:"), job
    assert "1 MiB" in job["error"]


def test_a_content_length_that_lies_is_not_believed(imports, user, served):
    served.claim = 2048  # says 2 KiB, sends the whole clip: only what was announced is read
    job = _fetched(imports, user, served.url("/lying"))
    assert job["video_size"] == job["fetched_bytes"] == 2048, job
    short = _fetched(imports, user, served.url("/short"))  # says twice what it sends
    assert short["status"] == "failed" and short["error"].startswith("url_unreachable:"), short


def test_a_server_trickling_a_byte_a_second_times_out(imports, user, served):
    job = _fetched(imports, user, served.url("/trickle"))
    assert job["status"] == "failed" and job["error"].startswith("timeout:"), job


def test_a_url_of_10_kb_is_refused_at_once(imports, user, served):
    response = _import(user, served.url("/video.mp4?" + "a" * 10_000))
    assert response.status_code == 422
    assert "url" in response.get_json()["errors"]["json"] or "url" in str(response.get_json())
    assert served.requests == []


@pytest.mark.parametrize(
    "url, why",
    [
        ("ftp://example.com/video.mp4", "http"),
        ("http://user:secret@example.com/video.mp4", "credentials"),
        ("file:///etc/passwd", "http"),
    ],
)
def test_only_http_urls_without_credentials(imports, user, url, why):
    response = _import(user, url)
    assert response.status_code == 422 and why in str(response.get_json())


def test_the_same_idempotency_key_gives_the_same_job(imports, user, served):
    client, headers = user
    keyed = {**headers, "Idempotency-Key": "import-once"}
    url = served.url("/video.mp4")
    first = client.post("/jobs", json={"url": url}, headers=keyed)
    again = client.post("/jobs", json={"url": url}, headers=keyed)
    other = client.post("/jobs", json={"url": url + "?x"}, headers=keyed)
    assert first.status_code == again.status_code == 202
    assert first.get_json()["job_id"] == again.get_json()["job_id"]
    assert other.status_code == 422


# --- the guard, with IMPORT_ALLOW_PRIVATE off -------------------------------------------


@pytest.mark.parametrize(
    "host",
    [
        "127.0.0.1",
        "localhost",  # a DNS name resolving to loopback
        "2130706433",  # 127.0.0.1 in decimal
        "0177.0.0.1",  # in octal
        "0x7f.1",
        "[::1]",
        "[::ffff:127.0.0.1]",  # IPv4-mapped IPv6
        "10.0.0.1",
        "192.168.1.1",
        "169.254.169.254",  # cloud metadata
        "[fe80::1]",
        "100.64.0.1",  # shared (CGNAT)
        "0.0.0.0",
    ],
)
def test_forbidden_addresses_are_never_contacted(container, served, host):
    fetcher = HttpFetcher(allow_private=False, timeout=3, connect_timeout=1)
    with pytest.raises(FetchError) as caught:
        with fetcher.open(f"http://{host}:{served.port}/video.mp4"):
            pass
    assert caught.value.code == FetchError.FORBIDDEN_ADDRESS
    assert served.requests == []


def _as_public(address):
    return address == "127.0.0.2"  # the tests' stand-in for a public server


def test_a_redirect_from_a_public_server_to_loopback_is_refused(clip):
    with MediaServer(clip, host="127.0.0.1") as inside:
        with MediaServer(clip, host="127.0.0.2") as outside:
            fetcher = HttpFetcher(allow_private=False, timeout=3, address_allowed=_as_public)
            with fetcher.open(outside.url("/video.mp4")) as body:  # the stand-in is reachable
                assert b"".join(body.chunks) == open(clip, "rb").read()
            url = outside.url("/redirect?to=" + inside.url("/video.mp4"))
            with pytest.raises(FetchError) as caught:
                with fetcher.open(url):
                    pass
    assert caught.value.code == FetchError.FORBIDDEN_ADDRESS
    assert outside.requests[-1].startswith("/redirect") and inside.requests == []


def test_dns_rebinding_between_check_and_connect_reaches_only_the_checked_address(clip):
    answers = iter([["127.0.0.2"]])

    def rebinding(host, port):  # public when checked, loopback ever after
        return next(answers, ["127.0.0.1"])

    with MediaServer(clip, host="127.0.0.2") as checked:
        with MediaServer(clip, host="127.0.0.1", port=checked.port) as rebound:
            fetcher = HttpFetcher(
                allow_private=False, timeout=3, resolver=rebinding, address_allowed=_as_public
            )
            with fetcher.open(f"http://media.test:{checked.port}/video.mp4") as body:
                assert b"".join(body.chunks) == open(clip, "rb").read()
    assert checked.requests == ["/video.mp4"] and rebound.requests == []


def test_a_fetch_failing_the_guard_fails_the_job(container, user, served):
    """The service as deployed (IMPORT_ALLOW_PRIVATE off): the job says forbidden_address."""
    client, headers = user
    response = client.post("/jobs", json={"url": served.url("/video.mp4")}, headers=headers)
    job_id = response.get_json()["job_id"]
    container.imports.fetch(job_id)
    job = client.get(f"/jobs/{job_id}", headers=headers).get_json()
    assert job["status"] == "failed" and job["error"].startswith("forbidden_address:")
    assert served.requests == []


def test_tag_filters_the_job_list(imports, user, served):
    client, headers = user
    _import(user, served.url("/video.mp4"), tag="batch-a")
    _import(user, served.url("/video.mp4"), tag="batch-b")
    listed = client.get("/jobs?tag=batch-a", headers=headers).get_json()
    assert [job["tag"] for job in listed["items"]] == ["batch-a"]
    assert _import(user, served.url("/video.mp4"), tag="x" * 256).status_code == 422


def test_a_cancelled_fetch_keeps_nothing(imports, user, served):
    client, headers = user
    job_id = _import(user, served.url("/video.mp4")).get_json()["job_id"]
    assert client.post(f"/jobs/{job_id}/cancel", headers=headers).status_code == 200
    imports.imports.fetch(job_id)
    job = imports.job_repo.get(job_id)
    assert job.status is JobStatus.CANCELLED and job.video_fid is None
    assert served.requests == []


# --- a job's own tag and webhook_url -----------------------------------------------------


@pytest.fixture
def receiver():
    from tests.support.receiver import Receiver

    hook = Receiver(status=204)
    yield hook
    hook.close()


def _deliver_event(imports, job_id, event):
    """What the webhooks worker does for an event: make its deliveries, send each once."""
    sent = imports.webhooks.emit(job_id, event)
    for delivery_id in sent:
        assert imports.webhooks.deliver(delivery_id) == "delivered"
    return sent


def test_a_jobs_own_webhook_gets_its_events_signed_with_the_account_secret(
    imports, user, clip, receiver
):
    from standardwebhooks.webhooks import Webhook

    client, headers = user
    with open(clip, "rb") as fh:
        answer = client.post(
            "/upload?tag=order-1234",
            data={"webhook_url": receiver.url, "file": (fh, "clip.mp4")},
            headers=headers,
        )
    assert answer.status_code == 202, answer.get_json()
    job_id = answer.get_json()["job_id"]
    job = client.get(f"/jobs/{job_id}", headers=headers).get_json()
    assert job["tag"] == "order-1234" and job["webhook_url"] == receiver.url
    assert client.post(f"/jobs/{job_id}/cancel", headers=headers).status_code == 200
    _deliver_event(imports, job_id, "job.cancelled")
    secret = client.get("/webhooks/secret", headers=headers).get_json()["secret"]
    assert secret == client.get("/webhooks/secret", headers=headers).get_json()["secret"]
    (received_headers, body) = receiver.received[-1]
    message = Webhook(secret).verify(body, received_headers)  # raises unless signed with it
    assert message["type"] == "job.cancelled" and message["data"]["tag"] == "order-1234"
    log = client.get(f"/jobs/{job_id}/deliveries", headers=headers).get_json()
    assert [(d["event"], d["last_status"]) for d in log] == [("job.cancelled", 204)]
    assert _deliver_event(imports, job_id, "job.cancelled") == []  # once per outcome
    assert len(receiver.received) == 1
    assert client.get("/webhooks", headers=headers).get_json() == []  # not a registered one


def test_a_rotated_secret_signs_what_is_sent_afterwards(imports, user, served, receiver):
    from standardwebhooks.webhooks import Webhook, WebhookVerificationError

    client, headers = user
    old = client.get("/webhooks/secret", headers=headers).get_json()["secret"]
    new = client.post("/webhooks/secret/rotate", headers=headers).get_json()["secret"]
    assert new != old and new.startswith("whsec_")
    job_id = _import(user, served.url("/missing"), webhook_url=receiver.url).get_json()["job_id"]
    imports.imports.fetch(job_id)  # a 404: the job fails
    _deliver_event(imports, job_id, "job.failed")
    received_headers, body = receiver.received[-1]
    assert Webhook(new).verify(body, received_headers)["data"]["error"].startswith("http_status")
    with pytest.raises(WebhookVerificationError):
        Webhook(old).verify(body, received_headers)


def test_a_webhook_url_the_guard_refuses_is_422(client, user, served):
    """The session's API (WEBHOOK_ALLOW_PRIVATE off): a job's webhook_url on loopback is
    refused when the job is made, on POST /upload and POST /jobs alike."""
    _, headers = user
    refused = client.post(
        "/jobs",
        json={"url": "https://example.com/v.mp4", "webhook_url": "http://127.0.0.1:9/hook"},
        headers=headers,
    )
    assert refused.status_code == 422
    assert "webhook_url" in refused.get_json()["errors"]["json"]
    upload = client.post(
        "/upload?webhook_url=http://169.254.169.254/latest",
        data={"file": (io.BytesIO(b"x" * 64), "x.mp4")},
        headers=headers,
    )
    assert upload.status_code == 422 and "webhook_url" in str(upload.get_json())


# --- what POST /jobs answers besides 202 ---------------------------------------------------


def test_the_request_itself_is_checked(imports, user):
    client, headers = user
    url = "https://example.com/video.mp4"
    assert client.post("/jobs", data=url, headers=headers).status_code == 415
    big = client.post("/jobs", json={"url": url, "tag": "x" * 70_000}, headers=headers)
    assert big.status_code == 413
    for body in ([url], {"url": url, "speed": 2}, {"url": url, "bitrate": "7k"}, {}):
        assert client.post("/jobs", json=body, headers=headers).status_code == 422, body
    bad_key = {**headers, "Idempotency-Key": "é" * 3}
    assert client.post("/jobs", json={"url": url}, headers=bad_key).status_code == 400
    unknown = client.get(f"/jobs/{'0' * 32}/deliveries", headers=headers)
    assert unknown.status_code == 404


def test_a_key_whose_job_was_deleted_or_still_pending(imports, user, served):
    client, headers = user
    keyed = {**headers, "Idempotency-Key": "deleted-job"}
    url = served.url("/video.mp4")
    job_id = client.post("/jobs", json={"url": url}, headers=keyed).get_json()["job_id"]
    assert client.delete(f"/jobs/{job_id}", headers=headers).status_code == 204
    assert client.post("/jobs", json={"url": url}, headers=keyed).status_code == 404
    user_id = int(client.post("/validate", headers=headers).get_json()["sub"])
    imports.idempotency.reserve(user_id, "in-flight", 60)  # another request still at it
    busy = client.post(
        "/jobs", json={"url": url}, headers={**headers, "Idempotency-Key": "in-flight"}
    )
    assert busy.status_code == 409


def test_an_import_counts_against_the_active_jobs_quota(imports, user, served):
    from api import create_app

    strict = Container(
        dataclasses.replace(imports.settings, quota_active_jobs=1), passwords=imports.passwords
    )
    client = create_app(container=strict).test_client()
    _, headers = user
    url = served.url("/video.mp4")
    assert client.post("/jobs", json={"url": url}, headers=headers).status_code == 202
    over = client.post("/jobs", json={"url": url}, headers=headers)
    assert over.status_code == 429 and over.headers.get("Retry-After")
    assert "QUOTA_ACTIVE_JOBS" in str(over.get_json())
    strict.close()


def test_a_tus_upload_carries_its_tag_and_webhook_url_in_its_metadata(user, clip, receiver):
    import base64

    client, headers = user
    video = open(clip, "rb").read()
    tus = {**headers, "Tus-Resumable": "1.0.0"}
    meta = ",".join(
        f"{key} {base64.b64encode(value.encode()).decode()}"
        for key, value in {
            "filename": "clip.mp4",
            "tag": "tus-7",
            "webhook_url": receiver.url,
        }.items()
    )
    created = client.post(
        "/uploads/", headers={**tus, "Upload-Length": str(len(video)), "Upload-Metadata": meta}
    )
    assert created.status_code == 201, created.get_json()
    location = "/" + created.headers["Location"].split("/", 3)[3]
    done = client.patch(
        location,
        data=video,
        headers={**tus, "Upload-Offset": "0", "Content-Type": "application/offset+octet-stream"},
    )
    job = client.get(f"/jobs/{done.headers['Vid2mp3-Job-Id']}", headers=headers).get_json()
    assert job["tag"] == "tus-7" and job["webhook_url"] == receiver.url
    too_long = "tag " + base64.b64encode(b"x" * 256).decode()
    refused = client.post(
        "/uploads/", headers={**tus, "Upload-Length": "10", "Upload-Metadata": too_long}
    )
    assert refused.status_code == 422


def test_the_sweeper_finds_a_jobs_own_webhook_event_that_was_never_emitted(
    imports, user, served, receiver
):
    """A worker that died between ending the job and queueing its event: the sweeper's query
    finds the job by its webhook_url, until the event is delivered."""
    from datetime import timedelta

    from core.domain.values import utcnow

    job_id = _import(user, served.url("/missing"), webhook_url=receiver.url).get_json()["job_id"]
    imports.imports.fetch(job_id)  # fails: http_status 404 (its event is left unqueued here)
    later = utcnow() + timedelta(seconds=5)
    window = (utcnow() - timedelta(hours=1), later)
    assert (job_id, "job.failed") in imports.webhook_repo.unannounced(*window)
    _deliver_event(imports, job_id, "job.failed")
    assert (job_id, "job.failed") not in imports.webhook_repo.unannounced(*window)
    assert len(receiver.received) == 1
