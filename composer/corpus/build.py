"""Build a labelled corpus: inputs → MIDI pieces, ``manifest.jsonl`` and ``report.json``.

Conversion runs in a process pool with a time limit per input; results are cached by
input content, so a re-run converts only what changed.
"""

from __future__ import annotations

import json
import logging
import multiprocessing
import os
import statistics
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from composer.corpus.convert import ConvertOptions, convert_input
from composer.corpus.sources import MUSIC21_SOURCE, PieceInput, list_inputs
from composer.corpus.split import assign_splits
from composer.errors import CorpusError
from composer.io.outputs import prepare_out_dir, write_atomic
from composer.io.reader import ReadLimits
from composer.music.harmony import ChordCounts
from composer.music.lines import LineCounts
from composer.music.voices import soprano_line, voice_ranges

log = logging.getLogger(__name__)

MANIFEST = "manifest.jsonl"
REPORT = "report.json"
CACHE = ".cache.jsonl"
RECORD_KEYS = ("id", "style", "split", "midi")  # what every manifest record must hold
# styles of this many voices or more (the median piece) get chord counts, for harmonize
CHORD_VOICES = 3
WORKER_MEMORY_BYTES = 4 * 1024**3  # a worker that needs more is converting something hostile

Progress = Callable[[int, int], None]  # (inputs done, inputs total)


@dataclass
class CorpusConfig:
    out_dir: Path  # where midi/, manifest.jsonl and report.json go
    sources: list[str] = field(default_factory=lambda: [MUSIC21_SOURCE])  # "music21" or folders
    labels: str = "folder"  # "folder" (first sub-folder is the style) or a CSV path
    styles: list[str] | None = None  # keep only these styles
    max_pieces_per_style: int | None = None  # cap on inputs per style, for quick runs
    workers: int = 0  # processes; 0 means one per core
    piece_seconds: float = 300.0  # time limit per input (a whole quartet in one file takes ~60 s)
    segment_bars: int = 32  # long pieces become excerpts of this many bars
    max_whole_bars: int = 48  # pieces up to this many bars stay whole
    use_cache: bool = True  # reuse conversions of unchanged inputs


@dataclass
class CorpusResult:
    records: list[dict[str, Any]]
    report: dict[str, Any]


def _cache_key(item: PieceInput, salt: str) -> str:
    return f"{item.digest}:{item.style}:{item.label}:{salt}"


def _load_cache(path: Path) -> dict[str, dict[str, Any]]:
    cache: dict[str, dict[str, Any]] = {}
    if not path.exists():
        return cache
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            try:
                entry = json.loads(line)
                cache[entry["key"]] = entry["result"]
            except (json.JSONDecodeError, KeyError, TypeError):
                continue  # a line cut short by an interrupted run
    return cache


def _cached_result_usable(result: dict[str, Any], out_dir: Path) -> bool:
    return all((out_dir / r["midi"]).is_file() for r in result.get("records", []))


def _limit_inputs(inputs: list[PieceInput], cap: int | None) -> list[PieceInput]:
    if cap is None:
        return inputs
    taken: Counter[str] = Counter()
    kept = []
    for item in inputs:
        if taken[item.style] < cap:
            taken[item.style] += 1
            kept.append(item)
    return kept


def _init_worker() -> None:
    try:
        import resource

        _, hard = resource.getrlimit(resource.RLIMIT_AS)
        resource.setrlimit(resource.RLIMIT_AS, (WORKER_MEMORY_BYTES, hard))
    except (ImportError, ValueError, OSError):
        pass


def _convert_job(job: tuple[PieceInput, ConvertOptions]) -> tuple[PieceInput, dict[str, Any]]:
    item, options = job
    return item, convert_input(item, options)


def _run_conversions(
    jobs: list[tuple[PieceInput, ConvertOptions]], workers: int
) -> Iterable[tuple[PieceInput, dict[str, Any]]]:
    if workers <= 1 or len(jobs) <= 1:
        yield from map(_convert_job, jobs)
        return
    context = multiprocessing.get_context("fork" if os.name == "posix" else "spawn")
    with context.Pool(workers, initializer=_init_worker, maxtasksperchild=200) as pool:
        yield from pool.imap_unordered(_convert_job, jobs, chunksize=4)


def build_corpus(config: CorpusConfig, progress: Progress | None = None) -> CorpusResult:
    """Convert every input of the configured sources and write the manifest and report."""
    started = time.monotonic()
    out_dir = config.out_dir
    prepare_out_dir(out_dir)
    listing = list_inputs(config.sources, config.labels, config.styles)
    inputs = _limit_inputs(listing.inputs, config.max_pieces_per_style)
    if not inputs:
        raise CorpusError(
            f"no music files found in {', '.join(config.sources)}"
            + (f" for styles {', '.join(config.styles)}" if config.styles else "")
        )
    options = ConvertOptions(
        out_dir=out_dir,
        segment_bars=config.segment_bars,
        max_whole_bars=config.max_whole_bars,
        piece_seconds=config.piece_seconds,
        limits=ReadLimits(),
    )
    salt = options.cache_salt()
    cache_path = out_dir / CACHE
    cache = _load_cache(cache_path) if config.use_cache else {}

    results: dict[str, dict[str, Any]] = {}
    jobs = []
    for item in inputs:
        key = _cache_key(item, salt)
        cached = cache.get(key)
        if cached is not None and _cached_result_usable(cached, out_dir):
            results[key] = cached
        else:
            jobs.append((item, options))
    reused = len(results)
    total = len(inputs)
    if progress:
        progress(reused, total)
    workers = config.workers or os.cpu_count() or 1
    mode = "a" if config.use_cache else "w"
    with cache_path.open(mode, encoding="utf-8") as cache_file:
        for done, (item, result) in enumerate(_run_conversions(jobs, workers), start=1):
            key = _cache_key(item, salt)
            results[key] = result
            cache_file.write(json.dumps({"key": key, "result": result}) + "\n")
            if progress:
                progress(reused + done, total)

    records, skipped, repaired = _collect(inputs, results, salt)
    _write_jsonl(out_dir / MANIFEST, records)
    report = _report(records, skipped, listing.ignored, total, reused,
                     time.monotonic() - started, config)
    report["repaired"] = repaired
    _write_json(out_dir / REPORT, report)
    if not records:
        raise CorpusError(f"none of the {total} inputs could be converted (first: "
                          f"{skipped[0]['reason'] if skipped else 'no notes'}); see {out_dir / REPORT}")
    return CorpusResult(records=records, report=report)


def _collect(inputs: list[PieceInput], results: dict[str, dict[str, Any]], salt: str
             ) -> tuple[list[dict[str, Any]], list[dict[str, str]], list[dict[str, str]]]:
    """(records, skipped inputs, inputs read with repairs)."""
    records: list[dict[str, Any]] = []
    skipped: list[dict[str, str]] = []
    repaired: list[dict[str, str]] = []
    seen_ids: set[str] = set()
    for item in inputs:
        result = results[_cache_key(item, salt)]
        if "skipped" in result:
            skipped.append({"source": item.label, "style": item.style, "reason": result["skipped"]})
            continue
        repaired += [{"source": item.label, "what": what} for what in result.get("repaired", [])]
        for record in result["records"]:
            if record["id"] in seen_ids:  # the same file given twice under one style
                continue
            seen_ids.add(record["id"])
            records.append(record)
    records.sort(key=lambda r: (r["style"], r["id"]))
    assign_splits(records)
    return records, skipped, repaired


def _report(records: list[dict[str, Any]], skipped: list[dict[str, str]],
            ignored: list[dict[str, str]], total: int, reused: int, seconds: float,
            config: CorpusConfig) -> dict[str, Any]:
    counts: dict[str, dict[str, int]] = defaultdict(lambda: {"train": 0, "val": 0, "test": 0})
    for record in records:
        counts[record["style"]][record["split"]] += 1
    skipped_by_style = Counter(s["style"] for s in skipped)
    return {
        "sources": config.sources,
        "inputs": total,
        "converted_now": total - reused,
        "reused_from_cache": reused,
        "pieces": len(records),
        "skipped_inputs": len(skipped),
        "skipped_fraction": round(len(skipped) / total, 4) if total else 0.0,
        "seconds": round(seconds, 1),
        "styles": {
            style: {**split_counts, "pieces": sum(split_counts.values()),
                    "skipped": skipped_by_style.get(style, 0)}
            for style, split_counts in sorted(counts.items())
        },
        "skipped": skipped,
        "ignored": ignored,
    }


def _write_jsonl(path: Path, rows: list[dict[str, Any]]) -> None:
    text = "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
    write_atomic(path, text.encode("utf-8"))


def _write_json(path: Path, data: dict[str, Any]) -> None:
    write_atomic(path, (json.dumps(data, indent=2, ensure_ascii=False) + "\n").encode("utf-8"))


def read_manifest(corpus_dir: Path) -> list[dict[str, Any]]:
    """The manifest's records; a ``CorpusError`` if the corpus is missing or damaged."""
    path = corpus_dir / MANIFEST
    if not path.is_file():
        raise CorpusError(f"{corpus_dir}: no {MANIFEST}; run 'composer corpus build -o {corpus_dir}'")
    records = []
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                raise CorpusError(f"{path}:{number}: not valid JSON; rebuild the corpus") from None
            if not isinstance(record, dict) or any(
                    not isinstance(record.get(key), str) or not record[key] for key in RECORD_KEYS):
                raise CorpusError(f"{path}:{number}: not a piece record (needs text fields "
                                  f"{', '.join(RECORD_KEYS)}); rebuild the corpus")
            records.append(record)
    return records


def corpus_stats(corpus_dir: Path) -> dict[str, dict[str, float]]:
    """Per style: pieces, notes, bars and minutes (from the MIDI files' tempo maps)."""
    import symusic

    from composer.io.reader import score_seconds

    stats: dict[str, dict[str, float]] = defaultdict(
        lambda: {"pieces": 0, "notes": 0, "bars": 0, "minutes": 0.0}
    )
    for record in read_manifest(corpus_dir):
        row = stats[record["style"]]
        row["pieces"] += 1
        row["notes"] += _count(record, "n_notes")
        row["bars"] += _count(record, "n_bars")
        try:
            score = symusic.Score.from_file(str(corpus_dir / record["midi"]))
            row["minutes"] += score_seconds(score) / 60.0
        except (OSError, RuntimeError):
            log.warning("%s: cannot read %s", corpus_dir, record["midi"])
    for row in stats.values():
        row["minutes"] = round(row["minutes"], 1)
    return dict(sorted(stats.items()))


def _count(record: dict[str, Any], key: str) -> int:
    value = record.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def style_summary(corpus_dir: Path, sample: int = 200) -> dict[str, dict[str, Any]]:
    """Per style: a one-line description, piece counts, its usual GM programs, keys and tempo.

    ``programs`` are those found in at least 5 % of (up to ``sample``) pieces of the style;
    generation uses them as the style's default instruments. ``keys`` is the share of
    each estimated key among the style's train pieces (generation draws a key from it
    when none is asked for); ``tempo`` the median opening tempo of the sampled pieces
    (quarter notes per minute, the default when no ``--tempo`` is given); ``voices`` the
    median number of parts and ``most_voices`` the most that at least 10 % of the sampled
    pieces have (Palestrina: 6; generation writes no more); ``ranges`` each voice role's
    usual pitches (5th to 95th percentile, ``music.voices.voice_ranges``), for the critic;
    ``chords``, for styles of ``CHORD_VOICES`` voices or more, the chords under the top
    voice of every train piece (``music.harmony.ChordCounts``), for ``harmonize``; ``lines``
    the steps of every voice of every train piece (``music.lines.LineCounts``), which
    ``generate`` calibrates its lines against.
    """
    import symusic

    from composer.corpus.sources import MUSIC21_STYLES

    summary: dict[str, dict[str, Any]] = {}
    for record in read_manifest(corpus_dir):
        entry = summary.setdefault(record["style"], {
            "description": MUSIC21_STYLES[record["style"]].description
            if record["style"] in MUSIC21_STYLES else f"Pieces labelled '{record['style']}'",
            "pieces": 0, "train_pieces": 0})
        entry["pieces"] += 1
        entry["train_pieces"] += record["split"] == "train"
        if record["split"] == "train" and isinstance(record.get("key"), str):
            entry.setdefault("_keys", Counter())[record["key"]] += 1
        if record["split"] == "train":
            entry.setdefault("_train", []).append(corpus_dir / record["midi"])
        if entry["pieces"] <= sample:
            try:
                score = symusic.Score.from_file(str(corpus_dir / record["midi"]))
            except (OSError, RuntimeError):
                continue
            for program in {t.program for t in score.tracks if t.note_num() and not t.is_drum}:
                entry.setdefault("_programs", Counter())[program] += 1
            if len(score.tempos):
                entry.setdefault("_tempos", []).append(float(score.tempos[0].qpm))
            entry.setdefault("_scores", []).append(score)
            entry.setdefault("_voices", []).append(sum(1 for t in score.tracks if t.note_num()))
    for entry in summary.values():
        counts = entry.pop("_programs", Counter())
        seen = min(entry["pieces"], sample)
        entry["programs"] = sorted(p for p, n in counts.items() if n >= 0.05 * seen)
        keys = entry.pop("_keys", Counter())
        total = sum(keys.values())
        entry["keys"] = {k: round(n / total, 4) for k, n in keys.most_common()} if total else {}
        tempos = entry.pop("_tempos", [])
        entry["tempo"] = round(float(statistics.median(tempos)), 1) if tempos else None
        entry["ranges"] = {role: list(r) for role, r in voice_ranges(entry.pop("_scores", [])).items()}
        voices = entry.pop("_voices", [])
        entry["voices"] = int(statistics.median(voices)) if voices else None
        usual = [count for count, n in Counter(voices).items() if n >= 0.1 * len(voices)]
        entry["most_voices"] = max(usual) if usual else None
        chorded = bool(entry["voices"] and entry["voices"] >= CHORD_VOICES)
        lines, chords = _train_counts(entry.pop("_train", []), chorded)
        entry["lines"] = lines.to_json()
        if chords is not None:
            entry["chords"] = chords.to_json()
    return dict(sorted(summary.items()))


def _train_counts(paths: list[Path], chorded: bool) -> tuple[LineCounts, ChordCounts | None]:
    """The steps of every voice (``music.lines``) of the pieces at ``paths`` and, when
    ``chorded``, the chords under their top voice (``music.harmony``), each file read once."""
    import symusic

    lines = LineCounts.empty()
    chords = ChordCounts.empty() if chorded else None
    for path in paths:
        try:
            score = symusic.Score.from_file(str(path))
        except (OSError, RuntimeError):
            continue
        if not any(t.note_num() for t in score.tracks if not t.is_drum):
            continue
        lines.add(score)
        if chords is not None:
            chords.add(score, soprano_line(score))
    return lines, chords
