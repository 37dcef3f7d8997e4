from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from tokens_fixture import write_token_shards

from composer.errors import ConfigError
from composer.model.checkpoint import CheckpointError, list_checkpoints, load_checkpoint
from composer.model.transformer import MusicTransformer
from composer.train.batches import IGNORE_INDEX, BatchSpec, TokenData, load_token_data, sample_batch
from composer.train.config import TrainConfig, learning_rate_at, load_config
from composer.train.loop import train

TINY_TOML = Path(__file__).resolve().parents[1] / "configs" / "tiny.toml"


def tiny_config(**overrides: object) -> TrainConfig:
    items = [f"{k}={v}" for k, v in overrides.items()]
    return load_config(TINY_TOML, [*items, "threads=1"])


def _is_window_of_a_piece(data: TokenData, row: list[int]) -> bool:
    """``row`` (style token, then a run of ids) = a style token + a slice of one train piece's body."""
    shard = data.splits["train"]
    for offset, length in zip(shard.offsets.tolist(), shard.lengths.tolist(), strict=True):
        piece = shard.tokens[offset: offset + length].tolist()
        if piece[0] != row[0]:
            continue
        body, run = piece[1:], row[1:]
        if any(body[i: i + len(run)] == run for i in range(len(body) - len(run) + 1)):
            return True
    return False


def test_batches_start_with_style_and_are_deterministic(tmp_path: Path) -> None:
    data = load_token_data(write_token_shards(tmp_path / "tok"))
    spec = BatchSpec(batch_size=6, block_size=16, seed=3)
    x1, y1 = sample_batch(data, spec, step=5)
    x2, y2 = sample_batch(data, spec, step=5)
    assert torch.equal(x1, x2) and torch.equal(y1, y2)
    assert set(x1[:, 0].tolist()) <= {2, 3}  # every window opens with a style token
    # every piece's body (40+ ids) is longer than a window: no padding, targets = inputs moved by one
    assert not (y1 == IGNORE_INDEX).any()
    assert torch.equal(x1[:, 1:], y1[:, :-1])
    for x, y in zip(x1.tolist(), y1.tolist(), strict=True):
        assert _is_window_of_a_piece(data, [*x, y[-1]])  # a window cut from one piece, style kept
    halves = [sample_batch(data, spec, step=5, rank=r, world=2)[0] for r in (0, 1)]
    assert torch.equal(torch.cat([halves[0], halves[1]]).sort(0)[0], x1.sort(0)[0])
    dropped = sample_batch(data, BatchSpec(6, 16, 3, style_dropout=1.0), step=5)[0]
    assert set(dropped[:, 0].tolist()) == {4}


def test_windows_longer_than_a_piece_are_padded_and_the_padding_is_not_learned(tmp_path: Path) -> None:
    data = load_token_data(write_token_shards(tmp_path / "tok"))
    block = 400  # longer than every piece (at most 8 x 40 + 2 ids)
    x, y = sample_batch(data, BatchSpec(batch_size=8, block_size=block, seed=1), step=0)
    shard = data.splits["train"]
    lengths = set(shard.lengths.tolist())
    for inputs, targets in zip(x.tolist(), y.tolist(), strict=True):
        real = next(i for i, t in enumerate([*targets, IGNORE_INDEX]) if t == IGNORE_INDEX)
        assert real + 1 in lengths  # the whole piece (style ... EOS), then padding
        assert targets[real:] == [IGNORE_INDEX] * (block - real)  # padding is never a target
        assert inputs[real + 1:] == [data.pad_id] * (block - real - 1)
        assert inputs[1: real + 1] == targets[:real]  # targets = inputs moved by one
        assert targets[real - 1] == 1  # the last real target is the piece's EOS
        assert _is_window_of_a_piece(data, [*inputs[: real + 1]])


def test_resume_matches_an_uninterrupted_run(tmp_path: Path) -> None:
    tokens = write_token_shards(tmp_path / "tok")
    straight = train(tokens, tmp_path / "straight", tiny_config(max_steps=20, eval_every=10))
    train(tokens, tmp_path / "split", tiny_config(max_steps=20, eval_every=10), stop_at=10)
    resumed = train(tokens, tmp_path / "split", tiny_config(max_steps=20, eval_every=10), resume=True)
    assert abs(straight["final_loss"] - resumed["final_loss"]) <= 1e-6
    lines = [json.loads(x) for x in (tmp_path / "split" / "metrics.jsonl").read_text().splitlines()]
    assert any("val_loss_by_style" in line and set(line["val_loss_by_style"]) == {"bach", "irish"}
               for line in lines)


def test_loss_goes_down(tmp_path: Path) -> None:
    tokens = write_token_shards(tmp_path / "tok")
    summary = train(tokens, tmp_path / "run", tiny_config(max_steps=60, eval_every=60))
    assert summary["last_eval"]["val_loss"] < 2.0  # from ln(40) = 3.7 at random


def test_corrupt_checkpoint_is_refused_and_previous_loads(tmp_path: Path) -> None:
    tokens = write_token_shards(tmp_path / "tok")
    config = tiny_config(max_steps=20, eval_every=10)
    train(tokens, tmp_path / "run", config)
    older, newer = list_checkpoints(tmp_path / "run" / "checkpoints")
    weights = newer / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])  # truncated
    model = MusicTransformer(config.model)
    with pytest.raises(CheckpointError, match="corrupt or truncated"):
        load_checkpoint(newer, model)
    state, _ = load_checkpoint(older, model)
    assert state["step"] == 10
    resumed = train(tokens, tmp_path / "run", tiny_config(max_steps=30, eval_every=10), resume=True)
    assert resumed["steps"] == 30


def test_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown training setting"):
        load_config(None, ["max_stepz=3"])
    with pytest.raises(ConfigError, match="unknown model setting"):
        load_config(None, ["model.layers=3"])
    bad = tmp_path / "bad.toml"
    bad.write_text("max_steps = = 3")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(bad)
    tokens = write_token_shards(tmp_path / "tok")
    train(tokens, tmp_path / "run", tiny_config(max_steps=10, eval_every=10))
    with pytest.raises(ConfigError, match="already holds a run"):
        train(tokens, tmp_path / "run", tiny_config(max_steps=10))


def test_learning_rate_schedule() -> None:
    config = TrainConfig(max_steps=100, warmup_steps=10, learning_rate=1.0, min_learning_rate=0.1)
    assert learning_rate_at(0, config) == pytest.approx(0.1)
    assert learning_rate_at(9, config) == pytest.approx(1.0)
    assert learning_rate_at(100, config) == pytest.approx(0.1)
    assert learning_rate_at(55, config) == pytest.approx(0.55)


@pytest.mark.slow
def test_torchrun_two_processes_on_cpu(tmp_path: Path) -> None:
    import subprocess
    import sys

    tokens = write_token_shards(tmp_path / "tok")
    single = train(tokens, tmp_path / "single", tiny_config(max_steps=6, eval_every=6))
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
               "-m", "composer", "train", str(tokens), "-o", str(tmp_path / "ddp"),
               "--config", str(TINY_TOML), "--set", "max_steps=6", "--set", "eval_every=6",
               "--set", "threads=1", "--device", "cpu", "-q"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    # the ranks' own words come before the launcher's traceback (a rank that aborted as the
    # ranks left gloo said "terminate called without an active exception": finish_distributed)
    assert result.returncode == 0, result.stderr[:6000]
    lines = [json.loads(x) for x in (tmp_path / "ddp" / "metrics.jsonl").read_text().splitlines()]
    ddp_loss = next(x["loss"] for x in lines if "loss" in x and x["step"] == 6)
    assert abs(ddp_loss - single["final_loss"]) < 1e-3  # same global batch, split over 2 ranks
    assert list_checkpoints(tmp_path / "ddp" / "checkpoints")


def test_init_from_a_bundle_starts_from_its_weights_and_architecture(
        tmp_path: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    from bundle_fixture import tiny_bundle
    from test_tokenizer import build_tiny

    from composer.model.bundle import load_bundle

    bundle = load_bundle(tiny_bundle(tmp_path_factory))
    tokens = build_tiny(tmp_path_factory).tokens_dir
    # learning rate 0: the one step leaves the weights as they started; [model] says 3 layers
    config = tiny_config(max_steps=1, eval_every=1, eval_windows=2, learning_rate=0, min_learning_rate=0,
                         warmup_steps=0, init_from=f'"{bundle.path.as_posix()}"')
    config.model.n_layer = 3
    train(tokens, tmp_path / "run", config)
    (checkpoint,) = list_checkpoints(tmp_path / "run" / "checkpoints")
    started = bundle.load_model()
    model = MusicTransformer(started.config)
    _, saved = load_checkpoint(checkpoint, model)
    assert saved["train"]["model"]["n_layer"] == started.config.n_layer != 3
    assert saved["train"]["init_from"] == bundle.path.as_posix()
    for name, weights in started.state_dict().items():
        assert torch.equal(model.state_dict()[name], weights), name
    # tokens from another tokenizer are refused before any training
    with pytest.raises(ConfigError, match="not tokenized with"):
        train(write_token_shards(tmp_path / "other"), tmp_path / "run2",
              tiny_config(max_steps=1, init_from=f'"{bundle.path.as_posix()}"'))
    assert not (tmp_path / "run2" / "checkpoints").exists()


def test_train_init_from_no_bundle_is_one_line_and_exit_2(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from composer.cli import cli

    tokens = write_token_shards(tmp_path / "tok")
    result = CliRunner().invoke(cli, ["train", str(tokens), "-o", str(tmp_path / "run"), "--config",
                                      str(TINY_TOML), "--init", str(tmp_path / "nothing"), "-q"])
    assert result.exit_code == 2, result.output
    assert len(result.output.strip().splitlines()) == 1 and "no model bundle" in result.output
    assert not (tmp_path / "run" / "checkpoints").exists()
