"""Request and response shapes; they validate input and feed the OpenAPI document."""

from __future__ import annotations

from typing import Any

from marshmallow import INCLUDE, RAISE, Schema, fields, post_dump, validate

from api.option_schemas import LABEL_SCHEMAS
from core.domain.api_keys import SCOPES
from core.domain.jobs import JobStatus
from core.domain.values import ascii_int
from core.domain.webhooks import WEBHOOK_EVENTS
from core.services.api_keys import MAX_EXPIRES_IN
from core.services.job_json import JobSchema


class Digits(fields.Integer):
    """An integer; written as a string, only plain ASCII digits (marshmallow's int() also reads
    '٣', '+5' and '1_000')."""

    def _validated(self, value: Any) -> Any:
        if isinstance(value, str) and ascii_int(value) is None:
            raise self.make_error("invalid")
        return super()._validated(value)


class ErrorSchema(Schema):
    status = fields.Integer(required=True, metadata={"example": 404})
    code = fields.String(required=True, metadata={"example": "not_found"})
    message = fields.String(required=True)
    errors = fields.Dict(metadata={"description": "per-field messages, where input was invalid"})


class StrictSchema(Schema):
    class Meta:
        unknown = RAISE


class TokenSchema(Schema):
    access_token = fields.String(required=True)
    token_type = fields.String(required=True, metadata={"example": "Bearer"})
    expires_in = fields.Integer(required=True, metadata={"description": "seconds"})


class ClaimsSchema(Schema):
    sub = fields.String(required=True, metadata={"description": "user id"})
    role = fields.String(required=True)
    ver = fields.Integer()
    iat = fields.Integer(metadata={"description": "a token's; an API key has none"})
    exp = fields.Integer(metadata={"description": "a token's; an API key has none"})
    scopes = fields.List(fields.String(), metadata={"description": "an API key's scopes"})


class UserCreateSchema(StrictSchema):
    name = fields.String(required=True)
    email = fields.String(required=True)
    password = fields.String(required=True, load_only=True)
    phone = fields.String(allow_none=True)
    role = fields.String(
        validate=validate.OneOf(["user", "admin"]), metadata={"description": "admins only"}
    )
    current_password = fields.String(
        load_only=True,
        metadata={"description": "the admin's own password, to create another admin"},
    )


class UserUpdateSchema(StrictSchema):
    name = fields.String()
    email = fields.String(
        metadata={
            "description": "becomes `pending_email` until confirmed through the link sent to it"
        }
    )
    password = fields.String(load_only=True)
    phone = fields.String(allow_none=True)
    role = fields.String(
        validate=validate.OneOf(["user", "admin"]), metadata={"description": "admins only"}
    )
    current_password = fields.String(
        load_only=True,
        metadata={
            "description": "the caller's own password: required to change password, email or role"
        },
    )


class UserSchema(Schema):
    id = fields.Integer(required=True)
    name = fields.String(required=True)
    email = fields.String(required=True)
    phone = fields.String(allow_none=True)
    role = fields.Function(lambda u: u.role.value, required=True)
    since = fields.DateTime(attribute="created_at", format="iso")
    pending_email = fields.String(
        allow_none=True,
        metadata={"description": "an address asked for, waiting for its confirmation"},
    )
    email_confirmed = fields.Boolean(
        metadata={"description": "false until a sign-up's address is confirmed: no emails"}
    )


class UserUpdatedSchema(UserSchema):
    token = fields.Nested(
        TokenSchema,
        metadata={
            "description": "present when you changed your own password or role: every "
            "earlier token, this request's too, is retired; use this one"
        },
    )

    @post_dump
    def _without_empty_token(self, data: dict, **kwargs: object) -> dict:
        if data.get("token") is None:
            data.pop("token", None)
        return data


class EmailConfirmationSchema(StrictSchema):
    token = fields.String(
        required=True,
        validate=validate.Length(min=1, max=1000),
        metadata={"description": "from the link in the confirmation email (after #confirm-email=)"},
    )


class PublicUserSchema(Schema):
    name = fields.String(required=True)
    phone = fields.String(allow_none=True)
    since = fields.DateTime(attribute="created_at", format="iso")


class PageQuerySchema(StrictSchema):
    page = Digits(load_default=1, validate=validate.Range(min=1, max=1_000_000))
    per_page = Digits(load_default=20, validate=validate.Range(min=1, max=100))


class PageSchema(Schema):
    page = fields.Integer(required=True)
    per_page = fields.Integer(required=True)
    total = fields.Integer(required=True)


class UserPageSchema(PageSchema):
    items = fields.List(fields.Nested(UserSchema), required=True)


class ItemSchema(Schema):
    class Meta:
        unknown = INCLUDE

    last_updated = fields.Integer(required=True, metadata={"description": "epoch seconds"})
    ttl = fields.Integer(required=True, metadata={"description": "seconds left"})


class ItemQuerySchema(StrictSchema):
    ttl = Digits(
        validate=validate.Range(min=1), metadata={"description": "seconds; default one year"}
    )


class IndexSchema(Schema):
    service = fields.String(required=True)
    version = fields.String(required=True)
    hits = fields.Integer(required=True)


class HealthSchema(Schema):
    status = fields.String(required=True)
    checks = fields.Dict(keys=fields.String(), values=fields.String())


JOB_STATUSES = [status.value for status in JobStatus]


class JobListQuerySchema(PageQuerySchema):
    status = fields.String(
        validate=validate.OneOf(JOB_STATUSES), metadata={"description": "only jobs in this status"}
    )
    tag = fields.String(
        validate=validate.Length(min=1, max=255),
        metadata={"description": "only jobs with this tag"},
    )


class LinkRequestSchema(StrictSchema):
    expires_in = Digits(
        load_default=86400,
        validate=validate.Range(min=60, max=604800),
        metadata={"description": "seconds the link works"},
    )


class LinkSchema(Schema):
    url = fields.String(required=True, metadata={"description": "absolute; needs no token"})
    expires_at = fields.DateTime(format="iso", required=True)


class JobPageSchema(PageSchema):
    items = fields.List(fields.Nested(JobSchema), required=True)


class UploadAcceptedSchema(Schema):
    job_id = fields.String(required=True)
    status = fields.String(required=True)
    status_url = fields.String(required=True)


class DownloadQuerySchema(StrictSchema):
    fid = fields.String(required=True)


class WebhookCreateSchema(StrictSchema):
    url = fields.String(required=True, validate=validate.Length(min=1, max=2000))
    events = fields.List(
        fields.String(validate=validate.OneOf(WEBHOOK_EVENTS)),
        validate=validate.Length(min=1),
        metadata={"description": "default: all three"},
    )


class WebhookSchema(Schema):
    id = fields.String(required=True)
    url = fields.String(required=True)
    events = fields.List(fields.String(), required=True)
    disabled_at = fields.DateTime(
        format="iso",
        allow_none=True,
        metadata={"description": "set when the receiver answered 410"},
    )
    created_at = fields.DateTime(format="iso")


class WebhookCreatedSchema(WebhookSchema):
    secret = fields.String(required=True, metadata={"description": "whsec_...; shown only here"})


class WebhookDeliverySchema(Schema):
    id = fields.String(required=True)
    event = fields.String(required=True)
    job_id = fields.String(required=True)
    webhook_id = fields.String(attribute="msg_id", data_key="webhook-id", required=True)
    attempts = fields.Integer(required=True)
    last_status = fields.Integer(allow_none=True)
    last_error = fields.String(allow_none=True)
    next_retry_at = fields.DateTime(format="iso", allow_none=True)
    delivered_at = fields.DateTime(format="iso", allow_none=True)
    failed_at = fields.DateTime(format="iso", allow_none=True)
    created_at = fields.DateTime(format="iso")


class SigningSecretSchema(Schema):
    secret = fields.String(
        required=True,
        metadata={
            "description": "whsec_...: signs (Standard Webhooks) the messages to your jobs' own "
            "webhook_url"
        },
    )


class EventStreamLinkSchema(Schema):
    """Where a browser opens a job's event stream without sending its token."""

    url = fields.String(
        required=True,
        metadata={"description": "GET it (EventSource): /jobs/<id>/events?ticket=..."},
    )
    expires_in = fields.Integer(
        required=True, metadata={"description": "seconds the ticket lets a stream open"}
    )


class ApiKeyCreateSchema(StrictSchema):
    name = fields.String(required=True, validate=validate.Length(min=1, max=100))
    scopes = fields.List(
        fields.String(validate=validate.OneOf(SCOPES)),
        required=True,
        validate=validate.Length(min=1),
        metadata={"description": "what the key may do: " + ", ".join(SCOPES)},
    )
    expires_in = fields.Integer(
        validate=validate.Range(min=60, max=MAX_EXPIRES_IN),
        metadata={"description": "seconds until the key stops working; default: never"},
    )


class ApiKeyQuerySchema(StrictSchema):
    user_id = fields.Integer(
        validate=validate.Range(min=1),
        metadata={"description": "another user's keys (admins)"},
    )


class ApiKeySchema(Schema):
    id = fields.String(required=True)
    owner_id = fields.Integer(required=True)
    name = fields.String(required=True)
    scopes = fields.Method("_scopes", metadata={"type": "array", "items": {"type": "string"}})
    prefix = fields.String(required=True, metadata={"description": "the key's public part"})
    created_at = fields.DateTime(format="iso")
    expires_at = fields.DateTime(format="iso", allow_none=True)
    last_used_at = fields.DateTime(
        format="iso", allow_none=True, metadata={"description": "to the minute"}
    )

    def _scopes(self, key: Any) -> list[str]:
        return sorted(key.scopes)


class ApiKeyCreatedSchema(ApiKeySchema):
    key = fields.String(
        required=True,
        metadata={"description": "v2m_<prefix>_<secret>: shown only in this answer"},
    )


def _label(name: str) -> dict[str, Any]:
    """A job label's OpenAPI description (LABEL_SCHEMAS), for the job a link's file makes."""
    schema = LABEL_SCHEMAS[name]
    lead = "for the job the link's file makes, as on POST /upload: "
    return {"maxLength": schema["maxLength"], "description": lead + schema["description"]}


class UploadLinkCreateSchema(StrictSchema):
    options = fields.Dict(
        keys=fields.String(),
        metadata={"description": "audio options (as POST /upload takes them) for the file"},
    )
    max_mb = fields.Integer(
        validate=validate.Range(min=1),
        metadata={"description": "the largest file it takes, MiB; default MAX_UPLOAD_MB"},
    )
    expires_in = fields.Integer(
        validate=validate.Range(min=60, max=30 * 86400),
        metadata={"description": "seconds until it stops taking a file; default 86400"},
    )
    allow_download = fields.Boolean(
        metadata={"description": "the uploader may download the MP3; default false"}
    )
    # checked by JobLabels.parse and the webhook guard, as on POST /upload
    tag = fields.String(allow_none=True, metadata=_label("tag"))
    webhook_url = fields.String(allow_none=True, metadata=_label("webhook_url"))


class UploadLinkSchema(Schema):
    id = fields.String(required=True)
    state = fields.String(
        required=True, metadata={"description": "open, used or expired (listing)"}
    )
    options = fields.Dict(keys=fields.String())
    max_mb = fields.Function(lambda link: link.max_bytes // 2**20)
    allow_download = fields.Boolean()
    tag = fields.String(allow_none=True, metadata={"description": "the tag its job gets"})
    webhook_url = fields.String(
        allow_none=True, metadata={"description": "the webhook_url its job gets"}
    )
    job_id = fields.String(allow_none=True, metadata={"description": "the job its file made"})
    expires_at = fields.DateTime(format="iso")
    created_at = fields.DateTime(format="iso")


class UploadLinkCreatedSchema(UploadLinkSchema):
    url = fields.String(
        required=True, metadata={"description": "the link to hand out; shown only here"}
    )


class GuestLinkSchema(Schema):
    state = fields.String(required=True, metadata={"description": "open, used or expired"})
    expires_at = fields.DateTime(format="iso")
    max_mb = fields.Integer()
    allow_download = fields.Boolean()
    options = fields.Dict(keys=fields.String())


class GuestJobSchema(Schema):
    id = fields.String(required=True)
    status = fields.String(required=True)
    progress = fields.Float(required=True)
    error = fields.String(allow_none=True)
    filename = fields.String(attribute="video_filename")
    duration_s = fields.Float(allow_none=True)
    download_url = fields.String(
        allow_none=True, metadata={"description": "when done, and the owner allowed downloads"}
    )
