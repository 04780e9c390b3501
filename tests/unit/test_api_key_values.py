"""The shapes of API keys and upload links, and what a key's scopes allow."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from core.domain.accounts import Principal, Role
from core.domain.api_keys import looks_like_key, split_key
from core.domain.upload_links import UploadLink

NOW = datetime(2026, 12, 5, tzinfo=timezone.utc)
SECRET = "Ab-_" + "x" * 39


def test_a_well_formed_key_splits_into_prefix_and_secret():
    assert split_key(f"v2m_0123456789ab_{SECRET}") == ("0123456789ab", SECRET)


@pytest.mark.parametrize(
    "text",
    [
        f"v2m_0123456789AB_{SECRET}",  # the prefix is lowercase hex
        f"v2m_0123456789a_{SECRET}",
        f"v2m_0123456789ab_{SECRET}x",
        f"v2m_0123456789ab_{SECRET[:-1]}",
        f"v2m_0123456789ab_{SECRET[:-1]}=",
        f"v2m_0123456789ab_{SECRET}\n",
        f"V2M_0123456789ab_{SECRET}",
        f"v2m_0123456789ab-{SECRET}",
        "eyJhbGciOiJIUzI1NiJ9.e30.sig",
    ],
)
def test_anything_else_is_malformed(text):
    assert split_key(text) is None


def test_only_the_mark_says_a_credential_is_meant_as_a_key():
    assert looks_like_key("v2m_anything") and not looks_like_key("eyJhbGci.x.y")


def test_a_session_may_do_everything_and_a_key_only_its_scopes():
    assert Principal(1, Role.USER).allows("account")
    keyed = Principal(1, Role.ADMIN, scopes=frozenset({"jobs:read"}))
    assert keyed.allows("jobs:read") and not keyed.allows("jobs:write")
    assert not keyed.allows("account") and keyed.is_admin


def link(**fields) -> UploadLink:
    values = dict(
        id="l", owner_id=1, token_hash=b"h", max_bytes=1, expires_at=NOW + timedelta(hours=1)
    )
    return UploadLink(**{**values, **fields})


@pytest.mark.parametrize(
    "fields,state",
    [
        ({}, "open"),
        ({"used_at": NOW}, "open"),  # an upload under way: open until it makes its job
        ({"job_id": "j"}, "used"),
        ({"expires_at": NOW}, "expired"),
        ({"job_id": "j", "expires_at": NOW}, "used"),
        ({"deleted_at": NOW, "job_id": "j"}, "deleted"),
    ],
)
def test_a_link_is_open_used_expired_or_deleted(fields, state):
    assert link(**fields).state(NOW) == state
