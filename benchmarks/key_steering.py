"""How often ``continue`` keeps a typed-in tune's key, with the particle filter's
resampling rule of this version and with the plain "half the particles" rule, in one run.

Continues each of ``evaluate``'s 12 typed-in tunes (``composer.evaluate.tunes``) by 8 bars
in each style, at ``--seeds`` seeds, with ``--candidates`` steered particles, and counts
the continuations whose key signature (by ``evaluate``'s rule) is the tune's. With the
half rule two particles are never resampled: an effective sample size never falls below
1, so ``--candidates 2`` went unsteered. The ratio is against the half rule.

    python benchmarks/key_steering.py                       # 2 candidates, 3 styles, 5 seeds
    python benchmarks/key_steering.py --candidates 4 --seeds 3

The last line printed is JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

from hardware import machine_info

import composer.generate.decode as decode
from composer.api import Composer
from composer.evaluate.key_consistency import compare_keys
from composer.evaluate.tunes import TUNES
from composer.generate.continuation import prepare_prompt


def kept_share(composer: Composer, styles: list[str], seeds: int, candidates: int) -> float:
    kept = []
    for style in styles:
        for seed in range(100, 100 + seeds):
            for number, tune in enumerate(TUNES):
                prompt = prepare_prompt(tune.text, None).score
                piece = composer.continue_(tune.text, style=style, bars=8, seed=seed * 100 + number,
                                           keep_prompt=False, candidates=candidates)
                kept.append(compare_keys(prompt, piece.score).same_signature)
    return sum(kept) / len(kept)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", type=Path, default=None, help="bundle folder (default: the shipped model)")
    parser.add_argument("--styles", default="irish,german_folk,bach")
    parser.add_argument("--seeds", type=int, default=5, help="seeds 100, 101, … per tune and style")
    parser.add_argument("--candidates", type=int, default=2)
    args = parser.parse_args()
    composer = Composer.load(args.model)
    styles = [s for s in args.styles.split(",") if s]
    rules = {"half the particles": lambda particles: particles / 2,
             "this version": decode.resample_threshold}
    shares: dict[str, float] = {}
    for name, rule in rules.items():
        decode.resample_threshold = rule
        started = time.perf_counter()
        shares[name] = kept_share(composer, styles, args.seeds, args.candidates)
        baseline = shares["half the particles"]
        print(f"{name:>20}: key kept in {shares[name]:.3f} of {len(styles) * args.seeds * len(TUNES)} "
              f"continuations ({shares[name] / baseline if baseline else float('nan'):.2f}x the half rule; "
              f"{time.perf_counter() - started:.0f} s)", flush=True)
    print(json.dumps({"candidates": args.candidates, "styles": styles, "seeds": args.seeds,
                      "key_kept": shares, "machine": machine_info(os.cpu_count() or 1)}))


if __name__ == "__main__":
    main()
