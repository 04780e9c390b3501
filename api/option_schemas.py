"""The audio options as the API documents them, derived from their one description
(`OPTIONS` in core/domain/options.py): a JSON Schema per option, with the words a form needs as
`x-` extensions. The page builds its form from these (read from /openapi.json); the CLI ships a
copy written by `python -m devtools.options`."""

from __future__ import annotations

from typing import Any

from core.domain.options import OPTIONS, TIME_PATTERN, Option

JSON_TYPES = {
    "choice": "string",
    "integer": "integer",
    "number": "number",
    "time": "string",
    "text": "string",
}


# A job's labels, beside its options on POST /upload, POST /jobs and in tus metadata.
LABEL_SCHEMAS: dict[str, dict[str, Any]] = {
    "tag": {
        "type": "string",
        "maxLength": 255,
        "description": "your own reference, echoed in the job, its events and webhooks; "
        "GET /jobs?tag= filters by it",
    },
    "webhook_url": {
        "type": "string",
        "maxLength": 2000,
        "description": "this job's events also go to this http(s) URL (public addresses only), "
        "signed with your account's signing secret (GET /webhooks/secret)",
    },
}


def option_schema(option: Option) -> dict[str, Any]:
    """One option as a JSON Schema: its help, and what leaving it out gives, as description."""
    schema: dict[str, Any] = {"type": JSON_TYPES[option.kind]}
    if option.choices:
        schema["enum"] = list(option.choices)
    for keyword, value in (
        ("minimum", option.minimum),
        ("maximum", option.maximum),
        ("maxLength", option.max_length),
        ("pattern", TIME_PATTERN if option.kind == "time" else None),
        ("default", option.default),
    ):
        if value is not None:
            schema[keyword] = value
    omitted = f"; omitted: {option.absent}" if option.absent and option.default is None else ""
    schema["description"] = option.help + omitted
    # For forms and command lines: what to call it, what leaving it out gives, words for
    # some choices, and which output formats it applies to.
    schema["x-kind"] = option.kind
    schema["x-label"] = option.label
    if option.unit:
        schema["x-unit"] = option.unit
    if option.absent:
        schema["x-absent"] = option.absent
    if option.words:
        schema["x-choice-labels"] = {str(value): words for value, words in option.words.items()}
    schema["x-formats"] = list(option.formats)
    return schema


def option_schemas(options: tuple[Option, ...] = OPTIONS) -> dict[str, dict[str, Any]]:
    """Each option's schema by name, in the description's order."""
    return {option.name: option_schema(option) for option in options}


def upload_body(options: tuple[Option, ...] = OPTIONS) -> dict[str, Any]:
    """POST /upload's body: the options as multipart fields before the file part."""
    return {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {
                        **option_schemas(options),
                        "file": {"type": "string", "format": "binary", "description": "the video"},
                    },
                },
                "encoding": {"file": {"contentType": "application/octet-stream"}},
            }
        },
    }


def import_body(options: tuple[Option, ...] = OPTIONS) -> dict[str, Any]:
    """POST /jobs's body: the URL to fetch, the same options, a tag and a webhook URL."""
    return {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": ["url"],
                    "additionalProperties": False,
                    "properties": {
                        "url": {
                            "type": "string",
                            "maxLength": 2000,
                            "description": "the video's http(s) URL (no credentials)",
                        },
                        **option_schemas(options),
                        **LABEL_SCHEMAS,
                    },
                },
                "example": {"url": "https://example.com/talk.mp4", "bitrate": "192k"},
            }
        },
    }


def upload_parameters(options: tuple[Option, ...] = OPTIONS) -> list[dict[str, Any]]:
    """POST /upload's query parameters: the same options."""
    return [
        {
            "in": "query",
            "name": name,
            "required": False,
            "schema": schema,
            "description": "the same option as the form field; not both",
        }
        for name, schema in option_schemas(options).items()
    ]


def label_parameters() -> list[dict[str, Any]]:
    """POST /upload's labels as query parameters (the page's options form, built from the
    multipart schema, does not offer them)."""
    return [
        {
            "in": "query",
            "name": name,
            "required": False,
            "schema": schema,
            "description": "as a query parameter or a form field before the file; not both",
        }
        for name, schema in LABEL_SCHEMAS.items()
    ]


def metadata_parameter(options: tuple[Option, ...] = OPTIONS) -> dict[str, Any]:
    """The tus creation's Upload-Metadata header: the file name and the same options."""
    names = ", ".join(f"`{option.name}`" for option in options)
    return {
        "in": "header",
        "name": "Upload-Metadata",
        "required": False,
        "schema": {"type": "string"},
        "description": "comma-separated `key base64(value)` pairs: `filename` (or `name`), "
        f"any conversion option of `POST /upload` ({names}), `tag` and `webhook_url`, checked "
        "as there",
    }
