"""The recipe: from nothing to a model bundle, and a training run → a bundle.

``run_recipe`` builds the corpus, trains the tokenizer, writes the token shards, trains
the model and exports a bundle (then, optionally, evaluates it and exports again with
the report). Run again after an interruption it reuses every finished step and resumes
training from the newest checkpoint. A step's output is reused only while it still
matches what it was made from: the tokenizer records the corpus manifest's hash and its
settings, the shards record the tokenizer's and the corpus's hashes and their
transpositions, and a training run records its shards' meta. When the corpus or the
vocabulary size changes, the tokenizer and the shards are made again, and a run trained
on the old shards is refused rather than continued on new ones.

``export_run`` is ``composer export``: style facts from the corpus, validation loss per
style (from the run's metrics, or measured on the shards), the evaluation report's card
summary, then ``export_bundle``.

Library code: it reports through callbacks and raises ``ComposerError``s; the CLI prints.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from composer.api import LINE_SAMPLES
from composer.corpus.build import CorpusConfig, CorpusResult, build_corpus, style_summary
from composer.errors import ConfigError
from composer.evaluate import SAMPLES_PER_STYLE
from composer.model.bundle import LINES, Bundle, add_bundle_file, export_bundle
from composer.model.checkpoint import RUN_CHECKPOINTS, RUN_SUMMARY, list_checkpoints
from composer.tokens.pieces import NOT_MADE  # a step never made is announced without a reason
from composer.tokens.settings import TokenizerSettings
from composer.tokens.shards import (
    TokenizeConfig,
    TokenizeResult,
    read_meta,
    shard_source,
    shards_stale_reason,
    tokenize_corpus,
)
from composer.tokens.tokenizer import TOKENIZER_FILE
from composer.tokens.training import TrainResult, tokenizer_stale_reason, train_tokenizer
from composer.train.config import TrainConfig, load_config
from composer.train.loop import StepCallback, evaluate_checkpoint, train

CHECKPOINTS = ("best", "last")  # what export_run can export
_SOURCE_WORDS = {"tokenizer_sha256": "tokenizer", "corpus_manifest_sha256": "corpus",
                 "shard_version": "shard format", "transpositions": "transpositions"}


# ---- export ---------------------------------------------------------------------------------

@dataclass
class ExportConfig:
    run_dir: Path  # a training run folder (checkpoints/, metrics.jsonl, tokenizer.json)
    out_dir: Path  # the bundle folder to write, e.g. models/NAME
    tokenizer: Path | None = None  # tokenizer JSON; None: the one the run copied from its shards
    corpus_dir: Path | None = None  # the corpus trained on: style descriptions, piece counts, programs
    checkpoint: str = "best"  # "best" or "last" (the newest that verifies)
    tokens_dir: Path | None = None  # token shards: measure the exported weights' val loss per style
    eval_windows: int = 1000  # validation windows for tokens_dir, taken style by style in turn
    notes_path: Path | None = None  # Markdown appended to MODEL_CARD.md
    report_dir: Path | None = None  # a `composer evaluate` report of these weights, copied in
    force: bool = False  # replace an existing bundle folder
    # pieces per style the model writes to calibrate its lines against the corpus's
    # (``api.calibrate_lines``; needs corpus_dir); 0 leaves the lines uncalibrated
    line_samples: int = LINE_SAMPLES
    # an earlier export of the same weights (the recipe's first one, before evaluating):
    # its calibrated lines.json is kept instead of having the model write the samples again
    calibrated: Bundle | None = None

    def validate(self) -> None:
        if self.checkpoint not in CHECKPOINTS:
            raise ConfigError(f"checkpoint '{self.checkpoint}': use {' or '.join(CHECKPOINTS)}")
        if self.eval_windows < 1:
            raise ConfigError("eval-windows must be at least 1")
        if self.line_samples < 0:
            raise ConfigError("line-samples must be 0 or more")
        _check_notes(self.notes_path)


def export_run(config: ExportConfig, progress: Callable[[str, int, int], None] | None = None) -> Bundle:
    """Write a model bundle from a training run (see ``ExportConfig``); return it, verified."""
    config.validate()
    # read now: the earlier export may be the very folder export_bundle replaces
    earlier = (config.calibrated.weights_sha256, config.calibrated.line_counts) if config.calibrated else None
    styles: dict[str, dict[str, Any]] | None = None
    if config.corpus_dir is not None:
        styles = style_summary(config.corpus_dir)
        for style, loss in _last_val_loss_by_style(config.run_dir / "metrics.jsonl").items():
            styles.setdefault(style, {})["val_loss"] = loss
    evaluation = None
    if config.tokens_dir is not None:
        # measured on the exported weights themselves, not the last evaluation during training;
        # export_bundle exports the newest checkpoint when there is no best (no val pieces), so here too
        has_best = (config.run_dir / RUN_CHECKPOINTS / "best").is_dir()
        checkpoint = config.checkpoint if has_best else "last"
        evaluation = evaluate_checkpoint(config.run_dir, config.tokens_dir, checkpoint, config.eval_windows)
        styles = styles or {}
        for style, loss in evaluation["val_loss_by_style"].items():
            styles.setdefault(style, {})["val_loss"] = loss
    notes = _read_notes(config.notes_path)
    if config.report_dir is not None:
        from composer.evaluate.report import card_summary
        from composer.evaluate.run import load_report

        notes = card_summary(load_report(config.report_dir)) + "\n" + notes
    bundle = export_bundle(config.run_dir, config.out_dir, config.tokenizer, styles,
                           checkpoint="" if config.checkpoint == "last" else "best", force=config.force,
                           notes=notes, evaluation=evaluation, report_dir=config.report_dir)
    if config.line_samples and bundle.line_counts.get("corpus"):
        if (earlier is not None and earlier[0] == bundle.weights_sha256
                and earlier[1].get("model_samples") == config.line_samples
                and earlier[1].get("corpus") == bundle.line_counts["corpus"]):
            return add_bundle_file(bundle.path, LINES, json.dumps(earlier[1]) + "\n")
        from composer.api import calibrate_lines

        bundle = calibrate_lines(bundle.path, config.line_samples, progress=progress)
    return bundle


def _last_val_loss_by_style(metrics: Path) -> dict[str, float]:
    """Validation loss per style at the run's last evaluation, from metrics.jsonl ({} if none)."""
    try:
        lines = metrics.read_text(encoding="utf-8").splitlines()
    except OSError:
        return {}
    for line in reversed(lines):
        try:
            entry = json.loads(line)
        except ValueError:
            continue  # a line cut short by an interrupted run
        if isinstance(entry, dict) and "val_loss" in entry:
            by_style = entry.get("val_loss_by_style")
            return dict(by_style) if isinstance(by_style, dict) else {}
    return {}


def _check_notes(path: Path | None) -> None:
    if path is not None and not path.is_file():
        raise ConfigError(f"{path}: no such notes file (Markdown for MODEL_CARD.md)")


def _read_notes(path: Path | None) -> str:
    if path is None:
        return ""
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read the notes ({exc})") from None


# ---- the recipe ----------------------------------------------------------------------------

@dataclass
class RecipeConfig:
    out_dir: Path  # the bundle folder to write, e.g. models/NAME
    config_path: Path = Path("configs/default.toml")  # training settings (TOML with a [model] table)
    work_dir: Path = Path("data")  # holds corpus/, tokenizer/ and tokens/
    run_dir: Path = Path("runs/default")  # the training run folder (checkpoints, metrics)
    styles: list[str] | None = None  # styles of music21's corpus; None: all of them
    max_pieces_per_style: int | None = None  # cap on inputs per style, for quick runs
    vocab_size: int = 4096  # tokenizer vocabulary size
    overrides: list[str] = field(default_factory=list)  # training settings as KEY=VALUE
    device: str | None = None  # "cpu", "cuda" or "auto"; None: the config's
    evaluate: bool = False  # also evaluate the bundle and export it again with the report
    samples: int = SAMPLES_PER_STYLE  # samples per style for the evaluation
    notes_path: Path | None = None  # Markdown appended to MODEL_CARD.md
    force: bool = False  # replace an existing bundle folder
    workers: int = 0  # processes for the corpus, tokenizer, tokens and evaluation; 0: one per core

    corpus_dir: Path = field(init=False)  # work_dir/corpus
    tokenizer_dir: Path = field(init=False)  # work_dir/tokenizer
    tokens_dir: Path = field(init=False)  # work_dir/tokens
    report_dir: Path = field(init=False)  # run_dir/evaluation

    def __post_init__(self) -> None:
        self.corpus_dir, self.tokenizer_dir, self.tokens_dir = (
            self.work_dir / name for name in ("corpus", "tokenizer", "tokens"))
        self.report_dir = self.run_dir / "evaluation"

    @property
    def settings(self) -> list[str]:
        """The training overrides, ``device`` included."""
        return list(self.overrides) + ([f"device={self.device}"] if self.device else [])

    @property
    def steps(self) -> int:
        return 6 if self.evaluate else 5


@dataclass
class RecipeCallbacks:
    stage: Callable[[int, int, str], None] | None = None  # (step, steps, what): a step begins
    done: Callable[[str, Any], None] | None = None  # (name, result) of a step that did work
    progress: Callable[[str, int, int], None] | None = None  # (what, done, total) within a step
    train_step: StepCallback | None = None  # every training step, as train.loop.train reports it


@dataclass
class RecipeResult:
    bundle: Bundle  # the bundle written (with its report when evaluated)
    corpus: CorpusResult
    tokenizer: TrainResult | None  # None when the existing tokenizer still fit
    tokens: TokenizeResult | None  # None when the existing shards still fit
    training: dict[str, Any] | None  # train's summary; None when the run had already finished
    report: dict[str, Any] | None  # the evaluation report, when evaluated
    reused: list[str] = field(default_factory=list)  # steps whose earlier output was reused


def run_recipe(config: RecipeConfig, callbacks: RecipeCallbacks | None = None) -> RecipeResult:
    """Corpus → tokenizer → tokens → training → bundle (→ evaluation → bundle with its report).

    Step names given to ``callbacks.done``: "corpus" (CorpusResult), "tokenizer"
    (TrainResult), "tokens" (TokenizeResult), "train" (train's summary), "export" (Bundle),
    "evaluate" (the report). Every setting is checked before any work starts.
    """
    calls = callbacks or RecipeCallbacks()
    train_config = _check(config)
    corpus_dir, tokenizer_dir, tokens_dir = config.corpus_dir, config.tokenizer_dir, config.tokens_dir

    def stage(number: int, text: str) -> None:
        if calls.stage:
            calls.stage(number, config.steps, text)

    def done(name: str, result: Any) -> None:
        if calls.done:
            calls.done(name, result)

    def progress(what: str) -> Callable[[int, int], None] | None:
        report = calls.progress
        return (lambda n, total: report(what, n, total)) if report else None

    reused: list[str] = []
    stage(1, f"corpus → {corpus_dir} (unchanged inputs come from its cache)")
    corpus = build_corpus(CorpusConfig(out_dir=corpus_dir, styles=config.styles,
                                       max_pieces_per_style=config.max_pieces_per_style,
                                       workers=config.workers), progress=progress("converting"))
    done("corpus", corpus)

    def reuse_or_make(number: int, name: str, shown: Path, why: str | None, make: Callable[[], Any]) -> Any:
        """A step's earlier output while it still fits (``why`` is None), else made anew."""
        if why is None:
            stage(number, f"{name}: reusing {shown}")
            reused.append(name)
            return None
        stage(number, f"{name} → {shown.parent if shown.suffix else shown}" + _because(why))
        result = make()
        done(name, result)
        return result

    settings = TokenizerSettings(vocab_size=config.vocab_size)
    tokenizer_result = reuse_or_make(
        2, "tokenizer", tokenizer_dir / TOKENIZER_FILE,
        tokenizer_stale_reason(tokenizer_dir, corpus_dir, settings),
        lambda: train_tokenizer(corpus_dir, tokenizer_dir, settings, workers=config.workers,
                                progress=progress("encoding")))
    tokens_result = reuse_or_make(
        3, "tokens", tokens_dir, shards_stale_reason(tokens_dir, corpus_dir, tokenizer_dir),
        lambda: tokenize_corpus(TokenizeConfig(corpus_dir, tokenizer_dir, tokens_dir, workers=config.workers),
                                progress("tokenizing")))

    _check_run_data(config.run_dir, tokens_dir)
    state = _training_state(config.run_dir, train_config.max_steps)
    training = None
    if state == "done":
        stage(4, f"training: {config.run_dir} already ran {train_config.max_steps} steps")
        reused.append("train")
    else:
        stage(4, f"training → {config.run_dir}" + (" (resuming)" if state == "resume" else ""))
        training = train(tokens_dir, config.run_dir, train_config, resume=state == "resume",
                         on_step=calls.train_step)
        done("train", training)

    export = ExportConfig(run_dir=config.run_dir, out_dir=config.out_dir, corpus_dir=corpus_dir,
                          tokens_dir=tokens_dir, notes_path=config.notes_path, force=True)
    stage(5, f"bundle → {config.out_dir}")
    bundle = export_run(export, calls.progress)
    done("export", bundle)
    report = None
    if config.evaluate:
        from composer.evaluate.run import EvaluateConfig, run_evaluation

        stage(6, f"evaluation → {config.report_dir}, then the bundle again with its report")
        report = run_evaluation(EvaluateConfig(corpus_dir=corpus_dir, out_dir=config.report_dir,
                                               model=config.out_dir, tokens_dir=tokens_dir,
                                               samples=config.samples, workers=config.workers),
                                calls.progress)
        done("evaluate", report)
        export.report_dir = config.report_dir
        export.calibrated = bundle
        bundle = export_run(export, calls.progress)
        done("export", bundle)
    return RecipeResult(bundle=bundle, corpus=corpus, tokenizer=tokenizer_result, tokens=tokens_result,
                        training=training, report=report, reused=reused)


def _check(config: RecipeConfig) -> TrainConfig:
    """Refuse bad settings now, not after hours of work; return the training config."""
    if not config.config_path.is_file():
        raise ConfigError(f"{config.config_path}: no such recipe config (run from the project folder "
                          "or pass --config FILE.toml)")
    if config.out_dir.exists() and not config.force:
        raise ConfigError(f"{config.out_dir} exists; pass --force to replace it")
    if config.samples < 1:
        raise ConfigError("samples must be at least 1")
    _check_notes(config.notes_path)
    TokenizerSettings(vocab_size=config.vocab_size).validate()
    return load_config(config.config_path, config.settings)


def _because(reason: str) -> str:
    return "" if reason == NOT_MADE else f" ({reason})"


def _check_run_data(run_dir: Path, tokens_dir: Path) -> None:
    """Refuse to resume or export a run trained on other shards than ``tokens_dir``'s.

    Every checkpoint records the meta.json of the shards it was trained on; continuing
    such a run on new shards would mix two corpora (or two vocabularies) in one model.
    """
    wanted = shard_source(read_meta(tokens_dir))
    folder = run_dir / RUN_CHECKPOINTS
    for checkpoint in [*list_checkpoints(folder), folder / "best"]:
        try:
            saved = json.loads((checkpoint / "config.json").read_text(encoding="utf-8"))
            had = shard_source(saved["tokens"]["meta"])
        except (OSError, ValueError, KeyError, TypeError):
            continue  # none, or damaged: training's own checks skip or refuse a damaged one
        differ = [_SOURCE_WORDS[key] for key in wanted if had.get(key) != wanted[key]]
        if differ:
            what = " and ".join([", ".join(differ[:-1]), differ[-1]] if len(differ) > 1 else differ)
            raise ConfigError(f"{run_dir}: trained on other token shards than {tokens_dir} (their "
                              f"{what} differ); pass another --run folder, or delete {run_dir} to "
                              "train again from the start")


def _training_state(run_dir: Path, max_steps: int) -> str:
    """'done', 'resume' or 'new' for a run folder."""
    summary = run_dir / RUN_SUMMARY
    if summary.is_file():
        try:
            if json.loads(summary.read_text(encoding="utf-8")).get("steps", 0) >= max_steps:
                return "done"
        except (OSError, ValueError, AttributeError):
            pass
    return "resume" if list_checkpoints(run_dir / RUN_CHECKPOINTS) else "new"
