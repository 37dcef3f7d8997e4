from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from test_train import tiny_config
from tokens_fixture import write_token_shards

from composer.errors import ConfigError, OutputError
from composer.model.bundle import BundleError, export_bundle, load_bundle
from composer.model.checkpoint import load_checkpoint, sha256_file
from composer.model.transformer import MusicTransformer
from composer.recipe import ExportConfig, export_run
from composer.train.loop import train


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("bundle")
    tokens = write_token_shards(root / "tok")
    (tokens / "tokenizer.json").write_text(json.dumps({"stand-in": "tokenizer"}))
    train(tokens, root / "run", tiny_config(max_steps=10, eval_every=5))
    return root / "run"


def test_export_then_load_gives_identical_logits(trained_run: Path, tmp_path: Path) -> None:
    bundle = export_bundle(trained_run, tmp_path / "models" / "tiny")
    assert {p.name for p in bundle.path.iterdir()} == {
        "model.safetensors", "config.json", "tokenizer.json", "MODEL_CARD.md"}
    assert set(bundle.styles) == {"bach", "irish"}
    model = bundle.load_model()
    reference = MusicTransformer(model.config)
    load_checkpoint(trained_run / "checkpoints" / "best", reference)
    ids = torch.randint(0, model.config.vocab_size, (2, 30))
    with torch.no_grad():
        assert torch.equal(model(ids)[0], reference.eval()(ids)[0])
    card = (bundle.path / "MODEL_CARD.md").read_text()
    assert "2 layers" in card and "bach" in card


def test_tampered_or_pickled_bundle_is_refused(trained_run: Path, tmp_path: Path) -> None:
    bundle = export_bundle(trained_run, tmp_path / "b")
    weights = bundle.path / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(BundleError, match="sha256 does not match"):
        load_bundle(bundle.path)
    other = export_bundle(trained_run, tmp_path / "c")
    torch.save({"x": torch.zeros(1)}, other.path / "extra.pt")
    with pytest.raises(BundleError, match="pickle"):
        load_bundle(other.path)


def test_export_refuses_to_overwrite_and_reports_missing(trained_run: Path, tmp_path: Path) -> None:
    target = tmp_path / "d"
    export_bundle(trained_run, target)
    with pytest.raises(OutputError, match="--force"):
        export_bundle(trained_run, target)
    export_bundle(trained_run, target, force=True)
    with pytest.raises(BundleError, match="no model bundle"):
        load_bundle(tmp_path / "nothing")
    with pytest.raises(BundleError, match="no checkpoint"):
        export_bundle(tmp_path, tmp_path / "e")


def test_export_with_evaluation_and_notes(trained_run: Path, tmp_path: Path) -> None:
    from click.testing import CliRunner

    from composer.cli import cli

    notes = tmp_path / "notes.md"
    notes.write_text("\n## What it sounds like\nRandom-ish motifs.\n")
    tokens = trained_run.parent / "tok"
    result = CliRunner().invoke(cli, ["export", str(trained_run), "-o", str(tmp_path / "m"),
                                      "--tokens", str(tokens), "--eval-windows", "10",
                                      "--notes", str(notes)])
    assert result.exit_code == 0, result.output
    bundle = load_bundle(tmp_path / "m")
    assert set(bundle.config["evaluation"]["val_loss_by_style"]) == {"bach", "irish"}
    assert "val_loss" in bundle.styles["bach"]
    assert "What it sounds like" in (bundle.path / "MODEL_CARD.md").read_text()
    missing = CliRunner().invoke(cli, ["export", str(trained_run), "-o", str(tmp_path / "n"),
                                       "--notes", str(tmp_path / "none.md")])
    assert missing.exit_code == 2 and missing.output.startswith("error:") and "none.md" in missing.output
    assert not (tmp_path / "n").exists()


def test_a_pickle_with_a_matching_checksum_is_still_refused(trained_run: Path, tmp_path: Path) -> None:
    bundle = export_bundle(trained_run, tmp_path / "p")
    weights = bundle.path / "model.safetensors"
    torch.save({"weights": torch.zeros(2)}, weights)  # a pickle in the weights' place ...
    config = json.loads((bundle.path / "config.json").read_text())
    config["files"]["model.safetensors"] = sha256_file(weights)  # ... with its checksum updated
    (bundle.path / "config.json").write_text(json.dumps(config))
    with pytest.raises(BundleError, match="pickle"):
        load_bundle(bundle.path)


def test_nothing_is_ever_unpickled() -> None:
    """No ``weights_only=False`` anywhere, and every ``torch.load`` says ``weights_only=True``."""
    import re

    root = Path(__file__).resolve().parents[1]
    for path in [*(root / "composer").rglob("*.py"), *(root / "benchmarks").rglob("*.py")]:
        text = path.read_text(encoding="utf-8")
        assert "weights_only=False" not in text, path
        assert "pickle.load" not in text, path
        for call in re.findall(r"torch\.load\(([^)]*)\)", text):
            assert "weights_only=True" in call, (path, call)


def _report(folder: Path, weights_sha256: str) -> Path:
    """A stand-in `composer evaluate` report of the given weights."""
    folder.mkdir()
    (folder / "report.json").write_text(json.dumps({"model": {"sha256": weights_sha256[:16]}}))
    (folder / "report.md").write_text("# Evaluation\nbits per note 4.7\n")
    (folder / "plot.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(32))
    return folder


def _with_report(trained_run: Path, tmp_path: Path, name: str) -> Path:
    weights = sha256_file(trained_run / "checkpoints" / "best" / "model.safetensors")
    report = tmp_path / f"{name}-report"
    if not report.exists():
        _report(report, weights)
    return export_bundle(trained_run, tmp_path / name, report_dir=report).path


def test_the_evaluation_folder_is_checksummed(trained_run: Path, tmp_path: Path) -> None:
    path = _with_report(trained_run, tmp_path, "b")
    files = json.loads((path / "config.json").read_text())["files"]
    assert {n for n in files if n.startswith("evaluation/")} == {
        "evaluation/report.json", "evaluation/report.md", "evaluation/plot.png"}
    for name, digest in files.items():
        assert sha256_file(path / name) == digest
    load_bundle(path)
    report = path / "evaluation" / "report.md"
    report.write_text(report.read_text().replace("4.7", "2.1"))  # a better figure, by hand
    with pytest.raises(BundleError, match=r"evaluation/report\.md: sha256 does not match config\.json"):
        load_bundle(path)
    report.unlink()
    with pytest.raises(BundleError, match=r"evaluation/report\.md is missing"):
        load_bundle(path)


def test_a_pickle_or_a_stray_file_in_the_evaluation_folder_is_refused(trained_run: Path,
                                                                       tmp_path: Path) -> None:
    path = _with_report(trained_run, tmp_path, "p")
    torch.save({"x": torch.zeros(1)}, path / "evaluation" / "extra.pt")
    with pytest.raises(BundleError, match=r"evaluation/extra\.pt: carries a Python pickle"):
        load_bundle(path)
    # listed with its checksum, as if config.json were edited too: still a pickle
    config = json.loads((path / "config.json").read_text())
    config["files"]["evaluation/extra.pt"] = sha256_file(path / "evaluation" / "extra.pt")
    (path / "config.json").write_text(json.dumps(config))
    with pytest.raises(BundleError, match="pickle"):
        load_bundle(path)
    (path / "evaluation" / "extra.pt").unlink()
    del config["files"]["evaluation/extra.pt"]
    (path / "config.json").write_text(json.dumps(config))
    load_bundle(path)
    (path / "evaluation" / "notes.md").write_text("added later")
    with pytest.raises(BundleError, match=r"notes\.md: not covered by config\.json's checksums"):
        load_bundle(path)


def test_config_json_cannot_point_outside_the_bundle(trained_run: Path, tmp_path: Path) -> None:
    bundle = export_bundle(trained_run, tmp_path / "x")
    config = json.loads((bundle.path / "config.json").read_text())
    for name in ("../outside.txt", "/etc/hostname", "evaluation\\..\\..\\x", "C:x"):
        config["files"] = {"model.safetensors": bundle.weights_sha256, name: "0" * 64}
        (bundle.path / "config.json").write_text(json.dumps(config))
        with pytest.raises(BundleError, match="not a file inside the bundle"):
            load_bundle(bundle.path)


def test_the_shipped_bundle_loads_with_its_evaluation_checksummed() -> None:
    root = Path(__file__).resolve().parents[1] / "models" / "default"
    bundle = load_bundle(root)
    report = sorted(p.name for p in (root / "evaluation").iterdir())
    assert report and [f"evaluation/{name}" for name in report] == sorted(
        n for n in bundle.config["files"] if n.startswith("evaluation/"))


def test_export_run_from_python(trained_run: Path, tmp_path: Path) -> None:
    notes = tmp_path / "notes.md"
    notes.write_text("\n## Listening\nMotifs.\n")
    bundle = export_run(ExportConfig(run_dir=trained_run, out_dir=tmp_path / "m",
                                     tokens_dir=trained_run.parent / "tok", eval_windows=10,
                                     notes_path=notes, checkpoint="last"))
    assert bundle.config["training"]["checkpoint"].startswith("step-")
    assert set(bundle.config["evaluation"]["val_loss_by_style"]) == {"bach", "irish"}
    assert "Listening" in (bundle.path / "MODEL_CARD.md").read_text()
    with pytest.raises(ConfigError, match="no such notes file"):
        export_run(ExportConfig(run_dir=trained_run, out_dir=tmp_path / "n", notes_path=tmp_path / "none"))
    with pytest.raises(ConfigError, match="best or last"):
        export_run(ExportConfig(run_dir=trained_run, out_dir=tmp_path / "n", checkpoint="newest"))
    assert not (tmp_path / "n").exists()


def test_a_bundle_folder_that_appears_during_export_is_not_replaced(
        trained_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import composer.model.bundle as bundle_module

    target = tmp_path / "late"
    real = bundle_module._fsync_tree

    def someone_else_writes(folder: Path) -> None:
        real(folder)
        target.mkdir()
        (target / "theirs.txt").write_text("keep me")

    monkeypatch.setattr(bundle_module, "_fsync_tree", someone_else_writes)
    with pytest.raises(OutputError, match="--force"):
        export_bundle(trained_run, target)
    assert [p.name for p in target.iterdir()] == ["theirs.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["late"]  # no temporary folder left
    monkeypatch.setattr(bundle_module, "_fsync_tree", real)
    export_bundle(trained_run, target, force=True)
    load_bundle(target)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["late"]  # the old one is gone, no .old left


def test_chord_counts_go_to_their_own_checksummed_file(trained_run: Path, tmp_path: Path) -> None:
    counts = {"format": 1, "start": [[0, 0, 3]]}
    styles = {"bach": {"voices": 4, "chords": counts}, "irish": {"voices": 1}}
    bundle = export_bundle(trained_run, tmp_path / "h", styles=styles)
    assert "harmony.json" in bundle.config["files"] and "chords" not in bundle.styles["bach"]
    assert bundle.chord_counts == {"bach": counts}
    assert styles["bach"]["chords"] == counts  # the caller's summary is left as it was
    assert export_bundle(trained_run, tmp_path / "plain").chord_counts == {}
    (bundle.path / "harmony.json").write_text("{}")
    with pytest.raises(BundleError, match=r"harmony\.json: sha256 does not match"):
        load_bundle(bundle.path)
