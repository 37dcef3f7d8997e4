"""What goes into a corpus: the inputs of each source, each with its style label.

Two kinds of source: music21's built-in corpus (labelled by the table below) and a
folder of the user's files (labelled by sub-folder or by a CSV). Multi-tune ABC books
are split here into one input per tune, so that one bad tune cannot lose its book.
"""

from __future__ import annotations

import csv
import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from composer.errors import CorpusError, InputFileError
from composer.io.reader import MUSIC21_FORMATS, SUPPORTED_SUFFIXES, ReadLimits, detect_format, read_bytes

MUSIC21_SOURCE = "music21"

# Preferred file when music21 holds one piece in several formats (bwv277.mxl + .krn).
FORMAT_PREFERENCE = (".mxl", ".musicxml", ".xml", ".krn", ".abc", ".mid", ".midi")


@dataclass(frozen=True)
class StyleSpec:
    description: str
    folders: tuple[str, ...]  # music21 corpus folders
    include: str = r".*"  # regex on the file name
    exclude: str = r"^$"  # regex on the file name
    program: int = 52  # General MIDI program for parts without a known instrument
    qpm: float = 100.0  # tempo when the score gives none


# The built-in corpus, by style. ``test*`` books in the Essen folder are music21's test
# fixtures, not part of the collection.
MUSIC21_STYLES: dict[str, StyleSpec] = {
    "bach": StyleSpec("Four-part chorales harmonised by J. S. Bach", ("bach",), qpm=80),
    "palestrina": StyleSpec("Mass movements by Palestrina (Renaissance polyphony)",
                            ("palestrina",), qpm=110),
    "monteverdi": StyleSpec("Madrigals by Claudio Monteverdi", ("monteverdi",), qpm=100),
    "trecento": StyleSpec("Italian 14th-century (Trecento) polyphony", ("trecento",), qpm=90),
    "mozart": StyleSpec("String quartet movements by Mozart", ("mozart",), program=40, qpm=120),
    "haydn": StyleSpec("String quartet movements by Haydn", ("haydn",), program=40, qpm=120),
    "beethoven": StyleSpec("String quartet movements by Beethoven", ("beethoven",),
                           program=40, qpm=110),
    "german_folk": StyleSpec("German and central European folk songs (Essen collection)",
                             ("essenFolksong",), include=r".*\.abc$", exclude=r"^(han|test)",
                             program=73, qpm=100),
    "chinese_folk": StyleSpec("Chinese folk songs (Essen collection, han books)",
                              ("essenFolksong",), include=r"^han.*\.abc$", program=73, qpm=90),
    "irish": StyleSpec("Irish fiddle tunes: O'Neill's 1850 and Ryan's Mammoth Collection",
                       ("oneills1850", "ryansMammoth"), include=r".*\.abc$", program=40,
                       qpm=120),
}

STRING_PROGRAMS = {"violin": 40, "viola": 41, "violoncello": 42, "cello": 42, "bass": 43}


@dataclass(frozen=True)
class PieceInput:
    """One piece to convert: a file, or one tune of an ABC book."""

    style: str
    path: Path  # the file on disk
    rel: str  # path shown in the manifest, relative to the source root
    fmt: str  # "midi" or a music21 format name
    index: int | None = None  # tune number within an ABC book (0-based)
    text: str | None = field(default=None, repr=False)  # the tune's ABC text, from a book
    digest: str = ""  # sha256 of the content (file bytes or tune text)
    problem: str | None = None  # why the file cannot even be read (it is reported as skipped)

    @property
    def label(self) -> str:
        return self.rel if self.index is None else f"{self.rel}#{self.index}"


@dataclass
class SourceListing:
    inputs: list[PieceInput] = field(default_factory=list)
    ignored: list[dict[str, str]] = field(default_factory=list)  # not music / duplicates


def music21_corpus_root() -> Path:
    import importlib.util

    spec = importlib.util.find_spec("music21.corpus")
    if spec is None or not spec.submodule_search_locations:
        raise CorpusError("music21 is not installed; run 'pip install music21'")
    return Path(next(iter(spec.submodule_search_locations)))


def split_abc_book(text: str) -> list[str]:
    """One ABC text per tune, each prefixed with the book's header lines."""
    chunks = re.split(r"(?m)^(?=X:)", text)
    header, tunes = chunks[0], chunks[1:]
    header_fields = "".join(
        line + "\n" for line in header.splitlines() if re.match(r"^[A-Za-z]:|^%%", line)
    )
    return [header_fields + tune for tune in tunes if tune.strip()]


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _preferred_files(paths: Iterable[Path], listing: SourceListing, root: Path) -> list[Path]:
    """Drop non-music files and keep one format per piece stem."""
    by_stem: dict[Path, list[Path]] = {}
    for path in sorted(paths):
        if not path.is_file():
            continue
        suffix = path.suffix.lower()
        if suffix not in SUPPORTED_SUFFIXES:
            listing.ignored.append({"source": str(path.relative_to(root)),
                                    "reason": f"not a music file ({suffix or 'no suffix'})"})
            continue
        by_stem.setdefault(path.with_suffix(""), []).append(path)
    chosen = []
    for candidates in by_stem.values():
        candidates.sort(key=lambda p: FORMAT_PREFERENCE.index(p.suffix.lower())
                        if p.suffix.lower() in FORMAT_PREFERENCE else len(FORMAT_PREFERENCE))
        chosen.append(candidates[0])
        for other in candidates[1:]:
            listing.ignored.append({"source": str(other.relative_to(root)),
                                    "reason": f"same piece as {candidates[0].name}"})
    return sorted(chosen)


def _inputs_for_file(path: Path, rel: str, style: str, listing: SourceListing) -> None:
    fmt = detect_format(path)
    try:
        data = read_bytes(path, ReadLimits())
    except InputFileError as exc:  # empty, too big, unreadable: reported with the skipped inputs
        problem = str(exc).replace(str(path), rel, 1)
        listing.inputs.append(PieceInput(style, path, rel, fmt, problem=problem))
        return
    if fmt == "abc":
        utf16 = data[:2] in (b"\xff\xfe", b"\xfe\xff")
        text = data.decode("utf-16", errors="replace") if utf16 else data.decode("latin-1")
        tunes = split_abc_book(text)
        if len(tunes) > 1:
            for index, tune in enumerate(tunes):
                listing.inputs.append(PieceInput(style, path, rel, fmt, index, tune,
                                                 _digest(tune.encode())))
            return
        listing.inputs.append(PieceInput(style, path, rel, fmt, None, text, _digest(data)))
        return
    listing.inputs.append(PieceInput(style, path, rel, fmt, None, None, _digest(data)))


def list_music21_inputs(styles: Iterable[str] | None = None) -> SourceListing:
    """Inputs of music21's built-in corpus for the given styles (all by default)."""
    wanted = list(styles) if styles else list(MUSIC21_STYLES)
    unknown = [s for s in wanted if s not in MUSIC21_STYLES]
    if unknown:
        raise CorpusError(
            f"unknown style {', '.join(unknown)}; the built-in corpus has "
            f"{', '.join(MUSIC21_STYLES)}"
        )
    root = music21_corpus_root()
    listing = SourceListing()
    for style in wanted:
        spec = MUSIC21_STYLES[style]
        for folder in spec.folders:
            files = [
                p for p in (root / folder).rglob("*")
                if p.is_file() and re.match(spec.include, p.name) and not re.match(spec.exclude, p.name)
            ]
            for path in _preferred_files(files, listing, root):
                _inputs_for_file(path, str(path.relative_to(root)), style, listing)
    return listing


def read_label_csv(csv_path: Path) -> dict[str, str]:
    """Relative path → style, from ``path,style`` or MAESTRO-style CSV columns."""
    try:
        with csv_path.open(newline="", encoding="utf-8-sig") as handle:
            rows = list(csv.DictReader(handle))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise CorpusError(f"{csv_path}: cannot read the label CSV ({exc})") from None
    if not rows:
        raise CorpusError(f"{csv_path}: the label CSV has no rows")
    columns = set(rows[0])
    for path_col, style_col in (("path", "style"), ("midi_filename", "canonical_composer")):
        if {path_col, style_col} <= columns:
            return {
                Path(row[path_col]).as_posix(): style_name(row[style_col])
                for row in rows if row.get(path_col) and row.get(style_col)
            }
    raise CorpusError(
        f"{csv_path}: needs columns 'path,style' or 'midi_filename,canonical_composer'; "
        f"found {', '.join(sorted(columns))}"
    )


def style_name(label: str) -> str:
    """A label as a token-safe style name: ``"Johann Sebastian Bach"`` → ``johann_sebastian_bach``."""
    name = re.sub(r"[^0-9a-z]+", "_", label.strip().lower()).strip("_")
    return name or "unknown"


def list_folder_inputs(folder: Path, labels: str = "folder") -> SourceListing:
    """Inputs below ``folder``; ``labels`` is ``"folder"`` or the path of a label CSV."""
    if not folder.is_dir():
        raise CorpusError(f"{folder}: not a folder (and not the source name '{MUSIC21_SOURCE}')")
    listing = SourceListing()
    csv_labels = None if labels == "folder" else read_label_csv(Path(labels))
    files = []
    for path in folder.rglob("*"):
        if path.is_file():
            files.append(path)
        elif not path.is_dir():  # a pipe, a device, a dangling link: never opened
            listing.ignored.append({"source": str(path.relative_to(folder)),
                                    "reason": "not a regular file"})
    music = []
    for path in sorted(files):
        if path.suffix.lower() in SUPPORTED_SUFFIXES:
            music.append(path)
        elif path.suffix.lower() not in (".csv", ".txt", ".md", ".json", ".jsonl"):
            listing.ignored.append({"source": str(path.relative_to(folder)),
                                    "reason": f"not a music file ({path.suffix or 'no suffix'})"})
    for path in music:
        rel = path.relative_to(folder).as_posix()
        if csv_labels is None:
            parts = Path(rel).parts
            if len(parts) < 2:
                listing.ignored.append({"source": rel, "reason": "no style: not in a sub-folder"})
                continue
            style = style_name(parts[0])
        else:
            if rel not in csv_labels:
                listing.ignored.append({"source": rel, "reason": "no style: not in the label CSV"})
                continue
            style = csv_labels[rel]
        _inputs_for_file(path, rel, style, listing)
    return listing


def list_inputs(sources: Iterable[str], labels: str = "folder",
                styles: Iterable[str] | None = None) -> SourceListing:
    """All inputs of all sources, filtered to ``styles`` when given."""
    wanted = set(styles) if styles else None
    merged = SourceListing()
    for source in sources:
        if source == MUSIC21_SOURCE:
            listing = list_music21_inputs(sorted(wanted) if wanted else None)
        else:
            listing = list_folder_inputs(Path(source), labels)
        merged.inputs += [i for i in listing.inputs if wanted is None or i.style in wanted]
        merged.ignored += listing.ignored
    return merged


def music21_program(style: str) -> int:
    spec = MUSIC21_STYLES.get(style)
    return spec.program if spec else 0


def program_chooser(style: str):
    """Programs for parts: string instruments by name, otherwise the style's default."""
    default = music21_program(style) if style in MUSIC21_STYLES else 0

    def choose(part_index: int, n_parts: int, name: str) -> int:
        lowered = name.lower()
        for word, program in STRING_PROGRAMS.items():
            if word in lowered and default in range(40, 44):
                return program
        if default == 40 and n_parts == 4:  # a quartet whose parts carry no names
            return (40, 40, 41, 42)[part_index]
        return default

    return choose


__all__ = [
    "MUSIC21_FORMATS", "MUSIC21_SOURCE", "MUSIC21_STYLES", "PieceInput", "SourceListing",
    "StyleSpec", "list_folder_inputs", "list_inputs", "list_music21_inputs",
    "program_chooser", "read_label_csv", "split_abc_book", "style_name",
]

