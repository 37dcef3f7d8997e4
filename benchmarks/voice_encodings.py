"""Compare ways of writing voices as tokens: held-out bits per note and voice measures.

Two encodings of the same ensemble pieces, each with its own tokenizer and a small model
trained the same number of steps on the same windows' budget:

- ``voices``: each voice of a program gets its own ``Program`` token (composer's format 2);
- ``merged``: tracks that share a program are merged into one (miditok's default, the
  format of the first default model): a chorale's four voices become one choir track.

For each it reports bits per note on the val split (the same notes, so the figures are
comparable although the token counts differ), and the voice measures of generated
samples beside the real test pieces (``composer.evaluate.voice_measures``).

    python benchmarks/voice_encodings.py data/corpus --steps 600 -o runs/voice-encodings

The last line printed is JSON.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import time
from pathlib import Path

import numpy as np

from composer.api import Composer
from composer.corpus.build import read_manifest, style_summary
from composer.evaluate.voice_measures import voice_report
from composer.model.bundle import export_bundle
from composer.model.likelihood import sequence_nll
from composer.music.voices import voice_ranges
from composer.tokens.settings import TokenizerSettings
from composer.tokens.shards import TokenizeConfig, read_split, tokenize_corpus
from composer.tokens.training import train_tokenizer
from composer.train.config import load_config
from composer.train.loop import train

ENSEMBLE_STYLES = ("bach", "palestrina", "haydn", "mozart", "beethoven")
CONFIG = Path(__file__).resolve().parents[1] / "configs" / "default.toml"


def subset_corpus(corpus: Path, out: Path, styles: tuple[str, ...]) -> Path:
    """A corpus folder holding only ``styles`` (the manifest filtered, the MIDI linked)."""
    out.mkdir(parents=True, exist_ok=True)
    records = [r for r in read_manifest(corpus) if r["style"] in styles]
    (out / "manifest.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    link = out / "midi"
    if not link.exists():
        link.symlink_to((corpus / "midi").resolve())
    return out


def run_variant(name: str, corpus: Path, work: Path, steps: int, samples: int) -> dict:
    started = time.monotonic()
    settings = TokenizerSettings(voices=name == "voices")
    tok_dir, tokens, run = work / name / "tokenizer", work / name / "tokens", work / name / "run"
    if not (tok_dir / "tokenizer.json").is_file():
        train_tokenizer(corpus, tok_dir, settings)
    if not (tokens / "meta.json").is_file():
        tokenize_corpus(TokenizeConfig(corpus, tok_dir, tokens))
    config = load_config(CONFIG, [f"max_steps={steps}", "eval_every=200", "eval_windows=100",
                                  f"warmup_steps={min(200, steps // 10)}"])
    if not (run / "summary.json").is_file():
        shutil.rmtree(run, ignore_errors=True)
        train(tokens, run, config)
    bundle = export_bundle(run, work / name / "bundle", tokenizer_path=tok_dir / "tokenizer.json",
                           styles=style_summary(corpus), force=True).path
    composer = Composer.load(bundle)
    ids, rows = read_split(tokens, "val")
    notes = {r["id"]: r["n_notes"] for r in read_manifest(corpus)}
    sequences = [np.asarray(ids[r["offset"]: r["offset"] + r["length"]]) for r in rows]
    nll = sequence_nll(composer.model, sequences, prefix=composer.tokenizer.prefix_len)
    bits: dict[str, list[float]] = {}
    for row, values in zip(rows, nll, strict=True):
        entry = bits.setdefault(row["style"], [0.0, 0])
        entry[0] += float(values.sum()) / math.log(2)
        entry[1] += notes[row["id"]]
    records = read_manifest(corpus)
    voices = {}
    for style in sorted(bits):
        real = [composer_score(corpus, r) for r in records if r["style"] == style and r["split"] == "test"]
        train_pieces = [composer_score(corpus, r) for r in records
                        if r["style"] == style and r["split"] == "train"][:100]
        pieces = composer.generate(style, bars=16, seed=0, num=samples, candidates=1)
        pieces = pieces if isinstance(pieces, list) else [pieces]
        ranges = voice_ranges(train_pieces)
        counts = [len([t for t in s.tracks if t.note_num()]) for s in real]
        expected = int(np.median(counts)) if counts else None
        voices[style] = {"generated": voice_report([p.score for p in pieces], ranges, expected).as_dict(),
                         "real_test": voice_report(real, ranges, expected).as_dict()}
    return {"encoding": name, "steps": steps, "seconds": round(time.monotonic() - started, 1),
            "bits_per_note": {s: round(b / max(1, n), 3) for s, (b, n) in bits.items()},
            "bits_per_note_all": round(sum(b for b, _ in bits.values())
                                       / max(1, sum(n for _, n in bits.values())), 3),
            "voices": voices}


def composer_score(corpus: Path, record: dict):
    import symusic

    return symusic.Score(str(corpus / record["midi"]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("corpus", type=Path)
    parser.add_argument("-o", "--out", type=Path, default=Path("runs/voice-encodings"))
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--samples", type=int, default=10)
    parser.add_argument("--styles", default=",".join(ENSEMBLE_STYLES))
    args = parser.parse_args()
    styles = tuple(s for s in args.styles.split(",") if s)
    corpus = subset_corpus(args.corpus, args.out / "corpus", styles)
    results = [run_variant(name, corpus, args.out, args.steps, args.samples)
               for name in ("voices", "merged")]
    for result in results:
        print(f"{result['encoding']:>7}: {result['bits_per_note_all']} bits/note "
              f"({', '.join(f'{s} {b}' for s, b in result['bits_per_note'].items())}); {result['seconds']} s")
        for style, entry in result["voices"].items():
            g, r = entry["generated"], entry["real_test"]
            print(f"         {style}: usual voice count {g['voice_count_share']} "
                  f"(real {r['voice_count_share']}), "
                  f"monophonic {g['monophonic_share']} ({r['monophonic_share']}), parallels/100 "
                  f"{g['parallels_per_100']} ({r['parallels_per_100']}), string chord "
                  f"{g['largest_string_chord']} ({r['largest_string_chord']})")
    print(json.dumps(results))


if __name__ == "__main__":
    main()
