"""Training throughput of composer's model against HF GPT-2 of the same shape, same run.

    python benchmarks/train_throughput.py [--shapes 4x4x4096,6x8x1024] [--width 256]
                                          [--batch 16 --seq 256 --steps 10 --bf16-steps 2
                                           --threads 2]

A shape is layers x heads x vocabulary. The first is the shipped model's
(configs/default.toml, whose batch and window are the defaults); its figures carry plain
keys (``train_vs_hf_fp32``), the others a suffix (``train_vs_hf_fp32_6l8h1k``). Both
models get the same width, depth, heads, vocabulary, batch and windows, and the step
``composer train`` takes (composer/train/loop.py: its AdamW with the weight-decay groups,
gradient clipping at the default 1.0). HF's GPT-2 gets ours' exact GELU
(``activation_function="gelu"``, ``F.gelu``, not GPT-2's tanh "gelu_new"), PyTorch's fused
``scaled_dot_product_attention`` (``attn_implementation="sdpa"``, what ours calls) and no
dropout. torch and numpy's BLAS (threadpoolctl) are both limited to --threads.

Each model is credited with the positions that get a loss: ours, as the training loop
feeds it, reads --seq tokens of a (--seq + 1)-token window and predicts the next token at
every one; HF's ``labels=input_ids`` shifts inside the model, so its --seq positions (its
whole context) give --seq − 1 predictions. Timing alternates between the two so that
machine noise hits both. Prints tokens/s for fp32 and bf16 autocast, the ratios, and
``arith_frac_fp32``: ours' model FLOPs/s (6 per parameter per token, attention added)
over the peak fp32 rate of torch's matmul measured in the same run. The last line is JSON. On a CPU
without bf16 units a bf16 step takes ~30× longer, hence its own, smaller step count.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable

import torch
from baselines import hf_gpt2
from hardware import describe, machine_info, matmul_flops
from threadpoolctl import threadpool_limits

from composer.model.transformer import ModelConfig, MusicTransformer
from composer.train.config import TrainConfig
from composer.train.loop import make_optimizer

Step = Callable[[torch.Tensor], None]


def step_fn(model: torch.nn.Module, is_hf: bool, dtype: str) -> Step:
    """One training step on a (B, T + 1) window, as composer/train/loop.py takes it."""
    train = TrainConfig()
    optimizer = make_optimizer(model, train)
    autocast = (
        torch.autocast("cpu", dtype=torch.bfloat16)
        if dtype == "bf16"
        else torch.autocast("cpu", enabled=False)
    )

    def step(window: torch.Tensor) -> None:
        inputs = window[:, :-1]  # (B, T)
        with autocast:
            loss = model(input_ids=inputs, labels=inputs).loss if is_hf else model(inputs, window[:, 1:])[1]
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), train.grad_clip)
        optimizer.step()

    return step


def measure(steps: dict[str, tuple[Step, int]], window: torch.Tensor, n: int,
            warmup: int = 2) -> dict[str, float]:
    """Trained tokens/s of each (step, tokens per step), over ``n`` alternating steps."""
    for step, _ in steps.values():
        for _ in range(warmup):
            step(window)
    elapsed = dict.fromkeys(steps, 0.0)
    for _ in range(n):
        for name, (step, _) in steps.items():
            start = time.perf_counter()
            step(window)
            elapsed[name] += time.perf_counter() - start
    return {name: tokens * n / elapsed[name] for name, (_, tokens) in steps.items()}


def parse_shape(text: str) -> tuple[int, int, int]:
    layers, heads, vocab = (int(part) for part in text.lower().split("x"))
    return layers, heads, vocab


def shape_suffix(layers: int, heads: int, vocab: int) -> str:
    size = f"{vocab // 1024}k" if vocab % 1024 == 0 else str(vocab)
    return f"_{layers}l{heads}h{size}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shapes", default="4x4x4096,6x8x1024",
                        help="comma-separated layers x heads x vocabulary; the first gets the plain keys")
    parser.add_argument("--width", type=int, default=256)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--seq", type=int, default=256)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--bf16-steps", type=int, default=2, help="0 skips bf16")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    threadpool_limits(args.threads)
    machine = machine_info(args.threads)
    print(describe(machine))
    peak = matmul_flops(library="torch")  # torch's BLAS: the one training multiplies with
    print(f"peak fp32 matmul (torch): {peak / 1e9:.0f} GFLOP/s")
    result: dict[str, object] = {"matmul_gflops": round(peak / 1e9, 1)}
    for index, shape in enumerate(args.shapes.split(",")):
        layers, heads, vocab = parse_shape(shape)
        suffix = "" if index == 0 else shape_suffix(layers, heads, vocab)
        torch.manual_seed(0)
        config = ModelConfig(vocab_size=vocab, block_size=args.seq, n_layer=layers, n_head=heads,
                             n_embd=args.width)
        window = torch.randint(0, vocab, (args.batch, args.seq + 1))  # (B, T + 1), as sample_batch
        ours, hf = MusicTransformer(config), hf_gpt2(config)
        trained = {"ours": args.batch * args.seq, "hf": args.batch * (args.seq - 1)}
        print(
            f"shape: {layers} layers, width {args.width}, {heads} heads, vocab {vocab}, "
            f"batch {args.batch} x {args.seq}; ours {ours.num_parameters() / 1e6:.2f}M params, "
            f"HF {sum(p.numel() for p in hf.parameters()) / 1e6:.2f}M; trained positions per step: "
            f"ours {trained['ours']}, HF {trained['hf']}"
        )
        # 6 FLOPs per parameter and token (forward 2, backward 4); attention QKᵀ and AV add
        # 4·C per earlier position and layer forward, 12·C with the backward, T/2 of them on average
        flops_per_token = 6 * ours.num_parameters() + 6 * layers * args.width * args.seq
        ours_rate: dict[str, float] = {}
        for dtype in ("fp32", "bf16") if args.bf16_steps > 0 else ("fp32",):
            rates = measure(
                {"ours": (step_fn(ours, False, dtype), trained["ours"]),
                 "hf": (step_fn(hf, True, dtype), trained["hf"])}, window,
                args.steps if dtype == "fp32" else args.bf16_steps, warmup=2 if dtype == "fp32" else 1,
            )
            ratio = rates["ours"] / rates["hf"]
            print(
                f"{dtype}: composer {rates['ours']:.0f} tok/s, HF GPT2LMHeadModel {rates['hf']:.0f} tok/s,"
                f" ratio {ratio:.2f}x"
            )
            result[f"train_vs_hf_{dtype}{suffix}"] = round(ratio, 3)
            result[f"tokens_per_s_{dtype}{suffix}"] = round(rates["ours"], 1)
            ours_rate[dtype] = rates["ours"]
        arith = ours_rate["fp32"] * flops_per_token / peak
        result[f"arith_frac_fp32{suffix}"] = round(arith, 3)
        print(f"fp32: ours runs at {arith:.2f} of the peak matmul rate "
              f"({flops_per_token / 1e6:.1f} MFLOP per trained token)")
        if "bf16" in ours_rate:
            result[f"bf16_vs_fp32{suffix}"] = round(ours_rate["bf16"] / ours_rate["fp32"], 3)
    result["machine"] = machine
    print(json.dumps(result))


if __name__ == "__main__":
    main()
