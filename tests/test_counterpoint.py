"""The voice-leading rule (no parallel fifths or octaves, no semitone struck between two
voices): its reading of base tokens and BPE entries, what it does to a tiny trained
model's chorales, and the clash measure of ``composer evaluate``."""

from __future__ import annotations

import pytest
import symusic
from bundle_fixture import tiny_bundle

from composer.api import Composer
from composer.evaluate.voice_measures import struck_clashes
from composer.generate.counterpoint import (
    CLASH_FAULT,
    NO_FAULT,
    PARALLEL_FAULT,
    LineState,
    VoiceLeadingRule,
    is_clash,
    is_parallel,
)

BASE = ["Bar_None", "Position_0", "Position_4", "Program_52", "Program_53", "Pitch_55", "Pitch_60",
        "Pitch_62", "Pitch_67", "Pitch_69", "Velocity_63", "Duration_1.0.8", "Program_40", "Pitch_61"]


def _id(token: str) -> int:
    return BASE.index(token)


def _rule() -> VoiceLeadingRule:
    entries = [(i,) for i in range(len(BASE))]
    entries.append((_id("Program_53"), _id("Pitch_69")))  # a BPE entry: a voice and its pitch
    entries.append((_id("Position_4"), _id("Program_52"), _id("Pitch_62")))
    return VoiceLeadingRule.build(BASE, entries, [52, 53])


def _note(program: str, pitch: int) -> list[int]:
    return [_id(program), _id(f"Pitch_{pitch}"), _id("Velocity_63"), _id("Duration_1.0.8")]


def _after_fifth_then_upper_moves(rule: VoiceLeadingRule) -> LineState:
    """Voice 52 sings 60 and voice 53 sings 67 (a fifth); at the next onset 52 moves up to 62."""
    return rule.start([_id("Bar_None"), _id("Position_0"), *_note("Program_52", 60), *_note("Program_53", 67),
                       _id("Position_4"), *_note("Program_52", 62)])


def test_is_parallel_needs_the_same_perfect_interval_and_the_same_direction() -> None:
    assert is_parallel(60, 62, 67, 69)  # fifth to fifth, both up
    assert is_parallel(60, 62, 72, 74)  # octave to octave
    assert is_parallel(62, 60, 62, 60)  # unison to unison, both down
    assert not is_parallel(60, 62, 67, 65)  # contrary motion
    assert not is_parallel(60, 60, 67, 69)  # one voice holds its pitch
    assert not is_parallel(60, 62, 67, 74)  # fifth to octave: not the same interval
    assert not is_parallel(60, 62, 64, 66)  # thirds


def test_the_rule_refuses_the_note_that_makes_parallel_fifths() -> None:
    rule = _rule()
    state = _after_fifth_then_upper_moves(rule)
    at_voice = rule.after_entry(state, _id("Program_53"))
    assert rule.breaks(at_voice, _id("Pitch_69"))  # 62-69 after 60-67, both up
    assert not rule.breaks(at_voice, _id("Pitch_67"))  # the lower voice holds its pitch
    assert not rule.breaks(at_voice, _id("Pitch_55"))  # a fifth again, but in contrary motion
    assert rule.breaks(state, len(BASE))  # the BPE entry "Program_53 Pitch_69" holds the same motion
    # another program is not one of the rule's voices
    other = rule.after_entry(state, _id("Program_40"))
    assert not rule.breaks(other, _id("Pitch_69"))


def test_a_new_onset_makes_the_notes_before_it_the_previous_ones() -> None:
    rule = _rule()
    start = rule.start([_id("Bar_None"), _id("Position_0"), *_note("Program_52", 60),
                        *_note("Program_53", 67)])
    # the merged entry opens the next onset and moves 52 up; 53 then moving up a step is parallel
    moved = rule.after_entry(start, len(BASE) + 1)
    assert moved.position == 4 and moved.now == {52: 62} and moved.before == {52: 60, 53: 67}
    assert rule.breaks(moved, len(BASE))
    # a bar line closes the onset: the voices' latest notes carry over as the previous ones
    next_bar = rule.after_entry(moved, _id("Bar_None"))
    assert next_bar.now == {} and next_bar.before == {52: 62, 53: 67}
    assert start.now == {52: 60, 53: 67}  # states are not changed by walking on from them


def test_is_clash_is_interval_class_one() -> None:
    assert is_clash(60, 61) and is_clash(61, 60) and is_clash(60, 71) and is_clash(60, 73)
    assert not is_clash(60, 62) and not is_clash(60, 72) and not is_clash(60, 66)


def test_the_rule_refuses_a_semitone_struck_against_another_voice() -> None:
    rule = _rule()
    struck = rule.start([_id("Bar_None"), _id("Position_0"), *_note("Program_52", 60)])
    at_voice = rule.after_entry(struck, _id("Program_53"))
    assert rule.fault(at_voice, _id("Pitch_61")) == CLASH_FAULT  # a minor second with 60
    assert rule.fault(at_voice, _id("Pitch_67")) == NO_FAULT
    # at the next onset 60 only sounds on: a passing semitone against a held note is free
    later = rule.after_entry(rule.after_entry(struck, _id("Position_4")), _id("Program_53"))
    assert rule.fault(later, _id("Pitch_61")) == NO_FAULT
    # the same pitch in the same voice is no clash, and another program is no voice of the rule
    assert rule.fault(rule.after_entry(struck, _id("Program_52")), _id("Pitch_60")) == NO_FAULT
    assert rule.fault(rule.after_entry(struck, _id("Program_40")), _id("Pitch_61")) == NO_FAULT


def test_struck_clashes_counts_pairs_of_voices_starting_together() -> None:
    score = symusic.Score(480)
    for name, notes in (("S", [(0, 61), (480, 67), (960, 72)]), ("A", [(0, 60), (480, 60), (1200, 71)])):
        track = symusic.Track(name, 52, False)
        for time, pitch in notes:
            track.notes.append(symusic.Note(time, 480, pitch, 80))
        score.tracks.append(track)
    # struck together at 0 (61/60: a clash) and 480 (67/60: none); 960 and 1200 are alone
    assert struck_clashes(score) == (1, 2)
    one = score.copy()
    one.tracks.clear()
    one.tracks.append(score.tracks[0])
    assert struck_clashes(one) == (0, 0)


@pytest.fixture(scope="module")
def composer(tmp_path_factory: pytest.TempPathFactory) -> Composer:
    return Composer.load(tiny_bundle(tmp_path_factory))


def _faults(rule: VoiceLeadingRule, ids: list[int]) -> list[int]:
    """The rule's fault for each entry of a decoded piece, walking it from its prefix."""
    state, faults = rule.start(ids[:2]), []
    for entry in ids[2:]:
        faults.append(rule.fault(state, entry))
        state = rule.after_entry(state, entry)
    return faults


def test_a_tiny_models_chorales_keep_the_rule(composer: Composer) -> None:
    options = {"bars": 4, "max_entries_per_bar": 48, "key": "G"}
    rule = composer._voice_leading_rule
    free = [composer.generate("bach", seed=s, avoid_parallels=False, **options) for s in range(4)]
    ruled = [composer.generate("bach", seed=s, **options) for s in range(4)]  # on by default in bach
    free_faults = [f for p in free for f in _faults(rule, p.ids)]
    # an untrained model writes both parallels and clashes: the test can fail
    assert PARALLEL_FAULT in free_faults and CLASH_FAULT in free_faults
    ruled_faults = [f for p in ruled for f in _faults(rule, p.ids)]
    assert PARALLEL_FAULT not in ruled_faults
    # a clash only where every allowed entry broke the rule: far fewer than without it
    assert ruled_faults.count(CLASH_FAULT) < free_faults.count(CLASH_FAULT) / 4
    again = composer.generate("bach", seed=2, **options)
    assert again.ids == ruled[2].ids  # deterministic for a seed, resampling included
