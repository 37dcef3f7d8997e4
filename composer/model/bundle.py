"""A trained model on disk: safetensors weights, JSON config, tokenizer, model card.

``models/<name>/`` holds ``model.safetensors``, ``config.json`` (model settings,
styles, tokenizer, training summary and the sha256 of every other file),
``tokenizer.json``, ``MODEL_CARD.md``, ``harmony.json`` when the corpus gave chord counts
(per style, ``music.harmony.ChordCounts``, which ``harmonize`` plans with), ``lines.json``
when the corpus gave step counts (per style, ``music.lines.LineCounts`` of the corpus and,
once ``add_bundle_file`` has added them, of the model's own samples) and, when
exported with a report, ``evaluation/``
(a ``composer evaluate`` report: report.json, report.md, plots). ``config.json``'s
``files`` maps each of those files, ``evaluation/NAME`` ones included, to its sha256.
Loading verifies every checksum, refuses a file in ``evaluation/`` that is not listed,
and refuses pickles anywhere in the folder: weights are only ever read from safetensors.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path, PurePosixPath
from typing import Any

from composer.errors import ComposerError, OutputError
from composer.io.outputs import current_umask, install_dir, write_atomic
from composer.model.checkpoint import (
    RUN_CHECKPOINTS,
    RUN_SUMMARY,
    WEIGHTS,
    newest_valid_checkpoint,
    sha256_file,
    verify_checkpoint,
)

CONFIG = "config.json"
TOKENIZER = "tokenizer.json"
CARD = "MODEL_CARD.md"
HARMONY = "harmony.json"  # style → its chord counts (the styles' "chords" of the corpus summary)
LINES = "lines.json"  # {"corpus": style → step counts, "model": style → step counts of its samples}
REPORT_FOLDER = "evaluation"  # a `composer evaluate` report of the bundle's weights
BUNDLE_FORMAT = 1
PICKLE_MAGIC = (b"\x80\x02", b"\x80\x03", b"\x80\x04", b"\x80\x05")


class BundleError(ComposerError):
    """A model bundle is missing, incomplete, altered or unsafe."""


@dataclass(frozen=True)
class Bundle:
    path: Path
    config: dict[str, Any]  # the bundle's config.json

    @property
    def name(self) -> str:
        return str(self.config.get("name", self.path.name))

    @property
    def styles(self) -> dict[str, dict[str, Any]]:
        return dict(self.config.get("styles", {}))

    @property
    def weights_sha256(self) -> str:
        return str(self.config["files"][WEIGHTS])

    @property
    def tokenizer_path(self) -> Path:
        return self.path / TOKENIZER

    @cached_property
    def chord_counts(self) -> dict[str, dict[str, Any]]:
        """Style → its chord counts as ``ChordCounts.to_json`` wrote them; {} when the
        bundle has none (one exported before them, or from a corpus of single lines)."""
        counts = self._json_file(HARMONY)
        if not isinstance(counts, dict):
            raise BundleError(f"{self.path / HARMONY}: not a mapping of styles to chord counts")
        return counts

    @cached_property
    def line_counts(self) -> dict[str, Any]:
        """``lines.json``: {"corpus": style → ``LineCounts.to_json``, "model": the same for
        the model's own samples, ...}; {} when the bundle has none."""
        counts = self._json_file(LINES)
        if not isinstance(counts, dict) or not all(isinstance(counts.get(k, {}), dict)
                                                   for k in ("corpus", "model")):
            raise BundleError(f"{self.path / LINES}: not a mapping of sources to step counts")
        return counts

    def _json_file(self, name: str) -> Any:
        """The JSON file ``name`` of the bundle, {} when config.json does not list it."""
        if name not in self.config["files"]:
            return {}
        try:
            return json.loads((self.path / name).read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise BundleError(f"{self.path / name}: unreadable ({exc})") from None

    def load_arrays(self) -> dict[str, Any]:
        """The weights as numpy arrays by parameter name, without torch (safetensors' numpy API)."""
        from safetensors.numpy import load_file

        try:
            return load_file(str(self.path / WEIGHTS))
        except Exception as exc:  # safetensors raises its own errors for a damaged header
            raise BundleError(f"{self.path / WEIGHTS}: cannot be loaded ({exc})") from None

    def load_model(self, device: str = "cpu") -> Any:
        """The ``MusicTransformer`` with the bundle's weights, in eval mode."""
        from safetensors.torch import load_model

        from composer.model.config import ModelConfig
        from composer.model.transformer import MusicTransformer

        model = MusicTransformer(ModelConfig.from_dict(self.config["model"]))
        try:
            missing, unexpected = load_model(model, str(self.path / WEIGHTS), strict=False, device=device)
        except Exception as exc:
            raise BundleError(f"{self.path / WEIGHTS}: cannot be loaded ({exc})") from None
        if [m for m in missing if m != "head.weight"] or unexpected:
            raise BundleError(f"{self.path}: weights do not match config.json")
        return model.to(device).eval()


def _looks_like_pickle(path: Path) -> bool:
    with path.open("rb") as handle:
        head = handle.read(4)
    if head[:2] in PICKLE_MAGIC:
        return True
    if head == b"PK\x03\x04":  # a torch.save zip archive carries data.pkl
        import zipfile

        try:
            with zipfile.ZipFile(path) as archive:
                return any(n.endswith(".pkl") for n in archive.namelist())
        except zipfile.BadZipFile:
            return False
    return False


def load_bundle(path: Path) -> Bundle:
    """Open and verify a bundle; ``BundleError`` names what is wrong."""
    if not path.is_dir():
        raise BundleError(f"{path}: no model bundle here (expected a folder with {CONFIG})")
    config_path = path / CONFIG
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BundleError(f"{path}: not a model bundle ({CONFIG} is missing)") from None
    except (OSError, json.JSONDecodeError) as exc:
        raise BundleError(f"{config_path}: unreadable ({exc})") from None
    files = config.get("files")
    if not isinstance(files, dict) or WEIGHTS not in files:
        raise BundleError(f"{config_path}: lists no checksummed files; export the model again")
    for item in sorted(path.rglob("*")):  # sub-folders too: evaluation/ (and anything planted)
        if item.is_file() and _looks_like_pickle(item):
            raise BundleError(f"{item}: carries a Python pickle; composer never loads pickles")
    for name in files:
        if not _plain_name(name):
            raise BundleError(f"{config_path}: lists '{name}', which is not a file inside the bundle")
    report = path / REPORT_FOLDER
    if report.is_dir():
        for item in sorted(report.rglob("*")):
            if not item.is_dir() and item.relative_to(path).as_posix() not in files:
                raise BundleError(f"{item}: not covered by config.json's checksums (added after export?); "
                                  "remove it, or export the bundle again with --evaluation REPORT")
    for name, expected in files.items():
        file = path / name
        if not file.is_file():
            raise BundleError(f"{path}: {name} is missing")
        if sha256_file(file) != expected:
            raise BundleError(f"{file}: sha256 does not match config.json (altered or corrupt)")
    return Bundle(path, config)


def _plain_name(name: object) -> bool:
    """A relative path inside the bundle, written with '/': no '..', no absolute path, and no
    backslash or drive colon, which would leave the bundle on Windows."""
    if not isinstance(name, str) or not name or "\\" in name or ":" in name:
        return False
    path = PurePosixPath(name)
    return not path.is_absolute() and ".." not in path.parts


def _rounded(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, float) else str(value if value is not None else "?")


def _model_card(config: dict[str, Any], notes: str = "") -> str:
    model = config["model"]
    training = config.get("training", {})
    styles = config.get("styles", {})
    style_rows = "\n".join(
        f"| `{name}` | {info.get('pieces', '?')} ({info.get('train_pieces', '?')}) "
        f"| {info.get('val_loss', '?')} "
        f"| {info.get('description', '')} |"
        for name, info in styles.items()
    )
    return f"""# {config["name"]}

A decoder-only transformer that writes symbolic music (REMI + BPE tokens) in one of
{len(styles)} styles. Made with `composer export`.

## Architecture
- {model["n_layer"]} layers, {model["n_head"]} heads, width {model["n_embd"]}, context
  {model["block_size"]} tokens, vocabulary {model["vocab_size"]}; rotary positions, tied embeddings.
- {config.get("parameters", 0) / 1e6:.2f} M parameters.

## Training
- Steps: {training.get("steps", "?")}; final training loss {_rounded(training.get("final_loss"))};
  best validation loss {_rounded(training.get("best_val_loss"))} (nats per token).
- Checkpoint: `{training.get("checkpoint", "?")}`.

## Styles
| style | pieces (train) | val loss (nats/token) | description |
|---|---|---|---|
{style_rows}

## Intended use and limits
For composition sketches, teaching and research. The model may echo phrases of its
training corpus; every MIDI file it writes carries a provenance text event naming the
model, its hash, the style, the seed and the settings.
{notes}"""


def export_bundle(
    run_dir: Path,
    out_dir: Path,
    tokenizer_path: Path | None = None,
    styles: dict[str, dict[str, Any]] | None = None,
    checkpoint: str = "best",
    force: bool = False,
    notes: str = "",
    evaluation: dict[str, Any] | None = None,
    report_dir: Path | None = None,
) -> Bundle:
    """Write a bundle from a run's ``best`` (or newest) checkpoint.

    ``notes`` (Markdown) is appended to the model card; ``evaluation`` (e.g. validation
    loss per style measured on the exported weights) is stored in config.json.
    ``report_dir`` (a ``composer evaluate`` report of these same weights) is copied into
    the bundle's ``evaluation/`` folder.
    """
    ckpt_dir = run_dir / RUN_CHECKPOINTS
    source = ckpt_dir / checkpoint if checkpoint else None
    if source is None or not source.is_dir():
        source = newest_valid_checkpoint(ckpt_dir)
    if source is None:
        raise BundleError(f"{run_dir}: no checkpoint to export; train first")
    verify_checkpoint(source)
    report_files = _report_files(report_dir, sha256_file(source / WEIGHTS)) if report_dir else []
    saved = json.loads((source / "config.json").read_text(encoding="utf-8"))
    state_summary = (
        json.loads((run_dir / RUN_SUMMARY).read_text(encoding="utf-8"))
        if (run_dir / RUN_SUMMARY).is_file()
        else {}
    )
    tokenizer_path = tokenizer_path or run_dir / TOKENIZER
    if not tokenizer_path.is_file():
        raise BundleError(f"{tokenizer_path}: tokenizer file not found; pass --tokenizer")
    if out_dir.exists() and any(out_dir.iterdir()) and not force:
        raise OutputError(f"{out_dir}: exists and is not empty; pass --force to replace it")
    meta = saved.get("tokens", {}).get("meta", {})
    style_info = {name: dict(entry) for name, entry in styles.items()} if styles else \
        {name: {} for name in meta.get("style_ids", {}) if name != "any"}
    chords = {name: entry.pop("chords") for name, entry in style_info.items() if entry.get("chords")}
    lines = {name: entry.pop("lines") for name, entry in style_info.items() if entry.get("lines")}
    from safetensors import safe_open

    with safe_open(str(source / WEIGHTS), framework="pt") as handle:
        parameters = sum(_prod(handle.get_slice(k).get_shape()) for k in handle.keys())  # noqa: SIM118
    config: dict[str, Any] = {
        "format": BUNDLE_FORMAT,
        "name": out_dir.name,
        "model": saved["train"]["model"],
        "styles": style_info,
        "style_ids": meta.get("style_ids", {}),
        "tokenizer": {"file": TOKENIZER, "sha256": sha256_file(tokenizer_path)},
        "parameters": parameters,
        "training": {
            "checkpoint": source.name,
            **state_summary,
            "settings": {k: v for k, v in saved["train"].items() if k != "model"},
        },
        "evaluation": evaluation or {},
    }
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out_dir.parent, prefix=f".{out_dir.name}-"))
    os.chmod(tmp, 0o777 & ~current_umask())  # mkdtemp makes the folder private; a bundle is for sharing
    try:
        shutil.copy2(source / WEIGHTS, tmp / WEIGHTS)
        shutil.copy2(tokenizer_path, tmp / TOKENIZER)
        (tmp / CARD).write_text(_model_card(config, notes), encoding="utf-8")
        names = [WEIGHTS, TOKENIZER, CARD]
        if chords:
            (tmp / HARMONY).write_text(json.dumps(chords, separators=(",", ":")) + "\n", encoding="utf-8")
            names.append(HARMONY)
        if lines:
            (tmp / LINES).write_text(json.dumps({"corpus": lines}) + "\n", encoding="utf-8")
            names.append(LINES)
        if report_files:
            (tmp / REPORT_FOLDER).mkdir()
            for file in report_files:
                shutil.copy2(file, tmp / REPORT_FOLDER / file.name)
                names.append(f"{REPORT_FOLDER}/{file.name}")
        config["files"] = {name: sha256_file(tmp / name) for name in names}
        (tmp / CONFIG).write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
        _fsync_tree(tmp)
        install_dir(tmp, out_dir, force=force)  # refuses a folder that appeared meanwhile, unless force
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return load_bundle(out_dir)


def add_bundle_file(path: Path, name: str, text: str) -> Bundle:
    """Write (or replace) the file ``name`` of the bundle at ``path``, then its checksum in
    config.json, each atomically: an interruption leaves the old file or a bundle that
    refuses to load, never a silently unchecked one."""
    bundle = load_bundle(path)
    if not _plain_name(name) or "/" in name or name in (CONFIG, WEIGHTS):
        raise BundleError(f"{name}: not a file a bundle can gain")
    write_atomic(path / name, text.encode("utf-8"))
    config = {**bundle.config, "files": {**bundle.config["files"], name: sha256_file(path / name)}}
    write_atomic(path / CONFIG, (json.dumps(config, indent=2) + "\n").encode("utf-8"))
    return load_bundle(path)


def _fsync_tree(folder: Path) -> None:
    """Flush every file of a finished bundle to disk before it is renamed into place."""
    for file in folder.rglob("*"):
        if file.is_file():
            with file.open("rb") as handle:
                os.fsync(handle.fileno())


def _report_files(report_dir: Path, weights_sha256: str) -> list[Path]:
    """The files of an evaluation report, after checking it was made with these weights."""
    try:
        report = json.loads((report_dir / "report.json").read_text(encoding="utf-8"))
        measured = str(report["model"]["sha256"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise BundleError(f"{report_dir}: not a 'composer evaluate' report ({exc})") from None
    if not measured or not weights_sha256.startswith(measured):
        raise BundleError(f"{report_dir}: evaluates other weights ({measured}) than this checkpoint's "
                          f"({weights_sha256[:16]}); run 'composer evaluate' on the exported model")
    return sorted(p for p in report_dir.iterdir() if p.is_file() and p.suffix in (".json", ".md", ".png"))


def _prod(shape: list[int]) -> int:
    total = 1
    for dim in shape:
        total *= dim
    return total
