"""Progress bars for long commands (tqdm, on stderr)."""

from __future__ import annotations

from collections.abc import Callable


def progress_bar(description: str, unit: str) -> tuple[Callable[[int, int], None], Callable[[], None]]:
    """A ``(done, total)`` callback that drives a tqdm bar, and a function that closes it."""
    from tqdm import tqdm

    state: dict[str, tqdm] = {}

    def update(done: int, total: int) -> None:
        bar = state.get("bar")
        if bar is None:
            bar = state["bar"] = tqdm(total=total, desc=description, unit=unit, dynamic_ncols=True)
        bar.n = done
        bar.refresh()

    def close() -> None:
        if "bar" in state:
            state["bar"].close()

    return update, close
