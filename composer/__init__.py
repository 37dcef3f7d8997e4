"""composer: symbolic music composition with a small transformer.

Heavy libraries (torch, music21, miditok) are imported lazily by the modules that
need them, so ``import composer`` and ``composer --help`` stay fast.
"""

from __future__ import annotations

from composer.errors import ComposerError

__version__ = "0.1.0"

__all__ = ["ComposerError", "__version__"]
