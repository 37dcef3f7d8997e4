"""Writing output files safely: never overwrite without ``force``, always atomically.

A file is written to a temporary file in the target's folder and fsynced first. Then,
with ``force``, ``os.replace`` swaps it in; without, ``os.link`` gives it the target's
name, which fails if that name exists, so a file that appeared after ``check_output``
looked is never overwritten. Folders (model bundles) follow the same rule through
``install_dir``. After a rename the folder itself is fsynced, so the new name survives
a power cut.
"""

from __future__ import annotations

import errno
import os
import shutil
import tempfile
from pathlib import Path

from composer.errors import OutputError

# os.link fails with these where a file system has no hard links (FAT, some network shares)
_NO_HARD_LINKS = {errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP, errno.ENOSYS, errno.EMLINK, errno.EXDEV}


def check_output(path: Path, force: bool = False) -> None:
    """Refuse an output path that exists (without ``force``), is a folder, or cannot be written.

    An early, friendly check before the work; the write itself checks again atomically.
    """
    if path.is_dir():
        raise OutputError(f"{path}: is a folder; give a file name")
    if path.exists() and not force:
        raise _exists(path)
    parent = _folder(path)
    if not parent.is_dir():
        raise OutputError(f"{path}: the folder {parent} does not exist")
    if not os.access(parent, os.W_OK):
        raise OutputError(f"{path}: the folder {parent} is not writable")


def write_atomic(path: Path, data: bytes, fsync: bool = True, *, replace: bool = True) -> None:
    """Write ``data`` via a temporary file in the same folder, fsync and rename: all or nothing.

    ``replace=False`` refuses (``OutputError``) when ``path`` exists at the moment of the
    rename, however late it appeared. ``fsync=False`` skips the flushes to disk, for many
    files that can be rebuilt (a corpus). No temporary file is left behind either way.
    """
    folder = _folder(path)
    try:
        fd, tmp_name = tempfile.mkstemp(dir=folder, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise OutputError(f"{path}: cannot be written ({exc.strerror or exc})") from None
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            if fsync:
                handle.flush()
                os.fsync(handle.fileno())
        os.chmod(tmp, 0o666 & ~current_umask())  # mkstemp makes the file private; give it the usual mode
        if replace:
            os.replace(tmp, path)
        else:
            _link_new(tmp, path)
        if fsync:
            fsync_dir(folder)
    except OSError as exc:
        raise OutputError(f"{path}: cannot be written ({exc.strerror or exc})") from None
    finally:
        tmp.unlink(missing_ok=True)  # after os.replace it is gone; after os.link it is a second name


def _link_new(tmp: Path, path: Path) -> None:
    """Give ``tmp`` the name ``path`` only if that name is free (the check and the act are one)."""
    try:
        os.link(tmp, path)
        return
    except FileExistsError:
        raise _exists(path) from None
    except OSError as exc:
        if exc.errno not in _NO_HARD_LINKS:
            raise
    # No hard links here: claim the name with O_EXCL (also atomic), then move the data over it.
    # A reader may briefly see an empty file, but nothing that was there is ever overwritten.
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
    except FileExistsError:
        raise _exists(path) from None
    try:
        os.replace(tmp, path)
    except OSError:
        path.unlink(missing_ok=True)  # our own empty claim, not someone else's file
        raise


def write_bytes_atomic(path: Path, data: bytes, force: bool = False) -> Path:
    """Check the output path (see ``check_output``), then write it atomically.

    Without ``force`` a file that appears at ``path`` in between is not overwritten: the
    write fails with the same ``OutputError`` as the check.
    """
    check_output(path, force)
    write_atomic(path, data, replace=force)
    return path


def install_dir(tmp: Path, target: Path, force: bool = False) -> None:
    """Move the finished folder ``tmp`` to ``target`` (a sibling), atomically.

    Without ``force`` an existing non-empty ``target`` is refused, even one that appeared
    after an earlier check (a rename onto a non-empty folder fails). With ``force`` the
    old folder is moved aside first and removed only once the new one is in place, so a
    crash leaves one of the two under ``target``'s name or next to it as ``.NAME.old``.
    """
    parent = _folder(target)
    old = parent / f".{target.name}.old"
    moved_aside = False
    try:
        if force and target.exists():
            if old.exists():
                shutil.rmtree(old)  # left by a crash in an earlier replace
            os.replace(target, old)
            moved_aside = True
        os.replace(tmp, target)
    except OSError as exc:
        if moved_aside and not target.exists():
            os.replace(old, target)  # put the old folder back
        if exc.errno in (errno.ENOTEMPTY, errno.EEXIST, errno.EISDIR, errno.ENOTDIR) or target.exists():
            raise OutputError(f"{target}: exists and is not empty; pass --force to replace it") from None
        raise OutputError(f"{target}: cannot be written ({exc.strerror or exc})") from None
    fsync_dir(parent)
    shutil.rmtree(old, ignore_errors=True)


def fsync_dir(path: Path) -> None:
    """Flush a folder's entries (a rename in it) to disk; a no-op where folders cannot be opened."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return  # Windows cannot open folders; its renames are journaled by NTFS
    try:
        os.fsync(fd)
    except OSError:
        pass  # some file systems refuse fsync on a folder; the data itself was flushed
    finally:
        os.close(fd)


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
    """Create ``out_dir`` if needed and check that files can be written in it.

    Output folders are meant to be reused (a corpus or token folder is updated in place),
    so an existing folder is fine; what goes into it is written with ``write_atomic``.
    """
    if out_dir.exists() and not out_dir.is_dir():
        raise OutputError(f"{out_dir}: exists and is not a folder")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        # a probe with a unique name: two processes preparing one folder must not collide
        fd, probe = tempfile.mkstemp(dir=out_dir, prefix=".write-test.")
        os.close(fd)
        os.unlink(probe)
    except FileExistsError:
        raise OutputError(f"{out_dir}: exists and is not a folder") from None
    except OSError as exc:
        raise OutputError(f"{out_dir}: cannot write there ({exc.strerror or exc})") from None


def _folder(path: Path) -> Path:
    return path.parent if str(path.parent) else Path(".")


def _exists(path: Path) -> OutputError:
    return OutputError(f"{path}: already exists; pass --force to overwrite it")
