"""One-time upload links: a user makes a URL that takes one file from anyone holding it.

The job belongs to the link's creator, counts against their quotas and carries the link's
options. The token is 32 random bytes; only its SHA-256 is stored (as for API keys, a fast hash
of a secret nobody can guess loses nothing), found by a unique index.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any, Callable, Iterator, Mapping

from core.domain.accounts import Principal, Role
from core.domain.api_keys import Scope
from core.domain.errors import Conflict, Forbidden, Gone, InvalidInput, NotFound, TooLarge
from core.domain.jobs import Job, JobLabels, Upload
from core.domain.options import AudioOptions
from core.domain.upload_links import UploadLink
from core.ports.accounts import UserRepository
from core.ports.upload_links import UploadLinkRepository
from core.services.intake import Intake, UploadBody
from core.services.jobs import Download, JobService
from core.services.uploads import ResumableUploads

log = logging.getLogger(__name__)

DEFAULT_EXPIRES_IN = 86400
MAX_EXPIRES_IN = 30 * 86400
MAX_OPEN_LINKS = 100
TOKEN_BYTES = 32
GONE = {
    "deleted": "this upload link was deleted by its owner",
    "used": "this upload link was used already: it takes one file",
    "expired": "this upload link has expired",
}


def token_hash(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()


def _now() -> datetime:
    return datetime.now(UTC)


class UploadLinks:
    def __init__(
        self,
        repo: UploadLinkRepository,
        users: UserRepository,
        intake: Intake,
        jobs: JobService,
        base_url: str,
        max_upload_bytes: int,
        claim_seconds: int,
        resumable: ResumableUploads | None = None,
        resumable_seconds: int = 86400,
        clock: Callable[[], datetime] = _now,
    ):
        self.repo = repo
        self.users = users
        self.intake = intake
        self.jobs = jobs
        self.base_url = base_url.rstrip("/")
        self.max_upload_bytes = max_upload_bytes
        self.claim_seconds = claim_seconds  # an upload claiming a link for longer has died
        self.resumable = resumable
        self.resumable_seconds = resumable_seconds  # ... a resumable one: untouched this long
        self.clock = clock

    # --- for their creator -----------------------------------------------------------------

    def create(
        self,
        actor: Principal,
        options: Mapping[str, Any] | None = None,
        max_mb: int | None = None,
        expires_in: int | None = None,
        allow_download: bool = False,
        labels: Mapping[str, Any] | None = None,
    ) -> tuple[UploadLink, str]:
        """A new link and its URL, which is shown only now. `labels` (`tag`, `webhook_url`)
        go to the job its file makes; the entrypoint checks the webhook URL's addresses."""
        given = {
            name: str(value).lower() if isinstance(value, bool) else str(value)
            for name, value in (options or {}).items()
            if value is not None
        }
        AudioOptions.parse(given)
        unknown = sorted(set(options or {}) - set(AudioOptions.NAMES))
        if unknown:
            raise InvalidInput(
                "unknown options: " + ", ".join(unknown),
                {"fields": {"options": [f"unknown: {', '.join(unknown)}"]}},
            )
        checked = JobLabels.parse(labels or {})
        limit_mb = self.max_upload_bytes // 2**20
        if max_mb is not None and not 1 <= max_mb <= limit_mb:
            raise InvalidInput(
                f"max_mb: 1 to {limit_mb}", {"fields": {"max_mb": [f"1 to {limit_mb}"]}}
            )
        lifetime = DEFAULT_EXPIRES_IN if expires_in is None else expires_in
        if not 60 <= lifetime <= MAX_EXPIRES_IN:
            raise InvalidInput(
                f"expires_in: 60 to {MAX_EXPIRES_IN} seconds",
                {"fields": {"expires_in": [f"60 to {MAX_EXPIRES_IN}"]}},
            )
        now = self.clock()
        if self.repo.count_open(actor.user_id, now) >= MAX_OPEN_LINKS:
            raise InvalidInput(f"at most {MAX_OPEN_LINKS} open upload links per user")
        token = secrets.token_urlsafe(TOKEN_BYTES)
        link = self.repo.add(
            UploadLink(
                id=uuid.uuid4().hex,
                owner_id=actor.user_id,
                token_hash=token_hash(token),
                max_bytes=(max_mb or limit_mb) * 2**20,
                expires_at=now + timedelta(seconds=lifetime),
                options=given,
                allow_download=allow_download,
                tag=checked.tag,
                webhook_url=checked.webhook_url,
            )
        )
        return link, self.url(token)

    def url(self, token: str) -> str:
        return f"{self.base_url}/guest/{token}"

    def list(self, actor: Principal) -> list[UploadLink]:
        return self.repo.list(actor.user_id)

    def delete(self, actor: Principal, link_id: str) -> None:
        link = self.repo.get(link_id)
        if link is None or link.deleted_at is not None or not actor.can_access(link.owner_id):
            raise NotFound("no such upload link")
        self.repo.delete(link_id, self.clock())

    # --- for whoever holds the URL ---------------------------------------------------------

    def find(self, token: str) -> UploadLink:
        """The link of a token; NotFound for a token no link has, Gone once deleted."""
        link = self.repo.find(token_hash(token)) if len(token) <= 200 else None
        if link is None:
            raise NotFound("no such upload link")
        if link.deleted_at is not None:
            raise Gone(GONE["deleted"])
        return link

    def claim(self, token: str) -> tuple[UploadLink, Principal]:
        """Take the link for one upload, as its creator (whose quotas it counts against):
        Gone once used, expired or deleted; Conflict while another upload holds it."""
        link = self.find(token)
        now = self.clock()
        state = link.state(now)
        if state != "open":
            raise Gone(GONE[state])
        owner = self.users.get(link.owner_id)
        if owner is None:
            raise NotFound("no such upload link")
        stale = now - timedelta(seconds=self.claim_seconds)
        resumable_stale = now - timedelta(seconds=self.resumable_seconds)
        if not self.repo.claim(link.id, now, stale, resumable_stale):
            again = self.repo.get(link.id)
            if again is not None and again.state(now) != "open":
                raise Gone(GONE[again.state(now)])
            raise Conflict("a file is being uploaded through this link; wait for it to end")
        scopes = frozenset({Scope.JOBS_WRITE.value})  # the guest acts for the creator, no more
        return link, Principal(owner.id, owner.role, scopes=scopes)

    def receive(
        self, link: UploadLink, owner: Principal, body: UploadBody, declared_bytes: int | None
    ) -> Job:
        """The one file of a claimed link, within its cap: a job of the creator's with the
        link's options; the claim is released when it fails, so the guest may try again."""
        try:
            if declared_bytes is not None and declared_bytes > link.max_bytes + 2**20:
                raise self._too_large(link)
            received = self.intake.receive(
                owner,
                _Capped(body, link.max_bytes, self._too_large(link)),
                lambda: AudioOptions.parse(link.options),
                declared_bytes=declared_bytes,
                labels=lambda: link.labels,
            )
        except BaseException:
            self.release(link)
            raise
        self.repo.complete(link.id, received.job.id)
        log.info("upload link %s made job %s", link.id, received.job.id)
        return received.job

    def release(self, link: UploadLink) -> None:
        """A claimed upload that made no job: the link takes a file again."""
        self.repo.release(link.id)

    # --- over tus: one resumable upload per link --------------------------------------------

    def start_resumable(self, token: str, length: int, filename: str | None) -> Upload:
        """Claim the link and create its one resumable upload, of the creator's, with the link's
        options and labels (the guest's metadata gives only the file name)."""
        assert self.resumable is not None, "UploadLinks built without ResumableUploads"
        link, owner = self.claim(token)
        try:
            if length > link.max_bytes:
                raise self._too_large(link)
            metadata = {**link.options, **link.labels.to_dict(), "filename": filename or "upload"}
            upload = self.resumable.create(owner, length, metadata).upload
            self.repo.attach(link.id, upload.id, self.clock())
        except BaseException:
            self.release(link)
            raise
        return upload

    def resumable_of(self, token: str, upload_id: str) -> tuple[UploadLink, Principal]:
        """The link's resumable upload and the creator to act as; NotFound for another id."""
        link = self.find(token)
        if link.upload_id is None or link.upload_id != upload_id:
            raise NotFound("upload not found")
        return link, Principal(link.owner_id, Role.USER, scopes=frozenset({"jobs:write"}))

    def appended(self, link: UploadLink, upload: Upload) -> None:
        """After a PATCH: the link is used once the upload made its job; else the claim is
        renewed (a guest resuming keeps the link)."""
        if upload.job_id is not None:
            self.repo.complete(link.id, upload.job_id)
        else:
            self.repo.attach(link.id, upload.id, self.clock())

    def resumable_failed(self, link: UploadLink, upload_id: str) -> None:
        """After a failed PATCH: when the upload is gone with it (not a video at the end, over a
        quota), the link takes a file again."""
        assert self.resumable is not None
        if self.resumable.repo.get(upload_id) is None:
            self.release(link)

    @staticmethod
    def _too_large(link: UploadLink) -> TooLarge:
        return TooLarge(f"this link takes files up to {link.max_bytes // 2**20} MiB")

    def job(self, token: str) -> Job:
        """The job the link's file made: its progress, for the uploader."""
        link = self.find(token)
        if link.job_id is None:
            raise NotFound("no file was uploaded through this link yet")
        return self.jobs.get(Principal(link.owner_id, Role.USER), link.job_id)

    def download(self, token: str) -> Download:
        """The MP3, when the creator allowed the uploader to download it."""
        link = self.find(token)
        if not link.allow_download:
            raise Forbidden("the owner of this link did not allow downloads")
        if link.job_id is None:
            raise NotFound("no file was uploaded through this link yet")
        return self.jobs.download(Principal(link.owner_id, Role.USER), link.job_id)


class _Capped:
    """The upload's body, refused once its file passes the link's cap."""

    def __init__(self, body: UploadBody, max_bytes: int, error: Exception):
        self._body = body
        self._max_bytes = max_bytes
        self._error = error
        self.filename: str | None = None

    def find_file(self) -> None:
        self._body.find_file()
        self.filename = self._body.filename

    def __iter__(self) -> Iterator[bytes]:
        seen = 0
        for chunk in self._body:
            seen += len(chunk)
            if seen > self._max_bytes:
                raise self._error
            yield chunk
