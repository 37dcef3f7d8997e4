"""composer: symbolic music composition with a small transformer.

Heavy libraries (torch, music21, miditok) are imported lazily by the modules that
need them, so ``import composer`` and ``composer --help`` stay fast.

    from composer import Composer
    piece = Composer.load().generate(style="bach", bars=16, seed=1)
"""

from __future__ import annotations

from typing import Any

from composer.errors import ComposerError

__version__ = "0.1.0"

__all__ = ["Composer", "ComposerError", "__version__"]


def __getattr__(name: str) -> Any:
    if name == "Composer":
        from composer.api import Composer

        return Composer
    raise AttributeError(f"module 'composer' has no attribute {name!r}")
