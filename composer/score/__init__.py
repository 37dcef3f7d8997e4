"""Sheet music: a ``symusic.Score`` → MusicXML, SVG, PNG or PDF.

``plan`` decides parts, staves, clefs, grid and key; ``meter``, ``layout`` and
``beams`` turn notes into notatable durations, ties, tuplets and beams bar by bar;
``voices`` and ``staves`` separate lines and place them on staves; ``build`` makes the
music21 stream; ``render`` writes MusicXML and engraves pages with verovio; ``write``
is the entry point; ``quality`` checks the result.
"""
