"""The ``ComposerError`` family.

Every error a user can cause (a bad file, a bad option, a missing model) is one of
these, with a message that names the culprit and says what to do. The CLI catches
``ComposerError`` once and exits with status 2 and a single line.
"""

from __future__ import annotations


class ComposerError(Exception):
    """Base class: an error the user can act on; never a bug in composer."""


class InputFileError(ComposerError):
    """A file given to composer cannot be read as music."""


class UnsupportedFormatError(InputFileError):
    """The file's format is not one composer reads."""


class LimitExceededError(InputFileError):
    """The file is readable but larger or longer than the configured limits."""


class NoPitchedNotesError(InputFileError):
    """The file holds no pitched notes (empty, or drums only)."""


class ReadTimeoutError(InputFileError):
    """Reading the file took longer than the time limit."""


class CorpusError(ComposerError):
    """A corpus cannot be built or read."""


class OutputError(ComposerError):
    """An output path cannot be written (exists, is a directory, not writable)."""


class ConfigError(ComposerError):
    """An option or configuration value is invalid."""


class AudioError(ComposerError):
    """Audio cannot be made: no SoundFont or FluidSynth, an unsupported file type, a failed render."""


class DecodingError(ComposerError):
    """miditok refused a token sequence that the grammar accepts (a bug, not the input's fault).

    A ``ComposerError`` so that the command line reports it in one line instead of
    writing a silent piece; the message names the tokens and miditok's complaint.
    """


class TimeLimitError(ComposerError):
    """A request to the local web server ran past its time limit."""


class RepairWarning(UserWarning):
    """A file was read, but something in it had to be changed (the message says what)."""
