"""Decoding speed: composer's KV-cached decoder against HF GPT-2 generate, a naive full
recompute and a parallel forward pass (the ceiling), all in one run.

    python benchmarks/generate.py [--model models/default] [--tokens data/tokens]
                                  [--new 128] [--threads 2]

Both models get the default model's width, depth, heads, vocabulary and context. Also
reports the default model's real-time factor (seconds of music per second of compute
over one 16-bar piece per style) and int8 dynamic quantization's speed and change in NLL. The last
line is JSON.

"Cached" is the decoder ``composer generate`` uses: on the CPU, the model encodes the
first window and numpy steps one token at a time (composer/cpu_decoder.py); the model's
own torch KV-cache path is measured beside it.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from composer.generate.cpu_decoder import NumpyDecoder
from composer.model.transformer import ModelConfig, MusicTransformer


def ours_decoder(decoder: NumpyDecoder, batch: int, new: int) -> float:
    start = time.perf_counter()
    logits = decoder.start(np.zeros((batch, 1), dtype=np.int64))
    for _ in range(new - 1):
        logits = decoder.step(logits.argmax(-1))
    return batch * new / (time.perf_counter() - start)


def ours_torch_cache(model: MusicTransformer, batch: int, new: int) -> float:
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
    from composer.train.batches import eval_windows, load_token_data

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
        from composer.model.bundle import load_bundle

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
    decoder = NumpyDecoder(model)
    for batch in (1, 8):
        cached = best(ours_decoder, decoder, batch, new)  # weights prepared once, as in generate
        torch_cache = best(ours_torch_cache, model, batch, new)
        hf_rate = best(hf_generate, hf, batch, new)
        naive = best(ours_naive, model, batch, new)
        ceiling = best(ours_parallel, model, batch, new)
        print(f"batch {batch}: cached {cached:.0f} tok/s (torch KV-cache path {torch_cache:.0f}), "
              f"HF generate {hf_rate:.0f}, naive {naive:.0f}, parallel forward {ceiling:.0f}")
        result[f"decode_vs_hf_b{batch}"] = round(cached / hf_rate, 3)
        result[f"decode_vs_naive_b{batch}"] = round(cached / naive, 3)
        result[f"ceiling_frac_b{batch}"] = round(cached / ceiling, 3)
        result[f"tokens_per_s_b{batch}"] = round(cached, 1)
        result[f"torch_cache_vs_hf_b{batch}"] = round(torch_cache / hf_rate, 3)

    # dynamic quantization swaps torch's Linear modules, so it is measured on the torch path
    quantized = torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)
    fp32_torch = best(ours_torch_cache, model, 1, new)
    result["int8_speedup_b1"] = round(best(ours_torch_cache, quantized, 1, new) / fp32_torch, 3)
    if (args.tokens / "meta.json").is_file():
        base, small = nll(model, args.tokens), nll(quantized, args.tokens)
        result["int8_nll_change"] = round(small - base, 4)
        print(f"int8: NLL {base:.4f} → {small:.4f} nats/token on val windows")

    if bundle is not None:
        from composer.api import Composer
        from composer.io.reader import score_seconds

        composer = Composer.load(args.model)
        composer.generate(style=composer.styles[0], bars=2, seed=0)  # warm-up
        music = seconds = 0.0
        for style in composer.styles:  # one piece per style: textures differ tenfold in tokens/s
            spent = float("inf")
            for _ in range(2):  # the faster of two identical runs, as for the rates above
                start = time.perf_counter()
                piece = composer.generate(style=style, bars=16, seed=1)
                spent = min(spent, time.perf_counter() - start)
            length = score_seconds(piece.score)
            print(f"16 bars of {style}: {length:.1f} s of music in {spent:.2f} s → {length / spent:.0f}x")
            music, seconds = music + length, seconds + spent
        result["realtime_factor"] = round(music / seconds, 1)
        print(f"all styles: {music:.1f} s of music in {seconds:.2f} s → {music / seconds:.0f}x real time")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
