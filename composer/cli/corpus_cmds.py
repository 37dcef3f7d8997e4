"""``composer corpus build`` and ``composer corpus stats``."""

from __future__ import annotations

import json
from pathlib import Path

import click

from composer.cli.progress import progress_bar


@click.group()
def corpus() -> None:
    """Build and inspect labelled corpora (MIDI + manifest)."""


@corpus.command(epilog="""\b
Examples:
  composer corpus build -o data/corpus
  composer corpus build music21 --styles bach,palestrina --max-pieces-per-style 50 -o /tmp/c
  composer corpus build ~/midi --labels folder -o data/mine   # ~/midi/<style>/*.mid
  composer corpus build ~/maestro --labels maestro.csv -o data/maestro
""")
@click.argument("sources", nargs=-1)
@click.option("-o", "--out", "out_dir", type=click.Path(path_type=Path), required=True,
              help="Corpus folder to write (midi/, manifest.jsonl, report.json).")
@click.option("--labels", default="folder", show_default=True,
              help="'folder' (the first sub-folder names the style) or a CSV with "
                   "path,style or midi_filename,canonical_composer columns.")
@click.option("--styles", default=None, help="Comma-separated styles to keep, e.g. bach,irish.")
@click.option("--max-pieces-per-style", type=click.IntRange(min=1), default=None,
              help="Convert at most N inputs per style (quick runs and tests).")
@click.option("--workers", type=click.IntRange(min=0), default=0, show_default=True,
              help="Worker processes; 0 uses every core.")
@click.option("--piece-timeout", type=click.FloatRange(min=1), default=300.0, show_default=True,
              help="Seconds allowed to convert one input before it is skipped.")
@click.option("--segment-bars", type=click.IntRange(min=4), default=32, show_default=True,
              help="Pieces longer than 1.5x this are cut into excerpts of this many bars.")
@click.option("--no-cache", is_flag=True, help="Convert everything again, ignoring earlier runs.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
def build(sources: tuple[str, ...], out_dir: Path, labels: str, styles: str | None,
          max_pieces_per_style: int | None, workers: int, piece_timeout: float,
          segment_bars: int, no_cache: bool, quiet: bool) -> None:
    """Convert SOURCES (default: music21's built-in corpus) into a labelled MIDI corpus.

    A SOURCE is 'music21' or a folder of .mid/.midi/.mxl/.musicxml/.xml/.abc/.krn
    files. Every tune of a multi-tune ABC book becomes its own piece. Inputs that
    cannot be read are skipped and listed with their reason in report.json.
    """
    from composer.corpus.build import CorpusConfig, build_corpus

    config = CorpusConfig(
        out_dir=out_dir,
        sources=list(sources) or ["music21"],
        labels=labels,
        styles=[s.strip() for s in styles.split(",") if s.strip()] if styles else None,
        max_pieces_per_style=max_pieces_per_style,
        workers=workers,
        piece_seconds=piece_timeout,
        segment_bars=segment_bars,
        max_whole_bars=segment_bars + segment_bars // 2,
        use_cache=not no_cache,
    )
    update, close = progress_bar("converting", "input") if not quiet else (None, lambda: None)
    try:
        result = build_corpus(config, progress=update)
    finally:
        close()
    report = result.report
    for entry in report["skipped"]:
        click.echo(f"skipped {entry['reason']}", err=True)
    for entry in report.get("repaired", []):
        click.echo(f"warning: {entry['what']}", err=True)
    click.echo(
        f"{report['pieces']} pieces in {len(report['styles'])} styles from {report['inputs']} "
        f"inputs ({report['reused_from_cache']} unchanged, {report['skipped_inputs']} skipped) "
        f"in {report['seconds']:.0f} s → {out_dir}"
    )


@corpus.command(epilog="""\b
Examples:
  composer corpus stats data/corpus
  composer corpus stats data/corpus --json > stats.json
""")
@click.argument("corpus_dir", type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def stats(corpus_dir: Path, as_json: bool) -> None:
    """Pieces, notes, bars and minutes per style of a built corpus."""
    from composer.corpus.build import corpus_stats

    table = corpus_stats(corpus_dir)
    if as_json:
        click.echo(json.dumps(table, indent=2))
        return
    click.echo(f"{'style':<16}{'pieces':>8}{'notes':>10}{'bars':>9}{'minutes':>9}")
    totals = {"pieces": 0, "notes": 0, "bars": 0, "minutes": 0.0}
    for style, row in table.items():
        click.echo(f"{style:<16}{row['pieces']:>8}{row['notes']:>10}{row['bars']:>9}"
                   f"{row['minutes']:>9.1f}")
        for key in totals:
            totals[key] += row[key]
    click.echo(f"{'total':<16}{totals['pieces']:>8}{totals['notes']:>10}{totals['bars']:>9}"
               f"{totals['minutes']:>9.1f}")
