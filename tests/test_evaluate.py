"""``composer evaluate`` and its metrics, checked against values worked out by hand."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import symusic
import torch
from bundle_fixture import tiny_bundle
from click.testing import CliRunner
from test_tokenizer import build_tiny

from composer.cli import cli
from composer.errors import ConfigError
from composer.evaluate.feature_overlap import feature_overlap, intra_distances, kl_divergence, overlap_area
from composer.evaluate.key_consistency import compare_keys, key_keeping
from composer.evaluate.note_features import (
    FEATURE_SIZE,
    inter_onset_intervals,
    length_histogram,
    melodic_intervals,
    note_table,
    pitch_class_histogram,
    polyphony,
    style_features,
)
from composer.evaluate.run import Corpus, EvaluateConfig, Sample, novelty, run_evaluation
from composer.evaluate.style_classifier import (
    accuracy,
    balanced_accuracy,
    confusion_matrix,
    train_style_classifier,
    wilson_interval,
)
from composer.model.likelihood import sequence_nll
from composer.model.transformer import ModelConfig, MusicTransformer
from composer.music.keys import signature_fifths

TPQ = 480


def _score(notes: list[tuple[float, float, int]], meter: tuple[int, int] = (4, 4),
           tracks: int = 1) -> symusic.Score:
    """(onset, length in quarters, pitch) notes → a score; ``tracks`` copies them into parts."""
    score = symusic.Score(TPQ)
    score.time_signatures.append(symusic.TimeSignature(0, *meter))
    for number in range(tracks):
        track = symusic.Track(f"part {number}", program=0)
        for onset, length, pitch in notes:
            track.notes.append(symusic.Note(int(onset * TPQ), int(length * TPQ), pitch + 12 * number, 80))
        score.tracks.append(track)
    return score


# a scale on the beats with C, E, G and C held for two beats (so the key reads as C major)
C_MAJOR_SCALE = [(i, 2.0 if p in (60, 64, 67, 72) else 1.0, p)
                 for i, p in enumerate((60, 62, 64, 65, 67, 69, 71, 72))]


# ---- note features ---------------------------------------------------------------------------

def test_note_features_of_a_c_major_scale() -> None:
    table = note_table(_score(C_MAJOR_SCALE))
    assert (table.tonic, table.minor) == (0, False)
    # C twice, D E F G A B once each, out of 8 notes
    expected = np.array([2, 0, 1, 0, 1, 1, 0, 1, 0, 1, 0, 1]) / 8
    assert np.allclose(pitch_class_histogram(table), expected)
    assert melodic_intervals(table).tolist() == [2, 2, 1, 2, 2, 2, 1]
    assert np.allclose(inter_onset_intervals(table), 1.0)
    # a held note still sounds when the next one starts: C+D, E+F, G+A
    assert polyphony(table).tolist() == [1.0, 2.0, 1.0, 2.0, 1.0, 2.0, 1.0, 1.0]
    lengths = length_histogram(table.lengths)  # half in the [0.85, 1.2) bin, half in [1.7, 2.5)
    assert lengths.tolist() == [0, 0, 0, 0, 0.5, 0, 0.5, 0, 0, 0]
    assert style_features(table).shape == (FEATURE_SIZE,)


def test_pitch_classes_count_from_the_tonic_so_transposition_does_not_change_them() -> None:
    up = [(o, n, p + 7) for o, n, p in C_MAJOR_SCALE]  # G major
    table = note_table(_score(up))
    assert table.tonic == 7
    assert np.allclose(pitch_class_histogram(table), pitch_class_histogram(note_table(_score(C_MAJOR_SCALE))))


def test_polyphony_counts_notes_sounding_at_each_onset() -> None:
    # a three-note chord of two beats, then a melody note entering under its second beat, then a rest
    table = note_table(_score([(0, 2, 60), (0, 2, 64), (0, 2, 67), (1, 1, 72), (3, 1, 60)]))
    assert polyphony(table).tolist() == [3.0, 4.0, 1.0]
    # the line of the part is the top note at each onset: 67 → 72 → 60
    assert melodic_intervals(table).tolist() == [5, -12]


# ---- style judge -----------------------------------------------------------------------------

def test_confusion_matrix_and_accuracies_by_hand() -> None:
    true = ["a", "a", "a", "a", "b"]
    predicted = ["a", "a", "a", "b", "b"]
    matrix = confusion_matrix(true, predicted, ["a", "b"])
    assert matrix.tolist() == [[3, 1], [0, 1]]
    assert accuracy(matrix) == pytest.approx(4 / 5)
    assert balanced_accuracy(matrix) == pytest.approx((3 / 4 + 1 / 1) / 2)


def test_wilson_interval_by_hand_and_at_the_edges() -> None:
    low, high = wilson_interval(9, 20)  # 0.45 of 20 pieces
    assert (low, high) == (pytest.approx(0.2582, abs=1e-4), pytest.approx(0.6579, abs=1e-4))
    assert wilson_interval(0, 20)[0] == 0.0 and 0.1 < wilson_interval(0, 20)[1] < 0.2
    assert wilson_interval(20, 20)[1] == 1.0 and 0.8 < wilson_interval(20, 20)[0] < 0.9
    narrow, wide = wilson_interval(20, 40), wilson_interval(10, 20)
    assert narrow[1] - narrow[0] < wide[1] - wide[0]  # more pieces, a narrower interval
    with pytest.raises(ValueError):
        wilson_interval(0, 0)


def test_judge_separates_separable_styles_and_weights_small_classes() -> None:
    rng = np.random.default_rng(0)
    big = rng.normal(0, 1, (300, 4))
    small = rng.normal(0, 1, (10, 4)) + np.array([4, 0, 0, 0])
    judge = train_style_classifier(np.vstack([big, small]), ["big"] * 300 + ["small"] * 10)
    test_small = rng.normal(0, 1, (50, 4)) + np.array([4, 0, 0, 0])
    test_big = rng.normal(0, 1, (50, 4))
    assert judge.predict(test_small).count("small") >= 47
    assert judge.predict(test_big).count("big") >= 47


# ---- distribution overlap -------------------------------------------------------------------

def test_distances_by_hand() -> None:
    assert intra_distances(np.array([[0.0, 0.0], [3.0, 4.0], [0.0, 4.0]])).tolist() == [5.0, 4.0, 3.0]


def test_overlap_area_of_two_gaussians_matches_the_formula() -> None:
    rng = np.random.default_rng(1)
    x, y = rng.normal(0, 1, 4000), rng.normal(1, 1, 4000)
    # N(0,1) and N(1,1) share 2·Φ(−1/2) = 0.617 of their area
    assert overlap_area(x, y) == pytest.approx(2 * 0.5 * math.erfc(0.5 / math.sqrt(2)), abs=0.04)
    assert overlap_area(x, x) == pytest.approx(1.0, abs=1e-6)
    assert overlap_area(x, y + 50) < 1e-3
    assert kl_divergence(x, x) == pytest.approx(0.0, abs=1e-9)
    assert kl_divergence(x, y) == pytest.approx(0.5, abs=0.08)  # KL(N(0,1)‖N(1,1)) = 1/2


def test_samples_from_the_real_distribution_overlap_more_than_shifted_ones() -> None:
    rng = np.random.default_rng(2)
    real = rng.normal(0, 1, (80, 3))
    same = feature_overlap(real, rng.normal(0, 1, (40, 3)))
    shifted = feature_overlap(real, rng.normal(3, 1, (40, 3)))
    assert same.overlap > 0.8 > 0.3 > shifted.overlap


# ---- key consistency ---------------------------------------------------------------------------

def test_key_signatures_by_hand() -> None:
    assert signature_fifths(0, 2) == 2  # D major: two sharps
    assert signature_fifths(1, 11) == 2  # B minor: two sharps
    assert signature_fifths(0, 5) == -1  # F major: one flat
    assert signature_fifths(1, 0) == -3  # C minor: three flats
    assert signature_fifths(0, 6) == 6  # F# major


def _c_major_melody(offset: float = 0.0) -> list[tuple[float, float, int]]:
    # tonic triad outlined with the scale: clearly C major
    pitches = (60, 64, 67, 72, 67, 64, 62, 65, 69, 67, 65, 64, 60, 62, 59, 60)
    return [(offset + i * 0.5, 0.5, p) for i, p in enumerate(pitches)]


def test_a_continuation_in_the_prompt_key_matches_and_is_all_in_scale() -> None:
    prompt = _score(_c_major_melody())
    result = compare_keys(prompt, _score(_c_major_melody()))
    assert result.same_signature and result.in_scale == pytest.approx(1.0)
    relative_minor = _score([(i * 0.5, 0.5, p) for i, p in enumerate((57, 60, 64, 69, 64, 60, 59, 62, 64,
                                                                       68, 69, 57))])
    assert compare_keys(prompt, relative_minor).same_signature  # A minor shares C major's signature


def test_random_pitches_fail_key_consistency() -> None:
    rng = np.random.default_rng(7)
    prompt = _score(_c_major_melody())
    results = [compare_keys(prompt, _score([(i * 0.5, 0.5, int(p)) for i, p in
                                            enumerate(rng.integers(48, 84, size=32))]))
               for _ in range(20)]
    summary = key_keeping(results)
    assert summary["same_key_rate"] <= 0.3
    assert summary["in_scale"] == pytest.approx(7 / 12, abs=0.1)  # random pitch classes: 7 of 12


def test_half_the_time_off_the_scale_gives_half_in_scale() -> None:
    prompt = _score(_c_major_melody())
    continuation = _score([(0, 1, 60), (1, 1, 66)])  # C then F#, equally long
    assert compare_keys(prompt, continuation).in_scale == pytest.approx(0.5)


# ---- model likelihood ------------------------------------------------------------------------

def _tiny_model(block: int = 16) -> MusicTransformer:
    torch.manual_seed(0)
    config = ModelConfig(vocab_size=30, block_size=block, n_layer=2, n_head=2, n_embd=32)
    return MusicTransformer(config).eval()


def test_sequence_nll_equals_a_full_forward_pass_when_the_sequence_fits() -> None:
    model = _tiny_model()
    ids = torch.randint(0, 30, (12,))
    with torch.no_grad():
        logits, _ = model(ids[None, :-1])
        expected = torch.nn.functional.cross_entropy(logits[0], ids[1:], reduction="none").numpy()
    (got,) = sequence_nll(model, [ids.numpy()])
    assert np.allclose(got, expected, atol=1e-5)


def test_long_sequences_score_every_token_once_with_the_style_token_kept() -> None:
    model = _tiny_model(block=16)
    ids = torch.randint(0, 30, (60,))
    (got,) = sequence_nll(model, [ids.numpy()], stride=8)
    assert got.shape == (59,) and np.all(got > 0)
    # windows hold the style token + 15 positions and advance by 8 after the first: they score
    # 1..15, 16..23, 24..31, 32..39, 40..47 …; position 40 sees the style token and positions 33..39
    window = torch.cat([ids[:1], ids[33:41]])
    with torch.no_grad():
        logits, _ = model(window[None, :-1])
    expected = torch.nn.functional.cross_entropy(logits[0, -1:], ids[40:41]).item()
    assert got[39] == pytest.approx(expected, abs=1e-5)


# ---- novelty through the evaluation ----------------------------------------------------------

def test_a_copied_training_piece_has_novelty_equal_to_its_length(tmp_path_factory: pytest.TempPathFactory
                                                                ) -> None:
    tiny = build_tiny(tmp_path_factory)
    corpus = Corpus(tiny.corpus, tiny.records)
    train = [r for r in tiny.records if r["split"] == "train"]
    record = max(train, key=lambda r: r["n_notes"])
    copy = corpus.score(record)
    result = novelty(corpus, [Sample(record["style"], 1, copy, True, True)])
    entry = result["by_style"][record["style"]]
    assert entry["max_notes"] == record["n_notes"]
    assert entry["max_bars"] == record["n_bars"]
    assert result["flagged_samples"] == (record["n_bars"] >= 4)


# ---- the whole command -------------------------------------------------------------------------

@pytest.fixture(scope="module")
def small_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny corpus, with one piece of bach and of irish moved to the test split."""
    tiny = build_tiny(tmp_path_factory)
    root = tmp_path_factory.mktemp("eval-corpus") / "corpus"
    shutil.copytree(tiny.corpus, root)
    records = [dict(r) for r in tiny.records]
    for style in ("bach", "irish"):
        mine = [r for r in records if r["style"] == style]
        mine[0]["split"], mine[-1]["split"] = "train", "test"
    (root / "manifest.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    return root


def test_evaluate_writes_a_complete_report(tmp_path: Path, small_corpus: Path,
                                           tmp_path_factory: pytest.TempPathFactory) -> None:
    bundle = tiny_bundle(tmp_path_factory)
    out = tmp_path / "report"
    stages: set[str] = set()
    report = run_evaluation(EvaluateConfig(corpus_dir=small_corpus, out_dir=out, model=bundle, samples=2,
                                           bars=2, prompts=1, prompt_bars=1, continuation_bars=2,
                                           judge_pieces=5, reference_pieces=5, styles=("bach", "irish"),
                                           workers=1, piano_rolls=2, split="test", harmonizations=2,
                                           harmonize_candidates=2, variations=1),
                            progress=lambda stage, done, total: stages.add(stage))
    assert {"tokenize", "n-gram", "model nll", "generate", "style judge", "continue"} <= stages
    valid = report["validity"]
    assert {k: valid[k] for k in ("samples", "decodable", "exact_bars", "failed", "rate")} == {
        "samples": 4, "decodable": 4, "exact_bars": 4, "failed": [], "rate": 1.0}
    assert sum(e["samples"] for e in valid["endings"].values()) == 4
    assert set(valid["endings"]) <= {"eos", "next_bar", "next_bar_completed", "bar_limit", "budget"}
    assert valid["model_closed"] <= sum(valid["endings"].get(k, {}).get("samples", 0)
                                        for k in ("eos", "next_bar"))
    bits = report["bits_per_note"]
    assert set(bits["by_style"]) == {"bach", "irish"}
    for entry in bits["by_style"].values():
        assert entry["model"] > 0 and entry["5-gram"] > 0 and entry["unigram"] > 0
    judged = report["style_accuracy"]
    assert np.array(judged["generated"]["confusion"]).sum() == 4
    for style in ("bach", "irish"):  # 2 pieces each: the interval holds the share and is wide
        low, high = judged["generated"]["interval_by_style"][style]
        assert low <= judged["generated"]["by_style"][style] <= high and high - low > 0.5
    assert report["key_consistency"]["overall"]["continuations"] == 2
    assert set(report["novelty"]["by_style"]) == {"bach", "irish"}
    assert set(report["distribution_overlap"]["by_style"]["bach"]) == {
        "pitch_class_histogram", "pitch_range", "inter_onset_interval", "note_length_histogram", "polyphony"}
    settings = report["harmonization"]["by_setting"]
    assert settings["model"]["settings"] >= 1 and settings["model"]["melody_kept"] == 1.0
    assert settings["Bach"]["chord_overlap"] == 1.0 and settings["Bach"]["same_bass"] == 1.0
    assert settings["triads on every beat"]["melody_kept"] == 1.0
    varied = report["variation"]["overall"]
    assert varied["pieces"] >= 1 and varied["others_kept"] == varied["pieces"]
    saved = json.loads((out / "report.json").read_text())
    assert saved["validity"]["rate"] == 1.0
    markdown = (out / "report.md").read_text()
    assert "## Bits per note" in markdown and "## Novelty" in markdown
    assert "95 % interval (Wilson)" in markdown
    assert "## Harmonization" in markdown and "## Variation" in markdown
    assert f"**Closed by the model at 2 bars: {valid['model_closed']}/4**" in markdown
    assert "after fitting, 4/4 have exactly 2 bars" in markdown
    assert f"{valid['forced_bar_lines']} samples had a bar line forced" in markdown
    _old_reports_still_read(saved)
    for name in ("confusion_generated.png", "confusion_real_test.png", "pitch_classes.png",
                 "piano_rolls.png"):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not (out / "tokens").exists()
    _export_with_report(bundle, out, tmp_path)


def _old_reports_still_read(report: dict[str, Any]) -> None:
    """A report written before the model-closed figure (the shipped model's) still renders."""
    from composer.evaluate.report import card_summary, markdown

    old = json.loads(json.dumps(report))
    for key in ("model_closed", "endings", "forced_bar_lines"):
        del old["validity"][key]
    assert "after fitting, 4/4 have exactly 2 bars" in markdown(old)
    assert "Closed by the model" not in markdown(old)
    assert "4 with exactly the requested bars after fitting" in card_summary(old)
    assert "closed by the model itself" in card_summary(report)


def test_validity_tells_the_models_own_endings_from_the_decoders() -> None:
    from composer.evaluate.samples import validity

    score = _score(C_MAJOR_SCALE)
    samples = [Sample("bach", 1, score, True, True, (2, 2), "eos", True),
               Sample("bach", 2, score, True, True, (2, 2), "next_bar", True),
               Sample("bach", 3, score, True, True, (2, 2), "next_bar", False, 1),  # a bar line forced
               Sample("irish", 1, score, True, True, (2, 2), "bar_limit", False),
               Sample("irish", 2, score, True, False, (2, 3), "next_bar_completed", False)]
    result = validity(samples)
    counts = [result[k] for k in ("samples", "decodable", "exact_bars", "model_closed")]
    assert counts == [5, 5, 4, 2]
    assert {k: e["samples"] for k, e in result["endings"].items()} == {
        "eos": 1, "next_bar": 2, "next_bar_completed": 1, "bar_limit": 1}
    assert all(e["meaning"] for e in result["endings"].values())
    assert result["forced_bar_lines"] == 1
    assert result["failed"] == [{"style": "irish", "sample": 2, "valid": True, "bars_in_tokens": 2,
                                 "bars_in_score": 3}]
    assert result["rate"] == pytest.approx(4 / 5)


def _export_with_report(bundle: Path, report_dir: Path, tmp_path: Path) -> None:
    """The report travels into the bundle; a report of other weights is refused."""
    from composer.evaluate.report import card_summary
    from composer.evaluate.run import load_report
    from composer.model.bundle import BundleError, export_bundle

    run = bundle.parent / "run"  # where tiny_bundle trained
    exported = export_bundle(run, tmp_path / "with-report", tokenizer_path=bundle / "tokenizer.json",
                             notes=card_summary(load_report(report_dir)), report_dir=report_dir)
    assert (exported.path / "evaluation" / "report.md").is_file()
    assert (exported.path / "evaluation" / "pitch_classes.png").is_file()
    card = (exported.path / "MODEL_CARD.md").read_text()
    assert "## Evaluation" in card and "bits/note" in card
    report = json.loads((report_dir / "report.json").read_text())
    report["model"]["sha256"] = "0" * 16
    (report_dir / "report.json").write_text(json.dumps(report))
    with pytest.raises(BundleError, match="other weights"):
        export_bundle(run, tmp_path / "wrong-report", tokenizer_path=bundle / "tokenizer.json",
                      report_dir=report_dir)


def test_bits_per_note_divides_the_unigram_nll_by_the_notes(tmp_path: Path, small_corpus: Path,
                                                            tmp_path_factory: pytest.TempPathFactory) -> None:
    from composer.api import Composer
    from composer.evaluate.ngram import fit_ngram
    from composer.evaluate.run import bits_per_note
    from composer.tokens.shards import read_split

    tiny = build_tiny(tmp_path_factory)
    composer = Composer.load(tiny_bundle(tmp_path_factory))
    records = [json.loads(x) for x in (tiny.corpus / "manifest.jsonl").read_text().splitlines()]
    config = EvaluateConfig(corpus_dir=tiny.corpus, out_dir=tmp_path, tokens_dir=tiny.tokens_dir,
                            styles=("bach", "irish"), split="train")
    result = bits_per_note(config, composer, Corpus(tiny.corpus, records))
    ids, rows = read_split(tiny.tokens_dir, "train")
    all_train = [np.asarray(ids[r["offset"]: r["offset"] + r["length"]]) for r in rows]
    unigram = fit_ngram(all_train, 1, composer.tokenizer.vocab_size)
    notes = {r["id"]: r["n_notes"] for r in records}
    mine = [r for r in rows if r["style"] == "bach" and r["transpose"] == 0]
    nll = unigram.token_nll([np.asarray(ids[r["offset"]: r["offset"] + r["length"]]) for r in mine])
    expected = sum(float(x.sum()) for x in nll) / math.log(2) / sum(notes[r["id"]] for r in mine)
    assert result["by_style"]["bach"]["unigram"] == pytest.approx(expected, rel=1e-9)


def test_token_shards_of_another_corpus_are_refused(tmp_path: Path, small_corpus: Path,
                                                    tmp_path_factory: pytest.TempPathFactory) -> None:
    from composer.api import Composer
    from composer.evaluate.run import bits_per_note

    tiny = build_tiny(tmp_path_factory)  # its shards follow the tiny corpus's splits, not small_corpus's
    composer = Composer.load(tiny_bundle(tmp_path_factory))
    records = [json.loads(x) for x in (small_corpus / "manifest.jsonl").read_text().splitlines()]
    config = EvaluateConfig(corpus_dir=small_corpus, out_dir=tmp_path, tokens_dir=tiny.tokens_dir,
                            styles=("bach", "irish"))
    with pytest.raises(ConfigError, match="made from another corpus"):
        bits_per_note(config, composer, Corpus(small_corpus, records))


def test_evaluate_command_reports_bad_input_in_one_line(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["evaluate", "--corpus", str(tmp_path / "nowhere"),
                                      "-o", str(tmp_path / "out")])
    assert result.exit_code == 2
    assert "nowhere" in result.output and "Traceback" not in result.output


def test_a_degenerate_real_set_still_overlaps_with_nearly_identical_candidates() -> None:
    # every real piece monophonic (distance 0), one candidate in ten slightly polyphonic
    real = np.zeros((30, 1)) + 1.0
    candidate = np.ones((20, 1))
    candidate[::10] = 1.05
    assert feature_overlap(real, candidate).overlap > 0.8
