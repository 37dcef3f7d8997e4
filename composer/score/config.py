"""``ScoreConfig``: every choice the sheet-music writer makes that a caller may change."""

from __future__ import annotations

from dataclasses import dataclass

PAPER_SIZES_MM = {"a4": (210, 297), "letter": (216, 279)}
KEY_SOURCES = ("auto", "analysis", "file")


@dataclass(frozen=True)
class ScoreConfig:
    """How a score is quantized, laid out on staves and engraved."""

    divisions: tuple[int, ...] = (4, 3, 8, 6)  # grid steps per quarter note tried per beat,
    #   coarse first: 16ths, eighth triplets, 32nds, sixteenth triplets
    finer_grid_penalty: float = 0.01  # mean snapping error (quarter notes) a finer grid must save
    grand_staff_fraction: float = 0.02  # a part whose best clef leaves more than this fraction of
    #   its notes beyond 3 ledger lines gets a treble + bass grand staff
    split_pitch: int = 60  # grand staff, note by note: from this MIDI pitch up on the treble staff
    max_voices: int = 4  # voices per staff; further lines merge into chords (notes shortened)
    pickup: bool = True  # music that starts after the first downbeat gets an anacrusis bar
    key_source: str = "analysis"  # "analysis": the key music21's analysis finds (what a reader
    #   expects; modal editions' own signatures often differ); "auto": the file's key
    #   signatures, analysed where it has none; "file": only the file's (else none)
    distrust_c_major: bool = True  # "auto": a lone C major key event (a sequencer default)
    #   yields to an analysed key with 2 or more sharps or flats
    tempo_change: float = 0.05  # later tempo marks only where the tempo changes by this ratio
    paper: str = "a4"  # "a4" or "letter", for PDF/SVG/PNG pages
    staff_size: int = 70  # staff height in percent of verovio's 7.2 mm: 70 makes 5 mm staves
    png_dpi: int = 150  # resolution of PNG pages
    max_notes: int = 20_000  # bigger scores are refused: engraving takes about 1 ms a note,
    #   and a quartet movement has ~10k notes
    max_bars: int = 2_000  # longer scores are refused (a long symphony movement has ~600)
    max_parts: int = 64  # pitched tracks; more are refused (an orchestra has ~30)
    max_measures: int = 4_000  # bars × parts; more are refused: MusicXML takes ~2 ms a
    #   measure and PDF pages about 4 times that (a 300-bar quartet movement has 1,200)

    def check(self) -> None:
        """Raise ConfigError for values that cannot work."""
        from composer.errors import ConfigError

        if not self.divisions or any(d < 1 or d > 32 for d in self.divisions):
            raise ConfigError(f"divisions {self.divisions}: use 1 to 32 steps per quarter note")
        if self.key_source not in KEY_SOURCES:
            raise ConfigError(f"key source '{self.key_source}': use one of {', '.join(KEY_SOURCES)}")
        if self.paper not in PAPER_SIZES_MM:
            raise ConfigError(f"paper '{self.paper}': use one of {', '.join(PAPER_SIZES_MM)}")
        if not 10 <= self.staff_size <= 200:
            raise ConfigError(f"staff size {self.staff_size}: use 10 to 200 (percent)")
        if not 30 <= self.png_dpi <= 1200:
            raise ConfigError(f"PNG resolution {self.png_dpi} dpi: use 30 to 1200")
        if not 1 <= self.max_voices <= 4:
            raise ConfigError(f"max_voices {self.max_voices}: use 1 to 4")
        if min(self.max_notes, self.max_bars, self.max_parts, self.max_measures) < 1:
            raise ConfigError("max_notes, max_bars, max_parts and max_measures must be at least 1")
        if not 0 <= self.split_pitch <= 127:
            raise ConfigError(f"split pitch {self.split_pitch}: use a MIDI pitch 0-127")
