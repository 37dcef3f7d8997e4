"""Fuzz the MIDI reader (and, now and then, the sheet-music writer) for N minutes.

    python benchmarks/fuzz.py                               # 10 minutes
    python benchmarks/fuzz.py --minutes 3 --seeds data/corpus/midi --crashes /tmp/crashes

Valid MIDI files (built in code, plus up to 200 from ``--seeds``) are mutated at random:
bits flipped, bytes set to boundary values, inserted, deleted, cut off, spliced from
another file, runs repeated; half of them then get chunk lengths that agree with their
bytes, so that the mutations reach the event parser. Each input goes to
``score_from_midi_bytes`` (the header checks, RIFF unwrapping, symusic, the limits and
repairs); every ``--score-every``-th one that reads is also written as MusicXML
(``score_to_musicxml``). Every ``--abc-every``-th input is a mutated ABC tune instead,
read with music21 under the reader's own time limit (30 s). Only ``ComposerError`` may
come out. Anything else, an input taking more than ``--timeout`` CPU seconds, or running
out of the ``--memory-gb`` address space is a crash: the input is saved to ``--crashes``
with its traceback. Seeded, so a run can be repeated. The last line is JSON:
``{"inputs": N, "crashes": C, "minutes": M, ...}``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import signal
import sys
import time
import traceback
import warnings
from pathlib import Path
from typing import Any

BOUNDARY = (0x00, 0x01, 0x7F, 0x80, 0x81, 0xF0, 0xF7, 0xFF)
MAX_SEED_FILES = 200


class Hang(BaseException):
    """An input took longer than the time limit."""


def _varlen(value: int) -> bytes:
    out = [value & 0x7F]
    value >>= 7
    while value:
        out.append(0x80 | (value & 0x7F))
        value >>= 7
    return bytes(reversed(out))


def _track(events: bytes) -> bytes:
    events += b"\x00\xff\x2f\x00"
    return b"MTrk" + len(events).to_bytes(4, "big") + events


def _header(fmt: int, tracks: int, division: int = 480) -> bytes:
    return b"MThd" + (6).to_bytes(4, "big") + bytes([0, fmt, 0, tracks]) + division.to_bytes(2, "big")


def built_in_seeds() -> list[bytes]:
    """Small valid files that touch most of the format: meta events, running status,
    chords, several tracks and channels, a RIFF wrapper, a symusic-written piece."""
    import symusic

    notes = b"".join(b"\x00\x90" + bytes([p, 80]) + _varlen(480) + b"\x80" + bytes([p, 0])
                     for p in (60, 62, 64, 65, 67))
    meta = (b"\x00\xff\x51\x03\x07\xa1\x20" + b"\x00\xff\x58\x04\x03\x02\x18\x08"
            + b"\x00\xff\x59\x02\x02\x00" + b"\x00\xff\x03\x04Song")
    running = b"\x00\x91\x40\x50\x83\x60\x40\x00\x00\x43\x50\x83\x60\x43\x00"
    chord = b"\x00\x92\x3c\x40\x00\x40\x40\x00\x43\x40\x87\x40\x3c\x00\x00\x40\x00\x00\x43\x00"
    controls = b"\x00\xc2\x28\x00\xb2\x07\x64\x00\xe2\x00\x40\x00\xf0\x05\x7e\x7f\x09\x01\xf7"
    smf = _header(1, 1) + _track(notes)
    riff_chunk = b"data" + len(smf).to_bytes(4, "little") + smf
    score = symusic.Score(480)
    score.time_signatures.append(symusic.TimeSignature(0, 6, 8))
    score.tempos.append(symusic.Tempo(0, 96.0))
    for program, low in ((40, 67), (42, 48)):
        part = symusic.Track("", program, False)
        for i in range(24):
            part.notes.append(symusic.Note(i * 240, 240 if i % 3 else 480, low + (i * 5) % 12, 70))
        score.tracks.append(part)
    return [
        smf,
        _header(1, 3) + _track(meta) + _track(running) + _track(controls + chord),
        _header(0, 1, 96) + _track(meta + notes),
        b"RIFF" + (4 + len(riff_chunk)).to_bytes(4, "little") + b"RMID" + riff_chunk,
        score.dumps_midi(),
    ]


ABC_SEEDS = (
    "X:1\nT:Reel\nM:4/4\nL:1/8\nK:D\n|:DFAF dFAF|GBdB AFEF|(3DEF GA B2 AG|1 FDEC D4:|2 FDEC D2z2|]\n",
    "X:2\nT:Air\nM:3/4\nL:1/4\nQ:1/4=90\nK:Gm\nG>A B|c2 d-|d [GBd] ^F|G3|]\n",
    "X:3\nT:Two voices\nM:6/8\nL:1/8\nK:F\nV:1\nc2A F2A|c3 f3|\nV:2 clef=bass\nF,3 C,3|F,6|]\n",
)
ABC_TOKENS = ("|:", ":|", "[1", "[2", "(3", "(7:3:2", "z", "z99", "^", "_", "=", "/", "//", "2", "99999",
              ">", "<", "-", "[CEG]", "\nM:0/4\n", "\nL:1/999999\n", "\nL:0/0\n", "\nK:Hp\n",
              "\nV:2\n", "!trill!", "{g}", '"C"', "\nQ:1/4=0\n", "\nM:99999/1\n", "&", "y", "~")


def mutate_abc(text: bytes, rng: random.Random) -> bytes:
    """Byte mutations, or ABC tokens (meters, lengths, tuplets, voices) put in anywhere."""
    if rng.random() < 0.5:
        return mutate(text, [text], rng)
    out = text.decode("latin-1")
    for _ in range(rng.randint(1, 6)):
        at = rng.randrange(len(out) + 1)
        if rng.random() < 0.7:
            out = out[:at] + rng.choice(ABC_TOKENS) + out[at:]
        else:
            out = out[:at] + out[at + rng.randint(1, 6):]
    return out.encode("latin-1", errors="replace")


def folder_seeds(folder: Path, limit: int = MAX_SEED_FILES) -> list[bytes]:
    paths = sorted(p for p in folder.rglob("*") if p.suffix.lower() in (".mid", ".midi", ".rmi"))
    picked = random.Random(0).sample(paths, min(limit, len(paths)))
    return [p.read_bytes() for p in picked if p.stat().st_size < 256 * 1024]


def fix_lengths(data: bytes) -> bytes:
    """Make every MTrk chunk's length (and the header's track count) agree with the bytes,
    so that a mutation inside a track reaches the event parser instead of the chunk check."""
    start = data.find(b"MThd")
    if start < 0 or len(data) < start + 14:
        return data
    out = bytearray(data)
    marks = []
    at = out.find(b"MTrk", start + 14)
    while at >= 0:
        marks.append(at)
        at = out.find(b"MTrk", at + 8)
    for here, after in zip(marks, [*marks[1:], len(out)], strict=False):
        if here + 8 <= after:
            out[here + 4 : here + 8] = (after - here - 8).to_bytes(4, "big")
    out[start + 10 : start + 12] = min(len(marks), 0xFFFF).to_bytes(2, "big")
    return bytes(out)


def mutate(data: bytes, seeds: list[bytes], rng: random.Random) -> bytes:
    out = bytearray(data)
    for _ in range(rng.choice((1, 1, 2, 2, 3, 4, 8))):
        kind = rng.choice(("flip", "set", "insert", "delete", "truncate", "splice", "repeat", "header"))
        at = rng.randrange(len(out)) if out else 0
        if kind == "flip" and out:
            out[at] ^= 1 << rng.randrange(8)
        elif kind == "set" and out:
            out[at] = rng.choice(BOUNDARY) if rng.random() < 0.5 else rng.randrange(256)
        elif kind == "insert":
            out[at:at] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 8)))
        elif kind == "delete":
            del out[at : at + rng.randint(1, 8)]
        elif kind == "truncate":
            del out[at:]
        elif kind == "splice":
            other = rng.choice(seeds)
            start = rng.randrange(len(other))
            out[at:at] = other[start : start + rng.randint(1, 64)]
        elif kind == "repeat" and out:
            out[at:at] = out[at : at + rng.randint(1, 16)] * rng.randint(2, 200)
        elif kind == "header" and len(out) >= 14:  # format, track count, division, chunk length
            field = rng.choice((4, 8, 10, 12, 18))
            value = rng.choice((0, 1, 2, 3, 0x7F, 0x80, 0xFF, 0x7FFF, 0x8000, 0xFFFF, 0xE728))
            out[field : field + 2] = value.to_bytes(2, "big")
    return fix_lengths(bytes(out)) if rng.random() < 0.5 else bytes(out)


def _limit_memory(gigabytes: float) -> None:
    try:
        import resource

        limit = int(gigabytes * 1024**3)
        resource.setrlimit(resource.RLIMIT_AS, (limit, resource.getrlimit(resource.RLIMIT_AS)[1]))
    except (ImportError, ValueError, OSError):
        print("warning: cannot limit memory here", file=sys.stderr)


def _on_alarm(signum: int, frame: object) -> None:
    raise Hang


def run_one(data: bytes, score_it: bool, timeout: float, abc: bool = False) -> str:
    """``"read"``, ``"refused"`` or ``"scored"``; raises anything that is a crash."""
    from composer.errors import ComposerError
    from composer.io.reader import ReadLimits, parse_music21, score_from_midi_bytes, score_from_stream
    from composer.score.write import score_to_musicxml

    signal.setitimer(signal.ITIMER_PROF, timeout)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                if abc:  # with read_score's own time limit, which refuses what music21 hangs on
                    stream = parse_music21(data.decode("latin-1"), "abc", "fuzz.abc", ReadLimits())
                    score = score_from_stream(stream, "fuzz.abc")
                else:
                    score = score_from_midi_bytes(data, "fuzz.mid")
            except ComposerError as exc:
                if not str(exc) or "\n" in str(exc):
                    raise AssertionError(f"error message not one line: {exc!r}") from None
                return "refused"
            if not score_it:
                return "read"
            try:
                score_to_musicxml(score)
            except ComposerError:
                return "refused"
            return "scored"
    finally:
        signal.setitimer(signal.ITIMER_PROF, 0)


def save_crash(folder: Path, data: bytes, exc: BaseException, suffix: str = ".mid") -> str:
    """Save the input and its traceback; the crash's signature (type and innermost frame)."""
    folder.mkdir(parents=True, exist_ok=True)
    name = hashlib.sha256(data).hexdigest()[:16]
    (folder / f"{name}{suffix}").write_bytes(data)
    text = "".join(traceback.format_exception(exc)) if not isinstance(exc, Hang) else "hang\n"
    (folder / f"{name}.txt").write_text(text, encoding="utf-8")
    frames = traceback.extract_tb(exc.__traceback__)
    where = f"{Path(frames[-1].filename).name}:{frames[-1].lineno}" if frames else "?"
    return f"{type(exc).__name__} at {where}"


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="how long to fuzz")
    parser.add_argument("--seed", type=int, default=0, help="random seed of the mutator")
    parser.add_argument("--seeds", type=Path, default=None, help="folder of MIDI files to mutate as well")
    parser.add_argument("--crashes", type=Path, default=Path("fuzz-crashes"),
                        help="folder for crashing inputs and their tracebacks")
    parser.add_argument("--score-every", type=int, default=50,
                        help="write every N-th readable input as MusicXML; 0 never")
    parser.add_argument("--abc-every", type=int, default=10,
                        help="make every N-th input a mutated ABC tune instead of MIDI; 0 never")
    parser.add_argument("--timeout", type=float, default=40.0,
                        help="CPU seconds before an input is a hang (CPU time: fair on a busy machine)")
    parser.add_argument("--memory-gb", type=float, default=2.0, help="address-space limit")
    args = parser.parse_args(argv)

    seeds = built_in_seeds() + (folder_seeds(args.seeds) if args.seeds else [])
    import music21  # noqa: F401

    import composer.score.write  # noqa: F401  (imported before the clock and the memory limit start)

    _limit_memory(args.memory_gb)
    signal.signal(signal.SIGPROF, _on_alarm)
    rng = random.Random(args.seed)
    counts = {"read": 0, "refused": 0, "scored": 0, "abc": 0}
    crashes: dict[str, int] = {}
    inputs = 0
    readable = 0
    started = time.monotonic()
    deadline = started + args.minutes * 60
    next_report = started + 30
    abc_seeds = [text.encode("latin-1") for text in ABC_SEEDS]
    while time.monotonic() < deadline:
        abc = args.abc_every > 0 and inputs % args.abc_every == args.abc_every - 1
        data = mutate_abc(rng.choice(abc_seeds), rng) if abc else mutate(rng.choice(seeds), seeds, rng)
        inputs += 1
        counts["abc"] += abc
        score_it = args.score_every > 0 and readable % args.score_every == args.score_every - 1
        try:
            outcome = run_one(data, score_it, args.timeout, abc)
        except (Exception, Hang) as exc:
            signature = save_crash(args.crashes, data, exc, ".abc" if abc else ".mid")
            crashes[signature] = crashes.get(signature, 0) + 1
            if crashes[signature] == 1:
                print(f"crash: {signature} (saved in {args.crashes})", file=sys.stderr, flush=True)
            continue
        counts[outcome] += 1
        readable += outcome != "refused"
        if time.monotonic() >= next_report:
            next_report += 30
            print(f"{inputs} inputs, {sum(crashes.values())} crashes, {counts}", file=sys.stderr, flush=True)
    minutes = (time.monotonic() - started) / 60
    summary = {"inputs": inputs, "crashes": sum(crashes.values()), "unique_crashes": len(crashes),
               "minutes": round(minutes, 2), "inputs_per_s": round(inputs / max(1e-9, minutes * 60), 1),
               **counts, "seeds": len(seeds), "seed": args.seed, "crash_kinds": crashes}
    print(f"{inputs} inputs in {minutes:.1f} min: {counts['read'] + counts['scored']} read "
          f"({counts['scored']} also as sheet music), {counts['refused']} refused, "
          f"{summary['crashes']} crashes ({len(crashes)} kinds)")
    print(json.dumps(summary))
    return summary


if __name__ == "__main__":
    main()
