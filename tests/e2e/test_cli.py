"""The `vid2mp3` command-line client against the real stack, run as a user runs it."""

from __future__ import annotations

import json
import os
import socket
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from core.domain.errors import MediaError
from tests.support import media
from tests.support.stack import free_port, workers_answer
from tests.support.terminal import Terminal
from tests.support.wait import scaled, wait_for

pytestmark = pytest.mark.e2e
# The client sees HTTP only, so one blob store is enough.
directory_stack = pytest.mark.stores("directory")

VID2MP3 = str(Path(sys.executable).with_name("vid2mp3"))
PASSWORD = "password-1"


def cli_env(tmp_path: Path, url: str, email: str | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VID2MP3_")}
    env.update(XDG_CONFIG_HOME=str(tmp_path / "config"), VID2MP3_URL=url, TERM="xterm-256color")
    if email:
        env.update(VID2MP3_EMAIL=email, VID2MP3_PASSWORD=PASSWORD)
    return env


def vid2mp3(
    env: dict[str, str],
    *args: str,
    cwd: Path | None = None,
    timeout: float = 120,
    stdin: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """The CLI as a script runs it: pipes, not a terminal."""
    return subprocess.run(
        [VID2MP3, *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        input=stdin,
        check=False,
        timeout=scaled(timeout),
    )


@pytest.fixture
def user(stack, new_user, tmp_path):
    """A fresh account: its API client and the CLI's environment for it."""
    client, email = new_user()
    return client, cli_env(tmp_path, stack.base_url, email)


@pytest.fixture(scope="module")
def short_clip(media_dir):
    return media.make_video(media_dir, seconds=2.0, fmt="mov")


@directory_stack
def test_convert_two_clips_in_parallel(user, clip, short_clip, tmp_path):
    client, env = user
    out = tmp_path / "out"
    done = vid2mp3(
        env, "convert", clip, short_clip, "-o", str(out), "--parallel", "2", "--bitrate", "128k"
    )
    assert done.returncode == 0, done.stderr
    written = [out / (Path(clip).stem + ".mp3"), out / (Path(short_clip).stem + ".mp3")]
    assert done.stdout.split() == [str(path) for path in written]
    assert done.stderr == ""  # no progress bars when the output is not a terminal
    for path, seconds in zip(written, (3.0, 2.0)):
        assert media.is_mpeg_audio(path)
        assert abs(media.mp3_duration(path) - seconds) <= 0.2
    jobs = client.get("/jobs").json()["items"]
    assert sorted((job["status"], job["bitrate"]) for job in jobs) == [("done", "128k")] * 2


@directory_stack
def test_format_names_the_output_and_download_fetches_it(user, clip, tmp_path):
    import mutagen

    client, env = user
    out = tmp_path / "out"
    done = vid2mp3(env, "convert", clip, "-o", str(out), "--format", "opus", "--bitrate", "128k")
    assert done.returncode == 0, done.stderr
    written = out / (Path(clip).stem + ".opus")
    assert done.stdout.split() == [str(written)]
    found = mutagen.File(written)
    assert type(found).__name__ == "OggOpus" and abs(found.info.length - 3.0) <= 0.05
    [job] = client.get("/jobs").json()["items"]
    again = vid2mp3(env, "download", job["id"], "-o", str(tmp_path / "again"))
    assert again.returncode == 0, again.stderr
    assert again.stdout.split() == [str(tmp_path / "again" / written.name)]
    assert (tmp_path / "again" / written.name).read_bytes() == written.read_bytes()


@directory_stack
def test_failures_exit_1_with_one_line_each(user, clip, media_dir, tmp_path):
    _, env = user
    notes = media.make_text_as_mp4(media_dir)
    silent = media.make_silent_video(media_dir)
    done = vid2mp3(env, "convert", notes, clip, silent, "-o", str(tmp_path), "--json")
    assert done.returncode == 1
    lines = done.stderr.splitlines()
    assert len(lines) == 2, done.stderr
    assert lines[0].startswith(f"vid2mp3: {notes}: ") and "not a video" in lines[0]
    assert "(HTTP 415)" in lines[0]
    assert lines[1].startswith(f"vid2mp3: {silent}: conversion failed: {MediaError.NO_AUDIO} (job ")
    results = json.loads(done.stdout)
    assert [r["ok"] for r in results] == [False, True, False]
    assert media.is_mpeg_audio(results[1]["output"])
    assert not (tmp_path / "notes.mp3").exists()


@directory_stack
def test_existing_output_is_kept_without_force(user, clip, tmp_path):
    client, env = user
    target = tmp_path / (Path(clip).stem + ".mp3")
    target.write_bytes(b"my own recording")
    refused = vid2mp3(env, "convert", clip, "-o", str(tmp_path))
    assert refused.returncode == 1
    assert refused.stderr.strip() == (
        f"vid2mp3: {clip}: {target} exists (use --force to overwrite)"
    )
    assert target.read_bytes() == b"my own recording"
    assert client.get("/jobs").json()["total"] == 0  # refused before uploading

    forced = vid2mp3(env, "convert", clip, "-o", str(tmp_path), "--force")
    assert forced.returncode == 0, forced.stderr
    assert media.is_mpeg_audio(target) and abs(media.mp3_duration(target) - 3.0) <= 0.2


@pytest.mark.parametrize(
    "url,message",
    [
        (f"http://127.0.0.1:{free_port()}", "cannot reach the vid2mp3 server at http://127.0.0.1:"),
        ("http://no-such-host.invalid", "cannot reach the vid2mp3 server at http://no-such-host"),
        ("127.0.0.1:8080", "is not an http:// or https:// URL"),
    ],
    ids=["closed-port", "unknown-host", "no-scheme"],  # the same in every process (xdist)
)
def test_bad_url_is_one_clear_line(tmp_path, clip, url, message):
    env = cli_env(tmp_path, url, "someone@example.com")
    for args in (["convert", clip, "-o", str(tmp_path)], ["jobs"], ["status", "x"]):
        done = vid2mp3(env, *args, timeout=60)
        assert done.returncode == 1
        assert done.stderr.count("\n") == 1 and message in done.stderr, done.stderr
        assert "Traceback" not in done.stderr and done.stdout == ""


def test_usage_errors_exit_2(tmp_path):
    env = cli_env(tmp_path, "http://127.0.0.1:9")
    assert vid2mp3(env, "convert").returncode == 2
    assert vid2mp3(env, "convert", "x.mp4", "--bitrate", "7k").returncode == 2
    assert vid2mp3(env, "convert", "x.mp4", "--parallel", "0").returncode == 2
    bad = vid2mp3(env, "link", "x", "--expires", "soon")
    assert bad.returncode == 2 and "not a duration" in bad.stderr


@directory_stack
def test_login_prompts_and_keeps_the_token_private(stack, new_user, tmp_path):
    _, email = new_user()
    env = cli_env(tmp_path, stack.base_url)
    with Terminal([VID2MP3, "login"], env, tmp_path) as term:
        term.expect("Email: ")
        term.send(email + "\r")
        term.expect("Password: ")
        term.send(PASSWORD + "\r")
        assert term.wait() == 0, term.text
        assert "logged in" in term.text and PASSWORD not in term.text  # not echoed
    folder = tmp_path / "config" / "vid2mp3"
    token_file = folder / "token.json"
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert [p.name for p in folder.iterdir()] == ["token.json"]  # no temporary file left

    listed = vid2mp3(env, "jobs", "--json")  # no email or password in the environment now
    assert listed.returncode == 0, listed.stderr
    assert json.loads(listed.stdout)["total"] == 0

    again = vid2mp3(env, "login", "--email", email, stdin="wrong-password\n")
    assert again.returncode == 1 and "(HTTP 401)" in again.stderr
    assert vid2mp3(env, "logout").returncode == 0 and not token_file.exists()
    signed_out = vid2mp3(env, "jobs")
    assert signed_out.returncode == 1 and "vid2mp3 login" in signed_out.stderr


@directory_stack
def test_progress_bars_render_on_a_terminal(user, clip, tmp_path):
    _, env = user
    with Terminal([VID2MP3, "convert", clip, "-o", str(tmp_path)], env, tmp_path) as term:
        assert term.wait() == 0, term.text
    screen = term.text
    assert "upload" in screen and "download" in screen and "100%" in screen, screen
    assert "kB" in screen or "MB" in screen  # bytes transferred, with the rate
    assert f"done       {Path(clip).name}" in screen
    assert (tmp_path / (Path(clip).stem + ".mp3")).exists()


@directory_stack
def test_job_commands(user, clip, tmp_path):
    client, env = user
    converted = vid2mp3(env, "convert", clip, "-o", str(tmp_path / "a"), "--json")
    job_id = json.loads(converted.stdout)[0]["job_id"]

    status = vid2mp3(env, "status", job_id)
    assert status.returncode == 0 and "status:      done" in status.stdout
    assert json.loads(vid2mp3(env, "status", job_id, "--json").stdout)["id"] == job_id
    listed = vid2mp3(env, "jobs")
    assert job_id in listed.stdout and "100%" in listed.stdout

    fetched = vid2mp3(env, "download", job_id, "-o", str(tmp_path / "b"), "--json")
    assert fetched.returncode == 0, fetched.stderr
    path = Path(json.loads(fetched.stdout)["output"])
    assert path.parent == tmp_path / "b" and path.name == Path(clip).stem + ".mp3"
    # the MP3 itself, also where the server answers by redirect to S3 (not a 302's empty body)
    assert path.stat().st_size == client.get(f"/jobs/{job_id}").json()["mp3_size"] > 0
    assert path.read_bytes() == (tmp_path / "a" / path.name).read_bytes()
    again = vid2mp3(env, "download", job_id, "-o", str(tmp_path / "b"))
    assert again.returncode == 1 and "exists (use --force" in again.stderr

    link = vid2mp3(env, "link", job_id, "--expires", "1h")
    assert link.returncode == 0, link.stderr
    url = link.stdout.strip()
    assert url.startswith(client.stack.base_url + "/links/")
    assert requests.get(url, timeout=10).content == path.read_bytes()  # no token needed
    missing = vid2mp3(env, "status", "no-such-job")
    assert missing.returncode == 1 and "(HTTP 404)" in missing.stderr

    finished = vid2mp3(env, "cancel", job_id)  # a done job cannot be cancelled
    assert finished.returncode == 1 and "(HTTP 409)" in finished.stderr
    assert vid2mp3(env, "rm", job_id).returncode == 0
    assert client.get(f"/jobs/{job_id}").status_code == 404

    second = json.loads(vid2mp3(env, "convert", clip, "-o", str(tmp_path / "c"), "--json").stdout)[
        0
    ]["job_id"]
    assert vid2mp3(env, "rm", second).returncode == 0
    assert client.get(f"/jobs/{second}").status_code == 404


@directory_stack
def test_ctrl_c_cancels_the_started_jobs(stack, user, clip, tmp_path):
    client, env = user
    control = stack.container.celery.control
    worker = [f"convert@{socket.gethostname()}"]
    control.cancel_consumer("convert", destination=worker, reply=True)  # jobs stay queued
    try:
        with Terminal([VID2MP3, "convert", clip, "-o", str(tmp_path)], env, tmp_path) as term:
            job = wait_for(
                lambda: (client.get("/jobs").json()["items"] or [None])[0],
                timeout=30,
                what="the upload to create a job",
            )
            term.expect("convert")
            term.send("\x03")  # Ctrl-C, through the terminal as a person presses it
            assert term.wait() == 130, term.text
    finally:
        control.add_consumer("convert", destination=worker, reply=True)
        wait_for(lambda: workers_answer(stack.container), timeout=30, what="the worker")
    assert f"job {job['id']} cancelled" in term.text, term.text
    assert client.get(f"/jobs/{job['id']}").json()["status"] == "cancelled"
    assert not (tmp_path / (Path(clip).stem + ".mp3")).exists()


@directory_stack
def test_a_large_file_goes_over_tus_and_survives_a_cut_connection(user, stack, clip, tmp_path):
    from tests.support.proxy import CutOnce

    client, env = user
    size = Path(clip).stat().st_size
    chunk = size // 4 + 1
    port = int(stack.base_url.rsplit(":", 1)[1])
    # the network fails halfway through the body of the first PATCH
    proxy = CutOnce("127.0.0.1", port, after=chunk // 2)
    try:
        env = {
            **env,
            "VID2MP3_URL": f"http://127.0.0.1:{proxy.port}",
            "VID2MP3_TUS_MIN_BYTES": "1",  # what counts as large, scaled down to the clip
            "VID2MP3_TUS_CHUNK_BYTES": str(chunk),
        }
        api_log_before = len(stack.log("api"))
        done = vid2mp3(env, "convert", clip, "-o", str(tmp_path), "--title", "Über tus")
    finally:
        proxy.close()
    assert done.returncode == 0, done.stderr
    assert proxy.cut.is_set()  # the connection really was cut mid-PATCH
    out = tmp_path / (Path(clip).stem + ".mp3")
    assert abs(media.mp3_duration(out) - 3.0) <= 0.2
    [job] = client.get("/jobs").json()["items"]  # one upload, one job
    assert job["video_size"] == size and job["options"]["title"] == "Über tus"
    requests_seen = stack.log("api")[api_log_before:]
    assert requests_seen.count('"POST /uploads/ ') == 1
    assert '"HEAD /uploads/' in requests_seen  # it asked where to resume
    assert '"POST /upload ' not in requests_seen


@directory_stack
def test_scripts_use_an_api_key_kept_private_or_from_the_environment(
    stack, new_user, short_clip, tmp_path
):
    client, _ = new_user()
    made = client.post("/api-keys", json={"name": "cli", "scopes": ["jobs:read", "jobs:write"]})
    assert made.status_code == 201, made.text
    key = made.json()["key"]
    env = cli_env(tmp_path, stack.base_url)  # no email, no password

    saved = vid2mp3(env, "login", "--api-key", stdin=key + "\n")
    assert saved.returncode == 0, saved.stderr
    assert "jobs:read, jobs:write" in saved.stdout and key not in saved.stdout + saved.stderr
    key_file = tmp_path / "config" / "vid2mp3" / "token.json"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    out = tmp_path / "out"
    done = vid2mp3(env, "convert", short_clip, "-o", str(out))
    assert done.returncode == 0, done.stderr
    assert (out / (Path(short_clip).stem + ".mp3")).stat().st_size > 0

    assert vid2mp3(env, "logout").returncode == 0
    scripted = {**env, "VID2MP3_API_KEY": key}
    listed = vid2mp3(scripted, "jobs", "--json")
    assert listed.returncode == 0, listed.stderr
    assert json.loads(listed.stdout)["total"] == 1
    assert not key_file.exists()  # the environment's key is never written down

    assert client.delete(f"/api-keys/{made.json()['id']}").status_code == 204
    revoked = vid2mp3(scripted, "jobs")
    assert revoked.returncode == 1
    assert "invalid API key" in revoked.stderr and "VID2MP3_API_KEY" in revoked.stderr
    assert key not in revoked.stderr
    wrong = vid2mp3(env, "login", "--api-key", stdin="not-a-key\n")
    assert wrong.returncode == 1 and "(HTTP 401)" in wrong.stderr
