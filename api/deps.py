"""Request helpers: the service container and the authenticated caller."""

from __future__ import annotations

from contextlib import contextmanager
from functools import wraps
from typing import IO, Any, Callable, Iterator, cast

from flask import current_app, g, request
from flask_smorest import Blueprint

from api.body_deadline import abandon_body
from core.bootstrap import Container
from core.domain.accounts import Principal
from core.domain.api_keys import Scope, looks_like_key
from core.domain.errors import Forbidden, Unauthorized
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
    """The caller from the Bearer token (a JWT) or API key; Unauthorized when required and
    absent, or when invalid."""
    if "principal" not in g:
        _refuse_key_in_url()
        token = bearer_token()
        if token is None:
            credentials = request.authorization
            if credentials is not None and credentials.type == "basic":
                if looks_like_key(credentials.username or "") or looks_like_key(
                    credentials.password or ""
                ):
                    raise Unauthorized(BASIC_KEY)
            if required:
                raise Unauthorized("send Authorization: Bearer <token or API key>")
            return None
        services = container()
        if looks_like_key(token):
            g.principal = services.api_keys.authenticate(token, request.remote_addr)
        else:
            g.principal = services.auth.authenticate(token)
    return g.principal


BASIC_KEY = "send an API key as Authorization: Bearer <key>, not as Basic credentials"
KEY_IN_URL = (
    "an API key in the URL is refused: URLs end up in logs and browser history. Send it as "
    "Authorization: Bearer <key>, and revoke this one"
)


def _refuse_key_in_url() -> None:
    """A key in the query string is refused even when the header holds a good one."""
    if any(looks_like_key(value) for _, values in request.args.lists() for value in values):
        raise Unauthorized(KEY_IN_URL)


def _with_principal(view: Callable[..., Any], scope: Scope, required: bool) -> Callable[..., Any]:
    # Sits right under @blp.route so the caller is known before the body is parsed;
    # functools.wraps carries flask-smorest's doc attributes over.
    @wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        return view(authorized(scope, required), *args, **kwargs)

    return scoped(scope)(wrapped)


def authorized(scope: Scope, required: bool = True) -> Principal | None:
    """The caller (see current_principal), refused with 403 when a key lacks `scope`."""
    principal = current_principal(required)
    if principal is not None and not principal.allows(scope.value):
        raise Forbidden(f"this API key lacks the scope '{scope.value}'")
    return principal


def scoped(scope: Scope) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """The scope a key needs, in the route's OpenAPI entry (for a route that authenticates
    in its body)."""
    return Blueprint.doc(**{SCOPE_EXTENSION: scope.value})


SCOPE_EXTENSION = "x-api-key-scope"


def login_required(scope: Scope) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Pass the authenticated caller as the first argument; 401 without a valid token or key,
    403 for a key without `scope`."""
    return lambda view: _with_principal(view, scope, True)


def login_optional(scope: Scope) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Pass the caller, or None for an anonymous request; a bad token is still a 401, and a
    key without `scope` a 403."""
    return lambda view: _with_principal(view, scope, False)


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
