"""Request helpers: the service container and the authenticated caller."""

from __future__ import annotations

from contextlib import contextmanager
from functools import wraps
from typing import IO, Any, Callable, Iterator, cast

from flask import current_app, g, request

from api.body_deadline import abandon_body
from core.bootstrap import Container
from core.domain.accounts import Principal
from core.domain.errors import Unauthorized
from core.services.intake import UploadsBusy, UploadSlot


def container() -> Container:
    return current_app.extensions["vid2mp3"]


def bearer_token() -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def current_principal(required: bool = True) -> Principal | None:
    """The caller from the Bearer token; Unauthorized when required and absent or invalid."""
    if "principal" not in g:
        token = bearer_token()
        if token is None:
            if required:
                raise Unauthorized("send Authorization: Bearer <token>")
            return None
        g.principal = container().auth.authenticate(token)
    return g.principal


def _with_principal(view: Callable[..., Any], required: bool) -> Callable[..., Any]:
    # Sits right under @blp.route so the caller is known before the body is parsed;
    # functools.wraps carries flask-smorest's doc attributes over.
    @wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        return view(current_principal(required), *args, **kwargs)

    return wrapped


def login_required(view: Callable[..., Any]) -> Callable[..., Any]:
    """Pass the authenticated caller as the first argument; 401 without a valid token."""
    return _with_principal(view, True)


def login_optional(view: Callable[..., Any]) -> Callable[..., Any]:
    """Pass the caller, or None for an anonymous request; a bad token is still a 401."""
    return _with_principal(view, False)


@contextmanager
def upload_slot(actor: Principal) -> Iterator[IO[bytes]]:
    """Hold one of the caller's concurrent-upload slots while the body is received; yields the
    body, which keeps the slot's lease as it is read. Over the cap the answer is 429 at once,
    the body unread and the connection closed after it."""
    try:
        with container().intake.uploading(actor) as slot:
            yield cast(IO[bytes], _Renewing(slot))
    except UploadsBusy:
        abandon_body(request.environ)
        raise


class _Renewing:
    """The request's body stream, renewing its upload slot as it is read. The stream is
    taken on the first read, after the view has set request.max_content_length."""

    def __init__(self, slot: UploadSlot):
        self._slot = slot

    def read(self, size: int = -1) -> bytes:
        data = request.stream.read(size)
        self._slot.keep_alive()
        return data
