"""Generation: ids in, ids out, every step masked by the token grammar.

``sampling`` is the pure sampling function (temperature, top-k, top-p, guidance),
``cpu_decoder`` steps one token at a time in numpy on the CPU, ``decode`` runs the
incremental, grammar-masked decoding loop, ``continuation`` prepares prompts and joins
continuations, and ``fit`` makes a piece exactly N bars long.
"""
