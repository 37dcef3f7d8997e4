"""``composer render``: a MIDI (or MusicXML/ABC/kern) file → WAV or FLAC audio."""

from __future__ import annotations

from pathlib import Path

import click


@click.command(epilog="""\b
Examples:
  composer render chorale.mid -o chorale.wav
  composer render tune.mid -o tune.flac --force
  composer render song.musicxml -o song.wav --soundfont ~/sf/MuseScore_General.sf3
  COMPOSER_SOUNDFONT=~/sf/GeneralUser.sf2 composer render piece.mid -o piece.wav
""")
@click.argument("input_path", metavar="IN", type=click.Path(path_type=Path))
@click.option("-o", "--out", "out_path", type=click.Path(path_type=Path), required=True,
              help="Audio file to write: .wav (16-bit) or .flac.")
@click.option("--soundfont", type=click.Path(path_type=Path), default=None,
              help="SF2/SF3 SoundFont (default: $COMPOSER_SOUNDFONT, else the system's, "
                   "e.g. Debian's fluid-soundfont-gm).")
@click.option("--force", is_flag=True, help="Overwrite an existing output file.")
def render(input_path: Path, out_path: Path, soundfont: Path | None, force: bool) -> None:
    """Play IN (MIDI, MusicXML, ABC or kern) through a SoundFont into a WAV or FLAC file.

    Every part sounds as its General MIDI instrument, at the file's tempo. FluidSynth
    renders it (apt install fluidsynth fluid-soundfont-gm); the audio is normalized to
    a peak of -1 dBFS.
    """
    from composer.audio.render import check_audio_output, write_audio
    from composer.io.reader import read_score, score_seconds

    font = check_audio_output(out_path, soundfont=soundfont, force=force)
    score = read_score(input_path)
    written = write_audio(score, out_path, soundfont=font, force=force)
    click.echo(f"wrote {written} ({score_seconds(score):.1f} s, {font.name})")
