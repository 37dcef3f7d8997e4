"""Generated samples for the evaluation: one seeded batch per style, and their validity."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from composer.evaluate.config import EvaluateConfig, Progress, chosen_styles

if TYPE_CHECKING:
    import symusic

    from composer.api import Composer


@dataclass
class Sample:
    style: str
    number: int
    score: symusic.Score
    valid: bool  # the tokens walk the grammar and decode to notes
    exact_bars: bool  # exactly the requested number of bars, after fitting (see validity)
    bars: tuple[int, int] = (0, 0)  # bars opened by the tokens, bars of the written score
    ending: str = ""  # how decoding ended (composer.generate.decode.ENDINGS)
    model_closed: bool = False  # the model itself ended the piece at the requested bars
    forced_bars: int = 0  # bar lines the decoder forced (a bar ran past max_entries_per_bar)
    features: np.ndarray = field(default_factory=lambda: np.zeros(0))


def generate_samples(config: EvaluateConfig, composer: Composer,
                     progress: Progress | None = None, candidates: int = 1) -> list[Sample]:
    """``config.samples`` pieces per style, one batch per style, fixed seeds; with
    ``candidates`` > 1 the critic keeps each sample from that many."""
    from composer.music.facts import count_bars

    grammar = composer.tokenizer.grammar
    samples = []
    styles = chosen_styles(config, composer)
    stage = "generate" if candidates == 1 else f"generate (best of {candidates})"
    if progress:
        progress(stage, 0, len(styles))
    for done, style in enumerate(styles, 1):
        pieces = composer.generate(style, bars=config.bars, seed=config.seed, num=config.samples,
                                   candidates=candidates)
        for number, piece in enumerate(pieces if isinstance(pieces, list) else [pieces], 1):
            # generate() has already decoded the ids into piece.score (a decoding failure
            # raises there); check the tokens' grammar, and that notes came out
            valid = grammar.accepts(piece.ids) and piece.score.note_num() > 0
            bars = (grammar.bars_done(piece.ids), count_bars(piece.score))
            exact = bars == (config.bars, config.bars)
            samples.append(Sample(style, number, piece.score, valid, exact, bars, piece.ending,
                                  piece.model_closed, piece.forced_bars))
        if progress:
            progress(stage, done, len(styles))
    return samples


def validity(samples: list[Sample]) -> dict[str, Any]:
    """Do the samples decode, with the bars asked for, and who closed them?

    ``exact_bars`` counts the scores with exactly the requested bars *after fitting*:
    the decoder turns a bar line past the last bar into the end and ``fit_to_bars`` cuts
    the score there, so it measures the decoder more than the model. ``model_closed``
    counts the samples the model itself ended at the requested bars, before any fitting
    or forced closing: it chose EOS, or chose to open the next bar right after a complete
    note, and no bar line of the piece was forced by ``max_entries_per_bar``.
    """
    from composer.generate.decode import ENDINGS

    count = len(samples)
    failed = [{"style": s.style, "sample": s.number, "valid": s.valid, "bars_in_tokens": s.bars[0],
               "bars_in_score": s.bars[1]} for s in samples if not (s.valid and s.exact_bars)]
    endings = {name: {"samples": sum(s.ending == name for s in samples), "meaning": meaning}
               for name, meaning in ENDINGS.items()}
    return {"samples": count, "decodable": sum(s.valid for s in samples),
            "exact_bars": sum(s.exact_bars for s in samples),
            "model_closed": sum(s.model_closed for s in samples),
            "forced_bar_lines": sum(s.forced_bars > 0 for s in samples),  # samples with one or more
            "endings": {name: e for name, e in endings.items() if e["samples"]},
            "failed": failed,
            "rate": sum(s.valid and s.exact_bars for s in samples) / count if count else float("nan")}
