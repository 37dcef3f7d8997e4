"""``composer styles``: the styles a model bundle knows."""

from __future__ import annotations

from pathlib import Path

import click


@click.command(epilog="""\b
Examples:
  composer styles
  composer styles --model models/mine
""")
@click.option("--model", type=click.Path(path_type=Path), default=None,
              help="Model bundle folder (default: $COMPOSER_MODEL or the shipped model).")
def styles(model: Path | None) -> None:
    """List the styles of a model, each with a description and its piece count."""
    from composer.api import default_model_path
    from composer.model.bundle import load_bundle

    bundle = load_bundle(model or default_model_path())
    for name, info in sorted(bundle.styles.items()):
        pieces = info.get("pieces")
        count = f"{pieces:>6} pieces" if pieces is not None else " " * 13
        click.echo(f"{name:<14}{count}  {info.get('description', '')}")
