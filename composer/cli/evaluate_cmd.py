"""``composer evaluate``: a model's report card (report.json, report.md, plots)."""

from __future__ import annotations

from pathlib import Path

import click

from composer.evaluate import CRITIC_CANDIDATES, SAMPLES_PER_STYLE


@click.command(epilog="""\b
Examples:
  composer evaluate --corpus data/corpus -o report
  composer export runs/default -o models/default --corpus data/corpus --evaluation report --force
  composer evaluate --model models/mine --corpus data/corpus --tokens data/tokens -o /tmp/report
  composer evaluate --corpus data/corpus --styles bach,irish --samples 5 -o /tmp/quick
""")
@click.option("--model", "model", type=click.Path(path_type=Path), default=None,
              help="Model bundle folder (default: the shipped model, or $COMPOSER_MODEL).")
@click.option("--corpus", "corpus_dir", type=click.Path(path_type=Path), required=True,
              help="The corpus the model was trained on (composer corpus build).")
@click.option("-o", "--out", "out_dir", type=click.Path(path_type=Path), required=True,
              help="Report folder: report.json, report.md and PNG plots.")
@click.option("--samples", type=click.IntRange(min=1), default=SAMPLES_PER_STYLE, show_default=True,
              help="Generated pieces per style.")
@click.option("--bars", type=click.IntRange(1, 512), default=16, show_default=True,
              help="Bars per generated piece.")
@click.option("--prompts", type=click.IntRange(min=0), default=10, show_default=True,
              help="Continuations of test pieces per style, for key consistency.")
@click.option("--candidates", type=int, default=CRITIC_CANDIDATES, show_default=True,
              help="The critic's candidates per sample (samples with one candidate are judged too).")
@click.option("--tokens", "tokens_dir", type=click.Path(path_type=Path), default=None,
              help="Token shards made with the model's tokenizer (default: tokenize the corpus).")
@click.option("--split", type=click.Choice(["val", "test"]), default="val", show_default=True,
              help="Split for bits per note.")
@click.option("--styles", default=None, help="Comma-separated styles (default: all of the model's).")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of every random choice.")
@click.option("--workers", type=click.IntRange(min=0), default=0,
              help="Tokenizing processes (0: one per core).")
@click.option("-q", "--quiet", is_flag=True, help="No progress bars.")
def evaluate(model: Path | None, corpus_dir: Path, out_dir: Path, samples: int, bars: int, prompts: int,
             candidates: int, tokens_dir: Path | None, split: str, styles: str | None, seed: int,
             workers: int, quiet: bool) -> None:
    """Measure a model: bits per note against n-gram baselines, and generated music's validity,
    style accuracy, key consistency, novelty and distribution overlap."""
    from composer.cli.progress import progress_bar
    from composer.evaluate.run import EvaluateConfig, run_evaluation

    chosen = tuple(s.strip() for s in styles.split(",") if s.strip()) if styles else None
    config = EvaluateConfig(corpus_dir=corpus_dir, out_dir=out_dir, model=model, tokens_dir=tokens_dir,
                            split=split, samples=samples, bars=bars, prompts=prompts, seed=seed,
                            workers=workers, styles=chosen, candidates=candidates)
    bars_open: dict[str, tuple] = {}

    def progress(stage: str, done: int, total: int) -> None:
        if quiet:
            return
        if stage not in bars_open:
            for _, close in bars_open.values():
                close()
            bars_open.clear()
            bars_open[stage] = progress_bar(stage, "step")
        bars_open[stage][0](done, total)

    try:
        report = run_evaluation(config, progress)
    finally:
        for _, close in bars_open.values():
            close()
    bits = report["bits_per_note"]["overall"]
    judged = report["style_accuracy"]
    click.echo(f"bits per note: model {bits['model']:.2f}, {report['bits_per_note']['baseline']} "
               f"{bits[report['bits_per_note']['baseline']]:.2f} (ratio {bits['model_vs_ngram']:.2f}); "
               f"style accuracy {judged['generated']['accuracy']:.2f} "
               f"(real pieces {judged['ceiling_real_test']['accuracy']:.2f}); "
               f"novelty: {report['novelty']['flagged_samples']} samples copy ≥ "
               f"{report['novelty']['flag_bars']} bars")
    click.echo(f"wrote {out_dir / 'report.md'} in {report['seconds']:.0f} s")
