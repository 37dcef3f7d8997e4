"""music21 score → MusicXML / MXL bytes, and MusicXML → SVG, PNG and PDF pages via verovio.

verovio (a pip wheel) engraves; cairosvg draws its SVG pages into PNG images or one
multi-page PDF. No external program is run, but cairosvg needs the cairo library
(``libcairo2`` on Debian/Ubuntu); where it is missing, PDF and PNG output raise an
``OutputError`` saying what to install (``require_cairo``).
"""

from __future__ import annotations

import contextlib
import ctypes
import io
import logging
import os
import re
import zipfile
from functools import lru_cache
from importlib.resources import files
from pathlib import Path
from typing import TYPE_CHECKING
from xml.etree import ElementTree

from composer.errors import OutputError
from composer.score.config import PAPER_SIZES_MM, ScoreConfig

if TYPE_CHECKING:
    import music21

log = logging.getLogger(__name__)

MM_PER_INCH = 25.4
POINTS_PER_INCH = 72.0
MXL_CONTAINER = """<?xml version="1.0" encoding="UTF-8"?>
<container>
  <rootfiles>
    <rootfile full-path="score.musicxml" media-type="application/vnd.recordare.musicxml+xml"/>
  </rootfiles>
</container>
"""


class EngravingError(RuntimeError):
    """verovio could not read the MusicXML it was given (a bug in composer, not the input)."""


CAIRO_SUFFIXES = (".pdf", ".png")  # the formats drawn by cairo; SVG and MusicXML need no cairo
CAIRO_MISSING = ("{what} needs the cairo library, which is not installed here: install it "
                 "(Debian/Ubuntu: sudo apt install libcairo2; Fedora: sudo dnf install cairo; "
                 "macOS: brew install cairo), or write .svg or .musicxml instead")


def require_cairo(what: str = "PDF and PNG output") -> None:
    """Raise ``OutputError`` (one line saying what to install) where cairo cannot be used.

    cairocffi opens the cairo library when it is imported and raises ``OSError`` where
    the library is missing (slim images, a fresh macOS); cairosvg imports cairocffi.
    Not cached: an import that worked once is free the next time.
    """
    try:
        import cairocffi  # noqa: F401
        import cairosvg  # noqa: F401
    except OSError:
        raise OutputError(CAIRO_MISSING.format(what=what)) from None
    except ImportError as exc:
        package = (exc.name or "cairosvg").split(".")[0]
        raise OutputError(f"{what} needs the Python package {package}, which is missing: "
                          f"pip install cairosvg") from None


def check_score_backend(path: str | Path) -> None:
    """Fail before any work (and before any file is written) where ``path``'s format
    cannot be drawn here: PDF and PNG need cairo."""
    suffix = Path(path).suffix.lower()
    if suffix in CAIRO_SUFFIXES:
        require_cairo(f"{path}: {suffix.lstrip('.').upper()} output")


def musicxml_bytes(stream: music21.stream.Score, title: str | None = None,
                   subtitle: str | None = None, paper: str = "a4", *, for_verovio: bool = False) -> bytes:
    """MusicXML 4 for a score built by ``score.build`` (measures, ties, beams already set).

    The title and subtitle become centred credits at the top of page 1 (what MuseScore
    and verovio print), the page size is given so that readers centre them, and
    music21's placeholder composer "Music21" is left out.
    """
    from music21.musicxml.m21ToXml import ScoreExporter

    exporter = ScoreExporter(stream, makeNotation=False)
    chatter = io.StringIO()  # music21 writes its warnings to stderr; library code never prints
    with contextlib.redirect_stderr(chatter):
        root = exporter.parse()
    for line in chatter.getvalue().splitlines():
        if line.strip():
            log.debug("music21: %s", line.strip())
    identification = root.find("identification")
    if identification is not None:
        for creator in identification.findall("creator"):
            if creator.text == "Music21":
                identification.remove(creator)
    width, height = _add_page_layout(root, paper)
    _add_credits(root, title, subtitle, width, height, for_verovio=for_verovio)
    return exporter.asBytes()


def _add_page_layout(root: ElementTree.Element, paper: str) -> tuple[int, int]:
    """``<page-layout>`` in tenths (music21 writes 7 mm = 40 tenths); returns width, height."""
    defaults = root.find("defaults")
    scaling = defaults.find("scaling") if defaults is not None else None
    millimeters = float(scaling.findtext("millimeters", "7")) if scaling is not None else 7.0
    tenths = float(scaling.findtext("tenths", "40")) if scaling is not None else 40.0
    width_mm, height_mm = PAPER_SIZES_MM[paper]
    width, height = round(width_mm / millimeters * tenths), round(height_mm / millimeters * tenths)
    if defaults is None:
        return width, height
    layout = ElementTree.Element("page-layout")
    ElementTree.SubElement(layout, "page-height").text = str(height)
    ElementTree.SubElement(layout, "page-width").text = str(width)
    margin = str(round(12 / millimeters * tenths))  # 12 mm all round
    margins = ElementTree.SubElement(layout, "page-margins", type="both")
    for side in ("left", "right", "top", "bottom"):
        ElementTree.SubElement(margins, f"{side}-margin").text = margin
    defaults.insert(1 if scaling is not None else 0, layout)
    return width, height


def _add_credits(root: ElementTree.Element, title: str | None, subtitle: str | None,
                 width: int, height: int, *, for_verovio: bool) -> None:
    """Insert the title block as ``<credit>`` elements (before the part list).

    MuseScore stacks separate title and subtitle credits on top of each other, so they
    share one credit there (two ``credit-words``, the second on a new line); verovio
    prints only the first ``credit-words`` of a credit, so it is given two credits.
    """
    children = list(root)
    at = next((i for i, child in enumerate(children) if child.tag == "part-list"), len(children))
    lines = [(text, kind, size) for text, kind, size in
             ((title, "title", 22), (subtitle, "subtitle", 14)) if text]
    credit = None
    y = height - 60
    for text, kind, size in lines:
        if credit is None or for_verovio:
            credit = ElementTree.Element("credit", page="1")
            ElementTree.SubElement(credit, "credit-type").text = kind
            root.insert(at, credit)
            at += 1
            attributes = {"default-x": str(width // 2), "default-y": str(y), "justify": "center",
                          "halign": "center", "valign": "top"}
        else:
            attributes = {}
            text = "\n" + text
        words = ElementTree.SubElement(credit, "credit-words", attributes)
        words.set("font-size", str(size))
        words.set("font-weight", "bold" if kind == "title" else "normal")  # verovio keeps the weight
        words.text = text
        y -= size * 3


def mxl_bytes(xml: bytes) -> bytes:
    """A compressed MusicXML (.mxl) archive holding ``xml``."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(zipfile.ZipInfo("mimetype"), "application/vnd.recordare.musicxml")
        archive.writestr("META-INF/container.xml", MXL_CONTAINER, zipfile.ZIP_DEFLATED)
        archive.writestr("score.musicxml", xml, zipfile.ZIP_DEFLATED)
    return buffer.getvalue()


@lru_cache(maxsize=1)
def _log_to_buffer() -> bool:
    """Route verovio's log into a buffer that ``toolkit.getLog()`` returns.

    The Python binding does not expose ``vrv::EnableLogToBuffer``; it is called
    through ctypes. Without it verovio would print to stderr, so its log is switched
    off instead (and warnings cannot be reported).
    """
    import verovio

    library = Path(verovio.__file__).with_name("_verovio.abi3.so")
    try:
        function = ctypes.CDLL(os.fspath(library))["_ZN3vrv17EnableLogToBufferEb"]
    except (OSError, AttributeError):
        verovio.enableLog(verovio.LOG_OFF)
        log.debug("verovio's log cannot be captured here; it is switched off")
        return False
    function.argtypes = [ctypes.c_bool]
    function(True)
    return True


def verovio_options(config: ScoreConfig) -> dict[str, object]:
    width_mm, height_mm = PAPER_SIZES_MM[config.paper]
    zoom = 100 / config.staff_size  # lay out a larger page, then scale it down to the paper
    return {
        "pageWidth": round(width_mm * 10 * zoom),  # verovio page units: tenths of a millimetre
        "pageHeight": round(height_mm * 10 * zoom),
        "scale": config.staff_size,
        "breaks": "auto",
        "adjustPageHeight": False,
        "justifyVertically": False,
        "header": "auto",
        "footer": "none",
        "pageMarginTop": 80,
        "pageMarginBottom": 80,
        "pageMarginLeft": 60,
        "pageMarginRight": 60,
        "svgViewBox": True,
    }


def engrave(xml: bytes, config: ScoreConfig | None = None) -> tuple[list[str], list[str]]:
    """SVG pages for a MusicXML document, and verovio's warnings (one per line)."""
    import verovio

    config = config or ScoreConfig()
    captured = _log_to_buffer()
    toolkit = verovio.toolkit()
    # verovio sets its default font path only in the thread that first imports it; a toolkit
    # made in any other thread (a web server's workers) finds no fonts without this
    toolkit.setResourcePath(str(files("verovio") / "data"))
    toolkit.setOptions(verovio_options(config))
    loaded = toolkit.loadData(xml.decode("utf-8"))
    messages = _messages(toolkit) if captured else []
    if not loaded:
        raise EngravingError(f"verovio could not load the MusicXML: {'; '.join(messages)}")
    pages = [toolkit.renderToSVG(page) for page in range(1, toolkit.getPageCount() + 1)]
    if captured:
        messages += _messages(toolkit)
    return pages, messages


def _messages(toolkit: object) -> list[str]:
    text = toolkit.getLog()  # type: ignore[attr-defined]
    return [line.strip() for line in text.splitlines() if line.strip()]


def page_size_points(config: ScoreConfig) -> tuple[float, float]:
    width_mm, height_mm = PAPER_SIZES_MM[config.paper]
    scale = POINTS_PER_INCH / MM_PER_INCH
    return width_mm * scale, height_mm * scale


_GLYPH_DEFINITION = re.compile(r'<g id="([^"]+)">\s*(<path [^>]*/>)\s*</g>')
_GLYPH_USE = re.compile(r'<use xlink:href="#([^"]+)" transform="([^"]*)"\s*/>')
_TEXT_GLYPH = re.compile(r'<tspan font-family="Leipzig" font-size="(\d+)px">([^<]*)</tspan>')
_STYLE = re.compile(r"<style[^>]*>.*?</style>", re.DOTALL)
_PLAIN_GROUP = re.compile(r'<g(?: id="[^"]*")?(?: class="([^"]*)")?>')
BOLD_CLASSES = {"ending", "fing", "reh", "tempo"}
ITALIC_CLASSES = {"dir", "dynam", "mNum"}
METRONOME_GLYPHS = {  # SMuFL metronome notes (both code ranges) → Unicode music symbols
    "\ue1d2": "\U0001d15d", "\ue1d3": "\U0001d15e", "\ue1d5": "\u2669", "\ue1d7": "\u266a",
    "\ue1e7": ".", "\ueca2": "\U0001d15d", "\ueca3": "\U0001d15e", "\ueca5": "\u2669",
    "\ueca7": "\u266a", "\uecb7": ".",
}


def for_cairo(svg: str) -> str:
    """verovio's SVG, simplified for cairosvg (same drawing, three times faster).

    * Glyph ``<use>`` references become the glyph's path: cairosvg re-parses the
      document for every ``<use>``.
    * The style sheets go (matching CSS on every element is slow, and cairo cannot use
      the embedded web font); what they said is written as attributes: shapes are
      stroked in black, tempo marks bold, directions italic.
    * The SMuFL text glyphs of tempo marks become the Unicode note symbols of an
      ordinary font.
    """
    glyphs = dict(_GLYPH_DEFINITION.findall(svg))

    def inline(match: re.Match[str]) -> str:
        path = glyphs.get(match.group(1))
        if path is None:
            return match.group(0)
        return f'<g transform="{match.group(2)}">{path}</g>'

    def text_glyph(match: re.Match[str]) -> str:
        size = int(match.group(1)) * 2 // 3
        text = "".join(METRONOME_GLYPHS.get(ch, ch) for ch in match.group(2))
        return f'<tspan font-family="DejaVu Sans" font-size="{size}px">{text}</tspan>'

    def group(match: re.Match[str]) -> str:
        classes = set((match.group(1) or "").split())
        if classes & BOLD_CLASSES:
            return '<g font-weight="bold">'
        if classes & ITALIC_CLASSES:
            return '<g font-style="italic">'
        if "placeholder" in classes:
            return '<g visibility="hidden">'
        return "<g>"

    svg = _GLYPH_USE.sub(inline, svg)
    svg = _TEXT_GLYPH.sub(text_glyph, svg)
    svg = _STYLE.sub("", svg)
    svg = _PLAIN_GROUP.sub(group, svg)
    svg = _unwrap_plain_groups(svg)
    svg = svg.replace('<svg class="definition-scale" color="black"',
                      '<svg class="definition-scale" color="black" stroke="black"', 1)
    return svg.replace("<text ", '<text stroke="none" ')


_GROUP_TAG = re.compile(r"<g>|<g\s[^>]*>|</g>")


def _unwrap_plain_groups(svg: str) -> str:
    """Drop ``<g>`` … ``</g>`` pairs without attributes, keeping their content."""
    out: list[str] = []
    stack: list[bool] = []  # per open group: is it a plain one being dropped?
    position = 0
    for match in _GROUP_TAG.finditer(svg):
        tag = match.group(0)
        if tag.endswith("/>"):
            continue
        if tag == "</g>":
            if stack and stack.pop():
                out.append(svg[position:match.start()])
                position = match.end()
        elif tag == "<g>":
            out.append(svg[position:match.start()])
            position = match.end()
            stack.append(True)
        else:
            stack.append(False)
    out.append(svg[position:])
    return "".join(out)


def png_bytes(svg: str, config: ScoreConfig | None = None) -> bytes:
    """One SVG page as a PNG image on white at ``config.png_dpi``."""
    require_cairo("PNG output")
    import cairosvg

    config = config or ScoreConfig()
    width_mm, _ = PAPER_SIZES_MM[config.paper]
    width_px = round(width_mm / MM_PER_INCH * config.png_dpi)
    return cairosvg.svg2png(bytestring=for_cairo(svg).encode("utf-8"), output_width=width_px,
                            background_color="white")


def pdf_bytes(pages: list[str], config: ScoreConfig | None = None) -> bytes:
    """All SVG pages as one PDF, drawn by cairo page after page into a single document."""
    require_cairo("PDF output")
    import cairocffi
    from cairosvg.parser import Tree
    from cairosvg.surface import PDFSurface

    config = config or ScoreConfig()
    width, height = page_size_points(config)
    buffer = io.BytesIO()
    document = cairocffi.PDFSurface(buffer, width, height)

    class _Page(PDFSurface):
        """cairosvg's PDF surface drawing into the shared document instead of its own."""

        def _create_surface(self, w: float, h: float) -> tuple[object, float, float]:
            return document, w, h

    for svg in pages:
        tree = Tree(bytestring=for_cairo(svg).encode("utf-8"))
        # cairosvg measures in CSS pixels (96 per inch); the page is ``width`` points wide
        _Page(tree, None, 96, output_width=width * 96 / POINTS_PER_INCH,
              output_height=height * 96 / POINTS_PER_INCH)
        document.show_page()
    document.finish()
    return buffer.getvalue()
