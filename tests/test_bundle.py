from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from test_train import tiny_config
from tokens_fixture import write_token_shards

from composer.errors import OutputError
from composer.model.bundle import BundleError, export_bundle, load_bundle
from composer.model.checkpoint import load_checkpoint, sha256_file
from composer.model.transformer import MusicTransformer
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
