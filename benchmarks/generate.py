"""Decoding speed: composer's KV-cached decoder against HF GPT-2 generate, a naive full
recompute and a parallel forward pass (the ceiling), all in one run.

    python benchmarks/generate.py [--model models/default] [--tokens data/tokens]
                                  [--new 128] [--threads 2]

Both models get the default model's width, depth, heads, vocabulary and context. Also
reports the default model's real-time factor (seconds of music per second of compute
for a 16-bar piece) and int8 dynamic quantization's speed and change in NLL. The last
line is JSON.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from composer.model import ModelConfig, MusicTransformer


def ours_cached(model: MusicTransformer, batch: int, new: int) -> float:
    ids = torch.zeros(batch, 1, dtype=torch.long)
    cache = model.new_cache(batch, new + 1)
    start = time.perf_counter()
    with torch.no_grad():
        logits, _ = model(ids, cache=cache)
        for _ in range(new - 1):
            nxt = logits[:, -1].argmax(-1, keepdim=True)  # (B, 1)
            logits, _ = model(nxt, cache=cache)
    return batch * new / (time.perf_counter() - start)


def ours_naive(model: MusicTransformer, batch: int, new: int) -> float:
    ids = torch.zeros(batch, 1, dtype=torch.long)
    start = time.perf_counter()
    with torch.no_grad():
        for _ in range(new):
            logits, _ = model(ids)
            ids = torch.cat([ids, logits[:, -1].argmax(-1, keepdim=True)], dim=1)
    return batch * new / (time.perf_counter() - start)


def ours_parallel(model: MusicTransformer, batch: int, new: int) -> float:
    ids = torch.zeros(batch, new, dtype=torch.long)
    start = time.perf_counter()
    with torch.no_grad():
        model(ids)
    return batch * new / (time.perf_counter() - start)


def hf_generate(hf: torch.nn.Module, batch: int, new: int) -> float:
    ids = torch.zeros(batch, 1, dtype=torch.long)
    start = time.perf_counter()
    with torch.no_grad():
        hf.generate(ids, max_new_tokens=new, min_new_tokens=new, do_sample=False, use_cache=True,
                    pad_token_id=0, eos_token_id=None)
    return batch * new / (time.perf_counter() - start)


def best(fn, *args, repeats: int = 3) -> float:
    return max(fn(*args) for _ in range(repeats))


def build_hf(config: ModelConfig) -> torch.nn.Module:
    from transformers import GPT2Config, GPT2LMHeadModel

    hf_config = GPT2Config(vocab_size=config.vocab_size, n_positions=config.block_size,
                           n_embd=config.n_embd, n_layer=config.n_layer, n_head=config.n_head)
    return GPT2LMHeadModel(hf_config).eval()


def nll(model: torch.nn.Module, tokens: Path, windows: int = 40) -> float:
    from composer.data import eval_windows, load_token_data

    data = load_token_data(tokens, splits=("val",))
    total, count = 0.0, 0
    with torch.no_grad():
        for _, window in eval_windows(data, "val", model.config.block_size, windows):
            ids = torch.from_numpy(window)[None]
            logits, _ = model(ids[:, :-1])
            total += float(torch.nn.functional.cross_entropy(logits[0], ids[0, 1:], reduction="sum"))
            count += ids.shape[1] - 1
    return total / max(1, count)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=Path("models/default"))
    parser.add_argument("--tokens", type=Path, default=Path("data/tokens"))
    parser.add_argument("--new", type=int, default=128, help="tokens to generate per sequence")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    bundle = None
    if (args.model / "config.json").is_file():
        from composer.bundle import load_bundle

        bundle = load_bundle(args.model)
        model = bundle.load_model()
    else:
        print(f"{args.model}: no bundle; using a random model of the default shape")
        model = MusicTransformer(ModelConfig(vocab_size=4096, block_size=256, n_layer=4, n_head=4,
                                             n_embd=256)).eval()
    config = model.config
    new = min(args.new, config.block_size - 1)
    hf = build_hf(config)
    print(f"shape: {config.n_layer} layers, width {config.n_embd}, {config.n_head} heads, "
          f"vocab {config.vocab_size}; {new} new tokens per sequence")
    result: dict[str, float] = {}
    for batch in (1, 8):
        cached = best(ours_cached, model, batch, new)
        hf_rate = best(hf_generate, hf, batch, new)
        naive = best(ours_naive, model, batch, new)
        ceiling = best(ours_parallel, model, batch, new)
        print(f"batch {batch}: cached {cached:.0f} tok/s, HF generate {hf_rate:.0f}, naive {naive:.0f}, "
              f"parallel forward {ceiling:.0f}")
        result[f"decode_vs_hf_b{batch}"] = round(cached / hf_rate, 3)
        result[f"decode_vs_naive_b{batch}"] = round(cached / naive, 3)
        result[f"ceiling_frac_b{batch}"] = round(cached / ceiling, 3)
        result[f"tokens_per_s_b{batch}"] = round(cached, 1)

    quantized = torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)
    result["int8_speedup_b1"] = round(best(ours_cached, quantized, 1, new) / result["tokens_per_s_b1"], 3)
    if (args.tokens / "meta.json").is_file():
        base, small = nll(model, args.tokens), nll(quantized, args.tokens)
        result["int8_nll_change"] = round(small - base, 4)
        print(f"int8: NLL {base:.4f} → {small:.4f} nats/token on val windows")

    if bundle is not None:
        from composer.api import Composer
        from composer.midi_io import score_seconds

        composer = Composer.load(args.model)
        composer.generate(style="bach", bars=2, seed=0)  # warm-up
        start = time.perf_counter()
        piece = composer.generate(style="bach", bars=16, seed=1)
        seconds = time.perf_counter() - start
        music = score_seconds(piece.score)
        result["realtime_factor"] = round(music / seconds, 1)
        print(f"16 bars of bach: {music:.1f} s of music in {seconds:.2f} s "
              f"→ {music / seconds:.0f}x real time")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
