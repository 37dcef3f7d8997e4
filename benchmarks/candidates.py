"""How long 16 bars take with 1, 2 and 4 candidates, per style, in one process.

Times ``Composer.generate`` after the model is loaded (the command line adds its start-up:
imports and reading the bundle), with the default guidance. Each figure is the
median of ``--repeats`` seeds; the ratio is against one candidate in the same run.

    python benchmarks/candidates.py --styles bach,haydn,irish --repeats 3

The last line printed is JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

from hardware import machine_info

from composer.api import Composer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", type=Path, default=None, help="bundle folder (default: the shipped model)")
    parser.add_argument("--styles", default="bach,palestrina,haydn,irish")
    parser.add_argument("--candidates", default="1,2,4")
    parser.add_argument("--bars", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    composer = Composer.load(args.model)
    composer.generate(composer.styles[0], bars=2, seed=0)  # the decoder prepares its weights once
    results: dict[str, dict[str, float]] = {}
    for style in [s for s in args.styles.split(",") if s]:
        results[style] = {}
        for n in [int(x) for x in args.candidates.split(",")]:
            seconds = []
            for seed in range(args.repeats):
                started = time.perf_counter()
                composer.generate(style, bars=args.bars, seed=seed, candidates=n)
                seconds.append(time.perf_counter() - started)
            results[style][str(n)] = round(statistics.median(seconds), 3)
            ratio = results[style][str(n)] / results[style][next(iter(results[style]))]
            print(f"{style:>12} N={n}: median {results[style][str(n)]:.2f} s "
                  f"(runs {', '.join(f'{x:.2f}' for x in seconds)}; {ratio:.2f}x one candidate)", flush=True)
    print(json.dumps({"bars": args.bars, "repeats": args.repeats, "median_seconds": results,
                      "machine": machine_info(os.cpu_count() or 1)}))


if __name__ == "__main__":
    main()
