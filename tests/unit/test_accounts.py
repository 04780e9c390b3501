"""Credential changes, email confirmation and the account emails, on fakes."""

from __future__ import annotations

import pytest

from core.domain.accounts import AccountEmail, Principal, Role
from core.domain.errors import Forbidden, Gone, InvalidInput, NotFound, TooManyRequests
from core.services.account_mail import AccountMail
from core.services.confirmations import EmailConfirmations
from core.services.notification import quoted
from core.services.users import UserService
from tests.support.fakes import FakeLimiter, FakeMailer, FakeQueue

SECRET = "confirmation-secret-for-unit-tests-0123456789"


@pytest.fixture
def clock():
    return [1_000_000.0]


@pytest.fixture
def confirmations(clock):
    return EmailConfirmations(SECRET, "http://api.test", clock=lambda: clock[0])


@pytest.fixture
def queue():
    return FakeQueue()


@pytest.fixture
def changed():
    return []


@pytest.fixture
def accounts(user_repo, passwords, confirmations, queue, changed):
    return UserService(
        user_repo,
        passwords,
        confirmations=confirmations,
        queue=queue,
        limiter=FakeLimiter(),
        password_changed=lambda user_id, address: changed.append((user_id, address)),
    )


@pytest.fixture
def carol(accounts, admin):
    user = accounts.create(
        admin, {"name": "carol", "email": "carol@example.com", "password": "carol-password"}
    )
    return Principal(user.id, Role.USER)


def test_changing_a_credential_needs_the_callers_password(accounts, carol, user_repo):
    for change in ({"password": "new-password-1"}, {"email": "c@example.org"}):
        with pytest.raises(InvalidInput) as missing:
            accounts.update(carol, carol.user_id, change)
        assert "current_password" in missing.value.details["fields"]
        with pytest.raises(Forbidden):
            accounts.update(carol, carol.user_id, {**change, "current_password": "a-guess"})
    user = user_repo.get(carol.user_id)
    assert user.pending_email is None and accounts.passwords.verify(
        user.password_hash, "carol-password"
    )
    # name and phone need no password
    assert accounts.update(carol, carol.user_id, {"phone": "+1 555 0100"}).phone


def test_a_new_password_retires_tokens_and_keeps_the_owners_address(
    accounts, carol, user_repo, queue, changed
):
    before = user_repo.get(carol.user_id).token_version
    accounts.update(
        carol,
        carol.user_id,
        {"password": "new-password-1", "current_password": "carol-password"},
        address="10.0.0.7",
    )
    assert user_repo.get(carol.user_id).token_version == before + 1
    assert changed == [(carol.user_id, "10.0.0.7")]
    assert queue.account_emails == [(carol.user_id, AccountEmail.PASSWORD_CHANGED.value, None)]


def test_an_admin_uses_their_own_password_and_keeps_no_address(accounts, carol, admin, changed):
    with pytest.raises(Forbidden):  # the target's password is not the admin's
        accounts.update(
            admin,
            carol.user_id,
            {"password": "reset-password-1", "current_password": "carol-password"},
        )
    accounts.update(
        admin,
        carol.user_id,
        {"password": "reset-password-1", "current_password": "admin-password"},
        address="10.0.0.1",
    )
    assert changed == [(carol.user_id, None)]


def test_roles_and_new_admins_need_the_admins_password(accounts, carol, admin):
    with pytest.raises(InvalidInput):
        accounts.update(admin, carol.user_id, {"role": "admin"})
    with pytest.raises(InvalidInput):
        accounts.create(
            admin,
            {"name": "root2", "email": "r2@example.com", "password": "password-1", "role": "admin"},
        )
    # the same role again is no change
    assert accounts.update(admin, carol.user_id, {"role": "user"}).role is Role.USER


def test_a_new_email_waits_for_its_confirmation(accounts, carol, user_repo, queue, confirmations):
    asked = accounts.update(
        carol, carol.user_id, {"email": "C@Example.org", "current_password": "carol-password"}
    )
    assert (asked.email, asked.pending_email) == ("carol@example.com", "c@example.org")
    assert queue.account_emails == [(carol.user_id, "confirm-email", "c@example.org")]
    token = confirmations.sign(carol.user_id, "c@example.org")
    confirmed = accounts.confirm_email(carol, token)
    assert (confirmed.email, confirmed.pending_email) == ("c@example.org", None)
    assert queue.account_emails[-1] == (carol.user_id, "email-changed", "carol@example.com")
    assert accounts.confirm_email(carol, token).email == "c@example.org"  # twice: no harm
    assert len(queue.account_emails) == 2


def test_a_confirmation_belongs_to_one_account_one_address_one_day(
    accounts, carol, admin, confirmations, clock
):
    accounts.update(
        carol, carol.user_id, {"email": "c@example.org", "current_password": "carol-password"}
    )
    token = confirmations.sign(carol.user_id, "c@example.org")
    with pytest.raises(NotFound):  # not even an admin's session confirms for carol
        accounts.confirm_email(admin, token)
    with pytest.raises(NotFound):  # an address carol did not ask for
        accounts.confirm_email(carol, confirmations.sign(carol.user_id, "x@example.org"))
    with pytest.raises(NotFound):
        accounts.confirm_email(carol, token + "x")
    clock[0] += 24 * 3600
    with pytest.raises(Gone):
        accounts.confirm_email(carol, token)


def test_confirmation_emails_are_limited_per_account(accounts, carol):
    for n in range(5):
        accounts.update(
            carol,
            carol.user_id,
            {"email": f"c{n}@example.org", "current_password": "carol-password"},
        )
    with pytest.raises(TooManyRequests):
        accounts.update(
            carol, carol.user_id, {"email": "c9@example.org", "current_password": "carol-password"}
        )


def test_a_sign_up_is_unconfirmed_and_gets_its_link(user_repo, passwords, queue, confirmations):
    service = UserService(
        user_repo, passwords, open_signup=True, confirmations=confirmations, queue=queue
    )
    user = service.create(
        None, {"name": "dan", "email": "dan@example.com", "password": "pass-1234"}
    )
    assert not user.email_confirmed
    assert queue.account_emails == [(user.id, "confirm-email", "dan@example.com")]
    confirmed = service.confirm_email(
        Principal(user.id, Role.USER), confirmations.sign(user.id, "dan@example.com")
    )
    assert confirmed.email_confirmed
    assert len(queue.account_emails) == 1  # nobody to tell: the address was never confirmed


# --- the emails ----------------------------------------------------------------------------


@pytest.fixture
def mail(user_repo, confirmations):
    mailer = FakeMailer()
    return AccountMail(user_repo, mailer, confirmations), mailer


def test_the_confirmation_email_carries_a_link_for_that_address(
    mail, accounts, carol, confirmations
):
    account_mail, mailer = mail
    accounts.update(
        carol, carol.user_id, {"email": "c@example.org", "current_password": "carol-password"}
    )
    assert account_mail.send(carol.user_id, "confirm-email", "c@example.org")
    [sent] = mailer.sent
    assert sent.to == "c@example.org" and "carol" not in sent.body
    token = sent.body.split("#confirm-email=")[1].split()[0]
    assert confirmations.check(token) == (carol.user_id, "c@example.org")


def test_a_stale_confirmation_is_not_sent(mail, accounts, carol):
    account_mail, mailer = mail
    for address in ("c1@example.org", "c2@example.org"):
        accounts.update(
            carol, carol.user_id, {"email": address, "current_password": "carol-password"}
        )
    assert not account_mail.send(carol.user_id, "confirm-email", "c1@example.org")
    assert not account_mail.send(carol.user_id, "confirm-email", None)
    assert mailer.sent == []


def test_notices_go_to_the_old_address_and_to_confirmed_ones_only(mail, carol, user_repo):
    account_mail, mailer = mail
    assert account_mail.send(carol.user_id, "email-changed", "old@example.com")
    assert account_mail.send(carol.user_id, "password-changed")
    assert [m.to for m in mailer.sent] == ["old@example.com", "carol@example.com"]
    assert "c***@example.com" in mailer.sent[0].body
    user_repo.get(carol.user_id).email_confirmed = False
    assert not account_mail.send(carol.user_id, "password-changed")


@pytest.mark.parametrize(
    "text,shown",
    [
        ("holiday.mp3", "\u201choliday.mp3\u201d"),
        ("a\r\nBcc: x@example.com", "\u201ca Bcc: x@example.com\u201d"),
        ("a\u202eb\u2028c\u00a0d", "\u201ca b c d\u201d"),
        ("\u201cfake\u201d \u00abend\u00bb 'x' \"y\"", "\u201cfake end x y\u201d"),
        ("x" * 50, "\u201c" + "x" * 9 + "\u2026\u201d"),
    ],
)
def test_user_text_is_one_quoted_bounded_line(text, shown):
    assert quoted(text, 10 if len(text) == 50 else 40) == shown
