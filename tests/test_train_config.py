"""Training settings: a bad ``--set`` value is a one-line ConfigError, never a TypeError later."""

from __future__ import annotations

import re

import pytest

from composer.errors import ConfigError
from composer.train.config import load_config


@pytest.mark.parametrize(("override", "message"), [
    ("max_steps=abc", "max_steps must be a whole number, not 'abc'"),
    ("max_steps=2.5", "max_steps must be a whole number, not 2.5"),
    ("learning_rate=fast", "learning_rate must be a number"),
    ("dtype=5", "dtype must be text, not 5"),
    ("model.n_layer=x", "model.n_layer must be a whole number"),
    ("model.n_head=3", "must be a multiple of n_head (3)"),
])
def test_bad_values_are_config_errors(override: str, message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_config(None, [override])


def test_numbers_of_the_right_kind_are_taken() -> None:
    config = load_config(None, ["max_steps=7", "learning_rate=1", "model.n_layer=2", "device=cpu"])
    assert (config.max_steps, config.learning_rate, config.model.n_layer, config.device) == (7, 1, 2, "cpu")
