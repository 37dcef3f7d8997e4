"""What every evaluation step shares: the settings, the corpus it reads, progress callbacks."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from composer.api import CONTINUE_CANDIDATES
from composer.errors import ConfigError
from composer.evaluate import CRITIC_CANDIDATES, SAMPLES_PER_STYLE

if TYPE_CHECKING:
    import symusic

    from composer.api import Composer

Progress = Callable[[str, int, int], None]
"""(stage, done, total): drives one progress bar per stage."""



@dataclass
class EvaluateConfig:
    corpus_dir: Path  # a built corpus (manifest.jsonl + midi/)
    out_dir: Path  # REPORT_DIR
    model: Path | None = None  # bundle folder; None = the default model
    tokens_dir: Path | None = None  # shards made with the model's tokenizer; None = tokenize here
    split: str = "val"  # split for bits per note
    samples: int = SAMPLES_PER_STYLE  # generated pieces per style
    bars: int = 16  # bars per generated piece
    prompts: int = 10  # continuations per style, for key keeping
    prompt_bars: int = 4  # bars of a test piece given as the prompt
    continuation_bars: int = 8
    ngram_order: int = 5
    judge_pieces: int = 400  # train pieces per style the style classifier learns from
    reference_pieces: int = 100  # train pieces per style the distributions are compared with
    styles: tuple[str, ...] | None = None  # None = every style of the model
    seed: int = 0
    workers: int = 0  # tokenizing processes; 0 = one per core
    piano_rolls: int = 4  # sample piano rolls to draw
    candidates: int = CRITIC_CANDIDATES  # the critic's candidates per sample; one candidate is judged too
    # candidates of each continuation, steered toward the prompt's key; one is measured too
    continue_candidates: int = CONTINUE_CANDIDATES
    tune_styles: tuple[str, ...] = ("irish", "german_folk", "bach")  # styles the typed-in tunes go on in
    harmonizations: int = 40  # held-out chorales harmonized from their soprano
    harmonize_candidates: int = 8  # particles of each harmonization
    variations: int = 3  # held-out pieces per style with bars 5-8 rewritten

    def validate(self) -> None:
        for name in ("samples", "bars", "prompt_bars", "continuation_bars", "ngram_order"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name.replace('_', '-')} must be at least 1")
        if not 1 <= self.candidates <= 64 or not 1 <= self.continue_candidates <= 64:
            raise ConfigError("candidates must be 1 to 64")
        if self.prompts < 0:
            raise ConfigError("prompts must be 0 or more")


@dataclass
class Corpus:
    """The pieces the evaluation reads, per style and split."""

    root: Path
    records: list[dict[str, Any]]
    scores: dict[str, symusic.Score] = field(default_factory=dict)

    def pieces(self, style: str, split: str) -> list[dict[str, Any]]:
        return [r for r in self.records if r["style"] == style and r["split"] == split]

    def score(self, record: dict[str, Any], keep: bool = True) -> symusic.Score:
        """The piece's score; ``keep=False`` reads it without holding on to it."""
        import symusic

        if record["id"] in self.scores:
            return self.scores[record["id"]]
        score = symusic.Score.from_file(str(self.root / record["midi"]))
        if keep:
            self.scores[record["id"]] = score
        return score


def sample_rows(rows: list[dict[str, Any]], limit: int, seed: int) -> list[dict[str, Any]]:
    if len(rows) <= limit:
        return rows
    picked = np.random.default_rng(seed).choice(len(rows), size=limit, replace=False)
    return [rows[i] for i in sorted(picked)]


def chosen_styles(config: EvaluateConfig, composer: Composer) -> list[str]:
    known = composer.styles
    if config.styles is None:
        return known
    unknown = sorted(set(config.styles) - set(known))
    if unknown:
        raise ConfigError(f"unknown style {', '.join(unknown)}; this model knows {', '.join(known)}")
    return [s for s in known if s in config.styles]
