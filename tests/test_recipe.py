"""`composer recipe`: nothing → corpus → tokenizer → tokens → model → bundle, and a re-run reuses it."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from composer.cli import cli
from composer.corpus.build import read_manifest
from composer.corpus.split import SPLITS
from composer.errors import ConfigError
from composer.model.bundle import Bundle, load_bundle
from composer.recipe import RecipeCallbacks, RecipeConfig, RecipeResult, run_recipe
from composer.tokens.settings import TokenizerSettings
from composer.tokens.shards import read_meta, read_split, shards_stale_reason
from composer.tokens.tokenizer import load_tokenizer
from composer.tokens.training import tokenizer_stale_reason

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


# ---- the Python function ----------------------------------------------------------------------

def _config(root: Path, **changes: object) -> RecipeConfig:
    config = RecipeConfig(out_dir=root / "model", config_path=TINY, work_dir=root / "data",
                          run_dir=root / "run", styles=["bach", "irish"], max_pieces_per_style=3,
                          vocab_size=800, overrides=["max_steps=4", "eval_every=2"], workers=1)
    for name, value in changes.items():
        setattr(config, name, value)
    return config


class Calls:
    """Everything run_recipe reports, in order."""

    def __init__(self) -> None:
        self.stages: list[tuple[int, int, str]] = []
        self.done: list[str] = []
        self.progress: set[str] = set()
        self.train_steps: list[int] = []

    def callbacks(self) -> RecipeCallbacks:
        return RecipeCallbacks(stage=lambda n, of, text: self.stages.append((n, of, text)),
                               done=lambda name, result: self.done.append(name),
                               progress=lambda what, done, total: self.progress.add(what),
                               train_step=lambda info: self.train_steps.append(info["step"]))


@pytest.fixture(scope="module")
def first_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, RecipeResult, Calls]:
    """One finished recipe (bach and irish, 3 inputs each, vocabulary 800), run from Python."""
    root = tmp_path_factory.mktemp("recipe")
    calls = Calls()
    result = run_recipe(_config(root), calls.callbacks())
    return root, result, calls


def _copy(first_run: tuple[Path, RecipeResult, Calls], tmp_path: Path) -> Path:
    shutil.copytree(first_run[0], tmp_path / "r")
    return tmp_path / "r"


def test_run_recipe_reports_every_step_and_returns_what_it_made(
        first_run: tuple[Path, RecipeResult, Calls]) -> None:
    root, result, calls = first_run
    assert [n for n, _, _ in calls.stages] == [1, 2, 3, 4, 5] and {of for _, of, _ in calls.stages} == {5}
    assert calls.stages[1][2] == f"tokenizer → {root / 'data' / 'tokenizer'}"  # no reason: a first run
    assert calls.done == ["corpus", "tokenizer", "tokens", "train", "export"]
    assert {"converting", "encoding", "tokenizing"} <= calls.progress
    assert calls.train_steps == [1, 2, 3, 4]
    assert result.reused == [] and result.training is not None and result.training["steps"] == 4
    assert result.bundle.path == root / "model" and set(result.bundle.styles) == {"bach", "irish"}
    assert result.tokenizer is not None and result.tokens is not None and result.report is None
    assert load_bundle(root / "model").weights_sha256 == result.bundle.weights_sha256


def test_run_recipe_again_reuses_what_still_fits(first_run: tuple[Path, RecipeResult, Calls],
                                                 tmp_path: Path) -> None:
    root = _copy(first_run, tmp_path)
    calls = Calls()
    result = run_recipe(_config(root, force=True), calls.callbacks())
    assert result.reused == ["tokenizer", "tokens", "train"]
    assert result.tokenizer is None and result.tokens is None and result.training is None
    assert calls.done == ["corpus", "export"] and not calls.train_steps
    assert [text for _, _, text in calls.stages][1:4] == [
        f"tokenizer: reusing {root / 'data' / 'tokenizer' / 'tokenizer.json'}",
        f"tokens: reusing {root / 'data' / 'tokens'}",
        f"training: {root / 'run'} already ran 4 steps"]


def _manifest_sha(root: Path) -> str:
    return hashlib.sha256((root / "data" / "corpus" / "manifest.jsonl").read_bytes()).hexdigest()


def test_a_rebuilt_corpus_retrains_the_tokenizer_and_rewrites_the_shards(
        first_run: tuple[Path, RecipeResult, Calls], tmp_path: Path) -> None:
    root = _copy(first_run, tmp_path)
    before = _manifest_sha(root)
    calls = Calls()
    # other styles: the corpus keeps its folder and file names, so only the hashes can tell
    result = run_recipe(_config(root, styles=["bach", "german_folk"], run_dir=root / "run2",
                                out_dir=root / "model2"), calls.callbacks())
    after = _manifest_sha(root)
    assert after != before
    assert calls.stages[1][2].endswith("(the corpus changed since it was trained)")
    assert calls.stages[2][2].endswith("(they were made with another tokenizer)")
    assert result.reused == [] and result.tokenizer is not None and result.tokens is not None
    tokenizer = load_tokenizer(root / "data" / "tokenizer")
    assert tokenizer.info["corpus_manifest_sha256"] == after
    assert set(tokenizer.styles) == {"bach", "german_folk"}
    meta = read_meta(root / "data" / "tokens")
    assert meta["corpus_manifest_sha256"] == after and meta["tokenizer_sha256"] == tokenizer.sha256
    assert set(meta["style_ids"]) == {"bach", "german_folk", "any"}
    pieces = {(r["id"], r["style"]) for r in read_manifest(root / "data" / "corpus")}
    rows = [row for split in SPLITS for row in read_split(root / "data" / "tokens", split)[1]]
    assert {(row["id"], row["style"]) for row in rows} == pieces  # every piece of the new corpus, no other
    assert set(result.bundle.styles) == {"bach", "german_folk"}
    # the first run was trained on the old shards: continuing or exporting it is refused
    with pytest.raises(ConfigError, match=r"trained on other token shards.*tokenizer and corpus differ"):
        run_recipe(_config(root, styles=["bach", "german_folk"], force=True))


def test_another_vocabulary_size_retrains_the_tokenizer(first_run: tuple[Path, RecipeResult, Calls],
                                                        tmp_path: Path) -> None:
    root = _copy(first_run, tmp_path)
    calls = Calls()
    result = run_recipe(_config(root, vocab_size=760, run_dir=root / "run2", out_dir=root / "model2"),
                        calls.callbacks())
    assert calls.stages[1][2].endswith("(other settings (vocab_size 800 → 760))")
    assert result.tokenizer is not None and result.tokenizer.tokenizer.vocab_size == 760
    assert read_meta(root / "data" / "tokens")["vocab_size"] == 760
    assert result.bundle.config["model"]["vocab_size"] == 760


def test_damaged_or_foreign_outputs_are_made_again(first_run: tuple[Path, RecipeResult, Calls],
                                                   tmp_path: Path) -> None:
    root = _copy(first_run, tmp_path)
    settings = TokenizerSettings(vocab_size=800)
    data = root / "data"
    corpus, tokenizer, tokens = data / "corpus", data / "tokenizer", data / "tokens"
    assert tokenizer_stale_reason(tokenizer, corpus, settings) is None
    assert shards_stale_reason(tokens, corpus, tokenizer) is None
    assert shards_stale_reason(tokens, corpus, tokenizer, (0,)) == "they were made with other transpositions"
    meta = json.loads((tokens / "meta.json").read_text())
    del meta["corpus_manifest_sha256"]  # shards written before the hash was recorded
    (tokens / "meta.json").write_text(json.dumps(meta))
    assert shards_stale_reason(tokens, corpus, tokenizer) == \
        "they do not record which corpus they were made from"
    (tokens / "val.bin").unlink()
    assert shards_stale_reason(tokens, corpus, tokenizer) == "some shard files are missing"
    (tokenizer / "tokenizer.json").write_text("{")
    assert tokenizer_stale_reason(tokenizer, corpus, settings) == "its file is damaged"
    assert tokenizer_stale_reason(tmp_path / "none", corpus, settings) == "none yet"


@pytest.mark.slow
def test_run_recipe_with_evaluation_ships_the_report_checksummed(
        first_run: tuple[Path, RecipeResult, Calls], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import composer.api

    root = _copy(first_run, tmp_path)
    calls = Calls()
    calibrations: list[Path] = []
    calibrate = composer.api.calibrate_lines

    def counted(path: Path, *args: Any, **kwargs: Any) -> Bundle:
        calibrations.append(path)
        return calibrate(path, *args, **kwargs)
    monkeypatch.setattr(composer.api, "calibrate_lines", counted)
    result = run_recipe(_config(root, evaluate=True, samples=1, force=True), calls.callbacks())
    assert [n for n, of, _ in calls.stages] == [1, 2, 3, 4, 5, 6] and calls.stages[0][1] == 6
    assert calls.done == ["corpus", "export", "evaluate", "export"]
    # the model wrote its calibration samples once: the second export keeps the first one's
    assert calibrations == [root / "model"] and result.bundle.line_counts["model"]
    assert result.report is not None and (root / "run" / "evaluation" / "report.json").is_file()
    files = load_bundle(root / "model").config["files"]
    assert {"evaluation/report.json", "evaluation/report.md"} <= set(files)
    assert result.report["model"]["sha256"] == result.bundle.weights_sha256[:16]
    assert "evaluation/report.md" in (root / "model" / "MODEL_CARD.md").read_text()
