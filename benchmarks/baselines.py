"""The baseline the speed benchmarks compare with, set up as its authors would set it up.

HF GPT-2 of composer's shape, with the same maths where GPT-2 offers a choice: the exact
(erf) GELU, not the default tanh ``gelu_new``, and PyTorch's SDPA attention, which
composer's model calls too; dropout as the model's config has it. Shared by
benchmarks/generate.py and benchmarks/train_throughput.py:

    from baselines import hf_gpt2
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from transformers import GPT2Config, GPT2LMHeadModel

if TYPE_CHECKING:
    from composer.model.config import ModelConfig


def hf_gpt2(config: ModelConfig) -> GPT2LMHeadModel:
    """An untrained GPT2LMHeadModel of ``config``'s shape (in training mode, as built)."""
    return GPT2LMHeadModel(GPT2Config(
        vocab_size=config.vocab_size,
        n_positions=config.block_size,
        n_embd=config.n_embd,
        n_layer=config.n_layer,
        n_head=config.n_head,
        resid_pdrop=config.dropout,
        embd_pdrop=config.dropout,
        attn_pdrop=config.dropout,
        activation_function="gelu",
        attn_implementation="sdpa",
        bos_token_id=None,
        eos_token_id=None,
    ))
