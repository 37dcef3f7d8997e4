"""Provenance: a text meta event in every MIDI file composer writes (mido's job).

The event's text is ``composer:`` followed by JSON naming the model (name and weight
hash), the style, the seed and every setting, so a file can always say where it came
from. symusic does not keep text events, so they are added and read here, with mido.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

PREFIX = "composer:"


def add_provenance(midi_bytes: bytes, info: dict[str, Any]) -> bytes:
    """The same MIDI with a provenance text event at time 0 of its first track."""
    import mido

    midi = mido.MidiFile(file=io.BytesIO(midi_bytes))
    text = PREFIX + json.dumps(info, sort_keys=True, separators=(",", ":"))
    if not midi.tracks:
        midi.tracks.append(mido.MidiTrack())
    midi.tracks[0].insert(0, mido.MetaMessage("text", text=text, time=0))
    out = io.BytesIO()
    midi.save(file=out)
    return out.getvalue()


def read_provenance(source: Path | bytes) -> dict[str, Any] | None:
    """The provenance of a MIDI file, or None when it has none (or it is unreadable)."""
    import mido

    try:
        data = source if isinstance(source, bytes) else Path(source).read_bytes()
        midi = mido.MidiFile(file=io.BytesIO(data))
    except Exception:  # any unreadable file simply has no provenance
        return None
    for track in midi.tracks:
        for message in track:
            if message.is_meta and message.type == "text" and message.text.startswith(PREFIX):
                try:
                    value = json.loads(message.text[len(PREFIX):])
                except json.JSONDecodeError:
                    return None
                return value if isinstance(value, dict) else None
    return None
