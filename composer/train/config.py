"""``TrainConfig``: every training setting, read from a TOML file plus ``--set key=value``
overrides, and the learning-rate schedule it describes.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: the same parser, from PyPI
    import tomli as tomllib

from composer.errors import ConfigError
from composer.model.transformer import ModelConfig


@dataclass
class TrainConfig:
    model: ModelConfig = field(default_factory=ModelConfig)  # architecture; vocab_size comes from the tokens
    batch_size: int = 32  # sequences per optimizer step, summed over all processes
    max_steps: int = 5000  # optimizer steps in the whole run
    learning_rate: float = 1e-3  # peak learning rate after warm-up
    min_learning_rate: float = 1e-4  # floor of the cosine decay
    warmup_steps: int = 200  # linear warm-up from 0
    weight_decay: float = 0.1  # AdamW decay on matrices (not on norms)
    beta1: float = 0.9
    beta2: float = 0.95
    grad_clip: float = 1.0  # max global gradient norm; 0 disables clipping
    style_dropout: float = 0.1  # chance a window's style token becomes Style_any
    key_dropout: float = 0.1  # chance a window's key token becomes Key_any (format 2 shards)
    style_temperature: float = 1.0  # style shares ∝ tokens ** this (1 = as in the corpus, 0 = equal)
    eval_every: int = 250  # steps between validation passes (and checkpoints)
    eval_windows: int = 200  # validation windows per pass (None-like 0 means all)
    log_every: int = 10  # steps between training-loss lines in metrics.jsonl
    keep_checkpoints: int = 2  # step checkpoints kept besides 'best'
    seed: int = 1337  # model init, batches and dropout
    device: str = "auto"  # "cpu", "cuda", "cuda:1" or "auto"
    dtype: str = "float32"  # "float32" or "bfloat16" (autocast)
    threads: int = 0  # torch CPU threads; 0 keeps torch's default
    # a model bundle whose weights start the run (fine-tuning, or training a shipped model
    # longer); its architecture replaces [model], and the tokens must come from its tokenizer
    init_from: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        known = {f.name: f for f in fields(cls)}
        unknown = [k for k in data if k not in known]
        if unknown:
            raise ConfigError(f"unknown training setting(s): {', '.join(unknown)}; "
                              f"known: {', '.join(known)}")
        values = dict(data)
        try:
            if isinstance(values.get("model"), dict):
                model_fields = {f.name for f in fields(ModelConfig)}
                bad = [k for k in values["model"] if k not in model_fields]
                if bad:
                    raise ConfigError(f"unknown model setting(s): {', '.join(bad)}; "
                                      f"known: {', '.join(sorted(model_fields))}")
                _check_types(ModelConfig(), values["model"], "model.")
                values["model"] = ModelConfig(**values["model"])
            _check_types(cls(), {k: v for k, v in values.items() if k != "model"}, "")
            config = cls(**values)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"bad training configuration: {exc}") from None
        config.validate()
        return config

    def validate(self) -> None:
        if self.dtype not in ("float32", "bfloat16"):
            raise ConfigError(f"dtype must be float32 or bfloat16, not {self.dtype!r}")
        if not 0.0 <= self.style_temperature <= 1.0:
            raise ConfigError(f"style_temperature must be between 0 and 1, not {self.style_temperature}")
        for name in ("style_dropout", "key_dropout"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ConfigError(f"{name} must be at least 0 and below 1, not {getattr(self, name)}")
        for name in ("batch_size", "max_steps", "eval_every", "log_every"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be at least 1, not {getattr(self, name)}")


_KIND = {bool: "true or false", int: "a whole number", float: "a number", str: "text"}


def _check_types(defaults: Any, values: dict[str, Any], prefix: str) -> None:
    """Each setting must have its default's type (an int where a float is expected is fine),
    so ``--set max_steps=abc`` is refused here, not as a TypeError deep in training."""
    for key, value in values.items():
        expected = type(getattr(defaults, key))
        if expected not in (bool, int, float, str):
            continue
        fits = (isinstance(value, bool) if expected is bool
                else isinstance(value, (int, float)) and not isinstance(value, bool) if expected is float
                else isinstance(value, expected) and not isinstance(value, bool))
        if not fits:
            raise ConfigError(f"{prefix}{key} must be {_KIND[expected]}, not {value!r}")


def load_config(path: Path | None = None, overrides: list[str] | None = None) -> TrainConfig:
    """A ``TrainConfig`` from a TOML file (optional) and ``key=value`` overrides.

    Overrides use TOML values and dotted keys: ``max_steps=200``, ``model.n_layer=4``.
    """
    data: dict[str, Any] = {}
    if path is not None:
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read ({exc.strerror or exc})") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: not valid TOML ({exc})") from None
    for item in overrides or []:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set {item!r}: expected key=value, e.g. max_steps=200")
        try:
            value = tomllib.loads(f"v = {raw.strip()}")["v"]
        except tomllib.TOMLDecodeError:
            value = raw.strip()  # a bare string such as device=cuda
        target = data
        *parents, leaf = key.strip().split(".")
        for parent in parents:
            target = target.setdefault(parent, {})
        target[leaf] = value
    return TrainConfig.from_dict(data)


def learning_rate_at(step: int, config: TrainConfig) -> float:
    """Linear warm-up to the peak, then cosine decay to the floor at ``max_steps``."""
    if step < config.warmup_steps:
        return config.learning_rate * (step + 1) / config.warmup_steps
    progress = (step - config.warmup_steps) / max(1, config.max_steps - config.warmup_steps)
    cosine = 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))
    return config.min_learning_rate + cosine * (config.learning_rate - config.min_learning_rate)
