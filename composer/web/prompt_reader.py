"""Reading a user's melody in a child process that is killed when it takes too long.

``composer.io.reader.read_score`` limits music21's parsing time with SIGALRM, which only
acts in a process's main thread; a web server reads in worker threads. So the server
reads prompts in a child process of its own (started once, music21 imported there
ahead of time), where the reader's own limit works, and kills and replaces that child
when an answer does not come within the request's remaining time. The child answers a
``symusic.Score`` (pickled) and the reader's warnings, or the ``ComposerError``'s class
name and message, which the parent raises again with the same words.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import threading
import warnings
from multiprocessing.connection import Connection
from pathlib import Path
from typing import TYPE_CHECKING, Any

from composer import errors
from composer.errors import ComposerError, InputFileError, ReadTimeoutError

if TYPE_CHECKING:
    import symusic


def _child(conn: Connection) -> None:  # pragma: no cover - runs in the child process
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl+C is the server's to handle; it ends this child
    import music21  # noqa: F401  (imported once, ahead of the first prompt)

    from composer.io.reader import read_score

    while True:
        try:
            source = conn.recv()
        except EOFError:
            return
        if source is None:
            return
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                score = read_score(source if isinstance(source, str) else Path(source[0]))
            notes = list(dict.fromkeys(str(w.message) for w in caught
                                       if issubclass(w.category, errors.RepairWarning)))
            conn.send(("ok", score, notes))
        except ComposerError as exc:
            conn.send(("error", type(exc).__name__, str(exc)))
        except MemoryError:
            conn.send(("error", "InputFileError", "out of memory (the input is too big for this machine)"))
        except Exception as exc:  # a bug in the reader: say what, in one line
            conn.send(("error", "InputFileError", f"cannot be read ({type(exc).__name__}: {exc})"))


class PromptReader:
    """One reading child process, shared by the server's requests one at a time."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._process: Any = None
        self._conn: Connection | None = None

    def start(self) -> None:
        """Start the child now (it takes a few seconds to import music21)."""
        with self._lock:
            self._ensure()

    def _ensure(self) -> Connection:
        if self._process is None or not self._process.is_alive():
            context = multiprocessing.get_context("spawn")
            parent, child = context.Pipe()
            self._process = context.Process(target=_child, args=(child,), daemon=True,
                                            name="composer-prompt-reader")
            self._process.start()
            child.close()
            self._conn = parent
        assert self._conn is not None
        return self._conn

    def read(self, source: str | Path, name: str, seconds: float) -> tuple[symusic.Score, list[str]]:
        """Read note text (a ``str``) or a file (a ``Path``) within ``seconds``.

        ``name`` replaces the file's path in messages (the user's own file name).
        Raises the reader's ``ComposerError`` with its words, or ``ReadTimeoutError``.
        """
        if not self._lock.acquire(timeout=max(seconds, 0.0)):
            raise ReadTimeoutError(f"{name}: reading took longer than {seconds:.0f} s")
        try:
            conn = self._ensure()
            conn.send(source if isinstance(source, str) else (str(source),))
            if not conn.poll(seconds):
                self._kill()
                raise ReadTimeoutError(f"{name}: reading took longer than {seconds:.0f} s")
            try:
                answer = conn.recv()
            except (EOFError, OSError):  # the child died (killed for memory, crashed)
                self._kill()
                raise InputFileError(f"{name}: cannot be read (the reader stopped)") from None
        finally:
            self._lock.release()
        if answer[0] == "ok":
            notes = [n.replace(str(source), name) for n in answer[2]] if isinstance(source, Path) \
                else answer[2]
            return answer[1], notes
        kind, message = answer[1], answer[2]
        if isinstance(source, Path):
            message = message.replace(str(source), name)
        error = getattr(errors, kind, None)
        if not (isinstance(error, type) and issubclass(error, ComposerError)):
            error = InputFileError
        raise error(message)

    def _kill(self) -> None:
        if self._process is not None:
            with contextlib.suppress(Exception):  # not started, or already gone
                self._process.kill()
                self._process.join(5)
        if self._conn is not None:
            self._conn.close()
        self._process, self._conn = None, None

    def close(self) -> None:
        with self._lock:
            if self._conn is not None and self._process is not None and self._process.is_alive():
                try:
                    self._conn.send(None)
                    self._process.join(2)
                except OSError:
                    pass
            self._kill()
