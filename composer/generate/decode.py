"""Decoding: token ids in, token ids out.

Incremental decoding with the KV cache, N samples as one batch, grammar masks so every
sample decodes, exactly N bars, classifier-free guidance against ``Style_any``, and a
sliding context that keeps the style token so a piece can outgrow the training context.
No tokenizer and no files here: the grammar and the ids are given.

Each sample also says how it ended (``Decoded.ending``): the decoder guarantees N bars,
so "exactly N bars" alone cannot tell a model that closes its pieces from one that is
cut off; ``Decoded.model_closed`` can.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

import numpy as np

from composer.generate.sampling import SamplingSettings, UniformStream, guided_logits, sample_next

if TYPE_CHECKING:
    from collections.abc import Callable

    from composer.generate.counterpoint import LineState, VoiceLeadingRule
    from composer.generate.line_prior import LinePrior
    from composer.generate.melody_lock import MelodyLock
    from composer.generate.voicing import OnsetRules
    from composer.tokens.grammar import TokenGrammar


# How a sample ended. Only the first two are the model's own doing.
ENDINGS = {
    "eos": "the model wrote EOS at the last bar",
    "next_bar": "the model opened the bar after the last one, after a complete note; "
                "that bar line became the end (EOS) and nothing was added",
    "next_bar_completed": "the model opened the bar after the last one before the piece could "
                          "end (its last bar empty, or a tempo without a note); the decoder "
                          "wrote the shortest ending, a note, into the last bar",
    "bar_limit": "the last bar ran past max_entries_per_bar; the decoder closed the piece",
    "budget": "the decoding budget ran out; the decoder closed the piece",
    "prompt": "the prompt was already a finished piece",
}
MODEL_ENDINGS = ("eos", "next_bar")


@dataclass(frozen=True)
class Decoded:
    """One finished sample: its ids (prompt included) and how it ended."""

    ids: list[int]
    ending: str  # a key of ENDINGS
    forced_bars: int = 0  # bar lines the decoder forced because a bar ran past max_entries_per_bar
    # with guidance: Σ log p(entry | prefix) − log p(entry | unconditional prefix), in nats,
    # over the entries the model chose (None without guidance); the critic's style term for free
    guidance_margin: float | None = None

    @property
    def model_closed(self) -> bool:
        return closed_by_model(self.ending, self.forced_bars)


def closed_by_model(ending: str, forced_bars: int) -> bool:
    """The model itself ended the piece at the bars asked for: it chose EOS, or chose to
    open the next bar right after a complete note, and every bar line before was its own."""
    return ending in MODEL_ENDINGS and forced_bars == 0


@dataclass(frozen=True)
class DecodeSpec:
    bars: int  # total bars the finished sequence holds (prompt bars included)
    sampling: SamplingSettings = field(default_factory=SamplingSettings)
    style_strength: float = 1.0  # classifier-free guidance weight; 1 turns it off
    max_entries_per_bar: int = 256  # a bar that grows longer than this is closed
    context_keep: float = 0.75  # share of the context kept when the window slides
    lock_meter: bool = True  # once a piece has a meter it keeps it (corpus pieces rarely change)


def row_mask(
    grammar: TokenGrammar,
    state: int,
    bars: int,
    target: int,
    control: np.ndarray | None,
    force_bar: bool = False,
) -> np.ndarray:
    """Allowed entries (V,) for one row: the grammar, the controls, no EOS before bar ``target``.

    ``bars`` is how many bars the row has opened. ``force_bar`` (a bar that ran too long)
    keeps only entries that open the next bar, where the grammar allows one here, else
    entries that step closer to a complete note. Where ``control`` excludes every way on,
    the grammar alone decides (the controls are wishes, a decodable piece is a promise).
    """
    allowed = grammar.allowed[state].copy()
    if control is not None:
        allowed &= control
    if force_bar:
        opening = allowed & (grammar.bars_in_entry > 0)
        if opening.any():
            return opening
        # no bar may open here (mid-note, say): take a step closer to a complete note
        after = grammar.transition[state]
        closer = (
            allowed
            & (after >= 0)
            & (grammar.steps_to_end[np.maximum(after, 0)] < grammar.steps_to_end[state])
        )
        if bars < target:
            closer[grammar.eos_id] = False  # closer to the end, but the piece is not long enough
        if closer.any():
            return closer
    if bars < target:
        allowed[grammar.eos_id] = False
    if not allowed.any():  # controls excluded every way on: fall back to the grammar alone
        allowed = grammar.allowed[state].copy()
        if bars < target and allowed.sum() > 1:
            allowed[grammar.eos_id] = False
    return allowed


def _meter_control(grammar: TokenGrammar, meter: str | None, control: np.ndarray | None,
                   cache: dict[str, np.ndarray]) -> np.ndarray | None:
    """``control``, narrowed to ``meter`` (the row's meter so far, if it has one)."""
    if meter is None:
        return control
    if meter not in cache:
        cache[meter] = grammar.control_mask(meters={meter})
    return cache[meter] if control is None else control & cache[meter]


class Decoder(Protocol):
    """What ``decode`` needs of a decoder: ``NumpyDecoder``, or ``TorchDecoder`` for GPUs."""

    @property
    def pos(self) -> int: ...

    @property
    def block_size(self) -> int: ...

    def session(self) -> AbstractContextManager[object]: ...

    def start(self, ids: np.ndarray) -> np.ndarray: ...

    def step(self, ids: np.ndarray) -> np.ndarray: ...

    def reorder(self, rows: np.ndarray) -> None: ...


class _Context:
    """Token history of every row and the KV cache over its most recent window."""

    def __init__(self, decoder: Decoder, rows: list[list[int]], keep: float, prefix_len: int = 1) -> None:
        self.rows = rows  # full sequences, style token (and key token) first
        self.block = decoder.block_size
        self.keep = keep
        self.decoder = decoder
        self.prefix_len = prefix_len

    def _window(self, row: list[int]) -> list[int]:
        if len(row) <= self.block:
            return row
        tail = max(1, int(self.block * self.keep)) - self.prefix_len
        return [*row[:self.prefix_len], *row[-tail:]]

    def prefill(self) -> np.ndarray:
        """Forward over every row's window; logits of the last position (B, V)."""
        windows = np.array([self._window(r) for r in self.rows], dtype=np.int64)  # (B, T)
        return self.decoder.start(windows)

    def step(self, new_ids: list[int]) -> np.ndarray:
        for row, token in zip(self.rows, new_ids, strict=True):
            row.append(token)
        if self.decoder.pos + 1 > self.block:
            return self.prefill()  # the window slides: re-encode the prefix + recent tokens
        return self.decoder.step(np.array(new_ids, dtype=np.int64))


def _log_prob_gain(conditional: np.ndarray, unconditional: np.ndarray, picks: list[int]) -> list[float]:
    """Per row, log p(pick | condition) − log p(pick | none) from raw logits (n, V)."""
    return (_log_probs(conditional, picks) - _log_probs(unconditional, picks)).tolist()


def _log_probs(logits: np.ndarray, picks: list[int]) -> np.ndarray:
    """Per row, log-softmax of logits (n, V) at ``picks`` (n,)."""
    top = logits.max(axis=1)  # (n,)
    chosen = logits[np.arange(len(picks)), picks]  # (n,)
    return chosen - top - np.log(np.exp(logits - top[:, None]).sum(axis=1))


def _log_mass(scores: np.ndarray, kept: np.ndarray, before: np.ndarray, temperature: float) -> float:
    """log of the share of the sampling distribution (V,) on ``kept`` among ``before``."""
    scaled = scores.astype(np.float64) / (temperature if temperature > 0 else 1.0)
    top = scaled[before].max()
    return float(np.log(np.exp(scaled[kept] - top).sum()) - np.log(np.exp(scaled[before] - top).sum()))


def resample_threshold(particles: int) -> float:
    """The effective sample size below which a run of ``particles`` (two or more) is
    resampled: half of them, as is usual, but 1.5 for a pair, whose effective size never
    falls below 1 (a pair is resampled once one particle carries more than 0.79 of the weight)."""
    return max(particles / 2, 1.5)


def _resampled(log_weights: np.ndarray, particles: int, finished: list[bool], rng: UniformStream
               ) -> np.ndarray | None:
    """New row order (n,) after systematic resampling of each run of ``particles`` rows whose
    effective sample size fell below ``resample_threshold``; None when no run needs it."""
    order = np.arange(len(log_weights))
    threshold = resample_threshold(particles)
    changed = False
    for first in range(0, len(log_weights), particles):
        run = slice(first, first + particles)
        if all(finished[run]):
            continue
        weights = np.exp(log_weights[run] - log_weights[run].max())
        weights /= weights.sum()
        if 1.0 / float((weights ** 2).sum()) >= threshold:
            continue
        points = (float(rng.random(1)[0]) + np.arange(particles)) / particles  # (P,)
        picks = np.minimum(np.searchsorted(np.cumsum(weights), points), particles - 1)
        order[run] = first + picks
        changed = True
    return order if changed else None


MAX_RESAMPLES = 16  # draws before the decoder looks through every allowed entry for the least fault


def _resample_breaking(lines: VoiceLeadingRule, state: LineState, pick: int, scores: np.ndarray,
                       mask: np.ndarray, spec: DecodeSpec, rng: UniformStream) -> int:
    """``pick``, or where it breaks the rule of ``lines``, a new draw from ``scores`` (V,)
    without it (``mask`` (V,) is narrowed in place), up to ``MAX_RESAMPLES`` times; then,
    of every entry ``mask`` first allowed, the likeliest that breaks the rule least."""
    allowed = np.flatnonzero(mask)
    for _ in range(MAX_RESAMPLES):
        if not lines.breaks(state, pick):
            return pick
        mask[pick] = False
        if not mask.any():
            break
        pick = int(sample_next(scores[None, :], spec.sampling, rng, mask[None, :])[0])
    else:
        if not lines.breaks(state, pick):
            return pick
    # a clash rather than parallel fifths, and of equal faults the likeliest
    ranked = ((lines.fault(state, entry), -float(scores[entry]), entry) for entry in allowed.tolist())
    return int(min(ranked)[2])


def decode(
    decoder: Decoder,
    grammar: TokenGrammar,
    prompts: list[list[int]],
    spec: DecodeSpec,
    rng: UniformStream,
    control: np.ndarray | None = None,
    unconditional: tuple[int | None, ...] | None = None,
    prefix_len: int = 1,
    onsets: OnsetRules | None = None,
    lines: VoiceLeadingRule | None = None,
    lock: MelodyLock | None = None,
    particles: int = 1,
    potential: Callable[[list[int]], float] | None = None,
    prior: LinePrior | None = None,
) -> list[Decoded]:
    """Continue every prompt (style token first; same length for all) to ``spec.bars`` bars.

    Returns, per prompt, a complete sequence (prompt included) that the grammar accepts,
    ending in EOS, and how it ended. With ``spec.style_strength != 1`` a second batch of
    rows supplies the condition-free logits for guidance: their prefix is the prompt's with
    each token of ``unconditional`` that is not None put in its place (``Style_any``, and
    ``Key_any`` to guide the key as well). ``decoder`` may be kept between calls: it
    prepares weights once; ``rng`` supplies the randomness. ``prefix_len`` tokens (style, key) stay at
    the head of the context when it slides; ``onsets`` keeps positions moving forward in a bar and limits
    how many notes a voice starts at one onset (one for a singer, two for a violin); ``lines``
    samples again, without it, an entry that moves two voices in parallel fifths or octaves;
    ``lock`` makes one voice write a given melody note for note (it outranks every other rule);
    ``prior`` mixes a line model into the choice of each voice's next note.

    With a ``lock`` and ``particles > 1``, each run of ``particles`` prompts is one particle
    filter (sequential Monte Carlo): a row's weight is the probability the model gave the
    melody where the lock forced it, and when the weights grow uneven the rows are
    resampled by them, so that the harmony the model wrote before a melody note is kept
    in the measure that it expected that note. The melody shapes the harmony before it
    arrives, as far as the model can foresee it (Lew et al. 2023, "Sequential Monte Carlo
    steering of large language models"). ``potential`` (a row's ids so far → log-weight)
    twists the filter: each time the lock forces a melody note, a row's weight also gains
    the change in its potential since the last one.

    Without a lock, ``particles > 1`` and a ``potential`` make a filter of the potential
    alone: it is asked each time a row opens a bar or ends, and a row's log-weight gains
    the change in its potential since it was last asked (twisted sequential Monte Carlo,
    the model's own samples the proposal); ``continue`` steers toward its prompt's key
    this way.
    """
    with decoder.session():  # e.g. numpy's BLAS on one thread
        if len({len(p) for p in prompts}) != 1:
            raise ValueError("all prompts must have the same length")
        n = len(prompts)
        guided = spec.style_strength != 1.0 and unconditional is not None
        rows = [list(p) for p in prompts]
        if guided:
            head = len(unconditional)
            rows += [[*(t if u is None else u for t, u in zip(p[:head], unconditional, strict=True)),
                      *p[head:]] for p in prompts]
        states, bars = [], []
        for prompt in prompts:
            state, opened = grammar.walk(prompt)
            states.append(state)
            bars.append(opened)
        finished = [grammar.is_complete(s) for s in states]
        endings = ["prompt" if done else "" for done in finished]
        forced_bars = [0] * n
        margins = [0.0] * n
        results = [list(p) for p in prompts]  # what each sample really says (context rows get padding)
        entries_in_bar = [0] * n
        meter_masks: dict[str, np.ndarray] = {}
        row_meters = [grammar.states[s].meter for s in states]  # the meter each row has settled on

        def row_control(i: int) -> np.ndarray | None:
            if not spec.lock_meter:
                return control
            return _meter_control(grammar, row_meters[i], control, meter_masks)

        def close(i: int, ending: str) -> int:
            """End row ``i`` the shortest way that opens no bar; returns the last entry (EOS)."""
            control_i = row_control(i)
            if lock is not None:  # the shortest ending must not give the melody's voice a note
                control_i = lock.silent if control_i is None else control_i & lock.silent
            tail = grammar.closing(states[i], control_i)
            results[i].extend(tail)
            bars[i] += sum(int(grammar.bars_in_entry[token]) for token in tail)
            states[i] = grammar.end_state
            endings[i] = ending
            return tail[-1]

        onset_states = [onsets.start(p) for p in prompts] if onsets is not None else []
        line_states = [lines.start(p) for p in prompts] if lines is not None else []
        lock_states = [lock.start(p) for p in prompts] if lock is not None else []
        prior_states = [prior.start(p) for p in prompts] if prior is not None else []
        filtering = particles > 1 and (lock is not None or potential is not None)
        at_bar_lines = filtering and lock is None  # the potential alone, asked at bar lines
        if filtering and n % particles:
            raise ValueError(f"{n} prompts do not make runs of {particles} particles")
        # (n,) since the last resampling: the melody's log-probability and the potential's change
        log_weights = np.zeros(n)
        potentials = np.zeros(n)  # (n,) each row's potential when it was last asked

        def reweigh(i: int) -> None:
            """Row ``i``'s log-weight gains the change in its potential since last asked."""
            value = potential(results[i]) if potential is not None else 0.0
            log_weights[i] += value - potentials[i]
            potentials[i] = value
        lock_advancing = lock.advancing if lock is not None else None
        context = _Context(decoder, rows, spec.context_keep, prefix_len)
        logits = context.prefill()
        budget = (spec.bars + 1) * (spec.max_entries_per_bar + 16)  # a safety net, never reached
        if lock is not None:  # a bar cannot close before its melody notes: room for writing them
            budget += 16 * len(lock.notes)
        while not all(finished):
            budget -= 1
            if budget < 0:
                for i in range(n):
                    if not finished[i]:
                        close(i, "budget")
                        finished[i] = True
                break
            scores = logits[:n]
            if guided:
                scores = guided_logits(logits[:n], logits[n:], spec.style_strength)
            runaway = [entries_in_bar[i] >= spec.max_entries_per_bar for i in range(n)]
            forcing = [runaway[i] and bars[i] < spec.bars for i in range(n)]
            masks = np.stack([row_mask(grammar, states[i], bars[i], spec.bars, row_control(i),
                                       force_bar=forcing[i]) for i in range(n)])  # (n, V)
            if onsets is not None:
                for i in range(n):
                    onsets.restrict(masks[i], onset_states[i])
            if lock is not None:
                for i in range(n):
                    if finished[i]:
                        continue
                    before = masks[i].copy()  # masks[i] is a view that the lock's choice replaces
                    kept = lock.restrict(before, lock_states[i])
                    if not kept.any() and forcing[i]:  # the bar cannot close before its melody notes
                        unforced = row_mask(grammar, states[i], bars[i], spec.bars, row_control(i))
                        if onsets is not None:
                            onsets.restrict(unforced, onset_states[i])
                        kept = lock.restrict(unforced, lock_states[i])
                    if forcing[i] and (kept & lock_advancing).any():
                        kept = kept & lock_advancing  # a runaway bar: on to the melody's next note
                    if not kept.any():
                        kept = lock.restrict(grammar.allowed[states[i]], lock_states[i])
                    if kept.any():
                        masks[i] = kept
                        if filtering and not np.array_equal(kept, before):
                            log_weights[i] += _log_mass(scores[i], kept, before, spec.sampling.temperature)
                            if potential is not None:
                                reweigh(i)
            if prior is not None:
                scores = np.stack([scores[i] if finished[i] else
                                   prior.twist(scores[i], masks[i], prior_states[i]) for i in range(n)])
            picks = sample_next(scores, spec.sampling, rng, masks).tolist()
            if lines is not None:
                for i in range(n):
                    if not finished[i]:
                        picks[i] = _resample_breaking(lines, line_states[i], picks[i], scores[i],
                                                      masks[i], spec, rng)
            if guided:
                gain = _log_prob_gain(logits[:n], logits[n:], picks)
            new_ids: list[int] = []
            for i, entry in enumerate(picks):
                if finished[i]:
                    new_ids.append(grammar.pad_id)
                    continue
                opens_bar = grammar.bars_in_entry[entry] > 0
                if runaway[i] and bars[i] >= spec.bars:  # the last bar ran away: the piece ends here
                    entry = close(i, "bar_limit")
                elif opens_bar and bars[i] >= spec.bars:  # the model is done with the last bar
                    entry = close(i, "next_bar" if grammar.can_end[states[i]] else "next_bar_completed")
                else:
                    states[i] = grammar.next_state(states[i], entry)
                    bars[i] += int(grammar.bars_in_entry[entry])
                    entries_in_bar[i] = 0 if opens_bar else entries_in_bar[i] + 1
                    forced_bars[i] += int(forcing[i] and opens_bar)
                    results[i].append(entry)
                    if guided:
                        margins[i] += gain[i]
                    if onsets is not None:
                        onset_states[i] = onsets.after_entry(onset_states[i], entry)
                    if lines is not None:
                        line_states[i] = lines.after_entry(line_states[i], entry)
                    if lock is not None:
                        lock_states[i] = lock.after_entry(lock_states[i], entry) or lock_states[i]
                    if prior is not None:
                        prior_states[i] = prior.after_entry(prior_states[i], entry)
                    if entry == grammar.eos_id:
                        endings[i] = "eos"
                finished[i] = grammar.is_complete(states[i])
                row_meters[i] = grammar.states[states[i]].meter or row_meters[i]
                new_ids.append(entry)
                if at_bar_lines and (opens_bar or finished[i]):
                    reweigh(i)
            if all(finished):
                break
            logits = context.step(new_ids + (new_ids if guided else []))
            if filtering:
                rows_now = _resampled(log_weights, particles, finished, rng)
                if rows_now is not None:
                    everything = np.concatenate([rows_now, rows_now + n]) if guided else rows_now
                    logits = logits[everything]
                    decoder.reorder(everything)
                    context.rows = [list(context.rows[k]) for k in everything.tolist()]
                    order = rows_now.tolist()
                    states, bars = [states[k] for k in order], [bars[k] for k in order]
                    finished, endings = [finished[k] for k in order], [endings[k] for k in order]
                    forced_bars, margins = [forced_bars[k] for k in order], [margins[k] for k in order]
                    results = [list(results[k]) for k in order]
                    entries_in_bar = [entries_in_bar[k] for k in order]
                    row_meters = [row_meters[k] for k in order]
                    onset_states = [onset_states[k] for k in order] if onsets is not None else []
                    line_states = [line_states[k] for k in order] if lines is not None else []
                    lock_states = [lock_states[k] for k in order] if lock is not None else []
                    prior_states = [prior_states[k] for k in order] if prior is not None else []
                    potentials = potentials[rows_now]
                    log_weights[:] = 0.0
        return [Decoded(ids, ending, forced, margin if guided else None)
                for ids, ending, forced, margin in zip(results, endings, forced_bars, margins, strict=True)]


def continuation_log_probs(decoder: Decoder, prompts: list[list[int]], continuation: list[int],
                           prefix_len: int = 1, keep: float = 0.75) -> list[float]:
    """Per prompt, log p(``continuation`` | prompt) in nats, by the model without guidance.

    Prompts of different lengths go one at a time; the context slides as in ``decode``.
    """
    scores = []
    with decoder.session():
        for prompt in prompts:
            context = _Context(decoder, [list(prompt)], keep, prefix_len)
            logits = context.prefill()
            total = 0.0
            for token in continuation:
                total += float(_log_probs(logits.astype(np.float64), [token])[0])
                logits = context.step([token])
            scores.append(total)
    return scores

