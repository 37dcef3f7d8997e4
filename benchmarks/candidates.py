"""How long 16 bars take with 1, 2 and 4 candidates, per style, in one process; or, with
``--command continue``, 8 bars after a typed-in tune, steered toward its key or not.

Times ``Composer.generate`` (or ``continue_``) after the model is loaded (the command line
adds its start-up: imports and reading the bundle), with the default guidance. Each figure
is the median of ``--repeats`` seeds; the ratio is against the first setting in the same run.

    python benchmarks/candidates.py --styles bach,haydn,irish --repeats 3
    python benchmarks/candidates.py --command continue --candidates 2,8 --key-weights 0,30
    python benchmarks/candidates.py --candidates 2 --line-weights 0,1   # the line prior's cost

The last line printed is JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from itertools import product
from pathlib import Path

from hardware import machine_info

from composer.api import Composer

TUNE = "tinynotation: 4/4 e4 e f g g f e d c c d e e4. d8 d2"  # Ode to Joy, 4 bars


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", type=Path, default=None, help="bundle folder (default: the shipped model)")
    parser.add_argument("--command", choices=("generate", "continue"), default="generate")
    parser.add_argument("--styles", default="bach,palestrina,haydn,irish")
    parser.add_argument("--candidates", default="1,2,4")
    parser.add_argument("--key-weights", default="30", help="continue: steering weights to try")
    parser.add_argument("--line-weights", default="1", help="line prior weights to try (0: off)")
    parser.add_argument("--bars", type=int, default=None, help="default: 16 for generate, 8 for continue")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    composer = Composer.load(args.model)
    composer.generate(composer.styles[0], bars=2, seed=0)  # the decoder prepares its weights once
    continuing = args.command == "continue"
    bars = args.bars or (8 if continuing else 16)
    weights = [float(x) for x in args.key_weights.split(",")] if continuing else [None]
    line_weights = [float(x) for x in args.line_weights.split(",")]
    results: dict[str, dict[str, float]] = {}
    for style in [s for s in args.styles.split(",") if s]:
        results[style] = {}
        for n, weight, line in product([int(x) for x in args.candidates.split(",")], weights, line_weights):
            label = str(n) if weight is None else f"{n}, key weight {weight:g}"
            label += "" if len(line_weights) == 1 else f", line weight {line:g}"
            seconds = []
            for seed in range(args.repeats):
                started = time.perf_counter()
                if continuing:
                    composer.continue_(TUNE, style=style, bars=bars, seed=seed, candidates=n,
                                       key_weight=weight, line_weight=line)
                else:
                    composer.generate(style, bars=bars, seed=seed, candidates=n, line_weight=line)
                seconds.append(time.perf_counter() - started)
            results[style][label] = round(statistics.median(seconds), 3)
            ratio = results[style][label] / results[style][next(iter(results[style]))]
            print(f"{style:>12} N={label}: median {results[style][label]:.2f} s "
                  f"(runs {', '.join(f'{x:.2f}' for x in seconds)}; {ratio:.2f}x the first setting)",
                  flush=True)
    print(json.dumps({"command": args.command, "bars": bars, "repeats": args.repeats,
                      "median_seconds": results, "machine": machine_info(os.cpu_count() or 1)}))


if __name__ == "__main__":
    main()
