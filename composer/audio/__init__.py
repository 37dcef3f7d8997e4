"""Audio: a ``symusic.Score`` → a WAV or FLAC file, played by a General MIDI SoundFont.

``render`` writes the score as MIDI to a temporary folder and has the FluidSynth
program (``apt install fluidsynth``) play it through an SF2/SF3 SoundFont found by
``find_soundfont`` (``--soundfont``, ``$COMPOSER_SOUNDFONT``, or the usual system places,
e.g. Debian's ``fluid-soundfont-gm``), so each part sounds as its MIDI program (choir,
strings, flute…) at the piece's own tempo map. The audio lasts the score's length plus a
short faded release, is normalized to a peak of −1 dBFS and is encoded as 16-bit WAV
(standard library) or FLAC (``soundfile``). Files are written atomically and never
overwrite without ``force``. Nothing here knows about tokens or models; FluidSynth and
``soundfile`` are only touched when audio is asked for.
"""
