"""A wall-clock limit for code that may hang (music21 on hostile input)."""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from composer.errors import ComposerError


class _Expired(BaseException):
    # A BaseException, so that third-party ``except Exception`` blocks cannot swallow it.
    pass


@contextmanager
def time_limit(seconds: float | None, make_error: Callable[[], ComposerError]) -> Iterator[None]:
    """Raise ``make_error()`` if the body runs longer than ``seconds``.

    Uses SIGALRM, so it only acts in the main thread of a process on Unix; elsewhere
    the body runs without a limit.
    """
    usable = (
        seconds is not None
        and seconds > 0
        and hasattr(signal, "setitimer")
        and threading.current_thread() is threading.main_thread()
    )
    if not usable:
        yield
        return

    def _on_alarm(signum: int, frame: object) -> None:
        raise _Expired

    previous = signal.signal(signal.SIGALRM, _on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    except _Expired:
        raise make_error() from None
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
