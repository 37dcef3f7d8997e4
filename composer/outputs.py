"""Writing output files safely: never overwrite without ``force``, always atomically."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from composer.errors import OutputError


def check_output(path: Path, force: bool = False) -> None:
    """Refuse an output path that exists (without ``force``), is a folder, or cannot be written."""
    if path.is_dir():
        raise OutputError(f"{path}: is a folder; give a file name")
    if path.exists() and not force:
        raise OutputError(f"{path}: already exists; pass --force to overwrite it")
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise OutputError(f"{path}: the folder {parent} does not exist")
    if not os.access(parent, os.W_OK):
        raise OutputError(f"{path}: the folder {parent} is not writable")


def write_bytes_atomic(path: Path, data: bytes, force: bool = False) -> Path:
    """Write ``data`` to ``path`` via a temporary file in the same folder, fsync and rename."""
    check_output(path, force)
    folder = path.parent if str(path.parent) else Path(".")
    try:
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{path.name}.")
    except OSError as exc:
        raise OutputError(f"{path}: cannot be written ({exc.strerror or exc})") from None
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise OutputError(f"{path}: cannot be written ({exc.strerror or exc})") from None
    return path


def numbered_paths(path: Path, count: int) -> list[Path]:
    """``OUT.mid`` for one output; ``OUT-1.mid`` … ``OUT-N.mid`` for several."""
    if count == 1:
        return [path]
    return [path.with_name(f"{path.stem}-{i}{path.suffix}") for i in range(1, count + 1)]
