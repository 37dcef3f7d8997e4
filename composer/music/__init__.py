"""Facts about music that every other room shares.

Bars, meters, key estimates and note fingerprints of a score (``facts``), keys and their
profiles (``keys``), voices and their ranges (``voices``), a style's chords counted and the
chord plan of a melody (``harmony``), and General MIDI instruments with their names,
families, clefs and ranges in one table (``instruments``). Pure functions over numpy and
symusic data; no files, no models.
"""
