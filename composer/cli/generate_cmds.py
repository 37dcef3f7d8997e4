"""``composer generate`` and ``composer continue``."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any, NamedTuple

import click

from composer.api import (
    CONTINUE_CANDIDATES,
    DEFAULT_CANDIDATES,
    DEFAULT_STYLE_STRENGTH,
    DEFAULT_TEMPERATURE,
    DEFAULT_TOP_P,
    HARMONIZE_CANDIDATES,
    HARMONY_VOICES,
    KEY_WEIGHT,
    LINE_WEIGHT,
    TEMPO_RANGE,
    VARY_CANDIDATES,
)


def _path_option(flag: str, name: str, text: str) -> Any:
    return click.option(flag, name, type=click.Path(path_type=Path), default=None, help=text)


_bars_option = click.option("--bars", type=int, default=None, help="Bars to write.")


def _sampling_options(function: Any) -> Any:
    options = [
        click.option(
            "--model",
            "model",
            type=click.Path(path_type=Path),
            default=None,
            help="Model bundle folder (default: $COMPOSER_MODEL or the shipped model).",
        ),
        click.option(
            "--tempo", type=click.FloatRange(*TEMPO_RANGE), default=None,
            help="Tempo in quarter notes per minute."
        ),
        click.option("--time-signature", default=None, help="Meter, e.g. 3/4 or 6/8."),
        click.option("--key", default=None,
                     help="Key to write in, e.g. D, F#m, 'Bb major' (default: generate draws one per "
                          "piece from the style's keys, continue keeps the prompt's)."),
        click.option("--strict-key", is_flag=True,
                     help="Also leave out every pitch outside the key's scale."),
        click.option("--candidates", type=int, default=None,
                     help=f"Write this many candidates per piece and keep the one the critic "
                          f"likes best (1-64; default {DEFAULT_CANDIDATES} for generate, "
                          f"{CONTINUE_CANDIDATES} for continue, {HARMONIZE_CANDIDATES} for "
                          f"harmonize, {VARY_CANDIDATES} for vary)."),
        click.option("--avoid-parallels/--allow-parallels", "avoid_parallels", default=None,
                     help="Refuse (or allow) parallel fifths and octaves between voices, and "
                          "voices struck together a semitone apart (default: refused in bach "
                          "and palestrina)."),
        click.option(
            "--instrument",
            "instruments",
            multiple=True,
            help="GM instrument the parts may use (repeatable), e.g. violin, choir, 40.",
        ),
        click.option(
            "--temperature",
            type=click.FloatRange(min=0),
            default=DEFAULT_TEMPERATURE,
            show_default=True,
            help="Randomness; 0 always takes the most likely token.",
        ),
        click.option(
            "--top-k",
            type=click.IntRange(min=0),
            default=0,
            show_default=True,
            help="Sample among the k most likely tokens; 0 = all.",
        ),
        click.option(
            "--top-p",
            type=click.FloatRange(0, 1, min_open=True),
            default=DEFAULT_TOP_P,
            show_default=True,
            help="Nucleus sampling threshold.",
        ),
        click.option(
            "--seed",
            type=int,
            default=0,
            show_default=True,
            help="Same seed and settings give the same music.",
        ),
        click.option(
            "--num",
            type=click.IntRange(1, 64),
            default=1,
            show_default=True,
            help="Pieces to write: OUT-1.mid … OUT-N.mid.",
        ),
        click.option(
            "--style-strength",
            type=click.FloatRange(min=0),
            default=DEFAULT_STYLE_STRENGTH,
            show_default=True,
            help="Classifier-free guidance towards the style and key; 1 = off, 2-3 = stronger.",
        ),
        click.option(
            "-o", "--out", "out", type=click.Path(path_type=Path), required=True, help="MIDI file to write."
        ),
        _path_option("--score", "score_path", "Also write sheet music: .pdf, .svg, .png, .musicxml or .mxl."),
        _path_option("--audio", "audio_path",
                     "Also write audio: .wav or .flac (needs FluidSynth and a SoundFont)."),
        _path_option("--soundfont", "soundfont",
                     "SF2/SF3 SoundFont for --audio (default: $COMPOSER_SOUNDFONT or the system's)."),
        click.option("--force", is_flag=True, help="Overwrite existing files."),
    ]
    for option in reversed(options):
        function = option(function)
    return function


_key_weight_option = click.option(
    "--key-weight", type=click.FloatRange(min=0), default=KEY_WEIGHT, show_default=True,
    help="How hard the candidates are steered toward the key signature of the bars before "
         "them; 0 lets the new bars wander (and modulate) as the model likes.")


_line_weight_option = click.option(
    "--line-weight", type=float, default=LINE_WEIGHT, show_default=True,
    help="How far each voice's steps are pulled toward those of the style's corpus (the "
         "model alone writes too few semitone steps and too many leaps); 0 turns it off, at "
         "most 10.")


def _options(kwargs: dict[str, Any]) -> dict[str, Any]:
    """The sampling options given; without --candidates each command keeps its own default."""
    from composer.music.instruments import program_for

    chosen = {} if kwargs["candidates"] is None else {"candidates": kwargs["candidates"]}
    for name in ("key_weight", "plan_chords", "line_weight"):  # options of some commands only
        if name in kwargs:
            chosen[name] = kwargs[name]
    return chosen | {
        "temperature": kwargs["temperature"],
        "top_k": kwargs["top_k"],
        "top_p": kwargs["top_p"],
        "style_strength": kwargs["style_strength"],
        "key": kwargs["key"],
        "strict_key": kwargs["strict_key"],
        "instruments": tuple(program_for(i) for i in kwargs["instruments"]) or None,
        "time_signature": kwargs["time_signature"],
        "tempo": kwargs["tempo"],
        "avoid_parallels": kwargs["avoid_parallels"],
    }


class _Target(NamedTuple):
    """Where one piece goes: its MIDI file, and its sheet music and audio if asked for."""

    midi: Path
    score: Path | None
    audio: Path | None


def _check_outputs(
    out: Path,
    score_path: Path | None,
    num: int,
    force: bool,
    audio_path: Path | None = None,
    soundfont: Path | None = None,
) -> list[_Target]:
    """Every output checked before the model runs, so that nothing is written on a refusal."""
    from composer.io.outputs import check_output, numbered_paths

    midis = numbered_paths(out, num)
    scores: list[Path | None] = list(numbered_paths(score_path, num)) if score_path else [None] * num
    audios: list[Path | None] = list(numbered_paths(audio_path, num)) if audio_path else [None] * num
    for path in [*midis, *[s for s in scores if s is not None]]:
        check_output(path, force)
    if score_path is not None:  # PDF/PNG need cairo: say so before the model runs or a file is written
        from composer.score.render import check_score_backend

        check_score_backend(score_path)
    if audio_path is not None:  # the suffix, the SoundFont and FluidSynth, before any work
        from composer.audio.render import check_audio_output

        for path in numbered_paths(audio_path, num):
            check_audio_output(path, soundfont=soundfont, force=force)
    return [_Target(*target) for target in zip(midis, scores, audios, strict=True)]


def _read_early(source: str) -> None:
    """Read a file argument once before the model loads, so a bad file fails fast (what
    reading repairs is said when the command reads it again; note text is read then)."""
    from composer.io.reader import is_note_text, read_score

    if not is_note_text(source):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            read_score(Path(source))


def _write_pieces(source: str, kwargs: dict[str, Any], make: Any) -> None:
    """A command's run: outputs checked and ``source`` read before the model loads, then
    ``make(composer, options)`` writes the pieces, which are saved."""
    from composer.api import Composer

    out, score_path, force = kwargs.pop("out"), kwargs.pop("score_path"), kwargs.pop("force")
    audio_path, soundfont = kwargs.pop("audio_path"), kwargs.pop("soundfont")
    targets = _check_outputs(out, score_path, kwargs["num"], force, audio_path, soundfont)
    _read_early(source)
    composer = Composer.load(kwargs.pop("model"))
    _save(make(composer, kwargs), targets, force, soundfont)


def _save(pieces: Any, targets: list[_Target], force: bool, soundfont: Path | None = None) -> None:
    pieces = pieces if isinstance(pieces, list) else [pieces]
    for piece, target in zip(pieces, targets, strict=True):
        piece.save_midi(target.midi, force=force)
        also: list[Path] = []
        if target.score is not None:
            also += piece.save_score(target.score, force=force)
        if target.audio is not None:
            also.append(piece.save_audio(target.audio, soundfont=soundfont, force=force))
        line = f"wrote {target.midi}"
        if also:
            line += " and " + ", ".join(str(p) for p in also)
        click.echo(line)


@click.command(
    epilog="""\b
Examples:
  composer generate --style bach --bars 16 -o chorale.mid --score chorale.pdf
  composer generate --style irish --bars 16 --key D --tempo 110 -o reel.mid
  composer generate --style palestrina --num 4 --seed 7 -o mass.mid      # mass-1.mid … mass-4.mid
  composer generate --style mozart --style-strength 2.5 --temperature 0.9 -o quartet.mid
  composer generate --style bach --key "G major" --candidates 8 -o chorale.mid  # critic keeps 1 of 8
  composer generate --style irish --line-weight 0 -o raw.mid   # the model's own lines, uncalibrated
"""
)
@click.option("--style", required=True, help="A style of the model (see 'composer styles').")
@_bars_option
@_line_weight_option
@_sampling_options
def generate(
    style: str,
    model: Path | None,
    bars: int | None,
    out: Path,
    score_path: Path | None,
    audio_path: Path | None,
    soundfont: Path | None,
    num: int,
    seed: int,
    force: bool,
    **kwargs: Any,
) -> None:
    """Write a new piece in a composer's style."""
    from composer.api import Composer

    targets = _check_outputs(out, score_path, num, force, audio_path, soundfont)
    composer = Composer.load(model)
    pieces = composer.generate(
        style=style, bars=16 if bars is None else bars, seed=seed, num=num, **_options(kwargs)
    )
    _save(pieces, targets, force, soundfont)


@click.command(
    name="continue",
    epilog="""\b
Examples:
  composer continue tune.mid --style irish --bars 8 -o more.mid
  composer continue "tinynotation: 3/4 e4 d c d e e e2" --style german_folk --bars 8 -o song.mid
  composer continue melody.musicxml --style bach --prompt-bars 4 --no-keep-prompt -o new.mid
  composer continue tune.mid --style irish --key "E minor" --candidates 1 -o more.mid
  composer continue sonata.mid --style beethoven --key-weight 0 -o freer.mid  # may modulate
""",
)
@click.argument("prompt")
@click.option("--style", required=True, help="A style of the model (see 'composer styles').")
@click.option(
    "--prompt-bars",
    type=click.IntRange(min=1),
    default=None,
    help="Use only the last K bars of the prompt as context.",
)
@click.option(
    "--keep-prompt/--no-keep-prompt",
    default=True,
    show_default=True,
    help="Write the prompt and the new bars, or only the new bars.",
)
@_bars_option
@_key_weight_option
@_line_weight_option
@_sampling_options
def continue_(
    prompt: str,
    style: str,
    prompt_bars: int | None,
    keep_prompt: bool,
    model: Path | None,
    bars: int | None,
    out: Path,
    score_path: Path | None,
    audio_path: Path | None,
    soundfont: Path | None,
    num: int,
    seed: int,
    force: bool,
    **kwargs: Any,
) -> None:
    """Continue PROMPT (a MIDI/MusicXML/ABC/kern file or 'tinynotation: …' text).

    The candidates (default 8) are decoded together and steered, bar by bar, toward the
    prompt's key signature (--key-weight); the critic keeps one."""
    from composer.api import Composer

    targets = _check_outputs(out, score_path, num, force, audio_path, soundfont)
    _read_early(prompt)
    composer = Composer.load(model)
    pieces = composer.continue_(
        prompt,
        style=style,
        bars=8 if bars is None else bars,
        seed=seed,
        num=num,
        prompt_bars=prompt_bars,
        keep_prompt=keep_prompt,
        **_options(kwargs),
    )
    _save(pieces, targets, force, soundfont)


@click.command(
    epilog="""\b
Examples:
  composer harmonize "tinynotation: 4/4 g4 g a b c'2 b4 a g a b g a1" --style bach -o chorale.mid
  composer harmonize hymn.musicxml --style bach -o hymn.mid --score hymn.pdf
  composer harmonize tune.mid --style palestrina --num 3 --seed 5 -o motet.mid
  composer harmonize bassline.mid --style bach --voice bass -o chorale.mid
""",
)
@click.argument("melody")
@click.option("--style", required=True, help="A style of the model (see 'composer styles').")
@click.option("--voice", type=click.Choice(HARMONY_VOICES), default="soprano", show_default=True,
              help="The voice that sings the melody.")
@click.option("--chord-plan/--no-chord-plan", "plan_chords", default=True, show_default=True,
              help="Strike the other voices' notes on each beat from the chord the style's chord "
                   "model plans under the melody (the bass on its root); --no-chord-plan leaves "
                   "the harmony to the model alone.")
@_sampling_options
def harmonize(melody: str, style: str, voice: str, **kwargs: Any) -> None:
    """Add the style's other voices to MELODY (a MIDI/MusicXML/ABC/kern file or
    'tinynotation: …' text), which is kept note for note. A polyphonic MELODY gives its
    top line. A chord model counted from the style's pieces plans a chord under every beat
    of the whole melody first (so cadences are prepared); the model writes the voices on
    those chords. --candidates (default 8) are the particles that look ahead to the melody."""
    _write_pieces(melody, kwargs, lambda composer, rest: composer.harmonize(
        melody, style=style, voice=voice, seed=rest["seed"], num=rest["num"], **_options(rest)))


@click.command(
    epilog="""\b
Examples:
  composer vary chorale.mid --bars 5-8 --style bach -o varied.mid
  composer vary tune.abc --bars "3,7-8" --style irish --num 3 -o tune-var.mid   # tune-var-1.mid …
  composer vary quartet.musicxml --bars 9-12 --style mozart --candidates 16 -o v.mid --score v.pdf
""",
)
@click.argument("piece")
@click.option("--bars", "bar_list", required=True,
              help="Bars to rewrite: numbers and ranges from 1, e.g. 5-8 or 3,5-8.")
@click.option("--style", required=True, help="A style of the model (see 'composer styles').")
@_key_weight_option
@_sampling_options
def vary(piece: str, bar_list: str, style: str, **kwargs: Any) -> None:
    """Rewrite chosen bars of PIECE (a MIDI/MusicXML/ABC/kern file or 'tinynotation: …'
    text) and keep every other note. With --num N, piece j uses seed SEED+j. For each run
    of bars, --candidates (default 8) are steered toward the piece's key signature
    (--key-weight) and the critic keeps one."""
    _write_pieces(piece, kwargs, lambda composer, rest: composer.vary(
        piece, bars=bar_list, style=style, seed=rest["seed"], num=rest["num"], **_options(rest)))
