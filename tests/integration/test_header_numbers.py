"""Numbers in headers and query strings, over the test client on real MariaDB and Redis: only
plain ASCII digits are numbers. Unicode digits (², ٣, ３), signs, underscores, exponents and
absurdly long digit strings are refused with a clear 4xx, never a 500 and never a number."""

from __future__ import annotations

import io

import pytest

TUS = {"Tus-Resumable": "1.0.0"}
OCTETS = "application/offset+octet-stream"

# Each is something Python's int() or str.isdigit() would take, or fail on with a ValueError.
NOT_ASCII_DIGITS = [
    "²",  # superscript two: isdigit() but int() fails
    "³",
    "1²",
    "٣",  # Arabic-Indic three: int() reads 3
    "３",  # fullwidth three
    "۱۰",  # Extended Arabic-Indic ten
    "+10",
    "-1",
    "1_000",  # int() allows underscores
    "0x10",
    "1e3",
    "10.0",
    "9" * 5000,  # int() refuses more than 4300 digits with a ValueError
    "",
]


def _tus_create(client, headers, length: str):
    return client.post("/uploads/", headers={**headers, **TUS, "Upload-Length": length})


@pytest.mark.parametrize("value", NOT_ASCII_DIGITS)
def test_upload_length_must_be_ascii_digits(client, auth, value):
    _, headers = auth.new_user()
    response = _tus_create(client, headers, value)
    assert response.status_code == 400, (value, response.status_code, response.get_json())
    body = response.get_json()
    assert body["code"] == "bad_request" and "Upload-Length" in body["message"]


@pytest.mark.parametrize("value", NOT_ASCII_DIGITS)
def test_upload_offset_must_be_ascii_digits(client, auth, value):
    _, headers = auth.new_user()
    created = _tus_create(client, headers, "100")
    assert created.status_code == 201
    location = "/" + created.headers["Location"].split("/", 3)[3]
    response = client.patch(
        location,
        data=b"\x00" * 10,
        headers={**headers, **TUS, "Upload-Offset": value, "Content-Type": OCTETS},
    )
    assert response.status_code == 400, (value, response.status_code, response.get_json())
    assert "Upload-Offset" in response.get_json()["message"]
    head = client.head(location, headers={**headers, **TUS})
    assert head.headers["Upload-Offset"] == "0"  # nothing was written at a made-up offset


def test_plain_digits_still_work(client, auth):
    _, headers = auth.new_user()
    assert _tus_create(client, headers, "0100").status_code == 201  # leading zeros are digits


@pytest.mark.parametrize("value", ["٣", "²", "+3", "1_0", "3 "])
def test_content_length_must_be_ascii_digits(client, auth, value):
    _, headers = auth.new_user()
    response = client.put(
        "/items/n",
        data=b'{"a":1}',
        headers={**headers, "Content-Type": "application/json"},
        environ_overrides={"CONTENT_LENGTH": value},
    )
    assert response.status_code == 400, (value, response.status_code, response.get_json())
    assert "Content-Length" in response.get_json()["message"]
    assert client.get("/items/n", headers=headers).status_code == 404


@pytest.mark.parametrize(
    "url",
    [
        "/items/q?ttl=٣",
        "/items/q?ttl=³",
        "/items/q?ttl=1_000",
        "/items/q?ttl=+60",
        "/items/q?ttl=" + "9" * 5000,
    ],
)
def test_ttl_query_must_be_ascii_digits(client, auth, url):
    _, headers = auth.new_user()
    response = client.put(url, json={"a": 1}, headers=headers)
    assert response.status_code == 422, (url, response.status_code, response.get_json())
    assert "ttl" in response.get_json()["errors"]["query"]
    assert client.get("/items/q", headers=headers).status_code == 404


@pytest.mark.parametrize("query", ["page=٢", "per_page=１0", "page=1_0", "per_page=+5"])
def test_page_query_must_be_ascii_digits(client, auth, query):
    _, headers = auth.new_user()
    response = client.get(f"/jobs?{query}", headers=headers)
    assert response.status_code == 422, (query, response.status_code, response.get_json())


@pytest.mark.parametrize(
    "fields", [{"quality": "٣"}, {"channels": "１"}, {"start": "١٠"}, {"loudness": "-١٦"}]
)
def test_upload_options_must_be_ascii_digits(client, auth, fields):
    _, headers = auth.new_user()
    query = "&".join(f"{k}={v}" for k, v in fields.items())
    response = client.post(
        f"/upload?{query}",
        headers=headers,
        content_type="multipart/form-data",
        data={"file": (io.BytesIO(b"\x00\x00\x00\x18ftypmp42" * 64), "a.mp4")},
    )
    assert response.status_code == 422, (fields, response.status_code, response.get_json())
    assert set(response.get_json()["errors"]["json"]) == set(fields)


def test_content_length_must_be_ascii_digits_on_upload_routes(client, auth):
    _, headers = auth.new_user()
    created = _tus_create(client, headers, "100")
    location = "/" + created.headers["Location"].split("/", 3)[3]
    calls = {
        "multipart": ("POST", "/upload", {"Content-Type": "multipart/form-data; boundary=x"}),
        "tus creation": (
            "POST",
            "/uploads/",
            {**TUS, "Content-Type": OCTETS, "Upload-Length": "100"},
        ),
        "tus patch": ("PATCH", location, {**TUS, "Content-Type": OCTETS, "Upload-Offset": "0"}),
    }
    for what, (method, url, extra) in calls.items():
        response = client.open(
            url,
            method=method,
            data=b"\0" * 10,
            headers={**headers, **extra},
            environ_overrides={"CONTENT_LENGTH": "١٠"},
        )
        assert response.status_code == 400, (what, response.status_code, response.get_json())
    assert client.head(location, headers={**headers, **TUS}).headers["Upload-Offset"] == "0"
