"""``composer export``: a training run → a model bundle."""

from __future__ import annotations

import json
from pathlib import Path

import click


@click.command(epilog="""\b
Examples:
  composer export runs/default -o models/default --corpus data/corpus
  composer export runs/smoke -o /tmp/smoke-model --checkpoint last --force
  composer export runs/default -o models/default --corpus data/corpus --evaluation report/ --force
""")
@click.argument("run_dir", type=click.Path(path_type=Path))
@click.option("-o", "--out", "out_dir", type=click.Path(path_type=Path), required=True,
              help="Bundle folder to write, e.g. models/NAME.")
@click.option("--tokenizer", "tokenizer_path", type=click.Path(path_type=Path), default=None,
              help="Tokenizer JSON (default: the one the run copied from its token folder).")
@click.option("--corpus", "corpus_dir", type=click.Path(path_type=Path), default=None,
              help="Corpus the run was trained on: adds style descriptions and piece counts.")
@click.option("--checkpoint", type=click.Choice(["best", "last"]), default="best", show_default=True,
              help="Which checkpoint to export.")
@click.option("--tokens", "tokens_dir", type=click.Path(path_type=Path), default=None,
              help="Token shards: measure the exported weights' validation loss per style.")
@click.option("--eval-windows", type=click.IntRange(min=1), default=1000, show_default=True,
              help="Validation windows for --tokens (taken style by style in turn).")
@click.option("--notes", "notes_path", type=click.Path(path_type=Path), default=None,
              help="Markdown appended to MODEL_CARD.md (e.g. what the samples sound like).")
@click.option("--evaluation", "report_dir", type=click.Path(path_type=Path), default=None,
              help="A 'composer evaluate' report of these weights: copied into the bundle, key "
                   "figures into MODEL_CARD.md.")
@click.option("--force", is_flag=True, help="Replace an existing bundle folder.")
def export(run_dir: Path, out_dir: Path, tokenizer_path: Path | None, corpus_dir: Path | None,
           checkpoint: str, tokens_dir: Path | None, eval_windows: int, notes_path: Path | None,
           report_dir: Path | None, force: bool) -> None:
    """Write a model bundle (safetensors, config, tokenizer, model card) from RUN_DIR."""
    from composer.model.bundle import export_bundle

    styles = None
    if corpus_dir is not None:
        from composer.corpus.build import style_summary

        styles = style_summary(corpus_dir)
        metrics = run_dir / "metrics.jsonl"
        if metrics.is_file():
            evals = [json.loads(x) for x in metrics.read_text().splitlines() if "val_loss" in x]
            for style, loss in (evals[-1].get("val_loss_by_style", {}) if evals else {}).items():
                styles.setdefault(style, {})["val_loss"] = loss
    evaluation = None
    if tokens_dir is not None:
        from composer.train.loop import evaluate_checkpoint

        evaluation = evaluate_checkpoint(run_dir, tokens_dir, checkpoint, eval_windows)
        styles = styles or {}
        for style, loss in evaluation["val_loss_by_style"].items():
            styles.setdefault(style, {})["val_loss"] = loss
    notes = notes_path.read_text(encoding="utf-8") if notes_path else ""
    if report_dir is not None:
        from composer.evaluate.report import card_summary
        from composer.evaluate.run import load_report

        notes = card_summary(load_report(report_dir)) + "\n" + notes
    bundle = export_bundle(run_dir, out_dir, tokenizer_path, styles,
                           checkpoint="" if checkpoint == "last" else "best", force=force,
                           notes=notes, evaluation=evaluation, report_dir=report_dir)
    click.echo(f"exported {bundle.name} ({bundle.config['parameters'] / 1e6:.2f}M parameters, "
               f"{len(bundle.styles)} styles) → {out_dir}")
