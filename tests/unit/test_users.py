import pytest

from core.domain.accounts import Principal, Role
from core.domain.errors import Conflict, Forbidden, InvalidInput, NotFound, Unauthorized
from tests.support.pipeline import submit


def test_admin_creates_user_without_exposing_password(users, admin):
    user = users.create(
        admin,
        {
            "name": "carol",
            "email": "Carol@Example.com",
            "password": "carol-pass",
            "phone": "+44 20 7946 0000",
        },
    )
    assert (user.name, user.email, user.phone, user.role) == (
        "carol",
        "carol@example.com",
        "+44 20 7946 0000",
        Role.USER,
    )
    assert "carol-pass" not in user.password_hash


def test_closed_signup_refuses_anonymous_and_non_admins(users, alice):
    with pytest.raises(Unauthorized):
        users.create(None, {"name": "x", "email": "x@example.com", "password": "password1"})
    with pytest.raises(Forbidden):
        users.create(alice, {"name": "x", "email": "x@example.com", "password": "password1"})


def test_open_signup_lets_anyone_create_a_plain_user(pipeline):
    service = pipeline.rewired({"OPEN_SIGNUP": "true"}).users
    user = service.create(None, {"name": "dave", "email": "d@example.com", "password": "password1"})
    assert user.role is Role.USER
    with pytest.raises(Forbidden):
        service.create(
            None,
            {"name": "eve", "email": "e@example.com", "password": "password1", "role": "admin"},
        )


@pytest.mark.parametrize(
    "field,value",
    [
        ("name", "Robert'); DROP TABLE users;--"),
        ("name", ""),
        ("name", "x" * 65),
        ("name", "-leading"),
        ("email", "not-an-email"),
        ("email", "a@b"),
        ("password", "short"),
        ("phone", "call me"),
        ("name", "new\nline"),
    ],
)
def test_invalid_fields_get_a_message_each(users, admin, field, value):
    data = {"name": "valid", "email": "valid@example.com", "password": "password1", field: value}
    with pytest.raises(InvalidInput) as err:
        users.create(admin, data)
    assert field in err.value.details["fields"]


def test_quotes_in_names_are_kept_as_data(users, admin):
    user = users.create(
        admin, {"name": "O'Brien", "email": "ob@example.com", "password": "password1"}
    )
    assert users.find_by_name("O'Brien").id == user.id


def test_missing_required_fields_are_listed(users, admin):
    with pytest.raises(InvalidInput) as err:
        users.create(admin, {"name": "only-name"})
    assert set(err.value.details["fields"]) == {"email", "password"}


def test_taken_name_or_email_conflicts(users, admin, alice):
    with pytest.raises(Conflict):
        users.create(admin, {"name": "alice", "email": "new@example.com", "password": "password1"})
    with pytest.raises(Conflict):
        users.create(admin, {"name": "new", "email": "alice@example.com", "password": "password1"})


def test_users_see_only_themselves(users, alice, bob, admin):
    assert users.get(alice, alice.user_id).name == "alice"
    with pytest.raises(NotFound):
        users.get(alice, bob.user_id)
    with pytest.raises(NotFound):
        users.update(alice, bob.user_id, {"phone": "+1 555 0000"})
    with pytest.raises(NotFound):
        users.delete(alice, bob.user_id)
    assert users.get(admin, bob.user_id).name == "bob"


def test_only_admins_list_and_change_roles(users, alice, admin, bob):
    with pytest.raises(Forbidden):
        users.list(alice, 1, 10)
    with pytest.raises(Forbidden):
        users.update(alice, alice.user_id, {"role": "admin"})
    page = users.list(admin, 1, 2)
    assert page.total == 3 and [u.name for u in page.items] == ["admin", "alice"]
    promoted = users.update(
        admin, bob.user_id, {"role": "admin", "current_password": "admin-password"}
    )
    assert promoted.role is Role.ADMIN


def test_update_and_delete_self(users, alice):
    assert users.update(alice, alice.user_id, {"phone": "+1 555 1234"}).phone == "+1 555 1234"
    users.delete(alice, alice.user_id)
    with pytest.raises(NotFound):
        users.get(Principal(alice.user_id, Role.ADMIN), alice.user_id)


def test_deleting_a_user_deletes_their_jobs_and_files_first(pipeline, users, admin, alice):
    target = users.create(
        admin, {"name": "gone", "email": "g@example.com", "password": "password1"}
    )
    theirs = submit(pipeline, Principal(target.id, Role.USER))
    pipeline.conversion.convert(theirs.id)
    kept = submit(pipeline, alice)
    users.delete(admin, target.id)
    assert set(pipeline.jobs.rows) == {kept.id}
    assert [fid for _, fid in pipeline.blobs.files] == [kept.video_fid]


def test_ensure_admin_is_idempotent(users):
    first = users.ensure_admin("root@example.com", "password1")
    assert users.ensure_admin("root@example.com", "password1").id == first.id
    assert first.role is Role.ADMIN


def test_find_by_name_misses_cleanly(users):
    with pytest.raises(NotFound):
        users.find_by_name("nobody")
