"""Audio options at POST /upload and over tus: every invalid value and combination is a 422
naming the field, with nothing stored; valid ones are echoed, normalised, in the job."""

from __future__ import annotations

import base64
import io
import json

import pytest

from api.option_schemas import option_schemas
from devtools import client_options
from tests.support.media import make_video

pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning")


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> bytes:
    with open(make_video(tmp_path_factory.mktemp("options-api"), 1.0), "rb") as fh:
        return fh.read()


def upload(client, headers, data: bytes, name: str = "My Talk.mp4", query: str = "", **fields: str):
    form = {**fields, "file": (io.BytesIO(data), name)}  # the options come before the file
    return client.post(
        f"/upload{query}", headers=headers, content_type="multipart/form-data", data=form
    )


INVALID = [
    ("bitrate", "100k"),
    ("bitrate", "192"),
    ("quality", "10"),
    ("quality", "-1"),
    ("quality", "V2"),
    ("quality", "2.5"),
    ("sample_rate", "44101"),
    ("sample_rate", "96000"),
    ("channels", "0"),
    ("channels", "6"),
    ("start", "-1"),
    ("start", "1:2:3"),
    ("start", "00:61:00"),
    ("end", "soon"),
    ("end", "1e3"),
    ("loudness", "-31"),
    ("loudness", "-4"),
    ("loudness", "x"),
    ("loudness", "nan"),
    ("title", "x" * 201),
    ("title", "\x00\x01"),
    ("artist", "a" * 201),
    ("album", " "),
    ("cover", "first"),
    ("cover", "FRAME"),
    ("track", "-1"),
    ("track", "one"),
]


@pytest.mark.parametrize("name,value", INVALID)
def test_each_invalid_option_is_a_422_naming_it(client, auth, clip, name, value):
    _, headers = auth.new_user()
    refused = upload(client, headers, clip, **{name: value})
    body = refused.get_json()
    assert refused.status_code == 422, body
    assert body["code"] == "invalid_input"
    assert list(body["errors"]["json"]) == [name] and body["errors"]["json"][name][0]
    assert client.get("/jobs", headers=headers).get_json()["total"] == 0


@pytest.mark.parametrize(
    "fields,query,named",
    [
        ({"quality": "2", "bitrate": "192k"}, "", ["quality"]),
        ({"start": "10", "end": "5"}, "", ["end"]),
        ({"start": "00:00:05", "end": "5"}, "", ["end"]),
        ({"quality": "2"}, "?bitrate=320k", ["quality"]),
        ({"title": "A"}, "?title=B", ["title"]),
        ({"loudness": "-16", "channels": "3"}, "?loudness=-16", ["channels", "loudness"]),
    ],
)
def test_invalid_combinations_are_422(client, auth, clip, fields, query, named):
    _, headers = auth.new_user()
    refused = upload(client, headers, clip, query=query, **fields)
    assert refused.status_code == 422
    assert sorted(refused.get_json()["errors"]["json"]) == named
    assert client.get("/jobs", headers=headers).get_json()["total"] == 0


def test_options_are_echoed_normalised_in_the_job(client, auth, clip):
    _, headers = auth.new_user()
    accepted = upload(
        client,
        headers,
        clip,
        quality="0",
        sample_rate="22050",
        channels="1",
        start="00:00:00.250",
        end="0.75",
        loudness="-16",
        artist="Zoë",
        album="Live",
        cover="frame",
        track="0",
    )
    assert accepted.status_code == 202, accepted.get_json()
    job = client.get(accepted.get_json()["status_url"], headers=headers).get_json()
    assert job["options"] == {
        "format": "mp3",
        "quality": 0,
        "sample_rate": 22050,
        "channels": 1,
        "start": 0.25,
        "end": 0.75,
        "loudness": -16.0,
        "title": "My Talk",
        "artist": "Zoë",
        "album": "Live",
        "cover": "frame",
        "track": 0,
    }
    assert job["bitrate"] == "V0"
    assert job["source"] is None and job["mode"] is None and job["notes"] == []


def test_options_as_query_parameters(client, auth, clip):
    _, headers = auth.new_user()
    accepted = upload(client, headers, clip, query="?bitrate=320k&title=Caf%C3%A9&track=1")
    assert accepted.status_code == 202, accepted.get_json()
    job = client.get(accepted.get_json()["status_url"], headers=headers).get_json()
    assert job["options"] == {
        "format": "mp3",
        "bitrate": "320k",
        "title": "Café",
        "cover": "none",
        "track": 1,
    }


def test_defaults_when_no_option_is_given(client, auth, clip):
    _, headers = auth.new_user()
    accepted = upload(client, headers, clip, name="clip.final.mov")
    job = client.get(accepted.get_json()["status_url"], headers=headers).get_json()
    assert job["options"] == {"format": "mp3", "title": "clip.final", "cover": "none", "track": 0}


def test_openapi_documents_each_option_as_field_and_query_parameter(client):
    spec = client.get("/openapi.json").get_json()
    post = spec["paths"]["/upload"]["post"]
    form = post["requestBody"]["content"]["multipart/form-data"]["schema"]["properties"]
    query = {p["name"] for p in post["parameters"] if p["in"] == "query"}
    options = {
        "format",
        "bitrate",
        "quality",
        "compression",
        "sample_rate",
        "channels",
        "start",
        "end",
        "loudness",
        "title",
        "artist",
        "album",
        "cover",
        "track",
    }
    # and the job's labels, as query parameters only (the page's form offers options alone)
    assert set(form) == options | {"file"} and query == options | {"tag", "webhook_url"}
    assert "422" in post["responses"]
    job = spec["components"]["schemas"]["Job"]["properties"]
    assert {"options", "source", "mode", "notes"} <= set(job)


def test_the_served_options_are_the_description_and_the_clients_copy(client):
    """/openapi.json documents each option as its description says (the page builds its form
    from it), and the CLI's shipped copy is that same document."""
    post = client.get("/openapi.json").get_json()["paths"]["/upload"]["post"]
    form = post["requestBody"]["content"]["multipart/form-data"]["schema"]["properties"]
    served = {name: schema for name, schema in form.items() if name != "file"}
    assert served == option_schemas()
    query = {
        p["name"]: p["schema"]
        for p in post["parameters"]
        if p["in"] == "query" and p["name"] not in ("tag", "webhook_url")
    }
    assert query == served
    assert json.loads(client_options.COPY.read_text(encoding="utf-8")) == served
    tus = client.get("/openapi.json").get_json()["paths"]["/uploads/"]["post"]
    [metadata] = [p for p in tus["parameters"] if p["name"] == "Upload-Metadata"]
    assert all(f"`{name}`" in metadata["description"] for name in served)


def _metadata(**values: str) -> str:
    return ",".join(f"{k} {base64.b64encode(v.encode()).decode()}" for k, v in values.items())


def test_tus_metadata_takes_the_same_options(client, auth, clip):
    _, headers = auth.new_user()
    tus = {**headers, "Tus-Resumable": "1.0.0"}
    refused = client.post(
        "/uploads/",
        headers={
            **tus,
            "Upload-Length": str(len(clip)),
            "Upload-Metadata": _metadata(filename="a.mp4", quality="3", bitrate="128k"),
        },
    )
    assert refused.status_code == 422
    assert list(refused.get_json()["errors"]["json"]) == ["quality"]
    created = client.post(
        "/uploads/",
        headers={
            **tus,
            "Upload-Length": str(len(clip)),
            "Upload-Metadata": _metadata(
                filename="a.mp4", quality="3", loudness="-14", title="Über"
            ),
        },
    )
    assert created.status_code == 201
    done = client.patch(
        created.headers["Location"],
        data=clip,
        headers={**tus, "Upload-Offset": "0", "Content-Type": "application/offset+octet-stream"},
    )
    assert done.status_code == 204
    [job] = client.get("/jobs", headers=headers).get_json()["items"]
    assert job["options"] == {
        "format": "mp3",
        "quality": 3,
        "loudness": -14.0,
        "title": "Über",
        "cover": "none",
        "track": 0,
    }


def test_empty_fields_are_options_not_given(client, auth, clip):
    _, headers = auth.new_user()
    accepted = upload(client, headers, clip, quality="", title="", loudness="", cover="")
    assert accepted.status_code == 202
    job = client.get(accepted.get_json()["status_url"], headers=headers).get_json()
    assert job["options"] == {"format": "mp3", "title": "My Talk", "cover": "none", "track": 0}
