"""Output files and folders: never overwritten unasked, even by a race; no temporary files left."""

from __future__ import annotations

import errno
import os
import tempfile
from pathlib import Path
from typing import Any

import pytest

import composer.io.outputs as outputs
from composer.errors import OutputError
from composer.io.outputs import (
    check_output,
    install_dir,
    prepare_out_dir,
    write_atomic,
    write_bytes_atomic,
)


def _names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def _appears_meanwhile(monkeypatch: pytest.MonkeyPatch, target: Path, data: bytes = b"theirs") -> None:
    """Another process writes ``target`` after the check, while ours is being written."""
    real = tempfile.mkstemp

    def mkstemp(*args: Any, **kwargs: Any) -> tuple[int, str]:
        made = real(*args, **kwargs)
        target.write_bytes(data)
        return made

    monkeypatch.setattr(outputs.tempfile, "mkstemp", mkstemp)


def test_a_file_that_appears_after_the_check_is_not_overwritten(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "piece.mid"
    _appears_meanwhile(monkeypatch, target)
    with pytest.raises(OutputError, match=r"piece\.mid: already exists; pass --force to overwrite it"):
        write_bytes_atomic(target, b"ours")
    assert target.read_bytes() == b"theirs"
    assert _names(tmp_path) == ["piece.mid"]  # no temporary file left


def test_force_replaces_and_leaves_nothing_else(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "piece.mid"
    target.write_bytes(b"old")
    with pytest.raises(OutputError, match="--force"):
        write_bytes_atomic(target, b"new")
    write_bytes_atomic(target, b"new", force=True)
    assert target.read_bytes() == b"new"
    _appears_meanwhile(monkeypatch, tmp_path / "late.mid")
    write_bytes_atomic(tmp_path / "late.mid", b"ours", force=True)
    assert (tmp_path / "late.mid").read_bytes() == b"ours"
    assert _names(tmp_path) == ["late.mid", "piece.mid"]


def test_a_new_file_is_written_whole_with_the_usual_mode(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    synced: list[Path] = []
    monkeypatch.setattr(outputs, "fsync_dir", synced.append)
    target = write_bytes_atomic(tmp_path / "a.mid", b"x" * 10_000)
    assert target.read_bytes() == b"x" * 10_000
    assert synced == [tmp_path]  # the folder is flushed after the rename, so the name survives a crash
    assert (target.stat().st_mode & 0o777) == 0o666 & ~outputs.current_umask()
    assert _names(tmp_path) == ["a.mid"]


def test_a_failed_write_leaves_no_temporary_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "a.mid"
    target.write_bytes(b"before")

    def full_disk(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(outputs.os, "fsync", full_disk)
    with pytest.raises(OutputError, match="No space left on device"):
        write_atomic(target, b"after")
    with pytest.raises(OutputError, match="No space left on device"):
        write_bytes_atomic(tmp_path / "b.mid", b"after")
    assert target.read_bytes() == b"before"
    assert _names(tmp_path) == ["a.mid"]


def test_without_hard_links_the_name_is_still_claimed_atomically(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_links(source: object, target: object) -> None:
        raise OSError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(outputs.os, "link", no_links)
    write_bytes_atomic(tmp_path / "a.mid", b"ours")
    assert (tmp_path / "a.mid").read_bytes() == b"ours"
    _appears_meanwhile(monkeypatch, tmp_path / "b.mid")
    with pytest.raises(OutputError, match="already exists"):
        write_bytes_atomic(tmp_path / "b.mid", b"ours")
    assert (tmp_path / "b.mid").read_bytes() == b"theirs"
    assert _names(tmp_path) == ["a.mid", "b.mid"]


def test_check_output_refuses_folders_and_missing_folders(tmp_path: Path) -> None:
    with pytest.raises(OutputError, match="is a folder"):
        check_output(tmp_path)
    with pytest.raises(OutputError, match="does not exist"):
        check_output(tmp_path / "no" / "a.mid")
    with pytest.raises(OutputError, match="cannot be written"):
        write_atomic(tmp_path / "no" / "a.mid", b"")


def test_install_dir_refuses_a_folder_that_appeared_and_replaces_with_force(tmp_path: Path) -> None:
    def finished(name: str, text: str) -> Path:
        folder = tmp_path / name
        folder.mkdir()
        (folder / "file.txt").write_text(text)
        return folder

    target = finished("bundle", "theirs")
    new = finished(".tmp-1", "ours")
    with pytest.raises(OutputError, match=r"exists and is not empty; pass --force"):
        install_dir(new, target)
    assert (target / "file.txt").read_text() == "theirs" and new.is_dir()
    install_dir(new, target, force=True)
    assert (target / "file.txt").read_text() == "ours"
    assert _names(tmp_path) == ["bundle"]  # neither the temporary nor the old folder is left
    (tmp_path / "empty").mkdir()
    install_dir(finished(".tmp-2", "x"), tmp_path / "empty")  # an empty folder is no one's work
    assert (tmp_path / "empty" / "file.txt").read_text() == "x"


def test_prepare_out_dir_leaves_no_probe(tmp_path: Path) -> None:
    prepare_out_dir(tmp_path / "a" / "b")
    prepare_out_dir(tmp_path / "a" / "b")  # reusing a folder is fine
    assert _names(tmp_path / "a" / "b") == []
    (tmp_path / "f").write_text("")
    with pytest.raises(OutputError, match="not a folder"):
        prepare_out_dir(tmp_path / "f")
    if os.name == "posix" and os.geteuid() != 0:
        (tmp_path / "ro").mkdir(mode=0o500)
        with pytest.raises(OutputError, match="cannot write there"):
            prepare_out_dir(tmp_path / "ro")
