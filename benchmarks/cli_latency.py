"""How long the command line takes, from a cold process to the file, against importing torch.

    python benchmarks/cli_latency.py [--model models/default] [--repeats 5] [--style bach]

Times, in one run and alternating so that machine noise hits every command alike:
  - ``python -c "import torch"`` (the baseline: what any torch-based tool pays first);
  - ``composer generate --style S --bars 16 -o x.mid`` with ``--candidates 1`` and with the
    default number of candidates (each reported; they are the same while the default is 1);
  - the same with ``--score x.pdf`` (engraving);
  - ``composer continue`` on a 4-bar prompt, 8 bars.
Each figure is the median of ``--repeats`` cold processes; ``ratio_*`` divides it by the
median of ``import torch``. Each process also reports whether it imported torch. The last
line printed is JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from hardware import describe, machine_info

PROMPT = "tinynotation: 4/4 c4 d e f g2 e c4 d e c d1"  # four bars of a simple tune
# A cold process that reports whether torch was imported: sys.modules after the command runs
TORCH_PROBE = ("import runpy, sys; sys.argv = ['composer', *sys.argv[1:]]; "
               "import atexit; atexit.register(lambda: print('torch-imported' if 'torch' in sys.modules "
               "else 'torch-free', file=sys.stderr)); runpy.run_module('composer', run_name='__main__')")


def _run(command: list[str], workdir: Path) -> tuple[float, str]:
    """Seconds from spawning ``command`` to its exit, and its stderr (checked: it must succeed)."""
    started = time.perf_counter()
    done = subprocess.run(command, cwd=workdir, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed ({done.returncode}): {done.stderr.strip()[-500:]}")
    return seconds, done.stderr


def _commands(args: argparse.Namespace) -> dict[str, list[str]]:
    composer = [sys.executable, "-c", TORCH_PROBE]
    model = ["--model", str(args.model.resolve())] if args.model else []
    generate = [*composer, "generate", "--style", args.style, "--bars", "16", "--seed", "1", *model,
                "-o", "x.mid", "--force"]
    return {
        "import_torch": [sys.executable, "-c", "import torch"],
        "generate_midi_n1": [*generate, "--candidates", "1"],
        "generate_midi_default": generate,
        "generate_pdf_n1": [*generate, "--candidates", "1", "--score", "x.pdf"],
        "continue_midi_n1": [*composer, "continue", PROMPT, "--style", args.style, "--bars", "8",
                             "--seed", "1", *model, "--candidates", "1", "-o", "c.mid", "--force"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", type=Path, default=None, help="bundle folder (default: the shipped model)")
    parser.add_argument("--style", default="bach")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    info = machine_info(os.cpu_count() or 1)  # the commands run as a user runs them: every core
    print(describe(info))
    commands = _commands(args)
    seconds: dict[str, list[float]] = {name: [] for name in commands}
    torch_free: dict[str, bool] = {}
    workdir = Path(tempfile.mkdtemp(prefix="cli-latency-"))
    try:
        for command in commands.values():  # one untimed run each: files cached, outputs exist
            _run(command, workdir)
        for _ in range(args.repeats):
            for name, command in commands.items():
                spent, stderr = _run(command, workdir)
                seconds[name].append(spent)
                if name != "import_torch":
                    torch_free[name] = "torch-free" in stderr
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    medians = {name: statistics.median(values) for name, values in seconds.items()}
    base = medians["import_torch"]
    result: dict[str, object] = {"repeats": args.repeats, "style": args.style, "machine": info}
    for name, values in seconds.items():
        ratio = medians[name] / base
        imports = "" if name == "import_torch" else ("; no torch" if torch_free[name] else "; imports torch")
        print(f"{name:>22}: median {medians[name]:.2f} s (range {min(values):.2f}–{max(values):.2f}; "
              f"{ratio:.2f}x import torch{imports})")
        result[f"{name}_s"] = round(medians[name], 3)
        result[f"{name}_range_s"] = [round(min(values), 3), round(max(values), 3)]
        if name != "import_torch":
            result[f"ratio_{name}"] = round(ratio, 3)
            result[f"torch_free_{name}"] = torch_free[name]
    print(json.dumps(result))


if __name__ == "__main__":
    main()
