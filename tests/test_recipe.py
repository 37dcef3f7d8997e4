"""`composer recipe`: nothing → corpus → tokenizer → tokens → model → bundle, and a re-run reuses it."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from composer.cli import cli
from composer.model.bundle import load_bundle

TINY = Path(__file__).resolve().parents[1] / "configs" / "tiny.toml"


def _recipe(tmp_path: Path, *extra: str) -> list[str]:
    return ["recipe", "--config", str(TINY), "--styles", "bach,irish", "--max-pieces-per-style", "3",
            "--vocab-size", "800", "--work", str(tmp_path / "data"), "--run", str(tmp_path / "run"),
            "-o", str(tmp_path / "model"), "--set", "max_steps=4", "--set", "eval_every=2", "-q", *extra]


def test_recipe_builds_a_bundle_and_a_rerun_reuses_every_step(tmp_path: Path) -> None:
    runner = CliRunner()
    first = runner.invoke(cli, _recipe(tmp_path))
    assert first.exit_code == 0, first.output
    bundle = load_bundle(tmp_path / "model")
    assert set(bundle.styles) >= {"bach", "irish"}
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["steps"] == 4
    shipped = (tmp_path / "data" / "tokens" / "tokenizer.json").read_bytes()
    assert shipped == (tmp_path / "data" / "tokenizer" / "tokenizer.json").read_bytes()
    assert (tmp_path / "model" / "tokenizer.json").read_bytes() == shipped

    again = runner.invoke(cli, _recipe(tmp_path, "--force"))
    assert again.exit_code == 0, again.output
    assert "tokenizer: reusing" in again.output
    assert "tokens: reusing" in again.output
    assert "already ran 4 steps" in again.output
    # more steps asked for: training resumes from the newest checkpoint instead of starting over
    longer = runner.invoke(cli, [*_recipe(tmp_path, "--force"), "--set", "max_steps=6"])
    assert longer.exit_code == 0, longer.output
    assert "(resuming)" in longer.output
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["steps"] == 6


def test_recipe_refuses_bad_settings_before_any_work(tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(cli, _recipe(tmp_path, "--set", "no_such_setting=1"))
    assert result.exit_code == 2
    assert result.output.startswith("error:") and "no_such_setting" in result.output
    assert not (tmp_path / "data").exists()
    (tmp_path / "model").mkdir()
    result = runner.invoke(cli, _recipe(tmp_path))
    assert result.exit_code == 2 and "--force" in result.output
    missing = runner.invoke(cli, ["recipe", "--config", str(tmp_path / "none.toml"),
                                  "-o", str(tmp_path / "m")])
    assert missing.exit_code == 2 and "none.toml" in missing.output
