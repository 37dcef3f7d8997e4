"""Is the music any good? Metrics on models and on generated music.

Bits per note against n-gram baselines (``ngram``, and ``composer.model.likelihood``), an independent style
judge on note features (``note_features``, ``style_classifier``), key consistency,
novelty against the training pieces, distribution overlap, and ``run``, which wires them
into ``composer evaluate`` with a report (``report``) and plots (``plots``).
"""

from composer.api import DEFAULT_CANDIDATES

CRITIC_CANDIDATES = DEFAULT_CANDIDATES  # the evaluation's second column: what the command line keeps
# Generated pieces per style. A share judged from 20 pieces has a standard error of up to
# 0.11, too coarse for a per-style goal of 0.5; 40 bring it to 0.08 (the report gives each
# style's 95 % interval)
SAMPLES_PER_STYLE = 40
