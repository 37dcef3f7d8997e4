"""A tiny trained bundle (real tokenizer, 2-layer model) shared by generation tests."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_tokenizer import build_tiny

from composer.model.bundle import export_bundle
from composer.train.config import load_config
from composer.train.loop import train

TINY_TOML = Path(__file__).resolve().parents[1] / "configs" / "tiny.toml"
_BUNDLE: dict[str, Path] = {}


def tiny_bundle(factory: pytest.TempPathFactory) -> Path:
    if "bundle" not in _BUNDLE:
        tiny = build_tiny(factory)
        root = factory.mktemp("bundle")
        config = load_config(TINY_TOML, ["max_steps=4", "eval_every=4", "eval_windows=2", "threads=1"])
        train(tiny.tokens_dir, root / "run", config)
        _BUNDLE["bundle"] = export_bundle(root / "run", root / "tiny-model",
                                          tokenizer_path=tiny.tokenizer_dir / "tokenizer.json").path
    return _BUNDLE["bundle"]
