"""The corpus's fast notation paths: the notes come out as music21's full paths make them."""

from __future__ import annotations

import pytest

from composer.corpus.parsing import without_beaming
from composer.corpus.repeat_plan import Bar, Bracket, CannotExpand, RepeatBar, play_order
from composer.corpus.repeats import expand_repeats, has_repeats

music21 = pytest.importorskip("music21")

TUNES = {
    "plain": "|: C D E F | G A B c :|",
    "first_and_second_endings": "|: C D E F |1 G A B c :|2 c B A G |",
    "two_sections": "|: C D E F | G A B c :|: c B A G | F E D C :|",
    "no_opening_repeat": "C D E F | G A B c :| d e f g |",
    "sections_with_endings": "|: C2 D2 |1 E2 F2 :|2 G2 A2 |: B2 c2 |1 d2 e2 :|2 f2 g2 |",
    "three_endings": "|: C D E F |1 G4 :|2 A4 :|3 B4 |",
    "no_repeats": "C D E F | G A B c |",
}


def _abc(body: str) -> str:
    return f"X:1\nT:t\nM:4/4\nL:1/4\nK:C\n{body}\n"


def _notes(stream: music21.stream.Stream) -> list[tuple[float, int, float]]:
    return sorted((float(n.getOffsetInHierarchy(stream)), p.midi, float(n.quarterLength))
                  for n in stream.recurse().notes for p in n.pitches)


@pytest.mark.parametrize("name", sorted(TUNES))
def test_expansion_matches_music21(name: str) -> None:
    ours, expanded = expand_repeats(music21.converter.parseData(_abc(TUNES[name]), format="abc"))
    theirs_source = music21.converter.parseData(_abc(TUNES[name]), format="abc")
    theirs = theirs_source.expandRepeats() if has_repeats(theirs_source) else theirs_source
    assert expanded
    assert _notes(ours) == _notes(theirs)
    assert len(_notes(ours)) >= len(_notes(theirs_source))


def test_endings_are_played_in_turn() -> None:
    bars = [Bar(0, left=RepeatBar("start")), Bar(1), Bar(2, right=RepeatBar("end")), Bar(3)]
    first, second = Bracket([1], [bars[2]]), Bracket([2], [bars[3]])
    assert play_order(bars, [first, second]) == [0, 1, 2, 0, 1, 3]


def test_a_repeat_marked_three_times_plays_three_times() -> None:
    bars = [Bar(0), Bar(1, right=RepeatBar("end", times=3)), Bar(2)]
    assert play_order(bars, []) == [0, 1, 0, 1, 0, 1, 2]


def test_unpaired_repeats_cannot_expand() -> None:
    bars = [Bar(0, left=RepeatBar("start")), Bar(1, left=RepeatBar("start")), Bar(2)]
    with pytest.raises(CannotExpand):
        play_order(bars, [])


def test_parsing_without_beams_keeps_the_notes() -> None:
    tune = _abc("C/2D/2 E/4F/4G/2 A/2B/2c/2d/2 | [CEG]2 c>B A<G | C4 | z4 |]")
    original = music21.stream.Stream.__dict__["makeBeams"]
    beamed = music21.converter.parseData(tune, format="abc")
    with without_beaming():
        unbeamed = music21.converter.parseData(tune, format="abc")
    assert any(n.beams.beamsList for n in beamed.recurse().notes)
    assert not any(n.beams.beamsList for n in unbeamed.recurse().notes)
    assert _notes(unbeamed) == _notes(beamed)
    assert music21.stream.Stream.__dict__["makeBeams"] is original  # the switch is undone
