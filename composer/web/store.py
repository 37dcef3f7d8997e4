"""The server-owned output folder: results under ids the server makes, with a bounded life.

Layout: ``ROOT/results/<id>/<n>/<fixed name>``, where ``<id>`` is 32 random hex digits
(``secrets``), ``<n>`` the candidate's number and the name one of ``FILES``. Nothing a
user typed or uploaded is ever part of a path: a download is looked up by checking the id
against the results the server holds and the name against ``FILES``, and the path is
then built from those server-made parts alone. Results older than ``lifetime`` seconds,
and the oldest beyond ``max_results`` or beyond ``max_bytes`` of files in all (audio is
big), are removed. ``ROOT/tmp`` holds the per-request temporary folders.
"""

from __future__ import annotations

import re
import secrets
import shutil
import tempfile
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import symusic

# the downloadable files of a candidate: fixed name → (format, media type, download suffix)
FILES: dict[str, tuple[str, str, str]] = {
    "piece.mid": ("midi", "audio/midi", ".mid"),
    "piece.musicxml": ("musicxml", "application/vnd.recordare.musicxml+xml", ".musicxml"),
    "piece.pdf": ("pdf", "application/pdf", ".pdf"),
    "piece.wav": ("wav", "audio/wav", ".wav"),
}
_ID = re.compile(r"[0-9a-f]{32}")


@dataclass
class Candidate:
    """One piece of a result: its notes and how to title its score."""

    score: symusic.Score
    midi: bytes
    title: str
    subtitle: str


@dataclass
class Result:
    """What one generate or continue request made: a folder and its candidates."""

    id: str
    folder: Path
    stem: str  # the download names' stem, made by the server (e.g. "bach-seed-3")
    candidates: list[Candidate]
    created: float = field(default_factory=time.monotonic)
    bytes: int = 0  # the size of its files so far
    lock: threading.Lock = field(default_factory=threading.Lock)  # one render per result at a time

    def path(self, index: int, name: str) -> Path:
        return self.folder / str(index) / name


class ResultStore:
    """Results by id, in ``root``; at most ``max_results``, each for ``lifetime`` seconds."""

    def __init__(self, root: Path, max_results: int = 100, lifetime: float = 3600.0,
                 max_bytes: int = 2_000_000_000) -> None:
        self.root = root
        self.results_dir = root / "results"
        self.tmp_dir = root / "tmp"
        for folder in (self.results_dir, self.tmp_dir):
            folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.max_results = max_results
        self.lifetime = lifetime
        self.max_bytes = max_bytes
        self._results: OrderedDict[str, Result] = OrderedDict()
        self._lock = threading.Lock()

    def add(self, stem: str, candidates: list[Candidate]) -> Result:
        """A new result with a fresh id; its MIDI files are written at once."""
        rid = secrets.token_hex(16)
        folder = self.results_dir / rid
        folder.mkdir(mode=0o700)
        for index, candidate in enumerate(candidates, start=1):
            (folder / str(index)).mkdir(mode=0o700)
            (folder / str(index) / "piece.mid").write_bytes(candidate.midi)
        result = Result(rid, folder, stem, candidates, bytes=sum(len(c.midi) for c in candidates))
        with self._lock:
            self._results[rid] = result
            doomed = self._expired_locked(keep=rid)
        self._remove(doomed)
        return result

    def grew(self, result: Result, size: int) -> None:
        """A file of ``size`` bytes was added to ``result``: the oldest others go while the
        results hold more than ``max_bytes``."""
        with self._lock:
            result.bytes += size
            doomed = self._expired_locked(keep=result.id)
        self._remove(doomed)

    def get(self, rid: str) -> Result | None:
        """The result with this id, or None (unknown, malformed or expired)."""
        if not _ID.fullmatch(rid):
            return None
        with self._lock:
            doomed = self._expired_locked()
            result = self._results.get(rid)
        self._remove(doomed)
        return result

    def file(self, rid: str, index: str, name: str) -> tuple[Result, int, str] | None:
        """Check a download's three parts: a held id, a candidate number and a fixed name."""
        result = self.get(rid)
        if result is None or name not in FILES or not re.fullmatch(r"[1-9][0-9]{0,2}", index):
            return None
        number = int(index)
        if number > len(result.candidates):
            return None
        path = result.path(number, name).resolve()
        if not path.is_relative_to(self.results_dir.resolve()):  # cannot happen; refuse anyway
            return None
        return result, number, name

    def _expired_locked(self, keep: str | None = None) -> list[Result]:
        now = time.monotonic()
        doomed = [r for r in self._results.values() if now - r.created > self.lifetime]
        for result in doomed:
            del self._results[result.id]
        while len(self._results) > self.max_results:
            doomed.append(self._results.popitem(last=False)[1])
        if keep is None:  # the byte budget is checked when a result grows, sparing that one
            return doomed
        total = sum(r.bytes for r in self._results.values())
        for result in list(self._results.values()):
            if total <= self.max_bytes:
                break
            if result.id != keep:
                del self._results[result.id]
                total -= result.bytes
                doomed.append(result)
        return doomed

    @staticmethod
    def _remove(results: list[Result]) -> None:
        for result in results:
            shutil.rmtree(result.folder, ignore_errors=True)

    @contextmanager
    def request_folder(self) -> Iterator[Path]:
        """A temporary folder of the request's own, removed when it ends."""
        with tempfile.TemporaryDirectory(prefix="req-", dir=self.tmp_dir) as folder:
            yield Path(folder)

    def close(self) -> None:
        with self._lock:
            self._results.clear()
        shutil.rmtree(self.root, ignore_errors=True)

    def __len__(self) -> int:
        return len(self._results)
