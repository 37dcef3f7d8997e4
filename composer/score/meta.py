"""Titles and subtitles: from the caller, the MIDI file's own text, or its provenance.

Generated MIDI carries a text meta event holding JSON such as
``{"composer": {"model": "default", "style": "bach", "seed": 1}}``. symusic drops text
events, so they are read here with mido. Anything absent or malformed simply gives
no subtitle: a title block is never worth an error.
"""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

PROVENANCE_KEY = "composer"
MAX_TEXT_BYTES = 64 * 1024  # longer text events are not provenance
STYLE_TITLES = {
    "bach": "Chorale",
    "palestrina": "Mass Movement",
    "monteverdi": "Madrigal",
    "trecento": "Trecento Song",
    "mozart": "String Quartet",
    "haydn": "String Quartet",
    "beethoven": "String Quartet",
    "german_folk": "Folk Song",
    "chinese_folk": "Folk Song",
    "irish": "Irish Tune",
}
_GENERIC_TITLE = re.compile(r"^\s*(untitled|track\s*\d*|sequence\s*\d*|midi|new\s*song)?\s*$",
                            re.IGNORECASE)


@dataclass(frozen=True)
class MidiText:
    """What a MIDI file says about itself beyond its notes."""

    name: str | None = None  # the sequence name (conductor track name), if it names the piece
    provenance: Mapping[str, Any] | None = None  # the "composer" object of the provenance JSON


def read_midi_text(data: bytes) -> MidiText:
    """Sequence name and provenance from MIDI bytes; empty when the file has neither."""
    import mido

    try:
        midi = mido.MidiFile(file=io.BytesIO(data), clip=True)
    except Exception as exc:  # mido raises many types on odd files; the notes were read already
        log.debug("no text read from the MIDI file: %s", exc)
        return MidiText()
    name = None
    provenance = None
    for index, track in enumerate(midi.tracks):
        has_notes = any(msg.type == "note_on" for msg in track)
        for msg in track:
            if msg.type == "track_name" and index == 0 and not has_notes and len(midi.tracks) > 1:
                name = name or _clean_title(msg.name)
            elif msg.type == "text" and provenance is None:
                provenance = parse_provenance(msg.text)
    return MidiText(name, provenance)


def parse_provenance(text: str) -> Mapping[str, Any] | None:
    """The provenance object of a text event, or None.

    Two spellings are accepted: ``composer:{"style": …}`` (the prefix, then the object)
    and ``{"composer": {"style": …}}``.
    """
    text = text.strip()
    if len(text) > MAX_TEXT_BYTES or "{" not in text:
        return None
    prefixed = text.startswith(f"{PROVENANCE_KEY}:")
    try:
        data = json.loads(text[len(PROVENANCE_KEY) + 1:] if prefixed else text)
    except (ValueError, RecursionError):
        return None
    if not isinstance(data, dict):
        return None
    inner = data if prefixed else data.get(PROVENANCE_KEY)
    return inner if isinstance(inner, dict) else None


def _clean_title(text: str) -> str | None:
    text = " ".join(str(text).split())[:120]
    return None if _GENERIC_TITLE.match(text) else text


def subtitle_from_provenance(provenance: Mapping[str, Any] | None) -> str | None:
    """E.g. "style bach · seed 1 · model default"; None without a style or seed."""
    if not provenance:
        return None
    parts = []
    for key in ("style", "seed", "model"):
        value = provenance.get(key)
        if isinstance(value, str | int) and not isinstance(value, bool) and str(value).strip():
            parts.append(f"{key} {str(value).strip()[:60]}")
    return " · ".join(parts) if parts else None


def title_for_style(style: str) -> str:
    """A generic title for a piece in a style: "Chorale" for bach."""
    return STYLE_TITLES.get(style, f"Piece in the style of {style.replace('_', ' ').title()}")


def title_from_path(path: Path) -> str:
    """ "my_chorale-2.mid" → "My chorale 2"."""
    words = re.sub(r"[_\-]+", " ", path.stem).strip() or "Untitled"
    return words[0].upper() + words[1:]


def choose_title(explicit: str | None, text: MidiText, path: Path | None) -> str:
    """The caller's title, else the provenance's, the sequence name, the style's, the file's."""
    if explicit:
        return explicit
    provenance = text.provenance or {}
    given = provenance.get("title")
    if isinstance(given, str) and given.strip():
        return given.strip()[:120]
    if text.name:
        return text.name
    style = provenance.get("style")
    if isinstance(style, str) and style.strip():
        return title_for_style(style.strip())
    return title_from_path(path) if path is not None else "Untitled"
