"""``composer serve``: the web app, in a real browser (chromium driven by Playwright) and over HTTP.

One server for the module: the shipped model, uvicorn in a thread on a free port. The
browser tests (marker ``browser``) skip with the reason when Playwright or chromium is
missing; set ``COMPOSER_CHROMIUM`` to a chromium binary to use another. Environment:
``COMPOSER_SCREENSHOT=PATH`` writes the page's screenshot after a generate there (else
to a temporary folder); ``COMPOSER_WEB_BARS`` sets the bars of the timed generate (4).
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import socket
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from conftest import midi_file

from composer.cli import cli
from composer.errors import ComposerError
from composer.io.reader import read_score
from composer.web.app import FORM_OVERHEAD, create_app, is_local_host
from composer.web.store import Candidate, ResultStore
from composer.web.studio import WebConfig

uvicorn = pytest.importorskip("uvicorn", reason="uvicorn is not installed (pip install uvicorn)")

UPLOAD_LIMIT = 100_000  # a small limit, so that the refused upload is small too
BARS = int(os.environ.get("COMPOSER_WEB_BARS", "4"))
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
PROMPT = [60, 62, 64, 65, 67, 65, 64, 62]  # conftest.midi_file's melody: two 4/4 bars of quarters


@dataclass
class Server:
    url: str
    host: str
    port: int
    app: Any
    root: Path
    canary: Path  # a file next to the server's folder that no download may reach


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    base = tmp_path_factory.mktemp("serve")
    canary = base / "secret.txt"
    canary.write_text("CANARY-not-for-download")
    root = base / "root"
    app = create_app(WebConfig(max_upload_bytes=UPLOAD_LIMIT, time_limit=120, root=root))
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", access_log=False)
    uv = uvicorn.Server(config)
    thread = threading.Thread(target=uv.run, name="uvicorn", daemon=True)
    thread.start()
    end = time.monotonic() + 90
    while not uv.started:
        if not thread.is_alive() or time.monotonic() > end:
            pytest.fail("the server did not start")
        time.sleep(0.05)
    port = uv.servers[0].sockets[0].getsockname()[1]
    yield Server(f"http://127.0.0.1:{port}", "127.0.0.1", port, app, root, canary)
    uv.should_exit = True
    thread.join(30)
    assert not root.exists(), "the server's folder is removed when it stops"


# ---- HTTP helpers ----

def post(server: Server, path: str, fields: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    body = urllib.parse.urlencode(fields).encode()
    request = urllib.request.Request(server.url + path, data=body, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def get(server: Server, path: str) -> tuple[int, bytes, dict[str, str]]:
    """GET ``path`` exactly as written (no client-side normalising of ``..`` or escapes)."""
    conn = http.client.HTTPConnection(server.host, server.port, timeout=60)
    try:
        conn.putrequest("GET", path, skip_accept_encoding=True)
        conn.endheaders()
        response = conn.getresponse()
        return response.status, response.read(), dict(response.getheaders())
    finally:
        conn.close()


def raw_exchange(server: Server, head: bytes, chunks: list[bytes] = ()) -> bytes:  # type: ignore[assignment]
    """Send a request's head and body chunks over a socket; the whole answer."""
    with socket.create_connection((server.host, server.port), timeout=10) as sock:
        sock.sendall(head)
        for chunk in chunks:
            sock.sendall(chunk)
        answer = b""
        while True:
            try:
                data = sock.recv(65536)
            except ConnectionResetError:
                break
            if not data:
                break
            answer += data
            if b"\r\n\r\n" in answer and _complete(answer):
                break
        return answer


def _complete(answer: bytes) -> bool:
    head, _, body = answer.partition(b"\r\n\r\n")
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            return len(body) >= int(line.split(b":")[1])
    return False


def notes_of(midi: bytes) -> list[tuple[int, int]]:
    import symusic

    score = symusic.Score.from_midi(midi)
    return sorted((n.time, n.pitch) for t in score.tracks for n in t.notes)


def audio_problem() -> str | None:
    """Why audio cannot be made here (no FluidSynth or no SoundFont), or None."""
    from composer.audio.render import find_fluidsynth, find_soundfont
    from composer.errors import AudioError

    try:
        find_soundfont()
        find_fluidsynth()
    except AudioError as exc:
        return str(exc)
    return None


# ---- the browser ----

def chromium_path() -> str | None:
    for candidate in (os.environ.get("COMPOSER_CHROMIUM"), shutil.which("chromium"),
                      shutil.which("chromium-browser"), shutil.which("google-chrome")):
        if candidate and Path(candidate).exists():
            return candidate
    return None


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    sync_api = pytest.importorskip("playwright.sync_api", exc_type=ImportError,
                                   reason="Playwright is not installed (pip install playwright)")
    executable = chromium_path()
    with sync_api.sync_playwright() as playwright:
        if executable is None and not Path(playwright.chromium.executable_path).exists():
            pytest.skip("no chromium: apt install chromium, or set COMPOSER_CHROMIUM to its path")
        try:
            launched = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        except sync_api.Error as exc:
            pytest.skip(f"chromium did not start: {str(exc).splitlines()[0]}")
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Any, server: Server) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1200, "height": 900})
    page = context.new_page()
    page.goto(server.url)
    page.wait_for_selector('body[data-state="idle"]', timeout=30_000)
    yield page
    context.close()


def wait_done(page: Any) -> str:
    page.wait_for_selector('body[data-state="done"], body[data-state="error"]', timeout=90_000)
    return page.get_attribute("body", "data-state")


def wait_made(page: Any) -> str:
    """``wait_done``, where a piece made without audio on a machine without audio counts as done."""
    state = wait_done(page)
    missing = audio_problem()
    if state == "error" and missing is not None and page.inner_text("#error") == f"error: {missing}":
        return "done"
    return state


@pytest.mark.browser
def test_generate_shows_the_score_plays_it_and_offers_downloads(page: Any, server: Server,
                                                               tmp_path: Path) -> None:
    assert page.locator("#style option").count() >= 2
    page.select_option("#style", "irish")
    page.fill("#bars", str(BARS))
    page.fill("#seed", "3")
    started = time.perf_counter()
    page.click("#generate")
    assert page.get_attribute("body", "data-state") == "busy"  # the progress state shows at once
    assert page.is_disabled("#generate")
    page.wait_for_selector(".candidate .score svg", timeout=60_000)
    score_s = time.perf_counter() - started
    no_audio = audio_problem()
    if no_audio is None:
        page.wait_for_function("() => { const a = document.querySelector('.candidate audio');"
                               " return a && a.duration > 0; }", timeout=60_000)
        audio_s = time.perf_counter() - started
        assert wait_done(page) == "done"
        assert page.is_hidden("#error")
        duration = page.evaluate("document.querySelector('.candidate audio').duration")
        timings = page.evaluate("window.composerTimings")
        print(f"\n{BARS} bars: click to score {score_s:.2f} s (page {timings['score_ms'] / 1000:.2f} s), "
              f"click to audio {audio_s:.2f} s (page {timings['audio_ms'] / 1000:.2f} s), "
              f"audio {duration:.1f} s long")
        assert duration > 0
    else:  # the score is there, and the reason for no audio is said in the CLI's words
        assert wait_done(page) == "error"
        assert page.inner_text("#error") == f"error: {no_audio}"
    assert page.locator(".candidate .score svg").first.bounding_box()["height"] > 50
    screenshot = Path(os.environ.get("COMPOSER_SCREENSHOT") or tmp_path / "web-page.png")
    screenshot.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(screenshot), full_page=True)
    assert screenshot.stat().st_size > 10_000

    with page.expect_download(timeout=60_000) as saved:  # a click saves the file (made now)
        page.click('.candidate a[data-file="pdf"]')
    assert saved.value.suggested_filename == "irish-seed-3.pdf"
    assert Path(saved.value.path()).read_bytes().startswith(b"%PDF")
    assert wait_done(page) == "done"

    links = {a.get_attribute("data-file"): a.get_attribute("href")
             for a in page.locator(".candidate a[data-file]").all()}
    assert set(links) == {"midi", "musicxml", "pdf", "wav"}
    starts = {"midi": b"MThd", "musicxml": b"<?xml", "pdf": b"%PDF", "wav": b"RIFF"}
    for kind, href in links.items():
        if kind == "wav" and no_audio is not None:
            continue
        status, body, headers = get(server, href)
        assert status == 200, (kind, body[:200])
        assert body.startswith(starts[kind]), kind
        assert headers["content-disposition"].startswith('attachment; filename="irish-seed-3.')
    assert len(notes_of(get(server, links["midi"])[1])) > 0
    if no_audio is not None:
        pytest.skip(f"the audio was not checked: {no_audio}")


@pytest.mark.browser
def test_continue_an_uploaded_midi_melody_keeps_its_notes_first(page: Any, server: Server,
                                                                 tmp_path: Path) -> None:
    melody = tmp_path / "melody.mid"
    melody.write_bytes(midi_file(PROMPT))
    page.select_option("#style", "german_folk")
    page.fill("#bars", "2")
    page.set_input_files("#file", str(melody))
    page.click("#continue")
    page.wait_for_selector(".candidate .score svg", timeout=60_000)
    assert wait_made(page) == "done"
    assert "melody.mid" in page.inner_text(".candidate h2")
    href = page.get_attribute('.candidate a[data-file="midi"]', "href")
    status, midi, _ = get(server, href)
    assert status == 200
    notes = notes_of(midi)
    prompt = [(i * 480, pitch) for i, pitch in enumerate(PROMPT)]
    assert notes[:len(prompt)] == prompt  # the prompt's own notes come first, unchanged
    assert len(notes) > len(prompt) and notes[-1][0] >= 8 * 480  # and new bars follow them

    page.set_input_files("#file", [])  # typed note text, the CLI's tinyNotation
    page.fill("#notes", "tinynotation: 3/4 e4 d c d e e e2")
    page.click("#continue")
    page.wait_for_selector('.candidate h2:has-text("note text")', timeout=60_000)
    assert wait_made(page) == "done"
    assert page.locator(".candidate .score svg").count() >= 1


@pytest.mark.browser
def test_a_non_music_upload_shows_the_clis_error_and_the_server_keeps_serving(
        page: Any, server: Server, tmp_path: Path) -> None:
    bad = tmp_path / "notes.mid"
    bad.write_bytes(b"this is a shopping list, not music\n")
    result = CliRunner().invoke(cli, ["continue", str(bad), "--style", "irish",
                                      "-o", str(tmp_path / "o.mid")])
    assert result.exit_code == 2
    cli_line = next(line for line in result.output.splitlines() if line.startswith("error:"))

    page.set_input_files("#file", str(bad))
    page.click("#continue")
    assert wait_done(page) == "error"
    shown = page.inner_text("#error")
    assert shown == cli_line.replace(str(bad), "notes.mid")  # the CLI's words, the user's file name
    assert page.locator(".candidate").count() == 0

    too_big = tmp_path / "big.mid"  # the page refuses it without sending it, in the server's words
    too_big.write_bytes(midi_file(PROMPT) + b"\0" * UPLOAD_LIMIT)
    page.set_input_files("#file", str(too_big))
    page.click("#continue")
    assert wait_done(page) == "error"
    assert page.inner_text("#error") == ("error: the upload is larger than this server's limit of 0.1 MB "
                                         "(composer serve --max-upload-mb)")

    page.fill("#bars", "2")  # the server is still serving
    page.click("#generate")
    page.wait_for_selector(".candidate .score svg", timeout=60_000)
    assert wait_made(page) == "done"
    assert page.is_hidden("#error") or audio_problem() is not None


@pytest.mark.browser
def test_an_audio_failure_shows_the_error_under_the_score(page: Any, monkeypatch: pytest.MonkeyPatch,
                                                          tmp_path: Path) -> None:
    from composer.audio.render import SOUNDFONT_ENV, find_soundfont
    from composer.errors import AudioError

    monkeypatch.setenv(SOUNDFONT_ENV, str(tmp_path / "missing.sf2"))  # the server runs in this process
    with pytest.raises(AudioError) as caught:
        find_soundfont()
    page.fill("#bars", "1")
    page.click("#generate")
    assert wait_done(page) == "error"
    assert page.locator(".candidate .score > svg").count() == 1  # the score came; the audio could not
    assert page.inner_text("#error") == f"error: {caught.value}"


# ---- HTTP ----

def test_an_upload_over_the_limit_is_refused_before_it_is_read(server: Server) -> None:
    limit = UPLOAD_LIMIT + FORM_OVERHEAD
    head = (f"POST /api/continue HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n"
            f"Content-Type: multipart/form-data; boundary=x\r\nContent-Length: {10 * limit}\r\n\r\n").encode()
    started = time.monotonic()
    answer = raw_exchange(server, head)  # not one byte of the body is sent, yet the answer comes
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert b"larger than this server's limit of 0.1 MB" in answer
    assert time.monotonic() - started < 5

    # without a Content-Length (chunked), the count stops it as soon as it passes the limit
    head = (f"POST /api/continue HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n"
            "Content-Type: multipart/form-data; boundary=x\r\nTransfer-Encoding: chunked\r\n\r\n").encode()
    body = (b'--x\r\nContent-Disposition: form-data; name="file"; filename="big.mid"\r\n\r\n'
            + midi_file(PROMPT) + b"\0" * limit)
    chunks = [f"{len(body[i:i + 16384]):x}\r\n".encode() + body[i:i + 16384] + b"\r\n"
              for i in range(0, len(body), 16384)]
    answer = raw_exchange(server, head, chunks)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert b"larger than this server's limit" in answer

    status, body, _ = get(server, "/api/info")  # and it goes on serving
    assert status == 200 and "irish" in json.loads(body)["styles"]
    assert not any((server.root / "tmp").iterdir()), "no request folder is left behind"


def test_eight_concurrent_generate_requests_each_get_their_own_result(server: Server) -> None:
    def one(seed: int) -> tuple[int, dict[str, Any]]:
        return post(server, "/api/generate", {"style": "irish", "bars": 2, "seed": seed})

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(one, range(8)))
    assert [status for status, _ in answers] == [200] * 8, [a.get("error") for _, a in answers]
    assert len({answer["id"] for _, answer in answers}) == 8
    midis = []
    for _, answer in answers:
        (candidate,) = answer["candidates"]
        assert candidate["svg"] and candidate["svg"][0].startswith("<svg")
        status, midi, _ = get(server, candidate["files"]["midi"])
        assert status == 200
        midis.append(midi)
    assert len(set(midis)) == 8  # different seeds, different music
    status, again = one(5)  # and each is its own seed's: the same request alone gives the same piece
    assert status == 200
    assert get(server, again["candidates"][0]["files"]["midi"])[1] == midis[5]


def test_downloads_cannot_leave_the_servers_output_folder(server: Server) -> None:
    status, answer = post(server, "/api/generate", {"style": "bach", "bars": 1, "seed": 1})
    assert status == 200
    rid = answer["id"]
    assert get(server, f"/files/{rid}/1/piece.mid")[0] == 200
    canary = str(server.canary)
    attempts = [
        "/files/../secret.txt", "/files/../../secret.txt", "/files/%2e%2e/%2e%2e/secret.txt",
        f"/files/{rid}/../../../secret.txt", f"/files/{rid}/1/..%2f..%2f..%2f..%2fsecret.txt",
        f"/files/{rid}/1/%2e%2e%2f%2e%2e%2f%2e%2e%2f%2e%2e%2fsecret.txt",
        f"/files/{rid}/1/{urllib.parse.quote(canary, safe='')}", f"/files/{rid}/1/{canary}",
        f"/files/{urllib.parse.quote(canary, safe='')}/1/piece.mid", f"/files/{rid}/1//etc/passwd",
        f"/files/{rid}/1/..%5c..%5c..%5csecret.txt", f"/files/{rid}/1/piece.mid%00.txt",
        f"/files/{rid}/0/piece.mid", f"/files/{rid}/2/piece.mid", f"/files/{rid}/01/piece.mid",
        f"/files/{rid}/1/piece.txt", f"/files/{rid}/1/../1/piece.mid", f"/files/{rid.upper()}/1/piece.mid",
        f"/files/{'0' * 32}/1/piece.mid", f"/files/{rid[:-1]}/1/piece.mid", "/files/tmp/1/piece.mid",
        "/static/../app.py", "/static/%2e%2e/app.py", "/static/..%2fapp.py", "//etc/passwd",
    ]
    for path in attempts:
        status, body, _ = get(server, path)
        assert status in (400, 404), (path, status)
        assert b"CANARY" not in body and b"root:" not in body, path


def test_a_request_past_the_time_limit_is_answered_and_the_server_goes_on(server: Server) -> None:
    studio = server.app.state.studio
    studio.time_limit = 0.05
    try:
        status, answer = post(server, "/api/generate", {"style": "bach", "bars": 8, "seed": 1})
    finally:
        studio.time_limit = 120
    assert status == 504
    assert answer["error"].startswith("the request took longer than this server's limit of 0.05 s")
    status, answer = post(server, "/api/generate", {"style": "bach", "bars": 2, "seed": 1})
    assert status == 200, answer


def test_bad_settings_and_prompts_get_the_clis_words(server: Server) -> None:
    status, answer = post(server, "/api/generate", {"style": "jazz", "bars": 2})
    assert status == 400 and answer["error"].startswith("unknown style 'jazz'; this model knows bach")
    status, answer = post(server, "/api/generate", {"style": "bach", "bars": 2, "key": "H"})
    assert status == 400 and answer["error"] == ("unknown key 'H'; write it like 'D major', 'F# minor', "
                                                 "'Bb' or 'Am'")
    for text in ("tinynotation: 4/4", "tinynotation:", "tinynotation: 0/4 c4", "tinynotation: r4 r2"):
        with pytest.raises(ComposerError) as caught:  # what the CLI's reader says of the same text
            read_score(text)
        status, answer = post(server, "/api/continue", {"style": "irish", "notes": text})
        assert status == 400 and answer["error"] == str(caught.value)
    status, answer = post(server, "/api/continue", {"style": "irish", "notes": "c4 d e f g1", "bars": 1})
    assert status == 200 and answer["candidates"]  # the "tinynotation:" prefix may be left out
    status, answer = post(server, "/api/generate", {"style": "bach", "bars": 2, "num": 3, "seed": 2})
    assert status == 200 and [c["index"] for c in answer["candidates"]] == [1, 2, 3]


def test_the_prompt_reader_is_killed_when_it_runs_too_long(server: Server, tmp_path: Path) -> None:
    from composer.errors import ReadTimeoutError

    reader = server.app.state.studio.reader
    slow = tmp_path / "slow.abc"  # music21 takes 1-3 s over these 1,920 notes, well past 0.2 s
    slow.write_text("X:1\nT:t\nM:4/4\nL:1/8\nK:C\n" + "CDEF GABc|" * 240 + "\n")
    started = time.monotonic()
    with pytest.raises(ReadTimeoutError, match=r"^tune\.abc: reading took longer than 0 s$"):
        reader.read(slow, "tune.abc", 0.2)
    assert time.monotonic() - started < 2
    melody = tmp_path / "melody.mid"
    melody.write_bytes(midi_file(PROMPT))
    score, _ = reader.read(melody, "melody.mid", 60.0)  # a new reader takes the old one's place
    assert len(score.tracks[0].notes) == len(PROMPT)


def test_cross_site_posts_and_foreign_host_names_are_refused(server: Server) -> None:
    conn = http.client.HTTPConnection(server.host, server.port, timeout=30)
    try:
        conn.request("POST", "/api/generate", body="style=bach&bars=1",
                     headers={"Origin": "http://evil.example",
                              "Content-Type": "application/x-www-form-urlencoded"})
        response = conn.getresponse()
        assert response.status == 403 and b"another site" in response.read()
    finally:
        conn.close()
    conn = http.client.HTTPConnection(server.host, server.port, timeout=30)
    try:
        conn.request("GET", "/api/info", headers={"Host": "rebound.evil.example"})
        assert conn.getresponse().status == 400
    finally:
        conn.close()


# ---- without a server ----

def test_the_store_keeps_a_bounded_number_of_results_for_a_bounded_time(tmp_path: Path) -> None:
    import symusic

    store = ResultStore(tmp_path / "root", max_results=2, lifetime=3600)
    one = Candidate(symusic.Score(480), b"MThd", "t", "s")
    first, second, third = (store.add("bach", [one]) for _ in range(3))
    assert store.get(first.id) is None and not first.folder.exists()  # the oldest went first
    assert store.get(second.id) is second and store.file(third.id, "1", "piece.mid") is not None
    for rid, index, name in ((third.id, "2", "piece.mid"), (third.id, "1", "../piece.mid"),
                             ("../" + third.id, "1", "piece.mid"), (third.id, "1", "piece.exe")):
        assert store.file(rid, index, name) is None
    store.max_bytes = 10  # too many bytes: the oldest others go, never the one that grew
    store.grew(third, 100)
    assert store.get(second.id) is None and not second.folder.exists() and store.get(third.id) is third
    store.lifetime = 0
    time.sleep(0.01)
    assert store.get(third.id) is None and not third.folder.exists()
    store.close()
    assert not (tmp_path / "root").exists()


def test_serve_binds_to_this_machine_and_warns_for_another_host(monkeypatch: pytest.MonkeyPatch) -> None:
    import composer.web.app

    calls: list[tuple[str, int]] = []
    monkeypatch.setattr(composer.web.app, "serve",
                        lambda config, host, port, on_ready: calls.append((host, port)))
    monkeypatch.setattr(composer.web.app, "check_address", lambda host, port: None)
    runner = CliRunner()
    local = runner.invoke(cli, ["serve"])
    assert local.exit_code == 0 and "warning" not in local.output
    wide = runner.invoke(cli, ["serve", "--host", "0.0.0.0", "--port", "8080"])
    assert wide.exit_code == 0
    assert "warning: --host 0.0.0.0 makes the app reachable from other machines" in wide.output
    assert calls == [("127.0.0.1", 8000), ("0.0.0.0", 8080)]
    assert is_local_host("::1") and is_local_host("localhost") and not is_local_host("192.168.1.5")


def test_serve_says_in_one_line_when_the_port_is_taken() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = CliRunner().invoke(cli, ["serve", "--port", str(port)])
    assert result.exit_code == 2
    assert f"error: --port {port}: cannot listen on 127.0.0.1:{port}" in result.output
