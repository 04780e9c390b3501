"""The unit tier: the services of the production Container (core.bootstrap), each adapter an
in-memory fake (tests/support/fakes.py), and users to act as."""

import pytest

from core.domain.accounts import Principal, Role
from tests.support.pipeline import Pipeline


@pytest.fixture
def pipeline(tmp_path):
    """The Container on fakes, the fakes reachable as attributes (pipeline.jobs, .blobs, ...)."""
    return Pipeline(tmp_path)


@pytest.fixture
def passwords(pipeline):
    return pipeline.passwords


@pytest.fixture
def user_repo(pipeline):
    return pipeline.user_repo


@pytest.fixture
def users(pipeline):
    return pipeline.users


@pytest.fixture
def auth(pipeline):
    return pipeline.auth


@pytest.fixture
def items(pipeline):
    return pipeline.items


@pytest.fixture
def admin(users):
    user = users.ensure_admin("admin@example.com", "admin-password")
    return Principal(user.id, Role.ADMIN)


@pytest.fixture
def alice(users, admin):
    user = users.create(
        admin, {"name": "alice", "email": "alice@example.com", "password": "alice-password"}
    )
    return Principal(user.id, Role.USER)


@pytest.fixture
def bob(users, admin):
    user = users.create(
        admin, {"name": "bob", "email": "bob@example.com", "password": "bob-password"}
    )
    return Principal(user.id, Role.USER)
