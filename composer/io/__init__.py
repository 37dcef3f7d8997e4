"""Everything that crosses the boundary with the user's files.

Safe reading of MIDI, MusicXML, ABC, Humdrum and typed note text into a ``symusic.Score``
(size, track, note, tempo and time limits; header checks before any parser runs), the
music21 → symusic conversion, atomic output files that never overwrite without being
asked, and the provenance text event written into every generated MIDI file. Nothing
here knows about tokens, models or styles.
"""
