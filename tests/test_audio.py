"""Audio: MIDI → WAV/FLAC through FluidSynth and a SoundFont, measured, not listened to.

The rendering tests need FluidSynth and a SoundFont (CI installs Debian's ``fluidsynth``
and ``fluid-soundfont-gm``); without them they are skipped and say why. The error tests
(no SoundFont, bad paths) run everywhere.
"""

from __future__ import annotations

import io
import shutil
import subprocess
import sys
import wave
from pathlib import Path

import mido
import numpy as np
import pretty_midi
import pytest
import symusic
from click.testing import CliRunner
from conftest import END_OF_TRACK, header, note_events, tempo_event, track

from composer.audio import render as audio
from composer.audio.render import AUDIO_SUFFIXES, find_soundfont, render_audio, write_audio
from composer.cli import cli
from composer.errors import AudioError, OutputError


def _soundfont() -> Path | None:
    try:
        return find_soundfont()
    except AudioError:
        return None


SOUNDFONT = _soundfont()
needs_synth = pytest.mark.skipif(
    SOUNDFONT is None or shutil.which("fluidsynth") is None,
    reason="audio needs FluidSynth and a General MIDI SoundFont: apt install fluidsynth fluid-soundfont-gm",
)


def program(number: int, channel: int = 0) -> bytes:
    return b"\x00" + bytes([0xC0 | channel, number])


def midi(*tracks: bytes, division: int = 480) -> bytes:
    return header(1, len(tracks), division) + b"".join(track(t + END_OF_TRACK) for t in tracks)


def wav_samples(data: bytes) -> tuple[np.ndarray, int]:
    """Mono float samples and the sample rate of a 16-bit WAV."""
    with wave.open(io.BytesIO(data)) as reader:
        assert reader.getsampwidth() == 2
        frames = reader.readframes(reader.getnframes())
        pcm = np.frombuffer(frames, dtype="<i2").reshape(-1, reader.getnchannels())
        return pcm.mean(axis=1) / 32768.0, reader.getframerate()


def peak_hz(samples: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
    return float(np.fft.rfftfreq(len(samples), 1 / rate)[int(np.argmax(spectrum))])


def centroid_hz(samples: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(samples))
    return float((spectrum * np.fft.rfftfreq(len(samples), 1 / rate)).sum() / spectrum.sum())


def end_seconds(data: bytes) -> float:
    """The MIDI's length by pretty_midi, a reader independent of symusic and FluidSynth."""
    return float(pretty_midi.PrettyMIDI(io.BytesIO(data)).get_end_time())


def track_seconds(data: bytes) -> float:
    """The MIDI's length to its end-of-track events by mido: a piece that ends on a rest
    lasts to its last bar line, where its last note ended earlier."""
    return float(mido.MidiFile(file=io.BytesIO(data)).length)


MELODY = [60, 64, 67, 72, 67, 64, 60, 55]


@needs_synth
def test_flute_a4_sounds_at_440_hz() -> None:
    data = midi(tempo_event(500_000) + program(73) + note_events([69], length=960))  # 1 s at 120
    samples, rate = wav_samples(render_audio(symusic.Score.from_midi(data)))
    assert rate == 44100
    hz = peak_hz(samples[int(0.1 * rate): int(0.9 * rate)], rate)
    assert abs(hz - 440) <= 0.02 * 440, hz


@needs_synth
def test_length_and_tempo_map_are_honoured() -> None:
    """A note after a tempo change starts when the tempo map says, and the audio ends
    with the MIDI (plus the short faded release)."""
    score = symusic.Score(480)
    score.tempos.extend([symusic.Tempo(0, 120.0), symusic.Tempo(480, 60.0)])  # 0.5 s, then 1 s a beat
    flute = symusic.Track("flute", program=73, is_drum=False)
    flute.notes.extend([symusic.Note(0, 480, 69, 80), symusic.Note(2400, 480, 72, 80)])
    score.tracks.append(flute)
    data = score.dumps_midi()
    expected = end_seconds(data)
    assert expected == pytest.approx(5.5)  # the C5 starts at 0.5 + 4 = 4.5 s and lasts 1 s
    samples, rate = wav_samples(render_audio(symusic.Score.from_midi(data)))
    assert abs(len(samples) / rate - expected) <= 0.25
    envelope = np.abs(samples)
    onset = int(np.argmax(envelope[int(2.5 * rate):] > 0.1 * envelope.max())) + int(2.5 * rate)
    assert abs(onset / rate - 4.5) < 0.05, onset / rate  # at 120 throughout it would be 2.5 s
    assert envelope[int(5.0 * rate): int(5.4 * rate)].max() > 0.05  # still sounding at the end


@needs_synth
def test_instruments_follow_the_midi_programs() -> None:
    """The same notes on a flute, a violin and a choir sound different, each like itself."""
    centroids = {}
    for number in (73, 40, 52):
        data = midi(tempo_event(500_000) + program(number) + note_events(MELODY))
        samples, rate = wav_samples(render_audio(symusic.Score.from_midi(data)))
        centroids[number] = centroid_hz(samples, rate)
    assert centroids[40] > 1.4 * centroids[73], centroids  # the fiddle is brighter than the flute
    assert min(abs(a - b) for a, b in [(centroids[73], centroids[52]), (centroids[40], centroids[52])]) > 100


@needs_synth
def test_a_score_without_notes_renders_silence() -> None:
    score = symusic.Score(480)
    score.tempos.append(symusic.Tempo(0, 120.0))
    samples, rate = wav_samples(render_audio(score))
    assert len(samples) == round(audio.TAIL_SECONDS * rate)
    assert np.abs(samples).max() == 0


def test_a_silent_midi_file_is_refused_in_one_line(tmp_path: Path) -> None:
    """Note-ons of velocity 0 are note-offs, so this file has no notes: the reader refuses
    it, as it refuses an empty file for every command, and nothing is written."""
    silent = tmp_path / "silent.mid"
    silent.write_bytes(midi(tempo_event(500_000) + note_events([60, 62], velocity=0)))
    out = tmp_path / "silent.wav"
    result = CliRunner().invoke(cli, ["render", str(silent), "-o", str(out)])
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "no pitched notes" in lines[0]
    assert not out.exists()


def test_no_soundfont_is_one_line_and_nothing_is_written(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(audio.SOUNDFONT_ENV, raising=False)
    monkeypatch.setattr(audio, "SOUNDFONT_FILES", ())
    monkeypatch.setattr(audio, "SOUNDFONT_DIRS", ())
    with pytest.raises(AudioError) as caught:
        find_soundfont()
    message = str(caught.value)
    assert "\n" not in message and "apt install fluid-soundfont-gm" in message and "--soundfont" in message
    tune = tmp_path / "tune.mid"
    tune.write_bytes(midi(note_events(MELODY)))
    out = tmp_path / "tune.wav"
    with pytest.raises(AudioError):
        write_audio(symusic.Score(str(tune)), out)
    assert not out.exists()
    missing = tmp_path / "missing.sf2"
    runner = CliRunner()
    for args, says in ((["render", str(tune), "-o", str(out)], "fluid-soundfont-gm"),
                       (["render", str(tune), "-o", str(out), "--soundfont", str(missing)], str(missing)),
                       (["render", str(tune), "-o", str(tmp_path / "tune.mp3")], ".wav or .flac")):
        result = runner.invoke(cli, args)
        assert result.exit_code == 2, (args, result.output)
        lines = result.output.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: ") and says in lines[0], result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tune.mid"]


def test_bad_soundfonts_are_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    missing = tmp_path / "missing.sf2"
    with pytest.raises(AudioError, match=r"missing\.sf2: no such SoundFont"):
        find_soundfont(missing)
    monkeypatch.setenv(audio.SOUNDFONT_ENV, str(missing))
    with pytest.raises(AudioError, match=f"missing.sf2 \\(from {audio.SOUNDFONT_ENV}\\)"):
        find_soundfont()
    fake = tmp_path / "fake.sf2"
    fake.write_bytes(b"RIFF\x04\x00\x00\x00WAVE")  # FluidSynth would play silence and exit 0
    with pytest.raises(AudioError, match="not a SoundFont"):
        find_soundfont(fake)
    real = tmp_path / "fonts" / "a.sf3"
    real.parent.mkdir()
    real.write_bytes(b"RIFF\x04\x00\x00\x00sfbk")
    assert find_soundfont(real.parent) == real  # a folder: its first SoundFont
    monkeypatch.setenv(audio.SOUNDFONT_ENV, str(real))
    assert find_soundfont() == real


def test_many_parts_keep_their_instruments() -> None:
    """symusic numbers channels by track; past 15 tracks they would be shared, and a later
    program change would take over another part. Parts of one program are merged."""
    score = symusic.Score(480)
    for i in range(20):
        part = symusic.Track(f"p{i}", program=[52, 48, 73, 40][i % 4], is_drum=False)
        part.notes.append(symusic.Note(i * 10, 480, 60 + i, 80))
        score.tracks.append(part)
    drums = symusic.Track("drums", program=0, is_drum=True)
    drums.notes.append(symusic.Note(0, 120, 36, 80))
    score.tracks.insert(2, drums)
    played = mido.MidiFile(file=io.BytesIO(audio._playable(score).dumps_midi()))
    programs: dict[int, set[int]] = {}
    notes = 0
    for part in played.tracks:
        for message in part:
            if message.type == "program_change":
                programs.setdefault(message.channel, set()).add(message.program)
            notes += message.type == "note_on" and message.velocity > 0
    assert all(len(p) == 1 for p in programs.values()), programs
    assert {next(iter(p)) for c, p in programs.items() if c != 9} == {52, 48, 73, 40}
    assert notes == 21
    assert score.note_num() == 21 and len(score.tracks) == 21  # the caller's score is untouched


@needs_synth
def test_flac_round_trip_and_never_overwrite(tmp_path: Path) -> None:
    import soundfile

    score = symusic.Score.from_midi(midi(tempo_event(600_000) + program(40) + note_events(MELODY)))
    wav = write_audio(score, tmp_path / "a.wav")
    flac = write_audio(score, tmp_path / "a.flac")
    pcm_wav, rate = soundfile.read(wav, dtype="int16")
    pcm_flac, rate_flac = soundfile.read(flac, dtype="int16")
    assert rate == rate_flac == 44100 and pcm_flac.shape == pcm_wav.shape and pcm_wav.shape[1] == 2
    assert np.array_equal(pcm_flac, pcm_wav)  # lossless, and FluidSynth renders deterministically
    assert abs(len(pcm_flac) / rate - score.to("second").end()) <= 0.25
    assert flac.stat().st_size < 0.8 * wav.stat().st_size
    before = wav.read_bytes()
    with pytest.raises(OutputError, match="--force"):
        write_audio(score, wav)
    assert wav.read_bytes() == before
    assert write_audio(score, wav, force=True) == wav
    with pytest.raises(AudioError, match=r"use \.wav or \.flac"):
        write_audio(score, tmp_path / "a.ogg")
    assert AUDIO_SUFFIXES == (".wav", ".flac")


@needs_synth
def test_sample_rate_and_length_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    score = symusic.Score.from_midi(midi(tempo_event(500_000) + program(73) + note_events([69, 72])))
    samples, rate = wav_samples(render_audio(score, "wav", sample_rate=22050))
    assert rate == 22050 and abs(len(samples) / rate - 1.0) <= 0.25
    with pytest.raises(AudioError, match="sample rate"):
        render_audio(score, sample_rate=1000)
    monkeypatch.setattr(audio, "MAX_SECONDS", 0.5)
    with pytest.raises(AudioError, match="minutes"):
        render_audio(score)


@needs_synth
def test_render_command(tmp_path: Path) -> None:
    tune = tmp_path / "tune.mid"
    tune.write_bytes(midi(tempo_event(500_000) + program(73) + note_events(MELODY)))
    out = tmp_path / "tune.flac"
    runner = CliRunner()
    result = runner.invoke(cli, ["render", str(tune), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"wrote {out}")
    again = runner.invoke(cli, ["render", str(tune), "-o", str(out)])
    assert again.exit_code == 2 and "--force" in again.output
    assert runner.invoke(cli, ["render", str(tune), "-o", str(out), "--force"]).exit_code == 0


@pytest.mark.slow
@needs_synth
def test_generate_audio_matches_the_midi(tmp_path: Path) -> None:
    """--audio with the shipped model: one WAV per piece, numbered like the MIDI, as long as it
    (a final rest included)."""
    runner = CliRunner()
    out, sound = tmp_path / "jig.mid", tmp_path / "jig.wav"
    args = ["generate", "--style", "irish", "--bars", "2"]
    result = runner.invoke(cli, [*args, "--num", "2", "-o", str(out), "--audio", str(sound)])
    assert result.exit_code == 0, result.output
    for i in (1, 2):
        data = (tmp_path / f"jig-{i}.mid").read_bytes()
        samples, rate = wav_samples((tmp_path / f"jig-{i}.wav").read_bytes())
        assert abs(len(samples) / rate - track_seconds(data)) <= 0.25
        assert np.abs(samples).max() > 0.5  # normalized to -1 dBFS
    # an existing audio file stops the command before the model runs and before any MIDI is written
    (tmp_path / "b.wav").write_bytes(b"mine")
    refused = runner.invoke(cli, [*args, "-o", str(tmp_path / "b.mid"), "--audio", str(tmp_path / "b.wav")])
    assert refused.exit_code == 2 and "--force" in refused.output
    assert not (tmp_path / "b.mid").exists() and (tmp_path / "b.wav").read_bytes() == b"mine"


def test_generate_and_continue_check_audio_before_the_model(tmp_path: Path) -> None:
    """A missing SoundFont is one line and exit 2 before any model is loaded or file written
    (the model path does not even exist)."""
    runner = CliRunner()
    missing = str(tmp_path / "none.sf2")
    prompt = tmp_path / "prompt.mid"
    prompt.write_bytes(midi(note_events(MELODY)))
    for args in (
        ["generate", "--style", "irish", "-o", str(tmp_path / "a.mid"), "--audio", str(tmp_path / "a.wav")],
        ["continue", str(prompt), "--style", "irish", "-o", str(tmp_path / "b.mid"),
         "--audio", str(tmp_path / "b.flac")],
        ["generate", "--style", "irish", "-o", str(tmp_path / "c.mid"), "--audio", str(tmp_path / "c.mp3")],
    ):
        result = runner.invoke(cli, [*args, "--soundfont", missing, "--model", str(tmp_path / "nomodel")])
        assert result.exit_code == 2, (args, result.output)
        lines = result.output.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["prompt.mid"]


def test_help_imports_no_audio_code() -> None:
    code = ("import sys\nfrom click.testing import CliRunner\nfrom composer.cli import cli\n"
            "assert CliRunner().invoke(cli, ['render', '--help']).exit_code == 0\n"
            "heavy = ('composer.audio.render', 'soundfile', 'numpy', 'symusic')\n"
            "print([m for m in heavy if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
