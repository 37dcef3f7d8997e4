"""Beams: which notes of a bar share a beam, grouped by the beats of its meter.
"""

from __future__ import annotations

from dataclasses import replace
from fractions import Fraction

from composer.score.durations import TYPE_NAMES, Piece
from composer.score.meter import Bar, Q, is_compound


def beam_groups(bar: Bar) -> list[tuple[Q, Q]]:
    """Spans of a bar within which short notes are beamed together (offsets from its origin).

    A beat in simple meters, a dotted beat in compound ones; bars of 2/8 or 3/8 beam
    whole, other x/8 and x/16 bars in groups of two units and a final three.
    """
    num, den = bar.meter
    unit = Fraction(4, den)
    if is_compound(num, den):
        sizes = [unit * 3] * (num // 3)
    elif den >= 8 and num <= 3:
        sizes = [bar.full_length]
    elif den >= 8:
        sizes = [unit * 2] * (num // 2 - 1) + [unit * (2 + num % 2)]
    else:
        sizes = [unit] * num
    spans, at = [], Fraction(0)
    for size in sizes:
        spans.append((at, at + size))
        at += size
    if at < bar.full_length:
        spans.append((at, bar.full_length))
    return spans


def beam_count(piece: Piece) -> int:
    """Beams (or flags) of the written value: 1 for an eighth, 2 for a 16th, …"""
    plain = piece.written if piece.written in TYPE_NAMES else piece.written * Fraction(2, 3)
    count = 0
    while plain < Fraction(1) and count < 6:
        plain *= 2
        count += 1
    return count


def mark_beams(pieces: list[Piece], bar: Bar) -> list[Piece]:
    out = list(pieces)
    for start, end in beam_groups(bar):
        run: list[int] = []
        for k, piece in enumerate([*out, None]):
            inside = piece is not None and start <= piece.offset + bar.shift < end
            beamable = inside and piece.pitches and beam_count(piece) > 0
            if beamable:
                run.append(k)
                continue
            if len(run) >= 2:
                _beam_run(out, run)
            run = []
    return out


def _beam_run(out: list[Piece], run: list[int]) -> None:
    counts = [beam_count(out[k]) for k in run]
    beams: list[list[str]] = [[] for _ in run]
    for level in range(1, max(counts) + 1):
        i = 0
        while i < len(run):
            if counts[i] < level:
                i += 1
                continue
            j = i
            while j + 1 < len(run) and counts[j + 1] >= level:
                j += 1
            if level == 1 or j > i:
                beams[i].append("start")
                for m in range(i + 1, j):
                    beams[m].append("continue")
                beams[j].append("stop")
            else:
                beams[i].append("partial-right" if i == 0 else "partial-left")
            i = j + 1
    for k, kinds in zip(run, beams, strict=True):
        out[k] = replace(out[k], beams=tuple(kinds))
