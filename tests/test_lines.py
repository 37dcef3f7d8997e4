"""Melodic lines: step counts (``music.lines``), the line prior of sampling
(``generate.line_prior``), and a bundle calibrated against its corpus."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import symusic
from bundle_fixture import tiny_bundle
from test_tokenizer import build_tiny

from composer.api import Composer, calibrate_lines
from composer.corpus.build import style_summary
from composer.errors import ComposerError
from composer.generate.line_prior import LinePrior
from composer.model.bundle import LINES, BundleError, add_bundle_file, export_bundle, load_bundle
from composer.music.lines import (
    STEP_CLASSES,
    STEP_LIMIT,
    STEPS,
    LineCounts,
    calibration,
    count_lines,
    on_scale,
    step_class,
    voice_lines,
)

C_MAJOR = (0, 0)
ON_ON, ON_OFF, OFF_ON = 3, 2, 1  # 2 × (left on the scale) + (reached on it)
CLASH = 4  # added when the note reached is struck a semitone from another voice's

Q = 480


def part(program: int, notes: list[tuple[int, int]]) -> symusic.Track:
    """A track from (onset in quarters, pitch) pairs, each a quarter long."""
    track = symusic.Track("part", program, False)
    for onset, pitch in notes:
        track.notes.append(symusic.Note(onset * Q, Q, pitch, 80))
    return track


def two_voices() -> symusic.Score:
    score = symusic.Score(Q)
    # the upper voice's chord on beat 1 counts by its top note: 67 -> 69 -> 68 -> 80
    score.tracks.append(part(40, [(0, 60), (0, 67), (1, 69), (2, 68), (3, 80)]))
    score.tracks.append(part(42, [(2, 48), (0, 48), (1, 47)]))  # out of order: read in time order
    return score


def test_voice_lines_read_each_track_by_its_top_note() -> None:
    lines = voice_lines(two_voices())
    assert [line.tolist() for line in lines] == [[67, 69, 68, 80], [48, 47, 48]]


def test_line_counts_count_steps_by_scale_and_size() -> None:
    counts = LineCounts.empty()
    counts.add(two_voices(), C_MAJOR)
    expected = np.zeros((STEP_CLASSES, STEPS))
    # G A, A G#, G# G#'': on->on, on->off, off->off (80 - 68 = 12, an octave, the last column);
    # C B, B C in the lower voice
    for kind, step in ((ON_ON, 2), (ON_OFF, -1), (0, 12), (ON_ON, -1), (ON_ON, 1)):
        expected[kind, STEP_LIMIT + step] += 1
    assert counts.counts.tolist() == expected.tolist()
    assert int(step_class(30)) == STEPS - 1 and int(step_class(-30)) == 0
    assert np.exp(counts.log_probabilities()).sum() == pytest.approx(1.0)
    assert on_scale((1, 9)).nonzero()[0].tolist() == [0, 2, 4, 5, 6, 7, 8, 9, 11]  # A minor, F# and G# too
    heard = count_lines([two_voices()])  # in the key heard in the piece
    assert heard.counts.sum() == 5


def test_line_counts_know_a_clash_struck_with_another_voice() -> None:
    score = symusic.Score(Q)
    score.tracks.append(part(52, [(0, 72), (1, 71), (2, 72)]))  # C5 B4 C5
    score.tracks.append(part(53, [(0, 67), (1, 72), (2, 67)]))  # G4 C5 G4: C5 against B4
    counts = LineCounts.empty()
    counts.add(score, C_MAJOR)
    expected = np.zeros((STEP_CLASSES, STEPS))
    for kind, step in ((CLASH + ON_ON, -1), (ON_ON, 1), (CLASH + ON_ON, 5), (ON_ON, -5)):
        expected[kind, STEP_LIMIT + step] += 1
    assert counts.counts.tolist() == expected.tolist()


def test_line_counts_json_round_trip_and_refusals() -> None:
    counts = count_lines([two_voices(), two_voices()])
    assert counts.counts.sum() == 10
    again = LineCounts.from_json(json.loads(json.dumps(counts.to_json())))
    assert again.counts.tolist() == counts.counts.tolist()
    good = counts.to_json()
    for bad in ({**good, "format": 1}, {**good, "steps": [0] * 3}, {**good, "steps": [[-1] * STEPS] * 4},
                {**good, "steps": [[0] * STEPS, [0]]}, [1, 2], {"format": 2}):
        with pytest.raises(ValueError):
            LineCounts.from_json(bad)


def test_calibration_raises_the_steps_the_model_makes_too_rarely() -> None:
    corpus, model = LineCounts.empty(), LineCounts.empty()
    up, tone = (ON_ON, STEP_LIMIT + 1), (ON_ON, STEP_LIMIT + 2)
    corpus.counts[up] = corpus.counts[tone] = 100  # semitones as often as tones
    model.counts[up], model.counts[tone] = 50, 150  # the model: a third as often
    steps = calibration(corpus, model)
    gain = np.log(100.5 / 50.5 * 150.5 / 100.5)  # smoothed by half a count
    assert steps[up] - steps[tone] == pytest.approx(gain)
    assert steps[up] > 0 > steps[tone]


VOCAB = ["PAD", "Bar_None", "Position_0", "Position_4", "Program_52", "Program_53",
         "Pitch_60", "Pitch_61", "Pitch_62", "Pitch_67", "Duration_1.0.8"]
BAR, POS0, POS4, P52, P53, C4, CS4, D4, G4, DUR = range(1, 11)


def tiny_prior(weight: float = 1.0) -> tuple[LinePrior, list[tuple[int, ...]]]:
    entries = [(i,) for i in range(len(VOCAB))] + [(P53, CS4), (POS4, P52, G4)]
    steps = np.zeros((STEP_CLASSES, STEPS))
    steps[OFF_ON, STEP_LIMIT + 1] = np.log(4.0)  # a semitone up onto the scale: four times as likely
    steps[ON_OFF, STEP_LIMIT + 1] = np.log(0.5)  # a semitone up off it: half as likely
    steps[CLASH + OFF_ON, STEP_LIMIT + 2] = np.log(0.25)  # a tone onto it, clashing: a quarter
    return LinePrior.build(VOCAB, entries, [52, 53], steps, (0, 2), weight), entries  # D major


def test_line_prior_judges_each_entry_by_its_first_note() -> None:
    prior, _ = tiny_prior()
    # soprano (52) sang C4 at position 0; the alto (53) has not sung; position 4 is open
    state = prior.start([BAR, POS0, P52, C4, DUR, POS4, P52])
    weights = prior.log_weights(state)
    assert weights[CS4] == pytest.approx(np.log(4.0))  # C4 -> C#4 in the soprano, onto D major's scale
    assert weights[D4] == 0.0 and weights[C4] == 0.0  # a tone, a repeated note: calibration 0
    assert np.isnan(weights[BAR]) and np.isnan(weights[DUR])  # no note
    assert np.isnan(weights[len(VOCAB)])  # the alto's first note is no step
    assert weights[len(VOCAB) + 1] == 0.0  # a new onset, then the soprano's G4: a fifth
    in_c = replace(prior, scale=on_scale(C_MAJOR))  # C4 -> C#4 in C major: off the scale
    assert in_c.log_weights(state)[CS4] == pytest.approx(np.log(0.5))
    # the alto struck C#4 at position 4 first: the soprano's D4 clashes with it
    after_alto = prior.start([BAR, POS0, P52, C4, DUR, P53, G4, DUR, POS4, P53, CS4, DUR, P52])
    assert prior.log_weights(after_alto)[D4] == pytest.approx(np.log(0.25))
    assert prior.log_weights(after_alto)[CS4] == pytest.approx(np.log(4.0))  # a unison: no clash
    # at position 0, where the soprano already sang, a second soprano note is a chord, not a step
    chord = prior.start([BAR, POS0, P52, C4, DUR, P52])
    assert np.isnan(prior.log_weights(chord)[CS4])


def test_line_prior_moves_probability_among_notes_only() -> None:
    prior, entries = tiny_prior()
    state = prior.start([BAR, POS0, P52, C4, DUR, POS4, P52])
    scores = np.zeros(len(entries), dtype=np.float32)
    allowed = np.zeros(len(entries), dtype=bool)
    allowed[[C4, CS4, D4, G4, BAR]] = True
    twisted = prior.twist(scores, allowed, state)

    def probabilities(logits: np.ndarray) -> np.ndarray:
        odds = np.where(allowed, np.exp(logits - logits[allowed].max()), 0.0)
        return odds / odds.sum()

    before, after = probabilities(scores), probabilities(twisted)
    assert after[BAR] == pytest.approx(before[BAR])  # a bar line keeps its chance
    assert after[CS4] / after[D4] == pytest.approx(4.0)
    assert after[[C4, CS4, D4, G4]].sum() == pytest.approx(before[[C4, CS4, D4, G4]].sum())
    off, _ = tiny_prior(weight=0.0)
    assert np.array_equal(off.twist(scores, allowed, state), scores)


def test_add_bundle_file_checksums_it(tmp_path_factory: pytest.TempPathFactory, tmp_path: Path) -> None:
    bundle = tmp_path / "model"
    shutil.copytree(tiny_bundle(tmp_path_factory), bundle)
    add_bundle_file(bundle, LINES, json.dumps({"corpus": {}}) + "\n")
    assert load_bundle(bundle).line_counts == {"corpus": {}}
    # checksummed, but not counts this version reads: generating says which file and style
    stale = {"format": 1, "steps": [0] * STEPS}
    add_bundle_file(bundle, LINES, json.dumps({"corpus": {"bach": stale}, "model": {"bach": stale}}))
    with pytest.raises(BundleError, match=r"lines\.json, bach"):
        Composer.load(bundle).generate("bach", bars=2, key="C major")  # the prior needs a key
    assert Composer.load(bundle).generate("bach", bars=2, key="C major", line_weight=0.0).ids  # off: unread
    (bundle / LINES).write_text(json.dumps({"corpus": {"bach": 1}}) + "\n")
    with pytest.raises(BundleError, match="sha256"):
        load_bundle(bundle)
    for name in ("config.json", "../outside.json", "evaluation/x.json"):
        with pytest.raises(BundleError):
            add_bundle_file(bundle, name, "{}")


def semitone_share(pieces: list) -> float:
    steps = np.concatenate([np.diff(line) for p in pieces for line in voice_lines(p.score)])
    return float(np.mean(np.abs(steps) == 1))


@pytest.mark.slow
def test_a_calibrated_bundle_steps_like_its_corpus(tmp_path_factory: pytest.TempPathFactory,
                                                   tmp_path: Path) -> None:
    tiny = build_tiny(tmp_path_factory)
    run = tiny_bundle(tmp_path_factory).parent / "run"
    styles = style_summary(tiny.corpus)
    path = export_bundle(run, tmp_path / "model", tiny.tokenizer_dir / "tokenizer.json", styles).path
    corpus = load_bundle(path).line_counts["corpus"]
    assert set(corpus) == set(styles)
    assert LineCounts.from_json(corpus["bach"]).counts.sum() > 0  # the chorales' voices, stepped

    with pytest.raises(ComposerError, match="samples"):
        calibrate_lines(path, samples=0)
    calibrate_lines(path, samples=2)
    lines = load_bundle(path).line_counts
    assert set(lines["model"]) == set(corpus) and lines["model_samples"] == 2
    assert all(LineCounts.from_json(c).counts.sum() > 0 for c in lines["model"].values())

    # a corpus that only ever steps a semitone: the calibrated samples step so far more often
    semitones = LineCounts.empty()
    semitones.counts[:, STEP_LIMIT + 1] = semitones.counts[:, STEP_LIMIT - 1] = 1000
    add_bundle_file(path, LINES, json.dumps({**lines, "corpus": {s: semitones.to_json() for s in corpus}}))
    composer = Composer.load(path)
    plain = composer.generate("bach", bars=8, seed=3, num=4, candidates=1, line_weight=0.0)
    pulled = composer.generate("bach", bars=8, seed=3, num=4, candidates=1)
    again = composer.generate("bach", bars=8, seed=3, num=4, candidates=1)
    assert [p.ids for p in pulled] == [p.ids for p in again]  # still one piece per seed
    assert semitone_share(pulled) > semitone_share(plain) + 0.2
