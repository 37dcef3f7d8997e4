"""``composer export``: a training run → a model bundle."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from composer.api import LINE_SAMPLES

if TYPE_CHECKING:
    from composer.model.bundle import Bundle


@click.command(epilog="""\b
Examples:
  composer export runs/default -o models/default --corpus data/corpus
  composer export runs/smoke -o /tmp/smoke-model --checkpoint last --force
  composer export runs/default -o models/default --corpus data/corpus --evaluation report/ --force
  composer export runs/smoke -o /tmp/smoke-model --corpus data/corpus --line-samples 0  # lines uncalibrated
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
@click.option("--line-samples", type=click.IntRange(min=0), default=LINE_SAMPLES, show_default=True,
              help="Pieces per style the model writes so that its voices' steps can be calibrated "
                   "against the corpus's (needs --corpus); 0 skips it.")
@click.option("--force", is_flag=True, help="Replace an existing bundle folder.")
def export(run_dir: Path, out_dir: Path, tokenizer_path: Path | None, corpus_dir: Path | None,
           checkpoint: str, tokens_dir: Path | None, eval_windows: int, notes_path: Path | None,
           report_dir: Path | None, line_samples: int, force: bool) -> None:
    """Write a model bundle (safetensors, config, tokenizer, model card) from RUN_DIR."""
    from composer.cli.progress import progress_bar
    from composer.recipe import ExportConfig, export_run

    update, close = progress_bar("line calibration", "style")
    bundle = export_run(ExportConfig(run_dir=run_dir, out_dir=out_dir, tokenizer=tokenizer_path,
                                     corpus_dir=corpus_dir, checkpoint=checkpoint, tokens_dir=tokens_dir,
                                     eval_windows=eval_windows, notes_path=notes_path,
                                     report_dir=report_dir, force=force, line_samples=line_samples),
                        lambda _what, done, total: update(done, total))
    close()
    click.echo(describe_bundle(bundle, out_dir))


def describe_bundle(bundle: Bundle, out_dir: Path) -> str:
    """The line printed after an export."""
    return (f"exported {bundle.name} ({bundle.config['parameters'] / 1e6:.2f}M parameters, "
            f"{len(bundle.styles)} styles) → {out_dir}")
