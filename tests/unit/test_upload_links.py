"""The upload link service on in-memory fakes: one file per link, as its creator, within its
cap; the claim given back when an upload fails."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from core.domain.accounts import Principal, Role
from core.domain.errors import Conflict, Forbidden, Gone, InvalidInput, NotFound, TooLarge
from core.services.upload_links import UploadLinks, token_hash
from tests.support.fakes import FakeUploadLinks

START = datetime(2026, 12, 5, 6, 0, tzinfo=timezone.utc)
MP4 = b"\x00\x00\x00\x18ftyp" + b"v" * 200


class Body:
    """A multipart body as the intake reads it: the file part's bytes."""

    def __init__(self, data: bytes, filename: str = "clip.mp4"):
        self.data, self.filename, self._name = data, None, filename

    def find_file(self) -> None:
        self.filename = self._name

    def __iter__(self):
        yield from (self.data[i : i + 50] for i in range(0, len(self.data), 50))


@pytest.fixture
def world(pipeline, users, user_repo):
    owner = users.ensure_admin("owner@example.com", "owner-password")
    user_repo.update(owner.id, {"role": Role.USER})
    clock = [START]
    links = UploadLinks(
        FakeUploadLinks(),
        user_repo,
        pipeline.intake,
        pipeline.service,
        "http://api.test/",
        max_upload_bytes=1000 * 2**20,
        claim_seconds=60,
        clock=lambda: clock[0],
    )
    return links, Principal(owner.id, Role.USER), clock, pipeline


def token_of(url: str) -> str:
    assert url.startswith("http://api.test/guest/")
    return url.rsplit("/", 1)[1]


def test_one_file_becomes_the_creators_job_with_the_links_options(world):
    links, owner, _, pipeline = world
    link, url = links.create(owner, {"bitrate": "192k"}, max_mb=1)
    token = token_of(url)
    assert link.token_hash == token_hash(token) and token not in repr(link)
    claimed, acting = links.claim(token)
    assert acting.user_id == owner.user_id and acting.scopes == {"jobs:write"}
    job = links.receive(claimed, acting, Body(MP4), len(MP4))
    assert job.owner_id == owner.user_id and job.options["bitrate"] == "192k"
    assert links.job(token).id == job.id
    with pytest.raises(Gone, match="used already"):
        links.claim(token)
    assert [j.id for j in pipeline.jobs.rows.values()] == [job.id]


def test_a_second_claim_waits_and_a_stale_one_lapses(world):
    links, owner, clock, _ = world
    _, url = links.create(owner)
    links.claim(token_of(url))
    with pytest.raises(Conflict, match="being uploaded"):
        links.claim(token_of(url))
    clock[0] += timedelta(seconds=61)  # the first upload's process died: its claim lapses
    links.claim(token_of(url))


def test_a_refused_file_gives_the_link_back(world):
    links, owner, _, _ = world
    link, url = links.create(owner, max_mb=1)
    claimed, acting = links.claim(token_of(url))
    with pytest.raises(TooLarge):  # over the intake's own limit (MAX_UPLOAD_MB=1 in the unit tier)
        links.receive(claimed, acting, Body(MP4 + b"x" * 2**20), None)
    claimed, acting = links.claim(token_of(url))  # open again at once
    with pytest.raises(TooLarge, match="up to 1 MiB"):
        links.receive(claimed, acting, Body(MP4), 3 * 2**20)  # declared too large: not read
    links.claim(token_of(url))


def test_expired_deleted_and_unknown_links(world):
    links, owner, clock, _ = world
    _, url = links.create(owner, expires_in=60)
    with pytest.raises(NotFound):
        links.claim("A" * 43)
    with pytest.raises(NotFound):
        links.claim("x" * 201)
    clock[0] += timedelta(seconds=60)
    with pytest.raises(Gone, match="expired"):
        links.claim(token_of(url))
    other, other_url = links.create(owner)
    links.delete(owner, other.id)
    for call in (links.claim, links.job, links.download, links.find):
        with pytest.raises(Gone, match="deleted"):
            call(token_of(other_url))
    with pytest.raises(NotFound):
        links.delete(owner, other.id)


def test_only_the_creator_or_an_admin_deletes_and_downloads_need_consent(world):
    links, owner, _, _ = world
    link, url = links.create(owner)
    with pytest.raises(NotFound):
        links.delete(Principal(owner.user_id + 1, Role.USER), link.id)
    with pytest.raises(Forbidden, match="did not allow"):
        links.download(token_of(url))
    links.delete(Principal(owner.user_id + 1, Role.ADMIN), link.id)


@pytest.mark.parametrize(
    "fields",
    [
        {"options": {"bitrate": "7k"}},
        {"options": {"volume": "11"}},
        {"max_mb": 0},
        {"max_mb": 1001},
        {"expires_in": 59},
        {"expires_in": 30 * 86400 + 1},
    ],
)
def test_a_bad_link_is_refused(world, fields):
    links, owner, _, _ = world
    with pytest.raises(InvalidInput):
        links.create(owner, **fields)


def test_the_links_tag_and_webhook_url_reach_the_job(world):
    links, owner, _, pipeline = world
    labels = {"tag": "order-42", "webhook_url": "https://hooks.example.com/v2m"}
    link, url = links.create(owner, labels=labels)
    assert (link.tag, link.webhook_url) == ("order-42", "https://hooks.example.com/v2m")
    claimed, acting = links.claim(token_of(url))
    job = links.receive(claimed, acting, Body(MP4), len(MP4))
    stored = pipeline.jobs.rows[job.id]
    assert (stored.tag, stored.webhook_url) == ("order-42", "https://hooks.example.com/v2m")


def test_a_guests_resumable_upload_carries_the_links_labels(pipeline, users, user_repo):
    owner = users.ensure_admin("owner@example.com", "owner-password")
    user_repo.update(owner.id, {"role": Role.USER})
    links = pipeline.upload_links  # the container's, with its resumable uploads
    _, url = links.create(Principal(owner.id, Role.USER), labels={"tag": "by-tus"})
    token = url.rsplit("/", 1)[1]
    upload = links.start_resumable(token, len(MP4), "long.mp4")
    _, acting = links.resumable_of(token, upload.id)
    done = pipeline.uploads.append(acting, upload.id, 0, [MP4]).upload
    assert done.job_id is not None
    stored = pipeline.jobs.rows[done.job_id]
    assert (stored.tag, stored.webhook_url) == ("by-tus", None)


@pytest.mark.parametrize(
    "labels, field",
    [({"tag": "t" * 256}, "tag"), ({"tag": "a\nb"}, "tag"), ({"webhook_url": 7}, "webhook_url")],
)
def test_a_bad_tag_or_webhook_url_is_refused_before_a_link_exists(world, labels, field):
    links, owner, _, _ = world
    with pytest.raises(InvalidInput) as refused:
        links.create(owner, labels=labels)
    assert refused.value.status == 422 and field in refused.value.details["fields"]
    assert links.list(owner) == []
    links.create(owner, labels={"tag": "t" * 255})  # 255 characters is the limit, not over it
