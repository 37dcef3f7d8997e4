"""Training throughput of composer's model against HF GPT-2 of the same shape, same run.

    python benchmarks/train_throughput.py [--layers 4 --width 256 --heads 4 --vocab 4096
                                           --batch 16 --seq 256 --steps 10 --bf16-steps 2
                                           --threads 2]

The defaults are the shipped model's shape and batch (configs/default.toml). Both models
get the same width, depth, heads, vocabulary, batch and sequence length and the same
AdamW step; timing alternates between them so that machine noise hits both. Prints
tokens/s for fp32 and bf16 autocast, and the ratios; the last line is JSON. On a CPU
without bf16 units a bf16 step takes ~30× longer, hence its own, smaller step count.
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from composer.model.transformer import ModelConfig, MusicTransformer


def build_hf(config: ModelConfig) -> torch.nn.Module:
    from transformers import GPT2Config, GPT2LMHeadModel

    hf_config = GPT2Config(
        vocab_size=config.vocab_size,
        n_positions=config.block_size,
        n_embd=config.n_embd,
        n_layer=config.n_layer,
        n_head=config.n_head,
        resid_pdrop=0.0,
        embd_pdrop=0.0,
        attn_pdrop=0.0,
    )
    hf_config._attn_implementation = "sdpa"
    return GPT2LMHeadModel(hf_config)


def step_fn(model: torch.nn.Module, is_hf: bool, dtype: str):
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    autocast = (
        torch.autocast("cpu", dtype=torch.bfloat16)
        if dtype == "bf16"
        else torch.autocast("cpu", enabled=False)
    )

    def step(ids: torch.Tensor) -> None:
        with autocast:
            loss = model(input_ids=ids, labels=ids).loss if is_hf else model(ids[:, :-1], ids[:, 1:])[1]
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return step


def measure(steps: dict[str, object], ids: torch.Tensor, n: int, warmup: int = 2) -> dict[str, float]:
    for step in steps.values():
        for _ in range(warmup):
            step(ids)
    elapsed = dict.fromkeys(steps, 0.0)
    for _ in range(n):
        for name, step in steps.items():
            start = time.perf_counter()
            step(ids)
            elapsed[name] += time.perf_counter() - start
    tokens = ids.numel() * n
    return {name: tokens / seconds for name, seconds in elapsed.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--width", type=int, default=256)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--vocab", type=int, default=4096)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--seq", type=int, default=256)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--bf16-steps", type=int, default=2, help="0 skips bf16")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    config = ModelConfig(
        vocab_size=args.vocab, block_size=args.seq, n_layer=args.layers, n_head=args.heads, n_embd=args.width
    )
    ids = torch.randint(0, args.vocab, (args.batch, args.seq))
    ours, hf = MusicTransformer(config), build_hf(config)
    print(
        f"shape: {args.layers} layers, width {args.width}, {args.heads} heads, vocab {args.vocab}, "
        f"batch {args.batch} x {args.seq}; ours {ours.num_parameters() / 1e6:.2f}M params, "
        f"HF {sum(p.numel() for p in hf.parameters()) / 1e6:.2f}M"
    )
    result = {}
    for dtype in ("fp32", "bf16") if args.bf16_steps > 0 else ("fp32",):
        rates = measure(
            {"ours": step_fn(ours, False, dtype), "hf": step_fn(hf, True, dtype)}, ids,
            args.steps if dtype == "fp32" else args.bf16_steps, warmup=2 if dtype == "fp32" else 1,
        )
        ratio = rates["ours"] / rates["hf"]
        print(
            f"{dtype}: composer {rates['ours']:.0f} tok/s, HF GPT2LMHeadModel {rates['hf']:.0f} tok/s,"
            f" ratio {ratio:.2f}x"
        )
        result[f"train_vs_hf_{dtype}"] = round(ratio, 3)
        result[f"tokens_per_s_{dtype}"] = round(rates["ours"], 1)
    if "tokens_per_s_bf16" in result:
        result["bf16_vs_fp32"] = round(result["tokens_per_s_bf16"] / result["tokens_per_s_fp32"], 3)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
