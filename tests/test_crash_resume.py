"""Crash-safe training: ``composer train`` killed with SIGKILL, then ``--resume``, five times.

Each kill lands at a random moment (seeded): a random step, plus a random fraction of
a step, so some kills hit a checkpoint being written. After every kill the newest
checkpoint must verify and load; at the end the resumed run must have the same loss
curve and final loss as a run that was never interrupted.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from test_train import TINY_TOML, tiny_config
from tokens_fixture import write_token_shards

from composer.model.checkpoint import list_checkpoints, load_checkpoint, newest_valid_checkpoint
from composer.model.transformer import MusicTransformer
from composer.train.loop import train

SETTINGS = {"max_steps": 60, "eval_every": 4, "log_every": 1, "threads": 1}
KILLS = 5


def _command(tokens: Path, run: Path, resume: bool) -> list[str]:
    sets = [item for key, value in SETTINGS.items() for item in ("--set", f"{key}={value}")]
    return [sys.executable, "-m", "composer", "train", str(tokens), "-o", str(run), "--config",
            str(TINY_TOML), *sets, "--device", "cpu", "-q", *(["--resume"] if resume else [])]


def _last_step(metrics: Path) -> int:
    """The highest step in the complete lines of ``metrics.jsonl``."""
    text = metrics.read_bytes().decode("utf-8", errors="replace")
    return max((json.loads(line)["step"] for line in text.split("\n")[:-1] if line.strip()), default=0)


def _run_until(command: list[str], metrics: Path, step: int, pause: float) -> None:
    """Start the run; SIGKILL it ``pause`` seconds after it logs ``step``.

    A resumed run first rewrites ``metrics.jsonl`` without the steps after its checkpoint
    (a new file), so the old file's lines are never taken for progress.
    """
    before = metrics.stat().st_ino if metrics.exists() else None
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    deadline = time.monotonic() + 300
    while not (metrics.exists() and metrics.stat().st_ino != before and _last_step(metrics) >= step):
        if process.poll() is not None:
            pytest.fail(f"the run ended before step {step}: {process.stderr.read().decode()[-2000:]}")
        if time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"the run did not reach step {step} in 300 s")
        time.sleep(0.002)
    time.sleep(pause)
    process.send_signal(signal.SIGKILL)
    process.communicate()


@pytest.mark.slow
def test_sigkill_and_resume_five_times(tmp_path: Path) -> None:
    tokens = write_token_shards(tmp_path / "tok")
    straight = train(tokens, tmp_path / "straight", tiny_config(**SETTINGS))
    run = tmp_path / "run"
    metrics = run / "metrics.jsonl"
    checkpoints = run / "checkpoints"
    rng = random.Random(9)
    model_config = tiny_config(**SETTINGS).model
    model_config.vocab_size = 40  # the shards' vocabulary
    model = MusicTransformer(model_config)
    every = SETTINGS["eval_every"]
    for kill in range(KILLS):
        newest = newest_valid_checkpoint(checkpoints)
        start = load_checkpoint(newest, model)[0]["step"] if newest else 0
        # a random step after the next checkpoint (so there is one to resume from) ...
        target = start + rng.randint(every + 1, 2 * every)
        _run_until(_command(tokens, run, resume=newest is not None), metrics, target,
                   pause=rng.uniform(0.0, 0.03))  # ... and a random moment within it
        newest = newest_valid_checkpoint(checkpoints)
        assert newest is not None and newest == list_checkpoints(checkpoints)[-1], kill
        state, _ = load_checkpoint(newest, model)
        assert state["step"] >= max(start, target - every), (kill, target, state["step"])
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    finished = subprocess.run(_command(tokens, run, resume=True), capture_output=True, text=True,
                              env=env, timeout=300)
    assert finished.returncode == 0, finished.stderr[-2000:]
    summary = json.loads((run / "summary.json").read_text())
    assert abs(summary["final_loss"] - straight["final_loss"]) <= 1e-6
    assert _curve(metrics) == _curve(tmp_path / "straight" / "metrics.jsonl")
    assert not list(checkpoints.glob(".tmp-*")) and (checkpoints / "best").is_dir()


def _curve(metrics: Path) -> list[tuple[int, float | None, float | None]]:
    rows = [json.loads(line) for line in metrics.read_text().splitlines()]
    return [(r["step"], r.get("loss"), r.get("val_loss")) for r in rows]


def test_leftovers_of_a_killed_run_are_tidied_on_resume(tmp_path: Path) -> None:
    tokens = write_token_shards(tmp_path / "tok")
    run = tmp_path / "run"
    train(tokens, run, tiny_config(max_steps=8, eval_every=4))
    checkpoints = run / "checkpoints"
    os.replace(checkpoints / "best", checkpoints / "best.old")  # killed inside copy_checkpoint
    (checkpoints / ".tmp-killed").mkdir()  # killed inside save_checkpoint
    (checkpoints / ".tmp-killed" / "model.safetensors").write_bytes(b"half a file")
    with (run / "metrics.jsonl").open("a") as handle:
        handle.write('{"step": 9, "loss": 1.5}\n{"step": 10, "lo')  # steps after the checkpoint, torn
    train(tokens, run, tiny_config(max_steps=12, eval_every=4), resume=True)
    assert (checkpoints / "best").is_dir() and not (checkpoints / "best.old").exists()
    assert not list(checkpoints.glob(".tmp-*"))
    steps = [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines()
             if "loss" in json.loads(line)]
    assert steps == sorted(set(steps)) and steps[-1] == 12
