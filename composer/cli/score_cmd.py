"""``composer score``: sheet music for a MIDI (or MusicXML/ABC) file."""

from __future__ import annotations

from pathlib import Path

import click

PAPER_CHOICES = ("a4", "letter")


@click.command(epilog="""\b
Examples:
  composer score chorale.mid -o chorale.pdf
  composer score chorale.mid -o chorale.musicxml          # or .mxl, for MuseScore & co.
  composer score tune.mid -o pages/tune.svg               # pages/tune-1.svg, tune-2.svg, …
  composer score tune.mid -o tune.png --dpi 200 --force
  composer score piece.mid -o piece.pdf --title "Evening Hymn" --paper letter
""")
@click.argument("input_path", metavar="IN", type=click.Path(path_type=Path))
@click.option("-o", "--out", "out_path", type=click.Path(path_type=Path), required=True,
              help="Output file: .musicxml, .xml, .mxl, .pdf, .svg or .png "
                   "(SVG and PNG give one file per page: OUT-1.svg, OUT-2.svg, …).")
@click.option("--title", default=None,
              help="Title (default: from the file's provenance or name, or its style).")
@click.option("--subtitle", default=None,
              help="Subtitle (default: style and seed from the file's provenance).")
@click.option("--paper", type=click.Choice(PAPER_CHOICES), default="a4", show_default=True,
              help="Page size for PDF, SVG and PNG.")
@click.option("--staff-size", type=click.IntRange(10, 200), default=70, show_default=True,
              help="Staff size in percent of verovio's default (7.2 mm staves).")
@click.option("--dpi", type=click.IntRange(30, 1200), default=150, show_default=True,
              help="Resolution of PNG pages.")
@click.option("--key", "key_source", type=click.Choice(("analysis", "auto", "file")),
              default="analysis", show_default=True,
              help="Key signature: the analysed key, the file's (analysed where it has none), "
                   "or only the file's.")
@click.option("--force", is_flag=True, help="Overwrite existing output files.")
def score(input_path: Path, out_path: Path, title: str | None, subtitle: str | None, paper: str,
          staff_size: int, dpi: int, key_source: str, force: bool) -> None:
    """Engrave IN (MIDI, MusicXML, ABC or kern) as sheet music.

    Notes are quantized to the beat grid; parts are named by instrument, wide parts
    get a grand staff, and the key signature comes from the file or from analysis.
    PDF, SVG and PNG are engraved by verovio; no external program is needed.
    """
    from composer.score.config import ScoreConfig
    from composer.score.write import score_file

    config = ScoreConfig(paper=paper, staff_size=staff_size, png_dpi=dpi, key_source=key_source)
    written = score_file(input_path, out_path, title=title, subtitle=subtitle, config=config,
                         force=force)
    pages = f" ({len(written)} pages)" if len(written) > 1 else ""
    click.echo(f"wrote {', '.join(str(p) for p in written)}{pages}")
