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


def write_atomic(path: Path, data: bytes, fsync: bool = True) -> None:
    """Write ``data`` via a temporary file in the same folder, fsync and rename: all or nothing.

    ``fsync=False`` skips the flush to disk, for many files that can be rebuilt (a corpus).
    """
    folder = path.parent if str(path.parent) else Path(".")
    try:
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{path.name}.")
    except OSError as exc:
        raise OutputError(f"{path}: cannot be written ({exc.strerror or exc})") from None
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            if fsync:
                handle.flush()
                os.fsync(handle.fileno())
        os.chmod(tmp, 0o666 & ~current_umask())  # mkstemp makes the file private; give it the usual mode
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise OutputError(f"{path}: cannot be written ({exc.strerror or exc})") from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_bytes_atomic(path: Path, data: bytes, force: bool = False) -> Path:
    """Check the output path (see ``check_output``), then write it atomically."""
    check_output(path, force)
    write_atomic(path, data)
    return path


def current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def numbered_paths(path: Path, count: int) -> list[Path]:
    """``OUT.mid`` for one output; ``OUT-1.mid`` … ``OUT-N.mid`` for several."""
    if count == 1:
        return [path]
    return [path.with_name(f"{path.stem}-{i}{path.suffix}") for i in range(1, count + 1)]


def prepare_out_dir(out_dir: Path) -> None:
    """Create ``out_dir`` if needed and check that files can be written in it."""
    if out_dir.exists() and not out_dir.is_dir():
        raise OutputError(f"{out_dir}: exists and is not a folder")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        probe = out_dir / ".write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise OutputError(f"{out_dir}: cannot write there ({exc.strerror or exc})") from None
