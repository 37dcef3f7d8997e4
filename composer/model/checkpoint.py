"""Training checkpoints on disk: atomic, verified, resumable.

A checkpoint is a folder ``step-NNNNNNN/`` holding ``model.safetensors`` (weights),
``state.pt`` (optimizer, step, RNG states; tensors and plain containers only, so it
loads with ``weights_only=True``), ``config.json`` and ``checksums.json``. It is
written to a temporary folder, fsynced and renamed into place, so a crash never
leaves a half-written checkpoint under a real name. ``best`` is a copy of the
checkpoint with the lowest validation loss.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from composer.errors import ComposerError
from composer.io.digest import sha256_file
from composer.io.outputs import fsync_dir

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)

WEIGHTS = "model.safetensors"
STATE = "state.pt"
CONFIG = "config.json"
CHECKSUMS = "checksums.json"
PREFIX = "step-"
RUN_CHECKPOINTS = "checkpoints"  # a run folder's checkpoint folder
RUN_SUMMARY = "summary.json"  # written when a training run ends


class CheckpointError(ComposerError):
    """A checkpoint is missing, truncated or altered."""


def save_checkpoint(folder: Path, step: int, model: torch.nn.Module, state: dict[str, Any],
                    config: dict[str, Any], keep: int = 2) -> Path:
    """Write ``folder/step-<step>/`` atomically and keep only the newest ``keep`` steps."""
    import torch
    from safetensors.torch import save_model

    folder.mkdir(parents=True, exist_ok=True)
    final = folder / f"{PREFIX}{step:07d}"
    tmp = Path(tempfile.mkdtemp(dir=folder, prefix=".tmp-"))
    try:
        save_model(model, str(tmp / WEIGHTS))
        torch.save(state, tmp / STATE)
        (tmp / CONFIG).write_text(json.dumps(config, indent=2), encoding="utf-8")
        sums = {name: sha256_file(tmp / name) for name in (WEIGHTS, STATE, CONFIG)}
        (tmp / CHECKSUMS).write_text(json.dumps(sums, indent=2), encoding="utf-8")
        for name in (WEIGHTS, STATE, CONFIG, CHECKSUMS):
            with (tmp / name).open("rb") as handle:
                os.fsync(handle.fileno())
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
        fsync_dir(folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    for old in list_checkpoints(folder)[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def copy_checkpoint(source: Path, target: Path) -> None:
    """Replace ``target`` by a copy of ``source`` (e.g. the best checkpoint), atomically."""
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=".tmp-"))
    try:
        for item in source.iterdir():
            shutil.copy2(item, tmp / item.name)
            with (tmp / item.name).open("rb") as handle:
                os.fsync(handle.fileno())  # a copy is only as durable as its flush
        old = target.with_name(target.name + ".old")
        if target.exists():
            os.replace(target, old)
        os.replace(tmp, target)
        fsync_dir(target.parent)
        shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def recover_checkpoints(folder: Path) -> None:
    """Tidy what a process killed while writing checkpoints leaves behind.

    Half-written ``.tmp-*`` folders are removed; a ``best`` caught between its old and
    new copy (only ``best.old`` left) is put back.
    """
    if not folder.is_dir():
        return
    for leftover in folder.glob(".tmp-*"):
        shutil.rmtree(leftover, ignore_errors=True)
    for old in folder.glob("*.old"):
        current = old.with_name(old.name[: -len(".old")])
        if current.exists():
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(old, current)
            log.warning("restored %s from the copy an interrupted run left", current)


def list_checkpoints(folder: Path) -> list[Path]:
    """Step checkpoints in ``folder``, oldest first."""
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.is_dir() and p.name.startswith(PREFIX))


def verify_checkpoint(path: Path) -> None:
    """Raise ``CheckpointError`` unless every file is present and matches its checksum."""
    sums_path = path / CHECKSUMS
    try:
        sums = json.loads(sums_path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        raise CheckpointError(f"{path}: incomplete checkpoint (no readable {CHECKSUMS})") from None
    for name in (WEIGHTS, STATE, CONFIG):
        file = path / name
        if not file.is_file():
            raise CheckpointError(f"{path}: incomplete checkpoint ({name} is missing)")
        if sha256_file(file) != sums.get(name):
            raise CheckpointError(f"{path}: {name} is corrupt or truncated (checksum mismatch)")


def load_checkpoint(path: Path, model: torch.nn.Module) -> tuple[dict[str, Any], dict[str, Any]]:
    """Load weights into ``model``; return (state, config). Verifies checksums first."""
    import torch
    from safetensors.torch import load_model

    verify_checkpoint(path)
    try:
        missing, unexpected = load_model(model, str(path / WEIGHTS), strict=False)
        state = torch.load(path / STATE, map_location="cpu", weights_only=True)
    except Exception as exc:  # safetensors / torch report corruption in many ways
        raise CheckpointError(f"{path}: cannot be loaded ({exc})") from None
    real_missing = [m for m in missing if m != "head.weight"]  # tied to the embedding
    if real_missing or unexpected:
        raise CheckpointError(f"{path}: weights do not fit the model (missing {real_missing[:3]}, "
                              f"unexpected {unexpected[:3]})")
    config = json.loads((path / CONFIG).read_text(encoding="utf-8"))
    return state, config


def newest_valid_checkpoint(folder: Path) -> Path | None:
    """The newest step checkpoint that verifies, warning about any newer broken ones."""
    for path in reversed(list_checkpoints(folder)):
        try:
            verify_checkpoint(path)
            return path
        except CheckpointError as exc:
            log.warning("skipping %s", exc)
    return None
