"""Generation: ids in, ids out, every step masked by the token grammar.

``sampling`` is the pure sampling function (temperature, top-k, top-p, guidance),
``cpu_decoder`` steps one token at a time in numpy on the CPU (no torch: the command
line writes music without importing it), ``torch_decoder`` is the model's own cached
pass for GPUs and half precision, ``decode`` runs the
incremental, grammar-masked decoding loop, ``continuation`` prepares prompts and joins
continuations, and ``fit`` makes a piece exactly N bars long.
"""
