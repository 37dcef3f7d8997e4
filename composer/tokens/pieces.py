"""Corpus pieces in, for tokenizer training and tokenizing: checked reads, hashes, a pool.

Both ``training`` and ``shards`` read every piece of a corpus in worker processes; each
worker holds one tokenizer (``WORKER``), set up by an initializer, because a miditok
tokenizer is slow to build and cannot be sent with every job.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from composer.corpus.build import MANIFEST
from composer.errors import CorpusError
from composer.io.digest import sha256_file

NOT_MADE = "none yet"  # the stale reason of an output that was never made
WORKER: dict[str, Any] = {}  # this process's tokenizer, under "tokenizer"


def manifest_sha256(corpus_dir: Path) -> str:
    """The corpus's identity: the sha256 of its manifest.

    The manifest lists every piece with its style, split and MIDI hash, so any rebuild
    that changes what a tokenizer or shards would be made from changes this hash.
    """
    path = corpus_dir / MANIFEST
    try:
        return sha256_file(path)
    except FileNotFoundError:
        raise CorpusError(f"{corpus_dir}: no {MANIFEST}; run "
                          f"'composer corpus build -o {corpus_dir}'") from None
    except OSError as exc:
        raise CorpusError(f"{path}: unreadable ({exc.strerror or exc})") from None


def read_midi(path: Path, sha256: str | None = None) -> bytes:
    """A corpus piece's bytes; ``sha256`` (from the manifest) must match when given."""
    from composer.io.reader import ReadLimits, read_bytes

    data = read_bytes(path, ReadLimits())
    if sha256 and hashlib.sha256(data).hexdigest() != sha256:
        raise CorpusError(f"{path}: changed since the corpus was built (sha256 differs); "
                          "rebuild the corpus")
    return data


def read_score(path: Path, data: bytes | None = None) -> Any:
    """A corpus piece, read with the same limits and checks as any user's file.

    Corpus files were checked when the corpus was built; one that fails now was damaged
    or replaced since.
    """
    from composer.io.reader import score_from_midi_bytes

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # repairs of a damaged file; the file is reported anyway
        return score_from_midi_bytes(read_midi(path) if data is None else data, str(path))


def pool_map(fn: Callable[[Any], Any], jobs: Sequence[Any], workers: int,
             init: Callable[..., None], initargs: tuple[Any, ...]) -> Iterator[Any]:
    """``map(fn, jobs)`` in order, in ``workers`` processes (in this one when workers <= 1)."""
    if workers <= 1 or len(jobs) <= 1:
        init(*initargs)
        try:
            yield from map(fn, jobs)
        finally:
            WORKER.clear()
        return
    context = multiprocessing.get_context("fork" if os.name == "posix" else "spawn")
    with context.Pool(workers, initializer=init, initargs=initargs) as pool:
        yield from pool.imap(fn, jobs, chunksize=8)
