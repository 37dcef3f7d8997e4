"""Convert one corpus input into labelled MIDI pieces (runs inside a worker process)."""

from __future__ import annotations

import hashlib
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from composer.corpus.parsing import parse_notation
from composer.corpus.repeats import expand_repeats
from composer.corpus.sources import MUSIC21_STYLES, PieceInput, program_chooser
from composer.errors import ComposerError, InputFileError, ReadTimeoutError, RepairWarning
from composer.io.deadline import time_limit
from composer.io.outputs import write_atomic
from composer.io.reader import ReadLimits, check_score, read_bytes, score_from_midi_bytes
from composer.music.facts import (
    count_bars,
    downbeats,
    estimate_key,
    notes_fingerprint,
    time_signature_names,
)

if TYPE_CHECKING:
    import symusic

CONVERTER_VERSION = 3  # bump when conversion output changes, to invalidate caches


@dataclass(frozen=True)
class ConvertOptions:
    out_dir: Path  # corpus directory; MIDI goes to out_dir/midi/<style>/<id>.mid
    segment_bars: int = 32  # long pieces are cut into excerpts of this many bars
    max_whole_bars: int = 48  # pieces up to this long stay whole
    piece_seconds: float = 300.0  # wall-clock limit per input
    limits: ReadLimits = field(default_factory=ReadLimits)

    def cache_salt(self) -> str:
        return f"v{CONVERTER_VERSION}/{self.segment_bars}/{self.max_whole_bars}/{self.limits}"


def piece_id(item: PieceInput) -> str:
    slug = re.sub(r"[^0-9a-z]+", "-", Path(item.rel).with_suffix("").as_posix().lower()).strip("-")
    return slug if item.index is None else f"{slug}-t{item.index:04d}"


def load_input(item: PieceInput, options: ConvertOptions) -> tuple[symusic.Score, bool]:
    """Parse one input into a checked score; the flag says whether repeats were expanded."""
    from composer.io.notation import stream_to_score

    limits = options.limits
    if item.fmt == "midi":
        return score_from_midi_bytes(read_bytes(item.path, limits), item.label, limits), True
    stream, expanded = expand_repeats(parse_notation(item))
    spec = MUSIC21_STYLES.get(item.style)
    try:
        score = stream_to_score(stream, program_chooser(item.style),
                                spec.qpm if spec else 100.0)
    except Exception as exc:
        raise InputFileError(f"{item.label}: cannot convert the notation ({exc})") from None
    check_score(score, item.label, limits)
    return score, expanded


def segment_bounds(n: int, options: ConvertOptions) -> list[tuple[int, int]]:
    """Bar index ranges [a, b) for the excerpts of a piece of ``n`` bars."""
    if n <= options.max_whole_bars:
        return [(0, n)]
    bounds = [(a, min(a + options.segment_bars, n)) for a in range(0, n, options.segment_bars)]
    if len(bounds) > 1 and bounds[-1][1] - bounds[-1][0] < options.segment_bars // 2:
        (a, _), (_, b) = bounds[-2], bounds[-1]
        bounds[-2:] = [(a, b)]
    return bounds


def convert_input(item: PieceInput, options: ConvertOptions) -> dict[str, Any]:
    """Convert one input; returns ``{"records": [...]}`` or ``{"skipped": reason}``.

    Never raises for bad music: every ``ComposerError`` becomes a skip reason.
    """
    if item.problem:
        return {"skipped": item.problem}

    def _timeout() -> ReadTimeoutError:
        return ReadTimeoutError(
            f"{item.label}: conversion took longer than {options.piece_seconds:g} s"
        )

    try:
        with time_limit(options.piece_seconds, _timeout), warnings.catch_warnings(record=True) as said:
            warnings.simplefilter("ignore")  # music21's notation warnings; failures are reported
            warnings.simplefilter("always", RepairWarning)  # what reading changed is reported
            records = _convert(item, options)
        repaired = [str(w.message) for w in said if issubclass(w.category, RepairWarning)]
        return {"records": records, **({"repaired": repaired} if repaired else {})}
    except ComposerError as exc:
        return {"skipped": str(exc)}
    except MemoryError:
        return {"skipped": f"{item.label}: ran out of memory while converting"}
    except RecursionError:
        return {"skipped": f"{item.label}: too deeply nested to convert"}


def _convert(item: PieceInput, options: ConvertOptions) -> list[dict[str, Any]]:
    score, expanded = load_input(item, options)
    bars = downbeats(score).tolist()
    end = score.end()
    bounds = segment_bounds(len(bars), options)
    base_id = piece_id(item)
    records = []
    for number, (first_bar, last_bar) in enumerate(bounds):
        start = bars[first_bar]
        stop = bars[last_bar] if last_bar < len(bars) else end + 1
        part = score if len(bounds) == 1 else score.clip(start, stop, clip_end=True).shift_time(-start)
        n_notes = part.note_num()
        if n_notes == 0:
            continue  # an excerpt of rests only
        fingerprint = notes_fingerprint(part)
        pid = base_id if len(bounds) == 1 else f"{base_id}-s{number:02d}"
        rel_midi = f"midi/{item.style}/{pid}.mid"
        data = part.dumps_midi()
        target = options.out_dir / rel_midi
        target.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(target, data, fsync=False)
        source: dict[str, Any] = {"path": item.rel}
        if item.index is not None:
            source["index"] = item.index
        if len(bounds) > 1:
            source["bars"] = [first_bar, last_bar]
        if not expanded:
            source["repeats"] = "unexpanded"
        records.append({
            "id": pid,
            "style": item.style,
            "split": "train",  # the whole corpus decides: corpus_split.assign_splits
            "source": source,
            "midi": rel_midi,
            "n_notes": n_notes,
            "n_bars": count_bars(part),
            "time_signatures": time_signature_names(part),
            "key": estimate_key(part),
            "sha256": hashlib.sha256(data).hexdigest(),
            "fingerprint": fingerprint,
        })
    if not records:
        raise InputFileError(f"{item.label}: no pitched notes")
    return records
