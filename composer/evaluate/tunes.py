"""Well-known public-domain tunes, typed in as note text, for testing continuations.

Each tune is the opening of a melody everyone knows, in tinynotation (music21's note
text: ``c4`` is a quarter-note middle C, ``c'`` an octave up, ``b-`` B flat, ``f#``
F sharp, ``r`` a rest), with the key it is in. They start on a downbeat (pickups are
left out) so their bar lines are where the tune's are. ``composer evaluate`` continues
each in a few styles and checks that the continuation keeps the tune's key.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Tune:
    name: str
    key: str  # "D major"
    notes: str  # tinynotation, time signature first

    @property
    def text(self) -> str:
        """The prompt as ``composer continue`` reads it."""
        return f"tinynotation: {self.notes}"


TUNES: tuple[Tune, ...] = (
    Tune("Ode to Joy", "D major",
         "4/4 f#4 f# g a a g f# e d d e f# f#4. e8 e2 f#4 f# g a a g f# e d d e f# e4. d8 d2"),
    Tune("Twinkle, Twinkle, Little Star", "C major",
         "4/4 c4 c g g a a g2 f4 f e e d d c2 g4 g f f e e d2 g4 g f f e e d2"),
    Tune("Frère Jacques", "F major",
         "4/4 f4 g a f f g a f a b- c'2 a4 b- c'2 c'8 d' c' b- a4 f c'8 d' c' b- a4 f f c f2 f4 c f2"),
    Tune("Greensleeves", "A minor",
         "3/4 c'2 d'4 e'4. f'8 e'4 d'2 b4 g4. a8 b4 c'2 a4 a4. g#8 a4 b2 g#4 e2 a4 "
         "c'2 d'4 e'4. f'8 e'4 d'2 b4 g4. a8 b4 c'4. b8 a4 g#4. f#8 g#4 a2."),
    Tune("Amazing Grace", "G major",
         "3/4 g2 b8 g8 b2 a4 g2 e4 d2 d4 g2 b8 g8 b2 a4 d'2. d'2 b4 d'2 b8 g8 b2 g4 d2 e4 g2 e4 d2 d4"),
    Tune("When the Saints Go Marching In", "C major",
         "4/4 r4 c e f g1 r4 c e f g1 r4 c e f g2 e2 c2 e2 d1 r4 e e d c2. c4 e2 g2 g4 f2. "
         "r4 e f g e2 c2 d2 d2 c1"),
    Tune("Yankee Doodle", "G major",
         "4/4 g4 g a b g b a d g g a b g2 f#2 g4 g a b c' b a g f# d e f# g2 g2"),
    Tune("Auld Lang Syne", "F major",
         "4/4 f4. f8 f4 a g4. f8 g4 a8 g8 f4. f8 a4 c' d'2. d'4 c'4. a8 a4 f g4. f8 g4 a8 g8 "
         "f4. d8 d4 c f2. r4"),
    Tune("Mary Had a Little Lamb", "C major",
         "4/4 e4 d c d e e e2 d4 d d2 e4 g g2 e4 d c d e e e e d d e d c1"),
    Tune("London Bridge", "C major",
         "4/4 g4. a8 g4 f e f g2 d4 e f2 e4 f g2 g4. a8 g4 f e f g2 d2 g2 e4 c2."),
    Tune("God Save the King", "G major",
         "3/4 g4 g a f#4. g8 a4 b b c' b4. a8 g4 a g f# g2. d'4 d' d' d'4. c'8 b4 c' c' c' "
         "c'4. b8 a4 b c'8 b a g b4. c'8 d'4 e'8 c'8 b4 a4 g2."),
    Tune("Oh! Susanna", "C major",
         "4/4 e4 g g4. a8 g4 e c4. d8 e4 e d c d2 r4 c8 d8 e4 g g4. a8 g4 e c4. d8 e4 e d d c2. r4"),
)


__all__ = ["TUNES", "Tune"]
