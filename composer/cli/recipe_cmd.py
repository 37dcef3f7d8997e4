"""``composer recipe``: from nothing to a model bundle in one command.

It runs the project's own commands in order (corpus build → tokenizer train → tokenize →
train → export, and optionally evaluate → export with the report) and reuses whatever
an earlier, interrupted run left: the corpus cache, a tokenizer, token shards whose
tokenizer matches, and the newest training checkpoint.
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from composer.cli.corpus_cmds import build as corpus_build
from composer.cli.evaluate_cmd import evaluate
from composer.cli.export_cmd import export
from composer.cli.tokenizer_cmds import tokenize
from composer.cli.tokenizer_cmds import train as tokenizer_train
from composer.cli.train_cmd import train, train_settings


def _tokens_match(tokens_dir: Path, tokenizer_json: Path) -> bool:
    """True when ``tokens_dir`` holds finished shards made with this very tokenizer."""
    from composer.model.checkpoint import sha256_file
    from composer.tokens.shards import META

    meta = tokens_dir / META
    if not meta.is_file() or not tokenizer_json.is_file():
        return False
    try:
        recorded = json.loads(meta.read_text(encoding="utf-8")).get("tokenizer_sha256")
    except (OSError, ValueError):
        return False
    return recorded == sha256_file(tokenizer_json)


def _training_state(run_dir: Path, max_steps: int) -> str:
    """'done', 'resume' or 'new' for a run folder."""
    from composer.model.checkpoint import RUN_CHECKPOINTS, RUN_SUMMARY, list_checkpoints

    summary = run_dir / RUN_SUMMARY
    if summary.is_file():
        try:
            if json.loads(summary.read_text(encoding="utf-8")).get("steps", 0) >= max_steps:
                return "done"
        except (OSError, ValueError):
            pass
    return "resume" if list_checkpoints(run_dir / RUN_CHECKPOINTS) else "new"


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
@click.option("--samples", type=click.IntRange(min=1), default=20, show_default=True,
              help="Samples per style for --evaluate.")
@click.option("--notes", "notes_path", type=click.Path(path_type=Path), default=None,
              help="Markdown appended to MODEL_CARD.md.")
@click.option("--force", is_flag=True, help="Replace an existing bundle folder.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bars.")
@click.pass_context
def recipe(ctx: click.Context, config_path: Path, work_dir: Path, run_dir: Path, out_dir: Path,
           styles: str | None, max_pieces_per_style: int | None, vocab_size: int,
           overrides: tuple[str, ...], device: str | None, run_evaluation: bool, samples: int,
           notes_path: Path | None, force: bool, quiet: bool) -> None:
    """Build the corpus, train the tokenizer and the model, and export a bundle."""
    from composer.errors import ConfigError
    from composer.tokens.tokenizer import TOKENIZER_FILE
    from composer.train.config import load_config

    if not config_path.is_file():
        raise ConfigError(f"{config_path}: no such recipe config (run from the project folder "
                          "or pass --config FILE.toml)")
    if out_dir.exists() and not force:
        raise ConfigError(f"{out_dir} exists; pass --force to replace it")
    # a bad setting fails now, not after hours of work
    max_steps = load_config(config_path, train_settings(overrides, device)).max_steps
    corpus_dir, tokenizer_dir, tokens_dir = work_dir / "corpus", work_dir / "tokenizer", work_dir / "tokens"
    tokenizer_json = tokenizer_dir / TOKENIZER_FILE
    steps = 6 if run_evaluation else 5

    def header(number: int, text: str) -> None:
        click.echo(click.style(f"[{number}/{steps}] {text}", bold=True))

    header(1, f"corpus → {corpus_dir} (unchanged inputs come from its cache)")
    ctx.invoke(corpus_build, out_dir=corpus_dir, styles=styles,
               max_pieces_per_style=max_pieces_per_style, quiet=quiet)

    if tokenizer_json.is_file():
        header(2, f"tokenizer: reusing {tokenizer_json}")
    else:
        header(2, f"tokenizer → {tokenizer_dir}")
        ctx.invoke(tokenizer_train, corpus_dir=corpus_dir, out_dir=tokenizer_dir,
                   vocab_size=vocab_size, quiet=quiet)

    if _tokens_match(tokens_dir, tokenizer_json):
        header(3, f"tokens: reusing {tokens_dir}")
    else:
        header(3, f"tokens → {tokens_dir}")
        ctx.invoke(tokenize, corpus_dir=corpus_dir, tokenizer_dir=tokenizer_dir, out_dir=tokens_dir,
                   quiet=quiet)

    state = _training_state(run_dir, max_steps)
    if state == "done":
        header(4, f"training: {run_dir} already ran {max_steps} steps")
    else:
        header(4, f"training → {run_dir}" + (" (resuming)" if state == "resume" else ""))
        ctx.invoke(train, tokens_dir=tokens_dir, run_dir=run_dir, config_path=config_path,
                   overrides=overrides, device=device, resume=state == "resume", quiet=quiet)

    header(5, f"bundle → {out_dir}")
    ctx.invoke(export, run_dir=run_dir, out_dir=out_dir, corpus_dir=corpus_dir, tokens_dir=tokens_dir,
               notes_path=notes_path, force=True)
    if run_evaluation:
        report_dir = run_dir / "evaluation"
        header(6, f"evaluation → {report_dir}, then the bundle again with its report")
        ctx.invoke(evaluate, model=out_dir, corpus_dir=corpus_dir, out_dir=report_dir,
                   samples=samples, tokens_dir=tokens_dir, quiet=quiet)
        ctx.invoke(export, run_dir=run_dir, out_dir=out_dir, corpus_dir=corpus_dir,
                   tokens_dir=tokens_dir, notes_path=notes_path, report_dir=report_dir, force=True)
