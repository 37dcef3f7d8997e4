"""``composer harmonize`` and ``composer vary`` on a tiny trained model: the melody and the
bars left alone are kept note for note, the ensemble is complete, a seed decides."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import pytest
import symusic
from bundle_fixture import tiny_bundle
from click.testing import CliRunner

from composer.api import Composer
from composer.cli import cli
from composer.errors import ComposerError
from composer.generate.continuation import prepare_prompt
from composer.generate.melody_lock import melody_line
from composer.generate.variation import parse_bars
from composer.music.facts import downbeats

MELODY = "tinynotation: 4/4 g4 g a b c'2 b4 a g a b g a2 r4 b4 c'4 d' e' d' c'2 b4 a g1"
OPTIONS = {"max_entries_per_bar": 40, "key": "G"}


@pytest.fixture(scope="module")
def composer(tmp_path_factory: pytest.TempPathFactory) -> Composer:
    return Composer.load(tiny_bundle(tmp_path_factory))


def _notes(track: symusic.Track, tpq: int) -> list[tuple[Fraction, Fraction, int]]:
    """(onset, length) in quarter notes, and pitch, of every note: free of the resolution."""
    return sorted((Fraction(n.time, tpq), Fraction(n.duration, tpq), n.pitch) for n in track.notes)


def test_harmonize_keeps_the_melody_note_for_note_with_every_voice(composer: Composer) -> None:
    melody, _ = melody_line(prepare_prompt(MELODY).score, 52)
    wanted = _notes(melody.tracks[0], melody.tpq)
    voices = composer.bundle.styles["bach"].get("voices") or 4  # the tiny bundle has no corpus counts
    for seed in range(3):
        piece = composer.harmonize(MELODY, style="bach", seed=seed, **OPTIONS)
        tracks = [t for t in piece.score.tracks if t.note_num()]
        assert sum(_notes(t, piece.score.tpq) == wanted for t in tracks) == 1, seed
        assert len(tracks) == voices  # the lock makes every voice enter with the melody
        assert piece.provenance["command"] == "harmonize"
    again = composer.harmonize(MELODY, style="bach", seed=2, **OPTIONS)
    assert again.midi_bytes() == piece.midi_bytes()  # seed 2, twice


def test_harmonize_puts_the_melody_in_the_voice_asked_for(composer: Composer) -> None:
    bass_line = "tinynotation: 4/4 C4 G, A, E, F,2 G,2 C1"
    melody, _ = melody_line(prepare_prompt(bass_line).score, 52)
    piece = composer.harmonize(bass_line, style="bach", voice="bass", seed=1, **OPTIONS)
    token_score = composer.tokenizer.decode_ids(piece.ids, token_programs=True)
    lowest = max(t.program for t in token_score.tracks)  # the bass has the last voice slot
    bass = next(t for t in token_score.tracks if t.program == lowest)
    assert _notes(bass, token_score.tpq) == _notes(melody.tracks[0], melody.tpq)


def test_a_polyphonic_melody_gives_its_top_line_with_a_warning(composer: Composer) -> None:
    chords = "tinynotation: 4/4 c'4 d' e' f' g'1"
    score = prepare_prompt(chords).score
    lower = score.tracks[0].copy()
    for note in lower.notes:
        note.pitch -= 12
    score.tracks.append(lower)
    with pytest.warns(UserWarning, match="top line"):
        piece = composer.harmonize(score, style="bach", seed=0, **OPTIONS)
    top = _notes(prepare_prompt(chords).score.tracks[0], score.tpq)  # the upper line alone
    assert sum(_notes(t, piece.score.tpq) == top for t in piece.score.tracks) == 1


def test_vary_rewrites_only_the_bars_asked_for(composer: Composer, tmp_path: Path) -> None:
    source = composer.harmonize(MELODY, style="bach", seed=4, **OPTIONS)
    path = tmp_path / "piece.mid"
    source.save_midi(path)
    original = symusic.Score(str(path))
    lines = [*downbeats(original).tolist(), original.end() + 1]
    for seed in range(2):
        varied = composer.vary(path, bars="2,4", style="bach", seed=seed, **OPTIONS)
        window = [(lines[1], lines[2]), (lines[3], lines[4])]

        def outside(score: symusic.Score, window: list[tuple[int, int]] = window) -> list[list[tuple]]:
            return [sorted((n.time, n.duration, n.pitch, n.velocity) for n in t.notes
                           if not any(a <= n.time < b for a, b in window)) for t in score.tracks]

        assert outside(varied.score) == outside(original)
        assert [t.name for t in varied.score.tracks] == [t.name for t in original.tracks]
        for a, b in window:  # the new notes stay inside the bars they were written for
            for track in varied.score.tracks:
                assert all(n.time + n.duration <= b for n in track.notes if a <= n.time < b)
        assert [r["bars"] for r in varied.provenance["runs"]] == ["2-2", "4-4"]
    again = composer.vary(path, bars="2,4", style="bach", seed=1, **OPTIONS)
    assert again.midi_bytes() == varied.midi_bytes()


def test_parse_bars() -> None:
    assert parse_bars("3,5-8", 10) == [(3, 3), (5, 8)]
    assert parse_bars(" 8-9 , 1 ,2", 9) == [(1, 2), (8, 9)]
    for bad in ("9-3", "x", "", "3,,4", "0", "4-11", "2-"):
        with pytest.raises(ComposerError):
            parse_bars(bad, 10)


def _one_line_error(result: object) -> None:
    assert result.exit_code == 2, result.output  # type: ignore[attr-defined]
    lines = result.output.strip().splitlines()  # type: ignore[attr-defined]
    assert len(lines) == 1 and lines[0].startswith("error: "), lines


@pytest.mark.parametrize("melody", [
    "tinynotation: 4/4 " + "c1 " * 513,  # longer than the model can hold (512 bars)
    "tinynotation: 7/8 c8 d e f g a b",  # a meter the tiny model never saw
    "tinynotation: 4/4 r1 r1",  # nothing to harmonize
])
def test_bad_melodies_are_one_line_and_exit_2(melody: str, tmp_path: Path,
                                             tmp_path_factory: pytest.TempPathFactory) -> None:
    out = tmp_path / "h.mid"
    result = CliRunner().invoke(cli, ["harmonize", melody, "--model", str(tiny_bundle(tmp_path_factory)),
                                      "--style", "bach", "-o", str(out)])
    _one_line_error(result)
    assert not out.exists()


def test_bad_bars_and_existing_outputs_are_one_line_and_exit_2(
        tmp_path: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    bundle = str(tiny_bundle(tmp_path_factory))
    out = tmp_path / "v.mid"
    piece = "tinynotation: 4/4 c4 d e f g1 e4 d c d c1"
    for bars in ("9-3", "x", "5", "0-2"):
        result = CliRunner().invoke(cli, ["vary", piece, "--bars", bars, "--model", bundle, "--style", "bach",
                                          "-o", str(out)])
        _one_line_error(result)
        assert not out.exists()
    out.write_bytes(b"keep me")
    for command in (["vary", piece, "--bars", "2"], ["harmonize", piece]):
        result = CliRunner().invoke(cli, [*command, "--model", bundle, "--style", "bach", "-o", str(out)])
        _one_line_error(result)
        assert out.read_bytes() == b"keep me"


def test_particles_are_resampled_by_the_melodys_likelihood() -> None:
    import numpy as np

    from composer.generate.decode import _log_mass, _resampled
    from composer.generate.sampling import UniformStream

    scores = np.log(np.array([0.5, 0.25, 0.25], dtype=np.float32))
    kept = np.array([False, True, False])
    assert _log_mass(scores, kept, np.ones(3, dtype=bool), 1.0) == pytest.approx(np.log(0.25), abs=1e-6)
    # two runs of four particles: the first has one likely particle, the second is even
    weights = np.array([0.0, -9.0, -9.0, -9.0, -1.0, -1.0, -1.0, -1.0])
    order = _resampled(weights, 4, [False] * 8, UniformStream(0))
    assert order is not None
    assert order[:4].tolist() == [0, 0, 0, 0] and order[4:].tolist() == [4, 5, 6, 7]
    assert _resampled(np.zeros(8), 4, [False] * 8, UniformStream(0)) is None  # even weights: no resampling
    assert _resampled(weights, 4, [True] * 4 + [False] * 4, UniformStream(0)) is None  # a finished run


def test_a_pair_of_particles_is_resampled_too() -> None:
    # an effective sample size of half of two particles is never reached, so a pair (two
    # candidates of continue or vary) would never be steered
    import numpy as np

    from composer.generate.decode import _resampled, resample_threshold
    from composer.generate.sampling import UniformStream

    assert resample_threshold(2) == 1.5 and resample_threshold(3) == 1.5 and resample_threshold(8) == 4
    lopsided = np.array([0.0, -6.0])  # the first particle holds 0.998 of the weight
    orders = [_resampled(lopsided, 2, [False, False], UniformStream(seed)) for seed in range(5)]
    assert all(order is not None and order.tolist() == [0, 0] for order in orders)
    assert _resampled(np.array([0.0, -0.5]), 2, [False, False], UniformStream(0)) is None  # 0.62 / 0.38


def test_harmonize_without_lookahead_keeps_the_melody_too(composer: Composer) -> None:
    melody, _ = melody_line(prepare_prompt(MELODY).score, 52)
    piece = composer.harmonize(MELODY, style="bach", seed=5, lookahead=False, candidates=3, **OPTIONS)
    assert sum(_notes(t, piece.score.tpq) == _notes(melody.tracks[0], melody.tpq)
               for t in piece.score.tracks) == 1


def test_a_drum_only_melody_is_one_line_and_exit_2(tmp_path: Path,
                                                   tmp_path_factory: pytest.TempPathFactory) -> None:
    from conftest import midi_file

    drums = tmp_path / "drums.mid"
    drums.write_bytes(midi_file([36, 38, 36, 38], channel=9))
    out = tmp_path / "h.mid"
    for command in (["harmonize", str(drums)], ["vary", str(drums), "--bars", "1"]):
        result = CliRunner().invoke(cli, [*command, "--model", str(tiny_bundle(tmp_path_factory)),
                                          "--style", "bach", "-o", str(out)])
        _one_line_error(result)
        assert not out.exists()


def test_the_critic_hears_only_the_bars_after_the_given_ones() -> None:
    from composer.api import _after_bars

    score = symusic.Score(480)
    score.time_signatures.append(symusic.TimeSignature(0, 4, 4))
    track = symusic.Track("tune", 0, False)
    for bar, pitch in enumerate([60, 62, 64, 65]):
        track.notes.append(symusic.Note(bar * 1920, 1920, pitch, 80))
    score.tracks.append(track)
    assert _after_bars(score, 0) is score
    assert [n.pitch for n in _after_bars(score, 2).tracks[0].notes] == [64, 65]


def test_the_harmony_potential_twists_the_particle_filter(composer: Composer,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    import composer.api as api

    calls: list[int] = []
    potential = Composer._harmony_potential

    def counted(self: Composer, ids: list[int]) -> float:
        calls.append(len(ids))
        return potential(self, ids)

    monkeypatch.setattr(Composer, "_harmony_potential", counted)
    twisted = [composer.harmonize(MELODY, style="bach", seed=seed, **OPTIONS).ids for seed in range(3)]
    assert calls  # asked each time the lock forced a melody note
    monkeypatch.setattr(api, "HARMONY_WEIGHT", 0.0)
    plain = [composer.harmonize(MELODY, style="bach", seed=seed, **OPTIONS).ids for seed in range(3)]
    assert twisted != plain  # the weights moved the resampling: the test can fail
    calls.clear()
    composer.harmonize(MELODY, style="bach", seed=0, lookahead=False, **OPTIONS)
    assert not calls  # no particle filter, no potential


def test_harmonize_strikes_the_other_voices_from_the_planned_chords(
        tmp_path: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    import json
    import shutil

    from test_harmony import CADENCES, _chorale

    from composer.model.checkpoint import sha256_file
    from composer.music.harmony import ChordModel, count_chords, plan_chords
    from composer.music.voices import soprano_line

    counts = count_chords([(s, soprano_line(s)) for s in (_chorale(CADENCES), _chorale(CADENCES, 7))])
    folder = tmp_path / "with-chords"
    shutil.copytree(tiny_bundle(tmp_path_factory), folder)
    (folder / "harmony.json").write_text(json.dumps({"bach": counts.to_json()}))
    config = json.loads((folder / "config.json").read_text())
    config["files"]["harmony.json"] = sha256_file(folder / "harmony.json")
    (folder / "config.json").write_text(json.dumps(config))
    planned = Composer.load(folder)
    melody, _ = melody_line(prepare_prompt(MELODY).score, 52)
    kept = _notes(melody.tracks[0], melody.tpq)
    plan = plan_chords(ChordModel(counts), melody, (0, 7))  # OPTIONS: G major

    def struck_on_beats(seed: int, plan_chords: bool) -> list[tuple[int, int]]:
        """(beat, pitch) of the other voices' notes struck on the melody's beats."""
        piece = planned.harmonize(MELODY, style="bach", seed=seed, plan_chords=plan_chords, **OPTIONS)
        tpq = piece.score.tpq
        return [(n.time // tpq, n.pitch) for t in piece.score.tracks if _notes(t, tpq) != kept
                for n in t.notes if n.time % tpq == 0 and n.time // tpq < len(plan)]

    for seed in range(2):
        struck = struck_on_beats(seed, True)
        assert struck and all(pitch % 12 in plan[beat][0] for beat, pitch in struck), seed
    # without the plan the tiny model strikes other notes on the beats too
    free = [pitch % 12 in plan[beat][0] for seed in range(2) for beat, pitch in struck_on_beats(seed, False)]
    assert not all(free)
    out = tmp_path / "free.mid"  # the command line's --no-chord-plan is plan_chords=False
    result = CliRunner().invoke(cli, ["harmonize", MELODY, "--model", str(folder), "--style", "bach",
                                      "--key", "G", "--seed", "1", "--no-chord-plan", "-o", str(out)])
    assert result.exit_code == 0, result.output
    unplanned = planned.harmonize(MELODY, style="bach", seed=1, key="G", plan_chords=False)
    with_plan = planned.harmonize(MELODY, style="bach", seed=1, key="G")
    assert symusic.Score(str(out)).tracks[1].notes == unplanned.score.tracks[1].notes
    assert unplanned.score.tracks[1].notes != with_plan.score.tracks[1].notes
