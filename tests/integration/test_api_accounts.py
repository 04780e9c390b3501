"""Taking over accounts with a token alone, and using the service's mailer to write to others,
tried over the API on real MariaDB, Redis and an SMTP server (aiosmtpd). The notify worker's
part, sending the account emails, runs in the request here; tests/e2e/test_accounts.py runs it
in the real worker."""

from __future__ import annotations

import email
import email.policy
import itertools
import re
import uuid
from datetime import datetime, timezone
from email.message import Message

import pytest

from api import create_app
from core.adapters.celery import CeleryTaskQueue
from core.bootstrap import Container
from core.domain.jobs import Job, JobStatus
from core.services.confirmations import EmailConfirmations
from core.services.notification import UNCONFIRMED
from tests.support.auth import Auth, basic
from tests.support.smtp import smtp_server

_apps = itertools.count(1)
PASSWORD = "password-1"


class AccountMailNow(CeleryTaskQueue):
    """The real queue, but account emails are sent at once, as the notify worker would."""

    def __init__(self, container: Container):
        super().__init__(container.celery, container.settings)
        self.container = container

    def enqueue_account_email(self, user_id, kind, address=None):
        self.container.account_mail.send(user_id, kind, address)


@pytest.fixture(scope="module")
def smtp():
    with smtp_server() as (inbox, port):
        yield inbox, port


@pytest.fixture
def service(settings, container, smtp):
    """(test client, container) of an app mailing a real SMTP server, with its own budgets."""
    _, port = smtp
    own = settings.with_overrides(
        smtp_url=f"smtp://127.0.0.1:{port}",
        redis_prefix=f"{settings.redis_prefix}accounts{next(_apps)}:",
        login_max_failures=3,
    )
    built = Container(own, passwords=container.passwords)
    built.__dict__["queue"] = AccountMailNow(built)
    app = create_app(container=built)
    app.config["TESTING"] = True
    return app.test_client(), built


@pytest.fixture
def api(service, settings):
    client, _ = service
    return client, Auth(client, settings)


def mails_to(smtp, address: str) -> list[Message]:
    inbox, _ = smtp
    return [m for m in inbox.received() if m["To"] == address]


def text(mail: Message) -> str:
    return mail.get_payload(decode=True).decode()


def subject(mail: Message) -> str:
    """The Subject as a mail client shows it (decoded and unfolded)."""
    return str(email.message_from_bytes(mail.as_bytes(), policy=email.policy.default)["Subject"])


def confirmation_token(mail: Message) -> str:
    return re.search(r"#confirm-email=([\w.-]+)", text(mail)).group(1)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def fresh_address() -> str:
    return f"new-{uuid.uuid4().hex[:10]}@example.org"


# --- finding 1: a token alone changes no credential ---------------------------------------


@pytest.mark.parametrize(
    "change",
    [{"password": "attacker-pass-1"}, {"email": "attacker@evil-login.example"}],
    ids=["password", "email"],
)
def test_a_stolen_token_alone_changes_no_credential(api, smtp, change):
    client, auth = api
    user, stolen = auth.new_user(password=PASSWORD)
    url = f"/users/{user['id']}"
    missing = client.patch(url, headers=stolen, json=change)
    assert missing.status_code == 422, missing.get_json()
    assert "current_password" in missing.get_json()["errors"]["json"]
    wrong = client.patch(url, headers=stolen, json={**change, "current_password": "a-guess-1"})
    assert wrong.status_code == 403 and wrong.get_json()["code"] == "forbidden"
    # the owner signs in as before; the attacker's password and address got nothing
    assert client.post("/login", headers=basic(user["email"], PASSWORD)).status_code == 200
    assert client.post("/login", headers=basic(user["email"], "attacker-pass-1")).status_code == 401
    assert client.get(url, headers=stolen).get_json()["pending_email"] is None
    assert not mails_to(smtp, "attacker@evil-login.example")


def test_a_stolen_token_is_no_password_oracle(api):
    """Guesses at current_password count like login guesses: 3 wrong, then 429 even for the
    right one, from that address."""
    client, auth = api
    user, stolen = auth.new_user(password=PASSWORD)
    url = f"/users/{user['id']}"
    for n in range(3):
        guess = {"phone": "+1 555 0100", "password": "x-password-1", "current_password": f"g{n}"}
        assert client.patch(url, headers=stolen, json=guess).status_code == 403
    right = {"password": "x-password-1", "current_password": PASSWORD}
    refused = client.patch(url, headers=stolen, json=right)
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) > 0
    assert client.get(url, headers=stolen).get_json()["phone"] is None  # nothing changed


def test_a_new_password_ends_every_other_session(api, smtp):
    client, auth = api
    user, first = auth.new_user(password=PASSWORD)
    second = auth.headers(user["email"], PASSWORD)  # another device
    changed = client.patch(
        f"/users/{user['id']}",
        headers=first,
        json={"password": "password-2", "current_password": PASSWORD},
    )
    assert changed.status_code == 200, changed.get_json()
    token = changed.get_json()["token"]
    assert token["token_type"] == "Bearer" and token["expires_in"] > 0
    for old in (first, second):
        assert client.post("/validate", headers=old).status_code == 401
    assert client.post("/validate", headers=bearer(token["access_token"])).status_code == 200
    assert client.post("/login", headers=basic(user["email"], PASSWORD)).status_code == 401
    [notice] = mails_to(smtp, user["email"])
    assert notice["Subject"] == "Your vid2mp3 password was changed"


def test_an_admin_proves_their_own_password_to_change_others(api, settings):
    client, auth = api
    admin = auth.admin()
    user, user_headers = auth.new_user(password=PASSWORD)
    url = f"/users/{user['id']}"
    reset = {"password": "reset-password-1"}
    assert client.patch(url, headers=admin, json=reset).status_code == 422
    # the target's password is not the admin's
    assert (
        client.patch(url, headers=admin, json={**reset, "current_password": PASSWORD}).status_code
        == 403
    )
    done = client.patch(
        url, headers=admin, json={**reset, "current_password": settings.admin_password}
    )
    assert done.status_code == 200 and "token" not in done.get_json()
    assert client.post("/validate", headers=user_headers).status_code == 401  # signed out
    assert client.post("/validate", headers=admin).status_code == 200  # the admin is not
    assert auth.token(user["email"], "reset-password-1")


def test_a_stolen_admin_token_makes_no_lasting_admin(api, settings):
    """Promoting an account, or creating an admin, would outlive the token: both need the
    admin's password."""
    client, auth = api
    admin = auth.admin()
    accomplice, _ = auth.new_user(password=PASSWORD)
    promote = {"role": "admin"}
    url = f"/users/{accomplice['id']}"
    assert client.patch(url, headers=admin, json=promote).status_code == 422
    assert client.get(url, headers=admin).get_json()["role"] == "user"
    new_admin = {"name": "backdoor", "email": "backdoor@example.com", "password": PASSWORD}
    created = client.post("/users", headers=admin, json={**new_admin, "role": "admin"})
    assert created.status_code == 422
    assert client.post("/login", headers=basic("backdoor@example.com", PASSWORD)).status_code == 401
    ok = client.patch(
        url, headers=admin, json={**promote, "current_password": settings.admin_password}
    )
    assert ok.status_code == 200 and ok.get_json()["role"] == "admin"
    # and the admin's password cannot be guessed with the token either
    guesses = [
        client.post(
            "/users",
            headers=admin,
            json={**new_admin, "role": "admin", "current_password": f"guess-{n}"},
            environ_base={"REMOTE_ADDR": "10.50.0.1"},
        ).status_code
        for n in range(4)
    ]
    assert guesses == [403, 403, 403, 429]  # LOGIN_MAX_FAILURES is 3 here


# --- finding 2: the mailer writes only to confirmed addresses, in its own words -----------


def test_a_new_address_gets_nothing_but_its_confirmation(api, service, smtp):
    client, auth = api
    _, built = service
    user, headers = auth.new_user(password=PASSWORD)
    old, new = user["email"], fresh_address()
    asked = client.patch(
        f"/users/{user['id']}",
        headers=headers,
        json={"email": new, "current_password": PASSWORD},
    )
    assert asked.status_code == 200, asked.get_json()
    assert asked.get_json()["email"] == old and asked.get_json()["pending_email"] == new
    [confirm] = mails_to(smtp, new)
    assert confirm["Subject"] == "Confirm your email address for vid2mp3"
    assert user["name"] not in text(confirm)  # no text the user chose
    # a finished job is still announced to the old, confirmed address only
    job = done_job(built, user["id"], "holiday.mp4")
    assert built.notifications.notify(job.id)
    assert [m["Subject"] for m in mails_to(smtp, new)] == [confirm["Subject"]]
    assert len(mails_to(smtp, old)) == 1
    # sign-in is still with the old address
    assert client.post("/login", headers=basic(new, PASSWORD)).status_code == 401


def test_only_the_accounts_session_confirms_and_the_old_address_is_told(api, smtp):
    client, auth = api
    user, headers = auth.new_user(password=PASSWORD)
    _, stranger = auth.new_user()
    old, new = user["email"], fresh_address()
    client.patch(
        f"/users/{user['id']}",
        headers=headers,
        json={"email": new, "current_password": PASSWORD},
    )
    token = confirmation_token(mails_to(smtp, new)[0])
    url = "/users/confirm-email"
    # the mailbox alone (a scanner following links, or its owner) confirms nothing
    assert client.post(url, json={"token": token}).status_code == 401
    assert client.post(url, json={"token": token}, headers=stranger).status_code == 404
    assert client.post(url, json={"token": token[:-2] + "xx"}, headers=headers).status_code == 404
    confirmed = client.post(url, json={"token": token}, headers=headers)
    assert confirmed.status_code == 200, confirmed.get_json()
    assert confirmed.get_json()["email"] == new and confirmed.get_json()["pending_email"] is None
    assert client.post(url, json={"token": token}, headers=headers).status_code == 200  # again
    [told] = mails_to(smtp, old)
    assert told["Subject"] == "The email address of your vid2mp3 account was changed"
    assert new not in text(told) and new[:1] + "***@example.org" in text(told)
    assert client.post("/login", headers=basic(new, PASSWORD)).status_code == 200


def test_a_confirmation_without_a_proper_token_is_422_naming_it(api):
    client, auth = api
    user, headers = auth.new_user(password=PASSWORD)
    url = "/users/confirm-email"
    cases = [({}, "token"), ({"token": ""}, "token"), ({"token": "x" * 1001}, "token")]
    for body, field in cases + [({"token": "t", "email": "a@b.c"}, "email")]:
        refused = client.post(url, json=body, headers=headers)
        assert refused.status_code == 422, body
        assert list(refused.get_json()["errors"]["json"]) == [field], refused.get_json()
    assert client.get(f"/users/{user['id']}", headers=headers).get_json()["email"] == user["email"]


def test_a_replaced_or_expired_link_confirms_nothing(api, service, smtp, settings):
    client, auth = api
    _, built = service
    user, headers = auth.new_user(password=PASSWORD)
    url = f"/users/{user['id']}"
    first, second = fresh_address(), fresh_address()
    for address in (first, second):
        change = {"email": address, "current_password": PASSWORD}
        assert client.patch(url, headers=headers, json=change).status_code == 200
    older = confirmation_token(mails_to(smtp, first)[0])
    confirm = "/users/confirm-email"
    assert client.post(confirm, json={"token": older}, headers=headers).status_code == 404
    expired = EmailConfirmations(settings.jwt_secret, settings.base_url, clock=lambda: 0.0).sign(
        user["id"], second
    )
    gone = client.post(confirm, json={"token": expired}, headers=headers)
    assert gone.status_code == 410 and gone.get_json()["code"] == "gone"
    # a download link's token, signed with the same secret, is no confirmation
    link, _ = built.links.sign("a" * 32, "fid", 3600)
    download = link.rsplit("/", 1)[1]
    assert client.post(confirm, json={"token": download}, headers=headers).status_code == 404
    for malformed in ({}, {"token": 5}, {"token": "x" * 5000}):  # no token to check at all
        refused = client.post(confirm, json=malformed, headers=headers)
        assert refused.status_code == 422, (malformed, refused.get_json())
    assert client.get(url, headers=headers).get_json()["email"] == user["email"]


def test_an_address_already_taken_is_refused_at_confirmation(api, smtp):
    client, auth = api
    user, headers = auth.new_user(password=PASSWORD)
    wanted = fresh_address()
    change = {"email": wanted, "current_password": PASSWORD}
    assert client.patch(f"/users/{user['id']}", headers=headers, json=change).status_code == 200
    auth.new_user(email=wanted)  # an admin gives the address to someone else meanwhile
    token = confirmation_token(mails_to(smtp, wanted)[0])
    taken = client.post("/users/confirm-email", json={"token": token}, headers=headers)
    assert taken.status_code == 409 and taken.get_json()["code"] == "conflict"


def test_confirmations_cannot_flood_a_mailbox(api, smtp):
    """5 links an hour per account, 5 a day per address whoever asks."""
    client, auth = api
    user, headers = auth.new_user(password=PASSWORD)
    url = f"/users/{user['id']}"
    statuses = [
        client.patch(
            url, headers=headers, json={"email": fresh_address(), "current_password": PASSWORD}
        ).status_code
        for _ in range(6)
    ]
    assert statuses == [200] * 5 + [429]
    victim = fresh_address()
    statuses = []
    for _ in range(6):
        other, other_headers = auth.new_user(password=PASSWORD)
        statuses.append(
            client.patch(
                f"/users/{other['id']}",
                headers=other_headers,
                json={"email": victim, "current_password": PASSWORD},
            ).status_code
        )
    assert statuses == [200] * 5 + [429]
    assert len(mails_to(smtp, victim)) == 5


def test_a_sign_up_gets_no_email_before_its_address_is_confirmed(settings, container, smtp):
    _, port = smtp
    own = settings.with_overrides(
        smtp_url=f"smtp://127.0.0.1:{port}",
        open_signup=True,
        redis_prefix=f"{settings.redis_prefix}signup{next(_apps)}:",
    )
    built = Container(own, passwords=container.passwords)
    built.__dict__["queue"] = AccountMailNow(built)
    client = create_app(container=built).test_client()
    victim = fresh_address()
    signed_up = client.post(
        "/users", json={"name": f"x{uuid.uuid4().hex[:8]}", "email": victim, "password": PASSWORD}
    )
    assert signed_up.status_code == 201, signed_up.get_json()
    assert signed_up.get_json()["email_confirmed"] is False
    [confirm] = mails_to(smtp, victim)
    lure = "Your vid2mp3 account is locked - confirm your card at evil-login.example.mp4"
    job = done_job(built, signed_up.get_json()["id"], lure)
    assert not built.notifications.notify(job.id)
    assert built.job_repo.get(job.id).notify_error == UNCONFIRMED
    assert mails_to(smtp, victim) == [confirm]
    # the account's owner confirms, signed in; then the emails come
    token = Auth(client, own).token(victim, PASSWORD)
    confirmed = client.post(
        "/users/confirm-email", json={"token": confirmation_token(confirm)}, headers=bearer(token)
    )
    assert confirmed.status_code == 200 and confirmed.get_json()["email_confirmed"] is True
    assert built.notifications.notify(done_job(built, confirmed.get_json()["id"], "a.mp4").id)
    assert len(mails_to(smtp, victim)) == 2


LURES = [
    "Your vid2mp3 account is locked - confirm your card at evil-login.example.mp4",
    "x\r\nBcc: victim@example.com\r\n\r\nConfirm your card at evil-login.example.mp4",
    "report\u202efdp.exe.mp4",  # a right-to-left override
    "a\u2028Your account is locked\u2029b.mp4",  # line and paragraph separators
    "\u201cquoted\u201d and \u00abquoted\u00bb.mp4",
    "A" * 250 + ".mp4",
]


@pytest.mark.parametrize("filename", LURES)
def test_a_file_name_in_an_email_stays_a_quoted_file_name(service, smtp, auth, filename):
    _, built = service
    user, _ = auth.new_user()
    job = done_job(built, user["id"], filename)
    assert built.notifications.notify(job.id)
    [mail] = [
        m for m in mails_to(smtp, user["email"]) if m["Message-ID"] == f"<job-{job.id}@vid2mp3>"
    ]
    shown = subject(mail)
    assert shown.startswith("Your MP3 is ready: \u201c") and shown.endswith("\u201d")
    name = shown[len("Your MP3 is ready: \u201c") : -1]
    assert len(name) <= 40 and "\u201c" not in name and "\u201d" not in name
    assert not re.search(r"[\x00-\x1f\u2028\u2029\u202a-\u202e\u2066-\u2069]", shown)
    assert mail["Bcc"] is None and mail["To"] == user["email"]
    body = text(mail)
    assert "as \u201c" in body and "evil-login" not in body.split("\u201d")[-1]
    assert not re.search(r"[\u2028\u2029\u202a-\u202e\u2066-\u2069]", body)


def done_job(built: Container, owner_id: int, filename: str) -> Job:
    """A finished job, as the converter leaves it, whose email is due."""
    job = built.job_repo.add(
        Job(
            id=uuid.uuid4().hex,
            owner_id=owner_id,
            status=JobStatus.DONE,
            video_fid=None,
            video_filename=filename,
            video_size=10,
        )
    )
    finished = {
        "mp3_fid": "f" * 24,
        "mp3_size": 10,
        "progress": 1.0,
        "finished_at": datetime.now(timezone.utc).replace(tzinfo=None),
    }
    assert built.job_repo.update(job.id, finished)
    return job
