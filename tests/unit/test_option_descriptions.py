"""Each audio option is described once (core/domain/options.py): the parser, the API's schemas,
the CLI's flags and the page's form derive from it, and the copies shipped apart stay in step."""

from __future__ import annotations

import io
import json
from contextlib import redirect_stdout
from dataclasses import fields

import pytest
from vid2mp3_client.cli import build_parser
from vid2mp3_client.options import UPLOAD_OPTIONS, described_options, upload_fields

from api.option_schemas import metadata_parameter, option_schemas, upload_body, upload_parameters
from core.domain.errors import InvalidInput
from core.domain.options import OPTIONS, AudioOptions, parse_given
from devtools import client_options
from tests.support.options import WITH_FADE_IN


def test_the_clients_copy_is_the_servers_description():
    shipped = client_options.COPY.read_text(encoding="utf-8")
    assert shipped == client_options.render(), f"out of step: run `{client_options.HOW}`"
    assert [option.field for option in UPLOAD_OPTIONS] == [option.name for option in OPTIONS]


def test_the_copy_check_fails_on_a_stale_copy(tmp_path):
    stale = tmp_path / "upload_options.json"
    stale.write_text(client_options.render(OPTIONS[:-1]), encoding="utf-8")
    assert client_options.main(["--check"], stale) == 1
    assert client_options.main([], stale) == 0
    assert client_options.main(["--check"], stale) == 0
    assert list(json.loads(stale.read_text())) == list(AudioOptions.NAMES)


def test_audio_options_has_a_field_per_described_option_filled_in_when_no_words_say_otherwise():
    described = {option.name: option for option in OPTIONS}
    assert tuple(f.name for f in fields(AudioOptions)) == AudioOptions.NAMES == tuple(described)
    for field in fields(AudioOptions):
        option = described[field.name]
        assert field.default == (option.default if option.absent is None else None), field.name
    assert AudioOptions.parse({}).to_dict() == {"format": "mp3", "cover": "none", "track": 0}


# The 422 messages, as the API said them before the options were described once.
MESSAGES = {
    "bitrate": "one of 128k, 192k, 256k, 320k",
    "quality": "an integer from 0 (best) to 9",
    "sample_rate": "one of 8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000",
    "channels": "1 (mono) or 2 (stereo)",
    "start": "seconds (e.g. 12.5) or HH:MM:SS(.mmm)",
    "end": "seconds (e.g. 12.5) or HH:MM:SS(.mmm)",
    "loudness": "a number of LUFS from -30 to -5",
    "title": "text of at most 200 characters",
    "artist": "text of at most 200 characters",
    "album": "text of at most 200 characters",
    "cover": "one of none, frame",
    "track": "an audio track number, counting from 0",
}
BAD = {
    "bitrate": "100k",
    "quality": "10",
    "sample_rate": "44101",
    "channels": "3",
    "start": "1:2:3",
    "end": "soon",
    "loudness": "-31",
    "title": "x" * 201,
    "artist": "\x00",
    "album": " ",
    "cover": "FRAME",
    "track": "64",
}


def test_every_bad_option_is_named_with_its_message():
    with pytest.raises(InvalidInput) as refused:
        AudioOptions.parse(BAD)
    assert refused.value.details["fields"] == {name: [said] for name, said in MESSAGES.items()}


@pytest.mark.parametrize(
    "given,parsed",
    [
        ({"track": "63"}, {"track": 63}),
        (
            {"start": " 99:59:59.999 ", "end": "999999.999"},
            {"start": 359999.999, "end": 999999.999},
        ),
        ({"loudness": "-5.0", "quality": "0"}, {"loudness": -5.0, "quality": 0}),
        ({"title": " Zoë\x07 ", "sample_rate": "8000 "}, {"title": "Zoë", "sample_rate": 8000}),
    ],
)
def test_parsed_values_are_the_descriptions(given, parsed):
    options = AudioOptions.parse(given)
    assert {k: v for k, v in options.to_dict().items() if k in given} == parsed
    options.check()  # what the parser gives, the transcoder's defensive check takes


@pytest.mark.parametrize(
    "built,named",
    [
        (AudioOptions(bitrate="100k"), "bitrate"),
        (AudioOptions(quality=10), "quality"),
        (AudioOptions(sample_rate=44101), "sample_rate"),
        (AudioOptions(channels=True), "channels"),
        (AudioOptions(start=-1.0), "start"),
        (AudioOptions(end=float("nan")), "end"),
        (AudioOptions(loudness=-4.0), "loudness"),
        (AudioOptions(title=""), "title"),
        (AudioOptions(artist="a" * 201), "artist"),
        (AudioOptions(cover="first"), "cover"),
        (AudioOptions(track=64), "track"),
    ],
)
def test_options_built_in_code_are_checked_by_the_same_description(built, named):
    with pytest.raises(ValueError, match=f"^{named} must be "):
        built.check()


def test_an_added_option_is_parsed_and_refused_by_its_description():
    chosen, errors = parse_given({"fade_in": "2.5", "track": "1"}, WITH_FADE_IN)
    assert chosen == {"fade_in": 2.5, "track": 1} and errors == {}
    _, errors = parse_given({"fade_in": "11"}, WITH_FADE_IN)
    assert errors == {"fade_in": ["a number of s from 0 to 10"]}


def test_an_added_option_appears_in_the_openapi_of_upload_and_tus():
    form = upload_body(WITH_FADE_IN)["content"]["multipart/form-data"]["schema"]["properties"]
    assert list(form) == [*AudioOptions.NAMES, "fade_in", "file"]
    assert form["fade_in"] == {
        "type": "number",
        "minimum": 0.0,
        "maximum": 10.0,
        "description": "fade the audio in over this long; omitted: no fade",
        "x-kind": "number",
        "x-label": "Fade in",
        "x-unit": "s",
        "x-absent": "no fade",
        "x-formats": ["mp3", "m4a"],
    }
    query = {p["name"]: p["schema"] for p in upload_parameters(WITH_FADE_IN)}
    assert query["fade_in"] == form["fade_in"] and list(query) == list(form)[:-1]
    assert "`fade_in`" in metadata_parameter(WITH_FADE_IN)["description"]
    assert "`fade_in`" not in metadata_parameter()["description"]


def convert_help(parser) -> str:
    """`vid2mp3 convert --help`, its lines joined."""
    shown = io.StringIO()
    with redirect_stdout(shown), pytest.raises(SystemExit):
        parser.parse_args(["convert", "--help"])
    return " ".join(shown.getvalue().split())


def test_an_added_option_is_a_flag_in_the_clis_help():
    schemas = json.loads(client_options.render(WITH_FADE_IN))
    parser = build_parser(described_options(schemas))
    assert "--fade-in s fade the audio in over this long; omitted: no fade" in convert_help(parser)
    given = parser.parse_args(["convert", "a.mp4", "--fade-in", "2.5", "--quality", "3"])
    assert upload_fields(given) == {"fade_in": "2.5", "quality": "3"}
    assert "--fade-in" not in convert_help(build_parser())


def test_the_cli_offers_what_the_description_allows():
    described = {option.name: option for option in OPTIONS}
    flags = {option.field: option for option in UPLOAD_OPTIONS}
    assert flags["bitrate"].choices == described["bitrate"].choices
    assert flags["quality"].choices == tuple(str(q) for q in range(10))
    assert flags["sample_rate"].choices == tuple(str(r) for r in described["sample_rate"].choices)
    assert (flags["loudness"].metavar, flags["track"].metavar) == ("LUFS", "N")
    shown = convert_help(build_parser())
    assert f"{option_schemas()['cover']['description']} (default: none)" in shown
    assert f"--title TEXT {option_schemas()['title']['description']}" in shown


def test_only_options_that_change_the_audio_stop_an_mp3_track_being_copied():
    kept = AudioOptions.parse({"title": "T", "artist": "A", "album": "B", "cover": "frame"})
    assert not kept.needs_encode and not AudioOptions(track=1).needs_encode
    for given in ({"bitrate": "128k"}, {"quality": "2"}, {"sample_rate": "8000"}):
        assert AudioOptions.parse(given).needs_encode, given
    for given in ({"channels": "1"}, {"start": "1"}, {"end": "2"}, {"loudness": "-16"}):
        assert AudioOptions.parse(given).needs_encode, given
