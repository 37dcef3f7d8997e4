"""A labelled corpus: inputs → one MIDI file per piece, a manifest and a report.

``sources`` says what goes in (music21's built-in styles, folders, CSV labels, ABC books),
``convert`` turns one input into labelled pieces in a worker process, ``split`` assigns
train/val/test by source piece, and ``build`` runs the pool, the cache and writes
``manifest.jsonl`` and ``report.json``.
"""
