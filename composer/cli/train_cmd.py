"""``composer train``: train or resume a model on token shards."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click


@click.command(epilog="""\b
Examples:
  composer train data/tokens -o runs/default --config configs/default.toml
  composer train data/tokens -o runs/smoke --config configs/tiny.toml --set max_steps=100
  composer train data/tokens -o runs/default --resume          # after an interruption
  composer train data/tokens -o runs/longer --config configs/default_longer.toml --init models/default
  composer train data/tokens -o runs/gpu --config configs/default.toml --device cuda --set batch_size=128
  torchrun --nproc_per_node=2 -m composer train data/tokens -o runs/ddp --config configs/tiny.toml
""")
@click.argument("tokens_dir", type=click.Path(path_type=Path))
@click.option("-o", "--out", "run_dir", type=click.Path(path_type=Path), required=True,
              help="Run folder: checkpoints/, metrics.jsonl.")
@click.option("--config", "config_path", type=click.Path(path_type=Path), default=None,
              help="TOML file with training settings and a [model] table.")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
              help="Override a setting, e.g. --set max_steps=200 --set model.n_layer=4.")
@click.option("--device", default=None, help="cpu, cuda or auto (default: the config's, auto).")
@click.option("--resume", is_flag=True, help="Continue from the newest valid checkpoint.")
@click.option("--init", "init_from", type=click.Path(path_type=Path), default=None,
              help="Start from this model bundle's weights (fine-tune it, or train it longer); "
                   "TOKENS_DIR must be tokenized with its tokenizer.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
def train(tokens_dir: Path, run_dir: Path, config_path: Path | None, overrides: tuple[str, ...],
          device: str | None, resume: bool, init_from: Path | None, quiet: bool) -> None:
    """Train a transformer on TOKENS_DIR (made by 'composer tokenize')."""
    from composer.train.config import load_config
    from composer.train.loop import train as run_training

    config = load_config(config_path, train_settings(overrides, device))
    if init_from is not None:
        config.init_from = str(init_from)
    bar: dict[str, Any] = {}

    def on_step(info: dict[str, Any]) -> None:
        if quiet:
            return
        if "bar" not in bar:
            from tqdm import tqdm

            bar["bar"] = tqdm(total=info["max_steps"], initial=info["step"] - 1, desc="training",
                              unit="step", dynamic_ncols=True)
        postfix = {"loss": f"{info['loss']:.3f}", "tok/s": f"{info['tokens_per_s']:.0f}"}
        if "val_loss" in info:
            bar["val"] = f"{info['val_loss']:.3f}"
        if "val" in bar:
            postfix["val"] = bar["val"]
        bar["bar"].set_postfix(postfix, refresh=False)
        bar["bar"].update(1)

    try:
        summary = run_training(tokens_dir, run_dir, config, resume=resume, on_step=on_step)
    finally:
        if "bar" in bar:
            bar["bar"].close()
    if summary.get("world_size", 1) > 1 and not _is_rank_zero():
        return
    click.echo(f"trained {summary['parameters'] / 1e6:.2f}M parameters to step {summary['steps']}: "
               f"loss {summary['final_loss']:.4f}, best val {summary['best_val_loss']:.4f} "
               f"in {summary['seconds']:.0f} s → {run_dir}")


def train_settings(overrides: tuple[str, ...], device: str | None) -> list[str]:
    """``--set`` items plus ``--device`` as one more setting."""
    return list(overrides) + ([f"device={device}"] if device else [])


def _is_rank_zero() -> bool:
    import os

    return os.environ.get("RANK", "0") == "0"
