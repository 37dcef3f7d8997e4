"""Decoding speed against HF GPT-2 set up as a careful user would, and against the machine's
physical limits, all in one run.

    python benchmarks/generate.py [--model models/default] [--tokens data/tokens]
                                  [--new 128] [--bars 4] [--style bach] [--threads 2]

Two pairs, each at batch 1 and 8, each doing the same work on both sides:

- bare loop against bare loop: composer's numpy decoder (composer/generate/cpu_decoder.py;
  the model's own torch KV-cache path beside it) adding --new greedy tokens per row from
  one token, against a loop calling HF's forward with its KV cache (DynamicCache and
  StaticCache both; the faster one counts);
- full decode against ``generate``: ``composer.generate.decode.decode`` as
  ``Composer.generate`` calls it (the grammar, the style's instruments as a control, the
  meter lock, the onset rules, the default temperature and nucleus), against HF
  ``generate(do_sample=True)`` with a LogitsProcessor that walks the same grammar state
  per row and applies the same masks (``row_mask``, ``OnsetRules.restrict``), for as many
  tokens as the decode took to write --bars bars. Guidance is off on both sides: it
  doubles the rows of both alike.

HF's GPT-2 gets the model's width, depth, heads, vocabulary and context; the exact GELU
ours uses (``activation_function="gelu"`` is ``F.gelu``; GPT-2's default "gelu_new" is the
tanh formula in unfused element-wise kernels); PyTorch's fused ``scaled_dot_product_attention``
(``attn_implementation="sdpa"``, what ours calls too); and an all-ones attention mask for
its prompt, which it would otherwise infer from the pad id. torch and numpy's BLAS
(threadpoolctl) are both limited to --threads.

Physical limits, measured in the same run (benchmarks/hardware.py): at batch 1 each step
reads every weight once, so tokens/s cannot pass DRAM bandwidth ÷ weight bytes
(``bandwidth_frac_b1``; bytes per step: every fp32 weight, the tied head once, the KV
cache left out). Where the weights fit in the last-level cache (the default model's 17 MB
in the 32 MB L3 of the machine the README figures come from) they can be read faster than
DRAM, and a fraction above 1 is possible. composer's decode multiplies on one BLAS thread
(see ``NumpyDecoder.session``), and one core streams memory at about half the rate of all
of them, so ``bandwidth_frac_b1_one_core`` divides by one core's copy rate as well. At
batch 8 one read of the weights serves 8 tokens, so the limit is the tighter of 8× that
and peak matmul FLOP/s ÷ FLOPs per token (``limit_frac_b8``; ``arith_frac_b8`` against the arithmetic alone).

Also reports the numpy decoder against a naive full recompute, int8 dynamic quantization's
speed and change in NLL, and the default model's real-time factor (seconds of music per
second of compute over one 16-bar piece per style). Machine and library versions are
printed first; the last line is JSON and holds them too.
"""

from __future__ import annotations

import argparse
import inspect
import json
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from baselines import hf_gpt2
from hardware import copy_bandwidth, describe, machine_info, matmul_flops
from threadpoolctl import threadpool_limits
from transformers import DynamicCache, LogitsProcessor, StaticCache

from composer.generate.cpu_decoder import NumpyDecoder
from composer.generate.decode import DecodeSpec, decode, row_mask
from composer.model.transformer import ModelConfig, MusicTransformer

if TYPE_CHECKING:
    from composer.api import Composer
    from composer.generate.voicing import OnsetRules
    from composer.tokens.grammar import TokenGrammar


def ours_decoder(decoder: NumpyDecoder, batch: int, new: int) -> float:
    with decoder.session():  # BLAS threads as composer's decode sets them
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


def hf_bare(hf: torch.nn.Module, batch: int, new: int, static: bool) -> float:
    """HF's forward in a greedy loop with its KV cache, as ``ours_torch_cache`` drives ours."""
    # transformers 5 renamed the forward's cache argument (past_key_values → cache)
    name = "cache" if "cache" in inspect.signature(hf.forward).parameters else "past_key_values"
    cache = StaticCache(config=hf.config, max_cache_len=new) if static else DynamicCache(config=hf.config)
    ids = torch.zeros(batch, 1, dtype=torch.long)
    start = time.perf_counter()
    with torch.no_grad():
        for _ in range(new):
            logits = hf(input_ids=ids, use_cache=True, **{name: cache}).logits
            ids = logits[:, -1].argmax(-1, keepdim=True)  # (B, 1)
    return batch * new / (time.perf_counter() - start)


@dataclass(frozen=True)
class DecodeJob:
    """One piece's decoding as ``Composer.generate`` sets it up (guidance off)."""

    grammar: TokenGrammar
    prompt: list[int]  # style and key tokens
    spec: DecodeSpec
    control: np.ndarray | None  # (V,) the style's instruments
    onsets: OnsetRules
    prefix_len: int


def decode_job(composer: Composer, style: str, bars: int) -> DecodeJob:
    from composer.api import GenerationSettings
    from composer.generate.sampling import SamplingSettings
    from composer.generate.voicing import OnsetRules

    tok = composer.tokenizer
    defaults = GenerationSettings(style=style)  # generate's temperature, nucleus and bar limit
    spec = DecodeSpec(bars=bars, sampling=SamplingSettings(defaults.temperature, defaults.top_k,
                                                           defaults.top_p),
                      style_strength=1.0, max_entries_per_bar=defaults.max_entries_per_bar)
    programs = composer.bundle.styles.get(style, {}).get("programs")  # generate's default instruments
    control = tok.grammar.control_mask(programs=tok.token_programs(programs)) if programs else None
    return DecodeJob(tok.grammar, tok.prefix(style), spec, control,
                     OnsetRules.build(tok.base_vocab, tok.entries, tok.voice_limits()), tok.prefix_len)


class CountingDecoder:
    """A decoder that counts the windows it encodes and the tokens it adds."""

    def __init__(self, decoder: NumpyDecoder) -> None:
        self.decoder = decoder
        self.starts = self.steps = 0

    @property
    def pos(self) -> int:
        return self.decoder.pos

    @property
    def block_size(self) -> int:
        return self.decoder.block_size

    def start(self, ids: np.ndarray) -> np.ndarray:
        self.starts += 1
        return self.decoder.start(ids)

    def step(self, ids: np.ndarray) -> np.ndarray:
        self.steps += 1
        return self.decoder.step(ids)

    def session(self) -> AbstractContextManager[object]:
        return self.decoder.session()


def run_decode(decoder: NumpyDecoder | CountingDecoder, job: DecodeJob, batch: int) -> None:
    decode(decoder, job.grammar, [job.prompt] * batch, job.spec, np.random.default_rng(1),
           control=job.control, prefix_len=job.prefix_len, onsets=job.onsets)


def decode_tokens(decoder: NumpyDecoder, job: DecodeJob, batch: int) -> int:
    """Tokens per row the decode samples (one per forward pass), the same at every run."""
    counting = CountingDecoder(decoder)
    run_decode(counting, job, batch)
    if counting.starts > 1:  # HF's learned positions end at the context; ours would slide
        raise SystemExit(f"--bars {job.spec.bars}: the pieces outgrow the {decoder.block_size}-token "
                         "context; choose fewer bars")
    return 1 + counting.steps


def ours_decode(decoder: NumpyDecoder, job: DecodeJob, batch: int, tokens: int) -> float:
    start = time.perf_counter()
    run_decode(decoder, job, batch)
    return batch * tokens / (time.perf_counter() - start)


class GrammarMasks(LogitsProcessor):
    """Masks each row as ``decode`` does, walking the row's grammar state token by token."""

    def __init__(self, job: DecodeJob, batch: int) -> None:
        self.job = job
        state, bars = job.grammar.walk(job.prompt)
        self.states, self.bars = [state] * batch, [bars] * batch
        self.meters = [job.grammar.states[state].meter] * batch
        self.onsets = [job.onsets.start(job.prompt)] * batch
        self.length = len(job.prompt)
        self.meter_masks: dict[str, np.ndarray] = {}

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        grammar = self.job.grammar
        if input_ids.shape[1] > self.length:  # each row's newest token moves its state on
            self.length = input_ids.shape[1]
            for i, entry in enumerate(input_ids[:, -1].tolist()):
                self.states[i] = grammar.next_state(self.states[i], entry)
                self.bars[i] += int(grammar.bars_in_entry[entry])
                self.meters[i] = grammar.states[self.states[i]].meter or self.meters[i]
                self.onsets[i] = self.job.onsets.after_entry(self.onsets[i], entry)
        masks = np.stack([self.mask(i) for i in range(len(self.states))])  # (B, V)
        return scores.masked_fill(~torch.from_numpy(masks), float("-inf"))

    def mask(self, i: int) -> np.ndarray:
        job, control, meter = self.job, self.job.control, self.meters[i]
        if meter is not None:  # decode's meter lock
            if meter not in self.meter_masks:
                self.meter_masks[meter] = job.grammar.control_mask(meters={meter})
            locked = self.meter_masks[meter]
            control = locked if control is None else control & locked
        allowed = row_mask(job.grammar, self.states[i], self.bars[i], job.spec.bars, control)
        job.onsets.restrict(allowed, self.onsets[i])
        return allowed


def hf_generate(hf: torch.nn.Module, job: DecodeJob, batch: int, tokens: int) -> float:
    ids = torch.tensor([job.prompt] * batch)
    sampling = job.spec.sampling
    torch.manual_seed(1)
    start = time.perf_counter()
    with torch.no_grad():
        # eos None: HF writes exactly ``tokens`` per row, as many as our decode took
        hf.generate(ids, attention_mask=torch.ones_like(ids), logits_processor=[GrammarMasks(job, batch)],
                    do_sample=True, temperature=sampling.temperature, top_k=sampling.top_k,
                    top_p=sampling.top_p, max_new_tokens=tokens, use_cache=True,
                    pad_token_id=job.grammar.pad_id, eos_token_id=None)
    return batch * tokens / (time.perf_counter() - start)


def best(fn: Callable[..., float], *args: Any, repeats: int = 3) -> float:
    return max(fn(*args) for _ in range(repeats))


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
    parser.add_argument("--new", type=int, default=128, help="tokens per sequence in the bare loops")
    parser.add_argument("--bars", type=int, default=4, help="bars per piece in the full decode")
    parser.add_argument("--style", default=None, help="style of the full decode (default: the first)")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    threadpool_limits(args.threads)  # numpy's OpenBLAS too: the numpy decoder multiplies with it
    torch.manual_seed(0)
    machine = machine_info(args.threads)
    print(describe(machine))

    composer = None
    if (args.model / "config.json").is_file():
        from composer.api import Composer

        composer = Composer.load(args.model)
        model = composer.model
    else:
        print(f"{args.model}: no bundle; using a random model of the default shape")
        model = MusicTransformer(ModelConfig(vocab_size=4096, block_size=256, n_layer=4, n_head=4,
                                             n_embd=256)).eval()
    config = model.config
    new = min(args.new, config.block_size - 1)
    hf = hf_gpt2(config).eval()
    print(f"shape: {config.n_layer} layers, width {config.n_embd}, {config.n_head} heads, "
          f"vocab {config.vocab_size}; {new} new tokens per sequence in the bare loops")

    weight_bytes = 4 * model.num_parameters()  # fp32; the tied head counted once, read each step
    # 2 per weight, and QKᵀ and AV over the mean context of the bare loops: 4·C per position and layer
    flops_per_token = 2 * model.num_parameters() + 4 * config.n_layer * config.n_embd * (new + 1) / 2
    bandwidth, flops = copy_bandwidth(args.threads), matmul_flops()
    one_core = copy_bandwidth(1)
    limit_b1 = bandwidth / weight_bytes
    limit_arith = flops / flops_per_token
    print(f"limits: copy {bandwidth / 1e9:.1f} GB/s over {weight_bytes / 1e6:.1f} MB of weights per "
          f"step → {limit_b1:.0f} tok/s at batch 1; matmul {flops / 1e9:.0f} GFLOP/s over "
          f"{flops_per_token / 1e6:.1f} MFLOP per token → {limit_arith:.0f} tok/s")
    result: dict[str, Any] = {"bandwidth_gbs": round(bandwidth / 1e9, 2),
                              "bandwidth_one_core_gbs": round(one_core / 1e9, 2),
                              "matmul_gflops": round(flops / 1e9, 1), "weight_bytes": weight_bytes}

    decoder = NumpyDecoder.from_model(model)  # weights prepared once, as in generate
    job = None
    if composer is not None:
        job = decode_job(composer, args.style or composer.styles[0], args.bars)
    for batch in (1, 8):
        cached = best(ours_decoder, decoder, batch, new)
        torch_cache = best(ours_torch_cache, model, batch, new)
        hf_dynamic = best(hf_bare, hf, batch, new, False)
        hf_static = best(hf_bare, hf, batch, new, True)
        hf_rate = max(hf_dynamic, hf_static)
        naive = best(ours_naive, model, batch, new)
        print(f"batch {batch} bare loops: numpy decoder {cached:.0f} tok/s (torch KV-cache path "
              f"{torch_cache:.0f}), HF forward loop {hf_rate:.0f} (DynamicCache {hf_dynamic:.0f}, "
              f"StaticCache {hf_static:.0f}) → {cached / hf_rate:.2f}x; naive recompute {naive:.0f}")
        result[f"bare_vs_hf_bare_b{batch}"] = round(cached / hf_rate, 3)
        result[f"torch_cache_vs_hf_bare_b{batch}"] = round(torch_cache / hf_rate, 3)
        result[f"decode_vs_naive_b{batch}"] = round(cached / naive, 3)
        result[f"tokens_per_s_b{batch}"] = round(cached, 1)
        if job is not None:
            tokens = decode_tokens(decoder, job, batch)
            ours_rate = best(ours_decode, decoder, job, batch, tokens)
            hf_gen = best(hf_generate, hf, job, batch, tokens)
            print(f"batch {batch} full decode ({args.bars} bars, {tokens} tokens a row): composer "
                  f"decode {ours_rate:.0f} tok/s, HF generate with the same masks {hf_gen:.0f} → "
                  f"{ours_rate / hf_gen:.2f}x")
            result[f"decode_vs_hf_generate_b{batch}"] = round(ours_rate / hf_gen, 3)
            result[f"decode_tokens_per_s_b{batch}"] = round(ours_rate, 1)
        if batch == 1:
            result["bandwidth_frac_b1"] = round(cached / limit_b1, 3)
            result["bandwidth_frac_b1_one_core"] = round(cached * weight_bytes / one_core, 3)
            print(f"batch 1: {cached / limit_b1:.2f} of the bandwidth limit "
                  f"({cached * weight_bytes / one_core:.2f} of one core's, {one_core / 1e9:.1f} GB/s)")
        else:
            limit = min(batch * limit_b1, limit_arith)
            result[f"arith_frac_b{batch}"] = round(cached / limit_arith, 3)
            result[f"limit_frac_b{batch}"] = round(cached / limit, 3)
            print(f"batch {batch}: {cached / limit_arith:.2f} of the arithmetic limit, "
                  f"{cached / limit:.2f} of the tighter limit ({limit:.0f} tok/s)")

    # dynamic quantization swaps torch's Linear modules, so it is measured on the torch path
    quantized = torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)
    fp32_torch = best(ours_torch_cache, model, 1, new)
    result["int8_speedup_b1"] = round(best(ours_torch_cache, quantized, 1, new) / fp32_torch, 3)
    if (args.tokens / "meta.json").is_file():
        base, small = nll(model, args.tokens), nll(quantized, args.tokens)
        result["int8_nll_change"] = round(small - base, 4)
        print(f"int8: NLL {base:.4f} → {small:.4f} nats/token on val windows")

    if composer is not None:
        from composer.io.reader import score_seconds

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
    result["machine"] = machine
    print(json.dumps(result))


if __name__ == "__main__":
    main()
