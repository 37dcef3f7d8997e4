"""How long does a 32-bar, four-part piece take to become a PDF? (Goal: ≤ 3 s.)

    python benchmarks/score_speed.py            # best of 3 runs
    python benchmarks/score_speed.py --runs 5 --midi my_piece.mid

The piece is built in code (a four-voice choir texture, quarters and eighths, 32 bars of
4/4) unless ``--midi`` is given. Measured in one process, after a warm-up run:

* composer: MIDI file → notation → MusicXML → verovio pages → one PDF (``score_file``);
* the stages of that path separately;
* baseline: plain music21, ``converter.parse(midi).write("musicxml")`` (no engraving).

The ratio composer / baseline is printed; the last line is JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from hardware import machine_info

BARS = 32
GOAL_SECONDS = 3.0


def four_part_piece(path: Path, bars: int = BARS, seed: int = 1) -> Path:
    """A deterministic SATB-like texture: four choir tracks in D major."""
    import symusic

    rng = random.Random(seed)
    scale = [62, 64, 66, 67, 69, 71, 73]
    ranges = [(67, 79), (60, 72), (53, 67), (41, 60)]
    names = ["Soprano", "Alto", "Tenor", "Bass"]
    score = symusic.Score(480)
    score.time_signatures.append(symusic.TimeSignature(0, 4, 4))
    score.tempos.append(symusic.Tempo(0, 84.0))
    score.key_signatures.append(symusic.KeySignature(0, 2, 0))
    for name, (low, high) in zip(names, ranges, strict=True):
        track = symusic.Track(name, 52, False)
        pitches = [p + 12 * o for o in range(-3, 3) for p in scale if low <= p + 12 * o <= high]
        index = len(pitches) // 2
        tick = 0
        while tick < bars * 4 * 480:
            length = rng.choice([480, 480, 480, 240, 960]) if tick % 480 == 0 else 240
            length = min(length, bars * 4 * 480 - tick)
            index = max(0, min(len(pitches) - 1, index + rng.choice([-2, -1, -1, 0, 1, 1, 2])))
            track.notes.append(symusic.Note(tick, length, pitches[index], 80))
            tick += length
        score.tracks.append(track)
    path.write_bytes(score.dumps_midi())
    return path


def best_of(runs: int, action: Callable[[], object]) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3, help="timed runs; the best counts (default 3)")
    parser.add_argument("--midi", type=Path, default=None, help="time this MIDI file instead")
    args = parser.parse_args()

    cold_start = time.perf_counter()
    import music21

    from composer.io.reader import read_score
    from composer.score.render import engrave, musicxml_bytes, pdf_bytes
    from composer.score.write import score_file, score_to_stream

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        midi = args.midi or four_part_piece(folder / "piece.mid")
        out = folder / "piece.pdf"
        score_file(midi, out, force=True)  # warm-up; includes the first imports
        cold = time.perf_counter() - cold_start

        ours = best_of(args.runs, lambda: score_file(midi, out, force=True))
        score = read_score(midi)
        stream = score_to_stream(score)
        xml = musicxml_bytes(stream)
        pages, _ = engrave(xml)
        stages = {
            "notation": best_of(args.runs, lambda: score_to_stream(score)),
            "musicxml": best_of(args.runs, lambda: musicxml_bytes(stream)),
            "verovio": best_of(args.runs, lambda: engrave(xml)),
            "pdf": best_of(args.runs, lambda: pdf_bytes(pages)),
        }
        baseline_out = folder / "baseline.musicxml"
        baseline = best_of(args.runs, lambda: music21.converter.parse(midi).write(
            "musicxml", fp=baseline_out))

    n_notes = score.note_num()
    print(f"piece: {midi.name if args.midi else f'{BARS} bars, 4 parts'}, {n_notes} notes, "
          f"{len(pages)} page(s)")
    for name, seconds in stages.items():
        print(f"  {name:<10}{seconds:7.2f} s")
    print(f"composer MIDI → PDF  {ours:7.2f} s   (goal ≤ {GOAL_SECONDS:g} s; first call with imports "
          f"{cold:.2f} s)")
    print(f"music21 MIDI → MusicXML (baseline) {baseline:7.2f} s")
    print(f"ratio composer / baseline: {ours / baseline:.2f}")
    print(json.dumps({"pdf_seconds": round(ours, 3), "baseline_seconds": round(baseline, 3),
                      "ratio": round(ours / baseline, 3), "first_call_seconds": round(cold, 3),
                      "pages": len(pages), "goal_met": ours <= GOAL_SECONDS,
                      "machine": machine_info(os.cpu_count() or 1)}))


if __name__ == "__main__":
    main()
