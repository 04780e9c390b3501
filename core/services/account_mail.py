"""The emails about an account itself: the confirmation link of a new address, and notices of
a changed address or password. Their text is the service's alone: no name, file name or other
text a user chose."""

from __future__ import annotations

import logging
from datetime import datetime, timezone

from core.domain.accounts import AccountEmail, User
from core.domain.values import Email
from core.ports.accounts import UserRepository
from core.ports.mail import Mailer
from core.services.confirmations import EmailConfirmations

log = logging.getLogger(__name__)


def masked(address: str) -> str:
    """An address as a notice shows it to the old mailbox: j***@example.com."""
    local, _, domain = address.partition("@")
    return f"{local[:1]}***@{domain}"


class AccountMail:
    def __init__(
        self,
        users: UserRepository,
        mailer: Mailer,
        confirmations: EmailConfirmations,
    ):
        self.users = users
        self.mailer = mailer
        self.confirmations = confirmations

    def send(self, user_id: int, kind: str, address: str | None = None) -> bool:
        """Send one AccountEmail; False (nothing sent) when it is no longer due: the user is
        gone, or the address to confirm was replaced or confirmed meanwhile. MailError
        propagates for a retry."""
        user = self.users.get(user_id)
        if user is None:
            return False
        email = self._compose(user, AccountEmail(kind), address)
        if email is None:
            log.info("user %s: the %s email is no longer due", user_id, kind)
            return False
        self.mailer.send(email)
        return True

    def _compose(self, user: User, kind: AccountEmail, address: str | None) -> Email | None:
        if kind is AccountEmail.CONFIRM:
            waiting = {user.pending_email} | (set() if user.email_confirmed else {user.email})
            if address is None or address not in waiting:
                return None
            until = datetime.fromtimestamp(
                self.confirmations.clock() + self.confirmations.ttl_seconds, timezone.utc
            ).strftime("%Y-%m-%d %H:%M UTC")
            return Email(
                to=address,
                subject="Confirm your email address for vid2mp3",
                body=(
                    "Someone asked vid2mp3 to send the emails of an account to this address.\n\n"
                    "If it was you, open this link in the browser where you are signed in to "
                    f"that account (it works until {until}):\n\n"
                    f"{self.confirmations.link(user.id, address)}\n\n"
                    "If it was not you, ignore this email: vid2mp3 sends nothing else to this "
                    "address unless the link is opened by the account's owner.\n"
                ),
            )
        if kind is AccountEmail.EMAIL_CHANGED:
            if not address:
                return None
            return Email(
                to=address,
                subject="The email address of your vid2mp3 account was changed",
                body=(
                    "The email address of your vid2mp3 account was changed to "
                    f"{masked(user.email)}; vid2mp3 writes to this address no more.\n\n"
                    "If you did not make this change, sign in and change your password, and "
                    "tell the service's administrator.\n"
                ),
            )
        if not user.email_confirmed:
            return None  # nothing but the confirmation goes to an unconfirmed address
        return Email(
            to=user.email,
            subject="Your vid2mp3 password was changed",
            body=(
                "The password of your vid2mp3 account was changed, and every device signed in "
                "to it was signed out.\n\n"
                "If you did not make this change, tell the service's administrator at once.\n"
            ),
        )
