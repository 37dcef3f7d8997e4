"""A score → WAV or FLAC bytes, played by FluidSynth through a General MIDI SoundFont.

FluidSynth (the ``fluidsynth`` program) renders the MIDI file faster than real time
(``-F``, raw 32-bit float). The samples are then cut to the score's length plus a
short faded release (FluidSynth itself plays on until the reverb dies away, seconds
later), normalized to a peak of −1 dBFS (FluidSynth's own level peaks around −20 dBFS)
and encoded: WAV with the standard library, FLAC with ``soundfile``.

symusic's own ``Synthesizer`` was the other candidate; in symusic 0.6.0 (the version
composer pins) ``render`` fails on every call ("Unable to convert function return
value"), and its maintainers call it experimental.
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import tempfile
import wave
from pathlib import Path
from typing import TYPE_CHECKING

from composer.errors import AudioError
from composer.io.outputs import check_output, write_atomic
from composer.io.reader import score_seconds

if TYPE_CHECKING:
    import numpy as np
    import symusic

AUDIO_SUFFIXES = (".wav", ".flac")
SOUNDFONT_ENV = "COMPOSER_SOUNDFONT"
SOUNDFONT_SUFFIXES = (".sf2", ".sf3")
SAMPLE_RATES = (8000, 96000)  # what FluidSynth accepts
TAIL_SECONDS = 0.2  # release after the score's end, faded out
PEAK = 10 ** (-1 / 20)  # −1 dBFS
MIDI_CHANNELS = 15  # 16 channels, one (10) kept for drums
MAX_SECONDS = 3600.0  # an hour of 44.1 kHz stereo takes about 3 GB while it is made

INSTALL_HINT = ("install one (Debian/Ubuntu: apt install fluid-soundfont-gm; elsewhere any General "
                f"MIDI .sf2 or .sf3) or pass --soundfont PATH or set {SOUNDFONT_ENV}")
FLUIDSYNTH_HINT = ("FluidSynth is needed for audio and is not installed (Debian/Ubuntu: apt install "
                   "fluidsynth; Fedora: dnf install fluidsynth; macOS: brew install fluid-synth)")

# Searched in order when neither --soundfont nor $COMPOSER_SOUNDFONT is given: exact files
# first (Debian's GM sets and its update-alternatives links), then every SoundFont in the
# usual folders (Debian, Arch/Fedora, Homebrew, MacPorts, the user's own), sorted by name.
SOUNDFONT_FILES: tuple[str, ...] = (
    "/usr/share/sounds/sf2/FluidR3_GM.sf2",
    "/usr/share/sounds/sf2/default-GM.sf2",
    "/usr/share/sounds/sf3/default-GM.sf3",
    "/usr/share/soundfonts/FluidR3_GM.sf2",
    "/usr/share/soundfonts/default.sf2",
)
SOUNDFONT_DIRS: tuple[str, ...] = (
    "/usr/share/sounds/sf2",
    "/usr/share/sounds/sf3",
    "/usr/share/soundfonts",
    "/usr/local/share/soundfonts",
    "/opt/homebrew/share/soundfonts",
    "/opt/local/share/sounds/sf2",
    "~/.local/share/soundfonts",
    "~/.fluidsynth",
    "~/Library/Audio/Sounds/Banks",
)


def find_soundfont(explicit: str | Path | None = None) -> Path:
    """The SoundFont to play with: ``explicit``, else ``$COMPOSER_SOUNDFONT``, else the first
    one in the usual system places. ``AudioError`` (one line) when there is none."""
    if explicit is not None and str(explicit) != "":
        return _checked_soundfont(Path(explicit).expanduser(), "")
    from_env = os.environ.get(SOUNDFONT_ENV)
    if from_env:
        return _checked_soundfont(Path(from_env).expanduser(), f" (from {SOUNDFONT_ENV})")
    for name in SOUNDFONT_FILES:
        path = Path(name)
        if path.is_file() and _is_soundfont(path):
            return path
    for folder in SOUNDFONT_DIRS:
        found = _soundfonts_in(Path(folder).expanduser())
        if found:
            return found[0]
    raise AudioError(f"no SoundFont found for audio; {INSTALL_HINT}")


def find_fluidsynth() -> str:
    """The ``fluidsynth`` program's path; ``AudioError`` saying how to install it."""
    found = shutil.which("fluidsynth")
    if found is None:
        raise AudioError(FLUIDSYNTH_HINT)
    return found


def check_audio_output(path: str | Path, *, soundfont: str | Path | None = None,
                       force: bool = False) -> Path:
    """Everything ``write_audio`` needs, checked before any work: a .wav/.flac name that may
    be written, a SoundFont and FluidSynth. Returns the SoundFont."""
    path = Path(path)
    audio_suffix(path)
    check_output(path, force)
    found = find_soundfont(soundfont)
    find_fluidsynth()
    return found


def audio_suffix(path: str | Path) -> str:
    """``.wav`` or ``.flac`` (any case); ``AudioError`` for anything else."""
    suffix = Path(path).suffix.lower()
    if suffix not in AUDIO_SUFFIXES:
        shown = f"'{suffix}'" if suffix else "no extension"
        raise AudioError(f"{path}: unsupported audio type ({shown}); use {' or '.join(AUDIO_SUFFIXES)}")
    return suffix


def render_audio(score: symusic.Score, suffix: str = ".wav", *, soundfont: str | Path | None = None,
                 sample_rate: int = 44100) -> bytes:
    """The score played through the SoundFont: an encoded WAV (16-bit) or FLAC file.

    Each track sounds as its MIDI program, drums on channel 10, at the score's tempo map.
    The audio lasts the score's end plus ``TAIL_SECONDS`` of faded release and peaks at
    −1 dBFS; a score without notes gives silence of that length.
    """
    suffix = suffix.lower() if suffix.startswith(".") else f".{suffix.lower()}"
    if suffix not in AUDIO_SUFFIXES:
        raise AudioError(f"unsupported audio type '{suffix}'; use {' or '.join(AUDIO_SUFFIXES)}")
    if not isinstance(sample_rate, int) or not SAMPLE_RATES[0] <= sample_rate <= SAMPLE_RATES[1]:
        raise AudioError(f"sample rate {sample_rate}: choose {SAMPLE_RATES[0]} to {SAMPLE_RATES[1]} Hz")
    font = find_soundfont(soundfont)
    program = find_fluidsynth()
    seconds = score_seconds(score)
    if seconds > MAX_SECONDS:
        raise AudioError(f"the piece lasts {seconds / 60:.0f} minutes; audio is made for up to "
                         f"{MAX_SECONDS / 60:.0f} minutes")
    frames = round((seconds + TAIL_SECONDS) * sample_rate)
    if score.note_num() == 0:
        import numpy as np

        samples = np.zeros((frames, 2), dtype=np.float32)
    else:
        samples = _fluidsynth(program, font, _playable(score).dumps_midi(), sample_rate, seconds)
        samples = _finish(samples, frames, sample_rate)
    return _encode(samples, sample_rate, suffix)


def write_audio(score: symusic.Score, out_path: str | Path, *, soundfont: str | Path | None = None,
                force: bool = False) -> Path:
    """Render ``score`` to ``out_path`` (.wav or .flac), atomically; an existing file is
    refused (``OutputError``) unless ``force``."""
    path = Path(out_path)
    suffix = audio_suffix(path)
    check_output(path, force)
    data = render_audio(score, suffix, soundfont=soundfont)
    write_atomic(path, data, replace=force)
    return path


def _checked_soundfont(path: Path, origin: str) -> Path:
    if not path.exists():
        raise AudioError(f"{path}{origin}: no such SoundFont file")
    if path.is_dir():
        found = _soundfonts_in(path)
        if not found:
            raise AudioError(f"{path}{origin}: no .sf2 or .sf3 SoundFont in this folder")
        return found[0]
    if not _is_soundfont(path):
        raise AudioError(f"{path}{origin}: not a SoundFont (an .sf2 or .sf3 file starts with RIFF…sfbk)")
    return path


def _soundfonts_in(folder: Path) -> list[Path]:
    try:
        entries = sorted(folder.iterdir()) if folder.is_dir() else []
    except OSError:
        return []
    return [p for p in entries
            if p.suffix.lower() in SOUNDFONT_SUFFIXES and p.is_file() and _is_soundfont(p)]


def _is_soundfont(path: Path) -> bool:
    """An SF2/SF3 file is a RIFF file of form ``sfbk``; FluidSynth plays silence with
    anything else and still exits 0, so this is checked here."""
    try:
        with path.open("rb") as handle:
            head = handle.read(12)
    except OSError:
        return False
    return head[:4] == b"RIFF" and head[8:12] == b"sfbk"


def _playable(score: symusic.Score) -> symusic.Score:
    """The score in ticks with every pitched part on a channel of its own.

    symusic numbers channels by track index (drums on 10), so after 15 tracks channels are
    shared and a later program change would take over an earlier part's instrument. With
    more than 15 pitched tracks, tracks of one program are merged (their notes and pedals;
    the merged tracks' controllers are dropped). Past 15 distinct programs, the rest share
    channels: General MIDI has no more.
    """
    ticks = score.to("tick")
    pitched = [t for t in ticks.tracks if not t.is_drum]
    drums = [t for t in ticks.tracks if t.is_drum]
    if len(pitched) > MIDI_CHANNELS:
        by_program: dict[int, object] = {}
        merged = []
        for track in pitched:
            first = by_program.get(track.program)
            if first is None:
                by_program[track.program] = track
                merged.append(track)
            else:
                first.notes.extend(track.notes)  # type: ignore[attr-defined]
                first.pedals.extend(track.pedals)  # type: ignore[attr-defined]
        pitched = merged
    ticks.tracks.clear()
    for track in [*pitched, *drums]:  # pitched first: they take channels 1-9, 11-16
        ticks.tracks.append(track)
    return ticks


def _fluidsynth(program: str, font: Path, midi: bytes, sample_rate: int, seconds: float) -> np.ndarray:
    """Raw stereo float samples, shape (frames, 2), as FluidSynth plays ``midi``."""
    import numpy as np

    with tempfile.TemporaryDirectory(prefix="composer-audio-") as folder:
        midi_path = Path(folder) / "in.mid"
        raw_path = Path(folder) / "out.raw"
        midi_path.write_bytes(midi)
        command = [program, "-n", "-i", "-q", "-r", str(sample_rate), "-T", "raw", "-O", "float",
                   "-E", "little", "-F", str(raw_path), str(font), str(midi_path)]
        timeout = 60 + 2 * seconds  # FluidSynth renders 20-35x faster than real time
        try:
            done = subprocess.run(command, stdin=subprocess.DEVNULL, capture_output=True,
                                  timeout=timeout, check=False)
        except subprocess.TimeoutExpired:
            raise AudioError(f"FluidSynth took longer than {timeout:.0f} s to render "
                             f"{seconds:.0f} s of music") from None
        except OSError as exc:
            raise AudioError(f"FluidSynth cannot be run ({exc.strerror or exc})") from None
        problem = _fluidsynth_problem(done.stderr.decode("utf-8", "replace"), font)
        if done.returncode != 0 or problem or not raw_path.exists():
            reason = problem or _last_line(done.stderr) or f"exit status {done.returncode}"
            raise AudioError(f"FluidSynth failed: {reason}")
        data = np.fromfile(raw_path, dtype="<f4")
    return data[: len(data) // 2 * 2].reshape(-1, 2)


def _fluidsynth_problem(stderr: str, font: Path) -> str | None:
    for line in stderr.splitlines():
        if "Failed to load" in line or "not a SoundFont" in line:
            return f"{font}: the SoundFont cannot be loaded ({line.strip()})"
    return None


def _last_line(stderr: bytes) -> str:
    lines = [line.strip() for line in stderr.decode("utf-8", "replace").splitlines() if line.strip()]
    return lines[-1][:200] if lines else ""


def _finish(samples: np.ndarray, frames: int, sample_rate: int) -> np.ndarray:
    """Cut (or pad) to ``frames``, fade out the release tail, normalize the peak (in place
    where it can: an hour of audio is over a GB of samples)."""
    import numpy as np

    if len(samples) >= frames:
        out = samples[:frames]
    else:
        out = np.zeros((frames, 2), dtype=np.float32)
        out[: len(samples)] = samples
    tail = min(frames, round(TAIL_SECONDS * sample_rate))
    if tail:
        out[frames - tail:] *= np.linspace(1.0, 0.0, tail, dtype=np.float32)[:, None]
    peak = max(float(out.max()), -float(out.min())) if frames else 0.0
    if peak > 0:
        out *= PEAK / peak
    return out


def _encode(samples: np.ndarray, sample_rate: int, suffix: str) -> bytes:
    import numpy as np

    np.multiply(samples, 32767, out=samples)  # the peak is at most 1, so nothing clips
    np.rint(samples, out=samples)
    pcm = samples.astype("<i2")
    buffer = io.BytesIO()
    if suffix == ".flac":
        try:
            import soundfile
        except ImportError:
            raise AudioError("FLAC needs the soundfile package (pip install soundfile); "
                             "or write .wav") from None
        soundfile.write(buffer, pcm, sample_rate, format="FLAC", subtype="PCM_16")
    else:
        with wave.open(buffer, "wb") as out:
            out.setnchannels(2)
            out.setsampwidth(2)
            out.setframerate(sample_rate)
            out.writeframes(memoryview(pcm).cast("B"))
    return buffer.getvalue()
