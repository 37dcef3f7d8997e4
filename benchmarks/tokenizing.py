"""Tokenizer benchmark: compression, speed, grammar, round trip.

    python benchmarks/tokenizing.py data/corpus --workers 2
    python benchmarks/tokenizing.py data/corpus --tokenizer data/tokenizer   # reuse a trained one

Trains a tokenizer on the corpus's train split (unless --tokenizer is given), tokenizes
the whole corpus from scratch (with the -6..+6 key augmentation of the train split),
and prints: tokens per note for plain REMI and for BPE on the held-out pieces (val and
test), pieces tokenized per second, the grammar table's build time, whether the grammar
accepts every sequence written, and the round trip per style on the val split. The
last line is one JSON object.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

# This file is named like the standard library's ``tokenize`` (which ``inspect`` imports),
# and Python puts the script's folder first on sys.path: take it off before importing more.
if sys.path and Path(sys.path[0]).resolve() == Path(__file__).resolve().parent:
    sys.path.pop(0)

if TYPE_CHECKING:
    from composer.tokens.grammar import TokenGrammar
    from composer.tokens.tokenizer import Tokenizer


def _held_out_compression(tok: Tokenizer, corpus: Path, records: list[dict[str, Any]]) -> tuple[float, float]:
    import symusic

    notes = plain = bpe = 0
    for record in records:
        base = tok.encode_base(symusic.Score(str(corpus / record["midi"])))
        notes += record["n_notes"]
        plain += len(base)
        bpe += len(tok.bpe(base))
    return plain / max(notes, 1), bpe / max(notes, 1)


def _grammar_accepts(grammar: TokenGrammar, tokens_dir: Path) -> tuple[int, int]:
    import numpy as np

    from composer.tokens.shards import SPLITS, read_split

    table = grammar.transition.tolist()  # list lookups: ~10x faster than numpy scalars
    accepted = total = 0
    for split in SPLITS:
        ids, rows = read_split(tokens_dir, split)
        flat = np.asarray(ids).tolist()
        for row in rows:
            state = grammar.start_state
            for entry in flat[row["offset"]: row["offset"] + row["length"]]:
                state = table[state][entry]
                if state < 0:
                    break
            accepted += state == grammar.end_state
            total += 1
    return accepted, total


def main() -> None:
    import argparse
    import json
    import tempfile
    import time
    from collections import defaultdict

    import symusic

    from composer.corpus.build import read_manifest
    from composer.tokens.roundtrip import RoundTrip, round_trip
    from composer.tokens.settings import TokenizerSettings
    from composer.tokens.shards import TokenizeConfig, tokenize_corpus
    from composer.tokens.tokenizer import load_tokenizer
    from composer.tokens.training import train_tokenizer

    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("corpus", type=Path, nargs="?", default=Path("data/corpus"))
    parser.add_argument("--tokenizer", type=Path, default=None, help="a trained tokenizer to reuse")
    parser.add_argument("--vocab-size", type=int, default=TokenizerSettings.vocab_size)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--work", type=Path, default=None,
                        help="folder for the outputs (default: a temp dir)")
    args = parser.parse_args()

    work = args.work or Path(tempfile.mkdtemp(prefix="tokenize-bench-"))
    records = read_manifest(args.corpus)
    out: dict[str, object] = {"pieces": len(records), "notes": sum(r["n_notes"] for r in records)}

    if args.tokenizer is None:
        started = time.monotonic()
        result = train_tokenizer(args.corpus, work / "tokenizer",
                                 TokenizerSettings(vocab_size=args.vocab_size), workers=args.workers)
        out["train_seconds"] = round(time.monotonic() - started, 1)
        tokenizer_dir = work / "tokenizer"
        print(f"trained {result.tokenizer.vocab_size} ids on {result.pieces} pieces "
              f"in {out['train_seconds']} s ({len(result.skipped)} skipped)")
    else:
        tokenizer_dir = args.tokenizer
    tok = load_tokenizer(tokenizer_dir)
    out["vocab_size"] = tok.vocab_size
    out["base_vocab"] = len(tok.base_vocab)

    held_out = [r for r in records if r["split"] in ("val", "test")]
    plain, bpe = _held_out_compression(tok, args.corpus, held_out)
    out["plain_tokens_per_note"] = round(plain, 3)
    out["bpe_tokens_per_note"] = round(bpe, 3)
    out["bpe_len_ratio"] = round(bpe / plain, 3)
    print(f"tokens per note on {len(held_out)} held-out pieces: plain REMI {plain:.3f}, "
          f"BPE {bpe:.3f} (ratio {bpe / plain:.3f}; goal <= 0.4)")
    train_info = tok.info
    if train_info:
        print(f"tokens per note on the train split: plain {train_info.get('base_tokens_per_note')}, "
              f"BPE {train_info.get('bpe_tokens_per_note')}")

    tokens_dir = work / "tokens"
    started = time.monotonic()
    shards = tokenize_corpus(TokenizeConfig(args.corpus, tokenizer_dir, tokens_dir, workers=args.workers,
                                            use_cache=False))
    seconds = time.monotonic() - started
    out["tokenize_seconds"] = round(seconds, 1)
    out["files_per_s"] = round(len(records) / seconds, 1)
    out["sequences"] = sum(s["sequences"] for s in shards.meta["splits"].values())
    out["tokens"] = sum(s["tokens"] for s in shards.meta["splits"].values())
    out["skipped"] = len(shards.skipped)
    print(f"tokenized {len(records)} pieces into {out['sequences']} sequences / {out['tokens']:,} ids "
          f"(train x13 keys) in {seconds:.1f} s with {args.workers} workers: {out['files_per_s']} files/s; "
          f"{len(shards.skipped)} skipped")
    started = time.monotonic()
    again = tokenize_corpus(TokenizeConfig(args.corpus, tokenizer_dir, tokens_dir, workers=args.workers))
    out["retokenize_seconds"] = round(time.monotonic() - started, 1)
    print(f"incremental re-run: {again.reused} pieces reused in {out['retokenize_seconds']} s")

    started = time.monotonic()
    grammar = tok.grammar
    out["grammar_build_s"] = round(time.monotonic() - started, 3)
    out["grammar_states"] = grammar.n_states
    out["grammar_mb"] = round(grammar.nbytes() / 1e6, 2)
    print(f"grammar: {grammar.n_states} states x {tok.vocab_size} ids built in "
          f"{out['grammar_build_s']} s ({out['grammar_mb']} MB)")
    accepted, total = _grammar_accepts(grammar, tokens_dir)
    out["grammar_accepts"] = f"{accepted}/{total}"
    print(f"grammar accepts {accepted} of {total} sequences written")

    per_style: dict[str, RoundTrip] = defaultdict(lambda: RoundTrip(0, 0, 0))
    for record in (r for r in records if r["split"] == "val"):
        score = symusic.Score(str(args.corpus / record["midi"]))
        per_style[record["style"]] += round_trip(tok, score, record["style"])
    print("round trip on the val split (notes equal in pitch, onset, duration on the grid):")
    for style, rt in sorted(per_style.items()):
        print(f"  {style:<14}{rt.matched:>8} / {rt.source_notes:<8} {100 * rt.ratio:7.3f} %")
    total_rt = sum(per_style.values(), RoundTrip(0, 0, 0))
    out["round_trip"] = {s: round(rt.ratio, 5) for s, rt in sorted(per_style.items())}
    out["round_trip_all"] = round(total_rt.ratio, 5)
    print(f"  {'all':<14}{total_rt.matched:>8} / {total_rt.source_notes:<8} {100 * total_rt.ratio:7.3f} %")
    sys.path.append(str(Path(__file__).resolve().parent))  # last: the standard library first
    from hardware import machine_info

    out["machine"] = machine_info(os.cpu_count() or 1)
    sys.stdout.flush()
    print(json.dumps(out))


if __name__ == "__main__":
    main()
