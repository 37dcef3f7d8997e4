"""``composer evaluate``: is the music any good? Numbers a reader can check.

Model metrics on a split of the corpus (bits per note against n-gram baselines on the
same tokens) and metrics on generated music (validity: do samples decode, and did the
model close them at the bars asked for or did the decoder; style accuracy judged by an
independent classifier, key keeping in continuations, novelty against the training
pieces, MGEval-style distribution overlap). Every random choice is seeded, so a report
can be reproduced. The work is done by small modules (``ngram``, ``composer.model.likelihood``,
``note_features``, ``style_classifier``, ``key_consistency``, ``novelty``,
``feature_overlap``); this one only wires them together.
"""

from __future__ import annotations

import json
import math
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from composer.errors import ConfigError
from composer.evaluate.config import Corpus, EvaluateConfig, Progress, chosen_styles, sample_rows
from composer.evaluate.samples import Sample, generate_samples, validity

LN2 = math.log(2)

if TYPE_CHECKING:
    import symusic

    from composer.api import Composer
    from composer.evaluate.style_classifier import StyleClassifier

# ---- bits per note ----------------------------------------------------------------------------

def _token_shards(config: EvaluateConfig, composer: Composer, scratch: Path,
                  progress: Progress | None) -> Path:
    """Shards made with the model's tokenizer: ``--tokens`` if given, else made in ``scratch``."""
    from composer.tokens.pieces import manifest_sha256
    from composer.tokens.shards import TokenizeConfig, read_meta, tokenize_corpus

    wanted = composer.tokenizer.sha256
    if config.tokens_dir is not None:
        meta = read_meta(config.tokens_dir)
        if meta.get("tokenizer_sha256") != wanted:
            raise ConfigError(f"{config.tokens_dir}: made with another tokenizer than the model's; "
                              "leave out --tokens to tokenize the corpus with the model's own")
        if meta.get("corpus_manifest_sha256") != manifest_sha256(config.corpus_dir):
            raise ConfigError(f"{config.tokens_dir}: made from another corpus than {config.corpus_dir} "
                              "(or before shards recorded their corpus); leave out --tokens to "
                              "tokenize this corpus here")
        return config.tokens_dir
    out = scratch / "tokens"
    report = (lambda done, total: progress("tokenize", done, total)) if progress else None
    tokenize_corpus(TokenizeConfig(config.corpus_dir, composer.bundle.tokenizer_path, out,
                                   workers=config.workers), report)
    return out


def bits_per_note(config: EvaluateConfig, composer: Composer, corpus: Corpus,
                  progress: Progress | None = None) -> dict[str, Any]:
    """Model vs n-gram vs unigram bits per note on ``config.split``, per style."""
    with tempfile.TemporaryDirectory(prefix="composer-eval-") as scratch:
        tokens_dir = _token_shards(config, composer, Path(scratch), progress)
        return _bits_per_note(config, composer, corpus, tokens_dir, progress)


def _bits_per_note(config: EvaluateConfig, composer: Composer, corpus: Corpus, tokens_dir: Path,
                   progress: Progress | None) -> dict[str, Any]:
    from composer.evaluate.ngram import fit_ngram
    from composer.model.likelihood import sequence_nll
    from composer.tokens.shards import read_split

    train_ids, train_rows = read_split(tokens_dir, "train")
    ids, rows = read_split(tokens_dir, config.split)
    notes = {r["id"]: r["n_notes"] for r in corpus.records}
    rows = [r for r in rows if r["style"] in chosen_styles(config, composer) and r.get("transpose", 0) == 0]
    sequences = [np.asarray(ids[r["offset"]: r["offset"] + r["length"]]) for r in rows]
    train = [np.asarray(train_ids[r["offset"]: r["offset"] + r["length"]]) for r in train_rows]
    vocab = composer.tokenizer.vocab_size
    if progress:
        progress("n-gram", 0, 2)
    ngram = fit_ngram(train, config.ngram_order, vocab)
    if progress:
        progress("n-gram", 1, 2)
    unigram = fit_ngram(train, 1, vocab)
    if progress:
        progress("n-gram", 2, 2)
    scored = {
        "model": sequence_nll(composer.model, sequences,
                              progress=(lambda d, t: progress("model nll", d, t)) if progress else None,
                              prefix=composer.tokenizer.prefix_len),
        f"{config.ngram_order}-gram": ngram.token_nll(sequences),
        "unigram": unigram.token_nll(sequences),
    }
    by_style: dict[str, dict[str, float]] = {}
    totals: dict[str, float] = {}
    for index, row in enumerate(rows):
        entry = by_style.setdefault(row["style"], {"pieces": 0, "notes": 0, "tokens": 0})
        entry["pieces"] += 1
        entry["notes"] += notes.get(row["id"], 0)
        entry["tokens"] += len(sequences[index]) - 1
        for name, values in scored.items():
            bits = float(values[index].sum()) / LN2
            entry[name] = entry.get(name, 0.0) + bits
            totals[name] = totals.get(name, 0.0) + bits
    gram = f"{config.ngram_order}-gram"
    for entry in by_style.values():
        for name in scored:
            entry[name] = entry[name] / max(1, entry["notes"])
        entry["model_vs_ngram"] = entry["model"] / entry[gram] if entry[gram] else float("nan")
    all_notes = sum(e["notes"] for e in by_style.values())
    overall = {name: totals.get(name, 0.0) / max(1, all_notes) for name in scored}
    overall["model_vs_ngram"] = overall["model"] / overall[gram] if overall[gram] else float("nan")
    return {"split": config.split, "unit": "bits per note", "baseline": gram,
            "train_tokens": int(sum(len(t) for t in train)), "notes": all_notes,
            "overall": overall, "by_style": dict(sorted(by_style.items()))}


# ---- generated music --------------------------------------------------------------------------

def style_accuracy(config: EvaluateConfig, corpus: Corpus, styles: list[str], samples: list[Sample],
                   progress: Progress | None = None,
                   one_candidate: list[Sample] | None = None) -> tuple[dict[str, Any], StyleClassifier]:
    """Train the judge on train pieces; its accuracy on real test pieces is the ceiling.

    ``samples`` are the critic's picks (at ``config.candidates``); ``one_candidate``, when
    given, the samples written without the critic, judged by the same judge. Returns the
    section and the judge (the harmonization and variation sections ask it too).
    """
    from composer.evaluate.note_features import note_table, style_features
    from composer.evaluate.style_classifier import (
        accuracy,
        balanced_accuracy,
        confusion_matrix,
        train_style_classifier,
        wilson_interval,
    )

    train_rows = [r for s in styles for r in sample_rows(corpus.pieces(s, "train"), config.judge_pieces,
                                                     config.seed)]
    test_rows = [r for s in styles for r in corpus.pieces(s, "test")]
    features = []
    for done, row in enumerate(train_rows + test_rows, 1):
        features.append(style_features(note_table(corpus.score(row))))
        if progress and (done % 100 == 0 or done == len(train_rows) + len(test_rows)):
            progress("style judge", done, len(train_rows) + len(test_rows))
    matrix_all = np.array(features)
    judge = train_style_classifier(matrix_all[:len(train_rows)], [r["style"] for r in train_rows])
    labels = list(judge.styles)
    real_pred = judge.predict(matrix_all[len(train_rows):])
    real = confusion_matrix([r["style"] for r in test_rows], real_pred, labels)
    def judged(chosen: list[Sample]) -> np.ndarray:
        for sample in chosen:
            sample.features = style_features(note_table(sample.score))
        predicted = judge.predict(np.array([s.features for s in chosen])) if chosen else []
        return confusion_matrix([s.style for s in chosen], predicted, labels)

    generated = judged(samples)

    def summary(matrix: np.ndarray) -> dict[str, Any]:
        rows = matrix.sum(axis=1)
        return {"accuracy": accuracy(matrix), "balanced_accuracy": balanced_accuracy(matrix),
                "by_style": {s: (float(matrix[i, i] / rows[i]) if rows[i] else None)
                             for i, s in enumerate(labels)},
                "interval_by_style": {s: (list(wilson_interval(int(matrix[i, i]), int(rows[i]))) if rows[i]
                                          else None) for i, s in enumerate(labels)},
                "confusion": matrix.tolist(), "pieces": int(matrix.sum())}

    return {"styles": labels, "judge_train_pieces": len(train_rows),
            "judge": "softmax regression on note features (composer.evaluate.note_features)",
            "candidates": config.candidates,
            "generated": summary(generated), "ceiling_real_test": summary(real),
            **({"generated_one_candidate": summary(judged(one_candidate))} if one_candidate else {})}, judge


def key_consistency(config: EvaluateConfig, composer: Composer, corpus: Corpus, styles: list[str],
                    progress: Progress | None = None, candidates: int = 1) -> dict[str, Any]:
    """Continue the first bars of test pieces; does the continuation keep the prompt's key?"""
    from composer.evaluate.key_consistency import compare_keys, key_keeping
    from composer.music.facts import downbeats

    by_style: dict[str, Any] = {}
    everything: list[Any] = []
    real_everything: list[Any] = []
    if progress:
        progress("continue", 0, len(styles))
    for done, style in enumerate(styles, 1):
        comparisons, real = [], []
        rows = [r for r in corpus.pieces(style, "test") if r["n_bars"] > config.prompt_bars]
        for number, row in enumerate(sample_rows(rows, config.prompts, config.seed)):
            score = corpus.score(row)
            bars = [*downbeats(score).tolist(), score.end() + 1]
            cut = int(bars[config.prompt_bars])
            prompt = score.clip(0, cut, clip_end=True)
            piece = composer.continue_(prompt, style=style, bars=config.continuation_bars,
                                       seed=config.seed + number, keep_prompt=False,
                                       candidates=candidates)
            comparisons.append(compare_keys(prompt, piece.score))
            # the composer's own next bars: how often real music "keeps the key" by this rule
            until = int(bars[min(len(bars) - 1, config.prompt_bars + config.continuation_bars)])
            real.append(compare_keys(prompt, score.clip(cut, until, clip_end=True)))
        by_style[style] = {**key_keeping(comparisons), "real": key_keeping(real)}
        everything += comparisons
        real_everything += real
        if progress:
            progress("continue", done, len(styles))
    return {"prompt_bars": config.prompt_bars, "continuation_bars": config.continuation_bars,
            "rule": "same key or same key signature", "candidates": candidates,
            "overall": {**key_keeping(everything), "real": key_keeping(real_everything)},
            "by_style": by_style}


def tune_key_keeping(config: EvaluateConfig, composer: Composer, styles: list[str],
                     progress: Progress | None = None, candidates: int = 1) -> dict[str, Any]:
    """Continue well-known tunes (``evaluate.tunes``) in a few styles; is the key kept?"""
    from composer.evaluate.key_consistency import compare_keys, key_keeping
    from composer.evaluate.tunes import TUNES
    from composer.generate.continuation import prepare_prompt

    chosen = [s for s in config.tune_styles if s in styles]
    by_style: dict[str, Any] = {}
    everything: list[Any] = []
    kept_names: dict[str, list[str]] = {}
    for done, style in enumerate(chosen, 1):
        comparisons = []
        for number, tune in enumerate(TUNES):
            prompt = prepare_prompt(tune.text, None).score
            piece = composer.continue_(tune.text, style=style, bars=config.continuation_bars,
                                       seed=config.seed + number, keep_prompt=False,
                                       candidates=candidates)
            comparison = compare_keys(prompt, piece.score)
            comparisons.append(comparison)
            if not comparison.same_signature:
                kept_names.setdefault(style, []).append(tune.name)
        by_style[style] = key_keeping(comparisons)
        everything += comparisons
        if progress:
            progress("tunes", done, len(chosen))
    return {"tunes": [t.name for t in TUNES], "styles": chosen, "candidates": candidates,
            "continuation_bars": config.continuation_bars, "rule": "same key or same key signature",
            "overall": key_keeping(everything), "by_style": by_style, "not_kept": kept_names}


def voice_measures(config: EvaluateConfig, corpus: Corpus, styles: list[str], samples: list[Sample]
                   ) -> dict[str, Any]:
    """Per style, the voices of generated samples beside those of the real test pieces."""
    from collections import Counter

    from composer.evaluate.voice_measures import usual_voice_counts, voice_count, voice_report
    from composer.music.voices import voice_ranges

    by_style = {}
    for style in styles:
        reference = [corpus.score(r) for r in sample_rows(corpus.pieces(style, "train"),
                                                          config.reference_pieces, config.seed + 1)]
        real = [corpus.score(r) for r in corpus.pieces(style, "test")]
        ranges = voice_ranges(reference)
        counts = Counter(voice_count(s) for s in real or reference)
        expected = counts.most_common(1)[0][0] if counts else None
        usual = usual_voice_counts(reference + real)
        generated = [s.score for s in samples if s.style == style]
        by_style[style] = {"expected_voices": expected, "usual_counts": usual,
                           "generated": voice_report(generated, ranges, expected, usual).as_dict(),
                           "real_test": voice_report(real, ranges, expected, usual).as_dict()}
    return {"ranges_from": f"up to {config.reference_pieces} train pieces per style",
            "by_style": by_style}


HARMONIZED_STYLE = "bach"  # the style whose held-out pieces are harmonized from their soprano


def _judge_says(judge: StyleClassifier, scores: list[symusic.Score]) -> list[str]:
    from composer.evaluate.note_features import note_table, style_features

    return list(judge.predict(np.array([style_features(note_table(s)) for s in scores]))) if scores else []


def harmonization(config: EvaluateConfig, composer: Composer, corpus: Corpus, judge: StyleClassifier,
                  progress: Progress | None = None) -> dict[str, Any]:
    """Bach's soprano of held-out chorales (val and test) harmonized, beside Bach's own
    setting and beside root-position triads on every beat."""
    from composer.evaluate.harmonization import measure_settings, paired_overlap, triad_setting
    from composer.music.facts import melody_key_index
    from composer.music.voices import soprano_line, voice_ranges

    rows = [r for r in corpus.records if r["style"] == HARMONIZED_STYLE and r["split"] in ("val", "test")]
    if HARMONIZED_STYLE not in composer.styles or not rows:
        return {}
    rows = rows[: config.harmonizations]
    references = [corpus.score(r) for r in rows]
    melodies = [soprano_line(s) for s in references]
    ranges = voice_ranges(corpus.score(r) for r in sample_rows(corpus.pieces(HARMONIZED_STYLE, "train"),
                                                               config.reference_pieces, config.seed + 1))
    ways: dict[str, list[symusic.Score]] = {}
    for name, lookahead in (("model", True), ("model, no lookahead", False)):
        ways[name] = []
        for number, melody in enumerate(melodies):
            ways[name].append(composer.harmonize(melody, HARMONIZED_STYLE, seed=config.seed + number,
                                                 candidates=config.harmonize_candidates,
                                                 lookahead=lookahead).score)
            if progress:
                progress(f"harmonize ({name})", number + 1, len(melodies))
    ways["triads on every beat"] = [triad_setting(m, melody_key_index(m) or (0, 0)) for m in melodies]
    ways["Bach"] = references
    return {"chorales": [r["id"] for r in rows], "candidates": config.harmonize_candidates,
            "ranges_from": f"up to {config.reference_pieces} train pieces",
            "by_setting": {name: measure_settings(scores, melodies, references, ranges,
                                                  _judge_says(judge, scores)).as_dict()
                           for name, scores in ways.items()},
            "model_against_triads": paired_overlap(ways["model"], ways["triads on every beat"], references,
                                                   seed=config.seed)}


VARIATION_COUNTS = ("pieces", "others_kept", "key_kept", "real_key_kept", "verdict_kept")


def variation(config: EvaluateConfig, composer: Composer, corpus: Corpus, styles: list[str],
              judge: StyleClassifier, progress: Progress | None = None) -> dict[str, Any]:
    """Bars 5-8 of held-out pieces rewritten: are the other notes kept, the key signature of
    the new bars the piece's, and the judge's verdict on the whole piece unchanged?"""
    from composer.api import VARY_CANDIDATES
    from composer.evaluate.key_consistency import compare_keys
    from composer.music.facts import count_bars, downbeats

    chosen = []
    for style in styles:
        pieces = [r for r in corpus.pieces(style, "test") if count_bars(corpus.score(r)) >= 10]
        chosen += [(style, r) for r in pieces[: config.variations]]
    by_style: dict[str, dict[str, Any]] = {}
    for done, (style, row) in enumerate(chosen, 1):
        original = corpus.score(row)
        varied = composer.vary(original, bars="5-8", style=style, seed=config.seed + done).score
        lines = downbeats(original).tolist()
        start, stop = lines[4], lines[8] if len(lines) > 8 else original.end() + 1

        def outside(score: symusic.Score, start: int = start, stop: int = stop) -> list[list[tuple]]:
            return [sorted((n.time, n.duration, n.pitch) for n in t.notes if not start <= n.time < stop)
                    for t in score.tracks]

        window, own = (s.clip(start, stop, clip_end=True) for s in (varied, original))
        before, after = _judge_says(judge, [original, varied])
        entry = by_style.setdefault(style, dict.fromkeys(VARIATION_COUNTS, 0))
        entry["pieces"] += 1
        entry["others_kept"] += outside(varied) == outside(original)
        entry["key_kept"] += compare_keys(original, window).same_signature
        entry["real_key_kept"] += compare_keys(original, own).same_signature
        entry["verdict_kept"] += before == after
        if progress:
            progress("vary", done, len(chosen))
    total = {k: sum(e[k] for e in by_style.values()) for k in VARIATION_COUNTS}
    return {"bars": "5-8", "pieces_per_style": config.variations, "candidates": VARY_CANDIDATES,
            "by_style": by_style, "overall": total}


def novelty(corpus: Corpus, samples: list[Sample], progress: Progress | None = None) -> dict[str, Any]:
    """Longest run of notes (and the bars it spans) copied from any training piece."""
    from composer.evaluate.novelty import NOVELTY_FLAG_BARS, build_copy_index, measure_novelty, note_sequence

    train = [r for r in corpus.records if r["split"] == "train"]
    sequences = []
    for done, row in enumerate(train, 1):
        sequences.append(note_sequence(corpus.score(row, keep=False)))
        if progress and (done % 500 == 0 or done == len(train)):
            progress("novelty index", done, len(train))
    index = build_copy_index(sequences, [r["id"] for r in train])
    by_style: dict[str, dict[str, Any]] = {}
    flagged = []
    for sample in samples:
        found = measure_novelty(index, sample.score)
        entry = by_style.setdefault(sample.style, {"samples": 0, "max_bars": 0, "max_notes": 0,
                                                   "mean_bars": 0.0, "flagged": 0})
        entry["samples"] += 1
        entry["max_bars"] = max(entry["max_bars"], found.bars)
        entry["max_notes"] = max(entry["max_notes"], found.notes)
        entry["mean_bars"] += found.bars
        entry["flagged"] += found.flagged
        if found.flagged:
            flagged.append({"style": sample.style, "sample": sample.number, "bars": found.bars,
                            "notes": found.notes, "source": found.source})
    for entry in by_style.values():
        entry["mean_bars"] = entry["mean_bars"] / max(1, entry["samples"])
    return {"flag_bars": NOVELTY_FLAG_BARS, "training_pieces": len(train),
            "flagged_samples": len(flagged), "flagged": flagged, "by_style": dict(sorted(by_style.items()))}


def distribution_overlap(config: EvaluateConfig, corpus: Corpus, styles: list[str], samples: list[Sample]
                         ) -> tuple[dict[str, Any], dict[str, dict[str, list[float]]]]:
    """Per style and feature: overlap of generated vs real, and of held-out real vs real.

    Also returns the mean tonic-relative pitch-class histogram per style, real
    (the reference pieces) vs generated, for the plot.
    """
    from composer.evaluate.feature_overlap import feature_overlap
    from composer.evaluate.note_features import distribution_features, note_table

    def stacked(scores: list[symusic.Score]) -> dict[str, np.ndarray]:
        rows = [distribution_features(note_table(s)) for s in scores]
        return {k: np.array([r[k] for r in rows]) for k in rows[0]} if rows else {}

    by_style: dict[str, Any] = {}
    relative: dict[str, list[float]] = {}
    profiles: dict[str, dict[str, list[float]]] = {}
    for style in styles:
        reference = stacked([corpus.score(r) for r in sample_rows(corpus.pieces(style, "train"),
                                                              config.reference_pieces, config.seed + 1)])
        held_out = stacked([corpus.score(r) for r in corpus.pieces(style, "test")])
        generated = stacked([s.score for s in samples if s.style == style])
        entry = {}
        for name in reference:
            gen = feature_overlap(reference[name], generated[name]) if generated else None
            real = feature_overlap(reference[name], held_out[name]) if held_out else None
            ratio = (gen.overlap / real.overlap if gen and real and real.overlap > 0 else float("nan"))
            entry[name] = {"generated": gen.overlap if gen else float("nan"),
                           "held_out_real": real.overlap if real else float("nan"),
                           "relative": ratio, "kl_generated": gen.kl if gen else float("nan")}
            if not math.isnan(ratio):
                relative.setdefault(name, []).append(ratio)
        by_style[style] = entry
        profiles[style] = {
            name: (features["pitch_class_histogram"].mean(axis=0).tolist() if features else [0.0] * 12)
            for name, features in (("real", reference), ("generated", generated))}
    report = {"reference": f"up to {config.reference_pieces} train pieces per style",
              "relative_mean": {k: float(np.mean(v)) for k, v in relative.items()}, "by_style": by_style}
    return report, profiles


# ---- the whole run ---------------------------------------------------------------------------

def run_evaluation(config: EvaluateConfig, progress: Progress | None = None) -> dict[str, Any]:
    """Every metric, the report files and the plots; returns the report."""
    from composer.api import Composer
    from composer.corpus.build import read_manifest
    from composer.evaluate.plots import write_plots
    from composer.evaluate.report import write_report
    from composer.io.outputs import prepare_out_dir

    config.validate()
    started = time.monotonic()
    composer = Composer.load(config.model)
    corpus = Corpus(config.corpus_dir, read_manifest(config.corpus_dir))
    styles = chosen_styles(config, composer)
    missing = [s for s in styles if not corpus.pieces(s, "train")]
    if missing:
        raise ConfigError(f"{config.corpus_dir}: no training pieces of {', '.join(missing)}; "
                          "evaluate with the corpus the model was trained on")
    prepare_out_dir(config.out_dir)
    report: dict[str, Any] = {
        "model": {"name": composer.bundle.name, "sha256": composer.bundle.weights_sha256[:16]},
        "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(config).items()
                     if k not in ("out_dir", "corpus_dir", "model", "tokens_dir", "workers")},
    }
    report["bits_per_note"] = bits_per_note(config, composer, corpus, progress)
    one = generate_samples(config, composer, progress)
    samples = one if config.candidates == 1 else generate_samples(config, composer, progress,
                                                                  config.candidates)
    report["validity"] = validity(samples)
    report["style_accuracy"], judge = style_accuracy(config, corpus, styles, samples, progress,
                                                     one if config.candidates > 1 else None)
    report["key_consistency"] = key_consistency(config, composer, corpus, styles, progress,
                                                config.continue_candidates)
    if config.continue_candidates > 1:
        report["key_consistency_one_candidate"] = key_consistency(config, composer, corpus, styles,
                                                                  progress)["overall"]
    report["tune_key_keeping"] = tune_key_keeping(config, composer, styles, progress,
                                                  config.continue_candidates)
    report["voices"] = voice_measures(config, corpus, styles, samples)
    report["harmonization"] = harmonization(config, composer, corpus, judge, progress)
    report["variation"] = variation(config, composer, corpus, styles, judge, progress)
    report["novelty"] = novelty(corpus, samples, progress)
    report["distribution_overlap"], profiles = distribution_overlap(config, corpus, styles, samples)
    report["seconds"] = round(time.monotonic() - started, 1)
    report["plots"] = write_plots(config.out_dir, report, profiles, samples[:: max(1, config.samples)]
                                  [: config.piano_rolls])
    write_report(config.out_dir, report)
    return report


def load_report(path: Path) -> dict[str, Any]:
    """``report.json`` of a report folder; a ``ConfigError`` when it is missing or damaged."""
    try:
        report = json.loads((path / "report.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path}: no readable report.json ({exc}); run 'composer evaluate'") from None
    if not isinstance(report, dict) or "bits_per_note" not in report:
        raise ConfigError(f"{path}/report.json: not a 'composer evaluate' report")
    return report


__all__ = ["EvaluateConfig", "Progress", "Sample", "bits_per_note", "distribution_overlap",
           "generate_samples", "harmonization", "key_consistency", "load_report", "novelty", "run_evaluation",
           "style_accuracy", "tune_key_keeping", "validity", "variation", "voice_measures"]
