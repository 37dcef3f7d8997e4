"""Train / val / test assignment: whole source pieces, never their excerpts, decide a split.

A movement cut into 32-bar excerpts (and with its repeats written out) would otherwise have
excerpts on both sides of the split, and a held-out score would measure memory, not music.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from typing import Any

SPLIT_BUCKETS = 1000
SPLITS = ("train", "val", "test")
MIN_SOURCES_FOR_HELD_OUT = 3  # a style with fewer source pieces keeps them all for training


def bucket_of(fingerprint: str) -> int:
    return int(fingerprint[:12], 16) % SPLIT_BUCKETS


def split_for(fingerprint: str) -> str:
    """train / val / test (90/5/5) from a content fingerprint: stable across runs and machines."""
    bucket = bucket_of(fingerprint)
    if bucket < 0.90 * SPLIT_BUCKETS:
        return "train"
    if bucket < 0.95 * SPLIT_BUCKETS:
        return "val"
    return "test"


def source_key(record: dict[str, Any]) -> tuple[str, str, int]:
    """The piece an excerpt was cut from: (style, source path, tune number in a book)."""
    source = record.get("source") or {}
    return record["style"], str(source.get("path", record["id"])), int(source.get("index", -1))


def source_fingerprint(excerpt_fingerprints: list[str]) -> str:
    """A whole piece's fingerprint from its excerpts' (in order): two copies of a piece agree."""
    return hashlib.sha256("\n".join(excerpt_fingerprints).encode()).hexdigest()


def assign_splits(records: list[dict[str, Any]]) -> None:
    """Set ``record["split"]`` in place, one split per source piece.

    Every style with at least ``MIN_SOURCES_FOR_HELD_OUT`` source pieces gets at least one
    val and one test piece: the hash rule alone can leave a style of 9 movements without any.
    The stand-ins are the train pieces whose buckets lie nearest the val range, so the choice
    is as stable as the hash itself.
    """
    groups: dict[tuple[str, str, int], list[dict[str, Any]]] = defaultdict(list)
    for record in records:
        groups[source_key(record)].append(record)
    by_style: dict[str, list[tuple[int, str, tuple[str, str, int]]]] = defaultdict(list)
    split_of: dict[tuple[str, str, int], str] = {}
    for key, members in groups.items():
        members.sort(key=lambda r: r["id"])
        fingerprint = source_fingerprint([r.get("fingerprint") or r["id"] for r in members])
        split_of[key] = split_for(fingerprint)
        by_style[key[0]].append((bucket_of(fingerprint), fingerprint, key))
    for entries in by_style.values():
        if len(entries) < MIN_SOURCES_FOR_HELD_OUT:
            continue
        for wanted in ("val", "test"):
            if any(split_of[key] == wanted for _, _, key in entries):
                continue
            train = sorted(e for e in entries if split_of[e[2]] == "train")
            if len(train) > 1:
                split_of[train[-1][2]] = wanted
    for key, members in groups.items():
        for record in members:
            record["split"] = split_of[key]


__all__ = ["SPLITS", "assign_splits", "source_fingerprint", "source_key", "split_for"]
