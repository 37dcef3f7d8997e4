"""Sheet music: a ``symusic.Score`` → music21 → MusicXML, and via verovio → SVG, PNG or PDF.

The only module family that imports music21 for notation. The work is split:

* ``meter``, ``grid``, ``durations``, ``beams`` — bars, the quantization grid, notatable
  durations and beams (plain Python);
* ``layout`` — one staff's voices laid out bar by bar: rests, ties, tuplets, beams;
* ``clefs``, ``voices``, ``staves`` — clefs, the lines inside a track, grand staves;
* ``plan`` — a symusic score → a notation plan (keys, tempo marks, parts);
* ``build`` — the plan → a music21 score;
* ``render`` — MusicXML/MXL bytes, verovio SVG pages, PNG, one PDF;
* ``meta`` — titles and subtitles from the file and its provenance text.

``write_score`` is what ``composer score`` and ``--score`` on generate/continue call.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

from composer.errors import OutputError
from composer.io.outputs import check_output, write_atomic
from composer.score.config import ScoreConfig
from composer.score.meta import (
    MidiText,
    choose_title,
    read_midi_text,
    subtitle_from_provenance,
    title_for_style,
)

if TYPE_CHECKING:
    import music21
    import symusic

log = logging.getLogger(__name__)

SINGLE_FILE_SUFFIXES = (".musicxml", ".xml", ".mxl", ".pdf")
PAGED_SUFFIXES = (".svg", ".png")  # one file per page: OUT-1.svg, OUT-2.svg, …
OUTPUT_SUFFIXES = SINGLE_FILE_SUFFIXES + PAGED_SUFFIXES

__all__ = [
    "OUTPUT_SUFFIXES",
    "ScoreConfig",
    "page_paths",
    "render_score",
    "score_file",
    "score_to_musicxml",
    "score_to_stream",
    "subtitle_from_provenance",
    "title_for_style",
    "write_score",
]


def score_to_stream(score: symusic.Score, *, title: str | None = None, subtitle: str | None = None,
                    config: ScoreConfig | None = None) -> music21.stream.Score:
    """A notated music21 score: quantized, in measures, with clefs, keys, voices and ties."""
    from composer.score.build import build_stream
    from composer.score.plan import plan_notation

    config = config or ScoreConfig()
    config.check()
    return build_stream(plan_notation(score, config), title, subtitle)


def score_to_musicxml(score: symusic.Score, *, title: str | None = None, subtitle: str | None = None,
                      config: ScoreConfig | None = None, for_verovio: bool = False) -> bytes:
    """MusicXML bytes for a score (see ``score_to_stream``); ``for_verovio`` lays out the
    title block the way verovio reads it."""
    from composer.score.render import musicxml_bytes

    config = config or ScoreConfig()
    stream = score_to_stream(score, title=title, subtitle=subtitle, config=config)
    return musicxml_bytes(stream, title, subtitle, config.paper, for_verovio=for_verovio)


def render_score(score: symusic.Score, fmt: str, *, title: str | None = None,
                 subtitle: str | None = None, config: ScoreConfig | None = None) -> list[bytes]:
    """The bytes of an output format: one document for musicxml/mxl/pdf, one per page for svg/png."""
    from composer.score.render import engrave, mxl_bytes, pdf_bytes, png_bytes

    config = config or ScoreConfig()
    fmt = fmt.lower().lstrip(".")
    if fmt not in {s.lstrip(".") for s in OUTPUT_SUFFIXES}:
        raise OutputError(f"'{fmt}' is not a score format; use one of {', '.join(OUTPUT_SUFFIXES)}")
    engraved = fmt in ("pdf", "svg", "png")
    xml = score_to_musicxml(score, title=title, subtitle=subtitle, config=config, for_verovio=engraved)
    if fmt in ("musicxml", "xml"):
        return [xml]
    if fmt == "mxl":
        return [mxl_bytes(xml)]
    pages, messages = engrave(xml, config)
    for message in messages:
        log.warning("verovio: %s", message)
    if fmt == "svg":
        return [page.encode("utf-8") for page in pages]
    if fmt == "png":
        return [png_bytes(page, config) for page in pages]
    return [pdf_bytes(pages, config)]


def page_paths(out_path: Path, count: int) -> list[Path]:
    """Where the pages go: OUT.pdf itself, or OUT-1.svg … OUT-n.svg for paged formats."""
    if out_path.suffix.lower() not in PAGED_SUFFIXES:
        return [out_path]
    return [out_path.with_name(f"{out_path.stem}-{i}{out_path.suffix}") for i in range(1, count + 1)]


def write_score(score: symusic.Score, out_path: str | Path, *, title: str | None = None,
                subtitle: str | None = None, config: ScoreConfig | None = None,
                force: bool = False) -> list[Path]:
    """Write sheet music for ``score``; the suffix of ``out_path`` picks the format.

    ``.musicxml``/``.xml``/``.mxl`` (MusicXML), ``.pdf`` (one document), ``.svg``/``.png``
    (one file per page: OUT-1.svg, OUT-2.svg, …). Files are written atomically and an
    existing file is only replaced with ``force``. Returns the paths written.
    """
    out_path = Path(out_path)
    suffix = out_path.suffix.lower()
    if suffix not in OUTPUT_SUFFIXES:
        raise OutputError(f"{out_path}: unknown score format '{suffix or '(none)'}'; "
                          f"use one of {' '.join(OUTPUT_SUFFIXES)}")
    _check_writable(page_paths(out_path, 1), force)
    from composer.score.render import check_score_backend

    check_score_backend(out_path)  # a missing cairo is said before the notation work
    documents = render_score(score, suffix, title=title, subtitle=subtitle, config=config)
    paths = page_paths(out_path, len(documents))
    _check_writable(paths, force)
    for path, data in zip(paths, documents, strict=True):
        write_atomic(path, data, replace=force)
    if force and suffix in PAGED_SUFFIXES:
        _remove_stale_pages(out_path, len(paths))
    return paths


def score_file(in_path: str | Path, out_path: str | Path, *, title: str | None = None,
               subtitle: str | None = None, config: ScoreConfig | None = None,
               force: bool = False) -> list[Path]:
    """Sheet music for a MIDI (or MusicXML/ABC/kern) file, titled from the file's own text.

    The title is ``title``, else the provenance's title, the MIDI sequence name, a title
    for the provenance's style, or the file name; the subtitle is ``subtitle``, else the
    style and seed from the provenance.
    """
    from composer.io.reader import MIDI_SUFFIXES, ReadLimits, read_bytes, read_score
    from composer.score.plan import check_notation_size

    in_path = Path(in_path)
    config = config or ScoreConfig()
    config.check()
    score = read_score(in_path)
    check_notation_size(score, config, str(in_path))
    text = MidiText()
    if in_path.suffix.lower() in MIDI_SUFFIXES:
        text = read_midi_text(read_bytes(in_path, ReadLimits()))
    return write_score(score, out_path, title=choose_title(title, text, in_path),
                       subtitle=subtitle or subtitle_from_provenance(text.provenance),
                       config=config, force=force)


def _check_writable(paths: list[Path], force: bool) -> None:
    for path in paths:
        check_output(path, force)


def _remove_stale_pages(out_path: Path, written: int) -> None:
    """After overwriting, remove OUT-(n+1).svg … left from an earlier, longer score."""
    number = written + 1
    while True:
        stale = out_path.with_name(f"{out_path.stem}-{number}{out_path.suffix}")
        if not stale.is_file():
            return
        stale.unlink()
        number += 1
