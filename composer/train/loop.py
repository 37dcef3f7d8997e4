"""The training loop: AdamW, warm-up then cosine, clipping, evaluation, checkpoints, DDP.

One process trains on one device. Under ``torchrun`` the same code runs with
DistributedDataParallel: every rank takes its share of the same global batch (so the
loss curve does not depend on the number of processes), and rank 0 writes the
metrics and checkpoints."""

from __future__ import annotations

import json
import logging
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from composer.errors import ConfigError
from composer.io.digest import sha256_file
from composer.io.outputs import write_atomic
from composer.model.bundle import Bundle, load_bundle
from composer.model.checkpoint import (
    RUN_CHECKPOINTS,
    RUN_SUMMARY,
    copy_checkpoint,
    load_checkpoint,
    newest_valid_checkpoint,
    recover_checkpoints,
    save_checkpoint,
)
from composer.model.transformer import ModelConfig, MusicTransformer
from composer.tokens.tokenizer import TOKENIZER_FILE  # 'composer tokenize' puts one next to the shards
from composer.train.batches import (
    IGNORE_INDEX,
    BatchSpec,
    TokenData,
    eval_windows,
    load_token_data,
    sample_batch,
)
from composer.train.config import TrainConfig, learning_rate_at
from composer.train.distributed import (
    barrier,
    finish_distributed,
    global_mean,
    resolve_device,
    setup_distributed,
)

log = logging.getLogger(__name__)


def _rng_state() -> dict[str, Any]:
    # batches come from seeded numpy Generators (a function of the step), so only torch's
    # global RNG (dropout) carries state between steps
    state: dict[str, Any] = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def make_optimizer(model: torch.nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    decay = [p for p in model.parameters() if p.requires_grad and p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.requires_grad and p.dim() < 2]
    groups = [{"params": decay, "weight_decay": config.weight_decay},
              {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=config.learning_rate, betas=(config.beta1, config.beta2))


@torch.no_grad()
def evaluate_loss(model: MusicTransformer, data: TokenData, config: TrainConfig,
                  device: torch.device, split: str = "val") -> dict[str, Any]:
    """Mean next-token loss over (up to ``eval_windows``) windows, overall and per style."""
    was_training = model.training
    model.eval()
    totals: dict[str, list[float]] = {}
    limit = config.eval_windows or None
    for style, window in eval_windows(data, split, config.model.block_size, limit):
        if len(window) < 2:
            continue
        ids = torch.from_numpy(window).to(device)[None, :]  # (1, T + 1)
        with _autocast(device, config.dtype):
            logits, _ = model(ids[:, :-1])
        nll = torch.nn.functional.cross_entropy(logits.float()[0], ids[0, 1:], reduction="sum")
        entry = totals.setdefault(style, [0.0, 0])
        entry[0] += float(nll)
        entry[1] += ids.shape[1] - 1
    model.train(was_training)
    total_nll = sum(v[0] for v in totals.values())
    total_tokens = sum(v[1] for v in totals.values())
    return {
        "val_loss": total_nll / total_tokens if total_tokens else float("nan"),
        "val_loss_by_style": {s: round(v[0] / v[1], 4) for s, v in sorted(totals.items()) if v[1]},
        "val_tokens": total_tokens,
    }


def _start_bundle(config: TrainConfig, tokens_dir: Path, vocab_size: int) -> Bundle:
    """The bundle ``config.init_from`` names, checked against the tokens; ``config.model``
    becomes its architecture (the [model] table of the config file does not apply)."""
    bundle = load_bundle(Path(config.init_from))
    tokens_tokenizer = tokens_dir / TOKENIZER_FILE
    if not tokens_tokenizer.is_file() or sha256_file(tokens_tokenizer) != sha256_file(bundle.tokenizer_path):
        raise ConfigError(f"{tokens_dir}: not tokenized with {bundle.path}'s tokenizer; run "
                          f"'composer tokenize CORPUS --tokenizer {bundle.tokenizer_path} -o TOKENS' first")
    model = ModelConfig.from_dict(bundle.config["model"])
    if model.vocab_size != vocab_size:
        raise ConfigError(f"{bundle.path}: its model has {model.vocab_size} token ids, "
                          f"the tokens {vocab_size}")
    config.model = model
    return bundle


def _autocast(device: torch.device, dtype: str) -> Any:
    if dtype == "bfloat16":
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return torch.autocast(device_type=device.type, enabled=False)


StepCallback = Callable[[dict[str, Any]], None]


def train(tokens_dir: Path, run_dir: Path, config: TrainConfig, resume: bool = False,
          on_step: StepCallback | None = None, stop_at: int | None = None) -> dict[str, Any]:
    """Train (or resume) a model on the shards in ``tokens_dir``; return a summary.

    ``stop_at`` ends the run early at that step, as an interruption would; the
    learning-rate schedule still runs to ``max_steps``, so a later ``resume`` continues
    exactly as if there had been no stop.
    """
    if config.threads:
        torch.set_num_threads(config.threads)
    data = load_token_data(tokens_dir)
    config.model.vocab_size = data.vocab_size
    config.validate()
    dist_info = setup_distributed(torch.device("cuda" if config.device.startswith("cuda") else "cpu"))
    device = resolve_device(config.device, dist_info.local_rank)
    if config.batch_size % dist_info.world:
        raise ConfigError(f"batch_size {config.batch_size} must be a multiple of the "
                          f"{dist_info.world} processes")
    ckpt_dir = run_dir / RUN_CHECKPOINTS
    start_bundle = _start_bundle(config, tokens_dir, data.vocab_size) if config.init_from else None
    torch.manual_seed(config.seed)
    model = MusicTransformer(config.model)
    optimizer_state = None
    start_step = 0
    best_val = float("inf")
    if dist_info.is_main:
        recover_checkpoints(ckpt_dir)
    barrier(dist_info)
    if resume:
        latest = newest_valid_checkpoint(ckpt_dir)
        if latest is None:
            raise ConfigError(f"{run_dir}: nothing to resume (no valid checkpoint); drop --resume")
        state, saved = load_checkpoint(latest, model)
        saved_model = ModelConfig.from_dict(saved["train"]["model"])
        if saved_model != config.model:
            raise ConfigError(f"{latest}: its model settings differ from this run's; resume with "
                              "the same configuration")
        optimizer_state = state["optimizer"]
        start_step = int(state["step"])
        best_val = float(state.get("best_val", best_val))
        _set_rng_state(state["rng"])
    elif list(ckpt_dir.glob("step-*")):
        raise ConfigError(f"{run_dir}: already holds a run; pass --resume to continue it or "
                          "choose another folder")
    elif start_bundle is not None:  # a resumed run's weights come from its checkpoint instead
        model.load_state_dict(start_bundle.load_model().state_dict())
    model.to(device)
    optimizer = make_optimizer(model, config)
    if optimizer_state is not None:
        optimizer.load_state_dict(optimizer_state)
    trained: torch.nn.Module = model
    if dist_info.world > 1:
        from torch.nn.parallel import DistributedDataParallel

        trained = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)

    spec = BatchSpec(config.batch_size, config.model.block_size, config.seed, config.style_dropout,
                     config.key_dropout, config.style_temperature)
    run_dir.mkdir(parents=True, exist_ok=True)
    tokenizer_file = tokens_dir / TOKENIZER_FILE
    if dist_info.is_main and tokenizer_file.is_file():  # the bundle will carry it
        shutil.copy2(tokenizer_file, run_dir / TOKENIZER_FILE)
    metrics_path = run_dir / "metrics.jsonl"
    if dist_info.is_main and not resume and metrics_path.exists():
        metrics_path.unlink()
    if dist_info.is_main and resume:
        _truncate_metrics(metrics_path, start_step)
    saved_config = {"train": config.to_dict(), "tokens": {
        "dir_name": tokens_dir.name, "meta": data.meta}}

    def record(entry: dict[str, Any]) -> None:
        if dist_info.is_main:
            with metrics_path.open("a", encoding="utf-8") as handle:
                handle.write(json.dumps(entry) + "\n")

    model.train()
    started = time.monotonic()
    window_tokens = 0
    window_started = started
    loss_value = float("nan")
    last_eval: dict[str, Any] = {}
    last_step = min(config.max_steps, stop_at) if stop_at is not None else config.max_steps
    for step in range(start_step, last_step):
        lr = learning_rate_at(step, config)
        for group in optimizer.param_groups:
            group["lr"] = lr
        inputs, targets = sample_batch(data, spec, step, dist_info.rank, dist_info.world)
        inputs, targets = inputs.to(device), targets.to(device)
        with _autocast(device, config.dtype):
            _, loss = trained(inputs, targets, ignore_index=IGNORE_INDEX)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if config.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
        optimizer.step()
        loss_value = global_mean(loss.detach(), dist_info)
        window_tokens += int((targets != IGNORE_INDEX).sum()) * dist_info.world
        done = step + 1
        now = time.monotonic()
        info = {"step": done, "loss": loss_value, "lr": lr,
                "tokens_per_s": window_tokens / max(1e-9, now - window_started),
                "elapsed": now - started, "max_steps": config.max_steps}
        if done % config.log_every == 0 or done == config.max_steps:
            record({"step": done, "loss": round(loss_value, 6), "lr": lr,
                    "tokens_per_s": round(info["tokens_per_s"], 1)})
            window_tokens, window_started = 0, now
        if done % config.eval_every == 0 or done == config.max_steps:
            last_eval = evaluate_loss(model, data, config, device) if dist_info.is_main else {}
            if dist_info.is_main:
                record({"step": done, **last_eval})
                state = {"optimizer": optimizer.state_dict(), "step": done, "rng": _rng_state(),
                         "best_val": min(best_val, last_eval["val_loss"])}
                path = save_checkpoint(ckpt_dir, done, model, state, saved_config,
                                       keep=config.keep_checkpoints)
                if last_eval["val_loss"] < best_val:
                    best_val = last_eval["val_loss"]
                    copy_checkpoint(path, ckpt_dir / "best")
            barrier(dist_info)
            info.update(last_eval)
        if on_step is not None and dist_info.is_main:
            on_step(info)
    summary = {"steps": last_step, "final_loss": loss_value, "best_val_loss": best_val,
               "last_eval": last_eval, "seconds": time.monotonic() - started,
               "parameters": model.num_parameters(), "world_size": dist_info.world,
               "device": str(device), "dtype": config.dtype}
    if dist_info.is_main:
        write_atomic(run_dir / RUN_SUMMARY, (json.dumps(summary, indent=2) + "\n").encode("utf-8"))
    finish_distributed(dist_info)
    return summary


def _truncate_metrics(path: Path, step: int) -> None:
    """Drop the lines of steps after ``step`` (work an interrupted run did after its last
    checkpoint, which the resumed run does again) and a line cut short by the interruption."""
    if not path.exists():
        return
    kept = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(entry, dict) and isinstance(entry.get("step"), int) and entry["step"] <= step:
            kept.append(line + "\n")
    write_atomic(path, "".join(kept).encode("utf-8"))


def evaluate_checkpoint(run_dir: Path, tokens_dir: Path, checkpoint: str = "best",
                        windows: int = 1000) -> dict[str, Any]:
    """Validation loss (overall and per style, nats per token) of a run's checkpoint."""
    ckpt_dir = run_dir / RUN_CHECKPOINTS
    path = ckpt_dir / "best" if checkpoint == "best" else newest_valid_checkpoint(ckpt_dir)
    if path is None or not path.is_dir():
        raise ConfigError(f"{run_dir}: no {checkpoint} checkpoint to evaluate")
    config = TrainConfig.from_dict(json.loads((path / "config.json").read_text())["train"])
    config.eval_windows = windows
    model = MusicTransformer(config.model)
    load_checkpoint(path, model)
    data = load_token_data(tokens_dir, splits=("val",))
    result = evaluate_loss(model, data, config, torch.device("cpu"))
    return {"checkpoint": path.name, "windows": windows, **result}
