"""The errors every operation documents because of the shared request path, reached for each
operation the document lists: a missing or bad token, and the JSON body checks."""

import pytest

from tests.support.openapi import (
    PROTOCOL_HEADERS,
    example_body,
    example_url,
    json_body_operations,
    operations_documenting,
    secured_operations,
)


@pytest.mark.parametrize("path,method", secured_operations())
def test_every_secured_operation_refuses_a_missing_token(client, path, method):
    response = client.open(
        example_url(path),
        method=method.upper(),
        json=example_body(path, method),
        headers=PROTOCOL_HEADERS,
    )
    assert response.status_code == 401, response.get_json()
    if method != "head":
        assert response.get_json()["code"] == "unauthorized"
    assert response.headers["WWW-Authenticate"].split()[0] in ("Bearer", "Basic")


@pytest.mark.parametrize(
    "path,method", [op for op in secured_operations() if op != ("/login", "post")]
)
def test_every_token_route_refuses_a_forged_token(client, path, method):
    response = client.open(
        example_url(path),
        method=method.upper(),
        json=example_body(path, method),
        headers={"Authorization": "Bearer not.a.token", **PROTOCOL_HEADERS},
    )
    assert response.status_code == 401, response.get_json()


@pytest.mark.parametrize("path,method", json_body_operations())
def test_json_bodies_are_checked_on_every_route_that_takes_one(
    client, settings, auth, path, method
):
    url, call = example_url(path), getattr(client, method)
    headers = auth.admin()
    wrong_type = call(url, data="name=x", content_type="text/plain", headers=headers)
    assert wrong_type.status_code == 415
    assert wrong_type.get_json()["code"] == "unsupported_media_type"
    malformed = call(url, data='{"name": ', content_type="application/json", headers=headers)
    assert malformed.status_code == 400 and malformed.get_json()["code"] == "bad_request"
    huge = b'{"name": "' + b"x" * settings.max_json_bytes + b'"}'
    too_large = call(url, data=huge, content_type="application/json", headers=headers)
    assert too_large.status_code == 413 and too_large.get_json()["code"] == "too_large"


@pytest.mark.parametrize(
    "url,field",
    [("/jobs?per_page=1000", "per_page"), ("/jobs?page=0", "page"), ("/download", "fid")],
)
def test_bad_query_arguments_are_422_naming_the_field(client, auth, url, field):
    _, headers = auth.new_user()
    response = client.get(url, headers=headers)
    assert response.status_code == 422
    assert field in response.get_json()["errors"]["query"]


@pytest.mark.parametrize(
    "path,method", [op for op in operations_documenting(412) if op[0].startswith("/uploads/")]
)
def test_every_tus_operation_wants_the_protocol_version(client, auth, path, method):
    response = client.open(example_url(path), method=method.upper(), headers=auth.admin())
    assert response.status_code == 412
    assert response.headers["Tus-Version"] == "1.0.0"


def test_metrics_want_the_metrics_token_when_one_is_set(settings, container):
    from api import create_app
    from core.bootstrap import Container

    token = "metrics-token-" + "m" * 16
    guarded = create_app(
        container=Container(
            settings.with_overrides(metrics_token=token), passwords=container.passwords
        )
    ).test_client()
    assert guarded.get("/metrics").status_code == 401
    assert guarded.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
    allowed = guarded.get("/metrics", headers={"Authorization": f"Bearer {token}"})
    assert allowed.status_code == 200 and b"# TYPE" in allowed.data
