"""``composer recipe``: from nothing to a model bundle in one command.

The work is ``composer.recipe.run_recipe`` (corpus build → tokenizer train → tokenize →
train → export, and optionally evaluate → export with the report, reusing whatever an
earlier, interrupted run left that still fits). This command parses the options, draws
the progress bars and prints what each step did, as the step's own command would.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from composer.cli.export_cmd import describe_bundle
from composer.cli.progress import progress_bar
from composer.evaluate import SAMPLES_PER_STYLE

if TYPE_CHECKING:
    from composer.recipe import RecipeConfig

UNITS = {"converting": "input", "encoding": "piece", "tokenizing": "piece"}  # else "step"


@click.command(epilog="""\b
Examples:
  composer recipe -o models/default --force                   # the default model, ~2 h on 2 cores
  composer recipe -o models/default --evaluate --notes configs/default_model_notes.md --force
  composer recipe --config configs/tiny.toml --styles bach,irish --max-pieces-per-style 20 \\
      --work /tmp/small --run /tmp/small/run -o /tmp/small/model   # a smoke run, minutes
  composer recipe -o models/gpu --device cuda --set batch_size=128 --set dtype=bfloat16
Run it again after an interruption: every finished step is reused, training resumes.
""")
@click.option("--config", "config_path", type=click.Path(path_type=Path),
              default=Path("configs/default.toml"), show_default=True,
              help="Training settings (TOML with a [model] table).")
@click.option("--work", "work_dir", type=click.Path(path_type=Path), default=Path("data"),
              show_default=True, help="Folder for corpus/, tokenizer/ and tokens/.")
@click.option("--run", "run_dir", type=click.Path(path_type=Path), default=Path("runs/default"),
              show_default=True, help="Training run folder (checkpoints, metrics).")
@click.option("-o", "--out", "out_dir", type=click.Path(path_type=Path), required=True,
              help="Bundle folder to write, e.g. models/NAME.")
@click.option("--styles", default=None, help="Comma-separated styles of music21's corpus (default: all 10).")
@click.option("--max-pieces-per-style", type=click.IntRange(min=1), default=None,
              help="Cap on inputs per style, for quick runs.")
@click.option("--vocab-size", type=click.IntRange(min=2, max=65535), default=4096, show_default=True,
              help="Tokenizer vocabulary size.")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
              help="Override a training setting, e.g. --set max_steps=200.")
@click.option("--device", default=None, help="cpu, cuda or auto (default: the config's).")
@click.option("--evaluate", "run_evaluation", is_flag=True,
              help="Also run 'composer evaluate' and put its report into the bundle.")
@click.option("--samples", type=click.IntRange(min=1), default=SAMPLES_PER_STYLE, show_default=True,
              help="Samples per style for --evaluate.")
@click.option("--notes", "notes_path", type=click.Path(path_type=Path), default=None,
              help="Markdown appended to MODEL_CARD.md.")
@click.option("--force", is_flag=True, help="Replace an existing bundle folder.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bars.")
def recipe(config_path: Path, work_dir: Path, run_dir: Path, out_dir: Path,
           styles: str | None, max_pieces_per_style: int | None, vocab_size: int,
           overrides: tuple[str, ...], device: str | None, run_evaluation: bool, samples: int,
           notes_path: Path | None, force: bool, quiet: bool) -> None:
    """Build the corpus, train the tokenizer and the model, and export a bundle."""
    from composer.recipe import RecipeCallbacks, RecipeConfig, run_recipe

    config = RecipeConfig(
        out_dir=out_dir, config_path=config_path, work_dir=work_dir, run_dir=run_dir,
        styles=[s.strip() for s in styles.split(",") if s.strip()] if styles else None,
        max_pieces_per_style=max_pieces_per_style, vocab_size=vocab_size, overrides=list(overrides),
        device=device, evaluate=run_evaluation, samples=samples, notes_path=notes_path, force=force)
    bars = _Bars()

    def stage(number: int, steps: int, text: str) -> None:
        bars.close()
        click.echo(click.style(f"[{number}/{steps}] {text}", bold=True))

    def done(name: str, result: Any) -> None:
        bars.close()
        _print_result(name, result, config)

    try:
        run_recipe(config, RecipeCallbacks(stage=stage, done=done, progress=None if quiet else bars.update,
                                           train_step=None if quiet else bars.train_step))
    finally:
        bars.close()


class _Bars:
    """One tqdm bar at a time: a step's progress, or training's steps with loss and speed."""

    def __init__(self) -> None:
        self.what = ""
        self.bar: Any = None  # (update, close) of a progress_bar, or a tqdm for training
        self.val = ""

    def update(self, what: str, done: int, total: int) -> None:
        if what != self.what or self.bar is None:
            self.close()
            self.what, self.bar = what, progress_bar(what, UNITS.get(what, "step"))
        self.bar[0](done, total)

    def train_step(self, info: dict[str, Any]) -> None:
        if self.what != "training" or self.bar is None:
            from tqdm import tqdm

            self.close()
            self.what = "training"
            self.bar = tqdm(total=info["max_steps"], initial=info["step"] - 1, desc="training",
                            unit="step", dynamic_ncols=True)
        postfix = {"loss": f"{info['loss']:.3f}", "tok/s": f"{info['tokens_per_s']:.0f}"}
        if "val_loss" in info:
            self.val = f"{info['val_loss']:.3f}"
        if self.val:
            postfix["val"] = self.val
        self.bar.set_postfix(postfix, refresh=False)
        self.bar.update(1)

    def close(self) -> None:
        if self.bar is not None:
            if isinstance(self.bar, tuple):
                self.bar[1]()
            else:
                self.bar.close()
        self.bar, self.what = None, ""


def _print_result(name: str, result: Any, config: RecipeConfig) -> None:
    """What the step's own command prints when it is done."""
    if name == "corpus":
        report = result.report
        for entry in report["skipped"]:
            click.echo(f"skipped {entry['reason']}", err=True)
        for entry in report.get("repaired", []):
            click.echo(f"warning: {entry['what']}", err=True)
        click.echo(f"{report['pieces']} pieces in {len(report['styles'])} styles from {report['inputs']} "
                   f"inputs ({report['reused_from_cache']} unchanged, {report['skipped_inputs']} skipped) "
                   f"in {report['seconds']:.0f} s → {config.corpus_dir}")
    elif name == "tokenizer":
        for entry in result.skipped:
            click.echo(f"skipped {entry['id']}: {entry['reason']}", err=True)
        tok, notes = result.tokenizer, max(result.notes, 1)
        click.echo(f"{tok.vocab_size} ids ({len(tok.base_vocab)} base tokens, {len(tok.style_ids)} styles) "
                   f"from {result.pieces} train pieces in {result.seconds:.0f} s; tokens per note "
                   f"{result.base_tokens / notes:.2f} plain, {result.bpe_tokens / notes:.2f} with BPE "
                   f"→ {result.path}")
    elif name == "tokens":
        for entry in result.skipped:
            click.echo(f"skipped {entry['id']}: {entry['reason']}", err=True)
        summary = ", ".join(f"{split} {row['pieces']} pieces / {row['sequences']} sequences / "
                            f"{row['tokens']:,} tokens" for split, row in result.meta["splits"].items())
        click.echo(f"{summary} ({result.reused} pieces reused from the cache, {len(result.skipped)} "
                   f"skipped) in {result.seconds:.0f} s → {config.tokens_dir}")
    elif name == "train":
        click.echo(f"trained {result['parameters'] / 1e6:.2f}M parameters to step {result['steps']}: "
                   f"loss {result['final_loss']:.4f}, best val {result['best_val_loss']:.4f} "
                   f"in {result['seconds']:.0f} s → {config.run_dir}")
    elif name == "export":
        click.echo(describe_bundle(result, config.out_dir))
    elif name == "evaluate":
        bits, judged = result["bits_per_note"]["overall"], result["style_accuracy"]
        baseline = result["bits_per_note"]["baseline"]
        click.echo(f"bits per note: model {bits['model']:.2f}, {baseline} {bits[baseline]:.2f} "
                   f"(ratio {bits['model_vs_ngram']:.2f}); style accuracy "
                   f"{judged['generated']['accuracy']:.2f} (real pieces "
                   f"{judged['ceiling_real_test']['accuracy']:.2f}); novelty: "
                   f"{result['novelty']['flagged_samples']} samples copy ≥ "
                   f"{result['novelty']['flag_bars']} bars")
        click.echo(f"wrote {config.report_dir / 'report.md'} in {result['seconds']:.0f} s")
