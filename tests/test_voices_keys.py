"""Voices, keys, the critic and balanced styles (format 2 tokens), on tiny corpora and models."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import symusic
from bundle_fixture import tiny_bundle
from click.testing import CliRunner
from test_tokenizer import build_tiny
from tokens_fixture import write_token_shards

from composer.api import Composer, GenerationSettings
from composer.cli import cli
from composer.errors import ConfigError
from composer.evaluate.voice_measures import is_monophonic
from composer.generate.critic import best_candidate, critique
from composer.music.facts import key_name, pitch_class_durations
from composer.music.keys import key_from_name, parse_key, signature_margin, transpose_key
from composer.music.voices import voice_indexes
from composer.tokens.shards import read_split
from composer.train.batches import BatchSpec, load_token_data, sample_batch, style_shares


@pytest.fixture(scope="module")
def composer(tmp_path_factory: pytest.TempPathFactory) -> Composer:
    return Composer.load(tiny_bundle(tmp_path_factory))


def _tiny_chorale(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, dict[str, Any], symusic.Score]:
    """The tiny corpus's tokenizer, a four-voice chorale's record and its score."""
    tiny = build_tiny(tmp_path_factory)
    chorale = next(r for r in tiny.records if r["id"] == "bach-bwv10-7")
    return tiny.tokenizer, chorale, symusic.Score(str(tiny.corpus / chorale["midi"]))


def test_a_four_voice_chorale_keeps_its_named_monophonic_voices(tmp_path_factory: pytest.TempPathFactory
                                                                ) -> None:
    """corpus (music21 chorale) → tokens → MIDI: four tracks, Soprano to Bass, each one line."""
    tok, chorale, source = _tiny_chorale(tmp_path_factory)
    assert [t.program for t in source.tracks] == [52] * 4  # all four on the choir: miditok would merge them
    decoded = tok.decode_ids(tok.encode_score(source, "bach", key=key_from_name(chorale["key"])))
    assert [t.name for t in decoded.tracks] == ["Soprano", "Alto", "Tenor", "Bass"]
    assert [t.program for t in decoded.tracks] == [52] * 4
    for before, after in zip(source.tracks, decoded.tracks, strict=True):
        assert is_monophonic(after, decoded.tpq)
        assert sorted(n.pitch for n in before.notes) == sorted(n.pitch for n in after.notes)
    # the token programs differ per voice: 52 and three free programs from the tokenizer's table
    base = tok.encode_base(source)
    programs = {tok.base_vocab[b] for b in base if tok.base_vocab[b].startswith("Program_")}
    assert len(programs) == 4


def test_sung_voices_are_named_by_register_highest_first(tmp_path_factory: pytest.TempPathFactory
                                                          ) -> None:
    """A chorale whose voices come in another order (bass first) decodes as Soprano…Bass, top down."""
    tok, chorale, source = _tiny_chorale(tmp_path_factory)
    reordered = source.copy()
    reordered.tracks.clear()
    for track in reversed(list(source.tracks)):  # Bass, Tenor, Alto, Soprano
        reordered.tracks.append(track.copy())
    decoded = tok.decode_ids(tok.encode_score(reordered, "bach", key=key_from_name(chorale["key"])))
    assert [t.name for t in decoded.tracks] == ["Soprano", "Alto", "Tenor", "Bass"]
    means = [float(np.mean([n.pitch for n in t.notes])) for t in decoded.tracks]
    assert means == sorted(means, reverse=True)
    for original, named in zip(source.tracks, decoded.tracks, strict=True):
        assert sorted(n.pitch for n in original.notes) == sorted(n.pitch for n in named.notes)


def test_voices_are_told_apart_by_order_and_sung_names_first() -> None:
    assert voice_indexes([52, 52, 52, 52]) == [0, 1, 2, 3]
    assert voice_indexes([40, 40, 41, 42]) == [0, 1, 0, 0]
    # a horn doubling on the choir program goes after the named voices
    names = ["Horn 2", "Soprano", "Alto", "Tenor", "Bass"]
    assert voice_indexes([52] * 5, names) == [4, 0, 1, 2, 3]


def test_key_tokens_transpose_with_the_augmentation(tmp_path_factory: pytest.TempPathFactory) -> None:
    tiny = build_tiny(tmp_path_factory)
    tok = tiny.tokenizer
    ids, rows = read_split(tiny.tokens_dir, "train")
    keys = {r["id"]: key_from_name(r["key"]) for r in tiny.records}
    checked = Counter()
    for row in rows:
        key = keys[row["id"]]
        token = int(ids[row["offset"] + 1])
        if key is None:
            assert token == tok.any_key_id
            continue
        assert tok.key_of_id(token) == transpose_key(key, row["transpose"]), row
        checked[row["transpose"] != 0] += 1
    assert checked[True] > 20 and checked[False] > 3  # transposed copies and originals both seen


def test_key_conditions_what_a_tiny_model_writes(composer: Composer) -> None:
    d_major = composer.generate("irish", bars=3, seed=3, key="D", max_entries_per_bar=32)
    e_flat = composer.generate("irish", bars=3, seed=3, key="Eb minor", max_entries_per_bar=32)
    tok = composer.tokenizer
    assert d_major.ids[1] == tok.key_ids[(0, 2)] and e_flat.ids[1] == tok.key_ids[(1, 3)]
    assert d_major.ids[2:] != e_flat.ids[2:]  # the key token alone changed the music
    assert d_major.provenance["written_key"] == "D major"
    # without --key a key token is still written (Key_any here: the tiny bundle has no corpus keys)
    plain = composer.generate("irish", bars=2, seed=3, max_entries_per_bar=32)
    assert plain.ids[1] == tok.any_key_id


def test_continue_writes_in_the_prompt_key(composer: Composer) -> None:
    piece = composer.continue_("tinynotation: 4/4 f#4 f# g a a g f# e d d e f# f#4. e8 e2", style="irish",
                               bars=2, seed=1, max_entries_per_bar=32)
    assert piece.ids[1] == composer.tokenizer.key_ids[parse_key("D major")]
    assert piece.provenance["written_key"] == "D major"


def test_signature_margin_hears_a_scale_in_its_own_signature() -> None:
    c_major = np.zeros(12)
    c_major[[0, 2, 4, 5, 7, 9, 11]] = 1.0
    c_major[[0, 7]] = 3.0  # tonic and dominant sound longest
    assert signature_margin(c_major, (0, 0)) > 0.1
    assert signature_margin(c_major, (1, 9)) == signature_margin(c_major, (0, 0))  # A minor: no sharps either
    assert signature_margin(c_major, (0, 3)) < -0.1  # E flat major
    g_major = np.roll(c_major, 7)
    assert signature_margin(g_major, (0, 0)) < 0 < signature_margin(g_major, (1, 4))  # E minor: one sharp
    assert signature_margin(np.zeros(12), (0, 0)) == 0.0


TUNE = "tinynotation: 4/4 c4 d e f g2 g a4 a a a g1 f4 f f f e2 e d4 d d d c1"


def test_continue_steers_its_candidates_toward_the_prompts_key(composer: Composer,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    import composer.music.keys as keys

    asked: list[tuple[int, int]] = []
    margin = keys.signature_margin

    def counted(durations: np.ndarray, key: tuple[int, int]) -> float:
        asked.append(key)
        return margin(durations, key)

    monkeypatch.setattr(keys, "signature_margin", counted)
    options = {"style": "irish", "bars": 4, "max_entries_per_bar": 32, "candidates": 4, "keep_prompt": False}
    steered = [composer.continue_(TUNE, seed=seed, **options) for seed in range(4)]
    # asked at every bar line of every particle, always for the prompt's key
    assert len(asked) >= 4 * 4 * 4 and set(asked) == {parse_key("C major")}
    assert composer.continue_(TUNE, seed=3, **options).ids == steered[3].ids  # a seed decides
    plain = [composer.continue_(TUNE, seed=seed, key_weight=0.0, **options) for seed in range(4)]
    assert [p.ids for p in plain] != [p.ids for p in steered]  # the weights moved the resampling
    c_major = parse_key("C major")

    def mean_margin(pieces: list[Any]) -> float:
        return float(np.mean([margin(pitch_class_durations(p.score), c_major) for p in pieces]))

    assert mean_margin(steered) > mean_margin(plain) + 0.1  # and toward the prompt's signature
    asked.clear()
    composer.continue_(TUNE, seed=0, **{**options, "candidates": 1})
    assert not asked  # one candidate: no particle filter, nothing to steer


def test_candidates_pick_the_critics_best_and_are_deterministic(composer: Composer) -> None:
    # without guidance the style margin comes from _style_margins (with it, from the decoding)
    options = {"bars": 3, "seed": 11, "max_entries_per_bar": 32, "key": "G", "style_strength": 1.0}
    chosen = composer.generate("bach", candidates=3, **options)
    again = composer.generate("bach", candidates=3, **options)
    assert chosen.ids == again.ids and chosen.midi_bytes() == again.midi_bytes()
    # the same seed decodes the same three rows as three separate pieces
    pool = composer.generate("bach", num=3, candidates=1, **options)
    margins = composer._style_margins([p.ids for p in pool],
                                      [composer._score_of(p.ids).note_num() for p in pool], "bach")
    voices = composer.bundle.styles.get("bach", {}).get("voices")
    verdicts = [critique(composer._score_of(p.ids), (0, 7), {}, m, voices=voices)
                for p, m in zip(pool, margins, strict=True)]
    best = best_candidate(verdicts)
    assert chosen.ids == pool[best].ids
    assert chosen.provenance["critic"]["chosen"] == best + 1
    assert chosen.provenance["critic"]["total"] == pytest.approx(verdicts[best].total, abs=1e-4)
    assert all(v.total <= verdicts[best].total for v in verdicts)


@pytest.mark.parametrize("value", [0, 65, -1])
def test_bad_candidates_are_refused(composer: Composer, value: int) -> None:
    with pytest.raises(ConfigError, match="--candidates"):
        composer.generate("bach", bars=2, candidates=value)


def test_bad_candidates_and_unknown_key_are_one_line_and_exit_2(tmp_path: Path,
                                                                tmp_path_factory: pytest.TempPathFactory
                                                                ) -> None:
    bundle = tiny_bundle(tmp_path_factory)
    runner = CliRunner()
    base = ["generate", "--model", str(bundle), "--style", "bach", "--bars", "2",
            "-o", str(tmp_path / "x.mid")]
    for extra in (["--candidates", "0"], ["--candidates", "65"], ["--key", "H major"],
                  ["--line-weight", "-1"], ["--line-weight", "11"]):
        result = runner.invoke(cli, [*base, *extra])
        assert result.exit_code == 2, (extra, result.output)
        lines = result.output.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in result.output
    assert not (tmp_path / "x.mid").exists()


def test_balanced_sampler_hits_each_styles_share(tmp_path: Path) -> None:
    data = load_token_data(write_token_shards(tmp_path / "tok", pieces=40, seed=4))
    shard = data.splits["train"]
    style_of_id = {v: k for k, v in data.style_ids.items()}
    for temperature in (1.0, 0.5, 0.0):
        target = style_shares(shard, temperature)
        seen: Counter[str] = Counter()
        spec = BatchSpec(batch_size=32, block_size=16, seed=9, style_temperature=temperature)
        for step in range(150):
            inputs, _ = sample_batch(data, spec, step)
            seen.update(style_of_id[int(i)] for i in inputs[:, 0])
        total = sum(seen.values())
        for style, share in target.items():
            assert seen[style] / total == pytest.approx(share, abs=0.03), (temperature, style)
    tokens = {s: float(shard.lengths[np.array(shard.styles) == s].sum()) for s in set(shard.styles)}
    assert style_shares(shard, 0.0) == pytest.approx({s: 0.5 for s in tokens})
    assert style_shares(shard, 1.0) == pytest.approx({s: t / sum(tokens.values()) for s, t in tokens.items()})


def test_a_users_corpus_keeps_its_tracks_apart() -> None:
    """Two piano tracks (right and left hand) and a string trio with two violins."""
    from composer.tokens.training import voice_program_table

    table = voice_program_table([[0, 0], [40, 40, 42], [0]])
    assert set(table) == {(0, 1), (40, 1)}
    assert table[(0, 1)] not in (0, 40, 42) and table[(40, 1)] not in (0, 40, 42)
    assert len(set(table.values())) == 2


def test_onset_rules_keep_positions_moving_and_voices_within_their_limits() -> None:
    from composer.generate.voicing import OnsetRules

    vocab = ["Bar_None", "Position_0", "Position_6", "Program_52", "Program_40", "Pitch_60"]
    entries = [(0,), (1,), (2,), (3,), (4,), (5,), (2, 3, 5), (3, 5, 3, 5)]
    rules = OnsetRules.build(vocab, entries, {52: 1, 40: 2})
    state = rules.start([0, 2])  # a bar, then position 6
    mask = np.ones(len(entries), dtype=bool)
    rules.restrict(mask, state)
    assert not mask[1] and not mask[2] and not mask[6]  # position 0 or 6 again: refused
    assert mask[0] and mask[3] and mask[4] and not mask[7]  # a new bar, one soprano note; not two
    state = rules.after_entry(rules.after_entry(state, 3), 5)  # the soprano sings at 6
    mask = np.ones(len(entries), dtype=bool)
    rules.restrict(mask, state)
    assert not mask[3] and mask[4]  # no second soprano note at 6; the violin may play
    state = rules.after_entry(state, 0)  # the next bar opens every position again
    mask = np.ones(len(entries), dtype=bool)
    rules.restrict(mask, state)
    assert mask[1] and mask[2] and mask[6]


def test_legato_keeps_each_voice_within_the_notes_it_can_sound() -> None:
    from composer.evaluate.voice_measures import largest_chord
    from composer.generate.fit import legato_voices

    score = symusic.Score(480)
    for name, program in (("Violin", 40), ("Soprano", 52), ("Piano", 0)):
        track = symusic.Track(name, program, False)
        for time, duration, pitch in ((0, 960, 60), (240, 960, 64), (480, 960, 67), (720, 240, 72)):
            track.notes.append(symusic.Note(time, duration, pitch, 80))
        score.tracks.append(track)
    legato_voices(score)
    violin, soprano, piano = score.tracks
    assert largest_chord(violin) == 2 and violin.note_num() == 4  # held notes cut, none dropped
    assert largest_chord(soprano) == 1 and soprano.note_num() == 4
    assert [n.duration for n in soprano.notes] == [240, 240, 240, 240]
    assert largest_chord(piano) == 4  # a keyboard keeps its chords


def test_key_profiles_are_music21s() -> None:
    from music21.analysis.discrete import AardenEssen

    from composer.music.facts import AARDEN_ESSEN_WEIGHTS

    analysis = AardenEssen()
    assert (tuple(analysis.getWeights("major")), tuple(analysis.getWeights("minor"))) == AARDEN_ESSEN_WEIGHTS


def test_key_estimate_agrees_with_music21() -> None:
    import music21

    from composer.io.notation import stream_to_score
    from composer.music.facts import estimate_key

    for text in ("tinynotation: 4/4 c4 e g c' b g d' b c'1",
                 "tinynotation: 3/4 a4 c' e' g#2 a4 e2 d4 c2 b,4 a,2.",
                 "tinynotation: 6/8 f4 a8 c'4 a8 b-4 g8 e4 c8 f2."):
        stream = music21.converter.parse(text)
        ours = estimate_key(stream_to_score(stream))
        theirs = stream.analyze("key")
        assert ours == f"{theirs.tonic.name.replace('-', 'b')} {theirs.mode}"


def test_a_melody_ending_on_its_tonic_is_heard_in_that_key() -> None:
    from composer.music.facts import key_index, melody_key_index

    melody = symusic.Score(480)
    track = symusic.Track("tune", 0, False)
    # a C major tune that leans on G and B: the profiles alone hear G major
    for number, pitch in enumerate([62, 65, 69, 67, 71, 67, 74, 60, 64, 60, 71, 60]):
        track.notes.append(symusic.Note(number * 480, 480, pitch, 80))
    melody.tracks.append(track)
    assert key_index(melody) == (0, 7)
    assert melody_key_index(melody) == (0, 0)  # it ends on C
    assert melody_key_index(symusic.Score(480)) is None


def test_generate_writes_only_the_voices_the_styles_corpus_has(composer: Composer,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    def programs(ids: list[int]) -> set[int]:
        return {int(t.split("_")[1]) for t in composer.tokenizer.tokens(ids) if t.startswith("Program_")}

    assert composer._corpus_voices("bach") is None  # this bundle records no voices: no limit
    # as an exported bundle records them: the soprano and the alto of the choir
    monkeypatch.setitem(composer.bundle.styles["bach"], "ranges", {"52:0": [60, 79], "52:1": [53, 74]})
    voices = composer._corpus_voices("bach")
    assert voices == {composer.tokenizer.token_program(52, 0), composer.tokenizer.token_program(52, 1)}
    free = set()
    for seed in range(3):
        assert programs(composer.generate("bach", bars=2, seed=seed, max_entries_per_bar=48).ids) <= voices
        free |= programs(composer.generate("bach", bars=2, seed=seed, max_entries_per_bar=48,
                                           instruments=(40, 52)).ids)
    assert free - voices  # an instrument the user asks for lifts the limit: the test can fail
    # at most the style's most_voices, first voices first
    monkeypatch.setitem(composer.bundle.styles["bach"], "most_voices", 1)
    assert composer._corpus_voices("bach") == {composer.tokenizer.token_program(52, 0)}
    assert programs(composer.generate("bach", bars=2, seed=0, max_entries_per_bar=48).ids) <= \
        {composer.tokenizer.token_program(52, 0)}


def test_each_piece_of_a_batch_draws_its_own_key(composer: Composer, monkeypatch: pytest.MonkeyPatch) -> None:
    options = {"bars": 2, "max_entries_per_bar": 32, "style_strength": 1.0}
    monkeypatch.setitem(composer.bundle.config, "styles",
                        {"bach": {"keys": {"G major": 0.4, "A minor": 0.3, "D major": 0.3}}})
    drawn = {composer._key_for(GenerationSettings(style="bach", seed=3), None, piece) for piece in range(12)}
    assert len(drawn) > 1  # three keys to draw from, set above
    batch = composer.generate("bach", seed=3, num=6, **options)
    assert [p.provenance["written_key"] for p in batch] == [
        key_name(*composer._key_for(GenerationSettings(style="bach", seed=3), None, i)) for i in range(6)]
    alone = composer.generate("bach", seed=3, **options)
    assert alone.provenance["written_key"] == batch[0].provenance["written_key"]
    again = composer.generate("bach", seed=3, num=6, **options)
    assert [p.ids for p in again] == [p.ids for p in batch]
    # a batch in one key given by --key decodes as one batch, as before
    assert len({p.provenance["written_key"] for p in composer.generate("bach", seed=3, num=3, key="G",
                                                                         **options)}) == 1
