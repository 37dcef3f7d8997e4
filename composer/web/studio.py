"""The work behind the page: one loaded model, shared by all requests one at a time.

``Studio`` loads the model once and serialises generation with a lock (the model and
its decoder, with its caches, are one shared object); engraving and audio rendering
(music21, verovio and the synthesizer, none of them known to be thread-safe) take a
second lock, so one request can engrave while the next one generates. Every call gets
a ``Deadline``: waits for a lock end with it, and the work stops between its steps once
it has passed (the server has then already answered that the time ran out).
"""

from __future__ import annotations

import logging
import re
import threading
import time
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from composer.api import TEMPO_RANGE
from composer.errors import ComposerError, ConfigError, OutputError, TimeLimitError
from composer.io.outputs import write_atomic
from composer.io.reader import NOTE_TEXT_PREFIX, detect_format, is_note_text
from composer.web.prompt_reader import PromptReader
from composer.web.store import FILES, Candidate, Result, ResultStore

if TYPE_CHECKING:
    from composer.api import Composer, Piece

log = logging.getLogger(__name__)

KEYS = ("C", "G", "D", "A", "E", "B", "F#", "Db", "Ab", "Eb", "Bb", "F",
        "Am", "Em", "Bm", "F#m", "C#m", "G#m", "Ebm", "Bbm", "Fm", "Cm", "Gm", "Dm")


@dataclass(frozen=True)
class WebConfig:
    """The server's settings (``composer serve`` options)."""

    model: Path | None = None  # a bundle folder; None: $COMPOSER_MODEL or the shipped model
    max_upload_bytes: int = 2_000_000  # an uploaded melody bigger than this is refused unread
    time_limit: float = 120.0  # seconds one request may take
    max_bars: int = 64
    max_num: int = 8
    max_results: int = 100  # results kept downloadable; the oldest go first
    result_lifetime: float = 3600.0  # seconds a result stays downloadable
    max_result_bytes: int = 2_000_000_000  # their files in all (a minute of WAV is 10 MB)
    root: Path | None = None  # the server's own folder; None: a new temporary folder


class Deadline:
    """The time a request may still take; ``check`` raises once it has passed."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.end = time.monotonic() + seconds
        self.cancelled = threading.Event()

    def left(self) -> float:
        return max(0.0, self.end - time.monotonic())

    def error(self) -> TimeLimitError:
        return TimeLimitError(f"the request took longer than this server's limit of {self.seconds:g} s "
                              "(composer serve --time-limit); ask for fewer bars or candidates")

    def check(self) -> None:
        if self.cancelled.is_set() or time.monotonic() > self.end:
            raise self.error()

    def acquire(self, lock: threading.Lock) -> None:
        if not lock.acquire(timeout=max(self.left(), 0.001)):
            raise self.error()


@dataclass(frozen=True)
class Request:
    """What the page asks for, checked."""

    style: str
    bars: int
    seed: int = 0
    num: int = 1
    key: str | None = None
    tempo: float | None = None


@dataclass(frozen=True)
class Prompt:
    """A melody to continue: typed note text, or an uploaded file's bytes and its name."""

    text: str | None = None
    data: bytes | None = None
    filename: str | None = None


def display_name(filename: str | None) -> str:
    """The uploaded file's own name, for messages only (never for a path): no folders,
    no control characters, at most 80 characters."""
    name = PurePosixPath((filename or "").replace("\\", "/")).name
    name = re.sub(r"[\x00-\x1f\x7f]", "", name).strip()
    return name[-80:] or "upload"


def _int(form: dict[str, Any], field: str, default: int | None, low: int, high: int) -> int:
    raw = str(form.get(field) or "").strip()
    if not raw:
        if default is None:
            raise ConfigError(f"--{field}: give a number")
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"--{field} '{raw[:20]}': give a whole number") from None
    if not low <= value <= high:
        raise ConfigError(f"--{field} {value}: choose {low} to {high}")
    return value


def parse_request(form: dict[str, Any], config: WebConfig, default_bars: int) -> Request:
    """The form's fields → a ``Request``; a ``ConfigError`` names the bad one."""
    style = str(form.get("style") or "").strip()
    if not style:
        raise ConfigError("--style: choose a style")
    tempo_text = str(form.get("tempo") or "").strip()
    tempo = None
    if tempo_text:
        try:
            tempo = float(tempo_text)
        except ValueError:
            raise ConfigError(f"--tempo '{tempo_text[:20]}': give a number") from None
    key = str(form.get("key") or "").strip() or None
    if key is not None:  # the message of the command line's --key, before the model runs
        from composer.music.keys import parse_key

        parse_key(key if len(key) <= 20 else key[:20] + "…")
    return Request(style=style[:40], bars=_int(form, "bars", default_bars, 1, config.max_bars),
                   seed=_int(form, "seed", 0, 0, 2**31 - 1), num=_int(form, "num", 1, 1, config.max_num),
                   key=key, tempo=tempo)


class Studio:
    """The loaded model, the results and the prompt reader of one server."""

    def __init__(self, config: WebConfig, store: ResultStore, composer: Composer | None = None) -> None:
        self.config = config
        self.store = store
        self.reader = PromptReader()
        self.time_limit = config.time_limit  # seconds a request may take
        self._composer: Composer | None = composer
        self._imported = False
        self._load_lock = threading.Lock()
        self._model_lock = threading.Lock()  # one generation at a time: the model is shared
        self._render_lock = threading.Lock()  # one engraving or audio render at a time

    # ---- the model ----
    def load(self) -> Composer:
        """Load the model (once; later calls return it)."""
        with self._load_lock:
            if self._composer is None:
                from composer.api import Composer

                self._composer = Composer.load(self.config.model)
            if not self._imported:
                # imported here, once, in one thread: two threads importing music21 at
                # the same time can deadlock on its circular imports
                import music21  # noqa: F401
                import verovio  # noqa: F401

                import composer.score.write  # noqa: F401

                self._imported = True
            return self._composer

    def warm_up(self) -> None:
        """Write and engrave one bar, so that the first request finds the decoder built and
        music21 and verovio imported (run in the background once the model is loaded)."""
        try:
            composer = self.load()
            with self._model_lock:
                piece = composer.generate(style=composer.styles[0], bars=1, seed=0)
            with self._render_lock:
                from composer.score.write import render_score

                render_score(piece.score, "svg")  # type: ignore[union-attr]
        except Exception:  # only a head start: a real request reports any problem itself
            log.debug("warm-up failed", exc_info=True)

    def info(self) -> dict[str, Any]:
        composer = self.load()
        styles = {name: composer.bundle.styles.get(name, {}).get("description", "")
                  for name in composer.styles}
        return {"styles": styles, "keys": list(KEYS), "max_bars": self.config.max_bars,
                "max_num": self.config.max_num, "max_upload_bytes": self.config.max_upload_bytes,
                "time_limit": self.config.time_limit, "tempo_range": list(TEMPO_RANGE),
                "note_text_prefix": NOTE_TEXT_PREFIX}

    # ---- generate and continue ----
    def generate(self, request: Request, deadline: Deadline) -> dict[str, Any]:
        composer = self.load()
        deadline.acquire(self._model_lock)
        try:
            deadline.check()
            pieces = composer.generate(style=request.style, bars=request.bars, seed=request.seed,
                                       num=request.num, key=request.key, tempo=request.tempo)
        finally:
            self._model_lock.release()
        pieces = pieces if isinstance(pieces, list) else [pieces]
        title = f"{request.style.replace('_', ' ').title()} piece"
        return self._finish(pieces, request, title, f"{request.style}-seed-{request.seed}", deadline)

    def continue_(self, request: Request, prompt: Prompt, deadline: Deadline) -> dict[str, Any]:
        composer = self.load()
        with self.store.request_folder() as folder:
            score, notes, name = self._read_prompt(prompt, folder, deadline)
        deadline.acquire(self._model_lock)
        try:
            deadline.check()
            try:
                pieces = composer.continue_(score, style=request.style, bars=request.bars,
                                            seed=request.seed, num=request.num, key=request.key,
                                            tempo=request.tempo)
            except ComposerError as exc:  # the API names a score prompt "score"; say the user's name
                text = str(exc)
                raise type(exc)(name + text[len("score"):] if text.startswith("score:") else text) \
                    from None
        finally:
            self._model_lock.release()
        pieces = pieces if isinstance(pieces, list) else [pieces]
        for piece in pieces:
            piece.provenance["prompt"] = name
        title = f"{Path(name).stem if prompt.data is not None else 'Melody'}, continued"
        answer = self._finish(pieces, request, title, f"continuation-seed-{request.seed}", deadline)
        answer["warnings"] = notes
        return answer

    def _read_prompt(self, prompt: Prompt, folder: Path, deadline: Deadline) -> tuple[Any, list[str], str]:
        """Read the melody with the CLI's reader, in the reading child, within the deadline."""
        if prompt.data is not None:
            name = display_name(prompt.filename)
            suffix = Path(name).suffix.lower()
            detect_format(Path(name))  # an unknown type is refused in the CLI's words
            path = folder / f"prompt{suffix}"  # the suffix is one of the reader's own
            path.write_bytes(prompt.data)
            score, notes = self.reader.read(path, name, deadline.left())
            return score, notes, name
        text = (prompt.text or "").strip()
        if not text:
            raise ConfigError("give a melody to continue: type note text or choose a file")
        if not is_note_text(text):
            text = f"{NOTE_TEXT_PREFIX} {text}"
        score, notes = self.reader.read(text, "note text", deadline.left())
        return score, notes, "note text"

    def _finish(self, pieces: list[Piece], request: Request, title: str, stem: str,
                deadline: Deadline) -> dict[str, Any]:
        """Keep the pieces as a result and engrave each one's score (SVG pages)."""
        candidates = []
        for index, piece in enumerate(pieces, start=1):
            subtitle = f"{request.style} style, seed {request.seed}"
            if len(pieces) > 1:
                subtitle += f", candidate {index} of {len(pieces)}"
            candidates.append(Candidate(piece.score, piece.midi_bytes(), title, subtitle))
        result = self.store.add(re.sub(r"[^A-Za-z0-9_-]", "", stem)[:60] or "piece", candidates)
        out = []
        for index, candidate in enumerate(candidates, start=1):
            deadline.check()
            pages = self._render(candidate, "svg", deadline)
            out.append({"index": index, "svg": [page.decode("utf-8") for page in pages],
                        "notes": sum(len(t.notes) for t in candidate.score.tracks),
                        "files": {FILES[name][0]: f"/files/{result.id}/{index}/{name}" for name in FILES}})
        return {"id": result.id, "candidates": out, "warnings": []}

    # ---- files ----
    def _render(self, candidate: Candidate, fmt: str, deadline: Deadline) -> list[bytes]:
        deadline.acquire(self._render_lock)
        try:
            deadline.check()
            if fmt == "wav":
                from composer.audio.render import render_audio

                return [render_audio(candidate.score, ".wav")]
            from composer.score.write import render_score

            return render_score(candidate.score, fmt, title=candidate.title, subtitle=candidate.subtitle)
        finally:
            self._render_lock.release()

    def file(self, result: Result, index: int, name: str, deadline: Deadline) -> Path:
        """The path of a candidate's file, made on first request (MusicXML, PDF, audio)."""
        path = result.path(index, name)
        if path.is_file():
            return path
        fmt = FILES[name][0]
        deadline.acquire(result.lock)  # two requests for the same file render it once
        try:
            if path.is_file():
                return path
            candidate = result.candidates[index - 1]
            data = self._render(candidate, fmt, deadline)[0]
            if not path.parent.is_dir():
                raise OutputError("this result has expired; generate again")
            write_atomic(path, data, fsync=False)
            self.store.grew(result, len(data))
            return path
        finally:
            result.lock.release()

    def close(self) -> None:
        self.reader.close()
