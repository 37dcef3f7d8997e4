"""Facts about music that every other room shares.

Bars, meters, key estimates and note fingerprints of a score (``facts``), and General
MIDI instruments with their names, families, clefs and ranges in one table
(``instruments``). Pure functions over numpy and symusic data; no files, no models.
"""
