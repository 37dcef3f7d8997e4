"""The ``composer`` command line: options → a config → one library call.

This package is the only place that prints or exits. Library errors
(``ComposerError``) are caught once, here, and become one line on stderr and
exit status 2. Heavy libraries are imported inside the commands that need them.
"""

from __future__ import annotations

import sys
import warnings
from typing import Any

import click

from composer import __version__
from composer.cli.corpus_cmds import corpus
from composer.cli.evaluate_cmd import evaluate
from composer.cli.export_cmd import export
from composer.cli.generate_cmds import continue_, generate, harmonize, vary
from composer.cli.recipe_cmd import recipe
from composer.cli.render_cmd import render
from composer.cli.score_cmd import score
from composer.cli.serve_cmd import serve
from composer.cli.styles_cmd import styles
from composer.cli.tokenizer_cmds import tokenize, tokenizer
from composer.cli.train_cmd import train
from composer.errors import ComposerError

EPILOG = """\b
Examples:
  composer corpus build -o data/corpus                 # the built-in corpus, 10 styles
  composer corpus build music21 --styles bach,irish --max-pieces-per-style 20 -o /tmp/small
  composer corpus build my_midi/ --labels labels.csv -o data/mine
  composer corpus stats data/corpus
  composer tokenizer train data/corpus -o data/tokenizer
  composer tokenize data/corpus --tokenizer data/tokenizer -o data/tokens
  composer train data/tokens -o runs/default --config configs/default.toml
  composer export runs/default -o models/mine --corpus data/corpus
  composer evaluate --corpus data/corpus -o report/
  composer recipe -o models/mine                       # all of the above in one command
  composer generate --style bach --bars 16 -o chorale.mid --score chorale.pdf
  composer continue tune.mid --style irish --bars 8 -o more.mid
  composer score more.mid -o more.pdf                  # or .svg .png .musicxml .mxl
  composer render more.mid -o more.wav                 # or .flac; needs FluidSynth + a SoundFont
  composer serve                                       # the web app on http://127.0.0.1:8000
"""


def _one_line_warning(message: Any, category: type[Warning], filename: str, lineno: int,
                      file: Any = None, line: str | None = None) -> None:
    click.echo(f"warning: {message}", err=True)


class ComposerGroup(click.Group):
    """Turns every ``ComposerError`` into one line and exit status 2."""

    def invoke(self, ctx: click.Context) -> Any:
        with warnings.catch_warnings():
            warnings.showwarning = _one_line_warning
            try:
                return super().invoke(ctx)
            except ComposerError as exc:
                click.echo(f"error: {exc}", err=True)
                sys.exit(2)
            except MemoryError:
                click.echo("error: out of memory (the input is too big for this machine)", err=True)
                sys.exit(2)
            except KeyboardInterrupt:
                click.echo("interrupted", err=True)
                sys.exit(130)


@click.group(cls=ComposerGroup, epilog=EPILOG, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="composer")
def cli() -> None:
    """Write music in a composer's style, continue your melody, print the score."""


cli.add_command(generate)
cli.add_command(continue_)
cli.add_command(harmonize)
cli.add_command(vary)
cli.add_command(score)
cli.add_command(render)
cli.add_command(styles)
cli.add_command(corpus)
cli.add_command(tokenizer)
cli.add_command(tokenize)
cli.add_command(train)
cli.add_command(export)
cli.add_command(evaluate)
cli.add_command(recipe)
cli.add_command(serve)


def main() -> None:
    cli(prog_name="composer")
